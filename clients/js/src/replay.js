/**
 * The per-connection replay window (SPEC.md §6.6).
 *
 * Theory of operation
 * -------------------
 * State is two integers: `highest`, the highest counter accepted (0 before the
 * first), and `bitmap`, where bit `i` set means counter `highest - i` was
 * accepted. `W == 0`: strictly increasing. `W > 0`: a counter up to `W - 1`
 * below `highest` passes once (RFC 4303 Appendix A). The bitmap never holds
 * more than `W` bits; `check` changes nothing; `advance` is called only after
 * the frame authenticated (RFC 4303 A2).
 *
 * @module signedws/replay
 */

import { toUInt } from './codec.js';

/** @typedef {import('./codec.js').UInt} UInt */

export const MAX_WINDOW = 1024;

/**
 * Why `ctr` is a replay, or null if it may be accepted.
 *
 * @param {UInt} highest
 * @param {bigint} bitmap
 * @param {number} window
 * @param {UInt} ctr
 * @returns {string | null}
 */
export function check(highest, bitmap, window, ctr) {
  if (ctr > highest) return null;
  const age = BigInt(highest) - BigInt(ctr);
  if (age >= BigInt(window)) {
    if (window) return `counter ${ctr} is ${age} behind ${highest}, outside the window of ${window}`;
    return `counter ${ctr} is not above ${highest}`;
  }
  if ((bitmap >> age) & 1n) return `counter ${ctr} was already accepted`;
  return null;
}

/**
 * The state after accepting `ctr` (which `check` passed).
 *
 * @param {UInt} highest
 * @param {bigint} bitmap
 * @param {number} window
 * @param {UInt} ctr
 * @returns {[UInt, bigint]}
 */
export function advance(highest, bitmap, window, ctr) {
  if (!window) return [ctr, 0n];
  if (ctr > highest) {
    const shift = BigInt(ctr) - BigInt(highest);
    // A jump past the window resets it rather than shifting it.
    if (shift >= BigInt(window)) return [ctr, 1n];
    return [ctr, ((bitmap << shift) | 1n) & ((1n << BigInt(window)) - 1n)];
  }
  return [toUInt(highest), bitmap | (1n << (BigInt(highest) - BigInt(ctr)))];
}
