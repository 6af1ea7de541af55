"""Fixtures for the fleet tests: real ``signedws serve`` processes, Redis and
nginx on 127.0.0.1.

This directory has no ``__init__.py``, like ``tests/asyncio``; its helpers
live in ``fleet_support.py`` and the application handler the nodes run in
``fleet_record.py``. nginx and redis-server are Debian packages: missing
locally, the tests that need them are skipped with the reason; under
``CI=true`` (``.ci/run`` installs them) they fail.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

import pytest


@pytest.fixture
def run() -> Callable[..., Any]:
    """Run a coroutine in a new event loop, within a time limit."""

    def run(coro: Coroutine[Any, Any, Any], timeout: float = 30.0) -> Any:
        async def bounded() -> Any:
            async with asyncio.timeout(timeout):
                return await coro

        return asyncio.run(bounded())

    return run
