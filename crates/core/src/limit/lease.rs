//! Limiter leases (pure, clock passed in): an isolate admits `exact`-mode requests locally from a
//! grant its key family's limiter debited at once, instead of asking the limiter per request.
//!
//! Two halves, each a plain state machine (the design, bounds and simulation: `docs/leases.md`):
//! - [`LeaseLedger`], the limiter's side (one per key family, what the `KeyLimiter` Durable
//!   Object holds): [`LeaseLedger::grant`] first takes back the isolate's previous grant
//!   (re-crediting its unused part where that is safe), then debits a new grant of up to `wanted`
//!   requests from the limits, exactly as that many [`decide`] calls at one instant would.
//! - [`Lease`], an isolate's side (one per key family it serves): [`Lease::admit`] admits from
//!   the grant until it is used up or expires, then asks for a [`Renewal`]; [`Lease::settle`]
//!   takes the limiter's [`Grant`].
//!
//! Invariants:
//! - **Never over-admit**: every admitted request was debited from the limits first; an unused
//!   unit is re-credited only to the quota window it was debited from, and only once the isolate
//!   has said it will not use it; a rate's only while that grant is still its last debit (see
//!   [`LeaseLedger::grant`]).
//! - **Bounded change latency**: a grant is valid until `sent_at + lease_ms` on the isolate's own
//!   clock, `sent_at` being when it asked; a grant made after an admin change carries the new
//!   revision. So no request is admitted from a grant of an older revision later than
//!   `max(lease_ms, D)` after the change reached the limiter, `D` being the limiter→isolate
//!   reply delay (the requests that waited for a reply are decided by it, as today's `Hit` is).
//! - `lease_ms = 0` is today's behaviour: one limiter call per request, each granted 0 or 1.

use std::collections::BTreeMap;

use super::algorithm::{decide, LimitSpec, LimitState};

/// The lease length keygate recommends (`docs/leases.md` says why): a revoke or any admin
/// change is enforced everywhere within about a second.
pub const DEFAULT_LEASE_MS: u64 = 1_000;

/// The largest grant a ledger makes (and an isolate asks for).
pub const MAX_GRANT: u64 = 256;

/// How long past its expiry a ledger keeps an outstanding grant whose isolate has not come back
/// (an evicted isolate never does); after that the grant is forgotten, and stays debited.
pub const FORGET_AFTER_MS: i64 = 60_000;

/// A duration in ms as a signed offset, saturating (a `LEASE_MS` out of range cannot wrap).
fn millis(duration_ms: u64) -> i64 {
    i64::try_from(duration_ms).unwrap_or(i64::MAX)
}

/// What an isolate sends to renew its lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Renewal {
    /// The record revision the isolate decides with.
    pub revision_seen: u64,
    /// Requests admitted from its previous grant (the rest is returned).
    pub used: u64,
    /// Requests it refused locally since its last renewal (counted in usage).
    pub refused: u64,
    /// How many requests it would like granted (≥ `waiting`).
    pub wanted: u64,
    /// Requests waiting for this answer (decided by it; the ones it cannot grant are refused).
    pub waiting: u64,
}

/// The limiter's answer to a [`Renewal`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grant {
    /// The newest record revision the limiter knows.
    pub revision: u64,
    /// The isolate's record is older than `revision`: nothing granted; adopt the new record
    /// and ask again.
    pub record_changed: bool,
    /// Requests granted (debited from every limit already).
    pub allowed: u64,
    /// The limits could not grant all that was asked (the grant stopped at a refusal).
    pub exhausted: bool,
    /// Requests the limits still allow right after this grant (fewest over the limits;
    /// `u64::MAX` without limits).
    pub remaining: u64,
    /// When `exhausted`: ms until the refusing limit frees a request.
    pub retry_after_ms: u64,
    /// The limiter's `lease_ms`: how long the grant may be used, from when it was asked for.
    pub valid_for_ms: u64,
}

