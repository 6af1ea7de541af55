"""examples/issuer_app.py as README shows it: under uvicorn in a subprocess,
with examples/setup.sh's keys and the test OpenID Provider as the app's login;
a client with a provider token gets its credential from the mounted issuer and
sends signed frames to the app's WebSocket."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from issuer_support import API, OpenIDProvider

from signedws.asyncio import connect
from signedws.asyncio.issuer_client import IssuerClient, IssuerRefused

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"


def example_body() -> str:
    return (EXAMPLES / "issuer_app.py").read_text().split('"""', 2)[2].strip()


def test_readme_shows_the_example() -> None:
    assert example_body() in (REPO / "README.md").read_text()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_issuer_example_runs(tmp_path: Path, op: OpenIDProvider, run: Any) -> None:
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "LOGIN_ISSUER": op.issuer,
        "LOGIN_AUDIENCE": API,
        "LOGIN_JWKS_URL": op.jwks_url,
    }
    subprocess.run(["sh", str(EXAMPLES / "setup.sh")], cwd=tmp_path, env=env, check=True)  # noqa: S603, S607
    (tmp_path / "issuer_app.py").write_text((EXAMPLES / "issuer_app.py").read_text())
    port = free_port()
    command = [sys.executable, "-m", "uvicorn", "issuer_app:app", "--port", str(port)]
    server = subprocess.Popen(  # noqa: S603 - fixed arguments
        [*command, "--ws-max-size", "65536", "--log-level", "warning"],
        cwd=tmp_path,
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    token = op.token()

    async def main() -> list[str]:
        issuer = IssuerClient(f"http://127.0.0.1:{port}/signedws", login_token=token)
        deadline = time.monotonic() + 15
        while True:  # bounded: the server is starting
            try:
                await issuer.credential()
                break
            except IssuerRefused as exc:
                if exc.code != "unreachable" or time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.1)
        replies = []
        async with connect(
            f"ws://127.0.0.1:{port}/ws", issuer=issuer, audience="wss://chat.example"
        ) as client:
            await client.send("hello")
            replies.append(await client.recv())
            assert client.credential.claims.scopes == frozenset({"chat:read", "chat:write"})  # type: ignore[union-attr]
        return replies

    try:
        assert run(main(), timeout=40) == ["app said hello"]
    finally:
        server.terminate()
        _, stderr = server.communicate(timeout=10)
    assert token not in stderr
