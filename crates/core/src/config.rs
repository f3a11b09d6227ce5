//! Typed configuration, parsed from wrangler vars and secrets. Pure.
//!
//! The glue hands in a lookup function (`name → raw text`); vars that wrangler delivers as
//! JSON values (arrays, objects, numbers) arrive JSON-encoded. Parsing happens once per
//! isolate. Any invalid setting makes every request fail closed with `CONFIG_INVALID` (500),
//! naming the setting but never echoing a secret.

use std::collections::BTreeMap;
use std::fmt;

use crate::admin::auth_limit::AdminAuthLimits;
use crate::credential::AdminToken;
use crate::dialect::Refusals;
use crate::key::{KeyEnv, KeyFormat, KeyFormatProblem};
use crate::leak::{LeakAction, LeakSettings, GITHUB_KEYS_URL};
use crate::limit::algorithm::{validate_new_specs, LimitSpec};
use crate::record::{KeyRecord, LimitMode};
use crate::routes::{RouteTable, Unmatched};
use crate::scope::{is_valid_grant, EmptyScopes, Roles, DEFAULT_SCOPES};
use crate::signature::{Audience, Signer};
use crate::webhook::WebhookSettings;

/// The route table used when `ROUTES` is unset: the three CMS routes of the demo. (The
/// shipped `wrangler.toml` sets `ROUTES` explicitly and adds a project-scoped route.)
pub const DEFAULT_ROUTES: &str = r#"[
  {"methods":["GET","HEAD"],"path":"/v1/public/cms/:type/items","scopes":["content:read"]},
  {"methods":["GET","HEAD"],"path":"/v1/public/cms/:type/items/*","scopes":["content:read"]},
  {"methods":["POST"],"path":"/v1/cms/:type/items","scopes":["content:write"]}
]"#;

/// The tiers of the OptimoCMS seed (requests/min, burst per second, daily maximum);
/// enterprise has no daily maximum. Replaced by `TIERS` when set.
/// Each names the Workers Rate Limiting binding that enforces its per-minute limit across
/// isolates in `fast` mode (declared under `[[ratelimits]]` in wrangler.toml).
pub const DEFAULT_TIERS: &str = r#"{
  "free": {"limits": [{"name":"burst","limit":10,"window_seconds":1},{"name":"minute","limit":60,"window_seconds":60},{"name":"daily","limit":5000,"window_seconds":86400}],
           "fast_binding": {"binding": "RL_FREE_MINUTE", "limit": "minute"}},
  "pro": {"limits": [{"name":"burst","limit":50,"window_seconds":1},{"name":"minute","limit":600,"window_seconds":60},{"name":"daily","limit":100000,"window_seconds":86400}],
          "fast_binding": {"binding": "RL_PRO_MINUTE", "limit": "minute"}},
  "enterprise": {"limits": [{"name":"burst","limit":200,"window_seconds":1},{"name":"minute","limit":6000,"window_seconds":60}],
                 "fast_binding": {"binding": "RL_ENTERPRISE_MINUTE", "limit": "minute"}}
}"#;

/// In `fast` mode, the Workers Rate Limiting binding that enforces one of a tier's limits
/// across isolates (per Cloudflare location). The binding's own `limit`/`period` (10 or 60 s)
/// are set in wrangler.toml and must match the named limit.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FastBinding {
    /// Binding name, e.g. `RL_PRO_MINUTE`.
    pub binding: String,
    /// Which of the tier's limits it enforces (for headers and the 429 body).
    pub limit: String,
}

/// A named bundle of limits.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tier {
    /// The tier's limits.
    pub limits: Vec<LimitSpec>,
    /// Enforcement mode for keys of this tier (default: `LIMIT_MODE`).
    #[serde(default)]
    pub mode: Option<LimitMode>,
    /// Rate Limiting binding used in `fast` mode.
    #[serde(default)]
    pub fast_binding: Option<FastBinding>,
}

/// What to do when the limiter cannot be reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailurePolicy {
    /// Serve the request (authentication is still enforced).
    Open,
    /// Refuse with 503 `STORE_UNAVAILABLE`.
    Closed,
}

/// One origin keygate forwards to, with the signer for requests to it.
#[derive(Debug, Clone)]
pub struct OriginTarget {
    /// The URL as configured, trailing `/` removed: `http(s)://host[:port][/base]`.
    pub url: String,
    /// The audience signatures for this origin are bound to ([`Audience::from_url`] of `url`).
    pub audience: Audience,
    /// Signs requests to this origin; keyed once, when the config is parsed (the secret itself
    /// is not kept, and the signer prints redacted).
    pub signer: Signer,
}

/// Which browser origins get CORS answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorsConfig {
    /// Allowed `Origin` values; `*` allows any. Empty = CORS disabled.
    pub allowed_origins: Vec<String>,
    /// Methods announced in preflight answers.
    pub allowed_methods: String,
    /// Request headers announced in preflight answers.
    pub allowed_headers: String,
    /// Preflight cache lifetime, seconds.
    pub max_age_seconds: u32,
}

/// Everything the hot path needs, validated.
#[derive(Debug, Clone)]
pub struct Config {
    /// `KEY_PREFIX` or `KEY_PREFIXES`, and `KEY_ENV_SEGMENTS`: how keys look.
    pub key_format: KeyFormat,
    /// `AUTH_HEADER` (lowercase), carrying `Bearer <key>`.
    pub auth_header: String,
    /// `API_KEY_HEADER` (lowercase), carrying the bare key.
    pub api_key_header: String,
    /// `ROUTES`.
    pub routes: RouteTable,
    /// Built-in roles plus `ROLES` overrides.
    pub roles: Roles,
    /// `SCOPES`: every scope an admin may grant.
    pub scopes: Vec<String>,
    /// `CACHE_TTL_SECONDS` in ms.
    pub cache_ttl_ms: i64,
    /// `NEGATIVE_CACHE_TTL_SECONDS` in ms.
    pub negative_cache_ttl_ms: i64,
    /// `CACHE_MAX_ENTRIES`.
    pub cache_max_entries: usize,
    /// `KV_CACHE_TTL_SECONDS`: KV's own edge cache for reads (Cloudflare minimum 30).
    pub kv_cache_ttl_seconds: u64,
    /// `ORIGIN_URL`, signed with `ORIGIN_SIGNING_SECRET`.
    pub origin_live: OriginTarget,
    /// `ORIGIN_URL_TEST`, if test keys are served, signed with `ORIGIN_SIGNING_SECRET_TEST` (or,
    /// when that is unset, `ORIGIN_SIGNING_SECRET`).
    pub origin_test: Option<OriginTarget>,
    /// `CORS_*`.
    pub cors: CorsConfig,
    /// `ADMIN_PREFIX`: where the admin API lives (no trailing slash).
    pub admin_prefix: String,
    /// `ADMIN_MAX_BODY_BYTES`: largest admin request body.
    pub admin_max_body_bytes: usize,
    /// `ADMIN_TOKEN` (secret), held as its digest. `None` = admin API refuses everyone.
    pub admin_token: Option<AdminToken>,
    /// `ADMIN_AUTH_*`: how many failed admin authentications are allowed, per address and overall.
    pub admin_auth: AdminAuthLimits,
    /// `TIERS`: named limit bundles.
    pub tiers: BTreeMap<String, Tier>,
    /// `DEFAULT_TIER`: tier of keys that name neither a tier nor limits (`None` = unlimited).
    pub default_tier: Option<String>,
    /// `LIMIT_MODE`: enforcement mode when neither key nor tier says.
    pub limit_mode: LimitMode,
    /// `RATE_LIMIT_FAILURE`: behaviour when the limiter is unreachable.
    pub rate_limit_failure: FailurePolicy,
    /// `LEASE_MS`: how long an isolate may admit `exact`-mode requests from its limiter lease
    /// before renewing (0 = ask the limiter for every request); see `limit::lease`.
    pub lease_ms: u64,
    /// `LIMITER_FAULT` (test deployments only): every limiter call fails, to test the policy.
    pub limiter_fault: bool,
    /// `KV_FAULT` (test deployments only): every KV read fails, to test failing closed.
    pub kv_fault: bool,
    /// `KEYGATE_TEST_MODE=yes-this-is-a-test-deployment`: allows the fault switches and the
    /// `/__keygate/counters` endpoint. Never set in production.
    pub test_mode: bool,
    /// `ORIGIN_TIMEOUT_MS`: how long to wait for the origin's response headers (→ 504).
    pub origin_timeout_ms: u64,
    /// `LAST_USED_REPORT_SECONDS` in ms: least time between two last-use reports of an isolate.
    pub last_used_report_ms: i64,
    /// `ADMIN_FACADE`: another product's admin contract served beside the native admin API.
    pub admin_facade: AdminFacade,
    /// `ERROR_DIALECT`, `ERROR_MAP`, `QUOTA_CODE`, `TEST_KEY_ON_LIVE_ROUTE`: how gateway refusals look.
    pub refusals: Refusals,
    /// `EMPTY_SCOPES`: what a key with neither role nor scopes holds.
    pub empty_scopes: EmptyScopes,
    /// `UNMATCHED`, `PROTECTED_PREFIXES`: what a request matching no route gets.
    pub unmatched: Unmatched,
    /// `RATE_LIMIT_HEADER_LIMIT`: the limit `X-RateLimit-*` describe (`None` = the most restrictive).
    pub rate_limit_header_limit: Option<String>,
    /// `LEAK_REPORTS`, `LEAK_KEYS_URL`, `LEAK_ACTION`: GitHub secret-scanning reports ([`crate::leak`]).
    pub leaks: LeakSettings,
    /// `WEBHOOK_*`: signed lifecycle webhooks ([`crate::webhook`]); `None` = off.
    pub webhooks: Option<WebhookSettings>,
}

