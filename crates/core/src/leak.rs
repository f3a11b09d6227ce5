//! Leak reports (pure): GitHub's secret-scanning partner alerts, and what keygate does about a
//! reported key.
//!
//! GitHub finds a token matching keygate's published pattern in a public place and `POST`s a
//! JSON array of `{"token","type","url","source"}`, signed with ECDSA P-256/SHA-256 over the
//! raw body: the signature (base64 DER) in `Github-Public-Key-Signature`, the signing key's id in
//! `Github-Public-Key-Identifier`, the keys published as
//! `{"public_keys":[{"key_identifier","key"(PEM),"is_current"}]}`.
//!
//! This module holds everything that decides: bounds on the body, the DER signature → the raw
//! `r‖s` Web Crypto verifies, PEM → SPKI bytes, the public-keys document, the isolate's key
//! cache rules, the label of each token, the change a report makes to a record and its audit
//! entry, and the feedback body. The worker verifies (Web Crypto), reads KV and calls the
//! registry.
//!
//! Invariants: a reported token is a plaintext key, so it never leaves this module except as
//! its SHA-256 (the feedback's `token_hash`, the KV lookup); the audit entry names the reporter
//! and the source URL only. Acting on one report twice is harmless: a revoked key never
//! changes, and a key already reported from the same URL is neither changed nor audited again
//! (GitHub retries a report it got no 2xx for).

use serde_json::Value;

use crate::admin::lifecycle::{diff, AuditEntry};
use crate::key::{KeyFormat, KeyHash};
use crate::record::{KeyRecord, Status};
use crate::timestamp::Timestamp;

/// Largest report body accepted (GitHub batches tokens; 1 MiB holds thousands).
pub const MAX_BODY_BYTES: usize = 1 << 20;
/// Most tokens in one report.
pub const MAX_TOKENS: usize = 10_000;
/// Longest source URL kept in an audit entry, in bytes (longer ones are cut at a character
/// boundary).
pub const MAX_URL_LEN: usize = 2_048;
/// An isolate fetches the public keys at most [`KEYS_FETCHES_PER_WINDOW`] times per this window:
/// a report naming an identifier it lacks triggers a fetch (GitHub rotates keys), so forged
/// identifiers must not trigger one each.
pub const KEYS_FETCH_WINDOW_MS: i64 = 60_000;
/// See [`KEYS_FETCH_WINDOW_MS`]: the first fetch, a rotation, and one spare.
pub const KEYS_FETCHES_PER_WINDOW: usize = 3;
/// Largest public-keys document read.
pub const MAX_KEYS_DOCUMENT_BYTES: usize = 65_536;
/// GitHub's published secret-scanning keys, the default of `LEAK_KEYS_URL`.
pub const GITHUB_KEYS_URL: &str = "https://api.github.com/meta/public_keys/secret_scanning";
/// The `reporter` of an audit entry for a GitHub report.
pub const REPORTER_GITHUB: &str = "github";

/// What a confirmed leak does to the key (`LEAK_ACTION`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeakAction {
    /// Disable the key (status `inactive`): the owner can look, then enable it or roll it.
    Disable,
    /// Revoke the key for good.
    Revoke,
    /// Change nothing: write the audit entry and log only.
    Notify,
}

impl LeakAction {
    /// The setting's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            LeakAction::Disable => "disable",
            LeakAction::Revoke => "revoke",
            LeakAction::Notify => "notify",
        }
    }

    /// Parses `disable` / `revoke` / `notify`.
    pub fn from_name(name: &str) -> Option<LeakAction> {
        match name {
            "disable" => Some(LeakAction::Disable),
            "revoke" => Some(LeakAction::Revoke),
            "notify" => Some(LeakAction::Notify),
            _ => None,
        }
    }
}

/// The leak-report settings (`LEAK_REPORTS`, `LEAK_KEYS_URL`, `LEAK_ACTION`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeakSettings {
    /// Whether `POST <ADMIN_PREFIX>/leaks/github` accepts reports (off by default).
    pub enabled: bool,
    /// Where the reporter's public keys are published.
    pub keys_url: String,
    /// What a report of a live key does.
    pub action: LeakAction,
}

