"""What a client does when its connection ends, and how long it waits.

Transport-free on purpose: the asyncio client uses it today and any other
client adapter can tomorrow. It maps a WebSocket close code (SPEC.md §9) or an
HTTP handshake status to an `Action`, and computes reconnection delays from a
`Backoff` and a random number the caller draws (so tests can fix it).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Final

from ..errors import Code, UsageError

__all__ = [
    "FINISH_CLOSE_CODES",
    "RECONNECT_CLOSE_CODES",
    "REFRESH_CLOSE_CODES",
    "Action",
    "Backoff",
    "close_action",
    "codes_for_close",
    "status_action",
]


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
#: later, bad gateway, the adapter timeouts (4408), an expired connection nonce
#: (4410) and a busy server (4503).
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


def codes_for_close(close_code: int | None, reason: str | None) -> tuple[Code, ...]:
    """The rejection codes a server may have meant by ``close_code`` and
    ``reason`` (SPEC.md §9 maps several codes to one close code on purpose)."""
    return tuple(
        code
        for code in Code
        if code.close_code == close_code and (reason is None or code.peer_reason == reason)
    )


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
