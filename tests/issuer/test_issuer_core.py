"""The I/O-free issuance core (signedws.issuer, SPEC.md §13): challenges, proof
of possession, scope narrowing, lifetimes, the rate limit and the JWKS document.
``now`` is a fixed number throughout."""

from __future__ import annotations

from typing import Any

import pytest

from signedws import Ed25519PrivateKey, HMACKey, Keyring, ServerKey, Verifier
from signedws.credential import Claims, Issuer, unverified_credential
from signedws.errors import KeyFormatError, UsageError
from signedws.issuer import (
    CHALLENGE_KEY_INFO,
    ChallengeKey,
    IssuanceError,
    IssuancePolicy,
    IssuerService,
    JWKSEntry,
    Principal,
    RateLimiter,
    SpentChallenges,
    credential_from_response,
    keys_from_jwks,
    pop_input,
)
from signedws.keys import b64url_decode, b64url_encode
from signedws.signer import Signer

NOW = 1_700_000_000
AUD = "wss://api.example/ws"
FLEET = HMACKey(bytes(range(100, 132)))
OTHER_FLEET = HMACKey(bytes(range(200, 232)))
MAC_SECRET = HMACKey(bytes(range(32)))
ED_ISSUER = Ed25519PrivateKey(bytes([1]) * 32)
SERVER = ServerKey("srv-1", Ed25519PrivateKey(bytes([2]) * 32))
CLIENT = Ed25519PrivateKey(bytes([3]) * 32)
OTHER_CLIENT = Ed25519PrivateKey(bytes([4]) * 32)
ALICE = Principal("alice", frozenset({"chat:read", "chat:write", "openid"}), expires=NOW + 3600)


def service(**kwargs: Any) -> IssuerService:
    policy = kwargs.pop(
        "policy", IssuancePolicy((AUD,), grantable=frozenset({"chat:read", "chat:write"}))
    )
    return IssuerService.build(
        policy,
        mac_key=("app", "h1", MAC_SECRET),
        ed25519_key=("app", "e1", ED_ISSUER),
        fleet_key=("fleet-1", FLEET),
        server_keys=[SERVER],
        node_id=bytes(8),
        **kwargs,
    )


def prove(
    svc: IssuerService, key: Ed25519PrivateKey, principal: Principal = ALICE, now: float = NOW
) -> dict[str, Any]:
    public = b64url_encode(key.public_key().to_bytes())
    got = svc.challenge(principal, {"public_key": public}, now=now)
    challenge = b64url_decode(got["challenge"])
    return {
        "public_key": public,
        "challenge": got["challenge"],
        "signature": b64url_encode(key.sign(pop_input(got["issuer"], challenge))),
    }


def _texts(*keys: HMACKey | Ed25519PrivateKey) -> list[str]:
    """Every way a key's secret bytes could be printed."""
    raw = [k.to_bytes() for k in keys]
    return [t for b in raw for t in (b64url_encode(b), b.hex(), repr(b)[2:-1])]


# Secrets whose every rendering must stay out of every error (house rule).
SECRET_TEXTS = _texts(
    FLEET,
    OTHER_FLEET,
    FLEET.derive(CHALLENGE_KEY_INFO),
    MAC_SECRET,
    ED_ISSUER,
    CLIENT,
    OTHER_CLIENT,
)


def assert_no_secret(error: BaseException, *values: object) -> None:
    """No key, token, challenge or signature in the error's text or document."""
    shown = [str(error), repr(error)]
    if isinstance(error, IssuanceError):
        shown += list(error.to_dict().values())
    # A request's base64url fields (challenge, signature ...) are secrets too.
    suspects = list(SECRET_TEXTS)
    for value in values:
        if isinstance(value, dict):
            suspects += [v for v in value.values() if isinstance(v, str) and len(v) >= 16]
        elif isinstance(value, str) and len(value) >= 16:
            suspects.append(value)
    for text in shown:
        for suspect in suspects:
            assert suspect not in text, (suspect, text)


def refused(code: str, call: Any, *args: Any, **kwargs: Any) -> IssuanceError:
    """``call`` raises IssuanceError ``code`` with no secret in its message."""
    with pytest.raises(IssuanceError) as info:
        call(*args, **kwargs)
    assert info.value.code == code, info.value
    assert_no_secret(info.value, *args, *kwargs.values())
    return info.value


def misused(match: str, call: Any, *args: Any, **kwargs: Any) -> UsageError:
    """``call`` raises UsageError matching ``match`` with no secret in it."""
    with pytest.raises(UsageError, match=match) as info:
        call(*args, **kwargs)
    assert_no_secret(info.value, *args, *kwargs.values())
    return info.value


