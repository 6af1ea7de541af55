"""Tests for signedws.server: the server's per-connection state machine
(SPEC.md §5, §7, §9, §10), pure, under a fake clock: no socket, no event loop,
no sleep. The contract suite (tests/servers) checks that every adapter pumps it."""

from __future__ import annotations

import dataclasses
from typing import Any

import msgpack
import pytest
from helpers import (
    AUDIENCE,
    NOW,
    NOW_MS,
    SCHEMES,
    SERVER_KEY,
    SERVER_KID,
    STREAM,
    Pair,
    Scheme,
    certificate,
    seeded_random,
    token,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from signedws.ed25519 import BackendName
from signedws.envelope import SERVER_LABEL, Hello, decode_hello, length_prefixed
from signedws.errors import Code, InvalidState, Rejected, UsageError
from signedws.keys import Ed25519PrivateKey
from signedws.server import (
    ConnectionRejected,
    MessageReceived,
    PrincipalLimit,
    ServerKey,
    ServerSession,
    State,
)
from signedws.signer import ServerMessage, Signer
from signedws.stream import StreamMarks
from signedws.verifier import Message

KEY = ServerKey(SERVER_KID, SERVER_KEY)


def _ids(param: tuple[str, str]) -> str:
    return "-".join(param)


class Conn:
    """One connection: a session and the client that talks to it, on a
    pair's verifier and clock."""

    def __init__(
        self,
        pair: Pair,
        *,
        seed: bytes = b"nonce",
        credential: Any = None,
        server_key: ServerKey | None = KEY,
        **options: Any,
    ) -> None:
        self.clock = pair.clock
        self.session = ServerSession(
            pair.verifier,
            now=pair.clock.now,
            server_key=server_key,
            random=seeded_random(seed),
            **options,
        )
        assert self.session.data_to_send() == [self.session.hello]
        self.signer = Signer.from_hello(
            self.session.hello,
            pair.credential if credential is None else credential,
            audience=AUDIENCE,
            now=pair.clock.now,
            server_keys={SERVER_KID: SERVER_KEY.public_key()},
            stream=STREAM,
        )

    def frame(self, payload: str | bytes | None = "hi", *, seq: int | None = None) -> bytes:
        return self.signer.sign(payload, now=self.clock.now, seq=seq)

    def receive(self, payload: str | bytes | None = "hi", *, seq: int | None = None) -> list[Any]:
        """The client sends ``payload``; the session's events."""
        self.session.receive_message(self.frame(payload, seq=seq), now=self.clock.now)
        return self.session.events_received()

    def message(self, payload: str | bytes = "hi", *, seq: int | None = None) -> Message:
        """The client sends ``payload``, which must be delivered: its message."""
        (event,) = self.receive(payload, seq=seq)
        assert isinstance(event, MessageReceived)
        return event.message

    def sent(self) -> list[ServerMessage]:
        """The server frames queued since last asked, as the client reads them."""
        return [self.signer.verify(f) for f in self.session.data_to_send()]

    def take(self, message: Message) -> bool:
        return self.session.take_message(message, now=self.clock.now)

    def done(self, message: Message) -> None:
        self.session.message_done(message, now=self.clock.now)

    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)
        self.session.advance_time(self.clock.now)


def rejected(events: list[Any]) -> ConnectionRejected:
    (event,) = events
    assert isinstance(event, ConnectionRejected)
    return event


# -- the hello (§5.2) and construction ------------------------------------------------------


def test_hello_announces_nonce_audience_time_and_limits() -> None:
    """The hello carries the connection nonce, the audience, the server time and
    limits, and is the first thing to send."""
    p = Pair(window=16, max_frame_size=8192)
    hello = decode_hello(p.server.hello)
    assert hello == Hello(p.server.nonce, AUDIENCE, NOW_MS, 8192, 16)
    assert msgpack.unpackb(p.server.hello)[:2] == [1, 3]
    session = ServerSession(p.verifier, now=NOW)
    assert session.data_to_send() == [session.hello]
    assert session.data_to_send() == []


