/**
 * Authenticated broadcast frames (SPEC.md §14), sans I/O: the mirror of the
 * Python `signedws.broadcast`.
 *
 * A server makes one `Broadcast` per message of a topic: the body (topic,
 * per-topic sequence number `tseq`, time, payload) is encoded and hashed once.
 * Each recipient then costs a **binding** of that hash to its connection's
 * nonce and server counter: one HMAC under the frame key (`mac`), or, for a
 * batch of `ed25519` connections, one signature over the root of a hash tree
 * of their bindings, each frame carrying its leaf's path.
 *
 * A client checks a broadcast frame with `checkBroadcast` (pure: nothing
 * changes) and commits it; `Signer.verifyBroadcast` does both against the
 * connection's server counter and the client's `Topics`.
 *
 * @module signedws/broadcast
 */

import { concat, lengthPrefixed, uint64Bytes, utf8 } from './bytes.js';
import { MAX_UINT64, decodeCanonical, encode, isUInt, toUInt } from './codec.js';
import { DEFAULT_MAX_SERVER_FRAME_SIZE, NONCE_SIZE, VERSION, describe, strField, uintField } from './envelope.js';
import { Code, Rejected, UsageError } from './errors.js';
import { Ed25519PublicKey, HMACKey } from './keys.js';

/** @typedef {import('./codec.js').UInt} UInt */
/** @typedef {{kid: string, privateKey: import('./keys.js').Ed25519PrivateKey}} ServerKey */

export const KIND_BROADCAST_MAC = 6;
export const KIND_BROADCAST_ED25519 = 7;
export const KIND_BROADCAST_BODY = 8;

export const BODY_LABEL = utf8('signedws/v1 broadcast-body\0');
export const BINDING_LABEL = utf8('signedws/v1 broadcast\0');
export const ROOT_LABEL = utf8('signedws/v1 broadcast-root\0');

/** Longest authentication path a client accepts, in 32-byte hashes (§14.5). */
export const MAX_PATH_HASHES = 32;
/** How many topic marks a client keeps by default (§14.5). */
export const DEFAULT_MAX_TOPICS = 4096;

/** @type {Readonly<Record<number, number>>} */
const TAG_SIZES = Object.freeze({ [KIND_BROADCAST_MAC]: 32, [KIND_BROADCAST_ED25519]: 64 });

/**
 * @param {Uint8Array} data
 * @returns {Promise<Uint8Array>}
 */
async function sha256(data) {
  const api = globalThis.crypto?.subtle;
  if (!api) throw new UsageError('WebCrypto (crypto.subtle) is not available: use https or localhost');
  return new Uint8Array(await api.digest('SHA-256', /** @type {BufferSource} */ (data)));
}

/**
 * Bytewise order of two hashes.
 *
 * @param {Uint8Array} a
 * @param {Uint8Array} b
 * @returns {boolean} whether `a <= b`
 */
function lessOrEqual(a, b) {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i] < b[i];
  return true;
}

/**
 * `node(a, b)` of §14.2: `SHA-256(0x01 || min || max)`.
 *
 * @param {Uint8Array} a
 * @param {Uint8Array} b
 */
function node(a, b) {
  return lessOrEqual(a, b) ? sha256(concat(new Uint8Array([1]), a, b)) : sha256(concat(new Uint8Array([1]), b, a));
}

/**
 * The root a leaf and its path lead to (§14.2).
 *
 * @param {Uint8Array} leaf
 * @param {Uint8Array} path
 * @returns {Promise<Uint8Array>}
 */
export async function fold(leaf, path) {
  let current = leaf;
  for (let i = 0; i < path.length; i += 32) current = await node(current, path.subarray(i, i + 32));
  return current;
}

/**
 * The root of `leaves` and each leaf's path (§14.3 steps 6 and 8).
 *
 * @param {Uint8Array[]} leaves
 * @returns {Promise<[Uint8Array, Uint8Array[]]>}
 */
async function tree(leaves) {
  const levels = [leaves];
  let level = leaves;
  while (level.length > 1) {
    /** @type {Promise<Uint8Array>[]} */
    const up = [];
    for (let i = 0; i + 1 < level.length; i += 2) up.push(node(level[i], level[i + 1]));
    const next = await Promise.all(up);
    if (level.length % 2) next.push(level[level.length - 1]); // an odd last node is carried up
    levels.push(next);
    level = next;
  }
  const root = level[0];
  /** @type {Uint8Array[]} */
  let suffix = [new Uint8Array(0)];
  for (const nodes of levels.slice(0, -1).reverse()) {
    suffix = nodes.map((_, j) => ((j ^ 1) < nodes.length ? concat(nodes[j ^ 1], suffix[j >> 1]) : suffix[j >> 1]));
  }
  return [root, suffix];
}

