"""The chat example across processes (issue 18): ``examples/chat_handler.py``
under ``signedws serve --workers 2``, and on three nodes behind nginx, with
topics over Redis pub/sub (``[redis].url``), everything on 127.0.0.1.

Every member receives every message of the room exactly once, in order,
whichever node or worker it landed on. On the code before issue 18 (a room per
process, ``await member.send`` to each local member) members on another
process than the speaker got nothing.

Members are plain websockets clients that verify every frame with
``Signer.verify_any`` (SPEC.md §7.2 and §14.4).
"""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import pytest
from fleet_support import (
    AUDIENCE,
    ISSUER,
    REPO,
    FleetKeys,
    Nginx,
    Node,
    RedisServer,
    find_tool,
    nodes_running,
)
from websockets.asyncio.client import ClientConnection as WebSocket
from websockets.asyncio.client import connect as ws_connect

from signedws import Issuer, Signer
from signedws.envelope import decode_hello

#: Members of the room, and what each says after all joined.
MEMBERS: Final = 6
LINES: Final = 5


@dataclass
class Entry:
    """Where members connect, and how many processes serve behind it."""

    uri: str
    processes: int
    keys: FleetKeys


def _chat_config(keys: FleetKeys, redis: RedisServer, **server: object) -> Path:
    """A serve configuration running the chat example (copied next to it,
    where ``handler = "chat_handler:handler"`` is imported from)."""
    shutil.copy(REPO / "examples" / "chat_handler.py", keys.directory / "chat_handler.py")
    return keys.config(
        "chat.toml",
        server={"handler": "chat_handler:handler", **server},
        redis={"url": redis.url, "check_interval": 1.0, "topic_history": 100},
    )


@pytest.fixture(scope="module")
def redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    directory = tmp_path_factory.mktemp("redis")
    server = RedisServer(find_tool("redis-server"), directory).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def workers(tmp_path_factory: pytest.TempPathFactory, redis: RedisServer) -> Iterator[Entry]:
    """``signedws serve --workers 2`` running the chat example."""
    base = tmp_path_factory.mktemp("chat-workers")
    keys = FleetKeys.create(base / "keys")
    (base / "record").mkdir()
    config = _chat_config(keys, redis)
    node = Node(config, base / "serve.log", base / "record", "--workers", "2")
    with nodes_running(node):
        yield Entry(node.uri, 2, keys)


@pytest.fixture(scope="module")
def behind_nginx(tmp_path_factory: pytest.TempPathFactory, redis: RedisServer) -> Iterator[Entry]:
    """Three nodes running the chat example, behind nginx (round-robin)."""
    nginx_binary = find_tool("nginx")
    base = tmp_path_factory.mktemp("chat-nginx")
    keys = FleetKeys.create(base / "keys")
    for name in ("record", "nginx"):
        (base / name).mkdir()
    config = _chat_config(keys, redis)
    nodes = [Node(config, base / f"node-{i}.log", base / "record") for i in range(3)]
    with nodes_running(*nodes):
        nginx = Nginx(nginx_binary, base / "nginx", [node.port for node in nodes]).start()
        try:
            yield Entry(nginx.uri, 3, keys)
        finally:
            nginx.stop()


@dataclass
class Member:
    name: str
    ws: WebSocket
    signer: Signer
    #: (tseq, missed, payload) of every broadcast, in arrival order.
    heard: list[tuple[int, int, str]] = field(default_factory=list)

    @property
    def node(self) -> str:
        return self.signer.hello.nonce[1:9].hex()

    async def say(self, text: str) -> None:
        await self.ws.send(self.signer.sign(text, now=time.time()))

    async def listen(self, until: Any, timeout: float = 20.0) -> None:
        """Verify every frame (broadcasts and acknowledgements) until ``until()``."""
        async with asyncio.timeout(timeout):
            while not until():
                data = await self.ws.recv()
                assert isinstance(data, bytes)
                message = self.signer.verify_any(data)
                if hasattr(message, "tseq"):
                    payload = message.payload
                    assert isinstance(payload, str)
                    self.heard.append((message.tseq, message.missed, payload))
                elif message.payload is not None:  # a plain server frame (the old example)
                    self.heard.append((0, 0, str(message.payload)))

    def acked(self) -> bool:
        return self.signer.acked >= self.signer.counter


def _node(hello: bytes) -> str:
    """The node id a hello's nonce was minted under (SPEC.md §5.3)."""
    return decode_hello(hello).nonce[1:9].hex()


async def _join(entry: Entry, name: str, *, resume: Member | None = None) -> Member:
    """A member joins (says ``joins``), or with ``resume`` reconnects with that
    member's topic marks and resumes the room after its mark."""
    credential = Issuer(ISSUER, entry.keys.kid, entry.keys.secret).issue_token(
        subject=name, now=time.time(), lifetime=600, scopes=["chat"]
    )
    for _ in range(10):
        ws = await ws_connect(entry.uri, subprotocols=["signedws.v1"])  # type: ignore[list-item]
        hello = await ws.recv()
        assert isinstance(hello, bytes)
        if resume is None or _node(hello) != resume.node:
            break
        await ws.close()  # resume on another node than the one it left
    marks = None if resume is None else resume.signer.topics
    signer = Signer.from_hello(hello, credential, audience=AUDIENCE, now=time.time(), topics=marks)
    member = Member(name, ws, signer)
    if resume is not None:
        member.heard = resume.heard
        await member.say(f"/resume {marks.mark('room:general') if marks else 0}")
    else:
        await member.say("joins")
    # Acknowledged means the handler took the message, so it subscribed.
    await member.listen(member.acked)
    return member


