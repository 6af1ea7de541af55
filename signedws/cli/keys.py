"""``signedws keygen`` and ``signedws issue``: keys and credentials.

Secrets go to files created with mode 0600; the only secret ever printed is a
`mac` frame key, by ``signedws issue mac`` without ``--out``, because that is
what it was asked for.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import time
from pathlib import Path
from typing import Any

from ..credential import Issuer
from ..errors import UsageError
from ..jsondoc import parse_json
from ..keyring import Keyring
from ..keys import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
    HMACKey,
    b64url_encode,
    key_to_jwk,
    load_key,
    save_key,
)

__all__ = ["cmd_issue", "cmd_keygen"]


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
