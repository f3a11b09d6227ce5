//! Key format: `<prefix>_<env>_<body><checksum>`.
//!
//! - `prefix`: from config (`KEY_PREFIX`), 2–12 lowercase ASCII alphanumerics.
//! - `env`: `live` or `test`.
//! - `body`: 32 base62 characters from a CSPRNG (≈190 bits of entropy).
//! - `checksum`: CRC32 of everything before it, as 6 base62 characters (left-padded with `0`).
//!
//! Parsing is pure and rejects a wrong prefix, environment, length, alphabet or checksum
//! without any I/O, so typos and garbage never reach KV. A plaintext key only ever lives in a
//! [`PlaintextKey`], whose `Debug`/`Display` print a redacted hint; storage sees [`KeyHash`].

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
/// No valid key is longer than this (12-char prefix + `_test_` + body + checksum = 56).
pub const MAX_KEY_LEN: usize = 64;

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
    /// The prefix is not the configured one.
    WrongPrefix,
    /// The environment segment is neither `live` nor `test`.
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
    (2..=12).contains(&prefix.len())
        && prefix.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
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

/// Checks the format and checksum of `input` against the configured `prefix`. No I/O.
pub fn parse(input: &str, prefix: &str) -> Result<ParsedKey, KeyFormatError> {
    let bytes = input.as_bytes();
    let min_len = prefix.len() + "_live_".len() + BODY_LEN + CHECKSUM_LEN;
    if bytes.len() != min_len {
        return Err(KeyFormatError::BadLength);
    }
    let rest = match input.strip_prefix(prefix).and_then(|r| r.strip_prefix('_')) {
        Some(rest) => rest,
        None => return Err(KeyFormatError::WrongPrefix),
    };
    let env = match rest.get(..5) {
        Some("live_") => KeyEnv::Live,
        Some("test_") => KeyEnv::Test,
        _ => return Err(KeyFormatError::WrongEnvironment),
    };
    let tail = &rest.as_bytes()[5..];
    if !tail.iter().all(u8::is_ascii_alphanumeric) {
        return Err(KeyFormatError::BadCharacter);
    }
    let split = input.len() - CHECKSUM_LEN;
    let expected = checksum(&input[..split]);
    if !bool::from(expected.as_bytes().ct_eq(&bytes[split..])) {
        return Err(KeyFormatError::BadChecksum);
    }
    Ok(ParsedKey { key: PlaintextKey(input.to_owned()), env })
}

/// CRC32 of `text` as 6 base62 characters.
pub fn checksum(text: &str) -> String {
    encode_base62_fixed(u64::from(crc32(text.as_bytes())), CHECKSUM_LEN)
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

fn encode_base62_fixed(mut value: u64, width: usize) -> String {
    let mut out = vec![b'0'; width];
    for slot in out.iter_mut().rev() {
        *slot = BASE62[(value % 62) as usize];
        value /= 62;
    }
    // Only ASCII from BASE62 was written.
    String::from_utf8(out).unwrap_or_default()
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

/// Builds a key from a given body (exposed for tests and fixtures; use [`generate`] for real keys).
pub fn assemble(prefix: &str, env: KeyEnv, body: &str) -> PlaintextKey {
    let head = format!("{prefix}_{}_{body}", env.as_str());
    let sum = checksum(&head);
    PlaintextKey(head + &sum)
}

/// Generates a fresh random key.
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

    fn sample(env: KeyEnv) -> PlaintextKey {
        assemble("kg", env, "abcdefghijklmnopqrstuvwxyzABCDEF")
    }

    #[test]
    fn generated_keys_parse_back_with_their_environment() {
        for env in [KeyEnv::Live, KeyEnv::Test] {
            let key = generate("kg", env).unwrap();
            let parsed = parse(key.expose(), "kg").unwrap();
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
            assert_eq!(parse(&input, "kg").unwrap_err(), expected, "{what}");
        }
    }

    #[test]
    fn parse_rejects_non_ascii_without_panicking() {
        let good = sample(KeyEnv::Live).expose().to_owned();
        // Same byte length as a valid key but with a multi-byte character straddling offsets.
        let tricky = format!("kg_live_é{}", &good["kg_live_".len() + 2..]);
        assert_eq!(tricky.len(), good.len());
        assert!(parse(&tricky, "kg").is_err());
        let env_split = format!("kg_liv\u{e9}{}", &good["kg_live_".len()..]);
        assert!(parse(&env_split, "kg").is_err());
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
        assert_eq!(encode_base62_fixed(u64::from(u32::MAX), 6), "4gfFC3");
        assert_eq!(encode_base62_fixed(0, 6), "000000");
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
        assert_eq!(
            hash.to_hex(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(hash.storage_key(), format!("key:{}", hash.to_hex()));
        assert_eq!(KeyHash::from_hex(&hash.to_hex()), Some(hash));
        assert_eq!(hash.short(), "ba7816bf");
        assert!(KeyHash::from_hex("zz").is_none());
    }

    #[test]
    fn prefix_rules() {
        for (prefix, ok) in [("kg", true), ("acme2", true), ("abcdefghijkl", true), ("k", false),
            ("abcdefghijklm", false), ("Kg", false), ("k_g", false), ("", false)] {
            assert_eq!(is_valid_prefix(prefix), ok, "{prefix}");
        }
    }
}
