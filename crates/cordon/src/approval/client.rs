//! `cordon approvals [SANDBOX]`: a terminal approver. Connects to every sandbox's socket
//! (or the one named), lists pending requests with their context, and takes one key per
//! decision for the oldest one: a = allow once, d = deny, s = allow for the session (when
//! the sandbox's policy offers it), q = quit. Everything shown is sanitised again here.

use super::sanitize::{clean, clean_name, MAX_SHOWN};
use serde_json::Value;
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

enum Input {
    Line(usize, Value),
    Gone(usize),
    Key(u8),
    Eof,
}

struct Pending {
    conn: usize,
    id: u64,
    sandbox: String,
    text: String,
    session: bool,
}

/// Puts the terminal in no-echo, one-key-at-a-time mode; restores it when dropped.
struct RawMode(Option<rustix::termios::Termios>);

impl RawMode {
    fn enter() -> RawMode {
        use rustix::termios::{tcgetattr, tcsetattr, LocalModes, OptionalActions};
        let stdin = std::io::stdin();
        let Ok(old) = tcgetattr(&stdin) else {
            return RawMode(None);
        };
        let mut t = old.clone();
        t.local_modes
            .remove(LocalModes::ICANON | LocalModes::ECHO | LocalModes::ISIG);
        if tcsetattr(&stdin, OptionalActions::Now, &t).is_err() {
            return RawMode(None);
        }
        RawMode(Some(old))
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        if let Some(t) = &self.0 {
            let _ = rustix::termios::tcsetattr(
                std::io::stdin(),
                rustix::termios::OptionalActions::Now,
                t,
            );
        }
    }
}

fn s(v: &Value, k: &str) -> String {
    clean(v.get(k).and_then(|x| x.as_str()).unwrap_or(""), MAX_SHOWN)
}

/// One line describing a request.
pub fn describe(v: &Value) -> String {
    let t = v.get("target").cloned().unwrap_or_default();
    let name =
        |k: &str, max: usize| clean_name(t.get(k).and_then(|x| x.as_str()).unwrap_or(""), max);
    // Shown whole (a host name is at most 253 characters; the terminal wraps it), or for a
    // hostile broker's longer text, without its middle: the end says whose name it is.
    let host = name("host", 300);
    let port = t.get("port").and_then(|p| p.as_u64()).unwrap_or(0);
    let p = v.get("process").cloned().unwrap_or_default();
    let exe = s(&p, "exe");
    let cmd = s(&p, "cmdline");
    let who = match p.get("pid").and_then(|x| x.as_i64()) {
        Some(pid) if !exe.is_empty() => format!("{} (pid {pid}, {exe})", clean(&cmd, 60)),
        Some(pid) => format!("pid {pid}"),
        None => "a process".into(),
    };
    let what = match t.get("path") {
        Some(_) => name("path", 2 * MAX_SHOWN),
        None => format!("{host}:{port}"),
    };
    let kind = match s(v, "kind").as_str() {
        "read" => "to read".to_string(),
        "write" => format!("to {}", s(v, "via")),
        k => k.to_string(),
    };
    format!("{who} wants {kind} {what}  [rule: {}]", s(v, "rule"))
}

fn connect(path: &Path, idx: usize, tx: &mpsc::Sender<Input>) -> Option<UnixStream> {
    let s = UnixStream::connect(crate::dirs::socket_name(path).ok()?.path).ok()?;
    let r = s.try_clone().ok()?;
    let tx = tx.clone();
    std::thread::spawn(move || {
        let mut r = BufReader::new(r);
        loop {
            let mut line = Vec::new();
            match (&mut r).take(1 << 20).read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            if let Ok(v) = serde_json::from_slice::<Value>(&line) {
                if tx.send(Input::Line(idx, v)).is_err() {
                    return;
                }
            }
        }
        let _ = tx.send(Input::Gone(idx));
    });
    Some(s)
}

fn sockets(dir: &Path, only: Option<&str>) -> Vec<PathBuf> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return vec![];
    };
    let mut v: Vec<PathBuf> = rd
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            match only {
                Some(o) => name == format!("{o}.sock"),
                None => name.ends_with(".sock"),
            }
        })
        .collect();
    v.sort();
    v
}

fn say(out: &mut impl Write, line: &str) {
    let _ = out.write_all(format!("{line}\r\n").as_bytes());
    let _ = out.flush();
}

fn prompt(out: &mut impl Write, pending: &[Pending]) {
    match pending.first() {
        None => say(out, "(no pending requests; q quits)"),
        Some(p) => {
            let session = if p.session {
                "  s = allow for session"
            } else {
                ""
            };
            say(
                out,
                &format!(
                    "> [{}] {}\r\n  a = allow once  d = deny{session}  ({} pending)",
                    p.sandbox,
                    p.text,
                    pending.len()
                ),
            );
        }
    }
}

