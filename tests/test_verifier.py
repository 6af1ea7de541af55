"""Tests for signedws.verifier: SPEC.md §6.4 step by step, for every credential kind.

Every rejection goes through `Pair.assert_rejected`, which checks the code, that
the connection state (highest, bitmap, binding, current credential) did not move,
and that the connection then goes on: a held-back frame inside the replay window
and a fresh frame are both accepted. The ``pair`` fixture runs each test for a
token (`mac`), a certificate and a key reference, the last two under both
Ed25519 backends.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable

import msgpack
import pytest
from helpers import (
    AUDIENCE,
    CLIENT_KEY,
    ED_ISSUER_KEY,
    ED_KID,
    FAST_PATH_OUTCOMES,
    FLEET_KEY,
    HMAC_KID,
    ISSUER,
    NODE_ID,
    NOW,
    NOW_MS,
    REG_KID,
    REVOKED_CID,
    SCHEMES,
    SCOPES,
    STREAM,
    SUBJECT,
    TAMPER_CODES,
    CountingBackend,
    FakeClock,
    Pair,
    Scheme,
    certificate,
    client_frame,
    encode_parts,
    encodings,
    field_variants,
    flip_bit,
    flip_byte,
    key_reference,
    make_keyring,
    raw_certificate,
    seeded_random,
    token,
    verify_both_paths,
)

from signedws import ed25519
from signedws.credential import Ed25519Credential, Issuer, MACCredential, encode_key_reference
from signedws.ed25519 import SMALL_ORDER_ENCODINGS, BackendName
from signedws.envelope import SERVER_LABEL, ClientFields
from signedws.errors import Code, Rejected, UsageError
from signedws.keyring import Keyring
from signedws.keys import Ed25519PrivateKey, HMACKey
from signedws.revocation import EMPTY, RevocationSet
from signedws.verifier import (
    MAX_FAILURE_CACHE_SIZE,
    ConnectionState,
    Message,
    VerifiedCredential,
    Verifier,
)

ED_SCHEMES = [(s, b) for s, b in SCHEMES if s != "mac"]
P = 2**255 - 19
L = 2**252 + 27742317777372353535851937790883648493
OTHER_ISSUER = "https://evil.example.test"


def _ids(param: tuple[str, str]) -> str:
    return "-".join(param)


@pytest.fixture(params=SCHEMES, ids=_ids)
def pair(request: pytest.FixtureRequest) -> Pair:
    """A warmed-up pair (counters 1 and 3 accepted, 2 held back) with W=8."""
    scheme, backend = request.param
    p = Pair(scheme, backend, window=8)
    p.warm_up()
    return p


@pytest.fixture(params=ED_SCHEMES, ids=_ids)
def ed_pair(request: pytest.FixtureRequest) -> Pair:
    """A warmed-up `ed25519` pair (certificate or key reference), W=8."""
    scheme, backend = request.param
    p = Pair(scheme, backend, window=8)
    p.warm_up()
    return p


@pytest.fixture
def mac_pair() -> Pair:
    """A warmed-up `mac` pair, W=8."""
    p = Pair("mac", window=8)
    p.warm_up()
    return p


@pytest.fixture
def cert_pair() -> Pair:
    """A warmed-up certificate pair, W=8."""
    p = Pair("certificate", window=8)
    p.warm_up()
    return p


class CountingCalls:
    """Wraps a callable and counts the calls (a real wrapper, not a mock)."""

    def __init__(self, inner: Callable[[bytes, int], VerifiedCredential]) -> None:
        self.inner = inner
        self.calls = 0

    def __call__(self, cred: bytes, kind: int) -> VerifiedCredential:
        self.calls += 1
        return self.inner(cred, kind)


def count_authentications(pair: Pair, monkeypatch: pytest.MonkeyPatch) -> CountingCalls:
    """Count the verifier's credential authentications (cache misses)."""
    counter = CountingCalls(pair.verifier._authenticate)
    monkeypatch.setattr(pair.verifier, "_authenticate", counter)
    return counter


class CountingHMAC(hmac.HMAC):
    """Stands in for a cached credential's HMAC state and counts frame MACs."""

    def __init__(self, inner: hmac.HMAC) -> None:
        self.inner = inner
        self.copies = 0

    def copy(self) -> hmac.HMAC:
        """Count one frame MAC and hand out the real state."""
        self.copies += 1
        return self.inner.copy()


# -- step 1: size ---------------------------------------------------------------


def test_oversized_garbage_is_frame_too_large_before_decoding(pair: Pair) -> None:
    """A frame over max_frame is refused on its size alone, before it is decoded."""
    pair.assert_rejected(b"\xc1" * (pair.verifier.max_frame_size + 1), Code.FRAME_TOO_LARGE)


def test_frame_of_exactly_max_frame_bytes_is_accepted(pair: Pair) -> None:
    """len(E) <= max_frame passes: one byte more is frame_too_large."""
    limit = pair.verifier.max_frame_size
    ctr = pair.next_counter()
    base = len(pair.forge(ctr=ctr, payload=bytes(1000))) - 1000
    pair.assert_rejected(
        pair.forge(ctr=ctr, payload=bytes(limit - base + 1)), Code.FRAME_TOO_LARGE, recover=False
    )
    frame = pair.forge(ctr=ctr, payload=bytes(limit - base))
    assert len(frame) == limit
    message = pair.deliver(frame)
    assert isinstance(message, Message)
    assert message.counter == ctr


# -- step 2: decode ---------------------------------------------------------------


def _not_canonical_ctr(pair: Pair) -> bytes:
    """ctr 4 encoded as uint16 (cd 00 04) instead of a positive fixint."""
    f = pair.forge(payload="x")
    fields = msgpack.unpackb(f)
    parts = encode_parts(*fields[:-1])
    parts[4] = b"\xcd" + fields[4].to_bytes(2, "big")
    return client_frame([], pair.secret, parts=parts)


def _not_canonical_str(pair: Pair) -> bytes:
    """A 1-byte payload str encoded as str8 instead of fixstr."""
    fields = msgpack.unpackb(pair.forge(payload="x"))
    parts = encode_parts(*fields[:-1])
    parts[8] = b"\xd9\x01x"
    return client_frame([], pair.secret, parts=parts)


def _not_canonical_array(pair: Pair) -> bytes:
    """The frame's array header as array16 instead of fixarray."""
    frame = pair.forge()
    return b"\xdc\x00\x0a" + frame[1:]


DECODE_CASES: dict[str, Callable[[Pair], bytes]] = {
    "empty": lambda p: b"",
    "never-used byte": lambda p: b"\xc1",
    "truncated": lambda p: p.forge()[:-1],
    "trailing byte": lambda p: p.forge() + b"\x00",
    "two values": lambda p: p.forge() + p.forge(),
    "not an array": lambda p: msgpack.packb(1),
    "a map": lambda p: msgpack.packb({}),
    "invalid utf-8": lambda p: msgpack.packb([1]).replace(b"\x91\x01", b"\x91\xa1\xff"),
    "non-canonical int": _not_canonical_ctr,
    "non-canonical str": _not_canonical_str,
    "non-canonical array": _not_canonical_array,
}


@pytest.mark.parametrize("case", sorted(DECODE_CASES))
def test_undecodable_or_non_canonical_frame_is_malformed(pair: Pair, case: str) -> None:
    """Step 2: E must be one canonical MessagePack array with nothing after it."""
    pair.assert_rejected(DECODE_CASES[case](pair), Code.MALFORMED)


# -- step 3: version ----------------------------------------------------------------


@pytest.mark.parametrize("version", [0, 2, 255, "1", None, b"\x01"])
def test_other_version_is_unsupported(pair: Pair, version: object) -> None:
    """Step 3: element 0 must be the uint 1."""
    pair.assert_rejected(pair.forge(version=version), Code.UNSUPPORTED_VERSION)


def test_empty_array_is_malformed(pair: Pair) -> None:
    """An empty array has no version at all: malformed."""
    pair.assert_rejected(b"\x90", Code.MALFORMED)


# -- step 4: structure ----------------------------------------------------------------


def _elements(count: int) -> Callable[[Pair], bytes]:
    def build(pair: Pair) -> bytes:
        fields = msgpack.unpackb(pair.forge())[:-1]
        fields = [*fields, None, None][: count - 1]
        return client_frame(fields, pair.secret)

    return build


STRUCTURE_CASES: dict[str, Callable[[Pair], bytes]] = {
    "9 elements": _elements(9),
    "11 elements": _elements(11),
    "kind 0": lambda p: p.forge(kind=0),
    "kind 3 (hello)": lambda p: p.forge(kind=3),
    "kind 4 (server)": lambda p: p.forge(kind=4),
    "kind as str": lambda p: p.forge(kind="1"),
    "tag of the other kind's size": lambda p: p.forge(tag=bytes(96 - 32 * p.kind)),
    "tag as str": lambda p: p.forge(tag="x" * 32),  # type: ignore[arg-type]
    "cred as str": lambda p: p.forge(cred="credential"),
    "cred over 4096 bytes": lambda p: p.forge(cred=bytes(4097)),
    "nonce of 63 bytes": lambda p: p.forge(nonce=p.server.nonce[:63]),
    "nonce of 65 bytes": lambda p: p.forge(nonce=p.server.nonce + b"\x00"),
    "nonce as str": lambda p: p.forge(nonce="n" * 64),
    "ctr 0": lambda p: p.forge(ctr=0),
    "ctr -1": lambda p: p.forge(ctr=-1),
    "ctr as str": lambda p: p.forge(ctr="4"),
    "ts -1": lambda p: p.forge(ts=-1),
    "ts as float": lambda p: p.forge(ts=float(NOW_MS)),
    "stream of 15 bytes": lambda p: p.forge(stream=STREAM[:15]),
    "stream of 17 bytes": lambda p: p.forge(stream=STREAM + b"\x00"),
    "stream as str": lambda p: p.forge(stream="s" * 16),
    "seq -1": lambda p: p.forge(seq=-1),
    "seq as str": lambda p: p.forge(seq="1"),
    "seq 0 with a payload": lambda p: p.forge(seq=0, payload="x"),
    "seq 1 with nil payload": lambda p: p.forge(seq=1, payload=None),
    "payload int": lambda p: p.forge(payload=5),
    "payload array": lambda p: p.forge(payload=["x"]),
    "payload bool": lambda p: p.forge(payload=True),
}


