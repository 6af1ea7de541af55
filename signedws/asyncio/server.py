"""signedws servers on `websockets`' asyncio implementation (SPEC.md §5-§7).

Theory of operation
-------------------
`serve` wraps `websockets.asyncio.server.serve`. websockets does the opening
handshake: it refuses a disallowed ``Origin`` with HTTP 403 (``origins``) and
a client that does not offer ``signedws.v1`` with HTTP 400 (``subprotocols``),
and it refuses any message larger than the verifier's ``max_frame_size`` while
reading its header (``max_size``; close code 1009). This module adds the
connection limit (HTTP 503) in ``process_response`` and, per connection:

- sends the hello of a new core `ServerSession`;
- runs a *pump* task that reads client messages and feeds them to
  `ServerSession.receive`, `mac` frames inline and `ed25519` frames in a thread
  pool (libsodium releases the GIL), awaiting each before reading the next;
  drops resends already delivered (`StreamMarks`, SPEC.md §7.3); queues the
  rest for the application; schedules a coalesced acknowledgement;
- runs the application's handler with a `ServerConnection` whose `recv`
  returns verified `Message`\\ s and whose `send` builds server frames.

Invariants:

1. Frames of one connection are verified one at a time, in arrival order, and
   reach the handler in that order. The verifier is shared and thread-safe
   across connections.
2. Any rejection closes the connection with the code's close code and opaque
   reason, after exactly one WARNING line on the ``signedws.server`` logger
   naming the connection id, the code and the core's detail. No frame byte,
   payload, token, key or signature is ever logged.
3. Server frames are built and written under one lock per connection, so
   their counters reach the wire in order.
4. Acknowledgements cover only frames the handler is done with (SPEC.md §7.3):
   a message is done when the handler asks for the next one or returns;
   control frames and dropped resends are done once nothing queued precedes
   them. Each advance is acknowledged within ``ack_delay``, by a pure
   acknowledgement or by a handler frame that carries the ack. The delivery
   mark moves on the event loop only.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import http
import logging
import os
import re
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from typing import Any, Final

from websockets.asyncio.server import Server
from websockets.asyncio.server import ServerConnection as WebSocket
from websockets.asyncio.server import serve as ws_serve
from websockets.exceptions import ConnectionClosed, InvalidOrigin, NegotiationError
from websockets.frames import CloseCode
from websockets.http11 import Request, Response
from websockets.typing import Origin, Subprotocol

from ..envelope import KIND_CLIENT_ED25519
from ..errors import Code, Rejected, UsageError
from ..session import ServerKey, ServerSession
from ..stream import StreamMarks
from ..verifier import Message, Verifier

__all__ = [
    "DEFAULT_ACK_DELAY",
    "DEFAULT_FIRST_FRAME_TIMEOUT",
    "DEFAULT_IDLE_TIMEOUT",
    "DEFAULT_MAX_CONNECTIONS",
    "DEFAULT_MAX_QUEUE",
    "SUBPROTOCOL",
    "Handler",
    "ServerConnection",
    "serve",
]

#: The WebSocket subprotocol of signedws v1 (SPEC.md §5.1).
SUBPROTOCOL: Final = "signedws.v1"

DEFAULT_FIRST_FRAME_TIMEOUT: Final = 10.0
DEFAULT_IDLE_TIMEOUT: Final = 300.0
DEFAULT_MAX_CONNECTIONS: Final = 10_000
DEFAULT_ACK_DELAY: Final = 0.02
DEFAULT_MAX_QUEUE: Final = 16

logger = logging.getLogger("signedws.server")

ProcessRequest = Callable[[WebSocket, Request], Awaitable[Response | None] | Response | None]
ProcessResponse = Callable[
    [WebSocket, Request, Response], Awaitable[Response | None] | Response | None
]

#: Keyword arguments of websockets' ``serve`` that signedws sets itself.
_RESERVED: Final = frozenset({"subprotocols", "select_subprotocol", "max_size", "origins"})


def _unverified_kind(data: bytes) -> int | None:
    """The envelope kind of a client frame, read without decoding or verifying
    it (a 10-element fixarray, then the version, then the kind). Used only to
    pick where to verify the frame; the verifier checks everything again."""
    if len(data) > 2 and data[0] == 0x9A and data[1] == 0x01:
        return data[2]
    return None


def log_rejection(connection_id: object, code: Code, detail: str) -> None:
    """Log one rejection (SPEC.md §9): id, code name and number, and detail.

    The detail comes from the core or from this module and names fields and
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


