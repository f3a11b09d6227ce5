//! Sustained concurrent load at keygate's own workerd socket across many isolate-cache refreshes
//! (`CACHE_TTL_SECONDS=1`), with exact-mode, fast-mode, limited, unlimited and unknown keys:
//! every answer is the expected status, and the worker log never shows the runtime refusing or
//! cancelling a request because one request's I/O (a KV read's promise, a fetch, a stream) was
//! awaited or resolved in another request's context.
//!
//! The load runs in `tests/load/drive.mjs` (Miniflare's Node API, the worker on its own workerd
//! socket, keep-alive clients, a minimal loopback origin: `wrangler dev`'s proxy in between would
//! pace the requests too much to overlap them the way production traffic does). All clients hit
//! one key at a time, switching every 150 ms, so every switch starts with many concurrent cache
//! misses of one hash (the case where a shared read would be awaited by many requests); a
//! quarter of the requests are abandoned by their client mid-flight; one thread keeps the CPUs
//! busy. It is bounded in count and time and stops once the load has caused enough KV reads
//! (refreshes and misses); this test asserts on the counts it reports. Loopback only.

// Tests: a failed expectation is a failed test, with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::process::{Command, Stdio};

use serde_json::Value;

/// The driver stops the load once it caused this many KV reads (its default, `LOAD_KV_READS`).
const KV_READS_WANTED: u64 = 150;

#[test]
fn sustained_load_across_cache_refreshes_answers_every_request_as_expected() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    assert!(root.join("build/index.js").exists(), "build/index.js is missing: run `make build` (or `make test`) first");
    let tmp = tempfile::Builder::new().prefix("keygate-load-").tempdir().expect("tempdir");
    let output = Command::new(root.join("node_modules/.bin/node"))
        .arg(root.join("tests/load/drive.mjs"))
        .env("LOAD_BUILD", root.join("build"))
        .env("LOAD_KV_READS", KV_READS_WANTED.to_string())
        .env("LOAD_TMP", tmp.path())
        .stdin(Stdio::null())
        .output()
        .expect("run tests/load/drive.mjs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "the load driver failed:\n{stderr}");
    let report: Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("report is not JSON ({e}):\n{}", String::from_utf8_lossy(&output.stdout)));

    let sent = report["sent"].as_u64().unwrap_or(0);
    let mut unexpected = Vec::new();
    for kind in report["kinds"].as_array().expect("kinds") {
        let expect = kind["expect"].as_u64().expect("expect").to_string();
        for (status, count) in kind["got"].as_object().expect("got") {
            if *status != expect {
                unexpected.push(format!("{}: {count} × {status} (expected {expect})", kind["kind"]));
            }
        }
        assert!(kind["got"][&expect].as_u64().unwrap_or(0) > 0, "{} never got its expected {expect}: {kind}", kind["kind"]);
    }
    assert!(
        unexpected.is_empty(),
        "unexpected statuses in {sent} requests: {unexpected:#?}\nworker log lines: {}",
        report["cross_request_log_lines"]
    );
    let cross = report["cross_request_log_lines"].as_array().expect("log lines");
    assert!(cross.is_empty(), "the worker log shows cross-request I/O in {sent} requests: {cross:#?}");
    let reads = report["kv_reads"].as_u64().unwrap_or(0);
    assert!(
        reads >= KV_READS_WANTED,
        "the load ({sent} requests) caused only {reads} KV reads: too few cache refreshes and misses to mean anything"
    );
}
