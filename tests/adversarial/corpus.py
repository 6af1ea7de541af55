"""The named corpus of hostile inputs (issue 6): data, not test code.

Each `Case` names one hostile client frame, says how the server is configured
and what honest frames the connection carried before it (`Setup`), builds the
frame's bytes on a `Conn` (the connection as the attacker sees it: the hello's
nonce and the clock), and gives the code it must be refused with (SPEC.md §9).

The same cases run against the core (``test_corpus_core.py``) and over a real
socket (``test_corpus_socket.py``): a builder reads only what a peer can read
off the wire (the hello) plus the keys the attacker is assumed to hold (the
honest client's own credential and secret, to show that even a holder of a
valid key cannot get a bad frame through). Everything is deterministic: fixed
keys, a fixed clock (``helpers.NOW``), fixed credentials.

`NONCE_CASES` are the few checks that happen outside any connection
(`NonceKey.check`, SPEC.md §5.3): a fleet checking a nonce it did not mint on
this connection. They have no socket form.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

import msgpack
from helpers import (
    AUDIENCE,
    CLIENT_KEY,
    ED_ISSUER_KEY,
    ED_KID,
    FLEET_KEY,
    HMAC_KID,
    HMAC_SECRET,
    ISSUER,
    NODE_ID,
    NOW,
    REG_KID,
    STREAM,
    SUBJECT,
    FakeClock,
    Scheme,
    certificate,
    client_frame,
    encode_parts,
    flip_byte,
    key_reference,
    make_keyring,
    raw_certificate,
    seeded_random,
    token,
)

from signedws.credential import (
    Ed25519Credential,
    Issuer,
    MACCredential,
    TokenKeys,
    encode_key_reference,
)
from signedws.ed25519 import BackendName
from signedws.envelope import CLIENT_LABEL, SERVER_LABEL
from signedws.errors import Code
from signedws.keyring import Keyring
from signedws.keys import Ed25519PrivateKey, HMACKey
from signedws.nonce import NonceKey
from signedws.revocation import RevocationSet
from signedws.verifier import Verifier

__all__ = [
    "CASES",
    "CATEGORIES",
    "NONCE_CASES",
    "Case",
    "Conn",
    "NonceCase",
    "Setup",
    "make_verifier",
]

# -- the world the corpus lives in -------------------------------------------------------

PARTNER: Final = "https://partner.example.test"
PARTNER_KID: Final = "partner-1"
PARTNER_SECRET: Final = HMACKey(bytes(range(64, 96)))
OLD_KID: Final = "hmac-old"
OLD_SECRET: Final = HMACKey(bytes(range(96, 128)))
OTHER_AUDIENCE: Final = "wss://other.example.test/ws"
L: Final = 2**252 + 27742317777372353535851937790883648493

#: What the server revokes in every case (SPEC.md §4.6): one credential id and
#: every credential of "mallory" issued before NOW + 1.
REVOCATIONS: Final = RevocationSet([(ISSUER, "tok-revoked")], {(ISSUER, "mallory"): int(NOW) + 1})


def corpus_keyring() -> Keyring:
    """The helpers' keyring (HMAC and Ed25519 keys of ISSUER, one registry
    entry), plus a second issuer and a retired key."""
    keyring = make_keyring()
    keyring.add_hmac_key(PARTNER, PARTNER_KID, PARTNER_SECRET)
    keyring.add_hmac_key(ISSUER, OLD_KID, OLD_SECRET, not_after=int(NOW) - 10)
    return keyring


@dataclass(frozen=True, slots=True)
class Setup:
    """The server's configuration and the connection's honest history.

    Attributes:
        scheme: the honest client's credential (``mac``, ``certificate`` or
            ``keyref``); it signs the prelude, and builders start from it.
        window: the replay window.
        prelude: honest frames accepted before the hostile one, by counter
            (None: the next counter).
        advance: seconds the clock moves after the prelude.
    """

    scheme: Scheme = "mac"
    window: int = 0
    prelude: tuple[int | None, ...] = ()
    advance: float = 0.0


def make_verifier(setup: Setup, backend: BackendName = "libsodium") -> Verifier:
    """The server's verifier for ``setup`` (limits at their defaults)."""
    return Verifier(
        corpus_keyring(),
        audience=AUDIENCE,
        fleet_key=FLEET_KEY,
        node_id=NODE_ID,
        revocations=REVOCATIONS,
        backend=backend,
        window=setup.window,
    )


@dataclass(frozen=True, slots=True)
class RawMAC:
    """Token bytes and a frame key, for tokens `MACCredential` would refuse."""

    token: bytes
    frame_key: HMACKey


@dataclass(frozen=True, slots=True)
class RawEd:
    """Credential bytes and a private key, for credentials
    `Ed25519Credential` would refuse."""

    credential: bytes
    private_key: Ed25519PrivateKey


Credential = MACCredential | Ed25519Credential | RawMAC | RawEd
Secret = HMACKey | Ed25519PrivateKey

HONEST: Final[dict[Scheme, Credential]] = {
    "mac": token(),
    "certificate": certificate(),
    "keyref": key_reference(),
}


def _is_mac(credential: Credential) -> bool:
    return isinstance(credential, MACCredential | RawMAC)


def _cred_bytes(credential: Credential) -> bytes:
    if isinstance(credential, MACCredential | RawMAC):
        return credential.token
    return credential.credential


