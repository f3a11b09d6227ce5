//! Rate limits and quotas: the pure algorithm ([`algorithm`]), `fast` mode's bounded
//! per-isolate counters ([`local`]) and header rendering ([`headers`]).

pub mod algorithm;
pub mod credits;
pub mod headers;
pub mod lease;
pub mod local;
pub mod protocol;
