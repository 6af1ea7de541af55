"""pytest-benchmark fixtures for the hot-path suite (`test_hotpath.py`).

Run with ``make bench`` (or ``pytest benchmarks/ --benchmark-only``). The suite
lives outside ``tests/`` and is never collected by ``make test``: the numbers
are for reading, not asserting.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from scenario import NOW, Connection, Scenario

from signedws import Message


def next_frame_verifier(conn: Connection, count: int) -> Callable[[], Message]:
    """A function that verifies the next of ``count`` pre-signed frames.

    After the last frame it rewinds the connection's counter and starts over,
    so every call verifies a fresh, valid frame (steady state: warm cache,
    bound connection).
    """
    frames = conn.sign(count)
    verify = conn.verifier.verify
    state = conn.state
    position = [0]

    def verify_next() -> Message:
        i = position[0]
        if i == count:
            state.highest = 0
            i = 0
        position[0] = i + 1
        return verify(frames[i], state, now=NOW)

    verify_next()
    return verify_next


@pytest.fixture(scope="module", params=["libsodium", "openssl"])
def backend_scenario(request: pytest.FixtureRequest) -> Scenario:
    """A server per Ed25519 backend."""
    return Scenario(request.param)


@pytest.fixture(scope="module")
def sodium() -> Scenario:
    """A server with the default (libsodium) backend."""
    return Scenario("libsodium")


@pytest.fixture
def mac_conn(sodium: Scenario) -> Connection:
    """A warmed-up `mac` connection."""
    conn = sodium.connection("mac")
    sodium.warm(conn)
    return conn


@pytest.fixture
def ed_conn(sodium: Scenario) -> Connection:
    """A warmed-up `ed25519` connection (libsodium)."""
    conn = sodium.connection("ed25519")
    sodium.warm(conn)
    return conn
