//! `KeyLimiter`: one SQLite-backed Durable Object per key family (named by the family id).
//! It decides every request of an `exact`-mode key, holds the key's status epoch — the newest
//! record of each key in the family, written by the admin API before KV — so a disable, revoke,
//! roll or any other change applies to the very next request even while KV and isolate caches
//! are stale, and counts usage per key and day.
//!
//! One more instance, `ADMIN_AUTH_INSTANCE` (`admin-auth`), counts failed admin authentications per client
//! address and overall (`LimiterOp::AdminAuth`); its `limit_state` rows are `address:<bucket>`
//! and `global`.
//!
//! A decision reads state, decides and writes state with synchronous SQLite calls and no
//! `await` in between, so concurrent requests are serialised by the object and limits are
//! exact under any concurrency.
//!
//! [`call`] is the client: the one way the worker (request path, admin API, admin
//! authentication) and the registry send a [`LimiterOp`] to an instance.

use worker::{durable_object, DurableObject, Env, Request, Response, Result, SqlStorage, SqlStorageValue, State};

use keygate_core::admin::auth_limit;
use keygate_core::limit::algorithm::{decide, LimitSpec, LimitState};
use keygate_core::limit::protocol::{day_of, DayUsage, LimiterOp, LimiterReply, Usage};
use keygate_core::record::{self, KeyRecord};
use keygate_core::timestamp::Timestamp;

use crate::durable::{read_json, rows, Row};
use crate::now_ms;

/// Durable Object binding name.
pub const LIMITER_BINDING: &str = "LIMITER";

