"""``signedws revoke``: revoke a credential or a subject, in a file or in Redis."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fcntl
import json
import os
import stat
import sys
import time
from collections.abc import Callable
from pathlib import Path

from ..config import ServerConfig, load_config, load_revocations
from ..errors import UsageError
from ..logformat import When
from ..revocation import RevocationSet

__all__ = ["cmd_revoke"]


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

        from ..asyncio.redis import (  # noqa: PLC0415 - only --redis needs redis
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
        from ..redaction import redacted_url  # noqa: PLC0415

        _warn(
            f"{redacted_url(url)} is not the Redis that a server run with {config_path} "
            "follows: that server keeps accepting what you revoked"
        )
