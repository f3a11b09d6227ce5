//! Last use of keys, batched per isolate (pure, clock passed in).
//!
//! Key lists show when each key was last used (Octavia: "review last-used timestamps to identify
//! unused keys"). The request path must not call the registry per request, so each isolate notes
//! the keys it admitted in memory and hands over one batch per project at most every
//! [`REPORT_EVERY_MS`]; the glue sends it to the project's registry off the hot path. A report is
//! at most that far behind, plus the time until the isolate serves its next request.

use serde_json::{Map, Value};

/// Default least time between two reports of one isolate (`LAST_USED_REPORT_SECONDS`).
pub const REPORT_EVERY_MS: i64 = 60_000;
/// At most this many keys wait for a report per isolate; uses of further keys are reported
/// from the next batch on (memory stays bounded whatever the traffic).
pub const MAX_PENDING_KEYS: usize = 10_000;

/// One project's part of a report: the project and `(key id, last use in unix ms)` pairs.
pub type ProjectReport = (String, Vec<(String, i64)>);

/// Keys admitted since the last report, by project: key id → last use (unix ms).
///
/// The book is two levels of serde_json's `Map` (an ordered map of strings, as a `BTreeMap`),
/// project → key id → last use as a number: the wasm already holds that map's code for JSON,
/// while `BTreeMap<String, BTreeMap<String, i64>>` compiled two more ordered maps (~7 KB before
/// `wasm-opt`) for this book alone.
#[derive(Debug, Default)]
pub struct LastUse {
    pending: Map<String, Value>,
    keys: usize,
    last_report_ms: Option<i64>,
}

impl LastUse {
    /// Notes that `key_id` of `project` was admitted at `now_ms`. Allocates only for a key not
    /// yet pending.
    pub fn record(&mut self, project: &str, key_id: &str, now_ms: i64) {
        if let Some(at) = self.pending.get_mut(project).and_then(|keys| keys.get_mut(key_id)) {
            *at = at.as_i64().unwrap_or(i64::MIN).max(now_ms).into();
            return;
        }
        if self.keys >= MAX_PENDING_KEYS {
            return;
        }
        self.keys += 1;
        let keys = self.pending.entry(project).or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(keys) = keys {
            keys.insert(key_id.to_string(), now_ms.into());
        }
    }

    /// The batch to report now, per project, if one is due: something is pending and the last
    /// report was at least `every_ms` ago (the first one is due at once, so a fresh isolate's
    /// uses show up quickly). Taking it empties the book.
    pub fn take_due(&mut self, now_ms: i64, every_ms: i64) -> Option<Vec<ProjectReport>> {
        if self.pending.is_empty() || self.last_report_ms.is_some_and(|last| now_ms - last < every_ms) {
            return None;
        }
        self.last_report_ms = Some(now_ms);
        self.keys = 0;
        // Ordered maps: the batch comes out sorted by project (and key) without a sort.
        let keys = |keys: Value| match keys {
            Value::Object(keys) => keys.into_iter().map(|(id, at)| (id, at.as_i64().unwrap_or_default())).collect(),
            _ => Vec::new(),
        };
        Some(std::mem::take(&mut self.pending).into_iter().map(|(project, ids)| (project, keys(ids))).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uses_are_batched_per_project_and_reported_at_most_once_a_minute() {
        let mut book = LastUse::default();
        assert_eq!(book.take_due(0, REPORT_EVERY_MS), None, "nothing used, nothing to report");
        book.record("acme", "key_a", 1_000);
        book.record("acme", "key_a", 2_000);
        book.record("globex", "key_g", 1_500);
        let first = book.take_due(2_000, REPORT_EVERY_MS).expect("the first report is due at once");
        assert_eq!(first, vec![("acme".into(), vec![("key_a".into(), 2_000)]), ("globex".into(), vec![("key_g".into(), 1_500)])]);
        book.record("acme", "key_a", 3_000);
        assert_eq!(book.take_due(3_000, REPORT_EVERY_MS), None, "within a minute of the last report");
        assert_eq!(book.take_due(2_000 + REPORT_EVERY_MS - 1, REPORT_EVERY_MS), None);
        assert_eq!(book.take_due(2_000 + REPORT_EVERY_MS, REPORT_EVERY_MS), Some(vec![("acme".into(), vec![("key_a".into(), 3_000)])]));
        assert_eq!(book.take_due(10 * REPORT_EVERY_MS, REPORT_EVERY_MS), None, "a report empties the book");
    }

    #[test]
    fn the_book_stays_bounded() {
        let mut book = LastUse::default();
        for i in 0..MAX_PENDING_KEYS + 50 {
            book.record("acme", &format!("key_{i}"), 1);
        }
        book.record("acme", "key_0", 9);
        let batch = book.take_due(10, REPORT_EVERY_MS).unwrap();
        assert_eq!(batch[0].1.len(), MAX_PENDING_KEYS);
        assert!(batch[0].1.contains(&("key_0".into(), 9)), "a pending key keeps being updated");
    }
}
