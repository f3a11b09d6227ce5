//! Native micro-benchmarks of keygate's pure core (no I/O, no wasm): what one request costs in
//! the gateway's own logic, apart from the runtime, KV, Durable Objects and the network.
//!
//! Run: `cargo bench --bench core` (the standard library only: `std::time::Instant` and
//! `std::hint::black_box`, so `cargo test` pulls in no benchmark crates). Each benchmark is
//! calibrated to about `KEYGATE_BENCH_SAMPLE_MS` (default 40) ms per sample, sampled
//! `KEYGATE_BENCH_SAMPLES` (default 15) times; it prints the median and the fastest sample in
//! ns/op. With `KEYGATE_BENCH_JSON=<path>` the results are also written there as JSON
//! (`scripts/bench.sh` merges them into `target/bench/report.json`).

// Tests: a failed expectation is a failed test, with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::{Duration, Instant};

use keygate_core::config::DEFAULT_ROUTES;
use keygate_core::credential;
use keygate_core::key::{KeyEnv, KeyFormat, KeyHash};
use keygate_core::limit::algorithm::{decide, LimitSpec, LimitState};
use keygate_core::limit::headers;
use keygate_core::policy::{self, RequestFacts};
use keygate_core::record::{KeyRecord, Status};
use keygate_core::routes::{check_canonical, RouteTable};
use keygate_core::scope::Roles;
use keygate_core::signature::{self, Audience, SignedIdentity, Signer, TOKEN_LIFETIME_SECONDS};
use keygate_core::timestamp::Timestamp;

/// A fixed instant (2027-01-15), so runs are comparable.
const NOW_MS: i64 = 1_800_000_000_000;
const PATH: &str = "/v1/public/cms/articles/items/hello-world";

struct Result {
    name: &'static str,
    what: &'static str,
    median_ns: f64,
    min_ns: f64,
    iterations: u64,
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).filter(|&v| v > 0).unwrap_or(default)
}

/// Times `f`: calibrates a batch size to `sample` wall time, then takes `samples` batches.
fn bench<T>(name: &'static str, what: &'static str, mut f: impl FnMut() -> T) -> Result {
    let sample = Duration::from_millis(env_number("KEYGATE_BENCH_SAMPLE_MS", 40));
    let samples = env_number("KEYGATE_BENCH_SAMPLES", 15) as usize;
    // Warm up and calibrate: double the batch until one batch takes at least `sample`.
    let mut batch: u64 = 1;
    loop {
        let start = Instant::now();
        for _ in 0..batch {
            black_box(f());
        }
        let took = start.elapsed();
        if took >= sample || batch >= 1 << 32 {
            // Scale to the target once more, so each sample is about `sample` long.
            let per = took.as_secs_f64() / batch as f64;
            batch = ((sample.as_secs_f64() / per.max(1e-12)) as u64).max(1);
            break;
        }
        batch *= 2;
    }
    let mut per_op: Vec<f64> = (0..samples)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..batch {
                black_box(f());
            }
            start.elapsed().as_secs_f64() * 1e9 / batch as f64
        })
        .collect();
    per_op.sort_by(|a, b| a.total_cmp(b));
    let result = Result { name, what, median_ns: per_op[per_op.len() / 2], min_ns: per_op[0], iterations: batch * samples as u64 };
    println!("{:<22} {:>10.1} ns/op  (min {:>9.1})  {}", result.name, result.median_ns, result.min_ns, result.what);
    result
}

fn record(key: &str) -> KeyRecord {
    KeyRecord {
        id: "key_3kTq9ZbW1xYp0aLm".into(),
        project: "acme".into(),
        name: "marketing site".into(),
        env: KeyEnv::Live,
        role: Some("read_only".into()),
        scopes: vec![],
        status: Status::Active,
        valid_from: Some(Timestamp(NOW_MS - 86_400_000)),
        valid_to: Some(Timestamp(NOW_MS + 86_400_000)),
        allowed_origins: None,
        allowed_networks: Vec::new(),
        allowed_countries: Vec::new(),
        created_at: Timestamp(NOW_MS - 86_400_000),
        updated_at: Timestamp(NOW_MS - 86_400_000),
        revision: 1,
        meta: BTreeMap::from([("team".to_string(), "web".to_string())]),
        hint: Some(format!("kg_live_…{}", &key[key.len() - 4..])),
        family: None,
        rolled_from: None,
        tier: Some("pro".into()),
        limits: None,
        limit_mode: None,
        credits: None,
    }
}

fn json_escape(text: &str) -> String {
    text.replace('\\', "\\\\").replace('"', "\\\"")
}

