"""Issue 13, finding 7 (client side): a client whose connection keeps failing
the same way must not wait forever (SPEC.md §7.3).

Each connection is accepted, takes the client's frame, and is closed with
1011 (a code after which reconnecting can help). Before the fix the client
reconnected and resent forever, and ``drain()`` never returned. Now, after
``max_repeats`` connections in a row ended that way with nothing
acknowledged, the client ends with `RepeatedFailure`, which carries the close
code and reason, out of ``drain``, ``send`` and ``recv``; the message stays
unacknowledged.

Two sources of the repeated failure, over real sockets: a relay that closes
every connection with 1011 after the client's first frame (independent of
the server), and the issue's own configuration: a server that trusts
Ed25519 clients but has no server key, whose handler's first ``send`` fails.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any, Final

import pytest
from helpers import AUDIENCE, CLIENT_KEY, ED_ISSUER
from sec_client_support import Plan, Recorder, Relay, mac_credential, node_script
from sec_client_support import signed_server as server

from signedws import Ed25519Credential
from signedws import client as client_module
from signedws.asyncio import Backoff, ConnectionLost, Refused, ServerConnection, connect
from signedws.errors import RepeatedFailure

FAST: Final = Backoff(initial=0.02, maximum=0.1, jitter=0)
#: Bounds the wait: the unfixed client never stops reconnecting.
BOUND: Final = 15.0
CLOSE_1011: Final = [Plan(swallow=1, close_code=1011)]
#: Every connection relayed, but nothing of the server's after the hello.
MUTE: Final = [Plan(mute=True)]


def test_python_client_gives_up_on_identical_failures(run: Callable[..., Any]) -> None:
    async def main() -> tuple[BaseException, Relay]:
        async with server(Recorder()) as upstream, Relay(upstream, CLOSE_1011).running() as relay:
            client = await connect(relay.uri, mac_credential(), audience=AUDIENCE, backoff=FAST)
            try:
                await client.send("m")
                with pytest.raises(ConnectionLost) as caught:
                    async with asyncio.timeout(BOUND):
                        await client.drain()
                assert client.unacknowledged == ("m",)
                with pytest.raises(ConnectionLost):
                    await client.send("n")
                with pytest.raises(ConnectionLost):
                    await client.recv()
            finally:
                await client.close()
            return caught.value, relay

    error, relay = run(main(), timeout=BOUND + 10)
    failure = RepeatedFailure
    assert isinstance(error, failure)
    assert (error.close_code, error.reason) == (1011, "relay")
    assert error.attempts == client_module.DEFAULT_MAX_REPEATS
    assert relay.connections == client_module.DEFAULT_MAX_REPEATS
    assert "1011" in str(error)


def test_python_client_progress_resets_the_count(run: Callable[..., Any]) -> None:
    """Connections that each deliver something are not repeats: with the
    relay dropping every connection (1012) after the client's frames reached
    the server and were acknowledged, more connections than ``max_repeats``
    come and go and every message is delivered."""
    recorder = Recorder()
    rounds = 4

    async def main() -> None:
        async with server(recorder) as upstream:
            relay = Relay(upstream, [Plan()])
            async with relay.running():
                client = await connect(
                    relay.uri,
                    mac_credential(),
                    audience=AUDIENCE,
                    backoff=FAST,
                    max_repeats=2,
                    keepalive=None,
                )
                try:
                    for i in range(rounds):
                        await client.send(f"m{i}")
                        await client.drain()
                        for connection in recorder.live:
                            await connection.close(1012)
                    await client.send("last")
                    await client.drain()
                finally:
                    await client.close()
                assert relay.connections > 2

    run(main())
    assert recorder.payloads == [f"m{i}" for i in range(rounds)] + ["last"]


def test_python_client_without_server_key_does_not_wait_forever(
    run: Callable[..., Any],
) -> None:
    """The issue's configuration: the server trusts Ed25519 clients but has no
    server key, and the handler answers. On the base, the first connection
    closed with 1011 and the next ones took the resent message, delivered
    before, and never acknowledged it (no server key): the client waited
    forever. Whatever the server does about it (refuse the client with a §9
    code, or fail or stall each connection), the client ends with a typed
    error carrying a close code, within a bound: a connection on which a
    message waits ``ack_timeout`` for any acknowledgement is closed (4408)
    and counts as a repeat."""

    async def answer(connection: ServerConnection) -> None:
        await connection.send("answer")

    recorder = Recorder(hook=answer)
    cert = ED_ISSUER.issue_certificate(
        CLIENT_KEY.public_key(), subject="bob", now=time.time(), lifetime=3600
    )

    async def main() -> BaseException:
        async with server(recorder, server_key=None) as uri:
            client = await connect(
                uri,
                Ed25519Credential(cert, CLIENT_KEY),
                audience=AUDIENCE,
                backoff=FAST,
                keepalive=None,
                ack_timeout=0.3,
            )
            try:
                await client.send("question")
                with pytest.raises((ConnectionLost, Refused)) as caught:
                    async with asyncio.timeout(BOUND):
                        await client.drain()
            finally:
                await client.close()
            return caught.value

    error = run(main(), timeout=BOUND + 10)
    assert getattr(error, "close_code", None) is not None, error


def test_python_client_gives_up_on_a_server_that_never_acknowledges(
    run: Callable[..., Any],
) -> None:
    """Frames reach the server; no acknowledgement ever comes back. Each
    connection is closed after ``ack_timeout`` (4408) and, with nothing
    acknowledged, counts as a repeat: `RepeatedFailure` (4408), the message
    kept. On the base the client waited forever on the first connection."""
    recorder = Recorder()

    async def main() -> tuple[BaseException, Relay]:
        async with server(recorder) as upstream, Relay(upstream, MUTE).running() as relay:
            client = await connect(
                relay.uri,
                mac_credential(),
                audience=AUDIENCE,
                backoff=FAST,
                keepalive=None,
                ack_timeout=0.2,
                max_repeats=3,
            )
            try:
                await client.send("m")
                with pytest.raises(ConnectionLost) as caught:
                    async with asyncio.timeout(BOUND):
                        await client.drain()
                assert client.unacknowledged == ("m",)
            finally:
                await client.close()
            return caught.value, relay

    error, relay = run(main(), timeout=BOUND + 10)
    assert type(error).__name__ == "RepeatedFailure"
    assert isinstance(error, ConnectionLost)
    assert (error.close_code, error.reason, error.attempts) == (4408, "no acknowledgement", 3)
    assert relay.connections == 3
    assert recorder.payloads == ["m"]  # delivered once: the server dropped the resends


# -- the JavaScript client ---------------------------------------------------------------


def test_js_client_gives_up_on_identical_failures(run: Callable[..., Any]) -> None:
    body = """
