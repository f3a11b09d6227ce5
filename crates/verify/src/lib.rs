//! `keygate-verify`: what an origin behind keygate needs to verify that a request really passed
//! keygate and was meant for it, and what keygate itself signs with. It depends on nothing but
//! hashing and MAC crates (`hmac`, `sha2`, `hex`; the MAC comparison is `hmac`'s constant-time
//! one), so a Rust origin can depend on it without the gateway: `keygate_verify::verify(secret,
//! &audience, method, path_and_query, header, now_seconds, DEFAULT_TOLERANCE_SECONDS)`. keygate
//! re-exports it as `keygate_core::signature`.
//!
//! keygate adds identity headers and an HMAC-SHA256 signature over this canonical string —
//! fields joined by `\n`, no trailing newline:
//!
//! ```text
//! keygate-v2
//! <audience: the origin's normalised URL, see Audience>
//! <X-Keygate-Timestamp: unix seconds>
//! <METHOD, uppercase>
//! <path and query exactly as forwarded, e.g. /v1/public/cms/pages/items?limit=2>
//! <X-Keygate-Key-Id>
//! <X-Keygate-Project>
//! <X-Keygate-Env>
//! <X-Keygate-Scopes: space-separated>
//! ```
//!
//! `X-Keygate-Signature: v2=<64 lowercase hex>`. The key is `ORIGIN_SIGNING_SECRET` for
//! `ORIGIN_URL`, and `ORIGIN_SIGNING_SECRET_TEST` (falling back to `ORIGIN_SIGNING_SECRET`) for
//! `ORIGIN_URL_TEST`. The audience binds a signature to the origin it was made for, so a request
//! signed for the test origin fails at the live origin even under a shared secret; it is not sent
//! as a header (the origin knows its own URL). The body is not signed (it streams through
//! untouched). An origin verifies with [`verify`]: recompute, compare in constant time, and
//! refuse timestamps outside a small window (default 300 s) to bound replay. Signing and
//! verifying share one path: both MAC the canonical pieces with a [`Signer`], so what keygate
//! signs and what an origin checks cannot drift apart.
//!
//! Each header value has exactly one accepted spelling (the timestamp in decimal without sign,
//! whitespace or leading zeros; the signature as `v2=` and 64 lowercase hex digits), so a replay
//! cache may key on the raw header values.

#![cfg_attr(test, allow(clippy::type_complexity))] // table-driven tests use wide row tuples

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
/// `v2=<hex hmac>`.
pub const HEADER_SIGNATURE: &str = "x-keygate-signature";
/// Prefix of every header keygate owns.
pub const HEADER_PREFIX: &str = "x-keygate-";
/// Default accepted clock skew / replay window for [`verify`].
pub const DEFAULT_TOLERANCE_SECONDS: u64 = 300;
/// First line of the canonical string. Bumped with every change to what is signed.
const SCHEME: &[u8] = b"keygate-v2";
/// What the `X-Keygate-Signature` value starts with; a verifier of another version refuses it.
pub const SIGNATURE_PREFIX: &str = "v2=";

/// The origin a signature is meant for: its URL normalised to lowercase `scheme://host[:port]`.
///
/// [`Audience::from_url`] is the one normalisation; keygate applies it to `ORIGIN_URL` /
/// `ORIGIN_URL_TEST`, and an origin applies it to its own public URL. The rules: the scheme is
/// `http` or `https` (any case) followed by `://`; path, query and fragment are dropped; the
/// host is ASCII letters, digits, `-`, `.` and `_`, or a bracketed IPv6 literal, and is
/// lowercased (write internationalised names in their `xn--` form); the port, if any, is
/// 0–65535, written without leading zeros, and dropped when it is the scheme's default (80 for
/// `http`, 443 for `https`). Userinfo (`user@`) and an empty port (`host:`) are refused.
/// Examples: `https://API.Example.com:443/base/` → `https://api.example.com`,
/// `http://127.0.0.1:8788` → `http://127.0.0.1:8788`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Audience(String);

