/**
 * Errors raised by signedws (SPEC.md §9).
 *
 * Two branches, as in the Python package:
 *
 *     SignedWSError
 *     ├── Rejected      the peer sent something the protocol refuses
 *     │                 (carries a stable code; see SPEC.md §9)
 *     └── UsageError    the caller misused the API (bad key, bad argument,
 *                       counter exhausted, ...)
 *
 * `Rejected` is the only error the verifying functions raise for any input
 * bytes. Its `code` says what failed and maps to a WebSocket close code and an
 * opaque reason for the peer; its `detail` is for a log. Neither ever contains
 * a key, a token, a frame key or a payload.
 *
 * @module signedws/errors
 */

/**
 * @typedef {object} CodeInfo
 * @property {string} id the stable name, e.g. `"bad_tag"`
 * @property {number} number the stable number, e.g. `400`
 * @property {number} closeCode the WebSocket close code
 * @property {string} peerReason the opaque close reason the peer is told
 */

/** @type {Array<[string, number, number, string]>} */
const TABLE = [
  // 1xx: frame structure
  ['frame_too_large', 100, 4413, 'frame too large'],
  ['malformed', 101, 4400, 'bad frame'],
  ['unsupported_version', 102, 4400, 'bad frame'],
  ['scheme_mismatch', 103, 4400, 'bad frame'],
  // 2xx: connection binding
  ['nonce_mismatch', 200, 4401, 'unauthorized'],
  ['nonce_expired', 201, 4410, 'connection expired'],
  ['nonce_invalid', 202, 4401, 'unauthorized'],
  ['replay', 203, 4409, 'replay'],
  ['timestamp_skew', 204, 4425, 'timestamp out of range'],
  // 3xx: credentials
  ['credential_malformed', 300, 4400, 'bad frame'],
  ['unknown_issuer', 301, 4401, 'unauthorized'],
  ['unknown_key', 302, 4401, 'unauthorized'],
  ['credential_invalid', 303, 4401, 'unauthorized'],
  ['weak_key', 304, 4401, 'unauthorized'],
  ['credential_expired', 305, 4419, 'credential not valid now'],
  ['credential_not_yet_valid', 306, 4419, 'credential not valid now'],
  ['credential_revoked', 307, 4403, 'forbidden'],
  ['audience_mismatch', 308, 4401, 'unauthorized'],
  ['credential_mismatch', 309, 4401, 'unauthorized'],
  // 4xx: frame authentication
  ['bad_tag', 400, 4401, 'unauthorized'],
  ['bad_signature', 401, 4401, 'unauthorized'],
  // 5xx: session
  ['ack_invalid', 500, 4400, 'bad frame'],
  ['first_frame_timeout', 501, 4408, 'timeout'],
  ['idle_timeout', 502, 4408, 'timeout'],
  ['too_many_failures', 503, 4429, 'too many failures'],
  ['server_busy', 504, 4503, 'server busy'],
];

/**
 * The rejection codes of SPEC.md §9, by name.
 *
 * @type {Readonly<Record<string, Readonly<CodeInfo>>>}
 */
export const Code = Object.freeze(
  Object.fromEntries(
    TABLE.map(([id, number, closeCode, peerReason]) => [
      id,
      Object.freeze({ id, number, closeCode, peerReason }),
    ]),
  ),
);

/**
 * The rejection codes a close code (and, if given, its reason) may stand for:
 * SPEC.md §9 maps several codes to one close code on purpose.
 *
 * @param {number | null} closeCode
 * @param {string | null} [reason]
 * @returns {Array<Readonly<CodeInfo>>}
 */
export function codesForClose(closeCode, reason = null) {
  return Object.values(Code).filter(
    (code) => code.closeCode === closeCode && (reason == null || code.peerReason === reason),
  );
}

/** Base class of every error signedws raises on purpose. */
export class SignedWSError extends Error {
  /** @param {string} message */
  constructor(message) {
    super(message);
    this.name = new.target.name;
  }
}

/**
 * The peer sent something the protocol refuses.
 *
 * `code` is stable (SPEC.md §9); `detail` is a log line naming fields, sizes
 * and identifiers, never a secret, a token, a signature or a payload.
 */
export class Rejected extends SignedWSError {
  /**
   * @param {Readonly<CodeInfo>} code
   * @param {string} [detail]
   */
  constructor(code, detail = '') {
    super(detail ? `${code.id}: ${detail}` : code.id);
    /** @type {Readonly<CodeInfo>} */
    this.code = code;
    /** @type {string} */
    this.detail = detail;
  }
}

/** The caller misused the API: the fault is local, not the peer's. */
export class UsageError extends SignedWSError {}
