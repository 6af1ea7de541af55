"""signedws clients on `websockets`' asyncio implementation (SPEC.md §5-§7).

Theory of operation
-------------------
Every protocol decision is the `signedws.client.ClientSession`'s: numbering,
resending on a new hello, acknowledgements, keepalives, the acknowledgement
timeout, what a close code means, repeats, backoff delays and when to refresh
the credential. This module only moves bytes and time: `connect` opens a
WebSocket with the ``signedws.v1`` subprotocol and hands the hello to the
session; a *supervisor* task feeds it server frames, writes what it gives to
send, arms one timer for its next deadline, and acts on the `Action` it
returns when a connection ends: reconnect after its backoff delay, await the
application's ``refresh`` coroutine, stop, or fail.

Invariants:

1. One lock covers draining `ClientSession.data_to_send` and writing: frames
   reach the wire in counter order, even with many concurrent `send` calls
   (SPEC.md §6.3 step 1).
2. A server frame that fails verification closes the connection with its
   rejection's close code and ends the client with `Rejected` (SPEC.md §7.2).
3. No log line or exception carries a token, frame key, key or payload.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Generator, Mapping
from types import TracebackType
from typing import Any, Final

from websockets.asyncio.client import ClientConnection as WebSocket
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus
from websockets.typing import Origin, Subprotocol

from ..broadcast import BroadcastMessage, Topics
from ..client import (
    ACK_TIMEOUT_CLOSE,
    DEFAULT_ACK_TIMEOUT,
    DEFAULT_KEEPALIVE,
    DEFAULT_MAX_REPEATS,
    DEFAULT_REFRESH_MARGIN,
    Acknowledged,
    AckTimedOut,
    Action,
    Backoff,
    ClientSession,
    PayloadReceived,
    ServerRejected,
)
from ..credential import Claims, ClientCredential
from ..envelope import DEFAULT_MAX_SERVER_FRAME_SIZE
from ..errors import (
    ClientClosed,
    Code,
    ConnectionLost,
    Refused,
    Rejected,
    RepeatedFailure,
    UsageError,
)
from ..keys import Ed25519PublicKey
from ..logformat import When
from ..redaction import redacted_url
from .issuer_client import _AWAITING_ISSUER, IssuerClient, from_issuer
from .server import SUBPROTOCOL

__all__ = [
    "DEFAULT_KEEPALIVE",
    "DEFAULT_MAX_PENDING",
    "DEFAULT_REFRESH_MARGIN",
    "ClientClosed",
    "ClientConnection",
    "ConnectionLost",
    "Refresh",
    "Refused",
    "RepeatedFailure",
    "connect",
]

DEFAULT_MAX_PENDING: Final = 1024
DEFAULT_MAX_QUEUE: Final = 1024
DEFAULT_OPEN_TIMEOUT: Final = 10.0

logger = logging.getLogger("signedws.client")

#: ``async def refresh() -> ClientCredential``: a fresh credential of the same
#: scheme, issuer and subject.
Refresh = Callable[[], Awaitable[ClientCredential]]

_RESERVED: Final = frozenset({"subprotocols", "origin", "open_timeout", "max_size"})
_system_random = secrets.SystemRandom()
#: Characters of a refused handshake's reason text kept.
MAX_REASON: Final = 200


def _http_reason(response: Any) -> str:
    """The reason text of a refused handshake's response: the first line of
    its body (websockets' servers explain there), else the reason phrase;
    printable characters only, bounded."""
    body = bytes(getattr(response, "body", b"") or b"").decode("utf-8", "replace")
    line = next((part.strip() for part in body.splitlines() if part.strip()), "")
    line = line.removeprefix("Failed to open a WebSocket connection: ")
    text = line or str(getattr(response, "reason_phrase", "") or "")
    return "".join(ch if ch.isprintable() else "?" for ch in text[:MAX_REASON])


def _outcome(exc: BaseException) -> str:
    """What a failed connection attempt got, in a few words."""
    if isinstance(exc, ConnectionClosed):
        close = exc.rcvd
        return f"closed during the handshake, close code {close.code if close else 1006}"
    if isinstance(exc, TimeoutError):
        return "timed out"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _expires(credential: ClientCredential) -> int | None:
    claims = credential.claims
    return claims.exp if isinstance(claims, Claims) else None


class ClientConnection:
    """A signedws client: an authenticated, reconnecting WebSocket connection.

    Made by `connect`; see there for the arguments. `send` signs, iteration
    and `recv` yield verified server payloads, `drain` waits until everything
    sent is acknowledged.
    """

    def __init__(
        self,
        uri: str,
        session: ClientSession,
        *,
        refresh: Refresh | None,
        reconnect: bool,
        origin: str | None,
        max_pending: int,
        max_queue: int,
        open_timeout: float | None,
        clock: Callable[[], float],
        websockets_kwargs: Mapping[str, Any],
        on_broadcast: Callable[[BroadcastMessage], None] | None = None,
    ) -> None:
        reserved = _RESERVED & set(websockets_kwargs)
        if reserved:
            raise UsageError(f"signedws sets {sorted(reserved)} itself")
        for name, value in (("max_pending", max_pending), ("max_queue", max_queue)):
            if type(value) is not int or value < 1:
                raise UsageError(f"{name} must be a positive integer")
        self.uri = uri
        self._session = session
        self._refresh = refresh
        self._reconnect = reconnect
        self._max_pending = max_pending
        self._max_queue = max_queue
        self._clock = clock
        self._on_broadcast = on_broadcast
        #: Everything `ws_connect` is called with besides the URI.
        self._connect_kwargs: dict[str, Any] = {
            # No permessage-deflate unless asked for (compression="deflate"): a
            # hostile server could inflate ~1000-fold what it sends (SPEC §11.7).
            "compression": None,
            **websockets_kwargs,
            "subprotocols": [Subprotocol(SUBPROTOCOL)],
            "origin": Origin(origin) if origin is not None else None,
            "open_timeout": open_timeout,
            "max_size": DEFAULT_MAX_SERVER_FRAME_SIZE,
        }
        self._incoming: deque[str | bytes] = deque()
        self._send_lock = asyncio.Lock()
        self._refresh_lock = asyncio.Lock()
        self._changed = asyncio.Event()
        self._ws: WebSocket | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self._refresher: asyncio.Task[None] | None = None
        self._closing = False
        #: Why the client ended (a `ClientClosed` when it ended normally);
        #: None while it runs.
        self._failure: BaseException | None = None

    # -- state --------------------------------------------------------------------

    @property
    def audience(self) -> str:
        """The audience the server must announce in its hello."""
        return self._session.audience

    @property
    def stream(self) -> bytes:
        """The stream id (SPEC.md §7.3), fixed for the life of the client."""
        return self._session.stream

    @property
    def topics(self) -> Topics:
        """The topic marks of the broadcasts received (SPEC.md §14.4), kept
        across reconnects: ``topics.mark(topic)`` is the last ``tseq``."""
        return self._session.topics

    @property
    def credential(self) -> ClientCredential:
        """The credential frames are signed with now."""
        return self._session.credential

    @property
    def connections(self) -> int:
        """Connections opened so far (1 after `connect`)."""
        return self._session.connections

    @property
    def websocket(self) -> WebSocket | None:
        """The current websockets connection, None while reconnecting."""
        return self._ws

    @property
    def pending(self) -> int:
        """Messages sent but not acknowledged yet."""
        return self._session.pending

    @property
    def unacknowledged(self) -> tuple[str | bytes, ...]:
        """The payloads sent but not acknowledged yet, oldest first: after the
        client ended on an error, what the application may want to send again
        (nothing is dropped, SPEC.md §7.3)."""
        return tuple(self._session.unacknowledged)

    def __repr__(self) -> str:
        done, shown = self._failure is not None, redacted_url(self.uri)
        state = "closed" if done else "open" if self._ws is not None else "reconnecting"
        return f"ClientConnection({shown!r}, {state}, pending={self._session.pending})"

    def _notify(self) -> None:
        """Wake every waiter: something changed (an ack, a message, a write,
        the end)."""
        self._changed.set()
        self._changed = asyncio.Event()

    def _end(self, failure: BaseException | None) -> None:
        if self._failure is None:
            self._failure = ClientClosed() if failure is None else failure
            self._notify()

    def _raise_if_done(self) -> None:
        failure = self._failure
        if failure is not None:
            raise ClientClosed() if isinstance(failure, ClientClosed) else failure

    # -- connecting -----------------------------------------------------------------

    async def _start(self) -> ClientConnection:
        try:
            await self._open()
        except InvalidStatus as exc:
            status, text = exc.response.status_code, _http_reason(exc.response)
            raise Refused(None, text, status=status) from exc
        self._supervisor = asyncio.create_task(self._run())
        if self._refresh is not None:
            self._refresher = asyncio.create_task(self._refresh_loop())
        return self

    async def _open(self) -> None:
        """Open a connection, hand its hello to the session, write the frames
        it resends (or its control frame).

        Raises:
            Rejected: the server did not select the subprotocol, or the hello
                was refused (`ServerRejected`); the connection is closed with
                the code's close code.
        """
        websocket = await ws_connect(self.uri, **self._connect_kwargs)
        try:
            resent = await self._hello(websocket)
        except Rejected as exc:
            await websocket.close(exc.code.close_code, exc.code.peer_reason)
            raise
        except BaseException:
            websocket.transport.abort()
            raise
        shown = redacted_url(self.uri)
        if resent:
            logger.info("connected to %s, resent %d messages", shown, resent)
        else:
            logger.debug("connected to %s", shown)
        self._notify()

    async def _hello(self, websocket: WebSocket) -> int:
        """Check the subprotocol, hand the hello to the session, write what it
        gives; returns how many messages were resent."""
        if websocket.subprotocol != SUBPROTOCOL:
            raise Rejected(Code.MALFORMED, f"the server did not select {SUBPROTOCOL}")
        async with asyncio.timeout(self._connect_kwargs["open_timeout"]):
            hello = await websocket.recv()
        session = self._session
        async with self._send_lock:
            session.receive_hello(hello, now=self._clock())
            for event in session.events_received():
                assert isinstance(event, ServerRejected)  # noqa: S101 - the only event
                raise Rejected(event.code, event.detail)
            # The connection is open for the session now: if it drops while the
            # frames are written, _serve sees it end (and the session says what next).
            self._ws = websocket
            with contextlib.suppress(ConnectionClosed):
                for frame in session.data_to_send():
                    await websocket.send(frame)
        return session.pending

    async def _run(self) -> None:
        """The supervisor: serve each connection, then do what the session
        says: reconnect, refresh first, finish, or fail."""
        session = self._session
        try:
            while not self._closing:
                action = await self._serve()
                if self._closing:
                    break
                if action is Action.FINISH:
                    self._end(None)
                    break
                if action is Action.FAIL:
                    if isinstance(session.failure, RepeatedFailure):
                        logger.warning(
                            "%d connections in a row closed with close code %s before any "
                            "progress: giving up",
                            session.failure.attempts,
                            session.failure.close_code,
                        )
                    self._end(session.failure)
                    break
                if action is Action.REFRESH:
                    if self._refresh is None or not self._reconnect:
                        self._end(session.failure)
                        break
                    await self._refresh_credential(force=True)
                    if self._failure is not None:
                        break
                elif not self._reconnect:
                    self._end(session.failure)
                    break
                if not await self._reconnect_loop():
                    break
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            logger.exception("client supervisor failed")
            self._end(exc)
        finally:
            self._end(None)

    async def _reconnect_loop(self) -> bool:
        """Reconnect after the session's backoff delays; False if the client
        ended instead."""
        session = self._session
        last: BaseException | None = None
        while not self._closing:
            delay = session.reconnect_delay()
            if delay is None:
                failure = session.failure
                assert failure is not None  # noqa: S101 - set by reconnect_delay
                failure.__cause__ = last
                self._end(failure)
                return False
            close_code = session.closed_with[0]
            logger.info(
                "reconnecting to %s in %.2f s (close code %s, attempt %d)",
                redacted_url(self.uri),
                delay,
                1006 if close_code is None else close_code,
                session.attempts,
            )
            await asyncio.sleep(delay)
            try:
                await self._open()
                return True
            except InvalidStatus as exc:
                status = exc.response.status_code
                if session.handshake_refused(status, _http_reason(exc.response)) is Action.FAIL:
                    failure = session.failure
                    assert failure is not None  # noqa: S101 - set by handshake_refused
                    failure.__cause__ = exc
                    self._end(failure)
                    return False
                last = exc
            except Rejected as exc:
                self._end(exc)
                return False
            except (OSError, TimeoutError, ConnectionClosed, InvalidHandshake) as exc:
                session.connect_failed(_outcome(exc))
                last = exc
        return False

    async def _serve(self) -> Action:
        """Read the current connection until it ends; say what to do next."""
        websocket, session = self._ws, self._session
        assert websocket is not None  # noqa: S101 - set by _open
        timer = asyncio.create_task(self._tick(websocket))
        try:
            async for data in websocket:
                session.receive_message(data, now=self._clock())
                await self._process(websocket)
        except ConnectionClosed:
            pass
        finally:
            timer.cancel()
            self._ws = None
            self._notify()
        await websocket.wait_closed()
        reason = websocket.close_reason or ""
        return session.connection_closed(websocket.close_code, reason, now=self._clock())

    async def _process(self, websocket: WebSocket) -> None:
        """Act on the session's events: queue payloads (waiting while
        ``max_queue`` are unread), wake waiters, close the connection."""
        for event in self._session.events_received():
            if isinstance(event, PayloadReceived):
                if event.broadcast is not None and self._on_broadcast is not None:
                    self._on_broadcast(event.broadcast)
                while len(self._incoming) >= self._max_queue and not self._closing:
                    await self._changed.wait()
                self._incoming.append(event.payload)
                self._notify()
            elif isinstance(event, Acknowledged):
                self._notify()
            elif isinstance(event, ServerRejected):
                code = event.code
                logger.warning(
                    "rejected server frame: code=%s number=%d detail=%s",
                    code.id,
                    code.number,
                    event.detail,
                )
                await websocket.close(code.close_code, code.peer_reason)
            else:
                assert isinstance(event, AckTimedOut)  # noqa: S101 - the last kind
                logger.warning(
                    "no acknowledgement from %s in %.1f s: reconnecting",
                    redacted_url(self.uri),
                    event.waited,
                )
                await websocket.close(*ACK_TIMEOUT_CLOSE)

    async def _tick(self, websocket: WebSocket) -> None:
        """The one timer: call `advance_time` at the session's next deadline
        (keepalive, acknowledgement timeout) and write what it gives."""
        session = self._session
        while True:
            deadline = session.next_deadline()
            delay = None if deadline is None else deadline - self._clock()
            if delay is None or delay > 0:
                # Woken early by any change (a write may start a deadline).
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(delay):
                        await self._changed.wait()
                continue
            async with self._send_lock:
                session.advance_time(self._clock())
                try:
                    for frame in session.data_to_send():
                        await websocket.send(frame)
                except ConnectionClosed:
                    return
            await self._process(websocket)

    # -- credentials ----------------------------------------------------------------

    async def _refresh_credential(self, *, force: bool) -> None:
        """Get a new credential from the ``refresh`` callback and sign with it."""
        assert self._refresh is not None  # noqa: S101 - checked by the callers
        session = self._session
        before = session.credential
        async with self._refresh_lock:
            if session.credential is not before and not force:
                return
            credential = await self._refresh()
            try:
                session.refresh(credential, now=self._clock())
            except UsageError as exc:
                logger.error("refreshed credential refused: %s", exc)  # noqa: TRY400
                self._end(exc)
                return
        expires = _expires(credential)
        logger.info(
            "credential refreshed: %r, expires %s",
            credential,
            "never" if expires is None else When(expires),
        )

    async def _refresh_loop(self) -> None:
        """Refresh the credential when the session says (``refresh_margin``
        seconds before it expires), without reconnecting (SPEC.md §4.5)."""
        session = self._session
        while self._failure is None:
            due = session.refresh_due()
            if due is None:
                return
            await asyncio.sleep(max(0.0, due - self._clock()))
            if self._failure is not None:
                return
            try:
                await self._refresh_credential(force=False)
            except Exception as exc:
                session.refresh_failed(now=self._clock())
                logger.warning("credential refresh failed (%s); will retry", type(exc).__name__)

    # -- the application's side -------------------------------------------------------

    async def send(self, payload: str | bytes) -> None:
        """Sign ``payload`` and send it; it is resent after a reconnect until the
        server acknowledges it.

        Returns once the message is written, or queued while reconnecting. Waits
        while ``max_pending`` messages await acknowledgement.

        Raises:
            UsageError: for a payload that is not str or bytes, or whose frame
                is too large for the server's ``max_frame``.
            Refused, ConnectionLost, RepeatedFailure, Rejected, ClientClosed:
                if the client ended.
        """
        if type(payload) is not str and type(payload) is not bytes:
            raise UsageError("payload must be str or bytes")
        session = self._session
        while session.pending >= self._max_pending:
            self._raise_if_done()
            await self._changed.wait()
        async with self._send_lock:
            self._raise_if_done()
            session.send_message(payload, now=self._clock())
            websocket = self._ws
            if websocket is not None:
                with contextlib.suppress(ConnectionClosed):  # resent by the next connection
                    for frame in session.data_to_send():
                        await websocket.send(frame)
        self._notify()

    async def recv(self) -> str | bytes:
        """The next verified server payload (pure acknowledgements are not
        returned).

        Raises:
            ClientClosed: once the client is closed and every payload received
                was returned.
            Refused, ConnectionLost, Rejected: if the client ended on an error.
        """
        while not self._incoming:
            self._raise_if_done()
            await self._changed.wait()
        payload = self._incoming.popleft()
        self._notify()
        return payload

    async def __aiter__(self) -> AsyncIterator[str | bytes]:
        """Verified server payloads until the client is closed; raises if it
        ended on an error."""
        while True:
            try:
                yield await self.recv()
            except ClientClosed:
                return

    async def drain(self) -> None:
        """Wait until the server acknowledged every message sent.

        Returns only when every message was acknowledged, never because a
        message was given up: nothing unacknowledged is dropped (SPEC.md
        §7.3, §11.6).

        Raises:
            Refused, ConnectionLost, RepeatedFailure, Rejected, ClientClosed:
                if the client ended with messages unacknowledged (see
                `unacknowledged`). `Rejected` with `frame_too_large`: a
                pending message does not fit the ``max_frame`` of a new
                connection's hello.
        """
        while self._session.pending:
            self._raise_if_done()
            await self._changed.wait()

    async def close(self) -> None:
        """Stop: close the connection (1000) and do not reconnect. Messages not
        acknowledged yet are dropped; call `drain` first to wait for them."""
        self._closing = True
        if self._refresher is not None:
            self._refresher.cancel()
        websocket = self._ws
        if websocket is not None:
            await websocket.close()
        if self._supervisor is not None:
            self._supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._supervisor
        websocket = self._ws
        if websocket is not None:
            await websocket.close()
        self._end(None)

    async def __aenter__(self) -> ClientConnection:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()


class connect:  # lower case: mirrors websockets.asyncio.client.connect
    """Connect to a signedws server.

    Mirrors `websockets.asyncio.client.connect`::

        async with connect(uri, credential, audience=...) as client:
            await client.send("hello")
            async for payload in client:
                ...

    or ``client = await connect(...)`` (then ``await client.close()``).

    The first connection is attempted once: its failure raises. After it, the
    client reconnects by itself as the close code says
    (`signedws.client.close_action`).

    Args:
        uri: the server's ``ws://`` or ``wss://`` URI.
        credential: a `MACCredential` or an `Ed25519Credential`.
        audience: the audience the server must announce in its hello
            (SPEC.md §5.2).
        server_keys: for `ed25519` clients, the server's public keys by id,
            to verify server frames.
        refresh: ``async def refresh() -> ClientCredential``, called
            ``refresh_margin`` seconds before the credential expires (and
            after a 4419 close); later frames carry the new credential, on the
            same connection.
        refresh_margin: seconds before expiry to refresh.
        issuer: instead of ``credential``, an `IssuerClient`: the first
            credential (and, for `ed25519`, the server keys) come from it, and
            it is the ``refresh`` callback (SPEC.md §13).
        reconnect: reconnect after a transient failure (default). Off: the
            client ends at the first drop.
        backoff: delays between reconnection attempts.
        max_attempts: reconnection attempts per drop before giving up with
            `ConnectionLost` (None: no limit).
        ack_timeout: close the connection (4408) and reconnect when a message
            sent on it waited this many seconds (up to twice as long) with no
            acknowledgement at all (None: wait forever).
        max_repeats: give up with `RepeatedFailure` once this many
            connections in a row ended the same way (same close code and
            reason) with nothing acknowledged or received on them (None: no
            limit; the backoff still grows with each repeat).
        origin: the ``Origin`` header to send (browsers send one; other
            clients usually don't).
        keepalive: send a control frame after this many seconds without
            sending, to stay under the server's idle timeout (None: never).
        max_pending: unacknowledged messages beyond which `send` waits.
        max_queue: received payloads buffered for `recv`.
        open_timeout: seconds for the opening handshake and the hello.
        clock: the wall clock, seconds (for tests).
        random: a uniform ``[0, 1)`` source for backoff jitter (for tests).
        topics: the topic marks of broadcasts (SPEC.md §14.4) to start from
            (a `signedws.broadcast.Topics`; empty if omitted); see ``topics``.
        on_broadcast: called with each verified broadcast's
            `signedws.broadcast.BroadcastMessage` (topic, ``tseq``, ``missed``)
            before its payload is queued for `recv`.
        **websockets_kwargs: passed to `websockets.asyncio.client.connect`
            (``ssl``, ``ping_interval``, ``additional_headers`` ...), except
            the ones signedws sets: ``subprotocols``, ``origin``,
            ``open_timeout`` and ``max_size``. ``compression`` is None (no
            permessage-deflate) unless ``compression="deflate"`` is passed.

    Raises:
        Refused: the handshake was refused (e.g. HTTP 403 for the Origin).
        Rejected: the hello is invalid or names another audience.
        OSError, TimeoutError, websockets.exceptions.InvalidHandshake: the
            first connection failed.
        UsageError: for invalid arguments.
    """

    def __init__(
        self,
        uri: str,
        credential: ClientCredential | None = None,
        *,
        audience: str,
        issuer: IssuerClient | None = None,
        server_keys: Mapping[str, Ed25519PublicKey] | None = None,
        refresh: Refresh | None = None,
        refresh_margin: float = DEFAULT_REFRESH_MARGIN,
        reconnect: bool = True,
        backoff: Backoff = Backoff(),  # noqa: B008 - frozen value object
        max_attempts: int | None = None,
        max_repeats: int | None = DEFAULT_MAX_REPEATS,
        ack_timeout: float | None = DEFAULT_ACK_TIMEOUT,
        origin: str | None = None,
        keepalive: float | None = DEFAULT_KEEPALIVE,
        max_pending: int = DEFAULT_MAX_PENDING,
        max_queue: int = DEFAULT_MAX_QUEUE,
        open_timeout: float | None = DEFAULT_OPEN_TIMEOUT,
        clock: Callable[[], float] = time.time,
        random: Callable[[], float] = _system_random.random,
        topics: Topics | None = None,
        on_broadcast: Callable[[BroadcastMessage], None] | None = None,
        **websockets_kwargs: Any,
    ) -> None:
        if (credential is None) == (issuer is None):
            raise UsageError("connect takes a credential or an issuer (one of the two)")
        self._issuer = issuer
        self._fetch_keys = server_keys is None
        #: The session's arguments, but the credential.
        self._session_kwargs: dict[str, Any] = {
            "audience": audience,
            "server_keys": server_keys,
            "keepalive": keepalive,
            "refresh_margin": refresh_margin,
            "ack_timeout": ack_timeout,
            "max_repeats": max_repeats,
            "max_attempts": max_attempts,
            "backoff": backoff,
            "random": random,
            # One set of marks for every session of this client.
            "topics": Topics() if topics is None else topics,
        }
        self.client = ClientConnection(
            uri,
            ClientSession(credential or _AWAITING_ISSUER, **self._session_kwargs),
            refresh=refresh or (issuer.credential if issuer is not None else None),
            reconnect=reconnect,
            origin=origin,
            max_pending=max_pending,
            max_queue=max_queue,
            open_timeout=open_timeout,
            clock=clock,
            websockets_kwargs=websockets_kwargs,
            on_broadcast=on_broadcast,
        )

    async def _start(self) -> ClientConnection:
        if self._issuer is not None:  # the first credential and server keys (SPEC.md §13)
            credential, keys = await from_issuer(self._issuer, self._fetch_keys)
            kwargs = self._session_kwargs
            if keys is not None:
                kwargs = {**kwargs, "server_keys": keys}
            self.client._session = ClientSession(credential, **kwargs)
        return await self.client._start()

    def __await__(self) -> Generator[Any, None, ClientConnection]:
        return self._start().__await__()

    async def __aenter__(self) -> ClientConnection:
        return await self._start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.client.close()
