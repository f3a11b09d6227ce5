//! Conformance of the "octavia" profile with its seed document (../shared/seeds/000: Octavia AI
//! CMS "API keys"), against the real worker under `wrangler dev` with the profile laid over
//! `wrangler.toml`. Each assertion quotes the sentence it checks.

// Tests: a failed expectation is a failed test, with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::OnceLock;

use serde_json::{json, Value};

use common::{Gateway, Options};

fn gateway() -> &'static Gateway {
    static GATEWAY: OnceLock<Gateway> = OnceLock::new();
    // Last-use reports every second (default 60) so the audit test sees one within its bound.
    GATEWAY.get_or_init(|| {
        Gateway::start(Options { profile: Some("octavia"), vars: vec![("LAST_USED_REPORT_SECONDS", "1")], ..Options::default() })
    })
}

fn create(g: &Gateway, project: &str, body: Value) -> (String, String) {
    let mut body = body;
    body["project"] = json!(project);
    let response = g.admin("POST", "/keys").json(&body).send();
    assert_eq!(response.status, 201, "{}", response.body);
    let created = response.json();
    (created["key"].as_str().unwrap().to_string(), created["record"]["id"].as_str().unwrap().to_string())
}

fn status(g: &Gateway, method: &str, path: &str, key: &str) -> u16 {
    let request = g.request(method, path).bearer(key);
    if method == "GET" {
        request.send().status
    } else {
        request.json(&json!({})).send().status
    }
}

#[test]
fn roles_grant_what_the_role_table_says() {
    let g = gateway();
    let key = |role: &str| create(g, "roles", json!({"name": format!("cms-{role}"), "role": role})).0;
    // (role, method, path, allowed) — one row per sentence of "Roles & permissions (AI CMS)".
    let rows = [
        // "Read-only … Can read published articles, media, categories, and translations, but has
        // no write or modification permissions."
        ("read_only", "GET", "/v1/articles", true),
        ("read_only", "GET", "/v1/media/m_1", true),
        ("read_only", "GET", "/v1/categories", true),
        ("read_only", "GET", "/v1/translations", true),
        ("read_only", "POST", "/v1/articles", false),
        // "Writer … Create and edit their own drafts, upload media … Cannot publish or delete articles."
        ("writer", "POST", "/v1/articles", true),
        ("writer", "POST", "/v1/media", true),
        ("writer", "POST", "/v1/articles/a_1/publish", false),
        ("writer", "DELETE", "/v1/articles/a_1", false),
        // "Editor … Create, edit, and localize articles; … manage media assets. Cannot publish or
        // access administrative settings."
        ("editor", "PUT", "/v1/translations/t_1", true),
        ("editor", "POST", "/v1/articles/a_1/publish", false),
        ("editor", "GET", "/v1/settings", false),
        // "Publisher … Handle publishing, scheduling, and visibility of content … cannot alter
        // user or team settings."
        ("publisher", "POST", "/v1/articles/a_1/publish", true),
        ("publisher", "PUT", "/v1/team/u_1", false),
        // "Managing Editor … Approve and publish articles, … manage categories and translations.
        // Cannot modify team or billing settings."
        ("managing_editor", "POST", "/v1/articles/a_1/publish", true),
        ("managing_editor", "POST", "/v1/categories", true),
        ("managing_editor", "PUT", "/v1/billing", false),
        // "Admin … manage team members, but cannot modify billing or API keys unless explicitly granted."
        ("admin", "PUT", "/v1/team/u_1", true),
        ("admin", "PUT", "/v1/billing", false),
        ("admin", "POST", "/v1/api-keys", false),
        // "Super Admin … Full control over all CMS resources, users, settings, billing, API keys"
        ("super_admin", "PUT", "/v1/billing", true),
        ("super_admin", "POST", "/v1/api-keys", true),
        ("super_admin", "DELETE", "/v1/articles/a_1", true),
    ];
    for (role, method, path, allowed) in rows {
        let got = status(g, method, path, &key(role));
        assert_eq!(matches!(got, 200 | 201), allowed, "{role} {method} {path}: {got}");
        if !allowed {
            assert_eq!(got, 403, "{role} {method} {path}");
        }
    }
    // "…unless explicitly granted": an admin key with the API-key scopes added.
    let granted = create(g, "roles", json!({"name": "admin+keys", "role": "admin", "scopes": ["keys:write"]})).0;
    assert_eq!(status(g, "POST", "/v1/api-keys", &granted), 201);
}

#[test]
fn keys_are_edited_toggled_and_re_dated() {
    let g = gateway();
    let (key, id) = create(g, "manage", json!({"name": "cms-backend-prod", "role": "read_only", "valid_to": "2099-01-01T00:00:00Z"}));
    let patch = |body: Value| assert_eq!(g.admin("PATCH", &format!("/keys/{id}")).json(&body).send().status, 200);
    assert_eq!(status(g, "GET", "/v1/articles", &key), 200);
    // "Status: you can toggle a key Active/Inactive anytime after creation."
    patch(json!({"status": "inactive"}));
    assert_eq!(status(g, "GET", "/v1/articles", &key), 401);
    patch(json!({"status": "active"}));
    assert_eq!(status(g, "GET", "/v1/articles", &key), 200);
    // "You can edit a key's role, change its expiration (switch between date-bound and lifetime)"
    patch(json!({"role": "writer", "valid_to": null}));
    assert_eq!(status(g, "POST", "/v1/articles", &key), 201);
    patch(json!({"valid_to": "2020-01-01T00:00:00Z"}));
    assert_eq!(status(g, "GET", "/v1/articles", &key), 401);
    // "Revoke: Permanently delete a key to invalidate it immediately across all clients."
    patch(json!({"valid_to": null}));
    assert_eq!(g.admin("DELETE", &format!("/keys/{id}")).send().status, 200);
    assert_eq!(status(g, "GET", "/v1/articles", &key), 401);
}

#[test]
fn last_used_timestamps_identify_unused_keys() {
    let g = gateway();
    let (used, used_id) = create(g, "audit", json!({"name": "used", "role": "read_only"}));
    let (_, unused_id) = create(g, "audit", json!({"name": "unused", "role": "read_only"}));
    // "Audit: Use the dashboard to review last-used timestamps and quickly identify unused keys."
    let last_used = |id: &str| -> Value {
        let page = g.admin("GET", "/keys?project=audit").send().json();
        page["items"].as_array().unwrap().iter().find(|r| r["id"] == id).map(|r| r["last_used_at"].clone()).expect("listed")
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while last_used(&used_id).is_null() {
        assert!(std::time::Instant::now() < deadline, "the used key's last use never reached the list");
        assert_eq!(status(g, "GET", "/v1/articles", &used), 200);
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    assert!(last_used(&unused_id).is_null(), "the unused key stands out: no last use");
}
