"""Broadcast frames (SPEC.md §14): every case of vectors/broadcast.json, and the
behaviour of `signedws.broadcast` with real server sessions and signers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Final

import msgpack
import pytest
from helpers import AUDIENCE, SERVER_KEY, SERVER_KID, Pair, handle, seeded_random, sent_frame
from hypothesis import given, settings
from hypothesis import strategies as st

from signedws import broadcast
from signedws.broadcast import Broadcast, Broadcaster, Topics
from signedws.client import ClientSession, PayloadReceived, ServerRejected
from signedws.errors import Code, Rejected, UsageError
from signedws.keys import Ed25519PrivateKey, Ed25519PublicKey, HMACKey
from signedws.receive import verify_server_frame
from signedws.server import ServerKey
from signedws.signer import Signer

VECTORS: Final = json.loads(
    (Path(__file__).resolve().parents[1] / "vectors" / "broadcast.json").read_text("utf-8")
)
CASES: Final = VECTORS["cases"]


def _payload(value: dict[str, str]) -> str | bytes:
    return value["str"] if "str" in value else bytes.fromhex(value["bin"])


def _broadcast(case: dict[str, Any]) -> Broadcast:
    return Broadcast(
        case["topic"],
        case["tseq"],
        _payload(case["payload"]),
        audience=VECTORS["audience"],
        now=case["ts"] / 1000,
    )


def _check(case: dict[str, Any], topics: Topics) -> broadcast.BroadcastMessage:
    client = VECTORS["clients"][case["client"]]
    return broadcast.check(
        bytes.fromhex(case["frame"]),
        audience=VECTORS["audience"],
        nonce=bytes.fromhex(case["nonce"]),
        server_counter=case["hs"],
        mac=client["scheme"] == "mac",
        frame_keys={
            cid: HMACKey.from_bytes(bytes.fromhex(k))
            for cid, k in client.get("frame_keys", {}).items()
        },
        server_keys={
            kid: Ed25519PublicKey.from_bytes(bytes.fromhex(k))
            for kid, k in client.get("server_keys", {}).items()
        },
        topics=topics,
    )


@pytest.mark.parametrize(
    "case", [c for c in CASES if c["kind"] == "body"], ids=lambda c: c["name"]
)
def test_body_vector(case: dict[str, Any]) -> None:
    made = _broadcast(case)
    assert made.body.hex() == case["body"]
    assert made.body_hash.hex() == case["body_hash"]
    parsed = broadcast.parse_body(made.body)
    assert (parsed.topic, parsed.tseq, parsed.timestamp_ms) == (
        case["topic"],
        case["tseq"],
        case["ts"],
    )
    assert parsed.payload == _payload(case["payload"])


@pytest.mark.parametrize(
    "case", [c for c in CASES if c["kind"] == "batch"], ids=lambda c: c["name"]
)
def test_batch_vector(case: dict[str, Any]) -> None:
    made = _broadcast(case)
    recipients = case["recipients"]
    for r in recipients:
        assert made.binding(bytes.fromhex(r["nonce"]), r["ctr"]).hex() == r["binding"]
    if case["scheme"] == "mac":
        frames = [
            made.mac_frame(
                bytes.fromhex(r["nonce"]),
                r["ctr"],
                r["key_id"],
                HMACKey.from_bytes(bytes.fromhex(r["frame_key"])),
            )
            for r in recipients
        ]
    else:
        key = ServerKey(case["key_id"], Ed25519PrivateKey.from_bytes(bytes.fromhex(case["seed"])))
        frames = made.ed25519_frames(
            [(bytes.fromhex(r["nonce"]), r["ctr"]) for r in recipients], key
        )
        for r in recipients:
            root = broadcast.fold(bytes.fromhex(r["leaf"]), bytes.fromhex(r["path"]))
            assert root.hex() == case["root"]
    assert [f.hex() for f in frames] == [r["frame"] for r in recipients]


@pytest.mark.parametrize(
    "case", [c for c in CASES if c["kind"] == "verify"], ids=lambda c: c["name"]
)
def test_verify_vector(case: dict[str, Any]) -> None:
    topics = Topics(case["marks"])
    expected = case["expected"]
    if "reject" in expected:
        with pytest.raises(Rejected) as info:
            _check(case, topics)
        assert info.value.code.id == expected["reject"]
        assert {t: topics.mark(t) for t in topics} == case["marks"]  # nothing changed
        return
    message = _check(case, topics)
    accept = expected["accept"]
    assert message == broadcast.BroadcastMessage(
        accept["counter"],
        accept["topic"],
        accept["tseq"],
        accept["missed"],
        _payload(accept["payload"]),
        accept["ts"],
    )
    topics.commit(message)
    assert {t: topics.mark(t) for t in topics} == accept["marks"]


def test_vectors_cover_every_scheme_and_code() -> None:
    codes = {c["expected"]["reject"] for c in CASES if "reject" in c.get("expected", {})}
    assert codes == {
        "bad_signature",
        "bad_tag",
        "malformed",
        "nonce_mismatch",
        "replay",
        "scheme_mismatch",
        "unknown_key",
        "unsupported_version",
    }


# -- behaviour: server sessions and signers -------------------------------------


def _connected(pair: Pair, seed: bytes, topics: Topics | None = None) -> tuple[Any, Signer]:
    """Another connection of ``pair``'s credential, with one client frame accepted."""
    session = pair.open(seed)
    signer = Signer.from_hello(
        session.hello,
        pair.credential,
        audience=AUDIENCE,
        now=pair.clock.now,
        server_keys={SERVER_KID: SERVER_KEY.public_key()},
        topics=topics,
    )
    handle(session, signer.sign("hi", now=pair.clock.now), now=pair.clock.now)
    return session, signer


