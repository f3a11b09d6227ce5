//! Admin API glue: authenticate (with failure limits, [`crate::admin_auth`]), read the request,
//! generate key material, and call the registry Durable Objects. What is decided is pure:
//! routing and admin paths ([`keygate_core::admin::router`]), body rules
//! ([`keygate_core::admin::body`]), validation ([`keygate_core::admin::request`], done here,
//! once: the registry receives the typed, validated change) and the records and audit entries
//! of a change ([`keygate_core::admin::lifecycle`]). Contract: `docs/admin-api.md`.

use serde::Serialize;
use worker::Env;

use keygate_core::admin::body::{self, BodyRequirement};
use keygate_core::admin::catalogue::catalogue;
use keygate_core::admin::facade::{self, FacadeRoute};
use keygate_core::admin::protocol::{Failure, Op, Reply};
use keygate_core::admin::request::{parse_create, parse_credits, parse_list, parse_roll, parse_update, Rules};
use keygate_core::admin::router::{native_path, route, AdminRoute, GITHUB_LEAK_REPORT_PATH};
use keygate_core::admin::{lifecycle, listing};
use keygate_core::config::Config;
use keygate_core::error::GatewayError;
use keygate_core::json::{object, value_of};
use keygate_core::key;
use keygate_core::limit::protocol::{self, LimiterOp, LimiterReply};
use keygate_core::record::{KeyRecord, Status};

use crate::key_registry::{DIRECTORY, REGISTRY_BINDING};
use crate::respond::log_event;
use crate::Incoming;

type AdminResult = Result<(u16, String), GatewayError>;

pub use keygate_core::admin::router::is_admin_path;

/// Handles one admin request (the native API, or the configured facade); the answer is
/// (status, JSON body).
pub async fn handle(incoming: &mut Incoming, env: &Env, config: &Config) -> AdminResult {
    let relative = native_path(&config.admin_prefix, incoming.path());
    // The one admin route GitHub's signature authenticates instead of the admin token (then
    // `route` below is `GithubLeakReport`, nothing else).
    let leak_report = config.leaks.enabled && incoming.method == "POST" && relative == Some(GITHUB_LEAK_REPORT_PATH);
    if !leak_report {
        crate::admin_auth::authenticate(incoming, env, config).await?;
    }
    let Some(relative) = relative else {
        return handle_facade(incoming, env, config).await.map_err(facade::error);
    };
    let operation = route(&incoming.method, relative).ok_or(GatewayError::NotFound)?;
    let rules = Rules::of(config, incoming.now_ms);
    // The four operations on one key end in one registry call: one await of it in this state
    // machine, not four copies.
    let (id, op) = match operation {
        AdminRoute::OpenApi => {
            return crate::runtime::openapi_document().map(|document| (200, document)).ok_or_else(|| GatewayError::ConfigInvalid {
                reason: "the OpenAPI document is bundled by the worker entry (build/index.js)".into(),
            })
        }
        AdminRoute::Catalogue => return Ok((200, catalogue(config))),
        AdminRoute::CreateKey => {
            let body = read_body(incoming, config, BodyRequirement::Required).await?;
            let (plaintext, record) = create_key(env, config, &body, &rules).await?;
            return Ok((201, object([("key", plaintext.expose().into()), ("record", value_of(&record))]).to_string()));
        }
        AdminRoute::ListKeys => return list_keys(incoming, env).await,
        AdminRoute::GetKey(id) => (id.clone(), Op::Get(id)),
        AdminRoute::UpdateKey(id) => {
            let body = read_body(incoming, config, BodyRequirement::Required).await?;
            (id.clone(), update_op(id, &body, &rules)?)
        }
        AdminRoute::RevokeKey(id) => (id.clone(), Op::Revoke(id)),
        AdminRoute::RollKey(id) => {
            let body = read_body(incoming, config, BodyRequirement::Optional).await?;
            return roll_key(env, config, id, &body).await;
        }
        AdminRoute::KeyUsage(id) => return key_usage(incoming, env, id).await,
        AdminRoute::KeyCredits(id) => {
            let change = parse_credits(&read_body(incoming, config, BodyRequirement::Required).await?)?;
            return match call_for_key(env, &id, keygate_core::admin::protocol::credits(&id, change.set, change.amount)).await? {
                Reply::Credits(remaining) => ok_json(200, &object([("key_id", id.into()), ("remaining", remaining.into())])),
                _ => Err(unexpected()),
            };
        }
        AdminRoute::KeyWebhooks(id) => {
            return match call_for_key(env, &id, Op::Webhooks(id.clone())).await? {
                Reply::Json(body) => Ok((200, body)),
                _ => Err(unexpected()),
            };
        }
        AdminRoute::GithubLeakReport if leak_report => return crate::leak::handle(incoming, env, config).await,
        AdminRoute::GithubLeakReport => return Err(GatewayError::NotFound),
        AdminRoute::KeyAudit(id) => (id.clone(), Op::Audit(id)),
    };
    let audit = matches!(op, Op::Audit(_));
    match (call_for_key(env, &id, op).await?, audit) {
        (Reply::Json(body), true) => Ok((200, body)),
        (reply, false) => record_reply(200, reply),
        (_, true) => Err(unexpected()),
    }
}

