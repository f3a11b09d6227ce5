//! Webhook glue: the registry's outbox (a SQLite table of its Durable Object), its alarm that
//! delivers due events, the delivery log, and the limiter's quota watch. What an event is, its
//! JSON, its signature and the retry schedule are decided by [`keygate_core::webhook`].
//!
//! - **Outbox.** An event is written in the same serialised registry operation as the change
//!   that makes it, with no `await` between the change's SQLite writes and the event's, so a
//!   stored change always has its events (at-least-once). One row per event and endpoint.
//! - **Schedule.** The registry's alarm is set to the earliest due row (a retry, or a
//!   `key.expiring` warning the lead time before `valid_to`); one alarm per project, exact to the
//!   millisecond. A run delivers up to [`DELIVERIES_PER_RUN`] due rows, records each attempt
//!   and sets the next alarm; the runtime retries an alarm run that fails.
//! - **Bounds.** Finished rows are pruned after [`KEEP_FINISHED_MS`], and beyond
//!   [`LOG_PER_KEY`] per key.
//! - **Only configured URLs.** A row whose endpoint is no longer in `WEBHOOK_URLS` is marked
//!   failed, never sent.
//!
//! Nothing here runs, and no table is made, while `WEBHOOK_URLS` is unset.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use js_sys::futures::JsFuture;
use worker::{Env, SqlStorage, SqlStorageValue, State};

use keygate_core::admin::lifecycle::AuditEntry;
use keygate_core::admin::protocol::{Failure, Op, Reply};
use keygate_core::config::Config;
use keygate_core::limit::algorithm::{LimitSpec, LimitState};
use keygate_core::limit::lease::LeaseLedger;
use keygate_core::record::KeyRecord;
use keygate_core::webhook::{self, Event, QuotaCrossing, WebhookSettings, DELIVERIES_PER_RUN, KEEP_FINISHED_MS, LOG_PER_KEY};

use crate::durable::rows;
use crate::key_registry::store_failure;
use crate::now_ms;
use crate::respond::log_event;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS webhook_events (
  id TEXT NOT NULL,
  url TEXT NOT NULL,
  key_id TEXT NOT NULL,
  type TEXT NOT NULL,
  dedupe TEXT,
  created_at INTEGER NOT NULL,
  body TEXT NOT NULL,
  state TEXT NOT NULL,
  attempts TEXT NOT NULL,
  tries INTEGER NOT NULL DEFAULT 0,
  next_at INTEGER,
  PRIMARY KEY (id, url),
  UNIQUE (dedupe, url)
);
CREATE INDEX IF NOT EXISTS webhook_due ON webhook_events (state, next_at);
CREATE INDEX IF NOT EXISTS webhook_by_key ON webhook_events (key_id, created_at);";

thread_local! {
    /// Set when an operation enqueued an event: the registry then checks its alarm.
    static ENQUEUED: Cell<bool> = const { Cell::new(false) };
}

/// The configuration, when webhooks are on (`WEBHOOK_URLS` set and every setting valid).
pub fn configured(env: &Env) -> Option<Rc<Config>> {
    crate::config::load(env).ok().filter(|config| config.webhooks.is_some())
}

/// Writes `event` to the outbox (its table made by the caller, [`schema`]), once per endpoint (a
/// repeated dedupe key is ignored), and keeps the key's finished rows within [`LOG_PER_KEY`].
fn enqueue(sql: &SqlStorage, settings: &WebhookSettings, event: Event) -> Result<(), Failure> {
    for url in &settings.urls {
        let values: Vec<SqlStorageValue> = vec![
            event.id.clone().into(),
            url.clone().into(),
            event.key_id.clone().into(),
            event.kind.into(),
            event.dedupe.clone().map_or(SqlStorageValue::Null, SqlStorageValue::from),
            SqlStorageValue::Integer(now_ms()),
            event.body.clone().into(),
            SqlStorageValue::Integer(event.due_ms),
        ];
        sql.exec(
            "INSERT OR IGNORE INTO webhook_events (id, url, key_id, type, dedupe, created_at, body, state, attempts, next_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, 'pending', '[]', ?)",
            values,
        )
        .map_err(store_failure("webhook enqueue"))?;
    }
    sql.exec(
        "DELETE FROM webhook_events WHERE rowid IN (SELECT rowid FROM webhook_events WHERE key_id = ? AND state != 'pending' \
         ORDER BY created_at DESC LIMIT -1 OFFSET ?)",
        vec![event.key_id.into(), SqlStorageValue::Integer(LOG_PER_KEY as i64)],
    )
    .map_err(store_failure("webhook prune"))?;
    ENQUEUED.with(|flag| flag.set(true));
    Ok(())
}

