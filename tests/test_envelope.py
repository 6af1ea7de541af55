"""Tests for signedws.envelope: canonical MessagePack (SPEC.md §2) and the frame shapes."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from signedws import _fastpath
from signedws.envelope import (
    CLIENT_LABEL,
    HELLO,
    KIND_CLIENT_ED25519,
    KIND_CLIENT_MAC,
    KIND_SERVER_ED25519,
    KIND_SERVER_MAC,
    MAX_CREDENTIAL_SIZE,
    NONCE_SIZE,
    SERVER_LABEL,
    STREAM_SIZE,
    TAG_SIZES,
    ClientFrame,
    Hello,
    ServerFrame,
    canonical,
    decode_array,
    decode_canonical,
    decode_hello,
    encode,
    encode_hello,
    length_prefixed,
    name_problem,
    names_problem,
    parse_client_frame,
    parse_server_frame,
    seal,
    str_field,
    str_set_field,
    uint_field,
    unverified_client_frame,
)
from signedws.errors import Code, Rejected

NONCE = bytes(range(NONCE_SIZE))
STREAM = bytes(range(100, 100 + STREAM_SIZE))
CRED = b"\x94\x01\x03\xa3iss\xa3kid"  # any bytes: the envelope does not look inside


def _rejected(code: Code, data: bytes) -> Rejected:
    """Decode ``data`` as a client frame and return the Rejected it must raise."""
    with pytest.raises(Rejected) as info:
        parse_client_frame(data)
    assert info.value.code is code
    return info.value


def client_fields(kind: int = KIND_CLIENT_MAC) -> list[object]:
    """A well-formed client frame's elements (SPEC.md §6.1)."""
    return [1, kind, CRED, NONCE, 7, 1_700_000_000_000, STREAM, 5, "hi", bytes(TAG_SIZES[kind])]


def server_fields(kind: int = KIND_SERVER_MAC) -> list[object]:
    """A well-formed server frame's elements (SPEC.md §7.1)."""
    return [1, kind, "cid-1", NONCE, 3, 7, 1_700_000_000_000, b"\x00\x01", bytes(TAG_SIZES[kind])]


def hello_fields() -> list[object]:
    """A well-formed hello's elements (SPEC.md §5.2)."""
    return [1, HELLO, NONCE, "api.example", 1_700_000_000_000, 65536, 0]


def replaced(fields: list[object], index: int, value: object) -> list[object]:
    """``fields`` with element ``index`` replaced by ``value``."""
    out = list(fields)
    out[index] = value
    return out


# -- decode_canonical ---------------------------------------------------------


def test_decode_canonical_returns_the_array() -> None:
    """A canonical array decodes to a list of its values."""
    data = encode([1, 200, 70000, 2**64 - 1, "s", b"b", None, [], ["x"]])
    assert decode_canonical(data) == [1, 200, 70000, 2**64 - 1, "s", b"b", None, [], ["x"]]


@pytest.mark.parametrize(
    ("hex_data", "detail"),
    [
        pytest.param("91ca3f800000", "element 0 is a float", id="float32"),
        pytest.param("91cb3ff0000000000000", "element 0 is a float", id="float64"),
        pytest.param("91c3", "element 0 is a bool", id="true"),
        pytest.param("91ff", "element 0 is a negative int", id="negative-fixint"),
        pytest.param("9180", "element 0 is a dict", id="empty-map"),
        pytest.param("91d40500", "not a MessagePack value: ValueError", id="fixext"),
        pytest.param(
            "9191ca3f800000",
            "element 0 holds a value of a type that never appears",
            id="float-in-list",
        ),
        pytest.param("90", "empty array", id="empty-array"),
    ],
)
def test_decode_canonical_refuses_types_that_never_appear(hex_data: str, detail: str) -> None:
    """Floats, booleans, negative integers, maps and extensions fail decoding,
    wherever they are (SPEC.md §2 "Decoding"), and so does an empty array."""
    with pytest.raises(Rejected) as info:
        decode_canonical(bytes.fromhex(hex_data))
    assert (info.value.code, info.value.detail) == (Code.MALFORMED, detail)


