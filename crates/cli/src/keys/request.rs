//! Pure request building: parsed flags → method, path (below the admin prefix, with a
//! percent-encoded query) and JSON body, plus the shape of the expected answer.

use serde_json::{Map, Value};

use super::cli::{CreateArgs, CreditsArgs, CreditsCommand, KeysCommand, LimitArg, ListArgs, RefillArg, UpdateArgs};

/// HTTP methods the admin API uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
    Patch,
    Delete,
}

impl Method {
    /// The method name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
        }
    }
}

/// What a successful answer contains, which decides how it is rendered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// A key record.
    Record,
    /// `{"key", "record"[, "previous"]}`: create and roll.
    Secret,
    /// `{"items": [Record], "cursor"}`.
    Page,
    /// `{"items": [AuditEntry]}`.
    Audit,
    /// `{"key_id", "last_used_at", "days": [{"date", "allowed", "refused"}][, "credits"]}`.
    Usage,
    /// `{"key_id", "remaining"}`: a credits change.
    Credits,
    /// `{"items": [WebhookDelivery]}`.
    Webhooks,
}

/// One admin API call.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiRequest {
    pub method: Method,
    /// Path below the admin prefix, starting with `/`, query included.
    pub path: String,
    /// JSON body (POST and PATCH only).
    pub body: Option<Value>,
    pub expect: Expect,
}

/// Builds the request for a command; `Err` is a usage problem (exit code 2). For `list --all`
/// this is the first page; later pages come from [`list`] with the returned cursor.
pub fn build(command: &KeysCommand) -> Result<ApiRequest, String> {
    match command {
        KeysCommand::Create(args) => create(args),
        KeysCommand::List(args) => Ok(list(args, args.cursor.as_deref())),
        KeysCommand::Show(arg) => Ok(get(key_path(&arg.id)?, Expect::Record)),
        KeysCommand::Update(args) => update(args),
        KeysCommand::Enable(arg) => status_change(&arg.id, "active"),
        KeysCommand::Disable(arg) => status_change(&arg.id, "inactive"),
        KeysCommand::Revoke(arg) => Ok(ApiRequest { method: Method::Delete, path: key_path(&arg.id)?, body: None, expect: Expect::Record }),
        KeysCommand::Roll(args) => {
            let mut body = Map::new();
            match (args.grace_after_new_use, args.grace_max) {
                (Some(after), Some(max)) => {
                    let mut grace = Map::new();
                    grace.insert("after_new_used_seconds".into(), Value::from(after));
                    if let Some(unused) = args.grace_old_unused {
                        grace.insert("old_unused_seconds".into(), Value::from(unused));
                    }
                    grace.insert("max_seconds".into(), Value::from(max));
                    body.insert("grace".into(), Value::Object(grace));
                }
                _ => {
                    body.insert("grace_seconds".into(), Value::from(args.grace_seconds));
                }
            }
            Ok(ApiRequest {
                method: Method::Post,
                path: format!("{}/roll", key_path(&args.id)?),
                body: Some(Value::Object(body)),
                expect: Expect::Secret,
            })
        }
        KeysCommand::Audit(arg) => Ok(get(format!("{}/audit", key_path(&arg.id)?), Expect::Audit)),
        KeysCommand::Usage(arg) => usage(&arg.id),
        KeysCommand::Credits(CreditsCommand::Add(args)) => credits(args, "add"),
        KeysCommand::Credits(CreditsCommand::Set(args)) => credits(args, "set"),
        KeysCommand::Webhooks(arg) => Ok(get(format!("{}/webhooks", key_path(&arg.id)?), Expect::Webhooks)),
    }
}

/// `POST /keys/<id>/credits {"op", "amount"}`.
fn credits(args: &CreditsArgs, op: &str) -> Result<ApiRequest, String> {
    if op == "set" && args.amount < 0 {
        return Err(format!("credits set takes 0 or more, not {}", args.amount));
    }
    let mut body = Map::new();
    body.insert("op".into(), Value::from(op));
    body.insert("amount".into(), Value::from(args.amount));
    Ok(ApiRequest {
        method: Method::Post,
        path: format!("{}/credits", key_path(&args.id)?),
        body: Some(Value::Object(body)),
        expect: Expect::Credits,
    })
}

