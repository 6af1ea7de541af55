/**
 * The client side of an issuer service (SPEC.md §13): get and refresh a
 * signedws credential with the application's own login token.
 *
 *     const client = await connect('wss://api.example/ws', {
 *       issuer: '/signedws',                      // where the issuer is mounted
 *       loginToken: async () => auth.accessToken(), // the app's login
 *       audience: 'wss://api.example/ws',
 *     });
 *
 * `connect` fetches the first credential (for `ed25519`: proves possession of
 * a non-extractable key pair kept in IndexedDB, and takes the server keys
 * from the response) and refreshes it through the issuer on the same
 * connection before it expires.
 *
 * The login token travels only in the `Authorization` header of the issuer
 * requests; the credential only in response bodies; the frame key is imported
 * non-extractable at once. Nothing here logs.
 *
 * @module signedws/issuer
 */

import { concat, lengthPrefixed, utf8 } from './bytes.js';
import { Ed25519Credential, MACCredential } from './credential.js';
import { SignedWSError, UsageError } from './errors.js';
import { Ed25519PrivateKey, Ed25519PublicKey, fromBase64Url, toBase64Url } from './keys.js';
import { loadOrCreateKeyPair } from './keystore.js';

/** The proof-of-possession label (SPEC.md §13.3). */
export const POP_LABEL = utf8('signedws/v1 proof-of-possession\0');

/**
 * The bytes a client signs to prove possession (SPEC.md §13.3).
 *
 * @param {string} issuer the issuer name from the challenge response
 * @param {Uint8Array} challenge
 * @returns {Uint8Array}
 */
export function popInput(issuer, challenge) {
  return concat(POP_LABEL, lengthPrefixed(utf8(issuer)), challenge);
}

/** The issuer refused a request (or could not be reached: `status` null). */
export class IssuerRefused extends SignedWSError {
  /**
   * @param {number | null} status the HTTP status
   * @param {string} code the issuer's error code (SPEC.md §13.6)
   * @param {string} detail
   */
  constructor(status, code, detail) {
    super(`issuer refused (${status}): ${code}: ${detail}`);
    this.status = status;
    this.code = code;
    this.detail = detail;
  }
}

/**
 * The server keys of a JWKS document (SPEC.md §13.4) valid at `now`.
 *
 * @param {any} document
 * @param {number} now seconds
 * @returns {Map<string, Ed25519PublicKey>}
 */
export function serverKeysFromJwks(document, now) {
  if (!document || !Array.isArray(document.keys)) throw new UsageError("a JWKS has a 'keys' array");
  const keys = new Map();
  for (const jwk of document.keys) {
    if ((jwk.signedws_role ?? 'server') !== 'server') continue;
    if (jwk.kty !== 'OKP' || jwk.crv !== 'Ed25519' || 'd' in jwk || typeof jwk.kid !== 'string') {
      throw new UsageError('a server key is a public OKP Ed25519 JWK with a kid');
    }
    if (jwk.nbf !== undefined && now < jwk.nbf) continue;
    if (jwk.exp !== undefined && now >= jwk.exp) continue;
    keys.set(jwk.kid, new Ed25519PublicKey(fromBase64Url(jwk.x)));
  }
  return keys;
}

/**
 * @typedef {object} IssuerOptions
 * @property {string | (() => Promise<string>)} loginToken the application's
 *   login token (e.g. an OIDC access token), or a function returning it
 *   (called for every request, so the application can refresh its login)
 * @property {'mac' | 'ed25519'} [scheme] default `mac`
 * @property {Ed25519PrivateKey} [privateKey] `ed25519`: the key to prove;
 *   default: a non-extractable key pair kept in IndexedDB under `keyName`
 *   (in memory where there is no IndexedDB)
 * @property {string} [keyName] default `"signedws-issuer"`
 * @property {string[]} [scopes] the scopes to ask for (default: all allowed)
 * @property {number} [lifetime] the lifetime to ask for, seconds
 * @property {typeof fetch} [fetch] default: the global one
 * @property {RequestCredentials} [credentials] `fetch`'s credentials mode
 *   (default `same-origin`; `include` for a cookie login on another origin)
 */

