//! Conformance of the "ovok" profile with its seed document (../shared/seeds/001: Ovok "CMS API
//! keys"), against the real worker under `wrangler dev` with the profile laid over
//! `wrangler.toml`. Each assertion quotes the sentence it checks. "Published only" and "this
//! project only" are the origin's to keep (README "Profiles"); the demo origin keeps them.

// Tests: a failed expectation is a failed test, with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::OnceLock;

use serde_json::{json, Value};

use common::{Gateway, Options, Resp};

fn gateway() -> &'static Gateway {
    static GATEWAY: OnceLock<Gateway> = OnceLock::new();
    GATEWAY.get_or_init(|| Gateway::start(Options { profile: Some("ovok"), ..Options::default() }))
}

fn create(g: &Gateway, name: &str) -> (String, String) {
    let response = g.admin("POST", "/keys").json(&json!({"project": "acme", "name": name, "role": "cms_public"})).send();
    assert_eq!(response.status, 201, "{}", response.body);
    let body: Value = response.json();
    (body["key"].as_str().unwrap().to_string(), body["record"]["id"].as_str().unwrap().to_string())
}

fn get(g: &Gateway, path: &str, key: Option<&str>) -> Resp {
    let request = g.request("GET", path);
    match key {
        Some(key) => request.bearer(key).send(),
        None => request.send(),
    }
}

/// Refused by the gateway, never reaching the origin (the demo origin labels all it answers).
fn refused(response: &Resp, status: u16) {
    assert_eq!(response.status, status, "{}", response.body);
    assert_eq!(response.header("x-origin-label"), None, "the origin was reached: {}", response.body);
}

#[test]
fn a_key_reads_published_items_as_a_bearer_token() {
    let g = gateway();
    let (key, _) = create(g, "marketing site");
    // "On creation you get a one-time view of the full key string: cmspub_a4f3b21c...."
    assert!(key.starts_with("cmspub_") && !key.starts_with("cmspub_live_"), "no environment part: {}", &key[..12]);
    // "Pass it as a bearer token: curl …/v1/public/cms/pages/items -H "Authorization: Bearer …""
    let items = get(g, "/v1/public/cms/articles/items", Some(&key));
    assert_eq!(items.status, 200, "{}", items.body);
    // "Each key is bound to one project and grants read access to that project's published
    // content only": the origin gets the key's project, signed, and serves that project's data.
    assert_eq!(items.json()["project"], "acme");
    assert!(items.json()["items"].as_array().is_some_and(|i| !i.is_empty()));
    // "Read published items via /v1/public/cms/{typeSlug}/items[/...]"
    let one = get(g, "/v1/public/cms/articles/items/hello-world", Some(&key));
    assert_eq!(one.header("x-origin-label"), Some("live"), "the item path reaches the origin: {}", one.body);
}

#[test]
fn everything_else_is_401_or_403_and_never_reaches_the_origin() {
    let g = gateway();
    let (key, _) = create(g, "ios app");
    // "What it cannot do — 401 or 403: … Write, update, delete (use the Content API with a JWT)"
    for method in ["POST", "PUT", "DELETE"] {
        refused(&g.request(method, "/v1/public/cms/articles/items").bearer(&key).json(&json!({"title": "x"})).send(), 403);
        refused(&g.request(method, "/v1/public/cms/articles/items").json(&json!({"title": "x"})).send(), 401);
    }
    // "Read FHIR resources or any non-CMS endpoint"
    for path in ["/fhir/Patient/1", "/v1/content/articles", "/"] {
        refused(&get(g, path, Some(&key)), 403);
        refused(&get(g, path, None), 401);
    }
    // A creating key for another environment is not possible: there is none in this format.
    let test = g.admin("POST", "/keys").json(&json!({"project": "acme", "name": "t", "role": "cms_public", "env": "test"})).send();
    test.assert_error(400, "VALIDATION_FAILED");
}

#[test]
fn revocation_and_expiry_apply_on_the_next_call() {
    let g = gateway();
    let (key, id) = create(g, "old key");
    assert_eq!(get(g, "/v1/public/cms/pages/items", Some(&key)).status, 200);
    // "Revocation is immediate — in-flight requests using a revoked key return 401 on the next call."
    assert_eq!(g.admin("DELETE", &format!("/keys/{id}")).send().status, 200);
    refused(&get(g, "/v1/public/cms/pages/items", Some(&key)), 401);

    // "Expiry — optional. If set, the key auto-revokes at that time."
    let (key, id) = create(g, "expiring");
    assert_eq!(g.admin("PATCH", &format!("/keys/{id}")).json(&json!({"valid_to": "2020-01-01T00:00:00Z"})).send().status, 200);
    refused(&get(g, "/v1/public/cms/pages/items", Some(&key)), 401);
}

#[test]
fn rotation_mints_the_replacement_first() {
    let g = gateway();
    let (old, id) = create(g, "mkt-web-prod");
    // "Mint the replacement first (overlap window). Roll out the new key to your apps. Revoke the old key."
    let rolled = g.admin("POST", &format!("/keys/{id}/roll")).json(&json!({"grace_seconds": 3600})).send();
    assert_eq!(rolled.status, 201, "{}", rolled.body);
    let new = rolled.json()["key"].as_str().unwrap().to_string();
    assert_eq!(get(g, "/v1/public/cms/pages/items", Some(&old)).status, 200, "overlap: the old key still works");
    assert_eq!(get(g, "/v1/public/cms/pages/items", Some(&new)).status, 200);
    assert_eq!(g.admin("DELETE", &format!("/keys/{id}")).send().status, 200);
    refused(&get(g, "/v1/public/cms/pages/items", Some(&old)), 401);
    assert_eq!(get(g, "/v1/public/cms/pages/items", Some(&new)).status, 200);
}