/// Makes the outbox table if it is not there yet (only once webhooks are on).
fn schema(sql: &SqlStorage) -> Result<(), Failure> {
    sql.exec(SCHEMA, None).map(|_| ()).map_err(store_failure("webhook schema"))
}

fn event_id() -> Result<String, Failure> {
    webhook::new_event_id().map_err(|_| Failure::Store("random event id".into()))
}

/// The events of a change just stored for `record` with its `audit` entry: the change's own
/// event, and its `key.expiring` warning kept in step with `valid_to` (a pending warning for an
/// older `valid_to`, or for a revoked key, is dropped). Called with no `await` since the change's
/// SQLite writes, in the same registry operation.
pub fn changed(sql: &SqlStorage, env: &Env, record: &KeyRecord, audit: &AuditEntry) -> Result<(), Failure> {
    let Some(config) = configured(env) else { return Ok(()) };
    let Some(settings) = &config.webhooks else { return Ok(()) };
    schema(sql)?;
    if let Some(event) = webhook::from_audit(settings, record, audit, event_id()?) {
        enqueue(sql, settings, event)?;
    }
    let current = webhook::expiring_dedupe(record).filter(|_| record.status != keygate_core::record::Status::Revoked);
    sql.exec(
        "DELETE FROM webhook_events WHERE key_id = ? AND type = 'key.expiring' AND state = 'pending' AND tries = 0 \
         AND dedupe IS NOT ?",
        vec![record.id.clone().into(), current.map_or(SqlStorageValue::Null, SqlStorageValue::from)],
    )
    .map_err(store_failure("webhook expiry"))?;
    if let Some(event) = webhook::expiring(settings, record, event_id()?, now_ms()) {
        enqueue(sql, settings, event)?;
    }
    Ok(())
}

/// `Op::Quota`: the `key.quota` event of a crossing the key family's limiter saw.
pub fn quota(sql: &SqlStorage, env: &Env, record: &KeyRecord, crossing: &str) -> Result<Reply, Failure> {
    let crossing = QuotaCrossing::decode(crossing).ok_or_else(|| Failure::Store("undecodable quota crossing".into()))?;
    let Some(config) = configured(env) else { return Ok(Reply::Done) };
    let Some(settings) = &config.webhooks else { return Ok(Reply::Done) };
    if let Some(event) = webhook::quota(settings, record, &crossing, event_id()?, now_ms()) {
        schema(sql)?;
        enqueue(sql, settings, event)?;
    }
    Ok(Reply::Done)
}

/// `Op::Webhooks`: the key's delivery log, newest first. SQLite writes each item's JSON (its
/// `attempts` are stored as JSON already), with times as the API writes them.
pub fn delivery_log(sql: &SqlStorage, key_id: &str) -> Result<Reply, Failure> {
    schema(sql)?;
    let items = sql
        .exec(
            "SELECT json_object('id', id, 'type', type, 'endpoint', url, \
             'created_at', strftime('%Y-%m-%dT%H:%M:%fZ', created_at / 1000.0, 'unixepoch'), 'state', state, \
             'attempts', json(attempts), \
             'next_attempt_at', strftime('%Y-%m-%dT%H:%M:%fZ', next_at / 1000.0, 'unixepoch')) \
             FROM webhook_events WHERE key_id = ? ORDER BY created_at DESC, rowid DESC LIMIT ?",
            vec![key_id.into(), SqlStorageValue::Integer(LOG_PER_KEY as i64 * 5)],
        )
        .and_then(rows)
        .map_err(store_failure("webhook log"))?;
    let mut log = Vec::with_capacity(items.len());
    for mut item in items {
        log.push(item.text(0).map_err(store_failure("webhook log"))?);
    }
    Ok(Reply::Json(webhook::log(&log)))
}

