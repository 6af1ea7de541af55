// Drive a ServerSession as a pump does, in one call (as tests/helpers.py's
// handle() and server_frame() do for the Python tests).
import { MessageReceived } from '../../src/index.js';

/**
 * `session` verifies and accepts `frame`, and its application is done with
 * the message at once (so the next server frame acknowledges it).
 *
 * @param {import('../../src/index.js').ServerSession} session
 * @param {Uint8Array} frame
 * @param {{now: number}} options
 * @returns {Promise<import('../../src/verifier.js').Message>}
 * @throws {import('../../src/index.js').Rejected} the frame is refused
 */
export async function handle(session, frame, { now }) {
  const message = await session.verify(frame, { now });
  session.accept(message, { now });
  for (const event of session.eventsReceived()) {
    if (event instanceof MessageReceived) session.messageDone(event.message, { now });
  }
  return message;
}

/**
 * The server frame `session` sends for `payload` (null: an ack).
 *
 * @param {import('../../src/index.js').ServerSession} session
 * @param {string | Uint8Array | null} payload
 * @param {{now: number}} options
 * @returns {Promise<Uint8Array>}
 */
export async function serverFrame(session, payload, { now }) {
  await session.sendMessage(payload, { now });
  return /** @type {Uint8Array} */ (session.dataToSend().at(-1));
}
