// The server session (src/server.js) and the stream marks (src/stream.js),
// pure: client frames from the package's own Signer, one fake clock, no
// socket, no timer. Each test drives the session as a pump does: an input,
// then eventsReceived(), dataToSend(), nextDeadline().
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import {
  Code,
  ConnectionRejected,
  Ed25519Credential,
  Ed25519PrivateKey,
  HMACKey,
  InvalidState,
  Issuer,
  Keyring,
  MACCredential,
  MessageReceived,
  PrincipalLimit,
  ServerSession,
  Signer,
  State,
  StreamMarks,
  UsageError,
  Verifier,
  streamKey,
  unverifiedServerFrame,
} from '../src/index.js';

const NOW = 1_700_000_000;
const AUDIENCE = 'chat.example';
const STREAM = new Uint8Array(16).fill(5);

/** A server (keyring, verifier) and credentials for its principals. */
async function world({ window = 0 } = {}) {
  const secret = await HMACKey.fromBytes(new Uint8Array(32).fill(7), { derivable: true });
  const issuerKey = await Ed25519PrivateKey.fromSeed(new Uint8Array(32).fill(3));
  const keyring = new Keyring();
  await keyring.addHMACKey('login', 'k1', secret);
  keyring.addEd25519Key('login', 'e1', issuerKey.publicKey());
  const macIssuer = await Issuer.create('login', 'k1', secret);
  const edIssuer = await Issuer.create('login', 'e1', issuerKey);
  const verifier = await Verifier.create(keyring, {
    audience: AUDIENCE,
    fleetKey: await HMACKey.fromBytes(new Uint8Array(32).fill(9), { derivable: true }),
    window,
  });
  const mac = async (subject = 'alice') => {
    const { token, frameKey } = await macIssuer.issueToken({ subject, now: NOW, lifetime: 900 });
    return MACCredential.fromBytes(token, frameKey);
  };
  const ed25519 = async (subject = 'bob') => {
    const key = await Ed25519PrivateKey.fromSeed(new Uint8Array(32).fill(4));
    return new Ed25519Credential(await edIssuer.issueCertificate(key.publicKey(), { subject, now: NOW }), key);
  };
  /** A session and a signer for `credential` on it (the hello drained). */
  const connect = async (credential, options = {}, now = NOW) => {
    const session = await ServerSession.create(verifier, { now, ...options });
    assert.deepEqual(session.dataToSend(), [session.hello]); // the hello goes first
    const signer = Signer.fromHello(session.hello, credential, { audience: AUDIENCE, now, stream: STREAM });
    return { session, signer };
  };
  return { verifier, mac, ed25519, connect, serverKey: { kid: 'srv', privateKey: issuerKey } };
}

/** Feed one signed frame; the events it gave. */
async function feed(session, frame, now) {
  await session.receiveMessage(frame, { now });
  return session.eventsReceived();
}

const messagesOf = (events) => events.map((e) => /** @type {MessageReceived} */ (e).message);

describe('ServerSession: timeouts (SPEC.md §10)', () => {
  test('no frame within firstFrameTimeout: first_frame_timeout, then nothing is taken', async () => {
    const w = await world();
    const { session, signer } = await w.connect(await w.mac(), { firstFrameTimeout: 10, idleTimeout: 60 });
    assert.equal(session.state, State.AWAITING_FIRST_FRAME);
    assert.equal(session.nextDeadline(), NOW + 10);
    await session.advanceTime(NOW + 9.5);
    assert.deepEqual(session.eventsReceived(), []);
    await session.advanceTime(NOW + 10);
    assert.deepEqual(session.eventsReceived(), [new ConnectionRejected(Code.first_frame_timeout, 'no valid frame in 10 s')]);
    assert.equal(session.state, State.REJECTED);
    assert.equal(session.nextDeadline(), null);
    assert.deepEqual(await feed(session, await signer.sign('late', { now: NOW + 11 }), NOW + 11), []);
    assert.equal(session.verifierState.highest, 0); // dropped unverified
  });

  test('after the first frame the idle deadline runs from the last frame, only while reading', async () => {
    const w = await world();
    const { session, signer } = await w.connect(await w.mac(), { firstFrameTimeout: 10, idleTimeout: 60 });
    await feed(session, await signer.sign(null, { now: NOW + 1 }), NOW + 1);
    assert.equal(session.state, State.OPEN);
    assert.deepEqual(session.principal, ['login', 'alice']);
    assert.equal(session.nextDeadline(), NOW + 61);
    await feed(session, await signer.sign(null, { now: NOW + 30 }), NOW + 30);
    assert.equal(session.nextDeadline(), NOW + 90);
    session.paused(); // backpressure: no frame can arrive
    assert.equal(session.nextDeadline(), null);
    await session.advanceTime(NOW + 500);
    assert.deepEqual(session.eventsReceived(), []);
    session.reading(NOW + 500);
    assert.equal(session.nextDeadline(), NOW + 560);
    await session.advanceTime(NOW + 560);
    assert.equal(/** @type {ConnectionRejected} */ (session.eventsReceived()[0]).code, Code.idle_timeout);
  });
});

