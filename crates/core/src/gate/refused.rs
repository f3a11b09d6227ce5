//! Refusal accounting: requests an isolate refuses itself (a family it remembers as blocked,
//! see [`super::blocked`]) never reach their limiter, yet count in the key's usage. They are
//! tallied here and sent in batches, off the hot path. Pure, clock passed in, bounded.
//!
//! - Only `exact`-mode keys are tallied (a `fast`-mode key has no limiter to report to).
//! - At most [`MAX_PENDING`] (family, key) counters wait; refusals of further keys are not
//!   counted until a flush has run (memory stays bounded whatever clients send).
//! - One flush at a time per isolate: [`RefusedTally::count`] says when to start one; it runs in
//!   the `wait_until` of the request that started it, taking at most [`FLUSH_ROUNDS`] batches
//!   (what arrives later goes with the next refusal's flush). A flush still running after
//!   [`FLUSH_ABANDONED_MS`] is taken as abandoned (its request's `wait_until` was cancelled).

use std::collections::HashMap;

use crate::cache::InFlight;
use crate::key::KeyHash;
use crate::limit::protocol::LimiterOp;

/// A flush still running after this long is taken as abandoned: the next refusal starts another.
pub const FLUSH_ABANDONED_MS: i64 = 30_000;
/// At most this many batches per flush, so one request's `wait_until` stays short under a
/// sustained 429 flood.
pub const FLUSH_ROUNDS: usize = 4;
/// At most this many (family, key) refusal counters wait for a flush.
pub const MAX_PENDING: usize = 10_000;

/// The isolate's refusals not yet sent to their limiters (numbers only: each flush makes and
/// awaits its own limiter calls in its own request's `wait_until`).
pub struct RefusedTally {
    pending: HashMap<(String, String), u64>,
    capacity: usize,
    /// The running flush, as a marker job ([`KeyHash::MARKER`]).
    flushing: InFlight<KeyHash>,
    rounds: usize,
}

impl Default for RefusedTally {
    fn default() -> Self {
        RefusedTally::new(MAX_PENDING)
    }
}

impl RefusedTally {
    /// A tally of at most `capacity` (family, key) counters (at least 1).
    pub fn new(capacity: usize) -> Self {
        RefusedTally { pending: HashMap::new(), capacity: capacity.max(1), flushing: InFlight::new(FLUSH_ABANDONED_MS, 1), rounds: 0 }
    }

    /// Counts one refusal of `key_id` (of `family`) at `now_ms`; `true` when the caller should
    /// start a flush now (none is running).
    pub fn count(&mut self, family: &str, key_id: &str, now_ms: i64) -> bool {
        let slot = (family.to_string(), key_id.to_string());
        if let Some(count) = self.pending.get_mut(&slot) {
            *count += 1;
        } else if self.pending.len() < self.capacity {
            self.pending.insert(slot, 1);
        }
        let start = self.flushing.try_start(&KeyHash::MARKER, now_ms);
        if start {
            self.rounds = 0;
        }
        start
    }

    /// The next batch of the running flush, as (family, operation) pairs for the limiters;
    /// `None` when nothing is pending or the flush has taken its [`FLUSH_ROUNDS`] batches. The
    /// flush is then over: the next refusal may start another.
    pub fn next_batch(&mut self) -> Option<Vec<(String, LimiterOp)>> {
        if self.rounds >= FLUSH_ROUNDS || self.pending.is_empty() {
            self.flushing.finish(&KeyHash::MARKER);
            return None;
        }
        self.rounds += 1;
        Some(self.pending.drain().map(|((family, key_id), count)| (family, LimiterOp::AddRefused(key_id, count))).collect())
    }

    /// Number of (family, key) counters waiting.
    pub fn len(&self) -> usize {
        self.pending.len()
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_800_000_000_000;

    fn counts(batch: &[(String, LimiterOp)]) -> Vec<(String, String, u64)> {
        let mut counts: Vec<_> = batch
            .iter()
            .filter_map(|(family, op)| match op {
                LimiterOp::AddRefused(key_id, count) => Some((family.clone(), key_id.clone(), *count)),
                _ => None,
            })
            .collect();
        counts.sort();
        counts
    }

    #[test]
    fn refusals_are_summed_per_key_and_one_flush_runs_at_a_time() {
        let mut tally = RefusedTally::default();
        assert!(tally.count("fam", "key_a", T0), "the first refusal starts a flush");
        assert!(!tally.count("fam", "key_a", T0 + 1), "one is running");
        assert!(!tally.count("fam", "key_b", T0 + 2));
        let batch = tally.next_batch().unwrap();
        assert_eq!(counts(&batch), [("fam".into(), "key_a".into(), 2), ("fam".into(), "key_b".into(), 1)]);
        assert!(tally.next_batch().is_none(), "drained: the flush is over");
        assert!(tally.count("fam", "key_a", T0 + 3), "so the next refusal starts another");
    }

    #[test]
    fn a_flush_takes_at_most_its_rounds_and_an_abandoned_one_is_replaced() {
        let mut tally = RefusedTally::default();
        assert!(tally.count("fam", "key_a", T0));
        for round in 0..FLUSH_ROUNDS {
            assert!(tally.next_batch().is_some(), "round {round}");
            tally.count("fam", "key_a", T0);
        }
        assert!(tally.next_batch().is_none(), "a flood does not keep one request's wait_until busy");
        assert_eq!(tally.len(), 1, "what arrived late waits for the next flush");
        assert!(tally.count("fam", "key_a", T0 + 1), "the next refusal starts it");
        assert!(!tally.count("fam", "key_a", T0 + FLUSH_ABANDONED_MS), "still running");
        assert!(tally.count("fam", "key_a", T0 + 1 + FLUSH_ABANDONED_MS), "abandoned (cancelled wait_until): another starts");
        assert_eq!(counts(&tally.next_batch().unwrap()), [("fam".into(), "key_a".into(), 4)]);
    }

    #[test]
    fn pending_counters_are_bounded() {
        let mut tally = RefusedTally::new(2);
        for key in ["key_a", "key_b", "key_c"] {
            tally.count("fam", key, T0);
        }
        tally.count("fam", "key_a", T0);
        assert_eq!(tally.len(), 2, "a third key is not counted until a flush has run");
        assert_eq!(counts(&tally.next_batch().unwrap()), [("fam".into(), "key_a".into(), 2), ("fam".into(), "key_b".into(), 1)]);
    }
}
