//! `--isolation landlock`: the explicit weaker mode (no namespaces). Each attack checks the
//! host afterwards; each has a legitimate twin.

use crate::common;

use common::*;
use std::time::Duration;

const LITE: &[&str] = &["--isolation", "landlock"];

#[test]
fn says_what_it_lacks() {
    let sb = Sandbox::new("lite-warn");
    let out = sb.sh_opts(LITE, "true");
    assert_eq!(out.code, 0, "{}", out.show());
    assert!(
        out.stderr.contains("weaker") && out.stderr.contains("no network"),
        "the weaker mode must say what it lacks on stderr\n{}",
        out.show()
    );
}

#[test]
fn workspace_and_tmpdir_writable_twin() {
    let sb = Sandbox::new("lite-ws");
    let out = sb.sh_opts(
        LITE,
        "echo data > made.txt && echo t > \"$TMPDIR/t\" && echo TMP=$TMPDIR",
    );
    assert_eq!(
        out.code,
        0,
        "workspace and TMPDIR must be writable\n{}",
        out.show()
    );
    assert_eq!(
        std::fs::read_to_string(sb.ws.join("made.txt"))
            .ok()
            .as_deref(),
        Some("data\n"),
        "{}",
        out.show()
    );
    let tmp = out
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("TMP="))
        .unwrap_or("")
        .to_string();
    assert!(!tmp.is_empty(), "TMPDIR must be set\n{}", out.show());
    assert_absent(std::path::Path::new(&tmp), &out);
}

#[test]
fn home_and_system_not_writable() {
    let sb = Sandbox::new("lite-home");
    let before = sb.home_snapshot();
    let out = sb.sh_opts(
        LITE,
        "echo x > ~/evil; echo x >> ~/.bashrc; echo x > /etc/evil; mkdir ~/.config/evil; true",
    );
    let after = sb.home_snapshot();
    assert_unchanged("home", &before, &after, &out);
    assert_absent(&sb.home.join("evil"), &out);
}

#[test]
fn secrets_unreadable_but_neighbours_readable() {
    let sb = Sandbox::new("lite-secrets");
    sb.write_host(&sb.home.join("notes.txt"), "ordinary-note-5521\n");
    let out = sb.sh_opts(
        LITE,
        "cat ~/.ssh/id_rsa; cat ~/.aws/credentials; cat ~/notes.txt",
    );
    assert!(
        !out.stdout.contains(SSH_MARKER),
        "ssh key readable\n{}",
        out.show()
    );
    assert!(
        !out.stdout.contains(AWS_MARKER),
        "aws credentials readable\n{}",
        out.show()
    );
    assert!(
        out.stdout.contains("ordinary-note-5521"),
        "ordinary home files must stay readable\n{}",
        out.show()
    );
}

#[test]
fn protected_paths_refused() {
    let sb = Sandbox::new("lite-protect");
    let out = sb.sh_opts(
        LITE,
        "echo evil > .envrc; mkdir -p .vscode; echo x > CLAUDE.md; true",
    );
    for p in [".envrc", ".vscode", "CLAUDE.md"] {
        assert_absent(&sb.ws.join(p), &out);
    }
}

#[test]
fn no_network_at_all() {
    let sb = Sandbox::new("lite-net");
    let out = sb.sh_opts(
        LITE,
        "python3 -c \"import socket\ntry:\n  socket.socket(); print('INET-OK')\nexcept OSError as e: print('INET-REFUSED', e.errno)\"",
    );
    assert!(
        out.stdout.contains("INET-REFUSED"),
        "no inet sockets in the landlock mode\n{}",
        out.show()
    );
    let refused = sb.run_opts(
        &["--isolation", "landlock", "--allow-domain", "example.com"],
        &["true"],
    );
    assert_eq!(
        refused.code,
        125,
        "network flags need the default isolation\n{}",
        refused.show()
    );
}

#[test]
fn orphans_do_not_outlive_the_command() {
    let sb = Sandbox::new("lite-orphans");
    let tag = format!("{}", 40000 + (std::process::id() % 20000));
    let out = sb.sh_opts(
        LITE,
        &format!("setsid sleep {tag} & nohup sleep {tag} >/dev/null 2>&1 & exit 0"),
    );
    assert_eq!(out.code, 0, "{}", out.show());
    let gone = wait_for(Duration::from_secs(3), || {
        host_pids_with_cmdline(&format!("sleep {tag}")).is_empty()
    });
    let left = host_pids_with_cmdline(&format!("sleep {tag}"));
    kill_pids(&left);
    assert!(
        gone,
        "processes started by the command outlived it: {left:?}\n{}",
        out.show()
    );
}
