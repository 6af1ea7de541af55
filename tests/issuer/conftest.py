"""Fixtures for the issuer tests: a real OpenID Provider (oidc-provider, run by
Node as a subprocess on 127.0.0.1) and the issuer service under a real uvicorn.

The provider lives in ``op/`` with its own package.json and lock file; install
it with ``npm ci --prefix tests/issuer/op``. Without Node or that install, the
tests that need it are skipped with the reason (CI installs both).

No ``__init__.py``: pytest puts this directory on ``sys.path``; the asyncio
tests' helpers (``aio_support``) are put there too.
"""

from __future__ import annotations

import json
import select
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

_HERE = Path(__file__).resolve().parent
_ASYNCIO_TESTS = str(_HERE.parent / "asyncio")
if _ASYNCIO_TESTS not in sys.path:
    sys.path.insert(0, _ASYNCIO_TESTS)

from issuer_support import OP_DIR, OpenIDProvider, missing_tool, op_missing  # noqa: E402 - after the path


@pytest.fixture(scope="module")
def op() -> Iterator[OpenIDProvider]:
    """A fresh provider per test module (rotation changes its keys)."""
    missing = op_missing()
    if missing is not None:
        missing_tool(missing)
    process = subprocess.Popen(
        ["node", "op.mjs"],  # noqa: S607 - node from PATH, checked above
        cwd=OP_DIR,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout is not None
        ready, _, _ = select.select([process.stdout], [], [], 30)
        line = process.stdout.readline() if ready else ""
        if not line:
            pytest.fail("the OpenID Provider did not start")
        yield OpenIDProvider(json.loads(line)["issuer"], process)
    finally:
        if process.stdin is not None:
            process.stdin.close()
        process.terminate()
        process.wait(timeout=10)
