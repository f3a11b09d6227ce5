//! GitHub secret-scanning reports (`POST <ADMIN_PREFIX>/leaks/github`, when `LEAK_REPORTS=on`):
//! read the body (bounded), verify GitHub's signature with Web Crypto against the published key
//! (fetched into this isolate, refreshed on an unknown identifier, bounded), then look up every
//! reported token by hash in KV, [`PARALLEL`] at a time, and have the registry of each key found
//! act on it ([`keygate_core::leak`] decides all of it). A reported token is a plaintext key: it
//! is hashed, never logged.

use std::cell::RefCell;

use std::future::Future;
use std::pin::Pin;
use std::task::Poll;

use js_sys::futures::JsFuture;
use worker::Env;

use keygate_core::admin::body;
use keygate_core::admin::protocol::Op;
use keygate_core::config::Config;
use keygate_core::error::GatewayError;
use keygate_core::leak::{self, Label, PublicKeyCache, ReportProblem, ReportedToken};

use crate::respond::log_event;
use crate::Incoming;

/// Tokens looked up and acted on at once: a batch of thousands finishes in time without
/// opening thousands of KV reads and registry calls together.
const PARALLEL: usize = 16;

thread_local! {
    /// Decoded keys only: a fetch is made and awaited by the one request that started it.
    static PUBLIC_KEYS: RefCell<PublicKeyCache> = const { RefCell::new(PublicKeyCache::new()) };
}

/// Handles one report: `200` with GitHub's feedback, `401` for a bad signature (nothing read or
/// changed), `413` over [`leak::MAX_BODY_BYTES`], `503` when a key could not be acted on (GitHub
/// retries; acting again is harmless).
pub async fn handle(incoming: &mut Incoming, env: &Env, config: &Config) -> Result<(u16, String), GatewayError> {
    body::check_declared(incoming.header("content-length").as_deref(), leak::MAX_BODY_BYTES)?;
    let bytes = incoming.request.bytes().await.map_err(|_| GatewayError::BadRequest { reason: "unreadable body".into() })?;
    if bytes.len() > leak::MAX_BODY_BYTES {
        return Err(GatewayError::PayloadTooLarge { limit: leak::MAX_BODY_BYTES });
    }
    verify(incoming, config, &bytes).await.map_err(|reason| {
        log_event("leak_report_refused", incoming.request_id(), &[("reason", reason)]);
        GatewayError::ReportUnverified
    })?;
    let tokens = leak::parse_report(&bytes).map_err(|problem| match problem {
        ReportProblem::TooLarge => GatewayError::PayloadTooLarge { limit: leak::MAX_BODY_BYTES },
        ReportProblem::Malformed => GatewayError::BadRequest { reason: "not a secret-scanning report".into() },
    })?;
    let incoming = &*incoming;
    let labels = judge_all(&tokens, |token| judge(env, config, token, incoming)).await?;
    Ok((200, leak::feedback(&tokens, &labels)))
}

