//! Pure output formatting: record listings, tables, audit trails, usage, API errors and
//! verbatim pretty-printed JSON.
//!
//! Everything shown comes from the server and may contain text chosen by whoever created a key
//! (names, meta), so control and bidi-override characters are escaped before they reach a
//! terminal. Answers of an unexpected shape are reported as errors (`Err(message)`), never
//! panics; such messages never quote a successful body, which may hold a plaintext key.

use std::fmt::Write as _;

use keygate_core::timestamp::Timestamp;
use serde_json::{Map, Value};

use super::request::Expect;

/// Record fields in display order; any other field follows, alphabetically.
const RECORD_FIELDS: &[&str] = &[
    "id",
    "project",
    "name",
    "env",
    "status",
    "role",
    "scopes",
    "valid_from",
    "valid_to",
    "allowed_origins",
    "allowed_networks",
    "allowed_countries",
    "tier",
    "limits",
    "limit_mode",
    "meta",
    "hint",
    "revision",
    "family",
    "rolled_from",
    "created_at",
    "updated_at",
];

/// Line printed right after a plaintext key.
pub const KEY_WARNING: &str = "warning: the plaintext key is shown only this once and cannot be retrieved later; store it now.";

/// Escapes characters that could move the cursor, rewrite the terminal or reorder text.
pub fn sanitize(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        let bidi = matches!(c, '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}');
        if c.is_control() || bidi {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    out
}

/// A JSON value as one line of text: strings as-is, lists comma-joined, `null` as `-`.
fn plain(value: &Value) -> String {
    match value {
        Value::Null => "-".into(),
        Value::String(s) => sanitize(s),
        Value::Bool(_) | Value::Number(_) => value.to_string(),
        Value::Array(items) if items.is_empty() => "(none)".into(),
        Value::Array(items) => items.iter().map(plain).collect::<Vec<_>>().join(", "),
        Value::Object(map) if map.is_empty() => "(none)".into(),
        Value::Object(map) => map.iter().map(|(k, v)| format!("{}={}", sanitize(k), plain(v))).collect::<Vec<_>>().join(", "),
    }
}

/// A JSON value compactly, strings quoted (for audit changes, where `null` and `""` differ).
fn compact(value: &Value) -> String {
    sanitize(&value.to_string())
}

/// A record field as shown in a listing or table, with the meaning of `null` spelled out.
fn field(record: &Map<String, Value>, name: &str) -> String {
    match (name, record.get(name)) {
        (_, None) => "-".into(),
        ("valid_from", Some(Value::Null)) => "immediately".into(),
        ("valid_to", Some(Value::Null)) => "lifetime".into(),
        ("allowed_origins", Some(Value::Null)) => "any".into(),
        // An empty network or country list restricts nothing.
        ("allowed_networks" | "allowed_countries", Some(Value::Array(list))) if list.is_empty() => "any".into(),
        // Null tier: the gateway's DEFAULT_TIER (if any) applies.
        ("tier", Some(Value::Null)) => "default".into(),
        // Null limits: the tier's apply; an empty list means no limits at all.
        ("limits", Some(Value::Null)) => "from tier".into(),
        ("limits", Some(Value::Array(specs))) if specs.is_empty() => "none (unlimited)".into(),
        ("limits", Some(Value::Array(specs))) => specs.iter().map(limit_spec).collect::<Vec<_>>().join(", "),
        // Null mode: the tier's, else the gateway's LIMIT_MODE.
        ("limit_mode", Some(Value::Null)) => "default".into(),
        (_, Some(value)) => plain(value),
    }
}

/// One `{name, limit, window_seconds}` as `minute 600/60s` (anything else as plain text).
fn limit_spec(spec: &Value) -> String {
    let name = spec.get("name").and_then(Value::as_str);
    let limit = spec.get("limit").and_then(Value::as_u64);
    let window = spec.get("window_seconds").and_then(Value::as_u64);
    match (name, limit, window) {
        (Some(name), Some(limit), Some(window)) => format!("{} {limit}/{window}s", sanitize(name)),
        _ => plain(spec),
    }
}

fn as_record<'a>(value: &'a Value, what: &str) -> Result<&'a Map<String, Value>, String> {
    match value {
        Value::Object(map) if map.get("id").is_some_and(Value::is_string) => Ok(map),
        _ => Err(format!("{what} is not a key record")),
    }
}

/// `label  value` lines, labels padded to a common width.
fn key_values(rows: &[(String, String)]) -> String {
    let width = rows.iter().map(|(label, _)| label.chars().count()).max().unwrap_or(0);
    let mut out = String::new();
    for (label, value) in rows {
        let _ = writeln!(out, "{label:<width$}  {value}");
    }
    out
}

