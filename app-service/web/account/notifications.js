// @ts-check
/**
 * @file My notifications, newest first, the unread ones marked (in text, not only colour),
 * each to be marked read (`POST /notifications/{id}/read`); new ones appear at the top as
 * they arrive on the stream, and the header's unread count follows.
 */

/** @typedef {import('../../../gateway/web/shell/contract.js').Context} Context */
/** @typedef {import('../../../gateway/web/shell/contract.js').Notification} Notification */
/** @typedef {import('../../../gateway/web/shell/contract.js').StreamState} StreamState */

/** @type {Record<StreamState, string>} */
const STREAM = {
  off: 'Live updates are off.',
  connecting: 'Connecting to live updates…',
  open: 'Live: new notifications appear here as they happen.',
  retrying: 'Live updates interrupted; reconnecting…',
};

/**
 * Whether `n` is unread, whichever way the API says it.
 * @param {Notification} n
 */
function unread(n) {
  return typeof n.read === 'boolean' ? !n.read : n.read_at === null || n.read_at === undefined;
}

/**
 * @param {HTMLElement} root
 * @param {Context} ctx
 */
export function notificationsScreen(root, ctx) {
  const { el } = ctx.ui;
  const controller = new AbortController();
  /** A date in the UI's format. @param {unknown} iso */
  const date = (iso) => (typeof iso === 'string' ? ctx.ui.time(iso).textContent ?? '' : '');
  /** @type {Map<string, { n: Notification, li: HTMLLIElement }>} */
  const shown = new Map();
  const live = el('p', { class: 'muted live-state', data: { test: 'stream-state' }, text: STREAM[ctx.events.state()] });
  const status = ctx.ui.status('notifications-status');
  const list = el('ul', { class: 'plain-list notifications', data: { test: 'notifications' }, 'aria-label': 'Notifications, newest first' });
  const markAll = ctx.ui.button('Mark all as read', () => void ctx.ui.busy(markAll, readAll), { class: 'button secondary', data: { test: 'mark-all-read' } });

  root.append(
    el('div', { class: 'title-row' }, ctx.ui.heading('Notifications'), markAll),
    live,
    status,
    list);
  void load();

  async function load() {
    ctx.ui.say(status, 'Loading…');
    const result = await ctx.api('/notifications/', { signal: controller.signal });
    if (result.aborted) return;
    if (!result.ok || !Array.isArray(result.body)) {
      ctx.ui.say(status, ctx.ui.describe(result), 'error');
      return;
    }
    ctx.ui.say(status, '');
    const items = /** @type {Notification[]} */ (result.body);
    list.replaceChildren(...items.map((n) => entry(n, false)));
    counted();
  }

  /**
   * @param {Notification} n
   * @param {boolean} fresh Just arrived on the stream.
   */
  function entry(n, fresh) {
    const key = String(n.id);
    const isUnread = unread(n);
    /** @type {HTMLButtonElement | null} */
    let mark = null;
    if (isUnread) {
      const button = ctx.ui.button('Mark as read', () => void ctx.ui.busy(button, () => markRead(key)),
        { class: 'button small secondary', data: { test: 'mark-read' }, 'aria-label': `Mark as read: ${headline(n)}` });
      mark = button;
    }
    const li = el('li', { class: `card notification${isUnread ? ' unread' : ''}${fresh ? ' fresh' : ''}`, data: { test: 'notification', unread: String(isUnread), id: key } },
      el('p', { class: 'notification-head' },
        isUnread ? ctx.ui.tag('New', 'warning') : null, isUnread ? ' ' : null,
        el('strong', { text: headline(n) }), ' ',
        n.created_at ? el('span', { class: 'muted' }, ctx.ui.time(n.created_at, { withTime: true })) : null),
      details(n, date) ? el('p', { text: details(n, date) }) : null,
      el('div', { class: 'actions' }, mark));
    shown.set(key, { n, li });
    return li;
  }

  /** @param {string} key */
  async function markRead(key) {
    const item = shown.get(key);
    if (!item) return;
    const result = await ctx.api(`/notifications/${encodeURIComponent(key)}/read`, { method: 'POST' });
    if (!result.ok) {
      ctx.ui.say(status, ctx.ui.describe(result), 'error');
      return;
    }
    item.n.read = true;
    item.n.read_at = item.n.read_at ?? new Date().toISOString();
    const replacement = entry(item.n, false);
    item.li.replaceWith(replacement);
    counted();
    replacement.querySelector('strong')?.setAttribute('tabindex', '-1');
    ctx.announce('Marked as read.');
  }

  async function readAll() {
    const pending = [...shown.entries()].filter(([, item]) => unread(item.n)).map(([key]) => key);
    for (const [i, key] of pending.entries()) {
      ctx.ui.say(status, `Marking ${i + 1} of ${pending.length} as read…`);
      await markRead(key);
    }
    ctx.ui.say(status, pending.length ? 'All marked as read.' : 'Nothing unread.', 'success');
  }

  /** The header's count follows the list. */
  function counted() {
    const count = [...shown.values()].filter((item) => unread(item.n)).length;
    ctx.events.setUnread(count);
    markAll.disabled = count === 0;
  }

  const offNotification = ctx.events.on('notification', (n) => {
    if (shown.has(String(n.id))) return;
    list.prepend(entry(n, true));
    counted();
  });
  const offState = ctx.events.on('state', (state) => {
    live.textContent = STREAM[state];
  });

  return {
    destroy() {
      offNotification();
      offState();
      controller.abort();
    },
  };
}

/**
 * A notification's first line.
 * @param {Notification} n
 */
export function headline(n) {
  if (n.title) return n.title;
  const title = typeof n.payload?.title === 'string' ? `“${n.payload.title}”` : 'A title';
  switch (n.kind) {
    case 'hold_ready': return `${title} is ready for you`;
    case 'hold_expired': return `Your hold on ${title} expired`;
    case 'loan_due_soon': return `${title} is due soon`;
    case 'loan_overdue': return `${title} is overdue`;
    default: return n.message ?? n.body ?? 'Notification';
  }
}

/**
 * A notification's text below its first line (none when the first line says it all).
 * @param {Notification} n
 * @param {(iso: unknown) => string} when Formats a date.
 */
export function details(n, when) {
  if (n.title) return n.message ?? n.body ?? '';
  switch (n.kind) {
    case 'hold_ready': return `A copy is set aside for you until ${when(n.payload?.pickup_deadline)}. Borrow it before then.`;
    case 'hold_expired': return 'The copy set aside for you went to the next reader.';
    case 'loan_due_soon': return `Please return or renew it by ${when(n.payload?.due_at)}.`;
    case 'loan_overdue': return 'Please return it. You cannot borrow more while it is overdue.';
    default: return n.message && n.message !== headline(n) ? n.message : '';
  }
}
