//! Rate-limit response headers (pure).
//!
//! - `RateLimit-Policy` and `RateLimit` in the syntax of draft-ietf-httpapi-ratelimit-headers-10:
//!   one item per limit, named by the limit (never by the key), e.g.
//!   `RateLimit-Policy: "burst";q=50;w=1, "minute";q=600;w=60` and
//!   `RateLimit: "burst";r=49;t=1, "minute";r=594;t=42`.
//! - `X-RateLimit-Limit`, `X-RateLimit-Remaining`, `X-RateLimit-Reset` (unix seconds) for one
//!   limit: the one named by `RATE_LIMIT_HEADER_LIMIT` when the key has it (the OptimoCMS seed
//!   documents its per-minute limit there), else the most restrictive.

use super::algorithm::{Decision, LimitSpec};

/// Every header [`render`] can add (lowercase), for CORS to expose to browsers.
pub const NAMES: [&str; 6] =
    ["ratelimit-policy", "ratelimit", "x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset", "retry-after"];

/// `RateLimit-Policy` value.
pub fn policy(specs: &[LimitSpec]) -> String {
    specs.iter().map(|s| format!("\"{}\";q={};w={}", s.name, s.limit, s.window_seconds)).collect::<Vec<_>>().join(", ")
}

/// All rate-limit headers for a decision made at `now_seconds`; `X-RateLimit-*` describe the
/// limit named `header_limit` when there is one, else the most restrictive.
pub fn render(specs: &[LimitSpec], decision: &Decision, now_seconds: u64, header_limit: Option<&str>) -> Vec<(&'static str, String)> {
    if specs.is_empty() {
        return Vec::new();
    }
    let current =
        decision.limits.iter().map(|l| format!("\"{}\";r={};t={}", l.name, l.remaining, l.reset_seconds)).collect::<Vec<_>>().join(", ");
    let mut headers = vec![("ratelimit-policy", policy(specs)), ("ratelimit", current)];
    let described = header_limit.and_then(|name| decision.limits.iter().find(|l| l.name == name)).or_else(|| decision.most_restrictive());
    if let Some(limit) = described {
        headers.push(("x-ratelimit-limit", limit.limit.to_string()));
        headers.push(("x-ratelimit-remaining", limit.remaining.to_string()));
        headers.push(("x-ratelimit-reset", (now_seconds + limit.reset_seconds).to_string()));
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
        vec![LimitSpec::new("burst", 50, 1), LimitSpec::new("minute", 600, 60)]
    }

    #[test]
    fn headers_follow_the_draft_syntax_and_the_seed() {
        let specs = specs();
        let decision = decide(&specs, &mut Vec::new(), 1_000_000);
        let headers = render(&specs, &decision, 1_000, None);
        let get = |name: &str| headers.iter().find(|(n, _)| *n == name).map(|(_, v)| v.clone());
        assert_eq!(get("ratelimit-policy").unwrap(), "\"burst\";q=50;w=1, \"minute\";q=600;w=60");
        assert_eq!(get("ratelimit").unwrap(), "\"burst\";r=49;t=1, \"minute\";r=599;t=1");
        assert_eq!(get("x-ratelimit-limit").unwrap(), "50");
        assert_eq!(get("x-ratelimit-remaining").unwrap(), "49");
        assert_eq!(get("x-ratelimit-reset").unwrap(), "1001");
        assert_eq!(get("retry-after"), None);
    }

    #[test]
    fn a_named_limit_is_described_when_the_key_has_it() {
        let specs = specs();
        let decision = decide(&specs, &mut Vec::new(), 1_000_000);
        let x_headers = |header_limit| {
            let headers = render(&specs, &decision, 1_000, header_limit);
            ["x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset"]
                .map(|name| headers.iter().find(|(n, _)| *n == name).map(|(_, v)| v.clone()).unwrap_or_default())
        };
        // (what, RATE_LIMIT_HEADER_LIMIT, expected X-RateLimit-Limit/Remaining/Reset)
        let rows = [
            ("unset: the most restrictive", None, ["50", "49", "1001"]),
            ("the seed's per-minute limit", Some("minute"), ["600", "599", "1001"]),
            ("a limit the key lacks: the most restrictive", Some("daily"), ["50", "49", "1001"]),
        ];
        for (what, header_limit, expected) in rows {
            assert_eq!(x_headers(header_limit), expected.map(String::from), "{what}");
        }
    }

    #[test]
    fn refusal_adds_retry_after() {
        let specs = vec![LimitSpec::new("minute", 1, 60)];
        let mut states = Vec::new();
        decide(&specs, &mut states, 0);
        let refused = decide(&specs, &mut states, 0);
        let headers = render(&specs, &refused, 0, None);
        assert!(headers.contains(&("retry-after", "60".to_string())));
        assert!(headers.contains(&("x-ratelimit-remaining", "0".to_string())));
        assert!(headers.iter().all(|(name, _)| NAMES.contains(name)), "NAMES lists every rendered header: {headers:?}");
    }

    #[test]
    fn no_limits_no_headers() {
        assert!(render(&[], &decide(&[], &mut Vec::new(), 0), 0, None).is_empty());
    }
}