def keyring() -> Keyring:
    ring = Keyring()
    ring.add_hmac_key("app", "h1", MAC_SECRET)
    ring.add_ed25519_key("app", "e1", ED_ISSUER.public_key())
    return ring


# -- the credentials verify ------------------------------------------------------------------


def test_mac_document_is_a_working_credential() -> None:
    """A mac response document is a credential a Verifier accepts."""
    document = service().issue_mac(ALICE, {}, now=NOW)
    assert document["scheme"] == "mac"
    assert document["subject"] == "alice"
    assert document["audiences"] == [AUD]
    # "openid" is a login scope, not one this issuer grants.
    assert document["scopes"] == ["chat:read", "chat:write"]
    assert document["expires_at"] - document["issued_at"] == 900
    credential = credential_from_response(document)
    verifier = Verifier(keyring(), audience=AUD, fleet_key=FLEET)
    state = verifier.open(now=NOW)
    hello = verifier.hello(state, now=NOW)
    from signedws.envelope import decode_hello

    signer = Signer(credential, decode_hello(hello), now=NOW)
    message = verifier.verify(signer.sign("hi", now=NOW), state, now=NOW)
    assert (message.subject, message.payload) == ("alice", "hi")


def test_ed25519_document_is_a_working_certificate() -> None:
    """An ed25519 response document is a certificate a Verifier accepts."""
    svc = service()
    document = svc.issue_ed25519(ALICE, prove(svc, CLIENT), now=NOW)
    claims = unverified_credential(b64url_decode(document["certificate"]))
    assert isinstance(claims, Claims)
    assert claims.public_key == CLIENT.public_key().to_bytes()
    assert document["server_keys"]["keys"][0]["kid"] == "srv-1"
    credential = credential_from_response(document, private_key=CLIENT)
    verifier = Verifier(keyring(), audience=AUD, fleet_key=FLEET)
    state = verifier.open(now=NOW)
    from signedws.envelope import decode_hello

    signer = Signer(
        credential,
        decode_hello(verifier.hello(state, now=NOW)),
        now=NOW,
        server_keys=keys_from_jwks(document["server_keys"], now=NOW),
    )
    assert verifier.verify(signer.sign(b"x", now=NOW), state, now=NOW).subject == "alice"


# -- proof of possession ---------------------------------------------------------------------


def test_challenge_checked_by_another_node_of_the_fleet() -> None:
    """A challenge minted by one node is checked by another holding the fleet key."""
    one, two = service(), service()
    two.node_id = bytes([9]) * 8
    document = two.issue_ed25519(ALICE, prove(one, CLIENT), now=NOW + 1)
    assert document["subject"] == "alice"


def test_replayed_proof_is_refused() -> None:
    """A proof used once is refused on the same node (challenge_replayed)."""
    svc = service()
    proof = prove(svc, CLIENT)
    first = svc.issue_ed25519(ALICE, proof, now=NOW)
    error = refused("challenge_replayed", svc.issue_ed25519, ALICE, proof, now=NOW + 1)
    assert error.status == 400
    # The cid is the challenge's: a replay elsewhere would mint the same cid.
    assert first["cid"] == b64url_encode(b64url_decode(proof["challenge"])[17:33])


def test_expired_challenge_is_refused() -> None:
    """A challenge is accepted until, and refused from, its expiry second."""
    svc = service()
    proof = prove(svc, CLIENT)
    refused("challenge_expired", svc.issue_ed25519, ALICE, proof, now=NOW + 60)
    assert svc.issue_ed25519(ALICE, proof, now=NOW + 59)["subject"] == "alice"


def test_challenge_from_another_nodes_key_is_refused() -> None:
    """A challenge minted under another fleet key is refused (challenge_invalid)."""
    # Another fleet key under the same key id: the tag does not check.
    other = IssuerService.build(
        IssuancePolicy((AUD,)),
        ed25519_key=("app", "e1", ED_ISSUER),
        fleet_key=("fleet-1", OTHER_FLEET),
    )
    error = refused(
        "challenge_invalid", service().issue_ed25519, ALICE, prove(other, CLIENT), now=NOW
    )
    assert "not minted by this issuer" in error.detail
    # Another key id: named in the error.
    other = IssuerService.build(
        IssuancePolicy((AUD,)),
        ed25519_key=("app", "e1", ED_ISSUER),
        fleet_key=("fleet-9", OTHER_FLEET),
    )
    error = refused(
        "challenge_invalid", service().issue_ed25519, ALICE, prove(other, CLIENT), now=NOW
    )
    assert "'fleet-9'" in error.detail


