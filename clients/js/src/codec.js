/**
 * Canonical MessagePack (SPEC.md §2), on top of `@msgpack/msgpack`.
 *
 * Theory of operation
 * -------------------
 * Encoding: every signedws structure is an array of non-negative integers,
 * strings, byte strings, nil and arrays of strings. `@msgpack/msgpack` already
 * writes each of them in its shortest form (fixint, uint 8/16/32, fixstr,
 * str 8/16/32, bin 8/16/32). Integers need care: with `useBigInt64` the library
 * writes every `bigint` as uint 64/int 64 and every safe `number` at or above
 * 2^32 as a float, so `prepare` hands it numbers below 2^32 (and above -2^31)
 * and bigints beyond, which is the canonical split.
 *
 * Decoding is strict (SPEC.md §2 "Decoding"): one value, no trailing bytes,
 * an array of 1 to 64 elements (the library's `maxArrayLength` refuses a longer
 * array while decoding), each nil, a uint, a valid UTF-8 str or a bin, or an
 * array of such values only where the shape has a `[str]` (a credential's
 * `scopes` and `aud`); then the value is re-encoded canonically and must give
 * back the input bytes. The re-encoding is used for nothing else, and only on a
 * value that passed the rest. Values that never appear in signedws but that the
 * library would decode are kept as opaque markers (floats as `FloatValue`, empty
 * maps, zero-length extensions as `ExtValue`) and refused by the type check;
 * non-empty maps and extensions with data fail to decode.
 *
 * Integers come out as `number` when they are safe integers and as `bigint`
 * beyond (`UInt`): one representation per value, so `===` compares them.
 *
 * @module signedws/codec
 */

import { Decoder, Encoder, ExtData } from '@msgpack/msgpack';
import { Code, Rejected, UsageError } from './errors.js';

/**
 * A MessagePack non-negative integer: a `number` up to 2^53 - 1, a `bigint`
 * from 2^53 to 2^64 - 1.
 *
 * @typedef {number | bigint} UInt
 */

export const MAX_UINT64 = (1n << 64n) - 1n;
const MAX_NESTING = 1024;
/** No structure has a longer array (SPEC.md §2): a longer one fails decoding. */
export const MAX_ARRAY_ITEMS = 64;
const UINT32_LIMIT = 2 ** 32;
const INT32_MIN = -(2 ** 31);

/** A float read from the wire, raw bits kept. Never valid in signedws. */
export class FloatValue {
  /** @param {Uint8Array} raw @param {boolean} single */
  constructor(raw, single) {
    this.raw = raw;
    this.single = single;
  }
}

/** A zero-length extension value read from the wire. Never valid in signedws. */
export class ExtValue {
  /** @param {number} type */
  constructor(type) {
    this.type = type;
  }
}

/** @type {import('@msgpack/msgpack').ExtensionCodecType<undefined>} */
const extensionCodec = {
  // Only zero-length extensions are decoded (as Python's max_ext_len=0);
  // the timestamp type -1 has no zero-length form.
  decode(data, extensionType) {
    if (data.length > 0 || extensionType === -1) throw new RangeError('extension type');
    return new ExtValue(extensionType);
  },
  tryToEncode(object) {
    return object instanceof ExtValue ? new ExtData(object.type, new Uint8Array(0)) : null;
  },
};

/**
 * The library's decoder, keeping floats as `FloatValue` so that their bytes
 * can be compared. (readF32/readF64 are the decoder's only float readers in
 * the pinned version; `test/codec.test.js` pins the behaviour.)
 */
// @ts-expect-error readF32/readF64 are private in the library's types (see above).
class StrictDecoder extends Decoder {
  constructor() {
    super({
      useBigInt64: true,
      extensionCodec,
      maxArrayLength: MAX_ARRAY_ITEMS,
      mapKeyConverter: () => {
        throw new RangeError('map');
      },
    });
  }

