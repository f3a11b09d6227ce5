//! Admin API against the real worker under `wrangler dev`: every endpoint, every validation
//! error, and the key lifecycle end to end through the gateway.

// Tests: a failed expectation is a failed test, with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::OnceLock;

use keygate_core::timestamp::Timestamp;
use serde_json::{json, Value};

use common::{Gateway, Options, ADMIN_TOKEN};

fn gateway() -> &'static Gateway {
    static GATEWAY: OnceLock<Gateway> = OnceLock::new();
    // Last-use reports at most every second (default 60), so a test sees one within its bound.
    // LEASE_MS = 0: each admin change applies to the very next request (with leases, within
    // LEASE_MS: tests/leases.rs).
    GATEWAY
        .get_or_init(|| Gateway::start(Options { vars: vec![("LAST_USED_REPORT_SECONDS", "1"), ("LEASE_MS", "0")], ..Options::default() }))
}

const LIST: &str = "/v1/public/cms/articles/items";

/// Creates a key and returns (plaintext, record).
fn create(g: &Gateway, body: Value) -> (String, Value) {
    let response = g.admin("POST", "/keys").json(&body).send();
    assert_eq!(response.status, 201, "{}", response.body);
    let created = response.json();
    (created["key"].as_str().expect("key").to_string(), created["record"].clone())
}

fn read_status(g: &Gateway, key: &str) -> (u16, Option<String>) {
    let response = g.request("GET", LIST).bearer(key).send();
    let code = if response.status == 200 { None } else { response.json()["error"]["code"].as_str().map(String::from) };
    (response.status, code)
}

fn patch(g: &Gateway, id: &str, body: Value) -> Value {
    let response = g.admin("PATCH", &format!("/keys/{id}")).json(&body).send();
    assert_eq!(response.status, 200, "{}", response.body);
    response.json()
}

#[test]
fn admin_requires_the_admin_token() {
    let g = gateway();
    let path = "/_keygate/v1/keys?project=acme";
    g.request("GET", path).send().assert_error(401, "UNAUTHORIZED");
    g.request("GET", path).bearer("wrong-token-wrong-token").send().assert_error(401, "UNAUTHORIZED");
    g.request("GET", path).header("X-Api-Key", ADMIN_TOKEN).send().assert_error(401, "UNAUTHORIZED");
    g.request("GET", path).header("Authorization", ADMIN_TOKEN).send().assert_error(401, "UNAUTHORIZED");
    // An API key is not an admin token.
    g.request("GET", path).bearer(&g.keys.read_only).send().assert_error(401, "UNAUTHORIZED");
    let ok = g.admin("GET", "/keys?project=acme").send();
    assert_eq!(ok.status, 200, "{}", ok.body);
}

#[test]
fn create_returns_the_key_once_and_it_works_through_the_gateway() {
    let g = gateway();
    let (key, record) = create(g, json!({"project":"acme","name":"marketing site","role":"read_only","meta":{"team":"web"}}));
    assert!(key.starts_with("kg_live_"));
    assert!(keygate_core::key::KeyFormat::default().parse(&key).is_ok());
    assert!(record["id"].as_str().unwrap().starts_with("key_"));
    assert_eq!(record["status"], "active");
    assert_eq!(record["env"], "live");
    assert_eq!(record["revision"], 1);
    assert_eq!(record["meta"]["team"], "web");
    let hint = record["hint"].as_str().unwrap();
    assert!(hint.starts_with("kg_live_") && hint.ends_with(&key[key.len() - 4..]));
    assert!(!record.to_string().contains(&key), "record must not contain the key");
    assert_eq!(read_status(g, &key), (200, None));
    // Shown once: reading the record back never returns the key.
    let shown = g.admin("GET", &format!("/keys/{}", record["id"].as_str().unwrap())).send();
    assert_eq!(shown.status, 200);
    assert!(!shown.body.contains(&key));
    assert_eq!(shown.json()["id"], record["id"]);
}