def test_challenge_for_another_public_key_is_refused() -> None:
    """A challenge minted for one public key is refused for another."""
    svc = service()
    proof = prove(svc, CLIENT)
    # The other key signs the challenge minted for CLIENT's key.
    challenge = b64url_decode(proof["challenge"])
    stolen = {
        "public_key": b64url_encode(OTHER_CLIENT.public_key().to_bytes()),
        "challenge": proof["challenge"],
        "signature": b64url_encode(OTHER_CLIENT.sign(pop_input("app", challenge))),
    }
    error = refused("challenge_key_mismatch", svc.issue_ed25519, ALICE, stolen, now=NOW)
    assert "another public key" in error.detail


def test_challenge_for_another_caller_is_refused() -> None:
    """A challenge minted for one caller is refused for another (challenge_invalid)."""
    svc = service()
    proof = prove(svc, CLIENT)
    refused("challenge_invalid", svc.issue_ed25519, Principal("mallory"), proof, now=NOW)


def test_bad_signature_is_refused() -> None:
    """A signature without the proof-of-possession label is refused (proof_invalid)."""
    svc = service()
    proof = prove(svc, CLIENT)
    # A signature over the challenge without the domain label is not a proof.
    bare = CLIENT.sign(b64url_decode(proof["challenge"]))
    proof["signature"] = b64url_encode(bare)
    refused("proof_invalid", svc.issue_ed25519, ALICE, proof, now=NOW)


MANGLES = {
    "empty": lambda c: b"",
    "short": lambda c: c[:40],
    "one byte less": lambda c: c[:-1],
    "one byte more": lambda c: c + b"\x00",
    "version 2": lambda c: b"\x02" + c[1:],
    "kid length 0": lambda c: c[:65] + b"\x00" + c[66:],
    "kid not utf-8": lambda c: c[:66] + b"\xff" + c[67:],
    "later expiry": lambda c: c[:8] + bytes([c[8] + 1]) + c[9:],
}


@pytest.mark.parametrize("mangle", MANGLES.values(), ids=MANGLES.keys())
def test_malformed_or_altered_challenge_is_refused(mangle: Any) -> None:
    """A malformed or altered challenge is refused (challenge_invalid)."""
    svc = service()
    proof = prove(svc, CLIENT)
    proof["challenge"] = b64url_encode(mangle(b64url_decode(proof["challenge"])))
    refused("challenge_invalid", svc.issue_ed25519, ALICE, proof, now=NOW)


def test_spent_challenges_are_bounded() -> None:
    """The spent-challenge cache is bounded: full means issuer_busy, expiry frees room."""
    svc = service(spent=SpentChallenges(capacity=2))
    svc.issue_ed25519(ALICE, prove(svc, CLIENT), now=NOW)
    svc.issue_ed25519(ALICE, prove(svc, CLIENT), now=NOW)
    refused("issuer_busy", svc.issue_ed25519, ALICE, prove(svc, CLIENT), now=NOW)
    # Once they expired, room again; the cache never holds more than its capacity.
    fresh = prove(svc, CLIENT, now=NOW + 60)
    svc.issue_ed25519(ALICE, fresh, now=NOW + 60)
    assert len(svc.spent) <= 2


# -- scopes and lifetimes ------------------------------------------------------------------


def test_scopes_are_narrowed_never_widened() -> None:
    """Granted scopes are the requested ones narrowed to held and grantable."""
    svc = service()
    document = svc.issue_mac(ALICE, {"scopes": ["chat:read", "admin", "openid"]}, now=NOW)
    assert document["scopes"] == ["chat:read"]
    assert svc.issue_mac(Principal("bob"), {}, now=NOW)["scopes"] == []


def test_lifetime_is_bounded_by_config_request_and_login() -> None:
    """A lifetime is bounded by configuration, the request and the login's expiry."""
    svc = service()
    assert svc.issue_mac(ALICE, {"lifetime": 60}, now=NOW)["expires_at"] == NOW + 60
    assert svc.issue_mac(ALICE, {"lifetime": 10**6}, now=NOW)["expires_at"] == NOW + 900
    short = Principal("alice", ALICE.scopes, expires=NOW + 120)
    assert svc.issue_mac(short, {}, now=NOW)["expires_at"] == NOW + 120
    dying = Principal("alice", ALICE.scopes, expires=NOW + 5)
    error = refused("login_expiring", svc.issue_mac, dying, {}, now=NOW)
    assert error.status == 401


@pytest.mark.parametrize(
    "body",
    [
        {"scopes": "chat:read"},
        {"scopes": [1]},
        {"lifetime": 0},
        {"lifetime": "9"},
        {"lifetime": 9},
    ],
)
def test_bad_requests_are_refused(body: dict[str, Any]) -> None:
    """Malformed scopes or lifetimes in a request are refused (invalid_request)."""
    refused("invalid_request", service().issue_mac, ALICE, body, now=NOW)