/// The key/value listing of a record.
pub fn record_listing(record: &Map<String, Value>) -> String {
    let mut rows: Vec<(String, String)> =
        RECORD_FIELDS.iter().filter(|name| record.contains_key(**name)).map(|name| (name.to_string(), field(record, name))).collect();
    rows.extend(
        record.iter().filter(|(name, _)| !RECORD_FIELDS.contains(&name.as_str())).map(|(name, value)| (sanitize(name), plain(value))),
    );
    key_values(&rows)
}

/// An aligned table; the last column is not padded.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let header: Vec<String> = headers.iter().map(|h| h.to_string()).collect();
    for row in std::iter::once(&header).chain(rows) {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i + 1 == row.len() {
                line.push_str(cell);
            } else {
                let pad = widths[i] - cell.chars().count();
                line.push_str(cell);
                line.push_str(&" ".repeat(pad + 2));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// The `list` table at `now_ms`: STATUS is the stored status, with `(expired)` or
/// `(not yet valid)` when the validity window says so; LAST_USED is the last use the gateway
/// has reported (`never` when none yet, `-` from a gateway that does not report it).
pub fn key_table(items: &[Value], now_ms: i64) -> Result<String, String> {
    let mut rows = Vec::with_capacity(items.len());
    for item in items {
        let record = as_record(item, "a list item")?;
        let mut row: Vec<String> =
            ["id", "name", "env", "role", "status", "valid_to", "hint"].iter().map(|name| field(record, name)).collect();
        row[4] = display_status(record, now_ms);
        row.push(match record.get("last_used_at") {
            None => "-".into(),
            Some(Value::Null) => "never".into(),
            Some(value) => plain(value),
        });
        rows.push(row);
    }
    Ok(table(&["ID", "NAME", "ENV", "ROLE", "STATUS", "VALID_TO", "HINT", "LAST_USED"], &rows))
}

/// The stored status, and what the validity window makes of an active key at `now_ms`.
fn display_status(record: &Map<String, Value>, now_ms: i64) -> String {
    let stored = field(record, "status");
    let at = |name: &str| record.get(name).and_then(Value::as_str).and_then(Timestamp::parse_rfc3339).map(Timestamp::millis);
    if stored != "active" {
        return stored;
    }
    match (at("valid_from"), at("valid_to")) {
        (_, Some(to)) if to <= now_ms => format!("{stored} (expired)"),
        (Some(from), _) if from > now_ms => format!("{stored} (not yet valid)"),
        _ => stored,
    }
}

/// One audit entry's changes: `field: from -> to; …`.
fn changes_summary(changes: Option<&Value>) -> String {
    match changes {
        None | Some(Value::Null) => "-".into(),
        Some(Value::Object(map)) if map.is_empty() => "-".into(),
        Some(Value::Object(map)) => map
            .iter()
            .map(|(name, change)| match change {
                Value::Object(c) if c.contains_key("from") || c.contains_key("to") => {
                    let side = |k| c.get(k).map_or_else(|| "?".to_string(), compact);
                    format!("{}: {} -> {}", sanitize(name), side("from"), side("to"))
                }
                other => format!("{}: {}", sanitize(name), compact(other)),
            })
            .collect::<Vec<_>>()
            .join("; "),
        Some(other) => compact(other),
    }
}

/// The `audit` table.
pub fn audit_table(items: &[Value]) -> Result<String, String> {
    let mut rows = Vec::with_capacity(items.len());
    for item in items {
        let Value::Object(entry) = item else {
            return Err("an audit entry is not an object".into());
        };
        let cell = |name: &str| entry.get(name).map_or_else(|| "-".to_string(), plain);
        let mut changes = changes_summary(entry.get("changes"));
        // A leak report (README "Leak reports") says where the key was found.
        if let Some(source) = entry.get("source") {
            let found = format!("found at {} by {}", plain(source), cell("reporter"));
            changes = if changes == "-" { found } else { format!("{changes}; {found}") };
        }
        rows.push(vec![cell("at"), cell("action"), cell("revision"), changes]);
    }
    Ok(table(&["AT", "ACTION", "REVISION", "CHANGES"], &rows))
}

/// The `webhooks` table: one row per event and endpoint, newest first, its attempts as
/// `time status` (or `time error`) in order.
pub fn webhook_table(items: &[Value]) -> Result<String, String> {
    let mut rows = Vec::with_capacity(items.len());
    for item in items {
        let Value::Object(entry) = item else {
            return Err("a webhook delivery is not an object".into());
        };
        let cell = |name: &str| entry.get(name).filter(|v| !v.is_null()).map_or_else(|| "-".to_string(), plain);
        let attempts = match entry.get("attempts") {
            Some(Value::Array(attempts)) if attempts.is_empty() => "-".to_string(),
            Some(Value::Array(attempts)) => attempts
                .iter()
                .map(|a| {
                    let at = a.get("at").map_or_else(|| "?".to_string(), plain);
                    let outcome = a.get("status").or_else(|| a.get("error")).map_or_else(|| "?".to_string(), plain);
                    format!("{at} {outcome}")
                })
                .collect::<Vec<_>>()
                .join(", "),
            _ => return Err("a webhook delivery has no \"attempts\" list".into()),
        };
        rows.push(vec![cell("created_at"), cell("type"), cell("state"), cell("endpoint"), cell("id"), attempts, cell("next_attempt_at")]);
    }
    Ok(table(&["CREATED", "TYPE", "STATE", "ENDPOINT", "ID", "ATTEMPTS", "NEXT"], &rows))
}

fn items(value: &Value) -> Result<&[Value], String> {
    match value.get("items") {
        Some(Value::Array(items)) => Ok(items),
        _ => Err("the answer has no \"items\" list".into()),
    }
}

/// The cursor of a page: `Ok(None)` on the last page.
pub fn page_cursor(page: &Value) -> Result<Option<String>, String> {
    match page.get("cursor") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(cursor)) if !cursor.is_empty() => Ok(Some(cursor.clone())),
        Some(_) => Err("the answer's \"cursor\" is neither a non-empty string nor null".into()),
    }
}