describe('ServerSession: refusals, one event each', () => {
  test('a text message is malformed; the library\'s oversize is frame_too_large, once', async () => {
    const w = await world();
    const { session } = await w.connect(await w.mac());
    assert.deepEqual(await feed(session, 'hello', NOW), [
      new ConnectionRejected(Code.malformed, 'text message; frames are binary'),
    ]);
    session.receiveOversize();
    assert.deepEqual(session.eventsReceived(), []); // rejected already
    const other = (await w.connect(await w.mac())).session;
    other.receiveOversize();
    const [event] = other.eventsReceived();
    assert.equal(event.code, Code.frame_too_large);
    assert.match(event.detail, /close 1009/);
  });

  test('a forged frame is refused with its code and changes nothing', async () => {
    const w = await world();
    const { session, signer } = await w.connect(await w.mac());
    const frame = await signer.sign('x', { now: NOW });
    frame[frame.length - 1] ^= 1;
    const [event] = await feed(session, frame, NOW);
    assert.equal(event.code, Code.bad_tag);
    assert.equal(session.principal, null);
    assert.equal(session.canSend, false);
  });

  test('an ed25519 frame on a server without a server key: scheme_mismatch, unverified', async () => {
    const w = await world();
    const credential = await w.ed25519();
    const without = await w.connect(credential);
    const frame = await without.signer.sign('x', { now: NOW });
    assert.equal(without.session.needsPool(frame), false);
    assert.equal((await feed(without.session, frame, NOW))[0].code, Code.scheme_mismatch);
    assert.equal(without.session.verifierState.highest, 0); // refused unverified
    // A pump that verifies it anyway (not routing by needsPool): accept refuses it.
    const other = await w.connect(credential);
    const verified = await other.session.verify(await other.signer.sign('x', { now: NOW }), { now: NOW });
    other.session.accept(verified, { now: NOW });
    assert.equal(other.session.eventsReceived()[0].code, Code.scheme_mismatch);
    assert.equal(other.session.principal, null);
    const withKey = await w.connect(credential, { serverKey: w.serverKey });
    const signed = await withKey.signer.sign('x', { now: NOW });
    assert.equal(withKey.session.needsPool(signed), true);
    const message = await withKey.session.verify(signed, { now: NOW });
    withKey.session.accept(message, { now: NOW });
    assert.deepEqual(messagesOf(withKey.session.eventsReceived()), [message]);
    withKey.session.messageDone(message, { now: NOW });
    await withKey.session.sendMessage('reply', { now: NOW });
    const reply = unverifiedServerFrame(withKey.session.dataToSend()[0]);
    assert.deepEqual([reply.kind, reply.keyId, reply.ack], [5, 'srv', 1]);
  });

  test('the application misusing the session gets InvalidState or UsageError', async () => {
    const w = await world();
    const { session, signer } = await w.connect(await w.mac());
    assert.throws(() => session.claimCounter(), InvalidState);
    await assert.rejects(session.sendMessage('early', { now: NOW }), InvalidState);
    assert.throws(() => session.sendMessage(/** @type {any} */ (5), { now: NOW }), UsageError);
    await assert.rejects(ServerSession.create(w.verifier, { now: NOW, ackDelay: -1 }), UsageError);
    await feed(session, await signer.sign(null, { now: NOW }), NOW);
    assert.equal(session.claimCounter(), 1);
    await session.sendMessage('after', { now: NOW });
    assert.equal(unverifiedServerFrame(session.dataToSend()[0]).counter, 2); // the counter is shared
  });
});

