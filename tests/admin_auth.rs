//! Failure limits of admin authentication, against the real worker under `wrangler dev`: wrong
//! tokens from one address are throttled (429 `ADMIN_AUTH_THROTTLED` with `Retry-After`, the
//! right token included) while other addresses keep working; successes are free; a global
//! bound stops everyone; events are logged without tokens; `Bearer<TAB>token` is accepted.
//!
//! The client address is `CF-Connecting-IP`. Cloudflare sets it in production; the local
//! runtime (Miniflare's entry worker under `wrangler dev`) sets it to the socket's address
//! only when the request has none, and keeps a client-sent value — so these tests choose their
//! address per request, and `the_local_runtime_fills_in_the_socket_address` checks the rest.
//! Each test uses its own addresses (they share one gateway and run in parallel).

// Tests: a failed expectation is a failed test, with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::{Gateway, Options, Resp, ADMIN_TOKEN};

const LIST: &str = "/_keygate/v1/keys?project=acme";
const WRONG: &str = "wrong-admin-token-guess-000000000001";

/// Three failures per address per hour (no refill within a test run), a global bound far away.
fn gateway() -> &'static Gateway {
    static GATEWAY: OnceLock<Gateway> = OnceLock::new();
    GATEWAY.get_or_init(|| {
        Gateway::start(Options {
            vars: vec![
                ("ADMIN_AUTH_FAILURES_PER_ADDRESS", "3"),
                ("ADMIN_AUTH_FAILURES_GLOBAL", "1000"),
                ("ADMIN_AUTH_WINDOW_SECONDS", "3600"),
            ],
            ..Options::default()
        })
    })
}

/// A gateway whose global bound (4 per hour) is reached by two addresses.
fn tight_gateway() -> &'static Gateway {
    static GATEWAY: OnceLock<Gateway> = OnceLock::new();
    GATEWAY.get_or_init(|| {
        Gateway::start(Options {
            vars: vec![
                ("ADMIN_AUTH_FAILURES_PER_ADDRESS", "2"),
                ("ADMIN_AUTH_FAILURES_GLOBAL", "4"),
                ("ADMIN_AUTH_WINDOW_SECONDS", "3600"),
            ],
            ..Options::default()
        })
    })
}

fn attempt(g: &Gateway, address: Option<&str>, token: &str) -> Resp {
    let request = g.request("GET", LIST).bearer(token);
    match address {
        Some(address) => request.header("CF-Connecting-IP", address).send(),
        None => request.send(),
    }
}

/// Asserts a throttled answer and returns its `Retry-After` seconds.
fn assert_throttled(response: &Resp, scope: &str) -> u64 {
    let body = response.assert_error(429, "ADMIN_AUTH_THROTTLED");
    assert_eq!(body["error"]["details"]["scope"], scope, "{}", response.body);
    let retry_after: u64 =
        response.header("retry-after").and_then(|v| v.parse().ok()).unwrap_or_else(|| panic!("Retry-After: {:?}", response.headers));
    assert!((1..=3600).contains(&retry_after), "Retry-After {retry_after}");
    assert_eq!(body["error"]["details"]["retryAfter"], retry_after, "{}", response.body);
    assert!(response.header("www-authenticate").is_none());
    retry_after
}

/// The log once one of its lines contains every needle; panics after 20 s.
fn log_line_with(g: &Gateway, needles: &[&str]) -> String {
    let start = Instant::now();
    loop {
        if let Some(line) = g.log().lines().find(|line| needles.iter().all(|n| line.contains(n))) {
            return line.to_string();
        }
        assert!(start.elapsed() < Duration::from_secs(20), "no log line with {needles:?}:\n{}", g.log());
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn wrong_tokens_from_one_address_are_throttled_while_other_addresses_keep_working() {
    let g = gateway();
    let attacker = "203.0.113.10";
    for _ in 0..3 {
        attempt(g, Some(attacker), WRONG).assert_error(401, "UNAUTHORIZED");
    }
    assert_throttled(&attempt(g, Some(attacker), WRONG), "address");
    // Throttled means the token is not what decides: the right one gets the same answer.
    assert_throttled(&attempt(g, Some(attacker), ADMIN_TOKEN), "address");
    let elsewhere = attempt(g, Some("203.0.113.11"), ADMIN_TOKEN);
    assert_eq!(elsewhere.status, 200, "{}", elsewhere.body);
    // Wrong tokens from another address are judged, not throttled.
    attempt(g, Some("203.0.113.11"), WRONG).assert_error(401, "UNAUTHORIZED");
    assert!(!g.log().contains("limiter_unavailable"), "decided by the limiter, not an isolate's fallback");
}

#[test]
fn concurrent_wrong_tokens_from_one_address_get_exactly_the_limit_of_401s() {
    let g = gateway();
    let address = "203.0.113.50";
    let statuses: Vec<u16> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..16).map(|_| scope.spawn(|| attempt(g, Some(address), WRONG).status)).collect();
        handles.into_iter().map(|h| h.join().expect("request thread")).collect()
    });
    let judged = statuses.iter().filter(|s| **s == 401).count();
    let throttled = statuses.iter().filter(|s| **s == 429).count();
    assert_eq!((judged, throttled), (3, 13), "one serialised counter for the address: {statuses:?}");
}

