//! The bad-input matrix: what an attacker tries first, each row with the exact status and
//! error code keygate must answer, against the real worker under `wrangler dev`.

// Tests: a failed expectation is a failed test, with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::OnceLock;

use common::{Gateway, Options, Resp, ADMIN_TOKEN};

fn gateway() -> &'static Gateway {
    static GATEWAY: OnceLock<Gateway> = OnceLock::new();
    GATEWAY.get_or_init(|| Gateway::start(Options::default()))
}

const LIST: &str = "/v1/public/cms/articles/items";

/// How a row sends its request.
enum Send {
    /// Method, path, headers (ureq).
    Http(&'static str, String, Vec<(String, String)>, Option<String>),
    /// Raw bytes (HTTP/1.0).
    Raw(Vec<u8>),
}

struct Row {
    what: &'static str,
    send: Send,
    status: u16,
    /// Expected error code; `None` = a success (or bodiless) answer.
    code: Option<&'static str>,
}

fn http(method: &'static str, path: &str, headers: &[(&str, &str)]) -> Send {
    Send::Http(method, path.to_string(), headers.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect(), None)
}

fn with_body(method: &'static str, path: &str, headers: &[(&str, &str)], body: String) -> Send {
    Send::Http(method, path.to_string(), headers.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect(), Some(body))
}

fn raw(lines: &[&str]) -> Send {
    let mut bytes = lines.join("\r\n").into_bytes();
    bytes.extend_from_slice(b"\r\n\r\n");
    Send::Raw(bytes)
}

fn raw_bytes(head: Vec<u8>) -> Send {
    let mut bytes = head;
    bytes.extend_from_slice(b"\r\n\r\n");
    Send::Raw(bytes)
}

fn run(g: &Gateway, send: &Send) -> Resp {
    match send {
        Send::Http(method, path, headers, body) => {
            let mut request = g.request(method, path);
            for (name, value) in headers {
                request = request.header(name, value);
            }
            if let Some(body) = body {
                request = request.body(body);
            }
            request.send()
        }
        Send::Raw(bytes) => g.raw(bytes),
    }
}

fn rows(g: &Gateway) -> Vec<Row> {
    let key = g.keys.read_only.clone();
    let bearer = format!("Bearer {key}");
    let host = format!("Host: {}", g.url.trim_start_matches("http://"));
    let mut flipped = key.clone().into_bytes();
    let last = flipped.len() - 1;
    flipped[last] = if flipped[last] == b'a' { b'b' } else { b'a' };
    let flipped = format!("Bearer {}", String::from_utf8(flipped).unwrap());
    let admin = format!("Bearer {ADMIN_TOKEN}");
    let json = ("Content-Type", "application/json");
    let valid_create = r#"{"project":"matrix","name":"m","role":"read_only"}"#.to_string();
    let row = |what, send, status, code| Row { what, send, status, code };
    vec![
        // Credentials.
        row("no credential", http("GET", LIST, &[]), 401, Some("MISSING_KEY")),
        row("empty Authorization", http("GET", LIST, &[("Authorization", "")]), 401, Some("MISSING_KEY")),
        row("whitespace Authorization", http("GET", LIST, &[("Authorization", "   ")]), 401, Some("MISSING_KEY")),
        row("Bearer with no token", http("GET", LIST, &[("Authorization", "Bearer")]), 401, Some("MISSING_KEY")),
        row(
            "Bearer with spaces only",
            raw(&[&format!("GET {LIST} HTTP/1.0"), &host, "Authorization: Bearer    "]),
            401,
            Some("MISSING_KEY"),
        ),
        row("lowercase bearer", http("GET", LIST, &[("Authorization", &format!("bearer {key}"))]), 200, None),
        row("uppercase BEARER", http("GET", LIST, &[("Authorization", &format!("BEARER {key}"))]), 200, None),
        row("Basic scheme", http("GET", LIST, &[("Authorization", "Basic dXNlcjpwYXNz")]), 401, Some("MISSING_KEY")),
        row("token glued to scheme", http("GET", LIST, &[("Authorization", &format!("Bearer{key}"))]), 401, Some("MISSING_KEY")),
        row(
            "two Authorization headers",
            raw(&[
                &format!("GET {LIST} HTTP/1.0"),
                &host,
                &format!("Authorization: {bearer}"),
                &format!("Authorization: Bearer {}", g.keys.writer),
            ]),
            400,
            Some("BAD_REQUEST"),
        ),
        row(
            "two identical Authorization headers",
            raw(&[&format!("GET {LIST} HTTP/1.0"), &host, &format!("Authorization: {bearer}"), &format!("Authorization: {bearer}")]),
            400,
            Some("BAD_REQUEST"),
        ),
        row(
            "Authorization and X-Api-Key disagree",
            http("GET", LIST, &[("Authorization", &bearer), ("X-Api-Key", &g.keys.writer)]),
            400,
            Some("BAD_REQUEST"),
        ),
        row("Authorization and X-Api-Key agree", http("GET", LIST, &[("Authorization", &bearer), ("X-Api-Key", &key)]), 200, None),
        row("two tokens after Bearer", http("GET", LIST, &[("Authorization", &format!("{bearer} extra"))]), 400, Some("BAD_REQUEST")),
        row(
            "trailing whitespace after the key",
            raw(&[&format!("GET {LIST} HTTP/1.0"), &host, &format!("Authorization: {bearer}   ")]),
            200,
            None,
        ),
        row("8 KB key", http("GET", LIST, &[("X-Api-Key", &"k".repeat(8192))]), 401, Some("INVALID_KEY")),
        row(
            "non-ASCII in the key",
            raw_bytes(
                [
                    format!("GET {LIST} HTTP/1.0\r\n{host}\r\nAuthorization: Bearer kg_live_").into_bytes(),
                    "é".repeat(19).into_bytes(),
                    b"\xff".to_vec(),
                ]
                .concat(),
            ),
            401,
            Some("INVALID_KEY"),
        ),
        row(
            "control character in the key",
            raw_bytes(format!("GET {LIST} HTTP/1.0\r\n{host}\r\nAuthorization: Bearer kg_live_\x01{}", &key[9..]).into_bytes()),
            401,
            Some("INVALID_KEY"),
        ),
        row("flipped checksum character", http("GET", LIST, &[("Authorization", &flipped)]), 401, Some("INVALID_KEY")),
        row("wrong prefix", http("GET", LIST, &[("Authorization", &bearer.replacen("kg_", "zz_", 1))]), 401, Some("INVALID_KEY")),
        row(
            "wrong environment segment",
            http("GET", LIST, &[("Authorization", &bearer.replacen("_live_", "_prod_", 1))]),
            401,
            Some("INVALID_KEY"),
        ),
        row("well-formed unknown key", http("GET", LIST, &[("X-Api-Key", &g.keys.unknown)]), 401, Some("INVALID_KEY")),
        row(
            "key in the query string is refused, naming the headers",
            http("GET", &format!("{LIST}?api_key={key}"), &[]),
            400,
            Some("BAD_REQUEST"),
        ),
        row(
            "key in the query string is refused even with a key in the header",
            http("GET", &format!("{LIST}?limit=2&api_key={key}"), &[("X-Api-Key", &key)]),
            400,
            Some("BAD_REQUEST"),
        ),
        row(
            "another query parameter starting like a key passes",
            http("GET", &format!("{LIST}?q=kg_live_news"), &[("X-Api-Key", &key)]),
            200,
            None,
        ),
        row("admin token used as an API key", http("GET", LIST, &[("Authorization", &admin)]), 401, Some("INVALID_KEY")),
        row("revoked key", http("GET", LIST, &[("X-Api-Key", &g.keys.revoked)]), 401, Some("KEY_REVOKED")),
        // Environments, scopes, projects.
        row(
            "test key on a live-only route",
            http("GET", "/__echo/live-only/x", &[("X-Api-Key", &g.keys.test_env)]),
            403,
            Some("ENVIRONMENT_MISMATCH"),
        ),
        row("live key on the live-only route", http("GET", "/__echo/live-only/x", &[("X-Api-Key", &key)]), 200, None),
        row(
            "GET with a body (a client error, not an origin outage)",
            raw(&[&format!("GET {LIST} HTTP/1.0"), &host, &format!("X-Api-Key: {key}"), "Content-Length: 2", "", "{}"]),
            400,
            Some("BAD_REQUEST"),
        ),
        row(
            "HEAD with a body",
            raw(&[&format!("HEAD {LIST} HTTP/1.0"), &host, &format!("X-Api-Key: {key}"), "Content-Length: 2", "", "{}"]),
            400,
            None,
        ),
        row(
            "GET with Content-Length: 0 is a GET without a body",
            raw(&[&format!("GET {LIST} HTTP/1.0"), &host, &format!("X-Api-Key: {key}"), "Content-Length: 0"]),
            200,
            None,
        ),
        row(
            "read key writing",
            with_body("POST", "/v1/cms/articles/items", &[("X-Api-Key", &key), json], "{}".into()),
            403,
            Some("INSUFFICIENT_SCOPE"),
        ),
        row(
            "other project's path",
            http("GET", "/v1/projects/globex/public/cms/articles/items", &[("X-Api-Key", &key)]),
            403,
            Some("PROJECT_MISMATCH"),
        ),
        // Paths.
        row(
            "dot-dot escaping the table",
            raw(&[&format!("GET {LIST}/../../../../admin HTTP/1.0"), &host, &format!("Authorization: {bearer}")]),
            404,
            Some("ROUTE_NOT_FOUND"),
        ),
        row(
            "encoded dot-dot",
            raw(&[&format!("GET {LIST}/%2e%2e/%2e%2e/x HTTP/1.0"), &host, &format!("Authorization: {bearer}")]),
            404,
            Some("ROUTE_NOT_FOUND"),
        ),
        row(
            "double slash",
            raw(&["GET /v1//public/cms/articles/items HTTP/1.0", &host, &format!("Authorization: {bearer}")]),
            400,
            Some("BAD_REQUEST"),
        ),
        row("encoded slash", http("GET", &format!("{LIST}/a%2Fb"), &[("Authorization", &bearer)]), 400, Some("BAD_REQUEST")),
        row("encoded backslash", http("GET", &format!("{LIST}/a%5Cb"), &[("Authorization", &bearer)]), 400, Some("BAD_REQUEST")),
        row("encoded NUL", http("GET", &format!("{LIST}/a%00"), &[("Authorization", &bearer)]), 400, Some("BAD_REQUEST")),
        row("unknown path", http("GET", "/etc/passwd", &[("Authorization", &bearer)]), 404, Some("ROUTE_NOT_FOUND")),
        row("wrong method on a read route", http("DELETE", LIST, &[("Authorization", &bearer)]), 404, Some("ROUTE_NOT_FOUND")),
        row(
            "very long path",
            http("GET", &format!("/v1/{}", "a".repeat(4000)), &[("Authorization", &bearer)]),
            404,
            Some("ROUTE_NOT_FOUND"),
        ),
        row("HEAD with a key", http("HEAD", LIST, &[("Authorization", &bearer)]), 200, None),
        row("HEAD without a key", http("HEAD", LIST, &[]), 401, None),
        row(
            "CORS preflight without a key",
            http("OPTIONS", LIST, &[("Origin", "https://app.acme.example"), ("Access-Control-Request-Method", "GET")]),
            204,
            None,
        ),
        row("OPTIONS that is not a preflight", http("OPTIONS", LIST, &[]), 401, Some("MISSING_KEY")),
        // Admin API.
        row("admin without token", http("GET", "/_keygate/v1/keys?project=acme", &[]), 401, Some("UNAUTHORIZED")),
        row(
            "admin token in X-Api-Key",
            http("GET", "/_keygate/v1/keys?project=acme", &[("X-Api-Key", ADMIN_TOKEN)]),
            401,
            Some("UNAUTHORIZED"),
        ),
        row(
            "admin token without Bearer",
            http("GET", "/_keygate/v1/keys?project=acme", &[("Authorization", ADMIN_TOKEN)]),
            401,
            Some("UNAUTHORIZED"),
        ),
        row(
            "admin token with a suffix",
            http("GET", "/_keygate/v1/keys?project=acme", &[("Authorization", &format!("{admin}x"))]),
            401,
            Some("UNAUTHORIZED"),
        ),
        row(
            "API key on the admin API",
            http("GET", "/_keygate/v1/keys?project=acme", &[("Authorization", &bearer)]),
            401,
            Some("UNAUTHORIZED"),
        ),
        row(
            "admin lowercase bearer",
            http("GET", "/_keygate/v1/keys?project=acme", &[("Authorization", &format!("bearer {ADMIN_TOKEN}"))]),
            200,
            None,
        ),
        row(
            "admin malformed JSON",
            with_body("POST", "/_keygate/v1/keys", &[("Authorization", &admin), json], "{\"project\":".into()),
            400,
            Some("VALIDATION_FAILED"),
        ),
        row(
            "admin JSON array body",
            with_body("POST", "/_keygate/v1/keys", &[("Authorization", &admin), json], "[]".into()),
            400,
            Some("VALIDATION_FAILED"),
        ),
        row(
            "admin trailing garbage",
            with_body("POST", "/_keygate/v1/keys", &[("Authorization", &admin), json], format!("{valid_create} x")),
            400,
            Some("VALIDATION_FAILED"),
        ),
        row(
            "admin deeply nested JSON",
            with_body("POST", "/_keygate/v1/keys", &[("Authorization", &admin), json], "[".repeat(5000)),
            400,
            Some("VALIDATION_FAILED"),
        ),
        row(
            "admin wrong content type",
            with_body("POST", "/_keygate/v1/keys", &[("Authorization", &admin), ("Content-Type", "text/plain")], valid_create.clone()),
            415,
            Some("UNSUPPORTED_MEDIA_TYPE"),
        ),
        row(
            "admin missing content type",
            with_body("POST", "/_keygate/v1/keys", &[("Authorization", &admin)], valid_create.clone()),
            415,
            Some("UNSUPPORTED_MEDIA_TYPE"),
        ),
        row(
            "admin oversized body",
            with_body("POST", "/_keygate/v1/keys", &[("Authorization", &admin), json], format!("{{\"pad\":\"{}\"}}", "x".repeat(20_000))),
            413,
            Some("PAYLOAD_TOO_LARGE"),
        ),
        row(
            "admin unknown field",
            with_body(
                "POST",
                "/_keygate/v1/keys",
                &[("Authorization", &admin), json],
                r#"{"project":"m","name":"n","role":"read_only","admin":true}"#.into(),
            ),
            400,
            Some("VALIDATION_FAILED"),
        ),
        row("admin wrong method", http("PUT", "/_keygate/v1/keys", &[("Authorization", &admin)]), 404, Some("NOT_FOUND")),
        row("admin bad id", http("GET", "/_keygate/v1/keys/key_a.b", &[("Authorization", &admin)]), 404, Some("NOT_FOUND")),
        row(
            "dot-dot out of the admin prefix",
            raw(&["GET /_keygate/v1/../../v1/x HTTP/1.0", &host, &format!("Authorization: {admin}")]),
            404,
            Some("ROUTE_NOT_FOUND"),
        ),
        row(
            "admin reserved project",
            with_body(
                "POST",
                "/_keygate/v1/keys",
                &[("Authorization", &admin), json],
                r#"{"project":"__directory__","name":"n","role":"read_only"}"#.into(),
            ),
            400,
            Some("VALIDATION_FAILED"),
        ),
    ]
}

#[test]
fn bad_input_matrix() {
    let g = gateway();
    let rows = rows(g);
    assert!(rows.len() >= 40, "the matrix has {} rows", rows.len());
    let mut failures = Vec::new();
    for row in &rows {
        let response = run(g, &row.send);
        let code =
            serde_json::from_str::<serde_json::Value>(&response.body).ok().and_then(|b| b["error"]["code"].as_str().map(String::from));
        let code_ok = match row.code {
            Some(expected) => code.as_deref() == Some(expected),
            None => true,
        };
        if response.status != row.status || !code_ok {
            failures.push(format!("{}: got {} {:?}, want {} {:?}", row.what, response.status, code, row.status, row.code));
        }
        for key in g.keys.all() {
            assert!(!response.body.contains(key), "{}: a key was echoed in the body", row.what);
        }
    }
    assert!(failures.is_empty(), "{} of {} rows failed:\n{}", failures.len(), rows.len(), failures.join("\n"));
}

#[test]
fn spoofed_keygate_headers_never_reach_the_origin() {
    let g = gateway();
    let echo = g
        .request("GET", "/__echo/spoof")
        .bearer(&g.keys.read_only)
        .header("X-Keygate-Project", "globex")
        .header("X-Keygate-Scopes", "*")
        .header("X-Keygate-Env", "test")
        .header("X-Keygate-Admin", "true")
        .header("x-keygate-key-id", "key_forged")
        .header("X-Keygate-Identity", "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.e30.")
        .send()
        .json();
    let headers = echo["headers"].as_object().unwrap();
    let keygate: Vec<&String> = headers.keys().filter(|name| name.starts_with("x-keygate-")).collect();
    assert_eq!(keygate, ["x-keygate-identity"], "only keygate's own identity header reaches the origin");
    assert_ne!(headers["x-keygate-identity"], "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.e30.");
    // The origin verified keygate's token: its identity is the key's, not the client's.
    let identity = &echo["identity"];
    assert_eq!(identity["project"], "acme");
    assert_eq!(identity["env"], "live");
    assert_ne!(identity["scopes"], "*");
    assert_ne!(identity["key_id"], "key_forged");
}
