/**
 * The keyring: trusted issuer keys, namespaced by issuer (SPEC.md §3.3), with
 * validity windows, and the key registry (SPEC.md §4.4). Server side.
 *
 * @module signedws/keyring
 */

import { TokenKeys } from './credential.js';
import { Code, Rejected, UsageError } from './errors.js';
import { Ed25519PublicKey, HMACKey } from './keys.js';

/** @typedef {import('./codec.js').UInt} UInt */

const FOREVER = 1n << 64n;

/** @param {string} a @param {string} b */
const pair = (a, b) => JSON.stringify([a, b]);

/**
 * One issuer key with its validity window in seconds (null: open).
 *
 * @typedef {object} IssuerKey
 * @property {string} issuer
 * @property {string} kid
 * @property {TokenKeys | Ed25519PublicKey} key
 * @property {[bigint, bigint]} windowMs `[not_before, not_after)` in milliseconds
 */

/**
 * A key registry entry: a client key and its claims.
 *
 * @typedef {object} RegisteredKey
 * @property {string} issuer
 * @property {string} kid
 * @property {Ed25519PublicKey} publicKey
 * @property {string} subject
 * @property {string[]} scopes
 * @property {string[]} audiences
 * @property {number} notBefore its `iat`, seconds
 * @property {number} expires its `exp`, seconds
 */

/**
 * @param {number | null | undefined} notBefore
 * @param {number | null | undefined} notAfter
 * @returns {[bigint, bigint]}
 */
function windowMs(notBefore, notAfter) {
  return [
    notBefore == null ? 0n : BigInt(notBefore) * 1000n,
    notAfter == null ? FOREVER : BigInt(notAfter) * 1000n,
  ];
}

export class Keyring {
  constructor() {
    /** @private @type {Map<string, IssuerKey>} */
    this._issuerKeys = new Map();
    /** @private @type {Set<string>} */
    this._issuers = new Set();
    /** @private @type {Map<string, RegisteredKey>} */
    this._registry = new Map();
    /** Moves on every change: verifiers drop their credential cache. */
    this.version = 0;
  }

  /**
   * Trust an HMAC issuer secret for tokens.
   *
   * @param {string} issuer
   * @param {string} kid
   * @param {HMACKey} secret imported with `derivable: true`
   * @param {{notBefore?: number | null, notAfter?: number | null}} [window] seconds
   */
  async addHMACKey(issuer, kid, secret, { notBefore = null, notAfter = null } = {}) {
    if (!(secret instanceof HMACKey)) throw new UsageError('an HMAC issuer key is an HMACKey');
    const key = await TokenKeys.derive(secret);
    this._put({ issuer, kid, key, windowMs: windowMs(notBefore, notAfter) });
  }

  /**
   * Trust an Ed25519 issuer public key for certificates.
   *
   * @param {string} issuer
   * @param {string} kid
   * @param {Ed25519PublicKey} publicKey
   * @param {{notBefore?: number | null, notAfter?: number | null}} [window] seconds
   */
  addEd25519Key(issuer, kid, publicKey, { notBefore = null, notAfter = null } = {}) {
    if (!(publicKey instanceof Ed25519PublicKey)) throw new UsageError('an Ed25519 issuer key is an Ed25519PublicKey');
    this._put({ issuer, kid, key: publicKey, windowMs: windowMs(notBefore, notAfter) });
  }

  /** @private @param {IssuerKey} entry */
  _put(entry) {
    this._issuerKeys.set(pair(entry.issuer, entry.kid), entry);
    this._issuers.add(entry.issuer);
    this.version++;
  }

  /**
   * Add a key registry entry (authorized-keys style).
   *
   * @param {string} issuer
   * @param {string} kid
   * @param {Ed25519PublicKey} publicKey (checked by its constructor, §8.2)
   * @param {{subject: string, notBefore: number, expires: number,
   *          scopes?: string[], audiences?: string[]}} claims
   */
  register(issuer, kid, publicKey, { subject, notBefore, expires, scopes = [], audiences = [] }) {
    if (!(publicKey instanceof Ed25519PublicKey)) throw new UsageError('a registered key is an Ed25519PublicKey');
    this._registry.set(pair(issuer, kid), {
      issuer, kid, publicKey, subject, scopes: [...scopes], audiences: [...audiences], notBefore, expires,
    });
    this.version++;
  }

  /**
   * @param {string} issuer
   * @param {string} kid
   * @returns {IssuerKey}
   * @throws {Rejected} `unknown_issuer` if no key of `issuer` is trusted,
   *   `unknown_key` if `kid` is not one of them
   */
  issuerKey(issuer, kid) {
    const entry = this._issuerKeys.get(pair(issuer, kid));
    if (entry !== undefined) return entry;
    if (!this._issuers.has(issuer)) throw new Rejected(Code.unknown_issuer, `issuer ${JSON.stringify(issuer)} is not trusted`);
    throw new Rejected(Code.unknown_key, `issuer ${JSON.stringify(issuer)} has no key ${JSON.stringify(kid)}`);
  }

  /**
   * @param {string} issuer
   * @param {string} kid
   * @returns {RegisteredKey}
   * @throws {Rejected} `unknown_key` if there is none
   */
  registeredKey(issuer, kid) {
    const entry = this._registry.get(pair(issuer, kid));
    if (entry === undefined) {
      throw new Rejected(Code.unknown_key, `no registered key ${JSON.stringify(kid)} of ${JSON.stringify(issuer)}`);
    }
    return entry;
  }
}
