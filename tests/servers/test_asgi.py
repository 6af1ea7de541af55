"""Tests for signedws.asyncio.asgi beyond the shared contract: both ways in (the
Starlette endpoint and the FastAPI dependency), refusals on servers without
the denial response extension, the size check without uvicorn's limit,
configuration, imports, and the README's FastAPI example."""

# No ``from __future__ import annotations``: FastAPI resolves an endpoint's
# ``Annotated[..., Depends(signed)]`` when it is defined, and ``signed`` is local.
import json
import logging
import os
import re
import socket
import subprocess
import sys
from pathlib import Path
from typing import Annotated, Any

import pytest
from aio_support import AUDIENCE, Recorder, closed_with, codes_logged, make_verifier, raw, token
from example_support import run_example_client
from fastapi import Depends, FastAPI
from server_support import ASGI_KINDS, PATH, start, uvicorn_server, without_denial_extension
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import InvalidStatus

from signedws import UsageError
from signedws.asyncio import connect
from signedws.asyncio.asgi import ServerConnection, SignedWebSockets

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(params=ASGI_KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    """The Starlette app and the FastAPI app in turn."""
    return str(request.param)


def guard(**kwargs: Any) -> SignedWebSockets:
    kwargs.setdefault("origins", [])
    kwargs.setdefault("allow_no_origin", True)
    return SignedWebSockets(make_verifier(), **kwargs)


# -- the ways in ------------------------------------------------------------------------


def fastapi_rooms(signed: SignedWebSockets) -> FastAPI:
    app = FastAPI()

    @app.websocket("/rooms/{room}")
    async def room(room: str, connection: Annotated[ServerConnection, Depends(signed)]) -> None:
        async for message in connection:
            await connection.send(f"{room}: {message.subject} said {message.payload}")

    return app


def test_dependency_beside_path_parameters(run: Any) -> None:
    """The FastAPI dependency composes with the endpoint's other parameters."""

    async def main() -> None:
        signed = guard()
        async with uvicorn_server(fastapi_rooms(signed), ws_max_size=65536) as port:
            uri = f"ws://127.0.0.1:{port}/rooms/lobby"
            async with connect(uri, token("alice"), audience=AUDIENCE) as client:
                await client.send("hi")
                assert await client.recv() == "lobby: alice said hi"

    run(main())


def test_endpoint_in_a_fastapi_app(run: Any) -> None:
    """`endpoint` also serves a FastAPI route: FastAPI sees a plain
    ``(websocket: WebSocket)`` endpoint."""
    recorder = Recorder(echo=True)

    async def main() -> None:
        app = FastAPI()
        app.add_api_websocket_route(PATH, guard().endpoint(recorder))
        async with uvicorn_server(app, ws_max_size=65536) as port:
            uri = f"ws://127.0.0.1:{port}{PATH}"
            async with connect(uri, token(), audience=AUDIENCE) as client:
                await client.send("echo")
                assert await client.recv() == "echo"

    run(main())
    assert recorder.payloads() == ["echo"]


def test_endpoint_keeps_the_handler_name() -> None:
    """The endpoint carries the handler's name and docstring (route names come
    from them) but not its signature, which the framework would misread."""

    async def chat(connection: ServerConnection) -> None:
        """Chat."""

    endpoint = guard().endpoint(chat)
    assert (endpoint.__name__, endpoint.__doc__) == ("chat", "Chat.")
    assert not hasattr(endpoint, "__wrapped__")
    route = WebSocketRoute(PATH, endpoint)
    assert route.name == "chat"
    assert Starlette(routes=[route]).url_path_for("chat") == PATH


def test_repr_and_verifier() -> None:
    """The guard shows its audience and connection count, and exposes its verifier."""
    signed = guard(max_connections=7)
    assert repr(signed) == "SignedWebSockets(audience='wss://signedws.test/ws', connections=0/7)"
    assert signed.verifier.audience == AUDIENCE


# -- refusals -----------------------------------------------------------------------------


def test_refusals_without_the_denial_extension(
    run: Any, kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    """On a server without the denial response extension every refusal is a
    close before accept, which uvicorn answers with HTTP 403; the logs say 403;
    the endpoint never runs."""
    caplog.set_level(logging.INFO, logger="signedws")

    async def main() -> Recorder:
        async with start(kind, wrap=without_denial_extension, max_connections=1) as srv:
            with pytest.raises(InvalidStatus) as info:
                async with ws_connect(srv.uri):  # no subprotocol
                    pass
            assert info.value.response.status_code == 403
            with pytest.raises(InvalidStatus) as info:
                async with raw(srv.uri, origin="https://evil.example"):
                    pass
            assert info.value.response.status_code == 403
            async with raw(srv.uri):
                with pytest.raises(InvalidStatus) as info:
                    async with raw(srv.uri):  # over max_connections
                        pass
                assert info.value.response.status_code == 403
            return srv.recorder

    recorder = run(main())
    assert len(recorder.connections) == 1
    statuses = re.findall(r"refused handshake .* status=(\d+)", caplog.text)
    assert statuses == ["403", "403"]
    assert codes_logged(caplog) == ["server_busy"]


def test_frame_size_without_uvicorn_limit(
    run: Any, kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Under uvicorn's default ws_max_size the verifier's own check refuses a
    frame over max_frame_size with 4413 (frame_too_large)."""
    caplog.set_level(logging.INFO, logger="signedws")

    async def main() -> None:
        async with start(kind, ws_max_size=16 * 1024 * 1024) as srv, raw(srv.uri) as (ws, _):
            await ws.send(bytes(srv.verifier.max_frame_size + 1))
            assert await closed_with(ws) == 4413

    run(main())
    assert codes_logged(caplog) == ["frame_too_large"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"origins": [], "allow_no_origin": False}, "accept nobody"),
        ({"origins": [None]}, "allow_no_origin"),
        ({"max_connections": 0}, "max_connections"),
        ({"max_queue": 0}, "max_queue"),
        ({"idle_timeout": -1}, "idle_timeout"),
        ({"ack_delay": -1}, "ack_delay"),
    ],
)
def test_bad_configuration_is_refused(kwargs: dict[str, Any], message: str) -> None:
    """SignedWebSockets refuses a guard that would accept nobody, None in
    origins and invalid limits, as serve does."""
    with pytest.raises(UsageError, match=message):
        guard(**kwargs)


def test_verifier_must_be_a_verifier() -> None:
    """Anything but a signedws Verifier is refused."""
    with pytest.raises(UsageError, match="Verifier"):
        SignedWebSockets(object(), origins=["https://a.example"])  # type: ignore[arg-type]


# -- imports ---------------------------------------------------------------------------------


def imported(code: str) -> list[str]:
    """Top-level packages (and signedws modules) imported by ``code``, in a fresh interpreter."""
    script = (
        f"import json, sys; {code}; "
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules} "
        "| {m for m in sys.modules if m.startswith('signedws.')})))"
    )
    result = subprocess.run(  # noqa: S603 - fixed arguments
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=REPO
    )
    return list(json.loads(result.stdout))


def test_imports() -> None:
    """``import signedws`` imports no ASGI framework and no adapter module;
    ``import signedws.asyncio.asgi`` imports Starlette but neither websockets,
    FastAPI, uvicorn nor the websockets adapter and client."""
    core = imported("import signedws")
    adapters = {"signedws.asyncio.connection", "signedws.asyncio.asgi"}
    assert not {"starlette", "fastapi", "asyncio", *adapters} & set(core)
    asgi = imported("import signedws.asyncio.asgi")
    assert {"starlette", *adapters} <= set(asgi)
    assert not {"websockets", "fastapi", "uvicorn"} & set(asgi)
    assert not {"signedws.asyncio.server", "signedws.asyncio.client"} & set(asgi)


def test_public_api_is_pinned() -> None:
    """signedws.asyncio.asgi.__all__ is exactly the pinned list, every name
    resolves, and its ServerConnection is the one class of that name."""
    import signedws.asyncio.asgi
    import signedws.asyncio.connection

    names = ["SUBPROTOCOL", "Handler", "ServerConnection", "SignedWebSockets"]
    assert signedws.asyncio.asgi.__all__ == names
    assert all(getattr(signedws.asyncio.asgi, name) is not None for name in names)
    assert ServerConnection is signedws.asyncio.connection.ServerConnection


# -- the README's example -------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def example_code() -> str:
    """examples/fastapi_app.py without its docstring."""
    text = (REPO / "examples" / "fastapi_app.py").read_text()
    return text.split('"""', 2)[2].strip() + "\n"


def test_readme_shows_the_fastapi_example() -> None:
    """The README's FastAPI example is examples/fastapi_app.py, in under 20 lines."""
    code = example_code()
    assert f"```python\n{code}```" in (REPO / "README.md").read_text()
    assert len(code.splitlines()) < 20


def test_fastapi_example_runs(tmp_path: Path) -> None:
    """examples/fastapi_app.py serves under uvicorn as its docstring says, and
    examples/client.py gets its echo."""
    examples = REPO / "examples"
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    subprocess.run(["sh", str(examples / "setup.sh")], cwd=tmp_path, env=env, check=True)  # noqa: S603, S607
    port = str(free_port())
    (tmp_path / "fastapi_app.py").write_text((examples / "fastapi_app.py").read_text())
    client = (examples / "client.py").read_text()
    (tmp_path / "client.py").write_text(
        client.replace("ws://127.0.0.1:8765", f"ws://127.0.0.1:{port}/ws")
    )
    command = [sys.executable, "-m", "uvicorn", "fastapi_app:app", "--host", "127.0.0.1"]
    command += ["--port", port, "--ws-max-size", "65536", "--ws-per-message-deflate", "false"]
    server = subprocess.Popen(command, cwd=tmp_path, stderr=subprocess.PIPE, text=True)  # noqa: S603
    assert run_example_client(server, tmp_path) == "alice said hello\n"
