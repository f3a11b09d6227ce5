//! Key parsing and checksum: `KeyFormat::parse` on arbitrary strings must never panic, must
//! accept exactly the strings `assemble` produces, and must reject any single-byte change of a
//! valid key (CRC32 catches every burst error of up to 32 bits). Formats are fuzzed too: one or
//! two prefixes, the default segments, a fuzzed segment per environment, or no segment.
#![no_main]

use arbitrary::Unstructured;
use keygate_core::key::{self, KeyEnv, KeyFormat, BASE62, BODY_LEN, CHECKSUM_LEN};
use libfuzzer_sys::fuzz_target;

const PREFIX_ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";

/// Parses `input` with `format` and checks what an accepted key must look like.
fn check_parse(input: &str, format: &KeyFormat) {
    let Ok(parsed) = format.parse(input) else { return };
    let head_len = input.len() - BODY_LEN - CHECKSUM_LEN;
    let head = &input[..head_len];
    let (prefix, segment) = head.trim_end_matches('_').split_once('_').unwrap_or((head.trim_end_matches('_'), ""));
    assert!(format.prefixes().iter().any(|p| p == prefix), "accepted key has prefix {prefix:?}");
    if format.segments().is_empty() {
        assert_eq!(segment, "", "accepted key has a segment though none is configured");
        assert_eq!(parsed.env, KeyEnv::Live);
    } else {
        assert!(format.segments().iter().any(|(s, env)| s == segment && *env == parsed.env), "accepted segment {segment:?}");
    }
    let body = &input[head_len..input.len() - CHECKSUM_LEN];
    assert!(body.bytes().all(|b| BASE62.contains(&b)), "accepted body is not base62");
    // Accepted ⇔ its checksum is the CRC of the rest.
    assert_eq!(key::checksum(&input[..input.len() - CHECKSUM_LEN]), &input[input.len() - CHECKSUM_LEN..]);
    assert_eq!(parsed.key.expose(), input);
    // Printing never shows the body.
    for printed in [format!("{:?}", parsed.key), format!("{}", parsed.key), parsed.key.hint()] {
        assert!(!printed.contains(body), "printed key leaks its body: {printed}");
    }
}

fuzz_target!(|data: &[u8]| {
    // 1. The whole input as a key, against the default format.
    let default = KeyFormat::default();
    if let Ok(text) = std::str::from_utf8(data) {
        check_parse(text, &default);
    }

    // 2. Structured: a fuzzed valid format, an environment, a 32-char base62 body, and a
    //    candidate string.
    let mut u = Unstructured::new(data);
    let word = |u: &mut Unstructured, lengths: std::ops::RangeInclusive<usize>| -> String {
        let len = u.int_in_range(lengths.clone()).unwrap_or(*lengths.start());
        (0..len).map(|_| PREFIX_ALPHABET[u.choose_index(PREFIX_ALPHABET.len()).unwrap_or(0)] as char).collect()
    };
    let prefix = word(&mut u, 2..=12);
    assert!(key::is_valid_prefix(&prefix));
    let mut prefixes = vec![prefix.clone()];
    if u.arbitrary::<bool>().unwrap_or(false) {
        prefixes.push(word(&mut u, 2..=12));
    }
    let segments = match u.int_in_range(0..=2u8).unwrap_or(0) {
        0 => KeyFormat::default_segments(),
        1 => vec![(word(&mut u, 1..=16), KeyEnv::Live), (word(&mut u, 1..=16), KeyEnv::Test)],
        _ => Vec::new(),
    };
    // Duplicates are refused by KeyFormat::new; nothing more to check for them.
    let Ok(format) = KeyFormat::new(prefixes, segments) else { return };
    let env = if !format.segments().is_empty() && u.arbitrary::<bool>().unwrap_or(false) { KeyEnv::Test } else { KeyEnv::Live };
    let body: String = (0..BODY_LEN).map(|_| BASE62[u.choose_index(BASE62.len()).unwrap_or(0)] as char).collect();

    // Invariant: every assembled key parses back, with its environment.
    let key = format.assemble(env, &body).unwrap_or_else(|e| panic!("cannot mint {env}: {e:?}"));
    assert!(key.expose().starts_with(&format!("{prefix}_")));
    let parsed = format.parse(key.expose()).unwrap_or_else(|e| panic!("assembled key {:?} does not parse: {e:?}", key.expose()));
    assert_eq!(parsed.env, env);
    // ...and not in the default format unless that format accepts its prefix and segment.
    if !default.prefixes().contains(&prefix) {
        assert!(default.parse(key.expose()).is_err());
    }

    // Any single-byte substitution (keeping valid UTF-8) is refused.
    let position = u.choose_index(key.expose().len()).unwrap_or(0);
    let replacement: u8 = u.int_in_range(0..=0x7f).unwrap_or(b'!');
    let mut changed = key.expose().as_bytes().to_vec();
    if changed[position] != replacement {
        changed[position] = replacement;
        let changed = String::from_utf8(changed).expect("ASCII");
        assert!(format.parse(&changed).is_err(), "one-byte change accepted: {changed:?}");
    }

    // The rest of the input as a candidate key for the fuzzed prefix, also spliced into the
    // valid key so lengths line up often.
    let rest = u.take_rest();
    if let Ok(text) = std::str::from_utf8(rest) {
        check_parse(text, &format);
        let valid = key.expose();
        let at = position.min(valid.len());
        if valid.is_char_boundary(at) {
            let spliced: String = format!("{}{}", &valid[..at], text);
            let spliced: String = spliced.chars().take(valid.len()).collect();
            check_parse(&spliced, &format);
        }
    }
});
