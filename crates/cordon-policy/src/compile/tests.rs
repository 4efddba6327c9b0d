//! `cordon policy check FILE` ≡ `cordon run -p FILE`: over generated policy files, valid and
//! invalid, the file check and the run's loading agree, match what the generator knows about
//! each entry, and every refusal names the file, the line of a bad entry and a column.

use std::path::{Path, PathBuf};

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

use crate::{check_file, compile, load_inputs, CliLayer, Locations};

/// (section, key, variants: (value, valid)). `{data}` is an existing directory outside
/// `$HOME`, `{missing}` one that does not exist. A key without a name is a whole section body.
/// One value of a key and whether the policy accepts it.
type Variant = (&'static str, bool);

const KEYS: &[(&str, &str, &[Variant])] = &[
    (
        "filesystem",
        "allow_write",
        &[
            ("[\"{data}\"]", true),
            ("[]", true),
            ("[\"~\"]", false),
            ("[\"/\"]", false),
            ("[\"{missing}\"]", false),
            ("\"{data}\"", false),
            ("[1]", false),
        ],
    ),
    (
        "filesystem",
        "deny_read",
        &[
            ("[\"~/secret\"]", true),
            ("[\"/etc/shadow\", \"~/.netrc\"]", true),
            ("[\"~/src/app\"]", false),
            ("[\"~/src\"]", false),
            ("[true]", false),
        ],
    ),
    (
        "filesystem",
        "allow_read",
        &[("[\"~/.aws/config\"]", true), ("3", false)],
    ),
    (
        "filesystem",
        "ask_read",
        &[
            ("[\"~/other\"]", true),
            ("[\"/\"]", false),
            ("[\"~\"]", false),
            ("[\"/tmp/x\"]", false),
        ],
    ),
    (
        "filesystem",
        "ask_write",
        &[("[\"~/src/app/.env\"]", true), ("[\"/etc/passwd\"]", false)],
    ),
    (
        "filesystem",
        "protect",
        &[
            ("[\"notes.md\", \"~/.foo/**\", \"/opt/tool/*.conf\"]", true),
            ("[\"a/../b\"]", false),
            ("[\"x**y\"]", false),
            ("[\"\"]", false),
        ],
    ),
    (
        "filesystem",
        "mode",
        &[("\"normal\"", true), ("\"lax\"", false), ("[]", false)],
    ),
    ("filesystem", "colour", &[("1", false)]),
    (
        "network",
        "allow",
        &[
            (
                "[\"example.com\", \"*.example.com:8443\", \"conflict.example\"]",
                true,
            ),
            ("[\"foo*.com\"]", false),
            ("[\"127.1\"]", false),
            ("[\"x.example:0\"]", false),
            ("[\"a b.com\"]", false),
        ],
    ),
    (
        "network",
        "deny",
        &[
            ("[\"evil.example\", \"conflict.example\"]", true),
            ("[\"a.*.example\"]", false),
        ],
    ),
    (
        "network",
        "allow_cidrs",
        &[
            ("[\"10.0.0.0/8\", \"[fd00::]/8:443\"]", true),
            ("[\"10.0.0.0/33\"]", false),
            ("[\"300.0.0.0/8\"]", false),
        ],
    ),
    (
        "network",
        "unknown",
        &[("\"deny\"", true), ("\"ask\"", true), ("\"maybe\"", false)],
    ),
    (
        "network.hosts",
        "\"db.test\"",
        &[("\"127.0.0.1\"", true), ("\"999.0.0.1\"", false)],
    ),
    ("network.hosts", "\"bad name\"", &[("\"127.0.0.1\"", false)]),
    (
        "env",
        "pass",
        &[("[\"EDITOR\"]", true), ("\"EDITOR\"", false)],
    ),
    (
        "env",
        "set",
        &[("{ FOO = \"bar\" }", true), ("{ FOO = 1 }", false)],
    ),
    (
        "limits",
        "max_tasks",
        &[("100", true), ("-1", false), ("\"many\"", false)],
    ),
    ("limits", "memory_mb", &[("512", true), ("\"x\"", false)]),
    (
        "lifecycle",
        "max_age",
        &[("\"1h\"", true), ("\"forever\"", false)],
    ),
    ("approval", "timeout", &[("30", true), ("\"soon\"", false)]),
    (
        "approval",
        "session_scope",
        &[("true", true), ("\"yes\"", false)],
    ),
    (
        "secrets.TOKEN",
        "",
        &[
            ("from_env = \"T\"\nhosts = [\"api.example.com\"]", true),
            ("from_env = \"T\"", false),
            (
                "from_env = \"T\"\nfrom_file = \"/x\"\nhosts = [\"api.example.com\"]",
                false,
            ),
        ],
    ),
    ("bogus", "x", &[("1", false)]),
];

/// A generated file: its text, whether every entry is valid, and the lines of the bad ones.
#[derive(Debug)]
struct Case {
    text: String,
    valid: bool,
    bad_lines: Vec<usize>,
}

fn render(choices: &[Option<(usize, bool)>], duplicate: bool, data: &Path, missing: &Path) -> Case {
    // Line n of the file is lines[n - 1].
    let mut lines: Vec<String> = Vec::new();
    let mut valid = true;
    let mut bad_lines = Vec::new();
    let mut section: Option<&str> = None;
    let mut header = 0;
    for ((sec, key, variants), choice) in KEYS.iter().zip(choices) {
        // A valid variant, or (when `bad`) an invalid one.
        let Some((i, bad)) = choice else { continue };
        let pool: Vec<&Variant> = variants.iter().filter(|(_, ok)| *ok != *bad).collect();
        let Some(&&(value, ok)) = pool.get(i % pool.len().max(1)) else {
            continue;
        };
        if section != Some(*sec) {
            lines.push(String::new());
            lines.push(format!("[{sec}]"));
            header = lines.len();
            section = Some(sec);
        }
        let value = value
            .replace("{data}", &data.display().to_string())
            .replace("{missing}", &missing.display().to_string());
        let entry = if key.is_empty() {
            value
        } else {
            format!("{key} = {value}")
        };
        let first = lines.len() + 1;
        lines.extend(entry.lines().map(String::from));
        if !ok {
            valid = false;
            bad_lines.extend(first..=lines.len());
            // A whole-section entry may be refused at its header.
            if key.is_empty() || *sec == "bogus" {
                bad_lines.push(header);
            }
        }
    }
    if duplicate {
        // The same key twice in one table.
        lines.push(String::new());
        lines.push("[vm]".into());
        let first = lines.len() + 1;
        lines.push("kernel = \"/boot/a\"".into());
        lines.push("kernel = \"/boot/b\"".into());
        valid = false;
        bad_lines.extend(first..=lines.len());
    }
    let mut text = lines.join("\n");
    text.push('\n');
    Case {
        text,
        valid,
        bad_lines,
    }
}

/// A scratch root with `$HOME` and a workspace below it: (guard, root, home, workspace).
fn machine() -> (tempfile::TempDir, PathBuf, PathBuf, PathBuf) {
    let d = tempfile::tempdir().expect("tempdir");
    let root = d.path().canonicalize().expect("canonical");
    let home = root.join("home");
    let ws = home.join("src/app");
    std::fs::create_dir_all(&ws).expect("mkdir");
    (d, root, home, ws)
}

#[test]
fn policy_check_refuses_exactly_what_run_refuses() {
    let (_d, root, home, ws) = machine();
    let data = root.join("data");
    for p in [&ws, &data, &home.join("other")] {
        std::fs::create_dir_all(p).expect("mkdir");
    }
    let missing = root.join("missing");
    let file = root.join("policy.toml");
    let locations = Locations {
        managed: root.join("none/managed.toml"),
        user: root.join("none/user.toml"),
        project: ws.join(crate::PROJECT_POLICY),
    };
    let strategy = (
        proptest::collection::vec(
            proptest::option::weighted(0.4, (0..16usize, proptest::bool::weighted(0.06))),
            KEYS.len(),
        ),
        proptest::bool::weighted(0.03),
    );
    let mut runner = TestRunner::new(Config {
        cases: 256,
        failure_persistence: None,
        ..Config::default()
    });
    let (accepted, refused) = (std::cell::Cell::new(0), std::cell::Cell::new(0));
    runner
        .run(&strategy, |(choices, duplicate)| {
            let case = render(&choices, duplicate, &data, &missing);
            std::fs::write(&file, &case.text).expect("write");
            // What `cordon policy check FILE` does.
            let check = check_file(&file, &home, &ws).map(|_| ());
            // What `cordon run -p FILE` does (no other tier present).
            let run = load_inputs(
                &home,
                &ws,
                &locations,
                std::slice::from_ref(&file),
                CliLayer::default(),
                None,
            )
            .and_then(|inputs| compile(&inputs))
            .map(|_| ());
            prop_assert_eq!(&check, &run, "{}", case.text);
            match (&check, case.valid) {
                (Ok(()), true) => accepted.set(accepted.get() + 1),
                (Err(e), false) => {
                    refused.set(refused.get() + 1);
                    prop_assert_eq!(
                        e.file.as_deref(),
                        Some(file.as_path()),
                        "{}\n{}",
                        e,
                        case.text
                    );
                    let at = e.line.unwrap_or(0);
                    prop_assert!(
                        case.bad_lines.contains(&at),
                        "{e}: line {at} is not a bad entry's ({:?})\n{}",
                        case.bad_lines,
                        case.text
                    );
                    prop_assert!(e.col.is_some(), "{e}: no column");
                }
                (Ok(()), false) => {
                    return Err(TestCaseError::fail(format!(
                        "a bad entry was accepted\n{}",
                        case.text
                    )))
                }
                (Err(e), true) => {
                    return Err(TestCaseError::fail(format!(
                        "a good file was refused: {e}\n{}",
                        case.text
                    )))
                }
            }
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{e}"));
    // Both kinds were really tried.
    let (accepted, refused) = (accepted.get(), refused.get());
    eprintln!("{accepted} accepted, {refused} refused");
    assert!(
        accepted > 10 && refused > 10,
        "{accepted} accepted, {refused} refused"
    );
}

#[test]
fn a_missing_allow_write_path_is_refused_at_its_entry() {
    let (_d, root, home, ws) = machine();
    let file = root.join("p.toml");
    let text = format!(
        "[filesystem]\nallow_write = [\"{}\"]\n",
        root.join("nope").display()
    );
    std::fs::write(&file, text).expect("write");
    let e = check_file(&file, &home, &ws).expect_err("refused");
    assert_eq!((e.line, e.col), (Some(2), Some(16)), "{e}");
    assert!(e.to_string().contains("allow_write"), "{e}");
}
