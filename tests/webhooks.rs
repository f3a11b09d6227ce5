//! Signed lifecycle webhooks (issue #17) against the real worker under `wrangler dev`: a loopback
//! receiver the test starts plays the owner's endpoints. `/flaky` answers 500 to the first two
//! attempts of every event and 200 to the third; `/down` always answers 500. Signatures are
//! checked with an implementation of the Standard Webhooks scheme written here (ring's HMAC),
//! not the worker's; the runtime's signer is also checked against the specification's published
//! vector under Node. Every wait polls for a condition under a deadline.
// Tests: a failed expectation is a failed test, with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use common::{base64, Gateway, Options};

/// The signing key (test-only bytes) and its `whsec_` form.
const KEY: &[u8; 32] = b"keygate-webhook-test-key-32bytes";
const LIST: &str = "/v1/public/cms/articles/items";
/// Attempts per event: `WEBHOOK_RETRY_SECONDS = [1,1]` below.
const ATTEMPTS: usize = 3;

/// One request the receiver got.
#[derive(Debug, Clone)]
struct Delivery {
    path: String,
    headers: HashMap<String, String>,
    body: String,
    /// What the receiver answered.
    status: u16,
}

impl Delivery {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap()
    }

    fn id(&self) -> &str {
        &self.headers["webhook-id"]
    }
}

struct Receiver {
    base: String,
    deliveries: Arc<Mutex<Vec<Delivery>>>,
}

impl Receiver {
    fn start() -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let deliveries: Arc<Mutex<Vec<Delivery>>> = Arc::default();
        let log = deliveries.clone();
        std::thread::spawn(move || {
            for mut connection in listener.incoming().flatten() {
                let Some((path, headers, body)) = read_request(&mut connection) else { continue };
                let mut log = log.lock().unwrap();
                let earlier = log.iter().filter(|d| d.path == path && headers.get("webhook-id") == d.headers.get("webhook-id")).count();
                let status = if path == "/flaky" && earlier >= ATTEMPTS - 1 { 200 } else { 500 };
                log.push(Delivery { path, headers, body, status });
                drop(log);
                let head = format!("HTTP/1.1 {status} X\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok");
                let _ = connection.write_all(head.as_bytes());
            }
        });
        Receiver { base, deliveries }
    }

    fn all(&self) -> Vec<Delivery> {
        self.deliveries.lock().unwrap().clone()
    }

    /// Waits (at most 60 s) until `done` holds for the deliveries so far; returns them.
    fn wait_for(&self, what: &str, done: impl Fn(&[Delivery]) -> bool) -> Vec<Delivery> {
        let start = Instant::now();
        loop {
            let all = self.all();
            if done(&all) {
                return all;
            }
            assert!(start.elapsed() < Duration::from_secs(60), "timed out waiting for {what}; got:\n{all:#?}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// Reads one HTTP/1.1 request: (path, lowercase headers, body).
fn read_request(connection: &mut std::net::TcpStream) -> Option<(String, HashMap<String, String>, String)> {
    connection.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let mut data = Vec::new();
    let mut buffer = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = connection.read(&mut buffer).ok().filter(|n| *n > 0)?;
        data.extend_from_slice(&buffer[..n]);
    };
    let head = String::from_utf8_lossy(&data[..head_end]).to_string();
    let mut lines = head.split("\r\n");
    let path = lines.next()?.split(' ').nth(1)?.to_string();
    let headers: HashMap<String, String> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_string()))
        .collect();
    let length: usize = headers.get("content-length").and_then(|n| n.parse().ok()).unwrap_or(0);
    while data.len() < head_end + length {
        let n = connection.read(&mut buffer).ok().filter(|n| *n > 0)?;
        data.extend_from_slice(&buffer[..n]);
    }
    Some((path, headers, String::from_utf8_lossy(&data[head_end..head_end + length]).to_string()))
}