/// After a registry operation: when it enqueued an event, sets the alarm to the earliest due row.
pub async fn arm(state: &State) {
    if ENQUEUED.with(|flag| flag.replace(false)) {
        if let Err(e) = schedule(state).await {
            log_event("webhook_alarm_failed", "-", &[("reason", &e.to_string())]);
        }
    }
}

/// Sets the alarm to the earliest pending row (the one alarm time that is right: every pending
/// row is considered), unless none is pending: one runtime call (`scheduleWebhooks`).
async fn schedule(state: &State) -> worker::Result<()> {
    JsFuture::from(crate::runtime::schedule_webhooks(state.as_raw())).await?;
    Ok(())
}

/// The registry's alarm: delivers the due rows (in parallel, one runtime call), records each
/// attempt, prunes, and sets the next alarm. `Err` makes the runtime retry the run. Only the
/// two runtime calls are awaited; the SQLite work around them is plain functions.
pub async fn deliver(state: &State, env: &Env) -> worker::Result<()> {
    let Some(config) = configured(env) else { return Ok(()) };
    let Some(settings) = &config.webhooks else { return Ok(()) };
    let sql = state.storage().sql();
    let now = now_ms();
    let (batch, sent) = due(&sql, settings, now)?;
    // The outcomes, in order: a JS array of numbers (empty when nothing was sent).
    let statuses = match batch.is_empty() {
        true => js_sys::Array::new(),
        false => {
            let post = crate::runtime::post_webhooks(&batch, webhook::ATTEMPT_TIMEOUT_MS as f64, settings.secret());
            js_sys::Array::from(&JsFuture::from(post).await?)
        }
    };
    record(&sql, settings, sent, &statuses, now)?;
    schedule(state).await
}

/// A due row: `(rowid, event id, attempts so far (JSON), tries, whether its URL is configured)`.
type Due = (i64, String, String, i64, bool);

/// The due rows (up to [`DELIVERIES_PER_RUN`]) and the batch of requests for the configured
/// ones: only configured endpoints are ever called; a row for a removed one fails without one.
fn due(sql: &SqlStorage, settings: &WebhookSettings, now: i64) -> worker::Result<(String, Vec<Due>)> {
    sql.exec(SCHEMA, None)?;
    let due = rows(sql.exec(
        "SELECT rowid, id, url, body, attempts, tries FROM webhook_events WHERE state = 'pending' AND next_at <= ? ORDER BY next_at LIMIT ?",
        vec![SqlStorageValue::Integer(now), SqlStorageValue::Integer(DELIVERIES_PER_RUN as i64)],
    )?)?;
    let mut batch = String::new();
    let mut sent = Vec::with_capacity(due.len());
    for mut row in due {
        let id = row.text(1)?;
        let url = row.text(2)?;
        let configured = settings.urls.contains(&url);
        if configured {
            batch.push_str(&webhook::batch_entry(&url, &settings.unsigned_headers(&id, now), &row.text(3)?));
        }
        sent.push((row.int(0)?, id, row.text(4)?, row.int(5)?, configured));
    }
    Ok((batch, sent))
}

