//! Approvals end to end: a real `cordon run` with `unknown = "ask"`, an approver driving the
//! socket protocol from the test (or `cordon approvals` in tmux), and a local upstream.

use crate::common;

use common::approver::*;
use common::*;

use std::fs;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;

use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const HELLO: &str = "hello-from-upstream";

fn bin() -> &'static Path {
    cordon_bin()
}

/// A loopback server that greets and counts connections.
struct Upstream {
    port: u16,
    count: Arc<AtomicUsize>,
}

fn upstream() -> Upstream {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind upstream");
    let port = l.local_addr().expect("addr").port();
    let count = Arc::new(AtomicUsize::new(0));
    let c = count.clone();
    std::thread::spawn(move || {
        for mut s in l.incoming().flatten() {
            c.fetch_add(1, Ordering::SeqCst);
            let _ = s.write_all(format!("{HELLO}\n").as_bytes());
        }
    });
    Upstream { port, count }
}

/// One test: a sandbox whose runtime dir is private to it, and a `-p` policy that asks.
struct Ask {
    sb: Sandbox,
    runtime: PathBuf,
    policy: PathBuf,
}

impl Ask {
    fn new(name: &str, extra: &str) -> Ask {
        let sb = Sandbox::new(name);
        let runtime = sb.root.join("run");
        fs::create_dir_all(&runtime).expect("runtime dir");
        let policy = sb.root.join("policy.toml");
        let text = format!(
            "[network]\nunknown = \"ask\"\nallow_cidrs = [\"127.0.0.0/8:*\"]\n\n[network.hosts]\n\"up.test\" = \"127.0.0.1\"\n{extra}"
        );
        sb.write_host(&policy, &text);
        fs::set_permissions(&runtime, fs::Permissions::from_mode(0o700)).expect("chmod");
        chown_tree(&sb.root);
        Ask {
            sb,
            runtime,
            policy,
        }
    }

    fn approvals_dir(&self) -> PathBuf {
        self.runtime.join("cordon/approvals")
    }

    /// `cordon run -p policy -- bash run.sh ARGS...` with SCRIPT in the workspace's
    /// run.sh, in the background.
    fn spawn(&self, script: &str, args: &[&str]) -> Running {
        self.spawn_with(&[], script, args)
    }

    /// [`Ask::spawn`] with more `cordon run` options.
    fn spawn_with(&self, opts: &[&str], script: &str, args: &[&str]) -> Running {
        self.sb.write_host(&self.sb.ws.join("run.sh"), script);
        run_script_in_background(&self.sb, &self.runtime, &self.policy, opts, args)
    }

    /// Tells a script waiting with [`WAIT_GO`] to go on.
    fn go(&self) {
        self.sb.write_host(&self.sb.ws.join("go"), "");
    }

    /// `cordon log ARGS...` as the test user.
    fn log(&self, args: &[&str]) -> Out {
        let mut cmd = self.sb.user_command(bin());
        cmd.arg("log").args(args);
        exec(cmd, RUN_TIMEOUT)
    }
}

/// Shell prelude: wait (bounded) for the test to create `go` in the workspace.
const WAIT_GO: &str = "for i in $(seq 200); do [ -e go ] && break; sleep 0.05; done; ";

/// Connects to up.test:PORT once and prints what the upstream said (or FAILED).
fn connect_once(port: u16) -> String {
    format!("if exec 3<>/dev/tcp/up.test/{port}; then timeout 10 cat <&3 || echo FAILED; exec 3<&-; else echo FAILED; fi; ")
}

fn finish(run: Running) -> Out {
    run.finish()
}

