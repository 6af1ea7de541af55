"""Helpers for the asyncio adapter tests: fixed keys, real servers on 127.0.0.1,
and a plain websockets client for crafting attacks.

Imported by the tests of this directory as ``aio_support`` (pytest puts the
directory on ``sys.path``); the name is chosen not to collide with anything.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, Final

from websockets.asyncio.client import ClientConnection as WebSocket
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed

from signedws import (
    Ed25519Credential,
    Ed25519PrivateKey,
    HMACKey,
    Issuer,
    Keyring,
    MACCredential,
    Message,
    ServerKey,
    Signer,
    Verifier,
)
from signedws.asyncio import ServerConnection, serve
from signedws.envelope import decode_hello

AUDIENCE: Final = "wss://signedws.test/ws"
ORIGIN: Final = "https://app.signedws.test"
ISSUER: Final = "auth"
HMAC_KID: Final = "h1"
ED_KID: Final = "e1"
HMAC_SECRET: Final = HMACKey(bytes(range(32)))
FLEET_KEY: Final = HMACKey(bytes(range(100, 132)))
ED_ISSUER_KEY: Final = Ed25519PrivateKey(bytes([1]) * 32)
SERVER_KEY: Final = ServerKey("srv-1", Ed25519PrivateKey(bytes([2]) * 32))
CLIENT_KEY: Final = Ed25519PrivateKey(bytes([3]) * 32)
SERVER_KEYS: Final = {SERVER_KEY.kid: SERVER_KEY.private_key.public_key()}

#: Every secret the tests use, for the no-secret-in-logs checks.
SECRETS: Final = {
    "hmac issuer secret": HMAC_SECRET.to_bytes(),
    "fleet key": FLEET_KEY.to_bytes(),
    "ed25519 issuer seed": ED_ISSUER_KEY.to_bytes(),
    "server key seed": SERVER_KEY.private_key.to_bytes(),
    "client key seed": CLIENT_KEY.to_bytes(),
}


def make_keyring() -> Keyring:
    keyring = Keyring()
    keyring.add_hmac_key(ISSUER, HMAC_KID, HMAC_SECRET)
    keyring.add_ed25519_key(ISSUER, ED_KID, ED_ISSUER_KEY.public_key())
    return keyring


def make_verifier(**kwargs: Any) -> Verifier:
    kwargs.setdefault("audience", AUDIENCE)
    kwargs.setdefault("fleet_key", FLEET_KEY)
    return Verifier(make_keyring(), **kwargs)


def token(subject: str = "alice", *, now: float | None = None, **kwargs: Any) -> MACCredential:
    issuer = Issuer(ISSUER, HMAC_KID, HMAC_SECRET)
    return issuer.issue_token(subject=subject, now=time.time() if now is None else now, **kwargs)


def certificate(
    subject: str = "bob", *, now: float | None = None, **kwargs: Any
) -> Ed25519Credential:
    issuer = Issuer(ISSUER, ED_KID, ED_ISSUER_KEY)
    cert = issuer.issue_certificate(
        CLIENT_KEY.public_key(),
        subject=subject,
        now=time.time() if now is None else now,
        **kwargs,
    )
    return Ed25519Credential(cert, CLIENT_KEY)


@dataclass
class Recorder:
    """A handler that records every verified message, per connection, and can
    echo it back."""

    echo: bool = False
    messages: list[Message] = field(default_factory=list)
    connections: list[ServerConnection] = field(default_factory=list)
    per_connection: dict[int, list[Message]] = field(default_factory=dict)
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    #: Called with (connection, message) after recording; may be async.
    hook: Callable[[ServerConnection, Message], Coroutine[Any, Any, None]] | None = None

    async def __call__(self, connection: ServerConnection) -> None:
        self.connections.append(connection)
        index = len(self.connections) - 1
        self.per_connection[index] = []
        self.changed.set()
        async for message in connection:
            self.messages.append(message)
            self.per_connection[index].append(message)
            self.changed.set()
            if self.echo:
                assert message.payload is not None
                await connection.send(message.payload)
            if self.hook is not None:
                await self.hook(connection, message)

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:
        async with asyncio.timeout(timeout):
            while not predicate():
                self.changed.clear()
                await self.changed.wait()

    def payloads(self, subject: str | None = None) -> list[object]:
        return [m.payload for m in self.messages if subject is None or m.subject == subject]


@dataclass
class Running:
    """A running test server."""

    uri: str
    verifier: Verifier
    recorder: Recorder
    server: Any


@contextlib.asynccontextmanager
async def running(
    recorder: Recorder | None = None, *, serve: Callable[..., Any] = serve, **kwargs: Any
) -> AsyncIterator[Running]:
    """A signedws server on 127.0.0.1, any free port (``serve``: the websockets
    adapter's by default, or another adapter's with the same keywords)."""
    recorder = recorder if recorder is not None else Recorder()
    verifier = kwargs.pop("verifier", None) or make_verifier()
    kwargs.setdefault("origins", [ORIGIN])
    kwargs.setdefault("allow_no_origin", True)
    kwargs.setdefault("server_key", SERVER_KEY)
    async with serve(recorder, "127.0.0.1", 0, verifier=verifier, **kwargs) as server:
        port = server.sockets[0].getsockname()[1]
        yield Running(f"ws://127.0.0.1:{port}", verifier, recorder, server)


@contextlib.asynccontextmanager
async def raw(
    uri: str, *, origin: str | None = None, subprotocols: list[str] | None = None
) -> AsyncIterator[tuple[WebSocket, bytes]]:
    """A plain websockets client that has read the hello."""
    protocols = ["signedws.v1"] if subprotocols is None else subprotocols
    async with ws_connect(uri, subprotocols=protocols, origin=origin) as ws:  # type: ignore[arg-type]
        hello = await ws.recv()
        assert isinstance(hello, bytes)
        yield ws, hello


def signer_for(hello: bytes, credential: Any, **kwargs: Any) -> Signer:
    kwargs.setdefault("server_keys", SERVER_KEYS)
    return Signer(credential, decode_hello(hello), now=time.time(), **kwargs)


async def closed_with(ws: WebSocket, timeout: float = 5.0) -> int | None:
    """Read until the peer closes; the close code received."""
    with contextlib.suppress(ConnectionClosed):
        async with asyncio.timeout(timeout):
            while True:
                await ws.recv()
    return ws.close_code


def codes_logged(caplog: Any) -> list[str]:
    return [
        record.signedws_code  # type: ignore[attr-defined]
        for record in caplog.records
        if hasattr(record, "signedws_code")
    ]
