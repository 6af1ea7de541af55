/**
 * The WebSocket client: an authenticated, reconnecting connection, for
 * browsers and Node (SPEC.md §5-§7). It mirrors the Python client
 * (`signedws.asyncio.connect`).
 *
 * Theory of operation
 * -------------------
 * `connect` opens a WebSocket with the `signedws.v1` subprotocol (nothing
 * else: no token in the URL, no cookie, no header), reads the hello and makes
 * a core `Signer` from it. Server frames are verified one at a time, in
 * arrival order; their acknowledgements empty the `Outbox` and their payloads
 * go to `recv`. When the connection ends a supervisor decides, from the close
 * code (`reconnect.closeAction`), whether to reconnect (with backoff),
 * refresh the credential first, stop, or fail.
 *
 * Every message `send` is given enters the outbox with the stream's next
 * `seq` and stays until an acknowledgement covers it. On every new connection
 * the pending messages are signed again under the new nonce and counters,
 * with their original `seq`, and sent before anything new (SPEC.md §7.3); the
 * server drops those it had delivered already. Nothing sent is lost, nothing
 * is delivered twice.
 *
 * Invariants:
 *
 * 1. One lock covers signing and writing: counters reach the wire in order,
 *    even with many concurrent `send` calls (SPEC.md §6.3 step 1).
 * 2. The stream id is fixed for the life of the client; each connection's
 *    signer numbers after the outbox's last `seq`.
 * 3. A server frame that fails verification closes the connection with its
 *    rejection's close code and ends the client with `Rejected` (§7.2).
 * 4. No event, error or log carries a token, frame key, key or payload.
 *
 * Browsers do not show a script why a handshake failed (an HTTP 403 for a
 * refused Origin looks like a network error): the first connection's failure
 * rejects `connect` with `HandshakeFailed`; later ones are retried with
 * backoff, up to `maxAttempts`.
 *
 * @module signedws/client
 */

import { Topics } from './broadcast.js';
import { randomBytes } from './bytes.js';
import { Ed25519Credential, MACCredential } from './credential.js';
import { DEFAULT_MAX_SERVER_FRAME_SIZE, STREAM_SIZE, SUBPROTOCOL, TYPE_KEY_REFERENCE } from './envelope.js';
import {
  Code,
  HANDSHAKE_ADVICE,
  Rejected,
  SignedWSError,
  UsageError,
  codesForClose,
  explainClose,
} from './errors.js';
import { fromIssuer, isIssuerOptions } from './issuer.js';
import { Outbox } from './outbox.js';
import { Action, Backoff, closeAction } from './reconnect.js';
import { verifyServerFrame } from './receive.js';
import { Signer, serverKeyMap } from './signer.js';

/** @typedef {import('./credential.js').ClientCredential} ClientCredential */
/** @typedef {import('./signer.js').ServerKeys} ServerKeys */

export const DEFAULT_REFRESH_MARGIN = 60;
export const DEFAULT_KEEPALIVE = 60;
export const DEFAULT_MAX_PENDING = 1024;
export const DEFAULT_MAX_QUEUE = 1024;
export const DEFAULT_OPEN_TIMEOUT = 10;
export const DEFAULT_MAX_REPEATS = 5;
export const DEFAULT_ACK_TIMEOUT = 60;
/** How the client closes a connection whose server stopped acknowledging. */
const ACK_TIMEOUT_CLOSE = { code: 4408, reason: 'no acknowledgement' };
/**
 * A connection that stayed open this long (seconds) made progress, even if
 * nothing was acknowledged or received on it (a quiet listener dropped by a
 * proxy).
 */
export const STABLE_SECONDS = 30;

const OPEN = 1;
/** The longest single timer, seconds (setTimeout's limit is 2^31 - 1 ms). */
const MAX_SLEEP = 86400;
/** How many connection outcomes a client keeps for its final error. */
const MAX_OUTCOMES = 16;

/** @param {string[]} outcomes */
function listed(outcomes) {
  return outcomes.length ? `; what each got: ${outcomes.join('; ')}` : '';
}

