//! Messages between the worker's admin handler and the registry Durable Object (internal).
//!
//! The worker authenticates, validates and generates key material; only the key's hash and
//! hint cross into the registry, never the plaintext.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::admin::lifecycle::AuditEntry;
use crate::error::GatewayError;
use crate::record::{KeyRecord, Status};

/// Implements `Deserialize` for an internally tagged enum (`#[serde(tag = ...)]`, whose
/// `Serialize` stays derived) without serde's buffering of the whole message: the tag must be
/// the message's first field, which it always is in what the derived `Serialize` writes. The
/// other fields of the chosen variant are then read straight from the input (unknown fields
/// are ignored, a missing `Option` field is `None`, as with the derive). Serde's own internally
/// tagged decoding buffers the message into `Content` first, which costs a second copy of every
/// nested type's decoder in the wasm.
macro_rules! tagged_deserialize {
    ($enum:ident, $tag:literal, { $($name:literal => $variant:ident { $($field:ident: $ty:ty),* $(,)? }),+ $(,)? }) => {
        impl<'de> serde::Deserialize<'de> for $enum {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                struct Visitor;
                impl<'de> serde::de::Visitor<'de> for Visitor {
                    type Value = $enum;

                    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                        f.write_str(concat!("a ", stringify!($enum), " object whose first field is `", $tag, "`"))
                    }

                    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<$enum, A::Error> {
                        let variant = $crate::admin::protocol::read_tag(&mut map, $tag)?;
                        let rest = serde::de::value::MapAccessDeserializer::new(map);
                        match variant.as_str() {
                            $($name => {
                                #[derive(serde::Deserialize)]
                                struct Fields { $($field: $ty),* }
                                let Fields { $($field),* } = serde::Deserialize::deserialize(rest)?;
                                Ok($enum::$variant { $($field),* })
                            })+
                            other => Err(serde::de::Error::unknown_variant(other, &[$($name),+])),
                        }
                    }
                }
                deserializer.deserialize_map(Visitor)
            }
        }
    };
}
pub(crate) use tagged_deserialize;

/// Reads the first key of a tagged message, which must be `tag`, and returns its value.
pub(crate) fn read_tag<'de, A: serde::de::MapAccess<'de>>(map: &mut A, tag: &'static str) -> Result<String, A::Error> {
    match map.next_key::<String>()? {
        Some(key) if key == tag => map.next_value(),
        _ => Err(serde::de::Error::missing_field(tag)),
    }
}

// Messages are built once per admin call and moved straight into JSON: boxing the large
// variants would buy nothing.
#[allow(clippy::large_enum_variant)]
/// An operation on one project's registry (or, for `Register`/`Resolve`, the id directory).
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Op {
    /// Store a new key.
    Create { record: KeyRecord, hash: String },
    /// One page of keys.
    List { status: Option<Status>, cursor: Option<String>, limit: usize },
    /// One key.
    Get { id: String },
    /// Apply a PATCH body (re-validated inside the registry against the stored record).
    Update { id: String, body: String },
    /// Revoke (tombstone).
    Revoke { id: String },
    /// Roll to a new key whose hash and hint the worker computed.
    Roll { id: String, new_id: String, new_hash: String, new_hint: String, grace_seconds: u64 },
    /// A key's audit log.
    Audit { id: String },
    /// Directory: remember which project owns `id`.
    Register { id: String, project: String },
    /// Directory: which project owns `id`.
    Resolve { id: String },
    /// Keys of this project used since the last report: `(key id, unix ms of the last use)`,
    /// batched by the worker's isolates (see `edge::seen`).
    Seen { seen: Vec<(String, i64)> },
}

#[allow(clippy::large_enum_variant)]
/// A successful answer.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "reply", rename_all = "snake_case")]
pub enum Reply {
    /// A record and the hash it is stored under (so the worker can drop its cache entry).
    Record { record: KeyRecord, hash: String },
    /// A roll's outcome.
    Rolled { record: KeyRecord, previous: KeyRecord, previous_hash: String },
    /// A page of records, with the last use of each (unix ms; `None` = never reported).
    Page { items: Vec<KeyRecord>, last_used: Vec<Option<i64>>, cursor: Option<String> },
    /// Audit entries, oldest first.
    Audit { items: Vec<AuditEntry> },
    /// The owning project.
    Project { project: String },
    /// Nothing to return.
    Done,
}

/// A refusal or failure inside the registry.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "failure", rename_all = "snake_case")]
pub enum Failure {
    NotFound,
    Conflict { reason: String },
    Validation { fields: BTreeMap<String, String> },
    Store { reason: String },
}

tagged_deserialize!(Op, "op", {
    "create" => Create { record: KeyRecord, hash: String },
    "list" => List { status: Option<Status>, cursor: Option<String>, limit: usize },
    "get" => Get { id: String },
    "update" => Update { id: String, body: String },
    "revoke" => Revoke { id: String },
    "roll" => Roll { id: String, new_id: String, new_hash: String, new_hint: String, grace_seconds: u64 },
    "audit" => Audit { id: String },
    "register" => Register { id: String, project: String },
    "resolve" => Resolve { id: String },
    "seen" => Seen { seen: Vec<(String, i64)> },
});

tagged_deserialize!(Reply, "reply", {
    "record" => Record { record: KeyRecord, hash: String },
    "rolled" => Rolled { record: KeyRecord, previous: KeyRecord, previous_hash: String },
    "page" => Page { items: Vec<KeyRecord>, last_used: Vec<Option<i64>>, cursor: Option<String> },
    "audit" => Audit { items: Vec<AuditEntry> },
    "project" => Project { project: String },
    "done" => Done {},
});

