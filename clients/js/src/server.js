/**
 * The server side of one connection, I/O-free (SPEC.md §5, §7, §9, §10): the
 * port of the Python `signedws.server`.
 *
 * Theory of operation
 * -------------------
 * `ServerSession` is the server's per-connection state machine, in the shape
 * of websockets' `Protocol` and h11's `Connection`: a pump feeds it what
 * happened (a message read, the application done with a message, time
 * passing) and acts on what it returns: bytes to send (`dataToSend`), events
 * to handle (`eventsReceived`) and the one time it must be called back at
 * (`nextDeadline`). It does no I/O, reads no clock (`now` is passed in,
 * seconds) and draws randomness only from the source it is given.
 *
 * Every per-connection rule of the spec lives here:
 *
 * - the hello goes first (§5.2): queued in `dataToSend` at creation;
 * - client frames are verified through the shared `Verifier` (§6.4), inline
 *   (`receiveMessage`) or in two halves (`verify`, then `accept` in arrival
 *   order);
 * - a text message is refused as `malformed` (§6.4), a message the WebSocket
 *   library refused for its size as `frame_too_large` (§9), and an `ed25519`
 *   frame on a server without a server key as `scheme_mismatch`, unverified
 *   (§7.1: such a server could never answer);
 * - the first accepted frame binds the connection to its principal, within
 *   the per-principal connection cap (`PrincipalLimit`, `server_busy`);
 * - exactly-once delivery over resends (§7.3): a data frame whose `(iss, sub,
 *   stream, seq)` is at or below its stream's mark (`StreamMarks`, shared by
 *   every connection of the server) is dropped; the mark moves when the
 *   application *takes* the message (`takeMessage`), never when it is queued;
 * - acknowledgements mean delivered (§7.3): the ack a server frame carries is
 *   the highest counter up to which every accepted frame is done. Control
 *   frames and dropped resends are done when nothing before them is
 *   outstanding. When the mark moves, an ack is due within `ackDelay`
 *   (coalescing every move meanwhile); a frame the application sends carries
 *   it and makes the pure ack unnecessary;
 * - timeouts (§10): from the hello to the first accepted frame
 *   `firstFrameTimeout` (`first_frame_timeout`, 501), then between frames
 *   `idleTimeout` (`idle_timeout`, 502). A deadline runs only while the pump
 *   is reading: a pump that stops reading for backpressure calls `paused`,
 *   and `reading` when it reads again;
 * - a rejection, whatever its cause, is one `ConnectionRejected` event, in
 *   one place (`_reject`): after it, every input is dropped unverified.
 *
 * WebCrypto is asynchronous: the inputs that verify or sign
 * (`receiveMessage`, `sendMessage`, `advanceTime`, `flushAck`) return a
 * promise and run one at a time in call order, so frames leave `dataToSend`
 * in counter order. `accept`, `takeMessage`, `messageDone`, `reading`,
 * `paused`, `receiveOversize` and `connectionClosed` are synchronous.
 *
 * Invariants:
 *
 * 1. Peer input never throws: `receiveMessage`, `accept` and
 *    `receiveOversize` turn every refusal into the one `ConnectionRejected`.
 *    Methods the local application calls throw `InvalidState` on misuse.
 * 2. Nothing from an unauthenticated frame changes state.
 * 3. Only creation (the hello), `sendMessage`, `advanceTime` and `flushAck`
 *    queue bytes.
 *
 * @module signedws/server
 */

import { concat, randomBytes, toBytes } from './bytes.js';
import {
  KIND_CLIENT_ED25519,
  KIND_CLIENT_MAC,
  KIND_SERVER_ED25519,
  KIND_SERVER_MAC,
  TAG_SIZES,
  VERSION,
  seal,
  strField,
} from './envelope.js';
import { Code, InvalidState, Rejected, UsageError } from './errors.js';
import { Ed25519PrivateKey, HMACKey } from './keys.js';
import { streamKey } from './stream.js';
import { ConnectionState, Verifier } from './verifier.js';

