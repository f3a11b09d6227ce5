//! Admin request bodies and list queries: `keygate_core::admin::request::{parse_create,
//! parse_update, parse_roll, parse_list}` on arbitrary bytes, with the default config's rules.
//! Never panics; what they accept makes records the gateway can store and read back.
#![no_main]

use std::collections::BTreeMap;
use std::sync::OnceLock;

use arbitrary::{Arbitrary, Unstructured};
use keygate_core::admin::lifecycle;
use keygate_core::admin::request::{
    is_grantable, is_valid_project, parse_create, parse_list, parse_roll, parse_update, Rules, MAX_GRACE_SECONDS,
};
use keygate_core::config::{Tier, DEFAULT_TIERS};
use keygate_core::error::GatewayError;
use keygate_core::key::KeyFormat;
use keygate_core::limit::algorithm::validate_specs;
use keygate_core::record::{decode, encode, KeyRecord, Status};
use keygate_core::scope::{Roles, DEFAULT_SCOPES};
use libfuzzer_sys::fuzz_target;

mod common;
use serde_json::{json, Map, Value};

const NOW: i64 = 1_800_000_000_000;

struct Defaults {
    roles: Roles,
    scopes: Vec<String>,
    tiers: BTreeMap<String, Tier>,
    key_format: KeyFormat,
}

fn defaults() -> &'static Defaults {
    static DEFAULTS: OnceLock<Defaults> = OnceLock::new();
    DEFAULTS.get_or_init(|| Defaults {
        roles: Roles::builtin(),
        scopes: DEFAULT_SCOPES.iter().map(|s| s.to_string()).collect(),
        tiers: serde_json::from_str(DEFAULT_TIERS).expect("DEFAULT_TIERS"),
        key_format: KeyFormat::default(),
    })
}

fn rules() -> Rules<'static> {
    let d = defaults();
    Rules { roles: &d.roles, scopes: &d.scopes, tiers: &d.tiers, empty_scopes: Default::default(), key_format: &d.key_format, now_ms: NOW }
}

/// A record as the gateway stores it must decode back to itself.
fn assert_storable(record: &KeyRecord) {
    let encoded = encode(record);
    let back = decode(encoded.as_bytes()).unwrap_or_else(|e| panic!("stored record does not decode: {e:?}\n{encoded}"));
    assert_eq!(&back, record, "stored record changes on the way back\n{encoded}");
}

fn base_record() -> KeyRecord {
    let body = br#"{"project":"acme","name":"site","role":"read_only"}"#;
    let request = parse_create(body, &rules()).expect("base body");
    lifecycle::create(&request, "key_base".into(), "kg_live_…abcd".into(), NOW - 1000).0
}

fn check(body: &[u8]) {
    let rules = rules();
    match parse_create(body, &rules) {
        Ok(create) => {
            assert!(is_valid_project(&create.project));
            assert!(!create.name.is_empty() && create.name.chars().count() <= 100);
            assert!(create.role.is_some() || !create.scopes.is_empty());
            assert!(create.scopes.iter().all(|s| is_grantable(s, rules.scopes)));
            assert!(create.limits.as_deref().is_none_or(|l| validate_specs(l).is_ok()));
            if let Some(to) = create.valid_to {
                assert!(to.millis() > NOW && create.valid_from.is_none_or(|from| from < to));
            }
            let (record, _audit) = lifecycle::create(&create, "key_new".into(), "kg_live_…wxyz".into(), NOW);
            assert_storable(&record);
        }
        Err(error) => expect_validation(error),
    }
    match parse_update(body, &rules) {
        Ok(update) => {
            if let keygate_core::admin::patch::Patch::Set(limits) = &update.limits {
                assert!(validate_specs(limits).is_ok());
            }
            assert_ne!(update.status, Some(Status::Revoked));
            for old in [base_record(), lifecycle::revoke(&base_record(), NOW - 500).0] {
                if let Ok((new, _audit)) = lifecycle::update(&old, &update, NOW) {
                    assert_storable(&new);
                    assert!(new.revision >= old.revision);
                }
            }
        }
        Err(error) => expect_validation(error),
    }
    match parse_roll(body) {
        Ok(roll) => {
            assert!(roll.grace_seconds <= MAX_GRACE_SECONDS);
            let follow_use = roll.after_new_used_seconds.map(|after| (after, roll.old_unused_seconds));
            let rolled = lifecycle::roll(&base_record(), "key_next".into(), "kg_live_…next".into(), roll.grace_seconds, follow_use, NOW)
                .expect("an active key rolls");
            assert_storable(&rolled.new);
            assert_storable(&rolled.old);
        }
        Err(error) => expect_validation(error),
    }
    let query = String::from_utf8_lossy(body);
    match parse_list(&query) {
        Ok(list) => {
            assert!(is_valid_project(&list.project));
            assert!((1..=100).contains(&list.limit));
            assert!(list.cursor.as_ref().is_none_or(|c| !c.is_empty() && c.len() <= 128));
        }
        Err(error) => expect_validation(error),
    }
}

