"""signedws: per-frame authenticated WebSockets.

Every client frame carries an HMAC-SHA256 token-MAC or an Ed25519 signature over
the server's connection nonce, a counter, a timestamp and the payload. Servers
verify each frame on its own with issuer keys only. See SPEC.md.

This package is the I/O-free core: it does no networking and reads no clock
(every time is a ``now`` argument). Transport adapters live in `signedws.asyncio`
(and the command line in `signedws.cli`); they are the only modules that import
asyncio. `serve`, `connect`, `ServerConnection` and `ClientConnection` are
reachable from here too, but imported on first use (PEP 562, as websockets does),
so ``import signedws`` stays I/O-free.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

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

if TYPE_CHECKING:
    from .asyncio.client import ClientConnection, connect
    from .asyncio.connection import ServerConnection
    from .asyncio.server import serve

__version__ = "0.2.0"

# name -> the module that defines it, imported on first access.
_LAZY = {
    "ClientConnection": ".asyncio.client",
    "ServerConnection": ".asyncio.connection",
    "connect": ".asyncio.client",
    "serve": ".asyncio.server",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value  # the next access does not come back here
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])


__all__ = [
    "Claims",
    "ClientConnection",
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
    "ServerConnection",
    "ServerKey",
    "ServerMessage",
    "ServerSession",
    "SignedWSError",
    "Signer",
    "StreamMarks",
    "UsageError",
    "Verifier",
    "connect",
    "decode_hello",
    "encode_key_reference",
    "key_from_jwk",
    "key_to_jwk",
    "load_key",
    "save_key",
    "serve",
    "unverified_client_frame",
    "unverified_credential",
]
