//! The command-line contract: help, policy show/check, doctor, audit log, error exits.
use crate::common;

use std::path::Path;

use common::*;

#[test]
fn help_everywhere() {
    let sb = Sandbox::new("help");
    let cases: &[(&[&str], &[&str])] = &[
        (&["--help"], &["run", "policy", "doctor"]),
        (
            &["run", "--help"],
            &[
                "--workspace",
                "--policy",
                "--allow-write",
                "--allow-read",
                "--deny-read",
                "--env",
                "--audit",
            ],
        ),
        (&["policy", "--help"], &["show", "check"]),
        (&["policy", "show", "--help"], &[]),
        (&["policy", "check", "--help"], &[]),
        (&["doctor", "--help"], &[]),
    ];
    for (args, words) in cases {
        let out = sb.cordon(args);
        assert_eq!(
            out.code,
            0,
            "`cordon {}` must exit 0\n{}",
            args.join(" "),
            out.show()
        );
        assert!(
            out.stdout.contains("Usage"),
            "`cordon {}` must print usage\n{}",
            args.join(" "),
            out.show()
        );
        for w in *words {
            assert!(
                out.stdout.contains(w),
                "`cordon {}` must mention {w}\n{}",
                args.join(" "),
                out.show()
            );
        }
    }
}

#[test]
fn policy_check_reports_unknown_key_with_location() {
    let sb = Sandbox::new("policy-check");
    let bad = sb.ws.join("bad.toml");
    sb.write_host(
        &bad,
        "[filesystem]\nallow_write = []\nallow_wirte = [\"x\"]\n",
    );
    let out = sb.cordon(&["policy", "check", &bad.display().to_string()]);
    assert_ne!(
        out.code,
        0,
        "an unknown key must be rejected\n{}",
        out.show()
    );
    let all = out.all();
    let has_location = all.lines().any(|l| {
        l.split("bad.toml:").nth(1).is_some_and(|rest| {
            let mut it = rest.split(':');
            it.next() == Some("3")
                && it
                    .next()
                    .is_some_and(|c| c.trim_start().starts_with(|ch: char| ch.is_ascii_digit()))
        })
    });
    assert!(
        has_location,
        "the error must name bad.toml:3:<col>\n{}",
        out.show()
    );
    assert!(
        all.contains("allow_wirte"),
        "the error must name the unknown key\n{}",
        out.show()
    );
}

/// `policy check` and `run` read network rules with one parser: every pattern `run` refuses,
/// `check` refuses too, at its line and column; and the accepted twin runs.
#[test]
fn policy_check_refuses_what_run_refuses() {
    let sb = Sandbox::new("policy-check-net");
    for (i, (key, value)) in [
        ("allow", "foo*.com"),
        ("allow", "127.1"),
        ("deny", "a.*.example"),
        ("allow", "x.example:0"),
        ("allow_cidrs", "10.0.0.0/33"),
    ]
    .iter()
    .enumerate()
    {
        let f = sb.ws.join(format!("net{i}.toml"));
        sb.write_host(&f, &format!("[network]\n{key} = [{value:?}]\n"));
        let path = f.display().to_string();
        let check = sb.cordon(&["policy", "check", &path]);
        assert_ne!(
            check.code,
            0,
            "policy check accepted {key} = {value}\n{}",
            check.show()
        );
        assert!(
            check.all().contains(&format!("net{i}.toml:2:")),
            "the error must name file:line:col\n{}",
            check.show()
        );
        let run = sb.run_opts(&["-p", &path], &["true"]);
        assert_eq!(run.code, 125, "run must refuse it too\n{}", run.show());
    }
    let good = sb.ws.join("net-ok.toml");
    sb.write_host(
        &good,
        "[network]\nallow = [\"*.example.com:8443\"]\nallow_cidrs = [\"[fd00::]/8:443\"]\n",
    );
    let path = good.display().to_string();
    assert_eq!(sb.cordon(&["policy", "check", &path]).code, 0);
    let run = sb.sh_opts(&["-p", &path], "true");
    assert_eq!(run.code, 0, "{}", run.show());
    let flag = sb.run_opts(&["--allow-domain", "foo*.com"], &["true"]);
    assert_eq!(flag.code, 125, "{}", flag.show());
    assert!(
        flag.all()
            .contains("--allow-domain foo*.com: bad domain pattern"),
        "{}",
        flag.show()
    );
}

