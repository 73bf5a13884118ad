# Two commands on a fresh machine (Python 3.11 + make):
#   make run    install, upgrade the database, seed the demo, serve on 127.0.0.1:$(PORT)
#   make test   install with test extras and run the whole suite
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 5000
FLASK := $(BIN)/flask --app wsgi

.PHONY: run test install bench translations clean

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/activate
	$(BIN)/pip install -q -e ".[test]"
	touch $@

install: $(VENV)/.installed

run: install
	$(FLASK) portal upgrade
	$(FLASK) portal seed-demo
	@echo "Serving on http://127.0.0.1:$(PORT)/ (and sweeping deadlines every minute)"
	@$(FLASK) portal sla-sweep --every 60 & sweeper=$$!; \
	trap 'kill $$sweeper 2>/dev/null; wait $$sweeper 2>/dev/null' EXIT INT TERM; \
	$(FLASK) run --host 127.0.0.1 --port $(PORT)

test: install
	$(BIN)/pytest

# Benchmarks (never part of the tests): N=1000000 for the figures in docs/benchmarks.md
N ?= 100000
bench: install
	$(BIN)/python bench/sla_sweep.py --n $(N)
	$(BIN)/python bench/payroll_export.py --n $(N)
	$(BIN)/python bench/express_inbox.py

translations: install
	$(BIN)/pybabel extract -F babel.cfg -k _l -k lazy_gettext --project=regulation-portal --version=0.1.0 -o /tmp/portal-messages.pot portal plugins
	$(BIN)/pybabel update -i /tmp/portal-messages.pot -d portal/translations --no-fuzzy-matching
	$(BIN)/pybabel compile -d portal/translations

clean:
	rm -rf $(VENV) *.egg-info
