// Node <-> Python: the JavaScript client against the real Python signedws
// server (demo/serve.py, a subprocess on 127.0.0.1): both schemes, reconnect
// with resend, credential refresh without reconnecting. The server's own
// record (GET /events) says what it verified.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { createServer, connect as netConnect } from 'node:net';

import {
  Backoff,
  ConnectionLost,
  Ed25519Credential,
  Ed25519PrivateKey,
  HMACKey,
  HandshakeFailed,
  Issuer,
  MACCredential,
  Refused,
  Rejected,
  UsageError,
  connect,
  explainClose,
  explainStatus,
  fromHex,
  toHex,
} from '../src/index.js';
import { startServer } from './support/server.js';

if (typeof globalThis.WebSocket !== 'function') {
  throw new Error('no global WebSocket: run Node 20 with --experimental-websocket');
}

/** @type {Awaited<ReturnType<typeof startServer>>} */
let server;

before(async () => {
  // Node sends no Origin header: the server accepts that explicitly (§11.2).
  server = await startServer(['--allow-no-origin', '--test-hooks', '--ack-delay', '0.5']);
});

after(async () => {
  await server?.stop();
});

async function macCredential(subject, extra = {}) {
  const issued = await server.post('/enrol/mac', { subject, ...extra });
  return MACCredential.fromBytes(fromHex(issued.token), fromHex(issued.frame_key));
}

async function ed25519Credential(subject, key) {
  const issued = await server.post('/enrol/ed25519', { subject, public_key: toHex(key.publicKey().toBytes()) });
  return new Ed25519Credential(fromHex(issued.certificate), key);
}

/** The messages the server delivered for a client's stream, in order. */
async function delivered(client) {
  const stream = toHex(client.stream);
  return (await server.events()).filter((e) => e.type === 'message' && e.stream === stream);
}

/** Read payloads until `predicate` holds for one; return it. */
async function recvUntil(client, predicate) {
  for (;;) {
    const payload = await client.recv();
    if (predicate(payload)) return payload;
  }
}

const quick = new Backoff({ initial: 0.05, maximum: 0.2 });

