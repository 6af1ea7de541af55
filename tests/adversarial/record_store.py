"""An application handler that records what it receives, exactly once across
server restarts (SPEC.md §7.3).

``signedws serve`` runs it as ``handler = "record_store:record"`` (this
directory on ``PYTHONPATH``); ``SIGNEDWS_RECORD`` names the record file.

The transport delivers at least once: a frame accepted just before the server
died, whose acknowledgement was lost with it, is resent by the client to the
next server process. The spec's answer is the application's own per-stream
high-water mark, kept with its data in one transaction. Here the data *is*
the mark: each delivered message is one JSON line carrying its ``(iss, sub,
stream, seq)``, appended with a single ``write`` to an ``O_APPEND`` file
descriptor (no user-space buffer, so a killed process loses nothing it
wrote). At start the marks are rebuilt from the file; a message whose ``seq``
is not above its stream's mark was recorded before and is dropped, and the
drop is appended to ``<record>.dups`` so tests can count resends the
application absorbed.
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

from signedws.asyncio import ServerConnection

__all__ = ["Store", "read_record", "record"]

Key = tuple[str, str, str]


def read_record(path: Path) -> list[dict[str, Any]]:
    """The complete lines of a record file (a torn last line is ignored)."""
    if not path.exists():
        return []
    text = path.read_text()
    lines = text.split("\n")
    return [json.loads(line) for line in lines[:-1] if line]


class Store:
    """The record file and the marks rebuilt from it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.marks: dict[Key, int] = {}
        if path.exists():
            text = path.read_bytes()
            complete = text[: text.rfind(b"\n") + 1]
            if len(complete) != len(text):
                # A line torn by a crash: it was never a delivery.
                with path.open("r+b") as file:
                    file.truncate(len(complete))
            for entry in read_record(path):
                key = (entry["iss"], entry["sub"], entry["stream"])
                self.marks[key] = max(self.marks.get(key, 0), entry["seq"])
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT
        self._fd = os.open(path, flags, 0o600)
        self._dups = os.open(path.with_name(path.name + ".dups"), flags, 0o600)

    def append(self, iss: str, sub: str, stream: bytes, seq: int, payload: object) -> bool:
        """Record a message unless its stream's mark is already at ``seq``."""
        key = (iss, sub, stream.hex())
        line = {"iss": iss, "sub": sub, "stream": key[2], "seq": seq, "pid": os.getpid()}
        if seq <= self.marks.get(key, 0):
            os.write(self._dups, (json.dumps(line) + "\n").encode())
            return False
        line["payload"] = payload if isinstance(payload, str) else repr(payload)
        os.write(self._fd, (json.dumps(line) + "\n").encode())
        self.marks[key] = seq
        return True


_store: Store | None = None


def store() -> Store:
    """This process's store, opened on first use."""
    global _store  # noqa: PLW0603 - one store per server process
    if _store is None:
        _store = Store(Path(os.environ["SIGNEDWS_RECORD"]))
    return _store


async def record(connection: ServerConnection) -> None:
    """Record every verified message of ``connection``, once.

    ``SIGNEDWS_RECORD_DELAY`` (seconds) makes the handler slow: it waits that
    long before recording each message, as an application that does real work
    would.
    """
    records = store()
    delay = float(os.environ.get("SIGNEDWS_RECORD_DELAY", "0"))
    async for message in connection:
        if delay:
            await asyncio.sleep(delay)
        records.append(
            message.issuer, message.subject, message.stream, message.seq, message.payload
        )
