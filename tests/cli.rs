//! The `keygate` CLI: `keygate keys` against the real worker under `wrangler dev`, and, without a
//! gateway, `--version` and the shell completions.

// Tests: a failed expectation is a failed test, with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::{Command, Output};
use std::sync::OnceLock;

use common::{Gateway, Options, ADMIN_TOKEN};

fn gateway() -> &'static Gateway {
    static GATEWAY: OnceLock<Gateway> = OnceLock::new();
    // LEASE_MS = 0: each change applies to the very next request (with leases, within LEASE_MS:
    // tests/leases.rs).
    GATEWAY.get_or_init(|| Gateway::start(Options { vars: vec![("LEASE_MS", "0")], ..Options::default() }))
}

fn keygate(args: &[&str]) -> Output {
    Command::new(common::bin("keygate"))
        .arg("keys")
        .args(args)
        .env("KEYGATE_URL", &gateway().url)
        .env("KEYGATE_ADMIN_TOKEN", ADMIN_TOKEN)
        .output()
        .expect("run keygate")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn json(args: &[&str]) -> serde_json::Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let output = keygate(&all);
    assert!(output.status.success(), "{args:?}: {}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).expect("json output")
}

fn gateway_code(key: &str) -> String {
    let response = gateway().request("GET", "/v1/public/cms/articles/items").bearer(key).send();
    if response.status == 200 {
        "OK".into()
    } else {
        response.json()["error"]["code"].as_str().unwrap_or("?").to_string()
    }
}

#[test]
fn cli_runs_the_whole_lifecycle() {
    let created = json(&["create", "--project", "cli", "--name", "cli key", "--role", "read_only", "--meta", "team=web"]);
    let key = created["key"].as_str().unwrap().to_string();
    let id = created["record"]["id"].as_str().unwrap().to_string();
    assert_eq!(gateway_code(&key), "OK");

    let listed = json(&["list", "--project", "cli"]);
    assert!(listed["items"].as_array().unwrap().iter().any(|r| r["id"] == id.as_str()));
    assert_eq!(json(&["show", &id])["meta"]["team"], "web");

    assert_eq!(json(&["disable", &id])["status"], "inactive");
    assert_eq!(gateway_code(&key), "KEY_DISABLED");
    assert_eq!(json(&["enable", &id])["status"], "active");
    assert_eq!(gateway_code(&key), "OK");

    assert_eq!(json(&["update", &id, "--name", "renamed", "--valid-to", "2099-01-01T00:00:00Z"])["name"], "renamed");
    assert!(json(&["update", &id, "--lifetime"])["valid_to"].is_null());

    let rolled = json(&["roll", &id, "--grace-seconds", "600"]);
    let new_key = rolled["key"].as_str().unwrap().to_string();
    assert_eq!((gateway_code(&key), gateway_code(&new_key)), ("OK".to_string(), "OK".to_string()));

    assert_eq!(json(&["revoke", &id])["status"], "revoked");
    assert_eq!(gateway_code(&key), "KEY_REVOKED");
    let audit = json(&["audit", &id]);
    let actions: Vec<&str> = audit["items"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["created", "disabled", "enabled", "updated", "updated", "rolled", "revoked"]);
}

#[test]
fn human_output_shows_the_key_once_and_tables() {
    let output = keygate(&["create", "--project", "cli-human", "--name", "human", "--role", "writer"]);
    assert!(output.status.success());
    let text = stdout(&output);
    let key_lines: Vec<&str> = text.lines().filter(|l| l.contains("kg_live_") && !l.contains('…')).collect();
    assert_eq!(key_lines.len(), 1, "the plaintext key is printed exactly once:\n{text}");
    assert!(!String::from_utf8_lossy(&output.stderr).contains("kg_live_"), "never on stderr");
    let table = stdout(&keygate(&["list", "--project", "cli-human"]));
    assert!(table.lines().next().unwrap_or("").contains("ID"), "{table}");
    assert!(table.contains("human") && table.contains("writer"), "{table}");
}

#[test]
fn api_errors_exit_1_with_the_code_and_fields() {
    let output = keygate(&["create", "--project", "cli", "--name", "x", "--role", "wizard"]);
    assert_eq!(output.status.code(), Some(1));
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(err.contains("VALIDATION_FAILED") && err.contains("role"), "{err}");
    let missing = keygate(&["show", "key_doesnotexist"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("NOT_FOUND"));
    let wrong_token = Command::new(common::bin("keygate"))
        .args(["keys", "list", "--project", "cli"])
        .env("KEYGATE_URL", &gateway().url)
        .env("KEYGATE_ADMIN_TOKEN", "not-the-admin-token-at-all")
        .output()
        .unwrap();
    assert_eq!(wrong_token.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&wrong_token.stderr).contains("UNAUTHORIZED"));
}

#[test]
fn unreachable_gateway_exits_3() {
    let port = common::free_port();
    let output = Command::new(common::bin("keygate"))
        .args(["keys", "list", "--project", "cli"])
        .env("KEYGATE_URL", format!("http://127.0.0.1:{port}"))
        .env("KEYGATE_ADMIN_TOKEN", ADMIN_TOKEN)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(3));
}

