"""The ``[issuer]`` table of a ``signedws serve`` / ``signedws issuer`` TOML
file (SPEC.md §13), and the `IssuerService` it describes.

No I/O beyond reading the key files named; imports neither asyncio nor
Starlette. Relative paths are relative to the TOML file's directory. Every
key, its type, default and meaning: ``docs/configuration.md`` (checked
against `_KEYS` and `IssuerConfig` by a test).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from .errors import KeyFormatError, UsageError
from .issuer import IssuancePolicy, IssuerService, RateLimiter
from .keys import Ed25519PrivateKey, HMACKey, load_key

__all__ = ["IssuerConfig", "build_issuer_service", "parse_issuer_table"]

_KEYS: Final[dict[str, type | tuple[type, ...]]] = {
    "name": str,
    "mac_key": str,
    "ed25519_key": str,
    "path": str,
    "host": str,
    "port": int,
    "audiences": list,
    "scopes": list,
    "mac_lifetime": int,
    "ed25519_lifetime": int,
    "origins": list,
    "rate": (int, float),
    "burst": int,
    "authenticate": str,
    "oidc_issuer": str,
    "oidc_audience": str,
    "oidc_jwks_url": str,
    "algorithms": list,
    "subject_claim": str,
    "scopes_claim": str,
}


@dataclass(frozen=True, slots=True)
class IssuerConfig:
    """A loaded ``[issuer]`` table (see the module docstring)."""

    name: str
    mac_key: Path | None = None
    ed25519_key: Path | None = None
    path: str = "/signedws"
    host: str = "127.0.0.1"
    port: int = 8766
    audiences: tuple[str, ...] = ()
    scopes: frozenset[str] | None = None
    mac_lifetime: int = 900
    ed25519_lifetime: int = 3600
    origins: tuple[str, ...] = ()
    rate: float = 1.0
    burst: int = 10
    authenticate: str | None = None
    oidc_issuer: str | None = None
    oidc_audience: str | None = None
    oidc_jwks_url: str | None = None
    algorithms: tuple[str, ...] = ("RS256", "PS256", "ES256", "EdDSA")
    subject_claim: str = "sub"
    scopes_claim: str = "scope"


def _strings(value: list[Any], key: str) -> tuple[str, ...]:
    if not all(isinstance(v, str) and v for v in value):
        raise UsageError(f"config: [issuer].{key} must be an array of non-empty strings")
    return tuple(value)


def parse_issuer_table(table: Mapping[str, Any], base: Path) -> IssuerConfig:
    """Check an ``[issuer]`` table; ``base`` is the TOML file's directory.

    Raises:
        UsageError: for an unknown key, a value of the wrong type, or a
            missing required key.
    """
    if not isinstance(table, Mapping):
        raise UsageError("config: [issuer] must be a table")
    unknown = set(table) - set(_KEYS)
    if unknown:
        raise UsageError(f"config: unknown keys in [issuer]: {sorted(unknown)}")
    values: dict[str, Any] = {}
    for key, value in table.items():
        kind = _KEYS[key]
        if isinstance(value, bool) or not isinstance(value, kind):
            raise UsageError(f"config: [issuer].{key} has the wrong type")
        values[key] = value
    if not values.get("name"):
        raise UsageError("config: [issuer].name is required")
    for key in ("mac_key", "ed25519_key"):
        values[key] = (base / values[key]) if values.get(key) else None
    if values["mac_key"] is None and values["ed25519_key"] is None:
        raise UsageError("config: [issuer] needs mac_key, ed25519_key or both")
    for key in ("audiences", "origins", "algorithms"):
        if key in values:
            values[key] = _strings(values[key], key)
    if "scopes" in values:
        values["scopes"] = frozenset(_strings(values["scopes"], "scopes")) or None
    if "rate" in values:
        values["rate"] = float(values["rate"])
    for key in ("authenticate", "oidc_issuer", "oidc_audience", "oidc_jwks_url"):
        if key in values:
            values[key] = values[key] or None
    oidc = [values.get(k) for k in ("oidc_issuer", "oidc_audience", "oidc_jwks_url")]
    if values.get("authenticate") is None and not all(oidc):
        raise UsageError(
            "config: [issuer] needs authenticate, or oidc_issuer, oidc_audience and oidc_jwks_url"
        )
    if values.get("authenticate") is not None and any(oidc):
        raise UsageError("config: [issuer] takes authenticate or the oidc_ keys, not both")
    if "path" in values and not values["path"].startswith("/"):
        raise UsageError("config: [issuer].path starts with '/'")
    config = IssuerConfig(**values)
    if not 0 <= config.port <= 65535:
        raise UsageError("config: [issuer].port must be 0 to 65535")
    if not config.rate > 0 or config.burst < 1:
        raise UsageError("config: [issuer].rate and burst must be positive")
    return config


def build_issuer_service(
    config: IssuerConfig,
    *,
    audience: str,
    fleet_key: tuple[str, HMACKey],
    server_key: Any = None,
) -> IssuerService:
    """The issuer service of ``config``, with its key files loaded.

    Args:
        audience: the server's audience ([server].audience), the default
            ``aud``.
        fleet_key: ``(kid, key)`` of the fleet key.
        server_key: the server's `ServerKey` (published), or None.

    Raises:
        KeyFormatError: if a key file is unreadable or of the wrong type.
        UsageError: for an invalid setting.
    """
    mac = ed = None
    if config.mac_key is not None:
        kid, key = _load(config.mac_key)
        if not isinstance(key, HMACKey):
            raise KeyFormatError(f"[issuer].mac_key {str(config.mac_key)!r} must be an oct JWK")
        mac = (config.name, kid, key)
    if config.ed25519_key is not None:
        kid, key = _load(config.ed25519_key)
        if not isinstance(key, Ed25519PrivateKey):
            raise KeyFormatError(
                f"[issuer].ed25519_key {str(config.ed25519_key)!r} must be a private OKP JWK"
            )
        ed = (config.name, kid, key)
    policy = IssuancePolicy(
        config.audiences or (audience,),
        grantable=config.scopes,
        mac_lifetime=config.mac_lifetime,
        ed25519_lifetime=config.ed25519_lifetime,
    )
    return IssuerService.build(
        policy,
        mac_key=mac,
        ed25519_key=ed,
        fleet_key=fleet_key if ed is not None else None,
        server_keys=[server_key] if server_key is not None else [],
        limiter=RateLimiter(rate=config.rate, burst=config.burst),
    )


def _load(path: Path) -> tuple[str, object]:
    try:
        return load_key(path)
    except OSError as exc:
        raise KeyFormatError(f"cannot read key {str(path)!r}: {exc.strerror}") from None
