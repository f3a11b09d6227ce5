//! Workers glue (wasm32 only): the fetch entry point and the adapters it needs.
//!
//! This is the only place that reads the clock, the environment, KV and the network. Each phase
//! calls into the pure core and does what the returned decision says.

mod admin;
mod config;
mod forward;
mod registry;
mod respond;
mod store;

use worker::{event, Context, Date, Env, Request, Response, Result};

use crate::credential::{self, Credential};
use crate::error::GatewayError;
use crate::key;
use crate::policy::{self, RequestFacts};
use crate::routes::check_canonical;

/// Everything about the incoming request that the phases share.
struct Incoming {
    request: Request,
    method: String,
    /// Path and query exactly as received (percent-encoding kept).
    path_and_query: String,
    path_len: usize,
    origin: Option<String>,
    request_id: String,
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

    fn header(&self, name: &str) -> Option<String> {
        self.request.headers().get(name).ok().flatten()
    }
}

#[event(fetch)]
async fn fetch(request: Request, env: Env, _ctx: Context) -> Result<Response> {
    let mut incoming = receive(request);
    let config = match config::load(&env) {
        Ok(config) => config,
        Err(problem) => {
            respond::log_event("config_invalid", &incoming.request_id, &[("setting", problem.setting)]);
            let error = GatewayError::ConfigInvalid { reason: problem.to_string() };
            return respond::error(&error, &incoming, None);
        }
    };
    if admin::is_admin_path(&config, incoming.path()) {
        return match admin::handle(&mut incoming, &env, &config).await {
            Ok((status, body)) => respond::json(status, body, &incoming),
            Err(error) => respond::error(&error, &incoming, None),
        };
    }
    if is_preflight(&incoming) {
        return respond::preflight(&config, &incoming);
    }
    match gate(&incoming, &env, &config).await {
        Ok(response) => respond::proxied(response, &config, &incoming),
        Err(error) => respond::error(&error, &incoming, Some(&config)),
    }
}

/// extract → route → parse → lookup → check → forward. Each `?` is a refusal.
async fn gate(incoming: &Incoming, env: &Env, config: &crate::config::Config) -> std::result::Result<Response, GatewayError> {
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
    let record = store::lookup(env, config, &hash, incoming).await?.ok_or(GatewayError::InvalidKey { reason: None })?;

    // check
    let facts = RequestFacts { key_env: parsed.env, route: &route, origin: incoming.origin.as_deref() };
    let grant = policy::authorize(&record, &facts, &config.roles, incoming.now_ms)?;

    // forward
    let plan = crate::forward::plan(config, &grant, &incoming.method, &incoming.path_and_query, (incoming.now_ms / 1000) as u64)?;
    forward::send(incoming, config, plan).await
}

fn receive(request: Request) -> Incoming {
    let url = request.inner().url();
    let path_and_query = path_and_query_of(&url).to_string();
    let path_len = path_and_query.find('?').unwrap_or(path_and_query.len());
    let method = request.inner().method();
    let origin = request.headers().get("origin").ok().flatten();
    let request_id = request
        .headers()
        .get("cf-ray")
        .ok()
        .flatten()
        .filter(|ray| !ray.is_empty() && ray.len() <= 64)
        .unwrap_or_else(generate_request_id);
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
