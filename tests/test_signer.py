"""Tests for signedws.signer: the client side of a connection (SPEC.md §5.2, §6.3, §7.2)."""

from __future__ import annotations

import hashlib
import hmac

import msgpack
import pytest
from helpers import (
    AUDIENCE,
    CLIENT_KEY,
    ISSUER,
    NOW,
    NOW_MS,
    SCHEMES,
    SERVER_KEY,
    SERVER_KID,
    STREAM,
    SUBJECT,
    Pair,
    Scheme,
    certificate,
    flip_bit,
    key_reference,
    sent_frame,
    server_frame,
    token,
)

from signedws.credential import Ed25519Credential, Issuer, MACCredential
from signedws.ed25519 import BackendName
from signedws.envelope import (
    CLIENT_LABEL,
    DEFAULT_MAX_SERVER_FRAME_SIZE,
    KIND_CLIENT_ED25519,
    KIND_CLIENT_MAC,
    KIND_SERVER_ED25519,
    KIND_SERVER_MAC,
    Hello,
    decode_hello,
    encode,
    encode_hello,
    length_prefixed,
    unverified_client_frame,
)
from signedws.errors import Code, Rejected, UsageError
from signedws.keys import Ed25519PrivateKey, HMACKey
from signedws.signer import KEPT_FRAME_KEYS, ServerMessage, Signer
from signedws.verifier import Message

SCHEME_NAMES: list[Scheme] = ["mac", "certificate", "keyref"]
NONCE = bytes(range(64))


def _ids(param: tuple[str, str]) -> str:
    return "-".join(param)


def hello_bytes(**changes: object) -> bytes:
    """A hello's bytes with any of its seven elements changed."""
    fields: dict[str, object] = {
        "version": 1,
        "kind": 3,
        "nonce": NONCE,
        "aud": AUDIENCE,
        "time": NOW_MS,
        "max_frame": 65536,
        "window": 0,
    }
    fields.update(changes)
    return bytes(msgpack.packb(list(fields.values()), use_bin_type=True))


def make_signer(
    credential: MACCredential | Ed25519Credential | None = None,
    *,
    stream: object = STREAM,
    seq: object = 0,
) -> Signer:
    """A signer from a fixed hello, for tests that need no server."""
    hello = Hello(NONCE, AUDIENCE, NOW_MS, 65536, 0)
    return Signer(
        credential or token(),
        hello,
        now=NOW,
        stream=stream,  # type: ignore[arg-type]
        seq=seq,  # type: ignore[arg-type]
    )


def reply_to(
    pair: Pair,
    *,
    version: object = 1,
    kind: object = None,
    key_id: object = None,
    nonce: object = None,
    ctr: object = 1,
    ack: object = None,
    ts: object = NOW_MS,
    payload: object = "server says",
    secret: HMACKey | Ed25519PrivateKey | None = None,
) -> bytes:
    """A server frame for the pair's client, any element overridden, correctly tagged."""
    mac = isinstance(pair.client.credential, MACCredential)
    if secret is None:
        secret = pair.client.credential.frame_key if mac else SERVER_KEY  # type: ignore[union-attr]
    fields = [
        version,
        (4 if mac else 5) if kind is None else kind,
        (pair.client.credential.cid if mac else SERVER_KID) if key_id is None else key_id,
        pair.server.nonce if nonce is None else nonce,
        ctr,
        pair.client.counter if ack is None else ack,
        ts,
        payload,
    ]
    return server_frame(fields, secret)


def assert_refused(pair: Pair, frame: bytes, code: Code) -> None:
    """The client refuses ``frame`` with ``code`` and its server state does not move."""
    before = (pair.client._server_counter, pair.client.acked)
    result = pair.receive(frame)
    assert isinstance(result, Rejected), result
    assert result.code is code, result
    assert (pair.client._server_counter, pair.client.acked) == before


@pytest.fixture(params=SCHEMES[:2], ids=_ids)
def pair(request: pytest.FixtureRequest) -> Pair:
    """A mac or certificate pair whose client sent 3 frames, the server accepted 2."""
    scheme, backend = request.param
    p = Pair(scheme, backend)
    p.accept()
    p.accept()
    p.sign("not delivered yet")
    return p