/** @typedef {import('./codec.js').UInt} UInt */
/** @typedef {import('./envelope.js').Payload} Payload */
/** @typedef {import('./verifier.js').Message} Message */
/** @typedef {import('./stream.js').StreamKey} StreamKey */
/** @typedef {import('./stream.js').StreamMarks} StreamMarks */

// SPEC.md §7.1: a server without a server key cannot answer an ed25519
// client; it refuses its frames, unverified.
const UNANSWERABLE_DETAIL = 'ed25519 frame; this server has no server_key';

/**
 * Whether `data` starts as an `ed25519` client frame does (a 10-element
 * fixarray, version 1, kind 2): read unverified, to route it.
 *
 * @param {Uint8Array} data
 */
function looksEd25519(data) {
  return data[0] === 0x9a && data[1] === VERSION && data[2] === KIND_CLIENT_ED25519;
}

/** @param {UInt} value @returns {UInt} */
const previous = (value) => (typeof value === 'bigint' ? value - 1n : value - 1);
/** @param {UInt} a @param {UInt} b @returns {UInt} */
const larger = (a, b) => (a >= b ? a : b);

/**
 * The key an `ed25519` server signs its frames with, and its id.
 *
 * @typedef {object} ServerKey
 * @property {string} kid
 * @property {Ed25519PrivateKey} privateKey
 */

/** @enum {string} */
export const State = Object.freeze({
  /** The hello is queued; the first-frame deadline runs. */
  AWAITING_FIRST_FRAME: 'AWAITING_FIRST_FRAME',
  /** Bound to a principal by an accepted frame; the idle deadline runs. */
  OPEN: 'OPEN',
  /** A `ConnectionRejected` was emitted: the pump closes with its code. */
  REJECTED: 'REJECTED',
  /** `connectionClosed` was called. */
  CLOSED: 'CLOSED',
});

/**
 * A verified message not delivered before (SPEC.md §7.3): hand it to the
 * application with `takeMessage`, and call `messageDone` (or take the next)
 * when it is finished.
 */
export class MessageReceived {
  /** @param {Message} message */
  constructor(message) {
    /** @type {'message'} */
    this.type = 'message';
    this.message = message;
    Object.freeze(this);
  }
}

/**
 * The connection is refused (emitted once): log `code` and `detail`, then
 * close with `code.closeCode` and `code.peerReason`. The detail is for the
 * server's log, never for the peer.
 */
export class ConnectionRejected {
  /**
   * @param {Readonly<import('./errors.js').CodeInfo>} code
   * @param {string} detail
   */
  constructor(code, detail) {
    /** @type {'rejected'} */
    this.type = 'rejected';
    this.code = code;
    this.detail = detail;
    Object.freeze(this);
  }
}

/**
 * How many connections each principal `(iss, sub)` holds, and the cap (one
 * principal cannot take every connection of a server). Shared by every
 * session of a server.
 */
export class PrincipalLimit {
  /**
   * @param {number | null} limit connections one principal may hold at once; null: no limit
   * @throws {UsageError} for a limit that is not a positive integer or null
   */
  constructor(limit) {
    if (limit !== null && !(Number.isInteger(limit) && limit >= 1)) {
      throw new UsageError('maxConnectionsPerPrincipal must be a positive integer or null');
    }
    this.limit = limit;
    /** @private @type {Map<string, number>} */
    this._held = new Map();
  }

  /**
   * Count a connection for `principal`, or the `server_busy` rejection if it
   * holds its limit already.
   *
   * @param {[string, string]} principal
   * @returns {Rejected | null}
   */
  bind(principal) {
    const key = JSON.stringify(principal);
    const held = this._held.get(key) ?? 0;
    if (this.limit !== null && held >= this.limit) {
      return new Rejected(
        Code.server_busy,
        `iss=${JSON.stringify(principal[0])} sub=${JSON.stringify(principal[1])} holds ${held} connections, limit per principal ${this.limit}`,
      );
    }
    this._held.set(key, held + 1);
    return null;
  }

  /** A connection counted by `bind` is gone. @param {[string, string]} principal */
  unbind(principal) {
    const key = JSON.stringify(principal);
    const held = (this._held.get(key) ?? 0) - 1;
    if (held > 0) this._held.set(key, held);
    else this._held.delete(key);
  }

