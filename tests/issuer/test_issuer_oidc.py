"""The issuer service end to end, with real parts: a real OpenID Provider
(oidc-provider under Node) issues access tokens by the client credentials
grant; the issuer service (Starlette under uvicorn, 127.0.0.1 port 0) checks
them against the provider's JWKS URL with PyJWT and mints credentials; a real
signedws server accepts the frames they sign.

Skipped, with the reason, where Node or ``npm ci --prefix tests/issuer/op`` is
missing."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import time
from typing import Any

import pytest
from aio_support import (
    AUDIENCE,
    ED_KID,
    ISSUER,
    SERVER_KEY,
    Recorder,
    running,
)
from issuer_support import API, ORIGIN, OpenIDProvider, _http, bearer, http, issuing, refused_with

from signedws import Ed25519PrivateKey
from signedws.asyncio import connect
from signedws.asyncio.issuer import BearerTokenAuthenticator
from signedws.asyncio.issuer_client import IssuerClient, IssuerRefused
from signedws.errors import UsageError
from signedws.issuer import RateLimiter, pop_input
from signedws.keys import b64url_decode, b64url_encode

# -- the whole story ---------------------------------------------------------------------


def test_provider_token_to_signed_frames_mac(op: OpenIDProvider, run: Any, caplog: Any) -> None:
    caplog.set_level(logging.DEBUG)
    token = op.token(scope="chat:read admin")

    async def main() -> None:
        async with issuing(op) as iss, running(Recorder(echo=True)) as srv:
            status, headers, document = await http(
                "POST", f"{iss.url}/credentials/mac", {}, bearer(token)
            )
            assert status == 200
            assert headers["cache-control"] == "no-store"
            assert document["subject"] == "app"  # the provider's sub (client id)
            assert document["scopes"] == ["chat:read"]  # admin is not grantable
            assert document["audiences"] == [AUDIENCE]
            assert (
                document["expires_at"]
                <= json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))["exp"]
            )
            client = IssuerClient(iss.url, login_token=token)
            async with connect(srv.uri, issuer=client, audience=AUDIENCE) as ws:
                await ws.send("hello")
                assert await ws.recv() == "hello"  # a mac server frame, verified
            message = srv.recorder.messages[0]
            assert (message.subject, message.issuer, message.scopes) == (
                "app",
                ISSUER,
                frozenset({"chat:read"}),
            )

    run(main())
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "issued mac credential sub='app'" in logged
    assert token not in logged
    assert token.split(".")[2] not in logged


def test_provider_token_to_signed_frames_ed25519(op: OpenIDProvider, run: Any) -> None:
    async def main() -> None:
        async with issuing(op) as iss, running(Recorder(echo=True)) as srv:
            client = IssuerClient(iss.url, login_token=op.token(), scheme="ed25519")
            async with connect(srv.uri, issuer=client, audience=AUDIENCE) as ws:
                await ws.send(b"signed")
                # The server's ed25519 frame verifies with the key from the response.
                assert await ws.recv() == b"signed"
            assert srv.recorder.messages[0].subject == "app"
            status, headers, jwks = await http("GET", f"{iss.url}/jwks.json")
            assert status == 200
            assert "no-store" not in headers["cache-control"]
            kids = {(k["signedws_role"], k["kid"]) for k in jwks["keys"]}
            assert kids == {("server", SERVER_KEY.kid), ("issuer", ED_KID)}

    run(main())


def test_refresh_on_the_same_connection(op: OpenIDProvider, run: Any) -> None:
    tokens = 0

    async def login_token() -> str:
        nonlocal tokens
        tokens += 1
        return await asyncio.to_thread(op.token)

    async def main() -> None:
        async with issuing(op) as iss, running(Recorder()) as srv:
            client = IssuerClient(iss.url, login_token=login_token, lifetime=12)
            async with connect(srv.uri, issuer=client, audience=AUDIENCE, refresh_margin=11) as ws:
                first = ws.credential.cid
                for i in range(60):  # bounded: ~1 s to the refresh
                    await ws.send(f"m{i}")
                    if ws.credential.cid != first:
                        break
                    await asyncio.sleep(0.1)
                await ws.send("after")
                await ws.drain()
                assert ws.connections == 1
            cids = {m.credential_id for m in srv.recorder.per_connection[0]}
            assert len(srv.recorder.connections) == 1
            assert first in cids
            assert len(cids) >= 2
            assert tokens >= 2  # the login token was asked for again

    run(main())


# -- the login token ---------------------------------------------------------------------


def test_provider_key_rotation(op: OpenIDProvider, run: Any) -> None:
    async def main() -> None:
        async with issuing(op) as iss:
            before = op.token()
            status, _, _ = await http("POST", f"{iss.url}/credentials/mac", {}, bearer(before))
            assert status == 200  # the key set is now cached
            new_kid = await asyncio.to_thread(op.rotate)
            after = op.token()
            header = json.loads(base64.urlsafe_b64decode(after.split(".")[0] + "=="))
            assert header["kid"] == new_kid
            for token in (after, before):  # the new key is fetched; the old one still listed
                status, _, body = await http(
                    "POST", f"{iss.url}/credentials/mac", {}, bearer(token)
                )
                assert status == 200, body

    run(main())


def test_expired_token_is_refused(op: OpenIDProvider, run: Any) -> None:
    token = op.token(resource=f"{API}/short")  # lives 1 s
    exp = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))["exp"]

    async def main() -> None:
        async with issuing(op, auth={"leeway": 0}) as iss:
            while time.time() < exp + 0.05:  # bounded: the token lives 1 s
                await asyncio.sleep(0.1)
            detail = await refused_with(iss.url, token, "token_expired")
            assert str(exp) in detail

    run(main())


def test_token_for_another_audience_is_refused(op: OpenIDProvider, run: Any) -> None:
    token = op.token(resource="https://other.example")

    async def main() -> None:
        async with issuing(op) as iss:
            await refused_with(iss.url, token, "token_audience")

    run(main())


def test_token_from_another_issuer_is_refused(op: OpenIDProvider, run: Any) -> None:
    async def main() -> None:
        async with issuing(op, auth={"issuer": "https://login.elsewhere"}) as iss:
            await refused_with(iss.url, op.token(), "token_issuer")

    run(main())


def test_algorithm_outside_the_allow_list_is_refused(op: OpenIDProvider, run: Any) -> None:
    token = op.token(resource=f"{API}/rs256")  # RS256, validly signed by the provider

    async def main() -> None:
        async with issuing(op) as iss:
            detail = await refused_with(iss.url, token, "token_algorithm")
            assert "'RS256'" in detail

    run(main())


def _b64json(value: dict[str, Any]) -> str:
    return b64url_encode(json.dumps(value, separators=(",", ":")).encode())


def test_alg_none_is_refused(op: OpenIDProvider, run: Any) -> None:
    good = op.token()
    header = json.loads(base64.urlsafe_b64decode(good.split(".")[0] + "=="))
    unsigned = f"{_b64json({**header, 'alg': 'none'})}.{good.split('.')[1]}."

    async def main() -> None:
        async with issuing(op) as iss:
            detail = await refused_with(iss.url, unsigned, "token_algorithm")
            assert "'none'" in detail

    run(main())


def test_hs256_with_the_public_key_as_secret_is_refused(op: OpenIDProvider, run: Any) -> None:
    """Key confusion: an HS256 token whose 'secret' is the provider's public key."""
    good = op.token()
    header = json.loads(base64.urlsafe_b64decode(good.split(".")[0] + "=="))
    _, _, jwks = _http("GET", op.jwks_url)
    public_jwk = next(k for k in jwks["keys"] if k["kid"] == header["kid"])
    signing_input = f"{_b64json({**header, 'alg': 'HS256'})}.{good.split('.')[1]}"
    secret = json.dumps(public_jwk).encode()
    tag = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    forged = f"{signing_input}.{b64url_encode(tag)}"

    async def main() -> None:
        async with issuing(op) as iss:
            await refused_with(iss.url, forged, "token_algorithm")

    run(main())
    with pytest.raises(UsageError):
        BearerTokenAuthenticator(
            jwks_url=op.jwks_url, issuer=op.issuer, audience=API, algorithms=["ES256", "HS256"]
        )
    with pytest.raises(UsageError):
        BearerTokenAuthenticator(
            jwks_url=op.jwks_url, issuer=op.issuer, audience=API, algorithms=["none"]
        )


