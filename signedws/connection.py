"""The server side of one signedws connection on asyncio, for any WebSocket library.

Theory of operation
-------------------
A server adapter (`signedws.asyncio.server` on websockets, `signedws.asgi` on
Starlette and FastAPI) does the opening handshake in its library's terms: the
``Origin`` allow-list (`OriginPolicy`), the ``signedws.v1`` subprotocol, the
message size limit and the connection limit (`Service.admit`). It then wraps
the accepted WebSocket in a `Transport` -- receive a message, send bytes,
close, wait until closed -- and everything after that lives here, once, for
every adapter. Per connection, a `ServerConnection`:

- sends the hello of a new core `ServerSession`;
- takes client messages as the transport hands them over (a *push*
  transport, `PushTransport`: websockets, from inside its reader, with no
  queue or task switch per message) or runs a *pump* task that reads them (a
  `PullTransport`: ASGI), and verifies them (SPEC.md §6.4, the verifier
  `ServerSession.receive` calls): `mac` frames inline; `ed25519` frames (~50 µs
  each) in a thread pool, since libsodium and OpenSSL release the GIL. The
  pump keeps reading while a connection's frames are in the pool: the frames
  read meanwhile go in one job, verified in order by one thread, and the
  results come back to the loop in bulk (`_Inbox`), so a busy connection
  costs a hand-off per burst, not per frame;
- drops resends already delivered (`StreamMarks`, SPEC.md §7.3), queues the
  rest for the application, and stops reading while ``max_queue`` messages
  are queued or being verified (a push transport pauses the socket, and must
  stop delivering within a bounded number of bytes: the websockets adapter
  parses at most one read, 1 KiB under permessage-deflate, between checks);
- schedules a coalesced acknowledgement and enforces the first-frame and
  idle timeouts with one timer per connection, re-armed lazily;
- is what the application's handler gets: `recv` returns verified
  `Message`\\ s and `send` builds server frames.

This module imports asyncio but no WebSocket library, and ``import signedws``
does not import it: it sits above the sans-I/O core, beside the adapters.

Invariants:

1. Frames of one connection are verified one at a time, in arrival order, and
   reach the handler in that order: a connection has at most one job in the
   pool, and frames read while it runs wait behind it. The verifier is shared
   and thread-safe across connections. A job's cost is bounded
   (`_BATCH_BYTES`), so one busy connection delays another's frames by about
   a millisecond at most.
2. Any rejection closes the connection with the code's close code and opaque
   reason, after exactly one WARNING line on the ``signedws.server`` logger
   naming the connection id, the code and the core's detail (`log_rejection`,
   the one place that maps a rejection to a log line and a close). No frame
   byte, payload, token, key or signature is ever logged. Frames read after a
   rejected one are dropped unverified, at once (those waiting for the pool
   too), and a push transport stops reading: it fails the connection (close
   frame, then the end of the TCP connection, discarding what the peer sends
   meanwhile unparsed). Frames read before the connection closed are still
   verified, and the first rejection among them is the one logged.
3. Server frames are built and written under one lock per connection, so
   their counters reach the wire in order.
4. Acknowledgements cover only frames the handler is done with (SPEC.md §7.3):
   a message is done when the handler asks for the next one or returns; its
   stream's mark (`StreamMarks`) moves when the handler takes it, never when
   it is queued, so a message queued for a handler that stops is neither
   acknowledged nor marked, and its resend is delivered;
   control frames and dropped resends are done once nothing queued precedes
   them. Each advance is acknowledged within ``ack_delay``, by a pure
   acknowledgement or by a handler frame that carries the ack. The delivery
   mark moves on the event loop only, never in a pool thread.
5. The exceptions a handler sees when the connection is closed are its
   WebSocket library's own (`Transport.Closed`): an adapter mirrors upstream.
6. A timeout is the time the pump waits for the next frame: from the hello
   to the first frame (``first_frame_timeout``), then between frames
   (``idle_timeout``); like ``asyncio.timeout`` around the read, it cancels
   the read when it expires.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass
from typing import ClassVar, Final, Protocol, Self, cast, runtime_checkable

from .envelope import KIND_CLIENT_ED25519
from .errors import Code, Rejected, UsageError
from .session import ServerKey, ServerSession
from .stream import StreamKey, StreamMarks, stream_key
from .verifier import Message, Verifier

__all__ = [
    "DEFAULT_ACK_DELAY",
    "DEFAULT_FIRST_FRAME_TIMEOUT",
    "DEFAULT_IDLE_TIMEOUT",
    "DEFAULT_MAX_CONNECTIONS",
    "DEFAULT_MAX_CONNECTIONS_PER_PRINCIPAL",
    "DEFAULT_MAX_QUEUE",
    "SUBPROTOCOL",
    "FrameSink",
    "OriginPolicy",
    "PullTransport",
    "PushTransport",
    "ServerConnection",
    "Service",
    "Transport",
    "log_refusal",
    "log_rejection",
]

#: The WebSocket subprotocol of signedws v1 (SPEC.md §5.1).
SUBPROTOCOL: Final = "signedws.v1"

DEFAULT_FIRST_FRAME_TIMEOUT: Final = 10.0
DEFAULT_IDLE_TIMEOUT: Final = 300.0
DEFAULT_MAX_CONNECTIONS: Final = 10_000
DEFAULT_MAX_CONNECTIONS_PER_PRINCIPAL: Final = 1_000
DEFAULT_ACK_DELAY: Final = 0.02
DEFAULT_MAX_QUEUE: Final = 16

#: WebSocket close codes this module sends itself (RFC 6455 §7.4.1).
NORMAL_CLOSURE: Final = 1000
INTERNAL_ERROR: Final = 1011

logger = logging.getLogger("signedws.server")

#: The most frame bytes one hand-off to the pool verifies (beyond its first
#: frame). Pool threads take jobs first come, first served: a bound on each
#: job's cost bounds how long one busy connection delays everyone else's
#: frames (an Ed25519 check costs ~50 µs plus hashing the frame).
_BATCH_BYTES: Final = 32768


#: The first bytes of an `ed25519` client frame: ``data[:3] == _ED25519_PREFIX``
#: is ``_unverified_kind(data) == KIND_CLIENT_ED25519`` in one comparison.
_ED25519_PREFIX: Final = bytes((0x9A, 0x01, KIND_CLIENT_ED25519))


def _unverified_kind(data: bytes) -> int | None:
    """The envelope kind of a client frame, read without decoding or verifying
    it (a 10-element fixarray, then the version, then the kind). Used only to
    pick where to verify the frame; the verifier checks everything again."""
    if len(data) > 2 and data[0] == 0x9A and data[1] == 0x01:
        return data[2]
    return None


def log_rejection(connection_id: object, code: Code, detail: str) -> None:
    """Log one rejection (SPEC.md §9): id, code name and number, and detail.

    The detail comes from the core or from an adapter and names fields and
    identifiers only.
    """
    logger.warning(
        "rejected connection=%s code=%s number=%d detail=%s",
        connection_id,
        code.id,
        code.number,
        detail,
        extra={"signedws_connection": str(connection_id), "signedws_code": code.id},
    )


def log_refusal(connection_id: object, status: int, reason: str) -> None:
    """Log one handshake refused before the upgrade, with its HTTP status."""
    logger.warning(
        "refused handshake connection=%s status=%d reason=%s",
        connection_id,
        status,
        reason,
        extra={"signedws_connection": str(connection_id), "signedws_status": status},
    )


@dataclass(frozen=True, slots=True)
class OriginPolicy:
    """Which ``Origin`` header values may open a connection (SPEC.md §11.2).

    Attributes:
        allowed: strings compared exactly, compiled patterns matched in full,
            and None for clients that send no Origin.
    """

    allowed: tuple[str | re.Pattern[str] | None, ...]

    @classmethod
    def build(
        cls, origins: Sequence[str | re.Pattern[str]], *, allow_no_origin: bool
    ) -> OriginPolicy:
        """The policy for ``origins`` (strings or compiled patterns) and, if
        ``allow_no_origin``, clients without an Origin.

        Args:
            origins: the ``Origin`` values browsers may connect from, as
                strings (compared exactly) or compiled patterns (matched in
                full); any other Origin is refused with HTTP 403 before the
                upgrade (SPEC.md §11.2).
            allow_no_origin: accept clients that send no Origin (non-browser
                clients). Off unless asked for (SPEC.md §11.2).

        Raises:
            UsageError: for an origin that is neither (None included: that is
                ``allow_no_origin``), or a policy that would admit nobody.
        """
        allowed: list[str | re.Pattern[str] | None] = []
        for origin in origins:
            if not isinstance(origin, str | re.Pattern):
                raise UsageError("origins are strings or compiled patterns; see allow_no_origin")
            allowed.append(origin)
        if allow_no_origin:
            allowed.append(None)
        if not allowed:
            raise UsageError(
                "this server would accept nobody: give origins or allow_no_origin=True"
            )
        return cls(tuple(allowed))

    def allows(self, origin: str | None) -> bool:
        """Whether a handshake with this ``Origin`` value (None: no header) may
        proceed: websockets' rule, an exact string or a full pattern match."""
        for allowed in self.allowed:
            if allowed == origin:
                return True
            if (
                isinstance(allowed, re.Pattern)
                and origin is not None
                and allowed.fullmatch(origin) is not None
            ):
                return True
        return False

    @staticmethod
    def refusal_reason(origin: str | None) -> str:
        """The log reason for a refused Origin (the value, escaped)."""
        return f"origin not allowed: {origin!r}"


