//! `keygate-demo demo-keys`: seeds demo keys into a running gateway through its admin API.
//!
//! Creates one active live key per built-in role, plus keys that must be refused (expired,
//! inactive, not yet valid), a `test`-environment key and a key of another project (`globex`),
//! all tagged `meta.demo = "true"`. The admin API allows a past `valid_to` only on PATCH, and
//! a key is created active, so the expired and the inactive key are created first and changed
//! right after. The keys thus live in the key registry (and, written through, in KV) like any
//! other key, and `keygate keys …` can manage them.
//!
//! Every call goes through the `keygate keys` implementation ([`keygate_cli::keys::run`] in `--json`
//! mode), so requests, token handling and error messages are exactly the CLI's. The plaintext
//! keys are printed to stdout once, in a table; they are never written to stderr or a file.
//! If a call fails, the demo keys created so far are revoked (best effort) and the error names
//! the key and the API's answer.

use std::fmt::Write as _;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use clap::Parser;
use keygate_core::scope::BUILTIN_ROLES;
use keygate_core::timestamp::Timestamp;
use serde_json::Value;

use keygate_cli::keys;

const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 24 * HOUR_MS;

/// Project of the extra "other project" demo key.
pub const OTHER_PROJECT: &str = "globex";

/// Which demo keys to make: the shipped set (one per built-in role), or a profile's
/// (`[demo]` in `profiles/<name>.toml`, see [`crate::profile`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// One active live key each: (label, what it is granted).
    pub grants: Vec<(String, Grant)>,
    /// The grant of the keys that show refusals (expired, inactive, not yet valid, other
    /// project) and of the `test` key.
    pub read: Grant,
    /// What those keys are called (`demo test <read_name>`, …).
    pub read_name: String,
    /// Whether the key format can mint `test` keys.
    pub test_env: bool,
    /// The path of the `curl` example.
    pub path: String,
}

/// What a demo key is granted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Grant {
    /// A role.
    Role(String),
    /// Explicit scopes (none: the deployment's `EMPTY_SCOPES` decides).
    Scopes(Vec<String>),
}

impl Default for Plan {
    fn default() -> Plan {
        Plan {
            grants: BUILTIN_ROLES.iter().map(|(role, _)| (role.to_string(), Grant::Role(role.to_string()))).collect(),
            read: Grant::Role("read_only".into()),
            read_name: "read_only".into(),
            test_env: true,
            path: "/v1/public/cms/articles/items".into(),
        }
    }
}

/// Where and as whom to seed. No `Debug`: it holds the admin token.
pub struct Options {
    /// Gateway base URL.
    pub url: String,
    /// Path of the admin API (the gateway's `ADMIN_PREFIX`).
    pub prefix: String,
    /// Project of the demo keys (all but the other-project one).
    pub project: String,
    /// The gateway's `ADMIN_TOKEN`.
    pub token: String,
    /// Which keys to make.
    pub plan: Plan,
}

/// What to change right after creating a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Then {
    Nothing,
    /// PATCH `valid_to` to this past instant (create refuses a past `valid_to`).
    Expire(Timestamp),
    /// PATCH `status` to `inactive`.
    Disable,
}

/// One demo key to create.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Spec {
    name: String,
    project: String,
    grant: Grant,
    env: &'static str,
    valid_from: Option<Timestamp>,
    then: Then,
}

/// The demo keys of `plan` for `project` at `now`.
fn specs(project: &str, now: Timestamp, plan: &Plan) -> Vec<Spec> {
    let spec = |name: String, grant: &Grant| Spec {
        name,
        project: project.to_string(),
        grant: grant.clone(),
        env: "live",
        valid_from: None,
        then: Then::Nothing,
    };
    let other = other_project(project);
    let read = &plan.read;
    let label = &plan.read_name;
    let mut out: Vec<Spec> = plan.grants.iter().map(|(name, grant)| spec(format!("demo {name}"), grant)).collect();
    out.push(Spec { then: Then::Expire(Timestamp(now.0 - HOUR_MS)), ..spec("demo expired".into(), read) });
    out.push(Spec { then: Then::Disable, ..spec("demo inactive".into(), read) });
    out.push(Spec { valid_from: Some(Timestamp(now.0 + DAY_MS)), ..spec("demo not yet valid".into(), read) });
    if plan.test_env {
        out.push(Spec { env: "test", ..spec(format!("demo test {label}"), read) });
    }
    out.push(Spec { project: other.into(), ..spec(format!("demo {other} {label}"), read) });
    out
}

