//! One count of the checks skipped in a whole `cargo test` run.
//!
//! Test harnesses call [`record`] for each check that could not run here. Every test binary of
//! one run is a child of the same `cargo` process, so the records go to a file named after
//! that process (its pid and start time: a pid alone may be reused), under the workspace's
//! `target/tmp/`. The `summary` test of this package runs last and prints the total (see
//! `Cargo.toml`); a single test binary run on its own still prints its own SKIP lines.

use std::io::Write as _;
use std::path::{Path, PathBuf};

/// Where the records of the run that started this process go, if the parent is known.
pub fn run_file(target_tmp: &Path) -> Option<PathBuf> {
    let ppid = std::os::unix::process::parent_id();
    let stat = std::fs::read_to_string(format!("/proc/{ppid}/stat")).ok()?;
    // Field 22 (start time) counts from after the command name, which may hold spaces.
    let after = stat.rsplit_once(')')?.1;
    let start = after.split_whitespace().nth(19)?;
    Some(
        target_tmp
            .join("cordon-test-runs")
            .join(format!("{ppid}-{start}.txt")),
    )
}

/// The workspace's `target/tmp` (what `CARGO_TARGET_TMPDIR` is for integration tests).
pub fn target_tmp() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(t) => PathBuf::from(t).join("tmp"),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/tmp"),
    }
}

/// Records one `KIND test: reason` line (KIND is SKIP or NOTE) for this run's total.
pub fn record(kind: &str, test: &str, reason: &str) {
    let Some(file) = run_file(&target_tmp()) else {
        return;
    };
    if let Some(dir) = file.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&file)
    {
        // One write per line: binaries of one run do not interleave within a line.
        let _ = f.write_all(format!("{kind} {test}: {reason}\n").as_bytes());
    }
}
