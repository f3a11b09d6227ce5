//! Conformance of the "optimo" profile with its seed document (../shared/seeds/002: OptimoCMS
//! "Authentication"), against the real worker under `wrangler dev` with the profile laid over
//! `wrangler.toml`. Each assertion quotes the sentence it checks.

// Tests: a failed expectation is a failed test, with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::OnceLock;

use serde_json::{json, Value};

use common::{Gateway, Options, Resp};

fn gateway() -> &'static Gateway {
    static GATEWAY: OnceLock<Gateway> = OnceLock::new();
    GATEWAY.get_or_init(|| Gateway::start(Options { profile: Some("optimo"), ..Options::default() }))
}

fn create(g: &Gateway, body: Value) -> String {
    let mut body = body;
    body["project"] = json!("acme");
    let response = g.admin("POST", "/keys").json(&body).send();
    assert_eq!(response.status, 201, "{}", response.body);
    response.json()["key"].as_str().unwrap().to_string()
}

fn call(g: &Gateway, method: &str, path: &str, key: &str) -> Resp {
    let request = g.request(method, path).header("X-Api-Key", key);
    if method == "GET" {
        request.send()
    } else {
        request.json(&json!({})).send()
    }
}

/// OptimoCMS's error body: `{"error": {"code", "message", …}, "meta": {"requestId", "timestamp"}}`.
fn optimo_error(response: &Resp, status: u16, code: &str) -> Value {
    let body = response.assert_refusal(status, "application/json");
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(body["meta"]["requestId"].is_string() && body["meta"]["timestamp"].is_string(), "{body}");
    body
}

#[test]
fn keys_travel_in_x_api_key_with_live_and_sandbox_prefixes() {
    let g = gateway();
    // "Sandbox vs. Live keys | Prefix | optimo_sandbox_ | optimo_live_"
    let live = create(g, json!({"name": "Production Backend", "scopes": ["sites:read"]}));
    let sandbox = create(g, json!({"name": "CI/CD Pipeline", "env": "test", "scopes": ["sites:read"]}));
    assert!(live.starts_with("optimo_live_") && sandbox.starts_with("optimo_sandbox_"));
    // "All API requests require authentication via an API key in the X-Api-Key header."
    assert_eq!(call(g, "GET", "/v1/sites", &live).header("x-origin-label"), Some("live"));
    // "Sandbox | Data | Test data, no real deployments": sandbox keys reach the test origin.
    assert_eq!(call(g, "GET", "/v1/sites", &sandbox).header("x-origin-label"), Some("test"));
    // "401 | UNAUTHORIZED | Missing or invalid API key"
    optimo_error(&g.request("GET", "/v1/sites").send(), 401, "UNAUTHORIZED");
    optimo_error(&call(g, "GET", "/v1/sites", "optimo_live_abc123def456"), 401, "UNAUTHORIZED");
}

#[test]
fn scopes_control_what_a_key_may_do() {
    let g = gateway();
    // "Example: a key for read-only content access: Scopes: sites:read, pages:read, media:read"
    let reader = create(g, json!({"name": "read-only", "scopes": ["sites:read", "pages:read", "media:read"]}));
    for path in ["/v1/sites", "/v1/pages", "/v1/media"] {
        assert_eq!(call(g, "GET", path, &reader).status, 200, "{path}");
    }
    // "403 | FORBIDDEN | Key does not have the required scope … "message": "API key does not have
    // scope: pages:write""
    let body = optimo_error(&call(g, "POST", "/v1/pages", &reader), 403, "FORBIDDEN");
    assert_eq!(body["error"]["message"], "API key does not have scope: pages:write");
    // "A frontend integration doesn't need publish:write."
    optimo_error(&call(g, "POST", "/v1/sites/s_1/publish", &reader), 403, "FORBIDDEN");
    // "Example: a key for a CI/CD pipeline that deploys: Scopes: sites:read, pages:write, media:write, publish:write"
    let deployer = create(g, json!({"name": "deploy", "scopes": ["sites:read", "pages:write", "media:write", "publish:write"]}));
    assert_eq!(call(g, "POST", "/v1/sites/s_1/publish", &deployer).status, 201);
    assert_eq!(call(g, "POST", "/v1/pages", &deployer).status, 201);
    // Only the document's scopes exist.
    g.admin("POST", "/keys")
        .json(&json!({"project": "acme", "name": "x", "scopes": ["content:read"]}))
        .send()
        .assert_error(400, "VALIDATION_FAILED");
}

#[test]
fn rate_limit_headers_describe_the_per_minute_limit_of_the_tier() {
    let g = gateway();
    // "| Pro | 600 | 50 | 100,000 |" and "X-RateLimit-Limit: 600"
    let pro = create(g, json!({"name": "pro", "tier": "pro", "scopes": ["sites:read"]}));
    let response = call(g, "GET", "/v1/sites", &pro);
    assert_eq!(response.status, 200);
    assert_eq!(response.header("x-ratelimit-limit"), Some("600"));
    assert_eq!(response.header("x-ratelimit-remaining"), Some("599"));
    let reset: u64 = response.header("x-ratelimit-reset").and_then(|r| r.parse().ok()).expect("X-RateLimit-Reset: a unix timestamp");
    assert!(reset > 1_700_000_000, "{reset}");
}

#[test]
fn too_many_requests_get_the_documented_429() {
    let g = gateway();
    let key =
        create(g, json!({"name": "small", "limits": [{"name": "minute", "limit": 2, "window_seconds": 60}], "scopes": ["sites:read"]}));
    assert_eq!(call(g, "GET", "/v1/sites", &key).status, 200);
    assert_eq!(call(g, "GET", "/v1/sites", &key).status, 200);
    let refused = call(g, "GET", "/v1/sites", &key);
    // "{"error": {"code": "RATE_LIMIT_EXCEEDED", "message": "Rate limit exceeded. Try again in 45
    // seconds.", "details": { "retryAfter": 45 }}, …}" and "Retry-After header contains the wait time in seconds"
    let body = optimo_error(&refused, 429, "RATE_LIMIT_EXCEEDED");
    let retry_after: u64 = refused.header("retry-after").and_then(|r| r.parse().ok()).expect("Retry-After");
    assert_eq!(body["error"]["details"]["retryAfter"], json!(retry_after));
    assert_eq!(body["error"]["message"], format!("Rate limit exceeded. Try again in {retry_after} seconds."));
}

/// The key console offers the profile's choices: it reads them from `GET <ADMIN_PREFIX>/catalogue`.
#[test]
fn the_catalogue_offers_the_profiles_prefix_scopes_and_tiers() {
    let g = gateway();
    let response = g.admin("GET", "/catalogue").send();
    assert_eq!(response.status, 200, "{}", response.body);
    let catalogue = response.json();
    assert_eq!(catalogue["key_prefix"], "optimo");
    assert_eq!(catalogue["envs"], json!(["live", "test"]), "live and sandbox (test) keys can be created");
    assert_eq!(catalogue["roles"], json!({}), "no roles: OptimoCMS grants scopes");
    let scopes = catalogue["scopes"].as_array().expect("scopes");
    assert_eq!(scopes.len(), 19, "{catalogue}");
    assert!(scopes.contains(&json!("publish:write")), "{catalogue}");
    assert_eq!(catalogue["default_tier"], "free", "{catalogue}");
    assert!(catalogue["tiers"]["pro"].as_array().is_some_and(|limits| limits.iter().any(|l| l["limit"] == 600)), "{catalogue}");
}
