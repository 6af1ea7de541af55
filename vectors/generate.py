#!/usr/bin/env python3
"""Generate the signedws conformance vectors (SPEC.md §12).

Run ``python vectors/generate.py``: it writes ``keys.json``, ``credentials.json``,
``nonces.json``, ``frames.json``, ``server_frames.json`` and ``ed25519_rules.json``
next to itself. The output is deterministic: every key, seed, nonce, clock and
credential id is fixed below, Ed25519 signatures are deterministic, and JSON is
written with a fixed key order.

This script is a second, independent implementation of the generating side of
SPEC.md. It deliberately does not import ``signedws``: it uses only msgpack,
hmac/hashlib, cryptography's HKDF and PyNaCl, so that a disagreement between
the spec and the library shows up as a failing vector test rather than being
copied into the vectors. Expected rejection codes are worked out by hand from
SPEC.md §6.4 / §7.2 (the first failing step wins) and written next to each case.

See ``vectors/README.md`` for the file format.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Final

import msgpack
import nacl.signing
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

HERE: Final = Path(__file__).resolve().parent
FORMAT_VERSION: Final = 1

Json = dict[str, Any]
Payload = str | bytes | None

# -- SPEC.md constants -------------------------------------------------------

TOKEN_KEY_INFO: Final = b"signedws/v1 token-key"  # §3.1
FRAME_KEY_INFO: Final = b"signedws/v1 frame-key"  # §3.1
FRAME_KEY_LABEL: Final = b"signedws/v1 frame-key\x00"  # §3.1
NONCE_KEY_INFO: Final = b"signedws/v1 nonce-key"  # §3.2
TOKEN_LABEL: Final = b"signedws/v1 token\x00"  # §4.2
CERTIFICATE_LABEL: Final = b"signedws/v1 certificate\x00"  # §4.3
NONCE_LABEL: Final = b"signedws/v1 nonce\x00"  # §5.3
CLIENT_LABEL: Final = b"signedws/v1 client\x00"  # §6.2
SERVER_LABEL: Final = b"signedws/v1 server\x00"  # §7.1

KIND_MAC: Final = 1
KIND_ED25519: Final = 2
KIND_HELLO: Final = 3
KIND_SERVER_MAC: Final = 4
KIND_SERVER_ED25519: Final = 5
TAG_SIZE: Final = {KIND_MAC: 32, KIND_ED25519: 64, KIND_SERVER_MAC: 32, KIND_SERVER_ED25519: 64}

P: Final = 2**255 - 19  # §8.2
L: Final = 2**252 + 27742317777372353535851937790883648493  # §8.2
MAX_U64: Final = 2**64 - 1
MAX_SAFE_INTEGER: Final = 2**53 - 1  # largest integer a JSON reader in JavaScript keeps exact

# -- primitives ----------------------------------------------------------------


def pack(value: object) -> bytes:
    """Canonical MessagePack (SPEC.md §2): msgpack's shortest forms, bin type on."""
    return bytes(msgpack.packb(value, use_bin_type=True))


def hkdf(ikm: bytes, info: bytes) -> bytes:
    """HKDF-SHA256, empty salt, 32 bytes (SPEC.md §2)."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(ikm)


def hmac256(key: bytes, message: bytes) -> bytes:
    """HMAC-SHA256, full 32-byte output (SPEC.md §2)."""
    return hmac.digest(key, message, "sha256")


def lp(data: bytes) -> bytes:
    """``lp(x)``: 2-byte big-endian length, then x (SPEC.md §2)."""
    return len(data).to_bytes(2, "big") + data


def ed25519_public(seed: bytes) -> bytes:
    """The Ed25519 public key of a 32-byte seed (RFC 8032)."""
    return bytes(nacl.signing.SigningKey(seed).verify_key.encode())


def ed25519_sign(seed: bytes, message: bytes) -> bytes:
    """Pure Ed25519 signature of ``message`` (deterministic, RFC 8032)."""
    return bytes(nacl.signing.SigningKey(seed).sign(message).signature)


def fixed(label: str, size: int = 32) -> bytes:
    """Fixed pseudo-random bytes named by ``label`` (a recipe, not a secret)."""
    out = b""
    counter = 0
    while len(out) < size:
        out += hashlib.sha256(f"signedws vectors/{label}/{counter}".encode()).digest()
        counter += 1
    return out[:size]


def flip(data: bytes, offset: int, bit: int) -> bytes:
    """``data`` with bit ``bit`` (0 = least significant) of byte ``offset`` flipped."""
    out = bytearray(data)
    out[offset] ^= 1 << bit
    return bytes(out)


def le32(value: int) -> bytes:
    return value.to_bytes(32, "little")


# -- key derivations (SPEC.md §3) ----------------------------------------------


def token_key(secret: bytes) -> bytes:
    return hkdf(secret, TOKEN_KEY_INFO)


def frame_key_root(secret: bytes) -> bytes:
    return hkdf(secret, FRAME_KEY_INFO)


def frame_key(secret: bytes, token: bytes) -> bytes:
    return hmac256(frame_key_root(secret), FRAME_KEY_LABEL + token)


def nonce_key(fleet: bytes) -> bytes:
    return hkdf(fleet, NONCE_KEY_INFO)


# -- fixed inputs ----------------------------------------------------------------

NOW: Final = 1_700_000_000  # seconds; 2023-11-14T22:13:20Z
AUD: Final = "api.example.com"
OTHER_AUD: Final = "other.example.com"

FLEET: Final = fixed("fleet key")
OTHER_FLEET: Final = fixed("another fleet's key")
NODE: Final = bytes.fromhex("6e6f64652d303031")  # "node-001"
OTHER_NODE: Final = bytes.fromhex("6e6f64652d303032")  # "node-002"
T_OPEN: Final = NOW - 30  # when the standard connection's nonce was minted
TTL: Final = 86400

ISS_A: Final = "auth.example.com"
ISS_B: Final = "partner.example.net"
ISS_DEV: Final = "devices.example.com"  # key registry namespace
ISS_STRANGER: Final = "stranger.example.org"  # in no keyring

SECRET_A: Final = fixed("issuer A hmac secret hk-2024")
SECRET_A_OLD: Final = fixed("issuer A hmac secret hk-2023")
SECRET_A_NEW: Final = fixed("issuer A hmac secret hk-2025")
SECRET_B: Final = fixed("issuer B hmac secret hk-1", 48)
SECRET_STRANGER: Final = fixed("stranger hmac secret")
SEED_A: Final = fixed("issuer A ed25519 seed ek-2024")
SEED_A_OLD: Final = fixed("issuer A ed25519 seed ek-2023")
SEED_ROGUE: Final = fixed("a key nobody trusts")
SEED_CAROL: Final = fixed("client carol ed25519 seed")
SEED_ALICE_ED: Final = fixed("client alice ed25519 seed")
SEED_SENSOR: Final = fixed("client sensor-7 ed25519 seed")
SEED_SERVER: Final = fixed("server ed25519 seed srv-1")
SEED_SERVER_OTHER: Final = fixed("server ed25519 seed srv-2")

KID_A: Final = "hk-2024"
KID_A_OLD: Final = "hk-2023"
KID_A_NEW: Final = "hk-2025"
KID_B: Final = "hk-1"
KID_A_ED: Final = "ek-2024"
KID_A_ED_OLD: Final = "ek-2023"
KID_SENSOR: Final = "sensor-7"
KID_SERVER: Final = "srv-1"

A_OLD_NOT_BEFORE: Final = NOW - 400 * 86400
A_OLD_NOT_AFTER: Final = NOW - 1000
A_NEW_NOT_BEFORE: Final = NOW + 3600

SENSOR_IAT: Final = NOW - 10 * 86400
SENSOR_EXP: Final = NOW + 365 * 86400

# Ed25519 encodings used by negative cases.
IDENTITY_POINT: Final = bytes.fromhex(
    "0100000000000000000000000000000000000000000000000000000000000000"
)
ORDER8_POINT: Final = bytes.fromhex(
    "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a"
)
NONCANONICAL_Y: Final = le32(P + 3)  # y = p + 3 >= p, and not one of the 14 small-order encodings


# -- JSON helpers -------------------------------------------------------------------


def hx(data: bytes) -> str:
    return data.hex()


def num(value: float) -> int | float:
    """A time in seconds for JSON: an integer when whole; else a multiple of 1/8."""
    if value == int(value):
        return int(value)
    assert value * 8 == int(value * 8), value  # noqa: S101 - keeps now*1000 exact
    return value


def big(value: int) -> int | str:
    """An integer for JSON: a number up to 2^53 - 1, a decimal string above."""
    return value if value <= MAX_SAFE_INTEGER else str(value)


def ms(seconds: float) -> int:
    value = seconds * 1000
    assert value == int(value), seconds  # noqa: S101
    return int(value)


def typed(payload: Payload) -> Json | None:
    if payload is None:
        return None
    if isinstance(payload, str):
        return {"str": payload}
    return {"bin": hx(payload)}


def reject(code: str) -> Json:
    return {"reject": code}


# -- MessagePack building blocks -------------------------------------------------


def array_header(count: int) -> bytes:
    """Canonical array header (fixarray up to 15, then array 16)."""
    return bytes([0x90 | count]) if count <= 15 else b"\xdc" + count.to_bytes(2, "big")


def array(items: Sequence[bytes], header: bytes | None = None) -> bytes:
    """An array from already encoded elements (possibly non-canonical ones)."""
    return (array_header(len(items)) if header is None else header) + b"".join(items)


def bin_tag(tag: bytes) -> bytes:
    """A 32- or 64-byte bin: header ``c4 20`` or ``c4 40``, then the bytes."""
    return bytes([0xC4, len(tag)]) + tag


def str8(text: str) -> bytes:
    """A short string in the (non-canonical) str 8 form."""
    data = text.encode()
    return bytes([0xD9, len(data)]) + data


def bin16(data: bytes) -> bytes:
    """A short byte string in the (non-canonical) bin 16 form."""
    return b"\xc5" + len(data).to_bytes(2, "big") + data


def raw_str(data: bytes) -> bytes:
    """A MessagePack str header followed by ``data`` (which may not be UTF-8)."""
    assert len(data) <= 31  # noqa: S101
    return bytes([0xA0 | len(data)]) + data


# -- credentials (SPEC.md §4) ----------------------------------------------------


@dataclass(frozen=True)
class Claims:
    """The common fields of SPEC.md §4.1."""

    iss: str
    kid: str
    cid: str
    sub: str
    scopes: tuple[str, ...] = ()
    aud: tuple[str, ...] = ()
    iat: int = NOW - 60
    exp: int = NOW + 840

    def items(self, ctype: int) -> list[bytes]:
        """Encoded elements 0-9 of a token or certificate."""
        return [
            pack(1),
            pack(ctype),
            pack(self.iss),
            pack(self.kid),
            pack(self.cid),
            pack(self.sub),
            pack(list(self.scopes)),
            pack(list(self.aud)),
            pack(self.iat),
            pack(self.exp),
        ]

    def json(self) -> Json:
        return {
            "iss": self.iss,
            "kid": self.kid,
            "cid": self.cid,
            "sub": self.sub,
            "scopes": list(self.scopes),
            "aud": list(self.aud),
            "iat": big(self.iat),
            "exp": big(self.exp),
        }


def seal_token(body: bytes, secret: bytes) -> bytes:
    """``body || c4 20 || HMAC(token_key, "signedws/v1 token\\0" || body)`` (§4.2)."""
    return body + bin_tag(hmac256(token_key(secret), TOKEN_LABEL + body))


def token(claims: Claims, secret: bytes) -> bytes:
    """A token, generated exactly as SPEC.md §4.2 says."""
    fields: list[object] = [1, 1, claims.iss, claims.kid, claims.cid, claims.sub]
    fields += [list(claims.scopes), list(claims.aud), claims.iat, claims.exp, bytes(32)]
    body = pack(fields)[:-34]
    assert body == array(claims.items(1), array_header(11))  # noqa: S101 - self-check
    return seal_token(body, secret)


def seal_certificate(body: bytes, issuer_seed: bytes) -> bytes:
    """``body || c4 40 || SIGN(issuer_sk, "signedws/v1 certificate\\0" || body)`` (§4.3)."""
    return body + bin_tag(ed25519_sign(issuer_seed, CERTIFICATE_LABEL + body))


def certificate(claims: Claims, client_public: bytes, issuer_seed: bytes) -> bytes:
    """A certificate, generated exactly as SPEC.md §4.3 says."""
    fields: list[object] = [1, 2, claims.iss, claims.kid, claims.cid, claims.sub]
    fields += [list(claims.scopes), list(claims.aud), claims.iat, claims.exp]
    fields += [client_public, bytes(64)]
    body = pack(fields)[:-66]
    assert body == array([*claims.items(2), pack(client_public)], array_header(12))  # noqa: S101
    return seal_certificate(body, issuer_seed)


def key_reference(iss: str, kid: str) -> bytes:
    """A key reference (SPEC.md §4.4)."""
    return pack([1, 3, iss, kid])


# -- nonces (SPEC.md §5.3) ----------------------------------------------------------


@dataclass(frozen=True)
class NonceInputs:
    fleet: bytes
    audience: str
    node_id: bytes
    now: int
    ttl: int
    random: bytes

    @property
    def expires(self) -> int:
        return self.now + self.ttl

    def mint(self) -> bytes:
        return mint_nonce(self.fleet, self.audience, self.node_id, self.expires, self.random)

    def json(self) -> Json:
        return {
            "fleet_key": hx(self.fleet),
            "audience": self.audience,
            "node_id": hx(self.node_id),
            "now": self.now,
            "ttl": self.ttl,
            "random": hx(self.random),
            "expires": self.expires,
            "bytes": hx(self.mint()),
        }


def nonce_tag(fleet: bytes, audience: str, head: bytes) -> bytes:
    return hmac256(nonce_key(fleet), NONCE_LABEL + lp(audience.encode()) + head)


def nonce_head(version: int, node_id: bytes, expires: int, random: bytes) -> bytes:
    assert len(node_id) == 8 and len(random) == 15  # noqa: S101, PT018
    return bytes([version]) + node_id + expires.to_bytes(8, "big") + random


def mint_nonce(fleet: bytes, audience: str, node_id: bytes, expires: int, random: bytes) -> bytes:
    head = nonce_head(1, node_id, expires, random)
    return head + nonce_tag(fleet, audience, head)


CONN: Final = NonceInputs(FLEET, AUD, NODE, T_OPEN, TTL, fixed("connection 1 random", 15))
CONN2: Final = replace(CONN, random=fixed("connection 2 random", 15))
NONCE: Final = CONN.mint()
NONCE2: Final = CONN2.mint()

# -- clients and client frames (SPEC.md §6) ---------------------------------------


def seal(kind: int, body: bytes, key: bytes, aud: str, label: bytes) -> bytes:
    """Append the tag of ``kind`` over ``label || lp(aud) || body`` (§6.2, §7.1)."""
    signed = label + lp(aud.encode()) + body
    if kind in (KIND_MAC, KIND_SERVER_MAC):
        return body + bin_tag(hmac256(key, signed))
    return body + bin_tag(ed25519_sign(key, signed))


def encode_each(values: Sequence[object]) -> list[bytes]:
    """Each value encoded canonically on its own: the elements of an array."""
    return [pack(value) for value in values]


def default_seq(ctr: int, payload: Payload) -> int:
    """frames.json numbers data frames like their counter unless a case says
    otherwise (the verifier checks only that seq is 0 exactly for nil)."""
    return 0 if payload is None else ctr


@dataclass(frozen=True)
class Client:
    """A client credential with its secret, and what a verifier reports for it."""

    kind: int
    cred: bytes
    secret: bytes  # the frame key (mac) or the client's Ed25519 seed (ed25519)
    iss: str
    sub: str
    cid: str
    scopes: tuple[str, ...]
    stream: bytes = bytes(16)

    def frame(
        self,
        ctr: int,
        ts: int,
        payload: Payload,
        *,
        seq: int | None = None,
        nonce: bytes = NONCE,
        aud: str = AUD,
        items: Callable[[list[bytes]], list[bytes]] | None = None,
        header: bytes | None = None,
    ) -> bytes:
        """A client frame, per SPEC.md §6.3; ``items`` may rewrite the encoded
        elements (for negative cases) before the tag is computed over them."""
        number = default_seq(ctr, payload) if seq is None else seq
        elements = encode_each(
            [1, self.kind, self.cred, nonce, ctr, ts, self.stream, number, payload]
        )
        if items is None and header is None:
            zero = bytes(TAG_SIZE[self.kind])
            fields = [1, self.kind, self.cred, nonce, ctr, ts, self.stream, number, payload]
            body = pack([*fields, zero])[: -(len(zero) + 2)]
            assert body == array(elements, array_header(10))  # noqa: S101 - self-check
        if items is not None:
            elements = items(elements)
        body = array(elements, array_header(10) if header is None else header)
        return seal(self.kind, body, self.secret, aud, CLIENT_LABEL)

    def accept(self, ctr: int, ts: int, payload: Payload, seq: int | None = None) -> Json:
        number = default_seq(ctr, payload) if seq is None else seq
        return {
            "accept": {
                "sub": self.sub,
                "iss": self.iss,
                "scopes": sorted(self.scopes),
                "ctr": big(ctr),
                "stream": hx(self.stream),
                "seq": big(number),
                "payload": typed(payload),
                "cid": self.cid,
                "ts": ts,
            }
        }

    def json(self) -> Json:
        """The client's credential as a client holds it (server_frames.json)."""
        if self.kind == KIND_MAC:
            return {"scheme": "mac", "token": hx(self.cred), "frame_key": hx(self.secret)}
        return {"scheme": "ed25519", "credential": hx(self.cred), "seed": hx(self.secret)}