/// Who reported a leak, and where the key was found: kept in the audit entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeakReport {
    /// `github`.
    pub reporter: String,
    /// The public URL where the key was found.
    pub url: String,
}

/// Why a report is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportProblem {
    /// Body over [`MAX_BODY_BYTES`] (413).
    TooLarge,
    /// Not a JSON array of objects with a string `token`, or over [`MAX_TOKENS`] (400).
    Malformed,
}

/// One reported token. `Debug` leaves the token out.
pub struct ReportedToken {
    /// The secret as found. Never logged, stored or echoed: hash it.
    token: String,
    /// GitHub's name of the pattern that matched.
    pub token_type: String,
    /// Where it was found.
    pub url: String,
}

impl std::fmt::Debug for ReportedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ReportedToken({}, {})", self.token_type, self.url)
    }
}

impl ReportedToken {
    /// SHA-256 of the token: the feedback's `token_hash`, and for a keygate key its KV key.
    pub fn hash(&self) -> KeyHash {
        KeyHash::of(&self.token)
    }

    /// Whether the token is a keygate key of this deployment (format and checksum, no I/O): a
    /// token that is not can only be a false positive.
    pub fn is_ours(&self, format: &KeyFormat) -> bool {
        format.parse(&self.token).is_ok()
    }
}

/// Parses a report body: a JSON array of `{"token","type","url","source"}` (extra fields
/// ignored; `type`, `url` may be missing).
pub fn parse_report(body: &[u8]) -> Result<Vec<ReportedToken>, ReportProblem> {
    if body.len() > MAX_BODY_BYTES {
        return Err(ReportProblem::TooLarge);
    }
    let Ok(Value::Array(items)) = serde_json::from_slice::<Value>(body) else { return Err(ReportProblem::Malformed) };
    if items.len() > MAX_TOKENS {
        return Err(ReportProblem::Malformed);
    }
    let text = |item: &Value, name: &str| item.get(name).and_then(Value::as_str).unwrap_or_default().to_string();
    let cut = |mut url: String| {
        let mut end = url.len().min(MAX_URL_LEN);
        while !url.is_char_boundary(end) {
            end -= 1;
        }
        url.truncate(end);
        url
    };
    items
        .iter()
        .map(|item| match item.get("token").and_then(Value::as_str) {
            Some(token) => Ok(ReportedToken { token: token.to_string(), token_type: text(item, "type"), url: cut(text(item, "url")) }),
            None => Err(ReportProblem::Malformed),
        })
        .collect()
}

/// GitHub's feedback label of one token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Label {
    /// A key of this gateway (live, disabled, expired or revoked).
    TruePositive,
    /// Not a key of this gateway: wrong format or checksum, or no such key.
    FalsePositive,
}

impl Label {
    /// The label as GitHub spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Label::TruePositive => "true_positive",
            Label::FalsePositive => "false_positive",
        }
    }

    /// The label of a token found (or not) under its hash.
    pub fn of(found: Option<&KeyRecord>) -> Label {
        if found.is_some() {
            Label::TruePositive
        } else {
            Label::FalsePositive
        }
    }
}

