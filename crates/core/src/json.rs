//! The one way keygate's wasm reads JSON text: [`parse`].
//!
//! serde_json's reader is a type parameter, and every type decoded is compiled once per
//! reader: `from_str` and `from_slice` side by side would put two decoders of `Value` (and of
//! whatever else both read) into the wasm. The admin API must read request bodies as bytes
//! (`from_slice`: its errors for invalid UTF-8 are part of the answer), so text is read the
//! same way. For valid UTF-8, which every `&str` is, `from_slice` accepts, refuses and reports
//! exactly what `from_str` would. Tests may use `from_str`: they are not in the wasm.

use serde::de::DeserializeOwned;

/// Decodes `text` as JSON (serde_json's `from_slice` of its bytes; see the module docs).
pub fn parse<T: DeserializeOwned>(text: &str) -> serde_json::Result<T> {
    parse_bytes(text.as_bytes())
}

/// Decodes `bytes` as JSON: [`parse`] for a body read as bytes (the same reader).
pub fn parse_bytes<T: DeserializeOwned>(bytes: &[u8]) -> serde_json::Result<T> {
    serde_json::from_slice(bytes)
}
