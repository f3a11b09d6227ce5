//! The origin-side verification snippets the README quotes (`docs/verify/verify.mjs`, `verify.py`,
//! `verify.go`), run for real against the `X-Keygate-Identity` token a request forwarded by the
//! real worker carried: Node with jose, Python with PyJWT, Go with golang-jwt v4, each as
//! `scripts/setup.sh` installs it. A valid token is accepted; a tampered one, another secret,
//! another audience, method, path or query, an expired token, one issued in the future and an
//! `alg: none` token are refused. The README must quote each snippet verbatim, so the documented
//! code is the tested code.

// Tests: a failed expectation is a failed test, with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use common::{repo_root, Gateway, Options, SIGNING_SECRET};
use keygate_core::signature::{verify, Audience, SignedIdentity, DEFAULT_LEEWAY_SECONDS};

const SNIPPETS: [&str; 3] = ["docs/verify/verify.mjs", "docs/verify/verify.py", "docs/verify/verify.go"];

/// The request whose token the snippets check: a query with an encoded space, a POST.
const PATH: &str = "/__echo/snippets?b=2&a=%20x";

fn gateway() -> &'static Gateway {
    static GATEWAY: OnceLock<Gateway> = OnceLock::new();
    GATEWAY.get_or_init(|| Gateway::start(Options::default()))
}

/// The token a real forwarded request carried just now, and its claims as the Rust verifier
/// reads them. The snippets check it against the real clock, so each test takes a fresh one, after
/// the Go snippet is built: the token stays valid for 60 s (+30 s leeway), and what runs between
/// its issue and its checks is a few snippet processes.
fn fresh_token() -> (String, SignedIdentity) {
    go_binary();
    let g = gateway();
    let response = g.request("POST", PATH).bearer(&g.keys.read_only).body("{}").send();
    assert_eq!(response.status, 200, "{}", response.body);
    let echo = response.json();
    let token = echo["headers"]["x-keygate-identity"].as_str().expect("identity token").to_string();
    let audience = Audience::from_url(&g.live_origin_url).expect("audience");
    let issued_at = echo["identity"]["issued_at"].as_u64().expect("issued_at");
    let identity = verify(SIGNING_SECRET.as_bytes(), &audience, "POST", PATH, Some(&token), issued_at, DEFAULT_LEEWAY_SECONDS)
        .expect("the forwarded token verifies in Rust");
    (token, identity)
}

/// How to run one snippet: the command (built once for Go) and its environment.
fn runner(snippet: &str) -> Command {
    let root = repo_root();
    match snippet.rsplit('.').next() {
        Some("mjs") => {
            // Node 22 from package-lock.json; `jose` resolves from the repository's node_modules.
            let mut command = Command::new(root.join("node_modules/.bin/node"));
            command.arg(root.join(snippet));
            command
        }
        Some("py") => {
            let mut command = Command::new("python3");
            command.arg(root.join(snippet)).env("PYTHONPATH", root.join("target/pydeps"));
            command
        }
        Some("go") => Command::new(go_binary()),
        other => panic!("no runner for {other:?}"),
    }
}

/// `docs/verify/verify.go` built once, offline, against Debian's golang-jwt v4 source (a go.mod
/// `replace`), as `scripts/setup.sh` installs it.
fn go_binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        let dir = repo_root().join("target/verify-go");
        std::fs::create_dir_all(&dir).expect("target/verify-go");
        std::fs::copy(repo_root().join("docs/verify/verify.go"), dir.join("verify.go")).expect("copy verify.go");
        std::fs::write(
            dir.join("go.mod"),
            "module keygate.example/verify\n\ngo 1.19\n\nrequire github.com/golang-jwt/jwt/v4 v4.4.3\n\n\
             replace github.com/golang-jwt/jwt/v4 => /usr/share/gocode/src/github.com/golang-jwt/jwt\n",
        )
        .expect("go.mod");
        let output = Command::new("go")
            .args(["build", "-o", "verify", "."])
            .current_dir(&dir)
            .env("GOFLAGS", "-mod=mod")
            .env("GOPROXY", "off")
            .env("GOCACHE", repo_root().join("target/verify-go/cache"))
            .output()
            .expect("go is installed (make setup)");
        assert!(output.status.success(), "go build: {}", String::from_utf8_lossy(&output.stderr));
        dir.join("verify")
    })
}

