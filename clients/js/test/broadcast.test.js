// The broadcast vectors (SPEC.md §14, ../../vectors/broadcast.json, written by
// vectors/gen_broadcast.py): the JS core builds every body and batch byte for
// byte, and accepts or refuses every frame with the expected code; then a
// Signer verifies broadcasts beside ordinary server frames.
// Run: node --test test/broadcast.test.js
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';

import {
  Broadcast,
  Ed25519PrivateKey,
  Ed25519PublicKey,
  HMACKey,
  Issuer,
  Keyring,
  MACCredential,
  Rejected,
  ServerSession,
  Signer,
  Topics,
  UsageError,
  Verifier,
  checkBroadcast,
  fromHex,
  parseBroadcastFrame,
  toHex,
} from '../src/index.js';
import { fold } from '../src/broadcast.js';

const data = JSON.parse(readFileSync(new URL('../../../vectors/broadcast.json', import.meta.url), 'utf8'));
const AUDIENCE = data.audience;

/** @param {{str?: string, bin?: string}} p */
const payload = (p) => (p.str !== undefined ? p.str : fromHex(/** @type {string} */ (p.bin)));

/** @param {any} c */
const make = (c) => Broadcast.create(c.topic, c.tseq, payload(c.payload), { audience: AUDIENCE, now: c.ts / 1000 });

/** @param {Topics} topics */
const marksOf = (topics) => Object.fromEntries(topics.topics().map((t) => [t, topics.mark(t)]));

const clients = {
  mac: {
    mac: true,
    frameKeys: new Map(
      await Promise.all(
        Object.entries(data.clients.mac.frame_keys).map(
          async ([cid, key]) => /** @type {[string, HMACKey]} */ ([cid, await HMACKey.fromBytes(fromHex(/** @type {string} */ (key)))]),
        ),
      ),
    ),
    serverKeys: new Map(),
  },
  ed25519: {
    mac: false,
    frameKeys: new Map(),
    serverKeys: new Map(
      Object.entries(data.clients.ed25519.server_keys).map(([kid, key]) => [kid, new Ed25519PublicKey(fromHex(/** @type {string} */ (key)))]),
    ),
  },
};

describe('broadcast.json: bodies and batches', () => {
  for (const c of data.cases.filter((c) => c.kind === 'body')) {
    test(c.name, async () => {
      const made = await make(c);
      assert.equal(toHex(made.body), c.body);
      assert.equal(toHex(made.bodyHash), c.body_hash);
    });
  }
  for (const c of data.cases.filter((c) => c.kind === 'batch')) {
    test(c.name, async () => {
      const made = await make(c);
      for (const r of c.recipients) assert.equal(toHex(made.binding(fromHex(r.nonce), r.ctr)), r.binding);
      let frames;
      if (c.scheme === 'mac') {
        frames = await Promise.all(
          c.recipients.map(async (r) => made.macFrame(fromHex(r.nonce), r.ctr, r.key_id, await HMACKey.fromBytes(fromHex(r.frame_key)))),
        );
      } else {
        const serverKey = { kid: c.key_id, privateKey: await Ed25519PrivateKey.fromSeed(fromHex(c.seed)) };
        frames = await made.ed25519Frames(c.recipients.map((r) => [fromHex(r.nonce), r.ctr]), serverKey);
        for (const r of c.recipients) assert.equal(toHex(await fold(fromHex(r.leaf), fromHex(r.path))), c.root);
      }
      assert.deepEqual(frames.map(toHex), c.recipients.map((r) => r.frame));
    });
  }
});

describe('broadcast.json: verify', () => {
  for (const c of data.cases.filter((c) => c.kind === 'verify')) {
    test(c.name, async () => {
      const topics = new Topics(c.marks);
      const run = () =>
        checkBroadcast(fromHex(c.frame), {
          audience: AUDIENCE,
          nonce: fromHex(c.nonce),
          serverCounter: c.hs,
          topics,
          ...clients[/** @type {'mac' | 'ed25519'} */ (c.client)],
        });
      if (c.expected.reject) {
        await assert.rejects(run, (error) => error instanceof Rejected && error.code.id === c.expected.reject);
        assert.deepEqual(marksOf(topics), c.marks);
        return;
      }
      const message = await run();
      const want = c.expected.accept;
      assert.deepEqual(
        [message.counter, message.topic, message.tseq, message.missed, message.timestampMs],
        [want.counter, want.topic, want.tseq, want.missed, want.ts],
      );
      assert.deepEqual(message.payload, payload(want.payload));
      topics.commit(message);
      assert.deepEqual(marksOf(topics), want.marks);
    });
  }
});