/// Runs the terminal approver until q, Ctrl-C/Ctrl-D or end of input.
pub fn approvals(sandbox: Option<String>) -> i32 {
    let dir = match crate::dirs::runtime_dir().and_then(|r| super::approvals_dir(&r)) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("cordon: {e}");
            return crate::EXIT_CORDON;
        }
    };
    let only = sandbox.as_deref().map(|s| clean(s, MAX_SHOWN));
    // Sandboxes started from now on wait for this approver before their first decision.
    super::sweep(&dir);
    let _registration = match super::Registration::new(&dir, only.as_deref()) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("cordon: {e}");
            return crate::EXIT_CORDON;
        }
    };
    let (tx, rx) = mpsc::channel();
    let keys = tx.clone();
    std::thread::spawn(move || {
        let mut b = [0u8; 1];
        let mut stdin = std::io::stdin().lock();
        loop {
            match stdin.read(&mut b) {
                Ok(1) => {
                    if keys.send(Input::Key(b[0])).is_err() {
                        return;
                    }
                }
                _ => {
                    let _ = keys.send(Input::Eof);
                    return;
                }
            }
        }
    });
    let _raw = RawMode::enter();
    let mut out = std::io::stdout().lock();
    let mut conns: Vec<Option<UnixStream>> = Vec::new();
    let mut known: HashMap<PathBuf, usize> = HashMap::new();
    let mut names: HashMap<usize, String> = HashMap::new();
    let mut pending: Vec<Pending> = Vec::new();
    say(
        &mut out,
        &format!("cordon approvals: watching {} (q quits)", dir.display()),
    );
    let mut last_scan = None::<std::time::Instant>;
    loop {
        // Frequent enough that a new sandbox, which waits for a registered approver, is
        // joined well within its wait (broker::RENDEZVOUS).
        if last_scan.is_none_or(|t| t.elapsed() >= Duration::from_millis(200)) {
            last_scan = Some(std::time::Instant::now());
            for p in sockets(&dir, only.as_deref()) {
                if known.contains_key(&p) {
                    continue;
                }
                let idx = conns.len();
                // A socket that does not answer yet is tried again at the next scan.
                if let Some(c) = connect(&p, idx, &tx) {
                    known.insert(p.clone(), idx);
                    conns.push(Some(c));
                }
            }
        }
        let ev = match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(ev) => ev,
            Err(mpsc::RecvTimeoutError::Timeout) => continue,
            Err(mpsc::RecvTimeoutError::Disconnected) => return 0,
        };
        match ev {
            Input::Eof | Input::Key(b'q') | Input::Key(3) | Input::Key(4) => return 0,
            Input::Key(k @ (b'a' | b'd' | b's')) => {
                let Some(p) = pending.first() else { continue };
                if k == b's' && !p.session {
                    say(
                        &mut out,
                        "allow for session is not offered by this sandbox's policy",
                    );
                    continue;
                }
                let decision = match k {
                    b'a' => "allow_once",
                    b's' => "allow_session",
                    _ => "deny",
                };
                let m = serde_json::json!({"type": "decision", "id": p.id, "decision": decision});
                if let Some(Some(c)) = conns.get_mut(p.conn) {
                    let _ = c.write_all(format!("{m}\n").as_bytes());
                }
                say(&mut out, &format!("[{}] {decision}: {}", p.sandbox, p.text));
                pending.remove(0);
                prompt(&mut out, &pending);
            }
            Input::Key(_) => {}
            Input::Gone(idx) => {
                if let Some(c) = conns.get_mut(idx) {
                    *c = None;
                }
                pending.retain(|p| p.conn != idx);
                if let Some(n) = names.get(&idx) {
                    say(&mut out, &format!("[{n}] ended"));
                }
                // Forget the path so a new sandbox reusing it is picked up.
                known.retain(|_, i| *i != idx);
            }
            Input::Line(idx, v) => {
                let sandbox = s(&v, "sandbox");
                match v.get("type").and_then(|t| t.as_str()) {
                    Some("hello") => {
                        say(
                            &mut out,
                            &format!(
                                "[{sandbox}] connected: {} in {}",
                                s(&v, "command"),
                                s(&v, "workspace")
                            ),
                        );
                        names.insert(idx, sandbox);
                    }
                    Some("request") => {
                        let Some(id) = v.get("id").and_then(|i| i.as_u64()) else {
                            continue;
                        };
                        let text = describe(&v);
                        say(&mut out, &format!("[{sandbox}] request {id}: {text}"));
                        pending.push(Pending {
                            conn: idx,
                            id,
                            sandbox,
                            text,
                            session: v
                                .get("session_allowed")
                                .and_then(|b| b.as_bool())
                                .unwrap_or(false),
                        });
                        prompt(&mut out, &pending);
                    }
                    Some("resolved") => {
                        let id = v.get("id").and_then(|i| i.as_u64());
                        let before = pending.len();
                        pending.retain(|p| !(p.conn == idx && Some(p.id) == id));
                        if pending.len() != before {
                            say(
                                &mut out,
                                &format!(
                                    "[{sandbox}] request {} decided: {} ({})",
                                    id.unwrap_or(0),
                                    s(&v, "decision"),
                                    s(&v, "by")
                                ),
                            );
                            prompt(&mut out, &pending);
                        }
                    }
                    Some("summary") => say(&mut out, &format!("[{sandbox}] {}", s(&v, "text"))),
                    Some("error") => say(
                        &mut out,
                        &format!("[{sandbox}] error: {}", s(&v, "message")),
                    ),
                    _ => {}
                }
            }
        }
    }
}