/// A grant the ledger made and has not had back.
#[derive(Debug, Clone)]
struct Outstanding {
    allowed: u64,
    granted_at_ms: i64,
    revision: u64,
    /// Each limit's state mark before the grant (a rate's TAT, µs).
    marks_before: Vec<i64>,
    /// Each limit's state mark right after the grant: a rate's TAT, a quota's window start.
    marks: Vec<i64>,
}

/// Allowed and refused requests of one key, as the ledger has counted them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LeaseUsage {
    pub allowed: u64,
    pub refused: u64,
}

/// The limiter's side of leases for one key family: its limits' state, the newest revision and
/// the grants isolates hold.
#[derive(Debug, Clone)]
pub struct LeaseLedger {
    lease_ms: u64,
    revision: u64,
    specs: Vec<LimitSpec>,
    states: Vec<LimitState>,
    outstanding: BTreeMap<u64, Outstanding>,
    usage: BTreeMap<String, LeaseUsage>,
}

impl LeaseLedger {
    /// A ledger granting leases of `lease_ms` against `specs`, knowing record `revision`.
    pub fn new(lease_ms: u64, revision: u64, specs: Vec<LimitSpec>) -> LeaseLedger {
        LeaseLedger { lease_ms, revision, specs, states: Vec::new(), outstanding: BTreeMap::new(), usage: BTreeMap::new() }
    }

    /// The newest revision this ledger knows.
    pub fn revision(&self) -> u64 {
        self.revision
    }

    /// Usage counted for `key_id`.
    pub fn usage(&self, key_id: &str) -> LeaseUsage {
        self.usage.get(key_id).copied().unwrap_or_default()
    }

    /// An admin change (the registry tells the limiter before KV is written): every later
    /// grant answers `revision`. Limits that changed restart their state, as a `Hit` with new
    /// specs would; grants made under the old revision are never re-credited.
    pub fn change(&mut self, revision: u64, specs: Vec<LimitSpec>) {
        if specs != self.specs {
            self.states.clear();
        }
        self.revision = self.revision.max(revision);
        self.specs = specs;
    }

    /// Takes back `isolate_id`'s previous grant, counts its usage, then grants up to
    /// `renewal.wanted` requests at `now_ms`.
    ///
    /// Re-crediting: a quota gets its unused units back when they were debited in the window it
    /// is still in (a unit is one count in one window; giving it back cannot let the window
    /// count more than its limit). A rate (GCRA) gets them back only when this grant is still
    /// its last debit: its state is one theoretical arrival time (TAT), and later debits may
    /// have been made after the TAT fell behind the clock and was clamped up to it; pulling the
    /// TAT back by the unused intervals then would create capacity the rate never had (a grant
    /// of 5 at 0 s on 10 per 10 s, idle until 10 s, a burst of 10 by others, then 5 returned:
    /// 15 at one instant). When the grant is the last debit, the TAT minus the unused intervals
    /// is exactly the state had only the used units been debited. Otherwise the unused units
    /// are lost for their refill time (`unused · W/N`), which small grants near exhaustion keep
    /// small.
    pub fn grant(&mut self, isolate_id: u64, key_id: &str, renewal: &Renewal, now_ms: i64) -> Grant {
        self.give_back(isolate_id, key_id, renewal);
        let lease_ms = millis(self.lease_ms);
        self.outstanding.retain(|_, grant| grant.granted_at_ms.saturating_add(lease_ms).saturating_add(FORGET_AFTER_MS) > now_ms);
        let mut grant = Grant {
            revision: self.revision,
            record_changed: renewal.revision_seen != self.revision,
            allowed: 0,
            exhausted: false,
            remaining: u64::MAX,
            retry_after_ms: 0,
            valid_for_ms: self.lease_ms,
        };
        if grant.record_changed {
            return grant;
        }
        let others = self.outstanding.values().filter(|g| g.granted_at_ms.saturating_add(lease_ms) > now_ms).count() as u64;
        // Without limits nothing can be stranded: a lease is only the revision, granted in full.
        let wanted = if self.specs.is_empty() && self.lease_ms > 0 { MAX_GRANT } else { renewal.wanted.max(renewal.waiting) };
        let mut target = wanted.clamp(1, MAX_GRANT);
        self.states.resize(self.specs.len(), LimitState::default());
        let marks_before = self.states.iter().map(|s| s.mark).collect();
        while grant.allowed < target {
            let decision = decide(&self.specs, &mut self.states, now_ms);
            if !decision.allowed {
                grant.exhausted = true;
                grant.remaining = 0;
                grant.retry_after_ms = decision.refusal().map_or(1, |l| l.retry_after_ms);
                break;
            }
            grant.remaining = decision.limits.iter().map(|l| l.remaining).min().unwrap_or(u64::MAX);
            if grant.allowed == 0 {
                // A fair share of what is left, so the last requests of a limit are not
                // stranded in one isolate; never below what is waiting now.
                let share = grant.remaining.saturating_add(1) / (others + 1);
                target = target.min(share.max(renewal.waiting).max(1));
            }
            grant.allowed += 1;
        }
        let usage = self.usage.entry(key_id.to_string()).or_default();
        usage.allowed += grant.allowed;
        if grant.exhausted {
            usage.refused += renewal.waiting.saturating_sub(grant.allowed);
        }
        if self.lease_ms > 0 && grant.allowed > 0 {
            let marks = self.states.iter().map(|s| s.mark).collect();
            let outstanding = Outstanding { allowed: grant.allowed, granted_at_ms: now_ms, revision: self.revision, marks_before, marks };
            self.outstanding.insert(isolate_id, outstanding);
        }
        grant
    }

