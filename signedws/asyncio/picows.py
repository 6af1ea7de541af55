"""signedws servers on `picows` (SPEC.md §5-§7): the same server as
`signedws.asyncio.serve`, on a faster WebSocket library.

Theory of operation
-------------------
`serve` wraps `picows.ws_create_server`. picows parses frames in Cython and
calls a `WSListener` for each one, from inside its ``buffer_updated``: no
queue, future or task per message. This module's listener, `_Listener`, is a
`signedws.asyncio.connection.PushTransport`: it hands each whole binary
message to the transport-independent `signedws.asyncio.connection.ServerConnection`
(hello, verification, delivery, acknowledgements, timeouts, Ed25519 offload,
the open and close log lines; see its module), which is what the handler
gets, exactly as on websockets. picows' own objects are reachable from it:
``connection.transport.websocket`` is picows' `WSTransport`,
``connection.transport.request`` its `WSUpgradeRequest` (picows'
``response`` is one 101 response object shared by every connection).

The opening handshake (SPEC.md §5.1) runs in picows' listener factory, before
any listener exists: a malformed upgrade request gets HTTP 400, then
`signedws.handshake.check_handshake` decides in the SPEC's order: an ``Origin`` outside the
allow-list gets 403, a client that does not offer ``signedws.v1`` gets 400,
and a server holding ``max_connections`` connections gets 503
(``server_busy``). Each refusal is logged as on websockets. With ``health``,
``GET /healthz`` and ``/readyz`` are answered there first (no log line), and
while it is draining every handshake gets 503; ``metrics`` counts refusals.

Invariants (beyond those of `signedws.asyncio.connection`):

1. A connection slot is taken when the upgrade request is accepted and held
   until the TCP connection is gone. TCP connections whose request has not
   arrived hold none; picows closes them after ``websocket_handshake_timeout``
   (5 s by default).
2. The handler sees websockets' exceptions (picows has none of its own for a
   closed connection): `recv` and `send` raise ``ConnectionClosedOK`` after a
   normal closure (1000 or 1001 both ways), ``ConnectionClosedError``
   otherwise, so one handler runs on either server unchanged.
3. Messages reach the signedws connection whole and in order: fragments are
   joined, and the joined size is bounded by the verifier's ``max_frame_size``
   (picows bounds each frame by it while reading its header; either way, close
   1009 and ``frame_too_large``). A text message is passed on as a str at its
   first fragment. Pings are answered by picows. Messages that arrive before
   the signedws connection attaches are held, with reading paused.
4. picows parses a whole read (at most its read buffer, which grows past the
   largest frame) before a pause takes effect: a connection holds at most
   ``max_queue`` messages plus one read's. There is no permessage-deflate.
5. After a rejection the connection is *failed* (RFC 6455 §7.1.7): the close
   frame goes out, the write side is shut, and what the peer sends meanwhile is
   dropped unverified until it closes, at most ``close_timeout`` (then the TCP
   connection is aborted).
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable, Generator, Sequence
from concurrent.futures import Executor
from http import HTTPStatus
from types import TracebackType
from typing import Any, ClassVar, Final, cast

import picows.picows as _picows_impl
from picows import (
    WSCloseCode,
    WSFrame,
    WSListener,
    WSMsgType,
    WSTransport,
    WSUpgradeRequest,
    WSUpgradeResponse,
    WSUpgradeResponseWithListener,
    ws_create_server,
)
from websockets.exceptions import ConnectionClosed, ConnectionClosedError, ConnectionClosedOK
from websockets.frames import OK_CLOSE_CODES, Close

from ..envelope import SUBPROTOCOL
from ..errors import Code, UsageError
from ..handshake import Network, OriginPolicy, check_handshake, client_address
from ..health import Health
from ..metrics import Metrics
from ..server import ServerKey
from ..stream import StreamMarks
from ..verifier import Verifier
from .connection import (
    DEFAULT_ACK_DELAY,
    DEFAULT_FIRST_FRAME_TIMEOUT,
    DEFAULT_IDLE_TIMEOUT,
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_MAX_CONNECTIONS_PER_PRINCIPAL,
    DEFAULT_MAX_QUEUE,
    INTERNAL_ERROR,
    NORMAL_CLOSURE,
    FrameSink,
    ServerConnection,
    Service,
    log_refusal,
    log_rejection,
)

__all__ = [
    "DEFAULT_CLOSE_TIMEOUT",
    "Handler",
    "Server",
    "ServerConnection",
    "serve",
]

logger = logging.getLogger("signedws.server")

#: Keyword arguments of picows' ``ws_create_server`` that signedws sets itself.
_RESERVED: Final = frozenset({"ws_listener_factory", "max_frame_size"})

#: picows' initial read buffer per connection (its default: 16 KiB).
_READ_BUFFER: Final = 1024

#: Seconds a closing handshake may take before the TCP connection is aborted
#: (as the websockets adapter's ``close_timeout``).
DEFAULT_CLOSE_TIMEOUT: Final = 2.0

_BINARY: Final = WSMsgType.BINARY
_CONTINUATION: Final = WSMsgType.CONTINUATION
_TEXT: Final = WSMsgType.TEXT
_CLOSE: Final = WSMsgType.CLOSE
_DATA: Final = frozenset({_BINARY, _CONTINUATION, _TEXT})
_MESSAGE_TOO_BIG: Final = 1009
_PROTOCOL_ERROR: Final = 1002

#: picows' own check of the upgrade headers (Upgrade, Connection,
#: Sec-WebSocket-Key and -Version), run before a slot is taken: picows runs it
#: again after the factory, and a request it refuses there never reaches
#: ``on_ws_disconnected``, which frees the slot.
_validate_upgrade: Callable[[WSUpgradeRequest], bytes] = _picows_impl._validate_upgrade_request  # type: ignore[attr-defined]


def _shared_logger(name: object) -> object:
    """picows' ``logger_name``, as one `logging.LoggerAdapter` for every
    connection. Given a `logging.Logger` (or a name, as picows resolves it),
    picows makes each connection a child logger of its own
    (``picows.server.<fd>``, ~600 B per connection); an adapter it uses as it
    is. Its lines keep their text; their logger is ``picows.server`` itself
    (the peer's address is in picows' "New connection accepted" line)."""
    if name is None or isinstance(name, str):
        name = logging.getLogger(f"picows.{'server' if name is None else name}")
    if isinstance(name, logging.Logger):
        return logging.LoggerAdapter(name)
    return name


def _send_close(transport: WSTransport, code: int, reason: str = "") -> None:
    """picows' ``send_close`` with any close code (its stub says `WSCloseCode`,
    which lacks the 4xxx codes of SPEC.md §9; the Cython method takes any int)."""
    transport.send_close(cast(WSCloseCode, code), reason)


def _code(info: Any) -> int:
    """A `WSCloseInfo`'s code as an int (a `WSCloseCode` member, or an int)."""
    return int(info.code)


