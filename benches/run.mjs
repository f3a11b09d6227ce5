// Load benchmark driver for `make bench` (started by scripts/bench.sh, which builds both workers,
// runs the native micro-benchmarks and starts the nginx origin first).
//
// It runs keygate and the bare pass-through worker in ONE workerd process through Miniflare's
// Node API (no `wrangler dev`, no front proxy), each worker on its own workerd socket
// (`unsafeDirectSockets`), checks through /proc that those sockets belong to the workerd child
// of this process, seeds keys through keygate's admin API, measures startup to the first 200,
// then drives each scenario with wrk and writes target/bench/report.json.
//
// Run with the Node 22 from node_modules/.bin. Settings (environment):
//   ORIGIN_URL          the loopback origin (required; scripts/bench.sh starts nginx)
//   BENCH_SECONDS       measured seconds per scenario (10)
//   BENCH_WARMUP        warm-up seconds per scenario, discarded (2)
//   BENCH_CONNECTIONS   wrk connections (16)
//   BENCH_THREADS       wrk threads (1: leaves the second core to workerd and nginx)
//   BENCH_ROUNDS        rounds that split BENCH_SECONDS (default: largest divisor <= 5); each round
//                       runs every scenario in turn; the report sums the counts of all rounds and
//                       takes the median of each latency percentile over the rounds
//   BENCH_STARTUP_RUNS  cold starts timed per worker (3)
//   BENCH_PIN           0: do not pin workerd and the load side to separate CPUs (default: pin)
//   BENCH_PROFILE_SECONDS  seconds of V8 CPU profile of (a) and (b) under load (5; 0: none)
//   BENCH_TMP           scratch directory (state, config copy); required, removed by the caller
//   BENCH_OUT           report path (target/bench/report.json)
//   BENCH_CORE_JSON     native micro-benchmark results to include (target/bench/core.json)
//   BENCH_ORIGIN        a label for the origin (e.g. "nginx/1.22.1")
//   WRK                 wrk binary (wrk)

import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import { createRequire } from "node:module";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import zlib from "node:zlib";

import { liveKeyHead, modulesOf, ratelimitsOf, startMiniflare as startWorkers, unknownKey as unknownKeyWith, wranglerWorkerOptions } from "./workers.mjs";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const require = createRequire(path.join(ROOT, "package.json"));

const env = process.env;
const num = (name, fallback) => {
  const value = Number(env[name] ?? fallback);
  if (!Number.isFinite(value) || value <= 0) throw new Error(`${name} must be a positive number`);
  return value;
};
const SECONDS = num("BENCH_SECONDS", 10);
const WARMUP = num("BENCH_WARMUP", 2);
const CONNECTIONS = Math.round(num("BENCH_CONNECTIONS", 16));
const THREADS = Math.round(num("BENCH_THREADS", 1));
const STARTUP_RUNS = Math.round(num("BENCH_STARTUP_RUNS", 3));
// Rounds: the measured time of each scenario is split into rounds that interleave (a, b, …, a, b, …),
// so the slow drift of a shared machine hits every scenario alike. Default: the largest divisor of
// BENCH_SECONDS up to 5 (10 s → 5 rounds of 2 s).
const ROUNDS = env.BENCH_ROUNDS ? Math.round(num("BENCH_ROUNDS", 1)) : [5, 4, 3, 2, 1].find((d) => SECONDS % d === 0);
if (!Number.isInteger(SECONDS) || SECONDS % ROUNDS !== 0) throw new Error(`BENCH_SECONDS (${SECONDS}) must be a whole multiple of BENCH_ROUNDS (${ROUNDS})`);
const ROUND_SECONDS = SECONDS / ROUNDS;
const ORIGIN_URL = env.ORIGIN_URL;
const TMP = env.BENCH_TMP;
const OUT = path.resolve(ROOT, env.BENCH_OUT ?? "target/bench/report.json");
const CORE_JSON = path.resolve(ROOT, env.BENCH_CORE_JSON ?? "target/bench/core.json");
const WRK = env.WRK ?? "wrk";
const KEYGATE_BUILD = path.resolve(ROOT, env.BENCH_KEYGATE_BUILD ?? "build"); // another build of keygate, e.g. an older commit, to compare
const PASSTHROUGH_BUILD = path.join(ROOT, "target/bench/passthrough-build");
const LUA = path.join(ROOT, "benches/wrk/scenario.lua");
const PATH = "/v1/public/cms/articles/items";
const TEST_MODE = "yes-this-is-a-test-deployment";
const ROTATING_KEYS = 16;
const PROFILE_SECONDS = Number(env.BENCH_PROFILE_SECONDS ?? 5);

if (!ORIGIN_URL || !/^http:\/\/127\.0\.0\.1:\d+$/.test(ORIGIN_URL)) throw new Error("ORIGIN_URL must be http://127.0.0.1:<port>");
if (!TMP || !fs.existsSync(TMP)) throw new Error("BENCH_TMP must be an existing scratch directory");
for (const file of [path.join(KEYGATE_BUILD, "index.js"), path.join(KEYGATE_BUILD, "index_bg.wasm"), path.join(PASSTHROUGH_BUILD, "index.js"), path.join(PASSTHROUGH_BUILD, "index_bg.wasm")]) {
  if (!fs.existsSync(file)) throw new Error(`${path.relative(ROOT, file)} is missing: run scripts/bench.sh (it builds both workers)`);
}

const log = (...args) => console.error("[bench]", ...args);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
// Attached to the p99 targets in the report; the printed summary flags them as noise-dominated.
const P99_NOTE = "wrk's p99 (with its coordinated-omission correction) is dominated by runtime stalls on this machine: compare the p99 of (js0)/(a0), which do nothing; a difference below tens of ms is noise";
const round = (value, digits = 2) => (value === null || value === undefined || !Number.isFinite(value) ? null : Number(value.toFixed(digits)));

// Bench-only secrets, fresh each run; never written anywhere but workerd's memory.
const ADMIN_TOKEN = randomBytes(24).toString("hex");
const SIGNING_SECRET = randomBytes(24).toString("hex");

// ---------------------------------------------------------------------------------------------
// Worker options: wrangler.toml as wrangler itself reads it, minus everything dev-only.

const fromWrangler = wranglerWorkerOptions(TMP);
const KEYGATE_VARS = {
  ...fromWrangler.bindings,
  ORIGIN_URL,
  ORIGIN_URL_TEST: ORIGIN_URL,
  ORIGIN_SIGNING_SECRET: SIGNING_SECRET,
  ADMIN_TOKEN,
  KEYGATE_TEST_MODE: TEST_MODE,
};
const NEGATIVE_TTL_S = Number(KEYGATE_VARS.NEGATIVE_CACHE_TTL_SECONDS ?? 10);
const ADMIN_PREFIX = KEYGATE_VARS.ADMIN_PREFIX ?? "/_keygate/v1";
const KEY_HEAD = liveKeyHead(KEYGATE_VARS);

