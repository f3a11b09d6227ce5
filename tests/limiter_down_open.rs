//! `RATE_LIMIT_FAILURE=open`: with the limiter failing (test-only fault switch), authenticated
//! requests are still served and refusals still happen.

// Tests: a failed expectation is a failed test, with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::OnceLock;

use serde_json::json;

use common::{Gateway, Options};

fn gateway() -> &'static Gateway {
    static GATEWAY: OnceLock<Gateway> = OnceLock::new();
    GATEWAY.get_or_init(|| {
        Gateway::start(Options {
            vars: vec![("LIMITER_FAULT", "on"), ("KEYGATE_TEST_MODE", "yes-this-is-a-test-deployment"), ("RATE_LIMIT_FAILURE", "open")],
            ..Options::default()
        })
    })
}

#[test]
fn limiter_failure_fails_open_but_auth_still_holds() {
    let g = gateway();
    let created = g
        .admin("POST", "/keys")
        .json(&json!({"project":"open","name":"n","role":"read_only","limits":[{"name":"hour","limit":1,"window_seconds":3600}]}))
        .send();
    // Admin changes must tell the limiter first; creation does not need it.
    assert_eq!(created.status, 201, "{}", created.body);
    let key = created.json()["key"].as_str().unwrap().to_string();
    for _ in 0..3 {
        let response = g.request("GET", "/v1/public/cms/articles/items").bearer(&key).send();
        assert_eq!(response.status, 200, "fail open: {}", response.body);
        assert!(response.header("ratelimit").is_none(), "no limit headers when the limiter was not asked");
    }
    g.request("GET", "/v1/public/cms/articles/items").bearer(&g.keys.revoked).send().assert_error(401, "KEY_REVOKED");
    g.request("GET", "/v1/public/cms/articles/items").send().assert_error(401, "MISSING_KEY");
    g.log_containing("limiter_unavailable");
}

#[test]
fn revocation_does_not_wait_for_a_failing_limiter() {
    let g = gateway();
    let created = g.admin("POST", "/keys").json(&json!({"project":"open","name":"r","role":"read_only"})).send().json();
    let key = created["key"].as_str().unwrap().to_string();
    let id = created["record"]["id"].as_str().unwrap().to_string();
    let revoked = g.admin("DELETE", &format!("/keys/{id}")).send();
    assert_eq!(revoked.status, 200, "{}", revoked.body);
    assert_eq!(revoked.json()["status"], "revoked");
    g.request("GET", "/v1/public/cms/articles/items").bearer(&key).send().assert_error(401, "KEY_REVOKED");
}

#[test]
fn admin_auth_failures_are_still_limited_when_the_limiter_fails() {
    // The admin-auth limiter is unreachable too: this isolate counts failures itself (wrangler
    // dev runs one isolate, so the default 10 per address per minute holds exactly here).
    let g = gateway();
    let attempt = |address: &str, token: &str| {
        g.request("GET", "/_keygate/v1/keys?project=open").bearer(token).header("CF-Connecting-IP", address).send()
    };
    for _ in 0..10 {
        attempt("203.0.113.60", "wrong-admin-token-guess-000000000060").assert_error(401, "UNAUTHORIZED");
    }
    let throttled = attempt("203.0.113.60", common::ADMIN_TOKEN);
    throttled.assert_error(429, "ADMIN_AUTH_THROTTLED");
    assert!(throttled.header("retry-after").is_some());
    let elsewhere = attempt("203.0.113.61", common::ADMIN_TOKEN);
    assert_eq!(elsewhere.status, 200, "{}", elsewhere.body);
    assert!(g.log_containing("\"scope\":\"admin_auth\"").contains("limiter_unavailable"));
}
