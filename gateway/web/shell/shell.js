// @ts-check
/**
 * @file The shell: the page's frame (header with the user, role, unread count, navigation,
 * log-out), the session, routing (History API: every UI path is a real URL the gateway
 * answers with this page), and the areas, loaded at run time from their manifests and
 * mounted into `<main>`. An area that fails to load shows a fallback with "Retry" in its
 * place; the header, the navigation and every other area keep working.
 */

import { createApi } from './api.js';
import { createEvents } from './events.js';
import { loadArea } from './loader.js';
import { AREA_NAMES, match } from './routes.js';
import { createSession } from './session.js';
import * as ui from './ui.js';

/** @typedef {import('./contract.js').Api} Api */
/** @typedef {import('./contract.js').AreaModule} AreaModule */
/** @typedef {import('./contract.js').Context} Context */
/** @typedef {import('./contract.js').Notification} Notification */
/** @typedef {import('./contract.js').Route} Route */
/** @typedef {import('./contract.js').Role} Role */

const { el } = ui;

/**
 * An element of the page that must be there.
 * @param {string} id
 * @returns {HTMLElement}
 */
function must(id) {
  const node = document.getElementById(id);
  if (!node) throw new Error(`#${id} is missing from index.html`);
  return node;
}

const main = must('main');
const navList = must('nav-links');
const nav = must('site-nav');
const menuToggle = must('menu-toggle');
const userBox = must('user-box');
const flashBox = must('flash');
const announcer = must('announcer');

const session = createSession(() => api);
/** @type {Api} */
const api = createApi({ csrfToken: () => session.csrfToken(), onUnauthorized: sessionLost });
const events = createEvents({
  api,
  // The stream was refused: keep retrying unless the session is known to have ended — then
  // it ended elsewhere (logged out everywhere, expired), and the user goes to log in again.
  stillSignedIn: async () => {
    const wasSignedIn = session.user !== null;
    const state = await session.load();
    if (state === 'signed-out' && wasSignedIn) toLogin();
    return state !== 'signed-out';
  },
});

/** @type {{ name: string, module: AreaModule, element: HTMLElement } | null} */
let active = null;
/** Each render's number: a slower, older one gives way. */
let renders = 0;
/** Whether the next render moves focus to the new view (not on first load, not on replace). */
let moveFocus = false;
/** Whether the flash message was set for the coming render (else a render clears it). */
let flashFresh = false;

// ---------------------------------------------------------------------------------------
// Navigation

/**
 * Goes to `path` (a UI path with its query) without a page load. Focus moves to the new
 * view unless the entry is replaced (a search updating its URL as the user types), or
 * `focus` says otherwise.
 * @param {string} path
 * @param {{ replace?: boolean, focus?: boolean }} [options]
 */
function navigate(path, options = {}) {
  const url = new URL(path, location.origin);
  const target = url.pathname + url.search;
  if (url.origin !== location.origin || !match(target)) {
    location.assign(url.href); // not a UI path (e.g. /docs): a real page load
    return;
  }
  if (options.replace) history.replaceState(null, '', target);
  else if (target !== location.pathname + location.search) history.pushState(null, '', target);
  moveFocus = options.focus ?? !options.replace;
  void render();
}

/**
 * A local path from a `?next=` parameter, or the fallback (never another origin).
 * @param {string | null} next
 * @param {string} fallback
 */
function localPath(next, fallback) {
  return next && next.startsWith('/') && !next.startsWith('//') && match(next) ? next : fallback;
}

async function render() {
  const token = ++renders;
  if (flashFresh) flashFresh = false;
  else ui.say(flashBox, '');
  closeMenu();
  const here = location.pathname + location.search;
  const found = match(here);
  markCurrent(found?.def.nav);
  if (!found) {
    show(simpleView('Page not found', 'There is nothing at this address.', 'not-found'), 'Page not found');
    return;
  }
  const { def, route } = found;
  const user = session.user;
  if (def.screen === 'home') {
    navigate(user ? '/catalogue' : '/login', { replace: true });
    return;
  }
  if (def.access === 'guest' && user) {
    navigate(localPath(route.query.get('next'), '/catalogue'), { replace: true });
    return;
  }
  if ((def.access === 'user' || def.access === 'librarian') && !user) {
    navigate(`/login?next=${encodeURIComponent(here)}`, { replace: true });
    return;
  }
  if (def.access === 'librarian' && !session.can('librarian')) {
    show(simpleView('Not allowed', 'This page is for librarians.', 'forbidden'), 'Not allowed');
    return;
  }
  document.title = `${def.title} · Library & Companies`;
  if (def.area) await showArea(def.area, route, token);
}

/**
 * Shows one of the shell's own views in `<main>`.
 * @param {HTMLElement} view
 * @param {string} title
 */
