//! The route table: which methods and paths keygate forwards, and what scopes each needs.
//!
//! Patterns are `/`-separated segments: a literal, `:name` (exactly one non-empty segment), or a
//! final `*` (one or more remaining segments). Matching is on the raw (still percent-encoded)
//! path, after [`check_canonical`] has refused anything that could mean a different path to
//! the origin than to the table: empty segments (`//`), dot segments (also `%2e`-encoded),
//! and encoded slashes or backslashes. Unmatched → `ROUTE_NOT_FOUND` (deny by default), or,
//! under [`Unmatched::Auth`], 401 or 403 depending on the key; never forwarded either way.

use serde::Deserialize;

use crate::config::ConfigError;
use crate::key::KeyEnv;
use crate::scope::is_valid_requirement;

/// The largest credits cost a route may have.
pub const MAX_COST: u64 = 1_000_000;

/// One route as written in config (`ROUTES`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteSpec {
    /// HTTP methods (`GET`, `HEAD`, …) or `["*"]` for any.
    pub methods: Vec<String>,
    /// Path pattern, e.g. `/v1/public/cms/:type/items/*`.
    pub path: String,
    /// Scopes a key must hold (all of them).
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Name of a path parameter that must equal the key's project.
    #[serde(default)]
    pub project_param: Option<String>,
    /// Key environments allowed on this route (e.g. `["live"]`); absent = both.
    #[serde(default)]
    pub envs: Option<Vec<KeyEnv>>,
    /// Credits a request of this route spends from a key with credits (0..=1000000; absent = 1).
    #[serde(default)]
    pub cost: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Param(String),
    Rest,
}

/// A validated route.
#[derive(Debug, Clone)]
pub struct Route {
    methods: Vec<String>,
    segments: Vec<Segment>,
    /// The pattern as configured (for logs and docs).
    pub pattern: String,
    /// Required scopes.
    pub scopes: Vec<String>,
    /// Path parameter holding the project, if any.
    pub project_param: Option<String>,
    /// Allowed key environments (`None` = both).
    pub envs: Option<Vec<KeyEnv>>,
    /// Credits a request spends from a key with credits.
    pub cost: u64,
}

/// A matched route with its captured parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteMatch<'t> {
    /// Required scopes.
    pub scopes: &'t [String],
    /// The project named in the path, when the route has a project parameter.
    pub project: Option<String>,
    /// The pattern that matched.
    pub pattern: &'t str,
    /// Key environments allowed on the route (`None` = both).
    pub envs: Option<&'t [KeyEnv]>,
    /// Credits a request spends from a key with credits.
    pub cost: u64,
}

/// The whole table; first match wins.
#[derive(Debug, Clone, Default)]
pub struct RouteTable {
    routes: Vec<Route>,
}

impl RouteTable {
    /// Validates and compiles route specs.
    pub fn compile(specs: Vec<RouteSpec>) -> Result<RouteTable, String> {
        let routes = specs.into_iter().enumerate().map(|(i, spec)| compile_route(spec).map_err(|e| format!("route {i}: {e}")));
        Ok(RouteTable { routes: routes.collect::<Result<_, _>>()? })
    }

    /// Parses the JSON form of `ROUTES`.
    pub fn from_json(text: &str) -> Result<RouteTable, String> {
        let specs: Vec<RouteSpec> = crate::json::parse(text).map_err(|e| e.to_string())?;
        RouteTable::compile(specs)
    }

    /// Number of routes.
    pub fn len(&self) -> usize {
        self.routes.len()
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }

    /// Every route with the scopes it requires, in table order.
    pub fn required_scopes(&self) -> impl Iterator<Item = (&str, &[String])> {
        self.routes.iter().map(|route| (route.pattern.as_str(), route.scopes.as_slice()))
    }

    /// Finds the first route matching `method` and `path` (the path must already be canonical).
    pub fn find(&self, method: &str, path: &str) -> Option<RouteMatch<'_>> {
        let segments: Vec<&str> = path.strip_prefix('/')?.split('/').collect();
        self.routes.iter().find_map(|route| {
            if !route.methods.iter().any(|m| m == "*" || m == method) {
                return None;
            }
            let params = match_segments(&route.segments, &segments)?;
            let project = route
                .project_param
                .as_ref()
                .and_then(|name| params.iter().find(|(param, _)| param == name).map(|(_, value)| value.to_string()));
            Some(RouteMatch { scopes: &route.scopes, project, pattern: &route.pattern, envs: route.envs.as_deref(), cost: route.cost })
        })
    }
}

