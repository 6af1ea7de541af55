// The pump (src/websocket.js) over an in-process loopback: a WHATWG-shaped
// WebSocket class whose far end is the package's real ServerSession, so the
// pump's own work (the one timer armed from nextDeadline, closing on the
// session's events, reconnecting, resending) runs without a network. The
// Node <-> Python suite (python.test.js) runs the same pump against the real
// Python server over loopback TCP. Timers here are real but short; the
// assertions are about what happened, never how long it took.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import {
  Backoff,
  HMACKey,
  Issuer,
  Keyring,
  MACCredential,
  MessageReceived,
  RepeatedFailure,
  ServerSession,
  StreamMarks,
  Verifier,
  connect,
} from '../src/index.js';

const AUDIENCE = 'chat.example';
const now = () => Date.now() / 1000;

/**
 * A WebSocket class whose server is a ServerSession. `handle(message, session)`
 * is the application: return a payload to echo, or undefined to hold the
 * message forever (never done: never acknowledged, SPEC.md §7.3).
 */
async function loopback(handle) {
  const secret = await HMACKey.fromBytes(new Uint8Array(32).fill(7), { derivable: true });
  const keyring = new Keyring();
  await keyring.addHMACKey('login', 'k1', secret);
  const issuer = await Issuer.create('login', 'k1', secret);
  const verifier = await Verifier.create(keyring, {
    audience: AUDIENCE,
    fleetKey: await HMACKey.fromBytes(new Uint8Array(32).fill(9), { derivable: true }),
  });
  const marks = new StreamMarks();
  /** @type {Array<{session: ServerSession, closed: {code: number, reason: string} | null}>} */
  const connections = [];
  /** @type {Array<string | Uint8Array>} */
  const delivered = [];

  class LoopbackWebSocket {
    /** @param {string} url @param {string[]} protocols */
    constructor(url, protocols) {
      void url;
      this.protocol = '';
      this.readyState = 0;
      this.binaryType = 'blob';
      /** @type {any} */ this.onopen = null;
      /** @type {any} */ this.onmessage = null;
      /** @type {any} */ this.onclose = null;
      /** @type {any} */ this.onerror = null;
      this._chain = ServerSession.create(verifier, { now: now(), marks }).then((session) => {
        this.conn = { session, closed: null };
        connections.push(this.conn);
        this.protocol = protocols.includes('signedws.v1') ? 'signedws.v1' : '';
        this.readyState = 1;
        this.onopen?.({});
        this._flush();
      });
    }

    _flush() {
      for (const frame of this.conn.session.dataToSend()) {
        const data = frame.slice().buffer;
        setTimeout(() => this.readyState === 1 && this.onmessage?.({ data }), 0);
      }
    }

    /** The client writes a frame: the server reads it. @param {Uint8Array} frame */
    send(frame) {
      if (this.readyState !== 1) throw new Error('not open');
      const copy = frame.slice();
      this._chain = this._chain.then(async () => {
        const { session } = this.conn;
        await session.receiveMessage(copy, { now: now() });
        for (const event of session.eventsReceived()) {
          if (!(event instanceof MessageReceived)) {
            this._close(event.code.closeCode, event.code.peerReason);
            return;
          }
          const reply = handle(event.message.payload);
          if (reply === undefined) continue; // held
          if (!session.takeMessage(event.message, { now: now() })) continue;
          delivered.push(event.message.payload);
          session.messageDone(event.message, { now: now() });
          await session.sendMessage(reply, { now: now() });
        }
        this._flush();
      });
    }

    /** @param {number} [code] @param {string} [reason] */
    close(code = 1005, reason = '') {
      this._close(code, reason);
    }

    /** @param {number} code @param {string} reason */
    _close(code, reason) {
      if (this.readyState === 3) return;
      this.readyState = 3;
      if (this.conn) {
        this.conn.closed = { code, reason };
        this.conn.session.connectionClosed();
      }
      setTimeout(() => this.onclose?.({ code, reason }), 0);
    }
  }

  const credential = async () => {
    const { token, frameKey } = await issuer.issueToken({ subject: 'alice', now: now(), lifetime: 900 });
    return MACCredential.fromBytes(token, frameKey);
  };
  return { WebSocket: /** @type {any} */ (LoopbackWebSocket), connections, delivered, credential };
}

/** Wait (bounded) until `condition()` holds. */
async function until(condition, what) {
  for (let i = 0; i < 500 && !condition(); i++) await new Promise((r) => setTimeout(r, 10));
  assert.ok(condition(), `never happened: ${what}`);
}

describe('websocket.js: the pump', () => {
  test('concurrent sends reach the server in counter order; drain waits for the acks', async () => {
    const world = await loopback((payload) => `echo ${payload}`);
    const client = await connect('ws://loopback', await world.credential(), { audience: AUDIENCE, WebSocket: world.WebSocket });
    try {
      await Promise.all(Array.from({ length: 30 }, (_, i) => client.send(`m${i}`)));
      await client.drain();
      assert.deepEqual(world.delivered, Array.from({ length: 30 }, (_, i) => `m${i}`));
      assert.equal(await client.recv(), 'echo m0');
      assert.equal(world.connections.length, 1);
      assert.equal(world.connections[0].closed, null); // no replay, no refusal
    } finally {
      await client.close();
    }
    assert.deepEqual(world.connections[0].closed, { code: 1000, reason: '' });
  });

  test('the timer sends keepalive control frames while the application is quiet', async () => {
    const world = await loopback((payload) => payload);
    const client = await connect('ws://loopback', await world.credential(), {
      audience: AUDIENCE,
      WebSocket: world.WebSocket,
      keepalive: 0.02,
    });
    try {
      const state = () => world.connections[0].session.verifierState;
      await until(() => state().highest >= 4, 'three keepalives after the binding control frame');
      assert.equal(world.delivered.length, 0); // control frames carry nothing to deliver
    } finally {
      await client.close();
    }
  });

  test('no acknowledgement: closed with 4408, resent on a new connection, then RepeatedFailure', async () => {
    const world = await loopback(() => undefined); // holds every message: never done, never acknowledged
    const client = await connect('ws://loopback', await world.credential(), {
      audience: AUDIENCE,
      WebSocket: world.WebSocket,
      ackTimeout: 0.05,
      keepalive: null,
      maxRepeats: 2,
      backoff: new Backoff({ initial: 0.001, maximum: 0.002 }),
    });
    await client.send('held');
    await assert.rejects(client.drain(), (error) => {
      assert.ok(error instanceof RepeatedFailure, String(error));
      assert.equal(error.closeCode, 4408);
      return true;
    });
    assert.deepEqual(client.unacknowledged, ['held']);
    assert.equal(client.connections, 2);
    assert.deepEqual(
      world.connections.map((c) => c.closed),
      [
        { code: 4408, reason: 'no acknowledgement' },
        { code: 4408, reason: 'no acknowledgement' },
      ],
    );
    // The message went out again on the second connection, under its own counters.
    assert.equal(world.connections[1].session.verifierState.highest, 1);
    await client.close();
  });
});
