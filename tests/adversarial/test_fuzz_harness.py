"""The fuzz harness (``fuzz/``): a bounded coverage-guided run in ``make test``.

With atheris installed (the dev extra installs it on Linux), libFuzzer drives
`targets.check` for ``SIGNEDWS_FUZZ_SECONDS`` (default 15) from the genuine
seeds; any crash or undocumented exception fails the run. Without atheris the
same target is driven by hypothesis instead, and the figures say so; under
``CI=true`` a missing atheris is a failure, not a fallback.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import figures
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

FUZZ = Path(__file__).resolve().parents[2] / "fuzz"
sys.path.insert(0, str(FUZZ))

import targets  # noqa: E402 - the fuzz directory is not a package

from signedws import Code, Message, Rejected  # noqa: E402

SECONDS = int(os.environ.get("SIGNEDWS_FUZZ_SECONDS", "15"))
HAVE_ATHERIS = importlib.util.find_spec("atheris") is not None


def test_seeds_pass_and_genuine_frames_verify() -> None:
    """Every seed passes the target, and the genuine frames among them are
    accepted: the fuzzer starts past the decoders, at the verifier's checks."""
    seeds = targets.seeds()
    assert len({s[0] for s in seeds}) == len(targets.TARGETS)
    for data in seeds:
        targets.check(data)
    w = targets.world()
    accepted = 0
    for data in seeds:
        if data[0] == 0:
            state = targets._copy(w.fresh.verifier_state)
            try:
                message = w.strict.verify(data[1:], state, now=targets.NOW)
            except Rejected:
                continue
            assert isinstance(message, Message)
            accepted += 1
    assert accepted >= 6  # mac, certificate and key reference, with and without payload


def test_check_flags_undocumented_behaviour() -> None:
    """The harness itself fails on what it must catch: an undocumented code."""
    exc = Rejected(Code.ACK_INVALID)
    with pytest.raises(targets.Failure):
        targets._expect(targets.SERVER_CODES, exc, "Verifier.verify")


def test_bounded_fuzz_run(tmp_path: Path) -> None:
    """A bounded coverage-guided run over decode + verify finds no crash and no
    undocumented exception (atheris; hypothesis if atheris is missing)."""
    if not HAVE_ATHERIS:
        if os.environ.get("CI") == "true":
            pytest.fail(
                "atheris is not installed: install the dev extra (pip install -e '.[dev]')"
            )
        _hypothesis_fallback()
        return
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    result = subprocess.run(  # noqa: S603 - our harness, fixed arguments
        [
            sys.executable,
            str(FUZZ / "fuzz_verify.py"),
            f"-max_total_time={SECONDS}",
            "-seed=1",
            "-timeout=10",
            "-rss_limit_mb=2048",
            "-print_final_stats=1",
            f"-artifact_prefix={tmp_path}/",
            str(corpus),
        ],
        capture_output=True,
        text=True,
        timeout=SECONDS + 120,
        check=False,
    )
    tail = result.stderr[-3000:]
    assert result.returncode == 0, f"fuzzer found a crash:\n{tail}"
    assert not list(tmp_path.glob("crash-*")), tail
    executed = re.search(r"stat::number_of_executed_units: (\d+)", result.stderr)
    coverage = re.findall(r"cov: (\d+) ft: (\d+) corp: (\d+)", result.stderr)
    assert executed, tail
    assert coverage, tail
    figures.record(
        "input.fuzz_execs",
        int(executed.group(1)),
        f"atheris executions of decode + verify ({SECONDS} s, no crash)",
        section="input",
    )
    edges, _, units = coverage[-1]
    figures.record("input.fuzz_cov", int(edges), "atheris coverage edges reached", section="input")
    figures.record("input.fuzz_corpus", int(units), "atheris corpus units kept", section="input")


def _hypothesis_fallback() -> None:
    seeds = targets.seeds()
    count = [0]

    @settings(
        max_examples=5000,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(
        seed=st.sampled_from(seeds),
        at=st.integers(0, 400),
        cut=st.integers(0, 400),
        junk=st.binary(max_size=24),
        raw=st.binary(max_size=300),
        mode=st.integers(0, 3),
    )
    def fuzz(*, seed: bytes, at: int, cut: int, junk: bytes, raw: bytes, mode: int) -> None:
        count[0] += 1
        if mode == 0:
            targets.check(seed[:1] + raw)
        elif mode == 1:
            targets.check(seed[: at + 1] + junk + seed[at + 1 + cut :])
        elif mode == 2:
            targets.check(seed[: max(1, len(seed) - cut)])
        else:
            i = 1 + at % max(1, len(seed) - 1)
            targets.check(seed[:i] + bytes([seed[i] ^ 0xFF]) + seed[i + 1 :])

    fuzz()
    figures.record(
        "input.fuzz_execs",
        count[0],
        "hypothesis FALLBACK fuzz executions (atheris not installed)",
        section="input",
    )
