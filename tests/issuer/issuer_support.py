"""Helpers for the issuer tests: the test OpenID Provider (oidc-provider under
Node, in ``op/``) and the issuer service under a real uvicorn.

Imported as ``issuer_support`` (pytest puts this directory on ``sys.path``).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import shutil
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import pytest
import uvicorn
from aio_support import (
    AUDIENCE,
    ED_ISSUER_KEY,
    ED_KID,
    FLEET_KEY,
    HMAC_KID,
    HMAC_SECRET,
    ISSUER,
    SERVER_KEY,
)

from signedws.asyncio.issuer import BearerTokenAuthenticator, issuer_app
from signedws.issuer import IssuancePolicy, IssuerService

_HERE = Path(__file__).resolve().parent
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


def missing_tool(reason: str) -> NoReturn:
    """Skip a test whose tool is missing, loudly; under ``CI=true``, where
    ``.ci/run`` installs every tool, fail instead."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true and {reason}")
    pytest.skip(reason)


def op_missing() -> str | None:
    if shutil.which("node") is None:
        return "node is not installed (apt-get install nodejs npm)"
    if not (OP_DIR / "node_modules" / "oidc-provider").is_dir():
        return "oidc-provider is not installed: run `npm ci --prefix tests/issuer/op`"
    return None


SCOPES = frozenset({"chat:read", "chat:write"})
ORIGIN = "https://app.example"


@dataclass
class Issuing:
    url: str
    service: IssuerService


def make_service(**kwargs: Any) -> IssuerService:
    return IssuerService.build(
        IssuancePolicy((AUDIENCE,), grantable=SCOPES),
        mac_key=(ISSUER, HMAC_KID, HMAC_SECRET),
        ed25519_key=(ISSUER, ED_KID, ED_ISSUER_KEY),
        fleet_key=("fleet-1", FLEET_KEY),
        server_keys=[SERVER_KEY],
        **kwargs,
    )


@contextlib.asynccontextmanager
async def issuing(op: OpenIDProvider, **kwargs: Any) -> AsyncIterator[Issuing]:
    """The issuer service under uvicorn on 127.0.0.1, any free port."""
    auth_kwargs = {
        "jwks_url": op.jwks_url,
        "issuer": op.issuer,
        "audience": API,
        "algorithms": ("ES256", "EdDSA"),
        "jwks_refresh_cooldown": 0.0,
        **kwargs.pop("auth", {}),
    }
    service = make_service(**kwargs)
    app = issuer_app(
        service, authenticate=BearerTokenAuthenticator(**auth_kwargs), origins=[ORIGIN]
    )
    config = uvicorn.Config(
        app, host="127.0.0.1", port=0, lifespan="off", log_config=None, timeout_graceful_shutdown=5
    )
    config.load()
    server = uvicorn.Server(config)
    server.lifespan = config.lifespan_class(config)
    await server.startup()
    try:
        port = server.servers[0].sockets[0].getsockname()[1]
        yield Issuing(f"http://127.0.0.1:{port}", service)
    finally:
        await server.shutdown()


def _http(
    method: str, url: str, body: Any = None, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], Any]:
    headers = dict(headers or {})
    data = None
    if body is not None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        headers.setdefault("Content-Type", "application/json")
    request = urllib.request.Request(url, data=data, headers=headers, method=method)  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            raw, status, got = response.read(), response.status, response.headers
    except urllib.error.HTTPError as exc:
        raw, status, got = exc.read(), exc.code, exc.headers
    try:
        document = json.loads(raw)
    except ValueError:
        document = raw  # a CORS preflight answers plain text
    return status, {k.lower(): v for k, v in got.items()}, document


async def http(*args: Any, **kwargs: Any) -> tuple[int, dict[str, str], Any]:
    return await asyncio.to_thread(_http, *args, **kwargs)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def refused_with(url: str, token: str, code: str, status: int = 401) -> str:
    got_status, headers, body = await http("POST", f"{url}/credentials/mac", {}, bearer(token))
    assert (got_status, body["error"]) == (status, code), body
    assert headers["cache-control"] == "no-store"
    detail = body["detail"]
    assert isinstance(detail, str)
    return detail
