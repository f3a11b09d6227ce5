//! Limiter math (pure, clock passed in): decides one request against all of a key's limits.
//!
//! Each limit runs one of two algorithms ([`Algorithm`]), derived from its window length once,
//! when the spec is made or decoded ([`Algorithm::for_window`]), and held in the spec; the JSON
//! of a spec stays `{name, limit, window_seconds}`:
//! - **GCRA** (generic cell rate algorithm, as in `governor` or redis-cell) for rate limits
//!   (windows shorter than a day). "N per W" admits a burst of exactly N, then one request every
//!   W/N as capacity refills: N concurrent clients on a fresh key get exactly N successes, the
//!   sustained rate never exceeds N/W, and over any span of length L at most N + L·N/W requests
//!   pass (so at most 2N−1 within one W right after a full burst — use a separate short `burst`
//!   limit to bound spikes, as the shipped tiers do). State is whole microseconds, so when W/N
//!   is not a whole number of µs the refill interval is rounded *up* (the sustained rate stays
//!   at or under N/W); validation refuses more than one request per µs of W (decide() also caps
//!   it there, for specs that skipped validation). Compared with a sliding log
//!   (exact per window but N timestamps of state) it keeps one number per limit, the
//!   theoretical arrival time, so the Durable Object stores and persists almost nothing;
//!   compared with fixed windows it has no 2N spike at each window boundary.
//! - **Fixed calendar windows** for quotas (windows of a day or more): "5,000 per day" is a
//!   budget that resets at a known instant (UTC midnight for 86400 s), which is what a daily
//!   maximum promises and what `X-RateLimit-Reset` can state truthfully.
//!
//! A request is admitted only if every limit admits it, and then all of them are charged
//! together; a refused request charges none (quota is never spent on a refusal). Every decision
//! about one limit goes through one `match` on its algorithm (`LimitSpec::evaluate`); fast
//! mode's memory asks [`LimitSpec::idle_from`], the only other one.

use serde::{Deserialize, Serialize};

use super::credits::{self, CREDITS};

/// Windows at least this long are quotas (fixed windows, `QUOTA_EXCEEDED`).
pub const QUOTA_WINDOW_SECONDS: u64 = 86_400;
/// Longest window a limit may have: 31 days.
pub const MAX_WINDOW_SECONDS: u64 = 31 * 86_400;

/// How a limit counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// A rate: GCRA, a burst of N then one request every W/N (`RATE_LIMIT_EXCEEDED`).
    Gcra,
    /// A quota: a fixed calendar window that resets at a known instant (`QUOTA_EXCEEDED`).
    CalendarQuota,
    /// A credits balance ([`super::credits`]): the limit named [`CREDITS`], spending a request's
    /// cost (`CREDITS_EXHAUSTED`).
    Credits,
}

impl Algorithm {
    /// The algorithm of a limit with this window: a quota from [`QUOTA_WINDOW_SECONDS`] on, a
    /// rate below.
    pub fn for_window(window_seconds: u64) -> Algorithm {
        if window_seconds >= QUOTA_WINDOW_SECONDS {
            Algorithm::CalendarQuota
        } else {
            Algorithm::Gcra
        }
    }
}

/// One limit as configured: at most `limit` requests per `window_seconds`, counted by the
/// [`Algorithm`] its window implies. Made with [`LimitSpec::new`] or decoded from
/// `{"name", "limit", "window_seconds"}`; both derive the algorithm, so the fields are read-only
/// in practice (a spec with another window is a new spec).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "LimitSpecFields")]
pub struct LimitSpec {
    /// Name used in headers and errors (`burst`, `minute`, `daily`).
    pub name: String,
    /// Requests allowed per window (≥ 1).
    pub limit: u64,
    /// Window length in seconds (≥ 1).
    pub window_seconds: u64,
    /// Derived from `window_seconds`; not part of the JSON.
    #[serde(skip)]
    algorithm: Algorithm,
}

/// The JSON of a [`LimitSpec`]: its fields without the derived algorithm (named `LimitSpec` so
/// decoding errors read as before).
#[derive(Deserialize)]
#[serde(rename = "LimitSpec", deny_unknown_fields)]
struct LimitSpecFields {
    name: String,
    limit: u64,
    window_seconds: u64,
}

