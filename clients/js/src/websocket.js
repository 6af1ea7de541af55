/**
 * The WebSocket client: an authenticated, reconnecting connection over the
 * WHATWG `WebSocket`, for browsers and Node (SPEC.md §5-§7). It mirrors the
 * Python client (`signedws.asyncio.connect`).
 *
 * Theory of operation
 * -------------------
 * This module only moves bytes and time. Every protocol decision (numbering,
 * resending, acknowledgements, keepalive, the acknowledgement timeout, what a
 * close code means, repeats, backoff delays, when to refresh) is the
 * `ClientSession`'s (`client.js`). The pump:
 *
 * - opens a WebSocket with the `signedws.v1` subprotocol (nothing else: no
 *   token in the URL, no cookie, no header) and hands the hello and every
 *   later message to the session;
 * - after each session input, in one chain (`_drive`): writes
 *   `dataToSend()`, acts on `eventsReceived()` (payloads to `recv`, closes
 *   the socket on `ServerRejected` and `AckTimedOut`), and arms one timer for
 *   `nextDeadline()`, which calls `advanceTime`;
 * - when a connection ends, asks `connectionClosed` what to do, sleeps
 *   `reconnectDelay()` and reconnects, or ends with the session's `failure`;
 * - awaits the application's `refresh` callback at `refreshDue()`;
 * - makes `send` wait while `maxPending` messages are unacknowledged and
 *   stops feeding frames while `maxQueue` payloads wait for `recv`.
 *
 * Browsers do not show a script why a handshake failed (an HTTP 403 for a
 * refused Origin looks like a network error): the first connection's failure
 * rejects `connect` with `HandshakeFailed`; later ones are retried with
 * backoff, up to `maxAttempts`.
 *
 * @module signedws/websocket
 */

import { SUBPROTOCOL } from './envelope.js';
import {
  ClientClosed,
  Code,
  ConnectionLost,
  HandshakeFailed,
  Rejected,
  UsageError,
} from './errors.js';
import { fromIssuer, isIssuerOptions } from './issuer.js';
import {
  Action,
  Backoff,
  ClientSession,
  DEFAULT_ACK_TIMEOUT,
  DEFAULT_KEEPALIVE,
  DEFAULT_MAX_REPEATS,
  DEFAULT_REFRESH_MARGIN,
} from './client.js';

/** @typedef {import('./credential.js').ClientCredential} ClientCredential */
/** @typedef {import('./signer.js').ServerKeys} ServerKeys */
/** @typedef {import('./client.js').ClientEvent} ClientEvent */

export const DEFAULT_MAX_PENDING = 1024;
export const DEFAULT_MAX_QUEUE = 1024;
export const DEFAULT_OPEN_TIMEOUT = 10;