@pytest.mark.parametrize("scheme", ["mac", "certificate", "keyref"])
def test_frames_reach_every_connection_and_share_the_server_counter(scheme: str) -> None:
    pair = Pair(scheme)  # type: ignore[arg-type]
    conns = [_connected(pair, bytes([i])) for i in range(5)]
    # One connection already got an ordinary server frame: counter 1.
    first = sent_frame(conns[0][0], "unicast", now=pair.clock.now)
    assert conns[0][1].verify(first).counter == 1
    fanout = Broadcaster(AUDIENCE, server_key=ServerKey(SERVER_KID, SERVER_KEY), batch_size=2)
    message = fanout.message("room", 1, b"x" * 128, now=pair.clock.now)
    frames = fanout.frames(message, [s for s, _ in conns])
    for (session, signer), frame in zip(conns, frames, strict=True):
        assert frame is not None
        got = signer.verify_broadcast(frame)
        assert (got.topic, got.tseq, got.payload) == ("room", 1, b"x" * 128)
        # The next ordinary frame continues the counter the broadcast took.
        after = signer.verify(sent_frame(session, "next", now=pair.clock.now))
        assert after.counter == got.counter + 1


def test_a_frame_for_one_connection_is_refused_on_another() -> None:
    pair = Pair("certificate")
    (s1, _c1), (s2, c2) = _connected(pair, b"1"), _connected(pair, b"2")
    fanout = Broadcaster(AUDIENCE, server_key=ServerKey(SERVER_KID, SERVER_KEY))
    f1, f2 = fanout.frames(fanout.message("room", 3, "m", now=0), [s1, s2])
    assert f1 is not None
    assert f2 is not None
    with pytest.raises(Rejected) as info:
        c2.verify_broadcast(f1)
    assert info.value.code is Code.NONCE_MISMATCH
    rebound = msgpack.unpackb(f1)
    rebound[3] = c2.nonce
    with pytest.raises(Rejected) as info:
        c2.verify_broadcast(msgpack.packb(rebound))
    assert info.value.code is Code.BAD_SIGNATURE
    assert c2.verify_broadcast(f2).tseq == 3


def _send(session: Any, tseq: int, payload: str = "m") -> bytes:
    fanout = Broadcaster(AUDIENCE, cache_size=1)
    frame = fanout.frames(fanout.message("t", tseq, payload, now=0), [session])[0]
    assert frame is not None
    return frame


def test_topic_marks_refuse_a_replayed_tseq_and_report_gaps_across_reconnects() -> None:
    pair = Pair("mac")
    topics = Topics()
    session, signer = _connected(pair, b"1", topics)
    got = [signer.verify_broadcast(_send(session, n)) for n in (1, 2, 5)]
    assert [m.missed for m in got] == [0, 0, 2]
    with pytest.raises(Rejected) as info:
        signer.verify_broadcast(_send(session, 5, "again"))
    assert info.value.code is Code.REPLAY
    assert signer.topics.mark("t") == 5
    # A new connection of the same client keeps the marks.
    session2, signer2 = _connected(pair, b"2", topics)
    with pytest.raises(Rejected) as info:
        signer2.verify_broadcast(_send(session2, 4))
    assert info.value.code is Code.REPLAY
    assert signer2.verify_broadcast(_send(session2, 7)).missed == 1
    assert topics.mark("t") == 7


