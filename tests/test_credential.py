"""Tests for signedws.credential: tokens, certificates, key references and the Issuer."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ed25519 as c_ed25519
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from hypothesis import given
from hypothesis import strategies as st

from signedws.credential import (
    Claims,
    Ed25519Credential,
    Issuer,
    KeyReference,
    MACCredential,
    TokenKeys,
    encode_key_reference,
    unverified_credential,
)
from signedws.envelope import MAX_CREDENTIAL_SIZE, decode_canonical, encode
from signedws.errors import Code, Rejected, UsageError
from signedws.keys import Ed25519PrivateKey, Ed25519PublicKey, HMACKey

ISS = "https://login.example"
Random = Callable[[int], bytes]


def independent_hkdf(secret: bytes, info: bytes) -> bytes:
    """HKDF-SHA256, empty salt, 32 bytes (SPEC.md §2), straight from cryptography."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(secret)


def independent_hmac(key: bytes, message: bytes) -> bytes:
    """HMAC-SHA256 (SPEC.md §2) from the standard library."""
    return hmac.new(key, message, hashlib.sha256).digest()


def spellings(secret: bytes) -> list[str]:
    """Ways bytes could show up in text."""
    return [
        secret.hex(),
        base64.b64encode(secret).decode().rstrip("="),
        base64.urlsafe_b64encode(secret).decode().rstrip("="),
        repr(secret)[2:-1],
    ]


@pytest.fixture
def mac_issuer(hmac_secret: HMACKey) -> Issuer:
    """An HMAC issuer."""
    return Issuer(ISS, "k1", hmac_secret)


@pytest.fixture
def ed_issuer(issuer_key: Ed25519PrivateKey) -> Issuer:
    """An Ed25519 issuer."""
    return Issuer(ISS, "e1", issuer_key)


def token_fields(**changes: object) -> list[object]:
    """A well-formed token's elements, with a zero tag (SPEC.md §4.2)."""
    fields: dict[str, object] = {
        "version": 1,
        "type": 1,
        "iss": ISS,
        "kid": "k1",
        "cid": "c1",
        "sub": "alice",
        "scopes": ["read"],
        "aud": ["api"],
        "iat": 100,
        "exp": 200,
        "tag": bytes(32),
    }
    fields.update(changes)
    return list(fields.values())


def certificate_fields(**changes: object) -> list[object]:
    """A well-formed certificate's elements, with a zero signature (SPEC.md §4.3)."""
    fields: dict[str, object] = {
        "version": 1,
        "type": 2,
        "iss": ISS,
        "kid": "e1",
        "cid": "c1",
        "sub": "alice",
        "scopes": [],
        "aud": [],
        "iat": 100,
        "exp": 200,
        "key": bytes(range(32)),
        "sig": bytes(64),
    }
    fields.update(changes)
    return list(fields.values())


# -- TokenKeys (SPEC.md §3.1) ------------------------------------------------------------


def test_token_keys_derivations(hmac_secret: HMACKey) -> None:
    """token_key, frame_key_root, token tags and frame keys are the §3.1 formulas."""
    secret = hmac_secret.to_bytes()
    token_key = independent_hkdf(secret, b"signedws/v1 token-key")
    root = independent_hkdf(secret, b"signedws/v1 frame-key")
    keys = TokenKeys(hmac_secret)
    assert keys.token_key == HMACKey(token_key)
    assert keys.frame_key_root == HMACKey(root)
    token = b"\x9b\x01\x01any token bytes"
    assert keys.token_tag(token) == independent_hmac(token_key, b"signedws/v1 token\x00" + token)
    assert keys.frame_key(token) == HMACKey(
        independent_hmac(root, b"signedws/v1 frame-key\x00" + token)
    )
    assert keys.frame_key(token) != keys.frame_key(token + b"\x00")


def test_token_keys_repr_has_no_secret(hmac_secret: HMACKey) -> None:
    """TokenKeys' repr shows no key material."""
    keys = TokenKeys(hmac_secret)
    assert repr(keys) == "TokenKeys(<secret>)"


# -- issuing and parsing tokens -----------------------------------------------------------


