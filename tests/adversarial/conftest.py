"""The adversarial suite (issue 6): fixtures and the report step.

No ``__init__.py`` here, as in ``tests/asyncio``: pytest puts this directory on
``sys.path``, so tests import ``corpus``, ``figures`` and ``adversary`` by name
(names chosen not to collide with anything else on the path).

The report step: every test records its figures in `figures.FIGURES`; at the
end of the session they are printed, and with ``SIGNEDWS_REPORT=1`` the "Last
run" section of ``SECURITY.md`` is rewritten from them, only if every test of
this directory passed.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import figures
import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent

_outcomes: dict[str, int] = {"passed": 0, "failed": 0, "skipped": 0}
_seconds: list[float] = []


@pytest.fixture
def run_timeout() -> float:
    """This directory's default time limit for `run` (see tests/conftest.py)."""
    return 60.0


def _ours(report: pytest.TestReport) -> bool:
    return Path(str(report.fspath)).resolve().is_relative_to(HERE)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Count this directory's outcomes and add up its time."""
    if not _ours(report):
        return
    _seconds.append(report.duration)
    if report.when == "call" or report.outcome != "passed":
        _outcomes[report.outcome] = _outcomes.get(report.outcome, 0) + 1


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Print every figure recorded this session."""
    if not figures.FIGURES:
        return
    terminalreporter.section("signedws adversarial figures")
    for key, figure in figures.FIGURES.items():
        terminalreporter.write_line(f"{key:32} {figure.shown():>16}  {figure.label}")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """With ``SIGNEDWS_REPORT=1``, write the "Last run" section of SECURITY.md."""
    if os.environ.get(figures.REPORT_ENV) != "1" or not figures.FIGURES:
        return
    total = sum(_seconds)
    if _outcomes.get("failed") or not _outcomes.get("passed"):
        print(f"\n{figures.REPORT_ENV}: not writing SECURITY.md: {_outcomes}")
        return
    figures.record(
        "run.tests",
        f"{_outcomes['passed']} passed, {_outcomes.get('skipped', 0)} skipped",
        "tests in tests/adversarial",
        section="run",
    )
    figures.record("run.seconds", total, "time of tests/adversarial", section="run", unit="s")
    outcome = f"{_outcomes['passed']} passed"
    figures.write_report(ROOT / "SECURITY.md", figures.render(ROOT, total, outcome))
    print(f"\n{figures.REPORT_ENV}: wrote the 'Last run' section of SECURITY.md")
