"""Coverage-guided fuzzing of signedws's decoders and verifiers with atheris.

Usage (from the repository root)::

    python fuzz/fuzz_verify.py [libFuzzer flags] [CORPUS_DIR ...]

Each input goes to `targets.check` (see there for the rules it enforces): any
`Failure` or exception other than `Rejected` is a crash, which libFuzzer
reports, saves as ``crash-<sha1>`` (under ``-artifact_prefix``) and exits on
with a non-zero status. A corpus directory given empty is first filled with
`targets.seeds` (genuine frames, credentials, hellos, server frames, nonces),
so the fuzzer starts past the decoders.

``make test`` runs a bounded run (``tests/adversarial/test_fuzz_harness.py``);
``make fuzz`` runs a long one (see ``fuzz/README.md``).
"""

from __future__ import annotations

import sys
from pathlib import Path

import atheris  # type: ignore[import-not-found, import-untyped, unused-ignore]

sys.path.insert(0, str(Path(__file__).resolve().parent))

with atheris.instrument_imports(include=["signedws", "targets"]):
    import targets


def seed(argv: list[str]) -> None:
    """Fill every empty corpus directory named on the command line."""
    for arg in argv[1:]:
        path = Path(arg)
        if arg.startswith("-") or not path.is_dir() or any(path.iterdir()):
            continue
        for index, data in enumerate(targets.seeds()):
            (path / f"seed-{index:03d}").write_bytes(data)


def main() -> None:
    """Seed, then fuzz `targets.check` until libFuzzer's limits stop it."""
    seed(sys.argv)
    atheris.Setup(sys.argv, targets.check)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
