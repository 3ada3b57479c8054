# Two commands set up a fresh machine: `make run` and `make test`.
# Cargo's target dir lives outside the clone so CI runs and later sessions on the same machine
# reuse compiled dependencies (RocksDB's C++ takes 15-45 minutes from scratch on 2 cores).
# One profile (release) serves run, test and bench, so RocksDB is compiled once.
export CARGO_TARGET_DIR ?= $(HOME)/.cache/sealdb/target
CARGO ?= cargo
BIN := $(CARGO_TARGET_DIR)/release/sealdb
ARGS ?=

.PHONY: deps pyenv build run test fmt-check clippy unit bench fmt fuzz

deps:
	@scripts/ensure-deps.sh

## moto's server (PyPI, pinned) in a project-local venv, for the `aws` KMS provider's tests.
pyenv:
	@scripts/python-venv.sh >/dev/null

build: deps
	$(CARGO) build --release --locked --bins

## Start the server on 127.0.0.1:8000 with embedded RocksDB and the local KMS (data in ./data).
run: build
	$(BIN) serve $(ARGS)

fmt-check:
	$(CARGO) fmt --all -- --check

clippy: deps
	$(CARGO) clippy --release --locked --workspace --all-targets -- -D warnings

unit: deps
	$(CARGO) test --release --locked --workspace

## Quality gates, then the whole suite (integration tests start their own servers on port 0).
test: deps pyenv fmt-check clippy unit

bench: deps
	$(CARGO) bench --locked --workspace

fmt:
	$(CARGO) fmt --all

## cargo-fuzz (libFuzzer) over every decoder of network input; not part of `make test`.
## FUZZ_SECS per target (default 60). Uses its own target dir (~/.cache/sealdb/fuzz-target).
FUZZ_SECS ?= 60
fuzz:
	@scripts/fuzz.sh $(FUZZ_SECS)
