"""Fleet benchmark: aggregate throughput of ``signedws serve --workers N``.

Usage::

    python benchmarks/fleet.py [--workers 1 2] [--frames 8000] [--repeat 5] [--no-write]

For each worker count, one ``signedws serve --workers N`` (worker processes
sharing a port with SO_REUSEPORT) runs a handler that consumes every verified
message (`sink`); the servers run side by side and the runs alternate between
them, so background load weighs on each alike. Two load-generator processes
each open 8 connections, as many to each worker (the kernel spreads
connections by a hash, so extra connections are opened and dropped until the
split is even), pre-sign ``--frames`` `mac` frames per connection (128-byte
payloads), start at one agreed instant, send them all and wait until the
server acknowledged the last frame of every connection: an acknowledgement
means the handler is done with the frame (SPEC.md §7.3). Aggregate throughput
is every frame of every connection over the time from the first start to the
last acknowledgement. Compression is off (``compression=None``), so the
numbers are verification and transport, not zlib.

Everything runs on this machine: on 2 cores, two workers and two load
generators share the CPUs, so the 2-worker figure is what the whole box does,
not what two dedicated cores would. Server CPU per message (user + system time
of the workers, from ``/proc``) is reported beside it, and so is the yardstick
of the machine's own parallelism: pure-CPU work in 2 processes over 1 (on a
VM, two vCPUs may share a physical core).

With ``redis-server`` installed, it also measures revocation propagation: a
credential revoked in Redis (`RedisRevocationStore`, the code behind
``signedws revoke --redis``), timed from the Redis commit to each worker's
refusal of the next frame on an open connection (probed every 5 ms).

The results go to ``benchmarks/RESULTS.md`` between ``<!-- fleet:begin -->``
and ``<!-- fleet:end -->`` (the rest of that file belongs to
``benchmarks/report.py``); ``--no-write`` only prints them.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import hashlib
import json
import multiprocessing
import os
import platform
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any, Final

from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from signedws import HMACKey, Issuer, MACCredential, Signer, key_to_jwk, save_key
from signedws.keys import b64url_decode, b64url_encode

HERE: Final = Path(__file__).resolve().parent
ROOT: Final = HERE.parent
RESULTS_MD: Final = HERE / "RESULTS.md"
BEGIN: Final = "<!-- fleet:begin -->"
END: Final = "<!-- fleet:end -->"
AUDIENCE: Final = "wss://fleet.bench.test/ws"
ISSUER: Final = "bench"
PAYLOAD: Final = "x" * 128
CLIENTS: Final = 2
CONNECTIONS: Final = 8  # per load generator
START_DELAY: Final = 3.0  # seconds for the load generators to connect and pre-sign
RUN_TIMEOUT: Final = 120.0
SUBPROTOCOL: Final = Subprotocol("signedws.v1")


async def sink(connection: Any) -> None:
    """The benchmark's handler: take every verified message, do nothing."""
    async for _ in connection:
        pass


# -- the load generator (a child process) -----------------------------------------------


async def _load(spec: dict[str, Any]) -> dict[str, Any]:
    credential = MACCredential(
        b64url_decode(spec["token"]), HMACKey(b64url_decode(spec["frame_key"]))
    )
    per_node = spec["connections"] // spec["workers"]
    opened: list[tuple[Any, Any]] = []
    spread: Counter[bytes] = Counter()
    for _ in range(spec["connections"] * 30):  # bounded: the hash may be lopsided
        ws = await ws_connect(spec["uri"], subprotocols=[SUBPROTOCOL], compression=None)
        hello = await ws.recv()
        assert isinstance(hello, bytes)
        signer = Signer.from_hello(hello, credential, audience=AUDIENCE, now=time.time())
        node = signer.hello.nonce[1:9]
        if spread[node] >= per_node:
            await ws.close()
            continue
        spread[node] += 1
        opened.append((ws, signer))
        if len(opened) == spec["connections"]:
            break
    assert len(opened) == spec["connections"], spread
    frames = spec["frames"]
    batches = [
        [signer.sign(PAYLOAD, now=time.time()) for _ in range(frames)] for _, signer in opened
    ]

    async def one(ws: Any, signer: Any, batch: list[bytes]) -> None:
        for frame in batch:
            await ws.send(frame)
        while True:  # until the last frame is acknowledged (delivered)
            data = await ws.recv()
            if signer.verify(data).ack >= frames:
                return

    await asyncio.sleep(max(0.0, spec["start_at"] - time.time()))
    cpu = resource.getrusage(resource.RUSAGE_SELF)
    start = time.time()
    await asyncio.gather(*(one(ws, s, b) for (ws, s), b in zip(opened, batches, strict=True)))
    end = time.time()
    after = resource.getrusage(resource.RUSAGE_SELF)
    for ws, _ in opened:
        await ws.close()
    return {
        "messages": frames * len(opened),
        "start": start,
        "end": end,
        "late": start - spec["start_at"],
        "cpu": (after.ru_utime + after.ru_stime) - (cpu.ru_utime + cpu.ru_stime),
        "spread": sorted(spread.values()),
    }


