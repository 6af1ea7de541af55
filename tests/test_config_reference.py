"""docs/configuration.md is the one reference of `signedws serve`'s TOML keys:
these tests hold it to signedws/config.py and signedws/issuer_config.py (every
key, its type, its default, which keys are required), and test the
``SIGNEDWS_<SECTION>_<KEY>`` environment overrides."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import pytest

import signedws.config
from signedws import UsageError
from signedws.config import _SECTIONS, environment_overrides, key_kind, load_config
from signedws.issuer_config import _KEYS as ISSUER_KEYS
from signedws.issuer_config import parse_issuer_table

REPO = Path(__file__).resolve().parents[1]
REFERENCE = REPO / "docs" / "configuration.md"
ROW = re.compile(r"^\| `(\w+)` \| (\w+) \| (.+?) \| (.+) \|$")


def reference() -> dict[str, dict[str, tuple[str, str, str]]]:
    """Section -> key -> (type, default, meaning), from the reference's tables."""
    sections: dict[str, dict[str, tuple[str, str, str]]] = {}
    current: str | None = None
    for line in REFERENCE.read_text().splitlines():
        heading = re.match(r"^## \[(\w+)\]$", line)
        if heading:
            current = heading.group(1)
            sections[current] = {}
        elif line.startswith("## "):
            current = None
        elif current is not None and (row := ROW.match(line)):
            key, kind, default, meaning = row.groups()
            assert key not in sections[current], f"[{current}].{key} documented twice"
            sections[current][key] = (kind, default.strip("`"), meaning)
    return sections


def known_keys() -> dict[str, set[str]]:
    return {**{s: set(keys) for s, keys in _SECTIONS.items()}, "issuer": set(ISSUER_KEYS)}


REQUIRED_SERVER = {
    "server": {"audience": '"wss://a.example"', "origins": "[]"},
    "keys": {"fleet_key": '"f.jwk"', "keyring": '"k.json"'},
}


def toml(tables: dict[str, dict[str, str]]) -> str:
    return "".join(
        f"[{section}]\n" + "".join(f"{key} = {value}\n" for key, value in keys.items())
        for section, keys in tables.items()
    )


def test_every_key_is_documented_and_every_documented_key_exists() -> None:
    """The reference and the parsers know the same sections and keys. A key
    added to config.py without its line here fails with the key's name."""
    documented = reference()
    known = known_keys()
    missing = sorted(
        f"[{section}].{key}"
        for section, keys in known.items()
        for key in keys - set(documented.get(section, {}))
    )
    assert not missing, (
        f"keys that signedws serve accepts but docs/configuration.md does not document: "
        f"{', '.join(missing)}. Add a row to the section's table: "
        "| `key` | type | default | meaning |"
    )
    extra = sorted(
        f"[{section}].{key}"
        for section, keys in documented.items()
        for key in set(keys) - known.get(section, set())
    )
    assert not extra, f"docs/configuration.md documents keys no parser knows: {extra}"


def test_documented_types_are_the_parsers() -> None:
    """Each documented type is the one the parser checks (from ServerConfig's
    field, or the [issuer] parser's table), and a value of another type is
    refused."""
    for section, keys in reference().items():
        for key, (kind, _, _) in keys.items():
            assert kind == key_kind(section, key), f"[{section}].{key}: {kind}"


@pytest.mark.parametrize(
    ("section", "key"),
    sorted((s, k) for s, keys in _SECTIONS.items() for k in keys),
)
def test_server_defaults_are_the_documented_defaults(
    tmp_path: Path, section: str, key: str
) -> None:
    """For every optional key, writing its documented default into a file
    loads exactly the configuration that leaving it out does; every key
    documented as required is refused when missing."""
    row = reference().get(section, {}).get(key)
    assert row is not None, f"[{section}].{key} is missing from docs/configuration.md"
    kind, default, _ = row
    path = tmp_path / "c.toml"
    if default == "required":
        tables = {s: {k: v for k, v in t.items() if k != key} for s, t in REQUIRED_SERVER.items()}
        path.write_text(toml(tables))
        with pytest.raises(UsageError, match=f"{key}.* required|required.*{key}"):
            load_config(path, environ={})
        return
    value = tomllib.loads(f"v = {default}")["v"]
    assert _is_kind(value, kind), f"[{section}].{key}: default {default} is not a {kind}"
    path.write_text(toml(REQUIRED_SERVER))
    without = load_config(path, environ={})
    tables = {s: dict(t) for s, t in REQUIRED_SERVER.items()}
    tables.setdefault(section, {})[key] = default
    path.write_text(toml(tables))
    assert load_config(path, environ={}) == without, f"[{section}].{key} default {default}"


