// @ts-check
/**
 * @file The circulation desk, for librarians: a reader's loans and holds by account number
 * (`GET /loans/?user_id=`, `GET /holds/?user_id=`), returned or cancelled on their behalf.
 * The reader is in the URL (`/desk/<id>`), so a desk page can be reloaded and shared.
 */

import { holdList, loanTable } from './circulation.js';

/** @typedef {import('../../../gateway/web/shell/contract.js').Context} Context */
/** @typedef {import('../../../gateway/web/shell/contract.js').Route} Route */
/** @typedef {import('./circulation.js').Loan} Loan */
/** @typedef {import('./circulation.js').Hold} Hold */

/**
 * @param {HTMLElement} root
 * @param {Context} ctx
 * @param {Route} route
 */
export function deskScreen(root, ctx, route) {
  const { el } = ctx.ui;
  /** @type {AbortController | null} */
  let controller = null;
  const userField = ctx.ui.field({ name: 'user_id', label: 'Reader’s account number', type: 'text', inputmode: 'numeric',
    autocomplete: 'off', hint: 'The number shown in the members list.', value: route.params.userId ?? '' });
  const form = ctx.ui.form({ name: 'desk-lookup', submit: 'Look up', label: 'Look up a reader', onSubmit: lookUp }, userField.wrapper);
  const results = el('div', { class: 'desk-results', data: { test: 'desk-results' } });
  root.append(
    ctx.ui.heading('Circulation desk'),
    el('p', { class: 'muted' }, 'Find a reader’s loans and holds, and return or cancel them on their behalf. ',
      ctx.ui.link('/members', 'Members list'), '.'),
    form,
    results);
  if (route.params.userId) void show(route.params.userId);

  /** @param {HTMLFormElement} form */
  function lookUp(form) {
    const raw = ctx.ui.value(form, 'user_id').trim();
    ctx.ui.clearErrors(form);
    if (!/^[1-9][0-9]*$/.test(raw)) {
      ctx.ui.fieldError(form, 'user_id', 'Enter an account number (digits only).');
      /** @type {HTMLInputElement} */ (userField.input).focus();
      return;
    }
    if (route.params.userId === raw) void show(raw);
    else ctx.navigate(`/desk/${raw}`);
  }

  /** @param {string} userId */
  async function show(userId) {
    controller?.abort();
    const current = new AbortController();
    controller = current;
    const loans = loanTable(ctx, { caption: `Loans of reader ${userId}`, renew: false, empty: 'This reader has nothing on loan.', test: 'desk-loans' });
    const holds = holdList(ctx, { empty: 'This reader has no holds.', test: 'desk-holds' });
    const status = ctx.ui.status('desk-status');
    results.replaceChildren(
      el('h2', { text: `Reader ${userId}` }), status,
      el('h3', { text: 'On loan' }), loans.element,
      el('h3', { text: 'Holds' }), holds.element);
    results.setAttribute('aria-busy', 'true');
    ctx.ui.say(status, 'Loading…');
    const id = encodeURIComponent(userId);
    const [loanResult, holdResult] = await Promise.all([
      ctx.api(`/loans/?user_id=${id}&active=true&limit=100`, { signal: current.signal }),
      ctx.api(`/holds/?user_id=${id}&limit=100`, { signal: current.signal }),
    ]);
    if (loanResult.aborted || current !== controller) return;
    results.removeAttribute('aria-busy');
    if (!loanResult.ok || !Array.isArray(loanResult.body)) {
      results.replaceChildren();
      ctx.ui.showErrors(form, loanResult, { field: 'user_id' });
      return;
    }
    const items = /** @type {Loan[]} */ (loanResult.body);
    loans.show(items);
    const overdue = items.filter((l) => l.overdue).length;
    ctx.ui.say(status, `${items.length} on loan${overdue ? `, ${overdue} overdue` : ''}.`, overdue ? 'error' : 'info');
    if (holdResult.ok && Array.isArray(holdResult.body)) holds.show(/** @type {Hold[]} */ (holdResult.body));
    else ctx.ui.say(status, `Holds: ${ctx.ui.describe(holdResult)}`, 'error');
  }

  return {
    /** Another reader in the URL. @param {Route} next */
    update(next) {
      route = next;
      const userId = next.params.userId ?? '';
      /** @type {HTMLInputElement} */ (userField.input).value = userId;
      if (userId) void show(userId);
      else results.replaceChildren();
    },
    destroy() {
      controller?.abort();
    },
  };
}