const client = await connect(env.SW_URL, credential, { audience: env.SW_AUDIENCE, backoff: fast });
await client.send('m');
const drained = await outcome(bounded(client.drain()));
const kept = client.unacknowledged ?? null;
const sent = await outcome(client.send('n'));
const received = await outcome(client.recv());
const attempts = client.connections;
await client.close();
console.log(JSON.stringify({ drained, kept, sent, received, attempts }));
"""

    async def main() -> tuple[Any, Relay]:
        async with server(Recorder()) as upstream, Relay(upstream, CLOSE_1011).running() as relay:
            return await node_script(body, url=relay.uri, timeout=BOUND + 20), relay

    result, relay = run(main(), timeout=BOUND + 30)
    drained = result["drained"]
    assert drained["ok"] is False, result
    assert drained["error"] == "RepeatedFailure", result
    assert (drained["closeCode"], drained["reason"]) == (1011, "relay")
    assert result["kept"] == ["m"]
    assert result["sent"]["error"] == result["received"]["error"] == "RepeatedFailure"
    assert relay.connections == client_module.DEFAULT_MAX_REPEATS


def test_js_client_gives_up_on_a_server_that_never_acknowledges(run: Callable[..., Any]) -> None:
    recorder = Recorder()
    body = """
const client = await connect(env.SW_URL, credential, {
  audience: env.SW_AUDIENCE, backoff: fast, keepalive: null, ackTimeout: 0.2, maxRepeats: 3,
});
await client.send('m');
const drained = await outcome(bounded(client.drain()));
const kept = client.unacknowledged ?? null;
await client.close();
console.log(JSON.stringify({ drained, kept }));
"""

    async def main() -> tuple[Any, Relay]:
        async with server(recorder) as upstream, Relay(upstream, MUTE).running() as relay:
            return await node_script(body, url=relay.uri, timeout=BOUND + 20), relay

    result, relay = run(main(), timeout=BOUND + 30)
    drained = result["drained"]
    assert drained["error"] == "RepeatedFailure", result
    assert (drained["closeCode"], drained["reason"]) == (4408, "no acknowledgement")
    assert result["kept"] == ["m"]
    assert relay.connections == 3
    assert recorder.payloads == ["m"]
