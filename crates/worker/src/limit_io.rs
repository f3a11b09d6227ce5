//! The limit phase's I/O: what [`keygate_core::gate`] asks of limiters and Rate Limiting
//! bindings, and the isolate's memory it decides with.
//!
//! Every decision (blocked-until memory, `fast` mode and its binding override,
//! `RATE_LIMIT_FAILURE`, which refusals to count in usage and when to flush them) is the core's
//! ([`keygate_core::gate::limit`]); this module only performs the calls:
//! - `exact` mode: the family's `KeyLimiter` Durable Object (see [`crate::key_limiter`]);
//! - `fast` mode: the tier's Workers Rate Limiting binding, when it names one (its counting is
//!   itself eventually consistent and per Cloudflare location);
//! - the batched flush of refused usage, inside the `wait_until` of the request that started it.
//!
//! A failed call is logged (`limiter_unavailable`) and answered as "no answer", which the core
//! resolves with `RATE_LIMIT_FAILURE` (or, for a fresher-record question, by letting the refusal
//! stand). `LIMITER_FAULT` makes every call fail, for the tests.

use std::cell::RefCell;
use std::rc::Rc;

use wasm_bindgen::JsValue;
use worker::{Context, Env};

use keygate_core::config::Config;
use keygate_core::gate::IsolateState;
use keygate_core::limit::protocol::{LimiterOp, LimiterReply};
use keygate_core::record::KeyRecord;

use crate::key_limiter::call;
use crate::respond::log_event;
use crate::Incoming;

thread_local! {
    /// What this isolate remembers between requests (bounded by the core). Borrowed only for
    /// synchronous core calls, never across an `await`.
    static ISOLATE: RefCell<IsolateState> = RefCell::new(new_isolate());
}

/// This isolate's state, with a random 64-bit id for its leases, drawn once per isolate.
fn new_isolate() -> IsolateState {
    let mut isolate = IsolateState::default();
    let mut bytes = [0u8; 8];
    // Two isolates must not share an id (the limiter would mix up their grants): without
    // `crypto.getRandomValues`, `Math.random` still tells them apart.
    let id = match getrandom::getrandom(&mut bytes) {
        Ok(()) => u64::from_le_bytes(bytes),
        Err(_) => (js_sys::Math::random() * 2f64.powi(53)) as u64 ^ (crate::now_ms() as u64).rotate_left(40),
    };
    isolate.leases.set_isolate_id(id);
    isolate
}

/// Runs `decide` with this isolate's state.
pub fn with_isolate<T>(decide: impl FnOnce(&mut IsolateState) -> T) -> T {
    ISOLATE.with_borrow_mut(decide)
}

/// Sends `op` to the limiter of `family` for the gate; `None` when it cannot answer. A failed
/// hit is logged (a failed fresher-record question is not: the refusal simply stands).
pub async fn ask(env: &Env, config: &Config, family: &str, op: &LimiterOp, incoming: &Incoming) -> Option<LimiterReply> {
    let outcome = if config.limiter_fault { Err("LIMITER_FAULT test switch".to_string()) } else { call(env, family, op).await };
    outcome
        .map_err(|reason| {
            if let LimiterOp::Lease(key_id, ..) = op {
                log_event("limiter_unavailable", incoming.request_id(), &[("reason", &reason), ("key_id", key_id)]);
            }
        })
        .ok()
}

/// Asks the Rate Limiting binding `name` about `family`; `None` when it cannot answer (missing
/// binding, failed call).
pub async fn binding_allows(env: &Env, config: &Config, name: &str, family: String, incoming: &Incoming) -> Option<bool> {
    let outcome = match env.rate_limiter(name) {
        // From JS (crate::runtime::rate_limit): worker's `limit` would bring serde_wasm_bindgen.
        Ok(limiter) if !config.limiter_fault => limit(limiter.as_ref(), &family).await.map_err(|e| e.to_string()),
        Ok(_) => Err("LIMITER_FAULT test switch".to_string()),
        Err(e) => Err(format!("binding {name}: {e}")),
    };
    outcome.map_err(|reason| log_event("limiter_unavailable", incoming.request_id(), &[("reason", &reason)])).ok()
}

/// Sends `op` (a lease's early renewal) to the limiter of `family` inside this request's own
/// `wait_until`; its answer goes to the isolate's leases. The request
/// does not wait for it, and no other request waits for it either.
pub fn background(env: &Env, ctx: &Context, config: &Config, record: Rc<KeyRecord>, op: LimiterOp) {
    let env = env.clone();
    let fault = config.limiter_fault;
    crate::in_background(
        ctx,
        Box::pin(async move {
            let reply = if fault { None } else { call(&env, record.family_id(), &op).await.ok() };
            with_isolate(|isolate| isolate.leases.answered(&record, reply.as_ref(), true, false));
        }),
    );
}

/// Sends the isolate's tallied refusals to their limiters after the response, inside this
/// request's `wait_until`, in the batches the core hands out.
pub fn flush_refused(env: &Env, ctx: &Context) {
    let env = env.clone();
    crate::in_background(
        ctx,
        Box::pin(async move {
            while let Some(batch) = with_isolate(|isolate| isolate.refused.next_batch()) {
                for (family, op) in batch {
                    let _ = call(&env, &family, &op).await;
                }
            }
        }),
    );
}

/// `binding.limit({key})`'s `success`, with worker's `RateLimiter::limit` errors.
async fn limit(binding: &JsValue, key: &str) -> worker::Result<bool> {
    let outcome = js_sys::futures::JsFuture::from(crate::runtime::rate_limit(binding, key)?).await?;
    outcome.as_bool().ok_or_else(|| worker::Error::RustError("invalid type: expected a boolean `success`".into()))
}
