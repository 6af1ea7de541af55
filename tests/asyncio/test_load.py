"""Many concurrent clients: every frame delivered once and in order per connection."""

from __future__ import annotations

import asyncio
from typing import Any

from aio_support import AUDIENCE, SERVER_KEYS, certificate, running, token

from signedws.asyncio import connect

CLIENTS = 200
MESSAGES = 10


def test_200_concurrent_clients(run: Any) -> None:
    """200 clients (half mac, half ed25519) send at once; each connection's
    messages reach the handler once, in order, and every client gets all its
    echoes back."""

    async def one(uri: str, number: int) -> list[str | bytes]:
        if number % 2:
            credential: Any = certificate(f"user{number}")
        else:
            credential = token(f"user{number}")
        async with connect(uri, credential, audience=AUDIENCE, server_keys=SERVER_KEYS) as client:
            for i in range(MESSAGES):
                await client.send(f"{number}:{i}")
            echoes = [await client.recv() for _ in range(MESSAGES)]
            await client.drain()
            return echoes

    async def main() -> None:
        async with running() as srv:
            srv.recorder.echo = True
            results = await asyncio.gather(*(one(srv.uri, n) for n in range(CLIENTS)))
            for number, echoes in enumerate(results):
                assert echoes == [f"{number}:{i}" for i in range(MESSAGES)]
            assert len(srv.recorder.connections) == CLIENTS
            for messages in srv.recorder.per_connection.values():
                (subject,) = {m.subject for m in messages}
                number = int(subject.removeprefix("user"))
                assert [m.payload for m in messages] == [f"{number}:{i}" for i in range(MESSAGES)]
                assert [m.seq for m in messages] == list(range(1, MESSAGES + 1))
            assert len(srv.recorder.messages) == CLIENTS * MESSAGES

    run(main(), timeout=60)
