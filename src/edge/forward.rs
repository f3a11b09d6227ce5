//! Sends a granted request to its origin: same method, path, query and body; credential and
//! client `X-Keygate-*` headers removed; signed identity headers added.
//!
//! The outbound request is built by one small JavaScript function (`outbound` below): copying,
//! filtering and adding headers from Rust would cross the wasm/JS boundary several times per
//! header, each crossing re-encoding a string, and every `Headers.set` is a call into the
//! runtime. Here one pass over the incoming headers keeps what may go, the signed headers are
//! appended, and the runtime builds the outbound `Headers` from that list in one go. Rust
//! passes only what it decided: the names to strip and one string with the signed headers. The rules themselves stay in Rust ([`crate::forward::strips_header`] is the
//! reference the JS must agree with; `tests/gateway.rs` checks both on the wire).

use std::pin::pin;
use std::time::Duration;

use futures_util::future::{select, Either};
use wasm_bindgen::prelude::*;
use worker::{web_sys, AbortController, Delay, Fetch, Request, Response};

use crate::config::Config;
use crate::error::GatewayError;
use crate::forward::ForwardPlan;
use crate::signature::HEADER_PREFIX;

use super::respond::log_event;
use super::Incoming;

#[wasm_bindgen(inline_js = r#"
export function outbound(request, url, authHeader, apiKeyHeader, prefix, added, signal) {
  const list = [];
  for (const pair of request.headers) {
    const name = pair[0];
    if (name !== "host" && name !== authHeader && name !== apiKeyHeader && !name.startsWith(prefix)) list.push(pair);
  }
  const parts = added.split("\n");
  for (let i = 0; i + 1 < parts.length; i += 2) list.push([parts[i], parts[i + 1]]);
  return new Request(url, { method: request.method, headers: list, body: request.body, redirect: "manual", signal });
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

pub async fn send(
    incoming: &Incoming,
    config: &Config,
    plan: ForwardPlan,
) -> Result<Response, GatewayError> {
    let unavailable = |reason: &str| {
        log_event(
            "origin_unavailable",
            incoming.request_id(),
            &[("reason", reason)],
        );
        GatewayError::OriginUnavailable
    };
    if plan
        .add_headers
        .iter()
        .any(|(_, value)| value.contains(['\n', '\r']))
    {
        return Err(unavailable("identity header"));
    }
    let controller = AbortController::default();
    let signal = controller.signal();
    let outbound = outbound(
        incoming.request.inner(),
        &plan.url,
        &config.auth_header,
        &config.api_key_header,
        HEADER_PREFIX,
        &encode_added(&plan),
        &signal,
    )
    .map_err(|_| unavailable("bad origin request"))?;
    let fetch = Fetch::Request(Request::from(outbound));
    let sending = pin!(fetch.send());
    let timeout = pin!(Delay::from(Duration::from_millis(config.origin_timeout_ms)));
    // Bounds the wait for the origin's response headers; the body then streams through.
    match select(sending, timeout).await {
        Either::Left((result, _)) => result.map_err(|_| unavailable("fetch failed")),
        Either::Right(((), _)) => {
            controller.abort();
            log_event(
                "origin_timeout",
                incoming.request_id(),
                &[("timeout_ms", &config.origin_timeout_ms.to_string())],
            );
            Err(GatewayError::OriginTimeout)
        }
    }
}
