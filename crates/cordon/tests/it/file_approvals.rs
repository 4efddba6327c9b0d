//! File approvals end to end (`[filesystem] ask_read` / `ask_write`): a real `cordon run`, the
//! test as the approver on the broker's socket, the host checked afterwards.

use crate::common;

use common::approver::*;
use common::*;

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;

use std::path::{Path, PathBuf};
use std::time::Duration;

fn bin() -> &'static Path {
    cordon_bin()
}

/// Shell prelude: wait (bounded) for the test to create `go` in the workspace.
const WAIT_GO: &str = "for i in $(seq 200); do [ -e go ] && break; sleep 0.05; done; ";

/// One test: a sandbox with a private runtime dir and a `-p` policy.
struct T {
    sb: Sandbox,
    runtime: PathBuf,
    policy: PathBuf,
}

impl T {
    fn new(name: &str, policy: &str) -> T {
        let sb = Sandbox::new(name);
        let runtime = sb.root.join("run");
        fs::create_dir_all(&runtime).expect("runtime dir");
        let path = sb.root.join("policy.toml");
        sb.write_host(&path, policy);
        fs::set_permissions(&runtime, fs::Permissions::from_mode(0o700)).expect("chmod");
        chown_tree(&sb.root);
        T {
            sb,
            runtime,
            policy: path,
        }
    }

    fn approvals_dir(&self) -> PathBuf {
        self.runtime.join("cordon/approvals")
    }

    fn spawn(&self, opts: &[&str], script: &str) -> Running {
        self.sb
            .write_host(&self.sb.ws.join("run.sh"), &format!("echo {RAN}; {script}"));
        run_script_in_background(&self.sb, &self.runtime, &self.policy, opts, &[])
    }

    fn go(&self) {
        self.sb.write_host(&self.sb.ws.join("go"), "");
    }

    fn log(&self, args: &[&str]) -> Out {
        let mut cmd = self.sb.user_command(bin());
        cmd.arg("log").args(args);
        exec(cmd, RUN_TIMEOUT)
    }
}

fn finish(run: Running) -> Out {
    assert_ran(run.finish())
}

const NOTES: &str = "real-notes-4a7c1e";

fn ask_read_policy(sb_home_rel: &str) -> String {
    format!("[filesystem]\nask_read = [\"~/{sb_home_rel}\"]\n")
}

#[test]
fn ask_read_allow_once_hands_in_the_real_file_and_the_next_open_asks_again() {
    let t = T::new("fa-read-once", &ask_read_policy("other"));
    t.sb.write_host(&t.sb.home.join("other/notes.txt"), &format!("{NOTES}\n"));
    let child = t.spawn(
        &[],
        &format!("{WAIT_GO}cat ~/other/notes.txt; echo \"first=$?\"; cat ~/other/notes.txt; echo \"second=$?\"; ls -a ~/other | tr '\\n' ' '; echo"),
    );
    let mut a = Approver::connect(&t.approvals_dir());
    t.go();
    let r1 = a.next_of("request");
    assert_eq!(r1["kind"], "read", "{r1}");
    let want = t.sb.home.join("other/notes.txt").display().to_string();
    assert_eq!(r1["target"]["path"], want.as_str(), "{r1}");
    assert!(
        r1["process"]["exe"]
            .as_str()
            .is_some_and(|e| e.ends_with("/cat")),
        "{r1}"
    );
    assert!(r1["process"]["pid"].as_i64().is_some(), "{r1}");
    assert!(
        r1["rule"].as_str().is_some_and(|r| r.contains("ask_read")),
        "{r1}"
    );
    a.decide(&r1["id"], "allow_once");
    assert_eq!(a.next_of("resolved")["decision"], "allow_once");
    let r2 = a.next_of("request");
    assert_ne!(r1["id"], r2["id"], "the second open asks again");
    assert_eq!(r2["target"]["path"], want.as_str());
    a.decide(&r2["id"], "deny");
    let out = finish(child);
    assert!(out.stdout.contains("first=0"), "{}", out.show());
    assert_eq!(out.stdout.matches(NOTES).count(), 1, "{}", out.show());
    assert!(out.stdout.contains("second=1"), "{}", out.show());
    assert!(
        out.stderr.contains("Permission denied"),
        "EACCES on deny\n{}",
        out.show()
    );
    // The directory itself shows its stand-in (empty), not the host's listing.
    assert!(!out.stdout.contains("notes.txt "), "{}", out.show());
    assert_eq!(
        fs::read_to_string(t.sb.home.join("other/notes.txt")).ok(),
        Some(format!("{NOTES}\n")),
        "host file unchanged"
    );
    assert!(
        out.stderr.contains("1 denied (1 file read)"),
        "{}",
        out.show()
    );
}

