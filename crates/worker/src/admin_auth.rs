//! Admin authentication glue: reads the token and the client address, asks the `admin-auth`
//! limiter instance whether this attempt may be judged (and charges it if it failed), and falls
//! back to this isolate's own count when that limiter cannot answer. The decisions themselves
//! are pure: [`keygate_core::admin::auth_limit`] and [`keygate_core::credential::AdminToken`]
//! (the token's digest, taken once when the config is parsed, compared in constant time).

use std::cell::RefCell;
use std::collections::HashMap;

use worker::Env;

use keygate_core::admin::auth_limit::{self, address_bucket};
use keygate_core::config::Config;
use keygate_core::error::GatewayError;
use keygate_core::limit::algorithm::{Decision, LimitState};
use keygate_core::limit::protocol::{LimiterOp, LimiterReply, ADMIN_AUTH_INSTANCE};

use crate::respond::log_event;
use crate::Incoming;

/// Fallback state while the limiter is unreachable: address bucket → state, and the global state.
type LocalCounts = (HashMap<String, LimitState>, LimitState);

thread_local! {
    static LOCAL: RefCell<LocalCounts> = RefCell::new((HashMap::new(), LimitState::default()));
}

/// `Ok` when the request carries the admin token and its address is not throttled.
/// Throttled (`429 ADMIN_AUTH_THROTTLED`) wins over everything else: the answer is the same
/// whatever the token, so it tells a guesser nothing.
pub async fn authenticate(incoming: &Incoming, env: &Env, config: &Config) -> Result<(), GatewayError> {
    let Some(expected) = &config.admin_token else {
        log_event("admin_disabled", incoming.request_id(), &[("reason", "ADMIN_TOKEN is not set")]);
        return Err(GatewayError::Unauthorized);
    };
    let matches = expected.matches(incoming.header("authorization").as_deref());
    let address = address_bucket(incoming.header("cf-connecting-ip").as_deref());
    let decision = judge(incoming, env, config, &address, !matches).await;
    if let Err(error) = auth_limit::refusal(&decision) {
        if let GatewayError::AdminAuthThrottled { scope, retry_after } = &error {
            let retry_after = retry_after.to_string();
            log_event(
                "admin_auth_throttled",
                incoming.request_id(),
                &[("address", &address), ("scope", scope), ("retry_after", &retry_after)],
            );
        }
        return Err(error);
    }
    if !matches {
        log_event("admin_auth_failed", incoming.request_id(), &[("address", &address)]);
        return Err(GatewayError::Unauthorized);
    }
    Ok(())
}

/// The limiter's decision on this attempt; this isolate's own count when it cannot answer.
async fn judge(incoming: &Incoming, env: &Env, config: &Config, address: &str, failed: bool) -> Decision {
    let specs = config.admin_auth.specs();
    let reason = if config.limiter_fault {
        "LIMITER_FAULT test switch".to_string()
    } else {
        let op = LimiterOp::AdminAuth(address.to_string(), failed, specs.clone());
        match crate::key_limiter::call(env, ADMIN_AUTH_INSTANCE, &op).await {
            Ok(LimiterReply::Decided(decision)) => return decision,
            Ok(_) => "unexpected reply".to_string(),
            Err(reason) => reason,
        }
    };
    log_event("limiter_unavailable", incoming.request_id(), &[("reason", &reason), ("scope", "admin_auth")]);
    LOCAL.with(|local| {
        let (addresses, global) = &mut *local.borrow_mut();
        let now_us = incoming.now_ms.saturating_mul(1000);
        if addresses.len() > 10_000 {
            addresses.retain(|_, state| state.mark > now_us);
        }
        let before = [addresses.get(address).copied().unwrap_or_default(), *global];
        let mut states = before.to_vec();
        let decision = auth_limit::judge(&specs, &mut states, failed, incoming.now_ms);
        if states != before {
            addresses.insert(address.to_string(), states[0]);
            *global = states[1];
        }
        decision
    })
}
