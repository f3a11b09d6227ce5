//! Assertions shared by the core's unit tests (compiled for tests only).

use serde::de::DeserializeOwned;
use serde::Serialize;

/// Decodes `message`'s JSON, checks it is `message` again, and that it encodes to the same JSON:
/// a wire message survives the trip between the worker and a Durable Object unchanged.
pub(crate) fn assert_round_trips<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(message: T) {
    let json = serde_json::to_string(&message).unwrap();
    let back: T = serde_json::from_str(&json).unwrap_or_else(|e| panic!("{json} does not decode: {e}"));
    assert_eq!(back, message, "{json}");
    assert_eq!(serde_json::to_string(&back).unwrap(), json);
}
