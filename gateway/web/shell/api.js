// @ts-check
/**
 * @file `context.api`: `fetch` on this origin with the session cookie, the CSRF header on
 * unsafe methods, JSON in and out. It never throws for an HTTP error or a lost connection:
 * the answer is data for the area to show where it belongs. A 401 also tells the shell (the
 * session ended: back to the login screen), unless the caller expects one (`allow401`).
 */

/** @typedef {import('./contract.js').Api} Api */
/** @typedef {import('./contract.js').ApiResult} ApiResult */

const SAFE = new Set(['GET', 'HEAD', 'OPTIONS']);

/**
 * @param {{ csrfToken: () => string, onUnauthorized: () => void }} hooks
 * @returns {Api}
 */
export function createApi({ csrfToken, onUnauthorized }) {
  return async function api(path, options = {}) {
    const method = (options.method ?? 'GET').toUpperCase();
    const headers = new Headers(options.headers);
    headers.set('accept', 'application/json');
    /** @type {BodyInit | undefined} */
    let body;
    if (options.json !== undefined) {
      headers.set('content-type', 'application/json');
      body = JSON.stringify(options.json);
    }
    if (!SAFE.has(method)) headers.set('x-csrf-token', csrfToken());
    /** @type {Response} */
    let response;
    try {
      response = await fetch(path, {
        method,
        headers,
        body,
        credentials: 'same-origin',
        cache: 'no-store',
        signal: options.signal,
      });
    } catch (error) {
      const aborted = error instanceof DOMException && error.name === 'AbortError';
      return { status: 0, ok: false, aborted, body: null, headers: new Headers() };
    }
    const result = {
      status: response.status,
      ok: response.ok,
      aborted: false,
      body: await read(response),
      headers: response.headers,
    };
    if (response.status === 401 && !options.allow401) onUnauthorized();
    return result;
  };
}

/**
 * The body: JSON when it says so, else text; `null` when there is none.
 * @param {Response} response
 */
async function read(response) {
  if (response.status === 204 || response.status === 304) return null;
  try {
    const text = await response.text();
    if (!text) return null;
    return (response.headers.get('content-type') ?? '').includes('json') ? JSON.parse(text) : text;
  } catch {
    return null;
  }
}
