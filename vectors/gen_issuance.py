#!/usr/bin/env python3
"""Generate ``vectors/issuance.json``: the proof-of-possession vectors of
SPEC.md §13.3.

Run ``python vectors/gen_issuance.py``; it writes ``issuance.json`` next to
itself, deterministically. Like ``generate.py`` it is an independent
implementation built from SPEC.md alone: hmac/hashlib, cryptography's HKDF and
PyNaCl, never ``signedws``. Expected codes are worked out by hand from §13.3's
checking steps (the first failing step wins).

File format (conventions of ``vectors/README.md``: bytes as lowercase hex):

- ``challenge_key``: ``{"fleet_key", "challenge_key"}`` (§13.3 derivation).
- cases with ``"kind": "mint"``: inputs ``fleet_key``, ``ckid``, ``iss``,
  ``sub``, ``node_id``, ``expires``, ``random``, ``public_key`` (and the
  client's ``seed``), and the outputs ``tag_input``, ``challenge``,
  ``pop_input``, ``signature``. A checker given this challenge, public key,
  signature, ``iss`` and ``sub`` at ``now`` accepts it.
- cases with ``"kind": "check"``: ``challenge``, ``public_key``,
  ``signature``, ``iss``, ``sub``, ``now``, the fleet keys the checker holds
  (``keys``: ckid -> key) and ``expected``: ``"ok"`` or an error code.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path
from typing import Any, Final

import nacl.signing
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

HERE: Final = Path(__file__).resolve().parent
FORMAT_VERSION: Final = 1

CHALLENGE_KEY_INFO: Final = b"signedws/v1 challenge-key"  # §13.3
CHALLENGE_LABEL: Final = b"signedws/v1 challenge\x00"  # §13.3
POP_LABEL: Final = b"signedws/v1 proof-of-possession\x00"  # §13.3

FLEET_KEY: Final = bytes(range(100, 132))
OTHER_FLEET_KEY: Final = bytes(range(200, 232))
CLIENT_SEED: Final = bytes([3]) * 32
OTHER_SEED: Final = bytes([4]) * 32
NOW: Final = 1_700_000_000


def hkdf(ikm: bytes, info: bytes) -> bytes:
    """HKDF-SHA256, empty salt, 32 bytes (SPEC.md §2)."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(ikm)


def lp(value: bytes) -> bytes:
    """``lp(x)``: 2-byte big-endian length, then x (SPEC.md §2)."""
    return len(value).to_bytes(2, "big") + value


def public_key(seed: bytes) -> bytes:
    return bytes(nacl.signing.SigningKey(seed).verify_key)


def head(ckid: str, node_id: bytes, expires: int, random: bytes, key: bytes) -> bytes:
    kid = ckid.encode()
    return b"\x01" + expires.to_bytes(8, "big") + node_id + random + key + bytes([len(kid)]) + kid


def tag_input(iss: str, sub: str, challenge_head: bytes) -> bytes:
    return CHALLENGE_LABEL + lp(iss.encode()) + lp(sub.encode()) + challenge_head


def mint(fleet: bytes, iss: str, sub: str, challenge_head: bytes) -> bytes:
    key = hkdf(fleet, CHALLENGE_KEY_INFO)
    return challenge_head + hmac.digest(key, tag_input(iss, sub, challenge_head), hashlib.sha256)


def pop_input(iss: str, challenge: bytes) -> bytes:
    return POP_LABEL + lp(iss.encode()) + challenge


def sign(seed: bytes, message: bytes) -> bytes:
    return bytes(nacl.signing.SigningKey(seed).sign(message).signature)


def mint_case(name: str, description: str, **inputs: Any) -> dict[str, Any]:
    key = public_key(inputs["seed"])
    challenge_head = head(
        inputs["ckid"], inputs["node_id"], inputs["expires"], inputs["random"], key
    )
    challenge = mint(inputs["fleet_key"], inputs["iss"], inputs["sub"], challenge_head)
    message = pop_input(inputs["iss"], challenge)
    return {
        "name": name,
        "description": description,
        "kind": "mint",
        "fleet_key": inputs["fleet_key"].hex(),
        "ckid": inputs["ckid"],
        "iss": inputs["iss"],
        "sub": inputs["sub"],
        "node_id": inputs["node_id"].hex(),
        "expires": inputs["expires"],
        "random": inputs["random"].hex(),
        "seed": inputs["seed"].hex(),
        "public_key": key.hex(),
        "now": inputs["expires"] - 60,
        "tag_input": tag_input(inputs["iss"], inputs["sub"], challenge_head).hex(),
        "challenge": challenge.hex(),
        "pop_input": message.hex(),
        "signature": sign(inputs["seed"], message).hex(),
    }


def check_case(
    name: str,
    description: str,
    expected: str,
    *,
    challenge: bytes,
    seed: bytes = CLIENT_SEED,
    signature: bytes | None = None,
    iss: str = "app",
    sub: str = "alice",
    now: int = NOW,
    keys: dict[str, bytes] | None = None,
) -> dict[str, Any]:
    if signature is None:
        signature = sign(seed, pop_input(iss, challenge))
    return {
        "name": name,
        "description": description,
        "kind": "check",
        "challenge": challenge.hex(),
        "public_key": public_key(seed).hex(),
        "signature": signature.hex(),
        "iss": iss,
        "sub": sub,
        "now": now,
        "keys": {k: v.hex() for k, v in (keys or {"fleet-1": FLEET_KEY}).items()},
        "expected": expected,
    }


