//! Limiter leases (`LEASE_MS`, default 1000) against the real worker under `wrangler dev`: an
//! admin change is enforced within `LEASE_MS` of the admin call returning, on the worker's own
//! clock, and a hot `exact`-mode key costs far fewer limiter calls than requests. No sleeps, no
//! timed assertions: the gateway is polled a bounded number of times, and times are read from
//! the worker (the test-mode counters' `now_ms`, a refusal's `meta.timestamp`).

// Tests: a failed expectation is a failed test, with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::OnceLock;

use serde_json::{json, Value};

use common::{Gateway, Options};
use keygate_core::limit::lease::DEFAULT_LEASE_MS;
use keygate_core::timestamp::Timestamp;

const LIST: &str = "/v1/public/cms/articles/items";

fn gateway() -> &'static Gateway {
    static GATEWAY: OnceLock<Gateway> = OnceLock::new();
    GATEWAY.get_or_init(|| {
        Gateway::start(Options { vars: vec![("KEYGATE_TEST_MODE", "yes-this-is-a-test-deployment")], ..Options::default() })
    })
}

/// The counters are the isolate's, shared by every request: one test at a time.
fn serial() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn counters(g: &Gateway) -> Value {
    g.request("GET", "/__keygate/counters").send().json()
}

fn create(g: &Gateway, body: Value) -> (String, String) {
    let response = g.admin("POST", "/keys").json(&body).send();
    assert_eq!(response.status, 201, "{}", response.body);
    let created = response.json();
    (created["key"].as_str().unwrap().to_string(), created["record"]["id"].as_str().unwrap().to_string())
}

#[test]
fn a_disable_is_enforced_within_lease_ms_of_the_admin_call_on_the_workers_clock() {
    let _serial = serial();
    let g = gateway();
    let (key, id) = create(g, json!({"project":"leases","name":"disable","role":"read_only"}));
    for _ in 0..20 {
        assert_eq!(g.request("GET", LIST).bearer(&key).send().status, 200, "the isolate holds a lease");
    }
    let patched = g.admin("PATCH", &format!("/keys/{id}")).json(&json!({"status":"inactive"})).send();
    assert_eq!(patched.status, 200);
    // The worker's clock right after the admin call returned (a little later, if anything).
    let returned = counters(g)["now_ms"].as_i64().unwrap();
    let mut first_refusal: Option<i64> = None;
    for n in 0..20_000 {
        let response = g.request("GET", LIST).bearer(&key).send();
        match (response.status, first_refusal) {
            (200, None) => continue,
            (401, None) => {
                let body = response.assert_error(401, "KEY_DISABLED");
                let at = Timestamp::parse_rfc3339(body["meta"]["timestamp"].as_str().unwrap()).unwrap().millis();
                first_refusal = Some(at);
                // Every later request is refused as well.
                let later: Vec<u16> = (0..50).map(|_| g.request("GET", LIST).bearer(&key).send().status).collect();
                assert!(later.iter().all(|s| *s == 401), "refused for good once refused: {later:?}");
                break;
            }
            (status, _) => panic!("request {n}: {status}: {}", response.body),
        }
    }
    let first_refusal = first_refusal.expect("the disable was enforced within 20,000 requests");
    let lease_ms = DEFAULT_LEASE_MS as i64;
    assert!(
        first_refusal <= returned + lease_ms,
        "first refusal at {first_refusal}, {} ms after the admin call returned (LEASE_MS {lease_ms})",
        first_refusal - returned
    );
}

#[test]
fn a_hot_exact_mode_key_costs_far_fewer_limiter_calls_than_requests() {
    let _serial = serial();
    let g = gateway();
    for (name, limits) in [("unlimited", None), ("limited", Some(json!([{"name":"hour","limit":100000,"window_seconds":3600}])))] {
        let mut body = json!({"project":"leases","name":name,"role":"read_only","limit_mode":"exact"});
        if let Some(limits) = limits {
            body["limits"] = limits;
        }
        let (key, _) = create(g, body);
        let before = counters(g)["limiter_calls"].as_u64().unwrap();
        let requests = 200;
        for _ in 0..requests {
            assert_eq!(g.request("GET", LIST).bearer(&key).send().status, 200);
        }
        let calls = counters(g)["limiter_calls"].as_u64().unwrap() - before;
        assert!(calls * 10 <= requests, "{name}: {calls} limiter calls for {requests} sequential requests");
    }
}