def test_issue_token_round_trips(mac_issuer: Issuer, hmac_secret: HMACKey, now: int) -> None:
    """A token's fields parse back as issued, with the §4.2 tag and the §3.1 frame key."""
    cred = mac_issuer.issue_token(
        subject="alice",
        now=now + 0.75,
        lifetime=60,
        scopes=["write", "read"],
        audiences=["api.example"],
        credential_id="cid-1",
    )
    claims = unverified_credential(cred.token)
    assert isinstance(claims, Claims)
    assert (claims.type, claims.iss, claims.kid, claims.cid, claims.sub) == (
        1,
        ISS,
        "k1",
        "cid-1",
        "alice",
    )
    assert claims.scopes == frozenset({"read", "write"})
    assert claims.aud == frozenset({"api.example"})
    assert (claims.iat, claims.exp) == (now, now + 60)
    assert claims.public_key is None
    assert claims.body == cred.token[:-34]
    assert cred.token[-34:-32] == b"\xc4\x20"
    assert claims.tag == cred.token[-32:]
    assert cred.claims == claims
    assert cred.cid == "cid-1"

    secret = hmac_secret.to_bytes()
    token_key = independent_hkdf(secret, b"signedws/v1 token-key")
    assert claims.tag == independent_hmac(token_key, b"signedws/v1 token\x00" + claims.body)
    root = independent_hkdf(secret, b"signedws/v1 frame-key")
    expected_frame_key = independent_hmac(root, b"signedws/v1 frame-key\x00" + cred.token)
    assert cred.frame_key == HMACKey(expected_frame_key)


def test_issue_token_exact_layout(mac_issuer: Issuer, hmac_secret: HMACKey, now: int) -> None:
    """The token is the canonical encoding of §4.2's eleven elements, tag last."""
    cred = mac_issuer.issue_token(subject="alice", now=now, credential_id="c")
    tag = cred.token[-32:]
    assert cred.token == encode([1, 1, ISS, "k1", "c", "alice", [], [], now, now + 900, tag])


def test_issue_token_sorts_and_deduplicates(mac_issuer: Issuer, now: int) -> None:
    """Scopes and audiences are encoded sorted and without duplicates."""
    cred = mac_issuer.issue_token(
        subject="alice",
        now=now,
        scopes=iter(["b", "a", "c", "a", "b"]),
        audiences=("z", "y", "z"),
        credential_id="c",
    )
    fields = decode_canonical(cred.token)
    assert fields[6] == ["a", "b", "c"]
    assert fields[7] == ["y", "z"]


def test_issue_token_random_cid(mac_issuer: Issuer, now: int) -> None:
    """Without a credential_id, the cid is 16 bytes from the random source, base64url."""
    requests: list[int] = []

    def source(n: int) -> bytes:
        requests.append(n)
        return bytes(n)

    cred = mac_issuer.issue_token(subject="alice", now=now, random=source)
    assert cred.cid == "A" * 22
    assert requests == [16]


def test_issue_token_is_deterministic(mac_issuer: Issuer, now: int, zero_random: Random) -> None:
    """Same inputs and randomness give the same token and frame key."""
    one = mac_issuer.issue_token(subject="alice", now=now, random=zero_random)
    two = mac_issuer.issue_token(subject="alice", now=now, random=zero_random)
    assert one.token == two.token
    assert one.frame_key == two.frame_key


def test_issue_token_limits(mac_issuer: Issuer, now: int) -> None:
    """64 scopes, 16 audiences and 255-byte names are accepted."""
    cred = mac_issuer.issue_token(
        subject="s" * 255,
        now=now,
        scopes=[f"s{i}" for i in range(64)],
        audiences=[f"a{i}" for i in range(16)],
        credential_id="c" * 255,
    )
    assert len(cred.claims.scopes) == 64
    assert len(cred.claims.aud) == 16


def test_mac_credential_repr_has_no_secret(mac_issuer: Issuer, now: int) -> None:
    """MACCredential's repr names iss, cid, sub and exp, never token or frame key bytes."""
    cred = mac_issuer.issue_token(subject="alice", now=now, credential_id="c9")
    assert repr(cred) == f"MACCredential(iss={ISS!r}, cid='c9', sub='alice', exp={now + 900})"
    text = repr(cred) + str(cred)
    for secret in (cred.token, cred.frame_key.to_bytes(), cred.claims.tag):
        for spelling in spellings(secret):
            assert spelling not in text


