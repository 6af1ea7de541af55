"""Support for the ``test_sec_config_*`` tests (issue 13): a real
``redis-server`` on a free 127.0.0.1 port (optionally with a password), the
``signedws`` command line in a subprocess, and serve configurations with
throwaway keys. Every wait is bounded.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Final

import pytest
from helpers import AUDIENCE, ISSUER

from signedws import HMACKey, key_to_jwk, save_key

__all__ = ["RedisProcess", "closed_port", "redis_server", "serve_config", "signedws_cli"]

ROOT: Final = Path(__file__).resolve().parents[2]
START_TIMEOUT: Final = 10.0


def _redis_binary() -> str:
    path = shutil.which("redis-server") or next(
        (p for p in ("/usr/sbin/redis-server", "/usr/bin/redis-server") if os.access(p, os.X_OK)),
        None,
    )
    if path is None:
        reason = "redis-server is not installed (apt-get install redis-server; .ci/run does)"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return path


def closed_port() -> int:
    """A 127.0.0.1 port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class RedisProcess:
    """A running ``redis-server``: its port, and `stop` for an outage."""

    def __init__(self, proc: subprocess.Popen[bytes], port: int) -> None:
        self.proc = proc
        self.port = port

    def stop(self) -> None:
        """Stop it (SIGTERM, then SIGKILL after 10 s); idempotent."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@contextlib.contextmanager
def redis_server(directory: Path, *, password: str | None = None) -> Iterator[RedisProcess]:
    """A ``redis-server`` without persistence on a free port."""
    binary = _redis_binary()
    port = closed_port()
    args = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
    args += ["--appendonly", "no", "--dir", str(directory)]
    args += ["--logfile", str(directory / "redis.log")]
    if password is not None:
        args += ["--requirepass", password]
    redis = RedisProcess(subprocess.Popen(args, stdout=subprocess.DEVNULL), port)  # noqa: S603
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if redis.proc.poll() is not None:
                raise RuntimeError(f"redis-server exited with status {redis.proc.returncode}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not listen in {START_TIMEOUT} s")
            time.sleep(0.02)
        yield redis
    finally:
        redis.stop()


def serve_config(directory: Path, redis_url: str) -> Path:
    """A ``signedws serve`` configuration with throwaway keys that follows
    revocations in Redis at ``redis_url``."""
    directory.mkdir(parents=True, exist_ok=True)
    save_key(directory / "fleet.jwk", HMACKey.generate(), "fleet")
    keyring = {"issuers": {ISSUER: [dict(key_to_jwk(HMACKey.generate(), "k1"))]}}
    (directory / "keyring.json").write_text(json.dumps(keyring))
    document: dict[str, dict[str, object]] = {
        "server": {"host": "127.0.0.1", "port": 0, "audience": AUDIENCE, "origins": []},
        "keys": {"fleet_key": "fleet.jwk", "keyring": "keyring.json"},
        "redis": {"url": redis_url, "check_interval": 0.2},
    }
    lines = []
    for section, values in document.items():
        lines.append(f"[{section}]")
        lines += [f"{key} = {json.dumps(value)}" for key, value in values.items()]
    path = directory / "serve.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def signedws_cli(*args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    """``python -m signedws ...`` in a subprocess, as an operator runs it."""
    return subprocess.run(  # noqa: S603 - our own command line
        [sys.executable, "-m", "signedws", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        cwd=ROOT,
    )
