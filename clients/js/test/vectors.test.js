// The conformance vectors of SPEC.md §12 (../../vectors/*.json), every case,
// through the package's public API, with the same expected codes as Python's
// tests/test_vectors.py. Each case is its own test, named by its `name`.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';

import {
  Ed25519Credential,
  Ed25519PrivateKey,
  Ed25519PublicKey,
  HMACKey,
  Issuer,
  Keyring,
  MACCredential,
  NonceKey,
  Rejected,
  RevocationSet,
  ServerSession,
  Signer,
  TokenKeys,
  Verifier,
  checkPublicKey,
  checkSignature,
  encodeKeyReference,
  fromHex,
  toHex,
  toUInt,
} from '../src/index.js';
import { handle, serverFrame } from './support/session.js';
import { SMALL_ORDER_ENCODINGS, L, P } from '../src/ed25519.js';
import { ConnectionState } from '../src/verifier.js';

/** The order of SPEC.md §2.1 (UTF-8 bytes, ascending). @param {string} a @param {string} b */
const byUtf8Bytes = (a, b) => Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));

const VECTORS = new URL('../../../vectors/', import.meta.url);

/** @param {string} name */
function load(name) {
  const data = JSON.parse(readFileSync(new URL(name, VECTORS), 'utf8'));
  assert.equal(data.version, 1);
  return data;
}

/** @param {string} name @param {...string} types */
function cases(name, ...types) {
  return load(name).cases.filter((c) => types.length === 0 || types.includes(c.type));
}

const h = fromHex;

/** @param {any} value */
function payloadOf(value) {
  if (value === null) return null;
  return 'str' in value ? value.str : h(value.bin);
}

/** @param {any} payload */
function typed(payload) {
  if (payload === null) return null;
  return typeof payload === 'string' ? { str: payload } : { bin: toHex(payload) };
}

/** A randomness source that returns `data`, which must be what is asked for. */
function fixedRandom(data) {
  return (size) => {
    assert.equal(size, data.length);
    return data;
  };
}

const secret = (hex) => HMACKey.fromBytes(h(hex), { derivable: true });

async function keyringOf(config) {
  const keyring = new Keyring();
  for (const e of config.hmac_keys) {
    await keyring.addHMACKey(e.iss, e.kid, await secret(e.secret), { notBefore: e.not_before, notAfter: e.not_after });
  }
  for (const e of config.ed25519_keys) {
    keyring.addEd25519Key(e.iss, e.kid, new Ed25519PublicKey(h(e.public_key)), {
      notBefore: e.not_before,
      notAfter: e.not_after,
    });
  }
  for (const e of config.registry) {
    keyring.register(e.iss, e.kid, new Ed25519PublicKey(h(e.public_key)), {
      subject: e.sub,
      notBefore: e.iat,
      expires: e.exp,
      scopes: e.scopes,
      audiences: e.aud,
    });
  }
  return keyring;
}

function revocationsOf(config) {
  return new RevocationSet({
    credentials: config.credentials.map((i) => [i.iss, i.cid]),
    subjects: config.subjects.map((i) => [i.iss, i.sub, i.before]),
  });
}

async function verifierOf(config) {
  return Verifier.create(await keyringOf(config.keyring), {
    audience: config.audience,
    fleetKey: await secret(config.fleet_key),
    nodeId: h(config.node_id),
    revocations: revocationsOf(config.revocations),
    window: config.window,
    maxFrameSize: config.max_frame_size,
    maxSkew: config.max_skew,
    leeway: config.leeway,
    nonceTtl: config.nonce_ttl,
  });
}

async function mintedNonce(inputs) {
  const key = await NonceKey.create(await secret(inputs.fleet_key), inputs.audience);
  const nonce = await key.mint({
    nodeId: h(inputs.node_id),
    now: inputs.now,
    ttl: inputs.ttl,
    random: fixedRandom(h(inputs.random)),
  });
  assert.equal(toHex(nonce), inputs.bytes);
  return nonce;
}

async function credentialOf(config) {
  if (config.scheme === 'mac') return MACCredential.fromBytes(h(config.token), h(config.frame_key));
  return new Ed25519Credential(h(config.credential), await Ed25519PrivateKey.fromSeed(h(config.seed)));
}

/** An expectation with big integers as canonical uints. */
function normalized(expect) {
  if (!('accept' in expect) || typeof expect.accept !== 'object') return expect;
  const accept = { ...expect.accept };
  for (const key of ['ctr', 'ack', 'seq']) if (key in accept) accept[key] = toUInt(accept[key]);
  return { accept };
}

function messageResult(m) {
  return {
    accept: {
      sub: m.subject,
      iss: m.issuer,
      scopes: [...m.scopes].sort(byUtf8Bytes),
      ctr: m.counter,
      stream: toHex(m.stream),
      seq: m.seq,
      payload: typed(m.payload),
      cid: m.credentialId,
      ts: m.timestampMs,
    },
  };
}

