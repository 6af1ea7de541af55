"""Issue 13, finding 4 and its siblings: what a forged hello can do to a
client (SPEC.md §11.6: a denial of service, nothing more).

A relay on the path passes the real server's frames on but rewrites the
unauthenticated hello. Over real sockets, with a real signedws server behind
the relay, for the Python client and for the JavaScript client under Node:

- a lowered ``max_frame`` on a reconnection must not make the client drop its
  unacknowledged messages (it did: 0 of 3 delivered and ``drain()`` returned);
  the client ends with `frame_too_large`, keeps them, and the server got none;
- a ``max_frame`` too small for a control frame ends ``connect`` with a
  `Rejected` `frame_too_large`, not a `UsageError`;
- a forged server time at the top of the uint64 range gives frames the
  server refuses, never an error out of the signer (Python: OverflowError;
  JS: "not a uint");
- (JS) a hello larger than the largest server frame is refused before it is
  decoded.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import Callable
from typing import Any, Final

import pytest
from helpers import AUDIENCE, NOW, token
from sec_client_support import Plan, Recorder, Relay, mac_credential, max_frame, node_script
from sec_client_support import signed_server as server

from signedws.asyncio import Backoff, Refused, connect
from signedws.envelope import Hello
from signedws.errors import Code, Rejected
from signedws.replay import MAX_COUNTER
from signedws.signer import Signer

FAST: Final = Backoff(initial=0.02, maximum=0.1, jitter=0)
PAYLOADS: Final = [f"{i}:" + "x" * 4000 for i in range(3)]
#: Large enough for a control frame, too small for any of PAYLOADS.
LIMIT: Final = 1024

#: First connection: the relay takes the control frame and the three
#: messages without passing them on, then closes with 1012 (reconnect).
#: Second: the real hello with max_frame lowered to LIMIT.
SHRINK: Final = [Plan(swallow=4), Plan(hello=max_frame(LIMIT))]


def test_python_client_keeps_messages_a_forged_max_frame_cannot_fit(
    run: Callable[..., Any],
) -> None:
    recorder = Recorder()

    async def main() -> Relay:
        async with server(recorder) as upstream, Relay(upstream, SHRINK).running() as relay:
            client = await connect(
                relay.uri,
                mac_credential(),
                audience=AUDIENCE,
                keepalive=None,
                backoff=FAST,
                max_attempts=20,
            )
            try:
                for payload in PAYLOADS:
                    await client.send(payload)
                with pytest.raises(Rejected) as caught:
                    await client.drain()
                assert caught.value.code is Code.FRAME_TOO_LARGE
                assert client.pending == len(PAYLOADS)
                assert list(client.unacknowledged) == PAYLOADS
                with pytest.raises(Rejected):
                    await client.send("after")
            finally:
                await client.close()
            return relay

    relay = run(main())
    assert relay.connections == 2
    assert recorder.payloads == []  # nothing delivered, nothing reported delivered


def test_python_client_refuses_a_hello_too_small_for_a_control_frame(
    run: Callable[..., Any],
) -> None:
    async def main() -> None:
        plans = [Plan(hello=max_frame(16))]
        async with server(Recorder()) as upstream, Relay(upstream, plans).running() as relay:
            with pytest.raises(Rejected) as caught:
                await connect(relay.uri, mac_credential(), audience=AUDIENCE, keepalive=None)
            assert caught.value.code is Code.FRAME_TOO_LARGE

    run(main())


def test_python_signer_clamps_a_forged_server_time() -> None:
    """A hello whose time is 2**64-1: later frames carry the largest uint64
    (the server refuses them with timestamp_skew), no OverflowError."""
    hello = Hello(bytes(64), AUDIENCE, MAX_COUNTER, 65536, 0)
    signer = Signer(token(), hello, now=NOW)
    frame = signer.sign(b"x", now=NOW + 5)
    assert MAX_COUNTER.to_bytes(8, "big") in frame
    assert signer.counter == 1


def test_python_client_with_a_forged_server_time_ends_with_a_typed_error(
    run: Callable[..., Any],
) -> None:
    """Over the relay: the frames are refused (timestamp_skew, 4425) and the
    client ends with `Refused`; nothing escapes untyped. (A guard: on the base
    the server refused the control frame before a later frame overflowed, so
    this passed there too; the signer test above is the one that failed.)"""

    def skewed(hello: Hello) -> Hello:
        return dataclasses.replace(hello, server_time_ms=MAX_COUNTER)

    async def main() -> None:
        plans = [Plan(hello=skewed)]
        async with server(Recorder()) as upstream, Relay(upstream, plans).running() as relay:
            client = await connect(relay.uri, mac_credential(), audience=AUDIENCE, keepalive=None)
            try:
                await asyncio.sleep(0.01)
                with contextlib.suppress(Refused):
                    await client.send("x")  # the client may have ended already
                with pytest.raises(Refused) as caught:
                    await client.recv()  # raises once the client has ended
                assert caught.value.code is Code.TIMESTAMP_SKEW
            finally:
                await client.close()

    run(main())


# -- the JavaScript client ---------------------------------------------------------------


def test_js_client_keeps_messages_a_forged_max_frame_cannot_fit(run: Callable[..., Any]) -> None:
    recorder = Recorder()
    body = """