def test_decode_array_refuses_long_arrays_before_decoding_them() -> None:
    """An array of more than 64 elements is refused at its header (SPEC.md §2)."""
    with pytest.raises(Rejected) as info:
        decode_array(b"\xdc\xff\xff" + b"\x90" * 65535)
    assert info.value.detail == "array of 65535 elements, over 64"
    with pytest.raises(Rejected) as info:
        decode_array(encode([1, ["a"] * 65]), arrays_at=frozenset({1}))
    assert info.value.detail == "element 1 has 65 items"
    assert decode_array(encode([1] * 64)) == [1] * 64


def test_decode_array_nests_only_where_the_shape_says() -> None:
    """An array element is allowed only at ``arrays_at`` (a credential's lists)."""
    data = encode([1, ["a", "b"], []])
    assert decode_array(data, arrays_at=frozenset({1, 2})) == [1, ["a", "b"], []]
    with pytest.raises(Rejected, match="not a MessagePack value: ValueError"):
        decode_array(data)
    with pytest.raises(Rejected, match="element 2 is a list"):
        decode_array(data, arrays_at=frozenset({1}))
    # Truncated where an array may start: nothing to look at.
    with pytest.raises(Rejected, match="not a MessagePack value: IndexError"):
        decode_array(b"\x92\x01", arrays_at=frozenset({1}))


def test_decode_canonical_uses_the_given_code() -> None:
    """The caller chooses the rejection code (credential_malformed for credentials)."""
    with pytest.raises(Rejected) as info:
        decode_canonical(b"\xc1", code=Code.CREDENTIAL_MALFORMED)
    assert info.value.code is Code.CREDENTIAL_MALFORMED


@pytest.mark.parametrize(
    "hex_data",
    [
        pytest.param("91cc01", id="uint8-for-fixint"),
        pytest.param("91cd0001", id="uint16-for-fixint"),
        pytest.param("91cd00ff", id="uint16-for-uint8"),
        pytest.param("91ce0000ffff", id="uint32-for-uint16"),
        pytest.param("91cf00000000ffffffff", id="uint64-for-uint32"),
        pytest.param("91d001", id="int8-for-positive"),
        pytest.param("91d10100", id="int16-for-positive"),
        pytest.param("91d200010000", id="int32-for-positive"),
        pytest.param("91d30000000100000000", id="int64-for-positive"),
        pytest.param("91c5000161", id="bin16-for-short-bin"),
        pytest.param("91c60000000161", id="bin32-for-short-bin"),
        pytest.param("91d90161", id="str8-for-short-str"),
        pytest.param("91da000161", id="str16-for-short-str"),
        pytest.param("91db0000000161", id="str32-for-short-str"),
        pytest.param("dc000101", id="array16-for-short-array"),
        pytest.param("dd0000000101", id="array32-for-short-array"),
    ],
)
def test_decode_canonical_refuses_non_shortest_forms(hex_data: str) -> None:
    """A value not in its shortest form is rejected as not canonical."""
    with pytest.raises(Rejected, match="not canonical") as info:
        decode_canonical(bytes.fromhex(hex_data))
    assert info.value.code is Code.MALFORMED


@pytest.mark.parametrize(
    "hex_data",
    [
        pytest.param("", id="empty"),
        pytest.param("910100", id="trailing-byte"),
        pytest.param("9001", id="trailing-after-empty-array"),
        pytest.param("92", id="truncated-array"),
        pytest.param("9201", id="truncated-element"),
        pytest.param("91a3ab", id="truncated-str"),
        pytest.param("91c40361", id="truncated-bin"),
        pytest.param("91cd01", id="truncated-uint"),
        pytest.param("dc00", id="truncated-array16-header"),
        pytest.param("c1", id="reserved-byte"),
        pytest.param("91c1", id="nested-reserved-byte"),
        pytest.param("91a1ff", id="invalid-utf8"),
        pytest.param("918101a0", id="nested-map"),
        pytest.param("d40501", id="fixext"),
        pytest.param("91d40501", id="nested-fixext"),
        pytest.param("91c7010501", id="nested-ext8"),
        pytest.param("91d6ff00000000", id="nested-timestamp"),
        pytest.param("91" * 2000 + "c0", id="too-deep"),
        pytest.param("9191dc000101", id="depth-3"),
        pytest.param("919191c0", id="depth-3-fixarray"),
    ],
)
def test_decode_canonical_refuses_non_messagepack(hex_data: str) -> None:
    """Bytes that are not exactly one MessagePack value are rejected as malformed."""
    with pytest.raises(Rejected, match="not a MessagePack value") as info:
        decode_canonical(bytes.fromhex(hex_data))
    assert info.value.code is Code.MALFORMED


