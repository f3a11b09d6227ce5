//! Key lifecycle transitions (pure): create, update, revoke, roll — each returns the new
//! record(s) and an audit entry describing what changed (never key material).
//!
//! Invariants: `revision` increases by one per change; `updated_at` is the change time; a
//! revoked key never changes again (a second revoke is a no-op, anything else a `CONFLICT`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::admin::request::{CreateKey, UpdateKey};
use crate::error::GatewayError;
use crate::record::{KeyRecord, Status};
use crate::timestamp::Timestamp;

/// One field's change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FieldChange {
    pub from: Value,
    pub to: Value,
}

/// One audit log entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// When.
    pub at: Timestamp,
    /// `created`, `updated`, `enabled`, `disabled`, `revoked`, `rolled` (old key), `rolled_to`
    /// (new key), `leak_reported` ([`crate::leak`]), `roll_grace_updated` ([`crate::rotation`]).
    pub action: String,
    /// The record's revision after the change.
    pub revision: u64,
    /// Changed fields. Besides record fields: `replaced_by` (a roll), and `grace` (an adaptive
    /// roll grace, [`crate::rotation`]: the rule and why the old key ends when it does).
    #[serde(default)]
    pub changes: BTreeMap<String, FieldChange>,
    /// For `leak_reported`: who reported the key leaked (`github`; [`crate::leak`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reporter: Option<String>,
    /// For `leak_reported`: the public URL where the key was found (never the key).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

/// The audit entry of a credits change of `record` (`POST /keys/{id}/credits`): `credits_set` or
/// `credits_added`, the amount and the balance after it (`from` is `null`: the balance before is
/// not recorded, requests spend it concurrently).
pub fn credits_audit(record: &KeyRecord, set: bool, amount: i64, balance: u64, now_ms: i64) -> AuditEntry {
    let mut changes = BTreeMap::new();
    changes.insert("amount".to_string(), FieldChange { from: Value::Null, to: amount.into() });
    changes.insert("credits_remaining".to_string(), FieldChange { from: Value::Null, to: balance.into() });
    let action = if set { "credits_set" } else { "credits_added" }.into();
    AuditEntry { at: Timestamp(now_ms), action, revision: record.revision, changes, reporter: None, source: None }
}

/// The record for a newly created key, and its `created` audit entry (with the initial credits
/// balance as `credits_remaining` when the key has credits).
pub fn create(request: &CreateKey, id: String, hint: String, now_ms: i64) -> (KeyRecord, AuditEntry) {
    let record = KeyRecord {
        id,
        project: request.project.clone(),
        name: request.name.clone(),
        env: request.env,
        role: request.role.clone(),
        scopes: request.scopes.clone(),
        status: request.status,
        valid_from: request.valid_from,
        valid_to: request.valid_to,
        allowed_origins: request.allowed_origins.clone(),
        allowed_networks: request.allowed_networks.clone(),
        allowed_countries: request.allowed_countries.clone(),
        created_at: Timestamp(now_ms),
        updated_at: Timestamp(now_ms),
        revision: 1,
        meta: request.meta.clone(),
        hint: Some(hint),
        family: None,
        rolled_from: None,
        tier: request.tier.clone(),
        limits: request.limits.clone(),
        limit_mode: request.limit_mode,
        credits: request.credits.as_ref().map(|(credits, _)| credits.clone()),
    };
    // Computed here, once: the registry stores this entry as it is with the record.
    let mut changes = diff(None, &record);
    if let Some((_, remaining)) = &request.credits {
        changes.insert("credits_remaining".into(), FieldChange { from: Value::Null, to: (*remaining).into() });
    }
    let audit =
        AuditEntry { at: record.created_at, action: "created".into(), revision: record.revision, changes, reporter: None, source: None };
    (record, audit)
}

// The maps below are filled by `insert`, not `collect`: a `BTreeMap` collected from an iterator
// sorts its items first, and each (key, value) type's stable sort is ~4 KB of wasm.
fn fields_of(record: &KeyRecord) -> BTreeMap<String, Value> {
    let mut fields = BTreeMap::new();
    // Through the record's text (`json::value_of`): one serializer of `KeyRecord` in the wasm.
    if let Value::Object(map) = crate::json::value_of(record) {
        for (name, value) in map {
            if !matches!(name.as_str(), "updated_at" | "revision" | "created_at") {
                fields.insert(name, value);
            }
        }
    }
    fields
}

