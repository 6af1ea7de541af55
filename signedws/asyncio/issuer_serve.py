"""``signedws serve`` with an ``[issuer]`` table, and ``signedws issuer``: the
issuer service (SPEC.md §13) from a TOML configuration, under uvicorn.

With ``[issuer]``, ``signedws serve`` runs one ASGI app on the server's port:
the issuer mounted at ``[issuer].path`` and the signed WebSocket
(`signedws.asyncio.asgi.SignedWebSockets`) on every other path, so a browser page gets
its credential and connects on one origin. ``signedws issuer`` runs the issuer
alone on ``[issuer].host``/``[issuer].port``.

Needs ``signedws[issuer]`` and uvicorn.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import signal
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, cast

from ..config import ServerConfig, load_server_key
from ..errors import KeyFormatError, UsageError
from ..health import Health
from ..issuer import IssuerService
from ..issuer_config import IssuerConfig, build_issuer_service
from ..keys import HMACKey, load_key
from ..metrics import Metrics
from ..verifier import Verifier
from .issuer import Authenticate, BearerTokenAuthenticator, issuer_app

if TYPE_CHECKING:
    from .reloader import Reloader

__all__ = ["build_apps", "issuer_service", "run_issuer", "serve_with_issuer"]

logger = logging.getLogger("signedws.serve")


def _issuer(config: ServerConfig) -> IssuerConfig:
    if config.issuer is None:
        raise UsageError("the configuration has no [issuer] table")
    return config.issuer


def issuer_service(config: ServerConfig) -> IssuerService:
    """The `IssuerService` of a configuration's ``[issuer]`` table.

    Raises:
        KeyFormatError, UsageError: for a bad key file or setting.
    """
    try:
        fleet_kid, fleet = load_key(config.fleet_key)
    except OSError as exc:
        raise KeyFormatError(f"cannot read the fleet key: {exc.strerror}") from None
    if not isinstance(fleet, HMACKey):
        raise KeyFormatError("[keys].fleet_key must be an oct JWK")
    server_key = load_server_key(config.server_key) if config.server_key else None
    return build_issuer_service(
        _issuer(config),
        audience=config.audience,
        fleet_key=(fleet_kid, fleet),
        server_key=server_key,
    )


def _authenticate(config: IssuerConfig) -> Authenticate:
    if config.authenticate is not None:
        module_name, _, name = config.authenticate.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise UsageError(
                f"[issuer].authenticate: cannot import {module_name!r}: {exc}"
            ) from None
        hook = getattr(module, name, None)
        if not callable(hook):
            raise UsageError(f"[issuer].authenticate: {config.authenticate!r} is not a function")
        return cast(Authenticate, hook)
    # parse_issuer_table required all three without authenticate.
    return BearerTokenAuthenticator(
        jwks_url=config.oidc_jwks_url or "",
        issuer=config.oidc_issuer or "",
        audience=config.oidc_audience or "",
        algorithms=config.algorithms,
        subject_claim=config.subject_claim,
        scopes_claim=config.scopes_claim,
    )


def build_apps(
    config: ServerConfig,
    verifier: Verifier | None = None,
    handler: Any = None,
    *,
    metrics: Metrics | None = None,
    health: Health | None = None,
) -> Any:
    """The ASGI app: the issuer alone (no ``verifier``), or the issuer at
    ``[issuer].path``, ``/healthz`` and ``/readyz`` (from ``health``) and the
    signed WebSocket (counted in ``metrics``) on every other path."""
    from starlette.applications import Starlette  # noqa: PLC0415
    from starlette.routing import Mount, WebSocketRoute  # noqa: PLC0415

    settings = _issuer(config)
    issuer = issuer_app(
        issuer_service(config),
        authenticate=_authenticate(settings),
        origins=settings.origins or config.origins,
    )
    if verifier is None:
        return issuer
    from .asgi import SignedWebSockets  # noqa: PLC0415

    signed = SignedWebSockets(
        verifier,
        origins=list(config.origins),
        allow_no_origin=config.allow_no_origin,
        server_key=load_server_key(config.server_key) if config.server_key else None,
        first_frame_timeout=config.first_frame_timeout,
        idle_timeout=config.idle_timeout,
        max_connections=config.max_connections,
        ack_delay=config.ack_delay,
        verify_workers=config.verify_workers,
        trusted_proxies=config.trusted_proxies,  # X-Forwarded-For in the connection log
        metrics=metrics,
        health=health,
    )
    return Starlette(
        routes=[
            *signed.probe_routes(),  # /healthz, /readyz ([h17 hook])
            Mount(settings.path, app=issuer),
            WebSocketRoute("/{path:path}", signed.endpoint(handler)),
        ]
    )


async def _run(
    app: Any,
    host: str,
    port: int,
    *,
    ws_max_size: int,
    on_listen: Callable[[int], None],
    drain: Callable[[asyncio.Event], Awaitable[object]] | None = None,
) -> None:
    try:
        import uvicorn  # noqa: PLC0415
    except ImportError:
        raise UsageError(
            "[issuer] needs uvicorn: pip install 'signedws[issuer]' uvicorn"
        ) from None
    server_config = uvicorn.Config(
        app,
        host=host,
        port=port,
        ws="websockets-sansio",
        ws_max_size=ws_max_size,
        lifespan="off",
        log_config=None,
        access_log=False,  # request lines are not needed, and URLs stay out of the log
        timeout_graceful_shutdown=5,
    )
    server_config.load()
    server = uvicorn.Server(server_config)
    server.lifespan = server_config.lifespan_class(server_config)
    stop, again = asyncio.Event(), asyncio.Event()
    loop = asyncio.get_running_loop()

    def signalled() -> None:
        (again if stop.is_set() else stop).set()

    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, signalled)
    await server.startup()
    try:
        on_listen(server.servers[0].sockets[0].getsockname()[1])
        await stop.wait()
        if drain is not None:  # a second signal (``again``) cuts it short
            await drain(again)
    finally:
        await server.shutdown()


async def serve_with_issuer(
    config: ServerConfig,
    verifier: Verifier,
    handler: Any,
    *,
    redis: Callable[[ServerConfig, Verifier], Awaitable[asyncio.Task[None]]] | None = None,
    reloader: Reloader | None = None,
    metrics: Metrics | None = None,
    health: Health | None = None,
    drain: Callable[[asyncio.Event], Awaitable[object]] | None = None,
) -> None:
    """``signedws serve`` with ``[issuer]``: one port, under uvicorn; the
    operations (``reloader``, ``metrics``, ``health``, ``drain`` on SIGTERM)
    as `signedws.cli.serve` sets them up."""
    from .reloader import Reloader  # noqa: PLC0415

    settings = _issuer(config)
    app = build_apps(config, verifier, handler, metrics=metrics, health=health)
    if reloader is None:
        reloader = Reloader(
            verifier,
            keyring=config.keyring,
            revocations=config.revocations,
            interval=config.reload_interval,
        )
    asyncio.get_running_loop().add_signal_handler(
        signal.SIGHUP, lambda: reloader.check(force=True)
    )
    redis_task = await redis(config, verifier) if redis and config.redis_url else None
    watcher = asyncio.create_task(reloader.run()) if config.reload_interval > 0 else None

    def listening(port: int) -> None:
        logger.info(
            "node %s listening on ws://%s:%d audience=%r, issuer at %s",
            verifier.node_id.hex(),
            config.host,
            port,
            config.audience,
            settings.path,
        )
        print(f"listening on ws://{config.host}:{port}", flush=True)
        print(f"issuer on http://{config.host}:{port}{settings.path}", flush=True)

    try:
        await _run(
            app,
            config.host,
            config.port,
            ws_max_size=config.max_frame_size,
            on_listen=listening,
            drain=drain,
        )
    finally:
        for task in (watcher, redis_task):
            if task is not None:
                task.cancel()


async def run_issuer(config: ServerConfig) -> None:
    """``signedws issuer``: the issuer alone on ``[issuer].host``/``port``."""
    settings = _issuer(config)
    app = build_apps(config)

    def listening(port: int) -> None:
        logger.info("issuer listening on http://%s:%d", settings.host, port)
        print(f"issuer on http://{settings.host}:{port}", flush=True)

    await _run(app, settings.host, settings.port, ws_max_size=65536, on_listen=listening)
