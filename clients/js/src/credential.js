/**
 * Credentials: tokens, certificates and key references (SPEC.md §4).
 *
 * This module decodes credentials (`unverifiedCredential`), pairs them with
 * the client's secret (`MACCredential`, `Ed25519Credential`) and mints them
 * (`Issuer`, for tests and tools: a browser client never needs it). It does not
 * decide whether a credential is trusted: that is the verifier's job.
 *
 * @module signedws/credential
 */

import { concat, randomBytes, utf8 } from './bytes.js';
import { decodeCanonical, encode, toUInt } from './codec.js';

/** A token's and a certificate's `scopes` and `aud` (SPEC.md §4.2, §4.3): the only
 * arrays nested in any structure (SPEC.md §2). */
const LIST_FIELDS = new Set([6, 7]);
import {
  MAX_CREDENTIAL_SIZE,
  MAX_LIST_ITEMS,
  TYPE_CERTIFICATE,
  TYPE_KEY_REFERENCE,
  TYPE_TOKEN,
  VERSION,
  seal,
  strField,
  strSetField,
  uintField,
} from './envelope.js';
import { Code, Rejected, UsageError } from './errors.js';
import { Ed25519PrivateKey, Ed25519PublicKey, HMACKey, toBase64Url } from './keys.js';

/** @typedef {import('./codec.js').UInt} UInt */

export const TOKEN_KEY_INFO = utf8('signedws/v1 token-key');
export const FRAME_KEY_INFO = utf8('signedws/v1 frame-key');
export const FRAME_KEY_LABEL = utf8('signedws/v1 frame-key\0');
export const TOKEN_LABEL = utf8('signedws/v1 token\0');
export const CERTIFICATE_LABEL = utf8('signedws/v1 certificate\0');
export const MAX_AUDIENCES = 16;

const C = Code.credential_malformed;

/**
 * The decoded fields of a token or certificate (SPEC.md §4.1). `body` is the
 * credential's bytes up to its tag or signature, `tag` the tag (token) or
 * signature (certificate); `publicKey` is the certified key, null for a token.
 *
 * @typedef {object} Claims
 * @property {1 | 2} type
 * @property {string} iss
 * @property {string} kid
 * @property {string} cid
 * @property {string} sub
 * @property {string[]} scopes
 * @property {string[]} aud
 * @property {UInt} iat seconds
 * @property {UInt} exp seconds
 * @property {Uint8Array | null} publicKey
 * @property {Uint8Array} body
 * @property {Uint8Array} tag
 */

/**
 * A decoded key reference (SPEC.md §4.4): names a key registry entry.
 *
 * @typedef {object} KeyReference
 * @property {3} type
 * @property {string} iss
 * @property {string} kid
 */

/**
 * Decode a credential without authenticating it.
 *
 * @param {Uint8Array} data
 * @returns {Claims | KeyReference}
 * @throws {Rejected} `credential_malformed` if `data` is not a canonical
 *   credential of a known type with valid fields
 */
export function unverifiedCredential(data) {
  const fields = decodeCanonical(data, C, LIST_FIELDS);
  if (fields.length < 2 || fields[0] !== VERSION) throw new Rejected(C, 'not a version 1 credential');
  const ctype = fields[1];
  if (typeof ctype !== 'number' && typeof ctype !== 'bigint') {
    throw new Rejected(C, 'credential type is not a uint');
  }
  if (ctype === TYPE_KEY_REFERENCE) {
    if (fields.length !== 4) throw new Rejected(C, `key reference has ${fields.length} elements, not 4`);
    return { type: TYPE_KEY_REFERENCE, iss: strField(fields[2], 'iss', C), kid: strField(fields[3], 'kid', C) };
  }
  let size;
  let tagSize;
  if (ctype === TYPE_TOKEN) [size, tagSize] = [11, 32];
  else if (ctype === TYPE_CERTIFICATE) [size, tagSize] = [12, 64];
  else throw new Rejected(C, 'unknown credential type');
  if (fields.length !== size) {
    throw new Rejected(C, `credential type ${ctype} has ${fields.length} elements, not ${size}`);
  }
  const iat = uintField(fields[8], 'iat', C);
  const exp = uintField(fields[9], 'exp', C);
  if (exp <= iat) throw new Rejected(C, 'exp is not after iat');
  let publicKey = null;
  if (ctype === TYPE_CERTIFICATE) {
    const key = fields[10];
    if (!(key instanceof Uint8Array) || key.length !== 32) throw new Rejected(C, 'key is not a 32-byte bin');
    publicKey = key;
  }
  const tag = fields[fields.length - 1];
  if (!(tag instanceof Uint8Array) || tag.length !== tagSize) {
    throw new Rejected(C, `tag is not a ${tagSize}-byte bin`);
  }
  return {
    type: ctype,
    iss: strField(fields[2], 'iss', C),
    kid: strField(fields[3], 'kid', C),
    cid: strField(fields[4], 'cid', C),
    sub: strField(fields[5], 'sub', C),
    scopes: strSetField(fields[6], 'scopes', C, MAX_LIST_ITEMS),
    aud: strSetField(fields[7], 'aud', C, MAX_AUDIENCES),
    iat,
    exp,
    publicKey,
    body: data.subarray(0, data.length - (tagSize + 2)),
    tag,
  };
}

