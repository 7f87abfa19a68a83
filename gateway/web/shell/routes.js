// @ts-check
/**
 * @file The UI's paths: which area shows each, which screen, who may see it. The gateway
 * answers the shell's page for each first segment here (its `SHELL_ROUTES`; a gateway test
 * checks the two agree), so every path is a working deep link. None is an API path.
 */

/** @typedef {import('./contract.js').Route} Route */

/**
 * `guest`: only signed out (signed in, it leads to the catalogue); `user`: signed in;
 * `librarian`: a librarian or an admin.
 * @typedef {'any' | 'guest' | 'user' | 'librarian'} Access
 */

/**
 * @typedef {object} RouteDef
 * @property {string} path `:name` matches one segment.
 * @property {string | null} area
 * @property {string} screen
 * @property {Access} access
 * @property {string} title
 * @property {string} [nav] The navigation entry it belongs to.
 */

/** @type {RouteDef[]} */
export const ROUTES = [
  { path: '/', area: null, screen: 'home', access: 'any', title: 'Home' },
  { path: '/login', area: 'auth', screen: 'login', access: 'guest', title: 'Log in', nav: '/login' },
  { path: '/register', area: 'auth', screen: 'register', access: 'guest', title: 'Create an account', nav: '/register' },
  { path: '/profile', area: 'auth', screen: 'profile', access: 'user', title: 'Your account', nav: '/profile' },
  { path: '/members', area: 'auth', screen: 'members', access: 'librarian', title: 'Members', nav: '/members' },
  { path: '/catalogue', area: 'catalogue', screen: 'search', access: 'user', title: 'Catalogue', nav: '/catalogue' },
  { path: '/catalogue/new', area: 'catalogue', screen: 'new', access: 'librarian', title: 'Add a title', nav: '/catalogue' },
  { path: '/catalogue/:id', area: 'catalogue', screen: 'book', access: 'user', title: 'Title', nav: '/catalogue' },
  { path: '/account', area: 'account', screen: 'loans', access: 'user', title: 'My loans and holds', nav: '/account' },
  { path: '/account/notifications', area: 'account', screen: 'notifications', access: 'user', title: 'Notifications', nav: '/account/notifications' },
  { path: '/desk', area: 'account', screen: 'desk', access: 'librarian', title: 'Circulation desk', nav: '/desk' },
  { path: '/desk/:userId', area: 'account', screen: 'desk', access: 'librarian', title: 'Circulation desk', nav: '/desk' },
  { path: '/company', area: 'companies', screen: 'request', access: 'user', title: 'Company data', nav: '/company' },
  { path: '/company/:idno', area: 'companies', screen: 'record', access: 'user', title: 'Company data', nav: '/company' },
];

/** What the areas are called in messages. @type {Record<string, string>} */
export const AREA_NAMES = {
  auth: 'The account area',
  catalogue: 'The catalogue',
  account: 'Your loans and holds',
  companies: 'The company data area',
};

/**
 * The route of `url` (a path with its query), or `null` when no route matches.
 * @param {string} url
 * @returns {{ route: Route, def: RouteDef } | null}
 */
export function match(url) {
  const parsed = new URL(url, location.origin);
  const path = parsed.pathname.length > 1 ? parsed.pathname.replace(/\/+$/, '') : '/';
  const segments = path.split('/').slice(1);
  for (const def of ROUTES) {
    const parts = def.path.split('/').slice(1);
    if (parts.length !== segments.length) continue;
    /** @type {Record<string, string>} */
    const params = {};
    const matched = parts.every((part, i) => {
      if (part.startsWith(':')) {
        try {
          params[part.slice(1)] = decodeURIComponent(segments[i]);
        } catch {
          return false;
        }
        return segments[i] !== '';
      }
      return part === segments[i];
    });
    if (matched) {
      return { def, route: { path, area: def.area, screen: def.screen, params, query: parsed.searchParams } };
    }
  }
  return null;
}