/// A `credits` object: `{"refill": …}` and, for a create, `"remaining"`.
fn credits_object(remaining: Option<u64>, refill: Option<RefillArg>) -> Value {
    let mut object = Map::new();
    if let Some(remaining) = remaining {
        object.insert("remaining".into(), Value::from(remaining));
    }
    let refill = refill.map_or(Value::Null, |r| {
        let mut refill = Map::new();
        refill.insert("amount".into(), Value::from(r.amount));
        refill.insert("interval".into(), Value::from(r.interval));
        refill.insert("mode".into(), Value::from(r.mode));
        Value::Object(refill)
    });
    object.insert("refill".into(), refill);
    Value::Object(object)
}

/// `GET /keys/<id>/usage` (the `usage` command, and the second request of `show`).
pub fn usage(id: &str) -> Result<ApiRequest, String> {
    Ok(get(format!("{}/usage", key_path(id)?), Expect::Usage))
}

fn get(path: String, expect: Expect) -> ApiRequest {
    ApiRequest { method: Method::Get, path, body: None, expect }
}

/// `GET /keys?project=…[&status=…][&cursor=…][&limit=…]`.
pub fn list(args: &ListArgs, cursor: Option<&str>) -> ApiRequest {
    let mut query = vec![("project", args.project.clone())];
    if let Some(status) = args.status {
        query.push(("status", status.as_str().to_string()));
    }
    if let Some(cursor) = cursor {
        query.push(("cursor", cursor.to_string()));
    }
    if let Some(limit) = args.limit {
        query.push(("limit", limit.to_string()));
    }
    let query: Vec<String> = query.iter().map(|(name, value)| format!("{name}={}", encode_component(value))).collect();
    get(format!("/keys?{}", query.join("&")), Expect::Page)
}

fn create(args: &CreateArgs) -> Result<ApiRequest, String> {
    let mut body = Map::new();
    body.insert("project".into(), Value::from(args.project.as_str()));
    body.insert("name".into(), Value::from(args.name.as_str()));
    if let Some(env) = args.env {
        body.insert("env".into(), Value::from(env.as_str()));
    }
    if let Some(role) = &args.role {
        body.insert("role".into(), Value::from(role.as_str()));
    }
    if !args.scopes.is_empty() {
        body.insert("scopes".into(), strings(&args.scopes));
    }
    if let Some(from) = &args.valid_from {
        body.insert("valid_from".into(), Value::from(from.as_str()));
    }
    if let Some(to) = &args.valid_to {
        body.insert("valid_to".into(), Value::from(to.as_str()));
    }
    if !args.allowed_origins.is_empty() {
        body.insert("allowed_origins".into(), strings(&args.allowed_origins));
    }
    if !args.allowed_networks.is_empty() {
        body.insert("allowed_networks".into(), strings(&args.allowed_networks));
    }
    if !args.allowed_countries.is_empty() {
        body.insert("allowed_countries".into(), strings(&args.allowed_countries));
    }
    if !args.meta.is_empty() {
        body.insert("meta".into(), meta_object(&args.meta)?);
    }
    if let Some(tier) = &args.tier {
        body.insert("tier".into(), Value::from(tier.as_str()));
    }
    if !args.limits.is_empty() {
        body.insert("limits".into(), limits_list(&args.limits)?);
    }
    if let Some(mode) = args.limit_mode {
        body.insert("limit_mode".into(), Value::from(mode.as_str()));
    }
    if args.credits.is_some() || args.credits_refill.is_some() {
        body.insert("credits".into(), credits_object(args.credits, args.credits_refill));
    }
    Ok(ApiRequest { method: Method::Post, path: "/keys".into(), body: Some(Value::Object(body)), expect: Expect::Secret })
}

