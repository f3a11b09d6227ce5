//! Conformance of the "octopost" profile with its seed document (../shared/seeds/004: Octopost
//! authentication), against the real worker under `wrangler dev` with the profile laid over
//! `wrangler.toml`. Each assertion quotes the sentence it checks.

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
    assert_eq!(g.request("GET", "/v1/posts").bearer(&key).send().status, 401);
}

#[test]
fn keys_are_bearer_tokens() {
    let g = gateway();
    // "All API requests must be authenticated using an API key passed as a Bearer token."
    assert_eq!(g.request("GET", "/v1/posts").send().status, 401, "the API key is missing from the request");
    // "The Authorization header is malformed (must be Bearer <key>)."
    assert_eq!(g.request("GET", "/v1/posts").header("Authorization", "Token abc").send().status, 401);
}
