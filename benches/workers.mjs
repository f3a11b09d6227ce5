// What the benchmark (benches/run.mjs) and the load test (tests/load/drive.mjs) share: keygate's
// worker options as wrangler derives them from wrangler.toml, a Miniflare that gives each worker
// its own workerd socket, and well-formed keys that were never stored.

import { randomBytes } from "node:crypto";
import fs from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";
import zlib from "node:zlib";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const require = createRequire(path.join(ROOT, "package.json"));
const { Miniflare, Log, LogLevel, convertV4MiniflareOptions } = require("miniflare");

/** keygate's bindings exactly as wrangler derives them from wrangler.toml (vars, KV, Durable
 * Objects with useSQLite from the migrations, ratelimits). The config is read from a copy in the
 * scratch directory `tmp` so that no `.dev.vars` of the checkout is picked up. */
export function wranglerWorkerOptions(tmp) {
  const copy = path.join(tmp, "wrangler.toml");
  fs.copyFileSync(path.join(ROOT, "wrangler.toml"), copy);
  const wrangler = require("wrangler");
  const { workerOptions } = wrangler.unstable_getMiniflareWorkerOptions(copy);
  return workerOptions;
}

/** Rate Limiting bindings of `workerOptions` in the shape Miniflare takes. */
export function ratelimitsOf(workerOptions) {
  return Object.fromEntries(
    Object.entries(workerOptions.ratelimits ?? {}).map(([name, rl]) => [name, { namespace_id: String(rl.namespace_id), simple: rl.simple }]),
  );
}

/** The modules of a worker build directory (index.js + index_bg.wasm; for keygate's build also
 * keygate.js, console_assets.js and openapi_document.js, which its entry index.js imports: see scripts/build.sh). */
export function modulesOf(dir) {
  const extra = ["keygate.js", "console_assets.js", "openapi_document.js"].filter((name) => fs.existsSync(path.join(dir, name)));
  return {
    modulesRoot: dir,
    modules: [
      { type: "ESModule", path: path.join(dir, "index.js") },
      ...extra.map((name) => ({ type: "ESModule", path: path.join(dir, name) })),
      { type: "CompiledWasm", path: path.join(dir, "index_bg.wasm") },
    ],
  };
}

/** One workerd process running `workers`, state under `tmp`/state, worker console output to
 * `onLog(entry)`; `shared` adds Miniflare options (e.g. `inspectorPort`). */
export function startMiniflare(workers, tmp, onLog, shared = {}) {
  return new Miniflare(
    convertV4MiniflareOptions({
      ...shared,
      host: "127.0.0.1",
      port: 0,
      cf: false, // placeholder `request.cf`: never fetched from the network
      log: new Log(LogLevel.WARN),
      handleStructuredLogs: onLog,
      resourcePersistencePath: path.join(tmp, "state"),
      telemetry: { enabled: false },
      workers,
    }),
  );
}

const BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
function base62Fixed(value, width) {
  let out = "";
  for (let i = 0; i < width; i++) {
    out = BASE62[value % 62] + out;
    value = Math.floor(value / 62);
  }
  return out;
}

/**
 * How keygate mints live keys under `vars` (README "Key format"): `<first prefix>_<first live
 * segment>_`, or `<first prefix>_` when `KEY_ENV_SEGMENTS` is "none". Vars may be TOML values or
 * JSON strings; empty = unset.
 */
export function liveKeyHead(vars) {
  const value = (name) => (vars[name] === undefined || vars[name] === "" ? undefined : vars[name]);
  const json = (v) => (typeof v === "string" ? JSON.parse(v) : v);
  const prefix = value("KEY_PREFIXES") !== undefined ? json(value("KEY_PREFIXES"))[0] : value("KEY_PREFIX") ?? "kg";
  const segments = value("KEY_ENV_SEGMENTS");
  const live = segments === undefined ? "live" : segments === "none" ? undefined : [json(segments).live ?? []].flat()[0];
  return live === undefined ? `${prefix}_` : `${prefix}_${live}_`;
}

/** A well-formed live key (valid checksum) starting with `head` (see `liveKeyHead`) that is never stored: keygate must look it up. */
export function unknownKey(head) {
  const bytes = randomBytes(64);
  let body = "";
  for (const byte of bytes) if (byte < 248 && body.length < 32) body += BASE62[byte % 62];
  const text = `${head}${body}`;
  return text + base62Fixed(zlib.crc32(text), 6);
}
