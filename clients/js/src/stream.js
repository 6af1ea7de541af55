/**
 * Exactly-once delivery over resends: per-stream high-water marks (SPEC.md
 * §7.3). The port of the Python `signedws.stream`.
 *
 * A client resends the frames a dropped connection did not acknowledge,
 * keeping their `(stream, seq)`. A frame the server accepted but whose
 * acknowledgement was lost therefore arrives twice, on two connections.
 * `StreamMarks` remembers, per `(iss, sub, stream)`, the highest `seq`
 * delivered, and says whether a verified message is new.
 *
 * It is bounded, per principal first: each `(iss, sub)` keeps the marks of at
 * most `perPrincipal` streams (its most recently active ones), and a principal
 * that opens more streams forgets only its own least recently active one.
 * Beyond that, the whole holds at most `capacity` marks, and forgets the least
 * recently active stream of the least recently active principal. A stream
 * that was forgotten is seen as new: marks held here give exactly-once
 * delivery per server process.
 *
 * @module signedws/stream
 */

import { toHex } from './bytes.js';
import { UsageError } from './errors.js';

/** @typedef {import('./codec.js').UInt} UInt */

export const DEFAULT_CAPACITY = 65536;
/** The streams one principal keeps marks for (SPEC.md §7.3). */
export const DEFAULT_PER_PRINCIPAL = 256;

/**
 * Where a stream's mark is kept: its principal's key and its own (which
 * starts with the principal's: no two triples share it).
 *
 * @typedef {Readonly<{principal: string, stream: string}>} StreamKey
 */

/**
 * The key a stream's mark is kept under; a caller that makes it once per
 * stream (a connection) does no encoding per message.
 *
 * @param {string} issuer
 * @param {string} subject
 * @param {Uint8Array} stream
 * @returns {StreamKey}
 */
export function streamKey(issuer, subject, stream) {
  const principal = JSON.stringify([issuer, subject]);
  return Object.freeze({ principal, stream: principal + toHex(stream) });
}

/**
 * The highest `seq` delivered per stream, for the most recent streams of each
 * principal (see the module's documentation for the bounds).
 */
export class StreamMarks {
  /**
   * @param {number} [capacity]
   * @param {{perPrincipal?: number}} [options]
   * @throws {UsageError} for a bound that is not a positive integer
   */
  constructor(capacity = DEFAULT_CAPACITY, { perPrincipal = DEFAULT_PER_PRINCIPAL } = {}) {
    for (const [name, value] of Object.entries({ capacity, perPrincipal })) {
      if (!Number.isInteger(value) || value < 1) throw new UsageError(`${name} must be a positive integer`);
    }
    this.capacity = capacity;
    this.perPrincipal = Math.min(perPrincipal, capacity);
    /**
     * principal -> (stream key -> mark), both least recently active first
     * (a Map keeps insertion order; deleting and setting moves to the end).
     * @private @type {Map<string, Map<string, UInt>>}
     */
    this._principals = new Map();
    /** @private */
    this._count = 0;
  }

  /** How many marks are held. */
  get size() {
    return this._count;
  }

  /**
   * Record `message` and say whether it should be delivered. Control frames
   * (`seq` 0) never are; a data frame is new if its `seq` is above its
   * stream's mark, which then moves to it.
   *
   * @param {{issuer: string, subject: string, stream: Uint8Array, seq: UInt}} message
   * @returns {boolean}
   */
  isNew(message) {
    if (!message.seq) return false;
    return this.advance(streamKey(message.issuer, message.subject, message.stream), message.seq);
  }

  /**
   * Whether `seq` of the stream `key` is at or below its mark (was delivered
   * before), without moving or touching anything.
   *
   * @param {StreamKey} key
   * @param {UInt} seq
   * @returns {boolean}
   */
  delivered(key, seq) {
    const streams = this._principals.get(key.principal);
    return streams !== undefined && seq <= (streams.get(key.stream) ?? 0);
  }

  /**
   * `isNew` for a data frame (`seq` >= 1) of the stream `key` (from
   * `streamKey`), for callers that keep the key of a stream.
   *
   * @param {StreamKey} key
   * @param {UInt} seq
   * @returns {boolean}
   */
  advance(key, seq) {
    const principals = this._principals;
    let streams = principals.get(key.principal);
    if (streams === undefined) streams = new Map();
    else principals.delete(key.principal);
    principals.set(key.principal, streams); // the most recently active
    const mark = streams.get(key.stream) ?? 0;
    streams.delete(key.stream);
    if (seq <= mark) {
      streams.set(key.stream, mark);
      return false;
    }
    streams.set(key.stream, seq);
    if (!mark) {
      this._count++;
      if (streams.size > this.perPrincipal) {
        streams.delete(/** @type {string} */ (streams.keys().next().value)); // its own oldest stream
        this._count--;
      } else if (this._count > this.capacity) this._evict();
    }
    return true;
  }

  /**
   * Forget the least recently active stream of the least recently active
   * principal (never the one just touched: it is the most recent).
   *
   * @private
   */
  _evict() {
    const [principal, streams] = /** @type {[string, Map<string, UInt>]} */ (this._principals.entries().next().value);
    streams.delete(/** @type {string} */ (streams.keys().next().value));
    this._count--;
    if (streams.size === 0) this._principals.delete(principal);
  }

  /**
   * The highest `seq` delivered for a stream (0 if unknown).
   *
   * @param {string} issuer
   * @param {string} subject
   * @param {Uint8Array} stream
   * @returns {UInt}
   */
  mark(issuer, subject, stream) {
    const key = streamKey(issuer, subject, stream);
    return this._principals.get(key.principal)?.get(key.stream) ?? 0;
  }

  toString() {
    return `StreamMarks(${this._count}/${this.capacity}, per principal ${this.perPrincipal})`;
  }
}
