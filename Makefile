# keygate — two commands: `make dev` (run locally with demo keys) and `make test` (everything).
SHELL := /bin/bash
export PATH := $(HOME)/.cargo/bin:$(CURDIR)/node_modules/.bin:$(PATH)
export WRANGLER_SEND_METRICS := false

.PHONY: setup build dev test unit integration fmt clippy doc clean fuzz bench

## Install pinned tools (idempotent; fast when already installed).
setup:
	@bash scripts/setup.sh

## Build the worker (build/index.js + wasm) and the native binaries (`keygate`, `keygate-demo`).
build: setup
	@sh scripts/build.sh
	@cargo build --quiet --workspace --bins

## Run keygate locally: demo origins, wrangler dev with local KV, demo keys printed. wrangler
## dev builds the worker itself (wrangler.toml [build]), so only the native binaries are built here.
dev: setup
	@cargo build --quiet --workspace --bins
	@bash scripts/dev.sh

## Formatting, lints (native and wasm32, warnings denied), API docs with warnings denied (broken
## intra-doc links fail), the fuzz targets still compile, native unit tests, then integration
## tests against the real worker under wrangler dev, and `wrangler deploy --dry-run` of each
## deployable environment (tests/deploy.rs, on the build/ made here).
test: build fmt clippy doc
	cargo check --quiet --locked --manifest-path fuzz/Cargo.toml
	cargo test --workspace --lib --bins
	cargo test --test '*' -- --test-threads=8

## API docs of the library, native and wasm32 (the Workers glue), warnings denied.
doc:
	RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --lib --quiet
	RUSTDOCFLAGS="-D warnings" cargo doc -p keygate-core -p keygate-worker -p keygate-verify --no-deps --lib --quiet --target wasm32-unknown-unknown

unit:
	cargo test --workspace --lib --bins

## Fuzz every target for FUZZ_SECONDS each (default 60); needs the nightly toolchain.
fuzz:
	@bash scripts/fuzz.sh

## Benchmarks: load against a bare pass-through worker and keygate, plus native micro-benchmarks.
bench:
	@bash scripts/bench.sh

## rustfmt.toml's style, checked (`cargo fmt --all` applies it).
fmt:
	cargo fmt --all --check

clippy:
	cargo clippy --workspace --all-targets -- -D warnings
	cargo clippy -p keygate-core -p keygate-worker -p keygate-verify --lib --target wasm32-unknown-unknown -- -D warnings

clean:
	rm -rf build target/bench .wrangler
