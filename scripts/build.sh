#!/usr/bin/env sh
# Builds the worker (build/index.js + wasm) with worker-build, pointing it at the pinned local
# wasm-bindgen, wasm-opt and esbuild so it downloads nothing. wrangler.toml's [build] runs this.
set -eu
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PWD/node_modules/.bin:$PATH"
export WASM_BINDGEN_BIN="${WASM_BINDGEN_BIN:-$HOME/.cargo/bin/wasm-bindgen}"
export WASM_OPT_BIN="${WASM_OPT_BIN:-$PWD/node_modules/.bin/wasm-opt}"
export ESBUILD_BIN="${ESBUILD_BIN:-$PWD/node_modules/.bin/esbuild}"
# Without arguments: keygate's worker crate, into build/ (wrangler.toml's main), with the key
# console in front of it (below).
keygate=false
if [ "$#" -eq 0 ]; then set -- crates/worker --out-dir ../../build; keygate=true; fi
worker-build --release "$@"
# The function-name section is only for debugging; dropping it saves ~170 KB raw (~33 KB
# gzipped). No optimisation pass runs here, so the code itself is unchanged. WASM_OUT names the
# module when building something other than keygate into build/.
wasm="${WASM_OUT:-build/index_bg.wasm}"
"$WASM_OPT_BIN" "$wasm" --all-features --strip-debug --strip-producers -o "$wasm"
# keygate's entry (build/index.js) is crates/worker/js/entry.js: it serves the key console's
# static files (build/console_assets.js, from crates/worker/console/) and hands everything else to
# worker-build's module, renamed build/keygate.js. wrangler bundles the three with the wasm.
if [ "$keygate" = true ]; then
  mv build/index.js build/keygate.js
  node scripts/console-assets.mjs
  cp crates/worker/js/entry.js build/index.js
fi
