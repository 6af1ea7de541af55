"""The client's state machine across connections, I/O-free (SPEC.md §5.2, §7).

Theory of operation
-------------------
A `ClientSession` holds everything a signedws client decides; a pump (the
asyncio client, the browser client's port) only moves bytes and time:

- **Numbering and resending** (SPEC.md §7.3). Every application message gets
  the stream's next ``seq`` in the `Outbox` (the one place ``seq`` is held)
  and stays there until a server acknowledgement covers it. On every hello
  the pending messages are signed again, in ``seq`` order, under the new
  connection's nonce and counters; if nothing is pending, one control frame
  binds the connection so that the server may send first.
- **Acknowledgements.** A verified server frame's ``ack`` drops the messages
  sent on this connection under counters ``<= ack`` (`Acknowledged`).
- **Keepalive.** A control frame after ``keepalive`` seconds without sending,
  so that the server's idle timeout does not close a listening client.
- **Acknowledgement timeout.** A message sent on this connection that saw no
  acknowledgement progress for ``ack_timeout`` seconds ends the connection
  (`AckTimedOut`; the pump closes it with 4408): a server that accepts frames
  but never acknowledges them must not keep the client waiting forever.
- **What to do when a connection ends** (`connection_closed`,
  `handshake_refused`): reconnect, refresh the credential first, finish or
  fail, from the close code or HTTP status; connections that keep ending the
  same way without progress count as repeats and, after ``max_repeats``,
  end the client with `RepeatedFailure`.
- **Backoff and refresh timing**: `reconnect_delay` (full jitter) and
  `refresh_due` (``refresh_margin`` before expiry, backing off on failures).

The pump's loop, after each input: send `data_to_send()`, handle
`events_received()`, arm one timer for `next_deadline()` and call
`advance_time` when it fires.

Invariants:

1. Peer input never raises: a bad hello or server frame becomes one
   `ServerRejected` event; after it, or after `AckTimedOut`, the connection
   takes no more input (frames are dropped unverified) until
   `connection_closed`.
2. Frames come out of `data_to_send` in counter order; the pump writes them
   in that order (one lock around the write).
3. A pending message is never dropped (SPEC.md §7.3, §11.6): one that does not
   fit a new hello's ``max_frame`` fails the connection with
   `frame_too_large` and stays in `unacknowledged`.
4. Nothing here reads a clock or draws randomness on its own: ``now`` is an
   argument and the jitter source is given at construction.
"""

from __future__ import annotations

import enum
import secrets
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Final

from .broadcast import BroadcastMessage, Topics
from .credential import Claims, ClientCredential, Ed25519Credential, MACCredential
from .envelope import Payload
from .errors import (
    Code,
    ConnectionLost,
    InvalidState,
    Refused,
    Rejected,
    RepeatedFailure,
    SignedWSError,
    UsageError,
)
from .keys import Ed25519PublicKey
from .logformat import When
from .signer import ServerMessage, Signer

__all__ = [
    "ACK_TIMEOUT_CLOSE",
    "DEFAULT_ACK_TIMEOUT",
    "DEFAULT_KEEPALIVE",
    "DEFAULT_MAX_REPEATS",
    "DEFAULT_REFRESH_MARGIN",
    "FINISH_CLOSE_CODES",
    "RECONNECT_CLOSE_CODES",
    "REFRESH_CLOSE_CODES",
    "STABLE_SECONDS",
    "AckTimedOut",
    "Acknowledged",
    "Action",
    "Backoff",
    "ClientSession",
    "Entry",
    "Outbox",
    "PayloadReceived",
    "ServerRejected",
    "close_action",
    "status_action",
]

DEFAULT_KEEPALIVE: Final = 60.0
DEFAULT_REFRESH_MARGIN: Final = 60.0
DEFAULT_ACK_TIMEOUT: Final = 60.0
DEFAULT_MAX_REPEATS: Final = 5
#: How the client closes a connection whose server stopped acknowledging.
ACK_TIMEOUT_CLOSE: Final = (4408, "no acknowledgement")
#: A connection that stayed open this long made progress, even if nothing
#: was acknowledged or received on it (a quiet listener dropped by a proxy).
STABLE_SECONDS: Final = 30.0
#: How many connection outcomes a session keeps for its final error.
MAX_OUTCOMES: Final = 16

_system_random = secrets.SystemRandom()


