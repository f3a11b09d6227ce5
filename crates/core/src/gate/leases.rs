//! The isolate's limiter leases ([`crate::limit::lease::Lease`]), one per `exact`-mode key
//! family it serves, bounded in memory. Pure.
//!
//! - A lease's revision is its family's **epoch** at the limiter: the limiter starts a new one
//!   whenever the admin API changes any key of the family (and when it restarts). A renewal
//!   under an older epoch is answered `record_changed`: the lease drops its units.
//! - A key may use its family's lease only once one of its own calls, under the lease's epoch,
//!   found its record current: the limiter checks the key's record revision on every call
//!   ([`LimiterOp::Lease`] carries it). The lease remembers those (key, revision) pairs for its
//!   epoch; a key not among them renews (or, while a renewal is in flight, asks for itself).
//! - A lease whose limits changed in this isolate's config or record starts over.
//! - At [`MAX_LEASES`] families, the least recently used lease without a renewal in flight is
//!   dropped. What it holds is not given back (that would cost a call and code): its units stay
//!   debited, and the limiter forgets the grant [`FORGET_AFTER_MS`] after it expired.
//! - A list, the family in use swapped to the front (roughly most recently used first): a hot
//!   family is found at once, and the code is smaller in wasm than a hash map's.
//! - Answers to early renewals come back through [`Leases::answered`]; no request waits for
//!   another request's call.

use crate::limit::algorithm::{Decision, LimitSpec};
#[cfg(doc)]
use crate::limit::lease::FORGET_AFTER_MS;
use crate::limit::lease::{Lease, Renewal, Renewed};
use crate::limit::protocol::{LimiterOp, LimiterReply};
use crate::record::KeyRecord;

/// Families an isolate holds leases for.
pub const MAX_LEASES: usize = 256;

/// Keys (with their record revisions) a lease remembers as confirmed under its epoch.
pub const MAX_CONFIRMED: usize = 16;

/// One family's lease and what its requests are answered with.
pub struct LeaseEntry {
    pub lease: Lease,
    specs: Vec<LimitSpec>,
    /// (key id, record revision) pairs the limiter found current under the lease's epoch.
    confirmed: Vec<(String, u64)>,
    /// The limits' latest decision the limiter sent (rate-limit headers, local refusals).
    pub decision: Option<Decision>,
}

impl LeaseEntry {
    /// Whether `record` may use this lease (its revision was found current under the epoch).
    pub fn confirmed(&self, record: &KeyRecord) -> bool {
        self.confirmed.iter().any(|(id, revision)| *id == record.id && *revision == record.revision)
    }
}

/// The leases of one isolate.
pub struct Leases {
    isolate_id: u64,
    /// Family id first; the last used first, roughly (swapped to the front).
    families: Vec<(String, LeaseEntry)>,
    capacity: usize,
}

impl Default for Leases {
    fn default() -> Self {
        Leases::new(MAX_LEASES)
    }
}

impl Leases {
    /// At most `capacity` families (at least 1).
    pub fn new(capacity: usize) -> Self {
        Leases { isolate_id: 1, families: Vec::new(), capacity: capacity.max(1) }
    }

    /// Sets this isolate's random id (the worker draws it once per isolate): the limiter knows
    /// the isolate's lease of each family by it.
    pub fn set_isolate_id(&mut self, id: u64) {
        // 0 is a hit's lease id (`protocol::HIT`).
        self.isolate_id = id.max(1);
    }

    /// The lease of `record`'s family under `specs` (made, or started over, as needed).
    pub fn entry(&mut self, record: &KeyRecord, specs: &[LimitSpec], lease_ms: u64) -> &mut LeaseEntry {
        let family = record.family_id();
        let fresh = || LeaseEntry { lease: Lease::new(lease_ms, 0), specs: specs.to_vec(), confirmed: Vec::new(), decision: None };
        match self.families.iter().position(|(f, _)| f == family) {
            Some(at) => self.families.swap(0, at),
            None => {
                if self.families.len() >= self.capacity {
                    // The last without a renewal in flight (else the last): used least recently, roughly.
                    let at = self.families.iter().rposition(|(_, e)| !e.lease.renewing()).unwrap_or(self.families.len() - 1);
                    self.families.remove(at);
                }
                self.families.insert(0, (family.to_string(), fresh()));
            }
        }
        let entry = &mut self.families[0].1;
        if entry.specs != specs && !entry.lease.renewing() {
            *entry = fresh();
        }
        entry
    }

    /// The limiter message for `renewal` of the lease, sent by a request of `record`.
    pub fn op(&self, record: &KeyRecord, renewal: Renewal, specs: &[LimitSpec]) -> LimiterOp {
        LimiterOp::Lease(record.id.clone(), record.revision, self.isolate_id, renewal, specs.to_vec())
    }

