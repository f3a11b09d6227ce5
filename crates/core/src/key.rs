//! Key format: `<prefix>_<segment>_<body><checksum>`, or `<prefix>_<body><checksum>` on a
//! deployment whose keys carry no environment segment.
//!
//! - `prefix`: from config (`KEY_PREFIX`, or `KEY_PREFIXES` to accept several while migrating;
//!   the first one mints), 2–12 lowercase ASCII alphanumerics.
//! - `segment`: names the key's environment (`KEY_ENV_SEGMENTS`; default `live` → live and
//!   `test` → test; the first name per environment mints), 1–16 lowercase ASCII alphanumerics.
//!   Without segments every key is live.
//! - `body`: 32 base62 characters from a CSPRNG (≈190 bits of entropy).
//! - `checksum`: CRC32 of everything before it, as 6 base62 characters (left-padded with `0`).
//!
//! [`KeyFormat`] holds one deployment's format, built once from config. Its parse is pure and
//! rejects a wrong prefix, environment, length, alphabet or checksum without any I/O, so typos
//! and garbage never reach KV. A plaintext key only ever lives in a [`PlaintextKey`], whose
//! `Debug`/`Display` print a redacted hint; storage sees [`KeyHash`].

use std::fmt;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Characters of the base62 alphabet, in value order (as GitHub tokens use).
pub const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
/// Length of the random body.
pub const BODY_LEN: usize = 32;
/// Length of the checksum suffix.
pub const CHECKSUM_LEN: usize = 6;
/// Longest key prefix.
pub const MAX_PREFIX_LEN: usize = 12;
/// Longest environment segment.
pub const MAX_SEGMENT_LEN: usize = 16;
/// No valid key is longer than this (12-char prefix + 16-char segment + two `_` + body + checksum).
pub const MAX_KEY_LEN: usize = MAX_PREFIX_LEN + MAX_SEGMENT_LEN + 2 + BODY_LEN + CHECKSUM_LEN;

/// Which environment a key belongs to; decides which origin it reaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyEnv {
    /// Production traffic, forwarded to `ORIGIN_URL`.
    Live,
    /// Sandbox traffic, forwarded to `ORIGIN_URL_TEST`.
    Test,
}

impl KeyEnv {
    /// The literal used in the key string and in records.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyEnv::Live => "live",
            KeyEnv::Test => "test",
        }
    }

    /// Parses `live` / `test`.
    pub fn from_name(name: &str) -> Option<KeyEnv> {
        match name {
            "live" => Some(KeyEnv::Live),
            "test" => Some(KeyEnv::Test),
            _ => None,
        }
    }
}

impl fmt::Display for KeyEnv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a string is not a well-formed key. Stable snake_case names go into error details.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyFormatError {
    /// Too short or too long for any key.
    BadLength,
    /// The prefix is not one of the accepted ones.
    WrongPrefix,
    /// The environment segment is not one of the configured ones.
    WrongEnvironment,
    /// A character outside the key alphabet.
    BadCharacter,
    /// The checksum does not match the rest of the key (a typo or a made-up key).
    BadChecksum,
}

impl KeyFormatError {
    /// Stable machine-readable reason.
    pub fn reason(self) -> &'static str {
        match self {
            KeyFormatError::BadLength => "bad_length",
            KeyFormatError::WrongPrefix => "wrong_prefix",
            KeyFormatError::WrongEnvironment => "wrong_environment",
            KeyFormatError::BadCharacter => "bad_character",
            KeyFormatError::BadChecksum => "bad_checksum",
        }
    }
}

/// Whether `prefix` is an acceptable key prefix: 2–12 lowercase ASCII letters or digits.
pub fn is_valid_prefix(prefix: &str) -> bool {
    (2..=MAX_PREFIX_LEN).contains(&prefix.len()) && prefix.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

/// Whether `segment` is an acceptable environment segment: 1–16 lowercase ASCII letters or digits.
pub fn is_valid_segment(segment: &str) -> bool {
    (1..=MAX_SEGMENT_LEN).contains(&segment.len()) && segment.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

/// A plaintext API key. Printing it shows only a hint; use [`PlaintextKey::expose`] on purpose.
#[derive(Clone)]
pub struct PlaintextKey(String);

impl PlaintextKey {
    /// The full secret string. Call only to hand it to its owner once, or to hash it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The SHA-256 of the key: the only form storage ever sees.
    pub fn hash(&self) -> KeyHash {
        KeyHash::of(&self.0)
    }

    /// A non-secret hint: `<prefix>_<env>_…` and the last 4 characters.
    pub fn hint(&self) -> String {
        hint_of(&self.0)
    }
}

impl fmt::Debug for PlaintextKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PlaintextKey({})", self.hint())
    }
}