    /// Takes back `isolate_id`'s grant and counts the usage `report` carries, granting nothing
    /// (what [`LeaseLedger::grant`] does first; alone, for an isolate that stops using its
    /// lease, [`Lease::surrender`]).
    pub fn give_back(&mut self, isolate_id: u64, key_id: &str, report: &Renewal) {
        let usage = self.usage.entry(key_id.to_string()).or_default();
        usage.refused += report.refused;
        if let Some(previous) = self.outstanding.remove(&isolate_id) {
            let unused = previous.allowed.saturating_sub(report.used);
            usage.allowed = usage.allowed.saturating_sub(unused);
            if previous.revision == self.revision {
                self.recredit(&previous, unused);
            }
        }
    }

    /// Gives `unused` units of `previous` back where that cannot exceed a limit (see
    /// [`LeaseLedger::grant`]).
    fn recredit(&mut self, previous: &Outstanding, unused: u64) {
        if unused == 0 || previous.allowed == 0 {
            return;
        }
        let limits = self.specs.iter().zip(self.states.iter_mut()).zip(previous.marks_before.iter().zip(&previous.marks));
        for ((spec, state), (before, after)) in limits {
            if state.mark != *after {
                continue; // another window (quota), or debited since (rate)
            }
            if spec.is_quota() {
                state.count = state.count.saturating_sub(unused);
            } else {
                // The grant moved the TAT from max(before, granted_at) by `allowed` intervals.
                let start = (*before).max(previous.granted_at_ms.saturating_mul(1000));
                let interval = (after - start) / previous.allowed as i64;
                state.mark = after - interval * unused.min(previous.allowed) as i64;
            }
        }
    }
}

/// What an isolate does with one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    /// Admitted from the lease.
    Yes,
    /// Refused locally: the limiter said the limits are exhausted for this long still.
    No { retry_after_ms: u64 },
    /// Send this renewal to the limiter; this request waits for [`Lease::settle`].
    Renew(Renewal),
    /// A renewal is in flight; this request waits for [`Lease::settle`].
    Wait,
}

/// What a [`Grant`] decided for the requests that waited for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Settled {
    /// Waiting requests admitted.
    pub admitted: u64,
    /// Waiting requests refused (the limits are exhausted).
    pub refused: u64,
    /// Waiting requests to check again with the newer record (`record_changed`).
    pub stale: u64,
    /// Send this renewal for requests still waiting (they wait for the next `settle`).
    pub renew: Option<Renewal>,
}

/// A renewal on its way.
#[derive(Debug, Clone, Copy)]
struct InFlight {
    sent_at_ms: i64,
    waiting: u64,
}

