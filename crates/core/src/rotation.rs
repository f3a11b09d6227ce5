//! Roll grace that follows real use (pure, clock passed in): when an old key ends after a roll
//! with an adaptive grace (`POST /keys/{id}/roll {"grace": {…}}`).
//!
//! A fixed grace is a guess. With an adaptive grace the old key stays valid until the new key
//! has been seen in use for `after_new_used` (and, if set, the old key has been unused for
//! `old_unused`), and never past `max_end` (the roll plus the maximum grace, or the old key's
//! earlier end): the old key's `valid_to` is `max_end` from the roll on, so the bound holds
//! even if no use is ever reported. "Seen" means reported: each isolate reports the keys it
//! admitted at most every `LAST_USED_REPORT_SECONDS` ([`crate::seen`]), with the time of the
//! use, and the registry calls [`decide`] when a report arrives.
//!
//! The end is `min(max_end, max(first_new + after_new_used, last_old + old_unused))`, never
//! before the decision time, where `first_new` is when the new key was first reported in use
//! (the registry takes the latest use in the first report that names it: at or after the real
//! first use, so never too early) and `last_old` the latest reported use of the old key
//! (including uses before the roll).
//!
//! Invariants ([`decide`], checked by the simulation below on every step):
//! - the end never passes `max_end`;
//! - before `max_end` the old key ends only once the new key was reported in use at least
//!   `after_new_used` earlier (and the old key's last reported use is at least `old_unused`
//!   earlier, if set);
//! - once ended, the old key stays ended: nothing is decided for a key whose end has passed, and
//!   a new end is never before the decision time;
//! - an admin change wins: when the old key's `valid_to` is not the end this rule last set (a
//!   PATCH, another roll) or the key is revoked, the rule is dropped and changes nothing.

use serde_json::{Map, Value};

use std::collections::BTreeMap;

use crate::admin::lifecycle::{bump, AuditEntry, FieldChange};
use crate::record::KeyRecord;
use crate::timestamp::Timestamp;

/// Why the old key ends when it does (the `reason` of the audit entry that set the end).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// The new key has been in use for `after_new_used` (and that came last).
    NewKeyInUse,
    /// The new key is in use and the old key has been unused for `old_unused` (that came last).
    OldKeyUnused,
    /// The maximum grace: nothing (or not enough) was seen before the bound.
    MaxGrace,
}

impl Reason {
    /// Stable name, as written in the audit log.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::NewKeyInUse => "new_key_in_use",
            Reason::OldKeyUnused => "old_key_unused",
            Reason::MaxGrace => "max_grace",
        }
    }
}

/// A pending adaptive grace: the rule and the end it last set (all unix ms).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pending {
    /// How long the new key must have been in use.
    pub after_new_used_ms: i64,
    /// How long the old key must have been unused, if required.
    pub old_unused_ms: Option<i64>,
    /// The latest end: the roll plus the maximum grace (or the old key's earlier end).
    pub max_end: i64,
    /// The old key's `valid_to` as this rule last set it (`max_end` at the roll).
    pub end: i64,
}

/// Reported uses: the new key's first (as the registry noted it) and the old key's latest (unix
/// ms).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Uses {
    pub first_new: Option<i64>,
    pub last_old: Option<i64>,
}

/// What the registry does with a pending rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Nothing changes; keep the rule.
    Keep,
    /// The old key has ended, or an admin changed it: forget the rule, change nothing.
    Drop,
    /// Set the old key's `valid_to` to this end (unix ms), for this reason, and remember it.
    Move(i64, Reason),
}

/// The end the rule aims at from these uses, ignoring the decision time.
pub fn target(pending: &Pending, uses: Uses) -> (i64, Reason) {
    let Some(first_new) = uses.first_new else { return (pending.max_end, Reason::MaxGrace) };
    let mut end = (first_new.saturating_add(pending.after_new_used_ms), Reason::NewKeyInUse);
    if let (Some(unused), Some(last_old)) = (pending.old_unused_ms, uses.last_old) {
        let quiet = last_old.saturating_add(unused);
        if quiet > end.0 {
            end = (quiet, Reason::OldKeyUnused);
        }
    }
    if end.0 >= pending.max_end {
        (pending.max_end, Reason::MaxGrace)
    } else {
        end
    }
}