describe('ServerSession: acknowledgements mean delivered (SPEC.md §7.3)', () => {
  test('the ack stops before the first message the application is not done with', async () => {
    const w = await world();
    const { session, signer } = await w.connect(await w.mac());
    const received = [];
    for (const p of ['a', 'b']) received.push(...messagesOf(await feed(session, await signer.sign(p, { now: NOW }), NOW)));
    await feed(session, await signer.sign(null, { now: NOW }), NOW); // a control frame behind them
    assert.equal(session.delivered, 0);
    assert.equal(session.takeMessage(received[0], { now: NOW }), true);
    assert.equal(session.held, received[0]);
    session.messageDone(received[0], { now: NOW });
    assert.equal(session.delivered, 1);
    session.messageDone(received[1], { now: NOW });
    assert.equal(session.delivered, 3); // the control frame counts once nothing is before it
  });

  test('a pure ack is due ackDelay after the mark moves; moves meanwhile coalesce', async () => {
    const w = await world();
    const { session, signer } = await w.connect(await w.mac(), { ackDelay: 0.5, idleTimeout: null });
    const [a] = messagesOf(await feed(session, await signer.sign('a', { now: NOW }), NOW));
    const [b] = messagesOf(await feed(session, await signer.sign('b', { now: NOW }), NOW));
    assert.equal(session.nextDeadline(), null); // nothing done: no ack due
    session.messageDone(a, { now: NOW + 0.125 });
    assert.equal(session.nextDeadline(), NOW + 0.625);
    session.messageDone(b, { now: NOW + 0.25 }); // not pushed back
    assert.equal(session.nextDeadline(), NOW + 0.625);
    await session.advanceTime(NOW + 0.5);
    assert.deepEqual(session.dataToSend(), []);
    await session.advanceTime(NOW + 0.625);
    const frames = session.dataToSend();
    assert.equal(frames.length, 1);
    const ack = unverifiedServerFrame(frames[0]);
    assert.deepEqual([ack.ack, ack.payload], [2, null]);
    assert.equal(session.nextDeadline(), null);
  });

  test('a frame the application sends carries the ack: no pure ack follows', async () => {
    const w = await world();
    const { session, signer } = await w.connect(await w.mac(), { ackDelay: 0.5, idleTimeout: 60 });
    const [a] = messagesOf(await feed(session, await signer.sign('a', { now: NOW }), NOW));
    session.messageDone(a, { now: NOW });
    assert.equal(session.nextDeadline(), NOW + 0.5);
    await session.sendMessage('reply', { now: NOW + 0.25 });
    assert.equal(unverifiedServerFrame(session.dataToSend()[0]).ack, 1);
    assert.equal(session.nextDeadline(), NOW + 60); // only the idle deadline is left
    await session.flushAck(NOW + 1);
    assert.deepEqual(session.dataToSend(), []);
  });

  test('flushAck sends a due ack at once', async () => {
    const w = await world();
    const { session, signer } = await w.connect(await w.mac(), { ackDelay: 5 });
    const [a] = messagesOf(await feed(session, await signer.sign('a', { now: NOW }), NOW));
    session.messageDone(a, { now: NOW });
    await session.flushAck(NOW + 1);
    assert.equal(unverifiedServerFrame(session.dataToSend()[0]).ack, 1);
  });
});

