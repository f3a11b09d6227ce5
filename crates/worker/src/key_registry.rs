//! `KeyRegistry`: the SQLite-backed Durable Object that is the source of truth for one
//! project's keys (one instance per project, named by the project), plus the id directory
//! (the instance named [`DIRECTORY`]) that maps a key id to its project.
//!
//! Every mutation runs under `blockConcurrencyWhile`, so reads, the KV write-through and the
//! SQLite write of one change never interleave with another change: KV always ends with the
//! latest revision. A change to an existing key first tells the key family's limiter (so the
//! next request anywhere sees it; a limiter failure is logged, not fatal), then writes KV; if
//! the KV write fails nothing is recorded in SQLite and the admin gets `STORE_UNAVAILABLE` to
//! retry. Revocation writes a tombstone, never a delete.
//!
//! Changes arrive validated by the worker's admin edge (a create's record with its audit entry,
//! a PATCH as the body the edge validated, read again into an
//! [`UpdateKey`](keygate_core::admin::request::UpdateKey)): the registry
//! applies them to the stored record ([`keygate_core::admin::lifecycle`]) and stores them, and
//! reads no setting of the gateway but its webhook settings.
//!
//! Webhooks ([`crate::webhooks`]): every change's events go to the outbox in the same operation,
//! right after its audit entry; the object's alarm delivers them.

use worker::{durable_object, DurableObject, Env, Method, Request, Response, Result, SqlStorage, SqlStorageValue, State};

use keygate_core::admin::lifecycle::{self, AuditEntry};
use keygate_core::admin::protocol::{credits_of, decode_cursor, encode_cursor, Failure, Op, Reply, FIRST_PAGE_AFTER, MAX_SAFE_INTEGER};
use keygate_core::leak;
use keygate_core::limit::protocol::{LimiterOp, LimiterReply};
use keygate_core::record::{self, KeyRecord};

use crate::durable::{read_json, rows};
use crate::now_ms;
use crate::store::KEYS_BINDING;