function serverMessageResult(m) {
  return { accept: { ctr: m.counter, ack: m.ack, payload: typed(m.payload), ts: m.timestampMs } };
}

/** What `run` resolved to, or the rejection it raised, in the vectors' form. */
async function outcome(run) {
  try {
    return await run();
  } catch (error) {
    if (error instanceof Rejected) return { reject: error.code.id };
    throw error;
  }
}

const snapshot = (s) => [s.highest, s.bitmap, s.principal, s.credential];

async function runFrameSteps(verifier, state, steps) {
  for (const [index, step] of steps.entries()) {
    if ('replace_revocations' in step) verifier.revocations = revocationsOf(step.replace_revocations);
    const before = snapshot(state);
    const result = await outcome(async () => messageResult(await verifier.verify(h(step.frame), state, { now: step.now })));
    assert.deepEqual([index, result], [index, normalized(step.expect)]);
    if ('reject' in result) assert.deepEqual(snapshot(state), before, `step ${index} changed the state`);
  }
}

describe('keys.json', () => {
  for (const c of cases('keys.json')) {
    test(c.name, async () => {
      if (c.type === 'hmac_issuer_secret') {
        const keys = await TokenKeys.derive(await secret(c.secret), { extractable: true });
        assert.equal(toHex(await keys.tokenKey.toBytes()), c.token_key);
        assert.equal(toHex(await keys.frameKeyRoot.toBytes()), c.frame_key_root);
      } else if (c.type === 'frame_key') {
        const keys = await TokenKeys.derive(await secret(c.secret));
        assert.equal(toHex(await keys.frameKeyBytes(h(c.token))), c.frame_key);
      } else if (c.type === 'nonce_key') {
        const derived = await (await secret(c.fleet_key)).derive('signedws/v1 nonce-key', { extractable: true });
        assert.equal(toHex(await derived.toBytes()), c.nonce_key);
      } else {
        assert.equal(c.type, 'ed25519_seed');
        const key = await Ed25519PrivateKey.fromSeed(h(c.seed));
        assert.equal(toHex(key.publicKey().toBytes()), c.public_key);
      }
    });
  }
});

async function issuedBytes(c) {
  const f = c.fields;
  const iat = BigInt(f.iat);
  const options = {
    subject: f.sub,
    now: Number(iat),
    lifetime: BigInt(f.exp) - iat,
    scopes: f.scopes,
    audiences: f.aud,
    credentialId: f.cid,
  };
  if (c.type === 'token') {
    const issuer = await Issuer.create(f.iss, f.kid, await secret(c.issuer_secret));
    const { token, frameKey } = await issuer.issueToken(options);
    assert.equal(toHex(frameKey), c.frame_key);
    return token;
  }
  const issuer = await Issuer.create(f.iss, f.kid, await Ed25519PrivateKey.fromSeed(h(c.issuer_seed)));
  return issuer.issueCertificate(new Ed25519PublicKey(h(f.public_key)), options);
}

describe('credentials.json', () => {
  const setup = load('credentials.json').setup;
  for (const c of cases('credentials.json')) {
    test(c.name, async () => {
      if (c.mintable) {
        const issued = c.type === 'key_reference' ? encodeKeyReference(c.fields.iss, c.fields.kid) : await issuedBytes(c);
        assert.equal(toHex(issued), c.bytes);
      }
      if (c.type === 'token' && 'frame_key' in c) {
        const keys = await TokenKeys.derive(await secret(c.issuer_secret));
        assert.equal(toHex(await keys.frameKeyBytes(h(c.bytes))), c.frame_key);
      }
      const verifier = await verifierOf(setup.verifier);
      const state = new ConnectionState(await mintedNonce(setup.nonce));
      await runFrameSteps(verifier, state, [{ frame: c.frame, now: c.now, expect: c.expect }]);
    });
  }
});

describe('nonces.json', () => {
  for (const c of cases('nonces.json')) {
    test(c.name, async () => {
      if (c.type === 'mint') {
        const nonce = await mintedNonce(c.inputs);
        assert.equal(new DataView(nonce.buffer).getBigUint64(9), BigInt(c.inputs.expires));
        return;
      }
      const key = await NonceKey.create(await secret(c.fleet_key), c.audience);
      const result = await outcome(async () => {
        const info = await key.check(h(c.nonce), { now: c.now });
        return { valid: { node_id: toHex(info.nodeId), expires: info.expires } };
      });
      assert.deepEqual(result, c.expect);
    });
  }
});

describe('frames.json', () => {
  for (const c of cases('frames.json')) {
    test(c.name, async () => {
      const verifier = await verifierOf(c.verifier);
      const state = new ConnectionState(await mintedNonce(c.nonce));
      await runFrameSteps(verifier, state, c.steps);
    });
  }
});