/// An admin contract served beside the native admin API (`ADMIN_FACADE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminFacade {
    /// None (default).
    None,
    /// AtlasCMS: `/{project}/admin/api-keys[/{id}]` ([`crate::admin::facade`]).
    Atlas,
}

impl Config {
    /// The limits that apply to `record`: its own, else its tier's, else the default tier's.
    /// A tier that is no longer configured falls back to the default tier, so removing a tier
    /// from `TIERS` never leaves its keys unlimited by accident.
    pub fn limits_for<'a>(&'a self, record: &'a KeyRecord) -> &'a [LimitSpec] {
        if let Some(limits) = &record.limits {
            return limits;
        }
        self.tier_of(record).map(|t| t.limits.as_slice()).unwrap_or(&[])
    }

    /// What the key's limiter decides it by: [`Config::limits_for`], and for a key with credits
    /// its credits limit last ([`crate::limit::credits::Credits::spec`]).
    pub fn limiter_specs<'a>(&'a self, record: &'a KeyRecord) -> std::borrow::Cow<'a, [LimitSpec]> {
        let limits = self.limits_for(record);
        match &record.credits {
            None => std::borrow::Cow::Borrowed(limits),
            Some(credits) => {
                let mut specs = limits.to_vec();
                specs.push(credits.spec());
                std::borrow::Cow::Owned(specs)
            }
        }
    }

    fn tier_of(&self, record: &KeyRecord) -> Option<&Tier> {
        record
            .tier
            .as_ref()
            .and_then(|name| self.tiers.get(name))
            .or_else(|| self.default_tier.as_ref().and_then(|name| self.tiers.get(name)))
    }

    /// The fast-mode binding of `record`'s tier, when its limits come from that tier.
    pub fn fast_binding_for(&self, record: &KeyRecord) -> Option<&FastBinding> {
        if record.limits.is_some() {
            return None;
        }
        self.tier_of(record)?.fast_binding.as_ref()
    }

    /// What a key with neither role nor scopes holds: nothing, or (`EMPTY_SCOPES=all`) every
    /// scope of the catalogue.
    pub fn empty_grant(&self) -> &[String] {
        match self.empty_scopes {
            EmptyScopes::None => &[],
            EmptyScopes::All => &self.scopes,
        }
    }

    /// The enforcement mode for `record`: `exact` for a key with credits, else its own, else its
    /// tier's, else `LIMIT_MODE`.
    pub fn mode_for(&self, record: &KeyRecord) -> LimitMode {
        if record.credits.is_some() {
            return LimitMode::Exact; // a balance is exact or it is not a balance
        }
        record.limit_mode.or(self.tier_of(record).and_then(|t| t.mode)).unwrap_or(self.limit_mode)
    }
}

/// A setting that is missing or invalid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The variable name.
    pub setting: &'static str,
    /// What is wrong with it.
    pub problem: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.setting, self.problem)
    }
}

/// Every variable name keygate reads (the glue uses this to collect them).
pub const SETTINGS: &[&str] = &[
    "KEY_PREFIX",
    "KEY_PREFIXES",
    "KEY_ENV_SEGMENTS",
    "AUTH_HEADER",
    "API_KEY_HEADER",
    "ROUTES",
    "ROLES",
    "BUILTIN_ROLES",
    "SCOPES",
    "CACHE_TTL_SECONDS",
    "NEGATIVE_CACHE_TTL_SECONDS",
    "CACHE_MAX_ENTRIES",
    "KV_CACHE_TTL_SECONDS",
    "ORIGIN_URL",
    "ORIGIN_URL_TEST",
    "ORIGIN_SIGNING_SECRET",
    "ORIGIN_SIGNING_SECRET_TEST",
    "CORS_ALLOWED_ORIGINS",
    "CORS_ALLOWED_METHODS",
    "CORS_ALLOWED_HEADERS",
    "CORS_MAX_AGE_SECONDS",
    "ADMIN_PREFIX",
    "ADMIN_MAX_BODY_BYTES",
    "ADMIN_TOKEN",
    "ADMIN_AUTH_FAILURES_PER_ADDRESS",
    "ADMIN_AUTH_FAILURES_GLOBAL",
    "ADMIN_AUTH_WINDOW_SECONDS",
    "TIERS",
    "DEFAULT_TIER",
    "LIMIT_MODE",
    "RATE_LIMIT_FAILURE",
    "LEASE_MS",
    "LIMITER_FAULT",
    "KEYGATE_TEST_MODE",
    "KV_FAULT",
    "ORIGIN_TIMEOUT_MS",
    "LAST_USED_REPORT_SECONDS",
    "ADMIN_FACADE",
    "ERROR_DIALECT",
    "ERROR_MAP",
    "QUOTA_CODE",
    "TEST_KEY_ON_LIVE_ROUTE",
    "EMPTY_SCOPES",
    "UNMATCHED",
    "PROTECTED_PREFIXES",
    "RATE_LIMIT_HEADER_LIMIT",
    "LEAK_REPORTS",
    "LEAK_KEYS_URL",
    "LEAK_ACTION",
    "WEBHOOK_URLS",
    "WEBHOOK_SECRET",
    "WEBHOOK_EVENTS",
    "WEBHOOK_EXPIRY_LEAD_SECONDS",
    "WEBHOOK_QUOTA_THRESHOLDS",
    "WEBHOOK_RETRY_SECONDS",
];

/// Every scope a route requires, and every concrete scope a role grants, must be in the scope
/// catalogue (`SCOPES`): a typo there would otherwise make a route unreachable or a role grant
/// nothing, silently. Wildcard grants (`content:*`, `*`) are patterns over the catalogue.
fn check_against_catalogue(routes: &RouteTable, roles: &Roles, catalogue: &[String]) -> Result<(), ConfigError> {
    let known = |scope: &String| catalogue.iter().any(|c| c == scope);
    for (pattern, required) in routes.required_scopes() {
        if let Some(unknown) = required.iter().find(|s| !known(s)) {
            return Err(err("ROUTES", format!("route {pattern:?} requires {unknown:?}, which is not in SCOPES")));
        }
    }
    for (role, grants) in roles.grants() {
        if let Some(unknown) = grants.iter().find(|s| !s.contains('*') && !known(s)) {
            return Err(err("ROLES", format!("role {role:?} grants {unknown:?}, which is not in SCOPES")));
        }
    }
    Ok(())
}

fn err(setting: &'static str, problem: impl Into<String>) -> ConfigError {
    ConfigError { setting, problem: problem.into() }
}

/// A settings lookup: a variable's value, trimmed; `None` when unset or empty.
type Lookup<'a> = &'a dyn Fn(&str) -> Option<String>;

