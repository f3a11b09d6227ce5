//! `keygate`: native developer tools for the keygate gateway.
//!
//! - `keygate demo-origin` runs a loopback demo CMS origin that only answers requests signed by
//!   keygate ([`demo_origin`]).
//! - `keygate demo-keys` generates demo keys, writes their KV records for
//!   `wrangler kv bulk put` and prints the plaintext keys once ([`demo_keys`]).
//! - `keygate keys …` manages keys through the gateway's admin API ([`keys`]).
//!
//! The gateway itself runs as a Cloudflare Worker (wasm32); this binary is native-only. On
//! wasm32 it compiles to an empty `main` so that building the whole package still works.

#[cfg(not(target_arch = "wasm32"))]
mod demo_keys;
#[cfg(not(target_arch = "wasm32"))]
mod demo_origin;
#[cfg(not(target_arch = "wasm32"))]
mod keys;

#[cfg(target_arch = "wasm32")]
fn main() {}

#[cfg(not(target_arch = "wasm32"))]
fn main() -> std::process::ExitCode {
    native::main()
}

#[cfg(not(target_arch = "wasm32"))]
mod native {
    use std::path::PathBuf;
    use std::process::ExitCode;

    use clap::{Parser, Subcommand};

    use crate::{demo_keys, demo_origin, keys};

    /// Native developer tools for the keygate API-key gateway.
    #[derive(Debug, Parser)]
    #[command(name = "keygate", version)]
    struct Cli {
        #[command(subcommand)]
        command: Command,
    }

    #[derive(Debug, Subcommand)]
    enum Command {
        /// Run a loopback demo CMS origin that only answers keygate-signed requests.
        ///
        /// The signing secret is read from the ORIGIN_SIGNING_SECRET environment variable.
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
        },
        /// Generate demo keys: write their KV records to a file and print the keys once.
        DemoKeys {
            /// Key prefix (must match the gateway's KEY_PREFIX).
            #[arg(long, default_value = "kg")]
            prefix: String,
            /// Project the demo keys are bound to.
            #[arg(long, default_value = "acme")]
            project: String,
            /// Where to write the JSON for `wrangler kv bulk put` (hashes only, no plaintext keys).
            #[arg(long)]
            kv_out: PathBuf,
            /// Gateway base URL used in the printed curl example.
            #[arg(long, default_value = "http://127.0.0.1:8787")]
            gateway_url: String,
        },
        /// Manage API keys through the gateway's admin API (token from KEYGATE_ADMIN_TOKEN).
        Keys(keys::KeysArgs),
    }

    /// Parses the command line and runs the chosen subcommand.
    pub fn main() -> ExitCode {
        let result = match Cli::parse().command {
            Command::DemoOrigin { host, port, label } => run_demo_origin(host, port, label),
            Command::DemoKeys { prefix, project, kv_out, gateway_url } => {
                demo_keys::run(&prefix, &project, &kv_out, &gateway_url)
            }
            // Has its own exit codes (1 API error, 2 usage, 3 unreachable) and messages.
            Command::Keys(args) => return keys::main(&args),
        };
        match result {
            Ok(()) => ExitCode::SUCCESS,
            Err(message) => {
                eprintln!("keygate: {message}");
                ExitCode::FAILURE
            }
        }
    }

    fn run_demo_origin(host: String, port: u16, label: String) -> Result<(), String> {
        let secret = match std::env::var("ORIGIN_SIGNING_SECRET") {
            Ok(secret) if secret.len() >= 16 => secret,
            Ok(_) => return Err("ORIGIN_SIGNING_SECRET must be at least 16 characters (same rule as the gateway)".into()),
            Err(_) => {
                return Err("ORIGIN_SIGNING_SECRET is not set; the demo origin needs the gateway's signing secret \
                     (e.g. ORIGIN_SIGNING_SECRET=... keygate demo-origin)"
                    .into())
            }
        };
        demo_origin::serve(&demo_origin::Options { host, port, label, secret: secret.into_bytes() })
    }
}
