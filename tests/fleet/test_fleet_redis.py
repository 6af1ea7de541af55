"""The Redis revocation store and the task that follows it
(``signedws.asyncio.redis``), against a real ``redis-server`` on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fleet_support import RedisServer, find_tool

from signedws import HMACKey, KeyFormatError, Keyring, RevocationSet, UsageError, Verifier
from signedws.asyncio import Backoff
from signedws.asyncio.redis import (
    Change,
    RedisRevocations,
    RedisRevocationStore,
    connect_redis,
    merge,
    redacted_url,
)

FAST = Backoff(initial=0.02, maximum=0.05)


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(find_tool("redis-server"), tmp_path_factory.mktemp("redis")).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def prefix(request: pytest.FixtureRequest) -> str:
    """A key prefix of the test's own, so tests share one server."""
    return f"t{abs(hash(request.node.nodeid))}"


def verifier() -> Verifier:
    return Verifier(Keyring(), audience="aud", fleet_key=HMACKey(bytes(32)))


async def until(predicate: Any, timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)


def test_store_layout_and_messages(redis_server: RedisServer, prefix: str, run: Any) -> None:
    """A change adds its member, increments the version and publishes the
    documented message, in one step; a subject's later time wins."""

    async def main() -> None:
        client = connect_redis(redis_server.url)
        listener = connect_redis(redis_server.url)
        store = RedisRevocationStore(client, prefix=prefix)
        pubsub = listener.pubsub()
        await pubsub.subscribe(f"{prefix}:revocations")
        assert await store.snapshot() == (0, RevocationSet())
        assert await store.revoke_credential("auth", 'c"1') == 1
        assert await store.revoke_subject("auth", "bob", before=200) == 2
        assert await store.revoke_subject("auth", "bob", before=100) == 3
        assert await client.smembers(f"{prefix}:revocations:credentials") == {'["auth","c\\"1"]'}
        assert await client.hgetall(f"{prefix}:revocations:subjects") == {'["auth","bob"]': "200"}
        assert await client.get(f"{prefix}:revocations:version") == "3"
        messages: list[object] = []
        async with asyncio.timeout(5):
            while len(messages) < 3:
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1)
                if message is not None:
                    messages.append(json.loads(message["data"]))
        assert messages == [
            {"version": 1, "kind": "credential", "key": ["auth", 'c"1']},
            {"version": 2, "kind": "subject", "key": ["auth", "bob"], "before": 200},
            {"version": 3, "kind": "subject", "key": ["auth", "bob"], "before": 200},
        ]
        version, revocations = await store.snapshot()
        assert version == 3
        assert revocations == RevocationSet([("auth", 'c"1')], {("auth", "bob"): 200})
        with pytest.raises(KeyFormatError):
            await store.revoke_credential("", "c")
        with pytest.raises(KeyFormatError):
            await store.revoke_subject("auth", "bob", before=-1)
        assert await store.version() == 3  # nothing written
        assert repr(store) == f"RedisRevocationStore(prefix={prefix!r})"
        await pubsub.aclose()  # type: ignore[no-untyped-call]
        await listener.aclose()
        await client.aclose()

    run(main())


def test_parse_change() -> None:
    """Channel messages decode to changes; anything else is a KeyFormatError."""
    parse = RedisRevocationStore.parse_change
    change = parse('{"version":4,"kind":"subject","key":["a","s"],"before":9}')
    assert change == Change(4, "subject", "a", "s", 9)
    assert change.revocations == RevocationSet(subjects={("a", "s"): 9})
    assert str(change) == "subject iss='a' sub='s' before=9 (1970-01-01T00:00:09.000Z)"
    assert str(parse('{"version":1,"kind":"credential","key":["a","c"]}')) == (
        "credential iss='a' cid='c'"
    )
    for bad in (
        "not json",
        None,
        "[]",
        '{"version":"1"}',
        '{"version":1,"kind":"other","key":["a","c"]}',
        '{"version":1,"kind":"credential","key":["a"]}',
        '{"version":1,"kind":"subject","key":["a","s"],"before":-1}',
    ):
        with pytest.raises(KeyFormatError):
            parse(bad)


def test_urls_and_arguments() -> None:
    """Passwords never reach a message; bad URLs and intervals are refused."""
    assert redacted_url("redis://:hunter2@h:1/0") == "redis://:***@h:1/0"
    assert redacted_url("redis://u:hunter2@h:1/0") == "redis://u:***@h:1/0"
    assert redacted_url("redis://h:1/0") == "redis://h:1/0"
    with pytest.raises(UsageError, match="not a Redis URL") as info:
        connect_redis("http://:hunter2@h/")
    assert "hunter2" not in str(info.value)
    with pytest.raises(UsageError):
        RedisRevocations(verifier(), "redis://h/0", check_interval=0)
    with pytest.raises(UsageError):
        RedisRevocations(object(), "redis://h/0")  # type: ignore[arg-type]
    with pytest.raises(UsageError):
        RedisRevocationStore(connect_redis("redis://h/0"), prefix="")
    watcher = RedisRevocations(verifier(), "redis://:hunter2@h:1/0")
    assert "hunter2" not in repr(watcher)
    assert not watcher.synced


