//! Signed lifecycle webhooks (issue #17): which events a change makes, their JSON, the signing
//! key and unsigned headers, the retry schedule, quota crossings and the delivery log's JSON. Pure:
//! the registry Durable Object stores events in its outbox in the same serialised operation as
//! the change that makes them, and its alarm delivers them (`edge::webhooks`, `docs/webhooks`
//! in the README).
//!
//! Signing follows the Standard Webhooks specification and is done by the runtime with Web Crypto
//! (`runtime.js` `webhookSignature`, checked against the specification's vector by
//! `tests/webhooks.rs`): the signed content is
//! `{webhook-id}.{webhook-timestamp}.{body}`, the MAC is HMAC-SHA256 keyed with the base64-decoded
//! part of a `whsec_…` secret, and `webhook-signature` is `v1,<base64>`. `webhook-id` is the
//! event's id, the same on every retry, so a receiver dedupes on it; `webhook-timestamp` is the
//! attempt's unix seconds.
//!
//! Invariants: a payload never holds a plaintext key or its hash (only id, hint and the record's
//! public fields); the secret is held decoded, never printed (`Debug` redacts it).

use std::fmt;

use crate::admin::lifecycle::AuditEntry;
use crate::config::ConfigError;
use crate::limit::algorithm::{LimitSpec, LimitState};
use crate::record::{KeyRecord, Status};
use crate::timestamp::Timestamp;

/// Every event type, in the order the docs list them.
pub const EVENT_TYPES: &[&str] =
    &["key.created", "key.updated", "key.enabled", "key.disabled", "key.revoked", "key.rolled", "key.leaked", "key.expiring", "key.quota"];

/// The default retry schedule, seconds after each failed attempt: the Standard Webhooks
/// reference schedule (immediately, then 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h): 8 attempts.
pub const DEFAULT_RETRY_SECONDS: &[u64] = &[5, 300, 1_800, 7_200, 18_000, 36_000, 36_000];
/// Default lead time of `key.expiring`: 7 days.
pub const DEFAULT_EXPIRY_LEAD_SECONDS: u64 = 7 * 86_400;
/// Default quota thresholds, percent of a quota limit.
pub const DEFAULT_QUOTA_THRESHOLDS: &[u64] = &[80, 100];
/// How long one delivery attempt may take before it counts as failed (`timeout`).
pub const ATTEMPT_TIMEOUT_MS: u64 = 15_000;
/// Finished (delivered or failed) events kept per key in the delivery log; older ones are pruned.
pub const LOG_PER_KEY: u32 = 100;
/// Finished events older than this are pruned: 30 days.
pub const KEEP_FINISHED_MS: i64 = 30 * 86_400_000;
/// Due events one alarm run delivers; the alarm fires again at once for the rest.
pub const DELIVERIES_PER_RUN: u32 = 25;

/// `WEBHOOK_*`: where to deliver, what, signed with which secret, on which schedule.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookSettings {
    /// `WEBHOOK_URLS`: the endpoints; every event goes to each.
    pub urls: Vec<String>,
    /// `WEBHOOK_EVENTS`: the event types delivered (default: all of [`EVENT_TYPES`]).
    pub events: Vec<String>,
    /// `WEBHOOK_SECRET`'s key: the base64-decoded part after `whsec_`.
    secret: Vec<u8>,
    /// `WEBHOOK_EXPIRY_LEAD_SECONDS` in ms: how long before `valid_to` `key.expiring` is sent.
    pub expiry_lead_ms: i64,
    /// `WEBHOOK_QUOTA_THRESHOLDS`: percents of a quota limit that send `key.quota`, ascending.
    pub quota_thresholds: Vec<u64>,
    /// `WEBHOOK_RETRY_SECONDS` in ms: the wait after each failed attempt; one attempt more than
    /// entries, then the event is `failed`.
    pub retry_ms: Vec<i64>,
}

impl fmt::Debug for WebhookSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookSettings")
            .field("urls", &self.urls)
            .field("events", &self.events)
            .field("secret", &"whsec_[redacted]")
            .field("expiry_lead_ms", &self.expiry_lead_ms)
            .field("quota_thresholds", &self.quota_thresholds)
            .field("retry_ms", &self.retry_ms)
            .finish()
    }
}

fn err(setting: &'static str, problem: &str) -> ConfigError {
    ConfigError { setting, problem: problem.into() }
}