def test_frames_skip_sessions_that_cannot_be_sent_to() -> None:
    pair = Pair("certificate")
    fresh = pair.open(b"fresh")  # no client frame accepted yet
    ed_session, _ = _connected(pair, b"1")
    mac_pair = Pair("mac")
    mac_session, mac_signer = _connected(mac_pair, b"2")
    fanout = Broadcaster(AUDIENCE)  # no server key
    message = fanout.message("t", 1, "m", now=0)
    frames = fanout.frames(message, [fresh, ed_session, mac_session])
    assert frames[0] is None
    assert frames[1] is None
    assert frames[2] is not None
    assert mac_signer.verify_broadcast(frames[2]).counter == 1
    # Skipped sessions took no counter.
    assert ed_session.claim_counter() == 1
    with pytest.raises(UsageError):
        fresh.claim_counter()
    with pytest.raises(UsageError):
        fanout.frames(Broadcast("t", 1, "m", audience="other", now=0), [mac_session])
    with pytest.raises(UsageError):
        message.ed25519_frames([], ServerKey(SERVER_KID, SERVER_KEY))


def test_tree_paths_fold_to_one_root_for_every_batch_size() -> None:
    key = ServerKey(SERVER_KID, SERVER_KEY)
    message = Broadcast("t", 1, "m", audience=AUDIENCE, now=0)
    random = seeded_random(b"tree")
    for size in (1, 2, 3, 4, 5, 7, 8, 9, 16, 17, 33):
        recipients = [(random(64), i + 1) for i in range(size)]
        frames = message.ed25519_frames(recipients, key)
        roots = set()
        for (nonce, ctr), frame in zip(recipients, frames, strict=True):
            fields = msgpack.unpackb(frame)
            path = fields[6]
            assert len(path) // 32 <= max(1, (size - 1).bit_length())
            leaf = broadcast._sha256(b"\x00" + message.binding(nonce, ctr)).digest()
            roots.add(broadcast.fold(leaf, path))
            signed = broadcast.ROOT_LABEL + len(AUDIENCE).to_bytes(2, "big") + AUDIENCE.encode()
            SERVER_KEY.public_key().verify(fields[7], signed + broadcast.fold(leaf, path))
        assert len(roots) == 1


def test_broadcast_refuses_bad_arguments() -> None:
    bad: list[tuple[object, object, object]] = [
        ("", 1, "m"),
        ("t" * 256, 1, "m"),
        ("t", 0, "m"),
        ("t", 2**64, "m"),
        ("t", True, "m"),
        ("t", 1, None),
        ("t", 1, 5),
    ]
    for args in bad:
        with pytest.raises(UsageError):
            Broadcast(*args, audience=AUDIENCE, now=0)  # type: ignore[arg-type]
    with pytest.raises(UsageError):
        Broadcast("t", 1, "m", audience="", now=0)
    for kwargs in [{"batch_size": 0}, {"batch_size": 2**32 + 1}, {"cache_size": 0}]:
        with pytest.raises(UsageError):
            Broadcaster(AUDIENCE, **kwargs)  # type: ignore[arg-type]
    with pytest.raises(UsageError):
        Broadcaster("")
    assert repr(Broadcast("t", 1, "m", audience=AUDIENCE, now=0)).startswith(
        "Broadcast(topic='t', tseq=1"
    )


def test_a_fleet_sends_one_body_whatever_each_node_clock_says() -> None:
    """A body made from the publisher's ``timestamp_ms`` is the same on every
    node (§14.1), and carries that time; a bad time is refused."""
    one = Broadcaster(AUDIENCE).message("t", 3, "m", now=10.0, timestamp_ms=1_733_500_000_123)
    two = Broadcast("t", 3, "m", audience=AUDIENCE, now=99.0, timestamp_ms=1_733_500_000_123)
    assert one.body == two.body
    assert broadcast.parse_body(one.body).timestamp_ms == 1_733_500_000_123
    assert broadcast.parse_body(Broadcast("t", 1, "m", audience=AUDIENCE, now=2.5).body) == (
        broadcast.BroadcastBody("t", 1, 2500, "m")
    )
    for bad in (-1, 2**64, 1.5, True):
        with pytest.raises(UsageError):
            Broadcast("t", 1, "m", audience=AUDIENCE, now=0, timestamp_ms=bad)  # type: ignore[arg-type]