/// Fields that differ between `old` (or nothing) and `new`.
pub fn diff(old: Option<&KeyRecord>, new: &KeyRecord) -> BTreeMap<String, FieldChange> {
    let before = old.map(fields_of).unwrap_or_default();
    let after = fields_of(new);
    let mut changes = BTreeMap::new();
    // Over the fields of both: one the new record leaves out (`credits`, removed) became `null`.
    for name in after.keys().chain(before.keys()) {
        let from = before.get(name).cloned().unwrap_or(Value::Null);
        let to = after.get(name).cloned().unwrap_or(Value::Null);
        if from != to {
            changes.insert(name.clone(), FieldChange { from, to });
        }
    }
    changes
}

pub(crate) fn bump(mut record: KeyRecord, now_ms: i64) -> KeyRecord {
    record.revision += 1;
    record.updated_at = Timestamp(now_ms);
    record
}

fn revoked_conflict() -> GatewayError {
    GatewayError::Conflict { reason: "the key is revoked and cannot change".into() }
}

/// Applies a validated update. The merged validity window must be valid; a revoked key
/// cannot change. An update that changes nothing returns the record unchanged (no audit).
pub fn update(old: &KeyRecord, request: &UpdateKey, now_ms: i64) -> Result<(KeyRecord, Option<AuditEntry>), GatewayError> {
    if old.status == Status::Revoked {
        return Err(revoked_conflict());
    }
    let mut new = old.clone();
    if let Some(name) = &request.name {
        new.name = name.clone();
    }
    request.role.apply(&mut new.role);
    if let Some(scopes) = &request.scopes {
        new.scopes = scopes.clone();
    }
    request.valid_from.apply(&mut new.valid_from);
    request.valid_to.apply(&mut new.valid_to);
    if let Some(status) = request.status {
        new.status = status;
    }
    request.allowed_origins.apply(&mut new.allowed_origins);
    if let Some(networks) = &request.allowed_networks {
        new.allowed_networks = networks.clone();
    }
    if let Some(countries) = &request.allowed_countries {
        new.allowed_countries = countries.clone();
    }
    if let Some(meta) = &request.meta {
        new.meta = meta.clone();
    }
    request.tier.apply(&mut new.tier);
    request.limits.apply(&mut new.limits);
    request.limit_mode.apply(&mut new.limit_mode);
    request.credits.apply(&mut new.credits);
    if new.role.is_none() && new.scopes.is_empty() && !request.may_have_no_permissions {
        return Err(GatewayError::ValidationFailed {
            fields: [("scopes".to_string(), "a key needs a role or at least one scope".to_string())].into(),
        });
    }
    // Unlike create, an update may set `valid_to` in the past: that is how an owner ends a key
    // now (it then answers KEY_EXPIRED, and stays visible, unlike a revoked key). The window
    // must still be ordered.
    if !request.valid_to.is_keep() || !request.valid_from.is_keep() {
        if let (Some(from), Some(to)) = (new.valid_from, new.valid_to) {
            if to <= from {
                return Err(GatewayError::ValidationFailed {
                    fields: [("valid_to".to_string(), "must be after valid_from".to_string())].into(),
                });
            }
        }
    }
    let changes = diff(Some(old), &new);
    if changes.is_empty() {
        return Ok((old.clone(), None));
    }
    let action = match (old.status, new.status) {
        (Status::Inactive, Status::Active) if changes.len() == 1 => "enabled",
        (Status::Active, Status::Inactive) if changes.len() == 1 => "disabled",
        _ => "updated",
    };
    let new = bump(new, now_ms);
    let audit = AuditEntry { at: Timestamp(now_ms), action: action.into(), revision: new.revision, changes, reporter: None, source: None };
    Ok((new, Some(audit)))
}

/// Revokes; revoking a revoked key returns it unchanged (no audit).
pub fn revoke(old: &KeyRecord, now_ms: i64) -> (KeyRecord, Option<AuditEntry>) {
    if old.status == Status::Revoked {
        return (old.clone(), None);
    }
    let mut new = old.clone();
    new.status = Status::Revoked;
    let changes = diff(Some(old), &new);
    let new = bump(new, now_ms);
    let audit =
        AuditEntry { at: Timestamp(now_ms), action: "revoked".into(), revision: new.revision, changes, reporter: None, source: None };
    (new, Some(audit))
}