/** @param {string} audience */
function prefixes(audience) {
  const aud = lengthPrefixed(utf8(audience));
  return { body: concat(BODY_LABEL, aud), binding: concat(BINDING_LABEL, aud), root: concat(ROOT_LABEL, aud) };
}

/**
 * A decoded broadcast body.
 *
 * @typedef {object} BroadcastBody
 * @property {string} topic
 * @property {UInt} tseq
 * @property {UInt} timestampMs
 * @property {string | Uint8Array} payload
 */

/**
 * Decode a body and check its shape (§14.4 step 2).
 *
 * @param {Uint8Array} data
 * @returns {BroadcastBody}
 * @throws {Rejected} `malformed` or `unsupported_version`
 */
export function parseBody(data) {
  const fields = decodeCanonical(data);
  if (fields.length === 0) throw new Rejected(Code.malformed, 'empty body');
  if (fields[0] !== VERSION) throw new Rejected(Code.unsupported_version, `body version ${describe(fields[0])}`);
  if (fields.length !== 6) throw new Rejected(Code.malformed, `body has ${fields.length} elements, not 6`);
  const [, kind, topic, tseq, ts, payload] = fields;
  if (kind !== KIND_BROADCAST_BODY) throw new Rejected(Code.malformed, `body kind ${describe(kind)}`);
  const name = strField(topic, 'topic', Code.malformed);
  const number = uintField(tseq, 'tseq', Code.malformed);
  if (number === 0) throw new Rejected(Code.malformed, 'tseq is 0');
  const timestampMs = uintField(ts, 'ts', Code.malformed);
  if (typeof payload !== 'string' && !(payload instanceof Uint8Array)) {
    throw new Rejected(Code.malformed, 'body payload is not a str or bin');
  }
  return { topic: name, tseq: number, timestampMs, payload };
}

/** One message of a topic, encoded and hashed once (§14.3 steps 1-2). Use `Broadcast.create`. */
export class Broadcast {
  /**
   * @param {string} topic
   * @param {UInt} tseq
   * @param {Uint8Array} body
   * @param {Uint8Array} bodyHash
   * @param {string} audience
   * @param {ReturnType<typeof prefixes>} prefix
   */
  constructor(topic, tseq, body, bodyHash, audience, prefix) {
    /** @readonly */
    this.topic = topic;
    /** @readonly */
    this.tseq = tseq;
    /** @readonly */
    this.body = body;
    /** @readonly */
    this.bodyHash = bodyHash;
    /** @readonly */
    this.audience = audience;
    /** @private */
    this._prefix = prefix;
  }

  /**
   * @param {string} topic 1 to 255 UTF-8 bytes
   * @param {number | bigint} tseq the message's number in the topic, from 1
   * @param {string | Uint8Array} payload
   * @param {{audience: string, now: number}} options the server's audience;
   *   the publisher's clock, seconds
   * @returns {Promise<Broadcast>}
   * @throws {UsageError} for an invalid topic, tseq or payload
   */
  static async create(topic, tseq, payload, { audience, now }) {
    try {
      strField(topic, 'topic', Code.malformed);
      strField(audience, 'audience', Code.malformed);
    } catch (error) {
      throw new UsageError(/** @type {Rejected} */ (error).detail);
    }
    if (!isUInt(tseq) || BigInt(tseq) < 1n || BigInt(tseq) > MAX_UINT64) {
      throw new UsageError('tseq must be an integer from 1 to 2**64-1');
    }
    if (typeof payload !== 'string' && !(payload instanceof Uint8Array)) {
      throw new UsageError('payload must be a string or a Uint8Array');
    }
    const number = toUInt(tseq);
    const body = encode([VERSION, KIND_BROADCAST_BODY, topic, number, Math.trunc(now * 1000), payload]);
    const prefix = prefixes(audience);
    return new Broadcast(topic, number, body, await sha256(concat(prefix.body, body)), audience, prefix);
  }

  /**
   * The binding input of one connection (§14.2).
   *
   * @param {Uint8Array} nonce
   * @param {UInt} counter
   * @returns {Uint8Array}
   */
  binding(nonce, counter) {
    return concat(this._prefix.binding, nonce, uint64Bytes(counter), this.bodyHash);
  }