/// The test as an approver on a sandbox's socket.
#[test]
fn allow_once_admits_one_connection_and_the_next_asks_again() {
    let t = Ask::new("appr-once", "");
    let up = upstream();
    let c = connect_once(up.port);
    let child = t.spawn(&format!("{WAIT_GO}{c}{c}"), &[]);
    let mut a = Approver::connect(&t.approvals_dir());
    t.go();
    let r1 = a.next_of("request");
    assert_eq!(r1["kind"], "network");
    assert_eq!(r1["target"]["host"], "up.test");
    assert_eq!(r1["target"]["port"], up.port);
    assert_eq!(r1["rule"], "no rule: unknown = ask");
    assert_eq!(r1["sandbox"], a.sandbox.as_str());
    assert!(r1["deadline"].as_u64().is_some());
    assert!(
        r1["process"]["exe"]
            .as_str()
            .is_some_and(|e| e.ends_with("bash")),
        "{r1}"
    );
    a.decide(&r1["id"], "allow_once");
    assert_eq!(a.next_of("resolved")["decision"], "allow_once");
    let r2 = a.next_of("request");
    assert_ne!(r1["id"], r2["id"], "a second connection asks again");
    a.decide(&r2["id"], "deny");
    let out = finish(child);
    assert_eq!(
        out.stdout.matches(HELLO).count(),
        1,
        "exactly one connection passed\n{}",
        out.show()
    );
    assert_eq!(up.count.load(Ordering::SeqCst), 1);
    // cordon is not on the harness's PATH: the exit line names it by a path that works, and
    // the command it gives, pasted as it is, shows the denial.
    let see = out
        .stderr
        .lines()
        .find(|l| l.contains("1 denied (1 network)"))
        .and_then(|l| l.split('`').nth(1))
        .unwrap_or_default()
        .to_string();
    assert_eq!(
        see,
        format!("{} log --sandbox {}", bin().display(), a.sandbox),
        "exit summary\n{}",
        out.show()
    );
    let words: Vec<&str> = see.split(' ').collect();
    let mut pasted = t.sb.user_command(words[0]);
    pasted.args(&words[1..]);
    let pasted = exec(pasted, RUN_TIMEOUT);
    assert!(
        pasted.stdout.contains(&format!("up.test:{}", up.port)),
        "{}",
        pasted.show()
    );
    assert!(
        out.stderr.contains("1 denied (1 network)"),
        "{}",
        out.show()
    );
    let log = t.log(&["--sandbox", &a.sandbox]);
    assert!(
        log.stdout.contains(&format!("up.test:{}", up.port))
            && log.stdout.contains("denied by approver")
            && log.stdout.contains("--allow-domain up.test"),
        "{}",
        log.show()
    );
    // Nothing persisted: the socket is gone and no approval is written anywhere but the log.
    assert!(fs::read_dir(t.approvals_dir())
        .map(|rd| rd.count() == 0)
        .unwrap_or(true));
}

