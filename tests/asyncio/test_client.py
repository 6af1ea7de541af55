"""Tests for signedws.asyncio.client over real sockets on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aio_support import (
    AUDIENCE,
    ISSUER,
    SERVER_KEYS,
    Recorder,
    certificate,
    codes_logged,
    make_verifier,
    running,
    token,
)
from websockets.asyncio.server import ServerConnection as WebSocket
from websockets.asyncio.server import serve as ws_serve

from signedws import Code, Ed25519PrivateKey, Message, Rejected, ServerSession, UsageError
from signedws.asyncio import (
    Backoff,
    ClientClosed,
    ConnectionLost,
    Refused,
    ServerConnection,
    connect,
)

FAST = Backoff(initial=0.01, maximum=0.05)


def test_concurrent_sends_get_increasing_counters(run: Any) -> None:
    """Many tasks sending at once: every message is delivered once, counters and
    seq strictly increase on the wire."""

    async def main() -> None:
        async with running() as srv:
            async with connect(srv.uri, token(), audience=AUDIENCE) as client:

                async def sender(task: int) -> None:
                    for i in range(5):
                        await client.send(f"{task}:{i}")

                await asyncio.gather(*(sender(t) for t in range(50)))
                await client.drain()
            messages = srv.recorder.messages
            assert sorted(m.payload for m in messages) == sorted(  # type: ignore[type-var]
                f"{t}:{i}" for t in range(50) for i in range(5)
            )
            counters = [m.counter for m in messages]
            assert counters == sorted(set(counters))
            assert [m.seq for m in messages] == list(range(1, 251))
            for task in range(50):  # each task's own order is kept
                mine = [m.payload for m in messages if str(m.payload).startswith(f"{task}:")]
                assert mine == [f"{task}:{i}" for i in range(5)]

    run(main())


def test_drop_before_ack_resends_and_delivers_once(run: Any) -> None:
    """Frames accepted but not acknowledged when the connection drops are resent
    on the next connection; the handler sees each message exactly once."""

    async def hook(connection: ServerConnection, message: Message) -> None:
        index = recorder.connections.index(connection)
        if index == 0 and len(recorder.per_connection[0]) == 5:
            connection.transport.websocket.transport.abort()  # type: ignore[union-attr] # before any ack left
        elif index > 0:
            await connection.send("ack me")

    recorder = Recorder(hook=hook)

    async def main() -> None:
        # A slow pure ack: the first connection drops before it is due and
        # its handler sends nothing, so no ack leaves before the drop. (A
        # handler frame sent while holding a message cannot ack that message:
        # acks cover only delivered frames, SPEC.md §7.3.)
        async with running(recorder, ack_delay=0.5) as srv:
            async with connect(srv.uri, token(), audience=AUDIENCE, backoff=FAST) as client:
                for i in range(1, 6):
                    await client.send(f"m{i}")
                await recorder.wait_for(lambda: len(recorder.connections) == 2)
                assert client.pending == 5  # nothing was acknowledged
                await client.send("m6")
                assert await client.recv() == "ack me"
                await client.drain()
                assert client.connections == 2
            assert recorder.payloads() == [f"m{i}" for i in range(1, 7)]
            assert [m.payload for m in recorder.per_connection[1]] == ["m6"]
            assert [m.seq for m in recorder.messages] == list(range(1, 7))

    run(main())


def test_repeated_drops_lose_nothing_and_duplicate_nothing(run: Any) -> None:
    """With the server dropping every connection after a few messages, every
    message is delivered exactly once, in order."""

    async def hook(connection: ServerConnection, message: Message) -> None:
        index = recorder.connections.index(connection)
        if len(recorder.per_connection[index]) == 5:
            connection.transport.websocket.transport.abort()  # type: ignore[union-attr]

    recorder = Recorder(hook=hook)

    async def main() -> None:
        async with running(recorder) as srv:
            async with connect(srv.uri, token(), audience=AUDIENCE, backoff=FAST) as client:
                for i in range(40):
                    await client.send(f"m{i}")
                    await asyncio.sleep(0)
                await client.drain()
                assert client.connections >= 2
                assert len(recorder.connections) == client.connections
            assert recorder.payloads() == [f"m{i}" for i in range(40)]

    run(main())


def test_refresh_on_4419_then_reconnect(run: Any, caplog: pytest.LogCaptureFixture) -> None:
    """A credential the server finds expired (4419) is refreshed, then the client
    reconnects and resends."""
    caplog.set_level(logging.INFO, logger="signedws")
    calls = []

    async def refresh() -> Any:
        calls.append(1)
        return token(lifetime=3600, credential_id="renewed")

    async def main() -> None:
        # The server's clock is 1000 s ahead: the client's credential (600 s) looks
        # valid to the client and expired to the server.
        verifier = make_verifier(max_skew=2000)
        async with running(verifier=verifier, clock=lambda: time.time() + 1000) as srv:
            credential = token(lifetime=600)
            async with connect(
                srv.uri, credential, audience=AUDIENCE, refresh=refresh, backoff=FAST
            ) as client:
                await client.send("hello")
                await client.drain()
                assert client.connections == 2
            assert srv.recorder.payloads() == ["hello"]
            assert srv.recorder.messages[0].credential_id == "renewed"

    run(main())
    assert calls == [1]
    assert "credential_expired" in codes_logged(caplog)


def test_expired_without_refresh_gives_up(run: Any) -> None:
    """Without a refresh callback, 4419 ends the client with Refused."""

    async def main() -> None:
        verifier = make_verifier(max_skew=2000)
        async with running(verifier=verifier, clock=lambda: time.time() + 1000) as srv:
            client = await connect(srv.uri, token(lifetime=600), audience=AUDIENCE)
            with pytest.raises(Refused) as info:
                await client.recv()
            assert info.value.close_code == 4419
            assert set(info.value.codes) == {
                Code.CREDENTIAL_EXPIRED,
                Code.CREDENTIAL_NOT_YET_VALID,
            }
            await client.close()

    run(main())


def test_revoked_client_gives_up_with_the_code(run: Any) -> None:
    """A revoked credential (4403) ends the client with Refused carrying the code;
    send raises it too."""

    async def main() -> None:
        verifier = make_verifier()
        verifier.revocations = verifier.revocations.revoke_subject(
            ISSUER, "alice", before=int(time.time()) + 10
        )
        async with (
            running(verifier=verifier) as srv,
            connect(srv.uri, token("alice"), audience=AUDIENCE) as client,
        ):
            with pytest.raises(Refused) as info:
                async for _ in client:
                    pass
            assert (info.value.close_code, info.value.code) == (4403, Code.CREDENTIAL_REVOKED)
            with pytest.raises(Refused):
                await client.send("more")
            await client.drain()  # nothing pending: nothing to wait for

    run(main())


def test_refused_origin_on_first_connect(run: Any) -> None:
    """A handshake refused with HTTP 403 raises Refused with the status."""

    async def main() -> None:
        async with running(allow_no_origin=False) as srv:
            with pytest.raises(Refused) as info:
                async with connect(
                    srv.uri, token(), audience=AUDIENCE, origin="https://evil.example"
                ):
                    pass
            assert info.value.status == 403

    run(main())


def test_hello_for_another_audience_is_refused(run: Any) -> None:
    """A hello naming another audience fails the connection (audience_mismatch)."""

    async def main() -> None:
        verifier = make_verifier(audience="wss://other.example/ws")
        async with running(verifier=verifier) as srv:
            with pytest.raises(Rejected) as info:
                await connect(srv.uri, token(), audience=AUDIENCE)
            assert info.value.code is Code.AUDIENCE_MISMATCH

    run(main())


@contextlib.asynccontextmanager
async def forging_server(tamper: bool) -> AsyncIterator[tuple[str, list[int | None]]]:
    """A plain websockets server that speaks signedws from the core, and can
    tamper with its server frames."""
    close_codes: list[int | None] = []

    async def handler(ws: WebSocket) -> None:
        session = ServerSession(make_verifier(), now=time.time())
        await ws.send(session.hello)
        data = await ws.recv()
        assert isinstance(data, bytes)
        session.receive_message(data, now=time.time())
        session.send_message("from the server", now=time.time())
        frame = session.data_to_send()[-1]
        await ws.send(frame[:-1] + bytes([frame[-1] ^ 1]) if tamper else frame)
        with contextlib.suppress(Exception):
            await ws.wait_closed()
        close_codes.append(ws.close_code)

    async with ws_serve(handler, "127.0.0.1", 0, subprotocols=["signedws.v1"]) as server:  # type: ignore[list-item]
        yield f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}", close_codes


@pytest.mark.parametrize("tamper", [False, True])
def test_server_frames_are_verified(run: Any, tamper: bool) -> None:
    """The client delivers authentic server frames; a tampered one ends the client
    with Rejected(bad_tag) and closes the connection with 4401."""

    async def main() -> None:
        async with forging_server(tamper) as (uri, close_codes):
            client = await connect(uri, token(), audience=AUDIENCE, reconnect=False)
            if tamper:
                with pytest.raises(Rejected) as info:
                    await client.recv()
                assert info.value.code is Code.BAD_TAG
                await client.close()
                async with asyncio.timeout(5):
                    while not close_codes:
                        await asyncio.sleep(0.01)
                assert close_codes == [4401]
            else:
                assert await client.recv() == "from the server"
                await client.close()

    run(main())


def test_ed25519_server_frames_need_a_known_server_key(run: Any) -> None:
    """An ed25519 client refuses server frames signed by a key it was not given."""
    stranger = Ed25519PrivateKey(bytes([9]) * 32).public_key()

    async def main() -> None:
        async with running() as srv:
            client = await connect(
                srv.uri, certificate(), audience=AUDIENCE, server_keys={"srv-1": stranger}
            )
            with pytest.raises(Rejected) as info:
                await client.recv()
            assert info.value.code is Code.BAD_SIGNATURE
            await client.close()
            client = await connect(srv.uri, certificate(), audience=AUDIENCE, server_keys={})
            with pytest.raises(Rejected) as info:
                await client.recv()
            assert info.value.code is Code.UNKNOWN_KEY
            await client.close()

    run(main())


def test_gives_up_after_max_attempts(run: Any) -> None:
    """When the server is gone, the client retries max_attempts times, then ends
    with ConnectionLost."""

    async def main() -> None:
        async with running() as srv:
            client = await connect(
                srv.uri, token(), audience=AUDIENCE, backoff=FAST, max_attempts=2
            )
            await client.send("one")
            await client.drain()
        with pytest.raises(ConnectionLost) as info:
            await client.recv()
        assert info.value.attempts == 2
        assert info.value.close_code == 1001  # the server went away
        await client.close()

    run(main())


def test_no_reconnect_when_disabled(run: Any) -> None:
    """With reconnect=False the first drop ends the client."""

    async def hook(connection: ServerConnection, message: Message) -> None:
        connection.transport.websocket.transport.abort()  # type: ignore[union-attr]

    async def main() -> None:
        async with running(Recorder(hook=hook)) as srv:
            client = await connect(srv.uri, token(), audience=AUDIENCE, reconnect=False)
            await client.send("bye")
            with pytest.raises(ConnectionLost):
                await client.recv()
            assert client.connections == 1
            await client.close()

    run(main())


def test_keepalive_prevents_the_idle_timeout(run: Any, caplog: pytest.LogCaptureFixture) -> None:
    """A listening client sends control frames often enough to stay connected."""
    caplog.set_level(logging.INFO, logger="signedws")

    async def main() -> None:
        async with running(idle_timeout=0.3) as srv:
            async with connect(srv.uri, token(), audience=AUDIENCE, keepalive=0.05) as client:
                await asyncio.sleep(0.8)
                await client.send("still here")
                await client.drain()
                assert client.connections == 1
            assert srv.recorder.payloads() == ["still here"]

    run(main())
    assert "idle_timeout" not in codes_logged(caplog)


def test_normal_close_by_the_server_ends_iteration(run: Any) -> None:
    """When the handler returns, the client's iteration ends without an error."""

    async def handler(connection: ServerConnection) -> None:
        message = await connection.recv()
        assert message.payload is not None
        await connection.send(message.payload)

    async def main() -> None:
        from signedws.asyncio import serve

        async with serve(
            handler, "127.0.0.1", 0, verifier=make_verifier(), origins=[], allow_no_origin=True
        ) as server:
            uri = f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}"
            async with connect(uri, token(), audience=AUDIENCE) as client:
                await client.send("once")
                assert [payload async for payload in client] == ["once"]
                with pytest.raises(ClientClosed):
                    await client.send("twice")

    run(main())


