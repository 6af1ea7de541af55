"""Property tests (hypothesis) for the verifier, the signer and the replay window."""

from __future__ import annotations

import msgpack
from helpers import (
    ISSUER,
    REVOKED_CID,
    SCHEMES,
    STREAM,
    TAMPER_CODES,
    Pair,
    client_frame,
    encodings,
    field_variants,
    flip_bit,
    other_credentials,
    verify_both_paths,
)
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from signedws.errors import Rejected
from signedws.replay import advance, check
from signedws.revocation import RevocationSet
from signedws.signer import ServerMessage
from signedws.verifier import Message

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

schemes = st.sampled_from(SCHEMES)
payloads = st.one_of(st.none(), st.text(max_size=1500), st.binary(max_size=3000))


def warmed(scheme: tuple[str, str]) -> Pair:
    """A pair with W=8 that accepted counters 1, 3, 4, 5 and 6 (2 is held back)."""
    p = Pair(scheme[0], scheme[1], window=8)  # type: ignore[arg-type]
    p.warm_up()
    for _ in range(3):
        p.accept()
    return p


def assert_refused_unchanged(pair: Pair, data: bytes) -> None:
    """``data`` is refused with a tampering code and the connection state did not move."""
    before = pair.snapshot()
    result = pair.deliver(data)
    assert isinstance(result, Rejected), result
    assert result.code in TAMPER_CODES, result
    assert pair.snapshot() == before


@FAST
@given(scheme=schemes, data=st.data())
def test_single_bit_flip_is_rejected(scheme: tuple[str, str], data: st.DataObject) -> None:
    """Any one-bit change to a valid frame is refused with a documented tampering code."""
    pair = warmed(scheme)
    frame = pair.sign(data.draw(payloads, label="payload"))
    bit = data.draw(st.integers(0, len(frame) * 8 - 1), label="bit")
    assert_refused_unchanged(pair, flip_bit(frame, bit))
    assert isinstance(pair.deliver(frame), Message)


@FAST
@given(scheme=schemes, data=st.data())
def test_truncation_is_rejected(scheme: tuple[str, str], data: st.DataObject) -> None:
    """Any strict prefix of a valid frame is refused."""
    pair = warmed(scheme)
    frame = pair.sign(data.draw(payloads, label="payload"))
    size = data.draw(st.integers(0, len(frame) - 1), label="size")
    assert_refused_unchanged(pair, frame[:size])


@FAST
@given(scheme=schemes, data=st.data())
def test_extension_is_rejected(scheme: tuple[str, str], data: st.DataObject) -> None:
    """Bytes inserted anywhere into a valid frame make it refused."""
    pair = warmed(scheme)
    frame = pair.sign(data.draw(payloads, label="payload"))
    at = data.draw(st.integers(0, len(frame)), label="at")
    extra = data.draw(st.binary(min_size=1, max_size=8), label="extra")
    assert_refused_unchanged(pair, frame[:at] + extra + frame[at:])


@FAST
@given(scheme=schemes, data=st.data())
def test_swap_of_two_elements_is_rejected(scheme: tuple[str, str], data: st.DataObject) -> None:
    """Swapping two distinct elements of a valid frame (tag included) makes it refused."""
    pair = warmed(scheme)
    pair.accept(None)  # counter and seq now differ
    frame = pair.sign(data.draw(payloads, label="payload"))
    fields = msgpack.unpackb(frame)
    i = data.draw(st.integers(0, len(fields) - 2), label="i")
    j = data.draw(st.integers(i + 1, len(fields) - 1), label="j")
    fields[i], fields[j] = fields[j], fields[i]
    swapped = msgpack.packb(fields, use_bin_type=True)
    if swapped != frame:  # version and kind are both 1 on mac frames
        assert_refused_unchanged(pair, swapped)


@FAST
@given(scheme=schemes, data=st.binary(max_size=600))
def test_arbitrary_bytes_raise_only_rejected(scheme: tuple[str, str], data: bytes) -> None:
    """Verifier.verify on any bytes raises Rejected and nothing else (§6.4, errors.py)."""
    pair = warmed(scheme)
    before = pair.snapshot()
    result = pair.deliver(data)
    assert isinstance(result, Rejected)
    assert pair.snapshot() == before


msgpack_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=20)
    | st.binary(max_size=70),
    lambda children: (
        st.lists(children, max_size=12)
        | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=30,
)


