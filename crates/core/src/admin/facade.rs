//! The AtlasCMS admin contract (`ADMIN_FACADE = "atlas"`), served beside the native admin API
//! and backed by the same registry (pure: translation both ways; the glue does the calls).
//!
//! | Atlas | native |
//! |---|---|
//! | `GET /{project}/admin/api-keys` | every key of the project that is not revoked (`GET /keys`, all pages) |
//! | `POST /{project}/admin/api-keys` | `POST /keys`; answers `200 {"result": "<plaintext key, shown once>"}` |
//! | `GET /{project}/admin/api-keys/{id}` | `GET /keys/{id}` |
//! | `PUT /{project}/admin/api-keys/{id}` | `PATCH /keys/{id}` with every mutable field: PUT replaces them, so an absent `validFrom`, `validTo` or `permissions` clears it and an absent `isActive` means active |
//! | `DELETE /{project}/admin/api-keys/{id}` | `DELETE /keys/{id}` (revoke: a tombstone, never a delete) |
//!
//! Fields: `name` ↔ `name`, `isActive` ↔ `status` (`active`/`inactive`), `validFrom`/`validTo` ↔
//! `valid_from`/`valid_to`, `permissions` ↔ `scopes`. `token` in answers is the key's non-secret
//! hint (`kg_live_…abcd`): keygate stores only hashes, so the full key exists once, in the
//! creation answer. A key of another project is `404 NOT_FOUND` under this project's path.
//! Validation errors name the Atlas fields.

use serde_json::{Map, Value};

use crate::error::GatewayError;
use crate::json::object;
use crate::record::{KeyRecord, Status};
use crate::timestamp::Timestamp;

/// One Atlas admin operation, with the project its path names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FacadeRoute {
    /// `GET /{project}/admin/api-keys`
    List { project: String },
    /// `POST /{project}/admin/api-keys`
    Create { project: String },
    /// `GET /{project}/admin/api-keys/{id}`
    Get { project: String, id: String },
    /// `PUT /{project}/admin/api-keys/{id}`
    Replace { project: String, id: String },
    /// `DELETE /{project}/admin/api-keys/{id}`
    Delete { project: String, id: String },
}

/// Whether `path` is under the facade (`/{project}/admin/api-keys[/…]`), whatever the method:
/// such a path is the admin API's, never forwarded to the origin.
pub fn is_facade_path(path: &str) -> bool {
    let mut segments = path.strip_prefix('/').unwrap_or("").split('/');
    let project = segments.next().unwrap_or("");
    !project.is_empty() && segments.next() == Some("admin") && segments.next() == Some("api-keys")
}

/// Routes `method` + `path`; `None` = no such operation (`404`).
pub fn route(method: &str, path: &str) -> Option<FacadeRoute> {
    let segments: Vec<&str> = path.strip_prefix('/')?.split('/').collect();
    let (project, rest) = match segments.as_slice() {
        [project, "admin", "api-keys", rest @ ..] if crate::admin::request::is_valid_project(project) => (project.to_string(), rest),
        _ => return None,
    };
    let id = |s: &str| crate::admin::router::is_key_id(s).then(|| s.to_string());
    match (method, rest) {
        ("GET" | "HEAD", []) => Some(FacadeRoute::List { project }),
        ("POST", []) => Some(FacadeRoute::Create { project }),
        ("GET" | "HEAD", [key]) => id(key).map(|id| FacadeRoute::Get { project, id }),
        ("PUT", [key]) => id(key).map(|id| FacadeRoute::Replace { project, id }),
        ("DELETE", [key]) => id(key).map(|id| FacadeRoute::Delete { project, id }),
        _ => None,
    }
}

const FIELDS: [(&str, &str); 5] =
    [("name", "name"), ("isActive", "status"), ("validFrom", "valid_from"), ("validTo", "valid_to"), ("permissions", "scopes")];

/// The native create body for an Atlas create body of `project`.
pub fn create_body(project: &str, body: &[u8]) -> Result<Vec<u8>, GatewayError> {
    let mut native = translate(body, false)?;
    native.insert("project".into(), Value::String(project.to_string()));
    Ok(Value::Object(native).to_string().into_bytes())
}

/// The native PATCH body for an Atlas PUT body: every mutable field, absent ones at their
/// default (PUT replaces).
pub fn replace_body(body: &[u8]) -> Result<Vec<u8>, GatewayError> {
    Ok(Value::Object(translate(body, true)?).to_string().into_bytes())
}

fn translate(body: &[u8], replace: bool) -> Result<Map<String, Value>, GatewayError> {
    let invalid = |field: &str, problem: &str| GatewayError::ValidationFailed { fields: [(field.to_string(), problem.to_string())].into() };
    let Ok(Value::Object(atlas)) = serde_json::from_slice::<Value>(body) else {
        return Err(invalid("body", "must be a JSON object"));
    };
    if let Some(unknown) = atlas.keys().find(|k| !FIELDS.iter().any(|(name, _)| name == k)) {
        return Err(invalid(unknown, "is not a field of an API key (name, isActive, validFrom, validTo, permissions)"));
    }
    let mut native = Map::new();
    for (atlas_name, native_name) in FIELDS {
        let value = match (atlas.get(atlas_name), atlas_name) {
            (Some(Value::Bool(active)), "isActive") => Value::String(if *active { "active" } else { "inactive" }.into()),
            (Some(Value::Null) | None, "isActive") => Value::String("active".into()),
            (Some(_), "isActive") => return Err(invalid("isActive", "must be true or false")),
            (Some(Value::Null) | None, "permissions") => Value::Array(Vec::new()),
            (Some(value), _) => value.clone(),
            (None, "name") => continue,
            (None, _) if replace => Value::Null,
            (None, _) => continue,
        };
        native.insert(native_name.to_string(), value);
    }
    Ok(native)
}

