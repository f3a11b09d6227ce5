//! Limiter leases (pure, clock passed in): an isolate admits `exact`-mode requests locally from
//! units its key family's limiter debited at once, instead of asking the limiter per request.
//!
//! Two halves, each a plain state machine (the design, bounds and simulation: `docs/leases.md`):
//! - [`LeaseLedger`], the limiter's side (one per key family, what the `KeyLimiter` Durable
//!   Object holds): [`LeaseLedger::grant`] counts what the isolate reports (units used, units it
//!   dropped unused, which are re-credited where that is safe), then debits up to `wanted` more
//!   units, exactly as that many [`decide`](super::algorithm::decide) calls at one instant would; [`LeaseLedger::hit`]
//!   decides one request outside any grant (today's per-request call).
//! - [`Lease`], an isolate's side (one per key family it serves): [`Lease::admit`] admits from
//!   the units it holds and says when the request at hand must renew, early, in the background
//!   ([`Admit::YesRenew`]) or for itself ([`Admit::Renew`]), or ask for itself alone
//!   ([`Admit::Hit`]); [`Lease::renewed`] takes the limiter's [`Grant`].
//!
//! **No request waits for another's I/O.** The Workers runtime cancels, or refuses to resolve, a
//! promise awaited in another request's context than the one that made it. So a request only
//! ever awaits a call it sent itself: an early renewal runs in the sending request's own
//! `wait_until`, and a request that finds the lease empty while a renewal is in flight asks for
//! itself ([`Admit::Hit`]) instead of waiting for that renewal's answer.
//!
//! Invariants:
//! - **Never over-admit**: every admitted request was debited from the limits first. A renewal
//!   reports the units used so far and *keeps* the unused ones (they stay debited); only units
//!   the isolate says it dropped (expired, superseded, a record change, surrendered) are
//!   re-credited, to the quota window they were debited in, and to a rate only while that grant
//!   is still its last debit (see [`LeaseLedger::grant`]).
//! - **Bounded change latency**: every unit an isolate holds is usable until `sent_at + lease_ms`
//!   on the isolate's own clock, `sent_at` being when it sent the latest renewal whose answer
//!   confirmed its record revision; an answer after an admin change reached the limiter never
//!   confirms the old revision. So no request is admitted under an older record later than
//!   `max(lease_ms, D)` after the change reached the limiter, `D` the limiter→isolate reply delay
//!   (a request that waits for its own answer is decided by it, as today's `Hit` is).
//! - `lease_ms = 0` is today's behaviour: every request is its own [`Admit::Hit`].

use serde::{Deserialize, Serialize};

use super::algorithm::{decide_cost, Decision, LimitSpec, LimitState};

/// The lease length keygate recommends (`docs/leases.md` says why): a revoke or any admin
/// change is enforced everywhere within about a second.
pub const DEFAULT_LEASE_MS: u64 = 1_000;

/// The largest grant a ledger makes (and an isolate asks for).
pub const MAX_GRANT: u64 = 1_024;

/// How long past its expiry a ledger keeps an outstanding grant whose isolate has not come back
/// (an evicted isolate never does); after that the grant is forgotten, and stays debited.
pub const FORGET_AFTER_MS: i64 = 60_000;

/// A renewal whose answer has not come back after `lease_ms` plus this long is taken as lost
/// (its request's `wait_until` was cancelled): the next request may renew again.
pub const RENEWAL_LOST_AFTER_MS: i64 = 30_000;

/// A duration in ms as a signed offset, saturating (a `LEASE_MS` out of range cannot wrap).
fn millis(duration_ms: u64) -> i64 {
    i64::try_from(duration_ms).unwrap_or(i64::MAX)
}

/// What an isolate sends to renew its lease (or, with `wanted = waiting = 0`, to report and
/// surrender it). On the wire as one string of its numbers in field order, `"3,1,0,0,0,8,1"`
/// (the smallest code for serde in wasm).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Renewal(
    /// The record revision the isolate decides with.
    pub u64,
    /// Units used since its last report.
    pub u64,
    /// Units it dropped unused since its last report, of its older grant (see [`Lease`]).
    pub u64,
    /// Units it dropped unused since its last report, of its newest grant.
    pub u64,
    /// Requests it refused locally since its last report (counted in usage).
    pub u64,
    /// How many units it would like granted.
    pub u64,
    /// 1 when the request that sends it waits for the answer (it takes the first unit granted;
    /// refused when none is), 0 for an early renewal.
    pub u64,
);

/// `N` comma-separated decimal numbers, exactly.
pub(crate) fn numbers<const N: usize>(text: &str) -> Option<[u64; N]> {
    let mut out = [0; N];
    let mut parts = text.split(',');
    for slot in &mut out {
        *slot = parts.next()?.parse().ok()?;
    }
    parts.next().is_none().then_some(out)
}

impl Serialize for Renewal {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let Renewal(a, b, c, d, e, f, g) = self;
        serializer.collect_str(&format_args!("{a},{b},{c},{d},{e},{f},{g}"))
    }
}

impl<'de> Deserialize<'de> for Renewal {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Renewal, D::Error> {
        let text = String::deserialize(deserializer)?;
        let [a, b, c, d, e, f, g] = numbers(&text).ok_or_else(|| serde::de::Error::custom("a renewal is 7 numbers"))?;
        Ok(Renewal(a, b, c, d, e, f, g))
    }
}

