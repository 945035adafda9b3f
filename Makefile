# The two commands of the README. Both work on a fresh Debian 12 machine as root: scripts/setup.sh
# installs what is missing (Debian packages; pinned files from PyPI) and is quick when already done.
SHELL := /bin/bash
CARGO ?= cargo
DFD := target/release/dfd

.PHONY: run test setup build demo lint bench gpu

run: demo
	$(DFD) run

test: setup
	$(CARGO) fmt --all --check
	$(CARGO) clippy --release --workspace --all-targets -- -D warnings
	$(CARGO) build --release --workspace --all-targets
	bash scripts/run-tests.sh

setup:
	bash scripts/setup.sh

# The GPU build (needs a Linux x86_64 machine; an NVIDIA GPU to use it): libtorch with CUDA and
# ONNX Runtime's CUDA provider from PyPI, pinned, and target/gpu/release/dfd built with the `tch`
# feature; run it through vendor/gpu-env.sh (see the README's "GPU" section).
gpu:
	bash scripts/setup.sh --gpu

build: setup
	$(CARGO) build --release --workspace

# The demo dataset (REAL registry clips and face-swap FAKEs), cached like a stage: `dfd demo-data`
# reuses data/demo when its fingerprint (seed, size, generator version, MTCNN settings, media sha256)
# matches the request and rebuilds it otherwise; an interrupted build never leaves a half dataset.
DEMO_SEED ?= 0
DEMO_VIDEOS ?= 100
demo: build
	$(DFD) demo-data --out data/demo --seed $(DEMO_SEED) --videos $(DEMO_VIDEOS) \
	  --contact-sheet data/demo-contact-sheet.png

lint:
	$(CARGO) fmt --all --check
	$(CARGO) clippy --release --workspace --all-targets -- -D warnings

bench: build
	$(DFD) bench decode && $(DFD) bench rerun
