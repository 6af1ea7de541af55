"""Support for the ``test_sec_client_*`` tests (issue 13): a real signedws
server on 127.0.0.1, a relay between client and server that can rewrite the
unauthenticated hello or close connections its own way, and a runner for the
JavaScript client under Node.

Everything is loopback and bounded: every wait has a timeout, the relay's
plans are fixed lists, the Node script runs under a time limit.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import shutil
import subprocess
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import pytest
from helpers import AUDIENCE, FLEET_KEY, HMAC_ISSUER, SERVER_KEY, SERVER_KID, make_keyring
from websockets.asyncio.client import ClientConnection as ClientSocket
from websockets.asyncio.client import connect as ws_connect
from websockets.asyncio.server import ServerConnection as RelaySocket
from websockets.asyncio.server import serve as ws_serve
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from signedws import MACCredential, ServerKey, Verifier
from signedws.asyncio import ServerConnection, serve
from signedws.envelope import Hello, decode_hello, encode_hello

__all__ = [
    "JS",
    "Plan",
    "Recorder",
    "Relay",
    "mac_credential",
    "node_script",
    "signed_server",
]

ROOT: Final = Path(__file__).resolve().parents[2]
JS: Final = ROOT / "clients" / "js"
PROTOCOLS: Final = [Subprotocol("signedws.v1")]


def mac_credential() -> MACCredential:
    """A `mac` token for the helpers' issuer, valid now for the test audience."""
    return HMAC_ISSUER.issue_token(
        subject="alice", now=time.time(), lifetime=3600, audiences=[AUDIENCE]
    )


@dataclass
class Recorder:
    """A server handler that records every payload it is given."""

    payloads: list[object] = field(default_factory=list)
    connections: int = 0
    #: Every connection handled, in order.
    live: list[ServerConnection] = field(default_factory=list)
    #: Called with each connection before it is read; may raise or close it.
    hook: Callable[[ServerConnection], Any] | None = None

    async def __call__(self, connection: ServerConnection) -> None:
        self.connections += 1
        self.live.append(connection)
        async for message in connection:
            self.payloads.append(message.payload)
            if self.hook is not None:
                await self.hook(connection)


@contextlib.asynccontextmanager
async def signed_server(recorder: Recorder, **kwargs: Any) -> AsyncIterator[str]:
    """A signedws websockets server on 127.0.0.1, any free port; yields its URI."""
    verifier = Verifier(make_keyring(), audience=AUDIENCE, fleet_key=FLEET_KEY)
    kwargs.setdefault("server_key", ServerKey(SERVER_KID, SERVER_KEY))
    kwargs.setdefault("ack_delay", 0.01)
    async with serve(
        recorder, "127.0.0.1", 0, verifier=verifier, origins=[], allow_no_origin=True, **kwargs
    ) as server:
        port = server.sockets[0].getsockname()[1]
        yield f"ws://127.0.0.1:{port}"


@dataclass(frozen=True)
class Plan:
    """What the relay does with one client connection.

    Attributes:
        hello: rewrites the real server's hello (None: pass it on as is).
        swallow: take this many client messages without passing them on,
            then close the client's connection with ``close_code`` (None:
            relay everything both ways).
        close_code: see ``swallow``.
        mute: pass the client's frames on but none of the server's (after the
            hello): the client is never acknowledged.
    """

    hello: Callable[[Hello], Hello] | None = None
    swallow: int | None = None
    close_code: int = 1012
    mute: bool = False


def max_frame(size: int) -> Callable[[Hello], Hello]:
    """A hello rewrite that announces ``size`` as ``max_frame``."""
    return lambda hello: dataclasses.replace(hello, max_frame_size=size)


