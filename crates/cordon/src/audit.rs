//! The audit trail: JSON lines, one [`Record`] per decision cordon takes or observes.
//!
//! The supervisor writes these types and `cordon log` reads them back: one definition of the
//! format (docs/cli.md lists the events). They live in the binary, beside both the writer and
//! the reader; cordon-policy and cordon-net give the vocabulary of their fields
//! ([`Outcome`], the door's [`Kind`] and [`Decided`]). Logs may hold what a sandboxed process
//! named (hosts, paths) and an `--audit FILE` inside the workspace may be written by the
//! sandbox itself: reading never trusts a line (see [`Record::parse`]).

use cordon_net::event::{Decided, Kind};
use cordon_policy::Outcome;
use serde::{Deserialize, Serialize};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

/// One line of the audit trail.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// Unix time in seconds.
    #[serde(default)]
    pub ts: f64,
    /// The supervisor's pid (one log may hold several runs: `--audit FILE` appends).
    #[serde(default)]
    pub pid: u32,
    /// What happened.
    #[serde(flatten)]
    pub event: Event,
}

impl Record {
    /// One line as read from a log: `None` for anything that is not a well-formed record
    /// (a line a sandboxed process garbled, or one from a newer cordon with other fields
    /// typed differently). Events of kinds this cordon does not know are [`Event::Other`].
    pub fn parse(line: &[u8]) -> Option<Record> {
        serde_json::from_slice(line).ok()
    }
}

/// Every event cordon writes, tagged by `"event"`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// The sandbox starts.
    Start(Start),
    /// A secret is in force (names, hosts and modes only: never a value or a placeholder).
    Secret(Secret),
    /// The approval broker listens.
    Approvals(ApprovalsSocket),
    /// The network door (and `--host-port`, `--publish`, the connect() pre-check).
    Net(Net),
    /// The path guard.
    File(FileOp),
    /// A question put to a person, and how it ended.
    Approval(Approval),
    /// `cordon exec` into a named sandbox.
    Exec(Exec),
    /// An agent's first-login state kept at exit.
    State(StateKept),
    /// An agent's settings saved at exit.
    Config(ConfigSaved),
    /// The sandbox ended.
    Stop(Stop),
    /// An event this cordon does not know (read only).
    #[serde(other)]
    Other,
}

impl Event {
    /// The sandbox the event names, for the events that name one.
    pub fn sandbox(&self) -> Option<&str> {
        match self {
            Event::Start(s) => Some(&s.sandbox),
            Event::Approvals(a) => Some(&a.sandbox),
            Event::Approval(Approval::Request(r)) => Some(&r.sandbox),
            Event::Approval(Approval::Decision(d)) => Some(&d.sandbox),
            Event::Approval(Approval::Summary(s)) => Some(&s.sandbox),
            _ => None,
        }
    }
}

/// `start`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Start {
    pub argv: Vec<String>,
    pub workspace: PathBuf,
    /// Only for an audit file someone asked for (digesting costs start-up time).
    pub policy_digest: Option<String>,
    pub writable: Vec<PathBuf>,
    pub hidden: Vec<PathBuf>,
    pub protected_binds: usize,
    /// `door` or `none`.
    pub network: String,
    pub sandbox: String,
    pub approvals: bool,
}

/// `secret`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Secret {
    pub name: String,
    pub source: String,
    pub hosts: Vec<String>,
    pub inject: String,
    pub intercepted: bool,
}

/// `approvals`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ApprovalsSocket {
    pub sandbox: String,
    pub socket: PathBuf,
}

/// `net`: the door's [`cordon_net::Event`] as written. `kind` and `decision` must be there
/// (a line without them says nothing); the rest may be missing.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Net {
    pub kind: Kind,
    /// The listener or forwarder: `http`, `connect`, `socks`, `transparent`, `dns`,
    /// `host-port`, `publish`.
    #[serde(default)]
    pub via: String,
    #[serde(default)]
    pub target: String,
    #[serde(default)]
    pub port: u16,
    pub decision: Decided,
    #[serde(default)]
    pub rule: String,
    #[serde(default)]
    pub reason: String,
    #[serde(default)]
    pub fix: String,
    #[serde(default)]
    pub bytes_up: u64,
    #[serde(default)]
    pub bytes_down: u64,
    /// For a destination the policy said to ask about: how the question ended (the
    /// approval event records the question).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asked: Option<Outcome>,
}

/// A refusal, to be filled in (the door's events are converted whole).
impl Default for Net {
    fn default() -> Self {
        cordon_net::Event::new(Kind::Deny, "", String::new(), 0).into()
    }
}

impl From<cordon_net::Event> for Net {
    fn from(e: cordon_net::Event) -> Self {
        Net {
            kind: e.kind,
            via: e.via.into(),
            target: e.target,
            port: e.port,
            decision: e.decision,
            rule: e.rule,
            reason: e.reason,
            fix: e.fix,
            bytes_up: e.bytes_up,
            bytes_down: e.bytes_down,
            asked: e.asked,
        }
    }
}

