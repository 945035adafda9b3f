# The two commands of the README. Both work on a fresh Debian 12 machine as root: scripts/setup.sh
# installs what is missing (Debian packages; pinned files from PyPI) and is quick when already done.
SHELL := /bin/bash
CARGO ?= cargo
DFD := target/release/dfd

.PHONY: run test setup build demo lint bench

run: demo
	$(DFD) run

test: setup
	$(CARGO) fmt --all --check
	$(CARGO) clippy --release --workspace --all-targets -- -D warnings
	$(CARGO) build --release --workspace --all-targets
	bash scripts/run-tests.sh

setup:
	bash scripts/setup.sh

build: setup
	$(CARGO) build --release --workspace

# The demo dataset (REAL registry clips and face-swap FAKEs), made once; delete data/demo to remake it.
demo: build
	test -f data/demo/.made-by-dfd-demo-data || \
	  ($(DFD) demo-data --out data/demo --contact-sheet data/demo-contact-sheet.png && \
	   touch data/demo/.made-by-dfd-demo-data)

lint:
	$(CARGO) fmt --all --check
	$(CARGO) clippy --release --workspace --all-targets -- -D warnings

bench: build
	$(DFD) bench decode && $(DFD) bench rerun