/** The server refused this client in a way that retrying cannot fix. */
export class Refused extends SignedWSError {
  /**
   * @param {number} closeCode the WebSocket close code
   * @param {string} [reason] the server's opaque close reason
   * @param {string} [hint] what the client can tell on its own
   */
  constructor(closeCode, reason = '', hint = '') {
    const explanation = explainClose(closeCode, reason) + (hint ? ` Here: ${hint}.` : '');
    super(`server refused the connection: ${explanation}`);
    /** What the close code means and what to do (`explainClose`), as in the message. */
    this.explanation = explanation;
    this.closeCode = closeCode;
    this.reason = reason;
    /** The rejection codes the close code and reason may stand for (§9). */
    this.codes = codesForClose(closeCode, reason || null);
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

/** A promise-chain lock: `run` calls are executed one at a time, in order. */
class Lock {
  constructor() {
    /** @private @type {Promise<unknown>} */
    this._tail = Promise.resolve();
  }

  /**
   * @template T
   * @param {() => Promise<T> | T} fn
   * @returns {Promise<T>}
   */
  run(fn) {
    const result = this._tail.then(fn);
    this._tail = result.catch(() => undefined);
    return result;
  }
}

/**
 * One WebSocket connection as the client drives it.
 *
 * @typedef {object} Link
 * @property {WebSocket} ws
 * @property {Signer | null} signer
 * @property {Promise<{code: number, reason: string}>} closed
 * @property {Error | null} failure why the client closed it (a refused server frame)
 * @property {Promise<unknown>} chain frames are handled one at a time
 * @property {boolean} [ackTimedOut] the client closed it for want of an acknowledgement
 */

/**
 * @typedef {object} ConnectOptions
 * @property {string} audience the audience the server must announce (§5.2)
 * @property {ServerKeys} [serverKeys] for `ed25519` clients, the server's
 *   public keys by id, to verify server frames
 * @property {() => Promise<ClientCredential>} [refresh] returns a fresh
 *   credential of the same scheme, issuer and subject; called `refreshMargin`
 *   seconds before the credential expires (and after a 4419 close). Later
 *   frames carry it, on the same connection.
 * @property {number} [refreshMargin] seconds before expiry to refresh
 * @property {boolean} [reconnect] reconnect after a transient failure (default)
 * @property {Backoff} [backoff] delays between reconnection attempts
 * @property {number | null} [maxAttempts] reconnection attempts per drop
 *   before giving up with `ConnectionLost` (null: no limit)
 * @property {number | null} [ackTimeout] close the connection (4408) and
 *   reconnect when a message sent on it waited this many seconds (up to twice
 *   as long) with no acknowledgement at all (null: wait forever)
 * @property {number | null} [maxRepeats] give up with `RepeatedFailure` once
 *   this many connections in a row ended the same way (same close code and
 *   reason) with nothing acknowledged or received on them (null: no limit;
 *   the backoff still grows with each repeat)
 * @property {number | null} [keepalive] send a control frame after this many
 *   seconds without sending (null: never)
 * @property {number} [maxPending] unacknowledged messages beyond which `send` waits
 * @property {number} [maxQueue] received payloads buffered for `recv`
 * @property {number | null} [openTimeout] seconds for the handshake and the hello (null: none)
 * @property {typeof WebSocket} [WebSocket] the WebSocket class (default: the
 *   global one; in Node 20, run with `--experimental-websocket` or pass one)
 * @property {() => number} [clock] the wall clock, seconds (for tests)
 * @property {() => number} [random] uniform [0, 1) for backoff jitter
 * @property {Uint8Array} [stream] the stream id (16 bytes; random by default)
 */

/**
 * A signedws client. Made by `connect`. `send` signs, `recv` and `for await`
 * yield verified server payloads, `drain` waits until everything sent is
 * acknowledged. Events (an `EventTarget`): `connect` (`detail`:
 * `{connections, resent}`), `disconnect` (`{code, reason}`), `refresh`
 * (`{credential}`).
 */
export class ClientConnection extends EventTarget {
  /**
   * @param {string} url
   * @param {ClientCredential} credential
   * @param {ConnectOptions} options
   */
  constructor(url, credential, options) {
    super();
    const {
      audience,
      serverKeys,
      refresh = null,
      refreshMargin = DEFAULT_REFRESH_MARGIN,
      reconnect = true,
      backoff = new Backoff(),
      maxAttempts = null,
      maxRepeats = DEFAULT_MAX_REPEATS,
      ackTimeout = DEFAULT_ACK_TIMEOUT,
      keepalive = DEFAULT_KEEPALIVE,
      maxPending = DEFAULT_MAX_PENDING,
      maxQueue = DEFAULT_MAX_QUEUE,
      openTimeout = DEFAULT_OPEN_TIMEOUT,
      WebSocket: WebSocketClass = globalThis.WebSocket,
      clock = () => Date.now() / 1000,
      random = Math.random,
      stream = randomBytes(STREAM_SIZE),
    } = options ?? {};
    if (!(credential instanceof MACCredential || credential instanceof Ed25519Credential)) {
      throw new UsageError('credential must be a MACCredential or an Ed25519Credential');
    }
    if (typeof audience !== 'string') throw new UsageError('audience is required');
    if (typeof WebSocketClass !== 'function') {
      throw new UsageError('no WebSocket: in Node 20 run with --experimental-websocket or pass options.WebSocket');
    }
    for (const [name, value] of Object.entries({ maxPending, maxQueue })) {
      if (!Number.isInteger(value) || value < 1) throw new UsageError(`${name} must be a positive integer`);
    }
    if (maxAttempts !== null && !(maxAttempts >= 0)) throw new UsageError('maxAttempts must not be negative');
    if (maxRepeats !== null && !(Number.isInteger(maxRepeats) && maxRepeats >= 1)) {
      throw new UsageError('maxRepeats must be a positive integer (or null)');
    }
    if (keepalive !== null && !(keepalive > 0)) throw new UsageError('keepalive must be positive (or null)');
    if (ackTimeout !== null && !(ackTimeout > 0)) throw new UsageError('ackTimeout must be positive (or null)');
    if (!(refreshMargin >= 0)) throw new UsageError('refreshMargin must not be negative');
    if (/^wss?:\/\/[^/]*@/.test(url) || /[?#]/.test(url)) {
      // Nothing secret belongs in the URL (SPEC.md §5.1, §11.1).
      throw new UsageError('the URL carries no credentials, query or fragment: signedws authenticates frames');
    }
    this.url = url;
    this.audience = audience;
    /** The stream id (SPEC.md §7.3), fixed for the life of the client. */
    this.stream = stream;
    /** The topic marks of broadcasts (SPEC.md §14.4), for the life of the client. */
    this.topics = new Topics();
    /** Connections opened so far (1 after `connect`). */
    this.connections = 0;
    /** @private */ this._credential = credential;
    /** @private */ this._serverKeys = serverKeyMap(serverKeys);
    /** @private */ this._refresh = refresh;
    /** @private */ this._refreshMargin = refreshMargin;
    /** @private */ this._reconnect = reconnect;
    /** @private */ this._backoff = backoff;
    /** @private */ this._maxAttempts = maxAttempts;
    /** @private */ this._maxRepeats = maxRepeats;
    /** @private */ this._ackTimeout = ackTimeout;
    /** Whether the current connection made progress (§7.3). @private */
    this._progress = false;
    /** @private */ this._keepalive = keepalive;
    /** @private */ this._maxPending = maxPending;
    /** @private */ this._maxQueue = maxQueue;
    /** @private */ this._openTimeout = openTimeout;
    /** @private */ this._WebSocket = WebSocketClass;
    /** @private */ this._clock = clock;
    /** @private */ this._random = random;
    /** @private @type {string[]} what each connection and attempt since the last progress got */
    this._outcomes = [];
    /** @private */ this._outbox = new Outbox();
    /** @private @type {Array<string | Uint8Array>} */ this._incoming = [];
    /** @private */ this._sendLock = new Lock();
    /** @private */ this._refreshLock = new Lock();
    /** @private @type {Link | null} */ this._link = null;
    /** @private */ this._lastSend = 0;
    /** @private @type {Promise<void> | null} */ this._supervisor = null;
    /** @private */ this._closing = false;
    /** @private */ this._done = false;
    /** @private @type {Error | null} */ this._failure = null;
    /** @private @type {Set<() => void>} */ this._wakers = new Set();
    this._changed = this._newChanged();
  }

  /** The credential frames are signed with now. @returns {ClientCredential} */
  get credential() {
    return this._credential;
  }

  /** Messages sent but not acknowledged yet. */
  get pending() {
    return this._outbox.length;
  }

  /**
   * The payloads sent but not acknowledged yet, oldest first: after the client
   * ended on an error, what the application may want to send again (nothing
   * is dropped, SPEC.md §7.3).
   *
   * @returns {Array<string | Uint8Array>}
   */
  get unacknowledged() {
    return this._outbox.payloads();
  }

  /** Whether a connection is open (false while reconnecting). */
  get connected() {
    return this._link !== null && this._link.signer !== null;
  }

  toString() {
    const state = this._done ? 'closed' : this.connected ? 'open' : 'reconnecting';
    return `ClientConnection(${this.url}, ${state}, pending=${this._outbox.length})`;
  }

  // -- waiting ----------------------------------------------------------------

  /** @private */
  _newChanged() {
    /** @type {() => void} */
    let resolve = () => {};
    const promise = new Promise((r) => {
      resolve = () => r(undefined);
    });
    return { promise, resolve };
  }

  /** Wake every waiter: something changed (an ack, a message, the end). @private */
  _notify() {
    const changed = this._changed;
    this._changed = this._newChanged();
    changed.resolve();
  }

  /**
   * Sleep `seconds`, or less if the client is closed meanwhile.
   *
   * @private
   * @param {number} seconds
   * @param {Promise<unknown> | null} [until] ends the sleep early too
   */
  _sleep(seconds, until = null) {
    return new Promise((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        this._wakers.delete(wake);
        resolve(undefined);
      };
      // Capped: a timer past 2^31 - 1 ms would fire at once. Callers loop.
      const timer = setTimeout(wake, Math.max(0, Math.min(seconds, MAX_SLEEP) * 1000));
      this._wakers.add(wake);
      until?.then(wake);
    });
  }

  /**
   * @private
   * @param {string} type
   * @param {object} detail
   */
  _emit(type, detail) {
    const event = new Event(type);
    Object.defineProperty(event, 'detail', { value: detail });
    this.dispatchEvent(event);
  }

  /**
   * @private
   * @param {Error | null} failure
   */
  _end(failure) {
    if (!this._done) {
      this._done = true;
      this._failure = failure;
      for (const wake of [...this._wakers]) wake();
      this._notify();
    }
  }

  /** @private */
  _raiseIfDone() {
    if (this._done) throw this._failure ?? new ClientClosed();
  }

  // -- connecting ---------------------------------------------------------------

  /** @returns {Promise<ClientConnection>} */
  async _start() {
    await this._open();
    this._supervisor = this._run();
    if (this._refresh !== null) void this._refreshLoop();
    return this;
  }

  /**
   * Open a WebSocket and wait for its hello.
   *
   * @private
   * @returns {Promise<{link: Link, hello: Uint8Array}>}
   */
  _connectSocket() {
    return new Promise((resolve, reject) => {
      let ws;
      try {
        ws = new this._WebSocket(this.url, [SUBPROTOCOL]);
      } catch (error) {
        reject(new HandshakeFailed(error instanceof Error ? error.message : String(error)));
        return;
      }
      ws.binaryType = 'arraybuffer';
      /** @type {(value: {code: number, reason: string}) => void} */
      let closedResolve = () => {};
      /** @type {Link} */
      const link = {
        ws,
        signer: null,
        closed: new Promise((r) => {
          closedResolve = r;
        }),
        failure: null,
        chain: Promise.resolve(),
      };
      let stage = 'handshake';
      const timeout = this._openTimeout;
      const timer =
        timeout === null
          ? undefined
          : setTimeout(() => {
              fail(new HandshakeFailed(`no ${stage === 'handshake' ? 'handshake' : 'hello'} in ${timeout} s`));
              ws.close();
            }, Math.min(timeout, MAX_SLEEP) * 1000);
      /** @param {Error} error */
      const fail = (error) => {
        if (stage === 'done') return;
        stage = 'done';
        clearTimeout(timer);
        reject(error);
      };
      ws.onopen = () => {
        if (ws.protocol !== SUBPROTOCOL) {
          const error = new Rejected(Code.malformed, `the server did not select ${SUBPROTOCOL}`);
          ws.close(error.code.closeCode, error.code.peerReason);
          fail(error);
          return;
        }
        stage = 'hello';
      };
      ws.onerror = () => {
        // Browsers follow an error with a close event, which settles
        // everything. Node 20's WebSocket does not after a refused handshake
        // (a non-101 status): without this, the client waited for openTimeout.
        if (stage === 'handshake') fail(new HandshakeFailed('refused or unreachable, close code 1006'));
      };
      ws.onclose = (event) => {
        closedResolve({ code: event.code, reason: event.reason });
        fail(stage === 'handshake' ? new HandshakeFailed(`close code ${event.code}`) : new ConnectionLost(event.code));
      };
      ws.onmessage = (event) => {
        if (stage === 'hello') {
          stage = 'done';
          clearTimeout(timer);
          if (typeof event.data === 'string') {
            const error = new Rejected(Code.malformed, 'the hello is a text message');
            ws.close(error.code.closeCode, error.code.peerReason);
            reject(error);
            return;
          }
          if (event.data.byteLength > DEFAULT_MAX_SERVER_FRAME_SIZE) {
            // Bounded before decoding, as server frames are (§7.2 step 1).
            const error = new Rejected(Code.frame_too_large, `hello of ${event.data.byteLength} bytes`);
            ws.close(error.code.closeCode, error.code.peerReason);
            reject(error);
            return;
          }
          resolve({ link, hello: new Uint8Array(event.data) });
          return;
        }
        const data = event.data;
        link.chain = link.chain
          .then(() => this._onFrame(link, data))
          .catch((/** @type {Error} */ error) => {
            // Not a refused frame but a bug or a failed platform call: end.
            link.failure ??= error;
            ws.close();
          });
      };
    });
  }

  /**
   * Open a connection, read the hello, resend what is pending.
   *
   * @private
   */
  async _open() {
    const { link, hello } = await this._connectSocket();
    const { ws } = link;
    try {
      const signer = Signer.fromHello(hello, this._credential, {
        audience: this.audience,
        now: this._clock(),
        serverKeys: this._serverKeys,
        stream: this.stream,
        seq: this._outbox.seq,
        topics: this.topics,
      });
      const resent = await this._sendLock.run(async () => {
        // Installed before the first frame goes out: the server may answer
        // it before the resend is over.
        link.signer = signer;
        this._link = link;
        this._progress = false;
        const count = await this._resend(ws, signer);
        this._lastSend = this._clock();
        return count;
      });
      this.connections++;
      this._notify();
      this._emit('connect', { connections: this.connections, resent });
    } catch (error) {
      if (this._link === link) this._link = null;
      if (error instanceof Rejected) ws.close(error.code.closeCode, error.code.peerReason);
      else ws.close();
      throw error;
    }
  }

  /**
   * Send what is pending again, in order (SPEC.md §7.3); the caller holds the
   * send lock.
   *
   * @private
   * @param {WebSocket} ws
   * @param {Signer} signer
   * @returns {Promise<number>} how many messages were resent
   * @throws {Rejected} `frame_too_large` if a pending message (or a control
   *   frame) does not fit the hello's `max_frame`. The hello is not
   *   authenticated (§11.6): its value may be forged, so the message is never
   *   dropped for it; it stays pending and the client ends with this error.
   */
  async _resend(ws, signer) {
    let resent = 0;
    const limit = signer.hello.maxFrameSize;
    for (const entry of this._outbox.restart()) {
      let frame;
      try {
        frame = await signer.sign(entry.payload, { now: this._clock(), seq: entry.seq });
      } catch (error) {
        if (!(error instanceof UsageError)) throw error;
        throw new Rejected(
          Code.frame_too_large,
          `pending message seq=${entry.seq} does not fit the hello's max_frame of ${limit} bytes; kept unacknowledged`,
        );
      }
      entry.counter = signer.counter;
      ws.send(frame);
      resent++;
    }
    if (!resent) {
      // A control frame binds the connection at once, so the server may send
      // to us before we send anything.
      let control;
      try {
        control = await signer.sign(null, { now: this._clock() });
      } catch (error) {
        if (!(error instanceof UsageError)) throw error;
        throw new Rejected(Code.frame_too_large, `the hello's max_frame of ${limit} bytes is too small for a control frame`);
      }
      ws.send(control);
    }
    return resent;
  }

  /**
   * Handle one server frame (called one at a time per connection).
   *
   * @private
   * @param {Link} link
   * @param {unknown} data
   */
  async _onFrame(link, data) {
    if (link.failure !== null || link.signer === null) return;
    try {
      // Server frames and broadcasts (SPEC.md §14.4; issue 18's hook).
      const message = await verifyServerFrame(link.signer, data, { now: this._clock() });
      if (this._outbox.acknowledge(message.ack)) {
        this._progress = true;
        this._notify();
      }
      if (message.payload !== null) {
        this._progress = true;
        while (this._incoming.length >= this._maxQueue && !this._done) await this._changed.promise;
        this._incoming.push(message.payload);
        this._notify();
      }
    } catch (error) {
      if (!(error instanceof Rejected)) throw error;
      link.failure = error;
      link.ws.close(error.code.closeCode, error.code.peerReason);
    }
  }

  /**
   * The supervisor: serve each connection, then reconnect or stop.
   *
   * Connections that keep ending the same way (the server's close code and
   * reason, or the client's acknowledgement timeout) without progress count
   * as repeats: the backoff grows with them, and after `maxRepeats` of them
   * the client ends with `RepeatedFailure` rather than retrying forever. A
   * connection lost without a close frame (1006) is neither counted nor
   * forgiven.
   *
   * @private
   */
  async _run() {
    let repeats = 0;
    /** @type {string | null} */
    let last = null;
    try {
      while (!this._closing) {
        const opened = this._clock();
        const { action, code, reason } = await this._serve();
        if (this._closing) break;
        const ending = JSON.stringify([action, code, reason]);
        if (this._progress || this._clock() - opened >= STABLE_SECONDS || action === Action.FINISH) {
          repeats = 0;
          last = null;
          this._outcomes.length = 0;
        } else if (code === null || code === 1006) {
          // Lost without a close frame: as likely the network's doing as the
          // server's. Neither counted nor forgiven.
        } else if (ending === last) repeats++;
        else {
          repeats = 1;
          last = ending;
        }
        this._outcome(`connection ${this.connections}: closed with close code ${code ?? 1006} (${reason || 'no reason'})`);
        if (action !== Action.FAIL && this._maxRepeats !== null && repeats >= this._maxRepeats) {
          this._end(new RepeatedFailure(code, reason, repeats, [...this._outcomes]));
          break;
        }
        if (action === Action.FINISH) break;
        if (action === Action.FAIL) {
          this._end(new Refused(code, reason, this._hint(code)));
          break;
        }
        if (action === Action.REFRESH) {
          if (this._refresh === null || !this._reconnect) {
            this._end(new Refused(code, reason, this._hint(code)));
            break;
          }
          await this._refreshCredential(true);
          if (this._done) break;
        } else if (!this._reconnect) {
          this._end(new ConnectionLost(code, 0, reason, [...this._outcomes]));
          break;
        }
        if (!(await this._reconnectLoop(code, reason, Math.max(0, repeats - 1)))) break;
      }
    } catch (error) {
      this._end(/** @type {Error} */ (error));
    } finally {
      this._end(null);
    }
  }

  /**
   * Reconnect, with backoff (longer after `repeats` identical failures).
   *
   * @private
   * @param {number | null} closeCode
   * @param {string} reason
   * @param {number} repeats
   * @returns {Promise<boolean>} whether a new connection is open
   */
  async _reconnectLoop(closeCode, reason, repeats) {
    let attempt = 0;
    while (!this._closing) {
      if (this._maxAttempts !== null && attempt >= this._maxAttempts) {
        this._end(new ConnectionLost(closeCode, attempt, reason, [...this._outcomes]));
        return false;
      }
      await this._sleep(this._backoff.delay(attempt + repeats, this._random()));
      if (this._closing) return false;
      attempt++;
      try {
        await this._open();
        return true;
      } catch (error) {
        if (error instanceof Rejected) {
          this._end(error);
          return false;
        }
        if (!(error instanceof HandshakeFailed || error instanceof ConnectionLost)) throw error;
        this._outcome(
          `attempt ${attempt}: ` +
            (error instanceof HandshakeFailed
              ? `handshake failed (${error.why})`
              : `closed before the hello with close code ${error.closeCode ?? 1006}`),
        );
      }
    }
    return false;
  }

  /**
   * Record what a connection or attempt got, for the final error.
   *
   * @private
   * @param {string} text
   */
  _outcome(text) {
    this._outcomes.push(text);
    if (this._outcomes.length > MAX_OUTCOMES) this._outcomes.shift();
  }

  /**
   * What this client can tell on its own about a refusal: a credential for
   * another audience (4401), or one that expired (4419).
   *
   * @private
   * @param {number | null} closeCode
   * @returns {string}
   */
  _hint(closeCode) {
    const claims = /** @type {{aud?: string[], exp?: number | bigint} | null | undefined} */ (
      /** @type {any} */ (this._credential).claims
    );
    if (!claims || claims.aud === undefined || claims.exp === undefined) return '';
    if (closeCode === 4401 && claims.aud.length > 0 && !claims.aud.includes(this.audience)) {
      return `this client's credential is for ${JSON.stringify(claims.aud)}, not for the server's audience ${JSON.stringify(this.audience)}`;
    }
    if (closeCode === 4419 && this._clock() >= Number(claims.exp)) {
      return `this client's credential expired at ${new Date(Number(claims.exp) * 1000).toISOString()}`;
    }
    return '';
  }

  /**
   * Wait until the current connection ends; say what to do next.
   *
   * @private
   * @returns {Promise<{action: string, code: number, reason: string}>}
   */
  async _serve() {
    const link = /** @type {Link} */ (this._link);
    const keepalive = this._keepalive === null ? null : this._keepaliveLoop(link);
    const watchdog = this._ackTimeout === null ? null : this._ackWatchdog(link);
    const { code, reason } = await link.closed;
    await link.chain.catch(() => undefined);
    if (this._link === link) this._link = null;
    this._notify();
    this._emit('disconnect', { code, reason });
    if (keepalive !== null) await keepalive;
    if (watchdog !== null) await watchdog;
    if (link.failure !== null) throw link.failure;
    if (link.ackTimedOut) {
      // Counted as the client's own ending, whether or not the server answered.
      return { action: Action.RECONNECT, code: ACK_TIMEOUT_CLOSE.code, reason: ACK_TIMEOUT_CLOSE.reason };
    }
    return { action: code === 1006 ? Action.RECONNECT : closeAction(code), code, reason };
  }

  /**
   * Close the connection (4408) when a message sent on it waited `ackTimeout`
   * seconds (up to twice that) with no acknowledgement at all: a server that
   * accepts frames but never acknowledges them (SPEC.md §7.3) must not keep
   * the client waiting forever. The client then reconnects and resends;
   * `_run` counts such endings as repeats.
   *
   * @private
   * @param {Link} link
   */
  async _ackWatchdog(link) {
    const timeout = /** @type {number} */ (this._ackTimeout);
    let open = true;
    void link.closed.then(() => {
      open = false;
    });
    while (open && !this._done) {
      const waiting = this._outbox.sentEntry();
      const acked = link.signer?.acked;
      await this._sleep(timeout, link.closed);
      if (!open || this._done || waiting === null || link.signer?.acked !== acked) continue;
      if (this._outbox.holds(waiting) && waiting.counter !== 0) {
        link.ackTimedOut = true;
        link.ws.close(ACK_TIMEOUT_CLOSE.code, ACK_TIMEOUT_CLOSE.reason);
        return;
      }
    }
  }

  /**
   * Send a control frame when nothing was sent for `keepalive` seconds, so
   * that the server's idle timeout does not close a listening client.
   *
   * @private
   * @param {Link} link
   */
  async _keepaliveLoop(link) {
    const keepalive = /** @type {number} */ (this._keepalive);
    let open = true;
    void link.closed.then(() => {
      open = false;
    });
    while (open && !this._done) {
      await this._sleep(this._lastSend + keepalive - this._clock(), link.closed);
      if (!open || this._done) return;
      if (this._clock() - this._lastSend < keepalive) continue;
      await this._sendLock.run(async () => {
        if (this._link !== link || link.ws.readyState !== OPEN || link.signer === null) return;
        link.ws.send(await link.signer.sign(null, { now: this._clock() }));
        this._lastSend = this._clock();
      });
    }
  }

  // -- credentials --------------------------------------------------------------

  /**
   * @private
   * @param {ClientCredential} credential
   */
  _install(credential) {
    if (credential?.constructor !== this._credential.constructor) {
      throw new UsageError('a refreshed credential must be of the same scheme');
    }
    this._link?.signer?.refresh(credential);
    this._credential = credential;
  }

  /**
   * Get a new credential from the `refresh` callback and sign with it.
   *
   * @private
   * @param {boolean} force
   */
  async _refreshCredential(force) {
    const refresh = /** @type {() => Promise<ClientCredential>} */ (this._refresh);
    const before = this._credential;
    await this._refreshLock.run(async () => {
      if (this._credential !== before && !force) return;
      const credential = await refresh();
      try {
        // Under the send lock: the next frame signed carries it.
        await this._sendLock.run(() => this._install(credential));
      } catch (error) {
        if (!(error instanceof UsageError)) throw error;
        this._end(error);
        return;
      }
      this._emit('refresh', { credential });
    });
  }

  /** @private @returns {number | null} the credential's expiry, seconds */
  _expires() {
    const claims = this._credential.claims;
    return claims.type === TYPE_KEY_REFERENCE ? null : Number(claims.exp);
  }

  /**
   * Refresh the credential `refreshMargin` seconds before it expires, without
   * reconnecting (SPEC.md §4.5).
   *
   * @private
   */
  async _refreshLoop() {
    let failures = 0;
    while (!this._done) {
      const expires = this._expires();
      if (expires === null) return;
      let delay = expires - this._refreshMargin - this._clock();
      if (failures) delay = Math.max(delay, this._backoff.delay(failures - 1, this._random()));
      if (delay > 0) {
        // Timers overflow past 2^31 - 1 ms (24.8 days): sleep in steps.
        await this._sleep(Math.min(delay, MAX_SLEEP));
        if (this._done) return;
        if (delay > MAX_SLEEP) continue;
      }
      try {
        await this._refreshCredential(false);
      } catch {
        failures++;
        continue;
      }
      failures = 0;
      const next = this._expires();
      if (next !== null && next - this._refreshMargin <= this._clock()) failures = 1;
    }
  }

  // -- the application's side -----------------------------------------------------

  /**
   * Sign `payload` and send it; it is resent after a reconnect until the
   * server acknowledges it. Resolves once the message is written, or queued
   * while reconnecting; waits while `maxPending` messages await
   * acknowledgement.
   *
   * @param {string | Uint8Array} payload
   * @returns {Promise<void>}
   * @throws {UsageError} for a payload that is not a string or a Uint8Array,
   *   or too large for the server's `max_frame`
   * @throws {Refused | ConnectionLost | Rejected | ClientClosed} if the client ended
   */
  async send(payload) {
    if (typeof payload !== 'string' && !(payload instanceof Uint8Array)) {
      throw new UsageError('payload must be a string or a Uint8Array');
    }
    while (this._outbox.length >= this._maxPending) {
      this._raiseIfDone();
      await this._changed.promise;
    }
    await this._sendLock.run(async () => {
      this._raiseIfDone();
      const entry = this._outbox.add(payload);
      const link = this._link;
      if (link === null || link.signer === null) return; // sent when the next connection opens
      let frame;
      try {
        frame = await link.signer.sign(payload, { now: this._clock(), seq: entry.seq });
      } catch (error) {
        this._outbox.discard(entry);
        throw error;
      }
      entry.counter = link.signer.counter;
      if (link.ws.readyState !== OPEN) return; // resent by the next connection
      link.ws.send(frame);
      this._lastSend = this._clock();
    });
  }

  /**
   * The next verified server payload (pure acknowledgements are not returned).
   *
   * @returns {Promise<string | Uint8Array>}
   * @throws {ClientClosed} once the client is closed and every payload
   *   received was returned
   * @throws {Refused | ConnectionLost | Rejected} if the client ended on an error
   */
  async recv() {
    while (this._incoming.length === 0) {
      this._raiseIfDone();
      await this._changed.promise;
    }
    const payload = /** @type {string | Uint8Array} */ (this._incoming.shift());
    this._notify();
    return payload;
  }

  /** Verified server payloads until the client is closed; throws if it ended on an error. */
  async *[Symbol.asyncIterator]() {
    while (true) {
      try {
        yield await this.recv();
      } catch (error) {
        if (error instanceof ClientClosed) return;
        throw error;
      }
    }
  }

  /**
   * Wait until the server acknowledged every message sent. Resolves only when
   * every message was acknowledged, never because one was given up: nothing
   * unacknowledged is dropped (SPEC.md §7.3, §11.6).
   *
   * @returns {Promise<void>}
   * @throws {Refused | ConnectionLost | RepeatedFailure | Rejected | ClientClosed}
   *   if the client ended with messages unacknowledged (see `unacknowledged`);
   *   `Rejected` with `frame_too_large`: a pending message does not fit the
   *   `max_frame` of a new connection's hello
   */
  async drain() {
    while (this._outbox.length) {
      this._raiseIfDone();
      await this._changed.promise;
    }
  }

  /**
   * Stop: close the connection (1000) and do not reconnect. Messages not
   * acknowledged yet are dropped; call `drain` first to wait for them.
   *
   * @returns {Promise<void>}
   */
  async close() {
    this._closing = true;
    for (const wake of [...this._wakers]) wake();
    const link = this._link;
    if (link !== null) link.ws.close(1000);
    if (this._supervisor !== null) await this._supervisor;
    // A connection opened while closing.
    this._link?.ws.close(1000);
    this._end(null);
  }
}

/**
 * Connect to a signedws server.
 *
 * ```js
 * const client = await connect('wss://api.example/ws', credential, { audience: 'api.example' });
 * await client.send('hello');
 * for await (const payload of client) console.log(payload);
 * ```
 *
 * The first connection is attempted once: its failure rejects. After it, the
 * client reconnects by itself as the close code says.
 *
 * Or let an issuer service (SPEC.md §13) provide and refresh the credential:
 * `connect(url, { issuer: '/signedws', loginToken: async () => token, audience })`
 * (see `signedws/issuer`).
 *
 * @param {string} url the server's `ws://` or `wss://` URL (nothing secret in it)
 * @param {ClientCredential | (ConnectOptions & import('./issuer.js').IssuerOptions & {issuer: string})} credential
 *   the credential, or issuer options (then `options` is not used)
 * @param {ConnectOptions} [options]
 * @returns {Promise<ClientConnection>}
 * @throws {HandshakeFailed} the handshake failed (e.g. HTTP 403 for the Origin)
 * @throws {Rejected} the hello is invalid or names another audience
 * @throws {UsageError} for invalid arguments
 */
export async function connect(url, credential, options) {
  if (isIssuerOptions(credential)) ({ credential, options } = await fromIssuer(credential)); // SPEC.md §13
  if (options === undefined) throw new UsageError('connect(url, credential, options): options are required');
  return new ClientConnection(url, credential, options)._start();
}

export { Backoff, DEFAULT_MAX_SERVER_FRAME_SIZE };
