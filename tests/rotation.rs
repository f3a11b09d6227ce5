//! Roll grace that follows real use (`POST /keys/{id}/roll {"grace": {…}}`) against the real
//! worker: the old key ends once the new key has been reported in use (and, with
//! `old_unused_seconds`, the old key unused) for the given time, never while the new key is
//! unused; the audit log says why. Last-use reports every second here; every wait is a poll with
//! a bounded deadline.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::{Gateway, Options};
use keygate_core::timestamp::Timestamp;
use serde_json::{json, Value};

fn gateway() -> &'static Gateway {
    static GATEWAY: OnceLock<Gateway> = OnceLock::new();
    // Reports at most every second; LEASE_MS = 0: a changed end applies to the very next request.
    GATEWAY
        .get_or_init(|| Gateway::start(Options { vars: vec![("LAST_USED_REPORT_SECONDS", "1"), ("LEASE_MS", "0")], ..Options::default() }))
}

const LIST: &str = "/v1/public/cms/articles/items";
const DEADLINE: Duration = Duration::from_secs(40);
const POLL: Duration = Duration::from_millis(200);

/// Creates a key of `project` and rolls it with `grace`: (old key, old id, new key, roll answer).
fn create_and_roll(g: &Gateway, project: &str, grace: Value) -> (String, String, String, Value) {
    let created = g.admin("POST", "/keys").json(&json!({"project": project, "name": "site", "role": "read_only"})).send();
    assert_eq!(created.status, 201, "{}", created.body);
    let created = created.json();
    let (old, id) = (created["key"].as_str().unwrap().to_string(), created["record"]["id"].as_str().unwrap().to_string());
    let rolled = g.admin("POST", &format!("/keys/{id}/roll")).json(&json!({ "grace": grace })).send();
    assert_eq!(rolled.status, 201, "{}", rolled.body);
    let rolled = rolled.json();
    (old, id, rolled["key"].as_str().unwrap().to_string(), rolled)
}

fn status(g: &Gateway, key: &str) -> (u16, Option<String>) {
    let response = g.request("GET", LIST).bearer(key).send();
    let code = if response.status == 200 { None } else { response.json()["error"]["code"].as_str().map(String::from) };
    (response.status, code)
}

fn audit(g: &Gateway, id: &str) -> Vec<Value> {
    let response = g.admin("GET", &format!("/keys/{id}/audit")).send();
    assert_eq!(response.status, 200, "{}", response.body);
    response.json()["items"].as_array().unwrap().clone()
}

fn valid_to(g: &Gateway, id: &str) -> Timestamp {
    let record = g.admin("GET", &format!("/keys/{id}")).send().json();
    Timestamp::parse_rfc3339(record["valid_to"].as_str().expect("the old key has an end")).unwrap()
}

fn now() -> Timestamp {
    Timestamp(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64)
}

/// The `reason` of the latest audit entry of `id` that has `changes.grace`, with the action.
fn latest_grace(g: &Gateway, id: &str) -> (String, String, Value) {
    let entries = audit(g, id);
    let entry = entries.iter().rev().find(|entry| entry["changes"]["grace"].is_object()).expect("an entry with the grace");
    let grace = entry["changes"]["grace"]["to"].clone();
    (entry["action"].as_str().unwrap().to_string(), grace["reason"].as_str().unwrap().to_string(), grace)
}

#[test]
fn the_old_key_ends_once_the_new_key_has_been_in_use() {
    let g = gateway();
    let before = now();
    let (old, id, new, rolled) = create_and_roll(g, "rotation-used", json!({"after_new_used_seconds": 1, "max_seconds": 3600}));
    let bound = Timestamp::parse_rfc3339(rolled["previous"]["valid_to"].as_str().unwrap()).unwrap();
    assert!(bound.millis() >= before.millis() + 3_600_000, "at the roll the old key ends at the maximum grace ({bound})");
    assert_eq!(latest_grace(g, &id).0, "rolled");
    assert_eq!(latest_grace(g, &id).1, "max_grace", "until the new key is seen, the bound is why the old key would end");
    assert_eq!(status(g, &old), (200, None), "the old key works after the roll");

    // Use the new key (its uses are reported every second) until the old key is refused.
    let start = Instant::now();
    loop {
        assert_eq!(status(g, &new), (200, None), "the new key works");
        match status(g, &old) {
            (200, None) => {}
            refused => {
                assert_eq!(refused, (401, Some("KEY_EXPIRED".into())), "an ended old key is expired");
                break;
            }
        }
        assert!(start.elapsed() < DEADLINE, "the old key never ended although the new key was in use");
        std::thread::sleep(POLL);
    }
    let end = valid_to(g, &id);
    assert!(end < bound, "it ended before the bound ({end} < {bound})");
    let (action, reason, grace) = latest_grace(g, &id);
    assert_eq!((action.as_str(), reason.as_str()), ("roll_grace_updated", "new_key_in_use"), "the audit says why: {grace}");
    let first_used = Timestamp::parse_rfc3339(grace["new_key_first_used"].as_str().unwrap()).unwrap();
    assert!(first_used.millis() + 1_000 <= end.millis(), "the new key was seen at least 1 s before the end ({first_used}, {end})");
    assert_eq!(status(g, &new), (200, None), "the new key still works");
}

