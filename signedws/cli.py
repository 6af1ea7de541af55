"""The ``signedws`` command line: keygen, issue, serve, issuer, revoke, inspect, demo.

Each command is a thin shell over the core (and, for ``serve`` and ``demo``,
the asyncio adapter, imported only when they run). Secrets go to files created
with mode 0600; the only secret ever printed is a `mac` frame key, by
``signedws issue mac`` without ``--out``, because that is what it was asked for.

Exit status: 0 success, 1 a frame rejected or the demo failed, 2 a usage or
file error.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import fcntl
import importlib
import json
import logging
import os
import signal
import socket
import stat
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from . import __version__
from .config import (
    ServerConfig,
    build_verifier,
    environment_overrides,
    load_config,
    load_fleet_key,
    load_keyring,
    load_revocations,
    load_server_key,
    parse_node_id,
    worker_node_id,
)
from .credential import Claims, Issuer, KeyReference, unverified_credential
from .envelope import (
    KIND_CLIENT_MAC,
    Payload,
    decode_hello,
    parse_server_frame,
    unverified_client_frame,
)
from .errors import Rejected, SignedWSError, UsageError
from .jsondoc import parse_json
from .keyring import Keyring
from .keys import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
    HMACKey,
    b64url_encode,
    key_to_jwk,
    load_key,
    save_key,
)
from .logformat import FORMATS as LOG_FORMATS
from .logformat import When
from .logformat import configure as configure_logging
from .nonce import NonceKey, unverified_expiry
from .revocation import RevocationSet
from .verifier import ConnectionState, Verifier

if TYPE_CHECKING:
    from .asyncio import Handler, ServerConnection
    from .session import ServerKey

__all__ = ["build_parser", "main"]

logger = logging.getLogger("signedws.cli")


# -- keygen -------------------------------------------------------------------------------


def _write_secret_json(path: Path, document: dict[str, Any]) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as file:
        file.write(json.dumps(document, indent=2) + "\n")


def _add_to_keyring(path: Path, issuer: str, jwk: dict[str, str]) -> None:
    """Add an issuer key to a keyring file (created if missing), atomically and
    with mode 0600: a keyring holds HMAC issuer secrets."""
    document: dict[str, Any] = {"issuers": {}}
    if path.exists():
        try:
            document = dict(parse_json(path.read_text()))
        except (ValueError, TypeError):
            raise UsageError(f"{path} is not a keyring JSON document") from None
    issuers = document.setdefault("issuers", {})
    entries = [e for e in issuers.get(issuer, []) if e.get("kid") != jwk["kid"]]
    issuers[issuer] = [*entries, jwk]
    Keyring.from_dict(document)  # refuse to write a keyring that would not load
    tmp = path.with_name(f".{path.name}.tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    _write_secret_json(tmp, document)
    os.replace(tmp, path)


def cmd_keygen(args: argparse.Namespace) -> int:
    """Generate a key, write it (mode 0600), print its public part."""
    if bool(args.keyring) != bool(args.issuer):
        raise UsageError("--keyring and --issuer go together")
    out = Path(args.out)
    if args.type == "hmac":
        secret = HMACKey.generate()
        save_key(out, secret, args.kid)
        if args.keyring:
            _add_to_keyring(Path(args.keyring), args.issuer, key_to_jwk(secret, args.kid))
        print(f"wrote HMAC secret {args.kid!r} to {out} (mode 0600); it has no public part")
        return 0
    key = Ed25519PrivateKey.generate()
    save_key(out, key, args.kid)
    public = key.public_key()
    if args.public_out:
        save_key(Path(args.public_out), public, args.kid)
    if args.keyring:
        _add_to_keyring(Path(args.keyring), args.issuer, key_to_jwk(public, args.kid))
    print(json.dumps(key_to_jwk(public, args.kid)))
    return 0


# -- issue --------------------------------------------------------------------------------


def _issuer(path: str, name: str) -> Issuer:
    kid, key = load_key(path)
    if isinstance(key, Ed25519PublicKey):
        raise UsageError(f"{path}: an issuer key must be a secret or private key")
    return Issuer(name, kid, key)


def cmd_issue(args: argparse.Namespace) -> int:
    """Mint a `mac` token (with its frame key) or an `ed25519` certificate."""
    issuer = _issuer(args.key, args.issuer)
    common: dict[str, Any] = {
        "subject": args.subject,
        "now": time.time() if args.now is None else args.now,
        "lifetime": args.lifetime,
        "scopes": args.scope,
        "audiences": args.audience,
        "credential_id": args.cid,
    }
    document: dict[str, Any]
    if args.scheme == "mac":
        credential = issuer.issue_token(**common)
        document = {
            "scheme": "mac",
            "token": b64url_encode(credential.token),
            "frame_key": b64url_encode(credential.frame_key.to_bytes()),
        }
    else:
        _, public = load_key(args.public_key)
        if isinstance(public, Ed25519PrivateKey):
            public = public.public_key()
        if not isinstance(public, Ed25519PublicKey):
            raise UsageError(f"{args.public_key}: not an Ed25519 key")
        certificate = issuer.issue_certificate(public, **common)
        document = {"scheme": "ed25519", "certificate": b64url_encode(certificate)}
    if args.out:
        _write_secret_json(Path(args.out), document)
        shown = {k: v for k, v in document.items() if k != "frame_key"}
        print(json.dumps({**shown, "written_to": args.out}))
    else:
        print(json.dumps(document))
    return 0


# -- serve --------------------------------------------------------------------------------


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
    if spec == "echo":
        return echo
    for directory in (Path.cwd(), *([base] if base is not None else [])):
        entry = str(directory.resolve())
        if entry not in sys.path:
            sys.path.insert(0, entry)
        elif sys.path[0] != entry:
            sys.path.remove(entry)
            sys.path.insert(0, entry)
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


async def _redis_revocations(config: ServerConfig, verifier: Verifier) -> asyncio.Task[None]:
    """Start following the Redis revocation store; return once its first
    snapshot is in force (a server that never saw the set must not serve)."""
    try:
        from .asyncio.redis import RedisRevocations, redacted_url  # noqa: PLC0415
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
    task = asyncio.create_task(watcher.run())
    try:
        async with asyncio.timeout(REDIS_SYNC_TIMEOUT):
            await watcher.wait_synced()
    except TimeoutError:
        task.cancel()
        raise ConnectionError(
            f"no revocation set from Redis at {redacted_url(config.redis_url)} in "
            f"{REDIS_SYNC_TIMEOUT:g} s; not serving without one"
        ) from None
    return task


async def _install_topics(
    config: ServerConfig, server_key: ServerKey | None
) -> asyncio.Task[None] | None:
    """Install the process's topics (`signedws.asyncio.topics.topics`): over
    Redis pub/sub when ``[redis].url`` is set (return its task once it is
    subscribed), else in this process."""
    from .asyncio.topics import LocalTopics, RedisTopics, install  # noqa: PLC0415

    if config.redis_url is None:
        install(LocalTopics(config.audience, server_key=server_key))
        if config.workers > 1:
            logger.info("topics: per worker (set [redis].url to share them across workers)")
        return None
    from .asyncio.redis import connect_redis, redacted_url  # noqa: PLC0415

    fleet = RedisTopics(
        connect_redis(config.redis_url, decode=False),
        config.audience,
        prefix=config.redis_prefix,
        server_key=server_key,
        history=config.redis_topic_history,
    )
    task = asyncio.create_task(fleet.run())
    try:
        async with asyncio.timeout(REDIS_SYNC_TIMEOUT):
            await fleet.wait_ready()
    except TimeoutError:
        task.cancel()
        raise ConnectionError(
            f"no topic subscription at {redacted_url(config.redis_url)} in "
            f"{REDIS_SYNC_TIMEOUT:g} s; not serving without one"
        ) from None
    install(fleet)
    return task


async def _serve(
    config: ServerConfig,
    verifier: Verifier,
    handler: Handler,
    *,
    worker: int | None = None,
    parent: int | None = None,
) -> None:
    from .asyncio import Reloader, serve  # noqa: PLC0415 - only this command needs websockets
    from .connection import usable_cpus  # noqa: PLC0415

    if config.issuer is not None:  # the issuer on the same port, under uvicorn (SPEC.md §13)
        from .asyncio.issuer_serve import serve_with_issuer  # noqa: PLC0415

        key = load_server_key(config.server_key) if config.server_key else None
        issuer_topics = await _install_topics(config, key)
        try:
            await serve_with_issuer(config, verifier, handler, redis=_redis_revocations)
        finally:
            if issuer_topics is not None:
                issuer_topics.cancel()
        return
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
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    loop.add_signal_handler(signal.SIGHUP, lambda: reloader.check(force=True))
    redis_task = await _redis_revocations(config, verifier) if config.redis_url else None
    topics_task = await _install_topics(config, server_key)
    whom = f"node {verifier.node_id.hex()}"
    if worker is not None:
        whom += f" (worker {worker}, pid {os.getpid()})"
    try:
        async with serve(
            handler,
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
        ) as server:
            host, port = server.sockets[0].getsockname()[:2]
            logger.info(
                "%s listening on ws://%s:%d audience=%r", whom, host, port, config.audience
            )
            print(f"listening on ws://{host}:{port}", flush=True)
            watcher = asyncio.create_task(reloader.run()) if config.reload_interval > 0 else None
            orphan = None
            if worker is not None:
                orphan = asyncio.create_task(_stop_if_orphaned(stop, parent))
            await stop.wait()
            if orphan is not None:
                orphan.cancel()
            logger.info("%s stopping: closing connections", whom)
            if watcher is not None:
                watcher.cancel()
    finally:
        if redis_task is not None:
            redis_task.cancel()
        if topics_task is not None:
            topics_task.cancel()
    logger.info("%s stopped", whom)


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

    Returns:
        0 if every worker started, and stopped cleanly when asked; else 1.
    """
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    workers: list[asyncio.subprocess.Process] = []

    def forward(signum: int) -> None:
        for proc in workers:
            if proc.returncode is None:
                proc.send_signal(signum)

    loop.add_signal_handler(signal.SIGHUP, forward, signal.SIGHUP)
    reserved = _reserve_port(config.host, config.port)
    copiers: list[asyncio.Task[None]] = []
    try:
        status = await _run_workers(
            args, config, reserved, workers=workers, copiers=copiers, stop=stop
        )
    finally:
        reserved.close()
        stopped = await _stop_workers(workers)
        for task in copiers:
            task.cancel()
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
) -> int:
    """Start the workers on ``reserved``'s port, wait until they listen, then
    until ``stop`` or a worker's end. Returns 1 if a worker failed."""
    port = reserved.getsockname()[1]
    for index in range(config.workers):
        argv = [
            *("-m", "signedws", "serve", "--config", args.config),
            *("--host", config.host, "--port", str(port), "--worker", str(index)),
            *("--parent", str(os.getpid())),
            *("--log-level", args.log_level, "--log-format", args.log_format),
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
    for index, proc in enumerate(workers):
        assert proc.stdout is not None  # noqa: S101 - piped above
        try:
            async with asyncio.timeout(WORKER_START_TIMEOUT):
                line = await proc.stdout.readline()
        except TimeoutError:
            line = b""
        if not line.startswith(b"listening on "):
            logger.error("worker %d did not start", index)
            return 1
        copiers.append(asyncio.create_task(_copy_lines(proc.stdout)))
    reserved.close()
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


async def _stop_workers(workers: list[asyncio.subprocess.Process]) -> int:
    """SIGTERM every worker still running; kill the ones that do not stop in
    time. Returns 0 if every worker stopped here exited with 0, else 1."""
    status = 0
    running = [proc for proc in workers if proc.returncode is None]
    for proc in running:
        proc.terminate()
    for proc in running:
        try:
            async with asyncio.timeout(WORKER_STOP_TIMEOUT):
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
    from .asyncio.issuer_serve import run_issuer  # noqa: PLC0415 - Starlette, PyJWT, uvicorn

    asyncio.run(run_issuer(load_config(args.config)))
    return 0


# -- inspect ------------------------------------------------------------------------------


def _when(seconds: float) -> str:
    try:
        moment = datetime.datetime.fromtimestamp(seconds, tz=datetime.UTC)
    except (OverflowError, OSError, ValueError):
        return "out of range"
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def _describe_credential(data: bytes) -> list[str]:
    try:
        claims = unverified_credential(data)
    except Rejected as exc:
        return [f"  credential  {len(data)} bytes, malformed: {exc.detail}"]
    if isinstance(claims, KeyReference):
        return [f"  credential  key reference iss={claims.iss!r} kid={claims.kid!r}"]
    assert isinstance(claims, Claims)  # noqa: S101 - the other variant
    kind = "token" if claims.type == 1 else "certificate"
    return [
        f"  credential  {kind}, {len(data)} bytes (unverified)",
        f"    iss={claims.iss!r} kid={claims.kid!r} cid={claims.cid!r} sub={claims.sub!r}",
        f"    scopes={sorted(claims.scopes)} aud={sorted(claims.aud)}",
        f"    iat={claims.iat} ({_when(claims.iat)}) exp={claims.exp} ({_when(claims.exp)})",
    ]


def _payload_line(payload: Payload, show: bool) -> str:
    if payload is None:
        return "  payload     nil (control frame)"
    kind = "str" if isinstance(payload, str) else "bin"
    size = len(payload.encode() if isinstance(payload, str) else payload)
    line = f"  payload     {kind}, {size} bytes"
    return f"{line}: {payload!r}" if show else line


def _read_frame(args: argparse.Namespace) -> bytes:
    if args.file:
        return Path(args.file).read_bytes()
    if args.hex is None:
        raise UsageError("give a frame as hex or with --file")
    text = "".join(args.hex.split())
    try:
        return bytes.fromhex(text)
    except ValueError:
        raise UsageError("the frame is not valid hex") from None


def _inspect_config(args: argparse.Namespace) -> None:
    """Fill in the keys of ``--config`` that the command line did not give."""
    if args.config is None:
        return
    config = load_config(args.config)
    args.keyring = args.keyring or str(config.keyring)
    args.audience = args.audience or config.audience
    args.fleet_key = args.fleet_key or str(config.fleet_key)
    if args.revocations is None and config.revocations is not None:
        args.revocations = str(config.revocations)
    if args.max_frame_size is None:
        args.max_frame_size = config.max_frame_size


def cmd_inspect(args: argparse.Namespace) -> int:
    """Decode a frame; with keys, verify it and say why it is rejected."""
    data = _read_frame(args)
    _inspect_config(args)
    try:
        frame = unverified_client_frame(data)
    except Rejected as client_error:
        return _inspect_other(data, client_error, args)
    scheme = "mac" if frame.kind == KIND_CLIENT_MAC else "ed25519"
    lines = [f"client frame, kind {frame.kind} ({scheme}), {len(data)} bytes (unverified)"]
    lines += _describe_credential(frame.credential)
    expires = unverified_expiry(frame.nonce)
    lines += [
        f"  nonce       node {frame.nonce[1:9].hex()}, expires {expires} ({_when(expires)})",
        f"  counter     {frame.counter}",
        f"  timestamp   {frame.timestamp_ms} ms ({_when(frame.timestamp_ms / 1000)})",
        f"  stream      {frame.stream.hex()} seq {frame.seq}",
        _payload_line(frame.payload, args.payload),
        f"  tag         {len(frame.tag)} bytes",
    ]
    print("\n".join(lines))
    if not args.keyring:
        return 0
    if not args.audience or not args.fleet_key:
        raise UsageError("to verify, give --keyring, --audience and --fleet-key")
    revocations = load_revocations(args.revocations) if args.revocations else RevocationSet()
    verifier = Verifier(
        load_keyring(args.keyring),
        audience=args.audience,
        fleet_key=load_fleet_key(args.fleet_key),
        revocations=revocations,
        max_frame_size=args.max_frame_size or 65536,
    )
    now = time.time() if args.now is None else args.now
    state = ConnectionState(frame.nonce)
    state.highest = args.after_counter
    try:
        verifier.nonce_key.check(frame.nonce, now=now)
        message = verifier.verify(data, state, now=now)
    except Rejected as exc:
        code = exc.code
        print(f"rejected: {code.id} ({code.number}, close {code.close_code}): {exc.detail}")
        return 1
    print(
        f"verified: sub={message.subject!r} iss={message.issuer!r} "
        f"scopes={sorted(message.scopes)} counter={message.counter} seq={message.seq}"
    )
    return 0


def _inspect_other(data: bytes, client_error: Rejected, args: argparse.Namespace) -> int:
    try:
        hello = decode_hello(data)
    except Rejected:
        pass
    else:
        expires = unverified_expiry(hello.nonce)
        print(
            f"hello, {len(data)} bytes\n  audience    {hello.audience!r}\n"
            f"  nonce       node {hello.nonce[1:9].hex()}, expires {expires} ({_when(expires)})\n"
            f"  time        {hello.server_time_ms} ms\n  max_frame   {hello.max_frame_size}\n"
            f"  window      {hello.window}"
        )
        if not args.fleet_key:
            return 0
        return _check_nonce(hello.nonce, args)
    try:
        server = parse_server_frame(data)
    except Rejected:
        pass
    else:
        print(
            f"server frame, kind {server.kind}, {len(data)} bytes (unverified)\n"
            f"  key_id      {server.key_id!r}\n  counter     {server.counter}\n"
            f"  ack         {server.ack}\n  timestamp   {server.timestamp_ms} ms\n"
            f"{_payload_line(server.payload, False)}\n  tag         {len(server.tag)} bytes"
        )
        return 0
    code = client_error.code
    print(f"not a signedws frame: {code.id} ({code.number}): {client_error.detail}")
    return 1


# -- revoke -------------------------------------------------------------------------------


def _revoke_in_file(path: Path, change: Callable[[RevocationSet], RevocationSet]) -> None:
    """Apply ``change`` to the revocation file ``path`` (created if missing):
    under a lock on its directory (so concurrent revokes do not lose each
    other's entries), written to a temporary file and renamed over it (so a
    server never reads half a file)."""
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        fcntl.flock(directory, fcntl.LOCK_EX)
        current = load_revocations(path) if path.exists() else RevocationSet()
        text = json.dumps(change(current).to_dict(), indent=2) + "\n"
        mode = stat.S_IMODE(path.stat().st_mode) if path.exists() else 0o644
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        with os.fdopen(fd, "w") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, path)
        os.fsync(directory)
    finally:
        os.close(directory)  # releases the lock


