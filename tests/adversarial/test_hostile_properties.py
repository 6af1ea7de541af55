"""Property tests (hypothesis) that extend ``tests/test_properties.py``.

That module shows that any flip, truncation, extension or element swap of a
valid frame is refused with *some* tampering code. These pin *which* code, by
the region of the frame touched; transplant fields between two genuine frames;
hold every decoder (not only `Verifier.verify`) to its documented codes; round
trip arbitrary claims, streams and sequence numbers; and interleave corpus
attacks with an honest stream.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

import figures
import msgpack
from corpus import CASES, Conn, make_verifier
from helpers import (
    AUDIENCE,
    CLIENT_KEY,
    ED_ISSUER,
    FLEET_KEY,
    HMAC_ISSUER,
    NOW,
    SCHEMES,
    FakeClock,
    Pair,
    flip_bit,
    seeded_random,
    sent_frame,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_corpus_core import STEP

from signedws import (
    Ed25519Credential,
    MACCredential,
    NonceKey,
    Signer,
    decode_hello,
    unverified_credential,
)
from signedws.envelope import parse_server_frame, unverified_client_frame
from signedws.errors import Code, Rejected
from signedws.verifier import Message

FAST = settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))
schemes = st.sampled_from(SCHEMES)
payloads = st.one_of(st.none(), st.text(max_size=200), st.binary(max_size=400))


def _count() -> None:
    figures.add(
        "input.property_examples",
        1,
        "hypothesis examples run by this suite's properties",
        section="input",
    )


def regions(frame: bytes) -> list[tuple[int, int, int]]:
    """``(start, end, index)`` of each element's encoding inside ``frame``."""
    unpacker = msgpack.Unpacker(use_list=True, raw=False)
    unpacker.feed(frame)
    unpacker.read_array_header()
    out, start = [], unpacker.tell()
    for index in range(10):
        unpacker.skip()
        out.append((start, unpacker.tell(), index))
        start = unpacker.tell()
    return out


#: Codes a flip inside each element may draw, by element index (SPEC.md §6.4).
#: Headers can turn an element into another type or size (malformed); the
#: credential's bytes are authenticated by its own tag or signature (step 7).
BY_REGION: dict[int, frozenset[Code]] = {
    0: frozenset({Code.UNSUPPORTED_VERSION, Code.MALFORMED}),
    1: frozenset({Code.MALFORMED, Code.SCHEME_MISMATCH}),
    2: frozenset(
        {
            Code.MALFORMED,
            Code.CREDENTIAL_MALFORMED,
            Code.UNKNOWN_ISSUER,
            Code.UNKNOWN_KEY,
            Code.CREDENTIAL_INVALID,
            Code.WEAK_KEY,
            Code.SCHEME_MISMATCH,
        }
    ),
    3: frozenset({Code.MALFORMED, Code.NONCE_MISMATCH}),
    4: frozenset({Code.MALFORMED, Code.REPLAY, Code.BAD_TAG, Code.BAD_SIGNATURE}),
    5: frozenset({Code.MALFORMED, Code.TIMESTAMP_SKEW, Code.BAD_TAG, Code.BAD_SIGNATURE}),
    6: frozenset({Code.MALFORMED, Code.BAD_TAG, Code.BAD_SIGNATURE}),
    7: frozenset({Code.MALFORMED, Code.BAD_TAG, Code.BAD_SIGNATURE}),
    8: frozenset({Code.MALFORMED, Code.BAD_TAG, Code.BAD_SIGNATURE}),
    9: frozenset({Code.MALFORMED, Code.BAD_TAG, Code.BAD_SIGNATURE}),
}


@FAST
@given(scheme=schemes, payload=payloads, data=st.data())
def test_a_flip_draws_the_code_of_the_element_it_hits(
    scheme: tuple[str, str], payload: object, data: st.DataObject
) -> None:
    """A one-bit flip inside element i of a genuine frame is refused with a
    code of the step that checks element i, never a later one (SPEC.md §6.4)."""
    _count()
    pair = Pair(scheme[0], scheme[1], window=8)  # type: ignore[arg-type]
    pair.accept("first")
    frame = pair.sign(payload)  # type: ignore[arg-type]
    start, end, index = data.draw(st.sampled_from(regions(frame)), label="element")
    bit = data.draw(st.integers(start * 8, end * 8 - 1), label="bit")
    before = pair.snapshot()
    result = pair.deliver(flip_bit(frame, bit))
    assert isinstance(result, Rejected), (index, result)
    assert result.code in BY_REGION[index], (index, result)
    assert pair.snapshot() == before


