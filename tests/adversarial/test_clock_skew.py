"""Time (issue 6): clock skew between client, server and issuer.

SPEC.md §6.4 step 10 accepts a frame whose ``ts`` is within ``max_skew``
(300 s by default) of the server's clock, and §5.2 has clients correct their
clock with the hello's server time. Within the tolerance honest frames pass;
beyond it the server closes with 4425 and logs ``timestamp_skew``; an issuer
clock ahead of the server is absorbed up to ``leeway`` (30 s) on ``iat``.
The server runs on a frozen clock here, so the boundaries are exact.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import figures
import pytest
from adversary import SERVER_KEYS
from corpus import Setup, make_verifier
from helpers import AUDIENCE, CLIENT_KEY, ED_ISSUER, HMAC_ISSUER, NOW, SERVER_KEY, SERVER_KID
from test_corpus_socket import logged_codes
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed

from signedws import Ed25519Credential, MACCredential, ServerKey, Signer, decode_hello
from signedws.asyncio import Refused, ServerConnection, connect, serve
from signedws.errors import Code


def credential(kind: str, *, issued: float = NOW) -> MACCredential | Ed25519Credential:
    """A credential issued at ``issued`` (the issuer's clock)."""
    if kind == "mac":
        return HMAC_ISSUER.issue_token(subject="alice", now=issued, audiences=[AUDIENCE])
    cert = ED_ISSUER.issue_certificate(CLIENT_KEY.public_key(), subject="alice", now=issued)
    return Ed25519Credential(cert, CLIENT_KEY)


@contextlib.asynccontextmanager
async def frozen_server(delivered: list[object]) -> AsyncIterator[str]:
    """A server whose clock reads NOW, always."""

    async def handler(connection: ServerConnection) -> None:
        async for message in connection:
            delivered.append(message.payload)

    async with serve(
        handler,
        "127.0.0.1",
        0,
        verifier=make_verifier(Setup()),
        origins=[],
        allow_no_origin=True,
        server_key=ServerKey(SERVER_KID, SERVER_KEY),
        clock=lambda: NOW,
    ) as server:
        yield f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}"


async def raw_frame_at(uri: str, skew_ms: int, kind: str, issued: float = NOW) -> int | None:
    """A client that stamps its frame ``skew_ms`` off the server's clock and
    does not correct it; the close code, or None if the frame was
    acknowledged."""
    async with ws_connect(uri, subprotocols=["signedws.v1"]) as ws:  # type: ignore[list-item]
        hello = await ws.recv()
        assert isinstance(hello, bytes)
        signer = Signer(credential(kind, issued=issued), decode_hello(hello), now=NOW)
        await ws.send(signer.sign("tick", now=NOW + skew_ms / 1000))
        try:
            async with asyncio.timeout(10):
                await ws.recv()  # the acknowledgement of an accepted frame
        except ConnectionClosed:
            pass
        else:
            return None
        return ws.close_code


SKEWS = [
    (0, None),
    (299_999, None),
    (300_000, None),
    (-300_000, None),
    (300_001, 4425),
    (-300_001, 4425),
    (3_600_000, 4425),
    (-86_400_000, 4425),
]


@pytest.mark.parametrize("kind", ["mac", "certificate"])
@pytest.mark.parametrize(("skew_ms", "expected"), SKEWS, ids=[f"{s:+d}ms" for s, _ in SKEWS])
def test_uncorrected_skew_is_accepted_within_max_skew_and_refused_beyond(
    kind: str,
    skew_ms: int,
    expected: int | None,
    run: Callable[..., Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A frame stamped within ±300 s of the server's clock is accepted; one
    millisecond beyond, the server closes with 4425 `timestamp_skew`."""
    caplog.set_level(logging.WARNING, logger="signedws.server")
    delivered: list[object] = []

    async def main() -> int | None:
        async with frozen_server(delivered) as uri:
            return await raw_frame_at(uri, skew_ms, kind)

    close_code = run(main())
    if expected is None:
        assert delivered == ["tick"]
        assert logged_codes(caplog) == []
    else:
        assert close_code == expected
        assert delivered == []
        assert logged_codes(caplog) == ["timestamp_skew"]
    figures.add("time.skew_cases", 1, "skew cases over a socket (±0..24 h)", section="time")


@pytest.mark.parametrize("offset", [-7200.0, -301.0, 301.0, 7200.0])
def test_hello_offset_corrects_a_client_clock_off_by_hours(
    offset: float, run: Callable[..., Any]
) -> None:
    """A signedws client whose clock is off by far more than max_skew stamps
    its frames with the hello's server time (SPEC.md §5.2): all delivered."""
    delivered: list[object] = []

    async def main() -> None:
        async with frozen_server(delivered) as uri:
            client = await connect(
                uri,
                credential("mac"),
                audience=AUDIENCE,
                server_keys=SERVER_KEYS,
                clock=lambda: NOW + offset,
                keepalive=None,
                reconnect=False,
            )
            try:
                for i in range(5):
                    await client.send(f"m{i}")
                await client.drain()
            finally:
                await client.close()

    run(main())
    assert delivered == [f"m{i}" for i in range(5)]
    figures.add(
        "time.corrected",
        1,
        "client clocks off by 5 min to 2 h, corrected by the hello",
        section="time",
    )


def test_client_clock_jumping_after_the_hello_is_told_timestamp_skew(
    run: Callable[..., Any],
) -> None:
    """A client whose clock jumps 10 minutes ahead after the hello is refused
    with 4425, which the client reports as `timestamp_skew` (not retried)."""
    delivered: list[object] = []
    clock = [NOW]

    async def main() -> Refused:
        async with frozen_server(delivered) as uri:
            client = await connect(
                uri,
                credential("mac"),
                audience=AUDIENCE,
                clock=lambda: clock[0],
                keepalive=None,
            )
            await client.send("before")
            await client.drain()
            clock[0] += 600
            await client.send("after the jump")
            with pytest.raises(Refused) as info:
                await client.drain()
            await client.close()
            return info.value

    refused = run(main())
    assert refused.close_code == 4425
    assert refused.code is Code.TIMESTAMP_SKEW
    assert delivered == ["before"]
    figures.add(
        "time.jump", 1, "client clock jumping after the hello: told timestamp_skew", section="time"
    )


@pytest.mark.parametrize(("ahead", "expected"), [(0, None), (30, None), (31, 4419), (3600, 4419)])
@pytest.mark.parametrize("kind", ["mac", "certificate"])
def test_issuer_clock_ahead_is_absorbed_by_the_leeway(
    kind: str,
    ahead: int,
    expected: int | None,
    run: Callable[..., Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A credential issued by a clock up to 30 s ahead of the server is
    accepted; further ahead it is `credential_not_yet_valid` (4419)."""
    caplog.set_level(logging.WARNING, logger="signedws.server")
    delivered: list[object] = []

    async def main() -> int | None:
        async with frozen_server(delivered) as uri:
            return await raw_frame_at(uri, 0, kind, issued=NOW + ahead)

    close_code = run(main())
    if expected is None:
        assert delivered == ["tick"]
    else:
        assert close_code == expected
        assert logged_codes(caplog) == ["credential_not_yet_valid"]
    figures.add("time.leeway", 1, "issuer-ahead cases (0 to 3600 s) over a socket", section="time")
