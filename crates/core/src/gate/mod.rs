//! The request pipeline as a sans-IO state machine, in the way `rustls` and `quinn-proto`
//! separate deciding from doing: a [`Gate`] takes the request's facts, the config and the clock,
//! and answers either a final decision or the next I/O it needs; the worker performs that I/O and
//! feeds the result back. No KV handle, Durable Object or JS value reaches this module.
//!
//! The phases, in order (each a method of [`Gate`] below, cheap checks before costly ones):
//!
//! 1. **extract** the credential; a key in the query is refused whatever the headers say ([`crate::credential`]);
//! 2. **route**: canonical path, body rule, route table, `UNMATCHED` ([`crate::routes`]);
//! 3. **parse** the key's format and checksum, no I/O ([`crate::key`]) → [`Next::ReadRecord`];
//! 4. **lookup**: the worker reads the record (isolate cache, then KV) → [`Gate::record_read`].
//!    Under `UNMATCHED=auth` an unmatched request ends here: 401 for a key that is not good, 403
//!    for one that is, never forwarded, never counted;
//! 5. **check** the record against the request ([`crate::policy`]), then, for a key restricted
//!    to some networks or countries, the client ([`crate::network`], read once:
//!    [`Next::ReadClient`]). A refusal a newer record may lift
//!    ([`GatewayError::newer_record_may_lift`]) of an `exact`-mode key asks its limiter once
//!    ([`Next::AskLimiter`] with [`LimiterOp::IsStale`]);
//! 6. **limit** ([`limit`]): the isolate's blocked-until memory ([`blocked`]), then `fast` mode's
//!    per-isolate counters (and its Rate Limiting binding, [`Next::CheckBinding`]) or the key's
//!    limiter (a hit per request, or the key's lease, [`limit`]), with `RATE_LIMIT_FAILURE` deciding when none can answer.
//!    Quota is never spent on a refusal: this runs after every other check;
//! 7. **forward** with a signed plan ([`crate::forward`]) → [`Next::Forward`]; or refuse →
//!    [`Next::Refuse`], which the worker renders (the **respond** phase, [`crate::dialect`]).
//!
//! The limiter may know a newer record than KV and the cache (the admin API tells it first):
//! then it answers `Stale`, the gate adopts that record ([`Next::CacheRecord`]) and checks again,
//! at most [`MAX_ADOPTIONS`] times; a limiter still answering `Stale` after that fails closed
//! (`STORE_UNAVAILABLE`).
//!
//! What an isolate remembers between requests (blocked families, `fast` counters, refusals not
//! yet counted in usage) is an [`IsolateState`], bounded in memory, which the worker keeps in one
//! place and lends to [`Gate::next`]; it is never borrowed across an `await`.

pub mod blocked;
pub mod leases;
pub mod limit;
pub mod refused;
#[cfg(test)]
mod tests;

use std::rc::Rc;

use crate::config::{Config, FastBinding};
use crate::credential::{self, Credential};
use crate::error::GatewayError;
use crate::forward::{self, ForwardPlan};
use crate::key::{KeyEnv, KeyHash};
use crate::limit::algorithm::Decision;
use crate::limit::local::LocalCounters;
use crate::limit::protocol::{LimiterOp, LimiterReply};
use crate::network::{self, ClientFacts};
use crate::policy::{self, RequestFacts};
use crate::record::{KeyRecord, LimitMode};
use crate::routes::{check_body, check_canonical, RouteMatch};

use blocked::BlockedUntil;
use leases::Leases;
use refused::RefusedTally;

/// The client of a request whose key has no network restriction: never read, never consulted.
const UNRESTRICTED: ClientFacts = ClientFacts { address: None, country: None };

/// How many newer records one request adopts from its limiter before failing closed.
pub const MAX_ADOPTIONS: u8 = 2;

/// Response headers (lowercase names) the worker adds to the answer.
pub type Headers = Vec<(&'static str, String)>;

/// What the incoming request says about itself, read once by the worker.
#[derive(Debug, Clone, Copy)]
pub struct Facts<'a> {
    pub method: &'a str,
    /// Path and query exactly as received (percent-encoding kept).
    pub path_and_query: &'a str,
    /// The `AUTH_HEADER` value.
    pub authorization: Option<&'a str>,
    /// The `API_KEY_HEADER` value.
    pub api_key: Option<&'a str>,
    /// The `Origin` header.
    pub origin: Option<&'a str>,
    /// Whether the request has a body stream.
    pub has_body: bool,
}

