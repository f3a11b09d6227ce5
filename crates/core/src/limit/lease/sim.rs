//! Deterministic simulation of leases: one [`LeaseLedger`], 2–16 isolates each holding a
//! [`Lease`], random arrivals, message delays, isolate evictions and a revoke, on a simulated
//! clock, seeded. Every admission is checked against the limits and the change-latency bound.
//!
//! Model: a message (renewal, hit, or answer) takes `0..=max_delay_ms` (per run, at most 30 ms)
//! one way; events at the same ms run in the order they were scheduled. No request waits for
//! another's answer: an early renewal's answer only updates the lease; a request that finds the
//! lease empty while a renewal is in flight sends its own hit. An eviction drops the isolate
//! with its lease and the requests waiting for their own answers; a renewal or hit already on
//! the way still reaches the ledger (and is debited), the answer is lost. A revoke is an admin change: the ledger learns
//! revision 2 at `revoked_at`; an isolate that adopts revision 2 refuses the key at its check
//! phase (before the limits).
//!
//! Checked at every admission at time `t` of a unit the ledger debited at `g` (an isolate's units
//! are of its two newest grants, used oldest first):
//! - each rate N per W (interval I = ⌈W/N⌉ µs): admitted so far ≤ N + ⌊(t − start)/I⌋, what
//!   GCRA allows from fresh state;
//! - each quota N per window: admissions attributed to the window holding `g` ≤ N;
//! - at the end of the run, each rate: the admissions, at the instants `g` they were debited,
//!   are a sequence GCRA admits in full from fresh state (the span bound of every window);
//! - with revision 1 after a revoke at `r`: t ≤ r + max(lease_ms, max_delay_ms);
//! - a credits balance (a third of the runs, drawn from a second generator so the other draws
//!   stay as they were; with no refill, or a daily `reset` or `add` one, and half the runs cross
//!   midnight): admissions attributed to the day holding `g` never exceed what the balance
//!   held: with no refill, in all ≤ the initial balance; with `reset`, the first day ≤ the
//!   initial balance and a later day ≤ the amount; with `add`, up to each day ≤ the initial
//!   balance + the amount per day started since. So the balance never went below zero and the
//!   admitted cost never exceeded the initial balance plus the refills.

use crate::testing::Rng;
use std::cmp::Reverse;
use std::collections::BinaryHeap;

use super::{Admit, Grant, Lease, LeaseLedger, Renewal, Renewed};
use crate::limit::algorithm::{decide, LimitSpec, LimitState};
use crate::limit::credits::{self, Credits, Interval, Refill, RefillMode};

enum Event {
    Arrive {
        slot: usize,
    },
    /// A renewal; `waiting`: the arrival time of the request that sent it and waits for it.
    AtLedger {
        slot: usize,
        id: u64,
        renewal: Renewal,
        waiting: Option<i64>,
    },
    AtIsolate {
        slot: usize,
        id: u64,
        grant: Grant,
        granted_at: i64,
        waiting: Option<i64>,
    },
    /// A request's own hit (sent at `arrived`, with the lease's revision).
    HitAtLedger {
        slot: usize,
        id: u64,
        revision: u64,
        arrived: i64,
    },
    HitAtIsolate {
        slot: usize,
        id: u64,
        grant: Grant,
        granted_at: i64,
        arrived: i64,
    },
    Evict {
        slot: usize,
    },
    Revoke,
}

struct Isolate {
    /// Unique across the run: an evicted isolate's successor is a new isolate.
    id: u64,
    lease: Lease,
    /// When the ledger made the older and the newest grant the lease holds units of.
    old_at: i64,
    fresh_at: i64,
    /// Arrival times of requests waiting for their own answers.
    waiting: Vec<i64>,
}

impl Isolate {
    fn new(id: u64, lease_ms: u64, revision: u64, start: i64) -> Isolate {
        Isolate { id, lease: Lease::new(lease_ms, revision), old_at: start, fresh_at: start, waiting: Vec::new() }
    }

    /// When the unit the lease is about to use was debited (older grant first).
    fn next_unit_at(&self) -> i64 {
        if self.lease.units().0 > 0 {
            self.old_at
        } else {
            self.fresh_at
        }
    }

