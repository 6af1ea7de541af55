"""Tests for signedws.asyncio.server over real sockets on 127.0.0.1: what is
particular to the websockets adapter. The behaviour every server shares (hello,
Origin, limits, acks, delivery, Ed25519 offload, ...) is tested once for all
servers in tests/servers/test_server_contract.py."""

from __future__ import annotations

import asyncio
import gc
import logging
import time
import weakref
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
    signer_for,
    token,
)
from websockets.asyncio.client import connect as ws_connect
from websockets.frames import Frame, Opcode

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


def test_fragmented_messages(run: Any, caplog: pytest.LogCaptureFixture) -> None:
    """A frame sent in fragments is joined and verified like a whole one, in
    order with the others; a fragmented text message is refused as malformed
    at its first fragment."""
    caplog.set_level(logging.INFO, logger="signedws")
    recorder = Recorder()

    async def main() -> None:
        async with running(recorder) as srv:
            async with raw(srv.uri) as (ws, hello):
                signer = signer_for(hello, token("alice"))
                first = signer.sign("one", now=time.time())
                await ws.send([first[:5], first[5:100], first[100:]])
                await ws.send(signer.sign("two", now=time.time()))
                third = signer.sign("three", now=time.time())
                await ws.send(iter([third[:1], third[1:]]))
                await ws.send(["not ", "a ", "frame"])
                assert await closed_with(ws) == 4400
            assert recorder.payloads("alice") == ["one", "two", "three"]

    run(main())
    assert codes_logged(caplog) == ["malformed"]


def test_frame_before_the_hello_is_refused(run: Any, caplog: pytest.LogCaptureFixture) -> None:
    """A frame that arrives with the handshake request, before the hello is
    sent, is held until the connection is set up and then refused (it cannot
    carry the connection's nonce); nothing is delivered."""
    caplog.set_level(logging.INFO, logger="signedws")
    recorder = Recorder()

    async def main() -> None:
        async with running(recorder) as srv:
            async with raw(srv.uri) as (_, hello):  # another connection's nonce
                frame = signer_for(hello, token("alice")).sign("early", now=time.time())
            port = int(srv.uri.rsplit(":", 1)[1].split("/")[0])
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            request = (
                "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: signedws.v1\r\n\r\n"
            )
            wire = Frame(Opcode.BINARY, frame).serialize(mask=True)
            writer.write(request.encode() + wire)  # one write: one read on the server
            # The response, the hello, then the last thing the server sends: a
            # close frame (0x88, its length, code 4401 and reason "unauthorized").
            close = b"\x88\x0e" + (4401).to_bytes(2, "big") + b"unauthorized"
            received = b""
            async with asyncio.timeout(5):
                while not received.endswith(close):
                    chunk = await reader.read(4096)
                    assert chunk, received
                    received += chunk
            writer.close()
            assert received.startswith(b"HTTP/1.1 101")
            assert recorder.payloads("alice") == []

    run(main())
    assert codes_logged(caplog) == ["nonce_mismatch"]


def test_rejected_connections_are_freed_without_the_cycle_collector(run: Any) -> None:
    """A connection refused for garbage holds no reference cycle through its
    rejection (its traceback, or that of the msgpack error it came from, would
    hold the frames of websockets' reader and its read buffer): with the cycle
    collector off, the signedws connection objects are freed once closed."""
    refs: list[weakref.ref[ServerConnection]] = []

    async def handler(connection: ServerConnection) -> None:
        refs.append(weakref.ref(connection))
        async for _ in connection:
            pass

    async def main() -> None:
        async with serve(
            handler, "127.0.0.1", 0, verifier=make_verifier(), origins=[], allow_no_origin=True
        ) as server:
            port = server.sockets[0].getsockname()[1]
            for garbage in (b"\xc1", b"\x9a\x01" + bytes(30), b"\x93\x01\x02\x03" + bytes(9)):
                async with ws_connect(
                    f"ws://127.0.0.1:{port}", subprotocols=["signedws.v1"]
                ) as ws:
                    await ws.recv()
                    await ws.send(garbage)
                    assert await closed_with(ws) == 4400
            await asyncio.sleep(0.1)

    gc.collect()
    gc.disable()
    try:
        run(main())
        assert len(refs) == 3
        assert [ref() for ref in refs] == [None, None, None]
    finally:
        gc.enable()


def test_connection_properties_and_process_response(run: Any) -> None:
    """The handler's connection exposes its id, request, address and principal;
    a user process_response hook runs after signedws' own."""
    seen: list[int] = []

    async def process_response(ws: Any, request: Any, response: Any) -> None:
        seen.append(response.status_code)

    async def hook(connection: ServerConnection, message: Any) -> None:
        assert connection.principal == ("auth", "alice")
        websocket = connection.transport.websocket  # type: ignore[union-attr]
        assert websocket.request is not None
        assert websocket.request.headers["Sec-WebSocket-Protocol"] == "signedws.v1"
        assert websocket.remote_address[0] == "127.0.0.1"
        assert connection.address == "127.0.0.1"
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