/// The Standard Webhooks check, done independently of keygate: HMAC-SHA256 (ring) over
/// `{id}.{timestamp}.{body}` with the decoded secret, compared with each `v1,` signature.
fn verifies(delivery: &Delivery) -> bool {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, KEY);
    let signed = format!("{}.{}.{}", delivery.headers["webhook-id"], delivery.headers["webhook-timestamp"], delivery.body);
    let expected = format!("v1,{}", base64(ring::hmac::sign(&key, signed.as_bytes()).as_ref()));
    delivery.headers.get("webhook-signature").is_some_and(|header| header.split(' ').any(|s| s == expected))
}

fn now_seconds() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64
}

struct Fixture {
    gateway: Gateway,
    receiver: Receiver,
}

fn leak(text: String) -> &'static str {
    Box::leak(text.into_boxed_str())
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let receiver = Receiver::start();
        let urls = leak(json!([format!("{}/flaky", receiver.base), format!("{}/down", receiver.base)]).to_string());
        let secret = leak(format!("whsec_{}", base64(KEY)));
        let gateway = Gateway::start(Options {
            vars: vec![
                ("WEBHOOK_URLS", urls),
                ("WEBHOOK_SECRET", secret),
                ("WEBHOOK_RETRY_SECONDS", "[1,1]"),
                ("WEBHOOK_EXPIRY_LEAD_SECONDS", "30"),
                ("LEASE_MS", "0"),
            ],
            ..Options::default()
        });
        Fixture { gateway, receiver }
    })
}

/// Creates an acme key from `extra` fields: (plaintext, id).
fn create(g: &Gateway, extra: Value) -> (String, String) {
    let mut body = json!({"project": "acme", "name": "hooked", "role": "read_only"});
    body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    let response = g.admin("POST", "/keys").json(&body).send();
    assert_eq!(response.status, 201, "{}", response.body);
    let created = response.json();
    (created["key"].as_str().unwrap().to_string(), created["record"]["id"].as_str().unwrap().to_string())
}

/// The deliveries about key `id` of type `kind` to `path`.
fn about<'a>(all: &'a [Delivery], id: &str, kind: &str, path: &str) -> Vec<&'a Delivery> {
    all.iter().filter(|d| d.path == path && d.json()["data"]["key_id"] == id && d.json()["type"] == kind).collect()
}

fn delivered(all: &[Delivery], id: &str, kind: &str) -> bool {
    about(all, id, kind, "/flaky").iter().any(|d| d.status == 200)
}

fn webhook_log(g: &Gateway, id: &str) -> Vec<Value> {
    let response = g.admin("GET", &format!("/keys/{id}/webhooks")).send();
    assert_eq!(response.status, 200, "{}", response.body);
    response.json()["items"].as_array().unwrap().clone()
}

