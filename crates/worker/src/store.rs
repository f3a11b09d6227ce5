//! Record lookup: isolate cache first, then Workers KV (with KV's own edge cache TTL).
//!
//! - **No I/O shared between requests.** workerd forbids awaiting or resolving a promise (or any
//!   I/O object) in another request's context than the one that created it: under load such a
//!   continuation is cancelled. So every KV read is made and awaited by one request only; what
//!   the isolate shares is data: decoded records in the cache, and which hashes have a
//!   background re-read running ([`keygate_core::cache::InFlight`]).
//! - **Refresh ahead.** A found record in the last fifth of its TTL
//!   ([`keygate_core::cache::refresh_due`]) is re-read in the background, inside the `wait_until` of
//!   the request that noticed it, while every request goes on being served from the cache. One
//!   re-read per hash at a time. A key in steady use never expires, so none of its requests
//!   waits for KV, and no burst of them reads it at once. An answer is never older than the TTL.
//! - A request that misses the cache reads KV itself: a cold or expired key under concurrent
//!   load costs one read per concurrent miss (refresh-ahead keeps that rare for keys in use).
//!   For an unknown key, while one request re-reads it, the others keep the just-expired
//!   "unknown" answer (a refusal, never an admission), so a flood of one made-up key still costs
//!   about one read per negative TTL.
//! - A re-read never replaces a cached record with an older revision (KV is eventually
//!   consistent; the limiter may already have handed this isolate a newer one).

use std::cell::RefCell;
use std::rc::Rc;

use js_sys::futures::JsFuture;
use wasm_bindgen::prelude::*;
use worker::{Context, Env};

use keygate_core::cache::{keep_held, refresh_due, Cached, InFlight, TtlCache};
use keygate_core::config::Config;
use keygate_core::error::GatewayError;
use keygate_core::key::KeyHash;
use keygate_core::record::{self, KeyRecord};

use crate::respond::log_event;
use crate::runtime::kv_get_bytes;
use crate::Incoming;

/// KV namespace binding holding `key:<hash>` records.
pub const KEYS_BINDING: &str = "KEYS";

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

/// A background re-read not finished after this long is taken as abandoned (its request was
/// cancelled before it could say so): the next request in the refresh window starts another.
const REFRESH_ABANDONED_MS: i64 = 10_000;
/// At most this many background re-reads tracked at once per isolate.
const MAX_REFRESHES: usize = 1_000;

