//! The broker's state: pending prompts (identical ones coalesced), the rate limit, the
//! session allowances, and the approvers to tell. Every outcome is audited with who
//! decided and how long it took. Fails closed: no approver, approver gone, timeout, full
//! queue or rate limit all deny.

use super::oneshot::{self, Sender};
use super::procinfo::Process;
use super::sanitize::{clean, clean_name, MAX_SHOWN};

/// Fixes are sent whole (they are meant to be copied); this only bounds them.
const MAX_FIX: usize = 16 * 1024;
/// Host names are at most 253 characters: shown whole.
const MAX_HOST: usize = 300;
use crate::audit::{Approval, AskKind, Asker, Audit, Decision, Request, Summary, Target};
use cordon_policy::{Flood, Grant, Outcome};
use std::collections::{HashMap, HashSet, VecDeque};
use std::io::Write;
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How a sandbox's approvals behave.
#[derive(Clone, Debug)]
pub struct Settings {
    /// The sandbox's id (also the socket's name).
    pub sandbox: String,
    /// The command the sandbox runs, for approvers to show.
    pub command: String,
    /// The workspace, for approvers to show.
    pub workspace: String,
    /// How long a prompt waits for an answer.
    pub timeout: Duration,
    /// Whether `allow_session` is honoured (`[approval] session_scope`).
    pub session_scope: bool,
    /// Most prompts pending at once; more are denied.
    pub max_pending: usize,
    /// Most new prompts per minute; more are denied.
    pub per_minute: usize,
}

impl Settings {
    /// Defaults for a sandbox: 5 pending prompts, 20 per minute.
    pub fn new(sandbox: String, timeout: Duration, session_scope: bool) -> Self {
        Settings {
            sandbox,
            command: String::new(),
            workspace: String::new(),
            timeout,
            session_scope,
            max_pending: 5,
            per_minute: 20,
        }
    }
}

/// What is asked about.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Key {
    /// A connection, a read or a write.
    pub kind: AskKind,
    /// Host name or address, or for files the path (sanitised).
    pub host: String,
    /// Port (0 for files).
    pub port: u16,
}

/// One question, as the door put it.
#[derive(Clone, Debug)]
pub struct Ask {
    pub key: Key,
    pub via: &'static str,
    pub rule: String,
    pub fix: String,
}

struct Prompt {
    key: Key,
    fix: String,
    waiters: Vec<Sender>,
    started: Instant,
    deadline: Instant,
    message: Message,
}

/// What the broker tells approvers, one JSON line each (docs/approvals.md); requests and
/// summaries are also audited as they were sent.
#[derive(Clone, Debug, serde::Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Message {
    /// The first line on a connection.
    Hello {
        version: u32,
        sandbox: String,
        command: String,
        workspace: String,
        session_scope: bool,
        /// Seconds a prompt waits.
        timeout: u64,
    },
    /// A question.
    Request(Request),
    /// How a question ended.
    Resolved {
        id: u64,
        sandbox: String,
        #[serde(flatten)]
        outcome: Outcome,
        #[serde(skip_serializing_if = "String::is_empty")]
        note: String,
    },
    /// Questions refused unasked since the last summary.
    Summary(Summary),
}

pub(crate) type Conn = Arc<Mutex<UnixStream>>;

#[derive(Default)]
struct State {
    next_id: u64,
    pending: HashMap<u64, Prompt>,
    by_key: HashMap<Key, u64>,
    session: HashSet<Key>,
    approvers: HashMap<u64, Conn>,
    recent: VecDeque<Instant>,
    dropped: u64,
    dropped_hosts: HashSet<String>,
    last_summary: Option<Instant>,
    closed: bool,
    /// Set once the rendezvous with a registered approver is over (it came, or the wait
    /// ran out, or none was registered): from then on nobody connected means "deny".
    rendezvous_over: bool,
}

/// How long a new sandbox waits, before its first decision, for an approver that has
/// registered itself (`cordon approvals` running already) to connect.
pub const RENDEZVOUS: Duration = Duration::from_secs(3);