const client = await connect(env.SW_URL, credential, {
  audience: env.SW_AUDIENCE, keepalive: null, backoff: fast, maxAttempts: 20,
});
const payloads = [0, 1, 2].map((i) => `${i}:` + 'x'.repeat(4000));
for (const payload of payloads) await client.send(payload);
const drained = await outcome(client.drain());
const pending = client.pending;
const kept = client.unacknowledged ?? null;
const after = await outcome(client.send('after'));
await client.close();
console.log(JSON.stringify({ drained, pending, kept, after }));
"""

    async def main() -> tuple[Any, Relay]:
        async with server(recorder) as upstream, Relay(upstream, SHRINK).running() as relay:
            return await node_script(body, url=relay.uri), relay

    result, relay = run(main())
    assert result["drained"]["ok"] is False, result
    assert result["drained"]["error"] == "Rejected"
    assert result["drained"]["code"] == "frame_too_large"
    assert result["pending"] == len(PAYLOADS)
    assert result["kept"] == PAYLOADS
    assert result["after"]["code"] == "frame_too_large"
    assert relay.connections == 2
    assert recorder.payloads == []


def test_js_client_refuses_a_hello_too_small_for_a_control_frame(
    run: Callable[..., Any],
) -> None:
    body = """
console.log(JSON.stringify(await outcome(connect(env.SW_URL, credential, {
  audience: env.SW_AUDIENCE, keepalive: null,
}))));
"""

    async def main() -> Any:
        plans = [Plan(hello=max_frame(16))]
        async with server(Recorder()) as upstream, Relay(upstream, plans).running() as relay:
            return await node_script(body, url=relay.uri)

    result = run(main())
    assert result["ok"] is False
    assert (result["error"], result["code"]) == ("Rejected", "frame_too_large"), result


def test_js_signer_clamps_a_forged_server_time(run: Callable[..., Any]) -> None:
    body = """
const hello = {
  nonce: new Uint8Array(64), audience: env.SW_AUDIENCE,
  serverTimeMs: 2n ** 64n - 1n, maxFrameSize: 65536, window: 0,
};
const signer = new signedws.Signer(credential, hello, { now: 1700000000 });
const signed = await outcome(signer.sign(new Uint8Array([1]), { now: 1700000005 }));
console.log(JSON.stringify({ signed, counter: Number(signer.counter) }));
"""
    result = run(node_script(body, url="ws://127.0.0.1:9"))
    assert result["signed"]["ok"] is True, result
    assert result["counter"] == 1


def test_js_client_refuses_an_oversized_hello_before_decoding(run: Callable[..., Any]) -> None:
    """A hello of 1 MiB + 1 byte (a str audience: decodes fine) is refused
    with frame_too_large, as a server frame of that size would be."""

    def huge(hello: Hello) -> Hello:
        return dataclasses.replace(hello, audience="a" * (1 << 20))

    body = """
console.log(JSON.stringify(await outcome(connect(env.SW_URL, credential, {
  audience: env.SW_AUDIENCE, keepalive: null,
}))));
"""

    async def main() -> Any:
        plans = [Plan(hello=huge)]
        async with server(Recorder()) as upstream, Relay(upstream, plans).running() as relay:
            return await node_script(body, url=relay.uri)

    result = run(main())
    assert (result["error"], result["code"]) == ("Rejected", "frame_too_large"), result
