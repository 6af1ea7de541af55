"""What a user would pick today: a DPoP-style proof JWT on every message.

Each client message is ``proof || "\\n" || payload``, where ``proof`` is a
compact JWT signed with EdDSA (the client's Ed25519 key) or HS256 (a 32-byte
session key), with the claims

    jti    a fresh id per message (16 random bytes, base64url)
    iat    issued at, seconds
    nonce  the connection nonce the server sent (base64url)
    ctr    a per-connection counter
    ph     base64url(SHA-256(payload)), binding the proof to the payload

The server verifies the JWT with the library (signature, algorithm allow-list,
the library's own registered-claim checks), then does what a real server must
on top (RFC 9449 §4.3 adapted to messages): ``iat`` within the skew window,
``nonce`` equal to the connection's, ``ctr`` above the highest accepted, and
``ph`` equal to the payload's hash. Only then does the counter advance.

This is generous to the peers: the proof carries no credential (signedws frames
carry theirs and check expiry, audience and revocation on every frame), there
is no ``jti`` store, and the framing is a single split on a newline.

Keys are imported once per connection into each library's own key object, the
fastest use each documents.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Literal, Protocol

from cryptography.hazmat.primitives.asymmetric import ed25519 as c_ed25519

Algorithm = Literal["EdDSA", "HS256"]
Library = Literal["pyjwt", "joserfc", "authlib"]

LIBRARIES: Final[tuple[Library, ...]] = ("pyjwt", "joserfc", "authlib")
ALGORITHMS: Final[tuple[Algorithm, ...]] = ("EdDSA", "HS256")
MAX_SKEW_MS: Final = 300_000


class ProofRejected(Exception):
    """The peer server refused a message."""


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def payload_hash(payload: bytes) -> str:
    return b64url(hashlib.sha256(payload).digest())


@dataclass
class PeerKeys:
    """The keys of one peer connection: an Ed25519 pair and an HS256 secret."""

    ed25519_seed: bytes = b"\x02" * 32
    hs256_secret: bytes = bytes(range(100, 132))

    @property
    def signing_key(self) -> c_ed25519.Ed25519PrivateKey:
        return c_ed25519.Ed25519PrivateKey.from_private_bytes(self.ed25519_seed)


def make_proofs(
    algorithm: Algorithm,
    keys: PeerKeys,
    *,
    nonce: str,
    payload: bytes,
    now: float,
    count: int,
    first_counter: int = 1,
) -> list[bytes]:
    """``count`` client messages with consecutive counters (signed with PyJWT;
    every library verifies the same bytes)."""
    import jwt  # noqa: PLC0415 - bench-only dependency, imported where used

    key: c_ed25519.Ed25519PrivateKey | bytes = (
        keys.signing_key if algorithm == "EdDSA" else keys.hs256_secret
    )
    ph = payload_hash(payload)
    messages = []
    for i in range(count):
        ctr = first_counter + i
        claims = {
            "jti": b64url(ctr.to_bytes(16, "big")),
            "iat": int(now),
            "nonce": nonce,
            "ctr": ctr,
            "ph": ph,
        }
        proof = jwt.encode(claims, key, algorithm=algorithm)
        messages.append(proof.encode("ascii") + b"\n" + payload)
    return messages


class _AuthlibJWT(Protocol):
    """What this file calls on Authlib's ``JsonWebToken``, which has no type
    information: ``decode`` returns ``JWTClaims``, a ``dict`` of the claims."""

    def decode(self, s: bytes, key: object) -> dict[str, object]: ...


def _decoder(
    library: Library, algorithm: Algorithm, keys: PeerKeys
) -> Callable[[bytes], dict[str, object]]:
    """The library's own JWT verification: bytes in, claims out, or raise."""
    public = keys.signing_key.public_key()
    if library == "pyjwt":
        import jwt  # noqa: PLC0415

        key: c_ed25519.Ed25519PublicKey | bytes = (
            public if algorithm == "EdDSA" else keys.hs256_secret
        )
        algorithms = [algorithm]

        def decode_pyjwt(proof: bytes) -> dict[str, object]:
            return jwt.decode(proof, key, algorithms=algorithms)

        return decode_pyjwt
    if library == "joserfc":
        from joserfc import jwt as jr_jwt  # noqa: PLC0415
        from joserfc.jwk import OctKey, OKPKey  # noqa: PLC0415

        jr_key = (
            OKPKey.import_key(public)
            if algorithm == "EdDSA"
            else OctKey.import_key(keys.hs256_secret)
        )
        jr_algorithms = [algorithm]

        def decode_joserfc(proof: bytes) -> dict[str, object]:
            return jr_jwt.decode(proof, jr_key, algorithms=jr_algorithms).claims

        return decode_joserfc
    with warnings.catch_warnings():
        # authlib.jose is deprecated in favour of joserfc, and still widely used.
        warnings.simplefilter("ignore")
        # Authlib ships no type information (no py.typed); _AuthlibJWT types the one call.
        from authlib.jose import JsonWebToken  # type: ignore[import-untyped]  # noqa: PLC0415
        from authlib.jose import OctKey as AOctKey  # noqa: PLC0415
        from authlib.jose import OKPKey as AOKPKey  # noqa: PLC0415

    a_key = (
        AOKPKey.import_key(public)
        if algorithm == "EdDSA"
        else AOctKey.import_key(keys.hs256_secret)
    )
    a_jwt: _AuthlibJWT = JsonWebToken([algorithm])

    def decode_authlib(proof: bytes) -> dict[str, object]:
        return a_jwt.decode(proof, a_key)

    return decode_authlib


