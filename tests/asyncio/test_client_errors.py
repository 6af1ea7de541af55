"""Errors a person can act on, client side (issue 17 item 6): what the close
code or HTTP status means and what to do, the server's reason text for a
refused handshake, and what each connection and reconnection attempt got.
Real servers on 127.0.0.1."""

from __future__ import annotations

import contextlib
import http
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aio_support import AUDIENCE, make_verifier, running, token
from websockets.asyncio.server import ServerConnection as WebSocket
from websockets.asyncio.server import serve as ws_serve
from websockets.http11 import Request, Response

from signedws import Code, ServerSession
from signedws.asyncio import Backoff, ConnectionLost, Refused, RepeatedFailure, connect
from signedws.errors import explain_close, explain_status

FAST = Backoff(initial=0.01, maximum=0.02)


# -- the core's explanations ------------------------------------------------------------------


def test_explain_close_names_the_codes_and_what_to_do() -> None:
    """Each close code says what the §9 codes behind it are and what to do."""
    unauthorized = explain_close(4401, "unauthorized")
    assert unauthorized.startswith("close code 4401 (unauthorized; one of: nonce_mismatch,")
    assert "audience_mismatch" in unauthorized
    assert "audience" in unauthorized.split(":", 2)[2]
    assert explain_close(4403, "forbidden").startswith(
        "close code 4403 (forbidden; credential_revoked): the credential was revoked."
    )
    assert "Refresh it" in explain_close(4419, "credential not valid now")
    assert "clock" in explain_close(4425, "timestamp out of range")
    assert explain_close(None) == explain_close(1006)
    assert "dropped without a close frame" in explain_close(None)
    assert (
        explain_close(1000)
        == "close code 1000 (no reason): the server ended the connection normally."
    )
    # The reason narrows the codes; an unknown reason leaves none.
    assert "(timeout; one of: first_frame_timeout, idle_timeout)" in explain_close(4408, "timeout")
    assert explain_close(4401, "something else").startswith("close code 4401 (something else):")
    assert explain_close(4999, "x").endswith("an application-defined close code.")
    assert explain_close(3000).endswith("a protocol error.")


def test_explain_status_says_what_to_do() -> None:
    """Each HTTP status of a refused handshake, with the server's reason."""
    forbidden = explain_status(403, "invalid Origin header: https://evil.example")
    assert forbidden.startswith("HTTP 403 (invalid Origin header: https://evil.example): ")
    assert "[server].origins" in forbidden
    assert "subprotocol" in explain_status(400)
    assert explain_status(503).startswith("HTTP 503 (no reason given): the server is busy")
    assert explain_status(502).endswith("the server failed. The client retries later.")
    assert explain_status(418).endswith("Check the URL.")


# -- over real sockets ------------------------------------------------------------------------


def test_a_credential_for_another_audience_says_so(run: Any) -> None:
    """The server says only 4401 unauthorized (on purpose); the client adds
    what it can tell itself: its credential is for another audience."""

    async def main() -> None:
        async with running() as srv:
            credential = token(audiences=["wss://other.example"])
            client = await connect(srv.uri, credential, audience=AUDIENCE, reconnect=False)
            await client.send("hello")
            with pytest.raises(Refused) as info:
                await client.drain()
            await client.close()
        refused = info.value
        assert refused.close_code == 4401
        assert Code.AUDIENCE_MISMATCH in refused.codes
        message = str(refused)
        assert message.startswith("server refused the connection: close code 4401 (unauthorized")
        assert "Check that the credential is for this server's audience" in message
        assert (
            f"Here: this client's credential is for ['wss://other.example'], not for the "
            f"server's audience {AUDIENCE!r}."
        ) in message
        assert refused.explanation in message

    run(main())


def test_a_refused_origin_gives_status_and_the_servers_reason(run: Any) -> None:
    """HTTP 403 for a disallowed Origin: the status, the server's reason text
    (it used to say "no reason") and what to do."""

    async def main() -> None:
        async with running(allow_no_origin=False) as srv:
            with pytest.raises(Refused) as info:
                await connect(srv.uri, token(), audience=AUDIENCE, origin="https://evil.example")
        refused = info.value
        assert refused.status == 403
        assert "Origin" in refused.reason
        assert "no reason" not in str(refused)
        assert str(refused).startswith(
            f"server refused the connection: HTTP 403 ({refused.reason})"
        )
        assert "[server].origins" in str(refused)

    run(main())


@contextlib.asynccontextmanager
async def scripted(close: tuple[int, str], then_status: int | None) -> AsyncIterator[str]:
    """A server that sends a real hello, reads a frame and closes with
    ``close``, without acknowledging it; after the
    first connection, it refuses every handshake with ``then_status`` (None:
    it keeps accepting and closing the same way)."""
    verifier = make_verifier()
    seen = 0

    def process_request(connection: WebSocket, request: Request) -> Response | None:
        nonlocal seen
        seen += 1
        if then_status is not None and seen > 1:
            return connection.respond(http.HTTPStatus(then_status), "server busy\n")
        return None

    async def handler(websocket: WebSocket) -> None:
        await websocket.send(ServerSession(verifier, now=time.time()).hello)
        await websocket.recv()  # the client's first frame (unacknowledged)
        await websocket.close(*close)

    async with ws_serve(
        handler,
        "127.0.0.1",
        0,
        subprotocols=["signedws.v1"],  # type: ignore[list-item]
        process_request=process_request,
    ) as server:
        yield f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}"


def test_connection_lost_lists_what_each_attempt_got(run: Any) -> None:
    """A server restarts (1012), then refuses every attempt with HTTP 503: the
    final ConnectionLost says so for each attempt, not just "after 3
    reconnection attempts"."""

    async def main() -> None:
        async with scripted((1012, "restarting"), 503) as uri:
            client = await connect(uri, token(), audience=AUDIENCE, backoff=FAST, max_attempts=3)
            await client.send("x")
            with pytest.raises(ConnectionLost) as info:
                await _ended(client)
            await client.close()
        lost = info.value
        assert lost.attempts == 3
        assert lost.outcomes == (
            "connection 1: closed with close code 1012 (restarting)",
            "attempt 1: HTTP 503 (server busy)",
            "attempt 2: HTTP 503 (server busy)",
            "attempt 3: HTTP 503 (server busy)",
        )
        message = str(lost)
        assert "close code 1012 (restarting): the server is restarting." in message
        assert "after 3 reconnection attempts; what each got: connection 1: closed" in message
        assert message.endswith("attempt 3: HTTP 503 (server busy)")

    run(main())


def test_repeated_failure_lists_the_connections(run: Any) -> None:
    """Connections closed with 4503 (server busy) right after the hello, again
    and again: RepeatedFailure explains the code and lists each connection."""

    async def main() -> None:
        async with scripted((4503, "server busy"), None) as uri:
            client = await connect(uri, token(), audience=AUDIENCE, backoff=FAST, max_repeats=3)
            await client.send("x")
            with pytest.raises(RepeatedFailure) as info:
                await _ended(client)
            await client.close()
        failure = info.value
        assert failure.code is Code.SERVER_BUSY
        assert failure.outcomes == tuple(
            f"connection {n}: closed with close code 4503 (server busy)" for n in (1, 2, 3)
        )
        message = str(failure)
        assert message.startswith(
            "3 connections in a row closed before any progress, giving up: close code 4503 "
            "(server busy; server_busy): the server is at its connection limit."
        )
        assert "connection 3: closed with close code 4503" in message

    run(main())


async def _ended(client: Any) -> None:
    """Wait until the client ends; raise what it ended with."""
    async for _ in client:
        pass