def test_nonce_is_minted_from_the_given_randomness() -> None:
    """Same random source, same nonce; the nonce names the node and the fleet checks it."""
    p = Pair()
    a = p.open(b"seed")
    b = p.open(b"seed")
    c = p.open(b"other seed")
    assert a.nonce == b.nonce != c.nonce
    assert a.verifier_state.nonce == a.nonce
    info = p.verifier.nonce_key.check(a.nonce, now=NOW)
    assert info.expires == int(NOW) + 86400


def test_new_session_state() -> None:
    """Before any client frame: awaiting it, no principal, nothing to send but
    the hello, nothing delivered, and a repr without secrets."""
    session = Pair().server
    assert session.state is State.AWAITING_FIRST_FRAME
    assert session.principal is None
    assert session.can_send is False
    assert session.delivered == 0
    assert session.held is None
    assert session.events_received() == []
    assert session.next_deadline() is None  # no timeouts configured
    assert repr(session) == (
        "ServerSession(state=AWAITING_FIRST_FRAME, principal=None, accepted=0, sent=0)"
    )


@pytest.mark.parametrize("name", ["first_frame_timeout", "idle_timeout", "ack_delay"])
@pytest.mark.parametrize("value", [-1, -0.001, float("nan")])
def test_negative_durations_are_refused(name: str, value: float) -> None:
    """Timeouts and the ack delay are durations: never negative (nor NaN)."""
    with pytest.raises(UsageError, match=name):
        ServerSession(Pair().verifier, now=NOW, **{name: value})


def test_events_are_frozen_slotted_values() -> None:
    """Events are frozen, slotted dataclasses; State is an enum of four."""
    event = ConnectionRejected(Code.REPLAY, "ctr=1")
    for value in (event, MessageReceived(Pair().accept())):
        assert dataclasses.is_dataclass(value)
        assert not hasattr(value, "__dict__")
        # (CPython 3.11's frozen slotted __setattr__ raises TypeError.)
        with pytest.raises((dataclasses.FrozenInstanceError, TypeError)):
            value.detail = "x"  # type: ignore[union-attr,misc]
    assert [s.name for s in State] == ["AWAITING_FIRST_FRAME", "OPEN", "REJECTED", "CLOSED"]


# -- receiving (§6.4) -----------------------------------------------------------------------


def test_a_data_frame_is_one_message_received_event() -> None:
    """A verified data frame opens the connection, binds its principal and is
    one MessageReceived; nothing is sent for it (acks are time-driven)."""
    c = Conn(Pair())
    message = c.message("hello")
    assert (message.subject, message.payload, message.counter, message.seq) == (
        "alice",
        "hello",
        1,
        1,
    )
    assert c.session.state is State.OPEN
    assert c.session.principal == (message.issuer, "alice")
    assert c.session.can_send
    assert c.session.data_to_send() == []


def test_a_control_frame_is_no_event() -> None:
    """A control frame (no payload) opens the connection but delivers nothing."""
    c = Conn(Pair())
    assert c.receive(None) == []
    assert c.session.state is State.OPEN
    assert c.session.delivered == 1


def test_bytes_like_frames_are_verified_as_bytes() -> None:
    """A bytearray (as some libraries give) is verified like bytes."""
    c = Conn(Pair())
    c.session.receive_message(bytearray(c.frame("x")), now=NOW)  # type: ignore[arg-type]
    (event,) = c.session.events_received()
    assert isinstance(event, MessageReceived)
    assert event.message.payload == "x"


def test_text_message_is_malformed() -> None:
    """A text WebSocket message is never a frame: malformed (§6.4)."""
    c = Conn(Pair())
    c.session.receive_message("hi", now=NOW)
    event = rejected(c.session.events_received())
    assert (event.code, event.detail) == (Code.MALFORMED, "text message; frames are binary")
    assert c.session.state is State.REJECTED