def test_mac_credential_from_parts(mac_issuer: Issuer, now: int) -> None:
    """A MACCredential can be rebuilt from a token and its frame key (the login response)."""
    issued = mac_issuer.issue_token(subject="alice", now=now)
    rebuilt = MACCredential(issued.token, issued.frame_key)
    assert rebuilt.token == issued.token
    assert rebuilt.frame_key == issued.frame_key
    assert rebuilt.claims == issued.claims


def test_mac_credential_refuses_other_credentials(
    ed_issuer: Issuer, client_key: Ed25519PrivateKey, now: int
) -> None:
    """A MACCredential needs a token: certificates, key references and junk are refused."""
    frame_key = HMACKey(bytes(32))
    certificate = ed_issuer.issue_certificate(client_key.public_key(), subject="a", now=now)
    for credential in (certificate, encode_key_reference(ISS, "k")):
        with pytest.raises(UsageError, match="needs a token"):
            MACCredential(credential, frame_key)
    with pytest.raises(UsageError, match="malformed credential"):
        MACCredential(b"\x00", frame_key)


# -- issuing and parsing certificates -------------------------------------------------------


def test_issue_certificate_round_trips(
    ed_issuer: Issuer, issuer_key: Ed25519PrivateKey, client_key: Ed25519PrivateKey, now: int
) -> None:
    """A certificate's fields parse back as issued and its §4.3 signature verifies."""
    certificate = ed_issuer.issue_certificate(
        client_key.public_key(),
        subject="bob",
        now=now,
        scopes=["b", "a", "a"],
        audiences=["api"],
        credential_id="cert-1",
    )
    claims = unverified_credential(certificate)
    assert isinstance(claims, Claims)
    assert (claims.type, claims.iss, claims.kid, claims.cid, claims.sub) == (
        2,
        ISS,
        "e1",
        "cert-1",
        "bob",
    )
    assert claims.scopes == frozenset({"a", "b"})
    assert decode_canonical(certificate)[6] == ["a", "b"]
    assert claims.aud == frozenset({"api"})
    assert (claims.iat, claims.exp) == (now, now + 3600)
    assert claims.public_key == client_key.public_key().to_bytes()
    assert claims.body == certificate[:-66]
    assert certificate[-66:-64] == b"\xc4\x40"
    assert claims.tag == certificate[-64:]
    issuer_public = c_ed25519.Ed25519PublicKey.from_public_bytes(
        issuer_key.public_key().to_bytes()
    )
    issuer_public.verify(claims.tag, b"signedws/v1 certificate\x00" + claims.body)


def test_issue_certificate_exact_layout(
    ed_issuer: Issuer, client_key: Ed25519PrivateKey, now: int
) -> None:
    """The certificate is the canonical encoding of §4.3's twelve elements."""
    public = client_key.public_key().to_bytes()
    certificate = ed_issuer.issue_certificate(
        client_key.public_key(), subject="bob", now=now, lifetime=5, credential_id="c"
    )
    sig = certificate[-64:]
    assert certificate == encode([1, 2, ISS, "e1", "c", "bob", [], [], now, now + 5, public, sig])


def test_ed25519_credential_with_certificate(
    ed_issuer: Issuer, client_key: Ed25519PrivateKey, now: int
) -> None:
    """A certificate pairs with its own private key; cid and claims come from it."""
    certificate = ed_issuer.issue_certificate(
        client_key.public_key(), subject="bob", now=now, credential_id="cert-1"
    )
    cred = Ed25519Credential(certificate, client_key)
    assert cred.credential == certificate
    assert cred.private_key == client_key
    assert cred.claims == unverified_credential(certificate)
    assert cred.cid == "cert-1"
    assert repr(cred) == (
        f"Ed25519Credential(iss={ISS!r}, cid='cert-1', sub='bob', exp={now + 3600})"
    )
    for secret in (client_key.to_bytes(), certificate, certificate[-64:]):
        for spelling in spellings(secret):
            assert spelling not in repr(cred)


def test_ed25519_credential_with_key_reference(client_key: Ed25519PrivateKey) -> None:
    """A key reference pairs with any private key; its cid is its kid."""
    reference = encode_key_reference(ISS, "device-7")
    cred = Ed25519Credential(reference, client_key)
    assert cred.claims == KeyReference(ISS, "device-7")
    assert cred.cid == "device-7"
    assert repr(cred) == f"Ed25519Credential(iss={ISS!r}, kid='device-7')"
    for spelling in spellings(client_key.to_bytes()):
        assert spelling not in repr(cred)