/// What one isolate remembers between requests, all of it bounded.
#[derive(Default)]
pub struct IsolateState {
    /// Families refused by a limit, answered here until their retry-after.
    pub blocked: BlockedUntil,
    /// `fast` mode's counters.
    pub fast: LocalCounters,
    /// Refusals made here, not yet counted in their keys' usage.
    pub refused: RefusedTally,
    /// `exact`-mode keys' limiter leases (`LEASE_MS` > 0).
    pub leases: Leases,
}

/// What the gate needs done next.
// Each step is made once and consumed at once by the driver: boxing the limiter message (large
// only for variants the gate never sends) would cost an allocation per limited request.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Next<'a> {
    /// Read the record of this hash (cache, then KV), then call [`Gate::record_read`].
    ReadRecord(KeyHash),
    /// Read the client's address and country (only for a key restricted to some), then call
    /// [`Gate::client_read`].
    ReadClient,
    /// Send `op` to the `KeyLimiter` of `family`, then call [`Gate::limiter_replied`].
    AskLimiter { family: String, op: LimiterOp },
    /// Ask the Workers Rate Limiting binding `binding` about `family`, then call
    /// [`Gate::binding_answered`].
    CheckBinding { binding: &'a str, family: String },
    /// Cache this record (newer than the cached one, from the limiter) under `hash`; then `next`.
    CacheRecord { hash: KeyHash, record: Rc<KeyRecord> },
    /// Send `op` (a lease's early renewal) to the `KeyLimiter` of `record`'s family in this
    /// request's own background (`wait_until`), without waiting for it; its answer goes to
    /// [`Leases::answered`](leases::Leases::answered) (`renewal`, not `waiting`); then `next`.
    Background { record: Rc<KeyRecord>, op: LimiterOp },
    /// Start the batched flush of refused usage ([`refused`]) in the background, taking batches
    /// from [`RefusedTally::next_batch`] until it says `None`; then `next`.
    FlushRefused,
    /// Final: forward the request.
    Forward(Admitted),
    /// Final: refuse the request.
    Refuse(Refusal),
}

/// A request allowed through.
#[derive(Debug)]
pub struct Admitted {
    /// Where it goes and the signed identity headers it carries.
    pub plan: ForwardPlan,
    /// Rate-limit headers for the response (empty for a key without limits).
    pub headers: Headers,
    /// The record it was admitted with (for the key's last use).
    pub record: Rc<KeyRecord>,
}

/// A refusal with the headers that go with it.
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    pub error: GatewayError,
    pub headers: Headers,
}

impl From<GatewayError> for Refusal {
    fn from(error: GatewayError) -> Refusal {
        Refusal { error, headers: Vec::new() }
    }
}

/// The key as parsed, and the route it asks for (`None`: unmatched, under `UNMATCHED=auth`).
#[derive(Debug)]
struct Presented<'a> {
    env: KeyEnv,
    hash: KeyHash,
    route: Option<RouteMatch<'a>>,
}

/// A matched request and the record it is being decided with.
#[derive(Debug)]
struct Matched<'a> {
    env: KeyEnv,
    hash: KeyHash,
    route: RouteMatch<'a>,
    record: Rc<KeyRecord>,
}

