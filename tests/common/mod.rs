//! Integration harness: the real worker under `wrangler dev` (workerd, local KV) with real
//! loopback demo origins, started once per test binary and shared by its tests.
//!
//! Every child runs under a small `sh` guard that holds a pipe from this process: when the
//! test binary exits (however it exits), the pipe closes and the guard kills the child's whole
//! process group and deletes its state directory. Waiting is on conditions (a log line, a
//! first HTTP answer), bounded in time; nothing sleeps to synchronise.
#![allow(dead_code)]
// Test helpers: a failed expectation is a failed test, with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use keygate_core::key::{self, KeyEnv, PlaintextKey};
use keygate_core::record::{self, KeyRecord, Status};
use keygate_core::timestamp::Timestamp;

/// Signing secret shared by the test gateway and the demo origins (test-only value). It signs
/// for the test origin too unless [`Options::test_signing_secret`] is set.
pub const SIGNING_SECRET: &str = "integration-test-signing-secret-0123456789";
/// A separate secret for the test origin, for [`Options::test_signing_secret`] (test-only value).
pub const TEST_SIGNING_SECRET: &str = "integration-test-sandbox-signing-secret-987654";
/// Admin token of the test gateway (test-only value).
pub const ADMIN_TOKEN: &str = "integration-test-admin-token-0123456789";
/// A browser origin the test config allows for CORS.
pub const CORS_ORIGIN: &str = "https://app.acme.example";
/// The only origin `keys.origin_locked` may be used from.
pub const LOCKED_ORIGIN: &str = "https://shop.acme.example";

/// Plaintext fixture keys (test-only; only their hashes are seeded).
#[derive(Debug, Clone)]
pub struct Keys {
    pub read_only: String,
    pub writer: String,
    pub explicit_scopes: String,
    pub test_env: String,
    pub revoked: String,
    pub inactive: String,
    pub expired: String,
    pub not_yet_valid: String,
    pub globex: String,
    pub origin_locked: String,
    pub corrupt: String,
    pub unknown: String,
}

impl Keys {
    /// Every fixture key, for hygiene checks.
    pub fn all(&self) -> Vec<&str> {
        vec![
            &self.read_only,
            &self.writer,
            &self.explicit_scopes,
            &self.test_env,
            &self.revoked,
            &self.inactive,
            &self.expired,
            &self.not_yet_valid,
            &self.globex,
            &self.origin_locked,
            &self.corrupt,
            &self.unknown,
        ]
    }
}

/// How a test binary wants its gateway configured.
pub struct Options {
    /// Serve the live origin on a real demo origin (false: ORIGIN_URL is a dead origin that
    /// accepts connections and closes them unanswered).
    pub live_origin: bool,
    /// Configure ORIGIN_URL_TEST (a second demo origin labelled `test`).
    pub test_origin: bool,
    /// Configure ORIGIN_SIGNING_SECRET (false: the gateway must refuse to serve).
    pub signing_secret: bool,
    /// Configure ORIGIN_SIGNING_SECRET_TEST with this value, and start the test origin with it
    /// (`None`: both origins use ORIGIN_SIGNING_SECRET, the documented fallback).
    pub test_signing_secret: Option<&'static str>,
    /// Extra `[vars]` for this gateway (applied last).
    pub vars: Vec<(&'static str, &'static str)>,
    /// A seed profile (`profiles/<name>.toml`) laid over `wrangler.toml`'s `[vars]`, through
    /// `keygate profile-vars` as `make dev` does. The test-only echo routes are then not added:
    /// a profile is tested on its own routes.
    pub profile: Option<&'static str>,
}

impl Default for Options {
    fn default() -> Self {
        Options { live_origin: true, test_origin: true, signing_secret: true, test_signing_secret: None, vars: Vec::new(), profile: None }
    }
}

