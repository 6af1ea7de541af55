"""``signedws demo``: honest clients and an attack gallery against a real server.

Everything runs on embedded defaults: throwaway keys, a real server on
127.0.0.1 (any free port), an honest `mac` client and an honest `ed25519`
client, then one attack per row of the gallery, each crafted with a plain
`websockets` client (honest bytes from the core, then mutated). The server's
own log says which rejection code each attack met; the table shows it next to
the close code the attacker saw. Exit status 0 means every attack was rejected
with the expected code and every honest message was delivered once, in order.

No network beyond the loopback interface; no file is written.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import asdict, dataclass
from typing import Final, Protocol, TextIO

from websockets.asyncio.client import ClientConnection as WebSocket
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.typing import Origin, Subprotocol

from ..credential import ClientCredential, Ed25519Credential, Issuer, MACCredential
from ..envelope import decode_hello
from ..keyring import Keyring
from ..keys import Ed25519PrivateKey, HMACKey
from ..revocation import RevocationSet
from ..server import ServerKey
from ..signer import Signer
from ..verifier import Verifier

__all__ = ["GALLERY", "Arsenal", "Attack", "Honest", "Outcome", "main", "run"]

AUDIENCE: Final = "wss://demo.signedws.invalid/ws"
ALLOWED_ORIGIN: Final = "https://app.signedws.invalid"
ISSUER: Final = "demo-login"
REVOKED_CID: Final = "stolen-laptop"
HONEST_MESSAGES: Final = 20
TIMEOUT: Final = 5.0


@dataclass(frozen=True, slots=True)
class Honest:
    """What one honest client saw."""

    scheme: str
    subject: str
    sent: int
    #: Messages the server's handler received, if once each and in order.
    delivered: int
    #: Authenticated server frames (echoes) the client verified.
    echoes: int
    ok: bool


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one attack met."""

    attack: str
    #: Whether the server refused it (closed the connection or the handshake).
    rejected: bool
    #: The close code the attacker saw, or None.
    close_code: int | None
    #: The HTTP status of a refused handshake, or None.
    status: int | None
    #: The rejection code the server logged (or ``"origin"`` for a 403).
    code: str | None
    #: The code the gallery expects.
    expected: str
    #: Rejected, with the expected code.
    ok: bool


class _Capture(logging.Handler):
    """Keeps the server's rejection records (code ids only) for the table."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.codes: list[str] = []
        self.changed = asyncio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        code = getattr(record, "signedws_code", None)
        if code is None and getattr(record, "signedws_status", None) == 403:
            code = "origin"
        if code is not None:
            self.codes.append(code)
            self.changed.set()

    async def next_code(self, start: int) -> str | None:
        """The first code logged after index ``start`` (waits a little)."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(TIMEOUT):
                while len(self.codes) <= start:
                    self.changed.clear()
                    await self.changed.wait()
        return self.codes[start] if len(self.codes) > start else None


class Arsenal(Protocol):
    """What an attack needs besides the server's URI: the server's verifier
    (for its limits), credentials from an issuer the server trusts, the
    credential id the server has revoked and a payload to send. The demo's
    throwaway world is one; the test suite's contract gallery
    (``tests/asyncio/gallery.py``) plays the same attacks with its own."""

    @property
    def verifier(self) -> Verifier:
        """The server's verifier."""

    @property
    def payload(self) -> str:
        """What the attacker's frames carry."""

    @property
    def revoked_cid(self) -> str:
        """A credential id the server revoked."""

    def token(
        self,
        subject: str = "mallory",
        *,
        now: float | None = None,
        lifetime: int = 900,
        audiences: tuple[str, ...] = (),
        credential_id: str | None = None,
    ) -> MACCredential:
        """A `mac` token from a trusted issuer."""

    def certificate(self, subject: str) -> Ed25519Credential:
        """An `ed25519` certificate from a trusted issuer."""


