//! Messages between the worker's admin handler and the registry Durable Object (internal).
//!
//! The worker authenticates, validates and generates key material; only the key's hash and
//! hint cross into the registry, never the plaintext. A change arrives validated (a
//! PATCH's body, which the registry reads again into an
//! [`UpdateKey`](crate::admin::request::UpdateKey), a create's record with
//! its audit entry): the registry applies and stores it.
//!
//! Encoding: serde's derive with its default, externally tagged form: a variant of one value as
//! `{"get":"key_a"}`, of several as a list (`{"update":["key_a",{…}]}`), a unit variant as
//! `"done"`. Of serde's forms this is the smallest in the wasm: it decodes straight from the
//! input, while the internally and adjacently tagged forms buffer the message and decode every
//! nested type a second time from the buffer. For the same reason every variant is a newtype or
//! tuple variant: each struct variant costs its own decoder (for a list and for an object, with
//! a decoder of its field names), a tuple variant only a list's (`Register`, `Roll` and
//! `Rolled` had named fields until that cost ~1.9 KB of gzipped wasm). Where positions could be
//! confused (`Register`'s two strings, `Roll`'s four), the variant's doc names them in order;
//! they are built only in the worker's `edge/admin.rs` and taken apart only in the registry,
//! and the round-trip test below covers each. Unknown fields inside a nested struct (a record,
//! a change) are ignored, as serde's derive does; an unknown or missing variant, a missing
//! value, a value too many or any other shape is an error.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::admin::lifecycle::AuditEntry;
use crate::error::GatewayError;
use crate::record::{KeyRecord, Status};

// Messages are built once per admin call and moved straight into JSON: boxing the large
// variants would buy nothing.
#[allow(clippy::large_enum_variant)]
/// An operation on one project's registry (or, for `Register`/`Resolve`, the id directory).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    /// Store a new key: (record, hash, its `created` audit entry), the record and the entry from
    /// [`crate::admin::lifecycle::create`].
    Create(KeyRecord, String, AuditEntry),
    /// One page of keys: `(only this status, after this cursor, at most this many)`.
    List(Option<Status>, Option<String>, usize),
    /// One key, by id.
    Get(String),
    /// Apply a validated PATCH to the stored record: `(key id, the edge's
    /// [`crate::admin::request::UpdateKey::may_have_no_permissions`], the body the edge validated)`, read again by
    /// [`crate::admin::request::validated_update`] ([`crate::admin::lifecycle::update`]).
    Update(String, bool, String),
    /// Revoke the key with this id (a tombstone).
    Revoke(String),
    /// Roll to a new key whose hash and hint the worker computed: `(key id, new key's id, new
    /// key's hash (hex), new key's hint, grace seconds, seconds the new key must have been in
    /// use, seconds the old key must have been unused)`; with the sixth (an adaptive grace,
    /// [`crate::rotation`]) the grace seconds are the maximum.
    Roll(String, String, String, String, u64, Option<u64>, Option<u64>),
    /// The audit log of the key with this id.
    Audit(String),
    /// Directory: remember which project owns a key: `(key id, project)`.
    Register(String, String),
    /// Directory: which project owns the key with this id.
    Resolve(String),
    /// A verified GitHub leak report: `(key id, LEAK_ACTION's name, source URL)`; act by the
    /// policy, once per source ([`crate::leak::apply`]). Plain strings: smallest in the wasm.
    Leaked(String, String, String),
    /// Change the credits balance of a key with credits, told to the key family's limiter and
    /// audited (`credits_set`, `credits_added`); answered `Credits` with the balance after it.
    /// One string, `"<key id>,<set 0|1>,<amount>"` ([`credits`], [`credits_of`]; a negative
    /// amount in two's complement): no decoder of its own in the wasm.
    Credits(String),
    /// Keys of this project used since the last report: `(key id, unix ms of the last use)`,
    /// batched by the worker's isolates (see `edge::seen`).
    Seen(Vec<(String, i64)>),
    /// The delivery log of the key with this id ([`crate::webhook::log`]), answered `Json`.
    Webhooks(String),
    /// From a key family's limiter: a quota limit reached a webhook threshold in its window, on a
    /// request of this key: `(key id, the crossing as one string)`
    /// ([`crate::webhook::QuotaCrossing::encode`]); enqueues `key.quota` once per family, limit,
    /// window and threshold.
    Quota(String, String),
}

#[allow(clippy::large_enum_variant)]
/// A successful answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reply {
    /// A record and the hash it is stored under (so the worker can drop its cache entry).
    Record(KeyRecord, String),
    /// A roll's outcome: `(the new key's record, the old key's record with its new end, the old
    /// key's hash)`.
    Rolled(KeyRecord, KeyRecord, String),
    /// A page: (records, the last use of each in unix ms or `None` if never reported, the next
    /// page's cursor).
    Page(Vec<KeyRecord>, Vec<Option<i64>>, Option<String>),
    /// The owning project.
    Project(String),
    /// A key's credits balance after a change.
    Credits(u64),
    /// A JSON document built by the registry, passed through as the admin API's body (a key's
    /// webhook deliveries; its audit log, `{"items": [entries, oldest first]}`, written as the
    /// worker wrote it, so the worker needs no decoder of audit entries).
    Json(String),
    /// Nothing to return.
    Done,
}

