//! keygate: an API-key gateway that runs as a Cloudflare Worker in front of an origin.
//!
//! A request passes these phases, in order (cheap checks before costly ones):
//!
//! 1. **extract** the key from `Authorization: Bearer` or `X-Api-Key` ([`credential`]);
//! 2. **route**: the route table says which scopes the path needs ([`routes`]);
//! 3. **parse** the key's format and checksum, no I/O ([`key`]);
//! 4. **lookup** the record by SHA-256 hash: isolate cache ([`cache`]), then Workers KV ([`record`]);
//! 5. **check** status, validity window, scopes, project, `Origin` ([`policy`], [`scope`]), then
//!    the client's network and country for a key restricted to some ([`network`]);
//! 6. **limit**: the key's rate limits and quotas ([`gate::limit`], [`limit`]);
//! 7. **forward** to the live or test origin without the credential, with the signed identity
//!    token, `X-Keygate-Identity` ([`forward`], [`signature`]);
//! 8. **respond**: the origin's answer, or a JSON error ([`error`]) in the configured dialect
//!    ([`dialect`]).
//!
//! [`gate`] runs these phases as a sans-IO state machine: it answers a final decision or the
//! next I/O it needs, and the worker feeds back what that I/O found.
//!
//! Off the hot path, each isolate reports the last use of the keys it admitted to their
//! project's registry in batches ([`seen`]), for key lists.
//!
//! Off the request path too, a leak report from GitHub's secret scanning disables (or revokes)
//! the keys it names, once its signature verifies ([`leak`]).
//!
//! A key's lifecycle changes, expiry warnings and quota warnings become signed webhooks, stored
//! with the change and delivered with retries by the project's registry ([`webhook`]).
//!
//! What crosses the wasm/JS boundary is encoded one way, by [`boundary`].
//!
//! Everything above is pure and unit-tested natively; `keygate-worker` (wasm32 only) is the
//! Workers glue that reads the clock, KV and the network and does what the core decides.

#![cfg_attr(test, allow(clippy::type_complexity))] // table-driven tests use wide row tuples

pub mod admin;
pub mod boundary;
pub mod cache;
pub mod config;
pub mod cors;
pub mod credential;
pub mod dialect;
pub mod error;
pub mod forward;
pub mod gate;
pub mod json;
pub mod key;
pub mod leak;
pub mod limit;
pub mod network;
pub mod policy;
pub mod record;
pub mod rotation;
pub mod routes;
pub mod scope;
pub mod seen;
pub mod signature;
pub mod timestamp;
pub mod webhook;

#[cfg(test)]
mod testing;
