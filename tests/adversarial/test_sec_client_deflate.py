"""Issue 13, the client-side sibling of finding 1: the Python client does not
offer permessage-deflate unless asked to, so a hostile server cannot make it
inflate ~1000-fold what arrives on the wire (SPEC.md §11.7).

The server here opts in to compression (``compression="deflate"``), so the
extension is in use exactly when the client offers it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from helpers import AUDIENCE
from sec_client_support import Recorder, mac_credential
from sec_client_support import signed_server as server

from signedws.asyncio import connect


def _offered(recorder: Recorder) -> str | None:
    (connection,) = recorder.live
    request = connection.transport.websocket.request  # type: ignore[union-attr]
    assert request is not None
    header: str | None = request.headers.get("Sec-WebSocket-Extensions")
    return header


def test_python_client_offers_no_compression_by_default(run: Callable[..., Any]) -> None:
    """A default client sends no Sec-WebSocket-Extensions; the connection is uncompressed."""

    async def main() -> str | None:
        recorder = Recorder()
        async with server(recorder, compression="deflate") as uri:
            client = await connect(uri, mac_credential(), audience=AUDIENCE)
            try:
                await client.send("m")
                await client.drain()
            finally:
                await client.close()
        return _offered(recorder)

    assert run(main()) is None


def test_python_client_compression_is_an_explicit_opt_in(run: Callable[..., Any]) -> None:
    """compression="deflate" offers permessage-deflate (the opt-in still works)."""

    async def main() -> str | None:
        recorder = Recorder()
        async with server(recorder, compression="deflate") as uri:
            client = await connect(uri, mac_credential(), audience=AUDIENCE, compression="deflate")
            try:
                await client.send("m")
                await client.drain()
            finally:
                await client.close()
        return _offered(recorder)

    offered = run(main())
    assert offered is not None
    assert "permessage-deflate" in offered