#[test]
fn lifecycle_events_are_signed_retried_under_one_id_and_logged() {
    let f = fixture();
    let g = &f.gateway;
    let (key, id) = create(g, json!({}));
    let patch = |body: Value| assert_eq!(g.admin("PATCH", &format!("/keys/{id}")).json(&body).send().status, 200);
    patch(json!({"name": "renamed"}));
    patch(json!({"status": "inactive"}));
    patch(json!({"status": "active"}));
    assert_eq!(g.admin("DELETE", &format!("/keys/{id}")).send().status, 200);
    let kinds = ["key.created", "key.updated", "key.disabled", "key.enabled", "key.revoked"];
    let all = f.receiver.wait_for("every lifecycle event delivered", |all| kinds.iter().all(|k| delivered(all, &id, k)));
    let started = now_seconds();
    for kind in kinds {
        let attempts = about(&all, &id, kind, "/flaky");
        assert_eq!(attempts.len(), ATTEMPTS, "{kind}: two failures, then delivered: {attempts:#?}");
        assert_eq!(attempts.iter().map(|d| d.status).collect::<Vec<_>>(), [500, 500, 200], "{kind}");
        let first = attempts[0];
        assert!(first.id().starts_with("evt_"), "{kind}: {}", first.id());
        assert!(attempts.iter().all(|d| d.id() == first.id()), "{kind}: one webhook-id across retries");
        for attempt in &attempts {
            assert!(verifies(attempt), "{kind}: the signature verifies: {attempt:#?}");
            let sent: i64 = attempt.headers["webhook-timestamp"].parse().unwrap();
            assert!((sent - started).abs() < 300, "{kind}: webhook-timestamp is unix seconds of now: {sent}");
            assert_eq!(attempt.headers.get("content-type").map(String::as_str), Some("application/json"));
            assert!(!attempt.body.contains(&key), "{kind}: never the key");
        }
        let body = first.json();
        assert_eq!((body["data"]["project"].as_str(), body["data"]["env"].as_str()), (Some("acme"), Some("live")), "{kind}");
        assert!(body["data"]["hint"].is_string() && body["data"].get("hash").is_none(), "{kind}: the hint, never the hash");
    }
    let updated = about(&all, &id, "key.updated", "/flaky")[0].json();
    assert_eq!(updated["data"]["changes"]["name"], json!({"from": "hooked", "to": "renamed"}));
    assert_eq!(about(&all, &id, "key.revoked", "/flaky")[0].json()["data"]["status"], "revoked");
    let ids: Vec<&str> = kinds.iter().map(|k| about(&all, &id, k, "/flaky")[0].id()).collect();
    assert!(ids.iter().enumerate().all(|(i, a)| !ids[..i].contains(a)), "each event has its own id: {ids:?}");
    // A forged signature does not verify with the check above (so the check can fail).
    let mut forged = about(&all, &id, "key.created", "/flaky")[0].clone();
    forged.body = forged.body.replace("hooked", "hijacked");
    assert!(!verifies(&forged));

    // The always-failing endpoint ends `failed` after the schedule; the log shows every attempt.
    let start = Instant::now();
    let log = loop {
        let log = webhook_log(g, &id);
        let down = log.iter().filter(|e| e["endpoint"].as_str().is_some_and(|u| u.ends_with("/down"))).collect::<Vec<_>>();
        if down.len() == kinds.len() && down.iter().all(|e| e["state"] == "failed") {
            break log;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "the /down endpoint's events never failed: {log:#?}");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(log.len(), 2 * kinds.len(), "one entry per event and endpoint: {log:#?}");
    for entry in &log {
        let kind = entry["type"].as_str().unwrap();
        assert!(kinds.contains(&kind), "{entry}");
        let statuses: Vec<u64> = entry["attempts"].as_array().unwrap().iter().map(|a| a["status"].as_u64().unwrap()).collect();
        assert!(entry["attempts"].as_array().unwrap().iter().all(|a| a["at"].as_str().is_some_and(|at| at.ends_with('Z'))));
        assert_eq!(entry["next_attempt_at"], Value::Null, "{entry}");
        if entry["endpoint"].as_str().unwrap().ends_with("/flaky") {
            assert_eq!((entry["state"].as_str(), statuses), (Some("delivered"), vec![500, 500, 200]), "{entry}");
            let received = about(&all, &id, kind, "/flaky")[0].id().to_string();
            assert_eq!(entry["id"], received, "the log's id is the webhook-id");
        } else {
            assert_eq!((entry["state"].as_str(), statuses), (Some("failed"), vec![500, 500, 500]), "{entry}");
        }
    }
    assert!(!webhook_log(g, &id).iter().any(|e| e.to_string().contains(&key)));

    // The CLI shows the same log.
    let cli = std::process::Command::new(common::bin("keygate"))
        .args(["keys", "webhooks", &id])
        .env("KEYGATE_URL", &g.url)
        .env("KEYGATE_ADMIN_TOKEN", common::ADMIN_TOKEN)
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&cli.stdout);
    assert_eq!(cli.status.code(), Some(0), "{out}{}", String::from_utf8_lossy(&cli.stderr));
    assert_eq!(out.lines().count(), 1 + 2 * kinds.len(), "a header and one row per event and endpoint:\n{out}");
    assert!(out.lines().any(|l| l.contains("key.revoked") && l.contains("failed") && l.contains("/down")), "{out}");
    assert!(out.lines().any(|l| l.contains("key.revoked") && l.contains("delivered") && l.contains(" 200")), "{out}");
    g.admin("GET", "/keys/key_doesnotexist1/webhooks").send().assert_error(404, "NOT_FOUND");
    let unauthenticated = common::Req::to(&g.url, "GET", &format!("/_keygate/v1/keys/{id}/webhooks")).send();
    assert_eq!(unauthenticated.status, 401, "the log is admin-only");
}

