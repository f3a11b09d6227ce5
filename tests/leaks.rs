//! Leak reports (issue #17) against the real worker under `wrangler dev`: a local ECDSA P-256
//! key pair plays GitHub's secret scanning, and a loopback server the test starts publishes its
//! public keys (`LEAK_KEYS_URL`). Reports are signed over the raw body as GitHub signs them. A
//! second loopback server takes the `key.leaked` webhooks a verified report sends.
// Tests: a failed expectation is a failed test, with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_ASN1_SIGNING};
use serde_json::{json, Value};

use common::{base64, Gateway, Options, Resp};
use keygate_core::key::{KeyEnv, KeyFormat, KeyHash};

/// A signing key of the fake GitHub: its identifier and key pair.
struct Signer {
    identifier: String,
    pair: EcdsaKeyPair,
}

impl Signer {
    fn new(identifier: &str) -> Signer {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).unwrap();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref(), &rng).unwrap();
        Signer { identifier: identifier.to_string(), pair }
    }

    /// The public key as GitHub publishes it: an SPKI `PUBLIC KEY` PEM.
    fn pem(&self) -> String {
        // SPKI header of an uncompressed P-256 point (id-ecPublicKey, prime256v1).
        let mut spki = hex_bytes("3059301306072a8648ce3d020106082a8648ce3d030107034200");
        spki.extend_from_slice(self.pair.public_key().as_ref());
        format!("-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n", base64(&spki))
    }

    /// The base64 DER signature of `body`.
    fn sign(&self, body: &[u8]) -> String {
        base64(self.pair.sign(&SystemRandom::new(), body).unwrap().as_ref())
    }
}

fn hex_bytes(text: &str) -> Vec<u8> {
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap()).collect()
}

/// The loopback server publishing the public keys: the document it serves (changeable) and how
/// many times it was fetched.
struct KeyServer {
    url: String,
    document: Arc<Mutex<String>>,
    fetches: Arc<AtomicUsize>,
}

impl KeyServer {
    fn start(signers: &[&Signer]) -> KeyServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/meta/public_keys/secret_scanning", listener.local_addr().unwrap());
        let server = KeyServer { url, document: Arc::new(Mutex::new(String::new())), fetches: Arc::new(AtomicUsize::new(0)) };
        server.publish(signers);
        let (document, fetches) = (server.document.clone(), server.fetches.clone());
        std::thread::spawn(move || {
            for mut connection in listener.incoming().flatten() {
                let mut request = Vec::new();
                let mut buffer = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match connection.read(&mut buffer) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => request.extend_from_slice(&buffer[..n]),
                    }
                }
                fetches.fetch_add(1, Ordering::SeqCst);
                let body = document.lock().unwrap().clone();
                let head = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                    body.len()
                );
                let _ = connection.write_all(head.as_bytes()).and_then(|_| connection.write_all(body.as_bytes()));
            }
        });
        server
    }

    fn publish(&self, signers: &[&Signer]) {
        let keys: Vec<Value> =
            signers.iter().map(|s| json!({"key_identifier": s.identifier, "key": s.pem(), "is_current": true})).collect();
        *self.document.lock().unwrap() = json!({ "public_keys": keys }).to_string();
    }
}

/// A loopback webhook endpoint (`WEBHOOK_URLS`): keeps the body of every POST and answers 200.
struct HookSink {
    url: String,
    bodies: Arc<Mutex<Vec<String>>>,
}

