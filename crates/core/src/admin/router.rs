//! Admin routes: which paths are the admin API's, and method and path (after the admin prefix)
//! → operation. Unknown → `NOT_FOUND`.

use crate::config::{AdminFacade, Config};

/// One admin operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminRoute {
    /// `POST /keys`
    CreateKey,
    /// `GET /keys`
    ListKeys,
    /// `GET /keys/{id}`
    GetKey(String),
    /// `PATCH /keys/{id}`
    UpdateKey(String),
    /// `DELETE /keys/{id}`
    RevokeKey(String),
    /// `POST /keys/{id}/roll`
    RollKey(String),
    /// `GET /keys/{id}/audit`
    KeyAudit(String),
    /// `GET /keys/{id}/usage`
    KeyUsage(String),
    /// `POST /keys/{id}/credits`: add to or set the key's credits balance
    KeyCredits(String),
    /// `GET /keys/{id}/webhooks`: the key's webhook delivery log
    KeyWebhooks(String),
    /// `GET /catalogue`: key prefix, envs, roles, scopes and tiers of the active configuration
    Catalogue,
    /// `GET /openapi.json`
    OpenApi,
    /// `POST /leaks/github`: a GitHub secret-scanning report, authenticated by GitHub's
    /// signature instead of the admin token ([`crate::leak`]), when `LEAK_REPORTS=on`.
    GithubLeakReport,
}

/// Every (method, path template) the admin API serves, for docs and the OpenAPI coverage test.
pub const ROUTES: &[(&str, &str)] = &[
    ("POST", "/keys"),
    ("GET", "/keys"),
    ("GET", "/keys/{id}"),
    ("PATCH", "/keys/{id}"),
    ("DELETE", "/keys/{id}"),
    ("POST", "/keys/{id}/roll"),
    ("GET", "/keys/{id}/audit"),
    ("GET", "/keys/{id}/usage"),
    ("POST", "/keys/{id}/credits"),
    ("GET", "/keys/{id}/webhooks"),
    ("GET", "/catalogue"),
    ("GET", "/openapi.json"),
    ("POST", "/leaks/github"),
];

/// The path (after the admin prefix) of [`AdminRoute::GithubLeakReport`].
pub const GITHUB_LEAK_REPORT_PATH: &str = "/leaks/github";

/// Whether `id` looks like a key id (`key_` + 1–32 ASCII alphanumerics).
pub fn is_key_id(id: &str) -> bool {
    id.strip_prefix("key_").is_some_and(|rest| (1..=32).contains(&rest.len()) && rest.bytes().all(|b| b.is_ascii_alphanumeric()))
}