/// An isolate's lease for one key family.
#[derive(Debug, Clone)]
pub struct Lease {
    lease_ms: u64,
    revision: u64,
    /// Size of the current grant.
    granted: u64,
    /// Units of it not yet used.
    left: u64,
    /// Units of it used.
    used: u64,
    /// Local refusals not yet reported.
    refused: u64,
    expires_at_ms: i64,
    blocked_until_ms: i64,
    /// What the limiter said remains after the current grant.
    remaining: u64,
    wanted: u64,
    in_flight: Option<InFlight>,
    /// Requests that arrived while a renewal was in flight.
    late_waiting: u64,
}

impl Lease {
    /// A lease with nothing granted yet, for a record of `revision`.
    pub fn new(lease_ms: u64, revision: u64) -> Lease {
        Lease {
            lease_ms,
            revision,
            granted: 0,
            left: 0,
            used: 0,
            refused: 0,
            expires_at_ms: i64::MIN,
            blocked_until_ms: i64::MIN,
            remaining: u64::MAX,
            wanted: 1,
            in_flight: None,
            late_waiting: 0,
        }
    }

    /// The record revision this lease decides with.
    pub fn revision(&self) -> u64 {
        self.revision
    }

    /// One request at `now_ms` (the isolate's clock).
    pub fn admit(&mut self, now_ms: i64) -> Admit {
        if self.lease_ms == 0 {
            // Today's behaviour: every request asks, for itself alone.
            let refused = std::mem::take(&mut self.refused);
            return Admit::Renew(Renewal { revision_seen: self.revision, used: 0, refused, wanted: 1, waiting: 1 });
        }
        if self.in_flight.is_some() {
            self.late_waiting += 1;
            return Admit::Wait;
        }
        if self.left > 0 && now_ms < self.expires_at_ms {
            self.left -= 1;
            self.used += 1;
            return Admit::Yes;
        }
        if now_ms < self.blocked_until_ms.min(self.expires_at_ms) {
            self.refused += 1;
            return Admit::No { retry_after_ms: (self.blocked_until_ms - now_ms) as u64 };
        }
        self.wanted = if self.granted > 0 && self.left == 0 && now_ms < self.expires_at_ms {
            // Used up before it expired: the isolate keeps up, ask for more.
            (self.granted * 2).min(MAX_GRANT)
        } else {
            self.used.max(1)
        };
        Admit::Renew(self.renewal(now_ms, 1))
    }

    /// Starts a renewal for `waiting` requests: the current grant is surrendered.
    fn renewal(&mut self, now_ms: i64, waiting: u64) -> Renewal {
        let wanted = self.wanted.min(self.remaining.max(1)).max(waiting).clamp(1, MAX_GRANT);
        let renewal =
            Renewal { revision_seen: self.revision, used: self.used, refused: std::mem::take(&mut self.refused), wanted, waiting };
        self.in_flight = Some(InFlight { sent_at_ms: now_ms, waiting });
        self.granted = 0;
        self.left = 0;
        self.used = 0;
        renewal
    }

    /// Stops using the current grant and reports it (what it used, the refusals not yet
    /// reported), for [`LeaseLedger::give_back`]; `None` while a renewal is in flight (its
    /// answer will carry the grant's fate).
    pub fn surrender(&mut self) -> Option<Renewal> {
        if self.in_flight.is_some() {
            return None;
        }
        let report =
            Renewal { revision_seen: self.revision, used: self.used, refused: std::mem::take(&mut self.refused), wanted: 0, waiting: 0 };
        self.granted = 0;
        self.left = 0;
        self.used = 0;
        Some(report)
    }

