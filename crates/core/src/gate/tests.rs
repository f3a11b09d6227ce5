//! The gate driven natively: a fake store, limiter and binding answer its I/O, the clock is a
//! number. One row per case where there are many.

use std::collections::HashMap;
use std::rc::Rc;

use super::*;
use crate::key::{KeyEnv, PlaintextKey};
use crate::limit::algorithm::{decide, LimitSpec, LimitState};
use crate::limit::lease::LeaseLedger;
use crate::record::{KeyRecord, LimitMode, Status};
use crate::timestamp::Timestamp;

mod network;

const T0: i64 = 1_800_000_000_000;
const ROUTE: &str = "/v1/public/cms/posts/items";

/// The I/O one request asked for, in order.
#[derive(Debug, Clone, PartialEq)]
enum Step {
    Read,
    Fresh,
    Hit,
    Binding(String),
    Cache(u64),
    Flush,
    /// A lease renewal the request waits for.
    Lease,
    /// A message sent in the request's background (answered later, see `World::background`).
    Background,
    /// The client facts (network restrictions).
    Client,
}

/// Answers the gate's I/O: records by hash, a limiter and a Rate Limiting binding.
struct World {
    records: HashMap<KeyHash, Rc<KeyRecord>>,
    /// Answers an operation at a time (unix ms).
    limiter: Box<dyn FnMut(&LimiterOp, i64) -> Option<LimiterReply>>,
    binding: Option<bool>,
    /// Background messages sent and not yet answered.
    background: Vec<(Rc<KeyRecord>, LimiterOp)>,
    /// What the runtime says about the client.
    client: ClientFacts,
}

impl World {
    fn with(key: &PlaintextKey, record: Option<KeyRecord>) -> World {
        let records = record.into_iter().map(|r| (key.hash(), Rc::new(r))).collect();
        World { records, limiter: Box::new(|_, _| None), binding: Some(true), background: Vec::new(), client: ClientFacts::default() }
    }

    /// A limiter that decides hits with the real algorithm (state per key and limits) and knows
    /// no newer record.
    fn counting(mut self) -> World {
        let mut states: HashMap<String, Vec<LimitState>> = HashMap::new();
        self.limiter = Box::new(move |op, now_ms| match op {
            LimiterOp::Lease(key_id, _, 0, _, limits) => {
                let states = states.entry(format!("{key_id} {limits:?}")).or_default();
                Some(LimiterReply::Decided(decide(limits, states, now_ms)))
            }
            _ => Some(LimiterReply::Done),
        });
        self
    }

    /// A limiter holding a real [`LeaseLedger`] (`lease_ms`, epoch 5): it grants leases, decides
    /// hits, and answers `Stale` with `newer` once it is set (shared with the test; the admin
    /// change starts a new epoch, as a `Mark` does).
    fn leasing(mut self, lease_ms: u64, newer: Rc<std::cell::RefCell<Option<KeyRecord>>>) -> World {
        let mut ledger: Option<LeaseLedger> = None;
        self.limiter = Box::new(move |op, now_ms| {
            let LimiterOp::Lease(key_id, revision, id, renewal, limits) = op else { return Some(LimiterReply::Done) };
            let ledger = ledger.get_or_insert_with(|| LeaseLedger::new(lease_ms, 5, limits.clone()));
            if let Some(record) = newer.borrow().clone().filter(|r| r.revision > *revision) {
                if ledger.revision() == 5 {
                    ledger.change(6, limits.clone(), now_ms);
                }
                if *id != 0 {
                    ledger.give_back(*id, key_id, renewal, false);
                }
                return Some(LimiterReply::Stale(record));
            }
            let grant = match id {
                0 => ledger.hit(key_id, ledger.revision(), now_ms, renewal.wanted()),
                id => ledger.grant(*id, key_id, renewal, now_ms),
            };
            Some(LimiterReply::Lease(grant))
        });
        self
    }

    /// Answers the background messages sent so far, in order, at `now_ms`.
    fn background(&mut self, isolate: &mut IsolateState, now_ms: i64) {
        for (record, op) in std::mem::take(&mut self.background) {
            let reply = (self.limiter)(&op, now_ms);
            isolate.leases.answered(&record, reply.as_ref(), true, false);
        }
    }

