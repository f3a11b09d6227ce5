//! Baseline for `make bench`: forwards every request to `ORIGIN_URL` unchanged, along the same
//! code path shape as keygate's `src/edge/forward.rs` (copy the incoming headers into a new
//! `Headers` minus `host`, a new request with method / headers / body / manual redirects / an
//! abort signal, `fetch` raced against the origin timeout, the response returned as is). It does
//! no key handling, no KV, no Durable Objects: whatever keygate adds on top is the gateway's cost.
//! `GET /__bench/floor` answers a fixed body without any subrequest: the cost of invoking a Rust
//! wasm worker at all on this runtime.
#![cfg(target_arch = "wasm32")]

use std::pin::pin;
use std::time::Duration;

use futures_util::future::{select, Either};
use worker::wasm_bindgen::JsCast;
use worker::{event, web_sys, AbortController, Context, Delay, Env, Fetch, Request, Response, Result};

/// keygate's default `ORIGIN_TIMEOUT_MS`.
const ORIGIN_TIMEOUT_MS: u64 = 15_000;
const FLOOR_PATH: &str = "/__bench/floor";
const FLOOR_BODY: &[u8] = b"{\"ok\":true,\"origin\":\"none\"}\n";

#[event(fetch)]
async fn fetch(request: Request, env: Env, _ctx: Context) -> Result<Response> {
    let origin = env.var("ORIGIN_URL")?.to_string();
    let url = request.inner().url();
    let after_scheme = url.find("://").map(|i| i + 3).unwrap_or(0);
    let path_and_query = match url[after_scheme..].find('/') {
        Some(i) => &url[after_scheme + i..],
        None => "/",
    };
    // The runtime's floor (scenario a0 of `make bench`): the same worker invocation, no subrequest.
    if path_and_query == FLOOR_PATH {
        return Response::from_bytes(FLOOR_BODY.to_vec()).map(|r| r.with_status(200));
    }
    let target = format!("{}{}", origin.trim_end_matches('/'), path_and_query);

    let headers = web_sys::Headers::new()?;
    let original = request.inner().headers();
    for entry in js_sys::try_iter(&original).ok().flatten().into_iter().flatten() {
        let Ok(pair) = entry else { continue };
        let pair: js_sys::Array = pair.unchecked_into();
        let (Some(name), Some(value)) = (pair.get(0).as_string(), pair.get(1).as_string()) else { continue };
        if name == "host" {
            continue;
        }
        let _ = headers.append(&name, &value);
    }
    let init = web_sys::RequestInit::new();
    init.set_method(&request.inner().method());
    init.set_headers(&headers);
    init.set_redirect(web_sys::RequestRedirect::Manual);
    if let Some(body) = request.inner().body() {
        init.set_body(&body);
    }
    let controller = AbortController::default();
    let signal = controller.signal();
    init.set_signal(Some(&signal));
    let outbound = web_sys::Request::new_with_str_and_init(&target, &init)?;
    let fetch = Fetch::Request(Request::from(outbound));
    let sending = pin!(fetch.send());
    let timeout = pin!(Delay::from(Duration::from_millis(ORIGIN_TIMEOUT_MS)));
    match select(sending, timeout).await {
        Either::Left((result, _)) => result,
        Either::Right(((), _)) => {
            controller.abort();
            Response::error("origin timeout", 504)
        }
    }
}
