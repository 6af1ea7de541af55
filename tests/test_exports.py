"""Tests for the public surface of signedws: the pinned __all__ and an I/O-free import."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

import signedws
import signedws.credential
import signedws.envelope
import signedws.errors
import signedws.keyring
import signedws.keys
import signedws.revocation

PUBLIC_API = [
    "Claims",
    "ClientCredential",
    "Code",
    "ConnectionState",
    "Ed25519Credential",
    "Ed25519PrivateKey",
    "Ed25519PublicKey",
    "HMACKey",
    "Hello",
    "Issuer",
    "IssuerKey",
    "KeyFormatError",
    "KeyReference",
    "Keyring",
    "MACCredential",
    "Message",
    "NonceKey",
    "RegisteredKey",
    "Rejected",
    "RevocationSet",
    "ServerKey",
    "ServerMessage",
    "ServerSession",
    "SignedWSError",
    "Signer",
    "StreamMarks",
    "UsageError",
    "Verifier",
    "decode_hello",
    "encode_key_reference",
    "key_from_jwk",
    "key_to_jwk",
    "load_key",
    "save_key",
    "unverified_client_frame",
    "unverified_credential",
]

REPO = Path(__file__).resolve().parents[1]


def test_public_api_is_pinned() -> None:
    """signedws.__all__ is exactly the pinned list, sorted, with no duplicates."""
    assert signedws.__all__ == PUBLIC_API
    assert sorted(PUBLIC_API) == PUBLIC_API
    assert len(set(PUBLIC_API)) == len(PUBLIC_API)


@pytest.mark.parametrize("name", PUBLIC_API)
def test_public_names_resolve(name: str) -> None:
    """Every name in signedws.__all__ is an attribute of the package."""
    assert getattr(signedws, name) is not None


@pytest.mark.parametrize(
    "module",
    [
        signedws.errors,
        signedws.envelope,
        signedws.keys,
        signedws.credential,
        signedws.keyring,
        signedws.revocation,
    ],
    ids=lambda module: module.__name__,
)
def test_core_module_all_resolves(module: ModuleType) -> None:
    """Every name each core module exports exists in it."""
    names = module.__all__
    assert names
    assert len(set(names)) == len(names)
    missing = [name for name in names if not hasattr(module, name)]
    assert missing == []


def test_star_import_gives_the_public_api() -> None:
    """`from signedws import *` binds exactly the public names."""
    namespace: dict[str, object] = {}
    exec("from signedws import *", namespace)  # noqa: S102 - fixed literal
    assert sorted(name for name in namespace if name != "__builtins__") == PUBLIC_API


def test_import_is_io_free() -> None:
    """Importing signedws imports neither websockets nor asyncio (the core is sans-I/O)."""
    code = (
        "import json, sys; import signedws; "
        "print(json.dumps(sorted(m for m in sys.modules "
        "if m.split('.')[0] in ('websockets', 'asyncio'))))"
    )
    result = subprocess.run(  # noqa: S603 - fixed arguments
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO
    )
    assert json.loads(result.stdout) == []


def test_import_check_detects_asyncio() -> None:
    """The subprocess check above would see asyncio if it were imported (no false pass)."""
    code = (
        "import json, sys; import signedws, asyncio; "
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] == 'asyncio')))"
    )
    result = subprocess.run(  # noqa: S603 - fixed arguments
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO
    )
    assert "asyncio" in json.loads(result.stdout)
