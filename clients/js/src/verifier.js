/**
 * The verifier: the server's per-frame checks (SPEC.md §6.4).
 *
 * The JavaScript package is first a client; this module is its server side,
 * complete enough to run every vector of `vectors/frames.json` and
 * `credentials.json` as a second implementation of SPEC.md, and to serve
 * signedws from Node if one wants to.
 *
 * Theory of operation
 * -------------------
 * `Verifier` holds what all connections share: keyring, revocation set,
 * audience, nonce key, limits, and a cache of authenticated credentials.
 * `ConnectionState` holds one connection's nonce, replay window, binding and
 * current credential. `verify` runs §6.4's steps in order.
 *
 * Invariants:
 *
 * 1. `verify` rejects only with `Rejected`, for any input bytes.
 * 2. `verify` changes a `ConnectionState` only in its last step, after the MAC
 *    or signature verified; a rejected frame leaves it exactly as it was.
 * 3. The credential cache is a pure memo of what depends only on the
 *    credential bytes and the keyring; time, revocation and binding are checked
 *    on every frame. It is dropped when `Keyring.version` moves.
 * 4. No MAC or signature is computed for a frame that fails a cheaper step.
 * 5. Frames of one connection are verified one at a time: `verify` refuses a
 *    second call on a state whose previous call has not settled.
 *
 * @module signedws/verifier
 */

import { concat, lengthPrefixed, randomBytes, toHex, utf8 } from './bytes.js';
import { CERTIFICATE_LABEL, TOKEN_LABEL, TokenKeys, unverifiedCredential } from './credential.js';
import { checkPublicKey, checkSignature } from './ed25519.js';
import {
  CLIENT_LABEL,
  KIND_CLIENT_ED25519,
  KIND_CLIENT_MAC,
  SERVER_LABEL,
  TYPE_KEY_REFERENCE,
  TYPE_TOKEN,
  encodeHello,
  unverifiedClientFrame,
} from './envelope.js';
import { Code, Rejected, UsageError } from './errors.js';
import { Keyring } from './keyring.js';
import { Ed25519PublicKey, HMACKey } from './keys.js';
import { NODE_ID_SIZE, NonceKey, unverifiedExpiry } from './nonce.js';
import * as replay from './replay.js';
import { EMPTY, RevocationSet } from './revocation.js';

/** @typedef {import('./codec.js').UInt} UInt */
/** @typedef {import('./envelope.js').Payload} Payload */

export const DEFAULT_MAX_FRAME_SIZE = 65536;
export const DEFAULT_MAX_SKEW = 300;
export const DEFAULT_LEEWAY = 30;
export const DEFAULT_NONCE_TTL = 86400;
export const DEFAULT_CACHE_SIZE = 4096;

/**
 * A verified client frame: the only handle on its payload.
 *
 * @typedef {object} Message
 * @property {string} subject the authenticated principal
 * @property {string} issuer
 * @property {string[]} scopes
 * @property {UInt} counter
 * @property {Uint8Array} stream
 * @property {UInt} seq 0 for a control frame
 * @property {Payload} payload null for a control frame
 * @property {string} credentialId
 * @property {UInt} timestampMs
 */

/**
 * A credential that passed authentication, as the cache holds it.
 *
 * @typedef {object} VerifiedCredential
 * @property {number} kind
 * @property {string} iss
 * @property {string} sub
 * @property {string} cid
 * @property {string[]} scopes
 * @property {UInt} iat
 * @property {bigint} iatMs
 * @property {bigint} expMs
 * @property {boolean} audOk
 * @property {[bigint, bigint]} keyWindow
 * @property {HMACKey | null} frameKey
 * @property {Ed25519PublicKey | null} publicKey
 */

/** Per-connection verifier state (SPEC.md §6.4). */
export class ConnectionState {
  /** @param {Uint8Array} nonce */
  constructor(nonce) {
    this.nonce = nonce;
    this.nonceExpiresMs = BigInt(unverifiedExpiry(nonce)) * 1000n;
    /** @type {UInt} */
    this.highest = 0;
    this.bitmap = 0n;
    /** @type {[string, string] | null} */
    this.principal = null;
    /** @type {VerifiedCredential | null} */
    this.credential = null;
    /** @internal */
    this.busy = false;
  }
}

/** @param {number} kind */
const schemeMismatch = (kind) =>
  new Rejected(Code.scheme_mismatch, `frame kind ${kind} with a credential of another scheme`);

/** @param {number} now seconds @returns {bigint} milliseconds */
const millis = (now) => BigInt(Math.trunc(now * 1000));