@pytest.mark.parametrize("case", sorted(STRUCTURE_CASES))
def test_wrong_shape_is_malformed(pair: Pair, case: str) -> None:
    """Step 4: 10 elements of §6.1's types; kind 1 or 2; tag size of the kind; ctr >= 1."""
    pair.assert_rejected(STRUCTURE_CASES[case](pair), Code.MALFORMED)


# -- step 5: nonce ------------------------------------------------------------------


def test_nonce_of_another_connection_is_nonce_mismatch(pair: Pair) -> None:
    """Step 5: a frame bound to another connection's nonce of the same server is refused."""
    other = pair.open(b"another connection")
    assert other.nonce != pair.server.nonce
    pair.assert_rejected(pair.forge(nonce=other.nonce), Code.NONCE_MISMATCH)


def test_unrelated_nonce_is_nonce_mismatch(pair: Pair) -> None:
    """Step 5: 64 arbitrary bytes are not the connection's nonce."""
    pair.assert_rejected(pair.forge(nonce=bytes(64)), Code.NONCE_MISMATCH)


@pytest.mark.parametrize(("scheme", "backend"), SCHEMES, ids=[_ids(s) for s in SCHEMES])
def test_expired_connection_nonce_is_nonce_expired(scheme: Scheme, backend: BackendName) -> None:
    """Step 5: frames are accepted while now < nonce expiry, then nonce_expired."""
    p = Pair(scheme, backend, window=8, nonce_ttl=600)
    p.warm_up()
    p.clock.now = NOW + 599.999
    p.accept("last moment")
    p.clock.now = NOW + 600
    p.assert_rejected(p.sign("too late"), Code.NONCE_EXPIRED, recover=False)
    p.clock.now = NOW + 10**6
    p.assert_rejected(p.sign("much too late"), Code.NONCE_EXPIRED, recover=False)


# -- step 6: counter ------------------------------------------------------------------


def test_replayed_frame_is_replay(pair: Pair) -> None:
    """Step 6: delivering an accepted frame again is a replay."""
    frame = pair.sign("once")
    assert isinstance(pair.deliver(frame), Message)
    pair.assert_rejected(frame, Code.REPLAY)


def test_counter_outside_the_window_is_replay(pair: Pair) -> None:
    """Step 6: a fresh counter W or more below the highest is a replay."""
    pair.client._counter = 20
    pair.accept("jump")  # highest 21
    pair.held = None  # counter 2 is now outside the window
    pair.assert_rejected(pair.forge(ctr=13), Code.REPLAY, recover=False)
    assert isinstance(pair.deliver(pair.forge(ctr=14)), Message)
    pair.assert_recovers()


# -- step 7: credential -------------------------------------------------------------


CREDENTIAL_MALFORMED_CASES: dict[str, bytes] = {
    "garbage": b"\xc1\xc1",
    "not an array": msgpack.packb("token"),
    "one element": msgpack.packb([1]),
    "version 2": msgpack.packb([2, 1, ISSUER, HMAC_KID]),
    "type as str": msgpack.packb([1, "1", ISSUER, HMAC_KID]),
    "unknown type 4": msgpack.packb([1, 4, ISSUER, HMAC_KID]),
    "key reference of 5 elements": msgpack.packb([1, 3, ISSUER, REG_KID, 0]),
    "token of 10 elements": msgpack.packb(
        [1, 1, ISSUER, HMAC_KID, "c", SUBJECT, [], [], 1, 2], use_bin_type=True
    ),
    "token with exp == iat": msgpack.packb(
        [1, 1, ISSUER, HMAC_KID, "c", SUBJECT, [], [], 5, 5, bytes(32)], use_bin_type=True
    ),
    "certificate key of 31 bytes": msgpack.packb(
        [1, 2, ISSUER, ED_KID, "c", SUBJECT, [], [], 1, 2, bytes(31), bytes(64)],
        use_bin_type=True,
    ),
    "token tag of 31 bytes": msgpack.packb(
        [1, 1, ISSUER, HMAC_KID, "c", SUBJECT, [], [], 1, 2, bytes(31)], use_bin_type=True
    ),
    "empty issuer": msgpack.packb([1, 3, "", REG_KID]),
    "duplicate scopes": msgpack.packb(
        [1, 1, ISSUER, HMAC_KID, "c", SUBJECT, ["a", "a"], [], 1, 2, bytes(32)],
        use_bin_type=True,
    ),
}


@pytest.mark.parametrize("case", sorted(CREDENTIAL_MALFORMED_CASES))
def test_undecodable_credential_is_credential_malformed(pair: Pair, case: str) -> None:
    """Step 7.1: on a cache miss the credential must decode per §4."""
    pair.assert_rejected(
        pair.forge(cred=CREDENTIAL_MALFORMED_CASES[case]), Code.CREDENTIAL_MALFORMED
    )


@pytest.mark.parametrize(
    ("credential", "kind"),
    [
        pytest.param(token(), 2, id="token in an ed25519 frame"),
        pytest.param(certificate(), 1, id="certificate in a mac frame"),
        pytest.param(key_reference(), 1, id="key reference in a mac frame"),
    ],
)
def test_credential_of_the_other_scheme_is_scheme_mismatch(
    pair: Pair, credential: MACCredential | Ed25519Credential, kind: int
) -> None:
    """Step 7.2: a credential's type must go with the frame kind (cache miss)."""
    pair.verifier.clear_cache()
    frame = pair.forge(credential=credential, kind=kind, tag=bytes(32 * kind))
    pair.assert_rejected(frame, Code.SCHEME_MISMATCH)


def test_cached_credential_in_the_other_kind_is_scheme_mismatch(pair: Pair) -> None:
    """Step 7.2 on a cache hit: the connection's own cached credential in the other kind."""
    other_kind = 3 - pair.kind
    frame = pair.forge(kind=other_kind, tag=bytes(32 * other_kind))
    pair.assert_rejected(frame, Code.SCHEME_MISMATCH)


def _unknown_issuer(scheme: str) -> MACCredential | Ed25519Credential:
    if scheme == "mac":
        return token(issuer=Issuer(OTHER_ISSUER, HMAC_KID, HMACKey(b"\x0e" * 32)))
    return certificate(issuer=Issuer(OTHER_ISSUER, ED_KID, Ed25519PrivateKey(b"\x0e" * 32)))


@pytest.mark.parametrize("scheme", ["mac", "certificate"])
def test_credential_of_an_untrusted_issuer_is_unknown_issuer(scheme: Scheme) -> None:
    """Step 7.3: the issuer must be in the keyring."""
    p = Pair(scheme, window=8)
    p.warm_up()
    p.assert_rejected(p.forge(credential=_unknown_issuer(scheme)), Code.UNKNOWN_ISSUER)


def test_key_reference_to_another_issuer_is_unknown_key(ed_pair: Pair) -> None:
    """§4.4: a key reference is looked up by (iss, kid) in the registry only."""
    ref = Ed25519Credential(encode_key_reference(OTHER_ISSUER, REG_KID), CLIENT_KEY)
    ed_pair.assert_rejected(ed_pair.forge(credential=ref), Code.UNKNOWN_KEY)


UNKNOWN_KEY_CREDENTIALS: dict[str, Callable[[], MACCredential | Ed25519Credential]] = {
    "token under an unknown kid": lambda: token(
        issuer=Issuer(ISSUER, "hmac-9", HMACKey(b"\x0e" * 32))
    ),
    "token naming the issuer's Ed25519 key": lambda: token(
        issuer=Issuer(ISSUER, ED_KID, HMACKey(b"\x0e" * 32))
    ),
    "certificate under an unknown kid": lambda: certificate(
        issuer=Issuer(ISSUER, "ed-9", Ed25519PrivateKey(b"\x0e" * 32))
    ),
    "certificate naming the issuer's HMAC key": lambda: certificate(
        issuer=Issuer(ISSUER, HMAC_KID, Ed25519PrivateKey(b"\x0e" * 32))
    ),
    "key reference not in the registry": lambda: key_reference(kid="device-9"),
    "key reference naming an issuer key": lambda: key_reference(kid=ED_KID),
}


@pytest.mark.parametrize("case", sorted(UNKNOWN_KEY_CREDENTIALS))
def test_credential_naming_no_usable_key_is_unknown_key(case: str) -> None:
    """Step 7.3: (iss, kid) must name a key of the credential's type (§3.3, §11.9)."""
    credential = UNKNOWN_KEY_CREDENTIALS[case]()
    scheme: Scheme = "mac" if isinstance(credential, MACCredential) else "certificate"
    p = Pair(scheme, window=8)
    p.warm_up()
    p.assert_rejected(p.forge(credential=credential), Code.UNKNOWN_KEY)


