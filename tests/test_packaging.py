"""The Python package as users get it: the sdist and the wheel carry what they
should, and the wheel installed into a clean virtual environment, with none of
the development dependencies, runs the examples against each other.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest
from example_support import run_example_client

import signedws

ROOT = Path(__file__).resolve().parents[1]

#: What README links to, beside the package: the sdist carries all of it.
SDIST_DOCUMENTS = (
    "LICENSE",
    "README.md",
    "SPEC.md",
    "SECURITY.md",
    "CHANGELOG.md",
    "docs/configuration.md",
)


def _run(*command: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(  # noqa: S603 - fixed argument lists, no shell
        command, capture_output=True, text=True, timeout=300, check=False, **kwargs
    )
    assert result.returncode == 0, f"{command}: {result.stdout}\n{result.stderr}"
    return result


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``python -m build``: the sdist, then the wheel built from that sdist (so a
    file the sdist forgets breaks the wheel), with the locked setuptools."""
    out = tmp_path_factory.mktemp("dist")
    _run(sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(ROOT))
    return out


def _only(folder: Path, pattern: str) -> Path:
    (path,) = folder.glob(pattern)
    return path


def test_wheel_carries_the_package_only(dist: Path) -> None:
    """The wheel holds signedws/ (with py.typed) and its metadata, nothing else."""
    wheel = _only(dist, f"signedws-{signedws.__version__}-py3-none-any.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
    metadata = f"signedws-{signedws.__version__}.dist-info/"
    assert "signedws/py.typed" in names
    assert "signedws/asyncio/__init__.py" in names
    assert [n for n in names if not n.startswith(("signedws/", metadata))] == []
    assert f"{metadata}licenses/LICENSE" in names


def test_sdist_carries_what_readme_links_to(dist: Path) -> None:
    """The sdist has the license, the spec, the security notes, the changelog,
    the conformance vectors and the examples."""
    sdist = _only(dist, f"signedws-{signedws.__version__}.tar.gz")
    with tarfile.open(sdist) as archive:
        names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    for document in SDIST_DOCUMENTS:
        assert document in names
    vectors = {p.relative_to(ROOT).as_posix() for p in (ROOT / "vectors").glob("*.json")}
    assert vectors
    assert vectors <= names
    assert {"examples/server.py", "examples/client.py", "examples/setup.sh"} <= names
    assert not any("__pycache__" in name for name in names)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_installed_wheel_runs_the_examples(dist: Path, tmp_path: Path) -> None:
    """In a clean venv holding only the wheel and its runtime dependencies (at
    the locked versions), examples/setup.sh, server.py and client.py work."""
    venv = tmp_path / "venv"
    _run(sys.executable, "-m", "venv", str(venv))
    python = str(venv / "bin" / "python")
    # The lock's pins as constraints: the runtime dependencies at the tested versions.
    constraints = tmp_path / "constraints.txt"
    pins = [
        line.split(";")[0].split()[0]
        for line in (ROOT / "requirements.lock").read_text().splitlines()
        if "==" in line and not line.startswith((" ", "#"))
    ]
    constraints.write_text("\n".join(pins) + "\n")
    wheel = _only(dist, "signedws-*.whl")
    _run(python, "-m", "pip", "install", "--quiet", "-c", str(constraints), str(wheel))

    installed = _run(python, "-m", "pip", "list", "--format=freeze").stdout
    names = {line.split("==")[0].lower() for line in installed.splitlines()}
    assert {"signedws", "cryptography", "msgpack", "pynacl", "websockets"} <= names
    assert not names & {"pytest", "mypy", "hypothesis", "starlette", "redis", "uvicorn"}

    work = tmp_path / "work"  # not the checkout: signedws must come from the venv
    work.mkdir()
    where = _run(python, "-c", "import signedws; print(signedws.__file__)", cwd=work).stdout
    assert where.startswith(str(venv)), where

    env = {**os.environ, "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}"}
    env.pop("PYTHONPATH", None)
    _run("sh", str(ROOT / "examples" / "setup.sh"), cwd=work, env=env)
    port = str(_free_port())
    for name in ("server.py", "client.py"):
        text = (ROOT / "examples" / name).read_text().replace("8765", port)
        (work / name).write_text(text)
    server = subprocess.Popen(  # noqa: S603 - fixed argument list, no shell
        [python, "server.py"], cwd=work, env=env, stderr=subprocess.PIPE, text=True
    )
    assert run_example_client(server, work, python) == "alice said hello\n"
