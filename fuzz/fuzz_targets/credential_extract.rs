//! Credential extraction: `keygate_core::credential::extract` on any pair of optional header values
//! must never panic, and what it returns must be a single token taken from one of them.
#![no_main]

use keygate_core::credential::{extract, Credential};
use keygate_core::error::GatewayError;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: (Option<&str>, Option<&str>)| {
    let (authorization, api_key) = input;
    match extract(authorization, api_key) {
        Ok(Credential(token)) => {
            assert!(!token.is_empty(), "empty credential accepted");
            assert!(!token.contains([',', ' ', '\t']), "credential {token:?} is not a single token");
            assert_eq!(token, token.trim(), "credential {token:?} keeps surrounding whitespace");
            let from_header = authorization.is_some_and(|a| a.contains(token));
            let from_api_key = api_key.is_some_and(|k| k.trim() == token);
            assert!(from_header || from_api_key, "credential {token:?} comes from neither header");
            // A non-empty X-Api-Key is what was chosen (a Bearer token must agree with it).
            if let Some(k) = api_key.map(str::trim).filter(|k| !k.is_empty()) {
                assert_eq!(k, token, "X-Api-Key {k:?} disagrees with the chosen credential");
            }
        }
        Err(GatewayError::MissingKey) => {
            // Nothing usable: a non-empty X-Api-Key would have been used or refused.
            assert!(api_key.is_none_or(|k| k.trim().is_empty()), "X-Api-Key {api_key:?} ignored");
        }
        Err(GatewayError::BadRequest { reason }) => assert!(!reason.is_empty()),
        Err(other) => panic!("unexpected error {other:?}"),
    }
    // Deterministic.
    assert_eq!(extract(authorization, api_key), extract(authorization, api_key));
});