fn expect_validation(error: GatewayError) {
    match error {
        GatewayError::ValidationFailed { fields } => assert!(!fields.is_empty()),
        other => panic!("expected VALIDATION_FAILED, got {other:?}"),
    }
}

/// Structured bodies: a JSON object whose fields the fuzzer picks from the real field names
/// with plausible or arbitrary values, to get past the JSON syntax quickly.
#[derive(Arbitrary, Debug)]
enum Field<'a> {
    Null,
    Text(&'a str),
    Known(u8),
    Number(i64),
    Unsigned(u64),
    Float(f64),
    Bool(bool),
    List(Vec<&'a str>),
    Meta(Vec<(&'a str, &'a str)>),
    Time(common::Time),
    Limits(Vec<(&'a str, u64, u64)>),
}

const NAMES: &[&str] = &[
    "project",
    "name",
    "env",
    "role",
    "scopes",
    "valid_from",
    "valid_to",
    "allowed_origins",
    "allowed_networks",
    "allowed_countries",
    "meta",
    "tier",
    "limits",
    "limit_mode",
    "status",
    "grace_seconds",
    "isActive",
];
const KNOWN: &[&str] = &[
    "\"acme\"",
    "\"site\"",
    "\"live\"",
    "\"test\"",
    "\"writer\"",
    "\"read_only\"",
    "[\"content:read\"]",
    "[\"content:*\"]",
    "[\"*\"]",
    "\"active\"",
    "\"inactive\"",
    "\"revoked\"",
    "\"exact\"",
    "\"fast\"",
    "\"pro\"",
    "\"free\"",
    "[\"https://a.example\",\"http://localhost:3000\"]",
    "{\"team\":\"web\"}",
    "3600",
    "2592000",
    "\"2027-01-01T00:00:00Z\"",
    "\"9999-12-31T23:59:59Z\"",
    "[{\"name\":\"m\",\"limit\":5,\"window_seconds\":60}]",
];

fn value(field: &Field<'_>) -> Value {
    match field {
        Field::Null => Value::Null,
        Field::Text(text) => json!(text),
        Field::Known(i) => serde_json::from_str(KNOWN[usize::from(*i) % KNOWN.len()]).expect("known JSON"),
        Field::Number(n) => json!(n),
        Field::Unsigned(n) => json!(n),
        Field::Float(f) => json!(f),
        Field::Bool(b) => json!(b),
        Field::List(items) => json!(items),
        Field::Meta(pairs) => Value::Object(pairs.iter().map(|(k, v)| (k.to_string(), json!(v))).collect()),
        Field::Time(time) => json!(time.text()),
        Field::Limits(list) => {
            Value::Array(list.iter().map(|(name, limit, window)| json!({"name": name, "limit": limit, "window_seconds": window})).collect())
        }
    }
}

fuzz_target!(|data: &[u8]| {
    // Raw bytes as a body (and as a query string).
    check(data);
    // A structured JSON object.
    let mut u = Unstructured::new(data);
    if let Ok(fields) = <Vec<(u8, Field<'_>)>>::arbitrary(&mut u) {
        let map: Map<String, Value> =
            fields.iter().map(|(which, field)| (NAMES[usize::from(*which) % NAMES.len()].to_string(), value(field))).collect();
        check(serde_json::to_string(&Value::Object(map)).expect("serializable").as_bytes());
    }
});
