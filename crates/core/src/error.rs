//! The one error model: every non-2xx answer keygate itself produces.
//!
//! Each variant knows its HTTP status, stable code, human message and details; `match` is
//! exhaustive, so a new variant forces every mapping to be decided. The JSON body is rendered in
//! one place ([`GatewayError::body`]):
//! `{"error":{"code","message","details"},"meta":{"requestId","timestamp"}}`.

use serde_json::Value;

use crate::json::object;

/// A refusal or failure, with everything needed to answer it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GatewayError {
    /// No credential was sent.
    MissingKey,
    /// The request itself is malformed (conflicting credentials, non-canonical path, …).
    BadRequest {
        /// What is wrong, safe to show the client.
        reason: String,
    },
    /// No route in the table matches method and path.
    RouteNotFound,
    /// `UNMATCHED=auth`: no route matches, under a protected prefix, and the key is otherwise
    /// valid (a key that is not gets its own 401 first).
    RouteNotAllowed,
    /// Malformed, bad checksum, or unknown key.
    InvalidKey {
        /// Format failure reason (`bad_checksum`, …); `None` for a well-formed unknown key.
        reason: Option<&'static str>,
    },
    /// The key was revoked.
    KeyRevoked,
    /// The key is disabled (status `inactive`).
    KeyDisabled,
    /// Before the key's `valid_from`.
    KeyNotYetValid,
    /// After the key's `valid_to`.
    KeyExpired,
    /// The key lacks scopes the route requires.
    InsufficientScope {
        /// The required scopes the key does not cover.
        missing: Vec<String>,
    },
    /// The route's project differs from the key's project.
    ProjectMismatch,
    /// The `Origin` header is not in the key's allowed origins.
    OriginNotAllowed,
    /// The client address (`CF-Connecting-IP`) is missing or outside the key's allowed networks.
    NetworkNotAllowed,
    /// The client's country (`request.cf.country`) is unknown or not in the key's allowed countries.
    CountryNotAllowed,
    /// A test key with no test origin configured.
    EnvironmentMismatch,
    /// KV failed or returned an undecodable record (fail closed).
    StoreUnavailable,
    /// The origin could not be reached.
    OriginUnavailable,
    /// The origin did not answer within `ORIGIN_TIMEOUT_MS`.
    OriginTimeout,
    /// The worker's configuration is invalid (fail closed).
    ConfigInvalid {
        /// Which setting is wrong (never a secret value).
        reason: String,
    },
    /// Admin API: missing or wrong admin token.
    Unauthorized,
    /// Leak reports: the GitHub signature over the report's body is missing or does not verify
    /// (the one admin path authenticated by a signature, not by the admin token).
    ReportUnverified,
    /// Admin API: too many failed authentications from this address (or from everyone); the
    /// answer does not depend on the token.
    AdminAuthThrottled {
        /// Which failure limit refused: `address` or `global`.
        scope: &'static str,
        /// Seconds until an attempt can pass.
        retry_after: u64,
    },
    /// Admin API: unknown key id or admin path.
    NotFound,
    /// Admin API: the body or query failed validation.
    ValidationFailed {
        /// Field name → what is wrong with it.
        fields: std::collections::BTreeMap<String, String>,
    },
    /// Admin API: the change is impossible in the key's current state.
    Conflict {
        /// Why.
        reason: String,
    },
    /// Admin API: body larger than `ADMIN_MAX_BODY_BYTES`.
    PayloadTooLarge {
        /// The configured limit in bytes.
        limit: usize,
    },
    /// Admin API: a body that is not `application/json`.
    UnsupportedMediaType,
    /// A rate limit (window shorter than a day) refused the request.
    RateLimitExceeded {
        /// The refusing limit's name.
        limit: String,
        /// Seconds until a retry can pass.
        retry_after: u64,
    },
    /// A quota (window of a day or more) is spent.
    QuotaExceeded {
        /// The refusing limit's name.
        limit: String,
        /// Seconds until the quota resets.
        retry_after: u64,
    },
    /// The key's credits balance holds less than the route's cost (402: retrying will not
    /// help until credits are added or refilled, unlike a 429).
    CreditsExhausted {
        /// Seconds until the next refill; 0 when the key has no refill.
        retry_after: u64,
    },
}

