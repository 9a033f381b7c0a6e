# `make run` and `make test` are all a fresh machine needs: both set up .venv on first use,
# and `make test` fetches its test peers with npm into .peers/ (nothing outside the checkout).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

# Test peers, pinned. Prism serves Twilio's OpenAPI spec and validates every request the
# Twilio adapter makes. Twilio publishes that spec in its own npm package, @twilio/cli-core
# (src/services/twilio-api/twilio_api_v2010.json); only that file is taken from it, with
# `npm pack` (the package tarball, checked against the registry's integrity hash), so none
# of the CLI's own dependencies are installed. Bumping a version re-fetches (the stamps
# carry the versions). OMNICONSOLE_TWILIO_SPEC, if set, makes the tests use another file.
PRISM_VERSION := 5.16.0
TWILIO_CLI_CORE_VERSION := 9.0.0
PRISM := .peers/node_modules/.bin/prism
PRISM_STAMP := .peers/prism-$(PRISM_VERSION).stamp
TWILIO_SPEC := .peers/twilio/twilio_api_v2010.json
TWILIO_STAMP := .peers/twilio/cli-core-$(TWILIO_CLI_CORE_VERSION).stamp
# One quick retry, not npm's default of two spread over a minute: an unreachable registry
# should stop `make test` within seconds.
NPM_FLAGS := --no-audit --no-fund --loglevel=error --fetch-retries=1 --fetch-retry-mintimeout=2000 --fetch-retry-maxtimeout=10000

.PHONY: run test peers lint bench replay clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

$(PRISM_STAMP):
	@command -v npm >/dev/null || { echo >&2 "make: npm not found: the tests need Node.js and npm to install Prism"; exit 1; }
	@mkdir -p .peers
	npm install $(NPM_FLAGS) --prefix .peers @stoplight/prism-cli@$(PRISM_VERSION) \
	  || { echo >&2 "make: npm could not install @stoplight/prism-cli@$(PRISM_VERSION) into .peers/ (see npm's message above)"; exit 1; }
	@test -x $(PRISM) || { echo >&2 "make: npm finished but $(PRISM) is missing"; exit 1; }
	@rm -f .peers/prism-*.stamp
	touch $@

# The bare path stays a target: `make .peers/node_modules/.bin/prism` installs Prism alone.
$(PRISM): $(PRISM_STAMP)

$(TWILIO_STAMP):
	@command -v npm >/dev/null || { echo >&2 "make: npm not found: the tests need npm to fetch Twilio's OpenAPI spec"; exit 1; }
	@rm -rf .peers/twilio.tmp && mkdir -p .peers/twilio.tmp
	npm pack $(NPM_FLAGS) --pack-destination .peers/twilio.tmp @twilio/cli-core@$(TWILIO_CLI_CORE_VERSION) >/dev/null \
	  || { echo >&2 "make: npm could not fetch @twilio/cli-core@$(TWILIO_CLI_CORE_VERSION) (see npm's message above)"; exit 1; }
	tar -xzf .peers/twilio.tmp/twilio-cli-core-$(TWILIO_CLI_CORE_VERSION).tgz -C .peers/twilio.tmp \
	  package/src/services/twilio-api/twilio_api_v2010.json package/LICENSE \
	  || { echo >&2 "make: twilio_api_v2010.json not found in @twilio/cli-core@$(TWILIO_CLI_CORE_VERSION)"; exit 1; }
	@rm -rf .peers/twilio && mkdir -p .peers/twilio
	mv .peers/twilio.tmp/package/src/services/twilio-api/twilio_api_v2010.json .peers/twilio.tmp/package/LICENSE .peers/twilio/
	@rm -rf .peers/twilio.tmp
	touch $@

$(TWILIO_SPEC): $(TWILIO_STAMP)

peers: $(PRISM_STAMP) $(TWILIO_STAMP)

run: $(STAMP)
	$(BIN)/omniconsole demo

replay: $(STAMP)
	mkdir -p out
	$(BIN)/omniconsole replay examples/sample.jsonl --db out/sample.db --ledger out/ledger.jsonl --report out/report.json --rejects out/rejects.jsonl --fresh --table

# pytest runs last, on the whole suite, so the output ends with its summary line. The peer
# check before it fails in seconds, with one line, if a peer is missing or broken.
test: peers $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/python tests/peers.py
	$(BIN)/pytest

# The engine against the plain reference loop on two 100k-customer workloads; it also
# measures what replay_throughput.py did (events/s, peak RSS), on the same bench log.
bench: $(STAMP)
	$(BIN)/python benchmarks/engine_vs_reference.py

clean:
	rm -rf $(VENV) .peers out