impl HookSink {
    fn start() -> HookSink {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let sink = HookSink { url: format!("http://{}/hooks", listener.local_addr().unwrap()), bodies: Arc::default() };
        let bodies = sink.bodies.clone();
        std::thread::spawn(move || {
            for mut connection in listener.incoming().flatten() {
                let _ = connection.set_read_timeout(Some(std::time::Duration::from_secs(10)));
                let mut data = Vec::new();
                let mut buffer = [0u8; 4096];
                let complete = loop {
                    if let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4) {
                        let head = String::from_utf8_lossy(&data[..end]).to_ascii_lowercase();
                        let length = head
                            .lines()
                            .find_map(|line| line.strip_prefix("content-length:"))
                            .and_then(|n| n.trim().parse::<usize>().ok())
                            .unwrap_or(0);
                        if data.len() >= end + length {
                            break Some(String::from_utf8_lossy(&data[end..end + length]).to_string());
                        }
                    }
                    match connection.read(&mut buffer) {
                        Ok(0) | Err(_) => break None,
                        Ok(n) => data.extend_from_slice(&buffer[..n]),
                    }
                };
                if let Some(body) = complete {
                    bodies.lock().unwrap().push(body);
                }
                let _ = connection.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
            }
        });
        sink
    }

    /// Waits (at most 60 s) for an event of type `kind` about key `id`; returns its JSON.
    fn wait_for(&self, kind: &str, id: &str) -> Value {
        let start = std::time::Instant::now();
        loop {
            let found = self
                .bodies
                .lock()
                .unwrap()
                .iter()
                .filter_map(|b| serde_json::from_str::<Value>(b).ok())
                .find(|event| event["type"] == kind && event["data"]["key_id"] == id);
            if let Some(event) = found {
                return event;
            }
            assert!(start.elapsed() < std::time::Duration::from_secs(60), "no {kind} event for {id}: {:?}", self.bodies.lock().unwrap());
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }
}

struct Fixture {
    gateway: Gateway,
    github: Signer,
    keys: KeyServer,
    hooks: HookSink,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let github = Signer::new("github-key-1");
        let keys = KeyServer::start(&[&github]);
        let url: &'static str = Box::leak(keys.url.clone().into_boxed_str());
        // A verified report is also a `key.leaked` webhook (README "Webhooks").
        let hooks = HookSink::start();
        let hook_urls: &'static str = Box::leak(json!([hooks.url]).to_string().into_boxed_str());
        let gateway = Gateway::start(Options {
            vars: vec![
                ("LEAK_REPORTS", "on"),
                ("LEAK_KEYS_URL", url),
                ("WEBHOOK_URLS", hook_urls),
                ("WEBHOOK_SECRET", "whsec_a2V5Z2F0ZS1sZWFrLXdlYmhvb2stdGVzdC1rZXk="),
                ("WEBHOOK_EVENTS", r#"["key.leaked"]"#),
            ],
            ..Options::default()
        });
        Fixture { gateway, github, keys, hooks }
    })
}

const LIST: &str = "/v1/public/cms/articles/items";
const PATH: &str = "/_keygate/v1/leaks/github";

/// Creates an acme key: (plaintext, id).
fn create(g: &Gateway, name: &str) -> (String, String) {
    let response = g.admin("POST", "/keys").json(&json!({"project": "acme", "name": name, "role": "read_only"})).send();
    assert_eq!(response.status, 201, "{}", response.body);
    let created = response.json();
    (created["key"].as_str().unwrap().to_string(), created["record"]["id"].as_str().unwrap().to_string())
}

/// A report body as GitHub sends it: one entry per token, each found at `url`.
fn report(tokens: &[&str], url: &str) -> String {
    let items: Vec<Value> =
        tokens.iter().map(|t| json!({"token": t, "type": "keygate_api_key", "url": url, "source": "content"})).collect();
    Value::Array(items).to_string()
}

fn send(g: &Gateway, signer: &Signer, identifier: &str, body: &str) -> Resp {
    g.request("POST", PATH)
        .header("Content-Type", "application/json")
        .header("Github-Public-Key-Identifier", identifier)
        .header("Github-Public-Key-Signature", &signer.sign(body.as_bytes()))
        .body(body)
        .send()
}

fn audit(g: &Gateway, id: &str) -> Vec<Value> {
    let response = g.admin("GET", &format!("/keys/{id}/audit")).send();
    assert_eq!(response.status, 200, "{}", response.body);
    response.json()["items"].as_array().unwrap().clone()
}

fn leak_entries(g: &Gateway, id: &str) -> Vec<Value> {
    audit(g, id).into_iter().filter(|entry| entry["action"] == "leak_reported").collect()
}

fn refusal_of(g: &Gateway, key: &str) -> Option<String> {
    let response = g.request("GET", LIST).bearer(key).send();
    (response.status != 200).then(|| response.json()["error"]["code"].as_str().unwrap_or_default().to_string())
}

