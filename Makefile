# signedws: `make demo` and `make test` are the two commands of the README.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PIP := $(BIN)/python -m pip --quiet --disable-pip-version-check

# Every dependency of every extra, pinned with hashes (`make lock` writes it with uv;
# the library's own dependencies in pyproject.toml stay ranges). `make` installs
# from it with plain pip, so a fresh clone gets what main was tested with.
LOCK := requirements.lock

# The core modules held to 100% branch coverage (adapters have their own tests).
CORE := errors envelope _fastpath ed25519 keys credential keyring revocation replay nonce \
        verifier signer server client handshake stream redaction jsondoc issuer broadcast \
        metrics health drain
comma := ,

.PHONY: demo test lint typecheck pytest coverage vectors clean fuzz security-report bench \
        lock lock-upgrade test-latest js-deps

$(STAMP): $(LOCK) pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --require-hashes -r $(LOCK)
	$(PIP) install --no-deps --no-build-isolation -e .
	touch $(STAMP)

# Regenerate the lock from pyproject.toml, keeping today's pins where they still fit
# (`make lock-upgrade`: the newest releases that fit). uv resolves for every platform
# and Python >= 3.11 at once (--universal) and records every file's hash.
UV_COMPILE = $(BIN)/uv pip compile pyproject.toml --all-extras --universal \
	--generate-hashes --python-version 3.11 --no-header --quiet -o $(LOCK)
lock: $(STAMP)
	$(UV_COMPILE)
lock-upgrade: $(STAMP)
	$(UV_COMPILE) --upgrade

# The suite against the newest release of every dependency, in a throwaway venv,
# so that upstream breakage is found on purpose (it may fail; the lock is untouched).
LATEST ?= $(or $(TMPDIR),/tmp)/signedws-latest-venv
test-latest: $(STAMP)
	rm -rf $(LATEST)
	$(BIN)/uv venv --quiet --python $(PYTHON) $(LATEST)
	$(BIN)/uv pip install --quiet --python $(LATEST)/bin/python --upgrade pip \
	  -r pyproject.toml --all-extras
	$(BIN)/uv pip install --quiet --python $(LATEST)/bin/python --no-deps -e .
	touch $(LATEST)/.installed
	@echo "== newest releases:"; $(BIN)/uv pip list --python $(LATEST)/bin/python --format=freeze \
	  | grep -i -E '^(cryptography|msgpack|pynacl|websockets|starlette|fastapi|uvicorn|redis|mypy|ruff|pytest)=' || true
	$(MAKE) --no-print-directory test VENV=$(LATEST)

# The JavaScript client's packages, from its lockfile, wherever Node is installed
# (tests/test_js_client.py skips loudly without them, and fails under CI=true),
# and the OpenID Provider's that the issuer tests run (tests/issuer/op).
JS_PACKAGES := clients/js tests/issuer/op
js-deps:
	@if command -v npm >/dev/null 2>&1; then \
	  for dir in $(JS_PACKAGES); do \
	    if [ ! -f $$dir/node_modules/.package-lock.json ] || \
	       [ $$dir/package-lock.json -nt $$dir/node_modules/.package-lock.json ]; then \
	      (cd $$dir && npm ci --no-audit --no-fund --loglevel=error) || exit 1; \
	    fi; \
	  done; \
	else echo "npm not found: the JavaScript client's and the issuer's Node tests will be skipped"; fi

demo: $(STAMP)
	$(BIN)/signedws demo

test: lint typecheck pytest coverage

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy signedws
	MYPYPATH=tests:tests/adversarial:fuzz $(BIN)/mypy --strict tests/adversarial fuzz
	MYPYPATH=benchmarks:tests/fleet $(BIN)/mypy --strict benchmarks

pytest: $(STAMP) js-deps
	$(BIN)/python -m pytest --cov=signedws --cov-branch --cov-report= $(PYTEST_ARGS)

coverage: $(STAMP)
	$(BIN)/python -m coverage report --fail-under=100 \
	  --include='$(shell echo $(foreach m,$(CORE),signedws/$(m).py) | tr ' ' ',')'

# Regenerate the conformance vectors (tests only read them).
vectors: $(STAMP)
	$(BIN)/python vectors/generate.py
	$(BIN)/python vectors/gen_issuance.py
	$(BIN)/python vectors/gen_broadcast.py

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
# compare.py (the verifier beside its floors and the JWT peers), e2e.py (real
# websockets servers) and broadcast_e2e.py (local: about 95 s on 2 cores; fleet:
# about 7 s, needs redis-server and nginx), then benchmarks/RESULTS.md. About seven minutes.
bench: $(STAMP)
	mkdir -p .benchmarks
	$(BIN)/python -m pytest benchmarks/ -p no:cacheprovider --benchmark-only \
	  --benchmark-json=.benchmarks/hotpath.json --benchmark-columns=median,min,rounds
	$(BIN)/python benchmarks/compare.py --json .benchmarks/compare.json
	$(BIN)/python benchmarks/e2e.py --idle-floor --json .benchmarks/e2e.json
	$(BIN)/python benchmarks/broadcast_e2e.py local --recipients 10000 --rounds 7 \
	  --json .benchmarks/broadcast_local.json
	@missing=; for tool in redis-server nginx; do \
	  command -v $$tool >/dev/null || test -x /usr/sbin/$$tool || test -x /usr/bin/$$tool \
	    || missing="$$missing $$tool"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "broadcast_e2e.py fleet skipped, not installed:$$missing"; \
	else \
	  echo "$(BIN)/python benchmarks/broadcast_e2e.py fleet --json .benchmarks/broadcast_fleet.json"; \
	  $(BIN)/python benchmarks/broadcast_e2e.py fleet --json .benchmarks/broadcast_fleet.json; \
	fi
	$(BIN)/python benchmarks/report.py

clean:
	rm -rf $(VENV) .coverage .pytest_cache .mypy_cache .ruff_cache build dist
