"""Issue 13, finding 3: messages queued for a handler that stops must not be
acknowledged, nor marked delivered (SPEC.md §7.3).

A client sends five messages; the handler of its first connection takes the
first, waits until the other four are verified and queued behind it, then
stops: it raises (the connection closes with 1011), or it closes with 1001
(going away). The client reconnects and resends what was not acknowledged:
messages 2 to 5 must then be delivered, each exactly once, on the second
connection. On the base of issue 13 the stream's mark had moved when 2-5 were
queued, so their resends were dropped as "delivered before", acknowledged,
and the client's ``drain()`` returned with only message 1 delivered.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from helpers import AUDIENCE, HMAC_ISSUER, SERVER_KEY, SERVER_KID
from sec_support import KINDS, serving

from signedws.asyncio import Backoff, connect

FAST = Backoff(initial=0.01, maximum=0.05)


@pytest.mark.parametrize("stop", ["raises", "closes-1001"])
@pytest.mark.parametrize("kind", KINDS)
def test_queued_messages_of_a_stopped_handler_are_delivered_after_reconnect(
    kind: str, stop: str, run: Any
) -> None:
    """Every message is delivered exactly once, in order, whatever the first
    handler did with the queue it left behind."""
    delivered: list[tuple[int, object]] = []
    connections: list[object] = []

    async def handler(connection: Any) -> None:
        number = len(connections)
        connections.append(connection)
        async for message in connection:
            delivered.append((number, message.payload))
            if number == 0:
                # Wait (bounded) until messages 2-5 are verified and queued.
                async with asyncio.timeout(5):
                    while connection.session.verifier_state.highest < 5:
                        await asyncio.sleep(0.005)
                await asyncio.sleep(0.05)
                if stop == "raises":
                    raise RuntimeError("the application failed")
                await connection.close(1001, "going away")
                return

    async def main() -> int:
        credential = HMAC_ISSUER.issue_token(
            subject="carol", now=time.time(), audiences=[AUDIENCE]
        )
        async with serving(kind, handler) as (uri, _):
            client = await connect(
                uri,
                credential,
                audience=AUDIENCE,
                server_keys={SERVER_KID: SERVER_KEY.public_key()},
                backoff=FAST,
                keepalive=None,
            )
            try:
                for n in range(1, 6):
                    await client.send(f"m{n}")
                async with asyncio.timeout(15):
                    await client.drain()
            finally:
                await client.close()
            return len(connections)

    opened = run(main(), timeout=40)
    assert opened >= 2
    assert [payload for _, payload in delivered] == ["m1", "m2", "m3", "m4", "m5"]
    assert delivered[0][0] == 0
    assert all(number > 0 for number, _ in delivered[1:])