    fn answered(&mut self, arrived: i64) {
        let at = self.waiting.iter().position(|a| *a == arrived).expect("a waiting request");
        self.waiting.swap_remove(at);
    }
}

/// What one run found.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Outcome {
    pub admitted: u64,
    /// What per-request deciding (`decide` at each arrival) admits for the same arrivals;
    /// `None` in runs with a revoke.
    pub reference: Option<u64>,
    /// Latest admission with the old record after the revoke, ms after it.
    pub change_latency_ms: Option<i64>,
    pub lease_ms: u64,
    /// Whether the key had limits (a key without still leases, for the record revision).
    pub limited: bool,
    pub limiter_calls: u64,
    /// Of them, hits (a request's own call while a renewal was in flight, or `lease_ms = 0`).
    pub hits: u64,
    /// Requests the limits refused (locally or by the ledger).
    pub refused: u64,
    /// Isolates evicted (their debited but unused grants stay debited).
    pub evictions: u64,
    /// Requests that reached a lease (not refused first by a revoked record).
    pub reached: u64,
}

type Queue = BinaryHeap<Reverse<(i64, u64)>>;

fn schedule(queue: &mut Queue, events: &mut Vec<Option<Event>>, at: i64, event: Event) {
    queue.push(Reverse((at, events.len() as u64)));
    events.push(Some(event));
}

const START: i64 = 20_833 * 86_400_000;