def test_ed25519_credential_refuses_another_key(
    ed_issuer: Issuer, client_key: Ed25519PrivateKey, issuer_key: Ed25519PrivateKey, now: int
) -> None:
    """A certificate for one public key cannot be paired with another private key."""
    certificate = ed_issuer.issue_certificate(client_key.public_key(), subject="b", now=now)
    with pytest.raises(UsageError, match="another public key"):
        Ed25519Credential(certificate, issuer_key)


def test_ed25519_credential_refuses_tokens_and_junk(
    mac_issuer: Issuer, client_key: Ed25519PrivateKey, now: int
) -> None:
    """An Ed25519Credential needs a certificate or key reference."""
    token = mac_issuer.issue_token(subject="alice", now=now).token
    with pytest.raises(UsageError, match="needs a certificate or key reference"):
        Ed25519Credential(token, client_key)
    with pytest.raises(UsageError, match="malformed credential: not canonical"):
        Ed25519Credential(b"\x91\xcc\x01", client_key)


# -- key references (SPEC.md §4.4) ------------------------------------------------------------


def test_encode_key_reference() -> None:
    """A key reference is the canonical [1, 3, iss, kid] and parses back."""
    data = encode_key_reference(ISS, "k")
    assert data == encode([1, 3, ISS, "k"])
    assert unverified_credential(data) == KeyReference(ISS, "k")


@pytest.mark.parametrize(("iss", "kid"), [("", "k"), (ISS, ""), ("i" * 256, "k"), (ISS, 3)])
def test_encode_key_reference_refuses_bad_names(iss: str, kid: str) -> None:
    """Names outside 1-255 UTF-8 bytes are usage errors."""
    with pytest.raises(UsageError):
        encode_key_reference(iss, kid)


# -- unverified_credential refusals ---------------------------------------------------------------


def test_unverified_credential_accepts_the_templates() -> None:
    """The templates used below are themselves well-formed (so each refusal is one change)."""
    assert isinstance(unverified_credential(encode(token_fields())), Claims)
    assert isinstance(unverified_credential(encode(certificate_fields())), Claims)
    limits = token_fields(scopes=[str(i) for i in range(64)], aud=[str(i) for i in range(16)])
    assert len(unverified_credential(encode(limits)).scopes) == 64  # type: ignore[union-attr]


@given(st.binary(max_size=160))
def test_unverified_credential_raises_only_credential_malformed(data: bytes) -> None:
    """For any bytes, unverified_credential returns or raises credential_malformed only."""
    try:
        result: object = unverified_credential(data)
    except Rejected as exc:
        result = exc.code
    assert isinstance(result, Claims | KeyReference) or result is Code.CREDENTIAL_MALFORMED


@given(st.data())
def test_mutated_tokens_raise_only_credential_malformed(data: st.DataObject) -> None:
    """Flipping a byte of a token yields a credential or credential_malformed, nothing else."""
    token = encode(token_fields())
    position = data.draw(st.integers(min_value=0, max_value=len(token) - 1))
    mask = data.draw(st.integers(min_value=1, max_value=255))
    mutated = token[:position] + bytes([token[position] ^ mask]) + token[position + 1 :]
    try:
        result: object = unverified_credential(mutated)
    except Rejected as exc:
        result = exc.code
    assert isinstance(result, Claims | KeyReference) or result is Code.CREDENTIAL_MALFORMED


