"""Shared fixed inputs for the pure core tests: keys, a clock and a randomness source.

Nothing here is random and nothing reads a clock, so every test is reproducible.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest

from signedws.keys import Ed25519PrivateKey, HMACKey

#: Third-party vector suites (Wycheproof, ed25519-speccheck, C2SP CCTV, RFC 8032) that
#: are not ours to redistribute: read in place, never copied into the repository.
PUBLIC_VECTORS = Path(
    os.environ.get("SIGNEDWS_PUBLIC_VECTORS")
    or Path(__file__).resolve().parents[2] / "shared" / "vectors"
)

#: The files the public-vector tests read (tests/test_ed25519.py, test_public_hmac.py).
PUBLIC_VECTOR_FILES = (
    "cases.json",
    "ed25519_small_order_encodings.json",
    "ed25519_test.json",
    "ed25519vectors.json",
    "hmac_sha256_test.json",
    "rfc8032_ed25519_vectors.json",
)

#: A fixed ``now``, seconds since the epoch (2023-11-14T22:13:20Z).
NOW = 1_700_000_000

#: RFC 8032 §7.1 TEST 1 seed; its public key is also RFC 8037 Appendix A.1's.
RFC8032_SEED = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")


_PUBLIC_VECTORS_NOT_RUN = "public vector suites NOT RUN"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Report every public-vector skip at one place, so that ``-ra`` sums them up
    in one line instead of one per test."""
    report = yield
    longrepr = report.longrepr
    if report.skipped and isinstance(longrepr, tuple) and _PUBLIC_VECTORS_NOT_RUN in longrepr[2]:
        report.longrepr = (__file__, 0, longrepr[2])
    return report


@pytest.fixture(scope="session")
def public_vectors() -> Path:
    """The folder of third-party vector suites.

    Absent: every test that needs it is skipped, all under this one reason (so
    ``-ra`` prints a single summary line); under ``CI=true`` it is a failure.
    """
    missing = [name for name in PUBLIC_VECTOR_FILES if not (PUBLIC_VECTORS / name).is_file()]
    if missing:
        reason = (
            f"{_PUBLIC_VECTORS_NOT_RUN}: {len(missing)} of their files are missing from "
            f"{PUBLIC_VECTORS}; set SIGNEDWS_PUBLIC_VECTORS to a folder holding "
            f"{', '.join(PUBLIC_VECTOR_FILES)} (Wycheproof, ed25519-speccheck, C2SP CCTV, "
            "RFC 8032) to run them"
        )
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true and {reason}")
        pytest.skip(reason)
    return PUBLIC_VECTORS


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
