//! The broker's semantics without a sandbox: an approver on a socket pair.

use super::broker::{Ask, Core, Key, Settings};
use super::oneshot::Receiver;
use crate::audit::{AskKind, Audit};
use cordon_policy::Outcome::{self, *};
use cordon_policy::{Flood, Grant};
use serde_json::Value;
use std::future::Future;
use std::io::{BufRead, BufReader};
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

fn poll_now(rx: &mut Receiver) -> Option<Outcome> {
    let mut cx = Context::from_waker(Waker::noop());
    match std::pin::Pin::new(rx).poll(&mut cx) {
        Poll::Ready(v) => Some(v),
        Poll::Pending => None,
    }
}

struct T {
    core: Arc<Core>,
    approver: Option<BufReader<UnixStream>>,
    log: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl T {
    fn new(settings: Settings, with_approver: bool) -> T {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("audit.jsonl");
        let core = Core::new(settings, Audit::open(Some(&log)).expect("audit"));
        let approver = with_approver.then(|| {
            let (a, b) = UnixStream::pair().expect("pair");
            a.set_read_timeout(Some(Duration::from_secs(5)))
                .expect("timeout");
            core.add_approver(1, Arc::new(Mutex::new(b)));
            BufReader::new(a)
        });
        let mut t = T {
            core,
            approver,
            log,
            _dir: dir,
        };
        if with_approver {
            assert_eq!(t.next()["type"], "hello");
        }
        t
    }

    fn next(&mut self) -> Value {
        let mut line = String::new();
        self.approver
            .as_mut()
            .expect("approver")
            .read_line(&mut line)
            .expect("line from the broker");
        serde_json::from_str(&line).expect("json")
    }

    fn ask(&self, host: &str, port: u16) -> Receiver {
        self.core.ask(
            Ask {
                key: Key {
                    kind: AskKind::Network,
                    host: host.into(),
                    port,
                },
                via: "transparent",
                rule: "no rule: unknown = ask".into(),
                fix: format!("--allow-domain {host}"),
            },
            Default::default,
        )
    }

    fn audit(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .filter(|v: &Value| v["event"] == "approval")
            .collect()
    }

    fn decisions(&self) -> Vec<(String, String)> {
        self.audit()
            .iter()
            .filter(|v| v["phase"] == "decision")
            .map(|v| {
                (
                    v["decision"].as_str().unwrap_or("").to_string(),
                    v["by"].as_str().unwrap_or("").to_string(),
                )
            })
            .collect()
    }
}

fn settings() -> Settings {
    Settings::new("t-1".into(), Duration::from_secs(60), false)
}

#[test]
fn no_approver_denies_at_once() {
    let t = T::new(settings(), false);
    let mut rx = t.ask("a.test", 443);
    assert_eq!(poll_now(&mut rx), Some(NoApprover));
    assert_eq!(t.decisions(), vec![("deny".into(), "no approver".into())]);
}

#[test]
fn allow_once_admits_one_and_the_next_asks_again() {
    let mut t = T::new(settings(), true);
    let mut rx = t.ask("a.test", 443);
    assert_eq!(poll_now(&mut rx), None);
    let req = t.next();
    assert_eq!(req["type"], "request");
    assert_eq!(req["target"]["host"], "a.test");
    assert_eq!(req["target"]["port"], 443);
    let id = req["id"].as_u64().expect("id");
    t.core.answer(id, "allow_once").expect("answer");
    assert_eq!(poll_now(&mut rx), Some(Granted(Grant::Once)));
    assert_eq!(t.next()["type"], "resolved");
    let mut rx2 = t.ask("a.test", 443);
    assert_eq!(poll_now(&mut rx2), None, "asked again");
    let id2 = t.next()["id"].as_u64().expect("id");
    assert_ne!(id, id2);
    t.core.answer(id2, "deny").expect("answer");
    assert_eq!(poll_now(&mut rx2), Some(Denied));
    assert!(t.core.answer(id2, "deny").is_err(), "decided once only");
    let d = t.decisions();
    assert_eq!(d[0], ("allow_once".into(), "approver".into()));
    assert_eq!(d[1], ("deny".into(), "approver".into()));
}

#[test]
fn identical_pending_requests_are_one_prompt() {
    let mut t = T::new(settings(), true);
    let mut rxs: Vec<Receiver> = (0..3).map(|_| t.ask("a.test", 443)).collect();
    let mut other = t.ask("a.test", 8443);
    let first = t.next();
    let second = t.next();
    assert_eq!(first["target"]["port"], 443);
    assert_eq!(second["target"]["port"], 8443);
    assert_eq!(t.core.pending(), 2);
    t.core
        .answer(first["id"].as_u64().expect("id"), "allow_once")
        .expect("answer");
    for rx in &mut rxs {
        assert_eq!(poll_now(rx), Some(Granted(Grant::Once)));
    }
    assert_eq!(poll_now(&mut other), None);
    let dec = t
        .audit()
        .into_iter()
        .find(|v| v["phase"] == "decision")
        .expect("decision");
    assert_eq!(dec["connections"], 3);
}

#[test]
fn timeout_denies() {
    let mut s = settings();
    s.timeout = Duration::from_millis(50);
    let mut t = T::new(s, true);
    let mut rx = t.ask("a.test", 443);
    let _ = t.next();
    std::thread::sleep(Duration::from_millis(80));
    t.core.tick();
    assert_eq!(poll_now(&mut rx), Some(Timeout));
    assert_eq!(t.decisions(), vec![("deny".into(), "timeout".into())]);
}

#[test]
fn approver_gone_denies_pending() {
    let mut t = T::new(settings(), true);
    let mut rx = t.ask("a.test", 443);
    let _ = t.next();
    t.approver = None;
    t.core.remove_approver(1);
    assert_eq!(poll_now(&mut rx), Some(ApproverGone));
    assert_eq!(t.decisions(), vec![("deny".into(), "approver gone".into())]);
}

#[test]
fn allow_session_only_when_permitted() {
    let mut t = T::new(settings(), true);
    let mut rx = t.ask("a.test", 443);
    let id = t.next()["id"].as_u64().expect("id");
    t.core.answer(id, "allow_session").expect("answer");
    assert_eq!(
        poll_now(&mut rx),
        Some(Denied),
        "refused without session_scope"
    );
    let resolved = t.next();
    assert_eq!(resolved["decision"], "deny");
    assert!(resolved["note"]
        .as_str()
        .is_some_and(|n| n.contains("session_scope")));

    let mut s = settings();
    s.session_scope = true;
    let mut t = T::new(s, true);
    let mut rx = t.ask("a.test", 443);
    let req = t.next();
    assert_eq!(req["session_allowed"], true);
    t.core
        .answer(req["id"].as_u64().expect("id"), "allow_session")
        .expect("answer");
    assert_eq!(poll_now(&mut rx), Some(Granted(Grant::Session)));
    let mut again = t.ask("a.test", 443);
    assert_eq!(
        poll_now(&mut again),
        Some(Granted(Grant::Remembered)),
        "no second prompt"
    );
    let mut other = t.ask("a.test", 22);
    assert_eq!(poll_now(&mut other), None, "only that destination");
    assert!(t.core.answer(1, "maybe").is_err());
}

#[test]
fn a_flood_is_limited_and_summarised() {
    let mut t = T::new(settings(), true);
    let start = std::time::Instant::now();
    let mut rxs: Vec<Receiver> = (0..1000)
        .map(|i| t.ask(&format!("h{}.test", i % 12), 1000 + i as u16))
        .collect();
    assert!(start.elapsed() < Duration::from_secs(5));
    assert_eq!(t.core.pending(), 5);
    let denied = rxs
        .iter_mut()
        .filter_map(poll_now)
        .filter(|o| *o == Flooded(Flood::QueueFull))
        .count();
    assert_eq!(denied, 995);
    for _ in 0..5 {
        assert_eq!(t.next()["type"], "request");
    }
    t.core.tick();
    let sum = t.next();
    assert_eq!(sum["type"], "summary");
    assert_eq!(sum["text"], "995 more requests to 12 hosts denied");
    // The per-minute limit holds even as prompts are answered.
    let mut s = settings();
    s.per_minute = 3;
    let mut t = T::new(s, true);
    for i in 0..3 {
        let _rx = t.ask("x.test", 1 + i);
        let id = t.next()["id"].as_u64().expect("id");
        t.core.answer(id, "deny").expect("answer");
        let _ = t.next();
    }
    let mut rx = t.ask("x.test", 99);
    assert_eq!(poll_now(&mut rx), Some(Flooded(Flood::RateLimit)));
    assert_eq!(
        t.decisions().last().cloned(),
        Some(("deny".into(), "rate limit".into()))
    );
}

#[test]
fn closing_denies_and_refuses_new_requests() {
    let mut t = T::new(settings(), true);
    let mut rx = t.ask("a.test", 443);
    let _ = t.next();
    t.core.close();
    assert_eq!(poll_now(&mut rx), Some(SandboxEnded));
    let mut rx = t.ask("b.test", 443);
    assert_eq!(poll_now(&mut rx), Some(SandboxEnded));
}

fn ask_file(t: &T, kind: AskKind, path: &str) -> Receiver {
    t.core.ask(
        Ask {
            key: Key {
                kind,
                host: path.into(),
                port: 0,
            },
            via: "read",
            rule: "ask_read /h/other".into(),
            fix: format!("--allow-read {path}"),
        },
        Default::default,
    )
}

#[test]
fn identical_file_requests_are_never_shared() {
    let mut t = T::new(settings(), true);
    let mut rx1 = ask_file(&t, AskKind::Read, "/h/other/f");
    let mut rx2 = ask_file(&t, AskKind::Read, "/h/other/f");
    let r1 = t.next();
    let r2 = t.next();
    assert_eq!(r1["kind"], "read");
    assert_eq!(r1["target"]["path"], "/h/other/f");
    assert!(r1["target"].get("host").is_none(), "{r1}");
    assert_ne!(r1["id"], r2["id"], "one prompt per open");
    t.core
        .answer(r1["id"].as_u64().expect("id"), "allow_once")
        .expect("answer");
    assert_eq!(poll_now(&mut rx1), Some(Granted(Grant::Once)));
    assert_eq!(poll_now(&mut rx2), None, "the other open still waits");
    t.core
        .answer(r2["id"].as_u64().expect("id"), "deny")
        .expect("answer");
    assert_eq!(poll_now(&mut rx2), Some(Denied));
}

#[test]
fn a_blocking_wait_ends_when_the_caller_is_gone() {
    let t = T::new(settings(), true);
    let rx = ask_file(&t, AskKind::Write, "/ws/.env");
    let start = std::time::Instant::now();
    assert_eq!(
        rx.wait(&|| start.elapsed() < Duration::from_millis(100)),
        Withdrawn
    );
    let rx = ask_file(&t, AskKind::Write, "/ws/.env");
    let none = T::new(settings(), false);
    let rx_none = ask_file(&none, AskKind::Write, "/ws/.env");
    assert_eq!(rx_none.wait(&|| true), NoApprover, "denied at once");
    drop(rx);
}

#[test]
fn the_terminal_approver_names_files_and_hosts() {
    let file = serde_json::json!({"kind": "read", "via": "read", "target": {"path": "/h/o/f\u{1b}[2J"},
        "process": {"pid": 3, "exe": "/usr/bin/cat", "cmdline": "cat /h/o/f"}, "rule": "ask_read /h/o"});
    let d = super::client::describe(&file);
    assert!(d.contains("wants to read /h/o/f"), "{d}");
    assert!(!d.contains('\u{1b}'), "{d}");
    let write = serde_json::json!({"kind": "write", "via": "create", "target": {"path": "/ws/.env"}, "rule": "ask_write"});
    assert!(super::client::describe(&write).contains("wants to create /ws/.env"));
    let net = serde_json::json!({"kind": "network", "target": {"host": "a.test", "port": 443}, "rule": "r"});
    assert!(super::client::describe(&net).contains("wants network a.test:443"));
}

type DoorFuture = std::pin::Pin<Box<dyn Future<Output = Outcome> + Send>>;

/// What the door would ask about `host`, through the same hook the door uses.
fn door_ask(core: &Arc<Core>, host: &str) -> DoorFuture {
    use cordon_net::Approver as _;
    let hook = super::DoorHook {
        core: core.clone(),
        who: None,
    };
    hook.ask(cordon_net::AskRequest {
        via: "connect",
        target: cordon_net::parse_host(host).expect("host"),
        port: 443,
        rule: "no rule: unknown = ask".into(),
        fix: format!("--allow-domain {host}"),
        peer: None,
    })
}

/// The hook's answer, waited for a bounded while (the broker decides on other threads).
fn answer_of(f: &mut DoorFuture) -> Option<Outcome> {
    let mut cx = Context::from_waker(Waker::noop());
    for _ in 0..200 {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return Some(v);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    None
}

#[test]
fn long_names_sharing_a_prefix_are_two_approvals_and_show_their_end() {
    let mut s = settings();
    s.session_scope = true;
    let mut t = T::new(s, true);
    let filler = ["x".repeat(60), "y".repeat(60), "z".repeat(40)].join(".");
    let good = format!("api.anthropic.com.{filler}.good.test");
    let evil = format!("api.anthropic.com.{filler}.evil.test");
    let mut rx_good = door_ask(&t.core, &good);
    let first = t.next();
    assert_eq!(first["type"], "request");
    assert_eq!(
        first["target"]["host"],
        good.as_str(),
        "the whole name is sent"
    );
    let shown = super::client::describe(&first);
    assert!(shown.contains(".good.test:443"), "{shown}");
    t.core
        .answer(first["id"].as_u64().expect("id"), "allow_session")
        .expect("answer");
    assert_eq!(answer_of(&mut rx_good), Some(Granted(Grant::Session)));
    assert_eq!(t.next()["type"], "resolved");
    // Same first 160+ characters, another owner: asked on its own, not covered by the session.
    let mut rx_evil = door_ask(&t.core, &evil);
    let second = t.next();
    assert_eq!(second["type"], "request", "{second}");
    assert_ne!(first["id"], second["id"]);
    let shown = super::client::describe(&second);
    assert!(
        shown.contains(".evil.test:443"),
        "the tail is visible: {shown}"
    );
    t.core
        .answer(second["id"].as_u64().expect("id"), "deny")
        .expect("answer");
    assert_eq!(answer_of(&mut rx_evil), Some(Denied));
    // The session allowance covers exactly the first name.
    let mut again = door_ask(&t.core, &good);
    assert_eq!(answer_of(&mut again), Some(Granted(Grant::Remembered)));
}

#[test]
fn a_registered_approver_is_waited_for_before_the_first_decision() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("audit.jsonl");
    let core = Core::with_rendezvous(
        settings(),
        Audit::open(Some(&log)).expect("audit"),
        Box::new(|| true),
    );
    assert!(core.rendezvous_pending());
    let (a, b) = UnixStream::pair().expect("pair");
    let c2 = core.clone();
    let joiner = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        c2.add_approver(1, Arc::new(Mutex::new(b)));
    });
    let started = std::time::Instant::now();
    assert!(core.await_approver(), "the approver arrived while waiting");
    assert!(started.elapsed() < super::broker::RENDEZVOUS);
    joiner.join().expect("join");
    assert!(!core.rendezvous_pending());
    drop(a);
}