/// A host an active profile lists as optional (one the agent works without) is refused at
/// once, the approver never asked; the exit line names it on its own calm line, not as a
/// denial, and `cordon log` lists it under its own heading with the fix. The unknown host
/// right after it IS asked (the approver was there). Twin: `--allow-domain` admits it.
#[test]
fn an_optional_host_is_refused_unasked_and_reported_apart_from_denials() {
    let t = Ask::new("appr-optional", "\"opt.test\" = \"127.0.0.1\"\n");
    t.sb.write_host(
        &t.sb.home.join(".config/cordon/profiles/optest.toml"),
        "description = \"optional-host test\"\n[network]\noptional = [\n  { host = \"opt.test:*\", why = \"its update check\", source = \"tests/it/approvals.rs\" },\n]\n",
    );
    let up = upstream();
    let opt = connect_once(up.port).replace("up.test", "opt.test");
    let child = t.spawn_with(
        &["--profile", "optest"],
        &format!("{WAIT_GO}{opt}{}", connect_once(up.port)),
        &[],
    );
    let mut a = Approver::connect(&t.approvals_dir());
    t.go();
    // The first question is about up.test: opt.test, tried first, was never asked.
    let r = a.next_of("request");
    assert_eq!(r["target"]["host"], "up.test", "{r}");
    a.decide(&r["id"], "deny");
    let out = finish(child);
    assert!(!out.stdout.contains(HELLO), "{}", out.show());
    assert_eq!(out.stdout.matches("FAILED").count(), 2, "{}", out.show());
    assert_eq!(up.count.load(Ordering::SeqCst), 0);
    // One attempt per address bash tried (IPv4 and IPv6): counted, never as denied.
    let want = format!(
        " refused as the optest profile says (opt.test:{}: its update check); allow with --allow-domain opt.test:{}",
        up.port, up.port
    );
    assert!(
        out.stderr.lines().any(|l| l.starts_with("cordon: ")
            && l.contains(" optional connection")
            && l.ends_with(&want)),
        "{want}\n{}",
        out.show()
    );
    // Only the asked one is a denial.
    assert!(
        out.stderr.contains("1 denied (1 network)")
            && !out
                .stderr
                .lines()
                .any(|l| l.contains("denied") && l.contains("opt.test")),
        "{}",
        out.show()
    );
    let log = t.log(&["--sandbox", &a.sandbox]);
    let section = log
        .stdout
        .split("optional connections refused")
        .nth(1)
        .unwrap_or_default();
    assert!(
        section.contains(&format!("opt.test:{}  (", up.port))
            && section.contains("optional for the optest profile: its update check")
            && section.contains(&format!("to allow it: --allow-domain opt.test:{}", up.port)),
        "{}",
        log.show()
    );
    // Twin: the person's allow admits it, nobody asked (no approver is connected now).
    let out = finish(t.spawn_with(
        &[
            "--profile",
            "optest",
            "--allow-domain",
            &format!("opt.test:{}", up.port),
        ],
        &opt,
        &[],
    ));
    assert!(out.stdout.contains(HELLO), "{}", out.show());
    assert_eq!(up.count.load(Ordering::SeqCst), 1);
    assert!(!out.stderr.contains("optional"), "{}", out.show());
}

#[test]
fn no_approver_means_deny() {
    let t = Ask::new("appr-absent", "");
    let up = upstream();
    let out = finish(t.spawn(&connect_once(up.port), &[]));
    assert!(!out.stdout.contains(HELLO), "{}", out.show());
    assert_eq!(up.count.load(Ordering::SeqCst), 0);
    let log = t.log(&["--since", "1h"]);
    assert!(
        log.stdout.contains("denied by no approver"),
        "{}",
        log.show()
    );
    // What the proxy answers says it in the same words as `cordon log`.
    let out = finish(t.spawn(
        &format!(
            "curl -s -x http://127.0.0.1:3128 http://up.test:{}/; echo",
            up.port
        ),
        &[],
    ));
    assert!(
        out.stdout.contains("asked; denied") && out.stdout.contains("cordon log"),
        "{}",
        out.show()
    );
    assert!(!out.stdout.contains("not allowed"), "{}", out.show());
    assert_eq!(up.count.load(Ordering::SeqCst), 0);
}

#[test]
fn timeout_means_deny() {
    let t = Ask::new("appr-timeout", "\n[approval]\ntimeout = 1\n");
    let up = upstream();
    let child = t.spawn(&format!("{WAIT_GO}{}", connect_once(up.port)), &[]);
    let mut a = Approver::connect(&t.approvals_dir());
    t.go();
    let r = a.next_of("request");
    let start = Instant::now();
    let res = a.next_of("resolved");
    assert_eq!(res["id"], r["id"]);
    assert_eq!(res["decision"], "deny");
    assert_eq!(res["by"], "timeout");
    assert!(start.elapsed() < Duration::from_secs(10));
    let out = finish(child);
    assert!(!out.stdout.contains(HELLO), "{}", out.show());
    assert_eq!(up.count.load(Ordering::SeqCst), 0);
}

#[test]
fn approver_leaving_mid_request_means_deny() {
    let t = Ask::new("appr-gone", "");
    let up = upstream();
    let child = t.spawn(&format!("{WAIT_GO}{}", connect_once(up.port)), &[]);
    let mut a = Approver::connect(&t.approvals_dir());
    t.go();
    let _ = a.next_of("request");
    drop(a);
    let out = finish(child);
    assert!(!out.stdout.contains(HELLO), "{}", out.show());
    assert_eq!(up.count.load(Ordering::SeqCst), 0);
    let log = t.log(&["--since", "1h"]);
    assert!(
        log.stdout.contains("denied by approver gone"),
        "{}",
        log.show()
    );
}

