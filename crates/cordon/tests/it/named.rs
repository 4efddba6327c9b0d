//! Named sandboxes (`cordon run --name`), `cordon ls/rm/gc`, `cordon exec` and `cordon shell`.
//! The clock for the maximum age is `created` in the sandbox's meta.json, which the tests
//! rewrite (cordon honours no clock override).
use crate::common;

use common::*;
use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const DAY: u64 = 86400;

fn bin() -> &'static Path {
    cordon_bin()
}

fn cordon_command(sb: &Sandbox) -> Command {
    sb.user_command(bin())
}

/// `cordon ARGS...` with this build.
fn cordon(sb: &Sandbox, args: &[&str]) -> Out {
    let mut c = cordon_command(sb);
    c.args(args);
    exec(c, RUN_TIMEOUT)
}

/// `cordon run OPTS... -- ARGS...` with this build.
fn run_opts(sb: &Sandbox, opts: &[&str], args: &[&str]) -> Out {
    let mut c = cordon_command(sb);
    c.arg("run").args(opts).arg("--").args(args);
    exec(c, RUN_TIMEOUT)
}

/// `cordon run OPTS... -- bash -c SCRIPT`, asserting that the script ran.
fn sh_opts(sb: &Sandbox, opts: &[&str], script: &str) -> Out {
    assert_ran(run_opts(
        sb,
        opts,
        &["bash", "-c", &format!("echo {RAN}; {script}")],
    ))
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A fresh sandbox name for this test.
fn fresh_name() -> String {
    format!("t{}", unique())
}

fn state_dir(sb: &Sandbox, name: &str) -> PathBuf {
    sb.home.join(".local/state/cordon/sandboxes").join(name)
}

/// Stops and removes the named sandbox when the test ends, pass or fail.
struct Cleanup<'a>(&'a Sandbox, String);

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        let _ = cordon(self.0, &["rm", "--force", &self.1]);
    }
}

/// `cordon run --name NAME OPTS -- bash -c SCRIPT`, asserting the script ran.
fn named_sh(sb: &Sandbox, name: &str, opts: &[&str], script: &str) -> Out {
    let mut all = vec!["--name", name];
    all.extend_from_slice(opts);
    sh_opts(sb, &all, script)
}

/// Sets `created` in NAME's meta.json to `age` seconds ago.
fn age_state(sb: &Sandbox, name: &str, age: u64) {
    let p = state_dir(sb, name).join("meta.json");
    let text = fs::read_to_string(&p).expect("read meta.json");
    let mut v: serde_json::Value = serde_json::from_str(&text).expect("parse meta.json");
    v["created"] = serde_json::json!(now() - age);
    // Writing in place keeps the owner and mode.
    fs::write(&p, serde_json::to_vec(&v).expect("json")).expect("write meta.json");
}

/// Starts `cordon run --name NAME -- bash -c SCRIPT` in the background.
fn start_background(sb: &Sandbox, name: &str, opts: &[&str], script: &str) -> Child {
    let mut cmd = cordon_command(sb);
    cmd.args(["run", "--name", name])
        .args(opts)
        .args(["--", "bash", "-c", script])
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    cmd.spawn().expect("spawn background run")
}

/// Waits until `cordon exec NAME -- true` works (the sandbox is up).
fn wait_running(sb: &Sandbox, name: &str) {
    let ok = wait_for(Duration::from_secs(30), || {
        cordon(sb, &["exec", name, "--", "true"]).code == 0
    });
    assert!(
        ok,
        "sandbox {name} never became reachable through cordon exec"
    );
}

fn exec_sh(sb: &Sandbox, name: &str, script: &str) -> Out {
    let out = cordon(
        sb,
        &[
            "exec",
            name,
            "--",
            "bash",
            "-c",
            &format!("echo {RAN}; {script}"),
        ],
    );
    assert_ran(out)
}