impl Renewal {
    /// A report only: nothing wanted, nobody waiting (the isolate surrenders its lease).
    pub fn is_report(&self) -> bool {
        self.5 == 0 && self.6 == 0
    }

    /// The revision (epoch) the isolate decides with; 0 for a new lease.
    pub fn revision_seen(&self) -> u64 {
        self.0
    }
    /// Units used since the last report.
    pub fn used(&self) -> u64 {
        self.1
    }
    /// Units dropped unused since the last report (both grants).
    pub fn dropped(&self) -> u64 {
        self.2 + self.3
    }
    /// Local refusals since the last report.
    pub fn refused(&self) -> u64 {
        self.4
    }
    /// Units the isolate would like granted.
    pub fn wanted(&self) -> u64 {
        self.5
    }
    /// 1 when the sending request waits for the answer.
    pub fn waiting(&self) -> u64 {
        self.6
    }
}

/// The limiter's answer to a [`Renewal`] (or a [`LeaseLedger::hit`]). On the wire as a pair:
/// its numbers in one string in field order (booleans 0 or 1), and the decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "GrantWire", into = "GrantWire")]
pub struct Grant {
    /// The newest record revision the limiter knows.
    pub revision: u64,
    /// The isolate's record is older than `revision`: nothing granted; drop every unit, adopt
    /// the new record and ask again.
    pub record_changed: bool,
    /// Units granted (debited from every limit already).
    pub allowed: u64,
    /// The limits could not grant all that was asked (the grant stopped at a refusal).
    pub exhausted: bool,
    /// Requests the limits still allow right after this grant (fewest over the limits;
    /// `u64::MAX` without limits).
    pub remaining: u64,
    /// When `exhausted`: ms until the refusing limit frees a request.
    pub retry_after_ms: u64,
    /// The limiter's `lease_ms`: how long the units may be used, from when the renewal was sent.
    pub valid_for_ms: u64,
    /// The limits' last decision in this grant (the refusal when `exhausted`), for response
    /// headers; `None` when `record_changed`.
    pub decision: Option<Decision>,
}

#[derive(Serialize, Deserialize)]
struct GrantWire(String, Option<Decision>);

impl TryFrom<GrantWire> for Grant {
    type Error = &'static str;
    fn try_from(GrantWire(text, decision): GrantWire) -> Result<Grant, &'static str> {
        match numbers(&text) {
            Some([revision, changed @ 0..=1, allowed, exhausted @ 0..=1, remaining, retry_after_ms, valid_for_ms]) => Ok(Grant {
                revision,
                record_changed: changed == 1,
                allowed,
                exhausted: exhausted == 1,
                remaining,
                retry_after_ms,
                valid_for_ms,
                decision,
            }),
            _ => Err("a grant is 7 numbers"),
        }
    }
}

impl From<Grant> for GrantWire {
    fn from(g: Grant) -> GrantWire {
        let (changed, exhausted) = (u8::from(g.record_changed), u8::from(g.exhausted));
        let text = format!("{},{changed},{},{exhausted},{},{},{}", g.revision, g.allowed, g.remaining, g.retry_after_ms, g.valid_for_ms);
        GrantWire(text, g.decision)
    }
}

impl Grant {
    /// The answer that the isolate's record is older than `revision` (nothing granted).
    pub fn changed(revision: u64) -> Grant {
        Grant {
            revision,
            record_changed: true,
            allowed: 0,
            exhausted: false,
            remaining: u64::MAX,
            retry_after_ms: 0,
            valid_for_ms: 0,
            decision: None,
        }
    }
}

/// What the ledger remembers of one grant, to re-credit units dropped from it.
#[derive(Debug, Clone)]
struct GrantMark {
    /// Units granted.
    granted: u64,
    /// Units of it not yet re-credited.
    allowed: u64,
    granted_at_ms: i64,
    /// The ledger's limits when it was made ([`LeaseLedger::change`]).
    limits_epoch: u64,
    /// Each limit's state mark before the grant (a rate's TAT, µs).
    marks_before: Vec<i64>,
    /// Each limit's state mark right after the grant: a rate's TAT, a quota's window start.
    marks: Vec<i64>,
}

/// One isolate's lease as the ledger sees it: its two newest grants (an isolate holds units of
/// at most these two: a renewal drops the older one's).
#[derive(Debug, Clone, Default)]
struct Outstanding {
    older: Option<GrantMark>,
    newest: Option<GrantMark>,
    last_granted_at_ms: i64,
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
    /// Counts the changes of `specs`.
    limits_epoch: u64,
    /// By lease id (a few per isolate serving the family): a list, small in code and memory.
    outstanding: Vec<(u64, Outstanding)>,
    /// Usage per key, tallied for the tests and the simulation only: the `KeyLimiter` counts the
    /// same numbers in its own storage ([`usage_counted`]).
    #[cfg(test)]
    usage: Vec<(String, LeaseUsage)>,
}

impl LeaseLedger {
    /// A ledger granting leases of `lease_ms` against `specs`, knowing record `revision`.
    pub fn new(lease_ms: u64, revision: u64, specs: Vec<LimitSpec>) -> LeaseLedger {
        LeaseLedger {
            lease_ms,
            revision,
            specs,
            states: Vec::new(),
            limits_epoch: 0,
            outstanding: Vec::new(),
            #[cfg(test)]
            usage: Vec::new(),
        }
    }

    /// A ledger resuming `states` (one per spec, e.g. read back from storage).
    pub fn with_states(lease_ms: u64, revision: u64, specs: Vec<LimitSpec>, states: Vec<LimitState>) -> LeaseLedger {
        LeaseLedger { states, ..LeaseLedger::new(lease_ms, revision, specs) }
    }

