"""The JavaScript package as npm users get it: type-checked sources, a packed
tarball with declarations, and a strict TypeScript program compiled against it.

Needs node and ``clients/js/node_modules`` (``make test`` runs ``npm ci``): a
loud skip without them, a failure under ``CI=true`` (see tests/test_js_client.py).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest
from test_js_client import JS, node

import signedws

ROOT = Path(__file__).resolve().parents[1]
CONSUMER = Path(__file__).resolve().parent / "js_consumer"


def _tsc(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run the pinned TypeScript compiler from clients/js/node_modules."""
    tsc = JS / "node_modules" / "typescript" / "bin" / "tsc"
    return subprocess.run(  # noqa: S603 - fixed argument list, no shell
        [node(), str(tsc), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


@pytest.fixture(scope="module")
def packed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``npm pack`` of clients/js (its prepack writes the declarations), unpacked."""
    node()  # skip or fail first if the tools are missing
    npm = shutil.which("npm")
    assert npm is not None
    out = tmp_path_factory.mktemp("npm-pack")
    result = subprocess.run(  # noqa: S603 - fixed argument list, no shell
        [npm, "pack", "--json", "--pack-destination", str(out)],
        cwd=JS,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    (entry,) = json.loads(result.stdout)
    with tarfile.open(out / entry["filename"]) as tar:
        tar.extractall(out / "unpacked", filter="data")
    return out / "unpacked" / "package"


def test_js_sources_type_check() -> None:
    """tsc --checkJs (strict) finds no error in clients/js/src from its JSDoc."""
    node()
    result = _tsc("-p", "tsconfig.json", cwd=JS)
    assert result.returncode == 0, result.stdout + result.stderr


def test_packed_package_is_publishable(packed: Path) -> None:
    """The tarball is public, names its entry points and declarations, and
    carries the sources and types only (no tests, no demo)."""
    manifest = json.loads((packed / "package.json").read_text())
    assert "private" not in manifest
    assert manifest["exports"]["."] == {
        "types": "./types/index.d.ts",
        "default": "./src/index.js",
    }
    assert (packed / "types" / "index.d.ts").is_file()
    assert (packed / "src" / "index.js").is_file()
    top = {path.name for path in packed.iterdir()}
    assert top == {"package.json", "README.md", "src", "types"}
    declared = {path.stem.removesuffix(".d") for path in (packed / "types").glob("*.d.ts")}
    assert declared == {path.stem for path in (packed / "src").glob("*.js")}


def test_typescript_consumer_compiles_strict(packed: Path, tmp_path: Path) -> None:
    """A strict TypeScript program importing 'signedws' compiles against the
    packed package: the declarations resolve through the exports map and type
    the client's API (a wrong type is a compile error, checked too)."""
    modules = tmp_path / "node_modules"
    modules.mkdir()
    shutil.copytree(packed, modules / "signedws")
    (modules / "@msgpack").symlink_to(JS / "node_modules" / "@msgpack")
    (tmp_path / "package.json").write_text('{"type": "module", "private": true}\n')
    config = {
        "compilerOptions": {
            "strict": True,
            "noEmit": True,
            "target": "es2022",
            "module": "nodenext",
            "moduleResolution": "nodenext",
            "lib": ["es2022", "dom"],
            "types": [],
        },
        "files": ["index.ts"],
    }
    (tmp_path / "tsconfig.json").write_text(json.dumps(config))
    source = (CONSUMER / "index.ts").read_text()
    (tmp_path / "index.ts").write_text(source)
    result = _tsc("-p", "tsconfig.json", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr

    # The declarations really type the API: passing a number as the URL fails.
    (tmp_path / "index.ts").write_text(source.replace("connect(url,", "connect(42,"))
    result = _tsc("-p", "tsconfig.json", cwd=tmp_path)
    assert result.returncode != 0
    assert "TS2345" in result.stdout


def test_one_version() -> None:
    """The Python and JavaScript packages carry one version number (signedws.__version__)."""
    package = json.loads((JS / "package.json").read_text())
    lock = json.loads((JS / "package-lock.json").read_text())
    assert package["version"] == signedws.__version__
    assert lock["version"] == lock["packages"][""]["version"] == signedws.__version__