describe('ServerSession: acknowledgements, the edges', () => {
  const acks = (session) => session.dataToSend().map((f) => unverifiedServerFrame(f).ack);

  test('an ack due stays due if a frame covered only part of it', async () => {
    const w = await world();
    const { session, signer } = await w.connect(await w.mac(), { ackDelay: 0.5 });
    const [one] = messagesOf(await feed(session, await signer.sign('one', { now: NOW }), NOW));
    const [two] = messagesOf(await feed(session, await signer.sign('two', { now: NOW }), NOW));
    session.messageDone(one, { now: NOW });
    await session.sendMessage('x', { now: NOW });
    assert.deepEqual(acks(session), [1]);
    session.messageDone(two, { now: NOW });
    assert.equal(session.nextDeadline(), NOW + 0.5);
    await session.advanceTime(NOW + 0.5);
    assert.deepEqual(acks(session), [2]);
  });

  test('with a replay window the ack never goes backwards, and a late frame holds a due ack back', async () => {
    const w = await world({ window: 8 });
    const { session, signer } = await w.connect(await w.mac(), { ackDelay: 0.5 });
    const [one] = messagesOf(await feed(session, await signer.sign('one', { now: NOW }), NOW));
    session.messageDone(one, { now: NOW });
    const late = await signer.sign('two', { now: NOW }); // counter 2, arrives after 3
    await session.sendMessage(null, { now: NOW });
    assert.deepEqual(acks(session), [1]);
    const [three] = messagesOf(await feed(session, await signer.sign('three', { now: NOW }), NOW));
    session.messageDone(three, { now: NOW });
    assert.equal(session.delivered, 3);
    assert.equal(session.nextDeadline(), NOW + 0.5);
    const [two] = messagesOf(await feed(session, late, NOW)); // queued below the mark
    assert.equal(session.delivered, 1);
    await session.advanceTime(NOW + 0.5);
    assert.deepEqual(acks(session), []); // it would not advance: not sent
    await session.sendMessage(null, { now: NOW + 1 });
    assert.deepEqual(acks(session), [1]); // never below what was sent
    session.messageDone(two, { now: NOW + 1 });
    assert.equal(session.delivered, 3);
  });

  test('done out of order and twice is harmless; a closed session takes nothing', async () => {
    const w = await world();
    const { session, signer } = await w.connect(await w.mac(), { ackDelay: 0.5, idleTimeout: 5 });
    const [one] = messagesOf(await feed(session, await signer.sign('one', { now: NOW }), NOW));
    const [two] = messagesOf(await feed(session, await signer.sign('two', { now: NOW }), NOW));
    session.messageDone(two, { now: NOW });
    session.messageDone(two, { now: NOW });
    assert.equal(session.delivered, 0);
    session.messageDone(one, { now: NOW });
    assert.equal(session.delivered, 2);
    session.connectionClosed();
    assert.deepEqual(await feed(session, await signer.sign('after', { now: NOW }), NOW), []);
    session.reading(NOW);
    assert.equal(session.nextDeadline(), null);
  });

  test('without marks a resend is delivered again', async () => {
    const w = await world();
    const credential = await w.mac();
    const one = await w.connect(credential);
    const two = await w.connect(credential);
    for (const c of [one, two]) {
      const [m] = messagesOf(await feed(c.session, await c.signer.sign('dup', { now: NOW, seq: 1 }), NOW));
      assert.equal(c.session.takeMessage(m, { now: NOW }), true);
    }
  });
});

describe('ServerSession: exactly once over resends (SPEC.md §7.3)', () => {
  test('a resend on a new connection is dropped and acknowledged', async () => {
    const w = await world();
    const marks = new StreamMarks();
    const credential = await w.mac();
    const first = await w.connect(credential, { marks });
    const [m] = messagesOf(await feed(first.session, await first.signer.sign('once', { now: NOW }), NOW));
    first.session.messageDone(m, { now: NOW }); // delivered, but the ack never left
    first.session.connectionClosed();
    const second = await w.connect(credential, { marks }, NOW + 1);
    const resent = await second.signer.sign('once', { now: NOW + 1, seq: 1 });
    assert.deepEqual(await feed(second.session, resent, NOW + 1), []);
    assert.equal(second.session.delivered, 1);
    const [next] = messagesOf(await feed(second.session, await second.signer.sign('next', { now: NOW + 1, seq: 2 }), NOW + 1));
    assert.equal(next.seq, 2);
  });

  test('receiveFrame returns a new message instead of an event; the rest are events as before', async () => {
    const w = await world();
    const { session, signer } = await w.connect(await w.mac(), { marks: new StreamMarks() });
    const message = await session.receiveFrame(await signer.sign('new', { now: NOW }), { now: NOW });
    assert.equal(message?.payload, 'new');
    assert.deepEqual(session.eventsReceived(), []);
    assert.equal(session.delivered, 0); // outstanding, as a MessageReceived would be
    assert.equal(await session.receiveFrame(await signer.sign(null, { now: NOW }), { now: NOW }), null);
    assert.equal(await session.receiveFrame('text', { now: NOW }), null);
    assert.equal(/** @type {ConnectionRejected} */ (session.eventsReceived()[0]).code, Code.malformed);
  });

  test('taking the next message finishes the one held', async () => {
    const w = await world();
    const { session, signer } = await w.connect(await w.mac(), { marks: new StreamMarks() });
    const [a] = messagesOf(await feed(session, await signer.sign('a', { now: NOW }), NOW));
    const [b] = messagesOf(await feed(session, await signer.sign('b', { now: NOW }), NOW));
    assert.equal(session.takeMessage(a, { now: NOW }), true);
    assert.equal(session.delivered, 0);
    assert.equal(session.takeMessage(b, { now: NOW }), true);
    assert.deepEqual([session.held, session.delivered], [b, 1]);
    assert.equal(String(session), 'ServerSession(state=OPEN, accepted=2, sent=0)');
  });

  test('a copy queued on two connections is handed over once: takeMessage says no to the second', async () => {
    const w = await world();
    const marks = new StreamMarks();
    const credential = await w.mac();
    const one = await w.connect(credential, { marks });
    const two = await w.connect(credential, { marks });
    const [a] = messagesOf(await feed(one.session, await one.signer.sign('dup', { now: NOW, seq: 1 }), NOW));
    const [b] = messagesOf(await feed(two.session, await two.signer.sign('dup', { now: NOW, seq: 1 }), NOW));
    assert.equal(one.session.takeMessage(a, { now: NOW }), true);
    assert.equal(two.session.takeMessage(b, { now: NOW }), false);
    assert.equal(two.session.delivered, 1); // counts as done
    assert.equal(marks.mark('login', 'alice', STREAM), 1);
  });
});

