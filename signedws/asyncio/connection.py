"""The server pump of one signedws connection on asyncio, for any WebSocket library.

Theory of operation
-------------------
A server adapter (`signedws.asyncio.server` on websockets,
`signedws.asyncio.asgi` on Starlette and FastAPI) does the opening handshake
in its library's terms, with `signedws.handshake.check_handshake` deciding,
and takes a connection slot (`Service.slots`). It then wraps the accepted
WebSocket in a `Transport` -- receive a message, send bytes, close, wait
until closed -- and a `ServerConnection` pumps it: bytes and time in and out
of the connection's I/O-free `signedws.server.ServerSession`, which holds
every rule of the protocol (verification, delivery marks, acknowledgements,
timeouts, rejections). This module decides none of them. It owns:

- reading: a *push* transport (`PushTransport`: websockets, from inside its
  reader, with no queue or task switch per message) calls `frame_received`;
  a *pull* transport (`PullTransport`: ASGI) is read by a pump task;
- the thread pool: frames the session says are worth it (`needs_pool`:
  `ed25519`, ~50 µs each; libsodium and OpenSSL release the GIL) are
  verified in a pool thread (`ServerSession.verify`) and accepted back on the
  loop in arrival order (`ServerSession.accept`). Frames read meanwhile go
  in one job, verified in order by one thread, and the results come back in
  bulk (`_Inbox`): a busy connection costs a hand-off per burst;
- backpressure: reading stops while ``max_queue`` messages are queued or
  being verified (the session is told: no deadline runs while paused);
- one timer per connection, at the session's `next_deadline`;
- writing: every frame the session queues (`data_to_send`) is written under
  one lock, in the session's order;
- what the handler gets: `recv` returns verified `Message`\\ s, `send`
  sends server frames.
- counting (issue 17): the connection's counters are plain integers of its
  `signedws.metrics.ConnectionStats`, read by the metrics at scrape time; the
  first frame, then one accepted frame in ``SAMPLE_EVERY``, has its
  `ServerSession.receive_frame` call timed here (the session is not timed
  inside). Whether a frame was accepted is read from the session's state.

Invariants:

1. Frames of one connection are verified one at a time, in arrival order, and
   reach the handler in that order: a connection has at most one job in the
   pool, and frames read while it runs wait behind it. A job's cost is
   bounded (`_BATCH_BYTES`), so one busy connection delays another's frames
   by about a millisecond at most.
2. A rejection (the session's one `ConnectionRejected`) is logged as exactly
   one WARNING line on the ``signedws.server`` logger naming the connection
   id, the code and the detail (`log_rejection`), then the connection closes
   with the code's close code and opaque reason. No frame byte, payload,
   token, key or signature is ever logged. Frames waiting for the pool are
   dropped at once, and a push transport stops reading: it fails the
   connection (close frame, then the end of the TCP connection).
3. Frames are written under one lock per connection, drained from the
   session in its order, so counters reach the wire in order.
4. The exceptions a handler sees when the connection is closed are its
   WebSocket library's own (`Transport.Closed`): an adapter mirrors upstream.
5. Time: the session runs on the service's ``clock`` (the clock verification
   reads). The timer is armed on the loop for the session's deadline; when it
   fires, the deadline has passed whatever that clock says (a test's clock
   may stand still), so the session is advanced to at least the deadline.
6. One INFO line when a connection opens and one when it closes (id,
   principal, client address, close code, frames in and out, duration): no
   secret. The client address honours ``X-Forwarded-For`` only from the
   ``trusted_proxies`` networks.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from concurrent.futures import Executor, ThreadPoolExecutor
from typing import ClassVar, Final, Protocol, Self, cast, runtime_checkable

from ..envelope import KIND_CLIENT_MAC
from ..errors import Code, Rejected, UsageError
from ..handshake import Network, trusted_networks
from ..health import Health
from ..metrics import NULL as NULL_METRICS
from ..metrics import SAMPLE_EVERY, ConnectionStats, Metrics
from ..server import (
    ConnectionRejected,
    MessageReceived,
    PrincipalLimit,
    ServerKey,
    ServerSession,
    State,
)
from ..stream import StreamMarks
from ..verifier import Message, Verifier

__all__ = [
    "DEFAULT_ACK_DELAY",
    "DEFAULT_FIRST_FRAME_TIMEOUT",
    "DEFAULT_IDLE_TIMEOUT",
    "DEFAULT_MAX_CONNECTIONS",
    "DEFAULT_MAX_CONNECTIONS_PER_PRINCIPAL",
    "DEFAULT_MAX_QUEUE",
    "FrameSink",
    "PullTransport",
    "PushTransport",
    "ServerConnection",
    "Service",
    "Transport",
    "log_refusal",
    "log_rejection",
]

DEFAULT_FIRST_FRAME_TIMEOUT: Final = 10.0
DEFAULT_IDLE_TIMEOUT: Final = 300.0
DEFAULT_MAX_CONNECTIONS: Final = 10_000
DEFAULT_MAX_CONNECTIONS_PER_PRINCIPAL: Final = 1_000
DEFAULT_ACK_DELAY: Final = 0.02
DEFAULT_MAX_QUEUE: Final = 16

#: WebSocket close codes this module sends itself (RFC 6455 §7.4.1).
NORMAL_CLOSURE: Final = 1000
GOING_AWAY: Final = 1001
INTERNAL_ERROR: Final = 1011

#: [h17 hook] A frame is timed for the metrics when the connection's count of
#: accepted frames masked with this is 0: the first, then one in SAMPLE_EVERY.
_SAMPLE_MASK: Final = SAMPLE_EVERY - 1

logger = logging.getLogger("signedws.server")

#: The most frame bytes one hand-off to the pool verifies (beyond its first
#: frame). Pool threads take jobs first come, first served: a bound on each
#: job's cost bounds how long one busy connection delays everyone else's
#: frames (an Ed25519 check costs ~50 µs plus hashing the frame).
_BATCH_BYTES: Final = 32768


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


class Service:
    """What every connection of one server shares: the configuration, the
    verifier, the stream marks, the thread pool and the connection slots.

    Adapters build one per server from their keyword arguments, with the
    defaults in their signatures; the meanings are documented here, once.

    Args:
        verifier: the core verifier (keyring, audience, fleet key, revocation
            set, replay window, ``max_frame_size``).
        server_key: the key `ed25519` server frames are signed with; without
            one, `ed25519` frames are refused (``scheme_mismatch``).
        first_frame_timeout: seconds from the hello to the first valid frame
            (close 4408, ``first_frame_timeout``). None: no limit.
        idle_timeout: seconds between frames after the first valid one
            (close 4408, ``idle_timeout``), while the server reads. None: no
            limit.
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
        clock: the wall clock verification uses, seconds (for tests); the
            sessions' deadlines run on it too (see invariant 5).
        trusted_proxies: networks (``"10.0.0.0/8"``) of reverse proxies whose
            ``X-Forwarded-For`` header names the client address logged;
            default none: the peer's address is logged.
        metrics: where connections, frames, acks, rejections and refusals
            are counted (`signedws.metrics`); None: nowhere (`NullMetrics`).
        health: what the adapters answer ``/healthz`` and ``/readyz`` from
            (`signedws.health`); None: the adapters' default.

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
        trusted_proxies: Iterable[str | Network] = (),
        metrics: Metrics | None = None,
        health: Health | None = None,
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
        self.principals = PrincipalLimit(max_connections_per_principal)
        self.trusted_proxies = trusted_networks(trusted_proxies)
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
        #: Background tasks (acknowledgements, close logs), held until done.
        self.tasks: set[asyncio.Task[None]] = set()
        # [h17 hook] operations: metrics (no-op by default) and health probes.
        self.metrics = NULL_METRICS if metrics is None else metrics
        self.health = health

    def session(self) -> ServerSession:
        """A new connection's session, with this server's configuration."""
        return ServerSession(
            self.verifier,
            now=self.clock(),
            server_key=self.server_key,
            marks=self.marks,
            principals=self.principals,
            first_frame_timeout=self.first_frame_timeout,
            idle_timeout=self.idle_timeout,
            ack_delay=self.ack_delay,
        )

    def spawn(self, coroutine: Awaitable[None]) -> asyncio.Task[None]:
        """Run ``coroutine`` in a task held until it is done."""
        task: asyncio.Task[None] = asyncio.ensure_future(coroutine)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

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
            self.metrics.refused("busy")  # [h17 hook]
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