    /// The newest revision this ledger knows.
    pub fn revision(&self) -> u64 {
        self.revision
    }

    /// The limits and their state (one per spec), e.g. to store them.
    pub fn limits(&self) -> (&[LimitSpec], &[LimitState]) {
        (&self.specs, &self.states)
    }

    /// Usage counted for `key_id`.
    #[cfg(test)]
    pub fn usage(&self, key_id: &str) -> LeaseUsage {
        self.usage.iter().find(|(k, _)| k == key_id).map(|(_, u)| *u).unwrap_or_default()
    }

    /// An admin change (the registry tells the limiter before KV is written): every later
    /// grant answers `revision`. A limit keeps its state when one of the same name stays (as
    /// a `Hit` with new specs would); others start fresh; and units granted under other limits
    /// are never re-credited. (Units granted under an older revision are, once dropped: an
    /// isolate drops all it holds when told of the new revision.) A credits limit whose refill
    /// was configured or changed keeps its balance, and counts refills from `now_ms`.
    pub fn change(&mut self, revision: u64, specs: Vec<LimitSpec>, now_ms: i64) {
        if specs != self.specs {
            self.limits_epoch += 1;
            let mut states: Vec<LimitState> = Vec::with_capacity(specs.len());
            for spec in &specs {
                let at = self.specs.iter().position(|s| s.name == spec.name);
                let mut state = at.and_then(|at| self.states.get(at)).copied().unwrap_or_default();
                if spec.is_credits() && at.map(|at| &self.specs[at]) != Some(spec) {
                    // Refilled as of now: the new refill counts from the change, not from before.
                    state = super::credits::refilled(spec, LimitState { mark: 0, ..state }, now_ms).0;
                }
                states.push(state);
            }
            self.states = states;
        }
        self.revision = self.revision.max(revision);
        self.specs = specs;
    }

    /// Counts what `isolate_id` reports (units used, units dropped, local refusals), then, unless
    /// its record is older than the ledger's, grants up to `renewal.wanted()` more units at
    /// `now_ms`. The isolate keeps the units it did not report: they stay debited.
    ///
    /// Re-crediting dropped units: a quota gets them back when they were debited in the window
    /// it is still in (a unit is one count in one window; giving it back cannot let the window
    /// count more than its limit). A rate (GCRA) gets them back only when their grant is still
    /// its last debit: its state is one theoretical arrival time (TAT), and later debits may
    /// have been made after the TAT fell behind the clock and was clamped up to it; pulling the
    /// TAT back by the unused intervals then would create capacity the rate never had (a grant
    /// of 5 at 0 s on 10 per 10 s, idle until 10 s, a burst of 10 by others, then 5 returned:
    /// 15 at one instant). When the grant is the last debit, the TAT minus the unused intervals
    /// is exactly the state had only the used units been debited. Otherwise the unused units
    /// are lost for their refill time (`unused · W/N`), which small grants near exhaustion keep
    /// small.
    pub fn grant(&mut self, isolate_id: u64, key_id: &str, renewal: &Renewal, now_ms: i64) -> Grant {
        self.give_back(isolate_id, key_id, renewal, false);
        let lease_ms = millis(self.lease_ms);
        // Forget the grants of isolates gone for good (a loop: smaller in wasm than `retain`).
        let mut at = 0;
        while at < self.outstanding.len() {
            if self.outstanding[at].1.last_granted_at_ms.saturating_add(lease_ms).saturating_add(FORGET_AFTER_MS) > now_ms {
                at += 1;
            } else {
                self.outstanding.swap_remove(at);
            }
        }
        // Revision 0: a new lease, holding nothing yet, learns the revision from this grant.
        if renewal.revision_seen() != self.revision && renewal.revision_seen() != 0 {
            return self.unchanged();
        }
        let others =
            self.outstanding.iter().filter(|(id, o)| *id != isolate_id && o.last_granted_at_ms.saturating_add(lease_ms) > now_ms).count()
                as u64;
        // Keys without limits too: granted units count as allowed in usage until an isolate
        // reports them dropped, so a grant in full (MAX_GRANT) to an isolate that serves one
        // request and is then evicted would show MAX_GRANT requests in usage. Grants grow with
        // use instead, so what an evicted isolate leaves counted is at most what it was using.
        let wanted = renewal.wanted().max(renewal.waiting());
        let (grant, mark) = self.debit(key_id, wanted, renewal.waiting(), others, now_ms, 1);
        if self.lease_ms > 0 {
            let at = match self.outstanding.iter().position(|(id, _)| *id == isolate_id) {
                Some(at) => at,
                None => {
                    self.outstanding.push((isolate_id, Outstanding::default()));
                    self.outstanding.len() - 1
                }
            };
            let outstanding = &mut self.outstanding[at].1;
            outstanding.older = outstanding.newest.take();
            outstanding.newest = Some(mark);
            outstanding.last_granted_at_ms = now_ms;
        }
        grant
    }

    /// Decides one request outside any grant at `now_ms` (today's per-request call; what an
    /// isolate does when its lease is empty while a renewal is in flight; every request of a
    /// route whose cost is not 1 on a key with credits): one unit debited, `cost` credits
    /// spent, or refused, counted in usage at once.
    pub fn hit(&mut self, key_id: &str, revision_seen: u64, now_ms: i64, cost: u64) -> Grant {
        if revision_seen != self.revision {
            return self.unchanged();
        }
        self.debit(key_id, 1, 1, 0, now_ms, cost).0
    }

