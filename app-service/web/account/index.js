// @ts-check
/**
 * @file The account area (served by app-service): my loans (due dates, overdue marks, renew,
 * return) and holds (queue position, pickup deadline, cancel), my notifications (live, with
 * the unread count), and for librarians the circulation desk (a reader's loans, returned on
 * their behalf). Mounted by the shell; see the contract in gateway/web/shell/contract.js.
 */

import { deskScreen } from './desk.js';
import { loansScreen } from './loans.js';
import { notificationsScreen } from './notifications.js';

/** @typedef {import('../../../gateway/web/shell/contract.js').Context} Context */
/** @typedef {import('../../../gateway/web/shell/contract.js').Route} Route */
/** @typedef {{ destroy?: () => void, update?: (route: Route) => void }} Screen */

/** @type {Record<string, (root: HTMLElement, ctx: Context, route: Route) => Screen>} */
const SCREENS = {
  loans: loansScreen,
  notifications: notificationsScreen,
  desk: deskScreen,
};

/** @type {{ root: HTMLElement, ctx: Context, name: string, screen: Screen } | null} */
let state = null;

/**
 * @param {HTMLElement} element
 * @param {Context} context
 */
export function mount(element, context) {
  element.classList.add('account-area');
  state = { root: element, ctx: context, name: '', screen: {} };
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
  if (route.screen === state.name && state.screen.update) {
    state.screen.update(route);
    return;
  }
  state.screen.destroy?.();
  state.root.replaceChildren();
  const screen = SCREENS[route.screen];
  if (!screen) throw new Error(`the account area has no screen ${route.screen}`);
  state.name = route.screen;
  state.screen = screen(state.root, state.ctx, route);
}