  /** The connections `principal` holds. @param {[string, string]} principal */
  held(principal) {
    return this._held.get(JSON.stringify(principal)) ?? 0;
  }

  /** The principals holding a connection. */
  get size() {
    return this._held.size;
  }
}

/**
 * @typedef {object} SessionOptions
 * @property {number} now the time the connection opened, seconds
 * @property {ServerKey | null} [serverKey] the key `ed25519` server frames are
 *   signed with; without one, `ed25519` frames are refused (`scheme_mismatch`)
 * @property {StreamMarks | null} [marks] the server's stream marks (dedupe,
 *   SPEC.md §7.3); null delivers resends too
 * @property {PrincipalLimit | null} [principals] the per-principal cap
 * @property {number | null} [firstFrameTimeout] seconds from the hello to the
 *   first accepted frame; null: no limit
 * @property {number | null} [idleTimeout] seconds between frames after the first
 * @property {number | null} [ackDelay] seconds within which a pure
 *   acknowledgement follows a move of the delivery mark; null: only frames the
 *   application sends carry acks
 * @property {import('./bytes.js').RandomSource} [random] for the nonce
 */

/** One connection, server side (see the module's documentation). */
export class ServerSession {
  /**
   * Use `ServerSession.create`.
   *
   * @param {Verifier} verifier
   * @param {ConnectionState} verifierState
   * @param {Required<Omit<SessionOptions, 'random'>>} options
   */
  constructor(verifier, verifierState, options) {
    const { now, serverKey, marks, principals, firstFrameTimeout, idleTimeout, ackDelay } = options;
    this.verifier = verifier;
    /** The verifier's state of this connection. */
    this.verifierState = verifierState;
    /** The connection nonce (SPEC.md §5.3). */
    this.nonce = verifierState.nonce;
    /** Where the session is. @type {State} */
    this.state = State.AWAITING_FIRST_FRAME;
    /** `[iss, sub]`, from the first accepted frame on. @type {[string, string] | null} */
    this.principal = null;
    /** The hello (also the first item of `dataToSend`). */
    this.hello = verifier.hello(verifierState, { now });
    /** @private @type {Uint8Array[]} */ this._outgoing = [this.hello];
    /** @private @type {Array<MessageReceived | ConnectionRejected>} */ this._events = [];
    /** @private */ this._serverKey = serverKey;
    /** @private */ this._refuseEd25519 = serverKey === null;
    /** @private @type {UInt} */ this._serverCounter = 0;
    /** @private */ this._marks = marks;
    /** @private */ this._principals = principals;
    /** @private */ this._idleTimeout = idleTimeout;
    /** @private */ this._ackDelay = ackDelay;
    // Deadlines: the frame deadline is `_waitingSince + _timeout` while the
    // pump reads (`_waitingSince` null: paused); the ack is due at `_ackDue`.
    /** @private */ this._timeout = firstFrameTimeout;
    /** @private @type {number | null} */ this._waitingSince = now;
    /** @private @type {number | null} */ this._ackDue = null;
    // Delivery (§7.3): the counters of the messages queued for the
    // application or held by it, in arrival order; the message it holds; the
    // last accepted counter; the ack last sent.
    /** @private @type {UInt[]} */ this._outstanding = [];
    /** @private @type {Message | null} */ this._held = null;
    /** @private @type {UInt} */ this._lastAccepted = 0;
    /** @private @type {UInt} */ this._sentAck = 0;
    /** The stream key of the connection's last message. @private @type {[Uint8Array, StreamKey] | null} */
    this._key = null;
    /** @private @type {Promise<unknown>} */ this._chain = Promise.resolve();
  }

