//! Scopes, wildcards and roles.
//!
//! A scope is `resource:action` (e.g. `content:read`). A key is granted the union of its role's
//! scopes and its explicit scopes. Grants may use wildcards: `content:*` covers every action on
//! `content`, `*` covers everything. A requirement is always a concrete scope. Deny by default:
//! a key with no role and no scopes is granted nothing, unless the deployment says such a key
//! has full access ([`EmptyScopes::All`], the Octopost seed): then it holds every scope of the
//! configured catalogue (`SCOPES`), listed one by one.
//!
//! The seven roles of the Octavia seed are built in as scope bundles and can be overridden or
//! extended through config (`ROLES`).

use std::collections::BTreeMap;

/// Every concrete scope keygate knows by default (config `SCOPES` may replace the list).
pub const DEFAULT_SCOPES: &[&str] = &[
    "content:read",
    "content:write",
    "content:publish",
    "content:delete",
    "media:read",
    "media:write",
    "media:delete",
    "taxonomy:read",
    "taxonomy:write",
    "translations:read",
    "translations:write",
    "team:read",
    "team:write",
    "settings:read",
    "settings:write",
    "billing:read",
    "billing:write",
    "keys:read",
    "keys:write",
];

/// Built-in roles (Octavia seed), smallest first in spirit: pick the least that works.
pub const BUILTIN_ROLES: &[(&str, &[&str])] = &[
    ("super_admin", &["*"]),
    ("admin", &["content:*", "media:*", "taxonomy:*", "translations:*", "team:*", "settings:read"]),
    ("managing_editor", &["content:*", "media:*", "taxonomy:*", "translations:*"]),
    ("publisher", &["content:read", "content:publish", "media:read", "taxonomy:read", "translations:*"]),
    ("editor", &["content:read", "content:write", "media:read", "media:write", "taxonomy:read", "translations:*"]),
    ("writer", &["content:read", "content:write", "media:read", "media:write"]),
    ("read_only", &["content:read", "media:read", "taxonomy:read", "translations:read"]),
];

/// Whether `text` is a syntactically valid grant: `*`, `resource:*` or `resource:action`,
/// each part 1–32 chars of lowercase letters, digits, `_` or `-`.
pub fn is_valid_grant(text: &str) -> bool {
    if text == "*" {
        return true;
    }
    let Some((resource, action)) = text.split_once(':') else {
        return false;
    };
    is_valid_part(resource) && (action == "*" || is_valid_part(action))
}

/// Whether `text` is a concrete scope (no wildcard), as route requirements must be.
pub fn is_valid_requirement(text: &str) -> bool {
    is_valid_grant(text) && !text.contains('*')
}

fn is_valid_part(part: &str) -> bool {
    (1..=32).contains(&part.len()) && part.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

/// Whether one granted scope (possibly a wildcard) covers a concrete required scope.
pub fn grant_covers(granted: &str, required: &str) -> bool {
    if granted == "*" || granted == required {
        return true;
    }
    match (granted.strip_suffix(":*"), required.split_once(':')) {
        (Some(resource), Some((required_resource, _))) => resource == required_resource,
        _ => false,
    }
}

/// What a key with neither role nor scopes holds (`EMPTY_SCOPES`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EmptyScopes {
    /// Nothing (default): deny by default.
    #[default]
    None,
    /// Every scope of the catalogue (`SCOPES`).
    All,
}

/// The scopes a key holds: for a key with neither role nor scopes, `empty_grant` (empty, or the
/// catalogue under [`EmptyScopes::All`]); otherwise its [`effective_scopes`]. An unknown role is
/// not "no role": it still holds nothing.
pub fn granted_scopes(roles: &Roles, role: Option<&str>, explicit: &[String], empty_grant: &[String]) -> Vec<String> {
    if role.is_none() && explicit.is_empty() {
        return empty_grant.to_vec();
    }
    effective_scopes(roles, role, explicit)
}

/// Role name → granted scopes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Roles {
    by_name: BTreeMap<String, Vec<String>>,
}

impl Default for Roles {
    fn default() -> Self {
        Roles::builtin()
    }
}