@pytest.mark.parametrize(
    ("data", "detail"),
    [
        pytest.param(b"", "not a MessagePack value", id="empty"),
        pytest.param(b"\x91\x01\x00", "not a MessagePack value", id="trailing"),
        pytest.param(b"\x01", "not an array", id="not-array"),
        pytest.param(b"\x92\xcc\x01\x01", "not canonical", id="non-canonical"),
        pytest.param(encode(token_fields()) + b"\x00", "not a MessagePack", id="token-trailing"),
        pytest.param(encode([]), "empty array", id="empty-array"),
        pytest.param(encode([1]), "not a version 1 credential", id="version-only"),
        pytest.param(encode(token_fields(version=2)), "not a version 1", id="version-2"),
        pytest.param(encode(token_fields(version="1")), "not a version 1", id="version-str"),
        pytest.param(encode(token_fields(type="1")), "type is not a uint", id="type-str"),
        pytest.param(encode(token_fields(type=0)), "unknown credential type 0", id="type-0"),
        pytest.param(encode(token_fields(type=4)), "unknown credential type 4", id="type-4"),
        pytest.param(encode(token_fields(type=-1)), "element 1 is a negative int", id="type-neg"),
        pytest.param(encode([1, 3, ISS]), "key reference has 3 elements", id="ref-short"),
        pytest.param(encode([1, 3, ISS, "k", 0]), "key reference has 5", id="ref-long"),
        pytest.param(encode([1, 3, "", "k"]), "iss is 0 bytes", id="ref-empty-iss"),
        pytest.param(encode([1, 3, ISS, 5]), "kid is not a str", id="ref-int-kid"),
        pytest.param(encode(token_fields()[:10]), "type 1 has 10 elements", id="token-short"),
        pytest.param(encode([*token_fields(), 0]), "type 1 has 12 elements", id="token-long"),
        pytest.param(encode(certificate_fields()[:11]), "type 2 has 11", id="cert-short"),
        pytest.param(encode([*certificate_fields(), 0]), "type 2 has 13", id="cert-long"),
        pytest.param(encode(token_fields(type=2)), "type 2 has 11", id="token-as-cert"),
        pytest.param(encode(certificate_fields(type=1)), "type 1 has 12", id="cert-as-token"),
        pytest.param(encode(token_fields(iat=-1)), "element 8 is a negative int", id="iat-neg"),
        pytest.param(encode(token_fields(iat="100")), "iat is not a uint", id="iat-str"),
        pytest.param(encode(token_fields(exp=None)), "exp is not a uint", id="exp-nil"),
        pytest.param(encode(token_fields(exp=100)), "exp is not after iat", id="exp-eq-iat"),
        pytest.param(encode(token_fields(exp=99)), "exp is not after iat", id="exp-lt-iat"),
        pytest.param(encode(certificate_fields(key="k" * 32)), "32-byte bin", id="key-str"),
        pytest.param(encode(certificate_fields(key=bytes(31))), "32-byte bin", id="key-short"),
        pytest.param(encode(certificate_fields(key=bytes(33))), "32-byte bin", id="key-long"),
        pytest.param(encode(token_fields(tag=bytes(31))), "32-byte bin", id="tag-short"),
        pytest.param(encode(token_fields(tag=bytes(64))), "32-byte bin", id="tag-64"),
        pytest.param(encode(token_fields(tag="t" * 32)), "32-byte bin", id="tag-str"),
        pytest.param(encode(certificate_fields(sig=bytes(32))), "64-byte bin", id="sig-32"),
        pytest.param(encode(certificate_fields(sig=None)), "64-byte bin", id="sig-nil"),
        pytest.param(encode(token_fields(iss="")), "iss is 0 bytes", id="iss-empty"),
        pytest.param(encode(token_fields(iss=b"i")), "iss is not a str", id="iss-bin"),
        pytest.param(encode(token_fields(kid="k" * 256)), "kid is 256 bytes", id="kid-long"),
        pytest.param(encode(token_fields(cid=1)), "cid is not a str", id="cid-int"),
        pytest.param(encode(token_fields(sub="")), "sub is 0 bytes", id="sub-empty"),
        pytest.param(encode(token_fields(scopes="read")), "scopes is not an array", id="scopes"),
        pytest.param(
            encode(token_fields(scopes=["a", "a"])), "scopes has duplicates", id="scopes-dup"
        ),
        pytest.param(
            encode(token_fields(scopes=[str(i) for i in range(65)])),
            "element 6 has 65 items",
            id="scopes-65",
        ),
        pytest.param(encode(token_fields(scopes=[""])), "scopes is 0 bytes", id="scopes-item"),
        pytest.param(encode(token_fields(aud=None)), "aud is not an array", id="aud-nil"),
        pytest.param(encode(token_fields(aud=["x", "x"])), "aud has duplicates", id="aud-dup"),
        pytest.param(
            encode(token_fields(aud=[str(i) for i in range(17)])),
            "aud has 17 items, over 16",
            id="aud-17",
        ),
        pytest.param(
            encode(certificate_fields(aud=[b"api"])), "aud is not a str", id="cert-aud-bin"
        ),
    ],
)
def test_unverified_credential_refuses(data: bytes, detail: str) -> None:
    """Every malformed credential is credential_malformed, with a detail naming the fault."""
    with pytest.raises(Rejected) as info:
        unverified_credential(data)
    assert info.value.code is Code.CREDENTIAL_MALFORMED
    assert detail in info.value.detail