/// Sends one operation to the limiter instance `name` (a key family's id, or
/// `ADMIN_AUTH_INSTANCE`) and decodes its answer. `Err` describes what failed (for logs).
pub async fn call(env: &Env, name: &str, op: &LimiterOp) -> std::result::Result<LimiterReply, String> {
    crate::durable::call(env, LIMITER_BINDING, name, op).await
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS limit_state (name TEXT PRIMARY KEY, mark INTEGER NOT NULL, count INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS key_record (key_id TEXT PRIMARY KEY, revision INTEGER NOT NULL, record TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS usage (key_id TEXT NOT NULL, day TEXT NOT NULL, allowed INTEGER NOT NULL, refused INTEGER NOT NULL,
  PRIMARY KEY (key_id, day));
CREATE TABLE IF NOT EXISTS last_used (key_id TEXT PRIMARY KEY, at INTEGER NOT NULL);";

#[durable_object]
pub struct KeyLimiter {
    state: State,
}

impl DurableObject for KeyLimiter {
    fn new(state: State, _env: Env) -> Self {
        let sql = state.storage().sql();
        if let Err(e) = sql.exec(SCHEMA, None) {
            worker::console_error!("{{\"event\":\"limiter_schema_failed\",\"reason\":\"{e}\"}}");
        }
        Self { state }
    }

    async fn fetch(&self, mut request: Request) -> Result<Response> {
        let op: LimiterOp = read_json(&mut request).await?;
        let sql = self.state.storage().sql();
        let now = now_ms();
        let reply = match op {
            LimiterOp::Hit(key_id, revision, limits) => hit(&sql, &key_id, revision, &limits, now)?,
            LimiterOp::IsStale(key_id, revision) => match newer_record(&sql, &key_id, revision)? {
                Some(record) => LimiterReply::Stale(record),
                None => LimiterReply::Done,
            },
            LimiterOp::Mark(record) => {
                remember_record(&sql, &record)?;
                LimiterReply::Done
            }
            LimiterOp::AddRefused(key_id, count) => {
                count_usage(&sql, &key_id, now, 0, count)?;
                LimiterReply::Done
            }
            LimiterOp::Usage(key_id) => LimiterReply::Usage(usage(&sql, &key_id)?),
            LimiterOp::AdminAuth(address, failed, limits) => admin_auth(&sql, &address, failed, &limits, now)?,
        };
        Response::from_json(&reply)
    }
}

struct StateRow {
    name: String,
    mark: i64,
    count: i64,
}

fn hit(sql: &SqlStorage, key_id: &str, revision: u64, limits: &[LimitSpec], now: i64) -> Result<LimiterReply> {
    if let Some(record) = newer_record(sql, key_id, revision)? {
        return Ok(LimiterReply::Stale(record));
    }
    let rows = rows(sql.exec("SELECT name, mark, count FROM limit_state", None)?)?
        .into_iter()
        .map(|mut row| Ok(StateRow { name: row.text(0)?, mark: row.int(1)?, count: row.int(2)? }))
        .collect::<Result<Vec<_>>>()?;
    let mut states: Vec<LimitState> = limits
        .iter()
        .map(|spec| {
            rows.iter()
                .find(|row| row.name == spec.name)
                .map(|row| LimitState { mark: row.mark, count: row.count.max(0) as u64 })
                .unwrap_or_default()
        })
        .collect();
    let decision = decide(limits, &mut states, now);
    if decision.allowed {
        for (spec, state) in limits.iter().zip(&states) {
            sql.exec(
                "INSERT INTO limit_state (name, mark, count) VALUES (?, ?, ?) \
                 ON CONFLICT(name) DO UPDATE SET mark = excluded.mark, count = excluded.count",
                vec![spec.name.clone().into(), SqlStorageValue::Integer(state.mark), SqlStorageValue::Integer(state.count as i64)],
            )?;
        }
        sql.exec(
            "INSERT INTO last_used (key_id, at) VALUES (?, ?) ON CONFLICT(key_id) DO UPDATE SET at = excluded.at",
            vec![key_id.into(), SqlStorageValue::Integer(now)],
        )?;
        count_usage(sql, key_id, now, 1, 0)?;
    } else {
        count_usage(sql, key_id, now, 0, 1)?;
    }
    Ok(LimiterReply::Decided(decision))
}

/// Judges one admin authentication attempt: reads the address's and the global state, decides,
/// and writes them back when a failure was charged. Fully refilled address rows are deleted
/// then, so the table holds only addresses that failed within the last window.
fn admin_auth(sql: &SqlStorage, address: &str, failed: bool, limits: &[LimitSpec], now: i64) -> Result<LimiterReply> {
    let names = [format!("address:{address}"), "global".to_string()];
    let mut states = Vec::with_capacity(names.len());
    for name in &names {
        let row = rows(sql.exec("SELECT mark, count FROM limit_state WHERE name = ?", vec![name.clone().into()])?)?;
        states.push(match row.first() {
            Some(row) => LimitState { mark: row.int(0)?, count: row.int(1)?.max(0) as u64 },
            None => LimitState::default(),
        });
    }
    let before = states.clone();
    let decision = auth_limit::judge(limits, &mut states, failed, now);
    if states != before {
        for (name, state) in names.iter().zip(&states) {
            sql.exec(
                "INSERT INTO limit_state (name, mark, count) VALUES (?, ?, ?) \
                 ON CONFLICT(name) DO UPDATE SET mark = excluded.mark, count = excluded.count",
                vec![name.clone().into(), SqlStorageValue::Integer(state.mark), SqlStorageValue::Integer(state.count as i64)],
            )?;
        }
        // GCRA state is a theoretical arrival time in µs: at or before now, the limit is full.
        sql.exec(
            "DELETE FROM limit_state WHERE name LIKE 'address:%' AND mark <= ?",
            vec![SqlStorageValue::Integer(now.saturating_mul(1000))],
        )?;
    }
    Ok(LimiterReply::Decided(decision))
}

fn newer_record(sql: &SqlStorage, key_id: &str, revision: u64) -> Result<Option<KeyRecord>> {
    let rows = rows(sql.exec(
        "SELECT record FROM key_record WHERE key_id = ? AND revision > ?",
        vec![key_id.into(), SqlStorageValue::Integer(revision as i64)],
    )?)?;
    let Some(mut row) = rows.into_iter().next() else { return Ok(None) };
    record::decode(row.text(0)?.as_bytes()).map(Some).map_err(|e| worker::Error::RustError(e.0))
}

/// Keeps the newest record; an equal revision replaces too, because the registry serialises
/// changes and may retry one whose KV write failed after the limiter was told.
fn remember_record(sql: &SqlStorage, record: &KeyRecord) -> Result<()> {
    sql.exec(
        "INSERT INTO key_record (key_id, revision, record) VALUES (?, ?, ?) \
         ON CONFLICT(key_id) DO UPDATE SET revision = excluded.revision, record = excluded.record \
         WHERE excluded.revision >= key_record.revision",
        vec![record.id.clone().into(), SqlStorageValue::Integer(record.revision as i64), record::encode(record).into()],
    )?;
    Ok(())
}

fn count_usage(sql: &SqlStorage, key_id: &str, now: i64, allowed: u64, refused: u64) -> Result<()> {
    sql.exec(
        "INSERT INTO usage (key_id, day, allowed, refused) VALUES (?, ?, ?, ?) \
         ON CONFLICT(key_id, day) DO UPDATE SET allowed = allowed + excluded.allowed, refused = refused + excluded.refused",
        vec![key_id.into(), day_of(now).into(), SqlStorageValue::Integer(allowed as i64), SqlStorageValue::Integer(refused as i64)],
    )?;
    Ok(())
}

fn usage(sql: &SqlStorage, key_id: &str) -> Result<Usage> {
    let days = rows(sql.exec("SELECT day, allowed, refused FROM usage WHERE key_id = ? ORDER BY day DESC LIMIT 90", vec![key_id.into()])?)?
        .into_iter()
        .map(|mut row: Row| Ok(DayUsage { date: row.text(0)?, allowed: row.int(1)?.max(0) as u64, refused: row.int(2)?.max(0) as u64 }))
        .collect::<Result<Vec<_>>>()?;
    let last = rows(sql.exec("SELECT at FROM last_used WHERE key_id = ?", vec![key_id.into()])?)?;
    let last_used_at = match last.first() {
        Some(row) => Some(Timestamp(row.int(0)?)),
        None => None,
    };
    Ok(Usage { key_id: key_id.to_string(), last_used_at, days })
}