class _World:
    """Throwaway keys, credentials and the server's verifier (an `Arsenal`)."""

    payload = "transfer 100 to mallory"
    revoked_cid = REVOKED_CID

    def __init__(self) -> None:
        secret = HMACKey.generate()
        self.hmac_issuer = Issuer(ISSUER, "hmac-1", secret)
        self.ed_key = Ed25519PrivateKey.generate()
        self.ed_issuer = Issuer(ISSUER, "ed-1", self.ed_key)
        self.server_key = ServerKey("server-1", Ed25519PrivateKey.generate())
        self.client_key = Ed25519PrivateKey.generate()
        keyring = Keyring()
        keyring.add_hmac_key(ISSUER, "hmac-1", secret)
        keyring.add_ed25519_key(ISSUER, "ed-1", self.ed_key.public_key())
        revocations = RevocationSet().revoke_credential(ISSUER, REVOKED_CID)
        self.verifier = Verifier(
            keyring, audience=AUDIENCE, fleet_key=HMACKey.generate(), revocations=revocations
        )

    def token(
        self,
        subject: str = "mallory",
        *,
        now: float | None = None,
        lifetime: int = 900,
        audiences: tuple[str, ...] = (),
        credential_id: str | None = None,
    ) -> MACCredential:
        return self.hmac_issuer.issue_token(
            subject=subject,
            now=time.time() if now is None else now,
            lifetime=lifetime,
            audiences=audiences,
            credential_id=credential_id,
        )

    def certificate(self, subject: str) -> Ed25519Credential:
        cert = self.ed_issuer.issue_certificate(
            self.client_key.public_key(), subject=subject, now=time.time()
        )
        return Ed25519Credential(cert, self.client_key)


# -- the attacker's tools: a plain websockets client -----------------------------------


@contextlib.asynccontextmanager
async def _raw(uri: str, origin: str | None = None) -> AsyncIterator[tuple[WebSocket, bytes]]:
    async with ws_connect(
        uri,
        subprotocols=[Subprotocol("signedws.v1")],
        origin=None if origin is None else Origin(origin),
    ) as ws:
        hello = await ws.recv()
        assert isinstance(hello, bytes)  # noqa: S101 - the server sends binary hellos
        yield ws, hello


def _signer(hello: bytes, credential: ClientCredential) -> Signer:
    return Signer(credential, decode_hello(hello), now=time.time())


async def _closed_with(ws: WebSocket) -> int | None:
    """Read until the server closes; the close code it sent."""
    with contextlib.suppress(ConnectionClosed, TimeoutError):
        async with asyncio.timeout(TIMEOUT):
            while True:
                await ws.recv()
    return ws.close_code


def _flip_last(frame: bytes) -> bytes:
    return frame[:-1] + bytes([frame[-1] ^ 0x01])


#: An attack: against ``uri``, with ``world``; the close code it met, or minus
#: the HTTP status of a refused handshake.
Attack = Callable[[Arsenal, str], Awaitable["int | None"]]


async def _replay(world: Arsenal, uri: str) -> int | None:
    async with _raw(uri) as (ws, hello):
        frame = _signer(hello, world.token()).sign(world.payload, now=time.time())
        await ws.send(frame)
        await ws.send(frame)
        return await _closed_with(ws)


async def _cross_connection(world: Arsenal, uri: str) -> int | None:
    async with _raw(uri) as (ws, hello):
        frame = _signer(hello, world.token()).sign(world.payload, now=time.time())
        await ws.send(frame)
    async with _raw(uri) as (ws, _):
        await ws.send(frame)
        return await _closed_with(ws)


async def _forged_tag(world: Arsenal, uri: str) -> int | None:
    async with _raw(uri) as (ws, hello):
        frame = _signer(hello, world.token()).sign(world.payload, now=time.time())
        await ws.send(_flip_last(frame))
        return await _closed_with(ws)


async def _tampered_payload(world: Arsenal, uri: str) -> int | None:
    async with _raw(uri) as (ws, hello):
        frame = _signer(hello, world.token()).sign("pay 10 to bob", now=time.time())
        await ws.send(frame.replace(b"pay 10 to bob", b"pay 99 to eve"))
        return await _closed_with(ws)


