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
//! A key family's limits are decided by a [`LeaseLedger`] the object holds in memory (read
//! back from `limit_state` when the object starts, written through after every change): a
//! `Hit` decides one request, a `Lease` takes an isolate's report and grants it units
//! (`crates/core/src/limit/lease.rs`, `docs/leases.md`). A decision reads, decides and writes
//! with synchronous calls and no `await` in between, so concurrent requests are serialised by
//! the object and limits are exact under any concurrency. The outstanding grants live in
//! memory only: an object that restarts forgets them, and they stay debited (under-admission,
//! never over-admission; an isolate's next renewal simply starts a new record of it). A `Mark`
//! (an admin change) makes the ledger never re-credit units granted before it.
//!
//! [`call`] is the client: the one way the worker (request path, admin API, admin
//! authentication) and the registry send a [`LimiterOp`] to an instance.

use worker::{durable_object, DurableObject, Env, Request, Response, Result, SqlStorage, SqlStorageValue, State};

use std::cell::{RefCell, RefMut};

use keygate_core::admin::auth_limit;
use keygate_core::limit::algorithm::{decide_cost, Decision, LimitSpec, LimitState};
use keygate_core::limit::credits::{self, CREDITS};
use keygate_core::limit::lease::{usage_counted, Grant, LeaseLedger, Renewal};
use keygate_core::limit::protocol::{credits_of, day_of, DayUsage, LimiterOp, LimiterReply, Usage, HIT};
use keygate_core::record::{self, KeyRecord};
use keygate_core::timestamp::Timestamp;

use crate::durable::{read_json, rows, Row};
use crate::now_ms;

/// Durable Object binding name.
pub const LIMITER_BINDING: &str = "LIMITER";

