"""The wire codec: canonical MessagePack arrays of SPEC.md §2, §4-§7.

Everything signedws puts on the wire is a fixed-length MessagePack array whose
first element is the version. This module decodes such arrays strictly (SPEC.md
§2 "Decoding": one canonical array of at most 64 elements, each nil, a
non-negative integer, a valid UTF-8 str or a bin, nothing nested except a
credential's two lists of strs, no trailing bytes) and encodes them canonically.
It knows the shapes and the constants; it knows nothing about keys.

`decode_array` is the decoder for anything that did not come from an
authenticated peer: it reads the top-level array header with msgpack's
``Unpacker``, refuses an array longer than any structure before decoding an
element, and decodes the elements with ``max_array_len=0`` (and
``max_map_len=0``, ``max_ext_len=0``), so no input makes it build more than a
few dozen objects, and it re-encodes (for the canonical check) only a value whose
shape is already right. The cost of refusing any input is then one copy of it
plus a bounded number of small objects. The verifier's per-connection fast path
decodes a frame that begins with its connection's authenticated credential in
one ``msgpack.unpackb`` call instead: that inlined copy lives in
`signedws._fastpath`, checked against `parse_client_frame` on every input.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Final, cast

import msgpack

from .errors import Code, Rejected

__all__ = [
    "CLIENT_LABEL",
    "DECODE_ERRORS",
    "DEFAULT_MAX_SERVER_FRAME_SIZE",
    "HELLO",
    "KIND_CLIENT_ED25519",
    "KIND_CLIENT_MAC",
    "KIND_SERVER_ED25519",
    "KIND_SERVER_MAC",
    "MAX_ARRAY_ITEMS",
    "MAX_CREDENTIAL_SIZE",
    "MAX_LIST_ITEMS",
    "MAX_STRING_SIZE",
    "NONCE_SIZE",
    "SERVER_LABEL",
    "STREAM_SIZE",
    "SUBPROTOCOL",
    "TAG_SIZES",
    "TYPE_CERTIFICATE",
    "TYPE_KEY_REFERENCE",
    "TYPE_TOKEN",
    "VERSION",
    "ClientFields",
    "ClientFrame",
    "Hello",
    "Payload",
    "ServerFrame",
    "canonical",
    "decode_array",
    "decode_canonical",
    "decode_hello",
    "describe",
    "encode",
    "encode_hello",
    "length_prefixed",
    "name_problem",
    "names_problem",
    "parse_client_frame",
    "parse_server_frame",
    "seal",
    "str_field",
    "str_set_field",
    "uint_field",
    "unverified_client_frame",
]

VERSION: Final = 1

# Envelope kinds (SPEC.md §5.2, §6.1, §7.1).
KIND_CLIENT_MAC: Final = 1
KIND_CLIENT_ED25519: Final = 2
HELLO: Final = 3
KIND_SERVER_MAC: Final = 4
KIND_SERVER_ED25519: Final = 5

# Credential types (SPEC.md §4).
TYPE_TOKEN: Final = 1
TYPE_CERTIFICATE: Final = 2
TYPE_KEY_REFERENCE: Final = 3

NONCE_SIZE: Final = 64
STREAM_SIZE: Final = 16
MAX_CREDENTIAL_SIZE: Final = 4096
MAX_STRING_SIZE: Final = 255
MAX_LIST_ITEMS: Final = 64
#: No structure has a longer array (SPEC.md §2): a longer one fails decoding.
MAX_ARRAY_ITEMS: Final = 64

#: Tag size by envelope kind.
TAG_SIZES: Final = {
    KIND_CLIENT_MAC: 32,
    KIND_CLIENT_ED25519: 64,
    KIND_SERVER_MAC: 32,
    KIND_SERVER_ED25519: 64,
}

#: The WebSocket subprotocol of signedws v1 (SPEC.md §5.1).
SUBPROTOCOL: Final = "signedws.v1"

CLIENT_LABEL: Final = b"signedws/v1 client\x00"
SERVER_LABEL: Final = b"signedws/v1 server\x00"

Payload = str | bytes | None

#: Largest server frame a client accepts by default, bytes.
DEFAULT_MAX_SERVER_FRAME_SIZE: Final = 1 << 20


def _canonical_encoder() -> Callable[[object], bytes]:
    """The canonical re-encoder of `decode_canonical`'s check (SPEC.md §2).

    ``msgpack.packb`` builds a new ``Packer`` and its 256 KiB buffer on every
    call: three quarters of its cost on a client frame. msgpack's C ``Packer``
    can be built once and shared between threads: packing the builtin types a
    decoded value holds runs no Python code (so it is atomic under the GIL),
    and on free-threaded builds ``pack`` holds the packer's own lock. Its
    ``pack`` with ``use_bin_type=True`` and the default ``autoreset`` is what
    ``packb(value, use_bin_type=True)`` runs, so the bytes are the same. The
    pure-Python fallback (PyPy, ``MSGPACK_PUREPYTHON``) is not thread safe and
    keeps a packer per call.

    ``strict_types=True`` makes the packer test exact types (``PyLong_CheckExact``
    and so on) instead of ``isinstance``: ~30 ns less per client frame. The
    packer is only ever given what ``msgpack.unpackb`` returned, which holds
    exact builtin types (and exact ``ExtType``) only, so the bytes are the same.
    """
    packer = msgpack.Packer(use_bin_type=True, strict_types=True)
    if type(packer).__module__ != "msgpack._cmsgpack":  # pragma: no cover - no C extension
        return functools.partial(msgpack.packb, use_bin_type=True, strict_types=True)
    pack: Callable[[object], bytes] = packer.pack
    return pack


#: The canonical MessagePack encoding of a decoded value (SPEC.md §2): the
#: re-encoding of `decode_array`'s canonical check.
canonical: Final = _canonical_encoder()
_unpackb: Final = msgpack.unpackb
_Unpacker: Final = msgpack.Unpacker
#: What msgpack raises for bytes that are not one MessagePack value.
DECODE_ERRORS: Final = (ValueError, TypeError, msgpack.UnpackException)
_NONE: Final = type(None)
#: The first bytes of a MessagePack array: fixarray, array 16, array 32.
_ARRAY_HEADS: Final = frozenset((*range(0x90, 0xA0), 0xDC, 0xDD))


def _undecodable(code: Code, exc: Exception) -> Rejected:
    return Rejected(code, f"not a MessagePack value: {type(exc).__name__}")


def _scalar(value: object) -> bool:
    """Whether ``value`` is of a type a field may hold: nil, uint, str or bin."""
    kind = type(value)
    return kind is bytes or kind is str or kind is _NONE or (type(value) is int and value >= 0)


def _check_values(fields: list[object], code: Code, arrays_at: frozenset[int]) -> None:
    """SPEC.md §2 decoding, past the bytes: value types and nesting."""
    if not fields:
        raise Rejected(code, "empty array")
    for index, value in enumerate(fields):
        if type(value) is list and index in arrays_at:  # at most 64 items: decode_array
            if all(map(_scalar, value)):
                continue
            raise Rejected(code, f"element {index} holds a value of a type that never appears")
        if not _scalar(value):
            what = "negative int" if type(value) is int else type(value).__name__
            raise Rejected(code, f"element {index} is a {what}")


def decode_array(
    data: bytes, *, code: Code = Code.MALFORMED, arrays_at: frozenset[int] = frozenset()
) -> list[object]:
    """Decode one structure (SPEC.md §2 "Decoding"), at a bounded cost.

    Args:
        data: the exact received bytes.
        code: the rejection code (`Code.MALFORMED`, or `Code.CREDENTIAL_MALFORMED`
            for a credential).
        arrays_at: the indexes at which the shape has an array of strs (a
            credential's ``scopes`` and ``aud``): there, and only there, an
            element may be an array (of at most 64 scalar values). Elsewhere an
            array is refused at its header (msgpack's ``max_array_len=0``), or,
            if empty, just after.

    Returns:
        The elements, as a list: each nil, a non-negative int, a str or bytes
        (or, at ``arrays_at``, a list of those).

    Raises:
        Rejected: with ``code`` if ``data`` is not exactly one canonically
            encoded, non-empty array of at most 64 such elements.
    """
    if not data or data[0] not in _ARRAY_HEADS:
        # Not an array: say what it is. With no array allowed, the value decodes
        # to one scalar or an empty map at most: a bounded cost.
        try:
            value = _unpackb(data, max_array_len=0, max_map_len=0, max_ext_len=0)
        except DECODE_ERRORS as exc:
            raise _undecodable(code, exc) from None
        raise Rejected(code, f"not an array but {type(value).__name__}")
    unpacker = _Unpacker(max_buffer_size=len(data), max_array_len=0, max_map_len=0, max_ext_len=0)
    try:
        unpacker.feed(data)
        count = unpacker.read_array_header()
        if count > MAX_ARRAY_ITEMS:  # before decoding any element
            raise Rejected(code, f"array of {count} elements, over {MAX_ARRAY_ITEMS}")
        fields: list[object] = []
        for index in range(count):
            # A look at the next header byte (a cheap pre-check, not a codec):
            # an array where the shape allows one is read header first.
            if index in arrays_at and data[unpacker.tell()] in _ARRAY_HEADS:
                items = unpacker.read_array_header()
                if items > MAX_ARRAY_ITEMS:
                    raise Rejected(code, f"element {index} has {items} items")
                fields.append([unpacker.unpack() for _ in range(items)])
            else:
                fields.append(unpacker.unpack())
    except (*DECODE_ERRORS, IndexError) as exc:
        raise _undecodable(code, exc) from None
    if unpacker.tell() != len(data):
        raise Rejected(code, "not a MessagePack value: ExtraData")
    _check_values(fields, code, arrays_at)
    # Canonical form (SPEC.md §2), on a value of a bounded shape: the canonical
    # re-encoding must be the input. The re-encoding is used for nothing else.
    if canonical(fields) != data:
        raise Rejected(code, "not canonical MessagePack")
    return fields


_ANYWHERE: Final = frozenset(range(MAX_ARRAY_ITEMS))


def decode_canonical(data: bytes, *, code: Code = Code.MALFORMED) -> list[object]:
    """`decode_array` with an array of scalars allowed as any element: for tools
    that read a structure without knowing its shape."""
    return decode_array(data, code=code, arrays_at=_ANYWHERE)


def encode(fields: Sequence[object]) -> bytes:
    """Encode an array canonically."""
    return bytes(msgpack.packb(list(fields), use_bin_type=True))


def length_prefixed(value: bytes) -> bytes:
    """``lp(value)``: a 2-byte big-endian length, then the bytes (SPEC.md §2)."""
    if len(value) > 0xFFFF:
        raise ValueError("value too long for a 2-byte length prefix")
    return len(value).to_bytes(2, "big") + value


def seal(fields: Sequence[object], tag_size: int) -> bytes:
    """Encode ``fields`` (which end with a placeholder tag) without the tag.

    Returns the envelope bytes up to the tag: the bytes a tag is computed over,
    to which ``bytes((0xc4, tag_size)) + tag`` is appended to finish it.
    """
    return encode(fields)[: -(tag_size + 2)]


# -- field checks, shared by every shape ------------------------------------


def uint_field(value: object, name: str, code: Code) -> int:
    """Return ``value`` if it is a MessagePack uint, else reject with ``code``."""
    if type(value) is not int or value < 0:
        raise Rejected(code, f"{name} is not a uint")
    return value


def name_problem(value: object) -> str | None:
    """Say why ``value`` is not a str of 1-255 UTF-8 bytes (SPEC.md §2.1), or
    None if it is one: ``"is not a str"``, ``"is 0 bytes, not 1-255"``.

    For callers that refuse a bad name with their own error (a `UsageError`
    for a bad argument, a `KeyFormatError` for a bad document); `str_field`
    is the same check for peer input.
    """
    if type(value) is not str:
        return "is not a str"
    # An ASCII str has as many UTF-8 bytes as characters: no need to encode.
    size = len(value) if value.isascii() else len(value.encode())
    if not 1 <= size <= MAX_STRING_SIZE:
        return f"is {size} bytes, not 1-{MAX_STRING_SIZE}"
    return None


def names_problem(value: object, max_items: int) -> str | None:
    """Say why ``value`` is not a list of at most ``max_items`` distinct
    valid strs (`name_problem`), or None if it is one."""
    if type(value) is not list:
        return "is not an array"
    if len(value) > max_items:
        return f"has {len(value)} items, over {max_items}"
    for item in value:
        problem = name_problem(item)
        if problem is not None:
            return problem
    if len(set(value)) != len(value):
        return "has duplicates"
    return None


def str_field(value: object, name: str, code: Code) -> str:
    """Return ``value`` if it is a str of 1-255 UTF-8 bytes (SPEC.md §2.1).

    Raises:
        Rejected: with ``code``, naming ``name`` and `name_problem`'s reason.
    """
    problem = name_problem(value)
    if problem is not None:
        raise Rejected(code, f"{name} {problem}")
    return value  # type: ignore[return-value]  # name_problem: a str


def str_set_field(value: object, name: str, code: Code, max_items: int) -> frozenset[str]:
    """Return ``value`` as a set if it is an array of distinct valid strs.

    Raises:
        Rejected: with ``code``, naming ``name`` and `names_problem`'s reason.
    """
    problem = names_problem(value, max_items)
    if problem is not None:
        raise Rejected(code, f"{name} {problem}")
    return frozenset(cast("list[str]", value))  # names_problem: a list of str


def _bin_field(value: object, name: str, size: int | None = None) -> bytes:
    if type(value) is not bytes:
        raise Rejected(Code.MALFORMED, f"{name} is not a bin")
    if size is not None and len(value) != size:
        raise Rejected(Code.MALFORMED, f"{name} is {len(value)} bytes, not {size}")
    return value


def _payload_field(value: object) -> Payload:
    if value is not None and type(value) is not str and type(value) is not bytes:
        raise Rejected(Code.MALFORMED, "payload is not a str, bin or nil")
    return value


def describe(value: object) -> str:
    """Name a peer-supplied value for a log line without echoing its contents:
    small non-negative integers are shown, anything else only by type."""
    if type(value) is int and 0 <= value < 2**16:
        return str(value)
    return f"a {type(value).__name__}"


def _version(fields: list[object]) -> None:
    version = fields[0]
    if type(version) is not int or version != VERSION:
        raise Rejected(Code.UNSUPPORTED_VERSION, f"version {describe(version)}")


# -- client frames (SPEC.md §6.1) -------------------------------------------


ClientFields = tuple[int, bytes, bytes, int, int, bytes, int, Payload, bytes]


def parse_client_frame(data: bytes) -> ClientFields:
    """Decode a client frame and check its structure (SPEC.md §6.4 steps 2-4).

    Returns:
        ``(kind, cred, nonce, ctr, ts, stream, seq, payload, tag)``,
        type-checked. Nothing is authenticated yet.

    Raises:
        Rejected: `malformed` or `unsupported_version`.
    """
    return _check_client_fields(decode_array(data))


def _check_client_fields(fields: list[object]) -> ClientFields:
    """Steps 3-4 field by field, in order: the first failure is the one reported."""
    _version(fields)
    if len(fields) != 10:
        raise Rejected(Code.MALFORMED, f"client frame has {len(fields)} elements, not 10")
    _, kind, cred, nonce, ctr, ts, stream, seq, payload, tag = fields
    if type(kind) is not int or kind not in (KIND_CLIENT_MAC, KIND_CLIENT_ED25519):
        raise Rejected(Code.MALFORMED, f"kind {describe(kind)} is not a client frame kind")
    cred = _bin_field(cred, "cred")
    if len(cred) > MAX_CREDENTIAL_SIZE:
        raise Rejected(Code.MALFORMED, f"cred is {len(cred)} bytes, over {MAX_CREDENTIAL_SIZE}")
    counter = uint_field(ctr, "ctr", Code.MALFORMED)
    if counter < 1:
        raise Rejected(Code.MALFORMED, "ctr is 0")
    number = uint_field(seq, "seq", Code.MALFORMED)
    body = _payload_field(payload)
    if (number == 0) != (body is None):
        raise Rejected(Code.MALFORMED, "seq must be 0 exactly for a nil payload")
    return (
        kind,
        cred,
        _bin_field(nonce, "nonce", NONCE_SIZE),
        counter,
        uint_field(ts, "ts", Code.MALFORMED),
        _bin_field(stream, "stream", STREAM_SIZE),
        number,
        body,
        _bin_field(tag, "tag", TAG_SIZES[kind]),
    )


@dataclass(frozen=True, slots=True)
class ClientFrame:
    """A decoded, **unverified** client frame, for tools and tests.

    Nothing in it is authenticated: only `signedws.verifier.Verifier.verify`
    says whether a frame is genuine.
    """

    kind: int
    #: Not in the repr: a frame shown in a log or a traceback must not
    #: carry the client's token.
    credential: bytes = field(repr=False)
    nonce: bytes
    counter: int
    timestamp_ms: int
    stream: bytes
    seq: int
    payload: Payload
    tag: bytes


def unverified_client_frame(data: bytes) -> ClientFrame:
    """Decode a client frame without verifying it (see `ClientFrame`).

    Raises:
        Rejected: `malformed` or `unsupported_version`.
    """
    return ClientFrame(*parse_client_frame(data))


# -- server frames (SPEC.md §7.1) -------------------------------------------


@dataclass(frozen=True, slots=True)
class ServerFrame:
    """A decoded server frame; unverified until `Signer.verify` returns it."""

    kind: int
    key_id: str
    nonce: bytes
    counter: int
    ack: int
    timestamp_ms: int
    payload: Payload
    tag: bytes


def parse_server_frame(data: bytes) -> ServerFrame:
    """Decode a server frame and check its structure (SPEC.md §7.2 step 1).

    Raises:
        Rejected: `malformed` or `unsupported_version`.
    """
    fields = decode_array(data)
    _version(fields)
    if len(fields) != 9:
        raise Rejected(Code.MALFORMED, f"server frame has {len(fields)} elements, not 9")
    _, kind, key_id, nonce, ctr, ack, ts, payload, tag = fields
    if type(kind) is not int or kind not in (KIND_SERVER_MAC, KIND_SERVER_ED25519):
        raise Rejected(Code.MALFORMED, f"kind {describe(kind)} is not a server frame kind")
    frame = ServerFrame(
        kind,
        str_field(key_id, "key_id", Code.MALFORMED),
        _bin_field(nonce, "nonce", NONCE_SIZE),
        uint_field(ctr, "ctr", Code.MALFORMED),
        uint_field(ack, "ack", Code.MALFORMED),
        uint_field(ts, "ts", Code.MALFORMED),
        _payload_field(payload),
        _bin_field(tag, "tag", TAG_SIZES[kind]),
    )
    if frame.counter < 1:
        raise Rejected(Code.MALFORMED, "ctr is 0")
    return frame


# -- hello (SPEC.md §5.2) ---------------------------------------------------


@dataclass(frozen=True, slots=True)
class Hello:
    """The server's first message. It is not authenticated (SPEC.md §11.6)."""

    nonce: bytes
    audience: str
    server_time_ms: int
    max_frame_size: int
    window: int


def encode_hello(hello: Hello) -> bytes:
    """Encode a hello."""
    return encode(
        [
            VERSION,
            HELLO,
            hello.nonce,
            hello.audience,
            hello.server_time_ms,
            hello.max_frame_size,
            hello.window,
        ]
    )


def decode_hello(data: bytes) -> Hello:
    """Decode a hello and check its structure.

    Raises:
        Rejected: `malformed` or `unsupported_version`.
    """
    fields = decode_array(data)
    _version(fields)
    if len(fields) != 7 or fields[1] != HELLO or type(fields[1]) is not int:
        raise Rejected(Code.MALFORMED, "not a hello")
    _, _, nonce, aud, now_ms, max_frame, window = fields
    return Hello(
        _bin_field(nonce, "nonce", NONCE_SIZE),
        str_field(aud, "aud", Code.MALFORMED),
        uint_field(now_ms, "time", Code.MALFORMED),
        uint_field(max_frame, "max_frame", Code.MALFORMED),
        uint_field(window, "window", Code.MALFORMED),
    )
