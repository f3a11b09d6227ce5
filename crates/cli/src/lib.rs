//! The `keygate` command's library: `keygate keys …` ([`keys`]) and seed profiles
//! ([`profile`]). The binary (`src/main.rs`) only parses the command line; `keygate-demo`
//! drives the same key commands to seed demo keys.

pub mod keys;
pub mod profile;
