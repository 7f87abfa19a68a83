// @ts-check
/**
 * @file Company data by IDNO. `POST /scrape/` answers the cached record at once (200) or
 * queues a scrape job (202): then its status URL is polled, the progress shown step by step
 * (queued → running → done, with the attempt count), until the record arrives or the job
 * failed (its error said in words, with "Try again"). `/company/<idno>` shows the latest
 * record (`GET /companies/<idno>`), so a result can be bookmarked.
 */

import { idnoHint } from './idno.js';
import { isRecord, recordView } from './record.js';

/** @typedef {import('../../../gateway/web/shell/contract.js').Context} Context */
/** @typedef {import('../../../gateway/web/shell/contract.js').Route} Route */
/** @typedef {import('./record.js').CompanyRecord} CompanyRecord */

/**
 * @typedef {object} Job
 * @property {string} id
 * @property {string} idno
 * @property {'queued' | 'running' | 'succeeded' | 'failed'} state
 * @property {number} attempts
 * @property {number} max_attempts
 * @property {string | null} error
 * @property {CompanyRecord | null} data
 */

const STEPS = /** @type {const} */ (['queued', 'running', 'succeeded']);
const STEP_NAMES = { queued: 'Waiting for a worker', running: 'Fetching and reading the page', succeeded: 'Done' };
/** Polling: every second at first, then every 3 seconds; at most 10 minutes. */
const POLL_FAST_MS = 1000;
const POLL_SLOW_MS = 3000;
const POLL_FAST_COUNT = 15;
const POLL_LIMIT_MS = 10 * 60 * 1000;

/**
 * @param {HTMLElement} root
 * @param {Context} ctx
 * @param {Route} route
 */