@pytest.mark.parametrize(
    ("hex_data", "type_name"),
    [
        ("80", "dict"),
        ("01", "int"),
        ("a161", "str"),
        ("c40161", "bytes"),
        ("c0", "NoneType"),
        ("c3", "bool"),
        ("cb3ff0000000000000", "float"),
    ],
)
def test_decode_canonical_refuses_non_arrays(hex_data: str, type_name: str) -> None:
    """A single value that is not an array (map, scalar, float, bool) is rejected."""
    with pytest.raises(Rejected, match=f"not an array but {type_name}") as info:
        decode_canonical(bytes.fromhex(hex_data))
    assert info.value.code is Code.MALFORMED


def test_shape_parsers_refuse_nested_types_outside_the_spec() -> None:
    """Whatever decode_canonical lets through, no frame shape accepts a float, bool or map."""
    junks: tuple[object, ...] = (1.0, True, {})
    for junk in junks:
        for index in range(10):
            with pytest.raises(Rejected):
                parse_client_frame(encode(replaced(client_fields(), index, junk)))
        for index in range(9):
            with pytest.raises(Rejected):
                parse_server_frame(encode(replaced(server_fields(), index, junk)))
        for index in range(7):
            with pytest.raises(Rejected):
                decode_hello(encode(replaced(hello_fields(), index, junk)))


@given(st.binary(max_size=256))
def test_decode_canonical_raises_only_rejected(data: bytes) -> None:
    """For any bytes, decode_canonical returns a list or raises Rejected, nothing else."""
    try:
        value: object = decode_canonical(data)
    except Rejected as exc:
        value = exc.code
    assert type(value) is list or value is Code.MALFORMED


_msgpack_bytes = st.lists(
    st.sampled_from(
        [
            *(b"\x90", b"\x91", b"\x92", b"\x97", b"\x99", b"\x9a", b"\x01", b"\x03", b"\x04"),
            *(b"\x00", b"\xc0", b"\xc3", b"\xcc", b"\xcd", b"\xc4 ", b"\xc4@", b"\xa1a"),
            *(b"\x80", b"\x81", b"\xcb", b"\xd4", b"\xc7", b"\xdc", b"\xd9", b"\xff"),
            *(bytes(8), bytes(32), bytes(64)),
        ]
    ),
    max_size=24,
).map(b"".join)


@given(st.binary(max_size=128) | _msgpack_bytes)
def test_shape_parsers_raise_only_rejected(data: bytes) -> None:
    """For any bytes, each frame and hello parser returns or raises Rejected, nothing else."""
    for parse in (parse_client_frame, parse_server_frame, decode_hello):
        try:
            result: object = parse(data)
        except Rejected as exc:
            result = exc.code
        assert not isinstance(result, Code) or result in {
            Code.MALFORMED,
            Code.UNSUPPORTED_VERSION,
        }


_scalars = (
    st.none()
    | st.integers(min_value=0, max_value=2**64 - 1)
    | st.text(max_size=40)
    | st.binary(max_size=40)
)
#: An element: a scalar or an array of scalars (SPEC.md §2: nothing nests deeper).
_wire_values = _scalars | st.lists(_scalars, max_size=5)


@given(st.lists(_wire_values, min_size=1, max_size=8))
def test_encode_decode_round_trip(value: list[object]) -> None:
    """Any array of the spec's types encodes canonically and decodes back to itself."""
    assert decode_canonical(encode(value)) == value


@given(st.lists(_wire_values, min_size=1, max_size=8), st.data())
def test_mutated_encodings_raise_only_rejected(value: list[object], data: st.DataObject) -> None:
    """Flipping, cutting or extending a valid encoding yields a list or Rejected, nothing else."""
    encoded = bytearray(encode(value))
    position = data.draw(st.integers(min_value=0, max_value=len(encoded) - 1))
    action = data.draw(st.sampled_from(["flip", "truncate", "extend"]))
    if action == "flip":
        encoded[position] ^= data.draw(st.integers(min_value=1, max_value=255))
    elif action == "truncate":
        del encoded[position:]
    else:
        encoded += data.draw(st.binary(min_size=1, max_size=4))
    try:
        result: object = decode_canonical(bytes(encoded))
    except Rejected as exc:
        result = exc.code
    assert type(result) is list or result is Code.MALFORMED
    if type(result) is list:
        assert action == "flip"  # a truncated or extended encoding never passes


