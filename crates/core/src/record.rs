//! The key record stored in KV under `key:<sha256 hex>`, and its status.
//!
//! Records are JSON. Unknown fields are ignored so newer writers (limits, families) can add
//! fields without breaking older readers; a missing required field or a malformed timestamp
//! makes the whole record undecodable, which the hot path treats as a store failure (fail
//! closed). A revoked key keeps its record as a tombstone with status `revoked`, so no stale
//! cache can ever resurrect it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::key::KeyEnv;
use crate::limit::algorithm::{validate_specs, LimitSpec};
use crate::limit::credits::Credits;
use crate::timestamp::Timestamp;

/// Lifecycle state of a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Usable (subject to its validity window).
    Active,
    /// Disabled by its owner; can be re-enabled.
    Inactive,
    /// Permanently revoked; the record stays as a tombstone.
    Revoked,
}

impl Status {
    /// The literal used in records and the admin API.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Active => "active",
            Status::Inactive => "inactive",
            Status::Revoked => "revoked",
        }
    }

    /// Parses [`Status::as_str`]'s literals.
    pub fn from_name(name: &str) -> Option<Status> {
        [Status::Active, Status::Inactive, Status::Revoked].into_iter().find(|status| status.as_str() == name)
    }
}

/// Everything keygate knows about one key. Never contains the plaintext key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyRecord {
    /// Stable id, `key_<base62>`.
    pub id: String,
    /// The project the key is bound to.
    pub project: String,
    /// Owner-facing label.
    pub name: String,
    /// `live` or `test`; must equal the environment in the key string.
    pub env: KeyEnv,
    /// Optional role, expanded to scopes at check time.
    #[serde(default)]
    pub role: Option<String>,
    /// Explicit scopes, added to the role's.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Lifecycle state.
    pub status: Status,
    /// Not usable before this instant (`null` = immediately).
    #[serde(default)]
    pub valid_from: Option<Timestamp>,
    /// Not usable after this instant (`null` = lifetime).
    #[serde(default)]
    pub valid_to: Option<Timestamp>,
    /// When set, the request's `Origin` header must be one of these.
    #[serde(default)]
    pub allowed_origins: Option<Vec<String>>,
    /// Client networks (CIDRs) the key may be used from; empty = any ([`crate::network`]).
    #[serde(default)]
    pub allowed_networks: Vec<String>,
    /// Countries (ISO 3166-1 alpha-2, uppercase) the key may be used from; empty = any.
    #[serde(default)]
    pub allowed_countries: Vec<String>,
    /// Creation time.
    pub created_at: Timestamp,
    /// Last change.
    pub updated_at: Timestamp,
    /// Incremented on every change.
    #[serde(default)]
    pub revision: u64,
    /// Small owner-defined string map.
    #[serde(default)]
    pub meta: BTreeMap<String, String>,
    /// Non-secret hint of the key: `<prefix>_<env>_…` + last 4.
    #[serde(default)]
    pub hint: Option<String>,
    /// Id of the first key of this key's roll chain (`None` = this key's own id). Limits and
    /// usage attach to the family, so a roll does not reset them.
    #[serde(default)]
    pub family: Option<String>,
    /// Id of the key this one replaced in a roll.
    #[serde(default)]
    pub rolled_from: Option<String>,
    /// Named tier from config (`TIERS`) supplying limits and mode.
    #[serde(default)]
    pub tier: Option<String>,
    /// Inline limits; when set they replace the tier's.
    #[serde(default)]
    pub limits: Option<Vec<LimitSpec>>,
    /// `exact` or `fast`; when unset the tier's, else `LIMIT_MODE`.
    #[serde(default)]
    pub limit_mode: Option<LimitMode>,
    /// Credits (a remaining-uses balance, [`crate::limit::credits`]): the refill configuration;
    /// the balance is the family limiter's state. A key with credits is always decided by its
    /// limiter (`exact`), whatever its mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credits: Option<Credits>,
}

/// How a key's limits (and its status epoch) are enforced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LimitMode {
    /// A Durable Object per key family decides every request (exact limits; revocation and
    /// disabling take effect on the next request).
    Exact,
    /// No Durable Object on the hot path: per-isolate counters (approximate limits; status
    /// changes seen after the caches expire).
    Fast,
}

impl LimitMode {
    /// The literal used in records and the admin API.
    pub fn as_str(self) -> &'static str {
        match self {
            LimitMode::Exact => "exact",
            LimitMode::Fast => "fast",
        }
    }

    /// Parses [`LimitMode::as_str`]'s literals.
    pub fn from_name(name: &str) -> Option<LimitMode> {
        [LimitMode::Exact, LimitMode::Fast].into_iter().find(|mode| mode.as_str() == name)
    }
}