fn update(args: &UpdateArgs) -> Result<ApiRequest, String> {
    let mut body = Map::new();
    if let Some(name) = &args.name {
        body.insert("name".into(), Value::from(name.as_str()));
    }
    if let Some(role) = &args.role {
        body.insert("role".into(), Value::from(role.as_str()));
    } else if args.no_role {
        body.insert("role".into(), Value::Null);
    }
    if !args.scopes.is_empty() {
        body.insert("scopes".into(), strings(&args.scopes));
    } else if args.clear_scopes {
        body.insert("scopes".into(), Value::Array(Vec::new()));
    }
    if let Some(from) = &args.valid_from {
        body.insert("valid_from".into(), Value::from(from.as_str()));
    } else if args.clear_valid_from {
        body.insert("valid_from".into(), Value::Null);
    }
    if let Some(to) = &args.valid_to {
        body.insert("valid_to".into(), Value::from(to.as_str()));
    } else if args.lifetime {
        body.insert("valid_to".into(), Value::Null);
    }
    if !args.allowed_origins.is_empty() {
        body.insert("allowed_origins".into(), strings(&args.allowed_origins));
    } else if args.any_origin {
        body.insert("allowed_origins".into(), Value::Null);
    }
    if !args.allowed_networks.is_empty() {
        body.insert("allowed_networks".into(), strings(&args.allowed_networks));
    } else if args.clear_networks {
        body.insert("allowed_networks".into(), Value::Array(Vec::new()));
    }
    if !args.allowed_countries.is_empty() {
        body.insert("allowed_countries".into(), strings(&args.allowed_countries));
    } else if args.clear_countries {
        body.insert("allowed_countries".into(), Value::Array(Vec::new()));
    }
    if !args.meta.is_empty() {
        body.insert("meta".into(), meta_object(&args.meta)?);
    }
    if let Some(tier) = &args.tier {
        body.insert("tier".into(), Value::from(tier.as_str()));
    } else if args.no_tier {
        body.insert("tier".into(), Value::Null);
    }
    if !args.limits.is_empty() {
        body.insert("limits".into(), limits_list(&args.limits)?);
    } else if args.clear_limits {
        body.insert("limits".into(), Value::Null);
    }
    if let Some(mode) = args.limit_mode {
        body.insert("limit_mode".into(), Value::from(mode.as_str()));
    } else if args.default_limit_mode {
        body.insert("limit_mode".into(), Value::Null);
    }
    if args.credits_refill.is_some() || args.credits_no_refill {
        body.insert("credits".into(), credits_object(None, args.credits_refill));
    } else if args.no_credits {
        body.insert("credits".into(), Value::Null);
    }
    if body.is_empty() {
        return Err("nothing to update: give at least one of --name, --role, --no-role, --scope, --clear-scopes, \
                    --valid-from, --clear-valid-from, --valid-to, --lifetime, --allowed-origin, --any-origin, --allowed-network, --clear-networks, \
                    --allowed-country, --clear-countries, --meta, \
                    --tier, --no-tier, --limit, --clear-limits, --limit-mode, --default-limit-mode, \
                    --credits-refill, --credits-no-refill, --no-credits"
            .into());
    }
    Ok(ApiRequest { method: Method::Patch, path: key_path(&args.id)?, body: Some(Value::Object(body)), expect: Expect::Record })
}

fn status_change(id: &str, status: &str) -> Result<ApiRequest, String> {
    let mut body = Map::new();
    body.insert("status".into(), Value::from(status));
    Ok(ApiRequest { method: Method::Patch, path: key_path(id)?, body: Some(Value::Object(body)), expect: Expect::Record })
}

fn strings(values: &[String]) -> Value {
    Value::Array(values.iter().map(|v| Value::from(v.as_str())).collect())
}

/// `--meta` entries as a JSON object; a key given twice is a usage error.
fn meta_object(entries: &[(String, String)]) -> Result<Value, String> {
    let mut object = Map::new();
    for (key, value) in entries {
        if object.insert(key.clone(), Value::from(value.as_str())).is_some() {
            return Err(format!("--meta key '{key}' given more than once"));
        }
    }
    Ok(Value::Object(object))
}

/// `--limit` entries as the `limits` list, in the order given; a name given twice is a usage
/// error.
fn limits_list(limits: &[LimitArg]) -> Result<Value, String> {
    let mut out = Vec::with_capacity(limits.len());
    for (i, limit) in limits.iter().enumerate() {
        if limits[..i].iter().any(|l| l.name == limit.name) {
            return Err(format!("--limit name '{}' given more than once", limit.name));
        }
        let mut spec = Map::new();
        spec.insert("name".into(), Value::from(limit.name.as_str()));
        spec.insert("limit".into(), Value::from(limit.limit));
        spec.insert("window_seconds".into(), Value::from(limit.window_seconds));
        out.push(Value::Object(spec));
    }
    Ok(Value::Array(out))
}

