"""Issuance: the I/O-free core of an issuer service (SPEC.md §13).

An issuer service turns a caller the application has authenticated (a
`Principal`) into a signedws credential. This module decides everything that
can be decided without I/O or a clock of its own (``now`` is always a
parameter):

- `IssuancePolicy`: which scopes a principal gets (the ones it asked for,
  narrowed to what it holds and what the issuer grants at all) and for how long
  (bounded by configuration and by the login's own expiry).
- `ChallengeKey`: proof-of-possession challenges for `ed25519` clients, minted
  and checked statelessly like connection nonces (SPEC.md §5.3): an HMAC under
  a key derived from the fleet key, so any node of the fleet checks what any
  other minted. A challenge names the key it was minted under, the public key
  it is for and its expiry; its tag also covers the issuer name and the
  caller's subject. `SpentChallenges` refuses a replay on the node that saw
  the first use (bounded memory); across nodes a replay within the short
  lifetime yields nothing the same caller could not get with a fresh
  challenge, and the certificate's ``cid`` is derived from the challenge, so
  a replayed proof mints the same ``cid`` (revoked together).
- `IssuerService`: mints with `signedws.credential.Issuer` (the one minting
  path) and builds the response documents.
- `jwks`: the JWKS document of the server and issuer Ed25519 public keys.
- `RateLimiter`: a token bucket per principal, bounded in memory.

Nothing here imports asyncio or Starlette (`signedws.asyncio.issuer` does).
Errors are `IssuanceError` with a stable ``code`` and an HTTP status; their
messages never contain a token, key or challenge.
"""

from __future__ import annotations

import hmac
import math
import secrets
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from .credential import Claims, Ed25519Credential, Issuer, MACCredential, unverified_credential
from .envelope import length_prefixed, name_problem, str_field
from .errors import Code, KeyFormatError, Rejected, SignedWSError, UsageError
from .keys import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
    HMACKey,
    RandomSource,
    b64url_decode,
    b64url_encode,
    key_from_jwk,
)
from .logformat import When
from .server import ServerKey

__all__ = [
    "CHALLENGE_KEY_INFO",
    "CHALLENGE_LABEL",
    "DEFAULT_CHALLENGE_TTL",
    "POP_LABEL",
    "ChallengeInfo",
    "ChallengeKey",
    "IssuanceError",
    "IssuancePolicy",
    "IssuerService",
    "JWKSEntry",
    "Principal",
    "RateLimiter",
    "SpentChallenges",
    "credential_from_response",
    "jwks",
    "keys_from_jwks",
    "pop_input",
    "verify_proof",
]

CHALLENGE_KEY_INFO: Final = b"signedws/v1 challenge-key"
CHALLENGE_LABEL: Final = b"signedws/v1 challenge\x00"
POP_LABEL: Final = b"signedws/v1 proof-of-possession\x00"
CHALLENGE_VERSION: Final = 1
DEFAULT_CHALLENGE_TTL: Final = 60
MAX_CHALLENGE_TTL: Final = 600
_RANDOM_SIZE: Final = 16
_NODE_ID_SIZE: Final = 8
# version, expires, node id, random, public key, kid length; then kid, tag.
_FIXED_HEAD: Final = 1 + 8 + _NODE_ID_SIZE + _RANDOM_SIZE + 32 + 1
MAX_CHALLENGE_SIZE: Final = _FIXED_HEAD + 255 + 32


class IssuanceError(SignedWSError):
    """A request the issuer refuses.

    Attributes:
        code: stable machine-readable code (SPEC.md §13.6), e.g.
            ``challenge_expired``.
        status: the HTTP status the service answers with.
        retry_after: seconds to wait (``rate_limited``), else None.
        detail: a human-readable explanation; never holds a secret.
    """

    def __init__(
        self, code: str, status: int, detail: str, *, retry_after: int | None = None
    ) -> None:
        self.code = code
        self.retry_after = retry_after
        self.status = status
        self.detail = detail
        super().__init__(f"{code}: {detail}")

    def to_dict(self) -> dict[str, str]:
        """The JSON error body: ``{"error": code, "detail": ...}``."""
        return {"error": self.code, "detail": self.detail}


