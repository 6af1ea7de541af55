/**
 * Keys on WebCrypto: HMAC-SHA256 keys and Ed25519 key pairs.
 *
 * Secrets live in `CryptoKey`s that are non-extractable unless a caller asks
 * otherwise (tests and issuers do; clients never need to): script can use them
 * but never read them. No key material appears in any string form of these
 * objects.
 *
 * @module signedws/keys
 */

import { bufferSource, concat, equalBytes, randomBytes, toHex, utf8 } from './bytes.js';
import { checkPublicKey, checkSignature } from './ed25519.js';
import { UsageError } from './errors.js';

/** The smallest HMAC secret accepted for issuer and fleet keys (SPEC.md §8.1). */
export const MIN_HMAC_KEY_SIZE = 32;

const subtle = () => {
  const api = globalThis.crypto?.subtle;
  if (!api) throw new UsageError('WebCrypto (crypto.subtle) is not available: use https or localhost');
  return api;
};

const HMAC = { name: 'HMAC', hash: 'SHA-256' };
const ED25519 = { name: 'Ed25519' };
// PKCS #8 wrapping of a 32-byte Ed25519 seed (RFC 8410).
const PKCS8_SEED_PREFIX = new Uint8Array([
  0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
]);

/** An HMAC-SHA256 key (SPEC.md §2, §3), held as a `CryptoKey`. */
export class HMACKey {
  /**
   * Use `HMACKey.fromBytes` or `HMACKey.generate`.
   *
   * @param {CryptoKey} key the HMAC key
   * @param {CryptoKey | null} hkdf the same secret as an HKDF key, if derivable
   */
  constructor(key, hkdf) {
    /** @type {CryptoKey} the WebCrypto HMAC key */
    this.cryptoKey = key;
    /** @private */
    this._hkdf = hkdf;
  }

  /**
   * Import key bytes, e.g. a frame key from the login response. Drop your copy
   * of the bytes afterwards: the key is non-extractable unless asked.
   *
   * @param {Uint8Array} bytes
   * @param {{extractable?: boolean, derivable?: boolean}} [options]
   *   `derivable`: also allow `derive` (issuer and fleet secrets)
   * @returns {Promise<HMACKey>}
   */
  static async fromBytes(bytes, { extractable = false, derivable = false } = {}) {
    if (!(bytes instanceof Uint8Array) || bytes.length === 0) {
      throw new UsageError('an HMAC key is a non-empty Uint8Array');
    }
    const key = await subtle().importKey('raw', bufferSource(bytes), HMAC, extractable, ['sign', 'verify']);
    const hkdf = derivable
      ? await subtle().importKey('raw', bufferSource(bytes), 'HKDF', false, ['deriveBits'])
      : null;
    return new HMACKey(key, hkdf);
  }

  /**
   * A fresh random key.
   *
   * @param {{size?: number, extractable?: boolean, derivable?: boolean}} [options]
   * @returns {Promise<HMACKey>}
   */
  static async generate({ size = 32, extractable = false, derivable = false } = {}) {
    if (size < MIN_HMAC_KEY_SIZE) {
      throw new UsageError(`an HMAC key must be at least ${MIN_HMAC_KEY_SIZE} bytes`);
    }
    return HMACKey.fromBytes(randomBytes(size), { extractable, derivable });
  }

  /**
   * `HMAC(key, data)`, the full 32 bytes.
   *
   * @param {Uint8Array} data
   * @returns {Promise<Uint8Array>}
   */
  async mac(data) {
    return new Uint8Array(await subtle().sign('HMAC', this.cryptoKey, bufferSource(data)));
  }

  /**
   * Whether `tag` is `HMAC(key, data)`, compared in constant time by WebCrypto.
   *
   * @param {Uint8Array} tag
   * @param {Uint8Array} data
   * @returns {Promise<boolean>}
   */
  async verify(tag, data) {
    return subtle().verify('HMAC', this.cryptoKey, bufferSource(tag), bufferSource(data));
  }

  /**
   * `HKDF(key, info)` with an empty salt and 32 bytes of output (SPEC.md §2).
   *
   * @param {Uint8Array | string} info
   * @param {{extractable?: boolean, derivable?: boolean}} [options]
   * @returns {Promise<HMACKey>}
   */
  async derive(info, { extractable = false, derivable = false } = {}) {
    if (this._hkdf === null) throw new UsageError('this key was not imported as derivable');
    const bits = await subtle().deriveBits(
      {
        name: 'HKDF',
        hash: 'SHA-256',
        salt: new Uint8Array(0),
        info: bufferSource(typeof info === 'string' ? utf8(info) : info),
      },
      this._hkdf,
      256,
    );
    return HMACKey.fromBytes(new Uint8Array(bits), { extractable, derivable });
  }

  /**
   * The key bytes, for an extractable key (tests, issuers).
   *
   * @returns {Promise<Uint8Array>}
   */
  async toBytes() {
    if (!this.cryptoKey.extractable) throw new UsageError('this key is not extractable');
    return new Uint8Array(await subtle().exportKey('raw', this.cryptoKey));
  }

  toString() {
    return 'HMACKey(<secret>)';
  }
}

