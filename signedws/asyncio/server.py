"""signedws servers on `websockets`' asyncio implementation (SPEC.md §5-§7).

Theory of operation
-------------------
`serve` wraps `websockets.asyncio.server.serve`. websockets does the opening
handshake; its ``process_request`` hook runs `signedws.handshake.check_handshake`
(a disallowed ``Origin``: HTTP 403; no ``signedws.v1`` offered: HTTP 400; the
connection limit: HTTP 503), and websockets refuses any message larger than
the verifier's ``max_frame_size`` while reading its header (``max_size``;
close code 1009). This module logs refused handshakes,
and binds each accepted websockets connection to the transport-independent
`signedws.asyncio.connection.ServerConnection`, which sends the hello, pumps
bytes and time through the connection's `signedws.server.ServerSession` and
is what the handler gets (websockets' own connection object is
``connection.transport.websocket``).

websockets' connections are made by `_SignedWebSocket`, a subclass (its
``create_connection`` hook): it hands each data message to the signedws
connection as soon as websockets has parsed it off the socket, inside
websockets' own ``data_received``, instead of queueing it for ``recv``
(a *push* transport, `signedws.asyncio.connection.PushTransport`). Verification then
costs no queue, future or task switch per message; the signedws connection
pauses reading while its queue is full, as websockets' ``max_queue`` would.

Invariants (beyond those of `signedws.asyncio.connection`):

1. A connection slot is held from the TCP connection until it is gone:
   handshakes in progress count against ``max_connections``. A connection
   without a slot is answered HTTP 503 when its request is read (if a slot
   freed meanwhile, it takes it); at most 1,024 such wait for their answer,
   and connections beyond that are closed at once.
2. The handler sees websockets' own exceptions: `recv` raises
   ``ConnectionClosed`` once the connection is closed.
3. Messages reach the signedws connection whole and in order: fragments are
   joined (websockets bounds the joined size by ``max_size``), a text message
   is passed on as a str at its first fragment, control frames stay
   websockets' own. Messages that arrive before the signedws connection is
   attached are held, with reading paused, and passed on when it attaches.
4. Under permessage-deflate, what the socket gives is parsed 1 KiB at a
   time (16 KiB before the handshake completes), and not at all while the
   signedws connection has reading paused: the rest of a read waits,
   unparsed. A pause therefore takes effect within one slice, not one read of
   up to 256 KiB, which compression can inflate ~1000-fold. Without it, a
   read of N bytes holds at most N bytes of messages and is parsed whole
   (slicing it cost a fifth of the e2e `mac` throughput in pauses and
   wake-ups); nothing is parsed while reading is paused. Compression is off unless
   ``compression="deflate"`` is passed; with it, a connection holds at most
   ``max_queue`` messages plus one slice's (each at most ``max_size``
   inflated), and a rejected connection inflates nothing more.
5. After a rejection the connection is *failed* (RFC 6455 §7.1.7): the close
   frame goes out, the TCP connection is ended, and what the peer sends
   meanwhile is discarded unparsed. A peer that never completes a closing
   handshake holds its connection for ``close_timeout`` (2 s by default,
   websockets' is 10 s), which bounds a server's shutdown too.
"""

from __future__ import annotations

import asyncio
import http
import re
import time
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import Executor
from typing import Any, ClassVar, Final, cast

from websockets.asyncio.server import Server
from websockets.asyncio.server import ServerConnection as WebSocket
from websockets.asyncio.server import serve as ws_serve
from websockets.exceptions import ConnectionClosed, InvalidOrigin, NegotiationError
from websockets.frames import CloseCode, Frame, Opcode
from websockets.http11 import Request, Response
from websockets.protocol import State
from websockets.typing import Subprotocol

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
    FrameSink,
    ServerConnection,
    Service,
    log_refusal,
    log_rejection,
)

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

ProcessRequest = Callable[[WebSocket, Request], Awaitable[Response | None] | Response | None]
ProcessResponse = Callable[
    [WebSocket, Request, Response], Awaitable[Response | None] | Response | None
]

#: Keyword arguments of websockets' ``serve`` that signedws sets itself.
_RESERVED: Final = frozenset(
    {"subprotocols", "select_subprotocol", "max_size", "origins", "create_connection"}
)


# Enum members, looked up once: ``Opcode.BINARY`` costs a class attribute
# look-up per frame.
_BINARY: Final = Opcode.BINARY
_CONT: Final = Opcode.CONT
_TEXT: Final = Opcode.TEXT

