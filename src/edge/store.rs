//! Record lookup: isolate cache first, then Workers KV (with KV's own edge cache TTL).
//!
//! - **One read per hash at a time.** A KV read in flight is shared: requests for the same hash
//!   that arrive meanwhile await the same promise instead of issuing their own read, so when a
//!   record expires under load, one read refills the cache, not one per concurrent request.
//! - **Refresh ahead.** A found record in the last fifth of its TTL
//!   ([`crate::cache::refresh_due`]) is re-read in the background (`wait_until`) while the
//!   requests go on being served from the cache. A key in steady use never expires, so none of
//!   its requests waits for KV. An answer is never older than the TTL, as before.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use wasm_bindgen::prelude::*;
use js_sys::futures::JsFuture;
use worker::{Context, Env};

use crate::cache::{refresh_due, Cached, TtlCache};
use crate::config::Config;
use crate::error::GatewayError;
use crate::key::KeyHash;
use crate::record::{self, KeyRecord};

use super::respond::log_event;
use super::Incoming;

/// KV namespace binding holding `key:<hash>` records.
pub const KEYS_BINDING: &str = "KEYS";

#[wasm_bindgen(inline_js = r#"
export function kvGetBytes(namespace, key, cacheTtl) {
  return namespace.get(key, { type: "arrayBuffer", cacheTtl }).then((value) => (value === null ? null : new Uint8Array(value)));
}
"#)]
extern "C" {
    /// `KV.get(key, {type: "arrayBuffer", cacheTtl})` as a promise of a `Uint8Array` or `null`.
    #[wasm_bindgen(js_name = kvGetBytes, catch)]
    fn kv_get_bytes(namespace: &JsValue, key: &str, cache_ttl: f64) -> Result<js_sys::Promise, JsValue>;
}

/// The cache's TTLs and bound, copied out of the config so background work can own them.
#[derive(Clone, Copy)]
struct Ttls {
    found_ms: i64,
    missing_ms: i64,
    max_entries: usize,
}

impl Ttls {
    fn of(config: &Config) -> Ttls {
        Ttls { found_ms: config.cache_ttl_ms, missing_ms: config.negative_cache_ttl_ms, max_entries: config.cache_max_entries }
    }
}

thread_local! {
    static CACHE: RefCell<Option<TtlCache<KeyHash, Rc<KeyRecord>>>> = const { RefCell::new(None) };
    /// KV reads in flight, by hash: later requests for the hash await the same promise.
    static IN_FLIGHT: RefCell<HashMap<KeyHash, js_sys::Promise>> = RefCell::new(HashMap::new());
}

fn cached(hash: &KeyHash, now_ms: i64) -> Option<(Cached<Rc<KeyRecord>>, i64)> {
    CACHE.with(|cell| cell.borrow().as_ref().and_then(|cache| cache.get_with_expiry(hash, now_ms)))
}

fn remember(ttls: Ttls, hash: KeyHash, value: Cached<Rc<KeyRecord>>, now_ms: i64) {
    let ttl = match value {
        Cached::Found(_) => ttls.found_ms,
        Cached::Missing => ttls.missing_ms,
    };
    CACHE.with(|cell| cell.borrow_mut().get_or_insert_with(|| TtlCache::new(ttls.max_entries)).put(hash, value, now_ms, ttl));
}

/// Replaces the cached record for `hash` with a newer one (from the limiter) and returns it.
pub fn refresh(config: &Config, hash: KeyHash, record: KeyRecord, now_ms: i64) -> Rc<KeyRecord> {
    let record = Rc::new(record);
    remember(Ttls::of(config), hash, Cached::Found(record.clone()), now_ms);
    record
}

