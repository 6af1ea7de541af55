"""Headless Chromium, the demo page and the real issuer service: the page logs
in with the test OpenID Provider's access token, gets its credential from the
issuer (cross-origin, CORS), connects, sends signed frames the Python server
verifies, and refreshes through the issuer mid-connection (mac, and ed25519
with a non-extractable key pair in IndexedDB).

Skipped, with the reason, without Chromium (/usr/bin/chromium or
$SIGNEDWS_CHROMIUM), ``clients/js/node_modules`` or the test provider."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

from issuer_support import API, OpenIDProvider, missing_tool

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
JS = ROOT / "clients" / "js"
CHROMIUM = Path(os.environ.get("SIGNEDWS_CHROMIUM", "/usr/bin/chromium"))


def test_demo_page_through_the_issuer(op: OpenIDProvider) -> None:
    if not CHROMIUM.exists():
        missing_tool(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    if not (JS / "node_modules" / "playwright-core").is_dir():
        missing_tool("clients/js/node_modules is missing: run `npm ci --prefix clients/js`")
    node = shutil.which("node")
    assert node is not None  # the op fixture skipped otherwise
    demo = subprocess.Popen(  # noqa: S603 - fixed arguments
        [
            sys.executable,
            str(JS / "demo" / "serve.py"),
            "--port",
            "0",
            "--oidc-issuer",
            op.issuer,
            "--oidc-audience",
            API,
            "--oidc-jwks-url",
            op.jwks_url,
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert demo.stdout is not None
        where = json.loads(demo.stdout.readline())
        token = op.token()
        browser = subprocess.run(  # noqa: S603 - fixed arguments
            [node, "browser_issuer.mjs"],
            cwd=HERE,
            env={
                **os.environ,
                "PAGE": f"{where['http']}/demo/",
                "LOGIN_TOKEN": token,
                "CHROMIUM": str(CHROMIUM),
            },
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert browser.returncode == 0, browser.stderr[-3000:]
        result: dict[str, Any] = json.loads(browser.stdout.strip().splitlines()[-1])
        with urllib.request.urlopen(f"{where['http']}/events", timeout=10) as response:  # noqa: S310
            events = json.loads(response.read())
    finally:
        demo.terminate()
        _, stderr = demo.communicate(timeout=15)
    print(f"Chromium {result['version']}")
    for scheme in ("mac", "ed25519"):
        run = result[scheme]
        assert run["errors"] == []
        assert run["first"] != run["refreshed"]  # a new credential ...
        assert run["echoes"] == [
            "app (seq 1) said: before refresh",
            "app (seq 2) said: after refresh",
        ]
        cids = {run["first"], run["refreshed"]}
        messages = [e for e in events if e["type"] == "message" and e["cid"] in cids]
        # ... on the same connection: the server saw both credentials there.
        assert {m["cid"] for m in messages} == cids
        assert len({m["connection"] for m in messages}) == 1
    assert result["ed25519"]["extractable"] is False
    handshakes = [e for e in events if e["type"] == "handshake"]
    assert all(not h["authorization"] and not h["cookie"] and h["path"] == "/" for h in handshakes)
    assert token not in stderr
