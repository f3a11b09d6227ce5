//! Command-line shape of `keygate keys` (clap derive) and the value parsers it needs.
//!
//! Everything that can be checked without the server is checked here, so bad usage exits with
//! clap's code 2 before any request is sent: enum values (`--env`, `--status`), ranges
//! (`--limit` of `list`, `--grace-seconds`, `--grace-*`), RFC 3339 timestamps, `--meta key=value`,
//! `--limit NAME=LIMIT/WINDOW_SECONDS` of `create`/`update`, `--limit-mode` and mutually
//! exclusive flags (`--role` / `--no-role`, `--tier` / `--no-tier`, …).

use std::fmt;

use clap::builder::{PossibleValuesParser, TypedValueParser};
use clap::{Args, Subcommand};
use keygate_core::key::KeyEnv;
use keygate_core::record::{LimitMode, Status};
use keygate_core::timestamp::Timestamp;

/// Help heading of the flags every `keys` subcommand accepts.
const GLOBAL: &str = "Global options";

/// Longest grace period the admin API accepts for `roll` (30 days).
pub const MAX_GRACE_SECONDS: u32 = 2_592_000;

/// Manage API keys through the gateway's admin API.
///
/// The admin token is read from KEYGATE_ADMIN_TOKEN; prefer that over --admin-token, whose value
/// is visible to other local users (process list) and ends up in shell history.
#[derive(Debug, Args)]
#[command(after_help = "Exit codes: 0 ok, 1 the API refused or answered unexpectedly, \
                        2 bad usage, 3 gateway unreachable.")]
pub struct KeysArgs {
    /// Print the API's JSON response (pretty-printed) instead of tables, for scripts.
    #[arg(long, global = true, help_heading = GLOBAL)]
    pub json: bool,
    /// Gateway base URL (http:// or https://).
    #[arg(long, global = true, help_heading = GLOBAL, env = "KEYGATE_URL", default_value = "http://127.0.0.1:8787", value_name = "URL")]
    pub url: String,
    /// Admin token (the gateway's ADMIN_TOKEN secret). Prefer setting KEYGATE_ADMIN_TOKEN: a value
    /// given on the command line is visible in the process list and shell history.
    #[arg(
        long,
        global = true,
        help_heading = GLOBAL,
        env = "KEYGATE_ADMIN_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN",
        value_parser = parse_token
    )]
    pub admin_token: Option<AdminToken>,
    /// Path of the admin API on the gateway (the gateway's ADMIN_PREFIX).
    #[arg(long, global = true, help_heading = GLOBAL, env = "KEYGATE_ADMIN_PREFIX", default_value = "/_keygate/v1", value_name = "PATH")]
    pub prefix: String,
    #[command(subcommand)]
    pub command: KeysCommand,
}

/// The admin token. Its `Debug` output is redacted so it cannot leak through logging.
#[derive(Clone, PartialEq, Eq)]
pub struct AdminToken(pub String);

impl fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AdminToken(<redacted>)")
    }
}

/// Never fails: a validation error from clap would echo the value, i.e. the token. The token is
/// checked later with a message that does not contain it.
fn parse_token(text: &str) -> Result<AdminToken, String> {
    Ok(AdminToken(text.to_string()))
}

/// `keygate keys` subcommands.
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create a key; prints its record and the plaintext key (shown only this once).
    Create(CreateArgs),
    /// List the keys of a project.
    List(ListArgs),
    /// Show one key's record and a short usage summary (with --json: the record only).
    Show(IdArg),
    /// Change a key's name, role, scopes, validity, allowed origins, metadata or limits.
    Update(UpdateArgs),
    /// Re-enable a disabled key (status active).
    Enable(IdArg),
    /// Disable a key (status inactive); it can be enabled again.
    Disable(IdArg),
    /// Revoke a key permanently (idempotent).
    Revoke(IdArg),
    /// Replace a key by a new one; prints the new plaintext key (shown only this once).
    Roll(RollArgs),
    /// Show a key's audit trail.
    Audit(IdArg),
    /// Show a key's request counts per day (UTC, most recent first) and when it was last used
    /// (and, for a key with credits, its balance and refill).
    Usage(IdArg),
    /// Change a key's credits balance (the key must have credits: `create --credits`, or
    /// `update --credits-refill`/`--credits-no-refill`).
    #[command(subcommand)]
    Credits(CreditsCommand),
    /// Show a key's webhook delivery log: each event and endpoint, its state and attempts.
    Webhooks(IdArg),
}

