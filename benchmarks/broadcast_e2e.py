"""Broadcast over real connections (issue 18): CPU per recipient, and
cross-node latency behind nginx.

Usage::

    python benchmarks/broadcast_e2e.py local [--recipients 10000] [--rounds 7] [--profile]
                                             [--json PATH]
    python benchmarks/broadcast_e2e.py fleet [--messages 200] [--json PATH]

``--json PATH`` writes the printed figures, the parameters, the targets of
issue 18 and the environment to PATH, for ``benchmarks/report.py``.

``local``: a signedws server (the websockets adapter) in this process with N
authenticated connections of one scheme (a client subprocess opens them, each
with its own credential, sends one signed frame, then reads and discards
everything). Rows, CPU of this process (``time.process_time``) for one
128-byte message (`scenario.PAYLOAD`) to all N, per recipient:

- ``bare``: websockets' ``broadcast()`` of the payload to the same N
  websockets connections (unauthenticated; the yardstick of the issue);
- ``topics``: `LocalTopics.publish` (SPEC.md §14 frames: counter, binding,
  encoding, and the write on each connection);
- ``frames``: `Broadcaster.frames` alone (the authentication and encoding,
  no write; its counters are claimed and skipped, which SPEC.md §14.4 allows).

Each round runs the three rows in a shuffled order; between rows the server
waits until every write buffer drained and the client had time to read.
Figures are medians over rounds; the ratio ``topics / bare`` is paired by
round. mac and ed25519 run one after the other (10,000 connections each; the
file-descriptor limit does not hold both at once).

``fleet``: redis-server, three ``signedws serve`` nodes running
examples/chat_handler.py with ``[redis].url``, nginx in front (the fleet
tests' helpers). One member on each node, through nginx; the member on node A
says a line every 20 ms; latency is from its send (the client frame leaves)
to the broadcast's arrival at the members on nodes B and C (one clock: all
three clients are in this process). Median and 90th percentile.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import pstats
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from report import environment, load_average
from scenario import (
    AUDIENCE,
    CLIENT_KEY,
    ED_ISSUER_KEY,
    ED_KID,
    HMAC_KID,
    HMAC_SECRET,
    ISSUER,
    PAYLOAD,
    SERVER_KEY,
    Scenario,
)

from signedws import Ed25519Credential, Issuer, Signer
from signedws.broadcast import Broadcaster
from signedws.server import ServerKey

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
#: Issue 18's targets: CPU per recipient (µs), publish over bare websockets
#: ``broadcast()``, and the cross-node median latency (ms).
PER_RECIPIENT_US = 2.0
VS_BARE = 3.0
FLEET_MEDIAN_MS = 20.0


def _write_json(path: Path, result: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {path}")


# -- the client subprocess ---------------------------------------------------------------


def _credential(scheme: str, i: int, now: float) -> Any:
    if scheme == "mac":
        return Issuer(ISSUER, HMAC_KID, HMAC_SECRET).issue_token(
            subject=f"u{i}", now=now, lifetime=3600, credential_id=f"tok-{i}"
        )
    certificate = Issuer(ISSUER, ED_KID, ED_ISSUER_KEY).issue_certificate(
        CLIENT_KEY.public_key(), subject=f"u{i}", now=now, lifetime=3600, credential_id=f"c-{i}"
    )
    return Ed25519Credential(certificate, CLIENT_KEY)


async def _client(uri: str, scheme: str, count: int) -> None:
    """Open ``count`` connections, one signed frame each, then read and
    discard until stdin closes."""
    from websockets.asyncio.client import connect  # noqa: PLC0415

    server_keys = {"srv-1": SERVER_KEY.public_key()}
    now = time.time()
    sockets = []
    readers = []

    async def drain(ws: Any) -> None:
        try:
            async for _ in ws:
                pass
        except Exception:
            return

    async def one(i: int) -> None:
        for attempt in range(5):
            try:
                await opened(i)
            except (OSError, TimeoutError) as exc:
                print(f"connection {i}: {exc!r} (attempt {attempt + 1})", file=sys.stderr)
                await asyncio.sleep(0.5)
            else:
                return
        raise SystemExit(f"connection {i} failed")

    async def opened(i: int) -> None:
        ws = await connect(
            uri,
            subprotocols=["signedws.v1"],  # type: ignore[list-item]
            compression=None,
            max_queue=None,
            open_timeout=60,
        )
        hello = await ws.recv()
        assert isinstance(hello, bytes)
        signer = Signer.from_hello(
            hello,
            _credential(scheme, i, now),
            audience=AUDIENCE,
            now=time.time(),
            server_keys=server_keys,
        )
        await ws.send(signer.sign("hi", now=time.time()))
        sockets.append(ws)
        readers.append(asyncio.create_task(drain(ws)))

    for start in range(0, count, 100):
        await asyncio.gather(*(one(i) for i in range(start, min(count, start + 100))))
    print("connected", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    for task in readers:
        task.cancel()


# -- local: N connections in this process -----------------------------------------------------


async def _local(
    scheme: str, count: int, rounds: int, profile: bool = False
) -> dict[str, list[float]]:
    from websockets.asyncio.server import ServerConnection as WebSocket  # noqa: PLC0415
    from websockets.asyncio.server import broadcast  # noqa: PLC0415

    from signedws.asyncio import ServerConnection, serve  # noqa: PLC0415
    from signedws.asyncio.topics import LocalTopics  # noqa: PLC0415

    key = ServerKey("srv-1", SERVER_KEY)
    topics = LocalTopics(AUDIENCE, server_key=key, max_buffer=1 << 30)
    members: list[ServerConnection] = []
    all_in = asyncio.Event()

    def websocket_of(connection: ServerConnection) -> WebSocket:
        """websockets' own connection under the adapter's: ``transport.websocket``."""
        websocket = getattr(connection.transport, "websocket", None)
        assert isinstance(websocket, WebSocket), websocket
        return websocket

    async def handler(connection: ServerConnection) -> None:
        async for _ in connection:
            topics.subscribe(connection, "bench")
            members.append(connection)
            if len(members) == count:
                all_in.set()
        topics.unsubscribe_all(connection)

    async with serve(
        handler,
        "127.0.0.1",
        0,
        verifier=Scenario().verifier,
        origins=[],
        allow_no_origin=True,
        server_key=key,
        max_connections=count + 100,
        max_connections_per_principal=None,
        first_frame_timeout=None,
        idle_timeout=None,
        backlog=1024,
        compression=None,
    ) as server:
        port = server.sockets[0].getsockname()[1]
        client = subprocess.Popen(  # noqa: S603 - this script
            [sys.executable, __file__, "client", f"ws://127.0.0.1:{port}", scheme, str(count)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=HERE,
        )
        try:
            async with asyncio.timeout(900):
                while not all_in.is_set():
                    if client.poll() is not None:
                        raise SystemExit(f"the client exited ({client.returncode})")
                    await asyncio.sleep(0.2)
            print(f"  {count} {scheme} connections in", flush=True)
            websockets = [websocket_of(m) for m in members]
            fanout = Broadcaster(AUDIENCE, server_key=key)
            tseq = iter(range(1, 1 << 30))

            async def bare() -> None:
                broadcast(websockets, PAYLOAD)

            async def publish() -> None:
                if profile:
                    profiler.enable()
                published = await topics.publish("bench", PAYLOAD)
                if profile:
                    profiler.disable()
                assert published.delivery is not None
                assert len(published.delivery.sent) == count, published.delivery

            async def frames() -> None:
                message = fanout.message("bench-frames", next(tseq), PAYLOAD, now=time.time())
                made = fanout.frames(message, [m.session for m in members])
                assert made[-1] is not None

            profiler = cProfile.Profile()
            rows = {"bare": bare, "topics": publish, "frames": frames}
            costs: dict[str, list[float]] = {name: [] for name in rows}
            order = list(rows)
            shuffle = random.Random(18)  # noqa: S311 - row order, not a secret
            for _ in range(rounds):
                shuffle.shuffle(order)
                for name in order:
                    start = time.process_time()
                    await rows[name]()
                    costs[name].append((time.process_time() - start) / count * 1e6)
                    async with asyncio.timeout(60):
                        while any(m.buffered for m in members):
                            await asyncio.sleep(0.05)
                    await asyncio.sleep(0.3)
            if profile:
                print(f"  profile of publish ({scheme}, {rounds} rounds), by own time:")
                pstats.Stats(profiler).sort_stats("tottime").print_stats(12)
            return costs
        finally:
            assert client.stdin is not None
            client.stdin.close()
            try:
                client.wait(30)
            except subprocess.TimeoutExpired:
                client.kill()
                client.wait()


def local(args: argparse.Namespace) -> None:
    print(f"CPU per recipient, one {len(PAYLOAD)}-byte message to {args.recipients} connections")
    print(f"(median of {args.rounds} rounds; {sys.implementation.name} {sys.version.split()[0]})")
    env = environment()
    before = load_average()
    schemes: dict[str, dict[str, Any]] = {}
    targets: list[dict[str, Any]] = []
    for scheme in ("mac", "ed25519"):
        costs = asyncio.run(_local(scheme, args.recipients, args.rounds, args.profile))
        rows: dict[str, Any] = {}
        for name, values in costs.items():
            median = statistics.median(values)
            rows[name] = {"median_us": median, "min_us": min(values), "rounds_us": values}
            print(f"  {scheme:<8}{name:<8}{median:>8.2f} µs  (min {min(values):.2f})")
        ratio = statistics.median(
            t / b for t, b in zip(costs["topics"], costs["bare"], strict=True)
        )
        print(f"  {scheme:<8}topics / bare (paired median) {ratio:.2f}x")
        schemes[scheme] = {"rows": rows, "topics_over_bare": ratio}
        for name, what in (("frames", "frames only"), ("topics", "publish")):
            value = rows[name]["median_us"]
            targets.append(
                {
                    "target": f"{scheme} {what}, CPU per recipient (µs)",
                    "op": "<=",
                    "bound": PER_RECIPIENT_US,
                    "value": value,
                    "met": value <= PER_RECIPIENT_US,
                }
            )
        targets.append(
            {
                "target": f"{scheme} publish / bare websockets broadcast() (paired median)",
                "op": "<=",
                "bound": VS_BARE,
                "value": ratio,
                "met": ratio <= VS_BARE,
            }
        )
    if args.json:
        _write_json(
            args.json,
            {
                "environment": env,
                "load_average": {"before": before, "after": load_average()},
                "recipients": args.recipients,
                "rounds": args.rounds,
                "payload_bytes": len(PAYLOAD),
                "profiled": args.profile,
                "schemes": schemes,
                "targets": targets,
            },
        )


# -- fleet: A -> B, C behind nginx ---------------------------------------------------------------


async def _fleet_run(uri: str, secret: Any, kid: str, messages: int) -> dict[str, list[float]]:
    from websockets.asyncio.client import connect  # noqa: PLC0415

    async def member(name: str) -> tuple[Any, Signer]:
        credential = Issuer("auth", kid, secret).issue_token(
            subject=name, now=time.time(), lifetime=600, scopes=["chat"]
        )
        ws = await connect(uri, subprotocols=["signedws.v1"])  # type: ignore[list-item]
        hello = await ws.recv()
        assert isinstance(hello, bytes)
        fleet_audience = "wss://fleet.signedws.test/ws"
        signer = Signer.from_hello(hello, credential, audience=fleet_audience, now=time.time())
        await ws.send(signer.sign("joins", now=time.time()))
        return ws, signer

    by_node: dict[bytes, tuple[Any, Signer]] = {}
    for i in range(30):
        ws, signer = await member(f"m{i}")
        node = signer.hello.nonce[1:9]
        if node in by_node:
            await ws.close()
            continue
        by_node[node] = ws, signer
        if len(by_node) == 3:
            break
    assert len(by_node) == 3, "did not reach three nodes"
    (a_ws, a_signer), *others = by_node.values()
    await asyncio.sleep(0.5)  # every join handled (subscribed)
    sent: dict[str, float] = {}
    by_receiver: dict[str, list[float]] = {"B": [], "C": []}

    async def listen(ws: Any, signer: Signer, latencies: list[float]) -> None:
        got = 0
        while got < messages:
            message = signer.verify_any(await ws.recv())
            payload = message.payload
            if hasattr(message, "tseq") and isinstance(payload, str) and ": line " in payload:
                latencies.append((time.monotonic() - sent[payload.split(": ", 1)[1]]) * 1000)
                got += 1

    async def drain_a() -> None:
        while True:
            a_signer.verify_any(await a_ws.recv())

    listeners = [
        asyncio.create_task(listen(ws, s, by_receiver[label]))
        for (ws, s), label in zip(others, by_receiver, strict=True)
    ]
    drainer = asyncio.create_task(drain_a())
    for k in range(messages):
        line = f"line {k}"
        sent[line] = time.monotonic()
        await a_ws.send(a_signer.sign(line, now=time.time()))
        await asyncio.sleep(0.02)
    async with asyncio.timeout(30):
        await asyncio.gather(*listeners)
    drainer.cancel()
    for ws, _ in by_node.values():
        await ws.close()
    return by_receiver


def fleet(args: argparse.Namespace) -> None:
    sys.path.insert(0, str(REPO / "tests" / "fleet"))
    from fleet_support import (  # noqa: PLC0415
        FleetKeys,
        Nginx,
        Node,
        RedisServer,
        find_tool,
        nodes_running,
    )

    env = environment()
    before = load_average()
    base = Path(tempfile.mkdtemp(prefix="signedws-bcast-"))
    try:
        keys = FleetKeys.create(base / "keys")
        for name in ("record", "redis", "nginx"):
            (base / name).mkdir()
        shutil.copy(REPO / "examples" / "chat_handler.py", keys.directory / "chat_handler.py")
        redis = RedisServer(find_tool("redis-server"), base / "redis").start()
        try:
            config = keys.config(
                "chat.toml",
                server={"handler": "chat_handler:handler"},
                redis={"url": redis.url},
            )
            nodes = [Node(config, base / f"node-{i}.log", base / "record") for i in range(3)]
            with nodes_running(*nodes):
                nginx = Nginx(find_tool("nginx"), base / "nginx", [n.port for n in nodes])
                nginx.start()
                try:
                    by_receiver = asyncio.run(
                        _fleet_run(nginx.uri, keys.secret, keys.kid, args.messages)
                    )
                finally:
                    nginx.stop()
        finally:
            redis.stop()
    finally:
        shutil.rmtree(base, ignore_errors=True)
    after = load_average()

    def summary(values: list[float]) -> dict[str, Any]:
        values = sorted(values)
        return {
            "receipts": len(values),
            "median_ms": statistics.median(values),
            "p90_ms": values[int(len(values) * 0.9)],
            "max_ms": values[-1],
        }

    both = summary([x for values in by_receiver.values() for x in values])
    print(
        f"cross-node A -> B, C behind nginx: {both['receipts']} receipts, median "
        f"{both['median_ms']:.2f} ms, p90 {both['p90_ms']:.2f} ms, max {both['max_ms']:.2f} ms"
    )
    per_node = {label: summary(values) for label, values in by_receiver.items()}
    for label, s in per_node.items():
        print(f"  to node {label}: median {s['median_ms']:.2f} ms, p90 {s['p90_ms']:.2f} ms")
    if args.json:
        _write_json(
            args.json,
            {
                "environment": env,
                "load_average": {"before": before, "after": after},
                "messages": args.messages,
                "interval_ms": 20,
                "all": both,
                "nodes": per_node,
                "targets": [
                    {
                        "target": "cross-node median latency, A -> B and C (ms)",
                        "op": "<=",
                        "bound": FLEET_MEDIAN_MS,
                        "value": both["median_ms"],
                        "met": both["median_ms"] <= FLEET_MEDIAN_MS,
                    }
                ],
            },
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="mode", required=True)
    one = sub.add_parser("local")
    one.add_argument("--recipients", type=int, default=10_000)
    one.add_argument("--rounds", type=int, default=7)
    one.add_argument("--json", type=Path, help="write the figures to this file")
    one.add_argument(
        "--profile",
        action="store_true",
        help="cProfile the publish row (its figures then include the profiler)",
    )
    two = sub.add_parser("fleet")
    two.add_argument("--messages", type=int, default=200)
    two.add_argument("--json", type=Path, help="write the figures to this file")
    client = sub.add_parser("client")
    client.add_argument("uri")
    client.add_argument("scheme")
    client.add_argument("count", type=int)
    args = parser.parse_args()
    if args.mode == "client":
        asyncio.run(_client(args.uri, args.scheme, args.count))
    elif args.mode == "local":
        local(args)
    else:
        os.environ.setdefault("PYTHONPATH", str(REPO))
        fleet(args)


if __name__ == "__main__":
    main()
