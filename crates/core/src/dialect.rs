//! How the gateway's refusals look on the wire: the error dialect (`ERROR_DIALECT`), the
//! per-deployment map of codes (`ERROR_MAP`), how quota refusals are coded (`QUOTA_CODE`), and
//! the status of a test key on a live-only route (`TEST_KEY_ON_LIVE_ROUTE`). Pure.
//!
//! [`Refusals::render`] is the one place a gateway refusal becomes status, body and challenge;
//! it runs only on refusals, never for an admitted request. The default renders exactly
//! [`GatewayError::body`]. The admin API is keygate's own API and always keeps keygate's
//! shape (it renders with [`Refusals::default`]).
//!
//! Order: internal error → quota coded as a rate limit (`QUOTA_CODE`, or the `optimo` dialect) →
//! status (`TEST_KEY_ON_LIVE_ROUTE`, then the map's `status`) → the dialect's code, message and
//! body shape for that status → the map's `code` and `message`. `WWW-Authenticate` follows the
//! internal error as before, and every 401 carries one.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::config::ConfigError;
use crate::error::GatewayError;
use crate::json::object;

/// The shape of refusal bodies (`ERROR_DIALECT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorDialect {
    /// `{"error":{"code","message","details"},"meta":{"requestId","timestamp"}}` (default).
    Keygate,
    /// Keygate's nesting with OptimoCMS's public codes (`UNAUTHORIZED`, `FORBIDDEN`,
    /// `RATE_LIMIT_EXCEEDED`) and messages.
    Optimo,
    /// Octopost's flat `{"error": "<message>", "code": "<lowercase code>"}`.
    Octopost,
    /// RFC 9457 `application/problem+json` with extension members `code` and `requestId`.
    Problem,
}

/// How a spent quota (window of a day or more) is coded (`QUOTA_CODE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuotaCode {
    /// `QUOTA_EXCEEDED` (default).
    Distinct,
    /// `RATE_LIMIT_EXCEEDED`, with the rate limit's message.
    RateLimit,
}

/// One `ERROR_MAP` entry: what replaces an internal code's public status, code and message.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ErrorOverride {
    /// Public HTTP status (400-599).
    #[serde(default)]
    pub status: Option<u16>,
    /// Public code.
    #[serde(default)]
    pub code: Option<String>,
    /// Public message.
    #[serde(default)]
    pub message: Option<String>,
}

/// Every choice about how gateway refusals look, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusals {
    /// `ERROR_DIALECT`.
    pub dialect: ErrorDialect,
    /// `ERROR_MAP`: internal code → public status, code, message.
    pub map: BTreeMap<String, ErrorOverride>,
    /// `QUOTA_CODE` (the `optimo` dialect always codes quotas as rate limits).
    pub quota_code: QuotaCode,
    /// `TEST_KEY_ON_LIVE_ROUTE`: status of `ENVIRONMENT_MISMATCH` (403 or 401).
    pub environment_mismatch_status: u16,
}

impl Default for Refusals {
    fn default() -> Self {
        Refusals { dialect: ErrorDialect::Keygate, map: BTreeMap::new(), quota_code: QuotaCode::Distinct, environment_mismatch_status: 403 }
    }
}

/// A rendered refusal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// HTTP status.
    pub status: u16,
    /// `Content-Type`.
    pub content_type: &'static str,
    /// The body.
    pub body: String,
    /// `WWW-Authenticate`, when the refusal has one.
    pub www_authenticate: Option<String>,
}

/// `Content-Type` of keygate's JSON answers.
pub const JSON: &str = "application/json; charset=utf-8";
/// `Content-Type` of the `problem` dialect (RFC 9457 §3).
pub const PROBLEM_JSON: &str = "application/problem+json";

