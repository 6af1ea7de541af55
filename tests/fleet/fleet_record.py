"""The fleet tests' application: a handler that records what it is given,
exactly once across every node of the fleet (SPEC.md §7.3).

``signedws serve`` runs it as ``handler = "fleet_record:handler"`` (this
directory on ``PYTHONPATH``); ``SIGNEDWS_FLEET_RECORD`` names a directory
shared by the nodes, the application's data store:

- ``record.jsonl``: the application's data. One JSON line per message kept,
  with its ``(iss, sub, stream, seq)``; the lines *are* the per-stream
  high-water marks, so data and marks change in one step (one append under
  the lock).
- ``offered.jsonl``: every message the transport handed to the handler, kept
  or not, so a test can count the resends the application absorbed.
- ``lock``: an ``fcntl`` lock file; every node takes it around
  read-marks-decide-append.

Nodes share nothing else: each keeps its own connections, replay windows and
(per-node) stream marks in memory.
"""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path
from typing import Any

from signedws import Message
from signedws.asyncio import ServerConnection

__all__ = ["Store", "handler", "read_lines"]

Key = tuple[str, str, str]


def read_lines(path: Path) -> list[dict[str, Any]]:
    """The complete JSON lines of ``path`` (none if it does not exist)."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().split("\n")[:-1] if line]


class Store:
    """The shared record and this process's view of its marks."""

    def __init__(self, directory: Path) -> None:
        self.record = directory / "record.jsonl"
        self.offered = directory / "offered.jsonl"
        self.lock = directory / "lock"
        self.marks: dict[Key, int] = {}
        self._read = 0  # bytes of the record already folded into `marks`

    def _catch_up(self) -> None:
        """Fold the lines other nodes appended since the last look."""
        with self.record.open("rb") as file:
            file.seek(self._read)
            tail = file.read()
        complete = tail[: tail.rfind(b"\n") + 1]
        self._read += len(complete)
        for line in complete.splitlines():
            entry = json.loads(line)
            self.marks[(entry["iss"], entry["sub"], entry["stream"])] = entry["seq"]

    def offer(self, node: str, message: Message) -> bool:
        """Keep ``message`` unless its stream's mark already covers it."""
        entry = {
            "node": node,
            "iss": message.issuer,
            "sub": message.subject,
            "stream": message.stream.hex(),
            "seq": message.seq,
            "payload": message.payload,
        }
        key = (message.issuer, message.subject, message.stream.hex())
        fd = os.open(self.lock, os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            self.record.touch()
            self._catch_up()
            new = message.seq > self.marks.get(key, 0)
            _append(self.offered, {**entry, "kept": new})
            if new:
                self._read += _append(self.record, entry)
                self.marks[key] = message.seq
            return new
        finally:
            os.close(fd)


def _append(path: Path, entry: dict[str, Any]) -> int:
    data = (json.dumps(entry) + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)
    return len(data)


_store: Store | None = None


async def handler(connection: ServerConnection) -> None:
    """Record every message once, fleet-wide; acknowledge once recorded."""
    global _store  # noqa: PLW0603 - one store per process, made on first use
    if _store is None:
        _store = Store(Path(os.environ["SIGNEDWS_FLEET_RECORD"]))
    node = connection.session.nonce[1:9].hex()  # SPEC.md §5.3: the minting node
    async for message in connection:
        _store.offer(node, message)