#[test]
fn ask_read_without_an_approver_is_denied_logged_and_summarised() {
    let t = T::new("fa-read-absent", &ask_read_policy("other"));
    t.sb.write_host(&t.sb.home.join("other/notes.txt"), &format!("{NOTES}\n"));
    let child = t.spawn(&[], "cat ~/other/notes.txt; echo \"rc=$?\"; cat /usr/share/dict/words >/dev/null 2>&1; cat run.sh >/dev/null && echo ws-ok");
    let out = finish(child);
    assert!(!out.stdout.contains(NOTES), "{}", out.show());
    assert!(out.stdout.contains("rc=1"), "{}", out.show());
    assert!(out.stdout.contains("ws-ok"), "{}", out.show());
    assert!(
        out.stderr.contains("denied (1 file read)"),
        "exit summary\n{}",
        out.show()
    );
    let log = t.log(&["--since", "1h"]);
    let path = t.sb.home.join("other/notes.txt").display().to_string();
    assert!(
        log.stdout.contains("file read denials")
            && log.stdout.contains(&path)
            && log.stdout.contains("denied by no approver")
            && log.stdout.contains(&format!("allow_read = [\"{path}\"]")),
        "{}",
        log.show()
    );
}

/// Red team: the broker keyed session allowances by the path as shown (sanitised and cut to
/// 160 characters), so allowing one deep file for the session silently allowed its
/// neighbours whose names differ only past the cut. A session allowance is for one path.
#[test]
fn allow_session_for_a_long_path_does_not_cover_its_neighbours() {
    // Longer than the 400 characters a path is shown whole up to.
    let deep = format!("other/{}/{}", "d".repeat(220), "e".repeat(200));
    let t = T::new(
        "fa-session-long",
        &format!(
            "{}\n[approval]\nsession_scope = true\n",
            ask_read_policy("other")
        ),
    );
    t.sb.write_host(&t.sb.home.join(&deep).join("readme.txt"), "readme-ok\n");
    t.sb.write_host(
        &t.sb.home.join(&deep).join("secret.txt"),
        &format!("{NOTES}\n"),
    );
    chown_tree(&t.sb.home);
    let child = t.spawn(
        &[],
        &format!(
            "{WAIT_GO}cat ~/{deep}/readme.txt; cat ~/{deep}/readme.txt; cat ~/{deep}/secret.txt; echo \"rc=$?\""
        ),
    );
    let mut a = Approver::connect(&t.approvals_dir());
    t.go();
    let r1 = a.next_of("request");
    assert!(
        r1["target"]["path"]
            .as_str()
            .is_some_and(|p| p.contains('…')),
        "the long path is shown shortened: {r1}"
    );
    a.decide(&r1["id"], "allow_session");
    assert_eq!(a.next_of("resolved")["decision"], "allow_session");
    // The second read of readme.txt is covered by the session (legitimate twin); the
    // secret next to it must be asked about.
    a.set_timeout(Duration::from_secs(20));
    let mut asked = false;
    while let Some(m) = a.try_next() {
        if m["type"] == "request" {
            asked = true;
            a.decide(&m["id"], "deny");
            break;
        }
    }
    let out = finish(child);
    assert!(asked, "secret.txt was never asked about\n{}", out.show());
    assert_eq!(out.stdout.matches("readme-ok").count(), 2, "{}", out.show());
    assert!(!out.stdout.contains(NOTES), "{}", out.show());
    assert!(out.stdout.contains("rc=1"), "{}", out.show());
}