/// The project of the other-project key: `globex`, unless that is the demo project itself.
fn other_project(project: &str) -> &'static str {
    if project == OTHER_PROJECT {
        "initech"
    } else {
        OTHER_PROJECT
    }
}

/// `keygate keys` arguments (after the global flags) that create the key. Values are passed
/// as `--flag=value` so none can be taken for a flag.
fn create_command(spec: &Spec) -> Vec<String> {
    let mut command = vec![
        "create".to_string(),
        format!("--project={}", spec.project),
        format!("--name={}", spec.name),
        format!("--env={}", spec.env),
        "--meta=demo=true".to_string(),
    ];
    match &spec.grant {
        Grant::Role(role) => command.push(format!("--role={role}")),
        Grant::Scopes(scopes) => command.extend(scopes.iter().map(|scope| format!("--scope={scope}"))),
    }
    if let Some(from) = spec.valid_from {
        command.push(format!("--valid-from={}", from.to_rfc3339()));
    }
    command
}

/// `keygate keys` arguments of the change applied to key `id` right after creating it.
fn then_command(then: Then, id: &str) -> Option<Vec<String>> {
    let (command, flag) = match then {
        Then::Nothing => return None,
        Then::Expire(to) => ("update", Some(format!("--valid-to={}", to.to_rfc3339()))),
        Then::Disable => ("disable", None),
    };
    let mut out = vec![command.to_string()];
    out.extend(flag);
    out.extend(["--".to_string(), id.to_string()]);
    Some(out)
}

/// `--project` as the admin API accepts it: 1–64 of `a-z 0-9 - _`.
fn check_project(project: &str) -> Result<(), String> {
    let ok = (1..=64).contains(&project.len())
        && project.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(format!("--project {project:?} must be 1-64 characters of a-z, 0-9, - or _"))
    }
}

/// `keygate keys` with the global flags under the hood; `--json` so answers can be read back.
#[derive(Debug, Parser)]
#[command(name = "keygate")]
struct KeysCommandLine {
    #[command(flatten)]
    keys: keys::KeysArgs,
}

/// Runs admin API calls through the `keys` implementation. No `Debug`: it holds the token.
struct Admin {
    global: Vec<String>,
}

impl Admin {
    fn new(options: &Options) -> Admin {
        let global = vec![
            "--json".to_string(),
            format!("--url={}", options.url),
            format!("--prefix={}", options.prefix),
            format!("--admin-token={}", options.token),
        ];
        Admin { global }
    }

    /// Runs one `keys` command; its JSON answer, or the CLI's error text (never a key).
    fn call(&self, command: &[String]) -> Result<Value, String> {
        let argv = std::iter::once("keys".to_string()).chain(self.global.iter().cloned()).chain(command.iter().cloned());
        // The message of a clap error may quote arguments, one of which is the token.
        let args = KeysCommandLine::try_parse_from(argv)
            .map_err(|e| format!("internal error: `keys {}` arguments rejected ({:?})", command[0], e.kind()))?
            .keys;
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let code = keys::run(&args, &mut out, &mut err);
        if code != 0 {
            // The CLI's text, minus what only fits its own command line (demo-keys has no
            // --admin-token or --help hint to give).
            let err = String::from_utf8_lossy(&err)
                .replace(" or --admin-token", "")
                .replace(" (preferred) or pass --admin-token", "")
                .replace(" / --admin-token", "");
            let message = err
                .lines()
                .map(str::trim_end)
                .filter(|line| !line.is_empty() && !line.starts_with("For more information"))
                .collect::<Vec<_>>()
                .join("\n");
            let mut message = message.strip_prefix("error: ").unwrap_or(&message).to_string();
            if code == keys::EXIT_UNREACHABLE {
                message += "\n  hint: is the gateway running (make dev) and is --url / KEYGATE_URL right?";
            }
            return Err(message);
        }
        // Never quote the answer: a create answer holds a plaintext key.
        serde_json::from_slice(&out).map_err(|_| format!("the answer to `keys {}` is not JSON", command[0]))
    }
}