def client_main(spec_path: str) -> int:
    spec = json.loads(Path(spec_path).read_text())
    result = asyncio.run(asyncio.wait_for(_load(spec), RUN_TIMEOUT))
    print(json.dumps(result), flush=True)
    return 0


# -- the server ----------------------------------------------------------------------


def _setup(directory: Path, *, redis_url: str | None = None) -> tuple[Path, Any]:
    """Keys, a keyring and a serve configuration in ``directory``; the issuer."""
    secret = HMACKey.generate()
    save_key(directory / "fleet.jwk", HMACKey.generate(), "fleet")
    keyring = {"issuers": {ISSUER: [key_to_jwk(secret, "k1")]}}
    (directory / "keyring.json").write_text(json.dumps(keyring))
    redis = f'\n[redis]\nurl = "{redis_url}"\ncheck_interval = 1.0\n' if redis_url else ""
    config = directory / "serve.toml"
    config.write_text(
        f'[server]\nhost = "127.0.0.1"\nport = 0\naudience = "{AUDIENCE}"\norigins = []\n'
        'allow_no_origin = true\nhandler = "fleet:sink"\n'
        '[keys]\nfleet_key = "fleet.jwk"\nkeyring = "keyring.json"\n'
        "[limits]\nidle_timeout = 0\nfirst_frame_timeout = 30.0\n" + redis
    )
    return config, Issuer(ISSUER, "k1", secret)


