"""What refusing an undecodable frame costs (SPEC.md §2 decoding, §11.7; issue 13 finding 5).

Nested arrays used to be the dearest garbage: a 64 KiB first frame of empty arrays
was decoded in full (65,000 lists), then re-encoded for the canonical check, before
its shape was looked at, ~15x the cost of other garbage. The decoder now reads the
top-level array header, refuses a longer array than any structure has, and decodes
the elements with msgpack's ``max_array_len=0`` (so nothing nests), before any
re-encoding. Here every hostile shape is compared with random bytes of the same
size, in the same run: heap allocated while refusing it, and CPU time (fastest of
several repetitions, with a generous factor). Both comparisons fail on the old
decoder by orders of magnitude.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import figures
import pytest
from adversary import ServerProcess
from corpus import CASES, make_verifier
from helpers import FakeClock, seeded_random
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed

from signedws import Verifier
from signedws.errors import Code, Rejected
from signedws.verifier import ConnectionState

SIZE = 65_536  # the default max_frame: the largest frame a server decodes

#: Generous: the measured ratio is ~1 after the fix and >100 before it.
CPU_FACTOR = 8
REPETITIONS = 15


def _flat_empty_arrays() -> bytes:
    """One array 16 of 65,533 empty arrays: 64 KiB."""
    count = SIZE - 3
    return b"\xdc" + count.to_bytes(2, "big") + b"\x90" * count


def _chains() -> bytes:
    """An array of 65 chains of 1,000 nested one-element arrays (msgpack's depth
    limit is 1,024), padded to 64 KiB with nils in a last element."""
    chain = b"\x91" * 999 + b"\x90"
    body = chain * 65
    return b"\xdc" + (66).to_bytes(2, "big") + body + b"\x92" + b"\xc0" * (SIZE - len(body) - 4)


def _frame_head_then_arrays() -> bytes:
    """A client frame's first bytes (array of 10, version 1, kind mac), then an
    array 16 of empty arrays where the credential belongs."""
    count = SIZE - 6
    return b"\x9a\x01\x01\xdc" + count.to_bytes(2, "big") + b"\x90" * count


def _empty_maps() -> bytes:
    """One array 16 of empty maps (max_map_len=0 lets an empty map decode)."""
    count = SIZE - 3
    return b"\xdc" + count.to_bytes(2, "big") + b"\x80" * count


HOSTILE: dict[str, Callable[[], bytes]] = {
    "flat-empty-arrays": _flat_empty_arrays,
    "chains": _chains,
    "frame-head-then-arrays": _frame_head_then_arrays,
    "empty-maps": _empty_maps,
}


def _random_garbage(size: int) -> bytes:
    """Fixed pseudo-random bytes (SHA-256 in counter mode)."""
    blocks = (hashlib.sha256(i.to_bytes(4, "big")).digest() for i in range(size // 32 + 1))
    return b"".join(blocks)[:size]


def _fresh(verifier: Verifier, clock: FakeClock) -> ConnectionState:
    return verifier.open(now=clock.now, random=seeded_random(b"decoder-cost"))


def _refuse(verifier: Verifier, data: bytes, clock: FakeClock) -> Code:
    """Verify ``data`` as the first frame of a fresh connection; return the code."""
    state = _fresh(verifier, clock)
    try:
        verifier.verify(data, state, now=clock.now)
    except Rejected as exc:
        return exc.code
    raise AssertionError("garbage accepted")


def _peak_bytes(verifier: Verifier, data: bytes, clock: FakeClock) -> int:
    state = _fresh(verifier, clock)
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        with contextlib.suppress(Rejected):
            verifier.verify(data, state, now=clock.now)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak


def _cpu_ns(verifier: Verifier, data: bytes, clock: FakeClock) -> int:
    """The fastest of `REPETITIONS` refusals, thread CPU time in ns."""
    best = None
    for _ in range(REPETITIONS):
        state = _fresh(verifier, clock)
        start = time.thread_time_ns()
        with contextlib.suppress(Rejected):
            verifier.verify(data, state, now=clock.now)
        spent = time.thread_time_ns() - start
        best = spent if best is None else min(best, spent)
    assert best is not None
    return best


@pytest.fixture(scope="module")
def verifier() -> Verifier:
    mac = next(c for c in CASES if c.setup.scheme == "mac" and not c.setup.prelude)
    return make_verifier(mac.setup)


@pytest.mark.parametrize("shape", list(HOSTILE))
def test_nested_garbage_costs_what_random_garbage_costs(shape: str, verifier: Verifier) -> None:
    """Each hostile shape is refused as `malformed`, allocating no more than random
    bytes of its size plus two copies of the input, and costing within a small
    factor of their CPU time."""
    clock = FakeClock()
    hostile = HOSTILE[shape]()
    assert len(hostile) <= verifier.max_frame_size
    garbage = _random_garbage(len(hostile))
    _refuse(verifier, hostile, clock)  # warm up both paths
    _refuse(verifier, garbage, clock)
    # Heap: the old decoder built one list per empty array (~4 MiB here).
    hostile_peak = _peak_bytes(verifier, hostile, clock)
    garbage_peak = _peak_bytes(verifier, garbage, clock)
    # At most two copies of the input beyond what random bytes take (the
    # decoder's buffer holds one); the old decoder took ~65 times the input.
    assert hostile_peak <= 2 * len(hostile) + 2 * garbage_peak, (hostile_peak, garbage_peak)
    # CPU: measured in the same run, interleaved, fastest of several.
    hostile_ns = min(_cpu_ns(verifier, hostile, clock) for _ in range(3))
    garbage_ns = min(_cpu_ns(verifier, garbage, clock) for _ in range(3))
    print(shape, "cpu ns", hostile_ns, garbage_ns)
    # A floor of 20 us: thread_time's granularity must not decide the ratio.
    assert hostile_ns <= CPU_FACTOR * max(garbage_ns, 20_000), (hostile_ns, garbage_ns)
    figures.record(
        f"decoder.{shape}",
        f"{hostile_ns / 1000:.1f} us vs {garbage_ns / 1000:.1f} us",
        f"refusing a 64 KiB first frame of {shape} vs random bytes (CPU, fastest of"
        f" {REPETITIONS})",
        section="dos",
    )
    assert _refuse(verifier, hostile, clock) is Code.MALFORMED


# -- over a socket: what the finding measured ------------------------------------------

SOCKET_CONNECTIONS = 60
SOCKET_ROUNDS = 3
#: Generous: ~1 after the fix (both cost a handshake and a 64 KiB read), ~15 before.
SOCKET_FACTOR = 3.0


def _server_cpu_s(pid: int) -> float:
    """User + system CPU of process ``pid`` so far, seconds (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _first_frames(uri: str, frame: bytes, count: int) -> list[int | None]:
    """``count`` connections, 10 at a time, each sending ``frame`` as its first frame;
    the close codes."""
    codes: list[int | None] = []

    async def one() -> None:
        async with ws_connect(
            uri,
            subprotocols=["signedws.v1"],  # type: ignore[list-item]
            compression=None,
            max_size=None,
        ) as ws:
            await ws.recv()  # the hello
            with contextlib.suppress(ConnectionClosed):
                await ws.send(frame)
            with contextlib.suppress(ConnectionClosed):
                async with asyncio.timeout(30):
                    while True:
                        await ws.recv()
            codes.append(ws.close_code)

    for _ in range(count // 10):
        await asyncio.gather(*(one() for _ in range(10)))
    return codes


def test_nested_first_frames_cost_the_server_what_random_ones_do(
    tmp_path: Path, run: Callable[..., Any]
) -> None:
    """Finding 5 as it was measured: a ``signedws serve`` process refusing 64 KiB first
    frames of nested empty arrays spends, per connection, within a small factor of
    what it spends on 64 KiB of random bytes (handshake, read, refusal, close), in
    the same run (fastest of three rounds each). Each is closed with 4400."""
    hostile = _flat_empty_arrays()
    garbage = _random_garbage(len(hostile))
    spent: dict[str, list[float]] = {"nested": [], "random": []}
    codes: dict[str, set[int | None]] = {"nested": set(), "random": set()}
    with ServerProcess(tmp_path) as server:
        for _ in range(SOCKET_ROUNDS):
            for name, frame in (("nested", hostile), ("random", garbage)):
                before = _server_cpu_s(server.pid)
                codes[name] |= set(
                    run(_first_frames(server.uri, frame, SOCKET_CONNECTIONS), timeout=120)
                )
                time.sleep(0.2)  # let the server finish the closes it counts
                spent[name].append(_server_cpu_s(server.pid) - before)
        server.stop()
    assert codes["nested"] == {4400}, codes
    assert codes["random"] <= {4400, 4413, 1009}, codes
    nested, random_ = min(spent["nested"]), min(spent["random"])
    # A floor of 50 ms: the clock tick (10 ms) must not decide the ratio.
    assert nested <= SOCKET_FACTOR * max(random_, 0.05), spent
    per = 1000 / SOCKET_CONNECTIONS
    figures.record(
        "decoder.socket",
        f"{nested * per:.2f} ms vs {random_ * per:.2f} ms",
        "server CPU per connection refusing a 64 KiB first frame of nested empty arrays vs"
        f" random bytes (signedws serve, fastest of {SOCKET_ROUNDS} rounds of"
        f" {SOCKET_CONNECTIONS})",
        section="dos",
    )
