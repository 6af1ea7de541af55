// Canonical MessagePack (SPEC.md §2) on @msgpack/msgpack: the exact bytes
// Python's msgpack writes, and strict decoding. Pins the library behaviour
// src/codec.js relies on.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { decodeCanonical, encode, fromHex, Rejected, toHex, toUInt } from '../src/index.js';

/** @param {string} hex */
const refused = (hex) => {
  try {
    decodeCanonical(fromHex(hex));
  } catch (error) {
    if (error instanceof Rejected) return error.code.id;
    throw error;
  }
  return 'accepted';
};

describe('encode', () => {
  test('integers take their shortest unsigned form', () => {
    const cases = [
      [0, '00'],
      [127, '7f'],
      [128, 'cc80'],
      [255, 'ccff'],
      [256, 'cd0100'],
      [65535, 'cdffff'],
      [65536, 'ce00010000'],
      [2 ** 32 - 1, 'ceffffffff'],
      [2 ** 32, 'cf0000000100000000'],
      [2 ** 53 - 1, 'cf001fffffffffffff'],
      [2n ** 53n, 'cf0020000000000000'],
      [2n ** 64n - 1n, 'cfffffffffffffffff'],
      [5n, '05'],
      [1700000000000, 'cf0000018bcfe56800'],
    ];
    for (const [value, hex] of cases) assert.equal(toHex(encode([value])), `91${hex}`, String(value));
  });

  test('strings: fixstr below 32 bytes, then str 8 and str 16', () => {
    assert.equal(toHex(encode(['a'.repeat(31)])).slice(0, 4), '91bf');
    assert.equal(toHex(encode(['a'.repeat(32)])).slice(0, 6), '91d920');
    assert.equal(toHex(encode(['a'.repeat(255)])).slice(0, 6), '91d9ff');
    assert.equal(toHex(encode(['a'.repeat(256)])).slice(0, 8), '91da0100');
    assert.equal(toHex(encode(['é'])), '91a2c3a9');
  });

  test('bytes are bin 8/16, nil is c0', () => {
    assert.equal(toHex(encode([new Uint8Array(2), null])), '92c4020000c0');
    assert.equal(toHex(encode([new Uint8Array(256)])).slice(0, 8), '91c50100');
  });

  test('no floats, no integers beyond 64 bits', () => {
    assert.throws(() => encode([1.5]));
    assert.throws(() => encode([2n ** 64n]));
  });
});

describe('decodeCanonical', () => {
  test('integers come back as safe numbers, or bigints above 2^53 - 1', () => {
    assert.deepEqual(decodeCanonical(fromHex('93cf001fffffffffffffcf0020000000000000cfffffffffffffffff')), [
      2 ** 53 - 1,
      2n ** 53n,
      2n ** 64n - 1n,
    ]);
    assert.equal(toUInt('18446744073709551615'), 2n ** 64n - 1n);
    assert.equal(toUInt('42'), 42);
  });

  test('longer forms than needed are not canonical', () => {
    for (const hex of ['91cc01', '91cd00ff', '91ce0000ffff', '91cf00000000ffffffff', '91d900', '91d0ff', 'dc000101']) {
      assert.equal(refused(hex), 'malformed', hex);
    }
  });

  test('trailing bytes, truncation and non-arrays are refused', () => {
    assert.equal(refused('910100'), 'malformed');
    assert.equal(refused('9201'), 'malformed');
    assert.equal(refused('01'), 'malformed');
    assert.equal(refused(''), 'malformed');
  });

  test('invalid UTF-8 is refused: overlong forms and encoded surrogates', () => {
    assert.equal(refused('91a2c0af'), 'malformed');
    assert.equal(refused('91a3eda080'), 'malformed');
    assert.equal(refused('91a1ff'), 'malformed');
  });

  test('§2 decoding: maps, extensions, floats, booleans and negative integers fail, anywhere', () => {
    assert.equal(refused('91810101'), 'malformed');
    assert.equal(refused('91d40100'), 'malformed');
    assert.equal(refused('91c700ff'), 'malformed');
    assert.equal(refused('91cb3ff0000000000000'), 'malformed'); // float 64
    assert.equal(refused('91ca3f800000'), 'malformed'); // float 32
    assert.equal(refused('9180'), 'malformed'); // empty map
    assert.equal(refused('91c70001'), 'malformed'); // empty extension
    assert.equal(refused('91c3'), 'malformed'); // true
    assert.equal(refused('91ff'), 'malformed'); // -1
    assert.equal(refused('90'), 'malformed'); // empty array: no version
  });

  test('§2 nesting: an array nests only where the shape has a [str]; at most 64 elements', () => {
    assert.equal(refused('9190'), 'malformed');
    assert.equal(refused('919101'), 'malformed');
    assert.equal(refused(`${'91'.repeat(1025)}01`), 'malformed');
    assert.deepEqual(decodeCanonical(fromHex('920192a161a162'), undefined, new Set([1])), [1, ['a', 'b']]);
    assert.throws(() => decodeCanonical(fromHex('92019191'), undefined, new Set([1])), Rejected);
    assert.equal(refused(`dc0040${'01'.repeat(64)}`), 'accepted');
    assert.equal(refused(`dc0041${'01'.repeat(65)}`), 'malformed');
  });

  test('the code to reject with is the caller\'s', () => {
    assert.throws(
      () => decodeCanonical(fromHex('cc01'), /** @type {any} */ ({ id: 'credential_malformed' })),
      (error) => error instanceof Rejected && error.code.id === 'credential_malformed',
    );
  });
});
