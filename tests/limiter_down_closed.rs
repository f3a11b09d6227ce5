//! `RATE_LIMIT_FAILURE=closed`: with the limiter failing (test-only fault switch), requests of
//! exact-mode keys are refused with 503 STORE_UNAVAILABLE.

// Tests: a failed expectation is a failed test, with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::OnceLock;

use common::{Gateway, Options};

fn gateway() -> &'static Gateway {
    static GATEWAY: OnceLock<Gateway> = OnceLock::new();
    GATEWAY.get_or_init(|| {
        Gateway::start(Options {
            vars: vec![("LIMITER_FAULT", "on"), ("KEYGATE_TEST_MODE", "yes-this-is-a-test-deployment"), ("RATE_LIMIT_FAILURE", "closed")],
            ..Options::default()
        })
    })
}

#[test]
fn limiter_failure_fails_closed() {
    let g = gateway();
    g.request("GET", "/v1/public/cms/articles/items").bearer(&g.keys.read_only).send().assert_error(503, "STORE_UNAVAILABLE");
    // Refusals that do not need the limiter are unchanged.
    g.request("GET", "/v1/public/cms/articles/items").bearer(&g.keys.revoked).send().assert_error(401, "KEY_REVOKED");
}
