"""signedws end to end: real `websockets` and `picows` servers over loopback.

Usage::

    python benchmarks/e2e.py [--json PATH] [--window SECONDS] [--idle N] [--quick]
                             [--rounds N] [--runs NAME,NAME,...] [--idle-floor]

Throughput runs
---------------
Each run starts its server in fresh processes and a load generator in one
more, all on 127.0.0.1:

- ``baseline``: a plain `websockets` server whose handler counts messages:
  no authentication at all. Clients send the bare 128-byte payload.
- ``mac``: `signedws.asyncio.serve` with the same counting handler; clients
  send `mac` frames around the same payload.
- ``ed25519``: the same with `ed25519` (certificate) frames and a server key
  for the acknowledgements; the adapter verifies `ed25519` frames in its thread
  pool (libsodium releases the GIL). Three ways:
  ``ed25519-1cpu`` (one process pinned to one CPU), ``ed25519-2cpu-threads``
  (the same process on both CPUs: the adapter's thread offload) and
  ``ed25519-2cpu-reuseport`` (two server processes, one per CPU, sharing the
  port with SO_REUSEPORT).
- Diagnostics, to say what bounds a ratio: ``*-core`` runs verify the same
  frames in a minimal handler on websockets' public API (``recv``, verify,
  count); ``mac-floor`` verifies each frame inside websockets' reader as soon
  as it is parsed and only counts it (no queue, delivery, deduplication or
  acknowledgement): no adapter on websockets can cost less.
- picows (issue 16): ``picows-baseline`` (picows alone, each binary message
  taken as bytes and counted), ``picows-mac`` (`signedws.asyncio.picows.serve`),
  ``picows-mac-floor`` (`Verifier.verify` in ``on_ws_frame`` after the hello,
  nothing else: no adapter on picows can cost less), ``picows-mac-handoff``
  (the floor plus each message handed to a handler task's ``async for``,
  reading paused at 16 queued: no server that delivers to a handler coroutine
  on asyncio can cost less, whatever its session and pump), ``picows-ed25519-1cpu``
  and ``picows-ed25519-2workers`` (two processes sharing the port, as
  ``signedws serve --workers 2``), beside ``libsodium-floor`` (compare.py's
  ``floor.ed25519.libsodium`` chunk, timed alone on CPU 0: the most `ed25519`
  frames one core can verify).

The load generator must not be what is measured: after the handshake (and,
for signedws, the hello) each client pre-signs its frames and pre-encodes them
as masked WebSocket frames, then writes them to its socket in bulk. Sending
then costs the generator a memory copy and a few system calls, so nearly all
the machine's CPU time goes to the server. Bare runs (the same frame every
time) write one pre-built chunk again whenever the socket drains, so they
never run dry; picows alone absorbs ~2M messages/s, and the generator's CPU
use, reported per run, shows it keeps up. Single-CPU runs pin the server to
CPU 0 and the generator to CPU 1; two-CPU runs give the server both and the
generator shares CPU 1.

The server counts messages delivered to its handler. After a warm-up, the
parent asks every server process for its count and monotonic time at the
start and end of a fixed window: frames/s is the count's increase over the
time's. A run whose clients ran out of frames before the window closed (all
frames delivered, or a server process's rate falling in the window's last
half second: under SO_REUSEPORT a process may get few of the connections) is
repeated with twice as many (bounded).

Idle connections
----------------
``--idle N`` (default 10,000) clients each open a connection, receive the
hello and send one `mac` frame with their own credential, then stay idle, on
the websockets server, then on the picows server. Each server process reports
its resident set size after half of the connections and after all of them:
the growth between the two, per connection, is what one more connection costs
(the one-off costs of the first connections are not in it). It also reports
the size of its live `ConnectionState` objects and of what each one alone
references. ``--idle-floor`` measures the picows floor too, set up as the
adapter sets picows up (``picows-floor-idle``: the hello and the verifier
state, no signedws connection, task or session): what bounds the picows /
websockets ratio of memory per connection.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import logging
import multiprocessing
import os
import resource
import secrets
import socket
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection as Pipe
from multiprocessing.context import SpawnProcess
from pathlib import Path
from typing import Any, Final

sys.path.insert(0, str(Path(__file__).resolve().parent))

import report
import scenario
from scenario import AUDIENCE, PAYLOAD

HOST: Final = "127.0.0.1"
CONNECTIONS: Final = 16
WARMUP: Final = 1.0
WINDOW: Final = 3.0
ROUNDS: Final = 3
#: The last seconds of a window, measured apart: a server process whose
#: rate falls in them ran out of frames (the run is repeated with more).
TAIL: Final = 0.5
POLL: Final = 0.01
RUN_TIMEOUT: Final = 120.0
IDLE_CONNECTIONS: Final = 10_000
MAX_ATTEMPTS: Final = 3


# -- limits and CPUs -------------------------------------------------------------------


def raise_open_files(wanted: int) -> int:
    """Raise the soft RLIMIT_NOFILE towards ``wanted`` (never past the hard limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft == resource.RLIM_INFINITY or soft >= target:
        return soft
    resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return target


def pin(cpus: list[int] | None) -> None:
    if cpus is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, cpus)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def run_delay() -> float:
    """Seconds this process's threads have waited on a run queue for a CPU
    (``/proc/<pid>/task/*/schedstat``): a server whose CPU use plus this wait
    is near 1.00 of the window wanted the CPU all along (busy, or sharing it
    with other processes on the machine); below that, it was idle, waiting for
    frames."""
    total = 0
    for task in Path("/proc/self/task").iterdir():
        with contextlib.suppress(OSError):
            total += int((task / "schedstat").read_text().split()[1])
    return total / 1e9


