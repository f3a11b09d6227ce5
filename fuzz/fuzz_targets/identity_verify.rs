//! The identity token (`X-Keygate-Identity`): `keygate_verify::verify` on arbitrary tokens,
//! methods and paths must never panic, and must accept only the one spelling keygate writes (an
//! accepted token is exactly the token its claims sign to). Any identity, with arbitrary claim
//! text (quotes, backslashes, control characters, non-ASCII), signs to a token that verifies
//! back to the same claims for its own request, and to nothing else.
#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use keygate_core::signature::{verify, Audience, SignedIdentity, VerifyError};
use libfuzzer_sys::fuzz_target;

const SECRET: &[u8] = b"fuzz-signing-secret-0123456789";
const AUDIENCE: &str = "https://origin.example";

fuzz_target!(|data: &[u8]| {
    let audience = Audience::from_url(AUDIENCE).expect("audience");
    let mut input = Unstructured::new(data);
    let (Ok(token), Ok(method), Ok(path), Ok(now)) =
        (<&str>::arbitrary(&mut input), <&str>::arbitrary(&mut input), <&str>::arbitrary(&mut input), u64::arbitrary(&mut input))
    else {
        return;
    };
    // 1. An arbitrary token: never a panic; accepted only in keygate's own spelling.
    if let Ok(identity) = verify(SECRET, &audience, method, path, Some(token), now, 30) {
        assert_eq!(identity.sign(SECRET), token, "accepted a token keygate would not write");
    }
    // 2. An arbitrary identity round-trips through its token, for its own request only.
    let issued_at = now / 2;
    let identity = SignedIdentity {
        audience: AUDIENCE.into(),
        issued_at,
        expires_at: issued_at + 60,
        method: method.to_ascii_uppercase(),
        path_and_query: path.into(),
        key_id: token.chars().take(40).collect(),
        project: token.chars().rev().take(20).collect(),
        env: "live".into(),
        scopes: method.into(),
    };
    let signed = identity.sign(SECRET);
    assert_eq!(verify(SECRET, &audience, method, path, Some(&signed), issued_at, 0), Ok(identity.clone()));
    let other_path = format!("{path}x");
    assert_eq!(verify(SECRET, &audience, method, &other_path, Some(&signed), issued_at, 0), Err(VerifyError::Request));
    assert_eq!(verify(b"another-secret", &audience, method, path, Some(&signed), issued_at, 0), Err(VerifyError::Signature));
});