#[test]
fn ask_write_allow_once_writes_and_deny_does_not() {
    let t = T::new("fa-write", "[filesystem]\nask_write = [\"~/ws/asked\"]\n");
    fs::create_dir_all(t.sb.ws.join("asked")).expect("mkdir");
    chown_tree(&t.sb.root);
    let child = t.spawn(
        &[],
        &format!("{WAIT_GO}echo A > asked/a; echo \"a=$?\"; echo B > asked/b; echo \"b=$?\"; echo C > free.txt; echo \"c=$?\""),
    );
    let mut a = Approver::connect(&t.approvals_dir());
    t.go();
    let r1 = a.next_of("request");
    assert_eq!(r1["kind"], "write", "{r1}");
    assert!(
        r1["target"]["path"]
            .as_str()
            .is_some_and(|p| p.ends_with("/ws/asked/a")),
        "{r1}"
    );
    a.decide(&r1["id"], "allow_once");
    let r2 = a.next_of("request");
    assert!(
        r2["target"]["path"]
            .as_str()
            .is_some_and(|p| p.ends_with("/ws/asked/b")),
        "{r2}"
    );
    a.decide(&r2["id"], "deny");
    let out = finish(child);
    assert!(out.stdout.contains("a=0"), "{}", out.show());
    assert!(out.stdout.contains("b=1"), "{}", out.show());
    assert!(out.stdout.contains("c=0"), "{}", out.show());
    assert_eq!(
        fs::read_to_string(t.sb.ws.join("asked/a")).ok().as_deref(),
        Some("A\n")
    );
    assert_absent(&t.sb.ws.join("asked/b"), &out);
    assert_eq!(
        fs::read_to_string(t.sb.ws.join("free.txt")).ok().as_deref(),
        Some("C\n")
    );
}

#[test]
fn a_protected_path_matching_ask_write_is_refused_without_a_prompt() {
    let t = T::new(
        "fa-protected",
        "[filesystem]\nask_write = [\"~/ws/.envrc\", \"~/ws/asked\"]\n",
    );
    let child = t.spawn(
        &[],
        &format!("{WAIT_GO}echo evil > .envrc; echo \"envrc=$?\"; mkdir asked; echo \"mkdir=$?\""),
    );
    let mut a = Approver::connect(&t.approvals_dir());
    t.go();
    // The first question is about `asked`: `.envrc` never reached the approver.
    let r = a.next_of("request");
    assert!(
        r["target"]["path"]
            .as_str()
            .is_some_and(|p| p.ends_with("/ws/asked")),
        "{r}"
    );
    a.decide(&r["id"], "deny");
    let out = finish(child);
    assert!(out.stdout.contains("envrc=1"), "{}", out.show());
    assert!(out.stdout.contains("mkdir=1"), "{}", out.show());
    assert_absent(&t.sb.ws.join(".envrc"), &out);
    assert_absent(&t.sb.ws.join("asked"), &out);
}

#[test]
fn a_symlink_swapped_in_while_asking_never_hands_in_the_secret() {
    // `d/req` is asked about; while the question is pending the sandbox replaces `d` with a
    // directory whose `req` is a symlink to the SSH key (and a hard-link attempt on the way).
    let t = T::new("fa-race", "[filesystem]\nask_read = [\"~/ws/d/req\"]\n");
    t.sb.write_host(&t.sb.ws.join("d/req"), "req-ok\n");
    let rounds = 5;
    // Round 0 is the control: no swap, the approved open reads the real file.
    let script = format!(
        "{WAIT_GO}mkdir -p evil; ln -sf ~/.ssh/id_rsa evil/req; \
         cat d/req; echo \"round=0 rc=$?\"; \
         for i in $(seq {rounds}); do \
           ( cat d/req; echo \"round=$i rc=$?\" ) & \
           while [ ! -e asked-$i ]; do sleep 0.02; done; \
           mv d d.old && mv evil d && touch swapped-$i; wait; \
           mv d evil && mv d.old d; \
         done"
    );
    let child = t.spawn(&[], &script);
    let mut a = Approver::connect(&t.approvals_dir());
    t.go();
    let r0 = a.next_of("request");
    a.decide(&r0["id"], "allow_once");
    for i in 1..=rounds {
        let r = a.next_of("request");
        assert!(
            r["target"]["path"]
                .as_str()
                .is_some_and(|p| p.ends_with("/ws/d/req")),
            "{r}"
        );
        t.sb.write_host(&t.sb.ws.join(format!("asked-{i}")), "");
        let swapped = wait_for(Duration::from_secs(20), || {
            t.sb.ws.join(format!("swapped-{i}")).exists()
        });
        assert!(swapped, "round {i}: the sandbox did not swap");
        a.decide(&r["id"], "allow_once");
    }
    let out = finish(child);
    assert!(!out.all().contains(SSH_MARKER), "{}", out.show());
    assert_eq!(
        out.stdout.matches("round=").count(),
        rounds + 1,
        "{}",
        out.show()
    );
    assert!(
        out.stdout.contains("req-ok\nround=0 rc=0"),
        "{}",
        out.show()
    );
    assert_eq!(out.stdout.matches("req-ok").count(), 1, "{}", out.show());
    assert_eq!(
        fs::read_to_string(t.sb.home.join(".ssh/id_rsa"))
            .ok()
            .as_deref(),
        Some(SSH_KEY)
    );
}

