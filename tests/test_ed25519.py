"""Tests for signedws.ed25519: the strict acceptance rule against public vector suites.

The suites are third-party data, not ours to redistribute: they are read in place
from ``$SIGNEDWS_PUBLIC_VECTORS`` (by default ``../shared/vectors`` beside the
checkout; see the ``public_vectors`` fixture), never copied. Without them those
tests are skipped with one summary line (a failure under ``CI=true``); the
ed25519.cr.yp.to suite from the ``cryptography-vectors`` package runs everywhere
(tests/test_public_vectors.py). Every expectation below comes from the strict rule
in ``signedws/ed25519.py`` (SPEC.md §8.2) and the documented meaning of each vector,
not from running the code under test.
"""

from __future__ import annotations

import functools
import json
import sys
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nacl.signing
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519 as c_ed25519
from helpers import strict_accepts
from hypothesis import given
from hypothesis import strategies as st

from signedws import ed25519
from signedws.ed25519 import (
    BACKENDS,
    SMALL_ORDER_ENCODINGS,
    Backend,
    _find_sodium_open,
    _libsodium_backend,
    _LibsodiumDirect,
    _LibsodiumPublic,
    check_public_key,
    check_signature,
    get_backend,
)
from signedws.errors import UsageError
from signedws.keys import Ed25519PrivateKey

P = 2**255 - 19
L = 2**252 + 27742317777372353535851937790883648493
Y_MASK = (1 << 255) - 1

# Canonical encoding of the base point B (order L): a valid, non-small-order R.
BASE_POINT = bytes.fromhex("5866666666666666666666666666666666666666666666666666666666666666")

# CCTV flags that the strict rule refuses (C2SP/CCTV ed25519/README.md):
# low_order_A/R: A or R is one of the 14 small-order encodings (rule 4);
# non_canonical_A/R: an alias encoding with y >= p or x = -0 (rule 3);
# low_order_residue: the torsion parts of R and [k]A do not cancel, so only the
#   cofactored equation holds and the cofactorless one (rule 5) fails;
# reencoded_k: k is hashed over the canonical re-encoding, so [S]B = R + [k]A fails
#   for k hashed over the bytes received (and A or R is non-canonical anyway).
# low_order_component_A/R alone (mixed-order points) are not refused: rule 4 is a
# blocklist and rule 5 holds when the torsion parts cancel.
CCTV_REFUSED_FLAGS = frozenset(
    {
        "low_order_A",
        "low_order_R",
        "non_canonical_A",
        "non_canonical_R",
        "low_order_residue",
        "reencoded_k",
    }
)

# ed25519-speccheck cases.json, by index, with the meaning from the upstream README's
# condition table and the strict rule's answer.
SPECCHECK_EXPECTED: dict[int, bool] = {
    0: False,  # S = 0, small-order A and small-order R: rule 4 (A and R)
    1: False,  # 0 < S < L, small-order A, mixed-order R: rule 4 (A)
    2: False,  # 0 < S < L, mixed-order A, small-order R: rule 4 (R)
    3: True,  # 0 < S < L, mixed-order A and R, cofactorless equation holds: all rules pass
    4: False,  # mixed-order A and R, holds only cofactored: rule 5
    5: False,  # mixed-order A, order-L R, cofactorless fails ("pre-reduced 8h"): rule 5
    6: False,  # S > L: rule 2
    7: False,  # S >> L (top bits set): rule 2
    8: False,  # non-canonical small-order R (x = -0), reduced for hash: rules 3-4 (R)
    9: False,  # same R, not reduced for hash: rules 3-4 (R)
    10: False,  # non-canonical small-order A (x = -0), reduced for hash: rules 3-4 (A)
    11: False,  # same A, not reduced for hash: rules 3-4 (A)
}


@functools.cache
def _load(folder: Path, name: str) -> Any:
    """Read one JSON vector file from the public vector folder."""
    return json.loads((folder / name).read_text(encoding="utf-8"))


def _rfc8032_tests(folder: Path) -> list[dict[str, str]]:
    tests: list[dict[str, str]] = _load(folder, "rfc8032_ed25519_vectors.json")["tests"]
    return tests


def _raw(backend: Backend, public_key: bytes, signature: bytes, message: bytes) -> bool:
    """Ask a backend alone, without rules 1-4 in front of it."""
    try:
        prepared = backend.prepare(public_key)
    except ValueError:
        return False
    return backend.equation_holds(prepared, signature, message)


