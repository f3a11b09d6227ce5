//! Sends a granted request to its origin: same method, path, query and body; `host`, credential
//! and client `X-Keygate-*` headers removed; the signed identity token (`X-Keygate-Identity`)
//! added.
//!
//! The outbound request is built by one JavaScript call (`outbound` in
//! `crates/worker/js/runtime.js`): copying, filtering and adding headers from Rust would cross
//! the wasm/JS boundary several times per header, each crossing re-encoding a string. The JS
//! decides nothing. Rust passes the incoming header names to drop and the signed header to add
//! ([`keygate_core::forward::outbound_headers`], by [`keygate_core::forward::strips_header`], the
//! one statement of the rule); the JS keeps every other header in a plain object (no prototype,
//! so no header name is special), adds the signed one, and hands that object to `new Request`.
//!
//! The trade-off: which names to drop depends on names only the JS has (`x-keygate-*` is a
//! prefix). Rather than asking for them in a second crossing, `requestFacts`, the one call that
//! already reads the request for every request, also returns them. So every request, forwarded
//! or not, pays one JS iteration over its header names and a few more bytes in that string;
//! in exchange the rule lives only in Rust and a request still crosses twice (facts, outbound).
//! Measured on this workerd (`benches/outbound.mjs`), per request: a plain object 14 µs, a
//! list of `[name, value]` pairs 33 µs (each pair goes through the iterator protocol), copying
//! the `Headers` and then deleting and setting 18 µs; the pass-through's bare copy is 8.5 µs.
//! `tests/gateway.rs` and `tests/bad_input.rs` check on the wire what reaches the origin, and
//! `tests/custom_headers.rs` holds the wire to `strips_header` for custom credential header names.

use js_sys::futures::JsFuture;
use wasm_bindgen::JsCast;
use worker::{web_sys, AbortController, Response};

use keygate_core::config::Config;
use keygate_core::error::GatewayError;
use keygate_core::forward::{outbound_headers, ForwardPlan};

use crate::respond::log_event;
use crate::runtime::{fetch_within, outbound};
use crate::Incoming;

pub async fn send(incoming: &Incoming, config: &Config, plan: ForwardPlan) -> Result<Response, GatewayError> {
    let unavailable = |reason: &str| {
        log_event("origin_unavailable", incoming.request_id(), &[("reason", reason)]);
        GatewayError::OriginUnavailable
    };
    if plan.add_headers.iter().any(|(_, value)| value.contains(['\n', '\r'])) {
        return Err(unavailable("identity header"));
    }
    // A value that cannot cross (a NUL) is one `new Request` would refuse: the same outcome.
    let headers = outbound_headers(config, &plan, &incoming.header_names).map_err(|_| unavailable("bad origin request"))?;
    let controller = AbortController::default();
    let signal = controller.signal();
    let outbound = outbound(incoming.request.inner(), &plan.url, &headers.strip, &headers.add, &signal)
        .map_err(|_| unavailable("bad origin request"))?;
    // Bounds the wait for the origin's response headers; the body then streams through. The race
    // is run by JS (`fetchWithin`): worker's `Delay` and a Rust `select` cost ~2 KB of wasm.
    let answer = match fetch_within(&outbound, config.origin_timeout_ms as i32) {
        Ok(promise) => JsFuture::from(promise).await,
        Err(error) => Err(error),
    };
    match answer {
        Ok(timeout) if timeout.is_null() => {
            controller.abort();
            log_event("origin_timeout", incoming.request_id(), &[("timeout_ms", &config.origin_timeout_ms.to_string())]);
            Err(GatewayError::OriginTimeout)
        }
        Ok(response) => response.dyn_into::<web_sys::Response>().map(Response::from).map_err(|_| unavailable("fetch failed")),
        Err(_) => Err(unavailable("fetch failed")),
    }
}
