"""A stateless fleet (issue 7): three ``signedws serve`` nodes behind nginx,
revocations pushed through Redis, everything on 127.0.0.1.

The nodes share only the issuer keys, the fleet key and the Redis revocation
store; the application they run (``fleet_record``) keeps its data, and the
per-stream high-water marks with it, in one shared file (SPEC.md §7.3).
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import pytest
from fleet_record import read_lines
from fleet_support import (
    AUDIENCE,
    ISSUER,
    FleetKeys,
    Nginx,
    Node,
    RedisServer,
    accepted,
    close_code,
    find_tool,
    first_frame_code,
    nodes_running,
    open_raw,
    refused_after,
    revoke,
)

from signedws import MACCredential
from signedws.asyncio import Backoff, connect
from signedws.cli import main as cli_main
from signedws.config import build_verifier, load_config
from signedws.envelope import decode_hello, encode_hello

NODE_IDS: Final = ("a0a0a0a0a0a0a0a0", "b1b1b1b1b1b1b1b1", "c2c2c2c2c2c2c2c2")
#: Acknowledgements wait this long: a connection dropped within it loses the
#: acks of frames its node already delivered, so the client resends them.
ACK_DELAY: Final = 0.3


@dataclass
class Fleet:
    keys: FleetKeys
    config: Path
    record: Path
    redis: RedisServer
    nodes: list[Node]
    nginx: Nginx


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    """Redis, three nodes with their own node ids, and nginx in front of them."""
    redis_binary, nginx_binary = find_tool("redis-server"), find_tool("nginx")
    base = tmp_path_factory.mktemp("fleet")
    keys = FleetKeys.create(base / "keys")
    for name in ("record", "redis", "nginx"):
        (base / name).mkdir()
    redis = RedisServer(redis_binary, base / "redis").start()
    config = keys.config(
        "node.toml",
        limits={"ack_delay": ACK_DELAY},
        redis={"url": redis.url, "check_interval": 1.0},
    )
    nodes = [
        Node(config, base / f"node-{i}.log", base / "record", "--node-id", node_id)
        for i, node_id in enumerate(NODE_IDS)
    ]
    try:
        with nodes_running(*nodes):
            nginx = Nginx(nginx_binary, base / "nginx", [node.port for node in nodes]).start()
            try:
                yield Fleet(keys, config, base / "record", redis, nodes, nginx)
            finally:
                nginx.stop()
    finally:
        redis.stop()


# -- the fleet ----------------------------------------------------------------------------


def test_each_node_has_its_own_node_id(fleet: Fleet) -> None:
    """Every node logs the node id it mints nonces under; they differ."""
    assert [node.node_ids for node in fleet.nodes] == [[node_id] for node_id in NODE_IDS]


def test_clients_hop_between_nodes_and_every_message_is_recorded_once(
    fleet: Fleet, run: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """Clients behind nginx drop and reconnect, landing on other nodes; every
    message is recorded once, in order. Resends of messages a node delivered
    whose acknowledgement was lost reach the application on another node (the
    transport is at-least-once across nodes) and the application's own mark
    drops them. (nginx's round-robin gives a client's 9 connections to one node
    only if they all fall on the same residue: about 4 in 3**8 runs.)"""
    clients, rounds, batch = ("alice", "bob", "carol", "dave"), 8, 4

    async def client_run(name: str) -> tuple[str, list[str], int]:
        sent: list[str] = []
        backoff = Backoff(initial=0.02, maximum=0.1)
        credential = fleet.keys.token(name)
        async with connect(fleet.nginx.uri, credential, audience=AUDIENCE, backoff=backoff) as c:
            for round_ in range(rounds):
                while c.websocket is None:  # reconnecting
                    await asyncio.sleep(0.01)
                for i in range(batch):
                    sent.append(f"{name} {round_}.{i}")
                    await c.send(sent[-1])
                await asyncio.sleep(ACK_DELAY / 3)  # delivered, not yet acknowledged
                if c.websocket is not None:
                    c.websocket.transport.abort()  # the connection drops
            await c.drain()
            return c.stream.hex(), sent, c.connections

    async def main() -> list[tuple[str, list[str], int]]:
        return await asyncio.gather(*(client_run(name) for name in clients))

    results = run(main())
    record = read_lines(fleet.record / "record.jsonl")
    offered = read_lines(fleet.record / "offered.jsonl")
    streams = {stream for stream, _, _ in results}
    for stream, sent, connections in results:
        mine = [entry for entry in record if entry["stream"] == stream]
        assert [entry["seq"] for entry in mine] == list(range(1, len(sent) + 1))
        assert [entry["payload"] for entry in mine] == sent
        assert connections == rounds + 1
        assert len({entry["node"] for entry in mine}) >= 2, "the client never changed node"
    assert {entry["node"] for entry in record if entry["stream"] in streams} == set(NODE_IDS)
    duplicates = [e for e in offered if e["stream"] in streams and not e["kept"]]
    assert duplicates, "no resend reached another node"
    assert all(e["node"] in NODE_IDS for e in offered)
    with capsys.disabled():
        kept = sum(len(sent) for _, sent, _ in results)
        print(
            f"\n[fleet] {len(clients)} clients, {kept} messages over "
            f"{sum(c for _, _, c in results)} connections on 3 nodes: each recorded once; "
            f"{len(duplicates)} resends delivered by another node dropped by the application"
        )


def test_a_frame_replayed_on_another_node_is_refused(
    fleet: Fleet, run: Any, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A frame captured on node A's connection is refused by node B (4401,
    nonce_mismatch), directly and through nginx; A's nonce is nonetheless
    recognised as the fleet's by B's configuration (SPEC.md §5.3, §11.4)."""
    node_a, node_b = fleet.nodes[0], fleet.nodes[1]
    credential = fleet.keys.token("erin")

    async def main() -> bytes:
        ws_a, signer = await open_raw(node_a.uri, credential)
        ws_b, _ = await open_raw(node_b.uri, credential)
        frame = signer.sign("captured on A", now=time.time())
        await ws_a.send(frame)
        async with asyncio.timeout(5):
            ack = await ws_a.recv()
        assert isinstance(ack, bytes)
        assert signer.verify(ack).ack == 1
        await ws_b.send(frame)
        assert await close_code(ws_b) == 4401
        await ws_a.close()
        # Through nginx: consecutive connections go to different nodes.
        ws_1, signer_1 = await open_raw(fleet.nginx.uri, credential)
        ws_2, signer_2 = await open_raw(fleet.nginx.uri, credential)
        assert signer_1.hello.nonce[1:9] != signer_2.hello.nonce[1:9]
        await accepted(ws_1, signer_1, "captured behind nginx")
        await ws_2.send(signer_1.sign("replayed", now=time.time()))
        assert await close_code(ws_2) == 4401
        await ws_1.close()
        return encode_hello(signer.hello)

    hello_a = run(main())
    nonce_a = decode_hello(hello_a).nonce
    assert nonce_a[1:9].hex() == NODE_IDS[0]
    assert "code=nonce_mismatch" in node_b.text()
    # Node B's configuration recognises A's nonce as the fleet's ...
    config_b = load_config(fleet.config).replace(node_id=bytes.fromhex(NODE_IDS[1]))
    info = build_verifier(config_b).nonce_key.check(nonce_a, now=time.time())
    assert info.node_id.hex() == NODE_IDS[0]
    assert cli_main(["inspect", hello_a.hex(), "--config", str(fleet.config)]) == 0
    assert f"nonce verified: minted by this fleet for {AUDIENCE!r} by node {NODE_IDS[0]}" in (
        capsys.readouterr().out
    )
    # ... and another fleet's configuration does not.
    other = FleetKeys.create(tmp_path / "other")
    assert cli_main(["inspect", hello_a.hex(), "--config", str(other.config("o.toml"))]) == 1
    assert "nonce rejected: nonce_invalid (202)" in capsys.readouterr().out


