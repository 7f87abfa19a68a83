// @ts-check
/**
 * @file Who am I: the account as the server knows it (`GET /auth/me/`), and logging out of
 * this session (`DELETE /auth/session`) or of every session (`POST /auth/logout-all`).
 */

import { asUser, ROLE_NAMES } from './user.js';

/** @typedef {import('../../../gateway/web/shell/contract.js').Context} Context */

/**
 * @param {HTMLElement} root
 * @param {Context} ctx
 */
export function profileScreen(root, ctx) {
  const { el } = ctx.ui;
  const facts = el('div', { class: 'card', 'aria-busy': 'true', data: { test: 'profile' } },
    el('p', { class: 'loading', text: 'Loading your account…' }));
  const status = ctx.ui.status('profile-status');
  const logOut = ctx.ui.button('Log out', () => void ctx.ui.busy(logOut, endThis), { class: 'button primary', data: { test: 'profile-logout' } });
  const logOutAll = ctx.ui.button('Log out everywhere', () => void ctx.ui.busy(logOutAll, endAll), { class: 'button danger', data: { test: 'profile-logout-all' } });
  root.append(
    ctx.ui.heading('Your account'),
    facts,
    el('h2', { text: 'Sessions' }),
    el('p', { class: 'muted', text: 'Logging out everywhere ends every session of your account, on every device.' }),
    el('div', { class: 'actions' }, logOut, logOutAll),
    status);
  void load();

  async function load() {
    const result = await ctx.api('/auth/me/');
    facts.removeAttribute('aria-busy');
    const me = result.ok ? asUser(result.body) : null;
    if (!me) {
      facts.replaceChildren(el('p', { class: 'status', data: { tone: 'error' }, text: ctx.ui.describe(result) }));
      return;
    }
    // `/auth/me/` may predate roles: the session's role is the one the shell knows.
    const role = result.body?.role ? me.role : (ctx.session.user?.role ?? me.role);
    facts.replaceChildren(el('dl', { class: 'facts' },
      el('dt', { text: 'Username' }), el('dd', { data: { test: 'profile-username' }, text: me.username }),
      el('dt', { text: 'Email' }), el('dd', { data: { test: 'profile-email' }, text: me.email }),
      el('dt', { text: 'Role' }), el('dd', { data: { test: 'profile-role' }, text: ROLE_NAMES[role] }),
      el('dt', { text: 'Account number' }), el('dd', { data: { test: 'profile-id' }, text: String(me.id) })));
  }

  async function endThis() {
    if (await ctx.session.signOut()) {
      ctx.announce('You are logged out.');
      ctx.navigate('/login');
    } else {
      ctx.ui.say(status, 'You are still logged in: the server could not be reached. Please try again.', 'error');
    }
  }

  async function endAll() {
    const result = await ctx.api('/auth/logout-all', { method: 'POST' });
    if (!result.ok) {
      ctx.ui.say(status, ctx.ui.describe(result), 'error');
      return;
    }
    // Every session ended, this one too: forget it here.
    await ctx.session.signOut();
    ctx.announce(String(result.body?.detail ?? 'You are logged out everywhere.'));
    ctx.navigate('/login');
  }

  return {};
}