@FAST
@given(scheme=schemes, data=st.data())
def test_transplanted_field_from_another_genuine_frame_is_refused(
    scheme: tuple[str, str], data: st.DataObject
) -> None:
    """Any element of a genuine frame replaced by the same element of another
    genuine frame (another connection, credential, subject or time) is refused:
    every element is bound by the frame's tag or checked against the connection."""
    _count()
    pair = Pair(scheme[0], scheme[1])  # type: ignore[arg-type]
    pair.accept("first")
    ours = pair.sign(data.draw(payloads, label="ours"))
    other = Pair(scheme[0], scheme[1], credential=_other_credential(scheme[0]))  # type: ignore[arg-type]
    other.server = other.open(seed=b"another connection")
    other.client = Signer.from_hello(
        other.server.hello, other.credential, audience=AUDIENCE, now=NOW, stream=bytes(16)
    )
    other.clock.advance(data.draw(st.integers(0, 100)))
    for _ in range(data.draw(st.integers(0, 3))):
        other.accept("skip")
    theirs = other.sign(data.draw(payloads, label="theirs"))
    a, b = msgpack.unpackb(ours, raw=False), msgpack.unpackb(theirs, raw=False)
    index = data.draw(st.sampled_from([i for i in range(10) if a[i] != b[i]]), label="index")
    a[index] = b[index]
    spliced = bytes(msgpack.packb(a, use_bin_type=True))
    before = pair.snapshot()
    result = pair.deliver(spliced)
    assert isinstance(result, Rejected), (index, result)
    assert pair.snapshot() == before


def refusal(function: Callable[[bytes], object], data: bytes) -> Code | None:
    """The code ``function(data)`` is refused with, or None if it returns."""
    try:
        function(data)
    except Rejected as exc:
        return exc.code
    return None


def _other_credential(scheme: str) -> object:
    if scheme == "mac":
        return HMAC_ISSUER.issue_token(
            subject="bob", now=NOW, audiences=[AUDIENCE], credential_id="tok-bob"
        )
    cert = ED_ISSUER.issue_certificate(
        CLIENT_KEY.public_key(), subject="bob", now=NOW, credential_id="cert-bob"
    )
    return Ed25519Credential(cert, CLIENT_KEY)


#: What a client may refuse a server frame with (SPEC.md §7.2).
CLIENT_CODES = {
    Code.FRAME_TOO_LARGE,
    Code.MALFORMED,
    Code.UNSUPPORTED_VERSION,
    Code.SCHEME_MISMATCH,
    Code.NONCE_MISMATCH,
    Code.REPLAY,
    Code.ACK_INVALID,
    Code.UNKNOWN_KEY,
    Code.BAD_TAG,
    Code.BAD_SIGNATURE,
}

DECODERS = [
    (
        "unverified_client_frame",
        unverified_client_frame,
        {Code.MALFORMED, Code.UNSUPPORTED_VERSION},
    ),
    ("parse_server_frame", parse_server_frame, {Code.MALFORMED, Code.UNSUPPORTED_VERSION}),
    ("decode_hello", decode_hello, {Code.MALFORMED, Code.UNSUPPORTED_VERSION}),
    ("unverified_credential", unverified_credential, {Code.CREDENTIAL_MALFORMED}),
]

#: Bytes near the valid shapes: genuine structures cut, extended and mutated.
_pair = Pair("certificate")
_pair.accept("x")
GENUINE = [
    _pair.sign("y"),
    _pair.server.hello,
    sent_frame(_pair.server, "reply", now=NOW),
    _pair.cred,
    Pair("mac").cred,
]


def _near_valid() -> st.SearchStrategy[bytes]:
    genuine = st.sampled_from(GENUINE)
    return st.one_of(
        st.binary(max_size=300),
        st.builds(lambda g, n: g[:n], genuine, st.integers(0, 400)),
        st.builds(lambda g, i, b: g[:i] + b + g[i:], genuine, st.integers(0, 400), st.binary()),
        st.builds(lambda g, i: flip_bit(g, i % (8 * len(g))), genuine, st.integers(0, 10_000)),
    )


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=_near_valid())
def test_every_decoder_raises_only_its_documented_codes(data: bytes) -> None:
    """The unverified decoders, `NonceKey.check`, `Signer.from_hello` and
    `Signer.verify` raise only `Rejected`, with their documented codes."""
    _count()
    for name, decoder, codes in DECODERS:
        assert refusal(decoder, data) in {None, *codes}, name
    nonce_key = NonceKey(FLEET_KEY, AUDIENCE)
    assert refusal(lambda d: nonce_key.check(d, now=NOW), data) in {
        None,
        Code.MALFORMED,
        Code.NONCE_INVALID,
        Code.NONCE_EXPIRED,
    }
    credential = _pair.credential
    assert refusal(
        lambda d: Signer.from_hello(d, credential, audience=AUDIENCE, now=NOW),
        data,
    ) in {None, Code.MALFORMED, Code.UNSUPPORTED_VERSION, Code.AUDIENCE_MISMATCH}
    before = (_pair.client._server_counter, _pair.client.acked)
    result = _pair.receive(data)
    if isinstance(result, Rejected):
        assert result.code in CLIENT_CODES, result
        assert (_pair.client._server_counter, _pair.client.acked) == before


