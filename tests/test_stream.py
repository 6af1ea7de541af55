"""Tests for signedws.stream: per-stream high-water marks (SPEC.md §7.3)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from signedws.errors import UsageError
from signedws.stream import StreamMarks, stream_key
from signedws.verifier import Message

STREAM_A = bytes(16)
STREAM_B = bytes(15) + b"\x01"


def message(
    seq: int, *, stream: bytes = STREAM_A, sub: str = "alice", iss: str = "login"
) -> Message:
    """A verified message as the verifier would return it."""
    payload = None if seq == 0 else f"m{seq}"
    return Message(sub, iss, frozenset(), 1, stream, seq, payload, "cid", 0)


def test_new_messages_are_delivered_in_order() -> None:
    """Each seq above the stream's mark is new and moves the mark."""
    marks = StreamMarks()
    assert [marks.is_new(message(n)) for n in (1, 2, 3)] == [True, True, True]
    assert marks.mark("login", "alice", STREAM_A) == 3


def test_resent_messages_are_dropped() -> None:
    """A resent message (seq at or below the mark) is not delivered again."""
    marks = StreamMarks()
    for n in (1, 2, 3):
        marks.is_new(message(n))
    assert not marks.is_new(message(2))
    assert not marks.is_new(message(3))
    assert marks.is_new(message(4))


def test_gaps_are_allowed() -> None:
    """A jump forward is new (messages acknowledged elsewhere are not resent)."""
    marks = StreamMarks()
    assert marks.is_new(message(5))
    assert not marks.is_new(message(4))


def test_control_frames_are_never_delivered() -> None:
    """seq 0 (a nil payload) is never new and leaves the mark alone."""
    marks = StreamMarks()
    assert not marks.is_new(message(0))
    assert len(marks) == 0


def test_streams_are_namespaced_by_principal() -> None:
    """One principal's frames cannot advance another principal's mark."""
    marks = StreamMarks()
    assert marks.is_new(message(7, sub="mallory"))
    assert marks.is_new(message(1, sub="alice"))
    assert marks.is_new(message(1, sub="alice", iss="other"))
    assert marks.is_new(message(1, stream=STREAM_B))
    assert marks.mark("login", "alice", STREAM_A) == 1
    assert marks.mark("login", "nobody", STREAM_A) == 0


def test_capacity_forgets_the_least_recently_active_stream() -> None:
    """Beyond capacity the least recently active stream is forgotten."""
    marks = StreamMarks(capacity=2)
    marks.is_new(message(1, stream=STREAM_A))
    marks.is_new(message(1, stream=STREAM_B))
    assert not marks.is_new(message(1, stream=STREAM_A))  # touches A: B is now oldest
    marks.is_new(message(1, stream=b"\x02" * 16))
    assert len(marks) == 2
    assert marks.mark("login", "alice", STREAM_B) == 0
    assert marks.mark("login", "alice", STREAM_A) == 1
    assert repr(marks) == "StreamMarks(2/2, per principal 2)"


def test_one_principal_evicts_only_its_own_marks() -> None:
    """A principal opening more streams than its budget forgets its own least
    recently active stream; another principal's marks survive however many
    streams it opens (issue 13, finding 2)."""
    marks = StreamMarks(capacity=64, per_principal=4)
    for seq in (1, 2, 3):
        assert marks.is_new(message(seq, sub="victim"))
    for n in range(1000):
        assert marks.is_new(message(1, sub="mallory", stream=n.to_bytes(16, "big")))
    assert marks.mark("login", "victim", STREAM_A) == 3
    assert not marks.is_new(message(3, sub="victim"))
    assert len(marks) == 5  # the victim's one stream and mallory's last four
    assert marks.mark("login", "mallory", (999).to_bytes(16, "big")) == 1
    assert marks.mark("login", "mallory", (995).to_bytes(16, "big")) == 0


