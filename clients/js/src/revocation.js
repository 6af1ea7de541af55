/**
 * The revocation set (SPEC.md §4.6): revoked credential ids, and subjects
 * revoked for credentials issued before a time. Immutable: replace the
 * verifier's `revocations` to update it (atomic for every later frame).
 *
 * @module signedws/revocation
 */

/** @typedef {import('./codec.js').UInt} UInt */

/** @param {string} a @param {string} b */
const pair = (a, b) => JSON.stringify([a, b]);

export class RevocationSet {
  /**
   * @param {{credentials?: Iterable<[string, string]>,
   *          subjects?: Iterable<[string, string, number]>}} [entries]
   *   `credentials`: `(iss, cid)` pairs; `subjects`: `(iss, sub, before)`,
   *   revoking `sub`'s credentials with `iat < before` (seconds)
   */
  constructor({ credentials = [], subjects = [] } = {}) {
    /** @private @type {Set<string>} */
    this._credentials = new Set([...credentials].map(([iss, cid]) => pair(iss, cid)));
    /** @private @type {Map<string, number>} */
    this._subjects = new Map();
    for (const [iss, sub, before] of subjects) {
      const key = pair(iss, sub);
      this._subjects.set(key, Math.max(before, this._subjects.get(key) ?? before));
    }
    Object.freeze(this);
  }

  /**
   * Whether a credential with these fields is revoked.
   *
   * @param {string} iss
   * @param {string} cid
   * @param {string} sub
   * @param {UInt} iat
   * @returns {boolean}
   */
  isRevoked(iss, cid, sub, iat) {
    if (this._credentials.has(pair(iss, cid))) return true;
    const before = this._subjects.get(pair(iss, sub));
    return before !== undefined && iat < before;
  }

  get size() {
    return this._credentials.size + this._subjects.size;
  }
}

export const EMPTY = new RevocationSet();
