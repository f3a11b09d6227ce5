//! Custom credential header names (`AUTH_HEADER`, `API_KEY_HEADER`) on the wire, against the
//! real worker under `wrangler dev`: the configured headers are the credential (and only they
//! are stripped before the origin), whatever case the client sends them in.
//!
//! The stripping rule is stated in Rust (`keygate_core::forward::strips_header`, unit-tested),
//! which lists the incoming names to drop, and applied on the request path by the JavaScript
//! `outbound` in `crates/worker/js/runtime.js`; this test holds the wire to the same rule for
//! names other than the defaults.

// Tests: a failed expectation is a failed test, with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::OnceLock;

use common::{Gateway, Options};
use keygate_core::config::Config;
use keygate_core::forward::strips_header;

const AUTH: &str = "X-Acme-Auth";
const API_KEY: &str = "X-Acme-Key";

fn gateway() -> &'static Gateway {
    static GATEWAY: OnceLock<Gateway> = OnceLock::new();
    GATEWAY.get_or_init(|| Gateway::start(Options { vars: vec![("AUTH_HEADER", AUTH), ("API_KEY_HEADER", API_KEY)], ..Options::default() }))
}

const LIST: &str = "/v1/public/cms/articles/items";

fn echoed_headers(response: &common::Resp) -> serde_json::Map<String, serde_json::Value> {
    assert_eq!(response.status, 200, "{}", response.body);
    response.json()["headers"].as_object().expect("headers").clone()
}

#[test]
fn the_configured_api_key_header_is_the_credential_and_is_stripped() {
    let g = gateway();
    let response = g
        .request("GET", "/__echo/custom")
        // Sent in another case than configured: header names are case-insensitive.
        .header("x-ACME-key", &g.keys.read_only)
        .header("Authorization", "Basic b3JpZ2luOm93bg==")
        .header("X-Api-Key", "not-a-credential-here")
        .header("X-Keygate-Env", "forged")
        .send();
    let headers = echoed_headers(&response);
    assert!(headers.get("x-acme-key").is_none(), "the configured credential header reached the origin");
    assert!(headers.get("x-acme-auth").is_none());
    // With custom names, the default names are ordinary headers and reach the origin as sent.
    assert_eq!(headers["authorization"], "Basic b3JpZ2luOm93bg==");
    assert_eq!(headers["x-api-key"], "not-a-credential-here");
    assert!(headers.get("x-keygate-env").is_none(), "client-sent X-Keygate-* must be stripped");
    assert_eq!(response.json()["identity"]["env"], "live", "the origin verified keygate's token");
    for (name, value) in &headers {
        assert!(!value.as_str().unwrap_or("").contains(g.keys.read_only.as_str()), "the key reached the origin in {name}");
    }
    // The wire agrees with the Rust statement of the rule for every header that was sent.
    let config = Config::from_lookup(|name| match name {
        "AUTH_HEADER" => Some(AUTH.into()),
        "API_KEY_HEADER" => Some(API_KEY.into()),
        "ORIGIN_URL" => Some("http://127.0.0.1:1/".into()),
        "ORIGIN_SIGNING_SECRET" => Some("0123456789abcdef0123".into()),
        _ => None,
    })
    .expect("config with custom header names");
    for name in ["x-acme-key", "authorization", "x-api-key", "x-keygate-env"] {
        let stripped = strips_header(&config, name);
        let forwarded_as_sent = headers.contains_key(name) && !name.starts_with("x-keygate-");
        assert_eq!(stripped, !forwarded_as_sent, "{name}: the JS forwarder and forward::strips_header disagree");
    }
}

#[test]
fn the_configured_auth_header_carries_a_bearer_key() {
    let g = gateway();
    let response = g.request("GET", "/__echo/custom-bearer").header(AUTH, &format!("Bearer {}", g.keys.read_only)).send();
    let headers = echoed_headers(&response);
    assert!(headers.get("x-acme-auth").is_none(), "the configured credential header reached the origin");
    assert!(response.json()["identity"]["key_id"].as_str().unwrap_or("").starts_with("key_"));
}

#[test]
fn the_default_headers_are_not_credentials_under_custom_names() {
    let g = gateway();
    // A key in `Authorization` is no credential here: nothing is forwarded, the key is missing.
    let response = g.request("GET", LIST).bearer(&g.keys.read_only).send();
    response.assert_error(401, "MISSING_KEY");
    let response = g.request("GET", LIST).header("X-Api-Key", &g.keys.read_only).send();
    response.assert_error(401, "MISSING_KEY");
    // Two different keys in the two configured headers are as ambiguous as in the default ones.
    let response = g.request("GET", LIST).header(API_KEY, &g.keys.read_only).header(AUTH, &format!("Bearer {}", g.keys.writer)).send();
    response.assert_error(400, "BAD_REQUEST");
}
