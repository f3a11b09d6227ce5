//! `keygate-verify`: what an origin behind keygate needs to verify that a request really passed
//! keygate and was meant for it, and what keygate itself signs with. It depends on nothing but
//! hashing and MAC crates (`hmac`, `sha2`; the MAC comparison is `hmac`'s constant-time one), so
//! a Rust origin can depend on it without the gateway: `keygate_verify::verify(secret,
//! &audience, method, path_and_query, token, now_seconds, DEFAULT_LEEWAY_SECONDS)`. keygate
//! re-exports it as `keygate_core::signature`.
//!
//! keygate adds one header to every forwarded request, `X-Keygate-Identity`, holding a compact
//! JWS (a JWT, RFC 7519) signed with HMAC-SHA256 (`HS256`), so any JWT library verifies it
//! (README "Origin signature scheme" has Node, Python and Go snippets). Its protected header is
//! always `{"alg":"HS256","typ":"JWT"}` ([`JOSE_HEADER`]), and its claims are always these, in
//! this order, as compact JSON:
//!
//! ```text
//! {"iss":"keygate","sub":"<key id>","aud":"<audience: the origin's normalised URL, see Audience>",
//!  "iat":<unix seconds>,"exp":<iat + 60>,"htm":"<METHOD, uppercase>",
//!  "htu":"<path and query exactly as the origin receives them>",
//!  "project":"<project>","env":"live|test","scope":"<space-separated scopes>"}
//! ```
//!
//! The key is `ORIGIN_SIGNING_SECRET` for `ORIGIN_URL`, and `ORIGIN_SIGNING_SECRET_TEST` (falling
//! back to `ORIGIN_SIGNING_SECRET`) for `ORIGIN_URL_TEST`. The audience binds a token to the
//! origin it was made for, so a token made for the test origin fails at the live origin even
//! under a shared secret. `htm` and `htu` bind it to one request (as in DPoP, RFC 9449, except
//! that `htu` is the request target, path and query, since `aud` already names the origin). The
//! body is not signed (it streams through untouched). An origin verifies with [`verify`]:
//! signature (constant time), audience, method, path and query, and the `iat`..`exp` window
//! with a small leeway for clock skew.
//!
//! Signing and verifying share one path: [`SignedIdentity::signing_input`] writes the claims, a
//! [`Signer`] MACs that, and [`verify`] rebuilds the signing input from the claims it parsed and
//! requires it to equal, byte for byte, what it received before it compares the MAC. So what
//! keygate signs and what an origin checks cannot drift apart, and each token has exactly one
//! accepted spelling (a replay cache may key on the token).

#![cfg_attr(test, allow(clippy::type_complexity))] // table-driven tests use wide row tuples

use std::borrow::Cow;

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The one header keygate adds: the signed identity token.
pub const HEADER_IDENTITY: &str = "x-keygate-identity";
/// Prefix of every header keygate owns (and strips from clients).
pub const HEADER_PREFIX: &str = "x-keygate-";
/// The token's `iss` claim.
pub const ISSUER: &str = "keygate";
/// `exp - iat` of every token keygate issues.
pub const TOKEN_LIFETIME_SECONDS: u64 = 60;
/// Default clock skew [`verify`] accepts on both ends of the `iat`..`exp` window.
pub const DEFAULT_LEEWAY_SECONDS: u64 = 30;
/// The token's protected header, base64url: `{"alg":"HS256","typ":"JWT"}`. [`verify`] accepts no
/// other (no `alg: none`, no other algorithm, no extra parameters).
pub const JOSE_HEADER: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9";

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