def _mac_frame(**override: object) -> bytes:
    case = next(c for c in CASES if c["name"] == "mac_first_of_topic")
    fields: list[object] = msgpack.unpackb(bytes.fromhex(case["frame"]))
    for index, value in override.items():
        fields[int(index[1:])] = value
    return bytes(msgpack.packb(fields))


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (msgpack.packb([]), Code.MALFORMED),
        (msgpack.packb(5), Code.MALFORMED),
        (_mac_frame(f2=7), Code.MALFORMED),
        (_mac_frame(f2=""), Code.MALFORMED),
        (_mac_frame(f3=None), Code.MALFORMED),
        (_mac_frame(f4=-1), Code.MALFORMED),
        (_mac_frame(f6="p"), Code.MALFORMED),
        (_mac_frame(f7="t"), Code.MALFORMED),
        (_mac_frame(f5=msgpack.packb([])), Code.MALFORMED),
        (_mac_frame(f5=msgpack.packb([1, 8, "t", 1, -1, "p"])), Code.MALFORMED),
        (_mac_frame(f5=msgpack.packb(["1"])), Code.UNSUPPORTED_VERSION),
        (_mac_frame(f0="1"), Code.UNSUPPORTED_VERSION),
    ],
)
def test_parse_frame_refuses_each_bad_field(data: bytes, code: Code) -> None:
    with pytest.raises(Rejected) as info:
        broadcast.parse_frame(data)
    assert info.value.code is code


def test_parse_frame_refuses_a_frame_over_the_limit_before_decoding() -> None:
    with pytest.raises(Rejected) as info:
        broadcast.parse_frame(b"\x00" * 101, max_size=100)
    assert info.value.code is Code.FRAME_TOO_LARGE


def test_topics_are_bounded_and_validated() -> None:
    topics = Topics({"a": 1, "b": 2}, max_topics=2)
    assert len(topics) == 2
    assert list(topics) == ["a", "b"]
    topics.commit(broadcast.BroadcastMessage(1, "c", 4, 0, "m", 0))
    assert list(topics) == ["b", "c"]
    assert topics.mark("a") is None
    assert repr(topics) == "Topics(2 topics)"
    for bad in [{"a": 0}, {"a": 2**64}, {"a": "1"}]:
        with pytest.raises(UsageError):
            Topics(bad)  # type: ignore[arg-type]
    with pytest.raises(UsageError):
        Topics(max_topics=0)


def test_broadcaster_keeps_a_bounded_context_per_frame_key() -> None:
    # Three servers' verifiers: three frame key objects, one more than the cache.
    conns = [_connected(Pair("mac"), bytes([i])) for i in range(3)]
    fanout = Broadcaster(AUDIENCE, cache_size=2)
    for tseq in (1, 2, 3):
        frames = fanout.frames(fanout.message("t", tseq, "m", now=0), [s for s, _ in conns])
        for (_, signer), frame in zip(conns, frames, strict=True):
            assert frame is not None
            assert signer.verify_broadcast(frame).tseq == tseq
        assert repr(fanout) == f"Broadcaster(audience={AUDIENCE!r}, contexts=2)"


@pytest.mark.parametrize(
    "name", ["mac_first_of_topic", "batch_ed25519_three_verify_r1"], ids=lambda n: n
)
def test_every_bit_flip_of_a_valid_frame_is_refused(name: str) -> None:
    """Flipping any one bit of an accepted frame (nonce, counter, key id, body,
    path, tag or structure) makes it refused with a typed rejection."""
    case = next(c for c in CASES if c["name"] == name)
    frame = bytes.fromhex(case["frame"])
    _check(case, Topics(case["marks"]))  # the original is accepted
    codes = set()
    for i in range(len(frame)):
        for bit in range(8):
            flipped = bytearray(frame)
            flipped[i] ^= 1 << bit
            with pytest.raises(Rejected) as info:
                _check({**case, "frame": flipped.hex()}, Topics(case["marks"]))
            codes.add(info.value.code)
    assert Code.MALFORMED in codes
    assert Code.NONCE_MISMATCH in codes


@given(st.binary(max_size=600))
@settings(max_examples=300, deadline=None)
def test_arbitrary_bytes_get_a_typed_rejection(data: bytes) -> None:
    case = next(c for c in CASES if c["name"] == "mac_first_of_topic")
    with pytest.raises(Rejected):
        _check({**case, "frame": data.hex()}, Topics())


def test_verify_any_routes_by_kind_and_shares_the_counter() -> None:
    pair = Pair("mac")
    session, signer = _connected(pair, b"1")
    fanout = Broadcaster(AUDIENCE)
    first = fanout.frames(fanout.message("t", 1, "b", now=0), [session])[0]
    assert first is not None
    got = signer.verify_any(first)
    assert isinstance(got, broadcast.BroadcastMessage)
    assert (got.counter, got.topic) == (1, "t")
    plain = signer.verify_any(sent_frame(session, "p", now=0))
    assert not isinstance(plain, broadcast.BroadcastMessage)
    assert (plain.counter, plain.payload) == (2, "p")
    # A server frame dressed as a broadcast (kind byte 6) is refused, not delivered.
    with pytest.raises(Rejected) as info:
        signer.verify_any(b"\x98\x01\x06" + sent_frame(session, "q", now=0)[3:])
    assert info.value.code is Code.MALFORMED
    assert signer.topics.mark("t") == 1


