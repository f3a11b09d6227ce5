//! The isolate's limiter leases ([`crate::limit::lease::Lease`]), one per `exact`-mode key it
//! serves, bounded in memory. Pure, clock passed in.
//!
//! - Keyed by key id, not family: each key's record has its own revision, and usage is counted
//!   per key. The limiter tells an isolate's leases apart by a lease id, the isolate's random
//!   id mixed with the key id ([`Leases::lease_id`]).
//! - A lease whose key's limits changed in this isolate's config or record starts over.
//! - At [`MAX_LEASES`] keys, the least recently used lease without a renewal in flight is
//!   dropped. What it holds is not given back (that would cost a call and code): its units stay
//!   debited, and the limiter forgets the grant [`FORGET_AFTER_MS`] after it expired.
//! - A list, the key in use swapped to the front (roughly most recently used first): a hot key
//!   is found at once, and the code is smaller in wasm than a hash map's.
//! - Answers to early renewals come back through [`Leases::answered`]; no request waits for
//!   another request's call.

use crate::limit::algorithm::{Decision, LimitSpec};
#[cfg(doc)]
use crate::limit::lease::FORGET_AFTER_MS;
use crate::limit::lease::{Grant, Lease, Renewal, Renewed};
use crate::limit::protocol::{LimiterOp, LimiterReply};
use crate::record::KeyRecord;

/// Keys an isolate holds leases for.
pub const MAX_LEASES: usize = 256;

/// One key's lease and what its requests are answered with.
pub struct LeaseEntry {
    pub lease: Lease,
    specs: Vec<LimitSpec>,
    /// The limits' latest decision the limiter sent (rate-limit headers, local refusals).
    pub decision: Option<Decision>,
}

/// The leases of one isolate.
pub struct Leases {
    isolate_id: u64,
    /// The last used first, roughly (swapped to the front).
    keys: Vec<(String, LeaseEntry)>,
    capacity: usize,
}

impl Default for Leases {
    fn default() -> Self {
        Leases::new(MAX_LEASES)
    }
}

impl Leases {
    /// At most `capacity` keys (at least 1).
    pub fn new(capacity: usize) -> Self {
        Leases { isolate_id: 0, keys: Vec::new(), capacity: capacity.max(1) }
    }

    /// Sets this isolate's random id (the worker draws it once per isolate).
    pub fn set_isolate_id(&mut self, id: u64) {
        self.isolate_id = id;
    }

