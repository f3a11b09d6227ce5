//! Sends a granted request to its origin: same method, path, query and body; credential and
//! client `X-Keygate-*` headers removed; signed identity headers added.

use worker::wasm_bindgen::JsCast;
use worker::web_sys;
use std::pin::pin;
use std::time::Duration;

use futures_util::future::{select, Either};
use worker::{AbortController, Delay, Fetch, Request, Response};

use crate::config::Config;
use crate::error::GatewayError;
use crate::forward::{strips_header, ForwardPlan};

use super::respond::log_event;
use super::Incoming;

pub async fn send(incoming: &Incoming, config: &Config, plan: ForwardPlan) -> Result<Response, GatewayError> {
    let unavailable = |reason: &str| {
        log_event("origin_unavailable", incoming.request_id(), &[("reason", reason)]);
        GatewayError::OriginUnavailable
    };
    let headers = web_sys::Headers::new().map_err(|_| unavailable("headers"))?;
    let original = incoming.request.inner().headers();
    for entry in js_sys::try_iter(&original).ok().flatten().into_iter().flatten() {
        let Ok(pair) = entry else { continue };
        let pair: js_sys::Array = pair.unchecked_into();
        let (Some(name), Some(value)) = (pair.get(0).as_string(), pair.get(1).as_string()) else { continue };
        // Host names the gateway, not the origin; the runtime sets the right one.
        if name == "host" || strips_header(config, &name) {
            continue;
        }
        let _ = headers.append(&name, &value);
    }
    for (name, value) in &plan.add_headers {
        headers.set(name, value).map_err(|_| unavailable("identity header"))?;
    }
    let init = web_sys::RequestInit::new();
    init.set_method(&incoming.method);
    init.set_headers(&headers);
    init.set_redirect(web_sys::RequestRedirect::Manual);
    if let Some(body) = incoming.request.inner().body() {
        init.set_body(&body);
    }
    let controller = AbortController::default();
    let signal = controller.signal();
    init.set_signal(Some(&signal));
    let outbound = web_sys::Request::new_with_str_and_init(&plan.url, &init).map_err(|_| unavailable("bad origin request"))?;
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