#[test]
fn state_is_kept_across_runs_but_tmp_is_not() {
    let sb = Sandbox::new("named-keep");
    let name = fresh_name();
    let _c = Cleanup(&sb, name.clone());
    let out = named_sh(
        &sb,
        &name,
        &[],
        "echo home-kept > ~/kept.txt && echo vartmp-kept > /var/tmp/kept.txt && echo gone > /tmp/gone.txt && mkdir -p ~/.cache/tool && echo c > ~/.cache/tool/c && echo done",
    );
    assert_eq!(out.code, 0, "{}", out.show());
    assert!(out.stdout.contains("done"), "{}", out.show());
    // Nothing reached the host's home.
    assert_absent(&sb.home.join("kept.txt"), &out);

    let out = named_sh(
        &sb,
        &name,
        &[],
        "cat ~/kept.txt /var/tmp/kept.txt ~/.cache/tool/c; test -e /tmp/gone.txt && echo TMP-SURVIVED; echo end",
    );
    assert_eq!(out.code, 0, "{}", out.show());
    assert!(out.stdout.contains("home-kept"), "{}", out.show());
    assert!(out.stdout.contains("vartmp-kept"), "{}", out.show());
    assert!(!out.stdout.contains("TMP-SURVIVED"), "{}", out.show());
    assert_absent(&sb.home.join("kept.txt"), &out);

    // An ordinary run does not see the named sandbox's state.
    let out = sh_opts(
        &sb,
        &[],
        "test -e ~/kept.txt && echo LEAKED; test -e /var/tmp/kept.txt && echo LEAKED; echo end",
    );
    assert!(!out.stdout.contains("LEAKED"), "{}", out.show());

    let ls = cordon(&sb, &["ls", "--json"]);
    assert_eq!(ls.code, 0, "{}", ls.show());
    let v: serde_json::Value = serde_json::from_str(&ls.stdout).expect("ls --json");
    let me = v
        .as_array()
        .and_then(|a| a.iter().find(|e| e["name"] == name.as_str()))
        .unwrap_or_else(|| panic!("{name} missing from ls: {}", ls.show()));
    assert_eq!(me["workspace"], sb.ws.display().to_string());
    assert_eq!(me["running"], false);
    assert!(me["size_bytes"].as_u64().unwrap_or(0) > 0, "{}", ls.show());
    let table = cordon(&sb, &["ls"]);
    assert!(
        table.stdout.contains(&name) && table.stdout.contains("stopped"),
        "{}",
        table.show()
    );
}

#[test]
fn expired_state_is_wiped_with_a_message() {
    let sb = Sandbox::new("named-expire");
    let name = fresh_name();
    let _c = Cleanup(&sb, name.clone());
    let out = named_sh(
        &sb,
        &name,
        &[],
        "echo old > ~/old.txt && echo old > /var/tmp/old.txt",
    );
    assert_eq!(out.code, 0, "{}", out.show());

    // Younger than the default 7 days: kept, no message.
    age_state(&sb, &name, 6 * DAY);
    let out = named_sh(&sb, &name, &[], "cat ~/old.txt");
    assert!(out.stdout.contains("old"), "{}", out.show());
    assert!(!out.stderr.contains("maximum age"), "{}", out.show());

    // Older: clean state, one line saying so.
    age_state(&sb, &name, 8 * DAY);
    let out = named_sh(
        &sb,
        &name,
        &[],
        "test -e ~/old.txt && echo HOME-SURVIVED; test -e /var/tmp/old.txt && echo VARTMP-SURVIVED; echo end",
    );
    assert_eq!(out.code, 0, "{}", out.show());
    assert!(!out.stdout.contains("SURVIVED"), "{}", out.show());
    assert!(
        out.stderr.contains("older than its maximum age"),
        "{}",
        out.show()
    );

    // The age restarts from the wipe: the next run keeps its state again.
    let out = named_sh(&sb, &name, &[], "echo new > ~/new.txt");
    assert_eq!(out.code, 0, "{}", out.show());
    let out = named_sh(&sb, &name, &[], "cat ~/new.txt");
    assert!(out.stdout.contains("new"), "{}", out.show());
    assert!(!out.stderr.contains("maximum age"), "{}", out.show());

    // Policy lowers the maximum age.
    let pol = sb.root.join("short.toml");
    sb.write_host(&pol, "[lifecycle]\nmax_age = \"1h\"\n");
    let pol = pol.display().to_string();
    age_state(&sb, &name, 30 * 60);
    let out = named_sh(&sb, &name, &["-p", &pol], "cat ~/new.txt");
    assert!(out.stdout.contains("new"), "{}", out.show());
    age_state(&sb, &name, 2 * 3600);
    let out = named_sh(
        &sb,
        &name,
        &["-p", &pol],
        "test -e ~/new.txt && echo SURVIVED; echo end",
    );
    assert!(!out.stdout.contains("SURVIVED"), "{}", out.show());
    assert!(out.stderr.contains("maximum age (1h"), "{}", out.show());
}

