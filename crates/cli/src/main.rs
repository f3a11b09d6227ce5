//! `keygate`: the command line for keygate's key owners.
//!
//! - `keygate keys …` manages keys through the gateway's admin API ([`keygate_cli::keys`]).
//! - `keygate profile-vars NAME` prints a seed profile's settings for `wrangler dev --var` or a
//!   deployment ([`keygate_cli::profile`]).
//! - `keygate completions SHELL` prints the shell completion script (`clap_complete`).
//! - `keygate --version` prints the version of this crate.
//!
//! The demo origin and demo keys are developer tools of their own (`keygate-demo`).

use std::io::Write;
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};
use clap_complete::Shell;
use keygate_cli::{keys, profile};

/// Manage keys of a keygate API-key gateway.
#[derive(Debug, Parser)]
#[command(name = "keygate", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

// Parsed once per run, so the size of the largest variant (`keys`) does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
enum Command {
    /// Manage API keys through the gateway's admin API (token from KEYGATE_ADMIN_TOKEN).
    Keys(keys::KeysArgs),
    /// Print the settings of profiles/NAME.toml as NAME:VALUE lines (for wrangler dev --var).
    ProfileVars {
        /// Profile name (a file under profiles/).
        name: String,
        /// The checkout holding profiles/.
        #[arg(long, default_value = ".", value_name = "DIR")]
        root: std::path::PathBuf,
    },
    /// Print the completion script for SHELL (bash, zsh, fish, elvish, powershell) to stdout.
    Completions {
        /// The shell to complete in.
        shell: Shell,
    },
}

fn main() -> ExitCode {
    match Cli::parse().command {
        // Has its own exit codes (1 API error, 2 usage, 3 unreachable) and messages.
        Command::Keys(args) => keys::main(&args),
        Command::Completions { shell } => {
            // Into memory first: `generate` panics on a write error (e.g. `| head` closing the pipe).
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "keygate", &mut script);
            match std::io::stdout().write_all(&script) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("keygate: cannot write the completion script: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::ProfileVars { name, root } => match profile::vars(&root, &name) {
            Ok(vars) => {
                for (name, value) in vars {
                    println!("{name}:{value}");
                }
                ExitCode::SUCCESS
            }
            Err(message) => {
                eprintln!("keygate: {message}");
                ExitCode::FAILURE
            }
        },
    }
}
