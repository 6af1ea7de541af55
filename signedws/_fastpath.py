"""Speed-ups: the only module that inlines reference code for speed.

As websockets keeps ``speedups.c`` beside ``frames.py``, signedws keeps here
every deliberate duplicate of a reference function, and nowhere else:

- `client_fields`: `signedws.envelope.parse_client_frame` for a value that
  ``msgpack.unpackb`` already decoded, in one condition;
- `current_frame`: the verifier's per-connection fast path (SPEC.md §6.4 steps
  2-8 for a frame that carries its connection's current credential), one
  ``msgpack.unpackb`` call and one condition;
- `tuple_constructor`: a NamedTuple's constructor without its Python-level
  ``__new__`` (the verifier builds one `signedws.verifier.Message` per frame).

Rules:

1. Each function gives the same answer as the reference it mirrors, for every
   input: the tests run every vector, the adversarial corpus and mutated
   frames through both (``tests/helpers.py::verify_both_paths``,
   ``tests/test_fastpath.py``).
2. When a condition here fails, for whatever reason, the reference code runs
   and says why: no rejection is decided here, so the codes and details are
   the reference's.
3. This module imports the reference modules' public names only.

What it buys is measured in ``benchmarks/compare.py`` (``signedws.mac``
against ``floor.mac``, ``context.parse`` against ``reject.replay``): the full
path decodes with `signedws.envelope.decode_array`, ~6 µs for a `mac` frame
(``context.parse``), where the whole fast verify costs ~3.1 µs.
"""

from __future__ import annotations

import types
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final, TypeVar

import msgpack

from .envelope import (
    DECODE_ERRORS,
    KIND_CLIENT_ED25519,
    KIND_CLIENT_MAC,
    MAX_CREDENTIAL_SIZE,
    NONCE_SIZE,
    STREAM_SIZE,
    VERSION,
    ClientFields,
    canonical,
    parse_client_frame,
)

if TYPE_CHECKING:
    from .verifier import ConnectionState, VerifiedCredential

__all__ = ["client_fields", "current_frame", "tuple_constructor"]

_T = TypeVar("_T", bound=tuple[Any, ...])

_unpackb: Final = msgpack.unpackb  # a global load is cheaper than an attribute
_CLIENT_KINDS: Final = frozenset((KIND_CLIENT_MAC, KIND_CLIENT_ED25519))


def client_fields(fields: object, data: bytes) -> ClientFields:
    """`parse_client_frame` (``data``) for ``fields``, what ``msgpack.unpackb(data,
    max_map_len=0, max_ext_len=0)`` returned: the same answer, for every input.

    Raises:
        Rejected: `malformed` or `unsupported_version`, from `parse_client_frame`.
    """
    # `decode_array` and the client frame's field checks in one: the
    # condition holds exactly when every one of their checks passes, and it
    # re-encodes (the canonical check, last) only ten values of the right types.
    if type(fields) is list and len(fields) == 10:
        version, kind, cred, nonce, ctr, ts, stream, seq, payload, tag = fields
        if (
            type(version) is int
            and version == VERSION
            and type(kind) is int
            and kind in _CLIENT_KINDS
            and type(cred) is bytes
            and len(cred) <= MAX_CREDENTIAL_SIZE
            and type(ctr) is int
            and ctr >= 1
            and type(seq) is int
            and (
                ((type(payload) is str or type(payload) is bytes) and seq > 0)
                or (payload is None and seq == 0)
            )
            and type(nonce) is bytes
            and len(nonce) == NONCE_SIZE
            and type(ts) is int
            and ts >= 0
            and type(stream) is bytes
            and len(stream) == STREAM_SIZE
            and type(tag) is bytes
            and len(tag) == (32 if kind == KIND_CLIENT_MAC else 64)
            and canonical(fields) == data
        ):
            return (kind, cred, nonce, ctr, ts, stream, seq, payload, tag)
    # Anything else: the bounded decoder says why, in the words it uses for
    # every frame, so the answer (code and detail) is the same on both paths.
    return parse_client_frame(data)