@FAST
@given(scheme=schemes, value=msgpack_values)
def test_arbitrary_msgpack_raises_only_rejected(scheme: tuple[str, str], value: object) -> None:
    """Any MessagePack document, canonical or not, is refused with Rejected only."""
    pair = warmed(scheme)
    result = pair.deliver(msgpack.packb(value, use_bin_type=True))
    assert isinstance(result, Rejected)


@FAST
@given(scheme=schemes, data=st.data())
def test_frame_shaped_garbage_raises_only_rejected(
    scheme: tuple[str, str], data: st.DataObject
) -> None:
    """Ten-element arrays mixing genuine and arbitrary fields are refused with Rejected only."""
    pair = warmed(scheme)

    def field(genuine: object, other: st.SearchStrategy[object]) -> object:
        return data.draw(st.one_of(st.just(genuine), other))

    fields = [
        field(1, st.integers(0, 3)),
        field(pair.kind, st.integers(0, 6)),
        field(pair.cred, st.binary(max_size=300)),
        field(pair.server.nonce, st.binary(min_size=63, max_size=65)),
        field(pair.next_counter(), st.integers(0, 2**64 - 1)),
        field(pair.clock.ms, st.integers(0, 2**64 - 1)),
        field(STREAM, st.binary(max_size=17)),
        field(1, st.integers(0, 2**64 - 1)),
        field("x", st.one_of(st.none(), st.text(max_size=5), st.binary(max_size=5))),
        data.draw(st.binary(min_size=31, max_size=65)),
    ]
    before = pair.snapshot()
    result = pair.deliver(msgpack.packb(fields, use_bin_type=True))
    assert isinstance(result, Rejected)
    assert pair.snapshot() == before


@FAST
@given(scheme=schemes, payload=payloads)
def test_sign_then_verify_round_trips(
    scheme: tuple[str, str], payload: str | bytes | None
) -> None:
    """Whatever the payload, the server delivers exactly what the client signed."""
    pair = Pair(scheme[0], scheme[1])  # type: ignore[arg-type]
    message = pair.accept(payload)
    assert message.payload == payload
    assert type(message.payload) is type(payload)
    assert message.seq == (0 if payload is None else 1)
    assert message.stream == STREAM


@FAST
@given(scheme=schemes, payload=payloads)
def test_server_frames_round_trip(scheme: tuple[str, str], payload: str | bytes | None) -> None:
    """Whatever the payload, the client receives exactly what the server sent."""
    pair = Pair(scheme[0], scheme[1])  # type: ignore[arg-type]
    pair.accept()
    message = pair.reply(payload)
    assert isinstance(message, ServerMessage)
    assert (message.payload, message.ack) == (payload, 1)


def model_accepts(seen: set[int], window: int, ctr: int) -> bool:
    """The replay rule of §6.6 stated over the set of accepted counters."""
    highest = max(seen, default=0)
    if ctr in seen:
        return False
    return ctr > highest or (window > 0 and highest - ctr < window)


@settings(max_examples=100, deadline=None)
@given(window=st.sampled_from([1, 2, 8, 64, 1024]), data=st.data())
def test_window_accepts_a_permutation_exactly_once(window: int, data: st.DataObject) -> None:
    """Any order of W consecutive counters is accepted once each; repeats are all refused."""
    start = data.draw(st.integers(1, 2**40), label="start")
    counters = data.draw(st.permutations(range(start, start + min(window, 64))), label="order")
    highest = bitmap = 0
    for ctr in counters:
        assert check(highest, bitmap, window, ctr) is None
        highest, bitmap = advance(highest, bitmap, window, ctr)
    for ctr in counters:
        assert check(highest, bitmap, window, ctr) is not None


@settings(max_examples=150, deadline=None)
@given(
    window=st.sampled_from([0, 1, 3, 8, 64]),
    counters=st.lists(st.integers(1, 100), max_size=60),
)
def test_window_matches_the_set_model(window: int, counters: list[int]) -> None:
    """check/advance accept exactly what the set model of §6.6 accepts."""
    seen: set[int] = set()
    highest = bitmap = 0
    for ctr in counters:
        expected = model_accepts(seen, window, ctr)
        assert (check(highest, bitmap, window, ctr) is None) is expected, (seen, ctr)
        if expected:
            seen.add(ctr)
            highest, bitmap = advance(highest, bitmap, window, ctr)
        assert highest == max(seen, default=0)