impl KeyRecord {
    /// The roll-chain id (the first key's id).
    pub fn family_id(&self) -> &str {
        self.family.as_deref().unwrap_or(&self.id)
    }
}

/// Longest KV value the hot path will decode; anything bigger is treated as corrupt.
pub const MAX_RECORD_BYTES: usize = 64 * 1024;

/// Why a stored value could not be used as a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorruptRecord(pub String);

/// Decodes a KV value into a record.
pub fn decode(bytes: &[u8]) -> Result<KeyRecord, CorruptRecord> {
    if bytes.len() > MAX_RECORD_BYTES {
        return Err(CorruptRecord(format!("record is {} bytes", bytes.len())));
    }
    // Decoded from `&str` like every other JSON keygate reads, so the wasm holds one record
    // decoder, not one per input type. Invalid UTF-8 is refused either way.
    let text = std::str::from_utf8(bytes).map_err(|e| CorruptRecord(e.to_string()))?;
    let record: KeyRecord = crate::json::parse(text).map_err(|e| CorruptRecord(e.to_string()))?;
    // Inline limits go straight to the limiter and into response headers: hold them to the
    // rules the admin API and TIERS enforce, so a hand-edited record fails closed.
    if let Some(limits) = &record.limits {
        validate_specs(limits).map_err(|e| CorruptRecord(format!("limits: {e}")))?;
    }
    // Likewise a hand-edited network list: fail closed rather than guess what it meant.
    if let Some(bad) = record.allowed_networks.iter().find(|n| crate::network::parse_cidr(n).is_err()) {
        return Err(CorruptRecord(format!("allowed_networks: {bad:?}")));
    }
    Ok(record)
}