    /// A limiter answering from `replies` in order (then "no answer").
    fn scripted(mut self, replies: Vec<Option<LimiterReply>>) -> World {
        let mut replies = replies.into_iter();
        self.limiter = Box::new(move |_, _| replies.next().flatten());
        self
    }
}

/// Drives one request through the gate; its outcome and the I/O it asked for.
fn drive(
    config: &Config,
    facts: Facts<'_>,
    now_ms: i64,
    isolate: &mut IsolateState,
    world: &mut World,
) -> (Result<Admitted, Refusal>, Vec<Step>) {
    let mut gate = Gate::new(config, facts, now_ms);
    let mut steps = Vec::new();
    for _ in 0..20 {
        match gate.next(isolate) {
            Next::ReadRecord(hash) => {
                steps.push(Step::Read);
                gate.record_read(Ok(world.records.get(&hash).cloned()));
            }
            Next::AskLimiter { family, op } => {
                assert!(!family.is_empty());
                steps.push(match op {
                    LimiterOp::IsStale(..) => Step::Fresh,
                    LimiterOp::Lease(_, _, 0, ..) => Step::Hit,
                    _ => Step::Lease,
                });
                gate.limiter_replied((world.limiter)(&op, now_ms));
            }
            Next::Background { record, op } => {
                steps.push(Step::Background);
                world.background.push((record, op));
            }
            Next::CheckBinding { binding, .. } => {
                steps.push(Step::Binding(binding.to_string()));
                gate.binding_answered(world.binding);
            }
            Next::CacheRecord { hash, record } => {
                steps.push(Step::Cache(record.revision));
                world.records.insert(hash, record);
            }
            Next::FlushRefused => steps.push(Step::Flush),
            Next::ReadClient => {
                steps.push(Step::Client);
                gate.client_read(world.client.clone());
            }
            Next::Forward(admitted) => return (Ok(admitted), steps),
            Next::Refuse(refusal) => return (Err(refusal), steps),
        }
    }
    panic!("the gate did not finish: {steps:?}");
}

fn config(vars: &[(&str, &str)]) -> Config {
    Config::from_lookup(|name| match name {
        "ORIGIN_URL" => Some("http://127.0.0.1:9000".into()),
        "ORIGIN_SIGNING_SECRET" => Some("a-very-secret-signing-key".into()),
        "TIERS" => Some(
            r#"{"bound": {"limits": [{"name":"burst","limit":2,"window_seconds":1},{"name":"minute","limit":60,"window_seconds":60}],
                          "mode": "fast", "fast_binding": {"binding": "RL_MINUTE", "limit": "minute"}}}"#
                .into(),
        ),
        // Today's per-request limiter unless a test asks for leases.
        "LEASE_MS" => Some(vars.iter().find(|(n, _)| *n == name).map_or("0", |(_, v)| v).to_string()),
        _ => vars.iter().find(|(n, _)| *n == name).map(|(_, v)| v.to_string()),
    })
    .unwrap()
}

fn record(revision: u64, status: Status, mode: LimitMode, limits: &[(&str, u64, u64)]) -> KeyRecord {
    KeyRecord {
        id: "key_1".into(),
        project: "acme".into(),
        name: "site".into(),
        env: KeyEnv::Live,
        role: None,
        scopes: vec!["content:read".into()],
        status,
        valid_from: None,
        valid_to: None,
        allowed_origins: None,
        allowed_networks: Vec::new(),
        allowed_countries: Vec::new(),
        created_at: Timestamp(0),
        updated_at: Timestamp(0),
        revision,
        meta: Default::default(),
        hint: None,
        family: None,
        rolled_from: None,
        tier: None,
        limits: Some(limits.iter().map(|(name, limit, window)| LimitSpec::new(*name, *limit, *window)).collect()),
        limit_mode: Some(mode),
        credits: None,
    }
}

fn active(mode: LimitMode, limits: &[(&str, u64, u64)]) -> KeyRecord {
    record(1, Status::Active, mode, limits)
}

fn get<'a>(bearer: &'a str, path: &'a str) -> Facts<'a> {
    Facts { method: "GET", path_and_query: path, authorization: Some(bearer), api_key: None, origin: None, has_body: false }
}

fn new_key(config: &Config) -> (PlaintextKey, String) {
    let key = config.key_format.generate(KeyEnv::Live).unwrap();
    let bearer = format!("Bearer {}", key.expose());
    (key, bearer)
}

