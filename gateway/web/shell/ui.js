// @ts-check
/**
 * @file The DOM kit every area gets as `context.ui`: elements built from data (text is
 * always `textContent`, never parsed HTML, so API data cannot inject markup), form fields
 * with their hint and error slots, API errors shown next to what caused them, busy buttons,
 * dates.
 */

/** @typedef {import('./contract.js').ApiResult} ApiResult */

/** @typedef {Node | string | number | null | undefined | false} Child */

/**
 * Properties of {@link el}: `class`, `text` (textContent), `on` (listeners), `data`
 * (dataset); `true`/`false` set or drop a boolean attribute; any other value is an
 * attribute. `null`/`undefined` are skipped.
 * @typedef {{
 *   class?: string | null,
 *   text?: string | number | null,
 *   on?: { [type: string]: (event: any) => void } | null,
 *   data?: Record<string, string | number> | null,
 *   [attribute: string]: unknown,
 * }} Props
 */

/**
 * An element with its properties and children.
 * @template {keyof HTMLElementTagNameMap} K
 * @param {K} tag
 * @param {Props | null} [props]
 * @param {...(Child | Child[])} children
 * @returns {HTMLElementTagNameMap[K]}
 */
export function el(tag, props, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props ?? {})) {
    if (value === null || value === undefined) continue;
    if (key === 'class') node.className = String(value);
    else if (key === 'text') node.textContent = String(value);
    else if (key === 'on') {
      for (const [type, listener] of Object.entries(/** @type {Record<string, EventListener>} */ (value))) {
        node.addEventListener(type, listener);
      }
    } else if (key === 'data') {
      for (const [name, v] of Object.entries(/** @type {Record<string, string>} */ (value))) {
        node.dataset[name] = String(v);
      }
    } else if (key.startsWith('on')) {
      throw new Error(`use "on: {…}" for listeners, not ${key}`);
    } else if (value === true) node.setAttribute(key, '');
    else if (value !== false) node.setAttribute(key, String(value));
  }
  append(node, children);
  return node;
}

/**
 * Appends children (strings become text nodes; falsy ones are skipped).
 * @param {Node} parent
 * @param {(Child | Child[])[]} children
 */
export function append(parent, children) {
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    parent.appendChild(typeof child === 'object' ? child : document.createTextNode(String(child)));
  }
}

let uid = 0;
/** A unique id for `for`/`aria-describedby` pairs. @param {string} prefix */
export function id(prefix) {
  uid += 1;
  return `${prefix}-${uid}`;
}

/**
 * @typedef {object} FieldOptions
 * @property {string} name The API's field name (a 422 `loc` ends with it).
 * @property {string} label
 * @property {string} [type] `text` by default; also `select`, `checkbox`, `textarea`.
 * @property {string | number} [value]
 * @property {boolean} [checked]
 * @property {string} [hint]
 * @property {string} [autocomplete]
 * @property {string} [inputmode]
 * @property {boolean} [required] Marked for people (the server decides).
 * @property {number} [min]
 * @property {number} [max]
 * @property {number} [maxlength]
 * @property {string} [placeholder]
 * @property {{ value: string, label: string }[]} [options] For `select`.
 * @property {(event: Event) => void} [onInput]
 */

/**
 * A labelled input with its hint and its (hidden) error slot, wired with
 * `aria-describedby`. The wrapper carries `data-field="<name>"`, which {@link showErrors}
 * finds.
 * @param {FieldOptions} options
 * @returns {{ wrapper: HTMLDivElement, input: HTMLInputElement | HTMLSelectElement | HTMLTextAreaElement, error: HTMLParagraphElement }}
 */
