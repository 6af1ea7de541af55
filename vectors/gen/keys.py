"""keys.json: HMAC key derivations, the nonce key and Ed25519 key pairs (SPEC.md §3.1, §3.2)."""

from __future__ import annotations

from typing import Final

from gen.common import (
    ALICE,
    ALICE_AT_B,
    FLEET,
    OTHER_FLEET,
    SECRET_A,
    SECRET_B,
    SEED_A,
    SEED_CAROL,
    SEED_SENSOR,
    SEED_SERVER,
    Json,
    document,
    ed25519_public,
    frame_key,
    frame_key_root,
    hx,
    nonce_key,
    token_key,
)

# -- keys.json ----------------------------------------------------------------------

RFC8032_SEED: Final = bytes.fromhex(
    "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"
)
RFC8032_PUBLIC: Final = bytes.fromhex(
    "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
)


def keys_json() -> Json:
    cases: list[Json] = []
    for name, secret, what in (
        ("hmac_issuer_secret_32", SECRET_A, "a 32-byte HMAC issuer secret"),
        ("hmac_issuer_secret_48", SECRET_B, "a 48-byte HMAC issuer secret"),
        ("hmac_issuer_secret_zeros", bytes(32), "an all-zero 32-byte secret"),
    ):
        cases.append(
            {
                "name": name,
                "description": f"token_key and frame_key_root derived from {what} (§3.1)",
                "type": "hmac_issuer_secret",
                "secret": hx(secret),
                "token_key": hx(token_key(secret)),
                "frame_key_root": hx(frame_key_root(secret)),
            }
        )
    for name, secret, tok, what in (
        ("frame_key_alice_token", SECRET_A, ALICE.cred, "alice's token"),
        ("frame_key_partner_token", SECRET_B, ALICE_AT_B.cred, "a token of another issuer"),
        ("frame_key_arbitrary_bytes", SECRET_A, b"not a token", "bytes that are not a token"),
    ):
        cases.append(
            {
                "name": name,
                "description": f"frame_key(T) for {what}: HMAC over the exact bytes of T (§3.1)",
                "type": "frame_key",
                "secret": hx(secret),
                "token": hx(tok),
                "frame_key": hx(frame_key(secret, tok)),
            }
        )
    for name, fleet in (("nonce_key_fleet", FLEET), ("nonce_key_other_fleet", OTHER_FLEET)):
        cases.append(
            {
                "name": name,
                "description": "nonce_key = HKDF(F, 'signedws/v1 nonce-key') (§3.2)",
                "type": "nonce_key",
                "fleet_key": hx(fleet),
                "nonce_key": hx(nonce_key(fleet)),
            }
        )
    assert ed25519_public(RFC8032_SEED) == RFC8032_PUBLIC  # noqa: S101 - RFC 8032 test 1
    for name, seed, what in (
        ("ed25519_rfc8032_test1", RFC8032_SEED, "RFC 8032 §7.1 TEST 1"),
        ("ed25519_issuer_a", SEED_A, "issuer A's key ek-2024"),
        ("ed25519_client_carol", SEED_CAROL, "client carol's key"),
        ("ed25519_client_sensor", SEED_SENSOR, "registered client sensor-7's key"),
        ("ed25519_server", SEED_SERVER, "the server key srv-1"),
    ):
        cases.append(
            {
                "name": name,
                "description": f"Ed25519 public key of a seed: {what}",
                "type": "ed25519_seed",
                "seed": hx(seed),
                "public_key": hx(ed25519_public(seed)),
            }
        )
    return document("Key derivations of SPEC.md §3 and Ed25519 key pairs from seeds.", cases)