  readF32() {
    const self = /** @type {any} */ (this);
    const raw = self.bytes.slice(self.pos, self.pos + 4);
    self.pos += 4;
    return new FloatValue(raw, true);
  }

  readF64() {
    const self = /** @type {any} */ (this);
    const raw = self.bytes.slice(self.pos, self.pos + 8);
    self.pos += 8;
    return new FloatValue(raw, false);
  }
}

/** The library's encoder, writing `FloatValue`s back as float 64. */
// @ts-expect-error doEncode is private in the library's types; overriding it is the point.
class CanonicalEncoder extends Encoder {
  constructor() {
    super({ useBigInt64: true, extensionCodec, maxDepth: MAX_NESTING + 1, initialBufferSize: 256 });
  }

  /** @param {unknown} object @param {number} depth */
  doEncode(object, depth) {
    if (object instanceof FloatValue) {
      const self = /** @type {any} */ (this);
      self.ensureBufferSizeToWrite(9);
      self.writeU8(0xcb);
      if (object.single) {
        // msgpack-python reads a float 32 as a double and writes a float 64.
        const view = new DataView(object.raw.buffer, object.raw.byteOffset, 4);
        self.writeF64(view.getFloat32(0));
      } else {
        self.bytes.set(object.raw, self.pos);
        self.pos += 8;
      }
      return;
    }
    // @ts-expect-error the library types doEncode as a private field, not a method.
    super.doEncode(object, depth);
  }
}

const decoder = new StrictDecoder();
const encoder = new CanonicalEncoder();

/**
 * @param {unknown} value
 * @param {number} depth
 * @returns {unknown} `value` with integers in the form the encoder writes canonically
 */
function prepare(value, depth) {
  switch (typeof value) {
    case 'number':
      if (!Number.isSafeInteger(value)) throw new UsageError('only integers are encoded');
      return value >= UINT32_LIMIT || value < INT32_MIN ? BigInt(value) : value;
    case 'bigint':
      if (value > MAX_UINT64 || value < -(1n << 63n)) throw new UsageError('integer out of range');
      return value < BigInt(UINT32_LIMIT) && value >= BigInt(INT32_MIN) ? Number(value) : value;
    case 'string':
    case 'boolean':
      return value;
    default:
      break;
  }
  if (value === null || value instanceof Uint8Array) return value;
  if (Array.isArray(value)) {
    if (depth >= MAX_NESTING) throw new UsageError('nested too deeply');
    return value.map((item) => prepare(item, depth + 1));
  }
  if (value instanceof FloatValue || value instanceof ExtValue) return value;
  if (isEmptyMap(value)) return value;
  throw new UsageError(`cannot encode a ${typeof value}`);
}

/** @param {unknown} value */
function isEmptyMap(value) {
  return (
    typeof value === 'object' &&
    value !== null &&
    Object.getPrototypeOf(value) === Object.prototype &&
    Object.keys(value).length === 0
  );
}

/**
 * Encode an array canonically.
 *
 * @param {ReadonlyArray<unknown>} fields integers (`number` or `bigint`),
 *   strings, `Uint8Array`s, `null` and arrays of these
 * @returns {Uint8Array}
 */
export function encode(fields) {
  return encoder.encode(prepare(fields, 0)).slice();
}

/**
 * @param {unknown} value a decoded value
 * @param {number} depth
 * @returns {unknown} the value with safe bigints as numbers and strings checked
 */
function normalize(value, depth) {
  if (typeof value === 'bigint') {
    return value <= BigInt(Number.MAX_SAFE_INTEGER) && value >= BigInt(Number.MIN_SAFE_INTEGER)
      ? Number(value)
      : value;
  }
  if (typeof value === 'string') {
    // Lone surrogates come from invalid UTF-8 (encoded surrogates), which
    // Python refuses; the library's decoder lets them through.
    if (!isWellFormed(value)) throw new RangeError('invalid UTF-8');
    return value;
  }
  if (Array.isArray(value)) {
    if (depth >= MAX_NESTING) throw new RangeError('nested too deeply');
    for (let i = 0; i < value.length; i++) value[i] = normalize(value[i], depth + 1);
  }
  return value;
}