export function field(options) {
  const inputId = id(`f-${options.name}`);
  const hintId = `${inputId}-hint`;
  const errorId = `${inputId}-error`;
  const type = options.type ?? 'text';
  /** @type {HTMLInputElement | HTMLSelectElement | HTMLTextAreaElement} */
  let input;
  const common = {
    id: inputId,
    name: options.name,
    'aria-describedby': [options.hint ? hintId : null, errorId].filter(Boolean).join(' '),
    'aria-required': options.required ? 'true' : null,
    autocomplete: options.autocomplete ?? null,
    data: { test: `field-${options.name}` },
    on: options.onInput ? { input: options.onInput } : null,
  };
  if (type === 'select') {
    input = el('select', common, (options.options ?? []).map((o) => el('option', { value: o.value, text: o.label })));
    if (options.value !== undefined) input.value = String(options.value);
  } else if (type === 'textarea') {
    input = el('textarea', { ...common, maxlength: options.maxlength ?? null });
    if (options.value !== undefined) input.value = String(options.value);
  } else {
    input = el('input', {
      ...common,
      type,
      inputmode: options.inputmode ?? null,
      min: options.min ?? null,
      max: options.max ?? null,
      maxlength: options.maxlength ?? null,
      placeholder: options.placeholder ?? null,
      spellcheck: type === 'text' ? 'false' : null,
    });
    if (options.value !== undefined) input.value = String(options.value);
    if (options.checked) /** @type {HTMLInputElement} */ (input).checked = true;
  }
  const label = el('label', { for: inputId }, options.label, options.required ? el('span', { class: 'required', text: ' (required)' }) : null);
  const hint = options.hint ? el('p', { class: 'hint', id: hintId, text: options.hint }) : null;
  const error = el('p', { class: 'field-error', id: errorId, hidden: true, data: { test: `error-${options.name}` } });
  const wrapper = type === 'checkbox'
    ? el('div', { class: 'field field-checkbox', data: { field: options.name } }, input, label, hint, error)
    : el('div', { class: 'field', data: { field: options.name } }, label, hint, input, error);
  return { wrapper, input, error };
}

/**
 * @typedef {object} FormOptions
 * @property {string} name `data-test` of the form.
 * @property {string} submit The submit button's text.
 * @property {string} [label] The form's accessible name.
 * @property {(form: HTMLFormElement, button: HTMLButtonElement) => Promise<void> | void} onSubmit
 *   Called with the button busy; errors are the handler's to show.
 * @property {string} [buttonClass]
 */

/**
 * A form (browser validation off: the server's rules are the rules) with a form-level error
 * slot first and its submit button last.
 * @param {FormOptions} options
 * @param {...(Child | Child[])} children
 * @returns {HTMLFormElement}
 */
export function form(options, ...children) {
  const button = el('button', { type: 'submit', class: options.buttonClass ?? 'button primary', text: options.submit, data: { test: `${options.name}-submit` } });
  const node = el('form', { novalidate: true, 'aria-label': options.label ?? null, data: { test: options.name } },
    el('div', { class: 'form-error', role: 'alert', hidden: true, tabindex: '-1', data: { test: `${options.name}-error` } }),
    ...children,
    el('div', { class: 'actions' }, button));
  node.addEventListener('submit', (event) => {
    event.preventDefault();
    if (button.disabled) return;
    void busy(button, async () => options.onSubmit(node, button));
  });
  return node;
}

/**
 * The value of the named control of `form`.
 * @param {HTMLFormElement} form
 * @param {string} name
 * @returns {string}
 */
export function value(form, name) {
  const control = form.elements.namedItem(name);
  if (control instanceof HTMLInputElement && control.type === 'checkbox') return control.checked ? 'true' : '';
  if (control instanceof HTMLInputElement || control instanceof HTMLSelectElement || control instanceof HTMLTextAreaElement) {
    return control.value;
  }
  return '';
}

/**
 * Hides every error of `form`.
 * @param {HTMLElement} form
 */
export function clearErrors(form) {
  for (const error of form.querySelectorAll('.field-error, .form-error')) {
    error.textContent = '';
    /** @type {HTMLElement} */ (error).hidden = true;
  }
  for (const invalid of form.querySelectorAll('[aria-invalid]')) invalid.removeAttribute('aria-invalid');
}

/**
 * Shows an error under the field `name` of `container` (and marks its control invalid);
 * false when there is no such field.
 * @param {HTMLElement} container
 * @param {string} name
 * @param {string} message
 */
export function fieldError(container, name, message) {
  const wrapper = container.querySelector(`[data-field="${CSS.escape(name)}"]`);
  const slot = wrapper?.querySelector('.field-error');
  if (!wrapper || !(slot instanceof HTMLElement)) return false;
  slot.textContent = slot.textContent ? `${slot.textContent} ${message}` : message;
  slot.hidden = false;
  wrapper.querySelector('input, select, textarea')?.setAttribute('aria-invalid', 'true');
  return true;
}

