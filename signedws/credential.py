"""Credentials: tokens, certificates and key references (SPEC.md §4).

This module encodes and decodes credentials and mints them (`Issuer`). It does
not decide whether a credential is trusted: that needs a keyring and is done by
`signedws.verifier.Verifier` (SPEC.md §6.4 step 7).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from . import envelope
from .envelope import (
    MAX_CREDENTIAL_SIZE,
    MAX_LIST_ITEMS,
    TYPE_CERTIFICATE,
    TYPE_KEY_REFERENCE,
    TYPE_TOKEN,
    VERSION,
    name_problem,
    names_problem,
    str_field,
    str_set_field,
    uint_field,
)
from .errors import Code, Rejected, UsageError
from .keys import Ed25519PrivateKey, Ed25519PublicKey, HMACKey, RandomSource, b64url_encode

__all__ = [
    "CERTIFICATE_LABEL",
    "FRAME_KEY_INFO",
    "FRAME_KEY_LABEL",
    "MAX_AUDIENCES",
    "TOKEN_KEY_INFO",
    "TOKEN_LABEL",
    "Claims",
    "ClientCredential",
    "Ed25519Credential",
    "Issuer",
    "KeyReference",
    "MACCredential",
    "TokenKeys",
    "encode_key_reference",
    "unverified_credential",
]

TOKEN_KEY_INFO: Final = b"signedws/v1 token-key"
FRAME_KEY_INFO: Final = b"signedws/v1 frame-key"
FRAME_KEY_LABEL: Final = b"signedws/v1 frame-key\x00"
TOKEN_LABEL: Final = b"signedws/v1 token\x00"
CERTIFICATE_LABEL: Final = b"signedws/v1 certificate\x00"
MAX_AUDIENCES: Final = 16

_C = Code.CREDENTIAL_MALFORMED
MAX_TIME: Final = 2**64 - 1


class TokenKeys:
    """The keys an HMAC issuer secret derives (SPEC.md §3.1)."""

    __slots__ = ("frame_key_root", "token_key")

    def __init__(self, secret: HMACKey) -> None:
        self.token_key = secret.derive(TOKEN_KEY_INFO)
        self.frame_key_root = secret.derive(FRAME_KEY_INFO)

    def token_tag(self, body: bytes) -> bytes:
        """The token tag over ``body`` (the token's bytes up to its tag)."""
        return self.token_key.mac(TOKEN_LABEL + body)

    def frame_key(self, token: bytes) -> HMACKey:
        """``frame_key(token)``: the per-token client frame key."""
        return HMACKey(self.frame_key_root.mac(FRAME_KEY_LABEL + token))

    def __repr__(self) -> str:
        return "TokenKeys(<secret>)"


@dataclass(frozen=True, slots=True)
class Claims:
    """The decoded fields of a token or certificate (SPEC.md §4.1).

    ``body`` is the credential's exact bytes up to its tag or signature, and
    ``tag`` the tag (token) or signature (certificate). ``public_key`` is the
    client's key for a certificate and None for a token.
    """

    type: int
    iss: str
    kid: str
    cid: str
    sub: str
    scopes: frozenset[str]
    aud: frozenset[str]
    iat: int
    exp: int
    public_key: bytes | None
    body: bytes
    tag: bytes


@dataclass(frozen=True, slots=True)
class KeyReference:
    """A decoded key reference (SPEC.md §4.4): names a key registry entry."""

    iss: str
    kid: str


#: A token's and a certificate's `scopes` and `aud` (SPEC.md §4.2, §4.3): the
#: only arrays nested in any structure (SPEC.md §2).
_LIST_FIELDS: Final = frozenset((6, 7))


def unverified_credential(data: bytes) -> Claims | KeyReference:
    """Decode a credential without authenticating it.

    Raises:
        Rejected: `credential_malformed` if ``data`` is not a canonical
            credential of a known type with valid fields.
    """
    fields = envelope.decode_array(data, code=_C, arrays_at=_LIST_FIELDS)
    if len(fields) < 2 or fields[0] != VERSION or type(fields[0]) is not int:
        raise Rejected(_C, "not a version 1 credential")
    ctype = fields[1]
    if type(ctype) is not int:
        raise Rejected(_C, "credential type is not a uint")
    if ctype == TYPE_KEY_REFERENCE:
        if len(fields) != 4:
            raise Rejected(_C, f"key reference has {len(fields)} elements, not 4")
        return KeyReference(str_field(fields[2], "iss", _C), str_field(fields[3], "kid", _C))
    if ctype == TYPE_TOKEN:
        size, tag_size = 11, 32
    elif ctype == TYPE_CERTIFICATE:
        size, tag_size = 12, 64
    else:
        raise Rejected(_C, f"unknown credential type {ctype}")
    if len(fields) != size:
        raise Rejected(_C, f"credential type {ctype} has {len(fields)} elements, not {size}")
    iat = uint_field(fields[8], "iat", _C)
    exp = uint_field(fields[9], "exp", _C)
    if exp <= iat:
        raise Rejected(_C, "exp is not after iat")
    public_key = None
    if ctype == TYPE_CERTIFICATE:
        key = fields[10]
        if type(key) is not bytes or len(key) != 32:
            raise Rejected(_C, "key is not a 32-byte bin")
        public_key = key
    tag = fields[-1]
    if type(tag) is not bytes or len(tag) != tag_size:
        raise Rejected(_C, f"tag is not a {tag_size}-byte bin")
    return Claims(
        ctype,
        str_field(fields[2], "iss", _C),
        str_field(fields[3], "kid", _C),
        str_field(fields[4], "cid", _C),
        str_field(fields[5], "sub", _C),
        str_set_field(fields[6], "scopes", _C, MAX_LIST_ITEMS),
        str_set_field(fields[7], "aud", _C, MAX_AUDIENCES),
        iat,
        exp,
        public_key,
        data[: -(tag_size + 2)],
        tag,
    )


def encode_key_reference(iss: str, kid: str) -> bytes:
    """Encode a key reference credential (SPEC.md §4.4)."""
    _check_str(iss, "iss")
    _check_str(kid, "kid")
    return envelope.encode([VERSION, TYPE_KEY_REFERENCE, iss, kid])


def _check_str(value: str, name: str) -> str:
    problem = name_problem(value)
    if problem is not None:
        raise UsageError(f"{name} {problem}")
    return value


def _check_set(values: Iterable[str], name: str, max_items: int) -> list[str]:
    if isinstance(values, str | bytes):
        raise UsageError(f"{name} must be a collection of strings, not a single string")
    items = sorted(set(values))
    problem = names_problem(items, max_items)
    if problem is not None:
        raise UsageError(f"{name} {problem}")
    return items


class MACCredential:
    """What a `mac` client holds: its token and the token's frame key.

    The frame key is a secret; the token is not secret on its own (SPEC.md
    §3.1) but is kept out of ``repr`` all the same.
    """

    __slots__ = ("_claims", "frame_key", "token")

    def __init__(self, token: bytes, frame_key: HMACKey) -> None:
        """Pair a token with its frame key.

        Raises:
            UsageError: if ``token`` is not a well-formed token.
        """
        claims = _client_claims(token)
        if not isinstance(claims, Claims) or claims.type != TYPE_TOKEN:
            raise UsageError("a MACCredential needs a token (credential type 1)")
        self.token = token
        self.frame_key = frame_key
        self._claims = claims

    @property
    def claims(self) -> Claims:
        """The token's fields, as issued (not verified by the client)."""
        return self._claims

    @property
    def cid(self) -> str:
        """The credential id."""
        return self._claims.cid

    def __repr__(self) -> str:
        c = self._claims
        return f"MACCredential(iss={c.iss!r}, cid={c.cid!r}, sub={c.sub!r}, exp={c.exp})"


class Ed25519Credential:
    """What an `ed25519` client holds: a certificate or key reference, and its
    private key."""

    __slots__ = ("_claims", "credential", "private_key")

    def __init__(self, credential: bytes, private_key: Ed25519PrivateKey) -> None:
        """Pair a certificate or key reference with the client's private key.

        Raises:
            UsageError: if ``credential`` is malformed, is a token, or is a
                certificate for another public key.
        """
        claims = _client_claims(credential)
        if isinstance(claims, Claims):
            if claims.type != TYPE_CERTIFICATE:
                raise UsageError("an Ed25519Credential needs a certificate or key reference")
            if claims.public_key != private_key.public_key().to_bytes():
                raise UsageError("the certificate is for another public key")
        self.credential = credential
        self.private_key = private_key
        self._claims = claims

    @property
    def claims(self) -> Claims | KeyReference:
        """The certificate's fields, or the key reference (not verified)."""
        return self._claims

    @property
    def cid(self) -> str:
        """The credential id (a key reference's ``kid``)."""
        c = self._claims
        return c.cid if isinstance(c, Claims) else c.kid

    def __repr__(self) -> str:
        c = self._claims
        if isinstance(c, KeyReference):
            return f"Ed25519Credential(iss={c.iss!r}, kid={c.kid!r})"
        return f"Ed25519Credential(iss={c.iss!r}, cid={c.cid!r}, sub={c.sub!r}, exp={c.exp})"


ClientCredential = MACCredential | Ed25519Credential


def _client_claims(data: bytes) -> Claims | KeyReference:
    try:
        return unverified_credential(data)
    except Rejected as exc:
        raise UsageError(f"malformed credential: {exc.detail}") from None


def _fit(body: bytes, tag_size: int) -> bytes:
    size = len(body) + tag_size
    if size > MAX_CREDENTIAL_SIZE:
        raise UsageError(
            f"credential would be {size} bytes, over the {MAX_CREDENTIAL_SIZE} servers accept"
        )
    return body


class Issuer:
    """Mints credentials under one issuer key (SPEC.md §4.2, §4.3).

    An issuer with an `HMACKey` mints `mac` tokens; one with an
    `Ed25519PrivateKey` mints certificates.
    """

    __slots__ = ("_key", "_token_keys", "kid", "name")

    def __init__(self, name: str, kid: str, key: HMACKey | Ed25519PrivateKey) -> None:
        """Create an issuer called ``name`` whose key has id ``kid``.

        Raises:
            UsageError: if a name is invalid or ``key`` is of another type.
        """
        self.name = _check_str(name, "iss")
        self.kid = _check_str(kid, "kid")
        if not isinstance(key, HMACKey | Ed25519PrivateKey):
            raise UsageError("an issuer key is an HMACKey or an Ed25519PrivateKey")
        self._key = key
        self._token_keys = TokenKeys(key) if isinstance(key, HMACKey) else None

    def _fields(
        self,
        ctype: int,
        *,
        subject: str,
        scopes: Iterable[str],
        audiences: Iterable[str],
        now: float,
        lifetime: int,
        credential_id: str | None,
        random: RandomSource,
    ) -> list[object]:
        if type(lifetime) is not int or lifetime < 1:
            raise UsageError("lifetime must be a whole number of seconds, at least one")
        iat = int(now)
        if iat < 0 or iat + lifetime > MAX_TIME:
            raise UsageError("now and lifetime must give 0 <= iat < exp <= 2**64-1")
        cid = credential_id if credential_id is not None else b64url_encode(random(16))
        return [
            VERSION,
            ctype,
            self.name,
            self.kid,
            _check_str(cid, "cid"),
            _check_str(subject, "sub"),
            _check_set(scopes, "scopes", MAX_LIST_ITEMS),
            _check_set(audiences, "aud", MAX_AUDIENCES),
            iat,
            iat + lifetime,
        ]

    def issue_token(
        self,
        *,
        subject: str,
        now: float,
        lifetime: int = 900,
        scopes: Iterable[str] = (),
        audiences: Iterable[str] = (),
        credential_id: str | None = None,
        random: RandomSource = secrets.token_bytes,
    ) -> MACCredential:
        """Mint a `mac` token and derive its frame key.

        Args:
            subject: the principal.
            now: the issuer's clock, seconds since the epoch (``iat``).
            lifetime: seconds until ``exp``.
            scopes: permissions.
            audiences: where the token may be used; empty for anywhere that
                trusts this issuer.
            credential_id: the ``cid``; random if omitted.
            random: the randomness source for the ``cid``.

        Returns:
            The token with its frame key. Send both to the client over a
            confidential channel; the frame key is a secret.

        Raises:
            UsageError: if this issuer holds an Ed25519 key, or a field is
                invalid.
        """
        if self._token_keys is None:
            raise UsageError("an Ed25519 issuer mints certificates, not tokens")
        fields = self._fields(
            TYPE_TOKEN,
            subject=subject,
            scopes=scopes,
            audiences=audiences,
            now=now,
            lifetime=lifetime,
            credential_id=credential_id,
            random=random,
        )
        body = _fit(envelope.seal([*fields, bytes(32)], 32), 34)
        token = body + b"\xc4\x20" + self._token_keys.token_tag(body)
        return MACCredential(token, self._token_keys.frame_key(token))

    def issue_certificate(
        self,
        public_key: Ed25519PublicKey,
        *,
        subject: str,
        now: float,
        lifetime: int = 3600,
        scopes: Iterable[str] = (),
        audiences: Iterable[str] = (),
        credential_id: str | None = None,
        random: RandomSource = secrets.token_bytes,
    ) -> bytes:
        """Mint a certificate binding ``public_key`` (SPEC.md §4.3).

        Arguments are as for `issue_token`. The returned certificate is not a
        secret; pair it with the client's private key in an
        `Ed25519Credential`.

        Raises:
            UsageError: if this issuer holds an HMAC key, or a field is invalid.
        """
        if not isinstance(self._key, Ed25519PrivateKey):
            raise UsageError("an HMAC issuer mints tokens, not certificates")
        fields = self._fields(
            TYPE_CERTIFICATE,
            subject=subject,
            scopes=scopes,
            audiences=audiences,
            now=now,
            lifetime=lifetime,
            credential_id=credential_id,
            random=random,
        )
        body = _fit(envelope.seal([*fields, public_key.to_bytes(), bytes(64)], 64), 66)
        return body + b"\xc4\x40" + self._key.sign(CERTIFICATE_LABEL + body)

    def __repr__(self) -> str:
        kind = "hmac" if self._token_keys is not None else "ed25519"
        return f"Issuer({self.name!r}, kid={self.kid!r}, {kind})"