function show(view, title) {
  leaveArea();
  document.title = `${title} · Library & Companies`;
  main.replaceChildren(view);
  settle();
}

/**
 * Shows `area` at `route`: the mounted module when it is the same area, else a freshly
 * loaded one (or the fallback).
 * @param {string} name
 * @param {Route} route
 * @param {number} token
 */
async function showArea(name, route, token) {
  if (active && active.name === name && active.module.navigated) {
    try {
      await active.module.navigated(route);
    } catch (error) {
      failed(name, active.element, error);
    }
    if (token === renders) settle();
    return;
  }
  leaveArea();
  const element = el('div', { class: 'area', 'aria-busy': 'true', data: { area: name } },
    el('p', { class: 'loading', text: 'Loading…' }));
  main.replaceChildren(element);
  try {
    const module = await loadArea(name);
    if (token !== renders) return; // the user moved on meanwhile
    element.replaceChildren();
    element.removeAttribute('aria-busy');
    active = { name, module, element };
    await module.mount(element, context(route));
  } catch (error) {
    if (token !== renders) return;
    failed(name, element, error);
  }
  if (token === renders) settle();
}

/**
 * The area failed (its manifest, its module, or its mount): the fallback in its place.
 * @param {string} name
 * @param {HTMLElement} element
 * @param {unknown} error
 */
function failed(name, element, error) {
  console.error(`the ${name} area failed`, error);
  if (active?.element === element) leaveArea();
  element.removeAttribute('aria-busy');
  const retry = ui.button('Retry', () => {
    moveFocus = true;
    void render();
  }, { class: 'button primary', data: { test: 'area-retry' } });
  element.replaceChildren(el('div', { class: 'area-fallback', role: 'alert', data: { test: 'area-fallback', area: name } },
    el('h1', { tabindex: '-1', text: `${AREA_NAMES[name] ?? 'This part'} is unavailable right now.` }),
    el('p', { text: 'The rest of the site keeps working. Try again in a moment.' }),
    retry));
}

function leaveArea() {
  if (!active) return;
  const { name, module } = active;
  active = null;
  try {
    module.unmount?.();
  } catch (error) {
    console.error(`the ${name} area failed to unmount`, error);
  }
}

/** After a view changed: focus its heading (the screen reader reads where the user is). */
function settle() {
  if (!moveFocus) return;
  moveFocus = false;
  window.scrollTo(0, 0);
  const heading = main.querySelector('h1');
  if (heading instanceof HTMLElement) {
    if (!heading.hasAttribute('tabindex')) heading.setAttribute('tabindex', '-1');
    heading.focus();
  } else {
    main.focus();
  }
}

/**
 * @param {string} title
 * @param {string} text
 * @param {string} test
 */
function simpleView(title, text, test) {
  return el('section', { class: 'simple-view', data: { test } },
    el('h1', { tabindex: '-1', text: title }),
    el('p', { text }),
    el('p', null, ui.link('/', 'Go to the start page')));
}

/**
 * The context an area is mounted with.
 * @param {Route} route
 * @returns {Context}
 */
function context(route) {
  return { session, api, navigate, events, ui, announce, route };
}

// ---------------------------------------------------------------------------------------
// Messages

/**
 * Says `message` to screen readers, politely.
 * @param {string} message
 */
function announce(message) {
  announcer.textContent = '';
  // A new text node after a tick: announced even when it repeats the last message.
  setTimeout(() => {
    announcer.textContent = message;
  }, 60);
}

/**
 * A message above the view, kept for the coming navigation.
 * @param {string} message
 * @param {'success' | 'error' | 'info'} tone
 */
function flash(message, tone) {
  ui.say(flashBox, message, tone);
  flashFresh = true;
}

// ---------------------------------------------------------------------------------------
// Session

/** A request answered 401: the session ended (expired, logged out elsewhere). */
function sessionLost() {
  if (!session.user) return;
  session.ended();
  toLogin();
}

/** To the login screen, saying why, and back here after logging in. */
function toLogin() {
  flash('Your session has ended. Please log in again.', 'info');
  const here = location.pathname + location.search;
  navigate(`/login?next=${encodeURIComponent(here)}`, { replace: true, focus: true });
}

session.onChange((user) => {
  renderHeader();
  if (user) events.start();
  else events.stop();
});

/** @param {HTMLButtonElement} button */
async function logOut(button) {
  await ui.busy(button, async () => {
    if (!(await session.signOut())) {
      flash('You are still logged in: the server could not be reached. Please try again.', 'error');
      flashFresh = false;
      return;
    }
    leaveArea();
    flash('You are logged out.', 'success');
    navigate('/login');
  });
}

// ---------------------------------------------------------------------------------------
// Header