async def _token_without_frame_key(world: Arsenal, uri: str) -> int | None:
    logged = world.token(subject="alice").token  # copied out of a proxy log
    guessed = MACCredential(logged, HMACKey.generate())  # the frame key never left alice
    async with _raw(uri) as (ws, hello):
        await ws.send(_signer(hello, guessed).sign(world.payload, now=time.time()))
        return await _closed_with(ws)


async def _expired(world: Arsenal, uri: str) -> int | None:
    credential = world.token(now=time.time() - 7200, lifetime=3600)
    async with _raw(uri) as (ws, hello):
        await ws.send(_signer(hello, credential).sign(world.payload, now=time.time()))
        return await _closed_with(ws)


async def _revoked(world: Arsenal, uri: str) -> int | None:
    credential = world.token(credential_id=world.revoked_cid)
    async with _raw(uri) as (ws, hello):
        await ws.send(_signer(hello, credential).sign(world.payload, now=time.time()))
        return await _closed_with(ws)


async def _other_audience(world: Arsenal, uri: str) -> int | None:
    credential = world.token(audiences=("wss://other.signedws.invalid/ws",))
    async with _raw(uri) as (ws, hello):
        await ws.send(_signer(hello, credential).sign(world.payload, now=time.time()))
        return await _closed_with(ws)


async def _oversized(world: Arsenal, uri: str) -> int | None:
    async with _raw(uri) as (ws, _):
        await ws.send(bytes(world.verifier.max_frame_size + 1))
        return await _closed_with(ws)


async def _garbage(world: Arsenal, uri: str) -> int | None:
    del world
    async with _raw(uri) as (ws, _):
        await ws.send(b"\xc1" + secrets.token_bytes(63))  # 0xc1 is never valid MessagePack
        return await _closed_with(ws)


async def _foreign_origin(world: Arsenal, uri: str) -> int | None:
    del world
    try:
        async with _raw(uri, origin="https://evil.signedws.invalid"):
            return None
    except InvalidStatus as exc:
        return -exc.response.status_code  # negative: an HTTP status


#: attack name, function, expected rejection code (``origin``: HTTP 403).
GALLERY: Final[list[tuple[str, Attack, str]]] = [
    ("replayed frame", _replay, "replay"),
    ("frame replayed onto another connection", _cross_connection, "nonce_mismatch"),
    ("forged tag", _forged_tag, "bad_tag"),
    ("tampered payload", _tampered_payload, "bad_tag"),
    ("logged token used without its frame key", _token_without_frame_key, "bad_tag"),
    ("expired credential", _expired, "credential_expired"),
    ("revoked credential", _revoked, "credential_revoked"),
    ("frame for another audience", _other_audience, "audience_mismatch"),
    ("page from a disallowed Origin", _foreign_origin, "origin"),
    ("oversized frame", _oversized, "frame_too_large"),
    ("garbage bytes", _garbage, "malformed"),
]


# -- the run ----------------------------------------------------------------------------


class _Printer:
    def __init__(self, out: TextIO, quiet: bool) -> None:
        self.out = out
        self.quiet = quiet

    def __call__(self, line: str = "") -> None:
        if not self.quiet:
            print(line, file=self.out, flush=True)


async def _honest(
    world: _World, uri: str, delivered: dict[str, list[str]], say: _Printer
) -> list[Honest]:
    from ..asyncio import connect  # noqa: PLC0415 - keeps `import signedws.cli.demo` light

    results = []
    server_keys = {world.server_key.kid: world.server_key.private_key.public_key()}
    for scheme, subject, credential in (
        ("mac", "alice", world.token(subject="alice")),
        ("ed25519", "bob", world.certificate("bob")),
    ):
        sent = [f"{subject} #{i}" for i in range(1, HONEST_MESSAGES + 1)]
        async with connect(uri, credential, audience=AUDIENCE, server_keys=server_keys) as client:
            for payload in sent:
                await client.send(payload)
            echoes = [await client.recv() for _ in sent]
            await client.drain()
        got = delivered.get(subject, [])
        ok = got == sent and echoes == sent
        say(
            f"  {scheme:<8} {subject:<6} {len(sent)} sent, {len(got)} delivered once and in "
            f"order, {len(echoes)} authenticated echoes  {'ok' if ok else 'FAILED'}"
        )
        results.append(Honest(scheme, subject, len(sent), len(got), len(echoes), ok))
    return results