class Service:
    """What every connection of one server shares: the configuration, the
    verifier, the stream marks, the thread pool and the connection slots.

    Adapters build one per server from their keyword arguments, with the
    defaults in their signatures; the meanings are documented here, once.

    Args:
        verifier: the core verifier (keyring, audience, fleet key, revocation
            set, replay window, ``max_frame_size``).
        server_key: the key `ed25519` server frames are signed with; without
            one, `ed25519` connections get no server frames (not even acks).
        first_frame_timeout: seconds from the hello to the first valid frame
            (close 4408, ``first_frame_timeout``). None: no limit.
        idle_timeout: seconds between valid frames after the first (close
            4408, ``idle_timeout``). None: no limit.
        max_connections: connections (handshakes in progress included)
            beyond which handshakes are refused with HTTP 503 (``server_busy``).
        max_connections_per_principal: connections one principal ``(iss,
            sub)`` may hold at once; a connection beyond it is closed at its
            first valid frame with ``server_busy`` (4503). None: no limit.
        ack_delay: seconds after a delivered frame within which a pure
            acknowledgement is sent if the handler sent nothing (acks are
            coalesced). None: only handler frames carry acks.
        max_queue: verified messages buffered for the handler before the
            server stops reading from the connection.
        stream_marks: the per-stream high-water marks (SPEC.md §7.3).
        dedupe: deliver each ``(stream, seq)`` once (default). Off: deliver
            resends too, for applications that keep their own marks.
        executor: where `ed25519` frames are verified, one frame per call.
            By default a thread pool of ``verify_workers`` threads, each call
            verifying the frames one connection has waiting, in order.
        verify_workers: size of the default pool (None: the CPUs this
            process may run on); 1 verifies on the event loop, without a pool.
        clock: the wall clock verification uses, seconds (for tests).

    Raises:
        UsageError: for a verifier that is not a `Verifier` or an invalid limit.
    """

    def __init__(
        self,
        *,
        verifier: Verifier,
        server_key: ServerKey | None,
        first_frame_timeout: float | None,
        idle_timeout: float | None,
        max_connections: int,
        ack_delay: float | None,
        max_queue: int,
        stream_marks: StreamMarks | None,
        dedupe: bool,
        executor: Executor | None,
        verify_workers: int | None,
        clock: Callable[[], float],
        max_connections_per_principal: int | None = DEFAULT_MAX_CONNECTIONS_PER_PRINCIPAL,
    ) -> None:
        if not isinstance(verifier, Verifier):
            raise UsageError("verifier must be a signedws Verifier")
        for name, value in (
            ("first_frame_timeout", first_frame_timeout),
            ("idle_timeout", idle_timeout),
            ("ack_delay", ack_delay),
        ):
            if value is not None and value < 0:
                raise UsageError(f"{name} must not be negative")
        if type(max_connections) is not int or max_connections < 1:
            raise UsageError("max_connections must be a positive integer")
        if max_connections_per_principal is not None and (
            type(max_connections_per_principal) is not int or max_connections_per_principal < 1
        ):
            raise UsageError("max_connections_per_principal must be a positive integer or None")
        if type(max_queue) is not int or max_queue < 1:
            raise UsageError("max_queue must be a positive integer")
        self.verifier = verifier
        self.server_key = server_key
        self.first_frame_timeout = first_frame_timeout
        self.idle_timeout = idle_timeout
        self.max_connections = max_connections
        self.ack_delay = ack_delay
        self.max_queue = max_queue
        if not dedupe:
            stream_marks = None
        elif stream_marks is None:
            stream_marks = StreamMarks()
        self.marks = stream_marks
        self._executor = executor
        self._verify_workers = verify_workers or usable_cpus()
        #: Whether `ed25519` frames leave the loop: with a caller's executor,
        #: or a pool of more than one thread (one thread beside a busy loop
        #: adds hand-offs and little parallelism; measured in benchmarks/e2e.py).
        self.offload = executor is not None or self._verify_workers > 1
        #: Frames verified per hand-off to the pool: as many as wait, for the
        #: built-in pool; one for an executor given by the caller.
        self.verify_batch = max_queue if executor is None else 1
        self._inbox: _Inbox | None = None
        self.clock = clock
        self.slots: set[object] = set()
        self.max_connections_per_principal = max_connections_per_principal
        #: Open connections per principal, after their first valid frame.
        self.principals: dict[tuple[str, str], int] = {}

    def bind(self, principal: tuple[str, str]) -> Rejected | None:
        """Count a connection for ``principal`` (at its first valid frame), or
        the ``server_busy`` rejection if the principal holds its limit."""
        held = self.principals.get(principal, 0)
        limit = self.max_connections_per_principal
        if limit is not None and held >= limit:
            return Rejected(
                Code.SERVER_BUSY,
                "iss={!r} sub={!r} holds {} connections, limit per principal {}",
                principal[0],
                principal[1],
                held,
                limit,
            )
        self.principals[principal] = held + 1
        return None

    def unbind(self, principal: tuple[str, str]) -> None:
        """A connection counted by `bind` is gone."""
        held = self.principals.pop(principal, 0) - 1
        if held > 0:
            self.principals[principal] = held

    @property
    def executor(self) -> Executor:
        """The pool Ed25519 frames are verified in, created on first use. Its
        idle workers exit when it is garbage collected with the server."""
        if self._executor is None:
            self._executor = ThreadPoolExecutor(
                max_workers=self._verify_workers, thread_name_prefix="signedws-verify"
            )
        return self._executor

    def inbox(self, loop: asyncio.AbstractEventLoop) -> _Inbox:
        """Where the pool posts verification results for connections on
        ``loop`` (a server runs on one loop; a new loop gets a new inbox)."""
        inbox = self._inbox
        if inbox is None or inbox.loop is not loop:
            inbox = self._inbox = _Inbox(loop)
        return inbox

    def admit(self, slot: object, connection_id: object) -> bool:
        """Take a connection slot for ``slot`` (any hashable the adapter
        releases later), or log ``server_busy`` and return False when all
        ``max_connections`` are taken."""
        if len(self.slots) >= self.max_connections:
            log_rejection(
                connection_id,
                Code.SERVER_BUSY,
                f"{len(self.slots)} connections, limit {self.max_connections}",
            )
            return False
        self.slots.add(slot)
        return True

    def release(self, slot: object) -> None:
        """Give a slot back (idempotent)."""
        self.slots.discard(slot)


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity, where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0)) or 1
    return os.cpu_count() or 1  # pragma: no cover - not on Linux


