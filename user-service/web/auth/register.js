// @ts-check
/**
 * @file Create an account: username, email and password — no role (every account starts as
 * a reader; only an admin grants more). Each error is shown under its field: the 422 `loc`,
 * a taken username or email (409) under that field. Then the new account is logged in.
 */

import { afterLogin, asUser } from './user.js';

/** @typedef {import('../../../gateway/web/shell/contract.js').Context} Context */
/** @typedef {import('../../../gateway/web/shell/contract.js').Route} Route */

/**
 * @param {HTMLElement} root
 * @param {Context} ctx
 * @param {Route} route
 */
export function registerScreen(root, ctx, route) {
  const { el, field } = ctx.ui;
  const next = route.query.get('next');
  const form = ctx.ui.form({ name: 'register', submit: 'Create account', label: 'Create an account', onSubmit: submit },
    field({ name: 'username', label: 'Username', autocomplete: 'username', required: true, maxlength: 32,
      hint: '3 to 32 characters: letters, digits, and . _ -' }).wrapper,
    field({ name: 'email', label: 'Email', type: 'email', autocomplete: 'email', required: true }).wrapper,
    field({ name: 'password', label: 'Password', type: 'password', autocomplete: 'new-password', required: true,
      hint: '8 to 128 characters. A few unrelated words make a strong one.' }).wrapper,
    field({ name: 'confirm', label: 'Repeat the password', type: 'password', autocomplete: 'new-password', required: true }).wrapper);
  const loginHref = next ? `/login?next=${encodeURIComponent(next)}` : '/login';
  root.append(
    ctx.ui.heading('Create an account'),
    el('p', { class: 'muted', text: 'New accounts are reader accounts. Librarians are appointed by an administrator.' }),
    form,
    el('p', { class: 'aside' }, 'Already registered? ', ctx.ui.link(loginHref, 'Log in', { data: { test: 'to-login' } }), '.'));

  /**
   * @param {HTMLFormElement} form
   * @param {HTMLButtonElement} button
   */
  async function submit(form, button) {
    ctx.ui.clearErrors(form);
    const credentials = {
      username: ctx.ui.value(form, 'username').trim(),
      email: ctx.ui.value(form, 'email').trim(),
      password: ctx.ui.value(form, 'password'),
    };
    if (credentials.password !== ctx.ui.value(form, 'confirm')) {
      ctx.ui.fieldError(form, 'confirm', 'The two passwords differ.');
      const confirm = form.querySelector('[data-field="confirm"] input');
      if (confirm instanceof HTMLInputElement) confirm.focus();
      return;
    }
    const created = await ctx.api('/auth/register/', { method: 'POST', json: credentials });
    if (!created.ok) {
      const detail = String(created.body?.detail ?? '');
      const field = created.status === 409 ? (/email/i.test(detail) ? 'email' : 'username') : undefined;
      ctx.ui.showErrors(form, created, { field });
      if (created.status === 429) ctx.ui.lock(button, ctx.ui.retryAfter(created));
      return;
    }
    // The account exists: open its session.
    const session = await ctx.api('/auth/session', {
      method: 'POST',
      json: { username: credentials.username, password: credentials.password },
      allow401: true,
    });
    const user = session.ok ? asUser(session.body?.user) : null;
    if (!user) {
      ctx.navigate(`/login?registered=1${next ? `&next=${encodeURIComponent(next)}` : ''}`);
      return;
    }
    ctx.session.signedIn(user);
    ctx.announce(`Welcome, ${user.username}. Your account is ready.`);
    ctx.navigate(afterLogin(next));
  }

  return {};
}