#[test]
fn test_env_key_is_created_for_the_test_origin() {
    let g = gateway();
    let (key, record) = create(g, json!({"project":"acme","name":"sandbox","env":"test","scopes":["content:read"]}));
    assert!(key.starts_with("kg_test_"));
    assert_eq!(record["env"], "test");
    let response = g.request("GET", LIST).bearer(&key).send();
    assert_eq!(response.json()["origin"], "test");
}

#[test]
fn key_lists_show_when_each_key_was_last_used() {
    let g = gateway();
    let (used, record) = create(g, json!({"project":"lastuse","name":"used","role":"read_only"}));
    let used_id = record["id"].as_str().unwrap().to_string();
    let (_, record) = create(g, json!({"project":"lastuse","name":"unused","role":"read_only"}));
    let unused_id = record["id"].as_str().unwrap().to_string();
    let last_used = |id: &str| -> Value {
        let page = g.admin("GET", "/keys?project=lastuse").send().json();
        page["items"].as_array().unwrap().iter().find(|r| r["id"] == id).map(|r| r["last_used_at"].clone()).expect("listed")
    };
    assert_eq!(last_used(&unused_id), Value::Null, "a key never used has last_used_at null");
    // Reports are batched per isolate and sent by a later request once due (here: after 1 s),
    // so keep using the key until the list shows it, within a bound.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let at = loop {
        assert_eq!(read_status(g, &used), (200, None));
        if let Some(at) = last_used(&used_id).as_str().map(String::from) {
            break at;
        }
        assert!(std::time::Instant::now() < deadline, "last_used_at never appeared in the list");
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    let at = Timestamp::parse_rfc3339(&at).expect("RFC 3339");
    let created = Timestamp::parse_rfc3339(record["created_at"].as_str().unwrap()).unwrap();
    assert!(at >= created, "last used ({at}) is not before the keys were created");
    assert_eq!(last_used(&unused_id), Value::Null, "only the used key was reported");
}

#[test]
fn list_pages_with_cursor_and_filters_by_status() {
    let g = gateway();
    let project = "listing";
    let mut ids = Vec::new();
    for i in 0..3 {
        let (_, record) = create(g, json!({"project":project,"name":format!("k{i}"),"role":"read_only"}));
        ids.push(record["id"].as_str().unwrap().to_string());
    }
    patch(g, &ids[1], json!({"status":"inactive"}));
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/keys?project={project}&limit=2&cursor={c}"),
            None => format!("/keys?project={project}&limit=2"),
        };
        let page = g.admin("GET", &path).send().json();
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= 2);
        seen.extend(items.iter().map(|r| r["id"].as_str().unwrap().to_string()));
        match page["cursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => break,
        }
        assert!(seen.len() <= 3, "pagination does not terminate");
    }
    assert_eq!(seen, ids, "all keys, in creation order, each once");
    // No runtime warning on this normal path (the first page's lower bound once was i64::MIN,
    // which the runtime warned about converting to a JS number). A marker line logged after the
    // listing shows the log has caught up.
    let marker = g.request("GET", "/_keygate/v1/keys").bearer("not-the-admin-token").header("CF-Connecting-IP", "203.0.113.91").send();
    assert_eq!(marker.status, 401);
    let log = g.log_containing("203.0.113.91");
    assert!(!log.contains("safe-integer"), "a runtime warning on the list path:\n{log}");
    let inactive = g.admin("GET", &format!("/keys?project={project}&status=inactive")).send().json();
    let inactive: Vec<&str> = inactive["items"].as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(inactive, vec![ids[1].as_str()]);
    let other = g.admin("GET", "/keys?project=nobody-here").send().json();
    assert_eq!(other["items"].as_array().unwrap().len(), 0);
    assert!(other["cursor"].is_null());
}