/// Runs `snippet` on `token` as an origin at `audience` that received `method` `path`.
fn run(snippet: &str, token: &str, secret: &str, audience: &str, method: &str, path: &str) -> Output {
    runner(snippet)
        .args([token, audience, method, path])
        .env("KEYGATE_SIGNING_SECRET", secret)
        .output()
        .unwrap_or_else(|e| panic!("{snippet}: cannot run ({e}); make setup installs its runtime"))
}

/// The base64url segment of `identity`'s claims, as keygate would write them.
fn claims_segment(identity: &SignedIdentity) -> String {
    identity.signing_input().split('.').nth(1).expect("claims segment").to_string()
}

#[test]
fn each_snippet_accepts_the_token_keygate_forwarded() {
    let g = gateway();
    let (token, identity) = fresh_token();
    for snippet in SNIPPETS {
        let output = run(snippet, &token, SIGNING_SECRET, &g.live_origin_url, "POST", PATH);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{snippet} refused a valid token: {stderr}");
        let claims: serde_json::Value = serde_json::from_slice(&output.stdout).expect("claims as JSON on stdout");
        let claims = claims.as_object().expect("claims object");
        let field = |name: &str| claims.get(name).and_then(|v| v.as_str());
        assert_eq!(field("sub"), Some(identity.key_id.as_str()), "{snippet}: {claims:?}");
        assert_eq!(field("project"), Some("acme"), "{snippet}");
        assert_eq!(field("scope"), Some(identity.scopes.as_str()), "{snippet}");
        assert_eq!(field("htu"), Some(PATH), "{snippet}");
    }
}

#[test]
fn each_snippet_refuses_what_keygate_did_not_sign_for_this_request() {
    let g = gateway();
    let (token, identity) = fresh_token();
    let (token, identity) = (&token, &identity);
    let live = g.live_origin_url.as_str();
    let signature = token.rsplit_once('.').expect("three segments").1;
    let header = token.split('.').next().expect("header segment");
    let widened = SignedIdentity { scopes: "*".into(), ..identity.clone() };
    let tampered = format!("{header}.{}.{signature}", claims_segment(&widened));
    let expired = SignedIdentity { issued_at: identity.issued_at - 3_600, expires_at: identity.expires_at - 3_600, ..identity.clone() }
        .sign(SIGNING_SECRET.as_bytes());
    let future = SignedIdentity { issued_at: identity.issued_at + 3_600, expires_at: identity.expires_at + 3_600, ..identity.clone() }
        .sign(SIGNING_SECRET.as_bytes());
    // {"alg":"none","typ":"JWT"}, the real claims, no signature.
    let alg_none = format!("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{}.", claims_segment(identity));
    let rows: Vec<(&str, &str, &str, &str, &str, &str)> = vec![
        ("tampered claims", &tampered, SIGNING_SECRET, live, "POST", PATH),
        ("another secret", token, "another-origin-signing-secret-0123", live, "POST", PATH),
        ("another audience", token, SIGNING_SECRET, "http://127.0.0.1:1", "POST", PATH),
        ("another method", token, SIGNING_SECRET, live, "GET", PATH),
        ("another path", token, SIGNING_SECRET, live, "POST", "/__echo/other?b=2&a=%20x"),
        ("another query", token, SIGNING_SECRET, live, "POST", "/__echo/snippets?b=2&a=%20y"),
        ("the query dropped", token, SIGNING_SECRET, live, "POST", "/__echo/snippets"),
        ("expired an hour ago", &expired, SIGNING_SECRET, live, "POST", PATH),
        ("issued an hour from now", &future, SIGNING_SECRET, live, "POST", PATH),
        ("alg none", &alg_none, SIGNING_SECRET, live, "POST", PATH),
    ];
    let mut failures = Vec::new();
    for snippet in SNIPPETS {
        for (what, token, secret, audience, method, path) in &rows {
            let output = run(snippet, token, secret, audience, method, path);
            let stderr = String::from_utf8_lossy(&output.stderr);
            // Exit 1 with "refused:" is a refusal; any other failure is a broken snippet.
            if output.status.code() != Some(1) || !stderr.starts_with("refused:") {
                failures.push(format!("{snippet}, {what}: exit {:?}, stderr {stderr:?}", output.status.code()));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn the_readme_quotes_each_snippet_verbatim() {
    let readme = std::fs::read_to_string(repo_root().join("README.md")).expect("README.md");
    for snippet in SNIPPETS {
        let text = std::fs::read_to_string(repo_root().join(snippet)).expect(snippet);
        assert!(readme.contains(&text), "README.md does not quote {snippet} verbatim");
    }
}
