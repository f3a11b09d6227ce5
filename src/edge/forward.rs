//! Sends a granted request to its origin: same method, path, query and body; credential and
//! client `X-Keygate-*` headers removed; signed identity headers added.

use worker::wasm_bindgen::JsCast;
use worker::web_sys;
use worker::{Fetch, Request, Response};

use crate::config::Config;
use crate::error::GatewayError;
use crate::forward::{strips_header, ForwardPlan};

use super::respond::log_event;
use super::Incoming;

pub async fn send(incoming: &Incoming, config: &Config, plan: ForwardPlan) -> Result<Response, GatewayError> {
    let unavailable = |reason: &str| {
        log_event("origin_unavailable", &incoming.request_id, &[("reason", reason)]);
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
    let outbound = web_sys::Request::new_with_str_and_init(&plan.url, &init).map_err(|_| unavailable("bad origin request"))?;
    Fetch::Request(Request::from(outbound)).send().await.map_err(|_| unavailable("fetch failed"))
}