  /**
   * @param {Verifier} verifier the server's shared verifier
   * @param {SessionOptions} options
   * @returns {Promise<ServerSession>}
   * @throws {UsageError} for invalid options
   */
  static async create(verifier, options) {
    const {
      now,
      serverKey = null,
      marks = null,
      principals = null,
      firstFrameTimeout = null,
      idleTimeout = null,
      ackDelay = null,
      random = randomBytes,
    } = options;
    for (const [name, value] of Object.entries({ firstFrameTimeout, idleTimeout, ackDelay })) {
      if (value !== null && !(value >= 0)) throw new UsageError(`${name} must not be negative`);
    }
    if (serverKey !== null) {
      try {
        strField(serverKey.kid, 'kid', Code.malformed);
      } catch (error) {
        if (error instanceof Rejected) throw new UsageError(error.detail);
        throw error;
      }
      if (!(serverKey.privateKey instanceof Ed25519PrivateKey)) throw new UsageError('a server key is an Ed25519PrivateKey');
    }
    const state = await verifier.open({ now, random });
    return new ServerSession(verifier, state, {
      now,
      serverKey,
      marks,
      principals,
      firstFrameTimeout,
      idleTimeout,
      ackDelay,
    });
  }

  toString() {
    return `ServerSession(state=${this.state}, accepted=${this._lastAccepted}, sent=${this._serverCounter})`;
  }

  /**
   * Whether `sendMessage` may build a frame: a client frame was verified (it
   * gives the frame key, §7.1) and, for an `ed25519` connection, the server
   * has a server key.
   */
  get canSend() {
    const credential = this.verifierState.credential;
    return credential !== null && (credential.kind === KIND_CLIENT_MAC || this._serverKey !== null);
  }

  /**
   * The delivery mark (SPEC.md §7.3): the counter up to which every accepted
   * frame is done; what the next server frame acknowledges.
   *
   * @returns {UInt}
   */
  get delivered() {
    return this._outstanding.length ? previous(this._outstanding[0]) : this._lastAccepted;
  }

  /** The message the application took and is not done with. */
  get held() {
    return this._held;
  }

  /**
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

  /** @private */
  get _live() {
    return this.state === State.OPEN || this.state === State.AWAITING_FIRST_FRAME;
  }

  // -- input: client frames ---------------------------------------------------

  /**
   * A whole client message read from the WebSocket: bytes for binary, a
   * string for text. Verifies it (SPEC.md §6.4) and accepts it (`accept`'s
   * effects). The pump is taken to go on reading (see `reading`).
   *
   * Then call `eventsReceived` (a `MessageReceived`, or the
   * `ConnectionRejected`) and `nextDeadline`. This queues no data.
   *
   * @param {Uint8Array | ArrayBuffer | string} data
   * @param {{now: number}} options
   * @returns {Promise<void>}
   */
  async receiveMessage(data, { now }) {
    const message = await this.receiveFrame(data, { now });
    if (message !== null) this._events.push(new MessageReceived(message));
  }

  /**
   * `receiveMessage` for a pump's hot path (as the Python session's
   * `receive_frame`): a new message is returned, to hand to the application,
   * instead of queued as a `MessageReceived`. Everything else is an event, as
   * with `receiveMessage`.
   *
   * Then, if it returned null, call `eventsReceived` (the
   * `ConnectionRejected`, if any); call `nextDeadline`. This queues no data.
   *
   * @param {Uint8Array | ArrayBuffer | string} data
   * @param {{now: number}} options
   * @returns {Promise<Message | null>}
   */
  receiveFrame(data, { now }) {
    return this._serial(async () => {
      if (!this._live) return null; // after a rejection: dropped unverified
      if (typeof data === 'string') return this._reject(Code.malformed, 'text message; frames are binary');
      const bytes = toBytes(data);
      if (this._refuseEd25519 && looksEd25519(bytes)) return this._reject(Code.scheme_mismatch, UNANSWERABLE_DETAIL);
      let message;
      try {
        message = await this.verifier.verify(bytes, this.verifierState, { now });
      } catch (error) {
        if (!(error instanceof Rejected)) throw error;
        return this._reject(error.code, error.detail);
      }
      if (!this._live) return null; // closed meanwhile
      if (this._waitingSince !== null) this._waitingSince = now;
      return this._accept(message, now);
    });
  }

  /**
   * Whether verifying `data` is worth leaving the main thread for (an
   * `ed25519` frame). Read unverified, for routing only.
   *
   * @param {Uint8Array | ArrayBuffer | string} data
   * @returns {boolean}
   */
  needsPool(data) {
    return typeof data !== 'string' && !this._refuseEd25519 && looksEd25519(toBytes(data));
  }