impl fmt::Display for PlaintextKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.hint())
    }
}

fn hint_of(key: &str) -> String {
    let head_end = key.rfind('_').map(|i| i + 1).unwrap_or(0);
    let tail_start = key.len().saturating_sub(4).max(head_end);
    format!("{}…{}", &key[..head_end], &key[tail_start..])
}

/// SHA-256 of a plaintext key. Equality is constant-time.
#[derive(Clone, Copy, Eq)]
pub struct KeyHash([u8; 32]);

impl std::hash::Hash for KeyHash {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.hash(state);
    }
}

impl KeyHash {
    /// All zero bits: the one job of an `InFlight<KeyHash>` that tracks no key (the
    /// refused-usage flush, alone in its own `InFlight`). Keyed by a `KeyHash` rather than `()`,
    /// it shares the key re-reads' map type, so the wasm holds one `HashMap` instance for both.
    pub(crate) const MARKER: KeyHash = KeyHash([0; 32]);

    /// Hashes a key string.
    pub fn of(key: &str) -> KeyHash {
        KeyHash(Sha256::digest(key.as_bytes()).into())
    }

    /// Parses 64 lowercase hex characters.
    pub fn from_hex(text: &str) -> Option<KeyHash> {
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(text, &mut bytes).ok()?;
        Some(KeyHash(bytes))
    }

    /// Lowercase hex.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// The KV key under which the record lives: `key:<sha256 hex>`.
    pub fn storage_key(&self) -> String {
        format!("key:{}", self.to_hex())
    }

    /// First 8 hex characters, safe to log for correlating events.
    pub fn short(&self) -> String {
        hex::encode(&self.0[..4])
    }

    /// The raw digest.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl PartialEq for KeyHash {
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl fmt::Debug for KeyHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyHash({}…)", self.short())
    }
}

/// A key that passed format and checksum checks.
#[derive(Debug, Clone)]
pub struct ParsedKey {
    /// The key itself (redacted when printed).
    pub key: PlaintextKey,
    /// Its environment.
    pub env: KeyEnv,
}

/// Which part of a key format is misconfigured, and how (for `CONFIG_INVALID`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyFormatProblem {
    /// The accepted prefixes.
    Prefixes(String),
    /// The environment segments.
    Segments(String),
}

/// Why a key could not be minted.
#[derive(Debug)]
pub enum MintError {
    /// The format has no segment for this environment (or no segments, and it is not live).
    EnvironmentNotInFormat(KeyEnv),
    /// The CSPRNG failed.
    Random(getrandom::Error),
}

/// One deployment's key format: the accepted prefixes (the first mints new keys) and the
/// environment segments (the first per environment mints; none = no segment, every key live).
/// Built once from config; parsing with it does no I/O and allocates only the parsed key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyFormat {
    prefixes: Vec<String>,
    segments: Vec<(String, KeyEnv)>,
    /// Bit `n` set ⇔ some prefix/segment combination makes keys of `n` bytes (all are < 128).
    lengths: u128,
}

impl Default for KeyFormat {
    /// Prefix `kg`, segments `live` and `test`: keygate's historical format.
    fn default() -> KeyFormat {
        KeyFormat::standard("kg").unwrap_or_else(|_| KeyFormat { prefixes: Vec::new(), segments: Vec::new(), lengths: 0 })
    }
}

impl KeyFormat {
    /// Validates a format. `prefixes`: 1 or more, distinct, each 2–12 lowercase letters/digits.
    /// `segments`: empty (no segment) or distinct 1–16 lowercase letters/digits, at least one live.
    pub fn new(prefixes: Vec<String>, segments: Vec<(String, KeyEnv)>) -> Result<KeyFormat, KeyFormatProblem> {
        if prefixes.is_empty() {
            return Err(KeyFormatProblem::Prefixes("must name at least one prefix".into()));
        }
        for (i, prefix) in prefixes.iter().enumerate() {
            if !is_valid_prefix(prefix) {
                return Err(KeyFormatProblem::Prefixes(format!("prefix {prefix:?} must be 2-12 lowercase letters or digits")));
            }
            if prefixes[..i].contains(prefix) {
                return Err(KeyFormatProblem::Prefixes(format!("prefix {prefix:?} is listed twice")));
            }
        }
        for (i, (segment, _)) in segments.iter().enumerate() {
            if !is_valid_segment(segment) {
                return Err(KeyFormatProblem::Segments(format!("segment {segment:?} must be 1-16 lowercase letters or digits")));
            }
            if segments[..i].iter().any(|(s, _)| s == segment) {
                return Err(KeyFormatProblem::Segments(format!("segment {segment:?} is listed twice")));
            }
        }
        if !segments.is_empty() && !segments.iter().any(|(_, env)| *env == KeyEnv::Live) {
            return Err(KeyFormatProblem::Segments("must name a segment for live keys (or none at all)".into()));
        }
        let mut lengths = 0u128;
        for prefix in &prefixes {
            let head = prefix.len() + 1 + BODY_LEN + CHECKSUM_LEN;
            if segments.is_empty() {
                lengths |= 1 << head;
            }
            for (segment, _) in &segments {
                lengths |= 1 << (head + segment.len() + 1);
            }
        }
        Ok(KeyFormat { prefixes, segments, lengths })
    }