def build() -> dict[str, Any]:
    base = {
        "fleet_key": FLEET_KEY,
        "ckid": "fleet-1",
        "iss": "app",
        "sub": "alice",
        "node_id": bytes(range(1, 9)),
        "expires": NOW + 60,
        "random": bytes(range(16)),
        "seed": CLIENT_SEED,
    }
    cases = [
        mint_case("basic", "a challenge for alice's key under fleet key fleet-1", **base),
        mint_case(
            "unicode_names",
            "non-ASCII issuer, subject and key id: lengths are in UTF-8 bytes",
            **{**base, "ckid": "flotte-é", "iss": "émetteur", "sub": "zoë"},
        ),
        mint_case(
            "long_ckid",
            "a 255-byte key id (the largest)",
            **{**base, "ckid": "k" * 255},
        ),
    ]
    good_head = head("fleet-1", base["node_id"], NOW + 60, base["random"], public_key(CLIENT_SEED))
    good = mint(FLEET_KEY, "app", "alice", good_head)
    cases += [
        check_case("accepted", "a valid proof in the second it was minted", "ok", challenge=good),
        check_case(
            "accepted_last_second",
            "a valid proof in the challenge's last second",
            "ok",
            challenge=good,
            now=NOW + 59,
        ),
        check_case(
            "expired",
            "expiry is not after now (step 4)",
            "challenge_expired",
            challenge=good,
            now=NOW + 60,
        ),
        check_case(
            "other_fleet_key",
            "minted under another fleet key with the same key id (step 2)",
            "challenge_invalid",
            challenge=mint(OTHER_FLEET_KEY, "app", "alice", good_head),
        ),
        check_case(
            "unknown_ckid",
            "minted under a key id the checker does not hold (step 2)",
            "challenge_invalid",
            challenge=mint(
                FLEET_KEY,
                "app",
                "alice",
                head(
                    "fleet-9", base["node_id"], NOW + 60, base["random"], public_key(CLIENT_SEED)
                ),
            ),
        ),
        check_case(
            "other_subject",
            "minted for bob, presented by alice (step 2)",
            "challenge_invalid",
            challenge=mint(FLEET_KEY, "app", "bob", good_head),
        ),
        check_case(
            "other_issuer",
            "minted for another issuer name (step 2)",
            "challenge_invalid",
            challenge=mint(FLEET_KEY, "other", "alice", good_head),
        ),
        check_case(
            "other_public_key",
            "minted for alice's key; another key signs it and is presented (step 3)",
            "challenge_key_mismatch",
            challenge=good,
            seed=OTHER_SEED,
        ),
        check_case(
            "altered_expiry",
            "expiry moved one second later, tag unchanged (step 2)",
            "challenge_invalid",
            challenge=good[:8] + bytes([good[8] + 1]) + good[9:],
        ),
        check_case(
            "version_2",
            "version byte 0x02 (step 1)",
            "challenge_invalid",
            challenge=b"\x02" + good[1:],
        ),
        check_case(
            "truncated",
            "one byte short (step 1)",
            "challenge_invalid",
            challenge=good[:-1],
        ),
        check_case(
            "trailing_byte",
            "one byte too many (step 1)",
            "challenge_invalid",
            challenge=good + b"\x00",
        ),
        check_case(
            "signature_without_label",
            "the signature is over the bare challenge, not pop_input (step 5)",
            "proof_invalid",
            challenge=good,
            signature=sign(CLIENT_SEED, good),
        ),
        check_case(
            "signature_for_other_issuer",
            "the signature names another issuer in pop_input (step 5)",
            "proof_invalid",
            challenge=good,
            signature=sign(CLIENT_SEED, pop_input("other", good)),
        ),
        check_case(
            "rotated_fleet_key",
            "minted under the previous fleet key, which the checker still holds",
            "ok",
            challenge=mint(
                OTHER_FLEET_KEY,
                "app",
                "alice",
                head(
                    "fleet-0", base["node_id"], NOW + 60, base["random"], public_key(CLIENT_SEED)
                ),
            ),
            keys={"fleet-1": FLEET_KEY, "fleet-0": OTHER_FLEET_KEY},
        ),
    ]
    return {
        "description": "Proof-of-possession challenges (SPEC.md §13.3): minting with fixed "
        "inputs, and checking (the first failing step's code).",
        "version": FORMAT_VERSION,
        "challenge_key": {
            "fleet_key": FLEET_KEY.hex(),
            "challenge_key": hkdf(FLEET_KEY, CHALLENGE_KEY_INFO).hex(),
        },
        "cases": cases,
    }


def main() -> None:
    text = json.dumps(build(), indent=1, ensure_ascii=False) + "\n"
    (HERE / "issuance.json").write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
