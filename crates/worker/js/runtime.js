// keygate's runtime fast paths: the few places where doing the work in JavaScript saves many
// crossings of the wasm/JS boundary (crates/worker/src/runtime.rs declares them for Rust).
//
// No policy here. These functions read and execute; Rust decides. Strings crossing the boundary
// use the one encoding of keygate_core::boundary: each field is followed by "\n", an absent
// optional field is "\0".

// Once per request: method, URL, the two credential headers, Origin (each "\0" when absent),
// whether there is a body, then every incoming header name (the names are for Rust to choose
// what the origin must not see; see crates/worker/src/forward.rs).
export function requestFacts(request, authHeader, apiKeyHeader) {
  const headers = request.headers;
  const value = (name) => { const v = headers.get(name); return v === null ? "\0" : v; };
  let facts = request.method + "\n" + request.url + "\n" + value(authHeader) + "\n" + value(apiKeyHeader) + "\n" + value("origin") + "\n" + (request.body === null ? "0" : "1") + "\n";
  for (const name of headers.keys()) facts += name + "\n";
  return facts;
}

// Only for a key restricted to some networks or countries (not on every request): the client
// address Cloudflare sets (CF-Connecting-IP) and request.cf.country, each "\0" when absent.
export function clientFacts(request) {
  const address = request.headers.get("cf-connecting-ip");
  const country = request.cf ? request.cf.country : undefined;
  return (address === null ? "\0" : address) + "\n" + (typeof country === "string" ? country : "\0") + "\n";
}

// KV.get(key, { type: "arrayBuffer", cacheTtl }) as a promise of a Uint8Array or null.
export function kvGetBytes(namespace, key, cacheTtl) {
  return namespace.get(key, { type: "arrayBuffer", cacheTtl }).then((value) => (value === null ? null : new Uint8Array(value)));
}

// KV.put(key, value) as worker's put_bytes(…).execute() sends it: the bytes as an ArrayBuffer of
// their own (the Uint8Array is a view of wasm memory, so it is copied before the call), and no
// options ({}).
export function kvPutBytes(namespace, key, value) {
  return namespace.put(key, value.slice().buffer, {});
}

// A Rate Limiting binding's limit({ key }), as a promise of whether the request is allowed
// (worker's RateLimiter::limit reads the same `success`).
export function rateLimit(binding, key) {
  return binding.limit({ key }).then((outcome) => outcome.success);
}

// new Request(url, …) with the incoming method and body, the incoming headers minus the names
// in `strip`, plus `add` (name, value, name, value…). A plain object without prototype holds
// the headers: no header name is special in it, and it is the cheapest form new Request takes.
export function outbound(request, url, strip, add, signal) {
  const drop = strip.split("\n");
  const headers = Object.create(null);
  for (const pair of request.headers) if (!drop.includes(pair[0])) headers[pair[0]] = pair[1];
  const parts = add.split("\n");
  for (let i = 0; i + 1 < parts.length; i += 2) headers[parts[i]] = parts[i + 1];
  return new Request(url, { method: request.method, headers, body: request.body, redirect: "manual", signal });
}

// The admin API's OpenAPI document, which the worker entry (crates/worker/js/entry.js) puts on
// globalThis from its bundled text; null when keygate's wasm runs without that entry.
export function openapiDocument() {
  return typeof globalThis.keygateOpenapi === "string" ? globalThis.keygateOpenapi : null;
}

// A promise of whether `signature` (raw r‖s) is `key`'s (SPKI DER) ECDSA P-256/SHA-256 signature
// of `body`; false for a key that does not import. The views point into wasm memory, which may
// move before the promise settles: they are copied first.
export function verifyP256(spki, signature, body) {
  const subtle = crypto.subtle, algorithm = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" };
  const sig = signature.slice(), data = body.slice();
  return subtle.importKey("spki", spki.slice(), algorithm, false, ["verify"]).then((key) => subtle.verify(algorithm, key, sig, data)).catch(() => false);
}

// fetch(url) as a promise of its body as a Uint8Array when the status is 200, else null.
export function fetchBytes(url) {
  return fetch(url).then((r) => (r.status === 200 ? r.arrayBuffer().then((b) => new Uint8Array(b)) : null)).catch(() => null);
}