def test_weak_public_key_is_refused() -> None:
    """A small-order public key is refused (invalid_public_key)."""
    svc = service()
    refused(
        "invalid_public_key",
        svc.challenge,
        ALICE,
        {"public_key": b64url_encode(bytes(32))},
        now=NOW,
    )


# -- rate limit ---------------------------------------------------------------------------


def test_rate_limit_is_per_principal_and_refills() -> None:
    """The rate limit is per principal and refills over time."""
    limiter = RateLimiter(rate=1.0, burst=2)
    limiter.take("alice", now=NOW)
    limiter.take("alice", now=NOW)
    error = refused("rate_limited", limiter.take, "alice", now=NOW)
    assert (error.status, error.retry_after) == (429, 1)
    limiter.take("bob", now=NOW)  # another principal is not affected
    limiter.take("alice", now=NOW + 1)


def test_rate_limit_memory_is_bounded() -> None:
    """The rate limiter keeps at most max_principals buckets."""
    limiter = RateLimiter(rate=1.0, burst=1, max_principals=3)
    for i in range(10):
        limiter.take(f"p{i}", now=NOW)
    assert len(limiter) == 3


# -- key documents ------------------------------------------------------------------------


def test_jwks_document() -> None:
    """The JWKS document lists server and issuer keys with roles and windows."""
    svc = service(
        ed25519_issuer_window=(NOW - 10, NOW + 100),
        issuer_keys=[
            JWKSEntry("issuer", "e0", ED_ISSUER.public_key(), issuer="app", not_after=NOW)
        ],
    )
    document = svc.jwks()
    by_kid = {k["kid"]: k for k in document["keys"]}
    assert by_kid["srv-1"]["signedws_role"] == "server"
    assert by_kid["e1"] == {
        "kty": "OKP",
        "crv": "Ed25519",
        "kid": "e1",
        "x": b64url_encode(ED_ISSUER.public_key().to_bytes()),
        "alg": "EdDSA",
        "use": "sig",
        "signedws_role": "issuer",
        "signedws_iss": "app",
        "nbf": NOW - 10,
        "exp": NOW + 100,
    }
    assert all("d" not in k for k in document["keys"])
    assert keys_from_jwks(document, now=NOW) == {"srv-1": SERVER.private_key.public_key()}
    assert set(keys_from_jwks(document, role="issuer", issuer="app", now=NOW)) == {"e1"}
    # e0 retired at NOW; e1's window closes at NOW + 100.
    assert set(keys_from_jwks(document, role="issuer", now=NOW - 1)) == {"e0", "e1"}
    assert keys_from_jwks(document, role="issuer", now=NOW + 100) == {}
    # The keyring reads the issuer entries as it reads its own file.
    ring = Keyring.from_dict(
        {"issuers": {"app": [k for k in document["keys"] if k["signedws_role"] == "issuer"]}}
    )
    assert ring.issuer_key("app", "e1").window_ms == ((NOW - 10) * 1000, (NOW + 100) * 1000)


def test_jwks_filters_by_issuer_name() -> None:
    """keys_from_jwks keeps only the issuer keys of the issuer asked for."""
    document = service().jwks()
    assert keys_from_jwks(document, role="issuer", issuer="other", now=NOW) == {}
    assert set(keys_from_jwks(document, role="issuer", issuer="app", now=NOW)) == {"e1"}


def test_jwks_of_a_mac_only_issuer_lists_only_server_keys() -> None:
    """Without an ed25519 issuer the JWKS document holds only the server keys."""
    svc = IssuerService.build(
        IssuancePolicy((AUD,)), mac_key=("app", "h1", MAC_SECRET), server_keys=[SERVER]
    )
    assert [k["signedws_role"] for k in svc.jwks()["keys"]] == ["server"]


def test_jwks_with_two_valid_keys_of_one_kid_is_refused() -> None:
    """Two keys valid at once under one kid are refused; a retired duplicate is not."""
    other = Ed25519PrivateKey(bytes([5]) * 32).public_key()
    retired = jwks_of(
        JWKSEntry("server", "s", SERVER.private_key.public_key(), not_after=NOW),
        JWKSEntry("server", "s", other, not_before=NOW),
    )
    assert keys_from_jwks(retired, now=NOW) == {"s": other}
    both = jwks_of(
        JWKSEntry("server", "s", SERVER.private_key.public_key()),
        JWKSEntry("server", "s", other),
    )
    with pytest.raises(KeyFormatError, match="two valid keys 's'"):
        keys_from_jwks(both, now=NOW)