/// The signed facts of one forwarded request: the token's claims.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedIdentity {
    /// `aud`: the normalised URL of the origin the request is for ([`Audience::as_str`]).
    pub audience: String,
    /// `iat`: unix seconds when keygate signed.
    pub issued_at: u64,
    /// `exp`: unix seconds after which the token is refused (keygate: `iat` +
    /// [`TOKEN_LIFETIME_SECONDS`]).
    pub expires_at: u64,
    /// `htm`: HTTP method (signed in uppercase).
    pub method: String,
    /// `htu`: path plus `?query` as sent to the origin.
    pub path_and_query: String,
    /// `sub`: key record id.
    pub key_id: String,
    /// `project`.
    pub project: String,
    /// `env`: `live` / `test`.
    pub env: String,
    /// `scope`: space-separated scopes.
    pub scopes: String,
}

/// The claim names in their one order. `iss` is always [`ISSUER`].
const CLAIMS: [&str; 10] = ["iss", "sub", "aud", "iat", "exp", "htm", "htu", "project", "env", "scope"];

/// One claim value: a JSON string or a non-negative integer.
enum Claim<'a> {
    Text(Cow<'a, str>),
    Number(u64),
}

impl SignedIdentity {
    /// The values of [`CLAIMS`], in order.
    fn claims(&self) -> [Claim<'_>; 10] {
        [
            Claim::Text(Cow::Borrowed(ISSUER)),
            Claim::Text(Cow::Borrowed(&self.key_id)),
            Claim::Text(Cow::Borrowed(&self.audience)),
            Claim::Number(self.issued_at),
            Claim::Number(self.expires_at),
            Claim::Text(uppercase(&self.method)),
            Claim::Text(Cow::Borrowed(&self.path_and_query)),
            Claim::Text(Cow::Borrowed(&self.project)),
            Claim::Text(Cow::Borrowed(&self.env)),
            Claim::Text(Cow::Borrowed(&self.scopes)),
        ]
    }

    /// The claims set as compact JSON, the one spelling keygate signs (module docs).
    pub fn claims_json(&self) -> String {
        let mut json = Vec::with_capacity(320);
        self.write_claims(&mut json);
        // The claims are strings and ASCII digits, the escapes ASCII: never the empty fallback.
        String::from_utf8(json).unwrap_or_default()
    }

    /// Writes [`SignedIdentity::claims_json`] to `out`: the one definition of what is signed.
    fn write_claims(&self, out: &mut Vec<u8>) {
        let mut digits = [0u8; 20];
        for (i, (name, value)) in CLAIMS.iter().zip(self.claims()).enumerate() {
            out.extend_from_slice(if i == 0 { b"{\"" } else { b",\"" });
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b"\":");
            match value {
                Claim::Text(text) => json_string(out, &text),
                Claim::Number(number) => out.extend_from_slice(decimal(number, &mut digits)),
            }
        }
        out.push(b'}');
    }

    /// `<JOSE_HEADER>.<base64url(claims JSON)>`: what the signature covers, and the token
    /// without its last segment.
    pub fn signing_input(&self) -> String {
        // Every byte is base64url or `.`: never the empty fallback.
        String::from_utf8(self.signing_input_bytes(0)).unwrap_or_default()
    }

    /// [`SignedIdentity::signing_input`] as bytes, with room for `spare` more.
    fn signing_input_bytes(&self, spare: usize) -> Vec<u8> {
        let mut claims = Vec::with_capacity(320);
        self.write_claims(&mut claims);
        let mut input = Vec::with_capacity(JOSE_HEADER.len() + 1 + claims.len().div_ceil(3) * 4 + spare);
        input.extend_from_slice(JOSE_HEADER.as_bytes());
        input.push(b'.');
        base64url(&claims, &mut input);
        input
    }

    /// The token signed with `secret` (a [`Signer`] made for one call).
    pub fn sign(&self, secret: &[u8]) -> String {
        Signer::new(secret).sign(self)
    }

    /// Parses a claims set in keygate's one layout ([`CLAIMS`], compact, in order). Anything
    /// else is `None`; [`verify`] then also requires the exact spelling by rebuilding it.
    fn parse_claims(json: &str) -> Option<SignedIdentity> {
        let mut rest = json;
        let mut texts: Vec<String> = Vec::with_capacity(8);
        let mut numbers = [0u64; 2];
        for (i, name) in CLAIMS.iter().enumerate() {
            rest = rest.strip_prefix(if i == 0 { '{' } else { ',' })?;
            rest = rest.strip_prefix('"')?.strip_prefix(name)?.strip_prefix("\":")?;
            if matches!(*name, "iat" | "exp") {
                let digits = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
                numbers[usize::from(*name == "exp")] = rest[..digits].parse().ok()?;
                rest = &rest[digits..];
            } else {
                let (text, after) = parse_json_string(rest)?;
                texts.push(text);
                rest = after;
            }
        }
        if rest != "}" {
            return None;
        }
        let [iss, key_id, audience, method, path_and_query, project, env, scopes]: [String; 8] = texts.try_into().ok()?;
        (iss == ISSUER).then_some(SignedIdentity {
            audience,
            issued_at: numbers[0],
            expires_at: numbers[1],
            method,
            path_and_query,
            key_id,
            project,
            env,
            scopes,
        })
    }
}