async def _revoke_in_redis(url: str, prefix: str, args: argparse.Namespace, before: int) -> str:
    """Revoke in the Redis store at ``url``; where it went, for the user."""
    try:
        from redis.exceptions import RedisError  # noqa: PLC0415

        from .asyncio.redis import (  # noqa: PLC0415 - only --redis needs redis
            RedisRevocationStore,
            connect_redis,
            redacted_url,
        )
    except ImportError as exc:
        raise UsageError(
            f"--redis needs the redis package (pip install 'signedws[redis]'): {exc}"
        ) from None
    client = connect_redis(url)
    try:
        store = RedisRevocationStore(client, prefix=prefix)
        if args.cid is not None:
            version = await store.revoke_credential(args.issuer, args.cid)
        else:
            version = await store.revoke_subject(args.issuer, args.subject, before=before)
    except RedisError as exc:
        raise ConnectionError(f"Redis at {redacted_url(url)}: {exc}") from None
    finally:
        with contextlib.suppress(RedisError, OSError):
            await client.aclose()
    return f"Redis {redacted_url(url)} (version {version})"


def cmd_revoke(args: argparse.Namespace) -> int:
    """Revoke a credential id, or a subject's credentials issued before a
    time, in a revocation file or in Redis (SPEC.md §4.6)."""
    if args.before is not None and args.subject is None:
        raise UsageError("--before goes with --subject")
    # Default: everything issued up to and including this second.
    before = int(time.time()) + 1 if args.before is None else args.before
    if args.cid is not None:
        what = f"credential iss={args.issuer!r} cid={args.cid!r}"
        RevocationSet.from_dict({"credentials": [{"iss": args.issuer, "cid": args.cid}]})
    else:
        what = f"subject iss={args.issuer!r} sub={args.subject!r} before={When(before)}"
        RevocationSet.from_dict(
            {"subjects": [{"iss": args.issuer, "sub": args.subject, "before": before}]}
        )
    path, url, prefix = args.file, args.redis, args.prefix
    if path is None and url is None and args.config is None:
        raise UsageError("give --file, --redis or --config")
    if path is not None and url is not None:
        raise UsageError("--file and --redis go to different stores: give one")
    if args.config is not None:
        config = load_config(args.config)
        if path is None and url is None:
            path, url = config.revocations, config.redis_url
            if path is None and url is None:
                raise UsageError(f"{args.config} names no revocation file and no [redis].url")
        else:
            _warn_if_not_watched(args.config, config, path, url)
        prefix = prefix or config.redis_prefix
    elif path is not None and not Path(path).exists():
        _warn(
            f"{path} did not exist: no running server watches it (a server refuses to "
            "start without its [keys].revocations file). Check that this is the file "
            "your serve configuration names, or use --config."
        )
    if url is not None:
        where = asyncio.run(_revoke_in_redis(url, prefix or "signedws", args, before))
        print(f"revoked {what} in {where}")
        return 0
    assert path is not None  # noqa: S101 - checked above
    if args.cid is not None:
        _revoke_in_file(Path(path), lambda s: s.revoke_credential(args.issuer, args.cid))
    else:
        _revoke_in_file(
            Path(path), lambda s: s.revoke_subject(args.issuer, args.subject, before=before)
        )
    print(f"revoked {what} in {path}")
    return 0


