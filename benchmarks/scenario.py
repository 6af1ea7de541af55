"""The fixed world every benchmark measures: keys, credentials, a server, frames.

Everything is deterministic (constant seeds, a fixed clock) so that two runs
verify byte-identical frames. `Scenario` builds one server-side `Verifier`
with its keyring and the client credentials it trusts; `Scenario.connection`
opens a connection (server state plus client `Signer`) and pre-signs frames
for it, so that a benchmark loop does nothing but verify.

The payload is `PAYLOAD`, a 128-byte binary message, for every row of every
benchmark: signedws frames, JWT peers and floors alike.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Literal

from signedws import (
    ConnectionState,
    Ed25519Credential,
    Ed25519PrivateKey,
    HMACKey,
    Issuer,
    Keyring,
    MACCredential,
    Signer,
    Verifier,
)
from signedws.envelope import Payload

#: The benchmarks' clock, seconds since the epoch (every credential is valid at it).
NOW: Final = 1_700_000_000.0
AUDIENCE: Final = "wss://chat.example.test/ws"
ISSUER: Final = "https://login.example.test"
SUBJECT: Final = "alice"
SCOPES: Final = ("chat:read", "chat:write")
HMAC_KID: Final = "hmac-1"
ED_KID: Final = "ed-1"
NODE_ID: Final = b"bench-01"
STREAM: Final = bytes(range(16))
#: Every message of every benchmark: 128 bytes, a typical small chat event.
PAYLOAD: Final = b'{"type":"message","room":"general","text":"' + b"x" * 83 + b'"}'
assert len(PAYLOAD) == 128

FLEET_KEY: Final = HMACKey(bytes(range(32)))
HMAC_SECRET: Final = HMACKey(bytes(range(32, 64)))
ED_ISSUER_KEY: Final = Ed25519PrivateKey(b"\x01" * 32)
CLIENT_KEY: Final = Ed25519PrivateKey(b"\x02" * 32)
#: The key `ed25519` server frames (acknowledgements) are signed with.
SERVER_KEY: Final = Ed25519PrivateKey(b"\x03" * 32)
#: An issuer no server trusts (for the unknown-credential rejection).
ROGUE_SECRET: Final = HMACKey(bytes(range(64, 96)))

Scheme = Literal["mac", "ed25519"]
Backend = Literal["libsodium", "openssl"]


def counter_random(seed: bytes) -> Callable[[int], bytes]:
    """A deterministic randomness source: successive blocks of a counter."""
    counter = itertools.count()

    def random(size: int) -> bytes:
        block = seed + next(counter).to_bytes(8, "big")
        return (block * (size // len(block) + 1))[:size]

    return random


def make_keyring() -> Keyring:
    """The server's keyring: the HMAC and Ed25519 keys of `ISSUER`."""
    keyring = Keyring()
    keyring.add_hmac_key(ISSUER, HMAC_KID, HMAC_SECRET)
    keyring.add_ed25519_key(ISSUER, ED_KID, ED_ISSUER_KEY.public_key())
    return keyring


def mac_credential(*, now: float = NOW, lifetime: int = 3600, cid: str = "tok-1") -> MACCredential:
    """A `mac` token for `SUBJECT` and its frame key."""
    return Issuer(ISSUER, HMAC_KID, HMAC_SECRET).issue_token(
        subject=SUBJECT,
        scopes=SCOPES,
        audiences=[AUDIENCE],
        now=now,
        lifetime=lifetime,
        credential_id=cid,
    )


def ed25519_credential(
    *, now: float = NOW, lifetime: int = 3600, cid: str = "cert-1"
) -> Ed25519Credential:
    """An `ed25519` certificate for `CLIENT_KEY`, with the private key."""
    certificate = Issuer(ISSUER, ED_KID, ED_ISSUER_KEY).issue_certificate(
        CLIENT_KEY.public_key(),
        subject=SUBJECT,
        scopes=SCOPES,
        audiences=[AUDIENCE],
        now=now,
        lifetime=lifetime,
        credential_id=cid,
    )
    return Ed25519Credential(certificate, CLIENT_KEY)


def rogue_credential(*, now: float = NOW) -> MACCredential:
    """A well-formed token from an issuer the server does not know."""
    return Issuer("https://rogue.example.test", "k", ROGUE_SECRET).issue_token(
        subject=SUBJECT, now=now, lifetime=3600, credential_id="rogue-1"
    )


def credential(scheme: Scheme, *, now: float = NOW) -> MACCredential | Ed25519Credential:
    """The client credential of ``scheme``."""
    return mac_credential(now=now) if scheme == "mac" else ed25519_credential(now=now)


@dataclass
class Connection:
    """One connection: the server's state and the client's signer."""

    verifier: Verifier
    state: ConnectionState
    signer: Signer

    def sign(self, count: int, payload: Payload = PAYLOAD, *, now: float = NOW) -> list[bytes]:
        """``count`` consecutive frames (counters continue from the last one signed)."""
        return [self.signer.sign(payload, now=now) for _ in range(count)]

    def rewind(self) -> None:
        """Forget the counters accepted, so pre-signed frames verify again.

        A benchmark loop verifies the same pre-signed frames over and over;
        with a replay window of 0 only ``highest`` needs resetting.
        """
        self.state.highest = 0


class Scenario:
    """A server (one `Verifier`) and connections to it, all from fixed keys."""

    def __init__(self, backend: Backend = "libsodium", *, cache_size: int = 4096) -> None:
        self.keyring = make_keyring()
        self.verifier = Verifier(
            self.keyring,
            audience=AUDIENCE,
            fleet_key=FLEET_KEY,
            node_id=NODE_ID,
            backend=backend,
            cache_size=cache_size,
        )
        self._random = counter_random(b"nonce")

    def connection(
        self,
        scheme: Scheme,
        *,
        client_credential: MACCredential | Ed25519Credential | None = None,
        now: float = NOW,
    ) -> Connection:
        """Open a connection and make its client from the hello."""
        state = self.verifier.open(now=now, random=self._random)
        hello = self.verifier.hello(state, now=now)
        if client_credential is None:
            client_credential = credential(scheme, now=now)
        signer = Signer.from_hello(
            hello, client_credential, audience=AUDIENCE, now=now, stream=STREAM
        )
        return Connection(self.verifier, state, signer)

    def warm(self, connection: Connection, *, now: float = NOW) -> None:
        """Accept one frame, so the credential is cached and the connection bound."""
        self.verifier.verify(connection.sign(1, now=now)[0], connection.state, now=now)
        connection.rewind()


def flip(data: bytes, index: int) -> bytes:
    """``data`` with every bit of byte ``index`` inverted."""
    return data[:index] + bytes([data[index] ^ 0xFF]) + data[index + 1 :]


def garbage(size: int) -> bytes:
    """``size`` deterministic pseudo-random bytes (not a MessagePack array)."""
    out = bytearray()
    state = 0x9E3779B97F4A7C15
    while len(out) < size:
        state = (state * 6364136223846793005 + 1442695040888963407) % 2**64
        out += state.to_bytes(8, "little")
    return bytes(out[:size])