/// The feedback body: `[{"token_hash","token_type","label"}]`, one per reported token, in order.
/// (Written out rather than with `json!`, which costs the worker its `to_value` machinery.)
pub fn feedback(tokens: &[ReportedToken], labels: &[Label]) -> String {
    let items: Vec<String> = tokens
        .iter()
        .zip(labels)
        .map(|(token, label)| {
            let token_type = Value::from(token.token_type.as_str());
            format!(r#"{{"token_hash":"{}","token_type":{token_type},"label":"{}"}}"#, token.hash().to_hex(), label.as_str())
        })
        .collect();
    format!("[{}]", items.join(","))
}

/// Whether a found key needs the registry: a revoked key never changes, so a report of one is
/// answered without a call.
pub fn needs_action(record: &KeyRecord) -> bool {
    record.status != Status::Revoked
}

/// What a report does to `old`: the new record (unchanged for `notify`, for an already disabled
/// key on `disable`) and its `leak_reported` audit entry. `None` when nothing is to be done: the
/// key is revoked, or `history` already holds a report from this reporter and URL (a retry, or
/// a leak an owner has already dealt with by enabling the key again).
pub fn apply(
    old: &KeyRecord,
    action: LeakAction,
    report: &LeakReport,
    history: &[AuditEntry],
    now_ms: i64,
) -> Option<(KeyRecord, AuditEntry)> {
    let same = |entry: &AuditEntry| entry.reporter.as_ref() == Some(&report.reporter) && entry.source.as_ref() == Some(&report.url);
    if old.status == Status::Revoked || history.iter().any(same) {
        return None;
    }
    let mut new = old.clone();
    match action {
        LeakAction::Disable if old.status == Status::Active => new.status = Status::Inactive,
        LeakAction::Revoke => new.status = Status::Revoked,
        _ => {}
    }
    let changes = diff(Some(old), &new);
    if !changes.is_empty() {
        new.revision += 1;
        new.updated_at = Timestamp(now_ms);
    }
    let audit = AuditEntry {
        at: Timestamp(now_ms),
        action: "leak_reported".into(),
        revision: new.revision,
        changes,
        reporter: Some(report.reporter.clone()),
        source: Some(report.url.clone()),
    };
    Some((new, audit))
}

/// The raw `r‖s` (32 bytes each, big-endian) of a DER `ECDSA-Sig-Value` for P-256, as Web Crypto
/// verifies it. `None` for anything else: bad tags or lengths, trailing bytes, a negative or
/// over-long integer. Never panics.
pub fn der_signature_to_raw(der: &[u8]) -> Option<[u8; 64]> {
    let (&tag, rest) = der.split_first()?;
    let (&len, body) = rest.split_first()?;
    // An r and s of up to 33 bytes each fit in 70 bytes: the length is always short-form.
    if tag != 0x30 || len >= 0x80 || body.len() != len as usize {
        return None;
    }
    let (r, body) = der_integer(body)?;
    let (s, body) = der_integer(body)?;
    if !body.is_empty() {
        return None;
    }
    let mut raw = [0u8; 64];
    raw[32 - r.len()..32].copy_from_slice(r);
    raw[64 - s.len()..].copy_from_slice(s);
    Some(raw)
}

/// One DER INTEGER that is positive and fits 32 bytes: (its magnitude without leading zeros, the
/// rest of the input).
fn der_integer(input: &[u8]) -> Option<(&[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&len, rest) = rest.split_first()?;
    let len = len as usize;
    if tag != 0x02 || len == 0 || len > 33 || rest.len() < len {
        return None;
    }
    let (value, rest) = rest.split_at(len);
    if value[0] & 0x80 != 0 {
        return None; // negative
    }
    let magnitude = match value.iter().position(|&b| b != 0) {
        Some(first) => &value[first..],
        None => return None, // zero is never a valid r or s
    };
    (magnitude.len() <= 32).then_some((magnitude, rest))
}

/// Decodes standard base64 (with or without `=` padding; ASCII whitespace ignored).
pub fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut buffer, mut bits) = (0u32, 0u32);
    let mut padding = false;
    for byte in text.bytes().filter(|b| !b.is_ascii_whitespace()) {
        let value = match byte {
            b'A'..=b'Z' => byte - b'A',
            b'a'..=b'z' => byte - b'a' + 26,
            b'0'..=b'9' => byte - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => {
                padding = true;
                continue;
            }
            _ => return None,
        };
        if padding {
            return None; // data after padding
        }
        buffer = (buffer << 6) | value as u32;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
            buffer &= (1 << bits) - 1;
        }
    }
    // Leftover bits must be the zero padding of the last character (6 bits is a lone character).
    (bits < 6 && buffer == 0).then_some(out)
}

