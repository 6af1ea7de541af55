"""Tests for signedws.asyncio.server over real sockets on 127.0.0.1: what is
particular to the websockets adapter. The behaviour every server shares (hello,
Origin, limits, acks, delivery, Ed25519 offload, ...) is tested once for all
servers in tests/servers/test_server_contract.py."""

from __future__ import annotations

import logging
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from typing import Any

import pytest
from aio_support import (
    AUDIENCE,
    Recorder,
    closed_with,
    codes_logged,
    make_verifier,
    raw,
    running,
    token,
)

from signedws import UsageError
from signedws.asyncio import ServerConnection, connect, serve
from signedws.envelope import decode_hello


def test_each_connection_gets_a_new_nonce(run: Any) -> None:
    """Two connections get different nonces."""

    async def main() -> None:
        async with running() as srv, raw(srv.uri) as (_, first), raw(srv.uri) as (_, second):
            assert decode_hello(first).nonce != decode_hello(second).nonce

    run(main())


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"origins": [], "allow_no_origin": False}, "accept nobody"),
        ({"origins": [None]}, "allow_no_origin"),
        ({"origins": [], "allow_no_origin": True, "max_size": 10}, "max_size"),
        ({"origins": [], "allow_no_origin": True, "subprotocols": ["x"]}, "subprotocols"),
        ({"origins": [], "allow_no_origin": True, "max_connections": 0}, "max_connections"),
        ({"origins": [], "allow_no_origin": True, "idle_timeout": -1}, "idle_timeout"),
    ],
)
def test_serve_refuses_bad_configuration(kwargs: dict[str, Any], message: str) -> None:
    """serve refuses a server that would accept nobody, None in origins, reserved
    websockets keywords and invalid limits."""
    with pytest.raises(UsageError, match=message):
        serve(Recorder(), "127.0.0.1", 0, verifier=make_verifier(), **kwargs)


def test_text_message_is_malformed(run: Any, caplog: pytest.LogCaptureFixture) -> None:
    """A text message is refused as malformed (4400)."""
    caplog.set_level(logging.INFO, logger="signedws")

    async def main() -> None:
        async with running() as srv, raw(srv.uri) as (ws, _):
            await ws.send("not a frame")
            assert await closed_with(ws) == 4400

    run(main())
    assert codes_logged(caplog) == ["malformed"]


class CountingExecutor(Executor):
    """An executor that counts submissions and runs them on real threads."""

    def __init__(self) -> None:
        self.submitted = 0
        self._pool = ThreadPoolExecutor(max_workers=2)

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Future[Any]:
        self.submitted += 1
        return self._pool.submit(fn, *args, **kwargs)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self._pool.shutdown(wait=wait, cancel_futures=cancel_futures)


def test_connection_properties_and_process_response(run: Any) -> None:
    """The handler's connection exposes its id, request, address and principal;
    a user process_response hook runs after signedws' own."""
    seen: list[int] = []

    async def process_response(ws: Any, request: Any, response: Any) -> None:
        seen.append(response.status_code)

    async def hook(connection: ServerConnection, message: Any) -> None:
        assert connection.principal == ("auth", "alice")
        assert connection.request is not None
        assert connection.request.headers["Sec-WebSocket-Protocol"] == "signedws.v1"
        assert connection.remote_address[0] == "127.0.0.1"
        assert repr(connection) == (
            f"ServerConnection(id={connection.id}, principal=('auth', 'alice'))"
        )
        await connection.close()
        await connection.wait_closed()

    async def main() -> None:
        async with running(Recorder(hook=hook), process_response=process_response) as srv:
            async with connect(srv.uri, token("alice"), audience=AUDIENCE) as client:
                await client.send("hi")
                assert [p async for p in client] == []
            assert seen == [101]

    run(main())
