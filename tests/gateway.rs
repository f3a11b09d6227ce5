//! The verified-request hot path against the real worker under `wrangler dev`, with local KV
//! and real loopback demo origins (live and test).

// Tests: a failed expectation is a failed test, with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::OnceLock;

use common::{Gateway, Options, CORS_ORIGIN, LOCKED_ORIGIN, SIGNING_SECRET};
use keygate_core::signature::{verify, Audience, DEFAULT_LEEWAY_SECONDS};

fn gateway() -> &'static Gateway {
    static GATEWAY: OnceLock<Gateway> = OnceLock::new();
    GATEWAY.get_or_init(|| Gateway::start(Options::default()))
}

const LIST: &str = "/v1/public/cms/articles/items";

#[test]
fn missing_key_is_401_with_bearer_challenge() {
    let g = gateway();
    let response = g.request("GET", LIST).send();
    response.assert_error(401, "MISSING_KEY");
    assert_eq!(response.header("www-authenticate"), Some("Bearer realm=\"keygate\""));
    g.request("GET", LIST).header("Authorization", "Bearer").send().assert_error(401, "MISSING_KEY");
    g.request("GET", LIST).header("Authorization", "   ").send().assert_error(401, "MISSING_KEY");
}

#[test]
fn conflicting_credentials_are_a_bad_request() {
    let g = gateway();
    g.request("GET", LIST).bearer(&g.keys.read_only).header("X-Api-Key", &g.keys.writer).send().assert_error(400, "BAD_REQUEST");
    // The same key in both headers is fine.
    let same = g.request("GET", LIST).bearer(&g.keys.read_only).header("X-Api-Key", &g.keys.read_only).send();
    assert_eq!(same.status, 200, "{}", same.body);
}

#[test]
fn unmatched_route_is_404() {
    let g = gateway();
    g.request("GET", "/v1/admin/users").bearer(&g.keys.read_only).send().assert_error(404, "ROUTE_NOT_FOUND");
    g.request("DELETE", LIST).bearer(&g.keys.read_only).send().assert_error(404, "ROUTE_NOT_FOUND");
}

#[test]
fn non_canonical_paths_are_refused_before_routing() {
    let g = gateway();
    for path in ["/v1/public/cms/articles/items/a%2Fb", "/v1/public/cms/articles/items/%2e%2e/x", "/v1//public/cms/articles/items"] {
        let response = g.request("GET", path).bearer(&g.keys.read_only).send();
        assert!(
            matches!(response.json()["error"]["code"].as_str(), Some("BAD_REQUEST") | Some("ROUTE_NOT_FOUND")),
            "{path}: {}",
            response.body
        );
        assert_ne!(response.status, 200, "{path}");
    }
    g.request("GET", "/v1/public/cms/articles/items/a%2Fb").bearer(&g.keys.read_only).send().assert_error(400, "BAD_REQUEST");
}

#[test]
fn malformed_keys_are_401_without_lookup() {
    let g = gateway();
    let good = &g.keys.read_only;
    let mut flipped = good.clone().into_bytes();
    let last = flipped.len() - 1;
    flipped[last] = if flipped[last] == b'a' { b'b' } else { b'a' };
    let flipped = String::from_utf8(flipped).unwrap();
    let rows = [
        ("garbage", "hello".to_string(), "bad_length"),
        ("flipped checksum", flipped, "bad_checksum"),
        ("wrong prefix", good.replacen("kg_", "zz_", 1), "wrong_prefix"),
        ("wrong env", good.replacen("_live_", "_prod_", 1), "wrong_environment"),
    ];
    for (what, key, reason) in rows {
        let body = g.request("GET", LIST).bearer(&key).send().assert_error(401, "INVALID_KEY");
        assert_eq!(body["error"]["details"]["reason"], reason, "{what}");
    }
}

#[test]
fn unknown_key_is_invalid() {
    let g = gateway();
    let body = g.request("GET", LIST).bearer(&g.keys.unknown).send().assert_error(401, "INVALID_KEY");
    assert!(body["error"]["details"].get("reason").is_none(), "well-formed unknown keys carry no format reason");
    // Again (now from the negative cache): same answer.
    g.request("GET", LIST).bearer(&g.keys.unknown).send().assert_error(401, "INVALID_KEY");
}

#[test]
fn corrupt_record_fails_closed_and_is_logged_without_the_key() {
    let g = gateway();
    g.request("GET", LIST).bearer(&g.keys.corrupt).send().assert_error(503, "STORE_UNAVAILABLE");
    let log = g.log_containing("corrupt record");
    assert!(!log.contains(&g.keys.corrupt), "plaintext key leaked into the log");
}