def rss_bytes() -> int:
    """This process's resident set size."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE")


# -- server processes ------------------------------------------------------------------


@dataclass
class ServerSpec:
    #: "baseline" | "adapter" (signedws.asyncio.serve) | "core" | "floor" (diagnostics),
    #: "picows-baseline" | "picows-adapter" (signedws.asyncio.picows.serve) | "picows-floor",
    #: "picows-handoff" (the floor plus the hand-off to a handler task),
    #: "picows-floor-idle" (the floor with the adapter's picows options: ``--idle-floor``)
    mode: str
    port: int
    cpus: list[int] | None
    verify_workers: int | None = None


def quiet() -> None:
    """Runs end by dropping connections mid-stream: do not log each one."""
    logging.getLogger("websockets").setLevel(logging.CRITICAL)
    logging.getLogger("signedws").setLevel(logging.CRITICAL)
    logging.getLogger("picows").setLevel(logging.CRITICAL)


def server_process(spec: ServerSpec, pipe: Pipe) -> None:
    """A server worker: serve until told to stop; answer the parent's questions."""
    quiet()
    pin(spec.cpus)
    raise_open_files(IDLE_CONNECTIONS * 2)
    asyncio.run(_serve(spec, pipe))


async def _serve(spec: ServerSpec, pipe: Pipe) -> None:
    count = 0

    async def count_messages(connection: Any) -> None:
        nonlocal count
        async for _ in connection:
            count += 1

    async with server_for(spec, count_messages):
        pipe.send(("ready", os.getpid()))
        while True:
            if pipe.poll():
                command = pipe.recv()
                if command == "stop":
                    break
                if command == "count":
                    pipe.send(
                        (count + CORE_COUNT, time.monotonic(), time.process_time(), run_delay())
                    )
                elif command == "memory":
                    pipe.send(_memory_report())
            await asyncio.sleep(POLL)


def server_for(spec: ServerSpec, count_messages: Callable[[Any], Any]) -> Any:
    """The async context manager that runs ``spec``'s server, ``count_messages``
    as the handler of the runs that have one (the others count in `CORE_COUNT`)."""
    import websockets.asyncio.server  # noqa: PLC0415

    from signedws import ServerKey  # noqa: PLC0415
    from signedws.asyncio import serve  # noqa: PLC0415

    async def core_loop(websocket: Any) -> None:
        await _core_handler(websocket, verifier, server_key)

    common: dict[str, Any] = {"compression": None, "ping_interval": None, "reuse_port": True}
    verifier = scenario.Scenario().verifier  # clock: the adapter's (time.time)
    server_key = ServerKey("server-1", scenario.SERVER_KEY)
    server: Any
    if spec.mode.startswith("picows"):
        server = _picows_server(spec, count_messages, verifier, server_key)
    elif spec.mode == "baseline":
        server = websockets.asyncio.server.serve(
            count_messages, HOST, spec.port, max_size=65536, **common
        )
    elif spec.mode == "floor":
        server = websockets.asyncio.server.serve(
            _floor_handler(verifier, server_key),
            HOST,
            spec.port,
            subprotocols=["signedws.v1"],  # type: ignore[list-item]
            max_size=verifier.max_frame_size,
            create_connection=_floor_connection(),
            **common,
        )
    elif spec.mode == "core":
        server = websockets.asyncio.server.serve(
            core_loop,
            HOST,
            spec.port,
            subprotocols=["signedws.v1"],  # type: ignore[list-item]
            max_size=verifier.max_frame_size,
            **common,
        )
    else:
        server = serve(
            count_messages,
            HOST,
            spec.port,
            **_adapter_keywords(spec, verifier, server_key),
            **common,
        )
    return server


async def _core_handler(websocket: Any, verifier: Any, server_key: Any) -> None:
    """The least a signedws server can do on websockets, without the adapter:
    hello, verify each frame inline (`ed25519` too: no thread pool), and
    acknowledge at most every 20 ms. Counts accepted frames in `CORE_COUNT`.
    """
    from signedws.server import (  # noqa: PLC0415
        ConnectionRejected,
        MessageReceived,
        ServerSession,
    )

    session = ServerSession(verifier, now=time.time(), server_key=server_key)
    await websocket.send(session.hello)
    receive, events, done = session.receive_message, session.events_received, session.message_done
    clock = time.time
    next_ack = 0.0
    global CORE_COUNT  # noqa: PLW0603 - one counter per server process
    try:
        async for data in websocket:
            now = clock()
            receive(data, now=now)
            for event in events():
                if type(event) is not MessageReceived:
                    assert isinstance(event, ConnectionRejected)  # the only other event
                    await websocket.close(event.code.close_code, event.code.peer_reason)
                    return
                done(event.message, now=now)
            CORE_COUNT += 1
            if now >= next_ack:
                next_ack = now + 0.02
                session.send_message(None, now=now)
                for frame in session.data_to_send():
                    await websocket.send(frame)
    except Exception:  # noqa: S110 - the run ends by dropping connections
        pass


CORE_COUNT = 0


def _adapter_keywords(spec: ServerSpec, verifier: Any, server_key: Any) -> dict[str, Any]:
    """The signedws keywords both adapters run with here: no origin check (the
    load generator sends none), no timeouts, room for the idle connections."""
    return {
        "verifier": verifier,
        "origins": [],
        "allow_no_origin": True,
        "server_key": server_key,
        "first_frame_timeout": None,
        "idle_timeout": None,
        "max_connections": IDLE_CONNECTIONS * 2,
        # The idle connections are one principal's (SPEC.md §10: not the
        # per-principal limit's default of 1,000).
        "max_connections_per_principal": None,
        "verify_workers": spec.verify_workers,
    }


