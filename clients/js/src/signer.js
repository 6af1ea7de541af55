/**
 * The signer: the client side of one connection (SPEC.md §5.2, §6.3, §7.2).
 *
 * Theory of operation
 * -------------------
 * A `Signer` is made from the server's hello and the client's credential. It
 * owns the connection's counter. `sign` assigns the counter, the `seq` and the
 * timestamp synchronously, before its only `await` (the MAC or signature), so
 * frames get counters in call order even with concurrent callers; writing
 * them to the socket in that order is the adapter's job (it awaits each frame
 * before signing the next, under one lock).
 *
 * `verify` checks server frames (SPEC.md §7.2) and tracks the server's counter
 * and acknowledgements. Calls are queued and run one at a time; like the
 * server's verifier it changes nothing unless the frame authenticated.
 *
 * `refresh` swaps the credential; frame keys of earlier `mac` credentials are
 * kept (a few) so that server frames still in flight under them verify.
 *
 * @module signedws/signer
 */

import { Topics, checkBroadcast } from './broadcast.js';
import { concat, lengthPrefixed, randomBytes, toBytes, utf8 } from './bytes.js';
import { MAX_UINT64, increment, toUInt } from './codec.js';
import { Ed25519Credential, MACCredential } from './credential.js';
import {
  CLIENT_LABEL,
  DEFAULT_MAX_SERVER_FRAME_SIZE,
  KIND_CLIENT_ED25519,
  KIND_CLIENT_MAC,
  KIND_SERVER_ED25519,
  KIND_SERVER_MAC,
  SERVER_LABEL,
  STREAM_SIZE,
  TAG_SIZES,
  TYPE_KEY_REFERENCE,
  VERSION,
  decodeHello,
  seal,
  unverifiedServerFrame,
} from './envelope.js';
import { Code, Rejected, UsageError } from './errors.js';
import { Ed25519PublicKey, HMACKey } from './keys.js';

/** @typedef {import('./codec.js').UInt} UInt */
/** @typedef {import('./envelope.js').Payload} Payload */
/** @typedef {import('./envelope.js').Hello} Hello */
/** @typedef {import('./credential.js').ClientCredential} ClientCredential */

/** How many frame keys of earlier credentials a client keeps after refreshes. */
export const KEPT_FRAME_KEYS = 4;

/**
 * A verified server frame.
 *
 * @typedef {object} ServerMessage
 * @property {UInt} counter the server's counter
 * @property {UInt} ack the highest client counter the server accepted so far
 * @property {Payload} payload null for a pure acknowledgement
 * @property {UInt} timestampMs the server's timestamp
 */

/**
 * The server's public keys by id: a Map or a plain object, values as
 * `Ed25519PublicKey`s or 32-byte `Uint8Array`s.
 *
 * @typedef {Map<string, Ed25519PublicKey | Uint8Array> |
 *           Record<string, Ed25519PublicKey | Uint8Array>} ServerKeys
 */

/**
 * @param {ServerKeys | undefined | null} keys
 * @returns {Map<string, Ed25519PublicKey>}
 */
export function serverKeyMap(keys) {
  const entries = keys instanceof Map ? [...keys] : Object.entries(keys ?? {});
  return new Map(
    entries.map(([kid, key]) => [kid, key instanceof Ed25519PublicKey ? key : new Ed25519PublicKey(key)]),
  );
}

/**
 * `(iss, sub)` of a credential; a key reference has no `sub` on the client.
 *
 * @param {ClientCredential} credential
 * @returns {[string, string | null]}
 */
function principalOf(credential) {
  const claims = credential.claims;
  return claims.type === TYPE_KEY_REFERENCE ? [claims.iss, null] : [claims.iss, claims.sub];
}

/**
 * @param {UInt | number | bigint | null | undefined} value
 * @param {bigint} min
 * @param {bigint} max
 * @returns {boolean}
 */
function inRange(value, min, max) {
  if (typeof value === 'number') return Number.isInteger(value) && value >= min && value <= max;
  return typeof value === 'bigint' && value >= min && value <= max;
}