@pytest.mark.parametrize("scheme", ["certificate", "keyref"])
def test_ed25519_frame_without_server_key_is_refused_unverified(scheme: Scheme) -> None:
    """§7.1: a server without a server key could never answer an ed25519
    client: its frames are refused with scheme_mismatch, before verification."""
    p = Pair(scheme)
    c = Conn(p, server_key=None)
    frame = c.frame()
    assert not c.session.needs_pool(frame)
    event = rejected(c.receive())
    assert event.code is Code.SCHEME_MISMATCH
    assert "no server_key" in event.detail
    assert c.session.verifier_state.highest == 0  # never verified
    # A pump that verifies it anyway (not routing by needs_pool): refused at
    # accept, and the session can never send on it.
    other = Conn(p, server_key=None, seed=b"other")
    message = other.session.verify(other.frame(), now=NOW)
    assert not other.session.can_send
    with pytest.raises(InvalidState, match="server_key"):
        other.session.send_message("x", now=NOW)
    other.session.accept(message, now=NOW)
    assert rejected(other.session.events_received()).code is Code.SCHEME_MISMATCH
    assert other.session.principal is None


@pytest.mark.parametrize(("scheme", "pool"), [("mac", False), ("certificate", True)])
def test_needs_pool_routes_ed25519_frames(scheme: Scheme, pool: bool) -> None:
    """needs_pool says yes for ed25519 frames (worth a pool thread) only."""
    c = Conn(Pair(scheme))
    assert c.session.needs_pool(c.frame()) is pool
    assert c.session.needs_pool("text") is False
    assert c.session.needs_pool(b"") is False


def test_a_refused_frame_is_one_rejection_then_everything_is_dropped() -> None:
    """The first rejection is one event with the verifier's code; frames after
    it are dropped unverified and change nothing (§9)."""
    p = Pair()
    c = Conn(p)
    c.message("one")
    bad = c.frame("two")
    c.session.receive_message(bad[:-1] + bytes([bad[-1] ^ 1]), now=NOW)
    event = rejected(c.session.events_received())
    assert event.code is Code.BAD_TAG
    highest = c.session.verifier_state.highest
    c.session.receive_message(c.frame("three"), now=NOW)
    c.session.receive_message("text", now=NOW)
    c.session.receive_oversize()
    c.session.accept(Rejected(Code.REPLAY, "x"), now=NOW)
    c.advance(10**6)
    assert c.session.events_received() == []
    assert c.session.verifier_state.highest == highest
    assert c.session.next_deadline() is None
    assert c.session.data_to_send() == []


def test_verify_and_accept_are_receive_message_in_two_halves() -> None:
    """verify (any thread) then accept (in order) give the same events as
    receive_message; accept turns a Rejected into the one rejection."""
    c = Conn(Pair())
    message = c.session.verify(c.frame("a"), now=NOW)
    assert c.session.events_received() == []  # verify alone delivers nothing
    c.session.accept(message, now=NOW)
    assert c.session.events_received() == [MessageReceived(message)]
    with pytest.raises(Rejected) as info:
        c.session.verify(c.frame("b")[:-1], now=NOW)
    c.session.accept(info.value, now=NOW)
    assert rejected(c.session.events_received()).code is info.value.code
    with pytest.raises(Rejected, match="text message"):
        c.session.verify("text", now=NOW)  # type: ignore[arg-type]
    later = c.session.verify(bytearray(c.frame("c")), now=NOW)  # type: ignore[arg-type]
    assert later.payload == "c"


def test_oversize_is_frame_too_large() -> None:
    """A message the library refused for its size is frame_too_large (§9)."""
    c = Conn(Pair(max_frame_size=4096))
    c.session.receive_oversize()
    event = rejected(c.session.events_received())
    assert (event.code, event.detail) == (
        Code.FRAME_TOO_LARGE,
        "message over 4096 bytes (close 1009)",
    )


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.binary(max_size=300), st.text(max_size=5)), max_size=6))
def test_peer_input_never_raises(inputs: list[bytes | str]) -> None:
    """Whatever the peer sends, the session never raises and emits at most one
    rejection; nothing unauthenticated opens the connection."""
    session = ServerSession(Pair().verifier, now=NOW, first_frame_timeout=5.0)
    for data in inputs:
        session.receive_message(data, now=NOW)
    session.advance_time(NOW + 1)
    events = session.events_received()
    assert len(events) <= 1
    assert all(isinstance(e, ConnectionRejected) for e in events)
    assert session.state is not State.OPEN
    assert session.principal is None


