/**
 * The wire shapes of SPEC.md §5.2, §6.1 and §7.1: hello, client frame, server
 * frame. Each is a fixed-length canonical MessagePack array whose first element
 * is the version. This module decodes them strictly and encodes them; it knows
 * nothing about keys, so nothing it returns is authenticated.
 *
 * @module signedws/envelope
 */

import { utf8 } from './bytes.js';
import { decodeCanonical, encode, isUInt } from './codec.js';
import { Code, Rejected } from './errors.js';

/** @typedef {import('./codec.js').UInt} UInt */
/** @typedef {import('./errors.js').CodeInfo} CodeInfo */

/**
 * An application message: text (a MessagePack str), binary (bin) or `null`
 * (a control frame, or a pure acknowledgement).
 *
 * @typedef {string | Uint8Array | null} Payload
 */

export const VERSION = 1;

// Envelope kinds (SPEC.md §5.2, §6.1, §7.1).
export const KIND_CLIENT_MAC = 1;
export const KIND_CLIENT_ED25519 = 2;
export const HELLO = 3;
export const KIND_SERVER_MAC = 4;
export const KIND_SERVER_ED25519 = 5;

// Credential types (SPEC.md §4).
export const TYPE_TOKEN = 1;
export const TYPE_CERTIFICATE = 2;
export const TYPE_KEY_REFERENCE = 3;

export const NONCE_SIZE = 64;
export const STREAM_SIZE = 16;
export const MAX_CREDENTIAL_SIZE = 4096;
export const MAX_STRING_SIZE = 255;
export const MAX_LIST_ITEMS = 64;

/** Tag size by envelope kind. @type {Readonly<Record<number, number>>} */
export const TAG_SIZES = Object.freeze({
  [KIND_CLIENT_MAC]: 32,
  [KIND_CLIENT_ED25519]: 64,
  [KIND_SERVER_MAC]: 32,
  [KIND_SERVER_ED25519]: 64,
});

export const CLIENT_LABEL = utf8('signedws/v1 client\0');
export const SERVER_LABEL = utf8('signedws/v1 server\0');

/** Largest server frame a client accepts by default, bytes (SPEC.md §10). */
export const DEFAULT_MAX_SERVER_FRAME_SIZE = 1 << 20;

/** The WebSocket subprotocol of signedws v1 (SPEC.md §5.1). */
export const SUBPROTOCOL = 'signedws.v1';

// -- field checks, shared by every shape ------------------------------------

/**
 * @param {unknown} value
 * @param {string} name
 * @param {Readonly<CodeInfo>} code
 * @returns {UInt}
 */
export function uintField(value, name, code) {
  if (!isUInt(value)) throw new Rejected(code, `${name} is not a uint`);
  return value;
}

/**
 * A str of 1 to 255 UTF-8 bytes (SPEC.md §2.1).
 *
 * @param {unknown} value
 * @param {string} name
 * @param {Readonly<CodeInfo>} code
 * @returns {string}
 */
export function strField(value, name, code) {
  if (typeof value !== 'string') throw new Rejected(code, `${name} is not a str`);
  const size = utf8(value).length;
  if (size < 1 || size > MAX_STRING_SIZE) {
    throw new Rejected(code, `${name} is ${size} bytes, not 1-${MAX_STRING_SIZE}`);
  }
  return value;
}

/**
 * An array of distinct valid strs, at most `maxItems`.
 *
 * @param {unknown} value
 * @param {string} name
 * @param {Readonly<CodeInfo>} code
 * @param {number} maxItems
 * @returns {string[]}
 */
export function strSetField(value, name, code, maxItems) {
  if (!Array.isArray(value)) throw new Rejected(code, `${name} is not an array`);
  if (value.length > maxItems) {
    throw new Rejected(code, `${name} has ${value.length} items, over ${maxItems}`);
  }
  const items = value.map((item) => strField(item, name, code));
  if (new Set(items).size !== items.length) throw new Rejected(code, `${name} has duplicates`);
  return items;
}

/**
 * @param {unknown} value
 * @param {string} name
 * @param {number} [size]
 * @returns {Uint8Array}
 */
function binField(value, name, size) {
  if (!(value instanceof Uint8Array)) throw new Rejected(Code.malformed, `${name} is not a bin`);
  if (size !== undefined && value.length !== size) {
    throw new Rejected(Code.malformed, `${name} is ${value.length} bytes, not ${size}`);
  }
  return value;
}

/**
 * @param {unknown} value
 * @returns {Payload}
 */
function payloadField(value) {
  if (value !== null && typeof value !== 'string' && !(value instanceof Uint8Array)) {
    throw new Rejected(Code.malformed, 'payload is not a str, bin or nil');
  }
  return value;
}

/**
 * A peer-supplied value named for a log line without echoing its contents.
 *
 * @param {unknown} value
 * @returns {string}
 */
export function describe(value) {
  if (typeof value === 'number' && value >= 0 && value < 2 ** 16) return String(value);
  return `a ${value === null ? 'nil' : typeof value}`;
}

/** @param {unknown[]} fields */
function checkVersion(fields) {
  if (fields.length === 0) throw new Rejected(Code.malformed, 'empty array');
  if (fields[0] !== VERSION) {
    throw new Rejected(Code.unsupported_version, `version ${describe(fields[0])}`);
  }
}

/**
 * Encode `fields` (which end with a placeholder tag of `tagSize` bytes) and
 * cut the tag and its 2-byte header off: the bytes a tag is computed over.
 *
 * @param {ReadonlyArray<unknown>} fields
 * @param {number} tagSize
 * @returns {Uint8Array}
 */
export function seal(fields, tagSize) {
  const encoded = encode(fields);
  return encoded.subarray(0, encoded.length - (tagSize + 2));
}

