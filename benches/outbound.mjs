// Micro-benchmark, inside workerd, of building the outbound request: keygate's `outbound`
// (crates/worker/js/runtime.js) and the pass-through's (benches/passthrough/src/lib.rs), both read from
// their sources so what ships is what is measured, plus the alternatives they were chosen over.
// Each variant builds the same request from the same incoming request (4 headers, one of them
// the credential) N times in one invocation; the time of an empty loop is subtracted.
//
//   node_modules/.bin/node benches/outbound.mjs [out.json]      (make bench runs it)

import fs from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const require = createRequire(path.join(ROOT, "package.json"));
const { Miniflare, Log, LogLevel, convertV4MiniflareOptions } = require("miniflare");

function inlineJs(file, fn) {
  const text = fs.readFileSync(path.join(ROOT, file), "utf8");
  const blocks = [...text.matchAll(/inline_js = r#"([\s\S]*?)"#/g)].map((m) => m[1]);
  const block = blocks.find((b) => b.includes(`function ${fn}(`));
  if (!block) throw new Error(`no inline JS function ${fn} in ${file}`);
  return block.replace(/export function \w+\(/, "function (");
}

// One exported function of a JS module, as an expression (it must end with a line "}").
function moduleFunction(file, fn) {
  const text = fs.readFileSync(path.join(ROOT, file), "utf8");
  const match = text.match(new RegExp(`^export function ${fn}\\([\\s\\S]*?^}$`, "m"));
  if (!match) throw new Error(`no exported function ${fn} in ${file}`);
  return match[0].replace(/export function \w+\(/, "function (");
}

const keygate = moduleFunction("crates/worker/js/runtime.js", "outbound");
const passthrough = inlineJs("benches/passthrough/src/lib.rs", "outbound");
const N = 50_000;

const script = `
const url = "http://127.0.0.1:9/v1/public/cms/articles/items";
const added = ${JSON.stringify(
  // One X-Keygate-Identity token of the size keygate sends (380 bytes, as in benches/passthrough).
  "x-keygate-identity\neyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9." + "x".repeat(299) + "." + "s".repeat(43) + "\n",
)};
// What Rust's forward::outbound_headers hands keygate's outbound for this request's headers.
const stripList = "authorization\\nhost\\n";
const strip = (n) => n === "host" || n === "authorization" || n === "x-api-key" || n.startsWith("x-keygate-");
const keygate = ${keygate};
const passthrough = ${passthrough};
const variants = {
  empty: () => 1,
  keygate: (request, signal) => keygate(request, url, stripList, added, signal),
  passthrough: (request, signal) => passthrough(request, url, signal, 0),
  passthrough_6_headers: (request, signal) => passthrough(request, url, signal, 6),
  passthrough_1_token_header: (request, signal) => passthrough(request, url, signal, 1),
  pairs_list(request, signal) {
    const list = [];
    for (const p of request.headers) if (!strip(p[0])) list.push(p);
    const parts = added.split("\\n");
    for (let i = 0; i + 1 < parts.length; i += 2) list.push([parts[i], parts[i + 1]]);
    return new Request(url, { method: request.method, headers: list, body: request.body, redirect: "manual", signal });
  },
  copy_delete_set(request, signal) {
    const headers = new Headers(request.headers);
    const drop = [];
    for (const k of headers.keys()) if (strip(k)) drop.push(k);
    for (const k of drop) headers.delete(k);
    const parts = added.split("\\n");
    for (let i = 0; i + 1 < parts.length; i += 2) headers.set(parts[i], parts[i + 1]);
    return new Request(url, { method: request.method, headers, body: request.body, redirect: "manual", signal });
  },
};
export default {
  async fetch(request) {
    const u = new URL(request.url);
    const build = variants[u.pathname.slice(1)];
    const n = Number(u.searchParams.get("n"));
    const signal = new AbortController().signal;
    let built = 0;
    for (let i = 0; i < n; i++) if (build(request, signal)) built++;
    return new Response(String(built));
  },
};`;

const mf = new Miniflare(convertV4MiniflareOptions({ modules: true, script, compatibilityDate: "2026-11-01", cf: false, log: new Log(LogLevel.WARN) }));
try {
  const base = await mf.ready;
  const headers = { authorization: "Bearer kg_live_abcdefabcdefabcdefabcdefabcdefab123456", "user-agent": "wrk", accept: "*/*" };
  const run = async (name, n) => {
    const t = performance.now();
    const response = await mf.dispatchFetch(new URL(`/${name}?n=${n}`, base), { headers });
    if ((await response.text()) !== String(n)) throw new Error(`${name} did not build ${n} requests`);
    return performance.now() - t;
  };
  const results = {};
  for (const name of ["keygate", "passthrough", "passthrough_6_headers", "passthrough_1_token_header", "pairs_list", "copy_delete_set"]) {
    await run(name, 5000); // warm-up: JIT
    const samples = [];
    for (let round = 0; round < 3; round++) samples.push(((await run(name, N)) - (await run("empty", N))) * 1000 / N);
    samples.sort((x, y) => x - y);
    results[name] = { us_per_request: Math.round(samples[1] * 100) / 100, samples_us: samples.map((x) => Math.round(x * 100) / 100) };
  }
  const out = process.argv[2];
  if (out) fs.writeFileSync(out, `${JSON.stringify({ n_per_sample: N, results }, null, 2)}\n`);
  console.log(`outbound request construction inside workerd (median of 3 × ${N}, µs per request):`);
  for (const [name, r] of Object.entries(results)) console.log(`  ${name.padEnd(26)} ${r.us_per_request.toFixed(2).padStart(7)}`);
} finally {
  await mf.dispose();
}
