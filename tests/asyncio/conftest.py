"""Fixtures for the asyncio adapter tests.

This directory has no ``__init__.py`` on purpose: under pytest's default
``prepend`` import mode a package named ``asyncio`` would be imported as the
top-level ``asyncio`` and shadow the standard library. Shared helpers live in
``aio_support.py`` beside this file.

Tests are plain functions that call ``run(coro)`` (the fixture of
tests/conftest.py), which runs the coroutine in a fresh event loop under a time
limit: no asyncio plugin is needed, and no test can hang.
"""

from __future__ import annotations