def current_frame(
    data: bytes, state: ConnectionState, vc: VerifiedCredential, now_ms: int, cached: bool
) -> list[Any] | ClientFields:
    """SPEC.md §6.4 steps 2-8 for a frame that begins with ``vc.head``.

    ``vc`` is ``state.credential``; ``cached`` says whether it is current in
    the verifier's cache (its epoch, an unchanged keyring). A frame that begins
    with the exact bytes of the connection's current credential comes from that
    credential's holder, who alone signed a frame on this connection: it is
    decoded in one msgpack call.

    Returns:
        The decoded frame (a list of its 10 elements) if it passes steps 2-8:
        the caller runs steps 9-12. Otherwise the frame's checked fields
        (`parse_client_frame`'s tuple) for the full path, which runs every
        step in order.

    Raises:
        Rejected: `malformed` or `unsupported_version` (steps 2-4).
    """
    try:
        fields = _unpackb(data, max_map_len=0, max_ext_len=0)
    except DECODE_ERRORS:  # the bounded decoder says why
        return parse_client_frame(data)
    # vc.head begins with a fixarray of 10: what decoded is a list of 10.
    _, _, _, nonce, ctr, ts, stream, seq, payload, tag = fields
    # The condition holds only if steps 2-8 all pass; each line says which
    # step(s) it stands for.
    if (
        # Cheapest first, and first what tells apart the frames an attacker
        # most easily sends (another connection's, replayed, malformed): they
        # then pay little for trying the fast path before the full path
        # refuses them.
        #
        # 4 (nonce: bin(64)) and 5: vc was committed on this state, after a
        # frame with a 64-byte nonce equal to state.nonce.
        nonce == state.nonce
        # 7.1-7.3: vc is what a cache look-up would give (see below).
        and cached
        # 4 (ctr: uint >= 1, as H >= 0) and 6 (ctr > H passes).
        and type(ctr) is int
        and ctr > state.highest
        # 3 (version: the uint 1), 4 (kind: a client kind; cred: bin <= 4096
        # bytes), 7.2 (kind goes with vc's type) and 7.1-7.3: the frame begins
        # with version 1, vc's kind and the exact credential bytes that
        # authenticated to vc (vc.head, tested by the caller) in the current
        # epoch of the cache (``cached``): a cache look-up would give vc or an
        # equal result.
        #
        # 4: the other fields' types and sizes, as `client_fields`.
        and type(ts) is int
        and ts >= 0
        and type(stream) is bytes
        and len(stream) == STREAM_SIZE
        and type(seq) is int
        and (
            ((type(payload) is bytes or type(payload) is str) and seq > 0)
            or (payload is None and seq == 0)
        )
        and type(tag) is bytes
        and len(tag) == vc.tag_size
        # 5 (now < the nonce's expiry) and 7.4, as the full path tests them:
        # the commit that made vc the state's credential set
        # state.valid_until_ms to the earlier of the two ends. (8 passes: that
        # commit also bound the state to vc's principal.)
        and vc.valid_from_ms <= now_ms < state.valid_until_ms
        # 2: canonical form. Last: the dearest, and a frame that fails an
        # earlier test then pays for it only once (in the full path).
        and canonical(fields) == data
    ):
        return fields  # type: ignore[no-any-return]
    return client_fields(fields, data)


def tuple_constructor(cls: type[_T]) -> Callable[[tuple[object, ...]], _T]:
    """``lambda values: cls(*values)`` for a NamedTuple class ``cls``, minus
    NamedTuple's Python-level ``__new__``: ``tuple.__new__`` bound to ``cls``.

    Measured (issue 15, median of 15 rounds, one run, 9 fields): 158 ns
    against 699 ns for ``cls(...)``; once per verified frame, that is several
    percent of a `mac` verify (``benchmarks/compare.py``: ``signedws.mac``).
    """
    constructor: Callable[[tuple[object, ...]], _T] = types.MethodType(tuple.__new__, cls)
    return constructor