def _picows_server(spec: ServerSpec, handler: Any, verifier: Any, server_key: Any) -> Any:
    """The picows servers: bare, the verify-only floor, the signedws adapter."""
    from picows import (  # noqa: PLC0415
        WSListener,
        WSMsgType,
        WSUpgradeResponse,
        WSUpgradeResponseWithListener,
        ws_create_server,
    )

    from signedws import ServerSession  # noqa: PLC0415
    from signedws.asyncio.connection import DEFAULT_MAX_QUEUE  # noqa: PLC0415
    from signedws.asyncio.picows import serve  # noqa: PLC0415

    if spec.mode == "picows-adapter":
        return serve(
            handler,
            HOST,
            spec.port,
            **_adapter_keywords(spec, verifier, server_key),
            reuse_port=True,
        )
    binary, close = WSMsgType.BINARY, WSMsgType.CLOSE

    class Bare(WSListener):
        """Counts binary messages, each taken as bytes (as any handler would)."""

        def on_ws_frame(self, transport: Any, frame: Any) -> None:
            global CORE_COUNT  # noqa: PLW0603 - one counter per server process
            if frame.msg_type is binary:
                frame.get_payload_as_bytes()
                CORE_COUNT += 1
            elif frame.msg_type is close:
                transport.disconnect()

    class Floor(WSListener):
        """The least a signedws server can cost on picows: the hello, then
        `Verifier.verify` on each binary frame in ``on_ws_frame``, and a count;
        nothing queued, delivered, deduplicated or acknowledged."""

        def on_ws_connected(self, transport: Any) -> None:
            session = ServerSession(verifier, now=time.time(), server_key=server_key)
            self.state = session.verifier_state
            transport.send(binary, session.hello)

        def on_ws_frame(self, transport: Any, frame: Any) -> None:
            global CORE_COUNT  # noqa: PLW0603 - one counter per server process
            if frame.msg_type is binary:
                verify(frame.get_payload_as_bytes(), self.state, now=time.time())
                CORE_COUNT += 1
            elif frame.msg_type is close:
                transport.disconnect()

    class Handoff(Floor):
        """The floor, plus what any server that hands verified messages to a
        handler coroutine pays on asyncio: each message queued in a list and
        taken by the connection's handler task with ``async for``, reading
        paused while ``max_queue`` (16) wait, as the adapter does; no session,
        deduplication, acknowledgement or limit. `CORE_COUNT` counts in the
        handler."""

        def on_ws_connected(self, transport: Any) -> None:
            super().on_ws_connected(transport)
            self.queue: list[bytes] = []
            self.waiter: asyncio.Future[None] | None = None
            self.paused = False
            self.transport = transport
            self.task = asyncio.get_running_loop().create_task(self.handle())

        def on_ws_frame(self, transport: Any, frame: Any) -> None:
            if frame.msg_type is binary:
                payload = frame.get_payload_as_bytes()
                verify(payload, self.state, now=time.time())
                self.queue.append(payload)
                waiter = self.waiter
                if waiter is not None:
                    self.waiter = None
                    if not waiter.done():
                        waiter.set_result(None)
                if len(self.queue) >= DEFAULT_MAX_QUEUE and not self.paused:
                    self.paused = True
                    transport.underlying_transport.pause_reading()
            elif frame.msg_type is close:
                transport.disconnect()

        def on_ws_disconnected(self, transport: Any) -> None:
            self.task.cancel()

        def __aiter__(self) -> Handoff:
            return self

        async def __anext__(self) -> bytes:
            while not self.queue:
                if self.paused:
                    self.paused = False
                    self.transport.underlying_transport.resume_reading()
                self.waiter = asyncio.get_running_loop().create_future()
                await self.waiter
            return self.queue.pop(0)

        async def handle(self) -> None:
            global CORE_COUNT  # noqa: PLW0603 - one counter per server process
            async for _ in self:
                CORE_COUNT += 1

    verify = verifier.verify
    listener = {"picows-baseline": Bare, "picows-handoff": Handoff}.get(spec.mode, Floor)

    options: dict[str, Any] = {}
    switching = None
    if spec.mode == "picows-floor-idle":
        # The floor's memory per idle connection: picows as the adapter sets
        # it up (read buffer, asyncio's transports, one logger adapter, one
        # 101 response), the hello and the verifier state; nothing else.
        from signedws.asyncio.picows import _READ_BUFFER, _shared_logger  # noqa: PLC0415

        options = {
            "read_buffer_init_size": _READ_BUFFER,
            "use_aiofastnet": False,
            "logger_name": _shared_logger(None),
        }
        switching = WSUpgradeResponse.create_101_response(
            extra_headers={"Sec-WebSocket-Protocol": "signedws.v1"}
        )

    def factory(request: Any) -> Any:
        if switching is not None:
            return WSUpgradeResponseWithListener(switching, listener())
        offered = request.headers.get("Sec-WebSocket-Protocol")
        headers = {"Sec-WebSocket-Protocol": "signedws.v1"} if offered else None
        return WSUpgradeResponseWithListener(
            WSUpgradeResponse.create_101_response(extra_headers=headers), listener()
        )

    @contextlib.asynccontextmanager
    async def running() -> Any:
        server = await ws_create_server(
            factory, HOST, spec.port, max_frame_size=65536, reuse_port=True, **options
        )
        async with server:
            yield server

    return running()


def _floor_connection() -> type:
    """The least a signedws server can cost on websockets: each binary frame
    is verified inside websockets' reader, as soon as it is parsed, and
    counted; nothing is queued, delivered, deduplicated or acknowledged. The
    bound of what any adapter on websockets can reach with this verifier."""
    from websockets.asyncio.server import ServerConnection  # noqa: PLC0415
    from websockets.frames import Frame, Opcode  # noqa: PLC0415

    binary = Opcode.BINARY

    class FloorConnection(ServerConnection):
        session: Any = None

        def process_event(self, event: Any) -> None:
            global CORE_COUNT  # noqa: PLW0603 - one counter per server process
            session = self.session
            if session is not None and type(event) is Frame and event.opcode is binary:
                session.verify(event.data, now=time.time())
                CORE_COUNT += 1
            else:
                super().process_event(event)

    return FloorConnection


def _floor_handler(verifier: Any, server_key: Any) -> Callable[[Any], Any]:
    from signedws import ServerSession  # noqa: PLC0415

    async def handler(websocket: Any) -> None:
        session = ServerSession(verifier, now=time.time(), server_key=server_key)
        await websocket.send(session.hello)
        websocket.session = session
        await websocket.wait_closed()

    return handler