/// Decides at `now_ms` for an old key whose record has `valid_to` and is `revoked` or not.
pub fn decide(pending: &Pending, uses: Uses, valid_to: Option<i64>, revoked: bool, now_ms: i64) -> Decision {
    if revoked || valid_to != Some(pending.end) || pending.end <= now_ms {
        return Decision::Drop;
    }
    let (end, reason) = target(pending, uses);
    // Never in the past: the key was valid until now, and its record says when it stopped.
    let end = end.max(now_ms);
    if end == pending.end {
        Decision::Keep
    } else {
        Decision::Move(end, reason)
    }
}

/// The old key's `record` with `valid_to` moved to `end_ms`, and its `roll_grace_updated`
/// audit entry: `changes` has `valid_to` and `grace` (the reason and the reported uses it was
/// decided from).
pub fn moved(record: KeyRecord, end_ms: i64, reason: Reason, uses: Uses, now_ms: i64) -> (KeyRecord, AuditEntry) {
    let from = time(record.valid_to.map(Timestamp::millis));
    let mut record = bump(record, now_ms);
    record.valid_to = Some(Timestamp(end_ms));
    let mut changes = BTreeMap::new();
    changes.insert("valid_to".to_string(), FieldChange { from, to: time(Some(end_ms)) });
    let times = [("new_key_first_used", time(uses.first_new)), ("old_key_last_used", time(uses.last_old))];
    changes.insert("grace".into(), grace_note(reason, &times));
    let audit = AuditEntry {
        at: Timestamp(now_ms),
        action: "roll_grace_updated".into(),
        revision: record.revision,
        changes,
        reporter: None,
        source: None,
    };
    (record, audit)
}

/// A time as the audit log writes it: RFC 3339, or `null`.
fn time(at: Option<i64>) -> Value {
    at.map_or(Value::Null, |at| Value::String(Timestamp(at).to_rfc3339()))
}

