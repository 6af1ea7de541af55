"""Keys: HMAC secrets and Ed25519 key pairs, as values and as JWK documents.

Key objects never show secret material in their ``repr`` or ``str``, compare in
constant time, and are not hashable when secret (so they cannot leak through a
dict's key order or a set). Secret bytes come out only through an explicitly
named method (`HMACKey.to_bytes`, `Ed25519PrivateKey.to_bytes`).

JWK (RFC 7517) with RFC 8037 OKP keys is the storage and exchange format
(SPEC.md §3.4): ``{"kty": "oct", "k": ...}`` for HMAC secrets and
``{"kty": "OKP", "crv": "Ed25519", "x": ..., "d": ...}`` for Ed25519.
"""

from __future__ import annotations

import base64
import hmac
import json
import os
import secrets
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Final

import nacl.bindings
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import hmac as c_hmac
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from . import ed25519
from .errors import Code, KeyFormatError, Rejected, UsageError
from .jsondoc import parse_json

__all__ = [
    "MIN_HMAC_KEY_SIZE",
    "Ed25519PrivateKey",
    "Ed25519PublicKey",
    "HMACKey",
    "Key",
    "b64url_decode",
    "b64url_encode",
    "hkdf",
    "key_from_jwk",
    "key_to_jwk",
    "load_key",
    "save_key",
]

MIN_HMAC_KEY_SIZE: Final = 32

RandomSource = Callable[[int], bytes]


def hkdf(secret: bytes, info: bytes) -> bytes:
    """HKDF-SHA256 with an empty salt and 32 bytes of output (SPEC.md §2)."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(secret)


def b64url_encode(data: bytes) -> str:
    """Base64url without padding (RFC 7515 §2)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Decode base64url without padding, strictly.

    Raises:
        KeyFormatError: if ``text`` is not canonical unpadded base64url.
    """
    if not isinstance(text, str) or "=" in text:
        raise KeyFormatError("expected unpadded base64url text")
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (ValueError, TypeError):
        raise KeyFormatError("invalid base64url") from None
    if b64url_encode(data) != text:
        raise KeyFormatError("non-canonical base64url")
    return data


class HMACKey:
    """An HMAC-SHA256 secret of at least 32 bytes (SPEC.md §8.1)."""

    __slots__ = ("_key",)
    __hash__ = None  # type: ignore[assignment]  # secret keys are not hashable

    def __init__(self, key: bytes) -> None:
        """Wrap ``key``.

        Raises:
            UsageError: if ``key`` is not bytes of at least 32 bytes.
        """
        if not isinstance(key, bytes):
            raise UsageError("an HMAC key must be bytes")
        if len(key) < MIN_HMAC_KEY_SIZE:
            raise UsageError(f"an HMAC key must be at least {MIN_HMAC_KEY_SIZE} bytes")
        self._key = key

    @classmethod
    def generate(cls, size: int = 32, *, random: RandomSource = secrets.token_bytes) -> HMACKey:
        """A fresh random key of ``size`` bytes (at least 32)."""
        return cls(random(size))

    @classmethod
    def from_bytes(cls, key: bytes) -> HMACKey:
        """Wrap existing key bytes (see `__init__`)."""
        return cls(key)

    def to_bytes(self) -> bytes:
        """The secret bytes. Handle with care: never log them."""
        return self._key

    def mac(self, data: bytes) -> bytes:
        """HMAC-SHA256 of ``data`` under this key, 32 bytes."""
        return hmac.digest(self._key, data, "sha256")

    def verify(self, tag: bytes, data: bytes) -> None:
        """Check that ``tag`` is this key's full 32-byte tag of ``data`` (constant time).

        Raises:
            Rejected: `bad_tag` if it is not.
        """
        if not hmac.compare_digest(tag, self.mac(data)):
            raise Rejected(Code.BAD_TAG, "tag does not verify")

    def prefixed_mac(self, prefix: bytes = b"") -> c_hmac.HMAC:
        """An HMAC-SHA256 context that has absorbed ``prefix``: the one API for
        MACs of many messages that share a prefix (the client label and
        audience of every frame).

        Per message: ``copy()`` it, ``update`` the copy with the message, then
        ``finalize()`` it (or ``verify(tag)``, which compares in constant time).

        pyca/cryptography's context holds the keyed SHA-256 states; measured
        per 200-byte message (copy, update, finish; median of 15 rounds, one
        run, 2026-12-06, issue 15): this context 1,674 ns; the stdlib's
        ``hmac.HMAC`` 3,163 ns; the C object inside it (the private
        ``hmac.HMAC._hmac``, no longer used) 2,291 ns; one-shot ``hmac.digest``
        of prefix + message 4,552 ns.
        """
        mac = c_hmac.HMAC(self._key, hashes.SHA256())
        mac.update(prefix)
        return mac

    def derive(self, info: bytes) -> HMACKey:
        """``HKDF(self, info)``, as a new 32-byte key."""
        return HMACKey(hkdf(self._key, info))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, HMACKey):
            return NotImplemented
        return hmac.compare_digest(self._key, other._key)

    def __repr__(self) -> str:
        return f"HMACKey(<{len(self._key)} secret bytes>)"

    def __reduce__(self) -> str | tuple[object, ...]:
        raise TypeError("HMACKey cannot be pickled")


class Ed25519PublicKey:
    """An Ed25519 public key that passed SPEC.md §8.2's key checks."""

    __slots__ = ("_key",)

    def __init__(self, key: bytes) -> None:
        """Wrap 32 public key bytes.

        Raises:
            KeyFormatError: if the key fails the strict key checks (wrong
                length, non-canonical, small order).
        """
        if not isinstance(key, bytes):
            raise KeyFormatError("an Ed25519 public key must be bytes")
        problem = ed25519.check_public_key(key)
        if problem is not None:
            raise KeyFormatError(f"unacceptable Ed25519 public key: {problem}")
        self._key = key

    @classmethod
    def from_bytes(cls, key: bytes) -> Ed25519PublicKey:
        """Wrap public key bytes (see `__init__`)."""
        return cls(key)

    def to_bytes(self) -> bytes:
        """The 32 public key bytes."""
        return self._key

    def verify(self, signature: bytes, message: bytes, *, backend: str = "libsodium") -> None:
        """Check ``signature`` over ``message`` under the strict rule (SPEC.md §8.2).

        Raises:
            Rejected: `bad_signature` if it does not verify.
            UsageError: for an unknown ``backend``.
        """
        ed25519.verify_strict(ed25519.get_backend(backend), self._key, signature, message)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Ed25519PublicKey):
            return NotImplemented
        return self._key == other._key

    def __hash__(self) -> int:
        return hash(self._key)

    def __repr__(self) -> str:
        return f"Ed25519PublicKey({b64url_encode(self._key)!r})"