/** Signs client frames and verifies server frames for one connection. */
export class Signer {
  /**
   * @param {ClientCredential} credential
   * @param {Hello} hello the server's hello, already checked for its audience
   *   (see `fromHello`)
   * @param {object} options
   * @param {number} options.now the client's clock, seconds, when the hello
   *   arrived: frames are stamped with the client clock corrected by the server's
   * @param {ServerKeys} [options.serverKeys] for `ed25519` clients, the server's
   *   public keys by id, to verify server frames (SPEC.md §7.1)
   * @param {Uint8Array} [options.stream] the 16-byte stream id (SPEC.md §7.3),
   *   random if omitted: pass the same one to every connection's signer
   * @param {number | bigint} [options.seq] the `seq` of the last message
   *   already numbered in the stream (0 for a new stream)
   * @param {Topics} [options.topics] the client's topic marks for broadcasts
   *   (SPEC.md §14.4), new if omitted: pass the same one to every connection's signer
   * @throws {UsageError} for an invalid credential, stream or seq
   */
  constructor(credential, hello, { now, serverKeys, stream = randomBytes(STREAM_SIZE), seq = 0, topics = new Topics() }) {
    if (!(stream instanceof Uint8Array) || stream.length !== STREAM_SIZE) {
      throw new UsageError(`stream must be ${STREAM_SIZE} bytes`);
    }
    if (!inRange(seq, 0n, MAX_UINT64 - 1n)) throw new UsageError('seq must be an integer from 0 to 2**64-2');
    if (!(credential instanceof MACCredential || credential instanceof Ed25519Credential)) {
      throw new UsageError('credential must be a MACCredential or an Ed25519Credential');
    }
    /** @readonly */
    this.stream = stream.slice();
    /** @private @type {UInt} */
    this._seq = toUInt(seq);
    /** @readonly */
    this.hello = hello;
    /** @readonly */
    this.topics = topics;
    const aud = lengthPrefixed(utf8(hello.audience));
    /** @private */
    this._clientPrefix = concat(CLIENT_LABEL, aud);
    /** @private */
    this._serverPrefix = concat(SERVER_LABEL, aud);
    /** @private */
    this._offsetMs = BigInt(hello.serverTimeMs) - BigInt(Math.trunc(now * 1000));
    /** @private */
    this._serverKeys = serverKeyMap(serverKeys);
    /** @private @type {UInt} */
    this._counter = 0;
    /** @private @type {UInt} */
    this._serverCounter = 0;
    /** @private @type {UInt} */
    this._ack = 0;
    /** @private @type {Map<string, HMACKey>} */
    this._frameKeys = new Map();
    /** The server frame kinds of the schemes held on this connection (SPEC.md §7.2
     * step 2): a refresh may change the scheme (§4.5). @type {Set<number>} */
    this._serverKinds = new Set();
    /** @private @type {Promise<unknown>} */
    this._verifying = Promise.resolve();
    /** @private */
    this._credential = credential;
    /** @private */
    this._principal = principalOf(credential);
    this._install(credential);
  }

  /**
   * Start a connection from the hello's bytes (SPEC.md §5.2).
   *
   * @param {Uint8Array | ArrayBuffer} data
   * @param {ClientCredential} credential
   * @param {{audience: string, now: number, serverKeys?: ServerKeys,
   *          stream?: Uint8Array, seq?: number | bigint, topics?: Topics}} options
   * @returns {Signer}
   * @throws {Rejected} `malformed`/`unsupported_version` for a bad hello,
   *   `audience_mismatch` if it names another audience than the one the
   *   client meant to reach
   */
  static fromHello(data, credential, { audience, ...options }) {
    const hello = decodeHello(toBytes(data));
    if (hello.audience !== audience) throw new Rejected(Code.audience_mismatch, 'hello names another audience');
    return new Signer(credential, hello, options);
  }

  /**
   * @private
   * @param {ClientCredential} credential
   */
  _install(credential) {
    if (credential instanceof MACCredential) {
      this._serverKinds.add(KIND_SERVER_MAC);
      this._kind = KIND_CLIENT_MAC;
      this._cred = credential.token;
      this._frameKeys.set(credential.cid, credential.frameKey);
      while (this._frameKeys.size > KEPT_FRAME_KEYS) {
        this._frameKeys.delete(/** @type {string} */ (this._frameKeys.keys().next().value));
      }
    } else {
      this._serverKinds.add(KIND_SERVER_ED25519);
      this._kind = KIND_CLIENT_ED25519;
      this._cred = credential.credential;
    }
  }

  /** The connection nonce. */
  get nonce() {
    return this.hello.nonce;
  }

  /** The counter of the last frame signed (0 before the first). @returns {UInt} */
  get counter() {
    return this._counter;
  }

  /** The `seq` of the last message numbered in the stream. @returns {UInt} */
  get seq() {
    return this._seq;
  }

  /** The highest client counter the server acknowledged. @returns {UInt} */
  get acked() {
    return this._ack;
  }

