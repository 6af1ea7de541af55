"""The server adapters take the same signedws keywords with the same defaults.

Each adapter spells its signature out (as websockets does for each of its
implementations): that keeps it typed and documented, and this test keeps the
three copies from drifting apart (issue 16: "the same keywords and semantics")."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import pytest

from signedws.asyncio.asgi import SignedWebSockets
from signedws.asyncio.server import serve as websockets_serve

# What each adapter adds for its own library, beyond signedws' keywords.
OWN = {
    "websockets": {"handler", "host", "port", "process_request", "process_response", "kwargs"},
    # websockets takes close_timeout through its own **kwargs (default set to
    # the same DEFAULT_CLOSE_TIMEOUT); picows has none, so the adapter names it.
    "picows": {"handler", "host", "port", "close_timeout", "kwargs"},
    "asgi": {"self"},
}


def keywords(function: Callable[..., Any], own: set[str]) -> dict[str, object]:
    return {
        name: parameter.default
        for name, parameter in inspect.signature(function).parameters.items()
        if name not in own
    }


def adapters() -> dict[str, Callable[..., Any]]:
    found: dict[str, Callable[..., Any]] = {
        "websockets": websockets_serve,
        "asgi": SignedWebSockets.__init__,
    }
    picows = pytest.importorskip("signedws.asyncio.picows")
    found["picows"] = picows.serve
    return found


def test_every_adapter_takes_the_same_signedws_keywords_and_defaults() -> None:
    found = {name: keywords(function, OWN[name]) for name, function in adapters().items()}
    reference = found["websockets"]
    assert {"verifier", "origins", "server_key", "max_queue", "trusted_proxies"} <= set(reference)
    for name, got in found.items():
        assert got == reference, f"{name} differs from websockets: {set(got) ^ set(reference)}"


def test_the_check_sees_a_difference() -> None:
    """A keyword one adapter lacks, or a default it changes, is reported."""

    def other(verifier: object, *, origins: object, max_queue: int = 1) -> None: ...

    reference = keywords(websockets_serve, OWN["websockets"])
    assert keywords(other, set()) != reference
