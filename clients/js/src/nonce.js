/**
 * Connection nonces: minted by one server, recognised by the whole fleet
 * (SPEC.md §5.3). Server side; a client only echoes the nonce it was given.
 *
 * @module signedws/nonce
 */

import { concat, lengthPrefixed, randomBytes, readUint64, uint64Bytes, utf8 } from './bytes.js';
import { toUInt } from './codec.js';
import { NONCE_SIZE, strField } from './envelope.js';
import { Code, Rejected, UsageError } from './errors.js';
import { HMACKey } from './keys.js';

export const NONCE_KEY_INFO = utf8('signedws/v1 nonce-key');
export const NONCE_LABEL = utf8('signedws/v1 nonce\0');
export const NONCE_VERSION = 1;
export const NODE_ID_SIZE = 8;
const RANDOM_SIZE = 15;

/**
 * The expiry (seconds) written in a 64-byte nonce, without checking its tag.
 *
 * @param {Uint8Array} nonce
 * @returns {import('./codec.js').UInt}
 */
export function unverifiedExpiry(nonce) {
  return toUInt(readUint64(nonce, 9));
}

/** Mints and checks the connection nonces of one fleet and audience. */
export class NonceKey {
  /**
   * Use `NonceKey.create`.
   *
   * @param {HMACKey} key the derived nonce key
   * @param {Uint8Array} prefix the label and the length-prefixed audience
   */
  constructor(key, prefix) {
    /** @private */
    this._key = key;
    /** @private */
    this._prefix = prefix;
  }

  /**
   * Derive the nonce key from the fleet secret (SPEC.md §3.2).
   *
   * @param {HMACKey} fleetKey imported with `derivable: true`
   * @param {string} audience
   * @returns {Promise<NonceKey>}
   */
  static async create(fleetKey, audience) {
    let aud;
    try {
      aud = strField(audience, 'audience', Code.malformed);
    } catch (error) {
      if (error instanceof Rejected) throw new UsageError(error.detail);
      throw error;
    }
    const key = await fleetKey.derive(NONCE_KEY_INFO);
    return new NonceKey(key, concat(NONCE_LABEL, lengthPrefixed(utf8(aud))));
  }

  /**
   * A fresh nonce from `nodeId`, valid for `ttl` seconds from `now`.
   *
   * @param {{nodeId: Uint8Array, now: number, ttl: number,
   *          random?: import('./bytes.js').RandomSource}} options
   * @returns {Promise<Uint8Array>}
   */
  async mint({ nodeId, now, ttl, random = randomBytes }) {
    if (!(nodeId instanceof Uint8Array) || nodeId.length !== NODE_ID_SIZE) {
      throw new UsageError(`nodeId must be ${NODE_ID_SIZE} bytes`);
    }
    if (!(ttl >= 1)) throw new UsageError('nonce ttl must be at least one second');
    const expires = BigInt(Math.trunc(now)) + BigInt(ttl);
    const head = concat(new Uint8Array([NONCE_VERSION]), nodeId, uint64Bytes(expires), random(RANDOM_SIZE));
    return concat(head, await this._key.mac(concat(this._prefix, head)));
  }

  /**
   * Check that `nonce` was minted by this fleet for this audience and has not
   * expired.
   *
   * @param {Uint8Array} nonce
   * @param {{now: number}} options
   * @returns {Promise<{nodeId: Uint8Array, expires: import('./codec.js').UInt}>}
   * @throws {Rejected} `malformed` (wrong size), `nonce_invalid` (not this
   *   fleet's), `nonce_expired`
   */
  async check(nonce, { now }) {
    if (nonce.length !== NONCE_SIZE) {
      throw new Rejected(Code.malformed, `nonce is ${nonce.length} bytes, not ${NONCE_SIZE}`);
    }
    const head = nonce.subarray(0, 32);
    if (nonce[0] !== NONCE_VERSION || !(await this._key.verify(nonce.subarray(32), concat(this._prefix, head)))) {
      throw new Rejected(Code.nonce_invalid, 'nonce not minted by this fleet for this audience');
    }
    const expires = unverifiedExpiry(nonce);
    if (BigInt(Math.floor(now * 1000)) >= BigInt(expires) * 1000n) {
      throw new Rejected(Code.nonce_expired, `nonce expired at ${expires}`);
    }
    return { nodeId: nonce.slice(1, 9), expires };
  }

  toString() {
    return 'NonceKey(<secret>)';
  }
}
