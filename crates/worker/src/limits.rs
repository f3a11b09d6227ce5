//! Enforcing a key's limits and status epoch on the hot path.
//!
//! - `exact` mode: ask the family's `KeyLimiter` Durable Object (see [`crate::limiter`]).
//! - `fast` mode: no Durable Object. The same algorithm decides every limit on per-isolate
//!   state (each isolate counts alone, so N isolates admit up to N× a limit), and, when the
//!   key's tier names a Workers Rate Limiting binding, that binding also enforces the tier's
//!   per-minute (or 10 s) limit across the isolates of a Cloudflare location (its counting is
//!   itself eventually consistent and per location). Status changes are seen when the caches
//!   expire (`CACHE_TTL_SECONDS` + KV propagation).
//! - Once a family is refused, this isolate remembers "blocked until" and answers 429 itself
//!   until then, so a 429 flood never reaches the Durable Object; those refusals are counted
//!   in usage by a batched call off the hot path (`wait_until`).
//! - Limiter unreachable: `RATE_LIMIT_FAILURE=open` serves the request (authentication was
//!   already enforced), `closed` answers 503 `STORE_UNAVAILABLE`.

use std::cell::RefCell;
use std::collections::HashMap;

use worker::{Context, Env};

use keygate_core::cache::InFlight;
use keygate_core::config::{Config, FailurePolicy};
use keygate_core::error::GatewayError;
use keygate_core::limit::algorithm::{Decision, LimitSpec};
use keygate_core::limit::headers;
use keygate_core::limit::local::LocalCounters;
use keygate_core::limit::protocol::{LimiterOp, LimiterReply};
use keygate_core::record::{KeyRecord, LimitMode};

use crate::limiter::call;
use crate::respond::log_event;
use crate::Incoming;

