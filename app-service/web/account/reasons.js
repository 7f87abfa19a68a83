// @ts-check
/**
 * @file Why renewing, returning or cancelling was refused, in words (the `reason` of a 409
 * or 404 from the circulation rules).
 */

/** @type {Record<string, string>} */
const REASONS = {
  renewal_limit: 'This loan has been renewed as often as allowed. Please return it by its due date.',
  hold_waiting: 'Another reader is waiting for this title, so it cannot be renewed. Please return it by its due date.',
  already_returned: 'This loan was already returned.',
  hold_not_active: 'This hold is no longer active (collected, cancelled or expired).',
  not_found: 'Not found: it may belong to someone else or no longer exist.',
  idempotency_key_reused: 'That request was already used for something else. Please try again.',
};

/**
 * The refusal in `body` in words, or `null` when it carries no known reason.
 * @param {any} body
 * @returns {string | null}
 */
export function refusal(body) {
  const reason = typeof body?.reason === 'string' ? body.reason : '';
  return REASONS[reason] ?? null;
}
