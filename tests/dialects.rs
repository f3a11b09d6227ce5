//! How refusals look, as configuration, on the wire against the real worker under `wrangler
//! dev`: three gateways, one per seed profile.
//!
//! - OptimoCMS: `ERROR_DIALECT=optimo`, `RATE_LIMIT_HEADER_LIMIT=minute`.
//! - Octopost: `ERROR_DIALECT=octopost`, `EMPTY_SCOPES=all`, `TEST_KEY_ON_LIVE_ROUTE=401`.
//! - Ovok-like surface in RFC 9457: `ERROR_DIALECT=problem`, `UNMATCHED=auth` under `/v1`; the
//!   demo origin labels every answer (and answers `/v1/sites`), so a refusal without the label
//!   never reached it.

// Tests: a failed expectation is a failed test, with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::OnceLock;

use serde_json::{json, Value};

use common::{Gateway, Options};

const LIST: &str = "/v1/public/cms/articles/items";
const WRITE: &str = "/v1/cms/articles/items";
const JSON: &str = "application/json";
const PROBLEM: &str = "application/problem+json";

fn optimo() -> &'static Gateway {
    static GATEWAY: OnceLock<Gateway> = OnceLock::new();
    GATEWAY.get_or_init(|| {
        Gateway::start(Options { vars: vec![("ERROR_DIALECT", "optimo"), ("RATE_LIMIT_HEADER_LIMIT", "minute")], ..Options::default() })
    })
}

fn octopost() -> &'static Gateway {
    static GATEWAY: OnceLock<Gateway> = OnceLock::new();
    GATEWAY.get_or_init(|| {
        let vars = vec![("ERROR_DIALECT", "octopost"), ("EMPTY_SCOPES", "all"), ("TEST_KEY_ON_LIVE_ROUTE", "401")];
        Gateway::start(Options { vars, ..Options::default() })
    })
}

