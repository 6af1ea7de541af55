"""README's code is code that runs: the core snippet executes, and the server and
client snippets are the tested files in examples/."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
BLOCKS = re.findall(r"```python\n(.*?)```", README, re.DOTALL)


def example_body(name: str) -> str:
    """An example file without its docstring line."""
    return (ROOT / "examples" / name).read_text().split("\n", 2)[2].strip()


def test_core_snippet_runs() -> None:
    """The core-at-a-glance snippet runs as printed and its assertion holds."""
    (core,) = [block for block in BLOCKS if "ServerSession(verifier" in block]
    exec(compile(core, "README.md", "exec"), {})  # noqa: S102 - our own README


def test_server_and_client_snippets_are_the_examples() -> None:
    """README's server and client are examples/server.py and client.py verbatim
    (those are run by tests/test_cli.py)."""
    assert example_body("server.py") + "\n" in BLOCKS
    assert example_body("client.py") + "\n" in BLOCKS


def test_snippets_are_short() -> None:
    """A complete server and client each fit in under 20 lines of code (blank
    lines, which the formatter requires between functions, not counted)."""
    for name in ("server.py", "client.py"):
        code = [line for line in example_body(name).splitlines() if line.strip()]
        assert len(code) < 20, name


def test_performance_figures_are_written_by_the_report() -> None:
    """README's performance figures stand between the markers that
    benchmarks/report.py rewrites from the last `make bench` (never typed)."""
    section = README.split("## Performance", 1)[1].split("\n## ", 1)[0]
    begin, end = "<!-- bench:begin -->", "<!-- bench:end -->"
    assert section.count(begin) == section.count(end) == 1
    figures = section.split(begin, 1)[1].split(end, 1)[0]
    outside = section.replace(figures, "")
    assert not re.search(r"\d\.\d+x|\d+ ns|frames/s", outside)


def _report() -> Any:
    """benchmarks/report.py, imported from its file (benchmarks/ is no package)."""
    spec = importlib.util.spec_from_file_location(
        "bench_report", ROOT / "benchmarks" / "report.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _broadcast_json() -> tuple[dict[str, Any], dict[str, Any]]:
    """What `broadcast_e2e.py local/fleet --json` write, in their shape."""
    env = {"date": "2026-12-06 16:00 UTC", "commit": "abc1234"}
    rows = {
        name: {"median_us": us, "min_us": us - 0.5, "rounds_us": [us, us - 0.5]}
        for name, us in (("bare", 13.0), ("topics", 21.0), ("frames", 1.5))
    }
    local = {
        "environment": env,
        "load_average": {"before": [1.0, 1.0, 1.0], "after": [1.5, 1.0, 1.0]},
        "recipients": 10_000,
        "rounds": 7,
        "payload_bytes": 128,
        "profiled": False,
        "schemes": {s: {"rows": rows, "topics_over_bare": 1.62} for s in ("mac", "ed25519")},
        "targets": [
            {"target": "mac frames only, CPU per recipient (µs)", "op": "<=", "bound": 2.0,
             "value": 1.5, "met": True},
            {"target": "mac publish, CPU per recipient (µs)", "op": "<=", "bound": 2.0,
             "value": 21.0, "met": False},
        ],
    }  # fmt: skip
    summary = {"receipts": 200, "median_ms": 9.5, "p90_ms": 22.0, "max_ms": 36.0}
    fleet = {
        "environment": env,
        "load_average": {"before": None, "after": None},
        "messages": 200,
        "interval_ms": 20,
        "all": summary,
        "nodes": {"B": summary, "C": summary},
        "targets": [
            {"target": "cross-node median latency, A -> B and C (ms)", "op": "<=",
             "bound": 20.0, "value": 9.5, "met": True},
        ],
    }  # fmt: skip
    return local, fleet


def test_report_writes_the_broadcast_section_and_keeps_it_without_json() -> None:
    """report.py turns broadcast_e2e.py's JSON into the "Broadcast and topics"
    section (figures, command, targets with met/missed) and README's headline
    line; a run without that JSON carries the section over, marked as kept."""
    report = _report()
    local, fleet = _broadcast_json()
    text = report.render(None, None, None, "", broadcast_local=local, broadcast_fleet=fleet)
    section = text.split(report.BROADCAST_TITLE, 1)[1]
    assert "--recipients 10000 --rounds 7 --json .benchmarks/broadcast_local.json" in section
    assert "broadcast_e2e.py fleet --messages 200" in section
    assert "| `mac` | 13.00 µs (12.50 µs) | 21.00 µs (20.50 µs) | 1.50 µs (1.00 µs) | 1.62x |" in (
        section
    )
    assert "| node B | 200 | 9.50 ms | 22.00 ms | 36.00 ms |" in section
    assert "| mac frames only, CPU per recipient (µs) | <= 2.00 µs | 1.50 µs | yes |" in section
    assert "| mac publish, CPU per recipient (µs) | <= 2.00 µs | 21.00 µs | **no** |" in section
    assert "| <= 20 ms | 9.50 ms | yes |" in section
    again = report.render(None, None, None, text)
    kept = again.split(report.BROADCAST_TITLE, 1)[1]
    assert kept.lstrip("\n").startswith(report.KEPT_NOTE)
    assert "| node B | 200 | 9.50 ms | 22.00 ms | 36.00 ms |" in kept
    line = report.broadcast_line(local, fleet)
    assert "10,000 connections" in line
    assert "1.62x" in line
    assert "median 9.5 ms" in line
    assert "median" not in report.broadcast_line(local, None)