# -- from_hello (§5.2) ------------------------------------------------------------------


def test_from_hello_reads_the_hello() -> None:
    """The signer keeps the hello's nonce, audience, server time and limits."""
    signer = Signer.from_hello(hello_bytes(window=8), token(), audience=AUDIENCE, now=NOW)
    assert signer.hello == Hello(NONCE, AUDIENCE, NOW_MS, 65536, 8)
    assert signer.nonce == NONCE
    assert (signer.counter, signer.seq, signer.acked) == (0, 0, 0)
    assert len(signer.stream) == 16


def test_from_hello_refuses_another_audience() -> None:
    """A hello naming another audience than the one the client meant is audience_mismatch."""
    with pytest.raises(Rejected) as exc:
        Signer.from_hello(
            hello_bytes(aud="wss://evil.example.test"), token(), audience=AUDIENCE, now=NOW
        )
    assert exc.value.code is Code.AUDIENCE_MISMATCH


@pytest.mark.parametrize(
    ("data", "code"),
    [
        pytest.param(b"", Code.MALFORMED, id="empty"),
        pytest.param(b"\xc1", Code.MALFORMED, id="garbage"),
        pytest.param(hello_bytes() + b"\x00", Code.MALFORMED, id="trailing byte"),
        pytest.param(hello_bytes(version=2), Code.UNSUPPORTED_VERSION, id="version 2"),
        pytest.param(hello_bytes(kind=4), Code.MALFORMED, id="kind 4"),
        pytest.param(hello_bytes(kind="3"), Code.MALFORMED, id="kind as str"),
        pytest.param(
            hello_bytes()[:-1].replace(b"\x97", b"\x96", 1), Code.MALFORMED, id="6 elements"
        ),
        pytest.param(hello_bytes(nonce=NONCE[:63]), Code.MALFORMED, id="nonce of 63 bytes"),
        pytest.param(hello_bytes(aud=""), Code.MALFORMED, id="empty audience"),
        pytest.param(hello_bytes(time=-1), Code.MALFORMED, id="negative time"),
        pytest.param(hello_bytes(max_frame="big"), Code.MALFORMED, id="max_frame as str"),
        pytest.param(hello_bytes(window=None), Code.MALFORMED, id="window nil"),
    ],
)
def test_from_hello_refuses_a_malformed_hello(data: bytes, code: Code) -> None:
    """A hello that is not §5.2's shape is refused with malformed or unsupported_version."""
    with pytest.raises(Rejected) as exc:
        Signer.from_hello(data, token(), audience=AUDIENCE, now=NOW)
    assert exc.value.code is code


def test_hello_round_trips() -> None:
    """encode_hello and decode_hello are inverse."""
    hello = Hello(NONCE, AUDIENCE, NOW_MS, 1234, 64)
    assert decode_hello(encode_hello(hello)) == hello


# -- construction ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        pytest.param({"stream": b"short"}, id="stream of 5 bytes"),
        pytest.param({"stream": "s" * 16}, id="stream as str"),
        pytest.param({"seq": -1}, id="seq -1"),
        pytest.param({"seq": 2**64 - 1}, id="seq 2**64-1"),
        pytest.param({"seq": "1"}, id="seq as str"),
        pytest.param({"seq": True}, id="seq bool"),
    ],
)
def test_constructor_refuses_bad_stream_or_seq(kwargs: dict[str, object]) -> None:
    """A stream id is 16 bytes; the starting seq is 0 to 2**64-2."""
    with pytest.raises(UsageError):
        make_signer(**kwargs)  # type: ignore[arg-type]


def test_constructor_refuses_something_that_is_not_a_credential() -> None:
    """The credential must be a MACCredential or an Ed25519Credential."""
    hello = Hello(NONCE, AUDIENCE, NOW_MS, 65536, 0)
    with pytest.raises(UsageError, match="credential"):
        Signer(token().token, hello, now=NOW)  # type: ignore[arg-type]