fn header<'h>(headers: &'h Headers, name: &str) -> Option<&'h str> {
    headers.iter().find(|(n, _)| *n == name).map(|(_, v)| v.as_str())
}

fn code(outcome: &Result<Admitted, Refusal>) -> &'static str {
    match outcome {
        Ok(_) => "FORWARDED",
        Err(refusal) => refusal.error.code(),
    }
}

#[test]
fn requests_refused_before_lookup_cost_no_io() {
    let config = config(&[]);
    let (key, bearer) = new_key(&config);
    let in_query = format!("{ROUTE}?api_key={}", key.expose());
    let mut broken = key.expose().to_string();
    broken.pop();
    broken.push(if key.expose().ends_with('A') { 'B' } else { 'A' });
    let broken = format!("Bearer {broken}");
    let rows: [(&str, Facts<'_>, &str); 6] = [
        ("a key in the query has leaked, whatever the headers say", get(&bearer, &in_query), "BAD_REQUEST"),
        ("no credential", Facts { authorization: None, ..get(&bearer, ROUTE) }, "MISSING_KEY"),
        ("non-canonical path", get(&bearer, "/v1/public/cms/../items"), "BAD_REQUEST"),
        ("a body on GET", Facts { has_body: true, ..get(&bearer, ROUTE) }, "BAD_REQUEST"),
        ("no route and UNMATCHED=not_found", get(&bearer, "/nope"), "ROUTE_NOT_FOUND"),
        ("bad checksum", get(&broken, ROUTE), "INVALID_KEY"),
    ];
    for (why, facts, expected) in rows {
        let mut world = World::with(&key, Some(active(LimitMode::Exact, &[])));
        let (outcome, steps) = drive(&config, facts, T0, &mut IsolateState::default(), &mut world);
        assert_eq!(code(&outcome), expected, "{why}");
        assert_eq!(steps, [], "{why}: no I/O");
    }
}

#[test]
fn an_admitted_request_carries_its_plan_and_limit_headers() {
    let config = config(&[]);
    let (key, bearer) = new_key(&config);
    let mut world = World::with(&key, Some(active(LimitMode::Exact, &[("minute", 10, 60)]))).counting();
    let (outcome, steps) = drive(&config, get(&bearer, &format!("{ROUTE}?page=2")), T0, &mut IsolateState::default(), &mut world);
    let admitted = outcome.unwrap();
    assert_eq!(steps, [Step::Read, Step::Hit]);
    assert_eq!(admitted.plan.url, format!("http://127.0.0.1:9000{ROUTE}?page=2"));
    assert_eq!(header(&admitted.headers, "x-ratelimit-remaining"), Some("9"));
    assert_eq!(admitted.record.id, "key_1");

    // A fast-mode key without limits: the hot path asks nothing beyond its record.
    let mut world = World::with(&key, Some(active(LimitMode::Fast, &[])));
    let (outcome, steps) = drive(&config, get(&bearer, ROUTE), T0, &mut IsolateState::default(), &mut world);
    assert_eq!(steps, [Step::Read]);
    assert!(outcome.unwrap().headers.is_empty());
}

#[test]
fn unknown_keys_and_store_failures_are_refused() {
    let config = config(&[]);
    let (key, bearer) = new_key(&config);
    let mut world = World::with(&key, None);
    let (outcome, _) = drive(&config, get(&bearer, ROUTE), T0, &mut IsolateState::default(), &mut world);
    assert_eq!(outcome.err().map(|r| r.error), Some(GatewayError::InvalidKey { reason: None }));

    let mut gate = Gate::new(&config, get(&bearer, ROUTE), T0);
    let mut isolate = IsolateState::default();
    assert!(matches!(gate.next(&mut isolate), Next::ReadRecord(hash) if hash == key.hash()));
    gate.record_read(Err(GatewayError::StoreUnavailable));
    assert!(matches!(gate.next(&mut isolate), Next::Refuse(r) if r.error == GatewayError::StoreUnavailable));
}

#[test]
fn a_refusal_a_newer_record_may_lift_asks_the_limiter_at_most_twice() {
    let config = config(&[]);
    let (key, bearer) = new_key(&config);
    let exact = |revision, status| record(revision, status, LimitMode::Exact, &[]);
    let stale = |revision, status| Some(LimiterReply::Stale(exact(revision, status)));
    let allowed = || Some(LimiterReply::Decided(decide(&[], &mut Vec::new(), T0)));
    let rows: Vec<(&str, KeyRecord, Vec<Option<LimiterReply>>, &str, Vec<Step>)> = vec![
        (
            "lifted: the limiter knows the key was re-enabled",
            exact(1, Status::Inactive),
            vec![stale(2, Status::Active), allowed()],
            "FORWARDED",
            vec![Step::Read, Step::Fresh, Step::Cache(2), Step::Hit],
        ),
        (
            "not lifted: no newer record",
            exact(1, Status::Inactive),
            vec![Some(LimiterReply::Done)],
            "KEY_DISABLED",
            vec![Step::Read, Step::Fresh],
        ),
        (
            "not lifted: the limiter cannot answer (fail closed)",
            exact(1, Status::Inactive),
            vec![None],
            "KEY_DISABLED",
            vec![Step::Read, Step::Fresh],
        ),
        (
            "two adoptions, still disabled: the refusal stands without a third question",
            exact(1, Status::Inactive),
            vec![stale(2, Status::Inactive), stale(3, Status::Inactive), allowed()],
            "KEY_DISABLED",
            vec![Step::Read, Step::Fresh, Step::Cache(2), Step::Fresh, Step::Cache(3)],
        ),
        (
            "the limiter's hit says stale: check again with the newer record, which is disabled",
            exact(1, Status::Active),
            vec![stale(2, Status::Inactive), None],
            "KEY_DISABLED",
            vec![Step::Read, Step::Hit, Step::Cache(2), Step::Fresh],
        ),
        (
            "stale after two adoptions: fail closed",
            exact(1, Status::Active),
            vec![stale(2, Status::Active), stale(3, Status::Active), stale(4, Status::Active)],
            "STORE_UNAVAILABLE",
            vec![Step::Read, Step::Hit, Step::Cache(2), Step::Hit, Step::Cache(3), Step::Hit],
        ),
        (
            "revocation is final: nobody is asked",
            exact(1, Status::Revoked),
            vec![stale(2, Status::Active)],
            "KEY_REVOKED",
            vec![Step::Read],
        ),
        (
            "a fast-mode key has no limiter to ask",
            record(1, Status::Inactive, LimitMode::Fast, &[]),
            vec![stale(2, Status::Active)],
            "KEY_DISABLED",
            vec![Step::Read],
        ),
    ];
    for (why, stored, replies, expected, expected_steps) in rows {
        let mut world = World::with(&key, Some(stored)).scripted(replies);
        let (outcome, steps) = drive(&config, get(&bearer, ROUTE), T0, &mut IsolateState::default(), &mut world);
        assert_eq!(code(&outcome), expected, "{why}");
        assert_eq!(steps, expected_steps, "{why}");
        if let Some(Step::Cache(revision)) = steps.iter().rev().find(|s| matches!(s, Step::Cache(_))) {
            assert_eq!(world.records[&key.hash()].revision, *revision, "{why}: the adopted record is cached");
        }
    }
}

#[test]
fn a_blocked_family_is_refused_without_asking_until_its_retry_after_passes() {
    let config = config(&[]);
    let (key, bearer) = new_key(&config);
    let mut world = World::with(&key, Some(active(LimitMode::Exact, &[("minute", 1, 60)]))).counting();
    let mut isolate = IsolateState::default();
    let rows: [(i64, &str, Vec<Step>, Option<&str>, &str); 5] = [
        (T0, "FORWARDED", vec![Step::Read, Step::Hit], None, "the limit's one request"),
        (T0 + 1, "RATE_LIMIT_EXCEEDED", vec![Step::Read, Step::Hit], Some("60"), "the limiter refuses; the family is blocked"),
        (T0 + 2, "RATE_LIMIT_EXCEEDED", vec![Step::Read, Step::Flush], Some("60"), "refused here; the first such refusal starts a flush"),
        (T0 + 20_500, "RATE_LIMIT_EXCEEDED", vec![Step::Read], Some("40"), "refused here with the time left; a flush is running"),
        (T0 + 60_000, "FORWARDED", vec![Step::Read, Step::Hit], None, "the block passed: the limiter is asked again"),
    ];
    for (now, expected, expected_steps, retry_after, why) in rows {
        let (outcome, steps) = drive(&config, get(&bearer, ROUTE), now, &mut isolate, &mut world);
        assert_eq!(code(&outcome), expected, "{why}");
        assert_eq!(steps, expected_steps, "{why}");
        let headers = outcome.err().map(|r| r.headers).unwrap_or_default();
        assert_eq!(header(&headers, "retry-after"), retry_after, "{why}");
    }
    let batch = isolate.refused.next_batch().unwrap();
    assert!(
        matches!(&batch[..], [(family, LimiterOp::AddRefused(key_id, 2))] if family == "key_1" && key_id == "key_1"),
        "the two refusals made here count in usage: {batch:?}"
    );

    // In fast mode the isolate's own counters refuse and block; nothing is tallied (no limiter).
    let mut world = World::with(&key, Some(active(LimitMode::Fast, &[("minute", 1, 60)])));
    let mut isolate = IsolateState::default();
    for (now, expected) in [(T0, "FORWARDED"), (T0 + 1, "RATE_LIMIT_EXCEEDED"), (T0 + 2, "RATE_LIMIT_EXCEEDED")] {
        let (outcome, steps) = drive(&config, get(&bearer, ROUTE), now, &mut isolate, &mut world);
        assert_eq!((code(&outcome), steps), (expected, vec![Step::Read]));
    }
    assert!(isolate.refused.is_empty());
    assert_eq!(isolate.blocked.len(), 1);
}

#[test]
fn a_limit_change_is_not_held_to_an_earlier_block() {
    let config = config(&[]);
    let (key, bearer) = new_key(&config);
    let mut world = World::with(&key, Some(active(LimitMode::Exact, &[("minute", 1, 60)]))).counting();
    let mut isolate = IsolateState::default();
    let (first, _) = drive(&config, get(&bearer, ROUTE), T0, &mut isolate, &mut world);
    assert_eq!(code(&first), "FORWARDED");
    let (refused, _) = drive(&config, get(&bearer, ROUTE), T0, &mut isolate, &mut world);
    assert_eq!(code(&refused), "RATE_LIMIT_EXCEEDED");
    world.records.insert(key.hash(), Rc::new(active(LimitMode::Exact, &[("minute", 100, 60)])));
    let (outcome, steps) = drive(&config, get(&bearer, ROUTE), T0 + 1, &mut isolate, &mut world);
    assert_eq!((code(&outcome), steps), ("FORWARDED", vec![Step::Read, Step::Hit]), "raised limits ask the limiter");
}

#[test]
fn fast_mode_asks_its_binding_after_the_isolate_counters_and_reports_its_refusal() {
    let tiered = |config: &Config| {
        let mut record = active(LimitMode::Fast, &[]);
        record.limits = None;
        record.limit_mode = None;
        record.tier = Some("bound".into());
        let _ = config;
        record
    };
    let rows: [(&str, &str, Option<bool>, &str, Option<&str>); 5] = [
        ("the binding allows", "open", Some(true), "FORWARDED", Some("59")),
        ("the binding's location-wide counter is spent", "open", Some(false), "RATE_LIMIT_EXCEEDED", Some("0")),
        ("the binding is spent, closed policy changes nothing", "closed", Some(false), "RATE_LIMIT_EXCEEDED", Some("0")),
        ("the binding cannot answer, RATE_LIMIT_FAILURE=open", "open", None, "FORWARDED", Some("59")),
        ("the binding cannot answer, RATE_LIMIT_FAILURE=closed", "closed", None, "STORE_UNAVAILABLE", None),
    ];
    for (why, policy, binding, expected, remaining) in rows {
        let config = config(&[("RATE_LIMIT_FAILURE", policy), ("RATE_LIMIT_HEADER_LIMIT", "minute")]);
        let (key, bearer) = new_key(&config);
        let mut world = World::with(&key, Some(tiered(&config)));
        world.binding = binding;
        let (outcome, steps) = drive(&config, get(&bearer, ROUTE), T0, &mut IsolateState::default(), &mut world);
        assert_eq!(code(&outcome), expected, "{why}");
        assert_eq!(steps, [Step::Read, Step::Binding("RL_MINUTE".into())], "{why}");
        let headers = match &outcome {
            Ok(admitted) => admitted.headers.clone(),
            Err(refusal) => refusal.headers.clone(),
        };
        assert_eq!(header(&headers, "x-ratelimit-remaining"), remaining, "{why}");
        if let Err(Refusal { error: GatewayError::RateLimitExceeded { limit, retry_after }, .. }) = &outcome {
            assert_eq!((limit.as_str(), *retry_after), ("minute", 60), "{why}: reported on the limit the binding enforces");
        }
    }

    // The isolate's own counters refuse first: the binding is not asked.
    let config = config(&[]);
    let (key, bearer) = new_key(&config);
    let mut world = World::with(&key, Some(tiered(&config)));
    let mut isolate = IsolateState::default();
    let mut outcomes = Vec::new();
    for _ in 0..3 {
        outcomes.push(drive(&config, get(&bearer, ROUTE), T0, &mut isolate, &mut world));
    }
    let (last, steps) = outcomes.pop().unwrap();
    assert_eq!(code(&last), "RATE_LIMIT_EXCEEDED", "burst of 2");
    assert_eq!(steps, [Step::Read], "refused by the isolate's counters without asking the binding");
    assert!(matches!(last, Err(Refusal { error: GatewayError::RateLimitExceeded { limit, .. }, .. }) if limit == "burst"));
}

#[test]
fn an_unreachable_limiter_follows_rate_limit_failure() {
    let rows: [(&str, Option<LimiterReply>, &str); 4] = [
        ("open", None, "FORWARDED"),
        ("closed", None, "STORE_UNAVAILABLE"),
        ("open", Some(LimiterReply::Done), "FORWARDED"),
        ("closed", Some(LimiterReply::Done), "STORE_UNAVAILABLE"),
    ];
    for (policy, reply, expected) in rows {
        let config = config(&[("RATE_LIMIT_FAILURE", policy)]);
        let (key, bearer) = new_key(&config);
        let mut world = World::with(&key, Some(active(LimitMode::Exact, &[("minute", 10, 60)]))).scripted(vec![reply.clone()]);
        let mut isolate = IsolateState::default();
        let (outcome, steps) = drive(&config, get(&bearer, ROUTE), T0, &mut isolate, &mut world);
        assert_eq!(code(&outcome), expected, "{policy}, {reply:?}");
        assert_eq!(steps, [Step::Read, Step::Hit]);
        if let Ok(admitted) = outcome {
            assert!(admitted.headers.is_empty(), "no decision, no limit headers");
        }
        assert!(isolate.blocked.is_empty(), "an outage blocks nobody");
    }
}

#[test]
fn unmatched_auth_answers_from_the_key_and_never_forwards_or_counts() {
    let config = config(&[("UNMATCHED", "auth")]);
    let (key, bearer) = new_key(&config);
    let limited = &[("minute", 1, 60)];
    let mut expired = active(LimitMode::Exact, limited);
    expired.valid_to = Some(Timestamp(T0 - 1));
    let rows: [(&str, Option<KeyRecord>, &str, u16); 5] = [
        ("a good key is not allowed there", Some(active(LimitMode::Exact, limited)), "ROUTE_NOT_ALLOWED", 403),
        ("a disabled key", Some(record(1, Status::Inactive, LimitMode::Exact, limited)), "KEY_DISABLED", 401),
        ("a revoked key", Some(record(1, Status::Revoked, LimitMode::Exact, limited)), "KEY_REVOKED", 401),
        ("an expired key", Some(expired), "KEY_EXPIRED", 401),
        ("an unknown key", None, "INVALID_KEY", 401),
    ];
    for (why, stored, expected, status) in rows {
        let mut world = World::with(&key, stored).counting();
        let (outcome, steps) = drive(&config, get(&bearer, "/nope"), T0, &mut IsolateState::default(), &mut world);
        assert_eq!(code(&outcome), expected, "{why}");
        assert_eq!(outcome.err().map(|r| r.error.status()), Some(status), "{why}");
        assert_eq!(steps, [Step::Read], "{why}: no limiter asked");
    }
}

#[test]
fn a_driver_that_skips_an_answer_gets_a_closed_refusal() {
    let config = config(&[]);
    let (_, bearer) = new_key(&config);
    let mut isolate = IsolateState::default();
    let mut gate = Gate::new(&config, get(&bearer, ROUTE), T0);
    assert!(matches!(gate.next(&mut isolate), Next::ReadRecord(_)));
    assert!(matches!(gate.next(&mut isolate), Next::Refuse(r) if r.error == GatewayError::StoreUnavailable), "no record given");
    assert!(matches!(gate.next(&mut isolate), Next::Refuse(r) if r.error == GatewayError::StoreUnavailable), "after the end");
    let mut gate = Gate::new(&config, get(&bearer, ROUTE), T0);
    gate.next(&mut isolate);
    gate.binding_answered(Some(true));
    assert!(matches!(gate.next(&mut isolate), Next::Refuse(r) if r.error == GatewayError::StoreUnavailable), "the wrong answer");
}

/// Leases: a hot key costs a limiter call now and then, not per request; no request waits for
/// another's call (each renewal's answer arrives after the requests that kept going).
#[test]
fn a_leased_hot_key_asks_its_limiter_rarely_and_never_waits_on_another_request() {
    let config = config(&[("LEASE_MS", "1000")]);
    let (key, bearer) = new_key(&config);
    for limits in [&[][..], &[("minute", 100_000, 60)][..]] {
        let newer = Rc::new(std::cell::RefCell::new(None));
        let mut world = World::with(&key, Some(active(LimitMode::Exact, limits))).leasing(1_000, newer);
        let mut isolate = IsolateState::default();
        let (mut calls, mut admitted) = (0, 0);
        for n in 0..2_000 {
            let now = T0 + n / 4; // 4 requests per ms, 500 ms
            let (outcome, steps) = drive(&config, get(&bearer, ROUTE), now, &mut isolate, &mut world);
            admitted += usize::from(outcome.is_ok());
            calls += steps.iter().filter(|s| matches!(s, Step::Lease | Step::Hit | Step::Background)).count();
            if n % 3 == 2 {
                world.background(&mut isolate, now); // answers come back a little later
            }
        }
        assert_eq!(admitted, 2_000, "{limits:?}");
        assert!(calls <= 30, "{limits:?}: {calls} limiter calls for 2,000 requests");
    }
}

/// Starts 50 concurrent requests of `key` in one isolate: each reads the record and asks the
/// limiter before any answer comes back. Returns the gates and what each asked.
fn fifty_asking<'c>(
    config: &'c Config,
    bearer: &'c str,
    world: &World,
    key: &PlaintextKey,
    isolate: &mut IsolateState,
) -> (Vec<Gate<'c>>, Vec<LimiterOp>) {
    let mut gates: Vec<Gate<'c>> = (0..50).map(|_| Gate::new(config, get(bearer, ROUTE), T0)).collect();
    let mut asks = Vec::new();
    for gate in gates.iter_mut() {
        assert!(matches!(gate.next(isolate), Next::ReadRecord(_)));
        gate.record_read(Ok(world.records.get(&key.hash()).cloned()));
        match gate.next(isolate) {
            Next::AskLimiter { op, .. } => asks.push(op),
            other => panic!("every request asks its limiter: {other:?}"),
        }
    }
    (gates, asks)
}

