# The two commands a new user runs: `make demo` and `make test` (`make check` is the fast loop).
# Each creates or refreshes .venv and installs the project into it.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test check lint venv clean system-deps

$(STAMP): pyproject.toml setup.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/strangler demo

# The whole suite on the machine's PostgreSQL, then the monolith's journeys and the in-process
# capture tests again on SQLite (the embedded default) so both stay green; the slow tests use
# their own SQLite files anyway. Most tests wait on real processes and sockets, so two workers
# (a file's tests kept together for its fixtures) halve the wall time on two cores.
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/strangler_monolith

test: lint system-deps
	DATABASE_URL=$(TEST_DATABASE_URL) $(PY) -m pytest -n 2 --dist loadfile --durations=15
	env -u DATABASE_URL $(PY) -m pytest tests/monolith tests/cdc/test_capture_in_process.py -m "not slow"

# Debian packages the suite drives for real: headless Chromium (the HTML reports, the dashboard)
# and a Prometheus server (the runbook gates' --prometheus source).
SYSTEM_PACKAGES := chromium prometheus

system-deps:
	@missing=$$(for p in $(SYSTEM_PACKAGES); do command -v $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else echo "note: install Debian's $$missing to run the tests that drive them"; fi; fi

# The pure tests (about 75 s of CPU): PostgreSQL, broker and slow tests are skipped, each with a
# reason (under CI=true such a skip fails: CI runs `make test`).
check: $(STAMP)
	env -u DATABASE_URL $(PY) -m pytest --fast -q

# ruff (lint and format), mypy and the layers contract of docs/architecture.md
# (pyproject [tool.importlinter]).
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