#: The most bytes parsed off the socket at a time (invariant 4): reading
#: pauses within this many bytes of the sink asking, not within one read
#: (up to 256 KiB). With permessage-deflate, the smaller slice: a message of
#: ``max_size`` bytes can inflate from ~70, so a slice of 1 KiB holds at most
#: ~15 messages, ~1 MiB inflated at the default ``max_size``.
_FEED_BYTES: Final = 16384
_FEED_BYTES_DEFLATE: Final = 1024

#: TCP connections beyond ``max_connections`` that may wait for their HTTP
#: 503 (invariant 1); connections beyond these are closed at once.
_MAX_REFUSING: Final = 1024

#: [h17 hook] The refusal reason counted in the metrics, by HTTP status of a
#: `signedws.handshake.Refusal`.
_REFUSAL_KINDS: Final = {403: "origin", 400: "subprotocol", 503: "busy"}

#: Seconds a closing handshake may take before the TCP connection is dropped
#: (websockets' ``close_timeout``, 10 s by default): bounds how long a peer
#: that never answers a close holds its slot, and a server's shutdown.
DEFAULT_CLOSE_TIMEOUT: Final = 2.0


class _SignedWebSocket(WebSocket):
    """websockets' server connection, handing whole data messages to a
    `FrameSink` as they are parsed (see the module docstring)."""

    #: The server's service (set on the subclass `serve` makes per server).
    service: ClassVar[_Service]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sink: FrameSink | None = None
        self._early: list[bytes | str] = []
        self._message: bytearray | None = None  # a fragmented binary message
        # Bytes read from the socket and not yet parsed (`_feed`), and whether
        # the sink (or the adapter) asked to stop reading.
        self._held = b""
        self._paused = False
        self._feeding: asyncio.Handle | None = None
        # Whether this TCP connection holds a connection slot (invariant 1),
        # and whether its handshake was refused by `_Service.process_request`
        # ([h17 hook] or answered there as a health probe: not logged).
        self.slot = False
        self.refused = False

    # -- reading, bounded (invariant 4) -------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # The slot is taken with the TCP connection: handshakes in progress
        # count against max_connections (invariant 1).
        self.slot = self.service.take_slot(self)
        if not self.slot and not self.service.wait_for_refusal(self):
            cast(asyncio.Transport, transport).abort()
        super().connection_made(transport)

    def data_received(self, data: bytes) -> None:
        held = self._held
        if held or self._paused or (len(data) > _FEED_BYTES_DEFLATE and self._slice()):
            self._held = held + data if held else data
            self._feed()
        else:  # most reads: uncompressed, or small
            super().data_received(data)

    def _slice(self) -> int | None:
        """How many bytes to parse at a time (invariant 4), or None for a whole
        read: once the handshake is done without permessage-deflate, a read
        of N bytes holds at most N bytes of messages, and slicing it would only
        add pauses and wake-ups (a third of the e2e throughput, measured)."""
        protocol = self.protocol
        if protocol.extensions:
            return _FEED_BYTES_DEFLATE
        return _FEED_BYTES if protocol.state is State.CONNECTING else None

    def _feed(self) -> None:
        """Parse what is held, a slice at a time, until it is all parsed or
        reading is paused: a pause takes effect within one slice, not one read
        (with permessage-deflate, one read of a few KiB can inflate to
        hundreds of messages). The rest waits, unparsed, for `resume`."""
        self._feeding = None
        held = self._held
        offset, size = 0, len(held)
        while offset < size and not self._paused:
            # Per slice: the handshake may complete within this read.
            step = self._slice() or size - offset
            super().data_received(held[offset : offset + step])
            offset += step
        self._held = held[offset:] if offset < size else b""

    def pause(self) -> None:
        """Stop parsing and reading (the sink's queue is full, or it stopped)."""
        self._paused = True
        self.transport.pause_reading()

    def resume(self) -> None:
        """Parse what is held, then read from the socket again if it all fit."""
        self._paused = False
        if self._held:
            if self._feeding is None:
                # Not from inside the sink's call that made room.
                self._feeding = self.loop.call_soon(self._resume_feed)
        else:
            self.transport.resume_reading()

    def _resume_feed(self) -> None:
        self._feed()
        if not self._paused and not self._held:
            self.transport.resume_reading()

    async def fail(self, code: int, reason: str) -> None:
        """See `signedws.asyncio.connection.PushTransport.fail`."""
        self._held = b""
        self._early = []
        self._message = None
        if self._feeding is not None:
            self._feeding.cancel()
            self._feeding = None
        # Read again, to see the peer's EOF: nothing is parsed before the
        # protocol fails (no await in between), and after it the protocol
        # discards what comes, unparsed. `send_context` then waits for the
        # end of the TCP connection, at most ``close_timeout`` (also when the
        # protocol had failed already, say on an oversize message).
        self._paused = False
        if not self.transport.is_closing():
            self.transport.resume_reading()
        try:
            async with self.send_context():
                self.protocol.fail(code, reason)
        except ConnectionClosed:
            pass  # closed already

    def process_event(self, event: Any) -> None:
        if type(event) is not Frame or self.request is None:
            super().process_event(event)  # the handshake request
            return
        opcode = event.opcode
        if opcode is _BINARY:
            if event.fin:
                data = event.data
                sink = self.sink
                if sink is not None:  # `_message_received`, inlined: most messages
                    sink.frame_received(data if type(data) is bytes else bytes(data))
                else:
                    self._message_received(bytes(data))
            else:
                self._message = bytearray(event.data)
        elif opcode is _CONT:
            message = self._message
            if message is not None:  # else the rest of a text message, refused already
                message += event.data
                if event.fin:
                    self._message = None
                    self._message_received(bytes(message))
        elif opcode is _TEXT:
            # Never a signedws frame: the sink refuses it at once, unread.
            self._message_received("")
        else:
            super().process_event(event)  # control frames: pongs for keepalive

    def _message_received(self, data: bytes | str) -> None:
        sink = self.sink
        if sink is not None:
            sink.frame_received(data)
        else:
            self._early.append(data)
            self.pause()

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        self._held = b""
        if self._feeding is not None:
            self._feeding.cancel()
            self._feeding = None
        self.service.free_slot(self)
        # Let go of the sink: it holds this connection (through its
        # transport), and a reference cycle would keep both, buffers and all,
        # until a full garbage collection.
        sink, self.sink = self.sink, None
        if sink is not None:
            sink.connection_ended()

    def attach(self, sink: FrameSink) -> None:
        """Start handing messages to ``sink`` (see `PushTransport.attach`)."""
        self.sink = sink
        early, self._early = self._early, []
        if early:
            self._paused = False  # paused for `_early`; the sink may pause again
        for data in early:
            sink.frame_received(data)
        if early and self.sink is sink and not self._paused:
            self.resume()
        if self.connection_lost_waiter.done():
            self.sink = None  # as in `connection_lost`
            sink.connection_ended()