def test_repr_hides_secrets() -> None:
    """repr shows the credential's identifiers and counters, not the frame key."""
    signer = make_signer()
    assert repr(signer) == (
        f"Signer(MACCredential(iss={ISSUER!r}, cid='tok-1', sub='alice', exp={int(NOW) + 3600}), "
        "counter=0, acked=0)"
    )


# -- sign (§6.3) -------------------------------------------------------------------------


@pytest.mark.parametrize("scheme", SCHEME_NAMES)
def test_sign_lays_out_the_frame(scheme: Scheme) -> None:
    """The frame carries kind, credential, nonce, counter, ts, stream, seq and payload."""
    p = Pair(scheme)
    frame = unverified_client_frame(p.sign("hi"))
    assert frame.kind == p.kind
    assert frame.credential == p.cred
    assert frame.nonce == p.server.nonce
    assert (frame.counter, frame.timestamp_ms, frame.stream, frame.seq) == (1, NOW_MS, STREAM, 1)
    assert frame.payload == "hi"


def test_mac_tag_is_hmac_of_the_signed_input() -> None:
    """§6.2: tag = HMAC(frame_key, "signedws/v1 client\\0" || lp(aud) || E[:-34])."""
    credential = token()
    data = make_signer(credential).sign("hi", now=NOW)
    signed = b"signedws/v1 client\x00" + len(AUDIENCE).to_bytes(2, "big") + AUDIENCE.encode()
    expected = hmac.new(credential.frame_key.to_bytes(), signed + data[:-34], hashlib.sha256)
    assert data[-34:-32] == b"\xc4\x20"
    assert data[-32:] == expected.digest()


def test_ed25519_signature_covers_the_signed_input() -> None:
    """§6.2: sig = SIGN(client_sk, "signedws/v1 client\\0" || lp(aud) || E[:-66])."""
    data = make_signer(certificate()).sign(b"hi", now=NOW)
    signed = CLIENT_LABEL + length_prefixed(AUDIENCE.encode()) + data[:-66]
    assert data[-66:-64] == b"\xc4\x40"
    assert data[-64:] == CLIENT_KEY.sign(signed)
    CLIENT_KEY.public_key().verify(data[-64:], signed)  # raises if it does not verify


@pytest.mark.parametrize("payload", [1, 1.5, bytearray(b"x"), memoryview(b"x"), ["x"], True])
def test_sign_refuses_other_payload_types(payload: object) -> None:
    """Payloads are str, bytes or None; anything else is a usage error."""
    signer = make_signer()
    with pytest.raises(UsageError, match="payload"):
        signer.sign(payload, now=NOW)  # type: ignore[arg-type]
    assert signer.counter == 0


def test_counter_and_seq_increment() -> None:
    """ctr grows by one per frame; seq per data frame; a control frame has seq 0."""
    signer = make_signer()
    frames = [
        unverified_client_frame(signer.sign(p, now=NOW)) for p in ("a", b"b", None, "", None, "c")
    ]
    assert [f.counter for f in frames] == [1, 2, 3, 4, 5, 6]
    assert [f.seq for f in frames] == [1, 2, 0, 3, 0, 4]
    assert [f.payload for f in frames] == ["a", b"b", None, "", None, "c"]
    assert (signer.counter, signer.seq) == (6, 4)


def test_resent_message_keeps_its_seq() -> None:
    """§7.3: sign(seq=n) re-signs message n; the stream's own numbering does not move."""
    signer = make_signer(seq=10)
    assert unverified_client_frame(signer.sign("again", now=NOW, seq=7)).seq == 7
    assert signer.seq == 10
    assert unverified_client_frame(signer.sign("new", now=NOW)).seq == 11
    assert unverified_client_frame(signer.sign(None, now=NOW, seq=3)).seq == 0


@pytest.mark.parametrize("seq", [0, -1, 2**64, "1", True])
def test_sign_refuses_an_invalid_resend_seq(seq: object) -> None:
    """A resent message's seq is 1 to 2**64-1."""
    signer = make_signer()
    with pytest.raises(UsageError, match="seq"):
        signer.sign("x", now=NOW, seq=seq)  # type: ignore[arg-type]