// fetch(request) as worker's Fetch::send makes it (with an init of { signal: null }), or null
// once `ms` pass first; the timer is cleared when the fetch settles first (as worker's Delay is
// when dropped). Rust decides what a timeout means (crates/worker/src/forward.rs).
export function fetchWithin(request, ms) {
  let timer;
  const timeout = new Promise((resolve) => {
    timer = setTimeout(resolve, ms, null);
  });
  return Promise.race([fetch(request, { signal: null }), timeout]).finally(() => clearTimeout(timer));
}

// One Durable Object call (crates/worker/src/durable.rs): POST `body` to instance `name` of
// `namespace`, as worker's ObjectNamespace::get_by_name and Stub::fetch_with_request would.
// Resolves with the answer's body (Uint8Array) when its status is 200, else with the status;
// a failed step rejects with [step, error] ("stub", "request", "fetch" or "decode") for Rust to
// describe as before.
export async function durablePost(namespace, name, body) {
  const step = (name, error) => [name, error];
  let stub, request, response;
  try {
    stub = namespace.getByName(name);
  } catch (error) {
    throw step("stub", error);
  }
  try {
    request = new Request("https://durable-object.keygate.internal/op", { method: "POST", body });
  } catch (error) {
    throw step("request", error);
  }
  try {
    response = await stub.fetch(request);
  } catch (error) {
    throw step("fetch", error);
  }
  if (!(response instanceof Response)) throw step("fetch", response);
  if (response.status !== 200) return response.status;
  try {
    return new Uint8Array(await response.arrayBuffer());
  } catch (error) {
    throw step("decode", error);
  }
}

// The Standard Webhooks signing key: `secret` (bytes, never logged) as a Web Crypto HMAC key.
export function webhookKey(secret) {
  return crypto.subtle.importKey("raw", secret, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
}

// The Standard Webhooks `webhook-signature` of `body` for event `id` at unix second `timestamp`:
// "v1," and the base64 of HMAC-SHA256 over "{id}.{timestamp}.{body}". keygate's only signer of
// webhooks; tests/webhooks.rs checks it against the specification's published vector.
export async function webhookSignature(key, id, timestamp, body) {
  const mac = new Uint8Array(await crypto.subtle.sign("HMAC", key, new TextEncoder().encode(id + "." + timestamp + "." + body)));
  return "v1," + btoa(String.fromCharCode(...mac));
}

// POST a batch of webhook attempts in parallel: fields (url, headers as "name\nvalue\n…", body)
// each ended by "\u0001". Each is signed here (webhookSignature, keyed with `secret`). No redirect
// is followed (a 3xx is a failed attempt); each is aborted after timeoutMs. A promise of an
// array of the outcomes in order: the HTTP status, -1 on timeout, 0 when no answer came.
export async function postWebhooks(batch, timeoutMs, secret) {
  const key = await webhookKey(secret);
  const fields = batch.split("\u0001"), sent = [];
  for (let i = 0; i + 2 < fields.length; i += 3) {
    const parts = fields[i + 1].split("\n"), headers = Object.create(null), body = fields[i + 2];
    for (let j = 0; j + 1 < parts.length; j += 2) headers[parts[j]] = parts[j + 1];
    headers["webhook-signature"] = await webhookSignature(key, headers["webhook-id"], headers["webhook-timestamp"], body);
    const done = (r) => { const s = r.status; return r.body ? r.body.cancel().then(() => s, () => s) : s; };
    sent.push(fetch(fields[i], { method: "POST", headers, body, redirect: "manual", signal: AbortSignal.timeout(timeoutMs) })
      .then(done, (e) => (e && e.name === "TimeoutError" ? -1 : 0)));
  }
  return Promise.all(sent);
}

// Set a registry's alarm (crates/worker/src/webhooks.rs) to the earliest pending outbox row, at
// its unix ms; none pending: the alarm is left as it is. Async so that a failed query rejects.
export async function scheduleWebhooks(state) {
  const next = state.storage.sql.exec("SELECT MIN(next_at) AS next FROM webhook_events WHERE state = 'pending'").one().next;
  if (next != null) await state.storage.setAlarm(next);
}
