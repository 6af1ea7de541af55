"""Tests for signedws.keyring: issuer keys namespaced by (iss, kid), the registry, JWKS."""

from __future__ import annotations

import json

import pytest

from signedws.credential import TokenKeys
from signedws.errors import Code, KeyFormatError, Rejected
from signedws.keyring import IssuerKey, Keyring, RegisteredKey
from signedws.keys import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
    HMACKey,
    b64url_encode,
    key_to_jwk,
)

ISS_A = "https://a.example"
ISS_B = "https://b.example"
# RFC 8037 Appendix A.1's public key.
RFC8037_X = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"
RFC8037_PUBLIC = bytes.fromhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")


def public(n: int) -> Ed25519PublicKey:
    """A fixed, distinct public key for each n."""
    return Ed25519PrivateKey(bytes([n]) * 32).public_key()


def x_of(n: int) -> str:
    """The JWK x member of public(n)."""
    return b64url_encode(public(n).to_bytes())


def okp(kid: str, n: int, **extra: object) -> dict[str, object]:
    """A public OKP JWK for public(n)."""
    return {"kty": "OKP", "crv": "Ed25519", "kid": kid, "x": x_of(n), **extra}


def rejected_code(keyring: Keyring, issuer: str, kid: str, *, registry: bool = False) -> Code:
    """The code of the Rejected a lookup raises."""
    lookup = keyring.registered_key if registry else keyring.issuer_key
    with pytest.raises(Rejected) as info:
        lookup(issuer, kid)
    return info.value.code


def snapshot(keyring: Keyring) -> tuple[int, int, frozenset[str], str]:
    """What must not change when an operation is refused."""
    return keyring.version, len(keyring), keyring.issuers, repr(keyring)


# -- namespacing (SPEC.md §3.3, §11.9) ----------------------------------------------------


def test_same_kid_under_two_issuers_is_two_keys() -> None:
    """(iss, kid) names a key: the same kid under two issuers gives two unrelated keys."""
    keyring = Keyring()
    keyring.add_ed25519_key(ISS_A, "k1", public(1))
    keyring.add_ed25519_key(ISS_B, "k1", public(2))
    assert keyring.issuer_key(ISS_A, "k1") == IssuerKey(ISS_A, "k1", public(1))
    assert keyring.issuer_key(ISS_B, "k1") == IssuerKey(ISS_B, "k1", public(2))
    assert keyring.issuers == frozenset({ISS_A, ISS_B})
    assert len(keyring) == 2


def test_kid_under_the_wrong_issuer_is_unknown_key() -> None:
    """A kid that exists only under another issuer is unknown_key, never that key."""
    keyring = Keyring()
    keyring.add_ed25519_key(ISS_A, "k1", public(1))
    keyring.add_ed25519_key(ISS_B, "k2", public(2))
    assert rejected_code(keyring, ISS_A, "k2") is Code.UNKNOWN_KEY
    assert rejected_code(keyring, ISS_B, "k1") is Code.UNKNOWN_KEY


def test_unknown_issuer() -> None:
    """An issuer with no key in the keyring is unknown_issuer, whatever the kid."""
    keyring = Keyring()
    assert rejected_code(keyring, ISS_A, "k1") is Code.UNKNOWN_ISSUER
    keyring.add_ed25519_key(ISS_A, "k1", public(1))
    assert rejected_code(keyring, ISS_B, "k1") is Code.UNKNOWN_ISSUER


def test_registry_is_a_namespace_of_its_own() -> None:
    """Registry entries and issuer keys with the same (iss, kid) never find each other."""
    keyring = Keyring()
    keyring.add_ed25519_key(ISS_A, "k1", public(1))
    keyring.register(ISS_A, "k1", public(2), subject="alice", not_before=0, expires=10)
    keyring.register(ISS_B, "dev", public(3), subject="bob", not_before=0, expires=10)
    assert keyring.issuer_key(ISS_A, "k1").key == public(1)
    assert keyring.registered_key(ISS_A, "k1").public_key == public(2)
    assert rejected_code(keyring, ISS_B, "dev") is Code.UNKNOWN_ISSUER
    assert rejected_code(keyring, ISS_A, "dev", registry=True) is Code.UNKNOWN_KEY
    assert rejected_code(keyring, ISS_B, "k1", registry=True) is Code.UNKNOWN_KEY
    assert keyring.issuers == frozenset({ISS_A})
    assert len(keyring) == 3


