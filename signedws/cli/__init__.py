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
import sys
from collections.abc import Callable, Sequence

from .. import __version__
from ..config import TRANSPORTS
from ..errors import SignedWSError
from ..logformat import FORMATS as LOG_FORMATS
from .inspect import cmd_inspect
from .keys import cmd_issue, cmd_keygen
from .revoke import cmd_revoke
from .serve import cmd_issuer, cmd_serve

__all__ = ["build_parser", "main"]


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
    serve.add_argument(
        "--transport",
        choices=TRANSPORTS,
        help="override [server].transport: websockets (default) or picows "
        "(pip install signedws[picows])",
    )
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
