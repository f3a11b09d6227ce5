//! Key parsing and checksum: `keygate::key::parse` on arbitrary strings must never panic, must
//! accept exactly the strings `assemble` produces, and must reject any single-byte change of a
//! valid key (CRC32 catches every burst error of up to 32 bits).
#![no_main]

use arbitrary::Unstructured;
use keygate::key::{self, KeyEnv, BASE62, BODY_LEN, CHECKSUM_LEN};
use libfuzzer_sys::fuzz_target;

const PREFIX_ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";

/// Parses `input` against `prefix` and checks what an accepted key must look like.
fn check_parse(input: &str, prefix: &str) {
    let Ok(parsed) = key::parse(input, prefix) else { return };
    let head = format!("{prefix}_{}_", parsed.env.as_str());
    assert!(input.starts_with(&head), "accepted key does not start with {head:?}");
    assert_eq!(input.len(), head.len() + BODY_LEN + CHECKSUM_LEN);
    let body = &input[head.len()..input.len() - CHECKSUM_LEN];
    assert!(body.bytes().all(|b| BASE62.contains(&b)), "accepted body is not base62");
    // Accepted ⇔ it is exactly what assemble() builds from its parts.
    assert_eq!(key::assemble(prefix, parsed.env, body).expose(), input);
    assert_eq!(parsed.key.expose(), input);
    // Printing never shows the body.
    for printed in [format!("{:?}", parsed.key), format!("{}", parsed.key), parsed.key.hint()] {
        assert!(!printed.contains(body), "printed key leaks its body: {printed}");
    }
}

fuzz_target!(|data: &[u8]| {
    // 1. The whole input as a key, against the default prefix.
    if let Ok(text) = std::str::from_utf8(data) {
        check_parse(text, "kg");
    }

    // 2. Structured: a fuzzed valid prefix, an environment, a 32-char base62 body, and a
    //    candidate string.
    let mut u = Unstructured::new(data);
    let prefix_len = u.int_in_range(2..=12).unwrap_or(2);
    let prefix: String = (0..prefix_len)
        .map(|_| PREFIX_ALPHABET[u.choose_index(PREFIX_ALPHABET.len()).unwrap_or(0)] as char)
        .collect();
    assert!(key::is_valid_prefix(&prefix));
    let env = if u.arbitrary::<bool>().unwrap_or(false) { KeyEnv::Test } else { KeyEnv::Live };
    let body: String =
        (0..BODY_LEN).map(|_| BASE62[u.choose_index(BASE62.len()).unwrap_or(0)] as char).collect();

    // Invariant: every assembled key parses back, with its environment.
    let key = key::assemble(&prefix, env, &body);
    let parsed = key::parse(key.expose(), &prefix)
        .unwrap_or_else(|e| panic!("assembled key {:?} does not parse: {e:?}", key.expose()));
    assert_eq!(parsed.env, env);
    // ...and only against its own prefix.
    if prefix != "kg" {
        assert!(key::parse(key.expose(), "kg").is_err());
    }

    // Any single-byte substitution (keeping valid UTF-8) is refused.
    let position = u.choose_index(key.expose().len()).unwrap_or(0);
    let replacement: u8 = u.int_in_range(0..=0x7f).unwrap_or(b'!');
    let mut changed = key.expose().as_bytes().to_vec();
    if changed[position] != replacement {
        changed[position] = replacement;
        let changed = String::from_utf8(changed).expect("ASCII");
        assert!(key::parse(&changed, &prefix).is_err(), "one-byte change accepted: {changed:?}");
    }

    // The rest of the input as a candidate key for the fuzzed prefix, also spliced into the
    // valid key so lengths line up often.
    let rest = u.take_rest();
    if let Ok(text) = std::str::from_utf8(rest) {
        check_parse(text, &prefix);
        let valid = key.expose();
        let at = position.min(valid.len());
        if valid.is_char_boundary(at) {
            let spliced: String = format!("{}{}", &valid[..at], text);
            let spliced: String = spliced.chars().take(valid.len()).collect();
            check_parse(&spliced, &prefix);
        }
    }
});