async def run(out: TextIO = sys.stdout, *, as_json: bool = False) -> int:
    """Run the demo; print the table (or, with ``as_json``, one JSON document).

    Returns:
        0 if every attack was rejected with its expected code and every honest
        message delivered once and in order, else 1.
    """
    from ..asyncio import ServerConnection, serve  # noqa: PLC0415

    say = _Printer(out, quiet=as_json)
    world = _World()
    delivered: dict[str, list[str]] = {}

    async def handler(connection: ServerConnection) -> None:
        async for message in connection:
            delivered.setdefault(message.subject, []).append(str(message.payload))
            await connection.send(message.payload)  # type: ignore[arg-type]

    server_log = logging.getLogger("signedws.server")
    capture = _Capture()
    saved = server_log.propagate, server_log.level
    server_log.addHandler(capture)
    server_log.propagate = False
    server_log.setLevel(logging.INFO)
    try:
        async with serve(
            handler,
            "127.0.0.1",
            0,
            verifier=world.verifier,
            origins=[ALLOWED_ORIGIN],
            allow_no_origin=True,
            server_key=world.server_key,
            first_frame_timeout=TIMEOUT,
        ) as server:
            port = server.sockets[0].getsockname()[1]
            uri = f"ws://127.0.0.1:{port}"
            say(f"signedws demo: server on {uri}, audience {AUDIENCE!r}, throwaway keys")
            say()
            say("honest clients")
            honest = await _honest(world, uri, delivered, say)
            say()
            say("attack gallery (each crafted with a plain websockets client)")
            say(f"  {'#':>2}  {'attack':<42} {'result':<10} {'close':<9} code")
            outcomes = []
            for number, (name, attack, expected) in enumerate(GALLERY, 1):
                start = len(capture.codes)
                try:
                    seen = await attack(world, uri)
                except (OSError, ConnectionClosed, InvalidStatus) as exc:
                    seen = None
                    say(f"  {number:>2}  {name:<42} error: {type(exc).__name__}")
                code = await capture.next_code(start)
                status = -seen if seen is not None and seen < 0 else None
                close_code = seen if seen is not None and seen > 0 else None
                rejected = status is not None or (close_code is not None and close_code != 1000)
                outcome = Outcome(
                    name,
                    rejected,
                    close_code,
                    status,
                    code,
                    expected,
                    rejected and code == expected,
                )
                outcomes.append(outcome)
                shown = f"HTTP {status}" if status is not None else str(close_code)
                verdict = "rejected" if rejected else "ACCEPTED"
                mark = "" if outcome.ok else f"   <- expected {expected}"
                say(f"  {number:>2}  {name:<42} {verdict:<10} {shown:<9} {code}{mark}")
    finally:
        server_log.removeHandler(capture)
        server_log.propagate, _ = saved
        server_log.setLevel(saved[1])
    attacks_ok = sum(o.ok for o in outcomes)
    honest_ok = all(h.ok for h in honest)
    messages = sum(h.delivered for h in honest)
    passed = attacks_ok == len(outcomes) and honest_ok
    say()
    say(
        f"summary: {attacks_ok}/{len(outcomes)} attacks rejected with the expected code, "
        f"{messages}/{HONEST_MESSAGES * len(honest)} honest messages delivered: "
        f"{'PASS' if passed else 'FAIL'}"
    )
    if as_json:
        document = {
            "server": uri,
            "audience": AUDIENCE,
            "honest": [asdict(h) for h in honest],
            "attacks": [asdict(o) for o in outcomes],
            "passed": passed,
        }
        print(json.dumps(document, indent=2), file=out, flush=True)
    return 0 if passed else 1


def main(*, as_json: bool = False) -> int:
    """Run the demo in a new event loop (what ``signedws demo`` calls)."""
    return asyncio.run(run(as_json=as_json))
