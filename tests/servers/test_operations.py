"""Operations over real sockets, on the websockets adapter and on the ASGI
adapter under uvicorn (issue 17): Prometheus metrics that move as frames are
accepted and rejected (scraped and parsed with prometheus_client's own
parser), and ``/healthz`` / ``/readyz`` on the WebSocket port, answering 200
or 503 as the state changes, without a warning line per probe."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aio_support import (
    AUDIENCE,
    ORIGIN,
    SERVER_KEY,
    Recorder,
    Running,
    closed_with,
    make_verifier,
    raw,
    running,
    signer_for,
    token,
)
from prometheus_client.parser import text_string_to_metric_families
from server_support import PATH, uvicorn_server
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import InvalidStatus

from signedws.asyncio import connect
from signedws.asyncio.asgi import SignedWebSockets
from signedws.health import Check, Health
from signedws.metrics import SAMPLE_EVERY, PrometheusMetrics

KINDS = ("websockets", "starlette")


@contextlib.asynccontextmanager
async def server(kind: str, **kwargs: Any) -> AsyncIterator[tuple[Running, str]]:
    """A server of ``kind`` with ``kwargs`` (metrics, health); yields it and
    its HTTP base URL (the same port as the WebSocket)."""
    if kind == "websockets":
        async with running(Recorder(echo=False), **kwargs) as srv:
            yield srv, "http" + srv.uri.removeprefix("ws")
        return
    verifier = make_verifier()
    signed = SignedWebSockets(
        verifier, origins=[ORIGIN], allow_no_origin=True, server_key=SERVER_KEY, **kwargs
    )
    recorder = Recorder()
    app = Starlette(
        routes=[*signed.probe_routes(), WebSocketRoute(PATH, signed.endpoint(recorder))]
    )
    async with uvicorn_server(app, ws_max_size=verifier.max_frame_size) as port:
        yield (
            Running(f"ws://127.0.0.1:{port}{PATH}", verifier, recorder, signed),
            f"http://127.0.0.1:{port}",
        )


def scrape(metrics: PrometheusMetrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of the exposition, parsed by prometheus_client's parser."""
    text = metrics.exposition().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def get(url: str) -> tuple[int, str]:
    """GET ``url`` (in a thread: the server runs on this loop)."""

    def fetch() -> tuple[int, str]:
        try:
            with urllib.request.urlopen(url, timeout=5) as answer:  # noqa: S310 - loopback
                return answer.status, answer.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()

    return await asyncio.to_thread(fetch)


@pytest.mark.parametrize("kind", KINDS)
def test_metrics_move_as_frames_are_accepted_and_rejected(run: Any, kind: str) -> None:
    """Frames accepted by scheme, open connections, acks, rejections by §9
    code, refused handshakes by reason and the sampled verification
    histogram, read from a scrape while a connection is open and after."""
    metrics = PrometheusMetrics()
    frames = 2 * SAMPLE_EVERY + 3

    async def main() -> tuple[dict[Any, float], dict[Any, float]]:
        async with server(kind, metrics=metrics) as (srv, _):
            async with connect(srv.uri, token(), audience=AUDIENCE) as client:
                for i in range(frames):
                    await client.send(f"m{i}")
                await client.drain()
                during = scrape(metrics)
            async with raw(srv.uri) as (ws, hello):
                frame = signer_for(hello, token()).sign("x", now=time.time())
                await ws.send(frame[:-1] + bytes([frame[-1] ^ 1]))
                assert await closed_with(ws) == 4401
            with pytest.raises(InvalidStatus):
                async with ws_connect(srv.uri, origin="https://evil.example"):  # type: ignore[arg-type]
                    pass
            await srv.recorder.wait_for(lambda: len(srv.recorder.messages) == frames)
            # The server sees the closes a moment after the clients.
            for _ in range(100):
                after = scrape(metrics)
                if after[("signedws_connections_open", (("scheme", "mac"),))] == 0:
                    break
                await asyncio.sleep(0.02)
            return during, after

    during, after = run(main())
    mac = (("scheme", "mac"),)
    assert during[("signedws_connections_open", mac)] == 1
    assert during[("signedws_frames_accepted_total", mac)] >= frames
    assert during[("signedws_acks_sent_total", ())] >= 1
    assert after[("signedws_connections_open", mac)] == 0
    # The forged frame was rejected, not accepted: the count did not move for it.
    assert (
        after[("signedws_frames_accepted_total", mac)]
        == during[("signedws_frames_accepted_total", mac)]
    )
    assert after[("signedws_rejections_total", (("code", "bad_tag"),))] == 1
    assert after[("signedws_handshakes_refused_total", (("reason", "origin"),))] == 1
    # One frame in SAMPLE_EVERY is timed: the first, then every 64th.
    timed = after[("signedws_verify_seconds_count", mac)]
    assert 2 <= timed <= frames // SAMPLE_EVERY + 1
    assert 0 < after[("signedws_verify_seconds_sum", mac)] < timed


@pytest.mark.parametrize("kind", KINDS)
def test_health_and_readiness_follow_the_state_without_warnings(
    run: Any, kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    """/healthz is 200; /readyz is 200 when ready, 503 with the reason while
    draining or while a check fails, 200 again after; no probe logs a line at
    WARNING or above, and the WebSocket on the same port still works."""
    caplog.set_level(logging.DEBUG)
    broken: list[str] = []
    health = Health(keyring_size=lambda: 1)
    health.add(Check("revocations", lambda _: broken[0] if broken else None))

    async def main() -> list[tuple[int, str]]:
        async with server(kind, health=health) as (srv, base):
            answers = [await get(f"{base}/healthz"), await get(f"{base}/readyz")]
            health.draining = True
            answers.append(await get(f"{base}/readyz"))
            health.draining = False
            broken.append("revoked.json did not load")
            answers.append(await get(f"{base}/readyz?verbose=1"))
            broken.clear()
            answers.append(await get(f"{base}/readyz"))
            async with connect(srv.uri, token(), audience=AUDIENCE) as client:
                await client.send("still a WebSocket server")
                await client.drain()
            return answers

    answers = run(main())
    assert answers[0] == (200, "ok\n")
    assert answers[1] == (200, "ready\n")
    assert answers[2] == (503, "not ready\ndraining\n")
    assert answers[3] == (503, "not ready\nrevocations: revoked.json did not load\n")
    assert answers[4] == (200, "ready\n")
    loud = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert loud == []


def test_process_request_answers_are_not_logged_as_refusals(
    run: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """An application's own ``process_request`` health check (200) logs no
    WARNING line (issue 17: it logged `refused handshake ... status=200`
    per probe); a 4xx it returns is still a refusal, logged once."""
    caplog.set_level(logging.INFO, logger="signedws")

    def process_request(websocket: Any, request: Any) -> Any:
        if request.path == "/ping":
            return websocket.respond(200, "pong\n")
        if request.path == "/private":
            return websocket.respond(401, "no\n")
        return None

    async def main() -> list[tuple[int, str]]:
        async with running(process_request=process_request) as srv:
            base = "http" + srv.uri.removeprefix("ws")
            return [await get(f"{base}/ping"), await get(f"{base}/private")]

    assert run(main()) == [(200, "pong\n"), (401, "no\n")]
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1
    assert "status=401" in warnings[0]
