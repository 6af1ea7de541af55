"""``signedws serve`` with an ``[issuer]`` table (the issuer and the signed
WebSocket on one port, under uvicorn) and ``signedws issuer`` (the issuer
alone), as subprocesses, with tokens from the real test OpenID Provider."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from issuer_support import API, OpenIDProvider, _http, bearer

from signedws.asyncio import connect
from signedws.asyncio.issuer_client import IssuerClient
from signedws.cli import main
from signedws.config import load_config
from signedws.errors import UsageError

REPO = Path(__file__).resolve().parents[2]
AUDIENCE = "wss://api.example/ws"


@pytest.fixture
def keys(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    for argv in (
        ["keygen", "hmac", "--kid", "h1", "-o", str(tmp_path / "issuer-mac.jwk")],
        ["keygen", "hmac", "--kid", "fleet-1", "-o", str(tmp_path / "fleet.jwk")],
        ["keygen", "ed25519", "--kid", "e1", "-o", str(tmp_path / "issuer-ed.jwk")],
        ["keygen", "ed25519", "--kid", "srv-1", "-o", str(tmp_path / "server.jwk")],
    ):
        assert main(argv) == 0
    capsys.readouterr()
    mac = json.loads((tmp_path / "issuer-mac.jwk").read_text())
    ed = json.loads((tmp_path / "issuer-ed.jwk").read_text())
    del ed["d"]
    (tmp_path / "keyring.json").write_text(json.dumps({"issuers": {"app": [mac, ed]}}))
    return tmp_path


def write_config(keys: Path, op: OpenIDProvider, extra: str = "") -> Path:
    path = keys / "serve.toml"
    path.write_text(
        f"""
[server]
host = "127.0.0.1"
port = 0
audience = "{AUDIENCE}"
origins = ["https://app.example"]
allow_no_origin = true

[keys]
fleet_key = "fleet.jwk"
keyring = "keyring.json"
server_key = "server.jwk"
reload_interval = 0

[issuer]
name = "app"
mac_key = "issuer-mac.jwk"
ed25519_key = "issuer-ed.jwk"
port = 0
scopes = ["chat:read", "chat:write"]
oidc_issuer = "{op.issuer}"
oidc_audience = "{API}"
oidc_jwks_url = "{op.jwks_url}"
algorithms = ["ES256"]
{extra}
"""
    )
    return path


@pytest.fixture
def stderr_log(keys: Path) -> Path:
    return keys / "stderr.log"


def start(command: str, config: Path, log: Path) -> tuple[subprocess.Popen[str], list[str]]:
    with log.open("w") as stderr:
        proc = subprocess.Popen(  # noqa: S603 - fixed arguments
            [sys.executable, "-m", "signedws", command, "--config", str(config)],
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            cwd=REPO,
        )
    assert proc.stdout is not None
    lines = [proc.stdout.readline()]
    if command == "serve":
        lines.append(proc.stdout.readline())
    return proc, lines


def stop(proc: subprocess.Popen[str]) -> int:
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


def test_serve_with_issuer_on_one_port(
    keys: Path, op: OpenIDProvider, stderr_log: Path, run: Any
) -> None:
    token = op.token()
    proc, lines = start("serve", write_config(keys, op), stderr_log)
    try:
        ws = re.fullmatch(r"listening on (ws://127\.0\.0\.1:(\d+))\n", lines[0])
        http = re.fullmatch(r"issuer on (http://127\.0\.0\.1:(\d+)/signedws)\n", lines[1])
        assert ws, lines
        assert http, lines
        assert ws.group(2) == http.group(2)  # one port

        async def session() -> None:
            for scheme in ("mac", "ed25519"):
                client = IssuerClient(http.group(1), login_token=token, scheme=scheme)
                async with connect(
                    f"{ws.group(1)}/ws", issuer=client, audience=AUDIENCE
                ) as signed:
                    await signed.send(f"hello over {scheme}")
                    assert await signed.recv() == f"hello over {scheme}"
                    assert signed.credential.claims.sub == "app"  # type: ignore[union-attr]

        run(session(), timeout=30)
        status, _, jwks = _http("GET", f"{http.group(1)}/jwks.json")
        assert status == 200
        assert {k["kid"] for k in jwks["keys"]} == {"srv-1", "e1"}
    finally:
        assert stop(proc) == 0
    log = stderr_log.read_text()
    assert "issued mac credential sub='app'" in log
    assert "issued ed25519 credential sub='app'" in log
    assert "Traceback" not in log
    assert token not in log
    assert token.split(".")[2] not in log


ROOM_HANDLER = """
from signedws.asyncio.topics import topics


