"""Faults (issue 6): a server killed and restarted mid-stream loses nothing
and duplicates nothing; clients cut mid-frame, slow readers, half-open
connections and a flood of connection attempts leave it serving honest
clients. Loopback only; every loop bounded in count and time."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import figures
import pytest
from adversary import ResendCounter, ServerProcess, close_quietly, credential_for, honest_client
from helpers import (
    AUDIENCE,
    ED_ISSUER_KEY,
    ED_KID,
    FLEET_KEY,
    HMAC_KID,
    HMAC_SECRET,
    ISSUER,
    SERVER_KEY,
    SERVER_KID,
)
from record_store import read_record
from test_corpus_socket import logged_codes
from websockets.asyncio.client import ClientConnection as WebSocket
from websockets.asyncio.client import connect as ws_connect
from websockets.asyncio.server import Server
from websockets.exceptions import ConnectionClosed, InvalidStatus

from signedws import Keyring, ServerKey, Signer, Verifier, decode_hello
from signedws.asyncio import ServerConnection, serve

# -- kill and restart -------------------------------------------------------------------

KILLS = 2


async def writer(uri: str, number: int, messages: int) -> None:
    """Send numbered messages, paced, then wait until all are acknowledged."""
    client = await honest_client(uri, number)
    try:
        for i in range(messages):
            await client.send(f"{number}:{i}")
            await asyncio.sleep(0.004)
        await client.drain()
    finally:
        await close_quietly(client)


@pytest.mark.parametrize(
    ("delay", "writers", "messages"),
    [
        pytest.param(0.0, 20, 300, id="fast-handler"),
        pytest.param(0.02, 10, 100, id="slow-handler"),
    ],
)
def test_kill_and_restart_mid_stream_loses_and_duplicates_nothing(
    delay: float, writers: int, messages: int, tmp_path: Path, run: Callable[..., Any]
) -> None:
    """SIGKILL the server twice while clients stream numbered messages; they
    reconnect and resend. The handler's record (an append-only file with the
    per-stream marks of SPEC.md §7.3) has every message exactly once, in order
    per stream, and the clients did resend. With a slow handler (20 ms per
    message) messages wait in the server's queue when it dies: they were not
    acknowledged, so they are resent too."""
    server = ServerProcess(tmp_path, env={"SIGNEDWS_RECORD_DELAY": str(delay)})
    server.start()
    total = writers * messages

    async def killer() -> None:
        for kill in range(1, KILLS + 1):
            async with asyncio.timeout(60):
                while len(read_record(server.record)) < total * kill // (KILLS + 1):
                    await asyncio.sleep(0.02)
            server.kill()
            await asyncio.sleep(0.3)  # clients see the drop and back off
            await asyncio.to_thread(server.start)

    async def main() -> None:
        await asyncio.gather(killer(), *(writer(server.uri, n, messages) for n in range(writers)))

    try:
        with ResendCounter() as counter:
            run(main(), timeout=120)
    finally:
        server.stop()
    record = read_record(server.record)
    streams: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for line in record:
        streams[line["sub"]].append(line)
    assert len(streams) == writers
    for subject, lines in streams.items():
        number = int(subject.removeprefix("user"))
        assert [x["seq"] for x in lines] == list(range(1, messages + 1)), subject
        assert [x["payload"] for x in lines] == [f"{number}:{i}" for i in range(messages)]
    assert len(record) == total
    assert server.starts == KILLS + 1
    assert len({line["pid"] for line in record}) == KILLS + 1  # written by all three
    assert counter.resent > 0
    absorbed = len(server.dups.read_text().splitlines()) if server.dups.exists() else 0
    name = "slow" if delay else "fast"
    figures.add(
        "faults.kills", KILLS, "server SIGKILLs mid-stream, each restarted", section="faults"
    )
    figures.record(
        f"faults.kill_messages.{name}",
        total,
        f"messages across the kills, {name} handler ({writers} clients): each recorded "
        "once, in order",
        section="faults",
    )
    figures.add(
        "faults.resent",
        counter.resent,
        "messages clients re-signed and sent from their outbox on reconnecting",
        section="faults",
    )
    figures.add(
        "faults.absorbed",
        absorbed,
        "resends already recorded, dropped by the record's (stream, seq) marks",
        section="faults",
    )


# -- an in-process server for the connection-level faults ----------------------------------


class Service:
    """A running in-process server whose handler echoes and records."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.port = server.sockets[0].getsockname()[1]
        self.uri = f"ws://127.0.0.1:{self.port}"
        self.delivered: list[object] = []


