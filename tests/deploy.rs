//! The deployable environments of `wrangler.toml` (`[env.staging]`, `[env.production]`): what
//! wrangler would upload for each, checked without a Cloudflare account or network.
//!
//! - Each environment restates what wrangler does not inherit (vars, KV, Durable Object and
//!   Rate Limiting bindings, required secrets), its vars make a valid config, and its Rate
//!   Limiting bindings enforce its tiers' limits.
//! - No local-only value reaches it: no loopback origin, no all-zero KV namespace id, no test
//!   switch. The placeholders the user is meant to fill (`REPLACE_WITH_…`) pass: the KV id one
//!   makes Cloudflare refuse the deploy, the `ORIGIN_URL` one makes the worker fail closed.
//! - `wrangler deploy --dry-run --outdir target/deploy/<env> --env <env>` succeeds without a
//!   warning, and the bundle it writes stays under Workers' size limits and keygate's budget.
//!
//! The dry run uses a copy of `wrangler.toml` without `[build]`, pointed at the `build/` that
//! `make test` has just built: wrangler would otherwise run `scripts/build.sh` once per
//! environment (about 25 s each, mostly wasm-opt) to produce the same files.

// Tests: a failed expectation is a failed test, with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use keygate_core::config::Config;

/// The environments `wrangler deploy --env` is meant for.
const DEPLOYABLE: [&str; 2] = ["staging", "production"];

/// Secrets every deployable environment declares in `secrets.required`.
const REQUIRED_SECRETS: [&str; 2] = ["ORIGIN_SIGNING_SECRET", "ADMIN_TOKEN"];

/// Workers' limit on the compressed upload: 3 MB on the free plan, 10 MB on paid plans.
const FREE_PLAN_LIMIT: u64 = 3 * 1024 * 1024;
const PAID_PLAN_LIMIT: u64 = 10 * 1024 * 1024;
/// keygate's own budget for the gzipped upload (index.js + wasm): 257 KiB today. Raising it is a
/// decision, not a side effect (README "Deploy").
const BUDGET: u64 = 300 * 1024;

/// The marker of a value the user fills in before the first deploy.
const PLACEHOLDER: &str = "REPLACE_WITH_";

/// Settings only a test deployment may have (SECURITY.md §7, "Test-only switches").
const TEST_ONLY_VARS: [&str; 3] = ["KEYGATE_TEST_MODE", "LIMITER_FAULT", "KV_FAULT"];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn shipped_text() -> String {
    std::fs::read_to_string(root().join("wrangler.toml")).expect("wrangler.toml")
}

fn parse(text: &str) -> toml::Table {
    text.parse().expect("wrangler.toml parses")
}

fn environment<'a>(doc: &'a toml::Table, name: &str) -> Option<&'a toml::Table> {
    doc.get("env")?.get(name)?.as_table()
}

/// Every string in `value`, with its path (`vars.ORIGIN_URL`, `kv_namespaces[0].id`, …).
fn strings(path: &str, value: &toml::Value, out: &mut Vec<(String, String)>) {
    match value {
        toml::Value::String(s) => out.push((path.to_string(), s.clone())),
        toml::Value::Array(items) => items.iter().enumerate().for_each(|(i, v)| strings(&format!("{path}[{i}]"), v, out)),
        toml::Value::Table(table) => {
            table.iter().for_each(|(k, v)| strings(&if path.is_empty() { k.clone() } else { format!("{path}.{k}") }, v, out))
        }
        _ => {}
    }
}

/// Local-only values in environment `name`: loopback hosts anywhere, an all-zero KV namespace
/// id, a test-only switch.
fn local_only_values(doc: &toml::Table, name: &str) -> Vec<String> {
    let Some(env) = environment(doc, name) else { return vec![format!("[env.{name}] is missing")] };
    let mut all = Vec::new();
    strings("", &toml::Value::Table(env.clone()), &mut all);
    let mut problems = Vec::new();
    for (path, value) in &all {
        let lower = value.to_ascii_lowercase();
        if ["127.0.0.1", "localhost", "[::1]", "0.0.0.0"].iter().any(|host| lower.contains(host)) || lower.contains("://::1") {
            problems.push(format!("env.{name}.{path} is a loopback address: {value}"));
        }
        if path.starts_with("kv_namespaces") && path.ends_with(".id") && !value.is_empty() && value.chars().all(|c| c == '0') {
            problems.push(format!("env.{name}.{path} is the all-zero local KV id"));
        }
    }
    let vars = env.get("vars").and_then(|v| v.as_table());
    for switch in TEST_ONLY_VARS {
        if vars.is_some_and(|v| v.contains_key(switch)) {
            problems.push(format!("env.{name}.vars.{switch} is a test-only setting"));
        }
    }
    problems
}