impl Roles {
    /// The seven built-in roles.
    pub fn builtin() -> Roles {
        // `insert`, not `collect`: a collected `BTreeMap` sorts first (wasm size).
        let mut by_name = BTreeMap::new();
        for (name, scopes) in BUILTIN_ROLES {
            by_name.insert(name.to_string(), scopes.iter().map(|s| s.to_string()).collect());
        }
        Roles { by_name }
    }

    /// Built-ins with `overrides` replacing or adding roles.
    pub fn with_overrides(overrides: BTreeMap<String, Vec<String>>) -> Result<Roles, String> {
        Roles::builtin().extended(overrides)
    }

    /// Exactly `roles`, no built-in left over (a product with its own role set).
    pub fn only(roles: BTreeMap<String, Vec<String>>) -> Result<Roles, String> {
        Roles { by_name: BTreeMap::new() }.extended(roles)
    }

    /// Every role with the grants it carries.
    pub fn grants(&self) -> impl Iterator<Item = (&str, &[String])> {
        self.by_name.iter().map(|(name, scopes)| (name.as_str(), scopes.as_slice()))
    }

    fn extended(mut self, overrides: BTreeMap<String, Vec<String>>) -> Result<Roles, String> {
        for (name, scopes) in overrides {
            if !is_valid_part(&name) {
                return Err(format!("role name {name:?} must be 1-32 chars of a-z, 0-9, _ or -"));
            }
            if let Some(bad) = scopes.iter().find(|s| !is_valid_grant(s)) {
                return Err(format!("role {name:?} has invalid scope {bad:?}"));
            }
            self.by_name.insert(name, scopes);
        }
        Ok(self)
    }

    /// Scopes of a role, or `None` for an unknown role.
    pub fn scopes_of(&self, role: &str) -> Option<&[String]> {
        self.by_name.get(role).map(Vec::as_slice)
    }

    /// Role names, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.by_name.keys().map(String::as_str)
    }
}

/// The effective grant of a key: its role's scopes plus its explicit scopes, deduplicated in
/// order. An unknown role contributes nothing (deny by default).
pub fn effective_scopes(roles: &Roles, role: Option<&str>, explicit: &[String]) -> Vec<String> {
    let from_role = role.and_then(|r| roles.scopes_of(r)).unwrap_or(&[]);
    let mut out: Vec<String> = Vec::with_capacity(from_role.len() + explicit.len());
    for scope in from_role.iter().chain(explicit) {
        if !out.contains(scope) {
            out.push(scope.clone());
        }
    }
    out
}

