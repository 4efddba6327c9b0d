//! Secrets (R3, R5): secret paths unreadable, environment scrubbed.
use crate::common;

use common::*;

#[test]
fn ssh_key_unreadable() {
    let sb = Sandbox::new("ssh");
    let out = sb.sh("cat ~/.ssh/id_rsa; ls -la ~/.ssh; grep -r . ~/.ssh; true");
    assert!(
        !out.all().contains(SSH_MARKER),
        "~/.ssh/id_rsa content leaked into the sandbox\n{}",
        out.show()
    );
    assert_eq!(
        read_opt(&sb.home.join(".ssh/id_rsa")).as_deref(),
        Some(SSH_KEY.as_bytes())
    );
}

#[test]
fn aws_credentials_unreadable() {
    let sb = Sandbox::new("aws");
    let out = sb.sh("cat ~/.aws/credentials; cat ~/.netrc; true");
    assert!(
        !out.all().contains(AWS_MARKER),
        "~/.aws/credentials leaked\n{}",
        out.show()
    );
    assert!(
        !out.all().contains("netrc-secret-42"),
        "~/.netrc leaked\n{}",
        out.show()
    );
}

#[test]
fn secret_via_symlink_or_proc_unreadable() {
    let sb = Sandbox::new("ssh-indirect");
    std::os::unix::fs::symlink(sb.home.join(".ssh"), sb.ws.join("keys")).expect("symlink");
    chown_tree(&sb.root);
    let script = format!(
        "cat keys/id_rsa; cat /proc/self/root{h}/.ssh/id_rsa; cp ~/.ssh/id_rsa copy; cat copy; \
         cd ~ && tar cf - .ssh .aws 2>/dev/null | strings; true",
        h = sb.home.display()
    );
    let out = sb.sh(&script);
    assert!(
        !out.all().contains(SSH_MARKER) && !out.all().contains(AWS_MARKER),
        "secrets readable through a symlink, /proc/self/root or a copy\n{}",
        out.show()
    );
}

#[test]
fn ordinary_home_file_readable_twin() {
    let sb = Sandbox::new("home-read");
    let out = sb.sh("cat ~/notes/other.txt ~/.config/sometool/config");
    assert_eq!(
        out.code,
        0,
        "ordinary home files must be readable\n{}",
        out.show()
    );
    assert!(
        out.stdout.contains("ordinary host note") && out.stdout.contains("host tool config"),
        "{}",
        out.show()
    );
}

#[test]
fn allow_read_reopens() {
    let sb = Sandbox::new("allow-read");
    let abs = sb.home.join(".ssh/id_rsa").display().to_string();
    let out2 = sb.run_opts(&["--allow-read", "~/.ssh/id_rsa"], &["cat", &abs]);
    assert!(
        out2.stdout.contains(SSH_MARKER),
        "--allow-read ~/.ssh/id_rsa must re-open the secret path\n{}",
        out2.show()
    );
    assert_eq!(out2.code, 0, "{}", out2.show());
}

#[test]
fn deny_read_hides_extra_file() {
    let sb = Sandbox::new("deny-read");
    sb.write_host(&sb.home.join("notes/private.txt"), "private-note-6612\n");
    let out = sb.sh_opts(
        &["--deny-read", "~/notes/private.txt"],
        "cat ~/notes/private.txt; cat ~/notes/other.txt",
    );
    assert!(
        !out.all().contains("private-note-6612"),
        "--deny-read must hide the file\n{}",
        out.show()
    );
    assert!(
        out.stdout.contains("ordinary host note"),
        "the neighbour of a --deny-read file must stay readable\n{}",
        out.show()
    );
}

const TOKEN: &str = "ghp_cordonit0123456789abcdef";
const AWS_KEY: &str = "cordonitAWSsecretKEY9876";

fn with_secret_env(c: &mut std::process::Command) {
    c.env("GITHUB_TOKEN", TOKEN)
        .env("AWS_SECRET_ACCESS_KEY", AWS_KEY)
        .env("OPENAI_API_KEY", "sk-cordonit-openai")
        .env("MY_PASSWORD", "cordonit-pw")
        .env("LANG", "C.UTF-8")
        .env("TERM", "xterm-256color");
}

#[test]
fn secret_env_not_visible() {
    let sb = Sandbox::new("env-scrub");
    let script = "echo CORDON-IT-RAN; env; echo ---; for f in /proc/[0-9]*/environ /proc/self/environ /proc/1/environ; do \
                  tr '\\0' '\\n' < $f 2>/dev/null; done; for f in /proc/[0-9]*/cmdline; do tr '\\0' ' ' < $f 2>/dev/null; echo; done";
    let out = assert_ran(sb.run_with(with_secret_env, &[], &["bash", "-c", script]));
    assert_eq!(out.code, 0, "{}", out.show());
    for secret in [TOKEN, AWS_KEY, "sk-cordonit-openai", "cordonit-pw"] {
        assert!(
            !out.all().contains(secret),
            "secret env value {secret} visible inside (env or /proc/*/environ)\n{}",
            out.show()
        );
    }
    for name in [
        "GITHUB_TOKEN",
        "AWS_SECRET_ACCESS_KEY",
        "OPENAI_API_KEY",
        "MY_PASSWORD",
    ] {
        assert!(
            !out.stdout.contains(&format!("{name}=")),
            "{name} passed into the sandbox\n{}",
            out.show()
        );
    }
}

#[test]
fn allowlisted_env_passes_twin() {
    let sb = Sandbox::new("env-allow");
    let out = sb.run_with(with_secret_env, &[], &["env"]);
    assert_eq!(out.code, 0, "{}", out.show());
    for kv in [
        "LANG=C.UTF-8",
        "TERM=xterm-256color",
        &format!("HOME={}", sb.home.display()),
    ] {
        assert!(
            out.stdout.lines().any(|l| l == kv),
            "allowlisted {kv} must pass\n{}",
            out.show()
        );
    }
    assert!(
        out.stdout.lines().any(|l| l.starts_with("PATH=")),
        "PATH must pass\n{}",
        out.show()
    );
}

#[test]
fn env_flag_sets_and_passes() {
    let sb = Sandbox::new("env-flag");
    let out = sb.run_with(
        |c| {
            c.env("MYVAR", "from-host-77").env("OTHER", "not-passed-88");
        },
        &["--env", "FOO=bar", "--env", "MYVAR"],
        &["env"],
    );
    assert_eq!(out.code, 0, "{}", out.show());
    assert!(
        out.stdout.lines().any(|l| l == "FOO=bar"),
        "--env FOO=bar must set FOO\n{}",
        out.show()
    );
    assert!(
        out.stdout.lines().any(|l| l == "MYVAR=from-host-77"),
        "--env MYVAR must pass it\n{}",
        out.show()
    );
    assert!(
        !out.stdout.contains("not-passed-88"),
        "a var not named must not pass\n{}",
        out.show()
    );
}

#[test]
fn explicit_env_can_pass_a_token_twin() {
    // The person can still pass a token on purpose.
    let sb = Sandbox::new("env-token-explicit");
    let out = sb.run_with(with_secret_env, &["--env", "GITHUB_TOKEN"], &["env"]);
    assert!(
        out.stdout
            .lines()
            .any(|l| l == format!("GITHUB_TOKEN={TOKEN}")),
        "--env GITHUB_TOKEN must pass the variable the person named\n{}",
        out.show()
    );
}