/// Sends one operation to the limiter instance `name` (a key family's id, or
/// `ADMIN_AUTH_INSTANCE`) and decodes its answer. `Err` describes what failed (for logs).
pub async fn call(env: &Env, name: &str, op: &LimiterOp) -> std::result::Result<LimiterReply, String> {
    crate::counters::limiter_call();
    crate::durable::call(env, LIMITER_BINDING, name, op).await
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS limit_state (name TEXT PRIMARY KEY, mark INTEGER NOT NULL, count INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS key_record (key_id TEXT PRIMARY KEY, revision INTEGER NOT NULL, record TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS usage (key_id TEXT NOT NULL, day TEXT NOT NULL, allowed INTEGER NOT NULL, refused INTEGER NOT NULL,
  PRIMARY KEY (key_id, day));
CREATE TABLE IF NOT EXISTS last_used (key_id TEXT PRIMARY KEY, at INTEGER NOT NULL);";

struct StateRow {
    name: String,
    mark: i64,
    count: i64,
}

#[durable_object(fetch)]
pub struct KeyLimiter {
    state: State,
    /// `LEASE_MS` of this deployment.
    lease_ms: u64,
    /// The family's limits, loaded on first use.
    ledger: RefCell<Option<LeaseLedger>>,
    /// Quota webhooks (`key.quota`): `None` unless configured.
    quota_watch: Option<crate::webhooks::QuotaWatch>,
}

impl DurableObject for KeyLimiter {
    fn new(state: State, env: Env) -> Self {
        let sql = state.storage().sql();
        if let Err(e) = sql.exec(SCHEMA, None) {
            worker::console_error!("{{\"event\":\"limiter_schema_failed\",\"reason\":\"{e}\"}}");
        }
        let lease_ms = crate::config::load(&env).map_or(keygate_core::limit::lease::DEFAULT_LEASE_MS, |c| c.lease_ms);
        let quota_watch = crate::webhooks::QuotaWatch::new(&env);
        Self { state, lease_ms, ledger: RefCell::new(None), quota_watch }
    }

    async fn fetch(&self, mut request: Request) -> Result<Response> {
        let op: LimiterOp = read_json(&mut request).await?;
        // With quota webhooks: after a grant, the thresholds its family's quotas reached.
        let leased = match (&self.quota_watch, &op) {
            (Some(_), LimiterOp::Lease(key_id, ..)) => Some(key_id.clone()),
            _ => None,
        };
        let reply = self.reply(op, now_ms())?;
        if let (Some(watch), Some(key_id), LimiterReply::Lease(_)) = (&self.quota_watch, leased, &reply) {
            watch.after_grant(&self.ledger, &key_id).await;
        }
        Response::from_json(&reply)
    }
}

impl KeyLimiter {
    /// Answers one operation (synchronous: no `await` between reading and writing state).
    fn reply(&self, op: LimiterOp, now: i64) -> Result<LimiterReply> {
        let sql = self.state.storage().sql();
        Ok(match op {
            LimiterOp::Lease(key_id, revision, lease_id, renewal, limits) => {
                self.leased(&sql, &key_id, revision, lease_id, renewal, limits, now)?
            }
            LimiterOp::IsStale(key_id, revision) => match newer_record(&sql, &key_id, revision)? {
                Some(record) => LimiterReply::Stale(record),
                None => LimiterReply::Done,
            },
            LimiterOp::Mark(record) => {
                remember_record(&sql, &record)?;
                if let Some(ledger) = self.ledger.borrow_mut().as_mut() {
                    let specs = ledger.limits().0.to_vec();
                    ledger.change(ledger.revision() + 1, specs, now);
                }
                LimiterReply::Done
            }
            LimiterOp::AddRefused(key_id, count) => {
                count_usage(&sql, &key_id, now, 0, count)?;
                LimiterReply::Done
            }
            // Written here as the admin API's answer (serializing plain data cannot fail).
            LimiterOp::Usage(key_id) => LimiterReply::Usage(serde_json::to_string(&usage(&sql, &key_id)?).unwrap_or_default()),
            LimiterOp::AdminAuth(address, failed, limits) => admin_auth(&sql, &address, failed, &limits, now)?,
            LimiterOp::Credits(text) => {
                let (spec, set, amount) = credits_of(&text).ok_or_else(|| worker::Error::RustError("malformed credits change".into()))?;
                LimiterReply::Decided(self.credits(&sql, spec, set, amount, now)?)
            }
        })
    }

    /// A lease renewal, or a hit (lease id [`HIT`]): `Stale` when the key has a newer record
    /// than the worker's `revision` (then nothing is granted), else the ledger decides (a
    /// renewal under an older epoch is answered `record_changed`); the limits' state and the
    /// key's usage are stored before the answer leaves.
    #[allow(clippy::too_many_arguments)] // the message's fields, as they come
    fn leased(
        &self,
        sql: &SqlStorage,
        key_id: &str,
        revision: u64,
        lease_id: u64,
        renewal: Renewal,
        limits: Vec<LimitSpec>,
        now: i64,
    ) -> Result<LimiterReply> {
        let newer = newer_record(sql, key_id, revision)?;
        let mut ledger = self.ledger(sql, limits, now)?;
        let epoch = ledger.revision();
        let grant = match newer {
            Some(record) => {
                if lease_id != HIT {
                    ledger.give_back(lease_id, key_id, &renewal, false);
                }
                count_grant(sql, key_id, now, &Grant::changed(record.revision), &renewal)?;
                store_states(sql, &ledger)?;
                return Ok(LimiterReply::Stale(record));
            }
            // A hit's `wanted` is its request's cost in credits.
            None if lease_id == HIT => ledger.hit(key_id, epoch, now, renewal.wanted()),
            None => ledger.grant(lease_id, key_id, &renewal, now),
        };
        store_states(sql, &ledger)?;
        count_grant(sql, key_id, now, &grant, &renewal)?;
        Ok(LimiterReply::Lease(grant))
    }

    /// The family's ledger under `limits` (loaded from `limit_state` on first use; other limits
    /// keep the state of same-named ones). The caller stores its state after a change. Its
    /// epoch (revision) starts at the load's unix ms, so an object that restarted never
    /// confirms a lease of an epoch it had before; every change of limits or `Mark` adds one.
    fn ledger(&self, sql: &SqlStorage, limits: Vec<LimitSpec>, now: i64) -> Result<RefMut<'_, LeaseLedger>> {
        let mut slot = self.ledger.borrow_mut();
        match slot.as_mut() {
            Some(ledger) if ledger.limits().0 != limits.as_slice() => ledger.change(ledger.revision() + 1, limits, now),
            Some(_) => {}
            None => {
                let rows = rows(sql.exec("SELECT name, mark, count FROM limit_state", None)?)?
                    .into_iter()
                    .map(|mut row| Ok(StateRow { name: row.text(0)?, mark: row.int(1)?, count: row.int(2)? }))
                    .collect::<Result<Vec<_>>>()?;
                let states = limits
                    .iter()
                    .map(|spec| {
                        rows.iter()
                            .find(|row| row.name == spec.name)
                            .map(|row| LimitState { mark: row.mark, count: row.count.max(0) as u64 })
                            .unwrap_or_default()
                    })
                    .collect();
                *slot = Some(LeaseLedger::with_states(self.lease_ms, now.max(1) as u64, limits, states));
            }
        }
        Ok(RefMut::map(slot, |slot| slot.get_or_insert_with(|| LeaseLedger::new(0, 0, Vec::new()))))
    }
}

impl KeyLimiter {
    /// An admin change of the family's credits balance (adding 0 reads it): through the ledger
    /// when it decides credits under `spec`, else on the stored row (the ledger, if loaded under
    /// other limits, is dropped, to load the row on the next request). The balance is the
    /// credits limit's `remaining` in the answer.
    fn credits(&self, sql: &SqlStorage, spec: LimitSpec, set: bool, amount: i64, now: i64) -> Result<Decision> {
        let mut slot = self.ledger.borrow_mut();
        let changed = slot.as_mut().and_then(|ledger| ledger.change_credits(&spec, set, amount, now));
        let state = match (changed, slot.as_ref()) {
            (Some(state), Some(ledger)) => {
                store_states(sql, ledger)?;
                state
            }
            _ => {
                *slot = None;
                let row = rows(sql.exec("SELECT mark, count FROM limit_state WHERE name = ?", vec![CREDITS.into()])?)?;
                let stored = match row.first() {
                    Some(row) => LimitState { mark: row.int(0)?, count: row.int(1)?.max(0) as u64 },
                    None => LimitState::default(),
                };
                let state = credits::change(&spec, stored, set, amount, now);
                write_state(sql, CREDITS, &state)?;
                state
            }
        };
        Ok(decide_cost(&[spec], &mut vec![state], now, 0))
    }
}

/// Writes one limit's state to `limit_state`.
fn write_state(sql: &SqlStorage, name: &str, state: &LimitState) -> Result<()> {
    sql.exec(
        "INSERT INTO limit_state (name, mark, count) VALUES (?, ?, ?) \
         ON CONFLICT(name) DO UPDATE SET mark = excluded.mark, count = excluded.count",
        vec![name.into(), SqlStorageValue::Integer(state.mark), SqlStorageValue::Integer(state.count as i64)],
    )?;
    Ok(())
}

/// Writes the ledger's limit state through to `limit_state`.
fn store_states(sql: &SqlStorage, ledger: &LeaseLedger) -> Result<()> {
    let (specs, states) = ledger.limits();
    for (spec, state) in specs.iter().zip(states) {
        write_state(sql, &spec.name, state)?;
    }
    Ok(())
}

/// Counts in usage what a grant (or hit) allowed and refused and what the isolate's `report`
/// says ([`usage_counted`]), and the key's last use.
fn count_grant(sql: &SqlStorage, key_id: &str, now: i64, grant: &Grant, report: &Renewal) -> Result<()> {
    let (allowed, refused) = usage_counted(grant, report);
    if allowed != 0 || refused != 0 {
        count_usage(sql, key_id, now, allowed, refused)?;
    }
    if grant.allowed > 0 || report.used() > 0 {
        sql.exec(
            "INSERT INTO last_used (key_id, at) VALUES (?, ?) ON CONFLICT(key_id) DO UPDATE SET at = excluded.at",
            vec![key_id.into(), SqlStorageValue::Integer(now)],
        )?;
    }
    Ok(())
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

/// Adds to a key's usage of today; `allowed` may be negative (units granted earlier, dropped
/// unused), never taking a day below 0.
fn count_usage(sql: &SqlStorage, key_id: &str, now: i64, allowed: i64, refused: u64) -> Result<()> {
    sql.exec(
        "INSERT INTO usage (key_id, day, allowed, refused) VALUES (?1, ?2, MAX(0, ?3), ?4) \
         ON CONFLICT(key_id, day) DO UPDATE SET allowed = MAX(0, allowed + ?3), refused = refused + ?4",
        vec![key_id.into(), day_of(now).into(), SqlStorageValue::Integer(allowed), SqlStorageValue::Integer(refused as i64)],
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
