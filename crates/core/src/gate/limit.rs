//! The **limit** phase of the [`Gate`]: a key's limits and status epoch, decided after every
//! other check (quota is never spent on a refusal).
//!
//! - A key without limits in `fast` mode goes straight through (nothing to count, no epoch).
//! - A family this isolate remembers as blocked ([`super::blocked`]) is refused here without
//!   asking anyone; for an `exact`-mode key the refusal is tallied for its usage
//!   ([`super::refused`]).
//! - `fast` mode: the isolate's own counters decide ([`crate::limit::local`]); when the key's tier
//!   names a Workers Rate Limiting binding, that binding is asked too, and its refusal is reported
//!   on the limit it enforces (retry after that limit's window).
//! - `exact` mode with `LEASE_MS` = 0: the family's limiter decides each request (a hit,
//!   [`protocol::hit`]); it may answer that the record is stale instead.
//! - `exact` mode with leases (`LEASE_MS` > 0, see [`crate::limit::lease`] and
//!   [`super::leases`]): the key's lease admits without I/O; the request that finds it running
//!   low sends an early renewal in its own background ([`Next::Background`]); one that finds it
//!   empty renews for itself ([`LimiterOp::Lease`](crate::limit::protocol::LimiterOp::Lease)) and is decided by the answer, or, while a
//!   renewal is in flight, asks for itself alone (a hit). No request waits for
//!   another's call. A refusal in an answer blocks the family as a `Hit`'s does.
//! - Limiter or binding unable to answer: `RATE_LIMIT_FAILURE=open` serves the request
//!   (authentication was already enforced), `closed` answers 503 `STORE_UNAVAILABLE`.
//! - A refusal blocks the family in this isolate for its retry-after.

use crate::config::{FailurePolicy, FastBinding};
use crate::error::GatewayError;
use crate::forward::ForwardPlan;
use crate::limit::algorithm::Decision;
use crate::limit::credits::CREDITS;
use crate::limit::headers;
use crate::limit::lease::{Admit, Renewed};
use crate::limit::protocol::{self, LimiterReply};
use crate::record::LimitMode;

use super::{Gate, Headers, IsolateState, Matched, Next, Phase, Refusal, MAX_ADOPTIONS};

/// The error a refused decision answers with: `QUOTA_EXCEEDED` when a quota refused, else
/// `RATE_LIMIT_EXCEEDED`, naming the limit that asks for the longest wait.
pub fn refusal_error(decision: &Decision) -> GatewayError {
    if decision.credits().is_some_and(|c| c.refused) {
        let wait = decision.credits().map_or(0, |c| c.reset_seconds);
        return GatewayError::CreditsExhausted { retry_after: wait };
    }
    match decision.refusal() {
        Some(limit) if limit.quota => GatewayError::QuotaExceeded { limit: limit.name.clone(), retry_after: limit.retry_after_seconds },
        Some(limit) => GatewayError::RateLimitExceeded { limit: limit.name.clone(), retry_after: limit.retry_after_seconds },
        None => GatewayError::RateLimitExceeded { limit: String::new(), retry_after: 1 },
    }
}

/// `decision` with the Rate Limiting binding's refusal reported on the limit it enforces.
pub fn binding_refused(mut decision: Decision, fast: &FastBinding) -> Decision {
    decision.allowed = false;
    for limit in decision.limits.iter_mut().filter(|l| l.name == fast.limit) {
        limit.refused = true;
        limit.remaining = 0;
        limit.retry_after_seconds = limit.window_seconds;
    }
    decision
}

