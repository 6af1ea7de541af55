"""The server side of one connection, I/O-free (SPEC.md §5, §7, §9, §10).

Theory of operation
-------------------
`ServerSession` is the server's per-connection state machine, in the shape
of websockets' ``Protocol`` and h11's ``Connection``: a pump (any WebSocket
library, any event loop) feeds it what happened -- a message read, the
application done with a message, time passing -- and acts on what it
returns: bytes to send (`data_to_send`), events to handle
(`events_received`) and the one time it must be called back at
(`next_deadline`). It does no I/O, reads no clock (``now`` is passed in,
seconds) and draws randomness only from the source it is given.

Every per-connection rule of the spec lives here, and nowhere in a pump:

- the hello goes first (§5.2): queued in `data_to_send` at construction;
- client frames are verified through the shared `Verifier` (§6.4), inline
  (`receive_message`) or in two halves (`verify` off the event loop, then
  `accept` on it, in arrival order);
- a text message is refused as ``malformed`` (§6.4), a message the
  WebSocket library refused for its size as ``frame_too_large`` (§9), and
  an ``ed25519`` frame on a server without a server key as
  ``scheme_mismatch``, unverified (§7.1: such a server could never answer);
- the first accepted frame binds the connection to its principal, within
  the per-principal connection cap (`PrincipalLimit`, ``server_busy``);
- exactly-once delivery over resends (§7.3): a data frame whose ``(iss,
  sub, stream, seq)`` is at or below its stream's mark (`StreamMarks`,
  shared by every connection of the server) is dropped; the mark moves when
  the application *takes* the message (`take_message`), never when it is
  queued, so a message queued for an application that stops is neither
  acknowledged nor marked, and its resend is delivered;
- acknowledgements mean delivered (§7.3): the ack a server frame carries is
  the highest counter up to which every accepted frame is done -- the
  counter before the first message still held or queued, else the last
  accepted. Control frames and dropped resends are done when nothing before
  them is outstanding. When the mark moves, an ack is due within
  ``ack_delay`` (coalescing every move meanwhile); a frame the application
  sends carries it and makes the pure ack unnecessary;
- timeouts (§10): from the hello to the first accepted frame
  ``first_frame_timeout`` (``first_frame_timeout``, 501), then between
  frames ``idle_timeout`` (``idle_timeout``, 502). A deadline runs only
  while the pump is reading: a pump that stops reading for backpressure
  calls `paused`, and `reading` when it reads again;
- a rejection, whatever its cause, is one `ConnectionRejected` event, in one
  place (`_reject`): after it, every input is dropped unverified and nothing
  more is sent but the close the pump makes from the event's code.

Invariants:

1. Peer input never raises: `receive_message`, `accept` and
   `receive_oversize` turn every refusal into the one `ConnectionRejected`.
   Methods the local application calls raise `InvalidState` on misuse.
2. Nothing from an unauthenticated frame changes state: the verifier's
   counters move only after a valid tag (§6.4), and this class moves only
   on a verified `Message`.
3. Only `__init__` (the hello), `send_message` and `advance_time` (a due
   pure ack) queue bytes: the pump need not look at `data_to_send` after
   any other input.
4. Single-threaded, except `verify`, which may run on another thread while
   nothing else runs on the session's verifier state (a pump keeps at most
   one verification of a connection in flight).
"""

from __future__ import annotations

import enum
import secrets
from dataclasses import dataclass
from typing import Final

from . import envelope
from .envelope import (
    KIND_CLIENT_ED25519,
    KIND_CLIENT_MAC,
    KIND_SERVER_ED25519,
    KIND_SERVER_MAC,
    TAG_SIZES,
    VERSION,
    Payload,
    str_field,
)
from .errors import Code, InvalidState, Rejected, UsageError
from .keys import Ed25519PrivateKey, RandomSource
from .stream import StreamKey, StreamMarks, stream_key
from .verifier import ConnectionState, Message, Verifier