#[test]
fn policy_check_accepts_valid_file_twin() {
    let sb = Sandbox::new("policy-ok");
    let good = sb.ws.join("good.toml");
    sb.write_host(
        &good,
        "[filesystem]\nallow_write = []\nallow_read = []\ndeny_read = [\"~/private\"]\nprotect = []\n\n[env]\npass = [\"EDITOR\"]\nset = { FOO = \"bar\" }\n",
    );
    let out = sb.cordon(&["policy", "check", &good.display().to_string()]);
    assert_eq!(
        out.code,
        0,
        "a valid policy must pass `policy check`\n{}",
        out.show()
    );
}

#[test]
fn policy_show_lists_builtin_rules_with_tier() {
    let sb = Sandbox::new("policy-show");
    sb.write_host(
        &sb.home.join(".config/cordon/policy.toml"),
        "[filesystem]\ndeny_read = [\"~/cordon-it-user-rule\"]\n",
    );
    let out = sb.cordon(&["policy", "show"]);
    assert_eq!(out.code, 0, "`policy show` must exit 0\n{}", out.show());
    let s = out.stdout.to_lowercase();
    for w in [".git/hooks", ".ssh", "claude.md", ".envrc"] {
        assert!(
            s.contains(w),
            "`policy show` must list the builtin rule for {w}\n{}",
            out.show()
        );
    }
    assert!(
        s.contains("builtin"),
        "builtin rules must be labelled with their tier\n{}",
        out.show()
    );
    assert!(
        s.contains("cordon-it-user-rule") && s.contains("user"),
        "a rule from the user policy must be listed with the user tier\n{}",
        out.show()
    );
}

#[test]
fn doctor_reports_each_layer() {
    let sb = Sandbox::new("doctor");
    let out = sb.cordon(&["doctor"]);
    assert_eq!(
        out.code,
        0,
        "`cordon doctor` must exit 0 on this machine\n{}",
        out.show()
    );
    let s = out.all().to_lowercase();
    for layer in ["namespace", "landlock", "seccomp", "mount", "cgroup"] {
        assert!(
            s.contains(layer),
            "`cordon doctor` must report on {layer}\n{}",
            out.show()
        );
    } // Its probe is not one of the person's runs: `cordon log` shows nothing of it.
    let log = sb.cordon(&["log"]);
    assert!(
        !log.all().contains("cordon-doctor"),
        "doctor's probe appeared in cordon log\n{}",
        log.show()
    );
}

#[test]
fn doctor_boots_no_guest_unless_verbose_and_explains_kvm() {
    let sb = Sandbox::new("doctor-kvm");
    let out = sb.cordon(&["doctor"]);
    assert_eq!(out.code, 0, "{}", out.show());
    assert!(
        !out.stdout.contains("VM tier: emulation") && !out.stdout.contains("VM inner wall"),
        "the slow guest boots belong behind --verbose\n{}",
        out.show()
    );
    if !Path::new("/dev/kvm").exists() || !sb.has_tool("qemu-system-x86_64") {
        note(
            "doctor_boots_no_guest_unless_verbose_and_explains_kvm",
            "no /dev/kvm or no QEMU here: the kvm-group hint is not checked",
        );
        return;
    }
    let kvm = out
        .stdout
        .lines()
        .find(|l| l.contains("VM tier: KVM"))
        .unwrap_or_default();
    let can_open = sb
        .host_sh("exec 3<>/dev/kvm && echo OPENED")
        .stdout
        .contains("OPENED");
    if can_open {
        assert!(!kvm.contains("Permission denied"), "{}", out.show());
        note(
            "doctor_boots_no_guest_unless_verbose_and_explains_kvm",
            "the test user may open /dev/kvm: the kvm-group hint is not checked",
        );
    } else {
        assert!(
            kvm.contains("Permission denied") && kvm.contains("usermod -aG"),
            "/dev/kvm: Permission denied must say how to join its group\n{}",
            out.show()
        );
    }
}