class Relay:
    """An on-path relay (SPEC.md §11.6): the client connects to it, it
    connects to the real server and passes frames on, following ``plans[i]``
    for the i-th client connection (the last plan for any later one)."""

    def __init__(self, upstream: str, plans: list[Plan]) -> None:
        self.upstream = upstream
        self.plans = plans
        self.connections = 0
        self.uri = ""

    async def _handle(self, client: RelaySocket) -> None:
        plan = self.plans[min(self.connections, len(self.plans) - 1)]
        self.connections += 1
        async with ws_connect(self.upstream, subprotocols=PROTOCOLS) as server:
            hello = await server.recv()
            assert isinstance(hello, bytes)
            if plan.hello is not None:
                hello = encode_hello(plan.hello(decode_hello(hello)))
            await client.send(hello)
            if plan.swallow is not None:
                with contextlib.suppress(ConnectionClosed):
                    for _ in range(plan.swallow):
                        await client.recv()
                await client.close(plan.close_code, "relay")
                return
            await asyncio.gather(
                self._pump(client, server), self._pump(server, client, mute=plan.mute)
            )

    @staticmethod
    async def _pump(
        source: RelaySocket | ClientSocket,
        sink: RelaySocket | ClientSocket,
        *,
        mute: bool = False,
    ) -> None:
        try:
            async for data in source:
                if not mute:
                    await sink.send(data)
        except ConnectionClosed:
            pass
        code = source.close_code
        if code is None or code in (1005, 1006, 1015):
            sink.transport.abort()
        else:
            with contextlib.suppress(ConnectionClosed):
                await sink.close(code, source.close_reason or "")

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[Relay]:
        async with ws_serve(
            self._handle, "127.0.0.1", 0, subprotocols=PROTOCOLS, compression=None
        ) as server:
            self.uri = f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}"
            yield self


def _node() -> list[str]:
    """The node command (with the WebSocket flag Node 20 needs), or skip
    (fail under CI=true) when node or clients/js/node_modules is missing."""
    path = shutil.which("node")
    reason = None
    if path is None:
        reason = "node is not installed"
    elif not (JS / "node_modules" / "@msgpack" / "msgpack").is_dir():
        reason = "clients/js/node_modules is missing (npm ci in clients/js)"
    if reason is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true and {reason}")
        pytest.skip(f"JS CLIENT NOT TESTED: {reason}")
    assert path is not None
    version = subprocess.run(  # noqa: S603 - fixed argument list
        [path, "--version"], capture_output=True, text=True, check=True
    ).stdout
    major = int(version.strip().lstrip("v").split(".")[0])
    return [path, "--experimental-websocket"] if major < 22 else [path]


#: Prepended to every Node script: the client, a credential from the
#: environment and `outcome(promise)`, which describes how a promise settled.
_PRELUDE: Final = """
import * as signedws from '%(index)s';
const { Backoff, MACCredential, connect, fromHex } = signedws;
const env = process.env;
const credential = await MACCredential.fromBytes(fromHex(env.SW_TOKEN), fromHex(env.SW_FRAME_KEY));
const fast = new Backoff({ initial: 0.02, maximum: 0.1, jitter: 0 });
/** `promise`, or a rejection after 15 s: an unfixed client waits forever. */
function bounded(promise) {
  let timer;
  const late = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error('still waiting after 15 s')), 15000);
  });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}
async function outcome(promise) {
  try {
    await promise;
    return { ok: true };
  } catch (error) {
    return {
      ok: false,
      error: error?.constructor?.name ?? String(error),
      code: error?.code?.id ?? null,
      closeCode: error?.closeCode ?? null,
      reason: error?.reason ?? null,
      message: String(error?.message ?? error),
    };
  }
}
"""


async def node_script(body: str, *, url: str, timeout: float = 60.0) -> Any:
    """Run ``body`` (an ES module, after the prelude) under Node against
    ``url`` (``env.SW_URL``); return the JSON it printed on its last line."""
    command = _node()
    credential = mac_credential()
    script = _PRELUDE % {"index": (JS / "src" / "index.js").as_uri()} + body
    env = {
        **os.environ,
        "SW_URL": url,
        "SW_AUDIENCE": AUDIENCE,
        "SW_TOKEN": credential.token.hex(),
        "SW_FRAME_KEY": credential.frame_key.to_bytes().hex(),
    }
    process = await asyncio.create_subprocess_exec(
        *command,
        "--input-type=module",
        "-e",
        script,
        cwd=JS,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(timeout):
            stdout, stderr = await process.communicate()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == 0, stderr.decode(errors="replace")[-3000:]
    lines = stdout.decode().strip().splitlines()
    assert lines, stderr.decode(errors="replace")[-3000:]
    return json.loads(lines[-1])