def _bad_request(detail: str) -> IssuanceError:
    return IssuanceError("invalid_request", 400, detail)


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller, as the application's login establishes it.

    Attributes:
        subject: becomes the credential's ``sub``.
        scopes: the scopes this caller may be granted (before narrowing by
            the policy and the request).
        expires: when the login itself expires (seconds since the epoch), e.g.
            an access token's ``exp``; credentials never outlive it. None: the
            login has no expiry of its own.
    """

    subject: str
    scopes: frozenset[str] = frozenset()
    expires: int | None = None

    def __post_init__(self) -> None:
        problem = name_problem(self.subject)
        if problem is not None:
            raise UsageError(f"subject {problem}")
        if isinstance(self.scopes, str) or not all(isinstance(s, str) for s in self.scopes):
            raise UsageError("Principal.scopes must be a set of strings")
        object.__setattr__(self, "scopes", frozenset(self.scopes))


@dataclass(frozen=True, slots=True)
class IssuancePolicy:
    """What an issuer grants.

    Attributes:
        audiences: the ``aud`` of every credential minted (the servers'
            audiences); at least one.
        grantable: the scopes this issuer grants at all (None: any scope the
            principal holds). A login's other scopes (``openid`` ...) are not
            signedws scopes: list the ones that are.
        mac_lifetime: the longest `mac` token lifetime, seconds.
        ed25519_lifetime: the longest certificate lifetime, seconds.
        min_lifetime: a credential that could live less than this (because
            the login expires sooner) is refused with ``login_expiring``.
    """

    audiences: tuple[str, ...]
    grantable: frozenset[str] | None = None
    mac_lifetime: int = 900
    ed25519_lifetime: int = 3600
    min_lifetime: int = 10

    def __post_init__(self) -> None:
        if isinstance(self.audiences, str) or not self.audiences:
            raise UsageError("IssuancePolicy.audiences must list at least one audience")
        for audience in self.audiences:
            problem = name_problem(audience)
            if problem is not None:
                raise UsageError(f"audience {problem}")
        object.__setattr__(self, "audiences", tuple(self.audiences))
        if self.grantable is not None:
            if isinstance(self.grantable, str) or not all(
                isinstance(s, str) for s in self.grantable
            ):
                raise UsageError("IssuancePolicy.grantable must be a set of strings")
            object.__setattr__(self, "grantable", frozenset(self.grantable))
        for name in ("mac_lifetime", "ed25519_lifetime", "min_lifetime"):
            value = getattr(self, name)
            if type(value) is not int or value < 1:
                raise UsageError(f"IssuancePolicy.{name} must be a positive whole number")
        if self.min_lifetime > min(self.mac_lifetime, self.ed25519_lifetime):
            raise UsageError("IssuancePolicy.min_lifetime exceeds a maximum lifetime")

    def scopes(self, principal: Principal, requested: Iterable[str] | None) -> frozenset[str]:
        """The scopes to grant: ``requested`` (None: all) narrowed to what
        ``principal`` holds and this policy grants. Never more than asked."""
        held = principal.scopes
        if self.grantable is not None:
            held = held & self.grantable
        if requested is None:
            return held
        return held & frozenset(requested)

    def lifetime(
        self, principal: Principal, *, scheme: str, now: float, requested: int | None
    ) -> int:
        """Seconds the credential lives: the configured maximum for
        ``scheme``, shortened by ``requested`` and by the login's expiry.

        Raises:
            IssuanceError: ``invalid_request`` if ``requested`` is under
                ``min_lifetime``; ``login_expiring`` if the login expires
                within it.
        """
        lifetime = self.mac_lifetime if scheme == "mac" else self.ed25519_lifetime
        if requested is not None:
            if requested < self.min_lifetime:
                raise _bad_request(f"'lifetime' is below this issuer's {self.min_lifetime} s")
            lifetime = min(lifetime, requested)
        if principal.expires is not None:
            left = principal.expires - math.floor(now)
            lifetime = min(lifetime, left)
        if lifetime < self.min_lifetime:
            raise IssuanceError(
                "login_expiring",
                401,
                f"the login expires in under {self.min_lifetime} s: log in again",
            )
        return lifetime


# -- proof of possession ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ChallengeInfo:
    """What a checked challenge says."""

    key_id: str
    node_id: bytes
    expires: int
    random: bytes
    public_key: bytes


def _parse_challenge(challenge: bytes) -> tuple[ChallengeInfo, bytes, bytes]:
    """``(info, head, tag)`` of a well-formed challenge (SPEC.md §13.3)."""
    bad = IssuanceError("challenge_invalid", 400, "not a signedws challenge")
    if not isinstance(challenge, bytes) or len(challenge) < _FIXED_HEAD + 1 + 32:
        raise bad
    if challenge[0] != CHALLENGE_VERSION:
        raise bad
    kid_size = challenge[_FIXED_HEAD - 1]
    if kid_size == 0 or len(challenge) != _FIXED_HEAD + kid_size + 32:
        raise bad
    try:
        key_id = challenge[_FIXED_HEAD : _FIXED_HEAD + kid_size].decode()
        str_field(key_id, "kid", Code.MALFORMED)
    except (UnicodeDecodeError, Rejected):
        raise bad from None
    info = ChallengeInfo(
        key_id=key_id,
        expires=int.from_bytes(challenge[1:9], "big"),
        node_id=challenge[9:17],
        random=challenge[17:33],
        public_key=challenge[33:65],
    )
    return info, challenge[:-32], challenge[-32:]


class ChallengeKey:
    """Mints and checks proof-of-possession challenges (SPEC.md §13.3).

    The key is derived from the fleet key (``HKDF(fleet_key,
    "signedws/v1 challenge-key")``), so every node holding the fleet key checks
    the challenges of every other, and a challenge is never a connection nonce
    (another key, another label). ``key_id`` names the fleet key (its JWK
    ``kid``): a node asked to check a challenge minted under a key id it does
    not hold says so.
    """

    __slots__ = ("_keys", "current")

    def __init__(self, fleet_key: HMACKey, key_id: str, *, previous: Mapping[str, HMACKey] = {}):
        """Mint under ``fleet_key`` (``key_id``); also check challenges minted
        under ``previous`` fleet keys (rotation).

        Raises:
            UsageError: if a key id is not a valid name of at most 255 bytes.
        """
        self._keys: dict[str, HMACKey] = {}
        for kid, key in {**previous, key_id: fleet_key}.items():
            problem = name_problem(kid)
            if problem is not None:
                raise UsageError(f"kid {problem}")
            if not isinstance(key, HMACKey):
                raise UsageError("a challenge key is derived from an HMACKey (the fleet key)")
            self._keys[kid] = key.derive(CHALLENGE_KEY_INFO)
        self.current = key_id

    @staticmethod
    def _tag_input(issuer: str, subject: str, head: bytes) -> bytes:
        return (
            CHALLENGE_LABEL
            + length_prefixed(issuer.encode())
            + length_prefixed(subject.encode())
            + head
        )

    def mint(
        self,
        public_key: Ed25519PublicKey,
        *,
        issuer: str,
        subject: str,
        node_id: bytes,
        now: float,
        ttl: int = DEFAULT_CHALLENGE_TTL,
        random: RandomSource = secrets.token_bytes,
    ) -> bytes:
        """A challenge for ``subject`` to prove it holds ``public_key``'s
        private key, valid ``ttl`` seconds from ``now``.

        Raises:
            UsageError: for a bad ``node_id``, ``ttl`` or random source.
        """
        if not isinstance(node_id, bytes) or len(node_id) != _NODE_ID_SIZE:
            raise UsageError(f"node_id must be {_NODE_ID_SIZE} bytes")
        if type(ttl) is not int or not 1 <= ttl <= MAX_CHALLENGE_TTL:
            raise UsageError(f"challenge ttl must be 1 to {MAX_CHALLENGE_TTL} seconds")
        drawn = random(_RANDOM_SIZE)
        if not isinstance(drawn, bytes) or len(drawn) != _RANDOM_SIZE:
            raise UsageError(f"the random source must return {_RANDOM_SIZE} bytes")
        kid = self.current.encode()
        head = (
            bytes([CHALLENGE_VERSION])
            + (math.floor(now) + ttl).to_bytes(8, "big")
            + node_id
            + drawn
            + public_key.to_bytes()
            + bytes([len(kid)])
            + kid
        )
        return head + self._keys[self.current].mac(self._tag_input(issuer, subject, head))

    def check(
        self,
        challenge: bytes,
        public_key: Ed25519PublicKey,
        *,
        issuer: str,
        subject: str,
        now: float,
    ) -> ChallengeInfo:
        """Check that ``challenge`` was minted by this fleet for ``subject``
        and ``public_key`` and has not expired (the signature is checked by
        `verify_proof`).

        Raises:
            IssuanceError: ``challenge_invalid`` (not a challenge, minted
                under a key this node does not hold, or for another caller),
                ``challenge_key_mismatch`` (for another public key),
                ``challenge_expired``.
        """
        info, head, tag = _parse_challenge(challenge)
        key = self._keys.get(info.key_id)
        if key is None:
            raise IssuanceError(
                "challenge_invalid",
                400,
                f"challenge minted under key {info.key_id!r}, which this issuer does not hold",
            )
        if not hmac.compare_digest(tag, key.mac(self._tag_input(issuer, subject, head))):
            raise IssuanceError(
                "challenge_invalid", 400, "challenge not minted by this issuer for this caller"
            )
        if info.public_key != public_key.to_bytes():
            raise IssuanceError(
                "challenge_key_mismatch", 400, "challenge was minted for another public key"
            )
        if math.floor(now) >= info.expires:
            raise IssuanceError(
                "challenge_expired", 400, f"challenge expired at {When(info.expires)}"
            )
        return info

    def __repr__(self) -> str:
        return f"ChallengeKey(current={self.current!r}, keys={len(self._keys)})"


def pop_input(issuer: str, challenge: bytes) -> bytes:
    """The bytes a client signs to prove possession (SPEC.md §13.3)."""
    return POP_LABEL + length_prefixed(issuer.encode()) + challenge


def verify_proof(
    challenge_key: ChallengeKey,
    challenge: bytes,
    public_key: Ed25519PublicKey,
    signature: bytes,
    *,
    issuer: str,
    subject: str,
    now: float,
) -> ChallengeInfo:
    """SPEC.md §13.3 checking steps 1 to 5 (step 6, replay, is
    `SpentChallenges.spend`).

    Raises:
        IssuanceError: the first failing step's code.
    """
    info = challenge_key.check(challenge, public_key, issuer=issuer, subject=subject, now=now)
    try:
        public_key.verify(signature, pop_input(issuer, challenge))
    except Rejected:
        raise IssuanceError(
            "proof_invalid", 400, "the signature over the challenge does not verify"
        ) from None
    return info


class SpentChallenges:
    """The challenges this node has accepted, until they expire: a replay of
    a proof on the same node is refused. Bounded: when ``capacity`` unexpired
    challenges are held, further proofs are refused (``issuer_busy``) rather
    than forgetting one early. Size it as the issuer's challenge rate limit
    times the challenge lifetime."""

    __slots__ = ("_capacity", "_spent")

    def __init__(self, capacity: int = 100_000) -> None:
        if type(capacity) is not int or capacity < 1:
            raise UsageError("capacity must be a positive whole number")
        self._capacity = capacity
        self._spent: OrderedDict[bytes, int] = OrderedDict()  # random -> expires, by expiry

    def __len__(self) -> int:
        return len(self._spent)

    def spend(self, info: ChallengeInfo, *, now: float) -> None:
        """Record ``info`` as used.

        Raises:
            IssuanceError: ``challenge_replayed`` if it was used before,
                ``issuer_busy`` if the cache is full of unexpired challenges.
        """
        floor = math.floor(now)
        # Expired entries go first (insertion order is near expiry order: all
        # challenges of one node have the same lifetime).
        while self._spent:
            oldest, expires = next(iter(self._spent.items()))
            if expires > floor:
                break
            del self._spent[oldest]
        ident = info.key_id.encode() + b"\x00" + info.random
        if ident in self._spent:
            raise IssuanceError("challenge_replayed", 400, "challenge already used")
        if len(self._spent) >= self._capacity:
            raise IssuanceError("issuer_busy", 503, "too many challenges in flight: retry")
        self._spent[ident] = info.expires


# -- rate limit ----------------------------------------------------------------------------


class RateLimiter:
    """A token bucket per principal: ``burst`` requests at once, refilled at
    ``rate`` per second. At most ``max_principals`` buckets are kept (least
    recently used dropped first: a dropped principal starts again with a
    full bucket)."""

    __slots__ = ("_buckets", "_burst", "_max", "_rate")

    def __init__(self, *, rate: float = 1.0, burst: int = 10, max_principals: int = 100_000):
        if not rate > 0 or type(burst) is not int or burst < 1 or max_principals < 1:
            raise UsageError("rate must be positive, burst and max_principals at least 1")
        self._rate = float(rate)
        self._burst = burst
        self._max = max_principals
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._buckets)

    def take(self, principal: str, *, now: float) -> None:
        """Spend one request of ``principal``'s.

        Raises:
            IssuanceError: ``rate_limited`` (HTTP 429) when its bucket is
                empty; ``retry_after`` in the detail.
        """
        tokens, last = self._buckets.pop(principal, (float(self._burst), now))
        tokens = min(float(self._burst), tokens + max(0.0, now - last) * self._rate)
        if tokens < 1.0:
            self._buckets[principal] = (tokens, now)
            wait = math.ceil((1.0 - tokens) / self._rate)
            raise IssuanceError(
                "rate_limited", 429, f"too many requests: retry in {wait} s", retry_after=wait
            )
        self._buckets[principal] = (tokens - 1.0, now)
        while len(self._buckets) > self._max:
            self._buckets.popitem(last=False)


# -- key documents -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class JWKSEntry:
    """One public key in the JWKS document, with its role and validity.

    ``role`` is ``"server"`` (signs `ed25519` server frames, SPEC.md §7.1) or
    ``"issuer"`` (signs certificates for issuer ``issuer``). ``not_before``
    and ``not_after`` are the keyring's window (SPEC.md §3; ``nbf``/``exp``).
    """

    role: str
    kid: str
    public_key: Ed25519PublicKey
    issuer: str | None = None
    not_before: int | None = None
    not_after: int | None = None

    def __post_init__(self) -> None:
        if self.role not in ("server", "issuer"):
            raise UsageError("a JWKS entry's role is 'server' or 'issuer'")
        if (self.role == "issuer") != (self.issuer is not None):
            raise UsageError("an issuer key names its issuer; a server key does not")

    def to_jwk(self) -> dict[str, Any]:
        """The RFC 8037 OKP JWK with signedws's members (SPEC.md §13.4)."""
        jwk: dict[str, Any] = {
            "kty": "OKP",
            "crv": "Ed25519",
            "kid": self.kid,
            "x": b64url_encode(self.public_key.to_bytes()),
            "alg": "EdDSA",
            "use": "sig",
            "signedws_role": self.role,
        }
        if self.issuer is not None:
            jwk["signedws_iss"] = self.issuer
        if self.not_before is not None:
            jwk["nbf"] = self.not_before
        if self.not_after is not None:
            jwk["exp"] = self.not_after
        return jwk


