// Sustained concurrent load at keygate's own workerd socket (no wrangler proxy in between), across
// many isolate-cache refreshes, with exact, fast, limited, unlimited and unknown keys. Prints one
// JSON report on stdout: the statuses per key kind, the KV reads the load caused, and every worker
// log line that shows the runtime refusing or cancelling cross-request I/O. tests/load.rs runs it
// and asserts on that report (counts, not timings).
//
// Environment (set by tests/load.rs):
//   LOAD_BUILD          the keygate build to load (a directory with index.js + index_bg.wasm)
//   LOAD_TMP            scratch directory (state, config copy); removed by the caller
//   LOAD_CLIENTS        concurrent clients (default 32)
//   LOAD_MAX_REQUESTS   upper bound on requests (default 60000)
//   LOAD_KV_READS       stop once the load caused this many KV reads (default 60)
//   LOAD_MAX_SECONDS    upper bound on the load's duration (default 90): a bound, not a measurement
//   LOAD_BURNERS        threads that keep the CPUs busy during the load (default 1): a contended
//                       machine stretches the windows in which requests overlap, which is where
//                       cross-request defects show (none is visible on an idle machine)
//   LOAD_ABORT_EVERY    every Nth request of a client goes away before its answer (default 4), as
//                       clients do (timeouts, closed tabs, a load generator stopping): the runtime
//                       then cancels that request, and whatever it had started must not take any
//                       other request down with it
//
// The origin is a minimal Node server in this process (200 and a small JSON body, keep-alive), so
// that what is measured is keygate, not an origin's own behaviour under load. It does not verify
// keygate's signature: tests/gateway.rs and tests/origin_secrets.rs do that.
//
// Loopback only: every request goes to 127.0.0.1.

import { randomBytes } from "node:crypto";
import fs from "node:fs";
import http from "node:http";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { Worker } from "node:worker_threads";

import { liveKeyHead, modulesOf, startMiniflare, unknownKey, wranglerWorkerOptions } from "../../benches/workers.mjs";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

const env = process.env;
const BUILD = path.resolve(ROOT, env.LOAD_BUILD ?? "build");
const TMP = env.LOAD_TMP;
const CLIENTS = Number(env.LOAD_CLIENTS ?? 32);
const MAX_REQUESTS = Number(env.LOAD_MAX_REQUESTS ?? 60_000);
const KV_READS_WANTED = Number(env.LOAD_KV_READS ?? 60);
const MAX_SECONDS = Number(env.LOAD_MAX_SECONDS ?? 90);
const ABORT_EVERY = Number(env.LOAD_ABORT_EVERY ?? 4);
const BURNERS = Number(env.LOAD_BURNERS ?? 1);
if (!TMP || !fs.existsSync(TMP)) throw new Error("LOAD_TMP must be an existing scratch directory");

const origin = http.createServer((req, res) => {
  req.resume();
  req.on("end", () => {
    res.writeHead(200, { "content-type": "application/json" });
    res.end('{"ok":true,"origin":"load"}');
  });
});
origin.keepAliveTimeout = 60_000;
await new Promise((resolve) => origin.listen(0, "127.0.0.1", resolve));
const ORIGIN_URL = `http://127.0.0.1:${origin.address().port}`;

const ADMIN_TOKEN = randomBytes(24).toString("hex");
const PATH = "/v1/public/cms/articles/items";
/** What workerd logs when a request touches another request's I/O, or is cancelled for it. */
const CROSS_REQUEST = [
  "Cannot perform I/O on behalf of a different request",
  "A promise was resolved or rejected from a different request context",
  "detected that your Worker's code had hung",
];

const fromWrangler = wranglerWorkerOptions(TMP);
const vars = {
  ...fromWrangler.bindings,
  ORIGIN_URL,
  ORIGIN_URL_TEST: ORIGIN_URL,
  ORIGIN_SIGNING_SECRET: randomBytes(24).toString("hex"),
  ADMIN_TOKEN,
  KEYGATE_TEST_MODE: "yes-this-is-a-test-deployment",
  CACHE_TTL_SECONDS: "1",
  NEGATIVE_CACHE_TTL_SECONDS: "1",
};
const logLines = [];
const mf = startMiniflare(
  [
    {
      name: "keygate",
      ...modulesOf(BUILD),
      compatibilityDate: fromWrangler.compatibilityDate,
      compatibilityFlags: fromWrangler.compatibilityFlags,
      bindings: vars,
      kvNamespaces: fromWrangler.kvNamespaces,
      durableObjects: fromWrangler.durableObjects,
      ratelimits: fromWrangler.ratelimits,
      unsafeDirectSockets: [{ host: "127.0.0.1", port: 0 }],
    },
  ],
  TMP,
  (entry) => logLines.push(String(entry.message)),
);