def _secret(credential: Credential) -> Secret:
    if isinstance(credential, MACCredential | RawMAC):
        return credential.frame_key
    return credential.private_key


class Conn:
    """One connection as a client sees it: the nonce from the hello, the clock,
    and the honest credential of the case's scheme. Builds frames on it."""

    def __init__(self, nonce: bytes, clock: FakeClock, scheme: Scheme) -> None:
        self.nonce = nonce
        self.clock = clock
        self.credential = HONEST[scheme]
        self.counter = 0
        self.seq = 0
        #: The frames `frame` built so far (the prelude's among them).
        self.sent: list[bytes] = []

    def fields(
        self,
        payload: object = "x",
        *,
        credential: Credential | None = None,
        version: object = 1,
        kind: object = None,
        cred: object = None,
        nonce: object = None,
        ctr: object = None,
        ts: object = None,
        stream: object = STREAM,
        seq: object = None,
    ) -> list[object]:
        """Elements 0-8 of a frame: honest unless overridden. An unset counter
        is the next one; an unset ``seq`` the stream's next (0 for nil)."""
        credential = credential or self.credential
        if ctr is None:
            ctr = self.counter + 1
        if type(ctr) is int and ctr > self.counter:
            self.counter = ctr
        if seq is None:
            seq = 0 if payload is None else self.seq + 1
        if type(seq) is int and seq > self.seq:
            self.seq = seq
        return [
            version,
            (1 if _is_mac(credential) else 2) if kind is None else kind,
            _cred_bytes(credential) if cred is None else cred,
            self.nonce if nonce is None else nonce,
            ctr,
            self.clock.ms if ts is None else ts,
            stream,
            seq,
            payload,
        ]

    def frame(
        self,
        payload: object = "x",
        *,
        credential: Credential | None = None,
        secret: Secret | None = None,
        audience: str = AUDIENCE,
        label: bytes = CLIENT_LABEL,
        **overrides: object,
    ) -> bytes:
        """A frame tagged by ``secret`` (default: the credential's own)."""
        credential = credential or self.credential
        fields = self.fields(payload, credential=credential, **overrides)
        data = client_frame(fields, secret or _secret(credential), audience=audience, label=label)
        self.sent.append(data)
        return data

    def spliced(
        self,
        replace: dict[int, bytes],
        *,
        payload: object = "x",
        extra: tuple[bytes, ...] = (),
        drop: int | None = None,
    ) -> bytes:
        """An honest frame whose elements ``replace`` are given as raw
        (possibly non-canonical) encodings, with ``extra`` elements appended or
        element ``drop`` left out; correctly tagged over the resulting bytes,
        so only the check under test can refuse it."""
        parts = encode_parts(*self.fields(payload))
        for index, raw in replace.items():
            parts[index] = raw
        parts += extra
        if drop is not None:
            del parts[drop]
        return client_frame([], _secret(self.credential), parts=parts)

    def tagged(self, tag: object, payload: object = "x", **overrides: object) -> bytes:
        """A frame with ``tag`` as its last element, whatever its type or size."""
        fields = self.fields(payload, **overrides)  # type: ignore[arg-type]
        return bytes(msgpack.packb([*fields, tag], use_bin_type=True))

    def retagged(self, edit: Callable[[bytes], bytes], payload: object = "x") -> bytes:
        """An honest frame with ``edit`` applied to its tag or signature bytes."""
        data = self.frame(payload)
        size = 32 if _is_mac(self.credential) else 64
        return data[:-size] + edit(data[-size:])


# -- credentials an attacker may present ---------------------------------------------------


def _issuer(name: str, kid: str, key: HMACKey | Ed25519PrivateKey) -> Issuer:
    return Issuer(name, kid, key)


def _token_from(issuer: Issuer, **kwargs: object) -> MACCredential:
    args: dict[str, object] = {
        "subject": SUBJECT,
        "now": NOW,
        "lifetime": 3600,
        "audiences": (AUDIENCE,),
        "credential_id": "tok-x",
    }
    args.update(kwargs)
    return issuer.issue_token(**args)  # type: ignore[arg-type]


def raw_token(
    parts: list[bytes], *, secret: HMACKey = HMAC_SECRET, header: bytes | None = None
) -> RawMAC:
    """A token spliced from raw element encodings, tagged by ``secret`` over
    whatever bytes result (SPEC.md §4.2), with the frame key a server holding
    ``secret`` would derive. The last part is the tag and is replaced."""
    keys = TokenKeys(secret)
    head = header if header is not None else bytes([0x90 | len(parts)])
    body = head + b"".join(parts[:-1])
    tag_part = parts[-1]
    honest_tag = tag_part[:2] == b"\xc4\x20"
    data = body + (b"\xc4\x20" + keys.token_tag(body) if honest_tag else tag_part)
    return RawMAC(data, keys.frame_key(data))


def token_parts(**overrides: object) -> list[bytes]:
    """The canonical encodings of an honest token's 11 elements, with some
    replaced (by name) by Python values, for `raw_token`."""
    values: dict[str, object] = {
        "version": 1,
        "type": 1,
        "iss": ISSUER,
        "kid": HMAC_KID,
        "cid": "tok-raw",
        "sub": SUBJECT,
        "scopes": ["chat:read"],
        "aud": [AUDIENCE],
        "iat": int(NOW),
        "exp": int(NOW) + 3600,
        "tag": bytes(32),
    }
    values.update(overrides)
    return encode_parts(*values.values())