    /// The limiter's answer to the renewal in flight (with `lease_ms = 0`: to the one request
    /// that asked), at `now_ms`.
    pub fn settle(&mut self, grant: &Grant, now_ms: i64) -> Settled {
        if self.lease_ms == 0 {
            return match grant {
                g if g.record_changed => {
                    self.revision = g.revision;
                    Settled { stale: 1, ..Settled::default() }
                }
                g if g.allowed > 0 => Settled { admitted: 1, ..Settled::default() },
                _ => Settled { refused: 1, ..Settled::default() },
            };
        }
        let Some(in_flight) = self.in_flight.take() else {
            return Settled::default();
        };
        let late = std::mem::take(&mut self.late_waiting);
        if grant.record_changed {
            self.revision = grant.revision;
            self.wanted = 1;
            self.remaining = u64::MAX;
            self.blocked_until_ms = i64::MIN;
            return Settled { stale: in_flight.waiting + late, ..Settled::default() };
        }
        let admitted_first = grant.allowed.min(in_flight.waiting);
        let refused_first = if grant.exhausted { in_flight.waiting - admitted_first } else { 0 };
        let mut still_waiting = late + in_flight.waiting - admitted_first - refused_first;
        let admitted_late = (grant.allowed - admitted_first).min(still_waiting);
        still_waiting -= admitted_late;
        self.granted = grant.allowed;
        self.used = admitted_first + admitted_late;
        self.left = grant.allowed - self.used;
        self.expires_at_ms = in_flight.sent_at_ms.saturating_add(millis(self.lease_ms.min(grant.valid_for_ms)));
        self.remaining = grant.remaining;
        // From when it asked, not when the answer came: the limit frees a request at the
        // limiter's instant plus the wait, never earlier, so refusing before then is exact.
        self.blocked_until_ms = if grant.exhausted { in_flight.sent_at_ms.saturating_add(millis(grant.retry_after_ms)) } else { i64::MIN };
        let mut settled = Settled { admitted: self.used, refused: refused_first, ..Settled::default() };
        if still_waiting > 0 {
            if grant.exhausted {
                self.refused += still_waiting;
                settled.refused += still_waiting;
            } else {
                self.wanted = (self.granted * 2).min(MAX_GRANT);
                settled.renew = Some(self.renewal(now_ms, still_waiting));
            }
        }
        settled
    }
}