#[test]
fn rolling_an_expired_key_is_refused_and_rolling_a_disabled_key_replaces_it() {
    let g = gateway();
    let (key, record) = create(g, json!({"project":"acme","name":"expired roll","role":"read_only"}));
    let id = record["id"].as_str().unwrap().to_string();
    patch(g, &id, json!({"valid_to":"2020-01-01T00:00:00Z"}));
    let refused = g.admin("POST", &format!("/keys/{id}/roll")).json(&json!({"grace_seconds":60})).send();
    let body = refused.assert_error(409, "CONFLICT");
    assert!(body["error"]["details"]["reason"].as_str().unwrap_or("").contains("expired"), "{body}");
    assert_eq!(read_status(g, &key), (401, Some("KEY_EXPIRED".into())), "the refused roll changed nothing");

    let (old, record) = create(g, json!({"project":"acme","name":"disabled roll","role":"read_only"}));
    let id = record["id"].as_str().unwrap().to_string();
    patch(g, &id, json!({"status":"inactive"}));
    let rolled = g.admin("POST", &format!("/keys/{id}/roll")).json(&json!({"grace_seconds":3600})).send();
    assert_eq!(rolled.status, 201, "{}", rolled.body);
    let rolled = rolled.json();
    assert_eq!(rolled["record"]["status"], "active", "the replacement of a disabled key is active");
    assert_eq!(rolled["previous"]["status"], "inactive", "the disabled key stays disabled");
    assert_eq!(read_status(g, &old), (401, Some("KEY_DISABLED".into())));
    assert_eq!(read_status(g, rolled["key"].as_str().unwrap()), (200, None));
}

#[test]
fn lifecycle_end_to_end_through_the_gateway() {
    let g = gateway();
    let (key, record) = create(g, json!({"project":"acme","name":"lifecycle","role":"read_only"}));
    let id = record["id"].as_str().unwrap().to_string();
    assert_eq!(read_status(g, &key), (200, None), "create → works");

    let disabled = patch(g, &id, json!({"status":"inactive"}));
    assert_eq!(disabled["status"], "inactive");
    assert_eq!(read_status(g, &key), (401, Some("KEY_DISABLED".into())), "disable → KEY_DISABLED");

    patch(g, &id, json!({"status":"active"}));
    assert_eq!(read_status(g, &key), (200, None), "enable → works");

    let dated = patch(g, &id, json!({"valid_to":"2099-01-01T00:00:00Z"}));
    assert_eq!(dated["valid_to"], "2099-01-01T00:00:00.000Z", "timestamps are written in one fixed format");
    assert_eq!(read_status(g, &key), (200, None));
    let lifetime = patch(g, &id, json!({"valid_to":null}));
    assert!(lifetime["valid_to"].is_null(), "date → lifetime");

    patch(g, &id, json!({"valid_to":"2020-01-01T00:00:00Z"}));
    assert_eq!(read_status(g, &key), (401, Some("KEY_EXPIRED".into())), "valid_to in the past → KEY_EXPIRED");
    patch(g, &id, json!({"valid_to":null}));
    assert_eq!(read_status(g, &key), (200, None));

    // Roll with a grace period: both keys work.
    let rolled = g.admin("POST", &format!("/keys/{id}/roll")).json(&json!({"grace_seconds":3600})).send();
    assert_eq!(rolled.status, 201, "{}", rolled.body);
    let rolled = rolled.json();
    let second = rolled["key"].as_str().unwrap().to_string();
    let second_id = rolled["record"]["id"].as_str().unwrap().to_string();
    assert_ne!(second, key);
    assert_eq!(rolled["record"]["role"], "read_only");
    assert_eq!(rolled["record"]["project"], "acme");
    assert_eq!(rolled["record"]["family"], id.as_str());
    assert!(rolled["previous"]["valid_to"].is_string());
    assert_eq!(read_status(g, &key), (200, None), "old key works during grace");
    assert_eq!(read_status(g, &second), (200, None), "new key works");

    // Roll the new key with no grace: it ends at once, its replacement works.
    let third = g.admin("POST", &format!("/keys/{second_id}/roll")).json(&json!({"grace_seconds":0})).send();
    assert_eq!(third.status, 201, "{}", third.body);
    let third_key = third.json()["key"].as_str().unwrap().to_string();
    assert_eq!(read_status(g, &second), (401, Some("KEY_EXPIRED".into())), "old key expired after its grace");
    assert_eq!(read_status(g, &third_key), (200, None));

    // Revoke.
    let revoked = g.admin("DELETE", &format!("/keys/{id}")).send();
    assert_eq!(revoked.status, 200, "{}", revoked.body);
    assert_eq!(revoked.json()["status"], "revoked");
    assert_eq!(read_status(g, &key), (401, Some("KEY_REVOKED".into())), "revoke → KEY_REVOKED");
    let again = g.admin("DELETE", &format!("/keys/{id}")).send();
    assert_eq!((again.status, again.json()["status"].as_str()), (200, Some("revoked")), "revoke is idempotent");
    g.admin("PATCH", &format!("/keys/{id}")).json(&json!({"status":"active"})).send().assert_error(409, "CONFLICT");
    g.admin("POST", &format!("/keys/{id}/roll")).json(&json!({})).send().assert_error(409, "CONFLICT");
    assert_eq!(read_status(g, &key), (401, Some("KEY_REVOKED".into())));

    // The audit log tells the story, without key material.
    let audit = g.admin("GET", &format!("/keys/{id}/audit")).send();
    assert_eq!(audit.status, 200, "{}", audit.body);
    let actions: Vec<String> =
        audit.json()["items"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap().to_string()).collect();
    assert_eq!(actions, ["created", "disabled", "enabled", "updated", "updated", "updated", "updated", "rolled", "revoked"]);
    for plaintext in [&key, &second, &third_key] {
        assert!(!audit.body.contains(plaintext.as_str()));
    }
}

