//! [`Patch<T>`]: what a partial update does to one optional field of a record — keep it, clear
//! it, or set it.
//!
//! In JSON (the admin API's PATCH body and the registry message that carries a validated
//! change) the three are: the field absent = [`Patch::Keep`], `null` = [`Patch::Clear`], a value
//! = [`Patch::Set`]. A struct field of this type therefore needs
//! `#[serde(default, skip_serializing_if = "Patch::is_keep")]`: `Keep` has no JSON value of its
//! own, so serialising it is an error rather than a silent `null` (which would clear).

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// One optional field of a partial update.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Patch<T> {
    /// Leave the field as it is (absent).
    #[default]
    Keep,
    /// Remove the field's value (`null`).
    Clear,
    /// Give the field this value.
    Set(T),
}

impl<T> Patch<T> {
    /// The patch of a field that is present: `None` (JSON `null`) clears, `Some` sets.
    pub fn present(value: Option<T>) -> Patch<T> {
        match value {
            None => Patch::Clear,
            Some(value) => Patch::Set(value),
        }
    }

    /// Whether the field stays as it is.
    pub fn is_keep(&self) -> bool {
        matches!(self, Patch::Keep)
    }

    /// Applies the patch to `field`.
    pub fn apply(&self, field: &mut Option<T>)
    where
        T: Clone,
    {
        match self {
            Patch::Keep => {}
            Patch::Clear => *field = None,
            Patch::Set(value) => *field = Some(value.clone()),
        }
    }
}

impl<T: Serialize> Serialize for Patch<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Patch::Keep => Err(serde::ser::Error::custom("Patch::Keep is written by leaving the field out")),
            Patch::Clear => serializer.serialize_none(),
            Patch::Set(value) => serializer.serialize_some(value),
        }
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Patch<T> {
    /// A present field: `null` clears, a value sets (an absent one is `Keep`, by `#[serde(default)]`).
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Option::<T>::deserialize(deserializer).map(Patch::present)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Change {
        #[serde(default, skip_serializing_if = "Patch::is_keep")]
        role: Patch<String>,
    }

    #[test]
    fn absent_is_keep_null_is_clear_a_value_is_set() {
        let rows: &[(&str, &str, Patch<String>)] = &[
            ("absent keeps", r#"{}"#, Patch::Keep),
            ("null clears", r#"{"role":null}"#, Patch::Clear),
            ("a value sets", r#"{"role":"writer"}"#, Patch::Set("writer".into())),
        ];
        for (what, json, expected) in rows {
            let change: Change = serde_json::from_str(json).unwrap();
            assert_eq!(&change.role, expected, "{what}");
            assert_eq!(serde_json::to_string(&change).unwrap(), *json, "{what}: writes back the same JSON");
        }
        assert!(serde_json::from_str::<Change>(r#"{"role":5}"#).is_err(), "a value of the wrong type is refused");
    }

    #[test]
    fn keep_cannot_be_written_as_a_value() {
        assert!(serde_json::to_string(&Patch::<String>::Keep).is_err(), "Keep written as null would clear");
        assert_eq!(serde_json::to_string(&Patch::<String>::Clear).unwrap(), "null");
    }

    #[test]
    fn apply_keeps_clears_or_sets() {
        let rows: &[(&str, Patch<u8>, Option<u8>, Option<u8>)] = &[
            ("keep a value", Patch::Keep, Some(1), Some(1)),
            ("keep nothing", Patch::Keep, None, None),
            ("clear a value", Patch::Clear, Some(1), None),
            ("set over a value", Patch::Set(2), Some(1), Some(2)),
            ("set over nothing", Patch::Set(2), None, Some(2)),
        ];
        for (what, patch, before, after) in rows {
            let mut field = *before;
            patch.apply(&mut field);
            assert_eq!(field, *after, "{what}");
        }
        assert!(Patch::<u8>::Keep.is_keep() && !Patch::<u8>::Clear.is_keep() && !Patch::Set(1).is_keep());
        assert_eq!(Patch::present(None::<u8>), Patch::Clear);
        assert_eq!(Patch::present(Some(3)), Patch::Set(3));
    }
}