#[test]
fn max_age_policy_values_are_validated() {
    let sb = Sandbox::new("named-maxage");
    for (text, ok) in [
        ("max_age = \"36h\"", true),
        ("max_age = 5400", true),
        ("max_age = \"90m\"", true),
        ("max_age = \"7w\"", false),
        ("max_age = 0", false),
    ] {
        let pol = sb.root.join("p.toml");
        sb.write_host(&pol, &format!("[lifecycle]\n{text}\n"));
        let out = cordon(&sb, &["policy", "check", &pol.display().to_string()]);
        assert_eq!(out.code == 0, ok, "{text}: {}", out.show());
        if !ok {
            assert!(
                out.stderr.contains("lifecycle.max_age"),
                "{text}: {}",
                out.show()
            );
        }
    }
}

/// A layer full of traps: symlinks to host files and directories, directories the sandbox
/// made unreadable, a whiteout over a host file, a FIFO.
const TRAPS: &str = "ln -s \"$HOSTFILE\" ~/link-to-host && ln -s \"$(dirname \"$HOSTFILE\")\" ~/link-to-dir \
    && ln -s \"$HOSTFILE\" /var/tmp/link-to-host \
    && mkdir -p ~/locked/inner /var/tmp/locked && echo x > ~/locked/inner/f && echo x > /var/tmp/locked/f \
    && chmod 000 ~/locked/inner ~/locked /var/tmp/locked && rm -f ~/notes/other.txt && mkfifo ~/fifo && echo planted";

#[test]
fn rm_and_gc_leave_nothing_and_never_follow_planted_links() {
    let sb = Sandbox::new("named-rm");
    let host_dir = sb.root.join("hostdir");
    let host_file = host_dir.join("precious.txt");
    sb.write_host(&host_file, "precious\n");
    let before = host_snapshot(&sb.root.join("hostdir"));

    let a = fresh_name();
    let b = fresh_name();
    let c = fresh_name();
    let _ca = Cleanup(&sb, a.clone());
    let _cb = Cleanup(&sb, b.clone());
    let _cc = Cleanup(&sb, c.clone());
    for n in [&a, &b, &c] {
        let out = named_sh(
            &sb,
            n,
            &["--env", &format!("HOSTFILE={}", host_file.display())],
            TRAPS,
        );
        assert!(out.stdout.contains("planted"), "{}", out.show());
        assert!(
            state_dir(&sb, n)
                .join("layer/home-up/link-to-host")
                .exists()
                || exists_nofollow(&state_dir(&sb, n).join("layer/home-up/link-to-host"))
        );
    }

    let out = cordon(&sb, &["rm", &a]);
    assert_eq!(out.code, 0, "{}", out.show());
    assert_absent(&state_dir(&sb, &a), &out);

    // gc: only the expired one; --all: the rest.
    age_state(&sb, &b, 8 * DAY);
    let out = cordon(&sb, &["gc"]);
    assert_eq!(out.code, 0, "{}", out.show());
    assert_absent(&state_dir(&sb, &b), &out);
    assert!(
        exists_nofollow(&state_dir(&sb, &c)),
        "gc removed a fresh sandbox\n{}",
        out.show()
    );
    let out = cordon(&sb, &["gc", "--all"]);
    assert_eq!(out.code, 0, "{}", out.show());
    assert_absent(&state_dir(&sb, &c), &out);

    // Nothing of them is left, and the host files the links pointed at are intact.
    let left: Vec<_> = fs::read_dir(sb.home.join(".local/state/cordon/sandboxes"))
        .map(|rd| rd.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "left behind: {left:?}");
    assert_unchanged("planted links", &before, &host_snapshot(&host_dir), &out);
    assert_eq!(
        fs::read_to_string(&host_file).ok().as_deref(),
        Some("precious\n")
    );
    assert!(
        sb.home.join("notes/other.txt").exists(),
        "the whiteout reached the host"
    );

    let out = cordon(&sb, &["rm", "no-such-sandbox"]);
    assert_eq!(out.code, 125, "{}", out.show());
    let out = cordon(&sb, &["rm", "../escape"]);
    assert_eq!(out.code, 125, "{}", out.show());
}