    /// The id the limiter knows `key_id`'s lease of this isolate by (FNV-1a of the key id,
    /// mixed into the isolate id).
    pub fn lease_id(&self, key_id: &str) -> u64 {
        let hash = key_id.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3));
        self.isolate_id ^ hash
    }

    /// The lease of `record`'s key under `specs` (made, or started over, as needed).
    pub fn entry(&mut self, record: &KeyRecord, specs: &[LimitSpec], lease_ms: u64) -> &mut LeaseEntry {
        let fresh = |record: &KeyRecord| LeaseEntry { lease: Lease::new(lease_ms, record.revision), specs: specs.to_vec(), decision: None };
        match self.keys.iter().position(|(key_id, _)| *key_id == record.id) {
            Some(at) => self.keys.swap(0, at),
            None => {
                if self.keys.len() >= self.capacity {
                    self.make_room();
                }
                self.keys.insert(0, (record.id.clone(), fresh(record)));
            }
        }
        let entry = &mut self.keys[0].1;
        if entry.specs != specs && !entry.lease.renewing() {
            *entry = fresh(record);
        }
        entry.lease.adopt(record.revision);
        entry
    }

    /// The limiter message for `renewal` of `record`'s lease.
    pub fn op(&self, record: &KeyRecord, renewal: Renewal, specs: &[LimitSpec]) -> LimiterOp {
        LimiterOp::Lease(record.id.clone(), self.lease_id(&record.id), renewal, specs.to_vec())
    }

    /// The answer to a renewal of `key_id`'s lease; `waiting`: the request that sent it waits
    /// for it. `None`: the call failed.
    pub fn answered(&mut self, key_id: &str, reply: Option<&LimiterReply>, waiting: bool) -> Renewed {
        let Some((_, entry)) = self.keys.iter_mut().find(|(k, _)| k == key_id) else {
            return if waiting { Renewed::Failed } else { Renewed::Background };
        };
        match reply {
            Some(LimiterReply::Lease(grant)) => {
                if grant.decision.is_some() {
                    entry.decision.clone_from(&grant.decision);
                }
                entry.lease.renewed(Some(grant), waiting)
            }
            Some(LimiterReply::Stale(record)) => entry.lease.renewed(Some(&Grant::changed(record.revision)), waiting),
            _ => entry.lease.renewed(None, waiting),
        }
    }

    /// Units `key_id`'s lease holds.
    pub fn left(&self, key_id: &str) -> u64 {
        self.keys.iter().find(|(k, _)| k == key_id).map_or(0, |(_, e)| e.lease.left())
    }

    /// Number of keys held.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether no lease is held.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    fn make_room(&mut self) {
        // The last without a renewal in flight (else the last): used least recently, roughly.
        let at = self.keys.iter().rposition(|(_, e)| !e.lease.renewing()).unwrap_or(self.keys.len() - 1);
        self.keys.remove(at);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limit::lease::{Admit, LeaseLedger};

    const T0: i64 = 1_800_000_000_000;

    fn record(id: &str, revision: u64) -> KeyRecord {
        let mut record: KeyRecord = serde_json::from_str(crate::record::tests::sample_json()).unwrap();
        record.id = id.into();
        record.family = None;
        record.revision = revision;
        record
    }

    #[test]
    fn leases_are_bounded_and_the_least_recently_used_goes() {
        let specs = [LimitSpec::new("minute", 100, 60)];
        let mut ledger = LeaseLedger::new(1_000, 1, specs.to_vec());
        let mut leases = Leases::new(2);
        leases.set_isolate_id(42);
        for (n, id) in ["key_a", "key_b", "key_c"].into_iter().enumerate() {
            let now = T0 + n as i64;
            let record = record(id, 1);
            let entry = leases.entry(&record, &specs, 1_000);
            let Admit::Renew(renewal) = entry.lease.admit(now) else { panic!("an empty lease renews") };
            let grant = ledger.grant(leases.lease_id(id), id, &renewal, now);
            assert_eq!(leases.answered(id, Some(&LimiterReply::Lease(grant)), true), Renewed::Admitted);
        }
        assert_eq!(leases.len(), 2, "bounded");
        assert!(leases.keys.iter().all(|(key_id, _)| key_id != "key_a"), "key_a, the least recently used, went");
        assert_ne!(leases.lease_id("key_a"), leases.lease_id("key_b"), "one lease per key at the limiter");
    }

    #[test]
    fn other_limits_start_the_lease_over_and_a_newer_record_drops_its_units() {
        let specs = [LimitSpec::new("minute", 100, 60)];
        let mut leases = Leases::default();
        let grant = Grant { allowed: 10, ..Grant::changed(1) };
        let grant = Grant { record_changed: false, ..grant };
        let entry = leases.entry(&record("key_a", 1), &specs, 1_000);
        assert!(matches!(entry.lease.admit(T0), Admit::Renew(_)));
        entry.lease.renewed(Some(&grant), true);
        assert_eq!(leases.entry(&record("key_a", 1), &specs, 1_000).lease.left(), 9);
        let raised = [LimitSpec::new("minute", 1_000, 60)];
        assert_eq!(leases.entry(&record("key_a", 1), &raised, 1_000).lease.left(), 0, "other limits");
        let entry = leases.entry(&record("key_a", 1), &raised, 1_000);
        assert!(matches!(entry.lease.admit(T0), Admit::Renew(_)));
        entry.lease.renewed(Some(&grant), true);
        assert_eq!(leases.entry(&record("key_a", 2), &raised, 1_000).lease.left(), 0, "a newer record");
        assert_eq!(leases.entry(&record("key_a", 2), &raised, 1_000).lease.revision(), 2);
    }
}
