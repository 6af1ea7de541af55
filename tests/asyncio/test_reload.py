"""Key rotation and revocation while the server runs (SPEC.md §3.1, §4.6)."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from pathlib import Path
from typing import Any

import pytest
from aio_support import (
    AUDIENCE,
    ED_ISSUER_KEY,
    ED_KID,
    HMAC_KID,
    HMAC_SECRET,
    ISSUER,
    Recorder,
    codes_logged,
    make_verifier,
    running,
    token,
)

from signedws import Code, HMACKey, Issuer, RevocationSet, key_to_jwk
from signedws.asyncio import Refused, Reloader, connect

NEW_SECRET = HMACKey(bytes(range(50, 82)))


def write_atomically(path: Path, document: object) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(document))
    os.replace(tmp, path)


def keyring_document(*, retire_old_at: int | None = None, with_new: bool = False) -> object:
    old = key_to_jwk(HMAC_SECRET, HMAC_KID)
    if retire_old_at is not None:
        old = {**old, "exp": retire_old_at}
    keys: list[object] = [old, key_to_jwk(ED_ISSUER_KEY.public_key(), ED_KID)]
    if with_new:
        keys.append(key_to_jwk(NEW_SECRET, "h2"))
    return {"issuers": {ISSUER: keys}}


def test_revocation_takes_effect_on_open_connections(run: Any) -> None:
    """Replacing the revocation set closes a revoked client's connection at its
    next frame (4403), without a restart; other clients go on."""

    async def main() -> None:
        async with running() as srv:
            alice, bob = token("alice"), token("bob")
            async with (
                connect(srv.uri, alice, audience=AUDIENCE) as a,
                connect(srv.uri, bob, audience=AUDIENCE) as b,
            ):
                await a.send("a1")
                await b.send("b1")
                await a.drain()
                await b.drain()
                srv.verifier.revocations = RevocationSet().revoke_credential(ISSUER, alice.cid)
                await a.send("a2")
                with pytest.raises(Refused) as info:
                    await a.recv()
                assert info.value.code is Code.CREDENTIAL_REVOKED
                await b.send("b2")
                await b.drain()
            assert sorted(srv.recorder.payloads()) == ["a1", "b1", "b2"]  # type: ignore[type-var]

    run(main())


def test_key_rotation_from_files_while_running(
    run: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A reloaded keyring adds a new issuer key (its tokens work at once) and
    retires the old one (its tokens fail at their next frame: unknown_key)."""
    caplog.set_level(logging.INFO, logger="signedws")
    keyring_file = tmp_path / "keyring.json"
    write_atomically(keyring_file, keyring_document())

    async def main() -> None:
        verifier = make_verifier()
        reloader = Reloader(verifier, keyring=keyring_file, interval=0.02)
        watcher = asyncio.create_task(reloader.run())
        try:
            async with running(verifier=verifier) as srv:
                old = token("alice")
                async with connect(srv.uri, old, audience=AUDIENCE) as client:
                    await client.send("before")
                    await client.drain()
                    write_atomically(
                        keyring_file,
                        keyring_document(retire_old_at=int(time.time()) - 1, with_new=True),
                    )
                    async with asyncio.timeout(5):
                        while verifier.keyring.issuers and len(verifier.keyring) < 3:
                            await asyncio.sleep(0.01)
                    await client.send("after")
                    with pytest.raises(Refused) as info:
                        await client.recv()
                    assert info.value.close_code == 4401
                new = Issuer(ISSUER, "h2", NEW_SECRET).issue_token(
                    subject="alice", now=time.time()
                )
                async with connect(srv.uri, new, audience=AUDIENCE) as client:
                    await client.send("rotated")
                    await client.drain()
                assert srv.recorder.payloads() == ["before", "rotated"]
        finally:
            watcher.cancel()

    run(main())
    assert "unknown_key" in codes_logged(caplog)
    assert any("reloaded keyring" in r.getMessage() for r in caplog.records)


def test_revocation_file_reload(run: Any, tmp_path: Path) -> None:
    """A revocation file rewritten while running is picked up by check()."""
    revocations_file = tmp_path / "revoked.json"
    write_atomically(revocations_file, RevocationSet().to_dict())

    async def main() -> None:
        async with running(Recorder()) as srv:
            reloader = Reloader(srv.verifier, revocations=revocations_file)
            assert reloader.check() == []  # unchanged since creation
            credential = token("carol")
            async with connect(srv.uri, credential, audience=AUDIENCE) as client:
                await client.send("c1")
                await client.drain()
                revoked = RevocationSet().revoke_subject(
                    ISSUER, "carol", before=int(time.time()) + 5
                )
                write_atomically(revocations_file, revoked.to_dict())
                assert reloader.check() == ["revocations"]
                await client.send("c2")
                with pytest.raises(Refused) as info:
                    await client.recv()
                assert info.value.code is Code.CREDENTIAL_REVOKED

    run(main())


def test_bad_file_keeps_the_old_state(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A file that does not load is logged and the state in force is kept."""
    keyring_file = tmp_path / "keyring.json"
    revocations_file = tmp_path / "revoked.json"
    write_atomically(keyring_file, keyring_document())
    write_atomically(revocations_file, RevocationSet().to_dict())
    verifier = make_verifier()
    keyring, revocations = verifier.keyring, verifier.revocations
    reloader = Reloader(verifier, keyring=keyring_file, revocations=revocations_file)
    keyring_file.write_text("{not json")
    write_atomically(revocations_file, {"credentials": "nope"})
    with caplog.at_level(logging.ERROR, logger="signedws.server"):
        assert reloader.check() == []
    assert verifier.keyring is keyring
    assert verifier.revocations is revocations
    assert len([r for r in caplog.records if r.levelno == logging.ERROR]) == 2
    keyring_file.unlink()
    assert reloader.check() == []  # a missing file is an error too, logged
    assert reloader.check(force=True) == []
    write_atomically(keyring_file, keyring_document())
    assert reloader.check() == ["keyring"]
    assert verifier.keyring is not keyring
    assert "keyring=" in repr(reloader)