impl Config {
    /// Parses all settings from `lookup` (`None` or empty = unset → default). Settings are read
    /// group by group in this order, and the first invalid one is the one reported.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let get = |name: &str| lookup(name).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
        let get: Lookup = &get;
        let key_format = key_format(get)?;
        let (auth_header, api_key_header) = credential_headers(get)?;
        let (routes, roles, scopes) = access(get)?;
        let (cache_ttl_ms, negative_cache_ttl_ms, cache_max_entries, kv_cache_ttl_seconds) = caches(get)?;
        let (origin_live, origin_test) = origins(get)?;
        let cors = cors(get, &auth_header, &api_key_header)?;
        let admin_prefix = admin_prefix(get, &routes)?;
        let admin_max_body_bytes = number(get, "ADMIN_MAX_BODY_BYTES", 16_384, 1_048_576)? as usize;
        let admin_token = admin_token(get)?;
        let admin_auth = admin_auth(get)?;
        let tiers = tiers(get)?;
        let (default_tier, limit_mode, rate_limit_failure) = limit_policy(get, &tiers)?;
        let (test_mode, limiter_fault, kv_fault) = test_switches(get)?;
        Ok(Config {
            key_format,
            auth_header,
            api_key_header,
            routes,
            roles,
            scopes,
            cache_ttl_ms,
            negative_cache_ttl_ms,
            cache_max_entries,
            kv_cache_ttl_seconds,
            origin_live,
            origin_test,
            cors,
            admin_prefix,
            admin_max_body_bytes,
            admin_token,
            admin_auth,
            default_tier,
            limit_mode,
            rate_limit_failure,
            lease_ms: number(get, "LEASE_MS", crate::limit::lease::DEFAULT_LEASE_MS, 60_000)?,
            limiter_fault,
            kv_fault,
            test_mode,
            // The rest are read here, in this order, which keeps the order of the reports.
            origin_timeout_ms: number(get, "ORIGIN_TIMEOUT_MS", 15_000, 120_000)?.max(100),
            admin_facade: admin_facade(get)?,
            last_used_report_ms: last_used_report_ms(get)?,
            // How refusals look and which refusal a request gets (the seed profiles).
            refusals: Refusals::from_settings(get)?,
            unmatched: Unmatched::from_settings(get)?,
            empty_scopes: empty_scopes(get)?,
            rate_limit_header_limit: rate_limit_header_limit(get, &tiers)?,
            leaks: leak_settings(get)?,
            webhooks: WebhookSettings::from_settings(get)?,
            tiers,
        })
    }
}

/// An integer setting from 0 to `max`, `default` when unset (quotes around it are allowed).
fn number(get: Lookup, name: &'static str, default: u64, max: u64) -> Result<u64, ConfigError> {
    match get(name) {
        None => Ok(default),
        Some(text) => match text.trim_matches('"').parse::<u64>() {
            Ok(n) if n <= max => Ok(n),
            _ => Err(err(name, format!("must be an integer from 0 to {max}"))),
        },
    }
}

/// As [`number`], from 1.
fn at_least_one(get: Lookup, name: &'static str, default: u64, max: u64) -> Result<u64, ConfigError> {
    match number(get, name, default, max)? {
        0 => Err(err(name, format!("must be an integer from 1 to {max}"))),
        n => Ok(n),
    }
}

/// `AUTH_HEADER` and `API_KEY_HEADER`: lowercase header names, different from each other.
fn credential_headers(get: Lookup) -> Result<(String, String), ConfigError> {
    let header = |name: &'static str, default: &str| -> Result<String, ConfigError> {
        let value = get(name).unwrap_or_else(|| default.into()).to_ascii_lowercase();
        if value.is_empty() || !value.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            return Err(err(name, "must be an HTTP header name"));
        }
        Ok(value)
    };
    let auth_header = header("AUTH_HEADER", "authorization")?;
    let api_key_header = header("API_KEY_HEADER", "x-api-key")?;
    if auth_header == api_key_header {
        return Err(err("API_KEY_HEADER", "must differ from AUTH_HEADER"));
    }
    Ok((auth_header, api_key_header))
}

/// `ROUTES`, `BUILTIN_ROLES` with `ROLES`, and `SCOPES`, checked against each other.
fn access(get: Lookup) -> Result<(RouteTable, Roles, Vec<String>), ConfigError> {
    let routes = RouteTable::from_json(&get("ROUTES").unwrap_or_else(|| DEFAULT_ROUTES.into())).map_err(|e| err("ROUTES", e))?;
    if routes.is_empty() {
        return Err(err("ROUTES", "must contain at least one route"));
    }
    let roles = roles(get)?;
    let scopes = match get("SCOPES") {
        None => DEFAULT_SCOPES.iter().map(|s| s.to_string()).collect(),
        Some(text) => {
            let list: Vec<String> = crate::json::parse(&text).map_err(|e| err("SCOPES", e.to_string()))?;
            if let Some(bad) = list.iter().find(|s| !is_valid_grant(s) || s.contains('*')) {
                return Err(err("SCOPES", format!("invalid scope {bad:?}")));
            }
            list
        }
    };
    check_against_catalogue(&routes, &roles, &scopes)?;
    Ok((routes, roles, scopes))
}

/// `BUILTIN_ROLES` (`on`: the built-in roles, which `ROLES` extends or overrides; `off`:
/// exactly `ROLES`).
fn roles(get: Lookup) -> Result<Roles, ConfigError> {
    let builtin_roles = match get("BUILTIN_ROLES").as_deref().map(|v| v.trim_matches('"')) {
        None | Some("on") => true,
        Some("off") => false,
        Some(_) => {
            return Err(err(
                "BUILTIN_ROLES",
                "must be \"on\" (the seven built-in roles, ROLES adds or replaces) or \"off\" (exactly ROLES)",
            ))
        }
    };
    match get("ROLES") {
        None if builtin_roles => Ok(Roles::builtin()),
        None => Roles::only(BTreeMap::new()).map_err(|e| err("ROLES", e)),
        Some(text) => {
            let listed: BTreeMap<String, Vec<String>> = crate::json::parse(&text).map_err(|e| err("ROLES", e.to_string()))?;
            let roles = if builtin_roles { Roles::with_overrides(listed) } else { Roles::only(listed) };
            roles.map_err(|e| err("ROLES", e))
        }
    }
}

/// `CACHE_TTL_SECONDS` and `NEGATIVE_CACHE_TTL_SECONDS` (in ms), `CACHE_MAX_ENTRIES` and
/// `KV_CACHE_TTL_SECONDS` (at least Cloudflare's minimum of 30).
fn caches(get: Lookup) -> Result<(i64, i64, usize, u64), ConfigError> {
    let cache_ttl_ms = number(get, "CACHE_TTL_SECONDS", 30, 3600)? as i64 * 1000;
    let negative_cache_ttl_ms = number(get, "NEGATIVE_CACHE_TTL_SECONDS", 10, 3600)? as i64 * 1000;
    let cache_max_entries = number(get, "CACHE_MAX_ENTRIES", 10_000, 1_000_000)? as usize;
    let kv_cache_ttl_seconds = number(get, "KV_CACHE_TTL_SECONDS", 60, 86_400)?.max(30);
    Ok((cache_ttl_ms, negative_cache_ttl_ms, cache_max_entries, kv_cache_ttl_seconds))
}

/// `ORIGIN_URL` with `ORIGIN_SIGNING_SECRET`, and `ORIGIN_URL_TEST` with
/// `ORIGIN_SIGNING_SECRET_TEST` (else the live secret); each signer keyed once, here.
fn origins(get: Lookup) -> Result<(OriginTarget, Option<OriginTarget>), ConfigError> {
    let (live_url, live_audience) = origin_url("ORIGIN_URL", get("ORIGIN_URL"))?.ok_or_else(|| err("ORIGIN_URL", "is required"))?;
    let test_url = origin_url("ORIGIN_URL_TEST", get("ORIGIN_URL_TEST"))?;
    let secret = |name: &'static str| -> Result<Option<String>, ConfigError> {
        match get(name) {
            Some(secret) if secret.len() < 16 => Err(err(name, "must be at least 16 characters")),
            secret => Ok(secret),
        }
    };
    let live_secret = secret("ORIGIN_SIGNING_SECRET")?.ok_or_else(|| err("ORIGIN_SIGNING_SECRET", "is required (wrangler secret put)"))?;
    // Checked even while ORIGIN_URL_TEST is unset, so a short secret is never left lying around.
    let test_secret = secret("ORIGIN_SIGNING_SECRET_TEST")?;
    let origin_live = OriginTarget { url: live_url, audience: live_audience, signer: Signer::new(live_secret.as_bytes()) };
    let origin_test = test_url.map(|(url, audience)| {
        // Without its own secret the test origin shares the live one; the audience still
        // separates the two, but one leaked secret then opens both.
        let secret = test_secret.as_deref().unwrap_or(&live_secret);
        OriginTarget { url, audience, signer: Signer::new(secret.as_bytes()) }
    });
    Ok((origin_live, origin_test))
}

