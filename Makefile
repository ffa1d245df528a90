# Chat4All. `make up` starts the embedded platform; `make test` runs everything CI runs.
SHELL := /bin/bash
UV := $(shell command -v uv 2>/dev/null || echo $(HOME)/.local/bin/uv)
VENV := .venv
STAMP := $(VENV)/.synced

.PHONY: up test test-fast lint bench clean

$(UV):  # uv itself, when the machine has none (Debian's own Python needs the second form)
	python3 -m pip install --user --quiet uv || \
		python3 -m pip install --user --quiet --break-system-packages uv

$(STAMP): pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen
	@touch $@

up: $(STAMP) ## start the embedded platform on http://127.0.0.1:8080 (data in ./data)
	$(UV) run chat4all up --data-dir data

lint: $(STAMP) ## ruff and mypy
	$(UV) run ruff check src tests bench
	$(UV) run ruff format --check src tests bench
	$(UV) run mypy

test: $(STAMP) lint ## every test, including the slow crash test
	$(UV) run pytest -n auto --dist loadgroup -q

test-fast: $(STAMP) ## the quick loop: no slow tests, no lint
	$(UV) run pytest -n auto -q -m "not slow"

bench: $(STAMP) ## S1 and S2 load scenarios; prints throughput and latency percentiles
	$(UV) run python -m bench

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
