#!/usr/bin/env bash
# Installs every tool keygate needs, pinned, from the package registries only.
# Idempotent: each step checks what is already there and is a no-op when it matches.
set -euo pipefail
cd "$(dirname "$0")/.."

WORKER_BUILD_VERSION=0.8.7
WASM_BINDGEN_VERSION=0.2.130   # must equal the wasm-bindgen version in Cargo.lock

export PATH="$HOME/.cargo/bin:$PATH"

log() { printf '[setup] %s\n' "$*" >&2; }

if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown; then
  log "adding rust target wasm32-unknown-unknown"
  rustup target add wasm32-unknown-unknown
fi

# make test checks formatting and lints.
for component in rustfmt clippy; do
  if ! rustup component list --installed 2>/dev/null | grep -q "^$component"; then
    log "adding rust component $component"
    rustup component add "$component"
  fi
done

installed_version() { # $1 = binary, prints its version or nothing
  command -v "$1" >/dev/null 2>&1 && "$1" --version 2>/dev/null | awk '{print $NF}' || true
}

if [ "$(installed_version worker-build)" != "$WORKER_BUILD_VERSION" ]; then
  log "installing worker-build $WORKER_BUILD_VERSION (a few minutes, once)"
  cargo install --locked worker-build --version "$WORKER_BUILD_VERSION"
fi

if [ "$(installed_version wasm-bindgen)" != "$WASM_BINDGEN_VERSION" ]; then
  log "installing wasm-bindgen-cli $WASM_BINDGEN_VERSION"
  # --locked pins wasm-bindgen-cli's own lockfile, which names a webpki-roots release the
  # registry no longer serves; fall back to a fresh resolution of the same pinned version.
  cargo install --locked wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION" \
    || cargo install wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION"
fi

# Node tooling (wrangler, node 22, esbuild, binaryen) is pinned in package-lock.json. `npm ci`
# installs exactly the lock file and never rewrites it (`npm install` would, on a newer npm), so a
# checkout stays clean after setup.
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  log "npm ci (versions pinned by package-lock.json)"
  npm ci --no-audit --no-fund --loglevel=error
fi
# The origin-side token snippets (docs/verify/) are run by tests/identity_snippets.rs: Node's is
# verified with jose (package-lock.json above), Python's with PyJWT, Go's with golang-jwt v4.
PYJWT_VERSION=2.10.1
if ! PYTHONPATH=target/pydeps python3 -c "import jwt, sys; sys.exit(jwt.__version__ != '$PYJWT_VERSION')" 2>/dev/null; then
  log "installing PyJWT $PYJWT_VERSION into target/pydeps"
  python3 -m pip install --quiet --disable-pip-version-check --no-input --root-user-action=ignore --upgrade \
    --target target/pydeps "PyJWT==$PYJWT_VERSION"
fi

# Debian packages, in one apt-get run when any is missing:
# - chromium: the key console's browser test (tests/console.rs) drives it headless; where it
#   cannot be installed (not root, no apt) that test is skipped with a message;
# - golang-go and golang-github-golang-jwt-jwt-dev (bookworm: Go 1.19, golang-jwt 4.4.3):
#   tests/identity_snippets.rs builds docs/verify/verify.go offline against the packaged source
#   (a go.mod `replace` to /usr/share/gocode), so nothing is fetched from the Go proxy. Required.
need_chromium=false
need_go=false
command -v chromium >/dev/null 2>&1 || need_chromium=true
if ! command -v go >/dev/null 2>&1 || [ ! -f /usr/share/gocode/src/github.com/golang-jwt/jwt/go.mod ]; then
  need_go=true
fi
as_root=""
if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1; then as_root="sudo"; fi
can_apt=false
if command -v apt-get >/dev/null 2>&1 && { [ "$(id -u)" = 0 ] || [ -n "$as_root" ]; }; then can_apt=true; fi
browser=""
if [ "$need_chromium" = true ]; then
  if [ "$can_apt" = true ]; then
    browser="chromium"
  else
    log "chromium is not installed and cannot be installed here (needs root and apt-get):"
    log "  the console's browser test will be skipped; install it with 'apt-get install chromium'"
  fi
fi
if [ "$need_go" = true ]; then
  if [ "$can_apt" != true ]; then
    log "tests/identity_snippets.rs needs Go and golang-jwt v4 source at /usr/share/gocode (Debian's"
    log "golang-go and golang-github-golang-jwt-jwt-dev); no apt-get here: install them by hand"
    exit 1
  fi
  golang="golang-go golang-github-golang-jwt-jwt-dev"
fi
if [ -n "$browser" ] || [ -n "${golang:-}" ]; then
  log "installing Debian packages: $browser ${golang:-} (apt)"
  $as_root apt-get update -qq
  if [ -n "$browser" ]; then
    $as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$browser" >/dev/null
  fi
  if [ -n "${golang:-}" ]; then
    # shellcheck disable=SC2086 # the package list is meant to split
    $as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $golang >/dev/null
  fi
fi
log "tools ready"
