/**
 * Errors raised by signedws (SPEC.md §9).
 *
 * Two branches, as in the Python package:
 *
 *     SignedWSError
 *     ├── Rejected          the peer sent something the protocol refuses
 *     │                     (carries a stable code; see SPEC.md §9)
 *     ├── UsageError        the caller misused the API (bad key, bad argument,
 *     │   │                 counter exhausted, ...)
 *     │   └── InvalidState  a session was used in the wrong state
 *     ├── Refused           the server refused the client: retrying cannot help
 *     ├── HandshakeFailed   the opening handshake failed (browsers do not say why)
 *     ├── ConnectionLost    the connection ended and the client did not reconnect
 *     │   └── RepeatedFailure  connections kept ending the same way, no progress
 *     └── ClientClosed      the client was closed
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

/**
 * What each close code a client may meet means, and what to do about it
 * (the same words as the Python client's `signedws.errors.explain_close`).
 */
const CLOSE_ADVICE = Object.freeze({
  1000: 'the server ended the connection normally.',
  1001: 'the server is going away (restarting or draining). The client reconnects.',
  1005: 'the server closed without a close code.',
  1006: 'the connection dropped without a close frame (network, proxy or server crash). The client reconnects.',
  1009: 'a message was larger than the server accepts (its proxy or ASGI server limit). Send smaller messages.',
  1011: "the server hit an internal error. The client reconnects; if it repeats, the server's log says why.",
  1012: 'the server is restarting. The client reconnects.',
  1013: 'the server asks to try again later. The client reconnects.',
  1014: 'a gateway could not reach the server. The client reconnects.',
  4400: 'the server could not parse a frame (a client bug or a protocol version mismatch). Update the client; retrying sends the same frames.',
  4401: "the server did not accept the credential or a frame's MAC or signature. Check that the credential is for this server's audience (its aud), comes from an issuer and key this server's keyring trusts, and matches the client's key; then get a new credential.",
  4403: 'the credential was revoked. Get a new one from the issuer (log in again); if the subject was revoked, ask its administrator.',
  4408: 'no valid frame arrived in time (first-frame or idle timeout). The client reconnects; send keepalives on a quiet connection.',
  4409: 'a frame reused a counter (a replay, or two signers on one connection). Reconnect with a single signer per connection.',
  4410: "the connection's nonce expired. The client reconnects.",
  4413: "a frame was larger than the server's max_frame_size (in its hello). Send smaller messages.",
  4419: "the credential is expired or not yet valid. Refresh it (connect's refresh=), and check this machine's clock.",
  4425: "a frame's timestamp was too far from the server's time. Synchronise this machine's clock (NTP).",
  4429: 'too many invalid frames on this connection. Fix what sends them, then reconnect.',
  4503: 'the server is at its connection limit. The client retries later.',
});

const STATUS_ADVICE = Object.freeze({
  400: 'the server refused the WebSocket handshake as malformed, often a missing signedws.v1 subprotocol. Use a signedws client, at the right URL.',
  401: 'the handshake needs authentication that this client does not send: check the URL (signedws authenticates frames, not handshakes).',
  403: "the server refused the page's Origin (the CSWSH defence). Add the origin to the server's origins ([server].origins), or for a client without a browser, allow_no_origin or an allowed Origin.",
  404: 'no WebSocket endpoint at this path. Check the URL.',
  426: 'the request arrived without a WebSocket upgrade (a proxy may have dropped the Upgrade header). Check the proxy configuration.',
  429: 'the server or a proxy is rate limiting. The client retries later.',
  503: 'the server is busy (at its connection limit) or draining. The client retries later.',
});

/**
 * What a connection closed with `closeCode` (null: no close frame) and
 * `reason` means, and what the person can do; names the §9 codes that close
 * code and reason stand for.
 *
 * @param {number | null} closeCode
 * @param {string} [reason]
 * @returns {string}
 */
export function explainClose(closeCode, reason = '') {
  const code = closeCode === null ? 1006 : closeCode;
  const ids = codesForClose(code, reason || null).map((c) => c.id);
  let shown = reason || 'no reason';
  if (ids.length === 1) shown += `; ${ids[0]}`;
  else if (ids.length > 1) shown += `; one of: ${ids.join(', ')}`;
  const advice =
    /** @type {Record<number, string>} */ (CLOSE_ADVICE)[code] ??
    (code >= 4000 && code < 5000 ? 'an application-defined close code.' : 'a protocol error.');
  return `close code ${code} (${shown}): ${advice}`;
}

/**
 * What an opening handshake refused with HTTP `status` means, with the
 * server's `reason` text, and what the person can do.
 *
 * @param {number} status
 * @param {string} [reason]
 * @returns {string}
 */
export function explainStatus(status, reason = '') {
  const advice =
    /** @type {Record<number, string>} */ (STATUS_ADVICE)[status] ??
    (status >= 500 ? 'the server failed. The client retries later.' : 'the server refused the WebSocket handshake. Check the URL.');
  return `HTTP ${status} (${reason || 'no reason given'}): ${advice}`;
}

