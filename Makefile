# pond: the two set-up commands for a fresh machine are `make demo` and `make test`.
SHELL := bash
.SHELLFLAGS := -euo pipefail -c

TOOLS := $(CURDIR)/.tools
B3SUM_VERSION := 1.8.7
VENV := $(CURDIR)/.venv
SECANTUSDB_VERSION := 0.7.0b3
PYMONGO_VERSION := 4.20.0
PYTHON ?= python3
export PATH := $(TOOLS)/bin:$(PATH)
# Tests that need a MongoDB-protocol server start this one (see crates/pond/tests/support/mongo.rs).
export SECANTUSD := $(VENV)/bin/secantusd-py
# Tests that cannot run on this machine say so here (crates/pond/tests/support: skipped());
# `make test` prints them at the end: a skipped test is not a pass.
export POND_TEST_SKIPS := $(CURDIR)/target/test-skips.txt

.PHONY: test demo tools build fmt-check clippy unit clean-tools

## test: format check, clippy with warnings as errors, and every test (installs what it needs)
test: tools
	rm -f $(POND_TEST_SKIPS)
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets --locked -- -D warnings
	cargo test --workspace --locked
	python3 -m unittest testdata/test_hlgen.py
	@if [ -s $(POND_TEST_SKIPS) ]; then \
		echo "$$(wc -l < $(POND_TEST_SKIPS)) test(s) could not run on this machine:"; \
		cat $(POND_TEST_SKIPS); \
	else \
		echo "every test ran (none skipped)"; \
	fi

## demo: the live pipeline for ~30 s: hlgen writes hour files, `follow` mirrors them into a fresh pond and
## a local SecantusDB; then counts, latency and the pond's view (DEMO_RATE lines/s, default 2000; DEMO_SECONDS)
demo: build $(VENV)/.installed
	$(VENV)/bin/python testdata/demo.py target/debug/pond

build:
	cargo build --locked -p pond

## tools: b3sum (tests compare pond's hashes with it) under .tools/, SecantusDB and pymongo in .venv/
tools: $(TOOLS)/bin/b3sum $(VENV)/.installed

$(VENV)/.installed:
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check SecantusDB==$(SECANTUSDB_VERSION) pymongo==$(PYMONGO_VERSION)
	touch $@

$(TOOLS)/bin/b3sum:
	cargo install b3sum --version $(B3SUM_VERSION) --locked --root $(TOOLS)

clean-tools:
	rm -rf $(TOOLS) $(VENV)
