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

Importing this package imports nothing but itself; its names import `websockets`
on first use. ``import signedws`` imports neither.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..client import Backoff
    from ..envelope import SUBPROTOCOL
    from ..errors import ClientClosed, ConnectionLost, Refused, RepeatedFailure
    from .client import ClientConnection, Refresh, connect
    from .connection import ServerConnection
    from .reloader import Reloader
    from .server import Handler, serve

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

#: Where each export lives: imported on first use (PEP 562), so that
#: ``signedws.asyncio.asgi`` imports neither websockets nor the client.
_LAZY = {
    "SUBPROTOCOL": "..envelope",
    "Backoff": "..client",
    "ClientClosed": "..errors",
    "ClientConnection": ".client",
    "ConnectionLost": "..errors",
    "Handler": ".server",
    "Refresh": ".client",
    "Refused": "..errors",
    "Reloader": ".reloader",
    "RepeatedFailure": "..errors",
    "ServerConnection": ".connection",
    "connect": ".client",
    "serve": ".server",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