  /**
   * The first half of `receiveMessage`: verify `data` (SPEC.md §6.4). Keep at
   * most one `verify` of a connection in flight, and pass each outcome to
   * `accept`, in arrival order. `accept` refuses an `ed25519` frame on a
   * server without a server key (a pump that routes by `needsPool` never
   * verifies one: `receiveMessage` refuses it unverified).
   *
   * @param {Uint8Array | ArrayBuffer | string} data
   * @param {{now: number}} options
   * @returns {Promise<Message>}
   * @throws {Rejected} the frame is refused; pass the error to `accept`
   */
  async verify(data, { now }) {
    if (typeof data === 'string') throw new Rejected(Code.malformed, 'text message; frames are binary');
    return this.verifier.verify(toBytes(data), this.verifierState, { now });
  }

  /**
   * The second half: the outcome of `verify`, in arrival order.
   *
   * Then call `eventsReceived` and `nextDeadline`. This queues no data.
   *
   * @param {Message | Rejected} outcome
   * @param {{now: number}} options
   */
  accept(outcome, { now }) {
    if (!this._live) return;
    const message = outcome instanceof Rejected ? this._reject(outcome.code, outcome.detail) : this._accept(outcome, now);
    if (message !== null) this._events.push(new MessageReceived(message));
  }

  /**
   * The WebSocket library refused a message over `maxFrameSize` while reading
   * it (it closed with 1009): `frame_too_large`.
   *
   * Then call `eventsReceived` (log the rejection; the connection is closed).
   */
  receiveOversize() {
    if (this._live) this._reject(Code.frame_too_large, `message over ${this.verifier.maxFrameSize} bytes (close 1009)`);
  }

  /**
   * The one place a connection is refused: one event, then nothing.
   *
   * @private
   * @param {Readonly<import('./errors.js').CodeInfo>} code
   * @param {string} detail
   * @returns {null}
   */
  _reject(code, detail) {
    this.state = State.REJECTED;
    this._events.push(new ConnectionRejected(code, detail));
    this._ackDue = null;
    this._waitingSince = null;
    return null;
  }

  /**
   * A verified frame: the message if it is new (to deliver), else null.
   *
   * @private
   * @param {Message} message
   * @param {number} now
   * @returns {Message | null}
   */
  _accept(message, now) {
    if (this.state !== State.OPEN) {
      // The first accepted frame binds the principal.
      if (this._refuseEd25519 && !this.canSend) {
        // Verified by a pump that did not route by `needsPool`.
        return this._reject(Code.scheme_mismatch, UNANSWERABLE_DETAIL);
      }
      /** @type {[string, string]} */
      const principal = [message.issuer, message.subject];
      if (this._principals !== null) {
        const busy = this._principals.bind(principal);
        if (busy !== null) return this._reject(busy.code, busy.detail);
      }
      this.principal = principal;
      this.state = State.OPEN;
      this._timeout = this._idleTimeout;
    }
    const counter = message.counter;
    this._lastAccepted = larger(this._lastAccepted, counter);
    if (message.payload === null) return this._moved(now); // a control frame: nothing to deliver
    if (this._marks !== null && this._marks.delivered(this._streamKey(message), message.seq)) {
      return this._moved(now); // delivered before, by this connection or another (a resend)
    }
    this._outstanding.push(counter);
    return message;
  }

  /**
   * `message`'s stream key, made once per stream of the connection.
   *
   * @private
   * @param {Message} message
   * @returns {StreamKey}
   */
  _streamKey(message) {
    let key = this._key;
    if (key === null || !sameBytes(key[0], message.stream)) {
      key = this._key = [message.stream, streamKey(message.issuer, message.subject, message.stream)];
    }
    return key[1];
  }

  // -- input: the application ------------------------------------------------