/// `CORS_*`; the allowed headers default to the two credential headers and `content-type`.
fn cors(get: Lookup, auth_header: &str, api_key_header: &str) -> Result<CorsConfig, ConfigError> {
    Ok(CorsConfig {
        allowed_origins: match get("CORS_ALLOWED_ORIGINS") {
            None => Vec::new(),
            Some(text) => crate::json::parse(&text).map_err(|e| err("CORS_ALLOWED_ORIGINS", e.to_string()))?,
        },
        allowed_methods: get("CORS_ALLOWED_METHODS").unwrap_or_else(|| "GET, HEAD, POST, OPTIONS".into()),
        allowed_headers: get("CORS_ALLOWED_HEADERS").unwrap_or_else(|| format!("{auth_header}, {api_key_header}, content-type")),
        max_age_seconds: number(get, "CORS_MAX_AGE_SECONDS", 600, 86_400)? as u32,
    })
}

/// `ADMIN_PREFIX`: an absolute path of plain segments, no trailing slash, outside every route.
fn admin_prefix(get: Lookup, routes: &RouteTable) -> Result<String, ConfigError> {
    let admin_prefix = get("ADMIN_PREFIX").unwrap_or_else(|| "/_keygate/v1".into());
    let admin_prefix = admin_prefix.trim_end_matches('/').to_string();
    let prefix_ok = admin_prefix.starts_with('/')
        && admin_prefix.len() > 1
        && admin_prefix[1..]
            .split('/')
            .all(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)) && s != "." && s != "..");
    if !prefix_ok {
        return Err(err("ADMIN_PREFIX", "must be an absolute path like /_keygate/v1"));
    }
    if routes.find("GET", &admin_prefix).is_some() {
        return Err(err("ADMIN_PREFIX", "overlaps a gateway route"));
    }
    Ok(admin_prefix)
}

/// `ADMIN_TOKEN` (secret), hashed here once; unset = the admin API refuses everyone.
fn admin_token(get: Lookup) -> Result<Option<AdminToken>, ConfigError> {
    match get("ADMIN_TOKEN") {
        None => Ok(None),
        // Read with the gateway's Bearer parser, which ends a token at a space, tab or comma.
        Some(token) if token.contains([' ', '\t', ',']) => Err(err("ADMIN_TOKEN", "must not contain spaces, tabs or commas")),
        Some(token) if token.len() >= 16 => Ok(Some(AdminToken::new(&token))),
        Some(_) => Err(err("ADMIN_TOKEN", "must be at least 16 characters")),
    }
}

/// `ADMIN_AUTH_*`: failed admin authentications allowed per address and overall, per window.
fn admin_auth(get: Lookup) -> Result<AdminAuthLimits, ConfigError> {
    let defaults = AdminAuthLimits::default();
    let admin_auth = AdminAuthLimits {
        per_address: at_least_one(get, "ADMIN_AUTH_FAILURES_PER_ADDRESS", defaults.per_address, 1_000_000)?,
        global: at_least_one(get, "ADMIN_AUTH_FAILURES_GLOBAL", defaults.global, 1_000_000)?,
        // Below a day, so both limits are rates (GCRA) that refill steadily.
        window_seconds: at_least_one(get, "ADMIN_AUTH_WINDOW_SECONDS", defaults.window_seconds, 86_399)?,
    };
    if admin_auth.global < admin_auth.per_address {
        return Err(err("ADMIN_AUTH_FAILURES_GLOBAL", "must be at least ADMIN_AUTH_FAILURES_PER_ADDRESS"));
    }
    Ok(admin_auth)
}

/// `TIERS`: each tier's name, limits (as new limits) and fast-mode binding.
fn tiers(get: Lookup) -> Result<BTreeMap<String, Tier>, ConfigError> {
    let tiers: BTreeMap<String, Tier> =
        crate::json::parse(&get("TIERS").unwrap_or_else(|| DEFAULT_TIERS.into())).map_err(|e| err("TIERS", e.to_string()))?;
    for (name, tier) in &tiers {
        if !(1..=32).contains(&name.len()) || !name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
        {
            return Err(err("TIERS", format!("tier name {name:?} must be 1-32 chars of a-z, 0-9, _ or -")));
        }
        validate_new_specs(&tier.limits).map_err(|e| err("TIERS", format!("tier {name:?}: {e}")))?;
        if let Some(fast) = &tier.fast_binding {
            let limit = tier.limits.iter().find(|l| l.name == fast.limit);
            if !limit.is_some_and(|l| l.window_seconds == 10 || l.window_seconds == 60) {
                return Err(err(
                    "TIERS",
                    format!("tier {name:?}: fast_binding.limit must name one of its limits with a 10 or 60 s window"),
                ));
            }
            if fast.binding.is_empty() || !fast.binding.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                return Err(err("TIERS", format!("tier {name:?}: fast_binding.binding must be a binding name")));
            }
        }
    }
    Ok(tiers)
}

/// `DEFAULT_TIER` (one of `tiers`), `LIMIT_MODE` and `RATE_LIMIT_FAILURE`.
fn limit_policy(get: Lookup, tiers: &BTreeMap<String, Tier>) -> Result<(Option<String>, LimitMode, FailurePolicy), ConfigError> {
    let default_tier = get("DEFAULT_TIER");
    if let Some(name) = &default_tier {
        if !tiers.contains_key(name) {
            return Err(err("DEFAULT_TIER", format!("{name:?} is not a tier in TIERS")));
        }
    }
    let limit_mode = match get("LIMIT_MODE").as_deref() {
        None | Some("exact") => LimitMode::Exact,
        Some("fast") => LimitMode::Fast,
        Some(_) => return Err(err("LIMIT_MODE", "must be exact or fast")),
    };
    let rate_limit_failure = match get("RATE_LIMIT_FAILURE").as_deref() {
        None | Some("open") => FailurePolicy::Open,
        Some("closed") => FailurePolicy::Closed,
        Some(_) => return Err(err("RATE_LIMIT_FAILURE", "must be open or closed")),
    };
    Ok((default_tier, limit_mode, rate_limit_failure))
}

/// `KEYGATE_TEST_MODE`, then the fault switches `LIMITER_FAULT` and `KV_FAULT`: `(test_mode,
/// limiter_fault, kv_fault)`.
fn test_switches(get: Lookup) -> Result<(bool, bool, bool), ConfigError> {
    // Fault switches for tests. They are refused unless the deployment explicitly calls
    // itself a test deployment, so a production config can never enable one by accident.
    let test_mode = match get("KEYGATE_TEST_MODE").as_deref() {
        None | Some("off") => false,
        Some("yes-this-is-a-test-deployment") => true,
        Some(_) => return Err(err("KEYGATE_TEST_MODE", "must be unset")),
    };
    let switch = |name: &'static str| match get(name).as_deref() {
        None | Some("off") => Ok(false),
        Some("on") if test_mode => Ok(true),
        Some(_) => Err(err(name, "is a test-only switch")),
    };
    Ok((test_mode, switch("LIMITER_FAULT")?, switch("KV_FAULT")?))
}

/// `ADMIN_FACADE`.
fn admin_facade(get: Lookup) -> Result<AdminFacade, ConfigError> {
    match get("ADMIN_FACADE").as_deref().map(|v| v.trim_matches('"')) {
        None | Some("none") => Ok(AdminFacade::None),
        Some("atlas") => Ok(AdminFacade::Atlas),
        Some(_) => Err(err("ADMIN_FACADE", "must be \"none\" or \"atlas\"")),
    }
}

