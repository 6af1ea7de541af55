"""DoS economics over a real socket and in memory (SPEC.md §11.7).

The per-case cost accounting (no MAC or signature for a frame that fails a
cheaper step) is in ``test_corpus_core.py``. Here: the adapter's failure
budget (the first rejection closes the connection, so a flood of bad frames on
one connection costs one check), memory that stays flat while 500 connections
at a time send garbage, and a core that allocates nothing per garbage frame.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import figures
import pytest
from adversary import ServerProcess, close_quietly, honest_client
from corpus import CASES, Conn, make_verifier
from helpers import SERVER_KEY, SERVER_KID, CountingBackend, FakeClock, seeded_random
from test_corpus_socket import logged_codes
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed

from signedws import ServerKey, decode_hello
from signedws.asyncio import ServerConnection, serve
from signedws.errors import Code, Rejected

BAD_TAG = next(c for c in CASES if c.name == "ed25519_signature_flipped")
GARBAGE = next(c for c in CASES if c.name == "reserved_byte_c1")

#: The adapter closes on the first rejection: no second bad frame is checked.
FAILURE_BUDGET = 0


@pytest.mark.parametrize(
    "plan",
    [
        pytest.param(("bad", "bad", "bad", "bad", "bad"), id="five-bad"),
        pytest.param(("bad", "good", "good", "good"), id="bad-then-good"),
        pytest.param(("good", "good", "bad", "good", "bad"), id="good-bad-good"),
    ],
)
def test_first_rejection_closes_within_the_failure_budget(
    plan: tuple[str, ...], run: Callable[..., Any], caplog: pytest.LogCaptureFixture
) -> None:
    """Frames written back to back after a bad one are never verified: the
    connection closes on the first rejection (budget 0), with one log line, and
    nothing after it reaches the handler or the Ed25519 backend."""
    caplog.set_level(logging.WARNING, logger="signedws.server")
    clock = FakeClock()
    verifier = make_verifier(BAD_TAG.setup)
    counting = CountingBackend(verifier.backend)
    verifier.backend = counting
    delivered: list[object] = []

    async def handler(connection: ServerConnection) -> None:
        async for message in connection:
            delivered.append(message.payload)

    async def main() -> int | None:
        async with serve(
            handler,
            "127.0.0.1",
            0,
            verifier=verifier,
            origins=[],
            allow_no_origin=True,
            server_key=ServerKey(SERVER_KID, SERVER_KEY),
            clock=lambda: clock.now,
        ) as server:
            uri = f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}"
            async with ws_connect(uri, subprotocols=["signedws.v1"]) as ws:  # type: ignore[list-item]
                hello = await ws.recv()
                assert isinstance(hello, bytes)
                conn = Conn(decode_hello(hello).nonce, clock, "certificate")
                frames = [
                    conn.frame(f"good {i}") if kind == "good" else BAD_TAG.build(conn)
                    for i, kind in enumerate(plan)
                ]
                for frame in frames:  # written back to back, no waiting
                    with contextlib.suppress(ConnectionClosed):
                        await ws.send(frame)
                with contextlib.suppress(ConnectionClosed):
                    async with asyncio.timeout(10):
                        while True:
                            await ws.recv()
                return ws.close_code

    assert run(main()) == Code.BAD_SIGNATURE.close_code
    first_bad = plan.index("bad")
    assert delivered == [f"good {i}" for i in range(first_bad)]
    assert logged_codes(caplog) == ["bad_signature"]
    # One frame verification per good frame before the bad one, one for the
    # bad one (flipped S >= L is refused by the byte rules: zero), none after.
    assert counting.frame_verifications <= first_bad + 1 + FAILURE_BUDGET
    figures.add(
        "dos.budget_frames",
        len(plan) - first_bad - 1,
        "frames written after a rejection, never verified (failure budget 0)",
        section="dos",
    )


GARBAGE_CONNECTIONS = 500
ROUNDS = 4
#: The server's resident memory may not grow by more than this between the
#: first and the last round of garbage (no per-connection leak), MiB.
GROWTH_LIMIT_MIB = 8
PEAK_LIMIT_MIB = 200


def garbage(number: int, nonce: bytes) -> list[bytes]:
    """Three hostile frames for connection ``number``: the first is refused,
    the other two are never read."""
    kinds = [
        lambda: os.urandom(300),
        lambda: bytes(70_000),
        lambda: GARBAGE.build(Conn(nonce, FakeClock(time.time()), "mac")),
        lambda: b"\x9a" + os.urandom(500),
    ]
    return [kinds[(number + i) % len(kinds)]() for i in range(3)]


def test_memory_stays_flat_while_500_connections_send_garbage(
    tmp_path: Path, run: Callable[..., Any]
) -> None:
    """Four rounds of 500 concurrent connections sending garbage to a
    ``signedws serve`` process: each is closed on its first frame, server RSS
    after the fourth round is within 8 MiB of the first, the peak is bounded,
    and an honest client is served after."""
    rss: list[int] = []
    closed: list[int | None] = []

    async def attack(uri: str, number: int) -> None:
        async with ws_connect(
            uri,
            subprotocols=["signedws.v1"],  # type: ignore[list-item]
            compression=None,
            open_timeout=60,  # 500 at once overflow the listen backlog: SYNs are retried
        ) as ws:
            hello = await ws.recv()
            assert isinstance(hello, bytes)
            for frame in garbage(number, decode_hello(hello).nonce):
                with contextlib.suppress(ConnectionClosed):
                    await ws.send(frame)
            with contextlib.suppress(ConnectionClosed):
                async with asyncio.timeout(30):
                    while True:
                        await ws.recv()
            closed.append(ws.close_code)

    with ServerProcess(tmp_path) as server:

        async def main() -> None:
            for _ in range(ROUNDS):
                await asyncio.gather(*(attack(server.uri, n) for n in range(GARBAGE_CONNECTIONS)))
                await asyncio.sleep(0.5)  # let the server drop the closed connections
                rss.append(figures.rss_kib(server.pid))
            client = await honest_client(server.uri, 1)
            try:
                await client.send("still serving")
                await client.drain()
            finally:
                await close_quietly(client)

        start = time.perf_counter()
        run(main(), timeout=180)
        elapsed = time.perf_counter() - start
        peak = figures.peak_rss_kib(server.pid)
        server.stop()
    assert len(closed) == GARBAGE_CONNECTIONS * ROUNDS
    assert set(closed) <= {1009, 4400}
    assert len(server.rejections()) == GARBAGE_CONNECTIONS * ROUNDS
    growth = rss[-1] - rss[0]
    assert growth < GROWTH_LIMIT_MIB * 1024, rss
    assert peak < PEAK_LIMIT_MIB * 1024, peak
    figures.record(
        "dos.garbage_connections",
        GARBAGE_CONNECTIONS * ROUNDS,
        f"garbage connections ({ROUNDS} rounds of {GARBAGE_CONNECTIONS} at once), "
        "each closed on its first frame",
        section="dos",
    )
    figures.record(
        "dos.garbage_rate",
        GARBAGE_CONNECTIONS * ROUNDS / elapsed,
        "garbage connections refused per second (handshake, hello, close)",
        section="dos",
        unit="conn/s",
    )
    figures.record(
        "dos.rss_first",
        rss[0] / 1024,
        "server RSS after the first round",
        section="dos",
        unit="MiB",
    )
    figures.record(
        "dos.rss_growth",
        growth / 1024,
        f"RSS growth, first to last round (limit {GROWTH_LIMIT_MIB} MiB)",
        section="dos",
        unit="MiB",
    )
    figures.record(
        "dos.rss_peak",
        peak / 1024,
        f"server peak RSS (limit {PEAK_LIMIT_MIB} MiB)",
        section="dos",
        unit="MiB",
    )


def test_core_allocates_nothing_per_garbage_frame() -> None:
    """Verifying 20,000 hostile frames (every cheap corpus case, round robin)
    on one connection leaves the traced heap where it was: no per-frame state,
    no cache entry for anything unauthenticated."""
    cheap = [
        c for c in CASES if c.setup.scheme == "mac" and not c.setup.prelude and not c.setup.advance
    ]
    clock = FakeClock()
    verifier = make_verifier(cheap[0].setup)
    state = verifier.open(now=clock.now, random=seeded_random(b"heap"))
    conn = Conn(state.nonce, clock, "mac")
    frames = [c.build(conn) for c in cheap]
    for data in frames:  # warm up every code path once
        with contextlib.suppress(Rejected):
            verifier.verify(data, state, now=clock.now)
    cache_before = len(verifier._cache)
    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot()
        for i in range(20_000):
            with contextlib.suppress(Rejected):
                verifier.verify(frames[i % len(frames)], state, now=clock.now)
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    growth = sum(s.size_diff for s in after.compare_to(before, "filename"))
    assert growth < 64 * 1024, growth
    assert len(verifier._cache) == cache_before
    assert state.highest == 0
    figures.record(
        "dos.core_garbage",
        20_000,
        "hostile frames verified on one core connection (corpus, round robin)",
        section="dos",
    )
    figures.record(
        "dos.core_heap",
        growth,
        "traced heap growth over those 20,000 frames (limit 64 KiB)",
        section="dos",
        unit="bytes",
    )