  /**
   * The application takes `message` (from a `MessageReceived`), and is done
   * with the one it held. Moves the stream's mark (SPEC.md §7.3).
   *
   * Returns false if another connection delivered the same `(stream, seq)`
   * meanwhile: do not hand it over (it counts as done).
   *
   * Then call `nextDeadline` (an ack may be due sooner).
   *
   * @param {Message} message
   * @param {{now: number}} options
   * @returns {boolean}
   */
  takeMessage(message, { now }) {
    const held = this._held;
    if (held !== null) {
      this._held = null;
      this._remove(held.counter);
    }
    if (this._marks === null || this._marks.advance(this._streamKey(message), message.seq)) {
      this._held = message;
      if (held !== null) this._moved(now);
      return true;
    }
    this._remove(message.counter);
    this._moved(now);
    return false;
  }

  /**
   * The application is finished with `message` (taken or not: a message not
   * taken yet is taken first). Moves the delivery mark.
   *
   * Then call `nextDeadline` (an ack may be due sooner).
   *
   * @param {Message} message
   * @param {{now: number}} options
   */
  messageDone(message, { now }) {
    if (message !== this._held && !this.takeMessage(message, { now })) return;
    this._held = null;
    this._remove(message.counter);
    this._moved(now);
  }

  /**
   * @private
   * @param {UInt} counter
   */
  _remove(counter) {
    const index = this._outstanding.indexOf(counter);
    if (index >= 0) this._outstanding.splice(index, 1);
  }

  /**
   * The delivery mark may have moved: have it acknowledged within `ackDelay`
   * (coalescing: a due ack is not pushed back).
   *
   * @private
   * @param {number} now
   * @returns {null}
   */
  _moved(now) {
    if (
      this._ackDue === null &&
      this._ackDelay !== null &&
      this.state === State.OPEN &&
      this.delivered > this._sentAck
    ) {
      this._ackDue = now + this._ackDelay;
    }
    return null;
  }

  /**
   * Build a server frame carrying `payload` (null: a pure acknowledgement)
   * and the delivery mark (SPEC.md §7.1, §7.3).
   *
   * Then call `dataToSend` and write the frame.
   *
   * @param {Payload} payload
   * @param {{now: number}} options
   * @returns {Promise<void>}
   * @throws {InvalidState} before a client frame was verified, or on an
   *   `ed25519` connection without a server key (see `canSend`)
   * @throws {UsageError} for a payload that is not a string, bytes or null
   */
  sendMessage(payload, { now }) {
    if (payload !== null && typeof payload !== 'string' && !(payload instanceof Uint8Array)) {
      throw new UsageError('payload must be a string, a Uint8Array or null');
    }
    return this._serial(async () => {
      this._outgoing.push(await this._frame(payload, now));
    });
  }

  /**
   * @private
   * @param {Payload} payload
   * @param {number} now
   * @returns {Promise<Uint8Array>}
   */
  async _frame(payload, now) {
    const credential = this.verifierState.credential;
    if (credential === null) throw new InvalidState('no client frame accepted yet: a server frame has no key');
    let kind;
    let keyId;
    if (credential.kind === KIND_CLIENT_MAC) [kind, keyId] = [KIND_SERVER_MAC, credential.cid];
    else if (this._serverKey !== null) [kind, keyId] = [KIND_SERVER_ED25519, this._serverKey.kid];
    else throw new InvalidState('an ed25519 connection needs a server key to send frames');
    const size = TAG_SIZES[kind];
    // Never backwards (counters may arrive out of order, §6.6).
    const ack = larger(this.delivered, this._sentAck);
    const counter = typeof this._serverCounter === 'bigint' ? this._serverCounter + 1n : this._serverCounter + 1;
    const fields = [VERSION, kind, keyId, this.nonce, counter, ack, Math.trunc(now * 1000), payload];
    const body = seal([...fields, new Uint8Array(size)], size);
    // Commit before the await: a claimCounter meanwhile takes the next one.
    this._serverCounter = counter;
    this._sentAck = ack;
    if (this._ackDue !== null && this.delivered <= ack) this._ackDue = null; // this frame carries it
    const signed = concat(this.verifier.serverPrefix, body);
    const tag =
      kind === KIND_SERVER_MAC
        ? await /** @type {HMACKey} */ (credential.frameKey).mac(signed)
        : await /** @type {ServerKey} */ (this._serverKey).privateKey.sign(signed);
    return concat(body, new Uint8Array([0xc4, size]), tag);
  }