def _parsed(parse: Callable[[], object]) -> object:
    try:
        return parse()
    except Rejected as exc:
        return (exc.code, exc.detail)


_frame_fields = st.lists(
    st.one_of(
        st.just(1),
        st.integers(min_value=0, max_value=2**64 - 1),
        st.none(),
        st.booleans(),
        st.floats(allow_nan=False),
        st.text(max_size=20),
        st.binary(max_size=70),
        st.sampled_from([bytes(16), bytes(32), bytes(64)]),
        st.lists(st.integers(0, 3), max_size=2),
    ),
    min_size=8,
    max_size=11,
)


@given(st.binary(max_size=200) | _msgpack_bytes | _frame_fields.map(encode))
def test_fastpath_client_fields_is_parse_client_frame_past_decoding(data: bytes) -> None:
    """For any bytes that decode, _fastpath.client_fields on the decoded value gives
    exactly what parse_client_frame gives: the same fields, or the same code
    and detail (the verifier relies on it)."""
    try:
        fields = msgpack.unpackb(data, max_map_len=0, max_ext_len=0)
    except (ValueError, TypeError, msgpack.UnpackException):
        return
    assert _parsed(lambda: _fastpath.client_fields(fields, data)) == _parsed(
        lambda: parse_client_frame(data)
    )


@given(st.lists(_wire_values | st.booleans() | st.floats(), max_size=12))
def test_canonical_check_is_packb_of_the_decoded_value(value: list[object]) -> None:
    """The canonical check's shared packer (strict types) re-encodes anything a
    decoder returns as msgpack.packb does."""
    data = bytes(msgpack.packb(value, use_bin_type=True))
    decoded = msgpack.unpackb(data, max_map_len=0, max_ext_len=0)
    assert canonical(decoded) == msgpack.packb(decoded, use_bin_type=True) == data


SECRET_MARK = "card 4111 1111 1111 1111"


@pytest.mark.parametrize(
    ("parse", "fields", "index"),
    [
        pytest.param(parse_client_frame, client_fields(), 0, id="client-version"),
        pytest.param(parse_client_frame, client_fields(), 1, id="client-kind"),
        pytest.param(parse_server_frame, server_fields(), 0, id="server-version"),
        pytest.param(parse_server_frame, server_fields(), 1, id="server-kind"),
        pytest.param(decode_hello, hello_fields(), 0, id="hello-version"),
        pytest.param(decode_hello, hello_fields(), 1, id="hello-kind"),
    ],
)
@pytest.mark.parametrize(
    "junk", [SECRET_MARK, SECRET_MARK.encode(), [1, SECRET_MARK]], ids=["str", "bin", "array"]
)
def test_rejection_details_never_carry_field_contents(
    parse: Callable[[bytes], object], fields: list[object], index: int, junk: object
) -> None:
    """A rejection's log detail names the field, never what the peer put in it (SPEC.md §9)."""
    with pytest.raises(Rejected) as info:
        parse(encode(replaced(fields, index, junk)))
    assert "4111" not in info.value.detail
    assert "4111" not in str(info.value)


# -- encode, seal, length_prefixed --------------------------------------------


def test_encode_is_canonical_bytes() -> None:
    """encode writes each value in its shortest form, bytes as bin and text as str."""
    assert encode([1, 255, "a", b"a", None]) == bytes.fromhex("95 01 ccff a161 c40161 c0")
    assert encode(()) == b"\x90"


@pytest.mark.parametrize("tag_size", [32, 64])
def test_seal_is_the_encoding_without_the_tag(tag_size: int) -> None:
    """seal(fields) + c4 <size> + tag is the encoding of fields ending with that tag."""
    fields: list[object] = [1, 2, "x", b"y"]
    tag = bytes(range(tag_size))
    body = seal([*fields, bytes(tag_size)], tag_size)
    assert body + bytes((0xC4, tag_size)) + tag == encode([*fields, tag])
    assert body == encode([*fields, tag])[: -(tag_size + 2)]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (b"", b"\x00\x00"),
        (b"abc", b"\x00\x03abc"),
        (bytes(256), b"\x01\x00" + bytes(256)),
        (bytes(0xFFFF), b"\xff\xff" + bytes(0xFFFF)),
    ],
)
def test_length_prefixed(value: bytes, expected: bytes) -> None:
    """lp(x) is a 2-byte big-endian length followed by x (SPEC.md §2)."""
    assert length_prefixed(value) == expected


