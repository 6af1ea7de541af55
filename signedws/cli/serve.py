"""``signedws serve`` (one process, or a supervisor of ``--workers``) and
``signedws issuer``.

The asyncio adapter (websockets, and uvicorn for ``[issuer]``) is imported
only when a server runs.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import importlib
import logging
import os
import signal
import socket
import sys
from collections.abc import Awaitable, Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from ..config import (
    ServerConfig,
    build_verifier,
    environment_overrides,
    load_config,
    load_server_key,
    parse_node_id,
    worker_node_id,
)
from ..errors import UsageError
from ..health import Check, Health
from ..logformat import configure as configure_logging
from ..metrics import NULL as NULL_METRICS
from ..metrics import Metrics, Source
from ..verifier import Verifier

if TYPE_CHECKING:
    from ..asyncio import Handler, Reloader, ServerConnection
    from ..asyncio.redis import RedisRevocations
    from ..server import ServerKey

__all__ = ["cmd_issuer", "cmd_serve", "echo", "resolve_handler"]

logger = logging.getLogger("signedws.cli")


async def echo(connection: ServerConnection) -> None:
    """The built-in handler: send every verified payload back."""
    async for message in connection:
        assert message.payload is not None  # noqa: S101 - control frames are not delivered
        await connection.send(message.payload)


def resolve_handler(spec: str, base: Path | None = None) -> Handler:
    """``"echo"`` or ``"package.module:function"``, the module searched in
    ``base`` (the configuration file's directory), then the current directory,
    then ``sys.path``.

    Those two directories are put in front of ``sys.path`` explicitly: how the
    process was started must not matter. (``python -m signedws``, which starts
    the ``--workers``, has the current directory on ``sys.path``; the
    ``signedws`` console script has its own ``bin`` directory there instead, so
    ``handler = "chat_handler:handler"`` used to import in one and not the
    other.)

    Raises:
        UsageError: if the module or function cannot be found.
    """
    # Before "echo" too: [issuer].authenticate is imported the same way.
    for directory in (Path.cwd(), *([base] if base is not None else [])):
        entry = str(directory.resolve())
        if entry not in sys.path:
            sys.path.insert(0, entry)
        elif sys.path[0] != entry:
            sys.path.remove(entry)
            sys.path.insert(0, entry)
    if spec == "echo":
        return echo
    module_name, _, name = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise UsageError(f"handler {spec!r}: cannot import {module_name!r}: {exc}") from None
    handler = getattr(module, name, None)
    if not callable(handler):
        raise UsageError(f"handler {spec!r}: {name!r} is not a function of {module_name!r}")
    return handler  # type: ignore[no-any-return]


#: Seconds ``signedws serve`` waits for its first revocation set from Redis.
REDIS_SYNC_TIMEOUT: Final = 10.0
#: Seconds a worker has to start, and to stop after SIGTERM, under ``--workers``.
WORKER_START_TIMEOUT: Final = 60.0
WORKER_STOP_TIMEOUT: Final = 30.0
#: Seconds a closing handshake may take (websockets' ``close_timeout``).
CLOSE_TIMEOUT: Final = 2.0


async def _follow_redis(
    config: ServerConfig, verifier: Verifier
) -> tuple[asyncio.Task[None], RedisRevocations]:
    """Start following the Redis revocation store; return once its first
    snapshot is in force (a server that never saw the set must not serve),
    with the watcher (for readiness and metrics)."""
    try:
        from ..asyncio.redis import RedisRevocations  # noqa: PLC0415
    except ImportError as exc:
        raise UsageError(
            f"[redis].url needs the redis package (pip install 'signedws[redis]'): {exc}"
        ) from None
    assert config.redis_url is not None  # noqa: S101 - the caller checked
    watcher = RedisRevocations(
        verifier,
        config.redis_url,
        prefix=config.redis_prefix,
        check_interval=config.redis_check_interval,
    )
    task = await _started(
        watcher.run(), watcher.wait_synced(), "no revocation set from Redis", config.redis_url
    )
    return task, watcher


async def _started(
    run: Coroutine[Any, Any, None], ready: Awaitable[object], missing: str, url: str
) -> asyncio.Task[None]:
    """Start ``run`` in a task and wait for ``ready``, at most
    `REDIS_SYNC_TIMEOUT`: a server does not serve without its Redis state.

    Raises:
        ConnectionError: ``missing`` by then (the task is cancelled).
    """
    from ..asyncio.redis import redacted_url  # noqa: PLC0415

    task = asyncio.create_task(run)
    try:
        async with asyncio.timeout(REDIS_SYNC_TIMEOUT):
            await ready
    except TimeoutError:
        task.cancel()
        raise ConnectionError(
            f"{missing} at {redacted_url(url)} in {REDIS_SYNC_TIMEOUT:g} s; "
            "not serving without one"
        ) from None
    return task


async def _install_topics(
    config: ServerConfig, server_key: ServerKey | None
) -> asyncio.Task[None] | None:
    """Install the process's topics (`signedws.asyncio.topics.topics`): over
    Redis pub/sub when ``[redis].url`` is set (return its task once it is
    subscribed), else in this process."""
    from ..asyncio.topics import LocalTopics, RedisTopics, install  # noqa: PLC0415

    if config.redis_url is None:
        install(LocalTopics(config.audience, server_key=server_key))
        if config.workers > 1:
            logger.info("topics: per worker (set [redis].url to share them across workers)")
        return None
    from ..asyncio.redis import connect_redis  # noqa: PLC0415

    fleet = RedisTopics(
        connect_redis(config.redis_url, decode=False),
        config.audience,
        prefix=config.redis_prefix,
        server_key=server_key,
        history=config.redis_topic_history,
    )
    task = await _started(
        fleet.run(), fleet.wait_ready(), "no topic subscription", config.redis_url
    )
    install(fleet)
    return task


def _stale(reloader: Reloader, what: str, now: float) -> str | None:
    return reloader.stale(what, now)


def _operations(
    config: ServerConfig,
    verifier: Verifier,
    reloader: Reloader,
    watcher: RedisRevocations | None,
    metrics: Metrics,
) -> Health:
    """Readiness checks and metric sources for what this server reloads."""
    health = Health(keyring_size=lambda: len(verifier.keyring))
    for what in ("keyring", "revocations"):
        if getattr(config, what) is not None:
            health.add(Check(what, functools.partial(_stale, reloader, what)))
            metrics.watch(Source(what, functools.partial(reloader.state, what)))
    if watcher is not None:
        live = watcher

        def redis_state() -> dict[str, int | bool]:
            return {
                "version": max(live.version, 0),
                "size": len(verifier.revocations),
                "up": live.connected,
            }

        health.add(Check("redis", lambda _: None if live.connected else "not synced"))
        metrics.watch(Source("redis", redis_state))
    return health


async def _serve(
    config: ServerConfig,
    verifier: Verifier,
    handler: Handler,
    *,
    worker: int | None = None,
    parent: int | None = None,
) -> None:
    from ..asyncio import Reloader, serve  # noqa: PLC0415 - only this command needs websockets
    from ..asyncio.connection import usable_cpus  # noqa: PLC0415
    from .operate import Drain, serve_metrics  # noqa: PLC0415

    if config.transport == "picows":
        serve = _picows_serve()
    parent = os.getppid() if parent is None else parent

    server_key = load_server_key(config.server_key) if config.server_key else None
    reloader = Reloader(
        verifier,
        keyring=config.keyring,
        revocations=config.revocations,
        interval=config.reload_interval,
    )
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    again = asyncio.Event()

    def signalled() -> None:
        (again if stop.is_set() else stop).set()

    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, signalled)
    loop.add_signal_handler(signal.SIGHUP, lambda: reloader.check(force=True))
    redis_task = watcher = None
    if config.redis_url:
        redis_task, watcher = await _follow_redis(config, verifier)
    topics_task = await _install_topics(config, server_key)
    metrics: Metrics = NULL_METRICS
    metrics_server = None
    if config.metrics_listen is not None:
        # Under --workers, each worker on a loopback port of its own; the
        # parent serves [metrics].listen (signedws.cli.operate).
        listen = "127.0.0.1:0" if worker is not None else config.metrics_listen
        metrics, metrics_server, url = serve_metrics(listen)
        print(f"metrics on {url}", flush=True)
    health = _operations(config, verifier, reloader, watcher, metrics)
    whom = f"node {verifier.node_id.hex()}"
    if worker is not None:
        whom += f" (worker {worker}, pid {os.getpid()})"
    drain = Drain(
        seconds=config.drain_seconds,
        metrics=metrics,
        on_start=lambda: setattr(health, "draining", True),
        close_timeout=CLOSE_TIMEOUT,
    )
    if config.issuer is not None:  # the issuer on the same port, under uvicorn (SPEC.md §13)
        from ..asyncio.issuer_serve import serve_with_issuer  # noqa: PLC0415

        try:
            await serve_with_issuer(
                config,
                verifier,
                drain.track(handler),
                reloader=reloader,
                metrics=metrics,
                health=health,
                drain=drain.run,
            )
        finally:
            if redis_task is not None:
                redis_task.cancel()
            if topics_task is not None:
                topics_task.cancel()
            if metrics_server is not None:
                metrics_server.shutdown()
        return
    options: dict[str, Any] = {}
    if config.trusted_proxies:  # the keyword of issue 15's serve() (X-Forwarded-For)
        options["trusted_proxies"] = list(config.trusted_proxies)
    try:
        async with serve(
            drain.track(handler),
            config.host,
            config.port,
            verifier=verifier,
            origins=list(config.origins),
            allow_no_origin=config.allow_no_origin,
            server_key=server_key,
            first_frame_timeout=config.first_frame_timeout,
            idle_timeout=config.idle_timeout,
            max_connections=config.max_connections,
            max_connections_per_principal=config.max_connections_per_principal,
            ack_delay=config.ack_delay,
            # Under --workers, the CPUs are shared out among the processes.
            verify_workers=config.verify_workers
            or max(1, usable_cpus() // (config.workers if worker is not None else 1)),
            # Workers share the port: the kernel spreads connections over them.
            reuse_port=worker is not None,
            # asyncio's default of 100 drops SYNs under a burst of connects.
            backlog=config.backlog,
            metrics=metrics,
            health=health,
            close_timeout=CLOSE_TIMEOUT,
            **options,
        ) as server:
            if config.transport == "websockets":  # its abort path is websockets'
                drain.server = server
            host, port = server.sockets[0].getsockname()[:2]
            logger.info(
                "%s listening on ws://%s:%d audience=%r", whom, host, port, config.audience
            )
            print(f"listening on ws://{host}:{port}", flush=True)
            watcher_task = (
                asyncio.create_task(reloader.run()) if config.reload_interval > 0 else None
            )
            orphan = None
            if worker is not None:
                orphan = asyncio.create_task(_stop_if_orphaned(stop, parent))
            await stop.wait()
            if orphan is not None:
                orphan.cancel()
            logger.info("%s stopping: draining connections", whom)
            await drain.run(again)
            if watcher_task is not None:
                watcher_task.cancel()
    finally:
        if redis_task is not None:
            redis_task.cancel()
        if topics_task is not None:
            topics_task.cancel()
        if metrics_server is not None:
            metrics_server.shutdown()
    logger.info("%s stopped", whom)


def _picows_serve() -> Any:
    """`signedws.asyncio.picows.serve`, or a UsageError saying what to install."""
    try:
        from ..asyncio.picows import serve  # noqa: PLC0415 - an optional dependency
    except ImportError:
        raise UsageError(
            '[server].transport = "picows" needs picows: pip install "signedws[picows]"'
        ) from None
    return serve


async def _stop_if_orphaned(stop: asyncio.Event, parent: int) -> None:
    """A worker whose parent is gone (killed without passing SIGTERM on) stops."""
    while os.getppid() == parent:
        await asyncio.sleep(1.0)
    logger.error("the parent process is gone: stopping")
    stop.set()


def _reserve_port(host: str, port: int) -> socket.socket:
    """A socket bound (not listening) to ``host:port`` with SO_REUSEPORT: it
    picks the port for ``--port 0`` and holds it until the workers listen on
    it. A socket that does not listen never receives connections."""
    if not hasattr(socket, "SO_REUSEPORT"):
        raise UsageError("--workers needs SO_REUSEPORT, which this system lacks")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


async def _supervise(args: argparse.Namespace, config: ServerConfig) -> int:
    """Run ``config.workers`` worker processes on one port until SIGINT or
    SIGTERM; forward SIGHUP. If a worker ends by itself, stop them all.
    SIGTERM is passed on (each worker drains); a second one too (each exits
    at once). With ``[metrics].listen``, serve the workers' metrics merged
    (`signedws.cli.operate`).

    Returns:
        0 if every worker started, and stopped cleanly when asked; else 1.
    """
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    workers: list[asyncio.subprocess.Process] = []

    def forward(signum: int) -> None:
        for proc in workers:
            if proc.returncode is None:
                proc.send_signal(signum)

    def signalled(signum: int) -> None:
        if stop.is_set():
            forward(signum)  # the workers are draining: now they exit at once
        stop.set()

    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, signalled, signum)
    loop.add_signal_handler(signal.SIGHUP, forward, signal.SIGHUP)
    reserved = _reserve_port(config.host, config.port)
    copiers: list[asyncio.Task[None]] = []
    servers: list[Any] = []  # the metrics endpoint, once started
    try:
        status = await _run_workers(
            args, config, reserved, workers=workers, copiers=copiers, stop=stop, servers=servers
        )
    finally:
        reserved.close()
        stopped = await _stop_workers(workers, timeout=config.drain_seconds + WORKER_STOP_TIMEOUT)
        for task in copiers:
            task.cancel()
        for server in servers:
            server.shutdown()
        logger.info("stopped")
    return 1 if status or stopped else 0


async def _run_workers(
    args: argparse.Namespace,
    config: ServerConfig,
    reserved: socket.socket,
    *,
    workers: list[asyncio.subprocess.Process],
    copiers: list[asyncio.Task[None]],
    stop: asyncio.Event,
    servers: list[Any],
) -> int:
    """Start the workers on ``reserved``'s port, wait until they listen (and
    serve their metrics merged, into ``servers``), then until ``stop`` or a
    worker's end. Returns 1 if a worker failed."""
    port = reserved.getsockname()[1]
    for index in range(config.workers):
        argv = [
            *("-m", "signedws", "serve", "--config", args.config),
            *("--host", config.host, "--port", str(port), "--worker", str(index)),
            *("--parent", str(os.getpid())),
            *("--log-level", args.log_level, "--log-format", args.log_format),
            *("--transport", config.transport),
        ]
        if config.node_id is not None:
            argv += ["--node-id", config.node_id.hex()]
        workers.append(
            await asyncio.create_subprocess_exec(
                sys.executable,
                *argv,
                stdout=asyncio.subprocess.PIPE,
                # Signals go to the parent only (Ctrl-C included), which passes
                # them on: the workers stop in one orderly way.
                start_new_session=True,
            )
        )
    urls: list[str | None] = []
    for index, proc in enumerate(workers):
        assert proc.stdout is not None  # noqa: S101 - piped above
        urls.append(None)
        try:
            async with asyncio.timeout(WORKER_START_TIMEOUT):
                line = await proc.stdout.readline()
                if line.startswith(b"metrics on "):  # printed before "listening on"
                    urls[index] = line[len(b"metrics on ") :].decode().strip()
                    line = await proc.stdout.readline()
        except TimeoutError:
            line = b""
        if not line.startswith(b"listening on "):
            logger.error("worker %d did not start", index)
            return 1
        copiers.append(asyncio.create_task(_copy_lines(proc.stdout)))
    reserved.close()
    if config.metrics_listen is not None:
        from .operate import serve_worker_metrics  # noqa: PLC0415

        server, url = serve_worker_metrics(config.metrics_listen, urls)
        servers.append(server)
        print(f"metrics on {url}", flush=True)
    logger.info("%d workers listening on ws://%s:%d", len(workers), config.host, port)
    print(f"listening on ws://{config.host}:{port}", flush=True)
    ended = [asyncio.create_task(proc.wait()) for proc in workers]
    stopping = asyncio.create_task(stop.wait())
    done, _ = await asyncio.wait([stopping, *ended], return_when=asyncio.FIRST_COMPLETED)
    stopping.cancel()
    if stopping in done:
        return 0
    index = next(i for i, task in enumerate(ended) if task in done)
    logger.error(
        "worker %d exited with status %s; stopping the others", index, workers[index].returncode
    )
    return 1