/// An Atlas answer for `record`.
pub fn view(record: &KeyRecord) -> Value {
    // Values, not `json!` (whose `to_value` is a second serializer in the wasm).
    let time = |at: Option<Timestamp>| Value::from(at.map(|at| at.to_rfc3339()));
    object([
        ("id", record.id.as_str().into()),
        ("name", record.name.as_str().into()),
        ("token", record.hint.clone().into()),
        ("isActive", (record.status == Status::Active).into()),
        ("validFrom", time(record.valid_from)),
        ("validTo", time(record.valid_to)),
        ("permissions", record.scopes.as_slice().into()),
    ])
}

/// A native validation error in Atlas field names (other errors unchanged).
pub fn error(error: GatewayError) -> GatewayError {
    match error {
        GatewayError::ValidationFailed { fields } => {
            // `insert`, not `collect`: a collected `BTreeMap` sorts first (wasm size).
            let mut atlas_fields = std::collections::BTreeMap::new();
            for (field, problem) in fields {
                let atlas = FIELDS.iter().find(|(_, native)| *native == field).map_or(field, |(atlas, _)| atlas.to_string());
                atlas_fields.insert(atlas, problem);
            }
            GatewayError::ValidationFailed { fields: atlas_fields }
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn routes_follow_the_atlas_paths() {
        let id = "key_abc1";
        let p = || "acme".to_string();
        let rows: [(&str, &str, Option<FacadeRoute>); 10] = [
            ("GET", "/acme/admin/api-keys", Some(FacadeRoute::List { project: p() })),
            ("POST", "/acme/admin/api-keys", Some(FacadeRoute::Create { project: p() })),
            ("GET", "/acme/admin/api-keys/key_abc1", Some(FacadeRoute::Get { project: p(), id: id.into() })),
            ("PUT", "/acme/admin/api-keys/key_abc1", Some(FacadeRoute::Replace { project: p(), id: id.into() })),
            ("DELETE", "/acme/admin/api-keys/key_abc1", Some(FacadeRoute::Delete { project: p(), id: id.into() })),
            ("PATCH", "/acme/admin/api-keys/key_abc1", None),
            ("DELETE", "/acme/admin/api-keys", None),
            ("GET", "/acme/admin/api-keys/not-an-id", None),
            ("GET", "/Bad Project/admin/api-keys", None),
            ("GET", "/acme/admin/api-keys/key_abc1/extra", None),
        ];
        for (method, path, expected) in rows {
            assert_eq!(route(method, path), expected, "{method} {path}");
        }
        assert!(is_facade_path("/acme/admin/api-keys/anything/else"));
        assert!(!is_facade_path("/v1/public/cms/articles/items"));
        assert!(!is_facade_path("//admin/api-keys"));
    }

    #[test]
    fn bodies_translate_to_native_fields() {
        let create: Value = serde_json::from_slice(
            &create_body("acme", br#"{"name":"site","isActive":false,"validTo":"2030-01-01T00:00:00Z","permissions":["content:read"]}"#)
                .unwrap(),
        )
        .unwrap();
        assert_eq!(
            create,
            json!({"project":"acme","name":"site","status":"inactive","valid_to":"2030-01-01T00:00:00Z","scopes":["content:read"]})
        );
        let minimal: Value = serde_json::from_slice(&create_body("acme", br#"{"name":"site"}"#).unwrap()).unwrap();
        assert_eq!(minimal, json!({"project":"acme","name":"site","status":"active","scopes":[]}), "isActive defaults to true");
        let replace: Value = serde_json::from_slice(&replace_body(br#"{"name":"renamed","permissions":["media:read"]}"#).unwrap()).unwrap();
        assert_eq!(
            replace,
            json!({"name":"renamed","status":"active","valid_from":null,"valid_to":null,"scopes":["media:read"]}),
            "PUT replaces: absent dates are cleared, absent isActive means active"
        );
        for (what, body) in [
            ("unknown field", &br#"{"name":"x","role":"admin"}"#[..]),
            ("not an object", b"[]"),
            ("isActive not a bool", br#"{"name":"x","isActive":"yes"}"#),
        ] {
            assert_eq!(create_body("acme", body).unwrap_err().code(), "VALIDATION_FAILED", "{what}");
        }
    }

    #[test]
    fn answers_use_atlas_names_and_never_a_plaintext_key() {
        let record: KeyRecord = serde_json::from_str(
            r#"{"id":"key_1","project":"acme","name":"n","env":"live","status":"inactive","scopes":["content:read"],"valid_to":"2030-01-01T00:00:00Z","hint":"kg_live_…abcd","created_at":"2026-01-01T00:00:00Z","updated_at":"2026-01-01T00:00:00Z"}"#,
        )
        .unwrap();
        assert_eq!(
            view(&record),
            json!({"id":"key_1","name":"n","token":"kg_live_…abcd","isActive":false,"validFrom":null,"validTo":"2030-01-01T00:00:00.000Z","permissions":["content:read"]})
        );
        let native = GatewayError::ValidationFailed {
            fields: [("valid_to".to_string(), "is in the past".to_string()), ("project".to_string(), "x".to_string())].into(),
        };
        let GatewayError::ValidationFailed { fields } = error(native) else { panic!() };
        assert!(fields.contains_key("validTo") && fields.contains_key("project"), "{fields:?}");
    }
}
