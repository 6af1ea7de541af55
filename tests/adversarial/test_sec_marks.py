"""Issue 13, finding 2: one principal must not be able to erase another's
exactly-once marks (SPEC.md §7.3).

Stream ids are the client's choice. On the base of issue 13 one LRU of stream
marks served every principal of a server: a principal sending frames on
``capacity`` fresh stream ids evicted every other principal's marks, and a
victim's resends were then delivered twice. Now each principal keeps marks for
at most ``per_principal`` streams of its own; its new streams evict only its
own. Here the marks hold 1,024 streams (the default is 65,536: same logic,
faster test), the attacker opens 1,100 streams with one valid credential, and
the victim's three resent messages must still be dropped as delivered.
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

import pytest
from helpers import AUDIENCE, HMAC_ISSUER, SERVER_KEY, SERVER_KID
from sec_support import KINDS, serving
from websockets.asyncio.client import connect as ws_connect

from signedws import MACCredential, Signer, StreamMarks, decode_hello

CAPACITY = 1024
ATTACK_STREAMS = 1100
SERVER_KEYS = {SERVER_KID: SERVER_KEY.public_key()}


def credential(subject: str) -> MACCredential:
    return HMAC_ISSUER.issue_token(subject=subject, now=time.time(), audiences=[AUDIENCE])


@pytest.mark.parametrize("kind", KINDS)
def test_one_principal_cannot_evict_another_principals_marks(kind: str, run: Any) -> None:
    """After an attacker opened more streams than the marks hold, the
    victim's resends are still dropped and its next message delivered once."""
    delivered: list[tuple[str, object]] = []
    changed = asyncio.Event()

    async def handler(connection: Any) -> None:
        async for message in connection:
            delivered.append((message.subject, message.payload))
            changed.set()

    async def wait_for(count: int) -> None:
        async with asyncio.timeout(30):
            while len(delivered) < count:
                changed.clear()
                await changed.wait()

    victim_stream = os.urandom(16)

    async def victim(uri: str, messages: list[tuple[str, int]], until: int) -> None:
        async with ws_connect(uri, subprotocols=["signedws.v1"]) as ws:  # type: ignore[list-item]
            hello = await ws.recv()
            assert isinstance(hello, bytes)
            signer = Signer(
                credential("alice"),
                decode_hello(hello),
                now=time.time(),
                server_keys=SERVER_KEYS,
                stream=victim_stream,
            )
            for payload, seq in messages:
                await ws.send(signer.sign(payload, now=time.time(), seq=seq))
            await wait_for(until)

    async def main() -> None:
        marks = StreamMarks(CAPACITY)
        async with serving(kind, handler, stream_marks=marks) as (uri, _):
            await victim(uri, [("m1", 1), ("m2", 2), ("m3", 3)], 3)
            async with ws_connect(uri, subprotocols=["signedws.v1"]) as ws:  # type: ignore[list-item]
                hello = await ws.recv()
                assert isinstance(hello, bytes)
                signer = Signer(
                    credential("mallory"),
                    decode_hello(hello),
                    now=time.time(),
                    server_keys=SERVER_KEYS,
                )
                for n in range(ATTACK_STREAMS):
                    signer.stream = n.to_bytes(16, "big")
                    await ws.send(signer.sign(f"x{n}", now=time.time(), seq=1))
                await wait_for(3 + ATTACK_STREAMS)
            # The victim reconnects and resends 1-3 (their acks were lost), then 4.
            await victim(uri, [("m1", 1), ("m2", 2), ("m3", 3), ("m4", 4)], 3 + ATTACK_STREAMS + 1)
            await asyncio.sleep(0.1)  # anything delivered twice would be here by now

    run(main(), timeout=60)
    assert [p for s, p in delivered if s == "alice"] == ["m1", "m2", "m3", "m4"]
    assert sum(1 for s, _ in delivered if s == "mallory") == ATTACK_STREAMS
