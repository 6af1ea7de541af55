"""The attack gallery, each attack crafted with a plain websockets client:
honest bytes from the core, then mutated. Each row is an attack, the close
code (or HTTP status) the attacker must see and the code the server must log.

The rows are `signedws demo`'s own attacks (`signedws.cli.demo.GALLERY`),
played with the test suite's keys, then a few the demo does not show.

tests/servers/test_server_contract.py plays every row against every server
adapter, and with all logging on checks that no secret reaches a log line.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Awaitable, Callable

from aio_support import (
    CLIENT_KEY,
    Running,
    certificate,
    closed_with,
    raw,
    signer_for,
    token,
)

from signedws import Ed25519Credential, MACCredential
from signedws.cli import demo

REVOKED_CID = "revoked-cid"
SECRET_PAYLOAD = "top secret payload 7f3a"

Attack = Callable[[Running], Awaitable["int | None"]]
used_credentials: list[MACCredential] = []


class _Arsenal:
    """`signedws.cli.demo.Arsenal` over the test suite's fixed keys: every
    credential it issues is recorded (the no-secret-in-logs test looks for
    their tokens and frame keys in the logs)."""

    payload = SECRET_PAYLOAD
    revoked_cid = REVOKED_CID

    def __init__(self, srv: Running) -> None:
        self.verifier = srv.verifier

    def token(
        self,
        subject: str = "mallory",
        *,
        now: float | None = None,
        lifetime: int = 900,
        audiences: tuple[str, ...] = (),
        credential_id: str | None = None,
    ) -> MACCredential:
        credential = token(
            subject, now=now, lifetime=lifetime, audiences=audiences, credential_id=credential_id
        )
        used_credentials.append(credential)
        return credential

    def certificate(self, subject: str) -> Ed25519Credential:
        return certificate(subject)


def _from_demo(name: str, attack: demo.Attack) -> Attack:
    """The demo's ``attack`` against a test server; an HTTP status as is."""

    async def play(srv: Running) -> int | None:
        seen = await attack(_Arsenal(srv), srv.uri)
        return -seen if seen is not None and seen < 0 else seen

    play.__name__ = play.__qualname__ = name.replace(" ", "_").replace("-", "_")
    return play


#: What the attacker sees for each of the demo's expected codes: the close
#: code, or the HTTP status (a refused Origin).
SEEN = {
    "replay": 4409,
    "nonce_mismatch": 4401,
    "bad_tag": 4401,
    "credential_expired": 4419,
    "credential_revoked": 4403,
    "audience_mismatch": 4401,
    "origin": 403,
    "frame_too_large": 1009,
    "malformed": 4400,
    "bad_signature": 4401,
}

DEMO_ROWS = {name: _from_demo(name, attack) for name, attack, _ in demo.GALLERY}


async def forged_ed25519_signature(srv: Running) -> int | None:
    async with raw(srv.uri) as (ws, hello):
        frame = signer_for(hello, certificate("mallory")).sign(SECRET_PAYLOAD, now=time.time())
        await ws.send(frame[:-64] + CLIENT_KEY.sign(b"something else"))
        return await closed_with(ws)


async def text_frame(srv: Running) -> int | None:
    async with raw(srv.uri) as (ws, _):
        await ws.send(SECRET_PAYLOAD)
        return await closed_with(ws)


#: attack, what the attacker sees (close code, or HTTP status), the logged code:
#: the demo's gallery (`signedws.cli.demo.GALLERY`), then attacks of its own.
GALLERY: list[tuple[Attack, int, str]] = [
    *((DEMO_ROWS[name], SEEN[code], code) for name, _, code in demo.GALLERY),
    (forged_ed25519_signature, 4401, "bad_signature"),
    (text_frame, 4400, "malformed"),
]

#: Attacks whose first frame is honest, so the handler sees exactly that one.
HONEST_FIRST = {DEMO_ROWS["replayed frame"], DEMO_ROWS["frame replayed onto another connection"]}


def forms(secret: bytes) -> list[str]:
    """Ways a secret could appear in text."""
    return [
        secret.hex(),
        secret.hex().upper(),
        base64.b64encode(secret).decode().rstrip("="),
        base64.urlsafe_b64encode(secret).decode().rstrip("="),
        repr(secret)[2:-1],
    ]