/// One day of usage.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Day {
    date: String,
    allowed: u64,
    refused: u64,
}

/// Checks a usage answer: `last_used_at` (string or null) and the `days` list.
fn usage_parts(value: &Value) -> Result<(Option<String>, Vec<Day>), String> {
    let Value::Object(usage) = value else {
        return Err("the usage answer is not an object".into());
    };
    let last_used = match usage.get("last_used_at") {
        None | Some(Value::Null) => None,
        Some(Value::String(at)) => Some(sanitize(at)),
        Some(_) => return Err("the usage answer's \"last_used_at\" is neither a string nor null".into()),
    };
    let Some(Value::Array(days)) = usage.get("days") else {
        return Err("the usage answer has no \"days\" list".into());
    };
    let mut out = Vec::with_capacity(days.len());
    for day in days {
        let date = day.get("date").and_then(Value::as_str);
        let allowed = day.get("allowed").and_then(Value::as_u64);
        let refused = day.get("refused").and_then(Value::as_u64);
        match (date, allowed, refused) {
            (Some(date), Some(allowed), Some(refused)) => out.push(Day { date: sanitize(date), allowed, refused }),
            _ => return Err("a usage day is not {\"date\", \"allowed\", \"refused\"}".into()),
        }
    }
    Ok((last_used, out))
}

/// The `usage` command: `last used: …`, then one row per day as the server ordered them.
pub fn usage_report(value: &Value) -> Result<String, String> {
    let (last_used, days) = usage_parts(value)?;
    let mut out = format!("last used: {}\n", last_used.as_deref().unwrap_or("never"));
    if days.is_empty() {
        out.push_str("no requests recorded\n");
    } else {
        let rows: Vec<Vec<String>> = days.into_iter().map(|d| vec![d.date, d.allowed.to_string(), d.refused.to_string()]).collect();
        out.push_str(&table(&["DATE", "ALLOWED", "REFUSED"], &rows));
    }
    if let Some(credits) = value.get("credits") {
        out.push_str(&credits_line(credits)?);
    }
    Ok(out)
}

/// `credits: N remaining[, refill …, next …]` of a usage answer's `credits`.
fn credits_line(credits: &Value) -> Result<String, String> {
    let Some(remaining) = credits.get("remaining").and_then(Value::as_u64) else {
        return Err("the usage answer's \"credits\" has no \"remaining\" number".into());
    };
    let refill = match credits.get("refill") {
        Some(refill) if refill.is_object() => {
            let text = |name: &str| refill.get(name).map(plain).unwrap_or_default();
            let next = credits.get("next_refill_at").map(plain).unwrap_or_default();
            format!(", refill {} per {} ({}), next {next}", text("amount"), text("interval"), text("mode"))
        }
        _ => String::new(),
    };
    Ok(format!("credits: {remaining} remaining{refill}\n"))
}

