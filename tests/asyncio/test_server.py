"""Tests for signedws.asyncio.server over real sockets on 127.0.0.1."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from typing import Any

import pytest
from aio_support import (
    AUDIENCE,
    ORIGIN,
    SERVER_KEYS,
    Recorder,
    certificate,
    closed_with,
    codes_logged,
    make_verifier,
    raw,
    running,
    signer_for,
    token,
)
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import InvalidStatus

from signedws import ServerMessage, UsageError
from signedws.asyncio import ServerConnection, connect, serve
from signedws.envelope import decode_hello


def test_handler_sees_verified_messages(run: Any) -> None:
    """The handler gets subject, issuer, scopes, counter, stream, seq and payload of
    verified frames; its replies reach the client as authenticated frames."""

    async def main() -> None:
        async with running(Recorder(echo=True)) as srv:
            credential = token("alice", scopes=["chat"])
            async with connect(srv.uri, credential, audience=AUDIENCE) as client:
                await client.send("hello")
                await client.send(b"\x00bytes")
                assert await client.recv() == "hello"
                assert await client.recv() == b"\x00bytes"
                await client.drain()
            first, second = srv.recorder.messages
            assert (first.subject, first.issuer, first.scopes) == ("alice", "auth", {"chat"})
            assert (first.payload, second.payload) == ("hello", b"\x00bytes")
            assert (first.seq, second.seq) == (1, 2)
            assert first.stream == second.stream == client.stream
            assert first.credential_id == credential.cid
            assert second.counter > first.counter

    run(main())


def test_ed25519_client_and_signed_server_frames(run: Any) -> None:
    """An ed25519 client is verified, and the server's frames are signed with the
    server key, which the client checks."""

    async def main() -> None:
        async with running(Recorder(echo=True)) as srv:
            async with connect(
                srv.uri, certificate("bob"), audience=AUDIENCE, server_keys=SERVER_KEYS
            ) as client:
                for i in range(5):
                    await client.send(f"m{i}")
                assert [await client.recv() for _ in range(5)] == [f"m{i}" for i in range(5)]
            assert srv.recorder.payloads("bob") == [f"m{i}" for i in range(5)]

    run(main())


def test_hello_is_the_first_message(run: Any) -> None:
    """The server's first message is a hello naming its audience and limits."""

    async def main() -> None:
        async with running() as srv, raw(srv.uri) as (ws, data):
            hello = decode_hello(data)
            assert ws.subprotocol == "signedws.v1"
            assert hello.audience == AUDIENCE
            assert hello.max_frame_size == srv.verifier.max_frame_size
            assert len(hello.nonce) == 64

    run(main())


def test_each_connection_gets_a_new_nonce(run: Any) -> None:
    """Two connections get different nonces."""

    async def main() -> None:
        async with running() as srv, raw(srv.uri) as (_, first), raw(srv.uri) as (_, second):
            assert decode_hello(first).nonce != decode_hello(second).nonce

    run(main())


