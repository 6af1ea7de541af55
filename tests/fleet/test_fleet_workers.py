"""``signedws serve --workers N`` (issue 7): worker processes sharing one port
with SO_REUSEPORT, each with its own node id, with the embedded defaults: a
revocation file and a keyring file that every worker reloads. Nothing but
Python is needed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import pytest
from fleet_support import (
    ISSUER,
    FleetKeys,
    Node,
    accepted,
    first_frame_code,
    nodes_running,
    open_raw,
    refused_after,
    revoke,
)
from websockets.asyncio.client import ClientConnection as WebSocket
from websockets.exceptions import ConnectionClosed

from signedws import HMACKey, MACCredential, Signer

WORKERS: Final = 3


@dataclass
class Workers:
    keys: FleetKeys
    node: Node
    revoked: Path


@pytest.fixture(scope="module")
def workers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workers]:
    """One ``signedws serve`` with three workers, reloading its files every 0.1 s."""
    base = tmp_path_factory.mktemp("workers")
    keys = FleetKeys.create(base / "keys")
    (base / "record").mkdir()
    revoked = keys.directory / "revoked.json"
    revoked.write_text(json.dumps({"credentials": [], "subjects": []}))
    config = keys.config(
        "workers.toml",
        server={"workers": WORKERS, "node_id": "0123456789abcdef"},
        keys={"revocations": "revoked.json", "reload_interval": 0.1},
    )
    node = Node(config, base / "serve.log", base / "record")
    with nodes_running(node):
        yield Workers(keys, node, revoked)


async def on_every_worker(
    uri: str, credential: MACCredential, count: int = WORKERS
) -> dict[str, tuple[WebSocket, Signer]]:
    """One open connection per worker (by the node id in its hello), its first
    frame accepted. The kernel spreads connections over the workers by a hash,
    so this opens connections until each worker has one (at most 90); a
    connection refused (a worker that has not reloaded yet) is one attempt."""
    found: dict[str, tuple[WebSocket, Signer]] = {}
    for _ in range(90):
        ws, signer = await open_raw(uri, credential)
        node_id = signer.hello.nonce[1:9].hex()
        if node_id in found:
            await ws.close()
            continue
        try:
            await accepted(ws, signer, "first")
        except ConnectionClosed:
            await asyncio.sleep(0.02)
            continue
        found[node_id] = ws, signer
        if len(found) == count:
            return found
    raise AssertionError(f"reached {len(found)} of {count} workers")


def test_workers_share_the_port_with_their_own_node_ids(workers: Workers, run: Any) -> None:
    """Three workers listen on one port; each mints nonces under its own node
    id, derived from the configured one, and logs it at start."""
    ids = workers.node.node_ids
    assert len(set(ids)) == WORKERS
    assert "0123456789abcdef" not in ids  # derived per worker, not shared
    assert f"{WORKERS} workers listening on {workers.node.uri}" in workers.node.text()

    async def main() -> set[str]:
        found = await on_every_worker(workers.node.uri, workers.keys.token("alice"))
        for ws, _ in found.values():
            await ws.close()
        return set(found)

    assert run(main()) == set(ids)


def test_a_revocation_file_reaches_every_worker(
    workers: Workers, run: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """`signedws revoke --file` rewrites the file atomically; every worker
    reloads it and refuses the credential's next frame (4403)."""
    credential = workers.keys.token("erin", cid="erin-1")

    async def main() -> list[float]:
        found = await on_every_worker(workers.node.uri, credential)
        start = time.monotonic()
        done = await asyncio.to_thread(
            revoke, "--file", str(workers.revoked), "--issuer", ISSUER, "--cid", "erin-1"
        )
        assert done.returncode == 0, done.stderr
        return await asyncio.gather(*(refused_after(ws, s, start) for ws, s in found.values()))

    times = run(main())
    document = json.loads(workers.revoked.read_text())
    assert document["credentials"] == [{"iss": ISSUER, "cid": "erin-1"}]
    with capsys.disabled():
        each = ", ".join(f"{t * 1000:.0f} ms" for t in times)
        print(f"\n[fleet] revocation file (reload every 0.1 s) refused on every worker in {each}")
    assert workers.node.text().count("reloaded revocations") >= WORKERS