/// The record for `hash`, `None` if unknown. KV failures and corrupt records fail closed.
pub async fn lookup(env: &Env, ctx: &Context, config: &Config, hash: &KeyHash, incoming: &Incoming) -> Result<Option<Rc<KeyRecord>>, GatewayError> {
    match cached(hash, incoming.now_ms) {
        Some((Cached::Found(record), expires_ms)) => {
            if refresh_due(expires_ms, incoming.now_ms, config.cache_ttl_ms) {
                refresh_in_background(env, ctx, config, *hash, incoming);
            }
            return Ok(Some(record));
        }
        Some((Cached::Missing, _)) => return Ok(None),
        None => {}
    }
    let (promise, _) = read(env, config, hash, incoming)?;
    let bytes = JsFuture::from(promise.clone()).await;
    settle(Ttls::of(config), *hash, &promise, bytes, incoming.now_ms, &|reason| {
        log_event("store_unavailable", incoming.request_id(), &[("reason", reason), ("key_hash", &hash.short())]);
    })
}

/// Starts a background re-read of `hash` unless one is already in flight.
fn refresh_in_background(env: &Env, ctx: &Context, config: &Config, hash: KeyHash, incoming: &Incoming) {
    let Ok((promise, started)) = read(env, config, &hash, incoming) else { return };
    if !started {
        return;
    }
    let ttls = Ttls::of(config);
    let now_ms = incoming.now_ms;
    ctx.wait_until(async move {
        let bytes = JsFuture::from(promise.clone()).await;
        // A failed refresh leaves the cached record to expire at its time; the next read retries.
        let _ = settle(ttls, hash, &promise, bytes, now_ms, &|reason| {
            log_event("store_refresh_failed", "background", &[("reason", reason), ("key_hash", &hash.short())]);
        });
    });
}

/// The KV read for `hash`: the one in flight if there is one (`false`), else a new one (`true`).
fn read(env: &Env, config: &Config, hash: &KeyHash, incoming: &Incoming) -> Result<(js_sys::Promise, bool), GatewayError> {
    if let Some(promise) = IN_FLIGHT.with(|m| m.borrow().get(hash).cloned()) {
        return Ok((promise, false));
    }
    let fail = |reason: &str| {
        log_event("store_unavailable", incoming.request_id(), &[("reason", reason), ("key_hash", &hash.short())]);
        GatewayError::StoreUnavailable
    };
    let namespace = js_sys::Reflect::get(env.as_ref(), &JsValue::from_str(KEYS_BINDING)).unwrap_or(JsValue::UNDEFINED);
    if namespace.is_undefined() || namespace.is_null() {
        return Err(fail("KEYS binding missing"));
    }
    super::counters::kv_read();
    if config.kv_fault {
        return Err(fail("KV_FAULT test switch"));
    }
    let promise = kv_get_bytes(&namespace, &hash.storage_key(), config.kv_cache_ttl_seconds as f64).map_err(|_| fail("kv get failed"))?;
    IN_FLIGHT.with(|m| m.borrow_mut().insert(*hash, promise.clone()));
    Ok((promise, true))
}

/// Turns a finished KV read into the cache entry and the answer; the read stops being in flight.
fn settle(
    ttls: Ttls,
    hash: KeyHash,
    promise: &js_sys::Promise,
    bytes: Result<JsValue, JsValue>,
    now_ms: i64,
    log_failure: &dyn Fn(&str),
) -> Result<Option<Rc<KeyRecord>>, GatewayError> {
    IN_FLIGHT.with(|m| {
        let mut in_flight = m.borrow_mut();
        // Only this read's entry: a newer read for the hash may have started since.
        if in_flight.get(&hash).is_some_and(|current| js_sys::Object::is(current, promise)) {
            in_flight.remove(&hash);
        }
    });
    let bytes = bytes.map_err(|_| {
        log_failure("kv get failed");
        GatewayError::StoreUnavailable
    })?;
    if bytes.is_null() || bytes.is_undefined() {
        remember(ttls, hash, Cached::Missing, now_ms);
        return Ok(None);
    }
    let bytes = js_sys::Uint8Array::new(&bytes).to_vec();
    let record = record::decode(&bytes).map_err(|_| {
        log_failure("corrupt record");
        GatewayError::StoreUnavailable
    })?;
    let record = Rc::new(record);
    remember(ttls, hash, Cached::Found(record.clone()), now_ms);
    Ok(Some(record))
}