    /// An admin change of the credits balance ([`super::credits::change`]) at `now_ms`, when
    /// this ledger decides credits under `spec`; `None` otherwise (the caller changes the
    /// stored state). A `set` is a new epoch: isolates drop the units they hold at their next
    /// renewal, and units granted before it are never re-credited (the balance is what was set).
    pub fn change_credits(&mut self, spec: &LimitSpec, set: bool, amount: i64, now_ms: i64) -> Option<LimitState> {
        let at = self.specs.iter().position(|s| s == spec)?;
        self.states.resize(self.specs.len(), LimitState::default());
        let state = super::credits::change(spec, self.states[at], set, amount, now_ms);
        self.states[at] = state;
        if set {
            self.limits_epoch += 1;
            self.revision += 1;
        }
        Some(state)
    }

    fn unchanged(&self) -> Grant {
        Grant { valid_for_ms: self.lease_ms, ..Grant::changed(self.revision) }
    }

    /// Debits up to `wanted` units (at most a fair share of what is left among `others + 1`
    /// isolates, never below `waiting`), stopping at the first refusal.
    fn debit(&mut self, key_id: &str, wanted: u64, waiting: u64, others: u64, now_ms: i64, cost: u64) -> (Grant, GrantMark) {
        let mut target = wanted.clamp(1, MAX_GRANT);
        self.states.resize(self.specs.len(), LimitState::default());
        let marks_before = self.states.iter().map(|s| s.mark).collect();
        let mut grant = Grant { revision: self.revision, valid_for_ms: self.lease_ms, remaining: u64::MAX, ..self.unchanged() };
        grant.record_changed = false;
        while grant.allowed < target {
            let decision = decide_cost(&self.specs, &mut self.states, now_ms, cost);
            if !decision.allowed {
                grant.exhausted = true;
                grant.remaining = 0;
                grant.retry_after_ms = decision.refusal().map_or(1, |l| l.retry_after_ms);
                grant.decision = Some(decision);
                break;
            }
            grant.remaining = decision.limits.iter().map(|l| l.remaining).min().unwrap_or(u64::MAX);
            if grant.allowed == 0 {
                // A fair share of what is left, so the last requests of a limit are not
                // stranded in one isolate; never below what is waiting now.
                let share = grant.remaining.saturating_add(1) / (others + 1);
                target = target.min(share.max(waiting).max(1));
            }
            grant.allowed += 1;
            grant.decision = Some(decision);
        }
        #[cfg(test)]
        self.count(key_id, &grant, &Renewal(0, 0, 0, 0, 0, 0, waiting));
        #[cfg(not(test))]
        let _ = key_id;
        let marks = self.states.iter().map(|s| s.mark).collect();
        let mark = GrantMark {
            granted: grant.allowed,
            allowed: grant.allowed,
            granted_at_ms: now_ms,
            limits_epoch: self.limits_epoch,
            marks_before,
            marks,
        };
        (grant, mark)
    }

    /// Counts the usage `report` carries and re-credits the units it says were dropped, granting
    /// nothing; with `surrender`, the isolate holds nothing more ([`Lease::surrender`]).
    pub fn give_back(&mut self, isolate_id: u64, key_id: &str, report: &Renewal, surrender: bool) {
        #[cfg(test)]
        self.count(key_id, &Grant::changed(0), report);
        #[cfg(not(test))]
        let _ = key_id;
        let Some(at) = self.outstanding.iter().position(|(id, _)| *id == isolate_id) else { return };
        let (_, mut outstanding) = self.outstanding.swap_remove(at);
        for (mark, dropped) in [(&mut outstanding.older, report.2), (&mut outstanding.newest, report.3)] {
            if let Some(mark) = mark.as_mut().filter(|m| m.limits_epoch == self.limits_epoch) {
                let unused = dropped.min(mark.allowed);
                mark.allowed -= unused;
                recredit(&self.specs, &mut self.states, mark, unused);
            }
        }
        if !surrender {
            self.outstanding.push((isolate_id, outstanding));
        }
    }

    #[cfg(test)]
    fn count(&mut self, key_id: &str, grant: &Grant, report: &Renewal) {
        let at = match self.usage.iter().position(|(k, _)| k == key_id) {
            Some(at) => at,
            None => {
                self.usage.push((key_id.to_string(), LeaseUsage::default()));
                self.usage.len() - 1
            }
        };
        let usage = &mut self.usage[at].1;
        let (allowed, refused) = usage_counted(grant, report);
        usage.allowed = usage.allowed.saturating_add_signed(allowed);
        usage.refused += refused;
    }
}

/// What an answer and the report it answers change in a key's usage: `(allowed, refused)`.
/// Allowed: the units granted (a `Hit`'s one included), less the units the isolate reports it
/// dropped unused (they were counted when granted). Refused: the isolate's local refusals, and
/// the waiting request an exhausted grant could not serve.
pub fn usage_counted(grant: &Grant, report: &Renewal) -> (i64, u64) {
    let refused = report.refused() + if grant.exhausted { report.waiting().saturating_sub(grant.allowed) } else { 0 };
    (grant.allowed as i64 - report.dropped() as i64, refused)
}

