#!/usr/bin/env bash
# `make dev`: demo origins (live + test), wrangler dev with local KV seeded with demo keys.
# Ctrl-C stops everything. Ports: PORT (gateway, 8787), ORIGIN_PORT (8788), ORIGIN_TEST_PORT (8789).
set -euo pipefail
cd "$(dirname "$0")/.."
PORT="${PORT:-8787}"
ORIGIN_PORT="${ORIGIN_PORT:-8788}"
ORIGIN_TEST_PORT="${ORIGIN_TEST_PORT:-8789}"
STATE_DIR="${STATE_DIR:-.wrangler/state}"
KEYGATE=target/debug/keygate

# A clearly dev-only signing secret unless the developer set one in .dev.vars.
if [ ! -f .dev.vars ]; then
  printf '# Local-only secrets for wrangler dev. Never use these values in production.\nORIGIN_SIGNING_SECRET="dev-only-signing-secret-not-for-production"\n' > .dev.vars
fi
# shellcheck disable=SC1091
ORIGIN_SIGNING_SECRET="$(sed -n 's/^ORIGIN_SIGNING_SECRET="\{0,1\}\([^"]*\)"\{0,1\}$/\1/p' .dev.vars | head -n1)"
export ORIGIN_SIGNING_SECRET

pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM

"$KEYGATE" demo-origin --host 127.0.0.1 --port "$ORIGIN_PORT" --label live & pids+=($!)
"$KEYGATE" demo-origin --host 127.0.0.1 --port "$ORIGIN_TEST_PORT" --label test & pids+=($!)

# Fresh demo keys each run: records (hashes only) go to local KV, plaintext only to this terminal.
seed="$(mktemp)"
keys_listing="$("$KEYGATE" demo-keys --kv-out "$seed" --gateway-url "http://127.0.0.1:$PORT")"
wrangler kv bulk put --local --persist-to "$STATE_DIR" --binding KEYS "$seed" >/dev/null
rm -f "$seed"

wrangler dev --ip 127.0.0.1 --port "$PORT" --persist-to "$STATE_DIR" \
  --var "ORIGIN_URL:http://127.0.0.1:$ORIGIN_PORT" --var "ORIGIN_URL_TEST:http://127.0.0.1:$ORIGIN_TEST_PORT" \
  --show-interactive-dev-session=false & pids+=($!)

cat <<MSG

keygate dev is starting on http://127.0.0.1:$PORT (origins: live :$ORIGIN_PORT, test :$ORIGIN_TEST_PORT)
Demo keys (shown once, stored only as SHA-256 hashes):

$keys_listing

Ctrl-C stops everything.
MSG
wait