/// The broker of one sandbox.
pub struct Core {
    pub settings: Settings,
    audit: Audit,
    state: Mutex<State>,
    /// Signalled when an approver connects.
    arrived: std::sync::Condvar,
    /// Whether a running approver has registered for this sandbox (see [`RENDEZVOUS`]).
    registered: Box<dyn Fn() -> bool + Send + Sync>,
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

impl Core {
    #[cfg(test)]
    pub fn new(settings: Settings, audit: Audit) -> Arc<Core> {
        Self::with_rendezvous(settings, audit, Box::new(|| false))
    }

    /// A broker that, before its first decision, waits (at most [`RENDEZVOUS`]) for an
    /// approver when `registered` says one is running.
    pub fn with_rendezvous(
        settings: Settings,
        audit: Audit,
        registered: Box<dyn Fn() -> bool + Send + Sync>,
    ) -> Arc<Core> {
        Arc::new(Core {
            settings,
            audit,
            state: Mutex::new(State::default()),
            arrived: std::sync::Condvar::new(),
            registered,
        })
    }

    /// Whether a decision now may first have to wait for a registered approver.
    pub fn rendezvous_pending(&self) -> bool {
        let st = self.lock();
        st.approvers.is_empty() && !st.rendezvous_over && !st.closed
    }

