"""signedws._fastpath: each speed-up gives its reference's answer.

The full equivalence runs live where the inputs are: every vector
(tests/test_vectors.py), the adversarial corpus
(tests/adversarial/test_corpus_core.py), hypothesis frames
(tests/test_properties.py) and mutated frames (tests/test_verifier.py) go
through `helpers.verify_both_paths`, which also runs `check_fast_decode`.
"""

from __future__ import annotations

import msgpack
import pytest
from helpers import NOW, NOW_MS, Pair, check_fast_decode, flip_byte

from signedws import _fastpath
from signedws.envelope import parse_client_frame
from signedws.errors import Code, Rejected
from signedws.verifier import ConnectionState, Message, VerifiedCredential


def test_tuple_constructor_builds_the_namedtuple() -> None:
    """tuple_constructor(Message)(values) is Message(*values), of type Message."""
    values = ("sub", "iss", frozenset({"a"}), 3, bytes(16), 2, b"p", "cid", 1000)
    built = _fastpath.tuple_constructor(Message)(values)
    assert type(built) is Message
    assert built == Message(*values)
    assert built.counter == 3


@pytest.mark.parametrize("scheme", ["mac", "certificate"])
def test_current_frame_takes_the_next_honest_frame(scheme: str) -> None:
    """On a warm connection the next honest frame is taken by the fast path:
    its decoded list, equal to the reference decoder's fields."""
    p = Pair(scheme)  # type: ignore[arg-type]
    p.warm_up()
    frame = p.sign("payload")
    state = p.server.verifier_state
    assert state.credential is not None
    got = _fastpath.current_frame(frame, state, state.credential, NOW_MS, True)
    assert isinstance(got, list)
    assert tuple(got[1:]) == parse_client_frame(frame)
    assert check_fast_decode(p.verifier, frame, state, now=NOW) == "fast"


def _warm_mac() -> tuple[Pair, ConnectionState, VerifiedCredential, bytes]:
    """A warm `mac` connection, its state and credential, and its next frame."""
    p = Pair("mac")
    p.warm_up()
    state = p.server.verifier_state
    vc = state.credential
    assert vc is not None
    return p, state, vc, p.sign("payload")


def test_current_frame_hands_over_a_replay_and_refuses_as_the_reference() -> None:
    """A replayed frame is handed to the full path with the reference's fields;
    a non-canonical one is refused with the reference's code and detail."""
    p, state, vc, frame = _warm_mac()
    p.verifier.verify(frame, state, now=NOW)
    assert _fastpath.current_frame(frame, state, vc, NOW_MS, True) == parse_client_frame(frame)
    fields = msgpack.unpackb(frame)
    fields[4] += 10  # ctr: re-encoded below as a uint64, not canonical
    parts = [msgpack.packb(f, use_bin_type=True) for f in fields]
    parts[4] = b"\xcf" + fields[4].to_bytes(8, "big")
    odd = b"\x9a" + b"".join(parts)
    assert odd.startswith(vc.head)
    with pytest.raises(Rejected) as fast:
        _fastpath.current_frame(odd, state, vc, NOW_MS, True)
    with pytest.raises(Rejected) as reference:
        parse_client_frame(odd)
    assert (fast.value.code, fast.value.detail) == (reference.value.code, reference.value.detail)
    assert fast.value.code is Code.MALFORMED
    assert (
        check_fast_decode(p.verifier, flip_byte(odd, len(odd) - 1), state, now=NOW) != "full only"
    )


def test_current_frame_hands_over_when_the_cache_moved() -> None:
    """An honest frame whose credential is no longer current in the cache
    (cached=False: the keyring moved) is handed to the full path, decoded once."""
    p, state, vc, frame = _warm_mac()
    assert _fastpath.current_frame(frame, state, vc, NOW_MS, False) == parse_client_frame(frame)
    p.verifier.clear_cache()
    assert check_fast_decode(p.verifier, frame, state, now=NOW) == "handed over"
