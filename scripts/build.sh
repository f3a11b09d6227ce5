#!/usr/bin/env sh
# Builds the worker (build/index.js + wasm) with worker-build, pointing it at the pinned local
# wasm-bindgen, wasm-opt and esbuild so it downloads nothing. wrangler.toml's [build] runs this.
set -eu
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PWD/node_modules/.bin:$PATH"
export WASM_BINDGEN_BIN="${WASM_BINDGEN_BIN:-$HOME/.cargo/bin/wasm-bindgen}"
export WASM_OPT_BIN="${WASM_OPT_BIN:-$PWD/node_modules/.bin/wasm-opt}"
export ESBUILD_BIN="${ESBUILD_BIN:-$PWD/node_modules/.bin/esbuild}"
# Without arguments: keygate's worker crate, into build/ (wrangler.toml's main).
if [ "$#" -eq 0 ]; then set -- crates/worker --out-dir ../../build; fi
worker-build --release "$@"
# The function-name section is only for debugging; dropping it saves ~170 KB raw (~33 KB
# gzipped). No optimisation pass runs here, so the code itself is unchanged. WASM_OUT names the
# module when building something other than keygate into build/.
wasm="${WASM_OUT:-build/index_bg.wasm}"
"$WASM_OPT_BIN" "$wasm" --all-features --strip-debug --strip-producers -o "$wasm"
