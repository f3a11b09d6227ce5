//! Origin request signing: how the origin knows a request really passed keygate.
//!
//! keygate adds identity headers and an HMAC-SHA256 signature (secret `ORIGIN_SIGNING_SECRET`)
//! over this canonical string — fields joined by `\n`, no trailing newline:
//!
//! ```text
//! keygate-v1
//! <X-Keygate-Timestamp: unix seconds>
//! <METHOD, uppercase>
//! <path and query exactly as forwarded, e.g. /v1/public/cms/pages/items?limit=2>
//! <X-Keygate-Key-Id>
//! <X-Keygate-Project>
//! <X-Keygate-Env>
//! <X-Keygate-Scopes: space-separated>
//! ```
//!
//! `X-Keygate-Signature: v1=<lowercase hex>`. The body is not signed (it streams through
//! untouched). An origin verifies with [`verify`]: recompute, compare in constant time, and
//! refuse timestamps outside a small window (default 300 s) to bound replay.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Header names keygate adds (and strips from clients).
pub const HEADER_KEY_ID: &str = "x-keygate-key-id";
/// Project of the key.
pub const HEADER_PROJECT: &str = "x-keygate-project";
/// Environment of the key.
pub const HEADER_ENV: &str = "x-keygate-env";
/// Effective scopes, space-separated.
pub const HEADER_SCOPES: &str = "x-keygate-scopes";
/// Unix seconds when keygate signed.
pub const HEADER_TIMESTAMP: &str = "x-keygate-timestamp";
/// `v1=<hex hmac>`.
pub const HEADER_SIGNATURE: &str = "x-keygate-signature";
/// Prefix of every header keygate owns.
pub const HEADER_PREFIX: &str = "x-keygate-";
/// Default accepted clock skew / replay window for [`verify`].
pub const DEFAULT_TOLERANCE_SECONDS: u64 = 300;

/// The signed facts of one forwarded request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedIdentity {
    /// Unix seconds.
    pub timestamp: u64,
    /// HTTP method.
    pub method: String,
    /// Path plus `?query` as sent to the origin.
    pub path_and_query: String,
    /// Key record id.
    pub key_id: String,
    /// Project.
    pub project: String,
    /// `live` / `test`.
    pub env: String,
    /// Space-separated scopes.
    pub scopes: String,
}

impl SignedIdentity {
    /// The canonical string defined in the module docs.
    pub fn canonical(&self) -> String {
        format!(
            "keygate-v1\n{}\n{}\n{}\n{}\n{}\n{}\n{}",
            self.timestamp,
            self.method.to_ascii_uppercase(),
            self.path_and_query,
            self.key_id,
            self.project,
            self.env,
            self.scopes
        )
    }

    /// `v1=<hex>` signature value.
    pub fn sign(&self, secret: &[u8]) -> String {
        Signer::new(secret).sign(self)
    }
}

/// HMAC-SHA256 keyed once: the key schedule (two SHA-256 blocks) is computed when the signer is
/// made, not for every request. Signs exactly [`SignedIdentity::canonical`], fed in pieces.
#[derive(Clone)]
pub struct Signer(Hmac<Sha256>);

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The keyed state is derived from the secret: never printed either.
        f.write_str("Signer(<redacted>)")
    }
}

impl Signer {
    /// A signer for `secret`.
    pub fn new(secret: &[u8]) -> Signer {
        // HMAC accepts keys of any length; new_from_slice cannot fail for it.
        Signer(<Hmac<Sha256> as Mac>::new_from_slice(secret).unwrap_or_else(|_| unreachable!()))
    }

    /// `v1=<hex>` signature value of `identity`.
    pub fn sign(&self, identity: &SignedIdentity) -> String {
        let mut mac = self.0.clone();
        let mut timestamp = [0u8; 20];
        let method = uppercase(&identity.method);
        let pieces: [&[u8]; 8] = [
            b"keygate-v1",
            decimal(identity.timestamp, &mut timestamp),
            &method,
            identity.path_and_query.as_bytes(),
            identity.key_id.as_bytes(),
            identity.project.as_bytes(),
            identity.env.as_bytes(),
            identity.scopes.as_bytes(),
        ];
        for (i, piece) in pieces.iter().enumerate() {
            if i > 0 {
                mac.update(b"\n");
            }
            mac.update(piece);
        }
        let mut out = String::with_capacity(67);
        out.push_str("v1=");
        out.push_str(&hex::encode(mac.finalize().into_bytes()));
        out
    }
}