/// An audit entry's `changes.grace`: `to` is `{"reason": …, name: value or null, …}`.
pub fn grace_note(reason: Reason, values: &[(&str, Value)]) -> FieldChange {
    let mut note = Map::new();
    note.insert("reason".into(), Value::String(reason.as_str().into()));
    for (name, value) in values {
        note.insert(name.to_string(), value.clone());
    }
    FieldChange { from: Value::Null, to: Value::Object(note) }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROLL: i64 = 1_800_000_000_000;
    const S: i64 = 1000;

    fn pending(after: i64, unused: Option<i64>, max: i64) -> Pending {
        Pending { after_new_used_ms: after * S, old_unused_ms: unused.map(|u| u * S), max_end: ROLL + max * S, end: ROLL + max * S }
    }

    fn uses(first_new: Option<i64>, last_old: Option<i64>) -> Uses {
        Uses { first_new: first_new.map(|s| ROLL + s * S), last_old: last_old.map(|s| ROLL + s * S) }
    }

    /// One row per case: (what, rule (X, Y, M), uses (first new, last old) in s after the roll,
    /// now in s after the roll, expected decision (end in s after the roll)).
    #[test]
    fn decision_table() {
        type Row = (&'static str, (i64, Option<i64>, i64), (Option<i64>, Option<i64>), i64, Option<(i64, Reason)>);
        let rows: &[Row] = &[
            ("nothing seen: keep the max bound", (60, None, 3600), (None, None), 10, None),
            ("old key used, new not: keep the max bound", (60, Some(60), 3600), (None, Some(5)), 10, None),
            ("new key seen: end X after its first use", (60, None, 3600), (Some(10), None), 20, Some((70, Reason::NewKeyInUse))),
            ("old use ignored without Y", (60, None, 3600), (Some(10), Some(500)), 20, Some((70, Reason::NewKeyInUse))),
            ("Y met before X: X decides", (60, Some(30), 3600), (Some(10), Some(5)), 20, Some((70, Reason::NewKeyInUse))),
            ("old key used late: Y decides", (60, Some(30), 3600), (Some(10), Some(100)), 110, Some((130, Reason::OldKeyUnused))),
            ("old use before the roll counts for Y", (60, Some(300), 3600), (Some(10), Some(-10)), 20, Some((290, Reason::OldKeyUnused))),
            ("new key seen late: stays at the max", (60, None, 3600), (Some(3590), None), 3595, None),
            ("report arrives after the end: ends now", (1, None, 3600), (Some(10), None), 50, Some((50, Reason::NewKeyInUse))),
        ];
        for (what, (x, y, m), (first_new, last_old), now, expected) in rows {
            let rule = pending(*x, *y, *m);
            let got = decide(&rule, uses(*first_new, *last_old), Some(rule.end), false, ROLL + now * S);
            let expected = match expected {
                None => Decision::Keep,
                Some((end, reason)) => Decision::Move(ROLL + end * S, *reason),
            };
            assert_eq!(got, expected, "{what}");
        }
    }

    #[test]
    fn an_ended_key_or_an_admin_change_drops_the_rule() {
        let mut rule = pending(60, None, 3600);
        rule.end = ROLL + 70 * S;
        let seen = uses(Some(10), None);
        assert_eq!(decide(&rule, seen, Some(rule.end), false, ROLL + 70 * S), Decision::Drop, "ended at its end");
        assert_eq!(decide(&rule, uses(Some(0), None), Some(rule.end), false, ROLL + 80 * S), Decision::Drop, "stays ended");
        assert_eq!(decide(&rule, seen, Some(rule.end + 1), false, ROLL), Decision::Drop, "valid_to changed by an admin");
        assert_eq!(decide(&rule, seen, None, false, ROLL), Decision::Drop, "valid_to cleared by an admin");
        assert_eq!(decide(&rule, seen, Some(rule.end), true, ROLL), Decision::Drop, "revoked");
        assert_eq!(decide(&rule, seen, Some(rule.end), false, ROLL + 20 * S), Decision::Keep, "already at its target");
    }

    #[test]
    fn a_later_report_can_move_the_end_both_ways_but_never_past_the_max() {
        let mut rule = pending(60, Some(30), 200);
        rule.end = ROLL + 70 * S;
        // The old key was used again: its end moves later, up to the max.
        assert_eq!(
            decide(&rule, uses(Some(10), Some(65)), Some(rule.end), false, ROLL + 66 * S),
            Decision::Move(ROLL + 95 * S, Reason::OldKeyUnused)
        );
        assert_eq!(
            decide(&rule, uses(Some(10), Some(190)), Some(rule.end), false, ROLL + 66 * S),
            Decision::Move(ROLL + 200 * S, Reason::MaxGrace)
        );
        // Another isolate reports an earlier first use of the new key: earlier, but not before now.
        assert_eq!(
            decide(&rule, uses(Some(2), None), Some(rule.end), false, ROLL + 50 * S),
            Decision::Move(ROLL + 62 * S, Reason::NewKeyInUse)
        );
        assert_eq!(
            decide(&rule, uses(Some(2), None), Some(rule.end), false, ROLL + 65 * S),
            Decision::Move(ROLL + 65 * S, Reason::NewKeyInUse)
        );
    }

    #[test]
    fn a_move_sets_valid_to_and_writes_why() {
        let rolled = crate::admin::lifecycle::roll(
            &serde_json::from_str(crate::record::tests::sample_json()).unwrap(),
            "key_2".into(),
            "h".into(),
            3600,
            Some((60, None)),
            ROLL,
        )
        .unwrap();
        let seen = uses(Some(10), Some(-5));
        let (record, audit) = moved(rolled.old.clone(), ROLL + 70 * S, Reason::NewKeyInUse, seen, ROLL + 20 * S);
        assert_eq!(record.valid_to, Some(Timestamp(ROLL + 70 * S)));
        assert_eq!((record.revision, record.updated_at), (rolled.old.revision + 1, Timestamp(ROLL + 20 * S)));
        assert_eq!((audit.action.as_str(), audit.revision), ("roll_grace_updated", record.revision));
        assert_eq!(audit.changes.keys().collect::<Vec<_>>(), ["grace", "valid_to"]);
        let mut expected = rolled.old.clone();
        expected.valid_to = record.valid_to;
        assert_eq!(
            crate::admin::lifecycle::diff(Some(&rolled.old), &expected)["valid_to"],
            audit.changes["valid_to"],
            "as an update writes it"
        );
        let grace = &audit.changes["grace"].to;
        assert_eq!(grace["reason"], "new_key_in_use");
        assert_eq!(grace["new_key_first_used"], serde_json::to_value(Timestamp(ROLL + 10 * S)).unwrap());
        assert_eq!(grace["old_key_last_used"], serde_json::to_value(Timestamp(ROLL - 5 * S)).unwrap());
    }

    #[test]
    fn reasons_have_stable_names() {
        let names: Vec<&str> = [Reason::NewKeyInUse, Reason::OldKeyUnused, Reason::MaxGrace].iter().map(|r| r.as_str()).collect();
        assert_eq!(names, ["new_key_in_use", "old_key_unused", "max_grace"]);
    }
}

#[cfg(test)]
mod sim;
