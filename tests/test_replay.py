"""Tests for signedws.replay: the per-connection replay window (SPEC.md §6.6)."""

from __future__ import annotations

import pytest

from signedws.replay import MAX_COUNTER, MAX_WINDOW, advance, check, validate_window


def run(window: int, counters: list[int]) -> list[bool]:
    """Feed ``counters`` through check/advance; say which were accepted."""
    highest = bitmap = 0
    accepted = []
    for ctr in counters:
        ok = check(highest, bitmap, window, ctr) is None
        if ok:
            highest, bitmap = advance(highest, bitmap, window, ctr)
        accepted.append(ok)
    return accepted


# validate_window


@pytest.mark.parametrize("window", [0, 1, 64, 1024])
def test_validate_window_accepts_0_to_1024(window: int) -> None:
    """Every size from 0 to MAX_WINDOW is returned unchanged."""
    assert validate_window(window) == window
    assert MAX_WINDOW == 1024


@pytest.mark.parametrize("window", [-1, 1025, 2**64, True, 8.0, "8", None])
def test_validate_window_refuses_other_values(window: object) -> None:
    """Out-of-range sizes and non-integers (bool included) raise ValueError."""
    with pytest.raises(ValueError, match="replay window"):
        validate_window(window)  # type: ignore[arg-type]


# W = 0: strictly increasing


def test_window_0_accepts_only_increasing_counters() -> None:
    """With W=0 a counter passes only if it is above every earlier one; gaps are fine."""
    assert run(0, [1, 2, 5, 5, 4, 3, 6, 100, 99, 101]) == [
        True,
        True,
        True,
        False,
        False,
        False,
        True,
        True,
        False,
        True,
    ]


def test_window_0_advance_keeps_no_bitmap() -> None:
    """With W=0, advance moves highest to the counter and the bitmap stays 0."""
    assert advance(5, 0, 0, 9) == (9, 0)


def test_window_0_check_explains_the_refusal() -> None:
    """The refusal names the counter and the highest accepted one."""
    assert check(7, 0, 0, 7) == "counter 7 is not above 7"
    assert check(7, 0, 0, 3) == "counter 3 is not above 7"
    assert check(7, 0, 0, 8) is None


# W = 1


def test_window_1_behaves_like_strictly_increasing() -> None:
    """With W=1 only the highest counter itself is remembered: same answers as W=0."""
    counters = [1, 3, 2, 3, 4, 4, 10, 9]
    assert run(1, counters) == run(0, counters)


def test_window_1_refuses_highest_as_already_accepted() -> None:
    """With W=1, the highest counter is refused as a duplicate, one below as too old."""
    highest, bitmap = advance(0, 0, 1, 5)
    assert (highest, bitmap) == (5, 1)
    assert check(highest, bitmap, 1, 5) == "counter 5 was already accepted"
    assert check(highest, bitmap, 1, 4) == "counter 4 is 1 behind 5, outside the window of 1"


# W > 0: reordering inside the window


@pytest.mark.parametrize("window", [8, 64, 1024])
def test_window_accepts_each_counter_inside_it_once(window: int) -> None:
    """Counters up to W-1 below the highest pass once each; a second time they are replays."""
    top = window + 10
    order = [top, *range(top - 1, top - window, -1)]
    assert run(window, order) == [True] * window
    assert run(window, order + order) == [True] * window + [False] * window


@pytest.mark.parametrize("window", [1, 8, 64, 1024])
def test_window_refuses_counters_w_or_more_behind(window: int) -> None:
    """A counter exactly W below the highest is outside the window."""
    top = window + 10
    assert run(window, [top, top - window]) == [True, False]
    assert run(window, [top, top - window + 1]) == [True, window > 1]


@pytest.mark.parametrize("window", [8, 64, 1024])
def test_window_advance_shifts_and_masks_the_bitmap(window: int) -> None:
    """Moving up shifts the bitmap by the jump and keeps only W bits."""
    highest, bitmap = advance(0, 0, window, 1)
    assert (highest, bitmap) == (1, 0b1)
    highest, bitmap = advance(highest, bitmap, window, 3)
    assert (highest, bitmap) == (3, 0b101)
    highest, bitmap = advance(highest, bitmap, window, 2)
    assert (highest, bitmap) == (3, 0b111)
    highest, bitmap = advance(highest, bitmap, window, 3 + window - 1)
    assert highest == 2 + window
    assert bitmap == (0b111 << (window - 1) | 1) & ((1 << window) - 1)
    assert bitmap < 1 << window
    # A jump of W or more forgets everything below.
    assert advance(highest, bitmap, window, highest + window) == (highest + window, 1)


def test_check_never_changes_anything() -> None:
    """check is a pure function of its arguments: same answer however often it is asked."""
    state = (10, 0b1011, 8)
    answers = [check(*state, ctr) for ctr in range(0, 14)]
    assert answers == [check(*state, ctr) for ctr in range(0, 14)]
    assert [a is None for a in answers] == [
        False,  # 0: 10 behind
        False,  # 1
        False,  # 2: 8 behind, outside W=8
        True,  # 3: 7 behind, bit 7 clear
        True,  # 4
        True,  # 5
        True,  # 6
        False,  # 7: bit 3 set
        True,  # 8: bit 2 clear
        False,  # 9: bit 1 set
        False,  # 10: bit 0 set
        True,  # 11
        True,  # 12
        True,  # 13
    ]


# The top of the counter space (SPEC.md §6.4 "Counter wrap")


@pytest.mark.parametrize("window", [0, 1, 8, 1024])
def test_highest_counter_is_accepted_then_nothing_passes(window: int) -> None:
    """Once 2**64-1 is accepted, no counter can pass (the client must reconnect)."""
    highest, bitmap = advance(0, 0, window, MAX_COUNTER)
    assert highest == MAX_COUNTER
    assert check(highest, bitmap, window, MAX_COUNTER) is not None
    assert check(highest, bitmap, window, MAX_COUNTER - window) is not None


@pytest.mark.parametrize("window", [1, 8, 1024])
def test_a_jump_to_the_highest_counter_keeps_only_the_new_bit(window: int) -> None:
    """Gaps are allowed (SPEC.md §6.6): jumping from 1 to 2**64-1 leaves bitmap 1."""
    # Shifting the old bitmap by the whole jump would build a 2**64-bit integer.
    assert advance(1, 1, window, MAX_COUNTER) == (MAX_COUNTER, 1)
