# SRE Copilot — the targets a newcomer looks for.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp

.PHONY: install tools run eval bench soak test test-unit test-integration test-e2e lint migrate clean

# Create the virtualenv and install the project with its test tools; redone when pyproject changes.
$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install -q --disable-pip-version-check --upgrade pip 2>&1 | grep -v '^WARNING: Location' || true
	@$(PY) -m pip install -q --disable-pip-version-check -e '.[dev]' 2>&1 | grep -v '^WARNING: Location' || true
	@$(PY) -c 'import copilot, litestar, eventsourcing, pytest' || (echo "install failed" >&2; exit 1)
	@touch $(STAMP)

install: $(STAMP)

# Real Prometheus and Alertmanager for the monitoring tests, from Debian's packages.
TOOLS := /usr/bin/prometheus /usr/bin/prometheus-alertmanager
SUDO  := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
$(TOOLS):
	@command -v apt-get >/dev/null || { echo "install Prometheus and Alertmanager (Debian: prometheus prometheus-alertmanager)" >&2; exit 1; }
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get update -qq
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus prometheus-alertmanager >/dev/null

tools: $(TOOLS)

## run: the all-in-one server (REST :8580/api/v1, WebSocket :8505/ws, SQLite under ./var/)
run: $(STAMP)
	$(VENV)/bin/copilot serve

## test: the whole suite (unit, integration on SQLite and PostgreSQL, e2e)
test: $(STAMP) $(TOOLS)
	$(PY) -m pytest

test-unit: $(STAMP)
	$(PY) -m pytest tests/unit

test-integration: $(STAMP)
	$(PY) -m pytest tests/integration

test-e2e: $(STAMP) $(TOOLS)
	$(PY) -m pytest tests/e2e

## bench: the copilot against its floor on PostgreSQL + NATS (never part of make test)
bench: $(STAMP) /usr/bin/wrk
	@$(PY) -c 'import matplotlib' 2>/dev/null || $(PY) -m pip install -q --disable-pip-version-check -e '.[bench]' 2>&1 | grep -v '^WARNING: Location' || true
	$(PY) bench/run.py

## soak: SOAK_SECONDS (600) of mixed load on PostgreSQL + NATS: no 5xx, acknowledged commands = events, flat RSS
soak: $(STAMP)
	$(PY) bench/soak.py

/usr/bin/wrk:
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends wrk >/dev/null

## eval: the built-in engine against the scenarios in eval/ (real Prometheus, backfilled with promtool)
eval: $(STAMP) $(TOOLS)
	$(PY) eval/evaluate.py

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests
	$(VENV)/bin/mypy src

migrate: $(STAMP)
	$(VENV)/bin/copilot migrate

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache .hypothesis