def _cctv(folder: Path) -> list[tuple[str, bytes, bytes, bytes, bool]]:
    """CCTV vectors as (id, A, signature, message, strict answer from the flags)."""
    return [
        (
            f"#{v['number']}",
            bytes.fromhex(v["key"]),
            bytes.fromhex(v["sig"]),
            v["msg"].encode("utf-8"),
            not CCTV_REFUSED_FLAGS.intersection(v["flags"] or ()),
        )
        for v in _load(folder, "ed25519vectors.json")
    ]


#: Every way signedws verifies: the two backends, and libsodium both through
#: PyNaCl's private cffi call with NULL outputs (the default where it is
#: present, `_LibsodiumDirect`) and through PyNaCl's public binding (the
#: fallback, `_LibsodiumPublic`). Every vector suite runs through each.
PATHS: dict[str, Backend] = {
    "libsodium": BACKENDS["libsodium"],
    "libsodium-public": _LibsodiumPublic(),
    "openssl": BACKENDS["openssl"],
}


@pytest.fixture(params=sorted(PATHS))
def backend(request: pytest.FixtureRequest) -> Backend:
    """Each Ed25519 backend in turn, libsodium through both of PyNaCl's bindings."""
    return PATHS[request.param]


# Public vector suites


def test_wycheproof(backend: Backend, public_vectors: Path) -> None:
    """Every Wycheproof Ed25519 vector is accepted iff its result is valid."""
    data = _load(public_vectors, "ed25519_test.json")
    mismatches = []
    count = 0
    for group in data["testGroups"]:
        public_key = bytes.fromhex(group["publicKey"]["pk"])
        for test in group["tests"]:
            count += 1
            assert test["result"] in {"valid", "invalid"}
            expected = test["result"] == "valid"
            got = strict_accepts(
                backend, public_key, bytes.fromhex(test["sig"]), bytes.fromhex(test["msg"])
            )
            if got != expected:
                mismatches.append(f"tcId {test['tcId']}: expected {expected}, got {got}")
    assert count == 151
    assert mismatches == []


@pytest.mark.parametrize(("index", "expected"), sorted(SPECCHECK_EXPECTED.items()))
def test_speccheck(backend: Backend, index: int, expected: bool, public_vectors: Path) -> None:
    """Each ed25519-speccheck case gets the strict rule's answer from the table."""
    cases = _load(public_vectors, "cases.json")
    assert len(cases) == len(SPECCHECK_EXPECTED)
    case = cases[index]
    got = strict_accepts(
        backend,
        bytes.fromhex(case["pub_key"]),
        bytes.fromhex(case["signature"]),
        bytes.fromhex(case["message"]),
    )
    assert got is expected


def test_cctv(backend: Backend, public_vectors: Path) -> None:
    """Every CCTV vector is accepted iff it carries none of the refused flags."""
    vectors = _cctv(public_vectors)
    assert len(vectors) == 914
    # 1 ordinary signature and 42 with mixed-order A and/or R whose torsion cancels.
    assert sum(expected for *_, expected in vectors) == 43
    mismatches = [
        f"{case_id}: expected {expected}"
        for case_id, public_key, signature, message, expected in vectors
        if strict_accepts(backend, public_key, signature, message) is not expected
    ]
    assert mismatches == []


def test_rfc8032_verifies(backend: Backend, public_vectors: Path) -> None:
    """Each RFC 8032 section 7.1 signature is accepted."""
    vectors = _rfc8032_tests(public_vectors)
    assert len(vectors) == 5
    refused = [
        vector["name"]
        for vector in vectors
        if vector["result"] != "valid"
        or not strict_accepts(
            backend,
            bytes.fromhex(vector["public_key"]),
            bytes.fromhex(vector["signature"]),
            bytes.fromhex(vector["message"]),
        )
    ]
    assert refused == []


def test_rfc8032_signing_reproduces(public_vectors: Path) -> None:
    """Signing with the RFC 8032 seed via PyNaCl and cryptography gives its key and signature."""
    for vector in _rfc8032_tests(public_vectors):
        seed = bytes.fromhex(vector["secret_key"])
        public_key = bytes.fromhex(vector["public_key"])
        signature = bytes.fromhex(vector["signature"])
        message = bytes.fromhex(vector["message"])

        nacl_key = nacl.signing.SigningKey(seed)
        assert bytes(nacl_key.verify_key) == public_key, vector["name"]
        assert nacl_key.sign(message).signature == signature, vector["name"]

        c_key = c_ed25519.Ed25519PrivateKey.from_private_bytes(seed)
        c_public = c_key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        assert c_public == public_key, vector["name"]
        assert c_key.sign(message) == signature, vector["name"]