def test_stream_exhausted() -> None:
    """After seq 2**64-1 no new message can be numbered: start a new stream."""
    signer = make_signer(seq=2**64 - 2)
    assert unverified_client_frame(signer.sign("last", now=NOW)).seq == 2**64 - 1
    with pytest.raises(UsageError, match="stream exhausted"):
        signer.sign("one more", now=NOW)
    assert unverified_client_frame(signer.sign(None, now=NOW)).seq == 0


def test_counter_exhausted() -> None:
    """§6.3: counter 2**64 is never sent; the client must reconnect."""
    signer = make_signer()
    signer._counter = 2**64 - 1
    with pytest.raises(UsageError, match="counter exhausted"):
        signer.sign("x", now=NOW)
    signer._counter = 2**64 - 2
    assert unverified_client_frame(signer.sign("x", now=NOW)).counter == 2**64 - 1


@pytest.mark.parametrize("scheme", SCHEME_NAMES)
def test_frame_larger_than_the_hellos_max_frame_is_refused(scheme: Scheme) -> None:
    """sign refuses a frame the server would refuse; the counter and seq are not consumed."""
    p = Pair(scheme, max_frame_size=512)
    with pytest.raises(UsageError, match="exceeds the server's limit of 512"):
        p.sign(b"x" * 512)
    assert (p.client.counter, p.client.seq) == (0, 0)
    message = p.accept(b"x" * 100)
    assert (message.counter, message.seq) == (1, 1)


def test_timestamps_follow_the_hellos_server_time() -> None:
    """ts is the client clock corrected by the offset to the hello's server time (§5.2)."""
    p = Pair("mac")
    behind = Signer.from_hello(
        p.server.hello, token(), audience=AUDIENCE, now=NOW - 100, stream=STREAM
    )
    frame = behind.sign("late clock", now=NOW - 100 + 5)
    assert unverified_client_frame(frame).timestamp_ms == NOW_MS + 5000
    p.clock.advance(5)
    assert isinstance(p.deliver(frame), Message)  # the server sees no skew at all
    ahead = Signer.from_hello(p.server.hello, token(), audience=AUDIENCE, now=NOW + 3600)
    assert unverified_client_frame(ahead.sign("x", now=NOW + 3601)).timestamp_ms == NOW_MS + 1000
    # A clock so far behind that the corrected time would be negative stamps 0.
    assert unverified_client_frame(ahead.sign("x", now=0)).timestamp_ms == 0


# -- refresh (§4.5) ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("before", "after"),
    [
        pytest.param(token(), token(cid="tok-2"), id="token to token"),
        pytest.param(certificate(), certificate(cid="cert-2"), id="certificate to certificate"),
        pytest.param(key_reference(), certificate(), id="key reference to certificate"),
        pytest.param(certificate(), key_reference(), id="certificate to key reference"),
    ],
)
def test_refresh_same_scheme_issuer_and_subject(
    before: MACCredential | Ed25519Credential, after: MACCredential | Ed25519Credential
) -> None:
    """A refreshed credential of the same scheme, issuer and subject signs the next frames."""
    signer = make_signer(before)
    signer.sign("old", now=NOW)
    signer.refresh(after)
    assert signer.credential is after
    frame = unverified_client_frame(signer.sign("new", now=NOW))
    assert frame.credential == (
        after.token if isinstance(after, MACCredential) else after.credential
    )
    assert frame.counter == 2


@pytest.mark.parametrize(
    ("before", "after", "match"),
    [
        pytest.param(token(), token(subject="mallory"), "issuer and subject", id="other subject"),
        pytest.param(
            token(),
            token(issuer=Issuer("https://other.example.test", "k", HMACKey(b"\x06" * 32))),
            "issuer and subject",
            id="other issuer",
        ),
        pytest.param(
            certificate(), certificate(subject="mallory"), "issuer and subject", id="cert subject"
        ),
        pytest.param(
            key_reference(),
            key_reference(iss="https://other.example.test"),
            "issuer and subject",
            id="key reference of another issuer",
        ),
    ],
)
def test_refresh_refuses_another_principal(
    before: MACCredential | Ed25519Credential,
    after: MACCredential | Ed25519Credential,
    match: str,
) -> None:
    """A credential the server would refuse (credential_mismatch) is refused locally."""
    signer = make_signer(before)
    with pytest.raises(UsageError, match=match):
        signer.refresh(after)
    assert signer.credential is before