impl From<LimitSpecFields> for LimitSpec {
    fn from(fields: LimitSpecFields) -> LimitSpec {
        LimitSpec::new(fields.name, fields.limit, fields.window_seconds)
    }
}

impl LimitSpec {
    /// At most `limit` requests per `window_seconds`, named `name` (unchecked: see
    /// [`LimitSpec::validate`]).
    pub fn new(name: impl Into<String>, limit: u64, window_seconds: u64) -> LimitSpec {
        let name = name.into();
        let algorithm = if name == CREDITS { Algorithm::Credits } else { Algorithm::for_window(window_seconds) };
        LimitSpec { name, limit, window_seconds, algorithm }
    }

    /// How this limit counts.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// Whether this limit is a quota (fixed window) rather than a rate (GCRA).
    pub fn is_quota(&self) -> bool {
        self.algorithm == Algorithm::CalendarQuota
    }

    /// Checks the spec's own ranges; `Err` names the problem.
    pub fn validate(&self) -> Result<(), String> {
        let name_ok = (1..=32).contains(&self.name.len())
            && self.name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
        if !name_ok {
            return Err(format!("limit name {:?} must be 1-32 chars of a-z, 0-9, _ or -", self.name));
        }
        if !(1..=1_000_000_000).contains(&self.limit) {
            return Err(format!("limit {:?}: limit must be 1..1000000000", self.name));
        }
        if !(1..=MAX_WINDOW_SECONDS).contains(&self.window_seconds) {
            return Err(format!("limit {:?}: window_seconds must be 1..2678400", self.name));
        }
        Ok(())
    }

    /// What a new limit must also meet: a rate is held to the microsecond, so more than one
    /// request per µs of its window could not be held as stated (the headers would advertise
    /// more than is admitted). Stored records are not held to this (they keep decoding, and
    /// [`decide`] caps such a rate), so a rule added later never locks out an existing key.
    pub fn validate_new(&self) -> Result<(), String> {
        self.validate()?;
        let most = self.window_seconds.saturating_mul(1_000_000);
        if !self.is_quota() && self.limit > most {
            return Err(format!(
                "limit {:?}: a rate of more than 1000000 per second cannot be held exactly; use at most {most} per {} s",
                self.name, self.window_seconds
            ));
        }
        Ok(())
    }

    /// Whether this limit is the credits balance ([`super::credits`]).
    pub fn is_credits(&self) -> bool {
        self.algorithm == Algorithm::Credits
    }

    /// This limit at `now`: its status and its state after a request of `cost` credits (charged
    /// only when `charge` is set and it admits; rates and quotas count one per request). The one
    /// place the algorithm is dispatched on.
    fn evaluate(&self, state: LimitState, now_ms: i64, charge: bool, cost: u64) -> (LimitStatus, LimitState) {
        let standing = match self.algorithm {
            Algorithm::Gcra => gcra(self, state, now_ms, charge),
            Algorithm::CalendarQuota => calendar_quota(self, state, now_ms, charge),
            Algorithm::Credits => credit_balance(self, state, now_ms, charge, cost),
        };
        let status = LimitStatus {
            name: self.name.clone(),
            limit: self.limit,
            window_seconds: self.window_seconds,
            remaining: if self.is_credits() { standing.remaining } else { standing.remaining.min(self.limit) },
            reset_seconds: standing.reset_seconds,
            refused: standing.wait_ms.is_some(),
            retry_after_seconds: standing.wait_ms.map_or(0, |ms| ceil_div(ms, 1000).max(1)),
            retry_after_ms: standing.wait_ms.map_or(0, |ms| ms.max(1) as u64),
            quota: self.is_quota(),
        };
        (status, standing.state)
    }

    /// The unix ms from which `state` decides exactly like fresh state: a rate's theoretical
    /// arrival time (µs, rounded up to ms), or the end of the window of a quota that has counted.
    pub fn idle_from(&self, state: &LimitState) -> i64 {
        match self.algorithm {
            Algorithm::Gcra => state.mark.saturating_add(999) / 1000,
            Algorithm::CalendarQuota if state.count == 0 => i64::MIN,
            Algorithm::CalendarQuota => state.mark.saturating_add(self.window_seconds as i64 * 1000),
            Algorithm::Credits => i64::MAX,
        }
    }
}

