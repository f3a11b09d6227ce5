//! CORS: answering preflights from config without a key, and labelling real responses.
//!
//! An `OPTIONS` request with `Access-Control-Request-Method` is a preflight: browsers send it
//! without credentials, so keygate answers it itself (204) and never forwards it. Only origins
//! in `CORS_ALLOWED_ORIGINS` (or any, with `*`) get `Access-Control-Allow-*` headers; others
//! get a bare 204, which the browser treats as a refusal.

use crate::config::CorsConfig;

/// `Access-Control-Allow-Origin` value for `origin`, if allowed.
pub fn allow_origin(cors: &CorsConfig, origin: Option<&str>) -> Option<String> {
    let origin = origin?;
    if cors.allowed_origins.iter().any(|a| a == "*") {
        return Some("*".into());
    }
    cors.allowed_origins.iter().any(|a| a.eq_ignore_ascii_case(origin)).then(|| origin.to_string())
}

/// Headers for a preflight answer (status 204).
pub fn preflight_headers(cors: &CorsConfig, origin: Option<&str>) -> Vec<(&'static str, String)> {
    let mut headers = vec![("vary", "Origin".to_string())];
    if let Some(allowed) = allow_origin(cors, origin) {
        headers.push(("access-control-allow-origin", allowed));
        headers.push(("access-control-allow-methods", cors.allowed_methods.clone()));
        headers.push(("access-control-allow-headers", cors.allowed_headers.clone()));
        headers.push(("access-control-max-age", cors.max_age_seconds.to_string()));
    }
    headers
}

/// Headers added to a real (non-preflight) response when the origin is allowed.
pub fn response_headers(cors: &CorsConfig, origin: Option<&str>) -> Vec<(&'static str, String)> {
    match allow_origin(cors, origin) {
        Some(allowed) => vec![
            ("access-control-allow-origin", allowed),
            (
                "access-control-expose-headers",
                "x-request-id, www-authenticate, retry-after, ratelimit, ratelimit-policy, x-ratelimit-limit, \
                 x-ratelimit-remaining, x-ratelimit-reset, x-credits-remaining"
                    .to_string(),
            ),
            ("vary", "Origin".to_string()),
        ],
        None => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cors(origins: &[&str]) -> CorsConfig {
        CorsConfig {
            allowed_origins: origins.iter().map(|s| s.to_string()).collect(),
            allowed_methods: "GET, HEAD".into(),
            allowed_headers: "authorization, x-api-key".into(),
            max_age_seconds: 600,
        }
    }

    #[test]
    fn allow_origin_table() {
        let rows = [
            ("listed", &["https://a.example"][..], Some("https://a.example"), Some("https://a.example")),
            ("not listed", &["https://a.example"][..], Some("https://b.example"), None),
            ("any", &["*"][..], Some("https://b.example"), Some("*")),
            ("no origin header", &["*"][..], None, None),
            ("cors disabled", &[][..], Some("https://a.example"), None),
        ];
        for (what, list, origin, expected) in rows {
            assert_eq!(allow_origin(&cors(list), origin).as_deref(), expected, "{what}");
        }
    }

    #[test]
    fn preflight_for_allowed_origin_announces_methods_and_headers() {
        let headers = preflight_headers(&cors(&["https://a.example"]), Some("https://a.example"));
        let get = |name: &str| headers.iter().find(|(n, _)| *n == name).map(|(_, v)| v.as_str());
        assert_eq!(get("access-control-allow-origin"), Some("https://a.example"));
        assert_eq!(get("access-control-allow-headers"), Some("authorization, x-api-key"));
        assert_eq!(get("access-control-max-age"), Some("600"));
        let refused = preflight_headers(&cors(&["https://a.example"]), Some("https://evil.example"));
        assert!(refused.iter().all(|(n, _)| !n.starts_with("access-control")));
    }

    #[test]
    fn allowed_browsers_can_read_request_id_challenge_and_every_rate_limit_header() {
        let headers = response_headers(&cors(&["https://a.example"]), Some("https://a.example"));
        let exposed = headers.iter().find(|(n, _)| *n == "access-control-expose-headers").map(|(_, v)| v.as_str()).unwrap_or("");
        let exposed: Vec<&str> = exposed.split(',').map(str::trim).collect();
        let names = crate::limit::headers::NAMES;
        for name in ["x-request-id", "www-authenticate"].iter().chain(names.iter()) {
            assert!(exposed.contains(name), "{name} is not exposed: {exposed:?}");
        }
        assert!(response_headers(&cors(&["https://a.example"]), Some("https://evil.example")).is_empty());
    }
}