#[test]
fn allow_session_is_refused_unless_the_policy_permits_it() {
    let t = Ask::new("appr-session", "");
    let up = upstream();
    let child = t.spawn(&format!("{WAIT_GO}{}", connect_once(up.port)), &[]);
    let mut a = Approver::connect(&t.approvals_dir());
    assert!(!a.sandbox.is_empty());
    t.go();
    let r = a.next_of("request");
    assert_eq!(r["session_allowed"], false);
    a.decide(&r["id"], "allow_session");
    let res = a.next_of("resolved");
    assert_eq!(res["decision"], "deny");
    assert!(
        res["note"]
            .as_str()
            .is_some_and(|n| n.contains("session_scope")),
        "{res}"
    );
    let out = finish(child);
    assert!(!out.stdout.contains(HELLO), "{}", out.show());

    // Permitted: one answer covers the rest of this sandbox's life, and only it.
    let t = Ask::new("appr-session-ok", "\n[approval]\nsession_scope = true\n");
    let c = connect_once(up.port);
    let before = up.count.load(Ordering::SeqCst);
    let child = t.spawn(&format!("{WAIT_GO}{c}{c}"), &[]);
    let mut a = Approver::connect(&t.approvals_dir());
    t.go();
    let r = a.next_of("request");
    assert_eq!(r["session_allowed"], true);
    a.decide(&r["id"], "allow_session");
    let out = finish(child);
    assert_eq!(out.stdout.matches(HELLO).count(), 2, "{}", out.show());
    assert_eq!(up.count.load(Ordering::SeqCst), before + 2);
}

/// Two names longer than any display cut that share everything but their tail are two
/// questions: an allowance for the session covers exactly the name it was given, and the
/// approver is sent the whole name (the tail that says whose it is included).
#[test]
fn long_names_sharing_a_prefix_are_asked_about_separately() {
    let head = format!("{}.{}.{}", "a".repeat(60), "b".repeat(60), "c".repeat(50));
    let (good, evil) = (format!("{head}.one.test"), format!("{head}.evil.test"));
    let hosts = format!(
        "\"{good}\" = \"127.0.0.1\"\n\"{evil}\" = \"127.0.0.1\"\n\n[approval]\nsession_scope = true\n"
    );
    let t = Ask::new("appr-long-names", &hosts);
    let up = upstream();
    let once = |h: &str| {
        format!("if exec 3<>/dev/tcp/{h}/{p}; then timeout 10 cat <&3 || echo FAILED; exec 3<&-; else echo FAILED; fi; ", p = up.port)
    };
    let child = t.spawn(
        &format!("{WAIT_GO}{}{}{}", once(&good), once(&evil), once(&good)),
        &[],
    );
    let mut a = Approver::connect(&t.approvals_dir());
    t.go();
    let r1 = a.next_of("request");
    assert_eq!(r1["target"]["host"], good.as_str(), "{r1}");
    a.decide(&r1["id"], "allow_session");
    // The neighbour is asked about on its own, by its whole name, and refused.
    let r2 = a.next_of("request");
    assert_eq!(r2["target"]["host"], evil.as_str(), "{r2}");
    a.decide(&r2["id"], "deny");
    let out = finish(child);
    // The good name twice (once asked, once under the allowance), the neighbour never.
    assert_eq!(out.stdout.matches(HELLO).count(), 2, "{}", out.show());
    assert_eq!(up.count.load(Ordering::SeqCst), 2, "{}", out.show());
}