#[test]
fn one_run_at_a_time_and_bound_to_its_workspace() {
    let sb = Sandbox::new("named-busy");
    let name = fresh_name();
    let _c = Cleanup(&sb, name.clone());
    let mut first = start_background(&sb, &name, &[], "sleep 120");
    wait_running(&sb, &name);

    let out = run_opts(&sb, &["--name", &name], &["true"]);
    assert_eq!(out.code, 125, "{}", out.show());
    assert!(
        out.stderr.contains("is running") && out.stderr.contains("cordon exec"),
        "{}",
        out.show()
    );

    let ls = cordon(&sb, &["ls"]);
    assert!(ls.stdout.contains("running"), "{}", ls.show());

    // rm refuses a running sandbox; --force stops it.
    let out = cordon(&sb, &["rm", &name]);
    assert_eq!(out.code, 125, "{}", out.show());
    assert!(exists_nofollow(&state_dir(&sb, &name)));
    let out = cordon(&sb, &["rm", "--force", &name]);
    assert_eq!(out.code, 0, "{}", out.show());
    assert!(
        wait_timeout(&mut first, Duration::from_secs(20)).is_some(),
        "rm --force did not stop the run"
    );
    assert_absent(&state_dir(&sb, &name), &out);
    assert!(host_pids_with_cmdline(&format!("--name {name}")).is_empty());

    // Bound to its workspace.
    let out = named_sh(&sb, &name, &[], "true");
    assert_eq!(out.code, 0, "{}", out.show());
    let other = sb.home.join("other-ws");
    fs::create_dir_all(&other).expect("mkdir");
    chown_tree(&other);
    let out = run_opts(
        &sb,
        &["--name", &name, "-w", &other.display().to_string()],
        &["true"],
    );
    assert_eq!(out.code, 125, "{}", out.show());
    assert!(
        out.stderr.contains("belongs to the workspace"),
        "{}",
        out.show()
    );

    for bad in [".hidden", "a/b", &"x".repeat(65)] {
        let out = run_opts(&sb, &["--name", bad], &["true"]);
        assert_eq!(out.code, 125, "{bad}: {}", out.show());
        assert!(
            out.stderr.contains("invalid sandbox name"),
            "{}",
            out.show()
        );
    }
}

#[test]
fn state_is_invisible_and_untouchable_from_inside() {
    let sb = Sandbox::new("named-hidden");
    let a = fresh_name();
    let b = fresh_name();
    let _ca = Cleanup(&sb, a.clone());
    let _cb = Cleanup(&sb, b.clone());
    assert_eq!(named_sh(&sb, &a, &[], "echo secret-of-a > ~/a.txt").code, 0);
    let meta = state_dir(&sb, &a).join("meta.json");
    // A run of `a` itself legitimately updates `last_used`; everything else must stay.
    let read_meta = || {
        let mut v: serde_json::Value =
            serde_json::from_slice(&fs::read(&meta).expect("meta")).expect("meta.json");
        if let Some(o) = v.as_object_mut() {
            o.remove("last_used");
        }
        v
    };
    let meta_before = read_meta();
    let state = sb.home.join(".local/state/cordon/sandboxes");
    let script = format!(
        "ls -A {s}; cat {s}/{a}/layer/home-up/a.txt; cat {s}/{a}/meta.json; \
         echo evil > {s}/{a}/meta.json; echo evil > {s}/{a}/layer/home-up/planted; \
         rm -rf {s}/{a}; echo end",
        s = state.display()
    );
    // From a named sandbox (its own state and another's), and from an ordinary run.
    for out in [
        named_sh(&sb, &b, &[], &script),
        named_sh(&sb, &a, &[], &script),
        sh_opts(&sb, &[], &script),
    ] {
        assert!(!out.stdout.contains("secret-of-a"), "{}", out.show());
        assert!(
            !out.stdout.contains(&a),
            "state listed from inside\n{}",
            out.show()
        );
        assert!(
            !out.stdout.contains("workspace"),
            "meta readable from inside\n{}",
            out.show()
        );
        assert_eq!(read_meta(), meta_before, "meta changed\n{}", out.show());
        assert_absent(&state_dir(&sb, &a).join("layer/home-up/planted"), &out);
    }
    // And the state is still there and usable.
    let out = named_sh(&sb, &a, &[], "cat ~/a.txt");
    assert!(out.stdout.contains("secret-of-a"), "{}", out.show());
}

