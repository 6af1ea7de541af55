"""Tests for signedws.errors: the rejection codes of SPEC.md §9 and the error tree."""

from __future__ import annotations

import pickle

import pytest

from signedws.errors import Code, KeyFormatError, Rejected, SignedWSError, UsageError

# SPEC.md §9, copied by hand: name -> (number, close code, peer reason).
SPEC_TABLE = {
    "frame_too_large": (100, 4413, "frame too large"),
    "malformed": (101, 4400, "bad frame"),
    "unsupported_version": (102, 4400, "bad frame"),
    "scheme_mismatch": (103, 4400, "bad frame"),
    "nonce_mismatch": (200, 4401, "unauthorized"),
    "nonce_expired": (201, 4410, "connection expired"),
    "nonce_invalid": (202, 4401, "unauthorized"),
    "replay": (203, 4409, "replay"),
    "timestamp_skew": (204, 4425, "timestamp out of range"),
    "credential_malformed": (300, 4400, "bad frame"),
    "unknown_issuer": (301, 4401, "unauthorized"),
    "unknown_key": (302, 4401, "unauthorized"),
    "credential_invalid": (303, 4401, "unauthorized"),
    "weak_key": (304, 4401, "unauthorized"),
    "credential_expired": (305, 4419, "credential not valid now"),
    "credential_not_yet_valid": (306, 4419, "credential not valid now"),
    "credential_revoked": (307, 4403, "forbidden"),
    "audience_mismatch": (308, 4401, "unauthorized"),
    "credential_mismatch": (309, 4401, "unauthorized"),
    "bad_tag": (400, 4401, "unauthorized"),
    "bad_signature": (401, 4401, "unauthorized"),
    "ack_invalid": (500, 4400, "bad frame"),
    "first_frame_timeout": (501, 4408, "timeout"),
    "idle_timeout": (502, 4408, "timeout"),
    "too_many_failures": (503, 4429, "too many failures"),
    "server_busy": (504, 4503, "server busy"),
}


def test_codes_match_spec_table() -> None:
    """Every code's id, number, close code and peer reason are those of SPEC.md §9."""
    actual = {code.id: (code.number, code.close_code, code.peer_reason) for code in Code}
    assert actual == SPEC_TABLE


def test_code_numbers_are_unique() -> None:
    """No two codes share a number (the enum would otherwise alias them)."""
    numbers = [code.number for code in Code]
    assert len(numbers) == len(set(numbers)) == len(SPEC_TABLE)


@pytest.mark.parametrize("code", list(Code))
def test_code_close_code_and_reason(code: Code) -> None:
    """Every code closes with an application close code (4000-4999) and a non-empty reason."""
    assert 4000 <= code.close_code <= 4999
    assert code.peer_reason
    assert code.peer_reason.strip() == code.peer_reason


@pytest.mark.parametrize("code", list(Code))
def test_from_id_round_trips(code: Code) -> None:
    """Code.from_id(code.id) is the code itself."""
    assert Code.from_id(code.id) is code


@pytest.mark.parametrize("code_id", ["no_such_code", "", "BAD TAG", "400"])
def test_from_id_unknown_raises_usage_error(code_id: str) -> None:
    """An unknown identifier is the caller's mistake: UsageError naming it."""
    with pytest.raises(UsageError, match="unknown rejection code"):
        Code.from_id(code_id)


def test_rejected_str_and_repr_with_detail() -> None:
    """A Rejected with a detail shows 'id: detail' and reprs both."""
    exc = Rejected(Code.BAD_TAG, "cid 'c1', ctr 7")
    assert exc.code is Code.BAD_TAG
    assert exc.detail == "cid 'c1', ctr 7"
    assert str(exc) == "bad_tag: cid 'c1', ctr 7"
    assert repr(exc) == "Rejected('bad_tag', \"cid 'c1', ctr 7\")"


def test_rejected_str_and_repr_without_detail() -> None:
    """A Rejected without a detail shows only the code's id."""
    exc = Rejected(Code.REPLAY)
    assert exc.detail == ""
    assert str(exc) == "replay"
    assert repr(exc) == "Rejected('replay', '')"


def test_error_tree() -> None:
    """Peer faults and caller misuse are separate branches under SignedWSError."""
    assert issubclass(Rejected, SignedWSError)
    assert not issubclass(Rejected, ValueError)
    assert issubclass(UsageError, SignedWSError)
    assert issubclass(UsageError, ValueError)
    assert issubclass(KeyFormatError, UsageError)
    assert not issubclass(UsageError, Rejected)


def test_rejected_detail_is_the_string_given() -> None:
    """Rejected(code, detail) reads back its detail as given, never formatted
    (braces in a peer's identifier stay as they are); without one it is empty."""
    exc = Rejected(Code.UNKNOWN_ISSUER, "issuer '{0}{x}'")
    assert exc.detail == "issuer '{0}{x}'"
    assert str(exc) == "unknown_issuer: issuer '{0}{x}'"
    assert repr(exc) == "Rejected('unknown_issuer', \"issuer '{0}{x}'\")"
    assert Rejected(Code.MALFORMED).detail == ""
    assert str(Rejected(Code.MALFORMED)) == "malformed"


def test_rejected_holds_its_arguments_and_pickles() -> None:
    """Construction only stores the arguments (no Python code runs); an
    exception pickles and unpickles to an equal one."""
    exc = Rejected(Code.REPLAY, "counter 3 is not above 5")
    assert exc.args == (Code.REPLAY, "counter 3 is not above 5")
    copy = pickle.loads(pickle.dumps(exc))  # noqa: S301 - our own bytes
    assert (type(copy), copy.code, copy.detail) == (Rejected, Code.REPLAY, exc.detail)
