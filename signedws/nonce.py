"""Connection nonces: minted by one server, recognised by the whole fleet
(SPEC.md §5.3).

A nonce is 64 bytes: version, node id, expiry, random bytes, and an HMAC over
them under the fleet's nonce key and the audience. Any server holding the fleet
key can tell a nonce of its fleet, unexpired, from anything else, with no shared
state. Freshness uses the server's clock and randomness only.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from typing import Final

from .envelope import NONCE_SIZE, length_prefixed, name_problem
from .errors import Code, Rejected, UsageError
from .keys import HMACKey, RandomSource
from .logformat import When

__all__ = ["NONCE_KEY_INFO", "NONCE_LABEL", "NonceInfo", "NonceKey", "unverified_expiry"]

NONCE_KEY_INFO: Final = b"signedws/v1 nonce-key"
NONCE_LABEL: Final = b"signedws/v1 nonce\x00"
NONCE_VERSION: Final = 1
NODE_ID_SIZE: Final = 8
_RANDOM_SIZE: Final = 15


@dataclass(frozen=True, slots=True)
class NonceInfo:
    """What a checked nonce says: who minted it and until when it is valid."""

    node_id: bytes
    expires: int


def unverified_expiry(nonce: bytes) -> int:
    """The expiry (seconds) written in a 64-byte nonce, without checking its tag."""
    return int.from_bytes(nonce[9:17], "big")


class NonceKey:
    """Mints and checks the connection nonces of one fleet and audience."""

    __slots__ = ("_key", "_prefix")

    def __init__(self, fleet_key: HMACKey, audience: str) -> None:
        """Derive the nonce key from the fleet secret (SPEC.md §3.2).

        Raises:
            UsageError: if ``audience`` is not a valid name.
        """
        problem = name_problem(audience)
        if problem is not None:
            raise UsageError(f"audience {problem}")
        aud = audience
        self._key = fleet_key.derive(NONCE_KEY_INFO)
        self._prefix = NONCE_LABEL + length_prefixed(aud.encode())

    def _tag(self, head: bytes) -> bytes:
        return self._key.mac(self._prefix + head)

    def mint(
        self,
        *,
        node_id: bytes,
        now: float,
        ttl: int,
        random: RandomSource = secrets.token_bytes,
    ) -> bytes:
        """A fresh nonce from ``node_id``, valid for ``ttl`` seconds from ``now``.

        Raises:
            UsageError: if ``node_id`` is not 8 bytes, ``ttl`` is not a positive
                integer, or ``random`` returns the wrong number of bytes.
        """
        if not isinstance(node_id, bytes) or len(node_id) != NODE_ID_SIZE:
            raise UsageError(f"node_id must be {NODE_ID_SIZE} bytes")
        if type(ttl) is not int or ttl < 1:
            raise UsageError("nonce ttl must be a whole number of seconds, at least one")
        expires = int(now) + ttl
        if not 0 <= expires < 2**64:
            raise UsageError("now + ttl must fit in 8 bytes")
        drawn = random(_RANDOM_SIZE)
        if not isinstance(drawn, bytes) or len(drawn) != _RANDOM_SIZE:
            raise UsageError(f"the random source must return {_RANDOM_SIZE} bytes")
        head = bytes([NONCE_VERSION]) + node_id + expires.to_bytes(8, "big") + drawn
        return head + self._tag(head)

    def check(self, nonce: bytes, *, now: float) -> NonceInfo:
        """Check that ``nonce`` was minted by this fleet for this audience and
        has not expired.

        Raises:
            Rejected: `malformed` (wrong size), `nonce_invalid` (not this
                fleet's), `nonce_expired`.
        """
        if len(nonce) != NONCE_SIZE:
            raise Rejected(Code.MALFORMED, f"nonce is {len(nonce)} bytes, not {NONCE_SIZE}")
        head = nonce[:32]
        if nonce[0] != NONCE_VERSION or not hmac.compare_digest(nonce[32:], self._tag(head)):
            raise Rejected(Code.NONCE_INVALID, "nonce not minted by this fleet for this audience")
        expires = unverified_expiry(nonce)
        if int(now * 1000) >= expires * 1000:
            raise Rejected(Code.NONCE_EXPIRED, f"nonce expired at {When(expires)}")
        return NonceInfo(nonce[1:9], expires)

    def __repr__(self) -> str:
        return "NonceKey(<secret>)"
