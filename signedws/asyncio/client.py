"""signedws clients on `websockets`' asyncio implementation (SPEC.md §5-§7).

Theory of operation
-------------------
`connect` opens a WebSocket with the ``signedws.v1`` subprotocol, reads the
hello, and makes a core `Signer` from it. Then a *supervisor* task reads server
frames, verifies them (`Signer.verify`), hands their payloads to the
application and feeds their acknowledgements to the `Outbox`; when the
connection ends it decides, from the close code (`_reconnect.close_action`),
whether to reconnect (with backoff), refresh the credential first, stop, or
fail.

Every message the application sends enters the outbox with the stream's next
``seq`` and stays there until a server acknowledgement covers it. On every new
connection the pending messages are signed again under the new nonce and
counters, with their original ``seq``, and sent before anything new (SPEC.md
§7.3); the server drops the ones it had delivered already. So nothing sent is
lost, and nothing is delivered twice.

Invariants:

1. One lock covers signing and writing: counters reach the wire in order,
   even with many concurrent `send` calls (SPEC.md §6.3 step 1).
2. The stream id is fixed for the life of the client; each connection's
   signer starts numbering after the outbox's last ``seq``.
3. A server frame that fails verification closes the connection with its
   rejection's close code and ends the client with `Rejected` (SPEC.md §7.2).
4. No log line or exception carries a token, frame key, key or payload.
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

from ..broadcast import Topics
from ..credential import Claims, ClientCredential, Ed25519Credential, MACCredential
from ..envelope import DEFAULT_MAX_SERVER_FRAME_SIZE
from ..errors import Code, Rejected, SignedWSError, UsageError, explain_close, explain_status
from ..keys import Ed25519PublicKey
from ..logformat import When
from ..receive import verify_server_frame
from ..redaction import redacted_url
from ..signer import ServerMessage, Signer
from ._outbox import Outbox
from ._reconnect import Action, Backoff, close_action, codes_for_close, status_action
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

DEFAULT_REFRESH_MARGIN: Final = 60.0
DEFAULT_KEEPALIVE: Final = 60.0
DEFAULT_MAX_PENDING: Final = 1024
DEFAULT_MAX_QUEUE: Final = 1024
DEFAULT_OPEN_TIMEOUT: Final = 10.0
DEFAULT_MAX_REPEATS: Final = 5
DEFAULT_ACK_TIMEOUT: Final = 60.0
#: How the client closes a connection whose server stopped acknowledging.
ACK_TIMEOUT_CLOSE: Final = (4408, "no acknowledgement")
#: A connection that stayed open this long made progress, even if nothing
#: was acknowledged or received on it (a quiet listener dropped by a proxy).
STABLE_SECONDS: Final = 30.0

logger = logging.getLogger("signedws.client")

#: ``async def refresh() -> ClientCredential``: a fresh credential of the same
#: scheme, issuer and subject.
Refresh = Callable[[], Awaitable[ClientCredential]]

_RESERVED: Final = frozenset({"subprotocols", "origin", "open_timeout", "max_size"})
_system_random = secrets.SystemRandom()


class Refused(SignedWSError):
    """The server refused this client in a way that retrying cannot fix.

    Its message says what the close code or HTTP status means and what to do
    (`signedws.errors.explain_close`, `explain_status`), with what the client
    can tell on its own (e.g. a credential for another audience).

    Attributes:
        close_code: the WebSocket close code (None for a refused handshake).
        reason: the server's opaque close reason, or for a refused handshake
            the reason text of the server's response.
        status: the HTTP status of a refused handshake (403: Origin not
            allowed), else None.
        codes: the rejection codes the close code and reason may stand for
            (SPEC.md §9 maps several to one on purpose).
        code: the rejection code, when only one fits (e.g. 4403:
            `credential_revoked`), else None.
        explanation: what it means and what to do, as in the message.
    """

    def __init__(
        self,
        close_code: int | None,
        reason: str = "",
        *,
        status: int | None = None,
        hint: str = "",
    ) -> None:
        self.close_code = close_code
        self.reason = reason
        self.status = status
        self.codes = codes_for_close(close_code, reason or None) if close_code else ()
        self.code: Code | None = self.codes[0] if len(self.codes) == 1 else None
        if status is not None:
            self.explanation = explain_status(status, reason)
        else:
            self.explanation = explain_close(close_code, reason)
        if hint:
            self.explanation += f" Here: {hint}."
        super().__init__(f"server refused the connection: {self.explanation}")


class ConnectionLost(SignedWSError):
    """The connection ended and the client did not, or could not, reconnect.

    Attributes:
        close_code: the close code of the last connection (1006: no close
            frame), or None if the last attempt did not get that far.
        attempts: reconnection attempts made.
        reason: the last connection's close reason ("" if none).
        outcomes: what each connection and reconnection attempt since the
            last progress got, oldest first (e.g. ``"attempt 2: HTTP 503
            (server busy)"``); the message lists them.
    """

    def __init__(
        self,
        close_code: int | None,
        attempts: int = 0,
        reason: str = "",
        outcomes: tuple[str, ...] = (),
    ) -> None:
        self.close_code = close_code
        self.attempts = attempts
        self.reason = reason
        self.outcomes = outcomes
        super().__init__(
            f"connection lost ({explain_close(close_code, reason)}) after {attempts} "
            f"reconnection attempts{_listed(outcomes)}"
        )


def _listed(outcomes: tuple[str, ...]) -> str:
    return "; what each got: " + "; ".join(outcomes) if outcomes else ""


class RepeatedFailure(ConnectionLost):
    """Connections kept ending the same way, with no progress in between
    (SPEC.md §7.3): ``max_repeats`` connections in a row were closed with the
    same close code and reason before anything was acknowledged or received
    on them. Retrying again would fail again; the client gave up instead of
    waiting forever. Unacknowledged messages stay in `ClientConnection.
    unacknowledged`.

    Attributes:
        close_code, reason: how each of those connections ended.
        attempts: how many connections in a row ended that way.
        codes, code: the rejection codes the close code and reason may stand
            for, as on `Refused`.
    """

    def __init__(
        self, close_code: int | None, reason: str, attempts: int, outcomes: tuple[str, ...] = ()
    ) -> None:
        super().__init__(close_code, attempts, reason, outcomes)
        self.codes = codes_for_close(close_code, reason or None) if close_code else ()
        self.code: Code | None = self.codes[0] if len(self.codes) == 1 else None
        self.args = (
            f"{attempts} connections in a row closed before any progress, giving up: "
            f"{explain_close(close_code, reason)}{_listed(outcomes)}",
        )


#: How many connection outcomes a client keeps for its final error.
MAX_OUTCOMES: Final = 16
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
    if isinstance(exc, InvalidStatus):
        status = exc.response.status_code
        return f"HTTP {status} ({_http_reason(exc.response) or 'no reason given'})"
    if isinstance(exc, ConnectionClosed):
        close = exc.rcvd
        return f"closed during the handshake, close code {close.code if close else 1006}"
    if isinstance(exc, TimeoutError):
        return "timed out"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


class ClientClosed(SignedWSError):
    """The client was closed, by the application or normally by the server."""

    def __init__(self) -> None:
        super().__init__("the client is closed")


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
        credential: ClientCredential,
        *,
        audience: str,
        server_keys: Mapping[str, Ed25519PublicKey] | None,
        refresh: Refresh | None,
        refresh_margin: float,
        reconnect: bool,
        backoff: Backoff,
        max_attempts: int | None,
        max_repeats: int | None,
        ack_timeout: float | None,
        origin: str | None,
        keepalive: float | None,
        max_pending: int,
        max_queue: int,
        open_timeout: float | None,
        clock: Callable[[], float],
        random: Callable[[], float],
        websockets_kwargs: Mapping[str, Any],
    ) -> None:
        if not isinstance(credential, MACCredential | Ed25519Credential):
            raise UsageError("credential must be a MACCredential or an Ed25519Credential")
        reserved = _RESERVED & set(websockets_kwargs)
        if reserved:
            raise UsageError(f"signedws sets {sorted(reserved)} itself")
        for name, value in (("max_pending", max_pending), ("max_queue", max_queue)):
            if type(value) is not int or value < 1:
                raise UsageError(f"{name} must be a positive integer")
        if max_attempts is not None and max_attempts < 0:
            raise UsageError("max_attempts must not be negative")
        if max_repeats is not None and (type(max_repeats) is not int or max_repeats < 1):
            raise UsageError("max_repeats must be a positive integer (or None)")
        if keepalive is not None and keepalive <= 0:
            raise UsageError("keepalive must be positive (or None)")
        if ack_timeout is not None and not ack_timeout > 0:
            raise UsageError("ack_timeout must be positive (or None)")
        if refresh_margin < 0:
            raise UsageError("refresh_margin must not be negative")
        self.uri = uri
        #: The URI as logs and the repr show it: a password or a token in it
        #: (which signedws never needs, SPEC.md §5.1) is masked.
        self._shown_uri = redacted_url(uri)
        self.audience = audience
        #: The stream id (SPEC.md §7.3), fixed for the life of the client.
        self.stream = secrets.token_bytes(16)
        #: The topic marks of broadcasts (SPEC.md §14.4), for the life of the client.
        self.topics = Topics()
        self._credential = credential
        self._server_keys = dict(server_keys or {})
        self._refresh = refresh
        self._refresh_margin = refresh_margin
        self._reconnect = reconnect
        self._backoff = backoff
        self._max_attempts = max_attempts
        self._max_repeats = max_repeats
        self._ack_timeout = ack_timeout
        self._origin = origin
        self._keepalive = keepalive
        self._max_pending = max_pending
        self._max_queue = max_queue
        self._open_timeout = open_timeout
        self._clock = clock
        self._random = random
        #: What each connection and attempt since the last progress got.
        self._outcomes: deque[str] = deque(maxlen=MAX_OUTCOMES)
        self._ws_kwargs = dict(websockets_kwargs)
        self._outbox = Outbox()
        self._incoming: deque[str | bytes] = deque()
        self._send_lock = asyncio.Lock()
        self._refresh_lock = asyncio.Lock()
        self._changed = asyncio.Event()
        self._ws: WebSocket | None = None
        self._signer: Signer | None = None
        self._max_frame: int | None = None
        self._last_send = 0.0
        #: Whether the current connection made progress (SPEC.md §7.3).
        self._progress = False
        #: Whether the client closed the current connection for want of an
        #: acknowledgement (`_ack_watchdog`).
        self._ack_timed_out = False
        self._supervisor: asyncio.Task[None] | None = None
        self._refresher: asyncio.Task[None] | None = None
        self._closing = False
        self._done = False
        self._failure: BaseException | None = None
        #: Connections opened so far (1 after `connect`).
        self.connections = 0

    # -- state --------------------------------------------------------------------

    @property
    def credential(self) -> ClientCredential:
        """The credential frames are signed with now."""
        return self._credential

    @property
    def websocket(self) -> WebSocket | None:
        """The current websockets connection, None while reconnecting."""
        return self._ws

    @property
    def pending(self) -> int:
        """Messages sent but not acknowledged yet."""
        return len(self._outbox)

    @property
    def unacknowledged(self) -> tuple[str | bytes, ...]:
        """The payloads sent but not acknowledged yet, oldest first: after the
        client ended on an error, what the application may want to send again
        (nothing is dropped, SPEC.md §7.3)."""
        return tuple(entry.payload for entry in self._outbox)

    def __repr__(self) -> str:
        state = "closed" if self._done else "open" if self._ws is not None else "reconnecting"
        return f"ClientConnection({self._shown_uri!r}, {state}, pending={len(self._outbox)})"

    def _notify(self) -> None:
        """Wake every waiter: something changed (an ack, a message, the end)."""
        self._changed.set()
        self._changed = asyncio.Event()

    def _end(self, failure: BaseException | None) -> None:
        if not self._done:
            self._done = True
            self._failure = failure
            self._notify()

    def _raise_if_done(self) -> None:
        if self._done:
            raise self._failure if self._failure is not None else ClientClosed()

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

    async def _hello(self, websocket: WebSocket) -> Signer:
        """Check the subprotocol, read the hello, make this connection's signer."""
        if websocket.subprotocol != SUBPROTOCOL:
            raise Rejected(Code.MALFORMED, f"the server did not select {SUBPROTOCOL}")
        async with asyncio.timeout(self._open_timeout):
            hello = await websocket.recv()
        if isinstance(hello, str):
            raise Rejected(Code.MALFORMED, "the hello is a text message")
        return Signer.from_hello(
            hello,
            self._credential,
            audience=self.audience,
            now=self._clock(),
            server_keys=self._server_keys,
            stream=self.stream,
            seq=self._outbox.seq,
            topics=self.topics,
        )

    async def _resend(self, websocket: WebSocket, signer: Signer) -> int:
        """Send what is pending again, in order (SPEC.md §7.3); the caller holds
        the send lock. Returns how many messages were resent.

        Raises:
            Rejected: `frame_too_large` if a pending message (or a control
                frame) does not fit the hello's ``max_frame``. The hello is
                not authenticated (SPEC.md §11.6): its value may be forged, so
                the message is never dropped for it; it stays pending and the
                client ends with this error.
        """
        resent = 0
        limit = signer.hello.max_frame_size
        for entry in self._outbox.restart():
            try:
                frame = signer.sign(entry.payload, now=self._clock(), seq=entry.seq)
            except UsageError:
                raise Rejected(
                    Code.FRAME_TOO_LARGE,
                    f"pending message seq={entry.seq} does not fit the hello's "
                    f"max_frame of {limit} bytes; kept unacknowledged",
                ) from None
            entry.counter = signer.counter
            await websocket.send(frame)
            resent += 1
        if not resent:
            # A control frame binds the connection at once, so the server may
            # send to us before we send anything.
            try:
                control = signer.sign(None, now=self._clock())
            except UsageError:
                raise Rejected(
                    Code.FRAME_TOO_LARGE,
                    f"the hello's max_frame of {limit} bytes is too small for a control frame",
                ) from None
            await websocket.send(control)
        return resent

    async def _open(self) -> None:
        """Open a connection, read the hello, resend what is pending."""
        websocket = await ws_connect(
            self.uri,
            subprotocols=[Subprotocol(SUBPROTOCOL)],
            origin=Origin(self._origin) if self._origin is not None else None,
            open_timeout=self._open_timeout,
            max_size=DEFAULT_MAX_SERVER_FRAME_SIZE,
            # No permessage-deflate unless asked for (compression="deflate"): a
            # hostile server could inflate ~1000-fold what it sends (SPEC §11.7).
            **{"compression": None, **self._ws_kwargs},
        )
        try:
            signer = await self._hello(websocket)
            async with self._send_lock:
                resent = await self._resend(websocket, signer)
                self._ws, self._signer = websocket, signer
                self._max_frame = signer.hello.max_frame_size
                self._last_send = asyncio.get_running_loop().time()
                self._progress = self._ack_timed_out = False
        except Rejected as exc:
            await websocket.close(exc.code.close_code, exc.code.peer_reason)
            raise
        except BaseException:
            websocket.transport.abort()
            raise
        self.connections += 1
        if resent:
            logger.info("connected to %s, resent %d messages", self._shown_uri, resent)
        else:
            logger.debug("connected to %s", self._shown_uri)
        self._notify()

    async def _run(self) -> None:
        """The supervisor: serve each connection, then reconnect or stop.

        Connections that keep ending the same way (the server's close code and
        reason, or the client's acknowledgement timeout) without progress
        count as repeats: the backoff grows with them, and after
        ``max_repeats`` of them the client ends with `RepeatedFailure` rather
        than retrying forever. A connection lost without a close frame (1006)
        is neither counted nor forgiven."""
        repeats = 0
        last: tuple[Action, int | None, str] | None = None
        try:
            while not self._closing:
                opened = asyncio.get_running_loop().time()
                action, close_code, reason = await self._serve()
                if self._closing:
                    break
                stable = asyncio.get_running_loop().time() - opened >= STABLE_SECONDS
                ending = (action, close_code, reason)
                if self._progress or stable or action is Action.FINISH:
                    repeats, last = 0, None
                    self._outcomes.clear()
                elif close_code in (None, 1006):
                    # Lost without a close frame: as likely the network's doing
                    # as the server's. Neither counted nor forgiven.
                    pass
                elif ending == last:
                    repeats += 1
                else:
                    repeats, last = 1, ending
                self._outcomes.append(
                    f"connection {self.connections}: closed with close code "
                    f"{1006 if close_code is None else close_code} ({reason or 'no reason'})"
                )
                if (
                    action is not Action.FAIL
                    and self._max_repeats is not None
                    and repeats >= self._max_repeats
                ):
                    logger.warning(
                        "%d connections in a row closed with close code %s before any "
                        "progress: giving up",
                        repeats,
                        close_code,
                    )
                    self._end(RepeatedFailure(close_code, reason, repeats, tuple(self._outcomes)))
                    break
                if action is Action.FINISH:
                    self._end(None)
                    break
                if action is Action.FAIL:
                    self._end(Refused(close_code, reason, hint=self._hint(close_code)))
                    break
                if action is Action.REFRESH:
                    if self._refresh is None or not self._reconnect:
                        self._end(Refused(close_code, reason, hint=self._hint(close_code)))
                        break
                    await self._refresh_credential(force=True)
                    if self._done:
                        break
                elif not self._reconnect:
                    self._end(ConnectionLost(close_code, 0, reason, tuple(self._outcomes)))
                    break
                if not await self._reconnect_loop(close_code, reason, max(0, repeats - 1)):
                    break
        except asyncio.CancelledError:
            raise
        except Rejected as exc:
            self._end(exc)
        except Exception as exc:
            logger.exception("client supervisor failed")
            self._end(exc)
        finally:
            self._end(None)

    async def _reconnect_loop(self, close_code: int | None, reason: str, repeats: int) -> bool:
        """Reconnect, with backoff (longer after ``repeats`` identical
        failures); False if the client ended instead."""
        attempt = 0
        last: BaseException | None = None
        while not self._closing:
            if self._max_attempts is not None and attempt >= self._max_attempts:
                lost = ConnectionLost(close_code, attempt, reason, tuple(self._outcomes))
                lost.__cause__ = last
                self._end(lost)
                return False
            delay = self._backoff.delay(attempt + repeats, self._random())
            logger.info(
                "reconnecting to %s in %.2f s (close code %s, attempt %d)",
                self._shown_uri,
                delay,
                close_code,
                attempt + 1,
            )
            await asyncio.sleep(delay)
            attempt += 1
            try:
                await self._open()
                return True
            except InvalidStatus as exc:
                self._outcomes.append(f"attempt {attempt}: {_outcome(exc)}")
                status = exc.response.status_code
                if status_action(status) is Action.FAIL:
                    failure = Refused(None, _http_reason(exc.response), status=status)
                    failure.__cause__ = exc
                    self._end(failure)
                    return False
                last = exc
            except Rejected as exc:
                self._end(exc)
                return False
            except (OSError, TimeoutError, ConnectionClosed, InvalidHandshake) as exc:
                self._outcomes.append(f"attempt {attempt}: {_outcome(exc)}")
                last = exc
        return False

    def _hint(self, close_code: int | None) -> str:
        """What this client can tell on its own about a refusal: a credential
        for another audience (4401), or one that expired (4419)."""
        claims = self._credential.claims
        if not isinstance(claims, Claims):
            return ""
        if close_code == 4401 and claims.aud and self.audience not in claims.aud:
            return (
                f"this client's credential is for {sorted(claims.aud)}, not for the "
                f"server's audience {self.audience!r}"
            )
        if close_code == 4419 and self._clock() >= claims.exp:
            return f"this client's credential expired at {When(claims.exp)}"
        return ""

    async def _serve(self) -> tuple[Action, int | None, str]:
        """Read the current connection until it ends; say what to do next."""
        websocket, signer = self._ws, self._signer
        assert websocket is not None  # noqa: S101 - set by _open
        assert signer is not None  # noqa: S101 - set with it
        keepalive = watchdog = None
        if self._keepalive is not None:
            keepalive = asyncio.create_task(self._keepalive_loop(websocket, signer))
        if self._ack_timeout is not None:
            watchdog = asyncio.create_task(self._ack_watchdog(websocket, signer))
        try:
            async for data in websocket:
                message = self._verify(signer, data)
                if self._outbox.acknowledge(message.ack):
                    self._progress = True
                    self._notify()
                if message.payload is not None:
                    self._progress = True
                    while len(self._incoming) >= self._max_queue and not self._closing:
                        await self._changed.wait()
                    self._incoming.append(message.payload)
                    self._notify()
        except Rejected as exc:
            logger.warning(
                "rejected server frame: code=%s number=%d detail=%s",
                exc.code.id,
                exc.code.number,
                exc.detail,
            )
            await websocket.close(exc.code.close_code, exc.code.peer_reason)
            raise
        except ConnectionClosed:
            pass
        finally:
            for task in (keepalive, watchdog):
                if task is not None:
                    task.cancel()
            self._ws = self._signer = None
            self._notify()
        await websocket.wait_closed()
        if self._ack_timed_out:
            # Counted as the client's own ending, whether or not the server
            # answered the close frame.
            return Action.RECONNECT, *ACK_TIMEOUT_CLOSE
        close_code = websocket.close_code
        reason = websocket.close_reason or ""
        if close_code == 1006:
            return Action.RECONNECT, close_code, reason
        return close_action(close_code), close_code, reason

    def _verify(self, signer: Signer, data: str | bytes) -> ServerMessage:
        # Server frames and broadcasts (SPEC.md §14.4; issue 18's hook).
        return verify_server_frame(signer, data, now=self._clock())

    async def _ack_watchdog(self, websocket: WebSocket, signer: Signer) -> None:
        """Close the connection (4408) when a message sent on it waited
        ``ack_timeout`` seconds (up to twice that) with no acknowledgement
        at all: a server that accepts frames but never acknowledges them
        (SPEC.md §7.3) must not keep the client waiting forever. The client
        then reconnects and resends; `_run` counts such endings as repeats."""
        assert self._ack_timeout is not None  # noqa: S101 - checked by the caller
        while True:
            waiting = next((e for e in self._outbox if e.counter > 0), None)
            acked = signer.acked
            await asyncio.sleep(self._ack_timeout)
            if waiting is None or signer.acked != acked:
                continue
            if any(entry is waiting for entry in self._outbox) and waiting.counter > 0:
                logger.warning(
                    "no acknowledgement from %s in %.1f s: reconnecting",
                    self._shown_uri,
                    self._ack_timeout,
                )
                self._ack_timed_out = True
                await websocket.close(*ACK_TIMEOUT_CLOSE)
                return

    async def _keepalive_loop(self, websocket: WebSocket, signer: Signer) -> None:
        """Send a control frame when nothing was sent for ``keepalive`` seconds,
        so that the server's idle timeout does not close a listening client."""
        assert self._keepalive is not None  # noqa: S101 - checked by the caller
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(max(0.0, self._last_send + self._keepalive - loop.time()))
            if loop.time() - self._last_send < self._keepalive:
                continue
            async with self._send_lock:
                if self._ws is not websocket:
                    return
                try:
                    await websocket.send(signer.sign(None, now=self._clock()))
                except ConnectionClosed:
                    return
                self._last_send = loop.time()

    # -- credentials ----------------------------------------------------------------

    def _install(self, credential: ClientCredential) -> None:
        if type(credential) is not type(self._credential):
            raise UsageError("a refreshed credential must be of the same scheme")
        if self._signer is not None:
            self._signer.refresh(credential)
        self._credential = credential

    async def _refresh_credential(self, *, force: bool) -> None:
        """Get a new credential from the ``refresh`` callback and sign with it."""
        assert self._refresh is not None  # noqa: S101 - checked by the callers
        before = self._credential
        async with self._refresh_lock:
            if self._credential is not before and not force:
                return
            credential = await self._refresh()
            try:
                self._install(credential)
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
        """Refresh the credential ``refresh_margin`` seconds before it expires,
        without reconnecting (SPEC.md §4.5)."""
        failures = 0
        while not self._done:
            expires = _expires(self._credential)
            if expires is None:
                return
            delay = expires - self._refresh_margin - self._clock()
            if failures:
                delay = max(delay, self._backoff.delay(failures - 1, self._random()))
            await asyncio.sleep(max(0.0, delay))
            if self._done:
                return
            try:
                await self._refresh_credential(force=False)
            except Exception as exc:
                failures += 1
                logger.warning("credential refresh failed (%s); will retry", type(exc).__name__)
                continue
            failures = 0
            new_expiry = _expires(self._credential)
            if new_expiry is not None and new_expiry - self._refresh_margin <= self._clock():
                logger.warning("refreshed credential expires within refresh_margin")
                failures = 1

    # -- the application's side -------------------------------------------------------

    async def send(self, payload: str | bytes) -> None:
        """Sign ``payload`` and send it; it is resent after a reconnect until the
        server acknowledges it.

        Returns once the message is written, or queued while reconnecting. Waits
        while ``max_pending`` messages await acknowledgement.

        Raises:
            UsageError: for a payload that is not str or bytes, or too large for
                the server's ``max_frame``.
            Refused, ConnectionLost, RepeatedFailure, Rejected, ClientClosed:
                if the client ended.
        """
        if type(payload) is not str and type(payload) is not bytes:
            raise UsageError("payload must be str or bytes")
        if self._max_frame is not None and len(payload) > self._max_frame:
            raise UsageError(f"payload over the server's limit of {self._max_frame} bytes")
        while len(self._outbox) >= self._max_pending:
            self._raise_if_done()
            await self._changed.wait()
        async with self._send_lock:
            self._raise_if_done()
            entry = self._outbox.add(payload)
            websocket, signer = self._ws, self._signer
            if websocket is None or signer is None:
                return  # sent when the next connection opens
            try:
                frame = signer.sign(payload, now=self._clock(), seq=entry.seq)
            except UsageError:
                self._outbox.discard(entry)
                raise
            entry.counter = signer.counter
            try:
                await websocket.send(frame)
            except ConnectionClosed:
                return  # resent by the next connection
            self._last_send = asyncio.get_running_loop().time()

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
        while len(self._outbox):
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
    client reconnects by itself as the close code says (`_reconnect`).

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
        **websockets_kwargs: Any,
    ) -> None:
        if (credential is None) == (issuer is None):
            raise UsageError("connect takes a credential or an issuer (one of the two)")
        self._issuer = issuer
        self._server_keys = server_keys
        self.client = ClientConnection(
            uri,
            credential or _AWAITING_ISSUER,
            audience=audience,
            server_keys=server_keys,
            refresh=refresh or (issuer.credential if issuer is not None else None),
            refresh_margin=refresh_margin,
            reconnect=reconnect,
            backoff=backoff,
            max_attempts=max_attempts,
            max_repeats=max_repeats,
            ack_timeout=ack_timeout,
            origin=origin,
            keepalive=keepalive,
            max_pending=max_pending,
            max_queue=max_queue,
            open_timeout=open_timeout,
            clock=clock,
            random=random,
            websockets_kwargs=websockets_kwargs,
        )

    async def _start(self) -> ClientConnection:
        if self._issuer is not None:  # the first credential and server keys (SPEC.md §13)
            await from_issuer(self.client, self._issuer, self._server_keys is None)
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
