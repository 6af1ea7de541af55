"""The hot paths, one pytest-benchmark each (costs only; nothing is asserted
about time).

- verify, steady state: `mac`, and `ed25519` on each backend;
- credential cache: the same frame verified with a warm cache (hit) and after
  dropping it (miss: the credential is decoded and authenticated again);
- decode: SPEC.md §6.4 steps 2-4 alone;
- client-side signing, both schemes;
- rejections: what an attacker can make the server pay per bad frame.
"""

from __future__ import annotations

from collections.abc import Callable

import msgpack
import pytest
import scenario
from conftest import next_frame_verifier
from pytest_benchmark.fixture import BenchmarkFixture
from scenario import NOW, PAYLOAD, Connection, Scenario

from signedws import Rejected, Signer
from signedws.envelope import parse_client_frame
from signedws.errors import Code

# -- steady state --------------------------------------------------------------------


def test_verify_mac(benchmark: BenchmarkFixture, mac_conn: Connection) -> None:
    """Verifier.verify on a `mac` frame: warm cache, bound connection."""
    benchmark(next_frame_verifier(mac_conn, 4096))


def test_verify_ed25519(benchmark: BenchmarkFixture, backend_scenario: Scenario) -> None:
    """Verifier.verify on an `ed25519` (certificate) frame, per backend."""
    conn = backend_scenario.connection("ed25519")
    backend_scenario.warm(conn)
    benchmark.extra_info["backend"] = backend_scenario.verifier.backend.name
    benchmark(next_frame_verifier(conn, 256))


# -- credential cache ----------------------------------------------------------------


@pytest.mark.parametrize("scheme", ["mac", "ed25519"])
@pytest.mark.parametrize("cache", ["hit", "miss"])
def test_credential_cache(
    benchmark: BenchmarkFixture, sodium: Scenario, scheme: scenario.Scheme, cache: str
) -> None:
    """One frame verified with its credential cached (hit) or not (miss)."""
    conn = sodium.connection(scheme)
    frame = conn.sign(1)[0]
    verifier, state = sodium.verifier, conn.state

    def setup() -> None:
        state.highest = 0
        if cache == "miss":
            verifier.clear_cache()

    setup()
    verifier.verify(frame, state, now=NOW)
    benchmark.pedantic(  # type: ignore[no-untyped-call]  # pytest-benchmark leaves it unannotated
        verifier.verify,
        args=(frame, state),
        kwargs={"now": NOW},
        setup=setup,
        rounds=2000 if scheme == "mac" else 300,
        warmup_rounds=10,
    )


# -- decode and sign ------------------------------------------------------------------


def test_decode(benchmark: BenchmarkFixture, mac_conn: Connection) -> None:
    """SPEC.md §6.4 steps 2-4 (decode, canonical form, version, structure)."""
    frame = mac_conn.sign(1)[0]
    benchmark(parse_client_frame, frame)


def test_decode_msgpack_only(benchmark: BenchmarkFixture, mac_conn: Connection) -> None:
    """msgpack.unpackb of the same frame: the part of decode no check can avoid."""
    frame = mac_conn.sign(1)[0]
    benchmark(msgpack.unpackb, frame)


@pytest.mark.parametrize("scheme", ["mac", "ed25519"])
def test_sign(benchmark: BenchmarkFixture, sodium: Scenario, scheme: scenario.Scheme) -> None:
    """Signer.sign: the client's cost per frame."""
    signer = sodium.connection(scheme).signer
    benchmark(signer.sign, PAYLOAD, now=NOW)


# -- rejections -----------------------------------------------------------------------


def _rejecting(conn: Connection, frame: bytes, code: Code) -> Callable[[], None]:
    verify, state = conn.verifier.verify, conn.state

    def reject() -> None:
        try:
            verify(frame, state, now=NOW)
        except Rejected as exc:
            if exc.code is not code:  # pragma: no cover - a broken scenario
                raise
        else:  # pragma: no cover
            raise AssertionError(f"accepted a frame meant to fail with {code}")

    reject()
    return reject


def _bad_frames(sodium: Scenario, conn: Connection) -> dict[str, tuple[bytes, Code]]:
    conn.state.highest = 1_000_000
    replayed = conn.sign(1)[0]
    conn.signer._counter = 2_000_000
    fresh = conn.sign(1)[0]
    fields = msgpack.unpackb(fresh)
    fields[1] = 7
    hello = sodium.verifier.hello(conn.state, now=NOW)
    rogue = Signer.from_hello(
        hello, scenario.rogue_credential(), audience=scenario.AUDIENCE, now=NOW
    )
    rogue._counter = 3_000_000
    return {
        "garbage": (scenario.garbage(len(fresh)), Code.MALFORMED),
        "malformed": (msgpack.packb(fields), Code.MALFORMED),
        "wrong_nonce": (sodium.connection("mac").sign(1)[0], Code.NONCE_MISMATCH),
        "replay": (replayed, Code.REPLAY),
        "unknown_credential": (rogue.sign(PAYLOAD, now=NOW), Code.UNKNOWN_ISSUER),
        "bad_tag": (scenario.flip(fresh, len(fresh) - 1), Code.BAD_TAG),
    }


@pytest.mark.parametrize(
    "case", ["garbage", "malformed", "wrong_nonce", "replay", "unknown_credential", "bad_tag"]
)
def test_reject_mac(
    benchmark: BenchmarkFixture, sodium: Scenario, mac_conn: Connection, case: str
) -> None:
    """Refusing a bad frame on a `mac` connection."""
    frame, code = _bad_frames(sodium, mac_conn)[case]
    benchmark(_rejecting(mac_conn, frame, code))


def test_reject_bad_signature(benchmark: BenchmarkFixture, ed_conn: Connection) -> None:
    """Refusing an `ed25519` frame whose payload was changed: a full verification."""
    frame = ed_conn.sign(1)[0]
    benchmark(_rejecting(ed_conn, scenario.flip(frame, len(frame) - 70), Code.BAD_SIGNATURE))
