"""Issue 17's hooks on issue 15's pump, over real sockets (websockets
adapter): `ed25519` frames verified in the thread pool are counted and timed
like `mac` frames on the loop, and `ServerConnection.going_away` (the drain)
writes the due acknowledgement before it closes with 1001."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from aio_support import Recorder, raw, running, signer_for, token
from prometheus_client.parser import text_string_to_metric_families

from signedws.asyncio.connection import ServerConnection
from signedws.metrics import SAMPLE_EVERY, PrometheusMetrics


def scrape(metrics: PrometheusMetrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = metrics.exposition().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_pool_verified_frames_are_counted_under_ed25519(run: Any) -> None:
    """With a pool (verify_workers=2), ed25519 frames leave the loop: they are
    still counted as accepted under their scheme, with one verification
    observation per hand-off, and the connection is open under ed25519."""
    from aio_support import certificate

    metrics = PrometheusMetrics()
    frames = SAMPLE_EVERY + 5

    async def main() -> tuple[dict[Any, float], dict[Any, float]]:
        recorder = Recorder()
        async with running(recorder, metrics=metrics, verify_workers=2) as srv:
            async with raw(srv.uri) as (ws, hello):
                signer = signer_for(hello, certificate())
                for i in range(frames):
                    await ws.send(signer.sign(f"m{i}", now=time.time()))
                await recorder.wait_for(lambda: len(recorder.messages) == frames)
                during = scrape(metrics)
            for _ in range(100):
                after = scrape(metrics)
                if after[("signedws_connections_open", (("scheme", "ed25519"),))] == 0:
                    break
                await asyncio.sleep(0.02)
            return during, after

    during, after = run(main())
    ed = (("scheme", "ed25519"),)
    assert during[("signedws_connections_open", ed)] == 1
    assert during[("signedws_frames_accepted_total", ed)] == frames
    assert during[("signedws_frames_accepted_total", (("scheme", "mac"),))] == 0
    assert during[("signedws_verify_seconds_count", ed)] >= 1
    assert after[("signedws_connections_open", ed)] == 0
    assert after[("signedws_frames_accepted_total", ed)] == frames


def test_going_away_acknowledges_then_closes_1001(run: Any) -> None:
    """The drain's `going_away`: the message the handler is done with is
    acknowledged (the ack was due in a minute: it is flushed now), then the
    connection closes with 1001, and the pure ack is counted."""
    metrics = PrometheusMetrics()
    connections: list[ServerConnection] = []

    async def handler(connection: ServerConnection) -> None:
        await connection.recv()
        connections.append(connection)
        await connection.recv()  # done with the first; waits for the next

    async def main() -> tuple[int, int | None]:
        server = running(handler, metrics=metrics, ack_delay=60.0)  # type: ignore[arg-type]
        async with server as srv, raw(srv.uri) as (ws, hello):
            signer = signer_for(hello, token())
            await ws.send(signer.sign("first", now=time.time()))
            async with asyncio.timeout(5):
                while not connections:
                    await asyncio.sleep(0.01)
            # The handler marked the first message done before it waited.
            connection = connections[0]
            await connection.going_away()
            ack = signer.verify(await asyncio.wait_for(ws.recv(), 5))  # type: ignore[arg-type]
            await ws.wait_closed()
            return ack.ack, ws.close_code

    acked, code = run(main())
    assert acked == 1
    assert code == 1001
    assert scrape(metrics)[("signedws_acks_sent_total", ())] == 1