    /// `prefix` with the default segments `live` and `test`.
    pub fn standard(prefix: &str) -> Result<KeyFormat, KeyFormatProblem> {
        KeyFormat::new(vec![prefix.to_string()], KeyFormat::default_segments())
    }

    /// The default segments: `live` → live, `test` → test.
    pub fn default_segments() -> Vec<(String, KeyEnv)> {
        vec![("live".to_string(), KeyEnv::Live), ("test".to_string(), KeyEnv::Test)]
    }

    /// Every accepted prefix; the first mints new keys.
    pub fn prefixes(&self) -> &[String] {
        &self.prefixes
    }

    /// The prefix of newly minted keys.
    pub fn minting_prefix(&self) -> &str {
        self.prefixes.first().map(String::as_str).unwrap_or("")
    }

    /// Every accepted segment with its environment (empty: keys carry no segment).
    pub fn segments(&self) -> &[(String, KeyEnv)] {
        &self.segments
    }

    /// The segment newly minted keys of `env` carry: `Ok(None)` when the format has no segments
    /// and `env` is live, `Err` when keys of `env` cannot be minted.
    fn minting_segment(&self, env: KeyEnv) -> Result<Option<&str>, MintError> {
        if self.segments.is_empty() {
            return if env == KeyEnv::Live { Ok(None) } else { Err(MintError::EnvironmentNotInFormat(env)) };
        }
        match self.segments.iter().find(|(_, e)| *e == env) {
            Some((segment, _)) => Ok(Some(segment)),
            None => Err(MintError::EnvironmentNotInFormat(env)),
        }
    }

    /// Whether keys of `env` can be minted (and so created through the admin API).
    pub fn mints(&self, env: KeyEnv) -> bool {
        self.minting_segment(env).is_ok()
    }

    /// Builds a key of `env` from a given body (for tests and fixtures; use [`KeyFormat::generate`]).
    pub fn assemble(&self, env: KeyEnv, body: &str) -> Result<PlaintextKey, MintError> {
        Ok(assemble_parts(self.minting_prefix(), self.minting_segment(env)?, body))
    }

    /// Generates a fresh random key of `env` with the minting prefix and segment.
    pub fn generate(&self, env: KeyEnv) -> Result<PlaintextKey, MintError> {
        let segment = self.minting_segment(env)?;
        let body = random_base62(BODY_LEN).map_err(MintError::Random)?;
        Ok(assemble_parts(self.minting_prefix(), segment, &body))
    }

    /// Checks the format and checksum of `input`: any accepted prefix, any configured segment
    /// (or none, when none are configured). No I/O, no panic on any input.
    pub fn parse(&self, input: &str) -> Result<ParsedKey, KeyFormatError> {
        let bytes = input.as_bytes();
        if bytes.len() >= 128 || self.lengths & (1u128 << bytes.len()) == 0 {
            return Err(KeyFormatError::BadLength);
        }
        let (prefix, rest) = split_word(bytes, MAX_PREFIX_LEN).ok_or(KeyFormatError::WrongPrefix)?;
        if !self.prefixes.iter().any(|p| p.as_bytes() == prefix) {
            return Err(KeyFormatError::WrongPrefix);
        }
        let (env, tail) = if self.segments.is_empty() {
            (KeyEnv::Live, rest)
        } else {
            let (segment, tail) = split_word(rest, MAX_SEGMENT_LEN).ok_or(KeyFormatError::WrongEnvironment)?;
            match self.segments.iter().find(|(s, _)| s.as_bytes() == segment) {
                Some((_, env)) => (*env, tail),
                None => return Err(KeyFormatError::WrongEnvironment),
            }
        };
        // Another prefix/segment of the same total length can leave a tail of the wrong size.
        if tail.len() != BODY_LEN + CHECKSUM_LEN {
            return Err(KeyFormatError::BadLength);
        }
        if !tail.iter().all(u8::is_ascii_alphanumeric) {
            return Err(KeyFormatError::BadCharacter);
        }
        let split = bytes.len() - CHECKSUM_LEN;
        let expected = checksum_digits(&bytes[..split]);
        if !bool::from(expected.ct_eq(&bytes[split..])) {
            return Err(KeyFormatError::BadChecksum);
        }
        Ok(ParsedKey { key: PlaintextKey(input.to_owned()), env })
    }
}