#[test]
fn policy_show_from_home_explains_instead_of_failing() {
    let sb = Sandbox::new("policy-home");
    let mut cmd = sb.cordon_command();
    cmd.current_dir(&sb.home).args(["policy", "show"]);
    let out = exec(cmd, RUN_TIMEOUT);
    assert_eq!(out.code, 0, "{}", out.show());
    assert!(
        out.stdout.contains("would exit 125") && out.stdout.contains("$HOME"),
        "the note says why `cordon run` would refuse here\n{}",
        out.show()
    );
    assert!(out.stdout.contains("network.unknown"), "{}", out.show());
    // `cordon run` there still refuses (the note is not a loosening).
    let mut run = sb.cordon_command();
    run.current_dir(&sb.home).args(["run", "--", "true"]);
    assert_eq!(exec(run, RUN_TIMEOUT).code, 125);
}

#[test]
fn policy_show_only_lists_what_a_profile_adds() {
    let sb = Sandbox::new("policy-only");
    let out = sb.cordon(&["policy", "show", "--profile", "npm", "--only"]);
    assert_eq!(out.code, 0, "{}", out.show());
    let rules: Vec<&str> = out.stdout.lines().filter(|l| !l.starts_with('#')).collect();
    assert!(
        rules
            .iter()
            .any(|l| l.starts_with("network.allow registry.npmjs.org")),
        "{}",
        out.show()
    );
    assert!(
        rules.iter().all(|l| l.contains("# builtin profile npm")),
        "only the profile's rules\n{}",
        out.show()
    );
    let full = sb.cordon(&["policy", "show", "--profile", "npm"]);
    assert!(
        full.stdout.lines().count() > rules.len() + 5,
        "{}",
        full.show()
    );
    let bad = sb.cordon(&["policy", "show", "--only"]);
    assert_ne!(
        bad.code,
        0,
        "--only without --profile is an error\n{}",
        bad.show()
    );
}

#[test]
fn policy_check_without_a_file_checks_every_tier() {
    let sb = Sandbox::new("policy-check-eff");
    let out = sb.cordon(&["policy", "check"]);
    assert_eq!(out.code, 0, "{}", out.show());
    assert!(
        out.stdout.contains("effective policy for"),
        "{}",
        out.show()
    );
    // A broken user policy is found without naming it.
    let user = sb.home.join(".config/cordon/policy.toml");
    sb.write_host(&user, "[network]\nallow = [\"a.test\"]\nbogus = 1\n");
    let out = sb.cordon(&["policy", "check"]);
    assert_eq!(out.code, 1, "{}", out.show());
    assert!(
        out.stderr.contains("policy.toml:3"),
        "the error names file:line\n{}",
        out.show()
    );
}

#[test]
fn cordon_log_prints_fix_lines_whole() {
    let sb = Sandbox::new("log-fix");
    let long = format!("{}/{}/notes.txt", sb.home.display(), "deep".repeat(80));
    let fix = format!("--allow-read {long}  or  [filesystem] allow_read = [\"{long}\"]");
    let event = serde_json::json!({"ts": 1.0, "event": "approval", "phase": "decision",
        "kind": "read", "target": long, "port": 0, "decision": "deny", "by": "no approver",
        "fix": fix});
    let file = sb.root.join("audit.jsonl");
    sb.write_host(&file, &format!("{event}\n"));
    let out = sb.cordon(&["log", "--file", &file.display().to_string()]);
    assert_eq!(out.code, 0, "{}", out.show());
    assert!(
        out.stdout.contains(&format!("to allow it: {fix}\n")),
        "the fix must be printed whole, ready to paste\n{}",
        out.show()
    );
}

fn json_has_number(v: &serde_json::Value, n: i64) -> bool {
    match v {
        serde_json::Value::Number(x) => x.as_i64() == Some(n),
        serde_json::Value::Array(a) => a.iter().any(|x| json_has_number(x, n)),
        serde_json::Value::Object(o) => o.values().any(|x| json_has_number(x, n)),
        _ => false,
    }
}

