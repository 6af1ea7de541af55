"""Figures the adversarial suite measures, and the report step that writes them.

Tests call `record` with what they tried and what they measured; at the end of
the session ``conftest.py`` prints every figure, and with ``SIGNEDWS_REPORT=1``
(``make security-report``) rewrites the "Last run" section of ``SECURITY.md``
between its two markers. Nothing else in ``SECURITY.md`` is touched, and
without the variable nothing is written (so ``make test`` leaves the tree
clean).
"""

from __future__ import annotations

import datetime
import os
import platform
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Final

__all__ = [
    "BEGIN",
    "END",
    "FIGURES",
    "REPORT_ENV",
    "Figure",
    "peak_rss_kib",
    "record",
    "render",
    "rss_kib",
    "write_report",
]

REPORT_ENV: Final = "SIGNEDWS_REPORT"
BEGIN: Final = "<!-- BEGIN LAST RUN: written by tests/adversarial (make security-report) -->"
END: Final = "<!-- END LAST RUN -->"

#: The sections of the table, in order, with their titles.
SECTIONS: Final = {
    "input": "Bad input",
    "dos": "DoS economics",
    "load": "Load",
    "faults": "Faults",
    "time": "Time",
    "run": "This run",
}


@dataclass(slots=True)
class Figure:
    """One measured or counted value."""

    section: str
    label: str
    value: int | float | str
    unit: str = ""

    def shown(self) -> str:
        """The value as the table shows it."""
        if isinstance(self.value, float):
            text = f"{self.value:,.1f}" if self.value >= 100 else f"{self.value:.2f}"
        elif isinstance(self.value, int):
            text = f"{self.value:,}"
        else:
            text = self.value
        return f"{text} {self.unit}".strip()


#: Every figure recorded in this session, by key, in recording order.
FIGURES: dict[str, Figure] = {}


def record(
    key: str, value: int | float | str, label: str, *, section: str, unit: str = ""
) -> None:
    """Record (or replace) the figure ``key``."""
    assert section in SECTIONS, section
    FIGURES[key] = Figure(section, label, value, unit)


def add(key: str, amount: int, label: str, *, section: str, unit: str = "") -> None:
    """Add ``amount`` to the integer figure ``key`` (created at 0)."""
    current = FIGURES.get(key)
    base = current.value if current is not None and isinstance(current.value, int) else 0
    record(key, base + amount, label, section=section, unit=unit)


def rss_kib(pid: int | str = "self") -> int:
    """A process's resident set size, KiB (Linux ``/proc``)."""
    return _status_kib(pid, "VmRSS")


def peak_rss_kib(pid: int | str = "self") -> int:
    """A process's peak resident set size, KiB (Linux ``/proc``)."""
    return _status_kib(pid, "VmHWM")


def _status_kib(pid: int | str, field: str) -> int:
    text = Path(f"/proc/{pid}/status").read_text()
    match = re.search(rf"^{field}:\s+(\d+) kB$", text, re.MULTILINE)
    assert match, f"no {field} in /proc/{pid}/status"
    return int(match.group(1))


def _git(root: Path, *args: str) -> str | None:
    try:
        out = subprocess.run(  # noqa: S603 - fixed read-only git queries
            ["git", *args],  # noqa: S607
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip()


def _commit(root: Path) -> str:
    """The commit run, and whether the tree had changes on top of it."""
    commit = _git(root, "rev-parse", "--short", "HEAD")
    if commit is None:
        return "an unknown commit"
    dirty = _git(root, "status", "--porcelain", "--untracked-files=no")
    return f"commit `{commit}`" + (" with uncommitted changes" if dirty else "")


def render(root: Path, seconds: float, outcome: str) -> str:
    """The "Last run" section: a table per section, then how it was run."""
    now = datetime.datetime.now(tz=datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        BEGIN,
        "",
        f"Run {now} on {_commit(root)}: Python {platform.python_version()}, "
        f"{os.cpu_count()} cores, {platform.system()} {platform.machine()}; "
        f"`tests/adversarial` {outcome} in {seconds:.0f} s.",
        "",
    ]
    for section, title in SECTIONS.items():
        rows = [f for f in FIGURES.values() if f.section == section]
        if not rows:
            continue
        lines += [f"**{title}**", "", "| figure | value |", "|---|---|"]
        lines += [f"| {f.label} | {f.shown()} |" for f in rows]
        lines.append("")
    lines.append(END)
    return "\n".join(lines)


def write_report(path: Path, section: str) -> None:
    """Replace the text between the markers of ``path`` with ``section``.

    Raises:
        ValueError: if the markers are missing (the file is hand-written
            around them; the report step never invents its structure).
    """
    text = path.read_text()
    start, end = text.find(BEGIN), text.find(END)
    if start < 0 or end < start:
        raise ValueError(f"{path}: the 'Last run' markers are missing")
    path.write_text(text[:start] + section + text[end + len(END) :])
