//! `keygate keys`: manage API keys through the gateway's admin API (`docs/admin-api.md`).
//!
//! ```text
//! keygate keys create --project P --name N [--env live|test] [--role R] [--scope S]...
//!                     [--valid-from T] [--valid-to T] [--allowed-origin O]...
//!                     [--allowed-network CIDR]... [--allowed-country CC]... [--meta k=v]...
//!                     [--tier NAME] [--limit NAME=LIMIT/WINDOW_SECONDS]... [--limit-mode exact|fast]
//!                     [--credits N] [--credits-refill AMOUNT/day|month/reset|add]
//! keygate keys list --project P [--status S] [--limit N] [--cursor C] [--all]
//! keygate keys show|enable|disable|revoke|audit|usage|webhooks ID
//! keygate keys update ID [--name N] [--role R | --no-role] [--scope S]... [--clear-scopes]
//!                     [--valid-from T | --clear-valid-from] [--valid-to T | --lifetime]
//!                     [--allowed-origin O]... [--any-origin] [--allowed-network CIDR]...
//!                     [--clear-networks] [--allowed-country CC]... [--clear-countries] [--meta k=v]...
//!                     [--tier NAME | --no-tier] [--limit NAME=LIMIT/WINDOW_SECONDS]... [--clear-limits]
//!                     [--limit-mode exact|fast | --default-limit-mode]
//!                     [--credits-refill AMOUNT/INTERVAL/MODE | --credits-no-refill | --no-credits]
//! keygate keys roll ID [--grace-seconds N]
//! keygate keys credits add|set ID AMOUNT
//! ```
//! `show` makes a second request (`GET /keys/{id}/usage`) and appends last use and today's
//! counts; if that fails the record is still shown, with a one-line warning on stderr. With
//! `--json`, `show` prints the record only.
//! Global flags: `--json`, `--url` (`KEYGATE_URL`), `--admin-token` (`KEYGATE_ADMIN_TOKEN`,
//! preferred), `--prefix` (`KEYGATE_ADMIN_PREFIX`).
//!
//! Layout: [`cli`] is the clap shape, [`request`] turns flags into method, path and JSON body,
//! [`render`] formats answers and errors, [`client`] is the thin `ureq` layer; this module
//! glues them and maps outcomes to exit codes: 0 success, 1 the API refused (error shape) or
//! answered unexpectedly, 2 bad usage, 3 the gateway could not be reached.
//!
//! Plaintext keys (create, roll) are written to stdout only, once, on a labelled line; error
//! messages never quote a successful answer, so a key cannot end up on stderr.

pub mod cli;
pub mod client;
pub mod render;
pub mod request;

use std::collections::HashSet;
use std::io::{self, Write};
use std::process::ExitCode;

use serde_json::{json, Value};

pub use cli::KeysArgs;
use cli::{KeysCommand, ListArgs};
use client::{Client, Endpoint, TransportError};
use request::{ApiRequest, Expect};

/// The API refused the request or answered something unexpected.
pub const EXIT_API: u8 = 1;
/// Bad usage (same code as clap's).
pub const EXIT_USAGE: u8 = 2;
/// The gateway could not be reached.
pub const EXIT_UNREACHABLE: u8 = 3;

/// Most pages `list --all` follows before giving up (guards against a looping server).
const MAX_PAGES: usize = 100_000;

/// Runs `keygate keys …` on the real stdout and stderr.
pub fn main(args: &KeysArgs) -> ExitCode {
    let code = run(args, &mut io::stdout().lock(), &mut io::stderr().lock());
    ExitCode::from(code)
}

/// Runs a `keys` command, writing results to `out` and diagnostics to `err`; returns the exit code.
pub fn run(args: &KeysArgs, out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    let result = execute(args, out, err).and_then(|()| out.flush().map_err(Failure::output));
    match result {
        Ok(()) => 0,
        Err(failure) => {
            let _ = err.write_all(failure.message.as_bytes());
            let _ = err.flush();
            failure.code
        }
    }
}

