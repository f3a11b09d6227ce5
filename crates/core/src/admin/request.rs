//! Admin request validation (pure): JSON bodies and list queries → typed requests, or
//! `VALIDATION_FAILED` with one message per offending field.
//!
//! Bodies are read as a JSON object so every field can be checked and every problem reported
//! at once (including unknown fields, by name), and so PATCH can tell "absent" (unchanged) from
//! `null` (clear: lifetime, no role, any origin).

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::admin::patch::Patch;
use crate::config::Tier;
use crate::error::GatewayError;
use crate::key::{KeyEnv, KeyFormat};
use crate::limit::algorithm::{validate_new_specs, LimitSpec};
use crate::limit::credits::{Credits, MAX_CREDITS};
use crate::network;
use crate::record::{LimitMode, Status};
use crate::scope::{EmptyScopes, Roles};
use crate::timestamp::Timestamp;

/// What validation checks against.
#[derive(Debug, Clone, Copy)]
pub struct Rules<'a> {
    /// Configured roles.
    pub roles: &'a Roles,
    /// Configured concrete scopes.
    pub scopes: &'a [String],
    /// Configured tiers.
    pub tiers: &'a BTreeMap<String, Tier>,
    /// `EMPTY_SCOPES`: under `all`, a key may have neither role nor scopes (it then holds every
    /// scope of the catalogue); under `none` such a key could do nothing, so it is refused.
    pub empty_scopes: EmptyScopes,
    /// The key format (which environments keys can be created in).
    pub key_format: &'a KeyFormat,
    /// Current time, unix millis.
    pub now_ms: i64,
}

impl<'a> Rules<'a> {
    /// The rules of a deployment's `config` at `now_ms`.
    pub fn of(config: &'a crate::config::Config, now_ms: i64) -> Rules<'a> {
        Rules {
            roles: &config.roles,
            scopes: &config.scopes,
            tiers: &config.tiers,
            empty_scopes: config.empty_scopes,
            key_format: &config.key_format,
            now_ms,
        }
    }
}

/// Longest roll grace period: 30 days.
pub const MAX_GRACE_SECONDS: u64 = 30 * 86_400;
/// Most entries in `meta`.
pub const MAX_META_ENTRIES: usize = 16;

/// `POST /keys`.
#[derive(Debug, Clone, PartialEq)]
pub struct CreateKey {
    pub project: String,
    pub name: String,
    pub env: KeyEnv,
    pub role: Option<String>,
    pub scopes: Vec<String>,
    pub valid_from: Option<Timestamp>,
    pub valid_to: Option<Timestamp>,
    pub allowed_origins: Option<Vec<String>>,
    pub allowed_networks: Vec<String>,
    pub allowed_countries: Vec<String>,
    pub meta: BTreeMap<String, String>,
    pub tier: Option<String>,
    pub limits: Option<Vec<LimitSpec>>,
    pub limit_mode: Option<LimitMode>,
    /// Credits: the configuration and the initial balance (`remaining`).
    pub credits: Option<(Credits, u64)>,
    /// `active` (default) or `inactive`: a key may be created disabled, to enable later.
    pub status: Status,
}

/// `PATCH /keys/{id}`, validated: what changes. `None` / [`Patch::Keep`] = unchanged; a field
/// that can be empty is a [`Patch`] (`null` in the body clears it).
///
/// Validated once, at the admin API's edge; the registry is sent the body the edge validated and
/// reads it again with the same field readers, without the deployment's rules
/// ([`validated_update`]): no serializer or decoder of this type in the wasm.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct UpdateKey {
    pub name: Option<String>,
    pub role: Patch<String>,
    pub scopes: Option<Vec<String>>,
    pub valid_from: Patch<Timestamp>,
    pub valid_to: Patch<Timestamp>,
    pub status: Option<Status>,
    pub allowed_origins: Patch<Vec<String>>,
    /// The new network list; `[]` (also `null` in the body) lifts the restriction.
    pub allowed_networks: Option<Vec<String>>,
    /// The new country list; `[]` (also `null` in the body) lifts the restriction.
    pub allowed_countries: Option<Vec<String>>,
    pub meta: Option<BTreeMap<String, String>>,
    pub tier: Patch<String>,
    pub limits: Patch<Vec<LimitSpec>>,
    pub limit_mode: Patch<LimitMode>,
    /// The credits configuration (the balance changes through `POST /keys/{id}/credits`).
    pub credits: Patch<Credits>,
    /// Whether the result may have neither role nor scopes (`EMPTY_SCOPES=all`, from [`Rules`]).
    pub may_have_no_permissions: bool,
}

/// `POST /keys/{id}/roll`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RollKey {
    /// The fixed grace, or with `after_new_used_seconds` the maximum grace.
    pub grace_seconds: u64,
    /// An adaptive grace (`"grace": {…}`, [`crate::rotation`]): how long the new key must have
    /// been in use.
    pub after_new_used_seconds: Option<u64>,
    /// With an adaptive grace, how long the old key must have been unused, if required.
    pub old_unused_seconds: Option<u64>,
}

/// `GET /keys?...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListQuery {
    pub project: String,
    pub status: Option<Status>,
    pub cursor: Option<String>,
    pub limit: usize,
}

/// Collects field problems; turns into `VALIDATION_FAILED` when any.
#[derive(Default)]
struct Problems(BTreeMap<String, String>);

impl Problems {
    fn add(&mut self, field: &str, problem: impl Into<String>) {
        self.0.entry(field.to_string()).or_insert_with(|| problem.into());
    }

    fn finish<T>(self, value: T) -> Result<T, GatewayError> {
        if self.0.is_empty() {
            Ok(value)
        } else {
            Err(GatewayError::ValidationFailed { fields: self.0 })
        }
    }
}

fn single(field: &str, problem: &str) -> GatewayError {
    GatewayError::ValidationFailed { fields: [(field.to_string(), problem.to_string())].into() }
}

fn object(body: &[u8]) -> Result<Map<String, Value>, GatewayError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(single("body", "must be a JSON object")),
        Err(e) => Err(single("body", &format!("is not valid JSON: {e}"))),
    }
}

fn reject_unknown(map: &Map<String, Value>, allowed: &[&str], problems: &mut Problems) {
    for name in map.keys() {
        if !allowed.contains(&name.as_str()) {
            problems.add(name, "unknown field");
        }
    }
}

