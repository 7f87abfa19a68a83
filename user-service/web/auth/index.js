// @ts-check
/**
 * @file The auth area (served by user-service): log in, create an account, who am I and
 * log out, and for librarians the members list (admins also grant or revoke the librarian
 * role). Mounted by the shell; see the contract in gateway/web/shell/contract.js.
 */

import { loginScreen } from './login.js';
import { membersScreen } from './members.js';
import { profileScreen } from './profile.js';
import { registerScreen } from './register.js';

/** @typedef {import('../../../gateway/web/shell/contract.js').Context} Context */
/** @typedef {import('../../../gateway/web/shell/contract.js').Route} Route */
/** @typedef {{ destroy?: () => void }} Screen */

/** @type {Record<string, (root: HTMLElement, ctx: Context, route: Route) => Screen>} */
const SCREENS = {
  login: loginScreen,
  register: registerScreen,
  profile: profileScreen,
  members: membersScreen,
};

/** @type {{ root: HTMLElement, ctx: Context, screen: Screen } | null} */
let state = null;

/**
 * @param {HTMLElement} element
 * @param {Context} context
 */
export function mount(element, context) {
  element.classList.add('auth-area');
  state = { root: element, ctx: context, screen: {} };
  show(context.route);
}

/** @param {Route} route */
export function navigated(route) {
  show(route);
}

export function unmount() {
  state?.screen.destroy?.();
  state = null;
}

/** @param {Route} route */
function show(route) {
  if (!state) return;
  state.screen.destroy?.();
  state.root.replaceChildren();
  const screen = SCREENS[route.screen];
  if (!screen) throw new Error(`the auth area has no screen ${route.screen}`);
  state.screen = screen(state.root, state.ctx, route);
}