def _warn(message: str) -> None:
    print(f"signedws: warning: {message}", file=sys.stderr)


def _warn_if_not_watched(
    config_path: str, config: ServerConfig, path: str | None, url: str | None
) -> None:
    """Warn when ``--file`` or ``--redis`` is not the revocation source that
    the server configured by ``config_path`` follows: that server would keep
    accepting the credential."""
    if path is not None:
        watched = config.revocations
        if watched is None or Path(path).resolve() != watched.resolve():
            source = f"the file {watched.resolve()}" if watched else "no revocation file"
            if config.redis_url is not None:
                source = "Redis ([redis].url)"
            _warn(
                f"{path} is not the file that a server run with {config_path} watches "
                f"(it follows {source}): that server keeps accepting what you revoked"
            )
    elif url is not None and url != config.redis_url:
        from .redaction import redacted_url  # noqa: PLC0415

        _warn(
            f"{redacted_url(url)} is not the Redis that a server run with {config_path} "
            "follows: that server keeps accepting what you revoked"
        )


def _check_nonce(nonce: bytes, args: argparse.Namespace) -> int:
    """Check a hello's nonce as any server of the fleet would (SPEC.md §5.3)."""
    if not args.audience:
        raise UsageError("to check the nonce, give --audience and --fleet-key (or --config)")
    nonce_key = NonceKey(load_fleet_key(args.fleet_key), args.audience)
    now = time.time() if args.now is None else args.now
    try:
        info = nonce_key.check(nonce, now=now)
    except Rejected as exc:
        code = exc.code
        print(f"nonce rejected: {code.id} ({code.number}): {exc.detail}")
        return 1
    print(
        f"nonce verified: minted by this fleet for {args.audience!r} by node {info.node_id.hex()}"
    )
    return 0


