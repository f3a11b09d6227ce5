//! Deterministic simulation of an adaptive roll grace: 1–6 isolates, each with the real
//! per-isolate batching ([`crate::seen::LastUse`]), admit requests with the old and the new key
//! at random times; their reports reach the registry after a random delay of up to the report
//! interval, and the registry applies [`decide`] to each, as the Durable Object does. Seeded,
//! on a simulated clock.
//!
//! Model: the old key is admitted at `t` iff `t < valid_to` as the registry holds it (the
//! limiter's exact mode); the new key is always admitted. Each run draws the report interval,
//! the rule (X, optional Y, M), when the new key starts being used (or never) and when the old
//! key stops (or never).
//!
//! Checked after every event at time `t`, with `K` what the registry learnt from reports it
//! processed while the old key was still valid:
//! - `valid_to ≤ max_end`;
//! - once `t ≥ valid_to` (ended), `valid_to` never changes again (never valid again);
//! - at the end `E`, if `E < max_end`: the new key was reported in use at some `F` that is a
//!   real admission of the new key, with `F + X ≤ E`; if Y is set, the old key's latest
//!   reported use `L` has `L + Y ≤ E`;
//! - the reason recorded by the last move names the rule that decided `E`: `max_grace` iff
//!   `E = max_end`; `old_key_unused` only with Y set and `E = max(L + Y, time of the move)`;
//!   `new_key_in_use` with `E = max(F + X, time of the move)`.

use crate::testing::Rng;
use std::cmp::Reverse;
use std::collections::BinaryHeap;

use super::{decide, Decision, Pending, Reason, Uses};
use crate::seen::LastUse;

const ROLL: i64 = 1_000_000;
const OLD: &str = "key_old";
const NEW: &str = "key_new";

enum Event {
    /// A request with the old (`false`) or new (`true`) key at an isolate.
    Request { isolate: usize, new_key: bool },
    /// A batch of `(key id, last use)` reaching the registry.
    Report(Vec<(String, i64)>),
    /// Nothing happens: lets the invariants see the clock pass the bound.
    Tick,
}

/// The registry's side: the old key's `valid_to`, the pending rule and the reported uses.
struct Registry {
    valid_to: i64,
    pending: Option<Pending>,
    first_new: Option<i64>,
    last_new: i64,
    last_old: Option<i64>,
    /// The last move: (its time, end, reason).
    last_move: Option<(i64, i64, Reason)>,
}

/// What the run ended with, for the summary.
pub(super) struct Outcome {
    pub ended_early: bool,
}

/// One run; `Err` names the broken invariant.
pub(super) fn run(seed: u64) -> Result<Outcome, String> {
    let mut rng = Rng(seed);
    let interval = [1_000, 5_000, 60_000][rng.below(3) as usize];
    let isolates_count = 1 + rng.below(6) as usize;
    let max_ms = interval * (1 + rng.below(20) as i64);
    let after_ms = rng.below(max_ms as u64 + 1) as i64;
    let unused_ms = rng.chance(50).then(|| rng.below(max_ms as u64 + 1) as i64);
    let max_end = ROLL + max_ms;
    let horizon = max_end + 3 * interval;
    let new_from = rng.chance(80).then(|| ROLL + rng.below((max_ms + interval) as u64) as i64);
    let old_until = if rng.chance(50) { horizon } else { ROLL + rng.below(max_ms as u64) as i64 };
    let new_share = 20 + rng.below(80);

    let mut queue: BinaryHeap<Reverse<(i64, u64, usize)>> = BinaryHeap::new();
    let mut events: Vec<Option<Event>> = Vec::new();
    let schedule = |queue: &mut BinaryHeap<Reverse<(i64, u64, usize)>>, events: &mut Vec<Option<Event>>, at: i64, event: Event| {
        events.push(Some(event));
        queue.push(Reverse((at, events.len() as u64, events.len() - 1)));
    };
    let requests = 20 + rng.below(300);
    for _ in 0..requests {
        let at = ROLL - interval + rng.below((horizon - ROLL + interval) as u64) as i64;
        let new_key = at >= ROLL && new_from.is_some_and(|from| at >= from) && rng.below(100) < new_share;
        if new_key || at < old_until {
            let isolate = rng.below(isolates_count as u64) as usize;
            schedule(&mut queue, &mut events, at, Event::Request { isolate, new_key });
        }
    }
    schedule(&mut queue, &mut events, max_end, Event::Tick);
    schedule(&mut queue, &mut events, horizon, Event::Tick);

    let rule = Pending { after_new_used_ms: after_ms, old_unused_ms: unused_ms, max_end, end: max_end };
    let mut registry = Registry { valid_to: max_end, pending: None, first_new: None, last_new: i64::MIN, last_old: None, last_move: None };
    let mut books: Vec<LastUse> = (0..isolates_count).map(|_| LastUse::default()).collect();
    let mut new_admissions: Vec<i64> = Vec::new();
    // What the registry learnt while the old key was valid: (first new use, last old use).
    let mut known = Uses::default();
    let mut ended: Option<i64> = None;

    while let Some(Reverse((now, _, index))) = queue.pop() {
        if now >= ROLL && registry.pending.is_none() && registry.last_move.is_none() && registry.valid_to == max_end {
            registry.pending = Some(rule);
        }
        match events[index].take() {
            Some(Event::Request { isolate, new_key }) => {
                let admitted = new_key || now < registry.valid_to;
                if admitted {
                    if new_key {
                        new_admissions.push(now);
                    }
                    books[isolate].record("acme", if new_key { NEW } else { OLD }, now);
                    if let Some(batch) = books[isolate].take_due(now, interval) {
                        let delay = rng.below(interval as u64 + 1) as i64;
                        for (_, seen) in batch {
                            schedule(&mut queue, &mut events, now + delay, Event::Report(seen));
                        }
                    }
                }
            }
            Some(Event::Report(seen)) => {
                // As the registry does: the new key's first use is its latest reported use when a
                // report first names it.
                for (id, at) in seen {
                    if id == NEW {
                        registry.last_new = registry.last_new.max(at);
                        registry.first_new = registry.first_new.or(Some(registry.last_new));
                    } else {
                        registry.last_old = Some(registry.last_old.map_or(at, |last| last.max(at)));
                    }
                }
                if now < registry.valid_to {
                    known = Uses { first_new: registry.first_new, last_old: registry.last_old };
                }
                if let Some(pending) = registry.pending {
                    let uses = Uses { first_new: registry.first_new, last_old: registry.last_old };
                    match decide(&pending, uses, Some(registry.valid_to), false, now) {
                        Decision::Keep => {}
                        Decision::Drop => registry.pending = None,
                        Decision::Move(end, reason) => {
                            registry.valid_to = end;
                            registry.pending = Some(Pending { end, ..pending });
                            registry.last_move = Some((now, end, reason));
                        }
                    }
                }
            }
            Some(Event::Tick) | None => {}
        }
        check(now, &registry, max_end, &rule, known, &new_admissions, &mut ended)?;
    }
    if ended.is_none() {
        return Err(format!("the old key never ended (valid_to {})", registry.valid_to));
    }
    Ok(Outcome { ended_early: registry.valid_to < max_end })
}