/// `text` as a JSON string: `"` and `\` escaped, control characters as `\u00xx`, everything
/// else (including non-ASCII) as is. Unescaped runs are copied whole.
fn json_string(out: &mut Vec<u8>, text: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let bytes = text.as_bytes();
    out.push(b'"');
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if b == b'"' || b == b'\\' || b < 0x20 {
            out.extend_from_slice(&bytes[start..i]);
            match b {
                b'"' | b'\\' => out.extend_from_slice(&[b'\\', b]),
                _ => out.extend_from_slice(&[b'\\', b'u', b'0', b'0', HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)]]),
            }
            start = i + 1;
        }
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
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

/// A JSON string at the start of `text` as [`json_string`] writes it (other escapes are
/// refused: keygate never writes them), and what follows it.
fn parse_json_string(text: &str) -> Option<(String, &str)> {
    let mut chars = text.strip_prefix('"')?.char_indices();
    let mut value = String::new();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some((value, &text[1 + i + 1..])),
            '\\' => match chars.next()?.1 {
                '"' => value.push('"'),
                '\\' => value.push('\\'),
                'u' => {
                    let hex: String = (0..4).filter_map(|_| chars.next().map(|(_, h)| h)).collect();
                    let code = u32::from_str_radix(&hex, 16).ok().filter(|&code| code < 0x20 && hex.len() == 4)?;
                    value.push(char::from_u32(code)?);
                }
                _ => return None,
            },
            c if (c as u32) < 0x20 => return None,
            c => value.push(c),
        }
    }
    None
}

const BASE64URL: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Each byte's sixth in [`BASE64URL`], or 64 for a byte outside it.
const BASE64URL_SIXTH: [u8; 256] = {
    let mut table = [64u8; 256];
    let mut i = 0;
    while i < 64 {
        table[BASE64URL[i] as usize] = i as u8;
        i += 1;
    }
    table
};

/// Appends `bytes` as base64url without padding (RFC 7515 §2).
fn base64url(bytes: &[u8], out: &mut Vec<u8>) {
    let sixth = |n: u32, shift: u32| BASE64URL[(n >> shift & 63) as usize];
    let mut chunks = bytes.chunks_exact(3);
    for chunk in &mut chunks {
        let n = u32::from(chunk[0]) << 16 | u32::from(chunk[1]) << 8 | u32::from(chunk[2]);
        out.extend_from_slice(&[sixth(n, 18), sixth(n, 12), sixth(n, 6), sixth(n, 0)]);
    }
    match *chunks.remainder() {
        [a] => out.extend_from_slice(&[sixth(u32::from(a) << 16, 18), sixth(u32::from(a) << 16, 12)]),
        [a, b] => {
            let n = u32::from(a) << 16 | u32::from(b) << 8;
            out.extend_from_slice(&[sixth(n, 18), sixth(n, 12), sixth(n, 6)]);
        }
        _ => {}
    }
}