@FAST
@given(window=st.sampled_from([0, 1, 8]), order=st.lists(st.integers(1, 24), max_size=30))
def test_verifier_replay_matches_the_set_model(window: int, order: list[int]) -> None:
    """Delivering genuine frames in any order accepts exactly what the set model accepts."""
    pair = Pair("mac", window=window)
    frames = {n: pair.sign(str(n)) for n in range(1, 25)}
    seen: set[int] = set()
    for n in order:
        expected = model_accepts(seen, window, n)
        result = pair.deliver(frames[n])
        assert isinstance(result, Message) is expected, (sorted(seen), n, result)
        if expected:
            seen.add(n)
    assert pair.server.verifier_state.highest == max(seen, default=0)


# -- the verifier's per-connection fast path agrees with its full path -------------------


def field_values(pair: Pair, index: int) -> st.SearchStrategy[object]:
    """Values for element ``index`` of a client frame: `field_variants` (near
    the genuine one, of other types, at the boundaries the checks test) or any
    uint."""
    variants = st.sampled_from(field_variants(pair, index))
    return st.one_of(variants, variants, variants, st.integers(0, 2**64 - 1))


def candidate_frame(pair: Pair, data: st.DataObject) -> bytes:
    """A frame for a warmed pair: honest; bit-flipped; carrying another
    credential (tagged by its own key); or honest but for one or a few
    elements, perhaps one of them encoded non-canonically, tagged afresh (so
    that only the check under test can refuse it) or with a forged tag."""
    how = data.draw(
        st.sampled_from(["honest", "flip", "credential", "field", "field", "fields"]), label="how"
    )
    payload = data.draw(st.one_of(st.none(), st.text(max_size=40), st.binary(max_size=300)))
    if how == "credential":
        credential = data.draw(st.sampled_from(other_credentials()), label="credential")
        ctr = min(pair.next_counter(), 2**64 - 1)  # after 2**64 - 1: a replay
        return pair.forge(credential=credential, payload=payload, ctr=ctr)
    frame = pair.sign(payload)
    if how == "honest":
        return frame
    if how == "flip":
        return flip_bit(frame, data.draw(st.integers(0, len(frame) * 8 - 1), label="bit"))
    fields = msgpack.unpackb(frame)[:9]
    indices = st.sets(st.integers(0, 8), min_size=1, max_size=1 if how == "field" else 3)
    for index in data.draw(indices, label="indices"):
        fields[index] = data.draw(field_values(pair, index), label=f"field {index}")
    parts = [encodings(value)[0] for value in fields]
    if data.draw(st.integers(0, 3), label="re-encode") == 0:
        index = data.draw(st.integers(0, 8), label="re-encoded field")
        parts[index] = data.draw(st.sampled_from(encodings(fields[index])), label="encoding")
    tagged = client_frame(fields, pair.secret, parts=parts)
    if data.draw(st.integers(0, 5), label="forge") == 0:
        size = len(msgpack.unpackb(frame)[9])
        tag = data.draw(st.binary(min_size=size, max_size=size), label="tag")
        return tagged[:-size] + tag
    return tagged


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scheme=schemes, window=st.sampled_from([0, 8]), data=st.data())
def test_fast_path_agrees_with_full_path(
    scheme: tuple[str, str], window: int, data: st.DataObject
) -> None:
    """On a connection that accepted frames (so the verifier's per-connection
    fast path applies), any frame at any time, honest or tampered, canonical or
    not, gets the same message or the same code and detail, and leaves the same
    state, as on a twin of the connection that takes the full path."""
    pair = Pair(scheme[0], scheme[1], window=window)  # type: ignore[arg-type]
    pair.verifier.revocations = RevocationSet([(ISSUER, REVOKED_CID)])
    pair.warm_up()
    for _ in range(data.draw(st.integers(1, 3), label="frames")):
        frame = candidate_frame(pair, data)
        skew = data.draw(
            st.sampled_from([0, 0, 0, 0, -0.001, 1, -300, 300.001, 3600, 86400, -86400]),
            label="skew",
        )
        result = verify_both_paths(
            pair.verifier, frame, pair.server.verifier_state, now=pair.clock.now + skew
        )
        event(result.code.id if isinstance(result, Rejected) else "accepted")