def test_rfc8032_matches_wycheproof(public_vectors: Path) -> None:
    """RFC 8032 TEST 1, 2, 3 and 1024 are Wycheproof tcId 80-83."""
    wycheproof = {
        test["tcId"]: (group["publicKey"]["pk"], test["msg"], test["sig"])
        for group in _load(public_vectors, "ed25519_test.json")["testGroups"]
        for test in group["tests"]
    }
    rfc = {
        v["name"]: (v["public_key"], v["message"], v["signature"])
        for v in _rfc8032_tests(public_vectors)
    }
    assert len(rfc) == 5
    for name, tc_id in (("TEST 1", 80), ("TEST 2", 81), ("TEST 3", 82), ("TEST 1024", 83)):
        assert rfc[name] == wycheproof[tc_id]


# Small-order and non-canonical encodings


def test_small_order_encodings_match_reference_list(public_vectors: Path) -> None:
    """SMALL_ORDER_ENCODINGS is exactly the 14 encodings of points of order 1, 2, 4 or 8."""
    data = _load(public_vectors, "ed25519_small_order_encodings.json")
    listed = {bytes.fromhex(e["encoding"]) for e in data["small_order"]}
    assert len(listed) == 14
    assert listed == SMALL_ORDER_ENCODINGS


def test_small_order_encodings_are_refused() -> None:
    """Every small-order encoding is refused as a public key and as R."""
    for encoding in sorted(SMALL_ORDER_ENCODINGS):
        assert check_public_key(encoding) == "small-order point", encoding.hex()
        signature = encoding + (1).to_bytes(32, "little")
        assert check_signature(signature) == "R: small-order point", encoding.hex()


def test_every_y_at_least_p_is_refused(public_vectors: Path) -> None:
    """Every encoding whose y field is >= p is refused as a public key and as R."""
    data = _load(public_vectors, "ed25519_small_order_encodings.json")
    entries = data["small_order"] + data["noncanonical_y_encodings"]
    encodings = {bytes.fromhex(e["encoding"]) for e in entries}
    non_canonical = sorted(e for e in encodings if int.from_bytes(e, "little") & Y_MASK >= P)
    # 19 values of y (p .. 2^255 - 1), each with and without the sign bit.
    assert len(non_canonical) == 38
    for encoding in non_canonical:
        assert check_public_key(encoding) is not None, encoding.hex()
        assert check_signature(encoding + bytes(32)) is not None, encoding.hex()


def test_precheck_is_load_bearing(public_vectors: Path) -> None:
    """Raw OpenSSL disagrees with libsodium on some CCTV vectors; with rules 1-4 neither does."""
    libsodium, openssl = BACKENDS["libsodium"], BACKENDS["openssl"]
    raw_disagreements = []
    strict_disagreements = []
    for case_id, public_key, signature, message, _ in _cctv(public_vectors):
        if _raw(openssl, public_key, signature, message) != _raw(
            libsodium, public_key, signature, message
        ):
            raw_disagreements.append(case_id)
        if strict_accepts(openssl, public_key, signature, message) != strict_accepts(
            libsodium, public_key, signature, message
        ):
            strict_disagreements.append(case_id)
    assert len(raw_disagreements) > 0
    assert strict_disagreements == []


# check_public_key / check_signature reasons


@pytest.mark.parametrize("size", [0, 31, 33, 64])
def test_public_key_wrong_length(size: int) -> None:
    """A public key that is not 32 bytes is refused with its length."""
    assert check_public_key(b"\x42" * size) == f"public key is {size} bytes, not 32"


@pytest.mark.parametrize("size", [0, 32, 63, 65])
def test_signature_wrong_length(size: int) -> None:
    """A signature that is not 64 bytes is refused with its length."""
    assert check_signature(b"\x42" * size) == f"signature is {size} bytes, not 64"


def test_public_key_acceptable(issuer_key: Ed25519PrivateKey) -> None:
    """A canonical key of large order passes the encoding checks."""
    assert check_public_key(BASE_POINT) is None
    # RFC 8032 TEST 1's public key (the fixture's seed is TEST 1's).
    assert check_public_key(issuer_key.public_key().to_bytes()) is None


