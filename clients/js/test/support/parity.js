// Differential check against the Python implementation: reads a corpus of
// byte strings (JSON on stdin, written by tests/test_js_client.py), runs each
// through the JavaScript implementation, and prints each outcome as JSON: the
// rejection code, or "accept". The Python side compares with its own.
//
// Items: {kind: "client_frame", case, hex}: a frames.json case's verifier and
// nonce, a fresh connection, verified at the case's first step's `now`;
// {kind: "server_frame", case, hex}: a server_frames.json "server_frames" case's
// client, verifying one frame; {kind: "hello", hex}; {kind: "credential", hex}.
import { readFileSync } from 'node:fs';

import {
  Ed25519Credential,
  Ed25519PrivateKey,
  Ed25519PublicKey,
  HMACKey,
  Keyring,
  MACCredential,
  Rejected,
  RevocationSet,
  Signer,
  Verifier,
  decodeHello,
  fromHex,
  unverifiedCredential,
} from '../../src/index.js';
import { ConnectionState } from '../../src/verifier.js';

const h = fromHex;
const vectors = (name) => JSON.parse(readFileSync(new URL(`../../../../vectors/${name}`, import.meta.url), 'utf8'));
const secret = (hex) => HMACKey.fromBytes(h(hex), { derivable: true });

async function verifierOf(config) {
  const keyring = new Keyring();
  for (const e of config.keyring.hmac_keys) {
    await keyring.addHMACKey(e.iss, e.kid, await secret(e.secret), { notBefore: e.not_before, notAfter: e.not_after });
  }
  for (const e of config.keyring.ed25519_keys) {
    keyring.addEd25519Key(e.iss, e.kid, new Ed25519PublicKey(h(e.public_key)), { notBefore: e.not_before, notAfter: e.not_after });
  }
  for (const e of config.keyring.registry) {
    keyring.register(e.iss, e.kid, new Ed25519PublicKey(h(e.public_key)), {
      subject: e.sub, notBefore: e.iat, expires: e.exp, scopes: e.scopes, audiences: e.aud,
    });
  }
  const r = config.revocations;
  return Verifier.create(keyring, {
    audience: config.audience,
    fleetKey: await secret(config.fleet_key),
    nodeId: h(config.node_id),
    revocations: new RevocationSet({
      credentials: r.credentials.map((i) => [i.iss, i.cid]),
      subjects: r.subjects.map((i) => [i.iss, i.sub, i.before]),
    }),
    window: config.window,
    maxFrameSize: config.max_frame_size,
    maxSkew: config.max_skew,
    leeway: config.leeway,
    nonceTtl: config.nonce_ttl,
  });
}

async function credentialOf(config) {
  if (config.scheme === 'mac') return MACCredential.fromBytes(h(config.token), h(config.frame_key));
  return new Ed25519Credential(h(config.credential), await Ed25519PrivateKey.fromSeed(h(config.seed)));
}

async function outcome(run) {
  try {
    await run();
    return 'accept';
  } catch (error) {
    if (error instanceof Rejected) return error.code.id;
    throw error;
  }
}

const frames = Object.fromEntries(vectors('frames.json').cases.map((c) => [c.name, c]));
const serverCases = Object.fromEntries(vectors('server_frames.json').cases.map((c) => [c.name, c]));
const verifiers = new Map();

async function clientFrame(item) {
  const c = frames[item.case];
  if (!verifiers.has(item.case)) verifiers.set(item.case, await verifierOf(c.verifier));
  const state = new ConnectionState(h(c.nonce.bytes));
  return outcome(() => verifiers.get(item.case).verify(h(item.hex), state, { now: c.steps[0].now }));
}

async function serverFrame(item) {
  const c = serverCases[item.case];
  const credentials = await Promise.all(c.credentials.map(credentialOf));
  const serverKeys = Object.fromEntries(Object.entries(c.server_keys).map(([k, v]) => [k, h(v)]));
  const signer = Signer.fromHello(h(c.hello), credentials[0], { audience: c.audience, now: c.now, serverKeys, stream: h(c.stream) });
  for (const credential of credentials.slice(1)) signer.refresh(credential);
  for (let i = 0; i < c.sent; i++) await signer.sign(null, { now: c.now });
  return outcome(() => signer.verify(h(item.hex)));
}

const corpus = JSON.parse(readFileSync(0, 'utf8'));
const results = [];
for (const item of corpus.items) {
  if (item.kind === 'client_frame') results.push(await clientFrame(item));
  else if (item.kind === 'server_frame') results.push(await serverFrame(item));
  else if (item.kind === 'hello') results.push(await outcome(async () => decodeHello(h(item.hex))));
  else results.push(await outcome(async () => unverifiedCredential(h(item.hex))));
}
process.stdout.write(JSON.stringify(results));
