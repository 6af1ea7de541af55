"""Health and readiness: what ``GET /healthz`` and ``GET /readyz`` answer.

Pure: the decision from the state given, no I/O, no clock of its own. Every
transport answers the two paths on the WebSocket port from `Health.respond`
(the websockets adapter in ``process_request``, the ASGI adapter with a
route), without a log line per probe.

- ``/healthz``: 200 while the process serves at all (liveness).
- ``/readyz``: 200 when new connections should come here: the keyring holds a
  key, every registered `Check` passes (revocation files re-read within
  their interval, the Redis watcher synced and connected), and the server is
  not draining; else 503 with the failing reasons, one a line.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

__all__ = ["HEALTH_PATH", "READY_PATH", "Check", "Health", "fresh"]

HEALTH_PATH: Final = "/healthz"
READY_PATH: Final = "/readyz"

#: How many intervals a reloaded source may go unchecked and still be fresh.
STALE_AFTER_INTERVALS: Final = 3.0


def fresh(last_ok: float | None, interval: float, now: float) -> bool:
    """Whether a source last confirmed at ``last_ok`` (None: never) and
    re-checked every ``interval`` seconds is fresh at ``now``: checked within
    `STALE_AFTER_INTERVALS` intervals (at least one second). ``interval`` 0
    (reload only on SIGHUP) is always fresh once loaded."""
    if last_ok is None:
        return False
    if interval <= 0:
        return True
    return now - last_ok <= max(1.0, STALE_AFTER_INTERVALS * interval)


@dataclass(frozen=True, slots=True)
class Check:
    """One readiness condition.

    Attributes:
        name: what it checks, as shown in a failing answer.
        failure: given the time, None when ready, else why not (no secret).
    """

    name: str
    failure: Callable[[float], str | None]


class Health:
    """The state `respond` decides from: registered checks and the drain flag."""

    def __init__(self, *, keyring_size: Callable[[], int] | None = None) -> None:
        self._checks: list[Check] = []
        self.draining = False
        if keyring_size is not None:
            size = keyring_size
            self.add(Check("keyring", lambda _: None if size() > 0 else "the keyring has no key"))

    def add(self, check: Check) -> None:
        """Make ``check`` a condition of readiness."""
        self._checks.append(check)

    def failures(self, now: float) -> list[str]:
        """Why the server is not ready at ``now`` (empty: ready)."""
        reasons = ["draining"] if self.draining else []
        for check in self._checks:
            reason = check.failure(now)
            if reason is not None:
                reasons.append(f"{check.name}: {reason}")
        return reasons

    def respond(self, path: str, now: float) -> tuple[int, str] | None:
        """The HTTP status and body for a request of ``path`` (its query
        ignored), or None for a path that is not a probe."""
        path = path.partition("?")[0]
        if path == HEALTH_PATH:
            return 200, "ok\n"
        if path == READY_PATH:
            reasons = self.failures(now)
            if reasons:
                return 503, "not ready\n" + "".join(f"{r}\n" for r in reasons)
            return 200, "ready\n"
        return None
