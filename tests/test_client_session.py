"""The client's state machine across connections (signedws/client.py): pure,
over a fake clock and fixed keys; no event loop, no sleeps."""

from __future__ import annotations

import random
from typing import Any, Final

import pytest
from helpers import (
    AUDIENCE,
    FLEET_KEY,
    NODE_ID,
    NOW,
    NOW_MS,
    SERVER_KEY,
    SERVER_KID,
    FakeClock,
    certificate,
    key_reference,
    make_keyring,
    seeded_random,
    server_frame,
    token,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from signedws import Code, UsageError
from signedws.client import (
    STABLE_SECONDS,
    Acknowledged,
    AckTimedOut,
    Action,
    Backoff,
    ClientSession,
    Entry,
    Outbox,
    PayloadReceived,
    ServerRejected,
    close_action,
    status_action,
)
from signedws.credential import ClientCredential, MACCredential
from signedws.envelope import (
    KIND_SERVER_ED25519,
    KIND_SERVER_MAC,
    Hello,
    encode_hello,
    unverified_client_frame,
)
from signedws.errors import (
    ConnectionLost,
    InvalidState,
    Refused,
    Rejected,
    RepeatedFailure,
    codes_for_close,
)
from signedws.verifier import Verifier

STREAM: Final = bytes(range(16))
NONCES: Final = [bytes([n]) * 64 for n in range(1, 10)]
#: No keepalive, no acknowledgement timeout: tests of other rules turn them on.
QUIET: Final[dict[str, Any]] = {"keepalive": None, "ack_timeout": None}


def hello(nonce: bytes = NONCES[0], *, max_frame: int = 65536, audience: str = AUDIENCE) -> bytes:
    return encode_hello(Hello(nonce, audience, NOW_MS, max_frame, 0))


class Server:
    """The server's end of one connection, by hand: its hello and its frames."""

    def __init__(self, nonce: bytes = NONCES[0], *, max_frame: int = 65536) -> None:
        self.nonce = nonce
        self.hello = hello(nonce, max_frame=max_frame)
        self.counter = 0

    def frame(self, ack: int, payload: str | bytes | None = None, credential: Any = None) -> bytes:
        """A server frame tagged for ``credential`` (a token by default)."""
        self.counter += 1
        if credential is None or isinstance(credential, MACCredential):
            credential = credential or token()
            head: list[object] = [1, KIND_SERVER_MAC, credential.cid]
            secret: Any = credential.frame_key
        else:
            head, secret = [1, KIND_SERVER_ED25519, SERVER_KID], SERVER_KEY
        fields = [*head, self.nonce, self.counter, ack, NOW_MS, payload]
        return server_frame(fields, secret)


def session(credential: ClientCredential | None = None, **kwargs: Any) -> ClientSession:
    options: dict[str, Any] = {"audience": AUDIENCE, "stream": STREAM, **QUIET}
    options.update(kwargs)
    return ClientSession(credential or token(), **options)


def sent(s: ClientSession) -> list[tuple[int, int, object]]:
    """The frames to send, decoded: (counter, seq, payload)."""
    frames = [unverified_client_frame(data) for data in s.data_to_send()]
    return [(f.counter, f.seq, f.payload) for f in frames]


def opened(s: ClientSession, server: Server, now: float = NOW) -> list[tuple[int, int, object]]:
    s.receive_hello(server.hello, now=now)
    assert s.events_received() == []
    return sent(s)


# -- the pure pieces moved in from asyncio/_outbox.py and asyncio/_reconnect.py -------


def test_outbox_numbers_messages_and_drops_acknowledged() -> None:
    """Messages get consecutive seq; an ack drops those sent under counters <= ack."""
    outbox = Outbox()
    entries = [outbox.add(f"m{i}") for i in range(1, 5)]
    assert [e.seq for e in entries] == [1, 2, 3, 4]
    assert not outbox.waiting()
    for counter, entry in enumerate(entries[:3], start=2):
        entry.counter = counter
    assert outbox.waiting()
    assert outbox.acknowledge(1) == 0
    assert outbox.acknowledge(3) == 2
    assert [e.seq for e in outbox] == [3, 4]
    assert outbox.acknowledge(100) == 1  # entry 4 was never sent: it stays
    assert [e.seq for e in outbox] == [4]
    assert not outbox.waiting()


def test_outbox_restart_resets_counters() -> None:
    """A new connection forgets old counters: an ack there cannot drop old sends."""
    outbox = Outbox(seq=10)
    entry = outbox.add(b"x")
    entry.counter = 5
    assert outbox.restart() == [entry]
    assert entry.counter == 0
    assert outbox.acknowledge(5) == 0
    assert entry.seq == 11


def test_outbox_discard_gives_the_newest_seq_back() -> None:
    """discard gives the newest seq back; misuse raises; repr shows counts only."""
    outbox = Outbox()
    with pytest.raises(UsageError):
        outbox.discard(Entry(1, "a"))  # empty outbox
    first = outbox.add("a")
    second = outbox.add("b")
    with pytest.raises(UsageError):
        outbox.discard(first)
    outbox.discard(second)
    assert outbox.seq == 1
    assert len(outbox) == 1
    with pytest.raises(UsageError):
        outbox.add(None)
    assert repr(outbox) == "Outbox(pending=1, seq=1)"


@pytest.mark.parametrize(
    ("close_code", "action"),
    [
        (None, Action.RECONNECT),
        (1006, Action.RECONNECT),
        (1001, Action.RECONNECT),
        (1011, Action.RECONNECT),
        (4408, Action.RECONNECT),
        (4410, Action.RECONNECT),
        (4503, Action.RECONNECT),
        (4419, Action.REFRESH),
        (1000, Action.FINISH),
        (1005, Action.FINISH),
        (4400, Action.FAIL),
        (4401, Action.FAIL),
        (4403, Action.FAIL),
        (4409, Action.FAIL),
        (4413, Action.FAIL),
        (4425, Action.FAIL),
        (4429, Action.FAIL),
        (1009, Action.FAIL),
        (1002, Action.FAIL),
    ],
)
def test_close_action(close_code: int | None, action: Action) -> None:
    """Each close code maps to what the client does next."""
    assert close_action(close_code) is action


def test_every_rejection_close_code_has_an_action() -> None:
    """Every close code of SPEC.md §9 is classified: only 4408/4410/4503 reconnect."""
    for code in Code:
        action = close_action(code.close_code)
        if code.close_code in (4408, 4410, 4503):
            assert action is Action.RECONNECT
        elif code.close_code == 4419:
            assert action is Action.REFRESH
        else:
            assert action is Action.FAIL


@pytest.mark.parametrize(
    ("status", "action"),
    [(503, Action.RECONNECT), (500, Action.RECONNECT), (429, Action.RECONNECT)]
    + [(s, Action.FAIL) for s in (400, 401, 403, 404)],
)
def test_status_action(status: int, action: Action) -> None:
    """Refused handshakes: 5xx and 429 are retried, others are not."""
    assert status_action(status) is action


def test_codes_for_close() -> None:
    """A close code and reason name the rejection codes they may stand for."""
    assert codes_for_close(4403, "forbidden") == (Code.CREDENTIAL_REVOKED,)
    assert set(codes_for_close(4419, None)) == {
        Code.CREDENTIAL_EXPIRED,
        Code.CREDENTIAL_NOT_YET_VALID,
    }
    assert Code.BAD_TAG in codes_for_close(4401, "unauthorized")
    assert codes_for_close(1000, "") == ()


def test_backoff_delays() -> None:
    """Delays grow by factor up to maximum; jitter shortens them by up to its share."""
    backoff = Backoff(initial=1.0, maximum=8.0, factor=2.0, jitter=0.5)
    assert [backoff.delay(n, 0.0) for n in range(5)] == [1.0, 2.0, 4.0, 8.0, 8.0]
    assert backoff.delay(1, 0.999999) == pytest.approx(1.0, abs=1e-5)
    assert backoff.delay(10_000, 0.0) == 8.0
    for kwargs in ({"initial": -1}, {"factor": 0.5}, {"jitter": 2}, {"maximum": 0.01}):
        with pytest.raises(UsageError):
            Backoff(**kwargs)


DRAWS: Final = 20_000


def ks_uniform(samples: list[float], cap: float) -> float:
    """Kolmogorov-Smirnov distance between ``samples`` and uniform(0, cap)."""
    ordered = sorted(samples)
    n = len(ordered)
    return max(max((i + 1) / n - x / cap, x / cap - i / n) for i, x in enumerate(ordered))


@pytest.mark.parametrize("attempt", range(8))
def test_full_jitter_delays_are_uniform_over_the_interval(attempt: int) -> None:
    """For every attempt, the delays lie in (0, cap] and their distribution is
    uniform over it (KS distance below the 0.1 % critical value for 20,000
    draws, 1.95 / sqrt(n) = 0.0138), mean cap / 2."""
    backoff = Backoff()
    cap = min(backoff.maximum, backoff.initial * backoff.factor**attempt)
    source = random.Random(1700 + attempt)  # noqa: S311 - seeded: a reproducible draw
    delays = [backoff.delay(attempt, source.random()) for _ in range(DRAWS)]
    assert all(0 < d <= cap for d in delays)
    assert ks_uniform(delays, cap) < 0.0138
    assert sum(delays) / DRAWS == pytest.approx(cap / 2, rel=0.02)
    assert min(delays) < cap * 0.001
    assert max(delays) > cap * 0.999


def test_a_dropped_node_reconnects_without_a_burst() -> None:
    """200 clients dropped together (one draw each, as each client makes):
    with full jitter no tenth of the first interval gets more than twice its
    share; with the old half jitter, the first half got none of them."""
    clients = 200
    backoff, half = Backoff(), Backoff(jitter=0.5)
    cap = backoff.delay(0, 0.0)
    source = random.Random(17)  # noqa: S311 - seeded: a reproducible draw
    draws = [source.random() for _ in range(clients)]
    full = [backoff.delay(0, r) for r in draws]
    bins = [0] * 10
    for delay in full:
        bins[min(9, int(delay / cap * 10))] += 1
    assert max(bins) <= 2 * clients // 10, bins
    assert min(bins) > 0, bins
    assert sum(1 for r in draws if half.delay(0, r) < cap / 2) == 0
    assert sum(1 for d in full if d < cap / 2) == pytest.approx(clients / 2, abs=25)


# -- construction and state -------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_attempts": -1},
        {"max_repeats": 0},
        {"max_repeats": 1.5},
        {"keepalive": 0},
        {"ack_timeout": 0.0},
        {"ack_timeout": float("nan")},
        {"refresh_margin": -1},
        {"stream": b"short"},
        {"stream": "x" * 16},
    ],
)
def test_invalid_arguments_are_usage_errors(kwargs: dict[str, Any]) -> None:
    """Each invalid limit is refused when the session is made."""
    with pytest.raises(UsageError):
        session(**kwargs)


