//! Reports the last use of admitted keys to their projects' registries, batched per isolate
//! ([`keygate_core::seen`]): noting a use is a map update; a due batch is sent inside the
//! `wait_until` of the request that found it due, one registry call per project, and a failed
//! report is dropped (the next one carries newer uses). The request never waits for it, so a
//! registry outage does not touch traffic.

use std::cell::RefCell;

use worker::{Context, Env};

use keygate_core::admin::protocol::{Failure, Op, Reply};
use keygate_core::config::Config;
use keygate_core::seen::LastUse;

use crate::key_registry::REGISTRY_BINDING;
use crate::respond::log_event;

thread_local! {
    static LAST_USE: RefCell<LastUse> = RefCell::new(LastUse::default());
}

/// Notes that `key_id` of `project` was admitted now, and starts a report if one is due.
pub fn admitted(env: &Env, ctx: &Context, config: &Config, project: &str, key_id: &str, now_ms: i64) {
    let due = LAST_USE.with(|book| {
        let mut book = book.borrow_mut();
        book.record(project, key_id, now_ms);
        book.take_due(now_ms, config.last_used_report_ms)
    });
    let Some(batch) = due else { return };
    let env = env.clone();
    crate::in_background(
        ctx,
        Box::pin(async move {
            for (project, seen) in batch {
                let outcome: Result<Result<Reply, Failure>, String> =
                    crate::durable::call(&env, REGISTRY_BINDING, &project, &Op::Seen(seen)).await;
                if let Err(reason) | Ok(Err(Failure::Store(reason))) = outcome {
                    log_event("last_used_report_failed", "background", &[("reason", &reason)]);
                }
            }
        }),
    );
}