/// Allowed or refused, for the path guard's events.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Allowed {
    /// A line without a decision is no denial.
    #[default]
    Allow,
    Deny,
}

/// `file`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct FileOp {
    /// How `cordon log` names the operation (`write`, `rename-to`, ...).
    pub op: String,
    pub path: PathBuf,
    pub sandbox_pid: i32,
    pub decision: Allowed,
    pub rule: Option<String>,
}

/// What a question is about.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AskKind {
    /// A connection.
    #[default]
    Network,
    /// A read of an `ask_read` (or strict-mode) path.
    Read,
    /// A change to an `ask_write` path.
    Write,
}

impl AskKind {
    /// The spelling on the wire.
    pub fn name(self) -> &'static str {
        match self {
            AskKind::Network => "network",
            AskKind::Read => "read",
            AskKind::Write => "write",
        }
    }
}

/// `approval`, by `"phase"`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "phase", rename_all = "snake_case")]
pub enum Approval {
    /// A question shown to the approvers (as they were sent it).
    Request(Request),
    /// How a question ended.
    Decision(Decision),
    /// Questions refused unasked since the last summary (rate limit, full queue).
    Summary(Summary),
}

/// What a question names: a host and port, or a path.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Target {
    Host { host: String, port: u16 },
    Path { path: String },
}

impl Default for Target {
    fn default() -> Self {
        Target::Path {
            path: String::new(),
        }
    }
}

/// The process behind a question.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Asker {
    pub pid: Option<i64>,
    pub exe: String,
    pub cmdline: String,
}

/// A question as the approvers get it (docs/approvals.md), and as audited.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Request {
    pub id: u64,
    pub sandbox: String,
    pub kind: AskKind,
    pub target: Target,
    pub process: Asker,
    pub via: String,
    pub rule: String,
    pub fix: String,
    /// Unix seconds.
    pub deadline: u64,
    pub session_allowed: bool,
}

/// How a question ended: the [`Outcome`] as `decision` and `by`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    /// The prompt's id (`None`: refused or allowed without a prompt).
    #[serde(default)]
    pub id: Option<u64>,
    #[serde(default)]
    pub sandbox: String,
    #[serde(default)]
    pub kind: AskKind,
    /// The host or path asked about.
    #[serde(default)]
    pub target: String,
    #[serde(default)]
    pub port: u16,
    #[serde(flatten)]
    pub outcome: Outcome,
    /// How long the question was pending.
    #[serde(default)]
    pub ms: u64,
    /// How many held connections the answer decided.
    #[serde(default)]
    pub connections: usize,
    #[serde(default)]
    pub note: String,
    #[serde(default)]
    pub fix: String,
}

/// `approval` summary.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Summary {
    pub sandbox: String,
    pub denied: u64,
    pub hosts: usize,
    pub text: String,
}

/// `exec`, by `"phase"`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "phase", rename_all = "snake_case")]
pub enum Exec {
    /// A command joined the sandbox.
    Started {
        #[serde(default)]
        client_pid: i32,
    },
    /// A request to join was refused.
    Refused {
        #[serde(default)]
        error: String,
    },
}

/// `state`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct StateKept {
    pub kept: PathBuf,
}

/// `config`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ConfigSaved {
    pub saved: PathBuf,
    pub profile: String,
}

/// `stop`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Stop {
    pub status: i32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A cloneable sink; a disabled one drops events.
#[derive(Clone, Default)]
pub struct Audit {
    file: Option<Arc<Mutex<File>>>,
}

impl Audit {
    pub fn open(path: Option<&Path>) -> Result<Self, String> {
        let Some(path) = path else {
            return Ok(Self::default());
        };
        // `-`: the standard output cordon was given, as is (in a pod, what `kubectl logs`
        // shows; re-opening /dev/stdout there is refused: the pipe belongs to the node's root).
        let file = if path == Path::new("-") {
            use std::os::fd::AsFd;
            std::io::stdout()
                .as_fd()
                .try_clone_to_owned()
                .map(File::from)
                .map_err(|e| format!("cannot use standard output for audit events: {e}"))?
        } else {
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|e| format!("cannot open the audit file {}: {e}", path.display()))?
        };
        Ok(Self {
            file: Some(Arc::new(Mutex::new(file))),
        })
    }

    /// Whether events are written at all (so costly fields can be skipped otherwise).
    pub fn enabled(&self) -> bool {
        self.file.is_some()
    }

    /// Appends one event, stamped with the time and cordon's pid.
    pub fn event(&self, event: impl Into<Event>) {
        let Some(file) = &self.file else { return };
        let ts = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        let record = Record {
            ts,
            pid: std::process::id(),
            event: event.into(),
        };
        let Ok(mut line) = serde_json::to_string(&record) else {
            return;
        };
        line.push('\n');
        if let Ok(mut f) = file.lock() {
            let _ = f.write_all(line.as_bytes());
        }
    }
}

impl From<cordon_net::Event> for Event {
    fn from(e: cordon_net::Event) -> Self {
        Event::Net(e.into())
    }
}

