//! Forwarding plan: where a granted request goes and how its headers change. Pure.
//!
//! Live keys go to `ORIGIN_URL`, test keys to `ORIGIN_URL_TEST` (absent → `ENVIRONMENT_MISMATCH`).
//! Method, path, query and body are kept. `Host`, the credential headers and every client-sent
//! `X-Keygate-*` header are removed ([`strips_header`], the one statement of that rule);
//! one header is added, `X-Keygate-Identity`: the identity token (an HS256 JWT, see
//! [`crate::signature`]) signed with the chosen origin's signer for the chosen origin's audience,
//! this method and the path and query the origin receives. It is signed per request, not cached
//! per key: binding the token to the request costs one HMAC-SHA256 over its ~380-byte signing
//! input (about 3 µs natively, `identity_sign` in `crates/core/benches/core.rs`), while a per-key
//! token would be replayable against any route for its lifetime (docs/identity.md has the
//! trade-off). [`outbound_headers`] turns both into what the JavaScript that builds the outbound
//! request applies without deciding anything.

use crate::boundary::{fields, BoundaryError, Encoder};
use crate::config::Config;
use crate::error::GatewayError;
use crate::key::KeyEnv;
use crate::policy::Grant;
use crate::signature::{SignedIdentity, HEADER_IDENTITY, HEADER_PREFIX, TOKEN_LIFETIME_SECONDS};

/// What the glue must do to forward a granted request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForwardPlan {
    /// Full origin URL including path and query.
    pub url: String,
    /// Headers to add after stripping (lowercase names).
    pub add_headers: Vec<(&'static str, String)>,
}

/// Whether a client header must not reach the origin: `host` (the origin's own comes from its
/// URL), the two credential headers, and every `x-keygate-*` header (only keygate sets those).
pub fn strips_header(config: &Config, lowercase_name: &str) -> bool {
    lowercase_name == "host"
        || lowercase_name == config.auth_header
        || lowercase_name == config.api_key_header
        || lowercase_name.starts_with(HEADER_PREFIX)
}

/// The header changes of a forwarded request, encoded for the JavaScript that builds it
/// ([`crate::boundary`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundHeaders {
    /// The incoming header names to drop, one field each.
    pub strip: String,
    /// The headers to add: name, value, name, value…
    pub add: String,
}

/// Which of the incoming `header_names` (a list as they crossed the boundary) to drop, by
/// [`strips_header`], and the plan's headers to add. A value holding `\n` or `\0` is
/// [`BoundaryError::Unencodable`] (the runtime would refuse it as a header value anyway).
pub fn outbound_headers(config: &Config, plan: &ForwardPlan, header_names: &str) -> Result<OutboundHeaders, BoundaryError> {
    let mut strip = Encoder::with_capacity(64);
    for name in fields(header_names).filter(|name| strips_header(config, name)) {
        strip.field(name)?;
    }
    let mut add = Encoder::with_capacity(256);
    for (name, value) in &plan.add_headers {
        add.field(name)?;
        add.field(value)?;
    }
    Ok(OutboundHeaders { strip: strip.finish(), add: add.finish() })
}

/// What follows the authority of an absolute URL (`http://h:1/p?q` → `/p?q`), `None` when
/// nothing does (`http://h:1`).
pub fn after_authority(url: &str) -> Option<&str> {
    let after_scheme = url.find("://").map(|i| i + 3).unwrap_or(0);
    url[after_scheme..].find('/').map(|i| &url[after_scheme + i..])
}

/// The path part of an origin URL (`http://h:1/base` → `/base`, `http://h:1` → ``).
fn base_path(origin: &str) -> &str {
    after_authority(origin).unwrap_or("")
}