@pytest.mark.parametrize("s", [L, L + 1, 2**253, 2**256 - 1])
def test_signature_s_not_below_l(s: int) -> None:
    """S >= L is refused (rule 2), whatever R is."""
    assert check_signature(BASE_POINT + s.to_bytes(32, "little")) == "S >= L"


@pytest.mark.parametrize("s", [0, 1, L - 1])
def test_signature_s_below_l(s: int) -> None:
    """S < L, including S = L - 1, passes the encoding check."""
    assert check_signature(BASE_POINT + s.to_bytes(32, "little")) is None


def test_signature_small_order_r() -> None:
    """A small-order R is refused (rule 4)."""
    identity = (1).to_bytes(32, "little")
    assert check_signature(identity + bytes(32)) == "R: small-order point"


def test_y_equal_p_is_refused() -> None:
    """y = p (an alias of the order-4 point y = 0) is refused as A and as R."""
    for sign in (0, 1 << 255):
        encoding = (P | sign).to_bytes(32, "little")
        # The blocklist names it before the range check does.
        assert check_public_key(encoding) == "small-order point"
        assert check_signature(encoding + bytes(32)) == "R: small-order point"


@pytest.mark.parametrize("y", [P + 2, P + 3, Y_MASK])
def test_non_canonical_y_is_refused(y: int) -> None:
    """A y field >= p outside the blocklist is refused as non-canonical (rule 3)."""
    for sign in (0, 1 << 255):
        encoding = (y | sign).to_bytes(32, "little")
        assert check_public_key(encoding) == "non-canonical point encoding"
        assert check_signature(encoding + bytes(32)) == "R: non-canonical point encoding"


def test_flipped_bytes_are_refused(backend: Backend, issuer_key: Ed25519PrivateKey) -> None:
    """Flipping any byte of the key, signature or message of a valid signature refuses it."""
    message = b"\xaf\x82"  # a two-byte message, as RFC 8032 TEST 3's
    public_key, signature = issuer_key.public_key().to_bytes(), issuer_key.sign(message)
    assert strict_accepts(backend, public_key, signature, message)

    def flip(data: bytes, index: int) -> bytes:
        return data[:index] + bytes([data[index] ^ 0x01]) + data[index + 1 :]

    for i in range(len(public_key)):
        assert not strict_accepts(backend, flip(public_key, i), signature, message), i
    for i in range(len(signature)):
        assert not strict_accepts(backend, public_key, flip(signature, i), message), i
    for i in range(len(message)):
        assert not strict_accepts(backend, public_key, signature, flip(message, i)), i


# Backends


@pytest.mark.parametrize("name", ["libsodium", "openssl"])
def test_get_backend(name: str) -> None:
    """get_backend returns the named backend."""
    backend = get_backend(name)
    assert backend is BACKENDS[name]
    assert backend.name == name


@pytest.mark.parametrize("name", ["", "sodium", "OpenSSL", "boringssl"])
def test_get_backend_unknown(name: str) -> None:
    """get_backend raises UsageError for any other name."""
    with pytest.raises(UsageError, match="unknown Ed25519 backend"):
        get_backend(name)


# libsodium through PyNaCl's private cffi binding (module docstring)


def test_libsodium_backend_calls_libsodium_directly() -> None:
    """On this PyNaCl the libsodium backend makes the cffi call with NULL outputs."""
    assert type(BACKENDS["libsodium"]) is _LibsodiumDirect
    assert BACKENDS["libsodium"].name == "libsodium"


def test_both_libsodium_paths_agree_on_every_cctv_signature_without_the_precheck(
    public_vectors: Path,
) -> None:
    """Even without rules 1-4 in front, the direct call and the public binding
    give the same answer for every CCTV vector (the same libsodium function)."""
    direct, public = BACKENDS["libsodium"], PATHS["libsodium-public"]
    answers = [
        (_raw(direct, key, sig, msg), _raw(public, key, sig, msg))
        for _, key, sig, msg, _ in _cctv(public_vectors)
    ]
    assert all(a == b for a, b in answers)
    assert {a for a, _ in answers} == {True, False}


class _FakeLib:
    def __init__(self, answer: Callable[[bytes], int]) -> None:
        self.answer = answer

    def crypto_sign_open(self, m: object, mlen: object, sm: bytes, size: int, pk: bytes) -> int:
        return self.answer(sm)