/// Gives `unused` units of the grant `mark` back where that cannot exceed a limit (see
/// [`LeaseLedger::grant`]).
fn recredit(specs: &[LimitSpec], states: &mut [LimitState], mark: &GrantMark, unused: u64) {
    if unused == 0 {
        return;
    }
    for ((spec, state), (before, after)) in specs.iter().zip(states.iter_mut()).zip(mark.marks_before.iter().zip(&mark.marks)) {
        if state.mark != *after {
            continue; // another window (quota), or debited since (rate)
        }
        if spec.is_credits() {
            state.count = state.count.saturating_add(unused); // a unit of a grant is 1 credit
        } else if spec.is_quota() {
            state.count = state.count.saturating_sub(unused);
        } else {
            // The grant moved the TAT from max(before, granted_at) by whole intervals.
            let start = (*before).max(mark.granted_at_ms.saturating_mul(1000));
            let interval = (after - start) / mark.granted.max(1) as i64;
            state.mark = after - interval * unused as i64;
        }
    }
}

/// What an isolate does with one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    /// Admitted from the lease.
    Yes,
    /// Admitted from the lease; the request also sends this early renewal, in its own
    /// background (`wait_until`), and hands the answer to [`Lease::renewed`] (`waiting = false`).
    YesRenew(Renewal),
    /// Refused locally: the limiter said the limits are exhausted for this long still.
    No { retry_after_ms: u64 },
    /// The lease is empty: this request sends this renewal and is decided by its answer
    /// ([`Lease::renewed`] with `waiting = true`).
    Renew(Renewal),
    /// The lease is empty and a renewal is in flight (or `lease_ms = 0`): this request asks the
    /// limiter for itself alone ([`LeaseLedger::hit`]) and is decided by that answer.
    Hit,
}

/// What an answer decided for the request that waited for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Renewed {
    /// No request waited for it (an early renewal).
    Background,
    Admitted,
    /// Refused: the limits are exhausted.
    Refused,
    /// The record changed: check the request again with the newer record.
    Stale,
    /// The call failed: `RATE_LIMIT_FAILURE` decides the request that waited.
    Failed,
}

/// An isolate's lease for one key family.
///
/// It holds units of at most two grants: `fresh` (the newest) and `old` (the one before, kept
/// by the last renewal), used oldest first. Sending a renewal drops what is left of `old`, so
/// a unit is used within two renewals of being debited; the ledger knows the same two grants
/// per isolate, so units reported dropped are re-credited against the right one.
#[derive(Debug, Clone)]
pub struct Lease {
    lease_ms: u64,
    revision: u64,
    old: u64,
    fresh: u64,
    /// Size of the newest grant.
    granted: u64,
    /// Units used since the newest grant came (to size the next one).
    used_since_grant: u64,
    /// Not yet reported: units used, units dropped (old, fresh), local refusals.
    used: u64,
    dropped_old: u64,
    dropped_fresh: u64,
    refused: u64,
    expires_at_ms: i64,
    blocked_until_ms: i64,
    /// What the limiter said remains after the newest grant.
    remaining: u64,
    /// When the renewal in flight was sent.
    in_flight: Option<i64>,
}

impl Lease {
    /// A lease with nothing granted yet, for a record of `revision` (0: learn it from the
    /// first grant).
    pub fn new(lease_ms: u64, revision: u64) -> Lease {
        Lease {
            lease_ms,
            revision,
            old: 0,
            fresh: 0,
            granted: 0,
            used_since_grant: 0,
            used: 0,
            dropped_old: 0,
            dropped_fresh: 0,
            refused: 0,
            expires_at_ms: i64::MIN,
            blocked_until_ms: i64::MIN,
            remaining: u64::MAX,
            in_flight: None,
        }
    }

    /// The record revision (in a `KeyLimiter`, the family's epoch) this lease decides with;
    /// 0 until its first grant.
    pub fn revision(&self) -> u64 {
        self.revision
    }

    /// Units usable now.
    pub fn left(&self) -> u64 {
        self.old + self.fresh
    }

    /// Whether a renewal is in flight.
    pub fn renewing(&self) -> bool {
        self.in_flight.is_some()
    }

    /// Uses one held unit (the caller has checked there is one): the older grant's first (the
    /// next renewal drops what is left of it), then the newest grant's.
    fn use_one(&mut self) {
        if self.old > 0 {
            self.old -= 1;
        } else {
            self.fresh -= 1;
        }
        self.used += 1;
        self.used_since_grant += 1;
    }

    fn drop_all(&mut self) {
        self.dropped_old += std::mem::take(&mut self.old);
        self.dropped_fresh += std::mem::take(&mut self.fresh);
    }

    /// A newer `revision` learnt outside a renewal (e.g. a hit's answer): every unit held is
    /// dropped.
    pub fn adopt(&mut self, revision: u64) {
        if revision > self.revision {
            self.drop_all();
            self.revision = revision;
            self.blocked_until_ms = i64::MIN;
            self.remaining = u64::MAX;
            self.granted = 0;
        }
    }

