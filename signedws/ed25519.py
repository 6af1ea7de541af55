"""Ed25519 verification under signedws's strict acceptance rule (SPEC.md §8.2).

Theory of operation
-------------------
Ed25519 implementations disagree on edge cases (non-canonical encodings,
small-order points, S >= L, cofactored or cofactorless equations), so a
signature one verifier accepts another may refuse. signedws fixes one answer:

1. the public key A and the signature are exactly 32 and 64 bytes;
2. S (the last 32 bytes, little-endian) is < L;
3. A and R are canonical encodings: their y field is < p, and no encoding of a
   point with x = 0 carries the sign bit;
4. neither A nor R is one of the points of small order (order 1, 2, 4 or 8);
5. the cofactorless equation [S]B = R + [k]A holds, checked by the backend.

Rules 1-4 are checked here, in front of the backend, on bytes alone: no curve
arithmetic is done in this module. Rule 5 is delegated to libsodium (PyNaCl,
the default) or OpenSSL (cryptography); both use the cofactorless equation, so
with rules 1-4 in front they give the same answer for every input. The public
vector suites (tests/test_ed25519.py, tests/test_public_vectors.py) pin that.

Checks on A happen once per key (`check_public_key`), checks on R and S once per
signature (`check_signature`). For almost every signature those are two byte
look-ups: S < 2^252 < L when its top byte is below 0x10, and R can break rules 3
or 4 only if its last byte is one of the few that a y >= p or a small-order
encoding ends with; only the other signatures take the integer comparisons and
the blocklist look-up.

The libsodium backend and PyNaCl's private binding
--------------------------------------------------
PyNaCl's public ``nacl.bindings.crypto_sign_open`` allocates an output buffer
for the message, lets libsodium copy the message into it, and copies it out
again into a new ``bytes``: about 1 µs per frame that the verifier throws away.
libsodium's ``crypto_sign_open`` accepts NULL for the output and its length,
and then only verifies (``crypto_sign_ed25519_verify_detached`` on the same
bytes: the same equation, the same answer). The backend calls it so through
PyNaCl's cffi module, ``nacl._sodium.lib``, which is not a public PyNaCl API.
It is guarded: `_find_sodium_open` looks the function up at import and checks
it on a good and a bad signature of RFC 8032; if anything is missing or
answers wrongly (a PyNaCl release that moved or dropped it), the backend uses
the public binding instead (`_LibsodiumPublic`). The tests run every public
vector suite through both (`_LibsodiumDirect` and `_LibsodiumPublic`).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Final, Literal, Protocol

import nacl.bindings
import nacl.exceptions
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ed25519 as _c_ed25519

from .errors import Code, Rejected, UsageError

__all__ = [
    "BACKENDS",
    "PUBLIC_KEY_SIZE",
    "SIGNATURE_SIZE",
    "SMALL_ORDER_ENCODINGS",
    "Backend",
    "BackendName",
    "check_public_key",
    "check_signature",
    "get_backend",
    "strict_problem",
    "verify_strict",
]

PUBLIC_KEY_SIZE: Final = 32
SIGNATURE_SIZE: Final = 64

_P: Final = 2**255 - 19
_L: Final = 2**252 + 27742317777372353535851937790883648493
_Y_MASK: Final = (1 << 255) - 1

# The 14 encodings that decode to a point of order 1, 2, 4 or 8: the 8 canonical
# encodings of the torsion points and 6 non-canonical aliases (y + p for y in
# {0, 1}, and the sign bit set on x = 0 for y in {1, p - 1}). Same list as
# C2SP/CCTV ed25519/README.md and libsodium's blocklist.
SMALL_ORDER_ENCODINGS: Final = frozenset(
    bytes.fromhex(h)
    for h in (
        # canonical
        "0100000000000000000000000000000000000000000000000000000000000000",  # order 1
        "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",  # order 2
        "0000000000000000000000000000000000000000000000000000000000000000",  # order 4
        "0000000000000000000000000000000000000000000000000000000000000080",  # order 4
        "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",  # order 8
        "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa",  # order 8
        "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",  # order 8
        "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85",  # order 8
        # non-canonical aliases
        "0100000000000000000000000000000000000000000000000000000000000080",  # order 1, x=-0
        "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",  # order 2, x=-0
        "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",  # order 1, y=p+1
        "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",  # order 1, y=p+1
        "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",  # order 4, y=p
        "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",  # order 4, y=p
    )
)


def _point_problem(encoding: bytes) -> str | None:
    """Say why a 32-byte point encoding breaks rules 3-4, or None if it does not.

    The "sign bit on x = 0" half of rule 3 is enforced by the blocklist: the only
    points with x = 0 are y = 1 and y = p - 1, both of small order, and both of
    their sign-bit aliases are listed.
    """
    if encoding in SMALL_ORDER_ENCODINGS:
        return "small-order point"
    if int.from_bytes(encoding, "little") & _Y_MASK >= _P:
        return "non-canonical point encoding"
    return None


def check_public_key(public_key: bytes) -> str | None:
    """Check a public key against rules 1, 3 and 4.

    Returns:
        None if the key is acceptable, else a short reason for the log.
    """
    if len(public_key) != PUBLIC_KEY_SIZE:
        return f"public key is {len(public_key)} bytes, not {PUBLIC_KEY_SIZE}"
    return _point_problem(public_key)


# The last byte of every encoding that can break rule 3 or 4: a y >= p has its
# low 255 bits all ones but for the lowest byte, so its last byte is 0x7f or
# 0xff; the small-order encodings end with the bytes listed. An R ending with
# any other byte passes `_point_problem` (`check_signature` skips it).
_SUSPECT_LAST_BYTES: Final = frozenset({0x7F, 0xFF} | {e[31] for e in SMALL_ORDER_ENCODINGS})
# S < L whenever S's top byte (the last, little-endian) is below 0x10: then
# S < 2^252 < L. Only a top byte of 0x10 or more needs the integer comparison.
_S_TOP_BELOW_L: Final = 0x10


def check_signature(signature: bytes) -> str | None:
    """Check a signature's encoding against rules 1-4 (R and S only).

    Returns:
        None if the encoding is acceptable, else a short reason for the log.
    """
    if len(signature) != SIGNATURE_SIZE:
        return f"signature is {len(signature)} bytes, not {SIGNATURE_SIZE}"
    if signature[63] >= _S_TOP_BELOW_L and int.from_bytes(signature[32:], "little") >= _L:
        return "S >= L"
    if signature[31] not in _SUSPECT_LAST_BYTES:
        return None
    problem = _point_problem(signature[:32])
    return None if problem is None else f"R: {problem}"


BackendName = Literal["libsodium", "openssl"]


class Backend(Protocol):
    """Checks the cofactorless Ed25519 equation (rule 5) for pre-checked inputs.

    `prepare` turns a public key that passed `check_public_key` into whatever
    the backend verifies fastest with; callers cache its result per key.
    """

    name: BackendName

    def prepare(self, public_key: bytes) -> object: ...

    def equation_holds(self, prepared: object, signature: bytes, message: bytes) -> bool:
        """Whether the cofactorless equation holds (rule 5 alone: callers
        check rules 1-4 first)."""
        ...


class _LibsodiumPublic:
    """libsodium through PyNaCl's public binding, ``nacl.bindings.crypto_sign_open``
    (which runs crypto_sign_verify_detached and copies the message out; cffi
    releases the GIL during the call). The fallback of `_LibsodiumDirect`."""

    name: BackendName = "libsodium"

    def prepare(self, public_key: bytes) -> object:
        return bytes(public_key)

    def equation_holds(self, prepared: object, signature: bytes, message: bytes) -> bool:
        assert isinstance(prepared, bytes)  # noqa: S101 - internal invariant
        try:
            nacl.bindings.crypto_sign_open(signature + message, prepared)
        except nacl.exceptions.BadSignatureError:
            return False
        return True


# RFC 8032 section 7.1 TEST 2: the check `_find_sodium_open` runs.
_CHECK_KEY: Final = bytes.fromhex(
    "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c"
)
_CHECK_SIGNED: Final = bytes.fromhex(
    "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da"
    "085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"
    "72"
)

SodiumOpen = Callable[[object, object, bytes, int, bytes], int]


def _find_sodium_open(module: str = "nacl._sodium") -> tuple[SodiumOpen, object] | None:
    """PyNaCl's cffi ``crypto_sign_open`` and ``NULL``, if present and sound.

    Sound: with NULL output arguments it accepts RFC 8032 TEST 2 and refuses
    it with one bit of the signature flipped. None otherwise (or if anything
    raises), and the libsodium backend then uses the public binding.
    """
    try:
        sodium = importlib.import_module(module)
        sign_open: SodiumOpen = sodium.lib.crypto_sign_open
        null: object = sodium.ffi.NULL
        forged = bytes([_CHECK_SIGNED[0] ^ 1]) + _CHECK_SIGNED[1:]
        good = sign_open(null, null, _CHECK_SIGNED, len(_CHECK_SIGNED), _CHECK_KEY)
        bad = sign_open(null, null, forged, len(forged), _CHECK_KEY)
    except Exception:  # any failure means: use the public binding
        return None
    if good != 0 or bad == 0:
        return None
    return sign_open, null


class _LibsodiumDirect(_LibsodiumPublic):
    """libsodium's crypto_sign_open called with NULL outputs through PyNaCl's cffi
    module (see the module docstring): verification only, no message copies.
    cffi releases the GIL during the call, as for the public binding."""

    def __init__(self, sign_open: SodiumOpen, null: object) -> None:
        self._open = sign_open
        self._null = null

    def equation_holds(self, prepared: object, signature: bytes, message: bytes) -> bool:
        assert isinstance(prepared, bytes)  # noqa: S101 - internal invariant
        signed = signature + message
        null = self._null
        return self._open(null, null, signed, len(signed), prepared) == 0


def _libsodium_backend(found: tuple[SodiumOpen, object] | None) -> Backend:
    """`_LibsodiumDirect` over ``found`` (from `_find_sodium_open`), else `_LibsodiumPublic`."""
    return _LibsodiumPublic() if found is None else _LibsodiumDirect(*found)


class _OpenSSL:
    """OpenSSL through pyca/cryptography."""

    name: BackendName = "openssl"

    def prepare(self, public_key: bytes) -> object:
        return _c_ed25519.Ed25519PublicKey.from_public_bytes(public_key)

    def equation_holds(self, prepared: object, signature: bytes, message: bytes) -> bool:
        assert isinstance(prepared, _c_ed25519.Ed25519PublicKey)  # noqa: S101
        try:
            prepared.verify(signature, message)
        except InvalidSignature:
            return False
        return True


BACKENDS: Final[dict[str, Backend]] = {
    "libsodium": _libsodium_backend(_find_sodium_open()),
    "openssl": _OpenSSL(),
}


def get_backend(name: str) -> Backend:
    """Return the backend called ``"libsodium"`` or ``"openssl"``.

    Raises:
        UsageError: for any other name.
    """
    try:
        return BACKENDS[name]
    except KeyError:
        raise UsageError(
            f"unknown Ed25519 backend {name!r}; use one of {sorted(BACKENDS)}"
        ) from None


def strict_problem(
    backend: Backend, public_key: bytes, signature: bytes, message: bytes
) -> str | None:
    """Apply the whole strict rule (1-5) to one signature.

    This is the reference path used by key-level tools and the tests; the
    verifier calls the pieces separately so that checks on A run once per key.
    A public key the backend cannot decode is reported as a failed verification.

    Returns:
        None if the signature verifies, else a short reason for the log.
    """
    problem = check_public_key(public_key)
    if problem is not None:
        return problem
    problem = check_signature(signature)
    if problem is not None:
        return problem
    try:
        prepared = backend.prepare(public_key)
    except ValueError:
        return "public key refused by the backend"
    if not backend.equation_holds(prepared, signature, message):
        return "signature does not verify"
    return None


def verify_strict(backend: Backend, public_key: bytes, signature: bytes, message: bytes) -> None:
    """`strict_problem`, raising.

    Raises:
        Rejected: `bad_signature`, with `strict_problem`'s reason as detail.
    """
    problem = strict_problem(backend, public_key, signature, message)
    if problem is not None:
        raise Rejected(Code.BAD_SIGNATURE, problem)
