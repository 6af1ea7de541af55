"""Running the examples in examples/ as a user would: a server subprocess,
then examples/client.py against it, retried while the server starts."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path


def run_example_client(
    server: subprocess.Popen[str], cwd: Path, python: str = sys.executable
) -> str:
    """Run ``client.py`` in ``cwd`` with ``python`` until it succeeds against
    ``server`` (up to 10 s while the server starts), stop the server, and
    return the client's output. Fails the test with the client's stderr
    otherwise."""
    try:
        deadline = time.monotonic() + 10
        while True:
            result = subprocess.run(  # noqa: S603 - our example, fixed arguments
                [python, "client.py"],
                cwd=cwd,
                capture_output=True,
                text=True,
                timeout=20,
                check=False,
            )
            if result.returncode == 0 or time.monotonic() > deadline:
                break
            time.sleep(0.1)  # the server is still starting
        assert result.returncode == 0, result.stderr
        return result.stdout
    finally:
        server.terminate()
        server.wait(timeout=10)
        if server.stderr is not None:
            server.stderr.close()
