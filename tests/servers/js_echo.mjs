// The JavaScript client (clients/js) against a signedws server, for the
// server contract (tests/servers/test_server_contract.py): both schemes send
// messages, read the server's authenticated replies and wait until the
// server acknowledged everything. Input: one JSON argument (hex bytes).
// Output: one JSON line, what each client received.
import {
  Ed25519Credential,
  Ed25519PrivateKey,
  MACCredential,
  connect,
  fromHex,
} from '../../clients/js/src/index.js';

const spec = JSON.parse(process.argv[2]);

async function exchange(credential, options, messages) {
  const client = await connect(spec.url, credential, { audience: spec.audience, ...options });
  try {
    const received = [];
    for (const message of messages) await client.send(message);
    for (let i = 0; i < messages.length; i++) received.push(await client.recv());
    await client.drain();
    return received;
  } finally {
    await client.close();
  }
}

const mac = await MACCredential.fromBytes(fromHex(spec.mac.token), fromHex(spec.mac.frame_key));
const key = await Ed25519PrivateKey.fromSeed(fromHex(spec.ed25519.seed));
const certificate = new Ed25519Credential(fromHex(spec.ed25519.certificate), key);
const serverKeys = Object.fromEntries(
  Object.entries(spec.server_keys).map(([kid, hex]) => [kid, fromHex(hex)]),
);
const result = {
  mac: await exchange(mac, {}, ['js mac 1', 'js mac 2']),
  ed25519: await exchange(certificate, { serverKeys }, ['js ed 1', 'js ed 2']),
};
console.log(JSON.stringify(result));
