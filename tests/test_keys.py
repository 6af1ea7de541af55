"""Tests for signedws.keys: HMAC and Ed25519 key values, and their JWK documents."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import pickle
import stat
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from signedws.errors import Code, KeyFormatError, Rejected, UsageError
from signedws.keys import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
    HMACKey,
    Key,
    b64url_decode,
    b64url_encode,
    hkdf,
    key_from_jwk,
    key_to_jwk,
    load_key,
    save_key,
)

# RFC 8032 §7.1, TEST 1.
RFC8032_SEED = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
RFC8032_PUBLIC = bytes.fromhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
RFC8032_SIGNATURE = bytes.fromhex(
    "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
)
# RFC 8037 Appendix A.1: the same key pair as a JWK.
RFC8037_X = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"
RFC8037_D = "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A"

SECRET = bytes(range(100, 132))


def secret_spellings(secret: bytes) -> list[str]:
    """Ways a secret could leak into text: hex, base64, base64url, bytes repr."""
    return [
        secret.hex(),
        secret.hex().upper(),
        base64.b64encode(secret).decode().rstrip("="),
        b64url_encode(secret),
        repr(secret)[2:-1],
    ]


# -- helpers ------------------------------------------------------------------------


def test_hkdf_matches_rfc5869_case_3() -> None:
    """hkdf is HKDF-SHA256 with an empty salt, truncated to 32 bytes (RFC 5869 A.3)."""
    okm = bytes.fromhex("8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d")
    assert hkdf(b"\x0b" * 22, b"") == okm


def test_b64url_encode_is_unpadded() -> None:
    """b64url_encode uses the URL alphabet and drops padding (RFC 7515 §2)."""
    assert b64url_encode(b"\xfb\xff") == "-_8"
    assert b64url_encode(b"") == ""


def test_b64url_decode_round_trips() -> None:
    """Canonical unpadded base64url decodes back to its bytes."""
    for size in range(5):
        data = bytes(range(250, 250 + size)) if size else b""
        assert b64url_decode(b64url_encode(data)) == data


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("-_8=", "unpadded"),
        ("AA==", "unpadded"),
        ("A", "invalid base64url"),
        ("AAAAA", "invalid base64url"),
        ("é", "invalid base64url"),
        ("AB", "non-canonical"),
        ("+/8", "non-canonical"),
        ("AA!A", "invalid base64url"),
        ("AA!AA", "non-canonical"),
        ("AA AA", "non-canonical"),
    ],
)
def test_b64url_decode_refuses(text: str, message: str) -> None:
    """Padded, invalid, standard-alphabet or non-canonical base64url is refused."""
    with pytest.raises(KeyFormatError, match=message):
        b64url_decode(text)


def test_b64url_decode_refuses_non_text() -> None:
    """b64url_decode takes only str."""
    with pytest.raises(KeyFormatError, match="unpadded base64url text"):
        b64url_decode(b"AA")  # type: ignore[arg-type]


# -- HMACKey ------------------------------------------------------------------------


@pytest.mark.parametrize("size", [32, 33, 64])
def test_hmac_key_accepts_32_bytes_and_more(size: int) -> None:
    """An HMAC key of at least 32 bytes is wrapped as is (SPEC.md §8.1)."""
    data = bytes(range(size))
    assert HMACKey(data).to_bytes() == data
    assert HMACKey.from_bytes(data).to_bytes() == data


@pytest.mark.parametrize("size", [0, 16, 31])
def test_hmac_key_refuses_short_keys(size: int) -> None:
    """An HMAC key shorter than 32 bytes is a usage error."""
    with pytest.raises(UsageError, match="at least 32 bytes"):
        HMACKey(bytes(size))


@pytest.mark.parametrize("value", [bytearray(32), "x" * 32, memoryview(bytes(32))])
def test_hmac_key_refuses_non_bytes(value: object) -> None:
    """Only bytes are accepted as key material."""
    with pytest.raises(UsageError, match="must be bytes"):
        HMACKey(value)  # type: ignore[arg-type]


def test_hmac_key_generate_uses_the_random_source(
    zero_random: Callable[[int], bytes],
) -> None:
    """generate draws exactly `size` bytes from the given source."""
    requests: list[int] = []

    def source(n: int) -> bytes:
        requests.append(n)
        return bytes([9]) * n

    assert HMACKey.generate(random=zero_random) == HMACKey(bytes(32))
    assert HMACKey.generate(48, random=source).to_bytes() == bytes([9]) * 48
    assert requests == [48]


def test_hmac_key_generate_refuses_short_size(zero_random: Callable[[int], bytes]) -> None:
    """generate with fewer than 32 bytes is a usage error."""
    with pytest.raises(UsageError):
        HMACKey.generate(16, random=zero_random)


def test_hmac_key_mac_and_verify() -> None:
    """mac is HMAC-SHA256; verify returns for the full, correct tag and raises
    bad_tag for anything else."""
    key = HMACKey(SECRET)
    tag = hmac.new(SECRET, b"message", hashlib.sha256).digest()
    assert key.mac(b"message") == tag
    assert key.verify(tag, b"message") is None
    for bad_tag, message in ((tag, b"messagE"), (tag[:16], b"message"), (bytes(32), b"message")):
        with pytest.raises(Rejected) as info:
            key.verify(bad_tag, message)
        assert info.value.code is Code.BAD_TAG


def test_hmac_key_prefixed_mac_absorbs_prefix() -> None:
    """prefixed_mac(prefix) copies to the MAC of prefix + message."""
    key = HMACKey(SECRET)
    state = key.prefixed_mac(b"prefix|")
    first = state.copy()
    first.update(b"one")
    second = state.copy()
    second.update(b"two")
    assert first.finalize() == key.mac(b"prefix|one")
    assert second.finalize() == key.mac(b"prefix|two")
    assert key.prefixed_mac().finalize() == key.mac(b"")
    verifying = state.copy()
    verifying.update(b"one")
    verifying.verify(key.mac(b"prefix|one"))


def test_hmac_key_derive_is_hkdf() -> None:
    """derive(info) is HKDF-SHA256(key, info), computed here with cryptography directly."""
    expected = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"label").derive(SECRET)
    assert HMACKey(SECRET).derive(b"label") == HMACKey(expected)


def test_hmac_key_equality() -> None:
    """Keys are equal iff their bytes are; other types are not comparable."""
    assert HMACKey(SECRET) == HMACKey(bytes(SECRET))
    assert HMACKey(SECRET) != HMACKey(bytes(32))
    assert HMACKey(SECRET) != HMACKey(SECRET + b"\x00")
    assert HMACKey(SECRET).__eq__(SECRET) is NotImplemented
    assert HMACKey(SECRET) != SECRET


def test_hmac_key_equality_is_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """Comparing HMAC keys goes through hmac.compare_digest."""
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    assert HMACKey(SECRET) == HMACKey(bytes(SECRET))
    assert calls == [(SECRET, SECRET)]


def test_hmac_key_is_unhashable() -> None:
    """A secret key cannot be hashed, so it cannot be a dict key or set member."""
    key = HMACKey(SECRET)
    with pytest.raises(TypeError):
        hash(key)
    with pytest.raises(TypeError):
        {key}  # noqa: B018


def test_hmac_key_repr_has_no_secret() -> None:
    """repr and str give the size only, never the secret bytes in any spelling."""
    key = HMACKey(SECRET)
    assert repr(key) == "HMACKey(<32 secret bytes>)"
    for text in (repr(key), str(key), f"{key!r}", f"{[key]}"):
        for spelling in secret_spellings(SECRET):
            assert spelling not in text


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_hmac_key_is_not_picklable(protocol: int) -> None:
    """Pickling a secret key fails rather than writing the secret out."""
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(HMACKey(SECRET), protocol=protocol)


# -- Ed25519 --------------------------------------------------------------------------


def test_ed25519_rfc8032_test_1() -> None:
    """The RFC 8032 TEST 1 seed gives its public key and empty-message signature."""
    key = Ed25519PrivateKey(RFC8032_SEED)
    assert key.public_key().to_bytes() == RFC8032_PUBLIC
    assert key.sign(b"") == RFC8032_SIGNATURE
    assert key.to_bytes() == RFC8032_SEED
    assert Ed25519PrivateKey.from_bytes(RFC8032_SEED) == key


@pytest.mark.parametrize("backend", ["libsodium", "openssl"])
def test_ed25519_public_key_verify(backend: str) -> None:
    """verify returns for the RFC 8032 signature and raises bad_signature for
    any change to it or the message."""
    public = Ed25519PublicKey(RFC8032_PUBLIC)
    assert public.verify(RFC8032_SIGNATURE, b"", backend=backend) is None
    flipped = bytes([RFC8032_SIGNATURE[0] ^ 1]) + RFC8032_SIGNATURE[1:]
    for signature, message in (
        (RFC8032_SIGNATURE, b"x"),
        (flipped, b""),
        (RFC8032_SIGNATURE[:63], b""),
    ):
        with pytest.raises(Rejected) as info:
            public.verify(signature, message, backend=backend)
        assert info.value.code is Code.BAD_SIGNATURE


def test_ed25519_sign_verify_round_trip(client_key: Ed25519PrivateKey) -> None:
    """A key's signature verifies under its public key and not under another."""
    message = b"signedws/v1 test\x00payload"
    signature = client_key.sign(message)
    assert len(signature) == 64
    client_key.public_key().verify(signature, message)
    with pytest.raises(Rejected, match="bad_signature"):
        Ed25519PublicKey(RFC8032_PUBLIC).verify(signature, message)


