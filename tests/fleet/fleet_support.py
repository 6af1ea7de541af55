"""Helpers for the fleet tests: keys and configurations on disk, and real
processes on 127.0.0.1 (``signedws serve`` nodes, ``redis-server``, ``nginx``),
each started with a time limit and stopped by its own pid.

Imported as ``fleet_support`` (pytest puts this directory on ``sys.path``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Final

import pytest
from websockets.asyncio.client import ClientConnection as WebSocket
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed

from signedws import HMACKey, Issuer, MACCredential, Signer, key_to_jwk, save_key

REPO: Final = Path(__file__).resolve().parents[2]
HERE: Final = Path(__file__).resolve().parent
AUDIENCE: Final = "wss://fleet.signedws.test/ws"
ISSUER: Final = "auth"
START_TIMEOUT: Final = 20.0
STOP_TIMEOUT: Final = 15.0


def find_tool(name: str) -> str:
    """The path of a Debian tool (``/usr/sbin`` is not on every PATH).

    Missing: a loud skip locally; a failure under ``CI=true``, where ``.ci/run``
    installs it.
    """
    path = shutil.which(name) or next(
        (p for p in (f"/usr/sbin/{name}", f"/usr/bin/{name}") if os.access(p, os.X_OK)), None
    )
    if path is None:
        reason = f"{name} is not installed (apt-get install nginx redis-server; .ci/run does)"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for_port(port: int, proc: subprocess.Popen[Any], what: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with status {proc.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.02)
    raise RuntimeError(f"{what} did not listen on {port} in {START_TIMEOUT} s")


def stop(proc: subprocess.Popen[Any], signum: int = signal.SIGTERM) -> int:
    """Signal ``proc`` and wait for it; kill it if it does not stop in time."""
    if proc.poll() is None:
        proc.send_signal(signum)
        try:
            proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


# -- keys and configuration ------------------------------------------------------------


@dataclass
class FleetKeys:
    """A directory with an issuer secret, a keyring and a fleet key."""

    directory: Path
    secret: HMACKey
    kid: str = "k1"

    @classmethod
    def create(cls, directory: Path) -> FleetKeys:
        directory.mkdir(parents=True, exist_ok=True)
        secret = HMACKey.generate()
        save_key(directory / "fleet.jwk", HMACKey.generate(), "fleet")
        keys = cls(directory, secret)
        keys.write_keyring([(keys.kid, secret, None)])
        return keys

    def write_keyring(self, keys: list[tuple[str, HMACKey, int | None]]) -> None:
        """Replace the keyring file atomically: ``(kid, secret, not_after)``."""
        entries = []
        for kid, secret, not_after in keys:
            jwk: dict[str, Any] = dict(key_to_jwk(secret, kid))
            if not_after is not None:
                jwk["exp"] = not_after
            entries.append(jwk)
        tmp = self.directory / ".keyring.tmp"
        tmp.write_text(json.dumps({"issuers": {ISSUER: entries}}))
        os.replace(tmp, self.directory / "keyring.json")

    def token(
        self, subject: str, *, cid: str | None = None, secret: HMACKey | None = None, kid: str = ""
    ) -> MACCredential:
        issuer = Issuer(ISSUER, kid or self.kid, secret or self.secret)
        return issuer.issue_token(
            subject=subject, now=time.time(), lifetime=600, credential_id=cid
        )

    def config(self, name: str, **sections: dict[str, object]) -> Path:
        """Write a serve configuration; ``sections`` add or override keys."""
        document: dict[str, dict[str, object]] = {
            "server": {
                "host": "127.0.0.1",
                "port": 0,
                "audience": AUDIENCE,
                "origins": [],
                "allow_no_origin": True,
                "handler": "fleet_record:handler",
            },
            "keys": {"fleet_key": "fleet.jwk", "keyring": "keyring.json"},
        }
        for section, values in sections.items():
            document.setdefault(section, {}).update(values)
        lines = []
        for section, values in document.items():
            lines.append(f"[{section}]")
            lines += [f"{key} = {json.dumps(value)}" for key, value in values.items()]
        path = self.directory / name
        path.write_text("\n".join(lines) + "\n")
        return path


# -- connections ------------------------------------------------------------------------------


async def open_raw(uri: str, credential: MACCredential) -> tuple[WebSocket, Signer]:
    """A plain WebSocket that read the hello, and a signer for its nonce."""
    ws = await ws_connect(uri, subprotocols=["signedws.v1"])  # type: ignore[list-item]
    hello = await ws.recv()
    assert isinstance(hello, bytes)
    return ws, Signer.from_hello(hello, credential, audience=AUDIENCE, now=time.time())


async def accepted(ws: WebSocket, signer: Signer, payload: str) -> None:
    """Send a frame and wait for its acknowledgement."""
    await ws.send(signer.sign(payload, now=time.time()))
    counter = signer.counter
    async with asyncio.timeout(5):
        while True:
            frame = await ws.recv()
            assert isinstance(frame, bytes)
            if signer.verify(frame).ack >= counter:
                return


async def close_code(ws: WebSocket, timeout: float = 5.0) -> int | None:
    """Read until the server closes; its close code."""
    try:
        async with asyncio.timeout(timeout):
            while True:
                await ws.recv()
    except ConnectionClosed:
        pass
    return ws.close_code


async def refused_after(ws: WebSocket, signer: Signer, start: float, limit: float = 10.0) -> float:
    """Send a frame every 10 ms until the server closes the connection; the
    seconds from ``start`` (monotonic) to the close. The close is 4403: the
    credential is revoked (SPEC.md §9)."""
    deadline = start + limit
    probe = 0
    while time.monotonic() < deadline:
        probe += 1
        try:
            await ws.send(signer.sign(f"probe {probe}", now=time.time()))
            async with asyncio.timeout(0.01):
                await ws.recv()  # an acknowledgement, or the close
        except TimeoutError:
            continue
        except ConnectionClosed:
            break
    elapsed = time.monotonic() - start
    assert ws.close_code == 4403, (ws.close_code, elapsed)
    return elapsed


async def first_frame_code(uri: str, credential: MACCredential) -> int | None:
    """Open a connection and send one frame: None if accepted (acknowledged),
    else the close code."""
    ws, signer = await open_raw(uri, credential)
    try:
        await accepted(ws, signer, "hello")
    except ConnectionClosed:
        return ws.close_code
    finally:
        await ws.close()
    return None


# -- processes ---------------------------------------------------------------------------


def _first_line(stream: IO[str], proc: subprocess.Popen[Any], what: str) -> str:
    ready, _, _ = select.select([stream], [], [], START_TIMEOUT)
    line = stream.readline() if ready else ""
    if not line:
        stop(proc)
        raise RuntimeError(f"{what} did not start (status {proc.returncode})")
    return line


class Node:
    """A ``signedws serve`` process (any number of workers)."""

    def __init__(self, config: Path, log: Path, record: Path, *args: str) -> None:
        self.log = log
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
            "SIGNEDWS_FLEET_RECORD": str(record),
        }
        with log.open("w") as stderr:
            self.proc = subprocess.Popen(  # noqa: S603 - our own command line
                [sys.executable, "-m", "signedws", "serve", "--config", str(config), *args],
                stdout=subprocess.PIPE,
                stderr=stderr,
                text=True,
                env=env,
                cwd=REPO,
            )
        self.port = 0

    def ready(self) -> Node:
        """Wait for the listening line (the server is accepting then)."""
        assert self.proc.stdout is not None
        line = _first_line(self.proc.stdout, self.proc, f"signedws serve ({self.log.name})")
        match = re.fullmatch(r"listening on ws://127\.0\.0\.1:(\d+)\n", line)
        assert match, line
        self.port = int(match.group(1))
        return self

    @property
    def uri(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    @property
    def node_ids(self) -> list[str]:
        """The node ids the process (or its workers) logged at start."""
        return re.findall(
            r"node ([0-9a-f]{16})(?: \(worker \d+, pid \d+\))? listening", self.text()
        )

    def text(self) -> str:
        return self.log.read_text()

    def stop(self) -> int:
        code = stop(self.proc)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        return code


class RedisServer:
    """A ``redis-server`` on 127.0.0.1 without persistence; `stop` and `start`
    again on the same port simulate an outage (it comes back empty)."""

    def __init__(self, binary: str, directory: Path) -> None:
        self.binary = binary
        self.directory = directory
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        args = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1"]
        args += ["--save", "", "--appendonly", "no", "--dir", str(self.directory)]
        args += ["--logfile", str(self.directory / "redis.log")]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL)  # noqa: S603
        wait_for_port(self.port, self.proc, "redis-server")
        return self

    def stop(self) -> None:
        if self.proc is not None:
            stop(self.proc)
            self.proc = None


class Nginx:
    """nginx on a free 127.0.0.1 port, proxying WebSockets round-robin to
    ``upstreams``, from a generated configuration (`config_text`)."""

    def __init__(self, binary: str, directory: Path, upstreams: list[int]) -> None:
        self.binary = binary
        self.directory = directory
        self.port = free_port()
        self.conf = directory / "nginx.conf"
        self.conf.write_text(config_text(directory, self.port, upstreams))
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def uri(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    def start(self) -> Nginx:
        args = [self.binary, "-p", str(self.directory), "-c", str(self.conf)]
        args += ["-e", str(self.directory / "error.log")]
        self.proc = subprocess.Popen(args)  # noqa: S603 - our own configuration
        wait_for_port(self.port, self.proc, "nginx")
        return self

    def stop(self) -> None:
        if self.proc is not None:
            stop(self.proc, signal.SIGQUIT)  # graceful: finishes what it relays
            self.proc = None


def config_text(directory: Path, port: int, upstreams: list[int]) -> str:
    """An nginx configuration: the README's fleet snippet inside a complete,
    self-contained file (no daemon, everything under ``directory``)."""
    servers = "\n".join(f"        server 127.0.0.1:{p};" for p in upstreams)
    user = "user root;\n" if os.geteuid() == 0 else ""
    temp = "\n".join(
        f"    {kind}_temp_path {directory}/{kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return f"""{user}daemon off;
worker_processes 1;
pid {directory}/nginx.pid;
error_log {directory}/error.log info;
events {{ worker_connections 1024; }}
http {{
    access_log off;
{temp}

    map $http_upgrade $connection_upgrade {{
        default upgrade;
        ''      close;
    }}
    upstream signedws {{
{servers}
    }}
    server {{
        listen 127.0.0.1:{port};
        location /ws {{
            proxy_pass http://signedws;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
            proxy_set_header Host $host;
            proxy_read_timeout 1h;
            proxy_send_timeout 1h;
        }}
    }}
}}
"""


@contextlib.contextmanager
def nodes_running(*nodes: Node) -> Iterator[list[Node]]:
    """Wait for every node, yield them, stop them all (even on failure)."""
    try:
        yield [node.ready() for node in nodes]
    finally:
        for node in nodes:
            node.stop()


def revoke(*args: str) -> subprocess.CompletedProcess[str]:
    """``signedws revoke`` in a subprocess, as an operator runs it."""
    return subprocess.run(  # noqa: S603 - our own command line
        [sys.executable, "-m", "signedws", "revoke", *args],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        cwd=REPO,
    )
