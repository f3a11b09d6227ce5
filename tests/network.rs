//! Per-key network restrictions (`allowed_networks`, `allowed_countries`) against the real
//! worker under `wrangler dev`, through the admin API and the `keygate` CLI.
//!
//! The client address is `CF-Connecting-IP`: Cloudflare sets it in production; the local
//! runtime sets `127.0.0.1` only when the request has none and keeps a client-sent value, so
//! each test chooses its address. The country is `request.cf.country`: locally Miniflare's
//! placeholder `cf` object, replaced as a whole by a client-sent `MF-CF-Blob` header (JSON).

// Tests: a failed expectation is a failed test, with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Command;
use std::sync::OnceLock;

use serde_json::{json, Value};

use common::{Gateway, Options, Resp, ADMIN_TOKEN};

fn gateway() -> &'static Gateway {
    static GATEWAY: OnceLock<Gateway> = OnceLock::new();
    GATEWAY.get_or_init(|| Gateway::start(Options::default()))
}

const LIST: &str = "/v1/public/cms/articles/items";

/// Creates a `read_only` key of project `net` with `extra` fields; its plaintext and id.
fn create(g: &Gateway, extra: Value) -> (String, String) {
    let mut body = json!({"project": "net", "name": "restricted", "role": "read_only"});
    body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    let response = g.admin("POST", "/keys").json(&body).send();
    assert_eq!(response.status, 201, "{}", response.body);
    let created = response.json();
    (created["key"].as_str().unwrap().to_string(), created["record"]["id"].as_str().unwrap().to_string())
}

fn patch(g: &Gateway, id: &str, body: Value) -> Value {
    let response = g.admin("PATCH", &format!("/keys/{id}")).json(&body).send();
    assert_eq!(response.status, 200, "{}", response.body);
    response.json()
}

/// A request with `key` from `address` (`None`: no `CF-Connecting-IP` sent).
fn from(g: &Gateway, key: &str, address: Option<&str>) -> Resp {
    let request = g.request("GET", LIST).bearer(key);
    match address {
        Some(address) => request.header("CF-Connecting-IP", address).send(),
        None => request.send(),
    }
}

/// The `MF-CF-Blob` header: a whole `cf` object, as Miniflare takes it. It also carries the
/// client's `Accept-Encoding` (none: ureq sends none), which Miniflare otherwise puts there
/// itself; without it the answer comes brotli-encoded.
fn cf_blob(fields: Value) -> String {
    let mut cf = json!({"clientAcceptEncoding": ""});
    cf.as_object_mut().unwrap().extend(fields.as_object().unwrap().clone());
    cf.to_string()
}

/// A request with `key` from `address` in `country`.
fn from_country(g: &Gateway, key: &str, address: &str, country: &str) -> Resp {
    let cf = cf_blob(json!({"country": country}));
    g.request("GET", LIST).bearer(key).header("CF-Connecting-IP", address).header("MF-CF-Blob", &cf).send()
}

fn assert_admitted(response: &Resp, what: &str) {
    assert_eq!(response.status, 200, "{what}: {}", response.body);
}

#[test]
fn allowed_networks_admit_their_addresses_and_refuse_others_ipv4_ipv6_and_mapped() {
    let g = gateway();
    let (key, _) = create(g, json!({"allowed_networks": ["203.0.113.0/24", "2001:db8::/32", "198.51.100.7"]}));
    for (address, admitted) in [
        ("203.0.113.9", true),
        ("203.0.114.9", false),
        ("2001:db8:1::5", true),
        ("2001:db9::5", false),
        ("::ffff:203.0.113.9", true),
        ("::ffff:203.0.114.9", false),
        ("198.51.100.7", true),
        ("198.51.100.8", false),
        ("not an address", false),
        ("203.0.113.9, 10.0.0.1", false),
    ] {
        let response = from(g, &key, Some(address));
        if admitted {
            assert_admitted(&response, address);
        } else {
            let body = response.assert_error(403, "NETWORK_NOT_ALLOWED");
            assert_eq!(body["error"]["details"], json!({}), "{address}: the refusal does not echo the address");
        }
    }
    // Without the header the local runtime says 127.0.0.1, outside every listed network.
    from(g, &key, None).assert_error(403, "NETWORK_NOT_ALLOWED");

    // An IPv4-mapped network is its IPv4 network.
    let (mapped, _) = create(g, json!({"allowed_networks": ["::ffff:192.0.2.0/120"]}));
    assert_admitted(&from(g, &mapped, Some("192.0.2.77")), "an IPv4 client in a mapped network");
    from(g, &mapped, Some("192.0.3.1")).assert_error(403, "NETWORK_NOT_ALLOWED");
}

