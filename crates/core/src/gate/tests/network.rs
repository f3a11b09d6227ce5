//! The network and country check in the gate: read the client only for a restricted key, refuse
//! before any limit is asked, and let a newer record lift the refusal.

use super::*;

fn restricted(mode: LimitMode, limits: &[(&str, u64, u64)], networks: &[&str], countries: &[&str]) -> KeyRecord {
    let mut record = active(mode, limits);
    record.allowed_networks = networks.iter().map(|n| n.to_string()).collect();
    record.allowed_countries = countries.iter().map(|c| c.to_string()).collect();
    record
}

fn client(address: Option<&str>, country: Option<&str>) -> ClientFacts {
    ClientFacts { address: address.map(String::from), country: country.map(String::from) }
}

#[test]
fn the_client_is_read_once_only_for_a_restricted_key_and_checked_before_the_limits() {
    let config = config(&[]);
    let (key, bearer) = new_key(&config);
    let minute = [("minute", 10, 60)];
    let rows: Vec<(&str, KeyRecord, ClientFacts, &str, Vec<Step>)> = vec![
        (
            "unrestricted: the client is never read",
            restricted(LimitMode::Exact, &minute, &[], &[]),
            client(Some("198.51.100.1"), Some("US")),
            "FORWARDED",
            vec![Step::Read, Step::Hit],
        ),
        (
            "an allowed network",
            restricted(LimitMode::Exact, &minute, &["203.0.113.0/24"], &[]),
            client(Some("203.0.113.9"), None),
            "FORWARDED",
            vec![Step::Read, Step::Client, Step::Hit],
        ),
        (
            "an IPv4-mapped client address in an IPv4 network",
            restricted(LimitMode::Fast, &[], &["203.0.113.0/24"], &[]),
            client(Some("::ffff:203.0.113.9"), None),
            "FORWARDED",
            vec![Step::Read, Step::Client],
        ),
        (
            "another network: refused before the limiter is asked",
            restricted(LimitMode::Fast, &minute, &["203.0.113.0/24"], &[]),
            client(Some("198.51.100.1"), None),
            "NETWORK_NOT_ALLOWED",
            vec![Step::Read, Step::Client],
        ),
        (
            "no client address: refused",
            restricted(LimitMode::Fast, &minute, &["0.0.0.0/0", "::/0"], &[]),
            client(None, Some("DE")),
            "NETWORK_NOT_ALLOWED",
            vec![Step::Read, Step::Client],
        ),
        (
            "an allowed country",
            restricted(LimitMode::Fast, &[], &[], &["DE"]),
            client(None, Some("DE")),
            "FORWARDED",
            vec![Step::Read, Step::Client],
        ),
        (
            "another country",
            restricted(LimitMode::Fast, &minute, &[], &["DE"]),
            client(Some("203.0.113.9"), Some("US")),
            "COUNTRY_NOT_ALLOWED",
            vec![Step::Read, Step::Client],
        ),
        (
            "the key's own standing is told first",
            KeyRecord { status: Status::Revoked, ..restricted(LimitMode::Fast, &minute, &["203.0.113.0/24"], &[]) },
            client(Some("198.51.100.1"), None),
            "KEY_REVOKED",
            vec![Step::Read, Step::Client],
        ),
    ];
    for (why, stored, facts, expected, expected_steps) in rows {
        let mut world = World::with(&key, Some(stored)).counting();
        world.client = facts;
        let mut isolate = IsolateState::default();
        let (outcome, steps) = drive(&config, get(&bearer, ROUTE), T0, &mut isolate, &mut world);
        assert_eq!(code(&outcome), expected, "{why}");
        assert_eq!(steps, expected_steps, "{why}");
        if expected != "FORWARDED" {
            assert_eq!(outcome.unwrap_err().error.status(), if expected == "KEY_REVOKED" { 401 } else { 403 }, "{why}");
        }
    }
}

#[test]
fn refusals_spend_no_fast_mode_limit() {
    let config = config(&[]);
    let (key, bearer) = new_key(&config);
    let mut world = World::with(&key, Some(restricted(LimitMode::Fast, &[("minute", 2, 60)], &["2001:db8::/32"], &[])));
    let mut isolate = IsolateState::default();
    world.client = client(Some("2001:db9::1"), None);
    for _ in 0..5 {
        let (outcome, _) = drive(&config, get(&bearer, ROUTE), T0, &mut isolate, &mut world);
        assert_eq!(code(&outcome), "NETWORK_NOT_ALLOWED");
    }
    world.client = client(Some("2001:db8::1"), None);
    let outcomes: Vec<&str> = (0..3).map(|_| code(&drive(&config, get(&bearer, ROUTE), T0, &mut isolate, &mut world).0)).collect();
    assert_eq!(outcomes, ["FORWARDED", "FORWARDED", "RATE_LIMIT_EXCEEDED"], "the refused five spent nothing");
}

#[test]
fn a_newer_record_without_the_restriction_lifts_the_refusal() {
    let config = config(&[]);
    let (key, bearer) = new_key(&config);
    let stored = restricted(LimitMode::Exact, &[], &["203.0.113.0/24"], &[]);
    let lifted = KeyRecord { revision: 2, allowed_networks: Vec::new(), ..stored.clone() };
    let allowed = Some(LimiterReply::Decided(decide(&[], &mut Vec::new(), T0)));
    let mut world = World::with(&key, Some(stored)).scripted(vec![Some(LimiterReply::Stale(lifted)), allowed]);
    world.client = client(Some("198.51.100.1"), None);
    let (outcome, steps) = drive(&config, get(&bearer, ROUTE), T0, &mut IsolateState::default(), &mut world);
    assert_eq!(code(&outcome), "FORWARDED");
    assert_eq!(steps, [Step::Read, Step::Client, Step::Fresh, Step::Cache(2), Step::Hit], "the client is read once");
}
