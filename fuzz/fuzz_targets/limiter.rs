//! Limiter math: `keygate_core::limit::algorithm::decide` over arbitrary sequences of clock steps,
//! bursts and limit specs (within `validate_specs`), with the states carried the way the
//! Durable Object carries them (by limit name, across config changes). Invariants:
//! - a refused decision changes no state; `allowed` ⇔ no limit refused;
//! - `remaining` ≤ `limit`, and what was admitted at this instant plus `remaining` ≤ `limit`;
//! - GCRA: a burst at one instant admits at most `limit`, and over any span of length L at most
//!   `limit + L·limit/window` pass (the bound the module documents);
//! - quota: at most `limit` admitted per calendar window;
//! - resets and retry-afters stay within the window.
#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use keygate_core::limit::algorithm::{decide, validate_specs, LimitSpec, LimitState, QUOTA_WINDOW_SECONDS};
use libfuzzer_sys::fuzz_target;

/// Most `decide` calls per input, to keep each run fast.
const MAX_CALLS: usize = 6_000;
/// Latest clock the limiter is fed (year 9999), unix ms.
const MAX_NOW_MS: u64 = 253_402_300_799_999;

#[derive(Arbitrary, Debug)]
struct SpecIn {
    name: u8,
    limit: u64,
    window: u64,
    small: bool,
}

#[derive(Arbitrary, Debug)]
enum Step {
    /// Move the clock forward by this many ms.
    Advance(u32),
    /// Move the clock forward by whole seconds.
    AdvanceSeconds(u16),
    /// This many requests at the current instant.
    Burst(u16),
    /// One request.
    One,
    /// The key's limits change (tier edited, key moved to another tier).
    Reconfigure(Vec<SpecIn>),
}

#[derive(Arbitrary, Debug)]
struct Input {
    start_ms: u64,
    specs: Vec<SpecIn>,
    steps: Vec<Step>,
}

const WINDOWS: &[u64] = &[1, 2, 10, 60, 3_600, 86_399, 86_400, 604_800, 2_678_400];

fn specs_of(list: &[SpecIn]) -> Vec<LimitSpec> {
    let mut specs: Vec<LimitSpec> = Vec::new();
    for s in list.iter().take(8) {
        let name = format!("l{}", s.name % 12);
        if specs.iter().any(|x| x.name == name) {
            continue;
        }
        let limit = if s.small { 1 + s.limit % 64 } else { 1 + s.limit % 1_000_000_000 };
        let window = if s.small { WINDOWS[(s.window % WINDOWS.len() as u64) as usize] } else { 1 + s.window % 2_678_400 };
        specs.push(LimitSpec::new(name, limit, window));
    }
    assert!(validate_specs(&specs).is_ok(), "{specs:?}");
    specs
}

/// Per-spec bookkeeping since the last reconfiguration.
#[derive(Default, Clone)]
struct Track {
    /// Admissions so far (GCRA span bound).
    admitted: i128,
    /// min over earlier admissions i of (i·W − t_i·N), in ms units.
    best: Option<i128>,
    /// Quota: (window index, admitted in it).
    quota_window: Option<(i64, u64)>,
}

struct Limiter {
    specs: Vec<LimitSpec>,
    states: Vec<LimitState>,
    tracks: Vec<Track>,
    /// Whether states were carried over from other specs (then resets may exceed the window).
    carried: bool,
    instant: i64,
    admitted_now: u64,
    calls: usize,
}

impl Limiter {
    fn reconfigure(&mut self, specs: Vec<LimitSpec>) {
        // As the Durable Object does: look each new limit's state up by name.
        let states = specs
            .iter()
            .map(|spec| self.specs.iter().position(|s| s.name == spec.name).map(|i| self.states[i]).unwrap_or_default())
            .collect();
        self.carried = self.carried || specs.iter().any(|s| self.specs.iter().any(|o| o.name == s.name));
        self.tracks = vec![Track::default(); specs.len()];
        self.specs = specs;
        self.states = states;
        self.admitted_now = 0;
    }