def test_capacity_forgets_the_least_recently_active_principal_first() -> None:
    """Beyond capacity, the oldest stream of the least recently active
    principal goes; a principal with nothing left is forgotten."""
    marks = StreamMarks(capacity=3, per_principal=2)
    marks.is_new(message(1, sub="a"))
    marks.is_new(message(1, sub="b"))
    marks.is_new(message(1, sub="c"))
    marks.is_new(message(1, sub="b", stream=STREAM_B))  # b is the most recent
    assert len(marks) == 3
    assert marks.mark("login", "a", STREAM_A) == 0
    assert marks.mark("login", "b", STREAM_A) == 1
    assert marks.mark("login", "c", STREAM_A) == 1
    # The least recently active principal keeps its other streams.
    marks = StreamMarks(capacity=3, per_principal=2)
    marks.is_new(message(1, sub="a"))
    marks.is_new(message(1, sub="a", stream=STREAM_B))
    marks.is_new(message(1, sub="b"))
    marks.is_new(message(1, sub="c"))
    assert len(marks) == 3
    assert marks.mark("login", "a", STREAM_A) == 0
    assert marks.mark("login", "a", STREAM_B) == 1


def test_delivered_peeks_without_moving() -> None:
    """delivered(key, seq) says whether seq is at or below the mark, and
    changes nothing: not the mark, not the count, not the order."""
    marks = StreamMarks(capacity=2, per_principal=2)
    key = stream_key("login", "alice", STREAM_A)
    assert not marks.delivered(key, 1)
    assert len(marks) == 0
    marks.advance(key, 2)
    assert marks.delivered(key, 2)
    assert marks.delivered(key, 1)
    assert not marks.delivered(key, 3)
    assert not marks.delivered(stream_key("login", "alice", STREAM_B), 1)
    assert marks.mark("login", "alice", STREAM_A) == 2


@pytest.mark.parametrize("capacity", [0, -1, 1.5, "8"])
def test_capacity_must_be_positive(capacity: object) -> None:
    """An invalid capacity or per-principal budget is a usage error."""
    with pytest.raises(UsageError):
        StreamMarks(capacity)  # type: ignore[arg-type]
    with pytest.raises(UsageError):
        StreamMarks(8, per_principal=capacity)  # type: ignore[arg-type]


def test_stream_keys_are_unambiguous() -> None:
    """Issuer, subject and stream are length-prefixed: no two triples share a key."""
    triples = [
        ("ab", "c", STREAM_A),
        ("a", "bc", STREAM_A),
        ("a", "b", b"c" + STREAM_A[1:]),
        ("login", "alice", STREAM_A),
        ("login", "alice", STREAM_B),
        ("", "loginalice", STREAM_A),
    ]
    assert len({stream_key(*triple) for triple in triples}) == len(triples)
    assert stream_key("é", "x", STREAM_A) == stream_key("é", "x", bytes(STREAM_A))


def test_advance_is_is_new_under_a_kept_key() -> None:
    """advance(key, seq) answers as is_new for the message of that stream, and
    shares its marks."""
    marks = StreamMarks()
    key = stream_key("login", "alice", STREAM_A)
    assert marks.advance(key, 1)
    assert not marks.is_new(message(1))
    assert marks.is_new(message(2))
    assert not marks.advance(key, 2)
    assert marks.advance(key, 9)
    assert marks.mark("login", "alice", STREAM_A) == 9


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["alice", "bob", "carol"]),
            st.integers(0, 3),
            st.integers(1, 6),
            st.booleans(),
            st.booleans(),
        ),
        max_size=80,
    ),
    st.integers(1, 5),
    st.integers(1, 3),
)
def test_kept_keys_answer_as_fresh_keys(
    operations: list[tuple[str, int, int, bool, bool]], capacity: int, per_principal: int
) -> None:
    """Callers that keep one key object per stream (a connection does) get the
    answers that fresh keys get, through eviction by other principals and
    streams: the shortcut for the key advanced last never changes a result."""
    kept, fresh = (
        StreamMarks(capacity, per_principal=per_principal),
        StreamMarks(capacity, per_principal=per_principal),
    )
    keys = {}
    for sub, index, seq, peek, new_key in operations:
        stream = bytes(15) + bytes([index])
        if new_key or (sub, stream) not in keys:  # a new connection's key object
            keys[sub, stream] = stream_key("login", sub, stream)
        key = keys[sub, stream]
        if peek:
            assert kept.delivered(key, seq) == fresh.delivered(
                stream_key("login", sub, stream), seq
            )
        else:
            assert kept.advance(key, seq) == fresh.advance(stream_key("login", sub, stream), seq)
        assert len(kept) == len(fresh)
    for (sub, stream), _ in keys.items():
        assert kept.mark("login", sub, stream) == fresh.mark("login", sub, stream)