@pytest.mark.parametrize(
    "fields",
    [
        token_fields(version=True),
        token_fields(type=True),
        token_fields(version=1.0),
        token_fields(iat=100.0),
        token_fields(scopes={}),
        [1, 3, ISS, "k", False],
    ],
    ids=["version-bool", "type-bool", "version-float", "iat-float", "scopes-map", "ref-bool"],
)
def test_unverified_credential_refuses_types_outside_the_spec(fields: list[object]) -> None:
    """Booleans, floats and maps anywhere in a credential make it credential_malformed."""
    with pytest.raises(Rejected) as info:
        unverified_credential(encode(fields))
    assert info.value.code is Code.CREDENTIAL_MALFORMED


@pytest.mark.parametrize("index", range(11))
def test_unverified_credential_details_never_carry_field_contents(index: int) -> None:
    """A credential_malformed detail names the field, never its contents (SPEC.md §9)."""
    mark = "card 4111 1111 1111 1111"
    for junk in (mark.encode(), "x" * 300 + mark, ["x" * 300 + mark]):
        fields = token_fields()
        fields[index] = junk
        with pytest.raises(Rejected) as info:
            unverified_credential(encode(fields))
        assert "4111" not in info.value.detail


# -- Issuer usage errors ----------------------------------------------------------------------


def test_issuer_repr(mac_issuer: Issuer, ed_issuer: Issuer) -> None:
    """An issuer's repr names it, its kid and its scheme, and no key material."""
    assert repr(mac_issuer) == f"Issuer({ISS!r}, kid='k1', hmac)"
    assert repr(ed_issuer) == f"Issuer({ISS!r}, kid='e1', ed25519)"
    assert (mac_issuer.name, mac_issuer.kid) == (ISS, "k1")


@pytest.mark.parametrize(("name", "kid"), [("", "k"), ("i" * 256, "k"), (ISS, ""), (ISS, None)])
def test_issuer_refuses_bad_names(name: str, kid: str, hmac_secret: HMACKey) -> None:
    """Issuer and key names must be strs of 1-255 UTF-8 bytes."""
    with pytest.raises(UsageError):
        Issuer(name, kid, hmac_secret)


def test_issuer_refuses_other_key_types(issuer_key: Ed25519PrivateKey) -> None:
    """An issuer key is an HMACKey or an Ed25519PrivateKey, never a public key or bytes."""
    for key in (issuer_key.public_key(), bytes(32)):
        with pytest.raises(UsageError, match="an issuer key is"):
            Issuer(ISS, "k", key)  # type: ignore[arg-type]


def test_hmac_issuer_refuses_certificates(
    mac_issuer: Issuer, client_key: Ed25519PrivateKey, now: int
) -> None:
    """An HMAC issuer mints tokens only."""
    with pytest.raises(UsageError, match="mints tokens, not certificates"):
        mac_issuer.issue_certificate(client_key.public_key(), subject="a", now=now)


def test_ed25519_issuer_refuses_tokens(ed_issuer: Issuer, now: int) -> None:
    """An Ed25519 issuer mints certificates only."""
    with pytest.raises(UsageError, match="mints certificates, not tokens"):
        ed_issuer.issue_token(subject="a", now=now)


@pytest.mark.parametrize("lifetime", [0, -1, -900])
def test_issuer_refuses_short_lifetimes(
    mac_issuer: Issuer, ed_issuer: Issuer, client_key: Ed25519PrivateKey, now: int, lifetime: int
) -> None:
    """A credential lives at least one second (exp > iat, SPEC.md §4.1)."""
    with pytest.raises(UsageError, match="lifetime"):
        mac_issuer.issue_token(subject="a", now=now, lifetime=lifetime)
    with pytest.raises(UsageError, match="lifetime"):
        ed_issuer.issue_certificate(
            client_key.public_key(), subject="a", now=now, lifetime=lifetime
        )


