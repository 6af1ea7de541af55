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
  Broadcaster,
  ClientSession,
  Ed25519Credential,
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
import { handle, serverFrame } from './support/session.js';
import { fold } from '../src/broadcast.js';
import { verifyServerFrame } from '../src/receive.js';

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

describe('Broadcaster and Signer.verifyBroadcast', () => {
  const NOW = 1_700_000_000;
  /** One server, `count` connections of one scheme, each with a client frame accepted. */
  async function world(scheme = 'mac', count = 3) {
    const secret = await HMACKey.fromBytes(new Uint8Array(32).fill(7), { derivable: true });
    const issuerKey = await Ed25519PrivateKey.generate();
    const keyring = new Keyring();
    await keyring.addHMACKey('login', 'k1', secret);
    keyring.addEd25519Key('login', 'e1', issuerKey.publicKey());
    const verifier = await Verifier.create(keyring, {
      audience: AUDIENCE,
      fleetKey: await HMACKey.fromBytes(new Uint8Array(32).fill(9), { derivable: true }),
    });
    const serverKey = { kid: 'srv-1', privateKey: await Ed25519PrivateKey.generate() };
    let credential;
    if (scheme === 'mac') {
      const { token, frameKey } = await (await Issuer.create('login', 'k1', secret)).issueToken({ subject: 'alice', now: NOW, lifetime: 900 });
      credential = await MACCredential.fromBytes(token, frameKey);
    } else {
      const mine = await Ed25519PrivateKey.generate();
      const certificate = await (await Issuer.create('login', 'e1', issuerKey)).issueCertificate(mine.publicKey(), { subject: 'bob', now: NOW });
      credential = new Ed25519Credential(certificate, mine);
    }
    const conns = [];
    for (let i = 0; i < count; i++) {
      const session = await ServerSession.create(verifier, { now: NOW, serverKey });
      const signer = Signer.fromHello(session.hello, credential, {
        audience: AUDIENCE,
        now: NOW,
        serverKeys: { 'srv-1': serverKey.privateKey.publicKey() },
      });
      await handle(session, await signer.sign('hi', { now: NOW }), { now: NOW });
      conns.push({ session, signer });
    }
    const fresh = await ServerSession.create(verifier, { now: NOW, serverKey });
    const open = () => ServerSession.create(verifier, { now: NOW, serverKey });
    return { conns, serverKey, fresh, credential, open };
  }

  for (const scheme of ['mac', 'ed25519']) {
    test(`${scheme}: every connection verifies its frame; the server counter is shared`, async () => {
      const { conns, serverKey, fresh } = await world(scheme, 5);
      const fanout = new Broadcaster(AUDIENCE, { serverKey, batchSize: 2 });
      const first = await serverFrame(conns[0].session, 'unicast', { now: NOW });
      assert.equal((await conns[0].signer.verify(first)).counter, 1);
      const message = await fanout.message('room', 3, 'm', { now: NOW });
      const frames = await fanout.frames(message, [fresh, ...conns.map((c) => c.session)]);
      assert.equal(frames[0], null); // no client frame accepted yet: no frame, no counter
      for (const [i, { session, signer }] of conns.entries()) {
        const got = await signer.verifyBroadcast(/** @type {Uint8Array} */ (frames[i + 1]));
        assert.deepEqual([got.topic, got.tseq, got.missed, got.payload], ['room', 3, 0, 'm']);
        assert.equal(signer.topics.mark('room'), 3);
        const after = await signer.verify(await serverFrame(session, 'next', { now: NOW }));
        assert.equal(after.counter, Number(got.counter) + 1);
      }
      // Connection 0's frame on connection 1: refused.
      await assert.rejects(conns[1].signer.verifyBroadcast(/** @type {Uint8Array} */ (frames[1])), (e) => e instanceof Rejected);
    });
  }

  test('verifyAny routes by kind and shares the counter', async () => {
    const { conns } = await world('mac', 1);
    const [{ session, signer }] = conns;
    const fanout = new Broadcaster(AUDIENCE);
    const first = /** @type {Uint8Array} */ ((await fanout.frames(await fanout.message('t', 1, 'b', { now: NOW }), [session]))[0]);
    const got = /** @type {any} */ (await signer.verifyAny(first));
    assert.deepEqual([got.counter, got.topic], [1, 't']);
    const plain = /** @type {any} */ (await signer.verifyAny(await serverFrame(session, 'p', { now: NOW })));
    assert.deepEqual([plain.counter, plain.payload, plain.topic], [2, 'p', undefined]);
    const dressed = await serverFrame(session, 'q', { now: NOW });
    dressed.set([0x98, 0x01, 0x06]);
    await assert.rejects(signer.verifyAny(dressed), (e) => e instanceof Rejected && e.code.id === 'malformed');
  });

  test('verifyServerFrame: the client receive hook (receive.js)', async () => {
    const { conns } = await world('mac', 1);
    const [{ session, signer }] = conns;
    const fanout = new Broadcaster(AUDIENCE);
    await signer.verify(await serverFrame(session, 'p', { now: NOW }));
    /** @type {any[]} */
    const heard = [];
    const frame = /** @type {Uint8Array} */ ((await fanout.frames(await fanout.message('t', 3, 'b', { now: NOW }), [session]))[0]);
    const got = await verifyServerFrame(signer, frame, { onBroadcast: (m) => heard.push(m) });
    assert.deepEqual([got.counter, got.ack, got.payload], [2, signer.acked, 'b']);
    assert.deepEqual(heard.map((m) => [m.topic, m.tseq, m.missed]), [['t', 3, 0]]);
    const plain = await verifyServerFrame(signer, await serverFrame(session, 'q', { now: NOW }));
    assert.deepEqual([plain.counter, plain.payload], [3, 'q']);
    await assert.rejects(verifyServerFrame(signer, 'text'), (e) => e instanceof Rejected && e.code.id === 'malformed');
    await assert.rejects(verifyServerFrame(signer, frame), (e) => e instanceof Rejected && e.code.id === 'replay');
  });

  for (const scheme of ['mac', 'ed25519']) {
    test(`${scheme}: ClientSession delivers broadcasts (PayloadReceived.broadcast) and keeps topic marks across connections`, async () => {
      const { serverKey, credential, open } = await world(scheme, 0);
      const fanout = new Broadcaster(AUDIENCE, { serverKey });
      const client = new ClientSession(/** @type {any} */ (credential), {
        audience: AUDIENCE,
        serverKeys: { 'srv-1': serverKey.privateKey.publicKey() },
        keepalive: null,
        ackTimeout: null,
      });
      const connect = async () => {
        const server = await open();
        await client.receiveHello(server.hello, { now: NOW });
        for (const frame of client.dataToSend()) await handle(server, frame, { now: NOW });
        return server;
      };
      let server = await connect();
      await client.receiveMessage(await serverFrame(server, 'u1', { now: NOW }), { now: NOW });
      const frame = /** @type {Uint8Array} */ ((await fanout.frames(await fanout.message('t', 1, 'b1', { now: NOW }), [server]))[0]);
      await client.receiveMessage(frame, { now: NOW });
      await client.receiveMessage(await serverFrame(server, 'u2', { now: NOW }), { now: NOW });
      const events = /** @type {any[]} */ (client.eventsReceived());
      assert.deepEqual(events.map((e) => [e.type, e.payload]), [['payload', 'u1'], ['payload', 'b1'], ['payload', 'u2']]);
      assert.equal(events[0].broadcast, null);
      assert.deepEqual([events[1].broadcast.topic, events[1].broadcast.tseq, events[1].broadcast.missed], ['t', 1, 0]);
      assert.equal(Number(client.topics.mark('t')), 1);
      await client.receiveMessage(frame, { now: NOW }); // a replay: the connection ends
      const [rejected] = /** @type {any[]} */ (client.eventsReceived());
      assert.equal(rejected.type, 'rejected');
      assert.equal(rejected.code.id, 'replay');
      assert.equal(client.connected, false);
      client.connectionClosed(rejected.code.closeCode, '', { now: NOW });
      server = await connect(); // another connection: the marks stay
      const later = /** @type {Uint8Array} */ ((await fanout.frames(await fanout.message('t', 3, 'b3', { now: NOW }), [server]))[0]);
      await client.receiveMessage(later, { now: NOW });
      const [event] = /** @type {any[]} */ (client.eventsReceived());
      assert.deepEqual([event.payload, event.broadcast.tseq, event.broadcast.missed], ['b3', 3, 1]);
      assert.equal(Number(client.topics.mark('t')), 3);
    });
  }

  test('topic marks: a replayed tseq is refused, a gap is reported', async () => {
    const { conns } = await world('mac', 1);
    const [{ session, signer }] = conns;
    const fanout = new Broadcaster(AUDIENCE);
    /** @param {number} tseq */
    const send = async (tseq) => /** @type {Uint8Array} */ ((await fanout.frames(await fanout.message('room', tseq, 'm', { now: NOW }), [session]))[0]);
    assert.equal((await signer.verifyBroadcast(await send(1))).missed, 0);
    assert.equal((await signer.verifyBroadcast(await send(4))).missed, 2);
    await assert.rejects(signer.verifyBroadcast(await send(4)), (e) => e instanceof Rejected && e.code.id === 'replay');
    assert.equal(signer.topics.mark('room'), 4);
    await assert.rejects(fanout.frames(await Broadcast.create('t', 1, 'm', { audience: 'other', now: 0 }), [session]), UsageError);
    assert.throws(() => new Broadcaster(''), UsageError);
    assert.throws(() => new Broadcaster(AUDIENCE, { batchSize: 0 }), UsageError);
    assert.throws(() => session.claimCounter.call(/** @type {any} */ ({ verifierState: { credential: null } })), UsageError);
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