# -- changes and version ---------------------------------------------------------------------


def test_add_hmac_key_holds_derived_keys(hmac_secret: HMACKey) -> None:
    """An HMAC issuer key is held as its §3.1 derived keys, with its window."""
    keyring = Keyring()
    keyring.add_hmac_key(ISS_A, "h1", hmac_secret, not_before=10, not_after=20)
    entry = keyring.issuer_key(ISS_A, "h1")
    assert isinstance(entry.key, TokenKeys)
    assert entry.key.token_key == TokenKeys(hmac_secret).token_key
    assert entry.key.frame_key_root == TokenKeys(hmac_secret).frame_key_root
    assert (entry.not_before, entry.not_after) == (10, 20)


def test_version_moves_on_every_change(hmac_secret: HMACKey) -> None:
    """Every add, replace, retire, remove, register and unregister increments version."""
    keyring = Keyring()
    versions = [keyring.version]
    keyring.add_ed25519_key(ISS_A, "k1", public(1))
    versions.append(keyring.version)
    keyring.add_ed25519_key(ISS_A, "k1", public(2))  # replacement
    versions.append(keyring.version)
    keyring.add_hmac_key(ISS_A, "h1", hmac_secret)
    versions.append(keyring.version)
    keyring.retire(ISS_A, "k1", at=100)
    versions.append(keyring.version)
    keyring.remove(ISS_A, "h1")
    versions.append(keyring.version)
    keyring.register(ISS_B, "d", public(3), subject="s", not_before=0, expires=1)
    versions.append(keyring.version)
    keyring.register(ISS_B, "d", public(4), subject="s", not_before=0, expires=2)
    versions.append(keyring.version)
    keyring.unregister(ISS_B, "d")
    versions.append(keyring.version)
    assert keyring.add_jwks(ISS_B, {"keys": [okp("j1", 5), okp("j2", 6)]}) == ["j1", "j2"]
    versions.append(keyring.version)
    assert versions == [0, 1, 2, 3, 4, 5, 6, 7, 8, 10]


def test_replacing_a_key_keeps_one_entry() -> None:
    """Adding the same (iss, kid) again replaces the key and its window."""
    keyring = Keyring()
    keyring.add_ed25519_key(ISS_A, "k1", public(1), not_after=50)
    keyring.add_ed25519_key(ISS_A, "k1", public(2))
    assert len(keyring) == 1
    assert keyring.issuer_key(ISS_A, "k1") == IssuerKey(ISS_A, "k1", public(2))
    keyring.remove(ISS_A, "k1")
    assert keyring.issuers == frozenset()


def test_retire_sets_not_after() -> None:
    """retire sets not_after and keeps the key and not_before."""
    keyring = Keyring()
    keyring.add_ed25519_key(ISS_A, "k1", public(1), not_before=10)
    keyring.retire(ISS_A, "k1", at=500)
    assert keyring.issuer_key(ISS_A, "k1") == IssuerKey(ISS_A, "k1", public(1), 10, 500)
    assert keyring.issuer_key(ISS_A, "k1").window_ms == (10_000, 500_000)


def test_retire_keeps_the_document_loadable() -> None:
    """After retire, what to_dict writes from_dict loads (or retire refused the time)."""
    keyring = Keyring()
    keyring.add_ed25519_key(ISS_A, "k1", public(1), not_before=2000)
    try:
        keyring.retire(ISS_A, "k1", at=1000)
    except KeyFormatError:
        assert keyring.issuer_key(ISS_A, "k1").not_after is None
        return
    assert Keyring.from_dict(keyring.to_dict()).to_dict() == keyring.to_dict()


