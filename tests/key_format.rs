//! The key format as configuration, against the real worker under `wrangler dev`: an
//! OptimoCMS-like gateway (`KEY_PREFIXES = ["optimo", "kg"]`, segments `live` and `sandbox`, the
//! old `test` still accepted) and an Ovok-like gateway without environment segment (`cmspub`).
//! The harness seeds its fixture keys as `kg_live_…`/`kg_test_…`: on the OptimoCMS-like gateway
//! they are keys minted before the migration to `optimo`.

// Tests: a failed expectation is a failed test, with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::OnceLock;

use common::{Gateway, Options};
use keygate_core::key::{self, KeyEnv, BODY_LEN, CHECKSUM_LEN};
use serde_json::{json, Value};

/// OptimoCMS-like: `optimo` mints, `kg` is still accepted; `sandbox` mints test keys.
fn optimo() -> &'static Gateway {
    static GATEWAY: OnceLock<Gateway> = OnceLock::new();
    GATEWAY.get_or_init(|| {
        Gateway::start(Options {
            vars: vec![
                // The shipped wrangler.toml sets KEY_PREFIX; empty = unset (both set is CONFIG_INVALID).
                ("KEY_PREFIX", ""),
                ("KEY_PREFIXES", r#"["optimo", "kg"]"#),
                ("KEY_ENV_SEGMENTS", r#"{"live": "live", "test": ["sandbox", "test"]}"#),
            ],
            ..Options::default()
        })
    })
}

/// Ovok-like: keys `cmspub_<body><checksum>`, every key live.
fn cmspub() -> &'static Gateway {
    static GATEWAY: OnceLock<Gateway> = OnceLock::new();
    GATEWAY.get_or_init(|| {
        Gateway::start(Options { vars: vec![("KEY_PREFIX", "cmspub"), ("KEY_ENV_SEGMENTS", "none")], ..Options::default() })
    })
}

/// Creates a key through the admin API; its plaintext and record.
fn create(g: &Gateway, env: &str) -> (String, Value) {
    let response =
        g.admin("POST", "/keys").json(&json!({"project": "acme", "name": format!("{env} app"), "role": "read_only", "env": env})).send();
    assert_eq!(response.status, 201, "{}", response.body);
    let body = response.json();
    (body["key"].as_str().expect("key").to_string(), body["record"].clone())
}

/// Which origin the key reaches (the demo origins echo their label), or the refusal.
fn origin_reached(g: &Gateway, key: &str) -> String {
    let response = g.request("GET", "/__echo/format").bearer(key).send();
    assert_eq!(response.status, 200, "{}", response.body);
    response.json()["origin"].as_str().unwrap_or("").to_string()
}

#[test]
fn a_test_key_is_minted_as_optimo_sandbox_and_reaches_the_test_origin() {
    let g = optimo();
    let (key, record) = create(g, "test");
    assert!(key.starts_with("optimo_sandbox_"), "minted with the first prefix and the first test segment");
    assert_eq!(key.len(), "optimo_sandbox_".len() + BODY_LEN + CHECKSUM_LEN);
    assert_eq!(record["env"], "test");
    assert!(record["hint"].as_str().unwrap().starts_with("optimo_sandbox_…"));
    assert_eq!(origin_reached(g, &key), "test");

    let rolled = g.admin("POST", &format!("/keys/{}/roll", record["id"].as_str().unwrap())).send();
    assert_eq!(rolled.status, 201, "{}", rolled.body);
    let new_key = rolled.json()["key"].as_str().unwrap().to_string();
    assert!(new_key.starts_with("optimo_sandbox_") && new_key != key);
    assert_eq!(origin_reached(g, &new_key), "test");
}

#[test]
fn a_live_key_is_minted_as_optimo_live_and_reaches_the_live_origin() {
    let g = optimo();
    let (key, record) = create(g, "live");
    assert!(key.starts_with("optimo_live_"));
    assert_eq!(record["env"], "live");
    assert_eq!(origin_reached(g, &key), "live");
    // The new prefix is a key in a URL like any other.
    g.request("GET", &format!("/__echo/format?api_key={key}")).bearer(&key).send().assert_error(400, "BAD_REQUEST");
}

#[test]
fn keys_minted_under_the_old_kg_prefix_keep_working_once_kg_is_a_second_prefix() {
    let g = optimo();
    assert!(g.keys.read_only.starts_with("kg_live_") && g.keys.test_env.starts_with("kg_test_"));
    assert_eq!(origin_reached(g, &g.keys.read_only), "live");
    assert_eq!(origin_reached(g, &g.keys.test_env), "test");
    // A prefix that is not listed (of a length a listed one has) is a format refusal, before any lookup.
    let other = key::assemble("optima", KeyEnv::Live, "abcdefghijklmnopqrstuvwxyzABCDEF");
    let body = g.request("GET", "/__echo/format").bearer(other.expose()).send().assert_error(401, "INVALID_KEY");
    assert_eq!(body["error"]["details"]["reason"], "wrong_prefix");
}

#[test]
fn without_segments_keys_are_cmspub_and_live_and_a_test_key_cannot_be_created() {
    let g = cmspub();
    let (key, record) = create(g, "live");
    let body = key.strip_prefix("cmspub_").expect("cmspub_ prefix");
    assert_eq!(body.len(), BODY_LEN + CHECKSUM_LEN, "no segment: {}", record["hint"]);
    assert!(body.bytes().all(|b| b.is_ascii_alphanumeric()));
    assert_eq!(origin_reached(g, &key), "live");

    let refused = g.admin("POST", "/keys").json(&json!({"project": "acme", "name": "sandbox", "role": "read_only", "env": "test"})).send();
    let error = refused.assert_error(400, "VALIDATION_FAILED");
    assert!(error["error"]["details"]["fields"]["env"].as_str().is_some_and(|m| m.contains("KEY_ENV_SEGMENTS")), "{}", refused.body);

    // A key with a segment is not of this format; neither are the harness's kg keys.
    let with_segment = format!("cmspub_live_{}", &body[..BODY_LEN]);
    let with_segment = format!("{with_segment}{}", key::checksum(&with_segment));
    g.request("GET", "/__echo/format").bearer(&with_segment).send().assert_error(401, "INVALID_KEY");
    g.request("GET", "/__echo/format").bearer(&g.keys.read_only).send().assert_error(401, "INVALID_KEY");
}
