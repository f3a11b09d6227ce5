//! Seed profiles: `profiles/<name>.toml` holds a `[vars]` table that is laid over
//! `wrangler.toml`'s `[vars]` (each setting it names replaces the base one; the rest stay), and
//! optionally a `[demo]` table saying which demo keys `make dev` makes for it ([`demo`]).
//! `keygate profile-vars NAME` prints them as `NAME:VALUE` lines, the form `wrangler dev --var`
//! takes: strings as they are, every other TOML value (lists, tables) as compact JSON, which
//! keygate's config reads the same way.

use std::path::Path;

use crate::demo_keys::{Grant, Plan};

/// Profile names: lowercase letters, digits and `-`, 1–32 characters (they name files).
pub fn is_valid_name(name: &str) -> bool {
    (1..=32).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// The settings of profile `name` under `root/profiles/`, in file order.
pub fn vars(root: &Path, name: &str) -> Result<Vec<(String, String)>, String> {
    let (text, path) = read(root, name)?;
    parse(&text).map_err(|e| format!("profile {name:?} ({path}): {e}"))
}

fn read(root: &Path, name: &str) -> Result<(String, String), String> {
    if !is_valid_name(name) {
        return Err(format!("profile name {name:?} must be 1-32 characters of a-z, 0-9 or -"));
    }
    let path = root.join("profiles").join(format!("{name}.toml"));
    let text = std::fs::read_to_string(&path).map_err(|e| format!("profile {name:?}: cannot read {}: {e}", path.display()))?;
    Ok((text, path.display().to_string()))
}

/// The demo keys of profile `name`: its `[demo]` table, or the shipped set when it has none.
///
/// ```toml
/// [demo]
/// path = "/v1/posts"                      # the curl example
/// test_env = true                         # whether the key format mints test keys
/// keys = [ { name = "reader", scopes = ["posts:read"] }, { name = "admin", role = "admin" } ]
/// read = "reader"                         # the key whose grant the refusal examples get
/// ```
///
/// Without `keys` (and `read`), the shipped set: one key per built-in role, `read_only` for the
/// refusal examples.
/// ```toml
/// ```
pub fn demo(root: &Path, name: &str) -> Result<Plan, String> {
    let (text, path) = read(root, name)?;
    parse_demo(&text).map_err(|e| format!("profile {name:?} ({path}): [demo]: {e}"))
}

fn parse_demo(text: &str) -> Result<Plan, String> {
    let table: toml::Table = text.parse().map_err(|e: toml::de::Error| e.message().to_string())?;
    let Some(demo) = table.get("demo") else { return Ok(Plan::default()) };
    let demo = demo.as_table().ok_or("must be a table")?;
    let path = demo.get("path").and_then(toml::Value::as_str).ok_or("path (a string) is required")?.to_string();
    let test_env = match demo.get("test_env") {
        None => true,
        Some(value) => value.as_bool().ok_or("test_env must be true or false")?,
    };
    let Some(keys) = demo.get("keys") else {
        // No keys named: the shipped set (one per built-in role) with this profile's path.
        return Ok(Plan { test_env, path, ..Plan::default() });
    };
    let mut grants = Vec::new();
    for key in keys.as_array().ok_or("keys must be a list")? {
        let name = key.get("name").and_then(toml::Value::as_str).ok_or("every key needs a name")?.to_string();
        let grant = match (key.get("role").and_then(toml::Value::as_str), key.get("scopes").and_then(toml::Value::as_array)) {
            (Some(role), None) => Grant::Role(role.to_string()),
            (None, Some(scopes)) => {
                Grant::Scopes(scopes.iter().map(|s| s.as_str().map(String::from).ok_or("scopes are strings")).collect::<Result<_, _>>()?)
            }
            _ => return Err(format!("key {name:?}: give a role or scopes (one of them)")),
        };
        grants.push((name, grant));
    }
    let read_name = demo.get("read").and_then(toml::Value::as_str).ok_or("read (the name of one of keys) is required")?.to_string();
    let read = grants
        .iter()
        .find(|(name, _)| *name == read_name)
        .map(|(_, grant)| grant.clone())
        .ok_or(format!("read {read_name:?} names none of keys"))?;
    Ok(Plan { grants, read, read_name, test_env, path })
}

/// The `[vars]` of a profile file as `(name, value)` pairs.
pub fn parse(text: &str) -> Result<Vec<(String, String)>, String> {
    let table: toml::Table = text.parse().map_err(|e: toml::de::Error| e.message().to_string())?;
    if let Some(other) = table.keys().find(|k| *k != "vars" && *k != "demo") {
        return Err(format!("only [vars] and [demo] tables may be set, not {other:?}"));
    }
    let Some(vars) = table.get("vars") else { return Err("no [vars] table".into()) };
    let vars = vars.as_table().ok_or("vars must be a table")?;
    vars.iter()
        .map(|(name, value)| {
            let text = match value {
                toml::Value::String(text) => text.clone(),
                other => serde_json::to_string(other).map_err(|e| format!("{name}: {e}"))?,
            };
            if text.contains(['\n', '\r']) {
                return Err(format!("{name}: values are one line (they are passed as wrangler dev --var)"));
            }
            Ok((name.clone(), text))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vars_become_strings_or_compact_json() {
        let vars = parse(
            "[vars]\nKEY_PREFIX = \"optimo\"\nCACHE_TTL_SECONDS = 5\nSCOPES = [\"a:read\"]\n[[vars.ROUTES]]\nmethods = [\"GET\"]\npath = \"/v1/x\"\nscopes = [\"a:read\"]\n",
        )
        .unwrap();
        let get = |name: &str| vars.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str());
        assert_eq!(get("KEY_PREFIX"), Some("optimo"));
        assert_eq!(get("CACHE_TTL_SECONDS"), Some("5"));
        assert_eq!(get("SCOPES"), Some(r#"["a:read"]"#));
        assert_eq!(get("ROUTES"), Some(r#"[{"methods":["GET"],"path":"/v1/x","scopes":["a:read"]}]"#));
    }

    #[test]
    fn a_demo_table_names_the_demo_keys() {
        let plan = parse_demo("[vars]\nA = \"1\"\n[demo]\npath = \"/v1/posts\"\ntest_env = false\nread = \"reader\"\nkeys = [{ name = \"reader\", scopes = [\"posts:read\"] }, { name = \"all\", scopes = [] }, { name = \"boss\", role = \"admin\" }]\n").unwrap();
        assert_eq!(plan.path, "/v1/posts");
        assert!(!plan.test_env);
        assert_eq!(plan.read, Grant::Scopes(vec!["posts:read".into()]));
        assert_eq!(plan.grants[2], ("boss".into(), Grant::Role("admin".into())));
        assert_eq!(parse_demo("[vars]\nA = \"1\"\n").unwrap(), Plan::default(), "no [demo]: the shipped set");
        assert_eq!(
            parse_demo("[demo]\npath = \"/v1/articles\"\n").unwrap(),
            Plan { path: "/v1/articles".into(), ..Plan::default() },
            "no keys: the built-in roles"
        );
        for (what, text) in [
            ("no path", "[demo]\nread = \"a\"\nkeys = [{ name = \"a\", role = \"r\" }]\n"),
            ("read names no key", "[demo]\npath = \"/\"\nread = \"b\"\nkeys = [{ name = \"a\", role = \"r\" }]\n"),
            ("role and scopes", "[demo]\npath = \"/\"\nread = \"a\"\nkeys = [{ name = \"a\", role = \"r\", scopes = [] }]\n"),
        ] {
            assert!(parse_demo(text).is_err(), "{what}");
        }
    }

    #[test]
    fn only_vars_and_one_line_values_and_safe_names() {
        for (what, text) in [
            ("a binding table", "[vars]\nA = \"1\"\n[[kv_namespaces]]\nbinding = \"X\"\n"),
            ("no vars", "name = \"x\"\n"),
            ("a multi-line value", "[vars]\nA = \"\"\"one\ntwo\"\"\"\n"),
            ("not toml", "[vars\n"),
        ] {
            assert!(parse(text).is_err(), "{what}");
        }
        for name in ["../etc", "Optimo", "", "a/b", "opti mo"] {
            assert!(!is_valid_name(name), "{name:?}");
        }
        assert!(is_valid_name("optimo"));
    }
}
