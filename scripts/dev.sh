#!/usr/bin/env bash
# `make dev`: demo origins (live + test), wrangler dev with local KV seeded with fresh demo keys.
# Ctrl-C stops everything; so does any one of the three processes exiting.
# Ports: PORT (gateway, 8787), ORIGIN_PORT (live origin, 8788), ORIGIN_TEST_PORT (test origin, 8789).
# STATE_DIR (default .wrangler/state) holds the local KV data; .dev.vars the local signing secret.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PWD/node_modules/.bin:$PATH"
export WRANGLER_SEND_METRICS=false
PORT="${PORT:-8787}"
ORIGIN_PORT="${ORIGIN_PORT:-8788}"
ORIGIN_TEST_PORT="${ORIGIN_TEST_PORT:-8789}"
STATE_DIR="${STATE_DIR:-.wrangler/state}"
KEYGATE=target/debug/keygate

die() { printf 'dev: %s\n' "$*" >&2; exit 1; }

[ -x "$KEYGATE" ] || die "$KEYGATE is missing: run 'make dev' (it builds first)"
command -v wrangler >/dev/null 2>&1 || die "wrangler is missing: run 'make setup'"

# Fail early and clearly instead of starting half of the stack.
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for p in "$PORT" "$ORIGIN_PORT" "$ORIGIN_TEST_PORT"; do
  case "$p" in '' | *[!0-9]*) die "port '$p' is not a number" ;; esac
  if port_busy "$p"; then
    die "127.0.0.1:$p is already in use; pick other ports, e.g. PORT=9787 ORIGIN_PORT=9788 ORIGIN_TEST_PORT=9789 make dev"
  fi
done
if [ "$PORT" = "$ORIGIN_PORT" ] || [ "$PORT" = "$ORIGIN_TEST_PORT" ] || [ "$ORIGIN_PORT" = "$ORIGIN_TEST_PORT" ]; then
  die "PORT, ORIGIN_PORT and ORIGIN_TEST_PORT must differ"
fi

# The signing secret: wrangler dev reads it from .dev.vars; the demo origins get the same value.
# A fresh checkout has no .dev.vars, so make a random, local-only one.
new_secret() { od -An -N24 -tx1 /dev/urandom | tr -d ' \n'; }
read_secret() { # last ORIGIN_SIGNING_SECRET= line of .dev.vars, quotes and trailing comment removed
  sed -n -E 's/^[[:space:]]*(export[[:space:]]+)?ORIGIN_SIGNING_SECRET[[:space:]]*=[[:space:]]*//p' .dev.vars \
    | tail -n1 | tr -d '\r' \
    | sed -E -e "s/^\"([^\"]*)\".*$/\1/" -e t -e "s/^'([^']*)'.*$/\1/" -e t \
        -e 's/[[:space:]]+#.*$//' -e 's/[[:space:]]+$//'
}
if [ ! -f .dev.vars ]; then
  printf '# Local-only secrets for wrangler dev (git-ignored). Never use these values in production.\nORIGIN_SIGNING_SECRET="%s"\n' \
    "$(new_secret)" > .dev.vars
  echo "dev: created .dev.vars with a random local ORIGIN_SIGNING_SECRET" >&2
elif [ -z "$(read_secret)" ]; then
  printf '\n# Added by make dev: local-only signing secret.\nORIGIN_SIGNING_SECRET="%s"\n' "$(new_secret)" >> .dev.vars
  echo "dev: added a random local ORIGIN_SIGNING_SECRET to .dev.vars" >&2
fi
ORIGIN_SIGNING_SECRET="$(read_secret)"
[ "${#ORIGIN_SIGNING_SECRET}" -ge 16 ] || die "ORIGIN_SIGNING_SECRET in .dev.vars must be at least 16 characters"
export ORIGIN_SIGNING_SECRET

