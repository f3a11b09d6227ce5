//! What a request costs in KV reads and Durable Object calls, counted by the worker's dev-only
//! counters (test mode), not assumed. One test, so no other request disturbs the counts.

// Tests: a failed expectation is a failed test, with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use serde_json::{json, Value};

use common::{Gateway, Options};

fn counters(g: &Gateway) -> (u64, u64) {
    let body: Value = g.request("GET", "/__keygate/counters").send().json();
    (body["kv_reads"].as_u64().unwrap(), body["do_calls"].as_u64().unwrap())
}

/// (KV reads, DO calls) made by `n` runs of `request`.
fn cost(g: &Gateway, n: usize, request: impl Fn() -> u16) -> (u64, u64) {
    let (kv, calls) = counters(g);
    for _ in 0..n {
        request();
    }
    let (kv_after, calls_after) = counters(g);
    (kv_after - kv, calls_after - calls)
}

#[test]
fn hot_malformed_unknown_and_limited_keys_cost_what_the_design_says() {
    let g = Gateway::start(Options { vars: vec![("KEYGATE_TEST_MODE", "yes-this-is-a-test-deployment")], ..Options::default() });
    let list = "/v1/public/cms/articles/items";
    let get = |key: &str| g.request("GET", list).bearer(key).send().status;

    // Fixture keys were seeded straight into KV (no registry): exact mode leases from the
    // limiter (LEASE_MS, default 1000 ms): the first request took a lease of one unit, and
    // grants double while the isolate uses them up (2, 4, 8: 14 units for these 10), so the
    // calls grow with the logarithm of the requests, not with the requests.
    assert_eq!(get(&g.keys.read_only), 200);
    let (kv, calls) = cost(&g, 10, || get(&g.keys.read_only));
    assert!(kv == 0 && calls <= 4, "hot exact-mode key: no KV read, grants doubling: {kv} KV reads, {calls} calls");

    assert_eq!(cost(&g, 10, || get("kg_live_not-even-close")), (0, 0), "malformed: no I/O at all");

    let unknown = &g.keys.unknown;
    assert_eq!(cost(&g, 10, || get(unknown)), (1, 0), "unknown: one KV read per negative-cache TTL");

    let created =
        g.admin("POST", "/keys").json(&json!({"project":"costs","name":"fast","role":"read_only","limit_mode":"fast"})).send().json();
    let fast = created["key"].as_str().unwrap().to_string();
    assert_eq!(get(&fast), 200);
    assert_eq!(cost(&g, 10, || get(&fast)), (0, 0), "hot fast-mode key without limits: no I/O but the origin");
}
