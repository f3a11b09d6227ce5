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
//! - `exact` mode: the family's limiter decides ([`LimiterOp::Hit`]); it may answer that the
//!   record is stale instead.
//! - Limiter or binding unable to answer: `RATE_LIMIT_FAILURE=open` serves the request
//!   (authentication was already enforced), `closed` answers 503 `STORE_UNAVAILABLE`.
//! - A refusal blocks the family in this isolate for its retry-after.

use crate::config::{FailurePolicy, FastBinding};
use crate::error::GatewayError;
use crate::forward::ForwardPlan;
use crate::limit::algorithm::Decision;
use crate::limit::headers;
use crate::limit::protocol::{LimiterOp, LimiterReply};
use crate::record::LimitMode;

use super::{Gate, IsolateState, Matched, Next, Phase, Refusal, MAX_ADOPTIONS};

/// The error a refused decision answers with: `QUOTA_EXCEEDED` when a quota refused, else
/// `RATE_LIMIT_EXCEEDED`, naming the limit that asks for the longest wait.
pub fn refusal_error(decision: &Decision) -> GatewayError {
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
        let specs = config.limits_for(record);
        let mode = config.mode_for(record);
        if specs.is_empty() && mode == LimitMode::Fast {
            // Nothing to count and no epoch to check: the hot path of a key without limits.
            return Gate::admit(matched, plan, Vec::new());
        }
        let family = record.family_id();
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
            LimitMode::Exact => {
                let family = family.to_string();
                let op = LimiterOp::Hit(record.id.clone(), record.revision, specs.to_vec());
                self.phase = Phase::Hit(matched, plan);
                Next::AskLimiter { family, op }
            }
        }
    }

    /// The limiter's answer to [`LimiterOp::Hit`].
    pub(super) fn limited(
        &mut self,
        matched: Matched<'a>,
        plan: ForwardPlan,
        reply: Option<LimiterReply>,
        isolate: &mut IsolateState,
    ) -> Next<'a> {
        match reply {
            Some(LimiterReply::Decided(decision)) => self.decided(matched, plan, decision, isolate),
            Some(LimiterReply::Stale(record)) if self.adoptions < MAX_ADOPTIONS => self.adopt(matched, record),
            Some(LimiterReply::Stale(_)) => Next::Refuse(GatewayError::StoreUnavailable.into()),
            Some(LimiterReply::Usage(_) | LimiterReply::Done) | None => match self.config.rate_limit_failure {
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
        let specs = self.config.limits_for(&matched.record);
        let headers = self.headers(specs, &decision);
        if decision.allowed {
            return Gate::admit(matched, plan, headers);
        }
        isolate.blocked.block(matched.record.family_id(), specs, &decision, self.now_ms);
        Next::Refuse(Refusal { error: refusal_error(&decision), headers })
    }

    fn headers(&self, specs: &[crate::limit::algorithm::LimitSpec], decision: &Decision) -> super::Headers {
        headers::render(specs, decision, (self.now_ms / 1000) as u64, self.config.rate_limit_header_limit.as_deref())
    }
}
