"""connect's default reconnection backoff is full jitter (issue 17 item 4);
the distribution itself is tested in tests/test_client_session.py."""

from __future__ import annotations

import inspect

from signedws.asyncio import connect
from signedws.client import Backoff


def test_the_default_backoff_is_full_jitter() -> None:
    """connect's default backoff draws the whole interval: jitter 1."""
    default = inspect.signature(connect).parameters["backoff"].default
    assert default == Backoff()
    assert default.jitter == 1.0
