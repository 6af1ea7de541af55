"""The pure parts of issue 17's operations: the drain schedule
(`signedws.drain`), the health decision (`signedws.health`) and the metrics
interface and its Prometheus collector (`signedws.metrics`), without sockets."""

from __future__ import annotations

import bisect
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families

from signedws.drain import max_in_window, schedule
from signedws.health import Check, Health, fresh
from signedws.metrics import NULL, ConnectionStats, NullMetrics, PrometheusMetrics, Source


def busiest(times: list[float], window: float) -> int:
    return max(
        (bisect.bisect_right(times, t + window) - i for i, t in enumerate(times)), default=0
    )


@given(
    count=st.integers(0, 2000),
    seconds=st.floats(0.01, 60),
    window=st.floats(0.001, 5),
    seed=st.integers(0, 2**32),
)
def test_schedule_never_bursts(count: int, seconds: float, window: float, seed: int) -> None:
    """Whatever the draws, the offsets are ascending, within the span, and no
    window holds more than `max_in_window` of them."""
    draws = random.Random(seed)  # noqa: S311 - seeded draws, not secrets
    offsets = schedule(count, seconds, random=draws.random)
    assert len(offsets) == count
    assert offsets == sorted(offsets)
    assert all(0 <= t < seconds for t in offsets)
    assert busiest(offsets, window) <= max_in_window(count, seconds, window)


def test_schedule_edges() -> None:
    """No connections: nothing; no span: everything at once (and the bound says so)."""
    assert schedule(0, 5) == []
    assert schedule(-1, 5) == []
    assert schedule(3, 0) == [0.0, 0.0, 0.0]
    assert max_in_window(3, 0, 0.1) == 3
    assert max_in_window(200, 2, 0.1) == 11
    assert max_in_window(2, 10, 10) == 2


def test_schedule_has_jitter() -> None:
    """Two drains of the same size do not close in lock-step."""
    assert schedule(10, 1) != schedule(10, 1)


def test_fresh() -> None:
    assert not fresh(None, 1.0, 10.0)
    assert fresh(5.0, 0.0, 1e9)  # reloaded on SIGHUP only: fresh once loaded
    assert fresh(9.0, 1.0, 11.0)  # within 3 intervals
    assert not fresh(5.0, 1.0, 11.0)
    assert fresh(10.0, 0.1, 10.9)  # at least a second


def test_health_answers() -> None:
    failing: list[str] = []
    keys = [1]
    health = Health(keyring_size=lambda: keys[0])
    health.add(Check("redis", lambda now: failing[0] if failing else None))
    assert health.respond("/healthz", 0) == (200, "ok\n")
    assert health.respond("/readyz", 0) == (200, "ready\n")
    assert health.respond("/readyz?x=1", 0) == (200, "ready\n")
    assert health.respond("/ws", 0) is None
    assert health.respond("/healthz/x", 0) is None
    failing.append("not synced")
    keys[0] = 0
    health.draining = True
    assert health.failures(0) == [
        "draining",
        "keyring: the keyring has no key",
        "redis: not synced",
    ]
    assert health.respond("/readyz", 0) == (
        503,
        "not ready\ndraining\nkeyring: the keyring has no key\nredis: not synced\n",
    )
    assert health.respond("/healthz", 0) == (200, "ok\n")  # alive while not ready
    assert Health().respond("/readyz", 0) == (200, "ready\n")


def test_null_metrics_do_nothing_but_keep_the_scheme() -> None:
    stats = NULL.connection()
    assert isinstance(NULL, NullMetrics)
    assert not NULL.enabled
    assert (stats.scheme, stats.frames, stats.acks) == ("pending", 0, 0)
    NULL.scheme(stats, "mac")
    assert stats.scheme == "mac"
    for call in (
        lambda: NULL.closed(stats),
        lambda: NULL.refused("origin"),
        lambda: NULL.rejected("bad_tag"),
        lambda: NULL.verified("mac", 1e-5),
        lambda: NULL.draining(True, 3),
        lambda: NULL.watch(Source("keyring", dict)),
    ):
        assert call() is None


def parsed(metrics: PrometheusMetrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(metrics.exposition().decode())
        for s in family.samples
    }


def test_prometheus_metrics_read_live_counters_at_scrape() -> None:
    """Live connections' plain counters are in every scrape; a closed one's
    stay in the totals; open connections follow the scheme; labels are a
    fixed set (an unknown refusal reason is "other")."""
    metrics = PrometheusMetrics()
    first, second = metrics.connection(), metrics.connection()
    metrics.scheme(first, "mac")
    first.frames, first.acks = 10, 2
    scraped = parsed(metrics)
    assert scraped[("signedws_connections_open", (("scheme", "mac"),))] == 1
    assert scraped[("signedws_connections_open", (("scheme", "pending"),))] == 1
    assert scraped[("signedws_frames_accepted_total", (("scheme", "mac"),))] == 10
    first.frames = 15
    metrics.closed(first)
    metrics.closed(first)  # once only
    metrics.scheme(second, "ed25519")
    second.frames = 4
    metrics.refused("origin")
    metrics.refused("<script>")
    metrics.rejected("replay")
    metrics.verified("mac", 2e-5)
    metrics.draining(True, 7)
    metrics.watch(Source("keyring", lambda: {"ok": 2, "failed": 1, "version": 2, "size": 3}))
    metrics.watch(Source("redis", lambda: {"version": 9, "size": 4, "up": False}))
    metrics.watch(Source("revocations", lambda: {"ok": 5}))  # only what it reports
    scraped = parsed(metrics)
    assert scraped[("signedws_frames_accepted_total", (("scheme", "mac"),))] == 15
    assert scraped[("signedws_frames_accepted_total", (("scheme", "ed25519"),))] == 4
    assert scraped[("signedws_connections_open", (("scheme", "mac"),))] == 0
    assert scraped[("signedws_connections_open", (("scheme", "ed25519"),))] == 1
    assert scraped[("signedws_acks_sent_total", ())] == 2
    assert scraped[("signedws_handshakes_refused_total", (("reason", "other"),))] == 1
    assert scraped[("signedws_handshakes_refused_total", (("reason", "origin"),))] == 1
    assert scraped[("signedws_rejections_total", (("code", "replay"),))] == 1
    assert scraped[("signedws_verify_seconds_count", (("scheme", "mac"),))] == 1
    assert scraped[("signedws_draining", ())] == 1
    assert scraped[("signedws_drain_remaining", ())] == 7
    keyring = (("result", "failed"), ("source", "keyring"))
    assert scraped[("signedws_reloads_total", keyring)] == 1
    assert scraped[("signedws_source_version", (("source", "redis"),))] == 9
    assert scraped[("signedws_source_size", (("source", "keyring"),))] == 3
    assert scraped[("signedws_redis_up", ())] == 0
    assert scraped[("signedws_reloads_total", (("result", "ok"), ("source", "revocations")))] == 5
    assert ("signedws_source_size", (("source", "revocations"),)) not in scraped


def test_two_servers_in_one_process_do_not_collide() -> None:
    """Each PrometheusMetrics has its own registry by default."""
    one, two = PrometheusMetrics(), PrometheusMetrics()
    one.rejected("replay")
    assert ("signedws_rejections_total", (("code", "replay"),)) not in parsed(two)


def test_connection_stats_are_slotted() -> None:
    with pytest.raises(AttributeError):
        ConnectionStats().other = 1  # type: ignore[attr-defined]
