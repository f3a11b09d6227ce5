//! keygate as a Cloudflare Worker (wasm32 only): the fetch entry point, the Durable Objects and
//! the bindings.
//!
//! This is the only place that reads the clock, the environment, KV and the network. The request
//! path is `keygate_core::gate::Gate`, a state machine that decides; `gate` here is the loop
//! that performs the I/O it asks for and feeds the answers back.

// The Workers runtime exists only on wasm32: on a native build this crate is empty, so
// `cargo build --workspace` and `cargo test --workspace` work on the host.
#![cfg(target_arch = "wasm32")]

mod admin;
mod admin_auth;
mod config;
mod counters;
mod durable;
mod forward;
mod key_limiter;
mod key_registry;
mod leak;
mod limit_io;
mod respond;
mod roll_grace;
mod runtime;
mod seen;
mod store;
mod webhooks;

use worker::{event, Context, Env, Request, Response, Result};

use keygate_core::boundary::{decode_client, ReceivedRequest};
use keygate_core::config::Config;
use keygate_core::error::GatewayError;
use keygate_core::gate::{Admitted, Facts, Gate, Headers, Next, Refusal};

/// Everything about the incoming request that the phases share.
struct Incoming {
    request: Request,
    method: String,
    /// Path and query exactly as received (percent-encoding kept).
    path_and_query: String,
    path_len: usize,
    origin: Option<String>,
    /// The `AUTH_HEADER` and `API_KEY_HEADER` values, read with the rest in [`receive`].
    authorization: Option<String>,
    api_key: Option<String>,
    /// Whether the request has a body stream (`request.body !== null`).
    has_body: bool,
    /// The incoming header names as they crossed the boundary (`name\n…`), for
    /// [`forward::send`] to choose which ones the origin must not see.
    header_names: String,
    /// Made on first use: most requests succeed and never need one.
    request_id: std::cell::OnceCell<String>,
    now_ms: i64,
}

impl Incoming {
    fn path(&self) -> &str {
        &self.path_and_query[..self.path_len]
    }

    /// The query string without `?` (empty when none).
    fn query(&self) -> &str {
        self.path_and_query.get(self.path_len + 1..).unwrap_or("")
    }

    /// The request id: the `cf-ray` header when present, else a random `req_…`.
    fn request_id(&self) -> &str {
        self.request_id
            .get_or_init(|| self.header("cf-ray").filter(|ray| !ray.is_empty() && ray.len() <= 64).unwrap_or_else(generate_request_id))
    }

    fn header(&self, name: &str) -> Option<String> {
        self.request.headers().get(name).ok().flatten()
    }
}

