"""When each connection is closed during a graceful drain: the pure schedule.

A node that closes all its connections at once sends all its clients to the
rest of the fleet in one burst. `schedule` spreads ``count`` closes over
``seconds`` with jitter: the span is cut into ``count`` equal slots and each
close falls at a uniformly random point of its own slot (stratified
jitter). Any window of ``w`` seconds then holds at most ``ceil(w * count /
seconds) + 1`` closes, whatever the draws, while no two nodes drain in
lock-step. The caller applies the offsets to its connections in any order.
"""

from __future__ import annotations

import math
import random as _random
from collections.abc import Callable

__all__ = ["max_in_window", "schedule"]


def schedule(
    count: int, seconds: float, *, random: Callable[[], float] = _random.random
) -> list[float]:
    """``count`` offsets from the start of the drain, ascending, in [0, ``seconds``).

    Args:
        count: connections to close.
        seconds: the drain's span (0: all at once).
        random: uniform draws in [0, 1) (seeded in tests).
    """
    if count <= 0:
        return []
    if seconds <= 0:
        return [0.0] * count
    slot = seconds / count
    return [(i + random()) * slot for i in range(count)]


def max_in_window(count: int, seconds: float, window: float) -> int:
    """The most closes of a `schedule` of ``count`` over ``seconds`` that any
    window of ``window`` seconds may hold."""
    if seconds <= 0:
        return count
    return min(count, math.ceil(window * count / seconds) + 1)