  /** The credential frames are signed with now. @returns {ClientCredential} */
  get credential() {
    return this._credential;
  }

  /**
   * Sign the next frames with `credential` (SPEC.md §4.5).
   *
   * The scheme may change (a token to a certificate or key reference, or back):
   * the next frames are of the new credential's kind, and server frames of both
   * schemes verify from then on (SPEC.md §7.2 step 2).
   *
   * @param {ClientCredential} credential
   * @throws {UsageError} if `credential` is of another issuer or subject (the
   *   server would refuse it with `credential_mismatch`)
   */
  refresh(credential) {
    if (!(credential instanceof MACCredential) && !(credential instanceof Ed25519Credential)) {
      throw new UsageError('refresh needs a MACCredential or an Ed25519Credential');
    }
    const [iss, sub] = principalOf(credential);
    const [boundIss, boundSub] = this._principal;
    if (iss !== boundIss || (sub !== null && boundSub !== null && sub !== boundSub)) {
      throw new UsageError('a refreshed credential must have the same issuer and subject');
    }
    this._credential = credential;
    this._install(credential);
  }

  /**
   * Build the next client frame for `payload`.
   *
   * The counter, `seq` and timestamp are assigned before this returns its
   * promise: frames are numbered in call order.
   *
   * @param {Payload} payload text, binary, or null (a control frame, §6.5)
   * @param {{now: number, seq?: number | bigint | null}} options `now`: the
   *   client's clock, seconds; `seq`: for a message resent after a reconnect,
   *   its original number in the stream (SPEC.md §7.3); omit it for a new
   *   message, which gets the stream's next number (ignored for null)
   * @returns {Promise<Uint8Array>} the frame, to send as one binary message
   * @throws {UsageError} if the payload has the wrong type, `seq` is invalid,
   *   the frame would exceed the server's `max_frame`, or the counter is
   *   exhausted (reconnect to continue)
   */
  async sign(payload, { now, seq = null }) {
    if (payload !== null && typeof payload !== 'string' && !(payload instanceof Uint8Array)) {
      throw new UsageError('payload must be a string, a Uint8Array or null');
    }
    if (seq !== null && !inRange(seq, 1n, MAX_UINT64)) throw new UsageError('seq must be an integer from 1 to 2**64-1');
    if (BigInt(this._counter) >= MAX_UINT64) throw new UsageError('counter exhausted: reconnect for a new nonce');
    const ctr = increment(this._counter);
    /** @type {UInt} */
    let number;
    if (payload === null) number = 0;
    else if (seq === null) {
      if (BigInt(this._seq) >= MAX_UINT64) throw new UsageError('stream exhausted: start a new stream');
      number = increment(this._seq);
    } else number = toUInt(seq);
    const stamp = BigInt(Math.trunc(now * 1000)) + this._offsetMs;
    // The offset comes from the unauthenticated hello (SPEC.md §11.6): a forged
    // server time gives frames the server refuses (timestamp_skew), never a
    // timestamp outside the uint64 range.
    const ts = toUInt(stamp < 0n ? 0n : stamp > MAX_UINT64 ? MAX_UINT64 : stamp);
    const kind = /** @type {number} */ (this._kind);
    const size = TAG_SIZES[kind];
    const fields = [VERSION, kind, this._cred, this.hello.nonce, ctr, ts, this.stream, number, payload];
    const body = seal([...fields, new Uint8Array(size)], size);
    const length = body.length + 2 + size;
    if (length > this.hello.maxFrameSize) {
      throw new UsageError(`frame of ${length} bytes exceeds the server's limit of ${this.hello.maxFrameSize}`);
    }
    // Commit before the first await (see the module's theory of operation).
    this._counter = ctr;
    if (seq === null && payload !== null) this._seq = number;
    const signed = concat(this._clientPrefix, body);
    const credential = this._credential;
    const tag =
      credential instanceof MACCredential
        ? await credential.frameKey.mac(signed)
        : await credential.privateKey.sign(signed);
    return concat(body, new Uint8Array([0xc4, size]), tag);
  }

  /**
   * Verify a server frame. Calls are queued and run one at a time.
   *
   * @param {Uint8Array | ArrayBuffer} data the exact bytes received
   * @param {{now?: number}} [options] the client's clock (unused by v1's
   *   checks; kept for symmetry with the server)
   * @returns {Promise<ServerMessage>}
   * @throws {Rejected} with the code of the first failing step; nothing
   *   changes. The client closes the connection with the code's close code.
   */
  verify(data, options = {}) {
    void options;
    const bytes = toBytes(data);
    const result = this._verifying.then(() => this._verify(bytes));
    this._verifying = result.catch(() => undefined);
    return result;
  }