/// A JSON list of 1 to 5 strings that each pass `allowed`; `None` when unset.
fn strings(
    get: &dyn Fn(&str) -> Option<String>,
    name: &'static str,
    problem: &str,
    allowed: &dyn Fn(&String) -> bool,
) -> Result<Option<Vec<String>>, ConfigError> {
    let Some(text) = get(name) else { return Ok(None) };
    match crate::json::parse::<Vec<String>>(&text) {
        Ok(list) if (1..=5).contains(&list.len()) && list.iter().all(allowed) => Ok(Some(list)),
        _ => Err(err(name, problem)),
    }
}

/// A JSON list (or, for one, a bare number) of `count` integers from `range.0` to `range.1`;
/// `default` when unset. (Read by hand: a `Vec<u64>` decoder would be one more in the wasm for
/// one setting.)
fn integers(
    get: &dyn Fn(&str) -> Option<String>,
    name: &'static str,
    default: &[u64],
    range: (u64, u64),
    count: std::ops::RangeInclusive<usize>,
) -> Result<Vec<u64>, ConfigError> {
    let Some(text) = get(name) else { return Ok(default.to_vec()) };
    let inner = text.trim_matches('"');
    let inner = inner.strip_prefix('[').and_then(|t| t.strip_suffix(']')).unwrap_or(inner);
    // A loop, not `collect::<Result<Vec<_>, _>>()`: the same reading in less wasm.
    let mut list = Vec::new();
    let mut numbers = true;
    if !inner.trim().is_empty() {
        for n in inner.split(',') {
            match n.trim().parse::<u64>() {
                Ok(n) => list.push(n),
                Err(_) => numbers = false,
            }
        }
    }
    match numbers && count.contains(&list.len()) && list.iter().all(|n| (range.0..=range.1).contains(n)) {
        true => Ok(list),
        false => Err(err(name, &format!("must be a JSON list of at most {} integers from {} to {}", count.end(), range.0, range.1))),
    }
}

impl WebhookSettings {
    /// Parses `WEBHOOK_*` from `get` (trimmed, `None` when unset): `None` when `WEBHOOK_URLS` is
    /// unset (no webhooks); the other settings are checked either way.
    pub fn from_settings(get: &dyn Fn(&str) -> Option<String>) -> Result<Option<WebhookSettings>, ConfigError> {
        let loopback = |url: &String| ["http://127.0.0.1:", "http://localhost:"].iter().any(|p| url.starts_with(p));
        let urls =
            strings(get, "WEBHOOK_URLS", "must be a JSON list of 1 to 5 https:// URLs (http:// only on 127.0.0.1 or localhost)", &|url| {
                (url.starts_with("https://") || loopback(url)) && url.len() <= 2048 && !url.bytes().any(|b| b <= b' ')
            })?;
        let events =
            strings(get, "WEBHOOK_EVENTS", "must be a JSON list of 1 to 5 event types of the README, or unset for all", &|event| {
                EVENT_TYPES.contains(&event.as_str())
            })?;
        let secret = match get("WEBHOOK_SECRET") {
            None => None,
            // Never echoed: the problem names the form only.
            Some(text) => Some(
                text.strip_prefix("whsec_")
                    .and_then(crate::leak::base64_decode)
                    .filter(|key| (24..=64).contains(&key.len()))
                    .ok_or_else(|| err("WEBHOOK_SECRET", "must be whsec_ followed by the base64 of 24 to 64 random bytes"))?,
            ),
        };
        let lead = integers(get, "WEBHOOK_EXPIRY_LEAD_SECONDS", &[DEFAULT_EXPIRY_LEAD_SECONDS], (1, 366 * 86_400), 1..=1)?;
        let quota_thresholds = integers(get, "WEBHOOK_QUOTA_THRESHOLDS", DEFAULT_QUOTA_THRESHOLDS, (1, 100), 0..=5)?;
        if quota_thresholds.windows(2).any(|pair| pair[0] >= pair[1]) {
            return Err(err("WEBHOOK_QUOTA_THRESHOLDS", "must be ascending percents, each once"));
        }
        let retry = integers(get, "WEBHOOK_RETRY_SECONDS", DEFAULT_RETRY_SECONDS, (0, 86_400), 0..=10)?;
        let Some(urls) = urls else { return Ok(None) };
        let secret = secret.ok_or_else(|| err("WEBHOOK_SECRET", "is required with WEBHOOK_URLS (wrangler secret put WEBHOOK_SECRET)"))?;
        Ok(Some(WebhookSettings {
            urls,
            events: events.unwrap_or_else(|| EVENT_TYPES.iter().map(|t| t.to_string()).collect()),
            secret,
            expiry_lead_ms: lead.iter().sum::<u64>() as i64 * 1000,
            quota_thresholds,
            retry_ms: retry.iter().map(|s| *s as i64 * 1000).collect(),
        }))
    }