/// An exit code and the complete text for stderr.
#[derive(Debug)]
struct Failure {
    code: u8,
    message: String,
}

impl Failure {
    fn usage(message: String) -> Failure {
        Failure { code: EXIT_USAGE, message: format!("error: {message}\n\nFor more information, try '--help'.\n") }
    }

    fn api(message: String) -> Failure {
        Failure { code: EXIT_API, message: format!("error: {message}\n") }
    }

    fn output(error: io::Error) -> Failure {
        Failure::api(format!("cannot write the output: {error}"))
    }
}

fn write(out: &mut dyn Write, text: &str) -> Result<(), Failure> {
    out.write_all(text.as_bytes()).map_err(Failure::output)
}

fn execute(args: &KeysArgs, out: &mut dyn Write, err: &mut dyn Write) -> Result<(), Failure> {
    let request = request::build(&args.command).map_err(Failure::usage)?;
    let endpoint = Endpoint::new(&args.url, &args.prefix).map_err(Failure::usage)?;
    let token = client::check_token(args.admin_token.as_ref()).map_err(Failure::usage)?;
    let client = Client::new(endpoint, token);

    if let KeysCommand::List(list) = &args.command {
        return list_keys(&client, list, args.json, out, err);
    }
    let (text, value) = call(&client, &request, args.json, out)?;
    if args.json {
        return write(out, &render::pretty_json(&text));
    }
    let rendered = render::human(request.expect, &value, now_ms()).map_err(|e| unexpected(&client, &request, &e))?;
    write(out, &rendered)?;
    if let KeysCommand::Show(show) = &args.command {
        match usage_summary(&client, &show.id) {
            Ok(summary) => write(out, &summary)?,
            Err(problem) => {
                let _ = writeln!(err, "warning: usage not available: {problem}");
            }
        }
    }
    Ok(())
}

/// `show`'s usage lines, or a one-line reason why there are none.
fn usage_summary(client: &Client, id: &str) -> Result<String, String> {
    let request = request::usage(id)?;
    let (_, value) = call(client, &request, false, &mut io::sink()).map_err(|failure| one_line(&failure.message))?;
    let today = keygate_core::limit::protocol::day_of(now_ms());
    render::usage_summary(&value, &today).map_err(|e| one_line(&unexpected(client, &request, &e).message))
}

/// The first line of a failure message, without its `error: ` label.
fn one_line(message: &str) -> String {
    let first = message.lines().next().unwrap_or("");
    first.strip_prefix("error: ").unwrap_or(first).to_string()
}

fn now_ms() -> i64 {
    let elapsed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX)
}

/// `list`: one page, or with `--all` every page from `--cursor` (or the start) on.
fn list_keys(client: &Client, list: &ListArgs, json: bool, out: &mut dyn Write, err: &mut dyn Write) -> Result<(), Failure> {
    let mut cursor = list.cursor.clone();
    let mut items = Vec::new();
    let mut seen = HashSet::new();
    let next = loop {
        let request = request::list(list, cursor.as_deref());
        let (text, page) = call(client, &request, json, out)?;
        // Check the whole page's shape before using any of it.
        render::human(Expect::Page, &page, now_ms()).map_err(|e| unexpected(client, &request, &e))?;
        let next = render::page_cursor(&page).map_err(|e| unexpected(client, &request, &e))?;
        if !list.all {
            if json {
                write(out, &render::pretty_json(&text))?;
            }
            items = page.get("items").and_then(Value::as_array).cloned().unwrap_or_default();
            break next;
        }
        items.extend(page.get("items").and_then(Value::as_array).cloned().unwrap_or_default());
        match next {
            None => break None,
            Some(next) if !seen.insert(next.clone()) || seen.len() >= MAX_PAGES => {
                return Err(unexpected(client, &request, "the server keeps returning cursors (pagination loop)"));
            }
            Some(next) => cursor = Some(next),
        }
    };
    if json {
        if list.all {
            // One document of the same shape as a page, so scripts need not care about --all.
            let merged = json!({"items": items, "cursor": null});
            write(out, &(serde_json::to_string_pretty(&merged).unwrap_or_default() + "\n"))?;
        }
        return Ok(());
    }
    if items.is_empty() {
        let _ = writeln!(err, "no keys found");
    } else {
        write(out, &render::key_table(&items, now_ms()).unwrap_or_default())?;
    }
    if let Some(next) = next {
        let _ = writeln!(err, "more keys: add --cursor {} (or use --all)", render::sanitize(&next));
    }
    Ok(())
}