def test_length_prefixed_refuses_oversize() -> None:
    """A value longer than 65535 bytes has no 2-byte length prefix."""
    with pytest.raises(ValueError, match="too long"):
        length_prefixed(bytes(0x10000))


def test_labels_and_tag_sizes() -> None:
    """Labels end with a zero byte and tag sizes follow the envelope kind (SPEC.md §6.1, §7.1)."""
    assert CLIENT_LABEL == b"signedws/v1 client\x00"
    assert SERVER_LABEL == b"signedws/v1 server\x00"
    assert TAG_SIZES == {
        KIND_CLIENT_MAC: 32,
        KIND_CLIENT_ED25519: 64,
        KIND_SERVER_MAC: 32,
        KIND_SERVER_ED25519: 64,
    }


# -- field checks ---------------------------------------------------------------


@pytest.mark.parametrize("value", [0, 1, 2**64 - 1])
def test_uint_field_accepts(value: int) -> None:
    """Non-negative ints are uints."""
    assert uint_field(value, "n", Code.MALFORMED) == value


@pytest.mark.parametrize("value", [-1, True, False, 1.0, "1", None, b"\x01"])
def test_uint_field_refuses(value: object) -> None:
    """Negative ints, booleans, floats and other types are not uints."""
    with pytest.raises(Rejected, match="n is not a uint") as info:
        uint_field(value, "n", Code.CREDENTIAL_MALFORMED)
    assert info.value.code is Code.CREDENTIAL_MALFORMED


@pytest.mark.parametrize("value", ["a", "x" * 255, "é" * 127, "\U0001f600" * 63])
def test_str_field_accepts_1_to_255_utf8_bytes(value: str) -> None:
    """A str of 1 to 255 UTF-8 bytes is accepted (SPEC.md §2.1)."""
    assert str_field(value, "iss", Code.MALFORMED) == value


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "iss is 0 bytes"),
        ("x" * 256, "iss is 256 bytes"),
        ("é" * 128, "iss is 256 bytes"),
        (b"iss", "iss is not a str"),
        (1, "iss is not a str"),
        (None, "iss is not a str"),
    ],
)
def test_str_field_refuses(value: object, message: str) -> None:
    """Empty, over-long (counted in UTF-8 bytes) or non-str values are refused."""
    with pytest.raises(Rejected, match=message) as info:
        str_field(value, "iss", Code.CREDENTIAL_MALFORMED)
    assert info.value.code is Code.CREDENTIAL_MALFORMED


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("a", None),
        ("é" * 127, None),
        ("", "is 0 bytes, not 1-255"),
        ("é" * 128, "is 256 bytes, not 1-255"),
        (b"iss", "is not a str"),
    ],
)
def test_name_problem_says_why_without_raising(value: object, problem: str | None) -> None:
    """name_problem returns None for a valid name, else the reason str_field gives."""
    assert name_problem(value) == problem


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (["b", "a"], None),
        ([], None),
        ("a", "is not an array"),
        (["a", "b", "c"], "has 3 items, over 2"),
        (["a", "a"], "has duplicates"),
        (["a", 1], "is not a str"),
    ],
)
def test_names_problem_says_why_without_raising(value: object, problem: str | None) -> None:
    """names_problem returns None for a valid list of names, else the reason."""
    assert names_problem(value, 2) == problem


def test_str_set_field_accepts_distinct_strs() -> None:
    """An array of distinct valid strs, up to the limit, becomes a frozenset."""
    assert str_set_field(["b", "a"], "scopes", Code.MALFORMED, 2) == frozenset({"a", "b"})
    assert str_set_field([], "scopes", Code.MALFORMED, 0) == frozenset()


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (("a",), "scopes is not an array"),
        ("a", "scopes is not an array"),
        (["a", "b", "c"], "scopes has 3 items, over 2"),
        (["a", "a"], "scopes has duplicates"),
        (["a", ""], "scopes is 0 bytes"),
        (["a", 1], "scopes is not a str"),
    ],
)
def test_str_set_field_refuses(value: object, message: str) -> None:
    """Non-arrays, too many items, duplicates and invalid items are refused."""
    with pytest.raises(Rejected, match=message) as info:
        str_set_field(value, "scopes", Code.CREDENTIAL_MALFORMED, 2)
    assert info.value.code is Code.CREDENTIAL_MALFORMED