class _Transport:
    """A websockets connection as a `signedws.asyncio.connection.PushTransport`.

    Attributes:
        websocket: websockets' connection (for its request, addresses, id;
            don't read or write messages on it directly).
    """

    Closed: ClassVar[type[Exception]] = ConnectionClosed

    def __init__(self, websocket: _SignedWebSocket) -> None:
        self.websocket = websocket

    def attach(self, sink: FrameSink) -> None:
        self.websocket.attach(sink)

    def pause_reading(self) -> None:
        self.websocket.pause()

    def resume_reading(self) -> None:
        self.websocket.resume()

    async def fail(self, code: int, reason: str) -> None:
        await self.websocket.fail(code, reason)

    @property
    def id(self) -> object:
        return self.websocket.id

    async def send(self, data: bytes) -> None:
        # websockets writes a bytes message before its first suspension (it
        # may then wait for the buffer to drain): as `write`, in call order.
        await self.websocket.send(data)

    def write(self, data: bytes) -> bool:
        # As websockets' own ``broadcast``: frame, write, no drain.
        websocket = self.websocket
        if websocket.protocol.state is not State.OPEN:
            return False
        try:
            websocket.protocol.send_binary(data)
            websocket.send_data()
        except Exception:  # a transport failure; the close follows
            return False
        return True

    def buffered(self) -> int:
        return self.websocket.transport.get_write_buffer_size()

    async def close(self, code: int, reason: str) -> None:
        await self.websocket.close(code, reason)

    async def wait_closed(self) -> None:
        await self.websocket.wait_closed()

    def close_error(self) -> Exception:
        # The protocol's: websockets 17's ``Connection.close_exc`` is newer.
        return self.websocket.protocol.close_exc

    def refused_oversize(self, exc: Exception) -> bool:
        sent = cast(ConnectionClosed, exc).sent
        return sent is not None and sent.code == CloseCode.MESSAGE_TOO_BIG


