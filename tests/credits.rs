//! Credits (usage-limited keys) against the real worker under `wrangler dev`, with leases
//! (`LEASE_MS` default) and without (`LEASE_MS = 0`): a balance admits exactly what it holds, a
//! route's cost spends that many, refusals are `402 CREDITS_EXHAUSTED` and spend nothing, and the
//! admin API (and the CLI) add, set, show and audit the balance. No sleeps: a change made while
//! an isolate holds lease units is polled for, a bounded number of times.

// Tests: a failed expectation is a failed test, with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::{Command, Output};
use std::sync::OnceLock;

use serde_json::{json, Value};

use common::{Gateway, Options, ADMIN_TOKEN};

/// The shipped list route, and echo routes costing 1 (the default), 3 and 0 credits.
const ROUTES: &str = r#"[
  {"methods":["GET","HEAD"],"path":"/v1/public/cms/:type/items","scopes":["content:read"]},
  {"methods":["GET"],"path":"/__echo/costly","scopes":["content:read"],"cost":3},
  {"methods":["GET"],"path":"/__echo/free","scopes":["content:read"],"cost":0},
  {"methods":["*"],"path":"/__echo/*","scopes":["content:read"]}
]"#;

const ONE: &str = "/__echo/one";
const COSTLY: &str = "/__echo/costly";
const FREE: &str = "/__echo/free";

/// With leases (`LEASE_MS` default, 1000).
fn leased() -> &'static Gateway {
    static GATEWAY: OnceLock<Gateway> = OnceLock::new();
    GATEWAY.get_or_init(|| Gateway::start(Options { vars: vec![("ROUTES", ROUTES)], ..Options::default() }))
}

/// Every request asks the limiter (`LEASE_MS = 0`).
fn per_request() -> &'static Gateway {
    static GATEWAY: OnceLock<Gateway> = OnceLock::new();
    GATEWAY.get_or_init(|| Gateway::start(Options { vars: vec![("ROUTES", ROUTES), ("LEASE_MS", "0")], ..Options::default() }))
}

fn both() -> [(&'static str, &'static Gateway); 2] {
    [("LEASE_MS=0", per_request()), ("leases", leased())]
}

/// Creates a read-only key with `extra` fields; (plaintext key, id).
fn create(g: &Gateway, extra: Value) -> (String, String) {
    let mut body = json!({"project": "credits", "name": "credits test", "role": "read_only"});
    for (name, value) in extra.as_object().unwrap() {
        body[name] = value.clone();
    }
    let response = g.admin("POST", "/keys").json(&body).send();
    assert_eq!(response.status, 201, "{}", response.body);
    let created = response.json();
    (created["key"].as_str().unwrap().to_string(), created["record"]["id"].as_str().unwrap().to_string())
}

fn credits(remaining: u64) -> Value {
    json!({"credits": {"remaining": remaining}})
}

fn change(g: &Gateway, id: &str, op: &str, amount: i64) -> common::Resp {
    g.admin("POST", &format!("/keys/{id}/credits")).json(&json!({"op": op, "amount": amount})).send()
}

/// (status, X-Credits-Remaining) of one request.
fn call(g: &Gateway, key: &str, path: &str) -> (u16, Option<String>) {
    let response = g.request("GET", path).bearer(key).send();
    (response.status, response.header("x-credits-remaining").map(String::from))
}

fn statuses(g: &Gateway, key: &str, path: &str, count: usize) -> Vec<u16> {
    (0..count).map(|_| g.request("GET", path).bearer(key).send().status).collect()
}

#[test]
fn five_credits_admit_five_then_402_credits_exhausted_with_the_balance_in_a_header() {
    for (what, g) in both() {
        let (key, _) = create(g, credits(5));
        let answers: Vec<(u16, Option<String>)> = (0..8).map(|_| call(g, &key, ONE)).collect();
        let expected: Vec<(u16, Option<String>)> =
            [(200, "4"), (200, "3"), (200, "2"), (200, "1"), (200, "0"), (402, "0"), (402, "0"), (402, "0")]
                .iter()
                .map(|(status, remaining)| (*status, Some(remaining.to_string())))
                .collect();
        assert_eq!(answers, expected, "{what}");
        let refused = g.request("GET", ONE).bearer(&key).send();
        let body = refused.assert_error(402, "CREDITS_EXHAUSTED");
        assert_eq!(refused.header("retry-after"), None, "{what}: without a refill, retrying does not help");
        assert_eq!(body["error"]["details"], json!({}), "{what}");
        assert_eq!(refused.header("ratelimit-policy"), None, "{what}: a key without limits has no rate-limit headers");
    }
}