@contextlib.asynccontextmanager
async def service(**kwargs: Any) -> AsyncIterator[Service]:
    """A signedws server on 127.0.0.1 with the helpers' keys."""
    keyring = Keyring()
    keyring.add_hmac_key(ISSUER, HMAC_KID, HMAC_SECRET)
    keyring.add_ed25519_key(ISSUER, ED_KID, ED_ISSUER_KEY.public_key())
    verifier = Verifier(keyring, audience=AUDIENCE, fleet_key=FLEET_KEY)
    holder: list[Service] = []

    async def handler(connection: ServerConnection) -> None:
        async for message in connection:
            holder[0].delivered.append(message.payload)
            assert message.payload is not None
            await connection.send(message.payload)

    kwargs.setdefault("origins", [])
    kwargs.setdefault("allow_no_origin", True)
    async with serve(
        handler,
        "127.0.0.1",
        0,
        verifier=verifier,
        server_key=ServerKey(SERVER_KID, SERVER_KEY),
        **kwargs,
    ) as server:
        holder.append(Service(server))
        yield holder[0]


async def echo_round_trip(uri: str, number: int, count: int = 10) -> None:
    """An honest client sends ``count`` messages and gets every echo back."""
    client = await honest_client(uri, number, max_attempts=0)
    try:
        for i in range(count):
            await client.send(f"{number}:{i}")
        for i in range(count):
            assert await client.recv() == f"{number}:{i}"
        await client.drain()
    finally:
        await close_quietly(client)


async def raw(uri: str) -> tuple[WebSocket, bytes]:
    """A plain websockets connection that read the hello."""
    ws = await ws_connect(uri, subprotocols=["signedws.v1"], compression=None)  # type: ignore[list-item]
    hello = await ws.recv()
    assert isinstance(hello, bytes)
    return ws, hello


def signed(hello: bytes, number: int, payload: str) -> bytes:
    """A genuine frame from client ``number`` on the connection of ``hello``."""
    signer = Signer(credential_for(number), decode_hello(hello), now=time.time())
    return signer.sign(payload, now=time.time())


# -- cut mid-frame --------------------------------------------------------------------------


#: Ways to leave a connection mid-frame: the bytes written before a TCP reset.
MASK = b"\x01\x02\x03\x04"
CUTS: dict[str, Callable[[bytes], bytes]] = {
    "in the frame header": lambda frame: b"\x82",
    "in the extended length": lambda frame: b"\x82\xfe\x03",
    "in the mask": lambda frame: b"\x82\xfe\x03\xe8\x01\x02",
    "in the payload": lambda frame: b"\x82\xfe\x03\xe8" + MASK + bytes(10),
    "in a signed frame": lambda frame: (
        b"\x82\xfe" + len(frame).to_bytes(2, "big") + MASK + frame[:40]
    ),
    "after a whole frame": lambda frame: b"",
}


def test_clients_cut_mid_frame_leave_the_server_serving(
    run: Callable[..., Any], caplog: pytest.LogCaptureFixture
) -> None:
    """Connections reset at every point of a frame deliver nothing partial,
    raise nothing in the server, free their slots; honest clients are served."""
    caplog.set_level(logging.WARNING)
    rounds = 20

    async def cut(srv: Service, how: Callable[[bytes], bytes], number: int) -> None:
        ws, hello = await raw(srv.uri)
        frame = signed(hello, number, "complete")
        if how(frame) == b"":
            await ws.send(frame)
        else:
            ws.transport.write(how(frame))
        await asyncio.sleep(0.01)
        ws.transport.abort()

    async def main() -> Service:
        async with service() as srv:
            for r in range(rounds):
                await asyncio.gather(*(cut(srv, how, r) for how in CUTS.values()))
            await asyncio.gather(*(echo_round_trip(srv.uri, 1000 + n) for n in range(10)))
            async with asyncio.timeout(5):
                while srv.server.connections:
                    await asyncio.sleep(0.01)
            return srv

    srv = run(main())
    partial = [p for p in srv.delivered if p != "complete" and ":" not in str(p)]
    assert not partial
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text
    figures.record(
        "faults.cut",
        rounds * len(CUTS),
        f"connections reset mid-frame ({len(CUTS)} cut points)",
        section="faults",
    )


# -- slow readers ------------------------------------------------------------------------------


def test_slow_readers_do_not_stall_honest_clients(run: Callable[..., Any]) -> None:
    """Clients that send large messages to an echo server and never read their
    echoes stall only themselves: backpressure stops the server reading from
    them, and honest clients' round trips complete."""
    slow_readers = 20
    payload = "x" * 30_000

    async def slow(srv: Service, number: int) -> WebSocket:
        ws, hello = await raw(srv.uri)
        signer = Signer(credential_for(number), decode_hello(hello), now=time.time())
        for _ in range(100):
            try:
                async with asyncio.timeout(0.5):
                    await ws.send(signer.sign(payload, now=time.time()))
            except (TimeoutError, ConnectionClosed):
                break  # our own send is blocked: the server stopped reading us
        return ws

    async def main() -> tuple[int, float]:
        async with service() as srv:
            readers = await asyncio.gather(*(slow(srv, n) for n in range(slow_readers)))
            start = time.perf_counter()
            await asyncio.gather(*(echo_round_trip(srv.uri, 500 + n) for n in range(20)))
            elapsed = time.perf_counter() - start
            stalled = len(srv.delivered)
            for ws in readers:
                ws.transport.abort()
            return stalled, elapsed

    stalled, elapsed = run(main())
    # Each slow connection stopped being read after a bounded number of
    # messages (handler blocked on send, queue full, TCP window closed).
    assert stalled < slow_readers * 100
    figures.record(
        "faults.slow", slow_readers, "slow readers (never read, 30 KB echoes)", section="faults"
    )
    figures.record(
        "faults.slow_rtt",
        elapsed,
        "time for 20 honest clients' 10 round trips each, beside them",
        section="faults",
        unit="s",
    )


