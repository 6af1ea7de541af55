"""Operational metrics: the small interface the server pump calls, and its
Prometheus implementation (``prometheus_client``, imported only when used).

Theory of operation
-------------------
The pump calls a handful of methods of a `Metrics` object (`NullMetrics`, the
default, does nothing): per connection `connection` (a `ConnectionStats`
the pump keeps), `scheme` at the first accepted frame, `closed` at the end;
per event `refused` (a handshake), `rejected` (a §9 code) and, for one frame
in `SAMPLE_EVERY`, `verified` (seconds). Frames accepted and acks sent are
plain integer attributes of the connection's `ConnectionStats`, incremented by
the pump: no call, lock or label look-up per frame.

`PrometheusMetrics` reads those integers when it is scraped, in a collector:
totals are the closed connections' sums plus the live ones', so a scrape is
exact and per-frame cost stays an attribute increment (benchmarks: see
docs/operating.md). Reload and Redis-watcher state is likewise read at scrape
time from `Sources` the server registers (`watch`). Nothing here imports
asyncio; nothing is logged; no label holds a secret (scheme, reason and code
names are fixed sets, never values from a peer).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from prometheus_client.registry import CollectorRegistry

__all__ = [
    "SAMPLE_EVERY",
    "ConnectionStats",
    "Metrics",
    "NullMetrics",
    "PrometheusMetrics",
    "Source",
]

#: One frame in this many (per connection) has its verification timed: a
#: histogram observation costs ~2.6 µs, ~20% of a `mac` frame's whole cost
#: end to end; one in 256 is ~0.1% of it, and still hundreds of samples a
#: second under load. A power of two: the pump tests ``frames & (N - 1)``.
SAMPLE_EVERY: Final = 256

#: Histogram buckets for verification, seconds (5 µs to 10 ms).
VERIFY_BUCKETS: Final = (
    5e-6,
    1e-5,
    2e-5,
    5e-5,
    1e-4,
    2e-4,
    5e-4,
    1e-3,
    2e-3,
    1e-2,
)

#: Reasons a handshake is refused (label values; anything else is "other").
REFUSAL_REASONS: Final = frozenset({"origin", "subprotocol", "busy", "draining", "other"})


class ConnectionStats:
    """Counters of one connection, kept by the pump as plain integers."""

    __slots__ = ("acks", "frames", "scheme")

    def __init__(self) -> None:
        #: "pending" until the first frame is accepted, then "mac" or "ed25519".
        self.scheme = "pending"
        #: Frames accepted (verified), control frames included.
        self.frames = 0
        #: Pure acknowledgements sent.
        self.acks = 0


@dataclass(frozen=True, slots=True)
class Source:
    """A reloadable input's state, read at scrape time (and by readiness).

    Attributes:
        name: ``"keyring"``, ``"revocations"`` or ``"redis"``.
        state: a function returning ``{"ok": int, "failed": int, "version":
            int, "size": int, "up": bool}`` (missing keys: not reported).
    """

    name: str
    state: Callable[[], dict[str, int | bool]]


class Metrics:
    """The interface the pump and the server call; this base does nothing."""

    enabled = False

    def connection(self, stats: ConnectionStats | None = None) -> ConnectionStats:
        """A new connection: its counters (the caller keeps them), ``stats``
        if given (a pump's subclass with fields of its own), else new ones."""
        return ConnectionStats() if stats is None else stats

    def scheme(self, stats: ConnectionStats, scheme: str) -> None:
        """The connection's first frame was accepted, under ``scheme``."""
        stats.scheme = scheme

    def closed(self, stats: ConnectionStats) -> None:
        """The connection ended; its counters are final."""

    def refused(self, reason: str) -> None:
        """A handshake was refused (`REFUSAL_REASONS`)."""

    def rejected(self, code: str) -> None:
        """A connection was rejected with the §9 code ``code`` (its id)."""

    def verified(self, scheme: str, seconds: float) -> None:
        """A sampled frame took ``seconds`` to verify."""

    def draining(self, active: bool, remaining: int) -> None:
        """The server is draining (or not), with ``remaining`` connections."""

    def watch(self, source: Source) -> None:
        """Report ``source``'s state at each scrape."""


class NullMetrics(Metrics):
    """No metrics (the default)."""


NULL: Final = NullMetrics()


class PrometheusMetrics(Metrics):
    """`Metrics` in a ``prometheus_client`` registry.

    Args:
        registry: where the metrics are registered (default: a new one, so
            that several servers in one process do not collide).
    """

    enabled = True

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        from prometheus_client import CollectorRegistry, Counter, Histogram  # noqa: PLC0415

        self.registry = CollectorRegistry() if registry is None else registry
        self._live: set[ConnectionStats] = set()
        self._closed_frames: dict[str, int] = {}
        self._closed_acks = 0
        self._draining = (False, 0)
        self._sources: list[Source] = []
        self._refused = Counter(
            "signedws_handshakes_refused",
            "Opening handshakes refused, by reason",
            ["reason"],
            registry=self.registry,
        )
        self._rejected = Counter(
            "signedws_rejections",
            "Connections rejected, by SPEC.md §9 code",
            ["code"],
            registry=self.registry,
        )
        self._verify = Histogram(
            "signedws_verify_seconds",
            f"Verification time of one frame in {SAMPLE_EVERY} (seconds)",
            ["scheme"],
            buckets=VERIFY_BUCKETS,
            registry=self.registry,
        )
        self._verify_by_scheme: dict[str, Any] = {}  # labelled children, looked up once
        self.registry.register(_Collector(self))

    def connection(self, stats: ConnectionStats | None = None) -> ConnectionStats:
        stats = ConnectionStats() if stats is None else stats
        self._live.add(stats)
        return stats

    def closed(self, stats: ConnectionStats) -> None:
        if stats in self._live:
            self._live.discard(stats)
            frames = self._closed_frames
            frames[stats.scheme] = frames.get(stats.scheme, 0) + stats.frames
            self._closed_acks += stats.acks

    def refused(self, reason: str) -> None:
        self._refused.labels(reason if reason in REFUSAL_REASONS else "other").inc()

    def rejected(self, code: str) -> None:
        self._rejected.labels(code).inc()

    def verified(self, scheme: str, seconds: float) -> None:
        child = self._verify_by_scheme.get(scheme)
        if child is None:
            child = self._verify_by_scheme[scheme] = self._verify.labels(scheme)
        child.observe(seconds)

    def draining(self, active: bool, remaining: int) -> None:
        self._draining = (active, remaining)

    def watch(self, source: Source) -> None:
        self._sources.append(source)

    def exposition(self) -> bytes:
        """The registry in the Prometheus text format."""
        from prometheus_client import generate_latest  # noqa: PLC0415

        return generate_latest(self.registry)


class _Collector:
    """Reads the live counters at scrape time (see the module docstring)."""

    def __init__(self, metrics: PrometheusMetrics) -> None:
        self._metrics = metrics

    def describe(self) -> list[Any]:
        return []  # collected at scrape time only: no name checks at registration

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import (  # noqa: PLC0415
            CounterMetricFamily,
            GaugeMetricFamily,
        )

        metrics = self._metrics
        live = list(metrics._live)  # the loop thread may change the set meanwhile
        open_by = dict.fromkeys(("pending", "mac", "ed25519"), 0)
        frames = {"mac": 0, "ed25519": 0, **metrics._closed_frames}
        acks = metrics._closed_acks
        for stats in live:
            open_by[stats.scheme] = open_by.get(stats.scheme, 0) + 1
            frames[stats.scheme] = frames.get(stats.scheme, 0) + stats.frames
            acks += stats.acks
        frames.pop("pending", None)
        gauge = GaugeMetricFamily(
            "signedws_connections_open", "Open connections, by scheme", labels=["scheme"]
        )
        for scheme, count in sorted(open_by.items()):
            gauge.add_metric([scheme], count)
        yield gauge
        counter = CounterMetricFamily(
            "signedws_frames_accepted", "Client frames accepted, by scheme", labels=["scheme"]
        )
        for scheme, count in sorted(frames.items()):
            counter.add_metric([scheme], count)
        yield counter
        yield CounterMetricFamily("signedws_acks_sent", "Pure acknowledgements sent", value=acks)
        active, remaining = metrics._draining
        yield GaugeMetricFamily("signedws_draining", "1 while draining", value=int(active))
        yield GaugeMetricFamily(
            "signedws_drain_remaining",
            "Connections left to close while draining",
            value=remaining,
        )
        yield from _source_families(metrics._sources)


def _source_families(sources: list[Source]) -> Iterator[Any]:
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily  # noqa: PLC0415

    reloads = CounterMetricFamily(
        "signedws_reloads",
        "Reloads of the keyring and revocations, by source and result",
        labels=["source", "result"],
    )
    version = GaugeMetricFamily(
        "signedws_source_version",
        "Version of each source in force (reloads of a file; the store version for Redis)",
        labels=["source"],
    )
    size = GaugeMetricFamily(
        "signedws_source_size",
        "Entries of each source in force (keys, revocations)",
        labels=["source"],
    )
    up = GaugeMetricFamily(
        "signedws_redis_up", "1 while the Redis revocation watcher is synced and connected"
    )
    has_up = False
    for source in sources:
        state = source.state()
        for result in ("ok", "failed"):
            if result in state:
                reloads.add_metric([source.name, result], int(state[result]))
        if "version" in state:
            version.add_metric([source.name], int(state["version"]))
        if "size" in state:
            size.add_metric([source.name], int(state["size"]))
        if "up" in state:
            up.add_metric([], int(bool(state["up"])))
            has_up = True
    yield reloads
    yield version
    yield size
    if has_up:
        yield up
