//! `keygate demo-keys`: demo keys for a local gateway.
//!
//! Generates one active live key per built-in role, plus keys that must be refused (expired,
//! inactive, not yet valid), a `test`-environment key and a key of another project (`globex`).
//! Their records go to a file in the format of `wrangler kv bulk put`
//! (`[{"key":"key:<sha256 hex>","value":"<record JSON>"}]`), which holds hashes only. The
//! plaintext keys are printed to stdout once, in a table, and are never written anywhere else.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use keygate::key::{self, KeyEnv, PlaintextKey};
use keygate::record::{self, KeyRecord, Status};
use keygate::scope::BUILTIN_ROLES;
use keygate::timestamp::Timestamp;
use serde_json::{json, Value};

const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 24 * HOUR_MS;

/// Project of the extra "other project" demo key.
pub const OTHER_PROJECT: &str = "globex";

/// What one demo key should look like, before it has a key and an id.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Spec {
    name: String,
    project: String,
    role: &'static str,
    env: KeyEnv,
    status: Status,
    valid_from: Option<Timestamp>,
    valid_to: Option<Timestamp>,
}

fn specs(project: &str, now: Timestamp) -> Vec<Spec> {
    let spec = |name: String, role: &'static str| Spec {
        name,
        project: project.to_string(),
        role,
        env: KeyEnv::Live,
        status: Status::Active,
        valid_from: None,
        valid_to: None,
    };
    let mut out: Vec<Spec> = BUILTIN_ROLES.iter().map(|(role, _)| spec(format!("demo {role}"), role)).collect();
    out.push(Spec { valid_to: Some(Timestamp(now.0 - HOUR_MS)), ..spec("demo expired".into(), "read_only") });
    out.push(Spec { status: Status::Inactive, ..spec("demo inactive".into(), "read_only") });
    out.push(Spec { valid_from: Some(Timestamp(now.0 + DAY_MS)), ..spec("demo not yet valid".into(), "read_only") });
    out.push(Spec { env: KeyEnv::Test, ..spec("demo test read_only".into(), "read_only") });
    out.push(Spec { project: OTHER_PROJECT.into(), ..spec(format!("demo {OTHER_PROJECT} read_only"), "read_only") });
    out
}

/// Generates the demo keys and their records at `now`. Pure apart from the CSPRNG.
pub fn generate(prefix: &str, project: &str, now: Timestamp) -> Result<Vec<(PlaintextKey, KeyRecord)>, String> {
    if !key::is_valid_prefix(prefix) {
        return Err(format!("--prefix {prefix:?} must be 2-12 lowercase letters or digits"));
    }
    if project.is_empty() || project.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("--project {project:?} must be non-empty without spaces"));
    }
    let random_error = |e: getrandom::Error| format!("random generator failed: {e}");
    specs(project, now)
        .into_iter()
        .map(|spec| {
            let key = key::generate(prefix, spec.env).map_err(random_error)?;
            let record = KeyRecord {
                id: key::generate_id().map_err(random_error)?,
                project: spec.project,
                name: spec.name,
                env: spec.env,
                role: Some(spec.role.to_string()),
                scopes: Vec::new(),
                status: spec.status,
                valid_from: spec.valid_from,
                valid_to: spec.valid_to,
                allowed_origins: None,
                created_at: now,
                updated_at: now,
                revision: 1,
                meta: BTreeMap::from([("demo".to_string(), "true".to_string())]),
                hint: Some(key.hint()),
                family: None,
                rolled_from: None,
            };
            Ok((key, record))
        })
        .collect()
}

/// The `wrangler kv bulk put` JSON for these keys: storage key by hash, record JSON as value.
pub fn kv_bulk_json(keys: &[(PlaintextKey, KeyRecord)]) -> Value {
    Value::Array(
        keys.iter()
            .map(|(key, record)| json!({"key": key.hash().storage_key(), "value": record::encode(record)}))
            .collect(),
    )
}

/// How a record will be judged at `now`: its status, or why an active key is still refused.
fn state(record: &KeyRecord, now: Timestamp) -> &'static str {
    match record.status {
        Status::Inactive => "inactive",
        Status::Revoked => "revoked",
        Status::Active if record.valid_to.is_some_and(|t| t < now) => "expired",
        Status::Active if record.valid_from.is_some_and(|t| t > now) => "not yet valid",
        Status::Active => "active",
    }
}