#[test]
fn a_key_without_restrictions_is_admitted_from_anywhere_and_its_record_shows_empty_lists() {
    let g = gateway();
    let (key, id) = create(g, json!({}));
    for address in [Some("203.0.113.9"), Some("2001:db8::1"), Some("nonsense"), None] {
        assert_admitted(&from(g, &key, address), &format!("{address:?}"));
    }
    let record = g.admin("GET", &format!("/keys/{id}")).send().json();
    assert_eq!((&record["allowed_networks"], &record["allowed_countries"]), (&json!([]), &json!([])));
}

#[test]
fn clearing_the_networks_admits_the_next_request_and_setting_them_refuses_it() {
    let g = gateway();
    let (key, id) = create(g, json!({"allowed_networks": ["203.0.113.0/24"], "limit_mode": "exact"}));
    from(g, &key, Some("198.51.100.1")).assert_error(403, "NETWORK_NOT_ALLOWED");
    let cleared = patch(g, &id, json!({"allowed_networks": null}));
    assert_eq!(cleared["allowed_networks"], json!([]));
    assert_admitted(&from(g, &key, Some("198.51.100.1")), "after the restriction is lifted (the limiter hands over the record)");
    let moved = patch(g, &id, json!({"allowed_networks": ["2001:db8::/32"]}));
    assert_eq!(moved["allowed_networks"], json!(["2001:db8::/32"]));
    from(g, &key, Some("198.51.100.1")).assert_error(403, "NETWORK_NOT_ALLOWED");
    assert_admitted(&from(g, &key, Some("2001:db8::77")), "from the new network");
    let audit = g.admin("GET", &format!("/keys/{id}/audit")).send().json();
    let changed: Vec<&Value> = audit["items"].as_array().unwrap().iter().map(|e| &e["changes"]["allowed_networks"]["to"]).collect();
    assert_eq!(changed, [&json!(["203.0.113.0/24"]), &json!([]), &json!(["2001:db8::/32"])], "each change is audited");
}

#[test]
fn refused_requests_spend_no_limit() {
    let g = gateway();
    let limits = json!([{"name": "minute", "limit": 3, "window_seconds": 60}]);
    let (key, _) = create(g, json!({"allowed_networks": ["203.0.113.0/24"], "limits": limits, "limit_mode": "exact"}));
    for _ in 0..6 {
        from(g, &key, Some("198.51.100.1")).assert_error(403, "NETWORK_NOT_ALLOWED");
    }
    for n in 1..=3 {
        assert_admitted(&from(g, &key, Some("203.0.113.9")), &format!("allowed request {n} of 3"));
    }
    from(g, &key, Some("203.0.113.9")).assert_error(429, "RATE_LIMIT_EXCEEDED");
}