/// The result of a roll.
#[derive(Debug, Clone, PartialEq)]
pub struct Rolled {
    /// The replacement key's record.
    pub new: KeyRecord,
    /// Audit entry for the replacement.
    pub new_audit: AuditEntry,
    /// The old key, now ending at `now + grace`.
    pub old: KeyRecord,
    /// Audit entry for the old key.
    pub old_audit: AuditEntry,
}

/// Rolls `old`: a new key with the same project, env, role, scopes, origins, end of validity
/// and meta in the same family; the old key's `valid_to` becomes `now + grace` (or stays, if
/// earlier).
///
/// - A revoked key, or one whose `valid_to` has passed, cannot be rolled (`CONFLICT`): its
///   replacement would be dead on arrival, or would bring back what was ended on purpose.
/// - A disabled key can be rolled: the roll is how a disabled (say, leaked) key is replaced.
///   The new key is active; the old key stays disabled and also ends at the grace end.
/// - A key not yet valid passes its `valid_from` on to the new key: a roll never starts access
///   earlier than the key it replaces.
/// - With `follow_use` (an adaptive grace, [`crate::rotation`]: seconds the new key must have
///   been in use, seconds the old key must have been unused), `grace_seconds` is the maximum
///   grace, and the audit entry records the rule (`grace`).
pub fn roll(
    old: &KeyRecord,
    new_id: String,
    new_hint: String,
    grace_seconds: u64,
    follow_use: Option<(u64, Option<u64>)>,
    now_ms: i64,
) -> Result<Rolled, GatewayError> {
    if old.status == Status::Revoked {
        return Err(revoked_conflict());
    }
    if old.valid_to.is_some_and(|to| to.0 <= now_ms) {
        return Err(GatewayError::Conflict {
            reason: "the key has expired (valid_to has passed), so its replacement would be expired too; create a new key instead".into(),
        });
    }
    let family = old.family_id().to_string();
    let new = KeyRecord {
        id: new_id,
        status: Status::Active,
        valid_from: old.valid_from.filter(|from| from.0 > now_ms),
        created_at: Timestamp(now_ms),
        updated_at: Timestamp(now_ms),
        revision: 1,
        hint: Some(new_hint),
        family: Some(family.clone()),
        rolled_from: Some(old.id.clone()),
        ..old.clone()
    };
    let new_audit = AuditEntry {
        at: Timestamp(now_ms),
        action: "rolled_to".into(),
        revision: 1,
        changes: diff(None, &new),
        reporter: None,
        source: None,
    };
    let grace_end = Timestamp(now_ms.saturating_add((grace_seconds as i64).saturating_mul(1000)));
    let mut ending = old.clone();
    ending.valid_to = Some(old.valid_to.map_or(grace_end, |to| to.min(grace_end)));
    ending.family = Some(family);
    let mut changes = diff(Some(old), &ending);
    changes.insert("replaced_by".into(), FieldChange { from: Value::Null, to: Value::String(new.id.clone()) });
    let ending = bump(ending, now_ms);
    if let Some((after, unused)) = follow_use {
        let rule = [
            ("after_new_used_seconds", Value::from(after)),
            ("old_unused_seconds", unused.map_or(Value::Null, Value::from)),
            ("max_seconds", Value::from(grace_seconds)),
        ];
        changes.insert("grace".into(), crate::rotation::grace_note(crate::rotation::Reason::MaxGrace, &rule));
    }
    let old_audit =
        AuditEntry { at: Timestamp(now_ms), action: "rolled".into(), revision: ending.revision, changes, reporter: None, source: None };
    Ok(Rolled { new, new_audit, old: ending, old_audit })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admin::patch::Patch;
    use crate::key::KeyEnv;

    const NOW: i64 = 1_800_000_000_000;

    /// A create request for a live `read_only` key of `acme` with nothing else set.
    fn request() -> CreateKey {
        CreateKey {
            project: "acme".into(),
            name: "site".into(),
            env: KeyEnv::Live,
            role: Some("read_only".into()),
            scopes: vec![],
            valid_from: None,
            valid_to: None,
            allowed_origins: None,
            allowed_networks: Vec::new(),
            allowed_countries: Vec::new(),
            meta: BTreeMap::new(),
            tier: None,
            limits: None,
            limit_mode: None,
            credits: None,
            status: Status::Active,
        }
    }

    fn created() -> KeyRecord {
        create(&request(), "key_1".into(), "kg_live_…abcd".into(), NOW).0
    }

    #[test]
    fn create_starts_active_at_revision_one_with_an_audit_of_set_fields() {
        let request = CreateKey {
            env: KeyEnv::Test,
            role: None,
            scopes: vec!["content:read".into()],
            valid_to: Some(Timestamp(NOW + 1)),
            ..request()
        };
        let (record, audit) = create(&request, "key_1".into(), "hint".into(), NOW);
        assert_eq!((record.status, record.revision, record.env), (Status::Active, 1, KeyEnv::Test));
        let disabled = CreateKey { status: Status::Inactive, ..request };
        assert_eq!(
            create(&disabled, "key_2".into(), "hint".into(), NOW).0.status,
            Status::Inactive,
            "a key may be created disabled (AtlasCMS isActive)"
        );
        assert_eq!(record.family_id(), "key_1");
        assert_eq!(audit.action, "created");
        assert!(audit.changes.contains_key("name"));
        assert!(!audit.changes.contains_key("role"), "unset fields are not listed");
    }

    #[test]
    fn disable_and_enable_are_named_in_the_audit() {
        let record = created();
        let disable = UpdateKey { status: Some(Status::Inactive), ..Default::default() };
        let (disabled, audit) = update(&record, &disable, NOW + 1).unwrap();
        assert_eq!(disabled.status, Status::Inactive);
        assert_eq!(disabled.revision, 2);
        assert_eq!(disabled.updated_at, Timestamp(NOW + 1));
        assert_eq!(audit.unwrap().action, "disabled");
        let enable = UpdateKey { status: Some(Status::Active), ..Default::default() };
        let (enabled, audit) = update(&disabled, &enable, NOW + 2).unwrap();
        assert_eq!((enabled.status, enabled.revision), (Status::Active, 3));
        assert_eq!(audit.unwrap().action, "enabled");
    }

    #[test]
    fn update_switches_between_date_and_lifetime() {
        let record = created();
        let dated = UpdateKey { valid_to: Patch::Set(Timestamp(NOW + 1000)), ..Default::default() };
        let (record, audit) = update(&record, &dated, NOW).unwrap();
        assert_eq!(record.valid_to, Some(Timestamp(NOW + 1000)));
        assert_eq!(audit.unwrap().changes["valid_to"].from, Value::Null);
        let lifetime = UpdateKey { valid_to: Patch::Clear, ..Default::default() };
        let (record, _) = update(&record, &lifetime, NOW).unwrap();
        assert_eq!(record.valid_to, None);
    }

    /// Each clearable field: `Set` gives it the value, `Clear` empties it, `Keep` leaves it.
    #[test]
    fn update_keeps_clears_or_sets_each_optional_field() {
        use crate::limit::algorithm::LimitSpec;
        use crate::record::LimitMode;
        type Read = fn(&KeyRecord) -> String;
        let limits = vec![LimitSpec::new("m", 5, 60)];
        let rows: Vec<(&str, UpdateKey, UpdateKey, Read)> = vec![
            (
                "role",
                UpdateKey { role: Patch::Set("writer".into()), ..Default::default() },
                UpdateKey { role: Patch::Clear, scopes: Some(vec!["content:read".into()]), ..Default::default() },
                |r| format!("{:?}", r.role),
            ),
            (
                "valid_from",
                UpdateKey { valid_from: Patch::Set(Timestamp(NOW + 5)), ..Default::default() },
                UpdateKey { valid_from: Patch::Clear, ..Default::default() },
                |r| format!("{:?}", r.valid_from),
            ),
            (
                "allowed_origins",
                UpdateKey { allowed_origins: Patch::Set(vec!["https://a.example".into()]), ..Default::default() },
                UpdateKey { allowed_origins: Patch::Clear, ..Default::default() },
                |r| format!("{:?}", r.allowed_origins),
            ),
            (
                "tier",
                UpdateKey { tier: Patch::Set("pro".into()), ..Default::default() },
                UpdateKey { tier: Patch::Clear, ..Default::default() },
                |r| format!("{:?}", r.tier),
            ),
            (
                "limits",
                UpdateKey { limits: Patch::Set(limits.clone()), ..Default::default() },
                UpdateKey { limits: Patch::Clear, ..Default::default() },
                |r| format!("{:?}", r.limits),
            ),
            (
                "limit_mode",
                UpdateKey { limit_mode: Patch::Set(LimitMode::Fast), ..Default::default() },
                UpdateKey { limit_mode: Patch::Clear, ..Default::default() },
                |r| format!("{:?}", r.limit_mode),
            ),
            (
                "allowed_networks",
                UpdateKey { allowed_networks: Some(vec!["203.0.113.0/24".into()]), ..Default::default() },
                UpdateKey { allowed_networks: Some(vec![]), ..Default::default() },
                |r| if r.allowed_networks.is_empty() { "None".into() } else { format!("{:?}", r.allowed_networks) },
            ),
            (
                "allowed_countries",
                UpdateKey { allowed_countries: Some(vec!["DE".into()]), ..Default::default() },
                UpdateKey { allowed_countries: Some(vec![]), ..Default::default() },
                |r| if r.allowed_countries.is_empty() { "None".into() } else { format!("{:?}", r.allowed_countries) },
            ),
            (
                "credits",
                UpdateKey { credits: Patch::Set(crate::limit::credits::Credits::default()), ..Default::default() },
                UpdateKey { credits: Patch::Clear, ..Default::default() },
                |r| format!("{:?}", r.credits),
            ),
        ];
        for (field, set, clear, read) in rows {
            let original = created();
            let (with_value, audit) = update(&original, &set, NOW + 1).unwrap();
            assert_ne!(read(&with_value), "None", "{field}: set");
            assert!(audit.unwrap().changes.contains_key(field), "{field}: the audit names the field");
            let rename = UpdateKey { name: Some("renamed".into()), ..Default::default() };
            let (kept, _) = update(&with_value, &rename, NOW + 2).unwrap();
            assert_eq!(read(&kept), read(&with_value), "{field}: kept when absent");
            let (cleared, audit) = update(&kept, &clear, NOW + 3).unwrap();
            assert_eq!(read(&cleared), "None", "{field}: cleared");
            assert!(audit.expect("a change").changes.contains_key(field), "{field}: the audit names the cleared field");
        }
    }

    #[test]
    fn update_refusals() {
        let record = created();
        let past = UpdateKey { valid_to: Patch::Set(Timestamp(NOW - 1)), ..Default::default() };
        let (ended, _) = update(&record, &past, NOW).unwrap();
        assert_eq!(ended.valid_to, Some(Timestamp(NOW - 1)), "an update may end a key now");
        let mut with_start = record.clone();
        with_start.valid_from = Some(Timestamp(NOW + 10_000));
        let before_start = UpdateKey { valid_to: Patch::Set(Timestamp(NOW + 5_000)), ..Default::default() };
        assert_eq!(update(&with_start, &before_start, NOW).unwrap_err().code(), "VALIDATION_FAILED");
        let strip = UpdateKey { role: Patch::Clear, ..Default::default() };
        assert_eq!(update(&record, &strip, NOW).unwrap_err().code(), "VALIDATION_FAILED");
        let strip_allowed = UpdateKey { role: Patch::Clear, may_have_no_permissions: true, ..Default::default() };
        assert_eq!(update(&record, &strip_allowed, NOW).unwrap().0.role, None, "EMPTY_SCOPES=all");
        let (revoked, _) = revoke(&record, NOW);
        let enable = UpdateKey { status: Some(Status::Active), ..Default::default() };
        assert_eq!(update(&revoked, &enable, NOW).unwrap_err().code(), "CONFLICT");
    }

    #[test]
    fn expired_key_can_still_be_renamed_or_disabled() {
        let mut record = created();
        record.valid_to = Some(Timestamp(NOW - 1));
        let rename = UpdateKey { name: Some("old site".into()), ..Default::default() };
        assert!(update(&record, &rename, NOW).is_ok());
    }

    #[test]
    fn no_op_update_changes_nothing() {
        let record = created();
        let same = UpdateKey { name: Some("site".into()), ..Default::default() };
        let (after, audit) = update(&record, &same, NOW + 5).unwrap();
        assert_eq!(after, record);
        assert!(audit.is_none());
    }

    #[test]
    fn revoke_is_final_and_idempotent() {
        let record = created();
        let (revoked, audit) = revoke(&record, NOW + 1);
        assert_eq!((revoked.status, revoked.revision), (Status::Revoked, 2));
        assert_eq!(audit.unwrap().action, "revoked");
        let (again, audit) = revoke(&revoked, NOW + 2);
        assert_eq!(again, revoked);
        assert!(audit.is_none());
    }

    #[test]
    fn roll_keeps_identity_and_family_and_ends_the_old_key_after_grace() {
        let mut record = created();
        record.meta.insert("team".into(), "web".into());
        let rolled = roll(&record, "key_2".into(), "kg_live_…wxyz".into(), 3600, None, NOW).unwrap();
        assert_eq!(rolled.new.project, "acme");
        assert_eq!(rolled.new.role.as_deref(), Some("read_only"));
        assert_eq!(rolled.new.meta["team"], "web");
        assert_eq!(rolled.new.family_id(), "key_1");
        assert_eq!(rolled.new.rolled_from.as_deref(), Some("key_1"));
        assert_eq!(rolled.new.revision, 1);
        assert_eq!(rolled.old.valid_to, Some(Timestamp(NOW + 3_600_000)));
        assert_eq!(rolled.old.status, Status::Active);
        assert_eq!(rolled.old_audit.changes["replaced_by"].to, Value::String("key_2".into()));
        // Rolling the new key again stays in the same family.
        let again = roll(&rolled.new, "key_3".into(), "h".into(), 0, None, NOW).unwrap();
        assert_eq!(again.new.family_id(), "key_1");
        assert_eq!(again.old.valid_to, Some(Timestamp(NOW)));
    }

    #[test]
    fn roll_never_extends_an_earlier_end_and_refuses_revoked_keys() {
        let mut record = created();
        record.valid_to = Some(Timestamp(NOW + 10));
        let rolled = roll(&record, "key_2".into(), "h".into(), 3600, None, NOW).unwrap();
        assert_eq!(rolled.old.valid_to, Some(Timestamp(NOW + 10)));
        let (revoked, _) = revoke(&record, NOW);
        assert_eq!(roll(&revoked, "key_3".into(), "h".into(), 0, None, NOW).unwrap_err().code(), "CONFLICT");
    }

    #[test]
    fn roll_refuses_expired_keys_and_never_starts_access_earlier() {
        let mut expired = created();
        expired.valid_to = Some(Timestamp(NOW));
        let error = roll(&expired, "key_2".into(), "h".into(), 60, None, NOW).unwrap_err();
        assert_eq!(error.code(), "CONFLICT");
        assert!(error.message().contains("expired"), "{}", error.message());

        let mut later = created();
        later.valid_from = Some(Timestamp(NOW + 60_000));
        assert_eq!(roll(&later, "key_2".into(), "h".into(), 0, None, NOW).unwrap().new.valid_from, Some(Timestamp(NOW + 60_000)));
        let mut started = created();
        started.valid_from = Some(Timestamp(NOW - 60_000));
        assert_eq!(roll(&started, "key_2".into(), "h".into(), 0, None, NOW).unwrap().new.valid_from, None);
    }

    #[test]
    fn rolling_a_disabled_key_replaces_it_with_an_active_one_and_keeps_the_old_disabled() {
        let mut disabled = created();
        disabled.status = Status::Inactive;
        let rolled = roll(&disabled, "key_2".into(), "h".into(), 3600, None, NOW).unwrap();
        assert_eq!(rolled.new.status, Status::Active);
        assert_eq!(rolled.old.status, Status::Inactive);
        assert_eq!(rolled.old.valid_to, Some(Timestamp(NOW + 3_600_000)));
    }

    #[test]
    fn an_adaptive_roll_ends_the_old_key_at_the_max_and_records_the_rule() {
        let rolled = roll(&created(), "key_2".into(), "h".into(), 86_400, Some((600, Some(3600))), NOW).unwrap();
        assert_eq!(rolled.old.valid_to, Some(Timestamp(NOW + 86_400_000)), "the bound holds even if nothing is reported");
        let grace = &rolled.old_audit.changes["grace"].to;
        assert_eq!(grace["reason"], "max_grace");
        assert_eq!(
            (grace["after_new_used_seconds"].as_u64(), grace["old_unused_seconds"].as_u64(), grace["max_seconds"].as_u64()),
            (Some(600), Some(3600), Some(86_400))
        );
        let fixed = roll(&created(), "key_2".into(), "h".into(), 60, None, NOW).unwrap();
        assert!(!fixed.old_audit.changes.contains_key("grace"), "a fixed grace records no rule");
    }

    #[test]
    fn audit_entries_never_hold_key_material() {
        let record = created();
        let rolled = roll(&record, "key_2".into(), "kg_live_…wxyz".into(), 60, None, NOW).unwrap();
        for entry in [rolled.new_audit, rolled.old_audit] {
            let text = serde_json::to_string(&entry).unwrap();
            assert!(!text.contains("\"key\""));
        }
    }
}
