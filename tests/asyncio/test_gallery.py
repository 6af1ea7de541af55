"""The attack gallery against a real server, each attack crafted with a plain
websockets client: honest bytes from the core, then mutated.

Every row checks the close code the attacker sees and the code the server logs,
and that the handler never saw the attack's payload. The last test plays every
row with all logging on and checks that no secret reached any log line.
"""

from __future__ import annotations

import base64
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aio_support import (
    AUDIENCE,
    CLIENT_KEY,
    ISSUER,
    SECRETS,
    Running,
    certificate,
    closed_with,
    codes_logged,
    make_verifier,
    raw,
    running,
    signer_for,
    token,
)
from websockets.exceptions import InvalidStatus

from signedws import HMACKey, MACCredential, RevocationSet
from signedws.asyncio import connect

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


def gallery_server() -> Any:
    revocations = RevocationSet().revoke_credential(ISSUER, REVOKED_CID)
    return running(verifier=make_verifier(revocations=revocations))


@pytest.mark.parametrize(
    ("attack", "seen", "code"), GALLERY, ids=[attack.__name__ for attack, _, _ in GALLERY]
)
def test_attack_is_rejected(
    run: Any, caplog: pytest.LogCaptureFixture, attack: Attack, seen: int, code: str
) -> None:
    """The attack is refused with the expected close code (or HTTP status), the
    server logs the expected code, and no forged payload reaches the handler."""
    caplog.set_level(logging.INFO, logger="signedws")

    async def main() -> list[object]:
        async with gallery_server() as srv:
            assert await attack(srv) == seen
            return srv.recorder.payloads()

    delivered = run(main())
    expected_delivered = [SECRET_PAYLOAD] if attack in HONEST_FIRST else []
    assert delivered == expected_delivered
    if code == "origin":
        assert any("origin not allowed" in r.getMessage() for r in caplog.records)
    else:
        assert codes_logged(caplog) == [code]


def _forms(secret: bytes) -> list[str]:
    """Ways a secret could appear in text."""
    return [
        secret.hex(),
        secret.hex().upper(),
        base64.b64encode(secret).decode().rstrip("="),
        base64.urlsafe_b64encode(secret).decode().rstrip("="),
        repr(secret)[2:-1],
    ]


def test_no_secret_in_any_log_line(run: Any, caplog: pytest.LogCaptureFixture) -> None:
    """With every logger at DEBUG, the whole gallery and an honest session log no
    key, token, frame key, signature or payload."""
    caplog.set_level(logging.DEBUG)
    used_credentials.clear()

    async def main() -> None:
        async with gallery_server() as srv:
            for attack, _, _ in GALLERY:
                await attack(srv)
            honest = _token()
            async with connect(srv.uri, honest, audience=AUDIENCE) as client:
                await client.send(SECRET_PAYLOAD)
                await client.drain()

    run(main())
    text = "\n".join(
        f"{r.getMessage()} {r.exc_text or ''} {getattr(r, 'signedws_code', '')}"
        for r in caplog.records
        if r.name.startswith("signedws")
    )
    assert "rejected connection=" in text  # the capture works
    secrets_seen = dict(SECRETS)
    for i, credential in enumerate(used_credentials):
        secrets_seen[f"token {i}"] = credential.token
        secrets_seen[f"frame key {i}"] = credential.frame_key.to_bytes()
        secrets_seen[f"token tag {i}"] = credential.token[-32:]
    for name, secret in secrets_seen.items():
        for form in _forms(secret):
            assert form not in text, name
    # (websockets' own DEBUG log shows frame excerpts; that is its business, and
    # `signedws serve` keeps it at WARNING.)
    assert SECRET_PAYLOAD not in text
    assert "pay 10 to bob" not in text