const directSocket = () => [{ host: "127.0.0.1", port: 0 }];

function keygateWorker() {
  return {
    name: "keygate",
    ...modulesOf(KEYGATE_BUILD),
    compatibilityDate: fromWrangler.compatibilityDate,
    compatibilityFlags: fromWrangler.compatibilityFlags,
    bindings: KEYGATE_VARS,
    kvNamespaces: fromWrangler.kvNamespaces,
    durableObjects: fromWrangler.durableObjects,
    ratelimits: ratelimitsOf(fromWrangler),
    unsafeDirectSockets: directSocket(),
  };
}

/** A trivial JavaScript worker (no wasm, no subrequest): the runtime's own floor under this load. */
function jsFloorWorker() {
  return {
    name: "jsfloor",
    modules: true,
    script: `export default { fetch() { return new Response('{"ok":true,"origin":"none"}\\n', { headers: { "content-type": "application/json" } }); } };`,
    compatibilityDate: fromWrangler.compatibilityDate,
    compatibilityFlags: fromWrangler.compatibilityFlags,
    unsafeDirectSockets: directSocket(),
  };
}

function passthroughWorker() {
  return {
    name: "passthrough",
    ...modulesOf(PASSTHROUGH_BUILD),
    compatibilityDate: fromWrangler.compatibilityDate,
    compatibilityFlags: fromWrangler.compatibilityFlags,
    bindings: { ORIGIN_URL },
    unsafeDirectSockets: directSocket(),
  };
}

/**
 * The pass-through with every binding keygate has (its vars, KV, the two Durable Object
 * namespaces, the rate-limit bindings), none of them used: what merely having them costs a
 * request on this runtime, so (a) vs (ae) separates that from keygate's own work.
 */
function passthroughWithBindingsWorker() {
  const durableObjects = Object.fromEntries(
    Object.entries(fromWrangler.durableObjects ?? {}).map(([name, d]) => [name, { ...(typeof d === "string" ? { className: d } : d), scriptName: "keygate" }]),
  );
  return { ...keygateWorker(), name: "passthrough-env", ...modulesOf(PASSTHROUGH_BUILD), durableObjects, bindings: { ...KEYGATE_VARS, ORIGIN_URL } };
}

// Worker console output (keygate's structured log lines), counted per scenario, kept out of the terminal.
let logLines = 0;
const logSamples = [];

function startMiniflare(workers, shared = {}) {
  return startWorkers(
    workers,
    TMP,
    (entry) => {
      logLines += 1;
      if (logSamples.length < 5) logSamples.push(String(entry.message).slice(0, 300));
    },
    shared,
  );
}

// ---------------------------------------------------------------------------------------------
// HTTP helpers (Node's fetch; bounded by timeouts).

async function request(url, { method = "GET", headers = {}, body, timeoutMs = 10_000 } = {}) {
  const response = await fetch(url, { method, headers, body, signal: AbortSignal.timeout(timeoutMs), redirect: "manual" });
  const text = await response.text();
  return { status: response.status, text, headers: response.headers };
}

async function counters(base) {
  const { status, text } = await request(new URL("/__keygate/counters", base));
  if (status !== 200) throw new Error(`counters endpoint answered ${status}: ${text.slice(0, 200)}`);
  return JSON.parse(text);
}

