"""The ``signedws`` command line: keygen, issue, serve, inspect, demo.

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
import importlib
import json
import logging
import os
import signal
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from . import __version__
from .config import (
    ServerConfig,
    build_verifier,
    load_config,
    load_fleet_key,
    load_keyring,
    load_revocations,
    load_server_key,
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
from .nonce import unverified_expiry
from .revocation import RevocationSet
from .verifier import ConnectionState, Verifier

if TYPE_CHECKING:
    from .asyncio import Handler, ServerConnection

__all__ = ["build_parser", "main"]

logger = logging.getLogger("signedws.cli")

_LOG_FORMAT: Final = "%(asctime)s %(levelname)s %(name)s: %(message)s"


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
            document = dict(json.loads(path.read_text()))
        except ValueError:
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


def resolve_handler(spec: str) -> Handler:
    """``"echo"`` or ``"package.module:function"``.

    Raises:
        UsageError: if the module or function cannot be found.
    """
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


async def _serve(config: ServerConfig, verifier: Verifier, handler: Handler) -> None:
    from .asyncio import Reloader, serve  # noqa: PLC0415 - only this command needs websockets

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
        ack_delay=config.ack_delay,
        verify_workers=config.verify_workers,
    ) as server:
        host, port = server.sockets[0].getsockname()[:2]
        logger.info("listening on ws://%s:%d audience=%r", host, port, config.audience)
        print(f"listening on ws://{host}:{port}", flush=True)
        watcher = asyncio.create_task(reloader.run()) if config.reload_interval > 0 else None
        await stop.wait()
        logger.info("stopping: closing connections")
        if watcher is not None:
            watcher.cancel()
    logger.info("stopped")


def cmd_serve(args: argparse.Namespace) -> int:
    """Run a server from a TOML configuration until SIGINT or SIGTERM."""
    logging.basicConfig(level=args.log_level, format=_LOG_FORMAT, stream=sys.stderr)
    logging.getLogger("websockets").setLevel(logging.WARNING)
    config = load_config(args.config)
    overrides = {}
    if args.host is not None:
        overrides["host"] = args.host
    if args.port is not None:
        overrides["port"] = args.port
    if overrides:
        config = ServerConfig(**{**_fields(config), **overrides})
    verifier = build_verifier(config)
    handler = resolve_handler(config.handler)
    asyncio.run(_serve(config, verifier, handler))
    return 0


def _fields(config: ServerConfig) -> dict[str, Any]:
    return {name: getattr(config, name) for name in ServerConfig.__slots__}


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


def cmd_inspect(args: argparse.Namespace) -> int:
    """Decode a frame; with keys, verify it and say why it is rejected."""
    data = _read_frame(args)
    try:
        frame = unverified_client_frame(data)
    except Rejected as client_error:
        return _inspect_other(data, client_error)
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
        max_frame_size=args.max_frame_size,
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


def _inspect_other(data: bytes, client_error: Rejected) -> int:
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
        return 0
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
        "files when they change or on SIGHUP; stops cleanly on SIGINT/SIGTERM.",
    )
    serve.add_argument("--config", required=True, help="TOML configuration file")
    serve.add_argument("--host", help="override [server].host")
    serve.add_argument("--port", type=int, help="override [server].port (0: any free port)")
    serve.add_argument(
        "--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"]
    )
    serve.set_defaults(run=cmd_serve)

    inspect = commands.add_parser(
        "inspect",
        help="decode a frame, and verify it given keys",
        description="Decode a client frame, server frame or hello and show its fields. "
        "With --keyring, --audience and --fleet-key, verify a client frame as a "
        "server would on a fresh connection with that nonce, and say why it is rejected.",
    )
    inspect.add_argument("hex", nargs="?", help="the frame as hex")
    inspect.add_argument("--file", help="read the frame's raw bytes from a file")
    inspect.add_argument("--payload", action="store_true", help="show the payload too")
    inspect.add_argument("--keyring", help="keyring JSON, to verify")
    inspect.add_argument("--audience", help="the server's audience, to verify")
    inspect.add_argument("--fleet-key", help="fleet key JWK, to verify")
    inspect.add_argument("--revocations", help="revocation JSON, to verify")
    inspect.add_argument("--now", type=float, help="verify at this time (seconds)")
    inspect.add_argument(
        "--after-counter", type=int, default=0, help="highest counter already accepted"
    )
    inspect.add_argument("--max-frame-size", type=int, default=65536, help="bytes")
    inspect.set_defaults(run=cmd_inspect)

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
