"""Tests for `signedws demo`: the attack gallery against a real local server."""

from __future__ import annotations

import asyncio
import io
import json
import subprocess
import sys
from pathlib import Path

from signedws.cli import demo

REPO = Path(__file__).resolve().parents[1]


def test_demo_passes_and_reports_every_attack() -> None:
    """Every gallery attack is rejected with its expected code and every honest
    message is delivered; --json reports it all."""
    out = io.StringIO()
    assert asyncio.run(asyncio.wait_for(demo.run(out, as_json=True), 30)) == 0
    report = json.loads(out.getvalue())
    assert report["passed"] is True
    attacks = report["attacks"]
    assert [a["attack"] for a in attacks] == [name for name, _, _ in demo.GALLERY]
    assert len(attacks) == 11
    for attack in attacks:
        assert attack["rejected"] is True, attack
        assert attack["code"] == attack["expected"], attack
        assert attack["ok"] is True
    by_name = {a["attack"]: a for a in attacks}
    assert by_name["replayed frame"]["close_code"] == 4409
    assert by_name["page from a disallowed Origin"]["status"] == 403
    assert by_name["oversized frame"]["close_code"] == 1009
    assert [(h["scheme"], h["ok"]) for h in report["honest"]] == [("mac", True), ("ed25519", True)]
    assert all(h["delivered"] == h["sent"] == h["echoes"] for h in report["honest"])


def test_signedws_demo_command() -> None:
    """`python -m signedws demo` prints progress, the table and a summary, exits 0."""
    result = subprocess.run(
        [sys.executable, "-m", "signedws", "demo"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "honest clients" in out
    assert "attack gallery" in out
    for name, _, expected in demo.GALLERY:
        assert name in out
        assert expected in out
    assert out.rstrip().endswith("PASS")
    assert "ACCEPTED" not in out
    assert result.stderr == ""
