// @ts-check
/**
 * @file Search as you type: `GET /books/?q=…` 250 ms after the last keystroke, the request
 * before it aborted (an old answer never overwrites a newer one); each title with its
 * availability and waiting list; "Show more" follows the `Link: rel="next"` header. The
 * query lives in the URL (`/catalogue?q=…`), so a search can be bookmarked, shared and
 * found again with Back.
 */

import { availability, isBook, waiting } from './book-view.js';

/** @typedef {import('../../../gateway/web/shell/contract.js').Context} Context */
/** @typedef {import('../../../gateway/web/shell/contract.js').Route} Route */
/** @typedef {import('./book-view.js').Book} Book */

const DEBOUNCE_MS = 250;
const PAGE = 20;

/**
 * @param {HTMLElement} root
 * @param {Context} ctx
 * @param {Route} route
 */
export function searchScreen(root, ctx, route) {
  const { el } = ctx.ui;
  /** @type {AbortController | null} */
  let inFlight = null;
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let timer;
  /** @type {string | null} */
  let more = null;
  let shown = 0;

  const query = ctx.ui.field({ name: 'q', label: 'Search by title, author or ISBN', type: 'search',
    value: route.query.get('q') ?? '', autocomplete: 'off', onInput: () => schedule() });
  const available = ctx.ui.field({ name: 'available', label: 'Only titles with a copy on the shelf now', type: 'checkbox',
    checked: route.query.get('available') === 'true', onInput: () => schedule(0) });
  const input = /** @type {HTMLInputElement} */ (query.input);
  const availableOnly = /** @type {HTMLInputElement} */ (available.input);
  input.setAttribute('aria-controls', 'catalogue-results');

  const form = el('form', { role: 'search', class: 'search-form', novalidate: true, data: { test: 'search-form' },
    on: { submit: (/** @type {SubmitEvent} */ event) => { event.preventDefault(); schedule(0); } } },
  query.wrapper, available.wrapper);
  const status = ctx.ui.status('search-status');
  const results = el('ul', { id: 'catalogue-results', class: 'results plain-list', data: { test: 'results' }, 'aria-label': 'Titles found' });
  const moreButton = ctx.ui.button('Show more', () => void ctx.ui.busy(moreButton, () => search(more, true)),
    { class: 'button secondary', hidden: true, data: { test: 'search-more' } });

  ctx.ui.append(root, [
    el('div', { class: 'title-row' },
      ctx.ui.heading('Catalogue'),
      ctx.session.can('librarian') ? ctx.ui.link('/catalogue/new', 'Add a title', { class: 'button secondary', data: { test: 'add-title' } }) : null),
    form,
    status,
    results,
    el('div', { class: 'actions' }, moreButton),
  ]);
  schedule(0);

  /**
   * Searches `delay` ms from now (unless typing goes on).
   * @param {number} [delay]
   */
  function schedule(delay = DEBOUNCE_MS) {
    clearTimeout(timer);
    timer = setTimeout(() => {
      keepInUrl();
      void search(firstPage(), false);
    }, delay);
  }

  function firstPage() {
    const params = new URLSearchParams({ limit: String(PAGE) });
    const q = input.value.trim();
    if (q) params.set('q', q);
    if (availableOnly.checked) params.set('available', 'true');
    return `/books/?${params}`;
  }

  /** The URL says what is searched (replacing the entry: typing is not history). */
  function keepInUrl() {
    const params = new URLSearchParams();
    const q = input.value.trim();
    if (q) params.set('q', q);
    if (availableOnly.checked) params.set('available', 'true');
    const target = `/catalogue${params.size ? `?${params}` : ''}`;
    if (target !== location.pathname + location.search) ctx.navigate(target, { replace: true });
  }

  /**
   * @param {string | null} path
   * @param {boolean} append Add to the titles shown (the next page) rather than replace them.
   */
  async function search(path, append) {
    if (!path) return;
    inFlight?.abort();
    const controller = new AbortController();
    inFlight = controller;
    results.setAttribute('aria-busy', 'true');
    if (!append) ctx.ui.say(status, 'Searching…');
    const result = await ctx.api(path, { signal: controller.signal });
    if (result.aborted || controller !== inFlight) return; // a newer search took over
    inFlight = null;
    results.removeAttribute('aria-busy');
    if (!result.ok || !Array.isArray(result.body)) {
      ctx.ui.say(status, ctx.ui.describe(result), 'error');
      return;
    }
    const books = /** @type {unknown[]} */ (result.body).filter(isBook);
    more = ctx.ui.nextLink(result.headers);
    moreButton.hidden = !more;
    if (!append) {
      results.replaceChildren();
      shown = 0;
    }
    results.append(...books.map(item));
    shown += books.length;
    const q = input.value.trim();
    if (shown === 0) {
      ctx.ui.say(status, q ? `No titles match “${q}”.` : 'The catalogue is empty.');
    } else {
      ctx.ui.say(status, `${shown}${more ? '+' : ''} ${shown === 1 ? 'title' : 'titles'}${q ? ` for “${q}”` : ''}.`);
    }
  }

  /** @param {Book} book */
  function item(book) {
    return el('li', { class: 'result card', data: { test: 'result', book: book.id } },
      el('h2', { class: 'result-title' }, ctx.ui.link(`/catalogue/${book.id}`, book.title, { data: { test: 'result-link' } })),
      el('p', { class: 'result-author', text: book.author }),
      el('p', { class: 'result-meta' },
        availability(ctx.ui, book), ' ',
        el('span', { class: 'muted', data: { test: 'result-waiting' }, text: waiting(book) }), ' ',
        el('span', { class: 'muted isbn', text: `ISBN ${book.isbn}` })));
  }

  return {
    /** Back or Forward to another search: show it. @param {Route} next */
    update(next) {
      const q = next.query.get('q') ?? '';
      const onlyAvailable = next.query.get('available') === 'true';
      if (q === input.value.trim() && onlyAvailable === availableOnly.checked) return;
      input.value = q;
      availableOnly.checked = onlyAvailable;
      void search(firstPage(), false);
    },
    destroy() {
      clearTimeout(timer);
      inFlight?.abort();
    },
  };
}
