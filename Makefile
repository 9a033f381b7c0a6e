# `make run` and `make test` are all a fresh machine needs: both set up .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
PEERS := .peers/node_modules/.bin/prism

.PHONY: run test lint bench replay clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# Prism serves Twilio's published OpenAPI spec and validates every request the adapters make.
$(PEERS):
	npm install --silent --no-audit --no-fund --prefix .peers @stoplight/prism-cli@5

run: $(STAMP)
	$(BIN)/omniconsole demo

replay: $(STAMP)
	mkdir -p out
	$(BIN)/omniconsole replay examples/sample.jsonl --db out/sample.db --ledger out/ledger.jsonl --report out/report.json --rejects out/rejects.jsonl --fresh --table

test: $(STAMP) $(PEERS)
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/pytest

bench: $(STAMP)
	$(BIN)/python benchmarks/replay_throughput.py

clean:
	rm -rf $(VENV) .peers out