class Server:
    """``signedws serve --workers N`` in a subprocess."""

    def __init__(self, config: Path, workers: int, log: Path) -> None:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), str(ROOT)])}
        self.log = log
        argv = [sys.executable, "-m", "signedws", "serve", "--config", str(config)]
        argv += ["--workers", str(workers)]
        with log.open("w") as stderr:
            self.proc = subprocess.Popen(  # noqa: S603 - our own command line
                argv,
                stdout=subprocess.PIPE,
                stderr=stderr,
                text=True,
                env=env,
                cwd=ROOT,
            )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        match = re.fullmatch(r"listening on (ws://[\d.]+:\d+)\n", line)
        if not match:
            self.stop()
            raise RuntimeError(f"signedws serve did not start:\n{log.read_text()}")
        self.uri = match.group(1)
        found = re.findall(r"\(worker (\d+), pid (\d+)\)", log.read_text())
        self.pids = [int(pid) for _, pid in sorted(found)] or [self.proc.pid]

    def cpu(self) -> float:
        """User + system seconds of the worker processes so far."""
        tick = os.sysconf("SC_CLK_TCK")
        total = 0
        for pid in self.pids:
            fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
        return total / tick

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def _run_clients(directory: Path, server: Server, credential: dict[str, str], **spec: Any) -> Any:
    spec = {**credential, **spec, "uri": server.uri, "start_at": time.time() + START_DELAY}
    spec_path = directory / "client.json"
    spec_path.write_text(json.dumps(spec))
    procs = [
        subprocess.Popen(  # noqa: S603 - this script
            [sys.executable, str(Path(__file__).resolve()), "--client", str(spec_path)],
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        for _ in range(CLIENTS)
    ]
    cpu_before = server.cpu()
    results = []
    for proc in procs:
        out, _ = proc.communicate(timeout=RUN_TIMEOUT + 30)
        if proc.returncode != 0:
            raise RuntimeError(f"load generator failed with status {proc.returncode}")
        results.append(json.loads(out))
    server_cpu = server.cpu() - cpu_before
    messages = sum(r["messages"] for r in results)
    seconds = max(r["end"] for r in results) - min(r["start"] for r in results)
    return {
        "messages": messages,
        "seconds": seconds,
        "rate": messages / seconds,
        "server_cpu_us": server_cpu / messages * 1e6,
        "client_cpu_us": sum(r["cpu"] for r in results) / messages * 1e6,
        "late_ms": max(r["late"] for r in results) * 1000,
        "spread": [r["spread"] for r in results],
    }


def throughput(counts: list[int], frames: int, repeat: int) -> list[dict[str, Any]]:
    """For each worker count, the median run (by rate) of ``repeat`` runs.

    Every server is started first and the runs alternate between them (1, 2,
    1, 2, ...), so that whatever else the machine does weighs on each alike.
    """
    runs: dict[int, list[dict[str, Any]]] = {workers: [] for workers in counts}
    with tempfile.TemporaryDirectory(prefix="signedws-fleet-bench-") as tmp:
        directory = Path(tmp)
        config, issuer = _setup(directory)
        token = issuer.issue_token(subject="bench", now=time.time(), lifetime=3600)
        credential = {
            "token": b64url_encode(token.token),
            "frame_key": b64url_encode(token.frame_key.to_bytes()),
        }
        servers: dict[int, Server] = {}
        try:
            for workers in counts:
                servers[workers] = Server(config, workers, directory / f"serve-{workers}.log")
            for _ in range(repeat):
                for workers, server in servers.items():
                    run = _run_clients(
                        directory,
                        server,
                        credential,
                        workers=workers,
                        connections=CONNECTIONS,
                        frames=frames,
                    )
                    print(f"  {workers} worker(s): {run['rate']:,.0f} msg/s", flush=True)
                    runs[workers].append(run)
        finally:
            for server in servers.values():
                server.stop()
    results = []
    for workers, done in runs.items():
        done.sort(key=lambda r: r["rate"])
        median = done[len(done) // 2]
        results.append({**median, "workers": workers, "rates": [round(r["rate"]) for r in done]})
    return results


def _spin(seconds: float) -> int:
    """Hash for ``seconds``; how many hashes (a pure-CPU yardstick)."""
    digest, count, end = b"", 0, time.perf_counter() + seconds
    while time.perf_counter() < end:
        for _ in range(1000):
            digest = hashlib.sha256(digest).digest()
        count += 1000
    return count


def cpu_scaling(repeat: int) -> float:
    """How much more pure-CPU work 2 processes do than 1 on this machine, right
    now (the median of ``repeat`` alternated measurements): the ceiling for
    any 2-worker speed-up here."""
    ratios = []
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        pool.map(_spin, [0.05, 0.05])
        for _ in range(repeat):
            one = sum(pool.map(_spin, [0.5]))
            two = sum(pool.map(_spin, [0.5, 0.5]))
            ratios.append(two / one)
    return statistics.median(ratios)


# -- revocation propagation -------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def _propagation(uri: str, redis_url: str, workers: int, credential: Any) -> list[float]:
    """Open one connection per worker for a fresh credential, revoke it in
    Redis, time each worker's refusal from the commit."""
    opened: dict[bytes, tuple[Any, Any]] = {}
    for _ in range(workers * 30):
        ws = await ws_connect(uri, subprotocols=[SUBPROTOCOL], compression=None)
        hello = await ws.recv()
        assert isinstance(hello, bytes)
        signer = Signer.from_hello(hello, credential, audience=AUDIENCE, now=time.time())
        node = signer.hello.nonce[1:9]
        if node in opened:
            await ws.close()
            continue
        await ws.send(signer.sign("before", now=time.time()))
        opened[node] = ws, signer
        if len(opened) == workers:
            break

    async def refused(ws: Any, signer: Any, start: float) -> float:
        for _ in range(1000):  # bounded: 5 s of probes
            try:
                await ws.send(signer.sign("probe", now=time.time()))
                async with asyncio.timeout(0.005):
                    await ws.recv()
            except TimeoutError:
                continue
            except ConnectionClosed:
                break
        assert ws.close_code == 4403, ws.close_code
        return time.monotonic() - start

    # Optional (the redis extra): only this measurement needs it.
    from signedws.asyncio.redis import RedisRevocationStore, connect_redis  # noqa: PLC0415

    client = connect_redis(redis_url)
    try:
        await asyncio.sleep(0.2)  # the "before" frames are verified
        await RedisRevocationStore(client).revoke_credential(ISSUER, credential.cid)
        start = time.monotonic()
        return await asyncio.gather(*(refused(ws, s, start) for ws, s in opened.values()))
    finally:
        await client.aclose()


def propagation(workers: int, samples: int) -> dict[str, Any] | None:
    """Revocation propagation through Redis, ``samples`` revocations."""
    binary = shutil.which("redis-server")
    if binary is None:
        return None
    with tempfile.TemporaryDirectory(prefix="signedws-fleet-redis-") as tmp:
        directory = Path(tmp)
        port = _free_port()
        args = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
        args += ["--appendonly", "no", "--dir", str(directory)]
        redis = subprocess.Popen(args, stdout=subprocess.DEVNULL)  # noqa: S603 - Debian's redis
        try:
            for _ in range(200):  # up to 10 s for Redis to listen
                with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port)):
                    break
                time.sleep(0.05)
            url = f"redis://127.0.0.1:{port}/0"
            config, issuer = _setup(directory, redis_url=url)
            server = Server(config, workers, directory / "serve.log")
            try:
                times: list[float] = []
                for i in range(samples):
                    credential = issuer.issue_token(
                        subject=f"victim-{i}", now=time.time(), credential_id=f"victim-{i}"
                    )
                    times += asyncio.run(_propagation(server.uri, url, workers, credential))
            finally:
                server.stop()
        finally:
            redis.send_signal(signal.SIGTERM)
            redis.wait(30)
    times_ms = sorted(t * 1000 for t in times)
    return {
        "workers": workers,
        "samples": len(times_ms),
        "median_ms": statistics.median(times_ms),
        "p95_ms": times_ms[min(len(times_ms) - 1, round(0.95 * (len(times_ms) - 1)))],
        "max_ms": times_ms[-1],
    }