/// Exactly N of 50 concurrent requests in one isolate are admitted for a limit of N: they all
/// start before any answer comes back, so the first renews and the others ask for themselves.
#[test]
fn exactly_n_of_50_concurrent_requests_are_admitted_with_leases() {
    let config = config(&[("LEASE_MS", "1000")]);
    let (key, bearer) = new_key(&config);
    let newer = Rc::new(std::cell::RefCell::new(None));
    let mut world = World::with(&key, Some(active(LimitMode::Exact, &[("minute", 7, 60)]))).leasing(1_000, newer);
    let mut isolate = IsolateState::default();
    let (mut gates, asks) = fifty_asking(&config, &bearer, &world, &key, &mut isolate);
    assert_eq!(asks.iter().filter(|op| !matches!(op, LimiterOp::Lease(_, _, 0, ..))).count(), 1, "one renewal in flight");
    let mut admitted = 0;
    for (gate, op) in gates.iter_mut().zip(asks) {
        gate.limiter_replied((world.limiter)(&op, T0 + 5));
        loop {
            match gate.next(&mut isolate) {
                Next::Forward(_) => admitted += 1,
                Next::Background { .. } | Next::FlushRefused => continue,
                Next::Refuse(refusal) => assert_eq!(refusal.error.code(), "RATE_LIMIT_EXCEEDED"),
                other => panic!("{other:?}"),
            }
            break;
        }
    }
    assert_eq!(admitted, 7);
}