# -- what to do when a connection ends -------------------------------------------


class Action(enum.Enum):
    """What a client does after its connection ended."""

    #: Open a new connection (new nonce, counters from 1) and resend.
    RECONNECT = "reconnect"
    #: Get a fresh credential, then reconnect.
    REFRESH = "refresh"
    #: The server ended the conversation normally: stop, without an error.
    FINISH = "finish"
    #: Retrying cannot help: stop and report the close code.
    FAIL = "fail"


#: Close codes after which reconnecting can succeed: no close frame (1006,
#: reported as None too), going away, server errors and restarts, try again
#: later, bad gateway, the timeouts (4408), an expired connection nonce (4410)
#: and a busy server (4503).
RECONNECT_CLOSE_CODES: Final = frozenset({1001, 1006, 1011, 1012, 1013, 1014, 4408, 4410, 4503})

#: Close codes after which the credential must be replaced first (4419: the
#: credential is expired or not yet valid).
REFRESH_CLOSE_CODES: Final = frozenset({4419})

#: Close codes that end the conversation normally (1005: a close frame
#: without a code).
FINISH_CLOSE_CODES: Final = frozenset({1000, 1005})


def close_action(close_code: int | None) -> Action:
    """The action for a connection the server closed with ``close_code``
    (None: closed without a close frame).

    Everything not listed in the constants above fails: 4400 (bad frame),
    4401 (unauthorized), 4403 (revoked), 4409 (replay), 4413 and 1009 (frame
    too large), 4425 (clock skew), 4429, and protocol errors. Resending the
    same frames would be refused the same way.
    """
    if close_code is None or close_code in RECONNECT_CLOSE_CODES:
        return Action.RECONNECT
    if close_code in REFRESH_CLOSE_CODES:
        return Action.REFRESH
    if close_code in FINISH_CLOSE_CODES:
        return Action.FINISH
    return Action.FAIL


def status_action(status: int) -> Action:
    """The action for an opening handshake refused with HTTP ``status``.

    5xx (a busy, restarting or overloaded server; 503 is `server_busy`) and
    429 are worth retrying; anything else (403 for a refused Origin, 400 for a
    missing subprotocol, 404, 401 ...) is not.
    """
    if status >= 500 or status == 429:
        return Action.RECONNECT
    return Action.FAIL


@dataclass(frozen=True, slots=True)
class Backoff:
    """Exponential backoff with jitter between reconnection attempts.

    The n-th retry (from 0) waits up to ``cap = min(maximum, initial *
    factor**n)`` seconds, shortened by up to ``jitter`` of itself at random so
    that clients dropped together do not come back together. The default,
    ``jitter = 1``, is *full jitter*: a delay uniform over ``(0, cap]``, which
    spreads a node's clients evenly over the whole interval instead of
    bunching them at its end (``jitter = 0.5`` puts them all in the last half).

    Raises:
        UsageError: for a negative delay, a factor below 1 or a jitter outside
            ``[0, 1]``.
    """

    initial: float = 0.1
    maximum: float = 10.0
    factor: float = 2.0
    jitter: float = 1.0

    def __post_init__(self) -> None:
        if self.initial < 0 or self.maximum < self.initial:
            raise UsageError("backoff delays must satisfy 0 <= initial <= maximum")
        if self.factor < 1:
            raise UsageError("backoff factor must be at least 1")
        if not 0 <= self.jitter <= 1:
            raise UsageError("backoff jitter must be between 0 and 1")

    def delay(self, attempt: int, random: float) -> float:
        """Seconds to wait before retry ``attempt`` (0 for the first), given
        ``random`` drawn uniformly from ``[0, 1)``."""
        base = self.initial * self.factor ** min(attempt, 64)
        return min(self.maximum, base) * (1 - self.jitter * random)


# -- the outbox -------------------------------------------------------------------


@dataclass(slots=True)
class Entry:
    """One pending message."""

    #: Its number in the stream, fixed for life.
    seq: int
    #: The application payload (never None: control frames are not kept).
    payload: str | bytes
    #: The client counter it was last sent under on the current connection;
    #: 0 if it was not sent on it yet.
    counter: int = 0


