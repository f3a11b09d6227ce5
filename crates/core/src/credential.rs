//! Credential extraction: where the key comes from in a request.
//!
//! Accepted: `Authorization: Bearer <key>` (scheme case-insensitive, RFC 7235; spaces or tabs
//! after it) or `<X-Api-Key>: <key>` (both header names configurable). Rules:
//! - neither present (or only empty values, or `Bearer` with no token) → `MISSING_KEY`;
//! - a non-Bearer `Authorization` scheme is not a keygate credential and is ignored as a source
//!   (it is still stripped before forwarding);
//! - both present and different → `BAD_REQUEST`;
//! - a value that holds more than one token (repeated headers are joined with `,` by the
//!   runtime) → `BAD_REQUEST`.
//!
//! The admin API's token is read with the same Bearer parser and held as an [`AdminToken`]: its
//! digest only, compared in constant time.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::GatewayError;
use crate::key::KeyFormat;

/// The raw credential, not yet format-checked.
#[derive(Debug, PartialEq, Eq)]
pub struct Credential<'a>(pub &'a str);

/// Picks the key from the two header values (as the runtime reports them).
pub fn extract<'a>(authorization: Option<&'a str>, api_key: Option<&'a str>) -> Result<Credential<'a>, GatewayError> {
    let from_bearer = authorization.map(bearer_token).transpose()?.flatten();
    let from_api_key = api_key.map(str::trim).filter(|v| !v.is_empty()).map(single_token).transpose()?;
    match (from_bearer, from_api_key) {
        (None, None) => Err(GatewayError::MissingKey),
        (Some(key), None) | (None, Some(key)) => Ok(Credential(key)),
        (Some(a), Some(b)) if a == b => Ok(Credential(a)),
        (Some(_), Some(_)) => Err(bad("Authorization and X-Api-Key carry different keys")),
    }
}

/// Refuses a request whose query string carries a well-formed key (an accepted prefix, segment
/// and checksum): URLs end up in logs, browser histories and the runtime's traces, so a key there
/// is a leak however the request is otherwise authenticated. Cheap for every other request: only
/// a query that contains an accepted prefix is looked at value by value.
pub fn refuse_key_in_query(query: &str, format: &KeyFormat) -> Result<(), GatewayError> {
    if !format.prefixes().iter().any(|prefix| query.contains(prefix.as_str())) {
        return Ok(());
    }
    let leaked =
        query.split('&').map(|pair| pair.split_once('=').map_or(pair, |(_, value)| value)).any(|value| format.parse(value).is_ok());
    if leaked {
        return Err(bad("API keys are not accepted in the URL, which ends up in logs and histories: send the key in 'Authorization: Bearer <key>' or 'X-Api-Key', and roll a key that was sent in a URL"));
    }
    Ok(())
}

fn bad(reason: &str) -> GatewayError {
    GatewayError::BadRequest { reason: reason.to_string() }
}

/// `Some(token)` for a Bearer credential, `None` when the header holds no Bearer token. The
/// scheme is separated from the token by spaces or tabs. The admin API reads its token with this
/// parser too, so both accept exactly the same `Authorization` values.
pub fn bearer_token(value: &str) -> Result<Option<&str>, GatewayError> {
    let value = value.trim();
    if value.contains(',') {
        return Err(bad("more than one Authorization value"));
    }
    let (scheme, rest) = value.split_once([' ', '\t']).unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Ok(None);
    }
    let token = rest.trim();
    if token.is_empty() {
        return Ok(None);
    }
    single_token(token).map(Some)
}

/// The admin API's Bearer token (`ADMIN_TOKEN`), held only as its SHA-256 digest, taken once
/// when the config is parsed. A presented token is hashed and the fixed-length digests compared
/// in constant time (`subtle`), so neither content nor length leaks through timing. Never
/// printed: `Debug` is redacted, and there is no way back to the token.
#[derive(Clone)]
pub struct AdminToken([u8; 32]);

impl AdminToken {
    /// The token `token`, hashed now.
    pub fn new(token: &str) -> AdminToken {
        AdminToken(Sha256::digest(token.as_bytes()).into())
    }

    /// Whether the `Authorization` value carries this token as its Bearer token (read by
    /// [`bearer_token`], the gateway's own parser); an empty token never matches.
    pub fn matches(&self, authorization: Option<&str>) -> bool {
        let token = authorization.and_then(|value| bearer_token(value).ok().flatten()).unwrap_or("");
        let given: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        !token.is_empty() && bool::from(given.ct_eq(&self.0))
    }
}