#[test]
fn successes_do_not_spend_the_failure_budget() {
    let g = gateway();
    let operator = "203.0.113.20";
    for _ in 0..5 {
        let ok = attempt(g, Some(operator), ADMIN_TOKEN);
        assert_eq!(ok.status, 200, "{}", ok.body);
    }
    for _ in 0..3 {
        attempt(g, Some(operator), WRONG).assert_error(401, "UNAUTHORIZED");
    }
    assert_throttled(&attempt(g, Some(operator), WRONG), "address");
}

#[test]
fn ipv6_addresses_are_counted_per_64() {
    let g = gateway();
    for host in ["2001:db8:77:1::1", "2001:db8:77:1::2", "2001:db8:77:1:ffff::3"] {
        attempt(g, Some(host), WRONG).assert_error(401, "UNAUTHORIZED");
    }
    assert_throttled(&attempt(g, Some("2001:db8:77:1::4"), ADMIN_TOKEN), "address");
    let other = attempt(g, Some("2001:db8:77:2::1"), ADMIN_TOKEN);
    assert_eq!(other.status, 200, "{}", other.body);
}

#[test]
fn throttling_and_failures_are_logged_without_any_token() {
    let g = gateway();
    let address = "203.0.113.40";
    let guesses = [
        "guess-token-aaaaaaaaaaaaaaaaaaaa-1",
        "guess-token-aaaaaaaaaaaaaaaaaaaa-2",
        "guess-token-aaaaaaaaaaaaaaaaaaaa-3",
        "guess-token-aaaaaaaaaaaaaaaaaaaa-4",
    ];
    for guess in &guesses[..3] {
        attempt(g, Some(address), guess).assert_error(401, "UNAUTHORIZED");
    }
    assert_throttled(&attempt(g, Some(address), guesses[3]), "address");
    assert_throttled(&attempt(g, Some(address), ADMIN_TOKEN), "address");
    log_line_with(g, &["\"admin_auth_failed\"", address]);
    let throttled = log_line_with(g, &["\"admin_auth_throttled\"", address]);
    assert!(throttled.contains("\"scope\":\"address\""), "{throttled}");
    let log = g.log();
    for secret in guesses.iter().chain([&ADMIN_TOKEN]) {
        assert!(!log.contains(secret), "the log contains a presented token");
    }
}

#[test]
fn bearer_with_a_tab_is_accepted_as_at_the_gateway() {
    let g = gateway();
    let address = "203.0.113.30";
    let tab = g.request("GET", LIST).header("Authorization", &format!("Bearer\t{ADMIN_TOKEN}")).header("CF-Connecting-IP", address).send();
    assert_eq!(tab.status, 200, "{}", tab.body);
    let wrong = g.request("GET", LIST).header("Authorization", &format!("Bearer\t{WRONG}")).header("CF-Connecting-IP", address).send();
    wrong.assert_error(401, "UNAUTHORIZED");
    // The gateway's own parser, for comparison: the same header form carries an API key.
    let key = g.request("GET", "/v1/public/cms/articles/items").header("Authorization", &format!("Bearer\t{}", g.keys.read_only)).send();
    assert_eq!(key.status, 200, "{}", key.body);
}

#[test]
fn the_local_runtime_fills_in_the_socket_address() {
    let g = gateway();
    // No CF-Connecting-IP sent: wrangler dev sets 127.0.0.1, the loopback socket's address.
    for _ in 0..3 {
        attempt(g, None, WRONG).assert_error(401, "UNAUTHORIZED");
    }
    assert_throttled(&attempt(g, None, WRONG), "address");
    log_line_with(g, &["\"admin_auth_throttled\"", "\"address\":\"127.0.0.1\""]);
    assert_throttled(&attempt(g, Some("127.0.0.1"), ADMIN_TOKEN), "address");
}

#[test]
fn the_global_bound_stops_every_address() {
    let g = tight_gateway();
    for address in ["198.51.100.1", "198.51.100.2"] {
        for _ in 0..2 {
            attempt(g, Some(address), WRONG).assert_error(401, "UNAUTHORIZED");
        }
    }
    // Four failures in all: nobody is judged now, not even with the right token.
    assert_throttled(&attempt(g, Some("198.51.100.3"), ADMIN_TOKEN), "global");
    assert_throttled(&attempt(g, Some("198.51.100.4"), WRONG), "global");
    log_line_with(g, &["\"admin_auth_throttled\"", "\"scope\":\"global\""]);
}