def test_retire_and_remove_unknown_keys_raise_key_error() -> None:
    """retire, remove and unregister of an absent entry raise KeyError and change nothing."""
    keyring = Keyring()
    keyring.add_ed25519_key(ISS_A, "k1", public(1))
    before = snapshot(keyring)
    with pytest.raises(KeyError):
        keyring.retire(ISS_A, "k2", at=1)
    with pytest.raises(KeyError):
        keyring.retire(ISS_B, "k1", at=1)
    with pytest.raises(KeyError):
        keyring.remove(ISS_B, "k1")
    with pytest.raises(KeyError):
        keyring.remove(ISS_A, "k2")
    with pytest.raises(KeyError):
        keyring.unregister(ISS_A, "k1")
    assert snapshot(keyring) == before


def test_remove_forgets_the_issuer_with_its_last_key() -> None:
    """An issuer stays trusted while it has a key and becomes unknown after its last one."""
    keyring = Keyring()
    keyring.add_ed25519_key(ISS_A, "k1", public(1))
    keyring.add_ed25519_key(ISS_A, "k2", public(2))
    keyring.remove(ISS_A, "k1")
    assert keyring.issuers == frozenset({ISS_A})
    assert rejected_code(keyring, ISS_A, "k1") is Code.UNKNOWN_KEY
    keyring.remove(ISS_A, "k2")
    assert keyring.issuers == frozenset()
    assert rejected_code(keyring, ISS_A, "k2") is Code.UNKNOWN_ISSUER
    assert len(keyring) == 0


def test_register_and_unregister() -> None:
    """A registry entry holds the key and claims as given; unregister removes it."""
    keyring = Keyring()
    keyring.register(
        ISS_A,
        "dev-1",
        public(1),
        subject="alice",
        not_before=10,
        expires=20,
        scopes=iter(["b", "a"]),
        audiences=("api",),
    )
    assert keyring.registered_key(ISS_A, "dev-1") == RegisteredKey(
        ISS_A, "dev-1", public(1), "alice", frozenset({"a", "b"}), frozenset({"api"}), 10, 20
    )
    keyring.unregister(ISS_A, "dev-1")
    assert rejected_code(keyring, ISS_A, "dev-1", registry=True) is Code.UNKNOWN_KEY


def test_trusts_ed25519(hmac_secret: HMACKey) -> None:
    """Ed25519 clients can authenticate with an Ed25519 issuer key or a
    registry entry, not with HMAC keys alone (SPEC.md §7.1: the server then
    needs a server key)."""
    keyring = Keyring()
    assert not keyring.trusts_ed25519
    keyring.add_hmac_key(ISS_A, "h", hmac_secret)
    assert not keyring.trusts_ed25519
    keyring.add_ed25519_key(ISS_A, "e", public(1))
    assert keyring.trusts_ed25519
    keyring.remove(ISS_A, "e")
    assert not keyring.trusts_ed25519
    keyring.register(ISS_A, "dev-1", public(2), subject="alice", not_before=10, expires=20)
    assert keyring.trusts_ed25519


def test_window_ms() -> None:
    """window_ms is [not_before, not_after) in ms, open ends as 0 and 2**64."""
    key = public(1)
    assert IssuerKey(ISS_A, "k", key).window_ms == (0, 2**64)
    assert IssuerKey(ISS_A, "k", key, not_before=5).window_ms == (5_000, 2**64)
    assert IssuerKey(ISS_A, "k", key, not_after=7).window_ms == (0, 7_000)
    assert IssuerKey(ISS_A, "k", key, 5, 7).window_ms == (5_000, 7_000)


