//! Rate-limit response headers (pure).
//!
//! - `RateLimit-Policy` and `RateLimit` in the syntax of draft-ietf-httpapi-ratelimit-headers-10:
//!   one item per limit, named by the limit (never by the key), e.g.
//!   `RateLimit-Policy: "burst";q=50;w=1, "minute";q=600;w=60` and
//!   `RateLimit: "burst";r=49;t=1, "minute";r=594;t=42`.
//! - `X-RateLimit-Limit`, `X-RateLimit-Remaining`, `X-RateLimit-Reset` (unix seconds) for one
//!   limit: the one named by `RATE_LIMIT_HEADER_LIMIT` when the key has it (the OptimoCMS seed
//!   documents its per-minute limit there), else the most restrictive.
//! - `X-Credits-Remaining` for a key with credits only ([`super::credits`]): the balance after
//!   the request (with leases, after the isolate's last grant: a lower bound). A `402` with a
//!   refill adds `Retry-After` to the next refill; without one, none (retrying will not help).

use super::algorithm::{Decision, LimitSpec};
use super::credits::CREDITS;

/// Every header [`render`] can add (lowercase), for CORS to expose to browsers.
pub const NAMES: [&str; 7] = [
    "ratelimit-policy",
    "ratelimit",
    "x-ratelimit-limit",
    "x-ratelimit-remaining",
    "x-ratelimit-reset",
    "retry-after",
    "x-credits-remaining",
];

/// `RateLimit-Policy` value.
pub fn policy(specs: &[LimitSpec]) -> String {
    specs
        .iter()
        .filter(|s| !s.is_credits())
        .map(|s| format!("\"{}\";q={};w={}", s.name, s.limit, s.window_seconds))
        .collect::<Vec<_>>()
        .join(", ")
}

/// All rate-limit headers for a decision made at `now_seconds`; `X-RateLimit-*` describe the
/// limit named `header_limit` when there is one, else the most restrictive.
pub fn render(specs: &[LimitSpec], decision: &Decision, now_seconds: u64, header_limit: Option<&str>) -> Vec<(&'static str, String)> {
    let mut headers = Vec::new();
    if specs.iter().any(|s| !s.is_credits()) {
        let current = decision
            .limits
            .iter()
            .filter(|l| l.name != CREDITS)
            .map(|l| format!("\"{}\";r={};t={}", l.name, l.remaining, l.reset_seconds))
            .collect::<Vec<_>>()
            .join(", ");
        headers.push(("ratelimit-policy", policy(specs)));
        headers.push(("ratelimit", current));
        let described =
            header_limit.and_then(|name| decision.limits.iter().find(|l| l.name == name)).or_else(|| decision.most_restrictive());
        if let Some(limit) = described {
            headers.push(("x-ratelimit-limit", limit.limit.to_string()));
            headers.push(("x-ratelimit-remaining", limit.remaining.to_string()));
            headers.push(("x-ratelimit-reset", (now_seconds + limit.reset_seconds).to_string()));
        }
    }
    let credits = decision.credits();
    if let Some(credits) = credits {
        headers.push(("x-credits-remaining", credits.remaining.to_string()));
    }
    match (credits.filter(|c| c.refused), decision.refusal()) {
        (Some(credits), _) if credits.reset_seconds > 0 => headers.push(("retry-after", credits.reset_seconds.to_string())),
        (Some(_), _) | (None, None) => {}
        (None, Some(refusal)) => headers.push(("retry-after", refusal.retry_after_seconds.to_string())),
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
    fn credits_show_only_their_balance_and_retry_after_only_with_a_refill() {
        use crate::limit::credits::{change, Credits, Interval, Refill, RefillMode};
        let none = Credits::default().spec();
        let refill = Credits { refill: Some(Refill { amount: 5, interval: Interval::Day, mode: RefillMode::Reset }) }.spec();
        let t0 = 20_833 * 86_400_000;
        // (what, specs, balance, expected headers)
        let rows: Vec<(&str, Vec<LimitSpec>, u64, Vec<(&str, &str)>)> = vec![
            ("admitted: the balance after", vec![none.clone()], 3, vec![("x-credits-remaining", "2")]),
            ("refused, no refill: no retry-after", vec![none.clone()], 0, vec![("x-credits-remaining", "0")]),
            ("refused, a refill at midnight", vec![refill.clone()], 0, vec![("x-credits-remaining", "0"), ("retry-after", "86400")]),
            (
                "with a rate limit: its headers without the credits",
                vec![LimitSpec::new("minute", 10, 60), none.clone()],
                1,
                vec![
                    ("ratelimit-policy", "\"minute\";q=10;w=60"),
                    ("ratelimit", "\"minute\";r=9;t=6"),
                    ("x-ratelimit-limit", "10"),
                    ("x-ratelimit-remaining", "9"),
                    ("x-ratelimit-reset", "6"),
                    ("x-credits-remaining", "0"),
                ],
            ),
        ];
        for (what, specs, balance, expected) in rows {
            let at = specs.len() - 1;
            let mut states = vec![Default::default(); specs.len()];
            states[at] = change(&specs[at], states[at], true, balance as i64, t0);
            let decision = decide(&specs, &mut states, t0);
            let headers = render(&specs, &decision, 0, None);
            let expected: Vec<(&str, String)> = expected.into_iter().map(|(n, v)| (n, v.to_string())).collect();
            assert_eq!(headers, expected, "{what}");
            assert!(headers.iter().all(|(name, _)| NAMES.contains(name)), "{what}");
        }
    }

    #[test]
    fn no_limits_no_headers() {
        assert!(render(&[], &decide(&[], &mut Vec::new(), 0), 0, None).is_empty());
    }
}