#[test]
fn allowed_countries_follow_request_cf_country() {
    let g = gateway();
    let (key, _) = create(g, json!({"allowed_countries": ["de", "FR"]}));
    assert_admitted(&from_country(g, &key, "203.0.113.9", "DE"), "DE");
    assert_admitted(&from_country(g, &key, "203.0.113.9", "FR"), "FR");
    from_country(g, &key, "203.0.113.9", "US").assert_error(403, "COUNTRY_NOT_ALLOWED");
    // A cf object without a country: unknown country, refused.
    let no_country = g.request("GET", LIST).bearer(&key).header("MF-CF-Blob", &cf_blob(json!({"colo": "FRA"}))).send();
    no_country.assert_error(403, "COUNTRY_NOT_ALLOWED");

    // Both lists: the network is checked first, then the country.
    let (both, _) = create(g, json!({"allowed_networks": ["203.0.113.0/24"], "allowed_countries": ["DE"]}));
    assert_admitted(&from_country(g, &both, "203.0.113.9", "DE"), "both pass");
    from_country(g, &both, "198.51.100.1", "US").assert_error(403, "NETWORK_NOT_ALLOWED");
    from_country(g, &both, "203.0.113.9", "US").assert_error(403, "COUNTRY_NOT_ALLOWED");
}

#[test]
fn malformed_networks_and_countries_are_refused_naming_the_field() {
    let g = gateway();
    let rows: Vec<(&str, Value, &str)> = vec![
        ("host bits set", json!({"allowed_networks": ["10.0.0.1/8"]}), "allowed_networks"),
        ("IPv4 prefix over 32", json!({"allowed_networks": ["10.0.0.0/33"]}), "allowed_networks"),
        ("IPv6 prefix over 128", json!({"allowed_networks": ["2001:db8::/129"]}), "allowed_networks"),
        ("not an address", json!({"allowed_networks": ["office"]}), "allowed_networks"),
        ("too many", json!({"allowed_networks": (0..101).map(|i| format!("10.0.{i}.0/24")).collect::<Vec<_>>()}), "allowed_networks"),
        ("three letters", json!({"allowed_countries": ["DEU"]}), "allowed_countries"),
    ];
    let (_, id) = create(g, json!({}));
    for (what, extra, field) in rows {
        let mut body = json!({"project": "net", "name": "n", "role": "read_only"});
        body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        let error = g.admin("POST", "/keys").json(&body).send().assert_error(400, "VALIDATION_FAILED");
        let fields: Vec<&String> = error["error"]["details"]["fields"].as_object().unwrap().keys().collect();
        assert_eq!(fields, [field], "create: {what}");
        let error = g.admin("PATCH", &format!("/keys/{id}")).json(&extra).send().assert_error(400, "VALIDATION_FAILED");
        assert!(error["error"]["details"]["fields"].get(field).is_some(), "update: {what}: {error}");
    }
}

fn keygate(args: &[&str]) -> Value {
    let output = Command::new(common::bin("keygate"))
        .args(["keys", "--json"])
        .args(args)
        .env("KEYGATE_URL", &gateway().url)
        .env("KEYGATE_ADMIN_TOKEN", ADMIN_TOKEN)
        .output()
        .expect("run keygate");
    assert!(output.status.success(), "{args:?}: {}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).expect("json output")
}

#[test]
fn the_cli_sets_and_clears_networks_and_countries() {
    let g = gateway();
    let created = keygate(&[
        "create",
        "--project",
        "net",
        "--name",
        "cli",
        "--role",
        "read_only",
        "--allow-network",
        "203.0.113.0/24",
        "--allow-network",
        "2001:db8::/32",
        "--allow-country",
        "de",
    ]);
    let key = created["key"].as_str().unwrap();
    let id = created["record"]["id"].as_str().unwrap();
    assert_eq!(created["record"]["allowed_networks"], json!(["203.0.113.0/24", "2001:db8::/32"]));
    assert_eq!(created["record"]["allowed_countries"], json!(["DE"]));
    assert_admitted(&from_country(g, key, "2001:db8::1", "DE"), "CLI-made restriction, inside");
    from_country(g, key, "198.51.100.1", "DE").assert_error(403, "NETWORK_NOT_ALLOWED");

    let updated = keygate(&["update", id, "--clear-networks", "--allowed-country", "FR"]);
    assert_eq!((&updated["allowed_networks"], &updated["allowed_countries"]), (&json!([]), &json!(["FR"])));
    let cleared = keygate(&["update", id, "--clear-countries"]);
    assert_eq!(cleared["allowed_countries"], json!([]));
}