/** Fetches credentials from an issuer service. */
export class IssuerClient {
  /**
   * @param {string} url the issuer's base URL (relative URLs resolve against the page)
   * @param {IssuerOptions} options
   */
  constructor(url, options) {
    const {
      loginToken,
      scheme = 'mac',
      privateKey = null,
      keyName = 'signedws-issuer',
      scopes,
      lifetime,
      fetch: fetchFn = globalThis.fetch,
      credentials = 'same-origin',
    } = options ?? {};
    if (typeof url !== 'string' || /[?#]/.test(url)) throw new UsageError('the issuer URL has no query or fragment');
    if (/^http:\/\//i.test(url) && !/^http:\/\/(localhost|127\.\d+\.\d+\.\d+|\[::1\])(:|\/|$)/i.test(url)) {
      throw new UsageError('credentials travel only over https (http: loopback hosts only)');
    }
    if (typeof loginToken !== 'string' && typeof loginToken !== 'function') {
      throw new UsageError('loginToken is a string or a function returning one');
    }
    if (scheme !== 'mac' && scheme !== 'ed25519') throw new UsageError("scheme is 'mac' or 'ed25519'");
    if (typeof fetchFn !== 'function') throw new UsageError('no fetch here');
    this.url = url.replace(/\/+$/, '');
    this.scheme = scheme;
    /** @private */ this._loginToken = loginToken;
    /** @private */ this._privateKey = privateKey;
    /** @private */ this._keyName = keyName;
    /** @private */ this._asked = {
      ...(scopes !== undefined ? { scopes: [...new Set(scopes)].sort() } : {}),
      ...(lifetime !== undefined ? { lifetime } : {}),
    };
    // Called unbound: a browser refuses window.fetch invoked on another object.
    /** @private @type {typeof fetch} */ this._fetch = (input, init) => fetchFn(input, init);
    /** @private */ this._credentials = credentials;
    /** The last credential response (without its secrets: see `credential`). */
    this.lastResponse = null;
  }

  toString() {
    return `IssuerClient(${this.url}, ${this.scheme})`;
  }

  /** @private @returns {Promise<string>} */
  async _token() {
    const token = typeof this._loginToken === 'function' ? await this._loginToken() : this._loginToken;
    if (typeof token !== 'string' || token === '' || /[\r\n]/.test(token)) {
      throw new UsageError('loginToken must be (or return) a non-empty one-line string');
    }
    return token;
  }

  /**
   * @private
   * @param {string} method
   * @param {string} path
   * @param {object | null} body
   * @param {boolean} login
   * @returns {Promise<any>}
   */
  async _call(method, path, body, login) {
    /** @type {Record<string, string>} */
    const headers = { Accept: 'application/json' };
    if (body !== null) headers['Content-Type'] = 'application/json';
    if (login) headers.Authorization = `Bearer ${await this._token()}`;
    let response;
    try {
      response = await this._fetch(this.url + path, {
        method,
        headers,
        body: body === null ? undefined : JSON.stringify(body),
        credentials: this._credentials,
        cache: 'no-store',
      });
    } catch (error) {
      const { name, message } = /** @type {Error} */ (error);
      throw new IssuerRefused(null, 'unreachable', `${name}: ${message}`);
    }
    let document = null;
    try {
      document = await response.json();
    } catch {
      document = null;
    }
    if (document === null || typeof document !== 'object') {
      throw new IssuerRefused(response.status, 'bad_response', 'the issuer did not answer JSON');
    }
    if (!response.ok) {
      throw new IssuerRefused(
        response.status,
        typeof document.error === 'string' ? document.error : 'error',
        typeof document.detail === 'string' ? document.detail : '',
      );
    }
    return document;
  }

  /** @private @returns {Promise<Ed25519PrivateKey>} */
  async _key() {
    if (this._privateKey === null) {
      // Non-extractable, kept across reloads in IndexedDB; in memory elsewhere.
      this._privateKey = globalThis.indexedDB
        ? await loadOrCreateKeyPair(this._keyName)
        : await Ed25519PrivateKey.generate();
    }
    return this._privateKey;
  }

  /**
   * A fresh credential: the `refresh` callback `connect` uses.
   *
   * @returns {Promise<MACCredential | Ed25519Credential>}
   */
  async credential() {
    if (this.scheme === 'mac') {
      const document = await this._call('POST', '/credentials/mac', this._asked, true);
      const credential = await MACCredential.fromBytes(
        fromBase64Url(document.token),
        fromBase64Url(document.frame_key),
      );
      const { token: _t, frame_key: _k, ...rest } = document;
      this.lastResponse = rest;
      return credential;
    }
    const key = await this._key();
    const publicKey = toBase64Url(key.publicKey().toBytes());
    const got = await this._call('POST', '/challenge', { public_key: publicKey }, true);
    if (typeof got.challenge !== 'string' || typeof got.issuer !== 'string') {
      throw new IssuerRefused(200, 'bad_response', 'no challenge in the response');
    }
    const signature = await key.sign(popInput(got.issuer, fromBase64Url(got.challenge)));
    const document = await this._call(
      'POST',
      '/credentials/ed25519',
      { ...this._asked, public_key: publicKey, challenge: got.challenge, signature: toBase64Url(signature) },
      true,
    );
    this.lastResponse = document;
    return new Ed25519Credential(fromBase64Url(document.certificate), key);
  }

  /**
   * The server keys valid now, from the issuer's `jwks.json`.
   *
   * @param {number} [now] seconds
   * @returns {Promise<Map<string, Ed25519PublicKey>>}
   */
  async serverKeys(now = Date.now() / 1000) {
    return serverKeysFromJwks(await this._call('GET', '/jwks.json', null, false), now);
  }
}

/**
 * Whether `connect`'s second argument is issuer options rather than a credential.
 *
 * @param {unknown} value
 * @returns {value is IssuerOptions & {issuer: string | IssuerClient}}
 */
export function isIssuerOptions(value) {
  return value !== null && typeof value === 'object' && 'issuer' in value;
}

/**
 * `connect(url, { issuer, loginToken, ...options })`: the first credential
 * and the connect options (`refresh` through the issuer; for `ed25519`, the
 * server keys from the response unless given).
 *
 * @param {any} options `IssuerOptions` with `issuer` (a URL or an
 *   `IssuerClient`), and the `ConnectOptions`
 * @returns {Promise<{credential: MACCredential | Ed25519Credential, options: any}>}
 */
export async function fromIssuer(options) {
  const { issuer, loginToken, scheme, privateKey, keyName, scopes, lifetime, fetch, credentials, ...rest } = options;
  const client =
    issuer instanceof IssuerClient
      ? issuer
      : new IssuerClient(issuer, { loginToken, scheme, privateKey, keyName, scopes, lifetime, fetch, credentials });
  const credential = await client.credential();
  const connectOptions = { refresh: () => client.credential(), ...rest };
  const keys = client.lastResponse?.server_keys;
  if (client.scheme === 'ed25519' && connectOptions.serverKeys === undefined && keys) {
    const clock = rest.clock ?? (() => Date.now() / 1000);
    connectOptions.serverKeys = serverKeysFromJwks(keys, clock());
  }
  return { credential, options: connectOptions };
}
