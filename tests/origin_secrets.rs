//! Each origin has its own signing secret (`ORIGIN_SIGNING_SECRET_TEST` set): the live origin
//! verifies with `ORIGIN_SIGNING_SECRET`, the test origin with `ORIGIN_SIGNING_SECRET_TEST`, and a
//! test key's identity token replayed at the live origin are refused. (`tests/gateway.rs`
//! checks the fallback: one secret for both, separated by the audience alone.)

// Tests: a failed expectation is a failed test, with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::OnceLock;

use common::{Gateway, Options, SIGNING_SECRET, TEST_SIGNING_SECRET};
use keygate_core::signature::{verify, Audience, VerifyError, DEFAULT_LEEWAY_SECONDS};

fn gateway() -> &'static Gateway {
    static GATEWAY: OnceLock<Gateway> = OnceLock::new();
    GATEWAY.get_or_init(|| Gateway::start(Options { test_signing_secret: Some(TEST_SIGNING_SECRET), ..Options::default() }))
}

const LIST: &str = "/v1/public/cms/articles/items";

#[test]
fn live_and_test_keys_are_served_by_their_own_origins() {
    let g = gateway();
    let live = g.request("GET", LIST).bearer(&g.keys.read_only).send();
    assert_eq!((live.status, live.json()["origin"].as_str()), (200, Some("live")), "{}", live.body);
    let test = g.request("GET", LIST).bearer(&g.keys.test_env).send();
    assert_eq!((test.status, test.json()["origin"].as_str()), (200, Some("test")), "{}", test.body);
}

#[test]
fn the_test_origin_gets_signatures_made_with_the_test_secret_for_its_own_audience() {
    let g = gateway();
    let path = "/__echo/secret?a=1";
    let echo = g.request("GET", path).bearer(&g.keys.test_env).send().json();
    let token = echo["headers"]["x-keygate-identity"].as_str().expect("identity token");
    let issued_at = echo["identity"]["issued_at"].as_u64().expect("issued_at");
    let test_origin = Audience::from_url(g.test_origin_url.as_deref().expect("test origin")).expect("audience");
    let live_origin = Audience::from_url(&g.live_origin_url).expect("audience");
    let check = |secret: &str, audience: &Audience| {
        verify(secret.as_bytes(), audience, "GET", path, Some(token), issued_at, DEFAULT_LEEWAY_SECONDS).map(|_| ())
    };
    assert_eq!(check(TEST_SIGNING_SECRET, &test_origin), Ok(()));
    assert_eq!(check(SIGNING_SECRET, &test_origin), Err(VerifyError::Signature), "the live secret must not sign for the test origin");
    assert_eq!(check(TEST_SIGNING_SECRET, &live_origin), Err(VerifyError::Audience), "the audience still separates the origins");
}

#[test]
fn test_key_identity_replayed_at_the_live_origin_is_refused() {
    // The live origin's secret does not verify the test secret's signature, whatever the audience.
    gateway().assert_test_key_replay_refused_at_live("/__echo/replay?x=1", "signature");
}