# -- the handshake (SPEC.md §5.1) ---------------------------------------------------------


def _refuse(status: int, body: bytes) -> WSUpgradeResponseWithListener:
    """An HTTP answer instead of the upgrade (picows makes 200 and >= 400 apart)."""
    if status == HTTPStatus.OK:
        response = WSUpgradeResponse.create_ok_response(body)
    else:
        response = WSUpgradeResponse.create_error_response(status, body)
    return WSUpgradeResponseWithListener(response, None)


#: `signedws.metrics.Metrics.refused`'s reason for each status of `check_handshake`.
_REFUSED_KIND: Final[dict[int, str]] = {
    HTTPStatus.FORBIDDEN: "origin",
    HTTPStatus.BAD_REQUEST: "subprotocol",
    HTTPStatus.SERVICE_UNAVAILABLE: "busy",
}


# -- the listener: one connection, a PushTransport --------------------------------------


class _Listener(WSListener):
    """One picows connection as a `signedws.asyncio.connection.PushTransport`.

    Attributes:
        transport: picows' `WSTransport` (set when connected); also
            `websocket`, the name every adapter gives its library's object.
        request: the opening handshake request (picows' `WSUpgradeRequest`).
    """

    __slots__ = (
        "_abort_timer",
        "_closed",
        "_closing",
        "_early",
        "_ended",
        "_failing",
        "_fast",
        "_message",
        "_paused",
        "_text",
        "_writable",
        "id",
        "oversize",
        "request",
        "service",
        "sink",
        "task",
        "transport",
    )

    Closed: ClassVar[type[Exception]] = ConnectionClosed

    def __init__(self, service: _Service, connection_id: uuid.UUID, request: WSUpgradeRequest):
        self.service = service
        self.id = connection_id
        self.request = request
        self.transport: WSTransport = cast(WSTransport, None)  # set when connected
        self.sink: FrameSink | None = None
        # The sink's frame_received while a whole binary message can go
        # straight to it (`_refresh`): the hot path's one test.
        self._fast: Callable[[bytes | str], None] | None = None
        self.task: asyncio.Task[None] | None = None
        self._early: list[bytes | str] = []
        self._message: bytearray | None = None  # a fragmented binary message
        self._text = False  # inside a fragmented text message (refused already)
        self._paused = False
        self._failing = False  # after a rejection: drop everything
        self._closing = False  # the handler closed: drop data frames
        self.oversize = False  # a message over max_frame_size was refused here
        self._ended = False  # the TCP connection is gone
        # Created by the first `wait_closed` before the end: an idle
        # connection holds no future for it.
        self._closed: asyncio.Future[None] | None = None
        self._writable: asyncio.Future[None] | None = None
        self._abort_timer: asyncio.TimerHandle | None = None

    @property
    def websocket(self) -> WSTransport:
        """picows' transport (for its request and socket; don't send
        messages on it directly)."""
        return self.transport

    # -- picows' callbacks -------------------------------------------------------------

    def on_ws_connected(self, transport: WSTransport) -> None:
        self.transport = transport
        self.task = asyncio.get_running_loop().create_task(self.service.handle(self))

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        fast = self._fast
        if fast is not None and frame.msg_type is _BINARY and frame.fin:
            fast(frame.get_payload_as_bytes())  # most messages
        else:
            self._frame(transport, frame)

    def _refresh(self) -> None:
        """Whether whole binary messages may go straight to the sink: it is
        attached, no fragmented message is being joined, and the connection
        is neither failing nor closing."""
        sink = self.sink
        self._fast = (
            sink.frame_received
            if sink is not None
            and self._message is None
            and not self._failing
            and not self._closing
            else None
        )

    def _frame(self, transport: WSTransport, frame: WSFrame) -> None:
        """Every frame but an unfragmented binary message for an attached sink."""
        kind = frame.msg_type
        if kind is _CLOSE:
            self._close_received(transport)
            return
        if self._failing or (
            kind is not _BINARY and kind is not _CONTINUATION and kind is not _TEXT
        ):
            return  # pongs; and anything after a rejection, unverified
        if kind is _CONTINUATION:
            message = self._message
            if message is None:
                if not self._text:  # a continuation of nothing
                    self._fail_now(_PROTOCOL_ERROR, "unexpected continuation frame")
                elif frame.fin:
                    self._text = False
                return
            message += frame.get_payload_as_memoryview()
            if len(message) > self.service.verifier.max_frame_size:
                self._message = None
                self.oversize = True
                self._fail_now(_MESSAGE_TOO_BIG, "")
                return
            if not frame.fin:
                return
            self._message = None
            self._refresh()
            data: bytes | str = bytes(message)
        elif self._message is not None or self._text:
            self._fail_now(_PROTOCOL_ERROR, "expected a continuation frame")
            return
        elif kind is _TEXT:
            # Never a signedws frame: the sink refuses it at once, unread.
            self._text = not frame.fin
            data = ""
        elif not frame.fin:
            self._message = bytearray(frame.get_payload_as_memoryview())
            self._fast = None
            return
        else:
            data = frame.get_payload_as_bytes()
        if self._closing:
            return
        sink = self.sink
        if sink is not None:
            sink.frame_received(data)
        else:
            self._early.append(data)
            self.pause_reading()

    def _close_received(self, transport: WSTransport) -> None:
        """The peer's close frame: answer it (echoing its code) and end the TCP
        connection, the server's part of the closing handshake."""
        if not transport.is_close_frame_sent:
            received = transport.close_handshake.recv
            code = _code(received) if received is not None else 0
            _send_close(transport, code if code else 1000)
        transport.disconnect()

    def _fail_now(self, code: int, reason: str) -> None:
        """A WebSocket protocol fault seen here (not a signedws rejection)."""
        self._failing = True
        self._fast = None
        transport = self.transport
        if not transport.is_close_frame_sent:
            _send_close(transport, code, reason)
        self._shut()

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        self.service.release(self)
        if self._abort_timer is not None:
            self._abort_timer.cancel()
            self._abort_timer = None
        writable, self._writable = self._writable, None
        if writable is not None and not writable.done():
            writable.set_result(None)
        self._ended = True
        closed = self._closed
        if closed is not None and not closed.done():
            closed.set_result(None)
        # Let go of the sink: it holds this listener, and a cycle would keep
        # both until a full garbage collection.
        sink, self.sink = self.sink, None
        self._fast = None
        self._early = []
        self._message = None
        if sink is not None:
            sink.connection_ended()

    def pause_writing(self) -> None:
        if self._writable is None:
            self._writable = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        writable, self._writable = self._writable, None
        if writable is not None and not writable.done():
            writable.set_result(None)

    # -- PushTransport -----------------------------------------------------------------

    def attach(self, sink: FrameSink) -> None:
        """See `signedws.asyncio.connection.PushTransport.attach`."""
        self.sink = sink
        early, self._early = self._early, []
        if early:
            self._paused = False  # paused for `_early`; the sink may pause again
        for data in early:
            sink.frame_received(data)
        if early and self.sink is sink and not self._paused:
            self.resume_reading()
        if self._ended:
            self.sink = None  # as in `on_ws_disconnected`
            sink.connection_ended()
        else:
            self._refresh()

    def pause_reading(self) -> None:
        self._paused = True
        if not self.transport.is_disconnected:
            self.transport.underlying_transport.pause_reading()

    def resume_reading(self) -> None:
        self._paused = False
        if not self.transport.is_disconnected:
            self.transport.underlying_transport.resume_reading()

    async def fail(self, code: int, reason: str) -> None:
        """See `signedws.asyncio.connection.PushTransport.fail` (invariant 5)."""
        self._failing = True
        self._fast = None
        self._early = []
        self._message = None
        transport = self.transport
        if not transport.is_disconnected:
            if not transport.is_close_frame_sent:
                _send_close(transport, code, reason)
            self._shut()
        await self.wait_closed()

    def _shut(self) -> None:
        """After our close frame: end the write side, read (and drop) until the
        peer's end of the connection, for at most ``close_timeout``."""
        underlying = self.transport.underlying_transport
        if underlying.can_write_eof() and not underlying.is_closing():
            underlying.write_eof()
        self._paused = False
        self.resume_reading()
        self._abort_later()

    def _abort_later(self) -> None:
        if self._abort_timer is None and not self._ended:
            self._abort_timer = asyncio.get_running_loop().call_later(
                self.service.close_timeout, self.transport.disconnect, False
            )

    async def send(self, data: bytes) -> None:
        transport = self.transport
        if transport.is_close_frame_sent or transport.is_disconnected:
            raise self.close_error()
        transport.send(_BINARY, data)
        writable = self._writable
        if writable is not None:
            await asyncio.shield(writable)

    def write(self, data: bytes) -> bool:
        """See `signedws.asyncio.connection.Transport.write`: picows writes at
        once (into asyncio's buffer), so call order is wire order."""
        transport = self.transport
        if transport.is_close_frame_sent or transport.is_disconnected:
            return False
        try:
            transport.send(_BINARY, data)
        except Exception:  # a transport failure; the close follows
            return False
        return True

    def buffered(self) -> int:
        return self.transport.underlying_transport.get_write_buffer_size()

    async def close(self, code: int, reason: str) -> None:
        """Start the closing handshake (or finish it: the peer closed first),
        then wait until the connection is closed."""
        transport = self.transport
        if not transport.is_close_frame_sent and not transport.is_disconnected:
            _send_close(transport, code, reason)
            if transport.close_handshake.recv is not None:
                transport.disconnect()
            else:
                # Read again (reading may be paused for a full queue) to see
                # the peer's close frame; data frames are dropped now.
                self._closing = True
                self._fast = None
                self.resume_reading()
                self._abort_later()
        await self.wait_closed()

    async def wait_closed(self) -> None:
        if self._ended:
            return
        closed = self._closed
        if closed is None:
            closed = self._closed = asyncio.get_running_loop().create_future()
        await asyncio.shield(closed)

    def close_error(self) -> Exception:
        """websockets' exception for how this connection closed (invariant 2)."""
        handshake = self.transport.close_handshake
        rcvd = sent = None
        rcvd_then_sent = None
        if handshake is not None:
            if handshake.recv is not None:
                rcvd = Close(_code(handshake.recv), handshake.recv.reason)
            if handshake.sent is not None:
                sent = Close(_code(handshake.sent), handshake.sent.reason)
            if rcvd is not None and sent is not None:
                rcvd_then_sent = bool(handshake.recv_then_sent)
        if (
            rcvd is not None
            and sent is not None
            and rcvd.code in OK_CLOSE_CODES
            and sent.code in OK_CLOSE_CODES
        ):
            return ConnectionClosedOK(rcvd, sent, rcvd_then_sent)
        return ConnectionClosedError(rcvd, sent, rcvd_then_sent)

    def refused_oversize(self, exc: Exception) -> bool:
        sent = cast(ConnectionClosed, exc).sent
        return self.oversize or (sent is not None and sent.code == _MESSAGE_TOO_BIG)