/// Names of the entries of array `key` (by `field`) in `table`, e.g. the KV bindings.
fn names(table: &toml::Table, key: &str, field: &str) -> Vec<String> {
    let mut names: Vec<String> = table
        .get(key)
        .and_then(|v| v.as_array())
        .map(|items| items.iter().filter_map(|i| i.get(field)?.as_str().map(String::from)).collect())
        .unwrap_or_default();
    names.sort();
    names
}

fn durable_objects(table: &toml::Table) -> Vec<String> {
    let mut bindings: Vec<String> = table
        .get("durable_objects")
        .and_then(|d| d.get("bindings"))
        .and_then(|b| b.as_array())
        .map(|items| {
            items
                .iter()
                .map(|b| {
                    format!(
                        "{}={}",
                        b.get("name").and_then(|v| v.as_str()).unwrap_or("?"),
                        b.get("class_name").and_then(|v| v.as_str()).unwrap_or("?")
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    bindings.sort();
    bindings
}

/// The config the worker derives from `vars` (as it sees them: strings as they are, other values
/// JSON-encoded), with a stand-in for a placeholder `ORIGIN_URL` and a signing secret.
fn config_of(vars: &toml::Table) -> Result<Config, String> {
    Config::from_lookup(|name| match name {
        "ORIGIN_SIGNING_SECRET" => Some("a-signing-secret-for-this-check".into()),
        _ => vars.get(name).map(|v| match v.as_str() {
            Some(s) if name == "ORIGIN_URL" && s.starts_with(PLACEHOLDER) => "https://origin.example".into(),
            Some(s) => s.to_string(),
            None => serde_json::to_string(v).expect("json"),
        }),
    })
    .map_err(|e| format!("{e:?}"))
}

/// What environment `name` fails to restate or get right: bindings, secrets, vars, and Rate
/// Limiting bindings that enforce its tiers' `fast` limits.
fn restatement_problems(doc: &toml::Table, name: &str) -> Vec<String> {
    let Some(env) = environment(doc, name) else { return vec![format!("[env.{name}] is missing")] };
    let mut problems = Vec::new();
    for (what, key, field) in [("KV", "kv_namespaces", "binding"), ("Rate Limiting", "ratelimits", "name")] {
        if names(env, key, field) != names(doc, key, field) {
            problems.push(format!(
                "env.{name}: {what} bindings {:?}, the top level has {:?}",
                names(env, key, field),
                names(doc, key, field)
            ));
        }
    }
    if durable_objects(env) != durable_objects(doc) {
        problems.push(format!(
            "env.{name}: Durable Object bindings {:?}, the top level has {:?}",
            durable_objects(env),
            durable_objects(doc)
        ));
    }
    let required: Vec<&str> = env
        .get("secrets")
        .and_then(|s| s.get("required"))
        .and_then(|r| r.as_array())
        .map(|r| r.iter().filter_map(|v| v.as_str()).collect())
        .unwrap_or_default();
    for secret in REQUIRED_SECRETS {
        if !required.contains(&secret) {
            problems.push(format!("env.{name}: secrets.required lacks {secret}"));
        }
    }
    let empty = toml::Table::new();
    let vars = env.get("vars").and_then(|v| v.as_table()).unwrap_or(&empty);
    let top_vars = doc.get("vars").and_then(|v| v.as_table()).unwrap_or(&empty);
    for var in top_vars.keys().filter(|k| !vars.contains_key(*k)) {
        problems.push(format!("env.{name}: vars lacks {var} (vars are not inherited)"));
    }
    let config = match config_of(vars) {
        Ok(config) => config,
        Err(e) => {
            problems.push(format!("env.{name}: its vars are not a valid config: {e}"));
            return problems;
        }
    };
    let bindings = env.get("ratelimits").and_then(|v| v.as_array()).cloned().unwrap_or_default();
    for (tier_name, tier) in &config.tiers {
        let Some(fast) = &tier.fast_binding else { continue };
        let Some(limit) = tier.limits.iter().find(|l| l.name == fast.limit) else { continue };
        let binding = bindings.iter().find(|b| b.get("name").and_then(|n| n.as_str()) == Some(fast.binding.as_str()));
        let number = |field: &str| binding.and_then(|b| b.get("simple")?.get(field)?.as_integer());
        if number("limit") != Some(limit.limit as i64) || number("period") != Some(limit.window_seconds as i64) {
            problems.push(format!(
                "env.{name}: tier {tier_name} needs binding {} with limit {} / period {}, found {:?} / {:?}",
                fast.binding,
                limit.limit,
                limit.window_seconds,
                number("limit"),
                number("period")
            ));
        }
    }
    problems
}

#[test]
fn deployable_environments_hold_no_local_only_value() {
    let doc = parse(&shipped_text());
    let problems: Vec<String> = DEPLOYABLE.iter().flat_map(|env| local_only_values(&doc, env)).collect();
    assert!(problems.is_empty(), "{problems:#?}");
}

/// `doc` with `edit` applied to environment `name` (as a user's wrangler.toml might be, whatever
/// they filled in).
fn edited(doc: &toml::Table, name: &str, edit: impl FnOnce(&mut toml::Table)) -> toml::Table {
    let mut doc = doc.clone();
    edit(doc.get_mut("env").and_then(|e| e.get_mut(name)).and_then(|e| e.as_table_mut()).expect("[env.<name>]"));
    doc
}

fn table<'a>(env: &'a mut toml::Table, key: &str) -> &'a mut toml::Table {
    env.get_mut(key).and_then(|v| v.as_table_mut()).expect("table")
}

#[test]
fn a_loopback_origin_or_the_zero_kv_id_in_production_is_reported() {
    let leaked = edited(&parse(&shipped_text()), "production", |env| {
        let vars = table(env, "vars");
        vars.insert("ORIGIN_URL".into(), "http://localhost:8788".into());
        vars.insert("ORIGIN_URL_TEST".into(), "http://[::1]:8789".into());
        vars.insert("KEYGATE_TEST_MODE".into(), "yes-this-is-a-test-deployment".into());
        let kv = env.get_mut("kv_namespaces").and_then(|k| k.as_array_mut()).and_then(|k| k.first_mut()).and_then(|k| k.as_table_mut());
        kv.expect("KV binding").insert("id".into(), "00000000000000000000000000000000".into());
    });
    let problems = local_only_values(&leaked, "production");
    assert_eq!(problems.len(), 4, "{problems:#?}");
    for expected in [
        "vars.ORIGIN_URL is a loopback",
        "vars.ORIGIN_URL_TEST is a loopback",
        "kv_namespaces[0].id is the all-zero",
        "KEYGATE_TEST_MODE is a test-only",
    ] {
        assert!(problems.iter().any(|p| p.contains(expected)), "{expected}: {problems:#?}");
    }
    assert!(local_only_values(&leaked, "staging").is_empty(), "staging was not edited");
}

#[test]
fn deployable_environments_restate_what_wrangler_does_not_inherit() {
    let doc = parse(&shipped_text());
    let problems: Vec<String> = DEPLOYABLE.iter().flat_map(|env| restatement_problems(&doc, env)).collect();
    assert!(problems.is_empty(), "{problems:#?}");
}

#[test]
fn an_environment_missing_a_binding_secret_or_var_is_reported() {
    let broken = edited(&parse(&shipped_text()), "staging", |env| {
        env.insert("secrets".into(), toml::toml! { required = ["ORIGIN_SIGNING_SECRET"] }.into());
        let objects =
            env.get_mut("durable_objects").and_then(|d| d.get_mut("bindings")).and_then(|b| b.as_array_mut()).expect("DO bindings");
        objects.retain(|b| b.get("name").and_then(|n| n.as_str()) != Some("LIMITER"));
        let vars = table(env, "vars");
        vars.remove("LIMIT_MODE");
        let tiers = r#"{"free": {"limits": [{"name": "minute", "limit": 61, "window_seconds": 60}], "fast_binding": {"binding": "RL_FREE_MINUTE", "limit": "minute"}}}"#;
        vars.insert("TIERS".into(), tiers.into());
    });
    let problems = restatement_problems(&broken, "staging");
    assert_eq!(problems.len(), 4, "{problems:#?}");
    for expected in [
        "secrets.required lacks ADMIN_TOKEN",
        "Durable Object bindings",
        "vars lacks LIMIT_MODE",
        "tier free needs binding RL_FREE_MINUTE with limit 61",
    ] {
        assert!(problems.iter().any(|p| p.contains(expected)), "{expected}: {problems:#?}");
    }
    assert!(restatement_problems(&broken, "production").is_empty(), "production was not edited");
}

#[test]
fn the_origin_placeholder_fails_closed() {
    // Deployed unfilled, the worker must refuse every request naming the setting, not forward.
    let doc = parse(&shipped_text());
    for name in DEPLOYABLE {
        let vars = environment(&doc, name).and_then(|e| e.get("vars")).and_then(|v| v.as_table()).expect("vars");
        let origin = vars.get("ORIGIN_URL").and_then(|v| v.as_str()).expect("ORIGIN_URL");
        if !origin.starts_with(PLACEHOLDER) {
            continue; // filled in by the user
        }
        let error = Config::from_lookup(|n| match n {
            "ORIGIN_SIGNING_SECRET" => Some("a-signing-secret-for-this-check".into()),
            "ORIGIN_URL" => Some(origin.to_string()),
            _ => None,
        })
        .err()
        .unwrap_or_else(|| panic!("env.{name}: the placeholder {origin:?} is a valid ORIGIN_URL"));
        assert!(format!("{error:?}").contains("ORIGIN_URL"), "{error:?}");
    }
}

/// `wrangler.toml` as wrangler reads it for the dry run: no `[build]` (the bundle `make test`
/// built is used as it is), `main` absolute because the copy lives under target/deploy/.
fn dry_run_config(name: &str) -> PathBuf {
    let mut doc = parse(&shipped_text());
    doc.remove("build");
    doc.insert("main".into(), root().join("build/index.js").display().to_string().into());
    let dir = root().join("target/deploy");
    std::fs::create_dir_all(&dir).expect("target/deploy");
    let path = dir.join(format!("wrangler.{name}.toml"));
    std::fs::write(&path, toml::to_string(&doc).expect("toml out")).expect("write config");
    path
}

fn gzipped_size(path: &Path) -> u64 {
    let output = Command::new("gzip").args(["-9", "-c"]).arg(path).output().expect("run gzip");
    assert!(output.status.success(), "gzip {}", path.display());
    output.stdout.len() as u64
}

#[test]
fn dry_run_of_each_environment_fits_workers_limits_and_the_budget() {
    assert!(root().join("build/index.js").is_file(), "build/index.js is missing: run `make build` (or `make test`) first");
    let wrangler = root().join("node_modules/.bin/wrangler");
    let path = format!("{}:{}", root().join("node_modules/.bin").display(), std::env::var("PATH").unwrap_or_default());
    for name in DEPLOYABLE {
        let outdir = root().join("target/deploy").join(name);
        let _ = std::fs::remove_dir_all(&outdir);
        let config = dry_run_config(name);
        let output = Command::new(&wrangler)
            .args(["deploy", "--dry-run", "--env", name, "-c"])
            .arg(&config)
            .arg("--outdir")
            .arg(&outdir)
            .current_dir(root())
            .env("PATH", &path)
            .env("WRANGLER_SEND_METRICS", "false")
            .env_remove("CLOUDFLARE_API_TOKEN")
            .env_remove("CLOUDFLARE_ACCOUNT_ID")
            .output()
            .expect("run wrangler deploy --dry-run");
        let log = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
        assert!(output.status.success(), "env {name}: wrangler deploy --dry-run failed:\n{log}");
        assert!(log.contains("--dry-run: exiting now."), "env {name}: not a dry run?\n{log}");
        assert!(!log.contains("WARNING"), "env {name}: wrangler warns about the configuration:\n{log}");
        assert!(log.contains("env.KEYS (") && log.contains("env.LIMITER (KeyLimiter)"), "env {name}: bindings not listed:\n{log}");

        let mut modules: Vec<PathBuf> = std::fs::read_dir(&outdir)
            .expect("dry-run outdir")
            .map(|e| e.expect("entry").path())
            .filter(|p| p.extension().is_some_and(|x| x == "js" || x == "wasm"))
            .collect();
        modules.sort();
        assert!(
            modules.iter().any(|p| p.extension().is_some_and(|x| x == "wasm")),
            "env {name}: no wasm in {}: {modules:?}",
            outdir.display()
        );
        assert!(
            modules.iter().any(|p| p.file_name().is_some_and(|f| f == "index.js")),
            "env {name}: no index.js in {}: {modules:?}",
            outdir.display()
        );
        let raw: u64 = modules.iter().map(|p| std::fs::metadata(p).expect("size").len()).sum();
        let gzipped: u64 = modules.iter().map(|p| gzipped_size(p)).sum();
        let reported = log.lines().find(|l| l.starts_with("Total Upload:")).unwrap_or("(no Total Upload line)").trim().to_string();
        eprintln!("env {name}: upload {raw} B, gzipped {gzipped} B (gzip -9); wrangler: {reported}");
        assert!(gzipped <= PAID_PLAN_LIMIT, "env {name}: {gzipped} B gzipped exceeds Workers' 10 MB paid-plan limit");
        assert!(gzipped <= FREE_PLAN_LIMIT, "env {name}: {gzipped} B gzipped exceeds Workers' 3 MB free-plan limit");
        assert!(gzipped <= BUDGET, "env {name}: {gzipped} B gzipped exceeds keygate's budget of {BUDGET} B (README \"Deploy\")");
    }
}
