// @ts-check
/**
 * @file The session as the UI knows it: who is signed in (from `GET /auth/me/`, the server's
 * word — never a guess from a token's expiry), the CSRF token (the script-readable
 * `platform_csrf` cookie; the access token itself is `HttpOnly`), and sign-out
 * (`DELETE /auth/session`, which ends the session on the server).
 */

/** @typedef {import('./contract.js').Api} Api */
/** @typedef {import('./contract.js').Role} Role */
/** @typedef {import('./contract.js').Session} Session */
/** @typedef {import('./contract.js').User} User */

/** Role ranks: each includes the ones below. */
const RANK = { user: 1, librarian: 2, admin: 3 };

/**
 * A user from an API answer (`/auth/me/` or `/auth/session`); `null` when it is not one.
 * @param {any} raw
 * @returns {User | null}
 */
export function toUser(raw) {
  if (!raw || typeof raw.id !== 'number' || typeof raw.username !== 'string') return null;
  const role = raw.role === 'librarian' || raw.role === 'admin' ? raw.role : 'user';
  return { id: raw.id, username: raw.username, email: String(raw.email ?? ''), role };
}

/**
 * The value of a cookie this page may read.
 * @param {string} name
 */
export function readCookie(name) {
  for (const pair of document.cookie.split(';')) {
    const [key, ...rest] = pair.trim().split('=');
    if (key !== name) continue;
    try {
      return decodeURIComponent(rest.join('='));
    } catch {
      return rest.join('=');
    }
  }
  return '';
}

/**
 * @typedef {Session & {
 *   load: () => Promise<'signed-in' | 'signed-out' | 'unreachable'>,
 *   ended: () => void,
 *   csrfToken: () => string,
 * }} ShellSession
 */

/**
 * @param {() => Api} api The API (created after the session, which it needs).
 * @returns {ShellSession}
 */
export function createSession(api) {
  /** @type {Set<(user: User | null) => void>} */
  const listeners = new Set();
  /** @type {User | null} */
  let user = null;

  /** @param {User | null} next */
  function set(next) {
    const changed = JSON.stringify(next) !== JSON.stringify(user);
    user = next;
    if (changed) for (const listener of [...listeners]) listener(user);
  }

  return {
    get user() {
      return user;
    },
    can(role) {
      return user !== null && RANK[user.role] >= RANK[role];
    },
    onChange(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    signedIn(next) {
      set(next);
    },
    async signOut() {
      const result = await api()('/auth/session', { method: 'DELETE', allow401: true });
      // 401: it had ended already. Anything else but success: it may still be live, and
      // the user must know it.
      if (!result.ok && result.status !== 401) return false;
      set(null);
      return true;
    },
    async load() {
      const result = await api()('/auth/me/', { allow401: true });
      if (result.ok) {
        set(toUser(result.body));
        return user ? 'signed-in' : 'unreachable';
      }
      if (result.status === 401) {
        set(null);
        return 'signed-out';
      }
      return 'unreachable';
    },
    ended() {
      set(null);
    },
    csrfToken() {
      return readCookie('platform_csrf');
    },
  };
}
