//! The catalogue (`GET <ADMIN_PREFIX>/catalogue`): what a client needs to offer valid choices
//! when creating or editing keys under the active configuration — the key prefix new keys get,
//! the environments that can be minted, the roles with their scopes, the configured scopes and
//! the tiers with their limits. Only names and limits: no secret, URL or token.

use crate::config::Config;
use crate::key::KeyEnv;

/// The catalogue of `config`, as the JSON text the admin API answers:
/// `{"key_prefix", "envs", "roles": {role: [scope]}, "scopes", "tiers": {tier: [LimitSpec]},
/// "default_tier"}`. Written by hand around serde_json's encoders for strings and limit lists
/// (which the worker has already): a derived struct with maps cost ~4 KB more wasm (gzipped),
/// this ~0.6 KB.
pub fn catalogue(config: &Config) -> String {
    let mut out = String::from("{\"key_prefix\":");
    push_text(&mut out, config.key_format.minting_prefix());
    out.push_str(",\"envs\":");
    let envs: Vec<String> =
        [KeyEnv::Live, KeyEnv::Test].into_iter().filter(|env| config.key_format.mints(*env)).map(|env| env.as_str().to_string()).collect();
    push_list(&mut out, &envs);
    out.push_str(",\"roles\":{");
    for (i, (name, scopes)) in config.roles.grants().enumerate() {
        push_field(&mut out, i, name);
        push_list(&mut out, scopes);
    }
    out.push_str("},\"scopes\":");
    push_list(&mut out, &config.scopes);
    out.push_str(",\"tiers\":{");
    for (i, (name, tier)) in config.tiers.iter().enumerate() {
        push_field(&mut out, i, name);
        // The limits as a record's `limits` are written (and with the same encoder).
        out.push_str(&serde_json::to_string(&tier.limits).unwrap_or_default());
    }
    out.push_str("},\"default_tier\":");
    match &config.default_tier {
        Some(tier) => push_text(&mut out, tier),
        None => out.push_str("null"),
    }
    out.push('}');
    out
}

/// `text` as a JSON string (encoding a string cannot fail).
fn push_text(out: &mut String, text: &str) {
    out.push_str(&serde_json::to_string(text).unwrap_or_default());
}

/// A JSON list of strings.
fn push_list(out: &mut String, items: &[String]) {
    out.push('[');
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_text(out, item);
    }
    out.push(']');
}

/// The `index`th field name of an object (a `,` before all but the first).
fn push_field(out: &mut String, index: usize, name: &str) {
    if index > 0 {
        out.push(',');
    }
    push_text(out, name);
    out.push(':');
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::*;

    fn config(extra: &[(&str, &str)]) -> Config {
        let extra: Vec<(String, String)> = extra.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Config::from_lookup(|name| match name {
            "ORIGIN_URL" => Some("http://127.0.0.1:8788/".to_string()),
            "ORIGIN_SIGNING_SECRET" => Some("0123456789abcdef0123".to_string()),
            _ => extra.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()),
        })
        .unwrap()
    }

    #[test]
    fn default_catalogue_names_prefix_envs_roles_scopes_and_tiers() {
        let catalogue: Value = serde_json::from_str(&catalogue(&config(&[]))).unwrap();
        assert_eq!(catalogue["key_prefix"], "kg");
        assert_eq!(catalogue["envs"], json!(["live", "test"]));
        assert!(catalogue["roles"]["read_only"].as_array().is_some_and(|s| s.contains(&json!("content:read"))), "{catalogue}");
        assert!(catalogue["scopes"].as_array().is_some_and(|s| s.contains(&json!("content:read"))));
        assert_eq!(catalogue["tiers"]["free"][1], json!({"name": "minute", "limit": 60, "window_seconds": 60}), "{catalogue}");
        assert!(catalogue["tiers"]["free"][0]["limit"].is_u64());
        assert_eq!(catalogue["default_tier"], Value::Null);
    }

    #[test]
    fn catalogue_follows_the_key_format() {
        let catalogue: Value =
            serde_json::from_str(&catalogue(&config(&[("KEY_PREFIXES", r#"["optimo","kg"]"#), ("KEY_ENV_SEGMENTS", "none")]))).unwrap();
        assert_eq!(catalogue["key_prefix"], "optimo");
        assert_eq!(catalogue["envs"], json!(["live"]), "no segments: only live keys can be created");
    }

    #[test]
    fn catalogue_names_the_default_tier_and_custom_tiers() {
        let tiers = r#"{"gold":{"limits":[{"name":"daily","limit":5,"window_seconds":86400}]}}"#;
        let catalogue: Value = serde_json::from_str(&catalogue(&config(&[("TIERS", tiers), ("DEFAULT_TIER", "gold")]))).unwrap();
        assert_eq!(catalogue["tiers"], json!({"gold": [{"name": "daily", "limit": 5, "window_seconds": 86400}]}));
        assert_eq!(catalogue["default_tier"], "gold");
    }

    #[test]
    fn catalogue_holds_no_secret_or_url() {
        let text = catalogue(&config(&[("ADMIN_TOKEN", "admin-token-0123456789abcdef")]));
        for secret in ["0123456789abcdef0123", "admin-token", "127.0.0.1"] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
    }
}