#[test]
fn update_changes_role_scopes_name_origins_and_meta() {
    let g = gateway();
    let (key, record) = create(g, json!({"project":"acme","name":"before","role":"read_only"}));
    let id = record["id"].as_str().unwrap();
    let write = g.request("POST", "/v1/cms/articles/items").bearer(&key).json(&json!({"t":1})).send();
    write.assert_error(403, "INSUFFICIENT_SCOPE");
    let updated = patch(g, id, json!({"name":"after","role":"writer","meta":{"k":"v"},"allowed_origins":["https://a.example"]}));
    assert_eq!(
        (updated["name"].as_str(), updated["role"].as_str(), updated["revision"].as_u64()),
        (Some("after"), Some("writer"), Some(2))
    );
    let write = g.request("POST", "/v1/cms/articles/items").bearer(&key).header("Origin", "https://a.example").json(&json!({"t":1})).send();
    assert_eq!(write.status, 201, "{}", write.body);
    g.request("GET", LIST).bearer(&key).send().assert_error(403, "ORIGIN_NOT_ALLOWED");
    let open = patch(g, id, json!({"allowed_origins":null,"role":null,"scopes":["content:read"]}));
    assert!(open["allowed_origins"].is_null() && open["role"].is_null());
    assert_eq!(read_status(g, &key), (200, None));
}

#[test]
fn create_validation_errors_name_each_field() {
    let g = gateway();
    let rows: Vec<(&str, Value, &[&str])> = vec![
        ("unknown role", json!({"project":"acme","name":"n","role":"wizard"}), &["role"]),
        ("unknown scope", json!({"project":"acme","name":"n","scopes":["pages:fly"]}), &["scopes"]),
        ("empty name", json!({"project":"acme","name":"","role":"writer"}), &["name"]),
        ("long name", json!({"project":"acme","name":"x".repeat(101),"role":"writer"}), &["name"]),
        ("valid_to in the past", json!({"project":"acme","name":"n","role":"writer","valid_to":"2020-01-01T00:00:00Z"}), &["valid_to"]),
        (
            "valid_to before valid_from",
            json!({"project":"acme","name":"n","role":"writer","valid_from":"2031-01-01T00:00:00Z","valid_to":"2030-01-01T00:00:00Z"}),
            &["valid_to"],
        ),
        ("bad timestamp", json!({"project":"acme","name":"n","role":"writer","valid_from":"next week"}), &["valid_from"]),
        ("unknown fields", json!({"project":"acme","name":"n","role":"writer","isActive":true}), &["isActive"]),
        ("missing project", json!({"name":"n","role":"writer"}), &["project"]),
        ("bad env", json!({"project":"acme","name":"n","role":"writer","env":"prod"}), &["env"]),
        ("several at once", json!({"project":"acme","name":"","role":"wizard"}), &["name", "role"]),
    ];
    for (what, body, fields) in rows {
        let error = g.admin("POST", "/keys").json(&body).send().assert_error(400, "VALIDATION_FAILED");
        let got: Vec<&str> = error["error"]["details"]["fields"].as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(got, fields.to_vec(), "{what}");
    }
}

