# The plain entry point. `make run` and `make test` are the README's two commands.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Pure modules (no Django, no I/O, no clock), type-checked strictly.
PURE_MODULES := indicators/scoring.py alerts/rules.py indicators/charts.py \
	indicators/backtest.py indicators/backtest_charts.py indicators/calibration.py \
	indicators/spreadsheets.py
# The test suite uses PostgreSQL (pytest-django creates and drops test_<name>) and Redis.
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/earlywarning

.PHONY: install browser run test lint bench bench-pages bench-alerts bench-import bench-backtest plotly-bundle clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# Reinstall only when the dependencies change.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $@

install: $(VENV)/.installed

# The browser tests drive Debian's Chromium (a test tool's own browser download does not
# work on a closed network).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "Installing Debian's chromium for the browser tests"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }

# The one-machine default: SQLite, tasks in process, mail on the console.
# Links in its alert e-mails point at the address it serves (SITE_URL).
DEMO_ADDRESS ?= 127.0.0.1:8000
run: install
	DEBUG=true $(BIN)/python manage.py migrate --noinput
	DEBUG=true $(BIN)/python manage.py createcachetable
	DEBUG=true SITE_URL=http://$(DEMO_ADDRESS) $(BIN)/python manage.py setup_demo
	DEBUG=true SITE_URL=http://$(DEMO_ADDRESS) $(BIN)/python manage.py runserver $(DEMO_ADDRESS)

# Lint, then every test. Integration tests need PostgreSQL and Redis; with CI=true a
# missing service fails the run. pytest's "no tests ran" (exit 5) counts as a failure.
test: install browser lint
	DEBUG=true DATABASE_URL="$(TEST_DATABASE_URL)" $(BIN)/pytest; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: failing"; exit 1; fi; exit $$rc

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	DEBUG=true $(BIN)/mypy $(PURE_MODULES)

bench: install
	DEBUG=true DATABASE_URL="$(TEST_DATABASE_URL)_bench" $(BIN)/python bench/scoring.py

# Dashboard pages under gunicorn (2 workers) on the same synthetic volume.
bench-pages: install
	DATABASE_URL="$(TEST_DATABASE_URL)_bench" $(BIN)/python bench/pages.py

# Red-flag observation to e-mail accepted by SMTP, with a real Celery worker on Redis and
# an SMTP server on loopback; its own database, created and dropped.
bench-alerts: install
	DATABASE_URL="$(TEST_DATABASE_URL)_alerts_bench" $(BIN)/python bench/alert_latency.py

# The full public-data import with the first full scoring, and a 100,000-row upload; its
# own database, created and dropped.
bench-import: install
	DATABASE_URL="$(TEST_DATABASE_URL)_import_bench" $(BIN)/python bench/import.py

# A version against history on the real public data: episode list, December scores
# (stored and computed for a draft), backtest and calibration timings.
bench-backtest: install
	DATABASE_URL="$(TEST_DATABASE_URL)_backtest_bench" $(BIN)/python bench/backtest.py

# Rebuild static/vendor/plotly/plotly-dashboard.min.js (only the trace types the charts
# draw) from the plotly.js npm package; see static/vendor/plotly/README.md.
plotly-bundle:
	cd tools/plotly-bundle && npm ci --no-audit --no-fund && npm run build

clean:
	rm -rf $(VENV) staticfiles artifacts .pytest_cache .ruff_cache .mypy_cache db.sqlite3
