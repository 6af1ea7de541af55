"""Reconnection backoff with full jitter (issue 17 item 4): the delays of the
clients a node drops at once spread uniformly over the whole interval.
Measured from a seeded random source; nothing sleeps."""

from __future__ import annotations

import inspect
import random

import pytest

from signedws.asyncio import connect
from signedws.client import Backoff

DRAWS = 20_000


def ks_uniform(samples: list[float], cap: float) -> float:
    """Kolmogorov-Smirnov distance between ``samples`` and uniform(0, cap)."""
    ordered = sorted(samples)
    n = len(ordered)
    return max(max((i + 1) / n - x / cap, x / cap - i / n) for i, x in enumerate(ordered))


def test_the_default_backoff_is_full_jitter() -> None:
    """connect's default backoff draws the whole interval: jitter 1."""
    default = inspect.signature(connect).parameters["backoff"].default
    assert default == Backoff()
    assert default.jitter == 1.0


@pytest.mark.parametrize("attempt", range(8))
def test_full_jitter_delays_are_uniform_over_the_interval(attempt: int) -> None:
    """For every attempt, the delays lie in (0, cap] and their distribution is
    uniform over it (KS distance below the 0.1 % critical value for 20,000
    draws, 1.95 / sqrt(n) = 0.0138), mean cap / 2."""
    backoff = Backoff()
    cap = min(backoff.maximum, backoff.initial * backoff.factor**attempt)
    source = random.Random(1700 + attempt)  # noqa: S311 - seeded: a reproducible draw
    delays = [backoff.delay(attempt, source.random()) for _ in range(DRAWS)]
    assert all(0 < d <= cap for d in delays)
    assert ks_uniform(delays, cap) < 0.0138
    assert sum(delays) / DRAWS == pytest.approx(cap / 2, rel=0.02)
    assert min(delays) < cap * 0.001
    assert max(delays) > cap * 0.999


def test_a_dropped_node_reconnects_without_a_burst() -> None:
    """200 clients dropped together (one draw each, as each client makes):
    with full jitter no tenth of the first interval gets more than twice its
    share; with the old half jitter, the first half got none of them."""
    clients = 200
    backoff, half = Backoff(), Backoff(jitter=0.5)
    cap = backoff.delay(0, 0.0)
    source = random.Random(17)  # noqa: S311 - seeded: a reproducible draw
    draws = [source.random() for _ in range(clients)]
    full = [backoff.delay(0, r) for r in draws]
    bins = [0] * 10
    for delay in full:
        bins[min(9, int(delay / cap * 10))] += 1
    assert max(bins) <= 2 * clients // 10, bins
    assert min(bins) > 0, bins
    assert sum(1 for r in draws if half.delay(0, r) < cap / 2) == 0
    assert sum(1 for d in full if d < cap / 2) == pytest.approx(clients / 2, abs=25)