/** An Ed25519 public key that passed SPEC.md §8.2's key checks. */
export class Ed25519PublicKey {
  /**
   * @param {Uint8Array} bytes the 32-byte encoding
   * @throws {UsageError} if the key fails the strict key checks (wrong length,
   *   non-canonical, small order)
   */
  constructor(bytes) {
    if (!(bytes instanceof Uint8Array)) throw new UsageError('an Ed25519 public key is a Uint8Array');
    const problem = checkPublicKey(bytes);
    if (problem !== null) throw new UsageError(`unacceptable Ed25519 public key: ${problem}`);
    /** @private */
    this._bytes = bytes.slice();
    /** @private @type {Promise<CryptoKey | null> | null} */
    this._imported = null;
  }

  /** @returns {Uint8Array} the 32 public key bytes */
  toBytes() {
    return this._bytes.slice();
  }

  /**
   * Whether `signature` is valid for `message` under the strict rule (§8.2).
   *
   * @param {Uint8Array} signature
   * @param {Uint8Array} message
   * @returns {Promise<boolean>}
   */
  async verify(signature, message) {
    if (checkSignature(signature) !== null) return false;
    if (this._imported === null) {
      this._imported = subtle()
        .importKey('raw', this._bytes, ED25519, true, ['verify'])
        .catch(() => null);
    }
    const key = await this._imported;
    if (key === null) return false; // not a point on the curve
    return subtle().verify(ED25519, key, bufferSource(signature), bufferSource(message));
  }

  /**
   * @param {Ed25519PublicKey} other
   * @returns {boolean}
   */
  equals(other) {
    return other instanceof Ed25519PublicKey && equalBytes(this._bytes, other._bytes);
  }

  toString() {
    return `Ed25519PublicKey(${toHex(this._bytes.subarray(0, 4))}…)`;
  }
}

/**
 * An Ed25519 key pair whose private half is a `CryptoKey`, non-extractable by
 * default: script can sign with it but never read it.
 */
export class Ed25519PrivateKey {
  /**
   * Use `generate`, `fromSeed` or `fromKeyPair`.
   *
   * @param {CryptoKey} privateKey
   * @param {Ed25519PublicKey} publicKey
   */
  constructor(privateKey, publicKey) {
    /** @type {CryptoKey} the WebCrypto private key (usage: sign) */
    this.cryptoKey = privateKey;
    /** @private */
    this._public = publicKey;
  }

  /**
   * A fresh key pair, generated by WebCrypto.
   *
   * @param {{extractable?: boolean}} [options]
   * @returns {Promise<Ed25519PrivateKey>}
   */
  static async generate({ extractable = false } = {}) {
    const pair = /** @type {CryptoKeyPair} */ (
      await subtle().generateKey(ED25519, extractable, ['sign', 'verify'])
    );
    return Ed25519PrivateKey.fromKeyPair(pair);
  }

  /**
   * A key pair from a WebCrypto `CryptoKeyPair` (e.g. one kept in IndexedDB).
   *
   * @param {CryptoKeyPair} pair
   * @returns {Promise<Ed25519PrivateKey>}
   */
  static async fromKeyPair(pair) {
    const raw = new Uint8Array(await subtle().exportKey('raw', pair.publicKey));
    return new Ed25519PrivateKey(pair.privateKey, new Ed25519PublicKey(raw));
  }

  /**
   * A key pair from a 32-byte RFC 8032 seed (tests, configuration files).
   *
   * @param {Uint8Array} seed
   * @param {{extractable?: boolean}} [options]
   * @returns {Promise<Ed25519PrivateKey>}
   */
  static async fromSeed(seed, { extractable = false } = {}) {
    if (!(seed instanceof Uint8Array) || seed.length !== 32) {
      throw new UsageError('an Ed25519 seed is 32 bytes');
    }
    const pkcs8 = concat(PKCS8_SEED_PREFIX, seed);
    // WebCrypto cannot derive the public key from a non-extractable private
    // key: import once as extractable to read it, keep the other import.
    const readable = await subtle().importKey('pkcs8', bufferSource(pkcs8), ED25519, true, ['sign']);
    const jwk = await subtle().exportKey('jwk', readable);
    const publicKey = new Ed25519PublicKey(fromBase64Url(/** @type {string} */ (jwk.x)));
    const key = extractable
      ? readable
      : await subtle().importKey('pkcs8', bufferSource(pkcs8), ED25519, false, ['sign']);
    return new Ed25519PrivateKey(key, publicKey);
  }

  /** @returns {Ed25519PublicKey} */
  publicKey() {
    return this._public;
  }

  /**
   * `SIGN(sk, message)` (RFC 8032, pure Ed25519).
   *
   * @param {Uint8Array} message
   * @returns {Promise<Uint8Array>} the 64-byte signature
   */
  async sign(message) {
    return new Uint8Array(await subtle().sign(ED25519, this.cryptoKey, bufferSource(message)));
  }

  toString() {
    return `Ed25519PrivateKey(public=${this._public})`;
  }
}

/**
 * @param {string} text base64url without padding
 * @returns {Uint8Array}
 */
export function fromBase64Url(text) {
  const base64 = text.replace(/-/g, '+').replace(/_/g, '/');
  const binary = atob(base64 + '='.repeat((4 - (base64.length % 4)) % 4));
  return Uint8Array.from(binary, (c) => c.charCodeAt(0));
}

/**
 * @param {Uint8Array} bytes
 * @returns {string} base64url without padding
 */
export function toBase64Url(bytes) {
  let binary = '';
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}
