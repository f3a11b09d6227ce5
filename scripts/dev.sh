#!/usr/bin/env bash
# `make dev`: demo origins (live + test), wrangler dev with local state, then demo keys seeded
# through the admin API (`keygate-demo demo-keys`) and printed once.
# Ctrl-C stops everything; so does any one of the three processes exiting.
# Ports: PORT (gateway, 8787), ORIGIN_PORT (live origin, 8788), ORIGIN_TEST_PORT (test origin, 8789).
# STATE_DIR (default .wrangler/state) holds the local KV and Durable Object data; .dev.vars the
# local secrets (ORIGIN_SIGNING_SECRET, ADMIN_TOKEN, optionally ORIGIN_SIGNING_SECRET_TEST).
# PROFILE=<name> runs a seed profile (profiles/<name>.toml): its settings are passed to wrangler
# dev as --var, and the demo keys are the profile's ([demo]). Use its own STATE_DIR, e.g.
# PROFILE=optimo STATE_DIR=.wrangler/optimo make dev, so keys of different formats do not mix.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PWD/node_modules/.bin:$PATH"
export WRANGLER_SEND_METRICS=false
PORT="${PORT:-8787}"
ORIGIN_PORT="${ORIGIN_PORT:-8788}"
ORIGIN_TEST_PORT="${ORIGIN_TEST_PORT:-8789}"
STATE_DIR="${STATE_DIR:-.wrangler/state}"
KEYGATE=target/debug/keygate
DEMO=target/debug/keygate-demo

die() { printf 'dev: %s\n' "$*" >&2; exit 1; }

for tool in "$KEYGATE" "$DEMO"; do [ -x "$tool" ] || die "$tool is missing: run 'make dev' (it builds first)"; done

profile_args=()
demo_args=()
if [ -n "${PROFILE:-}" ]; then
  profile_vars="$("$KEYGATE" profile-vars "$PROFILE")" || die "profile '$PROFILE' cannot be read (see above)"
  while IFS= read -r line; do
    [ -n "$line" ] && profile_args+=(--var "$line")
  done <<<"$profile_vars"
  demo_args=(--profile "$PROFILE")
fi
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

# The secrets: wrangler dev reads them from .dev.vars; the demo origins get the same signing
# secret, `keygate-demo demo-keys` the admin token. A fresh checkout has no .dev.vars, so make a
# random, local-only one; add a variable that is missing.
new_secret() { od -An -N24 -tx1 /dev/urandom | tr -d ' \n'; }
read_var() { # $1 = name; last NAME= line of .dev.vars, quotes and trailing comment removed
  sed -n -E "s/^[[:space:]]*(export[[:space:]]+)?$1[[:space:]]*=[[:space:]]*//p" .dev.vars \
    | tail -n1 | tr -d '\r' \
    | sed -E -e "s/^\"([^\"]*)\".*$/\1/" -e t -e "s/^'([^']*)'.*$/\1/" -e t \
        -e 's/[[:space:]]+#.*$//' -e 's/[[:space:]]+$//'
}
if [ ! -f .dev.vars ]; then
  printf '# Local-only secrets for wrangler dev (git-ignored). Never use these values in production.\n' > .dev.vars
  echo "dev: created .dev.vars for local-only secrets" >&2
fi
ensure_var() { # $1 = name, $2 = what it is
  if [ -z "$(read_var "$1")" ]; then
    printf '\n# Added by make dev: local-only %s.\n%s="%s"\n' "$2" "$1" "$(new_secret)" >> .dev.vars
    echo "dev: added a random local $1 to .dev.vars" >&2
  fi
  local value
  value="$(read_var "$1")"
  [ "${#value}" -ge 16 ] || die "$1 in .dev.vars must be at least 16 characters"
}
ensure_var ORIGIN_SIGNING_SECRET "signing secret"
ensure_var ADMIN_TOKEN "admin API token"
ORIGIN_SIGNING_SECRET="$(read_var ORIGIN_SIGNING_SECRET)"
export ORIGIN_SIGNING_SECRET
# The gateway signs for the test origin with ORIGIN_SIGNING_SECRET_TEST when .dev.vars sets one,
# else with ORIGIN_SIGNING_SECRET; the test demo origin verifies with the same.
TEST_ORIGIN_SECRET="$(read_var ORIGIN_SIGNING_SECRET_TEST)"
if [ -n "$TEST_ORIGIN_SECRET" ] && [ "${#TEST_ORIGIN_SECRET}" -lt 16 ]; then
  die "ORIGIN_SIGNING_SECRET_TEST in .dev.vars must be at least 16 characters"