const serverKeysOf = (c) =>
  Object.fromEntries(Object.entries(c.server_keys ?? {}).map(([kid, key]) => [kid, new Ed25519PublicKey(h(key))]));

describe('server_frames.json: hellos', () => {
  for (const c of cases('server_frames.json', 'hello')) {
    test(c.name, async () => {
      const credential = await credentialOf(c.credential);
      const result = await outcome(async () => {
        const { hello } = Signer.fromHello(h(c.hello), credential, { audience: c.audience, now: c.now });
        return {
          accept: {
            nonce: toHex(hello.nonce),
            aud: hello.audience,
            time: hello.serverTimeMs,
            max_frame: hello.maxFrameSize,
            window: hello.window,
          },
        };
      });
      assert.deepEqual(result, c.expect);
    });
  }
});

describe('server_frames.json: client frames', () => {
  for (const c of cases('server_frames.json', 'client_frames')) {
    test(c.name, async () => {
      const signer = Signer.fromHello(h(c.hello), await credentialOf(c.credential), {
        audience: c.audience,
        now: c.now,
        stream: h(c.stream),
        seq: c.seq,
      });
      for (const [index, step] of c.steps.entries()) {
        if ('refresh' in step) signer.refresh(await credentialOf(step.refresh));
        const frame = await signer.sign(payloadOf(step.payload), { now: step.now, seq: step.resend_seq ?? null });
        assert.deepEqual([index, toHex(frame)], [index, step.frame]);
        assert.equal(signer.counter, toUInt(step.ctr));
        assert.equal(signer.seq >= toUInt(step.seq), true);
      }
    });
  }
});

describe('server_frames.json: server frames', () => {
  for (const c of cases('server_frames.json', 'server_frames')) {
    test(c.name, async () => {
      const credentials = await Promise.all(c.credentials.map(credentialOf));
      const signer = Signer.fromHello(h(c.hello), credentials[0], {
        audience: c.audience,
        now: c.now,
        serverKeys: serverKeysOf(c),
        stream: h(c.stream),
      });
      for (const credential of credentials.slice(1)) signer.refresh(credential);
      for (let i = 0; i < c.sent; i++) await signer.sign(null, { now: c.now });
      for (const [index, step] of c.steps.entries()) {
        const result = await outcome(async () => serverMessageResult(await signer.verify(h(step.frame), { now: step.now })));
        assert.deepEqual([index, result], [index, normalized(step.expect)]);
      }
    });
  }
});

describe('server_frames.json: sessions', () => {
  for (const c of cases('server_frames.json', 'session')) {
    test(c.name, async () => {
      const key = c.server_key;
      const session = await ServerSession.create(await verifierOf(c.verifier), {
        now: c.server_now,
        serverKey: key ? { kid: key.kid, privateKey: await Ed25519PrivateKey.fromSeed(h(key.seed)) } : null,
        random: fixedRandom(h(c.nonce.random)),
      });
      assert.equal(toHex(session.nonce), c.nonce.bytes);
      assert.equal(toHex(session.hello), c.hello);
      const signer = Signer.fromHello(session.hello, await credentialOf(c.credential), {
        audience: c.audience,
        now: c.client_now,
        serverKeys: serverKeysOf(c),
        stream: h(c.stream),
        seq: c.seq,
      });
      for (const [index, step] of c.steps.entries()) {
        const payload = payloadOf(step.payload);
        let result;
        if (step.from === 'client') {
          const frame = await signer.sign(payload, { now: step.client_now });
          assert.deepEqual([index, toHex(frame)], [index, step.frame]);
          result = messageResult(await handle(session, frame, { now: step.server_now }));
        } else {
          const frame = await serverFrame(session, payload, { now: step.server_now });
          assert.deepEqual([index, toHex(frame)], [index, step.frame]);
          result = serverMessageResult(await signer.verify(frame, { now: step.client_now }));
        }
        assert.deepEqual([index, result], [index, normalized(step.expect)]);
      }
    });
  }
});

describe('ed25519_rules.json', () => {
  const data = load('ed25519_rules.json');
  test('constants', () => {
    assert.equal(BigInt(data.L.decimal), L);
    assert.equal(BigInt(data.p.decimal), P);
  });
  test('small_order_set', () => {
    const encodings = new Set(data.cases.map((c) => c.encoding));
    assert.equal(encodings.size, 14);
    assert.deepEqual(encodings, new Set(SMALL_ORDER_ENCODINGS));
  });
  for (const c of data.cases) {
    test(c.name, () => {
      const encoding = h(c.encoding);
      assert.notEqual(checkPublicKey(encoding), null);
      assert.notEqual(checkSignature(new Uint8Array([...encoding, ...new Uint8Array(32)])), null);
      assert.throws(() => new Ed25519PublicKey(encoding));
    });
  }
});
