// A TypeScript program written against the packed `signedws` package, compiled with
// `strict: true` by tests/test_js_package.py (it is type-checked, not run).
import {
  Code,
  HMACKey,
  MACCredential,
  Rejected,
  SUBPROTOCOL,
  connect,
  type ClientConnection,
} from 'signedws';

export async function chat(url: string, token: Uint8Array, frameKey: Uint8Array): Promise<string[]> {
  const credential: MACCredential = await MACCredential.fromBytes(token, frameKey);
  const client: ClientConnection = await connect(url, credential, { audience: 'wss://chat.example' });
  await client.send('hello');
  const received: string[] = [];
  for await (const payload of client) {
    received.push(typeof payload === 'string' ? payload : new TextDecoder().decode(payload));
    if (received.length === 1) break;
  }
  await client.drain();
  await client.close();
  return received;
}

export async function macOf(secret: Uint8Array, data: Uint8Array): Promise<Uint8Array> {
  const key = await HMACKey.fromBytes(secret);
  return key.mac(data);
}

export function explain(error: unknown): string {
  if (error instanceof Rejected) return `rejected: ${error.code}`;
  return `${SUBPROTOCOL}: ${String(error)} (${Object.keys(Code).length} codes)`;
}
