"""The contract every signedws server adapter meets, run against each of them:
the websockets server, the picows server, the ASGI adapter in a Starlette app,
and the ASGI adapter in a FastAPI app (both under uvicorn), all on 127.0.0.1.

The clients are the same for every server: `signedws.asyncio.connect`, the
JavaScript client (``clients/js``, under Node) and plain websockets clients
that craft attacks. The attack gallery is `tests/asyncio/gallery.py`'s
list, so a row added there is played here against every server, with the
same close code and the same logged code.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import shutil
import threading
import time
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from aio_support import (
    AUDIENCE,
    CLIENT_KEY,
    FLEET_KEY,
    ISSUER,
    ORIGIN,
    SECRETS,
    SERVER_KEYS,
    Recorder,
    certificate,
    closed_with,
    codes_logged,
    make_keyring,
    make_verifier,
    raw,
    signer_for,
    token,
)
from gallery import (
    GALLERY,
    HONEST_FIRST,
    REVOKED_CID,
    SECRET_PAYLOAD,
    Attack,
    forms,
    used_credentials,
)
from picows import WSTransport
from server_support import KINDS, start
from starlette.websockets import WebSocket
from websockets.asyncio.client import connect as ws_connect
from websockets.asyncio.server import ServerConnection as WebSocketsConnection
from websockets.exceptions import InvalidStatus

from signedws import ConnectionState, Message, RevocationSet, ServerMessage, Verifier
from signedws.asyncio import Backoff, ClientClosed, connect
from signedws.asyncio.connection import ServerConnection
from signedws.envelope import decode_hello

FAST = Backoff(initial=0.01, maximum=0.05)
HERE = Path(__file__).resolve().parent
JS = HERE.parents[1] / "clients" / "js"


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    """Each server adapter in turn."""
    return str(request.param)


async def read_acks(ws: Any, signer: Any, until: int) -> list[ServerMessage]:
    """Read and verify server frames until one acknowledges ``until``."""
    frames: list[ServerMessage] = []
    while signer.acked < until:
        data = await ws.recv()
        assert isinstance(data, bytes)
        frames.append(signer.verify(data))
    return frames


# -- the handshake --------------------------------------------------------------------


def test_hello_is_the_first_message(run: Any, kind: str) -> None:
    """The server selects signedws.v1 and first sends a hello naming its
    audience, its frame size limit and a 64-byte nonce; each connection gets a
    new nonce."""

    async def main() -> None:
        async with start(kind) as srv, raw(srv.uri) as (ws, first), raw(srv.uri) as (_, second):
            hello = decode_hello(first)
            assert ws.subprotocol == "signedws.v1"
            assert hello.audience == AUDIENCE
            assert hello.max_frame_size == srv.verifier.max_frame_size
            assert len(hello.nonce) == 64
            assert decode_hello(second).nonce != hello.nonce

    run(main())


def test_subprotocol_is_selected_among_others(run: Any, kind: str) -> None:
    """A client that offers several subprotocols, signedws.v1 among them, gets it."""

    async def main() -> None:
        async with (
            start(kind) as srv,
            raw(srv.uri, subprotocols=["chat", "signedws.v1"]) as (ws, hello),
        ):
            assert ws.subprotocol == "signedws.v1"
            assert decode_hello(hello).audience == AUDIENCE

    run(main())


def test_subprotocol_is_required(run: Any, kind: str, caplog: pytest.LogCaptureFixture) -> None:
    """A client that does not offer signedws.v1 is refused with HTTP 400, and logged."""
    caplog.set_level(logging.INFO, logger="signedws")

    async def main() -> None:
        async with start(kind) as srv:
            with pytest.raises(InvalidStatus) as info:
                async with ws_connect(srv.uri, subprotocols=["chat"]):  # type: ignore[list-item]
                    pass
            assert info.value.response.status_code == 400
            with pytest.raises(InvalidStatus) as info:
                async with ws_connect(srv.uri):
                    pass
            assert info.value.response.status_code == 400

    run(main())
    refusals = [r.getMessage() for r in caplog.records if "refused handshake" in r.getMessage()]
    assert len(refusals) == 2
    assert all("status=400 reason=no signedws.v1 subprotocol" in r for r in refusals)


#: Origin sent, allow_no_origin, HTTP status of the refusal (None: accepted).
ORIGIN_CASES: list[tuple[str | None, bool, int | None]] = [
    (ORIGIN, False, None),
    ("https://evil.example", False, 403),
    ("https://evil.example", True, 403),
    (None, False, 403),
    (None, True, None),
    ("https://sub.app.signedws.test", False, None),
    ("https://sub.app.signedws.test.evil.example", True, 403),
]


@pytest.mark.parametrize("case", ORIGIN_CASES)
def test_origin_allow_list(
    run: Any,
    kind: str,
    caplog: pytest.LogCaptureFixture,
    case: tuple[str | None, bool, int | None],
) -> None:
    """Origins outside the allow-list (strings match exactly, patterns in full)
    get HTTP 403 before the upgrade, logged with the Origin; clients without an
    Origin get in only if allow_no_origin."""
    caplog.set_level(logging.INFO, logger="signedws")
    origin, allow_no_origin, status = case
    origins = [ORIGIN, re.compile(r"https://[a-z]+\.app\.signedws\.test")]

    async def main() -> None:
        async with start(kind, origins=origins, allow_no_origin=allow_no_origin) as srv:
            if status is None:
                async with raw(srv.uri, origin=origin) as (_, hello):
                    assert decode_hello(hello).audience == AUDIENCE
            else:
                with pytest.raises(InvalidStatus) as info:
                    async with raw(srv.uri, origin=origin):
                        pass
                assert info.value.response.status_code == status

    run(main())
    refused = [r.getMessage() for r in caplog.records if "origin not allowed" in r.getMessage()]
    assert len(refused) == (0 if status is None else 1)
    if status is not None:
        assert f"status=403 reason=origin not allowed: {origin!r}" in refused[0]


def test_max_connections(run: Any, kind: str, caplog: pytest.LogCaptureFixture) -> None:
    """Beyond max_connections the handshake is refused with HTTP 503
    (server_busy); a slot frees when a connection closes."""
    caplog.set_level(logging.INFO, logger="signedws")

    async def main() -> None:
        async with start(kind, max_connections=2) as srv:
            async with raw(srv.uri), raw(srv.uri):
                with pytest.raises(InvalidStatus) as info:
                    async with raw(srv.uri):
                        pass
                assert info.value.response.status_code == 503
            async with asyncio.timeout(5):
                while True:  # the slots free when the connections are gone
                    try:
                        async with raw(srv.uri):
                            break
                    except InvalidStatus:
                        await asyncio.sleep(0.01)

    run(main())
    assert "server_busy" in codes_logged(caplog)


def test_several_origin_headers_are_refused(run: Any, kind: str) -> None:
    """A handshake with two Origin headers is refused with HTTP 400 (RFC 6454
    §7.3 allows one), even when both values are allowed."""

    async def main() -> None:
        async with start(kind) as srv:
            headers = [("Origin", ORIGIN), ("Origin", ORIGIN)]
            with pytest.raises(InvalidStatus) as info:
                async with ws_connect(
                    srv.uri,
                    subprotocols=["signedws.v1"],  # type: ignore[list-item]
                    additional_headers=headers,
                ):
                    pass
            assert info.value.response.status_code == 400

    run(main())


# -- verified delivery ----------------------------------------------------------------------


def test_handler_sees_verified_messages(run: Any, kind: str) -> None:
    """The handler gets subject, issuer, scopes, counter, stream, seq and payload of
    verified frames; its replies reach the client as authenticated frames."""

    async def main() -> None:
        async with start(kind, Recorder(echo=True)) as srv:
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


def test_ed25519_client_and_signed_server_frames(run: Any, kind: str) -> None:
    """An ed25519 client is verified, and the server's frames are signed with the
    server key, which the client checks."""

    async def main() -> None:
        async with start(kind, Recorder(echo=True)) as srv:
            async with connect(
                srv.uri, certificate("bob"), audience=AUDIENCE, server_keys=SERVER_KEYS
            ) as client:
                for i in range(5):
                    await client.send(f"m{i}")
                assert [await client.recv() for _ in range(5)] == [f"m{i}" for i in range(5)]
            assert srv.recorder.payloads("bob") == [f"m{i}" for i in range(5)]

    run(main())


def test_control_frames_are_not_delivered(run: Any, kind: str) -> None:
    """Frames with a nil payload are verified and acknowledged, never delivered."""

    async def main() -> None:
        async with start(kind) as srv, raw(srv.uri) as (ws, hello):
            signer = signer_for(hello, token())
            await ws.send(signer.sign(None, now=time.time()))
            await ws.send(signer.sign("data", now=time.time()))
            await read_acks(ws, signer, 2)
            assert srv.recorder.payloads() == ["data"]

    run(main())


def node() -> str:
    """Node (>= 20) with the JavaScript client's dependencies installed, or
    skip; under CI, where .ci/run installs them, fail instead."""
    path = shutil.which("node")
    missing = "node" if path is None else None
    if missing is None and not (JS / "node_modules" / "@msgpack" / "msgpack").is_dir():
        missing = "clients/js/node_modules (npm ci)"
    if missing is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{missing} is missing")
        pytest.skip(f"{missing} is missing")
    assert path is not None
    return path


def test_javascript_client(run: Any, kind: str) -> None:
    """The JavaScript client exchanges verified frames with the server, in
    both schemes: the handler sees its messages, and the client accepts the
    server's authenticated replies and acknowledgements."""
    executable = node()

    async def main() -> dict[str, list[str]]:
        async with start(kind, Recorder(echo=True)) as srv:
            mac, ed25519 = token("js-alice"), certificate("js-bob")
            spec = {
                "url": srv.uri,
                "audience": AUDIENCE,
                "mac": {"token": mac.token.hex(), "frame_key": mac.frame_key.to_bytes().hex()},
                "ed25519": {
                    "certificate": ed25519.credential.hex(),
                    "seed": CLIENT_KEY.to_bytes().hex(),
                },
                "server_keys": {kid: key.to_bytes().hex() for kid, key in SERVER_KEYS.items()},
            }
            process = await asyncio.create_subprocess_exec(
                executable,
                "--experimental-websocket",
                str(HERE / "js_echo.mjs"),
                json.dumps(spec),
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            out, err = await process.communicate()
            assert process.returncode == 0, err.decode()
            assert srv.recorder.payloads("js-alice") == ["js mac 1", "js mac 2"]
            assert srv.recorder.payloads("js-bob") == ["js ed 1", "js ed 2"]
            result: dict[str, list[str]] = json.loads(out)
            return result

    assert run(main(), timeout=30) == {
        "mac": ["js mac 1", "js mac 2"],
        "ed25519": ["js ed 1", "js ed 2"],
    }


def test_handler_send_waits_for_the_first_frame(run: Any, kind: str) -> None:
    """A handler may send at once: the frame goes out after the client's first
    accepted frame, which gives it a key."""

    async def greeter(connection: ServerConnection) -> None:
        await connection.send("welcome")
        async for _ in connection:
            pass

    async def main() -> None:
        async with (
            start(kind, greeter) as srv,  # type: ignore[arg-type]
            connect(srv.uri, token(), audience=AUDIENCE) as client,
        ):
            assert await client.recv() == "welcome"

    run(main())


def test_handler_return_closes_normally(run: Any, kind: str) -> None:
    """When the handler returns, the connection closes with 1000: the client's
    iteration ends without an error and it does not reconnect."""

    async def once(connection: ServerConnection) -> None:
        message = await connection.recv()
        assert message.payload is not None
        await connection.send(message.payload)

    async def main() -> None:
        async with (
            start(kind, once) as srv,  # type: ignore[arg-type]
            connect(srv.uri, token(), audience=AUDIENCE) as client,
        ):
            await client.send("once")
            assert [payload async for payload in client] == ["once"]
            with pytest.raises(ClientClosed):
                await client.send("twice")
            assert client.connections == 1

    run(main())


def test_connection_api(run: Any, kind: str) -> None:
    """The handler's connection has an id, its principal after the first frame,
    the client's address and a repr without secrets; close() closes it with the
    code given, after which recv raises the library's closed exception."""
    seen: list[object] = []

    async def handler(connection: ServerConnection) -> None:
        assert connection.principal is None
        message = await connection.recv()
        assert message.payload == "hi"
        assert connection.principal == ("auth", "alice")
        assert connection.address == "127.0.0.1"
        assert repr(connection) == (
            f"ServerConnection(id={connection.id}, principal=('auth', 'alice'))"
        )
        await connection.close(4000, "bye")
        await connection.wait_closed()
        try:
            await connection.recv()
        except Exception as exc:  # websockets' ConnectionClosed or WebSocketDisconnect
            seen.append(type(exc).__name__)

    async def main() -> None:
        async with start(kind, handler) as srv:  # type: ignore[arg-type]
            async with raw(srv.uri) as (ws, hello):
                await ws.send(signer_for(hello, token("alice")).sign("hi", now=time.time()))
                assert await closed_with(ws) == 4000
                assert ws.close_reason == "bye"
            async with asyncio.timeout(5):
                while not seen:
                    await asyncio.sleep(0.01)

    run(main())
    expected = (
        "ConnectionClosedError" if kind in ("websockets", "picows") else "WebSocketDisconnect"
    )
    assert seen == [expected]


def test_handler_ending_on_close_is_not_an_error(
    run: Any, kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A handler that lets the library's "connection closed" exception escape
    (here from recv after the client left) ends quietly: nothing is logged at
    ERROR by signedws, the WebSocket library or the ASGI server."""
    caplog.set_level(logging.INFO)
    ended: list[bool] = []

    async def reader(connection: ServerConnection) -> None:
        try:
            while True:
                await connection.recv()
        finally:
            ended.append(True)

    async def main() -> None:
        async with start(kind, reader) as srv:  # type: ignore[arg-type]
            async with raw(srv.uri) as (ws, hello):
                await ws.send(signer_for(hello, token()).sign("hi", now=time.time()))
            async with asyncio.timeout(5):
                while not ended:
                    await asyncio.sleep(0.01)

    run(main())
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []


def test_handler_error_closes_with_1011(run: Any, kind: str) -> None:
    """A handler that raises closes its connection with 1011 (internal error);
    the server goes on serving."""

    async def broken(connection: ServerConnection) -> None:
        await connection.recv()
        raise RuntimeError("handler bug")

    async def main() -> None:
        async with start(kind, broken) as srv:  # type: ignore[arg-type]
            for _ in range(2):
                async with raw(srv.uri) as (ws, hello):
                    await ws.send(signer_for(hello, token()).sign("hi", now=time.time()))
                    assert await closed_with(ws) == 1011

    run(main())


class FaultyVerifier(Verifier):
    """A verifier with a bug: it raises something other than Rejected."""

    def verify(self, data: bytes, state: ConnectionState, *, now: float) -> Message:
        if state.highest >= 1:  # after the opening control frame
            raise RuntimeError("verifier bug")
        return super().verify(data, state, now=now)


def test_internal_fault_closes_with_1011(
    run: Any, kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    """An exception of the server's own while it verifies a frame (not a
    rejection) closes that connection with 1011, logs an error with the
    traceback and no frame bytes, and delivers nothing; the server goes on."""
    caplog.set_level(logging.INFO, logger="signedws")
    verifier = FaultyVerifier(make_keyring(), audience=AUDIENCE, fleet_key=FLEET_KEY)

    async def main() -> None:
        async with start(kind, verifier=verifier) as srv:
            for _ in range(2):
                async with raw(srv.uri) as (ws, hello):
                    signer = signer_for(hello, token())
                    await ws.send(signer.sign(None, now=time.time()))
                    await ws.send(signer.sign("secret-payload", now=time.time()))
                    assert await closed_with(ws) == 1011
            assert srv.recorder.payloads("alice") == []

    run(main())
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert [r.getMessage().split(": ")[1] for r in errors] == ["pump failed"] * 2
    assert all(r.exc_info and r.exc_info[0] is RuntimeError for r in errors)
    assert "secret-payload" not in caplog.text


# -- rejections -----------------------------------------------------------------------------


def gallery_server(kind: str) -> Any:
    revocations = RevocationSet().revoke_credential(ISSUER, REVOKED_CID)
    return start(kind, verifier=make_verifier(revocations=revocations))


@pytest.mark.parametrize("row", GALLERY, ids=[attack.__name__ for attack, _, _ in GALLERY])
def test_attack_is_rejected(
    run: Any, kind: str, caplog: pytest.LogCaptureFixture, row: tuple[Attack, int, str]
) -> None:
    """Every row of the attack gallery is refused with the same close code (or
    HTTP status) on every server, which logs the same code, and no forged
    payload reaches the handler."""
    caplog.set_level(logging.INFO, logger="signedws")
    attack, seen, code = row

    async def main() -> list[object]:
        async with gallery_server(kind) as srv:
            assert await attack(srv) == seen
            return srv.recorder.payloads()

    delivered = run(main())
    assert delivered == ([SECRET_PAYLOAD] if attack in HONEST_FIRST else [])
    if code == "origin":
        assert any("origin not allowed" in r.getMessage() for r in caplog.records)
    else:
        assert codes_logged(caplog) == [code]


def test_no_secret_in_any_log_line(run: Any, kind: str, caplog: pytest.LogCaptureFixture) -> None:
    """With every logger at DEBUG, the whole gallery and an honest session log no
    key, token, frame key, signature or payload on signedws' loggers."""
    caplog.set_level(logging.DEBUG)
    used_credentials.clear()

    async def main() -> None:
        async with gallery_server(kind) as srv:
            for attack, _, _ in GALLERY:
                await attack(srv)
            honest = token("mallory")
            used_credentials.append(honest)
            async with connect(srv.uri, honest, audience=AUDIENCE) as client:
                await client.send(SECRET_PAYLOAD)
                await client.drain()

    run(main())
    text = "\n".join(
        f"{r.getMessage()} {r.exc_text or ''} {getattr(r, 'signedws_code', '')}"
        for r in caplog.records
        if r.name.startswith("signedws")
    )
    assert "rejected connection=" in text  # the capture works
    secrets_seen = dict(SECRETS)
    for i, credential in enumerate(used_credentials):
        secrets_seen[f"token {i}"] = credential.token
        secrets_seen[f"frame key {i}"] = credential.frame_key.to_bytes()
        secrets_seen[f"token tag {i}"] = credential.token[-32:]
    for name, secret in secrets_seen.items():
        for form in forms(secret):
            assert form not in text, name
    assert SECRET_PAYLOAD not in text


def test_first_frame_timeout(run: Any, kind: str, caplog: pytest.LogCaptureFixture) -> None:
    """A connection that sends no valid frame in time is closed with 4408."""
    caplog.set_level(logging.INFO, logger="signedws")

    async def main() -> None:
        async with start(kind, first_frame_timeout=0.1) as srv, raw(srv.uri) as (ws, _):
            assert await closed_with(ws) == 4408

    run(main())
    assert codes_logged(caplog) == ["first_frame_timeout"]


def test_idle_timeout(run: Any, kind: str, caplog: pytest.LogCaptureFixture) -> None:
    """After a valid frame, a connection idle for idle_timeout is closed with 4408."""
    caplog.set_level(logging.INFO, logger="signedws")

    async def main() -> None:
        async with start(kind, idle_timeout=0.1) as srv, raw(srv.uri) as (ws, hello):
            await ws.send(signer_for(hello, token()).sign("hi", now=time.time()))
            assert await closed_with(ws) == 4408
            assert srv.recorder.payloads() == ["hi"]

    run(main())
    assert codes_logged(caplog) == ["idle_timeout"]


def test_rejection_log_line(run: Any, kind: str, caplog: pytest.LogCaptureFixture) -> None:
    """One WARNING on signedws.server per rejection, naming the connection id, the
    code, its number and the core's detail."""
    caplog.set_level(logging.DEBUG, logger="signedws")

    async def main() -> str:
        async with start(kind) as srv, raw(srv.uri) as (ws, hello):
            frame = signer_for(hello, token()).sign("hi", now=time.time())
            await ws.send(frame[:-1] + bytes([frame[-1] ^ 1]))
            assert await closed_with(ws) == 4401
            async with asyncio.timeout(5):
                while not srv.recorder.connections:
                    await asyncio.sleep(0.01)
            return str(srv.recorder.connections[0].id)

    connection_id = run(main())
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    signedws_warnings = [r for r in warnings if r.name.startswith("signedws")]
    assert len(signedws_warnings) == 1
    (record,) = signedws_warnings
    assert record.name == "signedws.server"
    assert record.getMessage().startswith(
        f"rejected connection={connection_id} code=bad_tag number=400 detail=cid="
    )


# -- acknowledgements ---------------------------------------------------------------------


def test_pure_acks_are_coalesced(run: Any, kind: str) -> None:
    """A burst of frames is acknowledged by fewer pure acks, the last covering all."""

    async def main() -> None:
        async with start(kind, ack_delay=0.2) as srv, raw(srv.uri) as (ws, hello):
            signer = signer_for(hello, token())
            for i in range(10):
                await ws.send(signer.sign(f"m{i}", now=time.time()))
            acks = await read_acks(ws, signer, 10)
            assert all(ack.payload is None for ack in acks)
            assert len(acks) < 10

    run(main())


def test_acks_ride_on_handler_frames(run: Any, kind: str) -> None:
    """With ack_delay None, no pure acks are sent; handler frames carry the ack
    of what the handler is done with: a reply sent while handling frame 3
    acknowledges up to 2 (SPEC.md §7.3)."""

    async def hook(connection: ServerConnection, message: Message) -> None:
        if message.payload == "reply":
            await connection.send("done")

    async def main() -> None:
        async with (
            start(kind, Recorder(hook=hook), ack_delay=None) as srv,  # type: ignore[arg-type]
            raw(srv.uri) as (ws, hello),
        ):
            signer = signer_for(hello, token())
            for payload in ("a", "b", "reply"):
                await ws.send(signer.sign(payload, now=time.time()))
            data = await ws.recv()
            assert isinstance(data, bytes)
            message = signer.verify(data)
            assert (message.payload, message.ack) == ("done", 2)

    run(main())


def test_acks_wait_for_the_handler(run: Any, kind: str) -> None:
    """A verified frame is not acknowledged while the handler has not taken it:
    a server that stopped then would lose a frame its client considers safe."""
    release = asyncio.Event()

    async def hook(connection: ServerConnection, message: Message) -> None:
        if message.payload == "slow":
            await release.wait()

    async def main() -> None:
        async with (
            start(kind, Recorder(hook=hook), ack_delay=0.01) as srv,  # type: ignore[arg-type]
            raw(srv.uri) as (ws, hello),
        ):
            signer = signer_for(hello, token())
            for payload in ("a", "slow", "queued"):
                await ws.send(signer.sign(payload, now=time.time()))
            first = signer.verify(await asyncio.wait_for(ws.recv(), 5))
            assert first.ack == 1  # "a" done; "slow" held; "queued" waiting
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(ws.recv(), 0.2)
            release.set()
            later = signer.verify(await asyncio.wait_for(ws.recv(), 5))
            assert later.ack == 3

    run(main())


# -- resend, exactly once, refresh ----------------------------------------------------------


@pytest.mark.parametrize("dedupe", [True, False])
def test_resent_messages_are_delivered_once(run: Any, kind: str, dedupe: bool) -> None:
    """A (stream, seq) already delivered is dropped when resent on a new
    connection (SPEC.md §7.3); with dedupe off it is delivered again."""

    async def main() -> list[object]:
        async with start(kind, dedupe=dedupe) as srv:
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
                await read_acks(ws, second, 4)
            return srv.recorder.payloads()

    expected = ["m1", "m2", "m3", "m4"] if dedupe else ["m1", "m2", "m3", "m1", "m2", "m3", "m4"]
    assert run(main()) == expected


def test_drop_before_ack_resends_and_delivers_once(run: Any, kind: str) -> None:
    """Frames delivered but not acknowledged when the server drops the
    connection (1012, service restart) are resent by the client on its next
    connection; the handler sees each message exactly once."""

    async def hook(connection: ServerConnection, message: Message) -> None:
        index = recorder.connections.index(connection)  # type: ignore[arg-type]
        if index == 0 and len(recorder.per_connection[0]) == 5:
            await connection.close(1012, "restart")  # before any ack left
        elif index > 0:
            await connection.send("ack me")

    recorder = Recorder(hook=hook)  # type: ignore[arg-type]

    async def main() -> None:
        async with start(kind, recorder, ack_delay=0.5) as srv:
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


def test_refresh_without_reconnect(run: Any, kind: str) -> None:
    """A client refreshes its credential on the same connection: later frames
    carry the new credential and are delivered without a reconnect."""
    fresh = token(lifetime=3600, credential_id="fresh")
    refreshed = asyncio.Event()

    async def refresh() -> Any:
        refreshed.set()
        return fresh

    async def main() -> None:
        async with start(kind) as srv:
            old = token(lifetime=60, credential_id="old")
            async with connect(
                srv.uri, old, audience=AUDIENCE, refresh=refresh, refresh_margin=59.99
            ) as client:
                await asyncio.wait_for(refreshed.wait(), 5)
                await asyncio.sleep(0)
                assert client.credential is fresh
                await client.send("after refresh")
                await client.drain()
                assert client.connections == 1
            assert len(srv.recorder.connections) == 1
            (message,) = srv.recorder.messages
            assert message.credential_id == "fresh"

    run(main())


# -- Ed25519 off the event loop -----------------------------------------------------------


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


def test_ed25519_frames_are_verified_off_the_loop(run: Any, kind: str) -> None:
    """Ed25519 frames go to the executor, mac frames do not; order is kept."""
    executor = CountingExecutor()

    async def main() -> None:
        async with start(kind, executor=executor) as srv:
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
            assert submitted >= 21  # 20 messages and at least the opening control frame

    try:
        run(main())
    finally:
        executor.shutdown()


class ThreadRecordingVerifier(Verifier):
    """A verifier that records the thread each frame is verified on."""

    threads: list[str]

    def verify(self, data: bytes, state: ConnectionState, *, now: float) -> Message:
        self.threads.append(threading.current_thread().name)
        return super().verify(data, state, now=now)


@pytest.mark.parametrize("workers", [1, 2])
def test_ed25519_frames_verified_on_the_loop_with_one_worker(
    run: Any, kind: str, workers: int
) -> None:
    """verify_workers=1 verifies ed25519 frames on the event loop's thread, no
    pool; 2 verifies them in the pool. Either way every message arrives once,
    in order."""
    verifier = ThreadRecordingVerifier(make_keyring(), audience=AUDIENCE, fleet_key=FLEET_KEY)
    verifier.threads = []
    loop_threads: list[str] = []

    async def main() -> None:
        loop_threads.append(threading.current_thread().name)
        async with start(kind, verifier=verifier, verify_workers=workers) as srv:
            async with connect(
                srv.uri, certificate("bob"), audience=AUDIENCE, server_keys=SERVER_KEYS
            ) as client:
                for i in range(40):
                    await client.send(f"e{i}")
                await client.drain()
            assert srv.recorder.payloads("bob") == [f"e{i}" for i in range(40)]

    run(main())
    assert len(verifier.threads) >= 41  # 40 messages and the opening control frame
    on_loop = {name for name in verifier.threads if name in loop_threads}
    if workers == 1:
        assert set(verifier.threads) == set(loop_threads)
    else:
        assert not on_loop
        assert all(name.startswith("signedws-verify") for name in verifier.threads)


def test_ed25519_connection_without_server_key(
    run: Any, kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    """SPEC.md §7.1: a server without a server key refuses an ed25519
    client's first frame with scheme_mismatch (4400), unverified, and the
    handler never sees it; mac clients are served as ever (issue 13, finding
    7: the frame used to be accepted, then the first send closed with 1011)."""
    caplog.set_level(logging.INFO, logger="signedws")

    async def main() -> tuple[int | None, list[object]]:
        async with start(kind, server_key=None) as srv:  # type: ignore[arg-type]
            async with raw(srv.uri) as (ws, hello):
                await ws.send(signer_for(hello, certificate()).sign("one", now=time.time()))
                code = await closed_with(ws)
            async with connect(srv.uri, token(), audience=AUDIENCE) as client:
                await client.send("mac")
                await client.drain()
            return code, [m.payload for m in srv.recorder.messages]

    code, delivered = run(main())
    assert code == 4400
    assert delivered == ["mac"]
    assert codes_logged(caplog) == ["scheme_mismatch"]


def test_idle_connection_holds_no_background_task(run: Any, kind: str) -> None:
    """An open, idle connection keeps no task of the server's beyond its
    handler's (issue 16, memory per idle connection): the task that logs the
    close line starts when the connection ends (the line itself:
    test_open_and_close_are_logged_once)."""

    async def main() -> int:
        async with start(kind) as srv, connect(srv.uri, token(), audience=AUDIENCE) as client:
            await client.send("hi")
            await client.drain()
            await srv.recorder.wait_for(lambda: len(srv.recorder.messages) == 1)
            (connection,) = srv.recorder.connections
            tasks = connection._service.tasks
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 5
            while tasks and loop.time() < deadline:  # an ack being written, at most
                await asyncio.sleep(0.01)
            return len(tasks)

    assert run(main()) == 0


def test_open_and_close_are_logged_once(
    run: Any, kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    """One INFO line when a connection opens and one when it closes, naming
    the connection, its principal, the client's address, the close code and
    the frames in and out; no secret (see test_no_secret_in_any_log_line)."""
    caplog.set_level(logging.INFO, logger="signedws")
    credential = token("alice")

    def lines(prefix: str) -> list[str]:
        return [m for r in caplog.records if (m := r.getMessage()).startswith(prefix)]

    async def main() -> None:
        async with start(kind) as srv:
            async with connect(srv.uri, credential, audience=AUDIENCE) as client:
                await client.send("hi")
                await client.drain()
            async with asyncio.timeout(5):
                while not lines("connection closed"):
                    await asyncio.sleep(0.01)

    run(main())
    (opened,) = lines("connection opened")
    (closed,) = lines("connection closed")
    connection_id = opened.split()[2].removeprefix("connection=")
    assert opened == f"connection opened connection={connection_id} address=127.0.0.1"
    match = re.fullmatch(
        rf"connection closed connection={connection_id} principal='auth'/'alice' "
        r"address=127\.0\.0\.1 close_code=1000 frames_in=(\d+) frames_out=(\d+) "
        r"duration=\d+\.\d{3}",
        closed,
    )
    assert match is not None, closed
    # The message (and maybe a control frame); the hello and an ack at least.
    assert int(match[1]) >= 1
    assert int(match[2]) >= 2
    assert credential.token.hex() not in caplog.text


# -- the client address ---------------------------------------------------------------------

#: Per server: the library's own objects on the handler's transport, as the
#: adapter's docs name them: the class of ``transport.websocket``, and the path
#: of the upgrade request it exposes (picows: ``transport.request``, bytes).
LIBRARY_OBJECTS: dict[str, tuple[type, object]] = {
    "websockets": (WebSocketsConnection, "/"),
    "picows": (WSTransport, b"/"),
    "starlette": (WebSocket, "/ws"),
    "fastapi": (WebSocket, "/ws"),
}


def request_path(kind: str, connection: ServerConnection) -> object:
    """The path of the upgrade request, from the library's own objects."""
    transport: Any = connection.transport
    if kind == "websockets":
        return transport.websocket.request.path
    if kind == "picows":
        return transport.request.path
    return transport.websocket.url.path


@pytest.mark.parametrize(
    ("trusted", "logged"),
    [([], "127.0.0.1"), (["127.0.0.0/8"], "203.0.113.9"), (["10.0.0.0/8"], "127.0.0.1")],
)
def test_client_address_honours_forwarded_for_from_trusted_proxies_only(
    run: Any, kind: str, caplog: pytest.LogCaptureFixture, trusted: list[str], logged: str
) -> None:
    """``connection.address`` and the "connection opened" log line give the
    last X-Forwarded-For hop only when the peer (loopback) is one of
    ``trusted_proxies`` (default none), else the peer; the transport carries
    the library's own objects. Every adapter takes ``trusted_proxies``; under
    uvicorn, its own X-Forwarded-For handling (``proxy_headers``, which trusts
    loopback by default and rewrites the scope's client before signedws sees
    it) is off, so the adapter's ``trusted_proxies`` alone decides."""
    caplog.set_level(logging.INFO, logger="signedws")
    seen: list[tuple[str | None, object, object]] = []

    async def handler(connection: ServerConnection) -> None:
        transport: Any = connection.transport
        seen.append((connection.address, transport.websocket, request_path(kind, connection)))

    async def main() -> None:
        async with (
            start(kind, handler, trusted_proxies=trusted, proxy_headers=False) as srv,  # type: ignore[arg-type]
            ws_connect(
                srv.uri,
                subprotocols=["signedws.v1"],  # type: ignore[list-item]
                additional_headers={"X-Forwarded-For": "1.1.1.1, 203.0.113.9"},
            ) as ws,
        ):
            await ws.recv()
            async with asyncio.timeout(5):
                while not seen:
                    await asyncio.sleep(0.01)

    run(main())
    ((address, websocket, path),) = seen
    library_class, expected_path = LIBRARY_OBJECTS[kind]
    assert address == logged
    assert isinstance(websocket, library_class)
    assert path == expected_path
    (opened,) = [
        m for r in caplog.records if (m := r.getMessage()).startswith("connection opened")
    ]
    assert re.fullmatch(rf"connection opened connection=\S+ address={re.escape(logged)}", opened)
