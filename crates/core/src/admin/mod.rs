//! Admin API core (pure): routing, request validation and key lifecycle transitions.
//!
//! The Workers glue authenticates the admin token, reads the body, and hands the per-project
//! registry Durable Object what these functions decide. Contract: `docs/admin-api.md` and the
//! OpenAPI document served at `/openapi.json` ([`OPENAPI`], the same JSON the worker entry
//! bundles as text, outside the wasm: `scripts/console-assets.mjs`).

pub mod auth_limit;
pub mod body;
pub mod catalogue;
pub mod facade;
pub mod lifecycle;
pub mod listing;
pub mod patch;
pub mod protocol;
pub mod request;
pub mod router;

/// The OpenAPI 3.1 document of the admin API, served at `<ADMIN_PREFIX>/openapi.json`: the
/// pretty-printed `openapi.json` next to this file, minified by `build.rs`.
pub const OPENAPI: &str = include_str!(concat!(env!("OUT_DIR"), "/openapi.min.json"));

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use serde_json::Value;

    use super::router::ROUTES;
    use super::OPENAPI;
    use crate::error::GatewayError;

    /// Keys of an OpenAPI path item that are operations.
    const HTTP_METHODS: &[&str] = &["get", "put", "post", "delete", "options", "head", "patch", "trace"];

    fn document() -> Value {
        serde_json::from_str(OPENAPI).expect("openapi.json is valid JSON")
    }

    fn collect_refs<'a>(value: &'a Value, out: &mut Vec<&'a str>) {
        match value {
            Value::Object(map) => {
                for (name, child) in map {
                    match (name.as_str(), child) {
                        ("$ref", Value::String(target)) => out.push(target),
                        _ => collect_refs(child, out),
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|item| collect_refs(item, out)),
            _ => {}
        }
    }

    #[test]
    fn served_document_is_the_source_minified() {
        let source: Value = serde_json::from_str(include_str!("openapi.json")).unwrap();
        assert_eq!(document(), source);
        assert!(!OPENAPI.contains('\n') && OPENAPI.len() < include_str!("openapi.json").len());
    }

    #[test]
    fn document_is_openapi_3_1() {
        let doc = document();
        assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.1")), "openapi: {}", doc["openapi"]);
        assert_eq!(doc["info"]["title"], "keygate admin API");
        assert_eq!(doc["servers"][0]["url"], "/_keygate/v1");
        assert!(doc["paths"].is_object());
    }

    #[test]
    fn paths_match_the_routing_table_exactly() {
        let doc = document();
        let paths = doc["paths"].as_object().expect("paths is an object");
        let mut operation_ids = BTreeSet::new();
        for (method, template) in ROUTES {
            let operation = &paths.get(*template).unwrap_or_else(|| panic!("{template} missing"))[method.to_ascii_lowercase()];
            assert!(operation.is_object(), "{method} {template} missing");
            let id = operation["operationId"].as_str().unwrap_or_default();
            assert!(!id.is_empty(), "{method} {template} has no operationId");
            assert!(operation_ids.insert(id.to_string()), "duplicate operationId {id}");
        }
        for (template, item) in paths {
            let item = item.as_object().expect("path item is an object");
            for method in item.keys().filter(|k| HTTP_METHODS.contains(&k.as_str())) {
                let upper = method.to_ascii_uppercase();
                assert!(ROUTES.iter().any(|(m, t)| *m == upper && t == template), "{upper} {template} is documented but not routed");
            }
        }
    }

    #[test]
    fn every_ref_resolves() {
        let doc = document();
        let mut refs = Vec::new();
        collect_refs(&doc, &mut refs);
        assert!(!refs.is_empty());
        for target in refs {
            assert!(target.starts_with("#/components/"), "{target} is not a local component");
            let pointer = target.trim_start_matches('#');
            assert!(doc.pointer(pointer).is_some(), "{target} does not resolve");
        }
    }

    #[test]
    fn error_schema_lists_every_admin_code() {
        let doc = document();
        let codes: Vec<&str> = doc["components"]["schemas"]["Error"]["properties"]["error"]["properties"]["code"]["enum"]
            .as_array()
            .expect("Error code enum")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        let admin_errors = [
            GatewayError::Unauthorized,
            GatewayError::AdminAuthThrottled { scope: "address", retry_after: 1 },
            GatewayError::NotFound,
            GatewayError::ValidationFailed { fields: Default::default() },
            GatewayError::Conflict { reason: String::new() },
            GatewayError::PayloadTooLarge { limit: 0 },
            GatewayError::UnsupportedMediaType,
            GatewayError::StoreUnavailable,
            GatewayError::ConfigInvalid { reason: String::new() },
            GatewayError::BadRequest { reason: String::new() },
        ];
        for error in admin_errors {
            assert!(codes.contains(&error.code()), "{} missing from the Error code enum", error.code());
        }
    }
}