#[test]
fn exec_joins_the_running_sandbox_with_the_same_confinement() {
    let sb = Sandbox::new("named-exec");
    let name = fresh_name();
    let _c = Cleanup(&sb, name.clone());
    let host = TcpListener::bind("127.0.0.1:0").expect("bind host listener");
    let host_port = host.local_addr().expect("addr").port();
    let outside = sb.root.join("outside.txt");
    // The run: a file in its private /tmp, a recognisable process, a loopback server.
    let mut run = start_background(
        &sb,
        &name,
        &[],
        "echo written-by-run > /tmp/run-marker; python3 -m http.server 18234 --bind 127.0.0.1 >/dev/null 2>&1 & exec sleep 171",
    );
    wait_running(&sb, &name);

    let out = exec_sh(
        &sb,
        &name,
        &format!(
            "cat /tmp/run-marker; \
             for p in /proc/[0-9]*; do case \"$(tr '\\0' ' ' < $p/cmdline 2>/dev/null)\" in 'sleep 171 ') echo SEES-RUN-PROCESS;; esac; done; \
             for i in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/18234) 2>/dev/null && {{ echo LOOPBACK-SHARED; break; }}; sleep 0.1; done; \
             (exec 3<>/dev/tcp/127.0.0.1/{host_port}) 2>/dev/null && echo HOST-LOOPBACK-REACHED; \
             (exec 3<>/dev/tcp/192.0.2.1/80) 2>/dev/null && echo NET-REACHED; \
             echo x > {outside} 2>/dev/null && echo OUTSIDE-WRITTEN; \
             echo x > ~/.bashrc 2>/dev/null && echo BASHRC-WRITTEN; \
             echo x > .envrc 2>/dev/null && echo ENVRC-WRITTEN; \
             echo twin > exec-twin.txt && echo TWIN-OK; \
             grep -E '^(NoNewPrivs|Seccomp|CapEff)' /proc/self/status; pwd",
            outside = outside.display()
        ),
    );
    assert_eq!(out.code, 0, "{}", out.show());
    assert!(out.stdout.contains("written-by-run"), "{}", out.show());
    assert!(
        out.stdout.contains("SEES-RUN-PROCESS"),
        "the run's processes are not visible\n{}",
        out.show()
    );
    assert!(
        out.stdout.contains("LOOPBACK-SHARED"),
        "not in the run's network namespace\n{}",
        out.show()
    );
    for bad in [
        "HOST-LOOPBACK-REACHED",
        "NET-REACHED",
        "BASHRC-WRITTEN",
        "ENVRC-WRITTEN",
    ] {
        assert!(!out.stdout.contains(bad), "{bad}\n{}", out.show());
    }
    // Checked on the host: when the test root lies under /tmp (a checkout there), the write
    // lands in the sandbox's private /tmp and succeeds inside, as it should.
    assert_absent(&outside, &out);
    assert!(out.stdout.contains("TWIN-OK"), "{}", out.show());
    assert!(out.stdout.contains("NoNewPrivs:\t1"), "{}", out.show());
    assert!(out.stdout.contains("Seccomp:\t2"), "{}", out.show());
    assert!(
        out.stdout.contains("CapEff:\t0000000000000000"),
        "{}",
        out.show()
    );
    assert!(
        out.stdout.contains(&sb.ws.display().to_string()),
        "{}",
        out.show()
    );
    assert_absent(&outside, &out);
    assert_absent(&sb.ws.join(".envrc"), &out);
    assert_eq!(
        fs::read_to_string(sb.ws.join("exec-twin.txt"))
            .ok()
            .as_deref(),
        Some("twin\n")
    );
    drop(host);

    // Exit status passes through; a missing command is 127.
    assert_eq!(
        cordon(&sb, &["exec", &name, "--", "bash", "-c", "exit 7"]).code,
        7
    );
    assert_eq!(
        cordon(&sb, &["exec", &name, "--", "no-such-command-xyz"]).code,
        127
    );

    // Killing `cordon exec` kills its command.
    let mut cmd = cordon_command(&sb);
    cmd.args(["exec", &name, "--", "sleep", "172"])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut client = cmd.spawn().expect("spawn exec");
    assert!(wait_for(Duration::from_secs(20), || {
        !host_pids_with_cmdline("sleep 172").is_empty()
    }));
    let _ = client.kill();
    let _ = client.wait();
    assert!(
        wait_for(Duration::from_secs(10), || host_pids_with_cmdline(
            "sleep 172"
        )
        .is_empty()),
        "the exec'd command outlived cordon exec"
    );

    // The sandbox ending kills exec'd commands.
    let mut cmd = cordon_command(&sb);
    cmd.args(["exec", &name, "--", "sleep", "173"])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut client = cmd.spawn().expect("spawn exec");
    assert!(wait_for(Duration::from_secs(20), || {
        !host_pids_with_cmdline("sleep 173").is_empty()
    }));
    let out = cordon(&sb, &["rm", "--force", &name]);
    assert_eq!(out.code, 0, "{}", out.show());
    assert!(
        wait_timeout(&mut client, Duration::from_secs(20)).is_some(),
        "exec client still running"
    );
    assert!(
        wait_timeout(&mut run, Duration::from_secs(20)).is_some(),
        "run still running"
    );
    assert!(
        wait_for(Duration::from_secs(10), || host_pids_with_cmdline(
            "sleep 173"
        )
        .is_empty()
            && host_pids_with_cmdline("sleep 171").is_empty()),
        "processes outlived the sandbox"
    );

    // Not running: a clear error.
    let out = cordon(&sb, &["exec", &name, "--", "true"]);
    assert_eq!(out.code, 125, "{}", out.show());
    assert!(out.stderr.contains("not running"), "{}", out.show());
}

