#!/usr/bin/env bash
# Fuzzes every cargo-fuzz target in fuzz/ for FUZZ_SECONDS each (default 60), then prints a
# summary. Exits non-zero if any target crashed, hung, leaked or did not finish in time.
#
#   make fuzz                                  # 60 s per target
#   FUZZ_SECONDS=5 bash scripts/fuzz.sh        # smoke run
#   FUZZ_TARGETS="limiter key_parse" make fuzz # some targets only
#   FUZZ_SANITIZER=none ...                    # no AddressSanitizer: faster build and runs
#
# Needs the nightly toolchain (libFuzzer instrumentation); installs the pinned cargo-fuzz when
# it is missing. Corpora grow in fuzz/corpus/<target> (git-ignored) and start from the seeds in
# fuzz/seeds/<target>; a crashing input lands in fuzz/artifacts/<target>/ with the command that
# replays it.
set -euo pipefail

CARGO_FUZZ_VERSION=0.13.2
FUZZ_SECONDS=${FUZZ_SECONDS:-60}
# Time allowed on top of FUZZ_SECONDS for start-up and the final merge, per target.
FUZZ_GRACE_SECONDS=${FUZZ_GRACE_SECONDS:-120}
# address (default) or none; keygate has no unsafe code, so ASan mostly guards dependencies.
FUZZ_SANITIZER=${FUZZ_SANITIZER:-address}

cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

if ! [[ "$FUZZ_SECONDS" =~ ^[0-9]+$ ]] || [ "$FUZZ_SECONDS" -lt 1 ]; then
  echo "fuzz: FUZZ_SECONDS must be a positive integer (got '$FUZZ_SECONDS')" >&2
  exit 2
fi

if ! cargo +nightly --version >/dev/null 2>&1; then
  echo "fuzz: installing the nightly toolchain" >&2
  rustup toolchain install nightly --profile minimal
fi
if [ "$(cargo fuzz --version 2>/dev/null)" != "cargo-fuzz $CARGO_FUZZ_VERSION" ]; then
  echo "fuzz: installing cargo-fuzz $CARGO_FUZZ_VERSION" >&2
  cargo install --locked cargo-fuzz --version "$CARGO_FUZZ_VERSION"
fi

all_targets=$(cargo fuzz list --fuzz-dir fuzz)
targets=${FUZZ_TARGETS:-$all_targets}
for target in $targets; do
  if ! grep -qx "$target" <<<"$all_targets"; then
    echo "fuzz: unknown target '$target' (known: $(echo $all_targets))" >&2
    exit 2
  fi
done

started=$(date +%s)
echo "fuzz: building $(echo $targets | wc -w) targets (nightly, libFuzzer, sanitizer $FUZZ_SANITIZER, debug assertions on)"
if [ -z "${FUZZ_TARGETS:-}" ]; then
  cargo +nightly fuzz build --fuzz-dir fuzz --sanitizer "$FUZZ_SANITIZER"
else
  for target in $targets; do
    cargo +nightly fuzz build --fuzz-dir fuzz --sanitizer "$FUZZ_SANITIZER" "$target"
  done
fi
build_seconds=$(( $(date +%s) - started ))

logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT
failed=0
rows=()
for target in $targets; do
  corpus="fuzz/corpus/$target"
  mkdir -p "$corpus"
  dirs=("$corpus")
  [ -d "fuzz/seeds/$target" ] && dirs+=("fuzz/seeds/$target")
  flags=(-max_total_time="$FUZZ_SECONDS" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1)
  [ -f "fuzz/dicts/$target.dict" ] && flags+=(-dict="fuzz/dicts/$target.dict")
  echo "fuzz: $target for ${FUZZ_SECONDS}s"
  t0=$(date +%s)
  set +e
  timeout --kill-after=10 $(( FUZZ_SECONDS + FUZZ_GRACE_SECONDS )) \
    cargo +nightly fuzz run --fuzz-dir fuzz --sanitizer "$FUZZ_SANITIZER" "$target" "${dirs[@]}" -- "${flags[@]}" >"$logs/$target.log" 2>&1
  status=$?
  set -e
  seconds=$(( $(date +%s) - t0 ))
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$logs/$target.log" | tail -1 || true)
  cov=$({ grep -oE 'cov: [0-9]+' "$logs/$target.log" || true; } | tail -1 | cut -d' ' -f2)
  units=$(find "$corpus" -type f | wc -l)
  case $status in
    0) result=ok ;;
    124|137) result="TIMED OUT"; failed=1 ;;
    *) result="FAILED (exit $status)"; failed=1 ;;
  esac
  rows+=("$(printf '%-20s %-18s %8ss %12s %8s %8s' "$target" "$result" "$seconds" "${runs:-?}" "${cov:-?}" "$units")")
  if [ "$status" -ne 0 ]; then
    mkdir -p "fuzz/artifacts/$target"
    cp "$logs/$target.log" "fuzz/artifacts/$target/fuzz.log"
    {
      echo "---- $target failed; full output in fuzz/artifacts/$target/fuzz.log"
      grep -E -A3 "panicked at" "$logs/$target.log" | grep -v "stack backtrace" | head -8 || true
      grep -E "ERROR: libFuzzer|Test unit written" "$logs/$target.log" | head -4 || true
      if [ "$status" -ge 124 ]; then tail -n 5 "$logs/$target.log"; fi
    } >&2
  fi
done

echo
printf '%-20s %-18s %9s %12s %8s %8s\n' target result time runs cov corpus
printf '%s\n' "${rows[@]}"
echo "build ${build_seconds}s, total $(( $(date +%s) - started ))s, ${FUZZ_SECONDS}s per target"
if [ "$failed" -ne 0 ]; then
  echo "fuzz: FAILED (crashing inputs are in fuzz/artifacts/<target>/; replay one with" >&2
  echo "      cargo +nightly fuzz run --fuzz-dir fuzz --sanitizer $FUZZ_SANITIZER <target> <file>)" >&2
  exit 1
fi
echo "fuzz: all targets ok"