/**
 * Encode a key reference credential (SPEC.md §4.4).
 *
 * @param {string} iss
 * @param {string} kid
 * @returns {Uint8Array}
 */
export function encodeKeyReference(iss, kid) {
  return encode([VERSION, TYPE_KEY_REFERENCE, checkStr(iss, 'iss'), checkStr(kid, 'kid')]);
}

/**
 * @param {Uint8Array} data
 * @returns {Claims | KeyReference}
 */
function clientClaims(data) {
  if (!(data instanceof Uint8Array)) throw new UsageError('a credential is a Uint8Array');
  try {
    return unverifiedCredential(data.slice());
  } catch (error) {
    if (error instanceof Rejected) throw new UsageError(`malformed credential: ${error.detail}`);
    throw error;
  }
}

/**
 * What a `mac` client holds: its token and the token's frame key (a secret,
 * kept as a non-extractable `CryptoKey`).
 */
export class MACCredential {
  /**
   * @param {Uint8Array} token the token's exact bytes
   * @param {HMACKey} frameKey
   * @throws {UsageError} if `token` is not a well-formed token
   */
  constructor(token, frameKey) {
    const claims = clientClaims(token);
    if (claims.type !== TYPE_TOKEN) throw new UsageError('a MACCredential needs a token (credential type 1)');
    if (!(frameKey instanceof HMACKey)) throw new UsageError('frameKey must be an HMACKey');
    /** @readonly */
    this.token = token.slice();
    /** @readonly */
    this.frameKey = frameKey;
    /** @readonly @type {Claims} the token's fields, as issued (not verified by the client) */
    this.claims = claims;
  }

  /**
   * Pair a token with its frame key given as bytes (as a login response
   * carries it). The key is imported non-extractable; drop your copy.
   *
   * @param {Uint8Array} token
   * @param {Uint8Array} frameKey
   * @returns {Promise<MACCredential>}
   */
  static async fromBytes(token, frameKey) {
    return new MACCredential(token, await HMACKey.fromBytes(frameKey));
  }

  /** @returns {string} the credential id */
  get cid() {
    return this.claims.cid;
  }

  toString() {
    const c = this.claims;
    return `MACCredential(iss=${c.iss}, cid=${c.cid}, sub=${c.sub}, exp=${c.exp})`;
  }
}

/**
 * What an `ed25519` client holds: a certificate or key reference, and its
 * private key.
 */
export class Ed25519Credential {
  /**
   * @param {Uint8Array} credential a certificate or key reference
   * @param {Ed25519PrivateKey} privateKey
   * @throws {UsageError} if `credential` is malformed, is a token, or is a
   *   certificate for another public key
   */
  constructor(credential, privateKey) {
    const claims = clientClaims(credential);
    if (!(privateKey instanceof Ed25519PrivateKey)) throw new UsageError('privateKey must be an Ed25519PrivateKey');
    if (claims.type === TYPE_TOKEN) {
      throw new UsageError('an Ed25519Credential needs a certificate or key reference');
    }
    if (claims.type === TYPE_CERTIFICATE) {
      const mine = privateKey.publicKey();
      if (!mine.equals(new Ed25519PublicKey(/** @type {Uint8Array} */ (claims.publicKey)))) {
        throw new UsageError('the certificate is for another public key');
      }
    }
    /** @readonly */
    this.credential = credential.slice();
    /** @readonly */
    this.privateKey = privateKey;
    /** @readonly @type {Claims | KeyReference} */
    this.claims = claims;
  }

