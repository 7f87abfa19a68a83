// @ts-check
/**
 * @file The catalogue area (served by book-service): search as you type with availability,
 * a title's page with Borrow and Place hold, and for librarians adding and editing titles
 * and copies. Mounted by the shell; see the contract in gateway/web/shell/contract.js.
 */

import { bookScreen } from './book.js';
import { newTitleScreen } from './editor.js';
import { searchScreen } from './search.js';

/** @typedef {import('../../../gateway/web/shell/contract.js').Context} Context */
/** @typedef {import('../../../gateway/web/shell/contract.js').Route} Route */
/** @typedef {{ destroy?: () => void, update?: (route: Route) => void }} Screen */

/** @type {Record<string, (root: HTMLElement, ctx: Context, route: Route) => Screen>} */
const SCREENS = {
  search: searchScreen,
  book: bookScreen,
  new: newTitleScreen,
};

/** @type {{ root: HTMLElement, ctx: Context, name: string, screen: Screen } | null} */
let state = null;

/**
 * @param {HTMLElement} element
 * @param {Context} context
 */
export function mount(element, context) {
  element.classList.add('catalogue-area');
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
  // The same screen with another query (the search's own URL updates): no new screen.
  if (route.screen === state.name && state.screen.update) {
    state.screen.update(route);
    return;
  }
  state.screen.destroy?.();
  state.root.replaceChildren();
  const screen = SCREENS[route.screen];
  if (!screen) throw new Error(`the catalogue has no screen ${route.screen}`);
  state.name = route.screen;
  state.screen = screen(state.root, state.ctx, route);
}
