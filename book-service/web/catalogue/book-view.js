// @ts-check
/** @file A title as the catalogue shows it, in search results and on its page. */

/** @typedef {import('../../../gateway/web/shell/contract.js').Ui} Ui */

/**
 * A title with its circulation figures (`GET /books/…`).
 * @typedef {object} Book
 * @property {number} id
 * @property {string} title
 * @property {string} author
 * @property {string} isbn
 * @property {number} copies_total
 * @property {number} copies_available
 * @property {number} holds_waiting
 */

/**
 * The availability of `book` in words, as a tag (never colour alone).
 * @param {Ui} ui
 * @param {Book} book
 */
export function availability(ui, book) {
  if (book.copies_total === 0) return ui.tag('No copies', 'neutral');
  if (book.copies_available > 0) {
    return ui.tag(`${book.copies_available} of ${book.copies_total} available`, 'success');
  }
  return ui.tag(`All ${book.copies_total} on loan`, 'warning');
}

/**
 * The waiting list in words.
 * @param {Book} book
 */
export function waiting(book) {
  if (book.holds_waiting === 0) return 'No one waiting';
  return `${book.holds_waiting} ${book.holds_waiting === 1 ? 'reader' : 'readers'} waiting`;
}

/**
 * Whether an API body is a title.
 * @param {any} raw
 * @returns {raw is Book}
 */
export function isBook(raw) {
  return !!raw && typeof raw.id === 'number' && typeof raw.title === 'string';
}