def test_only_client_credentials_are_taken() -> None:
    """A credential that is not a MAC or Ed25519 client credential is refused."""
    with pytest.raises(UsageError, match="credential"):
        ClientSession(object(), audience=AUDIENCE)  # type: ignore[arg-type]


def test_a_new_session_is_idle_with_a_random_stream() -> None:
    """Before any hello nothing is connected, due or sent; the stream is random."""
    s = ClientSession(token(), audience=AUDIENCE)
    assert len(s.stream) == 16
    assert s.stream != ClientSession(token(), audience=AUDIENCE).stream
    assert not s.connected
    assert (s.pending, s.unacknowledged, s.outcomes, s.connections) == (0, [], (), 0)
    assert s.next_deadline() is None
    assert s.data_to_send() == []
    assert s.events_received() == []
    assert repr(s) == "ClientSession(disconnected, pending=0, seq=0)"
    assert token().token.hex() not in repr(s)


# -- the hello: binding, resending -------------------------------------------------------


def test_the_first_hello_sends_one_control_frame() -> None:
    """With nothing pending, the hello is answered by one control frame, so the
    server may send first (SPEC.md §7.3)."""
    s = session()
    assert opened(s, Server()) == [(1, 0, None)]
    assert s.connected
    assert s.connections == 1
    assert repr(s) == "ClientSession(connected, pending=0, seq=0)"