impl Audience {
    /// The audience of `url`, or `None` when `url` is not an `http(s)` URL with a valid host.
    pub fn from_url(url: &str) -> Option<Audience> {
        let (scheme, rest) = url.split_once("://")?;
        let scheme = scheme.to_ascii_lowercase();
        let default_port = match scheme.as_str() {
            "http" => 80,
            "https" => 443,
            _ => return None,
        };
        let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
        // A bracketed IPv6 literal may contain `:`; any other host ends at the first `:`.
        let host_end = if authority.starts_with('[') { authority.find(']')? + 1 } else { authority.find(':').unwrap_or(authority.len()) };
        let (host, after_host) = authority.split_at(host_end);
        let host_ok = match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
            Some(literal) => !literal.is_empty() && literal.bytes().all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.'),
            None => !host.is_empty() && host.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_')),
        };
        if !host_ok {
            return None;
        }
        let port = port_of(after_host)?;
        let mut audience = format!("{scheme}://{}", host.to_ascii_lowercase());
        if let Some(port) = port.filter(|&p| p != default_port) {
            audience.push_str(&format!(":{port}"));
        }
        Some(Audience(audience))
    }

    /// The normalised form, as it appears in the canonical string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The port after a host: `""` → no port, `":<1-5 digits>"` → that port; anything else is
/// invalid (`None`).
fn port_of(text: &str) -> Option<Option<u16>> {
    if text.is_empty() {
        return Some(None);
    }
    let digits = text.strip_prefix(':')?;
    if digits.is_empty() || digits.len() > 5 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok().map(Some)
}

/// The signed facts of one forwarded request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedIdentity {
    /// The normalised URL of the origin the request is for ([`Audience::as_str`]).
    pub audience: String,
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
        let mut canonical = Vec::new();
        self.write_canonical(|piece| canonical.extend_from_slice(piece));
        // Lossless: every piece is UTF-8 (the fields are strings, the timestamp is ASCII digits,
        // the method is uppercased ASCII-wise only).
        String::from_utf8_lossy(&canonical).into_owned()
    }

    /// `v2=<hex>` signature value.
    pub fn sign(&self, secret: &[u8]) -> String {
        Signer::new(secret).sign(self)
    }

    /// Feeds the canonical string to `write` in pieces (the fields and the `\n` between them):
    /// the one definition of what is signed, behind [`SignedIdentity::canonical`],
    /// [`Signer::sign`] and [`verify`]. Writing pieces lets signing skip building the string.
    fn write_canonical(&self, mut write: impl FnMut(&[u8])) {
        let mut timestamp = [0u8; 20];
        let method = uppercase(&self.method);
        let pieces: [&[u8]; 9] = [
            SCHEME,
            self.audience.as_bytes(),
            decimal(self.timestamp, &mut timestamp),
            &method,
            self.path_and_query.as_bytes(),
            self.key_id.as_bytes(),
            self.project.as_bytes(),
            self.env.as_bytes(),
            self.scopes.as_bytes(),
        ];
        for (i, piece) in pieces.iter().enumerate() {
            if i > 0 {
                write(b"\n");
            }
            write(piece);
        }
    }
}

/// HMAC-SHA256 keyed once: the key schedule (two SHA-256 blocks) is computed when the signer is
/// made, not for every request. Signing and [`verify`] both MAC exactly
/// [`SignedIdentity::canonical`], fed in pieces.
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

    /// `v2=<hex>` signature value of `identity`.
    pub fn sign(&self, identity: &SignedIdentity) -> String {
        let mut out = String::with_capacity(67);
        out.push_str(SIGNATURE_PREFIX);
        out.push_str(&hex::encode(self.mac(identity).finalize().into_bytes()));
        out
    }

    /// The MAC of `identity`'s canonical string, not yet finalised (signing encodes it,
    /// [`verify`] compares it in constant time).
    fn mac(&self, identity: &SignedIdentity) -> Hmac<Sha256> {
        let mut mac = self.0.clone();
        identity.write_canonical(|piece| mac.update(piece));
        mac
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

/// `method` in ASCII uppercase, as the canonical string writes it.
fn uppercase(method: &str) -> std::borrow::Cow<'_, [u8]> {
    if method.bytes().any(|b| b.is_ascii_lowercase()) {
        std::borrow::Cow::Owned(method.to_ascii_uppercase().into_bytes())
    } else {
        std::borrow::Cow::Borrowed(method.as_bytes())
    }
}