#[derive(Debug)]
enum Phase<'a> {
    Received,
    Lookup(Presented<'a>),
    /// Checking (again, after a newer record or once the client is read).
    Check(Matched<'a>),
    Fresh(Matched<'a>, GatewayError),
    Hit(Matched<'a>, ForwardPlan),
    /// Waiting for its own lease renewal's answer.
    Leasing(Matched<'a>, ForwardPlan),
    /// Admitted, once its early renewal is on its way.
    Admit(Matched<'a>, ForwardPlan, Headers),
    Binding(Matched<'a>, ForwardPlan, Decision, &'a FastBinding),
    Refusing(Refusal),
    Done,
}

// Held for one step at most (see `Next`).
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
enum Answer {
    Record(Result<Option<Rc<KeyRecord>>, GatewayError>),
    Limiter(Option<LimiterReply>),
    Binding(Option<bool>),
    Client(ClientFacts),
}

/// One request's way through the pipeline.
#[derive(Debug)]
pub struct Gate<'a> {
    config: &'a Config,
    request: Facts<'a>,
    now_ms: i64,
    phase: Phase<'a>,
    answer: Option<Answer>,
    adoptions: u8,
    /// The client, once read ([`Next::ReadClient`]).
    client: Option<ClientFacts>,
}

impl<'a> Gate<'a> {
    /// A gate for `request`, received at `now_ms` (unix millis).
    pub fn new(config: &'a Config, request: Facts<'a>, now_ms: i64) -> Gate<'a> {
        Gate { config, request, now_ms, phase: Phase::Received, answer: None, adoptions: 0, client: None }
    }

    /// The answer to [`Next::ReadRecord`]: the record, `None` for an unknown key, or why the
    /// store could not answer.
    pub fn record_read(&mut self, read: Result<Option<Rc<KeyRecord>>, GatewayError>) {
        self.answer = Some(Answer::Record(read));
    }

    /// The answer to [`Next::AskLimiter`]; `None` when the limiter could not be asked or its
    /// call failed.
    pub fn limiter_replied(&mut self, reply: Option<LimiterReply>) {
        self.answer = Some(Answer::Limiter(reply));
    }

    /// The answer to [`Next::CheckBinding`]: whether the binding allows the request; `None`
    /// when it cannot answer (missing binding, failed call).
    pub fn binding_answered(&mut self, allowed: Option<bool>) {
        self.answer = Some(Answer::Binding(allowed));
    }

    /// The answer to [`Next::ReadClient`] (a fact the runtime does not have is `None`).
    pub fn client_read(&mut self, client: ClientFacts) {
        self.answer = Some(Answer::Client(client));
    }

    /// The next step. `isolate` is lent for this call only.
    pub fn next(&mut self, isolate: &mut IsolateState) -> Next<'a> {
        let answer = self.answer.take();
        match (std::mem::replace(&mut self.phase, Phase::Done), answer) {
            (Phase::Received, None) => match self.parse() {
                Ok(presented) => {
                    let hash = presented.hash;
                    self.phase = Phase::Lookup(presented);
                    Next::ReadRecord(hash)
                }
                Err(error) => Next::Refuse(error.into()),
            },
            (Phase::Lookup(presented), Some(Answer::Record(read))) => self.lookup(presented, read, isolate),
            (Phase::Check(matched), None) => self.check(matched, isolate),
            (Phase::Check(matched), Some(Answer::Client(client))) => {
                self.client = Some(client);
                self.check(matched, isolate)
            }
            (Phase::Fresh(matched, refusal), Some(Answer::Limiter(reply))) => match reply {
                Some(LimiterReply::Stale(record)) => self.adopt(matched, record),
                _ => Next::Refuse(refusal.into()),
            },
            (Phase::Hit(matched, plan), Some(Answer::Limiter(reply))) => self.limited(matched, plan, reply, isolate),
            (Phase::Leasing(matched, plan), Some(Answer::Limiter(reply))) => self.lease_renewed(matched, plan, reply, isolate),
            (Phase::Admit(matched, plan, headers), None) => Gate::admit(matched, plan, headers),
            (Phase::Binding(matched, plan, decision, fast), Some(Answer::Binding(allowed))) => {
                self.location_limited(matched, plan, decision, fast, allowed, isolate)
            }
            (Phase::Refusing(refusal), None) => Next::Refuse(refusal),
            // A driver that skipped an answer, gave the wrong one or went on after a final step
            // gets a closed refusal: never a panic, never an admission.
            _ => Next::Refuse(GatewayError::StoreUnavailable.into()),
        }
    }

    /// extract → route → parse: everything decided without I/O.
    fn parse(&self) -> Result<Presented<'a>, GatewayError> {
        let config = self.config;
        let request = self.request;
        let (path, query) = request.path_and_query.split_once('?').unwrap_or((request.path_and_query, ""));

        // extract (a key in the URL is refused whatever the headers say: it has leaked)
        credential::refuse_key_in_query(query, &config.key_format)?;
        let Credential(presented) = credential::extract(request.authorization, request.api_key)?;

        // route
        check_canonical(path).map_err(|reason| GatewayError::BadRequest { reason: reason.into() })?;
        check_body(request.method, request.has_body).map_err(|reason| GatewayError::BadRequest { reason: reason.into() })?;
        let route = config.routes.find(request.method, path);
        if route.is_none() && !config.unmatched.answers_with_auth(path) {
            return Err(GatewayError::RouteNotFound);
        }

        // parse
        let parsed = config.key_format.parse(presented).map_err(|e| GatewayError::InvalidKey { reason: Some(e.reason()) })?;
        Ok(Presented { env: parsed.env, hash: parsed.key.hash(), route })
    }

    /// lookup: the record is known (or not).
    fn lookup(
        &mut self,
        presented: Presented<'a>,
        read: Result<Option<Rc<KeyRecord>>, GatewayError>,
        isolate: &mut IsolateState,
    ) -> Next<'a> {
        let record = match read {
            Ok(Some(record)) => record,
            Ok(None) => return Next::Refuse(GatewayError::InvalidKey { reason: None }.into()),
            Err(error) => return Next::Refuse(error.into()),
        };
        // UNMATCHED=auth: the key decides between 401 (not valid) and 403 (valid).
        let Some(route) = presented.route else {
            let error = policy::check_standing(&record, presented.env, self.now_ms).err().unwrap_or(GatewayError::RouteNotAllowed);
            return Next::Refuse(error.into());
        };
        self.check(Matched { env: presented.env, hash: presented.hash, route, record }, isolate)
    }

    /// check: the record against the request, then the plan, then the limits.
    fn check(&mut self, matched: Matched<'a>, isolate: &mut IsolateState) -> Next<'a> {
        let config = self.config;
        let Some(client) = self.client.as_ref().or_else(|| (!network::restricts(&matched.record)).then_some(&UNRESTRICTED)) else {
            self.phase = Phase::Check(matched);
            return Next::ReadClient;
        };
        let facts = RequestFacts { key_env: matched.env, route: &matched.route, origin: self.request.origin };
        let authorized = policy::authorize(&matched.record, &facts, &config.roles, config.empty_grant(), self.now_ms)
            .and_then(|grant| network::admit(&matched.record, client).map(|()| grant));
        let grant = match authorized {
            Ok(grant) => grant,
            // The refusal may rest on a stale record (re-enabled, re-dated, new role, origins or networks):
            // an exact-mode key asks its limiter once.
            Err(error)
                if self.adoptions < MAX_ADOPTIONS
                    && error.newer_record_may_lift()
                    && config.mode_for(&matched.record) == LimitMode::Exact =>
            {
                let family = matched.record.family_id().to_string();
                let op = LimiterOp::IsStale(matched.record.id.clone(), matched.record.revision);
                self.phase = Phase::Fresh(matched, error);
                return Next::AskLimiter { family, op };
            }
            Err(error) => return Next::Refuse(error.into()),
        };
        let now_seconds = (self.now_ms / 1000) as u64;
        match forward::plan(config, &grant, self.request.method, self.request.path_and_query, now_seconds) {
            Ok(plan) => self.limit(matched, plan, isolate),
            Err(error) => Next::Refuse(error.into()),
        }
    }

    /// The limiter knows a newer record: cache it, then check again with it.
    fn adopt(&mut self, mut matched: Matched<'a>, newer: KeyRecord) -> Next<'a> {
        self.adoptions += 1;
        matched.record = Rc::new(newer);
        let next = Next::CacheRecord { hash: matched.hash, record: matched.record.clone() };
        self.phase = Phase::Check(matched);
        next
    }

    /// forward: the request is admitted.
    fn admit(matched: Matched<'a>, plan: ForwardPlan, headers: Headers) -> Next<'a> {
        Next::Forward(Admitted { plan, headers, record: matched.record })
    }
}