def test_tampered_token_and_no_token_are_refused(op: OpenIDProvider, run: Any) -> None:
    good = op.token()
    head, body, signature = good.split(".")
    claims = json.loads(base64.urlsafe_b64decode(body + "=="))
    tampered = f"{head}.{_b64json({**claims, 'sub': 'admin'})}.{signature}"

    async def main() -> None:
        async with issuing(op) as iss:
            await refused_with(iss.url, tampered, "token_invalid")
            await refused_with(iss.url, "not-a-jwt", "token_invalid")
            status, headers, body_ = await http("POST", f"{iss.url}/credentials/mac", {})
            assert (status, body_["error"]) == (401, "unauthenticated")
            assert headers["www-authenticate"].startswith("Bearer")

    run(main())


# -- the HTTP surface ----------------------------------------------------------------------


def test_cors_origin_content_type_and_rate_limit(op: OpenIDProvider, run: Any) -> None:
    token = op.token()

    async def main() -> None:
        async with issuing(op, limiter=RateLimiter(rate=0.01, burst=2)) as iss:
            url = f"{iss.url}/credentials/mac"
            status, headers, _ = await http(
                "OPTIONS",
                url,
                headers={
                    "Origin": ORIGIN,
                    "Access-Control-Request-Method": "POST",
                    "Access-Control-Request-Headers": "authorization,content-type",
                },
            )
            assert status == 200
            assert headers["access-control-allow-origin"] == ORIGIN
            status, _, body = await http(
                "POST", url, {}, {**bearer(token), "Origin": "https://evil.example"}
            )
            assert (status, body["error"]) == (403, "origin_forbidden")
            status, _, body = await http(
                "POST",
                url,
                b"scopes=chat:read",
                {**bearer(token), "Content-Type": "application/x-www-form-urlencoded"},
            )
            assert (status, body["error"]) == (415, "unsupported_media_type")
            status, _, body = await http("POST", url, b"x" * 9000, bearer(token))
            assert (status, body["error"]) == (413, "request_too_large")
            # The rate limit counts authenticated requests: two pass, the third waits.
            for _ in range(2):
                status, _, _ = await http("POST", url, {}, {**bearer(token), "Origin": ORIGIN})
                assert status == 200
            status, headers, body = await http("POST", url, {}, bearer(token))
            assert (status, body["error"]) == (429, "rate_limited")
            assert int(headers["retry-after"]) >= 1
            status, _, body = await http("GET", f"{iss.url}/nowhere")
            assert (status, body["error"]) == (404, "not_found")

    run(main())


