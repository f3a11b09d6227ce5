//! Conformance of the "atlas" profile with its seed document (../shared/seeds/003: AtlasCMS
//! "Admin - API Keys"), against the real worker under `wrangler dev`: the key-management
//! contract at its documented paths and field names, served by the Atlas admin facade and
//! backed by the same registry as the native admin API. Each assertion quotes what it checks.

// Tests: a failed expectation is a failed test, with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::OnceLock;

use serde_json::{json, Value};

use common::{Gateway, Options, ADMIN_TOKEN};

fn gateway() -> &'static Gateway {
    static GATEWAY: OnceLock<Gateway> = OnceLock::new();
    // LEASE_MS = 0 (the AtlasCMS document promises no latency; with the default lease a change
    // applies within LEASE_MS, tests/leases.rs): a change applies to the very next request.
    GATEWAY.get_or_init(|| Gateway::start(Options { profile: Some("atlas"), vars: vec![("LEASE_MS", "0")], ..Options::default() }))
}

fn atlas(g: &Gateway, method: &str, path: &str) -> common::Req {
    g.request(method, path).bearer(ADMIN_TOKEN)
}

fn create(g: &Gateway, project: &str, body: Value) -> String {
    // "Create Api Key POST … POST /{project}/admin/api-keys … Response (200 OK) {"result": "string"}"
    let response = atlas(g, "POST", &format!("/{project}/admin/api-keys")).json(&body).send();
    assert_eq!(response.status, 200, "{}", response.body);
    let body = response.json();
    assert_eq!(body.as_object().map(|o| o.len()), Some(1), "only `result`: {body}");
    body["result"].as_str().expect("result").to_string()
}

fn listed(g: &Gateway, project: &str) -> Vec<Value> {
    // "Get Api Keys GET … Lists all API keys for the project."
    let response = atlas(g, "GET", &format!("/{project}/admin/api-keys")).send();
    assert_eq!(response.status, 200, "{}", response.body);
    response.json().as_array().expect("a JSON array").clone()
}

fn read(g: &Gateway, project: &str, key: &str) -> u16 {
    g.request("GET", &format!("/v1/{project}/articles")).bearer(key).send().status
}

#[test]
fn keys_are_created_listed_read_updated_and_deleted_at_the_documented_paths() {
    let g = gateway();
    let key = create(
        g,
        "acme",
        json!({"name": "site", "isActive": true, "validFrom": null, "validTo": "2099-01-01T00:00:00Z", "permissions": ["content:read"]}),
    );
    assert_eq!(read(g, "acme", &key), 200, "the created key authenticates API requests");

    let items = listed(g, "acme");
    let item = items.iter().find(|i| i["name"] == "site").expect("the new key is listed").clone();
    // "{ "id", "name", "token", "isActive", "validFrom", "validTo", "permissions" }"
    let mut fields: Vec<&str> = item.as_object().unwrap().keys().map(String::as_str).collect();
    fields.sort_unstable();
    assert_eq!(fields, ["id", "isActive", "name", "permissions", "token", "validFrom", "validTo"]);
    assert_eq!((item["isActive"].clone(), item["permissions"].clone()), (json!(true), json!(["content:read"])));
    assert!(item["validTo"].as_str().unwrap_or("").starts_with("2099-01-01T00:00:00"));
    let token = item["token"].as_str().unwrap_or("");
    assert!(
        !token.is_empty() && token != key && !key.contains(token.trim_start_matches("kg_live_…")) || token.contains('…'),
        "token is the non-secret hint, never the key: {token}"
    );
    let id = item["id"].as_str().unwrap().to_string();

    // "Get Api Key GET … Retrieves a single API key by ID."
    let one = atlas(g, "GET", &format!("/acme/admin/api-keys/{id}")).send();
    assert_eq!((one.status, one.json()), (200, item.clone()));

    // "Update Api Key PUT … Updates an API key's permissions or expiry date."
    let off = atlas(g, "PUT", &format!("/acme/admin/api-keys/{id}"))
        .json(&json!({"name": "site", "isActive": false, "permissions": ["content:read"]}))
        .send();
    assert_eq!(off.status, 200, "{}", off.body);
    assert_eq!(
        (off.json()["isActive"].clone(), off.json()["validTo"].clone()),
        (json!(false), Value::Null),
        "PUT replaces: validTo left out is cleared"
    );
    assert_eq!(read(g, "acme", &key), 401, "an inactive key is refused");
    atlas(g, "PUT", &format!("/acme/admin/api-keys/{id}"))
        .json(&json!({"name": "site", "isActive": true, "permissions": ["content:read", "media:read"]}))
        .send();
    assert_eq!(read(g, "acme", &key), 200);

    // "Delete Api Key DELETE … Revokes and deletes an API key. Requests using this key will fail."
    assert_eq!(atlas(g, "DELETE", &format!("/acme/admin/api-keys/{id}")).send().status, 200);
    assert_eq!(read(g, "acme", &key), 401);
    assert!(listed(g, "acme").iter().all(|i| i["id"] != id.as_str()), "a deleted key is no longer listed");
    assert_eq!(atlas(g, "GET", &format!("/acme/admin/api-keys/{id}")).send().status, 404);
}

#[test]
fn is_active_false_at_creation_makes_a_disabled_key() {
    let g = gateway();
    let key = create(g, "acme", json!({"name": "later", "isActive": false, "permissions": ["content:read"]}));
    assert_eq!(read(g, "acme", &key), 401);
}

#[test]
fn a_project_sees_only_its_own_keys_and_bad_input_names_atlas_fields() {
    let g = gateway();
    let key = create(g, "globex", json!({"name": "other", "permissions": ["content:read"]}));
    assert_eq!(read(g, "globex", &key), 200);
    assert_eq!(read(g, "acme", &key), 403, "a key reaches only its own project's paths");
    let id = listed(g, "globex").iter().find(|i| i["name"] == "other").and_then(|i| i["id"].as_str().map(String::from)).unwrap();
    assert_eq!(atlas(g, "GET", &format!("/acme/admin/api-keys/{id}")).send().status, 404, "another project's key is not under /acme");
    assert_eq!(atlas(g, "DELETE", &format!("/acme/admin/api-keys/{id}")).send().status, 404);
    assert_eq!(read(g, "globex", &key), 200, "and it was not deleted");

    let bad = atlas(g, "POST", "/acme/admin/api-keys")
        .json(&json!({"name": "x", "validTo": "2001-01-01T00:00:00Z", "permissions": ["content:read"]}))
        .send();
    let body = bad.assert_error(400, "VALIDATION_FAILED");
    assert!(body["error"]["details"]["fields"]["validTo"].is_string(), "{body}");
    assert_eq!(g.request("GET", "/acme/admin/api-keys").send().status, 401, "the facade needs the admin token");
}