def test_repr_and_len(hmac_secret: HMACKey) -> None:
    """repr counts issuers, keys and registry entries and shows no key material."""
    keyring = Keyring()
    keyring.add_hmac_key(ISS_B, "h", hmac_secret)
    keyring.add_ed25519_key(ISS_A, "k", public(1))
    keyring.register(ISS_A, "d", public(2), subject="s", not_before=0, expires=1)
    assert repr(keyring) == f"Keyring(issuers={[ISS_A, ISS_B]}, keys=2, registered=1)"
    assert len(keyring) == 3
    assert hmac_secret.to_bytes().hex() not in repr(keyring)


# -- refusals -----------------------------------------------------------------------------------


def test_add_keys_refuse_wrong_key_types(hmac_secret: HMACKey) -> None:
    """Each add takes only its own key type."""
    keyring = Keyring()
    with pytest.raises(KeyFormatError, match="needs an HMACKey"):
        keyring.add_hmac_key(ISS_A, "k", public(1))  # type: ignore[arg-type]
    with pytest.raises(KeyFormatError, match="needs an Ed25519PublicKey"):
        keyring.add_ed25519_key(ISS_A, "k", hmac_secret)  # type: ignore[arg-type]
    with pytest.raises(KeyFormatError, match="needs an Ed25519PublicKey"):
        keyring.add_ed25519_key(
            ISS_A,
            "k",
            Ed25519PrivateKey(bytes(32)),  # type: ignore[arg-type]
        )
    with pytest.raises(KeyFormatError, match="needs an Ed25519PublicKey"):
        keyring.register(
            ISS_A,
            "k",
            public(1).to_bytes(),  # type: ignore[arg-type]
            subject="s",
            not_before=0,
            expires=1,
        )
    assert snapshot(keyring) == (0, 0, frozenset(), repr(Keyring()))


@pytest.mark.parametrize(
    ("issuer", "kid", "window", "message"),
    [
        ("", "k", {}, "issuer is 0 bytes"),
        (ISS_A, "", {}, "kid is 0 bytes"),
        (ISS_A, "k" * 256, {}, "kid is 256 bytes"),
        (ISS_A, 1, {}, "kid is not a str"),
        (ISS_A, "k", {"not_before": -1}, "not_before must be"),
        (ISS_A, "k", {"not_before": 1.5}, "not_before must be"),
        (ISS_A, "k", {"not_before": True}, "not_before must be"),
        (ISS_A, "k", {"not_after": 2**63}, "not_after must be"),
        (ISS_A, "k", {"not_after": "10"}, "not_after must be"),
        (ISS_A, "k", {"not_before": 10, "not_after": 10}, "not_after must be after"),
        (ISS_A, "k", {"not_before": 10, "not_after": 9}, "not_after must be after"),
    ],
)
def test_add_keys_refuse_bad_names_and_windows(
    hmac_secret: HMACKey, issuer: str, kid: str, window: dict[str, int], message: str
) -> None:
    """Invalid names and windows are refused by both adds, leaving the keyring unchanged."""
    keyring = Keyring()
    with pytest.raises(KeyFormatError, match=message):
        keyring.add_ed25519_key(issuer, kid, public(1), **window)
    with pytest.raises(KeyFormatError, match=message):
        keyring.add_hmac_key(issuer, kid, hmac_secret, **window)
    assert snapshot(keyring) == snapshot(Keyring())


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"issuer": ""}, "issuer is 0 bytes"),
        ({"kid": "k" * 256}, "kid is 256 bytes"),
        ({"subject": ""}, "subject is 0 bytes"),
        ({"not_before": -1}, "not_before must be"),
        ({"not_before": None}, "not_before must be"),
        ({"expires": 2**63}, "expires must be"),
        ({"expires": 10}, "expires must be after not_before"),
        ({"expires": 9}, "expires must be after not_before"),
        ({"scopes": ["a", "a"]}, "scopes has duplicates"),
        ({"scopes": [str(i) for i in range(65)]}, "scopes has 65 items"),
        ({"scopes": [1]}, "scopes is not a str"),
        ({"audiences": [str(i) for i in range(17)]}, "audiences has 17 items"),
        ({"audiences": [""]}, "audiences is 0 bytes"),
    ],
)
def test_register_refuses(changes: dict[str, object], message: str) -> None:
    """Invalid registry entries are refused and leave the keyring unchanged."""
    keyring = Keyring()
    arguments: dict[str, object] = {
        "issuer": ISS_A,
        "kid": "dev",
        "public_key": public(1),
        "subject": "alice",
        "not_before": 10,
        "expires": 20,
        **changes,
    }
    with pytest.raises(KeyFormatError, match=message):
        keyring.register(**arguments)  # type: ignore[arg-type]
    assert snapshot(keyring) == snapshot(Keyring())


