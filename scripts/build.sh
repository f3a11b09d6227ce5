#!/usr/bin/env sh
# Builds the worker (build/index.js + wasm) with worker-build, pointing it at the pinned local
# wasm-bindgen, wasm-opt and esbuild so it downloads nothing. wrangler.toml's [build] runs this.
set -eu
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PWD/node_modules/.bin:$PATH"
export WASM_BINDGEN_BIN="${WASM_BINDGEN_BIN:-$HOME/.cargo/bin/wasm-bindgen}"
export WASM_OPT_BIN="${WASM_OPT_BIN:-$PWD/node_modules/.bin/wasm-opt}"
export ESBUILD_BIN="${ESBUILD_BIN:-$PWD/node_modules/.bin/esbuild}"
exec worker-build --release "$@"