def test_ed25519_generate_uses_the_random_source(zero_random: Callable[[int], bytes]) -> None:
    """generate draws a 32-byte seed from the given source."""
    assert Ed25519PrivateKey.generate(random=zero_random) == Ed25519PrivateKey(bytes(32))
    seeded = Ed25519PrivateKey.generate(random=lambda n: RFC8032_SEED[:n])
    assert seeded.public_key().to_bytes() == RFC8032_PUBLIC


@pytest.mark.parametrize("seed", [bytes(31), bytes(33), b"", "x" * 32, bytearray(32)])
def test_ed25519_private_key_refuses_bad_seeds(seed: object) -> None:
    """A seed is exactly 32 bytes."""
    with pytest.raises(UsageError, match="32 bytes"):
        Ed25519PrivateKey(seed)  # type: ignore[arg-type]


def test_ed25519_private_key_equality_and_hash() -> None:
    """Private keys compare by seed in constant time and are unhashable."""
    key = Ed25519PrivateKey(RFC8032_SEED)
    assert key == Ed25519PrivateKey(bytes(RFC8032_SEED))
    assert key != Ed25519PrivateKey(bytes(32))
    assert key.__eq__(RFC8032_SEED) is NotImplemented
    with pytest.raises(TypeError):
        hash(key)


