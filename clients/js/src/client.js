/**
 * The client's state machine across connections, I/O-free (SPEC.md §5.2,
 * §7.2, §7.3, §10): the port of the Python `signedws.client`.
 *
 * Theory of operation
 * -------------------
 * A `ClientSession` lives as long as the client. It owns the `Outbox` (the
 * one holder of `seq`: every message gets the stream's next `seq` when it
 * enters and keeps it for life), the credential, and per connection a
 * `Signer` made from that connection's hello. A pump (`websocket.js`) feeds
 * it bytes and times, and acts on what it says; the shape is websockets'
 * `Protocol`:
 *
 * - inputs: `receiveHello`, `receiveMessage`, `sendMessage`, `advanceTime`,
 *   `refresh`, `connectionClosed`, `handshakeRefused`;
 * - outputs, drained: `dataToSend()` (frames, each one binary message, in
 *   order), `eventsReceived()` (`PayloadReceived`, `Acknowledged`,
 *   `ServerRejected`, `AckTimedOut`), `nextDeadline()` (the one timer the
 *   pump arms) and `refreshDue()` (when to call the application's refresh
 *   callback).
 *
 * WebCrypto signs and verifies asynchronously, so the inputs that sign or
 * verify return a promise; the session runs them one at a time, in call
 * order, so frames leave `dataToSend()` in counter order whatever the caller
 * overlaps. After each input settles, call `dataToSend()`, `eventsReceived()`
 * and `nextDeadline()`.
 *
 * Invariants:
 *
 * 1. Every message stays in the outbox until an acknowledgement of the
 *    connection it was last sent on covers it (SPEC.md §7.3). On each new
 *    connection the pending messages are signed again, in `seq` order, with
 *    their original `seq`; the server drops those it had delivered already.
 *    If nothing is pending a control frame binds the connection at once.
 * 2. A pending message that does not fit a new hello's `max_frame` is never
 *    dropped: the hello is not authenticated (§11.6). The session reports
 *    `ServerRejected(frame_too_large)` and the message stays pending.
 * 3. Peer input never throws: a server frame that fails verification, a text
 *    message, a bad hello each become one `ServerRejected`; after it the
 *    connection takes nothing more. Misuse throws `UsageError`/`InvalidState`.
 * 4. `dataToSend()` only ever holds frames of the current connection:
 *    `connectionClosed` drops the rest, and a frame signed for a connection
 *    that ended meanwhile is not queued.
 * 5. No event, error or detail carries a token, frame key, key or payload.
 *
 * @module signedws/client
 */

import { Topics } from './broadcast.js';
import { randomBytes } from './bytes.js';
import { increment } from './codec.js';
import { Ed25519Credential, MACCredential } from './credential.js';
import { DEFAULT_MAX_SERVER_FRAME_SIZE, STREAM_SIZE, TYPE_KEY_REFERENCE } from './envelope.js';
import { Code, ConnectionLost, InvalidState, Refused, Rejected, RepeatedFailure, UsageError } from './errors.js';
import { Signer, serverKeyMap } from './signer.js';

/** @typedef {import('./codec.js').UInt} UInt */
/** @typedef {import('./credential.js').ClientCredential} ClientCredential */
/** @typedef {import('./signer.js').ServerKeys} ServerKeys */

export const DEFAULT_REFRESH_MARGIN = 60;
export const DEFAULT_KEEPALIVE = 60;
export const DEFAULT_MAX_REPEATS = 5;
export const DEFAULT_ACK_TIMEOUT = 60;
/**
 * A connection that stayed open this long (seconds) made progress, even if
 * nothing was acknowledged or received on it (a quiet listener dropped by a
 * proxy).
 */
export const STABLE_SECONDS = 30;
/** How the client closes a connection whose server stopped acknowledging. */
export const ACK_TIMEOUT_CLOSE = Object.freeze({ code: 4408, reason: 'no acknowledgement' });
/** How many connection outcomes a session keeps for its final error. */
export const MAX_OUTCOMES = 16;