async def _stop_workers(
    workers: list[asyncio.subprocess.Process], *, timeout: float = WORKER_STOP_TIMEOUT
) -> int:
    """SIGTERM every worker still running; kill the ones that do not stop in
    time. Returns 0 if every worker stopped here exited with 0, else 1."""
    status = 0
    running = [proc for proc in workers if proc.returncode is None]
    for proc in running:
        proc.terminate()
    for proc in running:
        try:
            async with asyncio.timeout(timeout):
                code = await proc.wait()
        except TimeoutError:
            logger.error("worker pid %d did not stop in time: killing it", proc.pid)  # noqa: TRY400
            proc.kill()
            code = await proc.wait()
        status = status or (1 if code else 0)
    return status


async def _copy_lines(stream: asyncio.StreamReader) -> None:
    """Pass a worker's further output on, so that its pipe never fills."""
    while line := await stream.readline():
        sys.stdout.buffer.write(line)
        sys.stdout.flush()


def cmd_serve(args: argparse.Namespace) -> int:
    """Run a server from a TOML configuration until SIGINT or SIGTERM."""
    # The worker index tells the workers' lines apart in the shared stderr.
    configure_logging(args.log_level, args.log_format, worker=args.worker)
    logging.getLogger("websockets").setLevel(logging.WARNING)
    logging.getLogger("picows").setLevel(logging.WARNING)  # a line per connection at INFO
    config = load_config(args.config)
    if args.worker is None:
        _log_environment_overrides()
    overrides: dict[str, Any] = {}
    if args.host is not None:
        overrides["host"] = args.host
    if args.port is not None:
        overrides["port"] = args.port
    if args.node_id is not None:
        overrides["node_id"] = parse_node_id(args.node_id)
    if args.workers is not None:
        overrides["workers"] = args.workers
    if args.transport is not None:
        overrides["transport"] = args.transport
    if overrides:
        config = config.replace(**overrides)
    if args.worker is not None:
        config = config.replace(node_id=worker_node_id(config.node_id, args.worker))
    verifier = build_verifier(config)  # every file loads, in the parent too
    if config.server_key is None and verifier.keyring.trusts_ed25519:
        # SPEC.md §7.1: without a server key, no ed25519 client could be
        # answered; they would all be refused (scheme_mismatch).
        raise UsageError(
            f"{config.keyring} trusts ed25519 clients but [keys] server_key is not set: "
            "make one with `signedws keygen ed25519 --kid server-1 -o server.jwk` and name it "
            "in [keys] server_key"
        )
    if args.worker is None and config.workers > 1:
        return asyncio.run(_supervise(args, config))
    handler = resolve_handler(config.handler, Path(args.config).parent)
    asyncio.run(_serve(config, verifier, handler, worker=args.worker, parent=args.parent))
    return 0


def _log_environment_overrides() -> None:
    """Name (never show: they may be secrets) the configuration keys that
    ``SIGNEDWS_<SECTION>_<KEY>`` variables override."""
    overrides = environment_overrides(os.environ)
    names = [f"[{section}].{key}" for section, keys in overrides.items() for key in keys]
    if names:
        logger.info("configuration keys set by the environment: %s", ", ".join(names))


def cmd_issuer(args: argparse.Namespace) -> int:
    """Run the credential issuer alone, from a TOML configuration's [issuer]."""
    configure_logging(args.log_level, args.log_format)
    from ..asyncio.issuer_serve import run_issuer  # noqa: PLC0415 - Starlette, PyJWT, uvicorn

    asyncio.run(run_issuer(load_config(args.config)))
    return 0
