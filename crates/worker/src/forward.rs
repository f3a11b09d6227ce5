//! Sends a granted request to its origin: same method, path, query and body; credential and
//! client `X-Keygate-*` headers removed; signed identity headers added.
//!
//! The outbound request is built by one small JavaScript function (`outbound` below): copying,
//! filtering and adding headers from Rust would cross the wasm/JS boundary several times per
//! header, each crossing re-encoding a string. Rust passes only what it decided: the names to
//! strip and one string with the signed headers. The JS keeps the headers that may go in a
//! plain object (no prototype, so no header name is special), adds the signed ones, and hands
//! that object to `new Request`. Measured on this workerd (`benches/outbound.mjs`), per request: a plain object 14 µs, a list of `[name, value]`
//! pairs 33 µs (each pair goes through the iterator protocol), copying the `Headers` and then
//! deleting and setting 18 µs; the pass-through's bare copy is 8.5 µs. The rules stay in Rust
//! ([`keygate_core::forward::strips_header`] states the stripping rule natively; the JS applies the same
//! rule; `tests/gateway.rs` and `tests/bad_input.rs` check on the wire what reaches the origin, and
//! `tests/custom_headers.rs` holds the JS to `strips_header` for custom credential header names).

use std::pin::pin;
use std::time::Duration;

use futures_util::future::{select, Either};
use wasm_bindgen::prelude::*;
use worker::{web_sys, AbortController, Delay, Fetch, Request, Response};

use keygate_core::config::Config;
use keygate_core::error::GatewayError;
use keygate_core::forward::ForwardPlan;
use keygate_core::signature::HEADER_PREFIX;

use crate::respond::log_event;
use crate::Incoming;

#[wasm_bindgen(inline_js = r#"
export function outbound(request, url, authHeader, apiKeyHeader, prefix, added, signal) {
  const headers = Object.create(null);
  for (const pair of request.headers) {
    const name = pair[0];
    if (name !== "host" && name !== authHeader && name !== apiKeyHeader && !name.startsWith(prefix)) headers[name] = pair[1];
  }
  const parts = added.split("\n");
  for (let i = 0; i + 1 < parts.length; i += 2) headers[parts[i]] = parts[i + 1];
  return new Request(url, { method: request.method, headers, body: request.body, redirect: "manual", signal });
}
"#)]
extern "C" {
    /// `new Request(url, …)` with the incoming method, body and headers minus `host`, the two
    /// credential headers and every `prefix…` header, plus `added` (`name\nvalue\n…`).
    #[wasm_bindgen(catch)]
    fn outbound(
        request: &web_sys::Request,
        url: &str,
        auth_header: &str,
        api_key_header: &str,
        prefix: &str,
        added: &str,
        signal: &web_sys::AbortSignal,
    ) -> Result<web_sys::Request, JsValue>;
}

/// The signed headers as `name\nvalue\n…` for [`outbound`]. Header values never contain a
/// newline (the runtime refuses them), so the encoding is unambiguous.
fn encode_added(plan: &ForwardPlan) -> String {
    let mut added = String::with_capacity(256);
    for (name, value) in &plan.add_headers {
        added.push_str(name);
        added.push('\n');
        added.push_str(value);
        added.push('\n');
    }
    added
}

pub async fn send(incoming: &Incoming, config: &Config, plan: ForwardPlan) -> Result<Response, GatewayError> {
    let unavailable = |reason: &str| {
        log_event("origin_unavailable", incoming.request_id(), &[("reason", reason)]);
        GatewayError::OriginUnavailable
    };
    if plan.add_headers.iter().any(|(_, value)| value.contains(['\n', '\r'])) {
        return Err(unavailable("identity header"));
    }
    let controller = AbortController::default();
    let signal = controller.signal();
    let added = encode_added(&plan);
    let outbound =
        outbound(incoming.request.inner(), &plan.url, &config.auth_header, &config.api_key_header, HEADER_PREFIX, &added, &signal)
            .map_err(|_| unavailable("bad origin request"))?;
    let fetch = Fetch::Request(Request::from(outbound));
    let sending = pin!(fetch.send());
    let timeout = pin!(Delay::from(Duration::from_millis(config.origin_timeout_ms)));
    // Bounds the wait for the origin's response headers; the body then streams through.
    match select(sending, timeout).await {
        Either::Left((result, _)) => result.map_err(|_| unavailable("fetch failed")),
        Either::Right(((), _)) => {
            controller.abort();
            log_event("origin_timeout", incoming.request_id(), &[("timeout_ms", &config.origin_timeout_ms.to_string())]);
            Err(GatewayError::OriginTimeout)
        }
    }
}