#[test]
fn shell_runs_each_call_in_one_sandbox_per_workspace() {
    let sb = Sandbox::new("named-shell");
    let ws_name = shell_name(&sb);
    let _c = Cleanup(&sb, ws_name.clone());
    let first = cordon(
        &sb,
        &[
            "shell",
            "-c",
            "echo hi; echo $$ > /tmp/first-pid; echo x > ~/kept",
        ],
    );
    assert_eq!(first.code, 0, "{}", first.show());
    assert_eq!(first.stdout, "hi\n", "{}", first.show());
    let second = cordon(
        &sb,
        &[
            "shell",
            "-c",
            "echo hi; cat /tmp/first-pid; cat ~/kept; exit 4",
        ],
    );
    assert_eq!(second.code, 4, "{}", second.show());
    assert!(second.stdout.starts_with("hi\n"), "{}", second.show());
    assert!(
        second.stdout.contains("x\n"),
        "not the same sandbox\n{}",
        second.show()
    );
    // Positional parameters as with `sh -c CMD NAME ARGS`.
    let third = cordon(&sb, &["shell", "-c", "echo \"$0:$1\"", "zero", "one"]);
    assert_eq!(third.stdout, "zero:one\n", "{}", third.show());
    // Confined like any sandbox.
    let out = cordon(
        &sb,
        &[
            "shell",
            "-c",
            "echo x > ~/.bashrc 2>/dev/null || echo DENIED",
        ],
    );
    assert!(out.stdout.contains("DENIED"), "{}", out.show());

    let ls = cordon(&sb, &["ls", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&ls.stdout).expect("ls --json");
    let names: Vec<&str> = v
        .as_array()
        .map(|a| a.iter().filter_map(|e| e["name"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(names, vec![ws_name.as_str()], "{}", ls.show());
    assert_eq!(v[0]["running"], true, "{}", ls.show());
}

/// The name `cordon shell` derives for the test's workspace (as `cordon ls` shows it).
fn shell_name(sb: &Sandbox) -> String {
    use sha2::{Digest, Sha256};
    let ws = sb.ws.canonicalize().expect("canonical ws");
    let d = Sha256::digest(ws.as_os_str().as_encoded_bytes());
    format!(
        "ws-{}",
        d.iter()
            .take(6)
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    )
}

#[test]
fn protected_paths_never_come_from_kept_state() {
    let sb = Sandbox::new("named-protect");
    let name = fresh_name();
    let _c = Cleanup(&sb, name.clone());
    // A first run, under rules that do not protect these paths, plants them in the layer:
    // a new config file, and a whiteout hiding the host's config.
    let out = named_sh(
        &sb,
        &name,
        &[],
        "mkdir -p ~/.mytool && echo planted > ~/.mytool/config && rm ~/.config/sometool/config && echo ok",
    );
    assert!(out.stdout.contains("ok"), "{}", out.show());
    // A later run protects them: it sees the host's versions, not the planted ones.
    let pol = sb.root.join("protect.toml");
    sb.write_host(
        &pol,
        "[filesystem]\nprotect = [\"~/.mytool/config\", \"~/.config/sometool/config\"]\n",
    );
    let out = named_sh(
        &sb,
        &name,
        &["-p", &pol.display().to_string()],
        "cat ~/.mytool/config 2>/dev/null || echo no-config; cat ~/.config/sometool/config",
    );
    assert!(!out.stdout.contains("planted"), "{}", out.show());
    assert!(out.stdout.contains("no-config"), "{}", out.show());
    assert!(out.stdout.contains("host tool config"), "{}", out.show());
    // Unprotected state is kept as before.
    let out = named_sh(&sb, &name, &[], "test -d ~/.mytool && echo dir-kept");
    assert!(out.stdout.contains("dir-kept"), "{}", out.show());
}

#[test]
fn a_kept_symlink_above_protected_paths_is_not_followed_next_run() {
    let sb = Sandbox::new("named-protect-ancestor");
    let name = fresh_name();
    let _c = Cleanup(&sb, name.clone());
    // Attack: ~/.config itself is not protected, only paths below it are; replacing it with
    // a link into the kept /var/tmp would make the next run read git config from there.
    let out = named_sh(
        &sb,
        &name,
        &[],
        "mkdir -p /var/tmp/c/git && printf '[core]\\n\\tfsmonitor = echo PLANTED\\n' > /var/tmp/c/git/config; \
         rm -rf ~/.config 2>/dev/null; ln -s /var/tmp/c ~/.config && echo linked",
    );
    assert!(out.stdout.contains("linked"), "{}", out.show());
    let out = named_sh(
        &sb,
        &name,
        &[],
        "cat ~/.config/git/config 2>/dev/null; cat ~/.config/sometool/config; test -L ~/.config || echo not-a-link",
    );
    assert!(!out.stdout.contains("PLANTED"), "{}", out.show());
    assert!(out.stdout.contains("not-a-link"), "{}", out.show());
    // Legitimate twin: the host's ~/.config is back, and the kept /var/tmp is untouched.
    assert!(out.stdout.contains("host tool config"), "{}", out.show());
    let out = named_sh(
        &sb,
        &name,
        &[],
        "test -f /var/tmp/c/git/config && echo vartmp-kept",
    );
    assert!(out.stdout.contains("vartmp-kept"), "{}", out.show());
    // The host's own ~/.config was never touched.
    assert!(sb.home.join(".config/sometool/config").is_file());
}

#[test]
fn a_locked_kept_directory_does_not_hide_protected_paths_from_the_scrub() {
    let sb = Sandbox::new("named-protect-locked");
    let name = fresh_name();
    let _c = Cleanup(&sb, name.clone());
    // Attack: a run under rules that do not protect ~/.mytool/config plants it, then makes
    // its directory unreadable so the host-side scrub of a later, stricter run cannot look in.
    let out = named_sh(
        &sb,
        &name,
        &[],
        "mkdir -p ~/.mytool/sub && echo planted > ~/.mytool/config && echo data > ~/.mytool/sub/keep && chmod 000 ~/.mytool && echo ok",
    );
    assert!(out.stdout.contains("ok"), "{}", out.show());
    let pol = sb.root.join("protect.toml");
    sb.write_host(&pol, "[filesystem]\nprotect = [\"~/.mytool/config\"]\n");
    let out = named_sh(
        &sb,
        &name,
        &["-p", &pol.display().to_string()],
        "chmod 700 ~/.mytool; cat ~/.mytool/config 2>/dev/null || echo no-config; cat ~/.mytool/sub/keep",
    );
    assert!(!out.stdout.contains("planted"), "{}", out.show());
    assert!(out.stdout.contains("no-config"), "{}", out.show());
    // Legitimate twin: the unprotected content of that directory is kept.
    assert!(out.stdout.contains("data"), "{}", out.show());
}

#[test]
fn a_kept_opaque_directory_does_not_hide_protected_host_config() {
    let sb = Sandbox::new("named-protect-opaque");
    let name = fresh_name();
    let _c = Cleanup(&sb, name.clone());
    // Attack: removing and recreating ~/.config leaves an opaque directory in the layer, which
    // hides every host file below it in later runs, including ones those runs protect.
    let out = named_sh(
        &sb,
        &name,
        &[],
        "rm -rf ~/.config && mkdir ~/.config && echo mine > ~/.config/own && echo ok",
    );
    assert!(out.stdout.contains("ok"), "{}", out.show());
    let pol = sb.root.join("protect.toml");
    sb.write_host(
        &pol,
        "[filesystem]\nprotect = [\"~/.config/sometool/config\"]\n",
    );
    let out = named_sh(
        &sb,
        &name,
        &["-p", &pol.display().to_string()],
        "cat ~/.config/sometool/config; cat ~/.config/own",
    );
    assert!(out.stdout.contains("host tool config"), "{}", out.show());
    // Legitimate twin: what the sandbox keeps there is still there.
    assert!(out.stdout.contains("mine"), "{}", out.show());
}

#[test]
fn cordon_shell_symlink_acts_as_a_shell() {
    let sb = Sandbox::new("named-shell-link");
    let name = shell_name(&sb);
    let _c = Cleanup(&sb, name);
    let link = sb.root.join("bin/cordon-shell");
    fs::create_dir_all(link.parent().expect("parent")).expect("mkdir");
    std::os::unix::fs::symlink(bin(), &link).expect("symlink");
    chown_tree(&sb.root);
    let mut cmd = sb.user_command(&link);
    cmd.args([
        "-c",
        "echo via-link; test -e /proc/1 && cat /proc/1/cmdline | tr '\\0' ' '",
    ]);
    let out = exec(cmd, RUN_TIMEOUT);
    assert_eq!(out.code, 0, "{}", out.show());
    assert!(out.stdout.starts_with("via-link\n"), "{}", out.show());
    assert!(
        out.stdout.contains("--idle-exit"),
        "not inside the background sandbox\n{}",
        out.show()
    );
}

const PEEK_EXEC: &str = r#"
import socket, os, sys, time
print("CORDON-IT-RAN", flush=True)
p = sys.argv[1]
for i in range(600):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    try:
        s.connect(p)
        break
    except OSError as e:
        last = e
        s.close()
        time.sleep(0.05)
else:
    print("NO-CONNECT", last)
    sys.exit(0)
s.settimeout(20)
# The best a sandboxed process can offer as proof: its own user namespace, or its parent's.
import array, fcntl
fd = os.open("/proc/self/ns/user", os.O_RDONLY)
try:
    fd = fcntl.ioctl(fd, 0xb702)  # NS_GET_PARENT
    print("PARENT-OPENED", flush=True)
except OSError as e:
    pass
s.sendmsg([b"H"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [fd]))])
msg, anc, flags, addr = s.recvmsg(300000, socket.CMSG_SPACE(64))
print("GOT", msg[:1], "FDS", len(anc), flush=True)
"#;

#[test]
fn a_sandboxed_process_cannot_use_an_exec_socket_even_when_reachable() {
    let sb = Sandbox::new("named-exec-peer");
    let name = fresh_name();
    let _c = Cleanup(&sb, name.clone());
    // Make the exec socket directory reachable from an attacker sandbox (a bad policy).
    let dir = PathBuf::from(format!("/tmp/cordon-{}/exec", sb.user.uid));
    sb.host_sh_ok(&format!(
        "mkdir -p {0} && chmod 700 {0} {0}/..",
        dir.display()
    ));
    let sock = dir.join(format!("{name}.sock"));
    let mut attacker = cordon_command(&sb);
    attacker
        .args([
            "run",
            "--allow-write",
            &dir.display().to_string(),
            "--",
            "python3",
            "-c",
            PEEK_EXEC,
        ])
        .arg(&sock)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let attacker = attacker.spawn().expect("spawn attacker");
    // The target starts after the attacker, so its socket is "new" to the attacker's guard.
    std::thread::sleep(Duration::from_millis(500));
    let mut target = start_background(&sb, &name, &[], "sleep 120");
    let out = attacker.wait_with_output().expect("attacker output");
    let out = Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    let out = assert_ran(out);
    assert!(
        (out.stdout.contains("GOT b'E' FDS 0") || out.stdout.contains("NO-CONNECT"))
            && !out.stdout.contains("PARENT-OPENED"),
        "a sandboxed process got the sandbox's descriptors\n{}",
        out.show()
    );
    // Twin: the person's own `cordon exec` works.
    wait_running(&sb, &name);
    assert_eq!(cordon(&sb, &["rm", "--force", &name]).code, 0);
    assert!(wait_timeout(&mut target, Duration::from_secs(20)).is_some());
}

#[test]
fn exec_on_a_terminal_gets_a_filtered_pty() {
    let sb = Sandbox::new("named-exec-pty");
    let name = fresh_name();
    let _c = Cleanup(&sb, name.clone());
    let mut run = start_background(&sb, &name, &[], "sleep 120");
    wait_running(&sb, &name);
    // python's pty.spawn gives `cordon exec` a terminal and copies what it shows to a pipe.
    let mut cmd = sb.user_command("python3");
    cmd.args([
        "-c",
        "import pty, sys; sys.exit(pty.spawn(sys.argv[1:]) >> 8)",
        &bin().display().to_string(),
        "exec",
        &name,
        "--",
        "bash",
        "-c",
        "echo CORDON-IT-RAN; tty; printf 'A\\033]52;c;SGVsbG8=\\007B\\n'; exit 5",
    ])
    .env("TERM", "xterm");
    let out = exec(cmd, RUN_TIMEOUT);
    assert!(out.stdout.contains(RAN), "{}", out.show());
    assert_eq!(out.code, 5, "{}", out.show());
    assert!(out.stdout.contains("/dev/pts/"), "no pty\n{}", out.show());
    assert!(out.stdout.contains("AB"), "{}", out.show());
    assert!(
        !out.stdout.contains("\x1b]52"),
        "clipboard write reached the terminal\n{}",
        out.show()
    );
    assert_eq!(cordon(&sb, &["rm", "--force", &name]).code, 0);
    assert!(wait_timeout(&mut run, Duration::from_secs(20)).is_some());
}