def test_key_rotation_across_workers(workers: Workers, run: Any) -> None:
    """A new issuer key added to the keyring file works on every worker;
    credentials under the old key keep working until the old key is retired,
    then every worker refuses them at their next frame (unknown_key, 4401)."""
    keys = workers.keys
    new_secret = HMACKey.generate()
    old = keys.token("frank")
    new = keys.token("frank", secret=new_secret, kid="k2")

    async def main() -> None:
        found = await on_every_worker(workers.node.uri, old)
        # Before the new key is trusted, its credentials are refused.
        assert await first_frame_code(workers.node.uri, new) == 4401
        keys.write_keyring([("k1", keys.secret, None), ("k2", new_secret, None)])
        for ws, _ in (await on_every_worker(workers.node.uri, new)).values():
            await ws.close()  # the new key works everywhere
        for ws, signer in found.values():
            await accepted(ws, signer, "old key, still trusted")
        keys.write_keyring([("k1", keys.secret, int(time.time())), ("k2", new_secret, None)])
        start = time.monotonic()
        for ws, signer in found.values():
            async with asyncio.timeout(10):
                while ws.close_code is None:
                    with contextlib.suppress(ConnectionClosed):
                        await accepted(ws, signer, "old key, retired?")
                    await asyncio.sleep(0.02)
            assert ws.close_code == 4401
        assert time.monotonic() - start < 10
        on_new = await on_every_worker(workers.node.uri, new)
        for ws, signer in on_new.values():
            await accepted(ws, signer, "new key")
            await ws.close()

    run(main(), timeout=60)
    assert workers.node.text().count("code=unknown_key") >= WORKERS + 1


def gone(pid: int) -> bool:
    """Whether process ``pid`` has exited (a zombie waiting to be reaped counts)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return True
    return state in ("Z", "X")


@pytest.mark.parametrize("how", ["sigterm", "worker dies", "parent killed"])
def test_the_parent_manages_its_workers(tmp_path: Path, how: str) -> None:
    """The parent passes SIGHUP on (every worker reloads) and SIGTERM (every
    worker stops, exit 0); a worker that dies makes it stop the others (exit
    1); workers whose parent is killed stop by themselves."""
    keys = FleetKeys.create(tmp_path / "keys")
    (tmp_path / "record").mkdir()
    (keys.directory / "revoked.json").write_text('{"credentials": [], "subjects": []}')
    config = keys.config(
        "two.toml",
        server={"workers": 2},
        keys={"revocations": "revoked.json", "reload_interval": 0},
    )
    node = Node(config, tmp_path / "serve.log", tmp_path / "record").ready()
    try:
        found = re.findall(r"\(worker (\d+), pid (\d+)\)", node.text())
        pids = [int(pid) for _, pid in sorted(found)]
        assert len(pids) == 2
        if how == "sigterm":
            node.proc.send_signal(signal.SIGHUP)
            deadline = time.monotonic() + 10
            while node.text().count("reloaded revocations") < 2 and time.monotonic() < deadline:
                time.sleep(0.02)
            assert node.text().count("reloaded revocations") == 2
            node.proc.send_signal(signal.SIGTERM)
            assert node.proc.wait(15) == 0
        elif how == "worker dies":
            os.kill(pids[1], signal.SIGKILL)
            assert node.proc.wait(15) == 1
            assert "worker 1 exited with status -9; stopping the others" in node.text()
        else:
            node.proc.kill()
            node.proc.wait(15)
        deadline = time.monotonic() + 15
        while not all(gone(pid) for pid in pids) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert all(gone(pid) for pid in pids)
        if how == "parent killed":
            assert node.text().count("the parent process is gone: stopping") == 2
        else:
            assert node.text().rstrip().endswith("signedws.cli: stopped")
    finally:
        node.stop()
