"""Shared fixed inputs for the pure core tests: keys, a clock and a randomness source.

Nothing here is random and nothing reads a clock, so every test is reproducible.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

from signedws.keys import Ed25519PrivateKey, HMACKey

#: A fixed ``now``, seconds since the epoch (2023-11-14T22:13:20Z).
NOW = 1_700_000_000

#: RFC 8032 §7.1 TEST 1 seed; its public key is also RFC 8037 Appendix A.1's.
RFC8032_SEED = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")


@pytest.fixture
def now() -> int:
    """The fixed clock, seconds."""
    return NOW


@pytest.fixture
def zero_random() -> Callable[[int], bytes]:
    """A randomness source that returns n zero bytes."""
    return bytes


@pytest.fixture
def hmac_secret() -> HMACKey:
    """A fixed 32-byte HMAC issuer secret."""
    return HMACKey(bytes(range(32)))


@pytest.fixture
def issuer_key() -> Ed25519PrivateKey:
    """A fixed Ed25519 issuer key (the RFC 8032 TEST 1 seed)."""
    return Ed25519PrivateKey(RFC8032_SEED)


@pytest.fixture
def client_key() -> Ed25519PrivateKey:
    """A fixed Ed25519 client key, distinct from the issuer key."""
    return Ed25519PrivateKey(bytes([7]) * 32)


@pytest.fixture
def run_timeout() -> float:
    """Seconds a `run` coroutine may take by default (a directory's conftest
    may override it)."""
    return 20.0


@pytest.fixture
def run(run_timeout: float) -> Callable[..., Any]:
    """Run a coroutine in a new event loop, within a time limit: the asyncio,
    server, fleet and adversarial tests are plain functions that call
    ``run(coro)``, no asyncio plugin is needed, and no test can hang."""

    def run(coro: Coroutine[Any, Any, Any], timeout: float = run_timeout) -> Any:
        async def bounded() -> Any:
            async with asyncio.timeout(timeout):
                return await coro

        return asyncio.run(bounded())

    return run
