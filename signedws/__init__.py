"""signedws: per-frame authenticated WebSockets.

Every client frame carries an HMAC-SHA256 token-MAC or an Ed25519 signature over
the server's connection nonce, a counter, a timestamp and the payload. Servers
verify each frame on its own with issuer keys only. See SPEC.md.

This package is the I/O-free core: it does no networking and reads no clock
(every time is a ``now`` argument). Transport adapters live in subpackages and
are not imported here.
"""

from __future__ import annotations

from .credential import (
    Claims,
    ClientCredential,
    Ed25519Credential,
    Issuer,
    KeyReference,
    MACCredential,
    encode_key_reference,
    unverified_credential,
)
from .envelope import Hello, decode_hello, unverified_client_frame
from .errors import Code, KeyFormatError, Rejected, SignedWSError, UsageError
from .keyring import IssuerKey, Keyring, RegisteredKey
from .keys import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
    HMACKey,
    key_from_jwk,
    key_to_jwk,
    load_key,
    save_key,
)
from .nonce import NonceKey
from .revocation import RevocationSet
from .server import ServerKey, ServerSession
from .signer import ServerMessage, Signer
from .stream import StreamMarks
from .verifier import ConnectionState, Message, Verifier

__version__ = "0.2.0"

__all__ = [
    "Claims",
    "ClientCredential",
    "Code",
    "ConnectionState",
    "Ed25519Credential",
    "Ed25519PrivateKey",
    "Ed25519PublicKey",
    "HMACKey",
    "Hello",
    "Issuer",
    "IssuerKey",
    "KeyFormatError",
    "KeyReference",
    "Keyring",
    "MACCredential",
    "Message",
    "NonceKey",
    "RegisteredKey",
    "Rejected",
    "RevocationSet",
    "ServerKey",
    "ServerMessage",
    "ServerSession",
    "SignedWSError",
    "Signer",
    "StreamMarks",
    "UsageError",
    "Verifier",
    "decode_hello",
    "encode_key_reference",
    "key_from_jwk",
    "key_to_jwk",
    "load_key",
    "save_key",
    "unverified_client_frame",
    "unverified_credential",
]
