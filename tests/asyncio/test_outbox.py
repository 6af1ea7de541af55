"""Tests for the transport-free client pieces: the outbox and the reconnect policy."""

from __future__ import annotations

import pytest

from signedws import Code, UsageError
from signedws.asyncio._outbox import Outbox
from signedws.asyncio._reconnect import (
    Action,
    Backoff,
    close_action,
    codes_for_close,
    status_action,
)


def test_outbox_numbers_messages_and_drops_acknowledged() -> None:
    """Messages get consecutive seq; an ack drops those sent under counters <= ack."""
    outbox = Outbox()
    entries = [outbox.add(f"m{i}") for i in range(1, 5)]
    assert [e.seq for e in entries] == [1, 2, 3, 4]
    for counter, entry in enumerate(entries[:3], start=2):
        entry.counter = counter
    assert outbox.acknowledge(1) == 0
    assert outbox.acknowledge(3) == 2
    assert [e.seq for e in outbox] == [3, 4]
    assert outbox.acknowledge(100) == 1  # entry 4 was never sent: it stays
    assert [e.seq for e in outbox] == [4]


def test_outbox_restart_resets_counters() -> None:
    """A new connection forgets old counters: an ack there cannot drop old sends."""
    outbox = Outbox(seq=10)
    entry = outbox.add(b"x")
    entry.counter = 5
    assert outbox.restart() == [entry]
    assert entry.counter == 0
    assert outbox.acknowledge(5) == 0
    assert entry.seq == 11


def test_outbox_discard_and_remove() -> None:
    """discard gives the newest seq back; remove keeps seq used; misuse raises."""
    outbox = Outbox()
    first = outbox.add("a")
    second = outbox.add("b")
    with pytest.raises(UsageError):
        outbox.discard(first)
    outbox.discard(second)
    assert outbox.seq == 1
    outbox.remove(first)
    assert len(outbox) == 0
    assert outbox.seq == 1
    with pytest.raises(UsageError):
        outbox.remove(first)
    with pytest.raises(UsageError):
        outbox.add(None)
    assert repr(outbox) == "Outbox(pending=0, seq=1)"


@pytest.mark.parametrize(
    ("close_code", "action"),
    [
        (None, Action.RECONNECT),
        (1006, Action.RECONNECT),
        (1001, Action.RECONNECT),
        (1011, Action.RECONNECT),
        (4408, Action.RECONNECT),
        (4410, Action.RECONNECT),
        (4503, Action.RECONNECT),
        (4419, Action.REFRESH),
        (1000, Action.FINISH),
        (4400, Action.FAIL),
        (4401, Action.FAIL),
        (4403, Action.FAIL),
        (4409, Action.FAIL),
        (4413, Action.FAIL),
        (4425, Action.FAIL),
        (4429, Action.FAIL),
        (1009, Action.FAIL),
        (1002, Action.FAIL),
    ],
)
def test_close_action(close_code: int | None, action: Action) -> None:
    """Each close code maps to what the client does next."""
    assert close_action(close_code) is action


def test_every_rejection_close_code_has_an_action() -> None:
    """Every close code of SPEC.md §9 is classified: only 4408/4410/4503 reconnect."""
    for code in Code:
        action = close_action(code.close_code)
        if code.close_code in (4408, 4410, 4503):
            assert action is Action.RECONNECT
        elif code.close_code == 4419:
            assert action is Action.REFRESH
        else:
            assert action is Action.FAIL


@pytest.mark.parametrize(
    ("status", "action"),
    [(503, Action.RECONNECT), (500, Action.RECONNECT), (429, Action.RECONNECT)]
    + [(s, Action.FAIL) for s in (400, 401, 403, 404)],
)
def test_status_action(status: int, action: Action) -> None:
    """Refused handshakes: 5xx and 429 are retried, others are not."""
    assert status_action(status) is action


def test_codes_for_close() -> None:
    """A close code and reason name the rejection codes they may stand for."""
    assert codes_for_close(4403, "forbidden") == (Code.CREDENTIAL_REVOKED,)
    assert set(codes_for_close(4419, None)) == {
        Code.CREDENTIAL_EXPIRED,
        Code.CREDENTIAL_NOT_YET_VALID,
    }
    assert Code.BAD_TAG in codes_for_close(4401, "unauthorized")
    assert codes_for_close(1000, "") == ()


def test_backoff_delays() -> None:
    """Delays grow by factor up to maximum; jitter shortens them by up to its share."""
    backoff = Backoff(initial=1.0, maximum=8.0, factor=2.0, jitter=0.5)
    assert [backoff.delay(n, 0.0) for n in range(5)] == [1.0, 2.0, 4.0, 8.0, 8.0]
    assert backoff.delay(1, 0.999999) == pytest.approx(1.0, abs=1e-5)
    assert backoff.delay(10_000, 0.0) == 8.0
    for kwargs in ({"initial": -1}, {"factor": 0.5}, {"jitter": 2}, {"maximum": 0.01}):
        with pytest.raises(UsageError):
            Backoff(**kwargs)  # type: ignore[arg-type]
