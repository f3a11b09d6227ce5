//! Sustained concurrent load across many isolate-cache refreshes (`CACHE_TTL_SECONDS=1`), with
//! exact-mode, fast-mode, limited, unlimited and unknown keys: every answer is the expected
//! status, and the worker log never shows the runtime cancelling a request because one
//! request's I/O (a KV read's promise, a fetch, a stream) was awaited or resolved by another.
//!
//! Bounded in count and time: the load stops once the isolate has re-read records from KV a
//! given number of times (so the run spans many refreshes and concurrent misses), or after a
//! fixed number of requests, whichever comes first. Loopback only.

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use common::{Gateway, Options};

const TEST_MODE: (&str, &str) = ("KEYGATE_TEST_MODE", "yes-this-is-a-test-deployment");
const LIST: &str = "/v1/public/cms/articles/items";
/// Concurrent clients.
const CLIENTS: usize = 24;
/// KV reads during the load that show it spanned many refreshes and misses (5 keys, 1 s TTLs).
const KV_READS_WANTED: u64 = 40;
/// Upper bound on requests sent, whatever happens.
const MAX_REQUESTS: u64 = 40_000;
/// Upper bound on the load's duration, whatever happens (not an assertion).
const MAX_DURATION: Duration = Duration::from_secs(120);

/// What the runtime logs when a request touches another request's I/O, or is cancelled for it.
const CROSS_REQUEST: [&str; 3] = [
    "Cannot perform I/O on behalf of a different request",
    "A promise was resolved or rejected from a different request context",
    "detected that your Worker's code had hung",
];

fn kv_reads(g: &Gateway) -> u64 {
    let body: Value = g.request("GET", "/__keygate/counters").send().json();
    body["kv_reads"].as_u64().expect("kv_reads counter")
}

fn create(g: &Gateway, name: &str, mode: &str, limits: Value) -> String {
    let body = json!({"project": "load", "name": name, "role": "read_only", "limit_mode": mode, "limits": limits});
    let response = g.admin("POST", "/keys").json(&body).send();
    assert_eq!(response.status, 201, "{}", response.body);
    response.json()["key"].as_str().expect("key").to_string()
}

#[test]
fn sustained_load_across_cache_refreshes_answers_every_request_as_expected() {
    let g = Gateway::start(Options {
        vars: vec![("CACHE_TTL_SECONDS", "1"), ("NEGATIVE_CACHE_TTL_SECONDS", "1"), TEST_MODE],
        ..Options::default()
    });
    let far_above = json!([{"name": "minute", "limit": 1_000_000, "window_seconds": 60}, {"name": "daily", "limit": 100_000_000, "window_seconds": 86_400}]);
    let keys: Vec<(&str, String, u16)> = vec![
        ("exact, limited", create(&g, "exact limited", "exact", far_above.clone()), 200),
        ("fast, limited", create(&g, "fast limited", "fast", far_above), 200),
        ("exact, no limits", create(&g, "exact plain", "exact", json!([])), 200),
        ("fast, no limits", create(&g, "fast plain", "fast", json!([])), 200),
        ("unknown", g.keys.unknown.clone(), 401),
    ];
    for (what, key, status) in &keys {
        let first = g.request("GET", LIST).bearer(key).send();
        assert_eq!(first.status, *status, "{what} before the load: {}", first.body);
    }

    let reads_before = kv_reads(&g);
    let stop = AtomicBool::new(false);
    let sent = AtomicU64::new(0);
    let unexpected: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let started = Instant::now();
    std::thread::scope(|scope| {
        for client in 0..CLIENTS {
            let (g, keys, stop, sent, unexpected) = (&g, &keys, &stop, &sent, &unexpected);
            scope.spawn(move || {
                let mut turn = client;
                while !stop.load(Ordering::Relaxed) && sent.fetch_add(1, Ordering::Relaxed) < MAX_REQUESTS {
                    let (what, key, status) = &keys[turn % keys.len()];
                    turn += 1;
                    let response = g.request("GET", LIST).bearer(key).send();
                    if response.status != *status {
                        let mut unexpected = unexpected.lock().unwrap();
                        if unexpected.len() < 20 {
                            unexpected.push(format!("{what}: {} {}", response.status, response.body.chars().take(200).collect::<String>()));
                        } else {
                            unexpected.push(String::new());
                        }
                    }
                }
            });
        }
        // Load until the isolate has re-read records from KV often enough, within the bounds.
        while !stop.load(Ordering::Relaxed) {
            let spanned = kv_reads(&g) - reads_before >= KV_READS_WANTED;
            if spanned || sent.load(Ordering::Relaxed) >= MAX_REQUESTS || started.elapsed() > MAX_DURATION {
                stop.store(true, Ordering::Relaxed);
            } else {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    });
    let reads = kv_reads(&g) - reads_before;
    let sent = sent.load(Ordering::Relaxed).min(MAX_REQUESTS);
    let unexpected = unexpected.into_inner().unwrap();
    assert!(unexpected.is_empty(), "{} of {sent} requests got an unexpected status; first ones: {:#?}", unexpected.len(), &unexpected[..unexpected.len().min(20)]);
    assert!(reads >= KV_READS_WANTED, "the load ({sent} requests) spanned only {reads} KV reads: too few refreshes to mean anything");
    let log = g.log();
    for message in CROSS_REQUEST {
        assert!(!log.contains(message), "the worker log shows {message:?} after {sent} requests");
    }
}