class _FakeSodium(types.ModuleType):
    """A stand-in for ``nacl._sodium`` whose crypto_sign_open answers as told."""

    def __init__(self, answer: Callable[[bytes], int] | None) -> None:
        super().__init__("fake_sodium")
        if answer is not None:
            self.lib = _FakeLib(answer)
        self.ffi = types.SimpleNamespace(NULL=None)


@pytest.mark.parametrize(
    "answer",
    [
        None,  # no crypto_sign_open at all
        lambda sm: 0,  # accepts a forgery
        lambda sm: -1,  # refuses a valid signature
        lambda sm: 1 // 0,  # raises
    ],
    ids=["missing", "accepts-everything", "refuses-everything", "raises"],
)
def test_an_unsound_or_missing_binding_is_not_used(
    answer: Callable[[bytes], int] | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """_find_sodium_open returns None unless the function exists and answers
    RFC 8032 TEST 2 right both ways; the backend then uses the public binding."""
    monkeypatch.setitem(sys.modules, "fake_sodium", _FakeSodium(answer))
    assert _find_sodium_open("fake_sodium") is None
    assert _find_sodium_open("no_such_module_anywhere") is None
    assert type(_libsodium_backend(None)) is _LibsodiumPublic


def test_a_sound_binding_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    """A binding that accepts TEST 2 and refuses it flipped is taken."""
    found = _find_sodium_open()
    assert found is not None
    assert type(_libsodium_backend(found)) is _LibsodiumDirect


# check_signature's shortcuts (module docstring)


def _reference_check_signature(signature: bytes) -> str | None:
    """Rules 1-4 on a signature, spelled out with no shortcut."""
    if len(signature) != 64:
        return f"signature is {len(signature)} bytes, not 64"
    if int.from_bytes(signature[32:], "little") >= L:
        return "S >= L"
    r = signature[:32]
    if r in SMALL_ORDER_ENCODINGS:
        return "R: small-order point"
    if int.from_bytes(r, "little") & Y_MASK >= P:
        return "R: non-canonical point encoding"
    return None


def test_check_signature_shortcuts_change_no_answer() -> None:
    """For R ending with each of the 256 byte values (the small-order and
    non-canonical encodings among them) and S around 2^252 and L, the answer
    and reason are the reference rule's."""
    rs = [bytes(31) + bytes([last]) for last in range(256)]
    rs += [bytes([0xFF] * 31) + bytes([last]) for last in range(256)]
    rs += [*sorted(SMALL_ORDER_ENCODINGS), BASE_POINT, (P + 2).to_bytes(32, "little")]
    ss = [0, 1, 2**252 - 1, 2**252, L - 1, L, L + 1, 2**253, 2**256 - 1]
    ss += [top << 248 for top in range(0x0E, 0x13)]
    for r in rs:
        for s in ss:
            signature = r + s.to_bytes(32, "little")
            assert check_signature(signature) == _reference_check_signature(signature)


@given(st.binary(min_size=64, max_size=64))
def test_check_signature_matches_the_reference_on_any_bytes(signature: bytes) -> None:
    """For any 64 bytes, check_signature answers as the reference rule does."""
    assert check_signature(signature) == _reference_check_signature(signature)


@pytest.mark.parametrize("name", ["libsodium", "openssl"])
def test_strict_problem_names_each_failing_rule(name: str) -> None:
    """`strict_problem` accepts an honest signature and says why for a bad
    public key, a non-canonical S (S + L) and a signature of another message,
    without the public vectors (they cover it too, when present)."""
    backend = ed25519.get_backend(name)
    key = nacl.signing.SigningKey(bytes(range(32)))
    public = bytes(key.verify_key)
    signature = key.sign(b"message").signature
    assert ed25519.strict_problem(backend, public, signature, b"message") is None
    order = 2**252 + 27742317777372353535851937790883648493
    s_plus_l = (int.from_bytes(signature[32:], "little") + order).to_bytes(32, "little")
    problem = ed25519.strict_problem(backend, public, signature[:32] + s_plus_l, b"message")
    assert problem is not None
    assert ed25519.check_signature(signature[:32] + s_plus_l) == problem
    assert ed25519.strict_problem(backend, public, signature, b"other") is not None
    assert ed25519.strict_problem(backend, bytes(32), signature, b"message") is not None
