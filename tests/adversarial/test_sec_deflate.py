"""Issue 13, finding 1: permessage-deflate amplification, no credential needed.

Ten connections offer permessage-deflate and write ~2,000 compressed 64 KiB
messages each (~80 wire bytes apiece: ~1.6 MiB on the wire in all, ~1.2 GiB
inflated), "forced on at the client": written compressed whatever the server
answered. Each server runs in a process of its own, so its resident memory
and CPU time are the attack's alone:

- the websockets adapter with its defaults (compression off: the first
  compressed frame is a protocol error, 1002);
- the websockets adapter with compression asked for (``compression=
  "deflate"``): the opt-in's cost is bounded by the parsing slice, the queue
  and the failed connection's discarded input;
- the ASGI adapter under uvicorn, run with README.md's command line.

Frames start with an ed25519 prefix (queued for the verification pool) or a
mac one (verified inline). On the base of issue 13 the server grew by ~850 MiB
per attack; the limit here is 64 MiB of peak growth for the ten connections.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import figures
import pytest
from sec_support import PREFIXES, SecServer, cpu_seconds, deflate_flood

CONNECTIONS = 10
MESSAGES = 2000
#: Peak resident memory the attack may add to the server, MiB (base: ~850).
GROWTH_LIMIT_MIB = 64


@pytest.mark.parametrize("prefix", ["ed25519", "mac"])
@pytest.mark.parametrize("kind", ["websockets", "websockets-deflate", "uvicorn"])
def test_deflate_flood_is_bounded(kind: str, prefix: str, tmp_path: Path, run: Any) -> None:
    """The attack grows the server's peak RSS by less than 64 MiB, and the
    websockets adapter ends every attacking connection (which never answers a
    close) within 5 s, not after a 10 s close timeout (uvicorn's closing
    handshake is its own); the figures go to SECURITY.md."""
    with SecServer(kind, tmp_path / "server.log") as server:
        baseline = figures.peak_rss_kib(server.pid)
        cpu_before = cpu_seconds(server.pid)

        async def main() -> list[tuple[int, bool]]:
            return await asyncio.gather(
                *(
                    deflate_flood(server.port, PREFIXES[prefix], MESSAGES)
                    for _ in range(CONNECTIONS)
                )
            )

        outcomes = run(main(), timeout=120)
        cpu = cpu_seconds(server.pid) - cpu_before
        growth = figures.peak_rss_kib(server.pid) - baseline
        assert server.proc.poll() is None, "the server died"
    wire = sum(sent for sent, _ in outcomes)
    key = f"dos.deflate.{kind}.{prefix}"
    figures.record(
        f"{key}.growth",
        growth / 1024,
        f"deflate flood, {kind}, {prefix} prefix: server peak RSS growth "
        f"({CONNECTIONS} connections, {wire / 2**20:.1f} MiB on the wire; limit "
        f"{GROWTH_LIMIT_MIB} MiB)",
        section="dos",
        unit="MiB",
    )
    figures.record(
        f"{key}.cpu",
        cpu / CONNECTIONS * 1000,
        f"deflate flood, {kind}, {prefix} prefix: server CPU per connection "
        "(clock ticks of 10 ms over the ten)",
        section="dos",
        unit="ms",
    )
    assert growth < GROWTH_LIMIT_MIB * 1024, f"{growth / 1024:.1f} MiB"
    if kind != "uvicorn":  # uvicorn waits its own 10 s for a close it sent (a protocol error)
        assert all(ended for _, ended in outcomes), "a connection outlived the attack by 5 s"