/// Why an origin must refuse a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerifyError {
    /// A required `X-Keygate-*` header is absent.
    MissingHeader(&'static str),
    /// The timestamp or signature is not in its one accepted spelling (see [`verify`]); a
    /// signature of another scheme version (`v1=…`) is malformed too.
    Malformed,
    /// The timestamp is outside the accepted window.
    Stale,
    /// The signature does not match.
    Mismatch,
}

/// Verifies a forwarded request meant for `audience` (this origin). `header` looks a header up
/// by lowercase name and returns its value as received.
pub fn verify(
    secret: &[u8],
    audience: &Audience,
    method: &str,
    path_and_query: &str,
    header: impl Fn(&str) -> Option<String>,
    now_seconds: u64,
    tolerance_seconds: u64,
) -> Result<SignedIdentity, VerifyError> {
    let get = |name: &'static str| header(name).ok_or(VerifyError::MissingHeader(name));
    let signature = get(HEADER_SIGNATURE)?;
    let timestamp = parse_timestamp(&get(HEADER_TIMESTAMP)?).ok_or(VerifyError::Malformed)?;
    let identity = SignedIdentity {
        audience: audience.as_str().to_string(),
        timestamp,
        method: method.to_string(),
        path_and_query: path_and_query.to_string(),
        key_id: get(HEADER_KEY_ID)?,
        project: get(HEADER_PROJECT)?,
        env: get(HEADER_ENV)?,
        scopes: get(HEADER_SCOPES)?,
    };
    let expected = parse_signature(&signature).ok_or(VerifyError::Malformed)?;
    if now_seconds.abs_diff(timestamp) > tolerance_seconds {
        return Err(VerifyError::Stale);
    }
    // `verify_slice` compares in constant time.
    Signer::new(secret).mac(&identity).verify_slice(&expected).map_err(|_| VerifyError::Mismatch)?;
    Ok(identity)
}

/// The one accepted spelling of a timestamp: decimal digits, no sign, no whitespace, no leading
/// zero (`0` itself is written `0`), at most `u64::MAX`.
fn parse_timestamp(text: &str) -> Option<u64> {
    let canonical = !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) && (text == "0" || !text.starts_with('0'));
    if !canonical {
        return None;
    }
    text.parse().ok()
}