def _with_raw(parts: list[bytes], index: int, raw: bytes) -> list[bytes]:
    parts = list(parts)
    parts[index] = raw
    return parts


# Untrusted or mis-keyed issuers.
UNTRUSTED_TOKEN: Final = _token_from(
    _issuer("https://evil.example.test", HMAC_KID, HMACKey(b"\x66" * 32))
)
UNKNOWN_KID_TOKEN: Final = _token_from(_issuer(ISSUER, "hmac-9", HMACKey(b"\x77" * 32)))
#: Claims ISSUER but names the partner's kid, MACed with the partner's secret:
#: a keyring that looked keys up by kid alone would accept it (SPEC.md §11.9).
FOREIGN_KID_TOKEN: Final = _token_from(_issuer(ISSUER, PARTNER_KID, PARTNER_SECRET))
ED_KID_TOKEN: Final = _token_from(_issuer(ISSUER, ED_KID, HMACKey(b"\x55" * 32)))
RETIRED_KEY_TOKEN: Final = _token_from(_issuer(ISSUER, OLD_KID, OLD_SECRET))
HMAC_KID_CERT: Final = Ed25519Credential(
    _issuer(ISSUER, HMAC_KID, ED_ISSUER_KEY).issue_certificate(
        CLIENT_KEY.public_key(), subject=SUBJECT, now=NOW, audiences=(AUDIENCE,)
    ),
    CLIENT_KEY,
)
PARTNER_ALICE: Final = _token_from(_issuer(PARTNER, PARTNER_KID, PARTNER_SECRET))

# Valid signatures, wrong claims.
EXPIRED_TOKEN: Final = token(now=NOW - 7200, cid="tok-expired")
EXP_IS_NOW_TOKEN: Final = token(now=NOW - 3600, cid="tok-exp-now")
FUTURE_TOKEN: Final = token(now=NOW + 3600, cid="tok-future")
JUST_FUTURE_TOKEN: Final = token(now=NOW + 31, cid="tok-31s-ahead")
REVOKED_TOKEN: Final = token(cid="tok-revoked")
REVOKED_SUBJECT_TOKEN: Final = token(subject="mallory", cid="tok-mallory")
OTHER_AUD_TOKEN: Final = token(audiences=(OTHER_AUDIENCE,), cid="tok-other-aud")
BOB_TOKEN: Final = token(subject="bob", cid="tok-bob")
EXPIRED_CERT: Final = certificate(now=NOW - 7200, cid="cert-expired")
OTHER_AUD_CERT: Final = certificate(audiences=(OTHER_AUDIENCE,), cid="cert-other-aud")
ATTACKER_KEY: Final = Ed25519PrivateKey(b"\x09" * 32)


def _cert_with_key(key: bytes) -> RawEd:
    """A properly signed certificate for arbitrary key bytes, used with the
    honest client's private key (the server must refuse it before that matters)."""
    return RawEd(raw_certificate(key), CLIENT_KEY)


def _s_plus_l(signature: bytes) -> bytes:
    s = int.from_bytes(signature[32:], "little") + L
    return signature[:32] + s.to_bytes(32, "little")


SMALL_ORDER: Final = {
    "order_1": bytes.fromhex("01" + "00" * 31),
    "order_8": bytes.fromhex("c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a"),
    "order_4_noncanonical": bytes.fromhex("ed" + "ff" * 30 + "7f"),
}
#: y = p + 2: not a small-order point, but a non-canonical encoding (rule 3).
NONCANONICAL_KEY: Final = bytes.fromhex("ef" + "ff" * 30 + "7f")


def _cert_sig_edit(edit: Callable[[bytes], bytes]) -> RawEd:
    cert = certificate().credential
    return RawEd(cert[:-64] + edit(cert[-64:]), CLIENT_KEY)


def _self_signed_cert() -> Ed25519Credential:
    """A certificate naming the real issuer, signed by the client's own key."""
    forged = Issuer(ISSUER, ED_KID, CLIENT_KEY).issue_certificate(
        CLIENT_KEY.public_key(), subject="root", now=NOW, audiences=(AUDIENCE,)
    )
    return Ed25519Credential(forged, CLIENT_KEY)


def _token_sub_edited() -> RawMAC:
    """The honest token with its subject changed after issue (tag kept)."""
    honest = token()
    return RawMAC(honest.token.replace(b"alice", b"admin", 1), honest.frame_key)


# -- cases -------------------------------------------------------------------------------


Build = Callable[[Conn], bytes]


@dataclass(frozen=True, slots=True)
class Case:
    """One named hostile input and the code it must draw."""

    name: str
    category: str
    expected: Code
    build: Build
    setup: Setup = field(default_factory=Setup)


CATEGORIES: Final = {
    "size": "oversize frames (checked before decoding)",
    "msgpack": "undecodable, deep, huge or trailing MessagePack",
    "canonical": "non-minimal MessagePack encodings",
    "types": "a wrong type in every field",
    "shape": "extra or missing fields, wrong sizes, truncated tags",
    "credential-format": "malformed credentials: trailing bytes, bad UTF-8, huge subjects",
    "nonce": "nonces of the wrong length, another connection or fleet, expired",
    "counter": "replays, reorders outside the window, gaps, wrapped counters",
    "scheme": "scheme and credential type mismatches",
    "trust": "unknown issuers and keys, kid confusion, forged credentials",
    "weak-key": "small-order and non-canonical keys",
    "validity": "expired, not yet valid, revoked, other audience",
    "binding": "another principal on a bound connection",
    "timestamp": "frame times beyond max_skew",
    "tag": "bad MACs and signatures, S >= L, small-order R, reflection",
}

