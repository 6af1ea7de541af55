"""Decoding the JSON of vectors/*.json into signedws objects, shared by the
tests that run the vectors (tests/test_vectors.py, tests/test_session_vectors.py,
tests/test_js_client.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from signedws.credential import ClientCredential, Ed25519Credential, MACCredential
from signedws.keyring import Keyring
from signedws.keys import Ed25519PrivateKey, Ed25519PublicKey, HMACKey
from signedws.revocation import RevocationSet
from signedws.verifier import Verifier

Json = dict[str, Any]
Payload = str | bytes | None


def h(text: str) -> bytes:
    return bytes.fromhex(text)


def payload_of(value: Json | None) -> Payload:
    if value is None:
        return None
    if "str" in value:
        text: str = value["str"]
        return text
    return h(value["bin"])


def typed(payload: Payload) -> Json | None:
    if payload is None:
        return None
    if isinstance(payload, str):
        return {"str": payload}
    return {"bin": payload.hex()}


def fixed_random(data: bytes) -> Callable[[int], bytes]:
    """A randomness source that returns ``data``, which must be what is asked for."""

    def random(size: int) -> bytes:
        assert size == len(data)
        return data

    return random


def keyring_of(config: Json) -> Keyring:
    keyring = Keyring()
    for entry in config["hmac_keys"]:
        secret = HMACKey(h(entry["secret"]))
        keyring.add_hmac_key(entry["iss"], entry["kid"], secret, **_validity(entry))
    for entry in config["ed25519_keys"]:
        public_key = Ed25519PublicKey(h(entry["public_key"]))
        keyring.add_ed25519_key(entry["iss"], entry["kid"], public_key, **_validity(entry))
    for entry in config["registry"]:
        keyring.register(
            entry["iss"],
            entry["kid"],
            Ed25519PublicKey(h(entry["public_key"])),
            subject=entry["sub"],
            not_before=entry["iat"],
            expires=entry["exp"],
            scopes=entry["scopes"],
            audiences=entry["aud"],
        )
    return keyring


def _validity(entry: Json) -> dict[str, int | None]:
    """An issuer key's validity window, as `Keyring`'s keywords."""
    return {"not_before": entry["not_before"], "not_after": entry["not_after"]}


def revocations_of(config: Json) -> RevocationSet:
    return RevocationSet(
        credentials={(item["iss"], item["cid"]) for item in config["credentials"]},
        subjects={(item["iss"], item["sub"]): item["before"] for item in config["subjects"]},
    )


def verifier_of(config: Json) -> Verifier:
    return Verifier(
        keyring_of(config["keyring"]),
        audience=config["audience"],
        fleet_key=HMACKey(h(config["fleet_key"])),
        node_id=h(config["node_id"]),
        revocations=revocations_of(config["revocations"]),
        window=config["window"],
        max_frame_size=config["max_frame_size"],
        max_skew=config["max_skew"],
        leeway=config["leeway"],
        nonce_ttl=config["nonce_ttl"],
    )


def credential_of(config: Json) -> ClientCredential:
    if config["scheme"] == "mac":
        return MACCredential(h(config["token"]), HMACKey(h(config["frame_key"])))
    return Ed25519Credential(h(config["credential"]), Ed25519PrivateKey(h(config["seed"])))
