//! A gateway started without its origin signing secret must fail closed on every request.

// Tests: a failed expectation is a failed test, with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::OnceLock;

use common::{Gateway, Options};

fn gateway() -> &'static Gateway {
    static GATEWAY: OnceLock<Gateway> = OnceLock::new();
    GATEWAY.get_or_init(|| Gateway::start(Options { signing_secret: false, ..Options::default() }))
}

#[test]
fn missing_signing_secret_refuses_every_request_with_config_invalid() {
    let g = gateway();
    for key in [&g.keys.read_only, &g.keys.writer] {
        let body = g.request("GET", "/v1/public/cms/articles/items").bearer(key).send().assert_error(500, "CONFIG_INVALID");
        assert!(body["error"]["details"]["reason"].as_str().unwrap().contains("ORIGIN_SIGNING_SECRET"));
    }
    g.request("GET", "/v1/public/cms/articles/items").send().assert_error(500, "CONFIG_INVALID");
    g.log_containing("config_invalid");
}