/// `keygate` without the gateway: `--version` and `completions` need no admin API.
fn keygate_offline(args: &[&str]) -> Output {
    Command::new(common::bin("keygate")).args(args).output().expect("run keygate")
}

/// keygate-cli's version as Cargo gives it to clap: its own, or the workspace's.
fn cli_crate_version() -> String {
    let read = |path: &str| -> toml::Table { std::fs::read_to_string(common::repo_root().join(path)).expect(path).parse().expect("toml") };
    let cli = read("crates/cli/Cargo.toml");
    match &cli["package"]["version"] {
        toml::Value::String(version) => version.clone(),
        _ => read("Cargo.toml")["workspace"]["package"]["version"].as_str().expect("workspace version").to_string(),
    }
}

#[test]
fn version_prints_the_cli_crate_version() {
    let output = keygate_offline(&["--version"]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(stdout(&output), format!("keygate {}\n", cli_crate_version()));
}

/// Every command a completion must offer.
const COMMANDS: [&str; 13] =
    ["keys", "profile-vars", "completions", "create", "list", "show", "update", "enable", "disable", "revoke", "roll", "audit", "usage"];

#[test]
fn completion_scripts_offer_every_command() {
    for shell in ["bash", "zsh", "fish"] {
        let output = keygate_offline(&["completions", shell]);
        assert!(output.status.success(), "{shell}: {}", String::from_utf8_lossy(&output.stderr));
        let script = stdout(&output);
        assert!(script.len() > 500, "{shell}: {script}");
        for command in COMMANDS {
            assert!(script.contains(command), "{shell}: the script never mentions {command}");
        }
    }
    let unknown = keygate_offline(&["completions", "tcsh"]);
    assert_eq!(unknown.status.code(), Some(2), "an unsupported shell is a usage error");
}

#[test]
fn bash_completion_parses_and_completes_commands() {
    let dir = tempfile::tempdir().expect("tempdir");
    let script = dir.path().join("keygate.bash");
    std::fs::write(&script, keygate_offline(&["completions", "bash"]).stdout).expect("write script");
    let check = Command::new("bash").arg("-n").arg(&script).output().expect("run bash -n");
    assert!(check.status.success(), "bash -n: {}", String::from_utf8_lossy(&check.stderr));
    // As bash calls a completion function: the words so far, the index of the current one.
    let complete = |words: &str, current: usize| -> String {
        let program = format!(
            "source '{}'; COMP_WORDS=({words}); COMP_CWORD={current}; _keygate keygate \"${{COMP_WORDS[{current}]}}\" \"${{COMP_WORDS[{}]}}\"; echo \"${{COMPREPLY[*]}}\"",
            script.display(),
            current - 1
        );
        let output = Command::new("bash").arg("-c").arg(program).output().expect("run bash");
        assert!(output.status.success(), "{words}: {}", String::from_utf8_lossy(&output.stderr));
        stdout(&output).trim().to_string()
    };
    assert_eq!(complete("keygate k", 1), "keys");
    assert_eq!(complete("keygate keys r", 2), "revoke roll");
}