/// One seeded run (with `lease_ms` instead of the seed's when given); panics (naming the seed)
/// if an invariant breaks.
pub(super) fn run(seed: u64, lease_override: Option<u64>) -> Outcome {
    let mut rng = Rng(seed);
    let lease_ms = rng.pick(&[0, 20, 100, 250, 1_000]);
    let lease_ms = lease_override.unwrap_or(lease_ms);
    let isolates_count = 2 + rng.below(15) as usize;
    let max_delay = rng.below(31) as i64;
    let mut specs = Vec::new();
    match rng.below(4) {
        0 => {}
        1 => specs.push(LimitSpec::new("rate", 1 + rng.below(50), rng.pick(&[1, 2, 10]))),
        2 => specs.push(LimitSpec::new("daily", 5 + rng.below(300), 86_400)),
        _ => {
            specs.push(LimitSpec::new("rate", 1 + rng.below(50), rng.pick(&[1, 2, 10])));
            specs.push(LimitSpec::new("daily", 5 + rng.below(300), 86_400));
        }
    }
    // Half the runs cross a UTC midnight, where the daily quota resets.
    let start = if rng.below(2) == 0 { START } else { START + 86_400_000 - rng.below(3_000) as i64 };
    let arrivals = 100 + rng.below(500);
    let max_gap = rng.pick(&[1, 4, 20, 60]);
    let revoke = rng.below(3) == 0;

    // Credits, from a generator of their own: (initial balance, refill).
    let mut credit_rng = Rng(seed ^ 0xC4ED_175C_4ED1_75C4);
    let credit = (credit_rng.below(3) == 0).then(|| {
        let refill = match credit_rng.below(3) {
            0 => None,
            1 => Some(Refill { amount: 1 + credit_rng.below(100), interval: Interval::Day, mode: RefillMode::Reset }),
            _ => Some(Refill { amount: 1 + credit_rng.below(100), interval: Interval::Day, mode: RefillMode::Add }),
        };
        (credit_rng.below(300), refill)
    });
    let mut initial_states = vec![LimitState::default(); specs.len()];
    if let Some((balance, refill)) = credit {
        let spec = Credits { refill }.spec();
        initial_states.push(credits::change(&spec, LimitState::default(), true, balance as i64, start));
        specs.push(spec);
    }
    let mut credit_days: Vec<u64> = Vec::new();

    let mut ledger = LeaseLedger::with_states(lease_ms, 1, specs.clone(), initial_states.clone());
    let mut next_id = 0;
    let mut isolates: Vec<Isolate> = (0..isolates_count)
        .map(|_| {
            next_id += 1;
            Isolate::new(next_id, lease_ms, 1, start)
        })
        .collect();
    let mut queue: Queue = BinaryHeap::new();
    let mut events: Vec<Option<Event>> = Vec::new();
    let mut events_store = Vec::new();
    // Arrivals, evictions and the revoke are known up front.
    let mut at = start;
    let mut arrival_times = Vec::new();
    for _ in 0..arrivals {
        at += rng.below(max_gap + 1) as i64;
        arrival_times.push(at);
        events_store.push((at, Event::Arrive { slot: rng.below(isolates_count as u64) as usize }));
    }
    let end = at;
    for _ in 0..rng.below(4) {
        events_store
            .push((start + rng.below((end - start + 1) as u64) as i64, Event::Evict { slot: rng.below(isolates_count as u64) as usize }));
    }
    if revoke {
        events_store.push((start + rng.below((end - start + 1) as u64) as i64, Event::Revoke));
    }
    for (at, event) in events_store {
        schedule(&mut queue, &mut events, at, event);
    }

    let mut outcome = Outcome { lease_ms, limited: !specs.is_empty(), ..Outcome::default() };
    let mut revoked_at: Option<i64> = None;
    let mut lost: Vec<i64> = Vec::new();
    let mut admitted_total: u64 = 0;
    let mut quota_counts: std::collections::BTreeMap<(usize, i64), u64> = Default::default();
    let bound_ms = (lease_ms as i64).max(max_delay);

    let mut debited_at: Vec<i64> = Vec::new();
    let mut admit = |now: i64, grant_at: i64, revision: u64, revoked_at: Option<i64>, outcome: &mut Outcome| {
        admitted_total += 1;
        debited_at.push(grant_at);
        outcome.admitted += 1;
        if let Some((initial, refill)) = credit {
            let day = (grant_at.div_euclid(86_400_000) - start.div_euclid(86_400_000)) as usize;
            if credit_days.len() <= day {
                credit_days.resize(day + 1, 0);
            }
            credit_days[day] += 1;
            let mut cumulative = 0;
            for (day, count) in credit_days.iter().enumerate() {
                cumulative += count;
                let (held, spent) = match refill {
                    None => (initial, cumulative),
                    Some(Refill { mode: RefillMode::Reset, .. }) if day == 0 => (initial, *count),
                    Some(Refill { mode: RefillMode::Reset, amount, .. }) => (amount, *count),
                    Some(Refill { mode: RefillMode::Add, amount, .. }) => (initial + amount * day as u64, cumulative),
                };
                assert!(spent <= held, "seed {seed}: {spent} credits spent by day {day}, the balance held {held} ({refill:?})");
            }
        }
        for (index, spec) in specs.iter().enumerate().filter(|(_, s)| !s.is_credits()) {
            let window_us = spec.window_seconds as i64 * 1_000_000;
            if spec.is_quota() {
                let count = quota_counts.entry((index, grant_at.div_euclid(window_us / 1000))).or_default();
                *count += 1;
                assert!(*count <= spec.limit, "seed {seed}: quota {} over its limit in one window", spec.name);
            } else {
                let interval = (window_us + spec.limit as i64 - 1) / spec.limit as i64;
                let allowed = spec.limit + ((now - start) * 1000 / interval) as u64;
                assert!(admitted_total <= allowed, "seed {seed}: {admitted_total} admitted by {} ms, rate allows {allowed}", now - start);
            }
        }
        if let (1, Some(revoked)) = (revision, revoked_at) {
            let latency = now - revoked;
            assert!(latency <= bound_ms, "seed {seed}: old record admitted {latency} ms after the revoke (bound {bound_ms})");
            outcome.change_latency_ms = Some(outcome.change_latency_ms.unwrap_or(0).max(latency));
        }
    };

    while let Some(Reverse((now, index))) = queue.pop() {
        let Some(event) = events.get_mut(index as usize).and_then(Option::take) else { continue };
        let mut delay = || rng.below(max_delay as u64 + 1) as i64;
        match event {
            Event::Arrive { slot } => {
                let isolate = &mut isolates[slot];
                if isolate.lease.revision() >= 2 {
                    continue; // the revoked record is refused at the check phase
                }
                outcome.reached += 1;
                let unit_at = isolate.next_unit_at();
                let id = isolate.id;
                let revision = isolate.lease.revision();
                match isolate.lease.admit(now) {
                    Admit::Yes => admit(now, unit_at, revision, revoked_at, &mut outcome),
                    Admit::YesRenew(renewal) => {
                        admit(now, unit_at, revision, revoked_at, &mut outcome);
                        outcome.limiter_calls += 1;
                        let event = Event::AtLedger { slot, id, renewal, waiting: None };
                        schedule(&mut queue, &mut events, now + delay(), event);
                    }
                    Admit::No { .. } => outcome.refused += 1,
                    Admit::Renew(renewal) => {
                        isolate.waiting.push(now);
                        outcome.limiter_calls += 1;
                        let event = Event::AtLedger { slot, id, renewal, waiting: Some(now) };
                        schedule(&mut queue, &mut events, now + delay(), event);
                    }
                    Admit::Hit => {
                        isolate.waiting.push(now);
                        outcome.limiter_calls += 1;
                        outcome.hits += 1;
                        let event = Event::HitAtLedger { slot, id, revision, arrived: now };
                        schedule(&mut queue, &mut events, now + delay(), event);
                    }
                }
            }
            Event::AtLedger { slot, id, renewal, waiting } => {
                let grant = ledger.grant(id, "key_a", &renewal, now);
                let event = Event::AtIsolate { slot, id, grant, granted_at: now, waiting };
                schedule(&mut queue, &mut events, now + delay(), event);
            }
            Event::HitAtLedger { slot, id, revision, arrived } => {
                let grant = ledger.hit("key_a", revision, now, 1);
                let event = Event::HitAtIsolate { slot, id, grant, granted_at: now, arrived };
                schedule(&mut queue, &mut events, now + delay(), event);
            }
            Event::AtIsolate { slot, id, grant, granted_at, waiting } => {
                let isolate = &mut isolates[slot];
                if isolate.id != id {
                    continue; // the isolate that asked was evicted
                }
                let revision = isolate.lease.revision();
                let kept = isolate.lease.units().1;
                let renewed = isolate.lease.renewed(Some(&grant), waiting.is_some());
                if !grant.record_changed {
                    isolate.old_at = isolate.fresh_at;
                    isolate.fresh_at = granted_at;
                }
                if let Some(arrived) = waiting {
                    isolate.answered(arrived);
                    match renewed {
                        // The waiting request took a unit: the older grant's first.
                        Renewed::Admitted => {
                            let unit_at = if kept > 0 { isolate.old_at } else { granted_at };
                            admit(now, unit_at, revision, revoked_at, &mut outcome)
                        }
                        Renewed::Refused => outcome.refused += 1,
                        Renewed::Stale => {} // the revoked record is refused at the check phase
                        other => panic!("seed {seed}: a waiting request got {other:?}"),
                    }
                }
            }
            Event::HitAtIsolate { slot, id, grant, granted_at, arrived } => {
                let isolate = &mut isolates[slot];
                if isolate.id != id {
                    continue;
                }
                isolate.answered(arrived);
                if grant.record_changed {
                    isolate.lease.adopt(grant.revision);
                } else if grant.allowed == 1 {
                    admit(now, granted_at, isolate.lease.revision(), revoked_at, &mut outcome);
                } else {
                    outcome.refused += 1;
                }
            }
            Event::Evict { slot } => {
                outcome.evictions += 1;
                next_id += 1;
                let old = std::mem::replace(&mut isolates[slot], Isolate::new(next_id, lease_ms, ledger.revision(), start));
                lost.extend(old.waiting);
            }
            Event::Revoke => {
                ledger.change(2, specs.clone(), now);
                revoked_at = Some(now);
            }
        }
    }
    assert!(isolates.iter().all(|i| i.waiting.is_empty()), "seed {seed}: every request that waited was decided");
    // Usage is exact once every isolate has reported (an evicted one cannot: its unused grant
    // stays counted as allowed, its unreported refusals are lost).
    for isolate in &mut isolates {
        if let Some(report) = isolate.lease.surrender() {
            ledger.give_back(isolate.id, "key_a", &report, true);
        }
    }
    if outcome.evictions == 0 {
        let usage = ledger.usage("key_a");
        assert_eq!((usage.allowed, usage.refused), (outcome.admitted, outcome.refused), "seed {seed}: usage counted by the ledger");
    }
    // The admitted requests, at the instants the ledger debited them, conform to each rate:
    // GCRA from fresh state admits every one (so over every span [a, b], at most
    // N + ⌊(b − a)/I⌋ of them).
    debited_at.sort_unstable();
    for spec in specs.iter().filter(|s| !s.is_quota() && !s.is_credits()) {
        let alone = [spec.clone()];
        let mut states = Vec::new();
        for (n, at) in debited_at.iter().enumerate() {
            assert!(decide(&alone, &mut states, *at).allowed, "seed {seed}: admission {n} at {} ms breaks rate {}", at - start, spec.name);
        }
    }
    if !revoke {
        let mut states = initial_states;
        lost.sort_unstable();
        let mut reference = 0;
        for at in arrival_times {
            if let Ok(found) = lost.binary_search(&at) {
                lost.remove(found);
                continue;
            }
            reference += u64::from(decide(&specs, &mut states, at).allowed);
        }
        outcome.reference = Some(reference);
    }
    outcome
}