class _Inbox:
    """Verification results on their way back to one event loop.

    Pool threads `post`; the loop runs `_deliver` once for every result
    posted since it last ran, so a burst of results costs one wake-up of the
    loop, not one each.
    """

    __slots__ = ("_results", "_scheduled", "loop")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._results: deque[tuple[ServerConnection, list[Message | Exception]]] = deque()
        self._scheduled = False

    def post(self, connection: ServerConnection, results: list[Message | Exception]) -> None:
        """From any thread: hand ``results`` to ``connection`` on its loop."""
        self._results.append((connection, results))
        # A race between two posts at most schedules `_deliver` twice; the
        # flag is cleared before the deque is drained, so none is missed.
        if not self._scheduled:
            self._scheduled = True
            with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits
                self.loop.call_soon_threadsafe(self._deliver)

    def _deliver(self) -> None:
        self._scheduled = False
        results = self._results
        while results:
            connection, outcome = results.popleft()
            connection._verified(outcome)


class Transport(Protocol):
    """What a WebSocket library gives a `ServerConnection`, after the handshake.

    Client messages come one of two ways. A *pull* transport has ``receive``,
    which a pump task awaits message after message. A *push* transport (a
    `PushTransport`) calls the connection's `FrameSink` methods itself, as it
    parses messages off the socket, and pauses reading when asked: no queue and
    no task switch per message between the library and signedws.

    ``receive`` and ``send`` raise `Closed` once the connection is closed, for
    any reason; ``close`` never raises for a connection already closed.
    """

    #: The library's "connection closed" exception; handlers see it too.
    Closed: ClassVar[type[Exception]]

    @property
    def id(self) -> object:
        """The connection id, as logged."""

    async def send(self, data: bytes) -> None:
        """Send a binary message."""

    async def close(self, code: int, reason: str) -> None:
        """Start (or perform) the closing handshake with ``code`` and ``reason``."""

    async def wait_closed(self) -> None:
        """Wait until the connection is closed."""

    def close_error(self) -> Exception:
        """The `Closed` exception describing how the connection ended, for
        reads after it ended."""

    def write(self, data: bytes) -> bool:
        """Send a binary message without waiting (a broadcast frame, SPEC.md
        §14): queued behind every message `send` was called with before, and
        ahead of every later one. False, writing nothing, once the connection
        is closing or closed. Never raises."""

    def buffered(self) -> int:
        """Bytes written and not yet handed to the network: how far behind the
        peer is reading (the broadcast slow-consumer check)."""

    def refused_oversize(self, exc: Exception) -> bool:
        """Whether ``exc`` (a `Closed`) means the library refused a message
        over its size limit while reading it (close code 1009, SPEC.md §9)."""


