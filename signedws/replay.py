"""The per-connection replay window (SPEC.md §6.6).

Theory of operation
-------------------
State is two integers: ``highest``, the highest counter accepted (0 before the
first), and ``bitmap``, where bit ``i`` set means counter ``highest - i`` was
accepted (bit 0 is ``highest`` itself). A window of size ``W`` remembers the
counters ``highest - W + 1 .. highest``; anything older is refused.

- ``W == 0`` (the default): strictly increasing. Only ``ctr > highest`` passes;
  ``bitmap`` stays 0.
- ``W > 0``: ``ctr > highest`` passes, and so does ``highest - ctr < W`` with its
  bit clear, once (RFC 4303 Appendix A, RFC 6479).

Invariants: the bitmap never holds more than ``W`` bits, whatever the counters
(a jump past the window resets it rather than shifting it); `check` never
changes anything; `advance` is called only after the
frame authenticated (RFC 4303 A2), so an unauthenticated frame can neither
move the window nor mark a counter.
"""

from __future__ import annotations

from typing import Final

__all__ = ["MAX_COUNTER", "MAX_WINDOW", "advance", "check", "validate_window"]

MAX_WINDOW: Final = 1024
MAX_COUNTER: Final = 2**64 - 1


def validate_window(window: int) -> int:
    """Return ``window`` if it is a valid size (0 to 1024).

    Raises:
        ValueError: otherwise.
    """
    if type(window) is not int or not 0 <= window <= MAX_WINDOW:
        raise ValueError(f"replay window must be an integer from 0 to {MAX_WINDOW}")
    return window


def check(highest: int, bitmap: int, window: int, ctr: int) -> str | None:
    """Say why ``ctr`` is a replay, or None if it may be accepted."""
    if ctr > highest:
        return None
    age = highest - ctr
    if age >= window:
        if window:
            return f"counter {ctr} is {age} behind {highest}, outside the window of {window}"
        return f"counter {ctr} is not above {highest}"
    if bitmap >> age & 1:
        return f"counter {ctr} was already accepted"
    return None


def advance(highest: int, bitmap: int, window: int, ctr: int) -> tuple[int, int]:
    """The state after accepting ``ctr`` (which `check` passed)."""
    if not window:
        return ctr, 0
    if ctr > highest:
        shift = ctr - highest
        if shift >= window:
            # Everything remembered falls out of the window. Shifting instead
            # would allocate shift/8 bytes: a jump of 2**40 is 128 GiB.
            return ctr, 1
        return ctr, ((bitmap << shift) | 1) & ((1 << window) - 1)
    return highest, bitmap | 1 << (highest - ctr)