#[test]
fn ask_write_outside_writable_places_fails_policy_check() {
    let t = T::new("fa-check", "[filesystem]\nask_write = [\"/etc/hosts\"]\n");
    let out =
        t.sb.cordon(&["policy", "check", &t.policy.display().to_string()]);
    assert_ne!(out.code, 0, "{}", out.show());
    assert!(out.stderr.contains("outside every place"), "{}", out.show());
}

#[test]
fn strict_mode_asks_outside_the_workspace_and_system_directories() {
    let t = T::new("fa-strict", "");
    t.sb.write_host(
        &t.sb.home.join("other-project/f.txt"),
        "other-project-9d2\n",
    );
    t.sb.write_host(&t.sb.ws.join("mine.txt"), "mine-5e1\n");
    let child = t.spawn(
        &["--fs", "strict"],
        &format!(
            "{WAIT_GO}cat mine.txt; cat /usr/lib/os-release /etc/os-release 2>/dev/null | head -1; \
             cat ~/notes/other.txt; echo \"notes=$?\"; cat ~/other-project/f.txt; echo \"other=$?\"; \
             ls ~/other-project | wc -l"
        ),
    );
    let mut a = Approver::connect(&t.approvals_dir());
    t.go();
    // The workspace and /usr were read without a question: the first is about ~/notes.
    let r1 = a.next_of("request");
    assert_eq!(r1["kind"], "read", "{r1}");
    assert_eq!(
        r1["target"]["path"],
        t.sb.home
            .join("notes/other.txt")
            .display()
            .to_string()
            .as_str(),
        "{r1}"
    );
    assert!(
        r1["rule"].as_str().is_some_and(|r| r.contains("fs strict")),
        "{r1}"
    );
    a.decide(&r1["id"], "deny");
    let r2 = a.next_of("request");
    assert_eq!(
        r2["target"]["path"],
        t.sb.home
            .join("other-project/f.txt")
            .display()
            .to_string()
            .as_str(),
        "{r2}"
    );
    a.decide(&r2["id"], "allow_once");
    let out = finish(child);
    assert!(out.stdout.contains("mine-5e1"), "{}", out.show());
    assert!(out.stdout.contains("notes=1"), "{}", out.show());
    assert!(!out.stdout.contains("ordinary host note"), "{}", out.show());
    assert!(out.stdout.contains("other-project-9d2"), "{}", out.show());
    assert!(out.stdout.contains("other=0"), "{}", out.show());
    // The hidden directory itself shows its (empty) stand-in.
    assert!(out.stdout.trim_end().ends_with('0'), "{}", out.show());
}

#[test]
fn an_http_proxy_client_is_named_in_its_approval_request() {
    let up = std::net::TcpListener::bind("127.0.0.1:0").expect("bind upstream");
    let port = up.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for mut s in up.incoming().flatten() {
            let _ = s.write_all(b"HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\nok\n");
        }
    });
    let t = T::new(
        "fa-proxy-who",
        "[network]\nunknown = \"ask\"\nallow_cidrs = [\"127.0.0.0/8:*\"]\n\n[network.hosts]\n\"up.test\" = \"127.0.0.1\"\n",
    );
    // curl honours HTTP_PROXY (cordon sets it): the door sees a proxy client, not a
    // transparent connection, and must still name the process.
    let child = t.spawn(
        &[],
        &format!(
            "{WAIT_GO}curl -s -m 20 http://up.test:{port}/ >/dev/null; echo \"curl=$? pid=$$\""
        ),
    );
    let mut a = Approver::connect(&t.approvals_dir());
    t.go();
    let r = a.next_of("request");
    assert_eq!(r["kind"], "network", "{r}");
    assert_eq!(r["via"], "http", "{r}");
    assert!(
        r["process"]["exe"]
            .as_str()
            .is_some_and(|e| e.ends_with("/curl")),
        "{r}"
    );
    assert!(
        r["process"]["cmdline"]
            .as_str()
            .is_some_and(|c| c.starts_with("curl -s -m 20 http://up.test")),
        "{r}"
    );
    let pid = r["process"]["pid"].as_i64().unwrap_or(0);
    a.decide(&r["id"], "deny");
    let out = finish(child);
    // curl is a child of the script's shell inside the sandbox's pid namespace.
    let shell: i64 = out
        .stdout
        .split("pid=")
        .nth(1)
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0);
    assert!(
        pid > shell && shell > 0,
        "pid {pid} vs shell {shell}\n{}",
        out.show()
    );
}