#[test]
fn a_flood_is_rate_limited_and_summarised() {
    let t = Ask::new("appr-flood", "\n[approval]\ntimeout = 3\n");
    let script = format!(
        "{WAIT_GO}for i in $(seq 0 999); do exec 3<>/dev/tcp/h$((i % 12)).test/$((2000 + i)) 2>/dev/null; exec 3<&-; done; echo FLOOD-DONE"
    );
    let start = Instant::now();
    let child = t.spawn(&script, &[]);
    let mut a = Approver::connect(&t.approvals_dir());
    t.go();
    let mut requests = 0;
    let mut summarised = 0u64;
    let deadline = Instant::now() + Duration::from_secs(50);
    a.set_timeout(Duration::from_secs(5));
    while Instant::now() < deadline && summarised < 900 {
        let Some(m) = a.try_next() else { break };
        match m["type"].as_str() {
            Some("request") => requests += 1,
            Some("summary") => {
                summarised += m["denied"].as_u64().unwrap_or(0);
                let text = m["text"].as_str().unwrap_or("");
                let n = m["denied"].as_u64().unwrap_or(0);
                let hosts = m["hosts"].as_u64().unwrap_or(0);
                assert!(n >= 1 && (1..=12).contains(&hosts), "{m}");
                let want = format!(
                    "{n} more request{} to {hosts} host{} denied",
                    if n == 1 { "" } else { "s" },
                    if hosts == 1 { "" } else { "s" }
                );
                assert_eq!(text, want, "{m}");
            }
            _ => {}
        }
    }
    let out = finish(child);
    assert!(out.stdout.contains("FLOOD-DONE"), "{}", out.show());
    assert!(requests <= 20, "{requests} prompts shown for a flood");
    assert!(requests >= 1);
    assert!(
        summarised >= 900,
        "only {summarised} denials summarised\n{}",
        out.show()
    );
    assert!(start.elapsed() < Duration::from_secs(60));
}

/// Escape sequences, bidi overrides and invisible characters in what the sandbox controls
/// (here its command line) reach the approver inert.
const HOSTILE: &str = "\x1b]0;pwned-title\x07\x1b[2J\x1b[31mRED\u{202e}LIVE\u{200b}-MARK";

#[test]
fn hostile_strings_are_inert() {
    let t = Ask::new("appr-hostile", "");
    let up = upstream();
    let child = t.spawn(&format!("{WAIT_GO}{}", connect_once(up.port)), &[HOSTILE]);
    let mut a = Approver::connect(&t.approvals_dir());
    t.go();
    let r = a.next_of("request");
    let cmd = r["process"]["cmdline"].as_str().unwrap_or("");
    assert!(cmd.contains("REDLIVE-MARK"), "{r}");
    assert!(
        !cmd.chars()
            .any(|c| c.is_control() || ('\u{200b}'..='\u{202e}').contains(&c)),
        "{cmd:?}"
    );
    assert!(!cmd.contains("pwned-title"));
    a.decide(&r["id"], "deny");
    let _ = finish(child);
}

#[test]
fn the_sandbox_cannot_reach_the_approval_socket() {
    let t = Ask::new("appr-reach", "");
    let script = format!(
        "{WAIT_GO}p=$(cat sockpath); python3 -c 'import socket,sys\ns=socket.socket(socket.AF_UNIX)\ntry:\n  s.connect(sys.argv[1]); print(\"CONNECTED\")\nexcept OSError as e: print(\"REFUSED\", e)' \"$p\"; ls -la \"$(dirname \"$p\")\" 2>&1 | head -3"
    );
    let child = t.spawn(&script, &[]);
    let path = find_socket(&t.approvals_dir());
    t.sb.write_host(&t.sb.ws.join("sockpath"), &path.display().to_string());
    t.go();
    let out = finish(child);
    assert!(out.stdout.contains("REFUSED"), "{}", out.show());
    assert!(!out.stdout.contains("CONNECTED"), "{}", out.show());
}

/// Kills a test's tmux server even when an assertion fails first.
struct TmuxGuard<'a>(&'a Ask, PathBuf);

impl Drop for TmuxGuard<'_> {
    fn drop(&mut self) {
        let _ = tmux(self.0, &self.1, &["kill-server"]);
        let _ = fs::remove_file(&self.1);
    }
}

fn tmux(t: &Ask, sock: &Path, args: &[&str]) -> Out {
    let mut cmd = t.sb.user_command("tmux");
    cmd.env("XDG_RUNTIME_DIR", &t.runtime)
        .arg("-S")
        .arg(sock)
        .args(args);
    exec(cmd, Duration::from_secs(20))
}

