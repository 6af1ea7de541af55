// The client session (src/client.js), pure: the package's own server core on
// the other side, one fake clock, no socket, no timer, no sleep. Each test
// drives the session as the pump does: an input, then dataToSend(),
// eventsReceived(), nextDeadline().
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import {
  AckTimedOut,
  Acknowledged,
  Action,
  Backoff,
  ClientSession,
  Code,
  ConnectionLost,
  HMACKey,
  InvalidState,
  Issuer,
  Keyring,
  MACCredential,
  Outbox,
  PayloadReceived,
  Refused,
  Rejected,
  RepeatedFailure,
  ServerRejected,
  ServerSession,
  UsageError,
  Verifier,
  unverifiedClientFrame,
} from '../src/index.js';
import { handle, serverFrame } from './support/session.js';
import { ACK_TIMEOUT_CLOSE, STABLE_SECONDS } from '../src/client.js';

const NOW = 1_700_000_000;
const AUDIENCE = 'chat.example';
const LIFETIME = 900;

/** A keyring, an issuer and a verifier: one server, one principal. */
async function world({ maxFrameSize } = {}) {
  const secret = await HMACKey.fromBytes(new Uint8Array(32).fill(7), { derivable: true });
  const keyring = new Keyring();
  await keyring.addHMACKey('login', 'k1', secret);
  const issuer = await Issuer.create('login', 'k1', secret);
  const mint = async (now = NOW, lifetime = LIFETIME, audiences = []) => {
    const { token, frameKey } = await issuer.issueToken({ subject: 'alice', now, lifetime, audiences });
    return MACCredential.fromBytes(token, frameKey);
  };
  const verifier = await Verifier.create(keyring, {
    audience: AUDIENCE,
    fleetKey: await HMACKey.fromBytes(new Uint8Array(32).fill(9), { derivable: true }),
    ...(maxFrameSize === undefined ? {} : { maxFrameSize }),
  });
  /** A new server connection. */
  const newServer = (now = NOW) => ServerSession.create(verifier, { now });
  return { mint, verifier, newServer };
}

/** A session and a server connection on which its hello was received. */
async function opened(options = {}, { now = NOW, maxFrameSize } = {}) {
  const w = await world({ maxFrameSize });
  const client = new ClientSession(await w.mint(), { audience: AUDIENCE, random: () => 0, ...options });
  const server = await w.newServer(now);
  await client.receiveHello(server.hello, { now });
  return { ...w, client, server };
}

/** Verify every frame the session wants written, on `server`; their messages. */
async function deliver(client, server, now = NOW) {
  const messages = [];
  for (const frame of client.dataToSend()) messages.push(await handle(server, frame, { now }));
  return messages;
}

const decoded = (frames) => frames.map((f) => unverifiedClientFrame(f)).map((f) => [f.counter, f.seq, f.payload]);

