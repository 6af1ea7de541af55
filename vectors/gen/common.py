"""What every vector file shares: SPEC.md constants, primitives, fixed inputs, the
credential, nonce and frame builders and the verifier configuration (SPEC.md §2-§6)."""

from __future__ import annotations

import hashlib
import hmac
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Final

import msgpack
import nacl.signing
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

HERE: Final = Path(__file__).resolve().parent.parent  # vectors/, where the JSON files go
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
    """A time in seconds for JSON: an integer when whole; else a multiple of 1/1024
    (exact in binary floating point, and so is ``value * 1000``)."""
    if value == int(value):
        return int(value)
    assert value * 1024 == int(value * 1024), value  # noqa: S101 - keeps now*1000 exact
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
    now: float  # seconds; a multiple of 1/1024 (see `num`)
    ttl: int
    random: bytes

    @property
    def expires(self) -> int:
        """The clock in whole seconds, rounded down, plus the lifetime (SPEC.md §5.3)."""
        return math.floor(self.now) + self.ttl

    def mint(self) -> bytes:
        return mint_nonce(self.fleet, self.audience, self.node_id, self.expires, self.random)

    def json(self) -> Json:
        return {
            "fleet_key": hx(self.fleet),
            "audience": self.audience,
            "node_id": hx(self.node_id),
            "now": num(self.now),
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