/// Encodes a record as stored in KV.
pub fn encode(record: &KeyRecord) -> String {
    // Serializing plain data with string keys cannot fail.
    serde_json::to_string(record).unwrap_or_default()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn status_and_limit_mode_literals_are_their_json_spelling() {
        for status in [Status::Active, Status::Inactive, Status::Revoked] {
            assert_eq!(serde_json::to_value(status).unwrap(), status.as_str());
            assert_eq!(Status::from_name(status.as_str()), Some(status));
        }
        for mode in [LimitMode::Exact, LimitMode::Fast] {
            assert_eq!(serde_json::to_value(mode).unwrap(), mode.as_str());
            assert_eq!(LimitMode::from_name(mode.as_str()), Some(mode));
        }
        for other in ["", "Active", "exact ", "revoke"] {
            assert_eq!(Status::from_name(other), None, "{other:?}");
            assert_eq!(LimitMode::from_name(other), None, "{other:?}");
        }
    }

    pub(crate) fn sample_json() -> &'static str {
        r#"{"id":"key_abc","project":"acme","name":"marketing site","env":"live",
            "role":"read_only","scopes":[],"status":"active","valid_from":null,
            "valid_to":"2030-01-01T00:00:00Z","allowed_origins":null,
            "created_at":"2026-01-01T00:00:00Z","updated_at":"2026-01-01T00:00:00Z",
            "revision":1,"meta":{"team":"web"},"hint":"kg_live_…abcd"}"#
    }

    #[test]
    fn decodes_a_full_record() {
        let record = decode(sample_json().as_bytes()).unwrap();
        assert_eq!(record.id, "key_abc");
        assert_eq!(record.env, KeyEnv::Live);
        assert_eq!(record.status, Status::Active);
        assert_eq!(record.valid_from, None);
        assert_eq!(record.valid_to, Timestamp::parse_rfc3339("2030-01-01T00:00:00Z"));
        assert_eq!(record.meta.get("team").map(String::as_str), Some("web"));
    }

    #[test]
    fn round_trips_through_encode() {
        let record = decode(sample_json().as_bytes()).unwrap();
        assert_eq!(decode(encode(&record).as_bytes()).unwrap(), record);
    }

    #[test]
    fn credits_round_trip_and_a_malformed_credits_field_makes_the_record_corrupt() {
        let plain = decode(sample_json().as_bytes()).unwrap();
        assert_eq!(plain.credits, None, "an old record has no credits");
        assert!(!encode(&plain).contains("credits"), "and none is written for it");
        for credits in [
            r#"{"refill":null}"#,
            r#"{"refill":{"amount":1000,"interval":"month","mode":"reset"}}"#,
            r#"{"refill":{"amount":5,"interval":"day","mode":"add"}}"#,
        ] {
            let json = sample_json().replacen("\"revision\":1", &format!("\"revision\":1,\"credits\":{credits}"), 1);
            let record = decode(json.as_bytes()).unwrap_or_else(|e| panic!("{credits}: {e:?}"));
            assert!(record.credits.is_some(), "{credits}");
            assert!(encode(&record).contains(&format!("\"credits\":{credits}")), "{credits}: {}", encode(&record));
            assert_eq!(decode(encode(&record).as_bytes()).unwrap(), record, "{credits}");
        }
        for bad in [
            "5",
            r#"{"remaining":5}"#,
            r#"{"refill":{"amount":0,"interval":"day","mode":"add"}}"#,
            r#"{"refill":{"amount":5,"interval":"week","mode":"add"}}"#,
        ] {
            let json = sample_json().replacen("\"revision\":1", &format!("\"revision\":1,\"credits\":{bad}"), 1);
            assert!(decode(json.as_bytes()).is_err(), "{bad}");
        }
    }

    #[test]
    fn ignores_unknown_fields_for_forward_compatibility() {
        let json = sample_json().replacen("\"revision\":1", "\"revision\":1,\"future_field\":[{\"x\":1}]", 1);
        assert!(decode(json.as_bytes()).is_ok());
    }

    #[test]
    fn rejects_corrupt_values() {
        let rows: Vec<(&str, Vec<u8>)> = vec![
            ("not json", b"hello".to_vec()),
            ("empty", Vec::new()),
            ("json array", b"[]".to_vec()),
            ("bad status", sample_json().replacen("\"active\"", "\"paused\"", 1).into_bytes()),
            ("bad env", sample_json().replacen("\"live\"", "\"prod\"", 1).into_bytes()),
            ("bad date", sample_json().replacen("2030-01-01T00:00:00Z", "soon", 1).into_bytes()),
            ("missing project", sample_json().replacen("\"project\":\"acme\",", "", 1).into_bytes()),
            ("invalid utf-8", vec![b'{', 0xff, 0xfe, b'}']),
            ("oversized", vec![b' '; MAX_RECORD_BYTES + 1]),
        ];
        for (what, bytes) in rows {
            assert!(decode(&bytes).is_err(), "{what}");
        }
    }

    #[test]
    fn records_without_network_fields_are_unrestricted_and_bad_networks_fail_closed() {
        let old = decode(sample_json().as_bytes()).unwrap();
        assert!(old.allowed_networks.is_empty() && old.allowed_countries.is_empty(), "a record from before the fields");
        assert!(encode(&old).contains(r#""allowed_networks":[],"allowed_countries":[]"#), "shown as empty lists");
        let with_networks =
            |networks: &str| sample_json().replacen("\"revision\":1", &format!("\"revision\":1,\"allowed_networks\":{networks}"), 1);
        let restricted = decode(with_networks(r#"["203.0.113.0/24","2001:db8::/32"]"#).as_bytes()).unwrap();
        assert_eq!(restricted.allowed_networks, ["203.0.113.0/24", "2001:db8::/32"]);
        for bad in [r#"["10.0.0.1/8"]"#, r#"["office"]"#, r#"["10.0.0.0/33"]"#, r#""10.0.0.0/8""#] {
            assert!(decode(with_networks(bad).as_bytes()).is_err(), "{bad}");
        }
    }

    #[test]
    fn rejects_records_with_limits_the_limiter_cannot_use() {
        // Found by fuzzing (fuzz/fuzz_targets/record_decode.rs): a record with a zero window
        // decoded fine and then made the limiter divide by zero on the hot path.
        let with_limits = |limits: &str| sample_json().replacen("\"revision\":1", &format!("\"revision\":1,\"limits\":{limits}"), 1);
        assert!(decode(with_limits(r#"[{"name":"minute","limit":5,"window_seconds":60}]"#).as_bytes()).is_ok());
        assert!(decode(with_limits("null").as_bytes()).is_ok());
        for limits in [
            r#"[{"name":"m","limit":5,"window_seconds":0}]"#,
            r#"[{"name":"m","limit":0,"window_seconds":60}]"#,
            r#"[{"name":"m","limit":5,"window_seconds":18446744073709551615}]"#,
            r#"[{"name":"m\"; x","limit":5,"window_seconds":60}]"#,
            r#"[{"name":"m","limit":5,"window_seconds":60},{"name":"m","limit":9,"window_seconds":1}]"#,
        ] {
            let error = decode(with_limits(limits).as_bytes()).unwrap_err();
            assert!(error.0.starts_with("limits: "), "{limits}: {error:?}");
        }
    }
}