/// Records each attempt of `sent` (`statuses` in order for the configured ones)
/// with the row's next state, and prunes finished rows past [`KEEP_FINISHED_MS`].
fn record(sql: &SqlStorage, settings: &WebhookSettings, sent: Vec<Due>, statuses: &js_sys::Array, now: i64) -> worker::Result<()> {
    let mut statuses = statuses.iter();
    for (rowid, id, attempts, tries, configured) in sent {
        let status = if configured { statuses.next().and_then(|s| s.as_f64()).map_or(0, |s| s as i64) } else { 0 };
        let tries = tries + 1;
        let (next_state, next_at) = match (webhook::delivered(status), settings.retry_at(tries as usize, now).filter(|_| configured)) {
            (true, _) => ("delivered", None),
            (false, Some(next)) => ("pending", Some(next)),
            (false, None) => ("failed", None),
        };
        if next_state == "failed" {
            log_event("webhook_failed", "-", &[("event_id", &id)]);
        }
        sql.exec(
            "UPDATE webhook_events SET state = ?, attempts = ?, tries = ?, next_at = ? WHERE rowid = ?",
            vec![
                next_state.into(),
                webhook::add_attempt(&attempts, now, status).into(),
                SqlStorageValue::Integer(tries),
                next_at.map_or(SqlStorageValue::Null, SqlStorageValue::Integer),
                SqlStorageValue::Integer(rowid),
            ],
        )?;
    }
    sql.exec(
        "DELETE FROM webhook_events WHERE state != 'pending' AND created_at < ?",
        vec![SqlStorageValue::Integer(now.saturating_sub(KEEP_FINISHED_MS))],
    )?;
    Ok(())
}

/// The limiter's side: the thresholds to watch and which crossings of the family's quota
/// limits its registry has already taken (in memory: after a restart a crossing is sent again,
/// and the registry's dedupe key keeps it one event).
pub struct QuotaWatch {
    env: Env,
    thresholds: Vec<u64>,
    reported: RefCell<Vec<String>>,
}

impl QuotaWatch {
    /// A watch when webhooks are on and `key.quota` is wanted; `None` costs nothing per request.
    pub fn new(env: &Env) -> Option<QuotaWatch> {
        let config = configured(env)?;
        let settings = config.webhooks.as_ref().filter(|s| s.wants("key.quota"))?;
        Some(QuotaWatch { env: env.clone(), thresholds: settings.quota_thresholds.clone(), reported: RefCell::new(Vec::new()) })
    }

    /// After a grant to key `key_id`: reports the thresholds the family's quotas reached that
    /// its registry has not taken yet. (Awaited before the limiter answers, so a crossing is not
    /// lost with the object; other requests may be decided meanwhile, which is safe: the grant's
    /// state is already stored.)
    pub async fn after_grant(&self, ledger: &RefCell<Option<LeaseLedger>>, key_id: &str) {
        let crossings = match ledger.borrow().as_ref() {
            Some(ledger) => {
                let (specs, states) = ledger.limits();
                self.unreported(specs, states)
            }
            None => Vec::new(),
        };
        if !crossings.is_empty() {
            self.report(key_id, crossings).await;
        }
    }

    /// The crossings of `specs`/`states` (after a grant) not reported yet.
    fn unreported(&self, specs: &[LimitSpec], states: &[LimitState]) -> Vec<QuotaCrossing> {
        let mut reported = self.reported.borrow_mut();
        // Remember only the reported crossings seen now: those not seen (windows that ended)
        // never come back.
        let (mut seen, mut unreported) = (Vec::new(), Vec::new());
        for crossing in webhook::quota_crossings(&self.thresholds, specs, states) {
            let name = crossing.name();
            if reported.contains(&name) {
                seen.push(name);
            } else {
                unreported.push(crossing);
            }
        }
        *reported = seen;
        unreported
    }

    /// Has key `key_id`'s registry enqueue each crossing; one that fails is tried again on the
    /// family's next grant.
    async fn report(&self, key_id: &str, crossings: Vec<QuotaCrossing>) {
        for c in crossings {
            let op = Op::Quota(key_id.to_string(), c.encode());
            match crate::admin::call_for_key(&self.env, key_id, op).await {
                Ok(_) => {
                    self.reported.borrow_mut().push(c.name());
                }
                Err(error) => log_event("webhook_quota_unreported", "-", &[("key_id", key_id), ("reason", error.code())]),
            }
        }
    }
}