/// Builds the plan for `grant` at `now_seconds`.
pub fn plan(config: &Config, grant: &Grant, method: &str, path_and_query: &str, now_seconds: u64) -> Result<ForwardPlan, GatewayError> {
    let target = match grant.env {
        KeyEnv::Live => &config.origin_live,
        KeyEnv::Test => config.origin_test.as_ref().ok_or(GatewayError::EnvironmentMismatch)?,
    };
    // Sign exactly what the origin will see: its base path (if ORIGIN_URL has one) + the path.
    let forwarded = format!("{}{path_and_query}", base_path(&target.url));
    let identity = SignedIdentity {
        audience: target.audience.as_str().to_string(),
        issued_at: now_seconds,
        expires_at: now_seconds.saturating_add(TOKEN_LIFETIME_SECONDS),
        method: method.to_string(),
        path_and_query: forwarded,
        key_id: grant.key_id.clone(),
        project: grant.project.clone(),
        env: grant.env.as_str().to_string(),
        scopes: grant.scopes.join(" "),
    };
    let token = target.signer.sign(&identity);
    Ok(ForwardPlan { url: format!("{}{path_and_query}", target.url), add_headers: vec![(HEADER_IDENTITY, token)] })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signature::{verify, Audience, VerifyError, DEFAULT_LEEWAY_SECONDS};

    const SECRET: &[u8] = b"a-very-secret-signing-key";

    fn config(test_origin: Option<&str>) -> Config {
        Config::from_lookup(|name| match name {
            "ORIGIN_URL" => Some("http://127.0.0.1:9000".into()),
            "ORIGIN_URL_TEST" => test_origin.map(String::from),
            "ORIGIN_SIGNING_SECRET" => Some("a-very-secret-signing-key".into()),
            _ => None,
        })
        .unwrap()
    }

    fn audience(url: &str) -> Audience {
        Audience::from_url(url).unwrap()
    }

    /// The `X-Keygate-Identity` value a plan adds.
    fn token_of(plan: &ForwardPlan) -> String {
        plan.add_headers.iter().find(|(name, _)| *name == HEADER_IDENTITY).map(|(_, value)| value.clone()).expect("identity header")
    }

    fn grant(env: KeyEnv) -> Grant {
        Grant { key_id: "key_1".into(), project: "acme".into(), env, scopes: vec!["content:read".into()] }
    }

    #[test]
    fn live_and_test_keys_go_to_their_origins() {
        let config = config(Some("http://127.0.0.1:9001/sandbox"));
        let live = plan(&config, &grant(KeyEnv::Live), "GET", "/v1/x?a=1", 10).unwrap();
        assert_eq!(live.url, "http://127.0.0.1:9000/v1/x?a=1");
        let test = plan(&config, &grant(KeyEnv::Test), "GET", "/v1/x", 10).unwrap();
        assert_eq!(test.url, "http://127.0.0.1:9001/sandbox/v1/x");
    }

    #[test]
    fn signature_covers_the_path_the_origin_receives() {
        let config = config(Some("http://127.0.0.1:9001/sandbox"));
        let plan = plan(&config, &grant(KeyEnv::Test), "GET", "/v1/x?a=1", 50).unwrap();
        let token = token_of(&plan);
        let received = "/sandbox/v1/x?a=1";
        assert!(plan.url.ends_with(received));
        let test_origin = audience("http://127.0.0.1:9001");
        assert!(verify(SECRET, &test_origin, "GET", received, Some(&token), 50, DEFAULT_LEEWAY_SECONDS).is_ok());
        assert_eq!(verify(SECRET, &test_origin, "GET", "/v1/x?a=1", Some(&token), 50, DEFAULT_LEEWAY_SECONDS), Err(VerifyError::Request));
    }

    #[test]
    fn a_test_key_signature_does_not_verify_at_the_live_origin() {
        let config = config(Some("http://127.0.0.1:9001"));
        let plan = plan(&config, &grant(KeyEnv::Test), "GET", "/v1/x", 50).unwrap();
        let token = token_of(&plan);
        // Both origins share the secret here (no ORIGIN_SIGNING_SECRET_TEST): only the audience differs.
        assert!(verify(SECRET, &audience("http://127.0.0.1:9001"), "GET", "/v1/x", Some(&token), 50, DEFAULT_LEEWAY_SECONDS).is_ok());
        assert_eq!(
            verify(SECRET, &audience("http://127.0.0.1:9000"), "GET", "/v1/x", Some(&token), 50, DEFAULT_LEEWAY_SECONDS),
            Err(VerifyError::Audience)
        );
    }

    #[test]
    fn after_authority_is_everything_after_host_and_port() {
        assert_eq!(after_authority("https://h.example:8787/p/q?a=1&b=/c"), Some("/p/q?a=1&b=/c"));
        assert_eq!(after_authority("http://127.0.0.1:9001/sandbox"), Some("/sandbox"));
        assert_eq!(after_authority("http://127.0.0.1:9001/"), Some("/"));
        assert_eq!(after_authority("http://127.0.0.1:9001"), None);
    }

    #[test]
    fn test_key_without_test_origin_is_refused() {
        let error = plan(&config(None), &grant(KeyEnv::Test), "GET", "/v1/x", 10).unwrap_err();
        assert_eq!(error, GatewayError::EnvironmentMismatch);
    }

    #[test]
    fn the_one_added_header_verifies_with_the_public_verifier() {
        let config = config(None);
        let plan = plan(&config, &grant(KeyEnv::Live), "POST", "/v1/cms/a/items?x=1", 1_000).unwrap();
        let token = token_of(&plan);
        assert_eq!(plan.add_headers.len(), 1, "one identity header: {:?}", plan.add_headers);
        let identity =
            verify(SECRET, &audience("http://127.0.0.1:9000"), "POST", "/v1/cms/a/items?x=1", Some(&token), 1_000, DEFAULT_LEEWAY_SECONDS)
                .unwrap();
        assert_eq!((identity.issued_at, identity.expires_at), (1_000, 1_060));
        assert_eq!(identity.env, "live");
        assert_eq!(identity.key_id, "key_1");
        assert_eq!(identity.project, "acme");
        assert_eq!(identity.scopes, "content:read");
    }

    #[test]
    fn credential_and_keygate_headers_are_stripped() {
        let config = config(None);
        for (name, stripped) in [
            ("host", true),
            ("authorization", true),
            ("x-api-key", true),
            ("x-keygate-project", true),
            ("x-keygate-anything", true),
            ("content-type", false),
            ("x-request-id", false),
            ("cookie", false),
            ("x-forwarded-host", false),
        ] {
            assert_eq!(strips_header(&config, name), stripped, "{name}");
        }
    }

    #[test]
    fn outbound_headers_drop_what_strips_header_says_and_add_the_plan() {
        let config = config(None);
        let plan = plan(&config, &grant(KeyEnv::Live), "GET", "/v1/x", 10).unwrap();
        let names = "accept\nauthorization\nhost\nuser-agent\nx-api-key\nx-keygate-env\nx-keygate-whatever\n";
        let outbound = outbound_headers(&config, &plan, names).unwrap();
        assert_eq!(outbound.strip, "authorization\nhost\nx-api-key\nx-keygate-env\nx-keygate-whatever\n");
        let added: Vec<&str> = fields(&outbound.add).collect();
        let expected: Vec<&str> = plan.add_headers.iter().flat_map(|(name, value)| [*name, value.as_str()]).collect();
        assert_eq!(added, expected);
        assert_eq!(added.len(), 2);
        assert_eq!(added[0], "x-keygate-identity");
        assert!(added[1].starts_with("eyJ"), "{}", added[1]);
        // Nothing to strip is an empty list, not one empty name.
        assert_eq!(outbound_headers(&config, &plan, "accept\n").unwrap().strip, "");
        assert_eq!(outbound_headers(&config, &plan, "").unwrap().strip, "");
    }

    #[test]
    fn outbound_headers_refuse_a_value_that_cannot_cross() {
        let config = config(None);
        let mut plan = plan(&config, &grant(KeyEnv::Live), "GET", "/v1/x", 10).unwrap();
        plan.add_headers[0].1 = "token\0".into();
        assert_eq!(outbound_headers(&config, &plan, "host\n"), Err(BoundaryError::Unencodable));
        plan.add_headers[0].1 = "token\nx-keygate-env\ntest".into();
        assert_eq!(outbound_headers(&config, &plan, "host\n"), Err(BoundaryError::Unencodable));
    }
}
