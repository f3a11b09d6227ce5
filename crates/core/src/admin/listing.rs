//! The body of a key list page (`GET /keys`): each item is the stored record plus
//! `last_used_at`, the key's last reported use (RFC 3339), or `null` when none has been reported
//! yet (reports are batched, at most a minute behind). The registry answers records and last uses
//! side by side; this puts them together.

use serde_json::Value;

use crate::json::{object, value_of};
use crate::record::KeyRecord;
use crate::timestamp::Timestamp;

/// `{"items": [record + last_used_at, …], "cursor": …}`. A record without a matching last use
/// (a shorter list) gets `null`.
pub fn page(items: &[KeyRecord], last_used: &[Option<i64>], cursor: Option<&str>) -> Value {
    let items: Vec<Value> = items
        .iter()
        .zip(last_used.iter().chain(std::iter::repeat(&None)))
        .map(|(record, at)| {
            // Through the record's text, not `to_value`: one serializer of `KeyRecord` in the
            // wasm (`json::value_of`). The same value, members in key order.
            let mut item = value_of(record);
            if let Some(fields) = item.as_object_mut() {
                fields.insert("last_used_at".into(), Value::from(at.map(|ms| Timestamp(ms).to_rfc3339())));
            }
            item
        })
        .collect();
    object([("items", Value::Array(items)), ("cursor", Value::from(cursor))])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::tests::sample_json;
    use serde_json::json;

    #[test]
    fn each_item_is_the_record_with_its_last_use() {
        let record: KeyRecord = serde_json::from_str(sample_json()).unwrap();
        let mut second = record.clone();
        second.id = "key_second".into();
        let body = page(&[record.clone(), second.clone()], &[Some(1_800_000_000_000)], Some("2.key_second"));
        let items = body["items"].as_array().unwrap();
        assert_eq!(items.len(), 2);
        assert_eq!(items[0]["last_used_at"], "2027-01-15T08:00:00.000Z");
        assert_eq!(items[1]["last_used_at"], Value::Null, "no reported use: null");
        assert_eq!(items[1]["id"], "key_second");
        let mut without = items[0].clone();
        without.as_object_mut().unwrap().remove("last_used_at");
        assert_eq!(without, serde_json::to_value(&record).unwrap(), "otherwise the stored record");
        assert_eq!(body["cursor"], "2.key_second");
        assert_eq!(page(&[], &[], None), json!({ "items": [], "cursor": null }));
    }
}
