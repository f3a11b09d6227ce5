//! Workers glue (wasm32 only): the fetch entry point and the adapters it needs.
//!
//! This is the only place that reads the clock, the environment, KV and the network. Each phase
//! calls into the pure core and does what the returned decision says.

mod admin;
mod config;
mod counters;
mod durable;
mod forward;
mod limiter;
mod limits;
mod registry;
mod respond;
mod store;

use worker::{event, Context, Date, Env, Request, Response, Result};

use crate::credential::{self, Credential};
use crate::error::GatewayError;
use crate::key;
use crate::policy::{self, RequestFacts};
use crate::routes::check_canonical;
use limits::Refusal;

/// Everything about the incoming request that the phases share.
struct Incoming {
    request: Request,
    method: String,
    /// Path and query exactly as received (percent-encoding kept).
    path_and_query: String,
    path_len: usize,
    origin: Option<String>,
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
        self.request_id.get_or_init(|| {
            self.header("cf-ray").filter(|ray| !ray.is_empty() && ray.len() <= 64).unwrap_or_else(generate_request_id)
        })
    }

    fn header(&self, name: &str) -> Option<String> {
        self.request.headers().get(name).ok().flatten()
    }
}

#[event(fetch)]
async fn fetch(request: Request, env: Env, ctx: Context) -> Result<Response> {
    let mut incoming = receive(request);
    let config = match config::load(&env) {
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
            Err(error) => respond::error(&error, &incoming, None),
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
    config: &crate::config::Config,
) -> std::result::Result<(Response, Vec<(&'static str, String)>), Refusal> {
    // extract
    let authorization = incoming.header(&config.auth_header);
    let api_key = incoming.header(&config.api_key_header);
    let Credential(presented) = credential::extract(authorization.as_deref(), api_key.as_deref())?;

    // route
    check_canonical(incoming.path()).map_err(|reason| GatewayError::BadRequest { reason: reason.into() })?;
    let route = config.routes.find(&incoming.method, incoming.path()).ok_or(GatewayError::RouteNotFound)?;

    // parse (no I/O)
    let parsed = key::parse(presented, &config.key_prefix)
        .map_err(|e| GatewayError::InvalidKey { reason: Some(e.reason()) })?;
    let hash = parsed.key.hash();

    // lookup
    let mut record = store::lookup(env, config, &hash, incoming).await?.ok_or(GatewayError::InvalidKey { reason: None })?;

    // check, then limit (only after every other check: quota is never spent on a refusal). The
    // limiter may know a newer record than KV and the cache (the admin API tells it first):
    // then check again with that one.
    let facts = RequestFacts { key_env: parsed.env, route: &route, origin: incoming.origin.as_deref() };
    let mut attempts = 0;
    let (plan, verdict) = loop {
        let grant = match policy::authorize(&record, &facts, &config.roles, incoming.now_ms) {
            Ok(grant) => grant,
            // A refusal may rest on a stale record (re-enabled, re-dated, new role or origins):
            // an exact-mode key asks its limiter once. Revoked is final; env never changes.
            Err(error) if attempts < 2 && !matches!(error, GatewayError::KeyRevoked | GatewayError::InvalidKey { .. }) => {
                match limits::fresher(env, config, &record).await {
                    Some(newer) => {
                        attempts += 1;
                        record = store::refresh(config, hash, newer, incoming.now_ms);
                        continue;
                    }
                    None => return Err(error.into()),
                }
            }
            Err(error) => return Err(error.into()),
        };
        let plan = crate::forward::plan(config, &grant, &incoming.method, &incoming.path_and_query, (incoming.now_ms / 1000) as u64)?;
        match limits::enforce(env, ctx, config, &record, incoming).await? {
            limits::Enforced::Proceed(verdict) => break (plan, verdict),
            limits::Enforced::Stale(newer) if attempts < 2 => {
                attempts += 1;
                record = store::refresh(config, hash, newer, incoming.now_ms);
            }
            limits::Enforced::Stale(_) => return Err(GatewayError::StoreUnavailable.into()),
        }
    };

    // forward
    let response = forward::send(incoming, config, plan).await.map_err(|error| Refusal { error, headers: verdict.headers.clone() })?;
    Ok((response, verdict.headers))
}

fn receive(request: Request) -> Incoming {
    let url = request.inner().url();
    let path_and_query = path_and_query_of(&url).to_string();
    let path_len = path_and_query.find('?').unwrap_or(path_and_query.len());
    let method = request.inner().method();
    let origin = request.headers().get("origin").ok().flatten();
    let request_id = std::cell::OnceCell::new();
    let now_ms = Date::now().as_millis() as i64;
    Incoming { request, method, path_and_query, path_len, origin, request_id, now_ms }
}

/// `https://host:port/p?q` → `/p?q` (fragments never reach a server).
fn path_and_query_of(url: &str) -> &str {
    let after_scheme = url.find("://").map(|i| i + 3).unwrap_or(0);
    match url[after_scheme..].find('/') {
        Some(i) => &url[after_scheme + i..],
        None => "/",
    }
}

fn generate_request_id() -> String {
    let mut bytes = [0u8; 8];
    match getrandom::getrandom(&mut bytes) {
        Ok(()) => format!("req_{}", hex::encode(bytes)),
        Err(_) => format!("req_{:x}", Date::now().as_millis()),
    }
}

fn is_preflight(incoming: &Incoming) -> bool {
    incoming.method == "OPTIONS" && incoming.header("access-control-request-method").is_some()
}