#[test]
fn a_roll_sends_rolled_for_the_old_key_and_created_for_the_new() {
    let f = fixture();
    let g = &f.gateway;
    let (_, id) = create(g, json!({"name": "to roll"}));
    let rolled = g.admin("POST", &format!("/keys/{id}/roll")).json(&json!({"grace_seconds": 3600})).send();
    assert_eq!(rolled.status, 201, "{}", rolled.body);
    let new_id = rolled.json()["record"]["id"].as_str().unwrap().to_string();
    let all = f.receiver.wait_for("key.rolled and the new key's key.created", |all| {
        delivered(all, &id, "key.rolled") && delivered(all, &new_id, "key.created")
    });
    let event = about(&all, &id, "key.rolled", "/flaky")[0].json();
    assert_eq!(event["data"]["changes"]["replaced_by"]["to"], new_id.as_str());
    assert!(about(&all, &id, "key.rolled", "/flaky").iter().all(|d| verifies(d)));
}

#[test]
fn an_expiry_warning_is_sent_the_lead_time_before_valid_to() {
    let f = fixture();
    let g = &f.gateway;
    // Lead time 30 s: due about 4 s from now, by the registry's alarm.
    let valid_to = now_seconds() + 34;
    let timestamp = |s: i64| {
        let days = s.div_euclid(86_400);
        let (z, secs) = (days + 719_468, s.rem_euclid(86_400));
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let (d, m) = (doy - (153 * mp + 2) / 5 + 1, if mp < 10 { mp + 3 } else { mp - 9 });
        let y = yoe + era * 400 + i64::from(m <= 2);
        format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", secs / 3600, secs / 60 % 60, secs % 60)
    };
    let (_, id) = create(g, json!({"valid_to": timestamp(valid_to)}));
    let (_, later_id) = create(g, json!({"valid_to": timestamp(valid_to + 3600)}));
    let all = f.receiver.wait_for("key.expiring", |all| !about(all, &id, "key.expiring", "/flaky").is_empty());
    let warning = about(&all, &id, "key.expiring", "/flaky")[0];
    assert!(verifies(warning));
    let sent: i64 = warning.headers["webhook-timestamp"].parse().unwrap();
    assert!(sent >= valid_to - 30, "not before the lead time: sent {sent}, valid_to {valid_to}");
    let body = warning.json();
    assert_eq!(body["data"]["expires_in_seconds"], 30);
    assert!(body["data"]["valid_to"].as_str().unwrap().starts_with(&timestamp(valid_to)[..19]));
    assert!(about(&all, &later_id, "key.expiring", "/flaky").is_empty(), "a key expiring in an hour is not warned yet");
    let log = webhook_log(g, &later_id);
    let pending: Vec<&Value> = log.iter().filter(|e| e["type"] == "key.expiring").collect();
    assert_eq!(pending.len(), 2, "its warning waits in the outbox for each endpoint: {log:#?}");
    assert!(pending.iter().all(|e| e["state"] == "pending" && e["attempts"] == json!([]) && e["next_attempt_at"].is_string()));
    let due_before = pending[0]["next_attempt_at"].clone();

    // Moving valid_to replaces the pending warning; revoking drops it.
    let moved = g.admin("PATCH", &format!("/keys/{later_id}")).json(&json!({"valid_to": timestamp(valid_to + 7200)})).send();
    assert_eq!(moved.status, 200, "{}", moved.body);
    let log = webhook_log(g, &later_id);
    let pending: Vec<&Value> = log.iter().filter(|e| e["type"] == "key.expiring").collect();
    assert_eq!(pending.len(), 2, "{log:#?}");
    assert!(pending.iter().all(|e| e["next_attempt_at"] != due_before), "due an hour later now: {log:#?}");
    assert_eq!(g.admin("DELETE", &format!("/keys/{later_id}")).send().status, 200);
    assert!(webhook_log(g, &later_id).iter().all(|e| e["type"] != "key.expiring"), "a revoked key is not warned");
}