export class Verifier {
  /**
   * Use `Verifier.create`.
   *
   * @param {Keyring} keyring
   * @param {NonceKey} nonceKey
   * @param {Required<VerifierOptions>} options
   */
  constructor(keyring, nonceKey, options) {
    this.keyring = keyring;
    this.nonceKey = nonceKey;
    this.audience = options.audience;
    this.revocations = options.revocations;
    this.nodeId = options.nodeId;
    this.window = options.window;
    this.maxFrameSize = options.maxFrameSize;
    this.maxSkewMs = BigInt(Math.trunc(options.maxSkew * 1000));
    this.leewayMs = BigInt(Math.trunc(options.leeway * 1000));
    this.nonceTtl = options.nonceTtl;
    this.cacheSize = options.cacheSize;
    const aud = lengthPrefixed(utf8(this.audience));
    this.clientPrefix = concat(CLIENT_LABEL, aud);
    this.serverPrefix = concat(SERVER_LABEL, aud);
    /** @private @type {Map<string, VerifiedCredential>} */
    this._cache = new Map();
    /** @private */
    this._cacheVersion = keyring.version;
  }

  /**
   * @typedef {object} VerifierOptions
   * @property {string} audience this service's identity, shared by its fleet
   * @property {HMACKey} fleetKey the fleet secret (imported `derivable: true`)
   * @property {Uint8Array} [nodeId] 8 bytes; random if omitted
   * @property {RevocationSet} [revocations]
   * @property {number} [window] replay window, 0 to 1024
   * @property {number} [maxFrameSize] bytes, checked before decoding
   * @property {number} [maxSkew] seconds
   * @property {number} [leeway] seconds, on `iat` only
   * @property {number} [nonceTtl] seconds
   * @property {number} [cacheSize] credential cache entries
   */

  /**
   * @param {Keyring} keyring
   * @param {VerifierOptions} options
   * @returns {Promise<Verifier>}
   */
  static async create(keyring, options) {
    if (!(keyring instanceof Keyring)) throw new UsageError('keyring must be a Keyring');
    const {
      audience,
      fleetKey,
      nodeId = randomBytes(NODE_ID_SIZE),
      revocations = EMPTY,
      window = 0,
      maxFrameSize = DEFAULT_MAX_FRAME_SIZE,
      maxSkew = DEFAULT_MAX_SKEW,
      leeway = DEFAULT_LEEWAY,
      nonceTtl = DEFAULT_NONCE_TTL,
      cacheSize = DEFAULT_CACHE_SIZE,
    } = options;
    if (!(revocations instanceof RevocationSet)) throw new UsageError('revocations must be a RevocationSet');
    if (!(nodeId instanceof Uint8Array) || nodeId.length !== NODE_ID_SIZE) {
      throw new UsageError(`nodeId must be ${NODE_ID_SIZE} bytes`);
    }
    if (!Number.isInteger(window) || window < 0 || window > replay.MAX_WINDOW) {
      throw new UsageError(`replay window must be an integer from 0 to ${replay.MAX_WINDOW}`);
    }
    for (const [name, value] of Object.entries({ maxFrameSize, cacheSize, nonceTtl })) {
      if (!Number.isInteger(value) || value < 1) throw new UsageError(`${name} must be a positive integer`);
    }
    if (maxSkew < 0 || leeway < 0) throw new UsageError('maxSkew and leeway must not be negative');
    const nonceKey = await NonceKey.create(fleetKey, audience);
    return new Verifier(keyring, nonceKey, {
      audience, fleetKey, nodeId, revocations, window, maxFrameSize, maxSkew, leeway, nonceTtl, cacheSize,
    });
  }

  /**
   * Start a connection: mint its nonce (SPEC.md §5.3).
   *
   * @param {{now: number, random?: import('./bytes.js').RandomSource}} options
   * @returns {Promise<ConnectionState>}
   */
  async open({ now, random = randomBytes }) {
    const nonce = await this.nonceKey.mint({ nodeId: this.nodeId, now, ttl: this.nonceTtl, random });
    return new ConnectionState(nonce);
  }

  /**
   * The hello to send first on a connection (SPEC.md §5.2).
   *
   * @param {ConnectionState} state
   * @param {{now: number}} options
   * @returns {Uint8Array}
   */
  hello(state, { now }) {
    return encodeHello({
      nonce: state.nonce,
      audience: this.audience,
      serverTimeMs: Math.trunc(now * 1000),
      maxFrameSize: this.maxFrameSize,
      window: this.window,
    });
  }