class Outbox:
    """Messages awaiting acknowledgement, in stream order; the one holder of
    the stream's ``seq``.

    Invariants: entries are in ``seq`` order; on the current connection the
    ones sent carry strictly increasing counters and come before the ones not
    sent; an acknowledgement only removes entries sent on the current
    connection (`restart` zeroes every counter); nothing else removes an
    entry but `discard` of the newest one, which could not be signed.

    Args:
        seq: the ``seq`` of the last message already numbered (0 for a new
            stream).
    """

    __slots__ = ("_entries", "_seq")

    def __init__(self, seq: int = 0) -> None:
        self._entries: deque[Entry] = deque()
        self._seq = seq

    @property
    def seq(self) -> int:
        """The ``seq`` of the last message numbered."""
        return self._seq

    def add(self, payload: Payload) -> Entry:
        """Number a new message and keep it until it is acknowledged.

        Raises:
            UsageError: for a payload that is not str or bytes.
        """
        if type(payload) is not str and type(payload) is not bytes:
            raise UsageError("payload must be str or bytes")
        self._seq += 1
        entry = Entry(self._seq, payload)
        self._entries.append(entry)
        return entry

    def discard(self, entry: Entry) -> None:
        """Forget the newest message, which could not be signed, and give its
        ``seq`` back.

        Raises:
            UsageError: if ``entry`` is not the newest message.
        """
        if not self._entries or self._entries[-1] is not entry:
            raise UsageError("only the newest message can be discarded")
        self._entries.pop()
        self._seq -= 1

    def restart(self) -> list[Entry]:
        """A new connection opened: forget the old counters and return the
        messages to send again, in order."""
        for entry in self._entries:
            entry.counter = 0
        return list(self._entries)

    def acknowledge(self, ack: int) -> int:
        """Drop the messages sent on this connection under a counter
        ``<= ack``. Returns how many were dropped."""
        dropped = 0
        entries = self._entries
        while entries and 0 < entries[0].counter <= ack:
            entries.popleft()
            dropped += 1
        return dropped

    def waiting(self) -> bool:
        """Whether a message sent on this connection awaits acknowledgement."""
        return bool(self._entries) and self._entries[0].counter > 0

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator[Entry]:
        return iter(self._entries)

    def __repr__(self) -> str:
        return f"Outbox(pending={len(self._entries)}, seq={self._seq})"


# -- events -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PayloadReceived:
    """A verified server payload: hand it to the application.

    ``broadcast`` is set when it came in a broadcast frame (SPEC.md §14.4):
    its topic, ``tseq`` and ``missed`` (a gap in the topic since the last
    message of it this session received, across reconnects)."""

    payload: str | bytes
    broadcast: BroadcastMessage | None = None


@dataclass(frozen=True, slots=True)
class Acknowledged:
    """The server acknowledged messages; ``pending`` are left (wake the
    application's ``drain`` and ``max_pending`` waiters)."""

    pending: int


@dataclass(frozen=True, slots=True)
class ServerRejected:
    """The hello or a server frame failed (SPEC.md §5.2, §7.2): log ``code``
    and ``detail``, close the connection with ``code.close_code`` and
    ``code.peer_reason``, then call `ClientSession.connection_closed` (which
    says `Action.FAIL`)."""

    code: Code
    detail: str


@dataclass(frozen=True, slots=True)
class AckTimedOut:
    """A message sent on this connection saw no acknowledgement for
    ``waited`` seconds: close the connection with `ACK_TIMEOUT_CLOSE` (4408),
    then call `ClientSession.connection_closed` (which counts the ending as
    this client's own, whatever the server answered)."""

    waited: float


Event = PayloadReceived | Acknowledged | ServerRejected | AckTimedOut


def _expires(credential: ClientCredential) -> int | None:
    claims = credential.claims
    return claims.exp if isinstance(claims, Claims) else None


# -- the session ---------------------------------------------------------------------


