//! Credits (pure, clock passed in): a key family's remaining-uses balance, with an optional
//! periodic refill, decided by the family's limiter as one more limit ([`CREDITS`]).
//!
//! The record carries the configuration ([`Credits`]); the balance is state, kept by the
//! family's `KeyLimiter` in a [`LimitState`] (`count` = the balance, `mark` = the start, unix ms,
//! of the refill period it was last brought up to; 0 = none counted yet, so refills start with
//! the next period: a new balance, or one whose refill was just configured or changed). A request of a route of cost `c`
//! spends `c` credits when every limit admits it, and is refused without spending anything when
//! the balance is below `c`: the balance never goes below zero.
//!
//! Refill, applied lazily on the limiter's clock whenever the balance is read: at each UTC day
//! (or month) start, `reset` sets the balance to the amount (unused credits expire), `add` adds
//! the amount once per period started since the last refill (no cap: unused credits roll over).
//!
//! On the wire to the limiter the configuration travels as a [`LimitSpec`] named [`CREDITS`]
//! (a name no configured limit can have): `limit` is the refill amount (0: none) and
//! `window_seconds` codes the interval and mode ([`Credits::spec`]), so leases and hits carry
//! credits with no new message.

use serde::{Deserialize, Serialize, Serializer};
use serde_json::{Map, Value};

use super::algorithm::{LimitSpec, LimitState};
use crate::timestamp::{civil_from_days, days_from_civil};

/// The name of the credits limit (never a configured limit's: those are `a-z0-9_-`).
pub const CREDITS: &str = "$credits";

/// Largest balance, refill amount or change (10^12).
pub const MAX_CREDITS: u64 = 1_000_000_000_000;

const DAY_MS: i64 = 86_400_000;

/// A key's credits configuration (the balance itself is the limiter's state). Decoded and
/// encoded through a JSON value ([`Credits::from_value`], [`Credits::to_value`]: the value's
/// coder is in the wasm already, derived ones of its own would add to it).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Default)]
#[serde(try_from = "Value")]
pub struct Credits {
    /// Periodic refill; `None`: the balance changes only by use and the admin API.
    pub refill: Option<Refill>,
}

impl Serialize for Credits {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_value().serialize(serializer)
    }
}

impl TryFrom<Value> for Credits {
    type Error = String;
    fn try_from(value: Value) -> Result<Credits, String> {
        Credits::from_value(&value, false).map(|(credits, _)| credits)
    }
}

/// A periodic refill.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refill {
    /// Credits per refill (1..=10^12).
    pub amount: u64,
    /// `day` or `month` (UTC calendar starts).
    pub interval: Interval,
    /// `reset` (the balance becomes `amount`) or `add` (the balance grows by `amount`).
    pub mode: RefillMode,
}

/// How often a refill happens: at each UTC midnight, or the first of each month (UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interval {
    Day,
    Month,
}

/// What a refill does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefillMode {
    /// The balance becomes the amount (unused credits expire).
    Reset,
    /// The amount is added (unused credits roll over, no cap).
    Add,
}

impl Credits {
    /// `{"refill": {"amount", "interval": "day"|"month", "mode": "reset"|"add"} | null}`, with
    /// `"remaining": N` too where `with_remaining` (a create); no other field. `Err` says what
    /// the value must be.
    pub fn from_value(value: &Value, with_remaining: bool) -> Result<(Credits, Option<u64>), String> {
        parse(value, with_remaining).ok_or_else(|| {
            String::from(if with_remaining {
                "must be {remaining: 0..10^12, refill: {amount: 1..10^12, interval: day|month, mode: reset|add} | null}"
            } else {
                "must be {refill: {amount: 1..10^12, interval: day|month, mode: reset|add} | null}"
            })
        })
    }

    /// The limit the limiter decides credits by: `window_seconds` is 0 without a refill, else
    /// 1 (day, add), 2 (month, add), 3 (day, reset) or 4 (month, reset); `limit` the amount.
    pub fn spec(&self) -> LimitSpec {
        let (amount, code) = match self.refill {
            None => (0, 0),
            Some(r) => (r.amount, 1 + u64::from(r.interval == Interval::Month) + 2 * u64::from(r.mode == RefillMode::Reset)),
        };
        LimitSpec::new(CREDITS, amount, code)
    }

    /// `{"refill": {"amount", "interval", "mode"} | null}`.
    pub fn to_value(&self) -> Value {
        let refill = match self.refill {
            None => Value::Null,
            Some(r) => {
                let mut object = Map::new();
                object.insert("amount".into(), r.amount.into());
                object.insert("interval".into(), if r.interval == Interval::Day { "day" } else { "month" }.into());
                object.insert("mode".into(), if r.mode == RefillMode::Reset { "reset" } else { "add" }.into());
                Value::Object(object)
            }
        };
        let mut object = Map::new();
        object.insert("refill".into(), refill);
        Value::Object(object)
    }