describe('ClientSession: a connection', () => {
  test('a hello with nothing pending binds the connection with one control frame', async () => {
    const { client, server } = await opened();
    assert.equal(client.connected, true);
    assert.equal(client.connections, 1);
    const [control] = await deliver(client, server);
    assert.deepEqual([control.counter, control.seq, control.payload], [1, 0, null]);
    assert.deepEqual(client.eventsReceived(), []);
    assert.equal(client.nextDeadline(), NOW + 60); // the keepalive
  });

  test('messages sent before the hello go out on it, in seq order', async () => {
    const w = await world();
    const client = new ClientSession(await w.mint(), { audience: AUDIENCE });
    await client.sendMessage('a', { now: NOW });
    await client.sendMessage(new Uint8Array([1, 2]), { now: NOW });
    assert.deepEqual(client.dataToSend(), []);
    assert.equal(client.connected, false);
    assert.equal(client.nextDeadline(), null);
    const server = await w.newServer();
    await client.receiveHello(server.hello, { now: NOW });
    const messages = await deliver(client, server);
    assert.deepEqual(
      messages.map((m) => [m.counter, m.seq, m.payload]),
      [
        [1, 1, 'a'],
        [2, 2, new Uint8Array([1, 2])],
      ],
    );
  });

  test('frames leave in counter order however the inputs overlap', async () => {
    const { client, server } = await opened();
    await deliver(client, server);
    await Promise.all(Array.from({ length: 40 }, (_, i) => client.sendMessage(`m${i}`, { now: NOW })));
    const messages = await deliver(client, server);
    assert.deepEqual(
      messages.map((m) => [m.counter, m.seq, m.payload]),
      Array.from({ length: 40 }, (_, i) => [i + 2, i + 1, `m${i}`]),
    );
  });

  test('an acknowledgement drops what it covers, and says how many are left', async () => {
    const { client, server } = await opened();
    await deliver(client, server);
    for (const p of ['a', 'b', 'c']) await client.sendMessage(p, { now: NOW });
    const frames = client.dataToSend();
    for (const frame of frames.slice(0, 2)) await handle(server, frame, { now: NOW });
    await client.receiveMessage(await serverFrame(server, 'hello', { now: NOW + 1 }), { now: NOW + 1 });
    assert.deepEqual(client.eventsReceived(), [new Acknowledged(1), new PayloadReceived('hello')]);
    assert.equal(client.pending, 1);
    assert.deepEqual(client.unacknowledged, ['c']);
  });

  test('after a reconnect the unacknowledged messages are signed again with their seq', async () => {
    const { client, server, ...w } = await opened();
    await deliver(client, server);
    for (const p of ['a', 'b']) await client.sendMessage(p, { now: NOW });
    await deliver(client, server); // delivered, but the acknowledgement is lost
    assert.equal(client.connectionClosed(1006, '', { now: NOW + 1 }), Action.RECONNECT);
    assert.equal(client.connected, false);
    const second = await w.newServer(NOW + 2);
    await client.receiveHello(second.hello, { now: NOW + 2 });
    const frames = client.dataToSend();
    assert.deepEqual(decoded(frames), [
      [1, 1, 'a'],
      [2, 2, 'b'],
    ]);
    await client.sendMessage('c', { now: NOW + 2 });
    assert.deepEqual(decoded(client.dataToSend()), [[3, 3, 'c']]);
    assert.equal(client.connections, 2);
  });

  test('frames signed for a connection that ended are never written on the next', async () => {
    const { client, server, ...w } = await opened();
    await deliver(client, server);
    const sending = client.sendMessage('late', { now: NOW });
    client.connectionClosed(1001, 'going away', { now: NOW }); // while the MAC is computed
    await sending;
    assert.deepEqual(client.dataToSend(), []);
    const second = await w.newServer(NOW + 1);
    await client.receiveHello(second.hello, { now: NOW + 1 });
    const [message] = await deliver(client, second, NOW + 1);
    assert.deepEqual([message.counter, message.seq, message.payload], [1, 1, 'late']);
  });

  test('a second hello on an open connection is misuse', async () => {
    const { client, server } = await opened();
    assert.throws(() => client.receiveHello(server.hello, { now: NOW }), InvalidState);
    assert.ok(new InvalidState('x') instanceof UsageError);
  });

  test('a payload that is not a string or bytes, or too large, is refused and not kept', async () => {
    const { client, server } = await opened({}, { maxFrameSize: 512 });
    await deliver(client, server);
    assert.throws(() => client.sendMessage(42, { now: NOW }), UsageError);
    await assert.rejects(client.sendMessage('x'.repeat(1000), { now: NOW }), UsageError);
    assert.equal(client.pending, 0);
    await client.sendMessage('fits', { now: NOW });
    const [message] = await deliver(client, server);
    assert.equal(message.seq, 1); // the refused one gave its seq back
  });
});