#[test]
fn a_report_of_a_live_key_disables_it_and_audits_the_source_never_the_token() {
    let f = fixture();
    let g = &f.gateway;
    let (key, id) = create(g, "leaked");
    assert_eq!(refusal_of(g, &key), None);
    let url = "https://github.com/octo/app/blob/abc123/.env";
    let body = report(&[&key], url);
    let response = send(g, &f.github, &f.github.identifier, &body);
    assert_eq!(response.status, 200, "{}", response.body);
    assert_eq!(
        response.json(),
        json!([{"token_hash": KeyHash::of(&key).to_hex(), "token_type": "keygate_api_key", "label": "true_positive"}])
    );
    assert_eq!(refusal_of(g, &key).as_deref(), Some("KEY_DISABLED"), "the gateway refuses the reported key");
    let entries = leak_entries(g, &id);
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!((entries[0]["reporter"].as_str(), entries[0]["source"].as_str()), (Some("github"), Some(url)));
    assert_eq!(entries[0]["changes"]["status"], json!({"from": "active", "to": "inactive"}));
    let record = g.admin("GET", &format!("/keys/{id}")).send().json();
    assert_eq!((record["status"].as_str(), record["revision"].as_u64()), (Some("inactive"), Some(2)));

    // GitHub retries a report: the same one again is answered the same and changes nothing more.
    let again = send(g, &f.github, &f.github.identifier, &body);
    assert_eq!((again.status, again.json()), (200, response.json()));
    assert_eq!(leak_entries(g, &id).len(), 1, "a replay adds no audit entry");
    assert_eq!(g.admin("GET", &format!("/keys/{id}")).send().json()["revision"], 2, "a replay changes no revision");

    let log = g.log_containing("leak_reported");
    assert!(!log.contains(&key) && !audit(g, &id).iter().any(|e| e.to_string().contains(&key)), "the token is never logged or stored");

    // The owner hears of it: one signed `key.leaked` event naming the source, never the token.
    let event = f.hooks.wait_for("key.leaked", &id);
    assert_eq!((event["data"]["source"].as_str(), event["data"]["reporter"].as_str()), (Some(url), Some("github")), "{event}");
    assert_eq!(event["data"]["changes"]["status"], json!({"from": "active", "to": "inactive"}), "{event}");
    assert!(!event.to_string().contains(&key), "the token is never sent: {event}");
}

#[test]
fn a_report_that_does_not_verify_is_refused_and_changes_nothing() {
    let f = fixture();
    let g = &f.gateway;
    let (key, id) = create(g, "not leaked");
    let body = report(&[&key], "https://github.com/octo/app/blob/abc123/config.js");
    let impostor = Signer::new("impostor");
    let other_body = report(&[&key], "https://github.com/octo/app/blob/abc123/other.js");
    let with = |identifier: &str, signature: &str| {
        g.request("POST", PATH)
            .header("Content-Type", "application/json")
            .header("Github-Public-Key-Identifier", identifier)
            .header("Github-Public-Key-Signature", signature)
            .body(&body)
            .send()
    };
    let real = &f.github.identifier;
    // (what, identifier, signature)
    let rows = [
        ("signed by another key under GitHub's identifier", real.clone(), impostor.sign(body.as_bytes())),
        ("GitHub's signature of another body", real.clone(), f.github.sign(other_body.as_bytes())),
        ("not base64", real.clone(), "!!not-base64!!".to_string()),
        ("not DER", real.clone(), base64(&[0x30, 0x01, 0x00])),
        ("empty signature", real.clone(), String::new()),
    ];
    for (what, identifier, signature) in rows {
        let response = with(&identifier, &signature);
        response.assert_error(401, "REPORT_SIGNATURE_INVALID");
        assert!(!response.body.contains(&key), "{what}: the token is never echoed");
    }
    let unsigned = g.request("POST", PATH).header("Content-Type", "application/json").body(&body).send();
    unsigned.assert_error(401, "REPORT_SIGNATURE_INVALID");
    assert_eq!(refusal_of(g, &key), None, "the key still works");
    assert!(leak_entries(g, &id).is_empty());
    // The admin token is no way around the signature.
    g.admin("POST", "/leaks/github").json(&serde_json::from_str(&body).unwrap()).send().assert_error(401, "REPORT_SIGNATURE_INVALID");
}