def test_messages_are_numbered_signed_and_verified_by_a_real_verifier() -> None:
    """Frames from the session verify under the server's real Verifier, with
    the stream and seq the session gave them."""
    verifier = Verifier(make_keyring(), audience=AUDIENCE, fleet_key=FLEET_KEY, node_id=NODE_ID)
    state = verifier.open(now=NOW, random=seeded_random(b"client"))
    s = session()
    s.receive_hello(verifier.hello(state, now=NOW), now=NOW)
    s.send_message("one", now=NOW)
    s.send_message(b"two", now=NOW + 1)
    messages = [verifier.verify(data, state, now=NOW + 1) for data in s.data_to_send()]
    assert [(m.counter, m.seq, m.payload, m.stream) for m in messages] == [
        (1, 0, None, STREAM),
        (2, 1, "one", STREAM),
        (3, 2, b"two", STREAM),
    ]


def test_a_new_hello_resends_pending_messages_in_seq_order() -> None:
    """The pending messages are signed again under the new connection's nonce
    and counters, with their original seq; no control frame then."""
    s = session()
    opened(s, Server())
    for payload in ("a", "b", "c"):
        s.send_message(payload, now=NOW)
    assert sent(s) == [(2, 1, "a"), (3, 2, "b"), (4, 3, "c")]
    assert s.connection_closed(1012, "") is Action.RECONNECT
    s.send_message("d", now=NOW)  # queued: no connection
    assert s.data_to_send() == []
    second = Server(NONCES[1])
    s.receive_hello(second.hello, now=NOW + 1)
    frames = [unverified_client_frame(data) for data in s.data_to_send()]
    assert [(f.counter, f.seq, f.payload) for f in frames] == [
        (1, 1, "a"),
        (2, 2, "b"),
        (3, 3, "c"),
        (4, 4, "d"),
    ]
    assert {f.nonce for f in frames} == {NONCES[1]}
    assert s.connections == 2


