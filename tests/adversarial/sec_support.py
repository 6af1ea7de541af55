"""Servers and attackers for the issue 13 tests (``test_sec_*.py``).

`SecServer` runs a signedws server in a process of its own, so that its
resident memory and CPU time are its alone: the websockets adapter
(``python sec_support.py websockets [--deflate]``: `signedws.asyncio.serve`
with its defaults, or with ``compression="deflate"`` asked for), or the ASGI
adapter under uvicorn, started with the command line README.md gives for it
(``uvicorn ... --ws-max-size 65536 ...``, read from README.md, so the test runs
what the documentation tells operators to run). Both serve the helpers'
fixed keys with an echo handler.

`deflate_flood` is the permessage-deflate attack of issue 13, finding 1: a
client that offers permessage-deflate and then writes compressed frames
whatever the server answered ("compression forced on at the client"):
messages of 64 KiB that are all zeros after a 3-byte envelope prefix, ~80
bytes each on the wire. Every wait here is bounded.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import re
import subprocess
import sys
import time
import zlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Final

HERE: Final = Path(__file__).resolve().parent
ROOT: Final = HERE.parents[1]
sys.path[:0] = [str(HERE.parent), str(HERE)]

from helpers import AUDIENCE, FLEET_KEY, SERVER_KEY, SERVER_KID, make_keyring  # noqa: E402

from signedws import ServerKey, Verifier  # noqa: E402
from signedws.envelope import KIND_CLIENT_ED25519, KIND_CLIENT_MAC  # noqa: E402

__all__ = [
    "KINDS",
    "PREFIXES",
    "SecServer",
    "cpu_seconds",
    "deflate_flood",
    "readme_uvicorn_flags",
    "serving",
]

#: The first bytes of a client frame of each scheme (fixarray of 10, version 1, kind).
PREFIXES: Final = {
    "ed25519": bytes((0x9A, 0x01, KIND_CLIENT_ED25519)),
    "mac": bytes((0x9A, 0x01, KIND_CLIENT_MAC)),
}
MESSAGE_SIZE: Final = 65536
PATH: Final = "/ws"


def readme_uvicorn_flags() -> list[str]:
    """The uvicorn options README.md's ASGI section runs the app with."""
    text = (ROOT / "README.md").read_text()
    match = re.search(r"Run it with `uvicorn \S+((?: --[\w-]+(?: [^\s`-]\S*)?)*)`", text)
    assert match, "README.md gives no `uvicorn app --options` command line"
    return match.group(1).split()


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process so far, seconds (Linux ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class SecServer:
    """A server process of ``kind`` (``websockets``, ``websockets-deflate`` or
    ``uvicorn``) on 127.0.0.1, any free port."""

    def __init__(self, kind: str, log: Path) -> None:
        self.kind = kind
        self.log = log
        self.port = 0
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(HERE), str(HERE.parent), str(ROOT)]),
        }
        if kind == "uvicorn":
            args = ["-m", "uvicorn", "sec_support:app", "--host", "127.0.0.1", "--port", "0"]
            args += [*readme_uvicorn_flags(), "--log-level", "info", "--lifespan", "off"]
        else:
            args = [str(Path(__file__)), *(["--deflate"] if kind.endswith("deflate") else [])]
        with log.open("a") as out:
            self.proc = subprocess.Popen(  # noqa: S603 - our own server, fixed arguments
                [sys.executable, *args],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=HERE,
            )
        # Where it listens: our script prints it, uvicorn logs it.
        pattern = re.compile(r"(?:listening on ws|running on http)://127\.0\.0\.1:(\d+)")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and self.proc.poll() is None:
            match = pattern.search(log.read_text())
            if match:
                self.port = int(match.group(1))
                break
            time.sleep(0.05)
        if not self.port:
            self.close()
            raise AssertionError(f"{kind} server did not start: {log.read_text()[-2000:]!r}")

    @property
    def uri(self) -> str:
        return f"ws://127.0.0.1:{self.port}{PATH}"

    @property
    def pid(self) -> int:
        return self.proc.pid

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)

    def __enter__(self) -> SecServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def compressed_message(prefix: bytes) -> bytes:
    """A 64 KiB binary message, ``prefix`` then zeros, compressed as RFC 7692
    says (raw deflate, sync-flushed, the trailing 00 00 ff ff removed), framed
    with RSV1 set and masked, as a client sends it."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -9)
    body = compressor.compress(prefix + bytes(MESSAGE_SIZE - len(prefix)))
    body += compressor.flush(zlib.Z_SYNC_FLUSH)
    assert body.endswith(b"\x00\x00\xff\xff")
    body = body[:-4]
    assert len(body) < 126
    mask = os.urandom(4)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(body))
    return bytes((0x80 | 0x40 | 0x02, 0x80 | len(body))) + mask + masked


async def deflate_flood(
    port: int, prefix: bytes, count: int, *, wait: float = 5.0
) -> tuple[int, bool]:
    """One attacking connection: the handshake offering permessage-deflate,
    then ``count`` compressed 64 KiB messages written at once, then read (and
    never answer a close) until the server ends the TCP connection, at most
    ``wait`` seconds. Returns the wire bytes sent and whether the server
    ended the connection within ``wait``."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write(
            (
                f"GET {PATH} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: signedws.v1\r\n"
                "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n"
            ).encode()
        )
        async with asyncio.timeout(10):
            response = await reader.readuntil(b"\r\n\r\n")
        assert response.startswith(b"HTTP/1.1 101"), response[:100]
        frames = compressed_message(prefix) * count
        writer.write(frames)
        with contextlib.suppress(ConnectionError):
            async with asyncio.timeout(10):
                await writer.drain()
        ended = False
        with contextlib.suppress(ConnectionError, TimeoutError):
            async with asyncio.timeout(wait):
                while await reader.read(65536):
                    pass
                ended = True
        return len(frames), ended
    finally:
        writer.transport.abort()