/** @type {Record<Role, string>} */
const ROLE_NAMES = { user: 'Reader', librarian: 'Librarian', admin: 'Admin' };

function renderHeader() {
  const user = session.user;
  /** @type {[string, string, Node?][]} */
  const links = user
    ? [
      ['/catalogue', 'Catalogue'],
      ['/account', 'My loans'],
      ['/account/notifications', 'Notifications', unreadBadge()],
      ['/company', 'Companies'],
      ...(session.can('librarian') ? /** @type {[string, string][]} */ ([['/desk', 'Desk'], ['/members', 'Members']]) : []),
    ]
    : [['/login', 'Log in'], ['/register', 'Register']];
  navList.replaceChildren(...links.map(([href, text, extra]) => el('li', null,
    el('a', { href, data: { nav: href, test: `nav-${href.slice(1).replaceAll('/', '-')}` } }, text, extra ?? null))));
  if (user) {
    const logout = ui.button('Log out', () => void logOut(logout), { class: 'button secondary', data: { test: 'logout' } });
    userBox.replaceChildren(
      el('a', { href: '/profile', class: 'who', data: { test: 'whoami' }, title: user.email },
        el('span', { class: 'who-name', data: { test: 'whoami-name' }, text: user.username }), ' ',
        el('span', { class: 'tag tag-neutral', data: { test: 'whoami-role' }, text: ROLE_NAMES[user.role] })),
      logout);
  } else {
    userBox.replaceChildren();
  }
  markCurrent(match(location.pathname + location.search)?.def.nav);
}

function unreadBadge() {
  const badge = el('span', { class: 'badge', data: { test: 'unread-count' } });
  showUnread(badge, events.unread());
  return badge;
}

/**
 * @param {HTMLElement} badge
 * @param {number} count
 */
function showUnread(badge, count) {
  badge.hidden = count === 0;
  badge.replaceChildren(String(count), el('span', { class: 'visually-hidden', text: ' unread' }));
}

/** @param {string | undefined} nav */
function markCurrent(nav) {
  for (const link of navList.querySelectorAll('a')) {
    if (link.dataset.nav === nav) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
}

events.on('unread', (count) => {
  const badge = navList.querySelector('[data-test="unread-count"]');
  if (badge instanceof HTMLElement) showUnread(badge, count);
});

events.on('notification', (n) => {
  const text = n.title || n.message || n.body;
  announce(text ? `New notification: ${text}` : 'You have a new notification.');
});

function closeMenu() {
  nav.classList.remove('open');
  menuToggle.setAttribute('aria-expanded', 'false');
}

menuToggle.addEventListener('click', () => {
  const open = !nav.classList.contains('open');
  nav.classList.toggle('open', open);
  menuToggle.setAttribute('aria-expanded', String(open));
});

// ---------------------------------------------------------------------------------------
// Links and history

document.addEventListener('click', (event) => {
  if (event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
  const anchor = event.target instanceof Element ? event.target.closest('a[href]') : null;
  if (!(anchor instanceof HTMLAnchorElement) || anchor.target || anchor.hasAttribute('download')) return;
  if (anchor.getAttribute('href') === '#main') {
    // The skip link: focus the content without touching the route.
    event.preventDefault();
    main.focus();
    return;
  }
  if (anchor.origin !== location.origin || !match(anchor.pathname + anchor.search)) return;
  event.preventDefault();
  navigate(anchor.pathname + anchor.search);
});

window.addEventListener('popstate', () => {
  moveFocus = true;
  void render();
});

// A page kept in the back/forward cache must not keep its event stream open: with HTTP/1.1
// each stream holds one of the browser's few connections to this origin.
window.addEventListener('pagehide', () => events.stop());
window.addEventListener('pageshow', (event) => {
  if (event.persisted && session.user) events.start();
});

// ---------------------------------------------------------------------------------------
// Start

async function boot() {
  renderHeader();
  main.replaceChildren(el('p', { class: 'loading', text: 'Loading…' }));
  const state = await session.load();
  if (state === 'unreachable') {
    const retry = ui.button('Try again', () => void boot(), { class: 'button primary', data: { test: 'boot-retry' } });
    main.replaceChildren(el('section', { class: 'simple-view', role: 'alert', data: { test: 'unreachable' } },
      el('h1', { tabindex: '-1', text: 'The server cannot be reached' }),
      el('p', { text: 'Your session could not be checked. Check your connection, then try again.' }),
      retry));
    return;
  }
  await render();
  // The first view is on screen and answers input: what the first-load figures measure
  // (docs/web-ui.md), read from the browser's own performance timeline.
  if (!performance.getEntriesByName('ui-interactive').length) performance.mark('ui-interactive');
}

void boot();
