/**
 * Byte strings: hex, concatenation, `lp()` (SPEC.md §2), UTF-8 and randomness.
 *
 * @module signedws/bytes
 */

import { UsageError } from './errors.js';

const encoder = new TextEncoder();

/**
 * A source of random bytes: `random(n)` returns `n` bytes. Tests pass a fixed
 * one; the default draws from the platform's CSPRNG.
 *
 * @typedef {(size: number) => Uint8Array} RandomSource
 */

/** @type {RandomSource} */
export function randomBytes(size) {
  const out = new Uint8Array(size);
  globalThis.crypto.getRandomValues(out);
  return out;
}

/**
 * @param {string} text an even number of hex digits
 * @returns {Uint8Array}
 */
export function fromHex(text) {
  if (typeof text !== 'string' || text.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(text)) {
    throw new UsageError('not a hex string');
  }
  const out = new Uint8Array(text.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(text.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/**
 * @param {Uint8Array} bytes
 * @returns {string} lowercase hex
 */
export function toHex(bytes) {
  let out = '';
  for (const byte of bytes) out += byte.toString(16).padStart(2, '0');
  return out;
}

/**
 * @param {...Uint8Array} parts
 * @returns {Uint8Array}
 */
export function concat(...parts) {
  let size = 0;
  for (const part of parts) size += part.length;
  const out = new Uint8Array(size);
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

/**
 * Byte equality in time that depends only on the lengths. For secrets
 * (tags), prefer `crypto.subtle.verify`, which compares in constant time.
 *
 * @param {Uint8Array} a
 * @param {Uint8Array} b
 * @returns {boolean}
 */
export function equalBytes(a, b) {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i] ^ b[i];
  return diff === 0;
}

/**
 * @param {string} text
 * @returns {Uint8Array} its UTF-8 encoding
 */
export function utf8(text) {
  return encoder.encode(text);
}

/**
 * `lp(x)`: a 2-byte big-endian length, then the bytes (SPEC.md §2).
 *
 * @param {Uint8Array} value
 * @returns {Uint8Array}
 */
export function lengthPrefixed(value) {
  if (value.length > 0xffff) throw new UsageError('value too long for a 2-byte length prefix');
  return concat(new Uint8Array([value.length >> 8, value.length & 0xff]), value);
}

/**
 * The 8-byte big-endian integer at `offset`.
 *
 * @param {Uint8Array} bytes
 * @param {number} offset
 * @returns {bigint}
 */
export function readUint64(bytes, offset) {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getBigUint64(offset);
}

/**
 * @param {bigint | number} value 0 to 2^64 - 1
 * @returns {Uint8Array} 8 bytes, big-endian
 */
export function uint64Bytes(value) {
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, BigInt(value));
  return out;
}

/**
 * A standalone copy of `data` as a Uint8Array (from an ArrayBuffer, a view or
 * a Node Buffer), so that later changes to the caller's buffer do not reach it.
 *
 * @param {ArrayBuffer | ArrayBufferView} data
 * @returns {Uint8Array}
 */
export function toBytes(data) {
  if (data instanceof ArrayBuffer) return new Uint8Array(data.slice(0));
  if (ArrayBuffer.isView(data)) {
    return new Uint8Array(data.buffer, data.byteOffset, data.byteLength).slice();
  }
  throw new UsageError('expected bytes (a Uint8Array or an ArrayBuffer)');
}

/**
 * `bytes` as WebCrypto's `BufferSource`, for the type checker only. TypeScript
 * types a `Uint8Array` over `ArrayBufferLike`, which admits a `SharedArrayBuffer`
 * that WebCrypto refuses; the library's arrays are all backed by an
 * `ArrayBuffer` (a caller's shared one would make WebCrypto throw a TypeError).
 *
 * @param {Uint8Array} bytes
 * @returns {BufferSource}
 */
export function bufferSource(bytes) {
  return /** @type {BufferSource} */ (bytes);
}
