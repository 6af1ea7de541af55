// The issuance vectors (SPEC.md §13.3, ../../vectors/issuance.json, written by
// vectors/gen_issuance.py): the JS client builds the exact proof-of-possession
// input and signature for every minted challenge, and reads the JWKS form of
// server keys. Run: node --test test/issuance.test.js
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';

import { Ed25519PrivateKey, IssuerClient, fromHex, popInput, serverKeysFromJwks, toHex } from '../src/index.js';
import { toBase64Url } from '../src/keys.js';

const data = JSON.parse(readFileSync(new URL('../../../vectors/issuance.json', import.meta.url), 'utf8'));

describe('issuance.json: proof of possession', () => {
  for (const c of data.cases.filter((c) => c.kind === 'mint')) {
    test(c.name, async () => {
      const challenge = fromHex(c.challenge);
      // The challenge names the public key it is for (offset 33, 32 bytes).
      assert.equal(toHex(challenge.subarray(33, 65)), c.public_key);
      const input = popInput(c.iss, challenge);
      assert.equal(toHex(input), c.pop_input);
      const key = await Ed25519PrivateKey.fromSeed(fromHex(c.seed));
      assert.equal(toHex(key.publicKey().toBytes()), c.public_key);
      assert.equal(toHex(await key.sign(input)), c.signature);
    });
  }
  for (const c of data.cases.filter((c) => c.kind === 'check' && c.name.startsWith('signature_'))) {
    test(`${c.name}: not the client's pop_input`, async () => {
      // A signature over something else than popInput(iss, challenge) is what the issuer refuses.
      const key = await Ed25519PrivateKey.fromSeed(fromHex(data.cases[0].seed));
      const ours = await key.sign(popInput(c.iss, fromHex(c.challenge)));
      assert.notEqual(toHex(ours), c.signature);
    });
  }
});

describe('issuer client', () => {
  test('server keys from a JWKS: role and validity window', () => {
    const x = b64(data.cases[0].public_key);
    const key = (kid, extra) => ({ kty: 'OKP', crv: 'Ed25519', kid, x, alg: 'EdDSA', use: 'sig', ...extra });
    const doc = {
      keys: [
        key('srv-1', { signedws_role: 'server' }),
        key('srv-old', { signedws_role: 'server', exp: 100 }),
        key('srv-new', { signedws_role: 'server', nbf: 300 }),
        key('iss-1', { signedws_role: 'issuer', signedws_iss: 'app' }),
      ],
    };
    assert.deepEqual([...serverKeysFromJwks(doc, 200).keys()], ['srv-1']);
    assert.deepEqual([...serverKeysFromJwks(doc, 50).keys()].sort(), ['srv-1', 'srv-old']);
    assert.throws(() => serverKeysFromJwks({ keys: [{ ...key('p', {}), d: 'AA' }] }, 0));
  });

  test('refuses plain http except to loopback, and a URL with a query', () => {
    assert.throws(() => new IssuerClient('http://issuer.example/signedws', { loginToken: 't' }));
    assert.throws(() => new IssuerClient('https://issuer.example/signedws?token=t', { loginToken: 't' }));
    assert.ok(new IssuerClient('http://127.0.0.1:8000/signedws', { loginToken: 't' }));
    assert.ok(new IssuerClient('/signedws', { loginToken: 't' }));
  });
});

function b64(hex) {
  return toBase64Url(fromHex(hex));
}
