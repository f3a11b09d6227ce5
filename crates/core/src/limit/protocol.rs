//! Messages between the worker and a key family's limiter Durable Object (internal).
//!
//! Encoded as serde's default, externally tagged enums (`{"add_refused":{"key_id":"key_a",
//! "count":2}}`, a variant of one value as `{"usage":"key_a"}`, a unit variant as `"done"`), like
//! the registry's messages (see `admin::protocol`, which says why this form): decoded without
//! buffering, unknown fields inside a variant ignored, anything else malformed refused.

use serde::{Deserialize, Serialize};

use super::algorithm::{Decision, LimitSpec};
use super::lease::{Grant, Renewal};
use crate::record::KeyRecord;
use crate::timestamp::Timestamp;

/// A request to a limiter.
// Messages are built once per call and moved straight into JSON: boxing would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LimiterOp {
    /// Renew an isolate's lease of a key family, sent by a request of one key: `(key id, the
    /// worker's record revision of it, lease id (the isolate's), the renewal, the key's
    /// limits)`; the renewal's revision is the lease's epoch (see `gate::leases`). Answered
    /// `Stale` with the key's newer record (nothing granted, the lease is not renewed), or
    /// `Lease` with a grant (`record_changed`: a newer epoch, the isolate drops its units).
    /// Lease id [`HIT`]: decide one request outside any lease (a "hit": with `LEASE_MS = 0`
    /// every request; with leases, one that finds its lease empty while a renewal is in
    /// flight, or whose key is not confirmed yet, or of a route whose credits cost is not 1),
    /// granted 1 or refused; its renewal's `wanted` is the request's cost in credits.
    /// A key with credits has the limit `credits::CREDITS` among its limits.
    Lease(String, u64, u64, Renewal, Vec<LimitSpec>),
    /// Is the worker's record `(key id, revision)` stale? Answered `Stale` with the newer
    /// record, or `Done`. (Asked before refusing a disabled or out-of-window key, which the admin
    /// API may have just re-enabled.) No usage is counted.
    IsStale(String, u64),
    /// The admin API changed a key: remember its newest record (sent before KV is written).
    Mark(KeyRecord),
    /// Requests refused inside a worker isolate (never reached the limiter), to count in usage:
    /// `(key id, count)`.
    AddRefused(String, u64),
    /// The usage of the key with this id.
    Usage(String),
    /// One admin authentication attempt: `(address bucket, failed, limits)`, the limits being
    /// `[address, global]` (see `admin::auth_limit`); only a failed one is charged.
    /// Sent only to the reserved instance [`ADMIN_AUTH_INSTANCE`]. Answered with `Decided`.
    AdminAuth(String, bool, Vec<LimitSpec>),
    /// The admin API changes (or, adding 0, reads) the family's credits balance
    /// ([`crate::limit::credits::change`]; never below zero): [`credits`] makes it, [`credits_of`]
    /// reads it (one string of numbers, like a renewal: no decoder of its own in the wasm).
    /// Answered with `Decided`: the balance as the credits limit's `remaining`.
    Credits(String),
}

/// The lease id of a [`LimiterOp::Lease`] that decides one request outside any lease.
pub const HIT: u64 = 0;

/// A hit: one request of `key_id` (record `revision`) costing `cost` credits under `limits`.
pub fn hit(key_id: &str, revision: u64, limits: &[LimitSpec], cost: u64) -> LimiterOp {
    LimiterOp::Lease(key_id.to_string(), revision, HIT, Renewal(0, 0, 0, 0, 0, cost, 1), limits.to_vec())
}

/// A [`LimiterOp::Credits`]: set (else add) `amount` under the key's credits limit `spec`, as
/// `"set,amount,limit,window_seconds"` (a negative amount in two's complement).
pub fn credits(spec: &LimitSpec, set: bool, amount: i64) -> LimiterOp {
    LimiterOp::Credits(format!("{},{},{},{}", u8::from(set), amount as u64, spec.limit, spec.window_seconds))
}

/// What a [`LimiterOp::Credits`] says: `(the credits limit, set, amount)`.
pub fn credits_of(text: &str) -> Option<(LimitSpec, bool, i64)> {
    let [set, amount, limit, window] = crate::limit::lease::numbers(text)?;
    Some((LimitSpec::new(crate::limit::credits::CREDITS, limit, window), set == 1, amount as i64))
}

/// The limiter instance that counts failed admin authentications. Other instances are named by
/// key ids (`key_` + base62), which never contain `-`, so this name cannot be a key family.
pub const ADMIN_AUTH_INSTANCE: &str = "admin-auth";

/// The limiter's answer.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LimiterReply {
    /// The worker's copy of the record is older than this one (to `Lease` or `IsStale`): check
    /// again with it.
    Stale(KeyRecord),
    /// The limits' decision (to `AdminAuth`).
    Decided(Decision),
    /// A lease grant, or a hit's (to `Lease`).
    Lease(Grant),
    /// Usage of one key: the admin API's answer, a [`Usage`] as JSON text written by the limiter
    /// (the worker passes it on; no decoder of `Usage` in the worker's wasm).
    Usage(String),
    /// Nothing to return.
    Done,
}

/// Per-day request counts of one key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DayUsage {
    /// `YYYY-MM-DD` (UTC).
    pub date: String,
    pub allowed: u64,
    pub refused: u64,
}

/// A key's usage as the admin API reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    pub key_id: String,
    pub last_used_at: Option<Timestamp>,
    /// Most recent first, at most 90 days.
    pub days: Vec<DayUsage>,
}