/// A key with credits is decided by its limiter even in `fast` mode, and 50 concurrent requests
/// (with leases) spend exactly its balance, the rest refused `402 CREDITS_EXHAUSTED` with the
/// balance in `X-Credits-Remaining`.
#[test]
fn a_key_with_credits_is_exact_in_fast_mode_and_50_concurrent_requests_spend_its_balance() {
    let config = config(&[("LEASE_MS", "1000")]);
    let (key, bearer) = new_key(&config);
    let mut record = active(LimitMode::Fast, &[]);
    record.credits = Some(crate::limit::credits::Credits::default());
    let mut world = World::with(&key, Some(record));
    let mut ledger: Option<LeaseLedger> = None;
    world.limiter = Box::new(move |op, now_ms| {
        let LimiterOp::Lease(key_id, _, id, renewal, limits) = op else { return Some(LimiterReply::Done) };
        let ledger = ledger.get_or_insert_with(|| {
            let mut ledger = LeaseLedger::new(1_000, 5, limits.clone());
            ledger.change_credits(&limits[0], true, 7, now_ms).expect("the credits limit");
            ledger
        });
        let grant = match id {
            0 => ledger.hit(key_id, ledger.revision(), now_ms, renewal.wanted()),
            id => ledger.grant(*id, key_id, renewal, now_ms),
        };
        Some(LimiterReply::Lease(grant))
    });
    let mut isolate = IsolateState::default();
    let (mut gates, asks) = fifty_asking(&config, &bearer, &world, &key, &mut isolate);
    let mut admitted = 0;
    for (gate, op) in gates.iter_mut().zip(asks) {
        gate.limiter_replied((world.limiter)(&op, T0 + 5));
        loop {
            match gate.next(&mut isolate) {
                Next::Forward(forward) => {
                    admitted += 1;
                    assert!(header(&forward.headers, "x-credits-remaining").is_some());
                }
                Next::Background { .. } | Next::FlushRefused => continue,
                Next::Refuse(refusal) => {
                    assert_eq!((refusal.error.status(), refusal.error.code()), (402, "CREDITS_EXHAUSTED"));
                    assert_eq!(header(&refusal.headers, "x-credits-remaining"), Some("0"));
                    assert_eq!(header(&refusal.headers, "retry-after"), None, "no refill");
                }
                other => panic!("{other:?}"),
            }
            break;
        }
    }
    assert_eq!(admitted, 7);
}