    /// When the next refill after `now_ms` happens (unix ms); `None` without a refill.
    pub fn next_refill_ms(&self, now_ms: i64) -> Option<i64> {
        self.refill.map(|r| next_start_ms(r.interval, period_of(r.interval, now_ms)))
    }
}

/// `,"credits":{…}` of the usage endpoint's object: the balance, the refill and the next refill.
pub fn usage_json(credits: &Credits, balance: u64, now_ms: i64) -> String {
    let mut object = match credits.to_value() {
        Value::Object(object) => object,
        _ => Map::new(),
    };
    object.insert("remaining".into(), balance.into());
    let next = credits.next_refill_ms(now_ms).map(|ms| crate::timestamp::Timestamp(ms).to_rfc3339());
    object.insert("next_refill_at".into(), next.into());
    format!(",\"credits\":{}", Value::Object(object))
}

/// [`Credits::from_value`] without its message: `None` when the value is not of the shape.
fn parse(value: &Value, with_remaining: bool) -> Option<(Credits, Option<u64>)> {
    let object = value.as_object()?;
    if object.keys().any(|k| k != "refill" && (k != "remaining" || !with_remaining)) {
        return None;
    }
    let remaining = match object.get("remaining") {
        None => None,
        Some(n) => Some(n.as_u64().filter(|n| *n <= MAX_CREDITS)?),
    };
    let refill = match object.get("refill") {
        None | Some(Value::Null) => None,
        Some(refill) => {
            let field = |name| refill.get(name).and_then(Value::as_str);
            let interval = match field("interval")? {
                "day" => Interval::Day,
                "month" => Interval::Month,
                _ => return None,
            };
            let mode = match field("mode")? {
                "reset" => RefillMode::Reset,
                "add" => RefillMode::Add,
                _ => return None,
            };
            let amount = refill.get("amount").and_then(Value::as_u64).filter(|a| (1..=MAX_CREDITS).contains(a))?;
            (refill.as_object()?.len() == 3).then_some(())?;
            Some(Refill { amount, interval, mode })
        }
    };
    Some((Credits { refill }, remaining))
}

/// The refill a credits spec codes ([`Credits::spec`]).
fn refill_of(spec: &LimitSpec) -> Option<Refill> {
    let code = spec.window_seconds;
    if !(1..=4).contains(&code) || spec.limit == 0 {
        return None;
    }
    let interval = if code % 2 == 0 { Interval::Month } else { Interval::Day };
    let mode = if code > 2 { RefillMode::Reset } else { RefillMode::Add };
    Some(Refill { amount: spec.limit, interval, mode })
}

/// The number of the period holding `now_ms`: days or months since 1970-01 (UTC).
fn period_of(interval: Interval, now_ms: i64) -> i64 {
    let day = now_ms.div_euclid(DAY_MS);
    match interval {
        Interval::Day => day,
        Interval::Month => {
            let (year, month, _) = civil_from_days(day);
            (year - 1970) * 12 + month - 1
        }
    }
}

/// When period `period + 1` starts (unix ms).
fn next_start_ms(interval: Interval, period: i64) -> i64 {
    match interval {
        Interval::Day => (period + 1).saturating_mul(DAY_MS),
        Interval::Month => {
            let next = period + 1;
            days_from_civil(1970 + next.div_euclid(12), next.rem_euclid(12) + 1, 1).saturating_mul(DAY_MS)
        }
    }
}

/// The balance at `now_ms` after any refill due (`state` as stored; mark 0 is taken as
/// refilled in the current period), and the ms until the next refill (`None` without a refill).
pub fn refilled(spec: &LimitSpec, state: LimitState, now_ms: i64) -> (LimitState, Option<i64>) {
    let Some(refill) = refill_of(spec) else { return (state, None) };
    let period = period_of(refill.interval, now_ms);
    let start = next_start_ms(refill.interval, period - 1);
    let wait = next_start_ms(refill.interval, period) - now_ms;
    if state.mark == 0 || state.mark >= start {
        return (LimitState { mark: state.mark.max(start), count: state.count }, Some(wait));
    }
    let count = match refill.mode {
        RefillMode::Reset => refill.amount,
        RefillMode::Add => {
            let periods = (period - period_of(refill.interval, state.mark)).max(0) as u64;
            state.count.saturating_add(refill.amount.saturating_mul(periods)).min(MAX_CREDITS)
        }
    };
    (LimitState { mark: start, count }, Some(wait))
}