@pytest.mark.parametrize(
    ("before", "after"),
    [
        pytest.param(token(), certificate(), id="token to certificate"),
        pytest.param(certificate(), token(), id="certificate to token"),
    ],
)
def test_refresh_may_change_the_scheme(
    before: MACCredential | Ed25519Credential, after: MACCredential | Ed25519Credential
) -> None:
    """SPEC.md §4.5: a refresh may change the scheme. The next frame is of the new
    kind; server frames of both schemes pass step 2 of §7.2 from then on (here they
    fail later steps, which shows they got past the scheme check)."""
    signer = make_signer(before)
    signer.refresh(after)
    assert signer.credential is after
    frame = unverified_client_frame(signer.sign("x", now=NOW))
    mac_after = isinstance(after, MACCredential)
    assert frame.kind == (KIND_CLIENT_MAC if mac_after else KIND_CLIENT_ED25519)
    for kind in (KIND_SERVER_MAC, KIND_SERVER_ED25519):
        size = 32 if kind == KIND_SERVER_MAC else 64
        other = encode([1, kind, "k", bytes(64), 1, 0, 0, None, bytes(size)])
        with pytest.raises(Rejected) as info:
            signer.verify(other)
        assert info.value.code is Code.NONCE_MISMATCH


def test_server_frames_under_old_frame_keys_verify_for_a_while() -> None:
    """Server frames under a refreshed-away cid verify until KEPT_FRAME_KEYS refreshes later."""
    p = Pair("mac")
    p.accept()
    old = p.client.credential
    assert isinstance(old, MACCredential)
    counter = 0

    def old_frame() -> bytes:
        nonlocal counter
        counter += 1
        return reply_to(p, key_id=old.cid, secret=old.frame_key, ctr=counter, ack=1)

    for n in range(1, KEPT_FRAME_KEYS):
        p.client.refresh(token(cid=f"tok-r{n}"))
        assert isinstance(p.receive(old_frame()), ServerMessage), n
    p.client.refresh(token(cid="tok-last"))
    result = p.receive(old_frame())
    assert isinstance(result, Rejected)
    assert result.code is Code.UNKNOWN_KEY


def test_server_frames_follow_the_refreshed_credential() -> None:
    """Once a frame under the new token is accepted, server frames use its cid and verify."""
    p = Pair("mac")
    p.accept()
    p.client.refresh(token(cid="tok-2"))
    p.accept()
    frame = sent_frame(p.server, "hi", now=NOW)
    assert msgpack.unpackb(frame)[2] == "tok-2"
    assert isinstance(p.receive(frame), ServerMessage)


# -- verify server frames (§7.2) -----------------------------------------------------------


def test_valid_server_frame_is_delivered(pair: Pair) -> None:
    """A server frame returns counter, ack, payload and the server's timestamp."""
    message = pair.receive(reply_to(pair, ctr=1, ack=2, ts=NOW_MS + 7, payload=b"data"))
    assert message == ServerMessage(counter=1, ack=2, payload=b"data", timestamp_ms=NOW_MS + 7)
    assert pair.client.acked == 2


