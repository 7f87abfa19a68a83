// @ts-check
/**
 * @file Log in: `POST /auth/session` sets the session cookie (the token never reaches a
 * script) and answers the account; the shell is told, then the user goes where they were
 * heading. A wrong password, a throttled login (429, with the wait counted down on the
 * button) or a field error is shown on the form.
 */

import { afterLogin, asUser } from './user.js';

/** @typedef {import('../../../gateway/web/shell/contract.js').Context} Context */
/** @typedef {import('../../../gateway/web/shell/contract.js').Route} Route */

/**
 * @param {HTMLElement} root
 * @param {Context} ctx
 * @param {Route} route
 */
export function loginScreen(root, ctx, route) {
  const { el } = ctx.ui;
  const next = route.query.get('next');
  const username = ctx.ui.field({ name: 'username', label: 'Username or email', autocomplete: 'username', required: true });
  const password = ctx.ui.field({ name: 'password', label: 'Password', type: 'password', autocomplete: 'current-password', required: true });

  const form = ctx.ui.form({ name: 'login', submit: 'Log in', label: 'Log in', onSubmit: submit },
    username.wrapper, password.wrapper);
  const registerHref = next ? `/register?next=${encodeURIComponent(next)}` : '/register';
  ctx.ui.append(root, [
    ctx.ui.heading('Log in'),
    route.query.get('registered')
      ? el('p', { class: 'status', role: 'status', data: { tone: 'success', test: 'registered' }, text: 'Your account is ready. Please log in.' })
      : null,
    form,
    el('p', { class: 'aside' }, 'New here? ', ctx.ui.link(registerHref, 'Create an account', { data: { test: 'to-register' } }), '.'),
  ]);

  /**
   * @param {HTMLFormElement} form
   * @param {HTMLButtonElement} button
   */
  async function submit(form, button) {
    ctx.ui.clearErrors(form);
    const result = await ctx.api('/auth/session', {
      method: 'POST',
      json: { username: ctx.ui.value(form, 'username'), password: ctx.ui.value(form, 'password') },
      allow401: true,
    });
    const user = result.ok ? asUser(result.body?.user) : null;
    if (user) {
      ctx.session.signedIn(user);
      ctx.announce(`Logged in as ${user.username}.`);
      ctx.navigate(afterLogin(next));
      return;
    }
    if (result.ok) {
      ctx.ui.formError(form, 'The server answered without an account. Please try again.');
      return;
    }
    ctx.ui.showErrors(form, result);
    if (result.status === 429) ctx.ui.lock(button, ctx.ui.retryAfter(result));
    if (result.status === 401) {
      /** @type {HTMLInputElement} */ (password.input).value = '';
    }
  }

  return {};
}