def test_ed25519_private_key_equality_is_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """Comparing private keys goes through hmac.compare_digest."""
    calls: list[int] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append(len(a))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    assert Ed25519PrivateKey(RFC8032_SEED) == Ed25519PrivateKey(RFC8032_SEED)
    assert calls == [64]


def test_ed25519_private_key_repr_has_no_secret() -> None:
    """repr shows only the public key, never the seed in any spelling."""
    key = Ed25519PrivateKey(RFC8032_SEED)
    assert repr(key) == f"Ed25519PrivateKey(<secret>, public={RFC8037_X!r})"
    for text in (repr(key), str(key)):
        for spelling in secret_spellings(RFC8032_SEED):
            assert spelling not in text


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_ed25519_private_key_is_not_picklable(protocol: int) -> None:
    """Pickling a private key fails."""
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(Ed25519PrivateKey(RFC8032_SEED), protocol=protocol)


def test_ed25519_public_key_value_semantics() -> None:
    """Public keys compare and hash by their bytes and repr as base64url."""
    public = Ed25519PublicKey(RFC8032_PUBLIC)
    assert public == Ed25519PublicKey.from_bytes(bytes(RFC8032_PUBLIC))
    assert public != Ed25519PrivateKey(bytes(32)).public_key()
    assert public.__eq__(RFC8032_PUBLIC) is NotImplemented
    assert hash(public) == hash(Ed25519PublicKey(RFC8032_PUBLIC))
    assert {public, Ed25519PublicKey(RFC8032_PUBLIC)} == {public}
    assert repr(public) == f"Ed25519PublicKey({RFC8037_X!r})"
    assert public.to_bytes() == RFC8032_PUBLIC