impl std::fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdminToken(<redacted>)")
    }
}

/// Whether the `Authorization` value carries `expected` as its Bearer token: [`AdminToken`]
/// for a token known only now (it hashes `expected` on every call; hold an [`AdminToken`] to
/// hash it once).
pub fn bearer_matches(authorization: Option<&str>, expected: &[u8]) -> bool {
    AdminToken::new(std::str::from_utf8(expected).unwrap_or_default()).matches(authorization)
}

fn single_token(value: &str) -> Result<&str, GatewayError> {
    if value.contains([',', ' ', '\t']) {
        return Err(bad("the credential must be a single token"));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_in_the_query_string_is_refused_and_other_queries_pass() {
        use crate::key::KeyEnv;
        let kg = KeyFormat::default();
        let migrated =
            KeyFormat::new(vec!["optimo".into(), "kg".into()], vec![("live".into(), KeyEnv::Live), ("sandbox".into(), KeyEnv::Test)])
                .unwrap();
        let no_segment = KeyFormat::new(vec!["cmspub".into()], Vec::new()).unwrap();
        let key = kg.generate(KeyEnv::Live).unwrap();
        let key = key.expose();
        let old_sandbox =
            crate::key::assemble("kg", KeyEnv::Live, "abcdefghijklmnopqrstuvwxyzABCDEF").expose().replacen("_live_", "_sandbox_", 1);
        let old_sandbox =
            format!("{}{}", &old_sandbox[..old_sandbox.len() - 6], crate::key::checksum(&old_sandbox[..old_sandbox.len() - 6]));
        let optimo = migrated.generate(KeyEnv::Test).unwrap();
        let cmspub = no_segment.generate(KeyEnv::Live).unwrap();
        let rows = [
            ("api_key parameter", &kg, format!("api_key={key}"), false),
            ("any parameter name", &kg, format!("limit=2&x={key}&y=1"), false),
            ("a bare value", &kg, key.to_string(), false),
            ("no query", &kg, String::new(), true),
            ("ordinary parameters", &kg, "limit=2&sort=title".to_string(), true),
            ("a prefix-looking value that is no key", &kg, "q=kg_live_not-a-key".to_string(), true),
            ("a key with a broken checksum", &kg, format!("api_key={}x", &key[..key.len() - 1]), true),
            ("a key of the minting prefix", &migrated, format!("api_key={}", optimo.expose()), false),
            ("a key of the second accepted prefix", &migrated, format!("q=1&api_key={old_sandbox}"), false),
            ("a key of a prefix no longer accepted", &no_segment, format!("api_key={key}"), true),
            ("a key without segment", &no_segment, format!("k={}", cmspub.expose()), false),
        ];
        for (what, format, query, allowed) in rows {
            let result = refuse_key_in_query(&query, format);
            assert_eq!(result.is_ok(), allowed, "{what}");
            if let Err(error) = result {
                assert_eq!(error.code(), "BAD_REQUEST");
                assert!(error.message().contains("Authorization: Bearer"), "names the header to use: {}", error.message());
                assert!(!error.message().contains(key), "never echoes the key");
            }
        }
    }

    const K: &str = "kg_live_abc";

    #[test]
    fn extraction_table() {
        let missing = Err(GatewayError::MissingKey);
        let rows: Vec<(&str, Option<&str>, Option<&str>, Result<&str, &str>)> = vec![
            ("bearer", Some("Bearer kg_live_abc"), None, Ok(K)),
            ("lowercase scheme", Some("bearer kg_live_abc"), None, Ok(K)),
            ("shouting scheme", Some("BEARER kg_live_abc"), None, Ok(K)),
            ("extra spaces", Some("  Bearer    kg_live_abc  "), None, Ok(K)),
            ("tab after the scheme", Some("Bearer\tkg_live_abc"), None, Ok(K)),
            ("tabs and spaces", Some("Bearer \t kg_live_abc\t"), None, Ok(K)),
            ("api key header", None, Some("kg_live_abc"), Ok(K)),
            ("api key padded", None, Some(" kg_live_abc "), Ok(K)),
            ("both equal", Some("Bearer kg_live_abc"), Some("kg_live_abc"), Ok(K)),
            ("both different", Some("Bearer kg_live_abc"), Some("kg_live_xyz"), Err("BAD_REQUEST")),
            ("nothing", None, None, Err("MISSING_KEY")),
            ("empty authorization", Some(""), None, Err("MISSING_KEY")),
            ("whitespace authorization", Some("   "), None, Err("MISSING_KEY")),
            ("bearer without token", Some("Bearer"), None, Err("MISSING_KEY")),
            ("bearer with spaces only", Some("Bearer   "), None, Err("MISSING_KEY")),
            ("empty api key", None, Some(""), Err("MISSING_KEY")),
            ("basic scheme is not ours", Some("Basic dXNlcjpwYXNz"), None, Err("MISSING_KEY")),
            ("basic plus api key uses api key", Some("Basic dXNlcjpwYXNz"), Some("kg_live_abc"), Ok(K)),
            ("two authorization headers joined", Some("Bearer a, Bearer b"), None, Err("BAD_REQUEST")),
            ("two tokens", Some("Bearer a b"), None, Err("BAD_REQUEST")),
            ("two api key headers joined", None, Some("a, b"), Err("BAD_REQUEST")),
            ("token glued to scheme", Some("Bearerkg_live_abc"), None, Err("MISSING_KEY")),
        ];
        for (what, authorization, api_key, expected) in rows {
            let got = extract(authorization, api_key);
            match expected {
                Ok(key) => assert_eq!(got, Ok(Credential(key)), "{what}"),
                Err(code) => assert_eq!(got.unwrap_err().code(), code, "{what}"),
            }
        }
        assert_eq!(extract(None, None), missing);
    }

    #[test]
    fn bearer_matching_table() {
        const TOKEN: &str = "admin-token-0123456789";
        let rows: [(&str, Option<&str>, bool); 13] = [
            ("space", Some("Bearer admin-token-0123456789"), true),
            ("tab", Some("Bearer\tadmin-token-0123456789"), true),
            ("lowercase scheme, padded", Some("  bearer   admin-token-0123456789 "), true),
            ("wrong token", Some("Bearer admin-token-0123456788"), false),
            ("prefix of the token", Some("Bearer admin-token"), false),
            ("token with more after it", Some("Bearer admin-token-0123456789x"), false),
            ("no scheme", Some("admin-token-0123456789"), false),
            ("other scheme", Some("Basic admin-token-0123456789"), false),
            ("two tokens", Some("Bearer admin-token-0123456789 admin-token-0123456789"), false),
            ("two headers joined", Some("Bearer admin-token-0123456789, Bearer x"), false),
            ("scheme only", Some("Bearer"), false),
            ("empty", Some(""), false),
            ("absent", None, false),
        ];
        for (what, authorization, expected) in rows {
            assert_eq!(bearer_matches(authorization, TOKEN.as_bytes()), expected, "{what}");
        }
        assert!(!bearer_matches(Some("Bearer "), b""), "an empty expected token never matches");
    }

    #[test]
    fn admin_token_keeps_only_its_digest_and_compares_it() {
        const TOKEN: &str = "admin-token-0123456789";
        let token = AdminToken::new(TOKEN);
        assert_eq!(token.0, <[u8; 32]>::from(Sha256::digest(TOKEN.as_bytes())), "the SHA-256 digest of the token");
        // (what, Authorization, matches)
        let rows = [
            ("the token", Some("Bearer admin-token-0123456789"), true),
            ("the token, lowercase scheme", Some("bearer admin-token-0123456789"), true),
            ("one character off", Some("Bearer admin-token-0123456788"), false),
            ("a prefix", Some("Bearer admin-token-012345678"), false),
            ("the digest itself", Some(&*format!("Bearer {}", hex::encode(token.0))), false),
            ("no token", Some("Bearer"), false),
            ("absent", None, false),
        ];
        for (what, authorization, expected) in rows {
            assert_eq!(token.matches(authorization), expected, "{what}");
            assert_eq!(bearer_matches(authorization, TOKEN.as_bytes()), expected, "{what}: the one-off form agrees");
        }
        assert!(!AdminToken::new("").matches(Some("Bearer ")), "an empty token never matches");
        assert!(!AdminToken::new("").matches(None), "an empty token never matches");
        assert!(AdminToken::new("other-token-0123456789").matches(Some("Bearer other-token-0123456789")));
    }

    #[test]
    fn admin_token_debug_is_redacted() {
        let token = AdminToken::new("admin-token-0123456789");
        let printed = format!("{token:?} {token:#?}");
        assert!(!printed.contains("admin-token"), "{printed}");
        assert!(!printed.contains(&hex::encode(token.0)), "not even the digest: {printed}");
        assert_eq!(format!("{token:?}"), "AdminToken(<redacted>)");
    }
}
