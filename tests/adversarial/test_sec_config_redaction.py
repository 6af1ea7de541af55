"""Issue 13, finding 6: a Redis password given as ``?password=`` (redis-py
authenticates with it) leaked into the WARNING log, the reprs of the watcher
and of `ServerConfig`, the "redacted" URL, ``serve``'s startup error and
``revoke --redis``'s output. One function (`signedws.redaction.redacted_url`)
now masks the userinfo's password and every secret-carrying query parameter,
and every path that shows a Redis URL goes through it.

Over real parts: a ``redis-server`` started with ``--requirepass`` (the
watcher really authenticates with the query parameter), the CLI in a
subprocess, and a closed loopback port for the outage paths.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

import pytest
from helpers import AUDIENCE, FLEET_KEY, NOW, NOW_MS, make_keyring, token
from sec_client_support import Recorder, mac_credential, signed_server
from sec_config_support import (
    RedisProcess,
    closed_port,
    redis_server,
    serve_config,
    signedws_cli,
)

from signedws import Verifier
from signedws.asyncio import connect
from signedws.asyncio.redis import RedisRevocations, redacted_url
from signedws.config import load_config
from signedws.envelope import Hello, unverified_client_frame
from signedws.signer import Signer

#: Random per run, so no fixed string can make a check pass by accident.
SECRET: Final = "pw-" + secrets.token_hex(12)


@pytest.mark.parametrize(
    "url",
    [
        f"redis://127.0.0.1:6379/0?password={SECRET}",
        f"redis://:{SECRET}@127.0.0.1:6379/0",
        f"redis://user:{SECRET}@127.0.0.1/0",
        f"redis://{SECRET}@127.0.0.1/0",
        f"redis://127.0.0.1/0?pass%77ord={SECRET}",
        f"rediss://127.0.0.1/0?db=2&ssl_password={SECRET}",
        f"redis://127.0.0.1/0?db=0&password={SECRET}#{SECRET}",
        f"redis://user:{SECRET}@127.0.0.1/0?password={SECRET}",
        f"redis://[::1/0?password={SECRET}",  # unparseable: not shown at all
    ],
)
def test_redacted_url_masks_every_secret(url: str) -> None:
    shown = redacted_url(url)
    assert SECRET not in shown
    assert "***" in shown or shown == "<unparseable URL>"


def test_redacted_url_keeps_what_is_not_secret() -> None:
    url = "redis://127.0.0.1:6379/3?db=3&socket_timeout=2"
    assert redacted_url(url) == url
    assert redacted_url(f"redis://alice:{SECRET}@h:1/0") == "redis://alice:***@h:1/0"


def _shown(records: list[logging.LogRecord]) -> str:
    return "\n".join(record.getMessage() for record in records)


def test_watcher_never_shows_a_query_password(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, run: Callable[..., Any]
) -> None:
    """The watcher authenticates to a password-protected Redis with
    ``?password=``; neither its log (synchronised, lost, back) nor its repr
    shows the password."""
    caplog.set_level(logging.DEBUG, logger="signedws")
    verifier = Verifier(make_keyring(), audience=AUDIENCE, fleet_key=FLEET_KEY)

    async def main(redis: RedisProcess) -> str:
        url = f"redis://127.0.0.1:{redis.port}/0?password={SECRET}"
        watcher = RedisRevocations(verifier, url, check_interval=0.1, timeout=1.0)
        task = asyncio.create_task(watcher.run())
        try:
            async with asyncio.timeout(15):
                await watcher.wait_synced()  # authenticated with the query parameter
            await asyncio.to_thread(redis.stop)  # an outage: the WARNING path
            async with asyncio.timeout(15):
                while not any(r.levelno == logging.WARNING for r in caplog.records):
                    await asyncio.sleep(0.05)
            return repr(watcher)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    with redis_server(tmp_path, password=SECRET) as redis:
        shown = run(main(redis))
    logged = _shown(caplog.records)
    assert "synchronised to version 0" in logged
    assert "redis revocations: lost" in logged
    assert "password=***" in shown, shown
    assert SECRET not in shown
    assert SECRET not in logged


def test_watcher_outage_warning_never_shows_a_query_password(
    caplog: pytest.LogCaptureFixture, run: Callable[..., Any]
) -> None:
    """Redis unreachable (a closed loopback port): the WARNING names the URL
    with the password masked."""
    caplog.set_level(logging.DEBUG, logger="signedws")
    verifier = Verifier(make_keyring(), audience=AUDIENCE, fleet_key=FLEET_KEY)
    url = f"redis://:{SECRET}@127.0.0.1:{closed_port()}/0?password={SECRET}"

    async def main() -> None:
        watcher = RedisRevocations(verifier, url, timeout=1.0)
        task = asyncio.create_task(watcher.run())
        try:
            async with asyncio.timeout(15):
                while not any(r.levelno == logging.WARNING for r in caplog.records):
                    await asyncio.sleep(0.05)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    run(main())
    warning = _shown([r for r in caplog.records if r.levelno == logging.WARNING])
    assert "redis revocations: lost" in warning
    assert "***" in warning
    assert SECRET not in _shown(caplog.records)


def test_server_config_repr_never_shows_the_redis_url(tmp_path: Path) -> None:
    config = load_config(serve_config(tmp_path, f"redis://127.0.0.1:1/0?password={SECRET}"))
    assert config.redis_url is not None
    assert SECRET in config.redis_url  # the configuration itself keeps it, to connect
    for shown in (repr(config), str(config), f"{config}"):
        assert SECRET not in shown
        assert "password=***" in shown


def test_revoke_cli_output_never_shows_the_password(tmp_path: Path) -> None:
    """``signedws revoke --redis`` against a password-protected Redis: the
    revocation lands (the query parameter authenticated) and the output
    names the store with the password masked; against an unreachable Redis
    the error does not show it either."""
    with redis_server(tmp_path, password=SECRET) as redis:
        url = f"redis://127.0.0.1:{redis.port}/0?password={SECRET}"
        done = signedws_cli("revoke", "--redis", url, "--issuer", "iss", "--cid", "c1")
        assert done.returncode == 0, done.stderr
        assert "version 1" in done.stdout
        assert "password=***" in done.stdout
        assert SECRET not in done.stdout + done.stderr
    url = f"redis://127.0.0.1:{closed_port()}/0?password={SECRET}"
    failed = signedws_cli("revoke", "--redis", url, "--issuer", "iss", "--cid", "c1")
    assert failed.returncode != 0
    assert "password=***" in failed.stderr
    assert SECRET not in failed.stdout + failed.stderr


def test_serve_startup_error_never_shows_the_password(tmp_path: Path) -> None:
    """``signedws serve`` whose Redis is unreachable refuses to start (after
    its 10 s wait for a first revocation set); neither the error nor the log
    shows the password."""
    config = serve_config(tmp_path, f"redis://127.0.0.1:{closed_port()}/0?password={SECRET}")
    done = signedws_cli("serve", "--config", str(config), timeout=60)
    assert done.returncode != 0
    assert "no revocation set from Redis" in done.stderr, done.stderr[-2000:]
    assert "password=***" in done.stderr
    assert SECRET not in done.stdout + done.stderr


def test_a_decoded_client_frame_repr_never_shows_the_token() -> None:
    """Sibling: `unverified_client_frame`'s result (for tools, and in any
    traceback that shows it) does not carry the client's token in its repr."""
    credential = token()
    signer = Signer(credential, Hello(bytes(64), AUDIENCE, NOW_MS, 65536, 0), now=NOW)
    frame = unverified_client_frame(signer.sign(b"x", now=NOW))
    assert frame.credential == credential.token
    shown = repr(frame)
    assert repr(credential.token) not in shown
    assert "credential=" not in shown


def test_the_python_client_never_shows_a_secret_in_its_uri(
    caplog: pytest.LogCaptureFixture, run: Callable[..., Any]
) -> None:
    """Sibling: signedws needs nothing secret in the URI (SPEC.md §5.1), but
    one given anyway (userinfo, ``?token=``) is masked in the client's repr
    and in its connect and reconnect log lines."""
    caplog.set_level(logging.DEBUG, logger="signedws.client")
    recorder = Recorder()

    async def main() -> str:
        async with signed_server(recorder) as uri:
            port = uri.rsplit(":", 1)[1]
            secret_uri = f"ws://user:{SECRET}@127.0.0.1:{port}/ws?token={SECRET}"
            client = await connect(secret_uri, mac_credential(), audience=AUDIENCE, keepalive=None)
            try:
                await client.send("one")
                await client.drain()
                await recorder.live[0].close(1012)  # the client reconnects and logs it
                await client.send("two")
                await client.drain()
                return repr(client)
            finally:
                await client.close()

    shown = run(main())
    logged = _shown(caplog.records)
    assert "reconnecting to ws://user:***@127.0.0.1" in logged, logged
    assert "token=***" in shown
    assert SECRET not in shown + logged
    assert recorder.payloads == ["one", "two"]