/// Validates a whole stored list: each spec, unique names, at most 8.
pub fn validate_specs(specs: &[LimitSpec]) -> Result<(), String> {
    validate_list(specs, LimitSpec::validate)
}

/// Validates a whole list about to be configured or stored: [`validate_specs`] plus
/// [`LimitSpec::validate_new`] for each spec.
pub fn validate_new_specs(specs: &[LimitSpec]) -> Result<(), String> {
    validate_list(specs, LimitSpec::validate_new)
}

fn validate_list(specs: &[LimitSpec], check: fn(&LimitSpec) -> Result<(), String>) -> Result<(), String> {
    if specs.len() > 8 {
        return Err("at most 8 limits".into());
    }
    for (i, spec) in specs.iter().enumerate() {
        check(spec)?;
        if specs[..i].iter().any(|s| s.name == spec.name) {
            return Err(format!("limit name {:?} is used twice", spec.name));
        }
    }
    Ok(())
}

/// Stored state of one limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct LimitState {
    /// GCRA: theoretical arrival time, unix microseconds. Fixed: window start, unix millis.
    pub mark: i64,
    /// Fixed window: requests counted in the window starting at `mark`.
    pub count: u64,
}

/// How one limit stands after a decision. On the wire (a limiter's answer) as its name, its
/// numbers in one string in field order (`refused` 0 or 1) and `quota`, like a lease's
/// [`Grant`](crate::limit::lease::Grant): a struct's decoder is ~2.7 KB of wasm, a triple's a
/// fraction of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "LimitStatusWire", into = "LimitStatusWire")]
pub struct LimitStatus {
    pub name: String,
    pub limit: u64,
    pub window_seconds: u64,
    /// Requests still allowed now.
    pub remaining: u64,
    /// Seconds until the limit is fully available again (rate) or resets (quota), rounded up.
    pub reset_seconds: u64,
    /// Whether this limit refused the request.
    pub refused: bool,
    /// Seconds to wait before a retry can pass this limit (0 when it did not refuse), rounded up.
    pub retry_after_seconds: u64,
    /// The same wait in milliseconds, rounded up (what an isolate blocks for).
    pub retry_after_ms: u64,
    /// Whether this is a quota (fixed window).
    pub quota: bool,
}

#[derive(Serialize, Deserialize)]
struct LimitStatusWire(String, String, bool);

impl TryFrom<LimitStatusWire> for LimitStatus {
    type Error = &'static str;
    fn try_from(LimitStatusWire(name, text, quota): LimitStatusWire) -> Result<LimitStatus, &'static str> {
        match crate::limit::lease::numbers(&text) {
            Some([limit, window_seconds, remaining, reset_seconds, refused @ 0..=1, retry_after_seconds, retry_after_ms]) => {
                Ok(LimitStatus {
                    name,
                    limit,
                    window_seconds,
                    remaining,
                    reset_seconds,
                    refused: refused == 1,
                    retry_after_seconds,
                    retry_after_ms,
                    quota,
                })
            }
            _ => Err("a limit status is 7 numbers"),
        }
    }
}

impl From<LimitStatus> for LimitStatusWire {
    fn from(l: LimitStatus) -> LimitStatusWire {
        let refused = u8::from(l.refused);
        let text = format!(
            "{},{},{},{},{refused},{},{}",
            l.limit, l.window_seconds, l.remaining, l.reset_seconds, l.retry_after_seconds, l.retry_after_ms
        );
        LimitStatusWire(l.name, text, l.quota)
    }
}

/// The outcome for one request. On the wire as a pair (`allowed`, the limits).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "DecisionWire", into = "DecisionWire")]
pub struct Decision {
    pub allowed: bool,
    /// One entry per spec, in spec order.
    pub limits: Vec<LimitStatus>,
}

#[derive(Serialize, Deserialize)]
struct DecisionWire(bool, Vec<LimitStatus>);