  /**
   * The frame for one `mac` connection (§14.3 steps 3-4).
   *
   * @param {Uint8Array} nonce
   * @param {UInt} counter
   * @param {string} cid
   * @param {HMACKey} frameKey
   * @returns {Promise<Uint8Array>}
   */
  async macFrame(nonce, counter, cid, frameKey) {
    const tag = await frameKey.mac(this.binding(nonce, counter));
    return encode([VERSION, KIND_BROADCAST_MAC, cid, nonce, counter, this.body, new Uint8Array(0), tag]);
  }

  /**
   * The frames for one batch of `ed25519` connections, one signature for all
   * (§14.3 steps 5-8).
   *
   * @param {Array<[Uint8Array, UInt]>} recipients each connection's nonce and counter
   * @param {ServerKey} serverKey
   * @returns {Promise<Uint8Array[]>}
   * @throws {UsageError} for an empty batch
   */
  async ed25519Frames(recipients, serverKey) {
    if (recipients.length === 0) throw new UsageError('a batch has at least one recipient');
    const leaves = await Promise.all(
      recipients.map(([nonce, counter]) => sha256(concat(new Uint8Array([0]), this.binding(nonce, counter)))),
    );
    const [root, paths] = await tree(leaves);
    const tag = await serverKey.privateKey.sign(concat(this._prefix.root, root));
    return recipients.map(([nonce, counter], i) =>
      encode([VERSION, KIND_BROADCAST_ED25519, serverKey.kid, nonce, counter, this.body, paths[i], tag]),
    );
  }

  toString() {
    return `Broadcast(topic=${JSON.stringify(this.topic)}, tseq=${this.tseq}, body=${this.body.length} bytes)`;
  }
}

/** How many `ed25519` recipients share one signature by default (§14.3). */
export const DEFAULT_BATCH_SIZE = 256;

/**
 * Fans broadcasts out to the server sessions of one audience (§14.3), as the
 * Python `Broadcaster`: each session's next server counter, one HMAC per
 * `mac` session, one signature per batch of `ed25519` sessions.
 */
export class Broadcaster {
  /**
   * @param {string} audience the server's audience
   * @param {{serverKey?: ServerKey | null, batchSize?: number}} [options]
   *   the key to sign `ed25519` batches with (without one, `ed25519`
   *   sessions get no frame); recipients per signature
   * @throws {UsageError} for an invalid audience or batch size
   */
  constructor(audience, { serverKey = null, batchSize = DEFAULT_BATCH_SIZE } = {}) {
    try {
      strField(audience, 'audience', Code.malformed);
    } catch (error) {
      throw new UsageError(/** @type {Rejected} */ (error).detail);
    }
    if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > 2 ** MAX_PATH_HASHES) {
      throw new UsageError('batchSize must be an integer from 1 to 2**32');
    }
    /** @readonly */
    this.audience = audience;
    /** @readonly */
    this.serverKey = serverKey;
    /** @readonly */
    this.batchSize = batchSize;
  }

  /**
   * A `Broadcast` for this audience.
   *
   * @param {string} topic
   * @param {number | bigint} tseq
   * @param {string | Uint8Array} payload
   * @param {{now: number}} options
   */
  message(topic, tseq, payload, { now }) {
    return Broadcast.create(topic, tseq, payload, { audience: this.audience, now });
  }

  /**
   * The frame of `message` for each session, taking each one's next server
   * counter (synchronously, in order, before any await); `null` for a
   * session that cannot be sent a server frame yet, or an `ed25519` one
   * without a server key.
   *
   * @param {Broadcast} message
   * @param {import('./server.js').ServerSession[]} sessions
   * @returns {Promise<Array<Uint8Array | null>>}
   */
  async frames(message, sessions) {
    if (message.audience !== this.audience) throw new UsageError('the message was made for another audience');
    /** @type {Array<Promise<Uint8Array> | null>} */
    const macs = [];
    /** @type {Array<Array<[number, Uint8Array, UInt]>>} */
    const batches = [];
    /** @type {Array<[number, Uint8Array, UInt]>} */
    let batch = [];
    sessions.forEach((session, i) => {
      const credential = session.verifierState.credential;
      macs.push(null);
      if (credential === null) return;
      if (credential.frameKey !== null) {
        macs[i] = message.macFrame(session.nonce, session.claimCounter(), credential.cid, credential.frameKey);
      } else if (this.serverKey !== null) {
        batch.push([i, session.nonce, session.claimCounter()]);
        if (batch.length === this.batchSize) {
          batches.push(batch);
          batch = [];
        }
      }
    });
    if (batch.length > 0) batches.push(batch);
    /** @type {Array<Uint8Array | null>} */
    const frames = await Promise.all(macs);
    const serverKey = /** @type {ServerKey} */ (this.serverKey);
    for (const group of batches) {
      const made = await message.ed25519Frames(group.map(([, nonce, counter]) => [nonce, counter]), serverKey);
      group.forEach(([i], j) => {
        frames[i] = made[j];
      });
    }
    return frames;
  }
}

