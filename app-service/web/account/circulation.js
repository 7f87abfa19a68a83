// @ts-check
/**
 * @file Loans and holds as tables, with their actions: renew and return a loan, cancel a
 * hold — each sent with an `Idempotency-Key` kept until an answer came (a retry after a lost
 * answer is applied at most once), each answer said in the row it concerns. Used for the
 * reader's own lists and, at the desk, for a librarian acting on a reader's behalf.
 */

import { refusal } from './reasons.js';

/** @typedef {import('../../../gateway/web/shell/contract.js').Context} Context */
/** @typedef {import('../../../gateway/web/shell/contract.js').ApiResult} ApiResult */

/**
 * @typedef {object} Loan
 * @property {number} id
 * @property {number} book_id
 * @property {number} user_id
 * @property {string} title
 * @property {string} borrowed_at
 * @property {string} due_at
 * @property {number} renewals_left
 * @property {string | null} returned_at
 * @property {boolean} overdue
 */

/**
 * @typedef {object} Hold
 * @property {number} id
 * @property {number} book_id
 * @property {string} title
 * @property {'waiting' | 'ready' | 'fulfilled' | 'cancelled' | 'expired'} state
 * @property {number | null} position
 * @property {string} placed_at
 * @property {string | null} pickup_deadline
 */

/**
 * A refused or failed request in words.
 * @param {Context} ctx
 * @param {ApiResult} result
 */
export function failure(ctx, result) {
  if (result.status === 0 || result.status === 502 || result.status === 504) {
    return 'No answer came. Try again: it will not be done twice.';
  }
  return refusal(result.body) ?? ctx.ui.describe(result);
}

/**
 * One action's requests: `send(key)` with an `Idempotency-Key` kept until a definite answer
 * came, so a retry after a lost answer is the same request.
 * @param {Context} ctx
 * @returns {(send: (key: string) => Promise<ApiResult>) => Promise<ApiResult>}
 */
function keyed(ctx) {
  /** @type {string | null} */
  let key = null;
  return async (send) => {
    key ??= ctx.ui.idempotencyKey();
    const result = await send(key);
    if (result.status !== 0 && result.status !== 502 && result.status !== 504) key = null;
    return result;
  };
}

/**
 * When a loan is due, in words: a date, and a text mark when overdue (never colour alone).
 * @param {Context} ctx
 * @param {Loan} loan
 */
export function due(ctx, loan) {
  const { el } = ctx.ui;
  const days = ctx.ui.daysFromNow(loan.due_at);
  if (loan.returned_at) return el('span', null, 'Returned ', ctx.ui.time(loan.returned_at));
  if (loan.overdue) {
    const late = Math.max(1, -days);
    return el('span', { class: 'due overdue' }, ctx.ui.tag('Overdue', 'danger'), ' ', ctx.ui.time(loan.due_at),
      el('span', { class: 'muted', text: ` (${late} ${late === 1 ? 'day' : 'days'} late)` }));
  }
  const soon = days <= 2;
  return el('span', { class: 'due' }, soon ? ctx.ui.tag('Due soon', 'warning') : null, soon ? ' ' : null, ctx.ui.time(loan.due_at),
    el('span', { class: 'muted', text: days <= 0 ? ' (today)' : ` (in ${days} ${days === 1 ? 'day' : 'days'})` }));
}

/**
 * A table of loans with Renew (when `renew`) and Return in each row.
 * @param {Context} ctx
 * @param {{ caption: string, renew: boolean, empty: string, test: string, onChange?: () => void }} options
 */
