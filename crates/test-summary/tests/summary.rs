//! The last binary of `cargo test --workspace`: prints how many checks the run skipped (the
//! SKIP/NOTE lines recorded by every test binary of this run), then checks that it is indeed
//! last, so the count stays the run's final line.

use std::path::Path;

fn main() {
    let problems = still_last();
    let file = test_summary::run_file(&test_summary::target_tmp());
    let lines: Vec<String> = file
        .as_ref()
        .and_then(|f| std::fs::read_to_string(f).ok())
        .map(|t| t.lines().map(str::to_string).collect())
        .unwrap_or_default();
    if let Some(f) = &file {
        let _ = std::fs::remove_file(f);
    }
    for p in &problems {
        eprintln!("test-summary: {p}");
    }
    let mut sorted = lines.clone();
    sorted.sort();
    sorted.dedup();
    // The lines first, the count last: it is the run's final line.
    for l in &sorted {
        eprintln!("  {l}");
    }
    if sorted.is_empty() {
        eprintln!("cordon tests: no check was skipped in this run");
    } else {
        eprintln!(
            "cordon tests: {} check(s) skipped or only partly possible in this run (listed above)",
            sorted.len()
        );
    }
    if !problems.is_empty() {
        std::process::exit(1);
    }
}

/// What would make this binary not the last of the run: a member whose name sorts after
/// `test-summary`, or one running doc tests (they run after every test binary).
fn still_last() -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let read = |p: &Path| -> Option<toml::Table> { std::fs::read_to_string(p).ok()?.parse().ok() };
    let Some(ws) = read(&root.join("Cargo.toml")) else {
        return vec!["cannot read the workspace's Cargo.toml".into()];
    };
    let members = ws
        .get("workspace")
        .and_then(|w| w.get("members"))
        .and_then(|m| m.as_array())
        .cloned()
        .unwrap_or_default();
    let mut out = Vec::new();
    for m in members.iter().filter_map(|m| m.as_str()) {
        let Some(manifest) = read(&root.join(m).join("Cargo.toml")) else {
            out.push(format!("cannot read {m}/Cargo.toml"));
            continue;
        };
        let name = manifest
            .get("package")
            .and_then(|p| p.get("name"))
            .and_then(|n| n.as_str())
            .unwrap_or_default();
        if name > "test-summary" {
            out.push(format!(
                "package {name} sorts after test-summary: its tests would run after the count"
            ));
        }
        let has_lib = root.join(m).join("src/lib.rs").exists();
        let doctest = manifest
            .get("lib")
            .and_then(|l| l.get("doctest"))
            .and_then(|d| d.as_bool())
            .unwrap_or(true);
        if has_lib && doctest {
            out.push(format!(
                "{m} runs doc tests, which run after the count: set `[lib] doctest = false` (examples go in unit tests)"
            ));
        }
    }
    out
}