impl GatewayError {
    /// Whether a newer record of the key could lift this refusal: the admin API may have just
    /// re-enabled it, re-dated it, or changed its role, scopes, allowed origins, networks or
    /// countries, and an `exact`-mode key then asks its limiter once before refusing. Everything
    /// else is final or not about the record: revocation is permanent, a key's env and project
    /// never change, and the rest are decided before or after the record check. Exhaustive, so
    /// a new variant has to say.
    pub fn newer_record_may_lift(&self) -> bool {
        match self {
            GatewayError::KeyDisabled
            | GatewayError::KeyNotYetValid
            | GatewayError::KeyExpired
            | GatewayError::InsufficientScope { .. }
            | GatewayError::OriginNotAllowed
            | GatewayError::NetworkNotAllowed
            | GatewayError::CountryNotAllowed => true,
            GatewayError::MissingKey
            | GatewayError::BadRequest { .. }
            | GatewayError::RouteNotFound
            | GatewayError::RouteNotAllowed
            | GatewayError::InvalidKey { .. }
            | GatewayError::KeyRevoked
            | GatewayError::ProjectMismatch
            | GatewayError::EnvironmentMismatch
            | GatewayError::StoreUnavailable
            | GatewayError::OriginUnavailable
            | GatewayError::OriginTimeout
            | GatewayError::ConfigInvalid { .. }
            | GatewayError::Unauthorized
            | GatewayError::ReportUnverified
            | GatewayError::AdminAuthThrottled { .. }
            | GatewayError::NotFound
            | GatewayError::ValidationFailed { .. }
            | GatewayError::Conflict { .. }
            | GatewayError::PayloadTooLarge { .. }
            | GatewayError::UnsupportedMediaType
            | GatewayError::RateLimitExceeded { .. }
            | GatewayError::QuotaExceeded { .. }
            | GatewayError::CreditsExhausted { .. } => false,
        }
    }

    /// HTTP status.
    pub fn status(&self) -> u16 {
        match self {
            GatewayError::BadRequest { .. } | GatewayError::ValidationFailed { .. } => 400,
            GatewayError::Unauthorized | GatewayError::ReportUnverified => 401,
            GatewayError::NotFound => 404,
            GatewayError::Conflict { .. } => 409,
            GatewayError::PayloadTooLarge { .. } => 413,
            GatewayError::UnsupportedMediaType => 415,
            GatewayError::RateLimitExceeded { .. } | GatewayError::QuotaExceeded { .. } | GatewayError::AdminAuthThrottled { .. } => 429,
            GatewayError::CreditsExhausted { .. } => 402,
            GatewayError::MissingKey
            | GatewayError::InvalidKey { .. }
            | GatewayError::KeyRevoked
            | GatewayError::KeyDisabled
            | GatewayError::KeyNotYetValid
            | GatewayError::KeyExpired => 401,
            GatewayError::InsufficientScope { .. }
            | GatewayError::ProjectMismatch
            | GatewayError::OriginNotAllowed
            | GatewayError::NetworkNotAllowed
            | GatewayError::CountryNotAllowed
            | GatewayError::EnvironmentMismatch => 403,
            GatewayError::RouteNotFound => 404,
            GatewayError::RouteNotAllowed => 403,
            GatewayError::ConfigInvalid { .. } => 500,
            GatewayError::OriginUnavailable => 502,
            GatewayError::OriginTimeout => 504,
            GatewayError::StoreUnavailable => 503,
        }
    }