# -- demo ---------------------------------------------------------------------------------


def cmd_demo(args: argparse.Namespace) -> int:
    """Run the attack gallery against a real local server."""
    from . import demo  # noqa: PLC0415 - imports websockets

    return demo.main(as_json=args.json)


# -- the parser ---------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    """The ``signedws`` argument parser."""
    parser = argparse.ArgumentParser(
        prog="signedws",
        description="Per-frame authenticated WebSockets: keys, credentials, a server, "
        "a frame inspector and a demo.",
    )
    parser.add_argument("--version", action="version", version=f"signedws {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    keygen = commands.add_parser(
        "keygen",
        help="generate an Ed25519 or HMAC key",
        description="Generate a key and write it as a JWK file (mode 0600, never "
        "overwritten). For Ed25519 the public JWK is printed.",
    )
    keygen.add_argument("type", choices=["ed25519", "hmac"], help="key type")
    keygen.add_argument("--kid", required=True, help="key id")
    keygen.add_argument("-o", "--out", required=True, help="private/secret JWK file to create")
    keygen.add_argument("--public-out", help="also write the public JWK here (ed25519)")
    keygen.add_argument(
        "--keyring",
        help="also trust the key in this keyring file (created if missing, mode 0600): "
        "the secret for hmac, the public key for ed25519",
    )
    keygen.add_argument("--issuer", help="the issuer name the key belongs to (with --keyring)")
    keygen.set_defaults(run=cmd_keygen)

    issue = commands.add_parser(
        "issue",
        help="mint a mac token or an ed25519 certificate",
        description="Mint a credential under an issuer key. 'mac' prints the token and "
        "its frame key (a secret: send it to the client confidentially); 'ed25519' "
        "prints a certificate for --public-key. Byte strings are base64url.",
    )
    issue.add_argument("scheme", choices=["mac", "ed25519"], help="credential scheme")
    issue.add_argument(
        "--key", required=True, help="issuer key JWK (oct for mac, OKP for ed25519)"
    )
    issue.add_argument("--issuer", required=True, help="issuer name (iss)")
    issue.add_argument("--subject", required=True, help="principal (sub)")
    issue.add_argument("--public-key", help="client's Ed25519 JWK (ed25519 only)")
    issue.add_argument("--scope", action="append", default=[], help="a scope (repeatable)")
    issue.add_argument(
        "--audience", action="append", default=[], help="an audience (repeatable; none: any)"
    )
    issue.add_argument("--lifetime", type=int, default=900, help="seconds (default 900)")
    issue.add_argument("--cid", help="credential id (default random)")
    issue.add_argument("--now", type=float, help=argparse.SUPPRESS)
    issue.add_argument("--out", help="write the credential JSON here (mode 0600) instead")
    issue.set_defaults(run=cmd_issue)

    serve = commands.add_parser(
        "serve",
        help="run a server from a TOML config",
        description="Run a signedws server from a TOML configuration (see README for "
        "every key). Logs one line per rejection; reloads the keyring and revocation "
        "files when they change or on SIGHUP, or follows revocations in Redis "
        "([redis].url); stops cleanly on SIGINT/SIGTERM. With --workers N, N processes "
        "share the port (SO_REUSEPORT), each with its own node id; the parent passes "
        "SIGHUP and SIGTERM on, and stops them all if one dies.",
    )
    serve.add_argument("--config", required=True, help="TOML configuration file")
    serve.add_argument("--host", help="override [server].host")
    serve.add_argument("--port", type=int, help="override [server].port (0: any free port)")
    serve.add_argument(
        "--workers",
        type=int,
        help="override [server].workers: processes sharing the port with SO_REUSEPORT, "
        "each with its own node id",
    )
    serve.add_argument("--node-id", help="override [server].node_id (16 hex digits)")
    serve.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    serve.add_argument("--parent", type=int, help=argparse.SUPPRESS)
    serve.add_argument(
        "--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"]
    )
    serve.add_argument(
        "--log-format",
        default="text",
        choices=LOG_FORMATS,
        help="text (default) or json: one JSON object per line; times in ISO 8601 (UTC)",
    )
    serve.set_defaults(run=cmd_serve)

    issuer = commands.add_parser(
        "issuer",
        help="run the credential issuer alone from a TOML config's [issuer]",
        description="Run the credential issuer service (SPEC.md §13) alone on "
        "[issuer].host and [issuer].port. 'signedws serve' runs it on the server's own "
        "port when the config has an [issuer] table.",
    )
    issuer.add_argument("--config", required=True, help="TOML configuration file")
    issuer.add_argument(
        "--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"]
    )
    issuer.add_argument("--log-format", default="text", choices=LOG_FORMATS)
    issuer.set_defaults(run=cmd_issuer)

    inspect = commands.add_parser(
        "inspect",
        help="decode a frame, and verify it given keys",
        description="Decode a client frame, server frame or hello and show its fields. "
        "With --keyring, --audience and --fleet-key, verify a client frame as a "
        "server would on a fresh connection with that nonce, and say why it is rejected. "
        "With --audience and --fleet-key, check a hello's nonce as any server of the "
        "fleet would.",
    )
    inspect.add_argument("hex", nargs="?", help="the frame as hex")
    inspect.add_argument("--file", help="read the frame's raw bytes from a file")
    inspect.add_argument("--payload", action="store_true", help="show the payload too")
    inspect.add_argument(
        "--config",
        help="take --keyring, --audience, --fleet-key and --revocations from this serve "
        "configuration (revocations kept in Redis are not consulted)",
    )
    inspect.add_argument("--keyring", help="keyring JSON, to verify")
    inspect.add_argument("--audience", help="the server's audience, to verify")
    inspect.add_argument("--fleet-key", help="fleet key JWK, to verify")
    inspect.add_argument("--revocations", help="revocation JSON, to verify")
    inspect.add_argument("--now", type=float, help="verify at this time (seconds)")
    inspect.add_argument(
        "--after-counter", type=int, default=0, help="highest counter already accepted"
    )
    inspect.add_argument(
        "--max-frame-size", type=int, help="bytes (default: the config's, or 65536)"
    )
    inspect.set_defaults(run=cmd_inspect)

    revoke = commands.add_parser(
        "revoke",
        help="revoke a credential, or a subject's credentials, for every server",
        description="Revoke a credential id (--cid), or every credential of a subject "
        "issued before a time (--subject, --before), in a revocation file that the "
        "servers of a host reload (--file), in the Redis store the servers of a fleet "
        "follow (--redis), or in whichever a serve configuration names (--config). "
        "Servers refuse a revoked credential at its next frame.",
    )
    revoke.add_argument("--issuer", required=True, help="the credential's issuer (iss)")
    what = revoke.add_mutually_exclusive_group(required=True)
    what.add_argument("--cid", help="revoke this credential id")
    what.add_argument("--subject", help="revoke this subject's credentials (sub)")
    revoke.add_argument(
        "--before",
        type=int,
        help="with --subject: revoke credentials issued before this time, seconds "
        "(default: now, this second included)",
    )
    revoke.add_argument("--file", help="a revocation JSON file (created if missing)")
    revoke.add_argument("--redis", metavar="URL", help="a Redis URL: redis://host:port/db")
    revoke.add_argument(
        "--config",
        help="the revocation source of this serve configuration; with --file or --redis, "
        "warn if that is not the source this configuration's servers follow",
    )
    revoke.add_argument(
        "--prefix", help="Redis key and channel prefix (default: signedws, or the config's)"
    )
    revoke.set_defaults(run=cmd_revoke)

    demo = commands.add_parser(
        "demo",
        help="run honest clients and an attack gallery against a local server",
        description="Start a server on 127.0.0.1 with throwaway keys, run honest mac and "
        "ed25519 clients, then play an attack gallery and print attack, result and code. "
        "Exits 0 when every attack was rejected and every honest message delivered.",
    )
    demo.add_argument("--json", action="store_true", help="print one JSON document instead")
    demo.set_defaults(run=cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``signedws`` command line; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    run: Callable[[argparse.Namespace], int] = args.run
    try:
        return run(args)
    except FileExistsError as exc:
        print(f"signedws: error: {exc.filename} exists; not overwriting a key", file=sys.stderr)
    except (SignedWSError, OSError) as exc:
        print(f"signedws: error: {exc}", file=sys.stderr)
    return 2
