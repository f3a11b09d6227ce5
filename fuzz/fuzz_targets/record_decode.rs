//! Key records from KV: `keygate_core::record::decode` on arbitrary bytes must never panic; a value
//! it accepts must survive encode → decode unchanged, and must be safe for everything the hot
//! path does with a record next (authorize, the limiter, the rate-limit headers).
#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use keygate_core::key::KeyEnv;
use keygate_core::limit::{algorithm::decide, headers};
use keygate_core::policy::{authorize, RequestFacts};
use keygate_core::record::{decode, encode, KeyRecord};
use keygate_core::routes::RouteTable;
use keygate_core::scope::Roles;
use libfuzzer_sys::fuzz_target;

mod common;
use serde_json::{json, Map, Value};

/// Field values that are often valid, sometimes not: the fuzzer picks per field.
#[derive(Arbitrary, Debug)]
enum Field<'a> {
    Absent,
    Null,
    Text(&'a str),
    Known(u8),
    Number(i64),
    Time(common::Time),
    Limits(Vec<(&'a str, u64, u64)>),
    List(Vec<&'a str>),
}

const NAMES: &[&str] = &[
    "id",
    "project",
    "name",
    "env",
    "role",
    "scopes",
    "status",
    "valid_from",
    "valid_to",
    "allowed_origins",
    "allowed_networks",
    "allowed_countries",
    "created_at",
    "updated_at",
    "revision",
    "meta",
    "hint",
    "family",
    "rolled_from",
    "tier",
    "limits",
    "limit_mode",
];
const KNOWN: &[&str] = &[
    "\"live\"",
    "\"test\"",
    "\"active\"",
    "\"inactive\"",
    "\"revoked\"",
    "\"exact\"",
    "\"fast\"",
    "\"key_abc\"",
    "\"acme\"",
    "\"read_only\"",
    "[\"content:read\"]",
    "{\"team\":\"web\"}",
    "\"2026-01-01T00:00:00Z\"",
    "\"9999-12-31T23:59:59Z\"",
    "\"0000-01-01T00:00:00Z\"",
    "\"free\"",
    "[\"https://a.example\"]",
    "1",
    "18446744073709551615",
    "-1",
    "{}",
    "[]",
];

fn value(field: &Field<'_>) -> Option<Value> {
    Some(match field {
        Field::Absent => return None,
        Field::Null => Value::Null,
        Field::Text(text) => json!(text),
        Field::Known(i) => serde_json::from_str(KNOWN[usize::from(*i) % KNOWN.len()]).expect("known JSON"),
        Field::Number(n) => json!(n),
        Field::Time(time) => json!(time.text()),
        Field::Limits(list) => {
            Value::Array(list.iter().map(|(name, limit, window)| json!({"name": name, "limit": limit, "window_seconds": window})).collect())
        }
        Field::List(items) => json!(items),
    })
}

/// A template record (all required fields valid) with fuzzed fields layered on top.
fn structured(u: &mut Unstructured<'_>) -> arbitrary::Result<Vec<u8>> {
    let mut map: Map<String, Value> = serde_json::from_str(
        r#"{"id":"key_abc","project":"acme","name":"site","env":"live","role":"read_only","scopes":[],
            "status":"active","created_at":"2026-01-01T00:00:00Z","updated_at":"2026-01-01T00:00:00Z","revision":1}"#,
    )
    .expect("template");
    let changes: Vec<(u8, Field<'_>)> = u.arbitrary()?;
    for (which, field) in &changes {
        let name = NAMES[usize::from(*which) % NAMES.len()];
        match value(field) {
            Some(v) => map.insert(name.to_string(), v),
            None => map.remove(name),
        };
    }
    Ok(serde_json::to_vec(&Value::Object(map)).expect("serializable"))
}

fn check(bytes: &[u8], now_ms: i64) {
    let Ok(record) = decode(bytes) else { return };

    // What the gateway writes back (caches, DO copies, admin answers) must read back the same.
    let encoded = encode(&record);
    let again: KeyRecord = decode(encoded.as_bytes()).unwrap_or_else(|e| panic!("re-encoded record does not decode: {e:?}\n{encoded}"));
    assert_eq!(again, record, "round trip changed the record\n{encoded}");
    assert_eq!(encode(&again), encoded, "encoding is not stable");

    // The hot path next: authorize against a real route, then the record's own limits.
    let table = RouteTable::from_json(
        r#"[{"methods":["GET"],"path":"/v1/projects/:project/items","scopes":["content:read"],"project_param":"project"}]"#,
    )
    .expect("route table");
    let path = format!("/v1/projects/{}/items", if record.project.is_empty() { "x" } else { &record.project });
    if let Some(route) = table.find("GET", &path) {
        for key_env in [KeyEnv::Live, KeyEnv::Test] {
            let facts = RequestFacts { key_env, route: &route, origin: Some("https://a.example") };
            let _ = authorize(&record, &facts, &Roles::builtin(), &[], now_ms);
        }
    }
    if let Some(limits) = &record.limits {
        let mut states = Vec::new();
        for step in 0..3 {
            let decision = decide(limits, &mut states, now_ms + step);
            let _ = headers::render(limits, &decision, (now_ms / 1000) as u64, None);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    const NOW_MS: i64 = 1_800_000_000_000;
    // Raw bytes, as KV may hold anything.
    check(data, NOW_MS);
    // Structured records: valid-looking values in every field, to get past the JSON syntax.
    let mut u = Unstructured::new(data);
    if let Ok(bytes) = structured(&mut u) {
        check(&bytes, NOW_MS);
    }
});
