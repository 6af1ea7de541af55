/**
 * signedws: per-frame authenticated WebSockets, for browsers and Node 20+.
 *
 * The client (`connect`, `Signer`, credentials, keys, `keystore`) is what a
 * browser needs. The server-side core (`Verifier`, `ServerSession`, `Keyring`,
 * `Issuer` ...) is here too: it is the second implementation of SPEC.md that
 * runs every conformance vector.
 *
 * @module signedws
 */

export {
  Code,
  Rejected,
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
export { ServerSession } from './session.js';
export { Backoff, closeAction } from './reconnect.js';
export {
  ClientClosed,
  ClientConnection,
  ConnectionLost,
  HandshakeFailed,
  Refused,
  RepeatedFailure,
  connect,
} from './client.js';
export { deleteKeyPair, loadKeyPair, loadOrCreateKeyPair, saveKeyPair } from './keystore.js';
export { IssuerClient, IssuerRefused, popInput, serverKeysFromJwks } from './issuer.js';
