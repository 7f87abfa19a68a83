// @ts-check
/** @file Reading accounts out of API answers. */

/** @typedef {import('../../../gateway/web/shell/contract.js').User} User */

/**
 * The account in an answer of `POST /auth/session` (`user`) or `GET /auth/me/`; `null` when
 * it is not one. An answer without a role is a reader's.
 * @param {any} raw
 * @returns {User | null}
 */
export function asUser(raw) {
  if (!raw || typeof raw.id !== 'number' || typeof raw.username !== 'string') return null;
  const role = raw.role === 'librarian' || raw.role === 'admin' ? raw.role : 'user';
  return { id: raw.id, username: raw.username, email: String(raw.email ?? ''), role };
}

/** What each role is called. */
export const ROLE_NAMES = { user: 'Reader', librarian: 'Librarian', admin: 'Admin' };

/**
 * A local path to go to after logging in: `next` when it is one of this site's paths, else
 * the catalogue (never another origin).
 * @param {string | null} next
 */
export function afterLogin(next) {
  return next && /^\/(?!\/)/.test(next) && !next.startsWith('/login') && !next.startsWith('/register')
    ? next
    : '/catalogue';
}