#[test]
fn cordon_approvals_in_a_terminal_answers_with_keys() {
    let t = Ask::new("appr-tmux", "");
    if !t.sb.has_tool("tmux") {
        skip(
            "cordon_approvals_in_a_terminal_answers_with_keys",
            "tmux is not installed",
        );
        return;
    }
    let up = upstream();
    let c = connect_once(up.port);
    let child = t.spawn(&format!("{WAIT_GO}{c}{c}"), &[HOSTILE]);
    let _ = find_socket(&t.approvals_dir());
    let sock = short_socket_path("tmux");
    let approvals = format!(
        "XDG_RUNTIME_DIR={} {} approvals",
        t.runtime.display(),
        bin().display()
    );
    let _guard = TmuxGuard(&t, sock.clone());
    let started = tmux(
        &t,
        &sock,
        &["new-session", "-d", "-x", "220", "-y", "50", &approvals],
    );
    assert_eq!(started.code, 0, "{}", started.show());
    let pane = || tmux(&t, &sock, &["capture-pane", "-p", "-J"]).stdout;
    assert!(
        wait_for(Duration::from_secs(20), || pane().contains("connected:")),
        "cordon approvals did not connect:\n{}",
        pane()
    );
    t.go();
    let want = format!("wants network up.test:{}", up.port);
    assert!(
        wait_for(Duration::from_secs(20), || pane().contains(&want)),
        "no prompt:\n{}",
        pane()
    );
    let shown = pane();
    assert!(shown.contains("REDLIVE-MARK"), "{shown}");
    assert!(shown.contains("a = allow once"), "{shown}");
    tmux(&t, &sock, &["send-keys", "a"]);
    assert!(
        wait_for(Duration::from_secs(20), || pane().matches(&want).count()
            >= 2),
        "no second prompt:\n{}",
        pane()
    );
    tmux(&t, &sock, &["send-keys", "d"]);
    let out = finish(child);
    let shown = pane();
    tmux(&t, &sock, &["send-keys", "q"]);
    let _ = tmux(&t, &sock, &["kill-server"]);
    assert_eq!(
        out.stdout.matches(HELLO).count(),
        1,
        "{}\n{shown}",
        out.show()
    );
    assert!(shown.contains("allow_once"), "{shown}");
    assert!(shown.contains("deny"), "{shown}");
    assert!(!shown.contains("pwned-title"), "{shown}");
}

#[test]
fn cordon_approvals_shows_which_sandbox_asks() {
    let first = Ask::new("appr-multi-a", "");
    if !first.sb.has_tool("tmux") {
        skip(
            "cordon_approvals_shows_which_sandbox_asks",
            "tmux is not installed",
        );
        return;
    }
    let mut second = Ask::new("appr-multi-b", "");
    // Both sandboxes register in the same runtime directory, as two runs of one person do.
    second.runtime = first.runtime.clone();
    let up = upstream();
    let c = connect_once(up.port);
    let a = first.spawn(&format!("{WAIT_GO}{c}"), &[]);
    let b = second.spawn(&format!("{WAIT_GO}{c}"), &[]);
    let sockets = || {
        fs::read_dir(first.approvals_dir())
            .map(|rd| rd.flatten().count())
            .unwrap_or(0)
    };
    assert!(
        wait_for(Duration::from_secs(30), || sockets() == 2),
        "two sockets"
    );
    let ids: Vec<String> = [&a, &b]
        .iter()
        .map(|c| format!("bash-{}", c.id()))
        .collect();
    let sock = short_socket_path("tmux");
    let approvals = format!(
        "XDG_RUNTIME_DIR={} {} approvals",
        first.runtime.display(),
        bin().display()
    );
    let _guard = TmuxGuard(&first, sock.clone());
    let started = tmux(
        &first,
        &sock,
        &["new-session", "-d", "-x", "220", "-y", "50", &approvals],
    );
    assert_eq!(started.code, 0, "{}", started.show());
    let pane = || tmux(&first, &sock, &["capture-pane", "-p", "-J"]).stdout;
    assert!(
        wait_for(Duration::from_secs(20), || pane()
            .matches("connected:")
            .count()
            >= 2),
        "not connected to both:\n{}",
        pane()
    );
    first.go();
    second.go();
    let asked = |p: &str, id: &str| p.contains(&format!("[{id}] request"));
    assert!(
        wait_for(Duration::from_secs(20), || {
            let p = pane();
            asked(&p, &ids[0]) && asked(&p, &ids[1])
        }),
        "both sandboxes' requests, each with its id:\n{}",
        pane()
    );
    // One key per decision, oldest first: allow one, deny the other.
    tmux(&first, &sock, &["send-keys", "a"]);
    assert!(wait_for(Duration::from_secs(10), || pane().contains("allow_once:")));
    tmux(&first, &sock, &["send-keys", "d"]);
    let outs = [finish(a), finish(b)];
    let shown = pane();
    tmux(&first, &sock, &["send-keys", "q"]);
    let _ = tmux(&first, &sock, &["kill-server"]);
    let passed: usize = outs.iter().map(|o| o.stdout.matches(HELLO).count()).sum();
    assert_eq!(passed, 1, "{shown}\n{}\n{}", outs[0].show(), outs[1].show());
    assert_eq!(up.count.load(Ordering::SeqCst), 1);
}