/// `value` in decimal, written into `buffer`.
fn decimal(mut value: u64, buffer: &mut [u8; 20]) -> &[u8] {
    let mut start = buffer.len();
    loop {
        start -= 1;
        buffer[start] = b'0' + (value % 10) as u8;
        value /= 10;
        if value == 0 {
            return &buffer[start..];
        }
    }
}

/// `method` in ASCII uppercase, as [`SignedIdentity::canonical`] writes it.
fn uppercase(method: &str) -> std::borrow::Cow<'_, [u8]> {
    if method.bytes().any(|b| b.is_ascii_lowercase()) {
        std::borrow::Cow::Owned(method.to_ascii_uppercase().into_bytes())
    } else {
        std::borrow::Cow::Borrowed(method.as_bytes())
    }
}

fn mac(secret: &[u8], message: &str) -> Hmac<Sha256> {
    // HMAC accepts keys of any length; new_from_slice cannot fail for it.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret).unwrap_or_else(|_| unreachable!());
    mac.update(message.as_bytes());
    mac
}

/// Why an origin must refuse a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerifyError {
    /// A required `X-Keygate-*` header is absent.
    MissingHeader(&'static str),
    /// The timestamp or signature is not in the documented format.
    Malformed,
    /// The timestamp is outside the accepted window.
    Stale,
    /// The signature does not match.
    Mismatch,
}