def _memory_report() -> dict[str, Any]:
    """RSS, and the verifier state of every live connection (SPEC.md §6.4)."""
    from signedws.verifier import ConnectionState, VerifiedCredential  # noqa: PLC0415

    gc.collect()
    states = [o for o in gc.get_objects() if type(o) is ConnectionState]
    credentials = {id(o): o for o in gc.get_objects() if type(o) is VerifiedCredential}
    own = [_state_bytes(s) for s in states]
    shared = [_credential_bytes(c) for c in credentials.values()]
    return {
        "rss": rss_bytes(),
        "states": len(states),
        "state_bytes": sum(own) / max(1, len(own)),
        "state_bytes_max": max(own, default=0),
        "credentials": len(credentials),
        "credential_bytes": sum(shared) / max(1, len(shared)),
    }


def _state_bytes(state: Any) -> int:
    """sys.getsizeof of a ConnectionState and of what it alone references.

    Its nonce and integers are its own. Its ``principal`` and ``credential``
    point into a `VerifiedCredential` shared with the credential cache and
    every connection of that credential: counted once per credential, apart.
    """
    size = sys.getsizeof(state)
    for value in (state.nonce, state.nonce_expires_ms, state.highest, state.bitmap):
        if not (type(value) is int and -5 <= value <= 256):  # small ints are shared
            size += sys.getsizeof(value)
    if state.principal is not None and (
        state.credential is None or state.principal is not state.credential.principal
    ):
        size += sys.getsizeof(state.principal)
    return size


def _credential_bytes(vc: Any) -> int:
    """A VerifiedCredential and the Python objects it references (not the
    OpenSSL/libsodium memory behind its key objects)."""
    seen: set[int] = set()

    def size(obj: object) -> int:
        if id(obj) in seen or obj is None or type(obj) in (bool,):
            return 0
        seen.add(id(obj))
        total = sys.getsizeof(obj)
        if isinstance(obj, tuple | frozenset | list):
            total += sum(size(x) for x in obj)
        return total

    total = sys.getsizeof(vc)
    for name in type(vc).__slots__:
        total += size(getattr(vc, name, None))
    return total


# -- the load generator -----------------------------------------------------------------


@dataclass
class LoadSpec:
    mode: str
    port: int
    connections: int
    frames: int  # per connection
    cpus: list[int] | None
    #: Bare runs: send exactly ``frames`` too, not an endless stream
    #: (instructions.py counts what a known number of messages costs).
    exact: bool = False


def client_process(spec: LoadSpec, pipe: Pipe) -> None:
    quiet()
    pin(spec.cpus)
    raise_open_files(IDLE_CONNECTIONS * 2)
    asyncio.run(_load(spec, pipe))


def _frames(mode: str, hello: bytes | None, count: int) -> list[bytes]:
    from signedws import Signer  # noqa: PLC0415

    if mode == "baseline":
        return [PAYLOAD] * count
    now = time.time()
    assert hello is not None
    signer = Signer.from_hello(
        hello,
        scenario.credential("mac" if mode == "mac" else "ed25519", now=now),
        audience=AUDIENCE,
        now=now,
        stream=secrets.token_bytes(16),
    )
    return [signer.sign(PAYLOAD, now=now) for _ in range(count)]


async def _drain(websocket: Any) -> None:
    """Read (and drop) whatever the server sends: acknowledgements."""
    try:
        async for _ in websocket:
            pass
    except Exception:  # noqa: S110 - the run ends by stopping us
        pass


#: Frames per write of the endless writer (bare runs): the same frame over and
#: over, written whenever a connection's buffer holds less than one chunk.
CHUNK_FRAMES: Final = 2048


async def _load(spec: LoadSpec, pipe: Pipe) -> None:
    """Open the connections, pre-build their frames, then write them on "go".

    Runs with signedws frames write each connection's frames (distinct
    counters) in one bulk write. Bare runs (the same unauthenticated payload
    every time) use an endless writer: a pre-built, masked chunk of
    `CHUNK_FRAMES` frames, written again whenever the connection's buffer
    drops below one chunk, so they never run dry. Answers "cpu" with this
    process's CPU time, to show the generator is not the bottleneck.
    """
    from websockets.asyncio.client import connect  # noqa: PLC0415
    from websockets.frames import Frame, Opcode  # noqa: PLC0415

    subprotocols = None if spec.mode == "baseline" else ["signedws.v1"]
    endless = spec.mode == "baseline" and not spec.exact
    clients = []
    for _ in range(spec.connections):
        websocket = await connect(
            f"ws://{HOST}:{spec.port}",
            subprotocols=subprotocols,  # type: ignore[arg-type]
            compression=None,
            ping_interval=None,
            max_size=2**20,
            max_queue=None,
        )
        hello = None if spec.mode == "baseline" else await websocket.recv(decode=False)
        frames = _frames(spec.mode, hello, CHUNK_FRAMES if endless else spec.frames)
        wire = b"".join(Frame(Opcode.BINARY, f).serialize(mask=True) for f in frames)
        clients.append((websocket, wire))
    tasks = [asyncio.create_task(_drain(ws)) for ws, _ in clients]
    pipe.send(("ready", sum(len(w) for _, w in clients)))
    while not pipe.poll():
        await asyncio.sleep(POLL)
    pipe.recv()  # "go"
    # Bypass the protocol object: the frames are complete and masked, and
    # nothing else writes to these connections (no pings, no compression).
    transports = [(websocket.transport, wire) for websocket, wire in clients]
    for transport, wire in transports:
        transport.write(wire)
    if not endless:
        del clients, transports
    while True:
        if pipe.poll():
            command = pipe.recv()
            if command == "cpu":
                pipe.send(time.process_time())
                continue
            break  # "stop"
        if endless:
            for transport, wire in transports:
                if transport.get_write_buffer_size() < len(wire):
                    transport.write(wire)
            await asyncio.sleep(0.0005)
        else:
            await asyncio.sleep(POLL)
    for task in tasks:
        task.cancel()


