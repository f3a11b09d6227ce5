//! The seed profiles (`profiles/*.toml`) as keygate's config reads them: each one, laid over
//! `wrangler.toml`'s `[vars]` exactly as `make dev` and the integration harness lay it (through
//! `keygate profile-vars`), is a valid configuration; a broken profile fails closed with
//! `CONFIG_INVALID` naming the setting. No worker: the config parser is the pure core's.

// Tests: a failed expectation is a failed test, with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::process::Command;

use keygate_core::config::Config;

const PROFILES: [&str; 5] = ["octavia", "ovok", "optimo", "atlas", "octopost"];

/// wrangler.toml's `[vars]` as wrangler hands them to the worker (strings as they are, other
/// values as JSON), plus the secrets and origin a deployment adds.
fn base_vars() -> BTreeMap<String, String> {
    let shipped: toml::Table = fs::read_to_string(common::repo_root().join("wrangler.toml")).expect("wrangler.toml").parse().expect("toml");
    let vars = shipped["vars"].as_table().expect("[vars]");
    let mut out: BTreeMap<String, String> = vars
        .iter()
        .map(|(name, value)| {
            (name.clone(), value.as_str().map(String::from).unwrap_or_else(|| serde_json::to_string(value).expect("json")))
        })
        .collect();
    out.insert("ORIGIN_URL".into(), "https://origin.example".into());
    out.insert("ORIGIN_URL_TEST".into(), "https://sandbox.origin.example".into());
    out.insert("ORIGIN_SIGNING_SECRET".into(), "profiles-test-signing-secret-0123456789".into());
    out.insert("ADMIN_TOKEN".into(), "profiles-test-admin-token-0123456789".into());
    out
}

fn config_of(vars: &BTreeMap<String, String>) -> Result<Config, keygate_core::config::ConfigError> {
    Config::from_lookup(|name| vars.get(name).cloned())
}

#[test]
fn every_shipped_profile_is_a_valid_configuration() {
    let listed: Vec<String> = fs::read_dir(common::repo_root().join("profiles"))
        .expect("profiles/")
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.strip_suffix(".toml").map(String::from))
        .collect();
    for name in PROFILES {
        assert!(listed.iter().any(|l| l == name), "profiles/{name}.toml is missing");
        let mut vars = base_vars();
        vars.extend(common::profile_vars(name));
        if let Err(error) = config_of(&vars) {
            panic!("profile {name}: {error}");
        }
    }
}

#[test]
fn profiles_replace_what_they_name_and_keep_the_rest() {
    let mut vars = base_vars();
    let shipped_routes = vars["ROUTES"].clone();
    vars.extend(common::profile_vars("octopost"));
    assert_ne!(vars["ROUTES"], shipped_routes, "the profile's routes replace the shipped ones");
    let config = config_of(&vars).expect("octopost");
    assert_eq!(config.roles.names().count(), 0, "Octopost has no roles: no built-in role is left over");
    assert!(config.routes.find("GET", "/v1/posts").is_some());
    assert!(config.routes.find("GET", "/v1/public/cms/articles/items").is_none(), "the shipped CMS routes are gone");
    assert_eq!(config.admin_prefix, "/_keygate/v1", "what the profile does not name stays as shipped");
    // "Revoke compromised keys immediately": a leak report revokes, once reports are turned on.
    assert_eq!((config.leaks.action, config.leaks.enabled), (keygate_core::leak::LeakAction::Revoke, false));
}

#[test]
fn a_broken_profile_fails_closed_naming_the_setting() {
    let root = tempfile::tempdir().expect("tempdir");
    fs::create_dir(root.path().join("profiles")).expect("mkdir");
    fs::write(
        root.path().join("profiles/typo.toml"),
        "[vars]\nSCOPES = [\"posts:read\"]\nBUILTIN_ROLES = \"off\"\n[[vars.ROUTES]]\nmethods = [\"GET\"]\npath = \"/v1/posts\"\nscopes = [\"post:read\"]\n",
    )
    .expect("write profile");
    let output =
        Command::new(common::bin("keygate")).args(["profile-vars", "typo", "--root"]).arg(root.path()).output().expect("profile-vars");
    assert!(output.status.success());
    let mut vars = base_vars();
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        let (name, value) = line.split_once(':').expect("NAME:VALUE");
        vars.insert(name.into(), value.into());
    }
    let error = config_of(&vars).expect_err("a route requiring a scope outside the catalogue");
    assert_eq!(error.setting, "ROUTES", "{error}");

    let missing =
        Command::new(common::bin("keygate")).args(["profile-vars", "nope", "--root"]).arg(root.path()).output().expect("profile-vars");
    assert!(!missing.status.success(), "an unknown profile is an error, not an empty profile");
}