def test_a_hello_on_an_open_connection_is_a_usage_bug() -> None:
    """receive_hello twice without connection_closed raises InvalidState, a
    UsageError and a RuntimeError."""
    s = session()
    opened(s, Server())
    with pytest.raises(InvalidState) as caught:
        s.receive_hello(Server(NONCES[1]).hello, now=NOW)
    assert isinstance(caught.value, UsageError)
    assert isinstance(caught.value, RuntimeError)


@pytest.mark.parametrize(
    ("data", "code"),
    [
        ("a text hello", Code.MALFORMED),
        (b"\x93\x01", Code.MALFORMED),
        (hello(audience="wss://elsewhere.example/ws"), Code.AUDIENCE_MISMATCH),
        (hello(max_frame=16), Code.FRAME_TOO_LARGE),
    ],
)
def test_a_bad_hello_is_one_event_not_an_exception(data: Any, code: Code) -> None:
    """Peer input never raises: a bad hello gives ServerRejected, sends
    nothing, and the connection ends with Action.FAIL and that Rejected."""
    s = session()
    s.receive_hello(data, now=NOW)
    [event] = s.events_received()
    assert isinstance(event, ServerRejected)
    assert event.code is code
    assert not s.connected
    assert s.data_to_send() == []
    assert s.connection_closed(code.close_code, code.peer_reason) is Action.FAIL
    assert isinstance(s.failure, Rejected)
    assert s.failure.code is code


def test_a_forged_max_frame_never_drops_a_pending_message() -> None:
    """SPEC.md §7.3, §11.6: a new hello whose max_frame is too small for a
    pending message fails with frame_too_large, sends nothing, and keeps
    every message pending, unsent."""
    s = session()
    opened(s, Server())
    s.send_message("small", now=NOW)
    s.send_message("x" * 4000, now=NOW)
    s.data_to_send()
    s.connection_closed(1012)
    s.receive_hello(Server(NONCES[1], max_frame=1024).hello, now=NOW)
    [event] = s.events_received()
    assert isinstance(event, ServerRejected)
    assert event.code is Code.FRAME_TOO_LARGE
    assert "seq=2" in event.detail
    assert s.data_to_send() == []
    assert s.unacknowledged == ["small", "x" * 4000]
    assert s.connection_closed(4413, "frame too large") is Action.FAIL
    # A later, honest hello sends both again, from counter 1.
    assert opened(s, Server(NONCES[2])) == [(1, 1, "small"), (2, 2, "x" * 4000)]


# -- server frames: acknowledgements and payloads --------------------------------------


def test_an_ack_clears_what_it_covers_and_says_how_many_are_left() -> None:
    """An ack drops the messages sent under counters <= ack (Acknowledged with
    the count left); a payload becomes PayloadReceived, after it."""
    s, server = session(), Server()
    opened(s, server)
    for payload in ("a", "b", "c"):
        s.send_message(payload, now=NOW)
    s.data_to_send()
    s.receive_message(server.frame(3, "hi"), now=NOW)
    assert s.events_received() == [Acknowledged(1), PayloadReceived("hi")]
    assert s.unacknowledged == ["c"]
    s.receive_message(server.frame(4), now=NOW)
    assert s.events_received() == [Acknowledged(0)]
    assert s.pending == 0