# -- the report ------------------------------------------------------------------------


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def render(
    results: list[dict[str, Any]], redis: dict[str, Any] | None, frames: int, scaling: float
) -> str:
    by_workers = {r["workers"]: r for r in results}
    lines = [
        BEGIN,
        "## Fleet: `signedws serve --workers N` (`fleet.py`)",
        "",
        "Written by `python benchmarks/fleet.py`; the rest of this file is `report.py`'s.",
        "",
        f"- date: {datetime.datetime.now(datetime.UTC).isoformat(timespec='seconds')}",
        f"- machine: {_cpu_model()}, {os.cpu_count()} CPUs, {platform.platform()}",
        f"- Python {platform.python_version()}; server, load generators and Redis all on "
        f"this machine; load average after: {', '.join(f'{x:.2f}' for x in os.getloadavg())}",
        f"- load: {CLIENTS} load-generator processes x {CONNECTIONS} connections, split "
        f"evenly over the workers, {frames} pre-signed `mac` frames of 128 bytes each, "
        "compression off; a run ends when every last frame is acknowledged (delivered); "
        "median of the runs shown, runs alternated between the worker counts",
        "",
        "| workers | messages | seconds | aggregate msg/s | runs (msg/s) "
        "| server CPU µs/msg | load-generator CPU µs/msg |",
        "|---:|---:|---:|---:|---|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r['workers']} | {r['messages']:,} | {r['seconds']:.2f} | {r['rate']:,.0f} "
            f"| {', '.join(f'{x:,}' for x in r['rates'])} | {r['server_cpu_us']:.1f} "
            f"| {r['client_cpu_us']:.1f} |"
        )
    if 1 in by_workers and 2 in by_workers:
        ratio = by_workers[2]["rate"] / by_workers[1]["rate"]
        lines += [
            "",
            f"2 workers / 1 worker: **{ratio:.2f}x** aggregate throughput (runs alternated "
            f"in one session). For scale, pure-CPU work (SHA-256 in a loop) in 2 processes / "
            f"1 process on this machine in the same session: **{scaling:.2f}x**. The 2 CPUs "
            "also run the load generators (and whatever else the machine runs), so the "
            "2-worker figure is what this box does, not what 2 dedicated cores would.",
        ]
    if redis is not None:
        lines += [
            "",
            f"Revocation propagation through Redis ({redis['workers']} workers, "
            f"{redis['samples']} refusals): commit in Redis → refusal of the next frame on an "
            f"open connection, median **{redis['median_ms']:.1f} ms**, 95th percentile "
            f"{redis['p95_ms']:.1f} ms, max {redis['max_ms']:.1f} ms (frames probed every "
            "5 ms; the issue's bound is 1 s).",
        ]
    lines.append(END)
    return "\n".join(lines) + "\n"


def write_section(section: str, path: Path = RESULTS_MD) -> None:
    """Put ``section`` between the fleet markers of ``path``, leaving the rest."""
    text = path.read_text() if path.exists() else ""
    if BEGIN in text and END in text:
        head, _, rest = text.partition(BEGIN)
        _, _, tail = rest.partition(END)
        text = head + section.rstrip("\n") + tail
    else:
        text = (text.rstrip("\n") + "\n\n" if text else "") + section
    path.write_text(text if text.endswith("\n") else text + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--frames", type=int, default=8000, help="per connection")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--samples", type=int, default=10, help="revocations to time")
    parser.add_argument("--no-write", action="store_true", help="print, don't write")
    parser.add_argument("--client", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.client:
        return client_main(args.client)
    results = throughput(args.workers, args.frames, args.repeat)
    for result in results:
        print(
            f"{result['workers']} worker(s): {result['rate']:,.0f} msg/s (runs "
            f"{result['rates']}), server CPU {result['server_cpu_us']:.1f} µs/msg",
            flush=True,
        )
    scaling = cpu_scaling(args.repeat)
    print(f"pure CPU, 2 processes / 1: {scaling:.2f}x", flush=True)
    redis = propagation(max(args.workers), args.samples) if args.samples else None
    if redis is not None:
        print(f"revocation propagation: {redis}", flush=True)
    section = render(results, redis, args.frames, scaling)
    print(section)
    if not args.no_write:
        write_section(section)
        print(f"wrote the fleet section of {RESULTS_MD}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