# -- the per-principal cap (issue 13) -------------------------------------------------------


def test_principal_limit_refuses_the_connection_over_the_cap() -> None:
    """A principal holding its limit gets server_busy at the next connection's
    first frame; a closed connection gives its place back."""
    p = Pair()
    limit = PrincipalLimit(1)
    first = Conn(p, principals=limit)
    first.message()
    assert limit.held(first.session.principal or ("", "")) == 1
    assert len(limit) == 1
    second = Conn(p, seed=b"2", principals=limit)
    event = rejected(second.receive())
    assert event.code is Code.SERVER_BUSY
    assert "holds 1 connections, limit per principal 1" in event.detail
    assert second.session.principal is None
    second.session.connection_closed()  # was never counted
    assert len(limit) == 1
    first.session.connection_closed()
    first.session.connection_closed()  # idempotent
    assert first.session.state is State.CLOSED
    assert len(limit) == 0
    third = Conn(p, seed=b"3", principals=limit)
    third.message()
    assert repr(limit) == "PrincipalLimit(1, principals=1)"


def test_principal_limit_counts_connections_of_one_principal() -> None:
    """A principal's count goes up and down with its connections."""
    limit = PrincipalLimit(3)
    assert limit.bind(("i", "s")) is None
    assert limit.bind(("i", "s")) is None
    assert limit.held(("i", "s")) == 2
    limit.unbind(("i", "s"))
    assert limit.held(("i", "s")) == 1
    limit.unbind(("i", "s"))
    assert limit.held(("i", "s")) == 0
    assert len(limit) == 0


def test_principal_limit_counts_each_principal_apart() -> None:
    """One principal at its limit does not stop another."""
    p = Pair()
    limit = PrincipalLimit(1)
    Conn(p, principals=limit).message()
    Conn(p, seed=b"2", principals=limit, credential=token(subject="bob")).message()
    assert len(limit) == 2
    assert PrincipalLimit(None).bind(("a", "b")) is None


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "2"])
def test_principal_limit_refuses_bad_limits(bad: Any) -> None:
    """The cap is a positive integer or None."""
    with pytest.raises(UsageError, match="max_connections_per_principal"):
        PrincipalLimit(bad)


def test_closed_session_accepts_nothing() -> None:
    """After connection_closed, input is dropped and nothing is due."""
    c = Conn(Pair(), ack_delay=0.02, idle_timeout=5.0)
    c.session.connection_closed()
    assert c.receive() == []
    c.session.reading(NOW)
    assert c.session.next_deadline() is None


# -- exactly once over resends (§7.3) -------------------------------------------------------


def test_resend_of_a_taken_message_is_dropped_on_another_connection() -> None:
    """Marks are per (iss, sub, stream) and shared by the server's sessions: a
    resend of a message a handler took is dropped (and counts as delivered);
    a resend of one only queued is delivered (issue 13: the mark moves when
    the handler takes the message)."""
    p = Pair()
    marks = StreamMarks()
    a = Conn(p, marks=marks, ack_delay=0.02)
    one, two = a.message("one"), a.message("two")
    assert a.take(one)
    # The connection drops; the client resends both on another one.
    b = Conn(p, seed=b"b", marks=marks, ack_delay=0.02)
    assert b.receive("one", seq=1) == []
    assert b.session.delivered == 1  # the dropped resend is done
    assert b.session.next_deadline() == NOW + 0.02
    (event,) = b.receive("two", seq=2)
    assert event.message.seq == 2
    # Whoever takes it first delivers it; the other is told to skip it.
    assert b.take(event.message)
    assert not a.take(two)
    assert a.session.delivered == 2
    assert marks.mark(one.issuer, "alice", STREAM) == 2


def test_without_marks_resends_are_delivered() -> None:
    """No marks (dedupe off): every resend is a message."""
    p = Pair()
    a = Conn(p)
    a.take(a.message("one"))
    b = Conn(p, seed=b"b")
    assert b.message("one", seq=1).seq == 1


