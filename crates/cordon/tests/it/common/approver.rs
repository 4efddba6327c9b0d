//! The test as an approver on a sandbox's approval socket (the JSON-lines protocol of
//! docs/approvals.md).

use super::wait_for;
use serde_json::Value;
use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A connected approver.
pub struct Approver {
    r: BufReader<UnixStream>,
    w: UnixStream,
    /// The sandbox id the broker greeted with.
    pub sandbox: String,
}

/// The first approval socket to appear in `dir` (bounded wait).
pub fn find_socket(dir: &Path) -> PathBuf {
    let mut found = None;
    let ok = wait_for(Duration::from_secs(30), || {
        found = fs::read_dir(dir).ok().and_then(|rd| {
            rd.flatten()
                .map(|e| e.path())
                .find(|p| p.extension().is_some_and(|e| e == "sock"))
        });
        found.is_some()
    });
    assert!(ok, "no approval socket appeared in {}", dir.display());
    found.expect("socket")
}

impl Approver {
    /// Connects to the socket appearing in `dir` and reads the broker's hello.
    pub fn connect(dir: &Path) -> Approver {
        let path = find_socket(dir);
        let meta = fs::metadata(&path).expect("socket metadata");
        assert_eq!(meta.permissions().mode() & 0o777, 0o600, "socket mode");
        // The file appears at bind(), a moment before listen(): retry briefly.
        let mut conn = None;
        let mut last = None;
        wait_for(Duration::from_secs(10), || {
            match super::unix_connect(&path) {
                Ok(c) => conn = Some(c),
                Err(e) => last = Some(e),
            }
            conn.is_some()
        });
        let s = conn.unwrap_or_else(|| {
            panic!(
                "cannot connect to the approval socket {}: {last:?}",
                path.display()
            )
        });
        s.set_read_timeout(Some(Duration::from_secs(30)))
            .expect("timeout");
        let w = s.try_clone().expect("clone");
        let mut a = Approver {
            r: BufReader::new(s),
            w,
            sandbox: String::new(),
        };
        let hello = a.next();
        assert_eq!(hello["type"], "hello", "{hello}");
        a.sandbox = hello["sandbox"].as_str().unwrap_or("").to_string();
        a
    }

    /// The next message (30 s at most).
    pub fn next(&mut self) -> Value {
        let mut line = String::new();
        match self.r.read_line(&mut line) {
            Ok(n) if n > 0 => serde_json::from_str(&line).expect("broker sends JSON"),
            other => panic!("no message from the broker: {other:?}"),
        }
    }

    /// Sets how long [`Approver::next`] and [`Approver::try_next`] wait.
    pub fn set_timeout(&self, d: Duration) {
        self.r.get_ref().set_read_timeout(Some(d)).expect("timeout");
    }

    /// The next message, or `None` at end of stream or timeout.
    pub fn try_next(&mut self) -> Option<Value> {
        let mut line = String::new();
        match self.r.read_line(&mut line) {
            Ok(n) if n > 0 => Some(serde_json::from_str(&line).expect("broker sends JSON")),
            _ => None,
        }
    }

    /// The next message of type `t`, skipping others (bounded).
    pub fn next_of(&mut self, t: &str) -> Value {
        for _ in 0..100 {
            let m = self.next();
            if m["type"] == t {
                return m;
            }
        }
        panic!("no {t} message in 100 messages");
    }

    /// Sends a decision for request `id`.
    pub fn decide(&mut self, id: &Value, decision: &str) {
        let m = serde_json::json!({"type": "decision", "id": id, "decision": decision});
        self.w
            .write_all(format!("{m}\n").as_bytes())
            .expect("send decision");
    }

    /// Writes raw bytes to the socket (malformed-input tests).
    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.w.write_all(bytes).expect("send");
    }

    /// Closes the write side (an approver going away).
    pub fn shutdown(&self) {
        let _ = self.w.shutdown(std::net::Shutdown::Both);
    }
}