/// `cordon approvals` with its keys on a pipe and its screen collected.
struct PipedApprover {
    child: Child,
    screen: Arc<std::sync::Mutex<String>>,
}

impl PipedApprover {
    fn start(t: &Ask) -> PipedApprover {
        let mut cmd = t.sb.user_command(bin());
        cmd.env("XDG_RUNTIME_DIR", &t.runtime)
            .arg("approvals")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn cordon approvals");
        let screen = Arc::new(std::sync::Mutex::new(String::new()));
        let mut out = child.stdout.take().expect("stdout");
        let s = screen.clone();
        std::thread::spawn(move || {
            let mut b = [0u8; 4096];
            while let Ok(n) = out.read(&mut b) {
                if n == 0 {
                    break;
                }
                s.lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push_str(&String::from_utf8_lossy(&b[..n]));
            }
        });
        PipedApprover { child, screen }
    }

    fn screen(&self) -> String {
        self.screen
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn key(&mut self, k: &[u8]) {
        let stdin = self.child.stdin.as_mut().expect("stdin");
        stdin.write_all(k).expect("key");
        stdin.flush().expect("flush");
    }
}

impl Drop for PipedApprover {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn an_approver_started_first_sees_the_first_connection() {
    let t = Ask::new("appr-first", "");
    let up = upstream();
    let mut approver = PipedApprover::start(&t);
    let dir = t.approvals_dir();
    let registered = || {
        fs::read_dir(&dir).is_ok_and(|rd| {
            rd.flatten()
                .any(|e| e.path().extension().is_some_and(|x| x == "approver"))
        })
    };
    assert!(
        wait_for(Duration::from_secs(20), registered),
        "cordon approvals did not register in {}:\n{}",
        dir.display(),
        approver.screen()
    );
    // The command's first instruction connects: nothing gives the approver time to look.
    let child = t.spawn(&connect_once(up.port), &[]);
    let want = format!("wants network up.test:{}", up.port);
    let asked = wait_for(Duration::from_secs(30), || {
        approver.screen().contains(&want)
    });
    if asked {
        approver.key(b"a");
    }
    let out = finish(child);
    let screen = approver.screen();
    assert!(
        asked,
        "the first connection was not asked:\n{screen}\n{}",
        out.show()
    );
    assert!(out.stdout.contains(HELLO), "{}\n{screen}", out.show());
    assert!(!out.stderr.contains("denied"), "{}", out.show());
    assert_eq!(up.count.load(Ordering::SeqCst), 1);
    approver.key(b"q");
    let _ = wait_timeout(&mut approver.child, Duration::from_secs(10));
    assert!(
        !registered(),
        "the registration is removed when the approver quits"
    );
}
