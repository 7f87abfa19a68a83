// @ts-check
/**
 * @file A title's page: its availability and waiting list, Borrow (`POST /loans/`) and Place
 * hold (`POST /holds/`, answering the queue position). Each click sends a new
 * `Idempotency-Key`; when no answer came (a lost connection, a timeout), "Try again" resends
 * the same key, so the loan or hold is never made twice. A refusal is said in words where
 * the buttons are. Librarians also edit the title and add copies here.
 */

import { availability, isBook, waiting } from './book-view.js';
import { librarianTools } from './editor.js';
import { refusal } from './reasons.js';

/** @typedef {import('../../../gateway/web/shell/contract.js').Context} Context */
/** @typedef {import('../../../gateway/web/shell/contract.js').Route} Route */
/** @typedef {import('../../../gateway/web/shell/contract.js').ApiResult} ApiResult */
/** @typedef {import('./book-view.js').Book} Book */

/**
 * @param {HTMLElement} root
 * @param {Context} ctx
 * @param {Route} route
 */
export function bookScreen(root, ctx, route) {
  const { el } = ctx.ui;
  const controller = new AbortController();
  const id = route.params.id;
  const view = el('div', { class: 'book', 'aria-busy': 'true', data: { test: 'book' } },
    el('h1', { tabindex: '-1', text: 'Title' }),
    el('p', { class: 'loading', text: 'Loading…' }));
  root.append(el('p', { class: 'back' }, ctx.ui.link('/catalogue', '← Back to the catalogue')), view);
  void load();

  async function load() {
    const result = /^[1-9][0-9]*$/.test(id)
      ? await ctx.api(`/books/${id}`, { signal: controller.signal })
      : { status: 404, ok: false, aborted: false, body: null, headers: new Headers() };
    if (result.aborted) return;
    view.removeAttribute('aria-busy');
    if (!result.ok || !isBook(result.body)) {
      const missing = result.status === 404;
      view.replaceChildren();
      ctx.ui.append(view, [
        el('h1', { tabindex: '-1', text: missing ? 'No such title' : 'This title cannot be shown' }),
        el('p', { class: 'status', data: { tone: 'error', test: 'book-error' },
          text: missing ? 'The catalogue has no title at this address.' : ctx.ui.describe(result) }),
        missing ? null : ctx.ui.button('Try again', () => void load(), { class: 'button primary' }),
      ]);
      view.querySelector('h1')?.focus();
      return;
    }
    render(result.body);
    if (route.query.get('added')) ctx.ui.say(/** @type {HTMLElement} */ (view.querySelector('[data-test="circulation-status"]')), 'Title added to the catalogue.', 'success');
  }

  /** @param {Book} book */
  function render(book) {
    const figures = el('div', { class: 'figures', data: { test: 'book-figures' } });
    const showFigures = (/** @type {Book} */ b) => figures.replaceChildren(
      el('p', null, availability(ctx.ui, b), ' ', el('span', { data: { test: 'book-waiting' }, text: waiting(b) })),
      el('p', { class: 'muted', text: `${b.copies_total} ${b.copies_total === 1 ? 'copy' : 'copies'} in the library` }));
    showFigures(book);
    const heading = el('h1', { tabindex: '-1', data: { test: 'book-title' }, text: book.title });
    const author = el('p', { class: 'book-author', text: `by ${book.author}` });
    const isbn = el('p', { class: 'muted', text: `ISBN ${book.isbn}` });
    const status = el('p', { class: 'status', role: 'status', data: { test: 'circulation-status' } });
    const borrow = circulationButton('Borrow', 'borrow', (key) => borrowIt(book, status, key), () => void refresh());
    const hold = circulationButton('Place hold', 'place-hold', (key) => holdIt(book, status, key), () => void refresh());
    // The likely action first, and the prominent one.
    borrow.classList.toggle('primary', book.copies_available > 0);
    hold.classList.toggle('primary', book.copies_available === 0);

    /** @param {Book} next */
    const changed = (next) => {
      book = next;
      heading.textContent = next.title;
      author.textContent = `by ${next.author}`;
      isbn.textContent = `ISBN ${next.isbn}`;
      showFigures(next);
    };
    view.replaceChildren(
      heading, author, isbn, figures,
      el('div', { class: 'actions circulation' }, borrow, hold),
      status,
      ctx.session.can('librarian') ? librarianTools(ctx, book, changed) : '');

    /** After a loan or a hold, the figures changed: read them again. */
    async function refresh() {
      const again = await ctx.api(`/books/${book.id}`, { signal: controller.signal });
      if (again.ok && isBook(again.body)) changed(again.body);
    }
  }

  /**
   * A button whose request keeps its `Idempotency-Key` until an answer came: a click after
   * a lost answer resends the same request, which the server applies at most once.
   * @param {string} text
   * @param {string} test
   * @param {(key: string) => Promise<ApiResult>} act
   * @param {() => void} done Called after a success.
   */
  function circulationButton(text, test, act, done) {
    /** @type {string | null} */
    let key = null;
    const button = ctx.ui.button(text, () => void ctx.ui.busy(button, async () => {
      key ??= ctx.ui.idempotencyKey();
      const result = await act(key);
      if (result.aborted) return;
      const answered = result.status !== 0 && result.status !== 502 && result.status !== 504;
      if (answered) key = null;
      button.textContent = answered ? text : `Try again: ${text.toLowerCase()}`;
      if (result.ok) done();
    }), { class: 'button', data: { test } });
    return button;
  }

  /**
   * @param {Book} book
   * @param {HTMLElement} status
   * @param {string} key
   */
  async function borrowIt(book, status, key) {
    ctx.ui.say(status, 'Borrowing…');
    const result = await ctx.api('/loans/', {
      method: 'POST',
      json: { book_id: book.id },
      headers: { 'idempotency-key': key },
      signal: controller.signal,
    });
    if (result.aborted) return result;
    if (result.ok) {
      const due = result.body?.due_at ? ctx.ui.time(result.body.due_at).textContent : null;
      ctx.ui.say(status, `Borrowed. ${due ? `Please return it by ${due}.` : ''}`, 'success');
      status.append(' ', ctx.ui.link('/account', 'See your loans'));
      ctx.announce(`You borrowed ${book.title}.`);
    } else {
      ctx.ui.say(status, refused(result), 'error');
    }
    return result;
  }

  /**
   * @param {Book} book
   * @param {HTMLElement} status
   * @param {string} key
   */
  async function holdIt(book, status, key) {
    ctx.ui.say(status, 'Placing a hold…');
    const result = await ctx.api('/holds/', {
      method: 'POST',
      json: { book_id: book.id },
      headers: { 'idempotency-key': key },
      signal: controller.signal,
    });
    if (result.aborted) return result;
    if (result.ok) {
      const hold = result.body ?? {};
      if (hold.state === 'ready') {
        const until = hold.pickup_deadline ? ctx.ui.time(hold.pickup_deadline).textContent : null;
        ctx.ui.say(status, `A copy is set aside for you${until ? ` until ${until}` : ''}. Borrow it before then.`, 'success');
      } else {
        const position = Number(hold.position);
        ctx.ui.say(status, Number.isFinite(position) && position > 0
          ? `Hold placed. You are number ${position} in the queue.`
          : 'Hold placed.', 'success');
      }
      status.append(' ', ctx.ui.link('/account', 'See your holds'));
    } else {
      ctx.ui.say(status, refused(result), 'error');
    }
    return result;
  }

  /** @param {ApiResult} result */
  function refused(result) {
    if (result.status === 504 || result.status === 502) return 'No answer in time. Try again: it will not be done twice.';
    if (result.status === 0) return 'The server could not be reached. Try again: it will not be done twice.';
    return refusal(result.body) ?? ctx.ui.describe(result);
  }

  return { destroy: () => controller.abort() };
}