P = 2**255 - 19


@pytest.mark.parametrize(
    ("key", "reason"),
    [
        pytest.param(b"\x01" + bytes(31), "small-order", id="identity"),
        pytest.param(bytes(32), "small-order", id="order-4-y0"),
        pytest.param((P - 1).to_bytes(32, "little"), "small-order", id="order-2"),
        pytest.param(
            bytes.fromhex("c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a"),
            "small-order",
            id="order-8",
        ),
        pytest.param((P + 1).to_bytes(32, "little"), "small-order", id="identity-alias-y=p+1"),
        pytest.param((P + 3).to_bytes(32, "little"), "non-canonical", id="y=p+3"),
        pytest.param((2**255 - 1).to_bytes(32, "little"), "non-canonical", id="y=2^255-1"),
        pytest.param(
            ((P + 3) | 1 << 255).to_bytes(32, "little"), "non-canonical", id="y=p+3-signed"
        ),
        pytest.param(RFC8032_PUBLIC[:31], "31 bytes", id="short"),
        pytest.param(RFC8032_PUBLIC + b"\x00", "33 bytes", id="long"),
        pytest.param(b"", "0 bytes", id="empty"),
    ],
)
def test_ed25519_public_key_refuses_weak_keys(key: bytes, reason: str) -> None:
    """Small-order, non-canonical and wrong-length keys are refused (SPEC.md §8.2)."""
    with pytest.raises(KeyFormatError, match=reason):
        Ed25519PublicKey(key)


def test_ed25519_public_key_refuses_non_bytes() -> None:
    """A public key is bytes."""
    with pytest.raises(KeyFormatError, match="must be bytes"):
        Ed25519PublicKey(RFC8037_X)  # type: ignore[arg-type]


# -- JWK --------------------------------------------------------------------------------


def test_key_to_jwk_rfc8037_example() -> None:
    """The RFC 8037 A.1 key pair serialises to its published x and d."""
    private = Ed25519PrivateKey(RFC8032_SEED)
    assert key_to_jwk(private, "k1") == {
        "kty": "OKP",
        "crv": "Ed25519",
        "kid": "k1",
        "alg": "EdDSA",
        "x": RFC8037_X,
        "d": RFC8037_D,
    }
    assert key_to_jwk(private.public_key(), "k1") == {
        "kty": "OKP",
        "crv": "Ed25519",
        "kid": "k1",
        "alg": "EdDSA",
        "x": RFC8037_X,
    }


def test_key_to_jwk_hmac() -> None:
    """An HMAC key serialises as an oct JWK with alg HS256."""
    assert key_to_jwk(HMACKey(SECRET), "h1") == {
        "kty": "oct",
        "kid": "h1",
        "alg": "HS256",
        "k": b64url_encode(SECRET),
    }


@pytest.mark.parametrize(
    "key",
    [
        HMACKey(SECRET),
        Ed25519PrivateKey(RFC8032_SEED),
        Ed25519PublicKey(RFC8032_PUBLIC),
    ],
    ids=["hmac", "private", "public"],
)
def test_jwk_round_trip(key: Key) -> None:
    """key_from_jwk(key_to_jwk(key)) gives back the key and its kid, through JSON too."""
    jwk = key_to_jwk(key, "kid-1")
    assert key_from_jwk(jwk) == ("kid-1", key)
    loaded_kid, loaded = key_from_jwk(json.loads(json.dumps(jwk)))
    assert loaded_kid == "kid-1"
    assert type(loaded) is type(key)
    assert loaded == key


def test_key_from_jwk_rfc8037_example() -> None:
    """RFC 8037 A.1's JWK (no alg, no use) loads; public_only gives its public key."""
    public_jwk = {"kty": "OKP", "crv": "Ed25519", "x": RFC8037_X, "kid": "a"}
    assert key_from_jwk(public_jwk, public_only=True) == ("a", Ed25519PublicKey(RFC8032_PUBLIC))
    kid, private = key_from_jwk({**public_jwk, "d": RFC8037_D})
    assert kid == "a"
    assert private == Ed25519PrivateKey(RFC8032_SEED)


