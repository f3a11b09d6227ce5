//! `wrangler.toml` against the config the worker derives from it: the Workers Rate Limiting
//! bindings that `fast` mode uses must enforce exactly the tier limits they stand for (the
//! worker cannot read a binding's `limit`/`period` at run time, so this is checked here).

// Tests: a failed expectation is a failed test, with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use keygate_core::config::Config;

/// Every disagreement between the tiers (from `[vars]`, else the shipped ones) and the
/// `[[ratelimits]]` bindings of the wrangler config `text`.
fn binding_mismatches(text: &str) -> Vec<String> {
    let doc: toml::Table = text.parse().expect("wrangler.toml parses");
    let vars = doc.get("vars").and_then(|v| v.as_table()).cloned().unwrap_or_default();
    let config = Config::from_lookup(|name| match name {
        "ORIGIN_SIGNING_SECRET" => Some("a-signing-secret-for-this-check".into()),
        // As the worker sees them: strings as they are, other values JSON-encoded.
        _ => vars.get(name).map(|v| v.as_str().map(String::from).unwrap_or_else(|| serde_json::to_string(v).expect("json"))),
    })
    .expect("the [vars] make a valid config");
    let bindings = doc.get("ratelimits").and_then(|v| v.as_array()).cloned().unwrap_or_default();
    let mut problems = Vec::new();
    for (tier_name, tier) in &config.tiers {
        let Some(fast) = &tier.fast_binding else { continue };
        let Some(limit) = tier.limits.iter().find(|l| l.name == fast.limit) else {
            problems.push(format!("tier {tier_name}: no limit named {}", fast.limit));
            continue;
        };
        let Some(binding) = bindings.iter().find(|b| b.get("name").and_then(|n| n.as_str()) == Some(fast.binding.as_str())) else {
            problems.push(format!("tier {tier_name}: no [[ratelimits]] binding named {}", fast.binding));
            continue;
        };
        let simple = binding.get("simple");
        let number = |field: &str| simple.and_then(|s| s.get(field)).and_then(|v| v.as_integer());
        if number("limit") != Some(limit.limit as i64) || number("period") != Some(limit.window_seconds as i64) {
            problems.push(format!(
                "tier {tier_name}: binding {} has limit {:?} / period {:?}, the tier's {} limit is {} / {} s",
                fast.binding,
                number("limit"),
                number("period"),
                limit.name,
                limit.limit,
                limit.window_seconds
            ));
        }
    }
    problems
}

fn shipped() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/wrangler.toml")).expect("wrangler.toml")
}

#[test]
fn rate_limiting_bindings_match_the_tier_limits_they_enforce() {
    let problems = binding_mismatches(&shipped());
    assert!(problems.is_empty(), "{problems:#?}");
}

#[test]
fn a_binding_that_drifted_from_its_tier_is_reported() {
    let drifted = shipped().replacen("simple = { limit = 600, period = 60 }", "simple = { limit = 601, period = 60 }", 1);
    assert_ne!(drifted, shipped(), "the pro binding line is where this test expects it");
    let problems = binding_mismatches(&drifted);
    assert_eq!(problems.len(), 1, "{problems:#?}");
    assert!(problems[0].contains("RL_PRO_MINUTE"), "{problems:#?}");

    let missing = shipped().replacen("name = \"RL_FREE_MINUTE\"", "name = \"RL_SOMETHING_ELSE\"", 1);
    assert!(binding_mismatches(&missing).iter().any(|p| p.contains("no [[ratelimits]] binding named RL_FREE_MINUTE")));
}
