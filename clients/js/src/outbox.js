/**
 * The client's outbox: messages sent but not yet acknowledged (SPEC.md §7.3).
 *
 * Theory of operation
 * -------------------
 * Every application message gets the stream's next `seq` when it enters the
 * outbox and keeps it for life. On each connection the client signs the
 * pending messages again, in `seq` order, under that connection's counters,
 * and records the counter each was sent under. A server acknowledgement `ack`
 * covers every frame of the current connection with a counter `<= ack`: those
 * messages were accepted, so they leave the outbox.
 *
 * Invariants:
 *
 * 1. Entries are in `seq` order; on the current connection the ones sent carry
 *    increasing counters and come before the ones not sent yet.
 * 2. An acknowledgement only removes entries sent on the current connection
 *    (`counter > 0`); `restart` zeroes every counter when a connection opens.
 * 3. Nothing is removed except by an acknowledgement, or by `discard` and
 *    `remove` for a message that could not be signed at all.
 *
 * @module signedws/outbox
 */

import { increment } from './codec.js';
import { UsageError } from './errors.js';

/** @typedef {import('./codec.js').UInt} UInt */

/**
 * One pending message.
 *
 * @typedef {object} Entry
 * @property {UInt} seq its number in the stream, fixed for life
 * @property {string | Uint8Array} payload
 * @property {UInt} counter the client counter it was last sent under on the
 *   current connection; 0 if not sent on it yet
 */

export class Outbox {
  /** @param {UInt} [seq] the `seq` of the last message already numbered */
  constructor(seq = 0) {
    /** @private @type {Entry[]} */
    this._entries = [];
    /** @private */
    this._seq = seq;
  }

  /** The `seq` of the last message numbered. */
  get seq() {
    return this._seq;
  }

  get length() {
    return this._entries.length;
  }

  /**
   * Number a new message and keep it until it is acknowledged.
   *
   * @param {string | Uint8Array} payload
   * @returns {Entry}
   */
  add(payload) {
    if (typeof payload !== 'string' && !(payload instanceof Uint8Array)) {
      throw new UsageError('payload must be a string or a Uint8Array');
    }
    this._seq = increment(this._seq);
    const entry = { seq: this._seq, payload, counter: 0 };
    this._entries.push(entry);
    return entry;
  }

  /**
   * Forget the newest message, which could not be signed, and give its `seq`
   * back.
   *
   * @param {Entry} entry
   */
  discard(entry) {
    if (this._entries[this._entries.length - 1] !== entry) {
      throw new UsageError('only the newest message can be discarded');
    }
    this._entries.pop();
    this._seq = entry.seq === 1 ? 0 : typeof entry.seq === 'bigint' ? entry.seq - 1n : entry.seq - 1;
  }

  /**
   * Forget a message that can never be sent (e.g. too large for the server of
   * a new connection). Its `seq` stays used.
   *
   * @param {Entry} entry
   */
  remove(entry) {
    const index = this._entries.indexOf(entry);
    if (index < 0) throw new UsageError('not a pending message');
    this._entries.splice(index, 1);
  }

  /**
   * The oldest message sent on the current connection, or null.
   *
   * @returns {Entry | null}
   */
  sentEntry() {
    return this._entries.find((entry) => entry.counter !== 0) ?? null;
  }

  /**
   * Whether `entry` is still pending.
   *
   * @param {Entry} entry
   * @returns {boolean}
   */
  holds(entry) {
    return this._entries.includes(entry);
  }

  /**
   * The pending payloads, oldest first.
   *
   * @returns {Array<string | Uint8Array>}
   */
  payloads() {
    return this._entries.map((entry) => entry.payload);
  }

  /**
   * A new connection opened: forget the old counters and return the messages
   * to send again, in order.
   *
   * @returns {Entry[]}
   */
  restart() {
    for (const entry of this._entries) entry.counter = 0;
    return [...this._entries];
  }

  /**
   * Drop the messages sent on this connection under a counter `<= ack`.
   *
   * @param {UInt} ack
   * @returns {number} how many were dropped
   */
  acknowledge(ack) {
    let dropped = 0;
    while (this._entries.length && this._entries[0].counter !== 0 && this._entries[0].counter <= ack) {
      this._entries.shift();
      dropped++;
    }
    return dropped;
  }
}