describe('Node client <-> Python server', () => {
  test('a room: broadcast frames (SPEC.md §14) reach every member, verified, in order', async () => {
    const key = await Ed25519PrivateKey.generate();
    const { server_keys: hexKeys } = await server.config();
    const serverKeys = Object.fromEntries(Object.entries(hexKeys).map(([kid, hex]) => [kid, fromHex(/** @type {string} */ (hex))]));
    const ann = await connect(server.ws, await macCredential('ann-room'), { audience: server.audience });
    const bob = await connect(server.ws, await ed25519Credential('bob-room', key), { audience: server.audience, serverKeys });
    /** @type {Map<object, any[]>} */
    const heard = new Map([[ann, []], [bob, []]]);
    for (const [client, list] of heard) client.addEventListener('broadcast', (event) => list.push(/** @type {any} */ (event).detail));
    try {
      await ann.send('hi');  // joins (every connection that spoke is in the room)
      await bob.send('hi');
      assert.equal(await ann.recv(), 'ann-room (seq 1) said: hi');
      assert.equal(await bob.recv(), 'bob-room (seq 1) said: hi');
      await ann.send('/room one');
      await bob.send('/room two');
      for (const client of [ann, bob]) {
        assert.deepEqual([await client.recv(), await client.recv()], ['ann-room: one', 'bob-room: two']);
        const mark = client.topics.mark('room');
        assert.ok(mark !== null && Number(mark) >= 2);
        const events = /** @type {any[]} */ (heard.get(client));
        assert.deepEqual(events.map((m) => [m.topic, m.payload]), [['room', 'ann-room: one'], ['room', 'bob-room: two']]);
        assert.equal(Number(events[1].tseq), Number(mark));
      }
    } finally {
      await ann.close();
      await bob.close();
    }
  });

  test('mac: the server verifies every frame; the client verifies every echo', async () => {
    const client = await connect(server.ws, await macCredential('alice-mac'), { audience: server.audience });
    try {
      await client.send('one');
      await client.send('two');
      await client.send(new Uint8Array([0, 1, 2]));
      assert.equal(await client.recv(), 'alice-mac (seq 1) said: one');
      assert.equal(await client.recv(), 'alice-mac (seq 2) said: two');
      assert.equal(await client.recv(), 'alice-mac (seq 3) said: <3 bytes>');
      await client.drain();
      assert.equal(client.pending, 0);
    } finally {
      await client.close();
    }
    const messages = await delivered(client);
    assert.deepEqual(
      messages.map((m) => [m.subject, m.seq, m.payload]),
      [['alice-mac', 1, 'one'], ['alice-mac', 2, 'two'], ['alice-mac', 3, '<3 bytes>']],
    );
    assert.equal(new Set(messages.map((m) => m.connection)).size, 1);
  });

  test('ed25519: a certificate for a non-extractable WebCrypto key; server frames signed by the server key', async () => {
    const key = await Ed25519PrivateKey.generate();
    assert.equal(key.cryptoKey.extractable, false);
    await assert.rejects(crypto.subtle.exportKey('pkcs8', key.cryptoKey));
    const { server_keys: serverKeys } = await server.config();
    const client = await connect(server.ws, await ed25519Credential('bob-ed', key), {
      audience: server.audience,
      serverKeys: Object.fromEntries(Object.entries(serverKeys).map(([kid, hex]) => [kid, fromHex(hex)])),
    });
    try {
      await client.send('signed by a key no script can read');
      assert.equal(await client.recv(), 'bob-ed (seq 1) said: signed by a key no script can read');
      await client.drain();
    } finally {
      await client.close();
    }
    const messages = await delivered(client);
    assert.deepEqual(messages.map((m) => [m.subject, m.seq]), [['bob-ed', 1]]);
  });

  test('ed25519 without the server key: the first server frame is refused (unknown_key)', async () => {
    const key = await Ed25519PrivateKey.generate();
    const client = await connect(server.ws, await ed25519Credential('carol-ed', key), { audience: server.audience });
    await client.send('hello');
    await assert.rejects(client.recv(), (error) => error instanceof Rejected && error.code.id === 'unknown_key');
    await client.close();
  });

  test('a server announcing another audience is refused (audience_mismatch)', async () => {
    await assert.rejects(
      connect(server.ws, await macCredential('dave'), { audience: 'someone-else' }),
      (error) => error instanceof Rejected && error.code.id === 'audience_mismatch',
    );
  });

  test('nothing secret in the URL: a query string is refused before connecting', async () => {
    const credential = await macCredential('grace');
    await assert.rejects(connect(`${server.ws}?token=x`, credential, { audience: server.audience }), UsageError);
  });

  test('reconnect with resend: every message delivered once, in order', async () => {
    const client = await connect(server.ws, await macCredential('erin'), { audience: server.audience, backoff: quick });
    /** @type {any[]} */
    const connects = [];
    client.addEventListener('connect', (event) => connects.push(/** @type {any} */ (event).detail));
    try {
      await client.send('a1');
      await client.send('a2');
      await recvUntil(client, (p) => p === 'erin (seq 2) said: a2');
      await client.drain();
      // The server drops the connection on '!drop' without acknowledging it.
      await client.send('!drop');
      await client.send('c1');
      await client.drain();
      await client.send('d1');
      await recvUntil(client, (p) => p === 'erin (seq 5) said: d1');
      assert.equal(client.connections, 2);
      assert.ok(connects[0].resent >= 1, 'the unacknowledged message was resent');
    } finally {
      await client.close();
    }
    const messages = await delivered(client);
    assert.deepEqual(
      messages.map((m) => [m.seq, m.payload]),
      [[1, 'a1'], [2, 'a2'], [3, '!drop'], [4, 'c1'], [5, 'd1']],
    );
    assert.equal(new Set(messages.map((m) => m.connection)).size, 2);
  });

  test('refresh: a new credential on the same connection, before the old one expires', async () => {
    const first = await macCredential('frank', { lifetime: 3 });
    const refreshed = [];
    const client = await connect(server.ws, first, {
      audience: server.audience,
      refreshMargin: 2,
      refresh: async () => {
        const credential = await macCredential('frank', { lifetime: 3 });
        refreshed.push(credential.cid);
        return credential;
      },
    });
    try {
      await client.send('with the first token');
      await new Promise((resolve) => client.addEventListener('refresh', resolve, { once: true }));
      // Past the first token's expiry: its frames would be refused now.
      const wait = Number(first.claims.exp) * 1000 - Date.now() + 300;
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, wait)));
      await client.send('after the first token expired');
      await recvUntil(client, (p) => p.endsWith('after the first token expired'));
      assert.equal(client.connections, 1);
    } finally {
      await client.close();
    }
    const messages = await delivered(client);
    assert.equal(messages.length, 2);
    assert.equal(messages[0].cid, first.cid);
    assert.notEqual(messages[1].cid, first.cid);
    assert.ok(refreshed.includes(messages[1].cid));
    assert.equal(new Set(messages.map((m) => m.connection)).size, 1, 'no reconnection');
  });
});