/// `keygate keys credits` subcommands.
#[derive(Debug, Subcommand)]
pub enum CreditsCommand {
    /// Add credits to the balance (a negative amount deducts; the balance stops at zero).
    Add(CreditsArgs),
    /// Set the balance.
    Set(CreditsArgs),
}

/// `ID AMOUNT` of `credits add|set`.
#[derive(Debug, Args)]
pub struct CreditsArgs {
    /// Key id (`key_…`).
    pub id: String,
    /// Credits (add: -10^12 … 10^12; set: 0 … 10^12).
    #[arg(allow_negative_numbers = true, value_parser = clap::value_parser!(i64).range(-1_000_000_000_000..=1_000_000_000_000))]
    pub amount: i64,
}

/// One `--credits-refill AMOUNT/day|month/reset|add`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RefillArg {
    pub amount: u64,
    /// `day` or `month`.
    pub interval: &'static str,
    /// `reset` or `add`.
    pub mode: &'static str,
}

/// Parses `AMOUNT/day|month/reset|add` (e.g. `1000/month/reset`).
pub fn parse_refill(text: &str) -> Result<RefillArg, String> {
    const SHAPE: &str = "expected AMOUNT/INTERVAL/MODE such as 1000/month/reset (INTERVAL day or month, MODE reset or add)";
    let parts: Vec<&str> = text.split('/').collect();
    let [amount, interval, mode] = parts.as_slice() else { return Err(SHAPE.into()) };
    let amount = match amount.parse::<u64>() {
        Ok(n) if n >= 1 && amount.bytes().all(|b| b.is_ascii_digit()) => n,
        _ => return Err(format!("AMOUNT must be a positive integer: {SHAPE}")),
    };
    let interval = match *interval {
        "day" => "day",
        "month" => "month",
        _ => return Err(format!("INTERVAL must be day or month: {SHAPE}")),
    };
    let mode = match *mode {
        "reset" => "reset",
        "add" => "add",
        _ => return Err(format!("MODE must be reset or add: {SHAPE}")),
    };
    Ok(RefillArg { amount, interval, mode })
}

/// A key id argument.
#[derive(Debug, Args)]
pub struct IdArg {
    /// Key id (`key_…`).
    pub id: String,
}

// `--env`, `--status` and `--limit-mode` take the core's own types (one definition of each
// literal), with their accepted values listed in help and in usage errors.

/// `live` or `test`.
fn env_parser() -> impl TypedValueParser<Value = KeyEnv> {
    PossibleValuesParser::new(["live", "test"]).try_map(|name| KeyEnv::from_name(&name).ok_or("live or test"))
}

/// `active`, `inactive` or `revoked`.
fn status_parser() -> impl TypedValueParser<Value = Status> {
    PossibleValuesParser::new(["active", "inactive", "revoked"])
        .try_map(|name| Status::from_name(&name).ok_or("active, inactive or revoked"))
}

/// `exact` (a limiter per key family decides every request: exact limits) or `fast` (per-isolate
/// counters, no limiter on the hot path: approximate limits).
fn limit_mode_parser() -> impl TypedValueParser<Value = LimitMode> {
    PossibleValuesParser::new(["exact", "fast"]).try_map(|name| LimitMode::from_name(&name).ok_or("exact or fast"))
}

/// One `--limit NAME=LIMIT/WINDOW_SECONDS`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitArg {
    pub name: String,
    pub limit: u64,
    pub window_seconds: u64,
}

