"""The JavaScript client's demo: a page, a demo issuer and a real signedws server.

Run from the repository root (with the Python package installed)::

    python clients/js/demo/serve.py            # then open the printed URL

It starts, on 127.0.0.1:

- an HTTP **origin** that serves the demo page (``/demo/``), the package's
  ES modules (``/src/``, and ``@msgpack/msgpack`` from ``node_modules``) and a
  tiny **demo issuer**: ``POST /enrol/mac`` returns a `mac` token and its frame
  key, ``POST /enrol/ed25519`` with a public key returns a certificate. It
  hands credentials to anyone who asks: a stand-in for your login service;
- a **signedws server** (`signedws.asyncio.serve`) whose Origin allow-list is
  that HTTP origin only, with an echo handler;
- with ``--foreign``, a second HTTP server on another port serving the same
  page and issuer: a *disallowed* origin, whose WebSocket handshakes the
  server refuses with HTTP 403 (Cross-Site WebSocket Hijacking, SPEC.md §11.2).

One JSON line on stdout says where everything is. ``GET /events`` returns what
the server verified and refused (the tests read it). ``--test-hooks`` makes the
echo handler drop the connection, without acknowledging, on the message
``!drop`` (to test resends).

This module is demo and test scaffolding for ``clients/js``, not part of the
``signedws`` package.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http
import json
import logging
import mimetypes
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Final

from websockets.asyncio.server import ServerConnection as WebSocket
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from signedws import Ed25519PrivateKey, Ed25519PublicKey, HMACKey, Issuer, Keyring, Verifier
from signedws.asyncio import ServerConnection, serve
from signedws.asyncio.topics import LocalTopics
from signedws.server import ServerKey

ROOT: Final = Path(__file__).resolve().parents[1]  # clients/js
#: What the HTTP origin serves, relative to clients/js. Nothing else.
SERVED: Final = ("demo/", "src/", "node_modules/@msgpack/msgpack/dist.esm/")
ISSUER: Final = "demo-issuer"
SERVER_KID: Final = "demo-server-1"
MAX_BODY: Final = 4096
#: The demo's one room (a topic, SPEC.md §14).
ROOM: Final = "room"

mimetypes.add_type("text/javascript", ".js")
mimetypes.add_type("text/javascript", ".mjs")


class Demo:
    """Keys, issuers, the verifier and the event log, shared by every server."""

    def __init__(self, *, audience: str, lifetime: int, test_hooks: bool) -> None:
        self.audience = audience
        self.lifetime = lifetime
        self.test_hooks = test_hooks
        hmac_secret = HMACKey.generate()
        issuer_key = Ed25519PrivateKey.generate()
        self.mac_issuer = Issuer(ISSUER, "mac-1", hmac_secret)
        self.cert_issuer = Issuer(ISSUER, "ed-1", issuer_key)
        keyring = Keyring()
        keyring.add_hmac_key(ISSUER, "mac-1", hmac_secret)
        keyring.add_ed25519_key(ISSUER, "ed-1", issuer_key.public_key())
        self.fleet_key = HMACKey.generate()
        self.verifier = Verifier(keyring, audience=audience, fleet_key=self.fleet_key)
        self.hmac_secret, self.issuer_key = hmac_secret, issuer_key
        self.issuer_url = ""  # the real issuer service (SPEC.md §13), with --oidc-issuer
        self.server_key = ServerKey(SERVER_KID, Ed25519PrivateKey.generate())
        self.room = LocalTopics(audience, server_key=self.server_key)
        self.ws_url = ""
        self._events: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def record(self, **event: Any) -> None:
        event["time"] = time.time()
        with self._lock:
            self._events.append(event)

    def events(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._events)

    def config(self) -> dict[str, Any]:
        public = self.server_key.private_key.public_key().to_bytes().hex()
        return {
            "ws_url": self.ws_url,
            "audience": self.audience,
            "server_keys": {SERVER_KID: public},
            "issuer_url": self.issuer_url,
        }

    def enrol(self, scheme: str, body: dict[str, Any]) -> dict[str, Any]:
        subject = body.get("subject", "demo-user")
        lifetime = int(body.get("lifetime", self.lifetime))
        if not isinstance(subject, str) or not 1 <= lifetime <= 86400:
            raise ValueError("bad subject or lifetime")
        common: dict[str, Any] = {
            "subject": subject,
            "now": time.time(),
            "lifetime": lifetime,
            "scopes": ["demo"],
            "audiences": [self.audience],
        }
        if scheme == "mac":
            credential = self.mac_issuer.issue_token(**common)
            self.record(type="issued", scheme="mac", cid=credential.cid, subject=subject)
            return {
                "token": credential.token.hex(),
                "frame_key": credential.frame_key.to_bytes().hex(),
                "cid": credential.cid,
                "exp": credential.claims.exp,
            }
        public_key = Ed25519PublicKey(bytes.fromhex(body["public_key"]))
        certificate = self.cert_issuer.issue_certificate(public_key, **common)
        self.record(
            type="issued", scheme="ed25519", subject=subject, public_key=body["public_key"]
        )
        return {"certificate": certificate.hex(), "exp": int(common["now"]) + lifetime}

    # -- the signedws server ----------------------------------------------------

    async def handler(self, connection: ServerConnection) -> None:
        """Echo every verified message, naming who signed it; a message
        ``/room <text>`` goes to the room instead: every connection that
        spoke is subscribed to the topic ``room`` (SPEC.md §14), and the room
        gets ``<subject>: <text>`` as a broadcast frame."""
        try:
            await self._serve_connection(connection)
        finally:
            self.room.unsubscribe_all(connection)

    async def _serve_connection(self, connection: ServerConnection) -> None:
        async for message in connection:
            self.room.subscribe(connection, ROOM)
            payload = message.payload
            shown = payload if isinstance(payload, str) else f"<{len(payload or b'')} bytes>"
            self.record(
                type="message",
                connection=str(connection.id),
                subject=message.subject,
                issuer=message.issuer,
                cid=message.credential_id,
                counter=message.counter,
                stream=message.stream.hex(),
                seq=message.seq,
                payload=shown,
            )
            if self.test_hooks and payload == "!drop":
                # Gone without a close frame or an acknowledgement: the client
                # must reconnect and resend. Messages already verified are
                # still handled (recv returns them), so none is lost.
                connection.transport.websocket.transport.abort()  # type: ignore[union-attr]
                continue
            if isinstance(payload, str) and payload.startswith("/room "):
                await self.room.publish(ROOM, f"{message.subject}: {payload[6:]}")
                continue
            with contextlib.suppress(ConnectionClosed):
                await connection.send(f"{message.subject} (seq {message.seq}) said: {shown}")

    def process_response(self, websocket: WebSocket, request: Request, response: Response) -> None:
        seen = {
            "origin": request.headers.get("Origin"),
            "path": request.path,
            "cookie": "Cookie" in request.headers,
            "authorization": "Authorization" in request.headers,
        }
        if response.status_code == http.HTTPStatus.SWITCHING_PROTOCOLS:
            self.record(type="handshake", status=101, connection=str(websocket.id), **seen)
        else:
            self.record(type="refused", status=response.status_code, **seen)


def http_handler(demo: Demo) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "signedws-demo"

        def log_message(self, format: str, *args: Any) -> None:
            logging.getLogger("signedws.demo.http").debug(format, *args)

        def _send(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def _json(self, status: int, document: object) -> None:
            self._send(status, json.dumps(document).encode(), "application/json")

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path in ("/", "/demo"):
                self.send_response(http.HTTPStatus.FOUND)
                self.send_header("Location", "/demo/")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if path == "/config":
                self._json(200, demo.config())
                return
            if path == "/events":
                self._json(200, demo.events())
                return
            if path.endswith("/"):
                path += "index.html"
            relative = path.lstrip("/")
            target = (ROOT / relative).resolve()
            if (
                not any(relative.startswith(prefix) for prefix in SERVED)
                or ROOT not in target.parents
                or not target.is_file()
            ):
                self._send(404, b"not found\n", "text/plain")
                return
            kind = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
            self._send(200, target.read_bytes(), kind)

        def do_POST(self) -> None:
            scheme = {"/enrol/mac": "mac", "/enrol/ed25519": "ed25519"}.get(self.path)
            size = int(self.headers.get("Content-Length") or 0)
            if scheme is None or size > MAX_BODY:
                self._send(404, b"not found\n", "text/plain")
                return
            try:
                body = json.loads(self.rfile.read(size) or b"{}")
                self._json(200, demo.enrol(scheme, body))
            except (ValueError, KeyError, TypeError) as exc:
                self._json(400, {"error": type(exc).__name__})

    return Handler


def start_http(demo: Demo, host: str, port: int) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer((host, port), http_handler(demo))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


async def start_issuer(demo: Demo, args: argparse.Namespace, origin: str) -> Any:
    """The real issuer service (signedws.asyncio.issuer) under uvicorn, on its
    own port, for the page's origin (CORS): it mints with the demo's keys for
    callers holding an access token of the OpenID Provider ``--oidc-issuer``."""
    # Only this option needs uvicorn, Starlette and PyJWT (signedws[issuer]).
    import uvicorn  # noqa: PLC0415

    from signedws.asyncio.issuer import BearerTokenAuthenticator, issuer_app  # noqa: PLC0415
    from signedws.issuer import IssuancePolicy, IssuerService  # noqa: PLC0415

    lifetime = demo.lifetime

    service = IssuerService.build(
        IssuancePolicy((demo.audience,), mac_lifetime=lifetime, ed25519_lifetime=lifetime),
        mac_key=(ISSUER, "mac-1", demo.hmac_secret),
        ed25519_key=(ISSUER, "ed-1", demo.issuer_key),
        fleet_key=("demo-fleet", demo.fleet_key),
        server_keys=[demo.server_key],
    )
    login = BearerTokenAuthenticator(
        jwks_url=args.oidc_jwks_url or f"{args.oidc_issuer}/jwks",
        issuer=args.oidc_issuer,
        audience=args.oidc_audience,
        jwks_refresh_cooldown=0.0,
    )
    app = issuer_app(service, authenticate=login, origins=[origin])
    config = uvicorn.Config(app, host=args.host, port=0, lifespan="off", log_config=None)
    config.load()
    server = uvicorn.Server(config)
    server.lifespan = config.lifespan_class(config)
    await server.startup()
    demo.issuer_url = f"http://{args.host}:{server.servers[0].sockets[0].getsockname()[1]}"
    return server


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000, help="HTTP origin port (0: any)")
    parser.add_argument("--ws-port", type=int, default=0, help="WebSocket port (0: any)")
    parser.add_argument("--foreign", action="store_true", help="also serve a disallowed origin")
    parser.add_argument(
        "--allow-no-origin", action="store_true", help="accept non-browser clients"
    )
    parser.add_argument("--lifetime", type=int, default=900, help="credential lifetime, seconds")
    parser.add_argument("--ack-delay", type=float, default=0.02, help="seconds")
    parser.add_argument("--test-hooks", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument(
        "--oidc-issuer",
        help="also run the real issuer service, accepting this OpenID Provider's access tokens",
    )
    parser.add_argument("--oidc-audience", help="the aud of those tokens (with --oidc-issuer)")
    parser.add_argument("--oidc-jwks-url", help="the provider's JWKS URL (with --oidc-issuer)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    demo = Demo(
        audience=f"signedws-demo-{secrets.token_hex(4)}",
        lifetime=args.lifetime,
        test_hooks=args.test_hooks,
    )
    origin_server = start_http(demo, args.host, args.port)
    origin = f"http://{args.host}:{origin_server.server_address[1]}"
    foreign = start_http(demo, args.host, 0) if args.foreign else None
    async with serve(
        demo.handler,
        args.host,
        args.ws_port,
        verifier=demo.verifier,
        origins=[origin],
        allow_no_origin=args.allow_no_origin,
        server_key=demo.server_key,
        ack_delay=args.ack_delay,
        process_response=demo.process_response,
    ) as server:
        ws_port = server.sockets[0].getsockname()[1]
        demo.ws_url = f"ws://{args.host}:{ws_port}/"
        issuer = await start_issuer(demo, args, origin) if args.oidc_issuer else None
        where = {
            "http": origin,
            "ws": demo.ws_url,
            "audience": demo.audience,
            "page": f"{origin}/demo/",
        }
        if foreign is not None:
            where["foreign"] = f"http://{args.host}:{foreign.server_address[1]}"
        if issuer is not None:
            where["issuer"] = demo.issuer_url
        print(json.dumps(where), flush=True)
        try:
            await asyncio.Future()
        finally:
            if issuer is not None:
                await issuer.shutdown()
            origin_server.shutdown()
            if foreign is not None:
                foreign.shutdown()


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())
