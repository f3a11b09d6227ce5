//! "Blocked until": once a key family is refused by a limit, the isolate answers its requests
//! with 429 itself until the refusal's retry-after has passed, so a 429 flood never reaches the
//! limiter. Pure, clock passed in, bounded in memory.
//!
//! An entry holds the refusal's [`Decision`] and the limits it was decided under: a record with
//! other limits (an admin raised them, and this isolate's cache has refreshed) is not held to it.
//! At [`MAX_BLOCKED`] families, expired entries go first, then those whose block ends soonest.

use std::collections::HashMap;

use crate::limit::algorithm::{Decision, LimitSpec};

/// Families remembered as blocked per isolate.
pub const MAX_BLOCKED: usize = 10_000;

struct Blocked {
    until_ms: i64,
    decision: Decision,
    specs: Vec<LimitSpec>,
}

/// The blocked families of one isolate.
pub struct BlockedUntil {
    families: HashMap<String, Blocked>,
    capacity: usize,
}

impl Default for BlockedUntil {
    fn default() -> Self {
        BlockedUntil::new(MAX_BLOCKED)
    }
}

impl BlockedUntil {
    /// Remembers at most `capacity` families (at least 1).
    pub fn new(capacity: usize) -> Self {
        BlockedUntil { families: HashMap::new(), capacity: capacity.max(1) }
    }

    /// The refusal standing for `family` under `specs` at `now_ms`, its retry-after set to the
    /// time left (whole seconds, rounded up, at least 1).
    pub fn refusal(&self, family: &str, specs: &[LimitSpec], now_ms: i64) -> Option<Decision> {
        let entry = self.families.get(family).filter(|entry| now_ms < entry.until_ms && entry.specs == specs)?;
        let left_seconds = ((entry.until_ms - now_ms + 999) / 1000).max(1) as u64;
        let mut decision = entry.decision.clone();
        for limit in decision.limits.iter_mut().filter(|l| l.refused) {
            limit.retry_after_seconds = left_seconds;
        }
        Some(decision)
    }

    /// Remembers that `decision` (a refusal under `specs`) blocks `family` for its retry-after
    /// (at least 1 ms; 1 s when the decision names no refusing limit).
    pub fn block(&mut self, family: &str, specs: &[LimitSpec], decision: &Decision, now_ms: i64) {
        let wait_ms = decision.refusal().map(|l| l.retry_after_ms as i64).unwrap_or(1000).max(1);
        if !self.families.contains_key(family) && self.families.len() >= self.capacity {
            self.make_room(now_ms);
        }
        let entry = Blocked { until_ms: now_ms.saturating_add(wait_ms), decision: decision.clone(), specs: specs.to_vec() };
        self.families.insert(family.to_string(), entry);
    }

    /// Number of families remembered.
    pub fn len(&self) -> usize {
        self.families.len()
    }

    /// Whether no family is remembered.
    pub fn is_empty(&self) -> bool {
        self.families.is_empty()
    }

    fn make_room(&mut self, now_ms: i64) {
        let live = self.families.values().filter(|entry| entry.until_ms > now_ms).count();
        // Expired entries go first; when every entry is live, those ending first make room.
        let cutoff = if live < self.capacity { now_ms } else { self.families.values().map(|entry| entry.until_ms).min().unwrap_or(now_ms) };
        self.families.retain(|_, entry| entry.until_ms > cutoff);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limit::algorithm::decide;

    const T0: i64 = 1_800_000_000_000;

    fn refused(specs: &[LimitSpec]) -> Decision {
        let mut states = Vec::new();
        decide(specs, &mut states, T0);
        decide(specs, &mut states, T0)
    }

    #[test]
    fn a_block_lasts_its_retry_after_and_reports_the_time_left() {
        let specs = [LimitSpec::new("minute", 1, 60)];
        let decision = refused(&specs);
        assert!(!decision.allowed);
        let mut blocked = BlockedUntil::default();
        blocked.block("key_a", &specs, &decision, T0);
        let rows: [(i64, Option<u64>, &str); 3] = [
            (T0 + 1, Some(60), "just blocked: the full minute"),
            (T0 + 59_500, Some(1), "half a second left rounds up to 1 s"),
            (T0 + 60_000, None, "the block has passed"),
        ];
        for (now, retry_after, why) in rows {
            let standing = blocked.refusal("key_a", &specs, now);
            assert_eq!(standing.and_then(|d| d.refusal().map(|l| l.retry_after_seconds)), retry_after, "{why}");
        }
    }

    #[test]
    fn other_limits_or_families_are_not_held_to_a_block() {
        let specs = [LimitSpec::new("minute", 1, 60)];
        let mut blocked = BlockedUntil::default();
        blocked.block("key_a", &specs, &refused(&specs), T0);
        let raised = [LimitSpec::new("minute", 100, 60)];
        assert!(blocked.refusal("key_a", &raised, T0 + 1).is_none(), "an admin raised the limit");
        assert!(blocked.refusal("key_b", &specs, T0 + 1).is_none(), "another family");
        assert!(blocked.refusal("key_a", &specs, T0 + 1).is_some());
    }

    #[test]
    fn memory_stays_bounded_and_the_soonest_block_goes_first() {
        let specs = [LimitSpec::new("minute", 1, 60)];
        let decision = refused(&specs);
        let mut blocked = BlockedUntil::new(2);
        blocked.block("a", &specs, &decision, T0);
        blocked.block("b", &specs, &decision, T0 + 10);
        blocked.block("c", &specs, &decision, T0 + 20);
        assert_eq!(blocked.len(), 2, "bounded");
        assert!(blocked.refusal("a", &specs, T0 + 30).is_none(), "the block ending soonest made room");
        assert!(blocked.refusal("b", &specs, T0 + 30).is_some());
        assert!(blocked.refusal("c", &specs, T0 + 30).is_some());
        // Expired entries make room before a live one is dropped.
        blocked.block("d", &specs, &decision, T0 + 60_015);
        assert!(blocked.refusal("c", &specs, T0 + 60_016).is_some(), "c is still blocked; expired b made room");
    }
}
