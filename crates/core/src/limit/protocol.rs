//! Messages between the worker and a key family's limiter Durable Object (internal).

use serde::{Deserialize, Serialize};

use super::algorithm::{Decision, LimitSpec};
use crate::admin::protocol::tagged_deserialize;
use crate::record::KeyRecord;
use crate::timestamp::Timestamp;

/// A request to a limiter.
// Messages are built once per call and moved straight into JSON: boxing would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum LimiterOp {
    /// Decide one request of `key_id` (whose cached record has `revision`) against `limits`.
    Hit { key_id: String, revision: u64, limits: Vec<LimitSpec> },
    /// Is there a record of `key_id` newer than `revision`? (Asked before refusing a disabled or
    /// out-of-window key, which the admin API may have just re-enabled.) No usage is counted.
    Fresh { key_id: String, revision: u64 },
    /// The admin API changed a key: remember its newest record (sent before KV is written).
    Mark { record: KeyRecord },
    /// Requests refused inside a worker isolate (never reached the limiter), to count in usage.
    AddRefused { key_id: String, count: u64 },
    /// A key's usage.
    Usage { key_id: String },
    /// One admin authentication attempt from address bucket `address`, judged against `limits`
    /// (`[address, global]`, see [`crate::admin::auth_limit`]); only a `failed` one is charged.
    /// Sent only to the reserved instance [`ADMIN_AUTH_INSTANCE`]. Answered with `Decided`.
    AdminAuth { address: String, failed: bool, limits: Vec<LimitSpec> },
}

/// The limiter instance that counts failed admin authentications. Other instances are named by
/// key ids (`key_` + base62), which never contain `-`, so this name cannot be a key family.
pub const ADMIN_AUTH_INSTANCE: &str = "admin-auth";

/// The limiter's answer.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "reply", rename_all = "snake_case")]
pub enum LimiterReply {
    /// The worker's copy of the record is older than this one: check again with it.
    Stale { record: KeyRecord },
    /// The limits' decision.
    Decided { decision: Decision },
    /// Usage of one key.
    Usage { usage: Usage },
    /// Nothing to return.
    Done,
}

// Decoded without serde's buffering: see `tagged_deserialize`.
tagged_deserialize!(LimiterOp, "op", {
    "hit" => Hit { key_id: String, revision: u64, limits: Vec<LimitSpec> },
    "fresh" => Fresh { key_id: String, revision: u64 },
    "mark" => Mark { record: KeyRecord },
    "add_refused" => AddRefused { key_id: String, count: u64 },
    "usage" => Usage { key_id: String },
    "admin_auth" => AdminAuth { address: String, failed: bool, limits: Vec<LimitSpec> },
});

tagged_deserialize!(LimiterReply, "reply", {
    "stale" => Stale { record: KeyRecord },
    "decided" => Decided { decision: Decision },
    "usage" => Usage { usage: Usage },
    "done" => Done {},
});

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

    #[test]
    fn messages_round_trip() {
        let record: KeyRecord = serde_json::from_str(crate::record::tests::sample_json()).unwrap();
        let spec = LimitSpec::new("minute", 60, 60);
        let ops = [
            LimiterOp::Hit { key_id: "key_a".into(), revision: 3, limits: vec![spec.clone(), spec] },
            LimiterOp::Fresh { key_id: "key_a".into(), revision: 3 },
            LimiterOp::Mark { record: record.clone() },
            LimiterOp::AddRefused { key_id: "key_a".into(), count: 9 },
            LimiterOp::Usage { key_id: "key_a".into() },
            LimiterOp::AdminAuth {
                address: "203.0.113.7".into(),
                failed: true,
                limits: crate::admin::auth_limit::AdminAuthLimits::default().specs(),
            },
        ];
        for op in ops {
            let json = serde_json::to_string(&op).unwrap();
            assert_eq!(serde_json::to_string(&serde_json::from_str::<LimiterOp>(&json).unwrap()).unwrap(), json);
        }
        let mut states = vec![Default::default()];
        let decision = crate::limit::algorithm::decide(&[LimitSpec::new("m", 1, 60)], &mut states, 1_000);
        let usage = Usage {
            key_id: "key_a".into(),
            last_used_at: Some(Timestamp(1_000)),
            days: vec![DayUsage { date: "1970-01-01".into(), allowed: 1, refused: 2 }],
        };
        let replies =
            [LimiterReply::Stale { record }, LimiterReply::Decided { decision }, LimiterReply::Usage { usage }, LimiterReply::Done];
        for reply in replies {
            let json = serde_json::to_string(&reply).unwrap();
            assert_eq!(serde_json::to_string(&serde_json::from_str::<LimiterReply>(&json).unwrap()).unwrap(), json);
        }
        assert!(serde_json::from_str::<LimiterOp>(r#"{"key_id":"key_a","op":"usage"}"#).is_err(), "the tag comes first");
    }

    #[test]
    fn day_is_utc_date() {
        assert_eq!(day_of(0), "1970-01-01");
        assert_eq!(day_of(86_400_000 - 1), "1970-01-01");
        assert_eq!(day_of(86_400_000), "1970-01-02");
    }
}
