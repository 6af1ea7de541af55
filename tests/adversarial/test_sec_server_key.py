"""Issue 13, finding 7: a server that trusts Ed25519 clients but has no
server key (SPEC.md §7.1).

On the base of issue 13 such a server accepted an ed25519 client's frame,
then the handler's first ``send`` raised and the connection closed with 1011,
a code SPEC.md §9 does not have; the client reconnected, resent and waited
forever. Now the library refuses an ed25519 client's first frame with
``scheme_mismatch`` (close 4400), unverified, on every adapter, and
``signedws serve`` refuses to start with such a configuration.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from helpers import (
    AUDIENCE,
    CLIENT_KEY,
    ED_ISSUER,
    ED_ISSUER_KEY,
    ED_KID,
    FLEET_KEY,
    HMAC_KID,
    HMAC_SECRET,
    ISSUER,
)
from sec_support import KINDS, ROOT, serving
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed

from signedws import Ed25519Credential, Signer, decode_hello, key_to_jwk, save_key


@pytest.mark.parametrize("kind", KINDS)
def test_ed25519_client_of_a_keyless_server_is_refused_at_its_first_frame(
    kind: str, run: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """The first frame gets close 4400 and one scheme_mismatch log line; the
    handler never runs a message, and nothing closes with 1011."""
    caplog.set_level(logging.WARNING, logger="signedws")
    handled: list[object] = []

    async def handler(connection: Any) -> None:
        async for message in connection:
            handled.append(message.payload)
            await connection.send("reply")

    async def main() -> int | None:
        cert = ED_ISSUER.issue_certificate(
            CLIENT_KEY.public_key(), subject="dave", now=time.time(), lifetime=600
        )
        credential = Ed25519Credential(cert, CLIENT_KEY)
        async with (
            serving(kind, handler, server_key=None) as (uri, _),
            ws_connect(uri, subprotocols=["signedws.v1"]) as ws,  # type: ignore[list-item]
        ):
            hello = await ws.recv()
            assert isinstance(hello, bytes)
            signer = Signer(credential, decode_hello(hello), now=time.time())
            await ws.send(signer.sign("hello", now=time.time()))
            with contextlib.suppress(ConnectionClosed):
                async with asyncio.timeout(10):
                    while True:
                        await ws.recv()
            return ws.close_code

    assert run(main()) == 4400
    assert handled == []
    codes = [getattr(r, "signedws_code", None) for r in caplog.records]
    assert [c for c in codes if c] == ["scheme_mismatch"]


def test_serve_refuses_to_start_without_a_server_key(tmp_path: Path) -> None:
    """``signedws serve`` with a keyring holding an Ed25519 issuer key and no
    ``[keys] server_key`` exits at once with status 2 and says what to set."""
    save_key(tmp_path / "fleet.jwk", FLEET_KEY, "fleet")
    keyring = {
        "issuers": {
            ISSUER: [
                key_to_jwk(HMAC_SECRET, HMAC_KID),
                key_to_jwk(ED_ISSUER_KEY.public_key(), ED_KID),
            ]
        }
    }
    (tmp_path / "keyring.json").write_text(json.dumps(keyring))
    (tmp_path / "serve.toml").write_text(
        '[server]\nhost = "127.0.0.1"\nport = 0\n'
        f"audience = {json.dumps(AUDIENCE)}\norigins = []\nallow_no_origin = true\n"
        '[keys]\nfleet_key = "fleet.jwk"\nkeyring = "keyring.json"\nreload_interval = 0\n'
    )
    proc = subprocess.Popen(  # noqa: S603 - our own CLI
        [sys.executable, "-m", "signedws", "serve", "--config", str(tmp_path / "serve.toml")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        out, err = proc.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        pytest.fail(f"serve started without a server key: {out!r}")
    assert proc.returncode == 2
    assert "server_key" in err
    assert "listening" not in out
