"""The picows server's own behaviour, beyond the contract suite (which runs
against it in test_server_contract.py): what picows leaves to its listener
(fragmented messages, their size, the closing handshake, shutdown) and the
handshake checks the listener factory makes. Real picows servers on
127.0.0.1, attacked with plain websockets clients.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from typing import Any

import pytest
from aio_support import ORIGIN, Recorder, closed_with, codes_logged, raw, signer_for, token
from server_support import start
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from signedws import UsageError
from signedws.asyncio.picows import serve


def test_fragmented_message_is_joined(run: Any) -> None:
    """A binary message sent in fragments reaches the handler whole and verified."""

    async def main() -> list[object]:
        async with start("picows") as srv, raw(srv.uri) as (ws, hello):
            signer = signer_for(hello, token())
            frame = signer.sign("in three parts", now=time.time())
            third = len(frame) // 3
            await ws.send([frame[:third], frame[third : 2 * third], frame[2 * third :]])
            await ws.send(signer.sign("whole", now=time.time()))
            await srv.recorder.wait_for(lambda: len(srv.recorder.messages) == 2)
            return srv.recorder.payloads()

    assert run(main()) == ["in three parts", "whole"]


def test_fragmented_message_over_the_limit(run: Any, caplog: pytest.LogCaptureFixture) -> None:
    """Fragments each under max_frame_size that join to more are refused with
    1009 and logged as frame_too_large: the limit is per message, as on
    websockets (picows bounds each frame only)."""
    caplog.set_level(logging.INFO, logger="signedws")

    async def main() -> int | None:
        async with start("picows") as srv, raw(srv.uri) as (ws, _):
            part = bytes(srv.verifier.max_frame_size // 2 + 1)
            await ws.send([part, part, part])
            return await closed_with(ws)

    assert run(main()) == 1009
    assert codes_logged(caplog) == ["frame_too_large"]


def test_fragmented_text_message_is_malformed(run: Any, caplog: pytest.LogCaptureFixture) -> None:
    """A fragmented text message is refused at its first fragment (4400)."""
    caplog.set_level(logging.INFO, logger="signedws")

    async def main() -> int | None:
        async with start("picows") as srv, raw(srv.uri) as (ws, _):
            await ws.send(["not ", "a frame"])
            return await closed_with(ws)

    assert run(main()) == 4400
    assert codes_logged(caplog) == ["malformed"]


def test_frames_before_the_handler_attaches_are_kept(run: Any) -> None:
    """Messages a client writes right after the upgrade (they cannot carry the
    nonce, so the first is refused) are held until the connection attaches,
    then refused like any other, once."""

    async def main() -> tuple[int | None, list[object]]:
        async with start("picows") as srv:
            async with ws_connect(srv.uri, subprotocols=["signedws.v1"]) as ws:  # type: ignore[list-item]
                await ws.send(b"\x92\x01\x02")
                await ws.send(b"\x92\x01\x03")
                code = await closed_with(ws)
            return code, srv.recorder.payloads()

    code, delivered = run(main())
    assert code == 4400
    assert delivered == []


def test_client_close_is_answered(run: Any) -> None:
    """A client's closing handshake completes with its code echoed; the handler's
    iteration ends."""

    async def main() -> tuple[int | None, int]:
        async with start("picows") as srv:
            async with raw(srv.uri) as (ws, hello):
                await ws.send(signer_for(hello, token()).sign("hi", now=time.time()))
                await srv.recorder.wait_for(lambda: len(srv.recorder.messages) == 1)
                await ws.close(4000, "bye")
                assert ws.close_code == 4000
            connection = srv.recorder.connections[0]
            await asyncio.wait_for(connection.wait_closed(), 5)
            return ws.close_code, len(srv.recorder.messages)

    assert run(main()) == (4000, 1)


def test_server_shutdown_closes_with_1001(run: Any) -> None:
    """Leaving ``async with serve(...)`` closes every connection with 1001
    (going away) and waits for the handlers."""
    ended: list[bool] = []

    async def handler(connection: Any) -> None:
        try:
            async for _ in connection:
                pass
        finally:
            ended.append(True)

    async def main() -> int | None:
        from aio_support import make_verifier

        async with serve(
            handler,
            "127.0.0.1",
            0,
            verifier=make_verifier(),
            origins=[ORIGIN],
            allow_no_origin=True,
        ) as server:
            port = server.sockets[0].getsockname()[1]
            ws = await ws_connect(f"ws://127.0.0.1:{port}", subprotocols=["signedws.v1"])  # type: ignore[list-item]
            await ws.recv()
        with contextlib.suppress(ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 5)
        return ws.close_code

    assert run(main()) == 1001
    assert ended == [True]


def test_backpressure_pauses_reading(run: Any) -> None:
    """While the handler does not read, at most max_queue messages (plus what
    one read held) are queued: the server stops reading, and the client's
    writes back up; once the handler reads, every message arrives, in order."""
    release = asyncio.Event()

    async def slow(connection: Any, message: Any) -> None:
        if message.payload == "m0":
            await release.wait()

    async def main() -> tuple[int, list[object]]:
        recorder = Recorder(hook=slow)
        async with start("picows", recorder, max_queue=4) as srv, raw(srv.uri) as (ws, hello):
            signer = signer_for(hello, token())
            payload = "x" * 4000
            frames = [signer.sign(f"m{i}", now=time.time()) for i in range(1)]
            frames += [signer.sign(payload, now=time.time()) for _ in range(400)]
            sending = asyncio.ensure_future(asyncio.gather(*(ws.send(f) for f in frames)))
            await recorder.wait_for(lambda: len(recorder.messages) >= 1)
            await asyncio.sleep(0.3)
            (connection,) = recorder.connections
            queued = len(connection._messages)
            release.set()
            await sending
            await recorder.wait_for(lambda: len(recorder.messages) == 401, timeout=10)
            return queued, recorder.payloads()

    queued, payloads = run(main(), timeout=30)
    assert queued < 100  # 1.6 MB written; a read holds far less
    assert payloads == ["m0", *["x" * 4000] * 400]


def test_connections_share_picows_logger_and_response(
    run: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """Memory per idle connection (issue 16): picows logs through one
    `logging.LoggerAdapter` over ``picows.server`` (given a Logger, it makes a
    child Logger per connection, ``picows.server.<fd>``), and every
    connection's 101 response is one object, whose Sec-WebSocket-Accept is set
    per handshake (each websockets client checks its own)."""
    caplog.set_level(logging.INFO, logger="picows")

    async def main() -> bool:
        async with (
            start("picows") as srv,
            raw(srv.uri) as (first, first_hello),
            raw(srv.uri) as (second, second_hello),
        ):
            for ws, hello in ((first, first_hello), (second, second_hello)):
                await ws.send(signer_for(hello, token()).sign("hi", now=time.time()))
            await srv.recorder.wait_for(lambda: len(srv.recorder.messages) == 2)
            listeners: list[Any] = [c.transport for c in srv.recorder.connections]
            one, two = (listener.websocket.response for listener in listeners)
            return one is two

    assert run(main())
    accepted = [r for r in caplog.records if r.getMessage().startswith("New connection accepted")]
    assert len(accepted) == 2
    assert {r.name for r in accepted} == {"picows.server"}


def test_logger_name_is_wrapped_once() -> None:
    """``logger_name`` as picows resolves it (None: ``picows.server``; a str:
    ``picows.<str>``; a Logger), in one `logging.LoggerAdapter`; an adapter
    given is used as it is."""
    from signedws.asyncio.picows import _shared_logger

    given = logging.LoggerAdapter(logging.getLogger("mine"))
    assert _shared_logger(given) is given
    for name, expected in ((None, "picows.server"), ("edge", "picows.edge")):
        adapter = _shared_logger(name)
        assert isinstance(adapter, logging.LoggerAdapter)
        assert adapter.logger is logging.getLogger(expected)
    logger = logging.getLogger("app.ws")
    adapter = _shared_logger(logger)
    assert isinstance(adapter, logging.LoggerAdapter)
    assert adapter.logger is logger


# -- the handshake ----------------------------------------------------------------------


def test_invalid_upgrade_is_refused_and_holds_no_slot(
    run: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """A request that is not a valid WebSocket upgrade gets HTTP 400 and takes
    no connection slot: with max_connections=1, a real client still gets in."""
    caplog.set_level(logging.INFO, logger="signedws")

    async def main() -> bytes:
        async with start("picows", max_connections=1) as srv:
            host, port = re.match(r"ws://([\d.]+):(\d+)", srv.uri).groups()  # type: ignore[union-attr]
            for _ in range(3):
                reader, writer = await asyncio.open_connection(host, int(port))
                writer.write(
                    b"GET / HTTP/1.1\r\nHost: x\r\nSec-WebSocket-Protocol: signedws.v1\r\n\r\n"
                )
                status = await reader.readline()
                writer.close()
                await writer.wait_closed()
            async with raw(srv.uri) as (_, hello):
                assert hello
            return status

    assert run(main()).startswith(b"HTTP/1.1 400")
    refused = [r.getMessage() for r in caplog.records if "refused handshake" in r.getMessage()]
    assert len(refused) == 3
    assert all("status=400 reason=invalid upgrade request" in r for r in refused)


def test_over_the_limit_logs_server_busy(run: Any, caplog: pytest.LogCaptureFixture) -> None:
    """The 503 beyond max_connections is logged as server_busy, with the count."""
    caplog.set_level(logging.INFO, logger="signedws")

    async def main() -> int:
        async with start("picows", max_connections=1) as srv, raw(srv.uri):
            with pytest.raises(InvalidStatus) as info:
                async with raw(srv.uri):
                    pass
            return info.value.response.status_code

    assert run(main()) == 503
    assert codes_logged(caplog) == ["server_busy"]
    assert any("1 connections, limit 1" in r.getMessage() for r in caplog.records)


def test_reserved_keywords() -> None:
    """signedws sets picows' max_frame_size itself."""
    from aio_support import make_verifier

    async def handler(connection: Any) -> None:
        pass

    with pytest.raises(UsageError, match="max_frame_size"):
        serve(
            handler, verifier=make_verifier(), origins=[], allow_no_origin=True, max_frame_size=10
        )