/// The one accepted spelling of a signature: `v2=` and exactly 64 lowercase hex digits.
fn parse_signature(text: &str) -> Option<Vec<u8>> {
    let hex_part = text.strip_prefix(SIGNATURE_PREFIX)?;
    if hex_part.len() != 64 || !hex_part.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return None;
    }
    hex::decode(hex_part).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    const LIVE: &str = "https://api.example";

    /// A reference HMAC-SHA256 of a whole message, independent of the canonical pieces.
    fn mac(secret: &[u8], message: &str) -> Hmac<Sha256> {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret).unwrap();
        mac.update(message.as_bytes());
        mac
    }

    fn audience(url: &str) -> Audience {
        Audience::from_url(url).unwrap()
    }

    fn identity() -> SignedIdentity {
        SignedIdentity {
            audience: LIVE.into(),
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
        verify(b"secret", &audience(LIVE), method, path, |n| h.get(n).cloned(), now, DEFAULT_TOLERANCE_SECONDS)
    }

    #[test]
    fn canonical_string_is_as_documented() {
        assert_eq!(
            identity().canonical(),
            "keygate-v2\nhttps://api.example\n1800000000\nGET\n/v1/public/cms/pages/items?limit=2\nkey_1\nacme\nlive\ncontent:read media:read"
        );
    }

    #[test]
    fn audience_is_the_lowercase_scheme_host_and_non_default_port() {
        let rows: [(&str, &str, Option<&str>); 24] = [
            ("as keygate forwards", "http://127.0.0.1:8788", Some("http://127.0.0.1:8788")),
            ("base path dropped", "https://api.example/base", Some("https://api.example")),
            ("trailing slash dropped", "https://api.example/", Some("https://api.example")),
            ("query and fragment dropped", "https://api.example?x=1#y", Some("https://api.example")),
            ("case folded", "HTTPS://API.Example.COM/Base", Some("https://api.example.com")),
            ("http default port dropped", "http://h.example:80/x", Some("http://h.example")),
            ("https default port dropped", "https://h.example:443", Some("https://h.example")),
            ("other scheme's default port kept", "http://h.example:443", Some("http://h.example:443")),
            ("other port kept", "https://h.example:8443", Some("https://h.example:8443")),
            ("leading zeros of the port dropped", "http://h.example:08788", Some("http://h.example:8788")),
            ("ipv6 literal", "http://[::1]:8788/", Some("http://[::1]:8788")),
            ("ipv6 default port", "http://[FE80::1]:80", Some("http://[fe80::1]")),
            ("underscore and hyphen", "https://my_host-1.example", Some("https://my_host-1.example")),
            ("other scheme", "ftp://h.example", None),
            ("no scheme", "h.example:80", None),
            ("scheme-relative", "//h.example", None),
            ("empty host", "http://", None),
            ("empty host with path", "http:///x", None),
            ("userinfo", "http://user:pw@h.example", None),
            ("empty port", "http://h.example:/x", None),
            ("non-numeric port", "http://h.example:port", None),
            ("port out of range", "http://h.example:65536", None),
            ("non-ascii host", "http://bücher.example", None),
            ("unclosed ipv6 literal", "http://[::1:8788", None),
        ];
        for (what, url, expected) in rows {
            assert_eq!(Audience::from_url(url).as_ref().map(Audience::as_str), expected, "{what}: {url}");
        }
    }

    #[test]
    fn signature_is_hmac_sha256_hex() {
        // Independent check of the HMAC construction against RFC 4231 test case 2.
        let mac = mac(b"Jefe", "what do ya want for nothing?");
        assert_eq!(hex::encode(mac.finalize().into_bytes()), "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
        assert!(identity().sign(b"secret").starts_with("v2="));
        assert_eq!(identity().sign(b"secret").len(), 3 + 64);
    }

    #[test]
    fn keyed_signer_signs_exactly_the_canonical_string() {
        let signer = Signer::new(b"secret");
        for (timestamp, method) in [(0, "GET"), (9, "get"), (10, "Post"), (1_800_000_000, "PATCH"), (u64::MAX, "a-very-long-custom-method")]
        {
            for audience in [LIVE, "http://127.0.0.1:8789"] {
                let id = SignedIdentity { audience: audience.into(), timestamp, method: method.into(), ..identity() };
                let expected = format!("v2={}", hex::encode(mac(b"secret", &id.canonical()).finalize().into_bytes()));
                assert_eq!(signer.sign(&id), expected, "{audience} {timestamp} {method}");
                // A clone of the keyed state is reused: signing twice gives the same answer.
                assert_eq!(signer.sign(&id), expected);
            }
        }
    }

    #[test]
    fn verify_accepts_exactly_what_the_keyed_signer_signs() {
        let signer = Signer::new(b"secret");
        for (timestamp, method) in [(0, "GET"), (9, "get"), (10, "Post"), (1_800_000_000, "PATCH"), (u64::MAX, "a-very-long-custom-method")]
        {
            let id = SignedIdentity { timestamp, method: method.into(), ..identity() };
            let mut h = headers(&id, b"secret");
            h.insert(HEADER_SIGNATURE.to_string(), signer.sign(&id));
            let checked = |method: &str| run(&h, method, &id.path_and_query, timestamp);
            assert_eq!(checked(method), Ok(id.clone()), "{timestamp} {method}");
            // The method is signed in uppercase, so its case as received does not matter.
            assert!(checked(&method.to_ascii_uppercase()).is_ok(), "{timestamp} {method}");
            assert_eq!(checked("DELETE"), Err(VerifyError::Mismatch), "{timestamp} {method}");
        }
    }

    #[test]
    fn verify_accepts_a_fresh_signed_request() {
        let id = identity();
        let h = headers(&id, b"secret");
        assert_eq!(run(&h, "GET", &id.path_and_query, id.timestamp + 10), Ok(id));
    }

    #[test]
    fn a_signature_for_one_origin_fails_at_another() {
        let id = identity();
        let h = headers(&id, b"secret");
        let lookup = |n: &str| h.get(n).cloned();
        let at = |url: &str| verify(b"secret", &audience(url), "GET", &id.path_and_query, lookup, id.timestamp, DEFAULT_TOLERANCE_SECONDS);
        assert!(at(LIVE).is_ok());
        // Spellings of the same origin normalise to the same audience.
        assert!(at("HTTPS://API.EXAMPLE:443/some/base").is_ok());
        for other in ["https://sandbox.api.example", "http://api.example", "https://api.example:8443"] {
            assert_eq!(at(other), Err(VerifyError::Mismatch), "{other}");
        }
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
        let other_audience = SignedIdentity { audience: "https://sandbox.example".into(), ..identity() };
        let rows: Vec<(&str, HashMap<String, String>, &str, &str, u64, VerifyError)> = vec![
            ("other project", tamper(HEADER_PROJECT, "globex"), "GET", &id.path_and_query, now, VerifyError::Mismatch),
            ("other key", tamper(HEADER_KEY_ID, "key_2"), "GET", &id.path_and_query, now, VerifyError::Mismatch),
            ("widened scopes", tamper(HEADER_SCOPES, "*"), "GET", &id.path_and_query, now, VerifyError::Mismatch),
            ("other env", tamper(HEADER_ENV, "test"), "GET", &id.path_and_query, now, VerifyError::Mismatch),
            ("other method", good.clone(), "POST", &id.path_and_query, now, VerifyError::Mismatch),
            ("other path", good.clone(), "GET", "/v1/admin", now, VerifyError::Mismatch),
            ("wrong secret", headers(&id, b"other"), "GET", &id.path_and_query, now, VerifyError::Mismatch),
            ("signed for another origin", headers(&other_audience, b"secret"), "GET", &id.path_and_query, now, VerifyError::Mismatch),
            ("unsigned", unsigned, "GET", &id.path_and_query, now, VerifyError::MissingHeader(HEADER_SIGNATURE)),
            ("bad timestamp", tamper(HEADER_TIMESTAMP, "soon"), "GET", &id.path_and_query, now, VerifyError::Malformed),
            ("too old", good.clone(), "GET", &id.path_and_query, now + 301, VerifyError::Stale),
            ("from the future", good.clone(), "GET", &id.path_and_query, now - 301, VerifyError::Stale),
        ];
        for (what, h, method, path, now, expected) in rows {
            assert_eq!(run(&h, method, path, now), Err(expected), "{what}");
        }
    }

    #[test]
    fn only_the_canonical_spelling_of_the_headers_is_accepted() {
        let id = identity();
        let good = headers(&id, b"secret");
        let signature = good[HEADER_SIGNATURE].clone();
        let hex_part = &signature[3..];
        assert!(hex_part.bytes().any(|b| b.is_ascii_lowercase()), "the fixture must have letters to change the case of");
        let first_letter = hex_part.find(|c: char| c.is_ascii_lowercase()).unwrap();
        let mixed = format!(
            "v2={}{}{}",
            &hex_part[..first_letter],
            hex_part[first_letter..=first_letter].to_ascii_uppercase(),
            &hex_part[first_letter + 1..]
        );
        let timestamp = id.timestamp.to_string();
        let rows: Vec<(&str, &str, String)> = vec![
            ("timestamp with plus sign", HEADER_TIMESTAMP, format!("+{timestamp}")),
            ("timestamp with minus sign", HEADER_TIMESTAMP, format!("-{timestamp}")),
            ("timestamp with leading zeros", HEADER_TIMESTAMP, format!("000{timestamp}")),
            ("timestamp with one leading zero", HEADER_TIMESTAMP, format!("0{timestamp}")),
            ("timestamp with leading space", HEADER_TIMESTAMP, format!(" {timestamp}")),
            ("timestamp with trailing space", HEADER_TIMESTAMP, format!("{timestamp} ")),
            ("timestamp with trailing tab", HEADER_TIMESTAMP, format!("{timestamp}\t")),
            ("timestamp with a fraction", HEADER_TIMESTAMP, format!("{timestamp}.0")),
            ("timestamp in exponent form", HEADER_TIMESTAMP, "1.8e9".into()),
            ("timestamp in hex", HEADER_TIMESTAMP, format!("0x{:x}", id.timestamp)),
            ("timestamp with digit separators", HEADER_TIMESTAMP, "1_800_000_000".into()),
            ("timestamp beyond u64", HEADER_TIMESTAMP, "18446744073709551616".into()),
            ("empty timestamp", HEADER_TIMESTAMP, String::new()),
            ("signature in uppercase hex", HEADER_SIGNATURE, format!("v2={}", hex_part.to_ascii_uppercase())),
            ("signature in mixed-case hex", HEADER_SIGNATURE, mixed),
            ("uppercase version prefix", HEADER_SIGNATURE, format!("V2={hex_part}")),
            ("signature with leading space", HEADER_SIGNATURE, format!(" {signature}")),
            ("signature with trailing space", HEADER_SIGNATURE, format!("{signature} ")),
            ("signature hex one short", HEADER_SIGNATURE, format!("v2={}", &hex_part[..63])),
            ("signature hex one long", HEADER_SIGNATURE, format!("{signature}0")),
            ("signature hex doubled", HEADER_SIGNATURE, format!("{signature}{hex_part}")),
            ("signature repeated, as a joined repeated header", HEADER_SIGNATURE, format!("{signature}, {signature}")),
            ("signature without version prefix", HEADER_SIGNATURE, hex_part.to_string()),
            ("signature of the old version", HEADER_SIGNATURE, format!("v1={hex_part}")),
            ("signature of an unknown version", HEADER_SIGNATURE, format!("v3={hex_part}")),
            ("signature in base64", HEADER_SIGNATURE, "v2=q83vEjRWeJCrze8SNFZ4kKvN7xI0VniQq83vEjRWeJA=".into()),
            ("signature with non-hex letters", HEADER_SIGNATURE, format!("v2=zz{}", &hex_part[2..])),
            ("empty signature", HEADER_SIGNATURE, "v2=".into()),
        ];
        for (what, name, value) in rows {
            let mut h = good.clone();
            h.insert(name.to_string(), value.clone());
            assert_eq!(run(&h, "GET", &id.path_and_query, id.timestamp), Err(VerifyError::Malformed), "{what}: {value:?}");
        }
        // The canonical spelling of the same values is accepted.
        assert_eq!(good[HEADER_TIMESTAMP], "1800000000");
        assert!(run(&good, "GET", &id.path_and_query, id.timestamp).is_ok());
        // `0` is the canonical spelling of zero (stale, never malformed).
        let zero = SignedIdentity { timestamp: 0, ..identity() };
        assert_eq!(headers(&zero, b"secret")[HEADER_TIMESTAMP], "0");
        assert_eq!(run(&headers(&zero, b"secret"), "GET", &id.path_and_query, id.timestamp), Err(VerifyError::Stale));
        assert_eq!(run(&headers(&zero, b"secret"), "GET", &id.path_and_query, 0), Ok(zero));
    }
}
