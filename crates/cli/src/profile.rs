//! Seed profiles: `profiles/<name>.toml` holds a `[vars]` table that is laid over
//! `wrangler.toml`'s `[vars]` (each setting it names replaces the base one; the rest stay), and
//! optionally a `[demo]` table saying which demo keys `make dev` makes for it (read by
//! `keygate-demo`).
//! `keygate profile-vars NAME` prints them as `NAME:VALUE` lines, the form `wrangler dev --var`
//! takes: strings as they are, every other TOML value (lists, tables) as compact JSON, which
//! keygate's config reads the same way.

use std::path::Path;

/// Profile names: lowercase letters, digits and `-`, 1–32 characters (they name files).
pub fn is_valid_name(name: &str) -> bool {
    (1..=32).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// The settings of profile `name` under `root/profiles/`, in file order.
pub fn vars(root: &Path, name: &str) -> Result<Vec<(String, String)>, String> {
    let (text, path) = read(root, name)?;
    parse(&text).map_err(|e| format!("profile {name:?} ({path}): {e}"))
}

/// The text of `root/profiles/<name>.toml` and its path (for messages).
pub fn read(root: &Path, name: &str) -> Result<(String, String), String> {
    if !is_valid_name(name) {
        return Err(format!("profile name {name:?} must be 1-32 characters of a-z, 0-9 or -"));
    }
    let path = root.join("profiles").join(format!("{name}.toml"));
    let text = std::fs::read_to_string(&path).map_err(|e| format!("profile {name:?}: cannot read {}: {e}", path.display()))?;
    Ok((text, path.display().to_string()))
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