/// The bytes before the first `_` (at most `max` of them) and the bytes after that `_`.
fn split_word(bytes: &[u8], max: usize) -> Option<(&[u8], &[u8])> {
    let at = bytes.iter().take(max + 1).position(|&b| b == b'_')?;
    Some((&bytes[..at], &bytes[at + 1..]))
}

fn assemble_parts(prefix: &str, segment: Option<&str>, body: &str) -> PlaintextKey {
    let head = match segment {
        Some(segment) => format!("{prefix}_{segment}_{body}"),
        None => format!("{prefix}_{body}"),
    };
    let sum = checksum(&head);
    PlaintextKey(head + &sum)
}

/// CRC32 of `text` as 6 base62 characters.
pub fn checksum(text: &str) -> String {
    // Only ASCII from BASE62 is written.
    String::from_utf8(checksum_digits(text.as_bytes()).to_vec()).unwrap_or_default()
}

/// CRC32 of `bytes` as 6 base62 digits, on the stack (the parse allocates nothing for it).
fn checksum_digits(bytes: &[u8]) -> [u8; CHECKSUM_LEN] {
    base62_fixed(u64::from(crc32(bytes)))
}

/// `value` as 6 base62 digits, left-padded with `0` (u32::MAX fits).
fn base62_fixed(mut value: u64) -> [u8; CHECKSUM_LEN] {
    let mut out = [b'0'; CHECKSUM_LEN];
    for slot in out.iter_mut().rev() {
        *slot = BASE62[(value % 62) as usize];
        value /= 62;
    }
    out
}

/// CRC-32 (IEEE 802.3, as zlib and `crc32fast` compute it), slice-by-16 like `crc32fast`'s
/// portable path. The 16 KB of tables are built on first use instead of being compiled in:
/// as data they would be 16 KB of incompressible bytes in the gzipped wasm.
fn crc32(bytes: &[u8]) -> u32 {
    static TABLES: OnceLock<Box<[[u32; 256]; 16]>> = OnceLock::new();
    let t = TABLES.get_or_init(|| {
        let mut t = Box::new([[0u32; 256]; 16]);
        for i in 0..256 {
            t[0][i] = (0..8).fold(i as u32, |crc, _| if crc & 1 == 1 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 });
        }
        for k in 1..16 {
            for i in 0..256 {
                let previous = t[k - 1][i];
                t[k][i] = (previous >> 8) ^ t[0][(previous & 0xFF) as usize];
            }
        }
        t
    });
    let mut crc = !0u32;
    let mut chunks = bytes.chunks_exact(16);
    for chunk in &mut chunks {
        let b: &[u8; 16] = chunk.try_into().unwrap_or(&[0; 16]);
        let c = crc.to_le_bytes();
        crc = t[0][b[15] as usize]
            ^ t[1][b[14] as usize]
            ^ t[2][b[13] as usize]
            ^ t[3][b[12] as usize]
            ^ t[4][b[11] as usize]
            ^ t[5][b[10] as usize]
            ^ t[6][b[9] as usize]
            ^ t[7][b[8] as usize]
            ^ t[8][b[7] as usize]
            ^ t[9][b[6] as usize]
            ^ t[10][b[5] as usize]
            ^ t[11][b[4] as usize]
            ^ t[12][(b[3] ^ c[3]) as usize]
            ^ t[13][(b[2] ^ c[2]) as usize]
            ^ t[14][(b[1] ^ c[1]) as usize]
            ^ t[15][(b[0] ^ c[0]) as usize];
    }
    !chunks.remainder().iter().fold(crc, |crc, &b| t[0][((crc ^ u32::from(b)) & 0xFF) as usize] ^ (crc >> 8))
}

