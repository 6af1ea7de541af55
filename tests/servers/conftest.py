"""Fixtures for the server tests: the contract every server adapter meets, and
the ASGI adapter's own tests.

No ``__init__.py`` here, as in ``tests/asyncio``: pytest puts this directory on
``sys.path`` and tests import ``server_support`` by name. The contract reuses
the asyncio tests' fixed keys, helpers and attack gallery, so this directory
puts ``tests/asyncio`` on ``sys.path`` too.

Tests are plain functions that call ``run(coro)`` (the fixture of
tests/conftest.py), which runs the coroutine in a fresh event loop under a time
limit: uvicorn runs as tasks of that same loop, so a test reaches its server's
objects directly, and no test can hang.
"""

from __future__ import annotations

import sys
from pathlib import Path

_ASYNCIO_TESTS = str(Path(__file__).resolve().parents[1] / "asyncio")
if _ASYNCIO_TESTS not in sys.path:
    sys.path.insert(0, _ASYNCIO_TESTS)