fn check(
    now: i64,
    registry: &Registry,
    max_end: i64,
    rule: &Pending,
    known: Uses,
    new_admissions: &[i64],
    ended: &mut Option<i64>,
) -> Result<(), String> {
    let end = registry.valid_to;
    if end > max_end {
        return Err(format!("at {now}: valid_to {end} is past the bound {max_end}"));
    }
    if let Some(frozen) = *ended {
        return if end == frozen { Ok(()) } else { Err(format!("at {now}: ended at {frozen}, but valid_to is now {end}")) };
    }
    if now < end {
        return Ok(());
    }
    *ended = Some(end);
    if end < max_end {
        let first_new = known.first_new.ok_or_else(|| format!("ended at {end} before the bound without a reported use of the new key"))?;
        if !new_admissions.contains(&first_new) {
            return Err(format!("the new key's reported use {first_new} was never admitted"));
        }
        if first_new + rule.after_new_used_ms > end {
            return Err(format!("ended at {end}, the new key was seen only from {first_new} (X {})", rule.after_new_used_ms));
        }
        if let (Some(unused), Some(last_old)) = (rule.old_unused_ms, known.last_old) {
            if last_old + unused > end {
                return Err(format!("ended at {end}, the old key was reported in use at {last_old} (Y {unused})"));
            }
        }
    }
    let reason = registry.last_move.map_or(Reason::MaxGrace, |(_, _, reason)| reason);
    let moved_at = registry.last_move.map_or(ROLL, |(at, _, _)| at);
    let consistent = match reason {
        Reason::MaxGrace => end == max_end,
        Reason::NewKeyInUse => end < max_end && known.first_new.is_some_and(|first| end == (first + rule.after_new_used_ms).max(moved_at)),
        Reason::OldKeyUnused => {
            end < max_end
                && matches!((rule.old_unused_ms, known.last_old), (Some(unused), Some(last)) if end == (last + unused).max(moved_at))
        }
    };
    if consistent {
        Ok(())
    } else {
        Err(format!("ended at {end} (bound {max_end}) with reason {}, which did not decide it", reason.as_str()))
    }
}

#[test]
fn thousands_of_seeded_runs_keep_the_old_key_exactly_as_long_as_the_rule_says() {
    const RUNS: u64 = 3_000;
    let mut early = 0;
    for seed in 0..RUNS {
        match run(seed) {
            Ok(outcome) => early += usize::from(outcome.ended_early),
            Err(broken) => panic!("seed {seed}: {broken}"),
        }
    }
    // Both paths are exercised: ended by use, and by the bound.
    assert!(early > RUNS as usize / 5 && early < RUNS as usize * 4 / 5, "{early} of {RUNS} runs ended early");
}