    /// Whether events of type `kind` are delivered.
    pub fn wants(&self, kind: &str) -> bool {
        self.events.iter().any(|e| e == kind)
    }

    /// The headers of one attempt to deliver event `id` at `now_ms`, encoded for the runtime
    /// (`name\nvalue\n…`): `content-type`, `user-agent`, `webhook-id` and `webhook-timestamp`
    /// (unix seconds). The runtime adds `webhook-signature` with Web Crypto (`runtime.js`
    /// `postWebhooks`, keyed with [`WebhookSettings::secret`]).
    pub fn unsigned_headers(&self, id: &str, now_ms: i64) -> String {
        let timestamp = now_ms.div_euclid(1000);
        format!("content-type\napplication/json\nuser-agent\nkeygate-webhooks\nwebhook-id\n{id}\nwebhook-timestamp\n{timestamp}\n")
    }

    /// The signing key (`WEBHOOK_SECRET` decoded), for the runtime's signer only: never logged or
    /// stored.
    pub fn secret(&self) -> &[u8] {
        &self.secret
    }

    /// When to try again after attempt number `attempts` (1 = the first) failed at `now_ms`;
    /// `None` when that was the last attempt.
    pub fn retry_at(&self, attempts: usize, now_ms: i64) -> Option<i64> {
        attempts.checked_sub(1).and_then(|i| self.retry_ms.get(i)).map(|wait| now_ms.saturating_add(*wait))
    }
}

/// A new event id: `evt_` and 16 random base62 characters.
pub fn new_event_id() -> Result<String, getrandom::Error> {
    crate::key::random_base62(16).map(|id| ["evt_", &id].concat())
}

/// One event for the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// `evt_…`: `webhook-id`, the same on every attempt.
    pub id: String,
    /// The key the event is about (the delivery log is per key).
    pub key_id: String,
    /// One of [`EVENT_TYPES`].
    pub kind: &'static str,
    /// Unix ms of the first attempt (now, or later for `key.expiring`).
    pub due_ms: i64,
    /// Events with the same dedupe key are one event (the outbox keeps the first): a
    /// `key.expiring` per key and `valid_to`, a `key.quota` per family, limit, window and
    /// threshold.
    pub dedupe: Option<String>,
    /// The JSON payload, signed as is.
    pub body: String,
}

/// The event type of an audit entry's action (`None`: no event).
pub fn event_type(action: &str) -> Option<&'static str> {
    Some(match action {
        // A roll's replacement is a new key; the old key's `key.rolled` names it.
        "created" | "rolled_to" => "key.created",
        "updated" => "key.updated",
        "enabled" => "key.enabled",
        "disabled" => "key.disabled",
        "revoked" => "key.revoked",
        "rolled" => "key.rolled",
        "leak_reported" => "key.leaked",
        _ => return None,
    })
}

/// `text` as a JSON string.
pub fn quoted(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_else(|_| "null".into())
}

fn quoted_or_null(text: Option<&str>) -> String {
    text.map_or_else(|| "null".into(), quoted)
}

/// The payload: `{"type","timestamp","data"}`, `data` holding `record`'s public fields (never the
/// key or its hash) and then `extra` (`,"name":value…`, JSON). Written as text: a `Value` tree
/// would bring a map type and its code into the wasm for a fixed shape.
fn payload(kind: &str, at_ms: i64, record: &KeyRecord, extra: &str) -> String {
    let valid_to = record.valid_to.map(Timestamp::to_rfc3339);
    [
        r#"{"type":""#,
        kind,
        r#"","timestamp":""#,
        &Timestamp(at_ms).to_rfc3339(),
        r#"","data":{"key_id":"#,
        &quoted(&record.id),
        r#","project":"#,
        &quoted(&record.project),
        r#","name":"#,
        &quoted(&record.name),
        r#","hint":"#,
        &quoted_or_null(record.hint.as_deref()),
        r#","env":""#,
        record.env.as_str(),
        r#"","status":""#,
        record.status.as_str(),
        r#"","valid_to":"#,
        &quoted_or_null(valid_to.as_deref()),
        r#","revision":"#,
        &record.revision.to_string(),
        extra,
        "}}",
    ]
    .concat()
}