#[test]
fn quota_warnings_are_sent_at_80_and_100_percent_once_each() {
    let f = fixture();
    let g = &f.gateway;
    let (key, id) = create(g, json!({"limits": [{"name": "daily", "limit": 5, "window_seconds": 86400}]}));
    for i in 1..=6 {
        let status = g.request("GET", LIST).bearer(&key).send().status;
        assert_eq!(status, if i <= 5 { 200 } else { 429 }, "request {i}");
    }
    let all = f.receiver.wait_for("key.quota at 80% and 100%", |all| {
        let delivered: Vec<u64> = about(all, &id, "key.quota", "/flaky")
            .iter()
            .filter(|d| d.status == 200)
            .map(|d| d.json()["data"]["quota"]["threshold_percent"].as_u64().unwrap())
            .collect();
        delivered.contains(&80) && delivered.contains(&100)
    });
    let events = about(&all, &id, "key.quota", "/flaky");
    let mut ids: Vec<&str> = events.iter().map(|d| d.id()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 2, "one event per threshold: {events:#?}");
    let at_80 = events.iter().find(|d| d.json()["data"]["quota"]["threshold_percent"] == 80).unwrap().json();
    assert_eq!(at_80["data"]["quota"]["limit"], "daily");
    assert_eq!((at_80["data"]["quota"]["allowed"].as_u64(), at_80["data"]["quota"]["used"].as_u64()), (Some(5), Some(4)));
    assert!(events.iter().all(|d| verifies(d)));
    let logged = webhook_log(g, &id).iter().filter(|e| e["type"] == "key.quota").count();
    assert_eq!(logged, 4, "two thresholds, two endpoints");
}

#[test]
fn nothing_is_stored_or_sent_without_webhook_urls() {
    let f = fixture();
    static PLAIN: OnceLock<Gateway> = OnceLock::new();
    let g = PLAIN.get_or_init(|| Gateway::start(Options { vars: vec![("LEASE_MS", "0")], ..Options::default() }));
    let (key, id) = create(g, json!({"limits": [{"name": "daily", "limit": 1, "window_seconds": 86400}]}));
    assert_eq!(g.request("GET", LIST).bearer(&key).send().status, 200);
    assert_eq!(g.admin("DELETE", &format!("/keys/{id}")).send().status, 200);
    assert_eq!(webhook_log(g, &id), Vec::<Value>::new(), "no outbox entry, so nothing can be sent");
    assert!(!f.receiver.all().iter().any(|d| d.body.contains(&id)), "the receiver never heard of the key");
}

/// The runtime's signer (`runtime.js` `webhookSignature`, the only one the worker uses) gives the
/// Standard Webhooks specification's published vector, under Node 22 from package-lock.json
/// (Web Crypto as in workerd). The module is loaded from its text, as the worker bundles it.
#[test]
fn the_runtime_signer_matches_the_standard_webhooks_test_vector() {
    let root = common::repo_root();
    let script = r#"
        const fs = await import("node:fs");
        const source = fs.readFileSync(process.argv[1], "utf8");
        const runtime = await import("data:text/javascript," + encodeURIComponent(source));
        const secret = Uint8Array.from(atob("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"), (c) => c.charCodeAt(0));
        const key = await runtime.webhookKey(secret);
        console.log(await runtime.webhookSignature(key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, '{"test": 2432232314}'));
    "#;
    let output = std::process::Command::new(root.join("node_modules/.bin/node"))
        .args(["--input-type=module", "-e", script])
        .arg(root.join("crates/worker/js/runtime.js"))
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(String::from_utf8_lossy(&output.stdout).trim(), "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
}