impl From<DecisionWire> for Decision {
    fn from(DecisionWire(allowed, limits): DecisionWire) -> Decision {
        Decision { allowed, limits }
    }
}

impl From<Decision> for DecisionWire {
    fn from(d: Decision) -> DecisionWire {
        DecisionWire(d.allowed, d.limits)
    }
}

impl Decision {
    /// The refusing limit that asks for the longest wait (what a 429 reports).
    pub fn refusal(&self) -> Option<&LimitStatus> {
        self.limits.iter().filter(|l| l.refused).max_by_key(|l| l.retry_after_ms)
    }

    /// The credits balance's status, when the key has credits.
    pub fn credits(&self) -> Option<&LimitStatus> {
        self.limits.iter().find(|l| l.name == CREDITS)
    }

    /// The most restrictive limit (fewest remaining, then the longest reset), for `X-RateLimit-*`;
    /// never the credits balance.
    pub fn most_restrictive(&self) -> Option<&LimitStatus> {
        self.limits
            .iter()
            .filter(|l| l.name != CREDITS)
            .min_by(|a, b| a.remaining.cmp(&b.remaining).then(b.reset_seconds.cmp(&a.reset_seconds)))
    }
}

/// The window in ms. `validate_specs` keeps specs in range wherever they enter; clamping anyway
/// means no spec (say, from a hand-edited record) can make the math divide by zero or overflow.
fn window_ms(spec: &LimitSpec) -> i64 {
    spec.window_seconds.clamp(1, MAX_WINDOW_SECONDS) as i64 * 1000
}

fn ceil_div(value: i64, divisor: i64) -> u64 {
    if value <= 0 {
        0
    } else {
        ((value + divisor - 1) / divisor) as u64
    }
}

/// Decides one request at `now_ms`, updating `states` (one per spec, same order) only if
/// admitted. `states` shorter than `specs` is padded with fresh state. When refused, every
/// limit reports its state as it stands (nothing was charged).
pub fn decide(specs: &[LimitSpec], states: &mut Vec<LimitState>, now_ms: i64) -> Decision {
    decide_cost(specs, states, now_ms, 1)
}

/// [`decide`] for a request costing `cost` credits (its route's cost): the credits limit
/// spends `cost`, every other limit counts the request once.
pub fn decide_cost(specs: &[LimitSpec], states: &mut Vec<LimitState>, now_ms: i64, cost: u64) -> Decision {
    states.resize(specs.len(), LimitState::default());
    let mut next = states.clone();
    let mut limits = Vec::with_capacity(specs.len());
    for (spec, state) in specs.iter().zip(next.iter_mut()) {
        let (status, charged) = spec.evaluate(*state, now_ms, true, cost);
        *state = charged;
        limits.push(status);
    }
    let allowed = limits.iter().all(|l| !l.refused);
    if allowed {
        *states = next;
    } else {
        for ((spec, state), status) in specs.iter().zip(states.iter()).zip(limits.iter_mut()) {
            if !status.refused {
                *status = spec.evaluate(*state, now_ms, false, cost).0;
            }
        }
    }
    Decision { allowed, limits }
}

/// How one limit stands after [`LimitSpec::evaluate`], before it becomes a [`LimitStatus`].
struct Standing {
    /// The state after the request (the input when refused or not charged).
    state: LimitState,
    /// Requests still allowed.
    remaining: u64,
    /// Seconds until fully available again (rate) or reset (quota), rounded up.
    reset_seconds: u64,
    /// `Some(wait)` when this limit refused the request.
    wait_ms: Option<i64>,
}

