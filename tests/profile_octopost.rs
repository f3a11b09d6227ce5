//! Conformance of the "octopost" profile with its seed document (../shared/seeds/004: Octopost
//! authentication), against the real worker under `wrangler dev` with the profile laid over
//! `wrangler.toml`. Each assertion quotes the sentence it checks.

// Tests: a failed expectation is a failed test, with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::OnceLock;

use serde_json::{json, Value};

use common::{Gateway, Options};

fn gateway() -> &'static Gateway {
    static GATEWAY: OnceLock<Gateway> = OnceLock::new();
    GATEWAY.get_or_init(|| Gateway::start(Options { profile: Some("octopost"), ..Options::default() }))
}

fn create(g: &Gateway, body: Value) -> String {
    let response = g.admin("POST", "/keys").json(&body).send();
    assert_eq!(response.status, 201, "{}", response.body);
    response.json()["key"].as_str().expect("key").to_string()
}

#[test]
fn permissions_scope_what_a_key_may_do() {
    let g = gateway();
    // "When creating an API key, you can scope it to specific permissions: posts:read — List and
    // retrieve posts; posts:write — Create, update, delete, and publish posts"
    let reader = create(g, json!({"project": "acme", "name": "reader", "scopes": ["posts:read"]}));
    let listed = g.request("GET", "/v1/posts").bearer(&reader).send();
    assert_eq!(listed.status, 200, "{}", listed.body);
    assert_eq!(listed.json()["identity"]["scopes"], "posts:read", "the origin learns the key's permissions");
    let created = g.request("POST", "/v1/posts").bearer(&reader).json(&json!({"text": "hi"})).send();
    assert_eq!(created.status, 403, "posts:read does not create posts: {}", created.body);

    // "A key that only needs to create posts should not have accounts:write."
    let poster = create(g, json!({"project": "acme", "name": "poster", "scopes": ["posts:write"]}));
    assert_eq!(g.request("POST", "/v1/posts").bearer(&poster).json(&json!({"text": "hi"})).send().status, 201);
    assert_eq!(g.request("DELETE", "/v1/accounts/acc_1").bearer(&poster).send().status, 403);
}

#[test]
fn only_the_documented_permissions_exist() {
    let g = gateway();
    // The permission table lists posts, accounts, presets and webhooks, read and write; nothing
    // else can be granted, and no built-in role of another product is left to mint.
    for body in [
        json!({"project": "acme", "name": "x", "scopes": ["content:read"]}),
        json!({"project": "acme", "name": "x", "role": "super_admin"}),
    ] {
        g.admin("POST", "/keys").json(&body).send().assert_error(400, "VALIDATION_FAILED");
    }
}

#[test]
fn revoking_a_key_takes_effect_immediately() {
    let g = gateway();
    let key = create(g, json!({"project": "acme", "name": "revoked soon", "scopes": ["posts:read"]}));
    assert_eq!(g.request("GET", "/v1/posts").bearer(&key).send().status, 200);
    let id = g.admin("GET", "/keys?project=acme").send().json()["items"]
        .as_array()
        .and_then(|items| items.iter().find(|r| r["name"] == "revoked soon").map(|r| r["id"].as_str().unwrap_or("").to_string()))
        .expect("the key is listed");
    assert_eq!(g.admin("DELETE", &format!("/keys/{id}")).send().status, 200);
    // "Revoking a key takes effect immediately. Any in-flight requests using the revoked key
    // will fail with a 401 Unauthorized response."
    assert_unauthorized(&g.request("GET", "/v1/posts").bearer(&key).send(), "revoked key");
}

/// "If authentication fails, the API returns a 401 Unauthorized response:
/// { "error": "Invalid or expired API key", "code": "unauthorized" }"
fn assert_unauthorized(response: &common::Resp, cause: &str) {
    assert_eq!(response.status, 401, "{cause}: {}", response.body);
    assert_eq!(response.body, r#"{"error":"Invalid or expired API key","code":"unauthorized"}"#, "{cause}");
}

#[test]
fn keys_are_bearer_tokens_with_the_documented_prefixes() {
    let g = gateway();
    // "API keys use the prefix oct_live_ for production keys and oct_test_ for test keys."
    let live = create(g, json!({"project": "acme", "name": "live", "scopes": ["posts:read"]}));
    let test = create(g, json!({"project": "acme", "name": "test", "env": "test", "scopes": ["posts:read"]}));
    assert!(live.starts_with("oct_live_") && test.starts_with("oct_test_"), "{} / {}", &live[..9], &test[..9]);
    // "Test keys can only access sandbox data": a test key reaches the test origin.
    assert_eq!(g.request("GET", "/v1/posts").bearer(&test).send().header("x-origin-label"), Some("test"));
    assert_eq!(g.request("GET", "/v1/posts").bearer(&live).send().header("x-origin-label"), Some("live"));

    // "All API requests must be authenticated using an API key passed as a Bearer token."
    // "Common causes: The API key is missing from the request."
    assert_unauthorized(&g.request("GET", "/v1/posts").send(), "missing key");
    // "The Authorization header is malformed (must be Bearer <key>)."
    assert_unauthorized(&g.request("GET", "/v1/posts").header("Authorization", "Token abc").send(), "malformed header");
    assert_unauthorized(&g.request("GET", "/v1/posts").bearer(&format!("{live}x")).send(), "not a key");
    // "A test key is being used against a production endpoint that requires a live key."
    assert_unauthorized(
        &g.request("POST", "/v1/posts/p_1/publish")
            .bearer(&create(g, json!({"project": "acme", "name": "t", "env": "test", "scopes": ["posts:write"]})))
            .send(),
        "test key on a live-only endpoint",
    );
}

#[test]
fn a_key_with_no_explicit_permissions_has_full_access() {
    let g = gateway();
    // "A key with no explicit permissions has full access."
    let full = create(g, json!({"project": "acme", "name": "full"}));
    for (method, path) in
        [("GET", "/v1/posts"), ("POST", "/v1/posts"), ("DELETE", "/v1/accounts/acc_1"), ("PUT", "/v1/presets/p_1"), ("GET", "/v1/webhooks")]
    {
        let request = g.request(method, path).bearer(&full);
        let response = if method == "GET" { request.send() } else { request.json(&json!({})).send() };
        assert!(matches!(response.status, 200 | 201), "{method} {path}: {}", response.body);
    }
}