/// Fills a string of `len` uniformly random base62 characters from the OS/Web Crypto CSPRNG.
pub fn random_base62(len: usize) -> Result<String, getrandom::Error> {
    let mut out = String::with_capacity(len);
    let mut buf = [0u8; 64];
    while out.len() < len {
        getrandom::getrandom(&mut buf)?;
        for byte in buf {
            // Rejection sampling: 248 = 4 * 62, so values below it map uniformly.
            if byte < 248 && out.len() < len {
                out.push(BASE62[(byte % 62) as usize] as char);
            }
        }
    }
    Ok(out)
}

/// Builds a key `<prefix>_<live|test>_<body><checksum>` in the default segments (for tests and
/// fixtures; a deployment mints with [`KeyFormat::generate`]).
pub fn assemble(prefix: &str, env: KeyEnv, body: &str) -> PlaintextKey {
    assemble_parts(prefix, Some(env.as_str()), body)
}

/// Generates a fresh random key `<prefix>_<live|test>_…` in the default segments (for tests and
/// fixtures; a deployment mints with [`KeyFormat::generate`]).
pub fn generate(prefix: &str, env: KeyEnv) -> Result<PlaintextKey, getrandom::Error> {
    Ok(assemble(prefix, env, &random_base62(BODY_LEN)?))
}

