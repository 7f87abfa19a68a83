// @ts-check
/**
 * @file A hint about an IDNO as it is typed (13 digits, the last a check digit: the first
 * twelve weighted 7, 3, 1, … summed, modulo 10). Only a hint: the server's check decides,
 * and its 422 is shown under the field.
 */

/**
 * What to tell someone typing `raw`, or `''` when it looks right.
 * @param {string} raw
 */
export function idnoHint(raw) {
  const value = raw.trim();
  if (!value) return '';
  if (!/^[0-9]*$/.test(value)) return 'An IDNO has digits only.';
  if (value.length !== 13) return `${value.length} of 13 digits.`;
  const weights = [7, 3, 1];
  let sum = 0;
  for (let i = 0; i < 12; i += 1) sum += Number(value[i]) * weights[i % 3];
  return sum % 10 === Number(value[12]) ? '' : 'The last digit does not match the others; check for a typo.';
}