fn unexpected(client: &Client, request: &ApiRequest, problem: &str) -> Failure {
    Failure::api(format!("unexpected answer from {} {}: {problem}", request.method.as_str(), client.url(request)))
}

/// Sends a request and returns the body text and its JSON for a 2xx answer. Any other status
/// is a failure; with `--json` an error body that is JSON is also printed to `out`.
fn call(client: &Client, request: &ApiRequest, json: bool, out: &mut dyn Write) -> Result<(String, Value), Failure> {
    let response = client.send(request).map_err(|error| match error {
        TransportError::Unreachable(message) => {
            Failure { code: EXIT_UNREACHABLE, message: format!("error: cannot reach {}: {message}\n", client.url(request)) }
        }
        TransportError::TooLarge => unexpected(client, request, "the answer is too large"),
    })?;
    let parsed = serde_json::from_str::<Value>(&response.body);
    if (200..300).contains(&response.status) {
        // Never quote a successful body: it may hold a plaintext key.
        return match parsed {
            Ok(value) => Ok((response.body, value)),
            Err(_) => Err(unexpected(client, request, &format!("HTTP {} with a body that is not JSON", response.status))),
        };
    }
    if json && parsed.is_ok() {
        write(out, &render::pretty_json(&response.body))?;
    }
    Err(match render::api_error(response.status, &response.body) {
        Some(message) => Failure { code: EXIT_API, message },
        None => {
            let content_type = response.content_type.as_deref().map(|t| format!(" ({})", render::sanitize(t))).unwrap_or_default();
            let body = render::excerpt(&response.body);
            let body = if body.is_empty() { "empty body".to_string() } else { body };
            unexpected(client, request, &format!("HTTP {}{content_type}: {body}", response.status))
        }
    })
}

#[cfg(test)]
mod tests {
    use std::net::TcpListener;
    use std::thread::JoinHandle;
    use std::time::Duration;

    use clap::Parser;

    use super::*;

    const TOKEN: &str = "test-admin-token-0123456789";
    const PLAINTEXT: &str = "kg_live_5uperSecretPlaintextKeyAbCd";

    #[derive(Debug, Parser)]
    struct Wrapper {
        #[command(flatten)]
        keys: KeysArgs,
    }

    fn args(url: &str, token: &str, rest: &[&str]) -> KeysArgs {
        let argv = ["keys", "--url", url, "--admin-token", token].into_iter().chain(rest.iter().copied());
        Wrapper::try_parse_from(argv).unwrap_or_else(|e| panic!("{rest:?}: {e}")).keys
    }

    fn execute(args: &KeysArgs) -> (u8, String, String) {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let code = run(args, &mut out, &mut err);
        (code, String::from_utf8(out).unwrap(), String::from_utf8(err).unwrap())
    }

    /// A request as the fake admin API saw it.
    #[derive(Debug)]
    struct Seen {
        method: String,
        url: String,
        authorization: Option<String>,
        content_type: Option<String>,
        body: String,
    }