/// The request may proceed; these headers go on the response.
pub struct Verdict {
    /// Rate-limit headers for the response (empty for a key without limits).
    pub headers: Vec<(&'static str, String)>,
}

/// What enforcement concluded.
pub enum Enforced {
    /// Proceed.
    Proceed(Verdict),
    /// The worker's record is stale: re-check the request with this newer one.
    Stale(KeyRecord),
}

/// A refusal with the headers that go with it.
pub struct Refusal {
    pub error: GatewayError,
    pub headers: Vec<(&'static str, String)>,
}

impl From<GatewayError> for Refusal {
    fn from(error: GatewayError) -> Refusal {
        Refusal { error, headers: Vec::new() }
    }
}

struct Blocked {
    until_ms: i64,
    decision: Decision,
    /// The limits the refusal was decided under: a record with other limits (an admin raised
    /// them, and this isolate's cache has refreshed) is not held to it.
    specs: Vec<LimitSpec>,
}

/// A usage flush still running after this long is taken as abandoned (its request's
/// `wait_until` was cancelled): the next refusal starts another.
const FLUSH_ABANDONED_MS: i64 = 30_000;
/// At most this many batches per flush, so one request's `wait_until` stays short under a
/// sustained 429 flood; what arrives later is flushed by the next refusal's request.
const FLUSH_ROUNDS: usize = 4;
/// At most this many (family, key) refusal counters wait for a flush; beyond that, refusals of
/// new keys are not counted in usage until a flush has run (memory stays bounded).
const MAX_PENDING_REFUSED: usize = 10_000;

thread_local! {
    static BLOCKED: RefCell<HashMap<String, Blocked>> = RefCell::new(HashMap::new());
    static FAST_STATE: RefCell<LocalCounters> = RefCell::new(LocalCounters::default());
    /// Refusals counted here and not yet sent to their limiters (numbers only: each flush makes
    /// and awaits its own Durable Object calls in its own request's `wait_until`).
    static PENDING_REFUSED: RefCell<HashMap<(String, String), u64>> = RefCell::new(HashMap::new());
    static FLUSHING: RefCell<InFlight<()>> = RefCell::new(InFlight::new(FLUSH_ABANDONED_MS, 1));
}

fn refusal_error(decision: &Decision) -> GatewayError {
    match decision.refusal() {
        Some(limit) if limit.quota => GatewayError::QuotaExceeded { limit: limit.name.clone(), retry_after: limit.retry_after_seconds },
        Some(limit) => GatewayError::RateLimitExceeded { limit: limit.name.clone(), retry_after: limit.retry_after_seconds },
        None => GatewayError::RateLimitExceeded { limit: String::new(), retry_after: 1 },
    }
}

/// Applies the limits and status epoch of `record` to this request.
pub async fn enforce(env: &Env, ctx: &Context, config: &Config, record: &KeyRecord, incoming: &Incoming) -> Result<Enforced, Refusal> {
    let specs = config.limits_for(record);
    let mode = config.mode_for(record);
    if specs.is_empty() && mode == LimitMode::Fast {
        // Nothing to count and no epoch to check: the hot path of a key without limits.
        return Ok(Enforced::Proceed(Verdict { headers: Vec::new() }));
    }
    let family = record.family_id().to_string();
    let now_ms = incoming.now_ms;
    let now_seconds = (now_ms / 1000) as u64;

    if !specs.is_empty() {
        let blocked = BLOCKED.with(|b| {
            b.borrow()
                .get(&family)
                .filter(|entry| now_ms < entry.until_ms && entry.specs == specs)
                .map(|entry| (entry.until_ms, entry.decision.clone()))
        });
        if let Some((until_ms, mut decision)) = blocked {
            let left_seconds = ((until_ms - now_ms + 999) / 1000).max(1) as u64;
            for limit in decision.limits.iter_mut().filter(|l| l.refused) {
                limit.retry_after_seconds = left_seconds;
            }
            if mode == LimitMode::Exact {
                count_refused_later(env, ctx, &family, &record.id, now_ms);
            }
            return Err(Refusal {
                error: refusal_error(&decision),
                headers: headers::render(specs, &decision, now_seconds, config.rate_limit_header_limit.as_deref()),
            });
        }
    }

    let decision = match mode {
        LimitMode::Fast => {
            let mut decision = FAST_STATE.with(|s| s.borrow_mut().decide(&family, specs, now_ms));
            if decision.allowed {
                if let Some(fast) = config.fast_binding_for(record) {
                    let allowed = match binding_allows(env, config, &fast.binding, &family, incoming).await {
                        Ok(allowed) => allowed,
                        Err(()) if config.rate_limit_failure == FailurePolicy::Open => true,
                        Err(()) => return Err(Refusal::from(GatewayError::StoreUnavailable)),
                    };
                    if !allowed {
                        // The location-wide counter is spent: report it on the limit it enforces.
                        decision.allowed = false;
                        for limit in decision.limits.iter_mut().filter(|l| l.name == fast.limit) {
                            limit.refused = true;
                            limit.remaining = 0;
                            limit.retry_after_seconds = limit.window_seconds;
                        }
                    }
                }
            }
            decision
        }
        LimitMode::Exact => match ask_limiter(env, config, &family, record, specs, incoming).await {
            Ok(LimiterReply::Decided { decision }) => decision,
            Ok(LimiterReply::Stale { record }) => return Ok(Enforced::Stale(record)),
            Ok(_) | Err(()) => {
                return match config.rate_limit_failure {
                    FailurePolicy::Open => Ok(Enforced::Proceed(Verdict { headers: Vec::new() })),
                    FailurePolicy::Closed => Err(Refusal::from(GatewayError::StoreUnavailable)),
                };
            }
        },
    };
    let rendered = headers::render(specs, &decision, now_seconds, config.rate_limit_header_limit.as_deref());
    if decision.allowed {
        return Ok(Enforced::Proceed(Verdict { headers: rendered }));
    }
    let wait_ms = decision.refusal().map(|l| l.retry_after_ms as i64).unwrap_or(1000).max(1);
    BLOCKED.with(|b| {
        let mut blocked = b.borrow_mut();
        if blocked.len() > 10_000 {
            blocked.retain(|_, entry| entry.until_ms > now_ms);
        }
        blocked.insert(family, Blocked { until_ms: now_ms + wait_ms, decision: decision.clone(), specs: specs.to_vec() });
    });
    Err(Refusal { error: refusal_error(&decision), headers: rendered })
}

async fn ask_limiter(
    env: &Env,
    config: &Config,
    family: &str,
    record: &KeyRecord,
    specs: &[LimitSpec],
    incoming: &Incoming,
) -> Result<LimiterReply, ()> {
    let fail = |reason: &str| {
        log_event("limiter_unavailable", incoming.request_id(), &[("reason", reason), ("key_id", &record.id)]);
    };
    if config.limiter_fault {
        fail("LIMITER_FAULT test switch");
        return Err(());
    }
    let op = LimiterOp::Hit { key_id: record.id.clone(), revision: record.revision, limits: specs.to_vec() };
    call(env, family, &op).await.map_err(|reason| fail(&reason))
}

/// Asks the Rate Limiting binding `name` about `family`; `Err` when it cannot answer (missing
/// binding, failed call), which the caller resolves with `RATE_LIMIT_FAILURE`.
async fn binding_allows(env: &Env, config: &Config, name: &str, family: &str, incoming: &Incoming) -> Result<bool, ()> {
    let outcome = match env.rate_limiter(name) {
        Ok(limiter) if !config.limiter_fault => limiter.limit(family.to_string()).await.map(|o| o.success).map_err(|e| e.to_string()),
        Ok(_) => Err("LIMITER_FAULT test switch".to_string()),
        Err(e) => Err(format!("binding {name}: {e}")),
    };
    outcome.map_err(|reason| log_event("limiter_unavailable", incoming.request_id(), &[("reason", &reason)]))
}

/// A newer record of an exact-mode key than `record`, if its limiter knows one. Asked before
/// refusing a key as disabled or outside its window: the admin API may have just changed it.
/// Any failure means "no newer record" (the refusal stands: fail closed).
pub async fn fresher(env: &Env, config: &Config, record: &KeyRecord) -> Option<KeyRecord> {
    if config.mode_for(record) != LimitMode::Exact || config.limiter_fault {
        return None;
    }
    let op = LimiterOp::IsStale { key_id: record.id.clone(), revision: record.revision };
    match call(env, record.family_id(), &op).await {
        Ok(LimiterReply::Stale { record }) => Some(record),
        _ => None,
    }
}

/// Counts a refusal made in this isolate; a batched flush runs after the response, inside this
/// request's `wait_until` unless another request's flush is running.
fn count_refused_later(env: &Env, ctx: &Context, family: &str, key_id: &str, now_ms: i64) {
    PENDING_REFUSED.with(|p| {
        let mut pending = p.borrow_mut();
        let slot = (family.to_string(), key_id.to_string());
        if let Some(count) = pending.get_mut(&slot) {
            *count += 1;
        } else if pending.len() < MAX_PENDING_REFUSED {
            pending.insert(slot, 1);
        }
    });
    if !FLUSHING.with(|f| f.borrow_mut().try_start(&(), now_ms)) {
        return;
    }
    let env = env.clone();
    ctx.wait_until(async move {
        for _ in 0..FLUSH_ROUNDS {
            let batch: Vec<((String, String), u64)> = PENDING_REFUSED.with(|p| p.borrow_mut().drain().collect());
            if batch.is_empty() {
                break;
            }
            for ((family, key_id), count) in batch {
                let _ = call(&env, &family, &LimiterOp::AddRefused { key_id, count }).await;
            }
        }
        FLUSHING.with(|f| f.borrow_mut().finish(&()));
    });
}