def test_an_ack_of_the_control_frame_alone_acknowledges_no_message() -> None:
    """ack=1 covers the control frame only: no event, nothing dropped."""
    s, server = session(), Server()
    opened(s, server)
    s.send_message("a", now=NOW)
    s.receive_message(server.frame(1), now=NOW)
    assert s.events_received() == []
    assert s.pending == 1


def test_an_ack_from_an_earlier_connection_cannot_clear_a_resend() -> None:
    """After a new hello, counters restart: the old connection's frames are
    never delivered to this session again (they are dropped unread)."""
    s, first = session(), Server()
    opened(s, first)
    s.send_message("a", now=NOW)
    late = first.frame(2)
    s.connection_closed(1012)
    s.receive_message(late, now=NOW)  # no connection: dropped unread
    assert s.events_received() == []
    opened(s, Server(NONCES[1]))
    s.receive_message(late, now=NOW)  # another nonce: refused
    [event] = s.events_received()
    assert isinstance(event, ServerRejected)
    assert event.code is Code.NONCE_MISMATCH
    assert s.unacknowledged == ["a"]


@pytest.mark.parametrize("data", ["text", b"\x00junk"])
def test_a_bad_server_frame_is_one_event_then_nothing_is_read(data: Any) -> None:
    """A text message or a frame that fails verification gives one
    ServerRejected; after it no frame is read (not even a genuine one) and new
    messages wait in the outbox."""
    s, server = session(), Server()
    opened(s, server)
    s.receive_message(data, now=NOW)
    [event] = s.events_received()
    assert isinstance(event, ServerRejected)
    assert event.code is Code.MALFORMED
    assert not s.connected
    s.receive_message(server.frame(1, "late"), now=NOW)
    assert s.events_received() == []
    s.send_message("queued", now=NOW)
    assert s.data_to_send() == []
    assert s.connection_closed(4400, "bad frame") is Action.FAIL
    assert isinstance(s.failure, Rejected)


def test_ed25519_clients_verify_server_frames_with_the_server_key() -> None:
    """An ed25519 session verifies server frames with server_keys."""
    s, server = session(certificate(), server_keys={SERVER_KID: SERVER_KEY.public_key()}), Server()
    opened(s, server)
    s.send_message("a", now=NOW)
    s.receive_message(server.frame(2, "hi", credential=certificate()), now=NOW)
    assert s.events_received() == [Acknowledged(0), PayloadReceived("hi")]


# -- the application's messages -----------------------------------------------------------


def test_a_message_too_large_for_the_connection_is_refused_and_uses_no_seq() -> None:
    """The frame's real length is checked (not the payload's characters): a
    payload that fits alone but not with the envelope is a UsageError, keeps
    nothing and gives its seq back."""
    s = session()
    opened(s, Server(max_frame=1024))
    with pytest.raises(UsageError):
        s.send_message(b"x" * 1000, now=NOW)
    with pytest.raises(UsageError):
        s.send_message("é" * 600, now=NOW)  # 600 characters, 1200 bytes
    with pytest.raises(UsageError):
        s.send_message(None, now=NOW)  # type: ignore[arg-type]
    assert s.pending == 0
    s.send_message("fits", now=NOW)
    assert sent(s) == [(2, 1, "fits")]


# -- time: keepalive and the acknowledgement timeout -------------------------------------


def test_a_keepalive_control_frame_follows_keepalive_idle_seconds() -> None:
    """A control frame is due keepalive seconds after the last frame sent;
    sending a message moves the deadline."""
    clock = FakeClock()
    s = session(keepalive=10.0)
    opened(s, Server(), now=clock.now)
    assert s.next_deadline() == clock.now + 10
    clock.advance(9.5)
    s.advance_time(clock.now)
    assert s.data_to_send() == []
    s.send_message("a", now=clock.now)
    s.data_to_send()
    assert s.next_deadline() == clock.now + 10
    clock.advance(10)
    s.advance_time(clock.now)
    assert sent(s) == [(3, 0, None)]
    assert s.next_deadline() == clock.now + 10


