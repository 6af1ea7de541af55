"""Tests for signedws.handshake: the Origin policy, SPEC.md §5.1's order of
handshake checks, and the client address logged behind trusted proxies."""

from __future__ import annotations

import ipaddress
import re
from typing import Any

import pytest

from signedws.errors import UsageError
from signedws.handshake import (
    OriginPolicy,
    Refusal,
    check_handshake,
    client_address,
    trusted_networks,
)


@pytest.mark.parametrize(
    ("origin", "allowed"),
    [
        ("https://app.example", True),
        ("https://APP.example", False),  # exact, as websockets compares
        ("https://app.example.evil", False),
        ("https://eu.app.example", True),
        ("https://eu.app.example.evil", False),  # patterns match in full
        ("https://x.eu.app.example", False),
        (None, False),
    ],
)
def test_origin_policy_matches_like_websockets(origin: str | None, allowed: bool) -> None:
    """Strings compare exactly, patterns must match the whole Origin, and a
    missing Origin is refused unless allowed."""
    policy = OriginPolicy.build(
        ["https://app.example", re.compile(r"https://[a-z]+\.app\.example")],
        allow_no_origin=False,
    )
    assert policy.allows(origin) is allowed


def test_origin_policy_no_origin() -> None:
    """allow_no_origin admits clients without an Origin, and only them."""
    policy = OriginPolicy.build([], allow_no_origin=True)
    assert policy.allowed == (None,)
    assert policy.allows(None)
    assert not policy.allows("https://app.example")


@pytest.mark.parametrize(
    ("origins", "allow_no_origin", "message"),
    [
        ([], False, "accept nobody"),
        ([None], True, "allow_no_origin"),
        ([b"https://app.example"], True, "strings or compiled patterns"),
    ],
)
def test_origin_policy_refuses_bad_configuration(
    origins: list[Any], allow_no_origin: bool, message: str
) -> None:
    """A policy that admits nobody, None among origins (use allow_no_origin) and
    values that are neither strings nor patterns are refused."""
    with pytest.raises(UsageError, match=message):
        OriginPolicy.build(origins, allow_no_origin=allow_no_origin)


def test_origin_refusal_reason_escapes_the_value() -> None:
    """The log reason shows the peer's Origin escaped, never raw."""
    assert OriginPolicy.refusal_reason("https://e\nvil") == "origin not allowed: 'https://e\\nvil'"
    assert OriginPolicy.refusal_reason(None) == "origin not allowed: None"


POLICY = OriginPolicy.build(["https://app.example"], allow_no_origin=False)


@pytest.mark.parametrize(
    ("origin", "offered", "open_connections", "expected"),
    [
        ("https://app.example", ["signedws.v1"], 0, None),
        ("https://app.example", ["chat, signedws.v1"], 0, None),  # one header, two names
        ("https://app.example", ["chat", " signedws.v1 "], 9, None),
        # Origin first, even with no subprotocol and a full server.
        ("https://evil.example", [], 10, (403, "origin not allowed: 'https://evil.example'")),
        (None, ["signedws.v1"], 0, (403, "origin not allowed: None")),
        # Then the subprotocol, even on a full server.
        ("https://app.example", ["chat"], 10, (400, "no signedws.v1 subprotocol offered")),
        ("https://app.example", ["signedws.v2"], 0, (400, "no signedws.v1 subprotocol offered")),
        ("https://app.example", [], 0, (400, "no signedws.v1 subprotocol offered")),
        # Then the connection limit.
        ("https://app.example", ["signedws.v1"], 10, (503, "10 connections, limit 10")),
        ("https://app.example", ["signedws.v1"], 11, (503, "11 connections, limit 10")),
    ],
)
def test_check_handshake_order(
    origin: str | None,
    offered: list[str],
    open_connections: int,
    expected: tuple[int, str] | None,
) -> None:
    """Origin (403), then the signedws.v1 subprotocol (400), then the
    connection limit (503): the first failing check is the refusal."""
    refusal = check_handshake(POLICY, origin, offered, open_connections, 10)
    assert refusal == (None if expected is None else Refusal(*expected))


def test_check_handshake_without_a_limit() -> None:
    """max_connections None: any number of open connections is fine."""
    assert check_handshake(POLICY, "https://app.example", ["signedws.v1"], 10**9, None) is None


@pytest.mark.parametrize(
    ("status", "body"),
    [(403, "Origin not allowed"), (400, "signedws.v1 subprotocol required"), (503, "server busy")],
)
def test_refusal_body_is_short_and_fixed(status: int, body: str) -> None:
    """What a client is shown names no header value (the reason, logged, does)."""
    assert Refusal(status, "origin not allowed: 'https://evil.example'").body == body


def test_refusal_is_a_frozen_value() -> None:
    """Refusal is a frozen, slotted value."""
    refusal = Refusal(403, "r")
    with pytest.raises(AttributeError):
        refusal.status = 200  # type: ignore[misc]
    assert not hasattr(refusal, "__dict__")


TRUSTED = trusted_networks(["10.0.0.0/8", "::1"])


@pytest.mark.parametrize(
    ("peer", "forwarded", "trusted", "expected"),
    [
        # No trusted proxies: the header is never read.
        ("10.1.2.3", ["203.0.113.7"], (), "10.1.2.3"),
        # A peer that is not a trusted proxy: its header is a client's claim.
        ("198.51.100.1", ["203.0.113.7"], TRUSTED, "198.51.100.1"),
        # A trusted proxy: the last address it appended.
        ("10.1.2.3", ["203.0.113.7"], TRUSTED, "203.0.113.7"),
        # A chain: right to left, skipping trusted proxies; what a client
        # prepended (1.1.1.1) is not believed.
        ("10.1.2.3", ["1.1.1.1, 203.0.113.7, 10.9.9.9"], TRUSTED, "203.0.113.7"),
        ("10.1.2.3", ["1.1.1.1", "203.0.113.7, 10.9.9.9"], TRUSTED, "203.0.113.7"),
        ("::1", ["2001:db8::1"], TRUSTED, "2001:db8::1"),
        # Every hop trusted: the leftmost.
        ("10.1.2.3", ["10.0.0.1, 10.0.0.2"], TRUSTED, "10.0.0.1"),
        # No header, an empty hop, or nonsense from the proxy: the proxy.
        ("10.1.2.3", [], TRUSTED, "10.1.2.3"),
        ("10.1.2.3", ["203.0.113.7, "], TRUSTED, "10.1.2.3"),
        ("10.1.2.3", ["<script>"], TRUSTED, "10.1.2.3"),
        # An unknown peer, or one that is not an IP address.
        (None, ["203.0.113.7"], TRUSTED, None),
        ("unix-socket", ["203.0.113.7"], TRUSTED, "unix-socket"),
    ],
)
def test_client_address(
    peer: str | None, forwarded: list[str], trusted: Any, expected: str | None
) -> None:
    """X-Forwarded-For is honoured only from trusted proxies, read right to left."""
    assert client_address(peer, forwarded, trusted) == expected


def test_trusted_networks_parse_and_refuse() -> None:
    """Networks parse leniently (host bits allowed); anything else is a UsageError."""
    assert trusted_networks(["10.1.0.0/8", ipaddress.ip_network("::1")]) == (
        ipaddress.ip_network("10.0.0.0/8"),
        ipaddress.ip_network("::1"),
    )
    for bad in (["example.com"], [None], "10.0.0.0/8"):
        with pytest.raises(UsageError, match="trusted_proxies"):
            trusted_networks(bad)  # type: ignore[arg-type]