names=()
pids=()
seed=""
keys_log=""
cleanup() {
  trap - EXIT INT TERM
  local pid
  for pid in ${pids[@]+"${pids[@]}"}; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -f "$seed" "$keys_log"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

start() { # $1 = name, rest = command
  local name=$1
  shift
  "$@" &
  names+=("$name")
  pids+=($!)
}

# Exits (and so stops everything) as soon as one of the started processes has ended.
check_alive() {
  local i status
  for i in "${!pids[@]}"; do
    if ! kill -0 "${pids[$i]}" 2>/dev/null; then
      status=0
      wait "${pids[$i]}" || status=$?
      die "${names[$i]} exited (status $status); stopping"
    fi
  done
}

wait_for_port() { # $1 = port, $2 = what, $3 = seconds
  local waited=0
  until port_busy "$1"; do
    check_alive
    [ "$waited" -lt "$3" ] || die "$2 did not listen on 127.0.0.1:$1 within $3 s"
    sleep 1
    waited=$((waited + 1))
  done
}

start "demo origin (live)" "$KEYGATE" demo-origin --host 127.0.0.1 --port "$ORIGIN_PORT" --label live
start "demo origin (test)" "$KEYGATE" demo-origin --host 127.0.0.1 --port "$ORIGIN_TEST_PORT" --label test
wait_for_port "$ORIGIN_PORT" "the live demo origin" 15
wait_for_port "$ORIGIN_TEST_PORT" "the test demo origin" 15

# Fresh demo keys each run: records (hashes only) go to local KV, plaintext only to this terminal.
seed="$(mktemp)"
keys_log="$(mktemp)"
if ! keys_listing="$("$KEYGATE" demo-keys --kv-out "$seed" --gateway-url "http://127.0.0.1:$PORT" 2>"$keys_log")"; then
  cat "$keys_log" >&2
  die "generating demo keys failed"
fi
wrangler kv bulk put --local --persist-to "$STATE_DIR" --binding KEYS "$seed" >/dev/null
rm -f "$seed"

start "wrangler dev" wrangler dev --ip 127.0.0.1 --port "$PORT" --persist-to "$STATE_DIR" \
  --var "ORIGIN_URL:http://127.0.0.1:$ORIGIN_PORT" --var "ORIGIN_URL_TEST:http://127.0.0.1:$ORIGIN_TEST_PORT" \
  --show-interactive-dev-session=false
# Ready once the worker itself answers (a keyless probe gets keygate's 401 JSON).
probe() { # prints "<status line>|<last line of body>" of one keyless GET, or nothing
  (
    exec 3<>"/dev/tcp/127.0.0.1/$PORT" || exit 0
    printf 'GET /__dev_probe HTTP/1.0\r\nHost: 127.0.0.1:%s\r\n\r\n' "$PORT" >&3
    IFS= read -r -t 30 status <&3 || exit 0
    body=""
    while IFS= read -r -t 5 line <&3 || [ -n "$line" ]; do body=$line; line=""; done
    printf '%s|%s' "${status%$'\r'}" "$body"
  ) 2>/dev/null || true
}
waited=0
until answer="$(probe)" && [ "${answer#HTTP/}" != "$answer" ]; do
  check_alive
  [ "$waited" -lt 300 ] || die "wrangler dev did not answer on 127.0.0.1:$PORT within 300 s"
  sleep 1
  waited=$((waited + 1))
done
case "${answer%%|*}" in
  *" 500 "*) printf '\ndev: WARNING: the gateway answers 500, its configuration is invalid:\n%s\n' "${answer#*|}" >&2 ;;
esac

cat <<MSG

keygate dev is running on http://127.0.0.1:$PORT (origins: live :$ORIGIN_PORT, test :$ORIGIN_TEST_PORT; KV state: $STATE_DIR)
Demo keys (shown once, stored only as SHA-256 hashes):

$keys_listing

Ctrl-C stops everything.
MSG

while :; do
  check_alive
  sleep 1
done
