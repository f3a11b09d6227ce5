//! Admin request bodies at the edge (pure): the size limit (`ADMIN_MAX_BODY_BYTES`) and the
//! JSON content type. The glue reads the headers and the body; these decide.
//!
//! Order, as the glue applies it: a declared `Content-Length` over the limit is refused before
//! the body is read ([`check_declared`]); then the body as received ([`check_received`]): over
//! the limit `413 PAYLOAD_TOO_LARGE`, otherwise a body that must be (or is) there without
//! `Content-Type: application/json` `415 UNSUPPORTED_MEDIA_TYPE`.

use crate::error::GatewayError;

/// Whether an operation needs a body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyRequirement {
    /// A JSON body must be sent (create, update).
    Required,
    /// An empty body is fine; one that is sent must be JSON (roll).
    Optional,
}

/// Refuses a declared `Content-Length` over `limit` (an unparsable one is left to the body check).
pub fn check_declared(content_length: Option<&str>, limit: usize) -> Result<(), GatewayError> {
    let declared = content_length.and_then(|value| value.trim().parse::<usize>().ok());
    match declared {
        Some(length) if length > limit => Err(GatewayError::PayloadTooLarge { limit }),
        _ => Ok(()),
    }
}

/// Checks the body as received against `limit` and its `Content-Type`.
pub fn check_received(body: &[u8], content_type: Option<&str>, limit: usize, requirement: BodyRequirement) -> Result<(), GatewayError> {
    if body.len() > limit {
        return Err(GatewayError::PayloadTooLarge { limit });
    }
    if (requirement == BodyRequirement::Required || !body.is_empty()) && !is_json(content_type) {
        return Err(GatewayError::UnsupportedMediaType);
    }
    Ok(())
}

/// Whether a `Content-Type` value is `application/json` (any case, parameters allowed).
pub fn is_json(content_type: Option<&str>) -> bool {
    content_type.and_then(|value| value.split(';').next()).is_some_and(|media| media.trim().eq_ignore_ascii_case("application/json"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMIT: usize = 16;

    #[test]
    fn declared_length_over_the_limit_is_refused_before_reading() {
        let rows: &[(&str, Option<&str>, bool)] = &[
            ("none declared", None, true),
            ("at the limit", Some("16"), true),
            ("padded", Some(" 16 "), true),
            ("one over", Some("17"), false),
            ("huge", Some("99999999999999999999"), true),
            ("not a number: left to the body check", Some("lots"), true),
        ];
        for (what, header, ok) in rows {
            let result = check_declared(*header, LIMIT);
            assert_eq!(result.is_ok(), *ok, "{what}");
            if let Err(error) = result {
                assert_eq!(error, GatewayError::PayloadTooLarge { limit: LIMIT }, "{what}");
            }
        }
    }

    #[test]
    fn received_body_table() {
        use BodyRequirement::{Optional, Required};
        let json = Some("application/json");
        let over = [b'x'; LIMIT + 1];
        let rows: &[(&str, &[u8], Option<&str>, BodyRequirement, Option<&str>)] = &[
            ("a JSON body", b"{}", json, Required, None),
            ("at the limit", &[b' '; LIMIT], json, Required, None),
            ("over the limit", &over, json, Required, Some("PAYLOAD_TOO_LARGE")),
            ("over the limit wins over the type", &over, None, Required, Some("PAYLOAD_TOO_LARGE")),
            ("required without a type", b"{}", None, Required, Some("UNSUPPORTED_MEDIA_TYPE")),
            ("required and empty without a type", b"", None, Required, Some("UNSUPPORTED_MEDIA_TYPE")),
            ("required as text", b"{}", Some("text/plain"), Required, Some("UNSUPPORTED_MEDIA_TYPE")),
            ("optional and empty without a type", b"", None, Optional, None),
            ("optional, sent without a type", b"{}", None, Optional, Some("UNSUPPORTED_MEDIA_TYPE")),
            ("optional, sent as JSON", b"{}", json, Optional, None),
        ];
        for (what, body, content_type, requirement, expected) in rows {
            let got = check_received(body, *content_type, LIMIT, *requirement).err().map(|e| e.code());
            assert_eq!(got, *expected, "{what}");
        }
    }

    #[test]
    fn json_content_types() {
        for (value, expected) in [
            (Some("application/json"), true),
            (Some("Application/JSON; charset=utf-8"), true),
            (Some(" application/json ;x=y"), true),
            (Some("application/json-patch+json"), false),
            (Some("text/json"), false),
            (Some(""), false),
            (None, false),
        ] {
            assert_eq!(is_json(value), expected, "{value:?}");
        }
    }
}
