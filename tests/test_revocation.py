"""Tests for signedws.revocation: revoked credentials and subjects (SPEC.md §4.6)."""

from __future__ import annotations

import json

import pytest

from signedws.errors import KeyFormatError
from signedws.revocation import EMPTY, RevocationSet

ISS_A = "https://a.example"
ISS_B = "https://b.example"


def test_empty_set_revokes_nothing() -> None:
    """The empty set revokes no credential and has length 0."""
    assert not EMPTY.is_revoked(ISS_A, "c1", "alice", 0)
    assert len(EMPTY) == 0
    assert RevocationSet() == EMPTY


def test_revoked_by_cid() -> None:
    """A listed (iss, cid) is revoked whatever its subject or iat."""
    revoked = RevocationSet([(ISS_A, "c1")])
    assert revoked.is_revoked(ISS_A, "c1", "alice", 0)
    assert revoked.is_revoked(ISS_A, "c1", "bob", 2**63)
    assert not revoked.is_revoked(ISS_A, "c2", "alice", 0)


def test_revoked_by_subject_before_time() -> None:
    """A subject revoked before t revokes credentials with iat < t, not iat >= t."""
    revoked = RevocationSet(subjects={(ISS_A, "alice"): 1000})
    assert revoked.is_revoked(ISS_A, "c1", "alice", 0)
    assert revoked.is_revoked(ISS_A, "c1", "alice", 999)
    assert not revoked.is_revoked(ISS_A, "c1", "alice", 1000)
    assert not revoked.is_revoked(ISS_A, "c1", "alice", 1001)
    assert not revoked.is_revoked(ISS_A, "c1", "bob", 0)


def test_revocation_is_namespaced_by_issuer() -> None:
    """Revoking a cid or a subject under one issuer leaves the same names of another alone."""
    revoked = RevocationSet([(ISS_A, "c1")], {(ISS_A, "alice"): 1000})
    assert not revoked.is_revoked(ISS_B, "c1", "bob", 0)
    assert not revoked.is_revoked(ISS_B, "c2", "alice", 0)
    assert revoked.is_revoked(ISS_A, "c2", "alice", 0)


def test_revoke_returns_new_sets() -> None:
    """revoke_credential and revoke_subject return new sets and leave the original unchanged."""
    original = RevocationSet()
    by_cid = original.revoke_credential(ISS_A, "c1")
    by_subject = by_cid.revoke_subject(ISS_A, "alice", before=1000)
    assert by_cid is not original
    assert by_subject is not by_cid
    assert len(original) == 0
    assert not original.is_revoked(ISS_A, "c1", "x", 0)
    assert len(by_cid) == 1
    assert not by_cid.is_revoked(ISS_A, "c2", "alice", 0)
    assert by_subject.is_revoked(ISS_A, "c1", "x", 0)
    assert by_subject.is_revoked(ISS_A, "c2", "alice", 999)
    assert len(by_subject) == 2


def test_revoke_subject_keeps_the_later_time() -> None:
    """Revoking a subject again keeps the later of the two times."""
    revoked = RevocationSet().revoke_subject(ISS_A, "alice", before=1000)
    assert revoked.revoke_subject(ISS_A, "alice", before=2000).subjects == {(ISS_A, "alice"): 2000}
    assert revoked.revoke_subject(ISS_A, "alice", before=500).subjects == {(ISS_A, "alice"): 1000}


def test_contents_are_immutable() -> None:
    """The sets' contents cannot be changed in place, and inputs are copied."""
    subjects = {(ISS_A, "alice"): 1000}
    credentials = [(ISS_A, "c1")]
    revoked = RevocationSet(credentials, subjects)
    subjects[(ISS_A, "bob")] = 5
    credentials.append((ISS_A, "c2"))
    assert len(revoked) == 2
    assert isinstance(revoked.credentials, frozenset)
    with pytest.raises(TypeError):
        revoked.subjects[(ISS_A, "bob")] = 1  # type: ignore[index]


def test_equality_and_hash() -> None:
    """Sets are equal iff their contents are; they are unhashable; other types don't compare."""
    one = RevocationSet([(ISS_A, "c1")], {(ISS_A, "alice"): 1})
    assert one == RevocationSet([(ISS_A, "c1")], {(ISS_A, "alice"): 1})
    assert one != RevocationSet([(ISS_A, "c1")], {(ISS_A, "alice"): 2})
    assert one != RevocationSet([(ISS_B, "c1")], {(ISS_A, "alice"): 1})
    assert one.__eq__({(ISS_A, "c1")}) is NotImplemented
    assert one != "RevocationSet"
    with pytest.raises(TypeError):
        hash(one)


