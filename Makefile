# Chat4All. `make up` starts the embedded platform; `make test` runs everything CI runs.
SHELL := /bin/bash
UV := $(shell command -v uv 2>/dev/null || echo $(HOME)/.local/bin/uv)
VENV := .venv
STAMP := $(VENV)/.synced
# The gRPC code generated from proto/ (not committed): src/chat4all/v1/
PROTOS := $(wildcard proto/chat4all/v1/*.proto)
GENERATED := src/chat4all/v1/.generated

.PHONY: up test test-fast lint bench clean infra cluster-up proto tus-js web web-test chromium

$(UV):  # uv itself, when the machine has none (Debian's own Python needs the second form)
	python3 -m pip install --user --quiet uv || \
		python3 -m pip install --user --quiet --break-system-packages uv

$(STAMP): pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen
	@touch $@

$(GENERATED): $(PROTOS) scripts/gen_proto.py $(STAMP)
	$(UV) run python scripts/gen_proto.py
	@touch $@

proto: $(GENERATED) ## generate the gRPC code from proto/ (every target below does it first)

# The web client (web/, Angular): npm ci when the lock file changes, a build when web/ changes.
WEB_MODULES := web/node_modules/.installed
WEB_BUILT := web/dist/.built
WEB_SOURCES := $(shell find web/src web/public -type f 2>/dev/null) \
	$(wildcard web/*.json)

$(WEB_MODULES): web/package.json web/package-lock.json
	cd web && npm ci --no-audit --no-fund
	@touch $@

$(WEB_BUILT): $(WEB_MODULES) $(WEB_SOURCES)
	cd web && npx ng build
	@touch $@

web: $(WEB_BUILT) ## build the web client into web/dist (served at / by `chat4all up`)

web-test: $(WEB_MODULES) ## the web client's format check (prettier) and component tests (vitest, jsdom)
	cd web && npx prettier --check src && npx ng test --watch=false

chromium: ## Debian's Chromium for the browser tests (installed once)
	scripts/infra/chromium.sh

up: $(STAMP) $(GENERATED) $(WEB_BUILT) ## start the embedded platform on http://127.0.0.1:8080 (data in ./data)
	$(UV) run chat4all up --data-dir data

lint: $(STAMP) $(GENERATED) ## ruff and mypy
	$(UV) run ruff check src fakes tests bench scripts
	$(UV) run ruff format --check src fakes tests bench scripts
	$(UV) run mypy

cluster-up: $(STAMP) $(GENERATED) infra ## a local cluster: 2 gateways, 2 of each worker, nginx on :8080
	scripts/infra/nginx.sh
	$(UV) run chat4all cluster

infra: ## install (once) and start the real servers the tests use, on 127.0.0.1
	scripts/infra/up.sh

TUS_JS := tests/integration/tus_js
$(TUS_JS)/node_modules/.package-lock.json: $(TUS_JS)/package.json $(TUS_JS)/package-lock.json
	cd $(TUS_JS) && npm ci --no-audit --no-fund

tus-js: $(TUS_JS)/node_modules/.package-lock.json ## tus-js-client for the upload tests (npm ci)

test: $(STAMP) $(GENERATED) lint infra tus-js chromium web web-test ## every test, on every real server, including the slow ones
	$(UV) run pytest -n auto --dist loadgroup -q

SERVER_MARKS := postgres or redis or etcd or kafka or mongo or minio or browser
test-fast: $(STAMP) $(GENERATED) ## the quick loop: no slow tests, no servers, no lint
	$(UV) run pytest -n auto -q -m "not slow and not ($(SERVER_MARKS))"

bench: $(STAMP) $(GENERATED) infra ## load scenarios, embedded then cluster; throughput and latency percentiles; S4 (a 2 GiB upload)
	$(UV) run python -m bench
	$(UV) run python -m bench.files
	scripts/infra/nginx.sh
	$(UV) run python -m bench.cluster

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache src/chat4all/v1 web/dist web/node_modules