#[test]
fn update_roll_and_list_validation_errors() {
    let g = gateway();
    let (_, record) = create(g, json!({"project":"acme","name":"v","role":"read_only"}));
    let id = record["id"].as_str().unwrap();
    let rows: Vec<(&str, Value, &str)> = vec![
        ("unknown field", json!({"project":"globex"}), "project"),
        ("revoke via status", json!({"status":"revoked"}), "status"),
        ("bad name", json!({"name":"  "}), "name"),
        ("valid_to before valid_from", json!({"valid_from":"2030-01-01T00:00:00Z","valid_to":"2029-01-01T00:00:00Z"}), "valid_to"),
        ("empty patch", json!({}), "body"),
    ];
    for (what, body, field) in rows {
        let error = g.admin("PATCH", &format!("/keys/{id}")).json(&body).send().assert_error(400, "VALIDATION_FAILED");
        assert!(error["error"]["details"]["fields"].get(field).is_some(), "{what}: {error}");
    }
    let error =
        g.admin("POST", &format!("/keys/{id}/roll")).json(&json!({"grace_seconds":-5})).send().assert_error(400, "VALIDATION_FAILED");
    assert!(error["error"]["details"]["fields"].get("grace_seconds").is_some());
    for (query, field) in [
        ("", "project"),
        ("?project=acme&limit=0", "limit"),
        ("?project=acme&status=gone", "status"),
        ("?project=acme&cursor=bogus", "cursor"),
    ] {
        let error = g.admin("GET", &format!("/keys{query}")).send().assert_error(400, "VALIDATION_FAILED");
        assert!(error["error"]["details"]["fields"].get(field).is_some(), "{query}: {error}");
    }
}