  /**
   * @private
   * @param {Uint8Array} data
   * @returns {Promise<ServerMessage>}
   */
  async _verify(data) {
    if (data.length > DEFAULT_MAX_SERVER_FRAME_SIZE) {
      throw new Rejected(Code.frame_too_large, `server frame of ${data.length} bytes`);
    }
    const frame = unverifiedServerFrame(data);
    if (!this._serverKinds.has(frame.kind)) throw new Rejected(Code.scheme_mismatch, `server frame kind ${frame.kind}`);
    if (!sameBytes(frame.nonce, this.hello.nonce)) throw new Rejected(Code.nonce_mismatch, "not this connection's nonce");
    if (frame.counter <= this._serverCounter) {
      throw new Rejected(Code.replay, `server counter ${frame.counter} not above ${this._serverCounter}`);
    }
    if (!(this._ack <= frame.ack && frame.ack <= this._counter)) {
      throw new Rejected(Code.ack_invalid, `ack ${frame.ack} outside ${this._ack}..${this._counter}`);
    }
    const size = TAG_SIZES[frame.kind];
    const signed = concat(this._serverPrefix, data.subarray(0, data.length - (size + 2)));
    if (frame.kind === KIND_SERVER_MAC) {
      const frameKey = this._frameKeys.get(frame.keyId);
      if (frameKey === undefined) throw new Rejected(Code.unknown_key, `no frame key for cid ${JSON.stringify(frame.keyId)}`);
      if (!(await frameKey.verify(frame.tag, signed))) throw new Rejected(Code.bad_tag, `server frame ${frame.counter}`);
    } else {
      const serverKey = this._serverKeys.get(frame.keyId);
      if (serverKey === undefined) throw new Rejected(Code.unknown_key, `no server key ${JSON.stringify(frame.keyId)}`);
      if (!(await serverKey.verify(frame.tag, signed))) {
        throw new Rejected(Code.bad_signature, `server frame ${frame.counter}`);
      }
    }
    this._serverCounter = frame.counter;
    this._ack = frame.ack;
    const payload = frame.payload instanceof Uint8Array ? frame.payload.slice() : frame.payload;
    return { counter: frame.counter, ack: frame.ack, payload, timestampMs: frame.timestampMs };
  }

  /**
   * Verify a broadcast frame (SPEC.md §14.4; kinds 6 and 7). It shares the
   * connection's server counter with `verify` and is queued with it; the
   * topic's mark moves to the message's `tseq`.
   *
   * @param {Uint8Array | ArrayBuffer} data the exact bytes received
   * @param {{now?: number}} [options]
   * @returns {Promise<import('./broadcast.js').BroadcastMessage>}
   * @throws {Rejected} with the code of the first failing step; nothing changes
   */
  verifyBroadcast(data, options = {}) {
    void options;
    const bytes = toBytes(data);
    const result = this._verifying.then(async () => {
      const message = await checkBroadcast(bytes, {
        audience: this.hello.audience,
        nonce: this.hello.nonce,
        serverCounter: this._serverCounter,
        mac: this._kind === KIND_CLIENT_MAC,
        frameKeys: this._frameKeys,
        serverKeys: this._serverKeys,
        topics: this.topics,
      });
      this._serverCounter = message.counter;
      this.topics.commit(message);
      return message;
    });
    this._verifying = result.catch(() => undefined);
    return result;
  }

  /**
   * Verify a server frame (`verify`) or a broadcast frame (`verifyBroadcast`),
   * told apart by their first bytes: a canonical broadcast frame starts with
   * an 8-element array, version 1, kind 6 or 7. The one call a client's
   * receive loop needs; either path checks the whole frame.
   *
   * @param {Uint8Array | ArrayBuffer} data the exact bytes received
   * @param {{now?: number}} [options]
   * @returns {Promise<ServerMessage | import('./broadcast.js').BroadcastMessage>}
   */
  verifyAny(data, options = {}) {
    const bytes = toBytes(data);
    if (bytes[0] === 0x98 && bytes[1] === 0x01 && (bytes[2] === 0x06 || bytes[2] === 0x07)) {
      return this.verifyBroadcast(bytes, options);
    }
    return this.verify(bytes, options);
  }

  toString() {
    return `Signer(${this._credential}, counter=${this._counter}, acked=${this._ack})`;
  }
}

/** @param {Uint8Array} a @param {Uint8Array} b */
function sameBytes(a, b) {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
