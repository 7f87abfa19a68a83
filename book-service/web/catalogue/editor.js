// @ts-check
/**
 * @file Librarians' forms: a new title (`POST /books/` with `title`, `author`, `isbn`,
 * `copies` — the API's own names), editing one (`PATCH /books/{id}` with the changed fields
 * only) and adding copies (`POST /books/{id}/copies`). Each error is shown under its field;
 * an ISBN already catalogued (409) under the ISBN.
 */

import { isBook } from './book-view.js';

/** @typedef {import('../../../gateway/web/shell/contract.js').Context} Context */
/** @typedef {import('../../../gateway/web/shell/contract.js').ApiResult} ApiResult */
/** @typedef {import('./book-view.js').Book} Book */

const ISBN_HINT = 'ISBN-10 or ISBN-13; hyphens and spaces are fine.';

/**
 * The title, author and ISBN fields, filled with `book` when editing.
 * @param {Context} ctx
 * @param {Book} [book]
 */
function titleFields(ctx, book) {
  return [
    ctx.ui.field({ name: 'title', label: 'Title', required: true, maxlength: 500, value: book?.title }).wrapper,
    ctx.ui.field({ name: 'author', label: 'Author', required: true, maxlength: 300, value: book?.author }).wrapper,
    ctx.ui.field({ name: 'isbn', label: 'ISBN', required: true, hint: ISBN_HINT, value: book?.isbn, inputmode: 'numeric' }).wrapper,
  ];
}

/**
 * Shows a failed save on `form`: a duplicate ISBN under the ISBN, the rest where it belongs.
 * @param {Context} ctx
 * @param {HTMLFormElement} form
 * @param {ApiResult} result
 */
function showSaveErrors(ctx, form, result) {
  ctx.ui.showErrors(form, result, { field: result.status === 409 ? 'isbn' : undefined });
}

/**
 * `/catalogue/new`.
 * @param {HTMLElement} root
 * @param {Context} ctx
 */
export function newTitleScreen(root, ctx) {
  const { el } = ctx.ui;
  const form = ctx.ui.form({ name: 'new-title', submit: 'Add title', label: 'New title', onSubmit: submit },
    ...titleFields(ctx),
    ctx.ui.field({ name: 'copies', label: 'Copies', type: 'number', value: 1, min: 1, max: 100, inputmode: 'numeric',
      hint: 'How many copies to put on the shelf (1 to 100).' }).wrapper);
  root.append(
    ctx.ui.heading('Add a title'),
    el('p', null, ctx.ui.link('/catalogue', '← Back to the catalogue')),
    form);

  /** @param {HTMLFormElement} form */
  async function submit(form) {
    const copiesText = ctx.ui.value(form, 'copies').trim();
    const copies = Number(copiesText);
    if (!Number.isInteger(copies)) {
      ctx.ui.clearErrors(form);
      ctx.ui.fieldError(form, 'copies', 'Enter a whole number of copies.');
      return;
    }
    const result = await ctx.api('/books/', {
      method: 'POST',
      json: {
        title: ctx.ui.value(form, 'title'),
        author: ctx.ui.value(form, 'author'),
        isbn: ctx.ui.value(form, 'isbn'),
        copies,
      },
    });
    if (!result.ok || !isBook(result.body)) {
      showSaveErrors(ctx, form, result);
      return;
    }
    ctx.announce(`Added “${result.body.title}” with ${result.body.copies_total} ${result.body.copies_total === 1 ? 'copy' : 'copies'}.`);
    ctx.navigate(`/catalogue/${result.body.id}?added=1`);
  }

  return {};
}

/**
 * The librarian's part of a title's page: edit it, add copies.
 * @param {Context} ctx
 * @param {Book} book
 * @param {(book: Book) => void} changed Called with the title's new state.
 */
export function librarianTools(ctx, book, changed) {
  const { el } = ctx.ui;
  const editStatus = ctx.ui.status('edit-status');
  const edit = ctx.ui.form({ name: 'edit-title', submit: 'Save changes', label: 'Edit this title', buttonClass: 'button secondary', onSubmit: save },
    ...titleFields(ctx, book));
  const copiesStatus = ctx.ui.status('copies-status');
  const copies = ctx.ui.form({ name: 'add-copies', submit: 'Add copies', label: 'Add copies', buttonClass: 'button secondary', onSubmit: addCopies },
    ctx.ui.field({ name: 'count', label: 'Copies to add', type: 'number', value: 1, min: 1, max: 100, inputmode: 'numeric' }).wrapper);

  /** @param {HTMLFormElement} form */
  async function save(form) {
    ctx.ui.say(editStatus, '');
    /** @type {Record<string, string>} */
    const changes = {};
    for (const name of /** @type {const} */ (['title', 'author', 'isbn'])) {
      const now = ctx.ui.value(form, name);
      if (now.trim() !== String(book[name]).trim()) changes[name] = now;
    }
    if (Object.keys(changes).length === 0) {
      ctx.ui.clearErrors(form);
      ctx.ui.say(editStatus, 'Nothing changed.');
      return;
    }
    const result = await ctx.api(`/books/${book.id}`, { method: 'PATCH', json: changes });
    if (!result.ok || !isBook(result.body)) {
      showSaveErrors(ctx, form, result);
      return;
    }
    ctx.ui.clearErrors(form);
    book = result.body;
    changed(book);
    // The ISBN comes back normalised (ISBN-13, digits only).
    const isbn = form.elements.namedItem('isbn');
    if (isbn instanceof HTMLInputElement) isbn.value = book.isbn;
    ctx.ui.say(editStatus, 'Saved.', 'success');
  }

  /** @param {HTMLFormElement} form */
  async function addCopies(form) {
    ctx.ui.say(copiesStatus, '');
    const count = Number(ctx.ui.value(form, 'count').trim());
    if (!Number.isInteger(count)) {
      ctx.ui.clearErrors(form);
      ctx.ui.fieldError(form, 'count', 'Enter a whole number of copies.');
      return;
    }
    const result = await ctx.api(`/books/${book.id}/copies`, { method: 'POST', json: { count } });
    if (!result.ok || !isBook(result.body)) {
      ctx.ui.showErrors(form, result);
      return;
    }
    ctx.ui.clearErrors(form);
    book = result.body;
    changed(book);
    ctx.ui.say(copiesStatus, `Added. The library now has ${book.copies_total} ${book.copies_total === 1 ? 'copy' : 'copies'}.`, 'success');
  }

  return el('section', { class: 'librarian-tools', 'aria-labelledby': 'librarian-tools-heading', data: { test: 'librarian-tools' } },
    el('h2', { id: 'librarian-tools-heading', text: 'Librarian' }),
    el('div', { class: 'tool-grid' },
      el('div', { class: 'card' }, el('h3', { text: 'Edit this title' }), edit, editStatus),
      el('div', { class: 'card' }, el('h3', { text: 'Add copies' }), copies, copiesStatus)));
}