Handler = Callable[[ServerConnection], Awaitable[None]]


class _Service(Service):
    """A `Service` with the handler, the websockets handshake hooks and the
    tasks that free connection slots."""

    def __init__(
        self,
        handler: Handler,
        *,
        origins: OriginPolicy,
        process_request: ProcessRequest | None,
        process_response: ProcessResponse | None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.handler = handler
        self.origins = origins
        self._user_process_request = process_request
        self._user_process_response = process_response
        self._refusing: set[_SignedWebSocket] = set()

    def take_slot(self, websocket: _SignedWebSocket) -> bool:
        """At the TCP connection: a free slot, held until it is gone."""
        if len(self.slots) >= self.max_connections:
            return False
        self.slots.add(websocket)
        return True

    def wait_for_refusal(self, websocket: _SignedWebSocket) -> bool:
        """No slot: whether the connection may stay to be told 503."""
        if len(self._refusing) >= _MAX_REFUSING:
            self.metrics.refused("busy")  # [h17 hook]
            log_rejection(
                websocket.id,
                Code.SERVER_BUSY,
                f"{len(self.slots)} connections and "
                f"{len(self._refusing)} refusals in progress: closed at once",
            )
            return False
        self._refusing.add(websocket)
        return True

    def free_slot(self, websocket: _SignedWebSocket) -> None:
        """The TCP connection is gone."""
        self.release(websocket)
        self._refusing.discard(websocket)

    async def process_request(self, websocket: WebSocket, request: Request) -> Response | None:
        """[h17 hook] ``/healthz`` and ``/readyz`` (`signedws.health`), and 503
        while draining, without a log line; then the application's
        ``process_request``, then SPEC.md §5.1's checks (`check_handshake`):
        Origin, subprotocol, connection limit."""
        health = self.health
        if health is not None:
            answer = health.respond(request.path, time.monotonic())
            if answer is not None:
                cast(_SignedWebSocket, websocket).refused = True
                status, body = answer
                return websocket.respond(http.HTTPStatus(status), body)
            if health.draining:  # readiness failed first; clients go elsewhere
                cast(_SignedWebSocket, websocket).refused = True
                self.metrics.refused("draining")
                return websocket.respond(http.HTTPStatus.SERVICE_UNAVAILABLE, "draining\n")
        if self._user_process_request is not None:
            result = self._user_process_request(websocket, request)
            if isinstance(result, Awaitable):
                result = await result
            if result is not None:
                return result
        signed = cast(_SignedWebSocket, websocket)
        origins = request.headers.get_all("Origin")
        if len(origins) > 1:
            signed.refused = True
            self.metrics.refused("origin")  # [h17 hook]
            log_refusal(websocket.id, http.HTTPStatus.BAD_REQUEST, "multiple Origin headers")
            return websocket.respond(http.HTTPStatus.BAD_REQUEST, "invalid Origin header\n")
        refusal = check_handshake(
            self.origins,
            origins[0] if origins else None,
            request.headers.get_all("Sec-WebSocket-Protocol"),
            len(self.slots),
            None if signed.slot else self.max_connections,
        )
        if refusal is None:
            if not signed.slot:  # a slot freed since the TCP connection was made
                signed.slot = True
                self.slots.add(signed)
                self._refusing.discard(signed)
            return None
        signed.refused = True
        self.metrics.refused(_REFUSAL_KINDS.get(refusal.status, "other"))  # [h17 hook]
        if refusal.status == http.HTTPStatus.SERVICE_UNAVAILABLE:
            log_rejection(websocket.id, Code.SERVER_BUSY, refusal.reason)
        else:
            log_refusal(websocket.id, refusal.status, refusal.reason)
        return websocket.respond(refusal.status, f"{refusal.body}\n")

    async def process_response(
        self, websocket: WebSocket, request: Request, response: Response
    ) -> Response | None:
        """Log handshakes websockets refused itself; the application's hook."""
        refused = response.status_code != http.HTTPStatus.SWITCHING_PROTOCOLS
        if refused and not cast(_SignedWebSocket, websocket).refused:
            self._log_refusal(websocket, request, response)
        if self._user_process_response is not None:
            result = self._user_process_response(websocket, request, response)
            if isinstance(result, Awaitable):
                result = await result
            return result
        return None

    def _log_refusal(self, websocket: WebSocket, request: Request, response: Response) -> None:
        exc = websocket.protocol.handshake_exc
        if isinstance(exc, InvalidOrigin):
            reason, kind = OriginPolicy.refusal_reason(request.headers.get("Origin")), "origin"
        elif isinstance(exc, NegotiationError):
            reason, kind = f"no {SUBPROTOCOL} subprotocol offered", "subprotocol"
        elif exc is not None:
            reason, kind = type(exc).__name__, "other"
        elif response.status_code < http.HTTPStatus.BAD_REQUEST:
            # [h17 hook] An answer of the application's process_request (a
            # health check, a redirect), not a refusal: no warning per request.
            return
        else:
            reason, kind = "refused by process_request", "other"
        self.metrics.refused(kind)  # [h17 hook]
        log_refusal(websocket.id, response.status_code, reason)

    async def handle(self, websocket: WebSocket) -> None:
        """The websockets handler: hello, pump, application handler."""
        forwarded: list[str] = []
        if self.trusted_proxies and websocket.request is not None:
            forwarded = websocket.request.headers.get_all("X-Forwarded-For")
        peer = websocket.remote_address
        address = client_address(
            None if not peer else str(peer[0]), forwarded, self.trusted_proxies
        )
        transport = _Transport(cast(_SignedWebSocket, websocket))
        await ServerConnection(self, transport, address=address).run(self.handler)


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
    process_request: ProcessRequest | None = None,
    process_response: ProcessResponse | None = None,
    clock: Callable[[], float] = time.time,
    trusted_proxies: Sequence[str | Network] = (),
    metrics: Metrics | None = None,
    health: Health | None = None,
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
        origins, allow_no_origin: who may connect, by ``Origin`` (see
            `signedws.handshake.OriginPolicy.build`). Required: pass ``[]``
            for a server that accepts no browser.
        server_key, first_frame_timeout, idle_timeout, max_connections,
        max_connections_per_principal, ack_delay, max_queue, stream_marks,
        dedupe, executor, verify_workers:
            as `signedws.asyncio.connection.Service` documents them (the defaults
            are in this signature). ``stream_marks`` is new per call if
            omitted.
        process_request: as websockets' (runs before the Origin check, after
            the health probes).
        process_response: as websockets' (runs after the connection limit).
        clock, trusted_proxies: as `signedws.asyncio.connection.Service`
            documents them.
        metrics: where to count connections, frames, rejections
            (`signedws.metrics.PrometheusMetrics`); None: nowhere.
        health: answer ``GET /healthz`` and ``GET /readyz`` on this port from
            it (`signedws.health.Health`), without a log line, and refuse
            handshakes with 503 while it is draining; None: no probes.
        **kwargs: passed to `websockets.asyncio.server.serve` (``ssl``,
            ``ping_interval``, ``logger`` ...), except the keywords signedws
            sets: ``subprotocols``, ``select_subprotocol``, ``max_size``,
            ``origins`` and ``create_connection``. Two defaults differ from
            websockets': ``compression`` is None (no permessage-deflate;
            ``compression="deflate"`` opts in, at the bounded cost of
            invariant 4) and ``close_timeout`` is 2 s (invariant 5).

    Raises:
        UsageError: for an invalid limit, an Origin list containing None (use
            ``allow_no_origin``), a server that would accept nobody, or a
            reserved keyword.
    """
    reserved = _RESERVED & set(kwargs)
    if reserved:
        raise UsageError(f"signedws sets {sorted(reserved)} itself")
    policy = OriginPolicy.build(origins, allow_no_origin=allow_no_origin)
    service = _Service(
        handler,
        origins=policy,
        process_request=process_request,
        process_response=process_response,
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
        metrics=metrics,
        health=health,
    )
    # Compression is off unless asked for (websockets' default is on): a
    # message of zeros inflates ~1000-fold. An opt-in is bounded per read
    # (`_FEED_BYTES_DEFLATE`), per message (``max_size``, inflated) and per
    # connection (``max_queue`` messages and one slice).
    kwargs.setdefault("compression", None)
    kwargs.setdefault("close_timeout", DEFAULT_CLOSE_TIMEOUT)
    return ws_serve(
        service.handle,
        host,
        port,
        subprotocols=[Subprotocol(SUBPROTOCOL)],
        max_size=verifier.max_frame_size,
        process_request=service.process_request,
        process_response=service.process_response,
        create_connection=type("_SignedWebSocket", (_SignedWebSocket,), {"service": service}),
        **kwargs,
    )