# -- runs ---------------------------------------------------------------------------


@dataclass
class Run:
    name: str
    mode: str
    server: str
    servers: list[ServerSpec]
    client_cpus: list[int] | None
    reference: str | None = None
    frames_per_connection: int = 5000
    result: dict[str, Any] = field(default_factory=dict)


def _start(target: Callable[..., None], spec: object) -> tuple[SpawnProcess, Pipe]:
    context = multiprocessing.get_context("spawn")
    parent, child = context.Pipe()
    process = context.Process(target=target, args=(spec, child), daemon=True)
    process.start()
    return process, parent


def _expect(pipe: Pipe, what: str, timeout: float = 60.0) -> Any:
    if not pipe.poll(timeout):
        raise TimeoutError(f"no {what} in {timeout} s")
    return pipe.recv()


def _stop(processes: list[SpawnProcess], pipes: list[Pipe]) -> None:
    for pipe in pipes:
        with contextlib.suppress(OSError):
            pipe.send("stop")
    for process in processes:
        process.join(5)
        if process.is_alive():
            process.terminate()  # our own child, by its handle
            process.join(5)


def throughput(run: Run, *, window: float) -> dict[str, Any]:
    """One measurement of ``run``: frames/s over ``window`` seconds."""
    processes, pipes = [], []
    try:
        for spec in run.servers:
            process, pipe = _start(server_process, spec)
            processes.append(process)
            pipes.append(pipe)
            _expect(pipe, "server")
        load = LoadSpec(
            run.mode, run.servers[0].port, CONNECTIONS, run.frames_per_connection, run.client_cpus
        )
        client, client_pipe = _start(client_process, load)
        processes.append(client)
        _expect(client_pipe, "clients", timeout=RUN_TIMEOUT)
        client_pipe.send("go")
        time.sleep(WARMUP)
        start = [_ask(pipe) for pipe in pipes]
        client_start = _ask_cpu(client_pipe)
        time.sleep(window - TAIL)
        tail = [_ask(pipe) for pipe in pipes]
        time.sleep(TAIL)
        end = [_ask(pipe) for pipe in pipes]
        client_cpu = (_ask_cpu(client_pipe) - client_start) / (end[0][1] - start[0][1])
        client_pipe.send("stop")
        pipes.append(client_pipe)
    finally:
        _stop(processes, pipes)
    counts = [e[0] - s[0] for s, e in zip(start, end, strict=True)]
    rates = [c / (e[1] - s[1]) for c, s, e in zip(counts, start, end, strict=True)]
    cpu = [(e[2] - s[2]) / (e[1] - s[1]) for s, e in zip(start, end, strict=True)]
    waited = [(e[3] - s[3]) / (e[1] - s[1]) for s, e in zip(start, end, strict=True)]
    cpu_seconds = sum(e[2] - s[2] for s, e in zip(start, end, strict=True))
    # Bare runs write endlessly (`_load`): they never run dry.
    total = CONNECTIONS * run.frames_per_connection if run.mode != "baseline" else float("inf")
    return {
        "frames": sum(counts),
        "seconds": window,
        "frames_per_second": sum(rates),
        "frames_per_cpu_second": sum(counts) / cpu_seconds if cpu_seconds else 0.0,
        "per_process": [round(r) for r in rates],
        "server_cpu": [round(c, 2) for c in cpu],
        # Its wait for a CPU taken by another process (see `run_delay`).
        "server_waited": [round(w, 2) for w in waited],
        # The load generator's CPU use in the window (1.00: its CPU is busy).
        "client_cpu": round(client_cpu, 2),
        # Every frame delivered, or a server process (with too few of the
        # connections, under SO_REUSEPORT) slowing down at the window's end.
        "ran_dry": sum(e[0] for e in end) >= total
        or any(
            (e[0] - t[0]) / (e[1] - t[1]) < 0.5 * (t[0] - s[0]) / (t[1] - s[1])
            for s, t, e in zip(start, tail, end, strict=True)
        ),
    }


def _ask_cpu(pipe: Pipe) -> float:
    """The load generator's CPU time."""
    pipe.send("cpu")
    return float(_expect(pipe, "client cpu"))


def _ask(pipe: Pipe) -> tuple[int, float, float, float]:
    """A server's message count, monotonic time, CPU time (all its threads)
    and run-queue wait."""
    pipe.send("count")
    return tuple(_expect(pipe, "count"))


