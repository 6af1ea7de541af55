"""The issuer app with an application's own ``authenticate`` hook (a session
cookie), under a real uvicorn: CSRF defences (Origin, JSON only), credentialed
CORS, JSON errors for everything. No identity provider needed."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from issuer_support import _http
from starlette.requests import Request

from signedws.asyncio.issuer import issuer_app
from signedws.issuer import IssuanceError, IssuancePolicy, IssuerService, Principal
from signedws.keys import HMACKey

ORIGIN = "https://app.example"
SESSIONS = {"s3cr3t-session": Principal("carol", frozenset({"chat:read"}))}


async def session_cookie(request: Request) -> Principal:
    principal = SESSIONS.get(request.cookies.get("session", ""))
    if principal is None:
        raise IssuanceError("unauthenticated", 401, "log in first")
    return principal


async def broken(request: Request) -> Principal:
    raise RuntimeError(f"oops {request.cookies.get('session')}")


def serve(run: Any, check: Any, authenticate: Any = session_cookie) -> None:
    import uvicorn

    service = IssuerService.build(
        IssuancePolicy(("wss://api.example/ws",)), mac_key=("app", "h1", HMACKey(bytes(32)))
    )
    app = issuer_app(service, authenticate=authenticate, origins=[ORIGIN], allow_credentials=True)

    async def main() -> None:
        config = uvicorn.Config(app, host="127.0.0.1", port=0, lifespan="off", log_config=None)
        config.load()
        server = uvicorn.Server(config)
        server.lifespan = config.lifespan_class(config)
        await server.startup()
        try:
            port = server.servers[0].sockets[0].getsockname()[1]
            await asyncio.to_thread(check, f"http://127.0.0.1:{port}")
        finally:
            await server.shutdown()

    run(main())


def test_cookie_login_csrf_and_cors(run: Any) -> None:
    cookie = {"Cookie": "session=s3cr3t-session"}

    def check(url: str) -> None:
        mac = f"{url}/credentials/mac"
        status, headers, body = _http("POST", mac, {}, cookie)
        assert (status, body["subject"], body["scopes"]) == (200, "carol", ["chat:read"])
        assert headers["cache-control"] == "no-store"
        # Cross-site request forgery: another site's page posting with the cookie.
        status, _, body = _http("POST", mac, {}, {**cookie, "Origin": "https://evil.example"})
        assert (status, body["error"]) == (403, "origin_forbidden")
        # A form post (no preflight) is refused even without an Origin header.
        form = {**cookie, "Content-Type": "application/x-www-form-urlencoded"}
        status, _, body = _http("POST", mac, b"a=b", form)
        assert (status, body["error"]) == (415, "unsupported_media_type")
        # The allowed origin, with credentialed CORS.
        status, headers, body = _http("POST", mac, {}, {**cookie, "Origin": ORIGIN})
        assert status == 200
        assert headers["access-control-allow-origin"] == ORIGIN
        assert headers["access-control-allow-credentials"] == "true"
        # The page's own origin is always allowed.
        status, _, _ = _http("POST", mac, {}, {**cookie, "Origin": url})
        assert status == 200
        status, _, body = _http("POST", mac, {}, {"Cookie": "session=nope"})
        assert (status, body["error"]) == (401, "unauthenticated")
        # No ed25519 issuer here.
        status, _, body = _http("POST", f"{url}/credentials/ed25519", {}, cookie)
        assert (status, body["error"]) == (404, "scheme_unavailable")
        status, _, body = _http("GET", mac, headers=cookie)
        assert (status, body["error"]) == (405, "method_not_allowed")
        status, _, body = _http("GET", f"{url}/challenge?public_key=AA&x=1", headers=cookie)
        assert (status, body["error"]) == (400, "invalid_request")
        status, _, body = _http("POST", mac, b"[1]", cookie)
        assert (status, body["error"]) == (400, "invalid_request")
        # Nesting deeper than the JSON parser's recursion, within the body limit, and
        # a member named twice: refused as bad requests, not internal errors.
        status, _, body = _http("POST", mac, b"[" * 8000, cookie)
        assert (status, body["error"]) == (400, "invalid_request")
        status, _, body = _http("POST", mac, b'{"scopes": [], "scopes": ["x"]}', cookie)
        assert (status, body["error"]) == (400, "invalid_request")
        status, _, jwks = _http("GET", f"{url}/jwks.json")
        assert (status, jwks) == (200, {"keys": []})

    serve(run, check)


def test_a_failing_hook_is_a_json_500_without_its_message(run: Any, caplog: Any) -> None:
    caplog.set_level(logging.INFO)

    def check(url: str) -> None:
        status, _, body = _http(
            "POST", f"{url}/credentials/mac", {}, {"Cookie": "session=s3cr3t-session"}
        )
        assert (status, body["error"]) == (500, "internal_error")

    serve(run, check, authenticate=broken)
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "issuer mac failed: RuntimeError" in logged
    assert "s3cr3t" not in logged


def test_connect_takes_a_credential_or_an_issuer() -> None:
    import pytest

    from signedws.asyncio import connect
    from signedws.asyncio.issuer_client import IssuerClient
    from signedws.errors import UsageError

    issuer = IssuerClient("http://127.0.0.1:9/signedws", login_token="t")
    with pytest.raises(UsageError, match="credential or an issuer"):
        connect("ws://127.0.0.1:9/ws", audience="a")
    credential = issuer_credential()
    with pytest.raises(UsageError, match="credential or an issuer"):
        connect("ws://127.0.0.1:9/ws", credential, issuer=issuer, audience="a")


def issuer_credential() -> Any:
    from signedws.issuer import credential_from_response

    service = IssuerService.build(
        IssuancePolicy(("a",)), mac_key=("app", "h1", HMACKey(bytes(32)))
    )
    return credential_from_response(service.issue_mac(Principal("p"), {}, now=1_700_000_000))


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _jws(header: dict[str, Any], claims: dict[str, Any]) -> str:
    import json

    from signedws.keys import b64url_encode

    def part(value: dict[str, Any]) -> str:
        return b64url_encode(json.dumps(value).encode())

    return f"{part(header)}.{part(claims)}.{b64url_encode(bytes(64))}"


def test_provider_unreachable_is_503(run: Any) -> None:
    import pytest

    from signedws.asyncio.issuer import BearerTokenAuthenticator

    login = BearerTokenAuthenticator(
        jwks_url=f"http://127.0.0.1:{_free_port()}/jwks",  # nothing listens there
        issuer="https://login.example",
        audience="api",
        jwks_timeout=2.0,
    )
    token = _jws({"alg": "ES256", "kid": "k1"}, {"sub": "x"})
    with pytest.raises(IssuanceError) as info:
        run(login.principal(token))
    assert (info.value.code, info.value.status) == ("login_unavailable", 503)
    for header, code in (
        ({"alg": "ES256"}, "token_invalid"),  # no kid
        ({"alg": "HS256", "kid": "k1"}, "token_algorithm"),
        ({"alg": "none", "kid": "k1"}, "token_algorithm"),
    ):
        with pytest.raises(IssuanceError) as info:
            run(login.principal(_jws(header, {"sub": "x"})))
        assert info.value.code == code


def test_claims_map_to_the_principal() -> None:
    import pytest

    from signedws.asyncio.issuer import BearerTokenAuthenticator

    now = 1_700_000_000
    login = BearerTokenAuthenticator(
        jwks_url="http://127.0.0.1:9/jwks",
        issuer="https://login.example",
        audience="api",
        subject_claim="email",
        scopes_claim="scp",
        scope_map={"chat.all": ["chat:read", "chat:write"], "read": "chat:read"},
        leeway=0,
        clock=lambda: now,
    )
    principal = login._principal(
        {"email": "eve@example", "scp": ["chat.all", "openid"], "exp": now + 60}
    )
    assert principal == Principal(
        "eve@example", frozenset({"chat:read", "chat:write"}), expires=now + 60
    )
    for claims, code in (
        ({"email": "e", "exp": now}, "token_expired"),
        ({"email": "e", "exp": now + 60, "nbf": now + 5}, "token_invalid"),
        ({"exp": now + 60}, "token_invalid"),
        ({"email": "e", "exp": now + 60, "scp": {"a": 1}}, "token_invalid"),
        ({"email": "e", "exp": "soon"}, "token_invalid"),
    ):
        with pytest.raises(IssuanceError) as info:
            login._principal(claims)
        assert info.value.code == code, claims
