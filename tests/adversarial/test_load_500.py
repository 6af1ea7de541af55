"""Load (issue 6): 500 concurrent clients x 200 frames against a real
``signedws serve`` process on 127.0.0.1, half `mac` and half `ed25519`, with
attackers mixed in.

Every valid frame must reach the handler's record exactly once and in order
per stream, every hostile frame must be refused with its code, and the
server's memory must stay bounded. The figures (frames/s, peak RSS) go to the
report.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import figures
from adversary import ServerProcess, close_quietly, honest_client
from corpus import CASES, Case, Conn
from helpers import FakeClock
from record_store import read_record
from test_corpus_core import STEP
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed

from signedws import decode_hello
from signedws.errors import Code

CLIENTS = 500
FRAMES = 200
#: Hostile frames whose refusal does not depend on the clock (they fail at
#: steps 1-6, before credentials): the server runs on the wall clock.
HOSTILE = [
    c for c in CASES if STEP[c.expected] <= 6 and not c.setup.prelude and not c.setup.advance
]
ATTACKERS = 100
#: Peak resident memory the server may reach under this load, MiB.
PEAK_RSS_LIMIT_MIB = 256


async def honest(uri: str, number: int) -> None:
    """Client ``number`` sends its frames and waits until all are acknowledged."""
    # 600 simultaneous connects overflow the listen backlog: the kernel drops
    # SYNs and clients retry after 1, 3, 7 s. Give the opening handshake time.
    client = await honest_client(uri, number, open_timeout=60)
    try:
        for i in range(FRAMES):
            await client.send(f"{number}:{i}")
            if i % 10 == 9:
                # send() returns without suspending while the socket takes the
                # bytes: yield now and then, as an application would, so
                # that one process's 600 connections all make progress.
                await asyncio.sleep(0)
        await client.drain()
    finally:
        await close_quietly(client)


async def attacker(uri: str, case: Case) -> tuple[Case, int | None]:
    """Read the hello, send ``case``'s hostile frame, return the close code."""
    async with ws_connect(
        uri,
        subprotocols=["signedws.v1"],  # type: ignore[list-item]
        compression=None,
        open_timeout=60,
    ) as ws:
        hello = await ws.recv()
        assert isinstance(hello, bytes)
        conn = Conn(decode_hello(hello).nonce, FakeClock(time.time()), case.setup.scheme)
        with contextlib.suppress(ConnectionClosed):
            await ws.send(case.build(conn))
        with contextlib.suppress(ConnectionClosed):
            async with asyncio.timeout(30):
                while True:
                    await ws.recv()
        return case, ws.close_code


async def wait_for_lines(path: Path, count: int, timeout: float) -> None:
    """Wait until the record has ``count`` lines."""
    async with asyncio.timeout(timeout):
        while len(read_record(path)) < count:
            await asyncio.sleep(0.2)


def test_500_clients_200_frames_each(tmp_path: Path, run: Callable[..., Any]) -> None:
    """500 concurrent clients (mac and ed25519) x 200 frames, 100 attackers
    among them: every frame recorded once, in order per stream; every attack
    refused with its code; server peak RSS bounded."""
    with ServerProcess(tmp_path, first_frame_timeout=30.0) as server:
        idle_kib = figures.rss_kib(server.pid)

        async def main() -> tuple[float, list[tuple[Case, int | None]]]:
            start = time.perf_counter()
            attacks = [attacker(server.uri, HOSTILE[i % len(HOSTILE)]) for i in range(ATTACKERS)]
            outcomes = await asyncio.gather(
                *(honest(server.uri, n) for n in range(CLIENTS)), *attacks
            )
            elapsed = time.perf_counter() - start
            await wait_for_lines(server.record, CLIENTS * FRAMES, 60)
            return elapsed, [o for o in outcomes if o is not None]

        elapsed, refused = run(main(), timeout=240)
        peak_kib = figures.peak_rss_kib(server.pid)
        assert server.stop() == 0
    record = read_record(server.record)
    assert len(record) == CLIENTS * FRAMES
    streams: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for line in record:
        streams[(line["sub"], line["stream"])].append(line)
    assert len(streams) == CLIENTS
    for (subject, _), lines in streams.items():
        number = int(subject.removeprefix("user"))
        assert [x["seq"] for x in lines] == list(range(1, FRAMES + 1))
        assert [x["payload"] for x in lines] == [f"{number}:{i}" for i in range(FRAMES)]
    assert not server.dups.exists() or not server.dups.read_text()
    wrong = [
        (case.name, close_code)
        for case, close_code in refused
        if close_code
        != (1009 if case.expected is Code.FRAME_TOO_LARGE else case.expected.close_code)
    ]
    assert not wrong
    assert sorted(server.rejections()) == sorted(c.expected.id for c, _ in refused)
    assert peak_kib < PEAK_RSS_LIMIT_MIB * 1024, peak_kib
    frames = CLIENTS * FRAMES
    figures.record(
        "load.clients",
        CLIENTS,
        "concurrent honest clients (half mac, half ed25519)",
        section="load",
    )
    figures.record(
        "load.frames", frames, "valid frames, each recorded exactly once, in order", section="load"
    )
    figures.record(
        "load.attackers",
        len(refused),
        "hostile connections mixed in, all refused with their code",
        section="load",
    )
    figures.record(
        "load.rate",
        frames / elapsed,
        "frames/s end to end (one process of clients, one server process, 2 cores)",
        section="load",
        unit="frames/s",
    )
    figures.record(
        "load.seconds", elapsed, "wall time of the load phase", section="load", unit="s"
    )
    figures.record("load.idle_rss", idle_kib / 1024, "server RSS idle", section="load", unit="MiB")
    figures.record(
        "load.peak_rss",
        peak_kib / 1024,
        f"server peak RSS under load (limit {PEAK_RSS_LIMIT_MIB} MiB)",
        section="load",
        unit="MiB",
    )
