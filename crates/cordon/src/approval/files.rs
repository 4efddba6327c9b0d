//! The path guard's questions (`ask_read`, `ask_write`, strict mode) put to the broker.
//!
//! The guard's workers are confined (Landlock) and cannot read another process's `exe`
//! link, so one unconfined thread, started here, names the process and files the prompt;
//! the worker then blocks on the answer (bounded: the broker times every prompt out).

use super::broker::{Ask, Core, Key};
use super::oneshot::Receiver;
use super::procinfo;
use super::sanitize::{clean, clean_name};

/// Paths are shown whole up to this many characters (terminals wrap them), beyond it without
/// their middle; the key then carries a digest of the real name (see [`distinct`]).
const MAX_PATH: usize = 400;
use crate::audit::AskKind;
use cordon_linux::pathguard::{Asker, FileAsk, Op};
use cordon_policy::Outcome;
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Mutex};

type Job = (FileAsk, Sender<Receiver>);

/// The broker as the path guard's [`Asker`].
pub struct FileAsker {
    tx: Mutex<Sender<Job>>,
}

/// The policy line that would stop the question for good.
fn fix(op: Op, path: &str) -> String {
    if op == Op::Read {
        format!("--allow-read {path}  or  [filesystem] allow_read = [\"{path}\"]")
    } else {
        format!("remove the [filesystem] ask_write entry that covers {path}")
    }
}

/// The path as the key of a prompt and of a session allowance: as shown, plus a digest of
/// the real name when showing it lost something (a cut, a hidden character), so two paths
/// that look alike never share an answer.
fn distinct(real: &std::path::Path, shown: &str) -> String {
    use sha2::{Digest, Sha256};
    use std::os::unix::ffi::OsStrExt;
    let raw = real.as_os_str().as_bytes();
    if raw == shown.as_bytes() {
        return shown.to_string();
    }
    let d = Sha256::digest(raw);
    let hex: String = d.iter().take(6).map(|b| format!("{b:02x}")).collect();
    format!("{shown} [name shortened or cleaned; id {hex}]")
}

impl FileAsker {
    /// Starts the naming thread (call from an unconfined thread).
    pub(crate) fn start(core: Arc<Core>) -> Result<Arc<FileAsker>, String> {
        let (tx, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("approval-files".into())
            .spawn(move || {
                for (req, reply) in rx {
                    let path = clean_name(&req.path.to_string_lossy(), MAX_PATH);
                    // The fix names the whole path (it is meant to be pasted).
                    let whole = clean(&req.path.to_string_lossy(), usize::MAX);
                    let ask = Ask {
                        key: Key {
                            kind: if req.op == Op::Read {
                                AskKind::Read
                            } else {
                                AskKind::Write
                            },
                            host: distinct(&req.path, &path),
                            port: 0,
                        },
                        via: req.op.name(),
                        rule: req.rule.clone(),
                        fix: fix(req.op, &whole),
                    };
                    core.await_approver();
                    let rx = core.ask(ask, || procinfo::of_task(req.tid, req.pid));
                    let _ = reply.send(rx);
                }
            })
            .map_err(|e| format!("cannot start the file approval thread: {e}"))?;
        Ok(Arc::new(FileAsker { tx: Mutex::new(tx) }))
    }
}

impl Asker for FileAsker {
    fn ask(&self, req: FileAsk, waiting: &dyn Fn() -> bool) -> Outcome {
        let (rtx, rrx) = mpsc::channel();
        let sent = match self.tx.lock() {
            Ok(tx) => tx.send((req, rtx)).is_ok(),
            Err(_) => false,
        };
        // The naming thread is gone: nobody can be asked (fails closed).
        if !sent {
            return Outcome::NoApprover;
        }
        match rrx.recv() {
            Ok(answer) => answer.wait(waiting),
            Err(_) => Outcome::NoApprover,
        }
    }
}