/// The usage lines `show` appends to a record listing; `today` is the current UTC date
/// (`YYYY-MM-DD`), whose counts are zero when the server lists no such day.
pub fn usage_summary(value: &Value, today: &str) -> Result<String, String> {
    let (last_used, days) = usage_parts(value)?;
    let (allowed, refused) = days.iter().find(|d| d.date == today).map_or((0, 0), |d| (d.allowed, d.refused));
    let rows = [
        ("last used".to_string(), last_used.unwrap_or_else(|| "never".into())),
        ("today".to_string(), format!("{allowed} allowed, {refused} refused ({today} UTC)")),
    ];
    Ok(format!("\n{}", key_values(&rows)))
}

/// Human-readable output for a successful answer; `Err` describes an unexpected shape.
pub fn human(expect: Expect, value: &Value, now_ms: i64) -> Result<String, String> {
    match expect {
        Expect::Record => Ok(record_listing(as_record(value, "the answer")?)),
        Expect::Page => {
            let items = items(value)?;
            page_cursor(value)?;
            if items.is_empty() {
                Ok(String::new())
            } else {
                key_table(items, now_ms)
            }
        }
        Expect::Audit => audit_table(items(value)?),
        Expect::Secret => secret(value),
        Expect::Usage => usage_report(value),
        Expect::Credits => match value.get("remaining").and_then(Value::as_u64) {
            Some(remaining) => Ok(format!("credits remaining: {remaining}\n")),
            None => Err("the credits answer has no \"remaining\" number".into()),
        },
        Expect::Webhooks => webhook_table(items(value)?),
    }
}

/// Create and roll: the new record, the previous key's state (roll), then the plaintext key on
/// its own labelled line followed by the warning.
fn secret(value: &Value) -> Result<String, String> {
    let lost = "; a key may have been issued without its plaintext being shown: check `keygate keys list` and revoke it";
    let key = match value.get("key") {
        Some(Value::String(key)) if !key.is_empty() => key,
        _ => return Err(format!("the answer has no plaintext \"key\"{lost}")),
    };
    let record = value.get("record").ok_or_else(|| format!("the answer has no \"record\"{lost}"))?;
    let record = as_record(record, "the answer's \"record\"").map_err(|e| format!("{e}{lost}"))?;
    let mut out = record_listing(record);
    if let Some(previous) = value.get("previous") {
        if let Ok(previous) = as_record(previous, "previous") {
            let _ = writeln!(
                out,
                "\nprevious key {} is now {}, valid to {}",
                field(previous, "id"),
                field(previous, "status"),
                field(previous, "valid_to")
            );
        }
    }
    let _ = writeln!(out, "\nkey: {}", sanitize(key));
    let _ = writeln!(out, "{KEY_WARNING}");
    Ok(out)
}

/// Renders a non-2xx answer in the gateway's error shape as `error: CODE: message` plus detail
/// lines; `None` when the body does not have that shape.
pub fn api_error(status: u16, body: &str) -> Option<String> {
    let value: Value = serde_json::from_str(body).ok()?;
    let error = value.get("error")?.as_object()?;
    let code = error.get("code")?.as_str()?;
    let message = error.get("message").and_then(Value::as_str).unwrap_or("");
    let mut out = format!("error: {}: {}\n", sanitize(code), sanitize(message));
    let details = error.get("details");
    let fields = details.and_then(|d| d.get("fields")).and_then(Value::as_object);
    if let Some(fields) = fields {
        for (name, problem) in fields {
            let _ = writeln!(out, "  {}: {}", sanitize(name), plain(problem));
        }
    }
    if let Some(Value::Object(details)) = details {
        for (name, detail) in details.iter().filter(|(name, _)| fields.is_none() || name.as_str() != "fields") {
            let _ = writeln!(out, "  {}: {}", sanitize(name), plain(detail));
        }
    }
    if status == 401 {
        out.push_str("  hint: check the admin token (KEYGATE_ADMIN_TOKEN or --admin-token)\n");
    }
    if let Some(id) = value.get("meta").and_then(|m| m.get("requestId")).and_then(Value::as_str) {
        let _ = writeln!(out, "  request id: {}", sanitize(id));
    }
    Some(out)
}

/// A short, sanitized excerpt of an error body for messages.
pub fn excerpt(body: &str) -> String {
    const MAX: usize = 200;
    let trimmed = body.trim();
    let mut out: String = trimmed.chars().take(MAX).collect();
    if trimmed.chars().count() > MAX {
        out.push('…');
    }
    sanitize(&out)
}

