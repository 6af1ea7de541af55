"""Log formatting for the ``signedws`` command line: ISO 8601 times, as text
(``--log-format text``, the default) or one JSON object per line
(``--log-format json``).

Both formats carry the same fields: ``time`` (ISO 8601, UTC, milliseconds),
``level``, ``logger``, ``message``, the ``worker`` index under ``--workers``,
and the traceback (``exception``) if there is one. The message is the one
the text format shows, so the rules that keep secrets out of log messages
keep them out of both. Standard library only.
"""

from __future__ import annotations

import datetime
import json
import logging
from typing import Final

__all__ = ["FORMATS", "JSONFormatter", "TextFormatter", "When", "configure", "iso_time"]

#: The values of ``--log-format``.
FORMATS: Final = ("text", "json")


def iso_time(seconds: float) -> str:
    """``seconds`` since the epoch as ISO 8601 in UTC, to the millisecond:
    ``2026-12-06T13:14:14.123Z``; "out of range" for a time that has none."""
    try:
        moment = datetime.datetime.fromtimestamp(seconds, tz=datetime.UTC)
    except (OverflowError, OSError, ValueError):
        return "out of range"
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class When:
    """A time for a log line or error detail, formatted lazily (only if the
    line is written) as its epoch seconds and ISO 8601: ``1765026854
    (2026-12-06T13:14:14.000Z)``, so that a person reads it and a script can
    still compare it."""

    __slots__ = ("seconds",)

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def __str__(self) -> str:
        seconds = self.seconds
        shown = str(int(seconds)) if float(seconds).is_integer() else f"{seconds:.3f}"
        return f"{shown} ({iso_time(seconds)})"

    def __format__(self, spec: str) -> str:
        return str(self)

    __repr__ = __str__


class TextFormatter(logging.Formatter):
    """``TIME LEVEL LOGGER[ [worker N]]: MESSAGE``, TIME in ISO 8601 (UTC)."""

    def __init__(self, worker: int | None = None) -> None:
        where = f" [worker {worker}]" if worker is not None else ""
        super().__init__(f"%(asctime)s %(levelname)s %(name)s{where}: %(message)s")

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        """The record's time in ISO 8601, UTC."""
        return iso_time(record.created)


class JSONFormatter(logging.Formatter):
    """One JSON object per record, on one line: the text format's fields."""

    def __init__(self, worker: int | None = None) -> None:
        super().__init__()
        self.worker = worker

    def format(self, record: logging.LogRecord) -> str:
        """The record as a one-line JSON object."""
        document: dict[str, object] = {
            "time": iso_time(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if self.worker is not None:
            document["worker"] = self.worker
        if record.exc_info:
            document["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            document["stack"] = self.formatStack(record.stack_info)
        # ensure_ascii: a control character in a message cannot break the line.
        return json.dumps(document, ensure_ascii=True)


def configure(level: str, log_format: str = "text", *, worker: int | None = None) -> None:
    """Send the root logger's records to stderr at ``level`` in ``log_format``
    (one of `FORMATS`). Like `logging.basicConfig`, it adds no handler to a
    root logger that has one already (an application's, or pytest's)."""
    import sys  # noqa: PLC0415 - stderr as it is now (tests replace it)

    root = logging.getLogger()
    root.setLevel(level)
    if root.handlers:
        return
    formatter = JSONFormatter(worker) if log_format == "json" else TextFormatter(worker)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root.addHandler(handler)