def test_key_from_jwk_accepts_use_sig_and_matching_alg() -> None:
    """use 'sig' and the matching alg are accepted for both key types."""
    okp = {"kty": "OKP", "crv": "Ed25519", "x": RFC8037_X, "kid": "a", "use": "sig"}
    assert key_from_jwk({**okp, "alg": "EdDSA"})[1] == Ed25519PublicKey(RFC8032_PUBLIC)
    oct_jwk = {"kty": "oct", "k": b64url_encode(SECRET), "kid": "h", "use": "sig"}
    assert key_from_jwk(oct_jwk)[1] == HMACKey(SECRET)
    assert key_from_jwk({**oct_jwk, "alg": "HS256"})[1] == HMACKey(SECRET)


OKP = {"kty": "OKP", "crv": "Ed25519", "kid": "a", "x": RFC8037_X}
OKP_PRIVATE = {**OKP, "d": RFC8037_D}
OCT = {"kty": "oct", "kid": "h", "k": b64url_encode(SECRET)}
OTHER_X = b64url_encode(Ed25519PrivateKey(bytes(32)).public_key().to_bytes())
# The last character of a 32-byte value carries 2 unused bits; setting them is non-canonical.
NON_CANONICAL_X = RFC8037_X[:-1] + "p"


@pytest.mark.parametrize(
    ("jwk", "message"),
    [
        pytest.param({k: v for k, v in OKP.items() if k != "kid"}, "'kid'", id="no-kid"),
        pytest.param({**OKP, "kid": ""}, "'kid'", id="empty-kid"),
        pytest.param({**OKP, "kid": 7}, "'kid'", id="int-kid"),
        pytest.param({k: v for k, v in OKP.items() if k != "kty"}, "'kty'", id="no-kty"),
        pytest.param({**OKP, "kty": "RSA"}, "only kty", id="kty-rsa"),
        pytest.param({**OKP, "kty": "EC"}, "only kty", id="kty-ec"),
        pytest.param({**OKP, "crv": "X25519"}, "only kty", id="crv-x25519"),
        pytest.param({k: v for k, v in OKP.items() if k != "crv"}, "only kty", id="no-crv"),
        pytest.param({**OKP, "use": "enc"}, "use must be 'sig'", id="use-enc"),
        pytest.param({**OKP, "use": None}, "use must be 'sig'", id="use-null"),
        pytest.param({**OCT, "use": "enc"}, "use must be 'sig'", id="oct-use-enc"),
        pytest.param({**OKP, "alg": "ES256"}, "alg must be EdDSA", id="alg-es256"),
        pytest.param({**OKP, "alg": "Ed25519"}, "alg must be EdDSA", id="alg-ed25519"),
        pytest.param({**OCT, "alg": "HS512"}, "alg must be HS256", id="oct-alg-hs512"),
        pytest.param({**OCT, "alg": "EdDSA"}, "alg must be HS256", id="oct-alg-eddsa"),
        pytest.param({k: v for k, v in OKP.items() if k != "x"}, "'x'", id="no-x"),
        pytest.param({**OKP, "x": RFC8037_X + "="}, "unpadded", id="padded-x"),
        pytest.param({**OKP, "x": NON_CANONICAL_X}, "non-canonical", id="non-canonical-x"),
        pytest.param(
            {**OKP, "x": RFC8037_X.replace("_", "/")}, "non-canonical", id="std-alphabet-x"
        ),
        pytest.param({**OKP, "x": b64url_encode(RFC8032_PUBLIC[:31])}, "31 bytes", id="short-x"),
        pytest.param({**OKP, "x": b64url_encode(bytes(32))}, "small-order", id="small-order-x"),
        pytest.param({**OKP_PRIVATE, "d": RFC8037_D + "="}, "unpadded", id="padded-d"),
        pytest.param(
            {**OKP_PRIVATE, "d": b64url_encode(RFC8032_SEED[:31])}, "32 bytes", id="short-d"
        ),
        pytest.param({**OKP_PRIVATE, "d": ""}, "'d'", id="empty-d"),
        pytest.param({**OKP_PRIVATE, "x": OTHER_X}, "d and x do not match", id="d-x-mismatch"),
        pytest.param({k: v for k, v in OCT.items() if k != "k"}, "'k'", id="no-k"),
        pytest.param({**OCT, "k": b64url_encode(bytes(31))}, "at least 32", id="short-k"),
        pytest.param({**OCT, "k": b64url_encode(SECRET) + "="}, "unpadded", id="padded-k"),
        pytest.param({**OCT, "k": 12}, "'k'", id="int-k"),
    ],
)
def test_key_from_jwk_refuses(jwk: dict[str, object], message: str) -> None:
    """Malformed, unsupported or inconsistent JWKs raise KeyFormatError saying why."""
    with pytest.raises(KeyFormatError, match=message):
        key_from_jwk(jwk)