#[test]
fn audit_writes_json_lines_with_start_and_stop() {
    let sb = Sandbox::new("audit");
    let audit = sb.root.join("audit.jsonl");
    let out = sb.sh_opts(&["--audit", &audit.display().to_string()], "exit 7");
    assert_eq!(out.code, 7, "{}", out.show());
    let text = std::fs::read_to_string(&audit).unwrap_or_default();
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(
        lines.len() >= 2,
        "--audit must write at least start and stop events, got:\n{text}"
    );
    let mut values = Vec::new();
    for l in &lines {
        match serde_json::from_str::<serde_json::Value>(l) {
            Ok(v) => values.push(v),
            Err(e) => panic!("audit line is not JSON ({e}): {l}"),
        }
    }
    let start = values
        .iter()
        .any(|v| v.to_string().to_lowercase().contains("start"));
    assert!(start, "no start event in the audit log:\n{text}");
    let stop = values
        .iter()
        .find(|v| v.to_string().to_lowercase().contains("stop"));
    let stop = stop.unwrap_or_else(|| panic!("no stop event in the audit log:\n{text}"));
    assert!(
        json_has_number(stop, 7),
        "the stop event must carry the exit status 7:\n{text}"
    );
    // Appends, never truncates.
    let out2 = sb.run_opts(&["--audit", &audit.display().to_string()], &["true"]);
    assert_eq!(out2.code, 0, "{}", out2.show());
    let text2 = std::fs::read_to_string(&audit).unwrap_or_default();
    assert!(
        text2.starts_with(&text) && text2.len() > text.len(),
        "--audit must append:\n{text2}"
    );
}

/// A usage error is cordon's own failure: 125, the valid values named, the command not run;
/// and `--help` still exits 0.
#[test]
fn usage_errors_exit_125_and_name_the_choices() {
    let sb = Sandbox::new("usage-125");
    let marker = sb.ws.join("command-ran");
    let touch = format!("touch {}", marker.display());
    let out = sb.run_opts(&["--isolation", "bogus"], &["bash", "-c", &touch]);
    assert_eq!(out.code, 125, "{}", out.show());
    for v in ["namespaces", "vm", "landlock"] {
        assert!(
            out.stderr.contains(v),
            "the error must name {v}\n{}",
            out.show()
        );
    }
    assert_absent(&marker, &out);
    let help = sb.cordon(&["run", "--help"]);
    assert_eq!(help.code, 0, "{}", help.show());
    assert!(help.stdout.contains("--isolation"), "{}", help.show());
}

#[test]
fn malformed_policy_flag_exits_125_one_line() {
    let sb = Sandbox::new("bad-policy");
    let bad = sb.root.join("broken.toml");
    sb.write_host(&bad, "[filesystem\nallow_write = \n");
    let marker = sb.ws.join("command-ran");
    // Not `sh_opts`: the command must NOT run, so there is no "ran" marker to require.
    let out = sb.run_opts(
        &["-p", &bad.display().to_string()],
        &["bash", "-c", &format!("touch {}", marker.display())],
    );
    assert_eq!(
        out.code,
        125,
        "a malformed -p policy must give exit 125\n{}",
        out.show()
    );
    let lines: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| !l.trim().is_empty())
        .collect();
    assert_eq!(lines.len(), 1, "exactly one line on stderr\n{}", out.show());
    assert!(
        lines[0].contains("broken.toml"),
        "the error must name the file\n{}",
        out.show()
    );
    assert_absent(&marker, &out);
}

#[test]
fn valid_policy_flag_applies_twin() {
    let sb = Sandbox::new("good-policy");
    let pol = sb.root.join("extra.toml");
    sb.write_host(&pol, "[env]\nset = { CORDON_IT_FROM_POLICY = \"yes\" }\n");
    let out = sb.run_opts(&["-p", &pol.display().to_string()], &["env"]);
    assert_eq!(out.code, 0, "{}", out.show());
    assert!(
        out.stdout.lines().any(|l| l == "CORDON_IT_FROM_POLICY=yes"),
        "[env] set from a -p policy must apply\n{}",
        out.show()
    );
}

#[test]
fn run_leaves_nothing_outside_own_dirs() {
    let sb = Sandbox::new("no-trace");
    let before = sb.home_snapshot();
    let out = sb.sh("true");
    assert_eq!(out.code, 0, "{}", out.show());
    assert_unchanged(
        "home after `cordon run -- true`",
        &before,
        &sb.home_snapshot(),
        &out,
    );
}