@pytest.mark.parametrize(
    "document",
    [[], {}, {"keys": {}}, {"keys": None}],
    ids=["array", "no keys", "keys an object", "keys null"],
)
def test_jwks_that_is_not_a_key_set_is_refused(document: Any) -> None:
    """A JWKS document without a 'keys' array is refused (KeyFormatError)."""
    with pytest.raises(KeyFormatError, match="'keys' array"):
        keys_from_jwks(document, now=NOW)


@pytest.mark.parametrize(
    "member", [("nbf", "1"), ("exp", -1), ("nbf", 1.5), ("exp", True)], ids=str
)
def test_jwks_with_a_bad_window_is_refused(member: tuple[str, object]) -> None:
    """An nbf or exp that is not whole non-negative seconds is refused."""
    document = jwks_of(JWKSEntry("server", "s", SERVER.private_key.public_key()))
    name, value = member
    document["keys"][0][name] = value
    with pytest.raises(KeyFormatError, match=f"{name} must be whole seconds"):
        keys_from_jwks(document, now=NOW)


def jwks_of(*entries: JWKSEntry) -> dict[str, Any]:
    return {"keys": [entry.to_jwk() for entry in entries]}


# -- refusals of the service ------------------------------------------------------------


def test_error_document_carries_code_and_detail() -> None:
    """An IssuanceError's JSON body is its code and detail, nothing else."""
    error = refused("scheme_unavailable", mac_only().challenge, ALICE, {}, now=NOW)
    assert error.to_dict() == {"error": "scheme_unavailable", "detail": error.detail}
    assert (error.status, error.retry_after) == (404, None)
    assert str(error) == f"scheme_unavailable: {error.detail}"


def test_schemes_the_issuer_lacks_are_unavailable() -> None:
    """A scheme without an issuer is refused with scheme_unavailable (404)."""
    proof = prove(service(), CLIENT)
    refused("scheme_unavailable", mac_only().challenge, ALICE, proof, now=NOW)
    refused("scheme_unavailable", mac_only().issue_ed25519, ALICE, proof, now=NOW)
    ed_only = IssuerService.build(
        IssuancePolicy((AUD,)), ed25519_key=("app", "e1", ED_ISSUER), fleet_key=("f", FLEET)
    )
    error = refused("scheme_unavailable", ed_only.issue_mac, ALICE, {}, now=NOW)
    assert error.status == 404


def mac_only() -> IssuerService:
    return IssuerService.build(IssuancePolicy((AUD,)), mac_key=("app", "h1", MAC_SECRET))


def test_admit_rate_limits_each_subject() -> None:
    """admit spends one request of the principal's bucket; an empty one is rate_limited."""
    svc = service(limiter=RateLimiter(rate=0.5, burst=1))
    svc.admit(ALICE, now=NOW)
    error = refused("rate_limited", svc.admit, ALICE, now=NOW + 1)
    assert (error.status, error.retry_after) == (429, 1)
    svc.admit(Principal("bob"), now=NOW + 1)
    svc.admit(ALICE, now=NOW + 2)


VALID_PROOF = prove(service(), CLIENT)
BAD_B64 = {
    "missing": None,
    "a number": 7,
    "too long": "A" * 2049,
    "padded": "AAAA" + "AA==",
    "non-canonical": "AB",
    "not base64url": "AA+/",
}


@pytest.mark.parametrize("field_", ["public_key", "challenge", "signature"])
@pytest.mark.parametrize("value", BAD_B64.values(), ids=BAD_B64.keys())
def test_bad_base64url_fields_are_refused(field_: str, value: object) -> None:
    """A proof field that is not unpadded canonical base64url is invalid_request."""
    body = dict(VALID_PROOF)
    if value is None:
        del body[field_]
    else:
        body[field_] = value
    error = refused("invalid_request", service().issue_ed25519, ALICE, body, now=NOW)
    assert repr(field_) in error.detail
    if field_ == "public_key":
        refused("invalid_request", service().challenge, ALICE, body, now=NOW)


@pytest.mark.parametrize("size", [0, 31, 33])
def test_public_key_of_wrong_length_is_refused(size: int) -> None:
    """A public key that is not 32 bytes is invalid_public_key."""
    body = {"public_key": b64url_encode(bytes([7]) * size)}
    refused("invalid_public_key", service().challenge, ALICE, body, now=NOW)