/// A created demo key: its plaintext and its latest record. No `Debug`: it holds the key.
struct Seeded {
    key: String,
    record: Value,
}

impl Seeded {
    fn field(&self, name: &str) -> &str {
        self.record.get(name).and_then(Value::as_str).unwrap_or("-")
    }
}

/// The key and the record id of a create answer.
fn created(answer: Value) -> Result<Seeded, String> {
    let key = answer.get("key").and_then(Value::as_str).filter(|k| !k.is_empty()).map(str::to_string);
    let record = answer.get("record").filter(|r| r.get("id").and_then(Value::as_str).is_some_and(|id| !id.is_empty()));
    match (key, record) {
        (Some(key), Some(record)) => Ok(Seeded { key, record: record.clone() }),
        _ => Err("the create answer has no key or no record id".into()),
    }
}

/// Creates every demo key (and applies its follow-up change); on failure revokes those made.
fn seed(admin: &Admin, specs: &[Spec]) -> Result<Vec<Seeded>, String> {
    let mut seeded: Vec<Seeded> = Vec::new();
    for spec in specs {
        match seed_one(admin, spec) {
            Ok(key) => seeded.push(key),
            Err((id, problem)) => {
                let mut made: Vec<String> = seeded.iter().map(|s| s.field("id").to_string()).collect();
                made.extend(id);
                return Err(format!("demo key {:?} ({}): {problem}{}", spec.name, spec.project, revoke_all(admin, &made)));
            }
        }
    }
    Ok(seeded)
}

/// Creates one demo key and applies its follow-up change. The error carries the key's id if
/// the key was created.
fn seed_one(admin: &Admin, spec: &Spec) -> Result<Seeded, (Option<String>, String)> {
    let mut key = admin.call(&create_command(spec)).and_then(created).map_err(|e| (None, format!("creating it failed: {e}")))?;
    let id = key.field("id").to_string();
    if let Some(command) = then_command(spec.then, &id) {
        let record = admin.call(&command).map_err(|e| (Some(id.clone()), format!("changing it after creating it failed: {e}")))?;
        if record.get("id").and_then(Value::as_str) != Some(id.as_str()) {
            return Err((Some(id), "the answer to the change is not the key's record".into()));
        }
        key.record = record;
    }
    Ok(key)
}

/// Revokes the keys of a failed run (best effort); what happened, for the error message.
fn revoke_all(admin: &Admin, ids: &[String]) -> String {
    if ids.is_empty() {
        return String::new();
    }
    let left: Vec<&str> = ids
        .iter()
        .filter(|id| admin.call(&["revoke".to_string(), "--".to_string(), id.to_string()]).is_err())
        .map(String::as_str)
        .collect();
    if left.is_empty() {
        format!("\nrevoked the {} demo key(s) created before the failure", ids.len())
    } else {
        format!("\ncould not revoke demo key(s) created before the failure: {} (use keygate keys revoke ID)", left.join(" "))
    }
}

/// How the gateway will judge a record at `now`: its status, or why an active key is refused.
fn state(record: &Value, now: Timestamp) -> &'static str {
    let time = |name: &str| record.get(name).and_then(Value::as_str).and_then(Timestamp::parse_rfc3339);
    match record.get("status").and_then(Value::as_str) {
        Some("inactive") => "inactive",
        Some("revoked") => "revoked",
        Some("active") if time("valid_to").is_some_and(|t| t <= now) => "expired",
        Some("active") if time("valid_from").is_some_and(|t| t > now) => "not yet valid",
        Some("active") => "active",
        _ => "unknown",
    }
}