#[test]
fn a_route_costing_three_spends_three_and_a_cost_the_balance_cannot_pay_spends_nothing() {
    for (what, g) in both() {
        let (key, _) = create(g, credits(10));
        let rows = [
            (COSTLY, 200, "7"),
            (COSTLY, 200, "4"),
            (COSTLY, 200, "1"),
            (COSTLY, 402, "1"), // 3 > 1: refused, the 1 is kept
            (FREE, 200, "1"),
            (ONE, 200, "0"),
            (ONE, 402, "0"),
            (FREE, 200, "0"), // a route of cost 0 passes an empty balance
        ];
        for (n, (path, status, remaining)) in rows.iter().enumerate() {
            assert_eq!(call(g, &key, path), (*status, Some(remaining.to_string())), "{what}: request {n} to {path}");
        }
    }
}

#[test]
fn fifty_concurrent_requests_on_a_balance_of_twenty_admit_exactly_twenty() {
    for (what, g) in both() {
        let (key, id) = create(g, credits(20));
        let statuses: Vec<u16> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..50).map(|_| scope.spawn(|| g.request("GET", ONE).bearer(&key).send().status)).collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let mut admitted = statuses.iter().filter(|s| **s == 200).count();
        let refused = statuses.iter().filter(|s| **s == 402).count();
        assert_eq!(admitted + refused, 50, "{what}: {statuses:?}");
        if what == "LEASE_MS=0" {
            assert_eq!(admitted, 20, "{what}: {statuses:?}");
        } else {
            assert!(admitted <= 20, "{what}: never more than the balance: {statuses:?}");
        }
        // With leases the isolate may still hold a unit when the burst ends (a request that
        // found the lease empty while a renewal was in flight asked the limiter for itself, and
        // the grant had taken the unit): the next request uses it, or it goes back to the
        // balance once dropped. So the balance is spent exactly, never more: later requests
        // find what is left, then refusals only.
        let mut refused_in_a_row = 0;
        for _ in 0..50 {
            match g.request("GET", ONE).bearer(&key).send().status {
                200 => (admitted, refused_in_a_row) = (admitted + 1, 0),
                402 => refused_in_a_row += 1,
                other => panic!("{what}: {other}"),
            }
            if refused_in_a_row == 5 {
                break;
            }
        }
        assert_eq!(admitted, 20, "{what}: exactly the balance, in all");
        assert!(statuses_all(g, &key, 402), "{what}");
        let usage = g.admin("GET", &format!("/keys/{id}/usage")).send().json();
        assert_eq!(usage["credits"]["remaining"], 0, "{what}: {usage}");
    }
}

fn statuses_all(g: &Gateway, key: &str, status: u16) -> bool {
    statuses(g, key, ONE, 10).iter().all(|s| *s == status)
}

#[test]
fn credits_add_readmits_and_set_zero_refuses() {
    for (what, g) in both() {
        let (key, id) = create(g, credits(2));
        assert_eq!(statuses(g, &key, ONE, 3), [200, 200, 402], "{what}");
        let added = change(g, &id, "add", 3);
        assert_eq!(added.status, 200, "{what}: {}", added.body);
        assert_eq!(added.json(), json!({"key_id": id, "remaining": 3}), "{what}");
        assert_eq!(statuses(g, &key, ONE, 5), [200, 200, 200, 402, 402], "{what}: exactly the 3 added");
        // A negative add deducts, stopping at zero.
        assert_eq!(change(g, &id, "add", 10).json()["remaining"], 10, "{what}");
        assert_eq!(change(g, &id, "add", -4).json()["remaining"], 6, "{what}");
        assert_eq!(change(g, &id, "add", -100).json()["remaining"], 0, "{what}");
        assert_eq!(change(g, &id, "set", 100).json()["remaining"], 100, "{what}");
        assert_eq!(statuses(g, &key, ONE, 5), [200; 5], "{what}");
        assert_eq!(change(g, &id, "set", 0).json()["remaining"], 0, "{what}");
        // Units an isolate holds from before the set may still serve a few requests (leases:
        // until its next renewal, at most LEASE_MS); then every request is refused.
        let first_refusal = (0..200).position(|_| g.request("GET", ONE).bearer(&key).send().status == 402);
        let first_refusal = first_refusal.expect("refused within 200 requests of the set");
        if what == "LEASE_MS=0" {
            assert_eq!(first_refusal, 0, "{what}: the very next request");
        }
        assert!(statuses_all(g, &key, 402), "{what}: refused for good");
    }
}