class PullTransport(Transport, Protocol):
    """A `Transport` read message by message (see `Transport`)."""

    def receive(self) -> Awaitable[bytes | str]:
        """The next whole message: bytes for binary, str for text (an
        awaitable: a coroutine method, or the library's own bound method)."""


class FrameSink(Protocol):
    """What a `PushTransport` feeds: a `ServerConnection`, on the event loop."""

    def frame_received(self, data: bytes | str) -> None:
        """One whole client message: bytes for binary, str for text. Never raises."""

    def connection_ended(self) -> None:
        """The connection is closed (after the library's closing handshake or a
        network failure): no more messages will come. Never raises."""


@runtime_checkable
class PushTransport(Transport, Protocol):
    """A `Transport` that delivers messages itself (see `Transport`)."""

    def attach(self, sink: FrameSink) -> None:
        """Deliver every client message from now on (and those that arrived
        before, in order) to ``sink``, then tell it when the connection ends.
        If it ended already, `FrameSink.connection_ended` is called at once."""

    def pause_reading(self) -> None:
        """Stop reading from the socket (idempotent): the peer is slowed down
        by TCP flow control. Messages already read are still delivered."""

    def resume_reading(self) -> None:
        """Read from the socket again (idempotent)."""

    async def fail(self, code: int, reason: str) -> None:
        """After a rejection: drop every message read and not yet delivered,
        send a close frame with ``code`` and ``reason``, and end the TCP
        connection without parsing another message (RFC 6455 §7.1.7, *Fail
        the WebSocket Connection*): what the peer sends next is discarded
        unread until it closes, within the library's close timeout."""


