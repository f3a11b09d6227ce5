//! A gateway whose live origin refuses connections and that has no test origin configured.

// Tests: a failed expectation is a failed test, with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::OnceLock;

use common::{Gateway, Options};

fn gateway() -> &'static Gateway {
    static GATEWAY: OnceLock<Gateway> = OnceLock::new();
    GATEWAY.get_or_init(|| Gateway::start(Options { live_origin: false, test_origin: false, ..Options::default() }))
}

const LIST: &str = "/v1/public/cms/articles/items";

#[test]
fn test_key_without_test_origin_is_an_environment_mismatch() {
    let g = gateway();
    g.request("GET", LIST).bearer(&g.keys.test_env).send().assert_error(403, "ENVIRONMENT_MISMATCH");
}

#[test]
fn unreachable_origin_is_502_after_all_checks_pass() {
    let g = gateway();
    g.request("GET", LIST).bearer(&g.keys.read_only).send().assert_error(502, "ORIGIN_UNAVAILABLE");
    // Refusals still come first: a bad key never reaches the (dead) origin.
    g.request("GET", LIST).bearer(&g.keys.revoked).send().assert_error(401, "KEY_REVOKED");
}

#[test]
fn origin_failure_is_logged_without_the_key() {
    let g = gateway();
    g.request("GET", LIST).header("X-Api-Key", &g.keys.read_only).send().assert_error(502, "ORIGIN_UNAVAILABLE");
    let log = g.log_containing("origin_unavailable");
    assert!(!log.contains(&g.keys.read_only));
}