/// Drops control characters, so an answer cannot steer the terminal.
fn clean(text: &str) -> String {
    text.chars().filter(|c| !c.is_control()).collect()
}

/// The listing printed to stdout: a table with the plaintext keys and a curl example.
fn listing(keys: &[Seeded], project: &str, gateway_url: &str, now: Timestamp, plan: &Plan) -> String {
    let mut out = String::new();
    let row = |out: &mut String, cells: [&str; 6]| {
        let _ = writeln!(out, "{:<24} {:<16} {:<8} {:<5} {:<14} {}", cells[0], cells[1], cells[2], cells[3], cells[4], cells[5]);
    };
    row(&mut out, ["NAME", "ROLE", "PROJECT", "ENV", "STATUS", "KEY"]);
    for key in keys {
        let cells = ["name", "role", "project", "env"].map(|name| clean(key.field(name)));
        let grant = match key.record.get("scopes").and_then(Value::as_array) {
            Some(scopes) if cells[1] == "-" => clean(&scopes.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(",")),
            _ => cells[1].clone(),
        };
        row(&mut out, [&cells[0], &grant, &cells[2], &cells[3], state(&key.record, now), &clean(&key.key)]);
    }
    // The curl example uses the first active live key of the project with the plan's read grant.
    let read_names: Vec<String> =
        plan.grants.iter().filter(|(_, grant)| *grant == plan.read).map(|(name, _)| format!("demo {name}")).collect();
    let read = keys.iter().find(|k| {
        read_names.iter().any(|n| n == k.field("name"))
            && k.field("project") == project
            && k.field("env") == "live"
            && state(&k.record, now) == "active"
    });
    if let Some(key) = read {
        let base = gateway_url.trim_end_matches('/');
        let _ = writeln!(out, "\nTry the {} key:", clean(&plan.read_name));
        let _ = writeln!(out, "curl -H \"Authorization: Bearer {}\" {base}{}", clean(&key.key), clean(&plan.path));
    }
    out
}

/// Seeds the demo keys through the admin API and prints the listing to stdout.
pub fn run(options: &Options) -> Result<(), String> {
    check_project(&options.project)?;
    let now = now_seconds_precision();
    let admin = Admin::new(options);
    let seeded = seed(&admin, &specs(&options.project, now, &options.plan)).map_err(|e| format!("seeding demo keys failed: {e}"))?;
    print!("{}", listing(&seeded, &options.project, &options.url, now_seconds_precision(), &options.plan));
    Ok(())
}

/// Now, truncated to whole seconds so stored dates read cleanly.
fn now_seconds_precision() -> Timestamp {
    let seconds = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    Timestamp(i64::try_from(seconds).unwrap_or(i64::MAX / 1000) * 1000)
}

/// The demo keys of seed profile `name` (`profiles/<name>.toml`): its `[demo]` table, or the shipped set when it has none.
///
/// ```toml
/// [demo]
/// path = "/v1/posts"                      # the curl example
/// test_env = true                         # whether the key format mints test keys
/// keys = [ { name = "reader", scopes = ["posts:read"] }, { name = "admin", role = "admin" } ]
/// read = "reader"                         # the key whose grant the refusal examples get
/// ```
///
/// Without `keys` (and `read`), the shipped set: one key per built-in role, `read_only` for the
/// refusal examples.
/// ```toml
/// ```
pub fn plan_of_profile(root: &Path, name: &str) -> Result<Plan, String> {
    let (text, path) = keygate_cli::profile::read(root, name)?;
    parse_demo(&text).map_err(|e| format!("profile {name:?} ({path}): [demo]: {e}"))
}