names = st.text(alphabet=st.characters(exclude_categories=["Cs"]), min_size=1, max_size=40).filter(
    lambda s: len(s.encode()) <= 255
)


@FAST
@given(
    scheme=st.sampled_from(["mac", "certificate"]),
    subject=names,
    scopes=st.frozensets(names, max_size=8),
    stream=st.binary(min_size=16, max_size=16),
    seq=st.integers(1, 2**64 - 2),
    skip=st.integers(0, 2**40),
    payload=payloads,
)
def test_any_claims_stream_and_position_round_trip(
    *,
    scheme: str,
    subject: str,
    scopes: frozenset[str],
    stream: bytes,
    seq: int,
    skip: int,
    payload: object,
) -> None:
    """Whatever the subject, scopes, stream id, ``seq`` and counter, the server
    delivers exactly what the issuer vouched for and the client signed."""
    _count()
    if scheme == "mac":
        credential: MACCredential | Ed25519Credential = HMAC_ISSUER.issue_token(
            subject=subject, scopes=scopes, now=NOW, audiences=[AUDIENCE]
        )
    else:
        cert = ED_ISSUER.issue_certificate(
            CLIENT_KEY.public_key(), subject=subject, scopes=scopes, now=NOW
        )
        credential = Ed25519Credential(cert, CLIENT_KEY)
    pair = Pair(scheme, credential=credential)  # type: ignore[arg-type]
    signer = Signer.from_hello(
        pair.server.hello,
        credential,
        audience=AUDIENCE,
        now=NOW,
        stream=stream,
        seq=seq - 1,
    )
    signer._counter = skip  # a connection far into its counters
    message = pair.deliver(signer.sign(payload, now=NOW))  # type: ignore[arg-type]
    assert isinstance(message, Message), message
    assert (message.subject, message.scopes, message.stream) == (subject, scopes, stream)
    assert message.counter == skip + 1
    assert message.seq == (0 if payload is None else seq)
    assert message.payload == payload


HOSTILE = [
    c
    for c in CASES
    if c.setup.scheme == "mac"
    and not c.setup.prelude
    and not c.setup.advance
    and not c.setup.window
]


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(plan=st.lists(st.one_of(st.none(), st.sampled_from(HOSTILE)), min_size=1, max_size=40))
def test_attacks_interleaved_with_an_honest_stream_change_nothing(plan: list[object]) -> None:
    """Corpus attacks interleaved in any order with honest frames on one
    connection are each refused with their code, and every honest frame is
    accepted, in order, with consecutive ``seq``."""
    _count()
    clock = FakeClock()
    verifier = make_verifier(HOSTILE[0].setup)
    state = verifier.open(now=clock.now, random=seeded_random(b"interleaved"))
    honest = Conn(state.nonce, clock, "mac")
    attacker = Conn(state.nonce, clock, "mac")
    delivered: list[int] = []
    for step in plan:
        if step is None:
            message = verifier.verify(honest.frame("m"), state, now=clock.now)
            delivered.append(message.seq)
            continue
        attacker.counter, attacker.seq = honest.counter, honest.seq
        data = step.build(attacker)  # type: ignore[attr-defined]
        code = refusal(lambda d: verifier.verify(d, state, now=clock.now), data)
        expected = step.expected  # type: ignore[attr-defined]
        if delivered and STEP[expected] > STEP[Code.CREDENTIAL_MISMATCH]:
            # Bound to alice: another principal's credential (revoked
            # "mallory") is refused at the binding, step 8, before step 9.
            assert code in (expected, Code.CREDENTIAL_MISMATCH), step.name  # type: ignore[attr-defined]
        else:
            assert code is expected, step.name  # type: ignore[attr-defined]
    assert delivered == list(range(1, len(delivered) + 1))


def test_regions_cover_the_whole_frame() -> None:
    """The region helper splits a frame into its ten elements, end to end."""
    pair = Pair("mac")
    frame = pair.sign("x")
    spans = regions(frame)
    assert spans[0][0] == 1
    assert spans[-1][1] == len(frame)
    assert all(a[1] == b[0] for a, b in itertools.pairwise(spans))