_cases: list[Case] = []


def case(name: str, category: str, expected: Code, build: Build, **setup: object) -> None:
    """Add a case to the corpus."""
    assert category in CATEGORIES, category
    _cases.append(Case(name, category, expected, build, Setup(**setup)))  # type: ignore[arg-type]


M, E = Code.MALFORMED, Code.CREDENTIAL_MALFORMED
CERT, KEYREF = "certificate", "keyref"


def _valid_frame_of_size(c: Conn, size: int) -> bytes:
    """An honest, correctly tagged frame of exactly ``size`` bytes."""
    probe = len(Conn(c.nonce, c.clock, "mac").frame(b""))
    payload = bytes(size - probe - 1)  # a bin 16 header is one byte longer than bin 8
    data = c.frame(payload)
    assert len(data) == size, (len(data), size)
    return data


# size (SPEC.md §6.4 step 1, §10)
case("oversize_zeros", "size", Code.FRAME_TOO_LARGE, lambda c: bytes(65537))
case(
    "oversize_valid_frame", "size", Code.FRAME_TOO_LARGE, lambda c: _valid_frame_of_size(c, 65537)
)
case("oversize_1mib_reserved_bytes", "size", Code.FRAME_TOO_LARGE, lambda c: b"\xc1" * (1 << 20))

# msgpack (step 2)
case("empty_message", "msgpack", M, lambda c: b"")
case("reserved_byte_c1", "msgpack", M, lambda c: b"\xc1")
case("deep_nesting_60000", "msgpack", M, lambda c: b"\x91" * 60000 + b"\xc0")
# SPEC 1.0 §2: an array nested in an envelope fails decoding (was unsupported_version).
case("deep_nesting_1000", "msgpack", M, lambda c: b"\x91" * 1000 + b"\xc0")
case("array32_claims_4g_items", "msgpack", M, lambda c: b"\xdd\xff\xff\xff\xff" + b"\xc0" * 16)
case("map32_claims_4g_pairs", "msgpack", M, lambda c: b"\xdf\xff\xff\xff\xff" + b"\xc0" * 16)
case("bin32_claims_4gib", "msgpack", M, lambda c: b"\x9a\x01\x01\xc6\xff\xff\xff\xff" + bytes(64))
case("str32_claims_4gib", "msgpack", M, lambda c: c.spliced({8: b"\xdb\xff\xff\xff\xffx"}))
case("top_level_map", "msgpack", M, lambda c: b"\x81\x01\x02")
case("top_level_nil", "msgpack", M, lambda c: b"\xc0")
case("top_level_ext", "msgpack", M, lambda c: b"\xd4\x01\x00")
case("top_level_float", "msgpack", M, lambda c: b"\xcb" + bytes(8))
case("trailing_zero_byte", "msgpack", M, lambda c: c.frame() + b"\x00")
case("two_frames_concatenated", "msgpack", M, lambda c: c.frame("a") + c.frame("b"))
case("truncated_mid_credential", "msgpack", M, lambda c: c.frame()[:60])
case("truncated_by_one_byte", "msgpack", M, lambda c: c.frame()[:-1])
case("ctr_as_ext_bigint", "msgpack", M, lambda c: c.spliced({4: b"\xc7\x09\x01" + b"\xff" * 9}))

# canonical (step 2: re-encoding must give the same bytes)
case("ctr_uint8_for_fixint", "canonical", M, lambda c: c.spliced({4: b"\xcc\x01"}))
case(
    "ctr_uint64_for_fixint",
    "canonical",
    M,
    lambda c: c.spliced({4: b"\xcf" + (1).to_bytes(8, "big")}),
)
case("ctr_int8_signed_form", "canonical", M, lambda c: c.spliced({4: b"\xd0\x01"}))
case("version_uint16", "canonical", M, lambda c: c.spliced({0: b"\xcd\x00\x01"}))
case("array16_header_for_10", "canonical", M, lambda c: b"\xdc\x00\x0a" + c.frame()[1:])
case(
    "cred_bin16_for_short",
    "canonical",
    M,
    lambda c: c.spliced({2: b"\xc5\x00" + bytes([len(token().token)]) + token().token}),
)
case("payload_str8_for_fixstr", "canonical", M, lambda c: c.spliced({8: b"\xd9\x01x"}))
case("nonce_bin16", "canonical", M, lambda c: c.spliced({3: b"\xc5\x00\x40" + c.nonce}))
case(
    "ts_uint64_for_uint32",
    "canonical",
    M,
    lambda c: c.spliced({5: b"\xcf" + (1000).to_bytes(8, "big")}),
)

