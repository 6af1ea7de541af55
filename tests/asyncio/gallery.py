"""The attack gallery, each attack crafted with a plain websockets client:
honest bytes from the core, then mutated. Each row is an attack, the close
code (or HTTP status) the attacker must see and the code the server must log.

tests/servers/test_server_contract.py plays every row against every server
adapter, and with all logging on checks that no secret reaches a log line.
"""

from __future__ import annotations

import base64
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aio_support import (
    CLIENT_KEY,
    Running,
    certificate,
    closed_with,
    raw,
    signer_for,
    token,
)
from websockets.exceptions import InvalidStatus

from signedws import HMACKey, MACCredential

REVOKED_CID = "revoked-cid"
SECRET_PAYLOAD = "top secret payload 7f3a"

Attack = Callable[[Running], Awaitable["int | None"]]
used_credentials: list[MACCredential] = []


def _token(**kwargs: Any) -> MACCredential:
    credential = token("mallory", **kwargs)
    used_credentials.append(credential)
    return credential


async def replayed_frame(srv: Running) -> int | None:
    async with raw(srv.uri) as (ws, hello):
        frame = signer_for(hello, _token()).sign(SECRET_PAYLOAD, now=time.time())
        await ws.send(frame)
        await ws.send(frame)
        return await closed_with(ws)


async def replayed_onto_another_connection(srv: Running) -> int | None:
    async with raw(srv.uri) as (ws, hello):
        frame = signer_for(hello, _token()).sign(SECRET_PAYLOAD, now=time.time())
        await ws.send(frame)
    async with raw(srv.uri) as (ws, _):
        await ws.send(frame)
        return await closed_with(ws)


async def forged_tag(srv: Running) -> int | None:
    async with raw(srv.uri) as (ws, hello):
        frame = signer_for(hello, _token()).sign(SECRET_PAYLOAD, now=time.time())
        await ws.send(frame[:-32] + secrets.token_bytes(32))
        return await closed_with(ws)


async def tampered_payload(srv: Running) -> int | None:
    async with raw(srv.uri) as (ws, hello):
        frame = signer_for(hello, _token()).sign("pay 10 to bob", now=time.time())
        await ws.send(frame.replace(b"pay 10 to bob", b"pay 99 to eve"))
        return await closed_with(ws)


async def token_without_frame_key(srv: Running) -> int | None:
    logged = _token().token
    async with raw(srv.uri) as (ws, hello):
        forged = MACCredential(logged, HMACKey.generate())
        await ws.send(signer_for(hello, forged).sign(SECRET_PAYLOAD, now=time.time()))
        return await closed_with(ws)


async def expired_credential(srv: Running) -> int | None:
    credential = _token(now=time.time() - 7200, lifetime=3600)
    async with raw(srv.uri) as (ws, hello):
        await ws.send(signer_for(hello, credential).sign(SECRET_PAYLOAD, now=time.time()))
        return await closed_with(ws)


async def revoked_credential(srv: Running) -> int | None:
    credential = _token(credential_id=REVOKED_CID)
    async with raw(srv.uri) as (ws, hello):
        await ws.send(signer_for(hello, credential).sign(SECRET_PAYLOAD, now=time.time()))
        return await closed_with(ws)


async def frame_for_another_audience(srv: Running) -> int | None:
    credential = _token(audiences=["wss://elsewhere.example/ws"])
    async with raw(srv.uri) as (ws, hello):
        await ws.send(signer_for(hello, credential).sign(SECRET_PAYLOAD, now=time.time()))
        return await closed_with(ws)


async def disallowed_origin(srv: Running) -> int | None:
    try:
        async with raw(srv.uri, origin="https://evil.example"):
            return None
    except InvalidStatus as exc:
        return exc.response.status_code


async def oversized_frame(srv: Running) -> int | None:
    async with raw(srv.uri) as (ws, _):
        await ws.send(bytes(srv.verifier.max_frame_size + 1))
        return await closed_with(ws)


async def garbage_bytes(srv: Running) -> int | None:
    async with raw(srv.uri) as (ws, _):
        await ws.send(b"\xc1" + secrets.token_bytes(40))
        return await closed_with(ws)


async def forged_ed25519_signature(srv: Running) -> int | None:
    async with raw(srv.uri) as (ws, hello):
        frame = signer_for(hello, certificate("mallory")).sign(SECRET_PAYLOAD, now=time.time())
        await ws.send(frame[:-64] + CLIENT_KEY.sign(b"something else"))
        return await closed_with(ws)


async def text_frame(srv: Running) -> int | None:
    async with raw(srv.uri) as (ws, _):
        await ws.send(SECRET_PAYLOAD)
        return await closed_with(ws)


#: attack, what the attacker sees (close code, or HTTP status), the logged code.
GALLERY: list[tuple[Attack, int, str]] = [
    (replayed_frame, 4409, "replay"),
    (replayed_onto_another_connection, 4401, "nonce_mismatch"),
    (forged_tag, 4401, "bad_tag"),
    (tampered_payload, 4401, "bad_tag"),
    (token_without_frame_key, 4401, "bad_tag"),
    (expired_credential, 4419, "credential_expired"),
    (revoked_credential, 4403, "credential_revoked"),
    (frame_for_another_audience, 4401, "audience_mismatch"),
    (disallowed_origin, 403, "origin"),
    (oversized_frame, 1009, "frame_too_large"),
    (garbage_bytes, 4400, "malformed"),
    (forged_ed25519_signature, 4401, "bad_signature"),
    (text_frame, 4400, "malformed"),
]

#: Attacks whose first frame is honest, so the handler sees exactly that one.
HONEST_FIRST = {replayed_frame, replayed_onto_another_connection}


def forms(secret: bytes) -> list[str]:
    """Ways a secret could appear in text."""
    return [
        secret.hex(),
        secret.hex().upper(),
        base64.b64encode(secret).decode().rstrip("="),
        base64.urlsafe_b64encode(secret).decode().rstrip("="),
        repr(secret)[2:-1],
    ]