#[test]
fn bodies_must_be_bounded_json() {
    let g = gateway();
    let big = json!({"project":"acme","name":"n","role":"writer","meta":{"pad":"x".repeat(20_000)}});
    g.admin("POST", "/keys").json(&big).send().assert_error(413, "PAYLOAD_TOO_LARGE");
    g.admin("POST", "/keys")
        .header("Content-Type", "text/plain")
        .body(r#"{"project":"acme","name":"n","role":"writer"}"#)
        .send()
        .assert_error(415, "UNSUPPORTED_MEDIA_TYPE");
    let malformed = g.admin("POST", "/keys").header("Content-Type", "application/json").body("{\"project\":").send();
    let error = malformed.assert_error(400, "VALIDATION_FAILED");
    assert!(error["error"]["details"]["fields"].get("body").is_some());
}

#[test]
fn unknown_ids_and_paths_are_404() {
    let g = gateway();
    g.admin("GET", "/keys/key_doesnotexist").send().assert_error(404, "NOT_FOUND");
    g.admin("PATCH", "/keys/key_doesnotexist").json(&json!({"name":"x"})).send().assert_error(404, "NOT_FOUND");
    g.admin("DELETE", "/keys/key_doesnotexist").send().assert_error(404, "NOT_FOUND");
    g.admin("GET", "/keys/key_doesnotexist/audit").send().assert_error(404, "NOT_FOUND");
    g.admin("GET", "/nothing-here").send().assert_error(404, "NOT_FOUND");
    g.admin("GET", "/keys/not-an-id").send().assert_error(404, "NOT_FOUND");
}

#[test]
fn openapi_document_is_served() {
    let g = gateway();
    let response = g.admin("GET", "/openapi.json").send();
    assert_eq!(response.status, 200);
    let doc = response.json();
    assert!(doc["openapi"].as_str().unwrap_or("").starts_with("3.1"), "{doc}");
    for (_, template) in keygate_core::admin::router::ROUTES {
        assert!(doc["paths"].get(*template).is_some(), "{template} missing from the served document");
    }
    // The worker entry bundles the document as text (scripts/console-assets.mjs); it is the same
    // JSON as the source the core embeds.
    let source: serde_json::Value = serde_json::from_str(keygate_core::admin::OPENAPI).unwrap();
    assert_eq!(doc, source, "the served document differs from crates/core/src/admin/openapi.json");
    // Only after authentication, like every admin path.
    g.request("GET", "/_keygate/v1/openapi.json").send().assert_error(401, "UNAUTHORIZED");
}

#[test]
fn no_plaintext_key_or_admin_token_in_logs_kv_or_registry_storage() {
    let g = gateway();
    let mut secrets = Vec::new();
    let (key, record) = create(g, json!({"project":"hygiene","name":"h","role":"read_only"}));
    let id = record["id"].as_str().unwrap().to_string();
    let _ = read_status(g, &key);
    let rolled = g.admin("POST", &format!("/keys/{id}/roll")).json(&json!({"grace_seconds":60})).send().json();
    let second = rolled["key"].as_str().unwrap().to_string();
    let _ = read_status(g, &second);
    g.admin("DELETE", &format!("/keys/{id}")).send();
    secrets.push(key);
    secrets.push(second);
    secrets.push(ADMIN_TOKEN.to_string());
    secrets.push(common::SIGNING_SECRET.to_string());
    let needles: Vec<&str> = secrets.iter().map(String::as_str).collect();
    let log = g.log();
    for needle in &needles {
        assert!(!log.contains(needle), "secret found in wrangler log");
    }
    // Secrets sent where they do not belong, in URLs: refused, and not persisted anywhere under
    // the state directory either (the local runtime's trace store keeps full URLs; it is off).
    let url_key = &secrets[1];
    g.request("GET", &format!("/v1/public/cms/articles/items?api_key={url_key}")).send().assert_error(400, "BAD_REQUEST");
    g.request("GET", &format!("/_keygate/v1/keys?project=hygiene&token={ADMIN_TOKEN}")).send().assert_error(401, "UNAUTHORIZED");
    let log = g.log_containing("admin_auth_failed");
    for needle in &needles {
        assert!(!log.contains(needle), "secret found in wrangler log");
    }
    let leaks = common::find_in_tree(&g.state_dir, &needles);
    assert!(leaks.is_empty(), "secrets found in KV / Durable Object storage: {leaks:?}");
    // The state directory really holds the registry and KV data we scanned.
    let stored = common::find_in_tree(&g.state_dir, &[id.as_str()]);
    assert!(!stored.is_empty(), "expected the key id in persisted state (scan would be vacuous)");
}

/// `LEAK_REPORTS` is off by default: the GitHub report path is an ordinary admin path then,
/// which needs the admin token and routes nowhere.
#[test]
fn leak_reports_are_closed_unless_turned_on() {
    let g = gateway();
    let report = g
        .request("POST", "/_keygate/v1/leaks/github")
        .header("Github-Public-Key-Identifier", "x")
        .header("Github-Public-Key-Signature", "MEUCIQ==");
    report.json(&json!([{"token": g.keys.read_only}])).send().assert_error(401, "UNAUTHORIZED");
    g.admin("POST", "/leaks/github").json(&json!([])).send().assert_error(404, "NOT_FOUND");
    assert_eq!(g.request("GET", LIST).bearer(&g.keys.read_only).send().status, 200, "the reported key is untouched");
}
