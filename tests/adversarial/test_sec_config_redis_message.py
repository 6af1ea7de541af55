"""Issue 13, finding 8 (Redis): any client of the fleet's Redis can publish on
the revocation channel. A deeply nested message raised ``RecursionError`` in
the watcher: logged as an unexpected failure with a traceback, the session
torn down as if Redis were lost (a WARNING outage), then rebuilt. Now a
message is bounded in size before it is parsed and nesting is a typed
refusal: the watcher logs a bad message, resynchronises, stays connected, and
applies the next genuine change. Over a real ``redis-server``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

import pytest
from helpers import AUDIENCE, FLEET_KEY, ISSUER, make_keyring
from sec_config_support import redis_server

from signedws import Verifier
from signedws.asyncio.redis import RedisRevocations, RedisRevocationStore, connect_redis

HOSTILE: Final = [
    "[" * 5_000 + "]" * 5_000,  # small enough to parse: too deep
    '{"version": 1, "kind": "credential", "key": ' + "[" * 3_000 + "]" * 3_000 + "}",
    "[" * 100_000 + "]" * 100_000,  # over the size bound: not parsed at all
    '{"version": 1, "version": 2, "kind": "credential", "key": ["a", "b"]}',
]


def test_watcher_carries_on_after_nested_messages(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, run: Callable[..., Any]
) -> None:
    caplog.set_level(logging.INFO, logger="signedws")
    verifier = Verifier(make_keyring(), audience=AUDIENCE, fleet_key=FLEET_KEY)

    async def main(url: str) -> int:
        watcher = RedisRevocations(verifier, url, check_interval=0.2, timeout=2.0)
        task = asyncio.create_task(watcher.run())
        client = connect_redis(url)
        try:
            async with asyncio.timeout(15):
                await watcher.wait_synced()
            store = RedisRevocationStore(client)
            for message in HOSTILE:
                await client.publish(store.channel, message)
            await store.revoke_credential(ISSUER, "after-the-garbage")
            async with asyncio.timeout(15):
                while (ISSUER, "after-the-garbage") not in verifier.revocations.credentials:
                    await asyncio.sleep(0.02)
            return watcher.version
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await client.aclose()

    with redis_server(tmp_path) as redis:
        version = run(main(f"redis://127.0.0.1:{redis.port}/0"))
    assert version == 1
    messages = [record.getMessage() for record in caplog.records]
    bad = [m for m in messages if "ignoring a bad message" in m]
    assert len(bad) == len(HOSTILE), messages
    assert not [m for m in messages if "unexpected failure" in m or "lost" in m], messages
    assert not any(record.exc_info for record in caplog.records)
