/**
 * Ed25519 verification under signedws's strict acceptance rule (SPEC.md §8.2).
 *
 * Theory of operation
 * -------------------
 * Ed25519 implementations disagree on edge cases (non-canonical encodings,
 * small-order points, S >= L, cofactored or cofactorless equations), so a
 * signature one verifier accepts another may refuse. signedws fixes one answer:
 *
 * 1. the public key A and the signature are exactly 32 and 64 bytes;
 * 2. S (the last 32 bytes, little-endian) is < L;
 * 3. A and R are canonical encodings: their y field is < p, and no encoding of
 *    a point with x = 0 carries the sign bit;
 * 4. neither A nor R is one of the points of small order (order 1, 2, 4 or 8);
 * 5. the cofactorless equation [S]B = R + [k]A holds.
 *
 * Rules 1-4 are checked here, on bytes alone, in front of WebCrypto, which
 * checks rule 5 (BoringSSL in Chromium, OpenSSL in Node: both cofactorless).
 * The "sign bit on x = 0" half of rule 3 is enforced by the blocklist: the only
 * points with x = 0 are y = 1 and y = p - 1, both of small order, and their
 * sign-bit aliases are listed.
 *
 * @module signedws/ed25519
 */

import { toHex } from './bytes.js';

export const PUBLIC_KEY_SIZE = 32;
export const SIGNATURE_SIZE = 64;

/** The group order L. */
export const L = (1n << 252n) + 27742317777372353535851937790883648493n;
/** The field prime p. */
export const P = (1n << 255n) - 19n;
const Y_MASK = (1n << 255n) - 1n;

/**
 * The 14 encodings of points of order 1, 2, 4 or 8: 8 canonical and 6
 * non-canonical aliases (C2SP CCTV's list; `vectors/ed25519_rules.json`).
 */
export const SMALL_ORDER_ENCODINGS = Object.freeze(
  new Set([
    // canonical
    '0100000000000000000000000000000000000000000000000000000000000000', // order 1
    'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f', // order 2
    '0000000000000000000000000000000000000000000000000000000000000000', // order 4
    '0000000000000000000000000000000000000000000000000000000000000080', // order 4
    'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a', // order 8
    'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa', // order 8
    '26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05', // order 8
    '26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85', // order 8
    // non-canonical aliases
    '0100000000000000000000000000000000000000000000000000000000000080', // order 1, x=-0
    'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff', // order 2, x=-0
    'eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f', // order 1, y=p+1
    'eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff', // order 1, y=p+1
    'edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f', // order 4, y=p
    'edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff', // order 4, y=p
  ]),
);

/**
 * @param {Uint8Array} bytes
 * @returns {bigint} the bytes as a little-endian integer
 */
function littleEndian(bytes) {
  let value = 0n;
  for (let i = bytes.length - 1; i >= 0; i--) value = (value << 8n) | BigInt(bytes[i]);
  return value;
}

/**
 * Why a 32-byte point encoding breaks rules 3-4, or null if it does not.
 *
 * @param {Uint8Array} encoding
 * @returns {string | null}
 */
function pointProblem(encoding) {
  if (SMALL_ORDER_ENCODINGS.has(toHex(encoding))) return 'small-order point';
  if ((littleEndian(encoding) & Y_MASK) >= P) return 'non-canonical point encoding';
  return null;
}

/**
 * Check a public key against rules 1, 3 and 4.
 *
 * @param {Uint8Array} publicKey
 * @returns {string | null} null if acceptable, else a short reason for a log
 */
export function checkPublicKey(publicKey) {
  if (publicKey.length !== PUBLIC_KEY_SIZE) {
    return `public key is ${publicKey.length} bytes, not ${PUBLIC_KEY_SIZE}`;
  }
  return pointProblem(publicKey);
}

/**
 * Check a signature's encoding against rules 1-4 (R and S only).
 *
 * @param {Uint8Array} signature
 * @returns {string | null} null if acceptable, else a short reason for a log
 */
export function checkSignature(signature) {
  if (signature.length !== SIGNATURE_SIZE) {
    return `signature is ${signature.length} bytes, not ${SIGNATURE_SIZE}`;
  }
  if (littleEndian(signature.subarray(32)) >= L) return 'S >= L';
  const problem = pointProblem(signature.subarray(0, 32));
  return problem === null ? null : `R: ${problem}`;
}