export function companyScreen(root, ctx, route) {
  const { el } = ctx.ui;
  /** @type {AbortController | null} */
  let work = null;
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let pollTimer;
  /** The IDNO whose record is shown. */
  let shownIdno = '';

  const idno = ctx.ui.field({ name: 'idno', label: 'IDNO', inputmode: 'numeric', autocomplete: 'off', maxlength: 20,
    hint: 'The company’s 13-digit identification number.', onInput: () => hint() });
  const idnoInput = /** @type {HTMLInputElement} */ (idno.input);
  const typed = el('p', { class: 'hint typed', 'aria-live': 'polite', data: { test: 'idno-hint' } });
  idno.wrapper.insertBefore(typed, idno.error);
  const refresh = ctx.ui.field({ name: 'force_refresh', label: 'Fetch the page again even if recent data is cached', type: 'checkbox' });
  const form = ctx.ui.form({ name: 'company-request', submit: 'Get company data', label: 'Request company data', onSubmit: submit },
    idno.wrapper, refresh.wrapper);
  const progress = el('section', { class: 'job', hidden: true, 'aria-labelledby': 'job-heading', data: { test: 'job' } });
  const result = el('div', { class: 'company-result', data: { test: 'company-result' } });

  root.append(
    ctx.ui.heading('Company data'),
    el('p', { class: 'muted', text: 'Data from the public registry page of a Moldovan company: name, legal form, address, status, directors and activities.' }),
    form,
    progress,
    result);
  show(route);

  function hint() {
    typed.textContent = idnoHint(idnoInput.value);
  }

  /** @param {Route} next */
  function show(next) {
    const wanted = next.params.idno ?? '';
    if (wanted && wanted === shownIdno) return;
    if (!wanted) {
      stop();
      progress.hidden = true;
      result.replaceChildren();
      shownIdno = '';
      return;
    }
    idnoInput.value = wanted;
    hint();
    void latest(wanted);
  }

  /** `GET /companies/<idno>`: the latest record, if there is one. @param {string} value */
  async function latest(value) {
    const controller = begin();
    result.replaceChildren(el('p', { class: 'loading', text: 'Loading the latest record…' }));
    const answer = await ctx.api(`/companies/${encodeURIComponent(value)}`, { signal: controller.signal });
    if (answer.aborted) return;
    if (answer.ok && isRecord(answer.body)) {
      showRecord(answer.body, 'The latest record we have.');
      return;
    }
    result.replaceChildren();
    if (answer.status === 404) {
      result.append(el('p', { class: 'status', role: 'status', data: { test: 'company-none' },
        text: 'There is no data for this IDNO yet. Request it with the form above.' }));
    } else {
      ctx.ui.showErrors(form, answer, { field: 'idno' });
    }
  }

  /** @param {HTMLFormElement} form @param {HTMLButtonElement} button */
  async function submit(form, button) {
    ctx.ui.clearErrors(form);
    const controller = begin();
    result.replaceChildren();
    progress.hidden = true;
    const value = ctx.ui.value(form, 'idno').trim();
    const answer = await ctx.api('/scrape/', {
      method: 'POST',
      json: { idno: value, force_refresh: ctx.ui.value(form, 'force_refresh') === 'true' },
      signal: controller.signal,
    });
    if (answer.aborted) return;
    if (answer.status === 200 && isRecord(answer.body?.data)) {
      showRecord(answer.body.data, 'From the cache: fetched recently.');
      return;
    }
    if (answer.status === 202 && typeof answer.body?.job_id === 'string') {
      const status = String(answer.body.status_url ?? '');
      const url = /^\/scrape\/jobs\/[0-9a-fA-F-]+$/.test(status) ? status : `/scrape/jobs/${encodeURIComponent(answer.body.job_id)}`;
      await watch(url, controller);
      return;
    }
    ctx.ui.showErrors(form, answer);
    if (answer.status === 429) ctx.ui.lock(button, ctx.ui.retryAfter(answer));
  }

  /**
   * Polls the job until it is final (or the user moved on), showing its progress.
   * @param {string} url
   * @param {AbortController} controller
   */
  async function watch(url, controller) {
    const started = Date.now();
    let polls = 0;
    /** @type {string} */
    let lastState = '';
    renderProgress({ state: 'queued', attempts: 0, max_attempts: 0 });
    while (!controller.signal.aborted) {
      const answer = await ctx.api(url, { signal: controller.signal });
      if (answer.aborted) return;
      if (!answer.ok) {
        failedJob(answer.status === 404 ? 'The job is gone (it may have expired).' : ctx.ui.describe(answer));
        return;
      }
      const job = /** @type {Job} */ (answer.body);
      if (job.state !== lastState) {
        lastState = job.state;
        ctx.announce(job.state === 'failed' ? 'The request failed.' : `${STEP_NAMES[job.state]}.`);
      }
      renderProgress(job);
      if (job.state === 'succeeded') {
        if (isRecord(job.data)) {
          showRecord(job.data, 'Just fetched from the registry.');
          progress.hidden = true;
        } else {
          failedJob('The job finished without a record.');
        }
        return;
      }
      if (job.state === 'failed') {
        failedJob(job.error || 'The page could not be fetched.');
        return;
      }
      if (Date.now() - started > POLL_LIMIT_MS) {
        failedJob('This is taking too long. Try again later.');
        return;
      }
      polls += 1;
      await sleep(polls < POLL_FAST_COUNT ? POLL_FAST_MS : POLL_SLOW_MS, controller.signal);
    }
  }

  /** @param {Pick<Job, 'state' | 'attempts' | 'max_attempts'>} job */
  function renderProgress(job) {
    progress.hidden = false;
    const reached = STEPS.indexOf(/** @type {typeof STEPS[number]} */ (job.state));
    const bar = el('progress', { max: String(STEPS.length), value: String(reached + 1), 'aria-labelledby': 'job-heading', data: { test: 'job-progress' } });
    progress.replaceChildren(
      el('h2', { id: 'job-heading', text: 'Fetching the company’s page' }),
      bar,
      el('ol', { class: 'steps', data: { test: 'job-steps' } }, STEPS.map((step, i) => el('li', {
        class: i < reached ? 'done' : i === reached ? 'current' : 'todo',
        'aria-current': i === reached ? 'step' : null,
        data: { step },
      }, i < reached ? '✓ ' : '', STEP_NAMES[step], i < reached ? el('span', { class: 'visually-hidden', text: ' (done)' }) : null))),
      el('p', { class: 'muted', data: { test: 'job-state' }, text: job.attempts > 0 ? `Attempt ${job.attempts} of ${job.max_attempts}.` : 'Queued.' }));
  }

  /** @param {string} message */
  function failedJob(message) {
    progress.hidden = false;
    const again = ctx.ui.button('Try again', () => form.requestSubmit(), { class: 'button primary', data: { test: 'job-retry' } });
    progress.replaceChildren(
      el('h2', { id: 'job-heading', text: 'The company data could not be fetched' }),
      el('p', { class: 'status', role: 'alert', data: { tone: 'error', test: 'job-error' }, text: message }),
      el('div', { class: 'actions' }, again));
  }

  /**
   * @param {CompanyRecord} record
   * @param {string} origin
   */
  function showRecord(record, origin) {
    shownIdno = record.idno;
    result.replaceChildren(recordView(ctx, record, origin));
    const path = `/company/${encodeURIComponent(record.idno)}`;
    if (location.pathname !== path) ctx.navigate(path, { replace: true });
    ctx.announce(`Company data for ${record.company_name || record.idno} shown.`);
  }

  /** Stops what was going on (a poll, a request) and starts afresh. */
  function begin() {
    stop();
    work = new AbortController();
    return work;
  }

  function stop() {
    clearTimeout(pollTimer);
    work?.abort();
    work = null;
  }

  /**
   * @param {number} ms
   * @param {AbortSignal} signal
   */
  function sleep(ms, signal) {
    return new Promise((resolve) => {
      pollTimer = setTimeout(resolve, ms);
      signal.addEventListener('abort', () => {
        clearTimeout(pollTimer);
        resolve(undefined);
      }, { once: true });
    });
  }

  return {
    update: show,
    destroy: stop,
  };
}