/// One page of a project's keys, each with its last reported use ([`listing::page`]).
async fn list_keys(incoming: &Incoming, env: &Env) -> AdminResult {
    let query = parse_list(incoming.query())?;
    match call(env, &query.project, &Op::List(query.status, query.cursor, query.limit)).await? {
        Reply::Page(items, last_used, cursor) => Ok((200, listing::page(&items, &last_used, cursor.as_deref()).to_string())),
        _ => Err(unexpected()),
    }
}

/// Mints the successor of key `id` and has its registry roll to it: the new key (shown once),
/// its record and the old key's record with its new end.
async fn roll_key(env: &Env, config: &Config, id: String, body: &[u8]) -> AdminResult {
    let roll = parse_roll(body)?;
    let project = resolve(env, &id).await?;
    let current = record_of(call(env, &project, &Op::Get(id.clone())).await?)?;
    let plaintext = config.key_format.generate(current.env).map_err(mint_failure)?;
    let new_id = key::generate_id().map_err(|_| GatewayError::StoreUnavailable)?;
    call(env, DIRECTORY, &Op::Register(new_id.clone(), project.clone())).await?;
    let op = Op::Roll(
        id,
        new_id,
        plaintext.hash().to_hex(),
        plaintext.hint(),
        roll.grace_seconds,
        roll.after_new_used_seconds,
        roll.old_unused_seconds,
    );
    match call(env, &project, &op).await? {
        Reply::Rolled(record, previous, _) => {
            ok_json(201, &object([("key", plaintext.expose().into()), ("record", value_of(&record)), ("previous", value_of(&previous))]))
        }
        _ => Err(unexpected()),
    }
}

/// Key `id`'s usage per day and last use, from its family's limiter; for a key with credits,
/// also its balance and refill (`credits`).
async fn key_usage(incoming: &Incoming, env: &Env, id: String) -> AdminResult {
    let record = record_of(call_for_key(env, &id, Op::Get(id.clone())).await?)?;
    let family = record.family_id();
    let (status, mut body) = match ask_limiter(incoming, env, family, &LimiterOp::Usage(id)).await? {
        LimiterReply::Usage(text) => (200, text),
        _ => return Err(unexpected()),
    };
    if let Some(credits) = &record.credits {
        let balance = match ask_limiter(incoming, env, family, &protocol::credits(&credits.spec(), false, 0)).await? {
            LimiterReply::Decided(decision) => decision.credits().map_or(0, |c| c.remaining),
            _ => return Err(unexpected()),
        };
        // Spliced into the usage object's text: no second encoder of it in the wasm.
        body.pop();
        body.push_str(&keygate_core::limit::credits::usage_json(credits, balance, incoming.now_ms));
        body.push('}');
    }
    Ok((status, body))
}