def test_message_done_takes_a_message_not_taken() -> None:
    """message_done on a message never taken moves its mark first; on one
    another connection delivered meanwhile, it only counts it done."""
    p = Pair()
    marks = StreamMarks()
    a = Conn(p, marks=marks)
    b = Conn(p, seed=b"b", marks=marks)
    first = a.message("one")
    resent = b.message("one", seq=1)
    a.done(first)
    assert marks.mark(first.issuer, "alice", STREAM) == 1
    assert a.session.delivered == 1
    b.done(resent)  # delivered by a meanwhile
    assert b.session.delivered == 1
    assert b.session.held is None


# -- acknowledgements mean delivered (§7.3) -------------------------------------------------


def test_ack_covers_only_what_the_application_is_done_with() -> None:
    """The ack stops before the first message held or queued; a control frame
    behind them waits for them; taking the next releases the last."""
    c = Conn(Pair(), ack_delay=0.02)
    one, two = c.message("one"), c.message("two")
    assert c.receive(None) == []  # a control frame, counter 3
    assert c.session.delivered == 0
    assert c.session.next_deadline() is None  # nothing done: no ack due
    c.take(one)
    assert c.session.held == one
    assert c.session.delivered == 0
    c.take(two)  # done with one
    assert c.session.delivered == 1
    c.done(two)
    assert c.session.delivered == 3
    assert c.session.held is None


def test_acks_are_coalesced_within_ack_delay() -> None:
    """The first move of the mark makes an ack due ack_delay later; later moves
    ride on it; at the deadline one pure ack covers them all."""
    c = Conn(Pair(), ack_delay=0.02)
    one, two = c.message("one"), c.message("two")
    c.done(one)
    assert c.session.next_deadline() == NOW + 0.02
    c.clock.advance(0.01)
    c.done(two)
    assert c.session.next_deadline() == NOW + 0.02  # not pushed back
    c.session.advance_time(NOW + 0.019)
    assert c.sent() == []
    c.session.advance_time(NOW + 0.02)
    assert c.sent() == [ServerMessage(counter=1, ack=2, payload=None, timestamp_ms=NOW_MS + 20)]
    assert c.session.next_deadline() is None
    c.advance(1)
    assert c.sent() == []  # nothing new: no second ack


def test_a_frame_the_application_sends_carries_the_ack() -> None:
    """send_message carries the mark; the pure ack it makes unnecessary is
    no longer due."""
    c = Conn(Pair(), ack_delay=0.02)
    c.done(c.message("one"))
    assert c.session.next_deadline() == NOW + 0.02
    c.session.send_message("reply", now=NOW)
    assert c.sent() == [ServerMessage(1, 1, "reply", NOW_MS)]
    assert c.session.next_deadline() is None
    c.advance(1)
    assert c.sent() == []


def test_an_ack_due_stays_due_if_a_frame_covered_only_part() -> None:
    """A frame sent before the mark moved again leaves the later ack due."""
    c = Conn(Pair(), ack_delay=0.02)
    one, two = c.message("one"), c.message("two")
    c.done(one)
    c.session.send_message("x", now=NOW)
    assert [m.ack for m in c.sent()] == [1]
    c.done(two)
    assert c.session.next_deadline() == NOW + 0.02
    c.advance(0.02)
    assert [m.ack for m in c.sent()] == [2]


def test_without_ack_delay_only_sent_frames_carry_acks() -> None:
    """ack_delay None: no pure ack is ever due."""
    c = Conn(Pair(), ack_delay=None)
    c.done(c.message())
    assert c.session.next_deadline() is None
    c.advance(60)
    assert c.sent() == []
    c.session.send_message(b"x", now=c.clock.now)
    assert [m.ack for m in c.sent()] == [1]


def test_flush_ack_sends_a_due_ack_now() -> None:
    """The application returned: a due ack goes now; none is made up."""
    c = Conn(Pair(), ack_delay=0.02)
    c.session.flush_ack(NOW)
    assert c.sent() == []
    c.done(c.message())
    c.session.flush_ack(NOW)
    assert [(m.counter, m.ack) for m in c.sent()] == [(1, 1)]
    assert c.session.next_deadline() is None