    /// One request at `now_ms` (the isolate's clock).
    pub fn admit(&mut self, now_ms: i64) -> Admit {
        if self.lease_ms == 0 {
            return Admit::Hit; // today's behaviour: every request asks for itself
        }
        if let Some(sent_at) = self.in_flight {
            if now_ms > sent_at.saturating_add(millis(self.lease_ms)).saturating_add(RENEWAL_LOST_AFTER_MS) {
                self.in_flight = None;
            }
        }
        if self.in_flight.is_none() && now_ms >= self.expires_at_ms {
            self.drop_all(); // expired: never used again (a renewal in flight may confirm them)
        }
        if self.left() > 0 && now_ms < self.expires_at_ms {
            self.use_one();
            if self.in_flight.is_none() {
                let low = self.left() <= self.granted / 4;
                let late = now_ms >= self.expires_at_ms.saturating_sub(millis(self.lease_ms / 4));
                if low || late {
                    // Used up early: the isolate keeps up, ask for twice as much; otherwise
                    // for what it used.
                    let wanted = if low && !late { self.granted * 2 } else { self.used_since_grant };
                    // Near exhaustion no units are fetched ahead: they could be stranded here
                    // while other requests are refused; each request asks for itself instead.
                    if !self.scarce(wanted) {
                        return Admit::YesRenew(self.renewal(now_ms, wanted, 0));
                    }
                }
            }
            return Admit::Yes;
        }
        if now_ms < self.blocked_until_ms.min(self.expires_at_ms) {
            self.refused += 1;
            return Admit::No { retry_after_ms: (self.blocked_until_ms - now_ms) as u64 };
        }
        if self.in_flight.is_some() {
            return Admit::Hit;
        }
        let wanted = if self.granted > 0 && now_ms < self.expires_at_ms { self.granted * 2 } else { self.used_since_grant };
        Admit::Renew(self.renewal(now_ms, wanted, 1))
    }

    /// Whether the limits have too little left, as the limiter last said, to fetch `wanted`
    /// units ahead of the requests that will use them.
    fn scarce(&self, wanted: u64) -> bool {
        self.remaining < wanted.saturating_mul(4)
    }

    /// What the limiter said remains, in an answer to a request's own hit.
    pub fn note_remaining(&mut self, remaining: u64) {
        self.remaining = remaining;
    }

    /// Whether a request at `now_ms` would be admitted from the units held.
    pub fn usable(&self, now_ms: i64) -> bool {
        self.left() > 0 && now_ms < self.expires_at_ms
    }

    /// A renewal the request at hand sends now and waits for, whatever the lease holds (its key
    /// must be confirmed first; `None` while a renewal is in flight). Its answer decides it.
    pub fn renew_now(&mut self, now_ms: i64) -> Option<Renewal> {
        if self.in_flight.is_some() {
            return None;
        }
        if now_ms >= self.expires_at_ms {
            self.drop_all();
        }
        Some(self.renewal(now_ms, self.used_since_grant.max(self.granted), 1))
    }

    /// Starts a renewal at `now_ms`; what is left of the older grant is dropped.
    fn renewal(&mut self, now_ms: i64, wanted: u64, waiting: u64) -> Renewal {
        self.dropped_old += std::mem::take(&mut self.old);
        let wanted = if self.scarce(wanted) { 1 } else { wanted.clamp(1, MAX_GRANT) };
        self.in_flight = Some(now_ms);
        self.report(wanted, waiting)
    }

    fn report(&mut self, wanted: u64, waiting: u64) -> Renewal {
        let take = std::mem::take;
        Renewal(
            self.revision,
            take(&mut self.used),
            take(&mut self.dropped_old),
            take(&mut self.dropped_fresh),
            take(&mut self.refused),
            wanted,
            waiting,
        )
    }

    /// Stops using every unit and reports them (what was used, what is dropped, the refusals
    /// not yet reported), for [`LeaseLedger::give_back`] with `surrender`; `None` while a
    /// renewal is in flight (the ledger's view of this lease is about to change).
    pub fn surrender(&mut self) -> Option<Renewal> {
        if self.in_flight.is_some() {
            return None;
        }
        self.drop_all();
        self.granted = 0;
        Some(self.report(0, 0))
    }

    /// The answer to the renewal in flight; `waiting`: its request waits for it
    /// ([`Admit::Renew`]). `None`: the call failed (the units held stay usable until they
    /// expire; what the renewal reported is not sent again: re-reporting a drop the ledger may
    /// have counted could re-credit units still held).
    pub fn renewed(&mut self, grant: Option<&Grant>, waiting: bool) -> Renewed {
        let (Some(sent_at), Some(grant)) = (self.in_flight.take(), grant) else {
            return if waiting { Renewed::Failed } else { Renewed::Background };
        };
        if grant.record_changed {
            self.drop_all();
            self.revision = grant.revision;
            self.granted = 0;
            self.remaining = u64::MAX;
            self.blocked_until_ms = i64::MIN;
            return if waiting { Renewed::Stale } else { Renewed::Background };
        }
        // The answer confirms the revision as of `sent_at`: every unit held is usable until
        // `sent_at + lease_ms`; the kept ones become the older grant.
        self.revision = grant.revision; // a new lease learns its revision from its first grant
        self.old = self.fresh;
        self.fresh = grant.allowed;
        self.granted = grant.allowed;
        self.used_since_grant = 0;
        self.remaining = grant.remaining;
        self.expires_at_ms = sent_at.saturating_add(millis(self.lease_ms.min(grant.valid_for_ms)));
        // From when it asked, not when the answer came: the limit frees a request at the
        // limiter's instant plus the wait, never earlier, so refusing before then is exact.
        self.blocked_until_ms = if grant.exhausted { sent_at.saturating_add(millis(grant.retry_after_ms)) } else { i64::MIN };
        if !waiting {
            return Renewed::Background;
        }
        if self.left() == 0 {
            return Renewed::Refused; // the ledger counted it
        }
        self.use_one();
        Renewed::Admitted
    }