    /// Stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            GatewayError::MissingKey => "MISSING_KEY",
            GatewayError::BadRequest { .. } => "BAD_REQUEST",
            GatewayError::RouteNotFound => "ROUTE_NOT_FOUND",
            GatewayError::RouteNotAllowed => "ROUTE_NOT_ALLOWED",
            GatewayError::InvalidKey { .. } => "INVALID_KEY",
            GatewayError::KeyRevoked => "KEY_REVOKED",
            GatewayError::KeyDisabled => "KEY_DISABLED",
            GatewayError::KeyNotYetValid => "KEY_NOT_YET_VALID",
            GatewayError::KeyExpired => "KEY_EXPIRED",
            GatewayError::InsufficientScope { .. } => "INSUFFICIENT_SCOPE",
            GatewayError::ProjectMismatch => "PROJECT_MISMATCH",
            GatewayError::OriginNotAllowed => "ORIGIN_NOT_ALLOWED",
            GatewayError::NetworkNotAllowed => "NETWORK_NOT_ALLOWED",
            GatewayError::CountryNotAllowed => "COUNTRY_NOT_ALLOWED",
            GatewayError::EnvironmentMismatch => "ENVIRONMENT_MISMATCH",
            GatewayError::StoreUnavailable => "STORE_UNAVAILABLE",
            GatewayError::OriginUnavailable => "ORIGIN_UNAVAILABLE",
            GatewayError::OriginTimeout => "ORIGIN_TIMEOUT",
            GatewayError::ConfigInvalid { .. } => "CONFIG_INVALID",
            GatewayError::Unauthorized => "UNAUTHORIZED",
            GatewayError::ReportUnverified => "REPORT_SIGNATURE_INVALID",
            GatewayError::AdminAuthThrottled { .. } => "ADMIN_AUTH_THROTTLED",
            GatewayError::NotFound => "NOT_FOUND",
            GatewayError::ValidationFailed { .. } => "VALIDATION_FAILED",
            GatewayError::Conflict { .. } => "CONFLICT",
            GatewayError::PayloadTooLarge { .. } => "PAYLOAD_TOO_LARGE",
            GatewayError::UnsupportedMediaType => "UNSUPPORTED_MEDIA_TYPE",
            GatewayError::RateLimitExceeded { .. } => "RATE_LIMIT_EXCEEDED",
            GatewayError::QuotaExceeded { .. } => "QUOTA_EXCEEDED",
            GatewayError::CreditsExhausted { .. } => "CREDITS_EXHAUSTED",
        }
    }

    /// Human-readable message.
    pub fn message(&self) -> String {
        match self {
            GatewayError::MissingKey => "No API key was sent. Use 'Authorization: Bearer <key>' or 'X-Api-Key: <key>'.".into(),
            GatewayError::BadRequest { reason } => format!("Bad request: {reason}."),
            GatewayError::RouteNotFound => "No route matches this method and path.".into(),
            GatewayError::RouteNotAllowed => "This API key may not use this method and path.".into(),
            GatewayError::InvalidKey { .. } => "The API key is invalid.".into(),
            GatewayError::KeyRevoked => "The API key has been revoked.".into(),
            GatewayError::KeyDisabled => "The API key is disabled.".into(),
            GatewayError::KeyNotYetValid => "The API key is not valid yet.".into(),
            GatewayError::KeyExpired => "The API key has expired.".into(),
            GatewayError::InsufficientScope { missing } => {
                format!("The API key does not have scope: {}.", missing.join(", "))
            }
            GatewayError::ProjectMismatch => "The API key belongs to another project.".into(),
            GatewayError::OriginNotAllowed => "The request's Origin is not allowed for this API key.".into(),
            GatewayError::NetworkNotAllowed => "This API key may not be used from this network.".into(),
            GatewayError::CountryNotAllowed => "This API key may not be used from this country.".into(),
            GatewayError::EnvironmentMismatch => "This environment's API keys cannot be used here: no origin is configured for it.".into(),
            GatewayError::StoreUnavailable => "The key store is unavailable. Try again shortly.".into(),
            GatewayError::OriginUnavailable => "The origin could not be reached.".into(),
            GatewayError::OriginTimeout => "The origin did not answer in time.".into(),
            GatewayError::ConfigInvalid { .. } => "The gateway is misconfigured.".into(),
            GatewayError::Unauthorized => "A valid admin token is required in 'Authorization: Bearer <token>' (never in the URL).".into(),
            GatewayError::ReportUnverified => {
                "The report's signature does not verify: Github-Public-Key-Signature over the raw body, with the key Github-Public-Key-Identifier names.".into()
            }
            GatewayError::AdminAuthThrottled { retry_after, .. } => {
                format!("Too many failed admin authentications. Try again in {retry_after} seconds.")
            }
            GatewayError::NotFound => "Not found.".into(),
            GatewayError::ValidationFailed { fields } => {
                let names: Vec<&str> = fields.keys().map(String::as_str).collect();
                format!("Validation failed: {}.", names.join(", "))
            }
            GatewayError::Conflict { reason } => format!("Conflict: {reason}."),
            GatewayError::PayloadTooLarge { limit } => format!("The request body exceeds {limit} bytes."),
            GatewayError::UnsupportedMediaType => "The request body must be application/json.".into(),
            GatewayError::RateLimitExceeded { retry_after, .. } => {
                format!("Rate limit exceeded. Try again in {retry_after} seconds.")
            }
            GatewayError::QuotaExceeded { retry_after, .. } => {
                format!("Quota exceeded. It resets in {retry_after} seconds.")
            }
            GatewayError::CreditsExhausted { retry_after: 0 } => "This key has no credits left.".into(),
            GatewayError::CreditsExhausted { retry_after } => {
                format!("This key has no credits left. They are refilled in {retry_after} seconds.")
            }
        }
    }

    /// Structured details (`{}` when there are none).
    ///
    /// Built as values (`json::object`), not with `json!`: `json!` serializes each member with
    /// `to_value`, a second serializer in the wasm beside the one that writes JSON text.
    pub fn details(&self) -> Value {
        match self {
            GatewayError::BadRequest { reason } => object([("reason", reason.as_str().into())]),
            GatewayError::InvalidKey { reason: Some(reason) } => object([("reason", (*reason).into())]),
            GatewayError::InsufficientScope { missing } => object([("requiredScopes", missing.as_slice().into())]),
            GatewayError::ConfigInvalid { reason } | GatewayError::Conflict { reason } => object([("reason", reason.as_str().into())]),
            GatewayError::ValidationFailed { fields } => {
                let mut map = serde_json::Map::new();
                for (field, problem) in fields {
                    map.insert(field.clone(), problem.as_str().into());
                }
                object([("fields", Value::Object(map))])
            }
            GatewayError::PayloadTooLarge { limit } => object([("limitBytes", (*limit).into())]),
            GatewayError::AdminAuthThrottled { scope, retry_after } => {
                object([("retryAfter", (*retry_after).into()), ("scope", (*scope).into())])
            }
            GatewayError::RateLimitExceeded { limit, retry_after } | GatewayError::QuotaExceeded { limit, retry_after } => {
                object([("retryAfter", (*retry_after).into()), ("limit", limit.as_str().into())])
            }
            GatewayError::CreditsExhausted { retry_after: 0 } => object([]),
            GatewayError::CreditsExhausted { retry_after } => object([("retryAfter", (*retry_after).into())]),
            GatewayError::MissingKey
            | GatewayError::RouteNotFound
            | GatewayError::RouteNotAllowed
            | GatewayError::InvalidKey { reason: None }
            | GatewayError::KeyRevoked
            | GatewayError::KeyDisabled
            | GatewayError::KeyNotYetValid
            | GatewayError::KeyExpired
            | GatewayError::ProjectMismatch
            | GatewayError::OriginNotAllowed
            | GatewayError::NetworkNotAllowed
            | GatewayError::CountryNotAllowed
            | GatewayError::EnvironmentMismatch
            | GatewayError::StoreUnavailable
            | GatewayError::OriginUnavailable
            | GatewayError::OriginTimeout
            | GatewayError::Unauthorized
            | GatewayError::ReportUnverified
            | GatewayError::NotFound
            | GatewayError::UnsupportedMediaType => object([]),
        }
    }

    /// `Retry-After` seconds for refusals that carry no rate-limit headers of their own.
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            GatewayError::AdminAuthThrottled { retry_after, .. } => Some(*retry_after),
            _ => None,
        }
    }

    /// `WWW-Authenticate` value (RFC 6750) for 401s and scope refusals; `None` otherwise.
    pub fn www_authenticate(&self) -> Option<String> {
        const REALM: &str = "Bearer realm=\"keygate\"";
        match self {
            // RFC 6750 §3.1: no error code when the request carried no credential at all.
            GatewayError::MissingKey => Some(REALM.to_string()),
            GatewayError::Unauthorized => Some("Bearer realm=\"keygate-admin\"".to_string()),
            // A 401 always challenges (RFC 9110 §15.5.2), but this one is not about a bearer
            // credential: the report is authenticated by GitHub's signature over its body.
            GatewayError::ReportUnverified => Some("GitHub-Signature realm=\"keygate-leak-reports\"".to_string()),
            GatewayError::InsufficientScope { missing } => {
                Some(format!("{REALM}, error=\"insufficient_scope\", scope=\"{}\"", missing.join(" ")))
            }
            other if other.status() == 401 => Some(format!("{REALM}, error=\"invalid_token\", error_description=\"{}\"", other.code())),
            _ => None,
        }
    }

    /// The JSON body, with request id and RFC 3339 timestamp.
    pub fn body(&self, request_id: &str, timestamp: &str) -> String {
        let error = object([("code", self.code().into()), ("message", self.message().into()), ("details", self.details())]);
        object([("error", error), ("meta", object([("requestId", request_id.into()), ("timestamp", timestamp.into())]))]).to_string()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use serde_json::json;

    pub(crate) fn all() -> Vec<GatewayError> {
        vec![
            GatewayError::MissingKey,
            GatewayError::BadRequest { reason: "x".into() },
            GatewayError::RouteNotFound,
            GatewayError::RouteNotAllowed,
            GatewayError::InvalidKey { reason: Some("bad_checksum") },
            GatewayError::InvalidKey { reason: None },
            GatewayError::KeyRevoked,
            GatewayError::KeyDisabled,
            GatewayError::KeyNotYetValid,
            GatewayError::KeyExpired,
            GatewayError::InsufficientScope { missing: vec!["content:write".into()] },
            GatewayError::ProjectMismatch,
            GatewayError::OriginNotAllowed,
            GatewayError::NetworkNotAllowed,
            GatewayError::CountryNotAllowed,
            GatewayError::EnvironmentMismatch,
            GatewayError::StoreUnavailable,
            GatewayError::OriginUnavailable,
            GatewayError::OriginTimeout,
            GatewayError::ConfigInvalid { reason: "ROUTES".into() },
            GatewayError::Unauthorized,
            GatewayError::ReportUnverified,
            GatewayError::AdminAuthThrottled { scope: "address", retry_after: 6 },
            GatewayError::NotFound,
            GatewayError::ValidationFailed { fields: [("name".to_string(), "required".to_string())].into() },
            GatewayError::Conflict { reason: "revoked".into() },
            GatewayError::PayloadTooLarge { limit: 10 },
            GatewayError::UnsupportedMediaType,
            GatewayError::RateLimitExceeded { limit: "minute".into(), retry_after: 45 },
            GatewayError::QuotaExceeded { limit: "daily".into(), retry_after: 3600 },
            GatewayError::CreditsExhausted { retry_after: 0 },
        ]
    }

    #[test]
    fn only_refusals_a_record_change_can_lift_ask_for_a_newer_record() {
        let liftable: Vec<&str> = all().iter().filter(|e| e.newer_record_may_lift()).map(GatewayError::code).collect();
        assert_eq!(
            liftable,
            [
                "KEY_DISABLED",
                "KEY_NOT_YET_VALID",
                "KEY_EXPIRED",
                "INSUFFICIENT_SCOPE",
                "ORIGIN_NOT_ALLOWED",
                "NETWORK_NOT_ALLOWED",
                "COUNTRY_NOT_ALLOWED"
            ]
        );
    }

    #[test]
    fn status_and_code_table() {
        let expected = [
            (401, "MISSING_KEY"),
            (400, "BAD_REQUEST"),
            (404, "ROUTE_NOT_FOUND"),
            (403, "ROUTE_NOT_ALLOWED"),
            (401, "INVALID_KEY"),
            (401, "INVALID_KEY"),
            (401, "KEY_REVOKED"),
            (401, "KEY_DISABLED"),
            (401, "KEY_NOT_YET_VALID"),
            (401, "KEY_EXPIRED"),
            (403, "INSUFFICIENT_SCOPE"),
            (403, "PROJECT_MISMATCH"),
            (403, "ORIGIN_NOT_ALLOWED"),
            (403, "NETWORK_NOT_ALLOWED"),
            (403, "COUNTRY_NOT_ALLOWED"),
            (403, "ENVIRONMENT_MISMATCH"),
            (503, "STORE_UNAVAILABLE"),
            (502, "ORIGIN_UNAVAILABLE"),
            (504, "ORIGIN_TIMEOUT"),
            (500, "CONFIG_INVALID"),
            (401, "UNAUTHORIZED"),
            (401, "REPORT_SIGNATURE_INVALID"),
            (429, "ADMIN_AUTH_THROTTLED"),
            (404, "NOT_FOUND"),
            (400, "VALIDATION_FAILED"),
            (409, "CONFLICT"),
            (413, "PAYLOAD_TOO_LARGE"),
            (415, "UNSUPPORTED_MEDIA_TYPE"),
            (429, "RATE_LIMIT_EXCEEDED"),
            (429, "QUOTA_EXCEEDED"),
            (402, "CREDITS_EXHAUSTED"),
        ];
        assert_eq!(all().len(), expected.len());
        for (error, (status, code)) in all().iter().zip(expected) {
            assert_eq!((error.status(), error.code()), (status, code), "{error:?}");
        }
    }

    #[test]
    fn body_has_the_documented_shape() {
        for error in all() {
            let body: Value = serde_json::from_str(&error.body("req_1", "2026-01-01T00:00:00Z")).unwrap();
            assert_eq!(body["error"]["code"], error.code());
            assert!(!body["error"]["message"].as_str().unwrap().is_empty());
            assert!(body["error"]["details"].is_object());
            assert_eq!(body["meta"]["requestId"], "req_1");
            assert_eq!(body["meta"]["timestamp"], "2026-01-01T00:00:00Z");
        }
    }

    #[test]
    fn every_401_carries_a_bearer_challenge() {
        for error in all() {
            let challenge = error.www_authenticate();
            if error == GatewayError::ReportUnverified {
                assert_eq!(challenge.as_deref(), Some("GitHub-Signature realm=\"keygate-leak-reports\""), "not a bearer credential");
            } else if error.status() == 401 {
                assert!(challenge.unwrap().starts_with("Bearer realm=\"keygate"), "{error:?}");
            }
        }
        assert_eq!(GatewayError::MissingKey.www_authenticate().unwrap(), "Bearer realm=\"keygate\"");
        assert!(GatewayError::KeyExpired.www_authenticate().unwrap().contains("invalid_token"));
        assert!(GatewayError::RouteNotFound.www_authenticate().is_none());
    }

    #[test]
    fn rate_limit_body_matches_the_seed() {
        let error = GatewayError::RateLimitExceeded { limit: "minute".into(), retry_after: 45 };
        let body: Value = serde_json::from_str(&error.body("req_abc123", "2026-05-26T12:00:00Z")).unwrap();
        assert_eq!(body["error"]["message"], "Rate limit exceeded. Try again in 45 seconds.");
        assert_eq!(body["error"]["details"], json!({"retryAfter": 45, "limit": "minute"}));
    }

    #[test]
    fn scope_refusal_names_the_missing_scope() {
        let error = GatewayError::InsufficientScope { missing: vec!["content:write".into()] };
        assert!(error.message().contains("content:write"));
        assert_eq!(error.details()["requiredScopes"][0], "content:write");
        assert!(error.www_authenticate().unwrap().contains("insufficient_scope"));
    }
}