    /// Serves the canned answers in order (401 instead when the token is wrong), then stops.
    fn fake_admin_api(answers: Vec<(u16, String)>) -> (String, JoinHandle<Vec<Seen>>) {
        let server = tiny_http::Server::http("127.0.0.1:0").unwrap();
        let address = server.server_addr().to_ip().unwrap();
        let handle = std::thread::spawn(move || {
            let mut seen = Vec::new();
            for (status, body) in answers {
                let Ok(Some(mut request)) = server.recv_timeout(Duration::from_secs(10)) else { break };
                let header =
                    |name: &'static str| request.headers().iter().find(|h| h.field.equiv(name)).map(|h| h.value.as_str().to_string());
                let (authorization, content_type) = (header("Authorization"), header("Content-Type"));
                let mut text = String::new();
                let _ = request.as_reader().read_to_string(&mut text);
                let (status, body) = if authorization.as_deref() == Some(&format!("Bearer {TOKEN}")) {
                    (status, body)
                } else {
                    (401, r#"{"error":{"code":"UNAUTHORIZED","message":"missing or wrong admin token","details":null}}"#.into())
                };
                seen.push(Seen {
                    method: request.method().as_str().to_string(),
                    url: request.url().to_string(),
                    authorization,
                    content_type,
                    body: text,
                });
                let content_type = tiny_http::Header::from_bytes("content-type", "application/json").unwrap();
                let _ = request.respond(tiny_http::Response::from_string(body).with_status_code(status).with_header(content_type));
            }
            seen
        });
        (format!("http://{address}"), handle)
    }

    fn record(id: &str) -> Value {
        json!({
            "id": id, "project": "acme", "name": "marketing site", "env": "live",
            "role": "read_only", "scopes": [], "status": "active",
            "valid_from": null, "valid_to": null, "allowed_origins": null,
            "created_at": "2026-11-22T10:00:00Z", "updated_at": "2026-11-22T10:00:00Z",
            "revision": 1, "meta": {"team": "web"}, "hint": "kg_live_…AbCd",
            "family": id, "rolled_from": null
        })
    }

    #[test]
    fn create_sends_the_body_and_prints_the_key_once_on_stdout() {
        let answer = json!({"key": PLAINTEXT, "record": record("key_new")}).to_string();
        let (url, server) = fake_admin_api(vec![(201, answer)]);
        let args =
            args(&url, TOKEN, &["create", "--project", "acme", "--name", "marketing site", "--role", "read_only", "--meta", "team=web"]);
        let (code, out, err) = execute(&args);
        let seen = server.join().unwrap();

        assert_eq!(code, 0, "{err}");
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].method, "POST");
        assert_eq!(seen[0].url, "/_keygate/v1/keys");
        assert_eq!(seen[0].authorization.as_deref(), Some(format!("Bearer {TOKEN}").as_str()));
        assert!(seen[0].content_type.as_deref().unwrap_or("").starts_with("application/json"));
        let body: Value = serde_json::from_str(&seen[0].body).unwrap();
        assert_eq!(body, json!({"project": "acme", "name": "marketing site", "role": "read_only", "meta": {"team": "web"}}));

