//! In-isolate record cache: bounded, with separate TTLs for hits and misses. Time is passed in.
//!
//! The hot path consults this before KV. A found record is cached for `CACHE_TTL_SECONDS`; an
//! unknown hash for a shorter negative TTL, so a flood of made-up (but checksum-valid) keys
//! costs at most one KV read per hash per negative TTL. When full, expired entries go first,
//! then the oldest inserted (FIFO): a hot key re-inserted after expiry keeps working, and
//! memory stays bounded whatever clients send.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;

/// What a cached lookup knows.
#[derive(Debug, Clone, PartialEq)]
pub enum Cached<V> {
    /// The store had this value.
    Found(V),
    /// The store had nothing under this key.
    Missing,
}

/// Bounded TTL cache keyed by `K` (a key hash in practice).
#[derive(Debug)]
pub struct TtlCache<K, V> {
    entries: HashMap<K, (i64, Cached<V>)>,
    order: VecDeque<K>,
    capacity: usize,
}

impl<K: Eq + Hash + Clone, V: Clone> TtlCache<K, V> {
    /// A cache holding at most `capacity` entries (at least 1).
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        TtlCache { entries: HashMap::new(), order: VecDeque::new(), capacity }
    }

    /// The entry for `key` if it has not expired at `now_ms`.
    pub fn get(&self, key: &K, now_ms: i64) -> Option<Cached<V>> {
        self.get_with_expiry(key, now_ms).map(|(value, _)| value)
    }

    /// The entry for `key` if it has not expired at `now_ms`, with the time it expires.
    pub fn get_with_expiry(&self, key: &K, now_ms: i64) -> Option<(Cached<V>, i64)> {
        self.entries.get(key).filter(|(expires, _)| now_ms < *expires).map(|(expires, v)| (v.clone(), *expires))
    }

    /// The entry for `key`, expired or not (until it is evicted).
    pub fn peek(&self, key: &K) -> Option<&Cached<V>> {
        self.entries.get(key).map(|(_, value)| value)
    }

    /// Stores `value` for `ttl_ms` from `now_ms`. A zero TTL stores nothing.
    pub fn put(&mut self, key: K, value: Cached<V>, now_ms: i64, ttl_ms: i64) {
        if ttl_ms <= 0 {
            self.entries.remove(&key);
            return;
        }
        let expires = now_ms.saturating_add(ttl_ms);
        if let Some(slot) = self.entries.get_mut(&key) {
            *slot = (expires, value);
            return;
        }
        if self.entries.len() >= self.capacity {
            self.make_room(now_ms);
        }
        if self.order.len() >= self.capacity.saturating_mul(2) {
            self.compact_order();
        }
        self.order.push_back(key.clone());
        self.entries.insert(key, (expires, value));
    }

    /// Drops one key (used when a newer answer is known).
    pub fn remove(&mut self, key: &K) {
        self.entries.remove(key);
    }

    /// Number of entries held (including expired ones not yet evicted).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the cache is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Drops order slots of removed keys and duplicates left by remove-then-reinsert.
    fn compact_order(&mut self) {
        // A map to a number rather than a `HashSet`: the same type as [`InFlight`]'s map, so
        // the wasm holds one `HashMap` instance for both, not one more for a set.
        let mut seen: HashMap<K, i64> = HashMap::with_capacity(self.entries.len());
        let entries = &self.entries;
        self.order.retain(|k| entries.contains_key(k) && seen.insert(k.clone(), 0).is_none());
    }

    fn make_room(&mut self, now_ms: i64) {
        self.entries.retain(|_, (expires, _)| now_ms < *expires);
        self.compact_order();
        while self.entries.len() >= self.capacity {
            match self.order.pop_front() {
                Some(oldest) => {
                    self.entries.remove(&oldest);
                }
                None => break,
            }
        }
    }
}

