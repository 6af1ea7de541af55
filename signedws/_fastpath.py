"""Speed-ups: the module that holds the deliberate duplicates of reference code.

As websockets keeps ``speedups.c`` beside ``frames.py``, signedws keeps here
the deliberate duplicates of reference functions:

- `client_fields`: `signedws.envelope.parse_client_frame` for a value that
  ``msgpack.unpackb`` already decoded, in one condition;
- `tuple_constructor`: a NamedTuple's constructor without its Python-level
  ``__new__`` (the verifier builds one `signedws.verifier.Message` per frame).

One exception lives elsewhere: the verifier's per-connection fast path
(SPEC.md §6.4 steps 2-8 for a frame that carries its connection's current
credential: one ``msgpack.unpackb`` call and one condition) is written inline
in `signedws.verifier.Verifier.verify`. Here, as a function (issue 15), it cost
one Python call per frame plus unpacking the frame's 10 fields twice: ~150 ns,
~5% of a ~3.1 µs `mac` verify (``benchmarks/compare.py``, ``signedws.mac``
against ``floor.mac``: fastest rounds 3,034 -> 3,182 ns; paired median 2.05x
-> 2.16x of the HMAC floor; measured again when it moved back, paired
median 2.10-2.12x inline against 2.18-2.27x through the call, see
`signedws.verifier`). The same rules hold for it.

Rules:

1. Each speed-up gives the same answer as the reference it mirrors, for every
   input: the tests run every vector, the adversarial corpus, hypothesis
   frames and mutated frames through both paths of the verifier
   (``tests/helpers.py::verify_both_paths``, which also records which way the
   fast path went), and ``tests/test_fastpath.py`` holds the fast path to its
   outcomes (taken, handed over).
2. When a condition fails, for whatever reason, the reference code runs and
   says why: no rejection is decided by a speed-up, so the codes and details
   are the reference's.
3. This module imports the reference modules' public names only.

What it buys is measured in ``benchmarks/compare.py`` (``signedws.mac``
against ``floor.mac``, ``context.parse`` against ``reject.replay``): the full
path decodes with `signedws.envelope.decode_array`, ~6 µs for a `mac` frame
(``context.parse``), where the whole fast verify costs ~3.1 µs.
"""

from __future__ import annotations

import types
from collections.abc import Callable
from typing import Any, Final, TypeVar

from .envelope import (
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

__all__ = ["client_fields", "tuple_constructor"]

_T = TypeVar("_T", bound=tuple[Any, ...])

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


def tuple_constructor(cls: type[_T]) -> Callable[[tuple[object, ...]], _T]:
    """``lambda values: cls(*values)`` for a NamedTuple class ``cls``, minus
    NamedTuple's Python-level ``__new__``: ``tuple.__new__`` bound to ``cls``.

    Measured (issue 15, median of 15 rounds, one run, 9 fields): 158 ns
    against 699 ns for ``cls(...)``; once per verified frame, that is several
    percent of a `mac` verify (``benchmarks/compare.py``: ``signedws.mac``).
    """
    constructor: Callable[[tuple[object, ...]], _T] = types.MethodType(tuple.__new__, cls)
    return constructor