        assert_eq!(out.matches(PLAINTEXT).count(), 1, "{out}");
        assert!(out.lines().any(|line| line == format!("key: {PLAINTEXT}")), "{out}");
        assert!(out.contains(render::KEY_WARNING));
        assert!(out.contains("key_new"));
        assert!(!err.contains(PLAINTEXT));
        assert!(!out.contains(TOKEN) && !err.contains(TOKEN));
    }

    #[test]
    fn validation_failed_exits_1_with_field_details() {
        let answer = json!({
            "error": {"code": "VALIDATION_FAILED", "message": "the request is invalid",
                      "details": {"fields": {"name": "must be 1-100 characters", "valid_to": "must be in the future"}}},
            "meta": {"requestId": "req-1", "timestamp": "2026-11-22T10:00:00Z"}
        });
        let (url, server) = fake_admin_api(vec![(400, answer.to_string())]);
        let (code, out, err) = execute(&args(&url, TOKEN, &["update", "key_abc", "--valid-to", "2000-01-01T00:00:00Z"]));
        let seen = server.join().unwrap();
        assert_eq!(code, EXIT_API);
        assert_eq!(seen[0].method, "PATCH");
        assert_eq!(seen[0].url, "/_keygate/v1/keys/key_abc");
        assert_eq!(out, "");
        assert!(err.starts_with("error: VALIDATION_FAILED: the request is invalid\n"), "{err}");
        assert!(err.contains("\n  name: must be 1-100 characters\n"), "{err}");
        assert!(err.contains("\n  valid_to: must be in the future\n"), "{err}");
    }

    #[test]
    fn json_mode_prints_answers_verbatim_including_errors() {
        let record_text = r#"{"id":"key_abc","zeta":1,"alpha":null}"#;
        let error_text = r#"{"error":{"code":"NOT_FOUND","message":"no such key","details":null}}"#;
        let (url, server) = fake_admin_api(vec![(200, record_text.into()), (404, error_text.into())]);
        let (code, out, err) = execute(&args(&url, TOKEN, &["show", "key_abc", "--json"]));
        assert_eq!((code, err.as_str()), (0, ""));
        assert_eq!(out, "{\n  \"id\": \"key_abc\",\n  \"zeta\": 1,\n  \"alpha\": null\n}\n");
        let (code, out, err) = execute(&args(&url, TOKEN, &["--json", "revoke", "key_gone"]));
        assert_eq!(code, EXIT_API);
        assert_eq!(serde_json::from_str::<Value>(&out).unwrap(), serde_json::from_str::<Value>(error_text).unwrap());
        assert_eq!(err, "error: NOT_FOUND: no such key\n");
        let seen = server.join().unwrap();
        assert_eq!((seen[1].method.as_str(), seen[1].url.as_str()), ("DELETE", "/_keygate/v1/keys/key_gone"));
    }

    fn usage_answer(id: &str, today: &str) -> String {
        json!({"key_id": id, "last_used_at": "2026-11-23T09:15:00Z", "days": [
            {"date": today, "allowed": 1200, "refused": 3},
            {"date": "2000-01-01", "allowed": 7, "refused": 0},
        ]})
        .to_string()
    }

    #[test]
    fn usage_prints_last_use_and_a_table_or_the_json() {
        let answer = usage_answer("key_abc", "2026-11-24");
        let (url, server) = fake_admin_api(vec![(200, answer.clone()), (200, answer.clone())]);
        let (code, out, err) = execute(&args(&url, TOKEN, &["usage", "key_abc"]));
        assert_eq!((code, err.as_str()), (0, ""));
        let expected = "\
last used: 2026-11-23T09:15:00Z
DATE        ALLOWED  REFUSED
2026-11-24  1200     3
2000-01-01  7        0
";
        assert_eq!(out, expected);
        let (code, out, err) = execute(&args(&url, TOKEN, &["usage", "key_abc", "--json"]));
        assert_eq!((code, err.as_str()), (0, ""));
        assert_eq!(out, render::pretty_json(&answer));
        let seen = server.join().unwrap();
        for request in &seen {
            assert_eq!((request.method.as_str(), request.url.as_str()), ("GET", "/_keygate/v1/keys/key_abc/usage"));
        }
    }

    #[test]
    fn usage_errors_exit_1() {
        let not_found = r#"{"error":{"code":"NOT_FOUND","message":"no such key","details":null}}"#;
        let (url, server) = fake_admin_api(vec![(404, not_found.into()), (200, r#"{"key_id":"k"}"#.into())]);
        let (code, out, err) = execute(&args(&url, TOKEN, &["usage", "key_gone"]));
        assert_eq!((code, out.as_str(), err.as_str()), (EXIT_API, "", "error: NOT_FOUND: no such key\n"));
        let (code, _, err) = execute(&args(&url, TOKEN, &["usage", "k"]));
        assert_eq!(code, EXIT_API);
        assert!(err.starts_with("error: unexpected answer from GET ") && err.contains("\"days\""), "{err}");
        server.join().unwrap();
    }

    #[test]
    fn show_appends_a_usage_summary() {
        let today = keygate_core::limit::protocol::day_of(now_ms());
        let mut key = record("key_abc");
        key["tier"] = json!("pro");
        key["limits"] =
            json!([{"name": "burst", "limit": 50, "window_seconds": 1}, {"name": "minute", "limit": 600, "window_seconds": 60}]);
        key["limit_mode"] = json!(null);
        let (url, server) = fake_admin_api(vec![(200, key.to_string()), (200, usage_answer("key_abc", &today))]);
        let (code, out, err) = execute(&args(&url, TOKEN, &["show", "key_abc"]));
        let seen = server.join().unwrap();
        assert_eq!((code, err.as_str()), (0, ""));
        assert_eq!(seen.len(), 2);
        assert_eq!((seen[0].method.as_str(), seen[0].url.as_str()), ("GET", "/_keygate/v1/keys/key_abc"));
        assert_eq!((seen[1].method.as_str(), seen[1].url.as_str()), ("GET", "/_keygate/v1/keys/key_abc/usage"));
        let lines: Vec<&str> = out.lines().collect();
        assert!(lines[0].starts_with("id ") && lines[0].ends_with("key_abc"), "{out}");
        for line in ["tier             pro", "limits           burst 50/1s, minute 600/60s", "limit_mode       default"] {
            assert!(lines.contains(&line), "{line}: {out}");
        }
        let tail = &lines[lines.len() - 3..];
        assert_eq!(tail[0], "");
        assert_eq!(tail[1], "last used  2026-11-23T09:15:00Z");
        assert_eq!(tail[2], format!("today      1200 allowed, 3 refused ({today} UTC)"));
    }

    #[test]
    fn show_without_usage_still_shows_the_record_and_warns() {
        let not_found = json!({"error": {"code": "NOT_FOUND", "message": "no admin path", "details": {"path": "/x"}},
                               "meta": {"requestId": "req-9", "timestamp": "2026-11-22T10:00:00Z"}});
        let rows: Vec<(u16, String, &str)> = vec![
            (404, not_found.to_string(), "NOT_FOUND: no admin path"),
            (502, "<html>\nBad gateway\n</html>".into(), "unexpected answer from GET "),
            (200, r#"{"key_id":"key_abc","days":"none"}"#.into(), "\"days\""),
        ];
        for (status, body, message) in rows {
            let (url, server) = fake_admin_api(vec![(200, record("key_abc").to_string()), (status, body.clone())]);
            let (code, out, err) = execute(&args(&url, TOKEN, &["show", "key_abc"]));
            let seen = server.join().unwrap();
            assert_eq!(code, 0, "{body}: {err}");
            assert_eq!(seen.len(), 2, "{body}");
            assert!(out.starts_with("id ") && out.contains("\nupdated_at "), "{body}: {out}");
            assert!(!out.contains("last used"), "{body}: {out}");
            assert_eq!(err.lines().count(), 1, "{body}: {err}");
            assert!(err.starts_with("warning: usage not available: ") && err.contains(message), "{body}: {err}");
        }
    }

    #[test]
    fn show_json_prints_only_the_record() {
        let (url, server) = fake_admin_api(vec![(200, record("key_abc").to_string()), (200, usage_answer("key_abc", "2026-11-24"))]);
        let (code, out, err) = execute(&args(&url, TOKEN, &["show", "key_abc", "--json"]));
        assert_eq!((code, err.as_str()), (0, ""));
        assert_eq!(serde_json::from_str::<Value>(&out).unwrap(), record("key_abc"));
        // The next request is the usage command's, i.e. `show --json` made only one.
        let (code, _, _) = execute(&args(&url, TOKEN, &["usage", "key_abc"]));
        assert_eq!(code, 0);
        let seen = server.join().unwrap();
        assert_eq!(seen[1].url, "/_keygate/v1/keys/key_abc/usage");
    }

    #[test]
    fn create_and_update_send_limits() {
        let mut key = record("key_new");
        key["tier"] = json!(null);
        key["limits"] = json!([{"name": "minute", "limit": 600, "window_seconds": 60}]);
        key["limit_mode"] = json!("exact");
        let (url, server) = fake_admin_api(vec![(201, json!({"key": PLAINTEXT, "record": key}).to_string()), (200, key.to_string())]);
        let create =
            ["create", "--project", "acme", "--name", "n", "--role", "read_only", "--limit", "minute=600/60", "--limit-mode", "exact"];
        let (code, out, err) = execute(&args(&url, TOKEN, &create));
        assert_eq!(code, 0, "{err}");
        for line in ["tier             default", "limits           minute 600/60s", "limit_mode       exact"] {
            assert!(out.lines().any(|l| l == line), "{line}: {out}");
        }
        let (code, out, err) = execute(&args(&url, TOKEN, &["update", "key_new", "--no-tier", "--clear-limits", "--default-limit-mode"]));
        assert_eq!(code, 0, "{err}");
        assert!(out.contains("\nlimits           minute 600/60s\n"), "{out}");
        let seen = server.join().unwrap();
        let bodies: Vec<Value> = seen.iter().map(|s| serde_json::from_str(&s.body).unwrap()).collect();
        assert_eq!(bodies[0]["limits"], json!([{"name": "minute", "limit": 600, "window_seconds": 60}]));
        assert_eq!(bodies[0]["limit_mode"], json!("exact"));
        assert_eq!(bodies[1], json!({"tier": null, "limits": null, "limit_mode": null}));
    }

    #[test]
    fn list_all_follows_cursors() {
        let pages = vec![
            (200, json!({"items": [record("key_one")], "cursor": "c/1+"}).to_string()),
            (200, json!({"items": [record("key_two")], "cursor": null}).to_string()),
        ];
        let (url, server) = fake_admin_api(pages);
        let (code, out, err) = execute(&args(&url, TOKEN, &["list", "--project", "acme", "--status", "active", "--all", "--limit", "1"]));
        let seen = server.join().unwrap();
        assert_eq!(code, 0, "{err}");
        assert_eq!(seen[0].url, "/_keygate/v1/keys?project=acme&status=active&limit=1");
        assert_eq!(seen[1].url, "/_keygate/v1/keys?project=acme&status=active&cursor=c%2F1%2B&limit=1");
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 3, "{out}");
        assert!(lines[0].starts_with("ID ") && lines[1].starts_with("key_one ") && lines[2].starts_with("key_two "));
        assert!(lines[1].contains("lifetime"));
    }

    #[test]
    fn list_one_page_mentions_the_next_cursor_on_stderr() {
        let (url, server) = fake_admin_api(vec![
            (200, json!({"items": [record("key_one")], "cursor": "next1"}).to_string()),
            (200, json!({"items": [], "cursor": null}).to_string()),
        ]);
        let (code, out, err) = execute(&args(&url, TOKEN, &["list", "--project", "acme"]));
        assert_eq!(code, 0);
        assert_eq!(out.lines().count(), 2);
        assert_eq!(err, "more keys: add --cursor next1 (or use --all)\n");
        let (code, out, err) = execute(&args(&url, TOKEN, &["list", "--project", "acme", "--cursor", "next1"]));
        assert_eq!((code, out.as_str(), err.as_str()), (0, "", "no keys found\n"));
        server.join().unwrap();
    }

    #[test]
    fn a_looping_cursor_is_an_error() {
        let page = json!({"items": [], "cursor": "same"}).to_string();
        let (url, server) = fake_admin_api(vec![(200, page.clone()), (200, page)]);
        let (code, _, err) = execute(&args(&url, TOKEN, &["list", "--project", "acme", "--all"]));
        server.join().unwrap();
        assert_eq!(code, EXIT_API);
        assert!(err.contains("pagination loop"), "{err}");
    }

    #[test]
    fn roll_prints_the_new_key_and_the_previous_state() {
        let mut previous = record("key_old");
        previous["valid_to"] = json!("2026-11-23T10:00:00Z");
        let answer = json!({"key": PLAINTEXT, "record": record("key_new"), "previous": previous}).to_string();
        let (url, server) = fake_admin_api(vec![(201, answer)]);
        let (code, out, err) = execute(&args(&url, TOKEN, &["roll", "key_old", "--grace-seconds", "86400"]));
        let seen = server.join().unwrap();
        assert_eq!(code, 0, "{err}");
        assert_eq!(seen[0].url, "/_keygate/v1/keys/key_old/roll");
        assert_eq!(serde_json::from_str::<Value>(&seen[0].body).unwrap(), json!({"grace_seconds": 86400}));
        assert_eq!(out.matches(PLAINTEXT).count(), 1);
        assert!(out.contains("previous key key_old is now active, valid to 2026-11-23T10:00:00Z"));
    }

    #[test]
    fn unexpected_answers_exit_1_without_quoting_successful_bodies() {
        let rows: Vec<(u16, &str, &[&str], &str)> = vec![
            (201, "not json kg_live_LEAKED", &["create", "--project", "p", "--name", "n"], "not JSON"),
            (201, r#"{"key":"kg_live_LEAKED"}"#, &["create", "--project", "p", "--name", "n"], "revoke it"),
            (200, r#"{"key":"kg_live_LEAKED"}"#, &["show", "k"], "not a key record"),
            (200, r#"[1,2]"#, &["audit", "k"], "items"),
            (502, "<html>Bad gateway</html>", &["show", "k"], "HTTP 502 (application/json): <html>Bad gateway</html>"),
            (500, "", &["show", "k"], "HTTP 500 (application/json): empty body"),
        ];
        for (status, body, command, message) in rows {
            let (url, server) = fake_admin_api(vec![(status, body.into())]);
            let (code, out, err) = execute(&args(&url, TOKEN, command));
            server.join().unwrap();
            assert_eq!(code, EXIT_API, "{body}");
            assert!(err.starts_with("error: unexpected answer from "), "{err}");
            assert!(err.contains(message), "{body}: {err}");
            assert!(!err.contains("LEAKED") && !out.contains("LEAKED"), "{err}");
        }
    }

    #[test]
    fn a_wrong_token_is_refused_and_never_printed() {
        let (url, server) = fake_admin_api(vec![(200, record("key_abc").to_string())]);
        let (code, out, err) = execute(&args(&url, "wrong-token-zqx", &["show", "key_abc"]));
        let seen = server.join().unwrap();
        assert_eq!(seen[0].authorization.as_deref(), Some("Bearer wrong-token-zqx"));
        assert_eq!(code, EXIT_API);
        assert!(err.starts_with("error: UNAUTHORIZED: "), "{err}");
        assert!(!err.contains("zqx") && !out.contains("zqx"));
    }

    #[test]
    fn a_closed_port_exits_3() {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let url = format!("http://127.0.0.1:{port}");
        let (code, out, err) = execute(&args(&url, TOKEN, &["show", "key_abc"]));
        assert_eq!(code, EXIT_UNREACHABLE);
        assert_eq!(out, "");
        assert!(err.starts_with(&format!("error: cannot reach {url}/_keygate/v1/keys/key_abc: ")), "{err}");
        assert!(!err.contains(TOKEN));
    }

    #[test]
    fn usage_problems_exit_2_before_any_request() {
        let mut missing_token = args("http://127.0.0.1:9", TOKEN, &["show", "k"]);
        missing_token.admin_token = None;
        let rows = [
            (missing_token, "KEYGATE_ADMIN_TOKEN"),
            (args("gw.example.com", TOKEN, &["show", "k"]), "expected an http(s):// URL"),
            (args("http://127.0.0.1:9", TOKEN, &["update", "k"]), "nothing to update"),
            (args("http://127.0.0.1:9", TOKEN, &["update", "k", "--limit", "a=1/1", "--limit", "a=2/1"]), "more than once"),
            (args("http://127.0.0.1:9", TOKEN, &["usage", "."]), "invalid key id"),
            (args("http://127.0.0.1:9", "bad\ttoken", &["show", "k"]), "not allowed"),
        ];
        for (args, message) in rows {
            let (code, out, err) = execute(&args);
            assert_eq!(code, EXIT_USAGE, "{message}");
            assert_eq!(out, "");
            assert!(err.starts_with("error: ") && err.contains(message), "{err}");
            assert!(!err.contains("bad\ttoken"));
        }
    }
}
