//! `scripts/build.sh` on a fresh machine (it is wrangler.toml's `[build]`, so `wrangler deploy`
//! runs it): with a pinned tool missing it runs `scripts/setup.sh` itself, or, with
//! `KEYGATE_NO_AUTO_SETUP=1`, says exactly what to run. Checked with a temporary `HOME` and a
//! `PATH` without the tools, so nothing is installed or built here.

// Tests: a failed expectation is a failed test, with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &str) -> String {
    std::fs::read_to_string(root().join(path)).expect(path)
}

/// The version of `name` in Cargo.lock.
fn locked_version(name: &str) -> String {
    let lock = read("Cargo.lock");
    let entry = format!("name = \"{name}\"\nversion = \"");
    let start = lock.find(&entry).unwrap_or_else(|| panic!("{name} in Cargo.lock")) + entry.len();
    lock[start..].split('"').next().expect("version").to_string()
}

/// The value of `NAME=value` in scripts/setup.sh.
fn setup_pin(name: &str) -> String {
    let setup = read("scripts/setup.sh");
    let line = setup.lines().find(|l| l.starts_with(&format!("{name}="))).unwrap_or_else(|| panic!("{name} in setup.sh"));
    line[name.len() + 1..].split_whitespace().next().expect("value").to_string()
}

/// A directory holding only `rustup` (the real one), so that the Rust toolchain is found but
/// none of the tools setup.sh installs into ~/.cargo/bin.
fn path_with_rustup_only(dir: &Path) -> String {
    let home = std::env::var("HOME").expect("HOME");
    let path = std::env::var("PATH").unwrap_or_default();
    let rustup = std::iter::once(Path::new(&home).join(".cargo/bin"))
        .chain(std::env::split_paths(&path))
        .map(|d| d.join("rustup"))
        .find(|p| p.is_file())
        .expect("rustup on PATH or in ~/.cargo/bin (make test needs it)");
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).expect("bin");
    std::os::unix::fs::symlink(&rustup, bin.join("rustup")).expect("symlink rustup");
    format!("{}:/usr/bin:/bin", bin.display())
}

/// scripts/build.sh of `tree` with `HOME` a fresh directory and `PATH` = `path`.
fn run_build(tree: &Path, home: &Path, path: &str, extra: &[(&str, &str)]) -> Output {
    let real_home = std::env::var("HOME").expect("HOME");
    let rustup_home = std::env::var("RUSTUP_HOME").unwrap_or_else(|_| format!("{real_home}/.rustup"));
    let mut command = Command::new("sh");
    command.arg(tree.join("scripts/build.sh")).env_clear().env("HOME", home).env("PATH", path).env("RUSTUP_HOME", rustup_home);
    for (name, value) in extra {
        command.env(name, value);
    }
    command.output().expect("run build.sh")
}

#[test]
fn setup_installs_the_wasm_bindgen_cli_of_cargo_lock() {
    assert_eq!(setup_pin("WASM_BINDGEN_VERSION"), locked_version("wasm-bindgen"), "scripts/setup.sh's WASM_BINDGEN_VERSION");
}

#[test]
fn without_the_pinned_tools_build_sh_says_exactly_what_to_run() {
    let dir = tempfile::tempdir().expect("tempdir");
    let home = dir.path().join("home");
    std::fs::create_dir_all(&home).expect("home");
    let output = run_build(&root(), &home, &path_with_rustup_only(dir.path()), &[("KEYGATE_NO_AUTO_SETUP", "1")]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(stderr.contains(&format!("worker-build {}", setup_pin("WORKER_BUILD_VERSION"))), "{stderr}");
    assert!(stderr.contains(&format!("wasm-bindgen-cli {}", locked_version("wasm-bindgen"))), "{stderr}");
    assert!(stderr.contains("build.sh: run: bash scripts/setup.sh"), "{stderr}");
    assert!(!stderr.contains("Compiling"), "nothing is built: {stderr}");

    // Without rustup there is nothing setup.sh could do: it says to install Rust first.
    let output = run_build(&root(), &home, "/usr/bin:/bin", &[]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(stderr.contains("install Rust with rustup first (https://rustup.rs), then run: bash scripts/setup.sh"), "{stderr}");
}

#[test]
fn with_a_tool_missing_build_sh_runs_setup_sh() {
    // A copy of build.sh beside a stand-in setup.sh that only reports being run (the real one
    // would install for minutes); the tools are still missing afterwards, which build.sh reports.
    let dir = tempfile::tempdir().expect("tempdir");
    let tree = dir.path().join("tree");
    std::fs::create_dir_all(tree.join("scripts")).expect("scripts");
    std::fs::copy(root().join("scripts/build.sh"), tree.join("scripts/build.sh")).expect("copy build.sh");
    std::fs::copy(root().join("Cargo.lock"), tree.join("Cargo.lock")).expect("copy Cargo.lock");
    let pin = setup_pin("WORKER_BUILD_VERSION");
    std::fs::write(tree.join("scripts/setup.sh"), format!("WORKER_BUILD_VERSION={pin}\necho stand-in setup.sh ran in \"$PWD\" >&2\n"))
        .expect("stub");
    let home = dir.path().join("home");
    std::fs::create_dir_all(&home).expect("home");
    let output = run_build(&tree, &home, &path_with_rustup_only(dir.path()), &[]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("build.sh: running bash scripts/setup.sh"), "{stderr}");
    assert!(stderr.contains(&format!("stand-in setup.sh ran in {}", tree.display())), "{stderr}");
    assert!(!output.status.success(), "{stderr}");
    assert!(stderr.contains("still missing after setup.sh"), "{stderr}");
}
