"""``signedws inspect``: decode a frame or hello, and verify it given keys."""

from __future__ import annotations

import argparse
import datetime
import time
from pathlib import Path

from ..config import load_config, load_fleet_key, load_keyring, load_revocations
from ..credential import Claims, KeyReference, unverified_credential
from ..envelope import (
    KIND_CLIENT_MAC,
    Payload,
    decode_hello,
    parse_server_frame,
    unverified_client_frame,
)
from ..errors import Rejected, UsageError
from ..nonce import NonceKey, unverified_expiry
from ..revocation import RevocationSet
from ..verifier import ConnectionState, Verifier

__all__ = ["cmd_inspect"]


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