async def _room(entry: Entry) -> list[Member]:
    """``MEMBERS`` members spread over every process behind ``entry`` (the
    kernel or nginx spreads them; bounded retries until each process has one)."""
    members: list[Member] = []
    for attempt in range(60):
        member = await _join(entry, f"u{attempt}")
        members.append(member)
        nodes = {m.node for m in members}
        if len(members) >= MEMBERS and len(nodes) == entry.processes:
            return members
    raise AssertionError(f"{len(members)} members reached {len(nodes)} processes")


def _check_room(members: list[Member]) -> None:
    """Every member heard every line once, in the topic's order, without a gap."""
    lines = {f"{m.name}: line {k}" for m in members for k in range(LINES)}
    orders = []
    for m in members:
        tseqs = [t for t, _, _ in m.heard]
        assert tseqs == list(range(tseqs[0], tseqs[0] + len(tseqs))), (m.name, tseqs)
        assert all(missed == 0 for _, missed, _ in m.heard), m.name
        said = [p for _, _, p in m.heard if p in lines]
        assert sorted(said) == sorted(lines), (m.name, m.node, len(said))  # each exactly once
        for speaker in members:  # each speaker's lines in the order said
            mine = [p for p in said if p.startswith(f"{speaker.name}: ")]
            assert mine == [f"{speaker.name}: line {k}" for k in range(LINES)]
        orders.append([(t, p) for t, _, p in m.heard if p in lines])
    assert all(order == orders[0] for order in orders)  # one order for the whole room


async def _chat(entry: Entry) -> tuple[list[Member], float]:
    members = await _room(entry)
    start = time.monotonic()
    try:
        for k in range(LINES):
            await asyncio.gather(*(m.say(f"line {k}") for m in members))
        wanted = len(members) * LINES

        def heard_all(m: Member) -> Any:
            return lambda: sum(": line " in p for _, _, p in m.heard) >= wanted

        await asyncio.gather(*(m.listen(heard_all(m)) for m in members))
        return members, time.monotonic() - start
    finally:
        for m in members:
            await m.ws.close()


def test_chat_room_under_workers(workers: Entry, run: Any) -> None:
    """``--workers 2``: members on both workers; every line reaches every member."""
    members, _ = run(_chat(workers), timeout=60)
    assert len({m.node for m in members}) == 2
    _check_room(members)


def test_chat_room_behind_nginx_with_three_nodes(behind_nginx: Entry, run: Any) -> None:
    """Three nodes behind nginx: members on all three; every line reaches
    every member exactly once, in one order."""
    members, _ = run(_chat(behind_nginx), timeout=60)
    assert len({m.node for m in members}) == 3
    _check_room(members)


def test_a_member_who_reconnects_resumes_without_a_gap(behind_nginx: Entry, run: Any) -> None:
    """Behind nginx: a member leaves after two lines; the others say three
    more; it reconnects, to another node, and resumes from its mark:
    it hears every line once, in the room's order, with no gap (the missed
    lines come from the Redis history on whichever node it landed on)."""

    async def main() -> tuple[list[Member], Member, str]:
        members = await _room(behind_nginx)
        leaver, others = members[0], members[1:]
        try:
            wanted = len(members) * 2
            for k in range(2):
                await asyncio.gather(*(m.say(f"line {k}") for m in members))
            await leaver.listen(lambda: sum(": line " in p for _, _, p in leaver.heard) >= wanted)
            first_node = leaver.node
            await leaver.ws.close()
            for k in range(2, LINES):
                await asyncio.gather(*(m.say(f"line {k}") for m in others))
            back = await _join(behind_nginx, leaver.name, resume=leaver)
            wanted = len(members) * 2 + len(others) * (LINES - 2)
            await back.listen(lambda: sum(": line " in p for _, _, p in back.heard) >= wanted)
            for m in others:
                await m.listen(lambda m=m: sum(": line " in p for _, _, p in m.heard) >= wanted)
            await back.ws.close()
            return others, back, first_node
        finally:
            for m in members[1:]:
                await m.ws.close()

    others, back, first_node = run(main(), timeout=60)
    tseqs = [t for t, _, _ in back.heard]
    assert tseqs == list(range(tseqs[0], tseqs[0] + len(tseqs))), tseqs  # no gap, no repeat
    assert all(missed == 0 for _, missed, _ in back.heard)
    lines = [p for _, _, p in back.heard if ": line " in p]
    assert len(lines) == len(set(lines))
    assert lines == [p for _, _, p in others[0].heard if ": line " in p]  # the room's order
    assert back.node != first_node  # resumed on another node, from the Redis history