describe('ServerSession: one principal cannot take every connection', () => {
  test('past the per-principal limit: server_busy; a closed connection gives its place back', async () => {
    const w = await world();
    const principals = new PrincipalLimit(1);
    const credential = await w.mac();
    const one = await w.connect(credential, { principals });
    await feed(one.session, await one.signer.sign(null, { now: NOW }), NOW);
    assert.equal(principals.held(['login', 'alice']), 1);
    const two = await w.connect(credential, { principals });
    assert.equal((await feed(two.session, await two.signer.sign(null, { now: NOW }), NOW))[0].code, Code.server_busy);
    const other = await w.connect(await w.mac('carol'), { principals });
    assert.equal(other.session.state, State.AWAITING_FIRST_FRAME);
    assert.deepEqual(await feed(other.session, await other.signer.sign(null, { now: NOW }), NOW), []);
    one.session.connectionClosed();
    one.session.connectionClosed(); // idempotent
    assert.equal(one.session.state, State.CLOSED);
    assert.equal(principals.held(['login', 'alice']), 0);
    const three = await w.connect(credential, { principals });
    assert.deepEqual(await feed(three.session, await three.signer.sign(null, { now: NOW }), NOW), []);
    assert.equal(principals.size, 2);
    assert.throws(() => new PrincipalLimit(0), UsageError);
  });
});

describe('StreamMarks', () => {
  const key = (sub, n) => streamKey('login', sub, new Uint8Array(16).fill(n));

  test('a seq at or below the mark is not new; control frames never are', () => {
    const marks = new StreamMarks();
    assert.equal(marks.advance(key('a', 1), 2), true);
    assert.equal(marks.delivered(key('a', 1), 2), true);
    assert.equal(marks.delivered(key('a', 1), 3), false);
    assert.equal(marks.advance(key('a', 1), 1), false);
    assert.equal(marks.isNew({ issuer: 'login', subject: 'a', stream: new Uint8Array(16).fill(1), seq: 0 }), false);
    assert.equal(marks.isNew({ issuer: 'login', subject: 'a', stream: new Uint8Array(16).fill(1), seq: 3 }), true);
    assert.equal(marks.size, 1);
    // No two (iss, sub, stream) share a key, however the text is cut.
    assert.notEqual(streamKey('ab', 'c', STREAM).stream, streamKey('a', 'bc', STREAM).stream);
  });

  test('bounded: a principal forgets its own oldest stream first, then the least active principal', () => {
    const marks = new StreamMarks(4, { perPrincipal: 2 });
    marks.advance(key('a', 1), 1);
    marks.advance(key('a', 2), 1);
    marks.advance(key('a', 3), 1); // a forgets stream 1, nobody else pays
    assert.deepEqual([marks.delivered(key('a', 1), 1), marks.delivered(key('a', 2), 1)], [false, true]);
    marks.advance(key('b', 1), 1);
    marks.advance(key('b', 2), 1);
    assert.equal(marks.size, 4);
    marks.advance(key('c', 1), 1); // over capacity: a (least recently active) loses its oldest
    assert.equal(marks.size, 4);
    assert.equal(marks.delivered(key('a', 2), 1), false);
    assert.equal(marks.delivered(key('a', 3), 1), true);
    assert.throws(() => new StreamMarks(0), UsageError);
  });
});