  /**
   * Take the next server counter for a frame built outside this class: a
   * broadcast frame (SPEC.md §14.3), which shares the connection's server
   * counter. Write it before any frame `sendMessage` queues next.
   *
   * @returns {UInt}
   * @throws {InvalidState} before any client frame was verified (§7.1)
   */
  claimCounter() {
    if (this.verifierState.credential === null) {
      throw new InvalidState('no client frame accepted yet: a server frame has no key');
    }
    const counter = this._serverCounter;
    this._serverCounter = typeof counter === 'bigint' ? counter + 1n : counter + 1;
    return this._serverCounter;
  }

  // -- input: time and the pump ----------------------------------------------

  /**
   * The pump reads from now on, waiting for the next frame (after `paused`,
   * or after a frame it read for `verify`). The frame deadline runs from
   * `now`.
   *
   * Then call `nextDeadline`.
   *
   * @param {number} now
   */
  reading(now) {
    if (this._live) this._waitingSince = now;
  }

  /**
   * The pump stopped reading (backpressure): no frame deadline runs until
   * `reading`.
   */
  paused() {
    this._waitingSince = null;
  }

  /**
   * Time passed (the pump's timer for `nextDeadline` fired). A due
   * acknowledgement is queued; a frame deadline that passed rejects the
   * connection (`first_frame_timeout` or `idle_timeout`, SPEC.md §10).
   *
   * Then call `eventsReceived`, `dataToSend` and `nextDeadline`.
   *
   * @param {number} now
   * @returns {Promise<void>}
   */
  advanceTime(now) {
    return this._serial(() => this._advance(now));
  }

  /**
   * @private
   * @param {number} now
   */
  async _advance(now) {
    if (!this._live) return;
    const since = this._waitingSince;
    const timeout = this._timeout;
    if (since !== null && timeout !== null && now >= since + timeout) {
      const code = this.state === State.OPEN ? Code.idle_timeout : Code.first_frame_timeout;
      this._reject(code, `no valid frame in ${timeout} s`);
      return;
    }
    const due = this._ackDue;
    if (due !== null && now >= due) {
      this._ackDue = null;
      if (this.delivered > this._sentAck) this._outgoing.push(await this._frame(null, now));
    }
  }

  /**
   * Queue the due acknowledgement now rather than at its deadline (the
   * application returned: no frame of its own will carry it).
   *
   * Then call `dataToSend`.
   *
   * @param {number} now
   * @returns {Promise<void>}
   */
  flushAck(now) {
    return this._serial(async () => {
      if (this._ackDue !== null) {
        this._ackDue = now;
        await this._advance(now);
      }
    });
  }

  /**
   * The connection is gone: give the principal's connection back (see
   * `PrincipalLimit`). Nothing is accepted or due afterwards. Idempotent.
   */
  connectionClosed() {
    if (this.state === State.CLOSED) return;
    if (this.principal !== null && this._principals !== null) this._principals.unbind(this.principal);
    this.state = State.CLOSED;
    this._ackDue = null;
    this._waitingSince = null;
  }

  // -- output ----------------------------------------------------------------

  /** The frames to write, in order (the hello first), since the last call. @returns {Uint8Array[]} */
  dataToSend() {
    const data = this._outgoing;
    if (data.length) this._outgoing = [];
    return data;
  }

  /** The events since the last call, in order. @returns {Array<MessageReceived | ConnectionRejected>} */
  eventsReceived() {
    const events = this._events;
    if (events.length) this._events = [];
    return events;
  }

  /**
   * When `advanceTime` must be called next: the earlier of a due
   * acknowledgement and the frame deadline (while reading); null if neither.
   *
   * @returns {number | null}
   */
  nextDeadline() {
    const due = this._ackDue;
    const since = this._waitingSince;
    if (since !== null && this._timeout !== null) {
      const deadline = since + this._timeout;
      if (due === null || deadline < due) return deadline;
    }
    return due;
  }
}

/** @param {Uint8Array} a @param {Uint8Array} b */
function sameBytes(a, b) {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
