// The client core (Signer) against the package's own server core
// (ServerSession) under one fake clock, plus the client session's pieces
// (Outbox, closeAction, Backoff).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import {
  Backoff,
  Ed25519Credential,
  Ed25519PrivateKey,
  HMACKey,
  Issuer,
  Keyring,
  MACCredential,
  MessageReceived,
  Rejected,
  ServerSession,
  Signer,
  UsageError,
  Verifier,
  Outbox,
  closeAction,
} from '../src/index.js';
import { handle, serverFrame } from './support/session.js';

const NOW = 1_700_000_000;
const AUDIENCE = 'chat.example';

/** A server session and a client signer on one connection, as a pair. */
async function pair({ subject = 'alice' } = {}) {
  const secret = await HMACKey.fromBytes(new Uint8Array(32).fill(7), { derivable: true });
  const keyring = new Keyring();
  await keyring.addHMACKey('login', 'k1', secret);
  const issuer = await Issuer.create('login', 'k1', secret);
  const mint = async (sub = subject) => {
    const { token, frameKey } = await issuer.issueToken({ subject: sub, now: NOW, lifetime: 900 });
    return MACCredential.fromBytes(token, frameKey);
  };
  const verifier = await Verifier.create(keyring, {
    audience: AUDIENCE,
    fleetKey: await HMACKey.fromBytes(new Uint8Array(32).fill(9), { derivable: true }),
  });
  const session = await ServerSession.create(verifier, { now: NOW });
  const signer = Signer.fromHello(session.hello, await mint(), { audience: AUDIENCE, now: NOW });
  return { session, signer, mint };
}

describe('Signer', () => {
  test('frames are numbered in call order, even when signed concurrently', async () => {
    const { session, signer } = await pair();
    const frames = await Promise.all(Array.from({ length: 50 }, (_, i) => signer.sign(`m${i}`, { now: NOW })));
    for (const [i, frame] of frames.entries()) {
      const message = await handle(session, frame, { now: NOW });
      assert.deepEqual([message.counter, message.seq, message.payload], [i + 1, i + 1, `m${i}`]);
    }
  });

  test('a server frame that fails verification changes nothing', async () => {
    const { session, signer } = await pair();
    await handle(session, await signer.sign('hi', { now: NOW }), { now: NOW });
    const frame = await serverFrame(session, 'reply', { now: NOW });
    const forged = frame.slice();
    forged[forged.length - 1] ^= 1;
    await assert.rejects(signer.verify(forged), (e) => e instanceof Rejected && e.code.id === 'bad_tag');
    assert.equal(signer.acked, 0);
    const message = await signer.verify(frame);
    assert.deepEqual([message.counter, message.ack, message.payload], [1, 1, 'reply']);
    await assert.rejects(signer.verify(frame), (e) => e instanceof Rejected && e.code.id === 'replay');
  });

  test('the server acknowledges what the application is done with (SPEC.md §7.3)', async () => {
    const { session, signer } = await pair();
    const received = [];
    for (const text of ['a', 'b', 'c']) {
      await session.receiveMessage(await signer.sign(text, { now: NOW }), { now: NOW });
      received.push(...session.eventsReceived().map((e) => /** @type {MessageReceived} */ (e).message));
    }
    assert.deepEqual(received.map((m) => m.payload), ['a', 'b', 'c']);
    assert.equal(session.delivered, 0); // queued, not done
    session.messageDone(received[0], { now: NOW });
    assert.equal((await signer.verify(await serverFrame(session, null, { now: NOW }))).ack, 1);
    session.messageDone(received[2], { now: NOW }); // out of order: b still holds the mark
    assert.equal(session.delivered, 1);
    session.messageDone(received[1], { now: NOW });
    assert.equal(session.delivered, 3);
    assert.equal((await signer.verify(await serverFrame(session, null, { now: NOW }))).ack, 3);
  });

  test('concurrent verifications run one at a time, in order', async () => {
    const { session, signer } = await pair();
    await handle(session, await signer.sign('hi', { now: NOW }), { now: NOW });
    const first = await serverFrame(session, 'one', { now: NOW });
    const second = await serverFrame(session, 'two', { now: NOW });
    const results = await Promise.all([signer.verify(first), signer.verify(second)]);
    assert.deepEqual(results.map((m) => m.payload), ['one', 'two']);
  });

  test('a refreshed credential must name the same subject; frames then carry it', async () => {
    const { session, signer, mint } = await pair();
    assert.throws(() => signer.refresh(/** @type {any} */ ({})), UsageError);
    assert.throws(() => signer.refresh(/** @type {any} */ (null)), UsageError);
    await assert.rejects(async () => signer.refresh(await mint('mallory')), UsageError);
    const fresh = await mint();
    signer.refresh(fresh);
    const message = await handle(session, await signer.sign('after', { now: NOW }), { now: NOW });
    assert.equal(message.credentialId, fresh.cid);
  });

  test('a frame over the server\'s max_frame is refused and uses no counter', async () => {
    const { signer } = await pair();
    await assert.rejects(signer.sign('x'.repeat(70000), { now: NOW }), UsageError);
    assert.equal(signer.counter, 0);
    assert.equal(signer.seq, 0);
  });

  test('a resent message keeps its seq; new ones number after the stream\'s last', async () => {
    const { session, signer } = await pair();
    const resent = await handle(session, await signer.sign('old', { now: NOW, seq: 7 }), { now: NOW });
    const fresh = await handle(session, await signer.sign('new', { now: NOW }), { now: NOW });
    const control = await handle(session, await signer.sign(null, { now: NOW }), { now: NOW });
    assert.deepEqual([resent.seq, fresh.seq, control.seq], [7, 1, 0]);
  });

  test('keys are not readable by script', async () => {
    const { signer } = await pair();
    const credential = /** @type {MACCredential} */ (signer.credential);
    assert.equal(credential.frameKey.cryptoKey.extractable, false);
    await assert.rejects(credential.frameKey.toBytes(), UsageError);
    const key = await Ed25519PrivateKey.generate();
    assert.equal(key.cryptoKey.extractable, false);
    assert.equal(String(key).includes(key.publicKey().toString()), true);
  });

  test('an Ed25519 credential must hold the certified key', async () => {
    const issuerKey = await Ed25519PrivateKey.generate();
    const issuer = await Issuer.create('login', 'e1', issuerKey);
    const mine = await Ed25519PrivateKey.generate();
    const other = await Ed25519PrivateKey.generate();
    const certificate = await issuer.issueCertificate(mine.publicKey(), { subject: 'bob', now: NOW });
    assert.equal(new Ed25519Credential(certificate, mine).cid.length > 0, true);
    assert.throws(() => new Ed25519Credential(certificate, other), UsageError);
  });
});