def test_every_flipped_challenge_byte_is_refused() -> None:
    """Flipping any one bit of a challenge makes it challenge_invalid."""
    svc = service()
    proof = prove(svc, CLIENT)
    challenge = b64url_decode(proof["challenge"])
    for i in range(len(challenge)):
        altered = bytearray(challenge)
        altered[i] ^= 0x01
        body = dict(proof, challenge=b64url_encode(bytes(altered)))
        refused("challenge_invalid", svc.issue_ed25519, ALICE, body, now=NOW)
    assert svc.issue_ed25519(ALICE, proof, now=NOW)["subject"] == "alice"


def test_every_flipped_or_truncated_signature_is_refused() -> None:
    """A signature with any bit flipped, truncated or extended is proof_invalid."""
    svc = service()
    proof = prove(svc, CLIENT)
    signature = b64url_decode(proof["signature"])
    variants = [signature[:-1], signature + b"\x00", b""]
    for i in range(len(signature)):
        altered = bytearray(signature)
        altered[i] ^= 0x01
        variants.append(bytes(altered))
    for variant in variants:
        body = dict(proof, signature=b64url_encode(variant))
        refused("proof_invalid", svc.issue_ed25519, ALICE, body, now=NOW)
    assert len(svc.spent) == 0  # nothing refused was recorded as spent


def test_bad_scopes_or_lifetime_with_a_valid_proof_spend_nothing() -> None:
    """A certificate request with a bad lifetime is refused before its challenge is spent."""
    svc = service()
    proof = prove(svc, CLIENT)
    refused("invalid_request", svc.issue_ed25519, ALICE, dict(proof, lifetime=0), now=NOW)
    refused("login_expiring", svc.issue_ed25519, Principal("alice", expires=NOW), proof, now=NOW)
    assert len(svc.spent) == 0
    assert svc.issue_ed25519(ALICE, proof, now=NOW)["subject"] == "alice"


def test_rotated_fleet_key_still_checks_its_challenges() -> None:
    """A challenge minted under a previous fleet key is checked after rotation."""
    old = ChallengeKey(FLEET, "fleet-1")
    new = ChallengeKey(OTHER_FLEET, "fleet-2", previous={"fleet-1": FLEET})
    public = CLIENT.public_key()
    args: dict[str, Any] = {"issuer": "app", "subject": "alice"}
    challenge = old.mint(public, node_id=bytes(8), now=NOW, **args)
    assert new.check(challenge, public, now=NOW, **args).key_id == "fleet-1"
    fresh = new.mint(public, node_id=bytes(8), now=NOW, **args)
    assert new.check(fresh, public, now=NOW, **args).key_id == "fleet-2"
    with pytest.raises(IssuanceError) as info:
        old.check(fresh, public, now=NOW, **args)
    assert info.value.code == "challenge_invalid"
    assert_no_secret(info.value, b64url_encode(fresh))


# -- configuration mistakes are UsageErrors -------------------------------------------------


@pytest.mark.parametrize("subject", ["", "x" * 256, "é" * 128, 5, None], ids=repr)
def test_principal_with_a_bad_subject_is_a_usage_error(subject: Any) -> None:
    """A Principal's subject must be a str of 1-255 UTF-8 bytes."""
    misused("subject", Principal, subject)


@pytest.mark.parametrize("scopes", ["chat:read", {1}, ["a", None]], ids=repr)
def test_principal_with_bad_scopes_is_a_usage_error(scopes: Any) -> None:
    """A Principal's scopes must be a collection of strs, not a str."""
    misused("Principal.scopes", Principal, "alice", scopes)


def test_principal_scopes_become_a_frozenset() -> None:
    """Any collection of scope strings is stored as a frozenset."""
    assert Principal("alice", ["b", "a", "a"]).scopes == frozenset({"a", "b"})  # type: ignore[arg-type]


POLICY_MISTAKES: dict[str, tuple[dict[str, Any], str]] = {
    "audiences a str": ({"audiences": AUD}, "at least one audience"),
    "no audience": ({"audiences": ()}, "at least one audience"),
    "empty audience": ({"audiences": (AUD, "")}, "audience"),
    "audience not a str": ({"audiences": (7,)}, "audience"),
    "grantable a str": ({"grantable": "chat:read"}, "grantable"),
    "grantable not strs": ({"grantable": {1}}, "grantable"),
    "mac_lifetime 0": ({"mac_lifetime": 0}, "mac_lifetime"),
    "ed25519_lifetime a float": ({"ed25519_lifetime": 60.0}, "ed25519_lifetime"),
    "min_lifetime a bool": ({"min_lifetime": True}, "min_lifetime"),
    "min over mac max": ({"mac_lifetime": 60, "min_lifetime": 61}, "exceeds"),
    "min over ed25519 max": ({"ed25519_lifetime": 5}, "exceeds"),
}