fi
TEST_ORIGIN_SECRET="${TEST_ORIGIN_SECRET:-$ORIGIN_SIGNING_SECRET}"
# Where wrangler.toml puts the admin API (ADMIN_PREFIX), for `keygate demo-keys --prefix`: the
# top level's, which ends where the deployable environments ([env.…]) begin.
ADMIN_PREFIX="$(sed -n -E -e '/^\[+env\./q' -e 's/^ADMIN_PREFIX[[:space:]]*=[[:space:]]*"([^"]*)".*$/\1/p' wrangler.toml | tail -n1)"
ADMIN_PREFIX="${ADMIN_PREFIX:-/_keygate/v1}"

names=()
pids=()
cleanup() {
  trap - EXIT INT TERM
  local pid
  for pid in ${pids[@]+"${pids[@]}"}; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
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

start "demo origin (live)" "$DEMO" demo-origin --host 127.0.0.1 --port "$ORIGIN_PORT" --label live
# (A variable set before a function call is exported to what the function starts.)
ORIGIN_SIGNING_SECRET="$TEST_ORIGIN_SECRET" start "demo origin (test)" "$DEMO" demo-origin --host 127.0.0.1 --port "$ORIGIN_TEST_PORT" --label test
wait_for_port "$ORIGIN_PORT" "the live demo origin" 15
wait_for_port "$ORIGIN_TEST_PORT" "the test demo origin" 15

# The local runtime keeps a trace of every request, full URL included, under STATE_DIR
# (v3/observability): a key or token someone sends in a URL would be written to disk there.
# keygate refuses such requests, but the trace is written first, so it stays off unless asked for
# (X_LOCAL_OBSERVABILITY=true make dev).
export X_LOCAL_OBSERVABILITY="${X_LOCAL_OBSERVABILITY:-false}"
start "wrangler dev" wrangler dev --ip 127.0.0.1 --port "$PORT" --persist-to "$STATE_DIR" "${profile_args[@]}" \
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

# Fresh demo keys each run, created through the admin API: the registry stores hashes only,
# the plaintext goes only to this terminal. Errors (which never hold a key) go to stderr.
if ! keys_listing="$(KEYGATE_URL="http://127.0.0.1:$PORT" KEYGATE_ADMIN_TOKEN="$(read_var ADMIN_TOKEN)" \
  "$DEMO" demo-keys --prefix "$ADMIN_PREFIX" --project acme "${demo_args[@]}")"; then
  die "seeding the demo keys through the admin API failed (see above); stopping"
fi

cat <<MSG

keygate dev is running on http://127.0.0.1:$PORT (origins: live :$ORIGIN_PORT, test :$ORIGIN_TEST_PORT; state: $STATE_DIR)
Demo keys (shown once; the gateway stores only SHA-256 hashes):

$keys_listing

Key console: http://127.0.0.1:$PORT$ADMIN_PREFIX/console
  (sign in with the admin token, ADMIN_TOKEN in .dev.vars; project "acme" holds the demo keys)

Or manage keys with the CLI (the same admin token), e.g.:
  KEYGATE_URL=http://127.0.0.1:$PORT KEYGATE_ADMIN_TOKEN="\$(sed -n -E 's/^ADMIN_TOKEN="?([^"]*)"?\$/\1/p' .dev.vars | tail -n1)" \\
    $KEYGATE keys list --project acme

Ctrl-C stops everything.
MSG

while :; do
  check_alive
  sleep 1
done