async function admin(base, method, suffix, body) {
  const { status, text } = await request(new URL(`${ADMIN_PREFIX}${suffix}`, base), {
    method,
    headers: { authorization: `Bearer ${ADMIN_TOKEN}`, "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (status < 200 || status > 299) throw new Error(`admin ${method} ${suffix} → ${status}: ${text.slice(0, 400)}`);
  return JSON.parse(text);
}

// ---------------------------------------------------------------------------------------------
// Keys

/** A well-formed key (valid checksum) that is never stored: keygate must look it up. */
const unknownKey = () => unknownKeyWith(KEY_HEAD);
/** Right length, prefix, env and alphabet, wrong checksum: the most work `KeyFormat::parse` does before refusing. */
function malformedKey() {
  const good = unknownKey();
  const last = good.at(-1);
  return good.slice(0, -1) + (last === "0" ? "1" : "0");
}

const HIGH_LIMITS = [
  { name: "burst", limit: 1_000_000, window_seconds: 1 },
  { name: "minute", limit: 60_000_000, window_seconds: 60 },
  { name: "daily", limit: 1_000_000_000, window_seconds: 86_400 },
];

async function seedKeys(base) {
  const create = async (name, extra) =>
    (await admin(base, "POST", "/keys", { project: "bench", name, role: "read_only", ...extra })).key;
  return {
    hot: await create("bench hot (fast, no limits)", { limit_mode: "fast", limits: [] }),
    exact: await create("bench exact limits", { limit_mode: "exact", limits: HIGH_LIMITS }),
    fast: await create("bench fast limits", { limit_mode: "fast", limits: HIGH_LIMITS }),
    exactHot: await create("bench hot (exact, no limits)", { limit_mode: "exact", limits: [] }),
  };
}

// ---------------------------------------------------------------------------------------------
// Verifying where we send load: the socket must be a listening socket of workerd, and that
// workerd must be a child (descendant) of this process, i.e. no proxy of wrangler in between.

function listeningInode(port) {
  const hexPort = port.toString(16).toUpperCase().padStart(4, "0");
  for (const table of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    let lines = [];
    try {
      lines = fs.readFileSync(table, "utf8").trim().split("\n").slice(1);
    } catch {
      continue;
    }
    for (const line of lines) {
      const fields = line.trim().split(/\s+/);
      if (fields[1]?.endsWith(`:${hexPort}`) && fields[3] === "0A") return { inode: fields[9], local: fields[1], table };
    }
  }
  return null;
}

// CPU seconds (user + system, all threads) a process has used so far: /proc/<pid>/stat fields 14
// and 15, in clock ticks (USER_HZ, 100 on Linux).
function cpuSeconds(pid) {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

function parentOf(pid) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
  } catch {
    return null;
  }
}

function socketOwner(url) {
  const port = Number(new URL(url).port);
  const found = listeningInode(port);
  if (!found) return { port, error: "no listening socket found in /proc/net/tcp{,6}" };
  const target = `socket:[${found.inode}]`;
  for (const pid of fs.readdirSync("/proc").filter((name) => /^\d+$/.test(name))) {
    let fds = [];
    try {
      fds = fs.readdirSync(`/proc/${pid}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      let link;
      try {
        link = fs.readlinkSync(`/proc/${pid}/fd/${fd}`);
      } catch {
        continue;
      }
      if (link !== target) continue;
      let exe = null;
      try {
        exe = fs.readlinkSync(`/proc/${pid}/exe`);
      } catch {}
      const chain = [];
      for (let p = Number(pid); p && p > 1 && chain.length < 10; p = parentOf(p)) chain.push(p);
      return {
        port,
        inode: Number(found.inode),
        pid: Number(pid),
        exe,
        is_workerd: exe !== null && path.basename(exe).startsWith("workerd"),
        child_of_driver: chain.includes(process.pid),
        driver_pid: process.pid,
      };
    }
  }
  return { port, error: "no process holds the socket" };
}

// ---------------------------------------------------------------------------------------------
// wrk

// CPU pinning (BENCH_PIN, on by default with 2+ CPUs and taskset): the load side (wrk, and
// nginx, started by scripts/bench.sh) on CPU 0, the measured workerd on the last CPU. On a
// 2-core machine the three otherwise fight over both cores, and the req/s of a round swings by
// ±20% with the scheduler's choices; pinned, workerd is the bottleneck and its CPU cost per
// request is what req/s measures.
const PIN = env.BENCH_PIN !== "0" && os.cpus().length >= 2 && commandExists("taskset");
const LOAD_CPU = 0;
const WORKERD_CPU = os.cpus().length - 1;

function commandExists(name) {
  return (env.PATH ?? "").split(":").some((dir) => dir && fs.existsSync(path.join(dir, name)));
}

function pinProcess(pid, cpu) {
  if (!PIN) return false;
  return new Promise((resolve) => {
    const child = spawn("taskset", ["-a", "-p", "-c", String(cpu), String(pid)], { stdio: "ignore" });
    child.on("close", (code) => resolve(code === 0));
    child.on("error", () => resolve(false));
  });
}

function runWrk(url, seconds, envExtra, connections = CONNECTIONS) {
  return new Promise((resolve, reject) => {
    const args = [`-t${Math.min(THREADS, connections)}`, `-c${connections}`, `-d${seconds}s`, "--timeout", "5s", "-s", LUA, url];
    const [command, commandArgs] = PIN ? ["taskset", ["-c", String(LOAD_CPU), WRK, ...args]] : [WRK, args];
    const child = spawn(command, commandArgs, { env: { ...env, ...envExtra }, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk) => (stdout += chunk));
    child.stderr.on("data", (chunk) => (stderr += chunk));
    const killer = setTimeout(() => child.kill("SIGKILL"), (seconds + 30) * 1000);
    child.on("error", (error) => {
      clearTimeout(killer);
      reject(error);
    });
    child.on("close", (code) => {
      clearTimeout(killer);
      const line = stdout.split("\n").find((l) => l.startsWith("KG_RESULT "));
      if (code !== 0 || !line) return reject(new Error(`wrk exited ${code}: ${stderr || stdout}`));
      resolve(JSON.parse(line.slice("KG_RESULT ".length)));
    });
  });
}

// ---------------------------------------------------------------------------------------------
// CPU profiles through the inspector (Chrome DevTools Protocol over Miniflare's inspector proxy)

const WebSocket = require("ws");

function cdp(wsUrl) {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(wsUrl);
    let next = 0;
    const pending = new Map();
    socket.on("message", (data) => {
      const message = JSON.parse(String(data));
      const waiter = pending.get(message.id);
      if (!waiter) return;
      pending.delete(message.id);
      if (message.error) waiter.reject(new Error(`${message.error.message}`));
      else waiter.resolve(message.result);
    });
    socket.on("error", reject);
    socket.on("open", () =>
      resolve({
        send: (method, params = {}) =>
          new Promise((res, rej) => {
            const id = ++next;
            pending.set(id, { resolve: res, reject: rej });
            socket.send(JSON.stringify({ id, method, params }));
          }),
        close: () => socket.close(),
      }),
    );
  });
}

/** Best-effort Rust symbol demangling (legacy `_ZN…E` and already-readable names), hash dropped. */
function demangle(name) {
  const legacy = /^_?_ZN(.*)E$/.exec(name);
  let text = name;
  if (legacy) {
    const parts = [];
    let rest = legacy[1];
    while (rest.length) {
      const m = /^(\d+)/.exec(rest);
      if (!m) break;
      const len = Number(m[1]);
      parts.push(rest.slice(m[1].length, m[1].length + len));
      rest = rest.slice(m[1].length + len);
    }
    text = parts.join("::");
  }
  return text
    .replace(/::h[0-9a-f]{16}$/, "")
    .replace(/\$LT\$/g, "<").replace(/\$GT\$/g, ">").replace(/\$u20\$/g, " ").replace(/\$u7b\$/g, "{").replace(/\$u7d\$/g, "}")
    .replace(/\$RF\$/g, "&").replace(/\$C\$/g, ",").replace(/\$BP\$/g, "*").replace(/\.\./g, "::");
}

function summariseProfile(profile) {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const counts = new Map();
  for (const id of profile.samples) counts.set(id, (counts.get(id) ?? 0) + 1);
  const total = profile.samples.length;
  const self = new Map();
  const categories = { idle: 0, gc: 0, program: 0, wasm: 0, js: 0 };
  for (const [id, count] of counts) {
    const frame = byId.get(id).callFrame;
    const name = frame.functionName || "(anonymous)";
    let category = "js";
    if (name === "(idle)") category = "idle";
    else if (name === "(garbage collector)") category = "gc";
    else if (name === "(program)" || name === "(root)") category = "program";
    else if (frame.url.startsWith("wasm://")) category = "wasm";
    categories[category] += count;
    const label = category === "wasm" ? `wasm ${demangle(name)}` : category === "js" ? `js ${name} (${path.basename(frame.url) || "?"})` : name;
    self.set(label, (self.get(label) ?? 0) + count);
  }
  const busy = total - categories.idle;
  const top = [...self.entries()]
    .filter(([label]) => label !== "(idle)")
    .sort((x, y) => y[1] - x[1])
    .slice(0, 25)
    .map(([label, count]) => ({ function: label, self_pct_of_busy: round((100 * count) / Math.max(busy, 1), 1) }));
  const pct = (value) => round((100 * value) / Math.max(total, 1), 1);
  const topWasm = [...self.entries()]
    .filter(([label]) => label.startsWith("wasm "))
    .sort((x, y) => y[1] - x[1])
    .slice(0, 15)
    .map(([label, count]) => ({ function: label, self_pct_of_busy: round((100 * count) / Math.max(busy, 1), 2) }));
  return {
    samples: total,
    share_pct_of_all: { idle: pct(categories.idle), native_runtime: pct(categories.program), gc: pct(categories.gc), wasm: pct(categories.wasm), js: pct(categories.js) },
    top_self_time: top,
    top_wasm_self_time: topWasm,
  };
}

async function profileUnderLoad(id, makeWorker, wrkEnv) {
  const worker = { ...makeWorker(), unsafeInspectorProxy: true };
  const mf = startMiniflare([worker], { inspectorPort: 0 });
  try {
    const base = await mf.unsafeGetDirectURL(worker.name);
    const inspector = await mf.getInspectorURL();
    const targets = await (await fetch(`http://${inspector.host}/json`, { signal: AbortSignal.timeout(10_000) })).json();
    const target = targets.find((t) => t.webSocketDebuggerUrl?.endsWith(`/${worker.name}`)) ?? targets[0];
    const url = new URL(PATH, base).href;
    await runWrk(url, 1, wrkEnv); // warm-up
    const session = await cdp(target.webSocketDebuggerUrl);
    try {
      await session.send("Profiler.enable");
      await session.send("Profiler.setSamplingInterval", { interval: 200 });
      await session.send("Profiler.start");
      const w = await runWrk(url, PROFILE_SECONDS, wrkEnv);
      const { profile } = await session.send("Profiler.stop");
      // The whole profile, for Chrome DevTools / speedscope (names need an unstripped build).
      fs.writeFileSync(path.join(path.dirname(OUT), `profile-${id}.cpuprofile`), JSON.stringify(profile));
      return { rps_while_profiling: round(w.requests / (w.duration_us / 1e6), 1), sampling_interval_us: 200, ...summariseProfile(profile) };
    } finally {
      session.close();
    }
  } finally {
    await mf.dispose();
  }
}

function printProfiles(profiles) {
  for (const [id, p] of Object.entries(profiles)) {
    const s = p.share_pct_of_all;
    console.log(`\nCPU profile of (${id}) in workerd's isolate (V8 sampling, ${p.samples} samples at ${p.rps_while_profiling} req/s): idle ${s.idle}%, native/runtime ${s.native_runtime}%, GC ${s.gc}%, wasm ${s.wasm}%, JS ${s.js}%`);
    for (const t of p.top_self_time.slice(0, 10)) console.log(`  ${String(t.self_pct_of_busy).padStart(5)}%  ${t.function.slice(0, 110)}`);
    console.log("  top wasm functions (self):");
    for (const t of p.top_wasm_self_time.slice(0, 6)) console.log(`  ${String(t.self_pct_of_busy).padStart(5)}%  ${t.function.slice(0, 110)}`);
  }
}

// ---------------------------------------------------------------------------------------------
// Phases

async function waitFor200(base, headers, limitMs) {
  const start = performance.now();
  for (;;) {
    try {
      const { status } = await request(new URL(PATH, base), { headers, timeoutMs: 5_000 });
      if (status === 200) return;
    } catch {}
    if (performance.now() - start > limitMs) throw new Error(`no 200 from ${base} within ${limitMs} ms`);
    await sleep(5);
  }
}

/** Cold start: new workerd process (Miniflare spawns it) → first 200 through the worker. */
async function timeStartup(label, makeWorker, headers) {
  const runs = [];
  for (let i = 0; i < STARTUP_RUNS; i++) {
    const t0 = performance.now();
    const mf = startMiniflare([makeWorker()]);
    try {
      await mf.ready;
      const readyMs = performance.now() - t0;
      const base = await mf.unsafeGetDirectURL(label);
      await waitFor200(base, headers, 60_000);
      runs.push({ ready_ms: round(readyMs, 1), first_200_ms: round(performance.now() - t0, 1) });
    } finally {
      await mf.dispose();
    }
  }
  const sorted = runs.map((r) => r.first_200_ms).sort((a, b) => a - b);
  return { median_first_200_ms: sorted[Math.floor(sorted.length / 2)], runs };
}

function fileSizes(file) {
  const bytes = fs.readFileSync(file);
  return { raw_bytes: bytes.length, gzip_bytes: zlib.gzipSync(bytes, { level: 9 }).length };
}

function versions() {
  const pkg = (name) => {
    try {
      return JSON.parse(fs.readFileSync(path.join(ROOT, "node_modules", name, "package.json"), "utf8")).version;
    } catch {
      return null;
    }
  };
  return { node: process.version, miniflare: pkg("miniflare"), workerd: pkg("workerd"), wrangler: pkg("wrangler"), wrk: env.BENCH_WRK_VERSION ?? null, origin: env.BENCH_ORIGIN ?? null, rustc: env.BENCH_RUSTC ?? null };
}

async function main() {
  const started = new Date();
  log(`scenarios: ${SECONDS}s measured (${ROUNDS} round(s) of ${ROUND_SECONDS}s) after ${WARMUP}s warm-up, ${CONNECTIONS} connections, ${THREADS} wrk thread(s); origin ${ORIGIN_URL}`);

  // 1. Seed keys through the admin API (state persists in BENCH_TMP/state).
  let keys;
  {
    const mf = startMiniflare([keygateWorker()]);
    try {
      const base = await mf.unsafeGetDirectURL("keygate");
      await counters(base);
      keys = await seedKeys(base);
      const check = await request(new URL(PATH, base), { headers: { authorization: `Bearer ${keys.hot}` } });
      if (check.status !== 200) throw new Error(`hot key answered ${check.status}: ${check.text.slice(0, 300)}`);
      log(`seeded 3 keys through ${ADMIN_PREFIX}/keys; origin answered through keygate: ${check.text.trim().slice(0, 80)}`);
    } finally {
      await mf.dispose();
    }
  }

  // 2. Startup: a fresh workerd process each time, up to the first 200.
  log(`timing ${STARTUP_RUNS} cold starts per worker`);
  const startup = {
    keygate: await timeStartup("keygate", keygateWorker, { authorization: `Bearer ${keys.hot}` }),
    passthrough: await timeStartup("passthrough", passthroughWorker, {}),
  };

  // 3. Load: both workers in one workerd process, each on its own socket.
  logLines = 0;
  const mf = startMiniflare([keygateWorker(), passthroughWorker(), jsFloorWorker(), passthroughWithBindingsWorker()]);
  const report = { generated_at: started.toISOString() };
  try {
    const entryUrl = (await mf.ready).href;
    const keygateUrl = (await mf.unsafeGetDirectURL("keygate")).href;
    const passthroughUrl = (await mf.unsafeGetDirectURL("passthrough")).href;
    const jsFloorUrl = (await mf.unsafeGetDirectURL("jsfloor")).href;
    const passthroughEnvUrl = (await mf.unsafeGetDirectURL("passthrough-env")).href;
    const sockets = { keygate: socketOwner(keygateUrl), passthrough: socketOwner(passthroughUrl), jsfloor: socketOwner(jsFloorUrl), miniflare_entry: socketOwner(entryUrl) };
    for (const [name, owner] of Object.entries(sockets)) {
      if (!owner.is_workerd || !owner.child_of_driver) throw new Error(`${name} socket is not workerd's own: ${JSON.stringify(owner)}`);
    }
    const workerdPid = sockets.keygate.pid;
    const pinned = PIN ? await pinProcess(workerdPid, WORKERD_CPU) : false;
    if (PIN && !pinned) throw new Error(`could not pin workerd (pid ${workerdPid}) to CPU ${WORKERD_CPU}`);
    log(pinned ? `pinned: workerd on CPU ${WORKERD_CPU}, wrk and nginx on CPU ${LOAD_CPU}` : "not pinned (BENCH_PIN=0 or 1 CPU)");
    log(`keygate ${keygateUrl} and passthrough ${passthroughUrl}: listening sockets of workerd pid ${sockets.keygate.pid} (${sockets.keygate.exe}), a child of this driver (pid ${process.pid})`);

    const rotating = Array.from({ length: ROTATING_KEYS }, unknownKey);
    const bearer = (key) => `Bearer ${key}`;
    const scenarios = [
      { id: "js0", name: "floor: JS, no subrequest", base: jsFloorUrl, path: "/", expect: 200, wrk: {}, what: "a trivial JavaScript worker returning a fixed body: the runtime's own ceiling and tail on this machine (not a target baseline)" },
      { id: "a0", name: "floor: Rust, no subrequest", base: passthroughUrl, path: "/__bench/floor", expect: 200, wrk: {}, what: "the pass-through worker answering a fixed body without fetching: invoking a Rust wasm worker at all (not a target baseline)" },
      { id: "a", name: "pass-through", base: passthroughUrl, expect: 200, wrk: {}, what: "bare Rust pass-through worker (benches/passthrough), same fetch shape, no key handling" },
      { id: "b", name: "hot key", base: keygateUrl, expect: 200, wrk: { KG_AUTH: bearer(keys.hot) }, what: "one valid fast-mode key without limits, record in the isolate cache" },
      { id: "c", name: "unknown keys", base: keygateUrl, expect: 401, wrk: { KG_MODE: "unknown" }, what: "a new well-formed (valid checksum), never-stored key on every request: each one is a KV miss" },
      { id: "c2", name: `unknown keys (${ROTATING_KEYS} rotating)`, base: keygateUrl, expect: 401, wrk: { KG_MODE: "rotate", KG_KEYS: rotating.join(",") }, what: `${ROTATING_KEYS} unknown keys in turn: shows the negative cache (NEGATIVE_CACHE_TTL_SECONDS=${NEGATIVE_TTL_S})` },
      { id: "d", name: "malformed key", base: keygateUrl, expect: 401, wrk: { KG_AUTH: bearer(malformedKey()) }, what: "right length/prefix/alphabet, bad checksum: refused by KeyFormat::parse, no I/O" },
      { id: "e", name: "exact limits", base: keygateUrl, expect: 200, wrk: { KG_AUTH: bearer(keys.exact) }, what: "exact-mode key, inline limits far above the load: decided from the isolate's limiter lease (LEASE_MS, default 1000 ms; before leases, one KeyLimiter Durable Object call per request)" },
      { id: "g", name: "hot key, exact mode", base: keygateUrl, expect: 200, wrk: { KG_AUTH: bearer(keys.exactHot) }, what: "one valid exact-mode key without limits: its lease carries only the record revision (before leases, one KeyLimiter call per request)" },
      { id: "f", name: "fast limits", base: keygateUrl, expect: 200, wrk: { KG_AUTH: bearer(keys.fast) }, what: "fast-mode key, the same inline limits: per-isolate decision, RateLimit headers" },
      { id: "a2", name: "pass-through (again)", base: passthroughUrl, expect: 200, wrk: {}, what: "(a) once more at the end: drift of the machine during the run" },
      { id: "a6", name: "pass-through + 6 headers", base: passthroughUrl, path: `/__bench/identity${PATH}`, expect: 200, wrk: {}, what: "(a) adding six constant headers the size of keygate's signed identity headers (which issue #2 requires): what sending them costs on this runtime, without any key handling" },
      { id: "a1h", name: "pass-through + 1 header", base: passthroughUrl, path: `/__bench/token${PATH}`, expect: 200, wrk: {}, what: "(a) adding one constant header the size of keygate's X-Keygate-Identity token (issue #15): what sending it costs on this runtime, without any key handling" },
      { id: "a6e", name: "pass-through + 6 hdrs + bindings", base: passthroughEnvUrl, path: `/__bench/identity${PATH}`, expect: 200, wrk: {}, what: "(a6) and (ae) together: the least a gateway shaped like keygate pays on this runtime before any key handling" },
      { id: "ae", name: "pass-through + bindings", base: passthroughEnvUrl, expect: 200, wrk: {}, what: "(a) with all of keygate's bindings (vars, KV, Durable Object namespaces, rate limiters) attached and unused" },
      { id: "a1", name: "pass-through, 1 connection", base: passthroughUrl, expect: 200, connections: 1, wrk: {}, what: "(a) with a single connection: latency without queueing" },
      { id: "b1", name: "hot key, 1 connection", base: keygateUrl, expect: 200, connections: 1, wrk: { KG_AUTH: bearer(keys.hot) }, what: "(b) with a single connection: latency without queueing; compare with (a1)" },
    ];
    const only = (env.BENCH_SCENARIOS ?? "").split(",").map((x) => x.trim()).filter(Boolean);
    for (const id of only) if (!scenarios.some((x) => x.id === id)) throw new Error(`BENCH_SCENARIOS: no scenario "${id}"`);
    if (only.length) scenarios.splice(0, scenarios.length, ...scenarios.filter((x) => only.includes(x.id)));

    // Each round runs every scenario once, in order; with BENCH_ROUNDS > 1 the rounds interleave,
    // so slow drift of a shared machine hits every scenario alike. Warm-up only in round 1.
    for (const s of scenarios) {
      s.url = new URL(s.path ?? PATH, s.base).href;
      s.isKeygate = s.base === keygateUrl;
      s.rounds = [];
    }
    for (let pass = 1; pass <= ROUNDS; pass++) {
      for (const s of scenarios) {
        const tag = `(${s.id}) ${s.name}${ROUNDS > 1 ? ` [round ${pass}/${ROUNDS}]` : ""}`;
        if (pass === 1) {
          // Probe: the scenario answers what it should (the first unknown key costs one KV read).
          const probeHeaders = s.wrk.KG_AUTH ? { authorization: s.wrk.KG_AUTH } : s.wrk.KG_MODE === "rotate" ? { authorization: bearer(rotating[0]) } : s.wrk.KG_MODE === "unknown" ? { authorization: bearer(unknownKey()) } : {};
          const probe = await request(s.url, { headers: probeHeaders });
          if (probe.status !== s.expect) throw new Error(`scenario ${s.id}: expected ${s.expect}, got ${probe.status}: ${probe.text.slice(0, 300)}`);
          log(`${tag}: warm-up ${WARMUP}s`);
          await runWrk(s.url, WARMUP, s.wrk, s.connections);
          await sleep(300);
        }
        const before = s.isKeygate ? await counters(s.base) : null;
        const logsBefore = logLines;
        log(`${tag}: measuring ${ROUND_SECONDS}s`);
        const cpuBefore = cpuSeconds(workerdPid);
        const w = await runWrk(s.url, ROUND_SECONDS, s.wrk, s.connections);
        const cpuUsed = cpuSeconds(workerdPid) - cpuBefore;
        await sleep(300); // let in-flight requests and log lines land before reading the counters
        const after = s.isKeygate ? await counters(s.base) : null;
        const delta = (field) => (s.isKeygate ? after[field] - before[field] : 0);
        s.rounds.push({ wrk: w, workerd_cpu_s: cpuUsed, requests: delta("requests"), kv_reads: delta("kv_reads"), do_calls: delta("do_calls"), log_lines: logLines - logsBefore });
      }
    }

    const median = (values) => {
      const sorted = [...values].sort((x, y) => x - y);
      const mid = Math.floor(sorted.length / 2);
      return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
    };
    const sum = (values) => values.reduce((x, y) => x + y, 0);
    const results = scenarios.map((s) => {
      const ws = s.rounds.map((r) => r.wrk);
      const sent = sum(ws.map((w) => w.requests));
      const durationS = sum(ws.map((w) => w.duration_us)) / 1e6;
      const statusErrors = sum(ws.map((w) => w.errors.status));
      const latency = (field) => round(median(ws.map((w) => w.latency_us[field])) / 1000, 3);
      // Per request = per request the worker received in the window (its own counter): wrk's
      // count leaves out the few requests still in flight when it stops.
      const workerRequests = sum(s.rounds.map((r) => r.requests));
      const served = s.isKeygate ? Math.max(workerRequests, 1) : sent;
      const kv = sum(s.rounds.map((r) => r.kv_reads));
      const dos = sum(s.rounds.map((r) => r.do_calls));
      return {
        id: s.id,
        name: s.name,
        what: s.what,
        connections: s.connections ?? CONNECTIONS,
        expected_status: s.expect,
        requests: sent,
        duration_s: round(durationS, 3),
        rps: round(sent / durationS, 1),
        rps_by_round: ws.map((w) => round(w.requests / (w.duration_us / 1e6), 1)),
        // workerd's own CPU time (all its threads) per request wrk completed: far less sensitive
        // to the shared machine's noise than req/s, since a stolen or idle core costs no CPU.
        workerd_cpu_us_per_request: round((1e6 * sum(s.rounds.map((r) => r.workerd_cpu_s))) / Math.max(sent, 1), 1),
        workerd_cpu_us_per_request_by_round: s.rounds.map((r) => round((1e6 * r.workerd_cpu_s) / Math.max(r.wrk.requests, 1), 1)),
        latency_ms: {
          p50: latency("p50"),
          p90: latency("p90"),
          p99: latency("p99"),
          p999: latency("p999"),
          mean: latency("mean"),
          max: round(Math.max(...ws.map((w) => w.latency_us.max)) / 1000, 3),
        },
        unexpected_status: s.expect === 200 ? statusErrors : sent - statusErrors,
        socket_errors: sum(ws.map((w) => w.errors.connect + w.errors.read + w.errors.write + w.errors.timeout)),
        worker_requests: s.isKeygate ? workerRequests : null,
        kv_reads: kv,
        do_calls: dos,
        kv_reads_per_request: s.isKeygate ? round(kv / served, 4) : 0,
        do_calls_per_request: s.isKeygate ? round(dos / served, 4) : 0,
        log_lines_per_request: round(sum(s.rounds.map((r) => r.log_lines)) / served, 4),
        counted_by: s.isKeygate ? "keygate /__keygate/counters deltas over the measured windows / the worker's own request count in them (worker_requests)" : "no KV or Durable Object bindings: 0 by construction",
      };
    });

    const a = results.find((r) => r.id === "a");
    for (const r of results) {
      r.ratio_rps_vs_a = a ? round(r.rps / a.rps, 3) : null;
      r.ratio_rps_vs_a_by_round = a ? r.rps_by_round.map((x, i) => round(x / a.rps_by_round[i], 3)) : null;
      // Each round's (a) and (x) ran back to back, so their ratio is a paired sample; the median
      // of those pairs resists the bursts of a shared machine that swing single rounds by ±20%.
      r.ratio_rps_vs_a_median_of_rounds = a ? round(median(r.ratio_rps_vs_a_by_round), 3) : null;
      r.ratio_cpu_per_request_a_over_x = a ? round(a.workerd_cpu_us_per_request / Math.max(r.workerd_cpu_us_per_request, 0.001), 3) : null;
      r.p50_added_ms_vs_a = a ? round(r.latency_ms.p50 - a.latency_ms.p50, 3) : null;
      r.p99_added_ms_vs_a = a ? round(r.latency_ms.p99 - a.latency_ms.p99, 3) : null;
    }

    const wasm = {
      gzip_level: 9,
      keygate: { ...fileSizes(path.join(KEYGATE_BUILD, "index_bg.wasm")), js_bytes: fs.statSync(path.join(KEYGATE_BUILD, "index.js")).size },
      passthrough: { ...fileSizes(path.join(PASSTHROUGH_BUILD, "index_bg.wasm")), js_bytes: fs.statSync(path.join(PASSTHROUGH_BUILD, "index.js")).size },
    };
    let outbound = null;
    try {
      outbound = JSON.parse(fs.readFileSync(path.join(path.dirname(CORE_JSON), "outbound.json"), "utf8"));
    } catch {
      outbound = null;
    }
    let core = null;
    try {
      core = JSON.parse(fs.readFileSync(CORE_JSON, "utf8"));
    } catch {
      log(`no native micro-benchmark results at ${path.relative(ROOT, CORE_JSON)}`);
    }

    const by = Object.fromEntries(results.map((r) => [r.id, r]));
    const c2Window = ROUND_SECONDS;
    const c2Bound = ROUNDS * ROTATING_KEYS * (Math.floor(c2Window / NEGATIVE_TTL_S) + 1);
    const coreVerify = core?.find((c) => c.name === "core_verify");
    const target = (name, goal, measured, met, note) => ({ name, target: goal, measured: measured ?? null, met: measured === null || measured === undefined ? null : met, ...(note ? { note } : {}) });
    const CACHE_TTL_S = Number(KEYGATE_VARS.CACHE_TTL_SECONDS ?? 30);
    const refreshBound = ROUNDS * (Math.floor(ROUND_SECONDS / CACHE_TTL_S) + 1);
    const has = (id) => by[id] !== undefined;
    const targets = [
      target("(b) req/s vs (a)", ">= 0.9", by.b?.ratio_rps_vs_a, by.b?.ratio_rps_vs_a >= 0.9),
      target("(b) req/s vs (a), median of the paired rounds", ">= 0.9", by.b?.ratio_rps_vs_a_median_of_rounds, by.b?.ratio_rps_vs_a_median_of_rounds >= 0.9),
      target(
        "(a6) req/s vs (a), median: the ceiling for (b)",
        "(context: below 0.9, (b) >= 0.9 is out of reach)",
        by.a6?.ratio_rps_vs_a_median_of_rounds,
        by.a6?.ratio_rps_vs_a_median_of_rounds >= 0.9,
        "(a6) only adds the six identity headers issue #2 requires to the pass-through, with no key handling at all: no gateway that sends them can do better on this runtime",
      ),
      target(
        "(a1h) req/s vs (a), median: the ceiling for (b) with one identity token",
        "(context: keygate sends one X-Keygate-Identity header since issue #15; (a6) is the six headers before it)",
        by.a1h?.ratio_rps_vs_a_median_of_rounds,
        by.a1h?.ratio_rps_vs_a_median_of_rounds >= 0.9,
      ),
      ...["a6", "a1h", "a6e"].map((id) => {
        const paired = has(id) && has("b") ? median(by.b.ratio_rps_vs_a_by_round.map((r, i) => r / by[id].ratio_rps_vs_a_by_round[i])) : null;
        return target(
          `(b) req/s vs (${id}), median of paired rounds`,
          `(context: keygate's cost beyond ${{ a6: "the six headers issue #2 required", a1h: "the one token header it sends" }[id] ?? "those headers and its bindings"})`,
          round(paired, 3),
          paired >= 0.9,
        );
      }),
      target("(b) workerd CPU per request, (a)/(b)", "(>= 0.9: the same target as CPU cost)", by.b?.ratio_cpu_per_request_a_over_x, by.b?.ratio_cpu_per_request_a_over_x >= 0.9),
      target("(b) p99 added vs (a), ms", "<= 0.5", by.b?.p99_added_ms_vs_a, by.b?.p99_added_ms_vs_a <= 0.5, P99_NOTE),
      target("(b) KV reads per request (hot key)", `0 (a record refresh per CACHE_TTL_SECONDS=${CACHE_TTL_S}: <= ${refreshBound} reads)`, has("b") ? `${by.b.kv_reads_per_request} (${by.b.kv_reads} reads / ${by.b.worker_requests} requests)` : null, by.b?.kv_reads <= refreshBound),
      target("(d) KV reads per request (malformed)", "0", has("d") ? `${by.d.kv_reads_per_request} (${by.d.kv_reads} reads / ${by.d.worker_requests} requests)` : null, by.d?.kv_reads === 0),
      target("(c) KV reads per distinct unknown key", "<= 1 per negative-cache TTL", has("c") ? `${by.c.kv_reads_per_request} (${by.c.kv_reads} reads / ${by.c.worker_requests} requests, each a new key)` : null, by.c?.kv_reads <= by.c?.worker_requests),
      target(`(c2) KV reads, ${ROTATING_KEYS} keys, ${ROUNDS}×${c2Window}s`, `<= ${c2Bound} (${ROUNDS > 1 ? `${ROUNDS} × ` : ""}${ROTATING_KEYS} × (floor(${c2Window}/${NEGATIVE_TTL_S})+1))`, has("c2") ? `${by.c2.kv_reads} (${by.c2.worker_requests} requests)` : null, by.c2?.kv_reads <= c2Bound),
      target("(b1) req/s vs (a1) at 1 connection", "(>= 0.9 at low load)", has("a1") && has("b1") ? round(by.b1.rps / by.a1.rps, 3) : null, has("a1") && has("b1") ? by.b1.rps / by.a1.rps >= 0.9 : null),
      target("(b1) p50 added vs (a1) at 1 connection, ms", "(p99 added <= 0.5 at low load)", has("a1") && has("b1") ? round(by.b1.latency_ms.p50 - by.a1.latency_ms.p50, 3) : null, has("a1") && has("b1") ? by.b1.latency_ms.p50 - by.a1.latency_ms.p50 <= 0.5 : null),
      target("(b1) p99 added vs (a1) at 1 connection, ms", "<= 0.5", has("a1") && has("b1") ? round(by.b1.latency_ms.p99 - by.a1.latency_ms.p99, 3) : null, has("a1") && has("b1") ? by.b1.latency_ms.p99 - by.a1.latency_ms.p99 <= 0.5 : null, P99_NOTE),
      target("wasm gzipped, KB", "<= 250", round(wasm.keygate.gzip_bytes / 1024, 1), wasm.keygate.gzip_bytes <= 250 * 1024),
      target("core verify (parse + hash + authorize), ns", "<= 1000", coreVerify ? coreVerify.median_ns : null, coreVerify ? coreVerify.median_ns <= 1000 : null),
    ];

    const warnings = [];
    if (has("c") && by.c.kv_reads_per_request < 0.9) warnings.push("(c) made fewer KV reads than requests: were the generated unknown keys well-formed?");
    for (const r of results) {
      if (r.unexpected_status > 0 || r.socket_errors > 0) warnings.push(`(${r.id}) ${r.unexpected_status} answers other than ${r.expected_status}, ${r.socket_errors} socket errors/timeouts`);
    }
    for (const warning of warnings) log(`WARNING: ${warning}`);

    Object.assign(report, {
      settings: { pinning: PIN ? { workerd_cpu: WORKERD_CPU, wrk_and_nginx_cpu: LOAD_CPU } : null, seconds: SECONDS, rounds: ROUNDS, seconds_per_round: ROUND_SECONDS, warmup_seconds: WARMUP, connections: CONNECTIONS, wrk_threads: THREADS, path: PATH, load_generator: "wrk + benches/wrk/scenario.lua" },
      machine: { cpus: os.cpus().length, cpu_model: os.cpus()[0]?.model ?? null, kernel: os.release(), memory_gib: round(os.totalmem() / 2 ** 30, 1) },
      versions: versions(),
      runtime: {
        how: "Miniflare Node API (convertV4MiniflareOptions): one workerd process runs both workers; each is loaded on its own workerd socket (unsafeDirectSockets) and the load goes there, not through wrangler dev",
        keygate_url: keygateUrl,
        passthrough_url: passthroughUrl,
        miniflare_entry_url: entryUrl,
        sockets,
        keygate_bindings: { vars: Object.keys(KEYGATE_VARS).sort(), kv: Object.keys(fromWrangler.kvNamespaces ?? {}), durable_objects: fromWrangler.durableObjects, ratelimits: Object.keys(fromWrangler.ratelimits ?? {}) },
      },
      wasm,
      startup,
      scenarios: results,
      core,
      outbound_construction: outbound,
      targets,
      warnings,
      worker_log_samples: logSamples,
    });
  } finally {
    await mf.dispose();
  }

  // 4. Where the time goes: V8 CPU profiles of (a) and (b) under the same load, in a separate
  //    workerd (the inspector is attached only here, so it cannot disturb the numbers above).
  if (PROFILE_SECONDS > 0) {
    report.profiles = {};
    for (const [id, worker, headers] of [
      ["a", passthroughWorker, {}],
      ["b", keygateWorker, { KG_AUTH: `Bearer ${keys.hot}` }],
    ]) {
      log(`(${id}) CPU profile under load: ${PROFILE_SECONDS}s`);
      report.profiles[id] = await profileUnderLoad(id, worker, headers);
    }
  }

  const json = `${JSON.stringify(report, null, 2)}\n`;
  fs.mkdirSync(path.dirname(OUT), { recursive: true });
  fs.writeFileSync(OUT, json);
  console.log(json);
  printSummary(report);
  if (report.profiles) printProfiles(report.profiles);
  console.log(`\nreport: ${path.relative(ROOT, OUT)}`);
}

function printSummary(report) {
  const pad = (text, width, right = false) => (right ? String(text).padStart(width) : String(text).padEnd(width));
  const fmt = (value, digits = 2) => (value === null || value === undefined ? "–" : Number(value).toFixed(digits));
  console.log(`\nkeygate load benchmark: ${report.settings.seconds}s per scenario (${report.settings.rounds} interleaved round(s) of ${report.settings.seconds_per_round}s) after ${report.settings.warmup_seconds}s warm-up, ${report.settings.connections} connections, wrk ${report.settings.wrk_threads} thread(s), ${report.machine.cpus} CPU(s)`);
  console.log(`workerd ${report.versions.workerd} via Miniflare ${report.versions.miniflare} (direct sockets), origin ${report.versions.origin ?? "?"}\n`);
  const header = [pad("scenario", 30), pad("req/s", 9, true), pad("p50 ms", 8, true), pad("p99 ms", 8, true), pad("× (a)", 7, true), pad("med ×", 7, true), pad("cpu µs", 8, true), pad("p99 +ms", 8, true), pad("KV/req", 8, true), pad("DO/req", 8, true), pad("logs/req", 9, true), pad("bad", 5, true)];
  console.log(header.join(" "));
  console.log("-".repeat(header.join(" ").length));
  for (const r of report.scenarios) {
    console.log(
      [
        pad(`(${r.id}) ${r.name}`, 30),
        pad(fmt(r.rps, 0), 9, true),
        pad(fmt(r.latency_ms.p50, 2), 8, true),
        pad(fmt(r.latency_ms.p99, 2), 8, true),
        pad(fmt(r.ratio_rps_vs_a, 2), 7, true),
        pad(fmt(r.ratio_rps_vs_a_median_of_rounds, 2), 7, true),
        pad(fmt(r.workerd_cpu_us_per_request, 0), 8, true),
        pad(fmt(r.p99_added_ms_vs_a, 2), 8, true),
        pad(fmt(r.kv_reads_per_request, 3), 8, true),
        pad(fmt(r.do_calls_per_request, 3), 8, true),
        pad(fmt(r.log_lines_per_request, 2), 9, true),
        pad(r.unexpected_status + r.socket_errors, 5, true),
      ].join(" "),
    );
  }
  console.log("× (a): req/s over all rounds / (a)'s; med ×: median of the per-round ratios (each round's (a) ran just before); cpu µs: workerd CPU time per request");
  const w = report.wasm;
  console.log(`\nwasm: keygate ${w.keygate.raw_bytes} B raw, ${w.keygate.gzip_bytes} B gzipped (${fmt(w.keygate.gzip_bytes / 1024, 1)} KB); pass-through ${w.passthrough.raw_bytes} B raw, ${w.passthrough.gzip_bytes} B gzipped`);
  const s = report.startup;
  console.log(`startup (new workerd process → first 200, median of ${s.keygate.runs.length}): keygate ${fmt(s.keygate.median_first_200_ms, 0)} ms, pass-through ${fmt(s.passthrough.median_first_200_ms, 0)} ms`);
  if (report.core) {
    console.log("\nnative core (ns/op, median):");
    for (const c of report.core) console.log(`  ${pad(c.name, 18)} ${pad(fmt(c.median_ns, 1), 9, true)}`);
  }
  if (report.outbound_construction) {
    console.log("\noutbound request construction inside workerd (µs/request, benches/outbound.mjs):");
    for (const [name, r] of Object.entries(report.outbound_construction.results)) console.log(`  ${pad(name, 18)} ${pad(fmt(r.us_per_request, 2), 9, true)}`);
  }
  console.log("\ntargets (benchmarks, not pass/fail):");
  for (const t of report.targets) console.log(`  ${t.met === true ? "met    " : t.met === false ? "MISSED " : "n/a    "} ${pad(t.name, 50)} ${pad(t.target, 34)} measured ${t.measured ?? "–"}${t.note === P99_NOTE ? "  (noise-dominated, see report note)" : ""}`);
}

let stopping = false;
for (const signal of ["SIGINT", "SIGTERM"]) {
  process.on(signal, () => {
    if (stopping) return;
    stopping = true;
    log(`${signal}: stopping`);
    process.exit(130);
  });
}

main().then(
  () => process.exit(0),
  (error) => {
    console.error(`[bench] FAILED: ${error?.stack ?? error}`);
    process.exit(1);
  },
);