impl From<Net> for Event {
    fn from(n: Net) -> Self {
        Event::Net(n)
    }
}

impl From<Approval> for Event {
    fn from(a: Approval) -> Self {
        Event::Approval(a)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cordon_policy::{Flood, Grant};

    fn round_trip(e: Event) {
        let r = Record {
            ts: 12.5,
            pid: 7,
            event: e,
        };
        let line = serde_json::to_string(&r).expect("serialise");
        assert_eq!(Record::parse(line.as_bytes()), Some(r), "{line}");
    }

    #[test]
    fn every_event_round_trips() {
        round_trip(Event::Start(Start {
            argv: vec!["claude".into()],
            sandbox: "claude-1".into(),
            policy_digest: Some("ab".into()),
            ..Start::default()
        }));
        round_trip(Event::Net(Net {
            kind: Kind::Deny,
            decision: Decided::Deny,
            target: "x.test".into(),
            port: 443,
            asked: Some(Outcome::Timeout),
            ..Net::default()
        }));
        round_trip(Event::File(FileOp {
            op: "write".into(),
            path: "/ws/.git/config".into(),
            rule: Some("protected: git".into()),
            ..FileOp::default()
        }));
        round_trip(Event::Approval(Approval::Request(Request {
            id: 3,
            target: Target::Host {
                host: "a.test".into(),
                port: 443,
            },
            ..Request::default()
        })));
        round_trip(Event::Approval(Approval::Request(Request {
            kind: AskKind::Read,
            target: Target::Path {
                path: "/h/f".into(),
            },
            ..Request::default()
        })));
        for outcome in [
            Outcome::Granted(Grant::Remembered),
            Outcome::Flooded(Flood::QueueFull),
            Outcome::NoApprover,
        ] {
            round_trip(Event::Approval(Approval::Decision(Decision {
                id: None,
                sandbox: "s".into(),
                kind: AskKind::Write,
                target: "/ws/.env".into(),
                port: 0,
                outcome,
                ms: 4,
                connections: 1,
                note: String::new(),
                fix: "f".into(),
            })));
        }
        round_trip(Event::Approval(Approval::Summary(Summary::default())));
        round_trip(Event::Exec(Exec::Started { client_pid: 4 }));
        round_trip(Event::Exec(Exec::Refused { error: "e".into() }));
        round_trip(Event::Stop(Stop {
            status: 125,
            error: Some("x".into()),
        }));
        round_trip(Event::Secret(Secret::default()));
        round_trip(Event::Approvals(ApprovalsSocket::default()));
        round_trip(Event::State(StateKept::default()));
        round_trip(Event::Config(ConfigSaved::default()));
    }

    #[test]
    fn the_written_fields_keep_their_names() {
        let r = Record {
            ts: 1.0,
            pid: 2,
            event: Event::Approval(Approval::Decision(Decision {
                id: Some(9),
                sandbox: "s".into(),
                kind: AskKind::Network,
                target: "a.test".into(),
                port: 80,
                outcome: Outcome::Timeout,
                ms: 0,
                connections: 1,
                note: String::new(),
                fix: String::new(),
            })),
        };
        let v = serde_json::to_value(&r).expect("value");
        for (k, want) in [
            ("event", "approval"),
            ("phase", "decision"),
            ("kind", "network"),
            ("decision", "deny"),
            ("by", "timeout"),
        ] {
            assert_eq!(v[k], want, "{v}");
        }
        let net = serde_json::to_value(Record {
            ts: 1.0,
            pid: 2,
            event: Event::Net(Net::default()),
        })
        .expect("value");
        assert_eq!(
            (&net["event"], &net["kind"]),
            (&"net".into(), &"deny".into())
        );
        assert!(net.get("asked").is_none(), "{net}");
    }

    #[test]
    fn hostile_lines_are_skipped_or_kept_apart_never_trusted() {
        for bad in [
            &b"not json"[..],
            b"{\"event\":\"net\",\"port\":\"443\"}",
            b"{\"event\":\"net\",\"port\":70000}",
            b"{\"event\":\"approval\",\"phase\":\"decision\",\"decision\":\"allow_once\",\"by\":\"timeout\"}",
            b"{\"event\":\"approval\",\"phase\":\"bogus\"}",
            b"[1,2]",
            b"\xff\xfe",
            b"{\"ts\":\"now\",\"event\":\"stop\"}",
        ] {
            assert_eq!(Record::parse(bad), None, "{}", String::from_utf8_lossy(bad));
        }
        let newer = Record::parse(b"{\"ts\":3,\"event\":\"from-the-future\",\"x\":1}");
        assert_eq!(newer.map(|r| r.event), Some(Event::Other));
        let sparse =
            Record::parse(b"{\"event\":\"net\",\"kind\":\"close\",\"decision\":\"error\"}");
        assert!(
            matches!(sparse.map(|r| r.event), Some(Event::Net(n)) if n.kind == Kind::Close && n.port == 0)
        );
    }
}
