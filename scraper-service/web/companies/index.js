// @ts-check
/**
 * @file The companies area (served by scraper-service): request a company's data by IDNO,
 * watch the scrape job's progress, see the extracted record. Mounted by the shell; see the
 * contract in gateway/web/shell/contract.js.
 */

import { companyScreen } from './company.js';

/** @typedef {import('../../../gateway/web/shell/contract.js').Context} Context */
/** @typedef {import('../../../gateway/web/shell/contract.js').Route} Route */

/** @type {{ root: HTMLElement, ctx: Context, screen: ReturnType<typeof companyScreen> } | null} */
let state = null;

/**
 * @param {HTMLElement} element
 * @param {Context} context
 */
export function mount(element, context) {
  element.classList.add('companies-area');
  state = { root: element, ctx: context, screen: companyScreen(element, context, context.route) };
}

/** @param {Route} route */
export function navigated(route) {
  state?.screen.update(route);
}

export function unmount() {
  state?.screen.destroy();
  state = null;
}