/// Pretty-prints JSON text with two-space indent, keeping the server's key order (serde_json's
/// `preserve_order` is enabled for the native build). Text that is not JSON is returned as is.
pub fn pretty_json(text: &str) -> String {
    match serde_json::from_str::<Value>(text).and_then(|value| serde_json::to_string_pretty(&value)) {
        Ok(pretty) => pretty + "\n",
        Err(_) => format!("{}\n", text.trim_end()),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn record() -> Value {
        json!({
            "id": "key_abc", "project": "acme", "name": "marketing site", "env": "live",
            "role": "read_only", "scopes": [], "status": "active",
            "valid_from": null, "valid_to": "2027-01-01T00:00:00Z", "allowed_origins": null,
            "created_at": "2026-11-22T10:00:00Z", "updated_at": "2026-11-22T10:00:00Z",
            "revision": 1, "meta": {"team": "web"}, "hint": "kg_live_…a1B2",
            "family": "key_abc", "rolled_from": null, "zeta": [1, 2],
            "tier": "pro", "limits": [{"name": "burst", "limit": 50, "window_seconds": 1},
                                      {"name": "minute", "limit": 600, "window_seconds": 60}],
            "limit_mode": null
        })
    }

    #[test]
    fn record_listing_spells_out_nulls_and_keeps_unknown_fields() {
        let listing = record_listing(record().as_object().unwrap());
        let expected = "\
id               key_abc
project          acme
name             marketing site
env              live
status           active
role             read_only
scopes           (none)
valid_from       immediately
valid_to         2027-01-01T00:00:00Z
allowed_origins  any
tier             pro
limits           burst 50/1s, minute 600/60s
limit_mode       default
meta             team=web
hint             kg_live_…a1B2
revision         1
family           key_abc
rolled_from      -
created_at       2026-11-22T10:00:00Z
updated_at       2026-11-22T10:00:00Z
zeta             1, 2
";
        assert_eq!(listing, expected);
    }

    #[test]
    fn record_listing_values() {
        let rows: Vec<(&str, Value, &str)> = vec![
            ("lifetime", json!({"id": "k", "valid_to": null}), "valid_to  lifetime"),
            ("origins", json!({"id": "k", "allowed_origins": ["https://a", "http://b:1"]}), "allowed_origins  https://a, http://b:1"),
            ("no origin at all", json!({"id": "k", "allowed_origins": []}), "allowed_origins  (none)"),
            ("scopes", json!({"id": "k", "scopes": ["a:b", "*"]}), "scopes  a:b, *"),
            ("any network", json!({"id": "k", "allowed_networks": []}), "allowed_networks  any"),
            (
                "networks",
                json!({"id": "k", "allowed_networks": ["10.0.0.0/8", "2001:db8::/32"]}),
                "allowed_networks  10.0.0.0/8, 2001:db8::/32",
            ),
            ("any country", json!({"id": "k", "allowed_countries": []}), "allowed_countries  any"),
            ("countries", json!({"id": "k", "allowed_countries": ["DE", "FR"]}), "allowed_countries  DE, FR"),
            ("empty meta", json!({"id": "k", "meta": {}}), "meta  (none)"),
            ("no role", json!({"id": "k", "role": null}), "role  -"),
            ("control chars", json!({"id": "k", "name": "a\u{1b}[31mb\nc"}), "name  a\\u{1b}[31mb\\u{a}c"),
            ("bidi override", json!({"id": "k", "name": "x\u{202e}y"}), "name  x\\u{202e}y"),
            ("no tier", json!({"id": "k", "tier": null}), "tier  default"),
            ("tier", json!({"id": "k", "tier": "free"}), "tier  free"),
            ("limits from the tier", json!({"id": "k", "limits": null}), "limits  from tier"),
            ("no limits at all", json!({"id": "k", "limits": []}), "limits  none (unlimited)"),
            (
                "one limit",
                json!({"id": "k", "limits": [{"name": "daily", "limit": 100000, "window_seconds": 86400}]}),
                "limits  daily 100000/86400s",
            ),
            ("odd limit entry", json!({"id": "k", "limits": [{"name": "x"}, 5]}), "limits  name=x, 5"),
            (
                "limit name escaped",
                json!({"id": "k", "limits": [{"name": "a\u{1b}", "limit": 1, "window_seconds": 2}]}),
                "limits  a\\u{1b} 1/2s",
            ),
            ("default mode", json!({"id": "k", "limit_mode": null}), "limit_mode  default"),
            ("exact mode", json!({"id": "k", "limit_mode": "exact"}), "limit_mode  exact"),
        ];
        for (what, value, line) in rows {
            let listing = record_listing(value.as_object().unwrap());
            assert!(listing.lines().any(|l| l == line), "{what}: {listing}");
        }
    }

    #[test]
    fn list_table_is_aligned() {
        let mut second = record();
        second["id"] = json!("key_longer_id");
        second["name"] = json!("x");
        second["role"] = json!(null);
        second["valid_to"] = json!(null);
        second["status"] = json!("revoked");
        second["hint"] = json!(null);
        second["last_used_at"] = json!("2026-11-23T09:15:00.000Z");
        let table = key_table(&[record(), second], 0).unwrap();
        let expected = "\
ID             NAME            ENV   ROLE       STATUS   VALID_TO              HINT           LAST_USED
key_abc        marketing site  live  read_only  active   2027-01-01T00:00:00Z  kg_live_…a1B2  -
key_longer_id  x               live  -          revoked  lifetime              -              2026-11-23T09:15:00.000Z
";
        assert_eq!(table, expected);
    }

    #[test]
    fn list_shows_expired_and_not_yet_valid_next_to_the_stored_status() {
        let now = Timestamp::parse_rfc3339("2027-06-01T00:00:00Z").unwrap().millis();
        let mut later = record();
        later["valid_from"] = json!("2028-01-01T00:00:00Z");
        later["valid_to"] = json!(null);
        later["last_used_at"] = json!(null);
        let mut disabled = record();
        disabled["status"] = json!("inactive");
        let table = key_table(&[record(), later, disabled], now).unwrap();
        let statuses: Vec<&str> =
            table.lines().skip(1).map(|line| line.split("  ").filter(|c| !c.is_empty()).nth(4).unwrap_or("").trim()).collect();
        assert_eq!(statuses, ["active (expired)", "active (not yet valid)", "inactive"], "{table}");
        assert!(table.lines().nth(2).unwrap_or("").trim_end().ends_with("never"), "{table}");
    }

    #[test]
    fn page_rendering() {
        assert_eq!(human(Expect::Page, &json!({"items": [], "cursor": null}), 0).unwrap(), "");
        assert!(human(Expect::Page, &json!({"items": [record()], "cursor": "c1"}), 0).unwrap().starts_with("ID "));
        let bad: Vec<(&str, Value)> = vec![
            ("no items", json!({"cursor": null})),
            ("items not a list", json!({"items": {}, "cursor": null})),
            ("item not a record", json!({"items": [1], "cursor": null})),
            ("item without id", json!({"items": [{"name": "x"}], "cursor": null})),
            ("numeric cursor", json!({"items": [], "cursor": 3})),
            ("not an object", json!([1, 2])),
        ];
        for (what, value) in bad {
            assert!(human(Expect::Page, &value, 0).is_err(), "{what}");
        }
        assert_eq!(page_cursor(&json!({"items": [], "cursor": "abc"})).unwrap(), Some("abc".into()));
        assert_eq!(page_cursor(&json!({"items": []})).unwrap(), None);
    }

    #[test]
    fn webhook_table_lists_deliveries_with_their_attempts() {
        let value = json!({"items": [
            {"id": "evt_b", "type": "key.expiring", "endpoint": "https://h.example/k", "created_at": "2026-11-30T10:00:00.000Z",
             "state": "pending", "attempts": [], "next_attempt_at": "2026-12-07T10:00:00.000Z"},
            {"id": "evt_a", "type": "key.revoked", "endpoint": "https://h.example/k", "created_at": "2026-11-29T10:00:00.000Z",
             "state": "delivered", "attempts": [{"at": "2026-11-29T10:00:00.000Z", "status": 500}, {"at": "2026-11-29T10:00:05.000Z", "error": "timeout"},
             {"at": "2026-11-29T10:05:05.000Z", "status": 204}], "next_attempt_at": null}
        ]});
        let table = human(Expect::Webhooks, &value, 0).unwrap();
        let lines: Vec<&str> = table.lines().collect();
        assert!(lines[0].starts_with("CREATED") && lines[0].contains("ATTEMPTS"), "{table}");
        assert!(
            lines[1].contains("key.expiring") && lines[1].contains("pending") && lines[1].ends_with("2026-12-07T10:00:00.000Z"),
            "{table}"
        );
        assert!(
            lines[2].contains("2026-11-29T10:00:00.000Z 500, 2026-11-29T10:00:05.000Z timeout, 2026-11-29T10:05:05.000Z 204"),
            "{table}"
        );
        assert!(lines[2].contains("delivered") && lines[2].contains("evt_a") && lines[2].trim_end().ends_with('-'), "{table}");
        assert!(human(Expect::Webhooks, &json!({"items": [{"id": "evt_a"}]}), 0).is_err(), "no attempts list");
        assert!(human(Expect::Webhooks, &json!({"items": [7]}), 0).is_err());
    }

    #[test]
    fn audit_table_summarizes_changes() {
        let value = json!({"items": [
            {"at": "2026-11-22T10:00:00Z", "action": "created", "revision": 1, "changes": {}},
            {"at": "2026-11-23T10:00:00Z", "action": "updated", "revision": 2,
             "changes": {"name": {"from": "a", "to": "b"}, "role": {"from": "read_only", "to": null}}},
            {"at": "2026-11-24T10:00:00Z", "action": "rolled", "revision": 3, "changes": {"odd": 5}},
            {"at": "2026-11-25T10:00:00Z", "action": "disabled", "revision": 4},
            {"at": "2026-11-26T10:00:00Z", "action": "leak_reported", "revision": 4, "changes": {}, "reporter": "github", "source": "https://github.com/o/r/blob/c/.env"},
            {"at": "2026-11-27T10:00:00Z", "action": "leak_reported", "revision": 5, "changes": {"status": {"from": "active", "to": "inactive"}}, "reporter": "github", "source": "https://gist.github.com/o/1"}
        ]});
        let expected = "\
AT                    ACTION         REVISION  CHANGES
2026-11-22T10:00:00Z  created        1         -
2026-11-23T10:00:00Z  updated        2         name: \"a\" -> \"b\"; role: \"read_only\" -> null
2026-11-24T10:00:00Z  rolled         3         odd: 5
2026-11-25T10:00:00Z  disabled       4         -
2026-11-26T10:00:00Z  leak_reported  4         found at https://github.com/o/r/blob/c/.env by github
2026-11-27T10:00:00Z  leak_reported  5         status: \"active\" -> \"inactive\"; found at https://gist.github.com/o/1 by github
";
        assert_eq!(human(Expect::Audit, &value, 0).unwrap(), expected);
        assert!(human(Expect::Audit, &json!({"items": ["x"]}), 0).is_err());
        assert!(human(Expect::Audit, &json!(null), 0).is_err());
    }

    fn usage() -> Value {
        json!({"key_id": "key_abc", "last_used_at": "2026-11-23T09:15:00Z", "days": [
            {"date": "2026-11-23", "allowed": 1200, "refused": 3},
            {"date": "2026-11-22", "allowed": 7, "refused": 0},
        ]})
    }

    #[test]
    fn usage_report_lists_days_in_server_order() {
        let expected = "\
last used: 2026-11-23T09:15:00Z
DATE        ALLOWED  REFUSED
2026-11-23  1200     3
2026-11-22  7        0
";
        assert_eq!(human(Expect::Usage, &usage(), 0).unwrap(), expected);
        let rows: Vec<(&str, Value, &str)> = vec![
            ("never used", json!({"key_id": "k", "last_used_at": null, "days": []}), "last used: never\nno requests recorded\n"),
            ("no last_used_at field", json!({"key_id": "k", "days": []}), "last used: never\nno requests recorded\n"),
            (
                "escaped",
                json!({"key_id": "k", "last_used_at": "x\u{1b}", "days": [{"date": "d\u{202e}", "allowed": 0, "refused": 1}]}),
                "last used: x\\u{1b}\nDATE       ALLOWED  REFUSED\nd\\u{202e}  0        1\n",
            ),
        ];
        for (what, value, expected) in rows {
            assert_eq!(usage_report(&value).unwrap(), expected, "{what}");
        }
    }

    #[test]
    fn usage_of_an_unexpected_shape_is_an_error() {
        let rows: Vec<(&str, Value)> = vec![
            ("not an object", json!([1])),
            ("no days", json!({"key_id": "k", "last_used_at": null})),
            ("days not a list", json!({"key_id": "k", "last_used_at": null, "days": {}})),
            ("numeric last_used_at", json!({"key_id": "k", "last_used_at": 5, "days": []})),
            ("day without date", json!({"key_id": "k", "days": [{"allowed": 1, "refused": 0}]})),
            ("negative count", json!({"key_id": "k", "days": [{"date": "2026-11-23", "allowed": -1, "refused": 0}]})),
            ("string count", json!({"key_id": "k", "days": [{"date": "2026-11-23", "allowed": 1, "refused": "0"}]})),
            ("day not an object", json!({"key_id": "k", "days": ["2026-11-23"]})),
        ];
        for (what, value) in rows {
            assert!(human(Expect::Usage, &value, 0).is_err(), "{what}");
            assert!(usage_summary(&value, "2026-11-23").is_err(), "{what}");
        }
    }

    #[test]
    fn usage_summary_shows_today() {
        let rows: Vec<(&str, Value, &str, &str)> = vec![
            (
                "today listed",
                usage(),
                "2026-11-23",
                "\nlast used  2026-11-23T09:15:00Z\ntoday      1200 allowed, 3 refused (2026-11-23 UTC)\n",
            ),
            (
                "today not listed yet",
                usage(),
                "2026-11-24",
                "\nlast used  2026-11-23T09:15:00Z\ntoday      0 allowed, 0 refused (2026-11-24 UTC)\n",
            ),
            (
                "never used",
                json!({"key_id": "k", "last_used_at": null, "days": []}),
                "2026-11-24",
                "\nlast used  never\ntoday      0 allowed, 0 refused (2026-11-24 UTC)\n",
            ),
        ];
        for (what, value, today, expected) in rows {
            assert_eq!(usage_summary(&value, today).unwrap(), expected, "{what}");
        }
    }

    #[test]
    fn secret_shows_the_key_once_after_the_record() {
        let mut previous = record();
        previous["id"] = json!("key_old");
        previous["valid_to"] = json!("2026-11-23T10:00:00Z");
        let value = json!({"key": "kg_live_SECRET1234", "record": record(), "previous": previous});
        let out = human(Expect::Secret, &value, 0).unwrap();
        assert_eq!(out.matches("kg_live_SECRET1234").count(), 1);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[lines.len() - 2], "key: kg_live_SECRET1234");
        assert_eq!(lines[lines.len() - 1], KEY_WARNING);
        assert!(out.contains("previous key key_old is now active, valid to 2026-11-23T10:00:00Z"));
        assert!(out.starts_with("id "));
    }

    #[test]
    fn secret_of_an_unexpected_shape_is_an_error_without_the_key() {
        let rows: Vec<(&str, Value)> = vec![
            ("no key", json!({"record": record()})),
            ("empty key", json!({"key": "", "record": record()})),
            ("numeric key", json!({"key": 5, "record": record()})),
            ("no record", json!({"key": "kg_live_SECRET1234"})),
            ("record not a record", json!({"key": "kg_live_SECRET1234", "record": []})),
        ];
        for (what, value) in rows {
            let error = human(Expect::Secret, &value, 0).expect_err(what);
            assert!(!error.contains("SECRET"), "{what}: {error}");
            assert!(error.contains("revoke"), "{what}: {error}");
        }
    }

    #[test]
    fn api_errors() {
        let rows: Vec<(&str, u16, &str, Option<&str>)> = vec![
            (
                "validation",
                400,
                r#"{"error":{"code":"VALIDATION_FAILED","message":"invalid request",
                    "details":{"fields":{"name":"must be 1-100 characters","scopes":"unknown scope \"x\""}}},
                    "meta":{"requestId":"r1","timestamp":"2026-11-22T10:00:00Z"}}"#,
                Some("error: VALIDATION_FAILED: invalid request\n  name: must be 1-100 characters\n  scopes: unknown scope \"x\"\n  request id: r1\n"),
            ),
            (
                "unauthorized",
                401,
                r#"{"error":{"code":"UNAUTHORIZED","message":"bad token","details":null}}"#,
                Some("error: UNAUTHORIZED: bad token\n  hint: check the admin token (KEYGATE_ADMIN_TOKEN or --admin-token)\n"),
            ),
            (
                "other details",
                409,
                r#"{"error":{"code":"CONFLICT","message":"revoked","details":{"status":"revoked"}}}"#,
                Some("error: CONFLICT: revoked\n  status: revoked\n"),
            ),
            ("missing message", 404, r#"{"error":{"code":"NOT_FOUND"}}"#, Some("error: NOT_FOUND: \n")),
            ("html", 502, "<html>bad gateway</html>", None),
            ("other json", 500, r#"{"message":"boom"}"#, None),
            ("numeric code", 500, r#"{"error":{"code":5}}"#, None),
            ("error is a string", 500, r#"{"error":"boom"}"#, None),
            ("empty", 500, "", None),
        ];
        for (what, status, body, expected) in rows {
            assert_eq!(api_error(status, body).as_deref(), expected, "{what}");
        }
    }

    #[test]
    fn pretty_json_keeps_key_order() {
        let text = r#" {"z":1,"a":[1.5,{"k":"v, [x]: \"q\" \\"}],"e":{},"l":[],"n":null}"#;
        let expected = r#"{
  "z": 1,
  "a": [
    1.5,
    {
      "k": "v, [x]: \"q\" \\"
    }
  ],
  "e": {},
  "l": [],
  "n": null
}
"#;
        assert_eq!(pretty_json(text), expected);
        assert_eq!(pretty_json("\"x\""), "\"x\"\n");
        assert_eq!(pretty_json("[ ]"), "[]\n");
        let round: Value = serde_json::from_str(&pretty_json(text)).unwrap();
        assert_eq!(round, serde_json::from_str::<Value>(text).unwrap());
    }

    #[test]
    fn excerpts_are_short_and_sanitized() {
        assert_eq!(excerpt("  a\u{7}b  "), "a\\u{7}b");
        assert_eq!(excerpt(&"x".repeat(300)).chars().count(), 201);
    }
}
