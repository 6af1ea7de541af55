"""The wire codec: canonical MessagePack arrays of SPEC.md §2, §4-§7.

Everything signedws puts on the wire is a fixed-length MessagePack array whose
first element is the version. This module decodes such arrays strictly (one
canonical value, no trailing bytes, no maps, extensions, floats or booleans in
the shapes it accepts) and encodes them canonically. It knows the shapes and the
constants; it knows nothing about keys.

`_unpack` is the only place the MessagePack library is called for decoding,
and it raises only `Rejected` for any input bytes; two hot paths inline the
very same call: `parse_client_frame`, and `signedws.verifier.Verifier.verify`,
which then hands the decoded value to `check_client_frame` (or to its own
per-connection fast path). Every decoded array goes through the same
canonical-form check.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Final

import msgpack

from .errors import Code, Rejected

__all__ = [
    "CLIENT_LABEL",
    "DEFAULT_MAX_SERVER_FRAME_SIZE",
    "HELLO",
    "KIND_CLIENT_ED25519",
    "KIND_CLIENT_MAC",
    "KIND_SERVER_ED25519",
    "KIND_SERVER_MAC",
    "MAX_CREDENTIAL_SIZE",
    "MAX_LIST_ITEMS",
    "MAX_STRING_SIZE",
    "NONCE_SIZE",
    "SERVER_LABEL",
    "STREAM_SIZE",
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
    "check_client_frame",
    "decode_canonical",
    "decode_hello",
    "describe",
    "encode",
    "encode_hello",
    "length_prefixed",
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

#: Tag size by envelope kind.
TAG_SIZES: Final = {
    KIND_CLIENT_MAC: 32,
    KIND_CLIENT_ED25519: 64,
    KIND_SERVER_MAC: 32,
    KIND_SERVER_ED25519: 64,
}

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


_canonical: Final = _canonical_encoder()
_unpackb: Final = msgpack.unpackb
_DECODE_ERRORS: Final = (ValueError, TypeError, msgpack.UnpackException)


def _unpack(data: bytes, code: Code) -> object:
    """One MessagePack value, with no maps with entries and no extension types."""
    try:
        # raw=False, use_list=True, strict_map_key=True and timestamp=0 are
        # msgpack's defaults (>= 1.0, which pyproject requires); passing them
        # again costs ~90 ns of keyword parsing per frame.
        return _unpackb(data, max_map_len=0, max_ext_len=0)
    except _DECODE_ERRORS as exc:
        raise _undecodable(code, exc) from None


def _undecodable(code: Code, exc: Exception) -> Rejected:
    return Rejected(code, "not a MessagePack value: {}", type(exc).__name__)


def _canonical_array(value: object, data: bytes, code: Code) -> list[object]:
    """``value`` (decoded from ``data``) if it is an array encoded canonically."""
    if type(value) is not list:
        raise Rejected(code, "not an array but {}", type(value).__name__)
    # Canonical form (SPEC.md §2): the canonical re-encoding must be the input.
    # The re-encoding is used for nothing else.
    if _canonical(value) != data:
        raise Rejected(code, "not canonical MessagePack")
    return value


def decode_canonical(data: bytes, *, code: Code = Code.MALFORMED) -> list[object]:
    """Decode one canonically encoded MessagePack array.

    Args:
        data: the exact received bytes.
        code: the rejection code to raise with (`Code.MALFORMED` for envelopes,
            `Code.CREDENTIAL_MALFORMED` for credentials).

    Returns:
        The decoded array, as a list. Only canonical form and the outer type
        are checked here: each shape's parser checks its fields' exact types,
        which is where floats, booleans, maps and extensions are refused.

    Raises:
        Rejected: with ``code`` if ``data`` is not exactly one MessagePack
            value, is not canonical (SPEC.md §2), or is not an array.
    """
    return _canonical_array(_unpack(data, code), data, code)


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
        raise Rejected(code, "{} is not a uint", name)
    return value


def str_field(value: object, name: str, code: Code) -> str:
    """Return ``value`` if it is a str of 1-255 UTF-8 bytes (SPEC.md §2.1)."""
    if type(value) is not str:
        raise Rejected(code, "{} is not a str", name)
    # An ASCII str has as many UTF-8 bytes as characters: no need to encode.
    size = len(value) if value.isascii() else len(value.encode())
    if not 1 <= size <= MAX_STRING_SIZE:
        raise Rejected(code, "{} is {} bytes, not 1-{}", name, size, MAX_STRING_SIZE)
    return value


def str_set_field(value: object, name: str, code: Code, max_items: int) -> frozenset[str]:
    """Return ``value`` as a set if it is an array of distinct valid strs."""
    if type(value) is not list:
        raise Rejected(code, "{} is not an array", name)
    if len(value) > max_items:
        raise Rejected(code, "{} has {} items, over {}", name, len(value), max_items)
    for item in value:  # a loop, not all(...): no generator for the common short list
        if type(item) is not str or not item.isascii() or not 0 < len(item) <= MAX_STRING_SIZE:
            items = frozenset(str_field(item, name, code) for item in value)
            break
    else:
        items = frozenset(value)  # every item valid: `str_field` would pass each one
    if len(items) != len(value):
        raise Rejected(code, "{} has duplicates", name)
    return items


def _bin_field(value: object, name: str, size: int | None = None) -> bytes:
    if type(value) is not bytes:
        raise Rejected(Code.MALFORMED, "{} is not a bin", name)
    if size is not None and len(value) != size:
        raise Rejected(Code.MALFORMED, "{} is {} bytes, not {}", name, len(value), size)
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
    if not fields:
        raise Rejected(Code.MALFORMED, "empty array")
    version = fields[0]
    if type(version) is not int or version != VERSION:
        raise Rejected(Code.UNSUPPORTED_VERSION, "version {}", describe(version))


# -- client frames (SPEC.md §6.1) -------------------------------------------


ClientFields = tuple[int, bytes, bytes, int, int, bytes, int, Payload, bytes]

_CLIENT_KINDS: Final = frozenset((KIND_CLIENT_MAC, KIND_CLIENT_ED25519))


def parse_client_frame(data: bytes) -> ClientFields:
    """Decode a client frame and check its structure (SPEC.md §6.4 steps 2-4).

    Returns:
        ``(kind, cred, nonce, ctr, ts, stream, seq, payload, tag)``,
        type-checked. Nothing is authenticated yet.

    Raises:
        Rejected: `malformed` or `unsupported_version`.
    """
    try:  # `_unpack`, inlined: the hot path saves a call
        fields = _unpackb(data, max_map_len=0, max_ext_len=0)
    except _DECODE_ERRORS as exc:
        raise _undecodable(Code.MALFORMED, exc) from None
    return check_client_frame(fields, data)


def check_client_frame(fields: object, data: bytes) -> ClientFields:
    """`parse_client_frame` past the decoding: ``fields`` is what ``data`` decoded to.

    For the verifier, which decodes ``data`` itself (with the same call as
    `parse_client_frame`) to try its per-connection fast path first.

    Raises:
        Rejected: `malformed` or `unsupported_version`.
    """
    # `decode_canonical` and `_check_client_fields` in one: the condition
    # holds exactly when every one of their checks passes. Anything else takes
    # the long way, which raises the rejection of the first check that fails.
    if type(fields) is list and len(fields) == 10 and _canonical(fields) == data:
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
        ):
            return (kind, cred, nonce, ctr, ts, stream, seq, payload, tag)
        return _check_client_fields(fields)  # canonical, 10 elements: a field is wrong
    return _check_client_fields(_canonical_array(fields, data, Code.MALFORMED))


def _check_client_fields(fields: list[object]) -> ClientFields:
    """Steps 3-4 field by field, in order: the first failure is the one reported."""
    _version(fields)
    if len(fields) != 10:
        raise Rejected(Code.MALFORMED, "client frame has {} elements, not 10", len(fields))
    _, kind, cred, nonce, ctr, ts, stream, seq, payload, tag = fields
    if type(kind) is not int or kind not in (KIND_CLIENT_MAC, KIND_CLIENT_ED25519):
        raise Rejected(Code.MALFORMED, "kind {} is not a client frame kind", describe(kind))
    cred = _bin_field(cred, "cred")
    if len(cred) > MAX_CREDENTIAL_SIZE:
        raise Rejected(Code.MALFORMED, "cred is {} bytes, over {}", len(cred), MAX_CREDENTIAL_SIZE)
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
    fields = decode_canonical(data)
    _version(fields)
    if len(fields) != 9:
        raise Rejected(Code.MALFORMED, "server frame has {} elements, not 9", len(fields))
    _, kind, key_id, nonce, ctr, ack, ts, payload, tag = fields
    if type(kind) is not int or kind not in (KIND_SERVER_MAC, KIND_SERVER_ED25519):
        raise Rejected(Code.MALFORMED, "kind {} is not a server frame kind", describe(kind))
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
    fields = decode_canonical(data)
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