/// A running gateway with its origins and fixtures.
pub struct Gateway {
    pub url: String,
    pub keys: Keys,
    pub state_dir: PathBuf,
    pub wrangler_log: PathBuf,
    pub live_origin_url: String,
    /// The test origin's URL, when [`Options::test_origin`] started one.
    pub test_origin_url: Option<String>,
    guards: Vec<ChildStdin>,
    children: Vec<Child>,
}

/// A binary of the workspace (`keygate`, `keygate-demo`), as `cargo build --workspace --bins`
/// (run by `make test`) left it next to this test's own executable.
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe.parent().and_then(Path::parent).expect("target/<profile>/deps/..");
    let path = dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(path.is_file(), "{} is missing: build the workspace's binaries first (cargo build --workspace --bins)", path.display());
    path
}

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn bin_path() -> String {
    let node_bin = repo_root().join("node_modules/.bin");
    let cargo_bin = std::env::var("HOME").map(|h| format!("{h}/.cargo/bin:")).unwrap_or_default();
    format!("{}:{cargo_bin}{}", node_bin.display(), std::env::var("PATH").unwrap_or_default())
}

/// An origin that accepts connections and closes them unanswered, as a crashed origin does. The
/// port stays bound for the whole test run, so no other server of a parallel test binary can
/// take it (a port merely picked as free could be, and would answer).
fn dead_origin() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind the dead origin");
    let url = format!("http://{}", listener.local_addr().expect("dead origin address"));
    std::thread::spawn(move || {
        for connection in listener.incoming() {
            drop(connection);
        }
    });
    url
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("free port")
}

/// Runs `program args…` in its own process group under a guard that kills the group (and
/// deletes `cleanup`) when this test process goes away. Output goes to `log`.
fn spawn_guarded(program: &str, args: &[String], log: &Path, envs: &[(&str, &str)], cleanup: Option<&Path>) -> (Child, ChildStdin) {
    const GUARD: &str = r#"log=$1; cleanup=$2; shift 2
setsid "$@" >"$log" 2>&1 </dev/null &
pid=$!
cat >/dev/null
kill -TERM "-$pid" 2>/dev/null
( sleep 5; kill -KILL "-$pid" 2>/dev/null ) &
wait "$pid" 2>/dev/null
[ -n "$cleanup" ] && rm -rf "$cleanup"
exit 0"#;
    let mut command = Command::new("sh");
    command
        .arg("-c")
        .arg(GUARD)
        .arg("sh")
        .arg(log)
        .arg(cleanup.map(|p| p.display().to_string()).unwrap_or_default())
        .arg(program)
        .args(args)
        .env("PATH", bin_path())
        .env("WRANGLER_SEND_METRICS", "false")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    for (name, value) in envs {
        command.env(name, value);
    }
    let mut child = command.spawn().expect("spawn guarded child");
    let stdin = child.stdin.take().expect("guard stdin");
    (child, stdin)
}