/// Verifies a forwarded request. `header` looks a header up by lowercase name.
pub fn verify(
    secret: &[u8],
    method: &str,
    path_and_query: &str,
    header: impl Fn(&str) -> Option<String>,
    now_seconds: u64,
    tolerance_seconds: u64,
) -> Result<SignedIdentity, VerifyError> {
    let get = |name: &'static str| header(name).ok_or(VerifyError::MissingHeader(name));
    let signature = get(HEADER_SIGNATURE)?;
    let timestamp: u64 = get(HEADER_TIMESTAMP)?.trim().parse().map_err(|_| VerifyError::Malformed)?;
    let identity = SignedIdentity {
        timestamp,
        method: method.to_string(),
        path_and_query: path_and_query.to_string(),
        key_id: get(HEADER_KEY_ID)?,
        project: get(HEADER_PROJECT)?,
        env: get(HEADER_ENV)?,
        scopes: get(HEADER_SCOPES)?,
    };
    let hex_part = signature.trim().strip_prefix("v1=").ok_or(VerifyError::Malformed)?;
    let expected = hex::decode(hex_part).map_err(|_| VerifyError::Malformed)?;
    if now_seconds.abs_diff(timestamp) > tolerance_seconds {
        return Err(VerifyError::Stale);
    }
    mac(secret, &identity.canonical()).verify_slice(&expected).map_err(|_| VerifyError::Mismatch)?;
    Ok(identity)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn identity() -> SignedIdentity {
        SignedIdentity {
            timestamp: 1_800_000_000,
            method: "GET".into(),
            path_and_query: "/v1/public/cms/pages/items?limit=2".into(),
            key_id: "key_1".into(),
            project: "acme".into(),
            env: "live".into(),
            scopes: "content:read media:read".into(),
        }
    }

    fn headers(id: &SignedIdentity, secret: &[u8]) -> HashMap<String, String> {
        HashMap::from([
            (HEADER_SIGNATURE.to_string(), id.sign(secret)),
            (HEADER_TIMESTAMP.to_string(), id.timestamp.to_string()),
            (HEADER_KEY_ID.to_string(), id.key_id.clone()),
            (HEADER_PROJECT.to_string(), id.project.clone()),
            (HEADER_ENV.to_string(), id.env.clone()),
            (HEADER_SCOPES.to_string(), id.scopes.clone()),
        ])
    }

    fn run(h: &HashMap<String, String>, method: &str, path: &str, now: u64) -> Result<SignedIdentity, VerifyError> {
        verify(b"secret", method, path, |n| h.get(n).cloned(), now, DEFAULT_TOLERANCE_SECONDS)
    }

    #[test]
    fn canonical_string_is_as_documented() {
        assert_eq!(
            identity().canonical(),
            "keygate-v1\n1800000000\nGET\n/v1/public/cms/pages/items?limit=2\nkey_1\nacme\nlive\ncontent:read media:read"
        );
    }

    #[test]
    fn signature_is_hmac_sha256_hex() {
        // Independent check of the HMAC construction against RFC 4231 test case 2.
        let mac = mac(b"Jefe", "what do ya want for nothing?");
        assert_eq!(
            hex::encode(mac.finalize().into_bytes()),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert!(identity().sign(b"secret").starts_with("v1="));
        assert_eq!(identity().sign(b"secret").len(), 3 + 64);
    }

    #[test]
    fn keyed_signer_signs_exactly_the_canonical_string() {
        let signer = Signer::new(b"secret");
        for (timestamp, method) in [(0, "GET"), (9, "get"), (10, "Post"), (1_800_000_000, "PATCH"), (u64::MAX, "a-very-long-custom-method")] {
            let id = SignedIdentity { timestamp, method: method.into(), ..identity() };
            let expected = format!("v1={}", hex::encode(mac(b"secret", &id.canonical()).finalize().into_bytes()));
            assert_eq!(signer.sign(&id), expected, "{timestamp} {method}");
            // A clone of the keyed state is reused: signing twice gives the same answer.
            assert_eq!(signer.sign(&id), expected);
        }
    }

    #[test]
    fn verify_accepts_a_fresh_signed_request() {
        let id = identity();
        let h = headers(&id, b"secret");
        assert_eq!(run(&h, "GET", &id.path_and_query, id.timestamp + 10), Ok(id));
    }

    #[test]
    fn verify_refuses_tampering() {
        let id = identity();
        let now = id.timestamp;
        let good = headers(&id, b"secret");
        let tamper = |name: &str, value: &str| {
            let mut h = good.clone();
            h.insert(name.to_string(), value.to_string());
            h
        };
        let mut unsigned = good.clone();
        unsigned.remove(HEADER_SIGNATURE);
        let rows: Vec<(&str, HashMap<String, String>, &str, &str, u64, VerifyError)> = vec![
            ("other project", tamper(HEADER_PROJECT, "globex"), "GET", &id.path_and_query, now, VerifyError::Mismatch),
            ("other key", tamper(HEADER_KEY_ID, "key_2"), "GET", &id.path_and_query, now, VerifyError::Mismatch),
            ("widened scopes", tamper(HEADER_SCOPES, "*"), "GET", &id.path_and_query, now, VerifyError::Mismatch),
            ("other env", tamper(HEADER_ENV, "test"), "GET", &id.path_and_query, now, VerifyError::Mismatch),
            ("other method", good.clone(), "POST", &id.path_and_query, now, VerifyError::Mismatch),
            ("other path", good.clone(), "GET", "/v1/admin", now, VerifyError::Mismatch),
            ("wrong secret", headers(&id, b"other"), "GET", &id.path_and_query, now, VerifyError::Mismatch),
            ("unsigned", unsigned, "GET", &id.path_and_query, now, VerifyError::MissingHeader(HEADER_SIGNATURE)),
            ("bad hex", tamper(HEADER_SIGNATURE, "v1=zz"), "GET", &id.path_and_query, now, VerifyError::Malformed),
            ("no version", tamper(HEADER_SIGNATURE, "abcd"), "GET", &id.path_and_query, now, VerifyError::Malformed),
            ("bad timestamp", tamper(HEADER_TIMESTAMP, "soon"), "GET", &id.path_and_query, now, VerifyError::Malformed),
            ("too old", good.clone(), "GET", &id.path_and_query, now + 301, VerifyError::Stale),
            ("from the future", good.clone(), "GET", &id.path_and_query, now - 301, VerifyError::Stale),
        ];
        for (what, h, method, path, now, expected) in rows {
            assert_eq!(run(&h, method, path, now), Err(expected), "{what}");
        }
    }
}