  /** @returns {string} the credential id (a key reference's `kid`) */
  get cid() {
    const c = this.claims;
    return c.type === TYPE_KEY_REFERENCE ? c.kid : c.cid;
  }

  toString() {
    const c = this.claims;
    if (c.type === TYPE_KEY_REFERENCE) return `Ed25519Credential(iss=${c.iss}, kid=${c.kid})`;
    return `Ed25519Credential(iss=${c.iss}, cid=${c.cid}, sub=${c.sub}, exp=${c.exp})`;
  }
}

/** @typedef {MACCredential | Ed25519Credential} ClientCredential */

/** The keys an HMAC issuer secret derives (SPEC.md §3.1). */
export class TokenKeys {
  /**
   * @param {HMACKey} tokenKey
   * @param {HMACKey} frameKeyRoot
   */
  constructor(tokenKey, frameKeyRoot) {
    this.tokenKey = tokenKey;
    this.frameKeyRoot = frameKeyRoot;
  }

  /**
   * @param {HMACKey} secret an issuer secret imported with `derivable: true`
   * @param {{extractable?: boolean}} [options] whether derived keys can be read
   * @returns {Promise<TokenKeys>}
   */
  static async derive(secret, { extractable = false } = {}) {
    return new TokenKeys(
      await secret.derive(TOKEN_KEY_INFO, { extractable }),
      await secret.derive(FRAME_KEY_INFO, { extractable }),
    );
  }

  /**
   * The token tag over `body` (the token's bytes up to its tag).
   *
   * @param {Uint8Array} body
   * @returns {Promise<Uint8Array>}
   */
  tokenTag(body) {
    return this.tokenKey.mac(concat(TOKEN_LABEL, body));
  }

  /**
   * `frame_key(token)` as bytes.
   *
   * @param {Uint8Array} token
   * @returns {Promise<Uint8Array>}
   */
  frameKeyBytes(token) {
    return this.frameKeyRoot.mac(concat(FRAME_KEY_LABEL, token));
  }

  toString() {
    return 'TokenKeys(<secret>)';
  }
}

/**
 * @param {string} value
 * @param {string} name
 */
function checkStr(value, name) {
  try {
    return strField(value, name, C);
  } catch (error) {
    if (error instanceof Rejected) throw new UsageError(error.detail);
    throw error;
  }
}

/**
 * @param {Iterable<string>} values
 * @param {string} name
 * @param {number} maxItems
 */
function checkSet(values, name, maxItems) {
  if (typeof values === 'string') throw new UsageError(`${name} must be a collection of strings`);
  const items = [...new Set(values)].sort(byUtf8);
  try {
    strSetField(items, name, C, maxItems);
  } catch (error) {
    if (error instanceof Rejected) throw new UsageError(error.detail);
    throw error;
  }
  return items;
}

/** Sort strings by code point, as Python's `sorted` does. @param {string} a @param {string} b */
function byUtf8(a, b) {
  const x = [...a].map((c) => /** @type {number} */ (c.codePointAt(0)));
  const y = [...b].map((c) => /** @type {number} */ (c.codePointAt(0)));
  for (let i = 0; i < Math.min(x.length, y.length); i++) if (x[i] !== y[i]) return x[i] - y[i];
  return x.length - y.length;
}

/**
 * @typedef {object} IssueOptions
 * @property {string} subject the principal
 * @property {number} now the issuer's clock, seconds (`iat`)
 * @property {number | bigint} [lifetime] seconds until `exp`
 * @property {Iterable<string>} [scopes]
 * @property {Iterable<string>} [audiences] empty: any audience that trusts the issuer
 * @property {string} [credentialId] the `cid`; random if omitted
 * @property {import('./bytes.js').RandomSource} [random]
 */

