"""The keyring: trusted issuers, their keys, and the key registry (SPEC.md §3).

Keys are namespaced by issuer: every lookup takes ``(issuer, kid)`` and a
``kid`` alone never finds anything (SPEC.md §3.3, §11.9). Registry entries
(authorized-keys style, SPEC.md §4.4) live apart from issuer keys.

A keyring can change while servers run (rotation). Every change increments
`Keyring.version`; verifiers compare it on each frame and drop their credential
cache when it moved, so a retired key stops working at its credentials' next
frame.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final, cast

from .credential import MAX_AUDIENCES, TokenKeys
from .envelope import MAX_LIST_ITEMS, name_problem, names_problem
from .errors import Code, KeyFormatError, Rejected
from .jsondoc import parse_json
from .keys import Ed25519PublicKey, HMACKey, b64url_decode, b64url_encode, key_from_jwk

__all__ = ["IssuerKey", "Keyring", "RegisteredKey"]

_FOREVER: Final = 2**64


@dataclass(frozen=True, slots=True)
class IssuerKey:
    """One issuer key with its validity window in seconds (``None``: open)."""

    issuer: str
    kid: str
    key: TokenKeys | Ed25519PublicKey
    not_before: int | None = None
    not_after: int | None = None

    @property
    def window_ms(self) -> tuple[int, int]:
        """``[not_before, not_after)`` in milliseconds, open ends filled in."""
        start = 0 if self.not_before is None else self.not_before * 1000
        end = _FOREVER if self.not_after is None else self.not_after * 1000
        return start, end


@dataclass(frozen=True, slots=True)
class RegisteredKey:
    """A key registry entry (SPEC.md §4.4): a client key and its claims."""

    issuer: str
    kid: str
    public_key: Ed25519PublicKey
    subject: str
    scopes: frozenset[str]
    audiences: frozenset[str]
    not_before: int
    expires: int


def _name(value: object, what: str) -> str:
    problem = name_problem(value)
    if problem is not None:
        raise KeyFormatError(f"{what} {problem}")
    return value  # type: ignore[return-value]  # name_problem: a str


def _names(value: object, what: str, max_items: int) -> frozenset[str]:
    problem = names_problem(value, max_items)
    if problem is not None:
        raise KeyFormatError(f"{what} {problem}")
    return frozenset(cast("list[str]", value))  # names_problem: a list of str


def _seconds(value: object, what: str) -> int:
    if type(value) is not int or not 0 <= value < 2**63:
        raise KeyFormatError(f"{what} must be an integer number of seconds")
    return value


def _optional_seconds(value: object, what: str) -> int | None:
    return None if value is None else _seconds(value, what)


class Keyring:
    """Trusted issuer keys and registered client keys.

    Thread-safe for concurrent readers and one writer at a time; writers take
    an internal lock.
    """

    def __init__(self) -> None:
        self._issuer_keys: dict[tuple[str, str], IssuerKey] = {}
        self._issuers: dict[str, int] = {}  # issuer -> number of keys
        self._registry: dict[tuple[str, str], RegisteredKey] = {}
        self._lock = threading.Lock()
        self.version = 0

    # -- changes ------------------------------------------------------------

    def _put(self, entry: IssuerKey) -> None:
        with self._lock:
            ident = (entry.issuer, entry.kid)
            if ident not in self._issuer_keys:
                self._issuers[entry.issuer] = self._issuers.get(entry.issuer, 0) + 1
            self._issuer_keys[ident] = entry
            self.version += 1

    def add_hmac_key(
        self,
        issuer: str,
        kid: str,
        secret: HMACKey,
        *,
        not_before: int | None = None,
        not_after: int | None = None,
    ) -> None:
        """Trust an HMAC issuer secret for `mac` tokens (replacing any key with
        the same ``(issuer, kid)``).

        Raises:
            KeyFormatError: for an invalid name or window.
        """
        if not isinstance(secret, HMACKey):
            raise KeyFormatError("add_hmac_key needs an HMACKey")
        self._put(self._entry(issuer, kid, TokenKeys(secret), not_before, not_after))

    def add_ed25519_key(
        self,
        issuer: str,
        kid: str,
        public_key: Ed25519PublicKey,
        *,
        not_before: int | None = None,
        not_after: int | None = None,
    ) -> None:
        """Trust an Ed25519 issuer public key for certificates.

        Raises:
            KeyFormatError: for an invalid name or window.
        """
        if not isinstance(public_key, Ed25519PublicKey):
            raise KeyFormatError("add_ed25519_key needs an Ed25519PublicKey")
        self._put(self._entry(issuer, kid, public_key, not_before, not_after))

    @staticmethod
    def _entry(
        issuer: str,
        kid: str,
        key: TokenKeys | Ed25519PublicKey,
        not_before: int | None,
        not_after: int | None,
    ) -> IssuerKey:
        entry = IssuerKey(
            _name(issuer, "issuer"),
            _name(kid, "kid"),
            key,
            _optional_seconds(not_before, "not_before"),
            _optional_seconds(not_after, "not_after"),
        )
        if not_before is not None and not_after is not None and not_after <= not_before:
            raise KeyFormatError("not_after must be after not_before")
        return entry

    def add_jwks(
        self,
        issuer: str,
        document: str | Mapping[str, object],
        *,
        not_before: int | None = None,
        not_after: int | None = None,
    ) -> list[str]:
        """Trust every Ed25519 public key of a JWKS document (RFC 7517, RFC 8037).

        The whole document is checked before any key is added: one bad entry
        refuses the document (SPEC.md §3.4).

        Returns:
            The key ids added, in document order.

        Raises:
            KeyFormatError: if the document is not a JWKS of public Ed25519 keys
                with distinct ``kid`` values.
        """
        if isinstance(document, str):
            try:
                document = parse_json(document)
            except ValueError:
                raise KeyFormatError("JWKS is not JSON") from None
        if not isinstance(document, Mapping) or not isinstance(document.get("keys"), list):
            raise KeyFormatError("JWKS must be an object with a 'keys' array")
        entries = []
        keys = document["keys"]
        assert isinstance(keys, list)  # noqa: S101 - checked above
        for jwk in keys:
            kid, key = key_from_jwk(jwk, public_only=True)
            # public_only admits nothing but Ed25519 public keys.
            public_key = cast(Ed25519PublicKey, key)
            entries.append(self._entry(issuer, kid, public_key, not_before, not_after))
        kids = [entry.kid for entry in entries]
        if len(set(kids)) != len(kids):
            raise KeyFormatError("JWKS has duplicate kid values")
        for entry in entries:
            self._put(entry)
        return kids

    def retire(self, issuer: str, kid: str, *, at: int) -> None:
        """Set an issuer key's ``not_after`` to ``at`` (seconds).

        Raises:
            KeyError: if the key is not in the keyring.
            KeyFormatError: if ``at`` is not after the key's ``not_before``.
        """
        entry = self._issuer_keys[(issuer, kid)]
        self._put(self._entry(entry.issuer, entry.kid, entry.key, entry.not_before, at))

    def remove(self, issuer: str, kid: str) -> None:
        """Forget an issuer key.

        Raises:
            KeyError: if the key is not in the keyring.
        """
        with self._lock:
            del self._issuer_keys[(issuer, kid)]
            self._issuers[issuer] -= 1
            if not self._issuers[issuer]:
                del self._issuers[issuer]
            self.version += 1

    def register(
        self,
        issuer: str,
        kid: str,
        public_key: Ed25519PublicKey,
        *,
        subject: str,
        not_before: int,
        expires: int,
        scopes: Iterable[str] = (),
        audiences: Iterable[str] = (),
    ) -> None:
        """Add or replace a key registry entry (SPEC.md §4.4).

        Raises:
            KeyFormatError: for invalid fields.
        """
        if not isinstance(public_key, Ed25519PublicKey):
            raise KeyFormatError("register needs an Ed25519PublicKey")
        start = _seconds(not_before, "not_before")
        end = _seconds(expires, "expires")
        if end <= start:
            raise KeyFormatError("expires must be after not_before")
        entry = RegisteredKey(
            _name(issuer, "issuer"),
            _name(kid, "kid"),
            public_key,
            _name(subject, "subject"),
            _names(list(scopes), "scopes", MAX_LIST_ITEMS),
            _names(list(audiences), "audiences", MAX_AUDIENCES),
            start,
            end,
        )
        with self._lock:
            self._registry[(entry.issuer, entry.kid)] = entry
            self.version += 1

    def unregister(self, issuer: str, kid: str) -> None:
        """Remove a registry entry.

        Raises:
            KeyError: if there is no such entry.
        """
        with self._lock:
            del self._registry[(issuer, kid)]
            self.version += 1

    # -- lookups ------------------------------------------------------------

    def issuer_key(self, issuer: str, kid: str) -> IssuerKey:
        """The key ``kid`` of ``issuer``.

        Raises:
            Rejected: `unknown_issuer` if no key of ``issuer`` is trusted,
                `unknown_key` if ``kid`` is not one of them.
        """
        entry = self._issuer_keys.get((issuer, kid))
        if entry is not None:
            return entry
        if issuer not in self._issuers:
            raise Rejected(Code.UNKNOWN_ISSUER, f"issuer {issuer!r} is not trusted")
        raise Rejected(Code.UNKNOWN_KEY, f"issuer {issuer!r} has no key {kid!r}")

    def registered_key(self, issuer: str, kid: str) -> RegisteredKey:
        """The registry entry ``(issuer, kid)``.

        Raises:
            Rejected: `unknown_key` if there is none.
        """
        entry = self._registry.get((issuer, kid))
        if entry is None:
            raise Rejected(Code.UNKNOWN_KEY, f"no registered key {kid!r} of {issuer!r}")
        return entry

    @property
    def trusts_ed25519(self) -> bool:
        """Whether `ed25519` clients can authenticate: an Ed25519 issuer key or
        a registry entry (SPEC.md §7.1: such a server needs a server key)."""
        return bool(self._registry) or any(
            isinstance(entry.key, Ed25519PublicKey) for entry in self._issuer_keys.values()
        )

    @property
    def issuers(self) -> frozenset[str]:
        """The names of the trusted issuers."""
        return frozenset(self._issuers)

    def __len__(self) -> int:
        return len(self._issuer_keys) + len(self._registry)

    def __repr__(self) -> str:
        return (
            f"Keyring(issuers={sorted(self._issuers)}, keys={len(self._issuer_keys)}, "
            f"registered={len(self._registry)})"
        )

    # -- documents ------------------------------------------------------------

    @classmethod
    def from_dict(cls, document: Mapping[str, object]) -> Keyring:
        """Build a keyring from its JSON form, the keyring document of SPEC.md §3.5::

            {"issuers": {"<iss>": [<JWK + optional "nbf"/"exp">, ...]},
             "registry": {"<iss>": [{"kid", "x", "sub", "scopes", "aud",
                                     "nbf", "exp"}, ...]}}

        Issuer keys are ``oct`` JWKs (HMAC secrets) or public OKP JWKs; ``nbf``
        and ``exp`` are their ``not_before`` and ``not_after`` (integer
        seconds). A registry entry's ``nbf`` and ``exp`` are its ``iat`` and
        ``exp``. The same ``(iss, kid)`` twice among the issuer keys or twice
        in the registry, a registry entry with private material (``d``) or
        with ``kty``/``crv`` other than OKP/Ed25519, refuse the document
        (loading one of two keys silently would trust a key nobody chose; a
        private ``d`` is refused, not stripped).

        Raises:
            KeyFormatError: if the document is invalid in any way.
        """
        keyring = cls()
        if not isinstance(document, Mapping):
            raise KeyFormatError("a keyring document must be an object")
        unknown = set(document) - {"issuers", "registry"}
        if unknown:
            raise KeyFormatError(f"unknown keyring members {sorted(unknown)}")
        seen: set[tuple[str, str]] = set()
        for issuer, jwks in _groups(document.get("issuers", {}), "issuers"):
            for jwk in jwks:
                kid, key = key_from_jwk({k: v for k, v in jwk.items() if k not in ("nbf", "exp")})
                if (issuer, kid) in seen:
                    raise KeyFormatError(f"issuer {issuer!r} has two keys with kid {kid!r}")
                seen.add((issuer, kid))
                window = {
                    "not_before": _optional_seconds(jwk.get("nbf"), "nbf"),
                    "not_after": _optional_seconds(jwk.get("exp"), "exp"),
                }
                if isinstance(key, HMACKey):
                    keyring.add_hmac_key(issuer, kid, key, **window)
                elif isinstance(key, Ed25519PublicKey):
                    keyring.add_ed25519_key(issuer, kid, key, **window)
                else:
                    raise KeyFormatError(
                        f"issuer key {kid!r} is a private key; give its public part"
                    )
        registered: set[tuple[str, str]] = set()
        for issuer, entries in _groups(document.get("registry", {}), "registry"):
            for entry in entries:
                kid = _name(entry.get("kid"), "kid")
                if (issuer, kid) in registered:
                    raise KeyFormatError(
                        f"registry of {issuer!r} has two entries with kid {kid!r}"
                    )
                registered.add((issuer, kid))
                if "d" in entry:
                    raise KeyFormatError(
                        f"registry entry {kid!r} of {issuer!r} carries a private key (d): "
                        "a registry holds public keys only"
                    )
                if entry.get("kty", "OKP") != "OKP" or entry.get("crv", "Ed25519") != "Ed25519":
                    raise KeyFormatError(f"registry entry {kid!r} is not an OKP Ed25519 key")
                keyring.register(
                    issuer,
                    kid,
                    Ed25519PublicKey(b64url_decode(_name(entry.get("x"), "x"))),
                    subject=_name(entry.get("sub"), "sub"),
                    scopes=_list(entry.get("scopes", [])),
                    audiences=_list(entry.get("aud", [])),
                    not_before=_seconds(entry.get("nbf"), "nbf"),
                    expires=_seconds(entry.get("exp"), "exp"),
                )
        return keyring

    def to_dict(self) -> dict[str, object]:
        """The keyring's JSON form (see `from_dict`), for public keys only.

        HMAC issuer keys are held only in derived form, so they cannot be
        exported: keep the secret's own JWK file instead.

        Raises:
            KeyFormatError: if the keyring holds HMAC issuer keys.
        """
        issuers: dict[str, list[dict[str, object]]] = {}
        for entry in self._issuer_keys.values():
            if not isinstance(entry.key, Ed25519PublicKey):
                raise KeyFormatError("HMAC issuer keys cannot be exported from a keyring")
            jwk: dict[str, object] = {
                "kty": "OKP",
                "crv": "Ed25519",
                "kid": entry.kid,
                "x": b64url_encode(entry.key.to_bytes()),
            }
            if entry.not_before is not None:
                jwk["nbf"] = entry.not_before
            if entry.not_after is not None:
                jwk["exp"] = entry.not_after
            issuers.setdefault(entry.issuer, []).append(jwk)
        registry: dict[str, list[dict[str, object]]] = {}
        for reg in self._registry.values():
            registry.setdefault(reg.issuer, []).append(
                {
                    "kid": reg.kid,
                    "x": b64url_encode(reg.public_key.to_bytes()),
                    "sub": reg.subject,
                    "scopes": sorted(reg.scopes),
                    "aud": sorted(reg.audiences),
                    "nbf": reg.not_before,
                    "exp": reg.expires,
                }
            )
        return {"issuers": issuers, "registry": registry}


def _groups(value: object, what: str) -> list[tuple[str, list[Mapping[str, object]]]]:
    if not isinstance(value, Mapping):
        raise KeyFormatError(f"{what} must be an object of issuer name to array")
    groups = []
    for issuer, entries in value.items():
        if not isinstance(entries, list) or not all(isinstance(e, Mapping) for e in entries):
            raise KeyFormatError(f"{what}[{issuer!r}] must be an array of objects")
        groups.append((_name(issuer, "issuer"), entries))
    return groups


def _list(value: object) -> list[str]:
    if not isinstance(value, list):
        raise KeyFormatError("scopes and aud must be arrays")
    return value