const OPEN = 1;
/** The longest single timer, seconds (setTimeout's limit is 2^31 - 1 ms). */
const MAX_SLEEP = 86400;

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
 * @property {Promise<{code: number, reason: string}>} closed
 * @property {Error | null} failure why the client ended it (a refused
 *   server frame, a bug)
 * @property {Promise<unknown>} chain frames are handed over one at a time
 * @property {() => void} ready the hello was handled: frames may follow
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
 *   reconnect when a message sent on it waited this many seconds with no
 *   acknowledgement at all (null: wait forever)
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
 * @property {import('./broadcast.js').Topics} [topics] the topic marks of
 *   broadcasts (§14.4) to start from (empty by default); see `topics`
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
      stream,
      topics,
    } = options ?? {};
    /** @private The protocol: everything this class does not do. */
    this._session = new ClientSession(credential, {
      audience,
      serverKeys,
      stream,
      keepalive,
      refreshMargin,
      ackTimeout,
      maxRepeats,
      maxAttempts,
      backoff,
      random,
      topics,
    });
    if (typeof WebSocketClass !== 'function') {
      throw new UsageError('no WebSocket: in Node 20 run with --experimental-websocket or pass options.WebSocket');
    }
    for (const [name, value] of Object.entries({ maxPending, maxQueue })) {
      if (!Number.isInteger(value) || value < 1) throw new UsageError(`${name} must be a positive integer`);
    }
    if (/^wss?:\/\/[^/]*@/.test(url) || /[?#]/.test(url)) {
      // Nothing secret belongs in the URL (SPEC.md §5.1, §11.1).
      throw new UsageError('the URL carries no credentials, query or fragment: signedws authenticates frames');
    }
    this.url = url;
    this.audience = audience;
    /** @private */ this._refresh = refresh;
    /** @private */ this._reconnect = reconnect;
    /** @private */ this._maxPending = maxPending;
    /** @private */ this._maxQueue = maxQueue;
    /** @private */ this._openTimeout = openTimeout;
    /** @private */ this._WebSocket = WebSocketClass;
    /** @private */ this._clock = clock;
    /** @private @type {Array<string | Uint8Array>} */ this._incoming = [];
    /** Session inputs, one at a time, each followed by its outputs. @private @type {Promise<unknown>} */
    this._work = Promise.resolve();
    /** @private */ this._refreshLock = new Lock();
    /** @private @type {Link | null} */ this._link = null;
    /** The one timer, armed for the session's `nextDeadline()`. @private @type {ReturnType<typeof setTimeout> | undefined} */
    this._timer = undefined;
    /** @private @type {Promise<void> | null} */ this._supervisor = null;
    /** @private */ this._closing = false;
    /** @private */ this._done = false;
    /** @private @type {Error | null} */ this._failure = null;
    /** @private @type {Set<() => void>} */ this._wakers = new Set();
    this._changed = this._newChanged();
  }

  /** The stream id (SPEC.md §7.3), fixed for the life of the client. */
  get stream() {
    return this._session.stream;
  }

  /**
   * The topic marks of the broadcasts received (SPEC.md §14.4), kept across
   * reconnects: `topics.mark(topic)` is the last `tseq`. Each broadcast is
   * also dispatched as a `broadcast` event (`detail`: its `BroadcastMessage`:
   * topic, `tseq`, `missed`) before its payload is queued for `recv`.
   */
  get topics() {
    return this._session.topics;
  }

  /** Connections opened so far (1 after `connect`). */
  get connections() {
    return this._session.connections;
  }

  /** The credential frames are signed with now. @returns {ClientCredential} */
  get credential() {
    return this._session.credential;
  }

  /** Messages sent but not acknowledged yet. */
  get pending() {
    return this._session.pending;
  }

  /**
   * The payloads sent but not acknowledged yet, oldest first: after the client
   * ended on an error, what the application may want to send again (nothing
   * is dropped, SPEC.md §7.3).
   *
   * @returns {Array<string | Uint8Array>}
   */
  get unacknowledged() {
    return this._session.unacknowledged;
  }

  /** Whether a connection is open (false while reconnecting). */
  get connected() {
    return this._link !== null && this._session.connected;
  }

  toString() {
    const state = this._done ? 'closed' : this.connected ? 'open' : 'reconnecting';
    return `ClientConnection(${this.url}, ${state}, pending=${this._session.pending})`;
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
   */
  _sleep(seconds) {
    return new Promise((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        this._wakers.delete(wake);
        resolve(undefined);
      };
      // Capped: a timer past 2^31 - 1 ms would fire at once. Callers loop.
      const timer = setTimeout(wake, Math.max(0, Math.min(seconds, MAX_SLEEP) * 1000));
      this._wakers.add(wake);
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
      clearTimeout(this._timer);
      for (const wake of [...this._wakers]) wake();
      this._notify();
    }
  }

  /** @private */
  _raiseIfDone() {
    if (this._done) throw this._failure ?? new ClientClosed();
  }

  // -- the session's outputs ------------------------------------------------------

  /**
   * Run one session input, then act on what it says: write its frames, handle
   * its events, re-arm the timer. One at a time, in call order, so frames
   * reach the socket in counter order (SPEC.md §6.3 step 1).
   *
   * @private
   * @template T
   * @param {() => Promise<T> | T} input
   * @returns {Promise<T>}
   */
  _drive(input) {
    const result = this._work.then(async () => {
      try {
        return await input();
      } finally {
        this._output();
      }
    });
    this._work = result.catch(() => undefined);
    return result;
  }

  /** @private */
  _output() {
    const session = this._session;
    const link = this._link;
    const frames = session.dataToSend();
    // Frames of a connection that is closing are dropped: the session resends
    // what they carried on the next one.
    if (link !== null && link.ws.readyState === OPEN) for (const frame of frames) link.ws.send(frame);
    for (const event of session.eventsReceived()) this._process(link, event);
    clearTimeout(this._timer);
    const deadline = this._done ? null : session.nextDeadline();
    if (deadline !== null) {
      const delay = Math.max(0, Math.min(deadline - this._clock(), MAX_SLEEP));
      this._timer = setTimeout(() => void this._drive(() => session.advanceTime(this._clock())), delay * 1000);
    }
  }

  /**
   * @private
   * @param {Link | null} link
   * @param {ClientEvent} event
   */
  _process(link, event) {
    switch (event.type) {
      case 'payload':
        if (event.broadcast !== null) this._emit('broadcast', event.broadcast);
        this._incoming.push(event.payload);
        this._notify();
        break;
      case 'acknowledged':
        this._notify();
        break;
      case 'rejected':
        if (link !== null) {
          link.failure ??= event.error();
          link.ws.close(event.code.closeCode, event.code.peerReason);
        }
        break;
      case 'ack_timeout':
        link?.ws.close(event.closeCode, event.reason);
        break;
    }
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
   * @returns {Promise<{link: Link, hello: ArrayBuffer | string}>}
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
      /** @type {() => void} */
      let ready = () => {};
      /** @type {Link} */
      const link = {
        ws,
        closed: new Promise((r) => {
          closedResolve = r;
        }),
        failure: null,
        chain: new Promise((r) => {
          ready = () => r(undefined);
        }),
        ready: () => ready(),
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
        link.ready();
        fail(stage === 'handshake' ? new HandshakeFailed(`close code ${event.code}`) : new ConnectionLost(event.code));
      };
      ws.onmessage = (event) => {
        if (stage === 'hello') {
          stage = 'done';
          clearTimeout(timer);
          resolve({ link, hello: event.data });
          return;
        }
        const data = event.data;
        link.chain = link.chain
          .then(async () => {
            // Backpressure: no more frames for the session while `recv` lags.
            while (this._incoming.length >= this._maxQueue && !this._done) await this._changed.promise;
            if (this._link === link) await this._drive(() => this._session.receiveMessage(data, { now: this._clock() }));
          })
          .catch((/** @type {Error} */ error) => {
            // Not a refused frame but a bug or a failed platform call: end.
            link.failure ??= error;
            ws.close();
          });
      };
    });
  }

  /**
   * Open a connection and hand its hello to the session, which resends what
   * is pending.
   *
   * @private
   */
  async _open() {
    const { link, hello } = await this._connectSocket();
    let resent = 0;
    try {
      await this._drive(async () => {
        this._link = link;
        resent = this._session.pending;
        await this._session.receiveHello(hello, { now: this._clock() });
      });
    } catch (error) {
      link.failure ??= /** @type {Error} */ (error);
    }
    link.ready();
    if (link.failure !== null || !this._session.connected) {
      // A bad hello (`ServerRejected`): the socket is closing with its code.
      const failure = link.failure ?? new ConnectionLost(null);
      if (this._link === link) this._link = null;
      await this._drive(() => this._session.connectionClosed(null, '', { now: this._clock() }));
      link.ws.close();
      throw failure;
    }
    this._notify();
    this._emit('connect', { connections: this._session.connections, resent });
  }

  /**
   * The supervisor: serve each connection, then do what the session says:
   * reconnect, refresh first, finish, or end with its `failure`.
   *
   * @private
   */
  async _run() {
    try {
      while (!this._closing) {
        const action = await this._serve();
        if (this._closing) break;
        if (action === Action.FINISH) break;
        if (action === Action.FAIL) {
          this._end(this._session.failure);
          break;
        }
        if (action === Action.REFRESH) {
          if (this._refresh === null || !this._reconnect) {
            this._end(this._session.failure);
            break;
          }
          await this._refreshCredential(true);
          if (this._done) break;
        } else if (!this._reconnect) {
          this._end(this._session.failure);
          break;
        }
        if (!(await this._reconnectLoop())) break;
      }
    } catch (error) {
      this._end(/** @type {Error} */ (error));
    } finally {
      this._end(null);
    }
  }

  /**
   * Reconnect after the session's backoff delays.
   *
   * @private
   * @returns {Promise<boolean>} whether a new connection is open
   */
  async _reconnectLoop() {
    while (!this._closing) {
      const delay = this._session.reconnectDelay();
      if (delay === null) {
        this._end(this._session.failure);
        return false;
      }
      await this._sleep(delay);
      if (this._closing) return false;
      try {
        await this._open();
        return true;
      } catch (error) {
        if (error instanceof Rejected) {
          this._end(error);
          return false;
        }
        if (!(error instanceof HandshakeFailed || error instanceof ConnectionLost)) throw error;
        this._session.connectFailed(
          error instanceof HandshakeFailed
            ? `handshake failed (${error.why})`
            : `closed before the hello with close code ${error.closeCode ?? 1006}`,
        );
      }
    }
    return false;
  }

  /**
   * Wait until the current connection ends; say what to do next.
   *
   * @private
   * @returns {Promise<Action>}
   */
  async _serve() {
    const link = /** @type {Link} */ (this._link);
    const { code, reason } = await link.closed;
    await link.chain.catch(() => undefined);
    const action = await this._drive(() => {
      if (this._link === link) this._link = null;
      return this._session.connectionClosed(code, reason, { now: this._clock() });
    });
    this._notify();
    this._emit('disconnect', { code, reason });
    if (link.failure !== null && !(link.failure instanceof Rejected)) throw link.failure;
    return action;
  }

  // -- credentials --------------------------------------------------------------

  /**
   * Get a new credential from the `refresh` callback and sign with it.
   *
   * @private
   * @param {boolean} force
   */
  async _refreshCredential(force) {
    const refresh = /** @type {() => Promise<ClientCredential>} */ (this._refresh);
    const before = this._session.credential;
    await this._refreshLock.run(async () => {
      if (this._session.credential !== before && !force) return;
      const credential = await refresh();
      try {
        // In the session's order: the next frame signed carries it.
        await this._drive(() => this._session.refresh(credential, { now: this._clock() }));
      } catch (error) {
        if (!(error instanceof UsageError)) throw error;
        this._end(error);
        return;
      }
      this._emit('refresh', { credential });
    });
  }

  /**
   * Refresh the credential when the session says (`refreshDue`), without
   * reconnecting (SPEC.md §4.5).
   *
   * @private
   */
  async _refreshLoop() {
    while (!this._done) {
      const due = this._session.refreshDue();
      if (due === null) return;
      const delay = due - this._clock();
      if (delay > 0) {
        // Timers overflow past 2^31 - 1 ms (24.8 days): sleep in steps.
        await this._sleep(Math.min(delay, MAX_SLEEP));
        continue;
      }
      try {
        await this._refreshCredential(false);
      } catch {
        this._session.refreshFailed({ now: this._clock() });
      }
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
    while (this._session.pending >= this._maxPending) {
      this._raiseIfDone();
      await this._changed.promise;
    }
    await this._drive(() => {
      this._raiseIfDone();
      return this._session.sendMessage(payload, { now: this._clock() });
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
    while (this._session.pending) {
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