/// Whether `project` is 1–64 chars of `a-z 0-9 - _` starting with a letter or digit (names
/// starting with `_` are reserved, e.g. for the registry's id directory).
pub fn is_valid_project(project: &str) -> bool {
    (1..=64).contains(&project.len())
        && project.bytes().next().is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && project.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

fn project(value: Option<&Value>, problems: &mut Problems) -> String {
    match value {
        Some(Value::String(p)) if is_valid_project(p) => p.clone(),
        None => {
            problems.add("project", "is required");
            String::new()
        }
        _ => {
            problems.add("project", "must be 1-64 characters of a-z, 0-9, '-' or '_'");
            String::new()
        }
    }
}

fn name(value: &Value, problems: &mut Problems) -> String {
    match value.as_str().map(str::trim) {
        Some(n) if !n.is_empty() && n.chars().count() <= 100 && !n.chars().any(char::is_control) => n.to_string(),
        _ => {
            problems.add("name", "must be 1-100 characters (no control characters)");
            String::new()
        }
    }
}

/// A role (`rules`: `None` for an update the edge validated, [`validated_update`]).
fn role(value: &Value, rules: Option<&Rules<'_>>, problems: &mut Problems) -> Option<String> {
    match value {
        Value::Null => None,
        Value::String(role) if rules.is_none_or(|rules| rules.roles.scopes_of(role).is_some()) => Some(role.clone()),
        _ => {
            let known: Vec<&str> = rules.map(|rules| rules.roles.names().collect()).unwrap_or_default();
            problems.add("role", format!("must be one of: {}", known.join(", ")));
            None
        }
    }
}

/// Whether `scope` may be granted: a configured scope, `resource:*` for a configured
/// resource, or `*`.
pub fn is_grantable(scope: &str, configured: &[String]) -> bool {
    if scope == "*" || configured.iter().any(|s| s == scope) {
        return true;
    }
    scope.strip_suffix(":*").is_some_and(|resource| configured.iter().any(|s| s.split_once(':').is_some_and(|(r, _)| r == resource)))
}

fn scopes(value: &Value, rules: Option<&Rules<'_>>, problems: &mut Problems) -> Vec<String> {
    let Some(list) = value.as_array() else {
        problems.add("scopes", "must be a list of scopes");
        return Vec::new();
    };
    let mut out = Vec::new();
    for item in list {
        match item.as_str() {
            Some(scope) if rules.is_none_or(|rules| is_grantable(scope, rules.scopes)) => {
                if !out.iter().any(|s| s == scope) {
                    out.push(scope.to_string());
                }
            }
            Some(scope) => problems.add("scopes", format!("unknown scope {scope:?}")),
            None => problems.add("scopes", "must be a list of strings"),
        }
    }
    if out.len() > 64 {
        problems.add("scopes", "at most 64 scopes");
    }
    out
}

fn timestamp(field: &str, value: &Value, problems: &mut Problems) -> Option<Timestamp> {
    match value {
        Value::Null => None,
        Value::String(text) => {
            let parsed = Timestamp::parse_rfc3339(text);
            if parsed.is_none() {
                problems.add(field, "must be an RFC 3339 timestamp (e.g. 2027-01-01T00:00:00Z) or null");
            }
            parsed
        }
        _ => {
            problems.add(field, "must be an RFC 3339 timestamp string or null");
            None
        }
    }
}

/// `scheme://host[:port]`, lowercase scheme http/https, no path.
pub fn is_valid_origin(origin: &str) -> bool {
    let Some(rest) = origin.strip_prefix("https://").or_else(|| origin.strip_prefix("http://")) else {
        return false;
    };
    let (host, port) = match rest.rsplit_once(':') {
        Some((host, port)) if !host.contains(']') || host.ends_with(']') => (host, Some(port)),
        _ => (rest, None),
    };
    let host_ok = !host.is_empty()
        && host.len() <= 253
        && host.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'[' | b']' | b':'));
    let port_ok = port.is_none_or(|p| !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()));
    host_ok && port_ok
}

fn origins(value: &Value, problems: &mut Problems) -> Option<Vec<String>> {
    match value {
        Value::Null => None,
        Value::Array(list) => {
            let mut out = Vec::new();
            for item in list {
                match item.as_str() {
                    Some(origin) if is_valid_origin(origin) => out.push(origin.to_string()),
                    _ => problems.add("allowed_origins", "must be a list of origins like https://app.example.com"),
                }
            }
            if out.len() > 32 {
                problems.add("allowed_origins", "at most 32 origins");
            }
            Some(out)
        }
        _ => {
            problems.add("allowed_origins", "must be a list of origins or null");
            None
        }
    }
}

/// A list restricting where a key may be used from (`allowed_networks`, `allowed_countries`):
/// at most `max` entries, each checked by `entry` (its stored form, or what is wrong with it),
/// duplicates dropped; `null` = `[]` = no restriction. One function for both lists: one copy
/// in the wasm.
fn restriction(field: &str, value: &Value, max: usize, entry: fn(&str) -> Result<String, String>, problems: &mut Problems) -> Vec<String> {
    let list = match value {
        Value::Null => return Vec::new(),
        Value::Array(list) => list,
        _ => {
            problems.add(field, "must be a list of strings or null");
            return Vec::new();
        }
    };
    if list.len() > max {
        problems.add(field, format!("at most {max} entries"));
    }
    let mut out: Vec<String> = Vec::new();
    for item in list {
        match item.as_str().map(entry) {
            Some(Ok(stored)) => {
                if !out.contains(&stored) {
                    out.push(stored);
                }
            }
            Some(Err(problem)) => problems.add(field, problem),
            None => problems.add(field, "must be a list of strings or null"),
        }
    }
    out
}

/// `allowed_networks`: CIDRs (a bare address is one host), kept as written once they parse; a
/// malformed one is refused, not normalised (README "Network restrictions").
fn networks(value: &Value, problems: &mut Problems) -> Vec<String> {
    let entry: fn(&str) -> Result<String, String> = |text| match network::parse_cidr(text) {
        Ok(_) => Ok(text.to_string()),
        Err(e) => Err(format!("{text:?} {}", e.problem())),
    };
    restriction("allowed_networks", value, network::MAX_NETWORKS, entry, problems)
}

/// `allowed_countries`: ISO 3166-1 alpha-2 codes, any case, stored uppercase.
fn countries(value: &Value, problems: &mut Problems) -> Vec<String> {
    let entry: fn(&str) -> Result<String, String> = |text| {
        let mut code = text.to_string();
        code.make_ascii_uppercase();
        if network::is_country(&code) {
            Ok(code)
        } else {
            Err(format!("{text:?} is not a two-letter country code (ISO 3166-1 alpha-2, or T1)"))
        }
    };
    restriction("allowed_countries", value, network::MAX_COUNTRIES, entry, problems)
}