__all__ = [
    "ConnectionRejected",
    "MessageReceived",
    "PrincipalLimit",
    "ServerKey",
    "ServerSession",
    "State",
]

#: The first bytes of an `ed25519` client frame (a 10-element fixarray,
#: version 1, kind 2), read unverified to route it: the verifier checks
#: everything again.
_ED25519_PREFIX: Final = bytes((0x9A, VERSION, KIND_CLIENT_ED25519))

# SPEC.md §7.1: a server without a server key cannot answer an ed25519
# client; it refuses its frames, unverified, rather than accepting them and
# failing at its first server frame.
_UNANSWERABLE_DETAIL: Final = "ed25519 frame; this server has no server_key"


@dataclass(frozen=True, slots=True)
class ServerKey:
    """The key an `ed25519` server signs its frames with, and its id."""

    kid: str
    private_key: Ed25519PrivateKey

    def __post_init__(self) -> None:
        try:
            str_field(self.kid, "kid", Code.MALFORMED)
        except Rejected as exc:
            raise UsageError(exc.detail) from None
        if not isinstance(self.private_key, Ed25519PrivateKey):
            raise UsageError("a server key is an Ed25519PrivateKey")


class State(enum.Enum):
    """Where a `ServerSession` is."""

    #: The hello is queued; the first-frame deadline runs.
    AWAITING_FIRST_FRAME = 0
    #: Bound to a principal by an accepted frame; the idle deadline runs.
    OPEN = 1
    #: A `ConnectionRejected` was emitted: the pump closes with its code.
    REJECTED = 2
    #: `connection_closed` was called.
    CLOSED = 3


_AWAITING: Final = State.AWAITING_FIRST_FRAME
_OPEN: Final = State.OPEN
_REJECTED: Final = State.REJECTED
_CLOSED: Final = State.CLOSED


@dataclass(frozen=True, slots=True, init=False)
class MessageReceived:
    """A verified message not delivered before (SPEC.md §7.3): hand it to the
    application with `ServerSession.take_message`, and call
    `ServerSession.message_done` (or take the next) when it is finished."""

    message: Message

    def __init__(self, message: Message) -> None:
        # One per message on the hot path: the slot is set through its
        # descriptor (~0.2 µs) rather than the frozen class's generated
        # ``object.__setattr__`` (~0.7 µs, measured). Still frozen afterwards.
        _set_message(self, message)


_set_message: Final = MessageReceived.message.__set__  # type: ignore[attr-defined,misc]


@dataclass(frozen=True, slots=True)
class ConnectionRejected:
    """The connection is refused (emitted once): log ``code`` and ``detail``,
    then close with ``code.close_code`` and ``code.peer_reason``. The detail
    names fields and identifiers, never a secret or a payload; it is for the
    server's log, never for the peer."""

    code: Code
    detail: str


class PrincipalLimit:
    """How many connections each principal ``(iss, sub)`` holds, and the cap
    (issue 13: one principal cannot take every connection of a server).
    Shared by every session of a server; pure, single-threaded.

    Args:
        limit: connections one principal may hold at once; None: no limit.

    Raises:
        UsageError: for a limit that is not a positive integer or None.
    """

    __slots__ = ("_held", "limit")

    def __init__(self, limit: int | None) -> None:
        if limit is not None and (type(limit) is not int or limit < 1):
            raise UsageError("max_connections_per_principal must be a positive integer or None")
        self.limit = limit
        self._held: dict[tuple[str, str], int] = {}

    def bind(self, principal: tuple[str, str]) -> Rejected | None:
        """Count a connection for ``principal``, or the ``server_busy``
        rejection if it holds its limit already."""
        held = self._held.get(principal, 0)
        limit = self.limit
        if limit is not None and held >= limit:
            return Rejected(
                Code.SERVER_BUSY,
                f"iss={principal[0]!r} sub={principal[1]!r} holds {held} connections, "
                f"limit per principal {limit}",
            )
        self._held[principal] = held + 1
        return None

    def unbind(self, principal: tuple[str, str]) -> None:
        """A connection counted by `bind` is gone."""
        held = self._held.pop(principal, 0) - 1
        if held > 0:
            self._held[principal] = held

    def held(self, principal: tuple[str, str]) -> int:
        """The connections ``principal`` holds."""
        return self._held.get(principal, 0)

    def __len__(self) -> int:
        """The principals holding a connection."""
        return len(self._held)

    def __repr__(self) -> str:
        return f"PrincipalLimit({self.limit}, principals={len(self._held)})"