  /** Drop every cached credential (they are authenticated again on use). */
  clearCache() {
    this._cache = new Map();
  }

  /**
   * Steps 7.1-7.3 on a cache miss.
   *
   * @private
   * @param {Uint8Array} cred
   * @param {number} kind
   * @returns {Promise<VerifiedCredential>}
   */
  async _authenticate(cred, kind) {
    const claims = unverifiedCredential(cred);
    const credentialKind = claims.type === TYPE_TOKEN ? KIND_CLIENT_MAC : KIND_CLIENT_ED25519;
    if (credentialKind !== kind) throw schemeMismatch(kind);
    if (claims.type === TYPE_KEY_REFERENCE) {
      const reg = this.keyring.registeredKey(claims.iss, claims.kid);
      return {
        kind,
        iss: reg.issuer,
        sub: reg.subject,
        cid: reg.kid,
        scopes: reg.scopes,
        iat: reg.notBefore,
        iatMs: BigInt(reg.notBefore) * 1000n,
        expMs: BigInt(reg.expires) * 1000n,
        audOk: reg.audiences.length === 0 || reg.audiences.includes(this.audience),
        keyWindow: [0n, 1n << 64n],
        frameKey: null,
        publicKey: reg.publicKey,
      };
    }
    const entry = this.keyring.issuerKey(claims.iss, claims.kid);
    const ident = `iss=${JSON.stringify(claims.iss)} kid=${JSON.stringify(claims.kid)} cid=${JSON.stringify(claims.cid)}`;
    let frameKey = null;
    let publicKey = null;
    if (claims.type === TYPE_TOKEN) {
      if (!(entry.key instanceof TokenKeys)) throw new Rejected(Code.unknown_key, `${ident}: key is not an HMAC issuer key`);
      if (!(await entry.key.tokenKey.verify(claims.tag, concat(TOKEN_LABEL, claims.body)))) {
        throw new Rejected(Code.credential_invalid, `${ident}: token tag does not verify`);
      }
      frameKey = await HMACKey.fromBytes(await entry.key.frameKeyBytes(cred));
    } else {
      if (!(entry.key instanceof Ed25519PublicKey)) {
        throw new Rejected(Code.unknown_key, `${ident}: key is not an Ed25519 issuer key`);
      }
      const certified = /** @type {Uint8Array} */ (claims.publicKey);
      const problem = checkPublicKey(certified);
      if (problem !== null) throw new Rejected(Code.weak_key, `${ident}: certified key: ${problem}`);
      if (!(await entry.key.verify(claims.tag, concat(CERTIFICATE_LABEL, claims.body)))) {
        throw new Rejected(Code.credential_invalid, `${ident}: certificate signature does not verify`);
      }
      publicKey = new Ed25519PublicKey(certified);
    }
    return {
      kind,
      iss: claims.iss,
      sub: claims.sub,
      cid: claims.cid,
      scopes: claims.scopes,
      iat: claims.iat,
      iatMs: BigInt(claims.iat) * 1000n,
      expMs: BigInt(claims.exp) * 1000n,
      audOk: claims.aud.length === 0 || claims.aud.includes(this.audience),
      keyWindow: entry.windowMs,
      frameKey,
      publicKey,
    };
  }

  /**
   * @private
   * @param {Uint8Array} cred
   * @param {number} kind
   * @returns {Promise<VerifiedCredential>}
   */
  async _credential(cred, kind) {
    if (this._cacheVersion !== this.keyring.version) {
      this._cache = new Map();
      this._cacheVersion = this.keyring.version;
    }
    const key = toHex(cred);
    let vc = this._cache.get(key);
    if (vc === undefined) {
      vc = await this._authenticate(cred, kind);
      if (this._cache.size >= this.cacheSize) {
        this._cache.delete(/** @type {string} */ (this._cache.keys().next().value));
      }
      this._cache.set(key, vc);
    } else if (vc.kind !== kind) {
      throw schemeMismatch(kind);
    }
    return vc;
  }

  /**
   * Verify one client frame received on `state`'s connection.
   *
   * @param {Uint8Array} data the exact bytes of the binary WebSocket message
   * @param {ConnectionState} state
   * @param {{now: number}} options the server's clock, seconds
   * @returns {Promise<Message>} `state` has advanced past it
   * @throws {Rejected} with the code of the first failing step of §6.4;
   *   `state` is unchanged
   */
  async verify(data, state, { now }) {
    if (state.busy) throw new UsageError('frames of one connection are verified one at a time');
    state.busy = true;
    try {
      return await this._verify(data.slice(), state, millis(now));
    } finally {
      state.busy = false;
    }
  }