#[test]
fn usage_shows_the_balance_and_its_refill_and_a_refusal_waits_for_the_refill() {
    let g = per_request();
    let refill = json!({"amount": 50, "interval": "day", "mode": "reset"});
    let (key, id) = create(g, json!({"credits": {"remaining": 2, "refill": refill}}));
    assert_eq!(statuses(g, &key, ONE, 1), [200]);
    let usage = g.admin("GET", &format!("/keys/{id}/usage")).send();
    assert_eq!(usage.status, 200, "{}", usage.body);
    let usage = usage.json();
    assert_eq!(usage["credits"]["remaining"], 1, "{usage}");
    assert_eq!(usage["credits"]["refill"], refill, "{usage}");
    let next = usage["credits"]["next_refill_at"].as_str().unwrap();
    let next_ms = keygate_core::timestamp::Timestamp::parse_rfc3339(next).unwrap().millis();
    assert_eq!(next_ms % 86_400_000, 0, "a daily refill is at UTC midnight: {next}");
    assert_eq!(usage["days"][0]["allowed"], 1, "{usage}");
    assert_eq!(statuses(g, &key, ONE, 1), [200]);
    let refused = g.request("GET", ONE).bearer(&key).send();
    let body = refused.assert_error(402, "CREDITS_EXHAUSTED");
    let retry_after: u64 = refused.header("retry-after").expect("Retry-After to the refill").parse().unwrap();
    assert!((1..=86_400).contains(&retry_after), "{retry_after}");
    assert_eq!(body["error"]["details"]["retryAfter"], retry_after);
    // The refusal is not held in the isolate until the refill: an added credit serves the next
    // request.
    assert_eq!(change(g, &id, "add", 1).json()["remaining"], 1);
    assert_eq!(statuses(g, &key, ONE, 2), [200, 402]);
    // A key without credits shows none.
    let (_, plain) = create(g, json!({}));
    let usage = g.admin("GET", &format!("/keys/{plain}/usage")).send().json();
    assert!(usage.get("credits").is_none(), "{usage}");
}

#[test]
fn credits_are_given_and_taken_by_patch_and_a_key_with_credits_is_exact_in_fast_mode() {
    let g = leased();
    // A key without credits is never refused for them.
    let (key, id) = create(g, json!({}));
    assert_eq!(statuses(g, &key, ONE, 3), [200; 3]);
    // Given credits by PATCH: a balance of 0 until one is set.
    let patched = g.admin("PATCH", &format!("/keys/{id}")).json(&json!({"credits": {"refill": null}})).send();
    assert_eq!(patched.status, 200, "{}", patched.body);
    assert_eq!(patched.json()["credits"], json!({"refill": null}));
    let first_refusal = (0..200).position(|_| g.request("GET", ONE).bearer(&key).send().status == 402);
    assert!(first_refusal.is_some(), "refused once the change reached the isolate");
    assert_eq!(change(g, &id, "set", 2).json()["remaining"], 2);
    assert_eq!(statuses(g, &key, ONE, 3), [200, 200, 402]);
    // Taken away: no balance is enforced.
    let cleared = g.admin("PATCH", &format!("/keys/{id}")).json(&json!({"credits": null})).send();
    assert_eq!(cleared.status, 200);
    assert!(cleared.json().get("credits").is_none());
    let first_admission = (0..200).position(|_| g.request("GET", ONE).bearer(&key).send().status == 200);
    assert!(first_admission.is_some());
    assert_eq!(statuses(g, &key, ONE, 5), [200; 5]);
    // `fast` mode would count per isolate, approximately: a key with credits is decided by its
    // limiter all the same.
    let (key, _) = create(g, json!({"limit_mode": "fast", "credits": {"remaining": 3}}));
    assert_eq!(statuses(g, &key, ONE, 6), [200, 200, 200, 402, 402, 402]);
}

#[test]
fn a_rolled_key_spends_its_familys_balance() {
    let g = per_request();
    let (old, id) = create(g, credits(3));
    assert_eq!(statuses(g, &old, ONE, 1), [200]);
    let rolled = g.admin("POST", &format!("/keys/{id}/roll")).json(&json!({"grace_seconds": 60})).send();
    assert_eq!(rolled.status, 201, "{}", rolled.body);
    let new = rolled.json()["key"].as_str().unwrap().to_string();
    assert_eq!(statuses(g, &new, ONE, 3), [200, 200, 402], "the balance of the family: 2 left");
    assert_eq!(statuses(g, &old, ONE, 1), [402]);
}