    fn request(&mut self, now_ms: i64) {
        self.calls += 1;
        if now_ms != self.instant {
            self.instant = now_ms;
            self.admitted_now = 0;
        }
        let before = self.states.clone();
        let decision = decide(&self.specs, &mut self.states, now_ms);
        assert_eq!(decision.limits.len(), self.specs.len());
        assert_eq!(decision.allowed, decision.limits.iter().all(|l| !l.refused));
        if !decision.allowed {
            assert_eq!(self.states, before, "a refused request changed the limiter state");
        }
        if decision.allowed {
            self.admitted_now += 1;
        }
        for ((spec, status), track) in self.specs.iter().zip(&decision.limits).zip(self.tracks.iter_mut()) {
            assert_eq!((status.name.as_str(), status.limit, status.window_seconds), (spec.name.as_str(), spec.limit, spec.window_seconds));
            assert_eq!(status.quota, spec.is_quota());
            assert!(status.remaining <= spec.limit, "{spec:?}: remaining {} > limit", status.remaining);
            if decision.allowed {
                assert!(
                    self.admitted_now + status.remaining <= spec.limit,
                    "{spec:?}: {} admitted at {now_ms} and {} still promised",
                    self.admitted_now,
                    status.remaining
                );
            }
            if status.refused {
                assert!(status.retry_after_seconds >= 1, "{spec:?}: refused with retry-after 0");
            } else {
                assert_eq!(status.retry_after_seconds, 0);
            }
            if !self.carried {
                assert!(status.reset_seconds <= spec.window_seconds, "{spec:?}: reset {} s", status.reset_seconds);
                assert!(status.retry_after_seconds <= spec.window_seconds, "{spec:?}: retry {} s", status.retry_after_seconds);
            }
            if !decision.allowed {
                continue;
            }
            let (n, w_ms) = (i128::from(spec.limit), i128::from(spec.window_seconds) * 1000);
            if spec.window_seconds >= QUOTA_WINDOW_SECONDS {
                let window = now_ms.div_euclid(spec.window_seconds as i64 * 1000);
                let count = match track.quota_window {
                    Some((w, c)) if w == window => c + 1,
                    _ => 1,
                };
                track.quota_window = Some((window, count));
                assert!(count <= spec.limit, "{spec:?}: {count} admitted in one calendar window");
            } else {
                // Admission number j (0-based) at t_j: (j+1)·W − t_j·N ≤ N·W + min_i (i·W − t_i·N).
                let j = track.admitted;
                let t = i128::from(now_ms);
                let mine = j * w_ms - t * n;
                let best = track.best.map_or(mine, |b| b.min(mine));
                assert!(
                    (j + 1) * w_ms - t * n <= n * w_ms + best,
                    "{spec:?}: more than limit + L·limit/window admitted over a span ending at {now_ms}"
                );
                track.best = Some(best);
                track.admitted += 1;
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let Ok(input) = Input::arbitrary(&mut u) else { return };
    let mut now_ms = (input.start_ms % MAX_NOW_MS) as i64;
    let specs = specs_of(&input.specs);
    let mut limiter = Limiter {
        tracks: vec![Track::default(); specs.len()],
        states: vec![LimitState::default(); specs.len()],
        specs,
        carried: false,
        instant: now_ms,
        admitted_now: 0,
        calls: 0,
    };
    for step in &input.steps {
        if limiter.calls >= MAX_CALLS {
            break;
        }
        match step {
            Step::Advance(ms) => now_ms = (now_ms + i64::from(*ms)).min(MAX_NOW_MS as i64),
            Step::AdvanceSeconds(s) => now_ms = (now_ms + i64::from(*s) * 1000).min(MAX_NOW_MS as i64),
            Step::Burst(count) => {
                for _ in 0..*count {
                    if limiter.calls >= MAX_CALLS {
                        break;
                    }
                    limiter.request(now_ms);
                }
            }
            Step::One => limiter.request(now_ms),
            Step::Reconfigure(list) => limiter.reconfigure(specs_of(list)),
        }
    }
});