fn parse_demo(text: &str) -> Result<Plan, String> {
    let table: toml::Table = text.parse().map_err(|e: toml::de::Error| e.message().to_string())?;
    let Some(demo) = table.get("demo") else { return Ok(Plan::default()) };
    let demo = demo.as_table().ok_or("must be a table")?;
    let path = demo.get("path").and_then(toml::Value::as_str).ok_or("path (a string) is required")?.to_string();
    let test_env = match demo.get("test_env") {
        None => true,
        Some(value) => value.as_bool().ok_or("test_env must be true or false")?,
    };
    let Some(keys) = demo.get("keys") else {
        // No keys named: the shipped set (one per built-in role) with this profile's path.
        return Ok(Plan { test_env, path, ..Plan::default() });
    };
    let mut grants = Vec::new();
    for key in keys.as_array().ok_or("keys must be a list")? {
        let name = key.get("name").and_then(toml::Value::as_str).ok_or("every key needs a name")?.to_string();
        let grant = match (key.get("role").and_then(toml::Value::as_str), key.get("scopes").and_then(toml::Value::as_array)) {
            (Some(role), None) => Grant::Role(role.to_string()),
            (None, Some(scopes)) => {
                Grant::Scopes(scopes.iter().map(|s| s.as_str().map(String::from).ok_or("scopes are strings")).collect::<Result<_, _>>()?)
            }
            _ => return Err(format!("key {name:?}: give a role or scopes (one of them)")),
        };
        grants.push((name, grant));
    }
    let read_name = demo.get("read").and_then(toml::Value::as_str).ok_or("read (the name of one of keys) is required")?.to_string();
    let read = grants
        .iter()
        .find(|(name, _)| *name == read_name)
        .map(|(_, grant)| grant.clone())
        .ok_or(format!("read {read_name:?} names none of keys"))?;
    Ok(Plan { grants, read, read_name, test_env, path })
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::net::TcpListener;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::thread::JoinHandle;
    use std::time::Duration;

    use serde_json::{json, Map};

    use super::*;

    const NOW: Timestamp = Timestamp(1_800_000_000_000);
    const TOKEN: &str = "demo-test-admin-token-0123456789";

    fn options(url: &str, token: &str) -> Options {
        Options { url: url.into(), prefix: "/_keygate/v1".into(), project: "acme".into(), token: token.into(), plan: Plan::default() }
    }

    /// A request as the fake admin API saw it.
    #[derive(Debug)]
    struct Seen {
        method: String,
        url: String,
        body: Value,
    }

    /// A fake admin API keeping records in memory. It answers 400 VALIDATION_FAILED to the
    /// `fail_on`-th create (1-based) and 401 to a wrong token. Stop it with the returned flag.
    struct FakeApi {
        url: String,
        stop: Arc<AtomicBool>,
        handle: JoinHandle<Vec<Seen>>,
    }

    impl FakeApi {
        fn start(fail_on: Option<usize>) -> FakeApi {
            let server = tiny_http::Server::http("127.0.0.1:0").unwrap();
            let url = format!("http://{}", server.server_addr().to_ip().unwrap());
            let stop = Arc::new(AtomicBool::new(false));
            let flag = Arc::clone(&stop);
            let handle = std::thread::spawn(move || {
                let mut seen = Vec::new();
                let mut records: Map<String, Value> = Map::new();
                let mut creates = 0;
                while !flag.load(Ordering::SeqCst) {
                    let Ok(Some(mut request)) = server.recv_timeout(Duration::from_millis(50)) else { continue };
                    let authorized =
                        request.headers().iter().any(|h| h.field.equiv("Authorization") && h.value.as_str() == format!("Bearer {TOKEN}"));
                    let mut text = String::new();
                    let _ = request.as_reader().read_to_string(&mut text);
                    let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
                    let method = request.method().as_str().to_string();
                    let url = request.url().to_string();
                    let id = url.strip_prefix("/_keygate/v1/keys/").unwrap_or("").to_string();
                    let (status, answer) = if !authorized {
                        (401, json!({"error": {"code": "UNAUTHORIZED", "message": "missing or wrong admin token", "details": null}}))
                    } else if method == "POST" && url == "/_keygate/v1/keys" {
                        creates += 1;
                        if Some(creates) == fail_on {
                            let fields = json!({"fields": {"role": "unknown role"}});
                            (400, json!({"error": {"code": "VALIDATION_FAILED", "message": "the request is invalid", "details": fields}}))
                        } else {
                            let id = format!("key_{creates}");
                            let mut record = json!({
                                "id": id, "env": "live", "scopes": [], "status": "active", "valid_from": null,
                                "valid_to": null, "allowed_origins": null, "revision": 1, "meta": {},
                            });
                            for (name, value) in body.as_object().unwrap() {
                                record[name] = value.clone();
                            }
                            records.insert(id, record.clone());
                            let key = format!("kg_{}_FakePlaintext{creates:03}", record["env"].as_str().unwrap());
                            (201, json!({"key": key, "record": record}))
                        }
                    } else if let Some(record) = records.get_mut(&id) {
                        match method.as_str() {
                            "PATCH" => body.as_object().unwrap().iter().for_each(|(k, v)| record[k] = v.clone()),
                            "DELETE" => record["status"] = json!("revoked"),
                            _ => {}
                        }
                        (200, record.clone())
                    } else {
                        (404, json!({"error": {"code": "NOT_FOUND", "message": "no such key", "details": null}}))
                    };
                    seen.push(Seen { method, url, body });
                    let content_type = tiny_http::Header::from_bytes("content-type", "application/json").unwrap();
                    let response = tiny_http::Response::from_string(answer.to_string()).with_status_code(status);
                    let _ = request.respond(response.with_header(content_type));
                }
                seen
            });
            FakeApi { url, stop, handle }
        }

        fn finish(self) -> Vec<Seen> {
            self.stop.store(true, Ordering::SeqCst);
            self.handle.join().unwrap()
        }
    }

    #[test]
    fn the_set_covers_every_role_and_each_refusal_case() {
        let specs = specs("acme", NOW, &Plan::default());
        for (role, _) in BUILTIN_ROLES {
            assert!(
                specs.iter().any(|s| s.grant == Grant::Role(role.to_string())
                    && s.env == "live"
                    && s.project == "acme"
                    && s.then == Then::Nothing
                    && s.valid_from.is_none()),
                "{role}"
            );
        }
        assert_eq!(specs.iter().filter(|s| matches!(s.then, Then::Expire(to) if to < NOW)).count(), 1);
        assert_eq!(specs.iter().filter(|s| s.then == Then::Disable).count(), 1);
        assert_eq!(specs.iter().filter(|s| s.valid_from.is_some_and(|from| from > NOW)).count(), 1);
        assert_eq!(specs.iter().filter(|s| s.env == "test").count(), 1);
        assert_eq!(specs.iter().filter(|s| s.project == OTHER_PROJECT).count(), 1);
        let names: HashSet<&str> = specs.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names.len(), specs.len(), "names are unique");
        assert!(specs.iter().any(|s| s.name == "demo read_only"));
        assert!(super::specs("globex", NOW, &Plan::default()).iter().all(|s| s.project == "globex" || s.project == "initech"));
        assert_eq!(super::specs("globex", NOW, &Plan::default()).iter().filter(|s| s.project == "initech").count(), 1);
    }

    #[test]
    fn commands_parse_as_keys_commands() {
        let admin = Admin::new(&options("http://127.0.0.1:9", "-looks-like-a-flag"));
        for spec in specs("acme", NOW, &Plan::default()) {
            let mut commands = vec![create_command(&spec)];
            commands.extend(then_command(spec.then, "-odd-id"));
            for command in commands {
                let argv = std::iter::once("keys".to_string()).chain(admin.global.iter().cloned()).chain(command);
                let parsed = KeysCommandLine::try_parse_from(argv).unwrap_or_else(|e| panic!("{}: {e}", spec.name));
                assert!(parsed.keys.json);
                assert_eq!(parsed.keys.url, "http://127.0.0.1:9");
            }
        }
        assert_eq!(then_command(Then::Nothing, "key_1"), None);
    }

    #[test]
    fn seeding_sends_the_expected_requests_and_lists_every_key() {
        let api = FakeApi::start(None);
        let admin = Admin::new(&options(&api.url, TOKEN));
        let specs = specs("acme", NOW, &Plan::default());
        let seeded = seed(&admin, &specs).unwrap_or_else(|e| panic!("{e}"));
        let seen = api.finish();

        let creates: Vec<&Seen> = seen.iter().filter(|s| s.method == "POST").collect();
        assert_eq!(creates.len(), specs.len());
        assert!(creates.iter().all(|s| s.url == "/_keygate/v1/keys"));
        assert_eq!(
            creates[0].body,
            json!({"project": "acme", "name": "demo super_admin", "env": "live", "role": "super_admin", "meta": {"demo": "true"}})
        );
        let body = |name: &str| &creates.iter().find(|s| s.body["name"] == name).unwrap().body;
        assert_eq!(body("demo not yet valid")["valid_from"], json!(Timestamp(NOW.0 + DAY_MS).to_rfc3339()));
        assert_eq!(body("demo test read_only")["env"], json!("test"));
        assert_eq!(body("demo globex read_only")["project"], json!("globex"));
        assert!(creates.iter().all(|s| s.body.get("valid_to").is_none()), "create never sends valid_to");

        let patches: Vec<(&str, &Value)> = seen.iter().filter(|s| s.method == "PATCH").map(|s| (s.url.as_str(), &s.body)).collect();
        let expired = BUILTIN_ROLES.len() + 1;
        let to = Timestamp(NOW.0 - HOUR_MS).to_rfc3339();
        assert_eq!(
            patches,
            vec![
                (format!("/_keygate/v1/keys/key_{expired}").as_str(), &json!({"valid_to": to})),
                (format!("/_keygate/v1/keys/key_{}", expired + 1).as_str(), &json!({"status": "inactive"})),
            ]
        );
        assert!(seen.iter().all(|s| s.method != "DELETE"));

        let states: Vec<&str> = seeded.iter().map(|k| state(&k.record, NOW)).collect();
        for wanted in ["expired", "inactive", "not yet valid"] {
            assert_eq!(states.iter().filter(|s| **s == wanted).count(), 1, "{wanted}");
        }
        let text = listing(&seeded, "acme", "http://127.0.0.1:9999/", NOW, &Plan::default());
        for key in &seeded {
            assert_eq!(text.matches(&key.key).count(), if key.field("name") == "demo read_only" { 2 } else { 1 });
        }
        let read_only = seeded.iter().find(|k| k.field("name") == "demo read_only").unwrap();
        assert!(text
            .contains(&format!("curl -H \"Authorization: Bearer {}\" http://127.0.0.1:9999/v1/public/cms/articles/items", read_only.key)));
        let expired_row = text.lines().find(|l| l.starts_with("demo expired ")).unwrap();
        assert!(expired_row.contains(" expired ") && expired_row.contains("read_only") && expired_row.contains("acme"));
        assert!(text.lines().any(|l| l.starts_with("demo test read_only ") && l.contains(" test ")));
    }

    #[test]
    fn a_failure_names_the_key_and_revokes_the_keys_already_made() {
        let api = FakeApi::start(Some(3));
        let admin = Admin::new(&options(&api.url, TOKEN));
        let error = match seed(&admin, &specs("acme", NOW, &Plan::default())) {
            Ok(_) => panic!("seeding must fail"),
            Err(error) => error,
        };
        let seen = api.finish();
        let third = &specs("acme", NOW, &Plan::default())[2].name;
        assert!(error.starts_with(&format!("demo key {third:?} (acme): creating it failed: VALIDATION_FAILED: ")), "{error}");
        assert!(error.contains("role: unknown role"), "{error}");
        assert!(error.contains("revoked the 2 demo key(s)"), "{error}");
        assert!(!error.contains("FakePlaintext") && !error.contains("For more information"), "{error}");
        let deletes: Vec<&str> = seen.iter().filter(|s| s.method == "DELETE").map(|s| s.url.as_str()).collect();
        assert_eq!(deletes, ["/_keygate/v1/keys/key_1", "/_keygate/v1/keys/key_2"]);
    }

    #[test]
    fn a_wrong_token_fails_without_echoing_it() {
        let api = FakeApi::start(None);
        let admin = Admin::new(&options(&api.url, "wrong-token-zqxzqx"));
        let error = seed(&admin, &specs("acme", NOW, &Plan::default())).err().unwrap();
        let seen = api.finish();
        assert_eq!(seen.len(), 1, "stops at the first failure");
        assert!(error.contains("UNAUTHORIZED"), "{error}");
        assert!(error.contains("\n  hint: check the admin token (KEYGATE_ADMIN_TOKEN)"), "{error}");
        assert!(!error.contains("zqx"), "{error}");
    }

    #[test]
    fn an_unreachable_gateway_fails_with_a_hint() {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let error = run(&options(&format!("http://127.0.0.1:{port}"), TOKEN)).unwrap_err();
        assert!(
            error.starts_with("seeding demo keys failed: demo key \"demo super_admin\" (acme): creating it failed: cannot reach "),
            "{error}"
        );
        assert!(error.contains("is the gateway running"), "{error}");
        assert!(!error.contains(TOKEN));
    }

    #[test]
    fn bad_usage_fails_before_any_request() {
        for project in ["", "Acme", "a b", &"x".repeat(65)] {
            let error = run(&Options { project: project.into(), ..options("http://127.0.0.1:9", TOKEN) }).unwrap_err();
            assert!(error.contains("--project"), "{project}: {error}");
        }
        let error = run(&options("gw.example.com", TOKEN)).unwrap_err();
        assert!(error.contains("expected an http(s):// URL"), "{error}");
        assert!(!error.contains("For more information"), "{error}");
    }

    #[test]
    fn states() {
        let record = |status: &str, from: Option<i64>, to: Option<i64>| {
            let time = |t: Option<i64>| t.map_or(Value::Null, |t| json!(Timestamp(t).to_rfc3339()));
            json!({"status": status, "valid_from": time(from), "valid_to": time(to)})
        };
        let rows = [
            (record("active", None, None), "active"),
            (record("active", Some(NOW.0 - 1000), Some(NOW.0 + 1000)), "active"),
            (record("active", None, Some(NOW.0 - 1000)), "expired"),
            (record("active", Some(NOW.0 + 1000), None), "not yet valid"),
            (record("inactive", None, Some(NOW.0 - 1000)), "inactive"),
            (record("revoked", None, None), "revoked"),
            (json!({}), "unknown"),
        ];
        for (record, wanted) in rows {
            assert_eq!(state(&record, NOW), wanted, "{record}");
        }
    }

    #[test]
    fn a_demo_table_names_the_demo_keys() {
        let plan = parse_demo("[vars]\nA = \"1\"\n[demo]\npath = \"/v1/posts\"\ntest_env = false\nread = \"reader\"\nkeys = [{ name = \"reader\", scopes = [\"posts:read\"] }, { name = \"all\", scopes = [] }, { name = \"boss\", role = \"admin\" }]\n").unwrap();
        assert_eq!(plan.path, "/v1/posts");
        assert!(!plan.test_env);
        assert_eq!(plan.read, Grant::Scopes(vec!["posts:read".into()]));
        assert_eq!(plan.grants[2], ("boss".into(), Grant::Role("admin".into())));
        assert_eq!(parse_demo("[vars]\nA = \"1\"\n").unwrap(), Plan::default(), "no [demo]: the shipped set");
        assert_eq!(
            parse_demo("[demo]\npath = \"/v1/articles\"\n").unwrap(),
            Plan { path: "/v1/articles".into(), ..Plan::default() },
            "no keys: the built-in roles"
        );
        for (what, text) in [
            ("no path", "[demo]\nread = \"a\"\nkeys = [{ name = \"a\", role = \"r\" }]\n"),
            ("read names no key", "[demo]\npath = \"/\"\nread = \"b\"\nkeys = [{ name = \"a\", role = \"r\" }]\n"),
            ("role and scopes", "[demo]\npath = \"/\"\nread = \"a\"\nkeys = [{ name = \"a\", role = \"r\", scopes = [] }]\n"),
        ] {
            assert!(parse_demo(text).is_err(), "{what}");
        }
    }
}