# -- half-open connections ---------------------------------------------------------------------


def test_half_open_connections_are_closed_and_honest_clients_served(
    run: Callable[..., Any], caplog: pytest.LogCaptureFixture
) -> None:
    """Silent TCP connections (no handshake), silent WebSocket connections (no
    first frame), connections gone idle and half-closed ones are all closed by
    the server's timeouts, while honest clients are served."""
    caplog.set_level(logging.WARNING, logger="signedws.server")
    silent_tcp, silent_ws, idle, half_closed = 100, 100, 20, 20

    async def main() -> tuple[list[int | None], int]:
        async with service(first_frame_timeout=1.0, idle_timeout=1.5, open_timeout=1.0) as srv:
            tcp = []
            for _ in range(silent_tcp):
                sock = socket.create_connection(("127.0.0.1", srv.port))
                sock.setblocking(False)
                tcp.append(sock)
            quiet = [(await raw(srv.uri))[0] for _ in range(silent_ws)]
            idlers = []
            for n in range(idle):
                ws, hello = await raw(srv.uri)
                await ws.send(signed(hello, 700 + n, "then nothing"))
                idlers.append(ws)
            halves = []
            for _ in range(half_closed):
                ws, _ = await raw(srv.uri)
                ws.transport.write_eof()
                halves.append(ws)
            await asyncio.gather(*(echo_round_trip(srv.uri, 900 + n) for n in range(10)))
            codes = []
            for ws in [*quiet, *idlers]:
                with contextlib.suppress(ConnectionClosed):
                    async with asyncio.timeout(10):
                        while True:
                            await ws.recv()
                codes.append(ws.close_code)
            async with asyncio.timeout(10):
                while srv.server.connections:
                    await asyncio.sleep(0.05)
            closed_tcp = 0
            for sock in tcp:
                with contextlib.suppress(BlockingIOError, ConnectionError):
                    if sock.recv(1024) == b"":
                        closed_tcp += 1
                sock.close()
            for ws in halves:
                ws.transport.abort()
            return codes, closed_tcp

    codes, closed_tcp = run(main())
    assert codes == [4408] * (silent_ws + idle)
    assert closed_tcp == silent_tcp
    logged = logged_codes(caplog)
    assert logged.count("first_frame_timeout") == silent_ws
    assert logged.count("idle_timeout") == idle
    figures.record(
        "faults.half_open",
        silent_tcp + silent_ws + idle + half_closed,
        "half-open, silent, idle and half-closed connections, all closed by timeouts",
        section="faults",
    )


# -- a flood of connection attempts -------------------------------------------------------------


def test_connection_flood_is_refused_beyond_the_limit_and_honest_clients_get_in(
    run: Callable[..., Any],
) -> None:
    """With max_connections=50 held by idle connections, 500 more attempts
    are refused with HTTP 503 and 500 bare TCP connect-and-reset attempts come
    to nothing; the connection count never exceeds the limit; once the flood
    ends, honest clients are served."""
    limit, attempts, resets = 50, 500, 500

    async def attempt(uri: str) -> int:
        try:
            ws = await ws_connect(uri, subprotocols=["signedws.v1"])  # type: ignore[list-item]
        except InvalidStatus as exc:
            return exc.response.status_code
        await ws.close()
        return 101

    async def reset(port: int) -> None:
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        linger = (1).to_bytes(4, "little") + (0).to_bytes(4, "little")  # RST on close
        writer.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
        writer.transport.abort()

    async def main() -> tuple[list[int], int]:
        async with service(max_connections=limit) as srv:
            holders = [await raw(srv.uri) for _ in range(limit)]
            peak = len(srv.server.connections)
            statuses: list[int] = []
            for start in range(0, attempts, 100):
                statuses += await asyncio.gather(
                    *(attempt(srv.uri) for _ in range(start, min(start + 100, attempts)))
                )
                peak = max(peak, len(srv.server.connections))
            for start in range(0, resets, 100):
                await asyncio.gather(*(reset(srv.port) for _ in range(start, start + 100)))
            await asyncio.sleep(0.1)
            peak = max(peak, len(srv.server.connections))
            for ws, _ in holders:
                await ws.close()
            async with asyncio.timeout(10):
                while len(srv.server.connections) > 0:
                    await asyncio.sleep(0.02)
            await asyncio.gather(*(echo_round_trip(srv.uri, 300 + n) for n in range(limit)))
            return statuses, peak

    statuses, peak = run(main())
    assert statuses == [503] * attempts
    assert peak <= limit
    figures.record(
        "faults.flood",
        attempts + resets,
        f"flood attempts beyond max_connections={limit}: 503 or reset, none admitted",
        section="faults",
    )