fn compile_route(spec: RouteSpec) -> Result<Route, String> {
    if spec.methods.is_empty() {
        return Err("methods must not be empty".into());
    }
    let methods = spec.methods.iter().map(|m| m.trim().to_ascii_uppercase()).collect::<Vec<_>>();
    if let Some(bad) = methods.iter().find(|m| *m != "*" && (m.is_empty() || !m.bytes().all(|b| b.is_ascii_uppercase()))) {
        return Err(format!("invalid method {bad:?}"));
    }
    let Some(body) = spec.path.strip_prefix('/') else {
        return Err(format!("path {:?} must start with '/'", spec.path));
    };
    let raw: Vec<&str> = body.split('/').collect();
    let mut segments = Vec::with_capacity(raw.len());
    for (i, part) in raw.iter().enumerate() {
        let segment = if *part == "*" {
            if i + 1 != raw.len() {
                return Err("'*' is only allowed as the last segment".into());
            }
            Segment::Rest
        } else if let Some(name) = part.strip_prefix(':') {
            if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                return Err(format!("invalid parameter {part:?}"));
            }
            Segment::Param(name.to_string())
        } else {
            if part.is_empty() || part.contains(['*', ':', '%', '?', '#']) || *part == "." || *part == ".." {
                return Err(format!("invalid literal segment {part:?} in {:?}", spec.path));
            }
            Segment::Literal(part.to_string())
        };
        segments.push(segment);
    }
    if let Some(bad) = spec.scopes.iter().find(|s| !is_valid_requirement(s)) {
        return Err(format!("invalid required scope {bad:?}"));
    }
    if let Some(param) = &spec.project_param {
        if !segments.contains(&Segment::Param(param.clone())) {
            return Err(format!("project_param {param:?} is not a parameter of {:?}", spec.path));
        }
    }
    if spec.envs.as_ref().is_some_and(Vec::is_empty) {
        return Err("envs must name at least one environment (or be left out)".into());
    }
    let cost = spec.cost.unwrap_or(1);
    if cost > MAX_COST {
        return Err(format!("cost {cost} must be 0..{MAX_COST}"));
    }
    Ok(Route { methods, segments, pattern: spec.path, scopes: spec.scopes, project_param: spec.project_param, envs: spec.envs, cost })
}

fn match_segments<'p>(pattern: &[Segment], path: &[&'p str]) -> Option<Vec<(String, &'p str)>> {
    let mut params = Vec::new();
    for (i, segment) in pattern.iter().enumerate() {
        match segment {
            Segment::Rest => {
                let rest = &path[i.min(path.len())..];
                return (!rest.is_empty() && rest.iter().all(|s| !s.is_empty())).then_some(params);
            }
            Segment::Literal(literal) => {
                if path.get(i) != Some(&literal.as_str()) {
                    return None;
                }
            }
            Segment::Param(name) => {
                let value = path.get(i).filter(|v| !v.is_empty())?;
                params.push((name.clone(), *value));
            }
        }
    }
    (path.len() == pattern.len()).then_some(params)
}

/// Refuses paths that could be read differently by the origin than by the route table.
/// Returns the reason for a `BAD_REQUEST`.
pub fn check_canonical(path: &str) -> Result<(), &'static str> {
    if !path.starts_with('/') {
        return Err("path must start with '/'");
    }
    let lower = path.to_ascii_lowercase();
    if lower.contains("%2f") || lower.contains("%5c") || path.contains('\\') {
        return Err("encoded slashes and backslashes are not allowed in the path");
    }
    if lower.contains("%00") {
        return Err("NUL is not allowed in the path");
    }
    let segments: Vec<&str> = lower[1..].split('/').collect();
    let last = segments.len() - 1;
    for (i, segment) in segments.iter().enumerate() {
        if segment.is_empty() && i != last {
            return Err("empty path segments ('//') are not allowed");
        }
        let decoded = segment.replace("%2e", ".");
        if decoded == "." || decoded == ".." {
            return Err("dot segments are not allowed in the path");
        }
    }
    Ok(())
}