def test_revocation_through_redis_reaches_every_node_within_a_second(
    fleet: Fleet, run: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """`signedws revoke --redis` makes every node refuse the credential's next
    frame on its open connection; measured from the command's start to each
    refusal, it takes well under a second (the issue's bound)."""
    credential = fleet.keys.token("mallory", cid="mallory-1")

    async def main() -> list[float]:
        connections = [await open_raw(node.uri, credential) for node in fleet.nodes]
        for ws, signer in connections:
            await accepted(ws, signer, "before")
        start = time.monotonic()
        command = ["revoke", "--redis", fleet.redis.url, "--issuer", ISSUER, "--cid", "mallory-1"]
        revoking = asyncio.create_task(asyncio.to_thread(cli_main, command))
        times = await asyncio.gather(*(refused_after(ws, s, start) for ws, s in connections))
        assert await revoking == 0
        return times

    times = run(main())
    out = capsys.readouterr().out
    assert f"revoked credential iss='auth' cid='mallory-1' in Redis {fleet.redis.url}" in out
    with capsys.disabled():
        each = ", ".join(f"{t * 1000:.0f} ms" for t in times)
        print(f"\n[fleet] revocation through Redis refused on every node in {each}")
    assert max(times) < 1.0
    for node in fleet.nodes:
        # Through the pub/sub message, or through the periodic version check
        # when it runs between the store's update and the message (a resync).
        assert re.search(
            r"redis revocations: (version \d+: revoked|synchronised to version [1-9])",
            node.text(),
        )
        assert "code=credential_revoked" in node.text()


def test_nodes_keep_serving_without_redis_and_catch_up(
    fleet: Fleet, run: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """With Redis stopped, every node keeps serving honest clients and keeps
    refusing what was revoked (its last copy), logging the outage once; when
    Redis is back (empty: it kept nothing), every node resynchronises, picks up
    a revocation made before it reconnected, and forgets nothing it held."""
    ivan = fleet.keys.token("ivan", cid="ivan-1")
    judy = fleet.keys.token("judy", cid="judy-1")
    honest = fleet.keys.token("grace")
    assert (
        revoke("--redis", fleet.redis.url, "--issuer", ISSUER, "--cid", "ivan-1").returncode == 0
    )

    async def refused_everywhere(credential: MACCredential, limit: float) -> None:
        async with asyncio.timeout(limit):
            for node in fleet.nodes:
                while await first_frame_code(node.uri, credential) != 4403:
                    await asyncio.sleep(0.05)

    async def wait_logged(text: str) -> None:
        async with asyncio.timeout(10):
            while not all(text in node.text() for node in fleet.nodes):
                await asyncio.sleep(0.05)

    async def outage() -> None:
        await refused_everywhere(ivan, 5)
        fleet.redis.stop()
        await wait_logged("redis revocations: lost")
        # Down: nodes serve honest clients, new connections included ...
        for node in fleet.nodes:
            assert await first_frame_code(node.uri, honest) is None
        async with connect(fleet.nginx.uri, honest, audience=AUDIENCE) as client:
            for i in range(6):
                await client.send(f"during the outage {i}")
            await client.drain()
        # ... still refuse what was revoked ...
        for node in fleet.nodes:
            assert await first_frame_code(node.uri, ivan) == 4403
        # ... and nobody can revoke through Redis.
        failed = await asyncio.to_thread(
            revoke, "--redis", fleet.redis.url, "--issuer", ISSUER, "--cid", "judy-1"
        )
        assert failed.returncode == 2
        assert failed.stderr.startswith("signedws: error: Redis at redis://127.0.0.1:")
        # Back, empty. Revoke at once: nodes not yet reconnected catch up.
        fleet.redis.start()
        done = await asyncio.to_thread(
            revoke, "--redis", fleet.redis.url, "--issuer", ISSUER, "--cid", "judy-1"
        )
        assert done.returncode == 0, done.stderr
        start = time.monotonic()
        await refused_everywhere(judy, 10)
        caught_up = time.monotonic() - start
        await wait_logged("is back after")
        for node in fleet.nodes:
            assert await first_frame_code(node.uri, ivan) == 4403
            assert await first_frame_code(node.uri, honest) is None
        with capsys.disabled():
            print(f"\n[fleet] after Redis restarted, every node caught up in {caught_up:.2f} s")

    run(outage(), timeout=60)
    for node in fleet.nodes:
        log = node.text()
        assert log.count("redis revocations: lost") == 1  # once per outage
        assert re.search(r"lacks \d+ entries this server holds", log)  # Redis came back empty
        assert "Traceback" not in log