class ClientSession:
    """A signedws client's state across its connections, I/O-free.

    Args:
        credential: a `MACCredential` or an `Ed25519Credential`.
        audience: the audience the server must announce in its hello
            (SPEC.md §5.2).
        server_keys: for `ed25519` clients, the server's public keys by id,
            to verify server frames (SPEC.md §7.1).
        stream: the 16-byte stream id (SPEC.md §7.3), fixed for the life of
            the session; random if omitted.
        keepalive: seconds without sending after which a control frame is
            sent (None: never).
        refresh_margin: seconds before the credential expires when
            `refresh_due` says to refresh it.
        ack_timeout: seconds a message sent on a connection may wait for
            acknowledgement progress before the connection is ended
            (`AckTimedOut`; None: forever).
        max_repeats: connections in a row ending the same way without
            progress after which the session fails with `RepeatedFailure`
            (None: no limit).
        max_attempts: reconnection attempts per drop before `reconnect_delay`
            gives up (None: no limit).
        backoff: delays between reconnection attempts and failed refreshes.
        random: a uniform ``[0, 1)`` source for the backoff's jitter.
        topics: the topic marks of broadcasts (SPEC.md §14.4), kept across
            connections; empty if omitted (see `topics`).

    Raises:
        UsageError: for invalid arguments.
    """

    def __init__(
        self,
        credential: ClientCredential,
        *,
        audience: str,
        server_keys: Mapping[str, Ed25519PublicKey] | None = None,
        stream: bytes | None = None,
        keepalive: float | None = DEFAULT_KEEPALIVE,
        refresh_margin: float = DEFAULT_REFRESH_MARGIN,
        ack_timeout: float | None = DEFAULT_ACK_TIMEOUT,
        max_repeats: int | None = DEFAULT_MAX_REPEATS,
        max_attempts: int | None = None,
        backoff: Backoff = Backoff(),
        random: Callable[[], float] = _system_random.random,
        topics: Topics | None = None,
    ) -> None:
        if not isinstance(credential, MACCredential | Ed25519Credential):
            raise UsageError("credential must be a MACCredential or an Ed25519Credential")
        if max_attempts is not None and max_attempts < 0:
            raise UsageError("max_attempts must not be negative")
        if max_repeats is not None and (type(max_repeats) is not int or max_repeats < 1):
            raise UsageError("max_repeats must be a positive integer (or None)")
        if keepalive is not None and not keepalive > 0:
            raise UsageError("keepalive must be positive (or None)")
        if ack_timeout is not None and not ack_timeout > 0:
            raise UsageError("ack_timeout must be positive (or None)")
        if not refresh_margin >= 0:
            raise UsageError("refresh_margin must not be negative")
        if stream is None:
            stream = secrets.token_bytes(16)
        if type(stream) is not bytes or len(stream) != 16:
            raise UsageError("stream must be 16 bytes")
        self._credential: ClientCredential = credential
        self.audience = audience
        self._server_keys = dict(server_keys or {})
        #: The stream id (SPEC.md §7.3), fixed for the life of the session.
        self.stream = stream
        #: The topic marks of broadcasts (SPEC.md §14.4), for the life of the
        #: session: every connection's signer checks order and gaps with them.
        self.topics = Topics() if topics is None else topics
        self._keepalive = keepalive
        self._refresh_margin = refresh_margin
        self._ack_timeout = ack_timeout
        self._max_repeats = max_repeats
        self._max_attempts = max_attempts
        self._backoff = backoff
        self._random = random
        self._outbox = Outbox()
        #: The current connection's signer; None between connections and once
        #: the connection is ending (after `ServerRejected` or `AckTimedOut`).
        self._signer: Signer | None = None
        self._data: list[bytes] = []
        self._events: list[Event] = []
        #: The latest time an input told.
        self._now = 0.0
        self._opened = 0.0
        self._last_send = 0.0
        #: Since when a message sent on this connection waits for an ack.
        self._ack_wait: float | None = None
        #: How the current connection is ending, if the session decided it:
        #: the rejection, or True for the acknowledgement timeout.
        self._ending: Rejected | bool = False
        self._progress = False
        #: Connections in a row that ended like ``_last_ending`` without progress.
        self.repeats = 0
        self._last_ending: tuple[Action, int | None, str] | None = None
        #: The close code and reason of the last connection.
        self._closed_with: tuple[int | None, str] = (None, "")
        #: Reconnection attempts since the last connection.
        self.attempts = 0
        self._outcomes: deque[str] = deque(maxlen=MAX_OUTCOMES)
        self._refresh_failures = 0
        self._refresh_retry = 0.0
        #: The error that ends the client if it does not act on the last
        #: `Action` (see `connection_closed`); None after `Action.FINISH`.
        self.failure: SignedWSError | None = None
        #: Connections opened so far.
        self.connections = 0

    # -- state ------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        """Whether a connection is open and taking frames (a hello was
        accepted, and neither `ServerRejected` nor `AckTimedOut` since)."""
        return self._signer is not None

    @property
    def credential(self) -> ClientCredential:
        """The credential frames are signed with now."""
        return self._credential

    @property
    def pending(self) -> int:
        """Messages sent but not acknowledged yet."""
        return len(self._outbox)

    @property
    def unacknowledged(self) -> list[str | bytes]:
        """The payloads sent but not acknowledged yet, oldest first (nothing
        is dropped, SPEC.md §7.3)."""
        return [entry.payload for entry in self._outbox]

    @property
    def closed_with(self) -> tuple[int | None, str]:
        """The close code (None: no close frame) and reason of the last
        connection, as `connection_closed` was told (for logs)."""
        return self._closed_with

    @property
    def outcomes(self) -> tuple[str, ...]:
        """What each connection and reconnection attempt since the last
        progress got, oldest first (at most 16)."""
        return tuple(self._outcomes)

    def __repr__(self) -> str:
        state = "connected" if self._signer is not None else "disconnected"
        return f"ClientSession({state}, pending={len(self._outbox)}, seq={self._outbox.seq})"

    # -- inputs: a connection ---------------------------------------------------------

    def receive_hello(self, data: bytes | str, *, now: float) -> None:
        """The server's hello (SPEC.md §5.2): a new connection.

        Its signer is made, and the pending messages are signed again in
        ``seq`` order under its counters (SPEC.md §7.3); if none is pending,
        one control frame binds the connection so the server may send first.
        A bad hello (text, malformed, another audience, a ``max_frame`` too
        small for a pending message or a control frame) gives `ServerRejected`
        and sends nothing; nothing pending is dropped (SPEC.md §11.6).

        Raises:
            InvalidState: if a connection is open already.

        Then call `data_to_send()` and write it, in order; `events_received()`;
        `next_deadline()`.
        """
        if self._signer is not None:
            raise InvalidState("a connection is open already: call connection_closed first")
        self._now = now
        self._ending = False
        if type(data) is not bytes:
            self._reject(Code.MALFORMED, "the hello is a text message")
            return
        try:
            signer = Signer.from_hello(
                data,
                self._credential,
                audience=self.audience,
                now=now,
                server_keys=self._server_keys,
                stream=self.stream,
                topics=self.topics,
            )
        except Rejected as exc:
            self._reject(exc.code, exc.detail)
            return
        limit = signer.hello.max_frame_size
        frames: list[bytes] = []
        entries = self._outbox.restart()
        try:
            for entry in entries:
                frames.append(signer.sign(entry.payload, now=now, seq=entry.seq))
                entry.counter = signer.counter
            if not entries:
                frames.append(signer.sign(None, now=now))
        except UsageError:
            for entry in entries:
                entry.counter = 0
            if entries:
                detail = (
                    f"pending message seq={entries[len(frames)].seq} does not fit the "
                    f"hello's max_frame of {limit} bytes; kept unacknowledged"
                )
            else:
                detail = f"the hello's max_frame of {limit} bytes is too small for a control frame"
            self._reject(Code.FRAME_TOO_LARGE, detail)
            return
        self._signer = signer
        self._data.extend(frames)
        self.connections += 1
        self.attempts = 0
        self._opened = self._last_send = now
        self._ack_wait = now if entries else None
        self._progress = False

    def receive_message(self, data: bytes | str, *, now: float) -> None:
        """A server frame (SPEC.md §7.2) or a broadcast frame (§14.4).

        A server frame's ``ack`` drops what it covers from the outbox
        (`Acknowledged`); its payload becomes `PayloadReceived`. A broadcast
        (kind 6 or 7: it shares the server counter and carries no ack) becomes
        `PayloadReceived` with its `BroadcastMessage`; `topics` moves. A
        frame that fails verification (or a text message) gives
        `ServerRejected`. Dropped unread when no connection is taking frames.

        Then call `events_received()`; `next_deadline()`.
        """
        signer = self._signer
        if signer is None:
            return
        self._now = now
        if type(data) is not bytes:
            self._reject(Code.MALFORMED, "text message from the server")
            return
        acked = signer.acked
        try:
            message = signer.verify_any(data)
        except Rejected as exc:
            self._reject(exc.code, exc.detail)
            return
        if type(message) is BroadcastMessage:
            self._progress = True
            self._events.append(PayloadReceived(message.payload, message))
            return
        assert type(message) is ServerMessage  # noqa: S101 - verify_any returns one of two
        dropped = self._outbox.acknowledge(message.ack)
        if message.ack != acked:  # progress: the wait for the rest starts again
            self._ack_wait = now if self._outbox.waiting() else None
        if dropped:
            self._progress = True
            self._events.append(Acknowledged(len(self._outbox)))
        if message.payload is not None:
            self._progress = True
            self._events.append(PayloadReceived(message.payload))

    def _reject(self, code: Code, detail: str) -> None:
        self._signer = None
        self._ending = Rejected(code, detail)
        self._events.append(ServerRejected(code, detail))

    def connection_closed(
        self, close_code: int | None, reason: str = "", *, now: float | None = None
    ) -> Action:
        """The connection ended with ``close_code`` (None: no close frame,
        as 1006) and ``reason``; ``now`` defaults to the latest time an input
        told. Returns what to do next, and sets `failure`:

        - `Action.RECONNECT`: call `reconnect_delay()`, wait, connect again.
          `failure` is the `ConnectionLost` to end with if not reconnecting.
        - `Action.REFRESH`: get a new credential (`refresh`), then as
          RECONNECT. `failure` is the `Refused` to end with if that is not
          possible.
        - `Action.FINISH`: stop, without an error (`failure` is None).
        - `Action.FAIL`: stop with `failure`: `Refused` for the close code,
          `RepeatedFailure` after ``max_repeats`` identical endings without
          progress, or the `Rejected` of a `ServerRejected`.

        A connection that received a payload, got an acknowledgement or stayed
        open `STABLE_SECONDS` made progress and clears the repeat count; one
        lost without a close frame is neither counted nor forgiven.
        """
        if now is not None:
            self._now = now
        self._signer = None
        ending, self._ending = self._ending, False
        self._ack_wait = None
        if isinstance(ending, Rejected):
            self.failure = ending
            return Action.FAIL
        if ending:
            close_code, reason = ACK_TIMEOUT_CLOSE
        self._closed_with = (close_code, reason)
        action = close_action(close_code)
        stable = self._now - self._opened >= STABLE_SECONDS
        last = (action, close_code, reason)
        if self._progress or stable or action is Action.FINISH:
            self.repeats, self._last_ending = 0, None
            self._outcomes.clear()
        elif close_code in (None, 1006):
            pass  # as likely the network's doing as the server's
        elif last == self._last_ending:
            self.repeats += 1
        else:
            self.repeats, self._last_ending = 1, last
        self._progress = False
        shown = 1006 if close_code is None else close_code
        self._outcomes.append(
            f"connection {self.connections}: closed with close code {shown} "
            f"({reason or 'no reason'})"
        )
        if action is Action.FINISH:
            self.failure = None
            return action
        if action is not Action.FAIL and (
            self._max_repeats is not None and self.repeats >= self._max_repeats
        ):
            self.failure = RepeatedFailure(close_code, reason, self.repeats, self.outcomes)
            return Action.FAIL
        if action is Action.RECONNECT:
            self.failure = ConnectionLost(close_code, 0, reason, self.outcomes)
        else:
            self.failure = Refused(close_code, reason, hint=self._hint(close_code))
        return action

    def handshake_refused(self, status: int, reason: str = "") -> Action:
        """A reconnection attempt's opening handshake was refused with HTTP
        ``status`` (``reason``: the response's reason text, printable).

        Returns `Action.RECONNECT` (5xx, 429: call `reconnect_delay()` and try
        again) or `Action.FAIL` (stop with `failure`, a `Refused`).
        """
        self.connect_failed(f"HTTP {status} ({reason or 'no reason given'})")
        action = status_action(status)
        if action is Action.FAIL:
            self.failure = Refused(None, reason, status=status)
        return action

    def connect_failed(self, outcome: str) -> None:
        """A reconnection attempt failed before the hello (``outcome``: what
        it got, in a few words, e.g. ``"timed out"``); it is listed in the
        final error. Then call `reconnect_delay()`."""
        self._outcomes.append(f"attempt {self.attempts}: {outcome}")

    def reconnect_delay(self) -> float | None:
        """Seconds to wait before the next reconnection attempt (full jitter,
        longer after repeats), counting it; None once ``max_attempts`` were
        made: stop with `failure`, then a `ConnectionLost` saying so."""
        if self._max_attempts is not None and self.attempts >= self._max_attempts:
            close_code, reason = self._closed_with
            self.failure = ConnectionLost(close_code, self.attempts, reason, self.outcomes)
            return None
        delay = self._backoff.delay(self.attempts + max(0, self.repeats - 1), self._random())
        self.attempts += 1
        return delay

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
        if close_code == 4419 and self._now >= claims.exp:
            return f"this client's credential expired at {When(claims.exp)}"
        return ""

    # -- inputs: the application --------------------------------------------------------

    def send_message(self, payload: str | bytes, *, now: float) -> None:
        """Number ``payload`` in the stream and keep it until acknowledged;
        sign it now if a connection is taking frames (else the next hello
        sends it).

        Raises:
            UsageError: for a payload that is not str or bytes, or whose frame
                exceeds the connection's ``max_frame`` (nothing is kept, its
                ``seq`` is not used).

        Then call `data_to_send()` and write it; `next_deadline()`.
        """
        entry = self._outbox.add(payload)
        self._now = now
        signer = self._signer
        if signer is None:
            return
        try:
            frame = signer.sign(payload, now=now, seq=entry.seq)
        except UsageError:
            self._outbox.discard(entry)
            raise
        entry.counter = signer.counter
        if self._ack_wait is None:
            self._ack_wait = now
        self._queue(frame, now)

    def _queue(self, frame: bytes, now: float) -> None:
        self._data.append(frame)
        self._last_send = now

    def refresh(self, credential: ClientCredential, *, now: float) -> None:
        """Sign the next frames with ``credential``, on this connection and
        the next ones (SPEC.md §4.5).

        A credential that expires within ``refresh_margin`` already is taken,
        but the next refresh waits a backoff delay (`refresh_due`).

        Raises:
            UsageError: for a credential of another scheme, issuer or subject;
                nothing changes.

        Then call `refresh_due()` for the next refresh (nothing is sent).
        """
        if type(credential) is not type(self._credential):
            raise UsageError("a refreshed credential must be of the same scheme")
        if self._signer is not None:
            self._signer.refresh(credential)
        self._credential = credential
        self._now = now
        self._refresh_failures = 0
        due = self.refresh_due()
        if due is not None and due <= now:
            self.refresh_failed(now=now)

    def refresh_failed(self, *, now: float) -> None:
        """The application's refresh failed: the next one waits a backoff
        delay. Then call `refresh_due()`."""
        self._now = now
        self._refresh_failures += 1
        self._refresh_retry = now + self._backoff.delay(self._refresh_failures - 1, self._random())

    def refresh_due(self) -> float | None:
        """When to get a new credential: ``refresh_margin`` before the current
        one expires, or after a backoff delay following failures; None for a
        credential that does not expire."""
        expires = _expires(self._credential)
        if expires is None:
            return None
        due = expires - self._refresh_margin
        if self._refresh_failures:
            due = max(due, self._refresh_retry)
        return due

    def advance_time(self, now: float) -> None:
        """Time passed. A keepalive control frame is due after ``keepalive``
        seconds without sending; `AckTimedOut` after ``ack_timeout`` seconds
        with a message waiting and no acknowledgement.

        Then call `data_to_send()`, `events_received()`, `next_deadline()`.
        """
        signer = self._signer
        if signer is None:
            return
        self._now = now
        # The same sums as next_deadline's: at its deadline, something is due.
        waited = self._ack_wait
        timeout = self._ack_timeout
        if timeout is not None and waited is not None and now >= waited + timeout:
            self._signer = None
            self._ending = True
            self._events.append(AckTimedOut(now - waited))
            return
        if self._keepalive is not None and now >= self._last_send + self._keepalive:
            self._queue(signer.sign(None, now=now), now)

    # -- outputs ------------------------------------------------------------------------

    def data_to_send(self) -> list[bytes]:
        """The frames to write, in order (each one binary WebSocket message);
        emptied by the call."""
        data, self._data = self._data, []
        return data

    def events_received(self) -> list[Event]:
        """What happened since the last call, in order; emptied by the call."""
        events, self._events = self._events, []
        return events

    def next_deadline(self) -> float | None:
        """When to call `advance_time` next (the keepalive or the
        acknowledgement timeout), or None."""
        if self._signer is None:
            return None
        deadlines = []
        if self._keepalive is not None:
            deadlines.append(self._last_send + self._keepalive)
        if self._ack_timeout is not None and self._ack_wait is not None:
            deadlines.append(self._ack_wait + self._ack_timeout)
        return min(deadlines, default=None)
