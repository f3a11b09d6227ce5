//! Record lookup: isolate cache first, then Workers KV (with KV's own edge cache TTL).

use std::cell::RefCell;
use std::rc::Rc;

use worker::Env;

use crate::cache::{Cached, TtlCache};
use crate::config::Config;
use crate::error::GatewayError;
use crate::key::KeyHash;
use crate::record::{self, KeyRecord};

use super::respond::log_event;
use super::Incoming;

/// KV namespace binding holding `key:<hash>` records.
pub const KEYS_BINDING: &str = "KEYS";

thread_local! {
    static CACHE: RefCell<Option<TtlCache<KeyHash, Rc<KeyRecord>>>> = const { RefCell::new(None) };
}

fn cached(hash: &KeyHash, now_ms: i64) -> Option<Cached<Rc<KeyRecord>>> {
    CACHE.with(|cell| cell.borrow().as_ref().and_then(|cache| cache.get(hash, now_ms)))
}

fn remember(config: &Config, hash: KeyHash, value: Cached<Rc<KeyRecord>>, now_ms: i64) {
    let ttl = match value {
        Cached::Found(_) => config.cache_ttl_ms,
        Cached::Missing => config.negative_cache_ttl_ms,
    };
    CACHE.with(|cell| {
        cell.borrow_mut()
            .get_or_insert_with(|| TtlCache::new(config.cache_max_entries))
            .put(hash, value, now_ms, ttl)
    });
}

/// Replaces the cached record for `hash` with a newer one (from the limiter) and returns it.
pub fn refresh(config: &Config, hash: KeyHash, record: KeyRecord, now_ms: i64) -> Rc<KeyRecord> {
    let record = Rc::new(record);
    remember(config, hash, Cached::Found(record.clone()), now_ms);
    record
}

/// The record for `hash`, `None` if unknown. KV failures and corrupt records fail closed.
pub async fn lookup(env: &Env, config: &Config, hash: &KeyHash, incoming: &Incoming) -> Result<Option<Rc<KeyRecord>>, GatewayError> {
    match cached(hash, incoming.now_ms) {
        Some(Cached::Found(record)) => return Ok(Some(record)),
        Some(Cached::Missing) => return Ok(None),
        None => {}
    }
    let store = env.kv(KEYS_BINDING).map_err(|_| {
        log_event("store_unavailable", incoming.request_id(), &[("reason", "KEYS binding missing")]);
        GatewayError::StoreUnavailable
    })?;
    super::counters::kv_read();
    if config.kv_fault {
        log_event("store_unavailable", incoming.request_id(), &[("reason", "KV_FAULT test switch"), ("key_hash", &hash.short())]);
        return Err(GatewayError::StoreUnavailable);
    }
    let bytes = store
        .get(&hash.storage_key())
        .cache_ttl(config.kv_cache_ttl_seconds)
        .bytes()
        .await
        .map_err(|_| {
            log_event("store_unavailable", incoming.request_id(), &[("reason", "kv get failed"), ("key_hash", &hash.short())]);
            GatewayError::StoreUnavailable
        })?;
    let Some(bytes) = bytes else {
        remember(config, *hash, Cached::Missing, incoming.now_ms);
        return Ok(None);
    };
    let record = record::decode(&bytes).map_err(|_| {
        log_event("store_unavailable", incoming.request_id(), &[("reason", "corrupt record"), ("key_hash", &hash.short())]);
        GatewayError::StoreUnavailable
    })?;
    let record = Rc::new(record);
    remember(config, *hash, Cached::Found(record.clone()), incoming.now_ms);
    Ok(Some(record))
}