/// `LEAK_REPORTS` (`off` by default: a report endpoint nobody registered stays closed),
/// `LEAK_KEYS_URL` (an `https://` URL, or `http://` on loopback for tests; GitHub's by default)
/// and `LEAK_ACTION` (`disable` by default).
fn leak_settings(get: Lookup) -> Result<LeakSettings, ConfigError> {
    let enabled = match get("LEAK_REPORTS").as_deref().map(|v| v.trim_matches('"')) {
        None | Some("off") => false,
        Some("on") => true,
        Some(_) => return Err(err("LEAK_REPORTS", "must be \"on\" or \"off\"")),
    };
    let keys_url = get("LEAK_KEYS_URL").unwrap_or_else(|| GITHUB_KEYS_URL.into());
    let loopback = ["http://127.0.0.1:", "http://localhost:"].iter().any(|p| keys_url.starts_with(p));
    if !(keys_url.starts_with("https://") || loopback) || keys_url.len() > 2048 {
        return Err(err("LEAK_KEYS_URL", "must be an https:// URL (http:// only on 127.0.0.1 or localhost)"));
    }
    let action = match get("LEAK_ACTION") {
        None => LeakAction::Disable,
        Some(name) => LeakAction::from_name(name.trim_matches('"'))
            .ok_or_else(|| err("LEAK_ACTION", "must be \"disable\", \"revoke\" or \"notify\""))?,
    };
    Ok(LeakSettings { enabled, keys_url, action })
}

/// `LAST_USED_REPORT_SECONDS` (1 to 3600), in ms.
fn last_used_report_ms(get: Lookup) -> Result<i64, ConfigError> {
    match number(get, "LAST_USED_REPORT_SECONDS", 60, 3600)? {
        0 => Err(err("LAST_USED_REPORT_SECONDS", "must be an integer from 1 to 3600")),
        seconds => Ok(seconds as i64 * 1000),
    }
}

/// `EMPTY_SCOPES`.
fn empty_scopes(get: Lookup) -> Result<EmptyScopes, ConfigError> {
    match get("EMPTY_SCOPES").as_deref() {
        None | Some("none") => Ok(EmptyScopes::None),
        Some("all") => Ok(EmptyScopes::All),
        Some(_) => Err(err("EMPTY_SCOPES", "must be none or all")),
    }
}

/// `RATE_LIMIT_HEADER_LIMIT`: the name of a limit of some tier.
fn rate_limit_header_limit(get: Lookup, tiers: &BTreeMap<String, Tier>) -> Result<Option<String>, ConfigError> {
    let rate_limit_header_limit = get("RATE_LIMIT_HEADER_LIMIT");
    if let Some(name) = &rate_limit_header_limit {
        if !tiers.values().any(|tier| tier.limits.iter().any(|l| &l.name == name)) {
            return Err(err("RATE_LIMIT_HEADER_LIMIT", format!("{name:?} is not the name of a limit of any tier in TIERS")));
        }
    }
    Ok(rate_limit_header_limit)
}

/// `KEY_PREFIX` (one prefix) or `KEY_PREFIXES` (a JSON list, the first mints), and
/// `KEY_ENV_SEGMENTS`: unset = `live` and `test`; `"none"` or `{}` = no segment; else a JSON
/// object from environment (`live`, `test`) to a segment name or a list of them (the first mints).
/// A list, not segment → env, so the minting name never depends on the order of object keys.
fn key_format(get: Lookup) -> Result<KeyFormat, ConfigError> {
    let (prefixes, prefix_setting) = match (get("KEY_PREFIX"), get("KEY_PREFIXES")) {
        (Some(_), Some(_)) => return Err(err("KEY_PREFIXES", "set KEY_PREFIX or KEY_PREFIXES, not both")),
        (Some(prefix), None) => (vec![prefix], "KEY_PREFIX"),
        (None, Some(text)) => {
            let list: Vec<String> = crate::json::parse(&text)
                .map_err(|_| err("KEY_PREFIXES", "must be a JSON list of prefixes, the first minting new keys"))?;
            (list, "KEY_PREFIXES")
        }
        (None, None) => (vec!["kg".to_string()], "KEY_PREFIX"),
    };
    const SEGMENTS_SHAPE: &str = r#"must be "none" or a JSON object from "live"/"test" to a segment name or a list of them"#;
    let segments = match get("KEY_ENV_SEGMENTS").as_deref() {
        None => KeyFormat::default_segments(),
        Some("none") => Vec::new(),
        Some(text) => {
            let map: serde_json::Map<String, serde_json::Value> =
                crate::json::parse(text).map_err(|_| err("KEY_ENV_SEGMENTS", SEGMENTS_SHAPE))?;
            let mut segments = Vec::new();
            // Live first, so the lists' own order decides which name mints.
            for env in [KeyEnv::Live, KeyEnv::Test] {
                let names = match map.get(env.as_str()) {
                    None => continue,
                    Some(serde_json::Value::String(name)) => vec![name.clone()],
                    // A list of strings, read from the `Value` (a `from_value` would compile a
                    // second decoder of `Vec<String>` into the wasm).
                    Some(value) => value
                        .as_array()
                        .and_then(|names| names.iter().map(|name| name.as_str().map(String::from)).collect::<Option<Vec<_>>>())
                        .ok_or_else(|| err("KEY_ENV_SEGMENTS", SEGMENTS_SHAPE))?,
                };
                if names.is_empty() {
                    return Err(err("KEY_ENV_SEGMENTS", format!("names no segment for {env} keys (leave {env} out instead)")));
                }
                segments.extend(names.into_iter().map(|name| (name, env)));
            }
            if let Some(other) = map.keys().find(|k| KeyEnv::from_name(k).is_none()) {
                return Err(err("KEY_ENV_SEGMENTS", format!("{other:?} is not an environment (live, test)")));
            }
            segments
        }
    };
    KeyFormat::new(prefixes, segments).map_err(|problem| match problem {
        KeyFormatProblem::Prefixes(problem) => err(prefix_setting, problem),
        KeyFormatProblem::Segments(problem) => err("KEY_ENV_SEGMENTS", problem),
    })
}

