"""`signedws serve` as an operator runs it (issue 17): the example
configuration through the README's walkthroughs, the handler import with and
without --workers, `revoke`'s warnings, and the logs (JSON and text, ISO 8601
times), all with real subprocesses of the `signedws` console script."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from signedws.asyncio import Refused, connect
from signedws.config import load_config, load_credential
from signedws.errors import Code
from signedws.logformat import JSONFormatter, TextFormatter, When, iso_time

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
SIGNEDWS = str(BIN / "signedws")  # the console script, as a user runs it
ENV = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
AUDIENCE = "wss://chat.example"  # examples/serve.toml's


@pytest.fixture
def examples(tmp_path: Path) -> Path:
    """A copy of examples/ after `sh setup.sh`, as README's walkthrough makes
    it; serve.toml changed only to listen on any free port."""
    directory = tmp_path / "examples"
    shutil.copytree(REPO / "examples", directory)
    subprocess.run(["sh", "setup.sh"], cwd=directory, env=ENV, check=True, capture_output=True)  # noqa: S607 - sh from PATH
    config = directory / "serve.toml"
    text = config.read_text()
    assert "port = 8765\n" in text
    config.write_text(text.replace("port = 8765\n", "port = 0\n"))
    return directory


@contextlib.contextmanager
def serving(
    argv: list[str], cwd: Path, stderr_path: Path, env: dict[str, str] | None = None
) -> Iterator[str]:
    """`signedws serve ARGV` in ``cwd``; yields its ws:// URI; SIGTERM at the
    end, and it must exit 0."""
    with stderr_path.open("w") as stderr:
        proc = subprocess.Popen(  # noqa: S603 - our console script, fixed arguments
            [SIGNEDWS, "serve", *argv],
            cwd=cwd,
            env=env or ENV,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        match = re.fullmatch(r"listening on (ws://127\.0\.0\.1:\d+)\n", line)
        assert match, f"{line!r}: {stderr_path.read_text()}"
        yield match.group(1)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0, stderr_path.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


async def say(uri: str, credential_path: Path, text: str) -> object:
    async with connect(uri, load_credential(credential_path), audience=AUDIENCE) as client:
        await client.send(text)
        return await asyncio.wait_for(client.recv(), 10)


def run(cwd: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - our console script, fixed arguments
        [SIGNEDWS, *argv], cwd=cwd, env=ENV, capture_output=True, text=True, check=False
    )


# -- the example configuration runs README's walkthroughs ------------------------------------


def test_example_config_runs_the_revocation_walkthrough(examples: Path) -> None:
    """From examples/, after setup.sh: `signedws serve --config serve.toml`
    serves alice; README's `signedws revoke --file revoked.json --issuer login
    --subject alice` changes the very file that server watches, without a
    warning, and the server refuses alice from then on (it used to keep
    serving her: serve.toml named no revocation file)."""
    config = load_config(examples / "serve.toml")
    assert config.revocations == examples / "revoked.json"
    assert config.server_key == examples / "server.jwk"
    with serving(["--config", "serve.toml"], examples, examples / "stderr.log") as uri:
        # README's client (examples/client.py), on this server's port.
        port = uri.rsplit(":", 1)[1]
        client = examples / "client.py"
        client.write_text(client.read_text().replace("8765", port))
        result = subprocess.run(
            [sys.executable, "client.py"],
            cwd=examples,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert (result.returncode, result.stdout) == (0, "hello\n"), result.stderr
        result = run(
            examples, "revoke", "--file", "revoked.json", "--issuer", "login", "--subject", "alice"
        )
        assert result.returncode == 0, result.stderr
        assert result.stderr == ""  # the file the server watches: nothing to warn about

        async def refused() -> Refused:
            async with asyncio.timeout(15):  # reload_interval = 1.0
                while True:
                    try:
                        await say(uri, examples / "alice.json", "still here?")
                    except Refused as exc:
                        return exc
                    await asyncio.sleep(0.1)

        assert asyncio.run(refused()).code is Code.CREDENTIAL_REVOKED
    log = (examples / "stderr.log").read_text()
    assert "reloaded revocations" in log


def test_revoke_warns_about_a_file_no_server_watches(examples: Path) -> None:
    """`revoke --file` of a file that did not exist warns (no running server
    can be watching it); with --config, a file other than the configured one
    warns, naming the watched one; the configured one does not."""
    other = run(
        examples, "revoke", "--file", "revoked-typo.json", "--issuer", "login", "--cid", "c1"
    )
    assert other.returncode == 0
    assert "warning: revoked-typo.json did not exist: no running server watches it" in (
        other.stderr
    )
    checked = run(
        examples, "revoke", "--file", "revoked-typo.json", "--config", "serve.toml",
        "--issuer", "login", "--cid", "c2",
    )  # fmt: skip
    assert checked.returncode == 0
    assert "revoked-typo.json is not the file that a server run with serve.toml watches" in (
        checked.stderr
    )
    assert str(examples / "revoked.json") in checked.stderr
    same = run(
        examples, "revoke", "--file", "revoked.json", "--config", "serve.toml",
        "--issuer", "login", "--cid", "c3",
    )  # fmt: skip
    assert (same.returncode, same.stderr) == (0, "")
    redis = run(
        examples, "revoke", "--redis", "redis://:pw@127.0.0.1:1/0", "--config", "serve.toml",
        "--issuer", "login", "--cid", "c4",
    )  # fmt: skip
    assert "redis://:***@127.0.0.1:1/0 is not the Redis that a server run with serve.toml" in (
        redis.stderr
    )
    assert ":pw@" not in redis.stderr
    both = run(
        examples,
        "revoke",
        "--file",
        "a.json",
        "--redis",
        "redis://h/0",
        "--issuer",
        "l",
        "--cid",
        "c",
    )
    assert both.returncode == 2
    assert "give one" in both.stderr
    neither = run(examples, "revoke", "--issuer", "l", "--cid", "c")
    assert (neither.returncode, "give --file, --redis or --config" in neither.stderr) == (2, True)


@pytest.mark.parametrize(
    ("workers", "from_parent"),
    [(1, False), (2, False), (1, True)],
    ids=["single-process", "workers-2", "single-process-from-elsewhere"],
)
def test_handler_imports_with_and_without_workers(
    examples: Path, workers: int, from_parent: bool
) -> None:
    """`handler = "chat_handler:handler"` (chat_handler.py next to
    serve.toml) imports in single-process serve as under --workers, from the
    config's directory or another one. It failed with "No module named
    'chat_handler'" in the `signedws` console script, whose sys.path holds its
    bin directory, not the current one (`python -m signedws`, which starts the
    workers, has the current directory)."""
    config = examples / "serve.toml"
    text = config.read_text()
    config.write_text(text.replace('handler = "echo"', 'handler = "chat_handler:handler"'))
    cwd = examples.parent if from_parent else examples
    argv = ["--config", str(config.relative_to(cwd)), "--workers", str(workers)]
    with serving(argv, cwd, examples / "stderr.log") as uri:
        assert asyncio.run(say(uri, examples / "alice.json", "hi")) == "alice: hi"
    assert "No module named" not in (examples / "stderr.log").read_text()


@pytest.mark.parametrize(
    ("where", "workers", "loop"),
    [("flag", 2, "asyncio"), ("file", 1, "asyncio"), ("websockets", 1, "uvloop")],
    ids=["--transport-workers-2", "toml", "websockets-on-uvloop"],
)
def test_serve_on_picows(examples: Path, where: str, workers: int, loop: str) -> None:
    """`signedws serve --transport picows` (or `[server] transport = "picows"`)
    serves the same handler on the picows server, under --workers too, and
    logs a rejection as on websockets; `--loop uvloop` serves as well."""
    config = examples / "serve.toml"
    text = config.read_text().replace('handler = "echo"', 'handler = "chat_handler:handler"')
    argv = ["--config", "serve.toml", "--workers", str(workers), "--loop", loop]
    if where == "flag":
        argv += ["--transport", "picows"]
    elif where == "file":
        assert "[server]\n" in text
        text = text.replace("[server]\n", '[server]\ntransport = "picows"\n')
    config.write_text(text)
    with serving(argv, examples, examples / "stderr.log") as uri:
        assert asyncio.run(say(uri, examples / "alice.json", "hi")) == "alice: hi"
        asyncio.run(forge(uri, examples / "alice.json"))
    logged = (examples / "stderr.log").read_text()
    assert "code=bad_tag" in logged, logged


# -- logs ---------------------------------------------------------------------------------------

ISO = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"


def parse_time(text: str) -> datetime.datetime:
    assert re.fullmatch(ISO, text), text
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))


async def forge(uri: str, credential_path: Path) -> None:
    """A frame with a broken tag, which the server rejects (and logs)."""
    from websockets.asyncio.client import connect as ws_connect

    from signedws import Signer
    from signedws.envelope import decode_hello

    async with ws_connect(uri, subprotocols=["signedws.v1"]) as ws:  # type: ignore[list-item]
        hello = await ws.recv()
        assert isinstance(hello, bytes)
        signer = Signer(load_credential(credential_path), decode_hello(hello), now=time.time())
        frame = signer.sign("forged", now=time.time())
        await ws.send(frame[:-1] + bytes([frame[-1] ^ 1]))
        with contextlib.suppress(Exception):
            await asyncio.wait_for(ws.recv(), 5)


@pytest.mark.parametrize("workers", [1, 2])
def test_json_logs_from_a_real_server(examples: Path, workers: int) -> None:
    """`serve --log-format json`: every stderr line is one JSON object with
    time (ISO 8601, UTC), level, logger and message (and the worker's index
    under --workers), the rejection line included; the keys the environment
    set are named, their values never shown; no secret appears."""
    secret_origin = "https://s3cret-origin.example"
    env = {
        **ENV,
        "SIGNEDWS_SERVER_ORIGINS": f'["{secret_origin}"]',
        "SIGNEDWS_LIMITS_IDLE_TIMEOUT": "77.5",
    }
    stderr = examples / "stderr.log"
    argv = ["--config", "serve.toml", "--log-format", "json", "--workers", str(workers)]
    before = datetime.datetime.now(datetime.UTC) - datetime.timedelta(seconds=1)
    with serving(argv, examples, stderr, env) as uri:
        assert asyncio.run(say(uri, examples / "alice.json", "hello")) == "hello"
        asyncio.run(forge(uri, examples / "alice.json"))
        time.sleep(0.2)  # let the rejection's line reach the file
    after = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=1)
    text = stderr.read_text()
    records = [json.loads(line) for line in text.splitlines()]
    assert records, text
    for record in records:
        assert set(record) - {"worker"} == {"time", "level", "logger", "message"}, record
        assert before <= parse_time(record["time"]) <= after
        assert record["level"] in {"DEBUG", "INFO", "WARNING", "ERROR"}
    messages = [r["message"] for r in records]
    assert any("listening on ws://127.0.0.1:" in m for m in messages)
    assert any("code=bad_tag number=400" in m for m in messages), messages
    assert any(
        m == "configuration keys set by the environment: [limits].idle_timeout, [server].origins"
        for m in messages
    ), messages
    if workers == 2:
        assert {r["worker"] for r in records if "worker" in r} == {0, 1}
    credential = json.loads((examples / "alice.json").read_text())
    for secret in (credential["token"], credential["frame_key"], secret_origin, "77.5"):
        assert secret not in text


def test_text_logs_have_iso_times(examples: Path) -> None:
    """The default text format starts every line with an ISO 8601 UTC time."""
    stderr = examples / "stderr.log"
    with serving(["--config", "serve.toml"], examples, stderr) as uri:
        asyncio.run(forge(uri, examples / "alice.json"))
        time.sleep(0.2)
    lines = stderr.read_text().splitlines()
    assert lines
    for line in lines:
        match = re.match(rf"({ISO}) (INFO|WARNING|ERROR|DEBUG) signedws[\w.]*: ", line)
        assert match, line
        parse_time(match.group(1))
    assert any("code=bad_tag" in line for line in lines)


def test_formatters_and_when() -> None:
    """The formatters' fields, the traceback of an exception, and the times
    printed for expiry: epoch seconds and ISO 8601 side by side."""
    import logging

    record = logging.LogRecord("signedws.x", logging.ERROR, __file__, 1, "a %s", ("b",), None)
    record.created = 0.0
    try:
        raise ValueError("boom")  # noqa: TRY301 - a traceback to format
    except ValueError:
        record.exc_info = sys.exc_info()
    record.stack_info = "Stack (most recent call last):"
    document = json.loads(JSONFormatter(worker=3).format(record))
    assert document["time"] == "1970-01-01T00:00:00.000Z"
    assert (document["level"], document["logger"], document["message"]) == (
        "ERROR",
        "signedws.x",
        "a b",
    )
    assert document["worker"] == 3
    assert "ValueError: boom" in document["exception"]
    assert document["stack"].startswith("Stack")
    line = TextFormatter(worker=1).format(record).splitlines()[0]
    assert line == "1970-01-01T00:00:00.000Z ERROR signedws.x [worker 1]: a b"
    assert f"{When(1765026854)}" == "1765026854 (2025-12-06T13:14:14.000Z)"
    assert str(When(1.5)) == "1.500 (1970-01-01T00:00:01.500Z)"
    assert repr(When(10**20)) == f"{10**20} (out of range)"
    assert iso_time(-1e20) == "out of range"
