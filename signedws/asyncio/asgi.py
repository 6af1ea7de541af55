"""signedws on ASGI: guarded Starlette and FastAPI WebSocket endpoints (SPEC.md §5-§7).

A FastAPI endpoint takes its connection from a dependency::

    signed = SignedWebSockets(verifier, origins=["https://chat.example"])

    @app.websocket("/ws")
    async def chat(connection: Annotated[ServerConnection, Depends(signed)]):
        async for message in connection:  # verified
            await connection.send(f"{message.subject} said {message.payload}")

and a Starlette route wraps a handler::

    app = Starlette(routes=[WebSocketRoute("/ws", signed.endpoint(handler))])

Theory of operation
-------------------
`SignedWebSockets` does the opening handshake on a Starlette ``WebSocket``
that is not accepted yet, in the order websockets does it: the ``Origin``
allow-list (HTTP 403), the ``signedws.v1`` subprotocol (HTTP 400), the
connection limit (HTTP 503, ``server_busy``). A refused handshake never
reaches ``accept``. A refused Origin is a close before accept (code 1008),
which ASGI servers answer with HTTP 403. The 400 and 503 refusals are sent
as HTTP responses through the ASGI WebSocket Denial Response extension
(uvicorn, hypercorn); on a server without it they too become a close before
accept, hence 403. The endpoint wrapper sends the refusal itself; the FastAPI
dependency raises ``WebSocketException`` or ``HTTPException``, which the
framework's exception middleware turns into the same close or response.

An accepted connection selects ``signedws.v1`` and becomes a
`signedws.asyncio.connection.ServerConnection` over a Starlette transport: the
same hello, pump, verification (Ed25519 in a thread pool), delivery marks,
acknowledgements, timeouts and rejection → log → close mapping as the
websockets adapter, with no line of it here. The Starlette ``WebSocket`` is
``connection.transport.websocket``.

Invariants (beyond those of `signedws.asyncio.connection`):

1. The endpoint runs only for an accepted connection; it sees only verified
   messages and Starlette's own exception: ``recv`` and ``send`` raise
   ``WebSocketDisconnect`` once the connection is closed. An endpoint that
   ends with it is not an error (the pump logged why).
2. When the endpoint returns, its last message counts as delivered, a due
   acknowledgement is flushed, and the connection is closed (1000; 1011 if
   the endpoint raised). A connection slot is held from the handshake until
   then.
3. Message size: the ASGI server reads messages, so only it can refuse one
   before buffering it. Run uvicorn with ``ws_max_size`` equal to the
   verifier's ``max_frame_size`` (``--ws-max-size``): oversize messages then
   close with 1009 and are logged as ``frame_too_large``; otherwise the
   verifier's own size check closes with 4413.
4. Compression and what is buffered before the application reads: the ASGI
   server's. uvicorn negotiates permessage-deflate unless told not to, and
   inflates every message of a socket read into its queue before the
   application sees one (SECURITY.md: ten connections and 1.7 MiB on the wire
   grew it by ~930 MiB). Run it with ``--ws-per-message-deflate false``
   (``ws_per_message_deflate=False``); an ASGI application can neither see
   nor refuse the negotiated extension. Likewise handshakes in progress and
   the closing handshake's timeout are the server's (uvicorn:
   ``--limit-concurrency``, ``--timeout-graceful-shutdown``). This adapter
   reads one message at a time and drops what waits for verification at the
   first rejection.

Starlette (and FastAPI, for the dependency) come with ``signedws[asgi]``;
``import signedws`` imports neither, nor does this module import websockets.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import ClassVar, Final

from starlette.exceptions import HTTPException, WebSocketException
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from starlette.websockets import WebSocket, WebSocketDisconnect

from ..envelope import SUBPROTOCOL
from ..errors import Code
from ..handshake import Network, OriginPolicy, check_handshake, client_address
from ..health import HEALTH_PATH, READY_PATH, Health
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
    ServerConnection,
    Service,
    log_refusal,
    log_rejection,
)

__all__ = ["SUBPROTOCOL", "Handler", "ServerConnection", "SignedWebSockets"]

#: The ASGI extension that lets an application answer a handshake with HTTP.
DENIAL_EXTENSION: Final = "websocket.http.response"
#: The close code of a refusal on servers without that extension (a close
#: before accept, which the server answers with HTTP 403).
POLICY_VIOLATION: Final = 1008
#: What a client sees when an ASGI server gets a close before accept.
CLOSED_BEFORE_ACCEPT_STATUS: Final = 403
#: ASGI's close code when a disconnect does not carry one.
NO_STATUS_RECEIVED: Final = 1005
#: The close code of a message over the server's size limit (RFC 6455 §7.4.1).
MESSAGE_TOO_BIG: Final = 1009
#: [h17 hook] The refusal reason counted in the metrics, by HTTP status of a
#: `signedws.handshake.Refusal`.
_REFUSAL_KINDS: Final = {403: "origin", 400: "subprotocol", 503: "busy"}


class _Transport:
    """A Starlette ``WebSocket``, accepted, as a `signedws.asyncio.connection.Transport`.

    Only the pump calls `receive`. ASGI servers report the end of a
    connection as a ``websocket.disconnect`` message (uvicorn also when the
    application closed it, or when it refused an oversize message: code 1009).
    """

    Closed: ClassVar[type[Exception]] = WebSocketDisconnect

    def __init__(self, websocket: WebSocket, connection_id: uuid.UUID) -> None:
        #: The Starlette ``WebSocket`` (for its headers, URL, path parameters,
        #: client address, state; don't read or write messages on it directly).
        self.websocket = websocket
        self._id = connection_id
        self._closed = asyncio.Event()
        self._code = NO_STATUS_RECEIVED
        self._reason = ""
        self._oversize = False
        # Frames waiting for the ASGI server, in counter order (`write`; a
        # waiter for those `send` queued), and their bytes; `_writing` while a
        # frame is in the server's ``send`` (one at a time, in order).
        self._queue: deque[tuple[bytes, asyncio.Future[None] | None]] = deque()
        self._queued = 0
        self._writing = False
        self._writer: asyncio.Task[None] | None = None

    @property
    def id(self) -> object:
        return self._id

    def _ended(self, code: int, reason: str) -> None:
        if not self._closed.is_set():
            self._code, self._reason = code, reason
            self._closed.set()

    async def receive(self) -> bytes | str:
        if self._closed.is_set():
            raise self.close_error()
        message = await self.websocket.receive()
        if message["type"] == "websocket.disconnect":
            code = int(message.get("code") or NO_STATUS_RECEIVED)
            if not self._closed.is_set():
                # Not the echo of our own close: the peer left, or the server
                # refused a message while reading it.
                self._oversize = code == MESSAGE_TOO_BIG
            self._ended(code, str(message.get("reason") or ""))
            raise self.close_error()
        data = message.get("bytes")
        if data is not None:
            return bytes(data)
        text = message.get("text")
        return str(text) if text is not None else ""

    async def send(self, data: bytes) -> None:
        if self._closed.is_set():
            raise self.close_error()
        if self._writing or self._queue:
            # Frames written before this one are still queued: keep the order
            # (an ASGI server's ``send`` may wait before it writes).
            waiter = asyncio.get_running_loop().create_future()
            self._queue.append((data, waiter))
            self._queued += len(data)
            await waiter
            return
        self._writing = True
        try:
            await self._send(data)
        finally:
            self._writing = False
            if self._queue:
                self._start_writer()

    async def _send(self, data: bytes) -> None:
        try:
            await self.websocket.send({"type": "websocket.send", "bytes": data})
        except WebSocketDisconnect as exc:
            self._ended(exc.code, exc.reason)
            raise

    def write(self, data: bytes) -> bool:
        if self._closed.is_set():
            return False
        self._queue.append((data, None))
        self._queued += len(data)
        if not self._writing:
            self._start_writer()
        return True

    def buffered(self) -> int:
        return self._queued

    def _start_writer(self) -> None:
        self._writing = True
        self._writer = asyncio.get_running_loop().create_task(self._write_queued())

    async def _write_queued(self) -> None:
        """Hand queued frames to the ASGI server one at a time, in order."""
        queue = self._queue
        try:
            while queue:
                data, waiter = queue[0]
                try:
                    await self._send(data)
                except Exception as exc:  # the connection is gone
                    for _, pending in queue:
                        if pending is not None and not pending.done():
                            pending.set_exception(exc)
                    queue.clear()
                    self._queued = 0
                    return
                queue.popleft()
                self._queued -= len(data)
                if waiter is not None and not waiter.done():
                    waiter.set_result(None)
        finally:
            self._writing = False
            self._writer = None

    async def close(self, code: int, reason: str) -> None:
        if self._closed.is_set():
            return
        self._ended(code, reason)
        # The peer may be gone already; Starlette then raises WebSocketDisconnect.
        with contextlib.suppress(WebSocketDisconnect):
            await self.websocket.close(code, reason)

    async def wait_closed(self) -> None:
        await self._closed.wait()

    def close_error(self) -> Exception:
        return WebSocketDisconnect(self._code, self._reason)

    def refused_oversize(self, exc: Exception) -> bool:
        return self._oversize


Handler = Callable[[ServerConnection], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class _Refusal:
    """A handshake refused before ``accept``."""

    #: The HTTP status the client gets.
    status: int
    detail: str
    #: Whether the server offers the denial response extension.
    denial: bool

    @property
    def closes(self) -> bool:
        """Whether the refusal is a close before accept: where it gives the
        status wanted (403), and where the server has no other way."""
        return not self.denial or self.status == CLOSED_BEFORE_ACCEPT_STATUS

    async def send(self, websocket: WebSocket) -> None:
        if self.closes:
            await websocket.close(POLICY_VIOLATION)
        else:
            response = PlainTextResponse(f"{self.detail}\n", status_code=self.status)
            await websocket.send_denial_response(response)

    def exception(self) -> Exception:
        if self.closes:
            return WebSocketException(POLICY_VIOLATION)
        return HTTPException(self.status, self.detail)


class SignedWebSockets:
    """Guards Starlette and FastAPI WebSocket endpoints with signedws.

    One instance serves any number of routes and connections; they share its
    limits, stream marks and thread pool. Use it as a FastAPI dependency
    (``Depends(signed)`` gives the endpoint a `ServerConnection`) or wrap a
    handler for a Starlette route with `endpoint`.

    Args:
        verifier: the core verifier (keyring, audience, fleet key, revocation
            set, replay window, ``max_frame_size``). Its ``max_frame_size``
            (65536 by default) is announced in the hello and checked on every
            frame; give the same number to the ASGI server (uvicorn's
            ``ws_max_size``) so it refuses larger messages while reading them.
        origins, allow_no_origin: who may connect, by ``Origin`` (see
            `signedws.handshake.OriginPolicy.build`). Required: pass ``[]``
            for a server that accepts no browser.
        server_key, first_frame_timeout, idle_timeout, max_connections,
        max_connections_per_principal, ack_delay, max_queue, stream_marks,
        dedupe, executor, verify_workers, clock,
        trusted_proxies: as `signedws.asyncio.connection.Service` documents them (the defaults
            are in this signature). ``max_connections`` counts every route of
            this guard; ``stream_marks`` is new per guard if omitted.
        metrics: where to count connections, frames, rejections
            (`signedws.metrics.PrometheusMetrics`); None: nowhere.
        health: what `probe` answers (`signedws.health.Health`); handshakes
            are refused with 503 while it is draining. None: a `Health` with
            only the keyring check.

    Raises:
        UsageError: for an invalid limit, an Origin list containing None (use
            ``allow_no_origin``) or a guard that would accept nobody.
    """

    def __init__(
        self,
        verifier: Verifier,
        *,
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
        clock: Callable[[], float] = time.time,
        trusted_proxies: Sequence[str | Network] = (),
        metrics: Metrics | None = None,
        health: Health | None = None,
    ) -> None:
        self._origins = OriginPolicy.build(origins, allow_no_origin=allow_no_origin)
        self._service = Service(
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

    @property
    def verifier(self) -> Verifier:
        """The verifier every connection uses."""
        return self._service.verifier

    def __repr__(self) -> str:
        service = self._service
        return (
            f"SignedWebSockets(audience={service.verifier.audience!r}, "
            f"connections={len(service.slots)}/{service.max_connections})"
        )

    # -- FastAPI --------------------------------------------------------------------

    async def __call__(self, websocket: WebSocket) -> AsyncIterator[ServerConnection]:
        """The FastAPI dependency: ``Depends(signed)`` gives the endpoint an
        accepted `ServerConnection`, and closes it when the endpoint returns.

        A refused handshake raises ``WebSocketException`` (a refused Origin,
        or any refusal on a server without the denial response extension) or
        ``HTTPException`` before ``accept``, and the endpoint does not run.
        If the client left right after ``accept``, the endpoint gets a
        connection that is closed already: its iteration ends at once.
        """
        connection_id = uuid.uuid4()
        refusal = self._handshake(websocket, connection_id)
        if refusal is not None:
            raise refusal.exception()
        async with self._connected(websocket, connection_id) as (connection, _):
            yield connection

    # -- Starlette ------------------------------------------------------------------

    def endpoint(self, handler: Handler) -> Callable[[WebSocket], Awaitable[None]]:
        """A Starlette WebSocket endpoint (``WebSocketRoute(path, endpoint)``)
        that runs ``handler`` with an accepted `ServerConnection`.

        Refused handshakes get their HTTP status and never reach ``handler``;
        neither does a client that left before the hello. The connection is
        closed when ``handler`` returns. Also usable as a decorator, and as a
        FastAPI ``@app.websocket`` endpoint.
        """

        async def signed_endpoint(websocket: WebSocket) -> None:
            connection_id = uuid.uuid4()
            refusal = self._handshake(websocket, connection_id)
            if refusal is not None:
                await refusal.send(websocket)
                return
            async with self._connected(websocket, connection_id) as (connection, opened):
                if opened:
                    await handler(connection)

        # Not functools.wraps: frameworks would read the handler's signature.
        for name in ("__module__", "__name__", "__qualname__", "__doc__"):
            with contextlib.suppress(AttributeError):
                setattr(signed_endpoint, name, getattr(handler, name))
        return signed_endpoint

    # -- health probes ([h17 hook]) ------------------------------------------------------

    @property
    def health(self) -> Health:
        """What `probe` answers from (the ``health`` given, or a `Health` with
        the keyring check); set its ``draining`` to refuse new connections."""
        health = self._service.health
        if health is None:
            verifier = self._service.verifier
            health = self._service.health = Health(keyring_size=lambda: len(verifier.keyring))
        return health

    async def probe(self, request: Request) -> Response:
        """A Starlette HTTP endpoint answering ``/healthz`` and ``/readyz``
        (`signedws.health`), without a log line: mount it at both paths,
        ``Route("/healthz", signed.probe)``, ``Route("/readyz", signed.probe)``."""
        answer = self.health.respond(request.url.path, time.monotonic())
        status, body = answer if answer is not None else (404, "not found\n")
        return PlainTextResponse(body, status_code=status)

    def probe_routes(self) -> list[Route]:
        """Starlette routes answering ``/healthz`` and ``/readyz`` with `probe`:
        ``Starlette(routes=[*signed.probe_routes(), WebSocketRoute(...)])``."""
        return [Route(HEALTH_PATH, self.probe), Route(READY_PATH, self.probe)]

    # -- the connection's life ------------------------------------------------------------

    def _handshake(self, websocket: WebSocket, connection_id: uuid.UUID) -> _Refusal | None:
        """Check Origin, subprotocol and the connection limit, in websockets'
        order; log and return a refusal, or take a slot and return None."""
        denial = DENIAL_EXTENSION in (websocket.scope.get("extensions") or {})

        def refuse(status: int, detail: str, reason: str, kind: str) -> _Refusal:
            refusal = _Refusal(status if denial else CLOSED_BEFORE_ACCEPT_STATUS, detail, denial)
            service.metrics.refused(kind)  # [h17 hook]
            log_refusal(connection_id, refusal.status, reason)
            return refusal

        service = self._service
        values = websocket.headers.getlist("origin")
        if len(values) > 1:
            return refuse(400, "invalid Origin header", "multiple Origin headers", "origin")
        refusal = check_handshake(
            self._origins,
            values[0] if values else None,
            websocket.scope.get("subprotocols", ()),
            len(service.slots),
            service.max_connections,
        )
        health = service.health
        if health is not None and health.draining and (refusal is None or refusal.status == 503):
            # [h17 hook] after Origin and subprotocol, before the limit: no log per refusal.
            service.metrics.refused("draining")
            return _Refusal(503 if denial else CLOSED_BEFORE_ACCEPT_STATUS, "draining", denial)
        if refusal is None:
            service.slots.add(connection_id)
            return None
        if refusal.status == 503:
            service.metrics.refused("busy")  # [h17 hook]
            log_rejection(connection_id, Code.SERVER_BUSY, refusal.reason)
            status = 503 if denial else CLOSED_BEFORE_ACCEPT_STATUS
            return _Refusal(status, refusal.body, denial)
        kind = _REFUSAL_KINDS.get(refusal.status, "other")
        return refuse(refusal.status, refusal.body, refusal.reason, kind)

    @contextlib.asynccontextmanager
    async def _connected(
        self, websocket: WebSocket, connection_id: uuid.UUID
    ) -> AsyncIterator[tuple[ServerConnection, bool]]:
        """Accept with ``signedws.v1``, send the hello and run the pump around
        the endpoint; then finish, close and free the slot."""
        try:
            await websocket.accept(subprotocol=SUBPROTOCOL)
            service = self._service
            address = client_address(
                None if websocket.client is None else websocket.client.host,
                websocket.headers.getlist("x-forwarded-for") if service.trusted_proxies else [],
                service.trusted_proxies,
            )
            transport = _Transport(websocket, connection_id)
            connection = ServerConnection(service, transport, address=address)
            opened = await connection.open()
            code, reason = NORMAL_CLOSURE, ""
            try:
                yield connection, opened
            except WebSocketDisconnect:
                pass  # the connection ended under the endpoint; the pump logged why
            except Exception:
                code, reason = INTERNAL_ERROR, "internal error"
                raise
            finally:
                await connection.finish()
                await connection.close(code, reason)
        finally:
            self._service.release(connection_id)