/// Sends `op` to the limiter of `family`; a failure is logged and answered `STORE_UNAVAILABLE`.
async fn ask_limiter(incoming: &Incoming, env: &Env, family: &str, op: &LimiterOp) -> Result<LimiterReply, GatewayError> {
    crate::key_limiter::call(env, family, op).await.map_err(|reason| {
        log_event("limiter_unavailable", incoming.request_id(), &[("reason", &reason)]);
        GatewayError::StoreUnavailable
    })
}

/// Validates a native create body, mints the key and stores it: the plaintext (for the one
/// answer that shows it) and the stored record.
async fn create_key(env: &Env, config: &Config, body: &[u8], rules: &Rules<'_>) -> Result<(key::PlaintextKey, KeyRecord), GatewayError> {
    let create = parse_create(body, rules)?;
    let plaintext = config.key_format.generate(create.env).map_err(mint_failure)?;
    let id = key::generate_id().map_err(|_| GatewayError::StoreUnavailable)?;
    let (record, audit) = lifecycle::create(&create, id.clone(), plaintext.hint(), rules.now_ms);
    // The initial balance first: the key works only once it is stored, and then has it.
    if let Some((credits, remaining)) = &create.credits {
        let op = protocol::credits(&credits.spec(), true, *remaining as i64);
        crate::key_limiter::call(env, &id, &op).await.map_err(|_| GatewayError::StoreUnavailable)?;
    }
    let hash = plaintext.hash();
    call(env, DIRECTORY, &Op::Register(id.clone(), create.project.clone())).await?;
    let record = record_of(call(env, &create.project, &Op::Create(record, hash.to_hex(), audit)).await?)?;
    Ok((plaintext, record))
}

/// The AtlasCMS contract ([`facade`]), translated to the same registry calls as the native API.
async fn handle_facade(incoming: &mut Incoming, env: &Env, config: &Config) -> AdminResult {
    let operation = facade::route(&incoming.method, incoming.path()).ok_or(GatewayError::NotFound)?;
    let rules = Rules::of(config, incoming.now_ms);
    // The path's project is the registry instance asked, so a key of another project is simply
    // not there (404) and no id directory lookup is needed; a revoked key is deleted to Atlas.
    let live = |record: KeyRecord| if record.status == Status::Revoked { Err(GatewayError::NotFound) } else { Ok(record) };
    let (get, replace) = (matches!(operation, FacadeRoute::Get { .. }), matches!(operation, FacadeRoute::Replace { .. }));
    match operation {
        FacadeRoute::List { project } => {
            let mut items = Vec::new();
            let mut cursor = None;
            // Atlas lists every key at once: page through the registry, bounded.
            for _ in 0..FACADE_MAX_PAGES {
                let op = Op::List(None, cursor.take(), 100);
                let Reply::Page(page, _, next) = call(env, &project, &op).await? else { return Err(unexpected()) };
                items.extend(page.iter().filter(|r| r.status != Status::Revoked).map(facade::view));
                match next {
                    Some(next) => cursor = Some(next),
                    None => break,
                }
            }
            ok_json(200, &items)
        }
        FacadeRoute::Create { project } => {
            let body = read_body(incoming, config, BodyRequirement::Required).await?;
            let (plaintext, _) = create_key(env, config, &facade::create_body(&project, &body)?, &rules).await?;
            ok_json(200, &object([("result", plaintext.expose().into())]))
        }
        // One key: read it (a revoked key is not there to Atlas), then answer with it or change
        // it. One registry read and one change for the three routes, as one await point each.
        FacadeRoute::Get { project, id } | FacadeRoute::Replace { project, id } | FacadeRoute::Delete { project, id } => {
            let body =
                if replace { Some(facade::replace_body(&read_body(incoming, config, BodyRequirement::Required).await?)?) } else { None };
            let record = live(record_of(call(env, &project, &Op::Get(id.clone())).await?)?)?;
            let op = match body {
                _ if get => return ok_json(200, &facade::view(&record)),
                Some(body) => update_op(id, &body, &rules)?,
                None => Op::Revoke(id),
            };
            let record = record_of(call(env, &project, &op).await?)?;
            ok_json(200, &facade::view(&record))
        }
    }
}