def test_no_acknowledgement_for_ack_timeout_ends_the_connection() -> None:
    """A message sent on this connection that sees no acknowledgement progress
    for ack_timeout seconds gives AckTimedOut; the ending counts as the client's
    own 4408, whatever the server's close frame said."""
    clock = FakeClock()
    s, server = session(ack_timeout=60.0), Server()
    opened(s, server, now=clock.now)
    assert s.next_deadline() is None  # nothing waits for an ack
    s.send_message("a", now=clock.now)
    assert s.next_deadline() == clock.now + 60
    clock.advance(30)
    s.send_message("b", now=clock.now)  # the wait started with "a"
    assert s.next_deadline() == clock.now + 30
    clock.advance(29)
    s.advance_time(clock.now)
    assert s.events_received() == []
    clock.advance(1)
    s.advance_time(clock.now)
    assert s.events_received() == [AckTimedOut(60.0)]
    assert not s.connected
    assert s.next_deadline() is None
    s.advance_time(clock.now + 100)  # ending: nothing more
    assert s.events_received() == []
    assert s.connection_closed(1000, "", now=clock.now) is Action.RECONNECT
    assert s.outcomes == ("connection 1: closed with close code 4408 (no acknowledgement)",)
    assert s.unacknowledged == ["a", "b"]


def test_acknowledgement_progress_restarts_the_wait() -> None:
    """Each ack that moves restarts the wait for what is still unacknowledged;
    once nothing sent waits, no deadline."""
    clock = FakeClock()
    s, server = session(ack_timeout=60.0, keepalive=1000.0), Server()
    opened(s, server, now=clock.now)
    s.send_message("a", now=clock.now)
    s.send_message("b", now=clock.now)
    clock.advance(50)
    s.receive_message(server.frame(2), now=clock.now)  # "a" only
    assert s.next_deadline() == clock.now + 60
    clock.advance(50)
    s.receive_message(server.frame(3), now=clock.now)
    assert s.next_deadline() == clock.now + 900  # the keepalive's: nothing waits
    s.receive_message(server.frame(3, "no progress"), now=clock.now)
    assert s.next_deadline() == clock.now + 900


def test_a_hello_that_resends_starts_the_acknowledgement_wait() -> None:
    """Resent messages wait for their acknowledgement from the hello on."""
    s = session(ack_timeout=5.0)
    s.send_message("a", now=NOW)
    opened(s, Server(), now=NOW + 1)
    assert s.next_deadline() == NOW + 6


# -- connection endings: actions, repeats, failures ----------------------------------------


def test_identical_endings_without_progress_end_in_repeated_failure() -> None:
    """Issue 13: max_repeats connections in a row closed the same way with no
    progress give Action.FAIL with RepeatedFailure listing each connection;
    the message stays unacknowledged. Before, the client retried forever."""
    s = session(max_repeats=3)
    s.send_message("m", now=NOW)
    actions = []
    for n in range(3):
        opened(s, Server(NONCES[n]))
        actions.append(s.connection_closed(1011, "relay"))
    assert actions == [Action.RECONNECT, Action.RECONNECT, Action.FAIL]
    failure = s.failure
    assert isinstance(failure, RepeatedFailure)
    assert (failure.close_code, failure.reason, failure.attempts) == (1011, "relay", 3)
    assert failure.outcomes == tuple(
        f"connection {n}: closed with close code 1011 (relay)" for n in (1, 2, 3)
    )
    assert s.unacknowledged == ["m"]


def test_progress_stable_connections_and_other_endings_reset_the_count() -> None:
    """An ack, a payload, 30 s open, or a different ending resets the count;
    a drop without a close frame is neither counted nor forgiven."""
    s = session(max_repeats=2)
    server = Server()
    opened(s, server)
    assert s.connection_closed(1011) is Action.RECONNECT
    assert s.repeats == 1
    opened(s, server)
    assert s.connection_closed(None) is Action.RECONNECT  # 1006: as it was
    assert s.repeats == 1
    server = Server(NONCES[1])
    opened(s, server)
    s.receive_message(server.frame(1, "progress"), now=NOW)
    assert s.events_received() == [PayloadReceived("progress")]
    s.connection_closed(1011)
    assert (s.repeats, s.outcomes) == (
        0,
        ("connection 3: closed with close code 1011 (no reason)",),
    )
    opened(s, Server(NONCES[2]), now=NOW)
    s.connection_closed(1011, now=NOW + STABLE_SECONDS)
    assert s.repeats == 0
    opened(s, Server(NONCES[3]), now=NOW)
    s.connection_closed(1011, now=NOW + 1)
    opened(s, Server(NONCES[4]), now=NOW)
    assert s.connection_closed(1012, now=NOW + 1) is Action.RECONNECT  # another ending
    assert s.repeats == 1
    opened(s, Server(NONCES[5]), now=NOW)
    assert s.connection_closed(1012, now=NOW + 1) is Action.FAIL
    assert isinstance(s.failure, RepeatedFailure)


