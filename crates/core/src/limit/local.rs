//! `fast` mode's per-isolate counters (pure, clock passed in): the limit state of each key
//! family this isolate has decided, bounded in memory.
//!
//! A family's state is dropped only when it is idle, i.e. when deciding with it is exactly
//! deciding with fresh state: every rate's theoretical arrival time has passed and no quota has
//! counted in its current window ([`idle_from`]). Only when the isolate holds more live families
//! than its bound does it forget the one that turns idle first (an approximation, like `fast`
//! mode itself: each isolate counts alone).

use std::collections::HashMap;

use super::algorithm::{decide, Decision, LimitSpec, LimitState};

/// Families tracked per isolate before idle ones are dropped.
pub const MAX_FAMILIES: usize = 10_000;

/// The per-isolate counters of `fast` mode.
#[derive(Debug)]
pub struct LocalCounters {
    families: HashMap<String, (Vec<LimitState>, i64)>,
    capacity: usize,
}

impl Default for LocalCounters {
    fn default() -> Self {
        LocalCounters::new(MAX_FAMILIES)
    }
}

impl LocalCounters {
    /// Counters for at most `capacity` families (at least 1).
    pub fn new(capacity: usize) -> Self {
        LocalCounters { families: HashMap::new(), capacity: capacity.max(1) }
    }

    /// Decides one request of `family` against `specs` at `now_ms`, as [`decide`] does.
    pub fn decide(&mut self, family: &str, specs: &[LimitSpec], now_ms: i64) -> Decision {
        if !self.families.contains_key(family) && self.families.len() >= self.capacity {
            self.make_room(now_ms);
        }
        let (states, idle) = match self.families.get_mut(family) {
            Some(entry) => entry,
            None => self.families.entry(family.to_string()).or_default(),
        };
        let decision = decide(specs, states, now_ms);
        *idle = idle_from(specs, states);
        decision
    }

    /// Number of families held.
    pub fn len(&self) -> usize {
        self.families.len()
    }

    /// Whether no family is held.
    pub fn is_empty(&self) -> bool {
        self.families.is_empty()
    }

    fn make_room(&mut self, now_ms: i64) {
        self.families.retain(|_, (_, idle)| *idle > now_ms);
        if self.families.len() >= self.capacity {
            let soonest = self.families.iter().min_by_key(|(_, (_, idle))| *idle).map(|(family, _)| family.clone());
            if let Some(family) = soonest {
                self.families.remove(&family);
            }
        }
    }
}

/// The unix ms from which `states` decide exactly like fresh state for `specs`: the latest
/// [`LimitSpec::idle_from`] (a rate's theoretical arrival time, rounded up to ms, or the end of
/// the window of a quota that has counted).
pub fn idle_from(specs: &[LimitSpec], states: &[LimitState]) -> i64 {
    specs.iter().zip(states).map(|(spec, state)| spec.idle_from(state)).max().unwrap_or(i64::MIN)
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_800_000_000_000;

    fn spec(name: &str, limit: u64, window: u64) -> LimitSpec {
        LimitSpec::new(name, limit, window)
    }

    #[test]
    fn a_family_is_idle_once_fresh_state_would_decide_the_same() {
        let specs = [spec("minute", 2, 60), spec("daily", 100, 86_400)];
        let mut states = Vec::new();
        decide(&specs, &mut states, T0);
        let idle = idle_from(&specs, &states);
        let day_start = T0.div_euclid(86_400_000) * 86_400_000;
        assert_eq!(idle, day_start + 86_400_000, "the quota counted today: idle at the day's end");
        let rates_only = [spec("minute", 2, 60)];
        let mut states = Vec::new();
        decide(&rates_only, &mut states, T0);
        assert_eq!(idle_from(&rates_only, &states), T0 + 30_000, "one request of 2/min: its slot refills in 30 s");
        // At that instant, the kept state and fresh state decide the same.
        let mut kept = states.clone();
        let mut fresh = Vec::new();
        assert_eq!(decide(&rates_only, &mut kept, T0 + 30_000), decide(&rates_only, &mut fresh, T0 + 30_000));
    }

    #[test]
    fn live_families_keep_their_counts_and_memory_stays_bounded() {
        let specs = [spec("minute", 2, 60)];
        let mut counters = LocalCounters::new(3);
        assert!(counters.decide("a", &specs, T0).allowed);
        assert!(counters.decide("a", &specs, T0).allowed);
        for family in ["b", "c", "d", "e"] {
            counters.decide(family, &specs, T0 + 1);
        }
        assert_eq!(counters.len(), 3, "bounded");
        // Once every family is idle, they all make room, and a live family is never dropped
        // for an idle one.
        let mut counters = LocalCounters::new(2);
        counters.decide("old", &specs, T0);
        counters.decide("live", &specs, T0 + 60_000);
        counters.decide("live", &specs, T0 + 60_000);
        counters.decide("new", &specs, T0 + 60_001);
        assert!(!counters.decide("live", &specs, T0 + 60_002).allowed, "the live family kept its two requests");
    }
}