Handler = Callable[[ServerConnection], Awaitable[None]]


class _Service(Service):
    """A `Service` with the handler, the handshake policy and the listeners."""

    def __init__(
        self,
        handler: Handler,
        *,
        policy: OriginPolicy,
        close_timeout: float,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.handler = handler
        self.policy = policy
        self.close_timeout = close_timeout
        # One 101 response for every connection: picows sets its
        # Sec-WebSocket-Accept and serializes it at once, in the same step,
        # and keeps it as ``transport.response`` (~800 B per connection if
        # each had its own). So every connection's ``transport.response`` is
        # this object, its Sec-WebSocket-Accept the latest connection's.
        self._switching = WSUpgradeResponse.create_101_response(
            extra_headers={"Sec-WebSocket-Protocol": SUBPROTOCOL}
        )

    def listener_for(self, request: WSUpgradeRequest) -> WSUpgradeResponseWithListener:
        """picows' listener factory: the §5.1 handshake, then a listener
        holding a connection slot (invariant 1). ``GET /healthz`` and
        ``/readyz`` are answered first, without a log line, and while the
        server drains every handshake gets HTTP 503."""
        health = self.health
        if health is not None:
            answer = health.respond(request.path.decode("latin-1"), time.monotonic())
            if answer is not None:
                status, text = answer
                return _refuse(status, text.encode())
            if health.draining:  # readiness failed first; clients go elsewhere
                self.metrics.refused("draining")
                return _refuse(HTTPStatus.SERVICE_UNAVAILABLE, b"draining\n")
        connection_id = uuid.uuid4()
        try:
            _validate_upgrade(request)
        except RuntimeError:
            self.metrics.refused("other")
            log_refusal(connection_id, HTTPStatus.BAD_REQUEST, "invalid upgrade request")
            return _refuse(HTTPStatus.BAD_REQUEST, b"invalid upgrade request\n")
        origins = request.headers.getall("Origin", ())
        if len(origins) > 1:
            self.metrics.refused("other")
            # As the websockets adapter words it.
            log_refusal(connection_id, HTTPStatus.BAD_REQUEST, "multiple Origin headers")
            return _refuse(HTTPStatus.BAD_REQUEST, b"invalid Origin header\n")
        origin = origins[0] if origins else None
        refusal = check_handshake(
            self.policy,
            origin,
            request.headers.getall("Sec-WebSocket-Protocol", ()),
            len(self.slots),
            self.max_connections,
        )
        if refusal is not None:
            self.metrics.refused(_REFUSED_KIND.get(refusal.status, "other"))
            if refusal.status == HTTPStatus.SERVICE_UNAVAILABLE:
                log_rejection(connection_id, Code.SERVER_BUSY, refusal.reason)
            else:
                log_refusal(connection_id, refusal.status, refusal.reason)
            return _refuse(refusal.status, f"{refusal.body}\n".encode())
        listener = _Listener(self, connection_id, request)
        self.slots.add(listener)
        return WSUpgradeResponseWithListener(self._switching, listener)

    async def handle(self, listener: _Listener) -> None:
        """Hello, pump, application handler (`ServerConnection.run`, which
        logs the open and close lines); then close 1000, or 1011 (and an
        ERROR line) if the handler raised."""
        forwarded: list[str] = []
        if self.trusted_proxies:
            forwarded = list(listener.request.headers.getall("X-Forwarded-For", ()))
        peer = listener.transport.underlying_transport.get_extra_info("peername")
        address = client_address(
            None if not peer else str(peer[0]), forwarded, self.trusted_proxies
        )
        try:
            await ServerConnection(self, listener, address=address).run(self.handler)
        except Exception:
            logger.error("connection=%s: handler failed", listener.id, exc_info=True)
            await listener.close(INTERNAL_ERROR, "internal error")
        else:
            await listener.close(NORMAL_CLOSURE, "")

    async def shutdown(self) -> None:
        """Close every connection with 1001 (going away) and wait for their
        handlers, each within ``close_timeout``."""
        listeners = [s for s in self.slots if isinstance(s, _Listener) and s.transport is not None]
        await asyncio.gather(*(s.close(1001, "") for s in listeners), return_exceptions=True)
        tasks = [s.task for s in listeners if s.task is not None]
        if tasks:
            await asyncio.wait(tasks, timeout=self.close_timeout)


class Server:
    """A running picows signedws server: ``async with serve(...) as server``
    gives the `asyncio.Server` (``server.sockets``); so does ``await serve(...)``.
    Leaving the ``async with`` closes every connection (1001) and stops."""

    def __init__(self, service: _Service, start: Callable[[], Awaitable[asyncio.Server]]):
        self.service = service
        self._start = start
        self.server: asyncio.Server | None = None

    async def _create(self) -> asyncio.Server:
        self.server = await self._start()
        return self.server

    def __await__(self) -> Generator[Any, None, asyncio.Server]:
        return self._create().__await__()

    async def __aenter__(self) -> asyncio.Server:
        return await self._create()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Stop listening, close every connection, wait for their handlers."""
        server = self.server
        if server is not None:
            server.close()
        await self.service.shutdown()
        if server is not None:
            await server.wait_closed()


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
    max_connections_per_principal: int | None = DEFAULT_MAX_CONNECTIONS_PER_PRINCIPAL,
    ack_delay: float | None = DEFAULT_ACK_DELAY,
    max_queue: int = DEFAULT_MAX_QUEUE,
    stream_marks: StreamMarks | None = None,
    dedupe: bool = True,
    executor: Executor | None = None,
    verify_workers: int | None = None,
    close_timeout: float = DEFAULT_CLOSE_TIMEOUT,
    clock: Callable[[], float] = time.time,
    trusted_proxies: Sequence[str | Network] = (),
    metrics: Metrics | None = None,
    health: Health | None = None,
    **kwargs: Any,
) -> Server:
    """Start a signedws server on picows, on ``host`` and ``port``.

    The signedws keywords and their meaning are those of
    `signedws.asyncio.serve` (the websockets server); the handler gets a
    `ServerConnection` with the same API.

    Args:
        handler: ``async def handler(connection)``.
        host: interfaces to bind (as `asyncio.loop.create_server`).
        port: TCP port (0: any free port; see ``server.sockets``).
        verifier, origins, allow_no_origin, server_key, first_frame_timeout,
        idle_timeout, max_connections, max_connections_per_principal,
        ack_delay, max_queue, stream_marks, dedupe, executor, verify_workers,
        clock, trusted_proxies: as `signedws.asyncio.serve` documents them.
        metrics: where connections, frames, acks, rejections and refused
            handshakes are counted (`signedws.metrics.PrometheusMetrics`);
            None: nowhere.
        health: answer ``GET /healthz`` and ``GET /readyz`` on this port from
            it (`signedws.health.Health`), without a log line, and refuse
            handshakes with HTTP 503 while it is draining; None: no probes.
        close_timeout: seconds a closing handshake, or a failed connection's
            peer, may take before the TCP connection is aborted.
        **kwargs: passed to `picows.ws_create_server` (``ssl``,
            ``reuse_port``, ``websocket_handshake_timeout``,
            ``enable_auto_ping`` ...), except ``max_frame_size`` (the
            verifier's) and the listener factory. A ``logger_name`` (default
            ``picows.server``) is wrapped in one `logging.LoggerAdapter`,
            so connections share it (see `_shared_logger`).

    Raises:
        UsageError: for an invalid limit, an Origin list containing None (use
            ``allow_no_origin``), a server that would accept nobody, or a
            reserved keyword.
    """
    reserved = _RESERVED & set(kwargs)
    if reserved:
        raise UsageError(f"signedws sets {sorted(reserved)} itself")
    if close_timeout <= 0:
        raise UsageError("close_timeout must be positive")
    policy = OriginPolicy.build(origins, allow_no_origin=allow_no_origin)
    service = _Service(
        handler,
        policy=policy,
        close_timeout=close_timeout,
        metrics=metrics,
        health=health,
        verifier=verifier,
        server_key=server_key,
        first_frame_timeout=first_frame_timeout,
        idle_timeout=idle_timeout,
        max_connections=max_connections,
        max_connections_per_principal=max_connections_per_principal,
        ack_delay=ack_delay,
        max_queue=max_queue,
        stream_marks=stream_marks,
        dedupe=dedupe,
        executor=executor,
        verify_workers=verify_workers,
        clock=clock,
        trusted_proxies=trusted_proxies,
    )

    # Memory per idle connection (measured in benchmarks/e2e.py): picows'
    # read buffer starts at 16 KiB, all of it resident; from 1 KiB it doubles
    # as a busy connection needs. aiofastnet's transports (picows' default when
    # installed) hold ~5 KiB more per connection than asyncio's, for no
    # throughput we could measure here.
    kwargs.setdefault("read_buffer_init_size", _READ_BUFFER)
    kwargs.setdefault("use_aiofastnet", False)
    kwargs["logger_name"] = _shared_logger(kwargs.get("logger_name"))

    async def start() -> asyncio.Server:
        return await ws_create_server(
            service.listener_for,
            host,
            port,
            max_frame_size=verifier.max_frame_size,
            **kwargs,
        )

    return Server(service, start)