/// The required scopes that `granted` does not cover (empty = allowed).
pub fn missing_scopes<'r>(granted: &[String], required: &'r [String]) -> Vec<&'r str> {
    required.iter().filter(|need| !granted.iter().any(|have| grant_covers(have, need))).map(String::as_str).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn grant_matching_table() {
        let rows = [
            ("exact match", "content:read", "content:read", true),
            ("other action", "content:read", "content:write", false),
            ("resource wildcard", "content:*", "content:write", true),
            ("wildcard is per resource", "content:*", "media:read", false),
            ("global wildcard", "*", "billing:write", true),
            ("prefix is not a wildcard", "content", "content:read", false),
            ("no partial resource match", "cont:*", "content:read", false),
            ("read does not imply write", "media:read", "media:write", false),
        ];
        for (what, granted, required, expected) in rows {
            assert_eq!(grant_covers(granted, required), expected, "{what}");
        }
    }

    #[test]
    fn read_only_role_can_read_content_and_media_but_not_write() {
        let roles = Roles::builtin();
        let scopes = effective_scopes(&roles, Some("read_only"), &[]);
        assert!(missing_scopes(&scopes, &strings(&["content:read", "media:read"])).is_empty());
        assert_eq!(missing_scopes(&scopes, &strings(&["content:write"])), vec!["content:write"]);
    }

    #[test]
    fn builtin_roles_are_the_seven_of_the_seed() {
        let roles = Roles::builtin();
        let names: Vec<&str> = roles.names().collect();
        assert_eq!(names, ["admin", "editor", "managing_editor", "publisher", "read_only", "super_admin", "writer"]);
        for (name, scopes) in BUILTIN_ROLES {
            assert!(scopes.iter().all(|s| is_valid_grant(s)), "{name}");
        }
    }

    #[test]
    fn role_capabilities_follow_the_seed_table() {
        let roles = Roles::builtin();
        let can = |role: &str, scope: &str| missing_scopes(&effective_scopes(&roles, Some(role), &[]), &strings(&[scope])).is_empty();
        // (role, scope, allowed) — one row per sentence of the seed's role table.
        let rows = [
            ("super_admin", "billing:write", true),
            ("super_admin", "keys:write", true),
            ("admin", "content:publish", true),
            ("admin", "team:write", true),
            ("admin", "billing:write", false),
            ("admin", "keys:write", false),
            ("managing_editor", "content:publish", true),
            ("managing_editor", "team:write", false),
            ("publisher", "content:publish", true),
            ("publisher", "content:write", false),
            ("editor", "content:write", true),
            ("editor", "content:publish", false),
            ("writer", "content:write", true),
            ("writer", "content:delete", false),
            ("writer", "content:publish", false),
            ("read_only", "content:read", true),
            ("read_only", "media:write", false),
        ];
        for (role, scope, allowed) in rows {
            assert_eq!(can(role, scope), allowed, "{role} {scope}");
        }
    }

    #[test]
    fn no_role_and_no_scopes_is_denied() {
        let roles = Roles::builtin();
        let scopes = effective_scopes(&roles, None, &[]);
        assert_eq!(missing_scopes(&scopes, &strings(&["content:read"])), vec!["content:read"]);
        let unknown = effective_scopes(&roles, Some("wizard"), &[]);
        assert!(unknown.is_empty());
    }

    #[test]
    fn a_key_without_permissions_holds_the_empty_grant() {
        let roles = Roles::builtin();
        let catalogue = strings(&["content:read", "billing:write"]);
        // (what, role, explicit, empty grant, expected)
        let rows: Vec<(&str, Option<&str>, Vec<String>, &[String], Vec<String>)> = vec![
            ("none: nothing", None, vec![], &[], vec![]),
            ("all: the catalogue", None, vec![], &catalogue, catalogue.clone()),
            ("all: a role is not widened", Some("read_only"), vec![], &catalogue, effective_scopes(&roles, Some("read_only"), &[])),
            ("all: explicit scopes are not widened", None, strings(&["media:read"]), &catalogue, strings(&["media:read"])),
            ("all: an unknown role still holds nothing", Some("wizard"), vec![], &catalogue, vec![]),
        ];
        for (what, role, explicit, empty_grant, expected) in rows {
            assert_eq!(granted_scopes(&roles, role, &explicit, empty_grant), expected, "{what}");
        }
    }

    #[test]
    fn explicit_scopes_add_to_the_role_without_duplicates() {
        let roles = Roles::builtin();
        let scopes = effective_scopes(&roles, Some("writer"), &strings(&["content:read", "billing:read"]));
        assert_eq!(scopes, strings(&["content:read", "content:write", "media:read", "media:write", "billing:read"]));
    }

    #[test]
    fn overrides_replace_and_add_roles_and_are_validated() {
        let mut overrides = BTreeMap::new();
        overrides.insert("read_only".to_string(), strings(&["content:read"]));
        overrides.insert("analytics".to_string(), strings(&["analytics:read"]));
        let roles = Roles::with_overrides(overrides).unwrap();
        assert_eq!(roles.scopes_of("read_only").unwrap(), strings(&["content:read"]).as_slice());
        assert!(roles.scopes_of("analytics").is_some());
        let mut bad = BTreeMap::new();
        bad.insert("x".to_string(), strings(&["Content Read"]));
        assert!(Roles::with_overrides(bad).is_err());
    }

    #[test]
    fn grant_syntax() {
        for (text, grant, requirement) in [
            ("*", true, false),
            ("content:*", true, false),
            ("content:read", true, true),
            ("Content:read", false, false),
            ("content:", false, false),
            (":read", false, false),
            ("content:read:more", false, false),
            ("*:read", false, false),
        ] {
            assert_eq!(is_valid_grant(text), grant, "{text}");
            assert_eq!(is_valid_requirement(text), requirement, "{text}");
        }
    }
}