describe('errors a person can act on (issue 17)', () => {
  test('a credential for another audience: 4401 explained, with what the client can tell', async () => {
    // An issuer this server does not trust, minting for another audience:
    // the server says only "unauthorized" (on purpose); the client says more.
    const secret = await HMACKey.generate({ derivable: true });
    const issuer = await Issuer.create('elsewhere', 'k1', secret);
    const { token, frameKey } = await issuer.issueToken({
      subject: 'mallory',
      now: Date.now() / 1000,
      audiences: ['wss://other.example'],
    });
    const credential = await MACCredential.fromBytes(token, frameKey);
    const client = await connect(server.ws, credential, { audience: server.audience, reconnect: false });
    await client.send('hello');
    /** @type {any} */
    let refused = null;
    await assert.rejects(client.drain(), (error) => {
      refused = error;
      return error instanceof Refused;
    });
    await client.close();
    assert.equal(refused.closeCode, 4401);
    assert.ok(refused.message.startsWith('server refused the connection: close code 4401 (unauthorized; one of: '));
    assert.ok(refused.message.includes("Check that the credential is for this server's audience"));
    assert.ok(
      refused.message.includes(
        `Here: this client's credential is for ["wss://other.example"], not for the server's audience ${JSON.stringify(server.audience)}.`,
      ),
      refused.message,
    );
    assert.equal(explainClose(4401, 'unauthorized'), refused.explanation.split(' Here: ')[0]);
  });

  test('ConnectionLost lists what each reconnection attempt got', async () => {
    // A TCP proxy: the first connection goes to the real server, every later
    // one is refused with HTTP 503, as a draining or overloaded node does.
    const target = new URL(server.ws);
    let seen = 0;
    const proxy = createServer((socket) => {
      seen += 1;
      if (seen === 1) {
        const upstream = netConnect(Number(target.port), target.hostname);
        socket.pipe(upstream).pipe(socket);
        socket.on('error', () => upstream.destroy());
        upstream.on('error', () => socket.destroy());
        return;
      }
      socket.once('data', () => {
        socket.end('HTTP/1.1 503 Service Unavailable\r\nContent-Length: 12\r\nConnection: close\r\n\r\nserver busy\n', () => socket.destroy());
      });
    });
    await new Promise((resolve) => proxy.listen(0, '127.0.0.1', () => resolve(undefined)));
    const port = /** @type {import('node:net').AddressInfo} */ (proxy.address()).port;
    try {
      const client = await connect(`ws://127.0.0.1:${port}`, await macCredential('ivan'), {
        audience: server.audience,
        backoff: new Backoff({ initial: 0.01, maximum: 0.02 }),
        maxAttempts: 2,
        openTimeout: 5, // a bound, should the refusal not reach the client
      });
      await client.send('!drop'); // the server aborts: no close frame (1006)
      /** @type {any} */
      let lost = null;
      await assert.rejects(client.drain(), (error) => {
        lost = error;
        return error instanceof ConnectionLost;
      });
      await client.close();
      assert.deepEqual(lost.outcomes, [
        'connection 1: closed with close code 1006 (no reason)',
        'attempt 1: handshake failed (refused or unreachable, close code 1006)',
        'attempt 2: handshake failed (refused or unreachable, close code 1006)',
      ]);
      assert.ok(lost.message.startsWith('connection lost (close code 1006 (no reason): the connection dropped'), lost.message);
      assert.ok(lost.message.includes('after 2 reconnection attempts; what each got: connection 1:'), lost.message);
      assert.equal(seen, 3);
    } finally {
      await new Promise((resolve) => proxy.close(() => resolve(undefined)));
    }
  });

  test('explainStatus and the handshake advice name the statuses', () => {
    assert.ok(explainStatus(403, 'invalid Origin header').startsWith('HTTP 403 (invalid Origin header): '));
    assert.ok(explainStatus(403).includes('[server].origins'));
    assert.ok(explainStatus(502).endsWith('the server failed. The client retries later.'));
    assert.ok(explainStatus(418).endsWith('Check the URL.'));
    assert.ok(explainClose(null).startsWith('close code 1006 (no reason): '));
    assert.ok(explainClose(4999).endsWith('an application-defined close code.'));
    assert.ok(explainClose(3000).endsWith('a protocol error.'));
    assert.ok(new HandshakeFailed('close code 1006').message.includes('HTTP 403'));
  });
});
