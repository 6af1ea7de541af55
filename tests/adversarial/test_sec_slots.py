"""Issue 13: connection slots, per server and per principal.

- Handshakes in progress count against ``max_connections`` (finding 8): on
  the base of issue 13 a slot was taken only when the handshake response went
  out, so any number of half-sent HTTP requests could be held open beside a
  full server.
- A peer that never completes the closing handshake delays a server's
  shutdown by at most the close timeout, 2 s by default (finding 8: it was
  10 s, websockets' default).
- One principal holds at most ``max_connections_per_principal`` connections;
  the next is closed at its first valid frame with ``server_busy`` (4503),
  and other principals are not affected (the sibling of finding 2 for
  connection slots).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

import pytest
from helpers import AUDIENCE, HMAC_ISSUER
from sec_support import KINDS, serving
from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from signedws import Signer, decode_hello


async def echo(connection: Any) -> None:
    async for message in connection:
        await connection.send(message.payload)


async def handshake(uri: str) -> ClientConnection:
    ws = await ws_connect(uri, subprotocols=["signedws.v1"], open_timeout=10)  # type: ignore[list-item]
    hello = await ws.recv()
    assert isinstance(hello, bytes)
    return ws


def test_handshakes_in_progress_count_against_max_connections(run: Any) -> None:
    """With max_connections=3 taken by three TCP connections whose HTTP
    request is not finished, a complete handshake gets HTTP 503; once they
    are gone, it gets in."""

    async def main() -> int:
        async with serving("websockets", echo, max_connections=3) as (uri, server):
            port = server.sockets[0].getsockname()[1]
            partial = []
            for _ in range(3):
                _reader, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.write(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # never finished
                await writer.drain()
                partial.append(writer)
            await asyncio.sleep(0.1)
            with pytest.raises(InvalidStatus) as refused:
                await handshake(uri)
            for writer in partial:
                writer.transport.abort()
            async with asyncio.timeout(10):
                while True:
                    try:
                        ws = await handshake(uri)
                    except InvalidStatus:
                        await asyncio.sleep(0.02)
                        continue
                    await ws.close()
                    break
            return refused.value.response.status_code

    assert run(main()) == 503


def test_shutdown_is_bounded_when_a_peer_never_closes(run: Any) -> None:
    """A peer that completed the handshake and never answers a close frame
    (it reads nothing) keeps the server's shutdown waiting no longer than the
    close timeout: 2 s by default, not websockets' 10 s."""

    async def main() -> float:
        async with serving("websockets", echo) as (_uri, server):
            port = server.sockets[0].getsockname()[1]
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(
                b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: signedws.v1\r\n\r\n"
            )
            async with asyncio.timeout(10):
                response = await reader.readuntil(b"\r\n\r\n")
            assert response.startswith(b"HTTP/1.1 101")
            start = time.monotonic()
            server.close()
            # A coarse bound: three times the close timeout (base: 10 s and more).
            async with asyncio.timeout(6):
                await server.wait_closed()
            writer.transport.abort()
            return time.monotonic() - start

    run(main(), timeout=30)


@pytest.mark.parametrize("kind", KINDS)
def test_one_principal_holds_at_most_its_connections(
    kind: str, run: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """With max_connections_per_principal=2, mallory's third connection is
    closed with 4503 at its first frame and logged server_busy; alice still
    gets in; a slot mallory gives back can be taken again."""
    caplog.set_level(logging.WARNING, logger="signedws")

    async def signed(uri: str, subject: str) -> tuple[ClientConnection, Signer]:
        ws = await ws_connect(uri, subprotocols=["signedws.v1"])  # type: ignore[list-item]
        hello = await ws.recv()
        assert isinstance(hello, bytes)
        token = HMAC_ISSUER.issue_token(subject=subject, now=time.time(), audiences=[AUDIENCE])
        signer = Signer(token, decode_hello(hello), now=time.time())
        await ws.send(signer.sign(f"hi from {subject}", now=time.time()))
        return ws, signer

    async def echoed(ws: ClientConnection, signer: Signer) -> object:
        async with asyncio.timeout(10):
            while True:
                data = await ws.recv()
                assert isinstance(data, bytes)
                message = signer.verify(data)
                if message.payload is not None:
                    return message.payload

    async def closed_code(ws: ClientConnection) -> int | None:
        with contextlib.suppress(ConnectionClosed):
            async with asyncio.timeout(10):
                while True:
                    await ws.recv()
        return ws.close_code

    async def main() -> tuple[int | None, object, object]:
        async with serving(kind, echo, max_connections_per_principal=2) as (uri, _):
            first = await signed(uri, "mallory")
            second = await signed(uri, "mallory")
            assert await echoed(*first) == "hi from mallory"
            assert await echoed(*second) == "hi from mallory"
            third, _ = await signed(uri, "mallory")
            code = await closed_code(third)
            alice = await signed(uri, "alice")
            from_alice = await echoed(*alice)
            await first[0].close()
            async with asyncio.timeout(10):
                while True:  # the slot is given back once the server saw the close
                    again = await signed(uri, "mallory")
                    try:
                        from_again = await echoed(*again)
                        break
                    except ConnectionClosed:
                        await asyncio.sleep(0.02)
            for ws in (second[0], alice[0], again[0]):
                await ws.close()
            return code, from_alice, from_again

    code, from_alice, from_again = run(main(), timeout=40)
    assert code == 4503
    assert from_alice == "hi from alice"
    assert from_again == "hi from mallory"
    codes = [getattr(r, "signedws_code", None) for r in caplog.records]
    assert "server_busy" in codes