/// Decodes base64url without padding, in its one spelling: `None` for any other character, a
/// dangling sixth or non-zero trailing bits.
fn from_base64url(text: &str) -> Option<Vec<u8>> {
    if text.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut bits, mut count) = (0u32, 0u32);
    for b in text.bytes() {
        let sixth = BASE64URL_SIXTH[usize::from(b)];
        if sixth == 64 {
            return None;
        }
        bits = bits << 6 | u32::from(sixth);
        count += 6;
        if count >= 8 {
            count -= 8;
            out.push((bits >> count) as u8);
            bits &= (1 << count) - 1;
        }
    }
    (bits == 0).then_some(out)
}

/// HMAC-SHA256 keyed once: the key schedule (two SHA-256 blocks) is computed when the signer is
/// made, not for every request. Signing and [`verify`] both MAC exactly
/// [`SignedIdentity::signing_input`].
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

    /// The compact JWS of `identity`: `<header>.<claims>.<signature>`, all base64url.
    pub fn sign(&self, identity: &SignedIdentity) -> String {
        let mut token = identity.signing_input_bytes(44);
        let mac = self.mac(&token).finalize().into_bytes();
        token.push(b'.');
        base64url(&mac, &mut token);
        // Every byte is base64url or `.`: never the empty fallback.
        String::from_utf8(token).unwrap_or_default()
    }

    /// The MAC of a signing input, not yet finalised (signing encodes it, [`verify`] compares it
    /// in constant time).
    fn mac(&self, signing_input: &[u8]) -> Hmac<Sha256> {
        let mut mac = self.0.clone();
        mac.update(signing_input);
        mac
    }
}

/// `method` in ASCII uppercase, as `htm` holds it.
fn uppercase(method: &str) -> Cow<'_, str> {
    if method.bytes().any(|b| b.is_ascii_lowercase()) {
        Cow::Owned(method.to_ascii_uppercase())
    } else {
        Cow::Borrowed(method)
    }
}

/// Why an origin must refuse a request. [`VerifyError::reason`] names each in snake case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerifyError {
    /// No `X-Keygate-Identity` header.
    Missing,
    /// Not a token keygate issues: not three base64url segments, claims not in keygate's one
    /// layout and spelling, or a signature that is not 32 bytes.
    Malformed,
    /// The protected header is not exactly [`JOSE_HEADER`] (`alg: none`, another algorithm…).
    Algorithm,
    /// The signature does not match: another secret, or a changed claim.
    Signature,
    /// Signed for another origin (`aud`).
    Audience,
    /// Signed for another method, path or query (`htm`, `htu`).
    Request,
    /// `exp` is more than the leeway in the past.
    Expired,
    /// `iat` is more than the leeway in the future.
    NotYetValid,
}

impl VerifyError {
    /// Stable snake-case name, e.g. for an error body.
    pub fn reason(self) -> &'static str {
        match self {
            VerifyError::Missing => "missing",
            VerifyError::Malformed => "malformed",
            VerifyError::Algorithm => "algorithm",
            VerifyError::Signature => "signature",
            VerifyError::Audience => "audience",
            VerifyError::Request => "request",
            VerifyError::Expired => "expired",
            VerifyError::NotYetValid => "not_yet_valid",
        }
    }
}

/// Verifies the `X-Keygate-Identity` `token` of a request this origin (`audience`) received as
/// `method` `path_and_query` (the raw request target), at `now_seconds`, accepting
/// `leeway_seconds` of clock skew. The signature is checked (in constant time) before any claim.
/// [`Signer::verify`] does the same with a signer keyed once.
pub fn verify(
    secret: &[u8],
    audience: &Audience,
    method: &str,
    path_and_query: &str,
    token: Option<&str>,
    now_seconds: u64,
    leeway_seconds: u64,
) -> Result<SignedIdentity, VerifyError> {
    Signer::new(secret).verify(audience, method, path_and_query, token, now_seconds, leeway_seconds)
}

