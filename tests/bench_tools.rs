//! The benchmark tools stay usable as the code changes: `benches/ablation/cuts.patch` must
//! still apply to the worker's sources (it is applied to a worktree of HEAD by
//! `benches/ablation/run.sh`; `git apply --check` reads the working tree and changes nothing).

// Tests: a failed expectation is a failed test, with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Command;

#[test]
fn the_ablation_patch_applies_to_the_current_sources() {
    let root = common::repo_root();
    let output =
        Command::new("git").args(["apply", "--check", "benches/ablation/cuts.patch"]).current_dir(&root).output().expect("run git");
    assert!(
        output.status.success(),
        "benches/ablation/cuts.patch no longer applies; regenerate it against crates/worker/src/lib.rs:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}