@pytest.mark.parametrize(("scheme", "backend"), SCHEMES[:3], ids=[_ids(s) for s in SCHEMES[:3]])
def test_issuer_key_outside_its_window_is_unknown_key(
    scheme: Scheme, backend: BackendName
) -> None:
    """Step 7.4: the issuer key must be within [not_before, not_after) at now."""
    p = Pair(scheme, backend, window=8)
    p.warm_up()
    early = HMACKey(b"\x0a" * 32) if scheme == "mac" else Ed25519PrivateKey(b"\x0a" * 32)
    late = HMACKey(b"\x0b" * 32) if scheme == "mac" else Ed25519PrivateKey(b"\x0b" * 32)
    for kid, key, window in (
        ("future", early, {"not_before": int(NOW) + 1}),
        ("retired", late, {"not_before": int(NOW) - 100, "not_after": int(NOW)}),
    ):
        if isinstance(key, HMACKey):
            p.keyring.add_hmac_key(ISSUER, kid, key, **window)
            credential: MACCredential | Ed25519Credential = token(issuer=Issuer(ISSUER, kid, key))
        else:
            p.keyring.add_ed25519_key(ISSUER, kid, key.public_key(), **window)
            credential = certificate(issuer=Issuer(ISSUER, kid, key))
        p.assert_rejected(p.forge(credential=credential), Code.UNKNOWN_KEY)


def test_issuer_key_window_start_is_inclusive() -> None:
    """A key whose not_before is now is usable (the window is [not_before, not_after))."""
    p = Pair("mac")
    key = HMACKey(b"\x0a" * 32)
    p.keyring.add_hmac_key(ISSUER, "fresh", key, not_before=int(NOW), not_after=int(NOW) + 1)
    p.accept()
    assert isinstance(
        p.deliver(p.forge(credential=token(issuer=Issuer(ISSUER, "fresh", key)))), Message
    )


@pytest.mark.parametrize(
    "key",
    [
        pytest.param(encoding, id=f"small-order-{encoding[:4].hex()}-{encoding[-1]:02x}")
        for encoding in sorted(SMALL_ORDER_ENCODINGS)
    ]
    + [
        pytest.param((P + 2).to_bytes(32, "little"), id="y=p+2"),
        pytest.param((2**255 - 1).to_bytes(32, "little"), id="y=2^255-1"),
    ],
)
def test_certificate_for_a_weak_key_is_weak_key(cert_pair: Pair, key: bytes) -> None:
    """Step 7.3 / §4.3: the certified key must pass §8.2's key checks."""
    cred = raw_certificate(key)
    cert_pair.assert_rejected(cert_pair.forge(cred=cred, kind=2), Code.WEAK_KEY)


def test_weak_key_certificate_passes_every_check_but_the_key(cert_pair: Pair) -> None:
    """The same raw certificate over a good key is accepted: the key alone made it weak."""
    cred = raw_certificate(CLIENT_KEY.public_key().to_bytes(), cid="raw-good")
    assert isinstance(cert_pair.deliver(cert_pair.forge(cred=cred)), Message)


def _forged_token() -> bytes:
    t = token().token
    return t[:-1] + bytes([t[-1] ^ 1])


def _forged_certificate(signer: Ed25519PrivateKey) -> bytes:
    return raw_certificate(CLIENT_KEY.public_key().to_bytes(), signer=signer, cid="forged")


def _bad_s_certificate() -> bytes:
    good = raw_certificate(CLIENT_KEY.public_key().to_bytes(), cid="bad-s")
    return good[:-32] + L.to_bytes(32, "little")


@pytest.mark.parametrize("backend", ["libsodium", "openssl"])
@pytest.mark.parametrize(
    ("cred", "kind"),
    [
        pytest.param(_forged_token(), 1, id="token tag flipped"),
        pytest.param(
            token(issuer=Issuer(ISSUER, HMAC_KID, HMACKey(b"\x0e" * 32))).token,
            1,
            id="token under another secret",
        ),
        pytest.param(
            _forged_certificate(Ed25519PrivateKey(b"\x0e" * 32)),
            2,
            id="certificate by another key",
        ),
        pytest.param(_bad_s_certificate(), 2, id="certificate signature S = L"),
    ],
)
def test_credential_that_does_not_authenticate_is_credential_invalid(
    cred: bytes, kind: int, backend: BackendName
) -> None:
    """Step 7.3: the token tag or the certificate signature must verify."""
    p = Pair("mac" if kind == 1 else "certificate", backend, window=8)
    p.warm_up()
    # A forged token's frame key is unknowable; any key will do, the tag is never reached.
    secret = HMACKey(b"\x0f" * 32) if kind == 1 else CLIENT_KEY
    p.assert_rejected(p.forge(cred=cred, kind=kind, secret=secret), Code.CREDENTIAL_INVALID)


def test_issuer_key_the_backend_cannot_load_makes_certificates_invalid() -> None:
    """§8.2 via verify_strict: a backend refusing the issuer key is a failed verification."""

    class RefusingBackend(CountingBackend):
        def prepare(self, public_key: bytes) -> object:
            if public_key == ED_ISSUER_KEY.public_key().to_bytes():
                raise ValueError("cannot decode")
            return super().prepare(public_key)

    p = Pair("certificate")
    p.verifier.backend = RefusingBackend(ed25519.get_backend("openssl"))
    p.assert_rejected(p.sign(), Code.CREDENTIAL_INVALID, recover=False)


def _registry_variant(pair: Pair, **changes: object) -> None:
    fields: dict[str, object] = {
        "subject": SUBJECT,
        "not_before": int(NOW) - 60,
        "expires": int(NOW) + 3600,
        "scopes": SCOPES,
        "audiences": (AUDIENCE,),
    }
    fields.update(changes)
    pair.keyring.register(ISSUER, "device-2", CLIENT_KEY.public_key(), **fields)  # type: ignore[arg-type]


def _claims_credential(
    pair: Pair,
    *,
    now: float = NOW,
    lifetime: int = 3600,
    audiences: tuple[str, ...] = (AUDIENCE,),
    subject: str = SUBJECT,
) -> MACCredential | Ed25519Credential:
    """A credential with the given claims, of the pair's own kind."""
    claims = {"now": now, "lifetime": lifetime, "audiences": audiences, "subject": subject}
    if pair.scheme == "mac":
        return token(cid="claims", **claims)  # type: ignore[arg-type]
    if pair.scheme == "certificate":
        return certificate(cid="claims", **claims)  # type: ignore[arg-type]
    _registry_variant(
        pair,
        not_before=int(now),
        expires=int(now) + lifetime,
        audiences=audiences,
        subject=subject,
    )
    return key_reference(kid="device-2")


def test_credential_issued_in_the_future_is_not_yet_valid(pair: Pair) -> None:
    """Step 7.4: now >= iat - leeway; 31 s ahead with a 30 s leeway is too early."""
    early = _claims_credential(pair, now=NOW + 31)
    pair.assert_rejected(pair.forge(credential=early), Code.CREDENTIAL_NOT_YET_VALID)


def test_credential_issued_within_the_leeway_is_accepted(pair: Pair) -> None:
    """Step 7.4: iat exactly now + leeway is accepted."""
    credential = _claims_credential(pair, now=NOW + 30)
    assert isinstance(pair.deliver(pair.forge(credential=credential)), Message)


def test_credential_at_its_expiry_is_expired(pair: Pair) -> None:
    """Step 7.4: valid while now < exp; at exp it is credential_expired (no leeway)."""
    expired = _claims_credential(pair, now=NOW - 3600, lifetime=3600)
    pair.assert_rejected(pair.forge(credential=expired), Code.CREDENTIAL_EXPIRED)


def test_credential_one_second_before_expiry_is_accepted(pair: Pair) -> None:
    """Step 7.4: exp = now + 1 is still valid."""
    credential = _claims_credential(pair, now=NOW - 3599, lifetime=3600)
    assert isinstance(pair.deliver(pair.forge(credential=credential)), Message)


def test_credential_for_another_audience_is_audience_mismatch(pair: Pair) -> None:
    """Step 7.4: a non-empty aud must contain the server's audience."""
    other = _claims_credential(pair, audiences=("wss://other.example.test/ws",))
    pair.assert_rejected(pair.forge(credential=other), Code.AUDIENCE_MISMATCH)


@pytest.mark.parametrize(
    "audiences", [(), ("wss://other.example.test/ws", AUDIENCE)], ids=["empty", "two"]
)
def test_credential_with_empty_or_matching_aud_is_accepted(
    pair: Pair, audiences: tuple[str, ...]
) -> None:
    """Step 7.4: an empty aud means any audience; a list containing ours is fine."""
    credential = _claims_credential(pair, audiences=audiences)
    assert isinstance(pair.deliver(pair.forge(credential=credential)), Message)


# -- step 8: binding ------------------------------------------------------------------


def _other_principal(pair: Pair, subject: str) -> MACCredential | Ed25519Credential:
    if pair.scheme == "mac":
        return token(subject=subject, cid="other-sub")
    if pair.scheme == "certificate":
        return certificate(subject=subject, cid="other-sub")
    _registry_variant(pair, subject=subject)
    return key_reference(kid="device-2")


def test_credential_of_another_subject_is_credential_mismatch(pair: Pair) -> None:
    """Step 8: a bound connection refuses a credential of another (iss, sub)."""
    mallory = _other_principal(pair, "mallory")
    pair.assert_rejected(pair.forge(credential=mallory), Code.CREDENTIAL_MISMATCH)


def test_credential_of_another_issuer_same_subject_is_credential_mismatch() -> None:
    """Step 8: the binding is (iss, sub): the same sub from another issuer is refused."""
    p = Pair("mac", window=8)
    p.warm_up()
    other_secret = HMACKey(b"\x0c" * 32)
    p.keyring.add_hmac_key("https://login2.example.test", HMAC_KID, other_secret)
    other = token(issuer=Issuer("https://login2.example.test", HMAC_KID, other_secret))
    p.assert_rejected(p.forge(credential=other), Code.CREDENTIAL_MISMATCH)


