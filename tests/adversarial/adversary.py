"""Support for the adversarial tests that need a real server process.

`ServerProcess` runs ``signedws serve`` (the CLI, as an operator would) on
127.0.0.1 with the helpers' fixed keys and the `record_store` handler, and
can be killed and restarted on the same port. `honest_client` and
`attacker_frame` speak to it; `ResendCounter` counts what clients resent after
reconnecting. Every wait here is bounded.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import select
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

from helpers import (
    AUDIENCE,
    CLIENT_KEY,
    ED_ISSUER,
    ED_ISSUER_KEY,
    ED_KID,
    FLEET_KEY,
    HMAC_ISSUER,
    HMAC_KID,
    HMAC_SECRET,
    ISSUER,
    SERVER_KEY,
    SERVER_KID,
)

from signedws import Ed25519Credential, MACCredential, key_to_jwk, save_key
from signedws.asyncio import Backoff, ClientConnection, connect

__all__ = [
    "HERE",
    "ROOT",
    "SERVER_KEYS",
    "ResendCounter",
    "ServerProcess",
    "credential_for",
    "honest_client",
]

HERE: Final = Path(__file__).resolve().parent
ROOT: Final = HERE.parent.parent
SERVER_KEYS: Final = {SERVER_KID: SERVER_KEY.public_key()}
FAST_BACKOFF: Final = Backoff(initial=0.05, maximum=0.5, jitter=0.5)


def credential_for(number: int, *, lifetime: int = 3600) -> MACCredential | Ed25519Credential:
    """Client ``number``'s credential, valid now: `mac` for even numbers,
    an `ed25519` certificate for odd ones; subject ``user<number>``."""
    now = time.time()
    subject = f"user{number}"
    if number % 2 == 0:
        return HMAC_ISSUER.issue_token(
            subject=subject, now=now, lifetime=lifetime, audiences=[AUDIENCE]
        )
    cert = ED_ISSUER.issue_certificate(
        CLIENT_KEY.public_key(), subject=subject, now=now, lifetime=lifetime
    )
    return Ed25519Credential(cert, CLIENT_KEY)


def honest_client(
    uri: str, number: int, **kwargs: Any
) -> connect:  # the awaitable / async context manager websockets-style
    """A reconnecting signedws client for client ``number``."""
    kwargs.setdefault("backoff", FAST_BACKOFF)
    kwargs.setdefault("keepalive", None)
    kwargs.setdefault("max_attempts", 200)
    return connect(
        uri, credential_for(number), audience=AUDIENCE, server_keys=SERVER_KEYS, **kwargs
    )


class ResendCounter(logging.Handler):
    """Counts the messages signedws clients resent after reconnecting, from
    the client's "connected ..., resent N messages" log record."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.resent = 0
        self.reconnects = 0

    def emit(self, record: logging.LogRecord) -> None:
        """Add up one connection's resends."""
        args = record.args
        if record.msg == "connected to %s, resent %d messages" and isinstance(args, tuple):
            self.resent += int(str(args[1]))
        if isinstance(record.msg, str) and record.msg.startswith("reconnecting to"):
            self.reconnects += 1

    def __enter__(self) -> ResendCounter:
        client_logger = logging.getLogger("signedws.client")
        self._level = client_logger.level
        client_logger.setLevel(logging.INFO)
        client_logger.addHandler(self)
        return self

    def __exit__(self, *exc: object) -> None:
        client_logger = logging.getLogger("signedws.client")
        client_logger.removeHandler(self)
        client_logger.setLevel(self._level)


class ServerProcess:
    """``signedws serve`` in a subprocess, with the record handler.

    Args:
        directory: where keys, config, record and logs are written.
        env: extra environment for the server (``SIGNEDWS_RECORD_DELAY`` ...).
        limits: ``[limits]`` keys of the config (``max_connections`` ...).
    """

    def __init__(
        self, directory: Path, *, env: Mapping[str, str] | None = None, **limits: int | float
    ) -> None:
        self.directory = directory
        self.env = dict(env or {})
        self.record = directory / "record.jsonl"
        self.dups = directory / "record.jsonl.dups"
        self.log = directory / "server.log"
        self.port = 0
        self.proc: subprocess.Popen[str] | None = None
        self.starts = 0
        save_key(directory / "fleet.jwk", FLEET_KEY, "fleet")
        save_key(directory / "server.jwk", SERVER_KEY, SERVER_KID)
        keyring = {
            "issuers": {
                ISSUER: [
                    key_to_jwk(HMAC_SECRET, HMAC_KID),
                    key_to_jwk(ED_ISSUER_KEY.public_key(), ED_KID),
                ]
            }
        }
        (directory / "keyring.json").write_text(json.dumps(keyring))
        settings = {"first_frame_timeout": 10.0, **limits}
        lines = [
            "[server]",
            'host = "127.0.0.1"',
            "port = 0",
            f"audience = {json.dumps(AUDIENCE)}",
            "origins = []",
            "allow_no_origin = true",
            'handler = "record_store:record"',
            "[keys]",
            'fleet_key = "fleet.jwk"',
            'keyring = "keyring.json"',
            'server_key = "server.jwk"',
            "reload_interval = 0",
            "[limits]",
            *(f"{key} = {value!r}" for key, value in settings.items()),
        ]
        self.config = directory / "server.toml"
        self.config.write_text("\n".join(lines) + "\n")

    @property
    def uri(self) -> str:
        """Where the server listens."""
        return f"ws://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        """The running process's id."""
        assert self.proc is not None
        return self.proc.pid

    def start(self, timeout: float = 20.0) -> None:
        """Start the server (on the same port as before, after the first start)
        and wait until it listens."""
        env: Mapping[str, str] = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(HERE), str(ROOT)]),
            "SIGNEDWS_RECORD": str(self.record),
            **self.env,
        }
        with self.log.open("a") as log:
            self.proc = subprocess.Popen(  # noqa: S603 - our own CLI, fixed arguments
                [
                    sys.executable,
                    "-m",
                    "signedws",
                    "serve",
                    "--config",
                    str(self.config),
                    "--port",
                    str(self.port),
                    "--log-level",
                    "WARNING",
                ],
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
                env=env,
                cwd=self.directory,
            )
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        line = self.proc.stdout.readline() if ready else ""
        match = re.fullmatch(r"listening on ws://127\.0\.0\.1:(\d+)\n", line)
        if match is None:
            self.proc.kill()
            self.proc.wait(10)
            raise AssertionError(f"server did not start: {line!r}; see {self.log}")
        self.port = int(match.group(1))
        self.starts += 1

    def kill(self) -> None:
        """SIGKILL: no closing handshake, nothing flushed but what was written."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> int:
        """SIGTERM, and the exit status."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                return self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
                raise
        return self.proc.returncode

    def rejections(self) -> list[str]:
        """The rejection codes the server logged, in order."""
        text = self.log.read_text() if self.log.exists() else ""
        return re.findall(r"rejected connection=\S+ code=(\w+)", text)

    def __enter__(self) -> ServerProcess:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.stop()


async def close_quietly(client: ClientConnection) -> None:
    """Close a client, whatever state it ended in."""
    with contextlib.suppress(Exception):
        await client.close()