# types (steps 3-4): a wrong type in every field
case("version_str", "types", Code.UNSUPPORTED_VERSION, lambda c: c.frame(version="1"))
case("version_2", "types", Code.UNSUPPORTED_VERSION, lambda c: c.frame(version=2))
# SPEC 1.0 §2: negative integers and booleans fail decoding, before the version.
case("version_negative", "types", M, lambda c: c.frame(version=-1))
case("version_bool", "types", M, lambda c: c.frame(version=True))
case("kind_str", "types", M, lambda c: c.frame(kind="mac"))
case("kind_hello", "types", M, lambda c: c.frame(kind=3))
case("kind_server_mac", "types", M, lambda c: c.frame(kind=4))
case("cred_str", "types", M, lambda c: c.frame(cred="token"))
case("cred_array", "types", M, lambda c: c.frame(cred=[1, 1]))
case("nonce_str", "types", M, lambda c: c.frame(nonce="n" * 64))
case("ctr_str", "types", M, lambda c: c.frame(ctr="1"))
case("ctr_negative", "types", M, lambda c: c.frame(ctr=-1))
case("ctr_int64_min", "types", M, lambda c: c.frame(ctr=-(2**63)))
case("ctr_zero", "types", M, lambda c: c.frame(ctr=0))
case("ctr_float_2_70", "types", M, lambda c: c.frame(ctr=float(2**70)))
case("ctr_bool", "types", M, lambda c: c.frame(ctr=True))
case("ts_str", "types", M, lambda c: c.frame(ts="now"))
case("ts_negative", "types", M, lambda c: c.frame(ts=-1))
case("stream_str", "types", M, lambda c: c.frame(stream="s" * 16))
case("stream_nil", "types", M, lambda c: c.frame(stream=None))
case("seq_negative", "types", M, lambda c: c.frame(seq=-5))
case("seq_zero_with_payload", "types", M, lambda c: c.frame("x", seq=0))
case("seq_nonzero_with_nil", "types", M, lambda c: c.frame(None, seq=3))
case("payload_int", "types", M, lambda c: c.frame(7))
case("payload_map", "types", M, lambda c: c.spliced({8: b"\x81\xa1k\xa1v"}))
case("payload_array", "types", M, lambda c: c.frame(["x"]))
case("payload_bool", "types", M, lambda c: c.frame(False))
case("payload_invalid_utf8", "types", M, lambda c: c.spliced({8: b"\xa2\xff\xfe"}))
case("payload_surrogate_utf8", "types", M, lambda c: c.spliced({8: b"\xa3\xed\xa0\x80"}))
case("tag_str", "types", M, lambda c: c.tagged("t" * 32))
case("tag_nil", "types", M, lambda c: c.tagged(None))

# shape (step 4)
case("extra_element", "shape", M, lambda c: c.spliced({}, extra=(b"\xc0",)))
case("missing_element", "shape", M, lambda c: c.spliced({}, drop=6))
case("empty_array", "shape", M, lambda c: b"\x90")
case("nonce_63_bytes", "shape", M, lambda c: c.frame(nonce=c.nonce[:63]))
case("nonce_65_bytes", "shape", M, lambda c: c.frame(nonce=c.nonce + b"\x00"))
case("nonce_empty", "shape", M, lambda c: c.frame(nonce=b""))
case("stream_15_bytes", "shape", M, lambda c: c.frame(stream=STREAM[:15]))
case("mac_tag_truncated_31", "shape", M, lambda c: c.tagged(bytes(31)))
case("mac_tag_empty", "shape", M, lambda c: c.tagged(b""))
case("ed25519_signature_truncated_63", "shape", M, lambda c: c.tagged(bytes(63)), scheme=CERT)
case("mac_frame_with_64_byte_tag", "shape", M, lambda c: c.tagged(bytes(64)))
case("cred_4097_bytes", "shape", M, lambda c: c.frame(cred=bytes(4097)))

# credential-format (step 7.1)
case("cred_garbage", "credential-format", E, lambda c: c.frame(cred=b"\xc1\xc1"))
case("cred_empty", "credential-format", E, lambda c: c.frame(cred=b""))
case("cred_4096_zero_bytes", "credential-format", E, lambda c: c.frame(cred=bytes(4096)))
case("cred_trailing_byte", "credential-format", E, lambda c: c.frame(cred=token().token + b"\x00"))
case(
    "cred_iat_noncanonical",
    "credential-format",
    E,
    lambda c: c.frame(
        credential=raw_token(_with_raw(token_parts(), 8, b"\xcf" + int(NOW).to_bytes(8, "big")))
    ),
)
case(
    "cred_extra_element",
    "credential-format",
    E,
    lambda c: c.frame(
        credential=raw_token([*token_parts()[:-1], b"\xc0", b"\xc4\x20" + bytes(32)])
    ),
)
case(
    "cred_missing_element",
    "credential-format",
    E,
    lambda c: c.frame(credential=raw_token(token_parts()[:7] + token_parts()[8:])),
)
case(
    "cred_sub_invalid_utf8",
    "credential-format",
    E,
    lambda c: c.frame(credential=raw_token(_with_raw(token_parts(), 5, b"\xa3a\xff\xfe"))),
)
case(
    "cred_sub_256_bytes",
    "credential-format",
    E,
    lambda c: c.frame(credential=raw_token(token_parts(sub="s" * 256))),
)
case(
    "cred_sub_3000_bytes",
    "credential-format",
    E,
    lambda c: c.frame(credential=raw_token(token_parts(sub="\u00e9" * 1500))),
)
case(
    "cred_sub_empty",
    "credential-format",
    E,
    lambda c: c.frame(credential=raw_token(token_parts(sub=""))),
)
case(
    "cred_token_tag_truncated_31",
    "credential-format",
    E,
    lambda c: c.frame(credential=raw_token(token_parts(tag=bytes(31)))),
)
case(
    "cred_65_scopes",
    "credential-format",
    E,
    lambda c: c.frame(credential=raw_token(token_parts(scopes=[f"s{i}" for i in range(65)]))),
)
case(
    "cred_duplicate_scopes",
    "credential-format",
    E,
    lambda c: c.frame(credential=raw_token(token_parts(scopes=["a", "a"]))),
)
case(
    "cred_exp_before_iat",
    "credential-format",
    E,
    lambda c: c.frame(credential=raw_token(token_parts(exp=int(NOW) - 1))),
)
case(
    "cred_exp_negative",
    "credential-format",
    E,
    lambda c: c.frame(credential=raw_token(token_parts(exp=-1))),
)
case(
    "cred_unknown_type",
    "credential-format",
    E,
    lambda c: c.frame(credential=raw_token(token_parts(type=9))),
)
case(
    "cred_version_2",
    "credential-format",
    E,
    lambda c: c.frame(credential=raw_token(token_parts(version=2))),
)
case(
    "cred_map",
    "credential-format",
    E,
    lambda c: c.frame(cred=bytes(msgpack.packb({"iss": ISSUER, "sub": SUBJECT}))),
)
case(
    "certificate_key_31_bytes",
    "credential-format",
    E,
    lambda c: c.frame(cred=raw_certificate(CLIENT_KEY.public_key().to_bytes()[:31])),
    scheme=CERT,
)
case(
    "keyref_extra_element",
    "credential-format",
    E,
    lambda c: c.frame(cred=bytes(msgpack.packb([1, 3, ISSUER, REG_KID, "x"]))),
    scheme=KEYREF,
)