/// `/keys/<id>` with the id percent-encoded as one path segment.
fn key_path(id: &str) -> Result<String, String> {
    // "." and ".." would be resolved away as dot segments by URL parsers, even percent-encoded.
    if id.is_empty() || id == "." || id == ".." {
        return Err(format!("invalid key id '{id}'"));
    }
    Ok(format!("/keys/{}", encode_component(id)))
}

/// Percent-encodes everything except RFC 3986 unreserved characters, so the result is safe as
/// a path segment and as a query name or value.
pub fn encode_component(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use clap::Parser;
    use serde_json::json;

    use super::super::cli::KeysArgs;
    use super::*;

    #[derive(Debug, Parser)]
    struct Wrapper {
        #[command(flatten)]
        keys: KeysArgs,
    }

    fn parse(args: &[&str]) -> Result<KeysArgs, clap::Error> {
        let argv = std::iter::once("keys").chain(args.iter().copied()).chain(["--admin-token", "t"]);
        Wrapper::try_parse_from(argv).map(|w| w.keys)
    }

    fn request(args: &[&str]) -> Result<ApiRequest, String> {
        let parsed = parse(args).unwrap_or_else(|e| panic!("{args:?}: {e}"));
        build(&parsed.command)
    }

    #[test]
    #[allow(clippy::type_complexity)] // table rows
    fn flags_map_to_method_path_and_body() {
        let rows: Vec<(&str, Vec<&str>, Method, &str, Option<Value>)> = vec![
            (
                "create minimal",
                vec!["create", "--project", "acme", "--name", "site"],
                Method::Post,
                "/keys",
                Some(json!({"project": "acme", "name": "site"})),
            ),
            (
                "create full",
                vec![
                    "create",
                    "--project",
                    "acme",
                    "--name",
                    "site",
                    "--env",
                    "test",
                    "--role",
                    "read_only",
                    "--scope",
                    "cms:read",
                    "--scope",
                    "cms:*",
                    "--valid-from",
                    "2027-01-01T00:00:00Z",
                    "--valid-to",
                    "2028-01-01T00:00:00+01:00",
                    "--allowed-origin",
                    "https://a.example",
                    "--meta",
                    "team=web",
                    "--meta",
                    "note=a=b",
                    "--meta",
                    "empty=",
                ],
                Method::Post,
                "/keys",
                Some(json!({
                    "project": "acme", "name": "site", "env": "test", "role": "read_only",
                    "scopes": ["cms:read", "cms:*"], "valid_from": "2027-01-01T00:00:00Z",
                    "valid_to": "2028-01-01T00:00:00+01:00", "allowed_origins": ["https://a.example"],
                    "meta": {"team": "web", "note": "a=b", "empty": ""},
                })),
            ),
            ("list", vec!["list", "--project", "acme"], Method::Get, "/keys?project=acme", None),
            (
                "list with everything, encoded",
                vec!["list", "--project", "a b&c", "--status", "revoked", "--limit", "10", "--cursor", "x/y+z=="],
                Method::Get,
                "/keys?project=a%20b%26c&status=revoked&cursor=x%2Fy%2Bz%3D%3D&limit=10",
                None,
            ),
            ("show", vec!["show", "key_abc"], Method::Get, "/keys/key_abc", None),
            ("show encodes the id", vec!["show", "a/b?c"], Method::Get, "/keys/a%2Fb%3Fc", None),
            ("update name", vec!["update", "key_abc", "--name", "new"], Method::Patch, "/keys/key_abc", Some(json!({"name": "new"}))),
            ("update --lifetime", vec!["update", "k", "--lifetime"], Method::Patch, "/keys/k", Some(json!({"valid_to": null}))),
            ("update --no-role", vec!["update", "k", "--no-role"], Method::Patch, "/keys/k", Some(json!({"role": null}))),
            ("update --clear-scopes", vec!["update", "k", "--clear-scopes"], Method::Patch, "/keys/k", Some(json!({"scopes": []}))),
            (
                "update --clear-valid-from --any-origin",
                vec!["update", "k", "--clear-valid-from", "--any-origin"],
                Method::Patch,
                "/keys/k",
                Some(json!({"valid_from": null, "allowed_origins": null})),
            ),
            (
                "update values",
                vec![
                    "update",
                    "k",
                    "--role",
                    "admin",
                    "--scope",
                    "a:b",
                    "--valid-from",
                    "2027-01-01T00:00:00Z",
                    "--valid-to",
                    "2028-01-01T00:00:00Z",
                    "--allowed-origin",
                    "http://x:1",
                    "--allowed-origin",
                    "http://y",
                    "--meta",
                    "a=b",
                ],
                Method::Patch,
                "/keys/k",
                Some(json!({
                    "role": "admin", "scopes": ["a:b"], "valid_from": "2027-01-01T00:00:00Z",
                    "valid_to": "2028-01-01T00:00:00Z", "allowed_origins": ["http://x:1", "http://y"],
                    "meta": {"a": "b"},
                })),
            ),
            (
                "create with networks and countries, both spellings",
                vec![
                    "create",
                    "--project",
                    "acme",
                    "--name",
                    "n",
                    "--role",
                    "reader",
                    "--allowed-network",
                    "203.0.113.0/24",
                    "--allow-network",
                    "2001:db8::/32",
                    "--allow-country",
                    "DE",
                    "--allowed-country",
                    "fr",
                ],
                Method::Post,
                "/keys",
                Some(json!({
                    "project": "acme", "name": "n", "role": "reader",
                    "allowed_networks": ["203.0.113.0/24", "2001:db8::/32"], "allowed_countries": ["DE", "fr"],
                })),
            ),
            (
                "update networks and countries",
                vec!["update", "k", "--allow-network", "10.0.0.0/8", "--allow-country", "DE"],
                Method::Patch,
                "/keys/k",
                Some(json!({"allowed_networks": ["10.0.0.0/8"], "allowed_countries": ["DE"]})),
            ),
            (
                "update --clear-networks --clear-countries",
                vec!["update", "k", "--clear-networks", "--clear-countries"],
                Method::Patch,
                "/keys/k",
                Some(json!({"allowed_networks": [], "allowed_countries": []})),
            ),
            ("enable", vec!["enable", "k"], Method::Patch, "/keys/k", Some(json!({"status": "active"}))),
            ("disable", vec!["disable", "k"], Method::Patch, "/keys/k", Some(json!({"status": "inactive"}))),
            ("revoke", vec!["revoke", "k"], Method::Delete, "/keys/k", None),
            ("roll default grace", vec!["roll", "k"], Method::Post, "/keys/k/roll", Some(json!({"grace_seconds": 0}))),
            (
                "roll with grace",
                vec!["roll", "k", "--grace-seconds", "2592000"],
                Method::Post,
                "/keys/k/roll",
                Some(json!({"grace_seconds": 2_592_000})),
            ),
            (
                "roll with a grace that follows use",
                vec!["roll", "k", "--grace-after-new-use", "600", "--grace-max", "86400"],
                Method::Post,
                "/keys/k/roll",
                Some(json!({"grace": {"after_new_used_seconds": 600, "max_seconds": 86_400}})),
            ),
            (
                "roll with a grace that follows use, old key unused too",
                vec!["roll", "k", "--grace-after-new-use", "600", "--grace-old-unused", "3600", "--grace-max", "86400"],
                Method::Post,
                "/keys/k/roll",
                Some(json!({"grace": {"after_new_used_seconds": 600, "old_unused_seconds": 3600, "max_seconds": 86_400}})),
            ),
            ("audit", vec!["audit", "k"], Method::Get, "/keys/k/audit", None),
            ("usage", vec!["usage", "k"], Method::Get, "/keys/k/usage", None),
            ("webhooks", vec!["webhooks", "k"], Method::Get, "/keys/k/webhooks", None),
            ("usage encodes the id", vec!["usage", "a b/c"], Method::Get, "/keys/a%20b%2Fc/usage", None),
        ];
        for (what, args, method, path, body) in rows {
            let built = request(&args).unwrap_or_else(|e| panic!("{what}: {e}"));
            assert_eq!(built.method, method, "{what}");
            assert_eq!(built.path, path, "{what}");
            assert_eq!(built.body, body, "{what}");
        }
    }

    #[test]
    #[allow(clippy::type_complexity)] // table rows
    fn limit_flags_map_to_the_body() {
        let create = ["create", "--project", "p", "--name", "n"];
        let rows: Vec<(&str, Vec<&str>, Value)> = vec![
            ("create --tier", [&create[..], &["--tier", "pro"]].concat(), json!({"project": "p", "name": "n", "tier": "pro"})),
            (
                "create --limit (order kept)",
                [&create[..], &["--limit", "minute=600/60", "--limit", "burst=50/1"]].concat(),
                json!({"project": "p", "name": "n", "limits": [
                    {"name": "minute", "limit": 600, "window_seconds": 60},
                    {"name": "burst", "limit": 50, "window_seconds": 1},
                ]}),
            ),
            (
                "create --limit-mode exact",
                [&create[..], &["--limit-mode", "exact"]].concat(),
                json!({"project": "p", "name": "n", "limit_mode": "exact"}),
            ),
            (
                "create all three",
                [&create[..], &["--tier", "free", "--limit", "daily=1000/86400", "--limit-mode", "fast"]].concat(),
                json!({"project": "p", "name": "n", "tier": "free",
                       "limits": [{"name": "daily", "limit": 1000, "window_seconds": 86400}], "limit_mode": "fast"}),
            ),
            ("update --tier", vec!["update", "k", "--tier", "pro"], json!({"tier": "pro"})),
            ("update --no-tier", vec!["update", "k", "--no-tier"], json!({"tier": null})),
            (
                "update --limit replaces the list",
                vec!["update", "k", "--limit", "minute=600/60"],
                json!({"limits": [{"name": "minute", "limit": 600, "window_seconds": 60}]}),
            ),
            ("update --clear-limits", vec!["update", "k", "--clear-limits"], json!({"limits": null})),
            ("update --limit-mode fast", vec!["update", "k", "--limit-mode", "fast"], json!({"limit_mode": "fast"})),
            ("update --default-limit-mode", vec!["update", "k", "--default-limit-mode"], json!({"limit_mode": null})),
            (
                "update all nulls",
                vec!["update", "k", "--no-tier", "--clear-limits", "--default-limit-mode"],
                json!({"tier": null, "limits": null, "limit_mode": null}),
            ),
            (
                "update mixed with other fields",
                vec!["update", "k", "--name", "x", "--tier", "pro", "--clear-limits", "--limit-mode", "exact"],
                json!({"name": "x", "tier": "pro", "limits": null, "limit_mode": "exact"}),
            ),
        ];
        for (what, args, body) in rows {
            let built = request(&args).unwrap_or_else(|e| panic!("{what}: {e}"));
            assert_eq!(built.body, Some(body), "{what}");
        }
    }

    #[test]
    fn credits_flags_map_to_the_body() {
        let rows: Vec<(&str, Vec<&str>, Method, &str, Value)> = vec![
            (
                "credits add",
                vec!["credits", "add", "key_a", "500"],
                Method::Post,
                "/keys/key_a/credits",
                json!({"op": "add", "amount": 500}),
            ),
            (
                "credits add negative",
                vec!["credits", "add", "key_a", "-5"],
                Method::Post,
                "/keys/key_a/credits",
                json!({"op": "add", "amount": -5}),
            ),
            ("credits set", vec!["credits", "set", "key_a", "0"], Method::Post, "/keys/key_a/credits", json!({"op": "set", "amount": 0})),
            (
                "create with credits and a refill",
                vec!["create", "--project", "p", "--name", "n", "--credits", "1000", "--credits-refill", "1000/month/reset"],
                Method::Post,
                "/keys",
                json!({"project": "p", "name": "n", "credits": {"remaining": 1000, "refill": {"amount": 1000, "interval": "month", "mode": "reset"}}}),
            ),
            (
                "create with credits only",
                vec!["create", "--project", "p", "--name", "n", "--credits", "5"],
                Method::Post,
                "/keys",
                json!({"project": "p", "name": "n", "credits": {"remaining": 5, "refill": null}}),
            ),
            (
                "update the refill",
                vec!["update", "key_a", "--credits-refill", "50/day/add"],
                Method::Patch,
                "/keys/key_a",
                json!({"credits": {"refill": {"amount": 50, "interval": "day", "mode": "add"}}}),
            ),
            (
                "update without refill",
                vec!["update", "key_a", "--credits-no-refill"],
                Method::Patch,
                "/keys/key_a",
                json!({"credits": {"refill": null}}),
            ),
            ("update removing credits", vec!["update", "key_a", "--no-credits"], Method::Patch, "/keys/key_a", json!({"credits": null})),
        ];
        for (what, args, method, path, body) in rows {
            let built = request(&args).unwrap_or_else(|e| panic!("{what}: {e}"));
            assert_eq!((built.method, built.path.as_str(), built.body), (method, path, Some(body)), "{what}");
        }
        assert!(request(&["credits", "set", "key_a", "-1"]).unwrap_err().contains("0 or more"));
        assert!(parse(&["credits", "add", "key_a", "1000000000001"]).is_err(), "out of range");
        assert!(parse(&["update", "key_a", "--credits-refill", "5/day/add", "--no-credits"]).is_err(), "conflicting flags");
    }

    #[test]
    fn expected_answers() {
        let rows = [
            (vec!["create", "--project", "p", "--name", "n"], Expect::Secret),
            (vec!["roll", "k"], Expect::Secret),
            (vec!["list", "--project", "p"], Expect::Page),
            (vec!["audit", "k"], Expect::Audit),
            (vec!["show", "k"], Expect::Record),
            (vec!["revoke", "k"], Expect::Record),
            (vec!["enable", "k"], Expect::Record),
            (vec!["usage", "k"], Expect::Usage),
            (vec!["webhooks", "k"], Expect::Webhooks),
        ];
        for (args, expect) in rows {
            assert_eq!(request(&args).unwrap().expect, expect, "{args:?}");
        }
    }

    #[test]
    fn usage_errors_from_clap() {
        use clap::error::ErrorKind;
        let rows: Vec<(&str, Vec<&str>)> = vec![
            ("meta without =", vec!["create", "--project", "p", "--name", "n", "--meta", "team"]),
            ("meta with empty key", vec!["create", "--project", "p", "--name", "n", "--meta", "=x"]),
            ("bad env", vec!["create", "--project", "p", "--name", "n", "--env", "prod"]),
            ("bad timestamp", vec!["create", "--project", "p", "--name", "n", "--valid-to", "tomorrow"]),
            ("missing project", vec!["create", "--name", "n"]),
            ("role and no-role", vec!["update", "k", "--role", "r", "--no-role"]),
            ("scope and clear-scopes", vec!["update", "k", "--scope", "a", "--clear-scopes"]),
            ("network and clear-networks", vec!["update", "k", "--allow-network", "10.0.0.0/8", "--clear-networks"]),
            ("country and clear-countries", vec!["update", "k", "--allow-country", "DE", "--clear-countries"]),
            ("valid-to and lifetime", vec!["update", "k", "--valid-to", "2030-01-01T00:00:00Z", "--lifetime"]),
            ("valid-from and clear", vec!["update", "k", "--valid-from", "2030-01-01T00:00:00Z", "--clear-valid-from"]),
            ("origin and any-origin", vec!["update", "k", "--allowed-origin", "http://a", "--any-origin"]),
            ("bad status", vec!["list", "--project", "p", "--status", "expired"]),
            ("limit 0", vec!["list", "--project", "p", "--limit", "0"]),
            ("limit 101", vec!["list", "--project", "p", "--limit", "101"]),
            ("grace too long", vec!["roll", "k", "--grace-seconds", "2592001"]),
            ("grace negative", vec!["roll", "k", "--grace-seconds", "-1"]),
            ("grace-after-new-use without max", vec!["roll", "k", "--grace-after-new-use", "60"]),
            ("grace-max without after-new-use", vec!["roll", "k", "--grace-max", "60"]),
            ("grace-old-unused alone", vec!["roll", "k", "--grace-old-unused", "60", "--grace-max", "60"]),
            (
                "grace-seconds and grace-after-new-use",
                vec!["roll", "k", "--grace-seconds", "60", "--grace-after-new-use", "1", "--grace-max", "60"],
            ),
            ("grace-max too long", vec!["roll", "k", "--grace-after-new-use", "1", "--grace-max", "2592001"]),
            ("show without id", vec!["show"]),
            ("usage without id", vec!["usage"]),
            ("tier and no-tier", vec!["update", "k", "--tier", "pro", "--no-tier"]),
            ("limit and clear-limits", vec!["update", "k", "--limit", "m=1/60", "--clear-limits"]),
            ("limit-mode and default", vec!["update", "k", "--limit-mode", "fast", "--default-limit-mode"]),
            ("bad limit-mode", vec!["update", "k", "--limit-mode", "slow"]),
            ("bad limit-mode on create", vec!["create", "--project", "p", "--name", "n", "--limit-mode", "strict"]),
            ("limit without =", vec!["create", "--project", "p", "--name", "n", "--limit", "600/60"]),
            ("limit without /", vec!["update", "k", "--limit", "minute=600"]),
            ("limit zero", vec!["update", "k", "--limit", "minute=0/60"]),
            ("window zero", vec!["create", "--project", "p", "--name", "n", "--limit", "minute=600/0"]),
            ("limit not a number", vec!["update", "k", "--limit", "minute=many/60"]),
            ("no-tier takes no value", vec!["update", "k", "--no-tier=pro"]),
            ("create has no --no-tier", vec!["create", "--project", "p", "--name", "n", "--no-tier"]),
        ];
        for (what, args) in rows {
            let error = parse(&args).expect_err(what);
            assert_eq!(error.exit_code(), 2, "{what}");
            assert_ne!(error.kind(), ErrorKind::DisplayHelp, "{what}");
        }
    }

    #[test]
    fn usage_errors_found_after_parsing() {
        let rows: Vec<(&str, Vec<&str>, &str)> = vec![
            ("update without changes", vec!["update", "k"], "nothing to update"),
            ("duplicate meta key", vec!["update", "k", "--meta", "a=1", "--meta", "a=2"], "more than once"),
            (
                "duplicate meta key on create",
                vec!["create", "--project", "p", "--name", "n", "--meta", "a=1", "--meta", "a=2"],
                "more than once",
            ),
            ("duplicate limit name", vec!["update", "k", "--limit", "m=1/60", "--limit", "m=2/60"], "given more than once"),
            (
                "duplicate limit name on create",
                vec!["create", "--project", "p", "--name", "n", "--limit", "m=1/60", "--limit", "m=2/60"],
                "given more than once",
            ),
            ("dot-dot id", vec!["show", ".."], "invalid key id"),
            ("dot-dot id for usage", vec!["usage", ".."], "invalid key id"),
            ("empty id", vec!["revoke", ""], "invalid key id"),
        ];
        for (what, args, message) in rows {
            let error = request(&args).expect_err(what);
            assert!(error.contains(message), "{what}: {error}");
        }
    }

    #[test]
    fn global_flags_work_before_and_after_the_subcommand() {
        let before = parse(&["--json", "--url", "http://h:1", "--prefix", "/adm", "show", "k"]).unwrap();
        let after = parse(&["show", "k", "--json", "--url", "http://h:1", "--prefix", "/adm"]).unwrap();
        for parsed in [before, after] {
            assert!(parsed.json);
            assert_eq!(parsed.url, "http://h:1");
            assert_eq!(parsed.prefix, "/adm");
        }
    }

    #[test]
    fn token_debug_is_redacted() {
        let parsed = parse(&["show", "k"]).unwrap();
        assert!(!format!("{parsed:?}").contains("\"t\""));
        assert!(format!("{parsed:?}").contains("<redacted>"));
    }

    #[test]
    fn percent_encoding() {
        let rows = [
            ("key_AZaz09-._~", "key_AZaz09-._~"),
            ("a b", "a%20b"),
            ("a+b&c=d#e?f/g%h", "a%2Bb%26c%3Dd%23e%3Ff%2Fg%25h"),
            ("é", "%C3%A9"),
            ("", ""),
        ];
        for (text, encoded) in rows {
            assert_eq!(encode_component(text), encoded, "{text}");
        }
    }
}