/// A refusal or failure inside the registry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Failure {
    /// No such key (or directory entry).
    NotFound,
    /// The change conflicts with the key's state; the reason.
    Conflict(String),
    /// Field → problem.
    Validation(BTreeMap<String, String>),
    /// Storage failed; the reason (for logs).
    Store(String),
}

impl From<GatewayError> for Failure {
    fn from(error: GatewayError) -> Failure {
        match error {
            GatewayError::NotFound => Failure::NotFound,
            GatewayError::Conflict { reason } => Failure::Conflict(reason),
            GatewayError::ValidationFailed { fields } => Failure::Validation(fields),
            other => Failure::Store(other.code().to_string()),
        }
    }
}

impl From<Failure> for GatewayError {
    fn from(failure: Failure) -> GatewayError {
        match failure {
            Failure::NotFound => GatewayError::NotFound,
            Failure::Conflict(reason) => GatewayError::Conflict { reason },
            Failure::Validation(fields) => GatewayError::ValidationFailed { fields },
            Failure::Store(_) => GatewayError::StoreUnavailable,
        }
    }
}

/// An [`Op::Credits`] for key `id`: set (else add) `amount`.
pub fn credits(id: &str, set: bool, amount: i64) -> Op {
    Op::Credits(format!("{id},{},{}", u8::from(set), amount as u64))
}

/// What an [`Op::Credits`] says: `(key id, set, amount)`.
pub fn credits_of(text: &str) -> Option<(&str, bool, i64)> {
    let (id, numbers) = text.split_once(',')?;
    let [set, amount] = crate::limit::lease::numbers(numbers)?;
    Some((id, set == 1, amount as i64))
}

/// Opaque list cursor: `<created_at millis>.<id>` of the last item returned.
pub fn encode_cursor(created_at_ms: i64, id: &str) -> String {
    format!("{created_at_ms}.{id}")
}

/// Parses a cursor made by [`encode_cursor`].
pub fn decode_cursor(cursor: &str) -> Option<(i64, String)> {
    let (at, id) = cursor.split_once('.')?;
    crate::admin::router::is_key_id(id).then_some(())?;
    let at: i64 = at.parse().ok()?;
    // A cursor of this API holds a timestamp, which JavaScript's numbers (and so SQLite
    // parameters from a Durable Object) hold exactly: anything larger is not one of ours.
    (at.unsigned_abs() <= MAX_SAFE_INTEGER as u64).then_some((at, id.to_string()))
}

/// Largest integer a JavaScript number holds exactly (`Number.MAX_SAFE_INTEGER`, 2^53 − 1).
pub const MAX_SAFE_INTEGER: i64 = (1 << 53) - 1;