/// Refuses a `GET` or `HEAD` request that carries a body: the Fetch standard (and so the
/// runtime) cannot forward one, and it is the client's mistake, not an origin outage. Returns
/// the reason for a `BAD_REQUEST`.
pub fn check_body(method: &str, has_body: bool) -> Result<(), &'static str> {
    match method {
        "GET" | "HEAD" if has_body => Err("a GET or HEAD request cannot have a body"),
        _ => Ok(()),
    }
}

/// What a request that matches no route (or matches a path with another method) gets
/// (`UNMATCHED`, `PROTECTED_PREFIXES`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Unmatched {
    /// 404 `ROUTE_NOT_FOUND`, decided before the key is looked up (default).
    #[default]
    NotFound,
    /// Under a protected prefix: the key is looked up and checked like any other (missing or not
    /// valid → its 401), and a valid key gets 403 `ROUTE_NOT_ALLOWED`, so the answer does not
    /// tell a path that exists from one that does not. Outside every prefix: 404 as by default.
    Auth {
        /// `PROTECTED_PREFIXES`, without trailing `/`; `None` = every path.
        protected_prefixes: Option<Vec<String>>,
    },
}

impl Unmatched {
    /// Parses `UNMATCHED` and `PROTECTED_PREFIXES` (`get` returns a trimmed, non-empty value or
    /// `None`). Prefixes without `UNMATCHED=auth` would do nothing, so they are refused.
    pub fn from_settings(get: &dyn Fn(&str) -> Option<String>) -> Result<Unmatched, ConfigError> {
        let err = |setting: &'static str, problem: String| ConfigError { setting, problem };
        let prefixes = match get("PROTECTED_PREFIXES") {
            None => None,
            Some(text) => {
                let list: Vec<String> =
                    crate::json::parse(&text).map_err(|e| err("PROTECTED_PREFIXES", format!("must be a JSON list of paths: {e}")))?;
                if list.is_empty() {
                    return Err(err("PROTECTED_PREFIXES", "must name at least one prefix (unset it to protect every path)".into()));
                }
                let mut trimmed = Vec::with_capacity(list.len());
                for prefix in list {
                    if check_canonical(&prefix).is_err() || prefix.contains(['?', '#', '*', ':', ' ']) {
                        return Err(err("PROTECTED_PREFIXES", format!("{prefix:?} must be a canonical absolute path like /v1")));
                    }
                    trimmed.push(prefix.trim_end_matches('/').to_string());
                }
                Some(trimmed)
            }
        };
        match get("UNMATCHED").as_deref() {
            None | Some("not_found") if prefixes.is_some() => Err(err("PROTECTED_PREFIXES", "has no effect unless UNMATCHED=auth".into())),
            None | Some("not_found") => Ok(Unmatched::NotFound),
            Some("auth") => Ok(Unmatched::Auth { protected_prefixes: prefixes }),
            Some(_) => Err(err("UNMATCHED", "must be not_found or auth".into())),
        }
    }