/**
 * Shows `message` in the form-level error slot of `container`.
 * @param {HTMLElement} container
 * @param {string} message
 */
export function formError(container, message) {
  const slot = container.querySelector('.form-error');
  if (!(slot instanceof HTMLElement)) return;
  slot.textContent = message;
  slot.hidden = false;
}

/**
 * Shows the errors of an API answer where they belong: each 422 `loc` under the field it
 * names (the last element of `loc`, renamed through `aliases`); a `{detail}` under `field`
 * when given, else at the form's top. Focuses the first field in error (else the form-level
 * message), so keyboard and screen-reader users land on it.
 * @param {HTMLElement} container
 * @param {ApiResult} result
 * @param {{ field?: string, aliases?: Record<string, string> }} [options]
 */
export function showErrors(container, result, options = {}) {
  clearErrors(container);
  const detail = result.body?.detail;
  if (result.status === 422 && Array.isArray(detail)) {
    const unplaced = [];
    for (const item of detail) {
      const loc = Array.isArray(item?.loc) ? item.loc : [];
      const last = String(loc[loc.length - 1] ?? '');
      const name = options.aliases?.[last] ?? last;
      const message = String(item?.msg ?? 'Invalid value');
      if (!fieldError(container, name, message)) unplaced.push(message);
    }
    if (unplaced.length) formError(container, unplaced.join(' '));
  } else if (!(options.field && fieldError(container, options.field, describe(result)))) {
    formError(container, describe(result));
  }
  const first = container.querySelector('[aria-invalid="true"]');
  if (first instanceof HTMLElement) first.focus();
  else {
    const slot = container.querySelector('.form-error:not([hidden])');
    if (slot instanceof HTMLElement) slot.focus();
  }
}

/**
 * An API failure in words.
 * @param {ApiResult} result
 * @returns {string}
 */
export function describe(result) {
  const detail = typeof result.body?.detail === 'string' ? result.body.detail : '';
  switch (true) {
    case result.status === 0:
      return 'The server could not be reached. Check your connection and try again.';
    case result.status === 401:
      return detail || 'Please log in.';
    case result.status === 403:
      return detail && detail !== 'Forbidden' ? detail : 'You are not allowed to do this.';
    case result.status === 404:
      return detail && detail !== 'Not Found' ? detail : 'Not found.';
    case result.status === 422:
      return detail || 'Some values are not valid.';
    case result.status === 429: {
      const wait = retryAfter(result);
      return `${detail || 'Too many requests.'}${wait ? ` Try again in ${wait} second${wait === 1 ? '' : 's'}.` : ''}`;
    }
    case result.status >= 500:
      return 'The service is unavailable right now. Please try again in a moment.';
    default:
      return detail || `Something went wrong (HTTP ${result.status}).`;
  }
}

/**
 * Seconds from a `Retry-After` header (0 when absent).
 * @param {ApiResult} result
 */
export function retryAfter(result) {
  const raw = result.headers.get('retry-after');
  const seconds = raw ? Number.parseInt(raw, 10) : NaN;
  return Number.isFinite(seconds) && seconds > 0 ? seconds : 0;
}

/**
 * Runs `work` with `button` disabled and showing progress; at most one run at a time.
 * @template T
 * @param {HTMLButtonElement} button
 * @param {() => Promise<T>} work
 * @returns {Promise<T | undefined>}
 */
export async function busy(button, work) {
  if (button.getAttribute('aria-busy') === 'true') return undefined;
  button.setAttribute('aria-busy', 'true');
  button.classList.add('is-busy');
  button.disabled = true;
  try {
    return await work();
  } finally {
    button.removeAttribute('aria-busy');
    button.classList.remove('is-busy');
    // A locked button (see `lock`) stays disabled until its time is up.
    if (!button.dataset.locked) button.disabled = false;
  }
}

/**
 * Disables `button` for `seconds` (a 429's `Retry-After`), counting down in its text.
 * @param {HTMLButtonElement} button
 * @param {number} seconds
 */
export function lock(button, seconds) {
  if (seconds <= 0 || button.dataset.locked) return;
  const text = button.textContent ?? '';
  let left = seconds;
  button.dataset.locked = 'true';
  button.disabled = true;
  const tick = () => {
    if (left <= 0 || !button.isConnected) {
      delete button.dataset.locked;
      button.disabled = false;
      button.textContent = text;
      return;
    }
    button.textContent = `${text} (wait ${left} s)`;
    left -= 1;
    setTimeout(tick, 1000);
  };
  tick();
}

