//! Per-key limits, the status epoch and usage against the real worker under `wrangler dev`
//! (local KV and Durable Objects).

// Tests: a failed expectation is a failed test, with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::OnceLock;

use serde_json::{json, Value};

use common::{Gateway, Options, Resp};

/// The shipped tiers plus "bound": a per-minute limit far above its Rate Limiting binding's
/// (RL_FREE_MINUTE, 60/min), so only the binding can refuse within a minute.
fn tiers() -> &'static str {
    static TIERS: OnceLock<String> = OnceLock::new();
    TIERS.get_or_init(|| {
        let mut tiers: Value = serde_json::from_str(keygate_core::config::DEFAULT_TIERS).unwrap();
        tiers["bound"] = json!({
            "limits": [{"name": "minute", "limit": 1000, "window_seconds": 60}],
            "mode": "fast",
            "fast_binding": {"binding": "RL_FREE_MINUTE", "limit": "minute"}
        });
        tiers.to_string()
    })
}

fn gateway() -> &'static Gateway {
    static GATEWAY: OnceLock<Gateway> = OnceLock::new();
    GATEWAY.get_or_init(|| Gateway::start(Options { vars: vec![("TIERS", tiers())], ..Options::default() }))
}

/// The same with `LEASE_MS = 0`: every request decided by the limiter on its own. Exactness
/// under concurrency is asserted here; with leases (the default) a request that finds its lease
/// empty while a renewal is in flight may be refused while that renewal takes the last unit
/// (under-admission only, never over: docs/leases.md, tests/leases.rs and the lease simulation).
fn per_request_gateway() -> &'static Gateway {
    static GATEWAY: OnceLock<Gateway> = OnceLock::new();
    GATEWAY.get_or_init(|| Gateway::start(Options { vars: vec![("TIERS", tiers()), ("LEASE_MS", "0")], ..Options::default() }))
}

const LIST: &str = "/v1/public/cms/articles/items";

fn create(g: &Gateway, body: Value) -> (String, String) {
    let response = g.admin("POST", "/keys").json(&body).send();
    assert_eq!(response.status, 201, "{}", response.body);
    let created = response.json();
    (created["key"].as_str().unwrap().to_string(), created["record"]["id"].as_str().unwrap().to_string())
}

fn limited(g: &Gateway, project: &str, limits: Value) -> (String, String) {
    create(g, json!({"project": project, "name": "limited", "role": "read_only", "limits": limits}))
}

fn get(g: &Gateway, key: &str) -> Resp {
    g.request("GET", LIST).bearer(key).send()
}

fn usage(g: &Gateway, id: &str) -> Value {
    let response = g.admin("GET", &format!("/keys/{id}/usage")).send();
    assert_eq!(response.status, 200, "{}", response.body);
    response.json()
}

#[test]
fn a_get_with_a_body_is_refused_before_any_limit_is_spent() {
    let g = gateway();
    let (key, id) = limited(g, "body", json!([{"name":"hour","limit":1,"window_seconds":3600}]));
    let host = g.url.trim_start_matches("http://").to_string();
    let request = format!("GET {LIST} HTTP/1.0\r\nHost: {host}\r\nX-Api-Key: {key}\r\nContent-Length: 2\r\n\r\n{{}}");
    for _ in 0..3 {
        g.raw(request.as_bytes()).assert_error(400, "BAD_REQUEST");
    }
    assert_eq!(get(g, &key).status, 200, "the one request of the hour is still there");
    assert_eq!(get(g, &key).status, 429);
    assert!(!g.log().contains("origin_unavailable"), "a client's GET body is not logged as an origin outage");
    let today = &usage(g, &id)["days"][0];
    assert_eq!((today["allowed"].as_u64(), today["refused"].as_u64()), (Some(1), Some(1)), "{today}");
}

#[test]
fn exactly_n_of_50_concurrent_requests_pass() {
    let g = per_request_gateway();
    let (key, id) = limited(g, "conc", json!([{"name":"hour","limit":10,"window_seconds":3600}]));
    let statuses: Vec<u16> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..50).map(|_| scope.spawn(|| get(g, &key).status)).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let ok = statuses.iter().filter(|s| **s == 200).count();
    let limited = statuses.iter().filter(|s| **s == 429).count();
    assert_eq!((ok, limited), (10, 40), "{statuses:?}");
    // Usage counts match what was sent (isolate-level refusals are flushed in the background).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let today = &usage(g, &id)["days"][0];
        let (allowed, refused) = (today["allowed"].as_u64().unwrap_or(0), today["refused"].as_u64().unwrap_or(0));
        if (allowed, refused) == (10, 40) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "usage never reached 10/40: {allowed}/{refused}");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(usage(g, &id)["last_used_at"].is_string());
}

