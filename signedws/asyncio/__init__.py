"""signedws on `websockets`' asyncio implementation: `serve` and `connect`.

A server whose handler sees only verified messages::

    async def handler(connection):
        async for message in connection:
            await connection.send(f"{message.subject} said {message.payload}")

    async with serve(handler, "127.0.0.1", 8765, verifier=verifier,
                     origins=["https://app.example"], allow_no_origin=True):
        await asyncio.Future()

A client that signs every frame, reconnects, and resends what the server did
not acknowledge::

    async with connect("ws://127.0.0.1:8765", credential, audience=AUD) as client:
        await client.send("hello")
        print(await client.recv())

Importing this package imports `websockets`; ``import signedws`` does not.
"""

from __future__ import annotations

from ..client import Backoff
from ..errors import ClientClosed, ConnectionLost, Refused, RepeatedFailure
from .client import ClientConnection, Refresh, connect
from .reloader import Reloader
from .server import SUBPROTOCOL, Handler, ServerConnection, serve

__all__ = [
    "SUBPROTOCOL",
    "Backoff",
    "ClientClosed",
    "ClientConnection",
    "ConnectionLost",
    "Handler",
    "Refresh",
    "Refused",
    "Reloader",
    "RepeatedFailure",
    "ServerConnection",
    "connect",
    "serve",
]
