"""``signedws serve``'s operations: the metrics endpoint, health checks and
the graceful drain (asyncio; the decisions are in `signedws.metrics`,
`signedws.health` and `signedws.drain`).

Metrics across ``--workers``: each worker serves its own registry on a
loopback port of its own (any free port) and tells the parent; the parent
serves ``[metrics].listen`` and, at each scrape, fetches every worker's
metrics and re-exposes them with a ``worker`` label, one family each. Sum
over ``worker`` in PromQL for the node. This was chosen over
``prometheus_client``'s multiprocess mode because the counters here are read
live at scrape time from each worker's connections (a custom collector, which
multiprocess mode cannot aggregate), because gauges such as open connections
and drain state stay exact per worker with no mmap files to clean up after a
worker dies, and because a worker's restart shows as a counter reset that
``rate()`` already handles.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
import urllib.request
from collections.abc import Awaitable, Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from ..config import parse_listen
from ..drain import schedule
from ..errors import UsageError
from ..metrics import Metrics, PrometheusMetrics

if TYPE_CHECKING:
    from ..asyncio import ServerConnection

__all__ = ["Drain", "serve_metrics", "serve_worker_metrics"]

logger = logging.getLogger("signedws.cli")

#: Seconds the parent waits for one worker's metrics at a scrape.
SCRAPE_TIMEOUT = 2.0


def _start(listen: str, registry: Any) -> tuple[Any, str]:
    try:
        from prometheus_client import start_http_server  # noqa: PLC0415
    except ImportError as exc:
        raise UsageError(
            f"[metrics].listen needs prometheus_client (pip install 'signedws[metrics]'): {exc}"
        ) from None
    host, port = parse_listen(listen)
    server, _ = start_http_server(port, host, registry=registry)
    bound = server.server_address[1]
    shown = f"[{host}]" if ":" in host else host
    return server, f"http://{shown}:{bound}/metrics"


def serve_metrics(listen: str) -> tuple[PrometheusMetrics, Any, str]:
    """A `PrometheusMetrics` served on ``listen`` (a thread of
    ``prometheus_client``'s own HTTP server); the metrics, the server (call
    ``shutdown()``) and the URL."""
    try:
        metrics = PrometheusMetrics()
    except ImportError as exc:
        raise UsageError(
            f"[metrics].listen needs prometheus_client (pip install 'signedws[metrics]'): {exc}"
        ) from None
    server, url = _start(listen, metrics.registry)
    return metrics, server, url


class _Workers:
    """The parent's collector: every worker's metrics with a ``worker`` label."""

    def __init__(self, urls: Sequence[str | None]) -> None:
        self.urls = urls

    def describe(self) -> list[Any]:
        return []

    def collect(self) -> Iterator[Any]:
        from prometheus_client.metrics_core import GaugeMetricFamily, Metric  # noqa: PLC0415
        from prometheus_client.parser import text_string_to_metric_families  # noqa: PLC0415
        from prometheus_client.samples import Sample  # noqa: PLC0415

        families: dict[str, Metric] = {}
        up = GaugeMetricFamily(
            "signedws_worker_up", "1 if the worker answered this scrape", labels=["worker"]
        )
        for index, url in enumerate(self.urls):
            text = None
            if url is not None:
                try:
                    with urllib.request.urlopen(url, timeout=SCRAPE_TIMEOUT) as answer:  # noqa: S310 - our own loopback URL
                        text = answer.read().decode()
                except OSError:
                    text = None
            up.add_metric([str(index)], int(text is not None))
            if text is None:
                continue
            for family in text_string_to_metric_families(text):
                if family.name.startswith(("python_", "process_")):
                    continue  # the workers' runtime metrics: not merged
                merged = families.get(family.name)
                if merged is None:
                    merged = families[family.name] = Metric(
                        family.name, family.documentation, family.type, family.unit
                    )
                for sample in family.samples:
                    labels = {**sample.labels, "worker": str(index)}
                    merged.samples.append(
                        Sample(sample.name, labels, sample.value, sample.timestamp)
                    )
        yield up
        yield from families.values()


def serve_worker_metrics(listen: str, urls: Sequence[str | None]) -> tuple[Any, str]:
    """The parent's endpoint on ``listen``: the workers' metrics at ``urls``
    (None: a worker without one), merged. The server and its URL."""
    try:
        from prometheus_client import CollectorRegistry  # noqa: PLC0415
    except ImportError as exc:
        raise UsageError(
            f"[metrics].listen needs prometheus_client (pip install 'signedws[metrics]'): {exc}"
        ) from None
    registry = CollectorRegistry()
    registry.register(_Workers(urls))
    return _start(listen, registry)


class Drain:
    """The graceful drain of one server process (see `run`)."""

    def __init__(
        self,
        *,
        seconds: float,
        metrics: Metrics,
        on_start: Callable[[], None],
        close_timeout: float,
    ) -> None:
        self.seconds = seconds
        self.live: set[ServerConnection] = set()
        #: websockets' ``Server``, once it listens (None under uvicorn).
        self.server: Any = None
        self._metrics = metrics
        self._on_start = on_start
        self._close_timeout = close_timeout
        self._closing: set[asyncio.Task[None]] = set()
        self._empty = asyncio.Event()
        self._empty.set()

    def track(self, handler: Callable[[Any], Awaitable[None]]) -> Callable[[Any], Awaitable[None]]:
        """``handler``, keeping the connections it runs for in `live`."""

        async def tracked(connection: Any) -> None:
            self.live.add(connection)
            self._empty.clear()
            try:
                await handler(connection)
            finally:
                self.live.discard(connection)
                if not self.live:
                    self._empty.set()

        return tracked

    async def run(self, again: asyncio.Event) -> bool:
        """Readiness fails and new handshakes get HTTP 503 (``on_start``: the
        port keeps answering probes), then each open connection is
        acknowledged and closed with 1001 at its time in a
        `signedws.drain.schedule` over ``seconds``; then wait for the
        handlers, at most the closing handshake's timeout beyond. ``again``
        (a second SIGTERM) or that deadline aborts what is left.

        Returns:
            True if everything closed in order, False if it was cut short.
        """
        self._on_start()
        server = self.server
        connections = list(self.live)
        random.shuffle(connections)
        offsets = schedule(len(connections), self.seconds)
        logger.info(
            "draining: closing %d connections over %g s (1001, with jitter)",
            len(connections),
            self.seconds,
        )
        self._metrics.draining(True, len(connections))
        closer = asyncio.create_task(self._close_all(connections, offsets))
        interrupted = asyncio.create_task(again.wait())
        try:
            deadline = self.seconds + self._close_timeout + 1.0
            done, _ = await asyncio.wait(
                [closer, interrupted], timeout=deadline, return_when=asyncio.FIRST_COMPLETED
            )
            if closer in done:
                left = max(0.1, deadline - self.seconds)
                waiter = asyncio.create_task(self._empty.wait())
                done, _ = await asyncio.wait(
                    [waiter, interrupted], timeout=left, return_when=asyncio.FIRST_COMPLETED
                )
                waiter.cancel()
                if waiter in done:
                    logger.info("drained")
                    return True
            why = "a second signal" if interrupted in done else "the drain deadline"
            logger.warning("drain cut short by %s: %d connections aborted", why, len(self.live))
            if server is not None:  # websockets' (uvicorn shuts its own down)
                server.close(close_connections=False)
                for websocket in list(server.connections):
                    websocket.transport.abort()
            return False
        finally:
            closer.cancel()
            interrupted.cancel()
            for task in self._closing:
                task.cancel()
            self._metrics.draining(True, 0)

    async def _close_all(self, connections: list[Any], offsets: list[float]) -> None:
        start = time.monotonic()
        for connection, offset in zip(connections, offsets, strict=True):
            delay = start + offset - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            task = asyncio.create_task(self._close(connection))
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)
            self._metrics.draining(True, len(self.live))
        for connection in list(self.live):  # accepted meanwhile
            if connection not in connections:
                await self._close(connection)
        if self._closing:
            await asyncio.wait(list(self._closing))

    @staticmethod
    async def _close(connection: Any) -> None:
        try:
            await connection.going_away()
        except Exception as exc:  # a connection gone meanwhile: nothing to close
            logger.debug("drain: connection=%s: %s", connection.id, type(exc).__name__)