def test_oversized_server_frame_is_frame_too_large(pair: Pair) -> None:
    """§7.2 step 1: server frames are bounded (1 MiB by default) before decoding."""
    assert_refused(pair, b"\xc1" * (DEFAULT_MAX_SERVER_FRAME_SIZE + 1), Code.FRAME_TOO_LARGE)
    big = reply_to(pair, payload=bytes(DEFAULT_MAX_SERVER_FRAME_SIZE))
    assert_refused(pair, big, Code.FRAME_TOO_LARGE)


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        pytest.param({"version": 2}, Code.UNSUPPORTED_VERSION, id="version 2"),
        pytest.param({"version": "1"}, Code.UNSUPPORTED_VERSION, id="version as str"),
        pytest.param({"ctr": 0}, Code.MALFORMED, id="ctr 0"),
        pytest.param({"ctr": -1}, Code.MALFORMED, id="ctr -1"),
        pytest.param({"ack": "2"}, Code.MALFORMED, id="ack as str"),
        pytest.param({"ts": None}, Code.MALFORMED, id="ts nil"),
        pytest.param({"kind": 1}, Code.MALFORMED, id="client kind"),
        pytest.param({"kind": 3}, Code.MALFORMED, id="hello kind"),
        pytest.param({"key_id": ""}, Code.MALFORMED, id="empty key_id"),
        pytest.param({"key_id": b"tok-1"}, Code.MALFORMED, id="key_id as bin"),
        pytest.param({"nonce": bytes(63)}, Code.MALFORMED, id="nonce of 63 bytes"),
        pytest.param({"payload": 7}, Code.MALFORMED, id="payload int"),
    ],
)
def test_malformed_server_frame_is_refused(
    pair: Pair, changes: dict[str, object], code: Code
) -> None:
    """§7.2 step 1: canonical decoding, version 1 and §7.1's shape."""
    assert_refused(pair, reply_to(pair, **changes), code)  # type: ignore[arg-type]
    assert isinstance(pair.receive(reply_to(pair)), ServerMessage)


@pytest.mark.parametrize("data", [b"", b"\xc1", b"\x90", msgpack.packb([1] * 8)])
def test_garbage_server_frame_is_refused(pair: Pair, data: bytes) -> None:
    """§7.2 step 1: bytes that are not a server frame are malformed (or unsupported)."""
    result = pair.receive(data)
    assert isinstance(result, Rejected)
    assert result.code is Code.MALFORMED


def test_server_frame_with_a_wrong_tag_size_is_malformed(pair: Pair) -> None:
    """§7.1: the tag is 32 bytes for kind 4 and 64 for kind 5."""
    frame = reply_to(pair)
    fields = msgpack.unpackb(frame)
    fields[8] = bytes(96 - len(fields[8]))
    assert_refused(pair, msgpack.packb(fields, use_bin_type=True), Code.MALFORMED)


def test_server_frame_of_the_other_scheme_is_scheme_mismatch(pair: Pair) -> None:
    """§7.2 step 2: kind 4 for mac clients, 5 for ed25519 clients."""
    mac = pair.scheme == "mac"
    other = reply_to(
        pair,
        kind=5 if mac else 4,
        key_id=SERVER_KID if mac else "cert-1",
        secret=SERVER_KEY if mac else HMACKey(b"\x01" * 32),
    )
    assert_refused(pair, other, Code.SCHEME_MISMATCH)


def test_server_frame_for_another_connection_is_nonce_mismatch(pair: Pair) -> None:
    """§7.2 step 3: the frame's nonce must be the connection nonce."""
    assert_refused(pair, reply_to(pair, nonce=bytes(64)), Code.NONCE_MISMATCH)


def test_server_frame_counter_must_increase(pair: Pair) -> None:
    """§7.2 step 4: ctr > Hs; a repeated or older server frame is a replay."""
    first = reply_to(pair, ctr=1)
    third = reply_to(pair, ctr=3)
    assert isinstance(pair.receive(third), ServerMessage)
    assert_refused(pair, third, Code.REPLAY)
    assert_refused(pair, first, Code.REPLAY)
    assert isinstance(pair.receive(reply_to(pair, ctr=4)), ServerMessage)


def test_ack_above_the_clients_counter_is_ack_invalid(pair: Pair) -> None:
    """§7.2 step 5: the server cannot acknowledge a counter the client never signed."""
    assert pair.client.counter == 3
    assert_refused(pair, reply_to(pair, ack=4), Code.ACK_INVALID)
    assert isinstance(pair.receive(reply_to(pair, ack=3)), ServerMessage)


def test_ack_below_an_earlier_ack_is_ack_invalid(pair: Pair) -> None:
    """§7.2 step 5: acknowledgements never go backwards."""
    assert isinstance(pair.receive(reply_to(pair, ctr=1, ack=2)), ServerMessage)
    assert_refused(pair, reply_to(pair, ctr=2, ack=1), Code.ACK_INVALID)
    assert isinstance(pair.receive(reply_to(pair, ctr=2, ack=2)), ServerMessage)
    assert pair.client.acked == 2


