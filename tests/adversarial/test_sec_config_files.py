"""Issue 13, finding 8 (key files) and its siblings: a keyring file must say
what it trusts, unambiguously, or be refused with a typed error.

- two keys with the same ``kid`` in one issuer loaded silently (the second
  replaced the first): refused, by `Keyring.from_dict`, `load_keyring`, the
  reloader and ``signedws serve``;
- the same for two registry entries with one ``kid``;
- a registry entry carrying a private ``d`` member was accepted (``d``
  ignored): refused;
- siblings: an object naming one member twice (``json.loads`` keeps the last
  silently, so an issuer listed twice lost its first keys) is refused; a
  keyring file nested too deeply raised ``RecursionError`` out of the
  reloader's ``check`` (its task then died, and no later reload happened):
  now a typed refusal, the keyring in force kept, and the next good file is
  loaded.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from helpers import AUDIENCE, CLIENT_KEY, ED_ISSUER_KEY, FLEET_KEY, HMAC_SECRET, ISSUER, NOW
from sec_config_support import serve_config, signedws_cli

from signedws import KeyFormatError, Keyring, Verifier, key_to_jwk
from signedws.asyncio import Reloader
from signedws.config import load_keyring
from signedws.keys import HMACKey, b64url_encode


def hmac_jwk(kid: str, secret: HMACKey = HMAC_SECRET) -> dict[str, Any]:
    return dict(key_to_jwk(secret, kid))


def registry_entry(kid: str, **extra: object) -> dict[str, Any]:
    return {
        "kid": kid,
        "x": b64url_encode(CLIENT_KEY.public_key().to_bytes()),
        "sub": "alice",
        "scopes": [],
        "aud": [AUDIENCE],
        "nbf": int(NOW) - 60,
        "exp": int(NOW) + 3600,
        **extra,
    }


def test_two_keys_with_one_kid_in_one_issuer_are_refused(tmp_path: Path) -> None:
    document = {"issuers": {ISSUER: [hmac_jwk("k1"), hmac_jwk("k1", HMACKey.generate())]}}
    with pytest.raises(KeyFormatError, match="two keys with kid 'k1'"):
        Keyring.from_dict(document)
    path = tmp_path / "keyring.json"
    path.write_text(json.dumps(document))
    with pytest.raises(KeyFormatError, match="two keys with kid 'k1'"):
        load_keyring(path)


def test_two_issuer_keys_of_one_kid_and_two_schemes_are_refused() -> None:
    ed = dict(key_to_jwk(ED_ISSUER_KEY.public_key(), "k1"))
    with pytest.raises(KeyFormatError, match="two keys with kid 'k1'"):
        Keyring.from_dict({"issuers": {ISSUER: [hmac_jwk("k1"), ed]}})


def test_one_kid_in_two_issuers_is_fine() -> None:
    """Keys are namespaced by issuer (SPEC.md §3.3): not a duplicate."""
    keyring = Keyring.from_dict({"issuers": {ISSUER: [hmac_jwk("k1")], "other": [hmac_jwk("k1")]}})
    assert keyring.issuers == {ISSUER, "other"}


def test_two_registry_entries_with_one_kid_are_refused() -> None:
    document = {"registry": {ISSUER: [registry_entry("dev"), registry_entry("dev", sub="bob")]}}
    with pytest.raises(KeyFormatError, match="two entries with kid 'dev'"):
        Keyring.from_dict(document)


def test_a_registry_entry_with_a_private_key_is_refused() -> None:
    private = b64url_encode(CLIENT_KEY.to_bytes())
    document = {"registry": {ISSUER: [registry_entry("dev", d=private)]}}
    with pytest.raises(KeyFormatError, match=r"private key \(d\)") as caught:
        Keyring.from_dict(document)
    assert private not in str(caught.value)


def test_a_member_named_twice_is_refused(tmp_path: Path) -> None:
    first, second = json.dumps([hmac_jwk("k1")]), json.dumps([hmac_jwk("k2")])
    path = tmp_path / "keyring.json"
    path.write_text(f'{{"issuers": {{"{ISSUER}": {first}, "{ISSUER}": {second}}}}}')
    with pytest.raises(KeyFormatError, match="duplicate member name"):
        load_keyring(path)


def test_serve_refuses_a_keyring_with_a_duplicate_kid(tmp_path: Path) -> None:
    config = serve_config(tmp_path, "redis://127.0.0.1:1/0")
    text = config.read_text().split("[redis]")[0]  # no Redis: the keyring fails first
    config.write_text(text)
    document = {"issuers": {ISSUER: [hmac_jwk("k1"), hmac_jwk("k1", HMACKey.generate())]}}
    (tmp_path / "keyring.json").write_text(json.dumps(document))
    done = signedws_cli("serve", "--config", str(config), timeout=60)
    assert done.returncode != 0
    assert "two keys with kid 'k1'" in done.stderr, done.stderr[-2000:]


def test_the_reloader_survives_a_keyring_nested_too_deeply(tmp_path: Path) -> None:
    path = tmp_path / "keyring.json"
    path.write_text(json.dumps({"issuers": {ISSUER: [hmac_jwk("k1")]}}))
    verifier = Verifier(load_keyring(path), audience=AUDIENCE, fleet_key=FLEET_KEY)
    in_force = verifier.keyring
    reloader = Reloader(verifier, keyring=path, interval=0.1)

    path.write_text('{"issuers": ' + "[" * 100_000 + "]" * 100_000 + "}")
    assert reloader.check(force=True) == []  # refused, typed: no RecursionError
    assert verifier.keyring is in_force

    path.write_text(json.dumps({"issuers": {ISSUER: [hmac_jwk("k1"), hmac_jwk("k2")]}}))
    assert reloader.check(force=True) == ["keyring"]  # and it carries on
    assert len(verifier.keyring) == 2


def test_the_reloader_refuses_a_duplicate_kid_and_keeps_the_keyring(tmp_path: Path) -> None:
    path = tmp_path / "keyring.json"
    path.write_text(json.dumps({"issuers": {ISSUER: [hmac_jwk("k1")]}}))
    verifier = Verifier(load_keyring(path), audience=AUDIENCE, fleet_key=FLEET_KEY)
    in_force = verifier.keyring
    reloader = Reloader(verifier, keyring=path)
    other = hmac_jwk("k1", HMACKey.generate())
    path.write_text(json.dumps({"issuers": {ISSUER: [hmac_jwk("k1"), other]}}))
    assert reloader.check(force=True) == []
    assert verifier.keyring is in_force