#[test]
fn fifty_concurrent_requests_under_leases_never_pass_more_than_n() {
    let g = gateway();
    let (key, _) = limited(g, "conc-leased", json!([{"name":"hour","limit":10,"window_seconds":3600}]));
    let statuses: Vec<u16> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..50).map(|_| scope.spawn(|| get(g, &key).status)).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(statuses.iter().all(|s| *s == 200 || *s == 429), "{statuses:?}");
    let burst = statuses.iter().filter(|s| **s == 200).count();
    assert!((1..=10).contains(&burst), "never more than the limit: {statuses:?}");
    // Whatever the isolate still holds serves later requests; the total never passes the limit.
    let later = (0..20).filter(|_| get(g, &key).status == 200).count();
    assert!(burst + later <= 10, "{burst} in the burst + {later} after it");
}

#[test]
fn headers_count_down_and_the_429_follows_the_seed() {
    let g = gateway();
    let (key, _) =
        limited(g, "headers", json!([{"name":"burst","limit":50,"window_seconds":1},{"name":"hour","limit":3,"window_seconds":3600}]));
    for expected_remaining in [2u64, 1, 0] {
        let response = get(g, &key);
        assert_eq!(response.status, 200, "{}", response.body);
        assert_eq!(response.header("ratelimit-policy"), Some("\"burst\";q=50;w=1, \"hour\";q=3;w=3600"));
        let current = response.header("ratelimit").unwrap();
        assert!(current.contains(&format!("\"hour\";r={expected_remaining};")), "{current}");
        assert_eq!(response.header("x-ratelimit-limit"), Some("3"));
        assert_eq!(response.header("x-ratelimit-remaining").map(String::from), Some(expected_remaining.to_string()));
        let reset: u64 = response.header("x-ratelimit-reset").unwrap().parse().unwrap();
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
        assert!(reset > now - 5 && reset <= now + 3600 + 5, "reset {reset} vs now {now}");
        assert!(!response.header("ratelimit").unwrap().contains(&key), "partition key never the API key");
    }
    let refused = get(g, &key);
    let body = refused.assert_error(429, "RATE_LIMIT_EXCEEDED");
    let retry: u64 = refused.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=1200).contains(&retry), "retry-after {retry}");
    assert_eq!(body["error"]["details"]["limit"], "hour");
    assert_eq!(body["error"]["details"]["retryAfter"].as_u64(), Some(retry));
    assert_eq!(body["error"]["message"], format!("Rate limit exceeded. Try again in {retry} seconds."));
    assert_eq!(refused.header("x-ratelimit-remaining"), Some("0"));
    // Still refused (now answered by the isolate's memory, not the limiter).
    get(g, &key).assert_error(429, "RATE_LIMIT_EXCEEDED");
}

#[test]
fn daily_quota_is_quota_exceeded() {
    let g = gateway();
    let (key, _) = limited(g, "quota", json!([{"name":"daily","limit":2,"window_seconds":86400}]));
    assert_eq!(get(g, &key).status, 200);
    assert_eq!(get(g, &key).status, 200);
    let refused = get(g, &key);
    let body = refused.assert_error(429, "QUOTA_EXCEEDED");
    assert_eq!(body["error"]["details"]["limit"], "daily");
}

#[test]
fn tiers_from_config_apply() {
    let g = gateway();
    let (key, _) = create(g, json!({"project":"tiers","name":"free","role":"read_only","tier":"free"}));
    let response = get(g, &key);
    assert_eq!(response.status, 200);
    assert_eq!(response.header("ratelimit-policy"), Some("\"burst\";q=10;w=1, \"minute\";q=60;w=60, \"daily\";q=5000;w=86400"));
}

#[test]
fn refused_checks_never_spend_quota() {
    let g = gateway();
    let (key, id) = limited(g, "spend", json!([{"name":"hour","limit":2,"window_seconds":3600}]));
    // Scope refusals (write with a read-only key) happen before the limiter.
    for _ in 0..5 {
        g.request("POST", "/v1/cms/articles/items").bearer(&key).json(&json!({})).send().assert_error(403, "INSUFFICIENT_SCOPE");
    }
    assert_eq!(get(g, &key).status, 200);
    assert_eq!(get(g, &key).status, 200);
    get(g, &key).assert_error(429, "RATE_LIMIT_EXCEEDED");
    let _ = id;
}