def test_without_max_repeats_the_client_never_gives_up_but_backs_off_longer() -> None:
    """max_repeats=None: identical endings keep reconnecting; the backoff
    grows with each repeat."""
    s = session(max_repeats=None, backoff=Backoff(initial=1, maximum=1000, jitter=0))
    delays = []
    for n in range(4):
        opened(s, Server(NONCES[n]))
        assert s.connection_closed(1011) is Action.RECONNECT
        delays.append(s.reconnect_delay())
    assert delays == [1, 2, 4, 8]


def test_each_action_sets_the_error_to_end_with() -> None:
    """FINISH: no error; RECONNECT: ConnectionLost (if not reconnecting);
    REFRESH: Refused with what the client can tell; FAIL: Refused."""
    s = session(token(lifetime=60))
    opened(s, Server())
    assert s.connection_closed(1000) is Action.FINISH
    assert s.failure is None
    opened(s, Server())
    assert s.connection_closed(1001, "going away") is Action.RECONNECT
    assert isinstance(s.failure, ConnectionLost)
    assert (s.failure.close_code, s.failure.reason) == (1001, "going away")
    opened(s, Server())
    assert s.connection_closed(4419, "credential not valid now", now=NOW + 61) is Action.REFRESH
    assert isinstance(s.failure, Refused)
    assert "expired at" in str(s.failure)
    opened(s, Server())
    assert s.connection_closed(4419, "credential not valid now", now=NOW) is Action.REFRESH
    assert "expired at" not in str(s.failure)
    opened(s, Server())
    assert s.connection_closed(4403, "forbidden") is Action.FAIL
    assert isinstance(s.failure, Refused)
    assert s.failure.code is Code.CREDENTIAL_REVOKED


def test_a_4401_for_a_credential_of_another_audience_says_so() -> None:
    """The Refused of a 4401 names the credential's audiences when they do not
    include the server's; not otherwise, nor for a key reference."""
    s = session(token(audiences=["wss://other.example/ws"]))
    s.connection_closed(4401, "unauthorized")
    assert "not for the server's audience" in str(s.failure)
    s = session(token())
    s.connection_closed(4401, "unauthorized")
    assert "Here:" not in str(s.failure)
    s = session(key_reference())
    s.connection_closed(4401, "unauthorized")
    assert "Here:" not in str(s.failure)


def test_reconnect_delays_count_attempts_up_to_max_attempts() -> None:
    """reconnect_delay draws the backoff for each attempt; after max_attempts
    it returns None and the failure is a ConnectionLost naming the attempts
    and what each got. A hello resets the count."""
    draws = iter([0.5, 0.25, 0.0])
    s = session(max_attempts=2, backoff=Backoff(initial=1, jitter=1), random=lambda: next(draws))
    opened(s, Server())
    s.connection_closed(1012, "restart")
    assert s.reconnect_delay() == 0.5
    s.connect_failed("timed out")
    assert s.handshake_refused(503, "busy") is Action.RECONNECT
    assert s.reconnect_delay() == 1.5
    assert s.handshake_refused(503) is Action.RECONNECT
    assert s.reconnect_delay() is None
    failure = s.failure
    assert isinstance(failure, ConnectionLost)
    assert (failure.close_code, failure.reason, failure.attempts) == (1012, "restart", 2)
    assert failure.outcomes == (
        "connection 1: closed with close code 1012 (restart)",
        "attempt 1: timed out",
        "attempt 1: HTTP 503 (busy)",
        "attempt 2: HTTP 503 (no reason given)",
    )
    opened(s, Server(NONCES[1]))
    assert s.attempts == 0
    assert s.reconnect_delay() == 1.0