/// Waits until `log` contains `needle`, returning the log; panics with the log on timeout.
fn wait_for_log(log: &Path, needle: &str, limit: Duration) -> String {
    let start = Instant::now();
    loop {
        let text = fs::read_to_string(log).unwrap_or_default();
        if text.contains(needle) {
            return text;
        }
        assert!(start.elapsed() < limit, "timed out waiting for {needle:?} in {}:\n{text}", log.display());
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Starts a demo origin that verifies with `secret` for its default audience, its own URL (which
/// the gateway is then configured to forward to).
fn start_origin(label: &str, secret: &str, dir: &Path) -> (String, Child, ChildStdin) {
    let log = dir.join(format!("origin-{label}.log"));
    let args = ["demo-origin", "--host", "127.0.0.1", "--port", "0", "--label", label].map(String::from);
    let (child, guard) = spawn_guarded(&bin("keygate-demo").display().to_string(), &args, &log, &[("ORIGIN_SIGNING_SECRET", secret)], None);
    let text = wait_for_log(&log, "listening on http://", Duration::from_secs(30));
    let url = text.split("listening on ").nth(1).and_then(|rest| rest.split_whitespace().next()).expect("origin url").to_string();
    (url, child, guard)
}

fn record_for(key: &PlaintextKey, env: KeyEnv, project: &str, role: Option<&str>, now: i64) -> KeyRecord {
    KeyRecord {
        id: key::generate_id().expect("id"),
        project: project.into(),
        name: format!("fixture {}", key.hint()),
        env,
        role: role.map(String::from),
        scopes: vec![],
        status: Status::Active,
        valid_from: None,
        valid_to: None,
        allowed_origins: None,
        allowed_networks: Vec::new(),
        allowed_countries: Vec::new(),
        created_at: Timestamp(now),
        updated_at: Timestamp(now),
        revision: 1,
        meta: BTreeMap::new(),
        hint: Some(key.hint()),
        family: None,
        rolled_from: None,
        tier: None,
        limits: None,
        limit_mode: None,
        credits: None,
    }
}

/// Builds fixture keys and the KV bulk-put JSON that seeds them.
fn fixtures() -> (Keys, String) {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_millis() as i64;
    let hour = 3_600_000;
    let mut entries = Vec::new();
    let mut add = |env: KeyEnv, project: &str, role: Option<&str>, edit: &dyn Fn(&mut KeyRecord)| -> String {
        let key = key::generate("kg", env).expect("key");
        let mut record = record_for(&key, env, project, role, now);
        edit(&mut record);
        entries.push(serde_json::json!({ "key": key.hash().storage_key(), "value": record::encode(&record) }));
        key.expose().to_string()
    };
    let keys = Keys {
        read_only: add(KeyEnv::Live, "acme", Some("read_only"), &|_| {}),
        writer: add(KeyEnv::Live, "acme", Some("writer"), &|_| {}),
        explicit_scopes: add(KeyEnv::Live, "acme", None, &|r| r.scopes = vec!["content:*".into()]),
        test_env: add(KeyEnv::Test, "acme", Some("read_only"), &|_| {}),
        revoked: add(KeyEnv::Live, "acme", Some("read_only"), &|r| r.status = Status::Revoked),
        inactive: add(KeyEnv::Live, "acme", Some("read_only"), &|r| r.status = Status::Inactive),
        expired: add(KeyEnv::Live, "acme", Some("read_only"), &|r| r.valid_to = Some(Timestamp(now - hour))),
        not_yet_valid: add(KeyEnv::Live, "acme", Some("read_only"), &|r| r.valid_from = Some(Timestamp(now + 24 * hour))),
        globex: add(KeyEnv::Live, "globex", Some("read_only"), &|_| {}),
        origin_locked: add(KeyEnv::Live, "acme", Some("read_only"), &|r| r.allowed_origins = Some(vec![LOCKED_ORIGIN.into()])),
        corrupt: {
            let key = key::generate("kg", KeyEnv::Live).expect("key");
            entries.push(serde_json::json!({ "key": key.hash().storage_key(), "value": "{\"id\": \"key_broken\", truncated" }));
            key.expose().to_string()
        },
        unknown: key::generate("kg", KeyEnv::Live).expect("key").expose().to_string(),
    };
    (keys, serde_json::Value::Array(entries).to_string())
}

/// The settings of seed profile `name`, as `make dev` passes them to `wrangler dev --var`
/// (`keygate profile-vars`: strings, lists and tables as JSON text).
pub fn profile_vars(name: &str) -> Vec<(String, String)> {
    let output =
        Command::new(bin("keygate")).args(["profile-vars", name, "--root"]).arg(repo_root()).output().expect("run keygate profile-vars");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(output.status.success(), "profile {name}: {}", String::from_utf8_lossy(&output.stderr));
    stdout.lines().filter_map(|line| line.split_once(':')).map(|(n, v)| (n.to_string(), v.to_string())).collect()
}

/// Route table used in tests: the shipped table from wrangler.toml plus the demo origin's
/// echo and status routes (never shipped).
fn test_routes(shipped: &toml::Value) -> toml::Value {
    let mut routes = Vec::new();
    // A live-only route (before the generic echo routes: first match wins).
    let mut live_only = toml::Table::new();
    live_only.insert("methods".into(), toml::Value::Array(vec!["*".into()]));
    live_only.insert("path".into(), "/__echo/live-only/*".into());
    live_only.insert("scopes".into(), toml::Value::Array(vec!["content:read".into()]));
    live_only.insert("envs".into(), toml::Value::Array(vec!["live".into()]));
    routes.push(toml::Value::Table(live_only));
    routes.extend(shipped.as_array().cloned().unwrap_or_default());
    for path in ["/__echo", "/__echo/*", "/__status/*", "/__slow/*"] {
        let mut route = toml::Table::new();
        route.insert("methods".into(), toml::Value::Array(vec!["*".into()]));
        route.insert("path".into(), path.into());
        route.insert("scopes".into(), toml::Value::Array(vec!["content:read".into()]));
        routes.push(toml::Value::Table(route));
    }
    toml::Value::Array(routes)
}

impl Gateway {
    /// Starts origins, writes a test wrangler config, seeds KV, starts `wrangler dev`.
    pub fn start(options: Options) -> Gateway {
        let root = repo_root();
        assert!(root.join("build/index.js").exists(), "build/index.js is missing: run `make build` (or `make test`) first");
        let dir = tempfile::Builder::new().prefix("keygate-it-").tempdir().expect("tempdir").keep();
        let state_dir = dir.join("state");
        let mut guards = Vec::new();
        let mut children = Vec::new();

        let live_origin_url = if options.live_origin {
            let (url, child, guard) = start_origin("live", SIGNING_SECRET, &dir);
            children.push(child);
            guards.push(guard);
            url
        } else {
            dead_origin()
        };
        let test_origin_url = options.test_origin.then(|| {
            let (url, child, guard) = start_origin("test", options.test_signing_secret.unwrap_or(SIGNING_SECRET), &dir);
            children.push(child);
            guards.push(guard);
            url
        });

        let shipped: toml::Table = fs::read_to_string(root.join("wrangler.toml")).expect("wrangler.toml").parse().expect("toml");
        let mut config = shipped.clone();
        config.insert("main".into(), root.join("build/index.js").display().to_string().into());
        config.remove("build");
        let vars = config.get_mut("vars").and_then(|v| v.as_table_mut()).expect("[vars]");
        vars.insert("ORIGIN_URL".into(), live_origin_url.clone().into());
        match &test_origin_url {
            Some(url) => vars.insert("ORIGIN_URL_TEST".into(), url.clone().into()),
            None => vars.remove("ORIGIN_URL_TEST"),
        };
        // Secrets go to .dev.vars (as in real use) so wrangler hides them in its binding list.
        let mut dev_vars = format!("ADMIN_TOKEN=\"{ADMIN_TOKEN}\"\n");
        if options.signing_secret {
            dev_vars.push_str(&format!("ORIGIN_SIGNING_SECRET=\"{SIGNING_SECRET}\"\n"));
        }
        if let Some(secret) = options.test_signing_secret {
            dev_vars.push_str(&format!("ORIGIN_SIGNING_SECRET_TEST=\"{secret}\"\n"));
        }
        fs::write(dir.join(".dev.vars"), dev_vars).expect("write .dev.vars");
        vars.insert("CORS_ALLOWED_ORIGINS".into(), toml::Value::Array(vec![CORS_ORIGIN.into()]));
        if let Some(profile) = options.profile {
            for (name, value) in profile_vars(profile) {
                vars.insert(name, value.into());
            }
        } else {
            let routes = test_routes(vars.get("ROUTES").expect("shipped ROUTES"));
            vars.insert("ROUTES".into(), routes);
        }
        for (name, value) in &options.vars {
            vars.insert(name.to_string(), (*value).into());
        }
        let config_path = dir.join("wrangler.toml");
        fs::write(&config_path, toml::to_string(&config).expect("toml out")).expect("write config");

        let (keys, seed) = fixtures();
        let seed_path = dir.join("seed.json");
        fs::write(&seed_path, seed).expect("write seed");
        let wrangler = root.join("node_modules/.bin/wrangler");
        let status = Command::new(&wrangler)
            .args(["kv", "bulk", "put", "--local", "--binding", "KEYS"])
            .arg("--persist-to")
            .arg(&state_dir)
            .arg("-c")
            .arg(&config_path)
            .arg(&seed_path)
            .current_dir(&dir)
            .env("PATH", bin_path())
            .env("WRANGLER_SEND_METRICS", "false")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .status()
            .expect("run wrangler kv bulk put");
        assert!(status.success(), "seeding KV failed");
        fs::remove_file(&seed_path).expect("remove seed");

        let port = free_port();
        let inspector = free_port();
        let wrangler_log = dir.join("wrangler.log");
        let args: Vec<String> = vec![
            "dev".into(),
            "-c".into(),
            config_path.display().to_string(),
            "--ip".into(),
            "127.0.0.1".into(),
            "--port".into(),
            port.to_string(),
            "--inspector-port".into(),
            inspector.to_string(),
            "--persist-to".into(),
            state_dir.display().to_string(),
            "--show-interactive-dev-session=false".into(),
        ];
        // As `make dev` runs it: no local trace store (it persists full URLs, see scripts/dev.sh).
        let (child, guard) =
            spawn_guarded(&wrangler.display().to_string(), &args, &wrangler_log, &[("X_LOCAL_OBSERVABILITY", "false")], Some(&dir));
        children.push(child);
        guards.push(guard);
        wait_for_log(&wrangler_log, "Ready on", Duration::from_secs(180));
        let url = format!("http://127.0.0.1:{port}");
        let gateway = Gateway { url, keys, state_dir, wrangler_log, live_origin_url, test_origin_url, guards, children };
        gateway.wait_until_answering();
        gateway
    }

    fn wait_until_answering(&self) {
        let start = Instant::now();
        loop {
            if self.request("GET", "/__keygate_not_a_route").call().is_ok() {
                return;
            }
            assert!(start.elapsed() < Duration::from_secs(60), "gateway never answered:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Everything wrangler dev (and the worker's console) printed so far.
    pub fn log(&self) -> String {
        fs::read_to_string(&self.wrangler_log).unwrap_or_default()
    }

    /// The log once it contains `needle` (worker console output reaches wrangler's log
    /// asynchronously, possibly after the response); panics after 20 s.
    pub fn log_containing(&self, needle: &str) -> String {
        wait_for_log(&self.wrangler_log, needle, Duration::from_secs(20))
    }

    /// A request to the admin API, authenticated with the test admin token.
    pub fn admin(&self, method: &str, path: &str) -> Req {
        self.request(method, &format!("/_keygate/v1{path}")).bearer(ADMIN_TOKEN)
    }

    /// Sends raw HTTP/1.0 request bytes (for what a well-behaved client library refuses to send:
    /// repeated headers, unnormalised paths, non-ASCII header bytes) and reads the answer.
    pub fn raw(&self, request: &[u8]) -> Resp {
        use std::io::Write;
        let address = self.url.trim_start_matches("http://").to_string();
        let mut stream = std::net::TcpStream::connect(&address).expect("connect");
        stream.set_read_timeout(Some(Duration::from_secs(30))).expect("timeout");
        stream.write_all(request).expect("write");
        let mut bytes = Vec::new();
        let _ = stream.read_to_end(&mut bytes);
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((text.as_str(), ""));
        let mut lines = head.lines();
        let status = lines.next().and_then(|l| l.split_whitespace().nth(1)).and_then(|s| s.parse().ok()).unwrap_or(0);
        let headers = lines.filter_map(|l| l.split_once(':')).map(|(n, v)| (n.trim().to_string(), v.trim().to_string())).collect();
        Resp { status, headers, body: body.to_string() }
    }

    /// A request builder to the gateway.
    pub fn request(&self, method: &str, path: &str) -> Req {
        Req::to(&self.url, method, path)
    }

    /// The replay of issue "a request signed for a test key is accepted by the live origin":
    /// sends `GET path` (an echo route) with the test key through the gateway, then sends the
    /// `X-Keygate-Identity` token the test origin received, unchanged and at once, directly to the
    /// test origin and to the live origin. Returns (through the gateway, replayed at the test origin,
    /// replayed at the live origin).
    pub fn replay_test_key_request(&self, path: &str) -> (Resp, Resp, Resp) {
        let test_origin = self.test_origin_url.as_deref().expect("a test origin");
        let delivered = self.request("GET", path).bearer(&self.keys.test_env).send();
        assert_eq!(delivered.status, 200, "{}", delivered.body);
        let echo = delivered.json();
        assert_eq!(echo["origin"], "test");
        let captured: Vec<(String, String)> = echo["headers"]
            .as_object()
            .expect("echoed headers")
            .iter()
            .filter(|(name, _)| name.starts_with("x-keygate-"))
            .map(|(name, value)| (name.clone(), value.as_str().unwrap_or_default().to_string()))
            .collect();
        let names: Vec<&str> = captured.iter().map(|(name, _)| name.as_str()).collect();
        assert_eq!(names, ["x-keygate-identity"], "the one identity header captured");
        let replay = |base: &str| captured.iter().fold(Req::to(base, "GET", path), |r, (n, v)| r.header(n, v)).send();
        (delivered, replay(test_origin), replay(&self.live_origin_url))
    }

    /// [`Gateway::replay_test_key_request`], asserting that the captured headers still verify
    /// at the test origin (so a refusal is not a broken replay) and that the live origin refuses
    /// them for `reason` (`audience` under a shared secret, `signature` under separate ones).
    pub fn assert_test_key_replay_refused_at_live(&self, path: &str, reason: &str) {
        let (_, at_test, at_live) = self.replay_test_key_request(path);
        assert_eq!((at_test.status, at_test.json()["origin"].as_str()), (200, Some("test")), "{}", at_test.body);
        assert_eq!(at_live.status, 401, "{}", at_live.body);
        let body = at_live.json();
        assert_eq!(body["origin"], "live");
        assert_eq!(body["error"]["code"], "ORIGIN_SIGNATURE_INVALID");
        assert_eq!(body["error"]["details"]["reason"], reason);
    }
}

/// A small request builder over ureq that never treats a status as an error.
pub struct Req {
    method: String,
    url: String,
    headers: Vec<(String, String)>,
    body: Option<Vec<u8>>,
}

/// A response, fully read.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Resp {
    /// First value of a header (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// Body as JSON (panics with the body when it is not JSON).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    /// Asserts this is a keygate error with `status` and `code`, in the documented shape.
    pub fn assert_error(&self, status: u16, code: &str) -> serde_json::Value {
        assert_eq!((self.status, self.json()["error"]["code"].as_str()), (status, Some(code)), "body: {}", self.body);
        assert!(self.header("content-type").unwrap_or("").starts_with("application/json"));
        let body = self.json();
        assert!(body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()));
        assert!(body["error"]["details"].is_object());
        assert!(body["meta"]["requestId"].as_str().is_some_and(|id| !id.is_empty()));
        let timestamp = body["meta"]["timestamp"].as_str().unwrap_or("");
        assert!(Timestamp::parse_rfc3339(timestamp).is_some(), "timestamp {timestamp:?}");
        if status == 401 {
            // Every 401 challenges: a Bearer one, except for a leak report, which GitHub signs.
            let scheme = if code == "REPORT_SIGNATURE_INVALID" {
                "GitHub-Signature realm=\"keygate-leak-reports\""
            } else {
                "Bearer realm=\"keygate"
            };
            assert!(self.header("www-authenticate").unwrap_or("").starts_with(scheme), "{:?}", self.header("www-authenticate"));
        }
        body
    }

    /// Asserts this is a refusal with `status` and the given content type, in any error dialect
    /// (the sibling of [`Resp::assert_error`], which checks keygate's own shape): the headers
    /// every dialect keeps (`X-Request-Id`, no-store, a Bearer challenge on a 401). Returns the
    /// JSON body.
    pub fn assert_refusal(&self, status: u16, content_type: &str) -> serde_json::Value {
        assert_eq!(self.status, status, "body: {}", self.body);
        assert_eq!(self.header("content-type").unwrap_or("").split(';').next(), Some(content_type), "{:?}", self.headers);
        assert_eq!(self.header("cache-control"), Some("no-store"));
        assert!(self.header("x-request-id").is_some_and(|id| !id.is_empty()), "X-Request-Id on every refusal");
        if status == 401 {
            assert!(self.header("www-authenticate").unwrap_or("").starts_with("Bearer realm=\"keygate\""), "{:?}", self.headers);
        }
        self.json()
    }
}

impl Req {
    /// A request to `base` (e.g. a demo origin, bypassing the gateway) + `path`.
    pub fn to(base: &str, method: &str, path: &str) -> Req {
        Req { method: method.to_string(), url: format!("{base}{path}"), headers: Vec::new(), body: None }
    }

    pub fn header(mut self, name: &str, value: &str) -> Req {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    pub fn bearer(self, key: &str) -> Req {
        self.header("Authorization", &format!("Bearer {key}"))
    }

    /// A JSON body with `Content-Type: application/json`.
    pub fn json(self, value: &serde_json::Value) -> Req {
        self.header("Content-Type", "application/json").body(&value.to_string())
    }

    pub fn body(mut self, body: &str) -> Req {
        self.body = Some(body.as_bytes().to_vec());
        self
    }

    fn agent() -> ureq::Agent {
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(30)))
            .max_redirects(0)
            .build()
            .into()
    }

    fn call(self) -> Result<Resp, ureq::Error> {
        let mut builder = ureq::http::Request::builder().method(self.method.as_str()).uri(&self.url);
        for (name, value) in &self.headers {
            builder = builder.header(name, value);
        }
        let request = builder.body(self.body.unwrap_or_default()).expect("request");
        let mut response = Self::agent().run(request)?;
        let headers = response.headers().iter().map(|(n, v)| (n.to_string(), String::from_utf8_lossy(v.as_bytes()).into_owned())).collect();
        let mut body = String::new();
        let _ = response.body_mut().as_reader().read_to_string(&mut body);
        Ok(Resp { status: response.status().as_u16(), headers, body })
    }

    /// Sends the request; panics if no HTTP answer arrives.
    pub fn send(self) -> Resp {
        let url = self.url.clone();
        self.call().unwrap_or_else(|e| panic!("{url}: {e}"))
    }
}

/// Byte-level search of every file under `dir` for any of `needles`. Returns (file, needle).
pub fn find_in_tree(dir: &Path, needles: &[&str]) -> Vec<(PathBuf, String)> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(path) = stack.pop() {
        if path.is_dir() {
            if let Ok(entries) = fs::read_dir(&path) {
                stack.extend(entries.flatten().map(|e| e.path()));
            }
        } else if let Ok(bytes) = fs::read(&path) {
            for needle in needles {
                if bytes.windows(needle.len()).any(|w| w == needle.as_bytes()) {
                    found.push((path.clone(), needle.to_string()));
                }
            }
        }
    }
    found
}

/// Standard base64 with padding (RFC 4648 §4), written here so the tests check keygate's
/// encodings against an implementation of their own.
pub fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = (chunk[0] as u32) << 16 | (*chunk.get(1).unwrap_or(&0) as u32) << 8 | *chunk.get(2).unwrap_or(&0) as u32;
        for i in 0..4 {
            out.push(if i <= chunk.len() { ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char } else { '=' });
        }
    }
    out
}