def stream_of(iss: str, sub: str) -> bytes:
    """The fixed 16-byte stream id of the client of (iss, sub) (§7.3)."""
    return fixed(f"stream of {iss} {sub}", 16)


def mac_client(claims: Claims, secret: bytes) -> Client:
    tok = token(claims, secret)
    fk = frame_key(secret, tok)
    stream = stream_of(claims.iss, claims.sub)
    return Client(KIND_MAC, tok, fk, claims.iss, claims.sub, claims.cid, claims.scopes, stream)


def cert_client(claims: Claims, client_seed: bytes, issuer_seed: bytes) -> Client:
    cert = certificate(claims, ed25519_public(client_seed), issuer_seed)
    stream = stream_of(claims.iss, claims.sub)
    return Client(
        KIND_ED25519, cert, client_seed, claims.iss, claims.sub, claims.cid, claims.scopes, stream
    )


ALICE_CLAIMS: Final = Claims(
    ISS_A, KID_A, "tok-alice-1", "alice", ("chat:read", "chat:write"), (AUD,)
)
ALICE: Final = mac_client(ALICE_CLAIMS, SECRET_A)
ALICE_2: Final = mac_client(
    replace(ALICE_CLAIMS, cid="tok-alice-2", scopes=("chat:read",), iat=NOW + 600, exp=NOW + 1500),
    SECRET_A,
)
BOB: Final = mac_client(Claims(ISS_A, KID_A, "tok-bob-1", "bob", ("chat:read",), (AUD,)), SECRET_A)
ALICE_AT_B: Final = mac_client(
    Claims(ISS_B, KID_B, "tok-partner-alice", "alice", ("chat:read",), ()), SECRET_B
)
CAROL_CLAIMS: Final = Claims(
    ISS_A, KID_A_ED, "cert-carol-1", "carol", ("files:read",), (), NOW - 600, NOW + 3000
)
CAROL: Final = cert_client(CAROL_CLAIMS, SEED_CAROL, SEED_A)
ALICE_CERT: Final = cert_client(
    Claims(ISS_A, KID_A_ED, "cert-alice-1", "alice", ("chat:read",), (AUD,)),
    SEED_ALICE_ED,
    SEED_A,
)
SENSOR: Final = Client(
    KIND_ED25519,
    key_reference(ISS_DEV, KID_SENSOR),
    SEED_SENSOR,
    ISS_DEV,
    "sensor-7",
    KID_SENSOR,
    ("telemetry:write",),
    stream_of(ISS_DEV, "sensor-7"),
)

# -- verifier configuration ---------------------------------------------------------


def hmac_key_json(
    iss: str, kid: str, secret: bytes, not_before: int | None = None, not_after: int | None = None
) -> Json:
    return {
        "iss": iss,
        "kid": kid,
        "secret": hx(secret),
        "not_before": not_before,
        "not_after": not_after,
    }


def ed_key_json(
    iss: str, kid: str, seed: bytes, not_before: int | None = None, not_after: int | None = None
) -> Json:
    return {
        "iss": iss,
        "kid": kid,
        "public_key": hx(ed25519_public(seed)),
        "not_before": not_before,
        "not_after": not_after,
    }


def registry_json(
    iss: str,
    kid: str,
    seed: bytes,
    *,
    sub: str,
    scopes: Sequence[str],
    aud: Sequence[str],
    iat: int,
    exp: int,
) -> Json:
    return {
        "iss": iss,
        "kid": kid,
        "public_key": hx(ed25519_public(seed)),
        "sub": sub,
        "scopes": sorted(scopes),
        "aud": sorted(aud),
        "iat": iat,
        "exp": exp,
    }


def keyring_json(*, sensor_iat: int = SENSOR_IAT, sensor_exp: int = SENSOR_EXP) -> Json:
    """The keyring every frames case uses (one registry entry may be moved in time)."""
    return {
        "hmac_keys": [
            hmac_key_json(ISS_A, KID_A, SECRET_A),
            hmac_key_json(ISS_A, KID_A_OLD, SECRET_A_OLD, A_OLD_NOT_BEFORE, A_OLD_NOT_AFTER),
            hmac_key_json(ISS_A, KID_A_NEW, SECRET_A_NEW, A_NEW_NOT_BEFORE, None),
            hmac_key_json(ISS_B, KID_B, SECRET_B),
        ],
        "ed25519_keys": [
            ed_key_json(ISS_A, KID_A_ED, SEED_A),
            ed_key_json(ISS_A, KID_A_ED_OLD, SEED_A_OLD, A_OLD_NOT_BEFORE, A_OLD_NOT_AFTER),
        ],
        "registry": [
            registry_json(
                ISS_DEV,
                KID_SENSOR,
                SEED_SENSOR,
                sub="sensor-7",
                scopes=["telemetry:write"],
                aud=[AUD],
                iat=sensor_iat,
                exp=sensor_exp,
            )
        ],
    }


def revocations_json(
    credentials: Sequence[tuple[str, str]] = (),
    subjects: Sequence[tuple[str, str, int]] = (),
) -> Json:
    return {
        "credentials": [{"iss": iss, "cid": cid} for iss, cid in credentials],
        "subjects": [{"iss": iss, "sub": sub, "before": t} for iss, sub, t in subjects],
    }


def verifier_json(
    *,
    window: int = 0,
    max_frame_size: int = 65536,
    max_skew: int = 300,
    leeway: int = 30,
    nonce_ttl: int = TTL,
    keyring: Json | None = None,
    revocations: Json | None = None,
) -> Json:
    return {
        "audience": AUD,
        "fleet_key": hx(FLEET),
        "node_id": hx(NODE),
        "window": window,
        "max_frame_size": max_frame_size,
        "max_skew": max_skew,
        "leeway": leeway,
        "nonce_ttl": nonce_ttl,
        "keyring": keyring_json() if keyring is None else keyring,
        "revocations": revocations_json() if revocations is None else revocations,
    }


def default_ts(now: float) -> int:
    """Frames are stamped 250 ms behind the verifier's clock unless a case says otherwise."""
    return ms(now) - 250


class FrameCase:
    """A frames.json case: a verifier, a connection nonce, and steps."""

    def __init__(
        self,
        name: str,
        description: str,
        *,
        nonce: NonceInputs = CONN,
        **verifier: Any,
    ) -> None:
        self.name = name
        self.description = description
        self.nonce = nonce
        self.verifier = verifier_json(**verifier)
        self.steps: list[Json] = []

    def raw(
        self, frame: bytes, now: float, expect: Json, *, revocations: Json | None = None
    ) -> FrameCase:
        step: Json = {"frame": hx(frame), "now": num(now), "expect": expect}
        if revocations is not None:
            step["replace_revocations"] = revocations
        self.steps.append(step)
        return self

    def send(
        self,
        client: Client,
        ctr: int,
        payload: Payload = "hello",
        *,
        now: float = NOW,
        ts: int | None = None,
        seq: int | None = None,
        expect: str = "accept",
        revocations: Json | None = None,
        **frame_args: Any,
    ) -> FrameCase:
        """A step with a frame of ``client``; expect ``"accept"`` or a code."""
        stamp = default_ts(now) if ts is None else ts
        frame_args.setdefault("nonce", self.nonce.mint())
        frame = client.frame(ctr, stamp, payload, seq=seq, **frame_args)
        accepted = expect == "accept"
        result = client.accept(ctr, stamp, payload, seq) if accepted else reject(expect)
        return self.raw(frame, now, result, revocations=revocations)

    def json(self) -> Json:
        return {
            "name": self.name,
            "description": self.description,
            "verifier": self.verifier,
            "nonce": self.nonce.json(),
            "steps": self.steps,
        }


def document(description: str, cases: list[Json], **extra: Any) -> Json:
    names = [case["name"] for case in cases]
    assert len(names) == len(set(names)), "duplicate case names"  # noqa: S101
    return {"description": description, "version": FORMAT_VERSION, **extra, "cases": cases}


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


# -- credentials.json -----------------------------------------------------------------

CRED_NOW: Final = NOW


def cred_setup() -> Json:
    return {"verifier": verifier_json(), "nonce": CONN.json()}