/**
 * A decoded broadcast frame; unverified until `checkBroadcast` returns.
 *
 * @typedef {object} BroadcastFrame
 * @property {number} kind
 * @property {string} keyId
 * @property {Uint8Array} nonce
 * @property {UInt} counter
 * @property {Uint8Array} body
 * @property {Uint8Array} path
 * @property {Uint8Array} tag
 * @property {BroadcastBody} message
 */

/**
 * @param {unknown} value
 * @returns {value is Uint8Array}
 */
function isBin(value) {
  return value instanceof Uint8Array;
}

/**
 * Decode a broadcast frame and its body (§14.4 steps 1-2).
 *
 * @param {Uint8Array} data
 * @param {{maxSize?: number}} [options]
 * @returns {BroadcastFrame}
 * @throws {Rejected} `frame_too_large`, `malformed` or `unsupported_version`
 */
export function parseBroadcastFrame(data, { maxSize = DEFAULT_MAX_SERVER_FRAME_SIZE } = {}) {
  if (data.length > maxSize) throw new Rejected(Code.frame_too_large, `broadcast frame of ${data.length} bytes`);
  const fields = decodeCanonical(data);
  if (fields.length === 0) throw new Rejected(Code.malformed, 'empty array');
  if (fields[0] !== VERSION) throw new Rejected(Code.unsupported_version, `version ${describe(fields[0])}`);
  if (fields.length !== 8) throw new Rejected(Code.malformed, `broadcast frame has ${fields.length} elements, not 8`);
  const [, kind, keyId, nonce, ctr, body, path, tag] = fields;
  if (kind !== KIND_BROADCAST_MAC && kind !== KIND_BROADCAST_ED25519) {
    throw new Rejected(Code.malformed, `kind ${describe(kind)} is not a broadcast kind`);
  }
  const id = strField(keyId, 'key_id', Code.malformed);
  if (!isBin(nonce) || nonce.length !== NONCE_SIZE) throw new Rejected(Code.malformed, `nonce is not a bin(${NONCE_SIZE})`);
  const counter = uintField(ctr, 'ctr', Code.malformed);
  if (counter === 0) throw new Rejected(Code.malformed, 'ctr is 0');
  if (!isBin(body)) throw new Rejected(Code.malformed, 'body is not a bin');
  if (!isBin(path) || path.length % 32 !== 0 || path.length > 32 * MAX_PATH_HASHES) {
    throw new Rejected(Code.malformed, `path is not a bin of up to ${MAX_PATH_HASHES} hashes`);
  }
  if (kind === KIND_BROADCAST_MAC && path.length > 0) throw new Rejected(Code.malformed, 'a mac broadcast has an empty path');
  if (!isBin(tag) || tag.length !== TAG_SIZES[kind]) throw new Rejected(Code.malformed, `tag is not a bin(${TAG_SIZES[kind]})`);
  return { kind, keyId: id, nonce, counter, body, path, tag, message: parseBody(body) };
}

/**
 * A verified broadcast.
 *
 * @typedef {object} BroadcastMessage
 * @property {UInt} counter the connection's server counter the frame carried
 * @property {string} topic
 * @property {UInt} tseq the message's number in the topic
 * @property {UInt} missed how many of the topic's messages were skipped since
 *   the last one this client received (a gap); 0 for a topic's first message
 * @property {string | Uint8Array} payload
 * @property {UInt} timestampMs the publisher's time
 */

/**
 * The client's topic marks (§14.4): per topic, the highest `tseq` delivered.
 * Keep one for the life of the client, across reconnects. Bounded: past
 * `maxTopics` the least recently delivered topic's mark is dropped (§14.5).
 */
export class Topics {
  /**
   * @param {Record<string, number | bigint> | Map<string, number | bigint>} [marks]
   * @param {{maxTopics?: number}} [options]
   * @throws {UsageError} for an invalid mark or bound
   */
  constructor(marks = {}, { maxTopics = DEFAULT_MAX_TOPICS } = {}) {
    if (!Number.isInteger(maxTopics) || maxTopics < 1) throw new UsageError('maxTopics must be a positive integer');
    /** @readonly */
    this.maxTopics = maxTopics;
    /** @private @type {Map<string, UInt>} */
    this._marks = new Map();
    for (const [topic, tseq] of marks instanceof Map ? marks : Object.entries(marks)) {
      if (!isUInt(tseq) || BigInt(tseq) < 1n || BigInt(tseq) > MAX_UINT64) {
        throw new UsageError('a mark is an integer from 1 to 2**64-1');
      }
      this._commit(topic, toUInt(tseq));
    }
  }