#[cfg(test)]
mod sim;

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 20_833 * 86_400_000;

    fn renew(admit: Admit) -> Renewal {
        match admit {
            Admit::Renew(renewal) => renewal,
            other => panic!("expected a renewal, got {other:?}"),
        }
    }

    #[test]
    fn lease_zero_asks_once_per_request_like_a_hit() {
        let mut ledger = LeaseLedger::new(0, 1, vec![LimitSpec::new("second", 2, 1)]);
        let mut lease = Lease::new(0, 1);
        let mut outcomes = Vec::new();
        for _ in 0..3 {
            let renewal = renew(lease.admit(T0));
            assert_eq!((renewal.wanted, renewal.waiting), (1, 1));
            let grant = ledger.grant(7, "key_a", &renewal, T0);
            outcomes.push(lease.settle(&grant, T0).admitted);
        }
        assert_eq!(outcomes, [1, 1, 0]);
        assert_eq!(ledger.usage("key_a"), LeaseUsage { allowed: 2, refused: 1 });
    }

    #[test]
    fn grants_start_at_one_and_double_while_used_up() {
        let mut ledger = LeaseLedger::new(1_000, 1, vec![LimitSpec::new("daily", 10_000, 86_400)]);
        let mut lease = Lease::new(1_000, 1);
        let mut sizes = Vec::new();
        for ms in 0..40 {
            match lease.admit(T0 + ms) {
                Admit::Yes => {}
                Admit::Renew(renewal) => {
                    let grant = ledger.grant(1, "key_a", &renewal, T0 + ms);
                    sizes.push(grant.allowed);
                    assert_eq!(lease.settle(&grant, T0 + ms).admitted, 1);
                }
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(sizes, [1, 2, 4, 8, 16, 32]);
    }

    fn remaining(ledger: &LeaseLedger, at: i64) -> Vec<u64> {
        let decision = decide(&ledger.specs, &mut ledger.states.clone(), at);
        decision.limits.iter().map(|l| if decision.allowed { l.remaining + 1 } else { l.remaining }).collect()
    }

    #[test]
    fn a_rate_is_recredited_only_while_the_grant_is_its_last_debit() {
        let mut ledger = LeaseLedger::new(1_000, 1, vec![LimitSpec::new("rate", 10, 10)]);
        let asked = Renewal { revision_seen: 1, used: 0, refused: 0, wanted: 5, waiting: 1 };
        assert_eq!(ledger.grant(1, "key_a", &asked, T0).allowed, 5);
        ledger.grant(1, "key_a", &Renewal { used: 2, wanted: 0, waiting: 0, ..asked }, T0 + 500);
        assert_eq!(remaining(&ledger, T0 + 500), [10 - 2 - 1], "3 unused came back; 1 granted again");
        // The counterexample: granted, idle past the TAT, others debit, then returned unused.
        let mut ledger = LeaseLedger::new(1_000, 1, vec![LimitSpec::new("rate", 10, 10)]);
        assert_eq!(ledger.grant(1, "key_a", &asked, T0).allowed, 5);
        assert_eq!(ledger.grant(2, "key_a", &Renewal { wanted: 10, waiting: 10, ..asked }, T0 + 10_000).allowed, 10);
        ledger.grant(1, "key_a", &Renewal { wanted: 1, ..asked }, T0 + 10_000);
        assert_eq!(remaining(&ledger, T0 + 10_000), [0], "no capacity created");
    }

    #[test]
    fn unused_units_go_back_to_a_quota_in_its_window_and_to_a_rate_still_at_that_grant() {
        let specs = vec![LimitSpec::new("minute", 100, 60), LimitSpec::new("daily", 100, 86_400)];
        let mut ledger = LeaseLedger::new(1_000, 1, specs);
        let asked = Renewal { revision_seen: 1, used: 0, refused: 0, wanted: 10, waiting: 1 };
        assert_eq!(ledger.grant(1, "key_a", &asked, T0).allowed, 10);
        let back = Renewal { used: 3, wanted: 1, ..asked };
        let grant = ledger.grant(1, "key_a", &back, T0);
        assert_eq!(grant.allowed, 1);
        assert_eq!(remaining(&ledger, T0), [100 - 4, 100 - 4], "3 used, 1 granted again");
        // A day later the old window's units are not given to the new one.
        let mut ledger = LeaseLedger::new(1_000, 1, vec![LimitSpec::new("daily", 100, 86_400)]);
        assert_eq!(ledger.grant(1, "key_a", &asked, T0 + 86_399_999).allowed, 10);
        ledger.grant(1, "key_a", &back, T0 + 86_400_000);
        assert_eq!(remaining(&ledger, T0 + 86_400_000), [100 - 1]);
        assert_eq!(ledger.usage("key_a").allowed, 4);
    }

    #[test]
    fn a_revision_change_answers_record_changed_and_grants_nothing() {
        let mut ledger = LeaseLedger::new(1_000, 1, Vec::new());
        let mut lease = Lease::new(1_000, 1);
        let renewal = renew(lease.admit(T0));
        ledger.change(2, Vec::new());
        let grant = ledger.grant(1, "key_a", &renewal, T0);
        assert!(grant.record_changed && grant.allowed == 0);
        assert_eq!(lease.settle(&grant, T0).stale, 1);
        assert_eq!(lease.revision(), 2);
        let grant = ledger.grant(1, "key_a", &renew(lease.admit(T0)), T0);
        assert_eq!((grant.record_changed, grant.allowed), (false, MAX_GRANT), "a key without limits still leases, in full");
    }

    #[test]
    fn an_expired_grant_is_not_used() {
        let mut ledger = LeaseLedger::new(100, 1, Vec::new());
        let mut lease = Lease::new(100, 1);
        let renewal = Renewal { wanted: 8, ..renew(lease.admit(T0)) };
        let grant = ledger.grant(1, "key_a", &renewal, T0 + 10);
        assert_eq!(lease.settle(&grant, T0 + 20).admitted, 1);
        assert_eq!(lease.admit(T0 + 99), Admit::Yes);
        assert!(matches!(lease.admit(T0 + 100), Admit::Renew(r) if r.used == 2), "expiry counts from when it asked");
    }
}