impl Signer {
    /// [`verify`] with this signer's secret.
    pub fn verify(
        &self,
        audience: &Audience,
        method: &str,
        path_and_query: &str,
        token: Option<&str>,
        now_seconds: u64,
        leeway_seconds: u64,
    ) -> Result<SignedIdentity, VerifyError> {
        let token = token.ok_or(VerifyError::Missing)?;
        let (signing_input, signature) = token.rsplit_once('.').ok_or(VerifyError::Malformed)?;
        let (header, claims) = signing_input.split_once('.').ok_or(VerifyError::Malformed)?;
        if header != JOSE_HEADER {
            return Err(VerifyError::Algorithm);
        }
        let signature = from_base64url(signature).filter(|s| s.len() == 32).ok_or(VerifyError::Malformed)?;
        let claims = from_base64url(claims).ok_or(VerifyError::Malformed)?;
        let identity = std::str::from_utf8(&claims).ok().and_then(SignedIdentity::parse_claims).ok_or(VerifyError::Malformed)?;
        let rebuilt = identity.signing_input_bytes(0);
        if rebuilt != signing_input.as_bytes() {
            return Err(VerifyError::Malformed);
        }
        // `verify_slice` compares in constant time.
        self.mac(&rebuilt).verify_slice(&signature).map_err(|_| VerifyError::Signature)?;
        if identity.audience != audience.as_str() {
            return Err(VerifyError::Audience);
        }
        if identity.method != uppercase(method) || identity.path_and_query != path_and_query {
            return Err(VerifyError::Request);
        }
        if now_seconds > identity.expires_at.saturating_add(leeway_seconds) {
            return Err(VerifyError::Expired);
        }
        if identity.issued_at > now_seconds.saturating_add(leeway_seconds) {
            return Err(VerifyError::NotYetValid);
        }
        Ok(identity)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIVE: &str = "https://api.example";
    const NOW: u64 = 1_800_000_000;
    const PATH: &str = "/v1/public/cms/pages/items?limit=2";

    /// A reference HMAC-SHA256 of a whole message, independent of the signing path.
    fn mac(secret: &[u8], message: &str) -> Vec<u8> {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret).unwrap();
        mac.update(message.as_bytes());
        mac.finalize().into_bytes().to_vec()
    }

    fn audience(url: &str) -> Audience {
        Audience::from_url(url).unwrap()
    }

    fn identity() -> SignedIdentity {
        SignedIdentity {
            audience: LIVE.into(),
            issued_at: NOW,
            expires_at: NOW + TOKEN_LIFETIME_SECONDS,
            method: "GET".into(),
            path_and_query: PATH.into(),
            key_id: "key_1".into(),
            project: "acme".into(),
            env: "live".into(),
            scopes: "content:read media:read".into(),
        }
    }

    fn run(token: &str, method: &str, path: &str, now: u64) -> Result<SignedIdentity, VerifyError> {
        verify(b"secret", &audience(LIVE), method, path, Some(token), now, DEFAULT_LEEWAY_SECONDS)
    }

    fn b64(bytes: &[u8]) -> String {
        let mut out = Vec::new();
        base64url(bytes, &mut out);
        String::from_utf8(out).unwrap()
    }

    /// A token with these raw segments, signed with `secret` (whatever the segments hold).
    fn raw_token(header: &str, claims_json: &str, secret: &[u8]) -> String {
        let input = format!("{header}.{}", b64(claims_json.as_bytes()));
        format!("{input}.{}", b64(&mac(secret, &input)))
    }