/**
 * Mints credentials under one issuer key (SPEC.md §4.2, §4.3). A browser
 * client never needs this: it is for tests and Node tools.
 */
export class Issuer {
  /**
   * Use `Issuer.create`.
   *
   * @param {string} name
   * @param {string} kid
   * @param {TokenKeys | Ed25519PrivateKey} key
   */
  constructor(name, kid, key) {
    this.name = checkStr(name, 'iss');
    this.kid = checkStr(kid, 'kid');
    /** @private */
    this._key = key;
  }

  /**
   * @param {string} name
   * @param {string} kid
   * @param {HMACKey | Ed25519PrivateKey} key an HMAC secret imported with
   *   `derivable: true` (tokens) or an Ed25519 private key (certificates)
   * @returns {Promise<Issuer>}
   */
  static async create(name, kid, key) {
    if (key instanceof HMACKey) return new Issuer(name, kid, await TokenKeys.derive(key));
    if (key instanceof Ed25519PrivateKey) return new Issuer(name, kid, key);
    throw new UsageError('an issuer key is an HMACKey or an Ed25519PrivateKey');
  }

  /**
   * @param {number} ctype
   * @param {IssueOptions} options
   * @param {number | bigint} defaultLifetime
   * @returns {unknown[]}
   */
  _fields(ctype, options, defaultLifetime) {
    const { subject, now, scopes = [], audiences = [], credentialId, random = randomBytes } = options;
    const lifetime = BigInt(options.lifetime ?? defaultLifetime);
    if (lifetime < 1n) throw new UsageError('lifetime must be a whole number of seconds, at least one');
    const iat = BigInt(Math.trunc(now));
    if (iat < 0n || iat + lifetime > (1n << 64n) - 1n) {
      throw new UsageError('now and lifetime must give 0 <= iat < exp <= 2**64-1');
    }
    const cid = credentialId ?? toBase64Url(random(16));
    return [
      VERSION,
      ctype,
      this.name,
      this.kid,
      checkStr(cid, 'cid'),
      checkStr(subject, 'sub'),
      checkSet(scopes, 'scopes', MAX_LIST_ITEMS),
      checkSet(audiences, 'aud', MAX_AUDIENCES),
      toUInt(iat),
      toUInt(iat + lifetime),
    ];
  }

  /**
   * Mint a `mac` token and its frame key.
   *
   * @param {IssueOptions} options
   * @returns {Promise<{token: Uint8Array, frameKey: Uint8Array}>} send both to
   *   the client over a confidential channel; the frame key is a secret
   */
  async issueToken(options) {
    const keys = this._key;
    if (!(keys instanceof TokenKeys)) throw new UsageError('an Ed25519 issuer mints certificates, not tokens');
    const body = fit(seal([...this._fields(TYPE_TOKEN, options, 900), new Uint8Array(32)], 32), 34);
    const token = concat(body, new Uint8Array([0xc4, 0x20]), await keys.tokenTag(body));
    return { token, frameKey: await keys.frameKeyBytes(token) };
  }

  /**
   * Mint a certificate binding `publicKey` (SPEC.md §4.3).
   *
   * @param {Ed25519PublicKey} publicKey
   * @param {IssueOptions} options
   * @returns {Promise<Uint8Array>}
   */
  async issueCertificate(publicKey, options) {
    const key = this._key;
    if (!(key instanceof Ed25519PrivateKey)) throw new UsageError('an HMAC issuer mints tokens, not certificates');
    const fields = [...this._fields(TYPE_CERTIFICATE, options, 3600), publicKey.toBytes(), new Uint8Array(64)];
    const body = fit(seal(fields, 64), 66);
    return concat(body, new Uint8Array([0xc4, 0x40]), await key.sign(concat(CERTIFICATE_LABEL, body)));
  }
}

/**
 * @param {Uint8Array} body
 * @param {number} tagSize
 */
function fit(body, tagSize) {
  if (body.length + tagSize > MAX_CREDENTIAL_SIZE) {
    throw new UsageError(`credential would be over the ${MAX_CREDENTIAL_SIZE} bytes servers accept`);
  }
  return body.slice();
}