/// The position before every key: the first page's lower bound in the list query. A safe
/// integer (integers passed to SQLite from a Durable Object go through a JavaScript number),
/// below every timestamp keygate can store (year 0000).
pub const FIRST_PAGE_AFTER: i64 = -MAX_SAFE_INTEGER;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::assert_round_trips;

    #[test]
    fn cursor_round_trips_and_rejects_garbage() {
        assert_eq!(decode_cursor(&encode_cursor(1_800_000_000_000, "key_abc")), Some((1_800_000_000_000, "key_abc".into())));
        assert!(FIRST_PAGE_AFTER < crate::timestamp::Timestamp::parse_rfc3339("0000-01-01T00:00:00Z").unwrap().millis());
        for bad in [
            "",
            "abc",
            "12.",
            ".key_a",
            "x.key_a",
            "12.notakey",
            "12.key_a'; DROP TABLE keys",
            "-9223372036854775808.key_a",
            "9007199254740992.key_a",
        ] {
            assert_eq!(decode_cursor(bad), None, "{bad}");
        }
    }

    #[test]
    fn failures_map_to_public_errors_and_back() {
        for error in [
            GatewayError::NotFound,
            GatewayError::Conflict { reason: "x".into() },
            GatewayError::ValidationFailed { fields: [("name".into(), "bad".into())].into() },
        ] {
            assert_eq!(GatewayError::from(Failure::from(error.clone())), error);
        }
        assert_eq!(GatewayError::from(Failure::Store("kv".into())), GatewayError::StoreUnavailable);
    }

    fn sample_record() -> KeyRecord {
        serde_json::from_str(crate::record::tests::sample_json()).unwrap()
    }

    fn sample_audit() -> AuditEntry {
        serde_json::from_str(r#"{"at":"2026-01-01T00:00:00Z","action":"updated","revision":2,"changes":{"name":{"from":"a","to":"b"}}}"#)
            .unwrap()
    }

    /// Every variant of every message decodes back to itself.
    #[test]
    fn messages_round_trip() {
        let record = sample_record();
        let ops = [
            Op::Create(record.clone(), "ab".into(), sample_audit()),
            Op::List(Some(Status::Inactive), Some("1.key_a".into()), 7),
            Op::List(None, None, 100),
            Op::Get("key_a".into()),
            Op::Update("key_a".into(), true, r#"{"name":"n","role":null,"valid_to":"2027-01-15T08:00:00Z"}"#.into()),
            Op::Update("key_a".into(), false, "{}".into()),
            Op::Revoke("key_a".into()),
            Op::Roll("key_a".into(), "key_b".into(), "cd".into(), "h".into(), 60, None, None),
            Op::Roll("key_a".into(), "key_b".into(), "cd".into(), "h".into(), 86_400, Some(600), Some(3600)),
            Op::Roll("key_a".into(), "key_b".into(), "cd".into(), "h".into(), 86_400, Some(600), None),
            Op::Audit("key_a".into()),
            Op::Register("key_a".into(), "acme".into()),
            Op::Resolve("key_a".into()),
            Op::Leaked("key_a".into(), "revoke".into(), "https://x".into()),
            Op::Seen(vec![("key_a".into(), 1_800_000_000_000), ("key_b".into(), 1)]),
            credits("key_a", false, -3),
            Op::Webhooks("key_a".into()),
            Op::Quota("key_a".into(), "daily,10,86400,1800000000000,80,8".into()),
        ];
        ops.into_iter().for_each(assert_round_trips);
        let replies = [
            Reply::Record(record.clone(), "ab".into()),
            Reply::Rolled(record.clone(), record.clone(), "cd".into()),
            Reply::Page(vec![record.clone(), record], vec![Some(1_800_000_000_000), None], Some("1.key_a".into())),
            Reply::Page(vec![], vec![], None),
            Reply::Project("acme".into()),
            Reply::Credits(17),
            Reply::Json(r#"{"items":[]}"#.into()),
            Reply::Done,
        ];
        replies.into_iter().map(Ok::<Reply, Failure>).for_each(assert_round_trips);
        let failures = [
            Failure::NotFound,
            Failure::Conflict("revoked".into()),
            Failure::Validation([("name".into(), "bad".into())].into()),
            Failure::Store("kv put".into()),
        ];
        failures.into_iter().map(Err::<Reply, Failure>).for_each(assert_round_trips);
    }

    /// A PATCH travels as the body the edge validated, with the edge's permission rule.
    #[test]
    fn an_update_carries_the_validated_body() {
        let json = serde_json::to_string(&Op::Update("key_a".into(), true, r#"{"role":null,"tier":"pro"}"#.into())).unwrap();
        assert_eq!(json, r#"{"update":["key_a",true,"{\"role\":null,\"tier\":\"pro\"}"]}"#);
    }

    #[test]
    fn messages_ignore_unknown_fields_and_reject_malformed_ones() {
        let op: Op = serde_json::from_str(r#"{"register":["key_a","acme"]}"#).unwrap();
        assert_eq!(op, Op::Register("key_a".into(), "acme".into()));
        assert_eq!(serde_json::from_str::<Reply>(r#""done""#).unwrap(), Reply::Done);
        let rows: &[(&str, &str)] = &[
            ("unknown variant", r#"{"explode":{"id":"key_a"}}"#),
            ("no variant", r#"{"id":"key_a"}"#),
            ("missing value", r#"{"register":["key_a"]}"#),
            ("value of the wrong type in a list", r#"{"register":[7,"acme"]}"#),
            ("named fields for a list", r#"{"register":{"id":"key_a","project":"acme"}}"#),
            ("value of the wrong type", r#"{"get":7}"#),
            ("a struct for a value", r#"{"get":{"id":"key_a"}}"#),
            ("two variants", r#"{"get":"key_a","revoke":"key_a"}"#),
            ("a list", r#"["get","key_a"]"#),
            ("a variant with a value as a bare name", r#""get""#),
            ("the internally tagged form", r#"{"op":"get","id":"key_a"}"#),
            ("an update with an invalid change", r#"{"update":["key_a",{"valid_to":"tomorrow"}]}"#),
            ("an update with named fields", r#"{"update":{"id":"key_a","change":{}}}"#),
            ("a value too many", r#"{"update":["key_a",{},1]}"#),
            ("not JSON", r#"{"get":"#),
        ];
        for (what, json) in rows {
            assert!(serde_json::from_str::<Op>(json).is_err(), "{what}: {json}");
        }
        assert!(serde_json::from_str::<Reply>(r#""record""#).is_err(), "a reply with fields needs them");
        assert!(serde_json::from_str::<Result<Reply, Failure>>(r#"{"Err":{"teapot":{}}}"#).is_err(), "unknown failure");
    }

    #[test]
    fn ops_serialize_with_a_tag() {
        assert_eq!(serde_json::to_string(&Op::Get("key_a".into())).unwrap(), r#"{"get":"key_a"}"#);
        let json = serde_json::to_string(&Op::Register("key_a".into(), "acme".into())).unwrap();
        assert_eq!(json, r#"{"register":["key_a","acme"]}"#);
        assert_eq!(serde_json::to_string(&Reply::Done).unwrap(), r#""done""#);
    }
}
