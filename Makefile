# The two commands of the README:  make demo  and  make test.  Everything else is for developers.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat requirements/dev.txt pyproject.toml | sha256sum | cut -c1-12)

.PHONY: demo sandbox test test-fast test-all lint crds lock clean reliability

# A virtualenv with the pinned dependencies (requirements/dev.txt) and the project in editable mode.
$(STAMP): requirements/dev.txt pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check "setuptools>=77" wheel
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements/dev.txt
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	@rm -f $(VENV)/.installed-*; touch $@

demo: $(STAMP)
	$(BIN)/spotctl sandbox

test: $(STAMP)
	$(BIN)/python -m pytest

test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not slow"

# The full reliability suite (crash at every step, AWS faults, duplicates); rewrites docs/RELIABILITY.md.
reliability: $(STAMP)
	$(BIN)/python -m spot_operator.simulation.reliability --full --write docs/RELIABILITY.md

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/python -m spot_operator.api.crdgen --check crds
	$(BIN)/python -m spot_operator.api.docgen --check docs/reference.md

crds: $(STAMP)
	$(BIN)/python -m spot_operator.api.crdgen crds
	$(BIN)/python -m spot_operator.api.docgen docs/reference.md
	cp crds/*.yaml charts/spot-optimizer/crds/

lock:
	scripts/lock.sh

clean:
	rm -rf $(VENV) .tools .pytest_cache .mypy_cache .ruff_cache .hypothesis