def test_server_frame_under_an_unknown_key_is_unknown_key(pair: Pair) -> None:
    """§7.2 step 6: key_id must name a frame key the client holds or a server key."""
    assert_refused(pair, reply_to(pair, key_id="nobody"), Code.UNKNOWN_KEY)


def test_server_frame_with_a_bad_tag_is_refused(pair: Pair) -> None:
    """§7.2 step 7: bad_tag (mac) or bad_signature (ed25519); then a good frame passes."""
    code = Code.BAD_TAG if pair.scheme == "mac" else Code.BAD_SIGNATURE
    frame = reply_to(pair, ctr=5, ack=3)
    for bit in (len(frame) * 8 - 1, len(frame) * 8 - 200):
        assert_refused(pair, flip_bit(frame, bit), code)
    wrong_key = HMACKey(b"\x09" * 32) if pair.scheme == "mac" else Ed25519PrivateKey(b"\x09" * 32)
    assert_refused(pair, reply_to(pair, ctr=5, ack=3, secret=wrong_key), code)
    size = 32 if pair.scheme == "mac" else 64
    tampered = reply_to(pair, ctr=5, ack=3, payload="server sayz")
    assert_refused(pair, tampered[:-size] + frame[-size:], code)
    assert isinstance(pair.receive(reply_to(pair, ctr=2, ack=3)), ServerMessage)


def test_client_frame_reflected_to_the_client_is_refused() -> None:
    """§7.1: a client frame echoed back is not a server frame."""
    p = Pair("mac")
    result = p.receive(p.sign("echo"))
    assert isinstance(result, Rejected)
    assert result.code is Code.MALFORMED


def test_server_frame_checks_run_in_order(pair: Pair) -> None:
    """§7.2: the first failing step wins (nonce before replay before ack before tag)."""
    assert isinstance(pair.receive(reply_to(pair, ctr=2, ack=1)), ServerMessage)
    bad = HMACKey(b"\x09" * 32) if pair.scheme == "mac" else Ed25519PrivateKey(b"\x09" * 32)
    assert_refused(
        pair, reply_to(pair, nonce=bytes(64), ctr=1, ack=0, secret=bad), Code.NONCE_MISMATCH
    )
    assert_refused(pair, reply_to(pair, ctr=1, ack=0, secret=bad), Code.REPLAY)
    assert_refused(pair, reply_to(pair, ctr=3, ack=0, secret=bad), Code.ACK_INVALID)
    assert_refused(pair, reply_to(pair, ctr=3, ack=2, key_id="x", secret=bad), Code.UNKNOWN_KEY)


@pytest.mark.parametrize(("scheme", "backend"), SCHEMES, ids=[_ids(s) for s in SCHEMES])
def test_server_session_frames_verify(scheme: Scheme, backend: BackendName) -> None:
    """Frames from a real ServerSession verify at the client, with increasing counters."""
    p = Pair(scheme, backend)
    p.accept()
    first = p.reply("one")
    p.accept()
    second = p.reply(None)
    assert first == ServerMessage(1, 1, "one", NOW_MS)
    assert second == ServerMessage(2, 2, None, NOW_MS)
    assert p.client.acked == 2


def test_subject_is_unknown_to_a_key_reference_client() -> None:
    """A key reference names no subject; the client cannot check it, the server binds it."""
    p = Pair("keyref")
    assert p.accept().subject == SUBJECT


def test_a_resend_above_the_streams_numbering_moves_it_forward() -> None:
    """After sign(seq=n) with n above seq, new messages are numbered after n, never below."""
    signer = make_signer(seq=3)
    assert unverified_client_frame(signer.sign("resent", now=NOW, seq=9)).seq == 9
    assert signer.seq == 9
    assert unverified_client_frame(signer.sign("new", now=NOW)).seq == 10


def test_refresh_from_a_key_reference_learns_the_subject() -> None:
    """A key reference carries no subject; a certificate refreshed to sets it for later checks."""
    signer = make_signer(key_reference())
    signer.refresh(certificate())
    with pytest.raises(UsageError, match="issuer and subject"):
        signer.refresh(certificate(subject="mallory"))