def test_health_probes_and_draining(run: Any, caplog: pytest.LogCaptureFixture) -> None:
    """With ``health``, /healthz and /readyz are answered on the WebSocket
    port without a log line; while draining, /readyz and handshakes get 503
    (counted as refused "draining")."""
    from signedws.health import Health
    from signedws.metrics import NullMetrics

    class Counting(NullMetrics):
        def __init__(self) -> None:
            super().__init__()
            self.refusals: list[str] = []

        def refused(self, reason: str) -> None:
            self.refusals.append(reason)

    caplog.set_level(logging.INFO, logger="signedws")
    health = Health()
    metrics = Counting()

    async def get(uri: str, path: str) -> bytes:
        host, port = re.match(r"ws://([\d.]+):(\d+)", uri).groups()  # type: ignore[union-attr]
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        answer = await asyncio.wait_for(reader.read(), 5)
        writer.close()
        await writer.wait_closed()
        return answer

    async def main() -> tuple[list[bytes], int]:
        async with start("picows", health=health, metrics=metrics) as srv:
            answers = [await get(srv.uri, "/healthz"), await get(srv.uri, "/readyz")]
            async with raw(srv.uri) as (_, hello):
                assert hello
            health.draining = True
            answers.append(await get(srv.uri, "/readyz"))
            with pytest.raises(InvalidStatus) as info:
                async with raw(srv.uri):
                    pass
            return answers, info.value.response.status_code

    answers, status = run(main())
    assert answers[0].startswith(b"HTTP/1.1 200")
    assert answers[0].endswith(b"ok\n")
    assert answers[1].startswith(b"HTTP/1.1 200")
    assert answers[1].endswith(b"ready\n")
    assert answers[2].startswith(b"HTTP/1.1 503")
    assert b"draining" in answers[2]
    assert status == 503
    assert metrics.refusals == ["draining"]
    assert "refused handshake" not in caplog.text