  /**
   * @param {string} topic
   * @returns {UInt | undefined} the highest `tseq` delivered for `topic`
   */
  mark(topic) {
    return this._marks.get(topic);
  }

  get size() {
    return this._marks.size;
  }

  /** @returns {string[]} the topics with a mark, least recently delivered first */
  topics() {
    return [...this._marks.keys()];
  }

  /**
   * @private
   * @param {string} topic
   * @param {UInt} tseq
   */
  _commit(topic, tseq) {
    this._marks.delete(topic);
    this._marks.set(topic, tseq);
    while (this._marks.size > this.maxTopics) {
      this._marks.delete(/** @type {string} */ (this._marks.keys().next().value));
    }
  }

  /**
   * Record a verified message as delivered (§14.4 step 9).
   *
   * @param {BroadcastMessage} message
   */
  commit(message) {
    this._commit(message.topic, message.tseq);
  }

  toString() {
    return `Topics(${this._marks.size} topics)`;
  }
}

/** @param {Uint8Array} a @param {Uint8Array} b */
function sameBytes(a, b) {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * Verify a broadcast frame (§14.4 steps 1-8). Changes nothing: the caller
 * commits the result (its server counter, and `Topics.commit`).
 *
 * @param {Uint8Array} data the exact bytes received
 * @param {object} options
 * @param {string} options.audience the server's audience
 * @param {Uint8Array} options.nonce the connection nonce
 * @param {UInt} options.serverCounter the highest server counter received on the connection
 * @param {boolean} options.mac whether the client's scheme is `mac` (else `ed25519`)
 * @param {Map<string, HMACKey>} options.frameKeys the frame keys the client holds, by cid
 * @param {Map<string, Ed25519PublicKey>} options.serverKeys the server public keys, by id
 * @param {Topics} options.topics the client's topic marks
 * @param {number} [options.maxSize]
 * @returns {Promise<BroadcastMessage>}
 * @throws {Rejected} with the code of the first failing step
 */
export async function checkBroadcast(data, { audience, nonce, serverCounter, mac, frameKeys, serverKeys, topics, maxSize }) {
  const frame = parseBroadcastFrame(data, { maxSize });
  if (frame.kind !== (mac ? KIND_BROADCAST_MAC : KIND_BROADCAST_ED25519)) {
    throw new Rejected(Code.scheme_mismatch, `broadcast kind ${frame.kind}`);
  }
  if (!sameBytes(frame.nonce, nonce)) throw new Rejected(Code.nonce_mismatch, "not this connection's nonce");
  if (frame.counter <= serverCounter) {
    throw new Rejected(Code.replay, `server counter ${frame.counter} not above ${serverCounter}`);
  }
  const body = frame.message;
  const mark = topics.mark(body.topic);
  if (mark !== undefined && body.tseq <= mark) {
    throw new Rejected(Code.replay, `tseq ${body.tseq} not above the topic's mark ${mark}`);
  }
  const prefix = prefixes(audience);
  const binding = concat(prefix.binding, nonce, uint64Bytes(frame.counter), await sha256(concat(prefix.body, frame.body)));
  if (frame.kind === KIND_BROADCAST_MAC) {
    const frameKey = frameKeys.get(frame.keyId);
    if (frameKey === undefined) throw new Rejected(Code.unknown_key, `no frame key for cid ${JSON.stringify(frame.keyId)}`);
    if (!(await frameKey.verify(frame.tag, binding))) throw new Rejected(Code.bad_tag, `broadcast frame ${frame.counter}`);
  } else {
    const serverKey = serverKeys.get(frame.keyId);
    if (serverKey === undefined) throw new Rejected(Code.unknown_key, `no server key ${JSON.stringify(frame.keyId)}`);
    const root = await fold(await sha256(concat(new Uint8Array([0]), binding)), frame.path);
    if (!(await serverKey.verify(frame.tag, concat(prefix.root, root)))) {
      throw new Rejected(Code.bad_signature, `broadcast frame ${frame.counter}`);
    }
  }
  const missed = mark === undefined ? 0 : toUInt(BigInt(body.tseq) - BigInt(mark) - 1n);
  const payload = body.payload instanceof Uint8Array ? body.payload.slice() : body.payload;
  return { counter: frame.counter, topic: body.topic, tseq: body.tseq, missed, payload, timestampMs: body.timestampMs };
}
