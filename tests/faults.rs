//! Fault behaviour: a hanging origin (→ 504 after ORIGIN_TIMEOUT_MS), origin errors passed
//! through unchanged, and a failing KV (→ 503, fail closed).

// Tests: a failed expectation is a failed test, with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::OnceLock;

use common::{Gateway, Options};

const TEST_MODE: (&str, &str) = ("KEYGATE_TEST_MODE", "yes-this-is-a-test-deployment");

fn gateway() -> &'static Gateway {
    static GATEWAY: OnceLock<Gateway> = OnceLock::new();
    GATEWAY.get_or_init(|| Gateway::start(Options { vars: vec![("ORIGIN_TIMEOUT_MS", "500"), TEST_MODE], ..Options::default() }))
}

fn kv_down() -> &'static Gateway {
    static GATEWAY: OnceLock<Gateway> = OnceLock::new();
    GATEWAY.get_or_init(|| Gateway::start(Options { vars: vec![("KV_FAULT", "on"), TEST_MODE], ..Options::default() }))
}

#[test]
fn hanging_origin_is_504_origin_timeout() {
    let g = gateway();
    // The origin would answer 200 after 20 s; only the gateway's 500 ms timeout yields a 504.
    let response = g.request("GET", "/__slow/20000").bearer(&g.keys.read_only).send();
    response.assert_error(504, "ORIGIN_TIMEOUT");
    g.log_containing("origin_timeout");
    // A slow-but-in-time origin still answers.
    let ok = g.request("GET", "/__slow/10").bearer(&g.keys.read_only).send();
    assert_eq!(ok.status, 200, "{}", ok.body);
}

#[test]
fn origin_5xx_passes_through_unchanged() {
    let g = gateway();
    for code in [500u16, 502, 503, 504] {
        let response = g.request("GET", &format!("/__status/{code}")).bearer(&g.keys.read_only).send();
        assert_eq!(response.status, code);
        assert_eq!(response.header("x-origin-label"), Some("live"), "the origin's own answer");
        assert_eq!(response.json()["status"].as_u64(), Some(code as u64));
    }
}

#[test]
fn failing_kv_fails_closed_and_logs_no_key() {
    let g = kv_down();
    let response = g.request("GET", "/v1/public/cms/articles/items").bearer(&g.keys.read_only).send();
    response.assert_error(503, "STORE_UNAVAILABLE");
    let log = g.log_containing("KV_FAULT");
    assert!(!log.contains(&g.keys.read_only));
    // Refusals that need no KV read still answer normally.
    g.request("GET", "/v1/public/cms/articles/items").send().assert_error(401, "MISSING_KEY");
    g.request("GET", "/v1/public/cms/articles/items").bearer("kg_live_short").send().assert_error(401, "INVALID_KEY");
}