/**
 * A `<p role="status">` whose text is announced politely when it changes.
 * @param {string} [testId]
 */
export function status(testId) {
  return el('p', { class: 'status', role: 'status', data: testId ? { test: testId } : null });
}

/**
 * Shows a message in a status or alert element, with its tone (`success`, `error`, `info`).
 * The element stays in the page when empty (CSS collapses it): a live region must exist
 * before its text changes for screen readers to announce the change.
 * @param {HTMLElement} node
 * @param {string} message
 * @param {'success' | 'error' | 'info'} [tone]
 */
export function say(node, message, tone = 'info') {
  node.textContent = message;
  node.dataset.tone = tone;
}

const dateFormat = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium' });
const dateTimeFormat = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });

/**
 * A `<time>` element for an RFC 3339 timestamp (text: the local date, or date and time).
 * @param {string | null | undefined} iso
 * @param {{ withTime?: boolean }} [options]
 */
export function time(iso, options = {}) {
  if (!iso) return el('span', { class: 'muted', text: '—' });
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return el('span', { text: iso });
  return el('time', { datetime: iso, text: (options.withTime ? dateTimeFormat : dateFormat).format(date) });
}

/**
 * Whole days from now to `iso` (negative: in the past).
 * @param {string} iso
 */
export function daysFromNow(iso) {
  return Math.round((new Date(iso).getTime() - Date.now()) / 86_400_000);
}

/**
 * `url` when it is an absolute http(s) URL (safe as an `href`), else `null`.
 * @param {unknown} url
 */
export function safeHref(url) {
  if (typeof url !== 'string') return null;
  try {
    const parsed = new URL(url);
    return parsed.protocol === 'https:' || parsed.protocol === 'http:' ? parsed.href : null;
  } catch {
    return null;
  }
}

/**
 * A fresh random key (UUID v4) for an `Idempotency-Key` header: one per user action, so a
 * retried request is not applied twice. Built from `getRandomValues`, which (unlike
 * `randomUUID`) also exists outside secure contexts.
 */
export function idempotencyKey() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  bytes[6] = (bytes[6] & 0x0f) | 0x40;
  bytes[8] = (bytes[8] & 0x3f) | 0x80;
  const hex = Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/**
 * The same-origin path of the `Link: <…>; rel="next"` header, or `null`.
 * @param {Headers} headers
 */
export function nextLink(headers) {
  const link = headers.get('link');
  if (!link) return null;
  for (const part of link.split(',')) {
    const match = /^\s*<([^>]*)>\s*;(.*)$/.exec(part);
    if (match && /(^|;)\s*rel="?next"?\s*(;|$)/.test(match[2])) {
      const url = new URL(match[1], location.origin);
      return url.origin === location.origin ? url.pathname + url.search : null;
    }
  }
  return null;
}

/**
 * A screen's heading, focusable so the shell can move focus to it after navigation.
 * @param {string} text
 * @param {1 | 2 | 3} [level]
 */
export function heading(text, level = 1) {
  return el(/** @type {'h1' | 'h2' | 'h3'} */ (`h${level}`), { text, tabindex: level === 1 ? '-1' : null });
}

/**
 * A status tag: text always (never colour alone), its tone for the colour.
 * @param {string} text
 * @param {'neutral' | 'success' | 'warning' | 'danger'} [tone]
 */
export function tag(text, tone = 'neutral') {
  return el('span', { class: `tag tag-${tone}`, text });
}

/**
 * A link handled by the shell's router (a plain `<a href>`: it works with the keyboard,
 * opens in a new tab, and is followed without a page load).
 * @param {string} href
 * @param {string} text
 * @param {Props} [props]
 */
export function link(href, text, props = {}) {
  return el('a', { ...props, href, text });
}

/**
 * A button (`type="button"`) with a click handler.
 * @param {string} text
 * @param {(event: MouseEvent) => void} onClick
 * @param {Props} [props]
 */
export function button(text, onClick, props = {}) {
  return el('button', { class: 'button', ...props, type: 'button', text, on: { click: onClick } });
}