// Keep-alive connections, one per client, as a load generator would hold them.
const agent = new http.Agent({ keepAlive: true, maxSockets: CLIENTS });
function request(url, { method = "GET", headers = {}, body, abortAfterMs } = {}) {
  return new Promise((resolve, reject) => {
    // An abandoned request gets its own connection: destroying it must not cut another's.
    const req = http.request(url, { method, headers, agent: abortAfterMs === undefined ? agent : false, timeout: 30_000 }, (res) => {
      const chunks = [];
      res.on("data", (chunk) => chunks.push(chunk));
      res.on("end", () => resolve({ status: res.statusCode, text: Buffer.concat(chunks).toString("utf8") }));
      res.on("error", reject);
    });
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", reject);
    req.end(body);
    if (abortAfterMs !== undefined) {
      setTimeout(() => {
        req.destroy();
        resolve({ status: "aborted", text: "" });
      }, abortAfterMs);
    }
  });
}

try {
  await mf.ready;
  const base = (await mf.unsafeGetDirectURL("keygate")).href;
  const admin = async (body) => {
    const { status, text } = await request(new URL(`${vars.ADMIN_PREFIX ?? "/_keygate/v1"}/keys`, base), {
      method: "POST",
      headers: { authorization: `Bearer ${ADMIN_TOKEN}`, "content-type": "application/json" },
      body: JSON.stringify({ project: "load", role: "read_only", ...body }),
    });
    if (status !== 201) throw new Error(`admin create → ${status}: ${text.slice(0, 300)}`);
    return JSON.parse(text).key;
  };
  const kvReads = async () => JSON.parse((await request(new URL("/__keygate/counters", base))).text).kv_reads;
  const far = [
    { name: "minute", limit: 60_000_000, window_seconds: 60 },
    { name: "daily", limit: 1_000_000_000, window_seconds: 86_400 },
  ];
  const kinds = [
    { kind: "exact, limited", key: await admin({ name: "exact limited", limit_mode: "exact", limits: far }), expect: 200 },
    { kind: "fast, limited", key: await admin({ name: "fast limited", limit_mode: "fast", limits: far }), expect: 200 },
    { kind: "exact, no limits", key: await admin({ name: "exact plain", limit_mode: "exact", limits: [] }), expect: 200 },
    { kind: "fast, no limits", key: await admin({ name: "fast plain", limit_mode: "fast", limits: [] }), expect: 200 },
    { kind: "unknown", key: unknownKey(liveKeyHead(vars)), expect: 401 },
  ];
  for (const k of kinds) Object.assign(k, { got: {}, aborted: 0 });
  const url = new URL(PATH, base);
  // Busy threads, stopped with the load (and by `terminate` in any case).
  const burners = Array.from({ length: BURNERS }, () => new Worker("for (;;) {}", { eval: true }));
  const readsBefore = await kvReads();
  const started = Date.now();
  let sent = 0;
  let stop = false;
  const client = async (offset) => {
    let turn = offset;
    while (!stop && sent < MAX_REQUESTS) {
      sent += 1;
      // All clients on one key at a time, the key changing every 150 ms: each key's cache entry
      // expires between its turns, so its next turn starts with many concurrent misses.
      const k = kinds[Math.floor((Date.now() - started) / 150) % kinds.length];
      const abortAfterMs = ABORT_EVERY > 0 && turn % ABORT_EVERY === ABORT_EVERY - 1 ? turn % 3 : undefined;
      turn += 1;
      let status;
      try {
        status = (await request(url, { headers: { authorization: `Bearer ${k.key}` }, abortAfterMs })).status;
      } catch (error) {
        status = `error: ${error.code ?? error.message}`;
      }
      if (status === "aborted") k.aborted += 1;
      else k.got[status] = (k.got[status] ?? 0) + 1;
    }
  };
  const watcher = async () => {
    while (!stop) {
      const reads = (await kvReads()) - readsBefore;
      if (reads >= KV_READS_WANTED || sent >= MAX_REQUESTS || Date.now() - started > MAX_SECONDS * 1000) stop = true;
      else await new Promise((resolve) => setTimeout(resolve, 100));
    }
  };
  try {
    await Promise.all([watcher(), ...Array.from({ length: CLIENTS }, (_, i) => client(i))]);
  } finally {
    await Promise.all(burners.map((burner) => burner.terminate()));
  }
  const kvReadsDuringLoad = (await kvReads()) - readsBefore;
  // Log lines of requests still finishing land shortly after their responses: one more counter
  // round trip lets them arrive before the report is written.
  await kvReads();
  const report = {
    sent,
    kv_reads: kvReadsDuringLoad,
    kinds: kinds.map(({ kind, expect, got, aborted }) => ({ kind, expect, got, aborted })),
    cross_request_log_lines: logLines.filter((line) => CROSS_REQUEST.some((m) => line.includes(m))).slice(0, 20),
    log_lines: logLines.length,
    log_samples: logLines.slice(0, 5).map((line) => line.slice(0, 400)),
  };
  process.stdout.write(`${JSON.stringify(report)}\n`);
} finally {
  agent.destroy();
  await mf.dispose();
  origin.closeAllConnections();
  origin.close();
}