/// Whether a found entry that expires at `expires_ms` should be re-read now, in the background,
/// while it is still served: in the last fifth of its `ttl_ms`. A key in steady use then never
/// expires, so no request waits for the store and no burst of them reads it at once; how stale
/// an answer can be stays bounded by the TTL as before.
pub fn refresh_due(expires_ms: i64, now_ms: i64, ttl_ms: i64) -> bool {
    expires_ms - now_ms <= ttl_ms / 5
}

/// Whether a cached record of revision `held` stays when a store read answers `read` (its
/// revision, or `None` for "no such key"): a read never replaces a newer revision, and a key
/// known to exist is not forgotten because an eventually consistent read has not seen it yet.
pub fn keep_held(held: u64, read: Option<u64>) -> bool {
    read.is_none_or(|read| read < held)
}

/// Which background jobs (a record re-read, a usage flush) are running, by key: data only,
/// never the job's I/O.
///
/// workerd forbids awaiting or resolving an I/O object (a KV read's promise) in another
/// request's context than the one that created it, so such work is never shared between
/// requests. What is shared is the fact that a job is running, so that concurrent requests
/// start one, not one each. A marker older than `abandon_after_ms` is treated as gone: the
/// request whose `wait_until` ran the job may have been cancelled before it could clear it.
#[derive(Debug)]
pub struct InFlight<K> {
    started: HashMap<K, i64>,
    abandon_after_ms: i64,
    capacity: usize,
}

impl<K: Eq + Hash + Clone> InFlight<K> {
    /// Markers held for at most `abandon_after_ms`; at most `capacity` at once.
    pub fn new(abandon_after_ms: i64, capacity: usize) -> Self {
        InFlight { started: HashMap::new(), abandon_after_ms, capacity: capacity.max(1) }
    }

    /// Marks the job `key` as started at `now_ms`; `false` (and nothing changes) when one
    /// is already running, or when too many are running to track another.
    pub fn try_start(&mut self, key: &K, now_ms: i64) -> bool {
        let abandon_after_ms = self.abandon_after_ms;
        let live = |started: i64| now_ms.saturating_sub(started) < abandon_after_ms;
        if self.started.get(key).is_some_and(|started| live(*started)) {
            return false;
        }
        if self.started.len() >= self.capacity {
            self.started.retain(|_, started| live(*started));
            if self.started.len() >= self.capacity {
                return false;
            }
        }
        self.started.insert(key.clone(), now_ms);
        true
    }

    /// The job `key` finished (or failed).
    pub fn finish(&mut self, key: &K) {
        self.started.remove(key);
    }

    /// Number of markers held.
    pub fn len(&self) -> usize {
        self.started.len()
    }

