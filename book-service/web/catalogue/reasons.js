// @ts-check
/**
 * @file Why borrowing or placing a hold was refused, in words (the `reason` of a 409 from
 * the circulation rules), with what the reader can do about it.
 */

/** @type {Record<string, string>} */
const REASONS = {
  no_copy_available: 'Every copy is out on loan. Place a hold to join the queue.',
  already_borrowed: 'You already have this title on loan.',
  on_hold_for_another: 'The copies on the shelf are set aside for readers who asked first. Place a hold to join the queue.',
  loan_limit: 'You have as many loans as allowed. Return a book first.',
  overdue_block: 'You have an overdue loan. Return it before borrowing more.',
  already_holding: 'You already have a hold on this title.',
  hold_limit: 'You have as many holds as allowed.',
  not_found: 'This title no longer exists.',
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