def runs(*, quick: bool) -> list[Run]:
    """The throughput runs. ``*-core`` and ``*-floor`` runs are diagnostics
    (see the module docstring): `_core_handler` and `_floor_connection`."""
    port = free_port
    one: list[int] | None = [0]
    two: list[int] | None = [0, 1]
    other: list[int] | None = [1]
    cpus = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else set()
    if len(cpus) < 2:  # a one-CPU machine: nothing to pin
        one = two = other = None
    scale = 0.5 if quick else 1.0

    def frames(n: int) -> int:
        return int(n * scale)

    reuse = port()
    reuse_picows = port()
    return [
        Run(
            "baseline",
            "baseline",
            "websockets alone, 1 process, CPU 0",
            [ServerSpec("baseline", port(), one)],
            other,
            frames_per_connection=frames(100_000),
        ),
        Run(
            "mac",
            "mac",
            "signedws.asyncio.serve, 1 process, CPU 0",
            [ServerSpec("adapter", port(), one)],
            other,
            reference="baseline",
            frames_per_connection=frames(64_000),
        ),
        Run(
            "mac-floor",
            "mac",
            "websockets + verification inside its reader, nothing else, CPU 0",
            [ServerSpec("floor", port(), one)],
            other,
            reference="baseline",
            frames_per_connection=frames(80_000),
        ),
        Run(
            "mac-core",
            "mac",
            "websockets + core ServerSession (no adapter), CPU 0",
            [ServerSpec("core", port(), one)],
            other,
            reference="baseline",
            frames_per_connection=frames(48_000),
        ),
        Run(
            "ed25519-1cpu",
            "ed25519",
            "signedws.asyncio.serve, 1 process, CPU 0",
            [ServerSpec("adapter", port(), one)],
            other,
            frames_per_connection=frames(6_000),
        ),
        Run(
            "ed25519-1cpu-core",
            "ed25519",
            "websockets + core ServerSession (no adapter), CPU 0",
            [ServerSpec("core", port(), one)],
            other,
            reference="ed25519-1cpu",
            frames_per_connection=frames(6_000),
        ),
        Run(
            "ed25519-2cpu-threads",
            "ed25519",
            "signedws.asyncio.serve, 1 process, CPUs 0-1 (thread pool, 2 workers)",
            [ServerSpec("adapter", port(), two, verify_workers=2)],
            other,
            reference="ed25519-1cpu",
            frames_per_connection=frames(8_000),
        ),
        Run(
            "ed25519-2cpu-reuseport",
            "ed25519",
            "signedws.asyncio.serve, 2 processes (SO_REUSEPORT), one per CPU",
            [
                ServerSpec("adapter", reuse, [0] if one else None),
                ServerSpec("adapter", reuse, [1] if one else None),
            ],
            other,
            reference="ed25519-1cpu",
            frames_per_connection=frames(12_000),
        ),
        # -- picows (issue 16) --
        Run(
            "picows-baseline",
            "baseline",
            "picows alone (each binary message taken as bytes, counted), CPU 0",
            [ServerSpec("picows-baseline", port(), one)],
            other,
            reference="baseline",
        ),
        Run(
            "picows-mac",
            "mac",
            "signedws.asyncio.picows.serve, 1 process, CPU 0",
            [ServerSpec("picows-adapter", port(), one)],
            other,
            reference="baseline",
            frames_per_connection=frames(100_000),
        ),
        Run(
            "picows-mac-floor",
            "mac",
            "picows + Verifier.verify in on_ws_frame, nothing else, CPU 0",
            [ServerSpec("picows-floor", port(), one)],
            other,
            reference="picows-baseline",
            frames_per_connection=frames(120_000),
        ),
        Run(
            "picows-mac-handoff",
            "mac",
            "picows + Verifier.verify in on_ws_frame + each message handed to a handler "
            "task's async for (paused at 16 queued), nothing else, CPU 0",
            [ServerSpec("picows-handoff", port(), one)],
            other,
            reference="picows-mac-floor",
            frames_per_connection=frames(100_000),
        ),
        Run(
            "libsodium-floor",
            "sodium-floor",
            "crypto_sign_open alone on the ed25519 frames' signed inputs (compare.py's "
            "floor.ed25519.libsodium), CPU 0: the most ed25519 frames one core can verify",
            [],
            None,
        ),
        Run(
            "picows-ed25519-1cpu",
            "ed25519",
            "signedws.asyncio.picows.serve, 1 process, CPU 0",
            [ServerSpec("picows-adapter", port(), one)],
            other,
            reference="libsodium-floor",
            frames_per_connection=frames(6_000),
        ),
        Run(
            "picows-ed25519-2workers",
            "ed25519",
            "signedws.asyncio.picows.serve, 2 processes (SO_REUSEPORT, as --workers 2), "
            "one per CPU",
            [
                ServerSpec("picows-adapter", reuse_picows, [0] if one else None),
                ServerSpec("picows-adapter", reuse_picows, [1] if one else None),
            ],
            other,
            reference="picows-ed25519-1cpu",
            frames_per_connection=frames(12_000),
        ),
    ]


def sodium_floor_process(seconds: float, pipe: Pipe) -> None:
    """Verify the ed25519 frames' signed inputs with libsodium alone, pinned to
    CPU 0, for ``seconds``; send the best chunk's rate (verifications/s)."""
    pin([0] if len(os.sched_getaffinity(0)) > 1 else None)
    import compare  # noqa: PLC0415 - the same floor as compare.py's row

    chunk = compare.Bench().floor_sodium(100)
    best = 0.0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        started = time.perf_counter()
        chunk()
        best = max(best, 100 / (time.perf_counter() - started))
    pipe.send(best)


def sodium_floor(window: float) -> dict[str, Any]:
    """`sodium_floor_process`'s result, shaped as a throughput result."""
    process, pipe = _start(sodium_floor_process, window)
    try:
        rate = float(_expect(pipe, "floor", timeout=RUN_TIMEOUT))
    finally:
        _stop([process], [])
    return {
        "frames": 0,
        "seconds": window,
        "frames_per_second": rate,
        "frames_per_cpu_second": rate,
        "per_process": [round(rate)],
        "server_cpu": [1.0],
        "server_waited": [0.0],
        "client_cpu": 0.0,
        "ran_dry": False,
    }


def measure_runs(
    *, window: float, rounds: int, quick: bool, only: set[str] | None = None
) -> list[dict[str, Any]]:
    """Every run ``rounds`` times, interleaved; per run, its best round.

    Other processes on the machine slow some rounds down; a run's best round
    is the least disturbed. Ratios are also given paired (each round's run
    over its reference in the same round, median over rounds).
    """
    plan = [run for run in runs(quick=quick) if only is None or run.name in only]
    samples: dict[str, list[dict[str, Any]]] = {run.name: [] for run in plan}
    for round_ in range(rounds):
        for run in plan:
            for _ in range(MAX_ATTEMPTS):
                if run.mode == "sodium-floor":
                    result = sodium_floor(window)
                    break
                result = throughput(run, window=window)
                if not result["ran_dry"]:
                    break
                run.frames_per_connection *= 2
            samples[run.name].append(result)
            print(
                f"round {round_ + 1}: {run.name:24s} {result['frames_per_second']:10,.0f} "
                f"frames/s, server CPU {' + '.join(str(c) for c in result['server_cpu'])} "
                f"(waited {' + '.join(str(c) for c in result.get('server_waited', []))}), "
                f"client CPU {result['client_cpu']}"
                + ("  (ran dry!)" if result["ran_dry"] else ""),
                flush=True,
            )
    out = []
    best = {name: max(rs, key=lambda r: r["frames_per_second"]) for name, rs in samples.items()}
    for run in plan:
        entry: dict[str, Any] = {
            "name": run.name,
            "server": run.server,
            "reference": run.reference,
            "frames_per_connection": run.frames_per_connection,
            "rounds": [round(r["frames_per_second"]) for r in samples[run.name]],
            **best[run.name],
        }
        if run.reference in samples:
            paired = [
                a["frames_per_second"] / b["frames_per_second"]
                for a, b in zip(samples[run.name], samples[run.reference], strict=True)
            ]
            entry["vs_reference"] = (
                best[run.name]["frames_per_second"] / best[run.reference]["frames_per_second"]
            )
            entry["vs_reference_paired"] = statistics.median(paired)
        out.append(entry)
    return out


