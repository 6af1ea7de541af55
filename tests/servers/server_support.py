"""Servers for the contract suite: the websockets adapter, the picows adapter,
and the ASGI adapter in a Starlette app and in a FastAPI app, each under a real
uvicorn on 127.0.0.1.

uvicorn runs with ``ws="websockets-sansio"``, the implementation its ``auto``
setting picks when websockets is installed (its ``websockets`` setting is the
deprecated legacy one; wsproto is not installed), with ``ws_max_size`` set to
the verifier's ``max_frame_size`` and without permessage-deflate, as the ASGI
adapter's docs ask. Each server
is started with ``Server.startup`` in the test's own event loop, on port 0,
and stopped with ``Server.shutdown`` (bounded by ``timeout_graceful_shutdown``).
"""

# No ``from __future__ import annotations``: FastAPI resolves the endpoint's
# ``Annotated[..., Depends(signed)]`` when it is defined, and ``signed`` is local.
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any, Final

import uvicorn
from aio_support import ORIGIN, SERVER_KEY, Recorder, Running, make_verifier, running
from fastapi import Depends, FastAPI
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from signedws.asyncio.asgi import DENIAL_EXTENSION, ServerConnection, SignedWebSockets
from signedws.asyncio.picows import serve as picows_serve

#: Every server the contract runs against.
KINDS: Final = ("websockets", "picows", "starlette", "fastapi")
#: The ASGI ones.
ASGI_KINDS: Final = ("starlette", "fastapi")
PATH: Final = "/ws"


def starlette_app(signed: SignedWebSockets, handler: Any) -> Starlette:
    """A Starlette app whose one route is the guarded handler."""
    return Starlette(routes=[WebSocketRoute(PATH, signed.endpoint(handler))])


def fastapi_app(signed: SignedWebSockets, handler: Any) -> FastAPI:
    """A FastAPI app whose one endpoint takes its connection from the dependency."""
    app = FastAPI()

    @app.websocket(PATH)
    async def endpoint(connection: Annotated[ServerConnection, Depends(signed)]) -> None:
        await handler(connection)

    return app


def without_denial_extension(app: ASGIApp) -> ASGIApp:
    """``app`` behind a server that does not offer the WebSocket Denial
    Response extension."""

    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            extensions = dict(scope.get("extensions") or {})
            extensions.pop(DENIAL_EXTENSION, None)
            scope = {**scope, "extensions": extensions}
        await app(scope, receive, send)

    return wrapped


@contextlib.asynccontextmanager
async def uvicorn_server(
    app: ASGIApp, *, ws_max_size: int, proxy_headers: bool = True
) -> AsyncIterator[int]:
    """Serve ``app`` with uvicorn on 127.0.0.1, any free port; yield the port.
    ``proxy_headers``: uvicorn's own X-Forwarded-For handling (on by default,
    trusting loopback)."""
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=0,
        ws="websockets-sansio",
        ws_max_size=ws_max_size,
        ws_per_message_deflate=False,  # as README.md runs it (SECURITY.md, issue 13)
        proxy_headers=proxy_headers,
        lifespan="off",
        log_config=None,
        timeout_graceful_shutdown=5,
    )
    config.load()
    server = uvicorn.Server(config)
    server.lifespan = config.lifespan_class(config)
    await server.startup()
    try:
        yield server.servers[0].sockets[0].getsockname()[1]
    finally:
        await server.shutdown()


def app_for(kind: str, signed: SignedWebSockets, handler: Any) -> ASGIApp:
    """The Starlette or FastAPI app for ``kind``."""
    return (starlette_app if kind == "starlette" else fastapi_app)(signed, handler)


@contextlib.asynccontextmanager
async def start(
    kind: str,
    recorder: Recorder | None = None,
    *,
    wrap: Callable[[ASGIApp], ASGIApp] | None = None,
    ws_max_size: int | None = None,
    proxy_headers: bool = True,
    **kwargs: Any,
) -> AsyncIterator[Running]:
    """A server of ``kind`` with the contract's defaults (the asyncio tests'
    keys, ``ORIGIN`` and clients without Origin allowed, the server key);
    ``kwargs`` are the adapter's keyword arguments. For ASGI servers, ``wrap``
    wraps the app and ``ws_max_size`` replaces uvicorn's limit (default: the
    verifier's ``max_frame_size``), ``proxy_headers`` False turns off uvicorn's
    own X-Forwarded-For handling; ``Running.server`` is the guard."""
    if kind == "websockets":
        async with running(recorder, **kwargs) as srv:
            yield srv
        return
    if kind == "picows":
        async with running(recorder, serve=picows_serve, **kwargs) as srv:
            yield srv
        return
    recorder = recorder if recorder is not None else Recorder()
    verifier = kwargs.pop("verifier", None) or make_verifier()
    kwargs.setdefault("origins", [ORIGIN])
    kwargs.setdefault("allow_no_origin", True)
    kwargs.setdefault("server_key", SERVER_KEY)
    signed = SignedWebSockets(verifier, **kwargs)
    app = app_for(kind, signed, recorder)
    if wrap is not None:
        app = wrap(app)
    limit = verifier.max_frame_size if ws_max_size is None else ws_max_size
    async with uvicorn_server(app, ws_max_size=limit, proxy_headers=proxy_headers) as port:
        yield Running(f"ws://127.0.0.1:{port}{PATH}", verifier, recorder, signed)
