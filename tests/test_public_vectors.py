"""Public vectors that any machine can install: the ``cryptography-vectors`` package.

It ships the ed25519.cr.yp.to ``sign.input`` suite (1,024 signatures, messages of
0 to 1,023 bytes) and RFC 4231's HMAC-SHA256 cases. Unlike the suites read from
``$SIGNEDWS_PUBLIC_VECTORS`` (tests/test_ed25519.py), these are a dev dependency
in the lock, so they run on every machine, with nothing beside the checkout.
Each goes through signedws's own strict path, on every Ed25519 backend.
"""

from __future__ import annotations

import functools
from pathlib import Path

import cryptography_vectors
import pytest
from helpers import strict_accepts

from signedws.ed25519 import BACKENDS, Backend, _LibsodiumPublic
from signedws.errors import Rejected, UsageError
from signedws.keys import MIN_HMAC_KEY_SIZE, Ed25519PrivateKey, HMACKey

DATA = Path(cryptography_vectors.__file__).resolve().parent

#: Every way signedws verifies an Ed25519 signature (as in tests/test_ed25519.py).
PATHS: dict[str, Backend] = {
    "libsodium": BACKENDS["libsodium"],
    "libsodium-public": _LibsodiumPublic(),
    "openssl": BACKENDS["openssl"],
}


@functools.cache
def _sign_input() -> list[tuple[bytes, bytes, bytes, bytes]]:
    """sign.input as (seed, public key, message, signature).

    Each line is ``sk||pk : pk : m : sig||m :`` in hex (the SUPERCOP format).
    """
    cases = []
    lines = (DATA / "asymmetric" / "Ed25519" / "sign.input").read_text().splitlines()
    for line in lines:
        secret, public, message, signed, _ = line.split(":")
        sk, pk, m, sm = (bytes.fromhex(x) for x in (secret, public, message, signed))
        assert sk[32:] == pk, line[:32]
        assert sm[64:] == m, line[:32]
        cases.append((sk[:32], pk, m, sm[:64]))
    return cases


def _rfc4231() -> list[tuple[bytes, bytes, bytes]]:
    """RFC 4231's HMAC-SHA256 cases as (key, message, 32-byte tag)."""
    cases = []
    fields: dict[str, str] = {}
    for line in (DATA / "HMAC" / "rfc-4231-sha256.txt").read_text().splitlines():
        name, sep, value = line.partition(" = ")
        if sep and name in {"Key", "Msg", "MD"}:
            fields[name] = value.strip()
        if name == "MD":
            cases.append(
                (
                    bytes.fromhex(fields["Key"]),
                    bytes.fromhex(fields["Msg"]),
                    bytes.fromhex(fields["MD"]),
                )
            )
            fields = {}
    return cases


@pytest.fixture(params=sorted(PATHS))
def backend(request: pytest.FixtureRequest) -> Backend:
    """Each Ed25519 backend in turn, libsodium through both of PyNaCl's bindings."""
    return PATHS[request.param]


def test_sign_input_is_the_whole_suite() -> None:
    """The package ships all 1,024 cases, messages of every length from 0 to 1,023."""
    cases = _sign_input()
    assert len(cases) == 1024
    assert sorted(len(m) for *_, m, _ in cases) == list(range(1024))


def test_sign_input_verifies_strictly(backend: Backend) -> None:
    """Every sign.input signature passes signedws's strict rule (SPEC.md §8.2)."""
    refused = [
        i
        for i, (_, public_key, message, signature) in enumerate(_sign_input())
        if not strict_accepts(backend, public_key, signature, message)
    ]
    assert refused == []


def test_sign_input_tampered_is_refused(backend: Backend) -> None:
    """Each signature with one bit of R, of S, or of its message flipped is refused."""
    accepted = []
    for i, (_, public_key, message, signature) in enumerate(_sign_input()):
        bad_r = bytes([signature[0] ^ 0x01]) + signature[1:]
        bad_s = signature[:32] + bytes([signature[32] ^ 0x01]) + signature[33:]
        bad_m = message[:-1] + bytes([message[-1] ^ 0x80]) if message else b"\x00"
        for signature_, message_ in ((bad_r, message), (bad_s, message), (signature, bad_m)):
            if strict_accepts(backend, public_key, signature_, message_):
                accepted.append(i)
    assert accepted == []


def test_sign_input_signing_reproduces() -> None:
    """signedws's Ed25519PrivateKey gives each case's public key and signature."""
    mismatches = [
        i
        for i, (seed, public_key, message, signature) in enumerate(_sign_input())
        if Ed25519PrivateKey(seed).public_key().to_bytes() != public_key
        or Ed25519PrivateKey(seed).sign(message) != signature
    ]
    assert mismatches == []


def test_rfc4231_hmac_sha256() -> None:
    """Every HMAC path of HMACKey gives RFC 4231's tag for each key signedws accepts
    (at least 32 bytes, SPEC.md §8.1); a truncated or flipped tag is refused."""
    cases = [case for case in _rfc4231() if len(case[0]) >= MIN_HMAC_KEY_SIZE]
    assert len(cases) == 2  # test cases 6 and 7 (131-byte keys)
    for key, message, tag in cases:
        hmac_key = HMACKey(key)
        context = hmac_key.prefixed_mac(message[:7]).copy()
        context.update(message[7:])
        assert [hmac_key.mac(message), context.finalize()] == [tag] * 2
        hmac_key.verify(tag, message)
        for bad in (tag[:16], bytes([tag[0] ^ 0x01]) + tag[1:]):
            with pytest.raises(Rejected, match="bad_tag"):
                hmac_key.verify(bad, message)


def test_rfc4231_short_keys_are_refused() -> None:
    """RFC 4231's keys shorter than 32 bytes (cases 1-4) are refused as HMAC keys."""
    short = [key for key, _, _ in _rfc4231() if len(key) < MIN_HMAC_KEY_SIZE]
    assert len(short) == 4
    for key in short:
        with pytest.raises(UsageError):
            HMACKey(key)
