PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint deps bench deploy-sync clean screenshots

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/responder serve -c responder.yaml

deps:
	@if ! command -v prometheus >/dev/null || ! command -v prometheus-alertmanager >/dev/null \
	   || ! command -v promtool >/dev/null || ! command -v amtool >/dev/null; then \
	  echo "installing Debian prometheus and prometheus-alertmanager"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	    --no-install-recommends prometheus prometheus-alertmanager >/dev/null; \
	fi
	@if ! command -v chromium >/dev/null; then \
	  echo "installing Debian chromium (the console's browser tests)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	    --no-install-recommends chromium >/dev/null; \
	fi
	@if ! ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1; then \
	  echo "installing Debian postgresql"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	    --no-install-recommends postgresql >/dev/null; \
	fi

lint: $(STAMP)
	$(BIN)/ruff check responder tests bench deploy/sync.py
	$(BIN)/mypy responder
	$(BIN)/lint-imports

test: $(STAMP) deps lint
	$(BIN)/pytest -q -p no:cacheprovider

bench: $(STAMP)
	@command -v wrk >/dev/null && command -v prometheus-alertmanager >/dev/null \
	  && ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || { \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	    --no-install-recommends wrk prometheus-alertmanager postgresql >/dev/null; }
	$(BIN)/python bench/run.py

deploy-sync: $(STAMP)
	$(BIN)/python deploy/sync.py

screenshots: $(STAMP) deps
	RESPONDER_SCREENSHOTS=docs $(BIN)/pytest -q -p no:cacheprovider tests/browser

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache
