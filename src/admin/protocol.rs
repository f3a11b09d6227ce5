//! Messages between the worker's admin handler and the registry Durable Object (internal).
//!
//! The worker authenticates, validates and generates key material; only the key's hash and
//! hint cross into the registry, never the plaintext.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::admin::lifecycle::AuditEntry;
use crate::error::GatewayError;
use crate::record::{KeyRecord, Status};

// Messages are built once per admin call and moved straight into JSON: boxing the large
// variants would buy nothing.
#[allow(clippy::large_enum_variant)]
/// An operation on one project's registry (or, for `Register`/`Resolve`, the id directory).
#[derive(Debug, Clone, Serialize, Deserialize)]
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
}

#[allow(clippy::large_enum_variant)]
/// A successful answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "reply", rename_all = "snake_case")]
pub enum Reply {
    /// A record and the hash it is stored under (so the worker can drop its cache entry).
    Record { record: KeyRecord, hash: String },
    /// A roll's outcome.
    Rolled { record: KeyRecord, previous: KeyRecord, previous_hash: String },
    /// A page of records.
    Page { items: Vec<KeyRecord>, cursor: Option<String> },
    /// Audit entries, oldest first.
    Audit { items: Vec<AuditEntry> },
    /// The owning project.
    Project { project: String },
    /// Nothing to return.
    Done,
}

/// A refusal or failure inside the registry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "failure", rename_all = "snake_case")]
pub enum Failure {
    NotFound,
    Conflict { reason: String },
    Validation { fields: BTreeMap<String, String> },
    Store { reason: String },
}

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
    Some((at.parse().ok()?, id.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_round_trips_and_rejects_garbage() {
        assert_eq!(decode_cursor(&encode_cursor(1_800_000_000_000, "key_abc")), Some((1_800_000_000_000, "key_abc".into())));
        for bad in ["", "abc", "12.", ".key_a", "x.key_a", "12.notakey", "12.key_a'; DROP TABLE keys"] {
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

    #[test]
    fn ops_serialize_with_a_tag() {
        let json = serde_json::to_string(&Op::Get { id: "key_a".into() }).unwrap();
        assert_eq!(json, r#"{"op":"get","id":"key_a"}"#);
    }
}
