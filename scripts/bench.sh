#!/usr/bin/env bash
# `make bench`: what keygate costs per request, measured against a bare pass-through worker on
# the same runtime, plus native micro-benchmarks of the pure core. See benches/README.md.
#
#  1. tools: scripts/setup.sh (pinned Rust/Node tooling), wrk and nginx from Debian's packages;
#  2. release builds: keygate (scripts/build.sh → build/) and benches/passthrough (the same
#     scripts/build.sh, so the same worker-build, wasm-bindgen, wasm-opt, esbuild and profile,
#     → target/bench/passthrough-build/);
#  3. native micro-benchmarks: cargo bench --bench core (→ target/bench/core.json), and the
#     outbound request construction inside workerd: benches/outbound.mjs (→ outbound.json);
#  4. an nginx origin on a free 127.0.0.1 port, configured in a temporary directory;
#  5. benches/run.mjs: both workers in one workerd process through Miniflare's Node API, each on
#     its own workerd socket; keys seeded through the admin API; startup; wrk per scenario;
#     → target/bench/report.json (printed too).
# Everything started here is stopped when the script ends, on success, failure or Ctrl-C.
#
# Settings: BENCH_SECONDS (10), BENCH_WARMUP (2), BENCH_CONNECTIONS (16), BENCH_THREADS (1),
# BENCH_STARTUP_RUNS (3), BENCH_SKIP_CORE=1 (no micro-benchmarks), BENCH_SKIP_BUILD=1 (use the
# existing builds).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PWD/node_modules/.bin:$PATH"
export WRANGLER_SEND_METRICS=false

WRK_VERSION=4.1.0-3+b2   # Debian bookworm's wrk; nginx follows Debian's security updates (recorded in the report)

log() { printf '[bench] %s\n' "$*" >&2; }
die() { printf 'bench: %s\n' "$*" >&2; exit 1; }

for setting in BENCH_SECONDS BENCH_WARMUP BENCH_CONNECTIONS BENCH_THREADS BENCH_STARTUP_RUNS; do
  value="${!setting:-}"
  case "$value" in '' ) ;; *[!0-9]* | 0) die "$setting must be a positive whole number, got '$value'" ;; esac
done
[ "${BENCH_SECONDS:-10}" -le 600 ] || die "BENCH_SECONDS must be at most 600"

