"""Fixtures for the fleet tests: real ``signedws serve`` processes, Redis and
nginx on 127.0.0.1.

This directory has no ``__init__.py``, like ``tests/asyncio``; its helpers
live in ``fleet_support.py`` and the application handler the nodes run in
``fleet_record.py``. nginx and redis-server are Debian packages: missing
locally, the tests that need them are skipped with the reason; under
``CI=true`` (``.ci/run`` installs them) they fail.
"""

from __future__ import annotations

import pytest


@pytest.fixture
def run_timeout() -> float:
    """This directory's default time limit for `run` (see tests/conftest.py)."""
    return 30.0