#[test]
fn record_status_and_validity_window_are_enforced() {
    let g = gateway();
    let rows = [
        (&g.keys.revoked, "KEY_REVOKED"),
        (&g.keys.inactive, "KEY_DISABLED"),
        (&g.keys.expired, "KEY_EXPIRED"),
        (&g.keys.not_yet_valid, "KEY_NOT_YET_VALID"),
    ];
    for (key, code) in rows {
        let response = g.request("GET", LIST).bearer(key).send();
        response.assert_error(401, code);
        assert!(response.header("www-authenticate").unwrap().contains("invalid_token"), "{code}");
    }
}

#[test]
fn read_only_key_cannot_write() {
    let g = gateway();
    let response = g.request("POST", "/v1/cms/articles/items").bearer(&g.keys.read_only).body("{}").send();
    let body = response.assert_error(403, "INSUFFICIENT_SCOPE");
    assert_eq!(body["error"]["details"]["requiredScopes"][0], "content:write");
    assert!(response.header("www-authenticate").unwrap().contains("insufficient_scope"));
}

#[test]
fn wildcard_scope_grants_write() {
    let g = gateway();
    let response = g
        .request("POST", "/v1/cms/articles/items")
        .bearer(&g.keys.explicit_scopes)
        .header("Content-Type", "application/json")
        .body(r#"{"title":"wildcards work"}"#)
        .send();
    assert_eq!(response.status, 201, "{}", response.body);
}

#[test]
fn project_in_path_must_match_the_key() {
    let g = gateway();
    let path = "/v1/projects/acme/public/cms/articles/items";
    let ok = g.request("GET", path).bearer(&g.keys.read_only).send();
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert_eq!(ok.json()["project"], "acme");
    g.request("GET", path).bearer(&g.keys.globex).send().assert_error(403, "PROJECT_MISMATCH");
}

#[test]
fn allowed_origins_are_enforced() {
    let g = gateway();
    let ok = g.request("GET", LIST).bearer(&g.keys.origin_locked).header("Origin", LOCKED_ORIGIN).send();
    assert_eq!(ok.status, 200, "{}", ok.body);
    g.request("GET", LIST)
        .bearer(&g.keys.origin_locked)
        .header("Origin", "https://evil.example")
        .send()
        .assert_error(403, "ORIGIN_NOT_ALLOWED");
    g.request("GET", LIST).bearer(&g.keys.origin_locked).send().assert_error(403, "ORIGIN_NOT_ALLOWED");
}

#[test]
fn valid_key_reads_published_items_of_its_project_from_the_live_origin() {
    let g = gateway();
    for request in [
        g.request("GET", LIST).bearer(&g.keys.read_only),
        g.request("GET", LIST).header("X-Api-Key", &g.keys.read_only),
        g.request("GET", LIST).header("Authorization", &format!("bearer {}", g.keys.read_only)),
    ] {
        let response = request.send();
        assert_eq!(response.status, 200, "{}", response.body);
        let body = response.json();
        assert_eq!(body["origin"], "live");
        assert_eq!(body["project"], "acme");
        let items = body["items"].as_array().expect("items");
        assert!(!items.is_empty());
        assert!(items.iter().all(|item| item["status"] == "published"));
    }
    let globex = g.request("GET", LIST).bearer(&g.keys.globex).send();
    assert_eq!(globex.json()["project"], "globex");
}

#[test]
fn origin_receives_signed_identity_and_no_credential() {
    let g = gateway();
    let path = "/__echo/deep/path?b=2&a=1&empty=&enc=%20x";
    let response = g
        .request("POST", path)
        .bearer(&g.keys.read_only)
        .header("X-Keygate-Project", "globex")
        .header("X-Keygate-Identity", "forged")
        .header("X-Custom", "kept")
        // Header names that are special words in JavaScript objects are ordinary headers here.
        .header("__proto__", "proto-kept")
        .header("Constructor", "constructor-kept")
        .header("Content-Type", "text/plain")
        .body("exact body bytes\nline two")
        .send();
    assert_eq!(response.status, 200, "{}", response.body);
    let echo = response.json();
    assert_eq!(echo["method"], "POST");
    assert_eq!(echo["path_and_query"], path);
    assert_eq!(echo["body"], "exact body bytes\nline two");
    let headers = echo["headers"].as_object().expect("headers");
    assert!(headers.get("authorization").is_none(), "credential reached the origin");
    assert!(headers.get("x-api-key").is_none());
    assert_eq!(headers["x-custom"], "kept");
    assert_eq!(headers["__proto__"], "proto-kept");
    assert_eq!(headers["constructor"], "constructor-kept");
    assert!(headers.get("x-keygate-project").is_none(), "client-sent X-Keygate-* must be stripped");
    let keygate: Vec<&String> = headers.keys().filter(|name| name.starts_with("x-keygate-")).collect();
    assert_eq!(keygate, ["x-keygate-identity"], "one identity header, and only keygate's");
    let token = headers["x-keygate-identity"].as_str().expect("identity token");
    assert_ne!(token, "forged");
    let live_origin = Audience::from_url(&g.live_origin_url).expect("live origin audience");
    // Verified at the time it was issued: the test asserts what was signed, not the clock.
    let issued_at = echo["identity"]["issued_at"].as_u64().expect("issued_at");
    let identity = verify(SIGNING_SECRET.as_bytes(), &live_origin, "POST", path, Some(token), issued_at, DEFAULT_LEEWAY_SECONDS)
        .expect("the token verifies with the public verifier");
    assert_eq!(identity.audience, g.live_origin_url, "the demo origin's URL is already in normal form");
    assert_eq!(identity.expires_at, identity.issued_at + 60);
    assert_eq!((identity.method.as_str(), identity.path_and_query.as_str()), ("POST", path));
    assert_eq!(identity.project, "acme");
    assert_eq!(identity.env, "live");
    assert!(identity.key_id.starts_with("key_"));
    assert!(identity.scopes.split(' ').any(|s| s == "content:read"));
    for (name, value) in headers {
        let value = value.as_str().unwrap_or("");
        for key in g.keys.all() {
            assert!(!value.contains(key), "a plaintext key reached the origin in {name}");
        }
    }
}

#[test]
fn x_api_key_is_stripped_too() {
    let g = gateway();
    let echo = g.request("GET", "/__echo/x").header("X-Api-Key", &g.keys.read_only).send().json();
    let headers = echo["headers"].as_object().expect("headers");
    assert!(headers.get("x-api-key").is_none());
    assert!(headers.get("authorization").is_none());
}

#[test]
fn test_key_reaches_the_test_origin() {
    let g = gateway();
    let response = g.request("GET", LIST).bearer(&g.keys.test_env).send();
    assert_eq!(response.status, 200, "{}", response.body);
    assert_eq!(response.json()["origin"], "test");
    let echo = g.request("GET", "/__echo/t").bearer(&g.keys.test_env).send().json();
    assert_eq!(echo["identity"]["env"], "test");
}

#[test]
fn test_key_identity_replayed_at_the_live_origin_is_refused_under_a_shared_secret() {
    // This gateway has no ORIGIN_SIGNING_SECRET_TEST: both origins verify with SIGNING_SECRET,
    // so only the audience in the signature tells them apart.
    gateway().assert_test_key_replay_refused_at_live("/__echo/replay?x=1", "audience");
}

#[test]
fn origin_errors_pass_through_unchanged() {
    let g = gateway();
    let response = g.request("GET", "/__status/503").bearer(&g.keys.read_only).send();
    assert_eq!(response.status, 503);
    assert_eq!(response.header("x-origin-label"), Some("live"));
}

#[test]
fn cors_preflight_is_answered_without_a_key() {
    let g = gateway();
    let allowed = g
        .request("OPTIONS", LIST)
        .header("Origin", CORS_ORIGIN)
        .header("Access-Control-Request-Method", "GET")
        .header("Access-Control-Request-Headers", "authorization")
        .send();
    assert_eq!(allowed.status, 204);
    assert_eq!(allowed.header("access-control-allow-origin"), Some(CORS_ORIGIN));
    assert!(allowed.header("access-control-allow-headers").unwrap().contains("authorization"));
    let refused = g.request("OPTIONS", LIST).header("Origin", "https://evil.example").header("Access-Control-Request-Method", "GET").send();
    assert_eq!(refused.status, 204);
    assert!(refused.header("access-control-allow-origin").is_none());
    // A real request from an allowed origin is labelled for the browser.
    let real = g.request("GET", LIST).bearer(&g.keys.read_only).header("Origin", CORS_ORIGIN).send();
    assert_eq!(real.status, 200);
    assert_eq!(real.header("access-control-allow-origin"), Some(CORS_ORIGIN));
}

#[test]
fn head_requests_get_no_body() {
    let g = gateway();
    let ok = g.request("HEAD", LIST).bearer(&g.keys.read_only).send();
    assert_eq!(ok.status, 200);
    assert!(ok.body.is_empty());
    let refused = g.request("HEAD", LIST).send();
    assert_eq!(refused.status, 401);
    assert!(refused.body.is_empty());
}

#[test]
fn request_id_comes_from_cf_ray_when_present() {
    let g = gateway();
    let body = g.request("GET", LIST).header("cf-ray", "8f00ba4c1234abcd-AMS").send().assert_error(401, "MISSING_KEY");
    assert_eq!(body["meta"]["requestId"], "8f00ba4c1234abcd-AMS");
}

#[test]
fn no_plaintext_key_in_logs_or_stored_state() {
    let g = gateway();
    for key in g.keys.all() {
        let _ = g.request("GET", LIST).bearer(key).send();
        let _ = g.request("GET", "/__echo/hygiene").header("X-Api-Key", key).send();
    }
    let log = g.log();
    for key in g.keys.all() {
        assert!(!log.contains(key), "plaintext key in wrangler log");
    }
    let leaks = common::find_in_tree(&g.state_dir, &g.keys.all());
    assert!(leaks.is_empty(), "plaintext keys found in persisted state: {leaks:?}");
}
