/**
 * What a client does when its connection ends, and how long it waits.
 * Transport-free: maps a WebSocket close code (SPEC.md §9) to an action, and
 * computes reconnection delays from a `Backoff` and a random number the caller
 * draws (so tests can fix it). Same table as the Python client's.
 *
 * @module signedws/reconnect
 */

import { UsageError } from './errors.js';

/** @enum {string} */
export const Action = Object.freeze({
  /** Open a new connection (new nonce, counters from 1) and resend. */
  RECONNECT: 'reconnect',
  /** Get a fresh credential, then reconnect. */
  REFRESH: 'refresh',
  /** The server ended the conversation normally: stop, without an error. */
  FINISH: 'finish',
  /** Retrying cannot help: stop and report the close code. */
  FAIL: 'fail',
});

/**
 * Close codes after which reconnecting can succeed: no close frame (1006),
 * going away, server errors and restarts, try again later, bad gateway, the
 * adapter timeouts (4408), an expired connection nonce (4410), a busy server
 * (4503).
 */
export const RECONNECT_CLOSE_CODES = Object.freeze(new Set([1001, 1006, 1011, 1012, 1013, 1014, 4408, 4410, 4503]));
/** Close codes after which the credential must be replaced first (4419). */
export const REFRESH_CLOSE_CODES = Object.freeze(new Set([4419]));
/** Close codes that end the conversation normally. */
export const FINISH_CLOSE_CODES = Object.freeze(new Set([1000, 1005]));

/**
 * The action for a connection the server closed with `closeCode` (null:
 * closed without a close frame). Everything not listed above fails: 4400,
 * 4401, 4403, 4409, 4413, 1009, 4425, 4429 and protocol errors, which
 * resending the same frames would meet again.
 *
 * @param {number | null} closeCode
 * @returns {Action}
 */
export function closeAction(closeCode) {
  if (closeCode === null || RECONNECT_CLOSE_CODES.has(closeCode)) return Action.RECONNECT;
  if (REFRESH_CLOSE_CODES.has(closeCode)) return Action.REFRESH;
  if (FINISH_CLOSE_CODES.has(closeCode)) return Action.FINISH;
  return Action.FAIL;
}

/**
 * Exponential backoff with jitter between reconnection attempts: the n-th
 * retry (from 0) waits up to `cap = min(maximum, initial * factor ** n)`
 * seconds, shortened by up to `jitter` of itself at random. The default,
 * `jitter = 1`, is full jitter: a delay uniform over (0, cap], which spreads
 * the clients of a node that went away evenly over the whole interval. Same
 * as the Python client's.
 */
export class Backoff {
  /** @param {{initial?: number, maximum?: number, factor?: number, jitter?: number}} [options] seconds */
  constructor({ initial = 0.1, maximum = 10, factor = 2, jitter = 1 } = {}) {
    if (initial < 0 || maximum < initial) throw new UsageError('backoff delays must satisfy 0 <= initial <= maximum');
    if (factor < 1) throw new UsageError('backoff factor must be at least 1');
    if (!(jitter >= 0 && jitter <= 1)) throw new UsageError('backoff jitter must be between 0 and 1');
    this.initial = initial;
    this.maximum = maximum;
    this.factor = factor;
    this.jitter = jitter;
    Object.freeze(this);
  }

  /**
   * Seconds to wait before retry `attempt` (0 for the first).
   *
   * @param {number} attempt
   * @param {number} random drawn uniformly from [0, 1)
   * @returns {number}
   */
  delay(attempt, random) {
    const base = this.initial * this.factor ** Math.min(attempt, 64);
    return Math.min(this.maximum, base) * (1 - this.jitter * random);
  }
}