/// A revoke reaches a leased isolate no later than the lease: units already held may serve
/// until the lease ends (`sent_at + LEASE_MS`); after that, the renewal returns the new record.
#[test]
fn a_revoke_is_enforced_within_lease_ms() {
    let config = config(&[("LEASE_MS", "1000")]);
    let (key, bearer) = new_key(&config);
    let newer = Rc::new(std::cell::RefCell::new(None));
    let mut world = World::with(&key, Some(active(LimitMode::Exact, &[]))).leasing(1_000, newer.clone());
    let mut isolate = IsolateState::default();
    let (outcome, steps) = drive(&config, get(&bearer, ROUTE), T0, &mut isolate, &mut world);
    assert_eq!((code(&outcome), steps), ("FORWARDED", vec![Step::Read, Step::Lease]));
    *newer.borrow_mut() = Some(record(2, Status::Revoked, LimitMode::Exact, &[]));
    let mut first_refusal = None;
    for ms in (10..2_000).step_by(10) {
        let (outcome, _) = drive(&config, get(&bearer, ROUTE), T0 + ms, &mut isolate, &mut world);
        world.background(&mut isolate, T0 + ms);
        match (code(&outcome), first_refusal) {
            ("FORWARDED", None) => {}
            ("KEY_REVOKED", None) => first_refusal = Some(ms),
            ("KEY_REVOKED", Some(_)) => {}
            (other, _) => panic!("{other} at {ms} ms after a refusal at {first_refusal:?}"),
        }
    }
    let first_refusal = first_refusal.expect("refused in the end");
    assert!(first_refusal <= 1_000, "refused {first_refusal} ms after the revoke (LEASE_MS 1000)");
}