    /// Whether no marker is held.
    pub fn is_empty(&self) -> bool {
        self.started.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_store_read_never_replaces_a_newer_cached_revision() {
        let rows = [
            ("older read keeps the held record", 5, Some(4), true),
            ("same revision is adopted (refreshes the TTL)", 5, Some(5), false),
            ("newer read is adopted", 5, Some(6), false),
            ("a miss does not forget a key known to exist", 5, None, true),
        ];
        for (what, held, read, keep) in rows {
            assert_eq!(keep_held(held, read), keep, "{what}");
        }
    }

    #[test]
    fn one_refresh_per_key_at_a_time_and_abandoned_markers_expire() {
        let mut in_flight = InFlight::new(10_000, 100);
        assert!(in_flight.try_start(&"k", 0), "first request in the window starts the re-read");
        assert!(!in_flight.try_start(&"k", 1), "a second request does not start another");
        assert!(in_flight.try_start(&"j", 1), "other keys are independent");
        in_flight.finish(&"k");
        assert!(in_flight.try_start(&"k", 2), "after it finished, the next window may start one");
        assert!(!in_flight.try_start(&"k", 10_001));
        assert!(in_flight.try_start(&"k", 10_002), "a marker never cleared (cancelled request) is abandoned");
    }

    #[test]
    fn refresh_markers_stay_bounded() {
        let mut in_flight = InFlight::new(10_000, 3);
        for k in 0..3 {
            assert!(in_flight.try_start(&k, 0));
        }
        assert!(!in_flight.try_start(&3, 1), "full of live markers: no new one (the cache entry is still served)");
        assert_eq!(in_flight.len(), 3);
        assert!(in_flight.try_start(&3, 10_000), "abandoned markers make room");
        assert_eq!(in_flight.len(), 1);
    }

    #[test]
    fn hit_until_ttl_then_miss() {
        let mut cache = TtlCache::new(10);
        cache.put(1, Cached::Found("a"), 1_000, 30_000);
        assert_eq!(cache.get(&1, 1_000), Some(Cached::Found("a")));
        assert_eq!(cache.get(&1, 30_999), Some(Cached::Found("a")));
        assert_eq!(cache.get(&1, 31_000), None);
    }

    #[test]
    fn refresh_is_due_in_the_last_fifth_of_the_ttl() {
        let mut cache = TtlCache::new(10);
        cache.put(1, Cached::Found("a"), 0, 30_000);
        let (_, expires) = cache.get_with_expiry(&1, 0).unwrap();
        assert_eq!(expires, 30_000);
        assert!(!refresh_due(expires, 23_999, 30_000));
        assert!(refresh_due(expires, 24_000, 30_000));
        assert!(refresh_due(expires, 29_999, 30_000));
        assert_eq!(cache.get_with_expiry(&1, 30_000), None, "expired entries are not offered for refresh");
    }

    #[test]
    fn negative_entries_use_their_own_ttl() {
        let mut cache: TtlCache<u8, &str> = TtlCache::new(10);
        cache.put(7, Cached::Missing, 0, 5_000);
        assert_eq!(cache.get(&7, 4_999), Some(Cached::Missing));
        assert_eq!(cache.get(&7, 5_000), None);
        assert_eq!(cache.peek(&7), Some(&Cached::Missing), "an expired entry can still be looked at until evicted");
        assert_eq!(cache.peek(&8), None);
    }

    #[test]
    fn size_stays_bounded_and_evicts_oldest_first() {
        let mut cache = TtlCache::new(3);
        for k in 0..3 {
            cache.put(k, Cached::Found(k), 0, 60_000);
        }
        cache.put(3, Cached::Found(3), 1, 60_000);
        assert_eq!(cache.len(), 3);
        assert_eq!(cache.get(&0, 1), None, "oldest evicted");
        assert!(cache.get(&3, 1).is_some());
        for k in 100..10_000 {
            cache.put(k, Cached::Missing, 2, 60_000);
        }
        assert_eq!(cache.len(), 3);
    }

    #[test]
    fn expired_entries_are_evicted_before_live_ones() {
        let mut cache = TtlCache::new(2);
        cache.put("old-live", Cached::Found(1), 0, 100_000);
        cache.put("short", Cached::Found(2), 0, 10);
        cache.put("new", Cached::Found(3), 50, 100_000);
        assert!(cache.get(&"old-live", 50).is_some(), "live entry kept");
        assert!(cache.get(&"new", 50).is_some());
    }

    #[test]
    fn order_bookkeeping_stays_bounded_under_remove_and_reinsert() {
        let mut cache = TtlCache::new(4);
        for round in 0..1_000 {
            cache.put(round % 3, Cached::Found(round), 0, 60_000);
            cache.remove(&(round % 3));
        }
        assert!(cache.order.len() <= 8);
    }

    #[test]
    fn refresh_replaces_value_and_zero_ttl_removes() {
        let mut cache = TtlCache::new(2);
        cache.put("k", Cached::Found(1), 0, 10);
        cache.put("k", Cached::Found(2), 5, 10);
        assert_eq!(cache.get(&"k", 14), Some(Cached::Found(2)));
        assert_eq!(cache.len(), 1);
        cache.put("k", Cached::Found(3), 5, 0);
        assert_eq!(cache.get(&"k", 5), None);
        cache.put("j", Cached::Found(1), 0, 10);
        cache.remove(&"j");
        assert!(cache.is_empty());
    }
}