  /**
   * @private
   * @param {Uint8Array} data
   * @param {ConnectionState} state
   * @param {bigint} nowMs
   * @returns {Promise<Message>}
   */
  async _verify(data, state, nowMs) {
    // 1. Size, before any decoding.
    if (data.length > this.maxFrameSize) {
      throw new Rejected(Code.frame_too_large, `${data.length} bytes, over ${this.maxFrameSize}`);
    }
    // 2-4. Decode, version, structure.
    const frame = unverifiedClientFrame(data);
    const { kind, counter: ctr } = frame;
    // 5. Nonce.
    if (toHex(frame.nonce) !== toHex(state.nonce)) throw new Rejected(Code.nonce_mismatch, "not this connection's nonce");
    if (nowMs >= state.nonceExpiresMs) {
      throw new Rejected(Code.nonce_expired, `connection nonce expired at ${state.nonceExpiresMs / 1000n}`);
    }
    // 6. Counter.
    const reason = replay.check(state.highest, state.bitmap, this.window, ctr);
    if (reason !== null) throw new Rejected(Code.replay, reason);
    // 7. Credential.
    const vc = await this._credential(frame.credential, kind);
    const who = `iss=${JSON.stringify(vc.iss)} cid=${JSON.stringify(vc.cid)}`;
    if (!(vc.keyWindow[0] <= nowMs && nowMs < vc.keyWindow[1])) {
      throw new Rejected(Code.unknown_key, `${who}: issuer key not valid now`);
    }
    if (nowMs < vc.iatMs - this.leewayMs) throw new Rejected(Code.credential_not_yet_valid, `${who}: iat ${vc.iat}`);
    if (nowMs >= vc.expMs) throw new Rejected(Code.credential_expired, `${who}: exp ${vc.expMs / 1000n}`);
    if (!vc.audOk) throw new Rejected(Code.audience_mismatch, `${who}: not for ${JSON.stringify(this.audience)}`);
    // 8. Binding.
    if (state.principal !== null && (state.principal[0] !== vc.iss || state.principal[1] !== vc.sub)) {
      throw new Rejected(
        Code.credential_mismatch,
        `connection is bound to iss=${JSON.stringify(state.principal[0])} sub=${JSON.stringify(state.principal[1])}, ` +
          `frame has iss=${JSON.stringify(vc.iss)} sub=${JSON.stringify(vc.sub)}`,
      );
    }
    // 9. Revocation.
    if (this.revocations !== EMPTY && this.revocations.isRevoked(vc.iss, vc.cid, vc.sub, vc.iat)) {
      throw new Rejected(Code.credential_revoked, `${who} sub=${JSON.stringify(vc.sub)}`);
    }
    // 10. Timestamp.
    const skew = BigInt(frame.timestampMs) - nowMs;
    if ((skew < 0n ? -skew : skew) > this.maxSkewMs) throw new Rejected(Code.timestamp_skew, `skew ${skew} ms`);
    // 11. Tag.
    if (kind === KIND_CLIENT_MAC) {
      const signed = concat(this.clientPrefix, data.subarray(0, data.length - 34));
      if (!(await /** @type {HMACKey} */ (vc.frameKey).verify(frame.tag, signed))) {
        throw new Rejected(Code.bad_tag, `cid=${JSON.stringify(vc.cid)} ctr=${ctr}`);
      }
    } else {
      const problem = checkSignature(frame.tag);
      if (problem !== null) throw new Rejected(Code.bad_signature, `cid=${JSON.stringify(vc.cid)} ctr=${ctr}: ${problem}`);
      const signed = concat(this.clientPrefix, data.subarray(0, data.length - 66));
      if (!(await /** @type {Ed25519PublicKey} */ (vc.publicKey).verify(frame.tag, signed))) {
        throw new Rejected(Code.bad_signature, `cid=${JSON.stringify(vc.cid)} ctr=${ctr}`);
      }
    }
    // 12. Commit.
    [state.highest, state.bitmap] = replay.advance(state.highest, state.bitmap, this.window, ctr);
    state.principal = [vc.iss, vc.sub];
    state.credential = vc;
    return {
      subject: vc.sub,
      issuer: vc.iss,
      scopes: vc.scopes,
      counter: ctr,
      stream: frame.stream.slice(),
      seq: frame.seq,
      payload: frame.payload instanceof Uint8Array ? frame.payload.slice() : frame.payload,
      credentialId: vc.cid,
      timestampMs: frame.timestampMs,
    };
  }
}
