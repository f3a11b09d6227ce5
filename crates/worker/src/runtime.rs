//! The runtime fast paths, `crates/worker/js/runtime.js`: one JavaScript call each where doing
//! the work from Rust would cross the wasm/JS boundary once per value (each crossing re-encodes
//! a string). The JavaScript holds no policy: it reads the request, reads KV, or builds the
//! outbound request exactly as told. Every string crossing either way is encoded by
//! [`keygate_core::boundary`] (fields each followed by `\n`, an absent one as `\0`), which is
//! unit-tested natively.
//!
//! worker-build bundles the module: wasm-bindgen copies it into the build's `snippets/`, and
//! esbuild inlines it into `build/index.js` with the rest of the glue.

use wasm_bindgen::prelude::*;
use worker::web_sys;

#[wasm_bindgen(module = "/js/runtime.js")]
extern "C" {
    /// The request facts, decoded by [`keygate_core::boundary::ReceivedRequest::decode`].
    #[wasm_bindgen(js_name = requestFacts)]
    pub fn request_facts(request: &web_sys::Request, auth_header: &str, api_key_header: &str) -> String;

    /// The client's address and country, decoded by [`keygate_core::boundary::decode_client`];
    /// called only for a key restricted to some networks or countries.
    #[wasm_bindgen(js_name = clientFacts)]
    pub fn client_facts(request: &web_sys::Request) -> String;

    /// `KV.get(key, {type: "arrayBuffer", cacheTtl})` as a promise of a `Uint8Array` or `null`.
    #[wasm_bindgen(js_name = kvGetBytes, catch)]
    pub fn kv_get_bytes(namespace: &JsValue, key: &str, cache_ttl: f64) -> Result<js_sys::Promise, JsValue>;

    /// `KV.put(key, value)`, `value` copied into its own `ArrayBuffer` and no options: what
    /// worker's `put_bytes(…).execute()` sends, without its options serializer
    /// (serde_wasm_bindgen, used by nothing else).
    #[wasm_bindgen(js_name = kvPutBytes, catch)]
    pub fn kv_put_bytes(namespace: &JsValue, key: &str, value: &[u8]) -> Result<js_sys::Promise, JsValue>;

    /// A Rate Limiting binding's `limit({key})`, as a promise of its outcome's `success`: what
    /// worker's `RateLimiter::limit` does, without serde_wasm_bindgen.
    #[wasm_bindgen(js_name = rateLimit, catch)]
    pub fn rate_limit(binding: &JsValue, key: &str) -> Result<js_sys::Promise, JsValue>;

    /// `new Request(url, …)` with the incoming method, body and headers minus the names in
    /// `strip`, plus `add` ([`keygate_core::forward::outbound_headers`] encodes both).
    #[wasm_bindgen(catch)]
    pub fn outbound(
        request: &web_sys::Request,
        url: &str,
        strip: &str,
        add: &str,
        signal: &web_sys::AbortSignal,
    ) -> Result<web_sys::Request, JsValue>;

    /// `fetch(request)` raced against a `ms` timer: a promise of the `Response`, or of `null`
    /// when the timer fires first (the timer is cleared otherwise).
    #[wasm_bindgen(js_name = fetchWithin, catch)]
    pub fn fetch_within(request: &web_sys::Request, ms: i32) -> Result<js_sys::Promise, JsValue>;

    /// One Durable Object call: a promise of the answer's body (`Uint8Array`) when its status is
    /// 200, else of the status; a failed step rejects with `[step, error]` (see `durable::post`).
    #[wasm_bindgen(js_name = durablePost)]
    pub fn durable_post(namespace: &JsValue, name: &str, body: &str) -> js_sys::Promise;

    /// The admin API's OpenAPI document, minified, as the worker entry bundles it (not in the
    /// wasm: static text is cheaper as a JS string); `None` without that entry.
    #[wasm_bindgen(js_name = openapiDocument)]
    pub fn openapi_document() -> Option<String>;

    /// A promise of whether `signature` (raw `r‖s`) is an ECDSA P-256/SHA-256 signature of `body`
    /// by the SPKI DER key `spki` (Web Crypto; `false` for a key that does not import).
    #[wasm_bindgen(js_name = verifyP256)]
    pub fn verify_p256(spki: &[u8], signature: &[u8], body: &[u8]) -> js_sys::Promise;

    /// `fetch(url)` as a promise of the body (`Uint8Array`) of a 200 answer, else `null`.
    #[wasm_bindgen(js_name = fetchBytes)]
    pub fn fetch_bytes(url: &str) -> js_sys::Promise;

    /// POSTs a batch of webhook attempts at once (each [`keygate_core::webhook::batch_entry`]
    /// with [`keygate_core::webhook::WebhookSettings::unsigned_headers`]), each signed with
    /// `secret` (the Standard Webhooks `webhook-signature`, by Web Crypto), no redirect followed,
    /// each aborted after `timeout_ms`: a promise of an array of their outcomes in order (numbers):
    /// an HTTP status, `-1` on timeout, `0` when no answer came.
    #[wasm_bindgen(js_name = postWebhooks)]
    pub fn post_webhooks(batch: &str, timeout_ms: f64, secret: &[u8]) -> js_sys::Promise;

    /// Sets a registry's alarm to its earliest pending webhook row (`MIN(next_at)` of the
    /// outbox), or leaves it when none is pending: a promise that rejects when either step fails.
    #[wasm_bindgen(js_name = scheduleWebhooks)]
    pub fn schedule_webhooks(state: &worker::worker_sys::DurableObjectState) -> js_sys::Promise;
}
