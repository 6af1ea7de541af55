"""`signedws serve` as an operator runs it (issue 17): the example
configuration through the README's walkthroughs, the handler import with and
without --workers, `revoke`'s warnings, and the logs (JSON and text, ISO 8601
times), all with real subprocesses of the `signedws` console script."""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import datetime
import json
import logging
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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
    ("where", "workers"), [("flag", 2), ("file", 1)], ids=["--transport-workers-2", "toml"]
)
def test_serve_on_picows(examples: Path, where: str, workers: int) -> None:
    """`signedws serve --transport picows` (or `[server] transport = "picows"`)
    serves the same handler on the picows server, under --workers too, and
    logs a rejection as on websockets."""
    config = examples / "serve.toml"
    text = config.read_text().replace('handler = "echo"', 'handler = "chat_handler:handler"')
    argv = ["--config", "serve.toml", "--workers", str(workers)]
    if where == "flag":
        argv += ["--transport", "picows"]
    else:
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


# -- metrics, health and the graceful drain of a real `signedws serve` ------------------------


@contextlib.contextmanager
def operated(
    argv: list[str], cwd: Path, stderr_path: Path, env: dict[str, str]
) -> Iterator[tuple[subprocess.Popen[str], str, str]]:
    """`signedws serve ARGV` with metrics: yields the process, its ws:// URI
    and its metrics URL (printed before the "listening on" line). The caller
    stops it; it is killed at the end if it did not stop."""
    with stderr_path.open("w") as stderr:
        proc = subprocess.Popen(  # noqa: S603 - our console script, fixed arguments
            [SIGNEDWS, "serve", *argv],
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
    try:
        assert proc.stdout is not None
        first, second = proc.stdout.readline(), proc.stdout.readline()
        metrics = re.fullmatch(r"metrics on (http://127\.0\.0\.1:\d+/metrics)\n", first)
        ws = re.fullmatch(r"listening on (ws://127\.0\.0\.1:\d+)\n", second)
        assert metrics, f"{first!r}: {stderr_path.read_text()}"
        assert ws, f"{second!r}: {stderr_path.read_text()}"
        yield proc, ws.group(1), metrics.group(1)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


def fetch(url: str) -> tuple[int, str]:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=5) as answer:  # noqa: S310 - loopback
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def samples(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """A scrape of ``url``, parsed by prometheus_client's own parser."""
    from prometheus_client.parser import text_string_to_metric_families

    status, text = fetch(url)
    assert status == 200
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_metrics_of_workers_are_merged_with_a_worker_label(examples: Path) -> None:
    """With --workers 2 and [metrics] listen (from the environment), the
    parent serves both workers' metrics, each sample labelled with its
    worker; the frames accepted across them add up to what was sent."""
    env = {**ENV, "SIGNEDWS_METRICS_LISTEN": "127.0.0.1:0"}
    argv = ["--config", "serve.toml", "--workers", "2"]
    with operated(argv, examples, examples / "stderr.log", env) as (proc, uri, url):

        async def chat() -> None:
            for i in range(6):
                assert await say(uri, examples / "alice.json", f"hello {i}") == f"hello {i}"

        asyncio.run(chat())
        scraped = samples(url)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
    assert scraped[("signedws_worker_up", (("worker", "0"),))] == 1
    assert scraped[("signedws_worker_up", (("worker", "1"),))] == 1
    accepted = {
        labels: value
        for (name, labels), value in scraped.items()
        if name == "signedws_frames_accepted_total" and ("scheme", "mac") in labels
    }
    assert {dict(labels)["worker"] for labels in accepted} == {"0", "1"}
    assert sum(accepted.values()) >= 6
    sizes = [
        v
        for (n, labels), v in scraped.items()
        if n == "signedws_source_size" and ("source", "keyring") in labels
    ]
    assert sizes == [1.0, 1.0]


CONNECTIONS = 200
DRAIN_SECONDS = 2.0
WINDOW = 0.1
#: The most first reconnects a 100 ms window may hold: four times the share an
#: even spread over DRAIN_SECONDS gives it (5%). Closing everything at once
#: (before issue 17) puts all the closes in one window.
BURST_SHARE = 4 * WINDOW / DRAIN_SECONDS
#: The fewest of the drain's 100 ms windows the server's closes must fall in:
#: half of them (an even spread fills them all; closing everything at once,
#: one or two).
SPREAD_SHARE = 0.5


def server_closes(log: str) -> tuple[float, list[float]]:
    """From a ``--log-format json`` log: the time (epoch seconds, to the
    millisecond) of the "draining: closing" line, and those of the "connection
    closed" lines with close code 1001, sorted."""
    start: list[float] = []
    closes: list[float] = []
    for line in log.splitlines():
        record = json.loads(line)
        message = record["message"]
        when = parse_time(record["time"]).timestamp()
        if message.startswith("draining: closing "):
            start.append(when)
        elif message.startswith("connection closed ") and " close_code=1001 " in message:
            closes.append(when)
    assert len(start) == 1, log
    return start[0], sorted(closes)


def test_sigterm_drains_connections_without_a_reconnect_burst(examples: Path) -> None:
    """A real `signedws serve` with 200 open connections from reconnecting
    clients gets SIGTERM: /readyz turns 503 at once while the connections
    are still open, new handshakes get 503, the server closes every
    connection with 1001, spread over drain_seconds, acknowledging what it
    delivered, then exits 0.

    The close times are the server's own: its "connection closed" lines'
    times (``--log-format json``, to the millisecond). They fall in at least
    SPREAD_SHARE of the drain's 100 ms windows and span most of
    drain_seconds. No bound on their busiest window: the server logs a close
    once the client answers its closing handshake, so a stall of the one
    client process holding all 200 connections bunches these times too (an
    injected 0.5 s stall put 62 in one window), as it bunched the times the
    clients saw (36 in one window during `make test`); a stall only empties a
    few windows. The first reconnect times are the clients' (each close seen
    plus the jittered backoff delay it logs; full jitter spreads over a second
    what a stall bunched): no 100 ms window holds more than BURST_SHARE of
    them, and they span most of drain_seconds."""
    from signedws.asyncio import Backoff

    env = {
        **ENV,
        "SIGNEDWS_METRICS_LISTEN": "127.0.0.1:0",
        "SIGNEDWS_SERVER_DRAIN_SECONDS": str(DRAIN_SECONDS),
    }
    reconnects: list[float] = []

    class Reconnects(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            message = record.getMessage()
            if message.startswith("reconnecting to") and "(close code 1001, attempt 1)" in message:
                reconnects.append(record.created + float(record.args[1]))  # type: ignore[index]

    client_log = logging.getLogger("signedws.client")
    handler = Reconnects()
    client_log.addHandler(handler)
    saved = client_log.level
    client_log.setLevel(logging.INFO)
    stderr_path = examples / "stderr.log"
    argv = ["--config", "serve.toml", "--log-format", "json"]
    try:
        with operated(argv, examples, stderr_path, env) as (proc, uri, url):
            base = "http" + uri.removeprefix("ws")

            async def main() -> tuple[float, list[tuple[int, str]]]:
                credential = load_credential(examples / "alice.json")
                backoff = Backoff(initial=1.0, maximum=2.0)
                clients = []
                gate = asyncio.Semaphore(20)

                async def open_one(i: int) -> Any:
                    async with gate:
                        client = await connect(uri, credential, audience=AUDIENCE, backoff=backoff)
                        await client.send(f"m{i}")
                        assert await asyncio.wait_for(client.recv(), 30) == f"m{i}"
                        return client

                async with asyncio.timeout(120):
                    clients = await asyncio.gather(*(open_one(i) for i in range(CONNECTIONS)))
                    scraped = await asyncio.to_thread(samples, url)
                    open_mac = scraped[("signedws_connections_open", (("scheme", "mac"),))]
                    proc.send_signal(signal.SIGTERM)
                    probes = [await asyncio.to_thread(fetch, f"{base}/readyz")]
                    probes.append(await asyncio.to_thread(fetch, f"{base}/healthz"))
                    while len(reconnects) < CONNECTIONS and proc.poll() is None:
                        await asyncio.sleep(0.05)
                    await asyncio.sleep(0.2)
                    for client in clients:
                        await client.close()
                return open_mac, probes

            open_mac, probes = asyncio.run(main())
            assert proc.wait(timeout=30) == 0, stderr_path.read_text()
    finally:
        client_log.removeHandler(handler)
        client_log.setLevel(saved)
    log = stderr_path.read_text()
    messages = [json.loads(line)["message"] for line in log.splitlines()]
    assert open_mac == CONNECTIONS
    assert probes[0][0] == 503
    assert "draining" in probes[0][1]
    assert probes[1] == (200, "ok\n")
    assert f"draining: closing {CONNECTIONS} connections over 2 s (1001, with jitter)" in messages
    assert "drained" in messages
    assert not [m for m in messages if "cut short" in m]
    started, closes = server_closes(log)
    assert len(closes) == CONNECTIONS
    windows = {math.floor((t - started) / WINDOW) for t in closes}
    assert min(windows) >= 0
    assert len(windows) >= round(SPREAD_SHARE * DRAIN_SECONDS / WINDOW), sorted(windows)
    assert closes[-1] - closes[0] >= DRAIN_SECONDS / 2
    assert len(reconnects) == CONNECTIONS
    reconnects.sort()
    limit = math.ceil(BURST_SHARE * CONNECTIONS)
    assert busiest(reconnects) <= limit, (busiest(reconnects), limit)
    assert reconnects[-1] - reconnects[0] >= DRAIN_SECONDS / 2
    print(  # the measurement, for the report (pytest -s)
        f"drain: {CONNECTIONS} closes at the server over {closes[-1] - closes[0]:.2f} s in "
        f"{len(windows)} {WINDOW * 1000:g} ms windows (busiest {busiest(closes)}); first "
        f"reconnects over {reconnects[-1] - reconnects[0]:.2f} s, busiest window "
        f"{busiest(reconnects)} (limit {limit})"
    )


def busiest(times: list[float]) -> int:
    """The most of the sorted ``times`` that one WINDOW-long window holds."""
    return max(bisect.bisect_right(times, t + WINDOW) - i for i, t in enumerate(times))


def test_readiness_and_reload_metrics_follow_the_revocation_file(examples: Path) -> None:
    """/readyz turns 503 naming the file when the revocation file stops
    loading, and 200 again once it loads; the reload counters say so, with
    the entries in force; no probe logs a line."""
    env = {**ENV, "SIGNEDWS_METRICS_LISTEN": "127.0.0.1:0"}
    stderr_path = examples / "stderr.log"
    revoked = examples / "revoked.json"

    def wait_for(url: str, status: int) -> tuple[int, str]:
        deadline = time.monotonic() + 15
        answer = fetch(url)
        while answer[0] != status and time.monotonic() < deadline:
            time.sleep(0.1)
            answer = fetch(url)
        return answer

    with operated(["--config", "serve.toml"], examples, stderr_path, env) as (proc, uri, url):
        ready = "http" + uri.removeprefix("ws") + "/readyz"
        first = fetch(ready)
        revoked.write_text("{not json")
        broken = wait_for(ready, 503)
        after_break = samples(url)
        tmp = examples / "revoked.tmp"
        tmp.write_text('{"credentials": [{"iss": "login", "cid": "c1"}], "subjects": []}')
        os.replace(tmp, revoked)
        fixed = wait_for(ready, 200)
        after_fix = samples(url)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    assert first == (200, "ready\n")
    assert broken == (503, "not ready\nrevocations: the last reload of revoked.json failed\n")
    assert fixed == (200, "ready\n")
    failed = ("signedws_reloads_total", (("result", "failed"), ("source", "revocations")))
    ok = ("signedws_reloads_total", (("result", "ok"), ("source", "revocations")))
    assert after_break[failed] == 1
    assert after_fix[ok] == 1
    assert after_fix[("signedws_source_size", (("source", "revocations"),))] == 1
    log = stderr_path.read_text()
    assert log.count("reload failed") == 1
    assert "readyz" not in log


def test_workers_pass_sigterm_on_and_each_drains(examples: Path) -> None:
    """Under --workers 2, SIGTERM to the parent reaches both workers: each
    drains (its open connections closed with 1001, going away), and the
    parent exits 0."""
    from websockets.asyncio.client import connect as ws_connect

    from signedws.envelope import decode_hello
    from signedws.signer import Signer

    env = {**ENV, "SIGNEDWS_METRICS_LISTEN": "127.0.0.1:0", "SIGNEDWS_SERVER_DRAIN_SECONDS": "1"}
    stderr_path = examples / "stderr.log"
    argv = ["--config", "serve.toml", "--workers", "2"]
    credential = load_credential(examples / "alice.json")
    with operated(argv, examples, stderr_path, env) as (proc, uri, _):

        async def main() -> list[int | None]:
            async with contextlib.AsyncExitStack() as stack:
                sockets = []
                for i in range(8):
                    ws = await stack.enter_async_context(
                        ws_connect(uri, subprotocols=["signedws.v1"])  # type: ignore[list-item]
                    )
                    hello = await ws.recv()
                    assert isinstance(hello, bytes)
                    signer = Signer(credential, decode_hello(hello), now=time.time())
                    await ws.send(signer.sign(f"m{i}", now=time.time()))
                    assert isinstance(await ws.recv(), bytes)  # the echo
                    sockets.append(ws)
                proc.send_signal(signal.SIGTERM)
                for ws in sockets:
                    with contextlib.suppress(Exception):
                        async with asyncio.timeout(10):
                            while True:
                                await ws.recv()
                return [ws.close_code for ws in sockets]

        codes = asyncio.run(main())
        assert proc.wait(timeout=60) == 0, stderr_path.read_text()
    assert codes == [1001] * 8
    log = stderr_path.read_text()
    assert log.count("draining: closing") == 2
    assert log.count(" drained") == 2


def test_serve_with_issuer_answers_probes_and_drains(examples: Path) -> None:
    """`serve` with [issuer] (uvicorn, the ASGI adapter): /healthz and
    /readyz on the port, metrics, and the drain on SIGTERM: readiness fails,
    open connections close with 1001, exit 0."""
    from websockets.asyncio.client import connect as ws_connect

    from signedws.envelope import decode_hello
    from signedws.signer import Signer

    (examples / "h17_login.py").write_text(
        "async def login(request):\n    raise LookupError('no logins in this test')\n"
    )
    config = examples / "serve.toml"
    config.write_text(
        config.read_text()
        + '\n[issuer]\nname = "login"\nmac_key = "issuer.jwk"\nauthenticate = "h17_login:login"\n'
    )
    env = {**ENV, "SIGNEDWS_METRICS_LISTEN": "127.0.0.1:0", "SIGNEDWS_SERVER_DRAIN_SECONDS": "1"}
    stderr_path = examples / "stderr.log"
    credential = load_credential(examples / "alice.json")
    with operated(["--config", "serve.toml"], examples, stderr_path, env) as (proc, uri, url):
        base = "http" + uri.removeprefix("ws")
        probes = [fetch(f"{base}/healthz"), fetch(f"{base}/readyz")]

        async def main() -> tuple[list[int | None], tuple[int, str]]:
            async with contextlib.AsyncExitStack() as stack:
                sockets = []
                for i in range(3):
                    ws = await stack.enter_async_context(
                        ws_connect(f"{uri}/ws", subprotocols=["signedws.v1"])  # type: ignore[list-item]
                    )
                    hello = await ws.recv()
                    assert isinstance(hello, bytes)
                    signer = Signer(credential, decode_hello(hello), now=time.time())
                    await ws.send(signer.sign(f"m{i}", now=time.time()))
                    assert isinstance(await ws.recv(), bytes)
                    sockets.append(ws)
                opened = await asyncio.to_thread(samples, url)
                assert opened[("signedws_connections_open", (("scheme", "mac"),))] == 3
                proc.send_signal(signal.SIGTERM)
                draining = await asyncio.to_thread(fetch, f"{base}/readyz")
                for ws in sockets:
                    with contextlib.suppress(Exception):
                        async with asyncio.timeout(10):
                            while True:
                                await ws.recv()
                return [ws.close_code for ws in sockets], draining

        codes, draining = asyncio.run(main())
        assert proc.wait(timeout=30) == 0, stderr_path.read_text()
    assert probes == [(200, "ok\n"), (200, "ready\n")]
    assert draining == (503, "not ready\ndraining\n")
    assert codes == [1001] * 3
    log = stderr_path.read_text()
    assert "draining: closing 3 connections" in log
    assert "drained" in log
    assert "WARNING" not in log


# -- [server].trusted_proxies reaches serve() (issue 17 on issue 15's pump) -------------------


async def forwarded_for(uri: str, address: str) -> None:
    """A handshake through a "proxy" that names the client ``address``; the
    hello read, then a normal close."""
    from websockets.asyncio.client import connect as ws_connect

    async with ws_connect(
        uri,
        subprotocols=["signedws.v1"],  # type: ignore[list-item]
        additional_headers={"X-Forwarded-For": address},
    ) as ws:
        assert isinstance(await ws.recv(), bytes)


@pytest.mark.parametrize("trusted", [True, False])
def test_trusted_proxies_name_the_client_address_in_the_log(examples: Path, trusted: bool) -> None:
    """With ``[server].trusted_proxies`` covering the peer (loopback), the
    connection log lines give the address X-Forwarded-For names; without it,
    the peer's own address, whatever the header says."""
    env = {**ENV, "SIGNEDWS_SERVER_TRUSTED_PROXIES": '["127.0.0.1/32"]'} if trusted else ENV
    stderr = examples / "stderr.log"
    with serving(["--config", "serve.toml"], examples, stderr, env) as uri:
        asyncio.run(forwarded_for(uri, "203.0.113.7"))
        time.sleep(0.2)  # let the close line reach the file
    lines = [line for line in stderr.read_text().splitlines() if "connection " in line]
    opened = [line for line in lines if "connection opened" in line]
    closed = [line for line in lines if "connection closed" in line]
    assert len(opened) == 1, lines
    assert len(closed) == 1, lines
    expected = "203.0.113.7" if trusted else "127.0.0.1"
    for line in (opened[0], closed[0]):
        assert f"address={expected} " in f"{line} ", line