def test_ack_never_goes_backwards_with_a_window() -> None:
    """With W > 0, counters may arrive out of order; the ack never decreases."""
    p = Pair(window=8)
    c = Conn(p, ack_delay=0.02)
    early = c.frame("late")
    c.done(c.message("two"))
    c.session.send_message(None, now=NOW)
    assert [m.ack for m in c.sent()] == [2]
    c.session.receive_message(early, now=NOW)
    (event,) = c.session.events_received()
    c.take(event.message)
    c.session.send_message(None, now=NOW)
    assert [m.ack for m in c.sent()] == [2]


def test_a_late_frame_holds_a_due_ack_back() -> None:
    """With W > 0, a late frame queued below the mark holds the ack back: a
    due ack that would not advance is not sent."""
    c = Conn(Pair(window=8), ack_delay=0.02)
    c.done(c.message("one"))
    late = c.frame("two")
    c.session.send_message(None, now=NOW)
    assert [m.ack for m in c.sent()] == [1]
    c.done(c.message("three"))
    assert c.session.next_deadline() == NOW + 0.02
    c.session.receive_message(late, now=NOW)  # counter 2, queued
    assert c.session.delivered == 1
    c.advance(0.02)
    assert c.sent() == []


def test_done_out_of_order_and_twice_is_harmless() -> None:
    """Messages finished out of order keep the mark at the first outstanding;
    finishing one twice changes nothing."""
    c = Conn(Pair())
    one, two = c.message("one"), c.message("two")
    c.take(two)
    c.done(two)
    assert c.session.delivered == 0
    c.done(two)
    assert c.session.delivered == 0
    c.done(one)
    assert c.session.delivered == 2


# -- timeouts (§10) -------------------------------------------------------------------------


def test_first_frame_timeout() -> None:
    """From the hello, first_frame_timeout for the first accepted frame:
    first_frame_timeout (501, close 4408)."""
    c = Conn(Pair(), first_frame_timeout=10.0, idle_timeout=300.0)
    assert c.session.next_deadline() == NOW + 10
    c.session.advance_time(NOW + 9.999)
    assert c.session.events_received() == []
    c.session.advance_time(NOW + 10)
    event = rejected(c.session.events_received())
    assert (event.code, event.detail) == (Code.FIRST_FRAME_TIMEOUT, "no valid frame in 10 s")
    assert event.code.close_code == 4408


def test_idle_timeout_runs_from_the_last_frame() -> None:
    """After the first accepted frame, idle_timeout from each frame read:
    idle_timeout (502)."""
    c = Conn(Pair(), first_frame_timeout=10.0, idle_timeout=30.0)
    c.clock.advance(5)
    c.take(c.message())
    assert c.session.next_deadline() == NOW + 35
    c.clock.advance(20)
    c.receive(None)
    assert c.session.next_deadline() == NOW + 55
    c.session.advance_time(NOW + 54)
    assert c.session.events_received() == []
    c.session.advance_time(NOW + 55)
    event = rejected(c.session.events_received())
    assert (event.code, event.detail) == (Code.IDLE_TIMEOUT, "no valid frame in 30 s")


def test_no_deadline_runs_while_the_pump_is_paused() -> None:
    """Backpressure: while the pump does not read, no frame can come, so no
    frame deadline runs; reading again restarts it from then."""
    c = Conn(Pair(), idle_timeout=30.0, ack_delay=0.02)
    c.message()
    c.session.paused()
    assert c.session.next_deadline() is None
    c.advance(1000)
    assert c.session.events_received() == []
    c.receive(None)  # already parsed when it paused: no deadline restarted
    assert c.session.next_deadline() is None
    c.session.reading(c.clock.now)
    assert c.session.next_deadline() == c.clock.now + 30


def test_the_earlier_deadline_comes_first() -> None:
    """next_deadline is the earlier of a due ack and the frame deadline."""
    c = Conn(Pair(), idle_timeout=0.01, ack_delay=0.02)
    c.done(c.message())
    assert c.session.next_deadline() == NOW + 0.01
    c2 = Conn(Pair(), idle_timeout=30.0, ack_delay=0.02)
    c2.done(c2.message())
    assert c2.session.next_deadline() == NOW + 0.02


