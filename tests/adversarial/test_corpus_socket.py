"""The hostile-input corpus over a real socket: a `signedws.asyncio.serve`
server and a `signedws.asyncio.picows.serve` server on 127.0.0.1, each
attacked with a plain `websockets` client.

For each case the attacker reads the hello, sends the case's honest prelude,
then the hostile frame; the server must close with the code's close code (1009
for an oversize frame, which websockets refuses while reading its header,
SPEC.md §9), log exactly that one rejection with the case's code, and deliver
nothing but the prelude to the handler. The server's clock is the corpus's
fixed clock, so credentials and timestamps mean the same as in the core run.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

import figures
import pytest
from corpus import CASES, Case, Conn, make_verifier
from helpers import SERVER_KEY, SERVER_KID, FakeClock
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed

from signedws import Message, ServerKey, decode_hello
from signedws.asyncio import ServerConnection, serve
from signedws.asyncio.picows import serve as picows_serve
from signedws.errors import Code

SOCKET_CASES = [pytest.param(c, id=c.name) for c in CASES]

#: The servers attacked: the websockets adapter and the picows adapter.
SERVERS: dict[str, Callable[..., Any]] = {"websockets": serve, "picows": picows_serve}


@pytest.fixture(params=sorted(SERVERS))
def server(request: pytest.FixtureRequest) -> Callable[..., Any]:
    """Each server adapter's ``serve`` in turn."""
    return SERVERS[request.param]


async def attack(
    case: Case, serve: Callable[..., Any] = serve
) -> tuple[int | None, list[Message]]:
    """Play ``case`` against a fresh server made by ``serve``; the close code
    and what the handler received."""
    clock = FakeClock()
    delivered: list[Message] = []

    async def handler(connection: ServerConnection) -> None:
        async for message in connection:
            delivered.append(message)

    async with serve(
        handler,
        "127.0.0.1",
        0,
        verifier=make_verifier(case.setup),
        origins=[],
        allow_no_origin=True,
        server_key=ServerKey(SERVER_KID, SERVER_KEY),
        clock=lambda: clock.now,
        first_frame_timeout=10,
    ) as server:
        port = server.sockets[0].getsockname()[1]
        async with ws_connect(
            f"ws://127.0.0.1:{port}",
            subprotocols=["signedws.v1"],  # type: ignore[list-item]
            compression=None,
            max_size=None,
        ) as ws:
            hello = await ws.recv()
            assert isinstance(hello, bytes)
            conn = Conn(decode_hello(hello).nonce, clock, case.setup.scheme)
            for ctr in case.setup.prelude:
                await ws.send(conn.frame(ctr=ctr))
            if case.setup.advance:
                async with asyncio.timeout(5):
                    while len(delivered) < len(case.setup.prelude):
                        await asyncio.sleep(0.001)
                clock.advance(case.setup.advance)
            data = case.build(conn)
            with contextlib.suppress(ConnectionClosed):
                await ws.send(data)
            with contextlib.suppress(ConnectionClosed):
                async with asyncio.timeout(10):
                    while True:
                        await ws.recv()
            return ws.close_code, delivered


def logged_codes(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The rejection codes the server logged (one line per rejection)."""
    return [
        str(record.signedws_code)
        for record in caplog.records
        if record.name == "signedws.server" and hasattr(record, "signedws_code")
    ]


@pytest.mark.parametrize("case", SOCKET_CASES)
def test_case_over_a_socket_closes_with_its_code(
    case: Case,
    server: Callable[..., Any],
    run: Callable[..., Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The server closes with the case's close code, logs its rejection code
    once, and delivers only the honest prelude."""
    caplog.set_level(logging.WARNING, logger="signedws.server")
    close_code, delivered = run(attack(case, server), timeout=30)
    expected = 1009 if case.expected is Code.FRAME_TOO_LARGE else case.expected.close_code
    assert close_code == expected, (case.name, close_code)
    assert logged_codes(caplog) == [case.expected.id]
    assert len(delivered) == len(case.setup.prelude)
    figures.add("input.socket_runs", 1, "corpus cases played over a real socket", section="input")


def test_text_message_is_malformed_over_a_socket(
    server: Callable[..., Any], run: Callable[..., Any], caplog: pytest.LogCaptureFixture
) -> None:
    """A text WebSocket message (frames are binary) closes with 4400 `malformed`."""
    caplog.set_level(logging.WARNING, logger="signedws.server")
    text = Case("text_message", "types", Code.MALFORMED, lambda c: b"")

    async def main() -> int | None:
        clock = FakeClock()

        async def handler(connection: ServerConnection) -> None:
            async for _ in connection:
                pass

        async with server(
            handler,
            "127.0.0.1",
            0,
            verifier=make_verifier(text.setup),
            origins=[],
            allow_no_origin=True,
            clock=lambda: clock.now,
        ) as listening:
            port = listening.sockets[0].getsockname()[1]
            uri = f"ws://127.0.0.1:{port}"
            async with ws_connect(uri, subprotocols=["signedws.v1"]) as ws:  # type: ignore[list-item]
                await ws.recv()
                await ws.send("not a frame")
                with contextlib.suppress(ConnectionClosed):
                    async with asyncio.timeout(10):
                        await ws.recv()
                return ws.close_code

    assert run(main()) == 4400
    assert logged_codes(caplog) == ["malformed"]
    figures.add("input.socket_runs", 1, "corpus cases played over a real socket", section="input")