fn meta(value: &Value, problems: &mut Problems) -> BTreeMap<String, String> {
    let Some(map) = value.as_object() else {
        problems.add("meta", "must be an object of strings");
        return BTreeMap::new();
    };
    if map.len() > MAX_META_ENTRIES {
        problems.add("meta", format!("at most {MAX_META_ENTRIES} entries"));
    }
    let mut out = BTreeMap::new();
    for (key, value) in map {
        match value.as_str() {
            Some(text) if !key.is_empty() && key.chars().count() <= 64 && text.chars().count() <= 256 => {
                out.insert(key.clone(), text.to_string());
            }
            _ => problems.add("meta", "keys must be 1-64 characters and values strings of at most 256"),
        }
    }
    out
}

fn tier(value: &Value, rules: Option<&Rules<'_>>, problems: &mut Problems) -> Option<String> {
    match value {
        Value::Null => None,
        Value::String(name) if rules.is_none_or(|rules| rules.tiers.contains_key(name)) => Some(name.clone()),
        _ => {
            let known: Vec<&str> = rules.map(|rules| rules.tiers.keys().map(String::as_str).collect()).unwrap_or_default();
            problems.add("tier", format!("must be one of: {} (or null)", known.join(", ")));
            None
        }
    }
}

fn limits(value: &Value, problems: &mut Problems) -> Option<Vec<LimitSpec>> {
    if value.is_null() {
        return None;
    }
    // Through the text, not `from_value`: one decoder of `LimitSpec` in the wasm, not two.
    match crate::json::parse::<Vec<LimitSpec>>(&value.to_string()) {
        Ok(specs) => match validate_new_specs(&specs) {
            Ok(()) => Some(specs),
            Err(problem) => {
                problems.add("limits", problem);
                None
            }
        },
        Err(_) => {
            problems.add("limits", "must be a list of {name, limit, window_seconds} (or null)");
            None
        }
    }
}

/// The body's `credits` ([`Credits::from_value`]; `remaining` only where `with_remaining`,
/// defaulting to the refill's amount, else 0), or `null`.
fn credits(value: &Value, with_remaining: bool, problems: &mut Problems) -> Option<(Credits, u64)> {
    if value.is_null() {
        return None;
    }
    match Credits::from_value(value, with_remaining) {
        Ok((credits, remaining)) => {
            let remaining = remaining.or(credits.refill.map(|r| r.amount)).unwrap_or(0);
            Some((credits, remaining))
        }
        Err(problem) => {
            problems.add("credits", problem);
            None
        }
    }
}

/// `POST /keys/{id}/credits`, validated: set the balance, or add to it (negative: deduct).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CreditsChange {
    pub set: bool,
    pub amount: i64,
}

/// Validates a credits body: `{"op": "add" | "set", "amount": N}`; `set` takes 0..=10^12,
/// `add` −10^12..=10^12 (the balance never goes below zero).
pub fn parse_credits(body: &[u8]) -> Result<CreditsChange, GatewayError> {
    let map = object(body)?;
    let mut problems = Problems::default();
    reject_unknown(&map, &["op", "amount"], &mut problems);
    let set = match map.get("op").and_then(Value::as_str) {
        Some("set") => true,
        Some("add") => false,
        _ => {
            problems.add("op", "must be \"add\" or \"set\"");
            false
        }
    };
    let low = if set { 0 } else { -(MAX_CREDITS as i64) };
    let amount = map.get("amount").and_then(Value::as_i64).filter(|a| (low..=MAX_CREDITS as i64).contains(a));
    if amount.is_none() {
        problems.add("amount", format!("must be an integer {low}..1000000000000"));
    }
    problems.finish(CreditsChange { set, amount: amount.unwrap_or(0) })
}

fn limit_mode(value: &Value, problems: &mut Problems) -> Option<LimitMode> {
    match value.as_str() {
        _ if value.is_null() => None,
        Some("exact") => Some(LimitMode::Exact),
        Some("fast") => Some(LimitMode::Fast),
        _ => {
            problems.add("limit_mode", "must be \"exact\", \"fast\" or null");
            None
        }
    }
}

/// Checks the validity window: `valid_to` in the future and after `valid_from`.
pub fn check_window(valid_from: Option<Timestamp>, valid_to: Option<Timestamp>, now_ms: i64) -> Result<(), GatewayError> {
    if let Some(to) = valid_to {
        if to.millis() <= now_ms {
            return Err(single("valid_to", "must be in the future"));
        }
        if valid_from.is_some_and(|from| to <= from) {
            return Err(single("valid_to", "must be after valid_from"));
        }
    }
    Ok(())
}

const CREATE_FIELDS: &[&str] = &[
    "project",
    "name",
    "env",
    "role",
    "scopes",
    "valid_from",
    "valid_to",
    "allowed_origins",
    "allowed_networks",
    "allowed_countries",
    "meta",
    "tier",
    "limits",
    "limit_mode",
    "credits",
    "status",
];
const UPDATE_FIELDS: &[&str] = &[
    "name",
    "role",
    "scopes",
    "valid_from",
    "valid_to",
    "status",
    "allowed_origins",
    "allowed_networks",
    "allowed_countries",
    "meta",
    "tier",
    "limits",
    "limit_mode",
    "credits",
];

/// Validates a create body.
pub fn parse_create(body: &[u8], rules: &Rules<'_>) -> Result<CreateKey, GatewayError> {
    let map = object(body)?;
    let mut problems = Problems::default();
    reject_unknown(&map, CREATE_FIELDS, &mut problems);
    let project = project(map.get("project"), &mut problems);
    let name = match map.get("name") {
        Some(value) => name(value, &mut problems),
        None => {
            problems.add("name", "is required");
            String::new()
        }
    };
    let env = match map.get("env") {
        None | Some(Value::Null) => KeyEnv::Live,
        Some(value) => value.as_str().and_then(KeyEnv::from_name).unwrap_or_else(|| {
            problems.add("env", "must be \"live\" or \"test\"");
            KeyEnv::Live
        }),
    };
    if !rules.key_format.mints(env) {
        problems.add("env", format!("must be \"live\": this gateway's key format (KEY_ENV_SEGMENTS) has no segment for {env} keys"));
    }
    let role = map.get("role").and_then(|v| role(v, Some(rules), &mut problems));
    let scopes = map.get("scopes").map(|v| scopes(v, Some(rules), &mut problems)).unwrap_or_default();
    let bare = role.is_none() && scopes.is_empty();
    if bare && rules.empty_scopes == EmptyScopes::None && !problems.0.contains_key("role") && !problems.0.contains_key("scopes") {
        problems.add("scopes", "a key needs a role or at least one scope");
    }
    let valid_from = map.get("valid_from").and_then(|v| timestamp("valid_from", v, &mut problems));
    let valid_to = map.get("valid_to").and_then(|v| timestamp("valid_to", v, &mut problems));
    let allowed_origins = map.get("allowed_origins").and_then(|v| origins(v, &mut problems));
    let allowed_networks = map.get("allowed_networks").map(|v| networks(v, &mut problems)).unwrap_or_default();
    let allowed_countries = map.get("allowed_countries").map(|v| countries(v, &mut problems)).unwrap_or_default();
    let meta = map.get("meta").map(|v| meta(v, &mut problems)).unwrap_or_default();
    let tier = map.get("tier").and_then(|v| tier(v, Some(rules), &mut problems));
    let limits = map.get("limits").and_then(|v| limits(v, &mut problems));
    let limit_mode = map.get("limit_mode").and_then(|v| limit_mode(v, &mut problems));
    let credits = map.get("credits").and_then(|v| credits(v, true, &mut problems));
    let status = match map.get("status").map(|v| v.as_str()) {
        None | Some(Some("active")) => Status::Active,
        Some(Some("inactive")) => Status::Inactive,
        Some(_) => {
            problems.add("status", "must be \"active\" or \"inactive\"");
            Status::Active
        }
    };
    if !problems.0.contains_key("valid_to") && !problems.0.contains_key("valid_from") {
        if let Err(GatewayError::ValidationFailed { fields }) = check_window(valid_from, valid_to, rules.now_ms) {
            problems.0.extend(fields);
        }
    }
    problems.finish(CreateKey {
        project,
        name,
        env,
        role,
        scopes,
        valid_from,
        valid_to,
        allowed_origins,
        allowed_networks,
        allowed_countries,
        meta,
        tier,
        limits,
        limit_mode,
        credits,
        status,
    })
}