def jwks(entries: Iterable[JWKSEntry]) -> dict[str, Any]:
    """The JWKS document (SPEC.md §13.4): ``{"keys": [...]}``."""
    return {"keys": [entry.to_jwk() for entry in entries]}


def keys_from_jwks(
    document: Mapping[str, Any], *, role: str = "server", issuer: str | None = None, now: float
) -> dict[str, Ed25519PublicKey]:
    """The public keys of ``role`` (and, for issuer keys, of ``issuer``) in a
    JWKS document that are valid at ``now``, by key id: a client's
    ``server_keys``. Entries of other roles are skipped; every entry must be a
    public Ed25519 key.

    Raises:
        KeyFormatError: if the document or an entry is malformed.
    """
    keys = document.get("keys") if isinstance(document, Mapping) else None
    if not isinstance(keys, list):
        raise KeyFormatError("JWKS must be an object with a 'keys' array")
    found: dict[str, Ed25519PublicKey] = {}
    for jwk in keys:
        kid, key = key_from_jwk(jwk, public_only=True)
        if not isinstance(key, Ed25519PublicKey):  # pragma: no cover - public_only
            raise KeyFormatError(f"JWK {kid!r} is not an Ed25519 public key")
        if jwk.get("signedws_role", "server") != role:
            continue
        if issuer is not None and jwk.get("signedws_iss") != issuer:
            continue
        nbf, exp = jwk.get("nbf"), jwk.get("exp")
        for name, value in (("nbf", nbf), ("exp", exp)):
            if value is not None and (type(value) is not int or value < 0):
                raise KeyFormatError(f"JWK {kid!r}: {name} must be whole seconds")
        if (nbf is not None and now < nbf) or (exp is not None and now >= exp):
            continue
        if kid in found:
            raise KeyFormatError(f"JWKS has two valid keys {kid!r}")
        found[kid] = key
    return found