# -- client frames (SPEC.md §6.1, §6.4 steps 2-4) --------------------------------


@pytest.mark.parametrize("kind", [KIND_CLIENT_MAC, KIND_CLIENT_ED25519])
@pytest.mark.parametrize(
    ("seq", "payload"), [(1, "hi"), (2, ""), (3, b"\x00\xff"), (2**64 - 1, b""), (0, None)]
)
def test_parse_client_frame_accepts(kind: int, seq: int, payload: str | bytes | None) -> None:
    """A well-formed client frame of either kind parses to its typed fields."""
    fields = replaced(replaced(client_fields(kind), 7, seq), 8, payload)
    tag = bytes(TAG_SIZES[kind])
    assert parse_client_frame(encode(fields)) == (
        kind,
        CRED,
        NONCE,
        7,
        1_700_000_000_000,
        STREAM,
        seq,
        payload,
        tag,
    )


def test_parse_client_frame_limits() -> None:
    """ctr may be 2**64-1 and cred may be exactly MAX_CREDENTIAL_SIZE bytes."""
    fields = replaced(replaced(client_fields(), 4, 2**64 - 1), 2, bytes(MAX_CREDENTIAL_SIZE))
    parsed = parse_client_frame(encode(fields))
    assert parsed[3] == 2**64 - 1
    assert len(parsed[1]) == MAX_CREDENTIAL_SIZE


def test_unverified_client_frame() -> None:
    """unverified_client_frame returns a frozen ClientFrame of the parsed fields."""
    frame = unverified_client_frame(encode(client_fields(KIND_CLIENT_ED25519)))
    assert frame == ClientFrame(
        kind=KIND_CLIENT_ED25519,
        credential=CRED,
        nonce=NONCE,
        counter=7,
        timestamp_ms=1_700_000_000_000,
        stream=STREAM,
        seq=5,
        payload="hi",
        tag=bytes(64),
    )
    with pytest.raises(dataclasses.FrozenInstanceError):
        frame.counter = 8  # type: ignore[misc]


def test_parse_client_frame_refuses_non_canonical() -> None:
    """A client frame with trailing bytes is malformed (SPEC.md §6.4 step 2)."""
    exc = _rejected(Code.MALFORMED, encode(client_fields()) + b"\x00")
    assert exc.detail == "not a MessagePack value: ExtraData"


def test_parse_client_frame_refuses_empty_array() -> None:
    """An empty array has no version: malformed."""
    exc = _rejected(Code.MALFORMED, encode([]))
    assert exc.detail == "empty array"


@pytest.mark.parametrize("version", [0, 2, 2**64 - 1, "1", b"\x01", None])
def test_parse_client_frame_refuses_other_versions(version: object) -> None:
    """Any element 0 other than the uint 1 is unsupported_version (step 3)."""
    exc = _rejected(Code.UNSUPPORTED_VERSION, encode(replaced(client_fields(), 0, version)))
    assert exc.detail.startswith("version")


def test_an_array_as_version_is_malformed() -> None:
    """An array in element 0 fails decoding (no array nests in an envelope, SPEC.md
    §2), before the version is looked at."""
    exc = _rejected(Code.MALFORMED, encode(replaced(client_fields(), 0, [1])))
    assert exc.detail == "not a MessagePack value: ValueError"
    exc = _rejected(Code.MALFORMED, encode(replaced(client_fields(), 0, [])))
    assert exc.detail == "element 0 is a list"


def test_version_is_checked_before_structure() -> None:
    """A version-2 frame of another shape is unsupported_version, not malformed."""
    assert _rejected(Code.UNSUPPORTED_VERSION, encode([2])).detail == "version 2"
    exc = _rejected(Code.UNSUPPORTED_VERSION, encode([2, "anything", "else"]))
    assert exc.detail == "version 2"


@pytest.mark.parametrize("size", [1, 8, 9, 11])
def test_parse_client_frame_refuses_wrong_length(size: int) -> None:
    """A client frame has exactly 10 elements."""
    fields = [*client_fields(), None][:size]
    exc = _rejected(Code.MALFORMED, encode(fields))
    assert exc.detail == f"client frame has {size} elements, not 10"