class Ed25519PrivateKey:
    """An Ed25519 private key, held as its 32-byte seed (RFC 8032)."""

    __slots__ = ("_public", "_secret")
    __hash__ = None  # type: ignore[assignment]

    def __init__(self, seed: bytes) -> None:
        """Wrap a 32-byte seed.

        Raises:
            UsageError: if ``seed`` is not 32 bytes.
        """
        if not isinstance(seed, bytes) or len(seed) != 32:
            raise UsageError("an Ed25519 seed must be 32 bytes")
        public, secret = nacl.bindings.crypto_sign_seed_keypair(seed)
        self._secret: bytes = secret  # libsodium's 64-byte form: seed || public
        self._public = Ed25519PublicKey(public)

    @classmethod
    def generate(cls, *, random: RandomSource = secrets.token_bytes) -> Ed25519PrivateKey:
        """A fresh random key pair.

        A random seed whose public key is unacceptable is astronomically
        unlikely (small-order points are not multiples of the base point), but
        `Ed25519PublicKey` would refuse one, so that cannot pass silently.
        """
        return cls(random(32))

    @classmethod
    def from_bytes(cls, seed: bytes) -> Ed25519PrivateKey:
        """Wrap a 32-byte seed (see `__init__`)."""
        return cls(seed)

    def to_bytes(self) -> bytes:
        """The 32-byte seed. Handle with care: never log it."""
        return self._secret[:32]

    def public_key(self) -> Ed25519PublicKey:
        """The matching public key."""
        return self._public

    def sign(self, message: bytes) -> bytes:
        """The 64-byte deterministic Ed25519 signature of ``message``."""
        signed: bytes = nacl.bindings.crypto_sign(message, self._secret)
        return signed[:64]

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Ed25519PrivateKey):
            return NotImplemented
        return hmac.compare_digest(self._secret, other._secret)

    def __repr__(self) -> str:
        return f"Ed25519PrivateKey(<secret>, public={b64url_encode(self._public.to_bytes())!r})"

    def __reduce__(self) -> str | tuple[object, ...]:
        raise TypeError("Ed25519PrivateKey cannot be pickled")