#[test]
fn roll_keeps_the_family_counters() {
    let g = gateway();
    let (key, id) = limited(g, "rollers", json!([{"name":"hour","limit":3,"window_seconds":3600}]));
    assert_eq!(get(g, &key).status, 200);
    assert_eq!(get(g, &key).status, 200);
    let rolled = g.admin("POST", &format!("/keys/{id}/roll")).json(&json!({"grace_seconds":3600})).send();
    assert_eq!(rolled.status, 201, "{}", rolled.body);
    let new_key = rolled.json()["key"].as_str().unwrap().to_string();
    let response = get(g, &new_key);
    assert_eq!(response.status, 200, "{}", response.body);
    assert_eq!(response.header("x-ratelimit-remaining"), Some("0"), "the new key continues the old key's count");
    get(g, &new_key).assert_error(429, "RATE_LIMIT_EXCEEDED");
    get(g, &key).assert_error(429, "RATE_LIMIT_EXCEEDED");
}

/// With `LEASE_MS = 0` (today's per-request limiter), an admin change applies to the very next
/// request; with leases it applies within `LEASE_MS` (`tests/leases.rs`).
#[test]
fn disable_and_revoke_apply_on_the_next_request_while_kv_is_cached() {
    static PER_REQUEST: OnceLock<Gateway> = OnceLock::new();
    let g = PER_REQUEST.get_or_init(|| Gateway::start(Options { vars: vec![("LEASE_MS", "0")], ..Options::default() }));
    let (key, id) = create(g, json!({"project":"epoch","name":"epoch","role":"read_only"}));
    // Warm this isolate's cache with the active record (cached for CACHE_TTL_SECONDS = 30 s).
    assert_eq!(get(g, &key).status, 200);
    let patched = g.admin("PATCH", &format!("/keys/{id}")).json(&json!({"status":"inactive"})).send();
    assert_eq!(patched.status, 200);
    get(g, &key).assert_error(401, "KEY_DISABLED");
    let patched = g.admin("PATCH", &format!("/keys/{id}")).json(&json!({"status":"active"})).send();
    assert_eq!(patched.status, 200);
    assert_eq!(get(g, &key).status, 200, "re-enabled on the next request");
    assert_eq!(g.admin("DELETE", &format!("/keys/{id}")).send().status, 200);
    get(g, &key).assert_error(401, "KEY_REVOKED");
}

#[test]
fn usage_of_unknown_key_is_404() {
    let g = gateway();
    g.admin("GET", "/keys/key_nosuchkey/usage").send().assert_error(404, "NOT_FOUND");
}

#[test]
fn limits_are_validated_by_the_admin_api() {
    let g = gateway();
    for limits in [json!([{"name":"m","limit":0,"window_seconds":60}]), json!([{"name":"m","limit":5}]), json!("600/min")] {
        let body = json!({"project":"v","name":"n","role":"read_only","limits":limits});
        let error = g.admin("POST", "/keys").json(&body).send().assert_error(400, "VALIDATION_FAILED");
        assert!(error["error"]["details"]["fields"].get("limits").is_some(), "{error}");
    }
    let error = g.admin("POST", "/keys").json(&json!({"project":"v","name":"n","role":"read_only","tier":"platinum"})).send();
    error.assert_error(400, "VALIDATION_FAILED");
}

#[test]
fn fast_mode_counts_in_the_isolate_and_adds_no_limiter_call() {
    let g = gateway();
    let (key, id) = create(
        g,
        json!({"project":"fast","name":"fast","role":"read_only","limit_mode":"fast","limits":[{"name":"hour","limit":3,"window_seconds":3600}]}),
    );
    for remaining in ["2", "1", "0"] {
        let response = get(g, &key);
        assert_eq!(response.status, 200, "{}", response.body);
        assert_eq!(response.header("x-ratelimit-remaining"), Some(remaining));
    }
    get(g, &key).assert_error(429, "RATE_LIMIT_EXCEEDED");
    // The limiter object never saw this key: fast mode keeps no usage there.
    let usage = usage(g, &id);
    assert!(usage["days"].as_array().unwrap().is_empty(), "{usage}");
}

#[test]
fn fast_mode_tier_is_also_held_by_its_rate_limiting_binding() {
    let g = gateway();
    let (key, _) = create(g, json!({"project":"fastbinding","name":"fb","role":"read_only","tier":"bound"}));
    let mut passed = 0;
    let mut refusal = None;
    // The binding counts in fixed 60 s windows: a slow run may cross one window boundary, so
    // send enough requests that one of at most two windows must exceed 60 (well below the
    // isolate's own 1000/min, so only the binding can refuse).
    for _ in 0..130 {
        let response = get(g, &key);
        if response.status == 200 {
            passed += 1;
        } else {
            refusal = Some(response);
            break;
        }
    }
    let refusal = refusal.expect("the binding (60/min) must refuse within 130 requests, long before the isolate limit (1000/min)");
    let body = refusal.assert_error(429, "RATE_LIMIT_EXCEEDED");
    assert_eq!(body["error"]["details"]["limit"], "minute");
    assert!((1..=120).contains(&passed), "passed {passed} before the binding refused (at most 60 per window, two windows at most)");
}
