"""Tests for signedws.connection's pure parts: the Origin policy, the shared
service's limits and slots, and the unverified kind sniff. The pump and the
handler-facing connection are tested over real sockets against every adapter
(tests/servers/test_server_contract.py)."""

from __future__ import annotations

import logging
import re
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from helpers import AUDIENCE, FLEET_KEY, NOW, certificate, make_keyring, token

from signedws import Keyring, StreamMarks, UsageError, Verifier
from signedws.connection import OriginPolicy, Service, _unverified_kind
from signedws.envelope import KIND_CLIENT_ED25519, KIND_CLIENT_MAC
from signedws.signer import Signer


def test_public_api_is_pinned() -> None:
    """signedws.connection.__all__ is exactly the pinned list, and every name
    resolves; the websockets adapter's connection type derives from its."""
    import signedws.asyncio
    import signedws.connection

    assert signedws.connection.__all__ == [
        "DEFAULT_ACK_DELAY",
        "DEFAULT_FIRST_FRAME_TIMEOUT",
        "DEFAULT_IDLE_TIMEOUT",
        "DEFAULT_MAX_CONNECTIONS",
        "DEFAULT_MAX_CONNECTIONS_PER_PRINCIPAL",
        "DEFAULT_MAX_QUEUE",
        "SUBPROTOCOL",
        "FrameSink",
        "OriginPolicy",
        "PullTransport",
        "PushTransport",
        "ServerConnection",
        "Service",
        "Transport",
        "log_refusal",
        "log_rejection",
    ]
    assert all(hasattr(signedws.connection, name) for name in signedws.connection.__all__)
    base = signedws.connection.ServerConnection
    assert issubclass(signedws.asyncio.ServerConnection, base)


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


def make_service(**kwargs: Any) -> Service:
    defaults: dict[str, Any] = {
        "verifier": Verifier(Keyring(), audience=AUDIENCE, fleet_key=FLEET_KEY),
        "server_key": None,
        "first_frame_timeout": 10.0,
        "idle_timeout": 300.0,
        "max_connections": 2,
        "ack_delay": 0.02,
        "max_queue": 16,
        "stream_marks": None,
        "dedupe": True,
        "executor": None,
        "verify_workers": 1,
        "clock": lambda: float(NOW),
    }
    return Service(**{**defaults, **kwargs})


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"verifier": object()}, "Verifier"),
        ({"first_frame_timeout": -1}, "first_frame_timeout"),
        ({"idle_timeout": -0.5}, "idle_timeout"),
        ({"ack_delay": -1}, "ack_delay"),
        ({"max_connections": 0}, "max_connections"),
        ({"max_connections": 1.5}, "max_connections"),
        ({"max_queue": 0}, "max_queue"),
        ({"max_queue": True}, "max_queue"),
    ],
)
def test_service_refuses_bad_limits(kwargs: dict[str, Any], message: str) -> None:
    """Invalid limits are a UsageError naming the limit."""
    with pytest.raises(UsageError, match=message):
        make_service(**kwargs)


def test_service_slots(caplog: pytest.LogCaptureFixture) -> None:
    """admit takes a slot until max_connections, then logs server_busy once per
    refusal; release frees a slot and is idempotent."""
    caplog.set_level(logging.INFO, logger="signedws")
    service = make_service(max_connections=2)
    assert service.admit("a", "id-a")
    assert service.admit("b", "id-b")
    assert not service.admit("c", "id-c")
    (record,) = caplog.records
    assert record.getMessage() == (
        "rejected connection=id-c code=server_busy number=504 detail=2 connections, limit 2"
    )
    service.release("a")
    service.release("a")
    assert service.admit("c", "id-c")
    assert service.slots == {"b", "c"}


def test_service_marks_and_executor() -> None:
    """Stream marks are shared, new by default and absent without dedupe; the
    Ed25519 pool is made once, on first use, unless one is given."""
    marks = StreamMarks(8)
    assert make_service(stream_marks=marks).marks is marks
    assert isinstance(make_service().marks, StreamMarks)
    assert make_service(dedupe=False, stream_marks=marks).marks is None
    service = make_service()
    pool = service.executor
    assert service.executor is pool
    pool.shutdown()
    given = ThreadPoolExecutor(max_workers=1)
    assert make_service(executor=given).executor is given
    given.shutdown()


def test_service_offloads_only_with_a_pool_of_several_or_an_executor() -> None:
    """Ed25519 frames leave the loop with a caller's executor or a pool of more
    than one thread; a pool of one would add hand-offs beside a busy loop."""
    assert not make_service(verify_workers=1).offload
    assert make_service(verify_workers=2).offload
    given = ThreadPoolExecutor(max_workers=1)
    assert make_service(verify_workers=1, executor=given).offload
    given.shutdown()


def test_unverified_kind() -> None:
    """The kind sniff reads the kind of honest frames and nothing of others."""
    verifier = Verifier(make_keyring(), audience=AUDIENCE, fleet_key=FLEET_KEY)
    hello = verifier.hello(verifier.open(now=NOW, random=bytes), now=NOW)
    for credential, kind in ((token(), KIND_CLIENT_MAC), (certificate(), KIND_CLIENT_ED25519)):
        signer = Signer.from_hello(hello, credential, audience=AUDIENCE, now=NOW)
        assert _unverified_kind(signer.sign("x", now=NOW)) == kind
    assert _unverified_kind(b"") is None
    assert _unverified_kind(b"\x9a\x02\x01") is None
    assert _unverified_kind(b"\x99\x01\x01") is None
