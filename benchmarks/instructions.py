"""Per-message CPU instructions of e2e.py's servers, counted by callgrind.

    python benchmarks/instructions.py [--servers MODE,MODE,...] [--messages A,B]
                                      [--json PATH]

Frames per second on a shared two-core machine move by tens of percent from
one round to the next; the number of instructions a server executes per
message moves far less. So this says where a server's per-message work goes:
run it beside e2e.py's figures, not instead of them (instructions are not
time: a cache miss costs more than an add). The count still depends on how
the frames arrive (more frames per read, fewer loop turns per message), and
a busy machine changes that: two runs of ``picows-adapter`` gave 70,330 per
message on a quiet machine and 76,464 beside two test suites. Run it on a
quiet machine, and compare servers from one run.

Each server is one of e2e.py's (`e2e.server_for`, the same code as its runs),
started under ``valgrind --tool=callgrind`` (Debian: ``apt-get install
valgrind``) twice: once until it has received ``A`` messages, once until
``B``. Both times one connection of e2e.py's load generator sends the frames
(pre-signed `mac` frames with 128-byte payloads, or the bare payload for the
bare servers) in one bulk write, so the server reads them in full buffers as
it does under load. (instructions at B - instructions at A) / (B - A) is
what one more message costs, without start-up, handshake and exit.

The servers (``--servers``, e2e.py's modes):

- ``picows-floor``: picows plus `Verifier.verify` in ``on_ws_frame``;
- ``picows-handoff``: that floor plus each message handed to a handler task's
  ``async for`` (no session, pump, deduplication or acknowledgement);
- ``picows-adapter``: `signedws.asyncio.picows.serve`;
- ``adapter``: `signedws.asyncio.serve` (websockets);
- also ``picows-baseline``, ``baseline``, ``floor`` and ``core``.

The table gives each server's ratio to ``picows-floor`` when it was measured
(floor instructions over the server's: the share of the floor's rate the
server could reach if instructions were time).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Final

sys.path.insert(0, str(Path(__file__).resolve().parent))

import e2e

DEFAULT_SERVERS: Final = ("picows-floor", "picows-handoff", "picows-adapter", "adapter")
DEFAULT_MESSAGES: Final = (2_000, 10_000)
#: Seconds one server run may take under callgrind (about 50 times slower).
RUN_TIMEOUT: Final = 600.0
COLLECTED: Final = re.compile(r"Collected : (\d+)")


# -- the server, under callgrind ---------------------------------------------------------


def serve(mode: str, port: int, messages: int) -> None:
    """Run e2e.py's ``mode`` server on ``port`` until it has received
    ``messages``, then exit at once (callgrind reports at exit)."""
    e2e.quiet()
    asyncio.run(_serve(mode, port, messages))


async def _serve(mode: str, port: int, messages: int) -> None:
    loop = asyncio.get_running_loop()
    enough = loop.create_future()
    count = 0

    async def count_messages(connection: Any) -> None:
        nonlocal count
        async for _ in connection:
            count += 1
            if count >= messages and not enough.done():
                enough.set_result(None)

    def poll() -> None:  # the servers that count in e2e.CORE_COUNT
        if messages <= e2e.CORE_COUNT and not enough.done():
            enough.set_result(None)
        else:
            loop.call_later(0.2, poll)

    spec = e2e.ServerSpec(mode, port, None)
    async with e2e.server_for(spec, count_messages):
        poll()
        await enough
        os._exit(0)  # no shutdown: its instructions would be noise


# -- the parent --------------------------------------------------------------------------


def _listening(port: int, deadline: float) -> None:
    while True:
        try:
            with socket.create_connection((e2e.HOST, port), timeout=1):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def count(valgrind: str, mode: str, messages: int) -> int:
    """Instructions of one server run that receives ``messages``."""
    port = e2e.free_port()
    server = subprocess.Popen(  # noqa: S603 - valgrind running this script
        [
            valgrind,
            "--tool=callgrind",
            "--callgrind-out-file=/dev/null",
            sys.executable,
            __file__,
            "--serve",
            mode,
            str(port),
            str(messages),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        # The same hashes every run: start-up's dicts and sets then cost the
        # same instructions at A and at B.
        env={**os.environ, "PYTHONHASHSEED": "0"},
    )
    client = pipe = None
    try:
        _listening(port, time.monotonic() + RUN_TIMEOUT)
        load = "baseline" if mode in ("baseline", "picows-baseline") else "mac"
        load_spec = e2e.LoadSpec(load, port, 1, messages, None, exact=True)
        client, pipe = e2e._start(e2e.client_process, load_spec)
        e2e._expect(pipe, "load generator", timeout=RUN_TIMEOUT)
        pipe.send("go")
        _, errors = server.communicate(timeout=RUN_TIMEOUT)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
        if client is not None and pipe is not None:
            e2e._stop([client], [pipe])
    found = COLLECTED.findall(errors)
    if server.returncode != 0 or not found:
        raise RuntimeError(f"{mode}: callgrind gave no count (exit {server.returncode})")
    return int(found[-1])


def measure(valgrind: str, modes: list[str], a: int, b: int) -> list[dict[str, Any]]:
    per_message: dict[str, float] = {}
    for mode in modes:
        at_a, at_b = count(valgrind, mode, a), count(valgrind, mode, b)
        per_message[mode] = (at_b - at_a) / (b - a)
        print(f"{mode:16} {per_message[mode]:>10,.0f} instructions per message", flush=True)
    floor = per_message.get("picows-floor")
    rows: list[dict[str, Any]] = []
    for mode, instructions in per_message.items():
        row: dict[str, Any] = {"server": mode, "instructions_per_message": instructions}
        if floor is not None:
            row["floor_over_server"] = floor / instructions
        rows.append(row)
    return rows


def table(rows: list[dict[str, Any]], a: int, b: int) -> str:
    lines = [
        f"Instructions per message (callgrind; runs of {a:,} and {b:,} messages, "
        "one connection, 128-byte payloads).",
        "",
        "| server | instructions per message | picows-floor / server |",
        "|---|---:|---:|",
    ]
    for row in rows:
        ratio = row.get("floor_over_server")
        shown = f"{ratio:.2f}x" if ratio is not None else ""
        lines.append(f"| `{row['server']}` | {row['instructions_per_message']:,.0f} | {shown} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--servers", default=",".join(DEFAULT_SERVERS), help="e2e.py modes")
    parser.add_argument("--messages", default="{},{}".format(*DEFAULT_MESSAGES), help="A,B")
    parser.add_argument("--json", type=Path, help="write the rows here")
    parser.add_argument("--serve", nargs=3, metavar=("MODE", "PORT", "N"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        mode, port, messages = args.serve
        serve(mode, int(port), int(messages))
        return 0
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        print("instructions.py needs valgrind (Debian: apt-get install valgrind)", file=sys.stderr)
        return 2
    a, b = (int(n) for n in args.messages.split(","))
    if not 0 < a < b:
        parser.error("--messages A,B needs 0 < A < B")
    rows = measure(valgrind, args.servers.split(","), a, b)
    print()
    print(table(rows, a, b))
    if args.json:
        args.json.write_text(json.dumps({"messages": [a, b], "rows": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