/// The internal codes of gateway refusals: the codes `ERROR_MAP` may name. (Admin API codes
/// are not here: the admin API keeps keygate's shape; `CONFIG_INVALID` is answered before any
/// config exists.) A test holds the list to the error enum.
pub const GATEWAY_CODES: &[&str] = &[
    "MISSING_KEY",
    "BAD_REQUEST",
    "ROUTE_NOT_FOUND",
    "ROUTE_NOT_ALLOWED",
    "INVALID_KEY",
    "KEY_REVOKED",
    "KEY_DISABLED",
    "KEY_NOT_YET_VALID",
    "KEY_EXPIRED",
    "INSUFFICIENT_SCOPE",
    "PROJECT_MISMATCH",
    "ORIGIN_NOT_ALLOWED",
    "NETWORK_NOT_ALLOWED",
    "COUNTRY_NOT_ALLOWED",
    "ENVIRONMENT_MISMATCH",
    "STORE_UNAVAILABLE",
    "ORIGIN_UNAVAILABLE",
    "ORIGIN_TIMEOUT",
    "RATE_LIMIT_EXCEEDED",
    "QUOTA_EXCEEDED",
    "CREDITS_EXHAUSTED",
];

fn err(setting: &'static str, problem: impl Into<String>) -> ConfigError {
    ConfigError { setting, problem: problem.into() }
}