ISSUER_BASES = (
    {"name": '"app"', "mac_key": '"m.jwk"', "authenticate": '"app:login"'},
    {
        "name": '"app"',
        "ed25519_key": '"e.jwk"',
        "oidc_issuer": '"https://idp"',
        "oidc_audience": '"app"',
        "oidc_jwks_url": '"https://idp/jwks"',
    },
)


@pytest.mark.parametrize("key", sorted(ISSUER_KEYS))
def test_issuer_defaults_are_the_documented_defaults(key: str) -> None:
    """The same for [issuer], with a table that needs none of the key."""
    row = reference().get("issuer", {}).get(key)
    assert row is not None, f"[issuer].{key} is missing from docs/configuration.md"
    kind, default, _ = row
    if default == "required":
        table = {k: tomllib.loads(f"v = {v}")["v"] for k, v in ISSUER_BASES[0].items()}
        del table[key]
        with pytest.raises(UsageError, match=f"{key} is required"):
            parse_issuer_table(table, Path())
        return
    value = tomllib.loads(f"v = {default}")["v"]
    assert _is_kind(value, kind), f"[issuer].{key}: default {default} is not a {kind}"
    base = next(b for b in ISSUER_BASES if key not in b)
    table = {k: tomllib.loads(f"v = {v}")["v"] for k, v in base.items()}
    assert parse_issuer_table({**table, key: value}, Path()) == parse_issuer_table(
        table, Path()
    ), f"[issuer].{key} default {default}"


def _is_kind(value: Any, kind: str) -> bool:
    number = isinstance(value, int | float) and not isinstance(value, bool)
    return {
        "string": isinstance(value, str),
        "integer": number and isinstance(value, int),
        "number": number,
        "boolean": isinstance(value, bool),
        "array": isinstance(value, list),
    }[kind]


def test_the_module_docstrings_point_to_the_reference() -> None:
    """config.py no longer carries a second, drifting copy of the reference."""
    doc = signedws.config.__doc__ or ""
    assert "docs/configuration.md" in doc
    assert "max_frame_size" not in doc
    assert (REPO / "examples" / "serve.toml").read_text().count("docs/configuration.md") == 1


# -- SIGNEDWS_<SECTION>_<KEY> ---------------------------------------------------------------


def test_environment_overrides_every_type(tmp_path: Path) -> None:
    """Strings, integers, numbers, booleans and arrays from the environment
    win over the file, typed as in TOML; paths are relative to the file."""
    path = tmp_path / "c.toml"
    path.write_text(toml(REQUIRED_SERVER))
    environ = {
        "SIGNEDWS_SERVER_AUDIENCE": "wss://env.example",
        "SIGNEDWS_SERVER_PORT": "9001",
        "SIGNEDWS_SERVER_ALLOW_NO_ORIGIN": "true",
        "SIGNEDWS_SERVER_ORIGINS": '["https://a.example", "https://b.example"]',
        "SIGNEDWS_LIMITS_IDLE_TIMEOUT": "12.5",
        "SIGNEDWS_LIMITS_ACK_DELAY": "0",
        "SIGNEDWS_KEYS_REVOCATIONS": "revoked.json",
        "SIGNEDWS_REDIS_PREFIX": "chat",
        "SIGNEDWS_PUBLIC_VECTORS": "/elsewhere",  # not a section of ours: ignored
        "HOME": "/root",
    }
    config = load_config(path, environ=environ)
    assert config.audience == "wss://env.example"
    assert config.port == 9001
    assert config.allow_no_origin is True
    assert config.origins == ("https://a.example", "https://b.example")
    assert config.idle_timeout == 12.5
    assert config.ack_delay == 0.0
    assert config.revocations == tmp_path / "revoked.json"
    assert config.redis_prefix == "chat"
    assert load_config(path, environ={}).port == 8765