/** @param {string} text */
function isWellFormed(text) {
  const wellFormed = /** @type {any} */ (String.prototype).isWellFormed;
  if (wellFormed) return wellFormed.call(text);
  return !/[\ud800-\udbff](?![\udc00-\udfff])|(?:[^\ud800-\udbff]|^)[\udc00-\udfff]/.test(text);
}

/**
 * Whether `value` is of a type a field may hold: nil, uint, str or bin.
 *
 * @param {unknown} value
 */
function isScalar(value) {
  return (
    value === null ||
    typeof value === 'string' ||
    value instanceof Uint8Array ||
    (typeof value === 'number' && Number.isInteger(value) && value >= 0) ||
    (typeof value === 'bigint' && value >= 0n)
  );
}

/**
 * Decode one structure (SPEC.md §2 "Decoding").
 *
 * @param {Uint8Array} data the exact received bytes
 * @param {Readonly<import('./errors.js').CodeInfo>} [code] the code to reject
 *   with (`malformed` for envelopes, `credential_malformed` for credentials)
 * @param {ReadonlySet<number>} [arraysAt] the indexes at which the shape has a
 *   `[str]` (a credential's `scopes` and `aud`): there, and only there, an
 *   element may be an array (of at most 64 scalar values)
 * @returns {unknown[]} the decoded array
 * @throws {Rejected} if `data` is not exactly one canonical MessagePack array
 *   of 1 to 64 such elements
 */
export function decodeCanonical(data, code = Code.malformed, arraysAt = NO_ARRAYS) {
  let value;
  try {
    value = normalize(decoder.decode(data), 0);
  } catch (error) {
    throw new Rejected(code, `not a MessagePack value: ${errorName(error)}`);
  }
  if (!Array.isArray(value)) throw new Rejected(code, 'not an array');
  if (value.length === 0) throw new Rejected(code, 'empty array');
  for (let i = 0; i < value.length; i++) {
    const item = value[i];
    if (Array.isArray(item) && arraysAt.has(i)) {
      if (item.every(isScalar)) continue;
      throw new Rejected(code, `element ${i} holds a value of a type that never appears`);
    }
    if (!isScalar(item)) throw new Rejected(code, `element ${i} is not nil, a uint, a str or a bin`);
  }
  let again;
  try {
    again = encoder.encode(prepare(value, 0));
  } catch (error) {
    throw new Rejected(code, `not a MessagePack value: ${errorName(error)}`);
  }
  if (!sameBytes(again, data)) throw new Rejected(code, 'not canonical MessagePack');
  return value;
}

/** @type {ReadonlySet<number>} */
const NO_ARRAYS = new Set();

/** @param {unknown} error */
function errorName(error) {
  return error instanceof Error ? error.name : typeof error;
}

/** @param {Uint8Array} a @param {Uint8Array} b */
function sameBytes(a, b) {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * A canonical integer value: a safe `number`, or a `bigint` beyond 2^53 - 1.
 *
 * @param {number | bigint | string} value (strings: decimal digits, as the
 *   vectors write integers above 2^53 - 1)
 * @returns {UInt}
 */
export function toUInt(value) {
  const big = BigInt(value);
  if (big < 0n || big > MAX_UINT64) throw new UsageError('not a uint');
  return big <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(big) : big;
}

/**
 * `x + 1` for a uint, in its canonical representation.
 *
 * @param {UInt} value
 * @returns {UInt}
 */
export function increment(value) {
  return toUInt(BigInt(value) + 1n);
}

/**
 * Whether `value` is a decoded MessagePack uint.
 *
 * @param {unknown} value
 * @returns {value is UInt}
 */
export function isUInt(value) {
  return (typeof value === 'number' && Number.isInteger(value) && value >= 0) ||
    (typeof value === 'bigint' && value >= 0n);
}