# -- idle connections --------------------------------------------------------------------


def idle_client_process(spec: LoadSpec, pipe: Pipe) -> None:
    quiet()
    raise_open_files(spec.connections + 1000)
    asyncio.run(_idle(spec, pipe))


async def _idle(spec: LoadSpec, pipe: Pipe) -> None:
    from websockets.asyncio.client import connect  # noqa: PLC0415

    from signedws import Signer  # noqa: PLC0415

    now = time.time()
    limit = asyncio.Semaphore(64)
    websockets: list[Any] = []

    async def one(i: int) -> None:
        async with limit:
            websocket = await connect(
                f"ws://{HOST}:{spec.port}",
                subprotocols=["signedws.v1"],  # type: ignore[list-item]
                compression=None,
                ping_interval=None,
                open_timeout=60,
            )
            hello = await websocket.recv(decode=False)
            credential = scenario.mac_credential(now=now, cid=f"idle-{i}")
            signer = Signer.from_hello(hello, credential, audience=AUDIENCE, now=time.time())
            await websocket.send(signer.sign(PAYLOAD, now=time.time()))
            websockets.append(websocket)

    # In two halves: the parent reads the server's memory after each, and the
    # growth from the first half to the second is per connection alone (what
    # the first connections set up once, imports and caches, is not in it).
    half = spec.connections // 2
    started = time.monotonic()
    await asyncio.gather(*(one(i) for i in range(half)))
    pipe.send(("half", time.monotonic() - started))
    pipe.recv()  # "go on"
    await asyncio.gather(*(one(i) for i in range(half, spec.connections)))
    pipe.send(("ready", time.monotonic() - started))
    while not pipe.poll():
        await asyncio.sleep(0.1)


