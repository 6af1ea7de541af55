"""Fixtures for the issuer tests: a real OpenID Provider (oidc-provider, run by
Node as a subprocess on 127.0.0.1) and the issuer service under a real uvicorn.

The provider lives in ``op/`` with its own package.json and lock file; install
it with ``npm ci --prefix tests/issuer/op``. Without Node or that install, the
tests that need it are skipped with the reason (CI installs both).

No ``__init__.py``: pytest puts this directory on ``sys.path``; the asyncio
tests' helpers (``aio_support``) are put there too.
"""

from __future__ import annotations

import base64
import json
import select
import shutil
import subprocess
import sys
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

_HERE = Path(__file__).resolve().parent
_ASYNCIO_TESTS = str(_HERE.parent / "asyncio")
if _ASYNCIO_TESTS not in sys.path:
    sys.path.insert(0, _ASYNCIO_TESTS)

OP_DIR = _HERE / "op"
CLIENT_ID = "app"
CLIENT_SECRET = "app-secret"
API = "https://api.example"


@dataclass
class OpenIDProvider:
    """The running provider."""

    issuer: str
    process: subprocess.Popen[str]

    @property
    def jwks_url(self) -> str:
        return f"{self.issuer}/jwks"

    def token(self, *, resource: str = API, scope: str = "chat:read chat:write") -> str:
        """An access token (JWT) by the client credentials grant."""
        body = urllib.parse.urlencode(
            {"grant_type": "client_credentials", "scope": scope, "resource": resource}
        ).encode()
        basic = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
        request = urllib.request.Request(  # noqa: S310 - loopback http
            f"{self.issuer}/token",
            data=body,
            headers={"Authorization": f"Basic {basic}"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            document = json.loads(response.read())
        token = document["access_token"]
        assert isinstance(token, str)
        return token

    def rotate(self) -> str:
        """Rotate the provider's ES256 signing key; the new key id."""
        request = urllib.request.Request(  # noqa: S310 - loopback http
            f"{self.issuer}/_test/rotate", data=b"", method="POST"
        )
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            kid = json.loads(response.read())["kid"]
        assert isinstance(kid, str)
        return kid


def _op_missing() -> str | None:
    if shutil.which("node") is None:
        return "node is not installed (apt-get install nodejs npm)"
    if not (OP_DIR / "node_modules" / "oidc-provider").is_dir():
        return "oidc-provider is not installed: run `npm ci --prefix tests/issuer/op`"
    return None


@pytest.fixture(scope="module")
def op() -> Iterator[OpenIDProvider]:
    """A fresh provider per test module (rotation changes its keys)."""
    missing = _op_missing()
    if missing is not None:
        pytest.skip(missing)
    process = subprocess.Popen(
        ["node", "op.mjs"],  # noqa: S607 - node from PATH, checked above
        cwd=OP_DIR,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout is not None
        ready, _, _ = select.select([process.stdout], [], [], 30)
        line = process.stdout.readline() if ready else ""
        if not line:
            pytest.fail("the OpenID Provider did not start")
        yield OpenIDProvider(json.loads(line)["issuer"], process)
    finally:
        if process.stdin is not None:
            process.stdin.close()
        process.terminate()
        process.wait(timeout=10)