#[test]
fn the_old_key_keeps_working_while_the_new_key_is_unused() {
    let g = gateway();
    let (old, id, _new, rolled) = create_and_roll(g, "rotation-unused", json!({"after_new_used_seconds": 1, "max_seconds": 3600}));
    let bound = rolled["previous"]["valid_to"].clone();
    let rolled_at = now();
    // Use only the old key until its own use has been reported (so the registry has decided on
    // a report after the roll) and well past after_new_used_seconds: it keeps working.
    let start = Instant::now();
    loop {
        assert_eq!(status(g, &old), (200, None), "the old key works while the new key is unused");
        let page = g.admin("GET", "/keys?project=rotation-unused").send().json();
        let reported = page["items"].as_array().unwrap().iter().find(|r| r["id"] == id.as_str()).unwrap()["last_used_at"].clone();
        let reported_after_roll = reported.as_str().and_then(Timestamp::parse_rfc3339).is_some_and(|at| at > rolled_at);
        if reported_after_roll && start.elapsed() > Duration::from_secs(3) {
            break;
        }
        assert!(start.elapsed() < DEADLINE, "the old key's use was never reported");
        std::thread::sleep(POLL);
    }
    assert_eq!(status(g, &old), (200, None), "still working after after_new_used_seconds passed");
    let record = g.admin("GET", &format!("/keys/{id}")).send().json();
    assert_eq!(record["valid_to"], bound, "the end is still the bound");
    assert!(audit(g, &id).iter().all(|entry| entry["action"] != "roll_grace_updated"), "nothing moved the end");
}

#[test]
fn the_old_key_ends_only_once_it_has_also_been_unused() {
    let g = gateway();
    let (old, id, new, _) =
        create_and_roll(g, "rotation-quiet", json!({"after_new_used_seconds": 1, "old_unused_seconds": 2, "max_seconds": 3600}));
    // Both keys in use: the old key's reported uses keep pushing its end 2 s past them. Use both
    // until the end has moved at least once, then the old key still works.
    let start = Instant::now();
    while audit(g, &id).iter().all(|entry| entry["action"] != "roll_grace_updated") {
        assert_eq!(status(g, &new), (200, None));
        assert_eq!(status(g, &old), (200, None), "the old key works while it is still in use");
        assert!(start.elapsed() < DEADLINE, "the end never moved although both keys were in use");
        std::thread::sleep(POLL);
    }
    // Only the new key from now on: the old key ends 2 s after its last reported use. Watch its
    // record (a request with it would be a use).
    let start = Instant::now();
    while valid_to(g, &id) > now() {
        assert_eq!(status(g, &new), (200, None));
        assert!(start.elapsed() < DEADLINE, "the old key never ended after it fell unused");
        std::thread::sleep(POLL);
    }
    assert_eq!(status(g, &old), (401, Some("KEY_EXPIRED".into())));
    let (action, reason, grace) = latest_grace(g, &id);
    assert_eq!((action.as_str(), reason.as_str()), ("roll_grace_updated", "old_key_unused"), "{grace}");
    let last_old = Timestamp::parse_rfc3339(grace["old_key_last_used"].as_str().unwrap()).unwrap();
    assert!(last_old.millis() + 2_000 <= valid_to(g, &id).millis(), "ended at least 2 s after the old key's last reported use");
}

#[test]
fn an_adaptive_grace_is_validated() {
    let g = gateway();
    let created = g.admin("POST", "/keys").json(&json!({"project": "rotation-bad", "name": "site", "role": "read_only"})).send().json();
    let id = created["record"]["id"].as_str().unwrap();
    for body in [
        json!({"grace_seconds": 60, "grace": {"after_new_used_seconds": 1, "max_seconds": 60}}),
        json!({"grace": {"after_new_used_seconds": 61, "max_seconds": 60}}),
        json!({"grace": {"max_seconds": 60}}),
    ] {
        let error = g.admin("POST", &format!("/keys/{id}/roll")).json(&body).send().assert_error(400, "VALIDATION_FAILED");
        assert!(error["error"]["details"]["fields"]["grace"].is_string(), "{error}");
    }
}
