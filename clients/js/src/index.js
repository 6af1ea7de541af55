/**
 * signedws: per-frame authenticated WebSockets, for browsers and Node 20+.
 *
 * The client (`connect` and its `ClientConnection` over the WHATWG
 * WebSocket, the I/O-free `ClientSession` under it, `Signer`, credentials,
 * keys, `keystore`) is what a browser needs. The server-side core (`Verifier`, `ServerSession`, `Keyring`,
 * `Issuer` ...) is here too: it is the second implementation of SPEC.md that
 * runs every conformance vector.
 *
 * @module signedws
 */

export {
  ClientClosed,
  Code,
  ConnectionLost,
  HandshakeFailed,
  InvalidState,
  Refused,
  Rejected,
  RepeatedFailure,
  SignedWSError,
  UsageError,
  codesForClose,
  explainClose,
  explainStatus,
} from './errors.js';
export { fromHex, toHex, randomBytes } from './bytes.js';
export { decodeCanonical, encode, toUInt } from './codec.js';
export {
  DEFAULT_MAX_SERVER_FRAME_SIZE,
  SUBPROTOCOL,
  decodeHello,
  encodeHello,
  unverifiedClientFrame,
  unverifiedServerFrame,
} from './envelope.js';
export { checkPublicKey, checkSignature } from './ed25519.js';
export { Ed25519PrivateKey, Ed25519PublicKey, HMACKey } from './keys.js';
export {
  Ed25519Credential,
  Issuer,
  MACCredential,
  TokenKeys,
  encodeKeyReference,
  unverifiedCredential,
} from './credential.js';
export { KEPT_FRAME_KEYS, Signer } from './signer.js';
export { verifyServerFrame } from './receive.js';
export {
  Broadcast,
  Broadcaster,
  DEFAULT_MAX_TOPICS,
  Topics,
  checkBroadcast,
  parseBody as parseBroadcastBody,
  parseBroadcastFrame,
} from './broadcast.js';
export { NonceKey } from './nonce.js';
export { Keyring } from './keyring.js';
export { RevocationSet } from './revocation.js';
export { ConnectionState, Verifier } from './verifier.js';
export {
  ConnectionRejected,
  MessageReceived,
  PrincipalLimit,
  ServerSession,
  State,
} from './server.js';
export { DEFAULT_CAPACITY, DEFAULT_PER_PRINCIPAL, StreamMarks, streamKey } from './stream.js';
export {
  AckTimedOut,
  Acknowledged,
  Action,
  Backoff,
  ClientSession,
  Outbox,
  PayloadReceived,
  ServerRejected,
  closeAction,
  statusAction,
} from './client.js';
export { ClientConnection, connect } from './websocket.js';
export { deleteKeyPair, loadKeyPair, loadOrCreateKeyPair, saveKeyPair } from './keystore.js';
export { IssuerClient, IssuerRefused, popInput, serverKeysFromJwks } from './issuer.js';
