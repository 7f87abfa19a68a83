// @ts-check
/**
 * @file The notification stream (`EventSource('/notifications/stream')`, authenticated by
 * the session cookie), opened while someone is signed in and re-published to the areas, with
 * the unread count the header shows. The browser reconnects a dropped stream by itself; a
 * stream the server refused (the session ended, a 5xx) is retried with a growing delay after
 * asking the shell whether the session is still live.
 */

/** @typedef {import('./contract.js').Api} Api */
/** @typedef {import('./contract.js').EventMap} EventMap */
/** @typedef {import('./contract.js').Events} Events */
/** @typedef {import('./contract.js').Notification} Notification */
/** @typedef {import('./contract.js').StreamState} StreamState */

/**
 * Whether a notification is unread, whichever way the API says it.
 * @param {Notification} n
 */
export function isUnread(n) {
  if (typeof n.read === 'boolean') return !n.read;
  return n.read_at === null || n.read_at === undefined;
}

/**
 * @typedef {Events & { start: () => void, stop: () => void }} ShellEvents
 */

/**
 * @param {{ api: Api, stillSignedIn: () => Promise<boolean> }} deps
 * @returns {ShellEvents}
 */
export function createEvents({ api, stillSignedIn }) {
  /** @type {{ [K in keyof EventMap]: Set<(value: EventMap[K]) => void> }} */
  const listeners = { notification: new Set(), unread: new Set(), state: new Set() };
  /** @type {EventSource | null} */
  let source = null;
  /** @type {StreamState} */
  let state = 'off';
  let unread = 0;
  let retryDelay = 2000;
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let retryTimer;
  /** Notifications already counted (a reconnect may replay some). */
  const seen = new Set();

  /**
   * @template {keyof EventMap} K
   * @param {K} type
   * @param {EventMap[K]} value
   */
  function emit(type, value) {
    for (const listener of [...listeners[type]]) {
      try {
        listener(value);
      } catch (error) {
        console.error(`a ${type} listener failed`, error);
      }
    }
  }

  /** @param {StreamState} next */
  function setState(next) {
    if (next === state) return;
    state = next;
    emit('state', state);
  }

  /** @param {number} count */
  function setUnread(count) {
    const next = Math.max(0, Math.floor(count));
    if (next === unread) return;
    unread = next;
    emit('unread', unread);
  }

  /** @param {MessageEvent} event */
  function received(event) {
    /** @type {Notification} */
    let notification;
    try {
      notification = JSON.parse(event.data);
    } catch {
      return; // a comment or something else that is not a notification
    }
    if (!notification || typeof notification !== 'object') return;
    const key = notification.id ?? event.lastEventId;
    if (key !== undefined && key !== '' && seen.has(key)) return;
    if (key !== undefined && key !== '') seen.add(key);
    if (isUnread(notification)) setUnread(unread + 1);
    emit('notification', notification);
  }

  async function countUnread() {
    const result = await api('/notifications/');
    if (result.ok && Array.isArray(result.body)) {
      const items = /** @type {Notification[]} */ (result.body);
      for (const n of items) if (n.id !== undefined) seen.add(n.id);
      setUnread(items.filter(isUnread).length);
    }
  }

  function open() {
    clearTimeout(retryTimer);
    source?.close();
    setState('connecting');
    const stream = new EventSource('/notifications/stream');
    source = stream;
    stream.addEventListener('open', () => {
      retryDelay = 2000;
      setState('open');
    });
    stream.addEventListener('message', received);
    stream.addEventListener('notification', /** @type {EventListener} */ (received));
    stream.addEventListener('error', () => {
      if (stream !== source) return;
      if (stream.readyState === EventSource.CONNECTING) {
        setState('retrying'); // the browser reconnects by itself
        return;
      }
      // Refused for good (401, 5xx, not an event stream): ask whether the session lives.
      stream.close();
      setState('retrying');
      retryTimer = setTimeout(async () => {
        if (source !== stream) return;
        if (await stillSignedIn()) {
          retryDelay = Math.min(retryDelay * 2, 60_000);
          open();
        }
      }, retryDelay);
    });
  }

  return {
    on(type, listener) {
      listeners[type].add(listener);
      return () => listeners[type].delete(listener);
    },
    unread: () => unread,
    setUnread,
    state: () => state,
    start() {
      if (source) return;
      void countUnread();
      open();
    },
    stop() {
      clearTimeout(retryTimer);
      source?.close();
      source = null;
      seen.clear();
      setUnread(0);
      setState('off');
    },
  };
}
