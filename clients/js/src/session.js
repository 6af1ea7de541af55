/**
 * The server side of one connection, above the verifier (SPEC.md §5, §7):
 * nonce and hello, verified client frames, authenticated server frames that
 * carry acknowledgements. No I/O and no clock: `now` is passed in.
 *
 * @module signedws/session
 */

import { concat, randomBytes } from './bytes.js';
import { increment } from './codec.js';
import {
  KIND_CLIENT_MAC,
  KIND_SERVER_ED25519,
  KIND_SERVER_MAC,
  TAG_SIZES,
  VERSION,
  seal,
  strField,
} from './envelope.js';
import { Code, Rejected, UsageError } from './errors.js';
import { Ed25519PrivateKey, HMACKey } from './keys.js';
import { ConnectionState, Verifier } from './verifier.js';

/** @typedef {import('./codec.js').UInt} UInt */
/** @typedef {import('./envelope.js').Payload} Payload */

/**
 * The key an `ed25519` server signs its frames with, and its id.
 *
 * @typedef {object} ServerKey
 * @property {string} kid
 * @property {Ed25519PrivateKey} privateKey
 */

export class ServerSession {
  /**
   * Use `ServerSession.create`.
   *
   * @param {Verifier} verifier
   * @param {ConnectionState} state
   * @param {Uint8Array} hello
   * @param {ServerKey | null} serverKey
   */
  constructor(verifier, state, hello, serverKey) {
    this.verifier = verifier;
    this.state = state;
    /** The hello, to send as the connection's first message. */
    this.hello = hello;
    /** @private */
    this._serverKey = serverKey;
    /** @private @type {UInt} */
    this._serverCounter = 0;
    /** @private @type {UInt} */
    this._sentAck = 0;
    /** @private @type {UInt | null} */
    this._delivered = null;
  }

  /**
   * @param {Verifier} verifier
   * @param {{now: number, serverKey?: ServerKey | null,
   *          random?: import('./bytes.js').RandomSource}} options
   * @returns {Promise<ServerSession>}
   */
  static async create(verifier, { now, serverKey = null, random = randomBytes }) {
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
    return new ServerSession(verifier, state, verifier.hello(state, { now }), serverKey);
  }

  /** The connection nonce. */
  get nonce() {
    return this.state.nonce;
  }

  /**
   * How far acknowledgements may go (SPEC.md §7.3): the counter up to which
   * every accepted frame was delivered. Until `deliver` is first called it
   * follows the highest accepted counter (for callers that deliver each
   * message as `receive` returns it).
   *
   * @returns {UInt}
   */
  get delivered() {
    return this._delivered === null ? this.state.highest : this._delivered;
  }

  /**
   * Record that every accepted frame up to `counter` was delivered. A
   * transport that queues messages for the application calls this as the
   * application finishes with them; from the first call on, acknowledgements
   * follow these calls instead of verification.
   *
   * @param {UInt} counter
   * @throws {UsageError} if `counter` goes backwards or beyond the highest
   *   accepted counter
   */
  deliver(counter) {
    const floor = this._delivered ?? 0;
    if (!(floor <= counter && counter <= this.state.highest)) {
      throw new UsageError(`delivered counter ${counter} outside ${floor}..${this.state.highest}`);
    }
    this._delivered = counter;
  }

  /** Whether frames were delivered since the last acknowledgement sent. */
  get ackPending() {
    return this.delivered > this._sentAck;
  }

  /**
   * Verify a client frame (SPEC.md §6.4).
   *
   * @param {Uint8Array} data
   * @param {{now: number}} options
   * @returns {Promise<import('./verifier.js').Message>}
   * @throws {Rejected} close the connection with `error.code.closeCode`
   */
  receive(data, { now }) {
    return this.verifier.verify(data, this.state, { now });
  }

  /**
   * Build a server frame for `payload` (null: a pure acknowledgement),
   * acknowledging every client frame delivered so far (see `delivered`).
   *
   * @param {Payload} payload
   * @param {{now: number}} options
   * @returns {Promise<Uint8Array>}
   * @throws {UsageError} before any client frame was accepted, on an `ed25519`
   *   connection without a server key, or for a payload of the wrong type
   */
  async send(payload, { now }) {
    if (payload !== null && typeof payload !== 'string' && !(payload instanceof Uint8Array)) {
      throw new UsageError('payload must be a string, a Uint8Array or null');
    }
    const credential = this.state.credential;
    if (credential === null) throw new UsageError('no client frame accepted yet: a server frame has no key');
    let kind;
    let keyId;
    if (credential.kind === KIND_CLIENT_MAC) [kind, keyId] = [KIND_SERVER_MAC, credential.cid];
    else if (this._serverKey !== null) [kind, keyId] = [KIND_SERVER_ED25519, this._serverKey.kid];
    else throw new UsageError('an ed25519 connection needs a server key to send frames');
    const size = TAG_SIZES[kind];
    const ack = this.delivered;
    const counter = increment(this._serverCounter);
    // Reserve the counter and ack before the first await: frames built by
    // concurrent calls carry increasing counters in call order.
    this._serverCounter = counter;
    this._sentAck = ack;
    const body = seal(
      [VERSION, kind, keyId, this.state.nonce, counter, ack, Math.trunc(now * 1000), payload, new Uint8Array(size)],
      size,
    );
    const signed = concat(this.verifier.serverPrefix, body);
    const tag =
      kind === KIND_SERVER_MAC
        ? await /** @type {HMACKey} */ (credential.frameKey).mac(signed)
        : await /** @type {ServerKey} */ (this._serverKey).privateKey.sign(signed);
    return concat(body, new Uint8Array([0xc4, size]), tag);
  }

  /**
   * Take the next server counter for a frame built outside `send`: a
   * broadcast frame (SPEC.md §14.3), which shares the connection's server
   * counter. Write the frame before any frame `send` builds afterwards.
   *
   * @returns {UInt}
   * @throws {UsageError} before any client frame was accepted (SPEC.md §7.1)
   */
  claimCounter() {
    if (this.state.credential === null) throw new UsageError('no client frame accepted yet: a server frame has no key');
    this._serverCounter = increment(this._serverCounter);
    return this._serverCounter;
  }

  /**
   * A pure acknowledgement frame (see `send`).
   *
   * @param {{now: number}} options
   * @returns {Promise<Uint8Array>}
   */
  ack({ now }) {
    return this.send(null, { now });
  }
}