def test_subprotocol_is_required(run: Any, caplog: pytest.LogCaptureFixture) -> None:
    """A client that does not offer signedws.v1 is refused with HTTP 400, and logged."""
    caplog.set_level(logging.INFO, logger="signedws")

    async def main() -> None:
        async with running() as srv:
            with pytest.raises(InvalidStatus) as info:
                async with ws_connect(srv.uri):
                    pass
            assert info.value.response.status_code == 400

    run(main())
    assert any("no signedws.v1 subprotocol" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(
    ("origin", "allow_no_origin", "status"),
    [
        (ORIGIN, False, None),
        ("https://evil.example", False, 403),
        ("https://evil.example", True, 403),
        (None, False, 403),
        (None, True, None),
        ("https://sub.app.signedws.test", False, None),
    ],
)
def test_origin_allow_list(
    run: Any, origin: str | None, allow_no_origin: bool, status: int | None
) -> None:
    """Origins outside the allow-list get HTTP 403 before the upgrade; clients
    without an Origin get in only if allow_no_origin."""
    origins = [ORIGIN, re.compile(r"https://[a-z]+\.app\.signedws\.test")]

    async def main() -> None:
        async with running(origins=origins, allow_no_origin=allow_no_origin) as srv:
            if status is None:
                async with raw(srv.uri, origin=origin) as (_, hello):
                    assert decode_hello(hello).audience == AUDIENCE
            else:
                with pytest.raises(InvalidStatus) as info:
                    async with raw(srv.uri, origin=origin):
                        pass
                assert info.value.response.status_code == status

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


def test_first_frame_timeout(run: Any, caplog: pytest.LogCaptureFixture) -> None:
    """A connection that sends no valid frame in time is closed with 4408."""
    caplog.set_level(logging.INFO, logger="signedws")

    async def main() -> None:
        async with running(first_frame_timeout=0.1) as srv, raw(srv.uri) as (ws, _):
            assert await closed_with(ws) == 4408

    run(main())
    assert codes_logged(caplog) == ["first_frame_timeout"]


def test_idle_timeout(run: Any, caplog: pytest.LogCaptureFixture) -> None:
    """After a valid frame, a connection idle for idle_timeout is closed with 4408."""
    caplog.set_level(logging.INFO, logger="signedws")

    async def main() -> None:
        async with running(idle_timeout=0.1) as srv, raw(srv.uri) as (ws, hello):
            await ws.send(signer_for(hello, token()).sign("hi", now=time.time()))
            assert await closed_with(ws) == 4408
            assert srv.recorder.payloads() == ["hi"]

    run(main())
    assert codes_logged(caplog) == ["idle_timeout"]


def test_max_connections(run: Any, caplog: pytest.LogCaptureFixture) -> None:
    """Beyond max_connections the handshake is refused with HTTP 503
    (server_busy); a slot frees when a connection closes."""
    caplog.set_level(logging.INFO, logger="signedws")

    async def main() -> None:
        async with running(max_connections=2) as srv:
            async with raw(srv.uri), raw(srv.uri):
                with pytest.raises(InvalidStatus) as info:
                    async with raw(srv.uri):
                        pass
                assert info.value.response.status_code == 503
            async with asyncio.timeout(5):
                while True:  # the slots free when the TCP connections are gone
                    try:
                        async with raw(srv.uri):
                            break
                    except InvalidStatus:
                        await asyncio.sleep(0.01)

    run(main())
    assert "server_busy" in codes_logged(caplog)


def test_rejection_log_line(run: Any, caplog: pytest.LogCaptureFixture) -> None:
    """One WARNING on signedws.server per rejection, naming the connection id, the
    code, its number and the core's detail."""
    caplog.set_level(logging.DEBUG, logger="signedws")

    async def main() -> str:
        async with running() as srv, raw(srv.uri) as (ws, hello):
            frame = signer_for(hello, token()).sign("hi", now=time.time())
            await ws.send(frame[:-1] + bytes([frame[-1] ^ 1]))
            assert await closed_with(ws) == 4401
            return str(srv.recorder.connections[0].id)

    connection_id = run(main())
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1
    (record,) = warnings
    assert record.name == "signedws.server"
    assert record.getMessage().startswith(
        f"rejected connection={connection_id} code=bad_tag number=400 detail=cid="
    )


def test_pure_acks_are_coalesced(run: Any) -> None:
    """A burst of frames is acknowledged by fewer pure acks, the last covering all."""

    async def main() -> None:
        async with running(ack_delay=0.2) as srv, raw(srv.uri) as (ws, hello):
            signer = signer_for(hello, token())
            frames = [signer.sign(f"m{i}", now=time.time()) for i in range(10)]
            for frame in frames:
                await ws.send(frame)
            acks: list[ServerMessage] = []
            while not acks or acks[-1].ack < 10:
                data = await ws.recv()
                assert isinstance(data, bytes)
                acks.append(signer.verify(data, now=time.time()))
            assert all(ack.payload is None for ack in acks)
            assert len(acks) < 10
            assert signer.acked == 10

    run(main())


def test_acks_ride_on_handler_frames(run: Any) -> None:
    """With ack_delay None, no pure acks are sent; handler frames carry the ack
    of what the handler is done with: a reply sent while handling frame 3
    acknowledges up to 2 (SPEC.md §7.3)."""

    async def hook(connection: ServerConnection, message: Any) -> None:
        if message.payload == "reply":
            await connection.send("done")

    async def main() -> None:
        async with (
            running(Recorder(hook=hook), ack_delay=None) as srv,
            raw(srv.uri) as (ws, hello),
        ):
            signer = signer_for(hello, token())
            for payload in ("a", "b", "reply"):
                await ws.send(signer.sign(payload, now=time.time()))
            data = await ws.recv()
            assert isinstance(data, bytes)
            message = signer.verify(data, now=time.time())
            assert (message.payload, message.ack) == ("done", 2)

    run(main())


def test_control_frames_are_not_delivered(run: Any) -> None:
    """Frames with a nil payload are verified and acknowledged, never delivered."""

    async def main() -> None:
        async with running() as srv, raw(srv.uri) as (ws, hello):
            signer = signer_for(hello, token())
            await ws.send(signer.sign(None, now=time.time()))
            await ws.send(signer.sign("data", now=time.time()))
            while signer.acked < 2:
                data = await ws.recv()
                assert isinstance(data, bytes)
                signer.verify(data, now=time.time())
            assert srv.recorder.payloads() == ["data"]

    run(main())


def test_resent_messages_are_delivered_once(run: Any) -> None:
    """A (stream, seq) already delivered is dropped when resent on a new
    connection (SPEC.md §7.3); with dedupe off it is delivered again."""

    async def scenario(dedupe: bool) -> list[object]:
        async with running(dedupe=dedupe) as srv:
            credential = token()
            async with raw(srv.uri) as (ws, hello):
                first = signer_for(hello, credential)
                for i in (1, 2, 3):
                    await ws.send(first.sign(f"m{i}", now=time.time()))
                await srv.recorder.wait_for(lambda: len(srv.recorder.messages) == 3)
            async with raw(srv.uri) as (ws, hello):
                second = signer_for(hello, credential, stream=first.stream)
                for i in (1, 2, 3):
                    await ws.send(second.sign(f"m{i}", now=time.time(), seq=i))
                await ws.send(second.sign("m4", now=time.time(), seq=4))
                while second.acked < 4:
                    data = await ws.recv()
                    assert isinstance(data, bytes)
                    second.verify(data, now=time.time())
            return srv.recorder.payloads()

    assert run(scenario(True)) == ["m1", "m2", "m3", "m4"]
    assert run(scenario(False)) == ["m1", "m2", "m3", "m1", "m2", "m3", "m4"]


def test_handler_send_waits_for_the_first_frame(run: Any) -> None:
    """A handler may send at once: the frame goes out after the client's first
    accepted frame, which gives it a key."""

    async def greeter(connection: ServerConnection) -> None:
        await connection.send("welcome")
        async for _ in connection:
            pass

    async def main() -> None:
        async with serve(
            greeter, "127.0.0.1", 0, verifier=make_verifier(), origins=[], allow_no_origin=True
        ) as server:
            uri = f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}"
            async with connect(uri, token(), audience=AUDIENCE) as client:
                assert await client.recv() == "welcome"

    run(main())


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