/// GCRA in whole µs: `interval` is W/N rounded up (at most one request per µs, the state's
/// resolution), so the sustained rate never exceeds N/W; the tolerance `interval·(N−1)` admits a
/// burst of exactly N at one instant (`W − interval` would admit ⌊W/interval⌋, more than N when
/// W/N is not whole). `slack` is what rounding up adds to a full refill (< N µs): resets are
/// reported against the nominal window.
fn gcra(spec: &LimitSpec, state: LimitState, now_ms: i64, charge: bool) -> Standing {
    let now_us = now_ms.saturating_mul(1000);
    let window_us = window_ms(spec) * 1000;
    let limit = spec.limit.clamp(1, window_us as u64) as i64;
    let interval = (window_us + limit - 1) / limit;
    let tolerance = interval * (limit - 1);
    let slack = interval * limit - window_us;
    let tat = state.mark.max(now_us);
    let (state, tat, wait_ms) = if !charge {
        (state, tat, None)
    } else if tat - now_us > tolerance {
        (state, tat, Some(ceil_div(tat - now_us - tolerance, 1000) as i64))
    } else {
        (LimitState { mark: tat + interval, count: 0 }, tat + interval, None)
    };
    Standing {
        state,
        remaining: ((now_us + tolerance + interval - tat).max(0) / interval) as u64,
        reset_seconds: ceil_div(tat - now_us - slack, 1_000_000),
        wait_ms,
    }
}

/// A fixed calendar window: the window holding `now` starts at a multiple of its length since
/// the epoch (UTC midnight for a day), and counts from zero in each new window.
fn calendar_quota(spec: &LimitSpec, state: LimitState, now_ms: i64, charge: bool) -> Standing {
    let window_ms = window_ms(spec);
    let start = now_ms.div_euclid(window_ms) * window_ms;
    let current = if state.mark == start { state } else { LimitState { mark: start, count: 0 } };
    let (state, wait_ms) = if !charge {
        (state, None)
    } else if current.count >= spec.limit.max(1) {
        (current, Some(start + window_ms - now_ms))
    } else {
        (LimitState { count: current.count + 1, ..current }, None)
    };
    let counted = if state.mark == start { state.count } else { 0 };
    Standing { state, remaining: spec.limit.saturating_sub(counted), reset_seconds: ceil_div(start + window_ms - now_ms, 1000), wait_ms }
}

