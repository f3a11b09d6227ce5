//! Workers glue (wasm32 only): the fetch entry point and the adapters it needs.
//!
//! This is the only place that reads the clock, the environment, KV and the network. Each phase
//! calls into the pure core and does what the returned decision says.

// The Workers runtime exists only on wasm32: on a native build this crate is empty, so
// `cargo build --workspace` and `cargo test --workspace` work on the host.
#![cfg(target_arch = "wasm32")]

mod admin;
mod admin_auth;
mod config;
mod counters;
mod durable;
mod forward;
mod limiter;
mod limits;
mod registry;
mod respond;
mod runtime;
mod seen;
mod store;

use worker::{event, Context, Env, Request, Response, Result};

use keygate_core::boundary::ReceivedRequest;
use keygate_core::credential::{self, Credential};
use keygate_core::error::GatewayError;
use keygate_core::policy::{self, RequestFacts};
use keygate_core::routes::{check_body, check_canonical};
use limits::Refusal;

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

/// extract → route → parse → lookup → check → limit → forward. Each `?` is a refusal.
async fn gate(
    incoming: &Incoming,
    env: &Env,
    ctx: &Context,
    config: &keygate_core::config::Config,
) -> std::result::Result<(Response, Vec<(&'static str, String)>), Refusal> {
    // extract (a key in the URL is refused whatever the headers say: it has leaked)
    credential::refuse_key_in_query(incoming.query(), &config.key_format)?;
    let Credential(presented) = credential::extract(incoming.authorization.as_deref(), incoming.api_key.as_deref())?;

    // route
    check_canonical(incoming.path()).map_err(|reason| GatewayError::BadRequest { reason: reason.into() })?;
    check_body(&incoming.method, incoming.has_body).map_err(|reason| GatewayError::BadRequest { reason: reason.into() })?;
    let route = config.routes.find(&incoming.method, incoming.path());
    if route.is_none() && !config.unmatched.answers_with_auth(incoming.path()) {
        return Err(GatewayError::RouteNotFound.into());
    }

    // parse (no I/O)
    let parsed = config.key_format.parse(presented).map_err(|e| GatewayError::InvalidKey { reason: Some(e.reason()) })?;
    let hash = parsed.key.hash();

    // lookup
    let mut record = store::lookup(env, ctx, config, &hash, incoming).await?.ok_or(GatewayError::InvalidKey { reason: None })?;

    // UNMATCHED=auth: the key decides between 401 (not valid) and 403 (valid); never forwarded,
    // never counted against a limit.
    let Some(route) = route else {
        policy::check_standing(&record, parsed.env, incoming.now_ms)?;
        return Err(GatewayError::RouteNotAllowed.into());
    };

    // check, then limit (only after every other check: quota is never spent on a refusal). The
    // limiter may know a newer record than KV and the cache (the admin API tells it first):
    // then check again with that one.
    let facts = RequestFacts { key_env: parsed.env, route: &route, origin: incoming.origin.as_deref() };
    let mut attempts = 0;
    let (plan, verdict) = loop {
        let grant = match policy::authorize(&record, &facts, &config.roles, config.empty_grant(), incoming.now_ms) {
            Ok(grant) => grant,
            // A refusal may rest on a stale record (re-enabled, re-dated, new role or origins):
            // an exact-mode key asks its limiter once (`GatewayError::newer_record_may_lift`).
            Err(error) if attempts < 2 && error.newer_record_may_lift() => match limits::fresher(env, config, &record).await {
                Some(newer) => {
                    attempts += 1;
                    record = store::refresh(config, hash, newer, incoming.now_ms);
                    continue;
                }
                None => return Err(error.into()),
            },
            Err(error) => return Err(error.into()),
        };
        let plan =
            keygate_core::forward::plan(config, &grant, &incoming.method, &incoming.path_and_query, (incoming.now_ms / 1000) as u64)?;
        match limits::enforce(env, ctx, config, &record, incoming).await? {
            limits::Enforced::Proceed(verdict) => break (plan, verdict),
            limits::Enforced::Stale(newer) if attempts < 2 => {
                attempts += 1;
                record = store::refresh(config, hash, newer, incoming.now_ms);
            }
            limits::Enforced::Stale(_) => return Err(GatewayError::StoreUnavailable.into()),
        }
    };

    // forward (the key counts as used once it is admitted; its registry hears of it in a batch)
    seen::admitted(env, ctx, config, &record.project, &record.id, incoming.now_ms);
    match forward::send(incoming, config, plan).await {
        Ok(response) => Ok((response, verdict.headers)),
        Err(error) => Err(Refusal { error, headers: verdict.headers }),
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