def test_proof_of_possession_over_http(op: OpenIDProvider, run: Any) -> None:
    token = op.token()
    key = Ed25519PrivateKey.generate()
    other = Ed25519PrivateKey.generate()
    public = b64url_encode(key.public_key().to_bytes())

    async def main() -> None:
        async with issuing(op) as iss:
            status, headers, got = await http(
                "GET", f"{iss.url}/challenge?public_key={public}", headers=bearer(token)
            )
            assert status == 200
            assert headers["cache-control"] == "no-store"
            challenge = b64url_decode(got["challenge"])
            proof = {
                "public_key": public,
                "challenge": got["challenge"],
                "signature": b64url_encode(key.sign(pop_input(got["issuer"], challenge))),
            }
            url = f"{iss.url}/credentials/ed25519"
            status, _, document = await http("POST", url, proof, bearer(token))
            assert status == 200, document
            status, _, body = await http("POST", url, proof, bearer(token))
            assert (status, body["error"]) == (400, "challenge_replayed")
            # The other key signs the challenge minted for `key`.
            stolen = {
                "public_key": b64url_encode(other.public_key().to_bytes()),
                "challenge": got["challenge"],
                "signature": b64url_encode(other.sign(pop_input(got["issuer"], challenge))),
            }
            status, _, body = await http("POST", url, stolen, bearer(token))
            assert (status, body["error"]) == (400, "challenge_key_mismatch")

    run(main())


def test_issuer_client_reports_refusals(op: OpenIDProvider, run: Any) -> None:
    async def main() -> None:
        async with issuing(op) as iss:
            client = IssuerClient(iss.url, login_token="not-a-jwt")
            with pytest.raises(IssuerRefused) as info:
                await client.credential()
            assert (info.value.status, info.value.code) == (401, "token_invalid")
            assert "not-a-jwt" not in str(info.value)

    run(main())
    with pytest.raises(UsageError):
        IssuerClient("http://issuer.example/signedws", login_token="t")
