//! Rate-limit response headers (pure).
//!
//! - `RateLimit-Policy` and `RateLimit` in the syntax of draft-ietf-httpapi-ratelimit-headers-10:
//!   one item per limit, named by the limit (never by the key), e.g.
//!   `RateLimit-Policy: "burst";q=50;w=1, "minute";q=600;w=60` and
//!   `RateLimit: "burst";r=49;t=1, "minute";r=594;t=42`.
//! - `X-RateLimit-Limit`, `X-RateLimit-Remaining`, `X-RateLimit-Reset` (unix seconds) for the
//!   most restrictive limit, as the OptimoCMS seed documents.

use super::algorithm::{Decision, LimitSpec};

/// Every header [`render`] can add (lowercase), for CORS to expose to browsers.
pub const NAMES: [&str; 6] = ["ratelimit-policy", "ratelimit", "x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset", "retry-after"];

/// `RateLimit-Policy` value.
pub fn policy(specs: &[LimitSpec]) -> String {
    specs.iter().map(|s| format!("\"{}\";q={};w={}", s.name, s.limit, s.window_seconds)).collect::<Vec<_>>().join(", ")
}

/// All rate-limit headers for a decision made at `now_seconds`.
pub fn render(specs: &[LimitSpec], decision: &Decision, now_seconds: u64) -> Vec<(&'static str, String)> {
    if specs.is_empty() {
        return Vec::new();
    }
    let current = decision
        .limits
        .iter()
        .map(|l| format!("\"{}\";r={};t={}", l.name, l.remaining, l.reset_seconds))
        .collect::<Vec<_>>()
        .join(", ");
    let mut headers = vec![("ratelimit-policy", policy(specs)), ("ratelimit", current)];
    if let Some(tightest) = decision.most_restrictive() {
        headers.push(("x-ratelimit-limit", tightest.limit.to_string()));
        headers.push(("x-ratelimit-remaining", tightest.remaining.to_string()));
        headers.push(("x-ratelimit-reset", (now_seconds + tightest.reset_seconds).to_string()));
    }
    if let Some(refusal) = decision.refusal() {
        headers.push(("retry-after", refusal.retry_after_seconds.to_string()));
    }
    headers
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limit::algorithm::decide;

    fn specs() -> Vec<LimitSpec> {
        vec![
            LimitSpec { name: "burst".into(), limit: 50, window_seconds: 1 },
            LimitSpec { name: "minute".into(), limit: 600, window_seconds: 60 },
        ]
    }

    #[test]
    fn headers_follow_the_draft_syntax_and_the_seed() {
        let specs = specs();
        let decision = decide(&specs, &mut Vec::new(), 1_000_000);
        let headers = render(&specs, &decision, 1_000);
        let get = |name: &str| headers.iter().find(|(n, _)| *n == name).map(|(_, v)| v.clone());
        assert_eq!(get("ratelimit-policy").unwrap(), "\"burst\";q=50;w=1, \"minute\";q=600;w=60");
        assert_eq!(get("ratelimit").unwrap(), "\"burst\";r=49;t=1, \"minute\";r=599;t=1");
        assert_eq!(get("x-ratelimit-limit").unwrap(), "50");
        assert_eq!(get("x-ratelimit-remaining").unwrap(), "49");
        assert_eq!(get("x-ratelimit-reset").unwrap(), "1001");
        assert_eq!(get("retry-after"), None);
    }

    #[test]
    fn refusal_adds_retry_after() {
        let specs = vec![LimitSpec { name: "minute".into(), limit: 1, window_seconds: 60 }];
        let mut states = Vec::new();
        decide(&specs, &mut states, 0);
        let refused = decide(&specs, &mut states, 0);
        let headers = render(&specs, &refused, 0);
        assert!(headers.contains(&("retry-after", "60".to_string())));
        assert!(headers.contains(&("x-ratelimit-remaining", "0".to_string())));
        assert!(headers.iter().all(|(name, _)| NAMES.contains(name)), "NAMES lists every rendered header: {headers:?}");
    }

    #[test]
    fn no_limits_no_headers() {
        assert!(render(&[], &decide(&[], &mut Vec::new(), 0), 0).is_empty());
    }
}