def test_the_client_receive_hook_delivers_broadcasts_as_server_frames() -> None:
    """`signedws.receive.verify_server_frame`: a broadcast comes back as a
    server frame with the current ack (its full message to ``on_broadcast``);
    a server frame as itself; a text message and a replay are refused."""
    pair = Pair("ed25519")
    session, signer = _connected(pair, b"2")
    fanout = Broadcaster(AUDIENCE, server_key=ServerKey(SERVER_KID, SERVER_KEY))
    plain = verify_server_frame(signer, sent_frame(session, "p", now=0))
    assert (plain.counter, plain.payload) == (1, "p")
    frame = fanout.frames(fanout.message("t", 5, b"b", now=0), [session])[0]
    assert frame is not None
    heard: list[broadcast.BroadcastMessage] = []
    got = verify_server_frame(signer, frame, on_broadcast=heard.append)
    assert (got.counter, got.ack, got.payload) == (2, signer.acked, b"b")
    assert [(m.topic, m.tseq, m.missed) for m in heard] == [("t", 5, 0)]
    again = fanout.frames(fanout.message("t", 6, "c", now=0), [session])[0]
    assert again is not None
    assert verify_server_frame(signer, again).payload == "c"  # no callback: fine
    for bad, code in [("text", Code.MALFORMED), (frame, Code.REPLAY)]:
        with pytest.raises(Rejected) as info:
            verify_server_frame(signer, bad)
        assert info.value.code is code


@pytest.mark.parametrize("scheme", ["mac", "certificate"])
def test_the_client_session_delivers_broadcasts_and_keeps_topic_marks(scheme: str) -> None:
    """`signedws.client.ClientSession.receive_message` takes broadcast frames
    (kinds 6/7) as protocol: a `PayloadReceived` carrying the
    `BroadcastMessage`, server frames around it on one counter, a replay
    refused (`ServerRejected`), and the topic marks kept across connections
    (a gap after a reconnect is reported as ``missed``)."""
    pair = Pair(scheme)  # type: ignore[arg-type]
    now = pair.clock.now
    fanout = Broadcaster(AUDIENCE, server_key=ServerKey(SERVER_KID, SERVER_KEY))
    client = ClientSession(
        pair.credential,
        audience=AUDIENCE,
        server_keys={SERVER_KID: SERVER_KEY.public_key()},
        keepalive=None,
        ack_timeout=None,
    )

    def connect(seed: bytes) -> Any:
        server = pair.open(seed)
        client.receive_hello(server.data_to_send()[0], now=now)
        for frame in client.data_to_send():
            handle(server, frame, now=now)
        return server

    server = connect(b"1")
    client.receive_message(sent_frame(server, "u1", now=now), now=now)
    frame = fanout.frames(fanout.message("t", 1, "b1", now=now), [server])[0]
    assert frame is not None
    client.receive_message(frame, now=now)
    client.receive_message(sent_frame(server, "u2", now=now), now=now)
    events = client.events_received()
    assert [type(e) for e in events] == [PayloadReceived] * 3
    first, heard, last = events
    assert (first, last) == (PayloadReceived("u1"), PayloadReceived("u2"))
    assert isinstance(heard, PayloadReceived)
    assert heard.payload == "b1"
    assert heard.broadcast is not None
    assert (heard.broadcast.topic, heard.broadcast.tseq, heard.broadcast.missed) == ("t", 1, 0)
    assert client.topics.mark("t") == 1
    client.receive_message(frame, now=now)  # a replay: the connection ends
    (rejected,) = client.events_received()
    assert isinstance(rejected, ServerRejected)
    assert rejected.code is Code.REPLAY
    assert not client.connected
    client.connection_closed(Code.REPLAY.close_code, "", now=now)

    server = connect(b"2")  # another connection (another node): the marks stay
    frame = fanout.frames(fanout.message("t", 3, b"b3", now=now), [server])[0]
    assert frame is not None
    client.receive_message(frame, now=now)
    (event,) = client.events_received()
    assert isinstance(event, PayloadReceived)
    assert event.broadcast is not None
    assert (event.payload, event.broadcast.tseq, event.broadcast.missed) == (b"b3", 3, 1)
    assert client.topics.mark("t") == 3
