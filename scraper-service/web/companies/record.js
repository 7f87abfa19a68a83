// @ts-check
/** @file A company record as Transform extracted it (`CompanyRecord`). */

/** @typedef {import('../../../gateway/web/shell/contract.js').Context} Context */

/**
 * @typedef {object} CompanyRecord
 * @property {string} idno
 * @property {string | null} company_name
 * @property {string | null} legal_form
 * @property {string | null} address
 * @property {string | null} registration_date
 * @property {string | null} status
 * @property {string[]} directors
 * @property {string[]} activities
 * @property {string | null} [source_url]
 * @property {string | null} [fetched_at]
 * @property {string | null} [transformed_at]
 * @property {string | null} [parser_version]
 */

/**
 * Whether an API body is a company record.
 * @param {any} raw
 * @returns {raw is CompanyRecord}
 */
export function isRecord(raw) {
  return !!raw && typeof raw.idno === 'string';
}

/**
 * The record as a card.
 * @param {Context} ctx
 * @param {CompanyRecord} record
 * @param {string} origin How it was obtained ("From the cache", "Just fetched", …).
 */
export function recordView(ctx, record, origin) {
  const { el } = ctx.ui;
  /** @param {string | null | undefined} text */
  const text = (text) => (text ? el('span', { text }) : el('span', { class: 'muted', text: 'Not shown on the page' }));
  /** @param {string[]} items @param {string} test */
  const list = (items, test) => (items?.length
    ? el('ul', { class: 'record-list', data: { test } }, items.map((item) => el('li', { text: item })))
    : el('span', { class: 'muted', text: 'None listed' }));
  const source = ctx.ui.safeHref(record.source_url);
  /** @type {[string, Node, string][]} */
  const rows = [
    ['IDNO', el('span', { text: record.idno }), 'record-idno'],
    ['Legal form', text(record.legal_form), 'record-legal-form'],
    ['Status', text(record.status), 'record-status'],
    ['Registered', registration(ctx, record.registration_date), 'record-registered'],
    ['Address', text(record.address), 'record-address'],
    ['Directors', list(record.directors, 'record-directors'), 'record-directors-cell'],
    ['Activities', list(record.activities, 'record-activities'), 'record-activities-cell'],
    ['Page fetched', ctx.ui.time(record.fetched_at, { withTime: true }), 'record-fetched'],
    ['Data extracted', ctx.ui.time(record.transformed_at, { withTime: true }), 'record-transformed'],
  ];
  return el('article', { class: 'card record', 'aria-labelledby': 'record-name', data: { test: 'company-record' } },
    el('h2', { id: 'record-name', data: { test: 'record-name' }, text: record.company_name || 'Company without a name on its page' }),
    el('p', { class: 'muted', data: { test: 'record-origin' }, text: origin }),
    el('dl', { class: 'facts' }, rows.flatMap(([term, value, test]) => [el('dt', { text: term }), el('dd', { data: { test } }, value)])),
    source
      ? el('p', { class: 'record-source' }, 'Source: ', el('a', { href: source, rel: 'noopener noreferrer', target: '_blank', text: source }),
        el('span', { class: 'visually-hidden', text: ' (opens in a new tab)' }))
      : null,
    record.parser_version ? el('p', { class: 'muted', text: `Parser ${record.parser_version}` }) : null);
}

/**
 * A registration date: `YYYY-MM-DD` as a date, anything else as the page showed it.
 * @param {Context} ctx
 * @param {string | null} value
 */
function registration(ctx, value) {
  if (value && /^\d{4}-\d{2}-\d{2}$/.test(value)) return ctx.ui.time(`${value}T00:00:00`);
  return value ? ctx.ui.el('span', { text: value }) : ctx.ui.el('span', { class: 'muted', text: 'Not shown on the page' });
}