# -- JWKS (SPEC.md §3.4) ------------------------------------------------------------------------


def test_add_jwks_rfc8037_key() -> None:
    """The RFC 8037 example public key, given a kid, is trusted under the given issuer."""
    keyring = Keyring()
    jwk = {"kty": "OKP", "crv": "Ed25519", "x": RFC8037_X, "kid": "rfc"}
    assert keyring.add_jwks(ISS_A, {"keys": [jwk]}) == ["rfc"]
    assert keyring.issuer_key(ISS_A, "rfc").key == Ed25519PublicKey(RFC8037_PUBLIC)


def test_add_jwks_from_text_with_window() -> None:
    """A JWKS given as JSON text adds every key, in order, each with the given window."""
    keyring = Keyring()
    document = json.dumps(
        {"keys": [okp("b", 2, use="sig", alg="EdDSA"), okp("a", 1)], "other": "ignored"}
    )
    assert keyring.add_jwks(ISS_A, document, not_before=5, not_after=6) == ["b", "a"]
    assert keyring.issuer_key(ISS_A, "a") == IssuerKey(ISS_A, "a", public(1), 5, 6)
    assert keyring.issuer_key(ISS_A, "b") == IssuerKey(ISS_A, "b", public(2), 5, 6)


def test_add_jwks_empty_document() -> None:
    """A JWKS with no keys adds nothing and changes nothing."""
    keyring = Keyring()
    assert keyring.add_jwks(ISS_A, {"keys": []}) == []
    assert snapshot(keyring) == snapshot(Keyring())


GOOD = okp("good", 1)
PRIVATE_JWK = key_to_jwk(Ed25519PrivateKey(bytes([2]) * 32), "priv")


@pytest.mark.parametrize(
    ("document", "message"),
    [
        pytest.param("{not json", "JWKS is not JSON", id="not-json"),
        pytest.param("", "JWKS is not JSON", id="empty-text"),
        pytest.param(json.dumps([GOOD]), "'keys' array", id="json-list"),
        pytest.param([GOOD], "'keys' array", id="list"),
        pytest.param({}, "'keys' array", id="no-keys"),
        pytest.param({"keys": GOOD}, "'keys' array", id="keys-object"),
        pytest.param({"keys": json.dumps([GOOD])}, "'keys' array", id="keys-text"),
        pytest.param({"keys": [GOOD, PRIVATE_JWK]}, "private key", id="private"),
        pytest.param(
            {"keys": [GOOD, key_to_jwk(HMACKey(bytes(32)), "o")]}, "secret key", id="oct"
        ),
        pytest.param(
            {"keys": [GOOD, {k: v for k, v in okp("x", 2).items() if k != "kid"}]},
            "'kid'",
            id="no-kid",
        ),
        pytest.param({"keys": [GOOD, okp("good", 2)]}, "duplicate kid", id="duplicate-kids"),
        pytest.param({"keys": [GOOD, okp("u", 2, use="enc")]}, "use must be", id="use-enc"),
        pytest.param({"keys": [GOOD, okp("u", 2, alg="RS256")]}, "alg must be", id="alg"),
        pytest.param(
            {"keys": [GOOD, {**okp("w", 2), "x": b64url_encode(bytes(32))}]},
            "small-order",
            id="weak-x",
        ),
        pytest.param(
            {"keys": [GOOD, {**okp("w", 2), "x": b64url_encode(bytes(31))}]},
            "31 bytes",
            id="short-x",
        ),
        pytest.param({"keys": [GOOD, {**okp("c", 2), "crv": "X25519"}]}, "crv", id="x25519"),
        pytest.param({"keys": [GOOD, "not an object"]}, "JSON object", id="entry-text"),
        pytest.param({"keys": [GOOD, okp("k" * 256, 2)]}, "kid is 256 bytes", id="long-kid"),
    ],
)
def test_add_jwks_refuses_the_whole_document(document: object, message: str) -> None:
    """One bad entry refuses the whole JWKS: the keyring is unchanged afterwards."""
    keyring = Keyring()
    keyring.add_ed25519_key(ISS_A, "existing", public(9))
    before = (snapshot(keyring), keyring.to_dict())
    with pytest.raises(KeyFormatError, match=message):
        keyring.add_jwks(ISS_A, document)  # type: ignore[arg-type]
    assert (snapshot(keyring), keyring.to_dict()) == before
    assert rejected_code(keyring, ISS_A, "good") is Code.UNKNOWN_KEY