@pytest.mark.parametrize(
    "case",
    [
        ({"subject": ""}, "sub is 0 bytes"),
        ({"subject": "s" * 256}, "sub is 256 bytes"),
        ({"credential_id": ""}, "cid is 0 bytes"),
        ({"scopes": [""]}, "scopes is 0 bytes"),
        ({"scopes": [str(i) for i in range(65)]}, "scopes has 65 items"),
        ({"audiences": [str(i) for i in range(17)]}, "aud has 17 items"),
        ({"audiences": [1]}, "aud is not a str"),
    ],
)
def test_issuer_refuses_bad_fields(
    mac_issuer: Issuer,
    ed_issuer: Issuer,
    client_key: Ed25519PrivateKey,
    now: int,
    case: tuple[dict[str, object], str],
) -> None:
    """Invalid subjects, cids, scopes and audiences are usage errors for both schemes."""
    changes, message = case
    arguments: dict[str, object] = {"subject": "alice", "now": now, **changes}
    with pytest.raises(UsageError, match=message):
        mac_issuer.issue_token(**arguments)  # type: ignore[arg-type]
    with pytest.raises(UsageError, match=message):
        ed_issuer.issue_certificate(client_key.public_key(), **arguments)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("now", "lifetime"),
    [(2**64 - 1, 1), (2**64 - 900, 900), (-10, 5)],
    ids=["max", "max-minus-lifetime", "negative"],
)
def test_issuer_exp_outside_uint64_is_a_usage_error(
    mac_issuer: Issuer, now: int, lifetime: int
) -> None:
    """An exp outside 0..2**64-1 is refused as a UsageError, as issue_token documents."""
    with pytest.raises(UsageError, match="exp"):
        mac_issuer.issue_token(subject="a", now=now, lifetime=lifetime)


def test_issue_token_refuses_negative_now(mac_issuer: Issuer) -> None:
    """A negative iat cannot be encoded as a uint: issuing a token refuses it."""
    with pytest.raises(UsageError, match="0 <= iat"):
        mac_issuer.issue_token(subject="a", now=-1)


def test_issue_certificate_refuses_negative_now(
    ed_issuer: Issuer, client_key: Ed25519PrivateKey
) -> None:
    """A negative iat cannot be encoded as a uint: issuing a certificate refuses it."""
    with pytest.raises(UsageError):
        ed_issuer.issue_certificate(client_key.public_key(), subject="a", now=-1)


def test_issuer_refuses_oversized_credentials(
    mac_issuer: Issuer, ed_issuer: Issuer, client_key: Ed25519PrivateKey, now: int
) -> None:
    """A credential over MAX_CREDENTIAL_SIZE (SPEC.md §10) is refused when issued."""
    scopes = [f"{i:03d}" + "x" * 250 for i in range(64)]
    assert len(encode(scopes)) > MAX_CREDENTIAL_SIZE
    with pytest.raises(UsageError):
        mac_issuer.issue_token(subject="a", now=now, scopes=scopes)
    with pytest.raises(UsageError):
        ed_issuer.issue_certificate(client_key.public_key(), subject="a", now=now, scopes=scopes)


def test_issue_certificate_keeps_the_given_public_key(
    ed_issuer: Issuer, issuer_key: Ed25519PrivateKey, now: int
) -> None:
    """issue_certificate binds exactly the public key it is given."""
    other = Ed25519PublicKey(Ed25519PrivateKey(bytes([3]) * 32).public_key().to_bytes())
    certificate = ed_issuer.issue_certificate(other, subject="a", now=now)
    claims = unverified_credential(certificate)
    assert isinstance(claims, Claims)
    assert claims.public_key == other.to_bytes()
    assert claims.public_key != issuer_key.public_key().to_bytes()


@pytest.mark.parametrize("scopes", ["read", b"read"])
def test_issuer_refuses_a_single_string_as_a_set(mac_issuer: Issuer, scopes: object) -> None:
    """scopes="read" would mean {"r", "e", "a", "d"}: a bare string is refused."""
    with pytest.raises(UsageError, match="not a single string"):
        mac_issuer.issue_token(subject="a", now=0, scopes=scopes)  # type: ignore[arg-type]
    with pytest.raises(UsageError, match="not a single string"):
        mac_issuer.issue_token(subject="a", now=0, audiences=scopes)  # type: ignore[arg-type]
