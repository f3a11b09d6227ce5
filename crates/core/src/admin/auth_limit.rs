//! Failed admin authentications are limited (pure, clock passed in): per client address and
//! across all addresses, with the limit algorithm of the request path
//! ([`crate::limit::algorithm::decide`]).
//!
//! Invariants:
//! - Only failures are charged: a correct token never spends the budget.
//! - Whether an attempt is throttled is decided before its outcome is looked at, and a
//!   throttled attempt is refused whatever its token, so a throttled client learns nothing
//!   about its guess; a refused attempt charges nothing (as with every limit), so an address
//!   that is already throttled cannot spend the global budget.
//! - Addresses are bucketed: IPv4 per address, IPv6 per /64 (one customer's usual allocation,
//!   inside which an attacker could otherwise rotate for free); anything else, or none, shares
//!   the one `unknown` bucket.

use std::net::IpAddr;

use crate::error::GatewayError;
use crate::limit::algorithm::{decide, Decision, LimitSpec, LimitState};

/// Name of the per-address limit (also `details.scope` of the 429).
pub const ADDRESS: &str = "address";
/// Name of the limit over all addresses.
pub const GLOBAL: &str = "global";
/// The bucket of requests without a usable client address.
pub const UNKNOWN_ADDRESS: &str = "unknown";

/// The configured failure limits (`ADMIN_AUTH_FAILURES_PER_ADDRESS`, `ADMIN_AUTH_FAILURES_GLOBAL`,
/// `ADMIN_AUTH_WINDOW_SECONDS`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminAuthLimits {
    /// Failures one address bucket may make per window.
    pub per_address: u64,
    /// Failures all addresses together may make per window.
    pub global: u64,
    /// Window length in seconds (shorter than a day: a rate limit, GCRA).
    pub window_seconds: u64,
}

impl Default for AdminAuthLimits {
    fn default() -> Self {
        AdminAuthLimits { per_address: 10, global: 1000, window_seconds: 60 }
    }
}

impl AdminAuthLimits {
    /// The two limits in the order their states are kept: `[address, global]`.
    pub fn specs(&self) -> Vec<LimitSpec> {
        vec![LimitSpec::new(ADDRESS, self.per_address, self.window_seconds), LimitSpec::new(GLOBAL, self.global, self.window_seconds)]
    }
}

/// The bucket a client address (the `CF-Connecting-IP` value) is counted in.
pub fn address_bucket(header: Option<&str>) -> String {
    let Some(text) = header.map(str::trim).filter(|t| !t.is_empty() && t.len() <= 64) else {
        return UNKNOWN_ADDRESS.into();
    };
    match text.parse::<IpAddr>() {
        Ok(IpAddr::V4(v4)) => v4.to_string(),
        Ok(IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
        Err(_) => UNKNOWN_ADDRESS.into(),
    }
}

/// Judges one attempt against `specs` (`[address, global]`) whose states are `states`. The
/// attempt is throttled when one more failure would be refused; otherwise a failure is charged
/// (`states` updated) and a success leaves `states` untouched.
pub fn judge(specs: &[LimitSpec], states: &mut Vec<LimitState>, failed: bool, now_ms: i64) -> Decision {
    let mut charged = states.clone();
    let decision = decide(specs, &mut charged, now_ms);
    if decision.allowed && failed {
        *states = charged;
    }
    decision
}

/// `Err(ADMIN_AUTH_THROTTLED)` when `decision` throttles the attempt.
pub fn refusal(decision: &Decision) -> Result<(), GatewayError> {
    if decision.allowed {
        return Ok(());
    }
    let (scope, retry_after) = match decision.refusal() {
        Some(limit) if limit.name == GLOBAL => (GLOBAL, limit.retry_after_seconds),
        Some(limit) => (ADDRESS, limit.retry_after_seconds),
        None => (ADDRESS, 1),
    };
    Err(GatewayError::AdminAuthThrottled { scope, retry_after: retry_after.max(1) })
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 20_833 * 86_400_000;

    fn limits(per_address: u64, global: u64) -> Vec<LimitSpec> {
        AdminAuthLimits { per_address, global, window_seconds: 60 }.specs()
    }

    #[test]
    fn address_buckets() {
        let too_long = "1".repeat(65);
        let rows: [(&str, Option<&str>, &str); 11] = [
            ("ipv4 as is", Some("203.0.113.7"), "203.0.113.7"),
            ("padded", Some(" 203.0.113.7 "), "203.0.113.7"),
            ("ipv6 per /64", Some("2001:db8:1:2:aaaa::1"), "2001:db8:1:2::/64"),
            ("same /64, other host", Some("2001:db8:1:2:ffff:ffff:ffff:ffff"), "2001:db8:1:2::/64"),
            ("other /64", Some("2001:db8:1:3::1"), "2001:db8:1:3::/64"),
            ("ipv4-mapped ipv6 is the ipv4 address", Some("::ffff:203.0.113.7"), "203.0.113.7"),
            ("absent", None, "unknown"),
            ("empty", Some(""), "unknown"),
            ("not an address", Some("evil\"},{\"x"), "unknown"),
            ("two addresses", Some("203.0.113.7, 198.51.100.1"), "unknown"),
            ("too long", Some(too_long.as_str()), "unknown"),
        ];
        for (what, header, bucket) in rows {
            assert_eq!(address_bucket(header), bucket, "{what}");
        }
    }

    #[test]
    fn failures_are_throttled_after_the_limit_and_successes_are_free() {
        let specs = limits(3, 1000);
        let mut states = Vec::new();
        for _ in 0..5 {
            assert!(judge(&specs, &mut states, false, T0).allowed, "a success is never charged");
        }
        for n in 1..=3 {
            assert!(judge(&specs, &mut states, true, T0).allowed, "failure {n} is judged, not throttled");
        }
        let fourth = judge(&specs, &mut states, true, T0);
        let error = refusal(&fourth).unwrap_err();
        assert_eq!(error, GatewayError::AdminAuthThrottled { scope: ADDRESS, retry_after: 20 }, "one failure frees every 60/3 s");
        assert!(!judge(&specs, &mut states, false, T0).allowed, "the right token is throttled too: no oracle");
        assert!(!judge(&specs, &mut states, true, T0 + 19_999).allowed);
        assert!(judge(&specs, &mut states, true, T0 + 20_000).allowed, "one more failure once a slot refills");
        assert!(!judge(&specs, &mut states, true, T0 + 20_000).allowed);
    }

    #[test]
    fn the_global_bound_throttles_every_address_and_throttled_addresses_cannot_spend_it() {
        let specs = limits(2, 4);
        let mut global = LimitState::default();
        let mut attempt = |address_state: &mut LimitState, failed: bool| {
            let mut states = vec![*address_state, global];
            let decision = judge(&specs, &mut states, failed, T0);
            (*address_state, global) = (states[0], states[1]);
            decision
        };
        let mut a = LimitState::default();
        for _ in 0..10 {
            attempt(&mut a, true);
        }
        let mut b = LimitState::default();
        assert!(attempt(&mut b, true).allowed, "a's refused attempts did not spend the global budget");
        assert!(attempt(&mut b, true).allowed);
        let mut c = LimitState::default();
        let refused = attempt(&mut c, false);
        assert_eq!(refusal(&refused).unwrap_err(), GatewayError::AdminAuthThrottled { scope: GLOBAL, retry_after: 15 });
    }
}
