#!/usr/bin/env sh
# Builds the worker (build/index.js + wasm) with worker-build, pointing it at the pinned local
# wasm-bindgen, wasm-opt and esbuild so it downloads nothing. wrangler.toml's [build] runs this,
# so `npx wrangler deploy` works straight after clone + `npm ci`: when a pinned tool is missing,
# this runs scripts/setup.sh first (idempotent). KEYGATE_NO_AUTO_SETUP=1 prints what to run
# instead of running it.
set -eu
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PWD/node_modules/.bin:$PATH"

# The pins: worker-build's from setup.sh, wasm-bindgen's from Cargo.lock (the CLI must equal the
# library the worker links).
worker_build_pin="$(sed -n -E 's/^WORKER_BUILD_VERSION=([^[:space:]]+).*/\1/p' scripts/setup.sh)"
wasm_bindgen_pin="$(awk '$0 == "name = \"wasm-bindgen\"" { getline; gsub(/"/, "", $3); print $3; exit }' Cargo.lock)"
version_of() { # $1 = binary; its version, or nothing
  command -v "$1" >/dev/null 2>&1 && "$1" --version 2>/dev/null | awk '{print $NF}' || true
}
missing_tools() { # one line per missing or mismatched tool
  if ! command -v rustup >/dev/null 2>&1; then
    echo "rustup (and cargo)"
  elif ! rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown; then
    echo "Rust target wasm32-unknown-unknown"
  fi
  [ "$(version_of worker-build)" = "$worker_build_pin" ] || echo "worker-build $worker_build_pin"
  [ "$(version_of wasm-bindgen)" = "$wasm_bindgen_pin" ] || echo "wasm-bindgen-cli $wasm_bindgen_pin"
  for tool in wasm-opt esbuild; do
    [ -x "node_modules/.bin/$tool" ] || echo "node_modules ($tool)"
  done
}

missing="$(missing_tools)"
if [ -n "$missing" ]; then
  echo "build.sh: missing:" >&2
  printf '%s\n' "$missing" | sed 's/^/  /' >&2
  if printf '%s\n' "$missing" | grep -q '^rustup'; then
    echo "build.sh: install Rust with rustup first (https://rustup.rs), then run: bash scripts/setup.sh" >&2
    exit 1
  fi
  if [ -n "${KEYGATE_NO_AUTO_SETUP:-}" ]; then
    echo "build.sh: run: bash scripts/setup.sh" >&2
    exit 1
  fi
  echo "build.sh: running bash scripts/setup.sh (pinned, idempotent; the first time takes a few minutes)" >&2
  bash scripts/setup.sh >&2
  missing="$(missing_tools)"
  if [ -n "$missing" ]; then
    echo "build.sh: still missing after setup.sh: $missing" >&2
    echo "build.sh: scripts/setup.sh's WASM_BINDGEN_VERSION must equal wasm-bindgen in Cargo.lock ($wasm_bindgen_pin)" >&2
    exit 1
  fi
fi

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
# static files (build/console_assets.js, from crates/worker/console/), holds the admin API's
# OpenAPI document for the Rust side (build/openapi_document.js) and hands everything else to
# worker-build's module, renamed build/keygate.js. wrangler bundles the four with the wasm.
if [ "$keygate" = true ]; then
  mv build/index.js build/keygate.js
  node scripts/console-assets.mjs
  cp crates/worker/js/entry.js build/index.js
fi