/// The event of an audit entry written for `record` (`None` when it makes none or its type is
/// not wanted). `data.changes` is the entry's field changes; a leak adds `reporter` and `source`.
pub fn from_audit(settings: &WebhookSettings, record: &KeyRecord, audit: &AuditEntry, id: String) -> Option<Event> {
    let kind = event_type(&audit.action).filter(|kind| settings.wants(kind))?;
    let changes = serde_json::to_string(&audit.changes).unwrap_or_else(|_| "{}".into());
    let mut extra = [r#","changes":"#, &changes].concat();
    if let Some(reporter) = &audit.reporter {
        extra.push_str(&[r#","reporter":"#, &quoted(reporter)].concat());
    }
    if let Some(source) = &audit.source {
        extra.push_str(&[r#","source":"#, &quoted(source)].concat());
    }
    let at = audit.at.millis();
    Some(Event { id, key_id: record.id.clone(), kind, due_ms: at, dedupe: None, body: payload(kind, at, record, &extra) })
}

/// The dedupe key of `record`'s `key.expiring` for its current `valid_to`.
pub fn expiring_dedupe(record: &KeyRecord) -> Option<String> {
    record.valid_to.map(|to| format!("expiring:{}:{}", record.id, to.millis()))
}

/// The `key.expiring` warning `record` needs: due the lead time before its `valid_to` (now when
/// that has passed), for a key that is not revoked and has not expired yet.
pub fn expiring(settings: &WebhookSettings, record: &KeyRecord, id: String, now_ms: i64) -> Option<Event> {
    let valid_to = record.valid_to.filter(|to| to.millis() > now_ms && record.status != Status::Revoked)?;
    if !settings.wants("key.expiring") {
        return None;
    }
    let due_ms = valid_to.millis().saturating_sub(settings.expiry_lead_ms).max(now_ms);
    let extra = [r#","expires_in_seconds":"#, &((valid_to.millis() - due_ms) / 1000).to_string()].concat();
    let body = payload("key.expiring", due_ms, record, &extra);
    Some(Event { id, key_id: record.id.clone(), kind: "key.expiring", due_ms, dedupe: expiring_dedupe(record), body })
}

/// A quota limit at or over a threshold in its current window, as the limiter sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuotaCrossing {
    /// The limit's name.
    pub limit: String,
    /// Its limit per window.
    pub allowed: u64,
    /// Its window, seconds.
    pub window_seconds: u64,
    /// Unix ms the window started.
    pub window_start: i64,
    /// The threshold reached, percent.
    pub threshold: u64,
    /// Units counted in the window (granted; with leases, some may not be used yet).
    pub count: u64,
}

impl QuotaCrossing {
    /// On the wire (`Op::Quota`): `limit,allowed,window_seconds,window_start,threshold,count`,
    /// one string (the smallest code for serde in the wasm; a limit name has no comma).
    pub fn encode(&self) -> String {
        format!("{},{},{},{},{},{}", self.limit, self.allowed, self.window_seconds, self.window_start, self.threshold, self.count)
    }

    /// Reads [`QuotaCrossing::encode`]'s form; `None` for any other.
    pub fn decode(text: &str) -> Option<QuotaCrossing> {
        let mut parts = text.split(',');
        let limit = parts.next().filter(|name| !name.is_empty())?.to_string();
        let mut number = || parts.next().and_then(|n| n.parse::<u64>().ok());
        let (allowed, window_seconds, window_start, threshold, count) = (number()?, number()?, number()?, number()?, number()?);
        parts.next().is_none().then_some(QuotaCrossing {
            limit,
            allowed,
            window_seconds,
            window_start: window_start as i64,
            threshold,
            count,
        })
    }

    /// What identifies this crossing within one key family (the limiter's memory of what it
    /// reported): window, limit and threshold.
    pub fn name(&self) -> String {
        format!("{}:{}:{}", self.window_start, self.limit, self.threshold)
    }
}

/// Every threshold each quota limit (windows of a day or more) has reached in its window, from the
/// limiter's `specs` and `states` (same order). Rates are never reported.
pub fn quota_crossings(thresholds: &[u64], specs: &[LimitSpec], states: &[LimitState]) -> Vec<QuotaCrossing> {
    let mut crossings = Vec::new();
    for (spec, state) in specs.iter().zip(states).filter(|(spec, state)| spec.is_quota() && state.count > 0) {
        for threshold in thresholds.iter().filter(|t| state.count.saturating_mul(100) >= spec.limit.saturating_mul(**t)) {
            crossings.push(QuotaCrossing {
                limit: spec.name.clone(),
                allowed: spec.limit,
                window_seconds: spec.window_seconds,
                window_start: state.mark,
                threshold: *threshold,
                count: state.count,
            });
        }
    }
    crossings
}

/// The `key.quota` event of `crossing` for `record` (the key whose request crossed it).
pub fn quota(settings: &WebhookSettings, record: &KeyRecord, crossing: &QuotaCrossing, id: String, now_ms: i64) -> Option<Event> {
    if !settings.wants("key.quota") {
        return None;
    }
    let window_end = crossing.window_start.saturating_add(crossing.window_seconds as i64 * 1000);
    let extra = [
        r#","quota":{"limit":"#,
        &quoted(&crossing.limit),
        r#","allowed":"#,
        &crossing.allowed.to_string(),
        r#","window_seconds":"#,
        &crossing.window_seconds.to_string(),
        r#","window_start":""#,
        &Timestamp(crossing.window_start).to_rfc3339(),
        r#"","resets_at":""#,
        &Timestamp(window_end).to_rfc3339(),
        r#"","threshold_percent":"#,
        &crossing.threshold.to_string(),
        r#","used":"#,
        &crossing.count.to_string(),
        "}",
    ]
    .concat();
    let dedupe = format!("quota:{}:{}", record.family_id(), crossing.name());
    let body = payload("key.quota", now_ms, record, &extra);
    Some(Event { id, key_id: record.id.clone(), kind: "key.quota", due_ms: now_ms, dedupe: Some(dedupe), body })
}

/// The attempts list `attempts` (JSON) with one more: `{"at", "status"}` for an HTTP answer,
/// `{"at", "error"}` for none (`timeout` or `network`). `status` is the runtime's: an HTTP
/// status, `-1` timeout, else none.
pub fn add_attempt(attempts: &str, at_ms: i64, status: i64) -> String {
    let outcome = match status {
        100..=599 => [r#""status":"#, &status.to_string()].concat(),
        -1 => r#""error":"timeout""#.to_string(),
        _ => r#""error":"network""#.to_string(),
    };
    let attempt = [r#"{"at":""#, &Timestamp(at_ms).to_rfc3339(), r#"","#, &outcome, "}"].concat();
    match attempts.strip_suffix(']').filter(|list| list.len() > 1) {
        Some(list) => [list, ",", &attempt, "]"].concat(),
        None => ["[", &attempt, "]"].concat(),
    }
}

/// One request of a delivery batch for the runtime's `postWebhooks`: `url`, headers
/// (`name\nvalue\n…`) and body, each ended by U+0001. JSON text escapes every control
/// character, a configured URL has none, and the headers are ASCII text: U+0001 never occurs
/// inside a field.
pub fn batch_entry(url: &str, headers: &str, body: &str) -> String {
    [url, "\u{1}", headers, "\u{1}", body, "\u{1}"].concat()
}

/// Whether an attempt's status means delivered (any 2xx, as the specification says).
pub fn delivered(status: i64) -> bool {
    (200..300).contains(&status)
}

/// The delivery log's JSON body, `{"items": [...]}`, from its items' JSON (built by the
/// registry's query, newest first).
pub fn log(items: &[String]) -> String {
    ["{\"items\":[", &items.join(","), "]}"].concat()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admin::lifecycle::FieldChange;
    use serde_json::{json, Value};
    use std::collections::BTreeMap;

    fn lookup<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| vars.iter().find(|(n, _)| *n == name).map(|(_, v)| v.to_string())
    }

    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

    fn settings() -> WebhookSettings {
        WebhookSettings::from_settings(&lookup(&[("WEBHOOK_URLS", r#"["https://hooks.example/k"]"#), ("WEBHOOK_SECRET", SECRET)]))
            .unwrap()
            .unwrap()
    }

    fn record() -> KeyRecord {
        serde_json::from_str(crate::record::tests::sample_json()).unwrap()
    }

    #[test]
    fn unsigned_headers_name_the_event_and_the_attempts_unix_second() {
        let headers = settings().unsigned_headers("msg_p5jXN8AQM9LWM0D4loKWxJek", 1_614_265_330_999);
        assert_eq!(
            headers,
            "content-type\napplication/json\nuser-agent\nkeygate-webhooks\nwebhook-id\nmsg_p5jXN8AQM9LWM0D4loKWxJek\nwebhook-timestamp\n1614265330\n"
        );
        assert_eq!(
            settings().secret(),
            crate::leak::base64_decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap(),
            "the whsec_ part, decoded"
        );
    }

    #[test]
    fn settings_parse_with_defaults_and_refuse_bad_values() {
        assert_eq!(WebhookSettings::from_settings(&lookup(&[])).unwrap(), None, "unset: no webhooks");
        assert_eq!(WebhookSettings::from_settings(&lookup(&[("WEBHOOK_SECRET", SECRET)])).unwrap(), None);
        let s = settings();
        assert_eq!(s.events.len(), EVENT_TYPES.len());
        assert_eq!((s.expiry_lead_ms, s.quota_thresholds.clone()), (7 * 86_400_000, vec![80, 100]));
        assert_eq!(s.retry_ms.len(), 7);
        assert!(!format!("{s:?}").contains("MfKQ9r8G"), "the secret is redacted");
        let custom = WebhookSettings::from_settings(&lookup(&[
            ("WEBHOOK_URLS", r#"["http://127.0.0.1:9/a","https://b.example/"]"#),
            ("WEBHOOK_SECRET", SECRET),
            ("WEBHOOK_EVENTS", r#"["key.revoked"]"#),
            ("WEBHOOK_EXPIRY_LEAD_SECONDS", "30"),
            ("WEBHOOK_QUOTA_THRESHOLDS", "[50, 100]"),
            ("WEBHOOK_RETRY_SECONDS", "[1,0]"),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(custom.urls.len(), 2);
        assert!(custom.wants("key.revoked") && !custom.wants("key.created"));
        assert_eq!(
            (custom.expiry_lead_ms, custom.quota_thresholds.clone(), custom.retry_ms.clone()),
            (30_000, vec![50, 100], vec![1000, 0])
        );
        let urls = r#"["https://a.example/"]"#;
        // (what, settings, the setting reported)
        let rows: &[(&str, &[(&str, &str)], &str)] = &[
            ("no secret", &[("WEBHOOK_URLS", urls)], "WEBHOOK_SECRET"),
            ("secret without prefix", &[("WEBHOOK_URLS", urls), ("WEBHOOK_SECRET", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")], "WEBHOOK_SECRET"),
            ("secret too short", &[("WEBHOOK_URLS", urls), ("WEBHOOK_SECRET", "whsec_c2hvcnQ=")], "WEBHOOK_SECRET"),
            ("secret not base64", &[("WEBHOOK_URLS", urls), ("WEBHOOK_SECRET", "whsec_!!!!")], "WEBHOOK_SECRET"),
            ("http off loopback", &[("WEBHOOK_URLS", r#"["http://hooks.example/"]"#), ("WEBHOOK_SECRET", SECRET)], "WEBHOOK_URLS"),
            ("not a list", &[("WEBHOOK_URLS", "https://a.example/"), ("WEBHOOK_SECRET", SECRET)], "WEBHOOK_URLS"),
            ("empty list", &[("WEBHOOK_URLS", "[]"), ("WEBHOOK_SECRET", SECRET)], "WEBHOOK_URLS"),
            ("unknown event", &[("WEBHOOK_EVENTS", r#"["key.exploded"]"#)], "WEBHOOK_EVENTS"),
            ("threshold over 100", &[("WEBHOOK_QUOTA_THRESHOLDS", "[80,120]")], "WEBHOOK_QUOTA_THRESHOLDS"),
            ("threshold 0", &[("WEBHOOK_QUOTA_THRESHOLDS", "[0]")], "WEBHOOK_QUOTA_THRESHOLDS"),
            ("thresholds not ascending", &[("WEBHOOK_QUOTA_THRESHOLDS", "[100,80]")], "WEBHOOK_QUOTA_THRESHOLDS"),
            ("threshold not a number", &[("WEBHOOK_QUOTA_THRESHOLDS", "[80,x]")], "WEBHOOK_QUOTA_THRESHOLDS"),
            ("retry too long", &[("WEBHOOK_RETRY_SECONDS", "[86401]")], "WEBHOOK_RETRY_SECONDS"),
            ("lead 0", &[("WEBHOOK_EXPIRY_LEAD_SECONDS", "0")], "WEBHOOK_EXPIRY_LEAD_SECONDS"),
            ("lead not a number", &[("WEBHOOK_EXPIRY_LEAD_SECONDS", "a week")], "WEBHOOK_EXPIRY_LEAD_SECONDS"),
        ];
        for (what, vars, setting) in rows {
            let error = WebhookSettings::from_settings(&lookup(vars)).expect_err(what);
            assert_eq!(error.setting, *setting, "{what}");
            assert!(!error.problem.contains("MfKQ9r8G") && !error.problem.contains("c2hvcnQ"), "{what}: never echoes the secret");
        }
    }

    #[test]
    fn retries_follow_the_schedule_then_stop() {
        let s = settings();
        assert_eq!(s.retry_at(1, 1_000), Some(6_000), "5 s after the first failure");
        assert_eq!(s.retry_at(2, 1_000), Some(301_000));
        assert_eq!(s.retry_at(7, 0), Some(36_000_000));
        assert_eq!(s.retry_at(8, 0), None, "8 attempts in all");
        assert_eq!(s.retry_at(0, 0), None);
    }

    #[test]
    fn audit_entries_become_events_with_public_fields_only() {
        let s = settings();
        let mut record = record();
        record.hint = Some("kg_live_…abcd".into());
        let rows = [
            ("created", Some("key.created")),
            ("rolled_to", Some("key.created")),
            ("updated", Some("key.updated")),
            ("enabled", Some("key.enabled")),
            ("disabled", Some("key.disabled")),
            ("revoked", Some("key.revoked")),
            ("rolled", Some("key.rolled")),
            ("leak_reported", Some("key.leaked")),
            ("viewed", None),
        ];
        for (action, expected) in rows {
            let audit = AuditEntry {
                at: Timestamp(1_800_000_000_000),
                action: action.into(),
                revision: 2,
                changes: [("name".to_string(), FieldChange { from: "a".into(), to: "b".into() })].into(),
                reporter: None,
                source: Some("https://github.com/x".into()),
            };
            let event = from_audit(&s, &record, &audit, "evt_1".into());
            assert_eq!(event.as_ref().map(|e| e.kind), expected, "{action}");
            let Some(event) = event else { continue };
            let body: Value = serde_json::from_str(&event.body).unwrap();
            assert_eq!(body["type"], expected.unwrap());
            assert_eq!(body["timestamp"], "2027-01-15T08:00:00.000Z");
            assert_eq!(body["data"]["key_id"], record.id.as_str());
            assert_eq!(body["data"]["hint"], "kg_live_…abcd");
            assert_eq!(body["data"]["changes"]["name"]["to"], "b");
            assert_eq!(body["data"]["source"], "https://github.com/x");
            assert!(body["data"].get("hash").is_none() && body["data"].get("key").is_none());
            assert_eq!((event.due_ms, event.dedupe), (1_800_000_000_000, None));
        }
        let only_revoked = WebhookSettings { events: vec!["key.revoked".into()], ..s };
        let audit =
            AuditEntry { at: Timestamp(0), action: "updated".into(), revision: 2, changes: BTreeMap::new(), reporter: None, source: None };
        assert_eq!(from_audit(&only_revoked, &record, &audit, "evt_1".into()), None, "filtered out");
    }

    #[test]
    fn expiry_warnings_are_due_the_lead_time_before_valid_to() {
        let s = WebhookSettings { expiry_lead_ms: 60_000, ..settings() };
        let mut record = record();
        let now = 1_800_000_000_000;
        record.valid_to = Some(Timestamp(now + 600_000));
        let event = expiring(&s, &record, "evt_1".into(), now).unwrap();
        assert_eq!((event.kind, event.due_ms), ("key.expiring", now + 540_000));
        assert_eq!(event.dedupe, Some(format!("expiring:{}:{}", record.id, now + 600_000)));
        let body: Value = serde_json::from_str(&event.body).unwrap();
        assert_eq!(body["data"]["expires_in_seconds"], 60);
        record.valid_to = Some(Timestamp(now + 10_000));
        assert_eq!(expiring(&s, &record, "evt_1".into(), now).unwrap().due_ms, now, "inside the lead time: now");
        record.valid_to = Some(Timestamp(now));
        assert_eq!(expiring(&s, &record, "evt_1".into(), now), None, "already expired");
        record.valid_to = None;
        assert_eq!(expiring(&s, &record, "evt_1".into(), now), None, "no end");
        record.valid_to = Some(Timestamp(now + 600_000));
        record.status = Status::Revoked;
        assert_eq!(expiring(&s, &record, "evt_1".into(), now), None, "revoked");
    }

    #[test]
    fn quota_crossings_are_the_thresholds_reached_by_quota_limits() {
        let specs = [LimitSpec::new("minute", 10, 60), LimitSpec::new("daily", 10, 86_400)];
        let day = 1_800_000_000_000 / 86_400_000 * 86_400_000;
        let at = |count| [LimitState { mark: 0, count: 0 }, LimitState { mark: day, count }];
        let reached = |count| quota_crossings(&[80, 100], &specs, &at(count)).iter().map(|c| c.threshold).collect::<Vec<_>>();
        assert_eq!(reached(7), Vec::<u64>::new());
        assert_eq!(reached(8), vec![80]);
        assert_eq!(reached(10), vec![80, 100]);
        let crossing = &quota_crossings(&[80], &specs, &at(9))[0];
        assert_eq!((crossing.limit.as_str(), crossing.window_start, crossing.count), ("daily", day, 9));
        let rate_only = [LimitState { mark: i64::MAX, count: 10 }];
        assert!(quota_crossings(&[80], &specs[..1], &rate_only).is_empty(), "a rate is never a quota warning");
        assert_eq!(QuotaCrossing::decode(&crossing.encode()).as_ref(), Some(crossing));
        assert_eq!(crossing.encode(), format!("daily,10,86400,{day},80,9"));
        for bad in [
            "",
            "daily",
            ",10,86400,0,80,9",
            "daily,10,86400,0,80",
            "daily,10,86400,0,80,9,1",
            "daily,x,86400,0,80,9",
            "daily,10,86400,-1,80,9",
        ] {
            assert_eq!(QuotaCrossing::decode(bad), None, "{bad}");
        }
        let event = quota(&settings(), &record(), crossing, "evt_1".into(), day + 5).unwrap();
        assert_eq!(event.dedupe, Some(format!("quota:{}:{day}:daily:80", record().family_id())));
        let body: Value = serde_json::from_str(&event.body).unwrap();
        assert_eq!((body["data"]["quota"]["threshold_percent"].as_u64(), body["data"]["quota"]["used"].as_u64()), (Some(80), Some(9)));
    }

    #[test]
    fn attempts_and_the_log_render_as_documented() {
        let one = add_attempt("[]", 0, 500);
        assert_eq!(serde_json::from_str::<Value>(&one).unwrap(), json!([{"at": "1970-01-01T00:00:00.000Z", "status": 500}]));
        let three = add_attempt(&add_attempt(&one, 1_000, -1), 2_000, 0);
        let three: Value = serde_json::from_str(&three).unwrap();
        assert_eq!((three[1]["error"].as_str(), three[2]["error"].as_str()), (Some("timeout"), Some("network")));
        assert_eq!(three[2]["at"], "1970-01-01T00:00:02.000Z");
        assert!(delivered(204) && !delivered(301) && !delivered(0));
        let log: Value = serde_json::from_str(&log(&[r#"{"id":"evt_1"}"#.into(), r#"{"id":"evt_2"}"#.into()])).unwrap();
        assert_eq!(log, json!({"items": [{"id": "evt_1"}, {"id": "evt_2"}]}));
        assert_eq!(serde_json::from_str::<Value>(&super::log(&[])).unwrap(), json!({"items": []}));
        assert!(new_event_id().unwrap().starts_with("evt_"));
        assert_eq!(batch_entry("https://a/", "h\nv\n", "{}"), "https://a/\u{1}h\nv\n\u{1}{}\u{1}");
    }

    #[test]
    fn payloads_escape_text_fields() {
        let mut record = record();
        record.name = "quote \" and \\ and \n".into();
        record.hint = None;
        let body: Value = serde_json::from_str(&payload("key.updated", 0, &record, r#","extra":1"#)).unwrap();
        assert_eq!(body["data"]["name"], "quote \" and \\ and \n");
        assert_eq!((body["data"]["hint"].clone(), body["data"]["extra"].clone()), (Value::Null, json!(1)));
        assert_eq!(body["data"]["valid_to"], "2030-01-01T00:00:00.000Z");
    }
}