# -- the service -------------------------------------------------------------------------


def _b64_field(body: Mapping[str, Any], name: str) -> bytes:
    value = body.get(name)
    if not isinstance(value, str) or len(value) > 2048:
        raise _bad_request(f"{name!r} must be a base64url string")
    try:
        return b64url_decode(value)
    except KeyFormatError:
        raise _bad_request(f"{name!r} is not unpadded base64url") from None


def _public_key(body: Mapping[str, Any]) -> Ed25519PublicKey:
    try:
        return Ed25519PublicKey(_b64_field(body, "public_key"))
    except KeyFormatError as exc:
        raise IssuanceError("invalid_public_key", 400, str(exc)) from None


def _requested(body: Mapping[str, Any]) -> tuple[frozenset[str] | None, int | None]:
    scopes = body.get("scopes")
    if scopes is not None and (
        not isinstance(scopes, list)
        or len(scopes) > 64
        or not all(isinstance(s, str) and 0 < len(s) <= 256 for s in scopes)
    ):
        raise _bad_request("'scopes' must be an array of at most 64 non-empty strings")
    lifetime = body.get("lifetime")
    if lifetime is not None and (type(lifetime) is not int or lifetime < 1):
        raise _bad_request("'lifetime' must be a positive whole number of seconds")
    return (None if scopes is None else frozenset(scopes)), lifetime