/// Flags of `create`.
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Project the key is bound to.
    #[arg(long)]
    pub project: String,
    /// Owner-facing label.
    #[arg(long)]
    pub name: String,
    /// Environment (the server defaults to live).
    #[arg(long, value_parser = env_parser())]
    pub env: Option<KeyEnv>,
    /// Role (expanded to scopes by the gateway).
    #[arg(long)]
    pub role: Option<String>,
    /// Scope to grant (repeatable).
    #[arg(long = "scope", value_name = "SCOPE")]
    pub scopes: Vec<String>,
    /// Not usable before this RFC 3339 instant.
    #[arg(long, value_name = "RFC3339", value_parser = parse_timestamp)]
    pub valid_from: Option<String>,
    /// Not usable after this RFC 3339 instant (default: lifetime).
    #[arg(long, value_name = "RFC3339", value_parser = parse_timestamp)]
    pub valid_to: Option<String>,
    // The doc comment is clap's help text: `[:port]` is text, not a link.
    #[allow(rustdoc::broken_intra_doc_links)]
    /// Origin allowed to use the key, scheme://host[:port] (repeatable; default: any).
    #[arg(long = "allowed-origin", value_name = "ORIGIN")]
    pub allowed_origins: Vec<String>,
    /// Client network allowed to use the key, a CIDR like 203.0.113.0/24 or 2001:db8::/32, or one
    /// address (repeatable; default: any).
    #[arg(long = "allowed-network", visible_alias = "allow-network", value_name = "CIDR")]
    pub allowed_networks: Vec<String>,
    /// Country allowed to use the key, ISO 3166-1 alpha-2 like DE (repeatable; default: any).
    #[arg(long = "allowed-country", visible_alias = "allow-country", value_name = "CC")]
    pub allowed_countries: Vec<String>,
    /// Metadata entry key=value (repeatable).
    #[arg(long = "meta", value_name = "KEY=VALUE", value_parser = parse_meta)]
    pub meta: Vec<(String, String)>,
    /// Named tier (from the gateway's TIERS) supplying limits and limit mode.
    #[arg(long, value_name = "NAME")]
    pub tier: Option<String>,
    /// Limit of this key, e.g. minute=600/60 (repeatable); replaces the tier's limits.
    #[arg(long = "limit", value_name = "NAME=LIMIT/WINDOW_SECONDS", value_parser = parse_limit)]
    pub limits: Vec<LimitArg>,
    /// How the limits are enforced (default: the tier's, else the gateway's LIMIT_MODE).
    #[arg(long, value_parser = limit_mode_parser())]
    pub limit_mode: Option<LimitMode>,
    /// Give the key credits with this initial balance (default with --credits-refill: the refill
    /// amount). A key with credits is always decided by its limiter (exact).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(0..=1_000_000_000_000))]
    pub credits: Option<u64>,
    /// Refill the credits periodically, e.g. 1000/month/reset or 50/day/add.
    #[arg(long, value_name = "AMOUNT/INTERVAL/MODE", value_parser = parse_refill)]
    pub credits_refill: Option<RefillArg>,
}

/// Flags of `list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Project whose keys to list.
    #[arg(long)]
    pub project: String,
    /// Only keys with this status.
    #[arg(long, value_parser = status_parser())]
    pub status: Option<Status>,
    /// Page size, 1–100 (server default 50).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub limit: Option<u32>,
    /// Continue from this cursor (printed by a previous page).
    #[arg(long)]
    pub cursor: Option<String>,
    /// Follow cursors until the last page.
    #[arg(long)]
    pub all: bool,
}

