"""Exactly-once delivery over resends: per-stream high-water marks (SPEC.md §7.3).

A client resends the frames a dropped connection did not acknowledge, keeping
their ``(stream, seq)``. A frame the server accepted but whose acknowledgement
was lost therefore arrives twice, on two connections. `StreamMarks` remembers,
per ``(iss, sub, stream)``, the highest ``seq`` delivered, and says whether a
verified message is new.

It is bounded, per principal first: each ``(iss, sub)`` keeps the marks of at
most `per_principal` streams (its most recently active ones), and a principal
that opens more streams forgets only its own least recently active one. Beyond
that, the whole holds at most `capacity` marks, and forgets the least recently
active stream of the least recently active principal. Clients choose stream
ids freely: one principal can therefore cost others nothing but the marks of
principals idle longer than it has been busy, and only by holding more than
``capacity / per_principal`` principals' credentials. A stream that was
forgotten, or that reconnects to another server of the fleet, is seen as new:
marks held here give exactly-once delivery per server process. An application
that must deliver once across restarts and servers keeps the mark with its own
data (SPEC.md §7.3).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Final, NamedTuple

from .errors import UsageError
from .verifier import Message

__all__ = ["DEFAULT_CAPACITY", "DEFAULT_PER_PRINCIPAL", "StreamKey", "StreamMarks", "stream_key"]

DEFAULT_CAPACITY: Final = 65536
#: The streams one principal keeps marks for (SPEC.md §7.3).
DEFAULT_PER_PRINCIPAL: Final = 256


class StreamKey(NamedTuple):
    """Where a stream's mark is kept: its principal's key and its own."""

    #: The issuer and the subject, each UTF-8 with a 4-byte length.
    principal: bytes
    #: ``principal`` followed by the stream id: no two triples share it.
    stream: bytes


def stream_key(issuer: str, subject: str, stream: bytes) -> StreamKey:
    """The key a stream's mark is kept under. Bytes objects cache their hash:
    a caller that makes the key once per stream (a connection) pays for no
    hashing per message, and nothing is sliced or parsed per message."""
    iss, sub = issuer.encode(), subject.encode()
    principal = b"".join((len(iss).to_bytes(4, "big"), iss, len(sub).to_bytes(4, "big"), sub))
    return StreamKey(principal, principal + stream)


class StreamMarks:
    """The highest ``seq`` delivered per stream, for the most recent streams
    of each principal (see the module docstring for the bounds)."""

    __slots__ = ("_count", "_last", "_last_streams", "_principals", "capacity", "per_principal")

    def __init__(
        self, capacity: int = DEFAULT_CAPACITY, *, per_principal: int = DEFAULT_PER_PRINCIPAL
    ) -> None:
        for name, value in (("capacity", capacity), ("per_principal", per_principal)):
            if type(value) is not int or value < 1:
                raise UsageError(f"{name} must be a positive integer")
        self.capacity = capacity
        self.per_principal = min(per_principal, capacity)
        # principal -> (stream key -> mark), both least recently active first.
        self._principals: OrderedDict[bytes, OrderedDict[bytes, int]] = OrderedDict()
        self._count = 0
        # The key object `advance` was last given and its principal's streams:
        # that stream is the most recently active one, of the most recently
        # active principal, and has a mark (nothing but `advance` reorders or
        # forgets, and what it forgets is never the stream it just touched).
        # A connection passes the same key object for each message of its
        # stream: the next call for it needs neither reordering nor a
        # look-up of the principal.
        self._last: StreamKey | None = None
        self._last_streams: OrderedDict[bytes, int] = OrderedDict()

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

    def delivered(self, key: StreamKey, seq: int) -> bool:
        """Whether ``seq`` of the stream ``key`` is at or below its mark (was
        delivered before), without moving or touching anything."""
        if key is self._last:
            return seq <= self._last_streams[key[1]]
        principal, stream = key
        streams = self._principals.get(principal)
        return streams is not None and seq <= streams.get(stream, 0)

    def advance(self, key: StreamKey, seq: int) -> bool:
        """`is_new` for a data frame (``seq`` >= 1) of the stream ``key``
        (from `stream_key`), for callers that keep the key of a stream."""
        if key is self._last:  # most recently active already (see __init__)
            last = self._last_streams
            key_ = key[1]
            if seq <= last[key_]:
                return False
            last[key_] = seq
            return True
        principals = self._principals
        principal, key_ = key
        streams = principals.get(principal)
        if streams is None:
            streams = principals[principal] = OrderedDict()
        else:
            principals.move_to_end(principal)
        self._last, self._last_streams = key, streams
        # Popped and put back: the stream becomes the most recently active.
        mark = streams.pop(key_, 0)
        if seq <= mark:
            streams[key_] = mark
            return False
        streams[key_] = seq
        if not mark:
            self._count += 1
            if len(streams) > self.per_principal:
                streams.popitem(last=False)  # the principal's own oldest stream
                self._count -= 1
            elif self._count > self.capacity:
                self._evict()
        return True

    def _evict(self) -> None:
        """Forget the least recently active stream of the least recently
        active principal (never the one just touched: it is the most recent)."""
        principals = self._principals
        principal, streams = next(iter(principals.items()))
        streams.popitem(last=False)
        self._count -= 1
        if not streams:
            del principals[principal]

    def mark(self, issuer: str, subject: str, stream: bytes) -> int:
        """The highest ``seq`` delivered for a stream (0 if unknown)."""
        principal, key = stream_key(issuer, subject, stream)
        streams = self._principals.get(principal)
        return 0 if streams is None else streams.get(key, 0)

    def __len__(self) -> int:
        return self._count

    def __repr__(self) -> str:
        return f"StreamMarks({self._count}/{self.capacity}, per principal {self.per_principal})"