describe('ClientSession: acknowledgements (SPEC.md §7.3)', () => {
  test('an ack of the control frame alone acknowledges no message, but restarts the wait', async () => {
    const { client, server } = await opened({ ackTimeout: 10, keepalive: null });
    const [control] = client.dataToSend();
    await handle(server, control, { now: NOW });
    await client.sendMessage('a', { now: NOW + 1 }); // counter 2, not received yet
    client.dataToSend();
    assert.equal(client.nextDeadline(), NOW + 11);
    await client.receiveMessage(await serverFrame(server, null, { now: NOW + 5 }), { now: NOW + 5 });
    assert.deepEqual(client.eventsReceived(), []); // ack 1 covers the control frame only
    assert.equal(client.pending, 1);
    assert.equal(client.nextDeadline(), NOW + 15);
  });

  test('a hello that resends starts the acknowledgement wait', async () => {
    const w = await world();
    const client = new ClientSession(await w.mint(), { audience: AUDIENCE, ackTimeout: 10, keepalive: null });
    await client.sendMessage('queued', { now: NOW });
    assert.equal(client.nextDeadline(), null);
    await client.receiveHello((await w.newServer(NOW + 3)).hello, { now: NOW + 3 });
    assert.equal(client.nextDeadline(), NOW + 13);
  });

  test("the outbox: an earlier connection's counters are forgotten on a new one", () => {
    const outbox = new Outbox();
    const [a, b] = ['a', 'b'].map((p) => outbox.add(p));
    [a.counter, b.counter] = [4, 5];
    assert.equal(outbox.waiting, true);
    assert.deepEqual(outbox.restart(), [a, b]);
    assert.equal(outbox.acknowledge(5), 0); // nothing sent on this connection yet
    assert.equal(outbox.waiting, false);
    a.counter = 1;
    assert.equal(outbox.acknowledge(5), 1);
    assert.deepEqual(outbox.payloads(), ['b']);
  });
});

describe('ClientSession: the server breaks the protocol', () => {
  test('a server frame that fails verification: one ServerRejected, then nothing', async () => {
    const { client, server } = await opened();
    await deliver(client, server);
    const frame = await serverFrame(server, 'x', { now: NOW });
    const forged = frame.slice();
    forged[forged.length - 1] ^= 1;
    await client.receiveMessage(forged, { now: NOW });
    const [event] = client.eventsReceived();
    assert.ok(event instanceof ServerRejected);
    assert.equal(event.code, Code.bad_tag);
    assert.equal(event.error().code, Code.bad_tag);
    assert.equal(client.connected, false);
    await client.receiveMessage(frame, { now: NOW }); // the genuine one: dropped unread
    assert.deepEqual(client.eventsReceived(), []);
    assert.equal(client.connectionClosed(4401, 'unauthorized'), Action.FAIL);
    assert.ok(client.failure instanceof Rejected);
    assert.equal(/** @type {Rejected} */ (client.failure).code, Code.bad_tag);
  });

  test('a text message is malformed', async () => {
    const { client } = await opened();
    await client.receiveMessage('hi', { now: NOW });
    assert.deepEqual(client.eventsReceived(), [new ServerRejected(Code.malformed, 'text message from the server')]);
  });

  test('a hello for another audience, or as text: ServerRejected, nothing sent', async () => {
    const w = await world();
    const client = new ClientSession(await w.mint(), { audience: 'other.example' });
    await client.receiveHello((await w.newServer()).hello, { now: NOW });
    assert.equal(client.eventsReceived()[0].code, Code.audience_mismatch);
    assert.deepEqual(client.dataToSend(), []);
    assert.equal(client.connected, false);
    assert.equal(client.connectionClosed(null), Action.FAIL);
    await client.receiveHello('hello', { now: NOW });
    assert.equal(client.eventsReceived()[0].code, Code.malformed);
  });

  test('an oversized hello is refused before decoding; the session shows no secret', async () => {
    const w = await world();
    const credential = await w.mint();
    const client = new ClientSession(credential, { audience: AUDIENCE });
    await client.receiveHello(new Uint8Array((1 << 20) + 1), { now: NOW });
    assert.equal(client.eventsReceived()[0].code, Code.frame_too_large);
    assert.equal(String(client), 'ClientSession(disconnected, pending=0, seq=0)');
  });

  test('a pending message too large for a new hello is kept, never dropped (§11.6)', async () => {
    const big = await world();
    const client = new ClientSession(await big.mint(), { audience: AUDIENCE });
    await client.sendMessage('x'.repeat(1000), { now: NOW });
    const small = await world({ maxFrameSize: 512 });
    await client.receiveHello((await small.newServer()).hello, { now: NOW });
    const [event] = client.eventsReceived();
    assert.equal(event.code, Code.frame_too_large);
    assert.match(event.detail, /seq=1 .*kept unacknowledged/);
    assert.deepEqual(client.dataToSend(), []);
    assert.equal(client.pending, 1);
  });
});

