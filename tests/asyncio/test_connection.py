"""Tests for signedws.asyncio.connection's parts without a socket: the shared
service's limits, slots and sessions. The pump and the handler-facing
connection are tested over real sockets against every adapter
(tests/servers/test_server_contract.py); the protocol rules they pump, in
pure tests of signedws.server (tests/test_server.py)."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from helpers import AUDIENCE, FLEET_KEY, NOW

from signedws import Keyring, StreamMarks, UsageError, Verifier
from signedws.asyncio.connection import Service
from signedws.server import State


def test_public_api_is_pinned() -> None:
    """signedws.asyncio.connection.__all__ is exactly the pinned list, every
    name resolves, and the adapters' ServerConnection is this one class."""
    import signedws.asyncio
    from signedws.asyncio import connection

    assert connection.__all__ == [
        "DEFAULT_ACK_DELAY",
        "DEFAULT_FIRST_FRAME_TIMEOUT",
        "DEFAULT_IDLE_TIMEOUT",
        "DEFAULT_MAX_CONNECTIONS",
        "DEFAULT_MAX_CONNECTIONS_PER_PRINCIPAL",
        "DEFAULT_MAX_QUEUE",
        "FrameSink",
        "PullTransport",
        "PushTransport",
        "ServerConnection",
        "Service",
        "Transport",
        "log_refusal",
        "log_rejection",
    ]
    assert all(hasattr(connection, name) for name in connection.__all__)
    assert signedws.asyncio.ServerConnection is connection.ServerConnection


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
        ({"max_connections_per_principal": 0}, "max_connections_per_principal"),
        ({"trusted_proxies": ["not a network"]}, "trusted_proxies"),
        ({"trusted_proxies": "10.0.0.0/8"}, "trusted_proxies"),
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


def test_service_sessions_carry_its_configuration() -> None:
    """Each session the service makes shares its marks and principal cap and
    has its timeouts: the pump passes nothing of the protocol itself."""
    service = make_service(first_frame_timeout=3.0, ack_delay=None, verify_workers=1)
    session = service.session()
    assert session.state is State.AWAITING_FIRST_FRAME
    assert session.next_deadline() == NOW + 3.0
    assert service.session().nonce != session.nonce
    assert [str(n) for n in make_service(trusted_proxies=["10.0.0.0/8"]).trusted_proxies] == [
        "10.0.0.0/8"
    ]
