"""Topics (issue 18, SPEC.md §14) on every server transport: the websockets
push adapter and the ASGI adapter under uvicorn (Starlette, FastAPI).

Real servers on 127.0.0.1, real websockets clients verifying every frame with
`signedws.receive.verify_server_frame` (broadcasts and server frames share the
connection's counter: a frame out of counter order fails the client).
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aio_support import AUDIENCE, SERVER_KEY, SERVER_KEYS, certificate, raw, signer_for, token
from server_support import KINDS, start
from websockets.asyncio.client import ClientConnection as WebSocket
from websockets.exceptions import ConnectionClosed

from signedws import Message, Signer
from signedws.asyncio import connect
from signedws.asyncio import topics as topics_module
from signedws.asyncio.connection import ServerConnection
from signedws.asyncio.topics import (
    SLOW_CLOSE_CODE,
    Delivery,
    LocalTopics,
    SlowPolicy,
    install,
    topics,
)
from signedws.broadcast import BroadcastMessage
from signedws.errors import UsageError
from signedws.receive import verify_server_frame
from signedws.server import State

TOPIC = "room:general"


@dataclass
class Room:
    """A handler: ``join`` subscribes, ``say X`` publishes X and then sends
    the sender an ordinary frame ``said N`` (so broadcast and server frames
    interleave on a connection), ``big N`` publishes N bytes."""

    topics: LocalTopics
    deliveries: list[Delivery] = field(default_factory=list)
    joined: asyncio.Event = field(default_factory=asyncio.Event)
    members: int = 0

    async def __call__(self, connection: ServerConnection) -> None:
        try:
            async for message in connection:
                await self.on(connection, message)
        finally:
            self.topics.unsubscribe_all(connection)

    async def on(self, connection: ServerConnection, message: Message) -> None:
        payload = message.payload
        assert isinstance(payload, str)
        if payload == "join":
            self.topics.subscribe(connection, TOPIC)
            self.members += 1
            self.joined.set()
            await connection.send("joined")
        elif payload.startswith("say "):
            published = await self.topics.publish(TOPIC, payload[4:])
            if published.delivery is not None:  # None over Redis
                self.deliveries.append(published.delivery)
            await connection.send(f"said {published.tseq}")
        elif payload.startswith("resume "):
            count = await self.topics.resume(connection, TOPIC, after=int(payload[7:]))
            await connection.send(f"resumed {count}")
        elif payload.startswith("big "):
            published = await self.topics.publish(TOPIC, bytes(int(payload[4:])))
            assert published.delivery is not None
            self.deliveries.append(published.delivery)


@dataclass
class Member:
    ws: WebSocket
    signer: Signer
    broadcasts: list[BroadcastMessage] = field(default_factory=list)
    replies: list[object] = field(default_factory=list)

    async def send(self, payload: str) -> None:
        await self.ws.send(self.signer.sign(payload, now=time.time()))

    async def read_until(self, done: Any, timeout: float = 10.0) -> None:
        """Verify every frame until ``done()``."""
        async with asyncio.timeout(timeout):
            while not done():
                data = await self.ws.recv()
                message = verify_server_frame(
                    self.signer, data, on_broadcast=self.broadcasts.append
                )
                if not self.broadcasts or self.broadcasts[-1].counter != message.counter:
                    self.replies.append(message.payload)


@contextlib.asynccontextmanager
async def member(uri: str, credential: Any, *, topics: Any = None, join: bool = True) -> Any:
    kwargs = {} if topics is None else {"topics": topics}
    async with raw(uri) as (ws, hello):
        m = Member(ws, signer_for(hello, credential, **kwargs))
        if join:
            await m.send("join")
            await m.read_until(lambda: "joined" in m.replies)
        yield m


@pytest.mark.parametrize("kind", KINDS)
def test_publish_reaches_every_subscriber_once_in_order(kind: str, run: Any) -> None:
    """Four members (mac and ed25519) take turns publishing; each receives
    every message once, in tseq order, without a gap, interleaved with its own
    server frames in counter order; every `Delivery` lists all four as sent."""
    room = Room(LocalTopics(AUDIENCE, server_key=SERVER_KEY))

    async def main() -> None:
        async with (
            start(kind, room) as srv,  # type: ignore[arg-type]
            member(srv.uri, token("ann", scopes=["chat"])) as a,
            member(srv.uri, certificate("bob")) as b,
            member(srv.uri, token("cat")) as c,
            member(srv.uri, certificate("dan")) as d,
        ):
            everyone = [a, b, c, d]
            for round_ in range(5):
                for i, m in enumerate(everyone):
                    await m.send(f"say {round_}.{i}")
                    said = round_ * 4 + i + 1
                    await m.read_until(lambda m=m, said=said: f"said {said}" in m.replies)
            for m in everyone:
                await m.read_until(lambda m=m: len(m.broadcasts) == 20)
            expected = [f"{r}.{i}" for r in range(5) for i in range(4)]
            for m in everyone:
                assert [x.payload for x in m.broadcasts] == expected
                assert [x.tseq for x in m.broadcasts] == list(range(1, 21))
                assert {x.missed for x in m.broadcasts} == {0}
                assert {x.topic for x in m.broadcasts} == {TOPIC}
                assert m.signer.topics.mark(TOPIC) == 20
            assert [len(d.sent) for d in room.deliveries] == [4] * 20
            assert not any(d.skipped or d.closed or d.waiting for d in room.deliveries)

    run(main())


def _wait_for(room: Room, predicate: Any) -> Any:
    async def wait() -> None:
        async with asyncio.timeout(10):
            while not predicate():
                await asyncio.sleep(0.01)

    return wait()


@pytest.mark.parametrize("kind", ["websockets", "starlette"])
@pytest.mark.parametrize("policy", [SlowPolicy.SKIP, SlowPolicy.CLOSE])
def test_a_slow_subscriber_never_holds_the_others_back(
    kind: str, policy: SlowPolicy, run: Any
) -> None:
    """A member that stops reading fills its write buffer; past ``max_buffer``
    it is skipped (and, reading again, sees the gap as ``missed``) or closed
    with 1013, by policy. The reading member gets every message meanwhile."""
    room = Room(LocalTopics(AUDIENCE, server_key=SERVER_KEY, max_buffer=64 * 1024, slow=policy))

    async def main() -> None:
        async with (
            start(kind, room) as srv,  # type: ignore[arg-type]
            member(srv.uri, token("fast")) as fast,
            member(srv.uri, token("slow")) as slow,
        ):
            sent = 0
            # 64 KiB messages until a delivery finds `slow` over its limit
            # (bounded: the socket buffers on both sides hold a few MiB).
            while not any(d.skipped or d.closed for d in room.deliveries) and sent < 400:
                await fast.send("big 65536")
                sent += 1
                await fast.read_until(lambda sent=sent: len(fast.broadcasts) == sent)
            assert sent < 400
            first_slow = next(d for d in room.deliveries if d.skipped or d.closed)
            assert [c.principal for c in first_slow.sent] == [("auth", "fast")]
            if policy is SlowPolicy.CLOSE:
                assert [c.principal for c in first_slow.closed] == [("auth", "slow")]
                with pytest.raises(ConnectionClosed):
                    await slow.read_until(lambda: False)
                assert slow.ws.close_code == SLOW_CLOSE_CODE
                assert room.topics.subscribers(TOPIC) == 1
            else:
                assert [c.principal for c in first_slow.skipped] == [("auth", "slow")]
                # `slow` reads again: once its buffer drained, it gets messages again.
                caught_up = asyncio.create_task(
                    slow.read_until(
                        lambda: (
                            bool(slow.broadcasts)
                            and str(slow.broadcasts[-1].payload).startswith("last")
                        )
                    )
                )
                for k in range(200):
                    await fast.send(f"say last {k}")
                    await fast.read_until(lambda k=k: fast.broadcasts[-1].payload == f"last {k}")
                    if caught_up.done():
                        break
                    await asyncio.sleep(0.02)
                await caught_up
                tseqs = [x.tseq for x in slow.broadcasts]
                assert tseqs == sorted(set(tseqs))
                missed = sum(x.missed for x in slow.broadcasts)
                assert missed > 0  # some were skipped, and the client counted each
                assert missed + len(tseqs) == tseqs[-1]
            total = len(room.deliveries)
            assert [x.tseq for x in fast.broadcasts] == list(range(1, total + 1))

    run(main(), timeout=60)


def test_closed_and_not_yet_accepted_connections(run: Any) -> None:
    """A connection whose first frame was not accepted yet is listed as
    waiting (no counter, no frame); a closed one is dropped from the topic."""
    fanout = LocalTopics(AUDIENCE)
    held: list[ServerConnection] = []
    release = asyncio.Event()

    async def handler(connection: ServerConnection) -> None:
        fanout.subscribe(connection, TOPIC)  # before any frame
        held.append(connection)
        await release.wait()
        with contextlib.suppress(Exception):
            async for _ in connection:
                pass

    async def main() -> None:
        stop = asyncio.get_running_loop().call_later(20, release.set)  # never hang shutdown
        try:
            await scenario()
        finally:
            stop.cancel()

    async def scenario() -> None:
        async with start("websockets", handler) as srv, raw(srv.uri) as (ws, _):  # type: ignore[arg-type]
            try:
                async with asyncio.timeout(5):
                    while not held:
                        await asyncio.sleep(0.01)
                published = await fanout.publish(TOPIC, "early")
                assert published.delivery is not None
                assert published.delivery.waiting == (held[0],)
                assert held[0].session.state is State.AWAITING_FIRST_FRAME
                assert repr(held[0].session).endswith("accepted=0, sent=0)")  # no counter taken
                await ws.close()
                await held[0].wait_closed()
                async with asyncio.timeout(5):
                    while not held[0].closed:  # the pump marks it closed after the transport
                        await asyncio.sleep(0.01)
                published = await fanout.publish(TOPIC, "late")
                assert published.delivery is not None
                assert published.delivery == Delivery(TOPIC, 2)  # dropped, not waiting
                assert fanout.subscribers(TOPIC) == 0
                assert fanout.subscribed(held[0]) == frozenset()
                fanout.subscribe(held[0], TOPIC)  # a closed connection is not subscribed
                assert fanout.subscribers(TOPIC) == 0
            finally:
                release.set()  # a failed assertion must not hold the shutdown

    run(main())


def test_topics_refuse_bad_arguments_and_are_installed_per_process() -> None:
    with pytest.raises(UsageError):
        LocalTopics("")
    with pytest.raises(UsageError):
        LocalTopics(AUDIENCE, max_buffer=-1)
    with pytest.raises(UsageError):
        LocalTopics(AUDIENCE, slow="skip")  # type: ignore[arg-type]
    fanout = LocalTopics(AUDIENCE)
    with pytest.raises(UsageError):
        asyncio.run(fanout.publish("", "x"))
    with pytest.raises(UsageError):
        asyncio.run(fanout.publish("t" * 256, "x"))
    with pytest.raises(UsageError):
        asyncio.run(fanout.publish("t", None))  # type: ignore[arg-type]
    other = LocalTopics("wss://other.test/ws")
    message = other._broadcaster.message("t", 1, "x", now=0)
    with pytest.raises(UsageError):
        fanout.deliver(message)
    with pytest.raises(UsageError):
        LocalTopics(AUDIENCE, history=-1)
    with pytest.raises(UsageError):
        LocalTopics(AUDIENCE, history=10_001)
    with pytest.raises(UsageError):
        asyncio.run(fanout.resume(None, "t", after=-1))  # type: ignore[arg-type]
    assert asyncio.run(fanout.publish("t", "x")).tseq == 1
    assert asyncio.run(fanout.publish("t", "y")).tseq == 2  # numbering per topic
    assert asyncio.run(fanout.publish("u", "y")).tseq == 1
    assert "LocalTopics(audience='wss://signedws.test/ws', topics=0" in repr(fanout)
    saved = topics_module._installed
    try:
        install(None)
        with pytest.raises(UsageError, match="no topics installed"):
            topics()
        install(fanout)
        assert topics() is fanout
    finally:
        install(saved)


# -- across processes: RedisTopics on a real redis-server ------------------------------------


@pytest.fixture
def redis_server(tmp_path: Any) -> Any:
    """A redis-server on 127.0.0.1 (tests/fleet's helper: skipped if missing)."""
    fleet = str(Path(__file__).resolve().parents[1] / "fleet")
    if fleet not in sys.path:
        sys.path.insert(0, fleet)
    from fleet_support import RedisServer, find_tool

    server = RedisServer(find_tool("redis-server"), tmp_path).start()
    try:
        yield server
    finally:
        server.stop()


def test_redis_topics_reach_every_node_in_one_order(
    redis_server: Any, run: Any, caplog: Any
) -> None:
    """Two nodes (two servers, two `RedisTopics`) on one Redis: a message
    published on either reaches the members of both with one ``tseq``; a bad
    message on the channel and a replayed one are dropped (logged), and the
    clients never see them."""
    from signedws.asyncio.redis import connect_redis
    from signedws.asyncio.topics import RedisTopics

    redis_url = redis_server.url

    async def main() -> None:
        seen: list[Delivery] = []
        nodes = [
            RedisTopics(
                connect_redis(redis_url, decode=False),
                AUDIENCE,
                server_key=SERVER_KEY,
                on_delivery=seen.append,
            )
            for _ in range(2)
        ]
        tasks = [asyncio.create_task(node.run(retry=0.05)) for node in nodes]
        try:
            for node in nodes:
                await asyncio.wait_for(node.wait_ready(), 5)
            rooms = [Room(node) for node in nodes]
            async with (
                start("websockets", rooms[0]) as one,  # type: ignore[arg-type]
                start("websockets", rooms[1]) as two,  # type: ignore[arg-type]
                member(one.uri, token("ann")) as a,
                member(two.uri, certificate("bob")) as b,
            ):
                published = await nodes[0].publish(TOPIC, "from one")
                assert (published.tseq, published.nodes, published.delivery) == (1, 2, None)
                raw_client = connect_redis(redis_url, decode=False)
                await raw_client.publish(f"signedws:topic:{TOPIC}", b"junk")
                await raw_client.publish(f"signedws:topic:{TOPIC}", b"1 \x92\x00\xa1x")  # replay
                await raw_client.aclose()
                await nodes[1].publish(TOPIC, b"from two")
                for m in (a, b):
                    await m.read_until(lambda m=m: len(m.broadcasts) == 2)
                    assert [(x.tseq, x.payload, x.missed) for x in m.broadcasts] == [
                        (1, "from one", 0),
                        (2, b"from two", 0),
                    ]
                # per node: two sent, and the replay delivered to nobody
                assert sorted(len(d.sent) for d in seen) == [0, 0, 1, 1, 1, 1]
                with pytest.raises(UsageError):
                    await nodes[0].publish(TOPIC, 5)  # type: ignore[arg-type]
            assert "a bad message on" in caplog.text
            assert "message 1 at or below 1 dropped" in caplog.text
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    run(main())


def test_redis_topics_subscribe_again_after_an_outage(
    redis_server: Any, run: Any, caplog: Any
) -> None:
    """Redis stops: the node logs the lost subscription and retries; Redis
    back, it subscribes again and publishing works."""
    from signedws.asyncio.redis import connect_redis
    from signedws.asyncio.topics import RedisTopics

    async def main() -> None:
        node = RedisTopics(connect_redis(redis_server.url, decode=False), AUDIENCE)
        task = asyncio.create_task(node.run(retry=0.05))
        try:
            await asyncio.wait_for(node.wait_ready(), 5)
            await asyncio.to_thread(redis_server.stop)
            async with asyncio.timeout(10):
                while node._ready.is_set():
                    await asyncio.sleep(0.02)
            await asyncio.to_thread(redis_server.start)
            await asyncio.wait_for(node.wait_ready(), 10)
            assert (await node.publish("after", "x")).tseq == 1
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    run(main())
    assert "Redis subscription lost" in caplog.text


# -- recovery: resume a topic from the client's mark --------------------------------------------


async def _rejoin(uri: str, credential: Any, marks: Any) -> tuple[Any, Member]:
    """A reconnect that resumes from the client's mark (sent as an application
    message: SPEC.md §14 leaves resumption to the application)."""
    context = member(uri, credential, topics=marks, join=False)
    m = await context.__aenter__()
    await m.send(f"resume {marks.mark(TOPIC) or 0}")
    await m.read_until(lambda: any(str(r).startswith("resumed") for r in m.replies))
    return context, m


def test_resume_sends_the_kept_history_then_live_messages(run: Any) -> None:
    """A member leaves after message 3; 4 to 9 are published; it reconnects
    with its marks and resumes after 3: it gets 5 to 9 from the history
    (which keeps 5: 4 shows as a gap, missed=1), then live 10, none twice."""
    room = Room(LocalTopics(AUDIENCE, server_key=SERVER_KEY, history=5))

    async def main() -> None:
        async with start("websockets", room) as srv, member(srv.uri, token("bob")) as bob:  # type: ignore[arg-type]
            async with member(srv.uri, token("ann")) as ann:
                for k in range(1, 4):
                    await bob.send(f"say {k}")
                await ann.read_until(lambda: len(ann.broadcasts) == 3)
                marks = ann.signer.topics
            for k in range(4, 10):
                await bob.send(f"say {k}")
            await bob.read_until(lambda: len(bob.broadcasts) == 9)
            context, again = await _rejoin(srv.uri, token("ann"), marks)
            try:
                assert "resumed 5" in again.replies
                await bob.send("say 10")
                await again.read_until(lambda: len(again.broadcasts) == 6)
                got = [(x.tseq, x.missed, x.payload) for x in again.broadcasts]
                assert got == [
                    (5, 1, "5"),
                    (6, 0, "6"),
                    (7, 0, "7"),
                    (8, 0, "8"),
                    (9, 0, "9"),
                    (10, 0, "10"),
                ]
            finally:
                await context.__aexit__(None, None, None)

    run(main())


def test_live_messages_during_the_history_read_come_after_it(run: Any) -> None:
    """A message published while `resume` reads the history is held for the
    resuming connection and sent after the history, once."""
    gate = asyncio.Event()

    class Slow(LocalTopics):
        async def _history_after(self, topic: str, after: int) -> list[Any]:
            await gate.wait()
            return await super()._history_after(topic, after)

    room = Room(Slow(AUDIENCE, history=10))

    async def main() -> None:
        async with start("websockets", room) as srv, member(srv.uri, token("bob")) as bob:  # type: ignore[arg-type]
            await bob.send("say 1")
            await bob.read_until(lambda: len(bob.broadcasts) == 1)
            async with member(srv.uri, token("ann"), join=False) as ann:
                await ann.send("resume 0")
                async with asyncio.timeout(5):
                    while not room.topics._catching_up:  # reading the history
                        await asyncio.sleep(0.01)
                await bob.send("say 2")  # live, while ann's history read waits
                await bob.read_until(lambda: len(bob.broadcasts) == 2)
                # held for ann, not sent to her yet
                assert [c.principal for c in room.deliveries[-1].sent] == [("auth", "bob")]
                gate.set()
                await ann.read_until(lambda: "resumed 2" in ann.replies)
                assert [(x.tseq, x.missed) for x in ann.broadcasts] == [(1, 0), (2, 0)]

    run(main())


def test_resume_on_another_node_from_the_redis_history(redis_server: Any, run: Any) -> None:
    """A member of node one leaves after message 2; 3 and 4 are published on
    node two; it reconnects to node two and resumes after its mark: 3 and 4
    come from the Redis stream, then live 5, without a gap or a repeat."""
    from signedws.asyncio.redis import connect_redis
    from signedws.asyncio.topics import RedisTopics

    async def main() -> None:
        nodes = [
            RedisTopics(
                connect_redis(redis_server.url, decode=False),
                AUDIENCE,
                server_key=SERVER_KEY,
                history=100,
            )
            for _ in range(2)
        ]
        tasks = [asyncio.create_task(node.run(retry=0.05)) for node in nodes]
        try:
            for node in nodes:
                await asyncio.wait_for(node.wait_ready(), 5)
            async with (
                start("websockets", Room(nodes[0])) as one,  # type: ignore[arg-type]
                start("websockets", Room(nodes[1])) as two,  # type: ignore[arg-type]
                member(two.uri, token("bob")) as bob,
            ):
                async with member(one.uri, certificate("ann")) as ann:
                    for k in (1, 2):
                        await bob.send(f"say {k}")
                    await ann.read_until(lambda: len(ann.broadcasts) == 2)
                    marks = ann.signer.topics
                for k in (3, 4):
                    await bob.send(f"say {k}")
                await bob.read_until(lambda: len(bob.broadcasts) == 4)
                context, again = await _rejoin(two.uri, certificate("ann"), marks)
                try:
                    assert "resumed 2" in again.replies
                    await bob.send("say 5")
                    await again.read_until(lambda: len(again.broadcasts) == 3)
                    got = [(x.tseq, x.missed, x.payload) for x in again.broadcasts]
                    assert got == [(3, 0, "3"), (4, 0, "4"), (5, 0, "5")]
                finally:
                    await context.__aexit__(None, None, None)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    run(main())


def test_a_long_resume_lets_the_loop_run_and_keeps_the_order(run: Any) -> None:
    """130 messages, a history of 100: resuming after 0 sends 31 to 130,
    letting the event loop run between slices; a message published meanwhile
    comes after them, once."""
    room = Room(LocalTopics(AUDIENCE, server_key=SERVER_KEY, history=100))

    async def main() -> None:
        async with start("websockets", room) as srv, member(srv.uri, token("bob")) as bob:  # type: ignore[arg-type]
            for k in range(1, 131):
                await room.topics.publish(TOPIC, str(k))
            await bob.read_until(lambda: len(bob.broadcasts) == 130)
            async with member(srv.uri, certificate("ann"), join=False) as ann:
                await ann.send("resume 0")
                async with asyncio.timeout(5):
                    while not room.topics._catching_up:  # the catch-up started
                        await asyncio.sleep(0)
                await room.topics.publish(TOPIC, "131")  # during the catch-up
                await ann.read_until(lambda: "resumed 101" in ann.replies)
                got = [(x.tseq, x.missed) for x in ann.broadcasts]
                assert got == [(k, 0) for k in range(31, 132)]  # a new client: no mark, no gap

    run(main())


@pytest.mark.parametrize("kind", KINDS)
def test_the_asyncio_client_receives_broadcasts(kind: str, run: Any) -> None:
    """`signedws.asyncio.connect`: a broadcast's payload comes out of ``recv``
    in counter order with the server frames, its topic and ``tseq`` go to
    ``on_broadcast``, and ``client.topics`` holds the mark (mac and ed25519)."""
    room = Room(LocalTopics(AUDIENCE, server_key=SERVER_KEY))

    async def main() -> None:
        heard: dict[str, list[BroadcastMessage]] = {"ann": [], "bob": []}
        async with (
            start(kind, room) as srv,  # type: ignore[arg-type]
            connect(
                srv.uri, token("ann"), audience=AUDIENCE, on_broadcast=heard["ann"].append
            ) as ann,
            connect(
                srv.uri,
                certificate("bob"),
                audience=AUDIENCE,
                server_keys=SERVER_KEYS,
                on_broadcast=heard["bob"].append,
            ) as bob,
        ):
            for client in (ann, bob):
                await client.send("join")
                assert await client.recv() == "joined"
            await ann.send("say one")
            assert [await ann.recv() for _ in range(2)] == ["one", "said 1"]
            await bob.send("say two")
            assert [await bob.recv() for _ in range(3)] == ["one", "two", "said 2"]
            assert await ann.recv() == "two"
            for name, client in (("ann", ann), ("bob", bob)):
                got = [(m.topic, m.tseq, m.missed, m.payload) for m in heard[name]]
                assert got == [(TOPIC, 1, 0, "one"), (TOPIC, 2, 0, "two")]
                assert client.topics.mark(TOPIC) == 2

    run(main())
