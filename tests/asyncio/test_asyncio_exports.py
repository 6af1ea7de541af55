"""The public surface of signedws.asyncio is pinned."""

from __future__ import annotations

import signedws.asyncio

PUBLIC_API = [
    "SUBPROTOCOL",
    "Backoff",
    "ClientClosed",
    "ClientConnection",
    "ConnectionLost",
    "Handler",
    "Refresh",
    "Refused",
    "Reloader",
    "RepeatedFailure",
    "ServerConnection",
    "connect",
    "serve",
]


def test_public_api_is_pinned() -> None:
    """signedws.asyncio.__all__ is exactly the pinned list, and every name resolves."""
    assert signedws.asyncio.__all__ == PUBLIC_API
    assert all(getattr(signedws.asyncio, name) is not None for name in PUBLIC_API)


def test_errors_join_the_signedws_tree() -> None:
    """The client's exceptions are SignedWSErrors, not UsageErrors."""
    for name in ("ClientClosed", "ConnectionLost", "Refused"):
        error = getattr(signedws.asyncio, name)
        assert issubclass(error, signedws.SignedWSError)
        assert not issubclass(error, signedws.UsageError)