def credentials_json() -> Json:
    cases: list[Json] = []
    ts = default_ts(CRED_NOW)

    def positive_token(name: str, description: str, claims: Claims, secret: bytes) -> None:
        client = mac_client(claims, secret)
        cases.append(
            {
                "name": name,
                "description": description,
                "type": "token",
                "mintable": True,
                "issuer_secret": hx(secret),
                "fields": claims.json(),
                "bytes": hx(client.cred),
                "frame_key": hx(client.secret),
                "frame": hx(client.frame(1, ts, "hi")),
                "now": CRED_NOW,
                "expect": client.accept(1, ts, "hi"),
            }
        )

    def positive_certificate(
        name: str, description: str, claims: Claims, client_seed: bytes
    ) -> None:
        client = cert_client(claims, client_seed, SEED_A)
        cases.append(
            {
                "name": name,
                "description": description,
                "type": "certificate",
                "mintable": True,
                "issuer_seed": hx(SEED_A),
                "fields": {**claims.json(), "public_key": hx(ed25519_public(client_seed))},
                "client_seed": hx(client_seed),
                "bytes": hx(client.cred),
                "frame": hx(client.frame(1, ts, "hi")),
                "now": CRED_NOW,
                "expect": client.accept(1, ts, "hi"),
            }
        )

    positive_token(
        "token_alice",
        "a token with two scopes and one audience, as an issuer mints it",
        ALICE_CLAIMS,
        SECRET_A,
    )
    positive_token(
        "token_no_scopes_any_audience",
        "empty scopes and an empty aud list (valid at any audience trusting the issuer)",
        Claims(ISS_A, KID_A, "tok-empty-lists", "dave"),
        SECRET_A,
    )
    positive_token(
        "token_unicode_fields",
        "non-ASCII UTF-8 in sub, cid and a scope",
        Claims(ISS_A, KID_A, "tök-ü-1", "zoë@例え.jp", ("lire:é",), (AUD,)),
        SECRET_A,
    )
    positive_token(
        "token_limits",
        "at the limits of §2.1: 255-byte sub, 64 scopes, 16 audiences",
        Claims(
            ISS_A,
            KID_A,
            "c" * 255,
            "s" * 255,
            tuple(f"scope-{i:02d}" for i in range(64)),
            tuple(sorted([AUD, *(f"aud-{i:02d}.example" for i in range(15))])),
        ),
        SECRET_A,
    )
    positive_token(
        "token_issuer_b",
        "a token of a second issuer, with a 48-byte secret",
        Claims(ISS_B, KID_B, "tok-partner-alice", "alice", ("chat:read",)),
        SECRET_B,
    )
    positive_token(
        "token_large_times",
        "iat and exp that need uint 64 (exp = 2^64 - 1 seconds)",
        Claims(ISS_A, KID_A, "tok-forever", "erin", iat=NOW - 60, exp=MAX_U64),
        SECRET_A,
    )
    positive_certificate(
        "certificate_carol",
        "a certificate binding carol's Ed25519 key, no audience restriction",
        CAROL_CLAIMS,
        SEED_CAROL,
    )
    positive_certificate(
        "certificate_alice_with_audience",
        "a certificate with an aud list that contains the server's audience",
        Claims(ISS_A, KID_A_ED, "cert-alice-1", "alice", ("chat:read",), (AUD,)),
        SEED_ALICE_ED,
    )
    cases.append(
        {
            "name": "key_reference_sensor",
            "description": "a key reference to the registry entry (devices.example.com, sensor-7)",
            "type": "key_reference",
            "mintable": True,
            "fields": {"iss": ISS_DEV, "kid": KID_SENSOR},
            "bytes": hx(SENSOR.cred),
            "frame": hx(SENSOR.frame(1, ts, "hi")),
            "now": CRED_NOW,
            "expect": SENSOR.accept(1, ts, "hi"),
        }
    )
    # Scopes are a set (§2.1): order is not checked. Issuers may mint them sorted,
    # so this one is built by hand and is not mintable through a sorting issuer.
    unsorted = Claims(ISS_A, KID_A, "tok-unsorted", "frank", ("zeta", "alpha"), (OTHER_AUD, AUD))
    unsorted_client = mac_client(unsorted, SECRET_A)
    cases.append(
        {
            "name": "token_unsorted_sets_accepted",
            "description": "scopes and aud in unsorted order: sets, order is not checked (§2.1)",
            "type": "token",
            "mintable": False,
            "issuer_secret": hx(SECRET_A),
            "fields": unsorted.json(),
            "bytes": hx(unsorted_client.cred),
            "frame_key": hx(unsorted_client.secret),
            "frame": hx(unsorted_client.frame(1, ts, "hi")),
            "now": CRED_NOW,
            "expect": unsorted_client.accept(1, ts, "hi"),
        }
    )

    def negative(
        name: str,
        description: str,
        cred: bytes,
        code: str,
        *,
        kind: int = KIND_MAC,
        secret: bytes | None = None,
        ctype: str = "token",
        now: float = CRED_NOW,
    ) -> None:
        if secret is None:
            secret = frame_key(SECRET_A, cred) if kind == KIND_MAC else SEED_CAROL
        client = Client(kind, cred, secret, "", "", "", ())
        cases.append(
            {
                "name": name,
                "description": description,
                "type": ctype,
                "mintable": False,
                "bytes": hx(cred),
                "frame": hx(client.frame(1, default_ts(now), "hi")),
                "now": num(now),
                "expect": reject(code),
            }
        )

    base = Claims(ISS_A, KID_A, "tok-neg", "mallory", ("chat:read",), (AUD,))
    items = base.items(1)

    def tok(elements: list[bytes], header: bytes | None = None, secret: bytes = SECRET_A) -> bytes:
        """A token over hand-made elements, with a correct tag over its body."""
        return seal_token(array(elements, array_header(11) if header is None else header), secret)

    def with_item(index: int, encoded: bytes) -> list[bytes]:
        out = list(items)
        out[index] = encoded
        return out

    good = token(base, SECRET_A)
    mal = "credential_malformed"
    negative("token_missing_tag", "10 elements: the tag is missing", array(items), mal)
    negative(
        "token_extra_element",
        "12 elements: a nil after the tag",
        array([*items, bin_tag(bytes(32)), pack(None)]),
        mal,
    )
    negative(
        "token_tag_31_bytes",
        "tag is bin(31), not bin(32)",
        array(items, array_header(11)) + bin_tag(bytes(31)),
        mal,
    )
    negative("token_version_2", "credential version 2", tok(with_item(0, pack(2))), mal)
    negative("token_unknown_type_4", "credential type 4", tok(with_item(1, pack(4))), mal)
    negative("token_trailing_byte", "a valid token followed by one zero byte", good + b"\x00", mal)
    negative(
        "token_noncanonical_iat_uint64",
        "iat in the uint 64 form although it fits uint 32; tag valid over these bytes",
        tok(with_item(8, b"\xcf" + (NOW - 60).to_bytes(8, "big"))),
        mal,
    )
    negative(
        "token_noncanonical_sub_str8",
        "sub in the str 8 form although it fits fixstr; tag valid over these bytes",
        tok(with_item(5, str8("mallory"))),
        mal,
    )
    negative(
        "token_noncanonical_array16",
        "the token's array header in the array 16 form; tag valid over these bytes",
        tok(items, b"\xdc\x00\x0b"),
        mal,
    )
    negative(
        "token_noncanonical_tag_bin16",
        "the tag's header in the bin 16 form (c5 00 20)",
        array(items, array_header(11)) + b"\xc5\x00\x20" + bytes(32),
        mal,
    )
    negative(
        "token_duplicate_scopes",
        "scopes list a scope twice (§2.1: sets); tag valid",
        tok(with_item(6, pack(["chat:read", "chat:read"]))),
        mal,
    )
    negative(
        "token_duplicate_audiences",
        "aud lists the server audience twice (§2.1); tag valid",
        tok(with_item(7, pack([AUD, AUD]))),
        mal,
    )
    negative(
        "token_exp_equals_iat",
        "exp == iat (§4.1: exp MUST be > iat); tag valid",
        tok(with_item(9, pack(NOW - 60))),
        mal,
    )
    negative(
        "token_exp_before_iat",
        "exp < iat; tag valid",
        tok(with_item(9, pack(NOW - 61))),
        mal,
    )
    negative("token_empty_subject", "sub is the empty string", tok(with_item(5, pack(""))), mal)
    negative(
        "token_subject_256_bytes",
        "sub of 256 bytes (§2.1: 1 to 255)",
        tok(with_item(5, pack("s" * 256))),
        mal,
    )
    negative(
        "token_empty_scope", "a scope that is the empty string", tok(with_item(6, pack([""]))), mal
    )
    negative(
        "token_65_scopes",
        "65 scopes (§2.1: at most 64)",
        tok(with_item(6, pack([f"s{i}" for i in range(65)]))),
        mal,
    )
    negative(
        "token_17_audiences",
        "17 audiences (§2.1: at most 16)",
        tok(with_item(7, pack(sorted([AUD, *(f"a{i}.example" for i in range(16))])))),
        mal,
    )
    negative(
        "token_invalid_utf8_subject",
        "sub is a str whose bytes are not UTF-8 (ff fe)",
        tok(with_item(5, raw_str(b"\xff\xfe"))),
        mal,
    )
    negative("token_iss_not_str", "iss is a uint", tok(with_item(2, pack(7))), mal)
    negative("token_kid_bin", "kid is a bin, not a str", tok(with_item(3, pack(b"hk-2024"))), mal)
    negative("token_iat_negative", "iat is -1 (a negative int)", tok(with_item(8, pack(-1))), mal)
    negative(
        "token_scopes_not_array", "scopes is a str", tok(with_item(6, pack("chat:read"))), mal
    )
    negative("token_scope_not_str", "a scope is a uint", tok(with_item(6, pack([1]))), mal)
    negative("token_exp_nil", "exp is nil", tok(with_item(9, pack(None))), mal)
    negative("credential_empty", "the credential is zero bytes", b"", mal)
    negative("credential_not_array", "the credential is a str", pack("a token"), mal)
    negative("credential_map", "the credential is a map", b"\x81\x01\x01", mal)
    negative("credential_one_element", "the credential is [1]", pack([1]), mal)
    cert_items = [*replace(base, kid=KID_A_ED).items(2), pack(ed25519_public(SEED_CAROL))]
    negative(
        "certificate_key_31_bytes",
        "a certificate whose key is bin(31); signature valid over these bytes",
        seal_certificate(
            array([*cert_items[:10], pack(ed25519_public(SEED_CAROL)[:31])], array_header(12)),
            SEED_A,
        ),
        mal,
        kind=KIND_ED25519,
        ctype="certificate",
    )
    negative(
        "certificate_sig_63_bytes",
        "a certificate whose sig is bin(63)",
        array(cert_items, array_header(12)) + bin_tag(bytes(63)),
        mal,
        kind=KIND_ED25519,
        ctype="certificate",
    )
    negative(
        "key_reference_extra_element",
        "a key reference with 5 elements",
        pack([1, 3, ISS_DEV, KID_SENSOR, None]),
        mal,
        kind=KIND_ED25519,
        secret=SEED_SENSOR,
        ctype="key_reference",
    )
    negative(
        "key_reference_empty_kid",
        "a key reference whose kid is empty",
        pack([1, 3, ISS_DEV, ""]),
        mal,
        kind=KIND_ED25519,
        secret=SEED_SENSOR,
        ctype="key_reference",
    )
    negative(
        "key_reference_version_2",
        "a key reference of version 2",
        pack([2, 3, ISS_DEV, KID_SENSOR]),
        mal,
        kind=KIND_ED25519,
        secret=SEED_SENSOR,
        ctype="key_reference",
    )
    # Authentication failures (§4.2-§4.4), in check order.
    stranger = token(replace(base, iss=ISS_STRANGER), SECRET_STRANGER)
    negative(
        "token_unknown_issuer",
        "iss names no issuer of the keyring",
        stranger,
        "unknown_issuer",
        secret=frame_key(SECRET_STRANGER, stranger),
    )
    negative(
        "token_unknown_kid",
        "a kid the (known) issuer does not have",
        token(replace(base, kid="hk-1999"), SECRET_A),
        "unknown_key",
    )
    confused = token(replace(base, iss=ISS_B, kid=KID_A), SECRET_A)
    negative(
        "token_kid_of_another_issuer",
        "claims issuer B with kid hk-2024, which exists only under issuer A; tagged with A's "
        "secret (a keyring keyed by kid alone would accept it, §3.3)",
        confused,
        "unknown_key",
        secret=frame_key(SECRET_A, confused),
    )
    negative(
        "token_under_ed25519_key",
        "a token whose (iss, kid) names an Ed25519 issuer key",
        token(replace(base, kid=KID_A_ED), SECRET_A),
        "unknown_key",
    )
    negative(
        "certificate_under_hmac_key",
        "a certificate whose (iss, kid) names an HMAC issuer key",
        certificate(replace(base, kid=KID_A), ed25519_public(SEED_CAROL), SEED_A),
        "unknown_key",
        kind=KIND_ED25519,
        ctype="certificate",
    )
    negative(
        "key_reference_not_registered",
        "a key reference to (devices.example.com, sensor-8), not in the registry",
        key_reference(ISS_DEV, "sensor-8"),
        "unknown_key",
        kind=KIND_ED25519,
        secret=SEED_SENSOR,
        ctype="key_reference",
    )
    negative(
        "key_reference_issuer_key_namespace",
        "a key reference to (auth.example.com, ek-2024): an issuer key, not a registry entry "
        "(§3.3: separate namespaces)",
        key_reference(ISS_A, KID_A_ED),
        "unknown_key",
        kind=KIND_ED25519,
        secret=SEED_A,
        ctype="key_reference",
    )
    negative(
        "token_bad_tag",
        "a token whose last tag byte is flipped",
        flip(good, len(good) - 1, 0),
        "credential_invalid",
    )
    other_key = token(base, SECRET_B)
    negative(
        "token_tagged_with_other_secret",
        "claims (auth.example.com, hk-2024) but tagged with issuer B's secret",
        other_key,
        "credential_invalid",
        secret=frame_key(SECRET_B, other_key),
    )
    carol_cert = CAROL.cred
    negative(
        "certificate_bad_signature",
        "carol's certificate with one bit of its signature flipped",
        flip(carol_cert, len(carol_cert) - 40, 3),
        "credential_invalid",
        kind=KIND_ED25519,
        ctype="certificate",
    )
    negative(
        "certificate_signed_by_untrusted_key",
        "a certificate naming (auth.example.com, ek-2024), signed by another key",
        certificate(
            replace(CAROL_CLAIMS, cid="cert-rogue"), ed25519_public(SEED_CAROL), SEED_ROGUE
        ),
        "credential_invalid",
        kind=KIND_ED25519,
        ctype="certificate",
    )
    sig = carol_cert[-64:]
    s_plus_l = sig[:32] + le32(int.from_bytes(sig[32:], "little") + L)
    negative(
        "certificate_signature_s_plus_l",
        "carol's certificate with S replaced by S + L (the equation still holds mod L; "
        "§8.2 rule 2 refuses S >= L)",
        carol_cert[:-64] + s_plus_l,
        "credential_invalid",
        kind=KIND_ED25519,
        ctype="certificate",
    )
    negative(
        "certificate_small_order_key",
        "a certificate binding the identity point (small order), properly signed by the issuer",
        certificate(replace(CAROL_CLAIMS, cid="cert-weak-1"), IDENTITY_POINT, SEED_A),
        "weak_key",
        kind=KIND_ED25519,
        ctype="certificate",
    )
    negative(
        "certificate_order8_key",
        "a certificate binding a point of order 8, properly signed by the issuer",
        certificate(replace(CAROL_CLAIMS, cid="cert-weak-2"), ORDER8_POINT, SEED_A),
        "weak_key",
        kind=KIND_ED25519,
        ctype="certificate",
    )
    negative(
        "certificate_noncanonical_key",
        "a certificate binding a key whose y is p + 3 (non-canonical, §8.2 rule 3), signed",
        certificate(replace(CAROL_CLAIMS, cid="cert-weak-3"), NONCANONICAL_Y, SEED_A),
        "weak_key",
        kind=KIND_ED25519,
        ctype="certificate",
    )
    negative(
        "token_expired",
        "a token used at exactly its exp (valid while now < exp)",
        good,
        "credential_expired",
        now=base.exp,
    )
    future = token(replace(base, iat=NOW + 3600, exp=NOW + 7200), SECRET_A)
    negative(
        "token_not_yet_valid",
        "a token whose iat is an hour after now (beyond the 30 s leeway)",
        future,
        "credential_not_yet_valid",
    )
    negative(
        "token_other_audience",
        "a token whose aud list does not contain the server's audience",
        token(replace(base, aud=(OTHER_AUD,)), SECRET_A),
        "audience_mismatch",
    )
    description = (
        "Tokens, certificates and key references with their exact bytes (§4). Every case "
        "has a frame carrying the credential and the verifier's answer, under the verifier "
        "and connection nonce of `setup`."
    )
    return document(description, cases, setup=cred_setup())


# -- nonces.json ----------------------------------------------------------------------------