#[test]
fn credits_changes_are_validated_and_audited() {
    let g = per_request();
    let (_, id) = create(g, credits(1));
    assert_eq!(change(g, &id, "add", 4).json()["remaining"], 5);
    assert_eq!(change(g, &id, "set", 2).json()["remaining"], 2);
    let audit = g.admin("GET", &format!("/keys/{id}/audit")).send().json();
    let entries = audit["items"].as_array().unwrap();
    let actions: Vec<&str> = entries.iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["created", "credits_added", "credits_set"]);
    assert_eq!(entries[0]["changes"]["credits_remaining"]["to"], 1);
    assert_eq!(entries[1]["changes"]["amount"]["to"], 4);
    assert_eq!(entries[1]["changes"]["credits_remaining"]["to"], 5);
    assert_eq!(entries[2]["changes"]["credits_remaining"]["to"], 2);

    let rows: [(&str, Value, &str); 6] = [
        ("an unknown op", json!({"op": "multiply", "amount": 2}), "op"),
        ("no amount", json!({"op": "add"}), "amount"),
        ("a fraction", json!({"op": "add", "amount": 1.5}), "amount"),
        ("a negative set", json!({"op": "set", "amount": -1}), "amount"),
        ("too many", json!({"op": "set", "amount": 1_000_000_000_001_u64}), "amount"),
        ("an unknown field", json!({"op": "set", "amount": 1, "why": "x"}), "why"),
    ];
    for (what, body, field) in rows {
        let response = g.admin("POST", &format!("/keys/{id}/credits")).json(&body).send();
        let body = response.assert_error(400, "VALIDATION_FAILED");
        assert!(body["error"]["details"]["fields"].get(field).is_some(), "{what}: {body}");
    }
    let (_, plain) = create(g, json!({}));
    change(g, &plain, "add", 1).assert_error(409, "CONFLICT");
    change(g, "key_doesnotexist", "add", 1).assert_error(404, "NOT_FOUND");
    let bad = [
        json!({"credits": {"remaining": -1}}),
        json!({"credits": {"refill": {"amount": 0, "interval": "day", "mode": "reset"}}}),
        json!({"credits": {"refill": {"amount": 5, "interval": "week", "mode": "reset"}}}),
        json!({"credits": {"refill": {"amount": 5, "interval": "day", "mode": "keep"}}}),
        json!({"credits": {"balance": 5}}),
        json!({"credits": 5}),
    ];
    for extra in bad {
        let mut body = json!({"project": "credits", "name": "bad", "role": "read_only"});
        body["credits"] = extra["credits"].clone();
        let response = g.admin("POST", "/keys").json(&body).send();
        let refused = response.assert_error(400, "VALIDATION_FAILED");
        assert!(refused["error"]["details"]["fields"].get("credits").is_some(), "{extra}: {refused}");
    }
    let patch = g.admin("PATCH", &format!("/keys/{id}")).json(&json!({"credits": {"remaining": 5}})).send();
    patch.assert_error(400, "VALIDATION_FAILED");
}

fn keygate(args: &[&str]) -> Output {
    Command::new(common::bin("keygate"))
        .arg("keys")
        .args(args)
        .env("KEYGATE_URL", &per_request().url)
        .env("KEYGATE_ADMIN_TOKEN", ADMIN_TOKEN)
        .output()
        .expect("run keygate")
}

fn cli_ok(args: &[&str]) -> String {
    let output = keygate(args);
    assert!(output.status.success(), "{args:?}: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn the_cli_creates_adds_sets_and_shows_credits() {
    let g = per_request();
    let created: Value = serde_json::from_str(&cli_ok(&[
        "--json",
        "create",
        "--project",
        "credits",
        "--name",
        "cli",
        "--role",
        "read_only",
        "--credits",
        "1",
        "--credits-refill",
        "10/month/add",
    ]))
    .unwrap();
    let key = created["record"]["id"].as_str().unwrap().to_string();
    let plaintext = created["key"].as_str().unwrap().to_string();
    assert_eq!(created["record"]["credits"], json!({"refill": {"amount": 10, "interval": "month", "mode": "add"}}));
    assert_eq!(statuses(g, &plaintext, ONE, 2), [200, 402]);
    assert_eq!(cli_ok(&["credits", "add", &key, "3"]), "credits remaining: 3\n");
    let set: Value = serde_json::from_str(&cli_ok(&["--json", "credits", "set", &key, "2"])).unwrap();
    assert_eq!(set["remaining"], 2);
    assert_eq!(statuses(g, &plaintext, ONE, 3), [200, 200, 402]);
    let usage = cli_ok(&["usage", &key]);
    assert!(usage.contains("credits: 0 remaining, refill 10 per month (add), next "), "{usage}");
    // The API's refusal of a key without credits exits 1 with its code.
    let (_, plain) = create(g, json!({}));
    let output = keygate(&["credits", "add", &plain, "1"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("CONFLICT"));
}