#[event(fetch)]
async fn fetch(request: Request, env: Env, ctx: Context) -> Result<Response> {
    let loaded = config::load(&env);
    let (auth_header, api_key_header) = match &loaded {
        Ok(config) => (config.auth_header.as_str(), config.api_key_header.as_str()),
        Err(_) => ("authorization", "x-api-key"),
    };
    let mut incoming = receive(request, auth_header, api_key_header);
    let config = match loaded {
        Ok(config) => config,
        Err(problem) => {
            respond::log_event("config_invalid", incoming.request_id(), &[("setting", problem.setting)]);
            let error = GatewayError::ConfigInvalid { reason: problem.to_string() };
            return respond::error(&error, &incoming, None);
        }
    };
    if config.test_mode && incoming.path() == counters::PATH {
        return respond::json(200, counters::snapshot(), &incoming);
    }
    counters::request();
    if admin::is_admin_path(&config, incoming.path()) {
        return match admin::handle(&mut incoming, &env, &config).await {
            Ok((status, body)) => respond::json(status, body, &incoming),
            Err(error) => {
                let retry_after: Vec<(&'static str, String)> =
                    error.retry_after().map(|s| ("retry-after", s.to_string())).into_iter().collect();
                respond::error_with(&error, &incoming, None, &retry_after)
            }
        };
    }
    if is_preflight(&incoming) {
        return respond::preflight(&config, &incoming);
    }
    match gate(&incoming, &env, &ctx, &config).await {
        Ok((response, limit_headers)) => respond::proxied(response, &config, &incoming, &limit_headers),
        Err(Refusal { error, headers }) => respond::error_with(&error, &incoming, Some(&config), &headers),
    }
}

/// Drives the pure pipeline ([`keygate_core::gate`]: extract → route → parse → lookup → check →
/// limit → forward): performs each I/O step the gate asks for and feeds the answer back, until it
/// admits the request (sent to the origin here) or refuses it.
async fn gate(incoming: &Incoming, env: &Env, ctx: &Context, config: &Config) -> std::result::Result<(Response, Headers), Refusal> {
    let facts = Facts {
        method: &incoming.method,
        path_and_query: &incoming.path_and_query,
        authorization: incoming.authorization.as_deref(),
        api_key: incoming.api_key.as_deref(),
        origin: incoming.origin.as_deref(),
        has_body: incoming.has_body,
    };
    let mut gate = Gate::new(config, facts, incoming.now_ms);
    loop {
        match limit_io::with_isolate(|isolate| gate.next(isolate)) {
            Next::ReadRecord(hash) => gate.record_read(store::lookup(env, ctx, config, &hash, incoming).await),
            // A message the runtime wrote always decodes; were one not to, the client is unknown
            // and a restricted key refused.
            Next::ReadClient => gate.client_read(decode_client(&runtime::client_facts(incoming.request.inner())).unwrap_or_default()),
            Next::AskLimiter { family, op } => gate.limiter_replied(limit_io::ask(env, config, &family, &op, incoming).await),
            Next::CheckBinding { binding, family } => {
                gate.binding_answered(limit_io::binding_allows(env, config, binding, family, incoming).await)
            }
            Next::CacheRecord { hash, record } => store::adopt(config, hash, record, incoming.now_ms),
            Next::Background { record, op } => limit_io::background(env, ctx, config, record, op),
            Next::FlushRefused => limit_io::flush_refused(env, ctx),
            Next::Refuse(refusal) => return Err(refusal),
            Next::Forward(Admitted { plan, headers, record }) => {
                // The key counts as used once it is admitted; its registry hears of it in a batch.
                seen::admitted(env, ctx, config, &record.project, &record.id, incoming.now_ms);
                return match forward::send(incoming, config, plan).await {
                    Ok(response) => Ok((response, headers)),
                    Err(error) => Err(Refusal { error, headers }),
                };
            }
        }
    }
}

/// Reads the request in one JS call ([`runtime::request_facts`], decoded by the core). The
/// runtime's own strings always decode; were one not to, the request is taken as one with an
/// empty method and path, which matches no route and carries no key.
fn receive(request: Request, auth_header: &str, api_key_header: &str) -> Incoming {
    let facts = runtime::request_facts(request.inner(), auth_header, api_key_header);
    let ReceivedRequest { method, path_and_query, path_len, authorization, api_key, origin, has_body, header_names } =
        ReceivedRequest::decode(&facts).unwrap_or_default();
    let request_id = std::cell::OnceCell::new();
    let now_ms = now_ms();
    Incoming { request, method, path_and_query, path_len, origin, authorization, api_key, has_body, header_names, request_id, now_ms }
}

/// Runs `task` inside this request's `wait_until` (after the answer). Every background task goes
/// through here as a boxed future: worker's `wait_until` is generic, and each future type would
/// compile its own copy of it and of wasm-bindgen's promise glue.
pub(crate) fn in_background(ctx: &Context, task: std::pin::Pin<Box<dyn std::future::Future<Output = ()>>>) {
    ctx.wait_until(task);
}

/// The clock, in unix milliseconds, for the worker and both Durable Objects: `Date.now()`
/// itself, because `worker::Date::now()` would allocate a JS `Date` on every call.
pub(crate) fn now_ms() -> i64 {
    js_sys::Date::now() as i64
}

fn generate_request_id() -> String {
    let mut bytes = [0u8; 8];
    match getrandom::getrandom(&mut bytes) {
        Ok(()) => format!("req_{}", hex::encode(bytes)),
        Err(_) => format!("req_{:x}", now_ms()),
    }
}

fn is_preflight(incoming: &Incoming) -> bool {
    incoming.method == "OPTIONS" && incoming.header("access-control-request-method").is_some()
}