describe('ClientSession: time', () => {
  test('a keepalive control frame after keepalive seconds without sending', async () => {
    const { client, server } = await opened({ keepalive: 10 });
    await deliver(client, server);
    await client.advanceTime(NOW + 9.9);
    assert.deepEqual(client.dataToSend(), []);
    await client.sendMessage('a', { now: NOW + 5 });
    await deliver(client, server);
    assert.equal(client.nextDeadline(), NOW + 15);
    await client.advanceTime(NOW + 15);
    const [control] = await deliver(client, server, NOW + 15);
    assert.deepEqual([control.payload, control.seq], [null, 0]);
    assert.equal(client.nextDeadline(), NOW + 25);
  });

  test('no acknowledgement for ackTimeout seconds: AckTimedOut, a 4408 ending counted as a repeat', async () => {
    const { client, server, ...w } = await opened({ ackTimeout: 10, keepalive: null, maxRepeats: 2 });
    await deliver(client, server);
    await client.sendMessage('a', { now: NOW + 1 });
    await deliver(client, server);
    assert.equal(client.nextDeadline(), NOW + 1 + 10);
    await client.advanceTime(NOW + 10);
    assert.deepEqual(client.eventsReceived(), []);
    await client.advanceTime(NOW + 11);
    const [event] = client.eventsReceived();
    assert.ok(event instanceof AckTimedOut);
    assert.deepEqual([event.closeCode, event.reason, event.waited], [4408, 'no acknowledgement', 10]);
    assert.equal(client.connected, false);
    assert.equal(client.nextDeadline(), null);
    // Whatever the server answers, the ending is the client's own.
    assert.equal(client.connectionClosed(1000, '', { now: NOW + 11 }), Action.RECONNECT);
    assert.equal(client.repeats, 1);
    assert.ok(client.failure instanceof ConnectionLost);
    const second = await w.newServer(NOW + 12);
    await client.receiveHello(second.hello, { now: NOW + 12 });
    await deliver(client, second, NOW + 12);
    await client.advanceTime(NOW + 22);
    assert.ok(client.eventsReceived()[0] instanceof AckTimedOut);
    const { code, reason } = ACK_TIMEOUT_CLOSE;
    assert.equal(client.connectionClosed(code, reason, { now: NOW + 22 }), Action.FAIL);
    assert.ok(client.failure instanceof RepeatedFailure);
    assert.equal(client.failure.closeCode, 4408);
  });

  test('any acknowledgement progress restarts the wait', async () => {
    const { client, server } = await opened({ ackTimeout: 30, keepalive: null });
    await deliver(client, server);
    await client.sendMessage('a', { now: NOW });
    await client.sendMessage('b', { now: NOW });
    const [a] = client.dataToSend();
    await handle(server, a, { now: NOW });
    await client.receiveMessage(await serverFrame(server, null, { now: NOW + 20 }), { now: NOW + 20 });
    assert.deepEqual(client.eventsReceived(), [new Acknowledged(1)]);
    assert.equal(client.nextDeadline(), NOW + 50);
    await client.advanceTime(NOW + 49);
    assert.deepEqual(client.eventsReceived(), []);
  });

  test('refreshDue: refreshMargin before expiry; backs off after failures', async () => {
    const { client, mint } = await opened({ refreshMargin: 60, backoff: new Backoff({ initial: 1, jitter: 0 }) });
    assert.equal(client.refreshDue(), NOW + LIFETIME - 60);
    client.refreshFailed({ now: NOW + LIFETIME - 60 });
    assert.equal(client.refreshDue(), NOW + LIFETIME - 59);
    client.refreshFailed({ now: NOW + LIFETIME - 59 });
    assert.equal(client.refreshDue(), NOW + LIFETIME - 57);
    const fresh = await mint(NOW + 800);
    client.refresh(fresh, { now: NOW + 800 });
    assert.equal(client.credential, fresh);
    assert.equal(client.refreshDue(), NOW + 800 + LIFETIME - 60);
    // One that expires within the margin already: taken, but the next try waits.
    client.refresh(await mint(NOW + 2000, 30), { now: NOW + 2000 });
    assert.equal(client.refreshDue(), NOW + 2001);
  });

  test('a refreshed credential signs the next frames on the same connection', async () => {
    const { client, server, mint } = await opened();
    await deliver(client, server);
    const fresh = await mint(NOW + 10);
    client.refresh(fresh, { now: NOW + 10 });
    await client.sendMessage('after', { now: NOW + 10 });
    const [message] = await deliver(client, server, NOW + 10);
    assert.equal(message.payload, 'after');
    assert.equal(server.verifierState.credential.cid, fresh.cid);
    assert.throws(() => client.refresh(/** @type {any} */ ({}), { now: NOW }), UsageError);
  });
});

