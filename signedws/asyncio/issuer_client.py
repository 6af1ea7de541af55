"""The client side of an issuer service (SPEC.md §13): fetch and refresh a
credential with the application's login token.

::

    issuer = IssuerClient("https://app.example/signedws", login_token=get_token)
    async with connect("wss://api.example/ws", issuer=issuer,
                       audience="wss://api.example/ws") as client:
        ...

`connect` fetches the first credential (and, for `ed25519`, the server keys
from ``jwks.json``) before it connects, and refreshes with `credential` on the
same connection before the credential expires.

HTTP goes through the standard library (``urllib``) in a worker thread: no
new dependency, and the event loop never blocks. The login token travels
only in the ``Authorization`` header; credentials only in response bodies;
nothing here logs either. Plain ``http://`` is refused except to a loopback
host.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Final

from ..credential import ClientCredential, Issuer
from ..errors import KeyFormatError, SignedWSError, UsageError
from ..issuer import credential_from_response, keys_from_jwks, pop_input
from ..jsondoc import parse_json
from ..keys import Ed25519PrivateKey, Ed25519PublicKey, HMACKey, b64url_decode, b64url_encode

__all__ = ["IssuerClient", "IssuerRefused", "LoginToken", "from_issuer"]

#: The login token, or ``async def login_token() -> str`` (called per request,
#: so it can refresh the application's own login).
LoginToken = str | Callable[[], Awaitable[str]]

MAX_RESPONSE_SIZE: Final = 65536


class IssuerRefused(SignedWSError):
    """The issuer refused a request.

    Attributes:
        status: the HTTP status (None: no HTTP response).
        code: the issuer's error code (SPEC.md §13.6), e.g. ``token_expired``.
        detail: its explanation.
    """

    def __init__(self, status: int | None, code: str, detail: str) -> None:
        self.status = status
        self.code = code
        self.detail = detail
        super().__init__(f"issuer refused ({status}): {code}: {detail}")


def _loopback(host: str | None) -> bool:
    if host is None:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class IssuerClient:
    """Fetches credentials from an issuer service.

    Args:
        url: the issuer's base URL (where `issuer_app` is mounted).
        login_token: the application's login token (e.g. an OIDC access
            token), or a coroutine function returning it.
        scheme: ``"mac"`` or ``"ed25519"``.
        private_key: the `ed25519` client key (generated if omitted; it never
            leaves this process).
        scopes: the scopes to ask for (None: all the login allows).
        lifetime: the credential lifetime to ask for (None: the issuer's).
        timeout: seconds per HTTP request.
        ssl_context: for ``https`` URLs.
    """

    def __init__(
        self,
        url: str,
        *,
        login_token: LoginToken,
        scheme: str = "mac",
        private_key: Ed25519PrivateKey | None = None,
        scopes: Iterable[str] | None = None,
        lifetime: int | None = None,
        timeout: float = 10.0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("https", "http") or parts.query or parts.fragment:
            raise UsageError("the issuer URL is an http(s) URL without query or fragment")
        if parts.scheme == "http" and not _loopback(parts.hostname):
            raise UsageError("credentials travel only over https (http: loopback hosts only)")
        if scheme not in ("mac", "ed25519"):
            raise UsageError("scheme is 'mac' or 'ed25519'")
        if private_key is not None and scheme != "ed25519":
            raise UsageError("a private key is for the ed25519 scheme")
        self.url = url.rstrip("/")
        self.scheme = scheme
        self._login_token = login_token
        self.private_key = (
            (private_key or Ed25519PrivateKey.generate()) if scheme == "ed25519" else None
        )
        self._scopes = None if scopes is None else sorted(set(scopes))
        self._lifetime = lifetime
        self._timeout = timeout
        self._ssl = ssl_context
        #: The last response document's ``server_keys`` (ed25519), if any.
        self.last_response: dict[str, Any] | None = None

    def __repr__(self) -> str:
        return f"IssuerClient({self.url!r}, scheme={self.scheme!r})"

    async def _token(self) -> str:
        token = self._login_token
        if not isinstance(token, str):
            token = await token()
        if not isinstance(token, str) or not token or any(c in token for c in "\r\n"):
            raise UsageError("login_token must be (or return) a non-empty one-line string")
        return token

    def _request(self, method: str, path: str, body: Any, token: str | None) -> dict[str, Any]:
        headers = {"Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        request = urllib.request.Request(  # noqa: S310 - scheme checked in __init__
            self.url + path, data=data, headers=headers, method=method
        )
        try:
            with urllib.request.urlopen(  # noqa: S310 - scheme checked in __init__
                request, timeout=self._timeout, context=self._ssl
            ) as response:
                raw = response.read(MAX_RESPONSE_SIZE + 1)
                status = response.status
        except urllib.error.HTTPError as exc:
            raw = exc.read(MAX_RESPONSE_SIZE + 1)
            status = exc.code
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise IssuerRefused(None, "unreachable", f"{type(reason).__name__}") from None
        try:
            document = parse_json(raw) if len(raw) <= MAX_RESPONSE_SIZE else None
        except (ValueError, UnicodeDecodeError):
            document = None
        if not isinstance(document, dict):
            raise IssuerRefused(status, "bad_response", "the issuer did not answer JSON")
        if status != 200:
            code = document.get("error")
            detail = document.get("detail")
            raise IssuerRefused(
                status,
                code if isinstance(code, str) else "error",
                detail if isinstance(detail, str) else "",
            )
        return document

    async def _call(self, method: str, path: str, body: Any, *, login: bool) -> dict[str, Any]:
        token = await self._token() if login else None
        return await asyncio.to_thread(self._request, method, path, body, token)

    def _asked(self) -> dict[str, Any]:
        body: dict[str, Any] = {}
        if self._scopes is not None:
            body["scopes"] = self._scopes
        if self._lifetime is not None:
            body["lifetime"] = self._lifetime
        return body

    async def credential(self) -> ClientCredential:
        """A fresh credential (the `connect` ``refresh`` callback).

        Raises:
            IssuerRefused: the issuer refused or could not be reached.
            KeyFormatError: the response is malformed.
        """
        if self.scheme == "mac":
            document = await self._call("POST", "/credentials/mac", self._asked(), login=True)
            self.last_response = document
            return credential_from_response(document)
        assert self.private_key is not None  # noqa: S101 - set for ed25519
        public = b64url_encode(self.private_key.public_key().to_bytes())
        got = await self._call("POST", "/challenge", {"public_key": public}, login=True)
        challenge_text, issuer = got.get("challenge"), got.get("issuer")
        if not isinstance(challenge_text, str) or not isinstance(issuer, str):
            raise KeyFormatError("issuer response: no challenge")
        challenge = b64url_decode(challenge_text)
        signature = self.private_key.sign(pop_input(issuer, challenge))
        body = {
            **self._asked(),
            "public_key": public,
            "challenge": challenge_text,
            "signature": b64url_encode(signature),
        }
        document = await self._call("POST", "/credentials/ed25519", body, login=True)
        self.last_response = document
        return credential_from_response(document, private_key=self.private_key)

    async def server_keys(self, *, now: float | None = None) -> dict[str, Ed25519PublicKey]:
        """The server keys valid now, from the issuer's ``jwks.json``.

        Raises:
            IssuerRefused, KeyFormatError.
        """
        document = await self._call("GET", "/jwks.json", None, login=False)
        return keys_from_jwks(document, now=time.time() if now is None else now)


#: What `connect` holds until the issuer's first credential arrives: a token
#: under a throwaway key, never signed with nor sent (`from_issuer` replaces it
#: before the connection opens).
_AWAITING_ISSUER: Final = Issuer("signedws-pending", "pending", HMACKey(bytes(32))).issue_token(
    subject="pending", now=0, lifetime=1, credential_id="pending"
)


async def from_issuer(
    issuer: IssuerClient, fetch_keys: bool
) -> tuple[ClientCredential, dict[str, Ed25519PublicKey] | None]:
    """A client's first credential from ``issuer`` and, for `ed25519` with
    ``fetch_keys``, the server keys it returned (else None)."""
    credential = await issuer.credential()
    document = issuer.last_response or {}
    if fetch_keys and issuer.scheme == "ed25519" and isinstance(document.get("server_keys"), dict):
        return credential, keys_from_jwks(document["server_keys"], now=time.time())
    return credential, None
