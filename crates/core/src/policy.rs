//! Record checks: given a record and the facts of a request, grant or refuse. Pure.
//!
//! Order (cheap and most specific first): status (revoked, inactive) → validity window →
//! scopes → project → `Origin`. The glue fetched the record; no storage handle reaches here.

use crate::error::GatewayError;
use crate::key::KeyEnv;
use crate::record::{KeyRecord, Status};
use crate::routes::RouteMatch;
use crate::scope::{granted_scopes, missing_scopes, Roles};

/// What the request says about itself, beyond the key.
#[derive(Debug, Clone)]
pub struct RequestFacts<'a> {
    /// The environment encoded in the presented key.
    pub key_env: KeyEnv,
    /// The matched route.
    pub route: &'a RouteMatch<'a>,
    /// The `Origin` header, if any.
    pub origin: Option<&'a str>,
}

/// Identity that passes to the origin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// Key record id.
    pub key_id: String,
    /// Project the key is bound to.
    pub project: String,
    /// Key environment.
    pub env: KeyEnv,
    /// Effective scopes (role + explicit).
    pub scopes: Vec<String>,
}

/// Decides whether `record` may make this request at `now_ms` (unix millis). A key with neither
/// role nor scopes holds `empty_grant` ([`crate::config::Config::empty_grant`]).
pub fn authorize(
    record: &KeyRecord,
    facts: &RequestFacts<'_>,
    roles: &Roles,
    empty_grant: &[String],
    now_ms: i64,
) -> Result<Grant, GatewayError> {
    check_standing(record, facts.key_env, now_ms)?;
    if facts.route.envs.is_some_and(|envs| !envs.contains(&record.env)) {
        return Err(GatewayError::EnvironmentMismatch);
    }
    let scopes = granted_scopes(roles, record.role.as_deref(), &record.scopes, empty_grant);
    let missing = missing_scopes(&scopes, facts.route.scopes);
    if !missing.is_empty() {
        return Err(GatewayError::InsufficientScope { missing: missing.into_iter().map(String::from).collect() });
    }
    if facts.route.project.as_deref().is_some_and(|project| project != record.project) {
        return Err(GatewayError::ProjectMismatch);
    }
    if let Some(allowed) = &record.allowed_origins {
        let ok = facts.origin.is_some_and(|origin| allowed.iter().any(|a| a.eq_ignore_ascii_case(origin)));
        if !ok {
            return Err(GatewayError::OriginNotAllowed);
        }
    }
    Ok(Grant { key_id: record.id.clone(), project: record.project.clone(), env: record.env, scopes })
}