def test_close_stops_the_client(run: Any) -> None:
    """After close, send and recv raise ClientClosed and iteration ends."""

    async def main() -> None:
        async with running() as srv:
            client = await connect(srv.uri, token(), audience=AUDIENCE)
            await client.close()
            with pytest.raises(ClientClosed):
                await client.send("x")
            with pytest.raises(ClientClosed):
                await client.recv()
            assert [p async for p in client] == []
            await client.close()  # idempotent

    run(main())


def test_send_checks_payloads(run: Any) -> None:
    """send refuses non-payloads and payloads over the server's limit."""

    async def main() -> None:
        async with running(verifier=make_verifier(max_frame_size=1024)) as srv:
            async with connect(srv.uri, token(), audience=AUDIENCE) as client:
                with pytest.raises(UsageError):
                    await client.send(None)  # type: ignore[arg-type]
                with pytest.raises(UsageError):
                    await client.send(bytes(2000))
                with pytest.raises(UsageError):  # fits alone, not with the envelope
                    await client.send(bytes(1000))
                assert client.pending == 0
                await client.send("fits")
                await client.drain()
            assert srv.recorder.payloads() == ["fits"]
            assert srv.recorder.messages[0].seq == 1  # the refused ones used no seq

    run(main())


def test_reserved_keywords_are_refused() -> None:
    """connect refuses websockets keywords that signedws sets itself."""
    with pytest.raises(UsageError, match="subprotocols"):
        connect("ws://127.0.0.1:1", token(), audience=AUDIENCE, subprotocols=["x"])
    with pytest.raises(UsageError, match="keepalive"):
        connect("ws://127.0.0.1:1", token(), audience=AUDIENCE, keepalive=0)


