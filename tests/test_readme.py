"""README's code is code that runs: the core snippet executes, and the server and
client snippets are the tested files in examples/."""

from __future__ import annotations

import re
from pathlib import Path

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
