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

/// splitmix64: a tiny seeded generator, enough for reproducible simulation schedules (the lease
/// and rotation simulations share it).
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n ≥ 1).
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    /// True `percent` times in 100.
    pub(crate) fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    /// One of `items`, uniformly.
    pub(crate) fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }
}