/**
 * What a failed WebSocket handshake may mean: browsers (and Node's
 * WebSocket) do not tell a page the HTTP status, so the client cannot say
 * which one it was.
 */
export const HANDSHAKE_ADVICE =
  "The WebSocket API does not say why: an Origin the server does not allow (HTTP 403: add it to the server's origins), no signedws.v1 subprotocol (400), a busy or draining server (503: the client retries), a wrong URL (404) or an unreachable host. The server's log names the refusal.";

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

/**
 * A session was used in the wrong state: e.g. a server frame before the
 * client's first accepted frame, or a second hello on an open connection. The
 * fault is in the code driving the session, as websockets' `InvalidState`.
 */
export class InvalidState extends UsageError {}

/** @param {string[]} outcomes */
function listed(outcomes) {
  return outcomes.length ? `; what each got: ${outcomes.join('; ')}` : '';
}

/**
 * The server refused this client in a way that retrying cannot fix. Its
 * message says what the close code or HTTP status means and what to do, with
 * what the client can tell on its own.
 */
export class Refused extends SignedWSError {
  /**
   * @param {number | null} closeCode the WebSocket close code (null for a
   *   refused handshake)
   * @param {string} [reason] the server's opaque close reason, or the reason
   *   text of a refused handshake's response
   * @param {string} [hint] what the client can tell on its own
   * @param {{status?: number | null}} [options] `status`: the HTTP status of
   *   a refused handshake, when the WebSocket class reports it
   */
  constructor(closeCode, reason = '', hint = '', { status = null } = {}) {
    const explanation =
      (status !== null ? explainStatus(status, reason) : explainClose(closeCode, reason)) + (hint ? ` Here: ${hint}.` : '');
    super(`server refused the connection: ${explanation}`);
    /** What the close code means and what to do (`explainClose`), as in the message. */
    this.explanation = explanation;
    this.closeCode = closeCode;
    this.reason = reason;
    /** The HTTP status of a refused handshake, else null. */
    this.status = status;
    /** The rejection codes the close code and reason may stand for (§9). */
    this.codes = closeCode === null ? [] : codesForClose(closeCode, reason || null);
    /** The rejection code, when only one fits (e.g. 4403: credential_revoked). */
    this.code = this.codes.length === 1 ? this.codes[0] : null;
  }
}

/**
 * The opening handshake failed: refused (an HTTP 403 for a disallowed Origin,
 * a missing subprotocol), unreachable, or timed out. Browsers do not say which.
 */
export class HandshakeFailed extends SignedWSError {
  /** @param {string} why */
  constructor(why) {
    super(`WebSocket handshake failed: ${why}. ${HANDSHAKE_ADVICE}`);
    /** What the client saw (e.g. `close code 1006`). */
    this.why = why;
  }
}

/** The connection ended and the client did not, or could not, reconnect. */
export class ConnectionLost extends SignedWSError {
  /**
   * @param {number | null} closeCode the last connection's close code
   * @param {number} [attempts] reconnection attempts made
   * @param {string} [reason] the last connection's close reason
   * @param {string[]} [outcomes] what each connection and attempt since the
   *   last progress got, oldest first
   */
  constructor(closeCode, attempts = 0, reason = '', outcomes = []) {
    super(
      `connection lost (${explainClose(closeCode, reason)}) after ${attempts} reconnection attempts${listed(outcomes)}`,
    );
    this.closeCode = closeCode;
    this.attempts = attempts;
    this.reason = reason;
    /** What each connection and reconnection attempt got (e.g. `attempt 2: handshake failed (close code 1006)`). */
    this.outcomes = outcomes;
  }
}

/**
 * Connections kept ending the same way with no progress in between (SPEC.md
 * §7.3): `maxRepeats` connections in a row were closed with the same close
 * code and reason before anything was acknowledged or received on them.
 * Retrying would fail again; the client gave up instead of waiting forever.
 * Unacknowledged messages stay in `unacknowledged`.
 */
export class RepeatedFailure extends ConnectionLost {
  /**
   * @param {number | null} closeCode how each of those connections ended
   * @param {string} reason its close reason
   * @param {number} attempts how many connections in a row ended that way
   * @param {string[]} [outcomes] what each of them got
   */
  constructor(closeCode, reason, attempts, outcomes = []) {
    super(closeCode, attempts, reason, outcomes);
    this.message =
      `${attempts} connections in a row closed before any progress, giving up: ` +
      `${explainClose(closeCode, reason)}${listed(outcomes)}`;
    /** The rejection codes the close code and reason may stand for (§9). */
    this.codes = closeCode === null ? [] : codesForClose(closeCode, reason || null);
    /** The rejection code, when only one fits. */
    this.code = this.codes.length === 1 ? this.codes[0] : null;
  }
}

/** The client was closed, by the application or normally by the server. */
export class ClientClosed extends SignedWSError {
  constructor() {
    super('the client is closed');
  }
}