/// The path relative to the native admin API's `prefix` (`ADMIN_PREFIX`, no trailing `/`), when
/// `path` is under it: the prefix itself or the prefix followed by `/`.
pub fn native_path<'a>(prefix: &str, path: &'a str) -> Option<&'a str> {
    path.strip_prefix(prefix).filter(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// Whether a request path is the admin API's (the native API, or the configured facade): such a
/// path is answered by the admin API, never forwarded to the origin.
pub fn is_admin_path(config: &Config, path: &str) -> bool {
    native_path(&config.admin_prefix, path).is_some()
        || (config.admin_facade == AdminFacade::Atlas && crate::admin::facade::is_facade_path(path))
}

/// Routes `method` + `path` (relative to the admin prefix, without query).
pub fn route(method: &str, path: &str) -> Option<AdminRoute> {
    let segments: Vec<&str> = path.strip_prefix('/')?.split('/').collect();
    let id = |s: &str| is_key_id(s).then(|| s.to_string());
    match (method, segments.as_slice()) {
        ("POST", ["keys"]) => Some(AdminRoute::CreateKey),
        ("GET" | "HEAD", ["keys"]) => Some(AdminRoute::ListKeys),
        ("GET" | "HEAD", ["keys", key]) => id(key).map(AdminRoute::GetKey),
        ("PATCH", ["keys", key]) => id(key).map(AdminRoute::UpdateKey),
        ("DELETE", ["keys", key]) => id(key).map(AdminRoute::RevokeKey),
        ("POST", ["keys", key, "roll"]) => id(key).map(AdminRoute::RollKey),
        ("GET" | "HEAD", ["keys", key, "audit"]) => id(key).map(AdminRoute::KeyAudit),
        ("GET" | "HEAD", ["keys", key, "usage"]) => id(key).map(AdminRoute::KeyUsage),
        ("POST", ["keys", key, "credits"]) => id(key).map(AdminRoute::KeyCredits),
        ("GET" | "HEAD", ["keys", key, "webhooks"]) => id(key).map(AdminRoute::KeyWebhooks),
        ("GET" | "HEAD", ["catalogue"]) => Some(AdminRoute::Catalogue),
        ("GET" | "HEAD", ["openapi.json"]) => Some(AdminRoute::OpenApi),
        ("POST", ["leaks", "github"]) => Some(AdminRoute::GithubLeakReport),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routing_table() {
        let id = || "key_abc123".to_string();
        let rows = [
            ("POST", "/keys", Some(AdminRoute::CreateKey)),
            ("GET", "/keys", Some(AdminRoute::ListKeys)),
            ("GET", "/keys/key_abc123", Some(AdminRoute::GetKey(id()))),
            ("PATCH", "/keys/key_abc123", Some(AdminRoute::UpdateKey(id()))),
            ("DELETE", "/keys/key_abc123", Some(AdminRoute::RevokeKey(id()))),
            ("POST", "/keys/key_abc123/roll", Some(AdminRoute::RollKey(id()))),
            ("GET", "/keys/key_abc123/audit", Some(AdminRoute::KeyAudit(id()))),
            ("GET", "/keys/key_abc123/usage", Some(AdminRoute::KeyUsage(id()))),
            ("POST", "/keys/key_abc123/credits", Some(AdminRoute::KeyCredits(id()))),
            ("GET", "/keys/key_abc123/credits", None),
            ("GET", "/keys/key_abc123/webhooks", Some(AdminRoute::KeyWebhooks(id()))),
            ("POST", "/keys/key_abc123/webhooks", None),
            ("GET", "/catalogue", Some(AdminRoute::Catalogue)),
            ("GET", "/openapi.json", Some(AdminRoute::OpenApi)),
            ("POST", "/leaks/github", Some(AdminRoute::GithubLeakReport)),
            ("GET", "/leaks/github", None),
            ("POST", "/leaks/github/", None),
            ("POST", "/catalogue", None),
            ("GET", "/console", None),
            ("PUT", "/keys/key_abc123", None),
            ("GET", "/keys/not-an-id", None),
            ("GET", "/keys/key_", None),
            ("GET", "/keys/key_abc123/", None),
            ("POST", "/keys/key_abc123/audit", None),
            ("GET", "/", None),
            ("GET", "", None),
            ("GET", "/keys/key_a%2Fb", None),
        ];
        for (method, path, expected) in rows {
            assert_eq!(route(method, path), expected, "{method} {path}");
        }
    }

    #[test]
    fn native_paths_are_the_prefix_and_below() {
        let rows = [
            ("/_keygate/v1", Some("")),
            ("/_keygate/v1/", Some("/")),
            ("/_keygate/v1/keys", Some("/keys")),
            ("/_keygate/v1keys", None),
            ("/_keygate/v2/keys", None),
            ("/_keygate", None),
            ("/api/_keygate/v1/keys", None),
        ];
        for (path, expected) in rows {
            assert_eq!(native_path("/_keygate/v1", path), expected, "{path}");
        }
    }

    #[test]
    fn the_facade_is_admin_only_when_configured() {
        let vars = |name: &str| match name {
            "ORIGIN_URL" => Some("http://127.0.0.1:8788/".to_string()),
            "ORIGIN_SIGNING_SECRET" => Some("0123456789abcdef0123".to_string()),
            _ => None,
        };
        let mut config = Config::from_lookup(vars).unwrap();
        assert!(is_admin_path(&config, &format!("{}/keys", config.admin_prefix)));
        assert!(!is_admin_path(&config, "/acme/admin/api-keys"), "no facade by default");
        assert!(!is_admin_path(&config, "/content/posts"));
        config.admin_facade = AdminFacade::Atlas;
        assert!(is_admin_path(&config, "/acme/admin/api-keys"));
        assert!(is_admin_path(&config, "/acme/admin/api-keys/key_a"));
        assert!(!is_admin_path(&config, "/content/posts"));
    }

    #[test]
    fn every_listed_route_is_routable() {
        for (method, template) in ROUTES {
            let path = template.replace("{id}", "key_x1");
            assert!(route(method, &path).is_some(), "{method} {template}");
        }
    }
}
