"""The issuer service over ASGI: a Starlette app, mountable in FastAPI (SPEC.md §13).

::

    service = IssuerService.build(policy, mac_key=("app", "k1", secret), ...)
    login = BearerTokenAuthenticator(
        jwks_url="https://login.example/jwks", issuer="https://login.example",
        audience="https://api.example")
    app.mount("/signedws", issuer_app(service, authenticate=login,
                                      origins=["https://app.example"]))

Routes (relative to the mount point):

- ``POST credentials/mac``: a `mac` token and its frame key.
- ``GET|POST challenge``: a proof-of-possession challenge for a public key.
- ``POST credentials/ed25519``: a certificate, for a signed challenge.
- ``GET jwks.json``: the server and issuer Ed25519 public keys (no login).

Who the caller is comes from ``authenticate(request) -> Principal``: any
coroutine the application writes (session cookie, API key ...), or
`BearerTokenAuthenticator` for the OAuth 2.0 / OIDC access tokens (or ID
tokens) the application's login already hands out.

Invariants:

1. Credentials travel only in response bodies, with ``Cache-Control:
   no-store``; nothing the service logs holds a token, frame key, challenge,
   signature or login token (log lines name the subject, scheme, ``cid`` and
   expiry).
2. Every refusal is JSON ``{"error": code, "detail": ...}`` with a stable code
   (SPEC.md §13.6) and an HTTP status; nothing else escapes.
3. POST bodies are JSON (``Content-Type: application/json``: a cross-site
   form cannot send one without a CORS preflight) of at most 8 KiB; a request
   whose ``Origin`` is neither the service's own nor an allowed one is refused
   (``origin_forbidden``) before authentication.
4. The rate limit counts every authenticated request per principal.
5. PyJWT's `PyJWKClient` is synchronous: it runs in Starlette's thread pool,
   never on the event loop.

Starlette and PyJWT come with ``signedws[issuer]``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any, Final

import jwt
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..errors import UsageError
from ..issuer import IssuanceError, IssuerService, Principal
from ..jsondoc import parse_json
from ..logformat import When

__all__ = [
    "DEFAULT_ALGORITHMS",
    "MAX_BODY_SIZE",
    "Authenticate",
    "BearerTokenAuthenticator",
    "issuer_app",
]

logger = logging.getLogger("signedws.issuer")

#: ``async def authenticate(request) -> Principal``; raises `IssuanceError`
#: (``unauthenticated``, 401) for a caller it does not recognise.
Authenticate = Callable[[Request], Awaitable[Principal]]

MAX_BODY_SIZE: Final = 8192
MAX_TOKEN_SIZE: Final = 16384
#: Asymmetric JWS algorithms: an identity provider's keys are public.
DEFAULT_ALGORITHMS: Final = ("RS256", "PS256", "ES256", "EdDSA")
_REFUSED_ALGORITHMS: Final = frozenset({"none", "HS256", "HS384", "HS512"})

_NO_STORE: Final = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def _unauthenticated(code: str, detail: str) -> IssuanceError:
    return IssuanceError(code, 401, detail)


class BearerTokenAuthenticator:
    """Authenticate by an OAuth 2.0 / OIDC JWT in ``Authorization: Bearer``.

    The token is checked against the identity provider's JWKS (PyJWT's
    `PyJWKClient`: the key set is cached for ``jwks_lifespan`` seconds and
    fetched again when a token names an unknown ``kid`` — rotation — at most
    once per ``jwks_refresh_cooldown`` seconds). Checks: the ``alg`` is in
    ``algorithms`` (never ``none`` or an HMAC algorithm: the keys are public),
    and matches the key's own ``alg`` if it has one; a ``kid`` naming a key of
    the provider's set; the signature; ``iss``
    equals ``issuer``; ``aud`` contains ``audience``; ``exp`` is present and
    not past (``leeway`` seconds of tolerance); ``nbf`` if present; the
    ``typ`` header, if ``token_types`` is given.

    Claims map to the `Principal`: ``subject_claim`` (default ``sub``) gives
    the subject; ``scopes_claim`` (default ``scope``: a space-separated string,
    or an array as in ``scp``) gives the login's scopes, each mapped through
    ``scope_map`` (login scope → signedws scopes; unmapped scopes are dropped)
    or taken as they are without one; ``exp`` bounds every credential's
    lifetime.

    Errors (HTTP 401): ``unauthenticated`` (no bearer token),
    ``token_invalid``, ``token_algorithm``, ``token_expired``,
    ``token_issuer``, ``token_audience``; HTTP 503 ``login_unavailable`` when
    the provider's JWKS cannot be fetched.
    """

    def __init__(
        self,
        *,
        jwks_url: str,
        issuer: str,
        audience: str,
        algorithms: Sequence[str] = DEFAULT_ALGORITHMS,
        subject_claim: str = "sub",
        scopes_claim: str = "scope",
        scope_map: Mapping[str, Iterable[str]] | None = None,
        token_types: Sequence[str] | None = None,
        leeway: float = 30.0,
        jwks_lifespan: float = 300.0,
        jwks_refresh_cooldown: float = 30.0,
        jwks_timeout: float = 5.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        algorithms = tuple(algorithms)
        refused = [a for a in algorithms if a in _REFUSED_ALGORITHMS or a.startswith("HS")]
        if refused or not algorithms:
            raise UsageError(
                f"algorithms must be asymmetric JWS algorithms; refused: {refused or 'empty'}"
            )
        if not jwks_url.startswith(("https://", "http://")):
            raise UsageError("jwks_url must be an http(s) URL")
        self.issuer = issuer
        self.audience = audience
        self.algorithms = algorithms
        self.subject_claim = subject_claim
        self.scopes_claim = scopes_claim
        self.scope_map = (
            None
            if scope_map is None
            else {k: frozenset([v] if isinstance(v, str) else v) for k, v in scope_map.items()}
        )
        self.token_types = None if token_types is None else tuple(token_types)
        self.leeway = leeway
        self._clock = clock
        self._jwks = jwt.PyJWKClient(
            jwks_url,
            cache_jwk_set=True,
            lifespan=jwks_lifespan,
            timeout=jwks_timeout,
            cooldown_duration=jwks_refresh_cooldown,
        )

    def __repr__(self) -> str:
        return f"BearerTokenAuthenticator(issuer={self.issuer!r}, audience={self.audience!r})"

    async def __call__(self, request: Request) -> Principal:
        """The principal of ``request``'s bearer token.

        Raises:
            IssuanceError: see the class docstring.
        """
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise _unauthenticated("unauthenticated", "an Authorization: Bearer token is needed")
        if len(token) > MAX_TOKEN_SIZE:
            raise _unauthenticated("token_invalid", "the bearer token is too long")
        return await self.principal(token)

    async def principal(self, token: str) -> Principal:
        """The principal of a login token (see the class docstring).

        Raises:
            IssuanceError: see the class docstring.
        """
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError:
            raise _unauthenticated("token_invalid", "the bearer token is not a JWS") from None
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in self.algorithms:
            shown = alg if isinstance(alg, str) and len(alg) <= 16 else "?"
            raise _unauthenticated("token_algorithm", f"algorithm {shown!r} is not allowed")
        if self.token_types is not None and header.get("typ") not in self.token_types:
            raise _unauthenticated("token_invalid", "the token's typ is not an accepted one")
        if not isinstance(header.get("kid"), str):
            raise _unauthenticated("token_invalid", "the token names no key (kid)")
        try:
            key = await run_in_threadpool(self._jwks.get_signing_key_from_jwt, token)
        except jwt.PyJWKClientConnectionError:
            logger.warning("identity provider JWKS unreachable")
            raise IssuanceError(
                "login_unavailable", 503, "the identity provider's keys cannot be fetched"
            ) from None
        except jwt.PyJWKClientError:
            raise _unauthenticated(
                "token_invalid", "the token's key is not in the identity provider's key set"
            ) from None
        # A JWK that names its algorithm is used for that one only (RFC 7517
        # §4.4). PyJWK keeps the JWK's members in _jwk_data (no public
        # accessor); its algorithm_name is a guess when the JWK has no alg.
        jwk_alg = getattr(key, "_jwk_data", {}).get("alg")
        if jwk_alg is not None and jwk_alg != alg:
            raise _unauthenticated("token_algorithm", f"the token's key is not for {alg!r}")
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key.key,
                algorithms=[alg],
                audience=self.audience,
                issuer=self.issuer,
                options={
                    "require": ["exp", "iss", "aud"],
                    # Times are checked below, against our clock.
                    "verify_exp": False,
                    "verify_nbf": False,
                    "verify_iat": False,
                },
            )
        except jwt.InvalidAudienceError:
            raise _unauthenticated("token_audience", "the token is for another audience") from None
        except jwt.InvalidIssuerError:
            raise _unauthenticated("token_issuer", "the token is from another issuer") from None
        except jwt.InvalidTokenError as exc:
            raise _unauthenticated(
                "token_invalid", f"the token does not verify ({type(exc).__name__})"
            ) from None
        return self._principal(claims)

    def _principal(self, claims: Mapping[str, Any]) -> Principal:
        now = self._clock()
        exp = claims.get("exp")
        if type(exp) is not int:
            raise _unauthenticated("token_invalid", "exp is not a whole number")
        if now >= exp + self.leeway:
            raise _unauthenticated("token_expired", f"the token expired at {When(exp)}")
        nbf = claims.get("nbf")
        if nbf is not None and (not isinstance(nbf, int | float) or now + self.leeway < nbf):
            raise _unauthenticated("token_invalid", "the token is not valid yet")
        subject = claims.get(self.subject_claim)
        if not isinstance(subject, str) or not subject:
            raise _unauthenticated("token_invalid", f"no {self.subject_claim!r} claim")
        raw = claims.get(self.scopes_claim, [])
        if isinstance(raw, str):
            login_scopes = raw.split()
        elif isinstance(raw, list) and all(isinstance(s, str) for s in raw):
            login_scopes = raw
        else:
            raise _unauthenticated("token_invalid", f"{self.scopes_claim!r} is malformed")
        if self.scope_map is None:
            scopes = frozenset(login_scopes)
        else:
            scopes = frozenset().union(*(self.scope_map.get(s, ()) for s in login_scopes))
        try:
            return Principal(subject, scopes, expires=exp)
        except UsageError as exc:
            raise _unauthenticated("token_invalid", f"unusable claims: {exc}") from None


def _error(exc: IssuanceError) -> JSONResponse:
    headers = dict(_NO_STORE)
    if exc.retry_after is not None:
        headers["Retry-After"] = str(exc.retry_after)
    if exc.status == 401:
        headers["WWW-Authenticate"] = 'Bearer error="invalid_token"'
    return JSONResponse(exc.to_dict(), status_code=exc.status, headers=headers)


async def _json_body(request: Request) -> dict[str, Any]:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/json":
        raise IssuanceError("unsupported_media_type", 415, "the body must be application/json")
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > MAX_BODY_SIZE):
        raise IssuanceError("request_too_large", 413, f"the body is over {MAX_BODY_SIZE} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY_SIZE:
            raise IssuanceError(
                "request_too_large", 413, f"the body is over {MAX_BODY_SIZE} bytes"
            )
    try:
        document = parse_json(bytes(body)) if body else {}
    except (ValueError, UnicodeDecodeError):
        raise IssuanceError("invalid_request", 400, "the body is not JSON") from None
    if not isinstance(document, dict):
        raise IssuanceError("invalid_request", 400, "the body must be a JSON object")
    return document


def issuer_app(
    service: IssuerService,
    *,
    authenticate: Authenticate,
    origins: Sequence[str] = (),
    allow_credentials: bool = False,
    clock: Callable[[], float] = time.time,
) -> Starlette:
    """The issuer service as a Starlette app (mount it under a path).

    Args:
        service: the issuance core (keys, policy, rate limit).
        authenticate: ``async def authenticate(request) -> Principal``.
        origins: browser origins allowed to call the service cross-origin
            (CORS); same-origin callers need no entry.
        allow_credentials: let cross-origin callers send cookies (for an
            ``authenticate`` that reads a session cookie); leave off for
            bearer tokens.
        clock: the wall clock, seconds.
    """
    allowed = frozenset(origins)
    if "*" in allowed:
        raise UsageError("origins lists exact origins; '*' would let any site mint")

    def origin_ok(request: Request) -> bool:
        origin = request.headers.get("origin")
        if origin is None or origin in allowed:
            return True
        own = f"{request.url.scheme}://{request.url.netloc}"
        return origin == own

    def endpoint(
        action: Callable[[Principal, dict[str, Any], float], dict[str, Any]],
        *,
        what: str,
    ) -> Callable[[Request], Awaitable[Response]]:
        async def run(request: Request) -> dict[str, Any]:
            if not origin_ok(request):
                raise IssuanceError("origin_forbidden", 403, "this origin may not call the issuer")
            if request.method == "POST":
                body = await _json_body(request)
            else:
                body = dict(request.query_params)
                if "public_key" not in body or set(body) - {"public_key"}:
                    raise IssuanceError(
                        "invalid_request", 400, "GET challenge takes one public_key"
                    )
            principal = await authenticate(request)
            if not isinstance(principal, Principal):
                raise UsageError("authenticate must return a Principal")
            now = clock()
            service.admit(principal, now=now)
            return action(principal, body, now)

        async def handle(request: Request) -> Response:
            try:
                document = await run(request)
            except IssuanceError as exc:
                logger.info("issuer %s refused: %s (%s)", what, exc.code, exc.detail)
                return _error(exc)
            except Exception as exc:
                # A bug (in an authenticate hook, say): its type only, since its
                # message or traceback could hold what the request carried.
                logger.error("issuer %s failed: %s", what, type(exc).__name__)  # noqa: TRY400
                return _error(IssuanceError("internal_error", 500, "the issuer failed"))
            if "cid" in document:
                logger.info(
                    "issued %s credential sub=%r cid=%r exp=%s",
                    document["scheme"],
                    document["subject"],
                    document["cid"],
                    When(document["expires_at"]),
                )
            return JSONResponse(document, headers=_NO_STORE)

        return handle

    async def jwks(request: Request) -> Response:
        return JSONResponse(service.jwks(), headers={"Cache-Control": "public, max-age=300"})

    routes = [
        Route(
            "/credentials/mac",
            endpoint(lambda p, b, n: service.issue_mac(p, b, now=n), what="mac"),
            methods=["POST"],
        ),
        Route(
            "/credentials/ed25519",
            endpoint(lambda p, b, n: service.issue_ed25519(p, b, now=n), what="ed25519"),
            methods=["POST"],
        ),
        Route(
            "/challenge",
            endpoint(lambda p, b, n: service.challenge(p, b, now=n), what="challenge"),
            methods=["GET", "POST"],
        ),
        Route("/jwks.json", jwks, methods=["GET"]),
    ]
    middleware = [
        Middleware(
            CORSMiddleware,
            allow_origins=sorted(allowed),
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type"],
            allow_credentials=allow_credentials,
            max_age=600,
        )
    ]

    async def http_error(request: Request, exc: Exception) -> Response:
        status = getattr(exc, "status_code", 500)
        code = {404: "not_found", 405: "method_not_allowed"}.get(status, "http_error")
        return JSONResponse({"error": code, "detail": "no such issuer endpoint"}, status)

    return Starlette(
        routes=routes, middleware=middleware, exception_handlers={HTTPException: http_error}
    )
