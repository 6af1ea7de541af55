/**
 * The client's receive hook for server frames and broadcasts (SPEC.md §7.2,
 * §14.4); the port of `signedws/receive.py`.
 *
 * A client's receive loop hands every message from the server to
 * `verifyServerFrame`: a broadcast frame (kind 6 or 7) is verified against the
 * connection's server counter and the client's topic marks (`signer.topics`:
 * pass the same `Topics` to every connection's signer, as the stream, so a
 * topic's order and gaps hold across reconnects); any other frame as a §7
 * server frame. A broadcast comes back in the shape of a server frame carrying
 * the last acknowledgement again, so a loop written for server frames delivers
 * its payload unchanged; the full `BroadcastMessage` (topic, `tseq`, `missed`)
 * goes to `onBroadcast`. I/O-free.
 *
 * @module signedws/receive
 */

import { Code, Rejected } from './errors.js';

/**
 * Verify one message from the server.
 *
 * @param {import('./signer.js').Signer} signer the connection's signer
 * @param {unknown} data the message as received: an ArrayBuffer or Uint8Array
 *   (a text message is refused)
 * @param {{now?: number, onBroadcast?: (message: import('./broadcast.js').BroadcastMessage) => void}} [options]
 * @returns {Promise<import('./signer.js').ServerMessage>} the server frame; for a
 *   broadcast, one with its counter, payload and time and the connection's
 *   current `ack` (a broadcast carries none)
 * @throws {Rejected} the first failing check's code; nothing changed
 */
export async function verifyServerFrame(signer, data, { now, onBroadcast } = {}) {
  if (typeof data === 'string') throw new Rejected(Code.malformed, 'text message from the server');
  const message = await signer.verifyAny(/** @type {ArrayBuffer | Uint8Array} */ (data), { now });
  if (!('tseq' in message)) return message;
  if (onBroadcast !== undefined) onBroadcast(message);
  return { counter: message.counter, ack: signer.acked, payload: message.payload, timestampMs: message.timestampMs };
}