/// Validates an update body (field by field; the window is checked against the stored record
/// in [`crate::admin::lifecycle::update`]).
pub fn parse_update(body: &[u8], rules: &Rules<'_>) -> Result<UpdateKey, GatewayError> {
    let map = object(body)?;
    let mut problems = Problems::default();
    reject_unknown(&map, UPDATE_FIELDS, &mut problems);
    if map.is_empty() {
        problems.add("body", "names no field to change");
    }
    update_of(&map, Some(rules), problems)
}

/// The change an update body that [`parse_update`] accepted describes, read again (by the
/// registry) without the deployment's rules; `may_have_no_permissions` is the edge's
/// [`UpdateKey::may_have_no_permissions`]. `None` if the body is not such a body.
pub fn validated_update(body: &[u8], may_have_no_permissions: bool) -> Option<UpdateKey> {
    let update = update_of(&object(body).ok()?, None, Problems::default()).ok()?;
    Some(UpdateKey { may_have_no_permissions, ..update })
}

/// The fields of an update body: checked against `rules` (the edge), or, without them, read
/// again by [`validated_update`].
fn update_of(map: &Map<String, Value>, rules: Option<&Rules<'_>>, mut problems: Problems) -> Result<UpdateKey, GatewayError> {
    let may_have_no_permissions = rules.is_some_and(|rules| rules.empty_scopes == EmptyScopes::All);
    let mut update = UpdateKey { may_have_no_permissions, ..UpdateKey::default() };
    if let Some(value) = map.get("name") {
        update.name = Some(name(value, &mut problems));
    }
    if let Some(value) = map.get("role") {
        update.role = Patch::present(role(value, rules, &mut problems));
    }
    if let Some(value) = map.get("scopes") {
        update.scopes = Some(scopes(value, rules, &mut problems));
    }
    if let Some(value) = map.get("valid_from") {
        update.valid_from = Patch::present(timestamp("valid_from", value, &mut problems));
    }
    if let Some(value) = map.get("valid_to") {
        update.valid_to = Patch::present(timestamp("valid_to", value, &mut problems));
    }
    if let Some(value) = map.get("status") {
        update.status = match value.as_str() {
            Some("active") => Some(Status::Active),
            Some("inactive") => Some(Status::Inactive),
            Some("revoked") => {
                problems.add("status", "use DELETE /keys/{id} to revoke");
                None
            }
            _ => {
                problems.add("status", "must be \"active\" or \"inactive\"");
                None
            }
        };
    }
    if let Some(value) = map.get("allowed_origins") {
        update.allowed_origins = Patch::present(origins(value, &mut problems));
    }
    if let Some(value) = map.get("allowed_networks") {
        update.allowed_networks = Some(networks(value, &mut problems));
    }
    if let Some(value) = map.get("allowed_countries") {
        update.allowed_countries = Some(countries(value, &mut problems));
    }
    if let Some(value) = map.get("meta") {
        update.meta = Some(meta(value, &mut problems));
    }
    if let Some(value) = map.get("tier") {
        update.tier = Patch::present(tier(value, rules, &mut problems));
    }
    if let Some(value) = map.get("limits") {
        update.limits = Patch::present(limits(value, &mut problems));
    }
    if let Some(value) = map.get("limit_mode") {
        update.limit_mode = Patch::present(limit_mode(value, &mut problems));
    }
    if let Some(value) = map.get("credits") {
        update.credits = Patch::present(credits(value, false, &mut problems).map(|(credits, _)| credits));
    }
    problems.finish(update)
}

/// What a roll's `grace` must be (the one problem reported for any fault in it).
const GRACE_RULE: &str = "must be {after_new_used_seconds, max_seconds, old_unused_seconds (optional)}: integers, \
                          max_seconds at most 2592000, the others at most max_seconds; not with grace_seconds";

/// Validates a roll body (`{}` means no grace period): `grace_seconds`, or `grace` (an adaptive
/// grace, [`crate::rotation`]) with `after_new_used_seconds`, `max_seconds` and optionally
/// `old_unused_seconds` (each at most `max_seconds`).
pub fn parse_roll(body: &[u8]) -> Result<RollKey, GatewayError> {
    let map = if body.iter().all(u8::is_ascii_whitespace) { Map::new() } else { object(body)? };
    let mut problems = Problems::default();
    reject_unknown(&map, &["grace_seconds", "grace"], &mut problems);
    let grace_seconds = match map.get("grace_seconds") {
        None => 0,
        Some(value) => match value.as_u64() {
            Some(n) if n <= MAX_GRACE_SECONDS => n,
            _ => {
                problems.add("grace_seconds", format!("must be an integer from 0 to {MAX_GRACE_SECONDS}"));
                0
            }
        },
    };
    let mut roll = RollKey { grace_seconds, after_new_used_seconds: None, old_unused_seconds: None };
    if let Some(grace) = map.get("grace") {
        const FIELDS: [&str; 3] = ["after_new_used_seconds", "max_seconds", "old_unused_seconds"];
        let adaptive =
            grace.as_object().filter(|rule| !map.contains_key("grace_seconds") && rule.keys().all(|name| FIELDS.contains(&name.as_str())));
        let adaptive = adaptive.and_then(|rule| {
            // Absent: `None`; present: `Some` of the value if it is an integer up to `limit`.
            let seconds = |name: &str, limit: u64| rule.get(name).map(|value| value.as_u64().filter(|n| *n <= limit));
            let max = seconds("max_seconds", MAX_GRACE_SECONDS)??;
            let after = seconds("after_new_used_seconds", max)??;
            let unused = seconds("old_unused_seconds", max).map_or(Some(None), |unused| unused.map(Some))?;
            Some(RollKey { grace_seconds: max, after_new_used_seconds: Some(after), old_unused_seconds: unused })
        });
        match adaptive {
            Some(adaptive) => roll = adaptive,
            None => problems.add("grace", GRACE_RULE),
        }
    }
    problems.finish(roll)
}

fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = text.get(i + 1..i + 3).filter(|h| h.bytes().all(|b| b.is_ascii_hexdigit()))?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// Validates `project=&status=&cursor=&limit=` (the part after `?`, may be empty).
pub fn parse_list(query: &str) -> Result<ListQuery, GatewayError> {
    let mut problems = Problems::default();
    let mut params: BTreeMap<String, String> = BTreeMap::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        match (percent_decode(name), percent_decode(value)) {
            (Some(name), Some(value)) => {
                if params.insert(name.clone(), value).is_some() {
                    problems.add(&name, "given more than once");
                }
            }
            _ => problems.add("query", "is not valid percent-encoded UTF-8"),
        }
    }
    for name in params.keys() {
        if !["project", "status", "cursor", "limit"].contains(&name.as_str()) {
            problems.add(name, "unknown query parameter");
        }
    }
    let project = project(params.get("project").map(|p| Value::String(p.clone())).as_ref(), &mut problems);
    let status = params.get("status").and_then(|s| match s.as_str() {
        "active" => Some(Status::Active),
        "inactive" => Some(Status::Inactive),
        "revoked" => Some(Status::Revoked),
        _ => {
            problems.add("status", "must be active, inactive or revoked");
            None
        }
    });
    let cursor = params.get("cursor").filter(|c| !c.is_empty()).cloned();
    if cursor.as_ref().is_some_and(|c| c.len() > 128) {
        problems.add("cursor", "is not a cursor from this API");
    }
    let limit = match params.get("limit") {
        None => 50,
        Some(text) => match text.parse::<usize>() {
            Ok(n) if (1..=100).contains(&n) => n,
            _ => {
                problems.add("limit", "must be an integer from 1 to 100");
                50
            }
        },
    };
    problems.finish(ListQuery { project, status, cursor, limit })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scope::DEFAULT_SCOPES;

    const NOW: i64 = 1_800_000_000_000;

    fn with_rules<T>(f: impl FnOnce(&Rules<'_>) -> T) -> T {
        let roles = Roles::builtin();
        let scopes: Vec<String> = DEFAULT_SCOPES.iter().map(|s| s.to_string()).collect();
        let tiers: BTreeMap<String, Tier> = serde_json::from_str(crate::config::DEFAULT_TIERS).unwrap();
        let key_format = KeyFormat::default();
        f(&Rules { roles: &roles, scopes: &scopes, tiers: &tiers, empty_scopes: EmptyScopes::None, key_format: &key_format, now_ms: NOW })
    }

    /// The registry reads a body the edge accepted into the same change, rules or not (the
    /// edge's permission rule travels beside it); what the edge refuses, it refuses too.
    #[test]
    fn a_validated_body_reads_back_the_same_change() {
        let bodies: [&[u8]; 4] = [
            br#"{"name":" site ","role":"writer","scopes":["content:read","content:read"],"valid_from":"2027-01-01T00:00:00.5Z",
                 "valid_to":"2028-01-01T00:00:00Z","status":"inactive","allowed_origins":["https://a.example"],
                 "allowed_networks":["203.0.113.0/24","2001:db8::1"],"allowed_countries":["de","T1"],"meta":{"team":"core"},
                 "tier":"pro","limits":[{"name":"burst","limit":10,"window_seconds":60}],"limit_mode":"fast",
                 "credits":{"refill":{"amount":5,"interval":"month","mode":"add"}}}"#,
            br#"{"role":null,"scopes":[],"valid_from":null,"valid_to":null,"status":"active","allowed_origins":null,
                 "allowed_networks":null,"allowed_countries":[],"meta":{},"tier":null,"limits":null,"limit_mode":null,"credits":null}"#,
            br#"{"limits":[],"credits":{"refill":null}}"#,
            br#"{"name":"x"}"#,
        ];
        for body in bodies {
            let change = with_rules(|r| parse_update(body, r)).unwrap();
            assert_ne!(change, UpdateKey::default());
            assert_eq!(validated_update(body, false), Some(change.clone()), "{}", String::from_utf8_lossy(body));
            assert_eq!(validated_update(body, true), Some(UpdateKey { may_have_no_permissions: true, ..change }));
        }
        for refused in [&br#"{"status":"revoked"}"#[..], br#"["name"]"#, br#"{"name":""}"#, b"{"] {
            assert_eq!(validated_update(refused, false), None);
        }
    }

    #[test]
    fn a_key_without_permissions_follows_empty_scopes() {
        let roles = Roles::builtin();
        let scopes: Vec<String> = DEFAULT_SCOPES.iter().map(|s| s.to_string()).collect();
        let tiers: BTreeMap<String, Tier> = serde_json::from_str(crate::config::DEFAULT_TIERS).unwrap();
        let key_format = KeyFormat::default();
        let rules =
            |empty_scopes| Rules { roles: &roles, scopes: &scopes, tiers: &tiers, empty_scopes, key_format: &key_format, now_ms: NOW };
        let bare = br#"{"project":"acme","name":"n"}"#;
        assert_eq!(fields(parse_create(bare, &rules(EmptyScopes::None)).unwrap_err()), ["scopes"]);
        let created = parse_create(bare, &rules(EmptyScopes::All)).unwrap();
        assert_eq!((created.role, created.scopes), (None, vec![]));
        assert!(!parse_update(br#"{"role":null}"#, &rules(EmptyScopes::None)).unwrap().may_have_no_permissions);
        assert!(parse_update(br#"{"role":null}"#, &rules(EmptyScopes::All)).unwrap().may_have_no_permissions);
        // An unknown role is still refused under `all`: it would hold nothing, not everything.
        assert_eq!(
            fields(parse_create(br#"{"project":"acme","name":"n","role":"wizard"}"#, &rules(EmptyScopes::All)).unwrap_err()),
            ["role"]
        );
    }

    fn fields(error: GatewayError) -> Vec<String> {
        match error {
            GatewayError::ValidationFailed { fields } => fields.into_keys().collect(),
            other => panic!("expected VALIDATION_FAILED, got {other:?}"),
        }
    }

    #[test]
    fn create_accepts_a_full_valid_body() {
        let body = br#"{"project":"acme","name":" marketing site ","env":"test","role":"read_only",
            "scopes":["media:write","content:*"],"valid_from":"2027-01-01T00:00:00Z","valid_to":"2028-01-01T00:00:00Z",
            "allowed_origins":["https://acme.example","http://localhost:3000"],"meta":{"team":"web"}}"#;
        let create = with_rules(|r| parse_create(body, r)).unwrap();
        assert_eq!(create.project, "acme");
        assert_eq!(create.name, "marketing site");
        assert_eq!(create.env, KeyEnv::Test);
        assert_eq!(create.role.as_deref(), Some("read_only"));
        assert_eq!(create.scopes, vec!["media:write".to_string(), "content:*".to_string()]);
        assert_eq!(create.allowed_origins.unwrap().len(), 2);
        assert_eq!(create.meta["team"], "web");
    }

    #[test]
    fn credits_are_parsed_on_create_and_patch_and_changed_by_op_and_amount() {
        use crate::limit::credits::{Interval, Refill, RefillMode};
        let create = |credits: &str| {
            let body = format!(r#"{{"project":"acme","name":"n","role":"writer","credits":{credits}}}"#);
            with_rules(|r| parse_create(body.as_bytes(), r)).map(|c| c.credits)
        };
        let monthly = Refill { amount: 1000, interval: Interval::Month, mode: RefillMode::Reset };
        // (what, credits, expected (refill, remaining); None = refused naming `credits`)
        let rows: [(&str, &str, Option<Option<(Option<Refill>, u64)>>); 8] = [
            ("a balance", r#"{"remaining":5}"#, Some(Some((None, 5)))),
            (
                "a refill, the balance its amount",
                r#"{"refill":{"amount":1000,"interval":"month","mode":"reset"}}"#,
                Some(Some((Some(monthly), 1000))),
            ),
            ("both", r#"{"remaining":3,"refill":{"amount":1000,"interval":"month","mode":"reset"}}"#, Some(Some((Some(monthly), 3)))),
            ("null", "null", Some(None)),
            ("a negative balance", r#"{"remaining":-1}"#, None),
            ("an unknown field", r#"{"remaining":1,"cap":2}"#, None),
            ("a refill field too many", r#"{"refill":{"amount":1,"interval":"day","mode":"add","day":3}}"#, None),
            ("too large", r#"{"remaining":1000000000001}"#, None),
        ];
        for (what, credits, expected) in rows {
            match (create(credits), expected) {
                (Ok(got), Some(expected)) => assert_eq!(got.map(|(c, n)| (c.refill, n)), expected, "{what}"),
                (Err(GatewayError::ValidationFailed { fields }), None) => assert!(fields.contains_key("credits"), "{what}"),
                (got, _) => panic!("{what}: {got:?}"),
            }
        }
        let update = |body: &str| with_rules(|r| parse_update(body.as_bytes(), r));
        assert_eq!(update(r#"{"credits":null}"#).unwrap().credits, Patch::Clear);
        assert_eq!(update(r#"{"credits":{"refill":null}}"#).unwrap().credits, Patch::Set(Credits { refill: None }));
        assert!(update(r#"{"credits":{"remaining":5}}"#).is_err(), "the balance changes through POST /keys/{{id}}/credits");
        // (body, expected (set, amount); None = refused)
        let rows: [(&str, Option<(bool, i64)>); 8] = [
            (r#"{"op":"add","amount":5}"#, Some((false, 5))),
            (r#"{"op":"add","amount":-5}"#, Some((false, -5))),
            (r#"{"op":"set","amount":0}"#, Some((true, 0))),
            (r#"{"op":"set","amount":-1}"#, None),
            (r#"{"op":"add","amount":1000000000001}"#, None),
            (r#"{"op":"add","amount":"5"}"#, None),
            (r#"{"op":"double","amount":5}"#, None),
            (r#"{"op":"add","amount":5,"note":"x"}"#, None),
        ];
        for (body, expected) in rows {
            let got = parse_credits(body.as_bytes()).ok().map(|c| (c.set, c.amount));
            assert_eq!(got, expected, "{body}");
        }
    }

    #[test]
    fn create_accepts_tier_limits_and_mode() {
        let body = br#"{"project":"acme","name":"n","role":"writer","tier":"pro","limit_mode":"fast",
            "limits":[{"name":"minute","limit":5,"window_seconds":60}]}"#;
        let create = with_rules(|r| parse_create(body, r)).unwrap();
        assert_eq!(create.tier.as_deref(), Some("pro"));
        assert_eq!(create.limit_mode, Some(LimitMode::Fast));
        assert_eq!(create.limits.unwrap()[0].limit, 5);
        let update = with_rules(|r| parse_update(br#"{"tier":null,"limits":null}"#, r)).unwrap();
        assert_eq!((update.tier, update.limits), (Patch::Clear, Patch::Clear));
    }

    #[test]
    fn create_defaults_env_to_live() {
        let create = with_rules(|r| parse_create(br#"{"project":"acme","name":"n","role":"writer"}"#, r)).unwrap();
        assert_eq!(create.env, KeyEnv::Live);
        assert_eq!(create.valid_to, None);
    }

    #[test]
    fn create_refuses_an_env_the_key_format_cannot_mint() {
        let roles = Roles::builtin();
        let scopes: Vec<String> = DEFAULT_SCOPES.iter().map(|s| s.to_string()).collect();
        let tiers = BTreeMap::new();
        let no_segment = KeyFormat::new(vec!["cmspub".into()], Vec::new()).unwrap();
        let live_only = KeyFormat::new(vec!["kg".into()], vec![("live".into(), KeyEnv::Live)]).unwrap();
        for (what, key_format) in [("no segment", &no_segment), ("live segment only", &live_only)] {
            let rules = Rules { roles: &roles, scopes: &scopes, tiers: &tiers, empty_scopes: EmptyScopes::None, key_format, now_ms: NOW };
            let test = parse_create(br#"{"project":"acme","name":"n","role":"writer","env":"test"}"#, &rules).unwrap_err();
            assert_eq!(fields(test), ["env"], "{what}");
            let live = parse_create(br#"{"project":"acme","name":"n","role":"writer","env":"live"}"#, &rules).unwrap();
            assert_eq!(live.env, KeyEnv::Live, "{what}");
            assert_eq!(parse_create(br#"{"project":"acme","name":"n","role":"writer"}"#, &rules).unwrap().env, KeyEnv::Live, "{what}");
        }
    }

    #[test]
    fn create_validation_table() {
        let rows: &[(&str, &str, &[&str])] = &[
            ("not json", "{", &["body"]),
            ("not an object", "[]", &["body"]),
            ("missing project and name", r#"{"role":"writer"}"#, &["name", "project"]),
            ("bad project", r#"{"project":"Acme Corp","name":"n","role":"writer"}"#, &["project"]),
            ("reserved project", r#"{"project":"__directory__","name":"n","role":"writer"}"#, &["project"]),
            ("empty name", r#"{"project":"acme","name":"  ","role":"writer"}"#, &["name"]),
            ("long name", &format!(r#"{{"project":"acme","name":"{}","role":"writer"}}"#, "x".repeat(101)), &["name"]),
            ("name not a string", r#"{"project":"acme","name":5,"role":"writer"}"#, &["name"]),
            ("unknown role", r#"{"project":"acme","name":"n","role":"wizard"}"#, &["role"]),
            ("unknown scope", r#"{"project":"acme","name":"n","scopes":["content:read","pages:fly"]}"#, &["scopes"]),
            ("wildcard of unknown resource", r#"{"project":"acme","name":"n","scopes":["pages:*"]}"#, &["scopes"]),
            ("no role no scopes", r#"{"project":"acme","name":"n"}"#, &["scopes"]),
            ("bad env", r#"{"project":"acme","name":"n","role":"writer","env":"prod"}"#, &["env"]),
            ("bad timestamp", r#"{"project":"acme","name":"n","role":"writer","valid_to":"tomorrow"}"#, &["valid_to"]),
            ("valid_to in the past", r#"{"project":"acme","name":"n","role":"writer","valid_to":"2020-01-01T00:00:00Z"}"#, &["valid_to"]),
            (
                "valid_to before valid_from",
                r#"{"project":"acme","name":"n","role":"writer","valid_from":"2030-01-01T00:00:00Z","valid_to":"2029-01-01T00:00:00Z"}"#,
                &["valid_to"],
            ),
            ("bad origin", r#"{"project":"acme","name":"n","role":"writer","allowed_origins":["acme.example"]}"#, &["allowed_origins"]),
            (
                "origin with path",
                r#"{"project":"acme","name":"n","role":"writer","allowed_origins":["https://a.example/x"]}"#,
                &["allowed_origins"],
            ),
            ("meta not strings", r#"{"project":"acme","name":"n","role":"writer","meta":{"a":1}}"#, &["meta"]),
            ("unknown fields", r#"{"project":"acme","name":"n","role":"writer","isActive":true,"token":"x"}"#, &["isActive", "token"]),
            ("unknown tier", r#"{"project":"acme","name":"n","role":"writer","tier":"platinum"}"#, &["tier"]),
            ("limits not a list", r#"{"project":"acme","name":"n","role":"writer","limits":{"minute":5}}"#, &["limits"]),
            (
                "limit of zero",
                r#"{"project":"acme","name":"n","role":"writer","limits":[{"name":"m","limit":0,"window_seconds":60}]}"#,
                &["limits"],
            ),
            (
                "a rate that could not be held as advertised",
                r#"{"project":"acme","name":"n","role":"writer","limits":[{"name":"s","limit":1000000000,"window_seconds":1}]}"#,
                &["limits"],
            ),
            (
                "limit with unknown field",
                r#"{"project":"acme","name":"n","role":"writer","limits":[{"name":"m","limit":1,"window_seconds":60,"burst":3}]}"#,
                &["limits"],
            ),
            ("bad limit mode", r#"{"project":"acme","name":"n","role":"writer","limit_mode":"strict"}"#, &["limit_mode"]),
        ];
        for (what, body, expected) in rows {
            let got = with_rules(|r| parse_create(body.as_bytes(), r)).unwrap_err();
            assert_eq!(fields(got), expected.iter().map(|s| s.to_string()).collect::<Vec<_>>(), "{what}");
        }
    }

    #[test]
    fn networks_and_countries_are_checked_and_kept_as_written() {
        let create =
            |extra: &str| with_rules(|r| parse_create(format!(r#"{{"project":"acme","name":"n","role":"writer",{extra}}}"#).as_bytes(), r));
        let ok = create(r#""allowed_networks":["203.0.113.0/24","2001:DB8::/32","::ffff:10.0.0.0/104","198.51.100.7","203.0.113.0/24"],"allowed_countries":["de","FR","T1","DE"]"#).unwrap();
        assert_eq!(ok.allowed_networks, ["203.0.113.0/24", "2001:DB8::/32", "::ffff:10.0.0.0/104", "198.51.100.7"], "as written, once");
        assert_eq!(ok.allowed_countries, ["DE", "FR", "T1"], "uppercased, once");
        let none = create(r#""allowed_networks":null,"allowed_countries":[]"#).unwrap();
        assert!(none.allowed_networks.is_empty() && none.allowed_countries.is_empty(), "null and [] restrict nothing");
        let absent = create(r#""tier":null"#).unwrap();
        assert!(absent.allowed_networks.is_empty() && absent.allowed_countries.is_empty());

        let too_many =
            format!(r#""allowed_networks":[{}]"#, (0..=100).map(|i| format!(r#""10.0.{i}.0/24""#)).collect::<Vec<_>>().join(","));
        let too_many_countries = format!(r#""allowed_countries":[{}]"#, (0..=100).map(|_| r#""DE""#).collect::<Vec<_>>().join(","));
        let rows: Vec<(&str, String, &str)> = vec![
            ("host bits set", r#""allowed_networks":["10.0.0.1/8"]"#.into(), "allowed_networks"),
            ("IPv4 prefix over 32", r#""allowed_networks":["10.0.0.0/33"]"#.into(), "allowed_networks"),
            ("IPv6 prefix over 128", r#""allowed_networks":["2001:db8::/129"]"#.into(), "allowed_networks"),
            ("not an address", r#""allowed_networks":["office"]"#.into(), "allowed_networks"),
            ("not a string", r#""allowed_networks":[10]"#.into(), "allowed_networks"),
            ("not a list", r#""allowed_networks":"10.0.0.0/8""#.into(), "allowed_networks"),
            ("more than 100 networks", too_many, "allowed_networks"),
            ("three letters", r#""allowed_countries":["DEU"]"#.into(), "allowed_countries"),
            ("a digit", r#""allowed_countries":["D1"]"#.into(), "allowed_countries"),
            ("not a list of countries", r#""allowed_countries":"DE""#.into(), "allowed_countries"),
            ("more than 100 countries", too_many_countries, "allowed_countries"),
        ];
        for (what, extra, field) in rows {
            assert_eq!(fields(create(&extra).unwrap_err()), [field], "create: {what}");
            let patch = with_rules(|r| parse_update(format!("{{{extra}}}").as_bytes(), r)).unwrap_err();
            assert_eq!(fields(patch), [field], "update: {what}");
        }
        let host_bits = create(r#""allowed_networks":["10.0.0.1/8"]"#).unwrap_err();
        assert!(host_bits.details().to_string().contains("10.0.0.1/8"), "the problem names the entry: {}", host_bits.details());

        let update = with_rules(|r| parse_update(br#"{"allowed_networks":null,"allowed_countries":["us"]}"#, r)).unwrap();
        assert_eq!((update.allowed_networks, update.allowed_countries), (Some(vec![]), Some(vec!["US".to_string()])), "null clears");
        let keep = with_rules(|r| parse_update(br#"{"name":"x"}"#, r)).unwrap();
        assert_eq!((keep.allowed_networks, keep.allowed_countries), (None, None), "absent keeps");
        assert_eq!(
            validated_update(br#"{"allowed_networks":null}"#, false).unwrap().allowed_networks,
            Some(vec![]),
            "a clear survives the registry message"
        );
    }

    #[test]
    fn update_distinguishes_absent_from_null() {
        let update = with_rules(|r| parse_update(br#"{"valid_to":null,"role":null,"status":"inactive"}"#, r)).unwrap();
        assert_eq!(update.valid_to, Patch::Clear);
        assert_eq!(update.role, Patch::Clear);
        assert_eq!(update.status, Some(Status::Inactive));
        assert_eq!(update.name, None);
        assert_eq!(update.valid_from, Patch::Keep);
    }

    #[test]
    fn update_validation_table() {
        let rows: &[(&str, &str, &[&str])] = &[
            ("empty", "{}", &["body"]),
            ("revoke via patch", r#"{"status":"revoked"}"#, &["status"]),
            ("bad status", r#"{"status":"paused"}"#, &["status"]),
            ("unknown field", r#"{"project":"globex"}"#, &["project"]),
            ("bad name", r#"{"name":""}"#, &["name"]),
            ("bad valid_to", r#"{"valid_to":"2027-13-01T00:00:00Z"}"#, &["valid_to"]),
        ];
        for (what, body, expected) in rows {
            let got = with_rules(|r| parse_update(body.as_bytes(), r)).unwrap_err();
            assert_eq!(fields(got), expected.iter().map(|s| s.to_string()).collect::<Vec<_>>(), "{what}");
        }
    }

    #[test]
    fn roll_body_rules() {
        assert_eq!(parse_roll(b"").unwrap(), RollKey { grace_seconds: 0, after_new_used_seconds: None, old_unused_seconds: None });
        assert_eq!(
            parse_roll(br#"{"grace_seconds":3600}"#).unwrap(),
            RollKey { grace_seconds: 3600, after_new_used_seconds: None, old_unused_seconds: None }
        );
        let adaptive = br#"{"grace":{"after_new_used_seconds":600,"max_seconds":86400}}"#;
        assert_eq!(
            parse_roll(adaptive).unwrap(),
            RollKey { grace_seconds: 86_400, after_new_used_seconds: Some(600), old_unused_seconds: None }
        );
        let both = br#"{"grace":{"after_new_used_seconds":600,"old_unused_seconds":3600,"max_seconds":2592000}}"#;
        assert_eq!(
            parse_roll(both).unwrap(),
            RollKey { grace_seconds: 2_592_000, after_new_used_seconds: Some(600), old_unused_seconds: Some(3600) }
        );
        for body in [r#"{"grace_seconds":-1}"#, r#"{"grace_seconds":"60"}"#, r#"{"grace_seconds":2592001}"#, r#"{"grace":1}"#] {
            assert!(parse_roll(body.as_bytes()).is_err(), "{body}");
        }
        let edge = br#"{"grace":{"after_new_used_seconds":2592000,"old_unused_seconds":0,"max_seconds":2592000}}"#;
        assert_eq!(
            parse_roll(edge).unwrap(),
            RollKey { grace_seconds: 2_592_000, after_new_used_seconds: Some(2_592_000), old_unused_seconds: Some(0) }
        );
        // Each refusal of an adaptive grace names `grace`.
        let refused = [
            ("with grace_seconds", r#"{"grace_seconds":60,"grace":{"after_new_used_seconds":1,"max_seconds":60}}"#),
            ("no after_new_used_seconds", r#"{"grace":{"max_seconds":60}}"#),
            ("no max_seconds", r#"{"grace":{"after_new_used_seconds":1}}"#),
            ("after past the max", r#"{"grace":{"after_new_used_seconds":61,"max_seconds":60}}"#),
            ("unused past the max", r#"{"grace":{"after_new_used_seconds":1,"old_unused_seconds":61,"max_seconds":60}}"#),
            ("max past 30 days", r#"{"grace":{"after_new_used_seconds":1,"max_seconds":2592001}}"#),
            ("a fraction", r#"{"grace":{"after_new_used_seconds":1.5,"max_seconds":60}}"#),
            ("a null", r#"{"grace":{"after_new_used_seconds":1,"old_unused_seconds":null,"max_seconds":60}}"#),
            ("an unknown field", r#"{"grace":{"after_new_used_seconds":1,"max_seconds":60,"min_seconds":1}}"#),
            ("not an object", r#"{"grace":60}"#),
        ];
        for (what, body) in refused {
            match parse_roll(body.as_bytes()) {
                Err(GatewayError::ValidationFailed { fields }) => assert_eq!(fields.keys().collect::<Vec<_>>(), ["grace"], "{what}"),
                other => panic!("{what}: {other:?}"),
            }
        }
    }

    #[test]
    fn list_query_rules() {
        let query = parse_list("project=acme&status=revoked&limit=10&cursor=abc").unwrap();
        assert_eq!(query, ListQuery { project: "acme".into(), status: Some(Status::Revoked), cursor: Some("abc".into()), limit: 10 });
        assert_eq!(parse_list("project=acme").unwrap().limit, 50);
        let rows: &[(&str, &[&str])] = &[
            ("", &["project"]),
            ("project=acme&limit=0", &["limit"]),
            ("project=acme&limit=101", &["limit"]),
            ("project=acme&status=gone", &["status"]),
            ("project=acme&sort=name", &["sort"]),
            ("project=acme&project=globex", &["project"]),
            ("project=%zz", &["project", "query"]),
            ("project=%+f", &["project", "query"]),
        ];
        for (query, expected) in rows {
            let got = parse_list(query).unwrap_err();
            assert_eq!(fields(got), expected.iter().map(|s| s.to_string()).collect::<Vec<_>>(), "{query}");
        }
    }

    #[test]
    fn origin_syntax() {
        for (origin, ok) in [
            ("https://a.example", true),
            ("http://localhost:3000", true),
            ("https://[::1]:8443", true),
            ("https://a.example/", false),
            ("a.example", false),
            ("ftp://a.example", false),
            ("https://", false),
            ("https://a.example:abc", false),
        ] {
            assert_eq!(is_valid_origin(origin), ok, "{origin}");
        }
    }
}