#[test]
fn without_a_registered_approver_nothing_waits() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("audit.jsonl");
    let core = Core::with_rendezvous(
        settings(),
        Audit::open(Some(&log)).expect("audit"),
        Box::new(|| false),
    );
    let started = std::time::Instant::now();
    assert!(!core.await_approver());
    assert!(started.elapsed() < Duration::from_secs(1));
    // The rendezvous happens once: a registration appearing later changes nothing.
    assert!(!core.rendezvous_pending());
}

#[test]
fn registrations_count_only_while_their_process_lives() {
    let dir = tempfile::tempdir().expect("tempdir");
    assert!(!super::server::approver_registered(dir.path(), "x-1"));
    let r = super::Registration::new(dir.path(), None).expect("register");
    assert!(super::server::approver_registered(dir.path(), "x-1"));
    drop(r);
    assert!(!super::server::approver_registered(dir.path(), "x-1"));
    let only = super::Registration::new(dir.path(), Some("y-2")).expect("register");
    assert!(!super::server::approver_registered(dir.path(), "x-1"));
    assert!(super::server::approver_registered(dir.path(), "y-2"));
    drop(only);
    // A dead approver's file is ignored, and swept.
    std::fs::write(dir.path().join("999999999.approver"), "").expect("write");
    assert!(!super::server::approver_registered(dir.path(), "x-1"));
    super::sweep(dir.path());
    assert!(!dir.path().join("999999999.approver").exists());
}

#[test]
fn what_an_approver_sends_is_parsed_once_and_bad_lines_are_errors() {
    let mut t = T::new(settings(), true);
    let mut rx = t.ask("a.test", 443);
    let id = t.next()["id"].as_u64().expect("id");
    let handle = |l: &str| super::server::handle(&t.core, l.as_bytes());
    assert_eq!(handle(r#"{"type":"ping"}"#), Ok(()));
    for bad in [
        "not json",
        r#"{"type":"decision","decision":"deny"}"#,
        r#"{"type":"decision","id":"1","decision":"deny"}"#,
        r#"{"type":"shutdown"}"#,
        r#"[1]"#,
    ] {
        assert!(handle(bad).is_err(), "{bad}");
    }
    assert!(handle(&format!(
        r#"{{"type":"decision","id":{id},"decision":"maybe"}}"#
    ))
    .is_err());
    assert_eq!(poll_now(&mut rx), None, "nothing decided by a bad line");
    let line = format!(r#"{{"type":"decision","id":{id},"decision":"allow_once"}}"#);
    assert_eq!(handle(&line), Ok(()));
    assert_eq!(poll_now(&mut rx), Some(Granted(Grant::Once)));
}