def test_repr_has_no_secret(run: Any) -> None:
    """The client's repr names the URI and state only."""

    async def main() -> None:
        async with running() as srv:
            credential = token()
            async with connect(srv.uri, credential, audience=AUDIENCE) as client:
                text = repr(client)
                assert text.startswith(f"ClientConnection({srv.uri!r}, open")
                assert credential.token.hex() not in text
                assert credential.frame_key.to_bytes().hex() not in text
                assert SERVER_KEYS  # keys are not part of the repr either

    run(main())


def test_reconnect_retries_busy_and_stops_on_forbidden(run: Any) -> None:
    """After a drop, HTTP 503 handshakes are retried; an HTTP 403 ends the client
    with Refused(status=403). The user's process_request hook runs as in
    websockets."""
    statuses: list[int] = []

    def process_request(ws: Any, request: Any) -> Any:
        return ws.respond(statuses.pop(0), "no\n") if statuses else None

    async def hook(connection: ServerConnection, message: Message) -> None:
        statuses.extend([503, 503] if message.payload == "first" else [403])
        connection.transport.websocket.transport.abort()  # type: ignore[union-attr]

    async def main() -> None:
        async with running(Recorder(hook=hook), process_request=process_request) as srv:
            client = await connect(srv.uri, token(), audience=AUDIENCE, backoff=FAST)
            await client.send("first")
            await client.drain()
            assert client.connections == 2
            assert statuses == []
            await client.send("second")
            with pytest.raises(Refused) as info:
                await client.recv()
            assert (info.value.status, info.value.close_code) == (403, None)
            await client.close()
            assert srv.recorder.payloads() == ["first", "second"]

    run(main())


