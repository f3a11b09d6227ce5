#!/usr/bin/env bash
# Where does keygate's cost over the pass-through go? Builds keygate variants that stop being
# keygate at successive points of the request (benches/ablation/cuts.patch, applied to a
# temporary git worktree of HEAD), then runs scenarios (a) and (b) of `make bench` once per
# variant and prints, per variant, the median of the paired per-round req/s ratios (b)/(a)
# with their interquartile range. Loopback only, bounded like `make bench`.
#
#   bash benches/ablation/run.sh                     # all cuts, 12 rounds of 2 s each
#   ABLATION_CUTS="gate gate6" ABLATION_ROUNDS=30 bash benches/ablation/run.sh
#
# Needs what `make bench` needs (run it once first: it installs wrk and nginx and builds the
# pass-through). Writes target/bench/ablation/<cut>/ (builds), target/bench/ablation/<cut>.json
# (each run's report) and target/bench/ablation/summary.json.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
cuts="${ABLATION_CUTS:-top receive gate gate6 full}"
rounds="${ABLATION_ROUNDS:-12}"
out="$root/target/bench/ablation"
mkdir -p "$out"
[ -d target/bench/passthrough-build ] || { echo "run \`make bench\` once first (it builds the pass-through)" >&2; exit 1; }

tree="$(mktemp -d /tmp/keygate-ablation.XXXXXX)"
cleanup() { git -C "$root" worktree remove --force "$tree" >/dev/null 2>&1 || rm -rf "$tree"; }
trap cleanup EXIT INT TERM
git worktree add --detach "$tree" HEAD >/dev/null
git -C "$tree" apply "$root/benches/ablation/cuts.patch"
# scripts/build.sh finds the pinned wasm-opt and esbuild under the tree's node_modules.
ln -s "$root/node_modules" "$tree/node_modules"
# One target directory across runs and cuts: after the first build, each cut recompiles keygate only.
export CARGO_TARGET_DIR="$root/target/ablation-target"
for cut in $cuts; do
  echo "[ablation] building cut '$cut'"
  if [ "$cut" = full ]; then unset KEYGATE_CUT; else export KEYGATE_CUT="$cut"; fi
  touch "$tree/crates/worker/src/lib.rs" # option_env! is tracked by cargo, but be sure
  (cd "$tree" && sh scripts/build.sh >"$out/build-$cut.log" 2>&1) || { tail -30 "$out/build-$cut.log" >&2; exit 1; }
  rm -rf "${out:?}/$cut" && cp -r "$tree/build" "$out/$cut"
done
unset KEYGATE_CUT

seconds=$((rounds * 2))
for cut in $cuts; do
  echo "[ablation] measuring cut '$cut' ($rounds rounds of 2 s)"
  BENCH_KEYGATE_BUILD="$out/$cut" BENCH_SCENARIOS=a,b BENCH_SECONDS="$seconds" BENCH_ROUNDS="$rounds" \
    BENCH_SKIP_BUILD=1 BENCH_SKIP_CORE=1 BENCH_PROFILE_SECONDS=0 BENCH_STARTUP_RUNS=1 \
    bash scripts/bench.sh >"$out/bench-$cut.log" 2>&1 || { tail -30 "$out/bench-$cut.log" >&2; exit 1; }
  cp target/bench/report.json "$out/$cut.json"
done

node - "$out" $cuts <<'EOF'
const fs = require("fs");
const [out, ...cuts] = process.argv.slice(2);
const quartile = (xs, q) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(q * (s.length - 1))]; };
const rows = cuts.map((cut) => {
  const report = JSON.parse(fs.readFileSync(`${out}/${cut}.json`, "utf8"));
  const by = Object.fromEntries(report.scenarios.map((s) => [s.id, s]));
  // run.mjs's paired per-round ratios and their median; only the quartiles are added here.
  const ratios = by.b.ratio_rps_vs_a_by_round;
  return { cut, rounds: ratios.length, a_rps: by.a.rps, b_rps: by.b.rps, median: by.b.ratio_rps_vs_a_median_of_rounds, q1: quartile(ratios, 0.25), q3: quartile(ratios, 0.75),
    a_cpu_us: by.a.workerd_cpu_us_per_request, b_cpu_us: by.b.workerd_cpu_us_per_request };
});
console.log("cut        rounds  (a) req/s  (b) req/s  (b)/(a) median  IQR            cpu µs (a)  (b)");
for (const r of rows) {
  console.log(`${r.cut.padEnd(10)} ${String(r.rounds).padStart(6)} ${r.a_rps.toFixed(0).padStart(10)} ${r.b_rps.toFixed(0).padStart(10)} ${r.median.toFixed(3).padStart(15)}  ${r.q1.toFixed(3)}–${r.q3.toFixed(3)}   ${String(r.a_cpu_us).padStart(9)} ${String(r.b_cpu_us).padStart(5)}`);
}
fs.writeFileSync(`${out}/summary.json`, JSON.stringify({ generated_at: new Date().toISOString(), rows }, null, 2) + "\n");
console.log(`summary: ${out}/summary.json`);
EOF