@pytest.mark.parametrize("mistake", POLICY_MISTAKES.values(), ids=POLICY_MISTAKES.keys())
def test_policy_mistakes_are_usage_errors(mistake: tuple[dict[str, Any], str]) -> None:
    """A policy with a bad audience, grantable set or lifetime is a UsageError."""
    kwargs, match = mistake
    misused(match, IssuancePolicy, **{"audiences": (AUD,), **kwargs})


def test_policy_without_grantable_grants_what_the_principal_holds() -> None:
    """grantable=None: the principal's scopes, narrowed only by the request."""
    policy = IssuancePolicy([AUD])  # type: ignore[arg-type]
    assert policy.audiences == (AUD,)
    assert policy.scopes(ALICE, None) == ALICE.scopes
    assert policy.scopes(ALICE, ["openid", "admin"]) == frozenset({"openid"})


@pytest.mark.parametrize(
    ("kid", "previous"),
    [("", {}), ("k" * 256, {}), ("é" * 128, {}), (None, {}), ("ok", {"": FLEET})],
    ids=["empty", "256 bytes", "256 utf-8 bytes", "not a str", "bad previous kid"],
)
def test_challenge_key_with_a_bad_key_id_is_a_usage_error(kid: Any, previous: Any) -> None:
    """A challenge key id must be a str of 1-255 UTF-8 bytes."""
    misused("kid", ChallengeKey, FLEET, kid, previous=previous)


def test_challenge_key_needs_hmac_keys_and_hides_them() -> None:
    """A challenge key derives from HMACKeys only; its repr shows no key."""
    misused("HMACKey", ChallengeKey, ED_ISSUER, "k")
    misused("HMACKey", ChallengeKey, FLEET, "k", previous={"old": FLEET.to_bytes()})
    key = ChallengeKey(FLEET, "fleet-2", previous={"fleet-1": OTHER_FLEET})
    assert repr(key) == "ChallengeKey(current='fleet-2', keys=2)"
    assert_no_secret(UsageError(repr(key)))


def _mint(**kwargs: Any) -> bytes:
    args: dict[str, Any] = {"issuer": "app", "subject": "alice", "node_id": bytes(8), "now": NOW}
    return ChallengeKey(FLEET, "k").mint(CLIENT.public_key(), **{**args, **kwargs})


MINT_MISTAKES: dict[str, tuple[dict[str, Any], str]] = {
    "node_id 7 bytes": ({"node_id": bytes(7)}, "node_id"),
    "node_id a str": ({"node_id": "01234567"}, "node_id"),
    "ttl 0": ({"ttl": 0}, "ttl"),
    "ttl over 600": ({"ttl": 601}, "ttl"),
    "ttl a float": ({"ttl": 60.0}, "ttl"),
    "random too short": ({"random": lambda n: bytes(n - 1)}, "random source"),
    "random not bytes": ({"random": lambda n: "x" * n}, "random source"),
}


@pytest.mark.parametrize("mistake", MINT_MISTAKES.values(), ids=MINT_MISTAKES.keys())
def test_mint_mistakes_are_usage_errors(mistake: tuple[dict[str, Any], str]) -> None:
    """Minting with a bad node id, ttl or random source is a UsageError."""
    kwargs, match = mistake
    misused(match, _mint, **kwargs)


def test_mint_uses_the_random_source_and_ttl() -> None:
    """A challenge carries its expiry (now + ttl) and the drawn random bytes."""
    challenge = _mint(ttl=600, random=lambda n: bytes([9]) * n)
    assert int.from_bytes(challenge[1:9], "big") == NOW + 600
    assert challenge[17:33] == bytes([9]) * 16


@pytest.mark.parametrize("capacity", [0, -1, 1.5, "9"], ids=repr)
def test_spent_challenges_with_a_bad_capacity_is_a_usage_error(capacity: Any) -> None:
    """The spent-challenge capacity must be a positive whole number."""
    misused("capacity", SpentChallenges, capacity)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"rate": 0},
        {"rate": -1.0},
        {"rate": float("nan")},
        {"burst": 0},
        {"burst": 2.0},
        {"max_principals": 0},
    ],
    ids=repr,
)
def test_rate_limiter_with_bad_parameters_is_a_usage_error(kwargs: dict[str, Any]) -> None:
    """A rate limiter needs a positive rate, burst and max_principals."""
    misused("rate must be positive", RateLimiter, **kwargs)


def test_jwks_entry_role_and_issuer_must_agree() -> None:
    """A JWKS entry is a server key without issuer or an issuer key with one."""
    public = ED_ISSUER.public_key()
    misused("role is 'server' or 'issuer'", JWKSEntry, "client", "k", public)
    misused("names its issuer", JWKSEntry, "issuer", "k", public)
    misused("names its issuer", JWKSEntry, "server", "k", public, issuer="app")


