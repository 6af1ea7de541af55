"""signedws._fastpath and the verifier's per-connection fast path: each
speed-up gives its reference's answer, and the fast path is taken when it
should be.

The fast path lives inline in `Verifier.verify` (a call cost ~5% of a `mac`
verify): the tests see which way a frame went through the verifier's module
globals (`helpers.watch_fast_path`, `helpers.fast_path_way`). The full
equivalence runs live where the inputs are: every vector
(tests/test_vectors.py), the adversarial corpus
(tests/adversarial/test_corpus_core.py), hypothesis frames
(tests/test_properties.py) and mutated frames (tests/test_verifier.py) go
through `helpers.verify_both_paths`, which also holds the fast path's decoding
to the reference decoder's.
"""

from __future__ import annotations

import msgpack
import pytest
from helpers import NOW, Pair, fast_path_way, flip_byte, full_path_twin, watch_fast_path, which_way

from signedws import _fastpath
from signedws.envelope import parse_client_frame
from signedws.errors import Code, Rejected
from signedws.keys import HMACKey
from signedws.verifier import ConnectionState, Message, VerifiedCredential


def test_tuple_constructor_builds_the_namedtuple() -> None:
    """tuple_constructor(Message)(values) is Message(*values), of type Message."""
    values = ("sub", "iss", frozenset({"a"}), 3, bytes(16), 2, b"p", "cid", 1000)
    built = _fastpath.tuple_constructor(Message)(values)
    assert type(built) is Message
    assert built == Message(*values)
    assert built.counter == 3


def _snapshot(state: ConnectionState) -> tuple[object, ...]:
    return (state.highest, state.bitmap, state.principal, state.credential, state.valid_until_ms)


def _reference(p: Pair, frame: bytes, state: ConnectionState) -> Message | tuple[Code, str]:
    """What the full path alone answers for ``frame`` (on a `full_path_twin`)."""
    try:
        return p.verifier.verify(frame, full_path_twin(state), now=NOW)
    except Rejected as exc:
        return (exc.code, exc.detail)


@pytest.mark.parametrize("scheme", ["mac", "certificate"])
def test_fast_path_takes_the_next_honest_frame(scheme: str) -> None:
    """On a warm connection the next honest frame is taken by the fast path
    (decoded in one msgpack call, to the reference decoder's fields) and
    accepted; watching it on a copy leaves the connection's state as it was."""
    p = Pair(scheme)  # type: ignore[arg-type]
    p.warm_up()
    frame = p.sign("payload")
    state = p.server.verifier_state
    assert state.credential is not None
    before = _snapshot(state)
    way, result = fast_path_way(p.verifier, frame, state, now=NOW)
    assert way == "fast"
    assert isinstance(result, Message)
    assert result.payload == "payload"
    assert result == _reference(p, frame, state)
    assert _snapshot(state) == before
    with watch_fast_path() as calls:
        assert p.verifier.verify(frame, state, now=NOW) == result
    assert [name for name, _ in calls] == ["_unpackb"]
    assert state.highest == result.counter


def _warm_mac() -> tuple[Pair, ConnectionState, VerifiedCredential, bytes]:
    """A warm `mac` connection, its state and credential, and its next frame."""
    p = Pair("mac")
    p.warm_up()
    state = p.server.verifier_state
    vc = state.credential
    assert vc is not None
    return p, state, vc, p.sign("payload")


def _non_canonical(frame: bytes) -> bytes:
    """``frame`` with its counter raised by 10 and encoded as a uint64."""
    fields = msgpack.unpackb(frame)
    fields[4] += 10
    parts = [msgpack.packb(f, use_bin_type=True) for f in fields]
    parts[4] = b"\xcf" + fields[4].to_bytes(8, "big")
    return b"\x9a" + b"".join(parts)


def test_fast_path_hands_over_a_replay_and_refuses_as_the_reference() -> None:
    """A replayed frame is handed to the full path (with the reference
    decoder's fields) and refused as a replay; a non-canonical frame that
    begins with the credential's bytes is handed over and refused with the
    reference decoder's code and detail."""
    p, state, vc, frame = _warm_mac()
    p.verifier.verify(frame, state, now=NOW)
    way, result = fast_path_way(p.verifier, frame, state, now=NOW)
    assert way == "handed over"
    assert isinstance(result, tuple)
    assert result[0] is Code.REPLAY
    assert result == _reference(p, frame, state)
    odd = _non_canonical(frame)
    assert odd.startswith(vc.head)
    before = _snapshot(state)
    with watch_fast_path() as calls, pytest.raises(Rejected) as fast:
        p.verifier.verify(odd, state, now=NOW)
    assert [name for name, _ in calls] == ["_unpackb", "_client_fields"]
    assert which_way(calls, odd) == "handed over"
    with pytest.raises(Rejected) as reference:
        parse_client_frame(odd)
    assert (fast.value.code, fast.value.detail) == (reference.value.code, reference.value.detail)
    assert fast.value.code is Code.MALFORMED
    assert _snapshot(state) == before
    tampered = flip_byte(odd, len(odd) - 1)
    assert fast_path_way(p.verifier, tampered, state, now=NOW)[0] != "full only"


def test_fast_path_hands_a_frame_msgpack_refuses_to_the_reference_decoder() -> None:
    """A cut frame that still begins with the credential's bytes: msgpack's
    error hands it to `parse_client_frame`, whose code and detail are the answer."""
    p, state, vc, frame = _warm_mac()
    cut = frame[:-1]
    assert cut.startswith(vc.head)
    with watch_fast_path() as calls, pytest.raises(Rejected) as fast:
        p.verifier.verify(cut, state, now=NOW)
    assert [name for name, _ in calls] == ["_unpackb", "parse_client_frame"]
    with pytest.raises(Rejected) as reference:
        parse_client_frame(cut)
    assert (fast.value.code, fast.value.detail) == (reference.value.code, reference.value.detail)


def test_fast_path_hands_over_when_the_cache_moved() -> None:
    """An honest frame whose credential is no longer current in the cache (the
    cache cleared, or the keyring changed) is handed to the full path, decoded
    once, and accepted; the fast path takes the frame after it."""
    p, state, _, frame = _warm_mac()
    assert fast_path_way(p.verifier, frame, state, now=NOW)[0] == "fast"
    p.verifier.clear_cache()
    way, result = fast_path_way(p.verifier, frame, state, now=NOW)
    assert way == "handed over"
    assert isinstance(result, Message)
    p.verifier.verify(frame, state, now=NOW)  # the state now holds the new credential
    frame = p.sign("next")
    assert fast_path_way(p.verifier, frame, state, now=NOW)[0] == "fast"
    p.keyring.add_hmac_key("https://unrelated.example.test", "k", HMACKey(b"\x05" * 32))
    way, result = fast_path_way(p.verifier, frame, state, now=NOW)
    assert way == "handed over"
    assert isinstance(result, Message)


def test_first_frame_of_a_connection_is_full_only() -> None:
    """Before any frame committed there is no current credential: the frame is
    decoded by the reference decoder alone."""
    p = Pair("mac")
    frame = p.sign("payload")
    with watch_fast_path() as calls:
        p.verifier.verify(frame, p.server.verifier_state, now=NOW)
    assert [name for name, _ in calls] == ["parse_client_frame"]
    assert which_way(calls, frame) == "full only"