@dataclass
class IssuerService:
    """Everything an issuer endpoint decides, with ``now`` passed in.

    Attributes:
        policy: scopes, audiences and lifetimes.
        mac_issuer: mints `mac` tokens (an `Issuer` with an `HMACKey`), or None.
        ed25519_issuer: mints certificates (an `Issuer` with an
            `Ed25519PrivateKey`), or None.
        challenge_key: mints and checks proof-of-possession challenges
            (required with ``ed25519_issuer``).
        node_id: this node's id, written into its challenges.
        server_keys: the servers' Ed25519 keys to publish (`JWKSEntry`, role
            ``server``), for clients to verify `ed25519` server frames.
        issuer_keys: more issuer public keys to publish (retired ones still
            valid, other nodes' ...); ``ed25519_issuer``'s own is added.
        challenge_ttl: seconds a challenge lives.
        spent: this node's record of used challenges.
        limiter: the per-principal rate limit.
    """

    policy: IssuancePolicy
    mac_issuer: Issuer | None = None
    ed25519_issuer: Issuer | None = None
    challenge_key: ChallengeKey | None = None
    node_id: bytes = field(default_factory=lambda: secrets.token_bytes(_NODE_ID_SIZE))
    server_keys: Sequence[JWKSEntry] = ()
    issuer_keys: Sequence[JWKSEntry] = ()
    challenge_ttl: int = DEFAULT_CHALLENGE_TTL
    spent: SpentChallenges = field(default_factory=SpentChallenges)
    limiter: RateLimiter = field(default_factory=RateLimiter)
    ed25519_issuer_window: tuple[int | None, int | None] = (None, None)

    def __post_init__(self) -> None:
        if self.mac_issuer is None and self.ed25519_issuer is None:
            raise UsageError("an issuer service needs a mac issuer, an ed25519 issuer or both")
        if self.mac_issuer is not None and not isinstance(self.mac_issuer._key, HMACKey):
            raise UsageError("the mac issuer's key is an HMACKey")
        if self.ed25519_issuer is not None:
            if not isinstance(self.ed25519_issuer._key, Ed25519PrivateKey):
                raise UsageError("the ed25519 issuer's key is an Ed25519PrivateKey")
            if self.challenge_key is None:
                raise UsageError("an ed25519 issuer needs a challenge_key (proof of possession)")
        if not isinstance(self.node_id, bytes) or len(self.node_id) != _NODE_ID_SIZE:
            raise UsageError(f"node_id must be {_NODE_ID_SIZE} bytes")
        for entry in self.server_keys:
            if entry.role != "server":
                raise UsageError("server_keys holds JWKSEntry objects of role 'server'")

    @classmethod
    def build(
        cls,
        policy: IssuancePolicy,
        *,
        mac_key: tuple[str, str, HMACKey] | None = None,
        ed25519_key: tuple[str, str, Ed25519PrivateKey] | None = None,
        fleet_key: tuple[str, HMACKey] | None = None,
        server_keys: Iterable[ServerKey | JWKSEntry] = (),
        **kwargs: Any,
    ) -> IssuerService:
        """An issuer service from keys: ``(issuer name, kid, key)`` for each
        scheme, ``(kid, key)`` of the fleet key (for challenges), and the
        servers' signing keys (their public parts are published)."""
        entries = [
            k
            if isinstance(k, JWKSEntry)
            else JWKSEntry("server", k.kid, k.private_key.public_key())
            for k in server_keys
        ]
        return cls(
            policy,
            mac_issuer=Issuer(*mac_key) if mac_key else None,
            ed25519_issuer=Issuer(*ed25519_key) if ed25519_key else None,
            challenge_key=ChallengeKey(fleet_key[1], fleet_key[0]) if fleet_key else None,
            server_keys=entries,
            **kwargs,
        )

    # -- requests ---------------------------------------------------------------------

    def admit(self, principal: Principal, *, now: float) -> None:
        """Apply the rate limit to one request of ``principal``.

        Raises:
            IssuanceError: ``rate_limited``.
        """
        self.limiter.take(principal.subject, now=now)

    def _document(self, issuer: Issuer, scheme: str, claims: object) -> dict[str, Any]:
        assert isinstance(claims, Claims)  # noqa: S101 - we just minted it
        return {
            "scheme": scheme,
            "issuer": issuer.name,
            "kid": issuer.kid,
            "cid": claims.cid,
            "subject": claims.sub,
            "scopes": sorted(claims.scopes),
            "audiences": sorted(claims.aud),
            "issued_at": claims.iat,
            "expires_at": claims.exp,
        }

    def issue_mac(
        self, principal: Principal, body: Mapping[str, Any], *, now: float
    ) -> dict[str, Any]:
        """The response document of ``POST credentials/mac`` (SPEC.md §13.2).

        Raises:
            IssuanceError: ``scheme_unavailable``, ``invalid_request``,
                ``login_expiring``.
        """
        if self.mac_issuer is None:
            raise IssuanceError("scheme_unavailable", 404, "this issuer mints no mac tokens")
        scopes, lifetime = _requested(body)
        credential = self.mac_issuer.issue_token(
            subject=principal.subject,
            now=now,
            lifetime=self.policy.lifetime(principal, scheme="mac", now=now, requested=lifetime),
            scopes=self.policy.scopes(principal, scopes),
            audiences=self.policy.audiences,
        )
        document = self._document(self.mac_issuer, "mac", credential.claims)
        document["token"] = b64url_encode(credential.token)
        document["frame_key"] = b64url_encode(credential.frame_key.to_bytes())
        # mac server frames are tagged with the frame key (SPEC.md §7.1).
        document["server_frames"] = {"scheme": "mac"}
        return document

    def challenge(
        self, principal: Principal, body: Mapping[str, Any], *, now: float
    ) -> dict[str, Any]:
        """The response of ``challenge``: a challenge for ``public_key``.

        Raises:
            IssuanceError: ``scheme_unavailable``, ``invalid_request``,
                ``invalid_public_key``.
        """
        if self.ed25519_issuer is None or self.challenge_key is None:
            raise IssuanceError("scheme_unavailable", 404, "this issuer mints no certificates")
        public_key = _public_key(body)
        challenge = self.challenge_key.mint(
            public_key,
            issuer=self.ed25519_issuer.name,
            subject=principal.subject,
            node_id=self.node_id,
            now=now,
            ttl=self.challenge_ttl,
        )
        return {
            "challenge": b64url_encode(challenge),
            "issuer": self.ed25519_issuer.name,
            "expires_at": math.floor(now) + self.challenge_ttl,
        }

    def issue_ed25519(
        self, principal: Principal, body: Mapping[str, Any], *, now: float
    ) -> dict[str, Any]:
        """The response document of ``POST credentials/ed25519``: checks the
        proof of possession and mints a certificate (SPEC.md §13.3).

        Raises:
            IssuanceError: ``scheme_unavailable``, ``invalid_request``,
                ``invalid_public_key``, ``challenge_invalid``,
                ``challenge_key_mismatch``, ``challenge_expired``,
                ``challenge_replayed``, ``proof_invalid``, ``login_expiring``,
                ``issuer_busy``.
        """
        if self.ed25519_issuer is None or self.challenge_key is None:
            raise IssuanceError("scheme_unavailable", 404, "this issuer mints no certificates")
        issuer = self.ed25519_issuer
        public_key = _public_key(body)
        challenge = _b64_field(body, "challenge")
        signature = _b64_field(body, "signature")
        info = verify_proof(
            self.challenge_key,
            challenge,
            public_key,
            signature,
            issuer=issuer.name,
            subject=principal.subject,
            now=now,
        )
        scopes, lifetime = _requested(body)
        granted = self.policy.scopes(principal, scopes)
        lifetime = self.policy.lifetime(principal, scheme="ed25519", now=now, requested=lifetime)
        self.spent.spend(info, now=now)
        certificate = issuer.issue_certificate(
            public_key,
            subject=principal.subject,
            now=now,
            lifetime=lifetime,
            scopes=granted,
            audiences=self.policy.audiences,
            # One challenge, one cid: a proof replayed at another node mints
            # the same cid (SPEC.md §13.3), revoked together.
            credential_id=b64url_encode(info.random),
        )
        document = self._document(issuer, "ed25519", unverified_credential(certificate))
        document["certificate"] = b64url_encode(certificate)
        document["server_keys"] = jwks(self.server_keys)
        return document

    def jwks(self) -> dict[str, Any]:
        """The JWKS document (SPEC.md §13.4)."""
        entries = list(self.server_keys)
        if self.ed25519_issuer is not None:
            private = self.ed25519_issuer._key
            assert isinstance(private, Ed25519PrivateKey)  # noqa: S101 - __post_init__ checks
            nbf, exp = self.ed25519_issuer_window
            entries.append(
                JWKSEntry(
                    "issuer",
                    self.ed25519_issuer.kid,
                    private.public_key(),
                    issuer=self.ed25519_issuer.name,
                    not_before=nbf,
                    not_after=exp,
                )
            )
        entries.extend(self.issuer_keys)
        return jwks(entries)


def credential_from_response(
    document: Mapping[str, Any], *, private_key: Ed25519PrivateKey | None = None
) -> MACCredential | Ed25519Credential:
    """The client credential in an issuer's response document.

    Raises:
        KeyFormatError: if the document is malformed.
        UsageError: if the parts do not go together.
    """
    scheme = document.get("scheme") if isinstance(document, Mapping) else None

    def field_(name: str) -> bytes:
        value = document.get(name)
        if not isinstance(value, str):
            raise KeyFormatError(f"issuer response: {name!r} is missing")
        return b64url_decode(value)

    if scheme == "mac":
        return MACCredential(field_("token"), HMACKey(field_("frame_key")))
    if scheme == "ed25519":
        if private_key is None:
            raise UsageError("an ed25519 credential needs the client's private key")
        return Ed25519Credential(field_("certificate"), private_key)
    raise KeyFormatError("issuer response: scheme must be 'mac' or 'ed25519'")