@pytest.mark.parametrize(
    ("issuer", "window", "message"),
    [
        ("", {}, "issuer is 0 bytes"),
        (ISS_A, {"not_before": 9, "not_after": 9}, "not_after must be after"),
        (ISS_A, {"not_before": -5}, "not_before must be"),
    ],
)
def test_add_jwks_refuses_bad_issuer_or_window(
    issuer: str, window: dict[str, int], message: str
) -> None:
    """A bad issuer name or window refuses the JWKS before anything is added."""
    keyring = Keyring()
    with pytest.raises(KeyFormatError, match=message):
        keyring.add_jwks(issuer, {"keys": [GOOD]}, **window)
    assert snapshot(keyring) == snapshot(Keyring())


# -- documents ------------------------------------------------------------------------------------


def full_document() -> dict[str, object]:
    """A keyring document with windows, two issuers and registry entries."""
    return {
        "issuers": {
            ISS_A: [okp("k1", 1, nbf=10, exp=20), okp("k2", 2)],
            ISS_B: [okp("k1", 3, exp=30)],
        },
        "registry": {
            ISS_A: [
                {
                    "kid": "dev-1",
                    "x": x_of(4),
                    "sub": "alice",
                    "scopes": ["a", "b"],
                    "aud": ["api"],
                    "nbf": 0,
                    "exp": 100,
                }
            ],
            ISS_B: [
                {
                    "kid": "dev-2",
                    "x": x_of(5),
                    "sub": "bob",
                    "scopes": [],
                    "aud": [],
                    "nbf": 5,
                    "exp": 6,
                }
            ],
        },
    }


def test_from_dict_to_dict_round_trip() -> None:
    """A document of Ed25519 keys and registry entries loads and writes back unchanged."""
    keyring = Keyring.from_dict(full_document())
    assert keyring.issuer_key(ISS_A, "k1") == IssuerKey(ISS_A, "k1", public(1), 10, 20)
    assert keyring.issuer_key(ISS_B, "k1") == IssuerKey(ISS_B, "k1", public(3), None, 30)
    assert keyring.registered_key(ISS_A, "dev-1") == RegisteredKey(
        ISS_A, "dev-1", public(4), "alice", frozenset({"a", "b"}), frozenset({"api"}), 0, 100
    )
    assert keyring.to_dict() == full_document()
    assert Keyring.from_dict(json.loads(json.dumps(keyring.to_dict()))).to_dict() == (
        full_document()
    )


def test_to_dict_sorts_registry_sets() -> None:
    """Registry scopes and audiences are written sorted."""
    keyring = Keyring()
    keyring.register(
        ISS_A, "d", public(1), subject="s", not_before=0, expires=1, scopes=["z", "a", "m"]
    )
    registry = keyring.to_dict()["registry"]
    assert registry == {
        ISS_A: [
            {
                "kid": "d",
                "x": x_of(1),
                "sub": "s",
                "scopes": ["a", "m", "z"],
                "aud": [],
                "nbf": 0,
                "exp": 1,
            }
        ]
    }


