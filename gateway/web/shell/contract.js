// @ts-check
/**
 * @file The contract between the shell and the areas (types only: nothing here runs).
 *
 * The shell loads an area from `/ui/<area>/manifest.json`, imports its `entry` and calls
 * `mount(element, context)`; `navigated(route)` when the path changes within the area;
 * `unmount()` when the user leaves it. An area never imports another area, nor the shell:
 * everything it needs from the rest of the UI is in the `Context`. Areas import these types
 * with JSDoc (`import('…/gateway/web/shell/contract.js').Context`), checked by `tsc --checkJs`.
 */

/** @typedef {'user' | 'librarian' | 'admin'} Role */

/**
 * The signed-in account.
 * @typedef {object} User
 * @property {number} id
 * @property {string} username
 * @property {string} email
 * @property {Role} role
 */

/**
 * The session, owned by the shell. The access token is an `HttpOnly` cookie: no script,
 * the shell's included, can read it.
 * @typedef {object} Session
 * @property {User | null} user The account, or `null` when signed out.
 * @property {(role: Role) => boolean} can Whether the user has `role` or a higher one
 *   (`admin` ⊇ `librarian` ⊇ `user`).
 * @property {(listener: (user: User | null) => void) => () => void} onChange Calls `listener`
 *   on every sign-in and sign-out; returns the unsubscribe function.
 * @property {(user: User) => void} signedIn The auth area tells the shell that
 *   `POST /auth/session` succeeded.
 * @property {() => Promise<boolean>} signOut `DELETE /auth/session`; false when the server
 *   could not be told (the session may still be live).
 */

/**
 * @typedef {object} ApiOptions
 * @property {string} [method] `GET` by default.
 * @property {unknown} [json] A body sent as JSON.
 * @property {Record<string, string>} [headers]
 * @property {AbortSignal} [signal] Abort a request whose answer is no longer wanted.
 * @property {boolean} [allow401] A 401 is this request's own answer (a wrong password),
 *   not a sign that the session ended.
 */

/**
 * An answer of the API. Never a thrown error: HTTP errors are answers the areas show next to
 * what caused them.
 * @typedef {object} ApiResult
 * @property {number} status The HTTP status; 0 when no answer came (network) or aborted.
 * @property {boolean} ok A 2xx status.
 * @property {boolean} aborted The caller aborted the request.
 * @property {any} body The JSON body, text, or `null` (204).
 * @property {Headers} headers
 */

/** @typedef {(path: string, options?: ApiOptions) => Promise<ApiResult>} Api */

/** @typedef {{ replace?: boolean }} NavigateOptions */

/**
 * Client-side navigation (History API); the shell maps the path to its area.
 * @typedef {(path: string, options?: NavigateOptions) => void} Navigate
 */

/**
 * A notification, as `GET /notifications/` lists it and the stream sends it.
 * @typedef {object} Notification
 * @property {string | number} id
 * @property {string} [kind] e.g. `hold_ready`, `loan_overdue`.
 * @property {string} [title]
 * @property {string} [message]
 * @property {string} [body]
 * @property {string} [created_at]
 * @property {boolean} [read]
 * @property {string | null} [read_at]
 * @property {Record<string, unknown>} [payload]
 */

/** @typedef {'off' | 'connecting' | 'open' | 'retrying'} StreamState */

/**
 * @typedef {object} EventMap
 * @property {Notification} notification A notification arrived on the stream.
 * @property {number} unread The unread count changed.
 * @property {StreamState} state The stream connected, dropped or stopped.
 */

/**
 * The notification stream, opened by the shell while someone is signed in.
 * @typedef {object} Events
 * @property {<K extends keyof EventMap>(type: K, listener: (value: EventMap[K]) => void) => () => void} on
 *   Subscribe; returns the unsubscribe function.
 * @property {() => number} unread The unread count shown in the header.
 * @property {(count: number) => void} setUnread The account area's count after it listed or
 *   marked notifications read.
 * @property {() => StreamState} state
 */

/**
 * Where the user is.
 * @typedef {object} Route
 * @property {string} path The path, without the query.
 * @property {string | null} area The area that shows it (`null`: the shell's own page).
 * @property {string} screen The screen within the area (`search`, `book`, …).
 * @property {Record<string, string>} params Path parameters (`/catalogue/:id` → `id`).
 * @property {URLSearchParams} query
 */

/** @typedef {typeof import('./ui.js')} Ui */

/**
 * What an area gets from the shell.
 * @typedef {object} Context
 * @property {Session} session
 * @property {Api} api
 * @property {Navigate} navigate
 * @property {Events} events
 * @property {Ui} ui DOM helpers: elements built from data without HTML parsing, fields with
 *   their error slots, API errors shown next to their cause.
 * @property {(message: string) => void} announce Says `message` to screen readers (polite).
 * @property {Route} route The route at mount time.
 */

/**
 * What an area's entry module exports.
 * @typedef {object} AreaModule
 * @property {(element: HTMLElement, context: Context) => void | Promise<void>} mount
 * @property {() => void} [unmount]
 * @property {(route: Route) => void | Promise<void>} [navigated] Without it, the shell
 *   mounts the area again on every navigation within it.
 */

/**
 * `/ui/<area>/manifest.json`.
 * @typedef {object} Manifest
 * @property {string} area
 * @property {string} hash
 * @property {string | null} entry
 * @property {string[]} styles
 * @property {string[]} [modules] The area's other modules, preloaded with the entry.
 */

export {};