class ServerConnection:
    """One authenticated connection, as the application handler sees it.

    Messages from `recv` (or ``async for``) have passed SPEC.md §6.4 and, by
    default, were not delivered before (SPEC.md §7.3); control frames are never
    returned. `send` writes authenticated server frames (SPEC.md §7.1). Each
    adapter subclasses it to expose its library's WebSocket object.
    """

    def __init__(self, service: Service, transport: PullTransport | PushTransport) -> None:
        self._service = service
        self._transport = transport
        self.session = ServerSession(
            service.verifier, now=service.clock(), server_key=service.server_key
        )
        # `ServerSession.receive`, without its call: the hot path.
        self._verify_frame = service.verifier.verify
        self._state = self.session.state
        self._clock = service.clock
        self._offload = service.offload
        # ed25519 frames leave the inline path: for the pool, or to be refused.
        self._no_ed25519 = service.server_key is None
        self._divert = self._offload or self._no_ed25519
        self._messages: deque[Message] = deque()
        # The stream of the connection's last message and its `stream_key`.
        self._key_stream: bytes | None = None
        self._key: StreamKey | None = None
        # Delivery (SPEC.md §7.3): acks cover only frames the handler is done
        # with. The session's delivery mark moves here, on the loop, never in
        # a verification thread; `_delivered` mirrors it.
        self._holding: Message | None = None
        self._last_accepted = 0
        self._delivered = 0
        self.session.deliver(0)
        # The handler waiting for a message, the pump waiting for room.
        self._reader: asyncio.Future[None] | None = None
        self._waker: asyncio.Future[None] | None = None
        self._accepted = asyncio.Event()
        self._closed = asyncio.Event()
        self._send_lock = asyncio.Lock()
        self._ack_handle: asyncio.TimerHandle | None = None
        self._ack_tasks: set[asyncio.Task[None]] = set()
        self._can_ack = True
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pump_task: asyncio.Task[None] | None = None
        # Timeouts: one timer per connection, re-armed lazily (`_timer_due`).
        self._timer: asyncio.TimerHandle | None = None
        # The pump has waited for a frame since then (on `_now`'s clock, the
        # loop's): the deadline is that plus the current timeout.
        self._waiting_since = 0.0
        self._now: Callable[[], float] = time.monotonic
        self._timeout: float | None = None
        self._timeout_code = Code.FIRST_FRAME_TIMEOUT
        self._receiving = False
        self._first = True
        # A push transport (`PushTransport`) feeds `frame_received`, paused
        # while the queue is full; a pull transport is read by `_pump`.
        self._push = False
        self._paused = False
        self._finished = False
        self._stop_task: asyncio.Task[None] | None = None
        # Why the pump must stop (a rejection, a timeout, an internal error),
        # set by callbacks on the loop.
        self._stop: Exception | None = None
        # Frames off the loop: read, not yet verified (`_unverified`), then
        # handed to the pool (`_in_flight`); `_backlog` counts both.
        self._unverified: list[tuple[bytes, float]] = []
        self._in_flight = 0
        self._backlog = 0
        # The principal this connection is counted for (`Service.bind`).
        self._bound: tuple[str, str] | None = None

    @property
    def id(self) -> object:
        """The connection id, as logged."""
        return self._transport.id

    @property
    def principal(self) -> tuple[str, str] | None:
        """``(iss, sub)`` the connection is bound to, after its first accepted
        frame (SPEC.md §4.5)."""
        return self.session.state.principal

    def __repr__(self) -> str:
        return f"{type(self).__name__}(id={self.id}, principal={self.principal!r})"

    # -- receiving ------------------------------------------------------------------

    async def recv(self) -> Message:
        """The next verified message.

        Messages accepted before the connection closed are still returned;
        after them this raises.

        Raises:
            Exception: the WebSocket library's "connection closed" exception
                (see the adapter) when the connection is closed.
        """
        if self._messages:
            message = self._take()
            if message is not None:
                return message
        # Asking for the next message means the handler is done with the last.
        self._release()
        while True:
            while not self._messages:
                if self._closed.is_set():
                    await self._transport.wait_closed()
                    raise self._transport.close_error()
                reader = self._reader = asyncio.get_running_loop().create_future()
                try:
                    await reader
                finally:
                    self._reader = None
            message = self._take()
            if message is not None:
                return message

    def _take(self) -> Message | None:
        """Hand the handler the next queued message: it is done with the one
        it held, and everything accepted before the new one (SPEC.md §7.3).

        The stream's mark moves here, when the handler takes the message, not
        when it was queued: a message queued for a handler that stops is not
        delivered, and its resend on the next connection is. A queued message
        another connection's handler took meanwhile (the same stream,
        resent) is dropped here: None if no message is left."""
        messages = self._messages
        marks = self._service.marks
        message: Message | None = None
        while messages:
            message = messages.popleft()
            if marks is None or marks.advance(self._stream_key(message), message.seq):
                break
            message = None  # delivered by another connection meanwhile
        self._holding = message
        if self._ack_handle is None:
            self._schedule_ack()
        if self._waker is not None or (
            self._paused and len(messages) + self._backlog < self._service.max_queue
        ):
            self._wake_pump()
        return message

    def __aiter__(self) -> Self:
        """Iterate over verified messages until the connection closes, for any
        reason (a rejection was logged already)."""
        return self

    async def __anext__(self) -> Message:
        """The next verified message; the end of the iteration once the
        connection is closed."""
        if self._messages:
            message = self._take()
            if message is not None:
                return message
        try:
            return await self.recv()
        except self._transport.Closed:
            raise StopAsyncIteration from None

    # -- sending --------------------------------------------------------------------

    async def send(self, payload: str | bytes) -> None:
        """Send an authenticated server frame carrying ``payload`` and the
        latest acknowledgement.

        Waits until the client's first frame was accepted: before it, a server
        frame has no key (SPEC.md §7.1).

        Raises:
            UsageError: for a payload that is not str or bytes, or on an
                `ed25519` connection of a server without ``server_key``.
            Exception: the WebSocket library's "connection closed" exception
                if the connection is closed.
        """
        if type(payload) is not str and type(payload) is not bytes:
            raise UsageError("payload must be str or bytes")
        if not self._accepted.is_set():
            waiters = [asyncio.ensure_future(e.wait()) for e in (self._accepted, self._closed)]
            try:
                await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for waiter in waiters:
                    waiter.cancel()
            if not self._accepted.is_set():
                await self._transport.wait_closed()
                raise self._transport.close_error()
        async with self._send_lock:
            self._sync_delivery()
            frame = self.session.send(payload, now=self._service.clock())
            await self._transport.send(frame)

    # -- broadcast (SPEC.md §14; `signedws.asyncio.topics`) ------------------------------

    @property
    def writable(self) -> bool:
        """Whether a broadcast frame can be built and written now: the client's
        first frame was accepted (a server frame has a key, SPEC.md §14.3) and
        the connection is not closed."""
        return self._accepted.is_set() and not self._closed.is_set()

    @property
    def closed(self) -> bool:
        """Whether the connection is closed (or closing): nothing more is sent."""
        return self._closed.is_set()

    def write_frame(self, frame: bytes) -> bool:
        """Write a server frame built outside `send` (a broadcast frame whose
        counter came from ``session.claim_counter()``) without waiting.

        Call it in the same event-loop step as the counter claim: every frame
        `send` builds is written in the step that builds it, so frames leave
        in counter order. False (nothing written) once the connection closed.
        """
        return self._transport.write(frame)

    @property
    def buffered(self) -> int:
        """Bytes written to the connection and not yet sent (see
        `Transport.buffered`)."""
        return self._transport.buffered()

    async def close(self, code: int = NORMAL_CLOSURE, reason: str = "") -> None:
        """Close the connection (the closing handshake, as the library's ``close``)."""
        await self._transport.close(code, reason)

    async def wait_closed(self) -> None:
        """Wait until the connection is closed."""
        await self._transport.wait_closed()

    # -- delivery and acknowledgements -----------------------------------------------

    def _release(self) -> None:
        """The handler is done with the message it holds: move the delivery mark."""
        self._holding = None
        self._advance_delivery()

    def _advance_delivery(self) -> None:
        """The delivery mark may have moved: have it acknowledged."""
        if self._ack_handle is None:
            self._schedule_ack()

    def _sync_delivery(self) -> None:
        """Move the session's delivery mark up to the first message the handler
        still owes. Computed when a frame is built (`send`, `_send_ack`), not
        as each message is taken: the same mark, for one call per frame sent."""
        if self._holding is not None:
            point = self._holding.counter - 1
        elif self._messages:
            point = self._messages[0].counter - 1
        else:
            point = self._last_accepted
        if point > self._delivered:
            self._delivered = point
            self.session.deliver(point)

    def _schedule_ack(self) -> None:
        delay = self._service.ack_delay
        if delay is None or self._ack_handle is not None or not self._can_ack:
            return
        self._ack_handle = asyncio.get_running_loop().call_later(delay, self._ack_due)

    def _ack_due(self) -> None:
        self._ack_handle = None
        # Acks queue on the send lock; each sends only if one is still due.
        task = asyncio.create_task(self._send_ack())
        self._ack_tasks.add(task)
        task.add_done_callback(self._ack_tasks.discard)

    async def _send_ack(self) -> None:
        async with self._send_lock:
            self._sync_delivery()
            if not self.session.ack_pending or self._closed.is_set():
                return
            try:
                frame = self.session.ack(now=self._service.clock())
            except UsageError:
                # An ed25519 connection on a server without a server key.
                self._can_ack = False
                logger.warning(
                    "connection=%s: ed25519 client but no server_key: cannot acknowledge",
                    self.id,
                )
                return
            with contextlib.suppress(self._transport.Closed):
                await self._transport.send(frame)

    # -- the pump -------------------------------------------------------------------

    async def _reject(self, exc: Rejected) -> None:
        log_rejection(self.id, exc.code, exc.detail)
        if self._push:
            # Send the close frame and end the connection without reading or
            # inflating another message (RFC 6455 §7.1.7).
            await cast(PushTransport, self._transport).fail(
                exc.code.close_code, exc.code.peer_reason
            )
        else:
            await self._transport.close(exc.code.close_code, exc.code.peer_reason)

    def _accept(self, message: Message) -> None:
        """A verified frame: queue it for the handler, or count it delivered."""
        if not self._last_accepted:
            principal = (message.issuer, message.subject)
            busy = self._service.bind(principal)
            if busy is not None:
                self._interrupt(busy)
                return
            self._bound = principal
            self._accepted.set()
        self._last_accepted = message.counter
        if message.payload is None:
            self._advance_delivery()  # nothing to deliver
            return
        marks = self._service.marks
        if marks is not None and marks.delivered(self._stream_key(message), message.seq):
            # Delivered before (by this connection or another). A message that
            # is only queued has not moved its stream's mark: the mark moves
            # when a handler takes the message (`_take`, SPEC.md §7.3).
            if logger.isEnabledFor(logging.DEBUG):
                logger.debug(
                    "connection=%s: dropped resent seq=%d, delivered before",
                    self.id,
                    message.seq,
                )
            self._advance_delivery()
            return
        self._messages.append(message)
        reader = self._reader
        if reader is not None and not reader.done():
            reader.set_result(None)

    def _stream_key(self, message: Message) -> StreamKey:
        """``message``'s `stream_key`, made once per stream of the connection
        (its frames all carry its one principal, SPEC.md §4.5)."""
        key = self._key
        if key is None or message.stream != self._key_stream:
            self._key_stream = message.stream
            key = self._key = stream_key(message.issuer, message.subject, message.stream)
        return key

    def _wake_pump(self) -> None:
        """Room in the queue, verified frames or a stop: wake the pump (pull),
        or read again if there is room (push)."""
        waker = self._waker
        if waker is not None and not waker.done():
            waker.set_result(None)
        if (
            self._paused
            and self._stop is None
            and len(self._messages) + self._backlog < self._service.max_queue
        ):
            self._paused = False
            self._receiving = True
            self._arm_timer()
            cast(PushTransport, self._transport).resume_reading()

    def _arm_timer(self) -> None:
        """The pump waits for a frame from now on: set the deadline, and the
        timer if none is pending (an earlier one re-arms itself when due)."""
        timeout = self._timeout
        if timeout is not None:
            now = self._waiting_since = self._now()
            if self._timer is None:
                loop = self._loop
                assert loop is not None  # noqa: S101 - the connection is open
                self._timer = loop.call_at(now + timeout, self._timer_due)

    async def _wait(self) -> None:
        """Sleep until `_wake_pump` (room in the queue, verified frames, a stop)."""
        waker = self._waker = asyncio.get_running_loop().create_future()
        try:
            await waker
        finally:
            self._waker = None

    def _interrupt(self, reason: Exception) -> None:
        """Stop the pump for ``reason`` (on the loop): it rejects or fails next."""
        if self._stop is not None:
            return
        if isinstance(reason, Rejected):
            # A rejection is logged by code and detail, never with a stack.
            # Its traceback, and that of the exception it was raised from
            # (say msgpack's), would hold the frames they passed through and
            # their locals (the frame's bytes; under a push transport, the
            # library's whole read buffer) as long as this connection object.
            reason.__traceback__ = None
            reason.__context__ = reason.__cause__ = None
        self._stop = reason
        # Nothing read after the stop is verified or kept: drop the frames
        # waiting for the pool now (a job in flight finishes and is ignored),
        # rather than holding them until the connection is gone.
        self._backlog -= len(self._unverified)
        self._unverified = []
        if self._push:
            self._receiving = False
            # No more reading (and, under compression, no more inflating)
            # until the transport fails the connection (`_reject`).
            self._paused = True
            cast(PushTransport, self._transport).pause_reading()
            self._stop_task = asyncio.get_running_loop().create_task(self._stopped())
        elif self._receiving:
            assert self._pump_task is not None  # noqa: S101 - it is receiving
            self._pump_task.cancel()
        else:
            self._wake_pump()

    def _timer_due(self) -> None:
        """The connection's one timer: reject if the pump has waited for a
        frame past its deadline, else re-arm for the current deadline."""
        self._timer = None
        if not self._receiving or self._stop is not None:
            return  # the next receive re-arms it
        loop = asyncio.get_running_loop()
        timeout = self._timeout
        assert timeout is not None  # noqa: S101 - armed with one; cancelled when it changes
        deadline = self._waiting_since + timeout
        if loop.time() < deadline:
            self._timer = loop.call_at(deadline, self._timer_due)
            return
        self._interrupt(Rejected(self._timeout_code, f"no valid frame in {self._timeout:g} s"))

    def _submit(self) -> None:
        """Hand the frames waiting for verification to the pool, in one job."""
        service = self._service
        batch = self._unverified
        limit = service.verify_batch
        count = size = 0
        for data, _ in batch:
            size += len(data)
            if count == limit or (count and size > _BATCH_BYTES):
                break
            count += 1
        if count < len(batch):
            self._unverified = batch[count:]
            batch = batch[:count]
        else:
            self._unverified = []
        self._in_flight = len(batch)
        assert self._loop is not None  # noqa: S101 - the pump runs
        try:
            service.executor.submit(self._verify, batch, service.inbox(self._loop))
        except Exception as exc:
            self._interrupt(exc)

    def _verify(self, batch: list[tuple[bytes, float]], inbox: _Inbox) -> None:
        """Verify ``batch`` in order, in a pool thread, and post the outcome:
        the messages, then the exception that stopped it if any."""
        receive = self.session.receive
        results: list[Message | Exception] = []
        try:
            for data, now in batch:
                results.append(receive(data, now=now))
        except Exception as exc:
            results.append(exc)
        inbox.post(self, results)

    def _verified(self, results: list[Message | Exception]) -> None:
        """On the loop: a job's outcome, in order."""
        self._in_flight = 0
        if self._stop is not None or self._closed.is_set():
            return
        for result in results:
            self._backlog -= 1
            if type(result) is not Message:
                assert isinstance(result, Exception)  # noqa: S101
                self._interrupt(result)
                return
            self._accept(result)
            if self._stop is not None:
                return
        if self._unverified:
            self._submit()
        self._wake_pump()

    def _frame(self, data: bytes | str) -> None:
        """One whole client message, just read (on the loop): verify it here,
        or queue it for the pool behind the frames already there."""
        if self._first:
            self._first = False
            self._timeout = self._service.idle_timeout
            self._timeout_code = Code.IDLE_TIMEOUT
            if self._timer is not None:  # deadlines may come sooner now
                self._timer.cancel()
                self._timer = None
        if isinstance(data, str):
            self._interrupt(Rejected(Code.MALFORMED, "text message; frames are binary"))
        elif self._no_ed25519 and data[:3] == _ED25519_PREFIX:
            # SPEC.md §7.1: a server without a server key cannot answer an
            # ed25519 client; it refuses its frames, unverified, rather than
            # accepting them and failing at its first server frame.
            self._interrupt(
                Rejected(Code.SCHEME_MISMATCH, "ed25519 frame; this server has no server_key")
            )
        elif self._backlog or (self._service.offload and data[:3] == _ED25519_PREFIX):
            # Ed25519 verification costs ~50 µs: it runs in the pool, not on
            # the loop. Frames behind it wait their turn.
            self._unverified.append((data, self._service.clock()))
            self._backlog += 1
            if not self._in_flight:
                self._submit()
        else:
            try:
                message = self._verify_frame(data, self._state, now=self._service.clock())
            except Rejected as exc:
                self._interrupt(exc)
                return
            self._accept(message)

    # -- a push transport's calls (`FrameSink`) --------------------------------------

    def frame_received(self, data: bytes | str) -> None:
        """From a push transport: one whole client message (see `FrameSink`)."""
        if self._stop is not None or self._finished:
            return  # after a rejection, frames are dropped unverified
        try:
            if (
                self._first
                or self._backlog
                or type(data) is not bytes
                or (self._divert and data[:3] == _ED25519_PREFIX)
            ):
                self._frame(data)
            else:  # `_frame`'s last branch, inlined: most frames
                self._accept(self._verify_frame(data, self._state, now=self._clock()))
        except Rejected as exc:
            self._interrupt(exc)
            return
        except Exception as exc:  # a fault of ours: never into the library's reader
            self._interrupt(exc)
            return
        if self._stop is None and not self._paused:
            if len(self._messages) + self._backlog >= self._service.max_queue:
                # Frames already parsed still come: the queue may pass
                # max_queue by what the transport parses between checks (the
                # websockets adapter: one read, at most 256 KiB of frames; 1 KiB,
                # ~15 messages of max_frame_size, under permessage-deflate).
                self._paused = True
                self._receiving = False
                cast(PushTransport, self._transport).pause_reading()
            elif self._timer is not None:  # `_arm_timer`, inlined: most frames
                self._waiting_since = self._now()
            else:
                self._arm_timer()

    def connection_ended(self) -> None:
        """From a push transport: the connection is closed (see `FrameSink`)."""
        self._receiving = False
        self._paused = False
        loop = self._loop
        assert loop is not None  # noqa: S101 - attached by `_open`
        task = loop.create_task(self._ended())
        self._ack_tasks.add(task)
        task.add_done_callback(self._ack_tasks.discard)

    async def _ended(self) -> None:
        """As `_pump` when reading raised `Closed`: verify what was read, log
        a rejection or a refused oversize message, then mark closed."""
        transport = self._transport
        try:
            if not self._finished:
                while self._backlog and self._stop is None:
                    await self._wait()
                stopping = self._stop_task
                if stopping is not None:
                    await stopping
                    self._stop_task = None  # it held this connection
                elif transport.refused_oversize(transport.close_error()):
                    self._log_oversize()
        finally:
            self._close_pump()

    # -- the pull pump -------------------------------------------------------------

    async def _pump(self) -> None:
        transport = self._transport
        task = asyncio.current_task()
        assert task is not None  # noqa: S101
        receive = cast(PullTransport, transport).receive
        messages = self._messages
        max_queue = self._service.max_queue
        frame = self._frame
        try:
            while True:
                self._arm_timer()
                self._receiving = True
                try:
                    data = await receive()
                except asyncio.CancelledError:
                    if self._stop is None or task.uncancel():
                        raise
                    break
                finally:
                    self._receiving = False
                frame(data)
                while len(messages) + self._backlog >= max_queue and self._stop is None:
                    await self._wait()
                if self._stop is not None:
                    break
            await self._stopped()
        except transport.Closed as exc:
            # Frames read before the close are still verified (and the first
            # rejection among them is the one logged).
            while self._backlog and self._stop is None:
                await self._wait()
            if self._stop is not None:
                await self._stopped()
            elif transport.refused_oversize(exc):
                self._log_oversize()
        except Exception as exc:
            await self._fail(exc)
        finally:
            self._close_pump()

    def _log_oversize(self) -> None:
        """The library refused a message over its size limit while reading it."""
        limit = self._service.verifier.max_frame_size
        log_rejection(self.id, Code.FRAME_TOO_LARGE, f"message over {limit} bytes (close 1009)")

    def _close_pump(self) -> None:
        """No more frames: stop the timer, mark closed, wake the handler, and
        give the principal's connection back."""
        bound, self._bound = self._bound, None
        if bound is not None:
            self._service.unbind(bound)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._closed.set()
        reader = self._reader
        if reader is not None and not reader.done():
            reader.set_result(None)

    async def _stopped(self) -> None:
        """Act on `_stop`: log and close for a rejection, or for an error of
        the pump's own (1011)."""
        stop = self._stop
        if isinstance(stop, Rejected):
            await self._reject(stop)
        elif stop is not None:
            try:
                await self._fail(stop)
            finally:
                stop.__traceback__ = None  # logged: let go of its frames (see `_interrupt`)

    async def _fail(self, exc: BaseException) -> None:
        logger.error("connection=%s: pump failed", self.id, exc_info=exc)
        await self._transport.close(INTERNAL_ERROR, "internal error")

    # -- the connection's life, for adapters ----------------------------------------------

    async def _open(self) -> bool:
        """Send the hello and start the pump. False if the connection closed
        first: then every read raises at once."""
        loop = self._loop = asyncio.get_running_loop()
        # The loop's clock without its method call, where it is time.monotonic.
        if type(loop).time is not asyncio.BaseEventLoop.time:
            self._now = loop.time
        transport = self._transport
        self._timeout = self._service.first_frame_timeout
        if isinstance(transport, PushTransport):
            # Attached before the hello goes out: a frame sent before it (it
            # cannot carry the nonce) is refused like any other.
            self._push = self._receiving = True
            self._arm_timer()
            transport.attach(self)
        try:
            await transport.send(self.session.hello)
        except transport.Closed:
            self._finished = True
            self._close_pump()
            return False
        if not self._push:
            self._pump_task = asyncio.create_task(self._pump())
        return True

    async def _finish(self) -> None:
        """The handler returned: release its message, flush a pending ack, stop
        the pump. Messages still queued were not delivered and stay unacknowledged:
        the client resends them on its next connection."""
        self._release()
        if self._ack_handle is not None:
            self._ack_handle.cancel()
            self._ack_handle = None
        if not self._closed.is_set() and self._can_ack and self._service.ack_delay is not None:
            await self._send_ack()
        pump, self._pump_task = self._pump_task, None
        if pump is not None:
            pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pump
        elif self._push:
            self._finished = True  # frames still coming are dropped
            if self._paused and self._stop is None:
                # Read again, so the peer's answer to the close is seen.
                self._paused = False
                cast(PushTransport, self._transport).resume_reading()
            self._close_pump()
        for task in list(self._ack_tasks):
            task.cancel()

    async def _run(self, handler: Callable[[Self], Awaitable[None]]) -> None:
        """Hello, pump, the application's handler, then `_finish`. A handler
        that ends because the connection closed under it is not an error:
        the pump logged why."""
        if not await self._open():
            return
        try:
            await handler(self)
        except self._transport.Closed:
            pass
        finally:
            await self._finish()