def test_from_dict_empty() -> None:
    """An empty document is an empty keyring, and an empty keyring writes empty groups."""
    assert len(Keyring.from_dict({})) == 0
    assert Keyring().to_dict() == {"issuers": {}, "registry": {}}
    assert Keyring.from_dict({"issuers": {}, "registry": {}}).version == 0


def test_from_dict_hmac_keys(hmac_secret: HMACKey) -> None:
    """oct JWKs load as HMAC issuer keys with their window, and cannot be exported."""
    jwk = {**key_to_jwk(hmac_secret, "h1"), "nbf": 1, "exp": 2}
    keyring = Keyring.from_dict({"issuers": {ISS_A: [jwk]}})
    entry = keyring.issuer_key(ISS_A, "h1")
    assert isinstance(entry.key, TokenKeys)
    assert entry.key.token_key == TokenKeys(hmac_secret).token_key
    assert (entry.not_before, entry.not_after) == (1, 2)
    with pytest.raises(KeyFormatError, match="HMAC issuer keys cannot be exported"):
        keyring.to_dict()


def registry_entry(**changes: object) -> dict[str, object]:
    """A valid registry entry, changed."""
    entry: dict[str, object] = {"kid": "d", "x": x_of(1), "sub": "s", "nbf": 0, "exp": 1}
    entry.update(changes)
    return {k: v for k, v in entry.items() if v is not None}


@pytest.mark.parametrize(
    ("document", "message"),
    [
        pytest.param([], "must be an object", id="list"),
        pytest.param({"issuers": {}, "keys": []}, "unknown keyring members", id="unknown"),
        pytest.param({"issuers": []}, "issuers must be an object", id="issuers-list"),
        pytest.param({"registry": "x"}, "registry must be an object", id="registry-text"),
        pytest.param({"issuers": {ISS_A: {}}}, "must be an array of objects", id="group-obj"),
        pytest.param({"issuers": {ISS_A: ["x"]}}, "must be an array of objects", id="group-item"),
        pytest.param({"issuers": {"": []}}, "issuer is 0 bytes", id="empty-issuer"),
        pytest.param({"issuers": {ISS_A: [{"kty": "OKP"}]}}, "'kid'", id="bad-jwk"),
        pytest.param({"issuers": {ISS_A: [PRIVATE_JWK]}}, "give its public part", id="private"),
        pytest.param({"issuers": {ISS_A: [okp("k", 1, nbf=-1)]}}, "nbf must be", id="nbf-neg"),
        pytest.param({"issuers": {ISS_A: [okp("k", 1, exp="1")]}}, "exp must be", id="exp-str"),
        pytest.param(
            {"issuers": {ISS_A: [okp("k", 1, nbf=2, exp=2)]}}, "not_after must be", id="window"
        ),
        pytest.param({"registry": {ISS_A: [registry_entry(kid=None)]}}, "kid", id="reg-no-kid"),
        pytest.param({"registry": {ISS_A: [registry_entry(x=None)]}}, "x", id="reg-no-x"),
        pytest.param(
            {"registry": {ISS_A: [registry_entry(x=x_of(1) + "=")]}}, "unpadded", id="reg-pad-x"
        ),
        pytest.param(
            {"registry": {ISS_A: [registry_entry(x=b64url_encode(bytes(32)))]}},
            "small-order",
            id="reg-weak-x",
        ),
        pytest.param({"registry": {ISS_A: [registry_entry(sub=None)]}}, "sub", id="reg-no-sub"),
        pytest.param(
            {"registry": {ISS_A: [registry_entry(scopes="a")]}}, "must be arrays", id="scopes"
        ),
        pytest.param({"registry": {ISS_A: [registry_entry(aud={})]}}, "must be arrays", id="aud"),
        pytest.param({"registry": {ISS_A: [registry_entry(nbf=None)]}}, "nbf", id="reg-no-nbf"),
        pytest.param({"registry": {ISS_A: [registry_entry(exp=None)]}}, "exp", id="reg-no-exp"),
        pytest.param(
            {"registry": {ISS_A: [registry_entry(nbf=1, exp=1)]}}, "after", id="reg-window"
        ),
        pytest.param(
            {"registry": {ISS_A: [registry_entry(scopes=["a", "a"])]}}, "duplicates", id="dup"
        ),
        # SPEC.md §3.5 (and issue 13's finding 8).
        pytest.param(
            {"issuers": {ISS_A: [okp("k", 1), okp("k", 2)]}}, "two keys with kid 'k'", id="dup-kid"
        ),
        pytest.param(
            {"issuers": {ISS_A: [okp("k", 1), {"kty": "oct", "kid": "k", "k": "A" * 43}]}},
            "two keys with kid 'k'",
            id="dup-kid-other-type",
        ),
        pytest.param(
            {"registry": {ISS_A: [registry_entry(), registry_entry()]}},
            "two entries with kid 'd'",
            id="reg-dup-kid",
        ),
        pytest.param(
            {"registry": {ISS_A: [{**registry_entry(), "d": b64url_encode(bytes([1]) * 32)}]}},
            r"private key \(d\)",
            id="reg-private",
        ),
        pytest.param(
            {"registry": {ISS_A: [{**registry_entry(), "kty": "oct"}]}},
            "not an OKP Ed25519 key",
            id="reg-kty",
        ),
        pytest.param(
            {"registry": {ISS_A: [{**registry_entry(), "crv": "X25519"}]}},
            "not an OKP Ed25519 key",
            id="reg-crv",
        ),
        pytest.param({"issuers": {ISS_A: [okp("k", 1, exp=True)]}}, "exp must be", id="exp-bool"),
        pytest.param(
            {"issuers": {ISS_A: [{"kty": "oct", "kid": "h", "k": "A" * 43, "alg": "HS512"}]}},
            "alg must be HS256",
            id="oct-alg",
        ),
    ],
)
def test_from_dict_refuses(document: object, message: str) -> None:
    """Any invalid keyring document raises KeyFormatError saying what is wrong."""
    with pytest.raises(KeyFormatError, match=message):
        Keyring.from_dict(document)  # type: ignore[arg-type]