def test_ed25519_frames_are_verified_off_the_loop(run: Any) -> None:
    """Ed25519 frames go to the executor, mac frames do not; order is kept."""
    executor = CountingExecutor()

    async def main() -> None:
        async with running(executor=executor) as srv:
            async with connect(
                srv.uri, certificate("bob"), audience=AUDIENCE, server_keys=SERVER_KEYS
            ) as client:
                for i in range(20):
                    await client.send(f"e{i}")
                await client.drain()
            submitted = executor.submitted
            async with connect(srv.uri, token("alice"), audience=AUDIENCE) as client:
                for i in range(20):
                    await client.send(f"m{i}")
                await client.drain()
            assert executor.submitted == submitted
            assert srv.recorder.payloads("bob") == [f"e{i}" for i in range(20)]
            # 20 messages and at least the opening control frame.
            assert submitted >= 21

    try:
        run(main())
    finally:
        executor.shutdown()


def test_ed25519_connection_without_server_key(run: Any, caplog: pytest.LogCaptureFixture) -> None:
    """Without a server key, ed25519 messages are still delivered, the missing
    acknowledgements are logged once, and handler sends fail with UsageError."""
    caplog.set_level(logging.INFO, logger="signedws")
    errors: list[Exception] = []

    async def hook(connection: ServerConnection, message: Any) -> None:
        try:
            await connection.send("reply")
        except UsageError as exc:
            errors.append(exc)

    async def main() -> None:
        async with running(Recorder(hook=hook), server_key=None) as srv:
            client = await connect(
                srv.uri, certificate(), audience=AUDIENCE, server_keys=SERVER_KEYS
            )
            await client.send("one")
            await client.send("two")
            await srv.recorder.wait_for(lambda: len(srv.recorder.messages) == 2)
            async with asyncio.timeout(5):
                while not warnings():
                    await asyncio.sleep(0.01)
            assert client.pending == 2
            await client.close()

    def warnings() -> list[str]:
        return [r.getMessage() for r in caplog.records if "no server_key" in r.getMessage()]

    run(main())
    assert len(errors) == 2
    assert len(warnings()) == 1


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


def test_acks_wait_for_the_handler(run: Any) -> None:
    """A verified frame is not acknowledged while the handler has not taken it:
    a server that stopped then would lose a frame its client considers safe."""
    release = asyncio.Event()

    async def hook(connection: ServerConnection, message: Any) -> None:
        if message.payload == "slow":
            await release.wait()

    async def main() -> None:
        async with (
            running(Recorder(hook=hook), ack_delay=0.01) as srv,
            raw(srv.uri) as (ws, hello),
        ):
            signer = signer_for(hello, token())
            for payload in ("a", "slow", "queued"):
                await ws.send(signer.sign(payload, now=time.time()))
            first = signer.verify(await asyncio.wait_for(ws.recv(), 5), now=time.time())
            assert first.ack == 1  # "a" done; "slow" held; "queued" waiting
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(ws.recv(), 0.2)
            release.set()
            later = signer.verify(await asyncio.wait_for(ws.recv(), 5), now=time.time())
            assert later.ack == 3

    run(main())