impl<'a> Gate<'a> {
    /// limit: the blocked-until memory, then the counters of the key's mode.
    pub(super) fn limit(&mut self, matched: Matched<'a>, plan: ForwardPlan, isolate: &mut IsolateState) -> Next<'a> {
        let config = self.config;
        let record = &*matched.record;
        let specs = config.limiter_specs(record);
        let specs = &*specs;
        let mode = config.mode_for(record);
        if specs.is_empty() && mode == LimitMode::Fast {
            // Nothing to count and no epoch to check: the hot path of a key without limits.
            return Gate::admit(matched, plan, Vec::new());
        }
        let family = record.family_id();
        // A lease's unit is one request of cost 1: other costs of a key with credits are hits.
        let leased = mode == LimitMode::Exact && config.lease_ms > 0 && (record.credits.is_none() || matched.route.cost == 1);
        if leased {
            // Units held are used before a block is consulted: none is stranded by it.
            let entry = isolate.leases.entry(record, specs, config.lease_ms);
            if entry.confirmed(record) && entry.lease.usable(self.now_ms) {
                return self.leased(matched, plan, isolate);
            }
        }
        if !specs.is_empty() {
            if let Some(decision) = isolate.blocked.refusal(family, specs, self.now_ms) {
                let refusal = Refusal { error: refusal_error(&decision), headers: self.headers(specs, &decision) };
                if mode == LimitMode::Exact && isolate.refused.count(family, &record.id, self.now_ms) {
                    self.phase = Phase::Refusing(refusal);
                    return Next::FlushRefused;
                }
                return Next::Refuse(refusal);
            }
        }
        match mode {
            LimitMode::Fast => {
                let decision = isolate.fast.decide(family, specs, self.now_ms);
                if decision.allowed {
                    if let Some(fast) = config.fast_binding_for(record) {
                        let family = family.to_string();
                        self.phase = Phase::Binding(matched, plan, decision, fast);
                        return Next::CheckBinding { binding: &fast.binding, family };
                    }
                }
                self.decided(matched, plan, decision, isolate)
            }
            LimitMode::Exact if leased => self.leased(matched, plan, isolate),
            LimitMode::Exact => self.hit(matched, plan),
        }
    }

    /// A request decided by its own hit ([`protocol::hit`]).
    fn hit(&mut self, matched: Matched<'a>, plan: ForwardPlan) -> Next<'a> {
        let record = &*matched.record;
        let family = record.family_id().to_string();
        let op = protocol::hit(&record.id, record.revision, &self.config.limiter_specs(record), matched.route.cost);
        self.phase = Phase::Hit(matched, plan);
        Next::AskLimiter { family, op }
    }

    /// `exact` mode with leases: the family's lease decides, or says which call this request
    /// makes. A key not confirmed under the lease's epoch renews for itself (or, while a
    /// renewal is in flight, asks for itself alone).
    fn leased(&mut self, matched: Matched<'a>, plan: ForwardPlan, isolate: &mut IsolateState) -> Next<'a> {
        let config = self.config;
        let record = &*matched.record;
        let specs = config.limiter_specs(record);
        let specs = &*specs;
        let entry = isolate.leases.entry(record, specs, config.lease_ms);
        let admit = match entry.confirmed(record) {
            true => entry.lease.admit(self.now_ms),
            false => entry.lease.renew_now(self.now_ms).map_or(Admit::Hit, Admit::Renew),
        };
        let decision = entry.decision.clone();
        let headers = self.lease_headers(specs, decision.clone(), entry.lease.left());
        let family = record.family_id().to_string();
        match admit {
            Admit::Yes => Gate::admit(matched, plan, headers),
            Admit::YesRenew(renewal) => {
                let op = isolate.leases.op(record, renewal, specs);
                let record = matched.record.clone();
                self.phase = Phase::Admit(matched, plan, headers);
                Next::Background { record, op }
            }
            Admit::No { retry_after_ms } => {
                let mut decision = decision.filter(|d| !d.allowed).unwrap_or(Decision { allowed: false, limits: Vec::new() });
                for limit in decision.limits.iter_mut().filter(|l| l.refused) {
                    limit.retry_after_seconds = retry_after_ms.div_ceil(1000).max(1);
                }
                Next::Refuse(Refusal { error: refusal_error(&decision), headers: self.headers(specs, &decision) })
            }
            Admit::Hit => self.hit(matched, plan),
            Admit::Renew(renewal) => {
                let op = isolate.leases.op(record, renewal, specs);
                self.phase = Phase::Leasing(matched, plan);
                Next::AskLimiter { family, op }
            }
        }
    }

    /// Rate-limit headers of a request admitted from a lease: the limiter's latest decision,
    /// counting the units this isolate still holds as remaining.
    fn lease_headers(&self, specs: &[crate::limit::algorithm::LimitSpec], decision: Option<Decision>, left: u64) -> Headers {
        let Some(mut decision) = decision.filter(|d| d.allowed) else { return Vec::new() };
        // The credits balance is the one after the grant (units held are spent already).
        for limit in decision.limits.iter_mut().filter(|l| l.name != CREDITS) {
            limit.remaining = limit.remaining.saturating_add(left).min(limit.limit);
        }
        self.headers(specs, &decision)
    }

    /// The answer to this request's own lease renewal.
    pub(super) fn lease_renewed(
        &mut self,
        matched: Matched<'a>,
        plan: ForwardPlan,
        reply: Option<LimiterReply>,
        isolate: &mut IsolateState,
    ) -> Next<'a> {
        match (isolate.leases.answered(&matched.record, reply.as_ref(), true, true), reply) {
            (Renewed::Admitted, Some(LimiterReply::Lease(grant))) => {
                let left = isolate.leases.left(&matched.record);
                let headers = self.lease_headers(&self.config.limiter_specs(&matched.record), grant.decision, left);
                Gate::admit(matched, plan, headers)
            }
            (Renewed::Refused, Some(LimiterReply::Lease(grant))) => {
                let decision = grant.decision.unwrap_or(Decision { allowed: false, limits: Vec::new() });
                self.decided(matched, plan, decision, isolate)
            }
            (_, Some(LimiterReply::Stale(record))) if self.adoptions < MAX_ADOPTIONS => self.adopt(matched, record),
            // A new epoch: the lease dropped its units; this request renews again.
            (Renewed::Stale, _) if self.adoptions < MAX_ADOPTIONS => {
                self.adoptions += 1;
                self.leased(matched, plan, isolate)
            }
            (Renewed::Stale, _) | (_, Some(LimiterReply::Stale(_))) => Next::Refuse(GatewayError::StoreUnavailable.into()),
            _ => self.limited(matched, plan, None, isolate),
        }
    }

    /// The limiter's answer to a hit.
    pub(super) fn limited(
        &mut self,
        matched: Matched<'a>,
        plan: ForwardPlan,
        reply: Option<LimiterReply>,
        isolate: &mut IsolateState,
    ) -> Next<'a> {
        if self.config.lease_ms > 0 {
            isolate.leases.answered(&matched.record, reply.as_ref(), false, true);
        }
        match reply {
            Some(LimiterReply::Decided(decision)) => self.decided(matched, plan, decision, isolate),
            Some(LimiterReply::Lease(grant)) if !grant.record_changed => {
                let decision = grant.decision.unwrap_or(Decision { allowed: grant.allowed > 0, limits: Vec::new() });
                self.decided(matched, plan, decision, isolate)
            }
            Some(LimiterReply::Stale(record)) if self.adoptions < MAX_ADOPTIONS => self.adopt(matched, record),
            Some(LimiterReply::Stale(_)) => Next::Refuse(GatewayError::StoreUnavailable.into()),
            Some(LimiterReply::Usage(_) | LimiterReply::Lease(_) | LimiterReply::Done) | None => match self.config.rate_limit_failure {
                FailurePolicy::Open => Gate::admit(matched, plan, Vec::new()),
                FailurePolicy::Closed => Next::Refuse(GatewayError::StoreUnavailable.into()),
            },
        }
    }

    /// The Rate Limiting binding's answer, after the isolate's counters allowed the request.
    pub(super) fn location_limited(
        &mut self,
        matched: Matched<'a>,
        plan: ForwardPlan,
        decision: Decision,
        fast: &FastBinding,
        allowed: Option<bool>,
        isolate: &mut IsolateState,
    ) -> Next<'a> {
        let allowed = match (allowed, self.config.rate_limit_failure) {
            (Some(allowed), _) => allowed,
            (None, FailurePolicy::Open) => true,
            (None, FailurePolicy::Closed) => return Next::Refuse(GatewayError::StoreUnavailable.into()),
        };
        // The location-wide counter is spent: report it on the limit it enforces.
        let decision = if allowed { decision } else { binding_refused(decision, fast) };
        self.decided(matched, plan, decision, isolate)
    }

    /// A decision of the key's limits: admit with its headers, or refuse and block the family.
    fn decided(&mut self, matched: Matched<'a>, plan: ForwardPlan, decision: Decision, isolate: &mut IsolateState) -> Next<'a> {
        let specs = self.config.limiter_specs(&matched.record);
        let headers = self.headers(&specs, &decision);
        if decision.allowed {
            return Gate::admit(matched, plan, headers);
        }
        // An empty balance is not remembered here: an admin `credits add` must reach the next
        // request, and a refill may be a day away.
        if !decision.credits().is_some_and(|c| c.refused) {
            isolate.blocked.block(matched.record.family_id(), &specs, &decision, self.now_ms);
        }
        Next::Refuse(Refusal { error: refusal_error(&decision), headers })
    }

    fn headers(&self, specs: &[crate::limit::algorithm::LimitSpec], decision: &Decision) -> super::Headers {
        headers::render(specs, decision, (self.now_ms / 1000) as u64, self.config.rate_limit_header_limit.as_deref())
    }
}