impl Refusals {
    /// Parses `ERROR_DIALECT`, `ERROR_MAP`, `QUOTA_CODE` and `TEST_KEY_ON_LIVE_ROUTE` (`get`
    /// returns a trimmed, non-empty value or `None`).
    pub fn from_settings(get: &dyn Fn(&str) -> Option<String>) -> Result<Refusals, ConfigError> {
        let dialect = match get("ERROR_DIALECT").as_deref() {
            None | Some("keygate") => ErrorDialect::Keygate,
            Some("optimo") => ErrorDialect::Optimo,
            Some("octopost") => ErrorDialect::Octopost,
            Some("problem") => ErrorDialect::Problem,
            Some(_) => return Err(err("ERROR_DIALECT", "must be keygate, optimo, octopost or problem")),
        };
        let quota_code = match get("QUOTA_CODE").as_deref() {
            None => QuotaCode::Distinct,
            Some("distinct") if dialect == ErrorDialect::Optimo => {
                return Err(err("QUOTA_CODE", "distinct contradicts ERROR_DIALECT=optimo (every 429 is RATE_LIMIT_EXCEEDED)"))
            }
            Some("distinct") => QuotaCode::Distinct,
            Some("rate_limit") => QuotaCode::RateLimit,
            Some(_) => return Err(err("QUOTA_CODE", "must be distinct or rate_limit")),
        };
        let environment_mismatch_status = match get("TEST_KEY_ON_LIVE_ROUTE").as_deref().map(|v| v.trim_matches('"')) {
            None | Some("403") => 403,
            Some("401") => 401,
            Some(_) => return Err(err("TEST_KEY_ON_LIVE_ROUTE", "must be 403 or 401")),
        };
        let map: BTreeMap<String, ErrorOverride> = match get("ERROR_MAP") {
            None => BTreeMap::new(),
            Some(text) => crate::json::parse(&text)
                .map_err(|e| err("ERROR_MAP", format!("must be an object of code → {{status, code, message}}: {e}")))?,
        };
        for (internal, entry) in &map {
            if !GATEWAY_CODES.contains(&internal.as_str()) {
                return Err(err("ERROR_MAP", format!("{internal:?} is not a gateway error code (the admin API keeps keygate's codes)")));
            }
            if entry.status.is_none() && entry.code.is_none() && entry.message.is_none() {
                return Err(err("ERROR_MAP", format!("{internal}: names none of status, code, message")));
            }
            if entry.status.is_some_and(|s| !(400..=599).contains(&s)) {
                return Err(err("ERROR_MAP", format!("{internal}: status must be from 400 to 599")));
            }
            if entry
                .code
                .as_deref()
                .is_some_and(|c| !(1..=64).contains(&c.len()) || !c.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.:-".contains(&b)))
            {
                return Err(err("ERROR_MAP", format!("{internal}: code must be 1-64 letters, digits, _ . : or -")));
            }
            if entry.message.as_deref().is_some_and(|m| m.trim().is_empty() || m.len() > 500 || m.chars().any(char::is_control)) {
                return Err(err("ERROR_MAP", format!("{internal}: message must be 1-500 characters without control characters")));
            }
        }
        Ok(Refusals { dialect, map, quota_code, environment_mismatch_status })
    }

    /// Status, body and challenge of a gateway refusal.
    pub fn render(&self, error: &GatewayError, request_id: &str, timestamp: &str) -> Rendered {
        let entry = self.map.get(error.code());
        let quota_as_rate = self.quota_code == QuotaCode::RateLimit || self.dialect == ErrorDialect::Optimo;
        let (code, message) = match error {
            GatewayError::QuotaExceeded { retry_after, .. } if quota_as_rate => ("RATE_LIMIT_EXCEEDED", rate_limit_message(*retry_after)),
            other => (other.code(), other.message()),
        };
        let status = match error {
            GatewayError::EnvironmentMismatch => self.environment_mismatch_status,
            other => other.status(),
        };
        let status = entry.and_then(|e| e.status).unwrap_or(status);
        let (code, message) = match self.dialect {
            ErrorDialect::Keygate | ErrorDialect::Problem => (code.to_string(), message),
            ErrorDialect::Optimo => optimo(error, status, code, message),
            ErrorDialect::Octopost if status == 401 => ("unauthorized".to_string(), "Invalid or expired API key".to_string()),
            ErrorDialect::Octopost => (code.to_ascii_lowercase(), message),
        };
        let code = entry.and_then(|e| e.code.clone()).unwrap_or(code);
        let message = entry.and_then(|e| e.message.clone()).unwrap_or(message);
        let (content_type, body) = match self.dialect {
            ErrorDialect::Keygate => (JSON, nested(&code, &message, error.details(), request_id, timestamp)),
            ErrorDialect::Optimo => {
                let details = match error {
                    GatewayError::RateLimitExceeded { retry_after, .. } | GatewayError::QuotaExceeded { retry_after, .. } => {
                        object([("retryAfter", (*retry_after).into())])
                    }
                    other => other.details(),
                };
                (JSON, nested(&code, &message, details, request_id, timestamp))
            }
            // Written out, so the members keep the seed's order whatever serde_json's map is.
            ErrorDialect::Octopost => (JSON, format!("{{\"error\":{},\"code\":{}}}", Value::from(message), Value::from(code))),
            ErrorDialect::Problem => (
                PROBLEM_JSON,
                object([
                    ("type", "about:blank".into()),
                    ("title", reason_phrase(status).into()),
                    ("status", status.into()),
                    ("detail", message.into()),
                    ("code", code.into()),
                    ("requestId", request_id.into()),
                ])
                .to_string(),
            ),
        };
        // Every 401 challenges (RFC 9110 §15.5.2), also one made a 401 by config.
        let www_authenticate = error.www_authenticate().or_else(|| {
            (status == 401).then(|| format!("Bearer realm=\"keygate\", error=\"invalid_token\", error_description=\"{}\"", error.code()))
        });
        Rendered { status, content_type, body, www_authenticate }
    }
}

fn rate_limit_message(retry_after: u64) -> String {
    format!("Rate limit exceeded. Try again in {retry_after} seconds.")
}

/// OptimoCMS's error table: one public code per status, its scope and rate-limit messages.
fn optimo(error: &GatewayError, status: u16, code: &str, message: String) -> (String, String) {
    let message = match error {
        GatewayError::InsufficientScope { missing } => format!("API key does not have scope: {}", missing.join(", ")),
        GatewayError::RateLimitExceeded { retry_after, .. } | GatewayError::QuotaExceeded { retry_after, .. } => {
            rate_limit_message(*retry_after)
        }
        _ => message,
    };
    let code = match status {
        401 => "UNAUTHORIZED",
        403 => "FORBIDDEN",
        429 => "RATE_LIMIT_EXCEEDED",
        _ => code,
    };
    (code.to_string(), message)
}

/// Keygate's nesting (also the `optimo` dialect's). Members in the order of [`GatewayError::body`], so
/// the default rendering is byte for byte the same.
fn nested(code: &str, message: &str, details: Value, request_id: &str, timestamp: &str) -> String {
    let error = object([("code", code.into()), ("message", message.into()), ("details", details)]);
    object([("error", error), ("meta", object([("requestId", request_id.into()), ("timestamp", timestamp.into())]))]).to_string()
}

/// The `title` of an `about:blank` problem: the status's reason phrase (RFC 9457 §4.2.1).
fn reason_phrase(status: u16) -> &'static str {
    match status {
        400 => "Bad Request",
        401 => "Unauthorized",
        402 => "Payment Required",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        410 => "Gone",
        422 => "Unprocessable Content",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ if status < 500 => "Client Error",
        _ => "Server Error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::GatewayError as E;
    use serde_json::json;

    const ID: &str = "req_1";
    const AT: &str = "2026-05-26T12:00:00Z";

    fn refusals(vars: &[(&str, &str)]) -> Result<Refusals, ConfigError> {
        let vars: BTreeMap<String, String> = vars.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect();
        Refusals::from_settings(&|name| vars.get(name).cloned())
    }

    fn dialect(name: &str) -> Refusals {
        refusals(&[("ERROR_DIALECT", name)]).unwrap()
    }

    /// The representative refusals: (what, error).
    fn representative() -> Vec<(&'static str, GatewayError)> {
        vec![
            ("401 missing key", E::MissingKey),
            ("401 revoked", E::KeyRevoked),
            ("403 scope", E::InsufficientScope { missing: vec!["pages:write".into()] }),
            ("429 rate", E::RateLimitExceeded { limit: "minute".into(), retry_after: 45 }),
            ("429 quota", E::QuotaExceeded { limit: "daily".into(), retry_after: 3600 }),
            ("503 store", E::StoreUnavailable),
            ("402 credits", E::CreditsExhausted { retry_after: 60 }),
        ]
    }

    /// Whether the gateway (not the admin API, not config loading) produces `error`. Exhaustive, so a
    /// new variant must be placed; a test holds [`GATEWAY_CODES`] to it.
    fn is_gateway_refusal(error: &E) -> bool {
        match error {
            E::MissingKey
            | E::BadRequest { .. }
            | E::RouteNotFound
            | E::RouteNotAllowed
            | E::InvalidKey { .. }
            | E::KeyRevoked
            | E::KeyDisabled
            | E::KeyNotYetValid
            | E::KeyExpired
            | E::InsufficientScope { .. }
            | E::ProjectMismatch
            | E::OriginNotAllowed
            | E::NetworkNotAllowed
            | E::CountryNotAllowed
            | E::EnvironmentMismatch
            | E::StoreUnavailable
            | E::OriginUnavailable
            | E::OriginTimeout
            | E::RateLimitExceeded { .. }
            | E::QuotaExceeded { .. }
            | E::CreditsExhausted { .. } => true,
            E::ConfigInvalid { .. }
            | E::Unauthorized
            | E::ReportUnverified
            | E::AdminAuthThrottled { .. }
            | E::NotFound
            | E::ValidationFailed { .. }
            | E::Conflict { .. }
            | E::PayloadTooLarge { .. }
            | E::UnsupportedMediaType => false,
        }
    }

    fn json_of(rendered: &Rendered) -> Value {
        serde_json::from_str(&rendered.body).unwrap()
    }

    #[test]
    fn default_renders_todays_body_byte_for_byte() {
        let default = Refusals::default();
        assert_eq!(refusals(&[]).unwrap(), default, "unset settings are the default");
        for error in crate::error::tests::all() {
            let rendered = default.render(&error, ID, AT);
            assert_eq!(rendered.body, error.body(ID, AT), "{error:?}");
            assert_eq!((rendered.status, rendered.content_type), (error.status(), JSON), "{error:?}");
            assert_eq!(rendered.www_authenticate, error.www_authenticate(), "{error:?}");
        }
    }

    #[test]
    fn network_refusals_render_like_every_other_403() {
        for error in [E::NetworkNotAllowed, E::CountryNotAllowed] {
            let internal = error.code();
            for (name, code) in [
                ("keygate", internal.to_string()),
                ("optimo", "FORBIDDEN".into()),
                ("octopost", internal.to_ascii_lowercase()),
                ("problem", internal.into()),
            ] {
                let rendered = dialect(name).render(&error, ID, AT);
                let body = json_of(&rendered);
                let got = match name {
                    "octopost" | "problem" => &body["code"],
                    _ => &body["error"]["code"],
                };
                assert_eq!((rendered.status, got.as_str()), (403, Some(code.as_str())), "{name} {internal}");
                assert_eq!(rendered.www_authenticate, None, "{name} {internal}: a 403 without a scope carries no challenge");
            }
        }
    }

    #[test]
    fn dialect_table() {
        // (dialect, representative refusal) → (status, public code, message).
        let rows: Vec<(&str, &str, u16, &str, &str)> = vec![
            (
                "keygate",
                "401 missing key",
                401,
                "MISSING_KEY",
                "No API key was sent. Use 'Authorization: Bearer <key>' or 'X-Api-Key: <key>'.",
            ),
            ("keygate", "401 revoked", 401, "KEY_REVOKED", "The API key has been revoked."),
            ("keygate", "403 scope", 403, "INSUFFICIENT_SCOPE", "The API key does not have scope: pages:write."),
            ("keygate", "429 rate", 429, "RATE_LIMIT_EXCEEDED", "Rate limit exceeded. Try again in 45 seconds."),
            ("keygate", "429 quota", 429, "QUOTA_EXCEEDED", "Quota exceeded. It resets in 3600 seconds."),
            ("keygate", "503 store", 503, "STORE_UNAVAILABLE", "The key store is unavailable. Try again shortly."),
            ("keygate", "402 credits", 402, "CREDITS_EXHAUSTED", "This key has no credits left. They are refilled in 60 seconds."),
            (
                "optimo",
                "401 missing key",
                401,
                "UNAUTHORIZED",
                "No API key was sent. Use 'Authorization: Bearer <key>' or 'X-Api-Key: <key>'.",
            ),
            ("optimo", "401 revoked", 401, "UNAUTHORIZED", "The API key has been revoked."),
            ("optimo", "403 scope", 403, "FORBIDDEN", "API key does not have scope: pages:write"),
            ("optimo", "429 rate", 429, "RATE_LIMIT_EXCEEDED", "Rate limit exceeded. Try again in 45 seconds."),
            ("optimo", "429 quota", 429, "RATE_LIMIT_EXCEEDED", "Rate limit exceeded. Try again in 3600 seconds."),
            ("optimo", "503 store", 503, "STORE_UNAVAILABLE", "The key store is unavailable. Try again shortly."),
            ("optimo", "402 credits", 402, "CREDITS_EXHAUSTED", "This key has no credits left. They are refilled in 60 seconds."),
            ("octopost", "401 missing key", 401, "unauthorized", "Invalid or expired API key"),
            ("octopost", "401 revoked", 401, "unauthorized", "Invalid or expired API key"),
            ("octopost", "403 scope", 403, "insufficient_scope", "The API key does not have scope: pages:write."),
            ("octopost", "429 rate", 429, "rate_limit_exceeded", "Rate limit exceeded. Try again in 45 seconds."),
            ("octopost", "429 quota", 429, "quota_exceeded", "Quota exceeded. It resets in 3600 seconds."),
            ("octopost", "503 store", 503, "store_unavailable", "The key store is unavailable. Try again shortly."),
            ("octopost", "402 credits", 402, "credits_exhausted", "This key has no credits left. They are refilled in 60 seconds."),
            (
                "problem",
                "401 missing key",
                401,
                "MISSING_KEY",
                "No API key was sent. Use 'Authorization: Bearer <key>' or 'X-Api-Key: <key>'.",
            ),
            ("problem", "401 revoked", 401, "KEY_REVOKED", "The API key has been revoked."),
            ("problem", "403 scope", 403, "INSUFFICIENT_SCOPE", "The API key does not have scope: pages:write."),
            ("problem", "429 rate", 429, "RATE_LIMIT_EXCEEDED", "Rate limit exceeded. Try again in 45 seconds."),
            ("problem", "429 quota", 429, "QUOTA_EXCEEDED", "Quota exceeded. It resets in 3600 seconds."),
            ("problem", "503 store", 503, "STORE_UNAVAILABLE", "The key store is unavailable. Try again shortly."),
            ("problem", "402 credits", 402, "CREDITS_EXHAUSTED", "This key has no credits left. They are refilled in 60 seconds."),
        ];
        assert_eq!(rows.len(), 4 * representative().len(), "every dialect × every representative refusal");
        for (name, what, status, code, message) in rows {
            let error = representative().into_iter().find(|(w, _)| *w == what).unwrap().1;
            let rendered = dialect(name).render(&error, ID, AT);
            let body = json_of(&rendered);
            let (got_code, got_message) = match name {
                "octopost" => (&body["code"], &body["error"]),
                "problem" => (&body["code"], &body["detail"]),
                _ => (&body["error"]["code"], &body["error"]["message"]),
            };
            assert_eq!((rendered.status, got_code.as_str(), got_message.as_str()), (status, Some(code), Some(message)), "{name} {what}");
            assert_eq!(rendered.www_authenticate, error.www_authenticate(), "{name} {what}: the challenge stays");
        }
    }

    #[test]
    fn each_dialect_has_its_shape() {
        let scope = E::InsufficientScope { missing: vec!["pages:write".into()] };
        let rate = E::RateLimitExceeded { limit: "minute".into(), retry_after: 45 };

        let optimo = dialect("optimo");
        let body = json_of(&optimo.render(&rate, "req_abc123", AT));
        assert_eq!(
            body,
            json!({
                "error": {"code": "RATE_LIMIT_EXCEEDED", "message": "Rate limit exceeded. Try again in 45 seconds.", "details": {"retryAfter": 45}},
                "meta": {"requestId": "req_abc123", "timestamp": AT},
            }),
            "the seed's 429 body exactly"
        );
        let body = json_of(&optimo.render(&E::QuotaExceeded { limit: "daily".into(), retry_after: 60 }, ID, AT));
        assert_eq!(body["error"]["details"], json!({"retryAfter": 60}));
        assert_eq!(json_of(&optimo.render(&scope, ID, AT))["error"]["details"]["requiredScopes"][0], "pages:write");

        let octopost = dialect("octopost").render(&E::KeyExpired, ID, AT);
        assert_eq!(octopost.body, r#"{"error":"Invalid or expired API key","code":"unauthorized"}"#);
        assert_eq!(octopost.content_type, JSON);

        let problem = dialect("problem").render(&scope, ID, AT);
        assert_eq!(problem.content_type, "application/problem+json");
        assert_eq!(
            json_of(&problem),
            json!({
                "type": "about:blank", "title": "Forbidden", "status": 403,
                "detail": "The API key does not have scope: pages:write.", "code": "INSUFFICIENT_SCOPE", "requestId": ID,
            })
        );
        assert_eq!(json_of(&dialect("problem").render(&rate, ID, AT))["title"], "Too Many Requests");
    }

    #[test]
    fn map_overrides_status_code_and_message_in_every_dialect() {
        let map = r#"{"KEY_REVOKED": {"status": 403, "code": "key_gone", "message": "This key was revoked."}, "MISSING_KEY": {"message": "Send X-Api-Key."}}"#;
        for name in ["keygate", "optimo", "octopost", "problem"] {
            let refusals = refusals(&[("ERROR_DIALECT", name), ("ERROR_MAP", map)]).unwrap();
            let revoked = refusals.render(&E::KeyRevoked, ID, AT);
            assert_eq!(revoked.status, 403, "{name}");
            assert!(revoked.body.contains("\"key_gone\"") && revoked.body.contains("This key was revoked."), "{name}: {}", revoked.body);
            assert!(revoked.www_authenticate.unwrap().contains("invalid_token"), "{name}: the challenge stays");
            let missing = refusals.render(&E::MissingKey, ID, AT);
            assert_eq!(missing.status, 401, "{name}: status unchanged when the entry has none");
            assert!(missing.body.contains("Send X-Api-Key."), "{name}: {}", missing.body);
            let other = refusals.render(&E::KeyExpired, ID, AT);
            assert!(!other.body.contains("key_gone"), "{name}: other codes untouched");
        }
        // Optimo derives its public code from the mapped status.
        let optimo = refusals(&[("ERROR_DIALECT", "optimo"), ("ERROR_MAP", r#"{"KEY_REVOKED": {"status": 403}}"#)]).unwrap();
        assert_eq!(json_of(&optimo.render(&E::KeyRevoked, ID, AT))["error"]["code"], "FORBIDDEN");
    }

    #[test]
    fn quota_code_and_test_key_status_are_settings() {
        let quota = E::QuotaExceeded { limit: "daily".into(), retry_after: 10 };
        let as_rate = refusals(&[("QUOTA_CODE", "rate_limit")]).unwrap().render(&quota, ID, AT);
        let body = json_of(&as_rate);
        assert_eq!((as_rate.status, body["error"]["code"].as_str()), (429, Some("RATE_LIMIT_EXCEEDED")));
        assert_eq!(body["error"]["message"], "Rate limit exceeded. Try again in 10 seconds.");
        assert_eq!(body["error"]["details"], json!({"retryAfter": 10, "limit": "daily"}));

        let live_only =
            refusals(&[("TEST_KEY_ON_LIVE_ROUTE", "401"), ("ERROR_DIALECT", "octopost")]).unwrap().render(&E::EnvironmentMismatch, ID, AT);
        assert_eq!(live_only.status, 401);
        assert_eq!(live_only.body, r#"{"error":"Invalid or expired API key","code":"unauthorized"}"#);
        assert!(live_only.www_authenticate.unwrap().contains("error_description=\"ENVIRONMENT_MISMATCH\""), "a 401 always challenges");
        assert_eq!(Refusals::default().render(&E::EnvironmentMismatch, ID, AT).status, 403);
    }

    #[test]
    fn invalid_settings_name_the_setting() {
        let rows: Vec<(&str, &'static str, &[(&str, &str)])> = vec![
            ("unknown dialect", "ERROR_DIALECT", &[("ERROR_DIALECT", "rfc7807")]),
            ("dialect in capitals", "ERROR_DIALECT", &[("ERROR_DIALECT", "Optimo")]),
            ("unknown quota code", "QUOTA_CODE", &[("QUOTA_CODE", "separate")]),
            ("distinct quota under optimo", "QUOTA_CODE", &[("ERROR_DIALECT", "optimo"), ("QUOTA_CODE", "distinct")]),
            ("test key status 404", "TEST_KEY_ON_LIVE_ROUTE", &[("TEST_KEY_ON_LIVE_ROUTE", "404")]),
            ("map not json", "ERROR_MAP", &[("ERROR_MAP", "KEY_REVOKED=401")]),
            ("map of an unknown code", "ERROR_MAP", &[("ERROR_MAP", r#"{"KEY_GONE": {"status": 401}}"#)]),
            ("map of an admin code", "ERROR_MAP", &[("ERROR_MAP", r#"{"VALIDATION_FAILED": {"status": 422}}"#)]),
            ("map entry empty", "ERROR_MAP", &[("ERROR_MAP", r#"{"KEY_REVOKED": {}}"#)]),
            ("map status 200", "ERROR_MAP", &[("ERROR_MAP", r#"{"KEY_REVOKED": {"status": 200}}"#)]),
            ("map unknown field", "ERROR_MAP", &[("ERROR_MAP", r#"{"KEY_REVOKED": {"status": 401, "body": "x"}}"#)]),
            ("map code with a space", "ERROR_MAP", &[("ERROR_MAP", r#"{"KEY_REVOKED": {"code": "key gone"}}"#)]),
            ("map message empty", "ERROR_MAP", &[("ERROR_MAP", r#"{"KEY_REVOKED": {"message": " "}}"#)]),
            ("map message with a newline", "ERROR_MAP", &[("ERROR_MAP", r#"{"KEY_REVOKED": {"message": "a\nb"}}"#)]),
        ];
        for (what, setting, vars) in rows {
            assert_eq!(refusals(vars).unwrap_err().setting, setting, "{what}");
        }
        for good in [
            ("ERROR_DIALECT", "problem"),
            ("QUOTA_CODE", "distinct"),
            ("TEST_KEY_ON_LIVE_ROUTE", "401"),
            ("TEST_KEY_ON_LIVE_ROUTE", "\"403\""),
        ] {
            assert!(refusals(&[good]).is_ok(), "{good:?}");
        }
    }

    #[test]
    fn gateway_codes_are_exactly_the_gateway_refusals() {
        let mut from_variants: Vec<&str> = crate::error::tests::all().iter().filter(|e| is_gateway_refusal(e)).map(|e| e.code()).collect();
        from_variants.sort_unstable();
        from_variants.dedup();
        let mut listed = GATEWAY_CODES.to_vec();
        listed.sort_unstable();
        assert_eq!(listed, from_variants);
    }
}