def test_environment_supplies_required_keys_and_the_issuer(tmp_path: Path) -> None:
    """A required key may come from the environment alone; so may [issuer]."""
    path = tmp_path / "c.toml"
    path.write_text('[server]\norigins = []\n[keys]\nfleet_key = "f"\nkeyring = "k"\n')
    with pytest.raises(UsageError, match="audience is required"):
        load_config(path, environ={})
    environ = {
        "SIGNEDWS_SERVER_AUDIENCE": "wss://x",
        "SIGNEDWS_ISSUER_NAME": "app",
        "SIGNEDWS_ISSUER_MAC_KEY": "m.jwk",
        "SIGNEDWS_ISSUER_AUTHENTICATE": "app:login",
        "SIGNEDWS_ISSUER_RATE": "3",
    }
    config = load_config(path, environ=environ)
    assert config.issuer is not None
    assert (config.issuer.name, config.issuer.rate) == ("app", 3.0)
    assert config.issuer.mac_key == tmp_path / "m.jwk"


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("SIGNEDWS_SERVER_PORT", "eighty", "SIGNEDWS_SERVER_PORT must be a TOML integer"),
        ("SIGNEDWS_SERVER_PORT", "1.5", "must be a TOML integer"),
        ("SIGNEDWS_SERVER_PORT", "99999", "port must be 0 to 65535"),
        ("SIGNEDWS_LIMITS_MAX_SKEW", "true", "must be a TOML number"),
        ("SIGNEDWS_SERVER_ALLOW_NO_ORIGIN", "yes", "true or false"),
        ("SIGNEDWS_SERVER_ORIGINS", "https://a.example", "must be a TOML array"),
        ("SIGNEDWS_SERVER_PROT", "1", "SIGNEDWS_SERVER_PROT names no key of \\[server\\]"),
        ("SIGNEDWS_ISSUER_NAMEE", "x", "names no key of \\[issuer\\]"),
        ("SIGNEDWS_SERVER_TRANSPORT", "tornado", 'transport is "websockets" or "picows"'),
    ],
)
def test_environment_errors_name_the_variable(
    tmp_path: Path, name: str, value: str, message: str
) -> None:
    """A wrong variable fails loudly, naming it."""
    path = tmp_path / "c.toml"
    path.write_text(toml(REQUIRED_SERVER))
    with pytest.raises(UsageError, match=message):
        load_config(path, environ={name: value})


def test_environment_errors_never_show_the_value(tmp_path: Path) -> None:
    """The value of a variable may be a secret: no error shows it."""
    secret = "hunter2-s3cret-value"
    path = tmp_path / "c.toml"
    path.write_text(toml(REQUIRED_SERVER))
    for name in (
        "SIGNEDWS_LIMITS_WINDOW",
        "SIGNEDWS_SERVER_ORIGINS",
        "SIGNEDWS_REDIS_CHECK_INTERVAL",
    ):
        with pytest.raises(UsageError) as info:
            load_config(path, environ={name: f"[{secret}"})
        assert secret not in str(info.value)
        assert name in str(info.value)
    # A Redis URL with a password from the environment: the config's repr hides it.
    config = load_config(path, environ={"SIGNEDWS_REDIS_URL": f"redis://:{secret}@h:6379/0"})
    assert config.redis_url == f"redis://:{secret}@h:6379/0"
    assert secret not in repr(config)


def test_environment_overrides_only_our_sections() -> None:
    """Only SIGNEDWS_<one of our sections>_ variables are read."""
    assert environment_overrides({"SIGNEDWS_PUBLIC_VECTORS": "x", "PATH": "/bin"}) == {}
    assert environment_overrides({"SIGNEDWS_LIMITS_WINDOW": "8"}) == {"limits": {"window": 8}}


def test_transport_is_picows_from_the_file_or_the_environment(tmp_path: Path) -> None:
    """``[server] transport`` picks the WebSocket library (default websockets);
    the issuer runs only on websockets."""
    path = tmp_path / "c.toml"
    path.write_text(toml(REQUIRED_SERVER))
    assert load_config(path, environ={}).transport == "websockets"
    assert load_config(path, environ={"SIGNEDWS_SERVER_TRANSPORT": "picows"}).transport == (
        "picows"
    )
    environ = {
        "SIGNEDWS_SERVER_TRANSPORT": "picows",
        "SIGNEDWS_ISSUER_NAME": "app",
        "SIGNEDWS_ISSUER_MAC_KEY": "m.jwk",
        "SIGNEDWS_ISSUER_AUTHENTICATE": "app:login",
    }
    with pytest.raises(UsageError, match=r"\[issuer\] runs with \[server\].transport"):
        load_config(path, environ=environ)