/// A PATCH of key `id`, validated ([`parse_update`]): the registry reads the body again
/// ([`keygate_core::admin::request::validated_update`]).
fn update_op(id: String, body: &[u8], rules: &Rules<'_>) -> Result<Op, GatewayError> {
    let change = parse_update(body, rules)?;
    // JSON that parsed is UTF-8 (outside its strings only ASCII is valid): nothing is replaced.
    Ok(Op::Update(id, change.may_have_no_permissions, String::from_utf8_lossy(body).into_owned()))
}

/// The facade's list reads at most this many registry pages of 100 keys.
const FACADE_MAX_PAGES: usize = 100;

/// A key that cannot be minted: a test key rolled after its segment left `KEY_ENV_SEGMENTS` is a
/// conflict (the record's env never changes); a CSPRNG failure is a 503.
fn mint_failure(error: key::MintError) -> GatewayError {
    match error {
        key::MintError::EnvironmentNotInFormat(env) => GatewayError::Conflict {
            reason: format!("this gateway's key format (KEY_ENV_SEGMENTS) has no segment for {env} keys, so this {env} key cannot be rolled; create a live key instead"),
        },
        key::MintError::Random(_) => GatewayError::StoreUnavailable,
    }
}

fn unexpected() -> GatewayError {
    GatewayError::StoreUnavailable
}

fn ok_json(status: u16, value: &impl Serialize) -> AdminResult {
    serde_json::to_string(value).map(|body| (status, body)).map_err(|_| unexpected())
}

/// A record reply. No cache is touched here: the registry told the key family's limiter first,
/// and the limiter hands the newer record to whichever isolate serves the key next.
fn record_reply(status: u16, reply: Reply) -> AdminResult {
    ok_json(status, &record_of(reply)?)
}

/// The record of a registry answer that must be one.
fn record_of(reply: Reply) -> Result<KeyRecord, GatewayError> {
    match reply {
        Reply::Record(record, _) => Ok(record),
        _ => Err(unexpected()),
    }
}

/// Reads the body under [`body`]'s rules (`ADMIN_MAX_BODY_BYTES`, JSON content type).
async fn read_body(incoming: &mut Incoming, config: &Config, requirement: BodyRequirement) -> Result<Vec<u8>, GatewayError> {
    let limit = config.admin_max_body_bytes;
    body::check_declared(incoming.header("content-length").as_deref(), limit)?;
    let content_type = incoming.header("content-type");
    let bytes = incoming.request.bytes().await.map_err(|_| GatewayError::BadRequest { reason: "unreadable body".into() })?;
    body::check_received(&bytes, content_type.as_deref(), limit, requirement)?;
    Ok(bytes)
}

async fn resolve(env: &Env, id: &str) -> Result<String, GatewayError> {
    match call(env, DIRECTORY, &Op::Resolve(id.to_string())).await? {
        Reply::Project(project) => Ok(project),
        _ => Err(unexpected()),
    }
}

/// Sends `op` to the registry of the project that owns key `id`.
pub(crate) async fn call_for_key(env: &Env, id: &str, op: Op) -> Result<Reply, GatewayError> {
    let project = resolve(env, id).await?;
    call(env, &project, &op).await
}

/// Sends `op` to the registry instance `name` and decodes its answer.
pub(crate) async fn call(env: &Env, name: &str, op: &Op) -> Result<Reply, GatewayError> {
    let outcome: Result<Reply, Failure> = crate::durable::call(env, REGISTRY_BINDING, name, op).await.map_err(|reason| {
        log_event("registry_unavailable", "-", &[("reason", &reason)]);
        GatewayError::StoreUnavailable
    })?;
    outcome.map_err(|failure| {
        if let Failure::Store(reason) = &failure {
            log_event("registry_unavailable", "-", &[("reason", reason)]);
        }
        GatewayError::from(failure)
    })
}