def test_len_and_repr() -> None:
    """len counts credentials plus subjects; repr gives counts only."""
    revoked = RevocationSet([(ISS_A, "c1"), (ISS_B, "c1")], {(ISS_A, "alice"): 1})
    assert len(revoked) == 3
    assert repr(revoked) == "RevocationSet(credentials=2, subjects=1)"


DOCUMENT = {
    "credentials": [{"iss": ISS_A, "cid": "c1"}, {"iss": ISS_B, "cid": "c0"}],
    "subjects": [
        {"iss": ISS_A, "sub": "alice", "before": 1000},
        {"iss": ISS_A, "sub": "bob", "before": 0},
    ],
}


def test_from_dict_to_dict_round_trip() -> None:
    """A document loads to the set it describes and writes back sorted, through JSON too."""
    revoked = RevocationSet.from_dict(DOCUMENT)
    assert revoked == RevocationSet(
        [(ISS_A, "c1"), (ISS_B, "c0")], {(ISS_A, "alice"): 1000, (ISS_A, "bob"): 0}
    )
    assert revoked.to_dict() == DOCUMENT
    assert RevocationSet.from_dict(json.loads(json.dumps(revoked.to_dict()))) == revoked


def test_to_dict_sorts() -> None:
    """to_dict output is sorted whatever the insertion order."""
    revoked = RevocationSet([(ISS_B, "z"), (ISS_A, "b"), (ISS_A, "a")], {(ISS_B, "s"): 1})
    revoked = revoked.revoke_subject(ISS_A, "t", before=2)
    assert revoked.to_dict() == {
        "credentials": [
            {"iss": ISS_A, "cid": "a"},
            {"iss": ISS_A, "cid": "b"},
            {"iss": ISS_B, "cid": "z"},
        ],
        "subjects": [
            {"iss": ISS_A, "sub": "t", "before": 2},
            {"iss": ISS_B, "sub": "s", "before": 1},
        ],
    }


def test_from_dict_empty_and_partial() -> None:
    """Both members are optional."""
    assert RevocationSet.from_dict({}) == EMPTY
    only_subjects = {"subjects": [{"iss": ISS_A, "sub": "a", "before": 3}]}
    assert len(RevocationSet.from_dict(only_subjects)) == 1


def test_from_dict_duplicate_subjects_keep_the_later_time() -> None:
    """A subject listed twice is revoked before the later time."""
    revoked = RevocationSet.from_dict(
        {
            "subjects": [
                {"iss": ISS_A, "sub": "a", "before": 5},
                {"iss": ISS_A, "sub": "a", "before": 9},
                {"iss": ISS_A, "sub": "a", "before": 7},
            ]
        }
    )
    assert dict(revoked.subjects) == {(ISS_A, "a"): 9}


@pytest.mark.parametrize(
    ("document", "message"),
    [
        pytest.param([], "only 'credentials' and 'subjects'", id="list"),
        pytest.param({"credentials": [], "keys": []}, "only 'credentials'", id="unknown-member"),
        pytest.param({"credentials": {}}, "must be arrays", id="credentials-object"),
        pytest.param({"subjects": "a"}, "must be arrays", id="subjects-text"),
        pytest.param({"credentials": ["c1"]}, "iss and cid", id="credential-text"),
        pytest.param({"credentials": [{"iss": ISS_A}]}, "cid is not a str", id="no-cid"),
        pytest.param({"credentials": [{"iss": "", "cid": "c"}]}, "iss is 0 bytes", id="iss"),
        pytest.param({"subjects": [[ISS_A, "a", 1]]}, "iss, sub and before", id="subject-list"),
        pytest.param({"subjects": [{"iss": ISS_A, "sub": "a"}]}, "'before'", id="no-before"),
        pytest.param(
            {"subjects": [{"iss": ISS_A, "sub": "a", "before": -1}]}, "'before'", id="negative"
        ),
        pytest.param(
            {"subjects": [{"iss": ISS_A, "sub": "a", "before": 1.5}]}, "'before'", id="float"
        ),
        pytest.param(
            {"subjects": [{"iss": ISS_A, "sub": "a", "before": True}]}, "'before'", id="bool"
        ),
        pytest.param(
            {"subjects": [{"iss": ISS_A, "sub": "", "before": 1}]}, "sub is 0 bytes", id="sub"
        ),
        pytest.param(
            {"subjects": [{"iss": 1, "sub": "a", "before": 1}]}, "iss is not a str", id="iss-int"
        ),
    ],
)
def test_from_dict_refuses(document: object, message: str) -> None:
    """Invalid revocation documents raise KeyFormatError saying what is wrong."""
    with pytest.raises(KeyFormatError, match=message):
        RevocationSet.from_dict(document)  # type: ignore[arg-type]
