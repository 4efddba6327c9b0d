//! Seccomp user-notification "path guard".
//!
//! Bind mounts and Landlock cannot protect names that do not exist yet, so the sandbox's
//! name-creating and name-moving syscalls are sent to a supervisor outside the sandbox. The
//! supervisor resolves the path itself, inside the sandbox's root, asks [`Rules`] and then
//! performs the call on the resolved parent directory and hands back the result (an fd for
//! opens). It never lets the original syscall continue: that would re-read the caller's
//! memory and re-walk the path after the check (TOCTOU).

mod ask;
mod caller;
mod confine;
mod connect;
mod filter;
mod handle;
mod identity;
mod meta;
mod notif;
mod open;
mod request;
mod resolve;
mod send;
mod serve;
mod subtree;
mod umask;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use ask::{Asker, FileAsk};
pub use connect::{NetRoute, OwnSockets};
pub use filter::{filter_program, filter_program_with, install, install_with_reads};
pub use notif::sync_wakeup_supported;
pub use serve::serve;

/// Descriptor `fd` of the process behind `pidfd`, taken with pidfd_getfd: the listener a
/// sandboxed process announces (see `sandbox::hand_over_listener`: it cannot travel by sendmsg
/// once its filter routes sendmsg), or a caller's socket.
pub fn take_listener(
    pidfd: &impl std::os::fd::AsFd,
    fd: i32,
) -> std::io::Result<std::os::fd::OwnedFd> {
    rustix::process::pidfd_getfd(pidfd, fd, rustix::process::PidfdGetfdFlags::empty())
        .map_err(std::io::Error::from)
}

/// The kind of name change (or open) a sandboxed process asked for: the policy's vocabulary.
pub use cordon_policy::FileOp as Op;

/// The answer of [`Rules::check`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The operation may happen.
    Allow,
    /// The operation fails with `errno`; `rule` names what decided (for the audit log).
    Deny {
        /// errno returned to the caller (e.g. `libc::EPERM`).
        errno: i32,
        /// Human-readable name of the deciding rule.
        rule: String,
    },
    /// A person decides, through [`GuardConfig::asker`]; without one it is denied.
    Ask {
        /// Human-readable name of the rule that asks.
        rule: String,
        /// For [`Op::Read`]: the host directory or file the rule names. An approved read is
        /// opened on the host beneath it without following any symlink.
        root: PathBuf,
    },
}

/// Decides, from a sandbox-absolute normalized path (no `.`/`..`, symlinks already resolved for
/// every component but the last), whether `op` may happen. The policy's compiled
/// [`FileRules`](cordon_policy::FileRules) in a run; tests of the enforcement bring their own.
pub trait Rules: Send + Sync {
    /// Decide one operation on one path.
    fn check(&self, op: Op, path: &Path) -> Verdict;
}

/// The policy decides; the guard only turns a decision into the caller's errno (a
/// refused change is EPERM, as the kernel says for a protected name).
impl Rules for cordon_policy::FileRules {
    fn check(&self, op: Op, path: &Path) -> Verdict {
        match self.decide(op, path) {
            cordon_policy::FileDecision::Allow => Verdict::Allow,
            cordon_policy::FileDecision::Deny(why) => Verdict::Deny {
                errno: libc::EPERM,
                rule: why.to_string(),
            },
            cordon_policy::FileDecision::Ask(ask) => Verdict::Ask {
                rule: ask.rule.to_string(),
                root: ask.path.clone(),
            },
        }
    }
}

/// One decision, for the audit log.
#[derive(Debug, Clone)]
pub struct Event {
    /// What was asked.
    pub op: Op,
    /// Sandbox-absolute path it was asked for.
    pub path: PathBuf,
    /// Host thread id of the caller.
    pub pid: i32,
    /// Whether it was allowed.
    pub allowed: bool,
    /// The deciding rule, when one decided.
    pub rule: Option<String>,
}

/// Everything [`serve`] needs to decide.
pub struct GuardConfig {
    /// The protected-path rules.
    pub rules: Arc<dyn Rules>,
    /// Sandbox-absolute directories where writes are allowed at all (workspace, allow_write paths,
    /// $HOME layer, /tmp, /var/tmp, /dev/shm, /dev (for device nodes)). Anything resolved outside
    /// them -> EACCES.
    pub writable_roots: Vec<PathBuf>,
    /// (st_dev, st_ino) of protected files that existed at start (to refuse hard links to them /
    /// their aliases).
    pub protected_inodes: HashSet<(u64, u64)>,
    /// Called for denied operations (and may be called for allowed ones) — the audit log.
    pub on_event: Box<dyn Fn(Event) + Send + Sync>,
    /// How `connect(2)` calls are routed (see [`NetRoute`]); `None`: only loopback and the
    /// sandbox's own unix sockets are reachable.
    pub net: Option<NetRoute>,
    /// Decides [`Verdict::Ask`]s; `None`: every ask is denied.
    pub asker: Option<Arc<dyn Asker>>,
    /// Whether /dev/kvm may be opened (bound into /dev only for the VM tier's QEMU).
    pub kvm: bool,
    /// The unix sockets the sandbox bound (the only ones it may reach by path); one set for
    /// every command of a sandbox.
    pub own_sockets: Arc<OwnSockets>,
}