export function loanTable(ctx, options) {
  const { el } = ctx.ui;
  const body = el('tbody');
  const table = el('table', { class: 'table loans', data: { test: options.test } },
    el('caption', { class: 'visually-hidden', text: options.caption }),
    el('thead', null, el('tr', null,
      ['Title', 'Borrowed', 'Due', 'Renewals left', 'Actions'].map((h) => el('th', { scope: 'col', text: h })))),
    body);
  const empty = el('p', { class: 'muted', hidden: true, data: { test: `${options.test}-empty` }, text: options.empty });

  /** @param {Loan} loan */
  function row(loan) {
    const dueCell = el('td', { data: { label: 'Due', test: 'loan-due' } }, due(ctx, loan));
    const renewalsCell = el('td', { data: { label: 'Renewals left', test: 'loan-renewals' }, text: String(loan.renewals_left) });
    const status = el('p', { class: 'status row-status', role: 'status', data: { test: 'loan-status' } });
    const actions = el('div', { class: 'actions' });
    const tr = el('tr', { data: { test: 'loan-row', loan: loan.id, overdue: String(loan.overdue) } },
      el('th', { scope: 'row', data: { label: 'Title' } }, ctx.ui.link(`/catalogue/${loan.book_id}`, loan.title)),
      el('td', { data: { label: 'Borrowed' } }, ctx.ui.time(loan.borrowed_at)),
      dueCell,
      renewalsCell,
      el('td', { data: { label: 'Actions' } }, actions, status));

    if (options.renew && !loan.returned_at) {
      const renewSend = keyed(ctx);
      const renew = ctx.ui.button('Renew', () => void ctx.ui.busy(renew, async () => {
        ctx.ui.say(status, '');
        const result = await renewSend((key) => ctx.api(`/loans/${loan.id}/renew`, { method: 'POST', headers: { 'idempotency-key': key } }));
        if (!result.ok) {
          ctx.ui.say(status, failure(ctx, result), 'error');
          return;
        }
        Object.assign(loan, result.body);
        dueCell.replaceChildren(due(ctx, loan));
        renewalsCell.textContent = String(loan.renewals_left);
        tr.dataset.overdue = String(loan.overdue);
        ctx.ui.say(status, `Renewed: now due ${ctx.ui.time(loan.due_at).textContent}.`, 'success');
      }), { class: 'button small', data: { test: 'loan-renew' }, 'aria-label': `Renew: ${loan.title}` });
      actions.append(renew);
    }
    if (!loan.returned_at) {
      const returnSend = keyed(ctx);
      const giveBack = ctx.ui.button('Return', () => void ctx.ui.busy(giveBack, async () => {
        ctx.ui.say(status, '');
        const result = await returnSend((key) => ctx.api(`/loans/${loan.id}/return`, { method: 'POST', headers: { 'idempotency-key': key } }));
        if (!result.ok) {
          ctx.ui.say(status, failure(ctx, result), 'error');
          return;
        }
        Object.assign(loan, result.body);
        dueCell.replaceChildren(due(ctx, loan));
        actions.replaceChildren();
        tr.dataset.returned = 'true';
        tr.dataset.overdue = String(loan.overdue);
        ctx.ui.say(status, 'Returned.', 'success');
        ctx.announce(`${loan.title} returned.`);
        options.onChange?.();
      }), { class: 'button small secondary', data: { test: 'loan-return' }, 'aria-label': `Return: ${loan.title}` });
      actions.append(giveBack);
    }
    return tr;
  }

  return {
    element: el('div', { class: 'table-wrap' }, table, empty),
    /**
     * @param {Loan[]} loans
     * @param {boolean} [append]
     */
    show(loans, append = false) {
      if (!append) body.replaceChildren();
      body.append(...loans.map(row));
      const none = body.children.length === 0;
      table.hidden = none;
      empty.hidden = !none;
    },
  };
}

/**
 * A list of holds with Cancel on each.
 * @param {Context} ctx
 * @param {{ empty: string, test: string }} options
 */
export function holdList(ctx, options) {
  const { el } = ctx.ui;
  const list = el('ul', { class: 'plain-list holds', data: { test: options.test } });
  const empty = el('p', { class: 'muted', hidden: true, data: { test: `${options.test}-empty` }, text: options.empty });

  /** @param {Hold} hold */
  function item(hold) {
    const status = el('p', { class: 'status row-status', role: 'status', data: { test: 'hold-status' } });
    const where = hold.state === 'ready'
      ? el('p', null, ctx.ui.tag('Ready for pickup', 'success'), ' Set aside for you until ', ctx.ui.time(hold.pickup_deadline, { withTime: true }), '.')
      : el('p', null, ctx.ui.tag('Waiting', 'neutral'), ' ',
        hold.position ? `Number ${hold.position} in the queue.` : 'In the queue.');
    const li = el('li', { class: 'card hold', data: { test: 'hold-row', hold: hold.id, state: hold.state } },
      el('h3', null, ctx.ui.link(`/catalogue/${hold.book_id}`, hold.title)),
      where,
      el('p', { class: 'muted' }, 'Placed ', ctx.ui.time(hold.placed_at)),
      el('div', { class: 'actions' }),
      status);
    const cancelSend = keyed(ctx);
    const cancel = ctx.ui.button('Cancel hold', () => void ctx.ui.busy(cancel, async () => {
      ctx.ui.say(status, '');
      const result = await cancelSend((key) => ctx.api(`/holds/${hold.id}`, { method: 'DELETE', headers: { 'idempotency-key': key } }));
      if (!result.ok) {
        ctx.ui.say(status, failure(ctx, result), 'error');
        return;
      }
      li.dataset.state = 'cancelled';
      where.replaceChildren(ctx.ui.tag('Cancelled', 'neutral'));
      cancel.remove();
      ctx.ui.say(status, 'Hold cancelled.', 'success');
      ctx.announce(`Hold on ${hold.title} cancelled.`);
    }), { class: 'button small danger', data: { test: 'hold-cancel' }, 'aria-label': `Cancel hold: ${hold.title}` });
    li.querySelector('.actions')?.append(cancel);
    return li;
  }

  return {
    element: el('div', null, list, empty),
    /** @param {Hold[]} holds */
    show(holds) {
      list.replaceChildren(...holds.map(item));
      list.hidden = holds.length === 0;
      empty.hidden = holds.length !== 0;
    },
  };
}
