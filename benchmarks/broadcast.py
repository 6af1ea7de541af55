"""Broadcast fan-out: CPU per recipient, today's server frames vs SPEC.md §14.

Usage::

    python benchmarks/broadcast.py [--recipients N] [--rounds R] [--json PATH]

One 128-byte message (`scenario.PAYLOAD`) to N authenticated connections
(10,000 by default), each a real `ServerSession` that accepted one client
frame, for both schemes:

- ``today.<scheme>``: one §7 server frame per recipient (`ServerSession.send_message`):
  one HMAC over the frame (`mac`) or one Ed25519 signature (`ed25519`);
- ``broadcast.<scheme>``: one `Broadcast` (body encoded and hashed once) and
  `Broadcaster.frames` over every session (a long-lived `Broadcaster`, as a
  server keeps one: its per-frame-key HMAC contexts are warm after round 1):
  per recipient a counter, a binding and the frame's encoding; `ed25519` in
  batches of 256 (one signature per 256 recipients, 8-hash paths) and in one
  batch of N;
- ``floor.encode``: the frame's msgpack encoding alone, per recipient (what
  any authenticated frame costs before its tag).

Each round runs every row once, in a shuffled order, timing CPU
(``time.process_time``); a row's figure is its median over rounds divided by
N. Ratios are paired by round (today / broadcast in the same round), median
reported. Nothing here writes to a socket: the figures are the
authentication and encoding cost the pump would pay, not the send.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import msgpack
from scenario import AUDIENCE, NOW, PAYLOAD, SERVER_KEY, Scenario, counter_random, credential

from signedws.broadcast import Broadcaster
from signedws.server import ServerKey, ServerSession
from signedws.signer import Signer


def sessions(scenario: Scenario, scheme: str, count: int, key: ServerKey) -> list[ServerSession]:
    """``count`` connections of ``scheme`` that each accepted one client frame."""
    cred = credential(scheme, now=NOW)  # type: ignore[arg-type]
    made = []
    rand = counter_random(scheme.encode())
    for _ in range(count):
        session = ServerSession(scenario.verifier, now=NOW, server_key=key, random=rand)
        signer = Signer.from_hello(session.hello, cred, audience=AUDIENCE, now=NOW)
        session.receive_message(signer.sign("hi", now=NOW), now=NOW)
        made.append(session)
    return made


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipients", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    n, rounds = args.recipients, args.rounds
    key = ServerKey("srv-1", SERVER_KEY)
    scenario = Scenario()
    t0 = time.perf_counter()
    mac = sessions(scenario, "mac", n, key)
    ed = sessions(scenario, "ed25519", n, key)
    print(f"{n} mac + {n} ed25519 sessions set up in {time.perf_counter() - t0:.1f} s")
    tseq = iter(range(1, 1 << 30))
    encode = msgpack.Packer(use_bin_type=True).pack
    nonce, tag = mac[0].nonce, bytes(32)

    def today(group: list[ServerSession]) -> Callable[[], None]:
        def run() -> None:
            for session in group:
                session.send_message(PAYLOAD, now=NOW)
                session.data_to_send()

        return run

    def new(group: list[ServerSession], batch: int) -> Callable[[], None]:
        fanout = Broadcaster(AUDIENCE, server_key=key, batch_size=batch)

        def run() -> None:
            message = fanout.message("room:general", next(tseq), PAYLOAD, now=NOW)
            frames = fanout.frames(message, group)
            if frames[-1] is None:
                raise SystemExit("a session got no frame")

        return run

    def floor() -> None:
        body = bytes(160)
        for i in range(n):
            encode([1, 6, "tok-1", nonce, i + 1, body, b"", tag])

    rows: dict[str, Callable[[], None]] = {
        "today.mac": today(mac),
        "today.ed25519": today(ed),
        "broadcast.mac": new(mac, 256),
        "broadcast.ed25519 (batch 256)": new(ed, 256),
        f"broadcast.ed25519 (batch {n})": new(ed, n),
        "floor.encode": floor,
    }
    costs: dict[str, list[float]] = {name: [] for name in rows}
    order = list(rows)
    shuffle = random.Random(18)  # noqa: S311 - the order of rows, not a secret
    for _ in range(rounds):
        shuffle.shuffle(order)
        for name in order:
            start = time.process_time()
            rows[name]()
            costs[name].append((time.process_time() - start) / n * 1e6)
    print(f"\nCPU per recipient, one {len(PAYLOAD)}-byte message to {n} connections")
    print(f"(median of {rounds} rounds; {sys.implementation.name} {sys.version.split()[0]})\n")
    print(f"{'row':<36}{'µs/recipient':>14}{'min':>10}")
    for name in rows:
        print(f"{name:<36}{statistics.median(costs[name]):>14.2f}{min(costs[name]):>10.2f}")
    ratios = {
        "today.mac / broadcast.mac": ("today.mac", "broadcast.mac"),
        "today.ed25519 / broadcast.ed25519 (batch 256)": (
            "today.ed25519",
            "broadcast.ed25519 (batch 256)",
        ),
        f"today.ed25519 / broadcast.ed25519 (batch {n})": (
            "today.ed25519",
            f"broadcast.ed25519 (batch {n})",
        ),
        "broadcast.ed25519 (batch 256) / broadcast.mac": (
            "broadcast.ed25519 (batch 256)",
            "broadcast.mac",
        ),
    }
    print("\npaired ratios (median over rounds)")
    result: dict[str, object] = {
        "recipients": n,
        "rounds": rounds,
        "us_per_recipient": {k: statistics.median(v) for k, v in costs.items()},
    }
    paired = {}
    for label, (a, b) in ratios.items():
        value = statistics.median(x / y for x, y in zip(costs[a], costs[b], strict=True))
        paired[label] = value
        print(f"{label:<52}{value:>8.2f}x")
    result["ratios"] = paired
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
