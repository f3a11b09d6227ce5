//! Adaptive roll grace, the registry's side ([`keygate_core::rotation`] decides): a roll with
//! `"grace": {…}` leaves a pending rule in the registry's `roll_grace` table; each last-use
//! report (already merged into `last_used`) then notes the new key's first reported use and
//! applies the decision to every pending rule of the project. A moved end goes through the
//! registry's normal change path (limiter, KV, record, audit entry with the reason), then the
//! rule remembers it; a rule whose old key has ended, or was changed by an admin, is deleted.
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

/// The pending rules (in the registry's schema): ids, the rule in ms, the end it last set and
/// the new key's first reported use.
pub const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS roll_grace (
  old_id TEXT PRIMARY KEY,
  new_id TEXT NOT NULL,
  after_ms INTEGER NOT NULL,
  unused_ms INTEGER,
  max_end INTEGER NOT NULL,
  end_at INTEGER NOT NULL,
  first_new INTEGER
);";

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
/// those done, and returns the old keys whose end moves: `(hash, record, audit entry)` for the
/// registry's change path, then [`moved_to`]. Not `async` (and not inlined) on purpose: the
/// registry's future stays small.
#[inline(never)]
pub fn follow(sql: &SqlStorage) -> Result<Vec<(String, KeyRecord, AuditEntry)>, Failure> {
    exec(sql, "UPDATE roll_grace SET first_new = (SELECT at FROM last_used WHERE id = new_id) WHERE first_new IS NULL", vec![])?;
    let pending = exec(
        sql,
        "SELECT old_id, after_ms, unused_ms, max_end, end_at, first_new, at FROM roll_grace LEFT JOIN last_used ON id = old_id",
        vec![],
    )?;
    let mut moves = Vec::new();
    for mut row in pending {
        let read = |row: &mut crate::durable::Row| -> worker::Result<(String, Pending, Uses)> {
            let rule = Pending { after_new_used_ms: row.int(1)?, old_unused_ms: row.optional_int(2)?, max_end: row.int(3)?, end: row.int(4)? };
            Ok((row.text(0)?, rule, Uses { first_new: row.optional_int(5)?, last_old: row.optional_int(6)? }))
        };
        let (old_id, rule, uses) = read(&mut row).map_err(store_failure("roll grace"))?;
        let (record, hash) = load(sql, &old_id)?;
        let now = now_ms();
        match decide(&rule, uses, record.valid_to.map(|to| to.millis()), record.status == Status::Revoked, now) {
            Decision::Keep => {}
            Decision::Drop => {
                exec(sql, "DELETE FROM roll_grace WHERE old_id = ?", vec![old_id.into()])?;
            }
            Decision::Move(end, reason) => {
                let (record, audit) = moved(record, end, reason, uses, now);
                moves.push((hash, record, audit));
            }
        }
    }
    Ok(moves)
}

/// Notes that the old key `record`'s end moved (after the registry committed it).
pub fn moved_to(sql: &SqlStorage, record: &KeyRecord) -> Result<(), Failure> {
    let end = SqlStorageValue::Integer(record.valid_to.map_or(0, |to| to.millis()));
    exec(sql, "UPDATE roll_grace SET end_at = ? WHERE old_id = ?", vec![end, record.id.clone().into()]).map(drop)
}