# nonce (step 5)
def _other_nonce(fleet: HMACKey = FLEET_KEY, audience: str = AUDIENCE) -> bytes:
    return NonceKey(fleet, audience).mint(
        node_id=NODE_ID, now=NOW, ttl=86400, random=seeded_random(b"another connection")
    )


case(
    "nonce_of_another_connection",
    "nonce",
    Code.NONCE_MISMATCH,
    lambda c: c.frame(nonce=_other_nonce()),
)
case(
    "nonce_of_another_fleet",
    "nonce",
    Code.NONCE_MISMATCH,
    lambda c: c.frame(nonce=_other_nonce(HMACKey(b"\x42" * 32))),
)
case(
    "nonce_for_another_audience",
    "nonce",
    Code.NONCE_MISMATCH,
    lambda c: c.frame(nonce=_other_nonce(audience=OTHER_AUDIENCE)),
)
case("nonce_all_zero", "nonce", Code.NONCE_MISMATCH, lambda c: c.frame(nonce=bytes(64)))
case(
    "nonce_one_bit_off",
    "nonce",
    Code.NONCE_MISMATCH,
    lambda c: c.frame(nonce=flip_byte(c.nonce, 40)),
)
case("nonce_expired", "nonce", Code.NONCE_EXPIRED, lambda c: c.frame(), advance=86400.0)
case(
    "nonce_expired_after_use",
    "nonce",
    Code.NONCE_EXPIRED,
    lambda c: c.frame(),
    prelude=(None,),
    advance=86401.0,
)

# counter (step 6)
case("replay_of_accepted_frame", "counter", Code.REPLAY, lambda c: c.sent[0], prelude=(None,))
case("replay_lower_counter", "counter", Code.REPLAY, lambda c: c.frame(ctr=3), prelude=(5,))
case(
    "replay_equal_counter_new_payload",
    "counter",
    Code.REPLAY,
    lambda c: c.frame("y", ctr=5),
    prelude=(5,),
)
case(
    "reorder_outside_window",
    "counter",
    Code.REPLAY,
    lambda c: c.frame(ctr=12),
    window=8,
    prelude=(1, 20),
)
case(
    "reorder_inside_window_twice",
    "counter",
    Code.REPLAY,
    lambda c: c.frame(ctr=15),
    window=8,
    prelude=(20, 15),
)
case(
    "gap_then_below_the_gap",
    "counter",
    Code.REPLAY,
    lambda c: c.frame(ctr=999),
    prelude=(1, 1000),
)
case(
    "wrapped_counter_after_max",
    "counter",
    Code.REPLAY,
    lambda c: c.frame(ctr=1),
    prelude=(2**64 - 1,),
)
case(
    "max_counter_again",
    "counter",
    Code.REPLAY,
    lambda c: c.frame("again", ctr=2**64 - 1),
    prelude=(2**64 - 1,),
    window=1024,
)

# scheme (step 7.2)
case(
    "mac_kind_with_certificate",
    "scheme",
    Code.SCHEME_MISMATCH,
    lambda c: c.frame(credential=certificate(), kind=1, secret=HMACKey(bytes(32))),
)
case(
    "ed25519_kind_with_token",
    "scheme",
    Code.SCHEME_MISMATCH,
    lambda c: c.frame(credential=token(), kind=2, secret=CLIENT_KEY),
)
case(
    "mac_kind_with_key_reference",
    "scheme",
    Code.SCHEME_MISMATCH,
    lambda c: c.frame(credential=key_reference(), kind=1, secret=HMACKey(bytes(32))),
)
case(
    "cached_token_under_ed25519_kind",
    "scheme",
    Code.SCHEME_MISMATCH,
    lambda c: c.frame(kind=2, secret=CLIENT_KEY),
    prelude=(None,),
)