Key = HMACKey | Ed25519PrivateKey | Ed25519PublicKey


def key_to_jwk(key: Key, kid: str) -> dict[str, str]:
    """The key as a JWK (private material included for secret keys)."""
    if isinstance(key, HMACKey):
        return {"kty": "oct", "kid": kid, "alg": "HS256", "k": b64url_encode(key.to_bytes())}
    jwk = {"kty": "OKP", "crv": "Ed25519", "kid": kid, "alg": "EdDSA"}
    if isinstance(key, Ed25519PrivateKey):
        jwk["x"] = b64url_encode(key.public_key().to_bytes())
        jwk["d"] = b64url_encode(key.to_bytes())
    else:
        jwk["x"] = b64url_encode(key.to_bytes())
    return jwk


def _member(jwk: Mapping[str, object], name: str) -> str:
    value = jwk.get(name)
    if not isinstance(value, str) or not value:
        raise KeyFormatError(f"JWK member {name!r} is missing or not a string")
    return value


def key_from_jwk(jwk: Mapping[str, object], *, public_only: bool = False) -> tuple[str, Key]:
    """Load a key from a JWK.

    Args:
        jwk: the JWK object.
        public_only: refuse private or secret material (for JWKS import,
            SPEC.md §3.4).

    Returns:
        ``(kid, key)``.

    Raises:
        KeyFormatError: if the JWK is not a well-formed ``oct`` or OKP Ed25519
            key, has no ``kid``, carries a ``use`` other than ``sig`` or an
            ``alg`` that does not match, or carries private material when
            ``public_only``.
    """
    if not isinstance(jwk, Mapping):
        raise KeyFormatError("a JWK must be a JSON object")
    kid = _member(jwk, "kid")
    kty = _member(jwk, "kty")
    if "use" in jwk and jwk["use"] != "sig":
        raise KeyFormatError(f"JWK {kid!r}: use must be 'sig'")
    if kty == "oct":
        if public_only:
            raise KeyFormatError(f"JWK {kid!r}: secret key where public keys were expected")
        if jwk.get("alg", "HS256") != "HS256":
            raise KeyFormatError(f"JWK {kid!r}: alg must be HS256 for an oct key")
        try:
            return kid, HMACKey(b64url_decode(_member(jwk, "k")))
        except UsageError as exc:
            raise KeyFormatError(f"JWK {kid!r}: {exc}") from None
    if kty != "OKP" or jwk.get("crv") != "Ed25519":
        raise KeyFormatError(f"JWK {kid!r}: only kty 'oct' and OKP crv 'Ed25519' are supported")
    if jwk.get("alg", "EdDSA") != "EdDSA":
        raise KeyFormatError(f"JWK {kid!r}: alg must be EdDSA for an Ed25519 key")
    public = Ed25519PublicKey(b64url_decode(_member(jwk, "x")))
    if "d" not in jwk:
        return kid, public
    if public_only:
        raise KeyFormatError(f"JWK {kid!r}: private key where public keys were expected")
    try:
        private = Ed25519PrivateKey(b64url_decode(_member(jwk, "d")))
    except UsageError as exc:
        raise KeyFormatError(f"JWK {kid!r}: {exc}") from None
    if private.public_key() != public:
        raise KeyFormatError(f"JWK {kid!r}: d and x do not match")
    return kid, private


def save_key(path: str | os.PathLike[str], key: Key, kid: str) -> None:
    """Write ``key`` as a JWK file.

    Secret and private keys are created with mode 0600 and never overwrite an
    existing file.

    Raises:
        FileExistsError: for a secret key, if ``path`` exists.
    """
    text = json.dumps(key_to_jwk(key, kid), indent=2) + "\n"
    if isinstance(key, Ed25519PublicKey):
        Path(path).write_text(text)
        return
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as file:
        file.write(text)


def load_key(path: str | os.PathLike[str]) -> tuple[str, Key]:
    """Read a JWK file written by `save_key` (or any conforming JWK).

    Raises:
        KeyFormatError: if the file is not a valid JWK (see `key_from_jwk`).
        OSError: if it cannot be read.
    """
    try:
        document = parse_json(Path(path).read_text())
    except (ValueError, UnicodeDecodeError):
        raise KeyFormatError(f"{os.fspath(path)!r} is not a JSON document") from None
    return key_from_jwk(document)
