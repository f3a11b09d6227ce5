//! Configuration: `keygate_core::config::Config::from_lookup` on arbitrary values for every setting
//! (ROUTES, ROLES, SCOPES, TIERS, DEFAULT_TIER, numbers, URLs, switches, …) must never panic;
//! a config it accepts must hold what the hot path relies on.
#![no_main]

use std::collections::BTreeMap;

use arbitrary::{Arbitrary, Unstructured};
use keygate_core::config::{Config, DEFAULT_ROUTES, DEFAULT_TIERS, SETTINGS};
use keygate_core::key::{self, KeyEnv};
use keygate_core::limit::algorithm::{decide, validate_specs};
use keygate_core::limit::headers;
use keygate_core::signature::Audience;
use libfuzzer_sys::fuzz_target;
use serde_json::{json, Map, Value};

/// One setting's value.
#[derive(Arbitrary, Debug)]
enum Setting<'a> {
    Unset,
    Raw(&'a str),
    Known(u8),
    Number(u64),
    Routes(Vec<RouteIn<'a>>),
    Roles(Vec<(&'a str, Vec<Word<'a>>)>),
    Scopes(Vec<Word<'a>>),
    Tiers(Vec<TierIn<'a>>),
    Strings(Vec<&'a str>),
}

/// A string that is usually a plausible token for the setting at hand.
#[derive(Arbitrary, Debug)]
enum Word<'a> {
    Known(u8),
    Raw(&'a str),
}

#[derive(Arbitrary, Debug)]
struct RouteIn<'a> {
    methods: Vec<Word<'a>>,
    segments: Vec<Word<'a>>,
    scopes: Vec<Word<'a>>,
    project_param: Option<Word<'a>>,
    envs: Option<Vec<Word<'a>>>,
}

#[derive(Arbitrary, Debug)]
struct TierIn<'a> {
    name: Word<'a>,
    limits: Vec<(Word<'a>, u64, u64)>,
    mode: Option<Word<'a>>,
    fast_binding: Option<(Word<'a>, Word<'a>)>,
}

const KNOWN: &[&str] = &[
    "kg",
    "acme",
    "http://127.0.0.1:8788/",
    "https://sandbox.example/api",
    "0123456789abcdef0123",
    "/_keygate/v1",
    "/v1/public/cms",
    "/v1",
    "/",
    "exact",
    "fast",
    "open",
    "closed",
    "on",
    "off",
    "yes-this-is-a-test-deployment",
    "free",
    "pro",
    "enterprise",
    "x-api-key",
    "authorization",
    "60",
    "0",
    "1048576",
    "30",
    "86400",
    "\"600\"",
    "[\"*\"]",
    "[\"https://acme.example\"]",
    "{\"bot\":[\"content:read\"]}",
    "[\"content:read\",\"media:read\"]",
    "[]",
    "{}",
    "null",
    DEFAULT_ROUTES,
    DEFAULT_TIERS,
    "none",
    "[\"optimo\",\"kg\"]",
    "{\"live\":\"live\",\"test\":[\"sandbox\",\"test\"]}",
    "{\"live\":[\"live\"]}",
    "{\"test\":\"sandbox\"}",
];
const WORDS: &[&str] = &[
    "GET",
    "HEAD",
    "POST",
    "*",
    "get",
    "v1",
    "public",
    "cms",
    ":type",
    ":project",
    "items",
    "*",
    "",
    "..",
    "%2e",
    "_keygate",
    "content:read",
    "content:*",
    "media:write",
    "keys:read",
    "project",
    "type",
    "live",
    "test",
    "free",
    "pro",
    "minute",
    "burst",
    "daily",
    "RL_FREE_MINUTE",
    "exact",
    "fast",
    "read_only",
    "bot",
    "a",
    "-",
];

fn word<'a>(w: &Word<'a>) -> &'a str {
    match w {
        Word::Known(i) => WORDS[usize::from(*i) % WORDS.len()],
        Word::Raw(text) => text,
    }
}

fn words(list: &[Word<'_>]) -> Vec<String> {
    list.iter().map(|w| word(w).to_string()).collect()
}

/// The text the lookup returns for a setting (`None` = unset).
fn text(setting: &Setting<'_>) -> Option<String> {
    Some(match setting {
        Setting::Unset => return None,
        Setting::Raw(text) => text.to_string(),
        Setting::Known(i) => KNOWN[usize::from(*i) % KNOWN.len()].to_string(),
        Setting::Number(n) => n.to_string(),
        Setting::Routes(routes) => Value::Array(
            routes
                .iter()
                .map(|r| {
                    let path: String = r.segments.iter().map(|s| format!("/{}", word(s))).collect();
                    let mut route = json!({"methods": words(&r.methods), "path": if path.is_empty() { "/".into() } else { path }, "scopes": words(&r.scopes)});
                    if let Some(param) = &r.project_param {
                        route["project_param"] = json!(word(param));
                    }
                    if let Some(envs) = &r.envs {
                        route["envs"] = json!(words(envs));
                    }
                    route
                })
                .collect(),
        )
        .to_string(),
        Setting::Roles(roles) => {
            let map: Map<String, Value> = roles.iter().map(|(name, scopes)| (name.to_string(), json!(words(scopes)))).collect();
            Value::Object(map).to_string()
        }
        Setting::Scopes(scopes) => json!(words(scopes)).to_string(),
        Setting::Tiers(tiers) => {
            let map: Map<String, Value> = tiers
                .iter()
                .map(|t| {
                    let limits: Vec<Value> = t
                        .limits
                        .iter()
                        .map(|(name, limit, window)| json!({"name": word(name), "limit": limit, "window_seconds": window}))
                        .collect();
                    let mut tier = json!({"limits": limits});
                    if let Some(mode) = &t.mode {
                        tier["mode"] = json!(word(mode));
                    }
                    if let Some((binding, limit)) = &t.fast_binding {
                        tier["fast_binding"] = json!({"binding": word(binding), "limit": word(limit)});
                    }
                    (word(&t.name).to_string(), tier)
                })
                .collect();
            Value::Object(map).to_string()
        }
        Setting::Strings(items) => json!(items).to_string(),
    })
}

fn check(vars: &BTreeMap<&'static str, String>) {
    let Ok(config) = Config::from_lookup(|name| vars.get(name).cloned()) else { return };

    assert!(config.key_format.prefixes().iter().all(|p| key::is_valid_prefix(p)));
    assert!(!config.routes.is_empty());
    assert_ne!(config.auth_header, config.api_key_header);
    assert!(config.admin_prefix.starts_with('/') && !config.admin_prefix.ends_with('/'));
    assert!(config.routes.find("GET", &config.admin_prefix).is_none(), "admin prefix overlaps a route");
    assert!(config.origin_live.url.starts_with("http://") || config.origin_live.url.starts_with("https://"));
    for origin in std::iter::once(&config.origin_live).chain(&config.origin_test) {
        // The audience is already normalised: normalising it again changes nothing.
        assert_eq!(Audience::from_url(origin.audience.as_str()).as_ref(), Some(&origin.audience), "{:?}", origin.url);
    }
    if let Some(tier) = &config.default_tier {
        assert!(config.tiers.contains_key(tier), "DEFAULT_TIER {tier:?} is not a tier");
    }
    assert!((config.limiter_fault || config.kv_fault) <= config.test_mode, "fault switch outside test mode");

    // Keys minted with the format parse back, live always, test when the format has a segment for it.
    for env in [KeyEnv::Live, KeyEnv::Test] {
        match config.key_format.assemble(env, "abcdefghijklmnopqrstuvwxyzABCDEF") {
            Ok(minted) => assert_eq!(config.key_format.parse(minted.expose()).map(|p| p.env).ok(), Some(env)),
            Err(_) => assert!(env == KeyEnv::Test && !config.key_format.mints(env), "cannot mint {env}"),
        }
    }

    // Every tier's limits are usable by the limiter and the headers.
    for (name, tier) in &config.tiers {
        assert!(validate_specs(&tier.limits).is_ok(), "tier {name:?} has invalid limits");
        let mut states = Vec::new();
        for step in 0..3 {
            let decision = decide(&tier.limits, &mut states, 1_800_000_000_000 + step);
            let _ = headers::render(&tier.limits, &decision, 1_800_000_000, None);
        }
    }

    // The secrets are never printed: the same settings with other secrets of the same length
    // print exactly the same.
    let mut masked = vars.clone();
    for secret_name in ["ORIGIN_SIGNING_SECRET", "ORIGIN_SIGNING_SECRET_TEST", "ADMIN_TOKEN"] {
        if let Some(value) = masked.get_mut(secret_name) {
            *value = "#".repeat(value.trim().len());
        }
    }
    let other = Config::from_lookup(|name| masked.get(name).cloned()).expect("secrets of the same length are accepted");
    assert_eq!(format!("{config:?}"), format!("{other:?}"), "a secret shows in Debug output");
}

fuzz_target!(|data: &[u8]| {
    // Structured: the two required settings set, then fuzzed values over any setting.
    let mut u = Unstructured::new(data);
    let mut vars: BTreeMap<&'static str, String> = BTreeMap::from([
        ("ORIGIN_URL", "http://127.0.0.1:8788".to_string()),
        ("ORIGIN_SIGNING_SECRET", "0123456789abcdef0123".to_string()),
    ]);
    if let Ok(changes) = <Vec<(u8, Setting<'_>)>>::arbitrary(&mut u) {
        for (which, setting) in &changes {
            let name = SETTINGS[usize::from(*which) % SETTINGS.len()];
            match text(setting) {
                Some(value) => vars.insert(name, value),
                None => vars.remove(name),
            };
        }
    }
    check(&vars);

    // Unstructured: the raw input split on NUL into the settings in order.
    if let Ok(text) = std::str::from_utf8(data) {
        let raw: BTreeMap<&'static str, String> = SETTINGS.iter().copied().zip(text.split('\0').map(str::to_string)).collect();
        check(&raw);
    }
});