def test_without_timeouts_no_deadline() -> None:
    """Both timeouts None: a connection may wait forever."""
    c = Conn(Pair(), first_frame_timeout=None, idle_timeout=None)
    c.advance(10**9)
    assert c.session.events_received() == []
    assert c.session.next_deadline() is None


# -- sending (§7.1) -------------------------------------------------------------------------


@pytest.mark.parametrize("payload", [None, "hi", b"hi"])
def test_send_before_any_verified_frame_is_invalid_state(payload: str | bytes | None) -> None:
    """A server frame needs the client's scheme and key: none before a frame
    verified. InvalidState is a UsageError and a RuntimeError."""
    p = Pair()
    with pytest.raises(InvalidState, match="no client frame accepted") as info:
        p.server.send_message(payload, now=NOW)
    assert isinstance(info.value, UsageError)
    assert isinstance(info.value, RuntimeError)
    with pytest.raises(InvalidState):
        p.server.claim_counter()


def test_send_after_a_rejected_first_frame_is_still_invalid_state() -> None:
    """A rejected frame teaches the session nothing: still no key to send with."""
    c = Conn(Pair())
    c.session.receive_message(c.frame()[:-1], now=NOW)
    with pytest.raises(InvalidState):
        c.session.send_message(None, now=NOW)


def test_mac_connection_needs_no_server_key() -> None:
    """On a mac connection the server frame key is the client's frame key."""
    p = Pair("mac", server_key=False)
    p.accept()
    assert isinstance(p.reply("hi"), ServerMessage)


@pytest.mark.parametrize("payload", [1, 2.5, bytearray(b"x"), ["x"], False])
def test_send_refuses_other_payload_types(payload: object) -> None:
    """Server payloads are str, bytes or None."""
    p = Pair()
    p.accept()
    with pytest.raises(UsageError, match="payload"):
        p.server.send_message(payload, now=NOW)  # type: ignore[arg-type]


def test_claim_counter_shares_the_server_counter() -> None:
    """A broadcast frame takes the next counter; the next frame follows it."""
    c = Conn(Pair())
    c.message()
    assert c.session.claim_counter() == 1
    c.session.send_message("x", now=NOW)
    (frame,) = c.session.data_to_send()
    assert msgpack.unpackb(frame)[4] == 2


@pytest.mark.parametrize(("scheme", "backend"), SCHEMES, ids=[_ids(s) for s in SCHEMES])
@pytest.mark.parametrize("payload", [None, "", "text", b"", b"\x00\xff" * 100])
def test_server_frames_verify_at_the_client(
    scheme: Scheme, backend: BackendName, payload: str | bytes | None
) -> None:
    """Every payload type round-trips through send_message and Signer.verify."""
    p = Pair(scheme, backend)
    p.accept()
    message = p.reply(payload)
    assert isinstance(message, ServerMessage)
    assert message.payload == payload
    assert type(message.payload) is type(payload)


def test_mac_server_frame_is_tagged_with_the_current_frame_key() -> None:
    """§7.1 kind 4: key_id is the current credential's cid; the tag its frame key's HMAC."""
    p = Pair("mac")
    p.accept()
    p.server.send_message("hi", now=NOW)
    frame = p.server.data_to_send()[-1]
    fields = msgpack.unpackb(frame)
    assert fields[:8] == [1, 4, "tok-1", p.server.nonce, 1, 1, NOW_MS, "hi"]
    signed = SERVER_LABEL + length_prefixed(AUDIENCE.encode()) + frame[:-34]
    assert frame[-34:-32] == b"\xc4\x20"
    assert frame[-32:] == token().frame_key.mac(signed)