def test_first_accepted_frame_binds_the_connection(pair: Pair) -> None:
    """Step 12: an unbound connection binds to whatever (iss, sub) comes first."""
    fresh = Pair(pair.scheme, pair.verifier.backend.name, window=8)
    mallory = _other_principal(fresh, "mallory")
    message = fresh.deliver(fresh.forge(credential=mallory))
    assert isinstance(message, Message)
    assert message.subject == "mallory"
    assert fresh.server.verifier_state.principal == (ISSUER, "mallory")
    fresh.assert_rejected(fresh.sign(), Code.CREDENTIAL_MISMATCH, recover=False)


# -- step 9: revocation -----------------------------------------------------------------


def test_revoked_credential_id_is_credential_revoked(pair: Pair) -> None:
    """Step 9: a revocation by (iss, cid) takes effect at the credential's next frame."""
    cid = pair.client.credential.cid
    pair.verifier.revocations = EMPTY.revoke_credential(ISSUER, cid)
    pair.assert_rejected(pair.sign(), Code.CREDENTIAL_REVOKED, recover=False)
    pair.verifier.revocations = EMPTY.revoke_credential(ISSUER, "someone-else")
    pair.assert_recovers()


def test_subject_revoked_after_issue_is_credential_revoked(pair: Pair) -> None:
    """Step 9: revoking (iss, sub) before t refuses credentials with iat < t."""
    iat = int(NOW) if pair.scheme != "keyref" else int(NOW) - 60
    pair.verifier.revocations = EMPTY.revoke_subject(ISSUER, SUBJECT, before=iat + 1)
    pair.assert_rejected(pair.sign(), Code.CREDENTIAL_REVOKED, recover=False)
    pair.verifier.revocations = EMPTY.revoke_subject(ISSUER, SUBJECT, before=iat)
    pair.assert_recovers()


# -- step 10: timestamp ------------------------------------------------------------------


@pytest.mark.parametrize("skew", [300_001, -300_001, 10**12, -NOW_MS])
def test_timestamp_beyond_max_skew_is_timestamp_skew(pair: Pair, skew: int) -> None:
    """Step 10: |ts - now| must be at most max_skew (300 s by default)."""
    pair.assert_rejected(pair.forge(ts=NOW_MS + skew), Code.TIMESTAMP_SKEW)


@pytest.mark.parametrize("skew", [300_000, -300_000, 0])
def test_timestamp_at_max_skew_is_accepted(pair: Pair, skew: int) -> None:
    """Step 10: the bound is inclusive."""
    assert isinstance(pair.deliver(pair.forge(ts=NOW_MS + skew)), Message)


# -- step 11: tag --------------------------------------------------------------------


def test_flipped_mac_tag_is_bad_tag(mac_pair: Pair) -> None:
    """Step 11: each byte of the frame tag matters."""
    frame = mac_pair.sign()
    for index in range(len(frame) - 32, len(frame)):
        mac_pair.assert_rejected(flip_byte(frame, index), Code.BAD_TAG, recover=False)
    assert isinstance(mac_pair.deliver(frame), Message)


def test_mac_tag_under_another_frame_key_is_bad_tag(mac_pair: Pair) -> None:
    """Step 11: the tag must be made with the frame key of the token the frame carries."""
    other_key = token(cid="other").frame_key
    mac_pair.assert_rejected(mac_pair.forge(secret=other_key), Code.BAD_TAG)


def test_mac_tag_for_another_audience_is_bad_tag(mac_pair: Pair) -> None:
    """Step 11 / §6.2: the signed input includes the audience."""
    fields = msgpack.unpackb(mac_pair.forge())[:-1]
    frame = client_frame(fields, mac_pair.secret, audience="wss://other.example.test/ws")
    mac_pair.assert_rejected(frame, Code.BAD_TAG)


def test_server_label_tag_is_bad_tag(mac_pair: Pair) -> None:
    """Step 11 / §7.1: a tag over the server label is not a client tag (no reflection)."""
    fields = msgpack.unpackb(mac_pair.forge())[:-1]
    frame = client_frame(fields, mac_pair.secret, label=SERVER_LABEL)
    mac_pair.assert_rejected(frame, Code.BAD_TAG)


def _with_signature(frame: bytes, signature: bytes) -> bytes:
    return frame[:-64] + signature


@pytest.mark.parametrize(
    "mutate",
    [
        pytest.param(lambda s: s[:32] + L.to_bytes(32, "little"), id="S = L"),
        pytest.param(lambda s: s[:32] + b"\xff" * 32, id="S all ones"),
        pytest.param(lambda s: bytes(32) + s[32:], id="R small order"),
        pytest.param(lambda s: (P + 3).to_bytes(32, "little") + s[32:], id="R non-canonical"),
        pytest.param(lambda s: s[:-1] + bytes([s[-1] ^ 0x01]), id="S last byte flipped"),
        pytest.param(lambda s: bytes([s[0] ^ 0x01]) + s[1:], id="R first bit flipped"),
        pytest.param(lambda s: bytes(64), id="all zero"),
    ],
)
def test_bad_ed25519_signature_is_bad_signature(
    ed_pair: Pair, mutate: Callable[[bytes], bytes]
) -> None:
    """Step 11: the signature must pass §8.2 rules 1-5 under the credential's key."""
    frame = ed_pair.sign()
    ed_pair.assert_rejected(_with_signature(frame, mutate(frame[-64:])), Code.BAD_SIGNATURE)


def test_signature_by_another_key_is_bad_signature(ed_pair: Pair) -> None:
    """Step 11: a well-formed signature by a key other than the certified one fails."""
    ed_pair.assert_rejected(
        ed_pair.forge(secret=Ed25519PrivateKey(b"\x0d" * 32)), Code.BAD_SIGNATURE
    )


def test_signature_for_another_audience_is_bad_signature(ed_pair: Pair) -> None:
    """Step 11 / §6.2: the signed input includes the audience."""
    fields = msgpack.unpackb(ed_pair.forge())[:-1]
    frame = client_frame(fields, CLIENT_KEY, audience="wss://other.example.test/ws")
    ed_pair.assert_rejected(frame, Code.BAD_SIGNATURE)


# -- step 12: commit ---------------------------------------------------------------------


def test_accepted_frame_is_delivered_with_its_fields(pair: Pair) -> None:
    """Step 12: the message carries sub, iss, scopes, ctr, stream, seq, payload, cid, ts."""
    pair.clock.advance(1.5)
    message = pair.accept("payload")
    assert message == Message(
        subject=SUBJECT,
        issuer=ISSUER,
        scopes=frozenset(SCOPES),
        counter=4,
        stream=STREAM,
        seq=4,
        payload="payload",
        credential_id=pair.client.credential.cid,
        timestamp_ms=NOW_MS + 1500,
    )


def test_commit_moves_the_state(pair: Pair) -> None:
    """Step 12: highest, bitmap, binding and current credential move after acceptance."""
    state = pair.server.verifier_state
    assert (state.highest, state.bitmap) == (3, 0b101)
    assert state.principal == (ISSUER, SUBJECT)
    assert state.credential is not None
    assert state.credential.cid == pair.client.credential.cid
    assert pair.held is not None
    pair.deliver(pair.held)
    assert (state.highest, state.bitmap) == (3, 0b111)


def test_bytes_and_control_payloads_are_delivered(pair: Pair) -> None:
    """Binary payloads come back as bytes; a nil payload is a control frame with seq 0 (§6.5)."""
    binary = pair.accept(b"\x00\xff")
    assert binary.payload == b"\x00\xff"
    control = pair.accept(None)
    assert (control.payload, control.seq) == (None, 0)
    text = pair.accept("")
    assert (text.payload, text.seq) == ("", binary.seq + 1)


def test_new_state_starts_empty() -> None:
    """A connection starts with H=0, no bitmap, no binding and no credential."""
    p = Pair()
    state = p.server.verifier_state
    assert (state.highest, state.bitmap, state.principal, state.credential) == (0, 0, None, None)
    assert state.nonce_expires_ms == (int(NOW) + 86400) * 1000
    assert repr(state) == "ConnectionState(highest=0, principal=None)"


# -- systematic negatives ----------------------------------------------------------------


@pytest.mark.parametrize(("scheme", "backend"), SCHEMES, ids=[_ids(s) for s in SCHEMES])
def test_every_single_bit_flip_is_rejected(scheme: Scheme, backend: BackendName) -> None:
    """Flipping any one bit of a valid frame is refused, with a tampering code (§9)."""
    p = Pair(scheme, backend, window=8)
    p.warm_up()
    for _ in range(3):
        p.accept()  # highest 6: flipping ctr 7 to 6, 5 or 3 is a replay
    frame = p.sign("a payload")
    before = p.snapshot()
    codes: dict[Code, int] = {}
    for i in range(len(frame) * 8):
        result = p.deliver(flip_bit(frame, i))
        assert not isinstance(result, Message), f"bit {i} flipped was accepted"
        codes[result.code] = codes.get(result.code, 0) + 1
    assert p.snapshot() == before
    assert set(codes) <= TAMPER_CODES, codes
    assert sum(codes.values()) == len(frame) * 8
    # The flips reach every layer: decoding, nonce, counter, credential and tag.
    expected = {
        Code.MALFORMED,
        Code.NONCE_MISMATCH,
        Code.REPLAY,
        Code.TIMESTAMP_SKEW,
        Code.CREDENTIAL_MALFORMED,
        Code.UNKNOWN_KEY,
    }
    expected.add(Code.BAD_TAG if scheme == "mac" else Code.BAD_SIGNATURE)
    if scheme != "keyref":
        expected |= {Code.UNKNOWN_ISSUER, Code.CREDENTIAL_INVALID}
    assert expected <= set(codes), codes
    assert isinstance(p.deliver(frame), Message)


