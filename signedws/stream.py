"""Exactly-once delivery over resends: per-stream high-water marks (SPEC.md §7.3).

A client resends the frames a dropped connection did not acknowledge, keeping
their ``(stream, seq)``. A frame the server accepted but whose acknowledgement
was lost therefore arrives twice, on two connections. `StreamMarks` remembers,
per ``(iss, sub, stream)``, the highest ``seq`` delivered, and says whether a
verified message is new.

It is bounded: it remembers the `capacity` most recently active streams and
forgets the least recently active one beyond that. A stream that was forgotten,
or that reconnects to another server of the fleet, is seen as new: marks held
here give exactly-once delivery per server process. An application that must
deliver once across restarts and servers keeps the mark with its own data
(SPEC.md §7.3).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Final

from .errors import UsageError
from .verifier import Message

__all__ = ["DEFAULT_CAPACITY", "StreamMarks", "stream_key"]

DEFAULT_CAPACITY: Final = 65536


def stream_key(issuer: str, subject: str, stream: bytes) -> bytes:
    """The key a stream's mark is kept under: the issuer, the subject (each
    UTF-8 with a 4-byte length, so no two triples share a key) and the stream.
    A bytes object caches its hash: a caller that makes the key once per
    stream (a connection) pays for no hashing per message."""
    iss, sub = issuer.encode(), subject.encode()
    return b"".join((len(iss).to_bytes(4, "big"), iss, len(sub).to_bytes(4, "big"), sub, stream))


class StreamMarks:
    """The highest ``seq`` delivered per stream, for the most recent streams."""

    __slots__ = ("_marks", "capacity")

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        if type(capacity) is not int or capacity < 1:
            raise UsageError("capacity must be a positive integer")
        self.capacity = capacity
        self._marks: OrderedDict[bytes, int] = OrderedDict()

    def is_new(self, message: Message) -> bool:
        """Record ``message`` and say whether it should be delivered.

        Control frames (``seq`` 0) are never delivered. A data frame is new if
        its ``seq`` is above the highest delivered for its stream; the mark
        then moves to it.
        """
        seq = message.seq
        if not seq:
            return False
        return self.advance(stream_key(message.issuer, message.subject, message.stream), seq)

    def advance(self, key: bytes, seq: int) -> bool:
        """`is_new` for a data frame (``seq`` >= 1) of the stream ``key``
        (from `stream_key`), for callers that keep the key of a stream."""
        marks = self._marks
        # Popped and put back: the stream becomes the most recently active.
        mark = marks.pop(key, 0)
        if seq <= mark:
            marks[key] = mark
            return False
        marks[key] = seq
        if not mark and len(marks) > self.capacity:
            marks.popitem(last=False)
        return True

    def mark(self, issuer: str, subject: str, stream: bytes) -> int:
        """The highest ``seq`` delivered for a stream (0 if unknown)."""
        return self._marks.get(stream_key(issuer, subject, stream), 0)

    def __len__(self) -> int:
        return len(self._marks)

    def __repr__(self) -> str:
        return f"StreamMarks({len(self._marks)}/{self.capacity})"