def nonces_json() -> Json:
    cases: list[Json] = []
    mints = [
        ("mint_standard", "the standard connection nonce of frames.json", CONN),
        ("mint_second_connection", "another connection of the same server", CONN2),
        (
            "mint_other_node",
            "another node of the fleet, short lifetime",
            NonceInputs(FLEET, AUD, OTHER_NODE, NOW, 60, fixed("other node random", 15)),
        ),
        (
            "mint_unicode_audience",
            "an audience with non-ASCII characters (lp counts UTF-8 bytes)",
            NonceInputs(FLEET, "wß.example/ü", NODE, NOW, TTL, fixed("unicode aud", 15)),
        ),
        (
            "mint_zero_random",
            "all-zero random bytes and node id",
            NonceInputs(FLEET, AUD, bytes(8), NOW, 1, bytes(15)),
        ),
    ]
    for name, description, inputs in mints:
        cases.append(
            {"name": name, "description": description, "type": "mint", "inputs": inputs.json()}
        )

    def check(
        name: str,
        description: str,
        nonce: bytes,
        now: float,
        expect: Json,
        *,
        fleet: bytes = FLEET,
        audience: str = AUD,
    ) -> None:
        cases.append(
            {
                "name": name,
                "description": description,
                "type": "check",
                "fleet_key": hx(fleet),
                "audience": audience,
                "nonce": hx(nonce),
                "now": num(now),
                "expect": expect,
            }
        )

    valid = {"valid": {"node_id": hx(NODE), "expires": CONN.expires}}
    check(
        "check_valid", "the standard nonce, checked by any server of the fleet", NONCE, NOW, valid
    )
    check(
        "check_valid_just_before_expiry",
        "1/8 s before its expiry",
        NONCE,
        CONN.expires - 0.125,
        valid,
    )
    check(
        "check_other_node_valid",
        "a nonce minted by another node is valid fleet-wide",
        mints[2][2].mint(),
        NOW + 30,
        {"valid": {"node_id": hx(OTHER_NODE), "expires": NOW + 60}},
    )
    check("check_expired_at_expiry", "now == expiry", NONCE, CONN.expires, reject("nonce_expired"))
    check(
        "check_expired_later",
        "a day after expiry",
        NONCE,
        CONN.expires + 86400,
        reject("nonce_expired"),
    )
    check(
        "check_other_fleet",
        "checked with another fleet key",
        NONCE,
        NOW,
        reject("nonce_invalid"),
        fleet=OTHER_FLEET,
    )
    check(
        "check_other_audience",
        "checked for another audience of the same fleet",
        NONCE,
        NOW,
        reject("nonce_invalid"),
        audience=OTHER_AUD,
    )
    for region, offset in (
        ("version", 0),
        ("node_id", 4),
        ("expiry", 16),
        ("random", 20),
        ("tag", 50),
    ):
        check(
            f"check_flipped_{region}",
            f"one bit flipped in the {region} region (byte {offset})",
            flip(NONCE, offset, 2),
            NOW,
            reject("nonce_invalid"),
        )
    head = nonce_head(2, NODE, CONN.expires, CONN.random)
    check(
        "check_version_2_valid_tag",
        "version byte 0x02 with a tag recomputed over it: the version is checked on its own",
        head + nonce_tag(FLEET, AUD, head),
        NOW,
        reject("nonce_invalid"),
    )
    extended = flip(NONCE, 9, 7)  # expiry pushed far into the future, tag now wrong
    check(
        "check_invalid_before_expired",
        "an expired nonce with a wrong tag: nonce_invalid is checked before the expiry",
        flip(NONCE, 40, 0),
        CONN.expires + 1,
        reject("nonce_invalid"),
    )
    check(
        "check_extended_expiry",
        "expiry bytes raised by an attacker: the tag no longer matches",
        extended,
        NOW,
        reject("nonce_invalid"),
    )
    check("check_63_bytes", "one byte short", NONCE[:63], NOW, reject("malformed"))
    check("check_65_bytes", "one byte too many", NONCE + b"\x00", NOW, reject("malformed"))
    check("check_empty", "zero bytes", b"", NOW, reject("malformed"))
    return document("Connection nonces (§5.3): minting with fixed inputs, and checking.", cases)


# -- frames.json ---------------------------------------------------------------------------------


def element_offset(frame: bytes, index: int) -> int:
    """Offset of element ``index`` of a canonical client frame (fixarray header)."""
    fields = msgpack.unpackb(frame, raw=False)
    offset = 1
    for value in fields[:index]:
        offset += len(pack(value))
    return offset