/// Generates a stable record id: `key_` + 16 random base62 characters.
pub fn generate_id() -> Result<String, getrandom::Error> {
    Ok(format!("key_{}", random_base62(16)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kg() -> KeyFormat {
        KeyFormat::default()
    }

    fn sample(env: KeyEnv) -> PlaintextKey {
        assemble("kg", env, "abcdefghijklmnopqrstuvwxyzABCDEF")
    }

    #[test]
    fn generated_keys_parse_back_with_their_environment() {
        for env in [KeyEnv::Live, KeyEnv::Test] {
            let key = generate("kg", env).unwrap();
            let parsed = kg().parse(key.expose()).unwrap();
            assert_eq!(parsed.env, env);
            assert_eq!(parsed.key.expose(), key.expose());
        }
    }

    #[test]
    fn generated_keys_have_documented_shape() {
        let key = generate("acme", KeyEnv::Live).unwrap();
        let text = key.expose();
        assert!(text.starts_with("acme_live_"));
        assert_eq!(text.len(), "acme_live_".len() + BODY_LEN + CHECKSUM_LEN);
        assert!(text["acme_live_".len()..].bytes().all(|b| b.is_ascii_alphanumeric()));
    }

    #[test]
    fn two_generated_keys_differ() {
        let a = generate("kg", KeyEnv::Live).unwrap();
        let b = generate("kg", KeyEnv::Live).unwrap();
        assert_ne!(a.expose(), b.expose());
    }

    #[test]
    fn random_body_uses_whole_alphabet() {
        let text = random_base62(20_000).unwrap();
        let distinct: std::collections::HashSet<char> = text.chars().collect();
        assert_eq!(distinct.len(), 62);
    }

    #[test]
    fn parse_rejects_each_kind_of_malformed_key() {
        let good = sample(KeyEnv::Live).expose().to_owned();
        let mut flipped = good.clone().into_bytes();
        let last = flipped.len() - 1;
        flipped[last] = if flipped[last] == b'A' { b'B' } else { b'A' };
        let flipped = String::from_utf8(flipped).unwrap();
        let mut body_typo = good.clone().into_bytes();
        body_typo[10] = if body_typo[10] == b'x' { b'y' } else { b'x' };
        let body_typo = String::from_utf8(body_typo).unwrap();
        let rows: Vec<(&str, String, KeyFormatError)> = vec![
            ("empty", String::new(), KeyFormatError::BadLength),
            ("one char short", good[..good.len() - 1].to_owned(), KeyFormatError::BadLength),
            ("one char long", format!("{good}A"), KeyFormatError::BadLength),
            ("8 KB", "a".repeat(8192), KeyFormatError::BadLength),
            ("other prefix", good.replacen("kg_", "zz_", 1), KeyFormatError::WrongPrefix),
            ("no underscore after prefix", good.replacen("kg_", "kgX", 1), KeyFormatError::WrongPrefix),
            ("unknown env", good.replacen("_live_", "_prod_", 1), KeyFormatError::WrongEnvironment),
            ("uppercase env", good.replacen("_live_", "_LIVE_", 1), KeyFormatError::WrongEnvironment),
            ("dash in body", good.replacen('a', "-", 1), KeyFormatError::BadCharacter),
            ("space in body", good.replacen('b', " ", 1), KeyFormatError::BadCharacter),
            ("flipped checksum char", flipped, KeyFormatError::BadChecksum),
            ("typo in body", body_typo, KeyFormatError::BadChecksum),
        ];
        for (what, input, expected) in rows {
            assert_eq!(kg().parse(&input).unwrap_err(), expected, "{what}");
        }
    }

    #[test]
    fn parse_rejects_non_ascii_without_panicking() {
        let good = sample(KeyEnv::Live).expose().to_owned();
        // Same byte length as a valid key but with a multi-byte character straddling offsets.
        let tricky = format!("kg_live_é{}", &good["kg_live_".len() + 2..]);
        assert_eq!(tricky.len(), good.len());
        assert!(kg().parse(&tricky).is_err());
        let env_split = format!("kg_liv\u{e9}{}", &good["kg_live_".len()..]);
        assert!(kg().parse(&env_split).is_err());
    }

    const BODY: &str = "abcdefghijklmnopqrstuvwxyzABCDEF";

    fn format(prefixes: &[&str], segments: &[(&str, KeyEnv)]) -> KeyFormat {
        KeyFormat::new(prefixes.iter().map(|p| p.to_string()).collect(), segments.iter().map(|(s, e)| (s.to_string(), *e)).collect())
            .unwrap()
    }

    /// OptimoCMS-like: `optimo` mints, `kg` still accepted; `live` and `sandbox` (test).
    fn optimo() -> KeyFormat {
        format(&["optimo", "kg"], &[("live", KeyEnv::Live), ("sandbox", KeyEnv::Test)])
    }

    /// Ovok-like: `cmspub`, no segment.
    fn cmspub() -> KeyFormat {
        format(&["cmspub"], &[])
    }

    /// `<head><BODY><checksum>`: a key with a valid checksum whatever `head` is.
    fn with_checksum(head: &str) -> String {
        let text = format!("{head}{BODY}");
        let sum = checksum(&text);
        text + &sum
    }

    #[test]
    fn default_format_is_todays_format() {
        let format = KeyFormat::default();
        assert_eq!(format.prefixes(), ["kg"]);
        assert_eq!(format.segments(), KeyFormat::default_segments().as_slice());
        for env in [KeyEnv::Live, KeyEnv::Test] {
            assert_eq!(format.assemble(env, BODY).unwrap().expose(), assemble("kg", env, BODY).expose(), "{env}");
        }
    }

    #[test]
    fn each_accepted_form_parses_with_its_environment() {
        let rows: Vec<(&str, KeyFormat, String, KeyEnv)> = vec![
            ("default live", kg(), with_checksum("kg_live_"), KeyEnv::Live),
            ("default test", kg(), with_checksum("kg_test_"), KeyEnv::Test),
            ("first prefix, live", optimo(), with_checksum("optimo_live_"), KeyEnv::Live),
            ("sandbox maps to test", optimo(), with_checksum("optimo_sandbox_"), KeyEnv::Test),
            ("second prefix, sandbox", optimo(), with_checksum("kg_sandbox_"), KeyEnv::Test),
            ("second prefix, live", optimo(), with_checksum("kg_live_"), KeyEnv::Live),
            ("no segment: live", cmspub(), with_checksum("cmspub_"), KeyEnv::Live),
            (
                "two segments for test, the second",
                format(&["kg"], &[("live", KeyEnv::Live), ("sandbox", KeyEnv::Test), ("test", KeyEnv::Test)]),
                with_checksum("kg_test_"),
                KeyEnv::Test,
            ),
            (
                "longest prefix and segment",
                format(&["abcdefghijkl"], &[("abcdefghijklmnop", KeyEnv::Live)]),
                with_checksum("abcdefghijkl_abcdefghijklmnop_"),
                KeyEnv::Live,
            ),
        ];
        for (what, format, input, env) in rows {
            let parsed = format.parse(&input).unwrap_or_else(|e| panic!("{what}: {e:?}"));
            assert_eq!(parsed.env, env, "{what}");
            assert_eq!(parsed.key.expose(), input, "{what}");
            assert!(input.len() <= MAX_KEY_LEN, "{what}");
        }
    }

    #[test]
    fn each_refusal_names_its_reason() {
        let mut bad_sum = with_checksum("optimo_live_").into_bytes();
        let last = bad_sum.len() - 1;
        bad_sum[last] = if bad_sum[last] == b'A' { b'B' } else { b'A' };
        let bad_sum = String::from_utf8(bad_sum).unwrap();
        let rows: Vec<(&str, KeyFormat, String, KeyFormatError)> = vec![
            ("prefix not accepted", optimo(), with_checksum("acme12_live_"), KeyFormatError::WrongPrefix),
            ("a prefix's prefix", optimo(), with_checksum("optim_live__"), KeyFormatError::WrongPrefix),
            (
                "old prefix before it is added",
                format(&["optimo"], &[("live", KeyEnv::Live)]),
                with_checksum("kg_live_"),
                KeyFormatError::BadLength,
            ),
            (
                "old prefix before it is added, where the lengths agree",
                format(&["optimo"], &[("live", KeyEnv::Live), ("sandbox", KeyEnv::Test)]),
                with_checksum("kg_sandbox_x"),
                KeyFormatError::WrongPrefix,
            ),
            ("unknown segment", optimo(), with_checksum("optimo_prod_"), KeyFormatError::WrongEnvironment),
            ("default segment not configured", optimo(), with_checksum("optimo_test_"), KeyFormatError::WrongEnvironment),
            ("uppercase segment", optimo(), with_checksum("optimo_LIVE_"), KeyFormatError::WrongEnvironment),
            ("segment present when none is configured", cmspub(), with_checksum("cmspub_live_"), KeyFormatError::BadLength),
            (
                "segment present when none is configured, the length fitting another prefix",
                format(&["cmspub", "cmspubabcde"], &[]),
                with_checksum("cmspub_abcd_"),
                KeyFormatError::BadLength,
            ),
            (
                "segment present when none is configured, inside a body's length",
                cmspub(),
                with_checksum("cmspub_live_")[..45].to_string(),
                KeyFormatError::BadCharacter,
            ),
            ("no segment when segments are configured", optimo(), with_checksum("optimo_1234"), KeyFormatError::WrongEnvironment),
            ("unknown segment under the second prefix", optimo(), with_checksum("kg_optimoo_"), KeyFormatError::WrongEnvironment),
            ("a length no prefix/segment pair makes", optimo(), with_checksum("kg_optimo_"), KeyFormatError::BadLength),
            ("checksum", optimo(), bad_sum, KeyFormatError::BadChecksum),
            ("empty", cmspub(), String::new(), KeyFormatError::BadLength),
            ("longer than any key", optimo(), "a".repeat(MAX_KEY_LEN + 1), KeyFormatError::BadLength),
            ("128 bytes", optimo(), "a".repeat(128), KeyFormatError::BadLength),
        ];
        for (what, format, input, expected) in rows {
            assert_eq!(format.parse(&input).unwrap_err(), expected, "{what}: {input}");
        }
    }

    #[test]
    fn a_key_minted_under_the_old_prefix_parses_after_a_new_prefix_is_put_first() {
        let old = kg().generate(KeyEnv::Test).unwrap();
        let migrated = format(&["optimo", "kg"], &[("live", KeyEnv::Live), ("sandbox", KeyEnv::Test), ("test", KeyEnv::Test)]);
        assert_eq!(migrated.parse(old.expose()).unwrap().env, KeyEnv::Test);
        let new = migrated.generate(KeyEnv::Test).unwrap();
        assert!(new.expose().starts_with("optimo_sandbox_"), "the first prefix and first test segment mint");
        assert_eq!(migrated.parse(new.expose()).unwrap().env, KeyEnv::Test);
        assert!(kg().parse(new.expose()).is_err(), "the old format does not know the new prefix");
    }

    #[test]
    fn minting_follows_the_first_prefix_and_segment_and_refuses_envs_without_one() {
        let key = optimo().generate(KeyEnv::Live).unwrap();
        assert!(key.expose().starts_with("optimo_live_"));
        assert_eq!(key.expose().len(), "optimo_live_".len() + BODY_LEN + CHECKSUM_LEN);
        let key = cmspub().generate(KeyEnv::Live).unwrap();
        assert!(key.expose().starts_with("cmspub_"));
        assert_eq!(key.expose().len(), "cmspub_".len() + BODY_LEN + CHECKSUM_LEN);
        assert!(key.hint().starts_with("cmspub_…") && !key.hint().contains(&key.expose()[7..36]), "{}", key.hint());
        assert!(!cmspub().mints(KeyEnv::Test));
        assert!(matches!(cmspub().generate(KeyEnv::Test), Err(MintError::EnvironmentNotInFormat(KeyEnv::Test))));
        let live_only = format(&["kg"], &[("live", KeyEnv::Live)]);
        assert!(live_only.mints(KeyEnv::Live) && !live_only.mints(KeyEnv::Test));
        assert!(kg().mints(KeyEnv::Test));
    }

    #[test]
    fn invalid_formats_are_refused_naming_the_part() {
        let prefixes = |p: &[&str]| p.iter().map(|p| p.to_string()).collect::<Vec<_>>();
        let segments = |s: &[(&str, KeyEnv)]| s.iter().map(|(s, e)| (s.to_string(), *e)).collect::<Vec<_>>();
        let live = [("live", KeyEnv::Live)];
        let rows: Vec<(&str, Vec<String>, Vec<(String, KeyEnv)>, bool)> = vec![
            ("no prefix", prefixes(&[]), segments(&live), true),
            ("bad prefix", prefixes(&["kg", "K_G"]), segments(&live), true),
            ("duplicate prefix", prefixes(&["kg", "kg"]), segments(&live), true),
            ("empty segment", prefixes(&["kg"]), segments(&[("", KeyEnv::Live)]), false),
            ("segment with _", prefixes(&["kg"]), segments(&[("li_ve", KeyEnv::Live)]), false),
            ("uppercase segment", prefixes(&["kg"]), segments(&[("Live", KeyEnv::Live)]), false),
            ("17-char segment", prefixes(&["kg"]), segments(&[("abcdefghijklmnopq", KeyEnv::Live)]), false),
            ("duplicate segment", prefixes(&["kg"]), segments(&[("live", KeyEnv::Live), ("live", KeyEnv::Test)]), false),
            ("no live segment", prefixes(&["kg"]), segments(&[("sandbox", KeyEnv::Test)]), false),
        ];
        for (what, prefixes, segments, is_prefix_problem) in rows {
            match KeyFormat::new(prefixes, segments) {
                Err(KeyFormatProblem::Prefixes(_)) => assert!(is_prefix_problem, "{what}"),
                Err(KeyFormatProblem::Segments(_)) => assert!(!is_prefix_problem, "{what}"),
                Ok(_) => panic!("{what}: accepted"),
            }
        }
    }

    #[test]
    fn parse_never_panics_on_odd_input_for_any_format() {
        let inputs = [
            "_".to_string(),
            "__".into(),
            "kg_".into(),
            "kg__".into(),
            "cmspub_é".into(),
            "optimo_sandbox_".into(),
            "ü".repeat(23),
            "_".repeat(46),
            format!("kg_live_{}", "é".repeat(19)),
        ];
        for format in [kg(), optimo(), cmspub()] {
            for input in &inputs {
                assert!(format.parse(input).is_err(), "{input}");
            }
        }
    }

    #[test]
    fn crc32_is_the_ieee_crc() {
        assert_eq!(crc32(b""), 0);
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        let mut text = Vec::new();
        for i in 0..300u32 {
            assert_eq!(crc32(&text), crc32fast::hash(&text), "{} bytes", text.len());
            text.push((i.wrapping_mul(2_654_435_761) >> 13) as u8);
        }
    }

    #[test]
    fn checksum_is_six_base62_chars_and_detects_change() {
        let a = checksum("kg_live_abc");
        assert_eq!(a.len(), 6);
        assert!(a.bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_ne!(a, checksum("kg_live_abd"));
        // u32::MAX fits in 6 base62 digits; the largest value must not overflow the width.
        assert_eq!(&base62_fixed(u64::from(u32::MAX)), b"4gfFC3");
        assert_eq!(&base62_fixed(0), b"000000");
    }

    #[test]
    fn plaintext_key_never_prints_itself() {
        let key = sample(KeyEnv::Test);
        let secret_part = &key.expose()[8..36];
        for printed in [format!("{key}"), format!("{key:?}"), key.hint()] {
            assert!(!printed.contains(secret_part), "{printed}");
            assert!(printed.starts_with("kg_test_") || printed.starts_with("PlaintextKey(kg_test_"));
        }
        assert!(key.hint().ends_with(&key.expose()[key.expose().len() - 4..]));
    }

    #[test]
    fn hash_is_sha256_hex_and_storage_key_is_prefixed() {
        let hash = KeyHash::of("abc");
        assert_eq!(hash.to_hex(), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        assert_eq!(hash.storage_key(), format!("key:{}", hash.to_hex()));
        assert_eq!(KeyHash::from_hex(&hash.to_hex()), Some(hash));
        assert_eq!(hash.short(), "ba7816bf");
        assert!(KeyHash::from_hex("zz").is_none());
    }

    #[test]
    fn prefix_rules() {
        for (prefix, ok) in [
            ("kg", true),
            ("acme2", true),
            ("abcdefghijkl", true),
            ("k", false),
            ("abcdefghijklm", false),
            ("Kg", false),
            ("k_g", false),
            ("", false),
        ] {
            assert_eq!(is_valid_prefix(prefix), ok, "{prefix}");
        }
    }
}
