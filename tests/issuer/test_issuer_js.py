"""The JavaScript client through the issuer service, in Node: the provider's
token -> ``connect(url, { issuer, loginToken })`` -> signed frames on a real
signedws server -> refresh through the issuer on the same connection.

Skipped where Node, ``clients/js/node_modules`` or the test provider is missing."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from aio_support import AUDIENCE, Recorder, running
from issuer_support import OpenIDProvider, issuing, missing_tool

HERE = Path(__file__).resolve().parent
JS = HERE.parents[1] / "clients" / "js"


@pytest.mark.parametrize("scheme", ["mac", "ed25519"])
def test_js_client_via_issuer(op: OpenIDProvider, run: Any, scheme: str) -> None:
    if not (JS / "node_modules" / "@msgpack" / "msgpack").is_dir():
        missing_tool("clients/js/node_modules is missing: run `npm ci --prefix clients/js`")
    node = shutil.which("node")
    assert node is not None  # the op fixture skipped otherwise
    token = op.token()

    async def main() -> dict[str, Any]:
        async with issuing(op) as iss, running(Recorder(echo=True)) as srv:
            env = {
                **os.environ,
                "ISSUER_URL": iss.url,
                "WS_URL": srv.uri,
                "AUDIENCE": AUDIENCE,
                "LOGIN_TOKEN": token,
                "SCHEME": scheme,
            }
            process = await asyncio.create_subprocess_exec(
                node,
                "--experimental-websocket",
                "js_issuer_client.mjs",
                cwd=HERE,
                env=env,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            out, err = await asyncio.wait_for(process.communicate(), 30)
            assert process.returncode == 0, err.decode()[-2000:]
            result = json.loads(out.decode().strip().splitlines()[-1])
            assert len(srv.recorder.connections) == 1  # the refresh did not reconnect
            result["server_cids"] = sorted({m.credential_id for m in srv.recorder.messages})
            result["subjects"] = sorted({m.subject for m in srv.recorder.messages})
            return result

    result = run(main(), timeout=60)
    assert result["echoes"] == ["one", "after refresh"]
    assert result["refreshed"] >= 1
    assert result["logins"] >= 2 + (scheme == "ed25519") * 2  # challenge + credential each
    first, second = result["cids"]
    assert first != second
    assert {first, second} <= set(result["server_cids"])
    assert result["subjects"] == ["app"]
    if scheme == "ed25519":
        assert result["keyExtractable"] is False