def frames_json() -> Json:
    cases: list[FrameCase] = []

    def case(name: str, description: str, **kwargs: Any) -> FrameCase:
        seq = FrameCase(name, description, **kwargs)
        cases.append(seq)
        return seq

    ts0 = default_ts(NOW)
    # ---- positive ------------------------------------------------------------------
    case("mac_str_payload", "a token frame with a text payload").send(ALICE, 1, "hello")
    case("mac_bin_payload", "a token frame with a binary payload").send(ALICE, 1, bytes(range(16)))
    case("mac_nil_control_frame", "a nil payload: a control frame (§6.5)").send(ALICE, 1, None)
    case("mac_empty_str_payload", "the empty string as payload").send(ALICE, 1, "")
    case("mac_empty_bin_payload", "the empty byte string as payload").send(ALICE, 1, b"")
    case("mac_unicode_payload", "a non-ASCII text payload").send(ALICE, 1, "héllo, wörld ✓ 🙂")
    case("mac_bin16_payload", "a 300-byte binary payload (bin 16 is canonical here)").send(
        ALICE, 1, fixed("payload", 300)
    )
    case("mac_sequence", "three frames in order: str, bin, nil").send(
        ALICE, 1, "one", now=NOW
    ).send(ALICE, 2, b"\x02", now=NOW + 1).send(ALICE, 3, None, now=NOW + 2)
    case("ed25519_certificate", "a certificate frame").send(CAROL, 1, "hello")
    case("ed25519_certificate_sequence", "certificate frames in order").send(
        CAROL, 1, "one", now=NOW
    ).send(CAROL, 2, b"two", now=NOW + 1).send(CAROL, 3, None, now=NOW + 2)
    case("ed25519_key_reference", "a key reference frame (registry entry)").send(
        SENSOR, 1, b"\x00\x01temperature=21.5"
    )
    case("ed25519_key_reference_sequence", "key reference frames in order").send(
        SENSOR, 1, "a", now=NOW
    ).send(SENSOR, 2, "b", now=NOW + 1)
    case(
        "refresh_new_token",
        "refresh (§4.5): a new token of the same (iss, sub), new cid and scopes; then the old "
        "token again, still valid: each frame is judged by its own credential",
    ).send(ALICE, 1, "old", now=NOW + 650).send(ALICE_2, 2, "new", now=NOW + 700).send(
        ALICE, 3, "old again", now=NOW + 701
    )
    case(
        "refresh_token_to_certificate",
        "refresh from a token (kind 1) to a certificate (kind 2) of the same (iss, sub): "
        "the type may change (§4.5)",
    ).send(ALICE, 1, "mac").send(ALICE_CERT, 2, "ed25519", now=NOW + 1)
    case(
        "refresh_with_control_frame",
        "a nil-payload frame moves to the new credential (§4.5)",
    ).send(ALICE, 1, "x", now=NOW + 650).send(ALICE_2, 2, None, now=NOW + 700)
    case("gaps_allowed_w0", "W = 0: counters must increase, gaps are allowed").send(
        ALICE, 1, "a"
    ).send(ALICE, 7, "b", now=NOW + 1).send(ALICE, 1000, "c", now=NOW + 2)
    case("first_counter_not_1", "the first frame may have any counter >= 1").send(ALICE, 42, "x")
    case(
        "resent_messages_keep_seq",
        "a new connection resends messages 41 and 42 of its stream under counters 1 and 2 "
        "(§7.3), then sends message 43",
    ).send(ALICE, 1, "m41", seq=41).send(ALICE, 2, "m42", seq=42).send(ALICE, 3, "m43", seq=43)
    case(
        "seq_order_not_checked",
        "the verifier does not order seq (§6.4 checks only seq = 0 iff nil): seq 5 then 3",
    ).send(ALICE, 1, "a", seq=5).send(ALICE, 2, "b", seq=3)
    case("seq_max", "seq 2^64 - 1 is accepted").send(ALICE, 1, "last", seq=MAX_U64)
    case("counter_max", "counter 2^64 - 1 is accepted").send(ALICE, MAX_U64, "last")
    case(
        "window_out_of_order",
        "W = 4: counters 3, 1, 2, 4 are all accepted, each once",
        window=4,
    ).send(ALICE, 3, "3").send(ALICE, 1, "1").send(ALICE, 2, "2").send(ALICE, 4, "4")
    case(
        "window_oldest_in_window",
        "W = 4: after 10, counter 7 (10 - 7 = 3 < 4) is accepted",
        window=4,
    ).send(ALICE, 10, "10").send(ALICE, 7, "7")
    case(
        "window_slides",
        "W = 4: after 5 then 9, counter 6 is accepted (9 - 6 = 3), counter 5 is refused",
        window=4,
    ).send(ALICE, 5, "5").send(ALICE, 9, "9").send(ALICE, 6, "6").send(
        ALICE, 5, "5", expect="replay"
    )
    case(
        "window_large_jump",
        "W = 1024: a jump of a million, then a counter one below it",
        window=1024,
    ).send(ALICE, 1, "1").send(ALICE, 1_000_001, "far").send(ALICE, 1_000_000, "below")
    case(
        "window_jump_to_max_counter",
        "W = 4: after 1, counter 2^64 - 1, then 2^64 - 2 inside the window; a replay of "
        "2^64 - 1 is refused",
        window=4,
    ).send(ALICE, 1, "1").send(ALICE, MAX_U64, "max").send(ALICE, MAX_U64 - 1, "max-1").send(
        ALICE, MAX_U64, "max", expect="replay"
    )
    case("skew_at_max_future", "ts = now + max_skew exactly is accepted").send(
        ALICE, 1, ts=ms(NOW) + 300_000
    )
    case("skew_at_max_past", "ts = now - max_skew exactly is accepted").send(
        ALICE, 1, ts=ms(NOW) - 300_000
    )
    early = mac_client(
        replace(ALICE_CLAIMS, cid="tok-alice-early", iat=NOW + 100, exp=NOW + 1000), SECRET_A
    )
    case(
        "leeway_just_inside",
        "iat = now + 30 s exactly (leeway 30 s): accepted (now >= iat - leeway)",
    ).send(early, 1, now=NOW + 70)
    case("leeway_zero_at_iat", "leeway 0: accepted at now == iat", leeway=0).send(
        early, 1, now=NOW + 100
    )
    case("just_before_exp", "1/8 s before exp: accepted").send(
        ALICE, 1, now=ALICE_CLAIMS.exp - 0.125
    )
    case(
        "revoked_subject_issued_after",
        "subject revoked before t = iat: the credential (iat == t, not iat < t) is accepted",
        revocations=revocations_json(subjects=[(ISS_A, "alice", ALICE_CLAIMS.iat)]),
    ).send(ALICE, 1)
    case(
        "revocation_is_per_issuer",
        "cid tok-alice-1 revoked under issuer B does not revoke issuer A's tok-alice-1",
        revocations=revocations_json(
            credentials=[(ISS_B, "tok-alice-1")], subjects=[(ISS_B, "alice", NOW + 9999)]
        ),
    ).send(ALICE, 1)
    aud_any = mac_client(replace(ALICE_CLAIMS, cid="tok-any", aud=()), SECRET_A)
    aud_two = mac_client(replace(ALICE_CLAIMS, cid="tok-two", aud=(AUD, OTHER_AUD)), SECRET_A)
    case("audience_empty_list", "aud = [] is valid at any audience").send(aud_any, 1)
    case("audience_in_list", "aud lists two audiences, one is ours").send(aud_two, 1)
    at_nb = mac_client(
        Claims(
            ISS_A,
            KID_A_NEW,
            "tok-new-key",
            "alice",
            (),
            (AUD,),
            A_NEW_NOT_BEFORE - 10,
            A_NEW_NOT_BEFORE + 900,
        ),
        SECRET_A_NEW,
    )
    case(
        "issuer_key_at_not_before",
        "a token under hk-2025 at exactly its not_before: accepted ([not_before, not_after))",
    ).send(at_nb, 1, now=A_NEW_NOT_BEFORE)
    frame = ALICE.frame(1, ts0, "fits")
    case(
        "frame_at_max_frame_size",
        "len(frame) == max_frame_size is accepted",
        max_frame_size=len(frame),
    ).raw(frame, NOW, ALICE.accept(1, ts0, "fits"))

    # ---- rejection leaves the state unchanged (§6.4) ---------------------------------
    case(
        "rejection_changes_nothing_counter",
        "W = 0: 1 accepted; 5 with a bad tag refused; 2 accepted (H did not move to 5)",
    ).send(ALICE, 1, "1").raw(
        _bad_tag(ALICE, 5, ts0),
        NOW,
        reject("bad_tag"),
    ).send(ALICE, 2, "2")
    case(
        "rejection_changes_nothing_window",
        "W = 4: 3 accepted; 2 with a bad tag refused; 2 accepted (the bitmap was not marked)",
        window=4,
    ).send(ALICE, 3, "3").raw(_bad_tag(ALICE, 2, ts0), NOW, reject("bad_tag")).send(ALICE, 2, "2")
    case(
        "rejection_changes_nothing_binding",
        "bob's frame refused (bad tag) before any accepted frame; then alice binds the "
        "connection: the refused frame did not bind it to bob",
    ).raw(_bad_tag(BOB, 1, ts0), NOW, reject("bad_tag")).send(ALICE, 1).send(
        BOB, 2, expect="credential_mismatch"
    )
    case(
        "rejection_then_same_counter",
        "a frame refused for skew, then the same counter with a good timestamp is accepted",
    ).send(ALICE, 1, ts=ms(NOW) + 400_000, expect="timestamp_skew").send(ALICE, 1)

    # ---- negative: authentication ---------------------------------------------------------
    case("mac_bad_tag", "a token frame whose tag was made with another frame key").raw(
        _bad_tag(ALICE, 1, ts0), NOW, reject("bad_tag")
    )
    case(
        "mac_tag_with_token_key",
        "a frame tagged with the issuer's token_key instead of the frame key",
    ).raw(replace(ALICE, secret=token_key(SECRET_A)).frame(1, ts0, "x"), NOW, reject("bad_tag"))
    case(
        "mac_tag_of_other_token",
        "alice's token with a tag made with bob's frame key",
    ).raw(replace(ALICE, secret=BOB.secret).frame(1, ts0, "x"), NOW, reject("bad_tag"))
    case("ed25519_bad_signature", "a certificate frame signed by another key").raw(
        replace(CAROL, secret=SEED_ROGUE).frame(1, ts0, "x"), NOW, reject("bad_signature")
    )
    case("ed25519_key_reference_bad_signature", "a key reference frame signed by another key").raw(
        replace(SENSOR, secret=SEED_CAROL).frame(1, ts0, "x"), NOW, reject("bad_signature")
    )
    good_ed = CAROL.frame(1, ts0, "x")
    sig = good_ed[-64:]
    case(
        "signature_s_plus_l",
        "a valid signature with S replaced by S + L: §8.2 rule 2 (S < L)",
    ).raw(
        good_ed[:-64] + sig[:32] + le32(int.from_bytes(sig[32:], "little") + L),
        NOW,
        reject("bad_signature"),
    )
    case(
        "signature_small_order_r",
        "R replaced by the identity point (small order, §8.2 rule 4)",
    ).raw(good_ed[:-64] + IDENTITY_POINT + sig[32:], NOW, reject("bad_signature"))
    case(
        "signature_noncanonical_r",
        "R replaced by a non-canonical encoding (y = p + 3, §8.2 rule 3)",
    ).raw(good_ed[:-64] + NONCANONICAL_Y + sig[32:], NOW, reject("bad_signature"))
    case("signature_all_zero", "a 64-byte all-zero signature").raw(
        good_ed[:-64] + bytes(64), NOW, reject("bad_signature")
    )
    case(
        "wrong_audience_mac",
        "tag valid for audience other.example.com (lp(aud) in the signed input), not ours",
    ).send(ALICE, 1, aud=OTHER_AUD, expect="bad_tag")
    case(
        "wrong_audience_ed25519",
        "signature valid for audience other.example.com, not ours",
    ).send(CAROL, 1, aud=OTHER_AUD, expect="bad_signature")
    case(
        "server_label_reflected",
        "a frame tagged with the server label instead of the client label (§7.1)",
    ).raw(
        seal(KIND_MAC, ALICE.frame(1, ts0, "x")[:-34], ALICE.secret, AUD, SERVER_LABEL),
        NOW,
        reject("bad_tag"),
    )

    # ---- negative: one flipped bit per envelope field (§6.4: first failing step) ---------
    base_frame = ALICE.frame(1, ts0, "hello")
    off = {
        name: element_offset(base_frame, i)
        for i, name in enumerate(
            ["version", "kind", "cred", "nonce", "ctr", "ts", "stream", "seq", "payload", "tag"]
        )
    }
    flips = [
        ("flip_array_header", 0, 0, "malformed", "header 0x9a -> 0x9b: 11 elements announced"),
        ("flip_version", off["version"], 1, "unsupported_version", "version 1 -> 3"),
        ("flip_kind", off["kind"], 1, "malformed", "kind 1 -> 3: not a client kind"),
        ("flip_cred_header", off["cred"], 0, "malformed", "cred header c4 -> c5 (bin 16)"),
        (
            "flip_cred_subject",
            off["cred"] + 2 + ALICE.cred.index(b"alice") + 4,
            0,
            "credential_invalid",
            "sub 'alice' -> 'alicd' inside the token: its tag no longer verifies",
        ),
        (
            "flip_cred_token_tag",
            off["cred"] + 2 + len(ALICE.cred) - 1,
            7,
            "credential_invalid",
            "last byte of the token's tag",
        ),
        ("flip_nonce", off["nonce"] + 2 + 20, 4, "nonce_mismatch", "a bit of the nonce"),
        ("flip_ctr_to_0", off["ctr"], 0, "malformed", "ctr 1 -> 0"),
        ("flip_ctr_to_3", off["ctr"], 1, "bad_tag", "ctr 1 -> 3: only the tag catches it"),
        ("flip_ts_low_bit", off["ts"] + 8, 0, "bad_tag", "ts changed by 1 ms: within max_skew"),
        (
            "flip_ts_high_bit",
            off["ts"] + 5,
            6,
            "timestamp_skew",
            "ts changed by 2^30 ms: beyond max_skew, checked before the tag",
        ),
        ("flip_stream", off["stream"] + 2 + 7, 3, "bad_tag", "a bit of the stream id"),
        ("flip_stream_header", off["stream"], 3, "malformed", "stream header c4 -> cc (uint 8)"),
        ("flip_seq_to_0", off["seq"], 0, "malformed", "seq 1 -> 0 with a str payload"),
        ("flip_seq_to_3", off["seq"], 1, "bad_tag", "seq 1 -> 3: only the tag catches it"),
        ("flip_payload", off["payload"] + 1, 0, "bad_tag", "payload 'hello' -> 'iello'"),
        (
            "flip_payload_invalid_utf8",
            off["payload"] + 1,
            7,
            "malformed",
            "payload byte 'h' -> 0xe8: the str is no longer valid UTF-8",
        ),
        ("flip_payload_header", off["payload"], 0, "malformed", "fixstr length 5 -> 4"),
        ("flip_tag", off["tag"] + 2 + 31, 0, "bad_tag", "last bit of the tag"),
        ("flip_tag_header", off["tag"], 1, "malformed", "tag header c4 -> c6 (bin 32)"),
    ]
    for name, offset, bit, code, what in flips:
        case(name, f"one flipped bit: {what}").raw(
            flip(base_frame, offset, bit), NOW, reject(code)
        )
    case("flip_ed25519_signature", "one flipped bit in a certificate frame's signature").raw(
        flip(good_ed, len(good_ed) - 10, 5), NOW, reject("bad_signature")
    )

    # ---- negative: truncation and trailing bytes ---------------------------------------------
    for length in (0, 1, 2, 40, len(base_frame) // 2, len(base_frame) - 34, len(base_frame) - 1):
        case(
            f"truncated_to_{length}",
            f"the first {length} of {len(base_frame)} bytes of a valid frame",
        ).raw(base_frame[:length], NOW, reject("malformed"))
    case("trailing_zero_byte", "a valid frame followed by 00").raw(
        base_frame + b"\x00", NOW, reject("malformed")
    )
    case("trailing_nil", "a valid frame followed by c0 (a whole MessagePack nil)").raw(
        base_frame + b"\xc0", NOW, reject("malformed")
    )
    case("two_frames_concatenated", "two valid frames in one message").raw(
        base_frame + ALICE.frame(2, ts0, "again"), NOW, reject("malformed")
    )

    # ---- negative: non-canonical encodings, tag valid over the exact bytes ---------------------
    def at(index: int, encoded: bytes) -> Callable[[list[bytes]], list[bytes]]:
        def rewrite(items: list[bytes]) -> list[bytes]:
            out = list(items)
            out[index] = encoded
            return out

        return rewrite

    # Element indexes: 0 version, 1 kind, 2 cred, 3 nonce, 4 ctr, 5 ts, 6 stream, 7 seq,
    # 8 payload, 9 tag.
    noncanonical = [
        ("noncanonical_ctr_uint8", "ctr 1 as uint 8 (cc 01)", at(4, b"\xcc\x01"), ALICE),
        (
            "noncanonical_ctr_uint16",
            "ctr 200 as uint 16 (cd 00 c8)",
            at(4, b"\xcd\x00\xc8"),
            ALICE,
        ),
        ("noncanonical_ctr_int16", "ctr 1 as int 16 (d1 00 01)", at(4, b"\xd1\x00\x01"), ALICE),
        ("noncanonical_ctr_int8", "ctr 1 as int 8 (d0 01)", at(4, b"\xd0\x01"), ALICE),
        ("noncanonical_version_uint8", "version 1 as uint 8 (cc 01)", at(0, b"\xcc\x01"), ALICE),
        ("noncanonical_kind_uint8", "kind 1 as uint 8 (cc 01)", at(1, b"\xcc\x01"), ALICE),
        ("noncanonical_cred_bin16", "a short cred as bin 16", at(2, bin16(ALICE.cred)), ALICE),
        ("noncanonical_nonce_bin16", "the nonce as bin 16", at(3, bin16(NONCE)), ALICE),
        (
            "noncanonical_stream_bin16",
            "the stream id as bin 16",
            at(6, bin16(ALICE.stream)),
            ALICE,
        ),
        ("noncanonical_seq_uint8", "seq 1 as uint 8 (cc 01)", at(7, b"\xcc\x01"), ALICE),
        ("noncanonical_seq_int8", "seq 1 as int 8 (d0 01)", at(7, b"\xd0\x01"), ALICE),
        ("noncanonical_payload_str8", "payload 'hello' as str 8", at(8, str8("hello")), ALICE),
        (
            "noncanonical_payload_bin16",
            "a 3-byte bin payload as bin 16",
            at(8, bin16(b"abc")),
            ALICE,
        ),
        (
            "noncanonical_ts_uint64_small",
            "ts 1000 as uint 64 (the clock at 1 s after the epoch)",
            at(5, b"\xcf" + (1000).to_bytes(8, "big")),
            ALICE,
        ),
        (
            "noncanonical_ed25519_ctr_uint8",
            "an Ed25519 frame, ctr as uint 8",
            at(4, b"\xcc\x01"),
            CAROL,
        ),
    ]
    for name, what, rewrite, client in noncanonical:
        case(name, f"non-canonical: {what}; tag valid over these bytes").raw(
            client.frame(1, ts0, "hello", items=rewrite), NOW, reject("malformed")
        )
    case(
        "noncanonical_array16_header",
        "non-canonical: the envelope's array header as array 16 (dc 00 0a); tag valid",
    ).raw(ALICE.frame(1, ts0, "hello", header=b"\xdc\x00\x0a"), NOW, reject("malformed"))

    # ---- negative: wrong types, extra and missing elements ----------------------------------
    typed_cases: list[tuple[str, str, int, bytes, str]] = [
        ("version_str", "version is the str '1'", 0, pack("1"), "unsupported_version"),
        ("version_nil", "version is nil", 0, pack(None), "unsupported_version"),
        ("version_0", "version 0", 0, pack(0), "unsupported_version"),
        (
            "unsupported_version_2",
            "version 2, otherwise a valid frame",
            0,
            pack(2),
            "unsupported_version",
        ),
        ("kind_str", "kind is a str", 1, pack("mac"), "malformed"),
        ("kind_0", "kind 0", 1, pack(0), "malformed"),
        ("kind_hello", "kind 3 (a hello's kind)", 1, pack(3), "malformed"),
        ("kind_server_mac", "kind 4 (a server frame's kind)", 1, pack(4), "malformed"),
        ("kind_ed25519_with_32_byte_tag", "kind 2 with a 32-byte tag", 1, pack(2), "malformed"),
        ("cred_str", "cred is a str", 2, pack("token"), "malformed"),
        ("cred_nil", "cred is nil", 2, pack(None), "malformed"),
        (
            "cred_array",
            "cred is the token decoded: an array, not a bin",
            2,
            pack(msgpack.unpackb(ALICE.cred)),
            "malformed",
        ),
        ("nonce_str", "nonce is a 64-character str", 3, pack("n" * 64), "malformed"),
        ("nonce_63_bytes", "nonce is bin(63)", 3, pack(NONCE[:63]), "malformed"),
        ("nonce_65_bytes", "nonce is bin(65)", 3, pack(NONCE + b"\x00"), "malformed"),
        ("ctr_zero", "ctr 0 (§6.4 step 4)", 4, pack(0), "malformed"),
        ("ctr_str", "ctr is a str", 4, pack("1"), "malformed"),
        ("ctr_negative", "ctr is -1", 4, pack(-1), "malformed"),
        ("ctr_nil", "ctr is nil", 4, pack(None), "malformed"),
        ("ctr_float", "ctr is the float64 1.0", 4, pack(1.0), "malformed"),
        ("ts_bin", "ts is a bin", 5, pack(b"\x01"), "malformed"),
        ("ts_negative", "ts is -1", 5, pack(-1), "malformed"),
        ("stream_15_bytes", "stream is bin(15)", 6, pack(ALICE.stream[:15]), "malformed"),
        ("stream_17_bytes", "stream is bin(17)", 6, pack(ALICE.stream + b"\x00"), "malformed"),
        ("stream_str", "stream is a 16-character str", 6, pack("s" * 16), "malformed"),
        ("stream_nil", "stream is nil", 6, pack(None), "malformed"),
        ("seq_zero_with_payload", "seq 0 with a str payload (§6.1)", 7, pack(0), "malformed"),
        ("seq_negative", "seq is -1", 7, pack(-1), "malformed"),
        ("seq_str", "seq is a str", 7, pack("1"), "malformed"),
        ("seq_nil", "seq is nil", 7, pack(None), "malformed"),
        ("payload_int", "payload is a uint", 8, pack(7), "malformed"),
        ("payload_negative_int", "payload is -7", 8, pack(-7), "malformed"),
        ("payload_array", "payload is an array", 8, pack(["hello"]), "malformed"),
        ("payload_map", "payload is a map", 8, b"\x81\xa1k\xa1v", "malformed"),
        ("payload_empty_map", "payload is an empty map", 8, b"\x80", "malformed"),
        ("payload_bool", "payload is true", 8, pack(True), "malformed"),
        ("payload_float", "payload is a float64", 8, pack(1.5), "malformed"),
        (
            "payload_ext",
            "payload is an extension type (fixext 1)",
            8,
            b"\xd4\x01\x00",
            "malformed",
        ),
    ]
    for name, what, index, encoded, code in typed_cases:
        # ALICE's frame key makes a 32-byte tag, also under kind 2 (kind_ed25519_with_...).
        case(name, f"{what}; tag valid over these bytes").raw(
            ALICE.frame(1, ts0, "hello", items=at(index, encoded)), NOW, reject(code)
        )
    case("seq_nonzero_with_nil", "seq 1 with a nil payload (§6.1); tag valid").raw(
        ALICE.frame(1, ts0, None, seq=1), NOW, reject("malformed")
    )
    elements = encode_each([1, KIND_MAC, ALICE.cred, NONCE, 1, ts0, ALICE.stream, 1, "hello"])
    body = array(elements, array_header(10))
    case("tag_str", "tag is a 32-character str").raw(
        body + pack("t" * 32), NOW, reject("malformed")
    )
    case("tag_31_bytes", "tag is bin(31)").raw(body + bin_tag(bytes(31)), NOW, reject("malformed"))
    case("tag_nil", "tag is nil").raw(body + pack(None), NOW, reject("malformed"))
    case("mac_with_64_byte_tag", "kind 1 with a 64-byte tag").raw(
        body + bin_tag(bytes(64)), NOW, reject("malformed")
    )
    ed_elements = encode_each(
        [1, KIND_ED25519, CAROL.cred, NONCE, 1, ts0, CAROL.stream, 1, "hello"]
    )
    case("ed25519_with_32_byte_tag", "kind 2 with a 32-byte tag").raw(
        array(ed_elements, array_header(10)) + bin_tag(bytes(32)), NOW, reject("malformed")
    )
    case("extra_element", "11 elements: a nil after the tag").raw(
        array(elements, array_header(11)) + bin_tag(bytes(32)) + pack(None),
        NOW,
        reject("malformed"),
    )

    def drop_stream(items: list[bytes]) -> list[bytes]:
        return [*items[:6], *items[7:]]

    case("missing_element", "9 elements: no stream; tag valid over these bytes").raw(
        ALICE.frame(1, ts0, "hello", items=drop_stream, header=array_header(9)),
        NOW,
        reject("malformed"),
    )

    def draft_layout(items: list[bytes]) -> list[bytes]:
        return [*items[:6], items[8]]

    case(
        "eight_element_layout",
        "the 8-element layout without stream and seq; tag valid over these bytes",
    ).raw(
        ALICE.frame(1, ts0, "hello", items=draft_layout, header=array_header(8)),
        NOW,
        reject("malformed"),
    )
    case(
        "version_2_with_11_elements", "version 2 with 11 elements: the version is checked first"
    ).raw(
        array([pack(2), *elements[1:]], array_header(11)) + bin_tag(bytes(32)) + pack(None),
        NOW,
        reject("unsupported_version"),
    )
    case("empty_array", "an empty array").raw(b"\x90", NOW, reject("malformed"))
    case("not_an_array", "a str").raw(pack("hello"), NOW, reject("malformed"))
    case("top_level_map", "a map").raw(b"\x81\x01\x01", NOW, reject("malformed"))
    case("top_level_nil", "nil").raw(b"\xc0", NOW, reject("malformed"))
    case("reserved_byte", "the never-used byte c1").raw(b"\xc1", NOW, reject("malformed"))
    big_cred = bytes(4097)
    case(
        "cred_4097_bytes",
        "a cred of 4097 bytes: over the credential size limit (§10)",
    ).raw(
        Client(KIND_MAC, big_cred, ALICE.secret, "", "", "", ()).frame(1, ts0, None),
        NOW,
        reject("malformed"),
    )
    case(
        "cred_4096_bytes_junk",
        "a cred of exactly 4096 zero bytes: within the limit, but not a credential",
    ).raw(
        Client(KIND_MAC, bytes(4096), ALICE.secret, "", "", "", ()).frame(1, ts0, None),
        NOW,
        reject("credential_malformed"),
    )

    # ---- negative: nonce, counter ------------------------------------------------------------
    case("wrong_nonce", "a frame signed for another connection's nonce of the same fleet").send(
        ALICE, 1, nonce=NONCE2, expect="nonce_mismatch"
    )
    short = replace(CONN, ttl=60)
    case(
        "nonce_expired",
        "now == the nonce's expiry (connection opened at now - 30 with a 60 s nonce)",
        nonce=short,
        nonce_ttl=60,
    ).send(ALICE, 1, now=NOW - 10).send(ALICE, 2, now=short.expires, expect="nonce_expired")
    case("replayed_counter", "the same frame twice").send(ALICE, 1, "x").raw(
        ALICE.frame(1, ts0, "x"), NOW, reject("replay")
    )
    case("counter_lower", "W = 0: 5 then 3").send(ALICE, 5).send(ALICE, 3, expect="replay")
    case("counter_equal_new_payload", "W = 0: 5 then 5 with another payload").send(
        ALICE, 5, "a"
    ).send(ALICE, 5, "b", expect="replay")
    case("counter_wrap", "after 2^64 - 1 no counter passes").send(ALICE, MAX_U64, "last").send(
        ALICE, 1, "wrapped", expect="replay"
    ).send(ALICE, MAX_U64, "again", expect="replay")
    case(
        "window_outside",
        "W = 4: after 10, counter 6 is 4 behind: outside the window; 7 is still accepted",
        window=4,
    ).send(ALICE, 10).send(ALICE, 6, expect="replay").send(ALICE, 7)
    case("window_duplicate", "W = 4: 3, 1, then 1 again", window=4).send(ALICE, 3).send(
        ALICE, 1
    ).send(ALICE, 1, expect="replay")
    case("window_highest_again", "W = 4: the highest counter again", window=4).send(
        ALICE, 10
    ).send(ALICE, 10, expect="replay")

    # ---- negative: credential checks at step 7 ----------------------------------------------
    case("credential_expired", "a frame at exactly the token's exp").send(
        ALICE, 1, now=ALICE_CLAIMS.exp, expect="credential_expired"
    )
    case(
        "credential_expires_mid_connection",
        "accepted before exp, refused at exp on the same connection",
    ).send(ALICE, 1, now=NOW).send(ALICE, 2, now=ALICE_CLAIMS.exp, expect="credential_expired")
    case(
        "certificate_expired",
        "a certificate frame after the certificate's exp",
    ).send(CAROL, 1, now=CAROL_CLAIMS.exp + 5, expect="credential_expired")
    case(
        "credential_not_yet_valid",
        "iat = now + 30.125 s with leeway 30 s: 125 ms beyond the leeway",
    ).send(early, 1, now=NOW + 69.875, expect="credential_not_yet_valid")
    case(
        "credential_not_yet_valid_no_leeway",
        "leeway 0: refused 1/8 s before iat",
        leeway=0,
    ).send(early, 1, now=NOW + 99.875, expect="credential_not_yet_valid")
    case(
        "revoked_by_cid",
        "the token's (iss, cid) is in the revocation set",
        revocations=revocations_json(credentials=[(ISS_A, "tok-alice-1")]),
    ).send(ALICE, 1, expect="credential_revoked")
    case(
        "revoked_by_subject",
        "(iss, sub) revoked before t = iat + 1: iat < t",
        revocations=revocations_json(subjects=[(ISS_A, "alice", ALICE_CLAIMS.iat + 1)]),
    ).send(ALICE, 1, expect="credential_revoked")
    case(
        "revoked_key_reference",
        "a key reference's cid is its kid: (devices.example.com, sensor-7) revoked",
        revocations=revocations_json(credentials=[(ISS_DEV, KID_SENSOR)]),
    ).send(SENSOR, 1, expect="credential_revoked")
    case(
        "revoked_mid_connection",
        "frame 1 accepted; the revocation set is replaced and frame 2 is refused; the set is "
        "cleared again and frame 2 is accepted (the refusal changed nothing)",
    ).send(ALICE, 1).send(
        ALICE,
        2,
        now=NOW + 1,
        expect="credential_revoked",
        revocations=revocations_json(credentials=[(ISS_A, "tok-alice-1")]),
    ).send(ALICE, 2, now=NOW + 2, revocations=revocations_json())
    case(
        "audience_mismatch",
        "a token whose aud list does not contain the server's audience",
    ).send(
        mac_client(replace(ALICE_CLAIMS, cid="tok-other-aud", aud=(OTHER_AUD,)), SECRET_A),
        1,
        expect="audience_mismatch",
    )
    case(
        "credential_mismatch_other_subject",
        "bound to (auth.example.com, alice); then bob's valid token; then alice again",
    ).send(ALICE, 1).send(BOB, 2, expect="credential_mismatch").send(ALICE, 2)
    case(
        "credential_mismatch_other_issuer",
        "bound to (auth.example.com, alice); then alice of partner.example.net",
    ).send(ALICE, 1).send(ALICE_AT_B, 2, expect="credential_mismatch")
    case(
        "credential_mismatch_key_reference",
        "bound to sensor-7 by a key reference; then carol's certificate",
    ).send(SENSOR, 1).send(CAROL, 2, expect="credential_mismatch")
    stranger = mac_client(replace(ALICE_CLAIMS, iss=ISS_STRANGER), SECRET_STRANGER)
    case("unknown_issuer", "a token of an issuer that is in no keyring").send(
        stranger, 1, expect="unknown_issuer"
    )
    confused = mac_client(replace(ALICE_CLAIMS, iss=ISS_B, kid=KID_A), SECRET_A)
    case(
        "kid_of_other_issuer",
        "iss partner.example.net with kid hk-2024 (a kid of auth.example.com), tagged and "
        "framed with auth.example.com's secret",
    ).send(confused, 1, expect="unknown_key")
    case(
        "hmac_key_for_certificate",
        "a certificate naming an HMAC issuer key (auth.example.com, hk-2024)",
    ).send(
        cert_client(replace(CAROL_CLAIMS, kid=KID_A), SEED_CAROL, SEED_A),
        1,
        expect="unknown_key",
    )
    case(
        "scheme_mismatch_kind1_certificate",
        "kind 1 carrying a certificate (with a 32-byte tag)",
    ).raw(
        Client(KIND_MAC, CAROL.cred, fixed("any key"), "", "", "", ()).frame(1, ts0, "x"),
        NOW,
        reject("scheme_mismatch"),
    )
    case(
        "scheme_mismatch_kind1_key_reference",
        "kind 1 carrying a key reference (with a 32-byte tag)",
    ).raw(
        Client(KIND_MAC, SENSOR.cred, fixed("any key"), "", "", "", ()).frame(1, ts0, "x"),
        NOW,
        reject("scheme_mismatch"),
    )
    case(
        "scheme_mismatch_kind2_token",
        "kind 2 carrying a token (with a 64-byte signature by some key)",
    ).raw(
        Client(KIND_ED25519, ALICE.cred, SEED_CAROL, "", "", "", ()).frame(1, ts0, "x"),
        NOW,
        reject("scheme_mismatch"),
    )
    case(
        "scheme_mismatch_after_cache",
        "a token accepted under kind 1, then the same token bytes under kind 2",
    ).send(ALICE, 1).raw(
        Client(KIND_ED25519, ALICE.cred, SEED_CAROL, "", "", "", ()).frame(2, ts0, "x"),
        NOW,
        reject("scheme_mismatch"),
    )
    case(
        "weak_key",
        "a certificate binding a small-order key, properly signed by the issuer",
    ).raw(
        Client(
            KIND_ED25519,
            certificate(replace(CAROL_CLAIMS, cid="cert-weak"), IDENTITY_POINT, SEED_A),
            SEED_CAROL,
            "",
            "",
            "",
            (),
        ).frame(1, ts0, "x"),
        NOW,
        reject("weak_key"),
    )
    retired = mac_client(replace(ALICE_CLAIMS, kid=KID_A_OLD, cid="tok-old-key"), SECRET_A_OLD)
    case(
        "issuer_key_retired",
        "a token under hk-2023, whose not_after is 1000 s before now",
    ).send(retired, 1, expect="unknown_key")
    case(
        "issuer_key_retired_at_not_after",
        "a token under hk-2023 at exactly its not_after",
    ).send(retired, 1, now=A_OLD_NOT_AFTER, expect="unknown_key")
    case(
        "issuer_key_retired_ed25519",
        "a certificate under ek-2023, whose not_after has passed",
    ).send(
        cert_client(replace(CAROL_CLAIMS, kid=KID_A_ED_OLD), SEED_CAROL, SEED_A_OLD),
        1,
        expect="unknown_key",
    )
    case(
        "issuer_key_not_yet_valid",
        "a token under hk-2025 1/8 s before its not_before",
    ).send(at_nb, 1, now=A_NEW_NOT_BEFORE - 0.125, expect="unknown_key")
    case(
        "registry_key_absent",
        "a key reference to an entry the registry does not hold",
    ).send(replace(SENSOR, cred=key_reference(ISS_DEV, "sensor-8")), 1, expect="unknown_key")
    reg_late = keyring_json(sensor_iat=NOW + 100, sensor_exp=NOW + 200)
    case(
        "registry_entry_not_yet_valid",
        "a key reference whose registry entry has iat = now + 100 s (beyond the leeway)",
        keyring=reg_late,
    ).send(SENSOR, 1, expect="credential_not_yet_valid")
    case(
        "registry_entry_expired",
        "a key reference at exactly its registry entry's exp",
        keyring=reg_late,
    ).send(SENSOR, 1, now=NOW + 200, expect="credential_expired")

    # ---- negative: timestamp and size ---------------------------------------------------------
    case("skew_future", "ts = now + max_skew + 1 ms").send(
        ALICE, 1, ts=ms(NOW) + 300_001, expect="timestamp_skew"
    )
    case("skew_past", "ts = now - max_skew - 1 ms").send(
        ALICE, 1, ts=ms(NOW) - 300_001, expect="timestamp_skew"
    )
    case("skew_zero_ts", "ts = 0").send(ALICE, 1, ts=0, expect="timestamp_skew")
    case(
        "frame_too_large",
        "len(frame) == max_frame_size + 1",
        max_frame_size=len(frame) - 1,
    ).raw(frame, NOW, reject("frame_too_large"))
    case(
        "frame_too_large_before_decoding",
        "17 bytes of garbage with max_frame_size 16: size is checked before decoding",
        max_frame_size=16,
    ).raw(b"\xc1" * 17, NOW, reject("frame_too_large"))

    # ---- order of checks (§6.4: the first failing step wins) ---------------------------------
    case(
        "order_nonce_before_credential",
        "wrong nonce and an unknown issuer: nonce_mismatch (step 5 before step 7)",
    ).send(stranger, 1, nonce=NONCE2, expect="nonce_mismatch")
    case(
        "order_replay_before_credential",
        "a replayed counter carrying an expired credential: replay (step 6 before 7)",
    ).send(ALICE, 5, now=NOW).send(BOB, 5, now=ALICE_CLAIMS.exp + 60, expect="replay")
    case(
        "order_expired_before_tag",
        "an expired token and a bad tag: credential_expired (step 7 before 11)",
    ).raw(_bad_tag(ALICE, 1, ms(ALICE_CLAIMS.exp)), ALICE_CLAIMS.exp, reject("credential_expired"))
    case(
        "order_revoked_before_skew",
        "revoked and skewed: credential_revoked (step 9 before 10)",
        revocations=revocations_json(credentials=[(ISS_A, "tok-alice-1")]),
    ).send(ALICE, 1, ts=0, expect="credential_revoked")
    case(
        "order_mismatch_before_revocation",
        "bound to alice; bob's token, also revoked: credential_mismatch (step 8 before 9)",
        revocations=revocations_json(credentials=[(ISS_A, "tok-bob-1")]),
    ).send(ALICE, 1).send(BOB, 2, expect="credential_mismatch")
    case(
        "order_skew_before_tag",
        "skewed and with a bad tag: timestamp_skew (step 10 before 11)",
    ).raw(_bad_tag(ALICE, 1, 0), NOW, reject("timestamp_skew"))
    case(
        "order_scheme_before_authentication",
        "kind 1 with a certificate of an unknown issuer: scheme_mismatch (7.2 before 7.3)",
    ).raw(
        Client(
            KIND_MAC,
            certificate(
                replace(CAROL_CLAIMS, iss=ISS_STRANGER), ed25519_public(SEED_CAROL), SEED_ROGUE
            ),
            fixed("any key"),
            "",
            "",
            "",
            (),
        ).frame(1, ts0, "x"),
        NOW,
        reject("scheme_mismatch"),
    )
    case(
        "order_key_window_before_expiry",
        "a token under the retired hk-2023 that is also expired: unknown_key (7.4 order)",
    ).send(
        mac_client(
            replace(
                ALICE_CLAIMS, kid=KID_A_OLD, cid="tok-old-exp", iat=NOW - 9000, exp=NOW - 8000
            ),
            SECRET_A_OLD,
        ),
        1,
        expect="unknown_key",
    )
    case(
        "order_expiry_before_audience",
        "an expired token for another audience: credential_expired (7.4 order)",
    ).send(
        mac_client(
            replace(ALICE_CLAIMS, cid="tok-exp-aud", aud=(OTHER_AUD,), iat=NOW - 900, exp=NOW - 1),
            SECRET_A,
        ),
        1,
        expect="credential_expired",
    )

    result = [seq.json() for seq in cases]
    description = (
        "Client frames (§6) verified by a server (§6.4). Each case sets up a verifier and a "
        "connection, then runs steps in order on that one connection; a refused step changes "
        "nothing and later steps continue from the same state."
    )
    return document(description, result)


def _bad_tag(client: Client, ctr: int, ts: int, payload: Payload = "x") -> bytes:
    """A frame of ``client`` whose tag or signature is made with a wrong key."""
    wrong = replace(client, secret=fixed("wrong key for " + client.cid))
    return wrong.frame(ctr, ts, payload)


# -- server_frames.json ---------------------------------------------------------------------------


def hello(nonce: bytes, aud: str, time_ms: int, max_frame: int = 65536, window: int = 0) -> bytes:
    """A hello (§5.2)."""
    return pack([1, KIND_HELLO, nonce, aud, time_ms, max_frame, window])


def server_frame(
    kind: int,
    key_id: str,
    key: bytes,
    *,
    ctr: int,
    ack: int,
    ts: int,
    payload: Payload = None,
    nonce: bytes = NONCE,
    aud: str = AUD,
    label: bytes = SERVER_LABEL,
    items: Callable[[list[bytes]], list[bytes]] | None = None,
) -> bytes:
    """A server frame (§7.1)."""
    elements = encode_each([1, kind, key_id, nonce, ctr, ack, ts, payload])
    if items is None:
        zero = bytes(TAG_SIZE[kind])
        full = pack([1, kind, key_id, nonce, ctr, ack, ts, payload, zero])
        assert full[: -(len(zero) + 2)] == array(elements, array_header(9))  # noqa: S101
    else:
        elements = items(elements)
    return seal(kind, array(elements, array_header(9)), key, aud, label)


HELLO_TIME: Final = ms(NOW - 30)
HELLO: Final = hello(NONCE, AUD, HELLO_TIME)
CLIENT_HELLO_NOW: Final = NOW - 32.5  # the client's clock is 2.5 s behind the server's


def server_frames_json() -> Json:
    cases: list[Json] = []

    def hello_fields(nonce: bytes, aud: str, time_ms: int, max_frame: int, window: int) -> Json:
        return {
            "nonce": hx(nonce),
            "aud": aud,
            "time": time_ms,
            "max_frame": max_frame,
            "window": window,
        }

    def hello_case(name: str, description: str, data: bytes, expect: Json) -> None:
        cases.append(
            {
                "name": name,
                "description": description,
                "type": "hello",
                "credential": ALICE.json(),
                "audience": AUD,
                "now": num(CLIENT_HELLO_NOW),
                "hello": hx(data),
                "expect": expect,
            }
        )

    hello_case(
        "hello_valid",
        "the standard hello",
        HELLO,
        {"accept": hello_fields(NONCE, AUD, HELLO_TIME, 65536, 0)},
    )
    big_hello = hello(NONCE2, AUD, ms(NOW), 1 << 20, 1024)
    hello_case(
        "hello_window_and_limit",
        "a hello announcing W = 1024 and a 1 MiB frame limit",
        big_hello,
        {"accept": hello_fields(NONCE2, AUD, ms(NOW), 1 << 20, 1024)},
    )
    hello_case(
        "hello_wrong_audience",
        "a hello naming another audience (§5.2)",
        hello(NONCE, OTHER_AUD, HELLO_TIME),
        reject("audience_mismatch"),
    )
    hello_case(
        "hello_audience_prefix",
        "a hello whose audience is a prefix of ours",
        hello(NONCE, AUD[:-1], HELLO_TIME),
        reject("audience_mismatch"),
    )
    hello_case(
        "hello_version_2",
        "a hello of version 2",
        pack([2, KIND_HELLO, NONCE, AUD, HELLO_TIME, 65536, 0]),
        reject("unsupported_version"),
    )
    hello_case("hello_truncated", "a hello missing its last byte", HELLO[:-1], reject("malformed"))
    hello_case(
        "hello_trailing_byte",
        "a hello followed by a zero byte",
        HELLO + b"\x00",
        reject("malformed"),
    )
    hello_case(
        "hello_wrong_kind",
        "kind 4 instead of 3",
        pack([1, 4, NONCE, AUD, HELLO_TIME, 65536, 0]),
        reject("malformed"),
    )
    hello_case(
        "hello_6_elements",
        "no window element",
        pack([1, KIND_HELLO, NONCE, AUD, HELLO_TIME, 65536]),
        reject("malformed"),
    )
    hello_case(
        "hello_nonce_63_bytes",
        "a 63-byte nonce",
        pack([1, KIND_HELLO, NONCE[:63], AUD, HELLO_TIME, 65536, 0]),
        reject("malformed"),
    )
    hello_case(
        "hello_audience_bin",
        "aud is a bin",
        pack([1, KIND_HELLO, NONCE, AUD.encode(), HELLO_TIME, 65536, 0]),
        reject("malformed"),
    )
    hello_case(
        "hello_noncanonical_time",
        "time 5 as uint 8",
        array([pack(1), pack(3), pack(NONCE), pack(AUD), b"\xcc\x05", pack(65536), pack(0)]),
        reject("malformed"),
    )

    # ---- client signing: exact bytes -------------------------------------------------------
    offset = HELLO_TIME - ms(CLIENT_HELLO_NOW)

    def signing_case(
        name: str,
        description: str,
        client: Client,
        payloads: list[tuple[float, Payload]],
        *,
        refresh: dict[int, Client] | None = None,
        initial_seq: int = 0,
        resend: dict[int, int] | None = None,
    ) -> None:
        """Frames a client signs: ``refresh`` swaps the credential before step i,
        ``resend`` gives step i's message its original seq (§7.3)."""
        steps: list[Json] = []
        current = client
        last_seq = initial_seq
        for i, (now, payload) in enumerate(payloads):
            step: Json = {}
            if refresh and i in refresh:
                current = refresh[i]
                step["refresh"] = current.json()
            if resend and i in resend:
                step["resend_seq"] = resend[i]
                seq = resend[i]
            elif payload is None:
                seq = 0
            else:
                last_seq += 1
                seq = last_seq
            ts = ms(now) + offset
            step.update(
                {
                    "now": num(now),
                    "payload": typed(payload),
                    "ctr": i + 1,
                    "ts": ts,
                    "seq": seq,
                    "frame": hx(current.frame(i + 1, ts, payload, seq=seq)),
                }
            )
            steps.append(step)
        cases.append(
            {
                "name": name,
                "description": description,
                "type": "client_frames",
                "credential": client.json(),
                "stream": hx(client.stream),
                "seq": initial_seq,
                "audience": AUD,
                "hello": hx(HELLO),
                "now": num(CLIENT_HELLO_NOW),
                "steps": steps,
            }
        )

    clock = CLIENT_HELLO_NOW
    signing_case(
        "sign_mac",
        "a token client signs str, bin, empty and nil payloads; ts = client clock + "
        "(hello time - client clock at the hello)",
        ALICE,
        [(clock + 0.5, "hello"), (clock + 1, b"\x00\xff"), (clock + 1.25, ""), (clock + 2, None)],
    )
    signing_case(
        "sign_ed25519_certificate",
        "a certificate client signs three frames",
        CAROL,
        [(clock + 0.5, "hello"), (clock + 1, b"bytes"), (clock + 2, None)],
    )
    signing_case(
        "sign_ed25519_key_reference",
        "a key reference client signs two frames",
        SENSOR,
        [(clock + 0.5, b"\x01\x02"), (clock + 1, "t=21.5")],
    )
    signing_case(
        "sign_mac_refresh",
        "a token client refreshes to a new token before its third frame (§4.5)",
        ALICE,
        [(clock + 0.5, "one"), (clock + 1, "two"), (clock + 1.5, "three"), (clock + 2, None)],
        refresh={2: ALICE_2},
    )
    signing_case(
        "sign_resend_after_reconnect",
        "a client whose stream had numbered 7 messages, 6 and 7 unacknowledged, reconnects: "
        "it resends 6 and 7 with their original seq, then numbers a new message 8 (§7.3)",
        ALICE,
        [(clock + 0.5, "six"), (clock + 0.5, "seven"), (clock + 1, None), (clock + 1.5, "eight")],
        initial_seq=7,
        resend={0: 6, 1: 7},
    )

    # ---- server frames the client verifies (§7.2) ------------------------------------------
    srv_pub = ed25519_public(SEED_SERVER)

    def verify_case(
        name: str,
        description: str,
        credentials: list[Client],
        sent: int,
        steps: list[tuple[bytes, Json]],
        *,
        server_keys: dict[str, bytes] | None = None,
    ) -> None:
        cases.append(
            {
                "name": name,
                "description": description,
                "type": "server_frames",
                "credentials": [c.json() for c in credentials],
                "stream": hx(credentials[0].stream),
                "audience": AUD,
                "hello": hx(HELLO),
                "now": num(CLIENT_HELLO_NOW),
                "server_keys": {k: hx(v) for k, v in (server_keys or {}).items()},
                "sent": sent,
                "steps": [
                    {"frame": hx(frame), "now": num(NOW), "expect": expect}
                    for frame, expect in steps
                ],
            }
        )

    def s_accept(ctr: int, ack: int, ts: int, payload: Payload) -> Json:
        return {"accept": {"ctr": big(ctr), "ack": big(ack), "payload": typed(payload), "ts": ts}}

    fk = ALICE.secret
    ts = ms(NOW)

    def mac_sf(ctr: int, ack: int, payload: Payload = None, **kw: Any) -> bytes:
        key = kw.pop("key", fk)
        return server_frame(
            KIND_SERVER_MAC, ALICE.cid, key, ctr=ctr, ack=ack, ts=ts, payload=payload, **kw
        )

    def ed_sf(ctr: int, ack: int, payload: Payload = None, **kw: Any) -> bytes:
        kid = kw.pop("kid", KID_SERVER)
        key = kw.pop("key", SEED_SERVER)
        return server_frame(
            KIND_SERVER_ED25519, kid, key, ctr=ctr, ack=ack, ts=ts, payload=payload, **kw
        )

    ok = s_accept
    verify_case(
        "server_mac_sequence",
        "server frames under the client's frame key: str, bin, then a pure ack",
        [ALICE],
        3,
        [
            (mac_sf(1, 1, "welcome"), ok(1, 1, ts, "welcome")),
            (mac_sf(2, 3, b"\x01\x02"), ok(2, 3, ts, b"\x01\x02")),
            (mac_sf(3, 3), ok(3, 3, ts, None)),
        ],
    )
    verify_case(
        "server_mac_gaps_and_zero_ack",
        "server counters may skip; ack 0 means nothing accepted yet",
        [ALICE],
        2,
        [(mac_sf(5, 0, "early"), ok(5, 0, ts, "early")), (mac_sf(9, 2, ""), ok(9, 2, ts, ""))],
    )
    verify_case(
        "server_mac_previous_credential",
        "after a refresh, a server frame under the previous credential's cid still verifies "
        "(§7.2 step 6), as does one under the current cid",
        [ALICE, ALICE_2],
        2,
        [
            (mac_sf(1, 1, "old key"), ok(1, 1, ts, "old key")),
            (
                server_frame(
                    KIND_SERVER_MAC,
                    ALICE_2.cid,
                    ALICE_2.secret,
                    ctr=2,
                    ack=2,
                    ts=ts,
                    payload="new key",
                ),
                ok(2, 2, ts, "new key"),
            ),
        ],
    )
    verify_case(
        "server_ed25519_sequence",
        "server frames signed by the server key srv-1",
        [CAROL],
        2,
        [(ed_sf(1, 1, "welcome"), ok(1, 1, ts, "welcome")), (ed_sf(2, 2), ok(2, 2, ts, None))],
        server_keys={KID_SERVER: srv_pub},
    )
    verify_case(
        "server_ed25519_key_reference_client",
        "a key reference client verifies server frames the same way",
        [SENSOR],
        1,
        [(ed_sf(1, 1, b"cfg"), ok(1, 1, ts, b"cfg"))],
        server_keys={KID_SERVER: srv_pub},
    )
    verify_case(
        "server_max_counter",
        "server counter 2^64 - 1",
        [ALICE],
        1,
        [(mac_sf(MAX_U64, 1), ok(MAX_U64, 1, ts, None)), (mac_sf(MAX_U64, 1), reject("replay"))],
    )

    def negative(
        name: str,
        description: str,
        frame: bytes,
        code: str,
        *,
        client: Client = ALICE,
        sent: int = 3,
        before: list[tuple[bytes, Json]] | None = None,
    ) -> None:
        keys = {KID_SERVER: srv_pub} if client.kind == KIND_ED25519 else None
        steps = [*(before or []), (frame, reject(code))]
        verify_case(name, description, [client], sent, steps, server_keys=keys)

    negative(
        "server_bad_tag",
        "a tag made with another key",
        mac_sf(1, 1, "x", key=BOB.secret),
        "bad_tag",
    )
    good = mac_sf(1, 1, "x")
    negative(
        "server_flipped_tag", "one bit of the tag flipped", flip(good, len(good) - 1, 0), "bad_tag"
    )
    negative(
        "server_flipped_payload",
        "one bit of the payload flipped",
        flip(good, len(good) - 35, 0),
        "bad_tag",
    )
    negative(
        "server_wrong_audience",
        "tagged for audience other.example.com",
        mac_sf(1, 1, "x", aud=OTHER_AUD),
        "bad_tag",
    )
    negative(
        "server_client_label",
        "tagged with the client label instead of the server label (reflection, §7.1)",
        mac_sf(1, 1, "x", label=CLIENT_LABEL),
        "bad_tag",
    )
    negative(
        "server_reflected_client_frame",
        "the client's own frame sent back: 10 elements, kind 1",
        ALICE.frame(1, ts, "x"),
        "malformed",
    )
    negative(
        "server_nonce_mismatch",
        "another connection's nonce",
        mac_sf(1, 1, nonce=NONCE2),
        "nonce_mismatch",
    )
    negative(
        "server_replay",
        "the same server counter twice",
        mac_sf(1, 1, "again"),
        "replay",
        before=[(mac_sf(1, 1, "x"), ok(1, 1, ts, "x"))],
    )
    negative(
        "server_counter_lower",
        "server counter 3 then 2",
        mac_sf(2, 2),
        "replay",
        before=[(mac_sf(3, 1), ok(3, 1, ts, None))],
    )
    negative("server_counter_zero", "server counter 0", mac_sf(0, 1), "malformed")
    negative(
        "server_ack_above_sent",
        "ack 4 after the client sent 3 frames",
        mac_sf(1, 4),
        "ack_invalid",
    )
    negative(
        "server_ack_without_sending",
        "ack 1 when the client sent nothing",
        mac_sf(1, 1),
        "ack_invalid",
        sent=0,
    )
    negative(
        "server_ack_backwards",
        "ack 3 then ack 2",
        mac_sf(2, 2),
        "ack_invalid",
        before=[(mac_sf(1, 3), ok(1, 3, ts, None))],
    )
    verify_case(
        "server_rejection_changes_nothing",
        "ack 3 accepted; a frame with a bad tag and counter 5 refused; counter 2 is then "
        "accepted (the counter did not move to 5)",
        [ALICE],
        3,
        [
            (mac_sf(1, 3), ok(1, 3, ts, None)),
            (mac_sf(5, 3, key=BOB.secret), reject("bad_tag")),
            (mac_sf(2, 3), ok(2, 3, ts, None)),
        ],
    )
    negative(
        "server_unknown_cid",
        "key_id names a cid the client never held",
        server_frame(KIND_SERVER_MAC, "tok-unknown", fk, ctr=1, ack=1, ts=ts),
        "unknown_key",
    )
    negative(
        "server_unknown_kid",
        "an Ed25519 server frame with an unconfigured key id",
        ed_sf(1, 1, kid="srv-9", key=SEED_SERVER_OTHER),
        "unknown_key",
        client=CAROL,
    )
    negative(
        "server_bad_signature",
        "signed under kid srv-1 by another key",
        ed_sf(1, 1, key=SEED_SERVER_OTHER),
        "bad_signature",
        client=CAROL,
    )
    good_ed = ed_sf(1, 1, "x")
    sig = good_ed[-64:]
    negative(
        "server_signature_s_plus_l",
        "S replaced by S + L",
        good_ed[:-64] + sig[:32] + le32(int.from_bytes(sig[32:], "little") + L),
        "bad_signature",
        client=CAROL,
    )
    negative(
        "server_scheme_mismatch_kind5_to_mac",
        "an Ed25519 server frame (kind 5) to a mac client",
        ed_sf(1, 1),
        "scheme_mismatch",
    )
    negative(
        "server_scheme_mismatch_kind4_to_ed25519",
        "a mac server frame (kind 4) to an ed25519 client",
        mac_sf(1, 1),
        "scheme_mismatch",
        client=CAROL,
    )
    negative("server_truncated", "a server frame missing its last byte", good[:-1], "malformed")
    negative("server_trailing_byte", "a server frame followed by 00", good + b"\x00", "malformed")
    negative(
        "server_8_elements",
        "no payload element",
        seal(
            KIND_SERVER_MAC,
            array([pack(v) for v in (1, 4, ALICE.cid, NONCE, 1, 1, ts)], array_header(8)),
            fk,
            AUD,
            SERVER_LABEL,
        ),
        "malformed",
    )
    negative(
        "server_key_id_empty",
        "key_id is the empty string",
        server_frame(KIND_SERVER_MAC, "", fk, ctr=1, ack=1, ts=ts),
        "malformed",
    )
    negative(
        "server_payload_int",
        "payload is a uint",
        mac_sf(1, 1, items=lambda e: [*e[:7], pack(5)]),
        "malformed",
    )
    negative(
        "server_noncanonical_ack",
        "ack 1 as uint 8; tag valid over these bytes",
        mac_sf(1, 1, items=lambda e: [*e[:5], b"\xcc\x01", *e[6:]]),
        "malformed",
    )
    negative(
        "server_version_2",
        "a server frame of version 2",
        mac_sf(1, 1, items=lambda e: [pack(2), *e[1:]]),
        "unsupported_version",
    )
    negative(
        "server_kind_1",
        "kind 1 (a client kind) in a 9-element frame",
        mac_sf(1, 1, items=lambda e: [e[0], pack(1), *e[2:]]),
        "malformed",
    )
    negative(
        "server_order_scheme_before_nonce",
        "kind 5 to a mac client with a wrong nonce: scheme_mismatch (step 2 before 3)",
        ed_sf(1, 1, nonce=NONCE2),
        "scheme_mismatch",
    )
    negative(
        "server_order_nonce_before_replay",
        "wrong nonce and a replayed counter: nonce_mismatch (step 3 before 4)",
        mac_sf(1, 1, nonce=NONCE2),
        "nonce_mismatch",
        before=[(mac_sf(1, 1), ok(1, 1, ts, None))],
    )
    negative(
        "server_order_ack_before_key",
        "ack above sent and an unknown cid: ack_invalid (step 5 before 6)",
        server_frame(KIND_SERVER_MAC, "tok-unknown", fk, ctr=1, ack=9, ts=ts),
        "ack_invalid",
    )
    negative(
        "server_order_key_before_tag",
        "an unknown cid and a bad tag: unknown_key (step 6 before 7)",
        server_frame(KIND_SERVER_MAC, "tok-unknown", BOB.secret, ctr=1, ack=1, ts=ts),
        "unknown_key",
    )

    # ---- sessions: both sides, exact bytes ---------------------------------------------------
    def session_case(
        name: str, description: str, client: Client, with_server_key: bool, window: int = 0
    ) -> None:
        server_open = NOW - 30
        conn = replace(CONN, now=server_open, random=fixed(f"session {name} random", 15))
        nonce = conn.mint()
        hello_bytes = hello(nonce, AUD, ms(server_open), 65536, window)
        client_clock_at_hello = server_open - 2.5
        off = ms(server_open) - ms(client_clock_at_hello)
        steps: list[Json] = []
        sent = acked = server_ctr = last_seq = 0
        events: list[tuple[str, float, Payload]] = [
            ("client", NOW - 1, "hello server"),
            ("client", NOW - 0.75, b"\x00\x01"),
            ("server", NOW - 0.5, "hello client"),
            ("client", NOW - 0.25, None),
            ("server", NOW, None),
            ("server", NOW + 0.5, b"\xff"),
        ]
        for sender, server_now, payload in events:
            client_now = server_now - 2.5
            if sender == "client":
                sent += 1
                ts = ms(client_now) + off
                if payload is None:
                    seq = 0
                else:
                    last_seq += 1
                    seq = last_seq
                frame = client.frame(sent, ts, payload, seq=seq, nonce=nonce)
                steps.append(
                    {
                        "from": "client",
                        "client_now": num(client_now),
                        "server_now": num(server_now),
                        "payload": typed(payload),
                        "frame": hx(frame),
                        "expect": client.accept(sent, ts, payload, seq),
                    }
                )
                acked = sent
            else:
                server_ctr += 1
                ts = ms(server_now)
                if client.kind == KIND_MAC:
                    kind, key_id, key = KIND_SERVER_MAC, client.cid, client.secret
                else:
                    kind, key_id, key = KIND_SERVER_ED25519, KID_SERVER, SEED_SERVER
                frame = server_frame(
                    kind,
                    key_id,
                    key,
                    ctr=server_ctr,
                    ack=acked,
                    ts=ts,
                    payload=payload,
                    nonce=nonce,
                )
                steps.append(
                    {
                        "from": "server",
                        "server_now": num(server_now),
                        "client_now": num(client_now),
                        "payload": typed(payload),
                        "frame": hx(frame),
                        "expect": s_accept(server_ctr, acked, ts, payload),
                    }
                )
        case: Json = {
            "name": name,
            "description": description,
            "type": "session",
            "verifier": verifier_json(window=window),
            "server_now": server_open,
            "nonce": conn.json(),
            "server_key": {"kid": KID_SERVER, "seed": hx(SEED_SERVER)}
            if with_server_key
            else None,
            "hello": hx(hello_bytes),
            "credential": client.json(),
            "stream": hx(client.stream),
            "seq": 0,
            "audience": AUD,
            "client_now": num(client_clock_at_hello),
            "server_keys": {KID_SERVER: hx(srv_pub)} if with_server_key else {},
            "steps": steps,
        }
        cases.append(case)

    session_case(
        "session_mac",
        "a whole mac connection: hello, client frames, server frames with acks",
        ALICE,
        False,
    )
    session_case(
        "session_ed25519_certificate",
        "a whole ed25519 connection with a certificate and a server key",
        CAROL,
        True,
    )
    session_case(
        "session_ed25519_key_reference_window",
        "a whole ed25519 connection with a key reference, W = 16",
        SENSOR,
        True,
        16,
    )
    description = (
        "The client side (§5.2, §6.3, §7.2): hellos to accept or refuse, client frames a "
        "client must produce byte for byte, server frames a client must accept or refuse, "
        "and whole sessions (both sides, exact bytes)."
    )
    return document(description, cases)


# -- ed25519_rules.json: small-order points, computed -------------------------------------------

D: Final = -121665 * pow(121666, P - 2, P) % P
SQRT_M1: Final = pow(2, (P - 1) // 4, P)

Point = tuple[int, int]


def _inv(x: int) -> int:
    return pow(x, P - 2, P)


def _add(a: Point, b: Point) -> Point:
    (x1, y1), (x2, y2) = a, b
    t = D * x1 * x2 * y1 * y2 % P
    return (x1 * y2 + x2 * y1) * _inv(1 + t) % P, (y1 * y2 + x1 * x2) * _inv(1 - t) % P


def _mul(k: int, point: Point) -> Point:
    result: Point = (0, 1)
    while k:
        if k & 1:
            result = _add(result, point)
        point = _add(point, point)
        k >>= 1
    return result


def _x_of(y: int) -> int | None:
    """An x with -x^2 + y^2 = 1 + d x^2 y^2, or None if y is on no point."""
    u, v = (y * y - 1) % P, (D * y * y + 1) % P
    x2 = u * _inv(v) % P
    x = pow(x2, (P + 3) // 8, P)
    if (x * x - x2) % P:
        x = x * SQRT_M1 % P
    if (x * x - x2) % P:
        return None
    return x


def _order(point: Point) -> int:
    order, q = 1, point
    while q != (0, 1):
        q = _add(q, point)
        order += 1
        assert order <= 8  # noqa: S101
    return order


def small_order_encodings() -> list[tuple[bytes, int, bool, str]]:
    """Every 32-byte string that decodes, under a lenient decoder (y taken mod p,
    the sign bit honoured even for x = 0), to a point of order 1, 2, 4 or 8."""
    generator = None
    for y in range(2, 100):
        x = _x_of(y)
        if x is None:
            continue
        t = _mul(L, (x, y))  # clears the prime-order part: a torsion point
        if _order(t) == 8:
            generator = t
            break
    assert generator is not None  # noqa: S101
    torsion = [_mul(k, generator) for k in range(8)]
    found: list[tuple[bytes, int, bool, str]] = []
    for point in torsion:
        x, y = point
        for y_repr in (y, y + P):
            if y_repr >= 2**255:
                continue
            for sign in (0, 1):
                if x == 0 and sign == 1:
                    what = "x = 0 with the sign bit set"
                elif x != 0 and sign != x & 1:
                    continue  # that is the canonical encoding of (-x, y), also listed
                else:
                    what = "canonical" if y_repr == y else "y + p"
                canonical = y_repr == y and not (x == 0 and sign == 1)
                if y_repr != y and x == 0 and sign == 1:
                    what = "y + p and the sign bit set on x = 0"
                encoding = le32(y_repr | sign << 255)
                found.append((encoding, _order(point), canonical, what))
    found.sort(key=lambda item: (not item[2], item[1], item[0][::-1]))
    assert len(found) == 14 and sum(c for _, _, c, _ in found) == 8  # noqa: S101, PT018
    return found


def ed25519_rules_json() -> Json:
    cases = []
    for encoding, order, canonical, what in small_order_encodings():
        label = "canonical" if canonical else "noncanonical"
        cases.append(
            {
                "name": f"small_order_{order}_{label}_{encoding.hex()[:8]}_{encoding.hex()[-2:]}",
                "description": f"a point of order {order}: {what}",
                "encoding": hx(encoding),
                "order": order,
                "canonical": canonical,
            }
        )

    def constant(value: int, text: str) -> Json:
        return {"decimal": str(value), "le_hex": hx(le32(value)), "definition": text}

    return document(
        "§8.2: the 14 encodings that rule 4 refuses (points of order 1, 2, 4 or 8: 8 canonical "
        "encodings and 6 non-canonical aliases), and the constants L and p. Computed by "
        "curve arithmetic in generate.py, not copied.",
        cases,
        L=constant(L, "2^252 + 27742317777372353535851937790883648493"),
        p=constant(P, "2^255 - 19"),
    )


# -- main --------------------------------------------------------------------------------


def write(name: str, data: Json) -> None:
    text = json.dumps(data, indent=1, ensure_ascii=False) + "\n"
    (HERE / name).write_text(text, encoding="utf-8")


def main() -> None:
    write("keys.json", keys_json())
    write("credentials.json", credentials_json())
    write("nonces.json", nonces_json())
    write("frames.json", frames_json())
    write("server_frames.json", server_frames_json())
    write("ed25519_rules.json", ed25519_rules_json())


if __name__ == "__main__":
    main()