    /// Units held: (of the older grant, of the newest).
    #[cfg(test)]
    fn units(&self) -> (u64, u64) {
        (self.old, self.fresh)
    }
}

#[cfg(test)]
mod sim;

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 20_833 * 86_400_000;

    fn renewal(admit: Admit) -> Renewal {
        match admit {
            Admit::Renew(renewal) | Admit::YesRenew(renewal) => renewal,
            other => panic!("expected a renewal, got {other:?}"),
        }
    }

    #[test]
    fn lease_zero_asks_once_per_request_like_a_hit() {
        let mut ledger = LeaseLedger::new(0, 1, vec![LimitSpec::new("second", 2, 1)]);
        let mut lease = Lease::new(0, 1);
        let mut outcomes = Vec::new();
        for _ in 0..3 {
            assert_eq!(lease.admit(T0), Admit::Hit);
            outcomes.push(ledger.hit("key_a", 1, T0, 1).allowed);
        }
        assert_eq!(outcomes, [1, 1, 0]);
        assert_eq!(ledger.usage("key_a"), LeaseUsage { allowed: 2, refused: 1 });
    }

    /// Drives one isolate whose answers come back at once; returns the grant sizes.
    fn drive(ledger: &mut LeaseLedger, lease: &mut Lease, times: impl Iterator<Item = i64>) -> Vec<u64> {
        let mut sizes = Vec::new();
        for now in times {
            let admit = lease.admit(now);
            let waiting = matches!(admit, Admit::Renew(_));
            match admit {
                Admit::Yes => {}
                Admit::Renew(renewal) | Admit::YesRenew(renewal) => {
                    let grant = ledger.grant(1, "key_a", &renewal, now);
                    sizes.push(grant.allowed);
                    let renewed = lease.renewed(Some(&grant), waiting);
                    assert_eq!(renewed, if waiting { Renewed::Admitted } else { Renewed::Background });
                }
                other => panic!("{other:?}"),
            }
        }
        sizes
    }

    #[test]
    fn grants_start_at_one_double_while_used_up_and_renew_before_running_out() {
        let mut ledger = LeaseLedger::new(1_000, 1, vec![LimitSpec::new("daily", 10_000, 86_400)]);
        let mut lease = Lease::new(1_000, 1);
        let sizes = drive(&mut ledger, &mut lease, (0..40).map(|ms| T0 + ms));
        assert_eq!(sizes, [1, 2, 4, 8, 16, 32]);
        assert!(lease.left() > 0, "renewed early: units were still left");
        // The units kept by each renewal stayed debited: 40 used, the rest held.
        assert_eq!(ledger.usage("key_a").allowed, 40 + lease.left());
    }

    #[test]
    fn an_empty_lease_with_a_renewal_in_flight_asks_for_itself_and_keeps_using_what_is_left() {
        let mut ledger = LeaseLedger::new(1_000, 1, Vec::new());
        let mut lease = Lease::new(1_000, 1);
        let first = renewal(lease.admit(T0));
        let grant = ledger.grant(1, "key_a", &Renewal(1, 0, 0, 0, 0, 4, 1), T0);
        assert_eq!(first.waiting(), 1);
        assert_eq!(lease.renewed(Some(&Grant { allowed: 4, ..grant }), true), Renewed::Admitted);
        assert_eq!(lease.admit(T0 + 1), Admit::Yes);
        let early = renewal(lease.admit(T0 + 2));
        assert_eq!((early.used(), early.waiting(), lease.left()), (3, 0, 1), "early: one unit kept");
        assert_eq!(lease.admit(T0 + 3), Admit::Yes, "the kept unit serves while the renewal is in flight");
        assert_eq!(lease.admit(T0 + 4), Admit::Hit, "no waiting on another request's renewal");
        assert_eq!(lease.admit(T0 + 5), Admit::Hit);
    }

    fn remaining(ledger: &LeaseLedger, at: i64) -> Vec<u64> {
        let decision = crate::limit::algorithm::decide(&ledger.specs, &mut ledger.states.clone(), at);
        decision.limits.iter().map(|l| if decision.allowed { l.remaining + 1 } else { l.remaining }).collect()
    }

    #[test]
    fn a_rate_is_recredited_only_while_the_grant_is_its_last_debit() {
        let mut ledger = LeaseLedger::new(1_000, 1, vec![LimitSpec::new("rate", 10, 10)]);
        let asked = Renewal(1, 0, 0, 0, 0, 5, 1);
        assert_eq!(ledger.grant(1, "key_a", &asked, T0).allowed, 5);
        ledger.give_back(1, "key_a", &Renewal(1, 2, 0, 3, 0, 0, 0), true);
        assert_eq!(remaining(&ledger, T0 + 500), [10 - 2], "3 dropped units came back");
        // The counterexample: granted, idle past the TAT, others debit, then dropped unused.
        let mut ledger = LeaseLedger::new(1_000, 1, vec![LimitSpec::new("rate", 10, 10)]);
        assert_eq!(ledger.grant(1, "key_a", &asked, T0).allowed, 5);
        assert_eq!(ledger.grant(2, "key_a", &Renewal(1, 0, 0, 0, 0, 10, 10), T0 + 10_000).allowed, 10);
        ledger.give_back(1, "key_a", &Renewal(1, 0, 0, 5, 0, 0, 0), true);
        assert_eq!(remaining(&ledger, T0 + 10_000), [0], "no capacity created");
    }

    #[test]
    fn kept_units_stay_debited_and_dropped_ones_go_back_to_a_quota_in_its_window() {
        let specs = vec![LimitSpec::new("minute", 100, 60), LimitSpec::new("daily", 100, 86_400)];
        let mut ledger = LeaseLedger::new(1_000, 1, specs);
        assert_eq!(ledger.grant(1, "key_a", &Renewal(1, 0, 0, 0, 0, 10, 1), T0).allowed, 10);
        // 3 used, 7 kept: nothing comes back; 1 more granted.
        assert_eq!(ledger.grant(1, "key_a", &Renewal(1, 3, 0, 0, 0, 1, 0), T0).allowed, 1);
        assert_eq!(remaining(&ledger, T0), [100 - 11, 100 - 11]);
        // The 7 kept (now the older grant) and the 1 are dropped: all 8 go back to the quota;
        // the rate (GCRA) gets back only the newest grant's, its last debit.
        ledger.give_back(1, "key_a", &Renewal(1, 0, 7, 1, 0, 0, 0), true);
        assert_eq!(remaining(&ledger, T0), [100 - 3 - 7, 100 - 3]);
        assert_eq!(ledger.usage("key_a").allowed, 3);
        // A day later the old window's units are not given to the new one.
        let mut ledger = LeaseLedger::new(1_000, 1, vec![LimitSpec::new("daily", 100, 86_400)]);
        assert_eq!(ledger.grant(1, "key_a", &Renewal(1, 0, 0, 0, 0, 10, 1), T0 + 86_399_999).allowed, 10);
        ledger.grant(1, "key_a", &Renewal(1, 1, 0, 9, 0, 1, 1), T0 + 86_400_000);
        assert_eq!(remaining(&ledger, T0 + 86_400_000), [100 - 1]);
        assert_eq!(ledger.usage("key_a").allowed, 2);
    }

    #[test]
    fn a_changed_credits_refill_counts_from_the_change_and_an_unchanged_one_keeps_its_refills() {
        use crate::limit::credits::{Credits, Interval, Refill, RefillMode};
        let daily = |amount| Credits { refill: Some(Refill { amount, interval: Interval::Day, mode: RefillMode::Add }) }.spec();
        let month_ago = T0 - 30 * 86_400_000;
        let ledger_at = |then: LimitSpec| {
            let mut ledger = LeaseLedger::new(1_000, 1, vec![daily(10)]);
            ledger.change_credits(&daily(10), true, 5, month_ago).unwrap();
            ledger.change(2, vec![then], T0);
            ledger
        };
        assert_eq!(remaining(&ledger_at(daily(10)), T0), [5 + 30 * 10], "the 30 refills due");
        assert_eq!(remaining(&ledger_at(daily(20)), T0), [5], "a new refill starts now, not a month ago");
        assert_eq!(remaining(&ledger_at(daily(20)), T0 + 86_400_000), [25]);
    }

    #[test]
    fn a_revision_change_answers_record_changed_and_grants_nothing() {
        let mut ledger = LeaseLedger::new(1_000, 1, Vec::new());
        let mut lease = Lease::new(1_000, 1);
        let asked = renewal(lease.admit(T0));
        ledger.change(2, Vec::new(), T0);
        let grant = ledger.grant(1, "key_a", &asked, T0);
        assert!(grant.record_changed && grant.allowed == 0);
        assert_eq!(lease.renewed(Some(&grant), true), Renewed::Stale);
        assert_eq!(lease.revision(), 2);
        let grant = ledger.grant(1, "key_a", &renewal(lease.admit(T0)), T0);
        // A key without limits still leases, starting small like any key: granted units count in
        // usage until reported dropped, so a full grant to an isolate then evicted would inflate it.
        assert_eq!((grant.record_changed, grant.allowed), (false, 1), "a key without limits leases from one unit");
        assert!(ledger.hit("key_a", 1, T0, 1).record_changed, "a hit with the old record too");
    }

    #[test]
    fn units_expire_lease_ms_after_the_renewal_that_confirmed_them_was_sent() {
        let mut ledger = LeaseLedger::new(100, 1, Vec::new());
        let mut lease = Lease::new(100, 1);
        // As a busy isolate would after its grants have grown: asking for MAX_GRANT at once.
        let Renewal(revision, used, older, newest, refused, _, waiting) = renewal(lease.admit(T0));
        let asked = Renewal(revision, used, older, newest, refused, MAX_GRANT, waiting);
        let grant = ledger.grant(1, "key_a", &asked, T0 + 10);
        assert_eq!(lease.renewed(Some(&grant), true), Renewed::Admitted);
        assert_eq!(lease.admit(T0 + 74), Admit::Yes);
        let early = renewal(lease.admit(T0 + 75)); // the last quarter: renew early, keep the units
        assert_eq!(early.dropped(), 0);
        assert_eq!(lease.admit(T0 + 99), Admit::Yes);
        assert_eq!(lease.admit(T0 + 100), Admit::Hit, "expired while the renewal is in flight");
        let grant = ledger.grant(1, "key_a", &early, T0 + 110);
        assert_eq!(lease.renewed(Some(&grant), false), Renewed::Background);
        assert_eq!(lease.units(), (MAX_GRANT - 4, 3), "the kept units, confirmed again, and a grant the size of its recent use");
        assert_eq!(lease.admit(T0 + 149), Admit::Yes);
        assert!(matches!(lease.admit(T0 + 150), Admit::YesRenew(_)), "the last quarter of 75 + 100");
        assert_eq!(lease.admit(T0 + 175), Admit::Hit, "expired at 75 + 100");
    }
}