/// Durable Object binding name.
pub const REGISTRY_BINDING: &str = "REGISTRY";
/// Name of the instance that holds the id → project directory.
pub const DIRECTORY: &str = "__directory__";

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS keys (
  id TEXT PRIMARY KEY,
  hash TEXT NOT NULL UNIQUE,
  created_at INTEGER NOT NULL,
  status TEXT NOT NULL,
  record TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS keys_by_created ON keys (created_at, id);
CREATE TABLE IF NOT EXISTS audit (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  key_id TEXT NOT NULL,
  entry TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_by_key ON audit (key_id, seq);
CREATE TABLE IF NOT EXISTS directory (
  id TEXT PRIMARY KEY,
  project TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS last_used (
  id TEXT PRIMARY KEY,
  at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS roll_grace (
  old_id TEXT PRIMARY KEY,
  new_id TEXT NOT NULL,
  after_ms INTEGER NOT NULL,
  unused_ms INTEGER,
  max_end INTEGER NOT NULL,
  end_at INTEGER NOT NULL,
  first_new INTEGER
);";

#[durable_object(fetch)]
pub struct KeyRegistry {
    state: State,
    env: Env,
}

impl DurableObject for KeyRegistry {
    fn new(state: State, env: Env) -> Self {
        Self { state, env }
    }

    async fn fetch(&self, mut request: Request) -> Result<Response> {
        // The alarm, which entry.js hands over as a PUT (every operation is a POST).
        if request.method() == Method::Put {
            crate::webhooks::deliver(&self.state, &self.env).await?;
            return Response::empty();
        }
        let outcome: std::result::Result<Reply, Failure> = match read_json::<Op>(&mut request).await {
            Err(_) => Err(Failure::Store("undecodable registry request".into())),
            Ok(op) => {
                let sql = self.state.storage().sql();
                let env = self.env.clone();
                // Serialise every operation: see the module docs.
                let outcome = match self.state.block_concurrency_while(async move { Ok(run(&sql, &env, op).await) }).await {
                    Ok(outcome) => outcome,
                    Err(e) => Err(Failure::Store(e.to_string())),
                };
                crate::webhooks::arm(&self.state).await;
                outcome
            }
        };
        Response::from_json(&outcome)
    }
}

pub(crate) fn store_failure(context: &str) -> impl Fn(worker::Error) -> Failure + '_ {
    move |e| Failure::Store(format!("{context}: {e}"))
}

/// The first column of every row, as text.
fn texts(cursor: Result<worker::SqlCursor>) -> Result<Vec<String>> {
    rows(cursor?)?.into_iter().map(|mut row| row.text(0)).collect()
}

async fn run(sql: &SqlStorage, env: &Env, op: Op) -> std::result::Result<Reply, Failure> {
    sql.exec(SCHEMA, None).map_err(store_failure("schema"))?;
    match op {
        Op::Register(id, project) => {
            sql.exec("INSERT OR REPLACE INTO directory (id, project) VALUES (?, ?)", vec![id.into(), project.into()])
                .map_err(store_failure("directory write"))?;
            Ok(Reply::Done)
        }
        Op::Resolve(id) => {
            let projects = texts(sql.exec("SELECT project AS value FROM directory WHERE id = ?", vec![id.into()]))
                .map_err(store_failure("directory read"))?;
            projects.into_iter().next().map(Reply::Project).ok_or(Failure::NotFound)
        }
        Op::Create(record, hash, audit) => {
            write_through(env, &hash, &record).await?;
            insert(sql, &hash, &record)?;
            append_audit(sql, &record.id, &audit)?;
            crate::webhooks::changed(sql, env, &record, &audit)?;
            Ok(Reply::Record(record, hash))
        }
        Op::Get(id) => {
            let (record, hash) = load(sql, &id)?;
            Ok(Reply::Record(record, hash))
        }
        Op::List(status, cursor, limit) => list(sql, status, cursor, limit),
        Op::Seen(seen) => {
            // Reports from many isolates arrive in any order: keep the latest use of each key.
            for (id, at) in seen {
                sql.exec(
                    "INSERT INTO last_used (id, at) VALUES (?, ?) ON CONFLICT (id) DO UPDATE SET at = MAX(at, excluded.at)",
                    vec![id.into(), SqlStorageValue::Integer(at.clamp(0, MAX_SAFE_INTEGER))],
                )
                .map_err(store_failure("last used write"))?;
            }
            for (hash, (record, audit)) in crate::roll_grace::follow(sql)? {
                commit_change(sql, env, &hash, &record, &audit).await?;
            }
            Ok(Reply::Done)
        }
        Op::Update(id, may_have_no_permissions, body) => {
            let change = keygate_core::admin::request::validated_update(body.as_bytes(), may_have_no_permissions)
                .ok_or_else(|| Failure::Store("malformed update".into()))?;
            let (old, hash) = load(sql, &id)?;
            let (new, audit) = lifecycle::update(&old, &change, now_ms())?;
            if let Some(audit) = audit {
                commit_change(sql, env, &hash, &new, &audit).await?;
            }
            Ok(Reply::Record(new, hash))
        }
        Op::Revoke(id) => {
            let (old, hash) = load(sql, &id)?;
            let (new, audit) = lifecycle::revoke(&old, now_ms());
            if let Some(audit) = audit {
                commit_change(sql, env, &hash, &new, &audit).await?;
            }
            Ok(Reply::Record(new, hash))
        }
        Op::Roll(id, new_id, new_hash, new_hint, grace_seconds, after_new_used, old_unused) => {
            let follow_use = after_new_used.map(|after| (after, old_unused));
            let (old, old_hash) = load(sql, &id)?;
            let rolled = lifecycle::roll(&old, new_id, new_hint, grace_seconds, follow_use, now_ms())?;
            // The replacement first: if anything fails after, the old key still works.
            write_through(env, &new_hash, &rolled.new).await?;
            insert(sql, &new_hash, &rolled.new)?;
            append_audit(sql, &rolled.new.id, &rolled.new_audit)?;
            crate::webhooks::changed(sql, env, &rolled.new, &rolled.new_audit)?;
            commit_change(sql, env, &old_hash, &rolled.old, &rolled.old_audit).await?;
            if let Some(rule) = follow_use {
                crate::roll_grace::arm(sql, &rolled.old, &rolled.new.id, rule)?;
            }
            Ok(Reply::Rolled(rolled.new, rolled.old, old_hash))
        }
        Op::Audit(id) => {
            load(sql, &id)?;
            let items = audit_of(sql, &id)?;
            Ok(Reply::Json(keygate_core::json::object([("items", keygate_core::json::value_of(&items))]).to_string()))
        }
        Op::Credits(text) => {
            let (id, set, amount) = credits_of(&text).ok_or_else(|| Failure::Store("malformed credits change".into()))?;
            let (record, _) = load(sql, id)?;
            let credits = record
                .credits
                .as_ref()
                .ok_or_else(|| Failure::Conflict("the key has no credits (give it credits with PATCH first)".into()))?;
            let op = keygate_core::limit::protocol::credits(&credits.spec(), set, amount);
            let balance = match crate::key_limiter::call(env, record.family_id(), &op).await {
                Ok(LimiterReply::Decided(decision)) => decision.credits().map_or(0, |c| c.remaining),
                Ok(_) => return Err(Failure::Store("limiter credits: unexpected answer".into())),
                Err(reason) => return Err(Failure::Store(format!("limiter credits: {reason}"))),
            };
            append_audit(sql, id, &lifecycle::credits_audit(&record, set, amount, balance, now_ms()))?;
            Ok(Reply::Credits(balance))
        }
        Op::Leaked(id, action, url) => {
            let action = leak::LeakAction::from_name(&action).ok_or_else(|| Failure::Store("unknown leak action".into()))?;
            let report = leak::LeakReport { reporter: leak::REPORTER_GITHUB.into(), url };
            let (old, hash) = load(sql, &id)?;
            // A retry of a report already acted on changes nothing and adds no entry.
            if let Some((new, audit)) = leak::apply(&old, action, &report, &audit_of(sql, &id)?, now_ms()) {
                if new.revision == old.revision {
                    append_audit(sql, &id, &audit)?;
                    crate::webhooks::changed(sql, env, &new, &audit)?;
                } else {
                    commit_change(sql, env, &hash, &new, &audit).await?;
                }
            }
            Ok(Reply::Done)
        }
        Op::Webhooks(id) => {
            load(sql, &id)?;
            crate::webhooks::delivery_log(sql, &id)
        }
        Op::Quota(id, crossing) => {
            let (record, _) = load(sql, &id)?;
            crate::webhooks::quota(sql, env, &record, &crossing)
        }
    }
}

/// The audit log of key `id`, oldest first.
fn audit_of(sql: &SqlStorage, id: &str) -> std::result::Result<Vec<AuditEntry>, Failure> {
    let entries = texts(sql.exec("SELECT entry AS value FROM audit WHERE key_id = ? ORDER BY seq", vec![id.to_string().into()]))
        .map_err(store_failure("audit read"))?;
    entries
        .iter()
        .map(|entry| keygate_core::json::parse::<AuditEntry>(entry))
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| Failure::Store(format!("audit decode: {e}")))
}

/// Commits a change to an existing key, in the order the module docs give: limiter, KV,
/// SQLite record, audit entry.
async fn commit_change(
    sql: &SqlStorage,
    env: &Env,
    hash: &str,
    record: &KeyRecord,
    audit: &AuditEntry,
) -> std::result::Result<(), Failure> {
    mark_limiter(env, record).await;
    write_through(env, hash, record).await?;
    replace(sql, record)?;
    append_audit(sql, &record.id, audit)?;
    crate::webhooks::changed(sql, env, record, audit)
}

/// Tells the key family's limiter the key's new record, before KV changes, so the very next
/// request with the key sees it even where KV and caches are stale. If the limiter cannot be
/// told, the change still goes ahead (a revocation must never wait for the limiter); it then
/// takes effect as KV and the caches catch up, and the limiter never holds an older record
/// than the worker's, so it cannot undo the change.
async fn mark_limiter(env: &Env, record: &KeyRecord) {
    let op = LimiterOp::Mark(record.clone());
    if let Err(reason) = crate::key_limiter::call(env, record.family_id(), &op).await {
        crate::respond::log_event("limiter_unavailable", "-", &[("reason", &format!("mark: {reason}")), ("key_id", &record.id)]);
    }
}

async fn write_through(env: &Env, hash: &str, record: &KeyRecord) -> std::result::Result<(), Failure> {
    // The checks `env.kv(KEYS_BINDING)` made, with its messages, without building worker's
    // `KvStore` (whose constructor only the check used): the binding exists, and is an object
    // (reading its `get` fails otherwise, as the constructor's first read did).
    let namespace = js_sys::Reflect::get(env.as_ref(), &KEYS_BINDING.into()).unwrap_or_default();
    if namespace.is_undefined() {
        return Err(Failure::Store(format!("KEYS binding: invalid kv store: {KEYS_BINDING}")));
    }
    js_sys::Reflect::get(&namespace, &"get".into()).map_err(|e| Failure::Store(format!("KEYS binding: js error: {e:?}")))?;
    // The same text as bytes, put from JS (crate::runtime::kv_put_bytes: no serde_wasm_bindgen).
    let put = |e| Failure::Store(format!("kv put: {}", worker::KvError::from(e)));
    let promise = crate::runtime::kv_put_bytes(&namespace, &format!("key:{hash}"), record::encode(record).as_bytes()).map_err(put)?;
    js_sys::futures::JsFuture::from(promise).await.map(|_| ()).map_err(put)
}

fn status_text(record: &KeyRecord) -> String {
    record.status.as_str().to_string()
}

fn insert(sql: &SqlStorage, hash: &str, record: &KeyRecord) -> std::result::Result<(), Failure> {
    let values: Vec<SqlStorageValue> = vec![
        record.id.clone().into(),
        hash.to_string().into(),
        SqlStorageValue::Integer(record.created_at.millis()),
        status_text(record).into(),
        record::encode(record).into(),
    ];
    sql.exec("INSERT INTO keys (id, hash, created_at, status, record) VALUES (?, ?, ?, ?, ?)", values).map_err(store_failure("insert"))?;
    Ok(())
}

fn replace(sql: &SqlStorage, record: &KeyRecord) -> std::result::Result<(), Failure> {
    let values: Vec<SqlStorageValue> = vec![status_text(record).into(), record::encode(record).into(), record.id.clone().into()];
    sql.exec("UPDATE keys SET status = ?, record = ? WHERE id = ?", values).map_err(store_failure("update"))?;
    Ok(())
}

fn append_audit(sql: &SqlStorage, id: &str, entry: &AuditEntry) -> std::result::Result<(), Failure> {
    let entry = serde_json::to_string(entry).map_err(|e| Failure::Store(e.to_string()))?;
    sql.exec("INSERT INTO audit (key_id, entry) VALUES (?, ?)", vec![id.to_string().into(), entry.into()])
        .map_err(store_failure("audit write"))?;
    Ok(())
}

pub(crate) fn load(sql: &SqlStorage, id: &str) -> std::result::Result<(KeyRecord, String), Failure> {
    let row = sql
        .exec("SELECT hash, record FROM keys WHERE id = ?", vec![id.to_string().into()])
        .and_then(rows)
        .and_then(|rows| rows.into_iter().next().map(|mut row| Ok((row.text(0)?, row.text(1)?))).transpose())
        .map_err(store_failure("read"))?;
    let (hash, text) = row.ok_or(Failure::NotFound)?;
    let record = record::decode(text.as_bytes()).map_err(|e| Failure::Store(format!("record decode: {}", e.0)))?;
    Ok((record, hash))
}

fn list(
    sql: &SqlStorage,
    status: Option<keygate_core::record::Status>,
    cursor: Option<String>,
    limit: usize,
) -> std::result::Result<Reply, Failure> {
    let (after_at, after_id) = match cursor {
        None => (FIRST_PAGE_AFTER, String::new()),
        Some(text) => decode_cursor(&text)
            .ok_or_else(|| Failure::Validation([("cursor".to_string(), "is not a cursor from this API".to_string())].into()))?,
    };
    let status = status.map(|s| s.as_str().to_string());
    let status_value = status.map(SqlStorageValue::from).unwrap_or(SqlStorageValue::Null);
    let values: Vec<SqlStorageValue> = vec![
        status_value.clone(),
        status_value,
        SqlStorageValue::Integer(after_at),
        SqlStorageValue::Integer(after_at),
        after_id.into(),
        SqlStorageValue::Integer(limit as i64 + 1),
    ];
    let page = rows(
        sql.exec(
            "SELECT keys.record, last_used.at FROM keys LEFT JOIN last_used ON last_used.id = keys.id \
             WHERE (? IS NULL OR keys.status = ?) AND (keys.created_at > ? OR (keys.created_at = ? AND keys.id > ?)) \
             ORDER BY keys.created_at, keys.id LIMIT ?",
            values,
        )
        .map_err(store_failure("list"))?,
    )
    .map_err(store_failure("list"))?;
    let mut items = Vec::with_capacity(page.len());
    let mut last_used = Vec::with_capacity(page.len());
    for mut row in page {
        let text = row.text(0).map_err(store_failure("list row"))?;
        items.push(record::decode(text.as_bytes()).map_err(|e| Failure::Store(format!("record decode: {}", e.0)))?);
        last_used.push(row.optional_int(1).map_err(store_failure("list row"))?);
    }
    let cursor = if items.len() > limit {
        items.truncate(limit);
        last_used.truncate(limit);
        items.last().map(|last| encode_cursor(last.created_at.millis(), &last.id))
    } else {
        None
    };
    Ok(Reply::Page(items, last_used, cursor))
}