def test_from_dict_registry_defaults() -> None:
    """A registry entry without scopes or aud has empty sets."""
    keyring = Keyring.from_dict({"registry": {ISS_A: [registry_entry()]}})
    entry = keyring.registered_key(ISS_A, "d")
    assert (entry.scopes, entry.audiences) == (frozenset(), frozenset())
    assert keyring.issuers == frozenset()


def test_keyring_document_of_the_spec() -> None:
    """SPEC.md §3.5: the keyring document as the spec writes it loads, with the
    issuer key's nbf/exp as its window, the registry entry's nbf/exp as its iat
    and exp, optional kty/crv on a registry entry, unknown JWK members ignored,
    and the same (iss, kid) once as an issuer key and once in the registry."""
    document = {
        "issuers": {
            ISS_A: [
                {"kty": "oct", "kid": "h1", "k": "A" * 43, "nbf": 100, "exp": 200, "note": "x"},
                okp("e1", 1, exp=300),
            ]
        },
        "registry": {
            ISS_A: [
                {
                    **registry_entry(kid="e1", nbf=10, exp=20),
                    "kty": "OKP",
                    "crv": "Ed25519",
                }
            ]
        },
    }
    keyring = Keyring.from_dict(document)
    assert keyring.issuer_key(ISS_A, "h1").window_ms == (100_000, 200_000)
    assert (
        keyring.issuer_key(ISS_A, "e1").not_before,
        keyring.issuer_key(ISS_A, "e1").not_after,
    ) == (
        None,
        300,
    )
    entry = keyring.registered_key(ISS_A, "e1")
    assert (entry.not_before, entry.expires) == (10, 20)
