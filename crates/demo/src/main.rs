//! `keygate-demo`: developer tools for trying and testing keygate (not the user's CLI).
//!
//! - `keygate-demo demo-origin` runs a loopback demo CMS origin that only answers requests signed
//!   by keygate ([`demo_origin`]).
//! - `keygate-demo demo-keys` seeds demo keys into a running gateway through its admin API and
//!   prints the plaintext keys once ([`demo_keys`]), with `keygate keys` underneath.

mod demo_keys;
mod demo_origin;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Developer tools for the keygate API-key gateway: a demo origin and demo keys.
#[derive(Debug, Parser)]
#[command(name = "keygate-demo", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a loopback demo CMS origin that only answers keygate-signed requests.
    ///
    /// The signing secret is read from the ORIGIN_SIGNING_SECRET environment variable: the
    /// gateway's ORIGIN_SIGNING_SECRET for the live origin, its ORIGIN_SIGNING_SECRET_TEST
    /// (if set) for the test origin. Signatures must be made for this origin's audience.
    DemoOrigin {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1")]
        host: String,
        /// Port to listen on (0 picks a free port).
        #[arg(long, default_value_t = 8788)]
        port: u16,
        /// Label put in every response (`"origin"` field and `x-origin-label` header).
        #[arg(long, default_value = "live")]
        label: String,
        /// The URL the gateway forwards to (its ORIGIN_URL or ORIGIN_URL_TEST); signatures
        /// must be made for its audience (lowercase scheme://host[:port]). Default:
        /// http://<host>:<port> as printed at startup.
        #[arg(long, value_name = "URL")]
        audience: Option<String>,
    },
    /// Seed demo keys into a running gateway through its admin API and print them once.
    ///
    /// One active key per built-in role, an expired, an inactive and a not-yet-valid key, a
    /// test-environment key and a key of another project. The admin token is read from the
    /// KEYGATE_ADMIN_TOKEN environment variable (the gateway's ADMIN_TOKEN).
    DemoKeys {
        /// Gateway base URL (http:// or https://).
        #[arg(long, env = "KEYGATE_URL", default_value = "http://127.0.0.1:8787", value_name = "URL")]
        url: String,
        /// Path of the admin API on the gateway (the gateway's ADMIN_PREFIX).
        #[arg(long, env = "KEYGATE_ADMIN_PREFIX", default_value = "/_keygate/v1", value_name = "PATH")]
        prefix: String,
        /// Project the demo keys are bound to.
        #[arg(long, default_value = "acme")]
        project: String,
        /// Make the demo keys of this seed profile (its [demo] table in profiles/NAME.toml).
        #[arg(long, value_name = "NAME")]
        profile: Option<String>,
    },
}

fn main() -> ExitCode {
    let result = match Cli::parse().command {
        Command::DemoOrigin { host, port, label, audience } => run_demo_origin(host, port, label, audience),
        Command::DemoKeys { url, prefix, project, profile } => run_demo_keys(url, prefix, project, profile),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("keygate-demo: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run_demo_keys(url: String, prefix: String, project: String, profile: Option<String>) -> Result<(), String> {
    let plan = match profile {
        Some(name) => demo_keys::plan_of_profile(std::path::Path::new("."), &name)?,
        None => demo_keys::Plan::default(),
    };
    // Never echo the token, not even a malformed one.
    let token = match std::env::var("KEYGATE_ADMIN_TOKEN") {
        Ok(token) if !token.is_empty() => token,
        Ok(_) => return Err("KEYGATE_ADMIN_TOKEN is empty; demo-keys needs the gateway's ADMIN_TOKEN".into()),
        Err(std::env::VarError::NotPresent) => {
            return Err("KEYGATE_ADMIN_TOKEN is not set; demo-keys needs the gateway's ADMIN_TOKEN \
                 (e.g. KEYGATE_ADMIN_TOKEN=... keygate-demo demo-keys; make dev reads it from .dev.vars)"
                .into())
        }
        Err(std::env::VarError::NotUnicode(_)) => return Err("KEYGATE_ADMIN_TOKEN is not valid UTF-8".into()),
    };
    demo_keys::run(&demo_keys::Options { url, prefix, project, token, plan })
}

fn run_demo_origin(host: String, port: u16, label: String, audience: Option<String>) -> Result<(), String> {
    let secret = match std::env::var("ORIGIN_SIGNING_SECRET") {
        Ok(secret) if secret.len() >= 16 => secret,
        Ok(_) => return Err("ORIGIN_SIGNING_SECRET must be at least 16 characters (same rule as the gateway)".into()),
        Err(_) => {
            return Err("ORIGIN_SIGNING_SECRET is not set; the demo origin needs the gateway's signing secret \
                 (e.g. ORIGIN_SIGNING_SECRET=... keygate-demo demo-origin)"
                .into())
        }
    };
    demo_origin::serve(&demo_origin::Options { host, port, label, secret: secret.into_bytes(), audience })
}