describe('Outbox', () => {
  test('acknowledgements drop messages sent on this connection only', () => {
    const outbox = new Outbox();
    const [a, b, c] = ['a', 'b', 'c'].map((p) => outbox.add(p));
    assert.deepEqual([a.seq, b.seq, c.seq], [1, 2, 3]);
    a.counter = 2;
    b.counter = 3;
    assert.equal(outbox.acknowledge(2), 1);
    assert.equal(outbox.acknowledge(9), 1); // c was not sent: it stays
    assert.equal(outbox.length, 1);
    assert.deepEqual(outbox.restart().map((e) => [e.seq, e.counter]), [[3, 0]]);
  });

  test('discard gives the newest seq back, and only the newest', () => {
    const outbox = new Outbox(5);
    const a = outbox.add('a');
    const b = outbox.add('b');
    assert.throws(() => outbox.discard(a), UsageError);
    outbox.discard(b);
    assert.equal(outbox.seq, 6);
    assert.equal(outbox.length, 1);
    assert.equal(outbox.waiting, false);
    a.counter = 1;
    assert.equal(outbox.waiting, true);
  });
});

describe('reconnect', () => {
  test('close codes map to actions as in the Python client', () => {
    assert.equal(closeAction(null), 'reconnect');
    for (const code of [1001, 1006, 1011, 1012, 4408, 4410, 4503]) assert.equal(closeAction(code), 'reconnect');
    assert.equal(closeAction(4419), 'refresh');
    for (const code of [1000, 1005]) assert.equal(closeAction(code), 'finish');
    for (const code of [4400, 4401, 4403, 4409, 4413, 4425, 4429, 1009]) assert.equal(closeAction(code), 'fail');
  });

  test('backoff grows, is capped, and jitter only shortens it', () => {
    const backoff = new Backoff({ initial: 0.1, maximum: 1, factor: 2, jitter: 0.5 });
    assert.equal(backoff.delay(0, 0), 0.1);
    assert.equal(backoff.delay(3, 0), 0.8);
    assert.equal(backoff.delay(10, 0), 1);
    assert.equal(backoff.delay(10, 0.999) > 0.5, true);
    assert.throws(() => new Backoff({ factor: 0.5 }), UsageError);
  });

  test('the default backoff is full jitter: delays uniform over (0, cap], seeded, no sleeps', () => {
    // mulberry32: a small seeded generator, so the draw is the same every run.
    const seeded = (seed) => () => {
      seed = (seed + 0x6d2b79f5) | 0;
      let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
      t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
    const backoff = new Backoff();
    assert.equal(backoff.jitter, 1);
    const draws = 20000;
    for (let attempt = 0; attempt < 8; attempt++) {
      const cap = Math.min(backoff.maximum, backoff.initial * backoff.factor ** attempt);
      const random = seeded(1700 + attempt);
      const delays = Array.from({ length: draws }, () => backoff.delay(attempt, random()));
      assert.ok(delays.every((d) => d > 0 && d <= cap));
      // Kolmogorov-Smirnov distance to uniform(0, cap): below the 0.1 % critical value.
      delays.sort((a, b) => a - b);
      let ks = 0;
      delays.forEach((x, i) => { ks = Math.max(ks, (i + 1) / draws - x / cap, x / cap - i / draws); });
      assert.ok(ks < 0.0138, `attempt ${attempt}: KS ${ks}`);
      const mean = delays.reduce((a, b) => a + b, 0) / draws;
      assert.ok(Math.abs(mean - cap / 2) < cap * 0.01, `attempt ${attempt}: mean ${mean}`);
    }
    // 200 clients dropped at once: no tenth of the interval gets twice its share.
    const random = seeded(17);
    const cap = backoff.delay(0, 0);
    const bins = new Array(10).fill(0);
    for (let i = 0; i < 200; i++) bins[Math.min(9, Math.floor((backoff.delay(0, random()) / cap) * 10))] += 1;
    assert.ok(Math.max(...bins) <= 40 && Math.min(...bins) > 0, `${bins}`);
  });
});