# trust (step 7.3)
case("unknown_issuer", "trust", Code.UNKNOWN_ISSUER, lambda c: c.frame(credential=UNTRUSTED_TOKEN))
case("unknown_kid", "trust", Code.UNKNOWN_KEY, lambda c: c.frame(credential=UNKNOWN_KID_TOKEN))
case(
    "kid_of_another_issuer",
    "trust",
    Code.UNKNOWN_KEY,
    lambda c: c.frame(credential=FOREIGN_KID_TOKEN),
)
case(
    "token_naming_an_ed25519_key",
    "trust",
    Code.UNKNOWN_KEY,
    lambda c: c.frame(credential=ED_KID_TOKEN),
)
case(
    "certificate_naming_an_hmac_key",
    "trust",
    Code.UNKNOWN_KEY,
    lambda c: c.frame(credential=HMAC_KID_CERT),
    scheme=CERT,
)
case(
    "retired_issuer_key",
    "trust",
    Code.UNKNOWN_KEY,
    lambda c: c.frame(credential=RETIRED_KEY_TOKEN),
)
case(
    "key_reference_unregistered",
    "trust",
    Code.UNKNOWN_KEY,
    lambda c: c.frame(cred=encode_key_reference(ISSUER, "device-9")),
    scheme=KEYREF,
)
case(
    "key_reference_of_another_issuer",
    "trust",
    Code.UNKNOWN_KEY,
    lambda c: c.frame(cred=encode_key_reference(PARTNER, REG_KID)),
    scheme=KEYREF,
)
case(
    "token_tag_flipped",
    "trust",
    Code.CREDENTIAL_INVALID,
    lambda c: c.frame(cred=flip_byte(token().token, len(token().token) - 1)),
)
case(
    "token_subject_edited",
    "trust",
    Code.CREDENTIAL_INVALID,
    lambda c: c.frame(credential=_token_sub_edited()),
)
case(
    "token_tagged_by_another_secret",
    "trust",
    Code.CREDENTIAL_INVALID,
    lambda c: c.frame(credential=_token_from(_issuer(ISSUER, HMAC_KID, HMACKey(b"\x01" * 32)))),
)
case(
    "certificate_signature_flipped",
    "trust",
    Code.CREDENTIAL_INVALID,
    lambda c: c.frame(credential=_cert_sig_edit(lambda s: flip_byte(s, 5))),
    scheme=CERT,
)
case(
    "certificate_signature_s_plus_l",
    "trust",
    Code.CREDENTIAL_INVALID,
    lambda c: c.frame(credential=_cert_sig_edit(_s_plus_l)),
    scheme=CERT,
)
case(
    "certificate_self_signed",
    "trust",
    Code.CREDENTIAL_INVALID,
    lambda c: c.frame(credential=_self_signed_cert()),
    scheme=CERT,
)

# weak-key (step 7.3, SPEC.md §8.2)
for _name, _key in SMALL_ORDER.items():
    case(
        f"certificate_for_small_order_key_{_name}",
        "weak-key",
        Code.WEAK_KEY,
        lambda c, k=_key: c.frame(credential=_cert_with_key(k)),  # type: ignore[misc]
        scheme=CERT,
    )
case(
    "certificate_for_noncanonical_key",
    "weak-key",
    Code.WEAK_KEY,
    lambda c: c.frame(credential=_cert_with_key(NONCANONICAL_KEY)),
    scheme=CERT,
)

# validity (step 7.4, 9)
case(
    "credential_expired",
    "validity",
    Code.CREDENTIAL_EXPIRED,
    lambda c: c.frame(credential=EXPIRED_TOKEN),
)
case(
    "credential_exp_equals_now",
    "validity",
    Code.CREDENTIAL_EXPIRED,
    lambda c: c.frame(credential=EXP_IS_NOW_TOKEN),
)
case(
    "certificate_expired",
    "validity",
    Code.CREDENTIAL_EXPIRED,
    lambda c: c.frame(credential=EXPIRED_CERT),
    scheme=CERT,
)
case(
    "credential_not_yet_valid",
    "validity",
    Code.CREDENTIAL_NOT_YET_VALID,
    lambda c: c.frame(credential=FUTURE_TOKEN),
)
case(
    "credential_31s_ahead_beyond_leeway",
    "validity",
    Code.CREDENTIAL_NOT_YET_VALID,
    lambda c: c.frame(credential=JUST_FUTURE_TOKEN),
)
case(
    "expires_mid_connection",
    "validity",
    Code.CREDENTIAL_EXPIRED,
    lambda c: c.frame(),
    prelude=(None,),
    advance=3600.0,
)
case(
    "revoked_credential_id",
    "validity",
    Code.CREDENTIAL_REVOKED,
    lambda c: c.frame(credential=REVOKED_TOKEN),
)
case(
    "revoked_subject",
    "validity",
    Code.CREDENTIAL_REVOKED,
    lambda c: c.frame(credential=REVOKED_SUBJECT_TOKEN),
)
case(
    "token_for_another_audience",
    "validity",
    Code.AUDIENCE_MISMATCH,
    lambda c: c.frame(credential=OTHER_AUD_TOKEN),
)
case(
    "certificate_for_another_audience",
    "validity",
    Code.AUDIENCE_MISMATCH,
    lambda c: c.frame(credential=OTHER_AUD_CERT),
    scheme=CERT,
)

# binding (step 8)
case(
    "other_subject_on_bound_connection",
    "binding",
    Code.CREDENTIAL_MISMATCH,
    lambda c: c.frame(credential=BOB_TOKEN),
    prelude=(None,),
)
case(
    "same_subject_other_issuer",
    "binding",
    Code.CREDENTIAL_MISMATCH,
    lambda c: c.frame(credential=PARTNER_ALICE),
    prelude=(None,),
)