    /// Waits (bounded) for the approver that registered itself before this sandbox started
    /// to connect; returns whether an approver is connected. Blocks: call from a thread that
    /// may wait, never from the door's runtime.
    pub fn await_approver(&self) -> bool {
        let mut st = self.lock();
        if !st.approvers.is_empty() || st.rendezvous_over || st.closed {
            return !st.approvers.is_empty();
        }
        let registered = (self.registered)();
        if registered {
            let deadline = Instant::now() + RENDEZVOUS;
            while st.approvers.is_empty() && !st.closed {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                st = match self.arrived.wait_timeout(st, left) {
                    Ok((g, _)) => g,
                    Err(p) => p.into_inner().0,
                };
            }
        }
        st.rendezvous_over = true;
        !st.approvers.is_empty()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The first line an approver gets.
    pub fn hello(&self) -> Message {
        Message::Hello {
            version: 1,
            sandbox: self.settings.sandbox.clone(),
            command: clean(&self.settings.command, MAX_SHOWN),
            workspace: clean(&self.settings.workspace, MAX_SHOWN),
            session_scope: self.settings.session_scope,
            timeout: self.settings.timeout.as_secs(),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn audit_decision(
        &self,
        id: Option<u64>,
        key: &Key,
        fix: &str,
        outcome: Outcome,
        ms: u128,
        n: usize,
        note: &str,
    ) {
        self.audit.event(Approval::Decision(Decision {
            id,
            sandbox: self.settings.sandbox.clone(),
            kind: key.kind,
            target: key.host.clone(),
            port: key.port,
            outcome,
            ms: u64::try_from(ms).unwrap_or(u64::MAX),
            connections: n,
            note: note.into(),
            fix: fix.into(),
        }));
    }

    /// Asks about one connection; `process` is called only if a new prompt is shown.
    pub fn ask(&self, ask: Ask, process: impl FnOnce() -> Process) -> oneshot::Receiver {
        let (tx, rx) = oneshot::channel();
        let mut st = self.lock();
        let key = ask.key.clone();
        // Audits a refusal made without asking; the caller sends it.
        let refused = |st: &mut State, outcome: Outcome| {
            if let Outcome::Flooded(_) = outcome {
                st.dropped += 1;
                if st.dropped_hosts.len() < 10_000 {
                    st.dropped_hosts.insert(key.host.clone());
                }
            }
            self.audit_decision(None, &key, &ask.fix, outcome, 0, 1, "");
            outcome
        };
        if st.session.contains(&key) {
            drop(st);
            let outcome = Outcome::Granted(Grant::Remembered);
            let note = "allowed earlier for this session";
            self.audit_decision(None, &key, &ask.fix, outcome, 0, 1, note);
            tx.send(outcome);
            return rx;
        }
        if st.closed {
            tx.send(refused(&mut st, Outcome::SandboxEnded));
            return rx;
        }
        if st.approvers.is_empty() {
            tx.send(refused(&mut st, Outcome::NoApprover));
            return rx;
        }
        // A file approval admits one open: identical file requests are not shared.
        let shares = key.kind == AskKind::Network;
        if let Some(p) = st
            .by_key
            .get(&key)
            .copied()
            .filter(|_| shares)
            .and_then(|id| st.pending.get_mut(&id))
        {
            // Identical and pending now: decided together with the one shown.
            p.waiters.push(tx);
            return rx;
        }
        if st.pending.len() >= self.settings.max_pending {
            tx.send(refused(&mut st, Outcome::Flooded(Flood::QueueFull)));
            return rx;
        }
        let now = Instant::now();
        while st
            .recent
            .front()
            .is_some_and(|t| now.duration_since(*t) > Duration::from_secs(60))
        {
            st.recent.pop_front();
        }
        if st.recent.len() >= self.settings.per_minute {
            tx.send(refused(&mut st, Outcome::Flooded(Flood::RateLimit)));
            return rx;
        }
        st.recent.push_back(now);
        st.next_id += 1;
        let id = st.next_id;
        let p = process();
        let deadline_unix = unix_now() + self.settings.timeout.as_secs_f64();
        let target = if key.kind == AskKind::Network {
            Target::Host {
                host: clean_name(&key.host, MAX_HOST),
                port: key.port,
            }
        } else {
            Target::Path {
                path: key.host.clone(),
            }
        };
        let request = Request {
            id,
            sandbox: self.settings.sandbox.clone(),
            kind: key.kind,
            target,
            process: Asker {
                pid: p.pid,
                exe: p.exe,
                cmdline: p.cmdline,
            },
            via: ask.via.into(),
            rule: clean_name(&ask.rule, MAX_SHOWN),
            fix: clean(&ask.fix, MAX_FIX),
            deadline: deadline_unix.floor() as u64,
            session_allowed: self.settings.session_scope,
        };
        // The approvers get what is audited.
        let message = Message::Request(request.clone());
        self.audit.event(Approval::Request(request));
        if shares {
            st.by_key.insert(key.clone(), id);
        }
        st.pending.insert(
            id,
            Prompt {
                key,
                fix: clean(&ask.fix, MAX_FIX),
                waiters: vec![tx],
                started: now,
                deadline: now + self.settings.timeout,
                message: message.clone(),
            },
        );
        broadcast(&mut st, &message);
        rx
    }

    /// An approver's answer to prompt `id`.
    pub fn answer(&self, id: u64, decision: &str) -> Result<(), String> {
        let mut st = self.lock();
        let Some(p) = st.pending.get(&id) else {
            return Err(format!("no pending request {id}"));
        };
        let key = p.key.clone();
        match decision {
            "allow_once" => self.finish(&mut st, id, Outcome::Granted(Grant::Once), ""),
            "deny" => self.finish(&mut st, id, Outcome::Denied, ""),
            "allow_session" if self.settings.session_scope => {
                st.session.insert(key);
                self.finish(&mut st, id, Outcome::Granted(Grant::Session), "")
            }
            "allow_session" => self.finish(
                &mut st,
                id,
                Outcome::Denied,
                "allow_session refused: approval.session_scope is not enabled",
            ),
            other => {
                return Err(format!(
                    "unknown decision {:?} (allow_once, deny or allow_session)",
                    clean(other, 40)
                ))
            }
        }
        Ok(())
    }

    fn finish(&self, st: &mut State, id: u64, outcome: Outcome, note: &str) {
        let Some(p) = st.pending.remove(&id) else {
            return;
        };
        if st.by_key.get(&p.key) == Some(&id) {
            st.by_key.remove(&p.key);
        }
        let n = p.waiters.len();
        for w in p.waiters {
            w.send(outcome);
        }
        let ms = p.started.elapsed().as_millis();
        self.audit_decision(Some(id), &p.key, &p.fix, outcome, ms, n, note);
        let m = Message::Resolved {
            id,
            sandbox: self.settings.sandbox.clone(),
            outcome,
            note: note.into(),
        };
        broadcast(st, &m);
    }

    /// A new approver: greeted and told what is pending.
    pub fn add_approver(&self, conn_id: u64, conn: Conn) {
        let mut st = self.lock();
        let mut lines = vec![self.hello()];
        let mut pending: Vec<(&u64, &Prompt)> = st.pending.iter().collect();
        pending.sort_by_key(|(id, _)| **id);
        lines.extend(pending.into_iter().map(|(_, p)| p.message.clone()));
        if lines.iter().all(|l| send(&conn, l)) {
            st.approvers.insert(conn_id, conn);
            st.rendezvous_over = true;
            self.arrived.notify_all();
        }
    }

    /// An approver went away: if it was the last, everything pending is denied.
    pub fn remove_approver(&self, conn_id: u64) {
        let mut st = self.lock();
        st.approvers.remove(&conn_id);
        if st.approvers.is_empty() {
            self.deny_all(&mut st, Outcome::ApproverGone);
        }
    }

    fn deny_all(&self, st: &mut State, outcome: Outcome) {
        let ids: Vec<u64> = st.pending.keys().copied().collect();
        for id in ids {
            self.finish(st, id, outcome, "");
        }
    }

    /// Periodic work: timeouts, approvers lost on a failed write, the flood summary.
    pub fn tick(&self) {
        let mut st = self.lock();
        let now = Instant::now();
        let expired: Vec<u64> = st
            .pending
            .iter()
            .filter(|(_, p)| p.deadline <= now)
            .map(|(id, _)| *id)
            .collect();
        for id in expired {
            self.finish(&mut st, id, Outcome::Timeout, "");
        }
        if st.approvers.is_empty() && !st.pending.is_empty() {
            self.deny_all(&mut st, Outcome::ApproverGone);
        }
        let due = st
            .last_summary
            .is_none_or(|t| now.duration_since(t) >= Duration::from_secs(1));
        if due {
            self.summarise(&mut st);
        }
    }

    /// Tells approvers (once, not per request) how many requests were denied unasked.
    fn summarise(&self, st: &mut State) {
        let now = Instant::now();
        if st.dropped > 0 {
            let text = format!(
                "{} more request{} to {} host{} denied",
                st.dropped,
                if st.dropped == 1 { "" } else { "s" },
                st.dropped_hosts.len(),
                if st.dropped_hosts.len() == 1 { "" } else { "s" }
            );
            let summary = Summary {
                sandbox: self.settings.sandbox.clone(),
                denied: st.dropped,
                hosts: st.dropped_hosts.len(),
                text,
            };
            let m = Message::Summary(summary.clone());
            self.audit.event(Approval::Summary(summary));
            broadcast(st, &m);
            st.dropped = 0;
            st.dropped_hosts.clear();
            st.last_summary = Some(now);
        }
    }

    /// The sandbox ended: everything pending is denied, nothing more is asked.
    pub fn close(&self) {
        let mut st = self.lock();
        st.closed = true;
        self.arrived.notify_all();
        self.deny_all(&mut st, Outcome::SandboxEnded);
        self.summarise(&mut st);
        st.approvers.clear();
    }

    /// Prompts pending now (for tests).
    /// Whether anyone is connected to approve (checked at connect() time, so a program whose
    /// destination nobody can approve gets "connection refused" at once).
    pub fn has_approver(&self) -> bool {
        !self.lock().approvers.is_empty()
    }

    #[cfg(test)]
    pub fn pending(&self) -> usize {
        self.lock().pending.len()
    }
}

/// One JSON line to one approver; false if it is gone or stuck.
fn send(conn: &Conn, v: &Message) -> bool {
    let Ok(mut line) = serde_json::to_string(v) else {
        return false;
    };
    line.push('\n');
    match conn.lock() {
        Ok(mut s) => s.write_all(line.as_bytes()).is_ok(),
        Err(_) => false,
    }
}

/// Tells every approver; ones that cannot be written to are dropped.
fn broadcast(st: &mut State, v: &Message) {
    st.approvers.retain(|_, c| send(c, v));
}