#[test]
fn a_project_may_add_asks_but_a_deny_is_never_turned_into_one() {
    // The project file (untrusted) asks about ~/.ssh, which the built-in policy hides: the
    // key stays hidden without a prompt; its ask about ~/other is kept.
    let t = T::new("fa-project", "");
    t.sb.write_host(
        &t.sb.ws.join(".cordon.toml"),
        "[filesystem]\nask_read = [\"~/.ssh\", \"~/other\"]\n",
    );
    t.sb.write_host(&t.sb.home.join("other/x.txt"), "other-x-31f\n");
    let child = t.spawn(
        &[],
        &format!(
            "{WAIT_GO}cat ~/.ssh/id_rsa; echo \"ssh=$?\"; cat ~/other/x.txt; echo \"other=$?\""
        ),
    );
    let mut a = Approver::connect(&t.approvals_dir());
    t.go();
    let r = a.next_of("request");
    assert_eq!(
        r["target"]["path"],
        t.sb.home.join("other/x.txt").display().to_string().as_str(),
        "the first question is about ~/other, never ~/.ssh: {r}"
    );
    assert!(
        r["rule"].as_str().is_some_and(|s| s.contains("project")),
        "{r}"
    );
    a.decide(&r["id"], "allow_once");
    let out = finish(child);
    assert!(!out.all().contains(SSH_MARKER), "{}", out.show());
    assert!(out.stdout.contains("other-x-31f"), "{}", out.show());
    assert!(out.stdout.contains("other=0"), "{}", out.show());
}

#[test]
fn exec_into_a_named_sandbox_asks_like_the_run() {
    let t = T::new("fa-exec", &ask_read_policy("other"));
    t.sb.write_host(&t.sb.home.join("other/notes.txt"), &format!("{NOTES}\n"));
    let name = format!("fa-exec-{}", std::process::id());
    // The run idles until the test says stop (bounded).
    let run = t.spawn(
        &["--name", &name],
        "for i in $(seq 600); do [ -e stop ] && break; sleep 0.05; done",
    );
    let mut a = Approver::connect(&t.approvals_dir());
    let exec_cmd = {
        let mut cmd = t.sb.user_command(bin());
        cmd.env("XDG_RUNTIME_DIR", &t.runtime)
            .args(["exec", &name, "--", "bash", "-c"])
            .arg(format!(
                "echo {RAN}; cat ~/other/notes.txt; echo \"first=$?\"; cat ~/other/notes.txt; echo \"second=$?\""
            ));
        cmd
    };
    let exec_thread = std::thread::spawn(move || exec(exec_cmd, RUN_TIMEOUT));
    let r1 = a.next_of("request");
    assert_eq!(r1["kind"], "read", "{r1}");
    a.decide(&r1["id"], "allow_once");
    let r2 = a.next_of("request");
    assert_ne!(r1["id"], r2["id"], "the second open asks again");
    a.decide(&r2["id"], "deny");
    let out = assert_ran(exec_thread.join().expect("exec thread"));
    t.sb.write_host(&t.sb.ws.join("stop"), "");
    let run_out = finish(run);
    assert!(
        out.stdout.contains("first=0"),
        "{}\n{}",
        out.show(),
        run_out.show()
    );
    assert_eq!(out.stdout.matches(NOTES).count(), 1, "{}", out.show());
    assert!(out.stdout.contains("second=1"), "{}", out.show());
}
