// @ts-check
/**
 * @file My loans and holds: what I have on loan (due dates, "Overdue" marks, renew, return),
 * my holds (queue position or pickup deadline, cancel), and, on request, what I returned.
 * The lists are read again when a notification about them arrives on the stream.
 */

import { holdList, loanTable } from './circulation.js';

/** @typedef {import('../../../gateway/web/shell/contract.js').Context} Context */
/** @typedef {import('./circulation.js').Loan} Loan */
/** @typedef {import('./circulation.js').Hold} Hold */

/**
 * @param {HTMLElement} root
 * @param {Context} ctx
 */
export function loansScreen(root, ctx) {
  const { el } = ctx.ui;
  const controller = new AbortController();
  const loans = loanTable(ctx, { caption: 'On loan', renew: true, empty: 'You have nothing on loan.', test: 'my-loans' });
  const holds = holdList(ctx, { empty: 'You have no holds.', test: 'my-holds' });
  const history = loanTable(ctx, { caption: 'Returned', renew: false, empty: 'Nothing returned yet.', test: 'my-history' });
  const loansStatus = ctx.ui.status('my-loans-status');
  const holdsStatus = ctx.ui.status('my-holds-status');
  const historyStatus = ctx.ui.status('my-history-status');
  /** @type {string | null} */
  let moreLoans = null;
  const more = ctx.ui.button('Show more loans', () => void ctx.ui.busy(more, () => loadLoans(moreLoans, true)),
    { class: 'button secondary', hidden: true, data: { test: 'my-loans-more' } });
  const past = el('details', { class: 'history', data: { test: 'my-history-toggle' } },
    el('summary', { text: 'Returned loans' }), historyStatus, history.element);
  let historyLoaded = false;
  past.addEventListener('toggle', () => {
    if (past.open && !historyLoaded) {
      historyLoaded = true;
      void loadHistory();
    }
  });

  root.append(
    ctx.ui.heading('My loans and holds'),
    el('section', { class: 'panel', 'aria-labelledby': 'loans-heading' },
      el('h2', { id: 'loans-heading', text: 'On loan' }), loansStatus, loans.element, el('div', { class: 'actions' }, more)),
    el('section', { class: 'panel', 'aria-labelledby': 'holds-heading' },
      el('h2', { id: 'holds-heading', text: 'Holds' }), holdsStatus, holds.element),
    el('section', { class: 'panel' }, past));
  void loadLoans('/loans/?active=true&limit=50', false);
  void loadHolds();

  /**
   * @param {string | null} path
   * @param {boolean} append
   */
  async function loadLoans(path, append) {
    if (!path) return;
    if (!append) ctx.ui.say(loansStatus, 'Loading…');
    const result = await ctx.api(path, { signal: controller.signal });
    if (result.aborted) return;
    if (!result.ok || !Array.isArray(result.body)) {
      ctx.ui.say(loansStatus, ctx.ui.describe(result), 'error');
      return;
    }
    const items = /** @type {Loan[]} */ (result.body);
    loans.show(items, append);
    moreLoans = ctx.ui.nextLink(result.headers);
    more.hidden = !moreLoans;
    const overdue = items.filter((l) => l.overdue).length;
    ctx.ui.say(loansStatus, overdue ? `${overdue} overdue: please return ${overdue === 1 ? 'it' : 'them'}.` : '', overdue ? 'error' : 'info');
  }

  async function loadHolds() {
    const result = await ctx.api('/holds/?limit=50', { signal: controller.signal });
    if (result.aborted) return;
    if (!result.ok || !Array.isArray(result.body)) {
      ctx.ui.say(holdsStatus, ctx.ui.describe(result), 'error');
      return;
    }
    ctx.ui.say(holdsStatus, '');
    holds.show(/** @type {Hold[]} */ (result.body));
  }

  async function loadHistory() {
    ctx.ui.say(historyStatus, 'Loading…');
    const result = await ctx.api('/loans/?active=false&limit=50', { signal: controller.signal });
    if (result.aborted) return;
    if (!result.ok || !Array.isArray(result.body)) {
      historyLoaded = false;
      ctx.ui.say(historyStatus, ctx.ui.describe(result), 'error');
      return;
    }
    ctx.ui.say(historyStatus, '');
    history.show(/** @type {Loan[]} */ (result.body));
  }

  // A hold became ready, a loan is due or overdue: the lists changed.
  const unsubscribe = ctx.events.on('notification', () => {
    void loadLoans('/loans/?active=true&limit=50', false);
    void loadHolds();
  });

  return {
    destroy() {
      unsubscribe();
      controller.abort();
    },
  };
}
