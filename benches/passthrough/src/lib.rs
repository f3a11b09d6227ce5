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
  if (identity === 1) {
    // Scenario a1h: one constant header shaped like keygate's X-Keygate-Identity token (380 B).
    headers.set("x-keygate-identity", "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJrZXlnYXRlIiwic3ViIjoia2V5XzAxSFpYM1Y5UTdBQkNERUZHSEpLTU5QUVJTIiwiYXVkIjoiaHR0cDovLzEyNy4wLjAuMTo4Nzg4IiwiaWF0IjoxODAwMDAwMDAwLCJleHAiOjE4MDAwMDAwNjAsImh0bSI6IkdFVCIsImh0dSI6Ii92MS9wdWJsaWMvY21zL2FydGljbGVzL2l0ZW1zIiwicHJvamVjdCI6ImJlbmNoIiwiZW52IjoibGl2ZSIsInNjb3BlIjoiY29udGVudDpyZWFkIn0.BpUayX6S3HEJ7wa6t16Cg9oBQVgW0AnpFqaP96AmvyY");
  } else if (identity === 6) {
    // Scenario a6: six constant headers shaped like keygate's former signed identity headers
    // (issue #2's scheme, kept as the historical comparison).
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
        identity: u32,
    ) -> std::result::Result<web_sys::Request, JsValue>;
}

/// keygate's default `ORIGIN_TIMEOUT_MS`.
const ORIGIN_TIMEOUT_MS: u64 = 15_000;
const FLOOR_PATH: &str = "/__bench/floor";
const IDENTITY_PREFIX: &str = "/__bench/identity";
const TOKEN_PREFIX: &str = "/__bench/token";
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
    // Scenarios a6 and a1h of `make bench`: the same pass-through, plus six constant headers of
    // the size of keygate's former signed identity headers (a6), or one of the size of its
    // identity token (a1h): what sending those costs on this runtime by itself.
    let (identity, path_and_query) = if let Some(rest) = path_and_query.strip_prefix(IDENTITY_PREFIX) {
        (6, rest)
    } else if let Some(rest) = path_and_query.strip_prefix(TOKEN_PREFIX) {
        (1, rest)
    } else {
        (0, path_and_query)
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