describe('Signer.verifyBroadcast', () => {
  const NOW = 1_700_000_000;
  async function pair() {
    const secret = await HMACKey.fromBytes(new Uint8Array(32).fill(7), { derivable: true });
    const keyring = new Keyring();
    await keyring.addHMACKey('login', 'k1', secret);
    const issuer = await Issuer.create('login', 'k1', secret);
    const { token, frameKey } = await issuer.issueToken({ subject: 'alice', now: NOW, lifetime: 900 });
    const verifier = await Verifier.create(keyring, {
      audience: AUDIENCE,
      fleetKey: await HMACKey.fromBytes(new Uint8Array(32).fill(9), { derivable: true }),
    });
    const session = await ServerSession.create(verifier, { now: NOW });
    const topics = new Topics();
    const signer = Signer.fromHello(session.hello, await MACCredential.fromBytes(token, frameKey), {
      audience: AUDIENCE,
      now: NOW,
      topics,
    });
    await session.receive(await signer.sign('hi', { now: NOW }), { now: NOW });
    const credential = /** @type {any} */ (session.state.credential);
    /** @param {number} tseq @param {number} counter */
    const frame = async (tseq, counter) =>
      (await Broadcast.create('room', tseq, 'm', { audience: AUDIENCE, now: NOW })).macFrame(
        session.state.nonce,
        counter,
        credential.cid,
        credential.frameKey,
      );
    return { session, signer, topics, frame };
  }

  test('shares the server counter with ordinary frames and moves the topic mark', async () => {
    const { session, signer, topics, frame } = await pair();
    const got = await signer.verifyBroadcast(await frame(3, 1));
    assert.deepEqual([got.counter, got.topic, got.tseq, got.missed, got.payload], [1, 'room', 3, 0, 'm']);
    assert.equal(topics.mark('room'), 3);
    // The server's next ordinary frame reuses counter 1 (the JS ServerSession
    // has no broadcast hook yet): the client refuses it as a replay.
    await assert.rejects(signer.verify(await session.send('x', { now: NOW })), (e) => e instanceof Rejected && e.code.id === 'replay');
    assert.equal((await signer.verifyBroadcast(await frame(6, 2))).missed, 2);
    await assert.rejects(signer.verifyBroadcast(await frame(6, 3)), (e) => e instanceof Rejected && e.code.id === 'replay');
    assert.equal(topics.mark('room'), 6);
  });

  test('refuses bad arguments and frames over the limit; topics are bounded', async () => {
    await assert.rejects(Broadcast.create('', 1, 'm', { audience: AUDIENCE, now: 0 }), UsageError);
    await assert.rejects(Broadcast.create('t', 0, 'm', { audience: AUDIENCE, now: 0 }), UsageError);
    await assert.rejects(Broadcast.create('t', 1, /** @type {any} */ (null), { audience: AUDIENCE, now: 0 }), UsageError);
    const made = await Broadcast.create('t', 1, 'm', { audience: AUDIENCE, now: 0 });
    assert.match(String(made), /^Broadcast\(topic="t", tseq=1/);
    await assert.rejects(made.ed25519Frames([], { kid: 'k', privateKey: await Ed25519PrivateKey.generate() }), UsageError);
    assert.throws(() => parseBroadcastFrame(new Uint8Array(101), { maxSize: 100 }), (e) => e instanceof Rejected && e.code.id === 'frame_too_large');
    const topics = new Topics({ a: 1, b: 2 }, { maxTopics: 2 });
    topics.commit({ counter: 1, topic: 'c', tseq: 4, missed: 0, payload: 'm', timestampMs: 0 });
    assert.deepEqual(topics.topics(), ['b', 'c']);
    assert.equal(topics.size, 2);
    assert.throws(() => new Topics({ a: 0 }), UsageError);
    assert.throws(() => new Topics({}, { maxTopics: 0 }), UsageError);
  });
});
