// keygate's worker entry (build/index.js): answers the key console's three static files, then
// hands every other request to the Rust worker (build/keygate.js, made by worker-build).
//
// The console is static text (crates/worker/console/, inlined by scripts/console-assets.mjs into
// build/console_assets.js), so it is served here, before the wasm is called: it adds nothing to
// the wasm, and its path follows ADMIN_PREFIX. The page holds no secret and decides nothing; every
// action it offers is an admin API call, authenticated and checked by the Rust side like any other.
import Keygate, { KeyRegistry as Registry } from "./keygate.js";
import assets from "./console_assets.js";
import openapi from "./openapi_document.js";

export { KeyLimiter } from "./keygate.js";

// The key registry Durable Object. Its alarm (webhook deliveries, crates/worker/src/webhooks.rs)
// reaches the Rust side as a PUT to its fetch (the registry's own calls are POSTs): the wasm
// exports one handler per object, not a second future for the alarm. A failed run rejects, so
// the runtime retries it as before.
export class KeyRegistry extends Registry {
  alarm() {
    return this.fetch(new Request("https://registry.keygate.internal/alarm", { method: "PUT" }));
  }
}

// The admin API's OpenAPI document (text), for the Rust side to answer
// GET <ADMIN_PREFIX>/openapi.json with after it has authenticated the caller
// (crates/worker/js/runtime.js `openapiDocument`). Kept here, not in the wasm: ~8 KB gzipped less.
globalThis.keygateOpenapi = openapi;

// Sent with every console file. The page loads only its own script and stylesheet, talks only to
// its own origin, can be framed by nobody and sends no referrer.
const CONSOLE_HEADERS = {
  "content-security-policy":
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
  "x-frame-options": "DENY",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "cache-control": "no-store",
};

const TYPES = { html: "text/html; charset=utf-8", js: "text/javascript; charset=utf-8", css: "text/css; charset=utf-8" };

// The console file a GET/HEAD of `pathname` asks for, or undefined: `<prefix>/console` is the
// page, `<prefix>/console/<file>` its script and stylesheet. The prefix is ADMIN_PREFIX without a
// trailing "/", as the Rust config reads it (an invalid prefix makes the API answer CONFIG_INVALID).
function consoleFile(method, pathname, adminPrefix) {
  if (method !== "GET" && method !== "HEAD") return undefined;
  const base = (adminPrefix || "/_keygate/v1").replace(/\/+$/, "") + "/console";
  if (pathname === base) return "console.html";
  if (pathname.startsWith(base + "/")) {
    const name = pathname.slice(base.length + 1);
    if (name !== "console.html" && Object.hasOwn(assets, name)) return name;
  }
  return undefined;
}

export default class extends Keygate {
  fetch(request) {
    // Every request passes here: a substring test spares the rest of them the URL parse.
    if (!request.url.includes("/console")) return super.fetch(request);
    const name = consoleFile(request.method, new URL(request.url).pathname, this.env.ADMIN_PREFIX);
    if (name === undefined) return super.fetch(request);
    const type = TYPES[name.slice(name.lastIndexOf(".") + 1)];
    const body = request.method === "HEAD" ? null : assets[name];
    return new Response(body, { headers: { "content-type": type, ...CONSOLE_HEADERS } });
  }
}