@pytest.mark.parametrize("scheme", ["certificate", "keyref"])
def test_ed25519_server_frame_is_signed_by_the_server_key(scheme: Scheme) -> None:
    """§7.1 kind 5: key_id is the server key's id; the signature covers the server label."""
    p = Pair(scheme)
    p.accept()
    p.server.send_message(b"hi", now=NOW)
    frame = p.server.data_to_send()[-1]
    fields = msgpack.unpackb(frame)
    assert fields[:8] == [1, 5, SERVER_KID, p.server.nonce, 1, 1, NOW_MS, b"hi"]
    signed = SERVER_LABEL + length_prefixed(AUDIENCE.encode()) + frame[:-66]
    assert frame[-66:-64] == b"\xc4\x40"
    SERVER_KEY.public_key().verify(frame[-64:], signed)  # raises Rejected if not


def test_server_frame_is_not_accepted_as_a_client_frame() -> None:
    """§7.1: a server frame reflected to the server is refused."""
    c = Conn(Pair())
    c.message()
    c.session.send_message(None, now=NOW)
    (frame,) = c.session.data_to_send()
    c.session.receive_message(frame, now=NOW)
    assert rejected(c.session.events_received()).code is Code.MALFORMED


def test_an_ed25519_client_is_answered_with_a_server_key() -> None:
    """With a server key, an ed25519 connection is acknowledged like a mac one."""
    c = Conn(Pair("certificate"), ack_delay=0.02, credential=certificate())
    c.done(c.message())
    c.advance(0.02)
    assert [m.ack for m in c.sent()] == [1]


# -- ServerKey ----------------------------------------------------------------------------


@pytest.mark.parametrize("kid", ["", "k" * 256, 7, None])
def test_server_key_refuses_an_invalid_kid(kid: object) -> None:
    """A server key id is a str of 1 to 255 bytes."""
    with pytest.raises(UsageError, match="kid"):
        ServerKey(kid, SERVER_KEY)  # type: ignore[arg-type]


@pytest.mark.parametrize("key", [b"\x03" * 32, SERVER_KEY.public_key(), None])
def test_server_key_refuses_anything_but_a_private_key(key: object) -> None:
    """A server key holds an Ed25519PrivateKey."""
    with pytest.raises(UsageError, match="Ed25519PrivateKey"):
        ServerKey(SERVER_KID, key)  # type: ignore[arg-type]


def test_server_key_is_a_frozen_value() -> None:
    """ServerKey is a frozen dataclass; its repr does not show the seed."""
    key = ServerKey(SERVER_KID, Ed25519PrivateKey(b"\x03" * 32))
    assert key == ServerKey(SERVER_KID, SERVER_KEY)
    assert SERVER_KEY.to_bytes().hex() not in repr(key)
    with pytest.raises(AttributeError):
        key.kid = "other"  # type: ignore[misc]


def test_session_uses_the_given_random_source() -> None:
    """ServerSession draws the nonce's random bytes from ``random``."""
    p = Pair()
    session = ServerSession(p.verifier, now=NOW, random=seeded_random(b"nonce"))
    assert session.nonce == p.server.nonce
    assert session.hello == p.server.hello


def test_receive_frame_returns_the_new_message_instead_of_an_event() -> None:
    """receive_frame (a pump's hot path) returns a new message rather than a
    MessageReceived; control frames, dropped resends and rejections return
    None, the rejection as its event."""
    c = Conn(Pair(), marks=StreamMarks())
    message = c.session.receive_frame(c.frame("one"), now=NOW)
    assert message is not None
    assert message.payload == "one"
    assert c.session.events_received() == []
    assert c.session.receive_frame(c.frame(None), now=NOW) is None
    assert c.session.take_message(message, now=NOW)
    assert c.session.receive_frame(c.frame("one", seq=1), now=NOW) is None  # a resend
    assert c.session.events_received() == []
    assert c.session.receive_frame("text", now=NOW) is None
    assert rejected(c.session.events_received()).code is Code.MALFORMED


def test_taking_out_of_order_releases_the_held_message() -> None:
    """Taking the next message releases the one held even when an earlier
    one is still queued: the mark stays before the earliest outstanding."""
    c = Conn(Pair())
    one, two, three = c.message("one"), c.message("two"), c.message("three")
    c.take(two)
    c.take(three)
    assert c.session.delivered == 0
    c.take(one)  # releases three
    assert c.session.delivered == 0
    c.done(one)
    assert c.session.delivered == 3