class ServerSession:
    """One connection, server side (see the module docstring).

    Args:
        verifier: the server's shared verifier.
        now: the time the connection opened, seconds (the clock
            verification reads: frame timestamps are compared with it).
        server_key: the key `ed25519` server frames are signed with. Without
            one, `ed25519` frames are refused (``scheme_mismatch``).
        marks: the server's stream marks (dedupe, SPEC.md §7.3); None
            delivers resends too.
        principals: the server's per-principal connection cap; None: none.
        first_frame_timeout: seconds from the hello to the first accepted
            frame; None: no limit.
        idle_timeout: seconds between frames after the first; None: no limit.
        ack_delay: seconds within which a pure acknowledgement follows a
            move of the delivery mark; None: only frames the application
            sends carry acks.
        random: the randomness source for the nonce.

    Attributes:
        state: where the session is (`State`).
        nonce: the connection nonce (SPEC.md §5.3).
        principal: ``(iss, sub)``, from the first accepted frame on.
        verifier_state: the verifier's state of this connection.
    """

    __slots__ = (
        "_ack_delay",
        "_ack_due",
        "_events",
        "_first_frame_timeout",
        "_held",
        "_hello",
        "_idle_timeout",
        "_key",
        "_last_accepted",
        "_marks",
        "_outgoing",
        "_outstanding",
        "_principals",
        "_refuse_ed25519",
        "_sent_ack",
        "_server_counter",
        "_server_key",
        "_timeout",
        "_waiting_since",
        "nonce",
        "principal",
        "state",
        "verifier",
        "verifier_state",
    )

    def __init__(
        self,
        verifier: Verifier,
        *,
        now: float,
        server_key: ServerKey | None = None,
        marks: StreamMarks | None = None,
        principals: PrincipalLimit | None = None,
        first_frame_timeout: float | None = None,
        idle_timeout: float | None = None,
        ack_delay: float | None = None,
        random: RandomSource = secrets.token_bytes,
    ) -> None:
        for name, value in (
            ("first_frame_timeout", first_frame_timeout),
            ("idle_timeout", idle_timeout),
            ("ack_delay", ack_delay),
        ):
            if value is not None and not value >= 0:
                raise UsageError(f"{name} must not be negative")
        self.verifier = verifier
        self.verifier_state: ConnectionState = verifier.open(now=now, random=random)
        self.nonce = self.verifier_state.nonce
        self.state = _AWAITING
        self.principal: tuple[str, str] | None = None
        self._hello = verifier.hello(self.verifier_state, now=now)
        self._outgoing: list[bytes] = [self._hello]
        self._events: list[MessageReceived | ConnectionRejected] = []
        self._server_key = server_key
        self._refuse_ed25519 = server_key is None
        self._server_counter = 0
        self._marks = marks
        self._principals = principals
        self._first_frame_timeout = first_frame_timeout
        self._idle_timeout = idle_timeout
        self._ack_delay = ack_delay
        # Deadlines: the frame deadline is ``_waiting_since + _timeout`` while
        # the pump reads (``_waiting_since`` None: paused); the ack is due at
        # ``_ack_due`` (None: no ack due).
        self._timeout = first_frame_timeout
        self._waiting_since: float | None = now
        self._ack_due: float | None = None
        # Delivery (SPEC.md §7.3): the counters of the messages queued for the
        # application or held by it, in arrival order; the message it holds;
        # the last accepted counter; the ack last sent.
        # A list: an empty deque holds a 64-slot block (~760 B per idle
        # connection), and few counters are outstanding at once (the queue's).
        self._outstanding: list[int] = []
        self._held: Message | None = None
        self._last_accepted = 0
        self._sent_ack = 0
        # The stream key of the connection's last message (one principal).
        self._key: tuple[bytes, StreamKey] | None = None

    def __repr__(self) -> str:
        return (
            f"ServerSession(state={self.state.name}, principal={self.principal!r}, "
            f"accepted={self._last_accepted}, sent={self._server_counter})"
        )

    # -- properties -----------------------------------------------------------

    @property
    def hello(self) -> bytes:
        """The hello (also the first item of `data_to_send`)."""
        return self._hello

    @property
    def can_send(self) -> bool:
        """Whether `send_message` may build a frame: a client frame was
        verified (SPEC.md §7.1: it gives the frame key) and, for an `ed25519`
        connection, the server has a server key."""
        credential = self.verifier_state.credential
        return credential is not None and (
            credential.kind == KIND_CLIENT_MAC or self._server_key is not None
        )

    @property
    def delivered(self) -> int:
        """The delivery mark (SPEC.md §7.3): the counter up to which every
        accepted frame is done; what the next server frame acknowledges."""
        outstanding = self._outstanding
        return outstanding[0] - 1 if outstanding else self._last_accepted

    @property
    def held(self) -> Message | None:
        """The message the application took and is not done with."""
        return self._held

    # -- input: client frames ---------------------------------------------------

    def receive_message(self, data: bytes | str, *, now: float) -> None:
        """A whole client message read from the WebSocket: bytes for binary,
        str for text. Verifies it (SPEC.md §6.4) and accepts it: `accept`'s
        effects. The pump is taken to go on reading (see `reading`).

        Then call `events_received` (a `MessageReceived`, or the
        `ConnectionRejected`) and `next_deadline`. This queues no data.
        """
        message = self.receive_frame(data, now=now)
        if message is not None:
            self._events.append(MessageReceived(message))

    def receive_frame(self, data: bytes | str, *, now: float) -> Message | None:
        """`receive_message` for a pump's hot path: a new message is returned,
        to hand to the application, instead of queued as a `MessageReceived`
        (one object and one `events_received` per message less: measured,
        they cost a push pump about a fifth of its time per message besides
        verification). Everything else is an event, as with `receive_message`.

        Then, if it returned None, call `events_received` (the
        `ConnectionRejected`, if any); call `next_deadline`. This queues no data.
        """
        state = self.state
        if state is not _OPEN and state is not _AWAITING:
            return None  # after a rejection: dropped unverified
        if type(data) is not bytes:
            if isinstance(data, str):
                self._reject(Code.MALFORMED, "text message; frames are binary")
                return None
            data = bytes(data)
        if self._refuse_ed25519 and data.startswith(_ED25519_PREFIX):
            self._reject(Code.SCHEME_MISMATCH, _UNANSWERABLE_DETAIL)
            return None
        try:
            message = self.verifier.verify(data, self.verifier_state, now=now)
        except Rejected as exc:
            self._reject(exc.code, exc.detail)
            return None
        if self._waiting_since is not None:
            self._waiting_since = now
        marks = self._marks
        key = self._key  # `_stream_key`, inlined (once per message)
        if marks is not None and (key is None or key[0] != message.stream):
            key = self._new_key(message)
        if (
            state is _OPEN
            and message.payload is not None
            and (marks is None or not marks.delivered(key[1], message.seq))  # type: ignore[index]
        ):
            # `_accept` for most frames: a new message on an open connection.
            counter = message.counter
            if counter > self._last_accepted:  # noqa: PLR1730 - no call per frame
                self._last_accepted = counter
            self._outstanding.append(counter)
            return message
        return self._accept(message, now)

    def needs_pool(self, data: bytes | str) -> bool:
        """Whether verifying ``data`` is worth leaving the event loop for: an
        `ed25519` frame (~50 µs of signature check). Read unverified, for
        routing only. A frame this says no to goes to `receive_message`."""
        return not self._refuse_ed25519 and data[:3] == _ED25519_PREFIX

    def verify(self, data: bytes, *, now: float) -> Message:
        """The off-loop half of `receive_message`: verify ``data`` (SPEC.md
        §6.4). May run on a pool thread; a pump keeps at most one `verify`
        of a connection in flight, and passes each outcome to `accept`, in
        arrival order, on the session's own thread. `accept` refuses an
        `ed25519` frame on a server without a server key (a pump that routes
        by `needs_pool` never verifies one: `receive_message` refuses it
        unverified).

        Raises:
            Rejected: the frame is refused; pass the exception to `accept`.
        """
        if type(data) is not bytes:
            if isinstance(data, str):
                raise Rejected(Code.MALFORMED, "text message; frames are binary")
            data = bytes(data)
        return self.verifier.verify(data, self.verifier_state, now=now)

    def accept(self, outcome: Message | Rejected, *, now: float) -> None:
        """The on-loop half: the outcome of `verify`, in arrival order.

        Then call `events_received` and `next_deadline`. This queues no data.
        """
        state = self.state
        if state is not _OPEN and state is not _AWAITING:
            return
        if isinstance(outcome, Rejected):
            self._reject(outcome.code, outcome.detail)
            return
        message = self._accept(outcome, now)
        if message is not None:
            self._events.append(MessageReceived(message))

    def receive_oversize(self) -> None:
        """The WebSocket library refused a message over ``max_frame_size``
        while reading it (it closed with 1009): ``frame_too_large``.

        Then call `events_received` (the connection is closed already: log
        the rejection, there is nothing to close)."""
        if self.state is _OPEN or self.state is _AWAITING:
            self._reject(
                Code.FRAME_TOO_LARGE,
                f"message over {self.verifier.max_frame_size} bytes (close 1009)",
            )

    def _reject(self, code: Code, detail: str) -> None:
        """The one place a connection is refused: one event, then nothing."""
        self.state = _REJECTED
        self._events.append(ConnectionRejected(code, detail))
        self._ack_due = None
        self._waiting_since = None

    def _accept(self, message: Message, now: float) -> Message | None:
        """A verified frame: the message if it is new (to deliver), else None."""
        if self.state is not _OPEN:  # the first accepted frame binds the principal
            if self._refuse_ed25519 and not self.can_send:
                # Verified by a pump that did not route by `needs_pool`.
                self._reject(Code.SCHEME_MISMATCH, _UNANSWERABLE_DETAIL)
                return None
            principal = (message.issuer, message.subject)
            principals = self._principals
            if principals is not None:
                busy = principals.bind(principal)
                if busy is not None:
                    self._reject(busy.code, busy.detail)
                    return None
            self.principal = principal
            self.state = _OPEN
            self._timeout = self._idle_timeout
        counter = message.counter
        self._last_accepted = max(self._last_accepted, counter)
        if message.payload is None:
            self._moved(now)  # a control frame: nothing to deliver
            return None
        marks = self._marks
        if marks is not None and marks.delivered(self._stream_key(message), message.seq):
            # Delivered before, by this connection or another (a resend).
            self._moved(now)
            return None
        self._outstanding.append(counter)
        return message

    def _stream_key(self, message: Message) -> StreamKey:
        """``message``'s `stream_key`, made once per stream of the connection
        (its frames all carry its one principal, SPEC.md §4.5)."""
        key = self._key
        if key is None or key[0] != message.stream:
            key = self._new_key(message)
        return key[1]

    def _new_key(self, message: Message) -> tuple[bytes, StreamKey]:
        """Make ``message``'s stream the connection's current one."""
        key = self._key = (
            message.stream,
            stream_key(message.issuer, message.subject, message.stream),
        )
        return key

    # -- input: the application ------------------------------------------------

    def take_message(self, message: Message, *, now: float) -> bool:
        """The application takes ``message`` (from a `MessageReceived`), and
        is done with the one it held (a handler asks for the next message
        when it is finished with the last). Moves the stream's mark
        (SPEC.md §7.3).

        Returns False if another connection delivered the same ``(stream,
        seq)`` meanwhile: do not hand it over (it counts as done).

        Then call `next_deadline` (an ack may be due sooner).
        """
        held = self._held
        if held is not None:
            self._held = None
            outstanding = self._outstanding
            if outstanding and outstanding[0] == held.counter:  # `_remove`, inlined
                outstanding.pop(0)
            else:
                self._remove(held.counter)
        marks = self._marks
        key = self._key  # `_stream_key`, inlined (once per message)
        if marks is not None and (key is None or key[0] != message.stream):
            key = self._new_key(message)
        if marks is None or marks.advance(key[1], message.seq):  # type: ignore[index]
            self._held = message
            if held is not None and self._ack_due is None:  # else an ack is due already
                self._moved(now)
            return True
        self._remove(message.counter)
        self._moved(now)
        return False

    def message_done(self, message: Message, *, now: float) -> None:
        """The application is finished with ``message`` (taken or not: a
        message not taken yet is taken first). Moves the delivery mark.

        Then call `next_deadline` (an ack may be due sooner).
        """
        if message is not self._held and not self.take_message(message, now=now):
            return
        self._held = None
        self._remove(message.counter)
        self._moved(now)

    def _remove(self, counter: int) -> None:
        outstanding = self._outstanding
        if outstanding and outstanding[0] == counter:
            outstanding.pop(0)
        elif counter in outstanding:
            outstanding.remove(counter)

    def _moved(self, now: float) -> None:
        """The delivery mark may have moved: have it acknowledged within
        ``ack_delay`` (coalescing: a due ack is not pushed back)."""
        if (
            self._ack_due is None
            and self._ack_delay is not None
            and self.state is _OPEN
            and self.delivered > self._sent_ack
        ):
            self._ack_due = now + self._ack_delay

    def send_message(self, payload: Payload, *, now: float) -> None:
        """Build a server frame carrying ``payload`` (None: a pure
        acknowledgement) and the delivery mark (SPEC.md §7.1, §7.3).

        Then call `data_to_send` and write the frame.

        Raises:
            InvalidState: before a client frame was verified, or on an
                `ed25519` connection without a server key (see `can_send`).
            UsageError: for a payload that is not str, bytes or None.
        """
        if payload is not None and type(payload) is not str and type(payload) is not bytes:
            raise UsageError("payload must be str, bytes or None")
        self._outgoing.append(self._frame(payload, now))

    def _frame(self, payload: Payload, now: float) -> bytes:
        credential = self.verifier_state.credential
        if credential is None:
            raise InvalidState("no client frame accepted yet: a server frame has no key")
        server_key = self._server_key
        if credential.kind == KIND_CLIENT_MAC:
            kind, key_id = KIND_SERVER_MAC, credential.cid
        elif server_key is not None:
            kind, key_id = KIND_SERVER_ED25519, server_key.kid
        else:
            raise InvalidState("an ed25519 connection needs a server_key to send frames")
        size = TAG_SIZES[kind]
        # Never backwards (counters may arrive out of order, §6.6).
        ack = max(self.delivered, self._sent_ack)
        counter = self._server_counter + 1
        fields = [VERSION, kind, key_id, self.nonce, counter, ack, int(now * 1000), payload]
        body = envelope.seal([*fields, bytes(size)], size)
        if kind == KIND_SERVER_MAC:
            tag = self.verifier.server_mac_tag(credential, body)
        else:
            assert server_key is not None  # noqa: S101 - as above
            tag = server_key.private_key.sign(self.verifier.server_signed_input(body))
        self._server_counter = counter
        self._sent_ack = ack
        if self._ack_due is not None and self.delivered <= ack:
            self._ack_due = None  # this frame carried it
        return body + bytes((0xC4, size)) + tag

    def claim_counter(self) -> int:
        """Take the next server counter for a frame built outside this class:
        a broadcast frame (SPEC.md §14.3), which shares the connection's
        server counter. Write it before any frame `send_message` queues next.

        Raises:
            InvalidState: before any client frame was verified (SPEC.md §7.1).
        """
        if self.verifier_state.credential is None:
            raise InvalidState("no client frame accepted yet: a server frame has no key")
        self._server_counter += 1
        return self._server_counter

    # -- input: time and the pump ----------------------------------------------

    def reading(self, now: float) -> None:
        """The pump reads from now on, waiting for the next frame: after the
        hello (the session assumes it at construction), after a frame it
        read for the pool, and when it resumes after `paused`. The frame
        deadline runs from ``now``.

        Then call `next_deadline`.
        """
        if self.state is _OPEN or self.state is _AWAITING:
            self._waiting_since = now

    def paused(self) -> None:
        """The pump stopped reading (backpressure: the application's queue is
        full): no frame can arrive, so no frame deadline runs until `reading`.
        """
        self._waiting_since = None

    def advance_time(self, now: float) -> None:
        """Time passed (the pump's timer for `next_deadline` fired). A due
        acknowledgement is queued; a frame deadline that passed rejects the
        connection (``first_frame_timeout`` or ``idle_timeout``, SPEC.md §10).

        Then call `events_received`, `data_to_send` and `next_deadline`.
        """
        state = self.state
        if state is not _OPEN and state is not _AWAITING:
            return
        since, timeout = self._waiting_since, self._timeout
        if since is not None and timeout is not None and now >= since + timeout:
            code = Code.IDLE_TIMEOUT if state is _OPEN else Code.FIRST_FRAME_TIMEOUT
            self._reject(code, f"no valid frame in {timeout:g} s")
            return
        due = self._ack_due
        if due is not None and now >= due:
            self._ack_due = None
            if self.delivered > self._sent_ack:
                self._outgoing.append(self._frame(None, now))

    def flush_ack(self, now: float) -> None:
        """Queue the due acknowledgement now rather than at its deadline (the
        application returned: no frame of its own will carry it).

        Then call `data_to_send`.
        """
        if self._ack_due is not None:
            self._ack_due = now
            self.advance_time(now)

    def connection_closed(self) -> None:
        """The connection is gone: give the principal's connection back (see
        `PrincipalLimit`). Nothing is accepted or due afterwards. Idempotent."""
        if self.state is _CLOSED:
            return
        if self.principal is not None and self._principals is not None:
            self._principals.unbind(self.principal)
        self.state = _CLOSED
        self._ack_due = None
        self._waiting_since = None

    # -- output ----------------------------------------------------------------

    def data_to_send(self) -> list[bytes]:
        """The frames to write, in order (the hello first), since the last call."""
        data = self._outgoing
        if data:
            self._outgoing = []
        return data

    def events_received(self) -> list[MessageReceived | ConnectionRejected]:
        """The events since the last call, in order."""
        events = self._events
        if events:
            self._events = []
        return events

    def next_deadline(self) -> float | None:
        """When `advance_time` must be called next: the earlier of a due
        acknowledgement and the frame deadline (while reading); None if
        neither. The pump keeps one timer for it."""
        due = self._ack_due
        since = self._waiting_since
        if since is not None:
            timeout = self._timeout
            if timeout is not None:
                deadline = since + timeout
                if due is None or deadline < due:
                    return deadline
        return due
