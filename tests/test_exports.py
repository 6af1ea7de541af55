"""Tests for the public surface of signedws: the pinned __all__ and an I/O-free import."""

from __future__ import annotations

import importlib
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
    "ClientConnection",
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
    "ServerConnection",
    "ServerKey",
    "ServerMessage",
    "ServerSession",
    "SignedWSError",
    "Signer",
    "StreamMarks",
    "UsageError",
    "Verifier",
    "connect",
    "decode_hello",
    "encode_key_reference",
    "key_from_jwk",
    "key_to_jwk",
    "load_key",
    "save_key",
    "serve",
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


# Modules that may do I/O: everything else is the sans-I/O core.
IO_PACKAGES = ("signedws.asyncio", "signedws.cli")
IO_LIBRARIES = ("asyncio", "websockets", "starlette", "fastapi", "uvicorn", "redis", "picows")


def core_modules() -> list[str]:
    """Every module of the package outside `IO_PACKAGES`, found on disk."""
    package = REPO / "signedws"
    names = []
    for path in sorted(package.rglob("*.py")):
        parts = path.relative_to(REPO).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        if not name.startswith(IO_PACKAGES):
            names.append(name)
    return names


def test_core_modules_found() -> None:
    """The walk above finds the core (a check over nothing would pass)."""
    modules = core_modules()
    assert {"signedws", "signedws.verifier", "signedws.errors"} <= set(modules)
    assert not [name for name in modules if name.startswith(IO_PACKAGES)]


def test_core_modules_import_no_io_library() -> None:
    """No module outside signedws.asyncio and signedws.cli imports asyncio or a
    networking library, directly or through another module (issue 15)."""
    code = (
        "import importlib, json, sys\n"
        f"for name in {core_modules()!r}: importlib.import_module(name)\n"
        f"print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in {IO_LIBRARIES!r})))"
    )
    result = subprocess.run(  # noqa: S603 - fixed arguments
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO
    )
    assert json.loads(result.stdout) == []


def test_lint_rule_bans_asyncio_in_the_core() -> None:
    """ruff's banned-api rule (TID251) refuses `import asyncio` in a core module
    and allows it under signedws/asyncio/ (pyproject.toml)."""
    ruff = Path(sys.executable).with_name("ruff")
    if not ruff.exists():
        pytest.skip("ruff is not installed beside this interpreter")

    def check(filename: str) -> str:
        result = subprocess.run(  # noqa: S603 - fixed arguments
            [
                str(ruff),
                "check",
                "--no-cache",
                "--select",
                "TID251",
                "--stdin-filename",
                filename,
                "-",
            ],
            input="import asyncio\n\nprint(asyncio)\n",
            capture_output=True,
            text=True,
            check=False,
            cwd=REPO,
        )
        return result.stdout

    assert "TID251" in check("signedws/probe.py")
    assert "TID251" not in check("signedws/asyncio/probe.py")
    assert "TID251" not in check("signedws/cli/probe.py")


@pytest.mark.parametrize(
    ("name", "module"),
    [
        ("serve", "signedws.asyncio.server"),
        ("connect", "signedws.asyncio.client"),
        ("ServerConnection", "signedws.asyncio.connection"),
        ("ClientConnection", "signedws.asyncio.client"),
    ],
)
def test_lazy_names_are_the_asyncio_objects(name: str, module: str) -> None:
    """signedws.serve and friends are the asyncio adapter's objects, imported on use."""
    assert getattr(signedws, name) is getattr(importlib.import_module(module), name)
    assert name in dir(signedws)


def test_unknown_attribute_still_raises() -> None:
    with pytest.raises(AttributeError, match="no_such_name"):
        signedws.no_such_name  # noqa: B018 - the access is the test


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