@pytest.mark.parametrize(
    ("index", "value", "detail"),
    [
        (1, 0, "kind 0 is not a client frame kind"),
        (1, 3, "kind 3 is not a client frame kind"),
        (1, KIND_SERVER_MAC, "kind 4 is not a client frame kind"),
        (2, "cred", "cred is not a bin"),
        (2, None, "cred is not a bin"),
        (2, bytes(MAX_CREDENTIAL_SIZE + 1), "cred is 4097 bytes, over 4096"),
        (3, NONCE[:-1], "nonce is 63 bytes, not 64"),
        (3, NONCE + b"\x00", "nonce is 65 bytes, not 64"),
        (3, "n" * 64, "nonce is not a bin"),
        (4, 0, "ctr is 0"),
        (4, -1, "element 4 is a negative int"),
        (4, "7", "ctr is not a uint"),
        (5, -1, "element 5 is a negative int"),
        (5, None, "ts is not a uint"),
        (6, STREAM[:-1], "stream is 15 bytes, not 16"),
        (6, STREAM + b"\x00", "stream is 17 bytes, not 16"),
        (6, "s" * 16, "stream is not a bin"),
        (7, -1, "element 7 is a negative int"),
        (7, "5", "seq is not a uint"),
        (7, 0, "seq must be 0 exactly for a nil payload"),
        (8, None, "seq must be 0 exactly for a nil payload"),
        (8, 1, "payload is not a str, bin or nil"),
        (8, [], "element 8 is a list"),
        (8, ["hi"], "not a MessagePack value: ValueError"),
        (9, bytes(31), "tag is 31 bytes, not 32"),
        (9, bytes(64), "tag is 64 bytes, not 32"),
        (9, "t" * 32, "tag is not a bin"),
    ],
)
def test_parse_client_frame_field_checks(index: int, value: object, detail: str) -> None:
    """Each field of §6.1 is type- and size-checked, each failure malformed (step 4)."""
    exc = _rejected(Code.MALFORMED, encode(replaced(client_fields(), index, value)))
    assert exc.detail == detail


def test_parse_client_frame_tag_size_follows_kind() -> None:
    """An ed25519 frame needs a 64-byte tag: a 32-byte one is malformed."""
    fields = replaced(client_fields(KIND_CLIENT_ED25519), 9, bytes(32))
    exc = _rejected(Code.MALFORMED, encode(fields))
    assert exc.detail == "tag is 32 bytes, not 64"


# -- server frames (SPEC.md §7.1, §7.2 step 1) ------------------------------------


@pytest.mark.parametrize("kind", [KIND_SERVER_MAC, KIND_SERVER_ED25519])
def test_parse_server_frame_accepts(kind: int) -> None:
    """A well-formed server frame of either kind parses to a frozen ServerFrame."""
    frame = parse_server_frame(encode(server_fields(kind)))
    assert frame == ServerFrame(
        kind=kind,
        key_id="cid-1",
        nonce=NONCE,
        counter=3,
        ack=7,
        timestamp_ms=1_700_000_000_000,
        payload=b"\x00\x01",
        tag=bytes(TAG_SIZES[kind]),
    )
    with pytest.raises(dataclasses.FrozenInstanceError):
        frame.ack = 8  # type: ignore[misc]


@pytest.mark.parametrize("payload", ["text", None])
def test_parse_server_frame_payloads(payload: str | None) -> None:
    """A server frame's payload may be a str or nil (a pure acknowledgement); ack may be 0."""
    fields = replaced(replaced(server_fields(), 7, payload), 5, 0)
    frame = parse_server_frame(encode(fields))
    assert frame.payload == payload
    assert frame.ack == 0


def _server_rejected(code: Code, data: bytes) -> Rejected:
    with pytest.raises(Rejected) as info:
        parse_server_frame(data)
    assert info.value.code is code
    return info.value