def test_a_refused_handshake_that_retrying_cannot_fix_fails() -> None:
    """403 (Origin) gives Action.FAIL with Refused carrying the status."""
    s = session()
    assert s.handshake_refused(403, "origin not allowed") is Action.FAIL
    assert isinstance(s.failure, Refused)
    assert s.failure.status == 403


# -- credentials: refresh timing ------------------------------------------------------------


def test_refresh_is_due_refresh_margin_before_expiry() -> None:
    """refresh_due is expiry - refresh_margin; None for a key reference."""
    s = session(token(lifetime=600), refresh_margin=60)
    assert s.refresh_due() == NOW + 540
    assert session(key_reference()).refresh_due() is None


def test_failed_refreshes_back_off() -> None:
    """After a failed refresh the next one waits a backoff delay, longer with
    each failure; a successful refresh clears it."""
    s = session(
        token(lifetime=600),
        refresh_margin=60,
        backoff=Backoff(initial=1, maximum=100, jitter=0),
    )
    s.refresh_failed(now=NOW + 540)
    assert s.refresh_due() == NOW + 541
    s.refresh_failed(now=NOW + 541)
    assert s.refresh_due() == NOW + 543
    s.refresh(token(lifetime=3600, now=NOW + 543), now=NOW + 543)
    assert s.refresh_due() == NOW + 543 + 3540


def test_a_refreshed_credential_already_due_backs_off_instead_of_spinning() -> None:
    """A new credential that expires within refresh_margin is used, but the
    next refresh waits a backoff delay (not at once, again and again)."""
    s = session(token(lifetime=60), refresh_margin=120, backoff=Backoff(initial=5, jitter=0))
    short = token(lifetime=60, cid="short")
    s.refresh(short, now=NOW)
    assert s.credential is short
    assert s.refresh_due() == NOW + 5


def test_refresh_signs_the_next_frames_with_the_new_credential() -> None:
    """On an open connection the next frames carry the new credential."""
    s = session(token(cid="old"))
    opened(s, Server())
    new = token(cid="new")
    s.refresh(new, now=NOW)
    s.send_message("a", now=NOW)
    [data] = s.data_to_send()
    assert unverified_client_frame(data).credential == new.token


def test_refresh_refuses_another_scheme_or_subject() -> None:
    """A refreshed credential of another scheme (any time) or subject (on a
    connection) is a UsageError and changes nothing."""
    s = session(token())
    with pytest.raises(UsageError, match="same scheme"):
        s.refresh(certificate(), now=NOW)
    opened(s, Server())
    with pytest.raises(UsageError, match="issuer and subject"):
        s.refresh(token(subject="mallory"), now=NOW)
    assert s.credential.cid == "tok-1"


# -- peer input never raises ------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_any_hello_bytes_give_a_connection_or_one_rejection(data: bytes) -> None:
    """Whatever bytes arrive as the hello, receive_hello does not raise: the
    session is connected, or it reports one ServerRejected and sends nothing."""
    s = session()
    s.send_message("kept", now=NOW)
    s.receive_hello(data, now=NOW)
    events = s.events_received()
    if s.connected:
        assert events == []
    else:
        assert [type(e) for e in events] == [ServerRejected]
        assert s.data_to_send() == []
    assert s.unacknowledged == ["kept"]


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_a_tampered_server_frame_is_one_rejection_and_changes_nothing(data: st.DataObject) -> None:
    """A genuine server frame (ack and payload) with one byte changed, cut or
    extended: receive_message does not raise; it is refused with one
    ServerRejected and the outbox keeps every message."""
    s, server = session(), Server()
    opened(s, server)
    s.send_message("a", now=NOW)
    s.data_to_send()
    frame = bytearray(server.frame(2, "hi"))
    how = data.draw(st.sampled_from(["flip", "cut", "extend"]))
    if how == "flip":
        index = data.draw(st.integers(0, len(frame) - 1))
        frame[index] ^= data.draw(st.integers(1, 255))
    elif how == "cut":
        del frame[data.draw(st.integers(0, len(frame) - 1)) :]
    else:
        frame += data.draw(st.binary(min_size=1, max_size=8))
    s.receive_message(bytes(frame), now=NOW)
    [event] = s.events_received()
    assert isinstance(event, ServerRejected)
    assert s.unacknowledged == ["a"]