/// The DER bytes of a PEM `PUBLIC KEY` (SPKI).
pub fn pem_to_spki(pem: &str) -> Option<Vec<u8>> {
    let body = pem.trim().strip_prefix("-----BEGIN PUBLIC KEY-----")?.strip_suffix("-----END PUBLIC KEY-----")?;
    base64_decode(body).filter(|der| !der.is_empty())
}

/// The public keys of a keys document: (identifier, SPKI DER). Keys that do not decode are
/// left out; so are all of them when the document is not the expected shape.
pub fn parse_public_keys(document: &[u8]) -> Vec<(String, Vec<u8>)> {
    let Ok(value) = serde_json::from_slice::<Value>(document) else { return Vec::new() };
    let Some(keys) = value.get("public_keys").and_then(Value::as_array) else { return Vec::new() };
    keys.iter()
        .filter_map(|key| {
            let id = key.get("key_identifier")?.as_str()?;
            Some((id.to_string(), pem_to_spki(key.get("key")?.as_str()?)?))
        })
        .collect()
}

/// One isolate's copy of the reporter's public keys: decoded data only (never a fetch shared
/// between requests), refreshed when a report names an identifier it lacks, at most
/// [`KEYS_FETCHES_PER_WINDOW`] times per [`KEYS_FETCH_WINDOW_MS`].
#[derive(Debug, Default)]
pub struct PublicKeyCache {
    keys: Vec<(String, Vec<u8>)>,
    /// When the last fetches were attempted (at most [`KEYS_FETCHES_PER_WINDOW`]).
    attempts_ms: Vec<i64>,
}

impl PublicKeyCache {
    /// An empty cache (`const`: a thread-local needs no lazy initialisation).
    pub const fn new() -> PublicKeyCache {
        PublicKeyCache { keys: Vec::new(), attempts_ms: Vec::new() }
    }

    /// The SPKI DER of key `identifier`, if held.
    pub fn get(&self, identifier: &str) -> Option<&[u8]> {
        self.keys.iter().find(|(id, _)| id == identifier).map(|(_, key)| key.as_slice())
    }

    /// Whether a fetch may start now: fewer than [`KEYS_FETCHES_PER_WINDOW`] attempts in the
    /// last [`KEYS_FETCH_WINDOW_MS`]. Starting one counts as an attempt at once, so concurrent
    /// reports cannot all fetch.
    pub fn try_start_fetch(&mut self, now_ms: i64) -> bool {
        self.attempts_ms.retain(|&at| at <= now_ms && now_ms - at < KEYS_FETCH_WINDOW_MS);
        let allowed = self.attempts_ms.len() < KEYS_FETCHES_PER_WINDOW;
        if allowed {
            self.attempts_ms.push(now_ms);
        }
        allowed
    }