fn main() {
    // `cargo bench` passes `--bench`; a name filter (any other argument) runs only matching benchmarks.
    let filter: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    let wanted = |name: &str| filter.is_empty() || filter.iter().any(|f| name.contains(f.as_str()));

    let key_format = KeyFormat::default();
    let key = key_format.generate(KeyEnv::Live).expect("random key");
    let key_text = key.expose().to_string();
    let authorization = format!("Bearer {key_text}");
    let record = record(&key_text);
    let roles = Roles::builtin();
    let table = RouteTable::from_json(DEFAULT_ROUTES).expect("DEFAULT_ROUTES");
    let route = table.find("GET", PATH).expect("route");
    let facts = RequestFacts { key_env: KeyEnv::Live, route: &route, origin: None };
    assert!(policy::authorize(&record, &facts, &roles, &[], NOW_MS).is_ok(), "the fixture record must be granted");
    // The shipped `pro` tier's limits, decided once for a key that has used a few requests.
    let specs = vec![LimitSpec::new("burst", 50, 1), LimitSpec::new("minute", 600, 60), LimitSpec::new("daily", 100_000, 86_400)];
    let mut states: Vec<LimitState> = Vec::new();
    for i in 0..5 {
        decide(&specs, &mut states, NOW_MS - 5_000 + i * 1_000);
    }
    let decision = decide(&specs, &mut states, NOW_MS);
    assert!(decision.allowed);

    println!("keygate core micro-benchmarks (native, release profile of `cargo bench`; median of samples)");
    let mut results = Vec::new();
    let mut run = |r: &dyn Fn() -> Result, name: &str| {
        if wanted(name) {
            results.push(r());
        }
    };
    run(
        &|| {
            bench("key_parse", "KeyFormat::parse: length, prefix, env segment, base62, CRC32 checksum (constant-time compare)", || {
                black_box(&key_format).parse(black_box(&key_text)).map(|p| p.env)
            })
        },
        "key_parse",
    );
    run(&|| bench("sha256", "KeyHash::of: SHA-256 of the 46-byte key", || KeyHash::of(black_box(&key_text))), "sha256");
    run(
        &|| {
            bench(
                "policy_authorize",
                "policy::authorize: status, window, role→scopes, project, Origin (read_only key, GET route)",
                || policy::authorize(black_box(&record), black_box(&facts), &roles, &[], black_box(NOW_MS)).map(|g| g.scopes.len()),
            )
        },
        "policy_authorize",
    );
    run(
        &|| {
            bench(
                "route_match",
                "RouteTable::find on DEFAULT_ROUTES, GET /v1/public/cms/articles/items/hello-world (2nd route, `*`)",
                || table.find(black_box("GET"), black_box(PATH)).map(|m| m.scopes.len()),
            )
        },
        "route_match",
    );
    run(
        &|| {
            bench("header_render", "limit::headers::render: 3 limits (pro tier) → RateLimit-Policy, RateLimit, X-RateLimit-*", || {
                headers::render(black_box(&specs), black_box(&decision), black_box(1_800_000_000), None)
            })
        },
        "header_render",
    );
    run(
        &|| {
            bench("limit_decide", "limit::algorithm::decide: 3 limits (fast mode's per-isolate decision)", || {
                let mut s = states.clone();
                decide(black_box(&specs), &mut s, black_box(NOW_MS + 1))
            })
        },
        "limit_decide",
    );
    run(
        &|| {
            bench("core_verify", "parse + hash + authorize together (the issue's \"core verify\")", || {
                let parsed = key_format.parse(black_box(&key_text)).expect("valid");
                let hash = parsed.key.hash();
                let facts = RequestFacts { key_env: parsed.env, route: &route, origin: None };
                (hash, policy::authorize(black_box(&record), &facts, &roles, &[], NOW_MS).map(|g| g.scopes.len()))
            })
        },
        "core_verify",
    );
    run(
        &|| {
            bench(
                "core_request",
                "extract + canonical check + route + parse + hash + authorize (hot path's pure part, cache lookup excluded)",
                || {
                    let credential::Credential(presented) = credential::extract(Some(black_box(&authorization)), None).expect("credential");
                    check_canonical(black_box(PATH)).expect("canonical");
                    let route = table.find("GET", PATH).expect("route");
                    let parsed = key_format.parse(presented).expect("valid");
                    let hash = parsed.key.hash();
                    let facts = RequestFacts { key_env: parsed.env, route: &route, origin: None };
                    (hash, policy::authorize(&record, &facts, &roles, &[], NOW_MS).map(|g| g.scopes.len()))
                },
            )
        },
        "core_request",
    );

    // The identity token of one forwarded request (forward::plan's signing, without the URL).
    let signer = Signer::new(b"integration-test-signing-secret-0123456789");
    let audience = Audience::from_url("https://origin.example").expect("audience");
    let identity = || SignedIdentity {
        audience: audience.as_str().to_string(),
        issued_at: NOW_MS as u64 / 1000,
        expires_at: NOW_MS as u64 / 1000 + TOKEN_LIFETIME_SECONDS,
        method: "GET".into(),
        path_and_query: format!("{PATH}?limit=20"),
        key_id: "key_01HZX3V9Q7ABCDEFGHJKMNPQRS".into(),
        project: "acme".into(),
        env: "live".into(),
        scopes: "content:read media:read".into(),
    };
    let token = signer.sign(&identity());
    run(
        &|| {
            bench("identity_sign", "X-Keygate-Identity: claims → JSON → base64url → HMAC-SHA256 (HS256 JWT, 423 B)", || {
                signer.sign(black_box(&identity()))
            })
        },
        "identity_sign",
    );
    run(
        &|| {
            bench("identity_verify", "keygate_verify::verify of that token (the origin's side: parse, rebuild, HMAC, claims)", || {
                let path = format!("{PATH}?limit=20");
                signature::verify(b"integration-test-signing-secret-0123456789", &audience, "GET", &path, Some(&token), 1_800_000_000, 30)
                    .map(|i| i.scopes.len())
            })
        },
        "identity_verify",
    );

    if let Ok(path) = std::env::var("KEYGATE_BENCH_JSON") {
        let items: Vec<String> = results
            .iter()
            .map(|r| {
                format!(
                    "{{\"name\":\"{}\",\"median_ns\":{:.1},\"min_ns\":{:.1},\"iterations\":{},\"what\":\"{}\"}}",
                    r.name,
                    r.median_ns,
                    r.min_ns,
                    r.iterations,
                    json_escape(r.what)
                )
            })
            .collect();
        std::fs::write(&path, format!("[{}]\n", items.join(","))).expect("write KEYGATE_BENCH_JSON");
    }
}