def test_refresh_failures_are_retried(run: Any, caplog: pytest.LogCaptureFixture) -> None:
    """A refresh callback that fails is called again after a backoff delay."""
    caplog.set_level(logging.INFO, logger="signedws")
    fresh = token(lifetime=3600)
    calls: list[int] = []

    async def refresh() -> Any:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("login service down")
        return fresh

    async def main() -> None:
        async with (
            running() as srv,
            connect(
                srv.uri,
                token(lifetime=60),
                audience=AUDIENCE,
                refresh=refresh,
                refresh_margin=59.99,
                backoff=FAST,
            ) as client,
        ):
            async with asyncio.timeout(5):
                while client.credential is not fresh:
                    await asyncio.sleep(0.01)
            assert len(calls) == 2

    run(main())
    assert any("refresh failed (RuntimeError)" in r.getMessage() for r in caplog.records)


def test_refresh_to_another_scheme_ends_the_client(run: Any) -> None:
    """A refreshed credential of another scheme is refused: the client ends with
    UsageError rather than sign with it."""

    async def refresh() -> Any:
        return certificate("alice")

    async def main() -> None:
        async with running() as srv:
            client = await connect(
                srv.uri,
                token(lifetime=60),
                audience=AUDIENCE,
                refresh=refresh,
                refresh_margin=59.99,
            )
            with pytest.raises(UsageError, match="same scheme"):
                await client.recv()
            await client.close()

    run(main())


@pytest.mark.parametrize("mode", ["no subprotocol", "text hello"])
def test_a_server_that_does_not_speak_signedws(run: Any, mode: str) -> None:
    """A server that selects no subprotocol, or sends a text hello, is refused
    (malformed) on connect."""

    async def handler(ws: WebSocket) -> None:
        await ws.send("hello" if mode == "text hello" else b"\x93\x01\x03\x00")
        await ws.wait_closed()

    async def main() -> None:
        protocols = ["signedws.v1"] if mode == "text hello" else None
        async with ws_serve(handler, "127.0.0.1", 0, subprotocols=protocols) as server:  # type: ignore[arg-type]
            uri = f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}"
            with pytest.raises(Rejected) as info:
                await connect(uri, token(), audience=AUDIENCE)
            assert info.value.code is Code.MALFORMED

    run(main())
