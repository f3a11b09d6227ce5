//! Rate limits and quotas: the pure algorithm ([`algorithm`]) and header rendering ([`headers`]).

pub mod algorithm;
pub mod headers;
pub mod protocol;