fn ovok() -> &'static Gateway {
    static GATEWAY: OnceLock<Gateway> = OnceLock::new();
    GATEWAY.get_or_init(|| {
        let vars = vec![("ERROR_DIALECT", "problem"), ("UNMATCHED", "auth"), ("PROTECTED_PREFIXES", r#"["/v1"]"#)];
        Gateway::start(Options { vars, ..Options::default() })
    })
}

/// Creates a key through the admin API and returns its plaintext.
fn create(g: &Gateway, body: Value) -> String {
    let response = g.admin("POST", "/keys").json(&body).send();
    assert_eq!(response.status, 201, "{}", response.body);
    response.json()["key"].as_str().expect("key").to_string()
}

#[test]
fn optimo_refusals_use_the_seeds_codes_and_messages() {
    let g = optimo();
    let missing = g.request("GET", LIST).send();
    let body = missing.assert_refusal(401, JSON);
    assert_eq!(body["error"]["code"], "UNAUTHORIZED");
    assert_eq!(body["meta"]["requestId"].as_str(), missing.header("x-request-id"));
    let revoked = g.request("GET", LIST).header("X-Api-Key", &g.keys.revoked).send().assert_refusal(401, JSON);
    assert_eq!(revoked["error"]["code"], "UNAUTHORIZED");

    let forbidden = g.request("POST", WRITE).header("X-Api-Key", &g.keys.read_only).body("{}").send();
    let body = forbidden.assert_refusal(403, JSON);
    assert_eq!(body["error"]["code"], "FORBIDDEN");
    assert_eq!(body["error"]["message"], "API key does not have scope: content:write");
}

#[test]
fn optimo_rate_limit_is_429_rate_limit_exceeded_and_headers_describe_the_minute_limit() {
    let g = optimo();
    // The pro tier: burst 50/s is the most restrictive, the seed documents the minute's 600.
    let pro = create(g, json!({"project": "acme", "name": "pro", "role": "read_only", "tier": "pro"}));
    let admitted = g.request("GET", LIST).header("X-Api-Key", &pro).send();
    assert_eq!(admitted.status, 200, "{}", admitted.body);
    assert_eq!(admitted.header("x-ratelimit-limit"), Some("600"));

    // `hour` is the most restrictive and refuses the third request; the headers still describe `minute`.
    let limits = json!([{"name": "minute", "limit": 3, "window_seconds": 60}, {"name": "hour", "limit": 2, "window_seconds": 3600}]);
    let key = create(g, json!({"project": "acme", "name": "rate", "role": "read_only", "limits": limits}));
    for _ in 0..2 {
        let admitted = g.request("GET", LIST).header("X-Api-Key", &key).send();
        assert_eq!((admitted.status, admitted.header("x-ratelimit-limit")), (200, Some("3")), "{}", admitted.body);
    }
    let refused = g.request("GET", LIST).header("X-Api-Key", &key).send();
    let body = refused.assert_refusal(429, JSON);
    assert_eq!(refused.header("x-ratelimit-limit"), Some("3"));
    let retry_after: u64 = refused.header("retry-after").expect("Retry-After").parse().expect("seconds");
    assert!(retry_after > 60, "the hour limit refused: {retry_after}");
    assert_eq!(body["error"]["code"], "RATE_LIMIT_EXCEEDED");
    assert_eq!(body["error"]["message"], format!("Rate limit exceeded. Try again in {retry_after} seconds."));
    assert_eq!(body["error"]["details"], json!({"retryAfter": retry_after}));
}

#[test]
fn optimo_quota_refusal_is_also_rate_limit_exceeded() {
    let g = optimo();
    let key = create(
        g,
        json!({"project": "acme", "name": "quota", "role": "read_only", "limits": [{"name": "daily", "limit": 1, "window_seconds": 86400}]}),
    );
    assert_eq!(g.request("GET", LIST).header("X-Api-Key", &key).send().status, 200);
    let refused = g.request("GET", LIST).header("X-Api-Key", &key).send();
    let body = refused.assert_refusal(429, JSON);
    assert_eq!(body["error"]["code"], "RATE_LIMIT_EXCEEDED", "not QUOTA_EXCEEDED");
    assert_eq!(body["error"]["details"]["retryAfter"].as_u64().map(|s| s.to_string()).as_deref(), refused.header("retry-after"));
}

#[test]
fn octopost_401_is_flat_everywhere_including_a_test_key_on_a_live_only_route() {
    let g = octopost();
    let flat = r#"{"error":"Invalid or expired API key","code":"unauthorized"}"#;
    for (what, response) in [
        ("missing", g.request("GET", LIST).send()),
        ("revoked", g.request("GET", LIST).bearer(&g.keys.revoked).send()),
        ("unknown", g.request("GET", LIST).bearer(&g.keys.unknown).send()),
        ("test key on a live-only route", g.request("GET", "/__echo/live-only/x").bearer(&g.keys.test_env).send()),
    ] {
        response.assert_refusal(401, JSON);
        assert_eq!(response.body, flat, "{what}");
    }
    // The test key itself is fine elsewhere.
    assert_eq!(g.request("GET", "/__echo/t").bearer(&g.keys.test_env).send().status, 200);
    let forbidden = g.request("POST", WRITE).bearer(&g.keys.read_only).body("{}").send().assert_refusal(403, JSON);
    assert_eq!(forbidden["code"], "insufficient_scope");
}

#[test]
fn octopost_key_without_permissions_has_the_whole_catalogue() {
    let g = octopost();
    let key = create(g, json!({"project": "acme", "name": "no explicit permissions"}));
    let echoed = g.request("GET", "/__echo/full").bearer(&key).send();
    assert_eq!(echoed.status, 200, "{}", echoed.body);
    let scopes = echoed.json()["identity"]["scopes"].as_str().expect("signed scopes").to_string();
    let listed: Vec<&str> = scopes.split(' ').collect();
    for scope in ["content:read", "content:write", "billing:write", "keys:write"] {
        assert!(listed.contains(&scope), "{scope} in {scopes}");
    }
    assert!(!listed.contains(&"*"), "listed one by one: {scopes}");
    let write = g.request("POST", "/__echo/write").bearer(&key).body("{}").send();
    assert_eq!(write.status, 200, "{}", write.body);
}

#[test]
fn problem_details_carry_the_rfc_9457_members() {
    let g = ovok();
    let missing = g.request("GET", LIST).send();
    let body = missing.assert_refusal(401, PROBLEM);
    assert_eq!(body["type"], "about:blank");
    assert_eq!(body["title"], "Unauthorized");
    assert_eq!(body["status"], 401);
    assert!(body["detail"].as_str().is_some_and(|d| d.contains("No API key")), "{body}");
    assert_eq!(body["code"], "MISSING_KEY");
    assert_eq!(body["requestId"].as_str(), missing.header("x-request-id"));
}

#[test]
fn ovok_surface_answers_401_or_403_and_nothing_reaches_the_origin() {
    let g = ovok();
    // The demo origin labels everything it answers (and answers /v1/sites): a refusal without the
    // label never reached it.
    let code = |response: common::Resp, status: u16| {
        assert_eq!(response.header("x-origin-label"), None, "reached the origin: {}", response.body);
        response.assert_refusal(status, PROBLEM)["code"].as_str().unwrap_or_default().to_string()
    };
    // (what, request, status, code).
    let rows = [
        ("keyless write", g.request("POST", WRITE).body("{}"), 401, "MISSING_KEY"),
        ("keyless unmatched path", g.request("GET", "/v1/sites"), 401, "MISSING_KEY"),
        ("unknown key on an unmatched path", g.request("GET", "/v1/sites").bearer(&g.keys.unknown), 401, "INVALID_KEY"),
        ("revoked key on an unmatched path", g.request("GET", "/v1/sites").bearer(&g.keys.revoked), 401, "KEY_REVOKED"),
        ("valid key on an unmatched path", g.request("GET", "/v1/sites").bearer(&g.keys.writer), 403, "ROUTE_NOT_ALLOWED"),
        ("valid key, wrong method", g.request("DELETE", LIST).bearer(&g.keys.writer), 403, "ROUTE_NOT_ALLOWED"),
        ("read key on a write", g.request("POST", WRITE).bearer(&g.keys.read_only).body("{}"), 403, "INSUFFICIENT_SCOPE"),
        ("outside the protected prefix", g.request("GET", "/health").bearer(&g.keys.writer), 404, "ROUTE_NOT_FOUND"),
    ];
    for (what, request, status, expected) in rows {
        assert_eq!(code(request.send(), status), expected, "{what}");
    }
    // The control: a matched, allowed request is forwarded, and the origin labels its answer.
    let forwarded = g.request("GET", LIST).bearer(&g.keys.read_only).send();
    assert_eq!((forwarded.status, forwarded.header("x-origin-label")), (200, Some("live")), "{}", forwarded.body);
}