describe('ClientSession: when a connection ends', () => {
  test('close codes: reconnect, refresh, finish, fail, each with the error to end with', async () => {
    const { client } = await opened();
    assert.equal(client.connectionClosed(1012, 'restart'), Action.RECONNECT);
    assert.ok(client.failure instanceof ConnectionLost);
    assert.equal(client.connectionClosed(4419, 'credential not valid now'), Action.REFRESH);
    assert.ok(client.failure instanceof Refused);
    assert.equal(client.connectionClosed(1000), Action.FINISH);
    assert.equal(client.failure, null);
    assert.equal(client.connectionClosed(4403, 'forbidden'), Action.FAIL);
    assert.ok(client.failure instanceof Refused);
    assert.equal(client.failure.code, Code.credential_revoked);
  });

  test('the same ending without progress counts; 1006 neither counts nor forgives; progress forgives', async () => {
    const { client, server, ...w } = await opened({ maxRepeats: 3 });
    const cycle = async (now) => {
      const s = await w.newServer(now);
      await client.receiveHello(s.hello, { now });
      return s;
    };
    assert.equal(client.connectionClosed(1013, 'try again later', { now: NOW + 1 }), Action.RECONNECT);
    assert.equal(client.repeats, 1);
    await cycle(NOW + 2);
    assert.equal(client.connectionClosed(1006, '', { now: NOW + 3 }), Action.RECONNECT);
    assert.equal(client.repeats, 1);
    await cycle(NOW + 4);
    assert.equal(client.connectionClosed(1013, 'try again later', { now: NOW + 5 }), Action.RECONNECT);
    assert.equal(client.repeats, 2);
    // Progress: a payload from the server.
    const s = await cycle(NOW + 6);
    await deliver(client, s, NOW + 6);
    await client.receiveMessage(await serverFrame(s, 'hi', { now: NOW + 6 }), { now: NOW + 6 });
    client.connectionClosed(1013, 'try again later', { now: NOW + 7 });
    assert.equal(client.repeats, 0);
    // A connection open STABLE_SECONDS made progress too.
    await cycle(NOW + 8);
    client.connectionClosed(1013, 'try again later', { now: NOW + 8 + STABLE_SECONDS });
    assert.equal(client.repeats, 0);
    for (let i = 1; i <= 3; i++) {
      await cycle(NOW + 100 + i);
      const action = client.connectionClosed(1013, 'try again later', { now: NOW + 100 + i });
      assert.equal(action, i < 3 ? Action.RECONNECT : Action.FAIL);
    }
    assert.ok(client.failure instanceof RepeatedFailure);
    assert.equal(client.outcomes.length, 4); // the forgiven connection's own ending, then the three
    assert.match(client.failure.message, /3 connections in a row/);
  });

  test('a 4401 for a credential of another audience says so; 4419 names the expiry', async () => {
    const w = await world();
    const client = new ClientSession(await w.mint(NOW, 60, ['other.example']), { audience: AUDIENCE });
    assert.equal(client.connectionClosed(4401, 'unauthorized', { now: NOW }), Action.FAIL);
    assert.match(client.failure.message, /credential is for \["other.example"\], not for the server's audience "chat.example"/);
    assert.equal(client.connectionClosed(4419, 'credential not valid now', { now: NOW + 61 }), Action.REFRESH);
    assert.match(client.failure.message, /expired at 2023-11-14T22:14:20.000Z/);
  });

  test('reconnectDelay: full jitter, longer after repeats, null after maxAttempts', async () => {
    let draw = 0.5;
    const w = await world();
    const client = new ClientSession(await w.mint(), {
      audience: AUDIENCE,
      backoff: new Backoff({ initial: 1, maximum: 100 }),
      maxAttempts: 2,
      random: () => draw,
    });
    client.connectionClosed(1013, 'try again later');
    client.connectionClosed(1013, 'try again later');
    assert.equal(client.repeats, 2);
    assert.equal(client.reconnectDelay(), 2 * 0.5); // attempt 0 + (repeats - 1)
    client.connectFailed('handshake failed (close code 1006)');
    draw = 0;
    assert.equal(client.reconnectDelay(), 4);
    assert.equal(client.reconnectDelay(), null);
    assert.ok(client.failure instanceof ConnectionLost);
    assert.equal(client.failure.attempts, 2);
    assert.match(client.failure.message, /attempt 1: handshake failed/);
  });

  test('a refused handshake: 5xx and 429 retry, anything else fails with the status', async () => {
    const { client } = await opened();
    assert.equal(client.handshakeRefused(503, 'Service Unavailable'), Action.RECONNECT);
    assert.equal(client.handshakeRefused(429), Action.RECONNECT);
    assert.equal(client.handshakeRefused(403, 'Forbidden'), Action.FAIL);
    assert.ok(client.failure instanceof Refused);
    assert.equal(client.failure.status, 403);
    assert.match(client.failure.message, /HTTP 403/);
  });

  test('invalid options are refused', async () => {
    const w = await world();
    const credential = await w.mint();
    for (const options of [
      { audience: AUDIENCE, keepalive: 0 },
      { audience: AUDIENCE, ackTimeout: -1 },
      { audience: AUDIENCE, maxRepeats: 0 },
      { audience: AUDIENCE, maxAttempts: -1 },
      { audience: AUDIENCE, refreshMargin: -1 },
      { audience: AUDIENCE, stream: new Uint8Array(3) },
      { audience: AUDIENCE, backoff: {} },
      {},
    ]) {
      assert.throws(() => new ClientSession(credential, /** @type {any} */ (options)), UsageError);
    }
    assert.throws(() => new ClientSession(/** @type {any} */ ('token'), { audience: AUDIENCE }), UsageError);
  });
});