/// `judge` on every token, at most [`PARALLEL`] at once (the next starts as one ends): the labels
/// in the tokens' order, or the first failure (no new token starts after one). (futures-util's
/// `buffered` does this too, at ~1.5 KB more wasm.)
async fn judge_all<'a, F>(tokens: &'a [ReportedToken], judge: impl Fn(&'a ReportedToken) -> F) -> Result<Vec<Label>, GatewayError>
where
    F: Future<Output = Result<Label, GatewayError>>,
{
    let mut labels = vec![Label::FalsePositive; tokens.len()];
    let mut failure = None;
    let mut running: Vec<(usize, Pin<Box<F>>)> = Vec::with_capacity(PARALLEL);
    let mut next = 0;
    std::future::poll_fn(|cx| loop {
        while running.len() < PARALLEL && next < tokens.len() && failure.is_none() {
            running.push((next, Box::pin(judge(&tokens[next]))));
            next += 1;
        }
        let before = running.len();
        running.retain_mut(|(index, future)| match future.as_mut().poll(cx) {
            Poll::Ready(Ok(label)) => {
                labels[*index] = label;
                false
            }
            Poll::Ready(Err(error)) => {
                failure = Some(error);
                false
            }
            Poll::Pending => true,
        });
        if running.is_empty() && (next == tokens.len() || failure.is_some()) {
            return Poll::Ready(());
        }
        if running.len() == before {
            return Poll::Pending;
        }
    })
    .await;
    failure.map_or(Ok(labels), Err)
}

/// Checks the signature headers against the body: `Err` names why not (for the log).
async fn verify(incoming: &Incoming, config: &Config, bytes: &[u8]) -> Result<(), &'static str> {
    let signature = incoming.header("github-public-key-signature").and_then(|text| leak::base64_decode(&text));
    let signature = signature.and_then(|der| leak::der_signature_to_raw(&der)).ok_or("malformed_signature")?;
    let identifier = incoming.header("github-public-key-identifier").unwrap_or_default();
    let key = public_key(&identifier, config, incoming.now_ms).await.ok_or("unknown_key_identifier")?;
    let verified = JsFuture::from(crate::runtime::verify_p256(&key, &signature, bytes)).await;
    match verified.ok().and_then(|value| value.as_bool()) {
        Some(true) => Ok(()),
        _ => Err("bad_signature"),
    }
}

/// The SPKI of key `identifier`: held, or fetched from `LEAK_KEYS_URL` if a fetch is allowed now.
async fn public_key(identifier: &str, config: &Config, now_ms: i64) -> Option<Vec<u8>> {
    let start = PUBLIC_KEYS.with(|cache| {
        let mut cache = cache.borrow_mut();
        cache.get(identifier).map(<[u8]>::to_vec).ok_or_else(|| cache.try_start_fetch(now_ms))
    });
    match start {
        Ok(key) => return Some(key),
        Err(false) => return None,
        Err(true) => {}
    }
    let document = JsFuture::from(crate::runtime::fetch_bytes(&config.leaks.keys_url)).await.ok().filter(|v| !v.is_null());
    let keys = document
        .map(|bytes| js_sys::Uint8Array::new(&bytes))
        .filter(|bytes| bytes.length() as usize <= leak::MAX_KEYS_DOCUMENT_BYTES)
        .map(|bytes| leak::parse_public_keys(&bytes.to_vec()));
    if keys.is_none() {
        log_event("leak_keys_unavailable", "-", &[]);
    }
    PUBLIC_KEYS.with(|cache| {
        let mut cache = cache.borrow_mut();
        cache.fetched(keys);
        cache.get(identifier).map(<[u8]>::to_vec)
    })
}

/// One token's label, after acting on it when it is a live key of this gateway.
async fn judge(env: &Env, config: &Config, token: &ReportedToken, incoming: &Incoming) -> Result<Label, GatewayError> {
    if !token.is_ours(&config.key_format) {
        return Ok(Label::FalsePositive);
    }
    let record = crate::store::read_record(env, config, &token.hash(), incoming).await?;
    let Some(record) = record else { return Ok(Label::FalsePositive) };
    if !leak::needs_action(&record) {
        return Ok(Label::TruePositive);
    }
    let action = config.leaks.action.as_str();
    match crate::admin::call(env, &record.project, &Op::Leaked(record.id.clone(), action.into(), token.url.clone())).await {
        Ok(_) => log_event("leak_reported", incoming.request_id(), &[("key_id", &record.id), ("action", action)]),
        // In KV but unknown to its registry (seeded by hand): nothing to act on, still a leak.
        Err(GatewayError::NotFound) => log_event("leak_unactionable", incoming.request_id(), &[("key_id", &record.id)]),
        Err(error) => return Err(error),
    }
    Ok(Label::TruePositive)
}