thread_local! {
    static CACHE: RefCell<Option<TtlCache<KeyHash, Rc<KeyRecord>>>> = const { RefCell::new(None) };
    /// Hashes with a background re-read running (data only: the reads themselves are never
    /// shared between requests).
    static REFRESHING: RefCell<InFlight<KeyHash>> = RefCell::new(InFlight::new(REFRESH_ABANDONED_MS, MAX_REFRESHES));
    /// Hashes a request is reading after a cache miss (data only, like `REFRESHING`).
    static READING: RefCell<InFlight<KeyHash>> = RefCell::new(InFlight::new(REFRESH_ABANDONED_MS, MAX_REFRESHES));
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

/// Caches what a KV read found, unless the cache holds a newer revision (KV is eventually
/// consistent; the limiter may have handed this isolate a newer record); returns the answer to
/// decide with.
fn remember_read(ttls: Ttls, hash: KeyHash, read: Option<KeyRecord>, now_ms: i64) -> Option<Rc<KeyRecord>> {
    if let Some((Cached::Found(held), _)) = cached(&hash, now_ms) {
        if keep_held(held.revision, read.as_ref().map(|r| r.revision)) {
            return Some(held);
        }
    }
    let Some(record) = read else {
        remember(ttls, hash, Cached::Missing, now_ms);
        return None;
    };
    let record = Rc::new(record);
    remember(ttls, hash, Cached::Found(record.clone()), now_ms);
    Some(record)
}

/// Adopts a newer record for `hash` (the limiter knew it before KV did): the cache holds it from
/// now on.
pub fn adopt(config: &Config, hash: KeyHash, record: Rc<KeyRecord>, now_ms: i64) {
    remember(Ttls::of(config), hash, Cached::Found(record), now_ms);
}

/// The record for `hash`, `None` if unknown. KV failures and corrupt records fail closed.
pub async fn lookup(
    env: &Env,
    ctx: &Context,
    config: &Config,
    hash: &KeyHash,
    incoming: &Incoming,
) -> Result<Option<Rc<KeyRecord>>, GatewayError> {
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
    // Expired or never seen: this request reads KV itself. While another request's read of the
    // hash is running, a just-expired "unknown" answer stands (a refusal, never an admission),
    // so a flood of one unknown key still costs about one read per negative TTL.
    let reading = READING.with(|r| r.borrow_mut().try_start(hash, incoming.now_ms));
    if !reading && expired_missing(hash) {
        return Ok(None);
    }
    let answer = match read(env, config, hash, incoming) {
        Ok(promise) => {
            let bytes = JsFuture::from(promise).await;
            settle(Ttls::of(config), *hash, bytes, incoming.now_ms, &|reason| {
                log_event("store_unavailable", incoming.request_id(), &[("reason", reason), ("key_hash", &hash.short())]);
            })
        }
        Err(error) => Err(error),
    };
    if reading {
        READING.with(|r| r.borrow_mut().finish(hash));
    }
    answer
}

/// The record for `hash` read from KV itself, past the isolate cache (for a leak report, which
/// must not take an "unknown" cached a moment ago for an answer); `None` if unknown.
pub async fn read_record(env: &Env, config: &Config, hash: &KeyHash, incoming: &Incoming) -> Result<Option<KeyRecord>, GatewayError> {
    let bytes = JsFuture::from(read(env, config, hash, incoming)?).await.map_err(|_| GatewayError::StoreUnavailable)?;
    if bytes.is_null() || bytes.is_undefined() {
        return Ok(None);
    }
    record::decode(&js_sys::Uint8Array::new(&bytes).to_vec()).map(Some).map_err(|_| GatewayError::StoreUnavailable)
}

/// Whether the cache holds an expired "unknown" entry for `hash`.
fn expired_missing(hash: &KeyHash) -> bool {
    CACHE.with(|cell| cell.borrow().as_ref().is_some_and(|cache| matches!(cache.peek(hash), Some(Cached::Missing))))
}

/// Re-reads `hash` inside this request's `wait_until`, unless a re-read of it is running.
fn refresh_in_background(env: &Env, ctx: &Context, config: &Config, hash: KeyHash, incoming: &Incoming) {
    let now_ms = incoming.now_ms;
    if !REFRESHING.with(|r| r.borrow_mut().try_start(&hash, now_ms)) {
        return;
    }
    let Ok(promise) = read(env, config, &hash, incoming) else {
        REFRESHING.with(|r| r.borrow_mut().finish(&hash));
        return;
    };
    let ttls = Ttls::of(config);
    crate::in_background(
        ctx,
        Box::pin(async move {
            // This request created the read and this request awaits it: nothing crosses contexts.
            let bytes = JsFuture::from(promise).await;
            REFRESHING.with(|r| r.borrow_mut().finish(&hash));
            // A failed refresh leaves the cached record to expire at its time; the next read retries.
            let _ = settle(ttls, hash, bytes, now_ms, &|reason| {
                log_event("store_refresh_failed", "background", &[("reason", reason), ("key_hash", &hash.short())]);
            });
        }),
    );
}

/// Starts a KV read of `hash`, owned by the calling request.
fn read(env: &Env, config: &Config, hash: &KeyHash, incoming: &Incoming) -> Result<js_sys::Promise, GatewayError> {
    let fail = |reason: &str| {
        log_event("store_unavailable", incoming.request_id(), &[("reason", reason), ("key_hash", &hash.short())]);
        GatewayError::StoreUnavailable
    };
    let namespace = js_sys::Reflect::get(env.as_ref(), &JsValue::from_str(KEYS_BINDING)).unwrap_or(JsValue::UNDEFINED);
    if namespace.is_undefined() || namespace.is_null() {
        return Err(fail("KEYS binding missing"));
    }
    crate::counters::kv_read();
    if config.kv_fault {
        return Err(fail("KV_FAULT test switch"));
    }
    kv_get_bytes(&namespace, &hash.storage_key(), config.kv_cache_ttl_seconds as f64).map_err(|_| fail("kv get failed"))
}

/// Turns a finished KV read into the cache entry and the answer.
fn settle(
    ttls: Ttls,
    hash: KeyHash,
    bytes: Result<JsValue, JsValue>,
    now_ms: i64,
    log_failure: &dyn Fn(&str),
) -> Result<Option<Rc<KeyRecord>>, GatewayError> {
    let bytes = bytes.map_err(|_| {
        log_failure("kv get failed");
        GatewayError::StoreUnavailable
    })?;
    if bytes.is_null() || bytes.is_undefined() {
        return Ok(remember_read(ttls, hash, None, now_ms));
    }
    let bytes = js_sys::Uint8Array::new(&bytes).to_vec();
    let record = record::decode(&bytes).map_err(|_| {
        log_failure("corrupt record");
        GatewayError::StoreUnavailable
    })?;
    Ok(remember_read(ttls, hash, Some(record), now_ms))
}
