// @ts-check
/**
 * @file Members, for librarians: the accounts a page at a time (`GET /users/`, following
 * its `Link: rel="next"`), each with a link to their loans at the desk. Admins also grant
 * or revoke the librarian role (`PUT /admin/users/{id}/role`), which ends that member's
 * sessions; an admin's own role changes only with the `set-role` command.
 */

import { ROLE_NAMES } from './user.js';

/** @typedef {import('../../../gateway/web/shell/contract.js').Context} Context */

/**
 * @typedef {object} Member
 * @property {number} id
 * @property {string} username
 * @property {string} email
 * @property {'user' | 'librarian' | 'admin'} role
 * @property {string | null} created_at
 */

const PAGE = 20;

/**
 * @param {HTMLElement} root
 * @param {Context} ctx
 */
export function membersScreen(root, ctx) {
  const { el } = ctx.ui;
  const isAdmin = ctx.session.can('admin');
  /** Where each page seen so far started (`null`: the first). */
  const starts = [/** @type {string | null} */ (`/users/?limit=${PAGE}`)];
  let page = 0;
  /** @type {string | null} */
  let next = null;
  const controller = new AbortController();

  const status = ctx.ui.status('members-status');
  const body = el('tbody');
  const table = el('table', { class: 'table', data: { test: 'members-table' } },
    el('caption', { class: 'visually-hidden', text: 'Members' }),
    el('thead', null, el('tr', null,
      ['Number', 'Username', 'Email', 'Role', 'Joined', 'Actions'].map((h) => el('th', { scope: 'col', text: h })))),
    body);
  const previous = ctx.ui.button('Previous page', () => void go(page - 1), { class: 'button secondary', data: { test: 'members-previous' } });
  const following = ctx.ui.button('Next page', () => void go(page + 1), { class: 'button secondary', data: { test: 'members-next' } });
  const position = el('span', { class: 'muted', 'aria-live': 'polite' });

  ctx.ui.append(root, [
    ctx.ui.heading('Members'),
    isAdmin
      ? el('p', { class: 'muted', text: 'Changing a role signs that member out everywhere; their next login carries the new role.' })
      : null,
    status,
    el('div', { class: 'table-wrap' }, table),
    el('div', { class: 'actions pager' }, previous, position, following),
  ]);
  void go(0);

  /** @param {number} target */
  async function go(target) {
    const path = target < starts.length ? starts[target] : next;
    if (target < 0 || !path) return;
    table.setAttribute('aria-busy', 'true');
    const result = await ctx.api(path, { signal: controller.signal });
    if (result.aborted) return;
    table.removeAttribute('aria-busy');
    if (!result.ok || !Array.isArray(result.body)) {
      ctx.ui.say(status, ctx.ui.describe(result), 'error');
      return;
    }
    ctx.ui.say(status, '');
    page = target;
    starts[page] = path;
    next = ctx.ui.nextLink(result.headers);
    if (next) starts.length = page + 1;
    render(/** @type {Member[]} */ (result.body));
  }

  /** @param {Member[]} members */
  function render(members) {
    body.replaceChildren(...members.map(row));
    if (members.length === 0) {
      body.append(el('tr', null, el('td', { colspan: '6', text: page === 0 ? 'No members yet.' : 'No more members.' })));
    }
    previous.disabled = page === 0;
    following.disabled = !next;
    position.textContent = `Page ${page + 1}`;
  }

  /** @param {Member} member */
  function row(member) {
    const roleCell = el('td', { data: { label: 'Role', test: 'member-role' } }, ctx.ui.tag(ROLE_NAMES[member.role] ?? member.role));
    const rowStatus = el('span', { class: 'status', role: 'status' });
    const actions = el('td', { data: { label: 'Actions' } },
      el('div', { class: 'actions' },
        ctx.ui.link(`/desk/${member.id}`, 'Loans', { class: 'button small secondary', 'aria-label': `Loans of ${member.username}` }),
        isAdmin ? roleControl(member, roleCell, rowStatus) : null),
      rowStatus);
    return el('tr', { data: { test: 'member-row', member: member.id } },
      el('td', { data: { label: 'Number' }, text: String(member.id) }),
      el('th', { scope: 'row', data: { label: 'Username' }, text: member.username }),
      el('td', { data: { label: 'Email' }, text: member.email }),
      roleCell,
      el('td', { data: { label: 'Joined' } }, ctx.ui.time(member.created_at)),
      actions);
  }

  /**
   * The admin's button that flips reader ↔ librarian.
   * @param {Member} member
   * @param {HTMLElement} roleCell
   * @param {HTMLElement} rowStatus
   */
  function roleControl(member, roleCell, rowStatus) {
    if (member.role === 'admin') return el('span', { class: 'muted', text: 'Admin (set-role command only)' });
    const label = () => (member.role === 'librarian' ? 'Revoke librarian' : 'Make librarian');
    const change = ctx.ui.button(label(), () => void ctx.ui.busy(change, async () => {
      const role = member.role === 'librarian' ? 'user' : 'librarian';
      const result = await ctx.api(`/admin/users/${member.id}/role`, { method: 'PUT', json: { role } });
      if (!result.ok) {
        ctx.ui.say(rowStatus, ctx.ui.describe(result), 'error');
        return;
      }
      member.role = result.body?.role === 'librarian' ? 'librarian' : 'user';
      roleCell.replaceChildren(ctx.ui.tag(ROLE_NAMES[member.role]));
      change.textContent = label();
      change.setAttribute('aria-label', `${label()}: ${member.username}`);
      ctx.ui.say(rowStatus, `${member.username} is now a ${ROLE_NAMES[member.role].toLowerCase()}.`, 'success');
    }), { class: 'button small', data: { test: 'member-role-toggle' }, 'aria-label': `${label()}: ${member.username}` });
    return change;
  }

  return { destroy: () => controller.abort() };
}