def test_merge_keeps_everything() -> None:
    """A merge keeps every entry of both sets, and a subject's later time."""
    held = RevocationSet([("a", "1")], {("a", "s"): 5})
    more = RevocationSet([("a", "2")], {("a", "s"): 3, ("a", "t"): 1})
    expected = RevocationSet([("a", "1"), ("a", "2")], {("a", "s"): 5, ("a", "t"): 1})
    assert merge(held, more) == expected
    assert merge(held, RevocationSet()) is held


def test_the_watcher_follows_the_store(
    redis_server: RedisServer, prefix: str, run: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """The first snapshot, then deltas; a version gap, a bad message or a
    store that went back (flushed) make it resynchronise, keeping what it held."""
    caplog.set_level(logging.INFO, logger="signedws.server")
    target = verifier()

    async def main() -> None:
        client = connect_redis(redis_server.url)
        store = RedisRevocationStore(client, prefix=prefix)
        await store.revoke_credential("auth", "before-start")
        watcher = RedisRevocations(
            target, redis_server.url, prefix=prefix, check_interval=0.1, backoff=FAST
        )
        task = asyncio.create_task(watcher.run())
        try:
            await asyncio.wait_for(watcher.wait_synced(), 5)
            assert target.revocations == RevocationSet([("auth", "before-start")])
            assert (watcher.version, watcher.syncs) == (1, 1)
            await store.revoke_subject("auth", "bob", before=50)  # a delta
            await until(lambda: watcher.version == 2)
            assert watcher.syncs == 1
            # A change published without its predecessor: a gap, resync.
            await client.incr(f"{prefix}:revocations:version")
            await store.revoke_credential("auth", "after-gap")
            await until(lambda: watcher.version == 4)
            assert watcher.syncs == 2
            # A bad message: logged, resync.
            await client.publish(f"{prefix}:revocations", "garbage")
            await until(lambda: watcher.syncs == 3)
            # The store loses everything: the version check notices; nothing is forgotten.
            await client.delete(*(f"{prefix}:revocations:{k}" for k in ("credentials", "version")))
            await until(lambda: watcher.version == 0)
            assert target.revocations == RevocationSet(
                [("auth", "before-start"), ("auth", "after-gap")], {("auth", "bob"): 50}
            )
            # A store holding something that is not a revocation: kept out, logged.
            await client.sadd(f"{prefix}:revocations:credentials", "junk")
            await client.incr(f"{prefix}:revocations:version")
            await until(lambda: "not a JSON pair" in caplog.text)
            assert len(target.revocations) == 3
        finally:
            task.cancel()
            await client.aclose()

    run(main())
    assert "ignoring a bad message" in caplog.text
    assert "lacks 2 entries this server holds" in caplog.text


def test_an_outage_is_logged_once(
    tmp_path: Path, run: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """Redis down at start: no snapshot yet (serve does not start); down
    later: one WARNING however many attempts fail, the set kept, and one INFO
    with a resynchronisation when it is back."""
    caplog.set_level(logging.DEBUG, logger="signedws.server")
    server = RedisServer(find_tool("redis-server"), tmp_path)
    target = verifier()
    target.revocations = RevocationSet([("auth", "held")])

    async def main() -> None:
        watcher = RedisRevocations(target, server.url, check_interval=0.1, backoff=FAST)
        task = asyncio.create_task(watcher.run())
        try:
            await asyncio.sleep(0.3)  # several failed attempts
            assert not watcher.synced
            await asyncio.to_thread(server.start)
            await asyncio.wait_for(watcher.wait_synced(), 5)
            client = connect_redis(server.url)
            await RedisRevocationStore(client).revoke_credential("auth", "new")
            await client.aclose()
            await until(lambda: watcher.version == 1)
            await asyncio.to_thread(server.stop)
            await until(lambda: caplog.text.count("still failing") >= 3)
            assert len(target.revocations) == 2
            await asyncio.to_thread(server.start)
            await until(lambda: watcher.syncs == 2)
        finally:
            task.cancel()
            await asyncio.to_thread(server.stop)

    run(main())
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    lost = [r for r in warnings if "redis revocations: lost" in r.getMessage()]
    assert len(lost) == 2  # at start, and once for the outage
    assert "version 1, 2 entries" in lost[1].getMessage()
    assert sum("is back after" in r.getMessage() for r in caplog.records) == 2
    assert target.revocations == RevocationSet([("auth", "held"), ("auth", "new")])
