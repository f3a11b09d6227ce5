//! Origin request signing: the [`keygate_verify`] crate, re-exported for the rest of the core.
//! The signing scheme, the audience rule and [`verify`] live there, in a crate an origin can
//! depend on without the gateway.

pub use keygate_verify::*;