/// `http(s)://host[:port][/base]`, no query or fragment; trailing `/` removed. Returned with its
/// audience (a host or port that has none is refused).
fn origin_url(setting: &'static str, value: Option<String>) -> Result<Option<(String, Audience)>, ConfigError> {
    let Some(url) = value else { return Ok(None) };
    let rest = url.strip_prefix("https://").or_else(|| url.strip_prefix("http://"));
    let ok = rest.is_some_and(|r| {
        let host = r.split('/').next().unwrap_or("");
        !host.is_empty() && !r.contains(['?', '#', ' ']) && !host.contains('@')
    });
    let audience = Audience::from_url(&url).filter(|_| ok);
    let Some(audience) = audience else {
        return Err(err(setting, "must be an http(s) URL without query, fragment or credentials, with an ASCII host and a valid port"));
    };
    Ok(Some((url.trim_end_matches('/').to_string(), audience)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn base() -> HashMap<&'static str, String> {
        HashMap::from([("ORIGIN_URL", "http://127.0.0.1:8788/".to_string()), ("ORIGIN_SIGNING_SECRET", "0123456789abcdef0123".to_string())])
    }

    fn parse(vars: &HashMap<&'static str, String>) -> Result<Config, ConfigError> {
        Config::from_lookup(|name| vars.get(name).cloned())
    }

    #[test]
    fn leak_reports_are_off_by_default_and_configurable() {
        let config = parse(&base()).unwrap();
        assert_eq!(config.leaks, LeakSettings { enabled: false, keys_url: GITHUB_KEYS_URL.into(), action: LeakAction::Disable });
        let mut vars = base();
        vars.insert("LEAK_REPORTS", "on".into());
        vars.insert("LEAK_KEYS_URL", "http://127.0.0.1:9000/keys".into());
        vars.insert("LEAK_ACTION", "notify".into());
        let config = parse(&vars).unwrap();
        assert_eq!(
            (config.leaks.enabled, config.leaks.keys_url.as_str(), config.leaks.action),
            (true, "http://127.0.0.1:9000/keys", LeakAction::Notify)
        );
    }

    #[test]
    fn defaults_apply_when_only_required_settings_are_set() {
        let config = parse(&base()).unwrap();
        assert_eq!(config.key_format, KeyFormat::default());
        assert_eq!(config.auth_header, "authorization");
        assert_eq!(config.api_key_header, "x-api-key");
        assert_eq!(config.routes.len(), 3);
        assert_eq!(config.cache_ttl_ms, 30_000);
        assert!(config.negative_cache_ttl_ms < config.cache_ttl_ms);
        assert_eq!(config.origin_live.url, "http://127.0.0.1:8788");
        assert_eq!(config.origin_live.audience.as_str(), "http://127.0.0.1:8788");
        assert!(config.origin_test.is_none());
        assert!(config.cors.allowed_origins.is_empty());
        assert!(config.scopes.contains(&"content:read".to_string()));
        assert!(config.roles.scopes_of("read_only").is_some());
        assert_eq!(config.admin_prefix, "/_keygate/v1");
        assert_eq!(config.admin_max_body_bytes, 16_384);
        assert!(config.admin_token.is_none());
        assert_eq!(config.admin_auth, AdminAuthLimits { per_address: 10, global: 1000, window_seconds: 60 });
    }

    #[test]
    fn overrides_are_read() {
        let mut vars = base();
        vars.insert("KEY_PREFIX", "acme".into());
        vars.insert("API_KEY_HEADER", "X-Acme-Key".into());
        vars.insert("CACHE_TTL_SECONDS", "5".into());
        vars.insert("ORIGIN_URL_TEST", "https://sandbox.example/api".into());
        vars.insert("ROLES", r#"{"bot":["content:read"]}"#.into());
        vars.insert("CORS_ALLOWED_ORIGINS", r#"["https://acme.example"]"#.into());
        vars.insert("ADMIN_AUTH_FAILURES_PER_ADDRESS", "3".into());
        vars.insert("ADMIN_AUTH_FAILURES_GLOBAL", "30".into());
        vars.insert("ADMIN_AUTH_WINDOW_SECONDS", "900".into());
        let config = parse(&vars).unwrap();
        assert_eq!(config.admin_auth, AdminAuthLimits { per_address: 3, global: 30, window_seconds: 900 });
        assert_eq!(config.key_format, KeyFormat::standard("acme").unwrap());
        assert_eq!(config.api_key_header, "x-acme-key");
        assert_eq!(config.cache_ttl_ms, 5_000);
        let origin_test = config.origin_test.as_ref().unwrap();
        assert_eq!(origin_test.url, "https://sandbox.example/api");
        assert_eq!(origin_test.audience.as_str(), "https://sandbox.example");
        assert!(config.roles.scopes_of("bot").is_some());
        assert_eq!(config.cors.allowed_origins, vec!["https://acme.example".to_string()]);
    }

    #[test]
    fn a_product_can_replace_the_whole_role_set_and_its_scope_catalogue() {
        let mut vars = base();
        vars.insert("BUILTIN_ROLES", "off".into());
        vars.insert("SCOPES", r#"["posts:read","posts:write"]"#.into());
        vars.insert("ROLES", r#"{"poster":["posts:*"]}"#.into());
        vars.insert("ROUTES", r#"[{"methods":["GET"],"path":"/v1/posts","scopes":["posts:read"]}]"#.into());
        let config = parse(&vars).unwrap();
        let names: Vec<&str> = config.roles.names().collect();
        assert_eq!(names, ["poster"], "no built-in role is left over (no super_admin to mint)");
        vars.insert("BUILTIN_ROLES", "on".into());
        let error = parse(&vars).unwrap_err();
        assert_eq!(error.setting, "ROLES", "the built-ins grant scopes outside this catalogue: {error}");
        vars.remove("ROLES");
        vars.insert("BUILTIN_ROLES", "off".into());
        assert_eq!(parse(&vars).unwrap().roles.names().count(), 0, "scopes only, no roles (OptimoCMS)");
    }

    #[test]
    fn key_format_settings_build_the_three_shapes() {
        let rows: Vec<(&str, Vec<(&'static str, &str)>, KeyFormat)> = vec![
            ("unset: today's format", vec![], KeyFormat::default()),
            ("one prefix", vec![("KEY_PREFIX", "acme")], KeyFormat::standard("acme").unwrap()),
            (
                "a list of prefixes",
                vec![("KEY_PREFIXES", r#"["optimo","kg"]"#)],
                KeyFormat::new(vec!["optimo".into(), "kg".into()], KeyFormat::default_segments()).unwrap(),
            ),
            (
                "OptimoCMS: live and sandbox, old test segment still accepted",
                vec![("KEY_PREFIXES", r#"["optimo","kg"]"#), ("KEY_ENV_SEGMENTS", r#"{"test":["sandbox","test"],"live":"live"}"#)],
                KeyFormat::new(
                    vec!["optimo".into(), "kg".into()],
                    vec![("live".into(), KeyEnv::Live), ("sandbox".into(), KeyEnv::Test), ("test".into(), KeyEnv::Test)],
                )
                .unwrap(),
            ),
            (
                "Ovok: no segment",
                vec![("KEY_PREFIX", "cmspub"), ("KEY_ENV_SEGMENTS", "none")],
                KeyFormat::new(vec!["cmspub".into()], vec![]).unwrap(),
            ),
            (
                "no segment as an empty object",
                vec![("KEY_PREFIX", "cmspub"), ("KEY_ENV_SEGMENTS", "{}")],
                KeyFormat::new(vec!["cmspub".into()], vec![]).unwrap(),
            ),
            (
                "live only",
                vec![("KEY_ENV_SEGMENTS", r#"{"live":["live"]}"#)],
                KeyFormat::new(vec!["kg".into()], vec![("live".into(), KeyEnv::Live)]).unwrap(),
            ),
        ];
        for (what, settings, expected) in rows {
            let mut vars = base();
            vars.extend(settings.into_iter().map(|(name, value)| (name, value.to_string())));
            assert_eq!(parse(&vars).unwrap_or_else(|e| panic!("{what}: {e}")).key_format, expected, "{what}");
        }
        let mut both = base();
        both.insert("KEY_PREFIX", "kg".into());
        both.insert("KEY_PREFIXES", r#"["kg"]"#.into());
        let error = parse(&both).unwrap_err();
        assert_eq!(error.setting, "KEY_PREFIXES");
        assert!(error.problem.contains("KEY_PREFIX or KEY_PREFIXES"), "{}", error.problem);
    }

    #[test]
    fn invalid_settings_name_the_setting() {
        let rows: Vec<(&str, &'static str, Option<&str>)> = vec![
            ("bad prefix", "KEY_PREFIX", Some("K_G")),
            ("a JSON list in KEY_PREFIX", "KEY_PREFIX", Some(r#"["kg"]"#)),
            ("prefixes not a list", "KEY_PREFIXES", Some("kg")),
            ("prefixes empty", "KEY_PREFIXES", Some("[]")),
            ("prefixes with a bad one", "KEY_PREFIXES", Some(r#"["kg","K_G"]"#)),
            ("prefixes with a duplicate", "KEY_PREFIXES", Some(r#"["kg","kg"]"#)),
            ("segments not JSON", "KEY_ENV_SEGMENTS", Some("live,test")),
            ("segments as a list", "KEY_ENV_SEGMENTS", Some(r#"["live","test"]"#)),
            ("segments for an unknown env", "KEY_ENV_SEGMENTS", Some(r#"{"live":"live","prod":"prod"}"#)),
            ("segment → env instead of env → segments", "KEY_ENV_SEGMENTS", Some(r#"{"live":"live","sandbox":"test"}"#)),
            ("segment with an underscore", "KEY_ENV_SEGMENTS", Some(r#"{"live":"li_ve"}"#)),
            ("segment uppercase", "KEY_ENV_SEGMENTS", Some(r#"{"live":"Live"}"#)),
            ("segment too long", "KEY_ENV_SEGMENTS", Some(r#"{"live":"abcdefghijklmnopq"}"#)),
            ("segment empty", "KEY_ENV_SEGMENTS", Some(r#"{"live":[""]}"#)),
            ("env with an empty list", "KEY_ENV_SEGMENTS", Some(r#"{"live":"live","test":[]}"#)),
            ("segment used twice", "KEY_ENV_SEGMENTS", Some(r#"{"live":"live","test":["sandbox","live"]}"#)),
            ("no live segment", "KEY_ENV_SEGMENTS", Some(r#"{"test":"sandbox"}"#)),
            ("segment not a string", "KEY_ENV_SEGMENTS", Some(r#"{"live":1}"#)),
            ("bad header", "AUTH_HEADER", Some("bad header")),
            ("same headers", "API_KEY_HEADER", Some("Authorization")),
            ("routes not json", "ROUTES", Some("GET /x")),
            ("routes empty", "ROUTES", Some("[]")),
            ("roles bad scope", "ROLES", Some(r#"{"x":["BAD"]}"#)),
            ("role granting a scope outside the catalogue", "ROLES", Some(r#"{"x":["contnet:read"]}"#)),
            (
                "route requiring a scope outside the catalogue",
                "ROUTES",
                Some(r#"[{"methods":["GET"],"path":"/x","scopes":["content:raed"]}]"#),
            ),
            ("builtin roles neither on nor off", "BUILTIN_ROLES", Some("maybe")),
            ("scopes with wildcard", "SCOPES", Some(r#"["content:*"]"#)),
            ("ttl not a number", "CACHE_TTL_SECONDS", Some("soon")),
            ("ttl too large", "CACHE_TTL_SECONDS", Some("99999")),
            ("origin missing", "ORIGIN_URL", None),
            ("origin not http", "ORIGIN_URL", Some("ftp://x")),
            ("origin with query", "ORIGIN_URL", Some("http://x/?a=1")),
            ("origin with credentials", "ORIGIN_URL", Some("http://user:pw@x")),
            ("origin with a bad port", "ORIGIN_URL", Some("http://x:99999")),
            ("origin with a non-ascii host", "ORIGIN_URL", Some("https://bücher.example")),
            ("test origin bad", "ORIGIN_URL_TEST", Some("localhost:1")),
            ("secret missing", "ORIGIN_SIGNING_SECRET", None),
            ("secret short", "ORIGIN_SIGNING_SECRET", Some("short")),
            ("test secret short", "ORIGIN_SIGNING_SECRET_TEST", Some("short")),
            ("cors not a list", "CORS_ALLOWED_ORIGINS", Some("https://x")),
            ("admin prefix relative", "ADMIN_PREFIX", Some("admin")),
            ("admin prefix dot segment", "ADMIN_PREFIX", Some("/a/../b")),
            ("admin body limit too large", "ADMIN_MAX_BODY_BYTES", Some("99999999")),
            ("admin token short", "ADMIN_TOKEN", Some("short")),
            ("admin token with a space", "ADMIN_TOKEN", Some("0123456789 abcdef0123")),
            ("admin token with a comma", "ADMIN_TOKEN", Some("0123456789,abcdef0123")),
            ("admin auth limit zero", "ADMIN_AUTH_FAILURES_PER_ADDRESS", Some("0")),
            ("admin auth limit not a number", "ADMIN_AUTH_FAILURES_PER_ADDRESS", Some("ten")),
            ("admin auth global zero", "ADMIN_AUTH_FAILURES_GLOBAL", Some("0")),
            ("admin auth global below per address", "ADMIN_AUTH_FAILURES_GLOBAL", Some("5")),
            ("admin auth window of a day", "ADMIN_AUTH_WINDOW_SECONDS", Some("86400")),
            ("admin auth window zero", "ADMIN_AUTH_WINDOW_SECONDS", Some("0")),
            ("leak reports yes", "LEAK_REPORTS", Some("yes")),
            ("leak keys over http", "LEAK_KEYS_URL", Some("http://api.github.com/meta")),
            ("leak keys on a loopback-looking host", "LEAK_KEYS_URL", Some("http://127.0.0.1.evil.example/")),
            ("leak action delete", "LEAK_ACTION", Some("delete")),
            ("tiers not json", "TIERS", Some("free")),
            ("tier with bad limit", "TIERS", Some(r#"{"x":{"limits":[{"name":"m","limit":0,"window_seconds":60}]}}"#)),
            (
                "tier with a rate above one per microsecond",
                "TIERS",
                Some(r#"{"x":{"limits":[{"name":"s","limit":1000001,"window_seconds":1}]}}"#),
            ),
            (
                "fast binding for an unknown limit",
                "TIERS",
                Some(r#"{"x":{"limits":[{"name":"m","limit":5,"window_seconds":60}],"fast_binding":{"binding":"RL","limit":"hour"}}}"#),
            ),
            (
                "fast binding on a 30 s window",
                "TIERS",
                Some(r#"{"x":{"limits":[{"name":"m","limit":5,"window_seconds":30}],"fast_binding":{"binding":"RL","limit":"m"}}}"#),
            ),
            ("unknown default tier", "DEFAULT_TIER", Some("platinum")),
            ("bad limit mode", "LIMIT_MODE", Some("strict")),
            ("bad failure policy", "RATE_LIMIT_FAILURE", Some("maybe")),
            ("lease not a number", "LEASE_MS", Some("soon")),
            ("lease over a minute", "LEASE_MS", Some("60001")),
            ("fault switch outside test mode", "LIMITER_FAULT", Some("on")),
            ("kv fault outside test mode", "KV_FAULT", Some("on")),
            ("test mode with another value", "KEYGATE_TEST_MODE", Some("yes")),
            ("origin timeout too long", "ORIGIN_TIMEOUT_MS", Some("999999")),
            ("last-use reports never", "LAST_USED_REPORT_SECONDS", Some("0")),
            ("unknown admin facade", "ADMIN_FACADE", Some("kong")),
            ("unknown error dialect", "ERROR_DIALECT", Some("json")),
            ("error map of an unknown code", "ERROR_MAP", Some(r#"{"NOPE":{"status":401}}"#)),
            ("unknown quota code", "QUOTA_CODE", Some("quota")),
            ("test key status 404", "TEST_KEY_ON_LIVE_ROUTE", Some("404")),
            ("unknown empty scopes", "EMPTY_SCOPES", Some("some")),
            ("unknown unmatched", "UNMATCHED", Some("403")),
            ("protected prefixes without UNMATCHED=auth", "PROTECTED_PREFIXES", Some(r#"["/v1"]"#)),
            ("header limit of no tier", "RATE_LIMIT_HEADER_LIMIT", Some("hourly")),
        ];
        for (what, setting, value) in rows {
            let mut vars = base();
            match value {
                Some(v) => vars.insert(setting, v.to_string()),
                None => vars.remove(setting),
            };
            let error = parse(&vars).unwrap_err();
            assert_eq!(error.setting, setting, "{what}");
        }
    }

    #[test]
    fn the_first_invalid_setting_in_reading_order_is_reported() {
        // (what, earlier invalid setting, later invalid setting): the earlier group is named.
        let rows: [(&str, (&'static str, &str), (&'static str, &str)); 8] = [
            ("key format before headers", ("KEY_PREFIX", "K_G"), ("AUTH_HEADER", "bad header")),
            ("headers before routes", ("AUTH_HEADER", "bad header"), ("ROUTES", "[]")),
            ("roles before scopes", ("BUILTIN_ROLES", "maybe"), ("SCOPES", r#"["content:*"]"#)),
            ("caches before origins", ("CACHE_MAX_ENTRIES", "x"), ("ORIGIN_URL", "ftp://x")),
            ("signing secrets before CORS", ("ORIGIN_SIGNING_SECRET_TEST", "short"), ("CORS_MAX_AGE_SECONDS", "x")),
            ("admin token before tiers", ("ADMIN_TOKEN", "short"), ("TIERS", "free")),
            ("limit mode before test switches", ("LIMIT_MODE", "strict"), ("KV_FAULT", "on")),
            ("origin timeout before the refusal settings", ("ORIGIN_TIMEOUT_MS", "999999"), ("ERROR_DIALECT", "json")),
        ];
        for (what, (earlier, earlier_value), (later, later_value)) in rows {
            let mut vars = base();
            vars.insert(later, later_value.to_string());
            assert_eq!(parse(&vars).unwrap_err().setting, later, "{what}: the later one alone is invalid");
            vars.insert(earlier, earlier_value.to_string());
            assert_eq!(parse(&vars).unwrap_err().setting, earlier, "{what}");
        }
    }

    #[test]
    fn the_admin_token_is_held_as_a_digest_that_matches_it() {
        let mut vars = base();
        vars.insert("ADMIN_TOKEN", "  admin-token-5555555555 ".into());
        let config = parse(&vars).unwrap();
        let token = config.admin_token.as_ref().unwrap();
        assert!(token.matches(Some("Bearer admin-token-5555555555")), "surrounding whitespace is trimmed");
        assert!(!token.matches(Some("Bearer admin-token-5555555556")));
        assert_eq!(format!("{token:?}"), "AdminToken(<redacted>)");
    }

    #[test]
    fn shipped_tiers_follow_the_seed_and_resolve_per_key() {
        let config = parse(&base()).unwrap();
        let names: Vec<&str> = config.tiers.keys().map(String::as_str).collect();
        assert_eq!(names, ["enterprise", "free", "pro"]);
        let pro = &config.tiers["pro"].limits;
        let table: Vec<(&str, u64, u64)> = pro.iter().map(|l| (l.name.as_str(), l.limit, l.window_seconds)).collect();
        assert_eq!(table, [("burst", 50, 1), ("minute", 600, 60), ("daily", 100_000, 86_400)]);
        assert!(config.tiers["enterprise"].limits.iter().all(|l| l.name != "daily"), "enterprise: unlimited daily");
        assert_eq!(config.limit_mode, LimitMode::Exact);
        assert_eq!(config.rate_limit_failure, FailurePolicy::Open);
        assert!(!config.limiter_fault);

        let mut record: KeyRecord = serde_json::from_str(
            r#"{"id":"key_1","project":"p","name":"n","env":"live","status":"active","created_at":"2026-01-01T00:00:00Z","updated_at":"2026-01-01T00:00:00Z"}"#,
        ).unwrap();
        assert!(config.limits_for(&record).is_empty(), "no tier, no default tier: unlimited");
        record.tier = Some("free".into());
        assert_eq!(config.limits_for(&record).len(), 3);
        assert_eq!(config.fast_binding_for(&record).unwrap().binding, "RL_FREE_MINUTE");
        record.limits = Some(vec![LimitSpec::new("hour", 5, 3600)]);
        assert_eq!(config.limits_for(&record)[0].name, "hour", "inline limits win");
        assert!(config.fast_binding_for(&record).is_none(), "inline limits have no binding");
        record.limit_mode = Some(LimitMode::Fast);
        assert_eq!(config.mode_for(&record), LimitMode::Fast);

        let mut vars = base();
        vars.insert("DEFAULT_TIER", "free".into());
        vars.insert("LIMIT_MODE", "fast".into());
        vars.insert("LIMITER_FAULT", "on".into());
        vars.insert("KEYGATE_TEST_MODE", "yes-this-is-a-test-deployment".into());
        let config = parse(&vars).unwrap();
        record.limits = None;
        record.tier = None;
        record.limit_mode = None;
        assert_eq!(config.limits_for(&record).len(), 3, "default tier applies");
        record.tier = Some("retired".into());
        assert_eq!(config.limits_for(&record).len(), 3, "an unconfigured tier falls back to the default tier");
        assert_eq!(config.mode_for(&record), LimitMode::Fast);
        assert!(config.limiter_fault);
    }

    #[test]
    fn secret_is_never_printed() {
        let mut vars = base();
        vars.insert("ORIGIN_URL_TEST", "http://127.0.0.1:8789".into());
        vars.insert("ORIGIN_SIGNING_SECRET_TEST", "test-secret-9876543210".into());
        vars.insert("ADMIN_TOKEN", "admin-token-5555555555".into());
        let config = parse(&vars).unwrap();
        let printed = format!("{config:?}");
        for secret in ["0123456789abcdef0123", "test-secret-9876543210", "admin-token-5555555555"] {
            assert!(!printed.contains(secret), "{secret}");
        }
        assert!(printed.contains("<redacted>"));
    }

    #[test]
    fn each_origin_is_signed_with_its_own_secret_and_audience() {
        use crate::signature::{verify, SignedIdentity, DEFAULT_LEEWAY_SECONDS};
        let identity = |audience: &Audience| SignedIdentity {
            audience: audience.as_str().to_string(),
            issued_at: 1_000,
            expires_at: 1_060,
            method: "GET".into(),
            path_and_query: "/x".into(),
            key_id: "key_1".into(),
            project: "acme".into(),
            env: "test".into(),
            scopes: "content:read".into(),
        };
        // Whether `target`'s signer signs with `secret` for its own audience.
        let signs_with = |target: &OriginTarget, secret: &str| {
            let token = target.signer.sign(&identity(&target.audience));
            verify(secret.as_bytes(), &target.audience, "GET", "/x", Some(&token), 1_000, DEFAULT_LEEWAY_SECONDS).is_ok()
        };
        let live_secret = "0123456789abcdef0123";
        let test_secret = "test-secret-9876543210";
        let mut vars = base();
        vars.insert("ORIGIN_URL_TEST", "http://127.0.0.1:8789/sandbox".into());

        let shared = parse(&vars).unwrap();
        let test = shared.origin_test.as_ref().unwrap();
        assert_eq!(test.audience.as_str(), "http://127.0.0.1:8789");
        assert_ne!(test.audience, shared.origin_live.audience);
        assert!(signs_with(&shared.origin_live, live_secret));
        assert!(signs_with(test, live_secret), "without ORIGIN_SIGNING_SECRET_TEST the live secret signs for the test origin");

        vars.insert("ORIGIN_SIGNING_SECRET_TEST", test_secret.into());
        let separate = parse(&vars).unwrap();
        let test = separate.origin_test.as_ref().unwrap();
        assert!(signs_with(&separate.origin_live, live_secret));
        assert!(!signs_with(&separate.origin_live, test_secret));
        assert!(signs_with(test, test_secret));
        assert!(!signs_with(test, live_secret));

        // A test secret without a test origin is allowed (and unused).
        vars.remove("ORIGIN_URL_TEST");
        assert!(parse(&vars).unwrap().origin_test.is_none());
    }

    #[test]
    fn refusal_settings_default_to_todays_behaviour_and_are_read() {
        use crate::dialect::{ErrorDialect, QuotaCode};
        let config = parse(&base()).unwrap();
        assert_eq!(config.refusals, Refusals::default());
        assert_eq!(config.empty_scopes, EmptyScopes::None);
        assert!(config.empty_grant().is_empty());
        assert_eq!(config.unmatched, Unmatched::NotFound);
        assert_eq!(config.rate_limit_header_limit, None);

        let mut vars = base();
        vars.insert("ERROR_DIALECT", "octopost".into());
        vars.insert("ERROR_MAP", r#"{"KEY_REVOKED":{"message":"Revoked."}}"#.into());
        vars.insert("QUOTA_CODE", "rate_limit".into());
        vars.insert("TEST_KEY_ON_LIVE_ROUTE", "401".into());
        vars.insert("EMPTY_SCOPES", "all".into());
        vars.insert("UNMATCHED", "auth".into());
        vars.insert("PROTECTED_PREFIXES", r#"["/v1"]"#.into());
        vars.insert("RATE_LIMIT_HEADER_LIMIT", "minute".into());
        let config = parse(&vars).unwrap();
        assert_eq!(config.refusals.dialect, ErrorDialect::Octopost);
        assert_eq!(config.refusals.quota_code, QuotaCode::RateLimit);
        assert_eq!(config.refusals.environment_mismatch_status, 401);
        assert_eq!(config.refusals.map["KEY_REVOKED"].message.as_deref(), Some("Revoked."));
        assert_eq!(config.empty_grant(), config.scopes.as_slice(), "full access is the whole catalogue");
        assert_eq!(config.unmatched, Unmatched::Auth { protected_prefixes: Some(vec!["/v1".into()]) });
        assert_eq!(config.rate_limit_header_limit.as_deref(), Some("minute"));
    }

    #[test]
    fn shipped_default_routes_compile() {
        assert!(RouteTable::from_json(DEFAULT_ROUTES).is_ok());
    }
}