TMP=""
node_pid=""
nginx_pid=""
cleanup() {
  local status=$?
  trap - EXIT INT TERM
  if [ -n "$node_pid" ]; then
    # The driver runs in its own process group with workerd (Miniflare's child) and wrk in it.
    kill -TERM -- "-$node_pid" 2>/dev/null || kill -TERM "$node_pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 -- "-$node_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL -- "-$node_pid" 2>/dev/null || true
  fi
  if [ -n "$nginx_pid" ]; then
    kill -TERM "$nginx_pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$nginx_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$nginx_pid" 2>/dev/null || true
  fi
  wait 2>/dev/null || true
  [ -n "$TMP" ] && rm -rf "$TMP"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- 1. tools ------------------------------------------------------------------------------
bash scripts/setup.sh
NGINX="$(command -v nginx || true)"
[ -n "$NGINX" ] || { [ -x /usr/sbin/nginx ] && NGINX=/usr/sbin/nginx; }
if ! command -v wrk >/dev/null 2>&1 || [ -z "$NGINX" ]; then
  SUDO=""
  [ "$(id -u)" = 0 ] || SUDO="sudo"
  log "installing wrk $WRK_VERSION and nginx from Debian's packages"
  $SUDO apt-get update -qq
  # Services never start from the install here (the image's policy-rc.d); nginx runs below, as configured.
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "wrk=$WRK_VERSION" nginx \
    || DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends wrk nginx
  NGINX="$(command -v nginx || echo /usr/sbin/nginx)"
fi
command -v wrk >/dev/null 2>&1 || die "wrk is missing"
[ -x "$NGINX" ] || die "nginx is missing"
NODE="$PWD/node_modules/.bin/node"
[ -x "$NODE" ] || die "node_modules/.bin/node is missing: run 'make setup'"

# --- 2. release builds -----------------------------------------------------------------------
if [ "${BENCH_SKIP_BUILD:-}" != 1 ]; then
  log "building keygate (release, scripts/build.sh)"
  sh scripts/build.sh
  log "building the pass-through worker (release, the same scripts/build.sh)"
  CARGO_TARGET_DIR="$PWD/target/bench/passthrough-target" WASM_OUT=target/bench/passthrough-build/index_bg.wasm \
    sh scripts/build.sh benches/passthrough --out-dir ../../target/bench/passthrough-build
fi
mkdir -p target/bench

# --- 3. native micro-benchmarks ----------------------------------------------------------------
if [ "${BENCH_SKIP_CORE:-}" != 1 ]; then
  log "native micro-benchmarks (cargo bench --bench core)"
  rm -f target/bench/core.json
  KEYGATE_BENCH_JSON="$PWD/target/bench/core.json" cargo bench --quiet --bench core
  log "outbound request construction inside workerd (benches/outbound.mjs)"
  rm -f target/bench/outbound.json
  "$NODE" benches/outbound.mjs target/bench/outbound.json
fi

# --- 4. the origin: nginx on a free loopback port ----------------------------------------------
TMP="$(mktemp -d "${TMPDIR:-/tmp}/keygate-bench.XXXXXX")"
mkdir -p "$TMP/nginx"
port="$("$NODE" -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')"
cat > "$TMP/nginx/nginx.conf" <<CONF
# keygate bench origin (generated by scripts/bench.sh; lives only for one run)
daemon off;
worker_processes 1;
pid $TMP/nginx/nginx.pid;
error_log $TMP/nginx/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $TMP/nginx/client_body;
  proxy_temp_path $TMP/nginx/proxy;
  fastcgi_temp_path $TMP/nginx/fastcgi;
  uwsgi_temp_path $TMP/nginx/uwsgi;
  scgi_temp_path $TMP/nginx/scgi;
  keepalive_requests 10000000;
  keepalive_timeout 75s;
  server {
    listen 127.0.0.1:$port;
    default_type application/json;
    location / { return 200 '{"ok":true,"origin":"nginx","note":"keygate bench origin"}\n'; }
  }
}
CONF
# With 2+ CPUs the load side (nginx, wrk) runs on CPU 0 and workerd on the last CPU (run.mjs
# pins them; BENCH_PIN=0 turns this off), so the gateway never competes with its own load.
PIN_LOAD=""
if [ "${BENCH_PIN:-1}" != 0 ] && [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null 2>&1; then
  PIN_LOAD="taskset -c 0"
fi
$PIN_LOAD "$NGINX" -p "$TMP/nginx/" -c "$TMP/nginx/nginx.conf" -e "$TMP/nginx/error.log" &
nginx_pid=$!
origin_up() { (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; }
for _ in $(seq 100); do origin_up && break; kill -0 "$nginx_pid" 2>/dev/null || break; sleep 0.1; done
origin_up || die "nginx did not listen on 127.0.0.1:$port: $(cat "$TMP/nginx/error.log" 2>/dev/null)"
NGINX_VERSION="$("$NGINX" -v 2>&1 | sed -n 's|.*nginx/||p')"
log "origin: nginx $NGINX_VERSION on http://127.0.0.1:$port (pid $nginx_pid)"

# --- 5. load -----------------------------------------------------------------------------------
export ORIGIN_URL="http://127.0.0.1:$port"
export BENCH_TMP="$TMP"
export BENCH_ORIGIN="nginx/$NGINX_VERSION (1 worker process, static JSON)"
BENCH_WRK_VERSION="$(dpkg-query -W -f='${Version}' wrk 2>/dev/null || wrk -v 2>&1 | head -n1)"
export BENCH_WRK_VERSION
BENCH_RUSTC="$(rustc --version)"
export BENCH_RUSTC
setsid "$NODE" benches/run.mjs &
node_pid=$!
status=0
wait "$node_pid" || status=$?
[ "$status" = 0 ] || die "the load driver failed (status $status)"