#[test]
fn thousands_of_seeded_runs_never_over_admit_and_enforce_a_revoke_within_the_bound() {
    const RUNS: u64 = 2_400;
    // Worst (under-admitted, reference, seed, lease_ms), without and with evictions.
    let mut worst = [(0i64, 0u64, 0u64, 0u64); 2];
    let mut worst_share = [(0.0f64, 0u64); 2];
    let mut latency_by_lease: std::collections::BTreeMap<u64, i64> = Default::default();
    let mut calls_by_lease: std::collections::BTreeMap<(bool, u64), (u64, u64)> = Default::default();
    let mut totals = [(0u64, 0u64); 2];
    let (mut hits, mut calls) = (0u64, 0u64);
    for seed in 0..RUNS {
        let outcome = run(seed, None);
        if let Some(reference) = outcome.reference {
            let under = reference as i64 - outcome.admitted as i64;
            let evicted = usize::from(outcome.evictions > 0);
            if under > worst[evicted].0 {
                worst[evicted] = (under, reference, seed, outcome.lease_ms);
            }
            if reference > 0 && under as f64 / reference as f64 > worst_share[evicted].0 {
                worst_share[evicted] = (under as f64 / reference as f64, seed);
            }
            totals[evicted].0 += reference;
            totals[evicted].1 += outcome.admitted;
        }
        if let Some(latency) = outcome.change_latency_ms {
            let entry = latency_by_lease.entry(outcome.lease_ms).or_default();
            *entry = (*entry).max(latency);
        }
        if outcome.lease_ms > 0 {
            hits += outcome.hits;
            calls += outcome.limiter_calls;
        }
        let calls = calls_by_lease.entry((outcome.limited, outcome.lease_ms)).or_default();
        calls.0 += outcome.limiter_calls;
        calls.1 += outcome.reached;
    }
    for (evicted, what) in ["without evictions", "with evictions"].iter().enumerate() {
        let (under, reference, seed, lease_ms) = worst[evicted];
        let (share, share_seed) = worst_share[evicted];
        let (reference_total, admitted_total) = totals[evicted];
        println!("{what}: worst under-admission {under} of {reference} (seed {seed}, lease_ms {lease_ms}); worst share {share:.3} (seed {share_seed}); in all: {admitted_total} admitted of {reference_total}");
    }
    println!("{RUNS} runs (under-admission: runs without a revoke, against per-request deciding)");
    println!("max change latency by lease_ms: {latency_by_lease:?}");
    println!("limiter calls / requests by (limited, lease_ms): {calls_by_lease:?}");
    println!("of those calls, hits (a request's own call while a renewal was in flight), lease_ms > 0: {hits} of {calls}");
    let (reference_total, admitted_total) = totals[0];
    assert!(
        admitted_total * 1000 >= reference_total * 995,
        "without evictions leases admit at least 99.5% of what per-request deciding does"
    );
    for limited in [false, true] {
        let (calls, requests) = calls_by_lease.get(&(limited, 0)).copied().unwrap_or_default();
        assert_eq!(calls, requests, "lease_ms = 0: one limiter call per request that reached the lease");
    }
}