@pytest.mark.parametrize(
    ("jwk", "message"),
    [
        (OKP_PRIVATE, "private key where public keys were expected"),
        (OCT, "secret key where public keys were expected"),
    ],
)
def test_key_from_jwk_public_only_refuses_secrets(jwk: dict[str, object], message: str) -> None:
    """With public_only, a JWK carrying d, or an oct key, is refused (SPEC.md §3.4)."""
    with pytest.raises(KeyFormatError, match=message):
        key_from_jwk(jwk, public_only=True)


@pytest.mark.parametrize("document", [[OKP], "{}", None, 1])
def test_key_from_jwk_refuses_non_objects(document: object) -> None:
    """A JWK is a JSON object."""
    with pytest.raises(KeyFormatError, match="JSON object"):
        key_from_jwk(document)  # type: ignore[arg-type]


def test_key_format_errors_never_show_secrets() -> None:
    """Refusing a JWK never puts its secret material in the message."""
    short = bytes(range(200, 231))
    for jwk in (
        {**OCT, "k": b64url_encode(short)},
        {**OKP_PRIVATE, "x": OTHER_X},
    ):
        with pytest.raises(KeyFormatError) as info:
            key_from_jwk(jwk)
        for spelling in [*secret_spellings(short), *secret_spellings(RFC8032_SEED), RFC8037_D]:
            assert spelling not in str(info.value)


# -- files ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "key", [HMACKey(SECRET), Ed25519PrivateKey(RFC8032_SEED)], ids=["hmac", "private"]
)
def test_save_key_secret_is_0600_and_never_overwritten(tmp_path: Path, key: Key) -> None:
    """A secret key file is created with mode 0600, loads back, and is never overwritten."""
    path = tmp_path / "key.jwk"
    save_key(path, key, "k1")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_key(path) == ("k1", key)
    assert json.loads(path.read_text()) == key_to_jwk(key, "k1")
    before = path.read_bytes()
    with pytest.raises(FileExistsError):
        save_key(path, HMACKey(bytes(32)), "k2")
    with pytest.raises(FileExistsError):
        save_key(str(path), key, "k1")
    assert path.read_bytes() == before


def test_save_key_public_is_plain_and_replaceable(tmp_path: Path) -> None:
    """A public key file is written plainly; saving again replaces it."""
    path = tmp_path / "pub.jwk"
    save_key(path, Ed25519PublicKey(RFC8032_PUBLIC), "old")
    assert load_key(path) == ("old", Ed25519PublicKey(RFC8032_PUBLIC))
    save_key(os.fspath(path), Ed25519PublicKey(RFC8032_PUBLIC), "new")
    assert load_key(path)[0] == "new"
    assert path.read_text().endswith("}\n")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"{not json", "is not a JSON document"),
        (b"", "is not a JSON document"),
        (b'{"kty": "oct", "k": "\xff"}', "is not a JSON document"),
        (b"[]", "JSON object"),
        (b'{"kty": "oct"}', "'kid'"),
    ],
)
def test_load_key_refuses_bad_documents(tmp_path: Path, content: bytes, message: str) -> None:
    """A key file that is not JSON, not UTF-8 or not a JWK raises KeyFormatError."""
    path = tmp_path / "bad.jwk"
    path.write_bytes(content)
    with pytest.raises(KeyFormatError, match=message):
        load_key(path)


def test_load_key_missing_file(tmp_path: Path) -> None:
    """A missing key file is an OSError, not a format error."""
    with pytest.raises(FileNotFoundError):
        load_key(tmp_path / "missing.jwk")