class _Flag:
    """Whether the connection is closed: `asyncio.Event`'s ``is_set`` and
    ``set`` without its waiter deque (~850 B per connection); nothing waits
    on it (waiters wait on the transport, or on the handler's future)."""

    __slots__ = ("_set",)

    def __init__(self) -> None:
        self._set = False

    def is_set(self) -> bool:
        return self._set

    def set(self) -> None:
        self._set = True


class _Stats(ConnectionStats):
    """What the close log line reports (invariant 6), and [h17 hook] the
    metrics' counters (`ConnectionStats`: plain ints, read at scrape)."""

    __slots__ = ("address", "frames_in", "frames_out", "started")

    def __init__(self, address: str | None) -> None:
        super().__init__()
        self.address = address
        self.frames_in = 0
        self.frames_out = 0
        self.started = time.monotonic()


def _close_code(exc: BaseException) -> int | None:
    """The close code a transport's `Transport.Closed` exception carries:
    websockets' ``rcvd``/``sent`` close frames, or an ASGI disconnect's code."""
    for frame in (getattr(exc, "rcvd", None), getattr(exc, "sent", None)):
        code = getattr(frame, "code", None)
        if isinstance(code, int):
            return code
    if hasattr(exc, "rcvd"):
        return 1006  # websockets: no close frame either way
    code = getattr(exc, "code", None)
    return code if isinstance(code, int) else None