// -- what to do when a connection ends ------------------------------------------

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
 * The action for an opening handshake refused with HTTP `status`: 5xx (a
 * busy, restarting or overloaded server; 503 is `server_busy`) and 429 are
 * worth retrying; anything else (403 for a refused Origin, 400 for a missing
 * subprotocol, 404, 401 ...) is not. Browsers do not show the status to a
 * script; Node's and other WebSocket classes may.
 *
 * @param {number} status
 * @returns {Action}
 */
export function statusAction(status) {
  return status >= 500 || status === 429 ? Action.RECONNECT : Action.FAIL;
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

// -- the outbox -------------------------------------------------------------------

/**
 * One pending message.
 *
 * @typedef {object} Entry
 * @property {UInt} seq its number in the stream, fixed for life
 * @property {string | Uint8Array} payload
 * @property {UInt} counter the client counter it was last sent under on the
 *   current connection; 0 if not sent on it yet
 */

/**
 * Messages sent but not yet acknowledged (SPEC.md §7.3), the one holder of
 * `seq`.
 *
 * An acknowledgement `ack` covers every frame of the current connection with
 * a counter `<= ack`: those messages were delivered, so they leave. Entries
 * are in `seq` order; on the current connection the ones sent carry
 * increasing counters and come before the ones not sent yet. An
 * acknowledgement only removes entries sent on the current connection
 * (`counter > 0`); `restart` zeroes every counter when a connection opens.
 * Nothing is removed except by an acknowledgement, or by `discard` for a
 * message that could not be signed at all.
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

  /** Whether a message was sent on the current connection and not acknowledged. */
  get waiting() {
    return this._entries.length > 0 && this._entries[0].counter !== 0;
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

// -- events -----------------------------------------------------------------------

/**
 * A verified server payload: hand it to the application. `broadcast` is set
 * when it came in a broadcast frame (SPEC.md §14.4): its topic, `tseq` and
 * `missed` (a gap in the topic since the last message of it this session
 * received, across reconnects).
 */
export class PayloadReceived {
  /**
   * @param {string | Uint8Array} payload
   * @param {import('./broadcast.js').BroadcastMessage | null} [broadcast]
   */
  constructor(payload, broadcast = null) {
    /** @type {'payload'} */
    this.type = 'payload';
    this.payload = payload;
    this.broadcast = broadcast;
    Object.freeze(this);
  }
}

/** An acknowledgement emptied part of the outbox: wakes `drain` and `maxPending` waiters. */
export class Acknowledged {
  /** @param {number} pending messages still unacknowledged */
  constructor(pending) {
    /** @type {'acknowledged'} */
    this.type = 'acknowledged';
    this.pending = pending;
    Object.freeze(this);
  }
}

/**
 * The server (or its hello) broke the protocol: close the connection with
 * `code.closeCode` and `code.peerReason`, and end the client with
 * `new Rejected(code, detail)`. The connection takes nothing more.
 */
export class ServerRejected {
  /**
   * @param {Readonly<import('./errors.js').CodeInfo>} code
   * @param {string} detail for a log; never a secret or a payload
   */
  constructor(code, detail) {
    /** @type {'rejected'} */
    this.type = 'rejected';
    this.code = code;
    this.detail = detail;
    Object.freeze(this);
  }

  /** The error to end the client with. */
  error() {
    return new Rejected(this.code, this.detail);
  }
}

/**
 * A message sent on this connection waited `ackTimeout` seconds with no
 * acknowledgement at all: close the connection with `closeCode` and `reason`
 * (4408) and reconnect; `connectionClosed` then counts it as a repeat.
 */
export class AckTimedOut {
  /** @param {number} waited seconds the message waited */
  constructor(waited) {
    /** @type {'ack_timeout'} */
    this.type = 'ack_timeout';
    this.waited = waited;
    this.closeCode = ACK_TIMEOUT_CLOSE.code;
    this.reason = ACK_TIMEOUT_CLOSE.reason;
    Object.freeze(this);
  }
}

/** @typedef {PayloadReceived | Acknowledged | ServerRejected | AckTimedOut} ClientEvent */

/**
 * @typedef {object} SessionOptions
 * @property {string} audience the audience the server must announce (§5.2)
 * @property {ServerKeys} [serverKeys] for `ed25519` clients, the server's
 *   public keys by id, to verify server frames (§7.1)
 * @property {Uint8Array} [stream] the stream id (16 bytes; random by
 *   default), fixed for the life of the session
 * @property {number | null} [keepalive] a control frame after this many
 *   seconds without sending (null: never)
 * @property {number} [refreshMargin] seconds before the credential expires
 *   when `refreshDue` says to refresh it
 * @property {number | null} [ackTimeout] seconds a message sent on a
 *   connection may wait for acknowledgement progress before the connection is
 *   ended (`AckTimedOut`; null: forever)
 * @property {number | null} [maxRepeats] connections in a row ending the same
 *   way without progress after which the session fails with
 *   `RepeatedFailure` (null: no limit)
 * @property {number | null} [maxAttempts] reconnection attempts per drop
 *   before `reconnectDelay` gives up (null: no limit)
 * @property {Backoff} [backoff] delays between reconnection attempts and
 *   failed refreshes
 * @property {() => number} [random] a uniform [0, 1) source for the
 *   backoff's jitter
 * @property {Topics} [topics] the topic marks of broadcasts (§14.4), kept
 *   across connections; empty by default
 */

/**
 * @param {unknown} credential
 * @returns {credential is ClientCredential}
 */
function isCredential(credential) {
  return credential instanceof MACCredential || credential instanceof Ed25519Credential;
}

/** @param {ClientCredential} credential @returns {number | null} */
function expiresOf(credential) {
  const claims = credential.claims;
  return claims.type === TYPE_KEY_REFERENCE ? null : Number(claims.exp);
}

/** A signedws client's state across its connections, I/O-free. */
export class ClientSession {
  /**
   * @param {ClientCredential} credential a `MACCredential` or an `Ed25519Credential`
   * @param {SessionOptions} options
   * @throws {UsageError} for invalid arguments
   */
  constructor(credential, options) {
    const {
      audience,
      serverKeys,
      stream = randomBytes(STREAM_SIZE),
      keepalive = DEFAULT_KEEPALIVE,
      refreshMargin = DEFAULT_REFRESH_MARGIN,
      ackTimeout = DEFAULT_ACK_TIMEOUT,
      maxRepeats = DEFAULT_MAX_REPEATS,
      maxAttempts = null,
      backoff = new Backoff(),
      random = Math.random,
      topics = new Topics(),
    } = options ?? {};
    if (!isCredential(credential)) throw new UsageError('credential must be a MACCredential or an Ed25519Credential');
    if (typeof audience !== 'string') throw new UsageError('audience is required');
    if (maxAttempts !== null && !(maxAttempts >= 0)) throw new UsageError('maxAttempts must not be negative');
    if (maxRepeats !== null && !(Number.isInteger(maxRepeats) && maxRepeats >= 1)) {
      throw new UsageError('maxRepeats must be a positive integer (or null)');
    }
    if (keepalive !== null && !(keepalive > 0)) throw new UsageError('keepalive must be positive (or null)');
    if (ackTimeout !== null && !(ackTimeout > 0)) throw new UsageError('ackTimeout must be positive (or null)');
    if (!(refreshMargin >= 0)) throw new UsageError('refreshMargin must not be negative');
    if (!(stream instanceof Uint8Array) || stream.length !== STREAM_SIZE) {
      throw new UsageError(`stream must be ${STREAM_SIZE} bytes`);
    }
    if (!(backoff instanceof Backoff)) throw new UsageError('backoff must be a Backoff');
    if (!(topics instanceof Topics)) throw new UsageError('topics must be a Topics');
    this.audience = audience;
    /** The stream id (SPEC.md §7.3), fixed for the life of the session. */
    this.stream = stream;
    /** The topic marks of broadcasts (SPEC.md §14.4), for the life of the session. */
    this.topics = topics;
    /** @private */ this._credential = credential;
    /** @private */ this._serverKeys = serverKeyMap(serverKeys);
    /** @private */ this._keepalive = keepalive;
    /** @private */ this._refreshMargin = refreshMargin;
    /** @private */ this._ackTimeout = ackTimeout;
    /** @private */ this._maxRepeats = maxRepeats;
    /** @private */ this._maxAttempts = maxAttempts;
    /** @private */ this._backoff = backoff;
    /** @private */ this._random = random;
    /** @private */ this._outbox = new Outbox();
    /**
     * The current connection's signer; null between connections and once the
     * connection is ending (after `ServerRejected` or `AckTimedOut`).
     * @private @type {Signer | null}
     */
    this._signer = null;
    /** A hello is being processed (WebCrypto is asynchronous). @private */
    this._opening = false;
    /** @private @type {Uint8Array[]} */ this._data = [];
    /** @private @type {ClientEvent[]} */ this._events = [];
    /** The latest time an input told. @private */
    this._now = 0;
    /** @private */ this._opened = 0;
    /** @private */ this._lastSend = 0;
    /** Since when a message sent on this connection waits for an ack. @private @type {number | null} */
    this._ackWait = null;
    /**
     * How the current connection is ending, if the session decided it: the
     * rejection, or true for the acknowledgement timeout.
     * @private @type {Rejected | boolean}
     */
    this._ending = false;
    /** @private */ this._progress = false;
    /** Connections in a row that ended like the last one without progress. */
    this.repeats = 0;
    /** @private @type {string | null} */ this._lastEnding = null;
    /** The close code and reason of the last connection. @private @type {[number | null, string]} */
    this._closedWith = [null, ''];
    /** Reconnection attempts since the last connection. */
    this.attempts = 0;
    /** @private @type {string[]} */ this._outcomes = [];
    /** @private */ this._refreshFailures = 0;
    /** @private */ this._refreshRetry = 0;
    /**
     * The error that ends the client if it does not act on the last `Action`
     * (see `connectionClosed`); null after `Action.FINISH`.
     * @type {Error | null}
     */
    this.failure = null;
    /** Connections opened so far. */
    this.connections = 0;
    /** @private @type {Promise<unknown>} */ this._chain = Promise.resolve();
    /**
     * Counts `connectionClosed` calls: a step that awaited WebCrypto across
     * one queues nothing for the dead connection (invariant 4).
     * @private
     */
    this._epoch = 0;
  }

  // -- state ----------------------------------------------------------------------

  /**
   * Whether a connection is open and taking frames (a hello was accepted, and
   * neither `ServerRejected` nor `AckTimedOut` since).
   */
  get connected() {
    return this._signer !== null;
  }

  /** The credential frames are signed with now. @returns {ClientCredential} */
  get credential() {
    return this._credential;
  }

  /** Messages sent but not acknowledged yet. */
  get pending() {
    return this._outbox.length;
  }

  /**
   * The payloads sent but not acknowledged yet, oldest first (nothing is
   * dropped, SPEC.md §7.3).
   *
   * @returns {Array<string | Uint8Array>}
   */
  get unacknowledged() {
    return this._outbox.payloads();
  }

  /**
   * What each connection and reconnection attempt since the last progress
   * got, oldest first (at most 16).
   *
   * @returns {string[]}
   */
  get outcomes() {
    return [...this._outcomes];
  }

  toString() {
    return `ClientSession(${this._signer !== null ? 'connected' : 'disconnected'}, pending=${this._outbox.length}, seq=${this._outbox.seq})`;
  }

  /**
   * Run `step` after every input before it: WebCrypto is asynchronous, and
   * frames must leave `dataToSend` in counter order.
   *
   * @private
   * @template T
   * @param {() => Promise<T> | T} step
   * @returns {Promise<T>}
   */
  _serial(step) {
    const result = this._chain.then(step);
    this._chain = result.catch(() => undefined);
    return result;
  }

  // -- inputs: a connection ---------------------------------------------------------

  /**
   * The server's hello (SPEC.md §5.2): a new connection.
   *
   * Its signer is made, and the pending messages are signed again in `seq`
   * order under its counters (§7.3); if none is pending, one control frame
   * binds the connection so the server may send first. A bad hello (text,
   * too large, malformed, another audience, a `max_frame` too small for a
   * pending message or a control frame) gives `ServerRejected` and sends
   * nothing; nothing pending is dropped (§11.6).
   *
   * Then call `dataToSend()` and write it, in order; `eventsReceived()`;
   * `nextDeadline()`.
   *
   * @param {Uint8Array | ArrayBuffer | string} data the hello, as received
   * @param {{now: number}} options the client's clock, seconds
   * @returns {Promise<void>}
   * @throws {InvalidState} if a connection is open already
   */
  receiveHello(data, { now }) {
    if (this._signer !== null || this._opening) {
      throw new InvalidState('a connection is open already: call connectionClosed first');
    }
    this._opening = true;
    return this._serial(() => this._hello(data, now)).finally(() => {
      this._opening = false;
    });
  }

  /**
   * @private
   * @param {Uint8Array | ArrayBuffer | string} data
   * @param {number} now
   */
  async _hello(data, now) {
    const epoch = this._epoch;
    this._now = now;
    this._ending = false;
    if (typeof data === 'string') return this._reject(Code.malformed, 'the hello is a text message');
    if (data.byteLength > DEFAULT_MAX_SERVER_FRAME_SIZE) {
      // Bounded before decoding, as server frames are (§7.2 step 1).
      return this._reject(Code.frame_too_large, `hello of ${data.byteLength} bytes`);
    }
    let signer;
    try {
      signer = Signer.fromHello(data, this._credential, {
        audience: this.audience,
        now,
        serverKeys: this._serverKeys,
        stream: this.stream,
        seq: this._outbox.seq,
        topics: this.topics,
      });
    } catch (error) {
      if (!(error instanceof Rejected)) throw error;
      return this._reject(error.code, error.detail);
    }
    const limit = signer.hello.maxFrameSize;
    /** @type {Uint8Array[]} */
    const frames = [];
    const entries = this._outbox.restart();
    try {
      for (const entry of entries) {
        frames.push(await signer.sign(entry.payload, { now, seq: entry.seq }));
        entry.counter = signer.counter;
      }
      if (!entries.length) frames.push(await signer.sign(null, { now }));
    } catch (error) {
      if (!(error instanceof UsageError)) throw error;
      for (const entry of entries) entry.counter = 0;
      return this._reject(
        Code.frame_too_large,
        entries.length
          ? `pending message seq=${entries[frames.length].seq} does not fit the hello's max_frame of ${limit} bytes; kept unacknowledged`
          : `the hello's max_frame of ${limit} bytes is too small for a control frame`,
      );
    }
    if (epoch !== this._epoch) return; // closed while signing: nothing to write
    // A refresh while the frames were signed: the next ones carry it.
    if (signer.credential !== this._credential) signer.refresh(this._credential);
    this._signer = signer;
    this._data.push(...frames);
    this.connections++;
    this.attempts = 0;
    this._opened = this._lastSend = now;
    this._ackWait = entries.length ? now : null;
    this._progress = false;
  }

  /**
   * A server frame (SPEC.md §7.2) or a broadcast frame (§14.4).
   *
   * A server frame's `ack` drops what it covers from the outbox
   * (`Acknowledged`); its payload becomes `PayloadReceived`. A broadcast
   * (kind 6 or 7: it shares the server counter and carries no ack) becomes
   * `PayloadReceived` with its `BroadcastMessage`; `topics` moves. A frame that fails verification (or a
   * text message) gives `ServerRejected`. Dropped unread when no connection
   * is taking frames.
   *
   * Then call `eventsReceived()`; `nextDeadline()`.
   *
   * @param {Uint8Array | ArrayBuffer | string} data as received
   * @param {{now: number}} options
   * @returns {Promise<void>}
   */
  receiveMessage(data, { now }) {
    return this._serial(async () => {
      const signer = this._signer;
      if (signer === null) return;
      this._now = now;
      if (typeof data === 'string') return this._reject(Code.malformed, 'text message from the server');
      const acked = signer.acked;
      const epoch = this._epoch;
      let message;
      try {
        message = await signer.verifyAny(data, { now });
      } catch (error) {
        if (!(error instanceof Rejected)) throw error;
        if (epoch === this._epoch) this._reject(error.code, error.detail);
        return;
      }
      if ('tseq' in message) {
        this._progress = true;
        this._events.push(new PayloadReceived(message.payload, message));
        return;
      }
      // Even if the connection closed meanwhile: the outbox still holds its
      // counters (the next hello restarts them), and the payload is verified.
      const dropped = this._outbox.acknowledge(message.ack);
      // Progress: the wait for the rest starts again.
      if (message.ack !== acked && epoch === this._epoch) this._ackWait = this._outbox.waiting ? now : null;
      if (dropped) {
        this._progress = true;
        this._events.push(new Acknowledged(this._outbox.length));
      }
      if (message.payload !== null) {
        this._progress = true;
        this._events.push(new PayloadReceived(message.payload));
      }
    });
  }

  /**
   * @private
   * @param {Readonly<import('./errors.js').CodeInfo>} code
   * @param {string} detail
   */
  _reject(code, detail) {
    this._signer = null;
    this._ending = new Rejected(code, detail);
    this._events.push(new ServerRejected(code, detail));
  }

  /**
   * The connection ended with `closeCode` (null: no close frame, as 1006) and
   * `reason`; `now` defaults to the latest time an input told. Returns what to
   * do next, and sets `failure`:
   *
   * - `Action.RECONNECT`: call `reconnectDelay()`, wait, connect again.
   *   `failure` is the `ConnectionLost` to end with if not reconnecting.
   * - `Action.REFRESH`: get a new credential (`refresh`), then as RECONNECT.
   *   `failure` is the `Refused` to end with if that is not possible.
   * - `Action.FINISH`: stop, without an error (`failure` is null).
   * - `Action.FAIL`: stop with `failure`: `Refused` for the close code,
   *   `RepeatedFailure` after `maxRepeats` identical endings without
   *   progress, or the `Rejected` of a `ServerRejected`.
   *
   * A connection that received a payload, got an acknowledgement or stayed
   * open `STABLE_SECONDS` made progress and clears the repeat count; one lost
   * without a close frame is neither counted nor forgiven.
   *
   * @param {number | null} closeCode
   * @param {string} [reason]
   * @param {{now?: number}} [options]
   * @returns {Action}
   */
  connectionClosed(closeCode, reason = '', { now } = {}) {
    if (now !== undefined) this._now = now;
    this._epoch++;
    this._signer = null;
    this._data.length = 0; // frames of a connection that ended: never written
    const ending = this._ending;
    this._ending = false;
    this._ackWait = null;
    if (ending instanceof Rejected) {
      this.failure = ending;
      return Action.FAIL;
    }
    if (ending) [closeCode, reason] = [ACK_TIMEOUT_CLOSE.code, ACK_TIMEOUT_CLOSE.reason];
    this._closedWith = [closeCode, reason];
    const action = closeAction(closeCode);
    const stable = this._now - this._opened >= STABLE_SECONDS;
    const last = JSON.stringify([action, closeCode, reason]);
    if (this._progress || stable || action === Action.FINISH) {
      this.repeats = 0;
      this._lastEnding = null;
      this._outcomes.length = 0;
    } else if (closeCode === null || closeCode === 1006) {
      // As likely the network's doing as the server's.
    } else if (last === this._lastEnding) this.repeats++;
    else {
      this.repeats = 1;
      this._lastEnding = last;
    }
    this._progress = false;
    this._outcome(`connection ${this.connections}: closed with close code ${closeCode ?? 1006} (${reason || 'no reason'})`);
    if (action === Action.FINISH) {
      this.failure = null;
      return action;
    }
    if (action !== Action.FAIL && this._maxRepeats !== null && this.repeats >= this._maxRepeats) {
      this.failure = new RepeatedFailure(closeCode, reason, this.repeats, this.outcomes);
      return Action.FAIL;
    }
    this.failure =
      action === Action.RECONNECT
        ? new ConnectionLost(closeCode, 0, reason, this.outcomes)
        : new Refused(closeCode, reason, this._hint(closeCode));
    return action;
  }

  /**
   * A reconnection attempt's opening handshake was refused with HTTP `status`
   * (`reason`: the response's reason text), when the WebSocket class reports
   * it (browsers do not: see `connectFailed`).
   *
   * Returns `Action.RECONNECT` (5xx, 429: call `reconnectDelay()` and try
   * again) or `Action.FAIL` (stop with `failure`, a `Refused`).
   *
   * @param {number} status
   * @param {string} [reason]
   * @returns {Action}
   */
  handshakeRefused(status, reason = '') {
    this.connectFailed(`HTTP ${status} (${reason || 'no reason given'})`);
    const action = statusAction(status);
    if (action === Action.FAIL) this.failure = new Refused(null, reason, '', { status });
    return action;
  }

  /**
   * A reconnection attempt failed before the hello (`outcome`: what it got,
   * in a few words, e.g. `handshake failed (close code 1006)`); it is listed
   * in the final error. Then call `reconnectDelay()`.
   *
   * @param {string} outcome
   */
  connectFailed(outcome) {
    this._outcome(`attempt ${this.attempts}: ${outcome}`);
  }

  /**
   * Seconds to wait before the next reconnection attempt (full jitter, longer
   * after repeats), counting it; null once `maxAttempts` were made: stop with
   * `failure`, then a `ConnectionLost` saying so.
   *
   * @returns {number | null}
   */
  reconnectDelay() {
    if (this._maxAttempts !== null && this.attempts >= this._maxAttempts) {
      const [closeCode, reason] = this._closedWith;
      this.failure = new ConnectionLost(closeCode, this.attempts, reason, this.outcomes);
      return null;
    }
    const delay = this._backoff.delay(this.attempts + Math.max(0, this.repeats - 1), this._random());
    this.attempts++;
    return delay;
  }

  /**
   * @private
   * @param {string} text
   */
  _outcome(text) {
    this._outcomes.push(text);
    if (this._outcomes.length > MAX_OUTCOMES) this._outcomes.shift();
  }

  /**
   * What this client can tell on its own about a refusal: a credential for
   * another audience (4401), or one that expired (4419).
   *
   * @private
   * @param {number | null} closeCode
   * @returns {string}
   */
  _hint(closeCode) {
    const claims = this._credential.claims;
    if (claims.type === TYPE_KEY_REFERENCE) return '';
    const { aud, exp } = /** @type {{aud: string[], exp: number | bigint}} */ (/** @type {unknown} */ (claims));
    if (closeCode === 4401 && aud.length > 0 && !aud.includes(this.audience)) {
      return `this client's credential is for ${JSON.stringify(aud)}, not for the server's audience ${JSON.stringify(this.audience)}`;
    }
    if (closeCode === 4419 && this._now >= Number(exp)) {
      return `this client's credential expired at ${new Date(Number(exp) * 1000).toISOString()}`;
    }
    return '';
  }

  // -- inputs: the application --------------------------------------------------------

  /**
   * Number `payload` in the stream and keep it until acknowledged; sign it
   * now if a connection is taking frames (else the next hello sends it).
   *
   * Then call `dataToSend()` and write it; `nextDeadline()`.
   *
   * @param {string | Uint8Array} payload
   * @param {{now: number}} options
   * @returns {Promise<void>}
   * @throws {UsageError} for a payload that is not a string or a Uint8Array,
   *   or whose frame exceeds the connection's `max_frame` (nothing is kept,
   *   its `seq` is not used)
   */
  sendMessage(payload, { now }) {
    if (typeof payload !== 'string' && !(payload instanceof Uint8Array)) {
      throw new UsageError('payload must be a string or a Uint8Array');
    }
    return this._serial(async () => {
      const entry = this._outbox.add(payload);
      this._now = now;
      const signer = this._signer;
      if (signer === null) return;
      const epoch = this._epoch;
      let frame;
      try {
        frame = await signer.sign(payload, { now, seq: entry.seq });
      } catch (error) {
        this._outbox.discard(entry);
        throw error;
      }
      if (epoch !== this._epoch) return; // the next hello sends it
      entry.counter = signer.counter;
      this._ackWait ??= now;
      this._queue(frame, now);
    });
  }

  /**
   * @private
   * @param {Uint8Array} frame
   * @param {number} now
   */
  _queue(frame, now) {
    this._data.push(frame);
    this._lastSend = now;
  }

  /**
   * Sign the next frames with `credential`, on this connection and the next
   * ones (SPEC.md §4.5). A credential that expires within `refreshMargin`
   * already is taken, but the next refresh waits a backoff delay
   * (`refreshDue`).
   *
   * Then call `refreshDue()` for the next refresh (nothing is sent).
   *
   * @param {ClientCredential} credential
   * @param {{now: number}} options
   * @throws {UsageError} for a credential of another scheme, issuer or
   *   subject; nothing changes
   */
  refresh(credential, { now }) {
    if (!isCredential(credential) || credential.constructor !== this._credential.constructor) {
      throw new UsageError('a refreshed credential must be of the same scheme');
    }
    this._signer?.refresh(credential);
    this._credential = credential;
    this._now = now;
    this._refreshFailures = 0;
    const due = this.refreshDue();
    if (due !== null && due <= now) this.refreshFailed({ now });
  }

  /**
   * The application's refresh failed: the next one waits a backoff delay.
   * Then call `refreshDue()`.
   *
   * @param {{now: number}} options
   */
  refreshFailed({ now }) {
    this._now = now;
    this._refreshFailures++;
    this._refreshRetry = now + this._backoff.delay(this._refreshFailures - 1, this._random());
  }

  /**
   * When to get a new credential: `refreshMargin` before the current one
   * expires, or after a backoff delay following failures; null for a
   * credential that does not expire (a key reference).
   *
   * @returns {number | null}
   */
  refreshDue() {
    const expires = expiresOf(this._credential);
    if (expires === null) return null;
    const due = expires - this._refreshMargin;
    return this._refreshFailures ? Math.max(due, this._refreshRetry) : due;
  }

  /**
   * Time passed. A keepalive control frame is due after `keepalive` seconds
   * without sending; `AckTimedOut` after `ackTimeout` seconds with a message
   * waiting and no acknowledgement.
   *
   * Then call `dataToSend()`, `eventsReceived()`, `nextDeadline()`.
   *
   * @param {number} now
   * @returns {Promise<void>}
   */
  advanceTime(now) {
    return this._serial(async () => {
      const signer = this._signer;
      if (signer === null) return;
      this._now = now;
      const waited = this._ackWait;
      if (this._ackTimeout !== null && waited !== null && now - waited >= this._ackTimeout) {
        this._signer = null;
        this._ending = true;
        this._events.push(new AckTimedOut(now - waited));
        return;
      }
      if (this._keepalive !== null && now - this._lastSend >= this._keepalive) {
        const epoch = this._epoch;
        const frame = await signer.sign(null, { now });
        if (epoch === this._epoch) this._queue(frame, now);
      }
    });
  }

  // -- outputs ------------------------------------------------------------------------

  /**
   * The frames to write, in order (each one binary WebSocket message);
   * emptied by the call.
   *
   * @returns {Uint8Array[]}
   */
  dataToSend() {
    const data = this._data;
    this._data = [];
    return data;
  }

  /** What happened since the last call, in order; emptied by the call. @returns {ClientEvent[]} */
  eventsReceived() {
    const events = this._events;
    this._events = [];
    return events;
  }

  /**
   * When to call `advanceTime` next (the keepalive or the acknowledgement
   * timeout), or null.
   *
   * @returns {number | null}
   */
  nextDeadline() {
    if (this._signer === null) return null;
    const deadlines = [];
    if (this._keepalive !== null) deadlines.push(this._lastSend + this._keepalive);
    if (this._ackTimeout !== null && this._ackWait !== null) deadlines.push(this._ackWait + this._ackTimeout);
    return deadlines.length ? Math.min(...deadlines) : null;
  }
}
