"""Wycheproof HMAC-SHA256 vectors: the primitive signedws builds on, and the full-tag rule.

signedws accepts only full 32-byte tags; its own HMAC code path is tested elsewhere.
The vectors are third-party data read in place from ``$SIGNEDWS_PUBLIC_VECTORS``
(the ``public_vectors`` fixture: ``../shared/vectors`` by default; skipped with one
summary line without them, a failure under ``CI=true``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path
from typing import Any


def _tests(folder: Path, tag_size: int) -> list[dict[str, Any]]:
    """The Wycheproof HMAC-SHA256 tests whose tag is tag_size bits long."""
    data = json.loads((folder / "hmac_sha256_test.json").read_text(encoding="utf-8"))
    return [
        test
        for group in data["testGroups"]
        if group["tagSize"] == tag_size
        for test in group["tests"]
    ]


def _mac(test: dict[str, Any]) -> bytes:
    key, msg = bytes.fromhex(test["key"]), bytes.fromhex(test["msg"])
    return hmac.new(key, msg, hashlib.sha256).digest()


def test_full_tags(public_vectors: Path) -> None:
    """A 32-byte tag verifies iff Wycheproof says it is valid."""
    tests = _tests(public_vectors, 256)
    assert len(tests) == 87
    mismatches = []
    for test in tests:
        verified = hmac.compare_digest(_mac(test), bytes.fromhex(test["tag"]))
        if verified != (test["result"] == "valid"):
            mismatches.append(test["tcId"])
    assert mismatches == []


def test_truncated_tags_are_refused(public_vectors: Path) -> None:
    """A 16-byte tag never passes a full-tag comparison, even a correct truncation."""
    tests = _tests(public_vectors, 128)
    assert len(tests) == 87
    for test in tests:
        tag, full = bytes.fromhex(test["tag"]), _mac(test)
        assert len(tag) == 16, test["tcId"]
        # The vector itself is right about the truncated tag ...
        assert (full[:16] == tag) == (test["result"] == "valid"), test["tcId"]
        # ... but a full-tag comparison refuses it either way.
        assert not hmac.compare_digest(full, tag), test["tcId"]