def idle_memory(connections: int, mode: str = "adapter") -> dict[str, Any]:
    """RSS and verifier state of one server process (``mode``: "adapter", the
    websockets server, or "picows-adapter") holding ``connections`` idle
    authenticated connections."""
    port = free_port()
    processes, pipes = [], []
    try:
        server, pipe = _start(server_process, ServerSpec(mode, port, None))
        processes.append(server)
        pipes.append(pipe)
        _expect(pipe, "server")
        pipe.send("memory")
        before = _expect(pipe, "memory")
        client, client_pipe = _start(
            idle_client_process, LoadSpec("mac", port, connections, 1, None)
        )
        processes.append(client)
        _expect(client_pipe, "half the idle clients", timeout=600)
        half = connections // 2
        deadline = time.monotonic() + 60
        while _ask(pipe)[0] < half and time.monotonic() < deadline:
            time.sleep(0.1)
        pipe.send("memory")
        middle = _expect(pipe, "memory")
        client_pipe.send("go on")
        _, seconds = _expect(client_pipe, "idle clients", timeout=600)
        pipes.append(client_pipe)
        deadline = time.monotonic() + 60
        while _ask(pipe)[0] < connections and time.monotonic() < deadline:
            time.sleep(0.1)
        delivered = _ask(pipe)[0]
        pipe.send("memory")
        after = _expect(pipe, "memory")
        if delivered != connections or after["states"] < connections:
            raise RuntimeError(
                f"{delivered} of {connections} idle connections delivered their frame, "
                f"{after['states']} open: the memory per connection would be wrong"
            )
    finally:
        _stop(processes, pipes)
    return {
        "server": mode,
        "connections": connections,
        "scheme": "mac",
        "frames_per_connection": 1,
        "delivered": delivered,
        "connect_seconds": seconds,
        "rss_before": before["rss"],
        "rss_after": after["rss"],
        # The second half's growth, per connection (see `_idle`).
        "rss_bytes_per_connection": (after["rss"] - middle["rss"]) / (connections - half),
        # All of it, fixed costs of the first connections included.
        "rss_bytes_per_connection_all": (after["rss"] - before["rss"]) / connections,
        "live_states": after["states"],
        "verifier_state_bytes": after["state_bytes"],
        "verifier_state_bytes_max": after["state_bytes_max"],
        "credentials": after["credentials"],
        "credential_bytes": after["credential_bytes"],
        "notes": (
            "Each connection has its own credential (as each user would), so each holds its "
            f"own VerifiedCredential, about {after['credential_bytes']:.0f} bytes of Python "
            "objects (plus its OpenSSL HMAC context), shared with the credential cache while "
            "cached; it is counted apart from the per-connection verifier state."
        ),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", type=Path, help="write the results as JSON to this path")
    parser.add_argument("--window", type=float, default=WINDOW, help="seconds measured per run")
    parser.add_argument("--rounds", type=int, default=ROUNDS, help="rounds of every run")
    parser.add_argument("--idle", type=int, default=IDLE_CONNECTIONS, help="idle connections")
    parser.add_argument("--quick", action="store_true", help="short runs, 1,000 idle connections")
    parser.add_argument("--runs", help="only these runs (comma-separated); --idle 0: none idle")
    parser.add_argument(
        "--idle-floor",
        action="store_true",
        help="also the idle memory of picows + verification alone (what bounds the ratio)",
    )
    args = parser.parse_args(argv)
    raise_open_files(IDLE_CONNECTIONS * 2)
    started = time.time()
    load_before = report.load_average()
    window = min(args.window, 1.5) if args.quick else args.window
    rounds = 1 if args.quick else args.rounds
    only = set(args.runs.split(",")) if args.runs else None
    results = measure_runs(window=window, rounds=rounds, quick=args.quick, only=only)
    idle = min(args.idle, 1000) if args.quick else args.idle
    memory = memory_picows = memory_floor = None
    if args.idle:
        memory = idle_memory(idle)
        memory_picows = idle_memory(idle, "picows-adapter")
        if args.idle_floor:
            memory_floor = idle_memory(idle, "picows-floor-idle")
        for m in (memory, memory_picows, memory_floor):
            if m is None:
                continue
            print(
                f"idle ({m['server']}): {m['connections']:,} connections, "
                f"{m['rss_bytes_per_connection']:,.0f} B RSS and "
                f"{m['verifier_state_bytes']:.0f} B verifier state per connection",
                flush=True,
            )
    # A run whose reference was not measured (``--runs`` without it) has no
    # ratio: it is in the runs table, not in the targets.
    by_name = {r["name"]: r for r in results if r["reference"] is None or "vs_reference" in r}
    targets = []
    if "mac" in by_name:
        targets.append(
            _target("mac throughput / unauthenticated baseline", ">=", 0.8, by_name["mac"])
        )
    if "ed25519-2cpu-threads" in by_name:
        targets.append(
            _target(
                "ed25519, both CPUs (adapter thread pool) / one CPU",
                ">=",
                1.7,
                by_name["ed25519-2cpu-threads"],
            )
        )
    if "ed25519-2cpu-reuseport" in by_name:
        targets.append(
            _target(
                "ed25519, both CPUs (two processes, SO_REUSEPORT) / one CPU",
                ">=",
                1.7,
                by_name["ed25519-2cpu-reuseport"],
            )
        )
    if memory is not None:
        targets.append(
            _target(
                "verifier state per idle connection, bytes",
                "<=",
                512,
                memory["verifier_state_bytes"],
            )
        )
    # Issue 16: the picows transport.
    for what, bound, a, b in (
        ("picows mac / bare websockets (`baseline`)", 1.3, "picows-mac", "baseline"),
        ("picows mac / picows + verify-only floor", 0.85, "picows-mac", "picows-mac-floor"),
        ("picows ed25519, 1 CPU / libsodium floor", 0.9, "picows-ed25519-1cpu", "libsodium-floor"),
        (
            "picows ed25519, --workers 2 / 1 CPU",
            1.8,
            "picows-ed25519-2workers",
            "picows-ed25519-1cpu",
        ),
    ):
        if a in by_name and b in by_name:
            targets.append(_target(what, ">=", bound, _pair(by_name[a], by_name[b])))
    if memory is not None and memory_picows is not None:
        targets.append(
            _target(
                "RSS per idle connection, picows / websockets",
                "<=",
                0.6,
                memory_picows["rss_bytes_per_connection"] / memory["rss_bytes_per_connection"],
            )
        )
    result = {
        "method": method(window, rounds),
        "throughput": results,
        "memory": memory,
        "memory_picows": memory_picows,
        "memory_picows_floor": memory_floor,
        "targets": targets,
        "seconds": time.time() - started,
        "load_average": {"before": load_before, "after": report.load_average()},
        "environment": report.environment(),
    }
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    print(report.e2e_tables(result))
    return 0


def method(window: float, rounds: int) -> str:
    """How the throughput runs measure, for RESULTS.md."""
    return (
        f"{CONNECTIONS} connections per run, every server one process pinned to one CPU "
        "(CPU 0; the load generator on CPU 1) unless the run says otherwise. The load "
        "generator is one process: a `websockets` client does each handshake (and reads "
        "the hello), then a raw-socket writer sends pre-built, masked frames through the "
        "connection's transport (pre-signed for signedws runs, with consecutive counters, "
        "in one bulk write; for the bare runs one pre-built chunk of the same frame, "
        "written again whenever the socket drains). Its CPU use is in the table: far "
        "below 1.00 in every run, picows' included, so it is not what is measured. "
        f"Frames/s delivered to the server's handler over a {window:g} s window after "
        f"{WARMUP:g} s of warm-up; 128-byte payloads. Every run {rounds} times, "
        "interleaved; the table shows each run's best round (the least disturbed by "
        "other processes) with its server's CPU use in that window (1.00 = one CPU busy) "
        "and, in brackets, how long it waited for a CPU another process held (on a "
        "shared machine, CPU use plus that wait near 1.00 means the server wanted the "
        "CPU all along), and its ratio to its reference's best round. The targets also "
        "give the median of the ratios paired round by round, and the ratio of frames "
        "per server CPU-second, which other processes' load disturbs least."
    )


def _pair(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """Run ``a`` over run ``b``: best round over best round, and the median of
    the round-by-round ratios (the runs are interleaved)."""
    return {
        "vs_reference": a["frames_per_second"] / b["frames_per_second"],
        "vs_reference_paired": statistics.median(
            x / y for x, y in zip(a["rounds"], b["rounds"], strict=True)
        ),
        "per_cpu_second": a["frames_per_cpu_second"] / b["frames_per_cpu_second"],
    }


def _target(what: str, op: str, bound: float, measured: float | dict[str, Any]) -> dict[str, Any]:
    paired = per_cpu = None
    if isinstance(measured, dict):
        value, paired = measured["vs_reference"], measured["vs_reference_paired"]
        per_cpu = measured.get("per_cpu_second")
    else:
        value = measured
    met = value <= bound if op == "<=" else value >= bound
    return {
        "target": what,
        "op": op,
        "bound": bound,
        "value": value,
        "paired": paired,
        "per_cpu_second": per_cpu,
        "met": met,
    }


if __name__ == "__main__":
    sys.exit(main())
