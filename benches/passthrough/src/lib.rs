//! Baseline for `make bench`: forwards every request to `ORIGIN_URL` unchanged, the cheapest way
//! a Rust worker can, in the same shape as keygate's `crates/worker/src/forward.rs`: one JavaScript call
//! builds the outbound request (the runtime copies the incoming `Headers` natively, minus
//! `host`: of the ways tried, the cheapest on workerd; method, body, manual redirects, an abort signal), then `fetch` raced against the
//! origin timeout, the response returned as is. It does no key handling, no KV, no Durable
//! Objects: whatever keygate adds on top (reading the credential, the checks, stripping and
//! signing headers) is the gateway's cost.
//! `GET /__bench/floor` answers a fixed body without any subrequest: the cost of invoking a Rust
//! wasm worker at all on this runtime.
#![cfg(target_arch = "wasm32")]

use std::pin::pin;
use std::time::Duration;

use futures_util::future::{select, Either};
use wasm_bindgen::prelude::*;
use worker::{event, web_sys, AbortController, Context, Delay, Env, Fetch, Request, Response, Result};

#[wasm_bindgen(inline_js = r#"
export function outbound(request, url, signal, identity) {
  const headers = new Headers(request.headers);
  headers.delete("host");
  if (identity) {
    // Scenario a6: six constant headers shaped like keygate's signed identity headers.
    headers.set("x-keygate-key-id", "key_01HZX3V9Q7ABCDEFGHJKMNPQRS");
    headers.set("x-keygate-project", "bench");
    headers.set("x-keygate-env", "live");
    headers.set("x-keygate-scopes", "content:read");
    headers.set("x-keygate-timestamp", "1800000000");
    headers.set("x-keygate-signature", "v2=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef");
  }
  return new Request(url, { method: request.method, headers, body: request.body, redirect: "manual", signal });
}
"#)]
extern "C" {
    #[wasm_bindgen(catch)]
    fn outbound(
        request: &web_sys::Request,
        url: &str,
        signal: &web_sys::AbortSignal,
        identity: bool,
    ) -> std::result::Result<web_sys::Request, JsValue>;
}

/// keygate's default `ORIGIN_TIMEOUT_MS`.
const ORIGIN_TIMEOUT_MS: u64 = 15_000;
const FLOOR_PATH: &str = "/__bench/floor";
const IDENTITY_PREFIX: &str = "/__bench/identity";
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
    // Scenario a6 of `make bench`: the same pass-through, plus six constant headers of the size
    // of keygate's signed identity headers: what sending those costs on this runtime by itself.
    let (identity, path_and_query) = match path_and_query.strip_prefix(IDENTITY_PREFIX) {
        Some(rest) => (true, rest),
        None => (false, path_and_query),
    };
    let target = format!("{}{}", origin.trim_end_matches('/'), path_and_query);

    let controller = AbortController::default();
    let signal = controller.signal();
    let outbound = outbound(request.inner(), &target, &signal, identity).map_err(worker::Error::from)?;
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