// -- client frames (SPEC.md §6.1) -------------------------------------------

/**
 * A decoded, **unverified** client frame.
 *
 * @typedef {object} ClientFrame
 * @property {number} kind
 * @property {Uint8Array} credential
 * @property {Uint8Array} nonce
 * @property {UInt} counter
 * @property {UInt} timestampMs
 * @property {Uint8Array} stream
 * @property {UInt} seq
 * @property {Payload} payload
 * @property {Uint8Array} tag
 */

/**
 * Decode a client frame and check its structure (SPEC.md §6.4 steps 2-4),
 * without verifying it.
 *
 * @param {Uint8Array} data
 * @returns {ClientFrame}
 * @throws {Rejected} `malformed` or `unsupported_version`
 */
export function unverifiedClientFrame(data) {
  const fields = decodeCanonical(data);
  checkVersion(fields);
  if (fields.length !== 10) {
    throw new Rejected(Code.malformed, `client frame has ${fields.length} elements, not 10`);
  }
  const [, kind, cred, nonce, ctr, ts, stream, seq, payload, tag] = fields;
  if (kind !== KIND_CLIENT_MAC && kind !== KIND_CLIENT_ED25519) {
    throw new Rejected(Code.malformed, `kind ${describe(kind)} is not a client frame kind`);
  }
  const credential = binField(cred, 'cred');
  if (credential.length > MAX_CREDENTIAL_SIZE) {
    throw new Rejected(
      Code.malformed,
      `cred is ${credential.length} bytes, over ${MAX_CREDENTIAL_SIZE}`,
    );
  }
  const counter = uintField(ctr, 'ctr', Code.malformed);
  if (counter === 0) throw new Rejected(Code.malformed, 'ctr is 0');
  const number = uintField(seq, 'seq', Code.malformed);
  const body = payloadField(payload);
  if ((number === 0) !== (body === null)) {
    throw new Rejected(Code.malformed, 'seq must be 0 exactly for a nil payload');
  }
  return {
    kind,
    credential,
    nonce: binField(nonce, 'nonce', NONCE_SIZE),
    counter,
    timestampMs: uintField(ts, 'ts', Code.malformed),
    stream: binField(stream, 'stream', STREAM_SIZE),
    seq: number,
    payload: body,
    tag: binField(tag, 'tag', TAG_SIZES[kind]),
  };
}

// -- server frames (SPEC.md §7.1) -------------------------------------------

/**
 * A decoded server frame, unverified until `Signer.verify` returns it.
 *
 * @typedef {object} ServerFrame
 * @property {number} kind
 * @property {string} keyId
 * @property {Uint8Array} nonce
 * @property {UInt} counter
 * @property {UInt} ack
 * @property {UInt} timestampMs
 * @property {Payload} payload
 * @property {Uint8Array} tag
 */

/**
 * Decode a server frame and check its structure (SPEC.md §7.2 step 1).
 *
 * @param {Uint8Array} data
 * @returns {ServerFrame}
 * @throws {Rejected} `malformed` or `unsupported_version`
 */
export function unverifiedServerFrame(data) {
  const fields = decodeCanonical(data);
  checkVersion(fields);
  if (fields.length !== 9) {
    throw new Rejected(Code.malformed, `server frame has ${fields.length} elements, not 9`);
  }
  const [, kind, keyId, nonce, ctr, ack, ts, payload, tag] = fields;
  if (kind !== KIND_SERVER_MAC && kind !== KIND_SERVER_ED25519) {
    throw new Rejected(Code.malformed, `kind ${describe(kind)} is not a server frame kind`);
  }
  const frame = {
    kind,
    keyId: strField(keyId, 'key_id', Code.malformed),
    nonce: binField(nonce, 'nonce', NONCE_SIZE),
    counter: uintField(ctr, 'ctr', Code.malformed),
    ack: uintField(ack, 'ack', Code.malformed),
    timestampMs: uintField(ts, 'ts', Code.malformed),
    payload: payloadField(payload),
    tag: binField(tag, 'tag', TAG_SIZES[kind]),
  };
  if (frame.counter === 0) throw new Rejected(Code.malformed, 'ctr is 0');
  return frame;
}

// -- hello (SPEC.md §5.2) ---------------------------------------------------

/**
 * The server's first message. It is not authenticated (SPEC.md §11.6).
 *
 * @typedef {object} Hello
 * @property {Uint8Array} nonce
 * @property {string} audience
 * @property {UInt} serverTimeMs
 * @property {UInt} maxFrameSize
 * @property {UInt} window
 */

/**
 * @param {Hello} hello
 * @returns {Uint8Array}
 */
export function encodeHello(hello) {
  return encode([
    VERSION,
    HELLO,
    hello.nonce,
    hello.audience,
    hello.serverTimeMs,
    hello.maxFrameSize,
    hello.window,
  ]);
}

/**
 * Decode a hello and check its structure.
 *
 * @param {Uint8Array} data
 * @returns {Hello}
 * @throws {Rejected} `malformed` or `unsupported_version`
 */
export function decodeHello(data) {
  const fields = decodeCanonical(data);
  checkVersion(fields);
  if (fields.length !== 7 || fields[1] !== HELLO) throw new Rejected(Code.malformed, 'not a hello');
  const [, , nonce, aud, nowMs, maxFrame, window] = fields;
  return {
    nonce: binField(nonce, 'nonce', NONCE_SIZE),
    audience: strField(aud, 'aud', Code.malformed),
    serverTimeMs: uintField(nowMs, 'time', Code.malformed),
    maxFrameSize: uintField(maxFrame, 'max_frame', Code.malformed),
    window: uintField(window, 'window', Code.malformed),
  };
}