@pytest.mark.parametrize(("scheme", "backend"), SCHEMES[:2], ids=[_ids(s) for s in SCHEMES[:2]])
def test_every_truncation_is_malformed(scheme: Scheme, backend: BackendName) -> None:
    """Cutting a valid frame at any length leaves an incomplete array: malformed."""
    p = Pair(scheme, backend, window=8)
    p.warm_up()
    frame = p.sign()
    for size in range(len(frame)):
        p.assert_rejected(frame[:size], Code.MALFORMED, recover=False)
    assert isinstance(p.deliver(frame), Message)


@pytest.mark.parametrize(("scheme", "backend"), SCHEMES[:2], ids=[_ids(s) for s in SCHEMES[:2]])
def test_every_one_byte_extension_is_refused(scheme: Scheme, backend: BackendName) -> None:
    """A byte appended (trailing data) or prepended to a valid frame is refused."""
    p = Pair(scheme, backend, window=8)
    p.warm_up()
    frame = p.sign()
    for byte in range(256):
        p.assert_rejected(frame + bytes([byte]), Code.MALFORMED, recover=False)
        # A prepended fixarray header of one element nests the frame as element 0:
        # an array nested in an envelope fails decoding (SPEC.md §2). Anything else
        # leaves bytes missing or trailing.
        p.assert_rejected(bytes([byte]) + frame, Code.MALFORMED, recover=False)
    assert isinstance(p.deliver(frame), Message)


@pytest.mark.parametrize(("scheme", "backend"), SCHEMES, ids=[_ids(s) for s in SCHEMES])
def test_every_swap_of_two_elements_is_rejected(scheme: Scheme, backend: BackendName) -> None:
    """Swapping any two distinct elements of a valid frame (tag included) is refused."""
    p = Pair(scheme, backend, window=8)
    p.warm_up()
    p.accept()
    p.accept(None)  # ctr 5, seq 4: counters and seq now differ
    frame = p.sign("payload")
    fields = msgpack.unpackb(frame)
    codes = set()
    swaps = 0
    for i in range(len(fields)):
        for j in range(i + 1, len(fields)):
            swapped = list(fields)
            swapped[i], swapped[j] = swapped[j], swapped[i]
            data = msgpack.packb(swapped, use_bin_type=True)
            if data == frame:
                continue  # two equal elements (version and kind 1): not a change
            swaps += 1
            result = p.deliver(data)
            assert not isinstance(result, Message), f"swap {i}<->{j} was accepted"
            codes.add(result.code)
    assert swaps >= 44
    assert codes <= TAMPER_CODES, codes
    assert isinstance(p.deliver(frame), Message)


# -- the order of the steps --------------------------------------------------------------


def _mallory_revoked(pair: Pair) -> bytes:
    mallory = _other_principal(pair, "mallory")
    pair.verifier.revocations = EMPTY.revoke_credential(ISSUER, mallory.cid)
    return pair.forge(credential=mallory)


def _revoked_and_skewed(pair: Pair) -> bytes:
    pair.verifier.revocations = EMPTY.revoke_subject(ISSUER, SUBJECT, before=2**40)
    return pair.forge(ts=0)


ORDER_CASES: dict[str, tuple[Code, Callable[[Pair], bytes]]] = {
    "size before decoding": (Code.FRAME_TOO_LARGE, lambda p: b"\x99" + bytes(65536)),
    "version before structure": (
        Code.UNSUPPORTED_VERSION,
        lambda p: client_frame([2, 1, b"", b"", 0], p.secret),
    ),
    "structure before nonce": (Code.MALFORMED, lambda p: p.forge(ctr=0, nonce=bytes(64))),
    "nonce before counter": (Code.NONCE_MISMATCH, lambda p: p.forge(ctr=1, nonce=bytes(64))),
    "counter before credential": (Code.REPLAY, lambda p: p.forge(ctr=1, cred=b"\xc1")),
    "credential before timestamp": (
        Code.CREDENTIAL_MALFORMED,
        lambda p: p.forge(cred=b"\xc1", ts=0),
    ),
    "validity before binding": (
        Code.CREDENTIAL_EXPIRED,
        lambda p: p.forge(credential=_claims_credential(p, now=NOW - 7200, subject="mallory")),
    ),
    "binding before revocation": (Code.CREDENTIAL_MISMATCH, _mallory_revoked),
    "revocation before timestamp": (Code.CREDENTIAL_REVOKED, _revoked_and_skewed),
    "timestamp before tag": (
        Code.TIMESTAMP_SKEW,
        lambda p: p.forge(ts=0, secret=HMACKey(b"\x01" * 32) if p.kind == 1 else ED_ISSUER_KEY),
    ),
}


@pytest.mark.parametrize("case", list(ORDER_CASES))
def test_first_failing_step_wins(pair: Pair, case: str) -> None:
    """§6.4: the steps run in order; a frame failing two of them gets the earlier code."""
    code, build = ORDER_CASES[case]
    pair.assert_rejected(build(pair), code, recover=False)
    pair.verifier.revocations = EMPTY
    pair.assert_recovers()


# -- replay and reordering (§6.6) ----------------------------------------------------------


def test_window_0_refuses_reordered_and_repeated_frames() -> None:
    """W=0: counters strictly increase; a late or repeated frame is a replay."""
    p = Pair("mac", window=0)
    frames = [p.sign(str(n)) for n in range(1, 6)]
    assert isinstance(p.deliver(frames[1]), Message)  # 2
    p.assert_rejected(frames[0], Code.REPLAY, recover=False)  # 1 after 2
    p.assert_rejected(frames[1], Code.REPLAY, recover=False)  # 2 again
    assert isinstance(p.deliver(frames[4]), Message)  # 5: gaps are fine
    p.assert_rejected(frames[2], Code.REPLAY, recover=False)
    p.assert_rejected(frames[3], Code.REPLAY, recover=False)
    assert p.server.verifier_state.bitmap == 0


@pytest.mark.parametrize(("scheme", "backend"), SCHEMES, ids=[_ids(s) for s in SCHEMES])
def test_window_8_accepts_reordered_frames_once(scheme: Scheme, backend: BackendName) -> None:
    """W=8: a frame up to 7 below the highest is accepted once; twice or older is replay."""
    p = Pair(scheme, backend, window=8)
    frames = {n: p.sign(str(n)) for n in range(1, 13)}
    for n in (1, 3, 2):
        assert isinstance(p.deliver(frames[n]), Message)
    p.assert_rejected(frames[2], Code.REPLAY, recover=False)
    assert isinstance(p.deliver(frames[12]), Message)
    assert isinstance(p.deliver(frames[5]), Message)  # 7 below 12: inside
    p.assert_rejected(frames[5], Code.REPLAY, recover=False)
    p.assert_rejected(frames[4], Code.REPLAY, recover=False)  # 8 below 12: outside
    for n in (11, 6, 10, 7, 8, 9):
        assert isinstance(p.deliver(frames[n]), Message)
    for n in range(1, 13):
        p.assert_rejected(frames[n], Code.REPLAY, recover=False)
    assert p.server.verifier_state.highest == 12


@pytest.mark.parametrize("window", [0, 8])
def test_counter_2_64_minus_1_is_the_last(window: int) -> None:
    """Counter wrap: 2**64-1 is accepted as the first frame; then no counter passes."""
    p = Pair("mac", window=window)
    p.client._counter = 2**64 - 2
    last = p.accept()
    assert last.counter == 2**64 - 1
    p.assert_rejected(p.forge(ctr=2**64 - 1), Code.REPLAY, recover=False)
    p.assert_rejected(p.forge(ctr=2**64 - 1 - window), Code.REPLAY, recover=False)
    with pytest.raises(UsageError, match="counter exhausted"):
        p.sign()


def test_counter_2_64_minus_1_after_a_gap_with_a_window() -> None:
    """Counter wrap with W=8: after 1, the jump to 2**64-1 is accepted (gaps are allowed)."""
    # §6.4 step 6 and §6.6: ctr > H passes; the window moves at step 12 and keeps W bits.
    p = Pair("mac", window=8)
    p.accept()
    p.client._counter = 2**64 - 2
    assert p.accept().counter == 2**64 - 1
    assert (p.server.verifier_state.highest, p.server.verifier_state.bitmap) == (2**64 - 1, 1)


# -- the credential cache (§6.4 step 7) ----------------------------------------------------