async def handler(connection):
    room = topics()
    try:
        async for message in connection:
            room.subscribe(connection, "room")
            await room.publish("room", f"{message.subject}/{message.payload}")
    finally:
        room.unsubscribe_all(connection)
"""


def test_serve_with_issuer_has_topics(
    keys: Path, op: OpenIDProvider, stderr_log: Path, run: Any
) -> None:
    """With [issuer] (the ASGI server on one port), `topics()` is installed
    too: a mac and an ed25519 client in one room hear each other, verified."""
    (keys / "room.py").write_text(ROOM_HANDLER)
    config = write_config(keys, op)
    config.write_text(
        config.read_text().replace(
            "allow_no_origin = true", 'allow_no_origin = true\nhandler = "room:handler"'
        )
    )
    token = op.token()
    proc, lines = start("serve", config, stderr_log)
    try:
        ws = re.fullmatch(r"listening on (ws://127\.0\.0\.1:(\d+))\n", lines[0])
        http = re.fullmatch(r"issuer on (http://127\.0\.0\.1:(\d+)/signedws)\n", lines[1])
        assert ws, lines
        assert http, lines

        async def session() -> None:
            clients = [
                connect(
                    f"{ws.group(1)}/ws",
                    issuer=IssuerClient(http.group(1), login_token=token, scheme=scheme),
                    audience=AUDIENCE,
                )
                for scheme in ("mac", "ed25519")
            ]
            async with clients[0] as mac, clients[1] as ed:
                await mac.send("in")
                assert await mac.recv() == "app/in"
                await ed.send("in too")
                for client in (mac, ed):
                    assert await client.recv() == "app/in too"
                await mac.send("bye")
                for client in (mac, ed):
                    assert await client.recv() == "app/bye"
                    assert client.topics.mark("room") == 3

        run(session(), timeout=30)
    finally:
        assert stop(proc) == 0
    assert "Traceback" not in stderr_log.read_text()


def test_issuer_alone(keys: Path, op: OpenIDProvider, stderr_log: Path) -> None:
    token = op.token()
    proc, lines = start("issuer", write_config(keys, op), stderr_log)
    try:
        match = re.fullmatch(r"issuer on (http://127\.0\.0\.1:\d+)\n", lines[0])
        assert match, lines
        status, headers, document = _http(
            "POST", f"{match.group(1)}/credentials/mac", {}, bearer(token)
        )
        assert status == 200, document
        assert headers["cache-control"] == "no-store"
        assert document["audiences"] == [AUDIENCE]
        status, _, document = _http("POST", f"{match.group(1)}/credentials/mac", {})
        assert (status, document["error"]) == (401, "unauthenticated")
    finally:
        assert stop(proc) == 0


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("burst = 0", "rate and burst"),
        ("nope = 1", "unknown keys in [issuer]"),
        ('authenticate = "m:f"', "not both"),
    ],
)
def test_bad_issuer_tables_are_refused(
    keys: Path, op: OpenIDProvider, extra: str, message: str
) -> None:
    with pytest.raises(UsageError, match=re.escape(message)):
        load_config(write_config(keys, op, extra))


def test_issuer_table_needs_a_key_and_a_login(tmp_path: Path) -> None:
    from signedws.issuer_config import parse_issuer_table

    with pytest.raises(UsageError, match="mac_key, ed25519_key"):
        parse_issuer_table({"name": "app", "authenticate": "m:f"}, tmp_path)
    with pytest.raises(UsageError, match="authenticate, or oidc_issuer"):
        parse_issuer_table({"name": "app", "mac_key": "k.jwk"}, tmp_path)