/// Flags of `update`.
#[derive(Debug, Args)]
pub struct UpdateArgs {
    /// Key id (`key_…`).
    pub id: String,
    /// New label.
    #[arg(long)]
    pub name: Option<String>,
    /// New role.
    #[arg(long, conflicts_with = "no_role")]
    pub role: Option<String>,
    /// Remove the role.
    #[arg(long)]
    pub no_role: bool,
    /// Replace the scopes by these (repeatable).
    #[arg(long = "scope", value_name = "SCOPE", conflicts_with = "clear_scopes")]
    pub scopes: Vec<String>,
    /// Remove all explicit scopes.
    #[arg(long)]
    pub clear_scopes: bool,
    /// New start of validity (RFC 3339).
    #[arg(long, value_name = "RFC3339", value_parser = parse_timestamp, conflicts_with = "clear_valid_from")]
    pub valid_from: Option<String>,
    /// Make the key valid immediately (valid_from null).
    #[arg(long)]
    pub clear_valid_from: bool,
    /// New end of validity (RFC 3339).
    #[arg(long, value_name = "RFC3339", value_parser = parse_timestamp, conflicts_with = "lifetime")]
    pub valid_to: Option<String>,
    /// Make the key valid for its lifetime (valid_to null).
    #[arg(long)]
    pub lifetime: bool,
    /// Replace the allowed origins by these (repeatable).
    #[arg(long = "allowed-origin", value_name = "ORIGIN", conflicts_with = "any_origin")]
    pub allowed_origins: Vec<String>,
    /// Allow any origin (allowed_origins null).
    #[arg(long)]
    pub any_origin: bool,
    /// Replace the allowed client networks by these CIDRs (repeatable).
    #[arg(long = "allowed-network", visible_alias = "allow-network", value_name = "CIDR", conflicts_with = "clear_networks")]
    pub allowed_networks: Vec<String>,
    /// Allow any client network (allowed_networks []).
    #[arg(long)]
    pub clear_networks: bool,
    /// Replace the allowed countries by these (repeatable).
    #[arg(long = "allowed-country", visible_alias = "allow-country", value_name = "CC", conflicts_with = "clear_countries")]
    pub allowed_countries: Vec<String>,
    /// Allow any country (allowed_countries []).
    #[arg(long)]
    pub clear_countries: bool,
    /// Metadata entry key=value (repeatable); sent as the `meta` object.
    #[arg(long = "meta", value_name = "KEY=VALUE", value_parser = parse_meta)]
    pub meta: Vec<(String, String)>,
    /// New tier (from the gateway's TIERS).
    #[arg(long, value_name = "NAME", conflicts_with = "no_tier")]
    pub tier: Option<String>,
    /// Remove the tier (tier null: the gateway's DEFAULT_TIER applies).
    #[arg(long)]
    pub no_tier: bool,
    /// Replace the key's own limits by these, e.g. minute=600/60 (repeatable).
    #[arg(long = "limit", value_name = "NAME=LIMIT/WINDOW_SECONDS", value_parser = parse_limit, conflicts_with = "clear_limits")]
    pub limits: Vec<LimitArg>,
    /// Remove the key's own limits (limits null: the tier's apply).
    #[arg(long)]
    pub clear_limits: bool,
    /// New limit mode.
    #[arg(long, value_parser = limit_mode_parser(), conflicts_with = "default_limit_mode")]
    pub limit_mode: Option<LimitMode>,
    /// Remove the key's own limit mode (limit_mode null: the tier's, else LIMIT_MODE).
    #[arg(long)]
    pub default_limit_mode: bool,
    /// Give the key credits with this refill, or change it (a key given credits here starts
    /// with a balance of 0: use `keys credits set`).
    #[arg(long, value_name = "AMOUNT/INTERVAL/MODE", value_parser = parse_refill, conflicts_with_all = ["credits_no_refill", "no_credits"])]
    pub credits_refill: Option<RefillArg>,
    /// Give the key credits without a refill, or remove its refill.
    #[arg(long, conflicts_with = "no_credits")]
    pub credits_no_refill: bool,
    /// Remove credits from the key (credits null: no balance is enforced).
    #[arg(long)]
    pub no_credits: bool,
}

/// Flags of `roll`.
#[derive(Debug, Args)]
pub struct RollArgs {
    /// Key id (`key_…`).
    pub id: String,
    /// Seconds the old key stays valid after the roll (0 … 2592000).
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u32).range(0..=i64::from(MAX_GRACE_SECONDS)))]
    pub grace_seconds: u32,
    /// A grace that follows use: the old key ends once the new key has been seen in use for
    /// this many seconds (needs --grace-max; not with --grace-seconds).
    #[arg(long, value_name = "SECONDS", conflicts_with = "grace_seconds", requires = "grace_max", value_parser = clap::value_parser!(u32).range(0..=i64::from(MAX_GRACE_SECONDS)))]
    pub grace_after_new_use: Option<u32>,
    /// With --grace-after-new-use: the old key must also have been unused this many seconds.
    #[arg(long, value_name = "SECONDS", requires = "grace_after_new_use", value_parser = clap::value_parser!(u32).range(0..=i64::from(MAX_GRACE_SECONDS)))]
    pub grace_old_unused: Option<u32>,
    /// With --grace-after-new-use: the old key ends at the latest this many seconds after the
    /// roll, whatever is seen (0 … 2592000).
    #[arg(long, value_name = "SECONDS", requires = "grace_after_new_use", value_parser = clap::value_parser!(u32).range(0..=i64::from(MAX_GRACE_SECONDS)))]
    pub grace_max: Option<u32>,
}

/// Accepts an RFC 3339 date-time (same parser as the gateway) and keeps the text as given.
pub fn parse_timestamp(text: &str) -> Result<String, String> {
    match Timestamp::parse_rfc3339(text) {
        Some(_) => Ok(text.to_string()),
        None => Err("expected an RFC 3339 date-time such as 2027-01-01T00:00:00Z".into()),
    }
}