class ServerConnection:
    """One authenticated connection, as the application handler sees it.

    Messages from `recv` (or ``async for``) have passed SPEC.md §6.4 and, by
    default, were not delivered before (SPEC.md §7.3); control frames are never
    returned. `send` writes authenticated server frames (SPEC.md §7.1).
    ``recv`` and ``send`` raise the WebSocket library's "connection closed"
    exception once the connection is closed (websockets' ``ConnectionClosed``,
    Starlette's ``WebSocketDisconnect``). The library's own connection object
    is ``connection.transport.websocket``.

    Args:
        service: the server's shared `Service`.
        transport: the accepted WebSocket, as a pull or push `Transport`.
        address: the client's address, for the log (see
            `signedws.handshake.client_address`).
    """

    def __init__(
        self,
        service: Service,
        transport: PullTransport | PushTransport,
        *,
        address: str | None = None,
    ) -> None:
        self._service = service
        #: The adapter's transport; its ``websocket`` is the library's object
        #: (for the request, headers, addresses; don't read or write on it).
        self.transport = transport
        #: The connection's protocol state machine.
        self.session = service.session()
        self._clock = service.clock
        self._offload = service.offload
        # A list, not a deque: an empty deque holds a 64-slot block (~760 B
        # per idle connection); the queue holds at most ``max_queue`` messages
        # (plus one read's), so `list.pop(0)` moves a few pointers at most.
        self._messages: list[Message] = []
        # The handler waiting for a message, the pull pump waiting for room, a
        # `send` waiting for the first accepted frame.
        self._reader: asyncio.Future[None] | None = None
        self._waker: asyncio.Future[None] | None = None
        self._opened: asyncio.Future[None] | None = None
        self._closed = _Flag()
        self._send_lock = asyncio.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pump_task: asyncio.Task[None] | None = None
        # The one timer, and the session deadline it is armed for; whether a
        # `_rearm` is scheduled for the end of this loop iteration (messages
        # come in batches, one read's: the deadline is looked at once per batch).
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0
        self._rearm_due = False
        # A push transport feeds `frame_received`, paused while the queue is
        # full (`_paused`), until the handler finished (`_finished`).
        self._push = False
        self._paused = False
        self._finished = False
        # Why the pump stops: the session's rejection, or a fault of ours.
        self._stop: ConnectionRejected | Exception | None = None
        self._stop_task: asyncio.Task[None] | None = None
        # Frames off the loop: read, not yet verified (`_unverified`), then
        # handed to the pool (`_in_flight`); `_backlog` counts both.
        self._unverified: list[tuple[bytes, float]] = []
        self._in_flight = 0
        self._backlog = 0
        self._stats = _Stats(address)
        service.metrics.connection(self._stats)  # [h17 hook] read at each scrape

    @property
    def id(self) -> object:
        """The connection id, as logged."""
        return self.transport.id

    @property
    def principal(self) -> tuple[str, str] | None:
        """``(iss, sub)`` the connection is bound to, after its first accepted
        frame (SPEC.md §4.5)."""
        return self.session.principal

    @property
    def address(self) -> str | None:
        """The client's address, as logged."""
        return self._stats.address

    def __repr__(self) -> str:
        return f"{type(self).__name__}(id={self.id}, principal={self.principal!r})"

    # -- receiving ------------------------------------------------------------------

    async def recv(self) -> Message:
        """The next verified message.

        Messages accepted before the connection closed are still returned;
        after them this raises. Asking for the next message means the handler
        is done with the last (SPEC.md §7.3).

        Raises:
            Exception: the WebSocket library's "connection closed" exception
                (see the adapter) when the connection is closed.
        """
        session = self.session
        messages = self._messages
        while True:
            if messages:
                message = self._take()
                if message is not None:
                    return message
                continue  # delivered by another connection meanwhile
            held = session.held
            if held is not None:
                session.message_done(held, now=self._clock())
                self._rearm()
            while not messages:
                if self._closed.is_set():
                    await self.transport.wait_closed()
                    raise self.transport.close_error()
                reader = self._reader = asyncio.get_running_loop().create_future()
                try:
                    await reader
                finally:
                    self._reader = None

    def _take(self) -> Message | None:
        """Hand the handler the next queued message (the session moves its
        stream's mark), or None if another connection delivered it meanwhile."""
        session = self.session
        messages = self._messages
        message = messages.pop(0)
        taken = session.take_message(message, now=self._clock())
        if not self._rearm_due:
            self._rearm_soon()
        if self._waker is not None or (
            self._paused and len(messages) + self._backlog < self._service.max_queue
        ):
            self._wake_pump()
        return message if taken else None

    def __aiter__(self) -> Self:
        """Iterate over verified messages until the connection closes, for any
        reason (a rejection was logged already)."""
        return self

    async def __anext__(self) -> Message:
        """The next verified message; the end of the iteration once the
        connection is closed."""
        if self._messages:  # no `recv` coroutine per message when one waits
            message = self._take()
            if message is not None:
                return message
        try:
            return await self.recv()
        except self.transport.Closed:
            raise StopAsyncIteration from None

    # -- sending --------------------------------------------------------------------

    async def send(self, payload: str | bytes) -> None:
        """Send an authenticated server frame carrying ``payload`` and the
        latest acknowledgement.

        Waits until the client's first frame was accepted: before it, a server
        frame has no key (SPEC.md §7.1).

        Raises:
            UsageError: for a payload that is not str or bytes.
            Exception: the WebSocket library's "connection closed" exception
                if the connection is closed.
        """
        if type(payload) is not str and type(payload) is not bytes:
            raise UsageError("payload must be str or bytes")
        session = self.session
        if session.state is State.AWAITING_FIRST_FRAME and not self._closed.is_set():
            opened = self._opened
            if opened is None:
                opened = self._opened = asyncio.get_running_loop().create_future()
            await asyncio.shield(opened)
        if session.state is not State.OPEN or not session.can_send:
            await self.transport.wait_closed()
            raise self.transport.close_error()
        async with self._send_lock:
            session.send_message(payload, now=self._clock())
            *earlier, frame = session.data_to_send()
            for data in earlier:  # a due acknowledgement, a lower counter: written
                self.transport.write(data)  # in this step, as a broadcast (`write_frame`)
                self._stats.frames_out += 1
            await self.transport.send(frame)
            self._stats.frames_out += 1

    # -- broadcast (SPEC.md §14; `signedws.asyncio.topics`) ------------------------------

    @property
    def writable(self) -> bool:
        """Whether a broadcast frame can be built and written now: the client's
        first frame was accepted (a server frame has a key, SPEC.md §14.3) and
        the connection is not closed."""
        return self.session.state is State.OPEN and not self._closed.is_set()

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
        transport = self.transport
        # A due acknowledgement the session built (a lower counter) and the
        # pump has not taken yet (`_drain`) goes first.
        for data in (*self.session.data_to_send(), frame):
            if not transport.write(data):
                return False
            self._stats.frames_out += 1
        return True

    @property
    def buffered(self) -> int:
        """Bytes written to the connection and not yet sent (see
        `Transport.buffered`)."""
        return self.transport.buffered()

    async def close(self, code: int = NORMAL_CLOSURE, reason: str = "") -> None:
        """Close the connection (the closing handshake, as the library's ``close``)."""
        await self.transport.close(code, reason)

    async def wait_closed(self) -> None:
        """Wait until the connection is closed."""
        await self.transport.wait_closed()

    async def going_away(self) -> None:
        """[h17 hook] Graceful drain (`signedws.cli.operate.Drain`): write the
        due acknowledgement of what the handler is done with (the session's
        `flush_ack`), then close with 1001 (going away): the client
        reconnects elsewhere and resends only what was not acknowledged."""
        if not self._closed.is_set():
            self.session.flush_ack(self._clock())
            await self._drain()
        await self.close(GOING_AWAY, "server draining")

    async def _drain(self) -> None:
        """Write what the session queued (a due acknowledgement), in order."""
        async with self._send_lock:
            frames = self.session.data_to_send()
            if self._closed.is_set():
                return
            for frame in frames:
                with contextlib.suppress(self.transport.Closed):
                    await self.transport.send(frame)
                    self._stats.frames_out += 1
                    self._stats.acks += 1  # [h17 hook] only acks are queued here

    # -- events and time ------------------------------------------------------------

    def _process(self, events: list[MessageReceived | ConnectionRejected]) -> None:
        """Act on the session's events: queue messages, stop on a rejection."""
        messages = self._messages
        for event in events:
            if type(event) is MessageReceived:
                messages.append(event.message)
            else:
                self._interrupt(cast(ConnectionRejected, event))
        reader = self._reader
        if reader is not None and messages and not reader.done():
            reader.set_result(None)

    def _opened_now(self) -> None:
        """Wake a `send` waiting for the first accepted frame (or the end)."""
        opened = self._opened
        if opened is not None and self.session.state is not State.AWAITING_FIRST_FRAME:
            self._opened = None
            if not opened.done():
                opened.set_result(None)

    def _rearm(self) -> None:
        """Arm the one timer for the session's next deadline, unless it is
        armed for that deadline or an earlier one (it re-arms when it fires)."""
        deadline = self.session.next_deadline()
        if deadline is None:
            return
        if self._timer is None or deadline < self._timer_at:
            self._arm(deadline)

    def _rearm_soon(self) -> None:
        """`_rearm` at the end of this loop iteration, once for all the
        messages received and taken in it (the session's `next_deadline`, due
        after each of them, is the same moment's: a few microseconds later)."""
        loop = self._loop
        if loop is not None:
            self._rearm_due = True
            loop.call_soon(self._rearm_now)

    def _rearm_now(self) -> None:
        self._rearm_due = False
        if self._stop is None and not self._closed.is_set():
            self._rearm()

    def _arm(self, deadline: float) -> None:
        """Arm the one timer for ``deadline`` (on the session's clock)."""
        loop = self._loop
        if loop is None:
            return  # not open yet: `open` arms it
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = deadline
        self._timer = loop.call_later(max(0.0, deadline - self._clock()), self._timer_due)

    def _timer_due(self) -> None:
        """The timer fired: advance the session to (at least) its deadline
        (invariant 5), act on what it says, re-arm."""
        self._timer = None
        if self._stop is not None or self._closed.is_set():
            return
        session = self.session
        try:
            session.advance_time(max(self._clock(), self._timer_at))
        except Exception as exc:  # a fault of ours: fail the connection (1011)
            self._interrupt(exc)
            return
        events = session.events_received()
        if events:
            self._process(events)
        if self._stop is None:
            self._service.spawn(self._drain())
            self._rearm()

    def _interrupt(self, reason: ConnectionRejected | Exception) -> None:
        """Stop the pump for ``reason`` (on the loop): it rejects or fails next."""
        if self._stop is not None:
            return
        self._stop = reason
        self.session.paused()
        # Nothing read after the stop is verified or kept: drop the frames
        # waiting for the pool now (a job in flight finishes and is ignored).
        self._backlog -= len(self._unverified)
        self._unverified = []
        if self._push:
            # No more reading (and, under compression, no more inflating)
            # until the transport fails the connection (`_reject`).
            self._paused = True
            cast(PushTransport, self.transport).pause_reading()
            self._stop_task = asyncio.get_running_loop().create_task(self._stopped())
        elif self._waker is not None:
            self._wake_pump()
        elif self._pump_task is not None and self._pump_task is not asyncio.current_task():
            self._pump_task.cancel()  # it waits in `receive`

    # -- the pool -------------------------------------------------------------------

    def _queue(self, data: bytes) -> None:
        """A frame for the pool, behind those already there (invariant 1)."""
        now = self._clock()
        self._unverified.append((data, now))
        self._backlog += 1
        if not self._paused:
            self.session.reading(now)
        if not self._in_flight:
            self._submit()

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
        verify = self.session.verify
        results: list[Message | Exception] = []
        start = time.perf_counter()
        try:
            for data, now in batch:
                results.append(verify(data, now=now))
        except Exception as exc:
            results.append(exc)
        metrics = self._service.metrics
        if metrics.enabled:  # [h17 hook] the mean over the job: one observation per hand-off
            metrics.verified("ed25519", (time.perf_counter() - start) / len(batch))
        inbox.post(self, results)

    def _verified(self, results: list[Message | Exception]) -> None:
        """On the loop: a job's outcome, in order."""
        self._in_flight = 0
        if self._stop is not None or self._closed.is_set():
            return
        session = self.session
        now = self._clock()
        stats = self._stats
        for result in results:
            self._backlog -= 1
            if type(result) is not Message and not isinstance(result, Rejected):
                self._process(session.events_received())
                self._interrupt(cast(Exception, result))
                return
            session.accept(result, now=now)  # after a rejection: ignored
            if session.state is State.OPEN:  # [h17 hook] accepted (else rejected or dropped)
                stats.frames += 1
        if stats.scheme == "pending" and session.state is State.OPEN:
            self._count_scheme()  # [h17 hook]
        # The job's events at once (a rejection drops what follows it).
        self._process(session.events_received())
        if self._stop is not None:
            return
        self._opened_now()
        if self._unverified:
            self._submit()
        self._wake_pump()
        self._rearm()

    def _frame(self, data: bytes | str) -> None:
        """One whole client message, just read: to the session, or to the
        pool behind the frames already there."""
        self._stats.frames_in += 1
        session = self.session
        if self._backlog or (self._offload and session.needs_pool(data)):
            self._queue(cast(bytes, data))
            return
        stats = self._stats
        if stats.frames & _SAMPLE_MASK:
            message = session.receive_frame(data, now=self._clock())
        else:
            message = self._receive_sampled(data)  # [h17 hook]
        if session.state is State.OPEN:  # [h17 hook] accepted (else rejected or dropped)
            stats.frames += 1
        if message is not None:
            self._process([MessageReceived(message)])
        else:
            self._process(session.events_received())
        if self._opened is not None:
            self._opened_now()

    # -- a push transport's calls (`FrameSink`) --------------------------------------

    def frame_received(self, data: bytes | str) -> None:
        """From a push transport: one whole client message (see `FrameSink`).

        websockets' ``data_received`` shape: the session takes the message,
        its events are handled, reading pauses when the queue is full, and
        one timer follows the session's deadline, looked at once per batch of
        messages (`_rearm_soon`). (`_frame` and `_process`, inlined: this runs
        once per message.)
        """
        if self._stop is not None or self._finished:
            return  # after a rejection, frames are dropped unverified
        session = self.session
        self._stats.frames_in += 1
        try:
            if self._backlog or (self._offload and session.needs_pool(data)):
                self._queue(cast(bytes, data))
            else:
                stats = self._stats
                if stats.frames & _SAMPLE_MASK:
                    message = session.receive_frame(data, now=self._clock())
                else:
                    message = self._receive_sampled(data)  # [h17 hook]
                if message is not None:
                    stats.frames += 1  # [h17 hook]
                    self._messages.append(message)
                    reader = self._reader
                    if reader is not None and not reader.done():
                        reader.set_result(None)
                else:
                    events = session.events_received()
                    if events:
                        self._process(events)
                    elif session.state is State.OPEN:  # [h17 hook] accepted: control, resend
                        stats.frames += 1
                if self._opened is not None:
                    self._opened_now()
        except Exception as exc:  # a fault of ours: never into the library's reader
            self._interrupt(exc)
            return
        if self._stop is None and not self._paused:
            if len(self._messages) + self._backlog >= self._service.max_queue:
                # Frames already parsed still come: the queue may pass
                # max_queue by what the transport parses between checks (the
                # websockets adapter: one read; 1 KiB under permessage-deflate).
                self._paused = True
                session.paused()
                cast(PushTransport, self.transport).pause_reading()
            elif not self._rearm_due:
                self._rearm_soon()

    def _receive_sampled(self, data: bytes | str) -> Message | None:
        """[h17 hook] `ServerSession.receive_frame`, timed for the metrics:
        the first frame, then one accepted frame in `SAMPLE_EVERY`. The
        first accepted frame names the connection's scheme."""
        session = self.session
        metrics = self._service.metrics
        if not metrics.enabled:
            return session.receive_frame(data, now=self._clock())
        now = self._clock()
        start = time.perf_counter()
        message = session.receive_frame(data, now=now)
        elapsed = time.perf_counter() - start
        if session.state is State.OPEN:
            if self._stats.scheme == "pending":
                self._count_scheme()
            metrics.verified(self._stats.scheme, elapsed)
        return message

    def _count_scheme(self) -> None:
        """[h17 hook] The first frame was accepted: count the connection
        under its credential's scheme."""
        credential = self.session.verifier_state.credential
        mac = credential is not None and credential.kind == KIND_CLIENT_MAC
        self._service.metrics.scheme(self._stats, "mac" if mac else "ed25519")

    def connection_ended(self) -> None:
        """From a push transport: the connection is closed (see `FrameSink`)."""
        self._paused = False
        self.session.paused()
        self._service.spawn(self._ended())

    async def _ended(self) -> None:
        """As `_pump` when reading raised `Closed`: verify what was read, log
        a rejection or a refused oversize message, then mark closed."""
        transport = self.transport
        try:
            if not self._finished:
                while self._backlog and self._stop is None:
                    await self._wait()
                stopping = self._stop_task
                if stopping is not None:
                    await stopping
                    self._stop_task = None  # it held this connection
                elif transport.refused_oversize(transport.close_error()):
                    self._oversize()
        finally:
            self._close_pump()

    # -- the pull pump -------------------------------------------------------------

    async def _pump(self) -> None:
        transport = self.transport
        task = asyncio.current_task()
        assert task is not None  # noqa: S101
        receive = cast(PullTransport, transport).receive
        messages = self._messages
        max_queue = self._service.max_queue
        session = self.session
        try:
            while True:
                session.reading(self._clock())
                self._rearm()
                try:
                    data = await receive()
                except asyncio.CancelledError:
                    if self._stop is None or task.uncancel():
                        raise
                    break
                self._frame(data)
                if self._stop is None:
                    self._rearm()
                while len(messages) + self._backlog >= max_queue and self._stop is None:
                    session.paused()
                    await self._wait()
                if self._stop is not None:
                    break
            await self._stopped()
        except transport.Closed as exc:
            # Frames read before the close are still verified (and the first
            # rejection among them is the one logged).
            session.paused()
            while self._backlog and self._stop is None:
                await self._wait()
            if self._stop is not None:
                await self._stopped()
            elif transport.refused_oversize(exc):
                self._oversize()
        except Exception as exc:
            await self._fail(exc)
        finally:
            self._close_pump()

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
            self.session.reading(self._clock())
            self._rearm()
            cast(PushTransport, self.transport).resume_reading()

    async def _wait(self) -> None:
        """Sleep until `_wake_pump` (room in the queue, verified frames, a stop)."""
        waker = self._waker = asyncio.get_running_loop().create_future()
        try:
            await waker
        finally:
            self._waker = None

    def _oversize(self) -> None:
        """The library refused a message over its size limit (close 1009): the
        session says how that is logged; the connection is closed already."""
        self.session.receive_oversize()
        for event in self.session.events_received():
            if isinstance(event, ConnectionRejected):
                self._service.metrics.rejected(event.code.id)  # [h17 hook]
                log_rejection(self.id, event.code, event.detail)

    def _close_pump(self) -> None:
        """No more frames: stop the timer, mark closed, wake the handler, and
        give the principal's connection back. The first time, start the task
        that logs the close line (once the transport is closed): no task
        waits through an open connection's life."""
        if not self._closed.is_set():
            self._service.spawn(self._log_closed())
        self.session.connection_closed()
        self._service.metrics.closed(self._stats)  # [h17 hook] counters final
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._closed.set()
        reader = self._reader
        if reader is not None and not reader.done():
            reader.set_result(None)
        opened, self._opened = self._opened, None
        if opened is not None and not opened.done():
            opened.set_result(None)

    async def _stopped(self) -> None:
        """Act on `_stop`: log and close for a rejection, or for an error of
        the pump's own (1011)."""
        stop = self._stop
        if isinstance(stop, ConnectionRejected):
            await self._reject(stop)
        elif stop is not None:
            try:
                await self._fail(stop)
            finally:
                # Logged: let go of its frames (and the bytes they hold).
                stop.__traceback__ = None

    async def _reject(self, rejection: ConnectionRejected) -> None:
        code = rejection.code
        log_rejection(self.id, code, rejection.detail)
        self._service.metrics.rejected(code.id)  # [h17 hook]
        if self._push:
            # Send the close frame and end the connection without reading or
            # inflating another message (RFC 6455 §7.1.7).
            await cast(PushTransport, self.transport).fail(code.close_code, code.peer_reason)
        else:
            await self.transport.close(code.close_code, code.peer_reason)

    async def _fail(self, exc: BaseException) -> None:
        logger.error("connection=%s: pump failed", self.id, exc_info=exc)
        await self.transport.close(INTERNAL_ERROR, "internal error")

    # -- the connection's life, for adapters ----------------------------------------------

    async def open(self) -> bool:
        """Send the hello and start reading (for adapters). False if the
        connection closed first: then every read raises at once."""
        self._loop = asyncio.get_running_loop()
        transport = self.transport
        self._log_open()
        if isinstance(transport, PushTransport):
            # Attached before the hello goes out: a frame sent before it (it
            # cannot carry the nonce) is refused like any other.
            self._push = True
            self._rearm()
            transport.attach(self)
        try:
            async with self._send_lock:
                for frame in self.session.data_to_send():
                    await transport.send(frame)
                    self._stats.frames_out += 1
        except transport.Closed:
            self._finished = True
            self._close_pump()
            return False
        if not self._push:
            self._pump_task = asyncio.create_task(self._pump())
        return True

    async def finish(self) -> None:
        """The handler returned (for adapters): it is done with its message, a
        due acknowledgement is flushed, the pump stops. Messages still queued
        were not delivered and stay unacknowledged: the client resends them on
        its next connection."""
        session = self.session
        held = session.held
        if held is not None:
            session.message_done(held, now=self._clock())
        if not self._closed.is_set():
            session.flush_ack(self._clock())
            await self._drain()
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
                cast(PushTransport, self.transport).resume_reading()
            self._close_pump()

    async def run(self, handler: Callable[[Self], Awaitable[None]]) -> None:
        """Hello, pump, the application's handler, then `finish` (for
        adapters). A handler that ends because the connection closed under it
        is not an error: the pump logged why."""
        if not await self.open():
            return
        try:
            await handler(self)
        except self.transport.Closed:
            pass
        finally:
            await self.finish()

    # -- the log (invariant 6) ------------------------------------------------------

    def _log_open(self) -> None:
        logger.info(
            "connection opened connection=%s address=%s",
            self.id,
            self._stats.address,
            extra={"signedws_connection": str(self.id)},
        )

    async def _log_closed(self) -> None:
        """Wait for the end of the connection, then log its one close line."""
        transport = self.transport
        await transport.wait_closed()
        stats = self._stats
        principal = self.session.principal
        logger.info(
            "connection closed connection=%s principal=%s address=%s close_code=%s "
            "frames_in=%d frames_out=%d duration=%.3f",
            self.id,
            "-" if principal is None else f"{principal[0]!r}/{principal[1]!r}",
            stats.address,
            _close_code(transport.close_error()),
            stats.frames_in,
            stats.frames_out,
            time.monotonic() - stats.started,
            extra={"signedws_connection": str(self.id)},
        )
