# signedws: `make demo` and `make test` are the two commands of the README.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

# The core modules held to 100% branch coverage (adapters have their own tests).
CORE := errors envelope ed25519 keys credential keyring revocation replay nonce \
        verifier signer session stream
comma := ,

.PHONY: demo test lint typecheck pytest coverage vectors clean fuzz security-report bench

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/signedws demo

test: lint typecheck pytest coverage

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy signedws
	MYPYPATH=tests:tests/adversarial:fuzz $(BIN)/mypy --strict tests/adversarial fuzz

pytest: $(STAMP)
	$(BIN)/python -m pytest --cov=signedws --cov-branch --cov-report= $(PYTEST_ARGS)

coverage: $(STAMP)
	$(BIN)/python -m coverage report --fail-under=100 \
	  --include='$(shell echo $(foreach m,$(CORE),signedws/$(m).py) | tr ' ' ',')'

# Regenerate the conformance vectors (tests only read them).
vectors: $(STAMP)
	$(BIN)/python vectors/generate.py

# The long fuzzing run (make test runs a bounded one): atheris over decode +
# verify, its corpus kept in fuzz/corpus between runs; crashes land in fuzz/.
FUZZ_SECONDS ?= 600
fuzz: $(STAMP)
	mkdir -p fuzz/corpus
	$(BIN)/python fuzz/fuzz_verify.py -max_total_time=$(FUZZ_SECONDS) -timeout=10 \
	  -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix=fuzz/ fuzz/corpus

# Run the adversarial suite and write its figures into SECURITY.md ("Last run").
security-report: $(STAMP)
	SIGNEDWS_REPORT=1 $(BIN)/python -m pytest tests/adversarial -p no:cacheprovider

# Benchmarks (benchmarks/, never run by `make test`): the pytest-benchmark suite,
# compare.py (the verifier beside its floors and the JWT peers) and e2e.py (real
# websockets servers), then benchmarks/RESULTS.md. About five minutes.
BENCH_STAMP := $(VENV)/.bench-installed
$(BENCH_STAMP): pyproject.toml $(STAMP)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev,bench]'
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	mkdir -p .benchmarks
	$(BIN)/python -m pytest benchmarks/ -p no:cacheprovider --benchmark-only \
	  --benchmark-json=.benchmarks/hotpath.json --benchmark-columns=median,min,rounds
	$(BIN)/python benchmarks/compare.py --json .benchmarks/compare.json
	$(BIN)/python benchmarks/e2e.py --json .benchmarks/e2e.json
	$(BIN)/python benchmarks/report.py

clean:
	rm -rf $(VENV) .coverage .pytest_cache .mypy_cache .ruff_cache
