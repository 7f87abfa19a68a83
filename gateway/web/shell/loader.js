// @ts-check
/**
 * @file Loading an area at run time: its manifest (`/ui/<area>/manifest.json`, revalidated
 * every time, so a new deployment is picked up), its stylesheets, then its entry module. A
 * loaded module is kept; a failed load is not, so "Retry" starts over.
 */

/** @typedef {import('./contract.js').AreaModule} AreaModule */
/** @typedef {import('./contract.js').Manifest} Manifest */

/** How long a manifest may take. */
const MANIFEST_TIMEOUT_MS = 10_000;
/** How long a stylesheet may take before the area is shown without waiting for it. */
const STYLE_TIMEOUT_MS = 5_000;

/** @type {Map<string, Promise<AreaModule>>} */
const loaded = new Map();

/**
 * The area's module, loading it the first time.
 * @param {string} area
 * @returns {Promise<AreaModule>}
 */
export function loadArea(area) {
  let pending = loaded.get(area);
  if (!pending) {
    pending = load(area);
    loaded.set(area, pending);
    pending.catch(() => loaded.delete(area));
  }
  return pending;
}

/**
 * @param {string} area
 * @returns {Promise<AreaModule>}
 */
async function load(area) {
  const manifest = await fetchManifest(area);
  // The area's other modules load alongside its entry, not one import after another.
  for (const module of manifest.modules ?? []) addLink('modulepreload', module);
  await Promise.all(manifest.styles.map(addStylesheet));
  if (!manifest.entry) throw new Error(`${area}: the manifest names no entry module`);
  /** @type {unknown} */
  const module = await import(manifest.entry);
  if (!isAreaModule(module)) throw new Error(`${area}: the entry module exports no mount()`);
  return module;
}

/**
 * @param {string} area
 * @returns {Promise<Manifest>}
 */
async function fetchManifest(area) {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), MANIFEST_TIMEOUT_MS);
  try {
    const response = await fetch(`/ui/${area}/manifest.json`, {
      credentials: 'same-origin',
      cache: 'no-cache',
      signal: controller.signal,
      headers: { accept: 'application/json' },
    });
    if (!response.ok) throw new Error(`${area}: manifest answered ${response.status}`);
    const manifest = await response.json();
    // Only the area's own files: a manifest cannot send the shell elsewhere.
    const own = (/** @type {unknown} */ url) => typeof url === 'string' && url.startsWith(`/ui/${area}/`);
    if (manifest?.area !== area || !(manifest.entry === null || own(manifest.entry))
      || !Array.isArray(manifest.styles) || !manifest.styles.every(own)
      || !(manifest.modules === undefined || (Array.isArray(manifest.modules) && manifest.modules.every(own)))) {
      throw new Error(`${area}: malformed manifest`);
    }
    return manifest;
  } finally {
    clearTimeout(timer);
  }
}

/**
 * A `<link rel>` to `href` in the head, once.
 * @param {string} rel
 * @param {string} href
 * @returns {HTMLLinkElement | null} The new link; `null` when there was one already.
 */
function addLink(rel, href) {
  if (document.querySelector(`link[rel="${rel}"][href="${CSS.escape(href)}"]`)) return null;
  const link = document.createElement('link');
  link.rel = rel;
  link.href = href;
  document.head.append(link);
  return link;
}

/**
 * Adds a stylesheet once and waits (a while) for it, so the area does not flash unstyled.
 * @param {string} href
 * @returns {Promise<void>}
 */
function addStylesheet(href) {
  const link = addLink('stylesheet', href);
  if (!link) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      resolve();
    };
    const timer = setTimeout(done, STYLE_TIMEOUT_MS);
    link.addEventListener('load', done);
    // A missing stylesheet leaves the area usable, if plain.
    link.addEventListener('error', done);
  });
}

/**
 * @param {unknown} module
 * @returns {module is AreaModule}
 */
function isAreaModule(module) {
  return typeof module === 'object' && module !== null && typeof (/** @type {{ mount?: unknown }} */ (module)).mount === 'function';
}
