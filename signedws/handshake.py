"""The opening handshake's checks, I/O-free (SPEC.md §5.1, §11.2).

Every server adapter runs the same checks in the same order before it
upgrades a connection: the ``Origin`` allow-list (HTTP 403), then the
``signedws.v1`` subprotocol (HTTP 400), then the connection limit (HTTP 503).
`check_handshake` is that order, once; an adapter reads the values from its
library's request and turns a `Refusal` into its library's response.

`client_address` is the address a server logs for a connection: the peer's,
or the ``X-Forwarded-For`` client named by a trusted proxy.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .envelope import SUBPROTOCOL
from .errors import UsageError

__all__ = [
    "Network",
    "OriginPolicy",
    "Refusal",
    "check_handshake",
    "client_address",
    "trusted_networks",
]

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class OriginPolicy:
    """Which ``Origin`` header values may open a connection (SPEC.md §11.2).

    Attributes:
        allowed: strings compared exactly, compiled patterns matched in full,
            and None for clients that send no Origin.
    """

    allowed: tuple[str | re.Pattern[str] | None, ...]

    @classmethod
    def build(
        cls, origins: Sequence[str | re.Pattern[str]], *, allow_no_origin: bool
    ) -> OriginPolicy:
        """The policy for ``origins`` (strings or compiled patterns) and, if
        ``allow_no_origin``, clients without an Origin.

        Args:
            origins: the ``Origin`` values browsers may connect from, as
                strings (compared exactly) or compiled patterns (matched in
                full); any other Origin is refused with HTTP 403 before the
                upgrade (SPEC.md §11.2).
            allow_no_origin: accept clients that send no Origin (non-browser
                clients). Off unless asked for (SPEC.md §11.2).

        Raises:
            UsageError: for an origin that is neither (None included: that is
                ``allow_no_origin``), or a policy that would admit nobody.
        """
        allowed: list[str | re.Pattern[str] | None] = []
        for origin in origins:
            if not isinstance(origin, str | re.Pattern):
                raise UsageError("origins are strings or compiled patterns; see allow_no_origin")
            allowed.append(origin)
        if allow_no_origin:
            allowed.append(None)
        if not allowed:
            raise UsageError(
                "this server would accept nobody: give origins or allow_no_origin=True"
            )
        return cls(tuple(allowed))

    def allows(self, origin: str | None) -> bool:
        """Whether a handshake with this ``Origin`` value (None: no header) may
        proceed: websockets' rule, an exact string or a full pattern match."""
        for allowed in self.allowed:
            if allowed == origin:
                return True
            if (
                isinstance(allowed, re.Pattern)
                and origin is not None
                and allowed.fullmatch(origin) is not None
            ):
                return True
        return False

    @staticmethod
    def refusal_reason(origin: str | None) -> str:
        """The log reason for a refused Origin (the value, escaped)."""
        return f"origin not allowed: {origin!r}"


@dataclass(frozen=True, slots=True)
class Refusal:
    """A handshake refused before the upgrade.

    Attributes:
        status: the HTTP status the client gets (403, 400 or 503).
        reason: the server's log line: names the header value or the limit,
            never a credential (none is sent before the upgrade).
    """

    status: int
    reason: str

    @property
    def body(self) -> str:
        """The short text a client may be shown with the status."""
        return _BODIES[self.status]


_BODIES = {
    403: "Origin not allowed",
    400: f"{SUBPROTOCOL} subprotocol required",
    503: "server busy",
}


def check_handshake(
    origins: OriginPolicy,
    origin: str | None,
    offered: Sequence[str],
    open_connections: int,
    max_connections: int | None,
) -> Refusal | None:
    """Check an opening handshake in SPEC.md §5.1's order, or None to upgrade.

    Args:
        origins: the server's Origin policy.
        origin: the request's ``Origin`` value, None without one.
        offered: the subprotocols the client offered (each a name; a header
            value holding several comma-separated names is split here).
        open_connections: connections the server holds now, this one not
            counted.
        max_connections: the limit; None for none.

    Returns:
        The first refusal: a disallowed Origin (403), no ``signedws.v1``
        subprotocol offered (400), or the server at its limit (503).
    """
    if not origins.allows(origin):
        return Refusal(403, OriginPolicy.refusal_reason(origin))
    if SUBPROTOCOL not in {name.strip() for value in offered for name in value.split(",")}:
        return Refusal(400, f"no {SUBPROTOCOL} subprotocol offered")
    if max_connections is not None and open_connections >= max_connections:
        return Refusal(503, f"{open_connections} connections, limit {max_connections}")
    return None


def trusted_networks(networks: Iterable[str | Network]) -> tuple[Network, ...]:
    """Parse the networks whose ``X-Forwarded-For`` header is believed.

    Raises:
        UsageError: for a value that is not an IP network (``"10.0.0.0/8"``,
            ``"::1"``).
    """
    if isinstance(networks, str):
        raise UsageError("trusted_proxies is a list of networks, not one string")
    parsed: list[Network] = []
    for network in networks:
        try:
            parsed.append(ipaddress.ip_network(network, strict=False))
        except (TypeError, ValueError):
            raise UsageError(f"trusted_proxies: not an IP network: {network!r}") from None
    return tuple(parsed)


def _trusted(host: str, trusted: Sequence[Network]) -> bool:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return any(address in network for network in trusted)


def client_address(
    peer: str | None, forwarded_for: Sequence[str], trusted: Sequence[Network]
) -> str | None:
    """The client's address, for the log.

    The peer's own address, unless it is a trusted proxy: then the
    ``X-Forwarded-For`` chain is read right to left, skipping trusted proxies,
    and the first address not trusted is the client (a client can prepend
    anything to the header; only what trusted proxies appended is believed).

    Args:
        peer: the TCP peer's host, None if unknown.
        forwarded_for: the request's ``X-Forwarded-For`` header values.
        trusted: the proxies' networks (`trusted_networks`); empty: the
            header is never read.
    """
    if peer is None or not trusted or not _trusted(peer, trusted):
        return peer
    chain = [hop.strip() for value in forwarded_for for hop in value.split(",")]
    client = peer
    for hop in reversed(chain):
        if not hop:
            break
        client = hop
        if not _trusted(hop, trusted):
            break
    try:
        return str(ipaddress.ip_address(client))
    except ValueError:
        return peer  # not an address: a proxy we trust wrote nonsense; log the proxy