# -- servers in the test's own process ----------------------------------------------------

#: The server adapters an in-process test runs against.
KINDS: Final = ("websockets", "asgi")


@contextlib.asynccontextmanager
async def serving(kind: str, handler: Any, **kwargs: Any) -> AsyncIterator[tuple[str, Any]]:
    """``handler`` behind the adapter ``kind`` on 127.0.0.1, any free port, in
    this event loop (uvicorn as README.md runs it); yields the URI and the
    server (websockets' ``Server``, or the `SignedWebSockets` guard)."""
    verifier = kwargs.pop("verifier", None) or _verifier()
    kwargs.setdefault("origins", [])
    kwargs.setdefault("allow_no_origin", True)
    kwargs.setdefault("server_key", ServerKey(SERVER_KID, SERVER_KEY))
    if kind == "websockets":
        from signedws.asyncio import serve

        async with serve(handler, "127.0.0.1", 0, verifier=verifier, **kwargs) as server:
            yield f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}", server
        return
    import uvicorn
    from starlette.applications import Starlette
    from starlette.routing import WebSocketRoute

    from signedws.asyncio.asgi import SignedWebSockets

    signed = SignedWebSockets(verifier, **kwargs)
    app = Starlette(routes=[WebSocketRoute(PATH, signed.endpoint(handler))])
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=0,
        ws="websockets-sansio",
        ws_max_size=verifier.max_frame_size,
        ws_per_message_deflate=False,
        lifespan="off",
        log_config=None,
        timeout_graceful_shutdown=5,
    )
    config.load()
    uv = uvicorn.Server(config)
    uv.lifespan = config.lifespan_class(config)
    await uv.startup()
    try:
        port = uv.servers[0].sockets[0].getsockname()[1]
        yield f"ws://127.0.0.1:{port}{PATH}", signed
    finally:
        await uv.shutdown()


# -- the servers -------------------------------------------------------------------------


def _verifier() -> Verifier:
    return Verifier(make_keyring(), audience=AUDIENCE, fleet_key=FLEET_KEY)


async def _echo(connection: Any) -> None:
    async for message in connection:
        await connection.send(message.payload)


def _asgi_app() -> Any:
    from starlette.applications import Starlette
    from starlette.routing import WebSocketRoute

    from signedws.asyncio.asgi import SignedWebSockets

    signed = SignedWebSockets(
        _verifier(), origins=[], allow_no_origin=True, server_key=ServerKey(SERVER_KID, SERVER_KEY)
    )
    return Starlette(routes=[WebSocketRoute(PATH, signed.endpoint(_echo))])


def __getattr__(name: str) -> Any:
    """``sec_support:app`` for uvicorn, built on first use."""
    if name == "app":
        app = globals()["app"] = _asgi_app()
        return app
    raise AttributeError(name)


async def _serve_websockets(deflate: bool) -> None:
    from signedws.asyncio import serve

    kwargs: dict[str, Any] = {"compression": "deflate"} if deflate else {}
    async with serve(
        _echo,
        "127.0.0.1",
        0,
        verifier=_verifier(),
        origins=[],
        allow_no_origin=True,
        server_key=ServerKey(SERVER_KID, SERVER_KEY),
        **kwargs,
    ) as server:
        print(f"listening on ws://127.0.0.1:{server.sockets[0].getsockname()[1]}", flush=True)
        await asyncio.Future()


if __name__ == "__main__":
    import signal

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    asyncio.run(_serve_websockets("--deflate" in sys.argv))