SERVICE_MISTAKES: dict[str, tuple[dict[str, Any], str]] = {
    "no issuer": ({}, "needs a mac issuer, an ed25519 issuer or both"),
    "ed25519 without challenge key": (
        {"ed25519_issuer": Issuer("app", "e1", ED_ISSUER)},
        "challenge_key",
    ),
    "mac issuer with an Ed25519 key": (
        {"mac_issuer": Issuer("app", "e1", ED_ISSUER)},
        "mac issuer's key is an HMACKey",
    ),
    "ed25519 issuer with an HMAC key": (
        {
            "ed25519_issuer": Issuer("app", "h1", MAC_SECRET),
            "challenge_key": ChallengeKey(FLEET, "f"),
        },
        "ed25519 issuer's key is an Ed25519PrivateKey",
    ),
    "node_id 9 bytes": (
        {"mac_issuer": Issuer("app", "h1", MAC_SECRET), "node_id": bytes(9)},
        "node_id",
    ),
    "node_id a bytearray": (
        {"mac_issuer": Issuer("app", "h1", MAC_SECRET), "node_id": bytearray(8)},
        "node_id",
    ),
    "issuer key among server keys": (
        {
            "mac_issuer": Issuer("app", "h1", MAC_SECRET),
            "server_keys": [JWKSEntry("issuer", "e1", ED_ISSUER.public_key(), issuer="app")],
        },
        "role 'server'",
    ),
}


@pytest.mark.parametrize("mistake", SERVICE_MISTAKES.values(), ids=SERVICE_MISTAKES.keys())
def test_service_mistakes_are_usage_errors(mistake: tuple[dict[str, Any], str]) -> None:
    """A service without an issuer, with mismatched keys or a bad node id is a UsageError."""
    kwargs, match = mistake
    misused(match, IssuerService, IssuancePolicy((AUD,)), **kwargs)


def test_issuer_with_the_wrong_key_type_is_refused_when_built() -> None:
    """build() refuses an HMAC key as the ed25519 issuer's key up front."""
    # Before: accepted, then jwks() failed an assert and issue_ed25519 spent
    # the challenge before failing to mint.
    misused(
        "Ed25519PrivateKey",
        IssuerService.build,
        IssuancePolicy((AUD,)),
        ed25519_key=("app", "h1", MAC_SECRET),
        fleet_key=("f", FLEET),
    )
    misused(
        "HMACKey", IssuerService.build, IssuancePolicy((AUD,)), mac_key=("app", "e1", ED_ISSUER)
    )


# -- reading a response document ------------------------------------------------------------


def test_response_without_its_credential_is_refused() -> None:
    """A response missing its token, frame key or certificate is a KeyFormatError."""
    mac = service().issue_mac(ALICE, {}, now=NOW)
    for name in ("token", "frame_key"):
        broken = {k: v for k, v in mac.items() if k != name}
        with pytest.raises(KeyFormatError, match=f"'{name}' is missing") as info:
            credential_from_response(broken)
        assert_no_secret(info.value, mac["token"], mac["frame_key"])
    svc = service()
    ed = svc.issue_ed25519(ALICE, prove(svc, CLIENT), now=NOW)
    with pytest.raises(KeyFormatError, match="'certificate' is missing"):
        credential_from_response({**ed, "certificate": None}, private_key=CLIENT)


def test_ed25519_response_needs_the_private_key() -> None:
    """Reading an ed25519 response without the client's private key is a UsageError."""
    svc = service()
    ed = svc.issue_ed25519(ALICE, prove(svc, CLIENT), now=NOW)
    misused("private key", credential_from_response, ed)


@pytest.mark.parametrize("document", [{}, {"scheme": "jwt"}, [], "mac"], ids=repr)
def test_response_of_an_unknown_scheme_is_refused(document: Any) -> None:
    """A response that is not an object with scheme 'mac' or 'ed25519' is refused."""
    with pytest.raises(KeyFormatError, match="scheme must be 'mac' or 'ed25519'"):
        credential_from_response(document)


def test_secret_check_detects_a_leak() -> None:
    """assert_no_secret fails when a key or a request field shows in an error."""
    leaks = [
        (UsageError(f"bad key {b64url_encode(FLEET.to_bytes())}"), ()),
        (UsageError(f"bad key {CLIENT.to_bytes().hex()}"), ()),
        (IssuanceError("x", 400, "got " + VALID_PROOF["signature"]), (VALID_PROOF,)),
    ]
    for error, values in leaks:
        with pytest.raises(AssertionError):
            assert_no_secret(error, *values)