    /// The answer to a call about `record`'s family: a renewal of its lease (`renewal`; its
    /// request waits for it when `waiting`), or a hit. `None`: the call failed.
    pub fn answered(&mut self, record: &KeyRecord, reply: Option<&LimiterReply>, renewal: bool, waiting: bool) -> Renewed {
        let Some((_, entry)) = self.families.iter_mut().find(|(f, _)| f == record.family_id()) else {
            return if waiting { Renewed::Failed } else { Renewed::Background };
        };
        let epoch = entry.lease.revision();
        let renewed = match reply {
            Some(LimiterReply::Lease(grant)) => {
                if grant.decision.is_some() {
                    entry.decision.clone_from(&grant.decision);
                }
                match renewal {
                    true => entry.lease.renewed(Some(grant), waiting),
                    false => {
                        entry.lease.note_remaining(grant.remaining);
                        Renewed::Background
                    }
                }
            }
            // The key's record is stale, not the lease: nothing was granted.
            _ if renewal => entry.lease.renewed(None, waiting),
            _ => Renewed::Background,
        };
        if entry.lease.revision() != epoch {
            entry.confirmed.clear();
        }
        if let Some(LimiterReply::Lease(grant)) = reply {
            // The limiter found this key's record current under the lease's epoch.
            if !grant.record_changed && grant.revision == entry.lease.revision() && !entry.confirmed(record) {
                if entry.confirmed.len() >= MAX_CONFIRMED {
                    entry.confirmed.clear();
                }
                entry.confirmed.push((record.id.clone(), record.revision));
            }
        }
        renewed
    }

    /// Units `record`'s family lease holds.
    pub fn left(&self, record: &KeyRecord) -> u64 {
        self.families.iter().find(|(f, _)| f == record.family_id()).map_or(0, |(_, e)| e.lease.left())
    }

    /// Number of families held.
    pub fn len(&self) -> usize {
        self.families.len()
    }

    /// Whether no lease is held.
    pub fn is_empty(&self) -> bool {
        self.families.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limit::lease::{Admit, Grant, LeaseLedger};

    fn record(id: &str, family: Option<&str>, revision: u64) -> KeyRecord {
        let mut record: KeyRecord = serde_json::from_str(crate::record::tests::sample_json()).unwrap();
        record.id = id.into();
        record.family = family.map(String::from);
        record.revision = revision;
        record
    }

    const T0: i64 = 1_800_000_000_000;

    #[test]
    fn a_key_uses_its_family_lease_once_its_own_call_confirmed_its_record() {
        let specs = [LimitSpec::new("minute", 100, 60)];
        let mut ledger = LeaseLedger::new(1_000, 7, specs.to_vec());
        let mut leases = Leases::default();
        leases.set_isolate_id(42);
        let (old, rolled) = (record("key_a", None, 1), record("key_b", Some("key_a"), 1));
        let entry = leases.entry(&old, &specs, 1_000);
        assert!(!entry.confirmed(&old));
        let Admit::Renew(renewal) = entry.lease.admit(T0) else { panic!("an empty lease renews") };
        let grant = ledger.grant(42, "key_a", &renewal, T0);
        assert_eq!(leases.answered(&old, Some(&LimiterReply::Lease(grant)), true, true), Renewed::Admitted);
        assert!(leases.entry(&old, &specs, 1_000).confirmed(&old), "epoch 7 learned, key_a confirmed");
        let entry = leases.entry(&rolled, &specs, 1_000);
        assert!(!entry.confirmed(&rolled), "the rolled key shares the lease once confirmed itself");
        let hit = ledger.hit("key_b", 7, T0, 1);
        leases.answered(&rolled, Some(&LimiterReply::Lease(hit)), false, true);
        assert!(leases.entry(&rolled, &specs, 1_000).confirmed(&rolled));
        assert!(!leases.entry(&record("key_b", Some("key_a"), 2), &specs, 1_000).confirmed(&record("key_b", Some("key_a"), 2)));
        // An admin change: a new epoch; the next renewal drops the units and forgets the keys.
        ledger.change(8, specs.to_vec(), T0);
        let entry = leases.entry(&old, &specs, 1_000);
        let Admit::Renew(renewal) = entry.lease.admit(T0 + 2_000) else { panic!("expired: renews") };
        let grant = ledger.grant(42, "key_a", &renewal, T0 + 2_000);
        assert!(grant.record_changed);
        assert_eq!(leases.answered(&old, Some(&LimiterReply::Lease(grant)), true, true), Renewed::Stale);
        let entry = leases.entry(&old, &specs, 1_000);
        assert_eq!(entry.lease.revision(), 8);
        assert!(!entry.confirmed(&old) && !entry.confirmed(&rolled));
    }

    #[test]
    fn leases_are_bounded_and_other_limits_start_over() {
        let specs = [LimitSpec::new("minute", 100, 60)];
        let mut leases = Leases::new(2);
        for family in ["key_a", "key_b", "key_c"] {
            leases.entry(&record(family, None, 1), &specs, 1_000);
        }
        assert_eq!(leases.len(), 2, "bounded");
        assert!(leases.families.iter().all(|(f, _)| f != "key_a"), "key_a, the least recently used, went");
        let grant = Grant { allowed: 10, record_changed: false, ..Grant::changed(0) };
        let entry = leases.entry(&record("key_b", None, 1), &specs, 1_000);
        assert!(matches!(entry.lease.admit(T0), Admit::Renew(_)));
        entry.lease.renewed(Some(&grant), true);
        assert_eq!(leases.left(&record("key_b", None, 1)), 9);
        let raised = [LimitSpec::new("minute", 1_000, 60)];
        assert_eq!(leases.entry(&record("key_b", None, 1), &raised, 1_000).lease.left(), 0, "other limits");
    }
}