tagged_deserialize!(Failure, "failure", {
    "not_found" => NotFound {},
    "conflict" => Conflict { reason: String },
    "validation" => Validation { fields: BTreeMap<String, String> },
    "store" => Store { reason: String },
});

impl From<GatewayError> for Failure {
    fn from(error: GatewayError) -> Failure {
        match error {
            GatewayError::NotFound => Failure::NotFound,
            GatewayError::Conflict { reason } => Failure::Conflict { reason },
            GatewayError::ValidationFailed { fields } => Failure::Validation { fields },
            other => Failure::Store { reason: other.code().to_string() },
        }
    }
}

impl From<Failure> for GatewayError {
    fn from(failure: Failure) -> GatewayError {
        match failure {
            Failure::NotFound => GatewayError::NotFound,
            Failure::Conflict { reason } => GatewayError::Conflict { reason },
            Failure::Validation { fields } => GatewayError::ValidationFailed { fields },
            Failure::Store { .. } => GatewayError::StoreUnavailable,
        }
    }
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
        assert_eq!(GatewayError::from(Failure::Store { reason: "kv".into() }), GatewayError::StoreUnavailable);
    }

    /// Every message decodes back to itself, with the tag anywhere the encoder puts it (first).
    #[test]
    fn messages_round_trip() {
        let record: KeyRecord = serde_json::from_str(crate::record::tests::sample_json()).unwrap();
        let entry: AuditEntry = serde_json::from_str(
            r#"{"at":"2026-01-01T00:00:00Z","action":"updated","revision":2,"changes":{"name":{"from":"a","to":"b"}}}"#,
        )
        .unwrap();
        let ops = [
            Op::Create { record: record.clone(), hash: "ab".into() },
            Op::List { status: Some(Status::Inactive), cursor: Some("1.key_a".into()), limit: 7 },
            Op::List { status: None, cursor: None, limit: 100 },
            Op::Get { id: "key_a".into() },
            Op::Update { id: "key_a".into(), body: r#"{"name":"x"}"#.into() },
            Op::Revoke { id: "key_a".into() },
            Op::Roll { id: "key_a".into(), new_id: "key_b".into(), new_hash: "cd".into(), new_hint: "h".into(), grace_seconds: 60 },
            Op::Audit { id: "key_a".into() },
            Op::Register { id: "key_a".into(), project: "acme".into() },
            Op::Resolve { id: "key_a".into() },
            Op::Seen { seen: vec![("key_a".into(), 1_800_000_000_000), ("key_b".into(), 1)] },
        ];
        for op in ops {
            let json = serde_json::to_string(&op).unwrap();
            assert_eq!(serde_json::to_string(&serde_json::from_str::<Op>(&json).unwrap()).unwrap(), json);
        }
        let replies = [
            Reply::Record { record: record.clone(), hash: "ab".into() },
            Reply::Rolled { record: record.clone(), previous: record.clone(), previous_hash: "cd".into() },
            Reply::Page {
                items: vec![record.clone(), record],
                last_used: vec![Some(1_800_000_000_000), None],
                cursor: Some("1.key_a".into()),
            },
            Reply::Page { items: vec![], last_used: vec![], cursor: None },
            Reply::Audit { items: vec![entry] },
            Reply::Project { project: "acme".into() },
            Reply::Done,
        ];
        for reply in replies {
            let ok: Result<Reply, Failure> = Ok(reply);
            let json = serde_json::to_string(&ok).unwrap();
            assert_eq!(serde_json::to_string(&serde_json::from_str::<Result<Reply, Failure>>(&json).unwrap()).unwrap(), json);
        }
        let failures = [
            Failure::NotFound,
            Failure::Conflict { reason: "revoked".into() },
            Failure::Validation { fields: [("name".into(), "bad".into())].into() },
            Failure::Store { reason: "kv put".into() },
        ];
        for failure in failures {
            let err: Result<Reply, Failure> = Err(failure.clone());
            let json = serde_json::to_string(&err).unwrap();
            assert_eq!(serde_json::from_str::<Result<Reply, Failure>>(&json).unwrap().unwrap_err(), failure);
        }
    }

    #[test]
    fn messages_ignore_unknown_fields_and_reject_unknown_or_missing_tags() {
        let op: Op = serde_json::from_str(r#"{"op":"get","extra":[1,{"a":null}],"id":"key_a"}"#).unwrap();
        assert!(matches!(op, Op::Get { id } if id == "key_a"));
        let reply: Reply = serde_json::from_str(r#"{"reply":"done","x":1}"#).unwrap();
        assert!(matches!(reply, Reply::Done));
        assert!(serde_json::from_str::<Op>(r#"{"op":"explode","id":"key_a"}"#).is_err());
        assert!(serde_json::from_str::<Op>(r#"{"id":"key_a"}"#).is_err());
        assert!(serde_json::from_str::<Op>(r#"{"op":"get"}"#).is_err());
        assert!(serde_json::from_str::<Op>(r#"["get","key_a"]"#).is_err());
    }

    #[test]
    fn ops_serialize_with_a_tag() {
        let json = serde_json::to_string(&Op::Get { id: "key_a".into() }).unwrap();
        assert_eq!(json, r#"{"op":"get","id":"key_a"}"#);
    }
}
