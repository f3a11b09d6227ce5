//! Route table and path checks: `RouteTable::from_json` on arbitrary JSON text, and arbitrary
//! methods and paths against the shipped table and `check_canonical`. Never panics; a path
//! that passes `check_canonical` has no segment that could mean another path to the origin.
#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use keygate_core::config::DEFAULT_ROUTES;
use keygate_core::routes::{check_canonical, RouteTable};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

/// The default table plus the project-scoped and environment-restricted routes the shipped
/// wrangler.toml adds (as JSON, so any field the table gains is parsed the same way).
const EXTRA_ROUTES: &str = r#"[
  {"methods":["GET","HEAD"],"path":"/v1/projects/:project/public/cms/:type/items","scopes":["content:read"],"project_param":"project"},
  {"methods":["*"],"path":"/echo/*","scopes":[]}
]"#;

fn tables() -> &'static [RouteTable] {
    static TABLES: OnceLock<Vec<RouteTable>> = OnceLock::new();
    TABLES.get_or_init(|| {
        vec![
            RouteTable::from_json(DEFAULT_ROUTES).expect("DEFAULT_ROUTES compiles"),
            RouteTable::from_json(EXTRA_ROUTES).expect("EXTRA_ROUTES compiles"),
        ]
    })
}

/// Path segments biased towards the shipped routes and the usual tricks.
#[derive(Arbitrary, Debug)]
enum Seg<'a> {
    Known(u8),
    Raw(&'a str),
}

const KNOWN: &[&str] = &[
    "v1", "public", "cms", "items", "projects", "acme", "articles", "echo", "", ".", "..", "%2e", "%2E%2e", ".%2e", "%2f", "%5C", "\\",
    "%00", "%252e", "a%2Fb", "42", "_keygate", "%",
];

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    method: &'a str,
    known_method: u8,
    segments: Vec<Seg<'a>>,
    raw_path: &'a str,
    table_json: &'a str,
}

/// Percent-decodes once, as an origin would (invalid escapes kept literally).
fn decode_once(path: &str) -> Vec<u8> {
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() && bytes[i + 1].is_ascii_hexdigit() && bytes[i + 2].is_ascii_hexdigit() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).expect("ASCII hex digits");
            out.push(u8::from_str_radix(hex, 16).expect("two hex digits"));
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    out
}

fn check_path(method: &str, path: &str) {
    let canonical = check_canonical(path);
    if canonical.is_ok() {
        assert!(path.starts_with('/'));
        let decoded = decode_once(path);
        assert!(!decoded.contains(&b'\\'), "{path:?} decodes to a backslash");
        // (A raw NUL never reaches here: the runtime's URL parser percent-encodes it.)
        assert!(path.contains('\0') || !decoded.contains(&0), "{path:?} decodes to NUL");
        let segments: Vec<&[u8]> = decoded[1..].split(|b| *b == b'/').collect();
        // A decoded slash would add a segment the table never saw.
        let raw_count = path[1..].split('/').count();
        assert_eq!(segments.len(), raw_count, "{path:?} hides an encoded slash");
        for (i, segment) in segments.iter().enumerate() {
            assert!(*segment != b"." && *segment != b"..", "{path:?} has a dot segment");
            assert!(!segment.is_empty() || i + 1 == segments.len(), "{path:?} has an empty segment");
        }
    }
    for table in tables() {
        if let Some(found) = table.find(method, path) {
            assert!(path.starts_with('/'));
            assert!(!found.pattern.is_empty());
            if let Some(project) = &found.project {
                assert!(!project.is_empty() && !project.contains('/'), "bad project capture {project:?}");
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let Ok(input) = Input::arbitrary(&mut u) else { return };

    const METHODS: &[&str] = &["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "get", "*", ""];
    let method = if input.known_method % 2 == 0 { METHODS[usize::from(input.known_method / 2) % METHODS.len()] } else { input.method };

    let mut built = String::new();
    for segment in &input.segments {
        built.push('/');
        built.push_str(match segment {
            Seg::Known(i) => KNOWN[usize::from(*i) % KNOWN.len()],
            Seg::Raw(text) => text,
        });
    }
    check_path(method, &built);
    check_path(method, input.raw_path);

    // Arbitrary JSON text as a route table: Ok or Err, never a panic.
    for text in [input.table_json, std::str::from_utf8(data).unwrap_or("")] {
        if let Ok(table) = RouteTable::from_json(text) {
            let _ = table.len();
            let _ = table.find(method, &built);
            let _ = table.find(method, input.raw_path);
        }
    }
});
