//! Adaptive roll grace, the registry's side ([`keygate_core::rotation`] decides): a roll with
//! `"grace": {…}` leaves a pending rule in the registry's `roll_grace` table; each last-use
//! report (already merged into `last_used`) then notes the new key's first reported use and
//! applies the decision to every pending rule of the project. A moved end goes through the
//! registry's normal change path (limiter, KV, record, audit entry with the reason); a rule
//! whose old key has ended, or was changed by an admin, is deleted.
//!
//! The table (in the registry's schema, made with its other tables): the ids, the rule in ms,
//! the end it last set and the new key's first reported use.
//!
//! The new key's first use is the latest use in the first report that names it (a report
//! carries each key's latest use in its batch): at or after the true first use, so the old key
//! never ends earlier than the rule says.

use worker::{SqlStorage, SqlStorageValue};

use keygate_core::admin::lifecycle::AuditEntry;
use keygate_core::admin::protocol::Failure;
use keygate_core::record::{KeyRecord, Status};
use keygate_core::rotation::{decide, moved, Decision, Pending, Uses};

use crate::durable::rows;
use crate::key_registry::{load, store_failure};
use crate::now_ms;

/// An old key's moved end: `(hash, (record, audit entry))`.
pub type Move = (String, (KeyRecord, AuditEntry));

fn exec(sql: &SqlStorage, query: &str, values: Vec<SqlStorageValue>) -> Result<Vec<crate::durable::Row>, Failure> {
    sql.exec(query, values).and_then(rows).map_err(store_failure("roll grace"))
}

/// Remembers the rule of a roll with an adaptive grace: `old` is the old key's record after the
/// roll (its `valid_to` is the bound), `(after, unused)` in seconds. A later roll of the same
/// key replaces it.
pub fn arm(sql: &SqlStorage, old: &KeyRecord, new_id: &str, (after, unused): (u64, Option<u64>)) -> Result<(), Failure> {
    let end = old.valid_to.map_or(0, |to| to.millis());
    let values = vec![
        old.id.clone().into(),
        new_id.to_string().into(),
        SqlStorageValue::Integer(after as i64 * 1000),
        unused.map_or(SqlStorageValue::Null, |unused| SqlStorageValue::Integer(unused as i64 * 1000)),
        SqlStorageValue::Integer(end),
    ];
    exec(sql, "INSERT OR REPLACE INTO roll_grace VALUES (?1, ?2, ?3, ?4, ?5, ?5, NULL)", values).map(drop)
}

/// After a last-use report: notes the new keys' first uses, decides every pending rule, drops
/// those done, and returns the old keys whose end moves: `(hash, (record, audit entry))` for the
/// registry's change path. The rule notes the new end first: if that change then fails, the
/// rule no longer matches the record and is dropped at the next report, so the old key keeps its
/// current end (at most the bound) and never outlives it. Not `async` (and not inlined) on
/// purpose: the registry's future stays small.
#[inline(never)]
pub fn follow(sql: &SqlStorage) -> Result<Vec<Move>, Failure> {
    exec(sql, "UPDATE roll_grace SET first_new = (SELECT at FROM last_used WHERE id = new_id) WHERE first_new IS NULL", vec![])?;
    let pending = exec(
        sql,
        "SELECT old_id, after_ms, unused_ms, max_end, end_at, first_new, at FROM roll_grace LEFT JOIN last_used ON id = old_id",
        vec![],
    )?;
    let mut moves = Vec::new();
    for mut row in pending {
        let mut columns = [None; 6];
        for (index, column) in columns.iter_mut().enumerate() {
            *column = row.optional_int(index + 1).map_err(store_failure("roll grace"))?;
        }
        let [Some(after_new_used_ms), old_unused_ms, Some(max_end), Some(end), first_new, last_old] = columns else {
            return Err(Failure::Store("roll grace: a NULL rule".into()));
        };
        let rule = Pending { after_new_used_ms, old_unused_ms, max_end, end };
        let uses = Uses { first_new, last_old };
        let old_id = row.text(0).map_err(store_failure("roll grace"))?;
        let (record, hash) = load(sql, &old_id)?;
        let now = now_ms();
        let (query, end) = match decide(&rule, uses, record.valid_to.map(|to| to.millis()), record.status == Status::Revoked, now) {
            Decision::Keep => continue,
            Decision::Drop => ("DELETE FROM roll_grace WHERE old_id = ?2", 0),
            Decision::Move(end, reason) => {
                moves.push((hash, moved(record, end, reason, uses, now)));
                ("UPDATE roll_grace SET end_at = ?1 WHERE old_id = ?2", end)
            }
        };
        exec(sql, query, vec![SqlStorageValue::Integer(end), old_id.into()])?;
    }
    Ok(moves)
}