    /// A fetch's result: the keys it found replace those held (a failed or empty fetch keeps
    /// them).
    pub fn fetched(&mut self, keys: Option<Vec<(String, Vec<u8>)>>) {
        if let Some(keys) = keys.filter(|keys| !keys.is_empty()) {
            self.keys = keys;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::KeyEnv;
    use serde_json::json;

    fn record(status: Status) -> KeyRecord {
        let mut record: KeyRecord = serde_json::from_str(crate::record::tests::sample_json()).unwrap();
        record.status = status;
        record
    }

    fn report(url: &str) -> LeakReport {
        LeakReport { reporter: REPORTER_GITHUB.into(), url: url.into() }
    }

    #[test]
    fn der_signatures_convert_to_raw() {
        let r = [0x11u8; 32];
        let mut s = [0x22u8; 32];
        // (what, DER, expected r‖s)
        let mut high = vec![0x30, 0x46, 0x02, 0x21, 0x00];
        high.extend([0x81; 32]);
        high.extend([0x02, 0x21, 0x00]);
        high.extend([0x82; 32]);
        let mut plain = vec![0x30, 0x44, 0x02, 0x20];
        plain.extend(r);
        plain.extend([0x02, 0x20]);
        plain.extend(s);
        let short = vec![0x30, 0x07, 0x02, 0x01, 0x05, 0x02, 0x02, 0x01, 0x02];
        let rows: Vec<(&str, Vec<u8>, [u8; 64])> = vec![
            ("32-byte integers", plain.clone(), {
                let mut raw = [0u8; 64];
                raw[..32].copy_from_slice(&r);
                raw[32..].copy_from_slice(&s);
                raw
            }),
            ("33-byte integers with a sign byte", high, {
                let mut raw = [0x81u8; 64];
                raw[32..].fill(0x82);
                raw
            }),
            ("short integers are left-padded", short, {
                let mut raw = [0u8; 64];
                raw[31] = 5;
                raw[62] = 1;
                raw[63] = 2;
                raw
            }),
        ];
        for (what, der, expected) in rows {
            assert_eq!(der_signature_to_raw(&der), Some(expected), "{what}");
        }
        s[0] = 0x80; // would be negative without a sign byte
        let mut negative = vec![0x30, 0x44, 0x02, 0x20];
        negative.extend(r);
        negative.extend([0x02, 0x20]);
        negative.extend(s);
        let mut trailing = plain.clone();
        trailing.push(0);
        trailing[1] += 1;
        let mut long_form = plain.clone();
        long_form.splice(1..2, [0x81, 0x44]);
        let mut too_long = vec![0x30, 0x48, 0x02, 0x22, 0x00, 0x01];
        too_long.extend([0x11; 32]);
        too_long.extend([0x02, 0x22, 0x00, 0x01]);
        too_long.extend([0x11; 32]);
        let bad: Vec<(&str, Vec<u8>)> = vec![
            ("empty", vec![]),
            ("negative s", negative),
            ("trailing bytes inside", trailing),
            ("long-form length", long_form),
            ("integers over 32 bytes", too_long),
            ("zero r", vec![0x30, 0x06, 0x02, 0x01, 0x00, 0x02, 0x01, 0x01]),
            ("wrong tag", vec![0x31, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01]),
            ("length past the end", vec![0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x05, 0x01]),
            ("one integer", vec![0x30, 0x03, 0x02, 0x01, 0x01]),
            ("zero-length integer", vec![0x30, 0x05, 0x02, 0x00, 0x02, 0x01, 0x01]),
        ];
        for (what, der) in bad {
            assert_eq!(der_signature_to_raw(&der), None, "{what}");
        }
    }

    /// Random and mutated inputs never panic, and anything accepted converts back to the DER.
    #[test]
    fn der_conversion_survives_random_input() {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut valid = vec![0x30, 0x44, 0x02, 0x20];
        valid.extend([0x3f; 32]);
        valid.extend([0x02, 0x20]);
        valid.extend([0x4e; 32]);
        for round in 0..20_000 {
            let input: Vec<u8> = if round % 2 == 0 {
                (0..(next() % 80) as usize).map(|_| next() as u8).collect()
            } else {
                let mut mutated = valid.clone();
                let at = (next() as usize) % mutated.len();
                mutated[at] = next() as u8;
                mutated.truncate(mutated.len() - (next() % 3) as usize);
                mutated
            };
            if let Some(raw) = der_signature_to_raw(&input) {
                assert!(raw[..32].iter().any(|&b| b != 0) && raw[32..].iter().any(|&b| b != 0));
            }
            let _ = base64_decode(&String::from_utf8_lossy(&input));
        }
    }

    #[test]
    fn base64_decodes_the_standard_alphabet() {
        let rows: &[(&str, Option<&[u8]>)] = &[
            ("", Some(b"")),
            ("TWFu", Some(b"Man")),
            ("TWE=", Some(b"Ma")),
            ("TWE", Some(b"Ma")),
            ("TQ==", Some(b"M")),
            ("TW\nFu\r\n", Some(b"Man")),
            ("+/+/", Some(&[0xfb, 0xff, 0xbf])),
            ("TWF-", None),
            ("TQ=x", None),
            ("T", None),
            ("TR==", None),
        ];
        for (text, expected) in rows {
            assert_eq!(base64_decode(text).as_deref(), *expected, "{text:?}");
        }
    }

    const PEM: &str = "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEsz9ugWDj5jK5ELBK42ynytbo38gP\nHzZFI03Exwz8Lh/tCfL3YxwMdLjB+bMznsanlhK0RwcGP3IDb34kQDIo3Q==\n-----END PUBLIC KEY-----";

    #[test]
    fn the_public_keys_document_parses() {
        let document = json!({"public_keys": [
            {"key_identifier": "90a421169f0a406205f1563a953312f0be898d3c7b6c06b681aa86a874555f4a", "key": PEM, "is_current": true},
            {"key_identifier": "broken", "key": "-----BEGIN PUBLIC KEY-----\n!!\n-----END PUBLIC KEY-----", "is_current": false},
            {"key_identifier": "no key"},
        ]});
        let keys = parse_public_keys(document.to_string().as_bytes());
        assert_eq!(keys.len(), 1);
        assert_eq!(keys[0].0, "90a421169f0a406205f1563a953312f0be898d3c7b6c06b681aa86a874555f4a");
        assert_eq!(keys[0].1.len(), 91, "a P-256 SPKI");
        assert_eq!(&keys[0].1[..2], &[0x30, 0x59]);
        for bad in [&b"[]"[..], b"{}", b"not json", br#"{"public_keys":{}}"#] {
            assert!(parse_public_keys(bad).is_empty());
        }
    }

    #[test]
    fn the_key_cache_fetches_a_few_times_a_minute_at_most() {
        let mut cache = PublicKeyCache::default();
        assert!(cache.get("a").is_none());
        assert!(cache.try_start_fetch(1_000));
        cache.fetched(Some(vec![("a".into(), vec![1])]));
        assert_eq!(cache.get("a"), Some(&[1u8][..]));
        assert!(cache.try_start_fetch(2_000));
        cache.fetched(None);
        assert_eq!(cache.get("a"), Some(&[1u8][..]), "a failed fetch keeps the keys held");
        cache.fetched(Some(Vec::new()));
        assert_eq!(cache.get("a"), Some(&[1u8][..]), "an empty document keeps the keys held");
        assert!(cache.try_start_fetch(3_000));
        assert!(!cache.try_start_fetch(4_000), "a fourth fetch within the window");
        assert!(!cache.try_start_fetch(1_000 + KEYS_FETCH_WINDOW_MS - 1));
        assert!(cache.try_start_fetch(1_000 + KEYS_FETCH_WINDOW_MS), "the first attempt left the window");
        assert!(!cache.try_start_fetch(1_000 + KEYS_FETCH_WINDOW_MS));
        assert!(cache.try_start_fetch(0), "a clock that went back forgets the attempts after it");
    }

    #[test]
    fn reports_parse_within_bounds() {
        let body = json!([{"token": "kg_live_x", "type": "keygate_api_key", "url": "https://github.com/a/b/blob/c/d", "source": "content", "extra": 1}]);
        let tokens = parse_report(body.to_string().as_bytes()).unwrap();
        assert_eq!(tokens.len(), 1);
        assert_eq!((tokens[0].token_type.as_str(), tokens[0].url.as_str()), ("keygate_api_key", "https://github.com/a/b/blob/c/d"));
        assert!(!format!("{:?}", tokens[0]).contains("kg_live_x"), "Debug leaves the token out");
        assert_eq!(parse_report(b"[]").unwrap().len(), 0);
        let rows: &[(&str, &[u8])] = &[
            ("not JSON", b"[{"),
            ("an object", br#"{"token":"a"}"#),
            ("no token", br#"[{"type":"a"}]"#),
            ("a token that is not a string", br#"[{"token":7}]"#),
        ];
        for (what, body) in rows {
            assert_eq!(parse_report(body).err(), Some(ReportProblem::Malformed), "{what}");
        }
        let many = format!("[{}]", vec![r#"{"token":"a"}"#; MAX_TOKENS + 1].join(","));
        assert_eq!(parse_report(many.as_bytes()).err(), Some(ReportProblem::Malformed));
        assert_eq!(parse_report(&vec![b' '; MAX_BODY_BYTES + 1]).err(), Some(ReportProblem::TooLarge));
        let long_url = json!([{"token": "a", "url": "u".repeat(MAX_URL_LEN * 2)}]);
        assert_eq!(parse_report(long_url.to_string().as_bytes()).unwrap()[0].url.len(), MAX_URL_LEN);
        let wide_url = json!([{"token": "a", "url": format!("u{}", "é".repeat(MAX_URL_LEN))}]);
        assert_eq!(parse_report(wide_url.to_string().as_bytes()).unwrap()[0].url.len(), MAX_URL_LEN - 1, "cut at a character");
    }

    #[test]
    fn tokens_are_labelled_and_the_feedback_hashes_them() {
        let format = KeyFormat::standard("kg").unwrap();
        let ours = format.generate(KeyEnv::Live).unwrap();
        let mut typo = ours.expose().to_string();
        typo.pop();
        typo.push(if ours.expose().ends_with('0') { '1' } else { '0' });
        let body = json!([{"token": ours.expose(), "type": "t"}, {"token": typo}, {"token": "ghp_foreign"}]);
        let tokens = parse_report(body.to_string().as_bytes()).unwrap();
        assert_eq!(tokens.iter().map(|t| t.is_ours(&format)).collect::<Vec<_>>(), [true, false, false]);
        let labels = [Label::of(Some(&record(Status::Revoked))), Label::of(None), Label::FalsePositive];
        let feedback: Value = serde_json::from_str(&feedback(&tokens, &labels)).unwrap();
        assert_eq!(feedback[0], json!({"token_hash": ours.hash().to_hex(), "token_type": "t", "label": "true_positive"}));
        assert_eq!(feedback[1]["label"], "false_positive");
        assert_eq!(feedback[2]["token_hash"], KeyHash::of("ghp_foreign").to_hex());
        assert!(!feedback.to_string().contains(ours.expose()));
    }

    #[test]
    fn a_report_acts_by_policy_once() {
        let now = 1_900_000_000_000;
        let source = report("https://github.com/a/b/blob/c/.env");
        // (what, status, action, expected status after, whether the record changes)
        let rows = [
            ("disable a live key", Status::Active, LeakAction::Disable, Status::Inactive, true),
            ("disable a disabled key: audit only", Status::Inactive, LeakAction::Disable, Status::Inactive, false),
            ("revoke a live key", Status::Active, LeakAction::Revoke, Status::Revoked, true),
            ("revoke a disabled key", Status::Inactive, LeakAction::Revoke, Status::Revoked, true),
            ("notify changes nothing", Status::Active, LeakAction::Notify, Status::Active, false),
        ];
        for (what, status, action, after, changes) in rows {
            let old = record(status);
            let (new, audit) = apply(&old, action, &source, &[], now).unwrap_or_else(|| panic!("{what}"));
            assert_eq!(new.status, after, "{what}");
            assert_eq!((new.revision != old.revision, audit.changes.contains_key("status")), (changes, changes), "{what}");
            assert_eq!((audit.action.as_str(), audit.revision), ("leak_reported", new.revision), "{what}");
            assert_eq!((audit.reporter.as_deref(), audit.source.as_deref()), (Some("github"), Some(source.url.as_str())), "{what}");
            // The same report again (a retry) does nothing, whatever the key's state now.
            assert_eq!(apply(&new, action, &source, std::slice::from_ref(&audit), now + 1), None, "{what}: replay");
            let other = report("https://github.com/a/b/blob/c/other");
            if new.status != Status::Revoked {
                assert!(apply(&new, action, &other, &[audit], now + 1).is_some(), "{what}: another source is another report");
            }
        }
        assert_eq!(apply(&record(Status::Revoked), LeakAction::Disable, &source, &[], now), None, "a revoked key never changes");
        assert!(!needs_action(&record(Status::Revoked)) && needs_action(&record(Status::Inactive)));
    }
}