/// Whether the key itself is good now, whatever the request: record env, status, validity
/// window. (Also what decides 401 or 403 for an unmatched request under `UNMATCHED=auth`.)
pub fn check_standing(record: &KeyRecord, key_env: KeyEnv, now_ms: i64) -> Result<(), GatewayError> {
    // The hash covers the env segment, so a mismatch means a corrupted or hand-edited record.
    if record.env != key_env {
        return Err(GatewayError::InvalidKey { reason: None });
    }
    match record.status {
        Status::Revoked => return Err(GatewayError::KeyRevoked),
        Status::Inactive => return Err(GatewayError::KeyDisabled),
        Status::Active => {}
    }
    if record.valid_from.is_some_and(|from| now_ms < from.millis()) {
        return Err(GatewayError::KeyNotYetValid);
    }
    if record.valid_to.is_some_and(|to| now_ms >= to.millis()) {
        return Err(GatewayError::KeyExpired);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::timestamp::Timestamp;

    const NOW: i64 = 1_800_000_000_000;

    fn record() -> KeyRecord {
        KeyRecord {
            id: "key_1".into(),
            project: "acme".into(),
            name: "site".into(),
            env: KeyEnv::Live,
            role: Some("read_only".into()),
            scopes: vec![],
            status: Status::Active,
            valid_from: None,
            valid_to: None,
            allowed_origins: None,
            allowed_networks: Vec::new(),
            allowed_countries: Vec::new(),
            created_at: Timestamp(0),
            updated_at: Timestamp(0),
            revision: 1,
            meta: Default::default(),
            hint: None,
            family: None,
            rolled_from: None,
            tier: None,
            limits: None,
            limit_mode: None,
            credits: None,
        }
    }

    fn check(record: &KeyRecord, scopes: &[&str], project: Option<&str>, origin: Option<&str>) -> Result<Grant, GatewayError> {
        let scopes: Vec<String> = scopes.iter().map(|s| s.to_string()).collect();
        let route = RouteMatch { scopes: &scopes, project: project.map(String::from), pattern: "/x", envs: None, cost: 1 };
        let facts = RequestFacts { key_env: KeyEnv::Live, route: &route, origin };
        authorize(record, &facts, &Roles::builtin(), &[], NOW)
    }

    #[test]
    fn decision_table() {
        let base = record();
        let with = |f: &dyn Fn(&mut KeyRecord)| {
            let mut r = base.clone();
            f(&mut r);
            r
        };
        let rows: Vec<(&str, KeyRecord, &[&str], Option<&str>, Option<&str>, Result<(), &str>)> = vec![
            ("active read_only reads", base.clone(), &["content:read"], None, None, Ok(())),
            ("revoked", with(&|r| r.status = Status::Revoked), &["content:read"], None, None, Err("KEY_REVOKED")),
            ("inactive", with(&|r| r.status = Status::Inactive), &["content:read"], None, None, Err("KEY_DISABLED")),
            (
                "revoked beats expired",
                with(&|r| {
                    r.status = Status::Revoked;
                    r.valid_to = Some(Timestamp(0))
                }),
                &[],
                None,
                None,
                Err("KEY_REVOKED"),
            ),
            ("not yet valid", with(&|r| r.valid_from = Some(Timestamp(NOW + 1))), &[], None, None, Err("KEY_NOT_YET_VALID")),
            ("valid from now", with(&|r| r.valid_from = Some(Timestamp(NOW))), &[], None, None, Ok(())),
            ("expired at the instant", with(&|r| r.valid_to = Some(Timestamp(NOW))), &[], None, None, Err("KEY_EXPIRED")),
            ("valid until later", with(&|r| r.valid_to = Some(Timestamp(NOW + 1))), &[], None, None, Ok(())),
            ("missing scope", base.clone(), &["content:write"], None, None, Err("INSUFFICIENT_SCOPE")),
            ("no role no scopes", with(&|r| r.role = None), &["content:read"], None, None, Err("INSUFFICIENT_SCOPE")),
            (
                "explicit scope",
                with(&|r| {
                    r.role = None;
                    r.scopes = vec!["content:write".into()]
                }),
                &["content:write"],
                None,
                None,
                Ok(()),
            ),
            (
                "wildcard scope",
                with(&|r| {
                    r.role = None;
                    r.scopes = vec!["content:*".into()]
                }),
                &["content:write"],
                None,
                None,
                Ok(()),
            ),
            ("same project", base.clone(), &["content:read"], Some("acme"), None, Ok(())),
            ("other project", base.clone(), &["content:read"], Some("globex"), None, Err("PROJECT_MISMATCH")),
            ("scope checked before project", base.clone(), &["content:write"], Some("globex"), None, Err("INSUFFICIENT_SCOPE")),
            (
                "origin allowed",
                with(&|r| r.allowed_origins = Some(vec!["https://acme.example".into()])),
                &[],
                None,
                Some("https://acme.example"),
                Ok(()),
            ),
            (
                "origin case-insensitive",
                with(&|r| r.allowed_origins = Some(vec!["https://acme.example".into()])),
                &[],
                None,
                Some("HTTPS://ACME.EXAMPLE"),
                Ok(()),
            ),
            (
                "origin refused",
                with(&|r| r.allowed_origins = Some(vec!["https://acme.example".into()])),
                &[],
                None,
                Some("https://evil.example"),
                Err("ORIGIN_NOT_ALLOWED"),
            ),
            (
                "origin required when list set",
                with(&|r| r.allowed_origins = Some(vec!["https://acme.example".into()])),
                &[],
                None,
                None,
                Err("ORIGIN_NOT_ALLOWED"),
            ),
            (
                "empty list allows no origin",
                with(&|r| r.allowed_origins = Some(vec![])),
                &[],
                None,
                Some("https://acme.example"),
                Err("ORIGIN_NOT_ALLOWED"),
            ),
            ("env mismatch is invalid", with(&|r| r.env = KeyEnv::Test), &[], None, None, Err("INVALID_KEY")),
        ];
        for (what, record, scopes, project, origin, expected) in rows {
            let got = check(&record, scopes, project, origin);
            match expected {
                Ok(()) => assert!(got.is_ok(), "{what}: {got:?}"),
                Err(code) => assert_eq!(got.unwrap_err().code(), code, "{what}"),
            }
        }
    }

    #[test]
    fn test_key_on_a_live_only_route_is_an_environment_mismatch() {
        let mut record = record();
        record.env = KeyEnv::Test;
        let scopes = vec!["content:read".to_string()];
        let live_only = [KeyEnv::Live];
        let route = RouteMatch { scopes: &scopes, project: None, pattern: "/x", envs: Some(&live_only), cost: 1 };
        let facts = RequestFacts { key_env: KeyEnv::Test, route: &route, origin: None };
        assert_eq!(authorize(&record, &facts, &Roles::builtin(), &[], NOW).unwrap_err().code(), "ENVIRONMENT_MISMATCH");
        let both = RouteMatch { envs: None, ..route.clone() };
        let facts = RequestFacts { key_env: KeyEnv::Test, route: &both, origin: None };
        assert!(authorize(&record, &facts, &Roles::builtin(), &[], NOW).is_ok());
    }

    #[test]
    fn a_key_without_permissions_holds_the_empty_grant() {
        let mut bare = record();
        bare.role = None;
        let scopes = vec!["billing:write".to_string()];
        let route = RouteMatch { scopes: &scopes, project: None, pattern: "/x", envs: None, cost: 1 };
        let facts = RequestFacts { key_env: KeyEnv::Live, route: &route, origin: None };
        assert_eq!(authorize(&bare, &facts, &Roles::builtin(), &[], NOW).unwrap_err().code(), "INSUFFICIENT_SCOPE", "EMPTY_SCOPES=none");
        let catalogue = vec!["content:read".to_string(), "billing:write".to_string()];
        let grant = authorize(&bare, &facts, &Roles::builtin(), &catalogue, NOW).unwrap();
        assert_eq!(grant.scopes, catalogue, "EMPTY_SCOPES=all: the catalogue, listed");
        bare.status = Status::Revoked;
        assert_eq!(
            authorize(&bare, &facts, &Roles::builtin(), &catalogue, NOW).unwrap_err().code(),
            "KEY_REVOKED",
            "full access is not standing"
        );
        let outside = vec!["reports:read".to_string()];
        let route = RouteMatch { scopes: &outside, ..route.clone() };
        let facts = RequestFacts { key_env: KeyEnv::Live, route: &route, origin: None };
        bare.status = Status::Active;
        assert_eq!(
            authorize(&bare, &facts, &Roles::builtin(), &catalogue, NOW).unwrap_err().code(),
            "INSUFFICIENT_SCOPE",
            "only the catalogue"
        );
    }

    #[test]
    fn grant_carries_identity_and_effective_scopes() {
        let grant = check(&record(), &["content:read"], None, None).unwrap();
        assert_eq!(grant.key_id, "key_1");
        assert_eq!(grant.project, "acme");
        assert_eq!(grant.env, KeyEnv::Live);
        assert!(grant.scopes.contains(&"media:read".to_string()));
    }
}
