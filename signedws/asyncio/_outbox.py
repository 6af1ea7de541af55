"""The client's outbox: messages sent but not yet acknowledged (SPEC.md §7.3).

Transport-free on purpose, like `_reconnect`: any client adapter can use it.

Theory of operation
-------------------
Every application message gets the stream's next ``seq`` when it enters the
outbox and keeps it for life. On each connection the client signs the pending
messages again, in ``seq`` order, under that connection's counters, and
records the counter each was sent under. A server acknowledgement ``ack``
covers every frame of the current connection with a counter ``<= ack``: those
messages were accepted (and, over an ordered transport where any rejection
closes the connection, delivered), so they leave the outbox.

Invariants:

1. Entries are in ``seq`` order, and on the current connection the ones that
   were sent carry strictly increasing counters and come before the ones that
   were not: the client sends in ``seq`` order under one lock.
2. An acknowledgement only removes entries sent on the current connection
   (``counter > 0``); `restart` zeroes every counter when a connection opens.
3. Nothing is removed except by an acknowledgement, or by `discard` and
   `remove` for a message that could not be signed at all.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass

from ..envelope import Payload
from ..errors import UsageError

__all__ = ["Entry", "Outbox"]


@dataclass(slots=True)
class Entry:
    """One pending message."""

    #: Its number in the stream, fixed for life.
    seq: int
    #: The application payload (never None: control frames are not kept).
    payload: str | bytes
    #: The client counter it was last sent under on the current connection;
    #: 0 if it was not sent on it yet.
    counter: int = 0


class Outbox:
    """Messages awaiting acknowledgement, in stream order.

    Args:
        seq: the ``seq`` of the last message already numbered (0 for a new
            stream).
    """

    __slots__ = ("_entries", "_seq")

    def __init__(self, seq: int = 0) -> None:
        self._entries: deque[Entry] = deque()
        self._seq = seq

    @property
    def seq(self) -> int:
        """The ``seq`` of the last message numbered."""
        return self._seq

    def add(self, payload: Payload) -> Entry:
        """Number a new message and keep it until it is acknowledged.

        Raises:
            UsageError: for a payload that is not str or bytes.
        """
        if type(payload) is not str and type(payload) is not bytes:
            raise UsageError("payload must be str or bytes")
        self._seq += 1
        entry = Entry(self._seq, payload)
        self._entries.append(entry)
        return entry

    def discard(self, entry: Entry) -> None:
        """Forget the newest message, which could not be signed, and give its
        ``seq`` back.

        Raises:
            UsageError: if ``entry`` is not the newest message.
        """
        if not self._entries or self._entries[-1] is not entry:
            raise UsageError("only the newest message can be discarded")
        self._entries.pop()
        self._seq -= 1

    def remove(self, entry: Entry) -> None:
        """Forget a message that can never be sent (e.g. too large for the
        server of a new connection). Its ``seq`` stays used.

        Raises:
            UsageError: if ``entry`` is not pending.
        """
        try:
            self._entries.remove(entry)
        except ValueError:
            raise UsageError("not a pending message") from None

    def restart(self) -> list[Entry]:
        """A new connection opened: forget the old counters and return the
        messages to send again, in order."""
        for entry in self._entries:
            entry.counter = 0
        return list(self._entries)

    def acknowledge(self, ack: int) -> int:
        """Drop the messages sent on this connection under a counter
        ``<= ack``. Returns how many were dropped."""
        dropped = 0
        entries = self._entries
        while entries and 0 < entries[0].counter <= ack:
            entries.popleft()
            dropped += 1
        return dropped

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator[Entry]:
        return iter(self._entries)

    def __repr__(self) -> str:
        return f"Outbox(pending={len(self._entries)}, seq={self._seq})"