class _Service:
    """What every connection of one `serve` shares: the configuration, the
    verifier, the stream marks, the thread pool and the connection count."""

    def __init__(
        self,
        handler: Handler,
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
        process_response: ProcessResponse | None,
        clock: Callable[[], float],
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
        if type(max_queue) is not int or max_queue < 1:
            raise UsageError("max_queue must be a positive integer")
        self.handler = handler
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
        self._verify_workers = verify_workers or os.cpu_count() or 1
        self._user_process_response = process_response
        self.clock = clock
        self.slots: set[WebSocket] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def executor(self) -> Executor:
        """The pool Ed25519 frames are verified in, created on first use. Its
        idle workers exit when it is garbage collected with the server."""
        if self._executor is None:
            self._executor = ThreadPoolExecutor(
                max_workers=self._verify_workers, thread_name_prefix="signedws-verify"
            )
        return self._executor

    # -- handshake ----------------------------------------------------------------

    async def process_response(
        self, websocket: WebSocket, request: Request, response: Response
    ) -> Response | None:
        """Enforce ``max_connections`` and log refused handshakes."""
        replaced: Response | None = None
        if response.status_code == http.HTTPStatus.SWITCHING_PROTOCOLS:
            if len(self.slots) >= self.max_connections:
                log_rejection(
                    websocket.id,
                    Code.SERVER_BUSY,
                    f"{len(self.slots)} connections, limit {self.max_connections}",
                )
                return websocket.respond(http.HTTPStatus.SERVICE_UNAVAILABLE, "server busy\n")
            # The slot is held until the TCP connection is gone, whether or not
            # the handshake completes.
            self.slots.add(websocket)
            task = asyncio.create_task(websocket.wait_closed())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            task.add_done_callback(lambda _: self.slots.discard(websocket))
        else:
            self._log_refusal(websocket, request, response)
        if self._user_process_response is not None:
            result = self._user_process_response(websocket, request, response)
            if isinstance(result, Awaitable):
                result = await result
            replaced = result
        return replaced

    @staticmethod
    def _log_refusal(websocket: WebSocket, request: Request, response: Response) -> None:
        exc = websocket.protocol.handshake_exc
        if isinstance(exc, InvalidOrigin):
            reason = f"origin not allowed: {request.headers.get('Origin')!r}"
        elif isinstance(exc, NegotiationError):
            reason = f"no {SUBPROTOCOL} subprotocol offered"
        elif exc is not None:
            reason = type(exc).__name__
        else:
            reason = "refused by process_request"
        logger.warning(
            "refused handshake connection=%s status=%d reason=%s",
            websocket.id,
            response.status_code,
            reason,
            extra={
                "signedws_connection": str(websocket.id),
                "signedws_status": response.status_code,
            },
        )

    # -- connections ----------------------------------------------------------------

    async def handle(self, websocket: WebSocket) -> None:
        """The websockets handler: hello, pump, application handler."""
        connection = ServerConnection(self, websocket)
        try:
            await websocket.send(connection.session.hello)
        except ConnectionClosed:
            return
        pump = asyncio.create_task(connection._pump())
        try:
            await self.handler(connection)
        except ConnectionClosed:
            # The connection ended under the handler; the pump logged why.
            pass
        finally:
            await connection._finish(pump)


class ServerConnection:
    """One authenticated connection, as the application handler sees it.

    Messages from `recv` (or ``async for``) have passed SPEC.md §6.4 and, by
    default, were not delivered before (SPEC.md §7.3); control frames are never
    returned. `send` writes authenticated server frames (SPEC.md §7.1).
    """

    def __init__(self, service: _Service, websocket: WebSocket) -> None:
        self._service = service
        #: The underlying websockets connection (for its request, addresses,
        #: id; don't read or write messages on it directly).
        self.websocket = websocket
        self.session = ServerSession(
            service.verifier, now=service.clock(), server_key=service.server_key
        )
        self._messages: deque[Message] = deque()
        # Delivery (SPEC.md §7.3): acks cover only frames the handler is done
        # with. The session's delivery mark moves here, on the loop, never in
        # the verification thread.
        self._holding: Message | None = None
        self._last_accepted = 0
        self.session.deliver(0)
        self._readable = asyncio.Event()
        self._writable = asyncio.Event()
        self._writable.set()
        self._accepted = asyncio.Event()
        self._closed = asyncio.Event()
        self._send_lock = asyncio.Lock()
        self._ack_handle: asyncio.TimerHandle | None = None
        self._ack_tasks: set[asyncio.Task[None]] = set()
        self._can_ack = True

    @property
    def id(self) -> object:
        """The connection id (websockets' UUID), as logged."""
        return self.websocket.id

    @property
    def request(self) -> Request | None:
        """The opening handshake request."""
        return self.websocket.request

    @property
    def remote_address(self) -> Any:
        """The peer's address."""
        return self.websocket.remote_address

    @property
    def principal(self) -> tuple[str, str] | None:
        """``(iss, sub)`` the connection is bound to, after its first accepted
        frame (SPEC.md §4.5)."""
        return self.session.state.principal

    def __repr__(self) -> str:
        return f"ServerConnection(id={self.id}, principal={self.principal!r})"

    # -- receiving ------------------------------------------------------------------

    async def recv(self) -> Message:
        """The next verified message.

        Messages accepted before the connection closed are still returned;
        after them this raises.

        Raises:
            websockets.exceptions.ConnectionClosed: when the connection is
                closed (``ConnectionClosedOK`` after a normal closure).
        """
        # Asking for the next message means the handler is done with the last.
        self._release()
        while not self._messages:
            if self._closed.is_set():
                await self.websocket.wait_closed()
                raise self.websocket.close_exc
            self._readable.clear()
            await self._readable.wait()
        message = self._messages.popleft()
        self._holding = message
        if len(self._messages) < self._service.max_queue:
            self._writable.set()
        return message

    async def __aiter__(self) -> AsyncIterator[Message]:
        """Iterate over verified messages until the connection closes, for any
        reason (a rejection was logged already)."""
        while True:
            try:
                yield await self.recv()
            except ConnectionClosed:
                return

    # -- sending --------------------------------------------------------------------

    async def send(self, payload: str | bytes) -> None:
        """Send an authenticated server frame carrying ``payload`` and the
        latest acknowledgement.

        Waits until the client's first frame was accepted: before it, a server
        frame has no key (SPEC.md §7.1).

        Raises:
            UsageError: for a payload that is not str or bytes, or on an
                `ed25519` connection of a server without ``server_key``.
            websockets.exceptions.ConnectionClosed: if the connection is closed.
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
                await self.websocket.wait_closed()
                raise self.websocket.close_exc
        async with self._send_lock:
            frame = self.session.send(payload, now=self._service.clock())
            await self.websocket.send(frame)

    async def close(self, code: int = CloseCode.NORMAL_CLOSURE, reason: str = "") -> None:
        """Close the connection (the closing handshake, as websockets' ``close``)."""
        await self.websocket.close(code, reason)

    async def wait_closed(self) -> None:
        """Wait until the connection is closed."""
        await self.websocket.wait_closed()

    # -- delivery and acknowledgements -----------------------------------------------

    def _release(self) -> None:
        """The handler is done with the message it holds: move the delivery mark."""
        self._holding = None
        self._advance_delivery()

    def _advance_delivery(self) -> None:
        """Move the delivery mark up to the first message the handler still owes."""
        if self._holding is not None:
            point = self._holding.counter - 1
        elif self._messages:
            point = self._messages[0].counter - 1
        else:
            point = self._last_accepted
        if point > self.session.delivered:
            self.session.deliver(point)
            self._schedule_ack()

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
            with contextlib.suppress(ConnectionClosed):
                await self.websocket.send(frame)

    # -- the pump -------------------------------------------------------------------

    async def _reject(self, exc: Rejected) -> None:
        log_rejection(self.id, exc.code, exc.detail)
        await self.websocket.close(exc.code.close_code, exc.code.peer_reason)

    async def _receive(self, data: bytes) -> Message:
        service = self._service
        now = service.clock()
        if _unverified_kind(data) == KIND_CLIENT_ED25519:
            # Ed25519 verification costs ~100 µs: run it where it does not
            # block the loop. Awaiting it before reading on keeps order.
            loop = asyncio.get_running_loop()
            receive = functools.partial(self.session.receive, data, now=now)
            return await loop.run_in_executor(service.executor, receive)
        return self.session.receive(data, now=now)

    async def _pump(self) -> None:
        service = self._service
        websocket = self.websocket
        timeout, timeout_code = service.first_frame_timeout, Code.FIRST_FRAME_TIMEOUT
        try:
            while True:
                try:
                    async with asyncio.timeout(timeout):
                        data = await websocket.recv()
                except TimeoutError:
                    await self._reject(Rejected(timeout_code, f"no valid frame in {timeout:g} s"))
                    return
                if isinstance(data, str):
                    await self._reject(Rejected(Code.MALFORMED, "text message; frames are binary"))
                    return
                try:
                    message = await self._receive(data)
                except Rejected as exc:
                    await self._reject(exc)
                    return
                timeout, timeout_code = service.idle_timeout, Code.IDLE_TIMEOUT
                self._accepted.set()
                self._last_accepted = message.counter
                if message.payload is None:
                    self._advance_delivery()  # nothing to deliver
                    continue
                if service.marks is not None and not service.marks.is_new(message):
                    logger.debug(
                        "connection=%s: dropped resent seq=%d, delivered before",
                        self.id,
                        message.seq,
                    )
                    self._advance_delivery()
                    continue
                while len(self._messages) >= service.max_queue:
                    self._writable.clear()
                    await self._writable.wait()
                self._messages.append(message)
                self._readable.set()
        except ConnectionClosed as exc:
            if exc.sent is not None and exc.sent.code == CloseCode.MESSAGE_TOO_BIG:
                # websockets refused the message while reading its header.
                limit = service.verifier.max_frame_size
                log_rejection(
                    self.id, Code.FRAME_TOO_LARGE, f"message over {limit} bytes (close 1009)"
                )
        except Exception:
            logger.exception("connection=%s: pump failed", self.id)
            await websocket.close(CloseCode.INTERNAL_ERROR, "internal error")
        finally:
            self._closed.set()
            self._readable.set()

    async def _finish(self, pump: asyncio.Task[None]) -> None:
        """The handler returned: release its message, flush a pending ack, stop
        the pump. Messages still queued were not delivered and stay unacknowledged:
        the client resends them on its next connection."""
        self._release()
        if self._ack_handle is not None:
            self._ack_handle.cancel()
            self._ack_handle = None
        if not self._closed.is_set() and self._can_ack and self._service.ack_delay is not None:
            await self._send_ack()
        pump.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await pump
        for task in list(self._ack_tasks):
            task.cancel()


Handler = Callable[[ServerConnection], Awaitable[None]]


def serve(
    handler: Handler,
    host: str | None = None,
    port: int | None = None,
    *,
    verifier: Verifier,
    origins: Sequence[str | re.Pattern[str]],
    allow_no_origin: bool = False,
    server_key: ServerKey | None = None,
    first_frame_timeout: float | None = DEFAULT_FIRST_FRAME_TIMEOUT,
    idle_timeout: float | None = DEFAULT_IDLE_TIMEOUT,
    max_connections: int = DEFAULT_MAX_CONNECTIONS,
    ack_delay: float | None = DEFAULT_ACK_DELAY,
    max_queue: int = DEFAULT_MAX_QUEUE,
    stream_marks: StreamMarks | None = None,
    dedupe: bool = True,
    executor: Executor | None = None,
    verify_workers: int | None = None,
    process_request: ProcessRequest | None = None,
    process_response: ProcessResponse | None = None,
    clock: Callable[[], float] = time.time,
    **kwargs: Any,
) -> Server:
    """Start a signedws server on ``host`` and ``port``.

    Mirrors `websockets.asyncio.server.serve` (and returns its ``Server``: use
    ``async with serve(...) as server:`` or ``await serve(...)``), but the
    handler receives a `ServerConnection` whose messages are verified.

    Args:
        handler: ``async def handler(connection)``; it gets a
            `ServerConnection`.
        host: interfaces to bind (as websockets).
        port: TCP port (0: any free port; see ``server.sockets``).
        verifier: the core verifier (keyring, audience, fleet key, revocation
            set, replay window, ``max_frame_size``). Its ``max_frame_size``
            (65536 by default) is announced in the hello and enforced by
            websockets before a message is read (close code 1009).
        origins: the ``Origin`` values browsers may connect from, as strings or
            compiled patterns; any other Origin is refused with HTTP 403
            before the upgrade (SPEC.md §11.2). Required: pass ``[]`` for a
            server that accepts no browser.
        allow_no_origin: accept clients that send no Origin (non-browser
            clients). Off unless asked for (SPEC.md §11.2).
        server_key: the key `ed25519` server frames are signed with; without
            one, `ed25519` connections get no server frames (not even acks).
        first_frame_timeout: seconds from the hello to the first valid frame
            (close 4408, ``first_frame_timeout``). None: no limit.
        idle_timeout: seconds between valid frames after the first (close
            4408, ``idle_timeout``). None: no limit.
        max_connections: beyond it, handshakes are refused with HTTP 503
            (``server_busy``).
        ack_delay: seconds after an accepted frame within which a pure
            acknowledgement is sent if the handler sent nothing (acks are
            coalesced). None: only handler frames carry acks.
        max_queue: verified messages buffered for the handler before the
            server stops reading from the connection.
        stream_marks: the per-stream high-water marks (SPEC.md §7.3); a new
            one per call if omitted.
        dedupe: deliver each ``(stream, seq)`` once (default). Off: deliver
            resends too, for applications that keep their own marks.
        executor: where `ed25519` frames are verified; by default a thread
            pool of ``verify_workers`` threads (default: the CPU count).
        verify_workers: size of the default pool.
        process_request: as websockets' (runs before the Origin check).
        process_response: as websockets' (runs after the connection limit).
        clock: the wall clock verification uses, seconds (for tests).
        **kwargs: passed to `websockets.asyncio.server.serve` (``ssl``,
            ``ping_interval``, ``compression``, ``logger`` ...), except the
            keywords signedws sets: ``subprotocols``, ``select_subprotocol``,
            ``max_size`` and ``origins``.

    Raises:
        UsageError: for an invalid limit, an Origin list containing None (use
            ``allow_no_origin``), a server that would accept nobody, or a
            reserved keyword.
    """
    reserved = _RESERVED & set(kwargs)
    if reserved:
        raise UsageError(f"signedws sets {sorted(reserved)} itself")
    allowed: list[Origin | re.Pattern[str] | None] = []
    for origin in origins:
        if isinstance(origin, str):
            allowed.append(Origin(origin))
        elif isinstance(origin, re.Pattern):
            allowed.append(origin)
        else:
            raise UsageError("origins are strings or compiled patterns; see allow_no_origin")
    if allow_no_origin:
        allowed.append(None)
    if not allowed:
        raise UsageError("this server would accept nobody: give origins or allow_no_origin=True")
    service = _Service(
        handler,
        verifier=verifier,
        server_key=server_key,
        first_frame_timeout=first_frame_timeout,
        idle_timeout=idle_timeout,
        max_connections=max_connections,
        ack_delay=ack_delay,
        max_queue=max_queue,
        stream_marks=stream_marks,
        dedupe=dedupe,
        executor=executor,
        verify_workers=verify_workers,
        process_response=process_response,
        clock=clock,
    )
    return ws_serve(
        service.handle,
        host,
        port,
        origins=allowed,
        subprotocols=[Subprotocol(SUBPROTOCOL)],
        max_size=verifier.max_frame_size,
        process_request=process_request,
        process_response=service.process_response,
        **kwargs,
    )