# timestamp (step 10)
case("ts_zero", "timestamp", Code.TIMESTAMP_SKEW, lambda c: c.frame(ts=0))
case("ts_301s_ahead", "timestamp", Code.TIMESTAMP_SKEW, lambda c: c.frame(ts=c.clock.ms + 300_001))
case(
    "ts_301s_behind", "timestamp", Code.TIMESTAMP_SKEW, lambda c: c.frame(ts=c.clock.ms - 300_001)
)
case("ts_max_uint64", "timestamp", Code.TIMESTAMP_SKEW, lambda c: c.frame(ts=2**64 - 1))
case("ts_skewed_ed25519", "timestamp", Code.TIMESTAMP_SKEW, lambda c: c.frame(ts=1), scheme=CERT)

# tag (step 11)
case("mac_tag_flipped", "tag", Code.BAD_TAG, lambda c: c.retagged(lambda t: flip_byte(t, 0)))
case("mac_tag_zero", "tag", Code.BAD_TAG, lambda c: c.retagged(lambda t: bytes(32)))
case(
    "mac_tag_for_another_audience", "tag", Code.BAD_TAG, lambda c: c.frame(audience=OTHER_AUDIENCE)
)
case("mac_server_label_reflected", "tag", Code.BAD_TAG, lambda c: c.frame(label=SERVER_LABEL))
case(
    "mac_token_without_its_frame_key",
    "tag",
    Code.BAD_TAG,
    lambda c: c.frame(secret=HMACKey(b"\x13" * 32)),
)
case("mac_tagged_with_issuer_secret", "tag", Code.BAD_TAG, lambda c: c.frame(secret=HMAC_SECRET))
case(
    "mac_payload_swapped_after_tagging",
    "tag",
    Code.BAD_TAG,
    lambda c: c.frame("pay 10").replace(b"pay 10", b"pay 99"),
)
case(
    "ed25519_signature_flipped",
    "tag",
    Code.BAD_SIGNATURE,
    lambda c: c.retagged(lambda s: flip_byte(s, 63)),
    scheme=CERT,
)
case(
    "ed25519_signature_s_plus_l",
    "tag",
    Code.BAD_SIGNATURE,
    lambda c: c.retagged(_s_plus_l),
    scheme=CERT,
)
case(
    "ed25519_signature_small_order_r",
    "tag",
    Code.BAD_SIGNATURE,
    lambda c: c.retagged(lambda s: SMALL_ORDER["order_1"] + bytes(32)),
    scheme=CERT,
)
case(
    "ed25519_signature_all_zero",
    "tag",
    Code.BAD_SIGNATURE,
    lambda c: c.retagged(lambda s: bytes(64)),
    scheme=CERT,
)
case(
    "ed25519_signed_by_another_key",
    "tag",
    Code.BAD_SIGNATURE,
    lambda c: c.frame(secret=ATTACKER_KEY),
    scheme=CERT,
)
case(
    "ed25519_signature_for_another_audience",
    "tag",
    Code.BAD_SIGNATURE,
    lambda c: c.frame(audience=OTHER_AUDIENCE),
    scheme=CERT,
)
case(
    "key_reference_signed_by_another_key",
    "tag",
    Code.BAD_SIGNATURE,
    lambda c: c.frame(secret=ATTACKER_KEY),
    scheme=KEYREF,
)
case(
    "certificate_for_off_curve_key",
    "tag",
    Code.BAD_SIGNATURE,
    lambda c: c.frame(credential=_cert_with_key((2).to_bytes(32, "little"))),
    scheme=CERT,
)

CASES: Final[tuple[Case, ...]] = tuple(_cases)
assert len({c.name for c in CASES}) == len(CASES), "case names must be unique"


# -- checks outside a connection (SPEC.md §5.3) ---------------------------------------------


@dataclass(frozen=True, slots=True)
class NonceCase:
    """A nonce a fleet server checks with `NonceKey.check`, and the code."""

    name: str
    expected: Code
    nonce: Callable[[], bytes]
    now: float = NOW


def _edited_nonce(edit: Callable[[bytes], bytes]) -> Callable[[], bytes]:
    return lambda: edit(_other_nonce())


NONCE_CASES: Final = (
    NonceCase("check_nonce_63_bytes", Code.MALFORMED, _edited_nonce(lambda n: n[:63])),
    NonceCase("check_nonce_empty", Code.MALFORMED, lambda: b""),
    NonceCase(
        "check_nonce_other_fleet", Code.NONCE_INVALID, lambda: _other_nonce(HMACKey(b"\x42" * 32))
    ),
    NonceCase(
        "check_nonce_other_audience",
        Code.NONCE_INVALID,
        lambda: _other_nonce(audience=OTHER_AUDIENCE),
    ),
    NonceCase(
        "check_nonce_version_2", Code.NONCE_INVALID, _edited_nonce(lambda n: b"\x02" + n[1:])
    ),
    NonceCase(
        "check_nonce_expiry_extended",
        Code.NONCE_INVALID,
        _edited_nonce(lambda n: n[:9] + (2**63).to_bytes(8, "big") + n[17:]),
    ),
    NonceCase(
        "check_nonce_tag_zero", Code.NONCE_INVALID, _edited_nonce(lambda n: n[:32] + bytes(32))
    ),
    NonceCase("check_nonce_expired", Code.NONCE_EXPIRED, _other_nonce, now=NOW + 86400),
)