    /// Whether an unmatched request for `path` is answered from its key (401/403) rather than 404.
    pub fn answers_with_auth(&self, path: &str) -> bool {
        match self {
            Unmatched::NotFound => false,
            Unmatched::Auth { protected_prefixes: None } => true,
            // Whole segments only: `/v1` protects `/v1` and `/v1/x`, not `/v10`. (`/` trims to ``.)
            Unmatched::Auth { protected_prefixes: Some(prefixes) } => {
                prefixes.iter().any(|p| path.strip_prefix(p.as_str()).is_some_and(|rest| rest.is_empty() || rest.starts_with('/')))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn get_and_head_cannot_carry_a_body() {
        let rows = [
            ("GET with body", "GET", true, false),
            ("HEAD with body", "HEAD", true, false),
            ("GET without body", "GET", false, true),
            ("POST with body", "POST", true, true),
            ("DELETE with body", "DELETE", true, true),
            ("OPTIONS with body", "OPTIONS", true, true),
        ];
        for (what, method, has_body, allowed) in rows {
            assert_eq!(check_body(method, has_body).is_ok(), allowed, "{what}");
        }
    }

    #[test]
    fn a_route_costs_one_credit_unless_it_says_otherwise() {
        let table = RouteTable::from_json(
            r#"[{"methods":["GET"],"path":"/a"},{"methods":["GET"],"path":"/b","cost":3},{"methods":["GET"],"path":"/c","cost":0}]"#,
        )
        .unwrap();
        let costs: Vec<u64> = ["/a", "/b", "/c"].iter().map(|path| table.find("GET", path).unwrap().cost).collect();
        assert_eq!(costs, [1, 3, 0]);
        assert!(RouteTable::from_json(r#"[{"methods":["GET"],"path":"/a","cost":1000001}]"#).unwrap_err().contains("cost"));
        assert!(RouteTable::from_json(r#"[{"methods":["GET"],"path":"/a","cost":-1}]"#).is_err());
    }

    const SHIPPED: &str = r#"[
        {"methods":["GET","HEAD"],"path":"/v1/public/cms/:type/items","scopes":["content:read"]},
        {"methods":["GET","HEAD"],"path":"/v1/public/cms/:type/items/*","scopes":["content:read"]},
        {"methods":["POST"],"path":"/v1/cms/:type/items","scopes":["content:write"]},
        {"methods":["GET","HEAD"],"path":"/v1/projects/:project/public/cms/:type/items","scopes":["content:read"],"project_param":"project"}
    ]"#;

    #[test]
    fn matching_table() {
        let table = RouteTable::from_json(SHIPPED).unwrap();
        let rows = [
            ("list", "GET", "/v1/public/cms/articles/items", Some("/v1/public/cms/:type/items")),
            ("head list", "HEAD", "/v1/public/cms/articles/items", Some("/v1/public/cms/:type/items")),
            ("item", "GET", "/v1/public/cms/articles/items/42", Some("/v1/public/cms/:type/items/*")),
            ("deep item", "GET", "/v1/public/cms/pages/items/42/media/1", Some("/v1/public/cms/:type/items/*")),
            ("wrong method", "DELETE", "/v1/public/cms/articles/items", None),
            ("write", "POST", "/v1/cms/articles/items", Some("/v1/cms/:type/items")),
            ("read route via POST", "POST", "/v1/public/cms/articles/items", None),
            ("empty param", "GET", "/v1/public/cms//items", None),
            ("star needs a segment", "GET", "/v1/public/cms/articles/items/", None),
            ("trailing slash", "GET", "/v1/public/cms/articles/items/x/", None),
            ("too long", "POST", "/v1/cms/articles/items/1", None),
            ("too short", "GET", "/v1/public/cms/articles", None),
            ("literal is case sensitive", "GET", "/V1/public/cms/articles/items", None),
            ("lowercase method", "get", "/v1/public/cms/articles/items", None),
            ("unknown path", "GET", "/admin", None),
            ("root", "GET", "/", None),
        ];
        for (what, method, path, expected) in rows {
            assert_eq!(table.find(method, path).map(|m| m.pattern), expected, "{what}");
        }
    }

    #[test]
    fn project_param_is_captured() {
        let table = RouteTable::from_json(SHIPPED).unwrap();
        let found = table.find("GET", "/v1/projects/acme/public/cms/articles/items").unwrap();
        assert_eq!(found.project.as_deref(), Some("acme"));
        assert_eq!(found.scopes, ["content:read".to_string()]);
        assert_eq!(table.find("GET", "/v1/public/cms/articles/items").unwrap().project, None);
    }

    #[test]
    fn env_restriction_is_carried_to_the_match() {
        let table =
            RouteTable::from_json(r#"[{"methods":["GET"],"path":"/live/*","envs":["live"]},{"methods":["GET"],"path":"/any"}]"#).unwrap();
        assert_eq!(table.find("GET", "/live/x").unwrap().envs, Some(&[KeyEnv::Live][..]));
        assert_eq!(table.find("GET", "/any").unwrap().envs, None);
        assert!(RouteTable::from_json(r#"[{"methods":["GET"],"path":"/x","envs":[]}]"#).is_err());
        assert!(RouteTable::from_json(r#"[{"methods":["GET"],"path":"/x","envs":["prod"]}]"#).is_err());
    }

    #[test]
    fn any_method_route() {
        let table = RouteTable::from_json(r#"[{"methods":["*"],"path":"/echo/*","scopes":[]}]"#).unwrap();
        assert!(table.find("PATCH", "/echo/a").is_some());
        assert!(table.find("PATCH", "/echo").is_none());
    }

    #[test]
    fn invalid_specs_are_refused() {
        let rows = [
            ("no leading slash", r#"[{"methods":["GET"],"path":"v1/x"}]"#),
            ("star not last", r#"[{"methods":["GET"],"path":"/v1/*/x"}]"#),
            ("empty param", r#"[{"methods":["GET"],"path":"/v1/:"}]"#),
            ("empty segment", r#"[{"methods":["GET"],"path":"/v1//x"}]"#),
            ("no methods", r#"[{"methods":[],"path":"/v1"}]"#),
            ("bad method", r#"[{"methods":["G ET"],"path":"/v1"}]"#),
            ("wildcard requirement", r#"[{"methods":["GET"],"path":"/v1","scopes":["content:*"]}]"#),
            ("unknown project param", r#"[{"methods":["GET"],"path":"/v1/:p","project_param":"project"}]"#),
            ("unknown field", r#"[{"methods":["GET"],"path":"/v1","scope":["content:read"]}]"#),
            ("not a list", r#"{"methods":["GET"]}"#),
            ("dot segment", r#"[{"methods":["GET"],"path":"/v1/../x"}]"#),
        ];
        for (what, json) in rows {
            assert!(RouteTable::from_json(json).is_err(), "{what}");
        }
    }

    #[test]
    fn canonical_path_table() {
        let rows = [
            ("plain", "/v1/public/cms/articles/items", true),
            ("trailing slash is allowed (and then unmatched)", "/v1/items/", true),
            ("encoded char", "/v1/public/cms/caf%C3%A9/items", true),
            ("dots inside a name", "/v1/a..b/items", true),
            ("double slash", "/v1//items", false),
            ("leading double slash", "//v1/items", false),
            ("dot dot", "/v1/../admin", false),
            ("single dot", "/v1/./items", false),
            ("encoded dot dot", "/v1/%2e%2e/admin", false),
            ("mixed encoded dot", "/v1/.%2E/admin", false),
            ("encoded slash", "/v1/a%2Fb/items", false),
            ("encoded backslash", "/v1/a%5cb", false),
            ("backslash", "/v1/a\\b", false),
            ("nul", "/v1/a%00", false),
            ("relative", "v1/items", false),
        ];
        for (what, path, ok) in rows {
            assert_eq!(check_canonical(path).is_ok(), ok, "{what}");
        }
    }

    #[test]
    fn unmatched_requests_are_answered_as_configured() {
        let parse = |unmatched: Option<&str>, prefixes: Option<&str>| {
            Unmatched::from_settings(&|name| match name {
                "UNMATCHED" => unmatched.map(String::from),
                "PROTECTED_PREFIXES" => prefixes.map(String::from),
                _ => None,
            })
        };
        // (what, UNMATCHED, PROTECTED_PREFIXES, path, answered from the key)
        let rows = [
            ("default: 404", None, None, "/v1/cms/x", false),
            ("explicit not_found", Some("not_found"), None, "/v1/cms/x", false),
            ("auth, every path", Some("auth"), None, "/anything", true),
            ("auth, under a prefix", Some("auth"), Some(r#"["/v1"]"#), "/v1/cms/x", true),
            ("auth, the prefix itself", Some("auth"), Some(r#"["/v1/"]"#), "/v1", true),
            ("auth, whole segments only", Some("auth"), Some(r#"["/v1"]"#), "/v10/x", false),
            ("auth, outside every prefix", Some("auth"), Some(r#"["/v1", "/v2"]"#), "/health", false),
            ("auth, root protects all", Some("auth"), Some(r#"["/"]"#), "/health", true),
        ];
        for (what, unmatched, prefixes, path, expected) in rows {
            assert_eq!(parse(unmatched, prefixes).unwrap().answers_with_auth(path), expected, "{what}");
        }
        let invalid = [
            ("unknown value", Some("401"), None, "UNMATCHED"),
            ("prefixes without auth", None, Some(r#"["/v1"]"#), "PROTECTED_PREFIXES"),
            ("prefixes not a list", Some("auth"), Some("/v1"), "PROTECTED_PREFIXES"),
            ("empty list", Some("auth"), Some("[]"), "PROTECTED_PREFIXES"),
            ("relative prefix", Some("auth"), Some(r#"["v1"]"#), "PROTECTED_PREFIXES"),
            ("dot segment", Some("auth"), Some(r#"["/v1/../admin"]"#), "PROTECTED_PREFIXES"),
            ("pattern, not a prefix", Some("auth"), Some(r#"["/v1/:type"]"#), "PROTECTED_PREFIXES"),
        ];
        for (what, unmatched, prefixes, setting) in invalid {
            assert_eq!(parse(unmatched, prefixes).unwrap_err().setting, setting, "{what}");
        }
    }
}
