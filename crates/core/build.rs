//! Serves the OpenAPI document minified: `src/admin/openapi.json` stays pretty-printed for
//! people, and `keygate_core::admin::OPENAPI` carries it without the whitespace between tokens
//! (same JSON; the worker serves the copy its JS entry bundles, `scripts/console-assets.mjs`).

// A build script that cannot read its input should stop the build loudly.
#![allow(clippy::expect_used)]

use std::{env, fs, path::Path};

fn main() {
    let source = "src/admin/openapi.json";
    println!("cargo:rerun-if-changed={source}");
    println!("cargo:rerun-if-changed=build.rs");
    let text = fs::read_to_string(source).expect("read src/admin/openapi.json");
    let out = Path::new(&env::var("OUT_DIR").expect("OUT_DIR")).join("openapi.min.json");
    fs::write(out, minify(&text)).expect("write openapi.min.json");
}

/// Drops whitespace outside strings. Strings, escapes included, are copied unchanged.
fn minify(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    let (mut in_string, mut escaped) = (false, false);
    for c in json.chars() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
        } else if c == '"' {
            in_string = true;
            out.push(c);
        } else if !matches!(c, ' ' | '\t' | '\n' | '\r') {
            out.push(c);
        }
    }
    out
}