@pytest.mark.parametrize(("scheme", "backend"), SCHEMES, ids=[_ids(s) for s in SCHEMES])
def test_same_credential_is_authenticated_once(
    scheme: Scheme, backend: BackendName, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A second frame (or connection) with the same credential bytes hits the cache."""
    p = Pair(scheme, backend)
    auth = count_authentications(p, monkeypatch)
    counting = CountingBackend(p.verifier.backend)
    p.verifier.backend = counting
    for _ in range(3):
        p.accept()
    assert auth.calls == 1
    assert counting.certificate_verifications == (1 if scheme == "certificate" else 0)
    assert counting.frame_verifications == (0 if scheme == "mac" else 3)
    # Another connection of the same server shares the cache.
    other = p.open(b"second connection")
    signer = type(p.client).from_hello(
        other.hello, p.credential, audience=AUDIENCE, now=NOW, stream=STREAM
    )
    other.verify(signer.sign("x", now=NOW), now=NOW)
    assert auth.calls == 1


def test_keyring_change_drops_the_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any keyring.version change makes the next frame re-authenticate its credential."""
    p = Pair("mac")
    auth = count_authentications(p, monkeypatch)
    p.accept()
    p.keyring.add_hmac_key("https://unrelated.example.test", "k", HMACKey(b"\x05" * 32))
    p.accept()
    assert auth.calls == 2
    p.accept()
    assert auth.calls == 2


@pytest.mark.parametrize(("scheme", "backend"), SCHEMES, ids=[_ids(s) for s in SCHEMES])
def test_retired_key_is_refused_at_the_next_frame(scheme: Scheme, backend: BackendName) -> None:
    """Retiring the issuer key (or unregistering the entry) refuses the next frame: unknown_key."""
    p = Pair(scheme, backend, window=8)
    p.warm_up()
    if scheme == "mac":
        p.keyring.retire(ISSUER, HMAC_KID, at=int(NOW))
    elif scheme == "certificate":
        p.keyring.retire(ISSUER, ED_KID, at=int(NOW))
    else:
        p.keyring.unregister(ISSUER, REG_KID)
    p.assert_rejected(p.sign(), Code.UNKNOWN_KEY, recover=False)


def test_assigning_a_new_keyring_drops_the_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    """A reloaded keyring (even with an equal version number) re-authenticates credentials."""
    p = Pair("mac")
    auth = count_authentications(p, monkeypatch)
    p.accept()
    reloaded = make_keyring()
    assert reloaded.version == p.keyring.version
    p.verifier.keyring = reloaded
    assert p.verifier.keyring is reloaded
    p.accept()
    assert auth.calls == 2


def test_assigning_a_keyring_without_the_issuer_refuses_its_credentials() -> None:
    """After a reload that dropped the issuer, its cached credential is unknown_issuer."""
    p = Pair("mac", window=8)
    p.warm_up()
    p.verifier.keyring = Keyring()
    p.assert_rejected(p.sign(), Code.UNKNOWN_ISSUER, recover=False)


def test_assigning_something_else_than_a_keyring_is_a_usage_error() -> None:
    """verifier.keyring only takes a Keyring."""
    p = Pair()
    with pytest.raises(UsageError, match="Keyring"):
        p.verifier.keyring = {}  # type: ignore[assignment]


def test_clear_cache_re_authenticates(monkeypatch: pytest.MonkeyPatch) -> None:
    """clear_cache drops every cached credential."""
    p = Pair("mac")
    auth = count_authentications(p, monkeypatch)
    p.accept()
    p.verifier.clear_cache()
    p.accept()
    assert auth.calls == 2


def test_cache_evicts_first_in_first_out(monkeypatch: pytest.MonkeyPatch) -> None:
    """At cache_size the oldest inserted entry goes, whatever was used last (FIFO)."""
    p = Pair("mac", cache_size=2)
    auth = count_authentications(p, monkeypatch)
    creds = {name: token(cid=name) for name in "abc"}

    def send_with(name: str) -> int:
        p.client.refresh(creds[name])
        p.accept()
        return auth.calls

    assert [send_with(n) for n in "abacba"] == [1, 2, 2, 3, 3, 4]


def test_revocation_set_replaced_between_frames_takes_effect(pair: Pair) -> None:
    """Replacing verifier.revocations applies at the very next frame, and can be undone."""
    cid = pair.client.credential.cid
    pair.verifier.revocations = RevocationSet([(ISSUER, cid)])
    pair.assert_rejected(pair.sign(), Code.CREDENTIAL_REVOKED, recover=False)
    pair.verifier.revocations = RevocationSet()
    pair.assert_recovers()


@pytest.mark.parametrize(("scheme", "backend"), SCHEMES, ids=[_ids(s) for s in SCHEMES])
def test_expiry_is_checked_on_a_cache_hit(
    scheme: Scheme, backend: BackendName, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A cached credential expires on time: step 7.4 runs on every frame."""
    p = Pair(scheme, backend)
    auth = count_authentications(p, monkeypatch)
    p.accept()
    p.clock.now = NOW + 3599.999
    p.accept()
    p.clock.now = NOW + 3600
    p.assert_rejected(p.sign(), Code.CREDENTIAL_EXPIRED, recover=False)
    assert auth.calls == 1


def test_key_window_is_checked_on_a_cache_hit(monkeypatch: pytest.MonkeyPatch) -> None:
    """A key's not_after is enforced on cached credentials too, without re-authenticating."""
    secret = HMACKey(b"\x0a" * 32)
    p = Pair("mac", credential=token(issuer=Issuer(ISSUER, "short", secret)))
    p.keyring.add_hmac_key(ISSUER, "short", secret, not_after=int(NOW) + 100)
    auth = count_authentications(p, monkeypatch)
    p.accept()
    p.clock.advance(100)
    p.assert_rejected(p.sign(), Code.UNKNOWN_KEY, recover=False)
    assert auth.calls == 1


# -- refresh (§4.5) -------------------------------------------------------------------


@pytest.mark.parametrize("scheme", ["mac", "certificate"])
def test_refresh_to_a_new_credential_of_the_same_subject(scheme: Scheme) -> None:
    """A new credential for the same (iss, sub) is accepted and becomes the current one."""
    p = Pair(scheme)
    p.accept()
    fresh = token(cid="tok-2", now=NOW + 20) if scheme == "mac" else certificate(cid="cert-2")
    p.client.refresh(fresh)
    message = p.accept()
    assert message.credential_id == fresh.cid
    state = p.server.verifier_state.credential
    assert state is not None
    assert state.cid == fresh.cid


def test_refresh_from_key_reference_to_certificate_is_accepted() -> None:
    """Type may change within a binding (§4.5): key reference, then certificate."""
    p = Pair("keyref")
    p.accept()
    p.client.refresh(certificate(cid="cert-after-ref"))
    assert p.accept().credential_id == "cert-after-ref"


def test_refresh_to_another_scheme_on_the_same_binding_is_accepted() -> None:
    """§4.5: even the scheme may change if (iss, sub) is the same; server frames follow."""
    p = Pair("mac")
    p.accept()
    assert isinstance(p.deliver(p.forge(credential=certificate(), payload="now ed25519")), Message)
    state = p.server.verifier_state.credential
    assert state is not None
    assert state.kind == 2


# -- the per-connection fast path (module docstring) -----------------------------------------


def _state_of(p: Pair) -> tuple[object, ...]:
    s = p.server.verifier_state
    return (s.highest, s.bitmap, s.principal, s.credential, s.valid_until_ms)


def _restore(p: Pair, saved: tuple[object, ...]) -> None:
    """Put the connection back as `_state_of` saw it (what a commit changes)."""
    s = p.server.verifier_state
    s.highest, s.bitmap, s.principal, s.credential, s.valid_until_ms = saved  # type: ignore[assignment]


@pytest.mark.parametrize(("scheme", "backend"), SCHEMES, ids=[_ids(s) for s in SCHEMES])
def test_fast_path_agrees_on_every_change_of_one_element(
    scheme: Scheme, backend: BackendName
) -> None:
    """Each element of a frame, replaced by each of `field_variants` in each of
    its MessagePack encodings and tagged afresh, gets the same answer on the
    fast path as on the full path (`verify_both_paths`)."""
    p = Pair(scheme, backend, window=8, revocations=RevocationSet([(ISSUER, REVOKED_CID)]))
    p.warm_up()
    start = _state_of(p)
    seen: set[object] = set()
    for index in range(9):
        for value in field_variants(p, index):
            for encoded in encodings(value):
                _restore(p, start)
                fields = msgpack.unpackb(p.sign("payload"))[:9]
                fields[index] = value
                parts = encode_parts(*fields)
                parts[index] = encoded
                frame = client_frame(fields, p.secret, parts=parts)
                result = verify_both_paths(p.verifier, frame, p.server.verifier_state, now=NOW)
                seen.add(result.code if isinstance(result, Rejected) else "accepted")
    assert {"accepted", Code.MALFORMED, Code.UNSUPPORTED_VERSION, Code.REPLAY} <= seen
    assert {Code.CREDENTIAL_MISMATCH, Code.CREDENTIAL_REVOKED, Code.AUDIENCE_MISMATCH} <= seen


@pytest.mark.parametrize(("scheme", "backend"), SCHEMES, ids=[_ids(s) for s in SCHEMES])
def test_fast_path_agrees_at_every_boundary_of_time(scheme: Scheme, backend: BackendName) -> None:
    """An honest frame verified at each edge of the nonce's, the credential's
    and the timestamp's validity gets the same answer on both paths."""
    p = Pair(scheme, backend, window=8)
    p.warm_up()
    start = _state_of(p)
    nonce_expiry = p.server.verifier_state.nonce_expires_ms / 1000
    edges = [-86400, -3600, -330.001, -330, -300.001, -300, 0, 300, 300.001, 3599.999, 3600]
    times = [NOW + e for e in edges] + [nonce_expiry - 0.001, nonce_expiry, 0.0, 1e-3]
    codes = set()
    for now in times:
        _restore(p, start)
        frame = p.sign()
        result = verify_both_paths(p.verifier, frame, p.server.verifier_state, now=now)
        codes.add(result.code if isinstance(result, Rejected) else "accepted")
    assert "accepted" in codes
    assert len(codes) >= 3


def test_fast_path_refuses_a_negative_timestamp_near_the_epoch() -> None:
    """A timestamp of -1 is malformed (step 4), not merely within max_skew of a
    clock 100 s after the epoch, on the fast path as on the full path."""
    p = Pair("mac", credential=token(now=0), clock=FakeClock(100.0))
    p.accept()
    result = verify_both_paths(
        p.verifier, p.forge(ts=-1), p.server.verifier_state, now=p.clock.now
    )
    assert isinstance(result, Rejected)
    assert (result.code, result.detail) == (Code.MALFORMED, "element 5 is a negative int")


def _mutations(frame: bytes) -> list[bytes]:
    """``frame`` with each byte flipped, cut at each length, and extended."""
    flipped = [flip_byte(frame, i) for i in range(len(frame))]
    cut = [frame[:size] for size in range(len(frame))]
    return [*flipped, *cut, frame + b"\x00", frame + b"\xc0", frame * 2]


@pytest.mark.parametrize(("scheme", "backend"), SCHEMES, ids=[_ids(s) for s in SCHEMES])
def test_fast_path_agrees_on_every_mutation_of_a_frame(
    scheme: Scheme, backend: BackendName
) -> None:
    """Each byte of an honest frame flipped, the frame cut at every length and
    extended, on a warm connection: the fast path decodes as the reference
    decoder, and both paths give the same answer; the fast path both takes
    frames (an honest one) and hands frames over (the mutations whose head
    still matches), as `verify_both_paths` sees it."""
    p = Pair(scheme, backend, window=8)
    p.warm_up()
    start = _state_of(p)
    before = FAST_PATH_OUTCOMES.copy()
    codes: set[object] = set()
    honest = p.sign("payload")
    for frame in [honest, *_mutations(honest)]:
        _restore(p, start)
        result = verify_both_paths(p.verifier, frame, p.server.verifier_state, now=NOW)
        codes.add(result.code if isinstance(result, Rejected) else "accepted")
    seen = FAST_PATH_OUTCOMES - before
    assert seen["fast"] >= 1
    assert seen["handed over"] >= 1
    assert seen["full only"] >= 1
    assert {"accepted", Code.MALFORMED} <= codes
    assert (Code.BAD_TAG if scheme == "mac" else Code.BAD_SIGNATURE) in codes


def _count_full_paths(p: Pair, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    full = p.verifier._verify_full

    def counting(fields: ClientFields, state: ConnectionState, now_ms: int) -> VerifiedCredential:
        calls.append(1)
        return full(fields, state, now_ms)

    monkeypatch.setattr(p.verifier, "_verify_full", counting)
    return calls


@pytest.mark.parametrize(("scheme", "backend"), SCHEMES, ids=[_ids(s) for s in SCHEMES])
def test_next_frames_of_a_connection_take_the_fast_path(
    scheme: Scheme, backend: BackendName, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first frame takes the full path, the next ones the fast path, until
    the keyring changes, the cache is cleared or another credential comes."""
    p = Pair(scheme, backend)
    calls = _count_full_paths(p, monkeypatch)
    p.accept()
    assert len(calls) == 1
    p.accept()
    p.accept(None)
    assert len(calls) == 1
    p.keyring.add_hmac_key("https://unrelated.example.test", "k", HMACKey(b"\x05" * 32))
    p.accept()
    assert len(calls) == 2
    p.accept()
    assert len(calls) == 2
    p.verifier.clear_cache()
    p.accept()
    assert len(calls) == 3
    p.verifier.keyring = make_keyring()
    p.accept()
    p.accept()
    assert len(calls) == 4
    refreshed = token(cid="refreshed") if scheme == "mac" else certificate(cid="refreshed")
    p.client.refresh(refreshed)
    p.accept()
    p.accept()
    assert len(calls) == 5


def test_fast_path_is_not_taken_on_another_verifier(monkeypatch: pytest.MonkeyPatch) -> None:
    """A state whose credential another verifier authenticated goes the full
    path: the cache epoch is the verifier's own."""
    p = Pair("mac")
    p.accept()
    other = Verifier(make_keyring(), audience=AUDIENCE, fleet_key=FLEET_KEY, node_id=NODE_ID)
    calls: list[int] = []
    full = other._verify_full

    def counting(fields: ClientFields, state: ConnectionState, now_ms: int) -> VerifiedCredential:
        calls.append(1)
        return full(fields, state, now_ms)

    monkeypatch.setattr(other, "_verify_full", counting)
    assert isinstance(other.verify(p.sign(), p.server.verifier_state, now=NOW), Message)
    assert calls == [1]


# -- the failure cache (invariant 6) --------------------------------------------------------


def _unknown_token() -> MACCredential:
    return token(issuer=Issuer(OTHER_ISSUER, "k", HMACKey(b"\x09" * 32)))


def test_refused_credential_is_authenticated_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """A credential refused at step 7.3 is remembered: the same bytes again get
    the same code and detail without being decoded and looked up again."""
    p = Pair("mac")
    auth = count_authentications(p, monkeypatch)
    details = []
    for _ in range(3):
        result = p.deliver(p.forge(credential=_unknown_token()))
        assert isinstance(result, Rejected)
        assert result.code is Code.UNKNOWN_ISSUER
        details.append(result.detail)
    assert auth.calls == 1
    assert details == [f"issuer {OTHER_ISSUER!r} is not trusted"] * 3
    p.accept()  # the connection's own credential is unaffected


@pytest.mark.parametrize(
    ("first_kind", "second_kind", "code"),
    [(1, 1, Code.UNKNOWN_ISSUER), (1, 2, Code.SCHEME_MISMATCH)],
)
def test_remembered_failure_keeps_the_scheme_check_first(
    first_kind: int, second_kind: int, code: Code
) -> None:
    """A token refused in a `mac` frame, then sent in an `ed25519` frame, is
    refused at step 7.2 (scheme_mismatch) as a fresh verifier would refuse it."""
    cred = _unknown_token()
    for fresh in (False, True):
        p = Pair("mac")
        if not fresh:
            tag = bytes(96 - 32 * first_kind)
            p.assert_rejected(
                p.forge(credential=cred, kind=first_kind, tag=None if first_kind == 1 else tag),
                Code.UNKNOWN_ISSUER if first_kind == 1 else Code.SCHEME_MISMATCH,
                recover=False,
            )
        frame = p.forge(
            credential=cred, kind=second_kind, tag=None if second_kind == 1 else bytes(64)
        )
        assert p.assert_rejected(frame, code, recover=False).code is code


def test_malformed_credential_is_remembered_for_both_kinds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """credential_malformed (step 7.1) does not depend on the frame's kind."""
    p = Pair("mac")
    auth = count_authentications(p, monkeypatch)
    for kind in (1, 2, 1):
        frame = p.forge(cred=b"\x91\x01", kind=kind, tag=bytes(32 * kind))
        p.assert_rejected(frame, Code.CREDENTIAL_MALFORMED, recover=False)
    assert auth.calls == 1


def test_scheme_mismatch_is_not_remembered(monkeypatch: pytest.MonkeyPatch) -> None:
    """A credential refused at step 7.2 says nothing about the other kind: it
    is decoded again next time."""
    p = Pair("mac")
    auth = count_authentications(p, monkeypatch)
    cred = token(cid="other")
    for _ in range(2):
        frame = p.forge(credential=cred, kind=2, tag=bytes(64))
        p.assert_rejected(frame, Code.SCHEME_MISMATCH, recover=False)
    assert auth.calls == 2
    assert p.verifier._failures == {}


def test_failure_cache_is_bounded_and_spares_the_credential_cache(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Refused credentials fill a cache of their own, at most min(cache_size,
    MAX_FAILURE_CACHE_SIZE) entries, first in first out; authenticated
    credentials stay cached."""
    p = Pair("mac", cache_size=3)
    p.accept()
    cached = dict(p.verifier._cache)
    issuer = Issuer(OTHER_ISSUER, "k", HMACKey(b"\x09" * 32))
    rogues = [token(cid=f"rogue-{i}", issuer=issuer) for i in range(5)]
    for rogue in rogues:
        p.assert_rejected(p.forge(credential=rogue), Code.UNKNOWN_ISSUER, recover=False)
    assert list(p.verifier._failures) == [r.token for r in rogues[2:]]
    assert p.verifier._cache == cached
    assert Verifier(make_keyring(), audience=AUDIENCE, fleet_key=FLEET_KEY)._failures_size == (
        MAX_FAILURE_CACHE_SIZE
    )
    auth = count_authentications(p, monkeypatch)
    p.assert_rejected(p.forge(credential=rogues[0]), Code.UNKNOWN_ISSUER, recover=False)
    p.assert_rejected(p.forge(credential=rogues[4]), Code.UNKNOWN_ISSUER, recover=False)
    assert auth.calls == 1


@pytest.mark.parametrize("how", ["keyring change", "new keyring", "clear_cache"])
def test_failure_cache_is_dropped_with_the_credential_cache(
    how: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A keyring change, a new keyring and clear_cache forget refused
    credentials too: once its issuer is trusted, a credential is accepted."""
    p = Pair("mac")
    secret = HMACKey(b"\x09" * 32)
    cred = token(issuer=Issuer(OTHER_ISSUER, "k", secret), cid="later")
    other = p.open(b"another connection")
    signer = type(p.client).from_hello(
        other.hello, cred, audience=AUDIENCE, now=NOW, stream=STREAM
    )
    with pytest.raises(Rejected, match="unknown_issuer"):
        other.verify(signer.sign("x", now=NOW), now=NOW)
    assert list(p.verifier._failures) == [cred.token]
    auth = count_authentications(p, monkeypatch)
    if how == "clear_cache":
        p.verifier.clear_cache()
        assert p.verifier._failures == {}
        with pytest.raises(Rejected, match="unknown_issuer"):
            other.verify(signer.sign("x", now=NOW), now=NOW)
        assert auth.calls == 1
        return
    if how == "keyring change":
        p.keyring.add_hmac_key(OTHER_ISSUER, "k", secret)
    else:
        keyring = make_keyring()
        keyring.add_hmac_key(OTHER_ISSUER, "k", secret)
        p.verifier.keyring = keyring
    assert isinstance(other.verify(signer.sign("x", now=NOW), now=NOW), Message)
    assert auth.calls == 1


@pytest.mark.parametrize("outcome", ["accepted", "refused"])
def test_nothing_is_cached_when_the_keyring_moves_during_authentication(
    outcome: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A credential authenticated (or refused) while the keyring changed is
    answered for its frame but not cached: the next frame authenticates it
    again, under the keyring as it is then."""
    p = Pair("mac")
    authenticate = p.verifier._authenticate
    calls: list[int] = []

    def racing(cred: bytes, kind: int) -> VerifiedCredential:
        calls.append(1)
        # Another thread changes the keyring meanwhile (and a third drops the cache).
        p.keyring.add_hmac_key(f"https://unrelated-{len(calls)}.example.test", "k", FLEET_KEY)
        p.verifier.clear_cache()
        return authenticate(cred, kind)

    monkeypatch.setattr(p.verifier, "_authenticate", racing)
    if outcome == "accepted":
        p.accept()
        assert p.verifier._cache == {}
        p.accept()
    else:
        for _ in range(2):
            p.assert_rejected(
                p.forge(credential=_unknown_token()), Code.UNKNOWN_ISSUER, recover=False
            )
        assert p.verifier._failures == {}
    assert len(calls) == 2


# -- DoS economics (§11.7) -------------------------------------------------------------


CHEAP_FAILURES: dict[str, tuple[Code, Callable[[Pair], bytes]]] = {
    "garbage": (Code.MALFORMED, lambda p: b"\xc1" * 300),
    "oversized": (Code.FRAME_TOO_LARGE, lambda p: bytes(p.verifier.max_frame_size + 1)),
    "wrong nonce": (Code.NONCE_MISMATCH, lambda p: p.forge(nonce=bytes(64))),
    "replay": (Code.REPLAY, lambda p: p.forge(ctr=1)),
    "unknown issuer": (
        Code.UNKNOWN_ISSUER,
        lambda p: p.forge(credential=_unknown_issuer("mac" if p.kind == 1 else "certificate")),
    ),
    "credential of the other scheme": (
        Code.SCHEME_MISMATCH,
        lambda p: p.forge(kind=3 - p.kind, tag=bytes(96 - 32 * p.kind)),
    ),
    "cached credential, skewed": (Code.TIMESTAMP_SKEW, lambda p: p.forge(ts=0)),
}


@pytest.mark.parametrize("case", sorted(CHEAP_FAILURES))
@pytest.mark.parametrize(("scheme", "backend"), SCHEMES, ids=[_ids(s) for s in SCHEMES])
def test_cheap_failures_never_reach_frame_mac_or_signature(
    scheme: Scheme, backend: BackendName, case: str
) -> None:
    """Frames failing a cheaper step never cost an Ed25519 verification or a frame HMAC."""
    p = Pair(scheme, backend, window=8)
    p.warm_up()
    counting = CountingBackend(p.verifier.backend)
    p.verifier.backend = counting
    vc = p.server.verifier_state.credential
    assert vc is not None
    mac_state = None
    if vc.mac_state is not None:
        mac_state = vc.mac_state = CountingHMAC(vc.mac_state)
    code, build = CHEAP_FAILURES[case]
    p.assert_rejected(build(p), code, recover=False)
    assert counting.verified == []
    assert mac_state is None or mac_state.copies == 0
    p.accept()
    assert counting.frame_verifications == (0 if scheme == "mac" else 1)
    assert mac_state is None or mac_state.copies == 1


def test_uncached_credential_is_authenticated_before_the_timestamp_check() -> None:
    """§6.4 order: a fresh certificate is verified (step 7) even if step 10 then fails."""
    # The frame's own signature is never checked. SPEC.md §11.7 lists validity,
    # revocation and timestamp among the checks that run before any Ed25519
    # verification; on a cache miss the certificate's verification precedes them.
    p = Pair("certificate")
    counting = CountingBackend(p.verifier.backend)
    p.verifier.backend = counting
    p.assert_rejected(p.forge(ts=0), Code.TIMESTAMP_SKEW, recover=False)
    assert counting.certificate_verifications == 1
    assert counting.frame_verifications == 0


# -- construction and helpers -----------------------------------------------------------


def _verifier(**kwargs: object) -> Verifier:
    args: dict[str, object] = {"audience": AUDIENCE, "fleet_key": FLEET_KEY, "node_id": NODE_ID}
    args.update(kwargs)
    keyring = args.pop("keyring", make_keyring())
    return Verifier(keyring, **args)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "kwargs",
    [
        pytest.param({"keyring": {}}, id="keyring not a Keyring"),
        pytest.param({"revocations": set()}, id="revocations not a RevocationSet"),
        pytest.param({"backend": "nacl"}, id="unknown backend"),
        pytest.param({"node_id": b"short"}, id="node_id too short"),
        pytest.param({"node_id": "node-001"}, id="node_id not bytes"),
        pytest.param({"window": -1}, id="window -1"),
        pytest.param({"window": 1025}, id="window 1025"),
        pytest.param({"window": True}, id="window bool"),
        pytest.param({"max_frame_size": 0}, id="max_frame_size 0"),
        pytest.param({"max_frame_size": 1.5}, id="max_frame_size float"),
        pytest.param({"cache_size": 0}, id="cache_size 0"),
        pytest.param({"nonce_ttl": 0}, id="nonce_ttl 0"),
        pytest.param({"nonce_ttl": "1"}, id="nonce_ttl str"),
        pytest.param({"max_skew": -1}, id="max_skew negative"),
        pytest.param({"leeway": -0.5}, id="leeway negative"),
        pytest.param({"audience": ""}, id="empty audience"),
        pytest.param({"audience": "a" * 256}, id="audience too long"),
    ],
)
def test_constructor_refuses_bad_arguments(kwargs: dict[str, object]) -> None:
    """Configuration mistakes are UsageError, the caller's fault."""
    with pytest.raises(UsageError):
        _verifier(**kwargs)


@pytest.mark.parametrize(
    "kwargs",
    [
        pytest.param({"max_skew": float("nan")}, id="max_skew NaN"),
        pytest.param({"max_skew": float("inf")}, id="max_skew infinite"),
        pytest.param({"leeway": float("nan")}, id="leeway NaN"),
        pytest.param({"max_skew": "300"}, id="max_skew str"),
        pytest.param({"fleet_key": bytes(32)}, id="fleet_key not an HMACKey"),
    ],
)
def test_constructor_refuses_non_numbers_and_non_keys(kwargs: dict[str, object]) -> None:
    """Non-finite or non-numeric limits and a raw fleet key are UsageError too (not a crash)."""
    with pytest.raises(UsageError):
        _verifier(**kwargs)


def test_constructor_defaults() -> None:
    """Defaults follow SPEC.md §10; a missing node id is drawn at random."""
    v = Verifier(make_keyring(), audience=AUDIENCE, fleet_key=FLEET_KEY)
    assert len(v.node_id) == 8
    assert (v.window, v.max_frame_size, v.cache_size, v.nonce_ttl) == (0, 65536, 4096, 86400)
    assert (v.max_skew_ms, v.leeway_ms) == (300_000, 30_000)
    assert v.backend.name == "libsodium"
    assert v.revocations is EMPTY


def test_repr_shows_configuration_not_secrets() -> None:
    """repr names the audience, backend, window and keyring size; no key material."""
    v = _verifier(backend="openssl", window=8)
    text = repr(v)
    assert text.startswith(f"Verifier(audience={AUDIENCE!r}, backend='openssl', window=8,")
    assert FLEET_KEY.to_bytes().hex() not in text


def test_verified_credential_repr_names_identifiers_only() -> None:
    """A cached credential's repr shows iss, cid and sub, never the frame key."""
    p = Pair()
    p.accept()
    vc = p.server.verifier_state.credential
    assert vc is not None
    assert repr(vc) == f"VerifiedCredential(iss={ISSUER!r}, cid='tok-1', sub='alice')"


def test_open_mints_a_fleet_nonce_and_hello_announces_it() -> None:
    """open() mints a nonce the fleet key recognises; hello() carries it with the limits."""
    v = _verifier(window=64, max_frame_size=4096, nonce_ttl=120)
    state = v.open(now=NOW, random=seeded_random(b"x"))
    info = v.nonce_key.check(state.nonce, now=NOW)
    assert (info.node_id, info.expires) == (NODE_ID, int(NOW) + 120)
    assert isinstance(state, ConnectionState)
    fields = msgpack.unpackb(v.hello(state, now=NOW + 0.25))
    assert fields == [1, 3, state.nonce, AUDIENCE, NOW_MS + 250, 4096, 64]


def test_two_servers_of_a_fleet_recognise_each_others_nonces() -> None:
    """Any verifier with the fleet key and audience checks a nonce minted by another."""
    a = _verifier(node_id=b"server-a")
    b = _verifier(node_id=b"server-b")
    nonce = a.open(now=NOW, random=seeded_random(b"y")).nonce
    assert b.nonce_key.check(nonce, now=NOW).node_id == b"server-a"


# -- what a rejection tells the log (§9) ----------------------------------------------------


def test_rejection_details_never_carry_frame_contents(mac_pair: Pair) -> None:
    """§9: a rejection's detail names fields and identifiers, never a token or payload."""
    # An attacker decides what sits where the version or kind should be; here it
    # is a whole genuine frame (token, payload, tag) or a token.
    secret_payload = "card 4111 1111 1111 1111"
    frame = mac_pair.sign(secret_payload)
    token_bytes = mac_pair.cred
    details = []
    for bad in (
        b"\x91" + frame,  # the genuine frame nested where the version goes
        mac_pair.forge(kind=token_bytes, payload=secret_payload),
        mac_pair.forge(version=secret_payload),
    ):
        result = mac_pair.deliver(bad)
        assert not isinstance(result, Message)
        details.append(result.detail)
    for detail in details:
        assert secret_payload not in detail
        assert repr(token_bytes)[2:40] not in detail
        assert len(detail) < 200