/// Sets the balance (`set`) or adds `amount` to it (negative: deducts, stopping at zero), after
/// any refill due (so a `set` counts as the current period's refill); returns the new state.
pub fn change(spec: &LimitSpec, state: LimitState, set: bool, amount: i64, now_ms: i64) -> LimitState {
    let (mut state, _) = refilled(spec, state, now_ms);
    state.count = if set { amount.max(0) as u64 } else { state.count.saturating_add_signed(amount) }.min(MAX_CREDITS);
    state
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limit::algorithm::{decide, decide_cost};

    const T0: i64 = 20_833 * DAY_MS; // UTC midnight, 2027-01-14

    fn credits(refill: Option<(u64, Interval, RefillMode)>) -> LimitSpec {
        Credits { refill: refill.map(|(amount, interval, mode)| Refill { amount, interval, mode }) }.spec()
    }

    fn ms(date: &str) -> i64 {
        crate::timestamp::Timestamp::parse_rfc3339(date).unwrap().millis()
    }

    #[test]
    fn the_spec_codes_every_refill_and_decodes_back() {
        for refill in [None, Some((5, Interval::Day, RefillMode::Add)), Some((7, Interval::Month, RefillMode::Reset))] {
            let spec = credits(refill);
            assert_eq!(spec.name, CREDITS);
            let json = serde_json::to_string(&spec).unwrap();
            let back: LimitSpec = serde_json::from_str(&json).unwrap();
            assert_eq!(back, spec, "{json}");
            assert_eq!(refill_of(&back).map(|r| (r.amount, r.interval, r.mode)), refill);
        }
        assert!(spec_name_is_not_a_valid_limit_name());
    }

    fn spec_name_is_not_a_valid_limit_name() -> bool {
        LimitSpec::new(CREDITS, 1, 1).validate().is_err()
    }

    #[test]
    fn a_balance_admits_exactly_its_credits_and_a_refusal_spends_nothing() {
        let specs = [credits(None)];
        let mut states = vec![change(&specs[0], LimitState::default(), true, 5, T0)];
        let admitted = (0..9).filter(|_| decide(&specs, &mut states, T0).allowed).count();
        assert_eq!(admitted, 5);
        let refused = decide(&specs, &mut states, T0);
        assert!(!refused.allowed && refused.limits[0].refused);
        assert_eq!((refused.limits[0].remaining, states[0].count), (0, 0), "never below zero");
        // A cost above the balance is refused without spending: 4 left, cost 5.
        let mut states = vec![change(&specs[0], LimitState::default(), true, 4, T0)];
        assert!(!decide_cost(&specs, &mut states, T0, 5).allowed);
        assert_eq!(states[0].count, 4, "nothing spent on a refusal");
        assert!(decide_cost(&specs, &mut states, T0, 3).allowed);
        assert_eq!(states[0].count, 1);
        assert!(decide_cost(&specs, &mut states, T0, 0).allowed, "a free route passes an empty balance");
        assert_eq!(states[0].count, 1);
    }

    #[test]
    fn a_rate_limit_counts_requests_while_credits_count_cost() {
        let specs = [LimitSpec::new("minute", 2, 60), credits(None)];
        let mut states = vec![LimitState::default(), change(&specs[1], LimitState::default(), true, 100, T0)];
        assert!(decide_cost(&specs, &mut states, T0, 10).allowed);
        assert!(decide_cost(&specs, &mut states, T0, 10).allowed);
        let refused = decide_cost(&specs, &mut states, T0, 10);
        assert!(!refused.allowed, "the rate refuses the third request");
        assert_eq!(states[1].count, 80, "the rate's refusal spent no credits");
    }

    #[test]
    fn refills_happen_at_utc_day_and_month_starts() {
        // (what, refill, set at, balance set, spent, read at, expected balance, expected wait ms)
        let day = DAY_MS;
        let rows = [
            ("reset: same day, nothing", (10, Interval::Day, RefillMode::Reset), T0 + 5, 10, 7, T0 + day - 1, 3, 1),
            ("reset: next day, back to the amount", (10, Interval::Day, RefillMode::Reset), T0 + 5, 10, 7, T0 + day, 10, day),
            ("reset: three days idle, still the amount", (10, Interval::Day, RefillMode::Reset), T0, 2, 0, T0 + 3 * day, 10, day),
            ("add: next day adds once", (10, Interval::Day, RefillMode::Add), T0, 5, 2, T0 + day + 1, 13, day - 1),
            ("add: three days idle adds three times", (10, Interval::Day, RefillMode::Add), T0, 5, 0, T0 + 3 * day, 35, day),
            (
                "month: Jan 31 23:59 is still January",
                (9, Interval::Month, RefillMode::Reset),
                ms("2027-01-14T00:00:00Z"),
                1,
                1,
                ms("2027-01-31T23:59:59Z"),
                0,
                1_000,
            ),
            (
                "month: Feb 1 refills",
                (9, Interval::Month, RefillMode::Reset),
                ms("2027-01-14T00:00:00Z"),
                1,
                1,
                ms("2027-02-01T00:00:00Z"),
                9,
                28 * day,
            ),
            (
                "month: a leap February has 29 days",
                (9, Interval::Month, RefillMode::Add),
                ms("2028-02-10T00:00:00Z"),
                0,
                0,
                ms("2028-02-29T12:00:00Z"),
                0,
                day / 2,
            ),
            (
                "month: Dec to Jan crosses the year",
                (9, Interval::Month, RefillMode::Add),
                ms("2027-12-31T23:00:00Z"),
                1,
                0,
                ms("2028-01-01T00:00:00Z"),
                10,
                31 * day,
            ),
            (
                "month: April has 30 days",
                (9, Interval::Month, RefillMode::Add),
                ms("2027-04-30T00:00:00Z"),
                0,
                0,
                ms("2027-04-30T00:00:00Z"),
                0,
                day,
            ),
        ];
        for (what, refill, set_at, balance, spent, read_at, expected, wait) in rows {
            let spec = credits(Some(refill));
            let mut state = change(&spec, LimitState::default(), true, balance, set_at);
            state.count -= spent;
            let (state, next) = refilled(&spec, state, read_at);
            assert_eq!((state.count, next), (expected, Some(wait)), "{what}");
            let config = Credits { refill: Some(Refill { amount: refill.0, interval: refill.1, mode: refill.2 }) };
            assert_eq!(config.next_refill_ms(read_at), Some(read_at + wait), "{what}: the usage endpoint's next_refill_at");
        }
    }

    #[test]
    fn a_refusal_with_a_refill_waits_for_it_and_without_one_names_no_wait() {
        let spec = credits(Some((3, Interval::Day, RefillMode::Reset)));
        let mut states = vec![change(&spec, LimitState::default(), true, 0, T0)];
        let refused = decide(std::slice::from_ref(&spec), &mut states, T0 + DAY_MS - 2_000);
        assert_eq!((refused.allowed, refused.limits[0].retry_after_seconds, refused.limits[0].reset_seconds), (false, 2, 2));
        assert!(decide(std::slice::from_ref(&spec), &mut states, T0 + DAY_MS).allowed, "refilled at midnight");
        let none = credits(None);
        let refused = decide(std::slice::from_ref(&none), &mut vec![LimitState::default()], T0);
        assert_eq!((refused.allowed, refused.limits[0].reset_seconds), (false, 0), "a fresh balance without refill is empty");
    }

    #[test]
    fn a_changed_refill_counts_from_its_change_and_a_stored_mark_reads_in_any_interval() {
        let day_add = credits(Some((10, Interval::Day, RefillMode::Add)));
        let month_add = credits(Some((10, Interval::Month, RefillMode::Add)));
        // Mark 0 (a refill just configured, or a balance without one): nothing is added for
        // the days before; the next midnight adds one amount.
        let unrefilled = LimitState { mark: 0, count: 4 };
        assert_eq!(refilled(&day_add, unrefilled, T0 + 5).0, LimitState { mark: T0, count: 4 });
        assert_eq!(refilled(&day_add, refilled(&day_add, unrefilled, T0 + 5).0, T0 + DAY_MS).0.count, 14);
        // A mark stored under a daily refill read under a monthly one (the limiter's row when
        // the record changed while the ledger was not loaded): months since that day.
        let jan_14 = ms("2027-01-14T00:00:00Z");
        let stored = LimitState { mark: jan_14, count: 4 };
        assert_eq!(refilled(&month_add, stored, ms("2027-01-31T00:00:00Z")).0.count, 4, "the same month");
        assert_eq!(refilled(&month_add, stored, ms("2027-03-02T00:00:00Z")).0.count, 24, "two month starts since");
    }

    #[test]
    fn changes_add_set_and_never_go_below_zero() {
        let spec = credits(None);
        let state = change(&spec, LimitState::default(), true, 5, T0);
        assert_eq!(change(&spec, state, false, 3, T0).count, 8);
        assert_eq!(change(&spec, state, false, -3, T0).count, 2);
        assert_eq!(change(&spec, state, false, -30, T0).count, 0, "a deduction stops at zero");
        assert_eq!(change(&spec, state, true, 0, T0).count, 0);
        assert_eq!(change(&spec, state, true, -4, T0).count, 0);
        // Setting a refilling balance counts as this period's refill: no refill until the next.
        let daily = credits(Some((10, Interval::Day, RefillMode::Reset)));
        let set = change(&daily, LimitState::default(), true, 0, T0 + 5);
        assert_eq!(refilled(&daily, set, T0 + 6).0.count, 0);
        assert_eq!(refilled(&daily, set, T0 + DAY_MS).0.count, 10);
    }
}
