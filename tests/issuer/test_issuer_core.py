"""The I/O-free issuance core (signedws.issuer, SPEC.md §13): challenges, proof
of possession, scope narrowing, lifetimes, the rate limit and the JWKS document.
``now`` is a fixed number throughout."""

from __future__ import annotations

from typing import Any

import pytest

from signedws import Ed25519PrivateKey, HMACKey, Keyring, ServerKey, Verifier
from signedws.credential import unverified_credential
from signedws.issuer import (
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
) -> dict:
    public = b64url_encode(key.public_key().to_bytes())
    got = svc.challenge(principal, {"public_key": public}, now=now)
    challenge = b64url_decode(got["challenge"])
    return {
        "public_key": public,
        "challenge": got["challenge"],
        "signature": b64url_encode(key.sign(pop_input(got["issuer"], challenge))),
    }


def refused(code: str, call: Any, *args: Any, **kwargs: Any) -> IssuanceError:
    with pytest.raises(IssuanceError) as info:
        call(*args, **kwargs)
    assert info.value.code == code, info.value
    return info.value


def keyring() -> Keyring:
    ring = Keyring()
    ring.add_hmac_key("app", "h1", MAC_SECRET)
    ring.add_ed25519_key("app", "e1", ED_ISSUER.public_key())
    return ring


# -- the credentials verify ------------------------------------------------------------------


def test_mac_document_is_a_working_credential() -> None:
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
    svc = service()
    document = svc.issue_ed25519(ALICE, prove(svc, CLIENT), now=NOW)
    claims = unverified_credential(b64url_decode(document["certificate"]))
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
    one, two = service(), service()
    two.node_id = bytes([9]) * 8
    document = two.issue_ed25519(ALICE, prove(one, CLIENT), now=NOW + 1)
    assert document["subject"] == "alice"


def test_replayed_proof_is_refused() -> None:
    svc = service()
    proof = prove(svc, CLIENT)
    first = svc.issue_ed25519(ALICE, proof, now=NOW)
    error = refused("challenge_replayed", svc.issue_ed25519, ALICE, proof, now=NOW + 1)
    assert error.status == 400
    # The cid is the challenge's: a replay elsewhere would mint the same cid.
    assert first["cid"] == b64url_encode(b64url_decode(proof["challenge"])[17:33])


def test_expired_challenge_is_refused() -> None:
    svc = service()
    proof = prove(svc, CLIENT)
    refused("challenge_expired", svc.issue_ed25519, ALICE, proof, now=NOW + 60)
    assert svc.issue_ed25519(ALICE, proof, now=NOW + 59)["subject"] == "alice"


def test_challenge_from_another_nodes_key_is_refused() -> None:
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
    svc = service()
    proof = prove(svc, CLIENT)
    refused("challenge_invalid", svc.issue_ed25519, Principal("mallory"), proof, now=NOW)


def test_bad_signature_is_refused() -> None:
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
    svc = service()
    proof = prove(svc, CLIENT)
    proof["challenge"] = b64url_encode(mangle(b64url_decode(proof["challenge"])))
    refused("challenge_invalid", svc.issue_ed25519, ALICE, proof, now=NOW)


def test_spent_challenges_are_bounded() -> None:
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
    svc = service()
    document = svc.issue_mac(ALICE, {"scopes": ["chat:read", "admin", "openid"]}, now=NOW)
    assert document["scopes"] == ["chat:read"]
    assert svc.issue_mac(Principal("bob"), {}, now=NOW)["scopes"] == []


def test_lifetime_is_bounded_by_config_request_and_login() -> None:
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
def test_bad_requests_are_refused(body: dict) -> None:
    refused("invalid_request", service().issue_mac, ALICE, body, now=NOW)


def test_weak_public_key_is_refused() -> None:
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
    limiter = RateLimiter(rate=1.0, burst=2)
    limiter.take("alice", now=NOW)
    limiter.take("alice", now=NOW)
    error = refused("rate_limited", limiter.take, "alice", now=NOW)
    assert (error.status, error.retry_after) == (429, 1)
    limiter.take("bob", now=NOW)  # another principal is not affected
    limiter.take("alice", now=NOW + 1)


def test_rate_limit_memory_is_bounded() -> None:
    limiter = RateLimiter(rate=1.0, burst=1, max_principals=3)
    for i in range(10):
        limiter.take(f"p{i}", now=NOW)
    assert len(limiter) == 3


# -- key documents ------------------------------------------------------------------------


def test_jwks_document() -> None:
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