/// A credits balance: refilled when due, then `cost` spent if the balance holds it (refused
/// otherwise, waiting for the next refill when there is one).
fn credit_balance(spec: &LimitSpec, state: LimitState, now_ms: i64, charge: bool, cost: u64) -> Standing {
    let (current, next_refill_ms) = credits::refilled(spec, state, now_ms);
    let refused = charge && current.count < cost;
    let state = if charge && !refused { LimitState { count: current.count - cost, ..current } } else { current };
    let reset_seconds = next_refill_ms.map_or(0, |ms| ceil_div(ms, 1000));
    Standing { state, remaining: state.count, reset_seconds, wait_ms: refused.then(|| next_refill_ms.unwrap_or(0)) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(name: &str, limit: u64, window_seconds: u64) -> LimitSpec {
        LimitSpec::new(name, limit, window_seconds)
    }

    #[test]
    fn a_decision_travels_as_tuples_and_comes_back_whole() {
        let status = |name: &str, refused: bool, quota: bool| LimitStatus {
            name: name.into(),
            limit: 100,
            window_seconds: 86_400,
            remaining: 0,
            reset_seconds: 7,
            refused,
            retry_after_seconds: 8,
            retry_after_ms: 7_001,
            quota,
        };
        let decision = Decision { allowed: false, limits: vec![status("daily", true, true), status("$credits", false, false)] };
        let wire = serde_json::to_string(&decision).unwrap();
        assert_eq!(wire, r#"[false,[["daily","100,86400,0,7,1,8,7001",true],["$credits","100,86400,0,7,0,8,7001",false]]]"#);
        assert_eq!(serde_json::from_str::<Decision>(&wire).unwrap(), decision);
        for bad in
            [r#"[true,[["a","1,2,3,4,2,6,7",false]]]"#, r#"[true,[["a","1,2,3",false]]]"#, r#"[true,[["a","1,2,3,4,0,6,7,8",false]]]"#]
        {
            assert!(serde_json::from_str::<Decision>(bad).is_err(), "{bad}");
        }
    }

    /// Runs `count` requests at `at_ms` and returns how many were admitted.
    fn burst(specs: &[LimitSpec], states: &mut Vec<LimitState>, at_ms: i64, count: usize) -> usize {
        (0..count).filter(|_| decide(specs, states, at_ms).allowed).count()
    }

    const T0: i64 = 20_833 * 86_400_000; // UTC midnight, 2027-01-14

    #[test]
    fn the_algorithm_is_derived_from_the_window_and_the_json_keeps_three_fields() {
        // (what, window_seconds, algorithm)
        let rows = [
            ("one second is a rate", 1, Algorithm::Gcra),
            ("a minute is a rate", 60, Algorithm::Gcra),
            ("just under a day is a rate", 86_399, Algorithm::Gcra),
            ("a day is a quota", 86_400, Algorithm::CalendarQuota),
            ("a week is a quota", 604_800, Algorithm::CalendarQuota),
            ("a window out of range still gets one", u64::MAX, Algorithm::CalendarQuota),
        ];
        for (what, window, algorithm) in rows {
            let made = spec("x", 5, window);
            assert_eq!(made.algorithm(), algorithm, "{what}: made");
            assert_eq!(made.is_quota(), algorithm == Algorithm::CalendarQuota, "{what}");
            let json = serde_json::to_string(&made).unwrap();
            assert_eq!(json, format!(r#"{{"name":"x","limit":5,"window_seconds":{window}}}"#), "{what}: the JSON has no algorithm");
            let decoded: LimitSpec = serde_json::from_str(&json).unwrap();
            assert_eq!(decoded.algorithm(), algorithm, "{what}: decoded");
            assert_eq!(decoded, made, "{what}: round trip");
            let decision = decide(&[decoded], &mut Vec::new(), T0);
            assert_eq!(decision.limits[0].quota, algorithm == Algorithm::CalendarQuota, "{what}: decided by its algorithm");
        }
        // Decoding errors read as they did when the spec had only its three fields.
        let error = |json: &str| serde_json::from_str::<LimitSpec>(json).unwrap_err().to_string();
        assert!(error(r#"{"name":"x","limit":5,"window_seconds":60,"algorithm":"gcra"}"#)
            .starts_with("unknown field `algorithm`, expected one of `name`, `limit`, `window_seconds`"));
        assert!(error(r#""x""#).starts_with("invalid type: string \"x\", expected struct LimitSpec"), "{}", error(r#""x""#));
        assert!(error(r#"{"name":"x","limit":5}"#).starts_with("missing field `window_seconds`"));
    }

    #[test]
    fn exactly_n_admitted_at_once_then_refused() {
        let specs = [spec("minute", 10, 60)];
        let mut states = Vec::new();
        assert_eq!(burst(&specs, &mut states, T0, 50), 10);
        let refused = decide(&specs, &mut states, T0);
        assert!(!refused.allowed);
        assert_eq!(refused.limits[0].retry_after_seconds, 6, "one slot frees every 60/10 s");
        assert_eq!(refused.limits[0].remaining, 0);
    }

    #[test]
    fn gcra_refills_one_slot_per_interval_and_never_exceeds_n_per_window() {
        let specs = [spec("minute", 10, 60)];
        let mut states = Vec::new();
        assert_eq!(burst(&specs, &mut states, T0, 10), 10);
        assert_eq!(burst(&specs, &mut states, T0 + 5_999, 1), 0, "just before the interval");
        assert_eq!(burst(&specs, &mut states, T0 + 6_000, 5), 1, "exactly one slot at the interval");
        // A steady flood for 300 s: the burst of 10, then exactly one per 6 s interval.
        let mut admitted_at = Vec::new();
        let mut states = Vec::new();
        for ms in (0..300_000).step_by(250) {
            if decide(&specs, &mut states, T0 + ms).allowed {
                admitted_at.push(ms);
            }
        }
        assert_eq!(admitted_at.len(), 10 + 300 / 6 - 1);
        for (i, start) in admitted_at.iter().enumerate() {
            let in_window = admitted_at[i..].iter().take_while(|t| **t < start + 60_000).count();
            assert!(in_window < 2 * 10, "{in_window} admitted within 60 s from {start}");
        }
        let spacing: Vec<i64> = admitted_at[10..].windows(2).map(|w| w[1] - w[0]).collect();
        assert!(spacing.iter().all(|gap| *gap == 6_000), "sustained rate is one per W/N: {spacing:?}");
    }

    #[test]
    fn remaining_and_reset_count_down() {
        let specs = [spec("second", 5, 1)];
        let mut states = Vec::new();
        let remaining: Vec<u64> = (0..5).map(|_| decide(&specs, &mut states, T0).limits[0].remaining).collect();
        assert_eq!(remaining, [4, 3, 2, 1, 0]);
        let fresh = decide(&[spec("minute", 600, 60)], &mut Vec::new(), T0);
        assert_eq!((fresh.limits[0].remaining, fresh.limits[0].reset_seconds), (599, 1));
    }

    #[test]
    fn quota_is_a_calendar_window_that_resets_at_midnight() {
        let specs = [spec("daily", 3, 86_400)];
        let mut states = Vec::new();
        let late = T0 + 86_400_000 - 10_000; // 10 s before midnight UTC
        assert_eq!(burst(&specs, &mut states, late, 5), 3);
        let refused = decide(&specs, &mut states, late);
        assert!(refused.limits[0].quota);
        assert_eq!(refused.limits[0].retry_after_seconds, 10);
        assert_eq!(burst(&specs, &mut states, T0 + 86_400_000, 5), 3, "a new day, a new budget");
    }

    #[test]
    fn refusal_by_one_limit_charges_none() {
        let specs = [spec("burst", 2, 1), spec("daily", 100, 86_400)];
        let mut states = Vec::new();
        assert_eq!(burst(&specs, &mut states, T0, 10), 2);
        let after = decide(&specs, &mut states, T0 + 1_000);
        assert!(after.allowed);
        assert_eq!(after.limits[1].remaining, 100 - 3, "8 refusals did not spend the daily quota");
    }

    #[test]
    fn refusal_reports_the_longest_wait_and_headers_pick_the_tightest() {
        let specs = [spec("burst", 1, 1), spec("minute", 1, 60)];
        let mut states = Vec::new();
        assert!(decide(&specs, &mut states, T0).allowed);
        let refused = decide(&specs, &mut states, T0);
        assert_eq!(refused.refusal().unwrap().name, "minute");
        assert_eq!(refused.refusal().unwrap().retry_after_seconds, 60);
        let ok = decide(&[spec("burst", 50, 1), spec("minute", 600, 60)], &mut Vec::new(), T0);
        assert_eq!(ok.most_restrictive().unwrap().name, "burst");
    }

    #[test]
    fn window_edges_with_an_injected_clock() {
        // Fixed windows at exact boundaries: the last ms of a day and the first of the next.
        let specs = [spec("daily", 1, 86_400)];
        let mut states = Vec::new();
        assert!(decide(&specs, &mut states, T0 + 86_399_999).allowed);
        assert!(!decide(&specs, &mut states, T0 + 86_399_999).allowed);
        assert!(decide(&specs, &mut states, T0 + 86_400_000).allowed);
        // GCRA with limit 1 per second: exactly one per second boundary.
        let specs = [spec("second", 1, 1)];
        let mut states = Vec::new();
        assert!(decide(&specs, &mut states, T0).allowed);
        assert!(!decide(&specs, &mut states, T0 + 999).allowed);
        assert!(decide(&specs, &mut states, T0 + 1_000).allowed);
    }

    #[test]
    fn a_refused_request_reports_uncharged_values_for_the_other_limits() {
        let specs = [spec("burst", 1, 1), spec("minute", 600, 60)];
        let mut states = Vec::new();
        let first = decide(&specs, &mut states, T0);
        assert_eq!(first.limits[1].remaining, 599);
        let refused = decide(&specs, &mut states, T0);
        assert!(!refused.allowed);
        assert_eq!(refused.limits[1].remaining, 599, "the minute limit was not charged for the refusal");
        assert_eq!(refused.limits[0].retry_after_ms, 1_000);
    }

    #[test]
    fn retry_after_is_precise_in_milliseconds() {
        let specs = [spec("burst", 50, 1)];
        let mut states = Vec::new();
        assert_eq!(burst(&specs, &mut states, T0, 50), 50);
        let refused = decide(&specs, &mut states, T0);
        assert_eq!(refused.limits[0].retry_after_ms, 20, "one slot frees every 1000/50 ms");
        assert_eq!(refused.limits[0].retry_after_seconds, 1, "headers round up to whole seconds");
        assert!(decide(&specs, &mut states, T0 + 20).allowed);
    }

    #[test]
    fn gcra_burst_is_at_most_n_when_the_window_does_not_divide_evenly() {
        // Found by fuzzing (fuzz/fuzz_targets/limiter.rs): with the interval W/N rounded down
        // and a tolerance of W − interval, one instant admitted ⌊W/interval⌋ > N requests
        // (1,501 for 1,500 per second) and the first answer promised N more.
        for (limit, window) in [(1_500, 1), (3, 1), (7, 60), (7_001, 60)] {
            let specs = [spec("rate", limit, window)];
            let mut states = Vec::new();
            let first = decide(&specs, &mut states, T0);
            assert_eq!(first.limits[0].remaining, limit - 1, "{limit}/{window}s");
            assert!(first.limits[0].reset_seconds <= window, "{limit}/{window}s");
            let admitted = 1 + burst(&specs, &mut states, T0, limit as usize + 10);
            assert_eq!(admitted as u64, limit, "{limit}/{window}s: one instant admits exactly N");
        }
        let huge = decide(&[spec("rate", 232_631_298, 48_257)], &mut Vec::new(), T0);
        assert_eq!(huge.limits[0].remaining, 232_631_298 - 1);
        // The sustained rate stays at or under N/W: 3 per second over 10 s of flooding.
        let specs = [spec("rate", 3, 1)];
        let mut states = Vec::new();
        let admitted = (0..10_000).filter(|ms| decide(&specs, &mut states, T0 + ms).allowed).count();
        assert!(admitted <= 3 + 10 * 3, "{admitted} admitted in 10 s at 3/s");
        // More than one request per µs of the window is capped at one per µs.
        let fast = decide(&[spec("rate", 1_000_000_000, 1)], &mut Vec::new(), T0);
        assert_eq!(fast.limits[0].remaining, 999_999);
    }

    #[test]
    fn validation_refuses_rates_that_could_not_be_held_as_advertised() {
        let rows = [
            ("1e9 per second", 1_000_000_000, 1, false),
            ("one per microsecond", 1_000_000, 1, true),
            ("just over one per microsecond", 60_000_001, 60, false),
            ("1e9 per 1000 s", 1_000_000_000, 1000, true),
            ("1e9 per day is a quota, not a rate", 1_000_000_000, 86_400, true),
        ];
        for (what, limit, window, valid) in rows {
            assert_eq!(spec("rate", limit, window).validate_new().is_ok(), valid, "{what}");
            assert_eq!(validate_new_specs(&[spec("rate", limit, window)]).is_ok(), valid, "{what}");
            assert!(validate_specs(&[spec("rate", limit, window)]).is_ok(), "{what}: a stored record keeps decoding");
        }
    }

    #[test]
    fn decide_never_panics_on_specs_that_skipped_validation() {
        // Found by fuzzing (fuzz/fuzz_targets/record_decode.rs): a KV record whose inline limits
        // had a zero window reached decide() and divided by zero. Records are now validated on
        // decode; decide() also clamps, so no spec can crash the limiter.
        for (limit, window) in [(0, 60), (5, 0), (0, 0), (u64::MAX, 1), (1, u64::MAX), (u64::MAX, u64::MAX), (0, 86_400)] {
            let specs = [spec("x", limit, window)];
            let mut states = Vec::new();
            let admitted = burst(&specs, &mut states, T0, 3);
            assert!(admitted >= 1, "{limit}/{window}s: treated as at least 1 per window");
            let decision = decide(&specs, &mut states, T0 + 1);
            assert!(decision.limits[0].remaining <= limit, "{limit}/{window}s");
        }
    }

    #[test]
    fn spec_validation() {
        assert!(validate_specs(&[spec("burst", 50, 1), spec("minute", 600, 60)]).is_ok());
        for bad in [
            vec![spec("", 1, 1)],
            vec![spec("Burst", 1, 1)],
            vec![spec("x", 0, 1)],
            vec![spec("x", 1, 0)],
            vec![spec("x", 1, 40 * 86_400)],
            vec![spec("x", 1, 1), spec("x", 2, 2)],
        ] {
            assert!(validate_specs(&bad).is_err(), "{bad:?}");
        }
    }
}