/// `YYYY-MM-DD` of a unix-millis instant (UTC).
pub fn day_of(now_ms: i64) -> String {
    Timestamp(now_ms).to_rfc3339()[..10].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::assert_round_trips;

    /// Every variant decodes back to itself.
    #[test]
    fn messages_round_trip() {
        let record: KeyRecord = serde_json::from_str(crate::record::tests::sample_json()).unwrap();
        let spec = LimitSpec::new("minute", 60, 60);
        let ops = [
            hit("key_a", 3, &[spec.clone(), spec.clone()], 1),
            credits(&crate::limit::credits::Credits::default().spec(), true, -5),
            LimiterOp::IsStale("key_a".into(), 3),
            LimiterOp::Mark(record.clone()),
            LimiterOp::AddRefused("key_a".into(), 9),
            LimiterOp::Usage("key_a".into()),
            LimiterOp::Lease("key_a".into(), 3, u64::MAX, Renewal(3, 1, 2, 3, 4, 5, 1), vec![spec.clone()]),
            LimiterOp::AdminAuth("203.0.113.7".into(), true, vec![spec.clone(), spec]),
        ];
        ops.into_iter().for_each(assert_round_trips);
        let mut states = vec![Default::default()];
        let decision = crate::limit::algorithm::decide(&[LimitSpec::new("m", 1, 60)], &mut states, 1_000);
        let usage = Usage {
            key_id: "key_a".into(),
            last_used_at: Some(Timestamp(1_000)),
            days: vec![DayUsage { date: "1970-01-01".into(), allowed: 1, refused: 2 }],
        };
        let mut ledger = crate::limit::lease::LeaseLedger::new(1_000, 3, vec![LimitSpec::new("m", 1, 60)]);
        let grant = ledger.grant(7, "key_a", &Renewal(3, 0, 0, 0, 0, 2, 1), 1_000);
        assert!(grant.decision.is_some());
        let replies = [
            LimiterReply::Stale(record),
            LimiterReply::Decided(decision),
            LimiterReply::Lease(grant),
            LimiterReply::Usage(serde_json::to_string(&usage).unwrap()),
            LimiterReply::Done,
        ];
        replies.into_iter().for_each(assert_round_trips);
    }

    #[test]
    fn malformed_messages_are_refused() {
        assert_eq!(serde_json::to_string(&LimiterOp::AddRefused("key_a".into(), 2)).unwrap(), r#"{"add_refused":["key_a",2]}"#);
        let rows: &[(&str, &str)] = &[
            ("the internally tagged form", r#"{"op":"usage","key_id":"key_a"}"#),
            ("unknown variant", r#"{"fresh":{"key_id":"key_a","revision":1}}"#),
            ("missing value", r#"{"lease":["key_a",1,0,"1,0,0,0,0,1,1"]}"#),
            ("a value too many", r#"{"add_refused":["key_a",1,2]}"#),
            ("named fields", r#"{"add_refused":{"key_id":"key_a","count":1}}"#),
            ("negative count", r#"{"add_refused":["key_a",-1]}"#),
            (
                "a limit with an unknown field",
                r#"{"lease":["k",1,0,"1,0,0,0,0,1,1",[{"name":"m","limit":1,"window_seconds":1,"burst":2}]]}"#,
            ),
            ("two variants", r#"{"usage":"key_a","mark":{}}"#),
            ("a list", r#"["usage","key_a"]"#),
            ("a renewal short of a number", r#"{"lease":["key_a",1,1,"3,0,0,0,0,1",[]]}"#),
            ("a renewal with a number too many", r#"{"lease":["key_a",1,1,"3,0,0,0,0,1,1,1",[]]}"#),
            ("a negative number in a renewal", r#"{"lease":["key_a",1,1,"3,-1,0,0,0,1,1",[]]}"#),
            ("a negative lease id", r#"{"lease":["key_a",1,-1,"3,0,0,0,0,1,1",[]]}"#),
        ];
        for (what, json) in rows {
            assert!(serde_json::from_str::<LimiterOp>(json).is_err(), "{what}: {json}");
        }
        assert!(serde_json::from_str::<LimiterReply>(r#"{"stale":{}}"#).is_err(), "a stale reply carries the record");
        assert!(serde_json::from_str::<LimiterReply>(r#"{"lease":["1,2,0,0,0,0,0",null]}"#).is_err(), "record_changed is 0 or 1");
        assert!(serde_json::from_str::<LimiterReply>(r#"{"lease":["1,0,1,0,0,0",null]}"#).is_err(), "a grant is 7 numbers");
        assert_eq!(
            serde_json::to_string(&LimiterOp::Lease("key_a".into(), 2, 7, Renewal(3, 1, 0, 0, 0, 8, 1), Vec::new())).unwrap(),
            r#"{"lease":["key_a",2,7,"3,1,0,0,0,8,1",[]]}"#
        );
        assert_eq!(serde_json::to_string(&LimiterReply::Done).unwrap(), r#""done""#);
    }

    #[test]
    fn a_credits_change_travels_as_numbers() {
        let spec = crate::limit::credits::Credits::default().spec();
        for (set, amount) in [(true, 0), (true, 1_000_000_000_000), (false, -5), (false, 7)] {
            let LimiterOp::Credits(text) = credits(&spec, set, amount) else { panic!() };
            assert_eq!(credits_of(&text), Some((spec.clone(), set, amount)), "{text}");
        }
        assert_eq!(credits_of("1,5,0"), None);
        assert_eq!(credits_of("1,5,0,0,0"), None);
    }

    #[test]
    fn day_is_utc_date() {
        assert_eq!(day_of(0), "1970-01-01");
        assert_eq!(day_of(86_400_000 - 1), "1970-01-01");
        assert_eq!(day_of(86_400_000), "1970-01-02");
    }
}