def test_parse_server_frame_structure() -> None:
    """Non-canonical, empty, other-version and wrong-length server frames are refused."""
    _server_rejected(Code.MALFORMED, encode(server_fields()) + b"\x00")
    assert _server_rejected(Code.MALFORMED, encode([])).detail == "empty array"
    _server_rejected(Code.UNSUPPORTED_VERSION, encode(replaced(server_fields(), 0, 2)))
    exc = _server_rejected(Code.MALFORMED, encode(server_fields()[:8]))
    assert exc.detail == "server frame has 8 elements, not 9"
    _server_rejected(Code.MALFORMED, encode([*server_fields(), None]))


@pytest.mark.parametrize(
    ("index", "value", "detail"),
    [
        (1, KIND_CLIENT_MAC, "kind 1 is not a server frame kind"),
        (1, HELLO, "kind 3 is not a server frame kind"),
        (1, 6, "kind 6 is not a server frame kind"),
        (2, b"cid-1", "key_id is not a str"),
        (2, "", "key_id is 0 bytes, not 1-255"),
        (2, "k" * 256, "key_id is 256 bytes, not 1-255"),
        (3, NONCE[:32], "nonce is 32 bytes, not 64"),
        (3, None, "nonce is not a bin"),
        (4, 0, "ctr is 0"),
        (4, -3, "element 4 is a negative int"),
        (5, -1, "element 5 is a negative int"),
        (5, None, "ack is not a uint"),
        (6, "now", "ts is not a uint"),
        (7, 5, "payload is not a str, bin or nil"),
        (8, bytes(64), "tag is 64 bytes, not 32"),
        (8, None, "tag is not a bin"),
    ],
)
def test_parse_server_frame_field_checks(index: int, value: object, detail: str) -> None:
    """Each field of §7.1 is type- and size-checked, each failure malformed."""
    exc = _server_rejected(Code.MALFORMED, encode(replaced(server_fields(), index, value)))
    assert exc.detail == detail


def test_parse_server_frame_ed25519_tag_size() -> None:
    """A kind-5 server frame needs a 64-byte signature."""
    fields = replaced(server_fields(KIND_SERVER_ED25519), 8, bytes(32))
    exc = _server_rejected(Code.MALFORMED, encode(fields))
    assert exc.detail == "tag is 32 bytes, not 64"


# -- hello (SPEC.md §5.2) -------------------------------------------------------------


def test_hello_round_trip() -> None:
    """encode_hello and decode_hello are inverse, with the §5.2 element order."""
    hello = Hello(NONCE, "api.example", 1_700_000_000_000, 65536, 1024)
    data = encode_hello(hello)
    assert data == encode([1, HELLO, NONCE, "api.example", 1_700_000_000_000, 65536, 1024])
    assert decode_hello(data) == hello


def _hello_rejected(code: Code, data: bytes) -> Rejected:
    with pytest.raises(Rejected) as info:
        decode_hello(data)
    assert info.value.code is code
    return info.value


def test_decode_hello_structure() -> None:
    """Non-canonical, empty, other-version, wrong-length and wrong-kind hellos are refused."""
    _hello_rejected(Code.MALFORMED, encode(hello_fields()) + b"\x00")
    assert _hello_rejected(Code.MALFORMED, encode([])).detail == "empty array"
    _hello_rejected(Code.UNSUPPORTED_VERSION, encode(replaced(hello_fields(), 0, 0)))
    for fields in (
        hello_fields()[:6],
        [*hello_fields(), 0],
        replaced(hello_fields(), 1, KIND_SERVER_MAC),
        replaced(hello_fields(), 1, "3"),
    ):
        assert _hello_rejected(Code.MALFORMED, encode(fields)).detail == "not a hello"
    # A float kind equal to 3 is malformed too.
    assert _hello_rejected(Code.MALFORMED, encode(replaced(hello_fields(), 1, 3.0)))


@pytest.mark.parametrize(
    ("index", "value", "detail"),
    [
        (2, NONCE[:-1], "nonce is 63 bytes, not 64"),
        (2, "nonce", "nonce is not a bin"),
        (3, "", "aud is 0 bytes, not 1-255"),
        (3, b"api.example", "aud is not a str"),
        (4, -1, "element 4 is a negative int"),
        (5, "65536", "max_frame is not a uint"),
        (6, None, "window is not a uint"),
    ],
)
def test_decode_hello_field_checks(index: int, value: object, detail: str) -> None:
    """Each field of the hello is type- and size-checked, each failure malformed."""
    exc = _hello_rejected(Code.MALFORMED, encode(replaced(hello_fields(), index, value)))
    assert exc.detail == detail
