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

/// `value` as a JSON value, through its text: serde_json's `to_vec`, then [`parse_bytes`].
/// The same value as `serde_json::to_value`, but a type written with `to_string` somewhere (a
/// record, an audit entry) is then serialized by one serializer in the wasm, not also by
/// `to_value`'s (each type's `Serialize` is compiled once per serializer). `Null` if `value`
/// cannot be written as JSON (a map with non-string keys; nothing keygate serializes).
pub fn value_of<T: serde::Serialize + ?Sized>(value: &T) -> serde_json::Value {
    serde_json::to_vec(value).ok().and_then(|bytes| parse_bytes(&bytes).ok()).unwrap_or_default()
}

/// A JSON object of `members` (a map: its members come out in key order, as `json!`'s do).
pub fn object<const N: usize>(mut members: [(&str, serde_json::Value); N]) -> serde_json::Value {
    object_of(&mut members)
}

/// [`object`] for any number of members: one copy in the wasm, not one per `N`.
fn object_of(members: &mut [(&str, serde_json::Value)]) -> serde_json::Value {
    let mut map = serde_json::Map::new();
    for (name, value) in members {
        map.insert((*name).into(), std::mem::take(value));
    }
    serde_json::Value::Object(map)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::KeyRecord;

    #[test]
    fn value_of_is_to_value() {
        let record: KeyRecord = serde_json::from_str(crate::record::tests::sample_json()).unwrap();
        assert_eq!(value_of(&record), serde_json::to_value(&record).unwrap());
        let mut with_credits = serde_json::to_value(&record).unwrap();
        with_credits["credits"] = serde_json::json!({"refill": {"amount": 5, "interval": "day", "mode": "add"}});
        with_credits["limits"] = serde_json::json!([{"name": "m", "limit": 10, "window_seconds": 60}]);
        let record: KeyRecord = serde_json::from_value(with_credits).unwrap();
        assert!(record.credits.is_some() && record.limits.is_some());
        assert_eq!(value_of(&record), serde_json::to_value(&record).unwrap());
        assert_eq!(value_of(&f64::NAN), serde_json::Value::Null);
        assert_eq!(value_of(&[1.5, 1e300]), serde_json::to_value([1.5, 1e300]).unwrap());
    }

    #[test]
    fn object_is_json_macro() {
        let got = object([("b", 1.into()), ("a", serde_json::Value::Null)]);
        assert_eq!(got.to_string(), serde_json::json!({"b": 1, "a": null}).to_string());
    }
}