#[test]
fn an_oversized_report_is_refused_before_anything_else() {
    let f = fixture();
    let g = &f.gateway;
    // Unsigned: the size is checked before the signature (a 401 would mean it was read and judged).
    let body = format!("[{}]", " ".repeat(1 << 20));
    g.request("POST", PATH).header("Content-Type", "application/json").body(&body).send().assert_error(413, "PAYLOAD_TOO_LARGE");
    send(g, &f.github, &f.github.identifier, &body).assert_error(413, "PAYLOAD_TOO_LARGE");
    let malformed = "{\"token\":\"not a list\"}";
    send(g, &f.github, &f.github.identifier, malformed).assert_error(400, "BAD_REQUEST");
}

#[test]
fn a_batch_of_real_revoked_unknown_and_foreign_tokens_gets_the_right_labels() {
    let f = fixture();
    let g = &f.gateway;
    let (live, live_id) = create(g, "batch live");
    let (revoked, revoked_id) = create(g, "batch revoked");
    assert_eq!(g.admin("DELETE", &format!("/keys/{revoked_id}")).send().status, 200);
    let mut typo = live.clone();
    typo.replace_range(12..13, if &live[12..13] == "a" { "b" } else { "a" });
    let format = KeyFormat::default();
    let unknown: Vec<String> = (0..1_000).map(|_| format.generate(KeyEnv::Live).unwrap().expose().to_string()).collect();
    let mut tokens: Vec<&str> = vec![&live, &revoked, &g.keys.unknown, "ghp_16C7e42F292c6912E7710c838347Ae178B4a", &typo];
    tokens.extend(unknown.iter().map(String::as_str));
    let body = report(&tokens, "https://gist.github.com/octo/123");
    let response = send(g, &f.github, &f.github.identifier, &body);
    assert_eq!(response.status, 200, "{}", response.body);
    let feedback = response.json();
    let labels: Vec<&str> = feedback.as_array().unwrap().iter().map(|item| item["label"].as_str().unwrap()).collect();
    assert_eq!(labels.len(), tokens.len());
    assert_eq!(labels[..5], ["true_positive", "true_positive", "false_positive", "false_positive", "false_positive"]);
    assert!(labels[5..].iter().all(|label| *label == "false_positive"));
    for (item, token) in feedback.as_array().unwrap().iter().zip(&tokens) {
        assert_eq!(item["token_hash"], KeyHash::of(token).to_hex(), "feedback in the report's order");
    }
    assert_eq!(refusal_of(g, &live).as_deref(), Some("KEY_DISABLED"));
    assert_eq!(refusal_of(g, &revoked).as_deref(), Some("KEY_REVOKED"));
    assert!(leak_entries(g, &revoked_id).is_empty(), "a revoked key is not touched");
    assert_eq!(leak_entries(g, &live_id).len(), 1);
}

#[test]
fn an_unknown_identifier_fetches_the_keys_again_but_forged_ones_cannot_make_it_fetch_each_time() {
    let f = fixture();
    let g = &f.gateway;
    // The first report of the isolate fetches the keys (or one already has).
    let (key, _) = create(g, "rotation");
    assert_eq!(send(g, &f.github, &f.github.identifier, &report(&[], "https://x")).status, 200);
    // GitHub rotates: a new key is published, and reports come signed by it.
    let rotated = Signer::new("github-key-2");
    f.keys.publish(&[&f.github, &rotated]);
    let response = send(g, &rotated, &rotated.identifier, &report(&[&key], "https://github.com/octo/app/blob/def456/a.py"));
    assert_eq!(response.status, 200, "{}", response.body);
    assert_eq!(refusal_of(g, &key).as_deref(), Some("KEY_DISABLED"));
    // Forged identifiers: each would need a fetch; the isolate makes at most 3 a minute.
    let before = f.keys.fetches.load(Ordering::SeqCst);
    for n in 0..10 {
        let forger = Signer::new(&format!("forged-{n}"));
        send(g, &forger, &forger.identifier, "[]").assert_error(401, "REPORT_SIGNATURE_INVALID");
    }
    let during = f.keys.fetches.load(Ordering::SeqCst) - before;
    assert!(during <= keygate_core::leak::KEYS_FETCHES_PER_WINDOW, "{during} fetches for 10 forged identifiers");
}