class PeerServer:
    """The server side of one peer connection: verify, check, advance."""

    def __init__(
        self, library: Library, algorithm: Algorithm, keys: PeerKeys, *, nonce: str
    ) -> None:
        self.library = library
        self.algorithm = algorithm
        self.nonce = nonce
        self.highest = 0
        self._decode = _decoder(library, algorithm, keys)

    def verify(self, message: bytes, *, now: float) -> bytes:
        """Verify one message; return its payload.

        Raises:
            ProofRejected: if the proof or a claim check fails.
        """
        proof, _, payload = message.partition(b"\n")
        try:
            claims = self._decode(proof)
        except Exception as exc:  # every library has its own error tree
            raise ProofRejected(type(exc).__name__) from None
        iat = claims.get("iat")
        if type(iat) is not int or abs(iat * 1000 - int(now * 1000)) > MAX_SKEW_MS:
            raise ProofRejected("iat")
        if claims.get("nonce") != self.nonce:
            raise ProofRejected("nonce")
        ctr = claims.get("ctr")
        if type(ctr) is not int or ctr <= self.highest:
            raise ProofRejected("ctr")
        ph = claims.get("ph")
        if type(ph) is not str or not hmac.compare_digest(ph, payload_hash(payload)):
            raise ProofRejected("ph")
        self.highest = ctr
        return payload


def self_check() -> None:
    """Every peer accepts an honest message and refuses a tampered or replayed one."""
    keys = PeerKeys()
    nonce = b64url(bytes(64))
    for algorithm in ALGORITHMS:
        messages = make_proofs(algorithm, keys, nonce=nonce, payload=b"hi", now=1e9, count=2)
        for library in LIBRARIES:
            server = PeerServer(library, algorithm, keys, nonce=nonce)
            assert server.verify(messages[0], now=1e9) == b"hi"
            for bad in (messages[0], messages[1][:-1] + b"!", messages[1][:10] + b"x"):
                try:
                    server.verify(bad, now=1e9)
                except ProofRejected:
                    continue
                raise AssertionError(f"{library} {algorithm} accepted a bad message")
            other = PeerServer(library, algorithm, keys, nonce=b64url(b"\x01" * 64))
            try:
                other.verify(messages[1], now=1e9)
            except ProofRejected:
                pass
            else:
                raise AssertionError(f"{library} {algorithm} accepted another nonce")
