"""The configuration of ``signedws serve``: a TOML file, and the key files it
names; and the credential files ``signedws issue --out`` writes, for clients.

No I/O beyond reading the files named (and the environment, for
``SIGNEDWS_<SECTION>_<KEY>`` overrides); nothing here imports asyncio or
websockets. Relative paths in the file are relative to the file's directory.

Every key of every section, its type, default and meaning, and the
environment variables, are documented in one place: ``docs/configuration.md``
(a test checks it against this module and `signedws.issuer_config`).

With ``workers`` above 1, each worker process gets its own node id: random, or
derived from ``node_id`` and the worker's index (`worker_node_id`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import ipaddress
import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, TypeVar

from .credential import ClientCredential, Ed25519Credential, MACCredential
from .errors import KeyFormatError, UsageError
from .issuer_config import _KEYS as _ISSUER_KEYS
from .issuer_config import IssuerConfig, parse_issuer_table
from .jsondoc import parse_json
from .keyring import Keyring
from .keys import Ed25519PrivateKey, HMACKey, b64url_decode, load_key
from .redaction import redacted_url
from .revocation import RevocationSet
from .server import ServerKey
from .verifier import Verifier

__all__ = [
    "ENV_PREFIX",
    "ServerConfig",
    "build_verifier",
    "environment_overrides",
    "key_kind",
    "load_config",
    "load_credential",
    "load_fleet_key",
    "load_keyring",
    "load_revocations",
    "load_server_key",
    "parse_listen",
    "parse_node_id",
    "worker_node_id",
]

MAX_WORKERS: Final = 64
#: The most messages per topic `[redis].topic_history` keeps (`topics.MAX_HISTORY`).
MAX_TOPIC_HISTORY: Final = 10_000

#: ``[server].transport``: the WebSocket library ``signedws serve`` runs on.
TRANSPORTS: Final = ("websockets", "picows")

_SECTIONS: Final = {
    "server": {
        "host",
        "port",
        "audience",
        "origins",
        "allow_no_origin",
        "handler",
        "node_id",
        "workers",
        "backlog",
        "drain_seconds",
        "trusted_proxies",
        "transport",
    },
    "keys": {"fleet_key", "keyring", "revocations", "server_key", "reload_interval"},
    "limits": {
        "max_frame_size",
        "first_frame_timeout",
        "idle_timeout",
        "max_connections",
        "max_connections_per_principal",
        "ack_delay",
        "window",
        "max_skew",
        "leeway",
        "nonce_ttl",
        "verify_workers",
    },
    "redis": {"url", "prefix", "check_interval", "topic_history"},
    "metrics": {"listen"},
}

#: Sections whose keys are `ServerConfig` fields named ``<section>_<key>``.
_PREFIXED: Final = frozenset({"redis", "metrics"})


@dataclass(frozen=True, slots=True)
class ServerConfig:
    """A loaded ``signedws serve`` configuration (see the module docstring)."""

    audience: str
    origins: tuple[str, ...]
    fleet_key: Path
    keyring: Path
    host: str = "127.0.0.1"
    port: int = 8765
    allow_no_origin: bool = False
    handler: str = "echo"
    revocations: Path | None = None
    server_key: Path | None = None
    reload_interval: float = 1.0
    max_frame_size: int = 65536
    first_frame_timeout: float | None = 10.0
    idle_timeout: float | None = 300.0
    max_connections: int = 10_000
    max_connections_per_principal: int | None = 1000
    ack_delay: float = 0.02
    window: int = 0
    max_skew: float = 300.0
    leeway: float = 30.0
    nonce_ttl: int = 86400
    verify_workers: int | None = None
    node_id: bytes | None = None
    workers: int = 1
    backlog: int = 1024
    transport: str = "websockets"
    redis_url: str | None = None
    redis_prefix: str = "signedws"
    redis_check_interval: float = 5.0
    drain_seconds: float = 10.0
    trusted_proxies: tuple[str, ...] = ()
    metrics_listen: str | None = None
    redis_topic_history: int = 0
    issuer: IssuerConfig | None = None  # [issuer] (signedws.issuer_config)

    def __repr__(self) -> str:
        # Never the raw Redis URL: it may carry a password (userinfo or query).
        shown = []
        for item in dataclasses.fields(self):
            value = getattr(self, item.name)
            if item.name == "redis_url" and value is not None:
                value = redacted_url(value)
            shown.append(f"{item.name}={value!r}")
        return f"ServerConfig({', '.join(shown)})"

    def replace(self, **changes: Any) -> ServerConfig:
        """A copy with ``changes`` (command-line overrides), checked as a file is.

        Raises:
            UsageError: for a value out of range.
        """
        config = dataclasses.replace(self, **changes)
        _check_ranges(config)
        return config


#: ``SIGNEDWS_<SECTION>_<KEY>`` (e.g. ``SIGNEDWS_SERVER_PORT``) overrides that key.
ENV_PREFIX: Final = "SIGNEDWS_"

_KINDS: Final = {
    "str": "string",
    "Path": "string",
    "bytes": "string",
    "int": "integer",
    "float": "number",
    "bool": "boolean",
    "tuple": "array",
    "list": "array",
}


def key_kind(section: str, key: str) -> str:
    """The TOML type of ``[section].key``: "string", "integer", "number",
    "boolean" or "array" (from `ServerConfig`'s field, or the ``[issuer]``
    parser's table).

    Raises:
        LookupError: for a key ``signedws serve`` does not know.
    """
    if section == "issuer":
        kind = _ISSUER_KEYS[key]
        return "number" if isinstance(kind, tuple) else _KINDS[kind.__name__]
    if key not in _SECTIONS[section]:
        raise LookupError(f"[{section}].{key}")
    name = f"{section}_{key}" if section in _PREFIXED else key
    annotation = ServerConfig.__annotations__.get(name)
    if annotation is None:
        raise LookupError(f"[{section}].{key} has no ServerConfig field {name!r}")
    return _KINDS[str(annotation).split("|")[0].split("[")[0].strip()]


def _env_value(name: str, text: str, kind: str) -> Any:
    """``text`` as a TOML value of ``kind``; errors never show the value (it
    may be a secret: a Redis URL with its password)."""
    if kind == "string":
        return text
    if kind == "boolean" and text in ("true", "false"):
        return text == "true"
    try:
        value = tomllib.loads(f"v = {text}").get("v")
    except tomllib.TOMLDecodeError:
        value = None
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if (
        (kind == "integer" and number and isinstance(value, int))
        or (kind == "number" and number)
        or (kind == "array" and isinstance(value, list))
    ):
        return value
    example = {"boolean": "true or false", "array": '["a", "b"]'}.get(kind, "")
    hint = f" ({example})" if example else ""
    raise UsageError(f"environment: {name} must be a TOML {kind}{hint}; value not shown")


def environment_overrides(environ: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    """The keys ``SIGNEDWS_<SECTION>_<KEY>`` variables of ``environ`` set,
    by section, typed like the TOML value: a string as is, a number, integer
    or boolean (``true``/``false``) or array (``["a", "b"]``) in TOML syntax.
    Other ``SIGNEDWS_`` variables (no section of ours) are left alone.

    Raises:
        UsageError: for a variable naming no key of its section, or a value
            of the wrong type (the message names the variable, never the value).
    """
    sections = {**_SECTIONS, "issuer": set(_ISSUER_KEYS)}
    found: dict[str, dict[str, Any]] = {}
    for name, text in sorted(environ.items()):
        if not name.startswith(ENV_PREFIX):
            continue
        section, _, key = name[len(ENV_PREFIX) :].lower().partition("_")
        if section not in sections:
            continue
        if key not in sections[section]:
            raise UsageError(f"environment: {name} names no key of [{section}]")
        found.setdefault(section, {})[key] = _env_value(name, text, key_kind(section, key))
    return found


def _get(table: Mapping[str, Any], key: str, kind: type | tuple[type, ...], where: str) -> Any:
    value = table[key]
    # bool is an int in Python; TOML keeps them apart, and so do we.
    if isinstance(value, bool) and kind is not bool:
        raise UsageError(f"config: {where}.{key} must be a {_kind_name(kind)}")
    if not isinstance(value, kind):
        raise UsageError(f"config: {where}.{key} must be a {_kind_name(kind)}")
    return value


def _kind_name(kind: type | tuple[type, ...]) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    names = {bool: "boolean", int: "integer", float: "number", str: "string", list: "array"}
    return " or ".join(names.get(k, k.__name__) for k in kinds)


def load_config(path: str | Path, *, environ: Mapping[str, str] | None = None) -> ServerConfig:
    """Read and check a ``signedws serve`` TOML file, with the keys that
    ``SIGNEDWS_<SECTION>_<KEY>`` variables of ``environ`` (default:
    ``os.environ``) override (`environment_overrides`).

    Raises:
        UsageError: for an unreadable or invalid file, an unknown section or key
            (typos fail loudly), a missing required key or a value of the wrong
            type or range.
    """
    path = Path(path)
    try:
        document = tomllib.loads(path.read_text())
    except OSError as exc:
        raise UsageError(f"config: cannot read {str(path)!r}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"config: {str(path)!r} is not valid TOML: {exc}") from None
    for section, overrides in environment_overrides(
        os.environ if environ is None else environ
    ).items():
        table = document.setdefault(section, {})
        if isinstance(table, dict):
            table.update(overrides)
    unknown = set(document) - set(_SECTIONS) - {"issuer"}  # [issuer]: signedws.issuer_config
    if unknown:
        raise UsageError(f"config: unknown sections {sorted(unknown)}")
    values: dict[str, Any] = {}
    for section, keys in _SECTIONS.items():
        table = document.get(section, {})
        if not isinstance(table, dict):
            raise UsageError(f"config: [{section}] must be a table")
        unknown = set(table) - keys
        if unknown:
            raise UsageError(f"config: unknown keys in [{section}]: {sorted(unknown)}")
        values.update(dict.fromkeys(table, (section, table)))

    def get(key: str, kind: type | tuple[type, ...]) -> Any:
        section, table = values[key]
        return _get(table, key, kind, f"[{section}]")

    for key in ("audience", "origins", "fleet_key", "keyring"):
        if key not in values:
            section = next(s for s, keys in _SECTIONS.items() if key in keys)
            raise UsageError(f"config: [{section}].{key} is required")
    base = path.parent

    def file(key: str) -> Path | None:
        if key not in values:
            return None
        name = get(key, str)
        return (base / name) if name else None

    origins = get("origins", list)
    if not all(isinstance(o, str) and o for o in origins):
        raise UsageError("config: [server].origins must be an array of non-empty strings")
    kwargs: dict[str, Any] = {
        "audience": get("audience", str),
        "origins": tuple(origins),
        "fleet_key": file("fleet_key"),
        "keyring": file("keyring"),
        "revocations": file("revocations"),
        "server_key": file("server_key"),
    }
    if kwargs["fleet_key"] is None or kwargs["keyring"] is None:
        raise UsageError("config: [keys].fleet_key and [keys].keyring must name files")
    for key, kind in (
        ("host", str),
        ("allow_no_origin", bool),
        ("handler", str),
        ("transport", str),
    ):
        if key in values:
            kwargs[key] = get(key, kind)
    for key in ("port", "backlog", "max_frame_size", "max_connections", "window", "nonce_ttl"):
        if key in values:
            kwargs[key] = get(key, int)
    for key in ("reload_interval", "ack_delay", "max_skew", "leeway", "drain_seconds"):
        if key in values:
            kwargs[key] = float(get(key, (int, float)))
    for key in ("first_frame_timeout", "idle_timeout"):
        if key in values:
            kwargs[key] = float(get(key, (int, float))) or None
    if "verify_workers" in values:
        kwargs["verify_workers"] = get("verify_workers", int) or None
    if "max_connections_per_principal" in values:
        per_principal = get("max_connections_per_principal", int)
        if per_principal < 0:
            raise UsageError("config: [limits].max_connections_per_principal must not be negative")
        kwargs["max_connections_per_principal"] = per_principal or None
    if "workers" in values:
        kwargs["workers"] = get("workers", int)
    if "node_id" in values:
        text = get("node_id", str)
        kwargs["node_id"] = parse_node_id(text) if text else None
    if "url" in values:
        kwargs["redis_url"] = get("url", str) or None
    if "prefix" in values:
        kwargs["redis_prefix"] = get("prefix", str)
    if "trusted_proxies" in values:
        proxies = get("trusted_proxies", list)
        if not all(isinstance(p, str) and p for p in proxies):
            raise UsageError("config: [server].trusted_proxies must be an array of addresses")
        kwargs["trusted_proxies"] = tuple(proxies)
    if "listen" in values:
        kwargs["metrics_listen"] = get("listen", str) or None
    if "check_interval" in values:
        kwargs["redis_check_interval"] = float(get("check_interval", (int, float)))
    if "topic_history" in values:
        kwargs["redis_topic_history"] = get("topic_history", int)
    if "issuer" in document:
        kwargs["issuer"] = parse_issuer_table(document["issuer"], base)
    config = ServerConfig(**kwargs)
    _check_ranges(config)
    return config


def _check_ranges(config: ServerConfig) -> None:
    if not 0 <= config.port <= 65535:
        raise UsageError("config: [server].port must be 0 to 65535")
    for name in ("max_frame_size", "max_connections", "nonce_ttl"):
        if getattr(config, name) < 1:
            raise UsageError(f"config: [limits].{name} must be positive")
    if config.backlog < 1:
        raise UsageError("config: [server].backlog must be positive")
    for name in ("reload_interval", "ack_delay", "max_skew", "leeway", "window", "drain_seconds"):
        if getattr(config, name) < 0:
            raise UsageError(f"config: {name} must not be negative")
    for name in ("first_frame_timeout", "idle_timeout", "verify_workers"):
        value = getattr(config, name)
        if value is not None and value < 0:
            raise UsageError(f"config: [limits].{name} must not be negative")
    if config.handler != "echo" and ":" not in config.handler:
        raise UsageError('config: [server].handler is "echo" or "module:function"')
    if not 1 <= config.workers <= MAX_WORKERS:
        raise UsageError(f"config: [server].workers must be 1 to {MAX_WORKERS}")
    if config.redis_url is not None and config.revocations is not None:
        raise UsageError(
            "config: one revocation source: [keys].revocations (a file) or [redis].url"
        )
    if config.issuer is not None and config.workers > 1:
        raise UsageError("config: [issuer] runs with [server].workers = 1")
    if config.transport not in TRANSPORTS:
        raise UsageError('config: [server].transport is "websockets" or "picows"')
    if config.issuer is not None and config.transport != "websockets":
        raise UsageError('config: [issuer] runs with [server].transport = "websockets"')
    if not config.redis_prefix:
        raise UsageError("config: [redis].prefix must not be empty")
    if not config.redis_check_interval > 0:
        raise UsageError("config: [redis].check_interval must be positive")
    if config.metrics_listen is not None:
        parse_listen(config.metrics_listen)
    for proxy in config.trusted_proxies:
        try:
            ipaddress.ip_network(proxy, strict=False)
        except ValueError:
            raise UsageError(
                f"config: [server].trusted_proxies: {proxy!r:.60} is not an address or network"
            ) from None
    if not 0 <= config.redis_topic_history <= MAX_TOPIC_HISTORY:
        raise UsageError(f"config: [redis].topic_history must be 0 to {MAX_TOPIC_HISTORY}")


def parse_listen(text: str) -> tuple[str, int]:
    """``host:port`` (``[v6]:port``) of ``[metrics].listen``.

    Raises:
        UsageError: if it is not one.
    """
    host, sep, port = text.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise UsageError(f"config: [metrics].listen is host:port, not {text!r:.60}")
    return host, int(port)


def parse_node_id(text: str) -> bytes:
    """A node id from its 16 hex digits (SPEC.md §5.3: 8 bytes).

    Raises:
        UsageError: if ``text`` is not 16 hex digits.
    """
    try:
        node_id = bytes.fromhex(text)
    except ValueError:
        node_id = b""
    if len(node_id) != 8:
        raise UsageError(f"a node id is 16 hex digits, not {text!r:.40}")
    return node_id


def worker_node_id(node_id: bytes | None, worker: int) -> bytes | None:
    """The node id of worker ``worker`` (from 0) of a server configured with
    ``node_id``: the first 8 bytes of SHA-256 over a label, the id and the
    index, so that workers differ and keep their ids across restarts. None
    (random ids) stays None."""
    if node_id is None:
        return None
    label = b"signedws node-id\x00" + node_id + worker.to_bytes(2, "big")
    return hashlib.sha256(label).digest()[:8]


_T = TypeVar("_T")


def _read_json(path: Path, what: str) -> Mapping[str, object]:
    try:
        document = parse_json(path.read_text())
    except OSError as exc:
        raise KeyFormatError(f"cannot read {what} {str(path)!r}: {exc.strerror}") from None
    except (ValueError, UnicodeDecodeError) as exc:
        # The message names a position, never the content.
        raise KeyFormatError(f"{what} {str(path)!r} is not JSON: {exc}") from None
    if not isinstance(document, dict):
        raise KeyFormatError(f"{what} {str(path)!r} must be a JSON object")
    return document


def _load_json(path: str | Path, what: str, parse: Callable[[Mapping[str, object]], _T]) -> _T:
    """``parse`` of the JSON object in ``path``; errors name ``what`` and the path."""
    path = Path(path)
    document = _read_json(path, what)
    try:
        return parse(document)
    except KeyFormatError as exc:
        raise KeyFormatError(f"{what} {str(path)!r}: {exc}") from None


def load_keyring(path: str | Path) -> Keyring:
    """A keyring from its JSON file (`Keyring.from_dict`).

    Raises:
        KeyFormatError: if the file cannot be read or is invalid.
    """
    return _load_json(path, "keyring", Keyring.from_dict)


def load_revocations(path: str | Path) -> RevocationSet:
    """A revocation set from its JSON file (`RevocationSet.from_dict`).

    Raises:
        KeyFormatError: if the file cannot be read or is invalid.
    """
    return _load_json(path, "revocation file", RevocationSet.from_dict)


def load_fleet_key(path: str | Path) -> HMACKey:
    """The fleet secret from an ``oct`` JWK file.

    Raises:
        KeyFormatError: if the file cannot be read or holds another key type.
    """
    key = _load(path)[1]
    if not isinstance(key, HMACKey):
        raise KeyFormatError(f"fleet key {str(path)!r} must be an oct (HMAC) JWK")
    return key


def load_server_key(path: str | Path) -> ServerKey:
    """The server's Ed25519 signing key from a private OKP JWK file.

    Raises:
        KeyFormatError: if the file cannot be read or holds another key type.
    """
    kid, key = _load(path)
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyFormatError(f"server key {str(path)!r} must be a private Ed25519 JWK")
    return ServerKey(kid, key)


def _load(path: str | Path) -> tuple[str, object]:
    try:
        return load_key(path)
    except OSError as exc:
        raise KeyFormatError(f"cannot read key {str(path)!r}: {exc.strerror}") from None


def build_verifier(config: ServerConfig) -> Verifier:
    """The verifier a configuration describes, with its files loaded.

    Raises:
        KeyFormatError: if a key, keyring or revocation file is invalid.
        UsageError: for an invalid limit.
    """
    revocations = load_revocations(config.revocations) if config.revocations else RevocationSet()
    return Verifier(
        load_keyring(config.keyring),
        audience=config.audience,
        fleet_key=load_fleet_key(config.fleet_key),
        revocations=revocations,
        window=config.window,
        max_frame_size=config.max_frame_size,
        max_skew=config.max_skew,
        leeway=config.leeway,
        nonce_ttl=config.nonce_ttl,
        node_id=config.node_id,
    )


def load_credential(
    path: str | Path, *, private_key: str | Path | None = None
) -> ClientCredential:
    """A client credential from the JSON file ``signedws issue --out`` writes.

    ``{"scheme": "mac", "token": ..., "frame_key": ...}`` gives a
    `MACCredential`; ``{"scheme": "ed25519", "certificate": ...}`` with
    ``private_key`` (the client's private JWK file) an `Ed25519Credential`.
    Byte strings are unpadded base64url.

    Raises:
        KeyFormatError: if a file cannot be read or is invalid.
        UsageError: if the parts do not go together (e.g. a certificate for
            another key).
    """
    path = Path(path)
    document = _read_json(path, "credential file")
    scheme = document.get("scheme")

    def field(name: str) -> bytes:
        value = document.get(name)
        if not isinstance(value, str):
            raise KeyFormatError(f"credential file {str(path)!r}: {name!r} is missing")
        return b64url_decode(value)

    if scheme == "mac":
        return MACCredential(field("token"), HMACKey(field("frame_key")))
    if scheme == "ed25519":
        if private_key is None:
            raise UsageError("an ed25519 credential needs the client's private key file")
        _, key = _load(private_key)
        if not isinstance(key, Ed25519PrivateKey):
            raise KeyFormatError(f"{str(private_key)!r} is not a private Ed25519 JWK")
        return Ed25519Credential(field("certificate"), key)
    raise KeyFormatError(f"credential file {str(path)!r}: scheme must be 'mac' or 'ed25519'")
