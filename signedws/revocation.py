"""Revocation: credentials and subjects that must be refused (SPEC.md §4.6).

A `RevocationSet` is immutable. A server holds one and replaces it as a whole
(a single attribute assignment, atomic for concurrent verifiers) when the set
changes; verifiers consult it on every frame, so a revocation takes effect at
the credential's next frame on every open connection.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Final

from .envelope import name_problem
from .errors import KeyFormatError

__all__ = ["EMPTY", "RevocationSet"]


def _name(value: object, what: str) -> str:
    problem = name_problem(value)
    if problem is not None:
        raise KeyFormatError(f"{what} {problem}")
    return value  # type: ignore[return-value]  # name_problem: a str


class RevocationSet:
    """Revoked credential ids and subjects, each namespaced by issuer.

    - ``(iss, cid)`` in `credentials`: that credential is revoked.
    - ``(iss, sub) -> t`` in `subjects`: every credential of that subject issued
      before ``t`` (``iat < t``, seconds) is revoked.
    """

    __slots__ = ("credentials", "subjects")

    def __init__(
        self,
        credentials: Iterable[tuple[str, str]] = (),
        subjects: Mapping[tuple[str, str], int] | None = None,
    ) -> None:
        self.credentials: frozenset[tuple[str, str]] = frozenset(credentials)
        self.subjects: Mapping[tuple[str, str], int] = MappingProxyType(dict(subjects or {}))

    def is_revoked(self, iss: str, cid: str, sub: str, iat: int) -> bool:
        """Whether a credential with these fields is revoked."""
        if (iss, cid) in self.credentials:
            return True
        before = self.subjects.get((iss, sub))
        return before is not None and iat < before

    def revoke_credential(self, iss: str, cid: str) -> RevocationSet:
        """A new set that also revokes ``(iss, cid)``."""
        return RevocationSet(self.credentials | {(iss, cid)}, self.subjects)

    def revoke_subject(self, iss: str, sub: str, *, before: int) -> RevocationSet:
        """A new set that also revokes ``sub``'s credentials issued before
        ``before`` (seconds). A later time replaces an earlier one."""
        subjects = dict(self.subjects)
        subjects[(iss, sub)] = max(before, subjects.get((iss, sub), before))
        return RevocationSet(self.credentials, subjects)

    def __len__(self) -> int:
        return len(self.credentials) + len(self.subjects)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, RevocationSet):
            return NotImplemented
        return self.credentials == other.credentials and dict(self.subjects) == dict(
            other.subjects
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"RevocationSet(credentials={len(self.credentials)}, subjects={len(self.subjects)})"

    @classmethod
    def from_dict(cls, document: Mapping[str, object]) -> RevocationSet:
        """Load the JSON form::

            {"credentials": [{"iss": ..., "cid": ...}, ...],
             "subjects": [{"iss": ..., "sub": ..., "before": <seconds>}, ...]}

        Raises:
            KeyFormatError: if the document is invalid.
        """
        if not isinstance(document, Mapping) or set(document) - {"credentials", "subjects"}:
            raise KeyFormatError("a revocation document has only 'credentials' and 'subjects'")
        creds = document.get("credentials", [])
        subs = document.get("subjects", [])
        if not isinstance(creds, list) or not isinstance(subs, list):
            raise KeyFormatError("'credentials' and 'subjects' must be arrays")
        credentials = []
        for item in creds:
            if not isinstance(item, Mapping):
                raise KeyFormatError("a revoked credential is an object with iss and cid")
            credentials.append((_name(item.get("iss"), "iss"), _name(item.get("cid"), "cid")))
        subjects: dict[tuple[str, str], int] = {}
        for item in subs:
            if not isinstance(item, Mapping):
                raise KeyFormatError("a revoked subject is an object with iss, sub and before")
            before = item.get("before")
            if type(before) is not int or before < 0:
                raise KeyFormatError("'before' must be a non-negative integer of seconds")
            key = (_name(item.get("iss"), "iss"), _name(item.get("sub"), "sub"))
            subjects[key] = max(before, subjects.get(key, before))
        return cls(credentials, subjects)

    def to_dict(self) -> dict[str, list[dict[str, object]]]:
        """The JSON form (see `from_dict`), sorted for stable output."""
        return {
            "credentials": [{"iss": i, "cid": c} for i, c in sorted(self.credentials)],
            "subjects": [
                {"iss": i, "sub": s, "before": t} for (i, s), t in sorted(self.subjects.items())
            ],
        }


EMPTY: Final = RevocationSet()