/// Parses `NAME=LIMIT/WINDOW_SECONDS` (e.g. `minute=600/60`): a non-empty name and two
/// positive integers. Name characters and upper bounds are left to the gateway.
pub fn parse_limit(text: &str) -> Result<LimitArg, String> {
    const SHAPE: &str = "expected NAME=LIMIT/WINDOW_SECONDS such as minute=600/60";
    let Some((name, rest)) = text.split_once('=') else {
        return Err(format!("missing '=': {SHAPE}"));
    };
    if name.is_empty() {
        return Err(format!("the name before '=' must not be empty: {SHAPE}"));
    }
    let Some((limit, window)) = rest.split_once('/') else {
        return Err(format!("missing '/': {SHAPE}"));
    };
    let number = |what: &str, digits: &str| -> Result<u64, String> {
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("{what} must be a positive integer, not '{digits}': {SHAPE}"));
        }
        match digits.parse::<u64>() {
            Ok(0) => Err(format!("{what} must be at least 1: {SHAPE}")),
            Ok(n) => Ok(n),
            Err(_) => Err(format!("{what} is too large: {SHAPE}")),
        }
    };
    Ok(LimitArg { name: name.to_string(), limit: number("LIMIT", limit)?, window_seconds: number("WINDOW_SECONDS", window)? })
}

/// Splits `key=value` at the first `=`; the key must not be empty, the value may be.
pub fn parse_meta(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some(("", _)) => Err("the key before '=' must not be empty".into()),
        Some((key, value)) => Ok((key.to_string(), value.to_string())),
        None => Err("expected KEY=VALUE".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refills_parse() {
        assert_eq!(parse_refill("1000/month/reset"), Ok(RefillArg { amount: 1000, interval: "month", mode: "reset" }));
        assert_eq!(parse_refill("5/day/add"), Ok(RefillArg { amount: 5, interval: "day", mode: "add" }));
        for (bad, reason) in [
            ("0/day/add", "AMOUNT"),
            ("+5/day/add", "AMOUNT"),
            ("5/week/add", "INTERVAL"),
            ("5/day/keep", "MODE"),
            ("5/day", "expected"),
            ("5/day/add/x", "expected"),
        ] {
            let error = parse_refill(bad).expect_err(bad);
            assert!(error.contains(reason) && error.contains("AMOUNT/INTERVAL/MODE"), "{bad}: {error}");
        }
    }

    #[test]
    fn limits_parse() {
        let rows = [
            ("minute=600/60", ("minute", 600, 60)),
            ("burst=50/1", ("burst", 50, 1)),
            ("daily=100000/86400", ("daily", 100_000, 86_400)),
            ("MiXed_name-1=1/2", ("MiXed_name-1", 1, 2)),
            ("x=007/010", ("x", 7, 10)),
        ];
        for (text, (name, limit, window_seconds)) in rows {
            let parsed = parse_limit(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(parsed, LimitArg { name: name.into(), limit, window_seconds }, "{text}");
        }
    }

    #[test]
    fn bad_limits_are_refused_with_a_reason() {
        let rows = [
            ("minute", "missing '='"),
            ("600/60", "missing '='"),
            ("=600/60", "must not be empty"),
            ("minute=600", "missing '/'"),
            ("minute=", "missing '/'"),
            ("minute=0/60", "LIMIT must be at least 1"),
            ("minute=600/0", "WINDOW_SECONDS must be at least 1"),
            ("minute=abc/60", "LIMIT must be a positive integer"),
            ("minute=600/6O", "WINDOW_SECONDS must be a positive integer"),
            ("minute=-1/60", "LIMIT must be a positive integer"),
            ("minute=+1/60", "LIMIT must be a positive integer"),
            ("minute=/60", "LIMIT must be a positive integer"),
            ("minute=600/", "WINDOW_SECONDS must be a positive integer"),
            ("minute=1.5/60", "LIMIT must be a positive integer"),
            ("minute=600/60/1", "WINDOW_SECONDS must be a positive integer"),
            ("a=b=1/2", "LIMIT must be a positive integer"),
            ("minute= 600/60", "LIMIT must be a positive integer"),
            ("minute=99999999999999999999/60", "LIMIT is too large"),
        ];
        for (text, message) in rows {
            let error = parse_limit(text).expect_err(text);
            assert!(error.contains(message), "{text}: {error}");
            assert!(error.contains("NAME=LIMIT/WINDOW_SECONDS"), "{text}: {error}");
        }
    }
}
