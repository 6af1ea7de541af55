# signedws: `make demo` and `make test` are the two commands of the README.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

# The core modules held to 100% branch coverage (adapters have their own tests).
CORE := errors envelope ed25519 keys credential keyring revocation replay nonce \
        verifier signer session stream
comma := ,

.PHONY: demo test lint typecheck pytest coverage vectors clean

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

pytest: $(STAMP)
	$(BIN)/python -m pytest --cov=signedws --cov-branch --cov-report= $(PYTEST_ARGS)

coverage: $(STAMP)
	$(BIN)/python -m coverage report --fail-under=100 \
	  --include='$(shell echo $(foreach m,$(CORE),signedws/$(m).py) | tr ' ' ',')'

# Regenerate the conformance vectors (tests only read them).
vectors: $(STAMP)
	$(BIN)/python vectors/generate.py

clean:
	rm -rf $(VENV) .coverage .pytest_cache .mypy_cache .ruff_cache