    #[test]
    fn claims_are_as_documented() {
        assert_eq!(
            identity().claims_json(),
            r#"{"iss":"keygate","sub":"key_1","aud":"https://api.example","iat":1800000000,"exp":1800000060,"htm":"GET","htu":"/v1/public/cms/pages/items?limit=2","project":"acme","env":"live","scope":"content:read media:read"}"#
        );
        assert_eq!(b64(br#"{"alg":"HS256","typ":"JWT"}"#), JOSE_HEADER);
    }

    #[test]
    fn token_is_a_compact_hs256_jws() {
        let id = identity();
        let token = id.sign(b"secret");
        let segments: Vec<&str> = token.split('.').collect();
        assert_eq!(segments.len(), 3);
        assert_eq!(segments[0], JOSE_HEADER);
        assert_eq!(from_base64url(segments[1]).unwrap(), id.claims_json().as_bytes());
        // The signature is HMAC-SHA256 over `header.claims`, checked against a whole-message MAC.
        assert_eq!(from_base64url(segments[2]).unwrap(), mac(b"secret", &format!("{}.{}", segments[0], segments[1])));
        // Independent check of the HMAC construction against RFC 4231 test case 2.
        assert_eq!(
            mac(b"Jefe", "what do ya want for nothing?"),
            hex_bytes("5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
        );
    }

    fn hex_bytes(hex: &str) -> Vec<u8> {
        (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap()).collect()
    }

    #[test]
    fn base64url_matches_rfc_4648_vectors() {
        // RFC 4648 §10, in the URL-safe alphabet without padding, plus the two URL-safe letters.
        let rows: [(&[u8], &str); 9] = [
            (b"", ""),
            (b"f", "Zg"),
            (b"fo", "Zm8"),
            (b"foo", "Zm9v"),
            (b"foob", "Zm9vYg"),
            (b"fooba", "Zm9vYmE"),
            (b"foobar", "Zm9vYmFy"),
            (&[0xfb, 0xff], "-_8"),
            (&[0xff, 0xff, 0xfe], "___-"),
        ];
        for (bytes, text) in rows {
            assert_eq!(b64(bytes), text);
            assert_eq!(from_base64url(text).as_deref(), Some(bytes), "{text}");
        }
        for bad in ["Z", "Zh", "Zm9=", "Zm+v", "Zm/v", "Zm9v\n", "Zm 9"] {
            assert_eq!(from_base64url(bad), None, "{bad:?}: other alphabet, padding, dangling or non-zero trailing bits");
        }
    }

    #[test]
    fn claims_round_trip_through_their_one_spelling() {
        let awkward = SignedIdentity {
            key_id: "key_\"quoted\"\\back".into(),
            project: "ünïcode ✓".into(),
            scopes: "a\u{1}b\tc".into(),
            path_and_query: "/x?q=%22&y=\\".into(),
            issued_at: 0,
            expires_at: u64::MAX,
            ..identity()
        };
        for id in [identity(), awkward] {
            let json = id.claims_json();
            assert_eq!(SignedIdentity::parse_claims(&json), Some(id.clone()), "{json}");
            let token = id.sign(b"secret");
            let at = |now| verify(b"secret", &audience(LIVE), &id.method, &id.path_and_query, Some(&token), now, 0);
            assert_eq!(at(id.issued_at), Ok(id.clone()));
        }
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
    fn verify_accepts_exactly_what_the_keyed_signer_signs() {
        let signer = Signer::new(b"secret");
        for (issued_at, method) in [(0, "GET"), (9, "get"), (10, "Post"), (NOW, "PATCH"), (u64::MAX - 60, "a-very-long-custom-method")] {
            let id = SignedIdentity { issued_at, expires_at: issued_at + 60, method: method.into(), ..identity() };
            let token = signer.sign(&id);
            assert_eq!(token, id.sign(b"secret"), "a clone of the keyed state is reused");
            let checked = |method: &str| run(&token, method, PATH, issued_at);
            let signed = SignedIdentity { method: method.to_ascii_uppercase(), ..id.clone() };
            assert_eq!(checked(method), Ok(signed), "{issued_at} {method}");
            let keyed = signer.verify(&audience(LIVE), method, PATH, Some(&token), issued_at, DEFAULT_LEEWAY_SECONDS);
            assert_eq!(keyed, checked(method), "the keyed signer verifies as the free function does");
            // The method is signed in uppercase, so its case as received does not matter.
            assert!(checked(&method.to_ascii_uppercase()).is_ok(), "{issued_at} {method}");
            assert_eq!(checked("DELETE"), Err(VerifyError::Request), "{issued_at} {method}");
        }
    }

    #[test]
    fn a_token_for_one_origin_fails_at_another() {
        let token = identity().sign(b"secret");
        let at = |url: &str| verify(b"secret", &audience(url), "GET", PATH, Some(&token), NOW, DEFAULT_LEEWAY_SECONDS);
        assert!(at(LIVE).is_ok());
        // Spellings of the same origin normalise to the same audience.
        assert!(at("HTTPS://API.EXAMPLE:443/some/base").is_ok());
        for other in ["https://sandbox.api.example", "http://api.example", "https://api.example:8443"] {
            assert_eq!(at(other), Err(VerifyError::Audience), "{other}");
        }
    }

    #[test]
    fn verify_refuses_tampering_and_other_requests() {
        let id = identity();
        let good = id.sign(b"secret");
        let claims = id.claims_json();
        let segments: Vec<&str> = good.split('.').collect();
        let with_claims = |json: &str| format!("{JOSE_HEADER}.{}.{}", b64(json.as_bytes()), segments[2]);
        let none_header = b64(br#"{"alg":"none","typ":"JWT"}"#);
        let hs512_header = b64(br#"{"alg":"HS512","typ":"JWT"}"#);
        let spaced = claims.replace(",\"sub\"", ", \"sub\"");
        let reordered = claims.replacen(r#""iss":"keygate","sub":"key_1""#, r#""sub":"key_1","iss":"keygate""#, 1);
        let other_issuer = claims.replace("\"keygate\"", "\"someone\"");
        let escaped = claims.replace("\"acme\"", "\"\\u0061cme\"");
        let other_audience = SignedIdentity { audience: "https://sandbox.example".into(), ..identity() };
        let other_token = SignedIdentity { path_and_query: "/x".into(), ..identity() }.sign(b"secret");
        let other_signature = other_token.rsplit_once('.').unwrap().1;
        let rows: Vec<(&str, String, &str, &str, u64, VerifyError)> = vec![
            ("widened scopes", with_claims(&claims.replace("content:read media:read", "*")), "GET", PATH, NOW, VerifyError::Signature),
            ("other project", with_claims(&claims.replace("acme", "globx")), "GET", PATH, NOW, VerifyError::Signature),
            ("other key", with_claims(&claims.replace("key_1", "key_2")), "GET", PATH, NOW, VerifyError::Signature),
            ("other env", with_claims(&claims.replace("live", "test")), "GET", PATH, NOW, VerifyError::Signature),
            ("later expiry", with_claims(&claims.replace("1800000060", "1900000060")), "GET", PATH, NOW, VerifyError::Signature),
            ("wrong secret", id.sign(b"other"), "GET", PATH, NOW, VerifyError::Signature),
            (
                "signature of another token",
                format!("{}.{}.{other_signature}", segments[0], segments[1]),
                "GET",
                PATH,
                NOW,
                VerifyError::Signature,
            ),
            ("signed for another origin", other_audience.sign(b"secret"), "GET", PATH, NOW, VerifyError::Audience),
            ("other method", good.clone(), "POST", PATH, NOW, VerifyError::Request),
            ("other path", good.clone(), "GET", "/v1/admin", NOW, VerifyError::Request),
            ("other query", good.clone(), "GET", "/v1/public/cms/pages/items?limit=200", NOW, VerifyError::Request),
            ("query dropped", good.clone(), "GET", "/v1/public/cms/pages/items", NOW, VerifyError::Request),
            ("expired", good.clone(), "GET", PATH, NOW + 60 + 31, VerifyError::Expired),
            ("issued in the future", good.clone(), "GET", PATH, NOW - 31, VerifyError::NotYetValid),
            ("alg none, unsigned", format!("{none_header}.{}.", segments[1]), "GET", PATH, NOW, VerifyError::Algorithm),
            ("alg none, signed", format!("{none_header}.{}.{}", segments[1], segments[2]), "GET", PATH, NOW, VerifyError::Algorithm),
            ("alg HS512", raw_token(&hs512_header, &claims, b"secret"), "GET", PATH, NOW, VerifyError::Algorithm),
            ("not a JWT", "v2=0123".into(), "GET", PATH, NOW, VerifyError::Malformed),
            ("two segments", format!("{}.{}", segments[0], segments[1]), "GET", PATH, NOW, VerifyError::Malformed),
            ("four segments", format!("{good}.{}", segments[2]), "GET", PATH, NOW, VerifyError::Malformed),
            ("padded signature", format!("{good}="), "GET", PATH, NOW, VerifyError::Malformed),
            ("short signature", good[..good.len() - 4].to_string(), "GET", PATH, NOW, VerifyError::Malformed),
            ("standard base64 alphabet", good.replace(['-', '_'], "+"), "GET", PATH, NOW, VerifyError::Malformed),
            // Validly signed, but not in keygate's one spelling: refused before the MAC.
            ("claims with a space", raw_token(JOSE_HEADER, &spaced, b"secret"), "GET", PATH, NOW, VerifyError::Malformed),
            ("claims reordered", raw_token(JOSE_HEADER, &reordered, b"secret"), "GET", PATH, NOW, VerifyError::Malformed),
            ("other issuer", raw_token(JOSE_HEADER, &other_issuer, b"secret"), "GET", PATH, NOW, VerifyError::Malformed),
            ("needless escape", raw_token(JOSE_HEADER, &escaped, b"secret"), "GET", PATH, NOW, VerifyError::Malformed),
            (
                "claim missing",
                raw_token(JOSE_HEADER, &claims.replace(r#","env":"live""#, ""), b"secret"),
                "GET",
                PATH,
                NOW,
                VerifyError::Malformed,
            ),
            (
                "trailing claim",
                raw_token(JOSE_HEADER, &claims.replace('}', r#","jti":"1"}"#), b"secret"),
                "GET",
                PATH,
                NOW,
                VerifyError::Malformed,
            ),
            (
                "iat as a string",
                raw_token(JOSE_HEADER, &claims.replace("1800000000", "\"1800000000\""), b"secret"),
                "GET",
                PATH,
                NOW,
                VerifyError::Malformed,
            ),
            (
                "iat with a leading zero",
                raw_token(JOSE_HEADER, &claims.replace("1800000000", "01800000000"), b"secret"),
                "GET",
                PATH,
                NOW,
                VerifyError::Malformed,
            ),
            (
                "iat beyond u64",
                raw_token(JOSE_HEADER, &claims.replace("1800000000", "18446744073709551616"), b"secret"),
                "GET",
                PATH,
                NOW,
                VerifyError::Malformed,
            ),
            ("claims not JSON", raw_token(JOSE_HEADER, "not json", b"secret"), "GET", PATH, NOW, VerifyError::Malformed),
        ];
        for (what, token, method, path, now, expected) in rows {
            assert_eq!(run(&token, method, path, now), Err(expected), "{what}: {token}");
        }
        assert_eq!(verify(b"secret", &audience(LIVE), "GET", PATH, None, NOW, 30), Err(VerifyError::Missing));
        // The edges of the window, leeway included, are accepted.
        for now in [NOW - 30, NOW, NOW + 60 + 30] {
            assert!(run(&good, "GET", PATH, now).is_ok(), "{now}");
        }
    }

    #[test]
    fn reasons_are_stable_and_distinct() {
        let all = [
            VerifyError::Missing,
            VerifyError::Malformed,
            VerifyError::Algorithm,
            VerifyError::Signature,
            VerifyError::Audience,
            VerifyError::Request,
            VerifyError::Expired,
            VerifyError::NotYetValid,
        ];
        let reasons: std::collections::BTreeSet<&str> = all.iter().map(|e| e.reason()).collect();
        assert_eq!(reasons.len(), all.len());
        assert_eq!(VerifyError::NotYetValid.reason(), "not_yet_valid");
    }
}