/// The listing printed to stdout: a table with the plaintext keys and a curl example.
pub fn listing(keys: &[(PlaintextKey, KeyRecord)], project: &str, gateway_url: &str, now: Timestamp) -> String {
    let mut out = String::new();
    let row = |out: &mut String, cells: [&str; 6]| {
        let _ = writeln!(out, "{:<24} {:<16} {:<8} {:<5} {:<14} {}", cells[0], cells[1], cells[2], cells[3], cells[4], cells[5]);
    };
    row(&mut out, ["NAME", "ROLE", "PROJECT", "ENV", "STATUS", "KEY"]);
    for (key, record) in keys {
        let role = record.role.as_deref().unwrap_or("-");
        row(&mut out, [&record.name, role, &record.project, record.env.as_str(), state(record, now), key.expose()]);
    }
    let read_only = keys.iter().find(|(_, r)| {
        r.role.as_deref() == Some("read_only") && r.project == project && r.env == KeyEnv::Live && state(r, now) == "active"
    });
    if let Some((key, _)) = read_only {
        let base = gateway_url.trim_end_matches('/');
        let _ = writeln!(out, "\nTry the read_only key:");
        let _ = writeln!(
            out,
            "curl -H \"Authorization: Bearer {}\" {base}/v1/public/cms/articles/items",
            key.expose()
        );
    }
    out
}

/// Generates the keys, writes `kv_out` (hashes and records only) and prints the listing.
pub fn run(prefix: &str, project: &str, kv_out: &Path, gateway_url: &str) -> Result<(), String> {
    let now = now_seconds_precision();
    let keys = generate(prefix, project, now)?;
    let json = serde_json::to_string_pretty(&kv_bulk_json(&keys)).map_err(|e| e.to_string())?;
    std::fs::write(kv_out, json + "\n").map_err(|e| format!("cannot write {}: {e}", kv_out.display()))?;
    eprintln!("wrote {} KV records to {} (hashes only, no plaintext keys)", keys.len(), kv_out.display());
    eprintln!("load them with: wrangler kv bulk put {} --binding <KV binding> [--local]", kv_out.display());
    print!("{}", listing(&keys, project, gateway_url, now));
    Ok(())
}

/// Now, truncated to whole seconds so stored dates read cleanly.
fn now_seconds_precision() -> Timestamp {
    let seconds = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    Timestamp(i64::try_from(seconds).unwrap_or(i64::MAX / 1000) * 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Timestamp = Timestamp(1_800_000_000_000);

    #[test]
    fn records_decode_and_are_stored_under_the_hash_of_their_key() {
        let keys = generate("kg", "acme", NOW).unwrap();
        let bulk = kv_bulk_json(&keys);
        let entries = bulk.as_array().unwrap();
        assert_eq!(entries.len(), keys.len());
        for ((key, record), entry) in keys.iter().zip(entries) {
            let parsed = key::parse(key.expose(), "kg").unwrap();
            assert_eq!(parsed.env, record.env);
            assert_eq!(entry["key"], key::KeyHash::of(key.expose()).storage_key());
            let value = entry["value"].as_str().unwrap();
            assert!(!value.contains(key.expose()), "a record must not contain its plaintext key");
            let decoded = record::decode(value.as_bytes()).unwrap();
            assert_eq!(&decoded, record);
            assert_eq!(decoded.hint, Some(key.hint()));
            assert_eq!((decoded.revision, decoded.created_at, decoded.updated_at), (1, NOW, NOW));
            assert_eq!(decoded.meta.get("demo").map(String::as_str), Some("true"));
        }
        assert!(!bulk.to_string().contains(keys[0].0.expose()));
    }

    #[test]
    fn the_set_covers_every_role_and_each_refusal_case() {
        let keys = generate("kg", "acme", NOW).unwrap();
        let records: Vec<&KeyRecord> = keys.iter().map(|(_, r)| r).collect();
        for (role, _) in BUILTIN_ROLES {
            assert!(
                records.iter().any(|r| r.role.as_deref() == Some(role) && state(r, NOW) == "active" && r.env == KeyEnv::Live),
                "{role}"
            );
        }
        let states: Vec<&str> = records.iter().map(|r| state(r, NOW)).collect();
        for wanted in ["expired", "inactive", "not yet valid"] {
            assert_eq!(states.iter().filter(|s| **s == wanted).count(), 1, "{wanted}");
        }
        assert!(records.iter().any(|r| r.env == KeyEnv::Test && state(r, NOW) == "active"));
        assert!(records.iter().any(|r| r.project == "globex" && state(r, NOW) == "active"));
        let ids: std::collections::HashSet<&str> = records.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids.len(), records.len(), "ids are unique");
    }

    #[test]
    fn listing_shows_each_key_once_and_a_curl_line_with_the_read_only_key() {
        let keys = generate("kg", "acme", NOW).unwrap();
        let text = listing(&keys, "acme", "http://127.0.0.1:9999/", NOW);
        let read_only = keys
            .iter()
            .find(|(_, r)| r.name == "demo read_only")
            .map(|(k, _)| k.expose().to_string())
            .unwrap();
        assert!(text.contains(&format!(
            "curl -H \"Authorization: Bearer {read_only}\" http://127.0.0.1:9999/v1/public/cms/articles/items"
        )));
        for (key, _) in &keys {
            assert!(text.contains(key.expose()));
        }
    }

    #[test]
    fn bad_prefix_or_project_is_refused() {
        assert!(generate("KG", "acme", NOW).is_err());
        assert!(generate("kg", "", NOW).is_err());
        assert!(generate("kg", "a b", NOW).is_err());
    }
}
