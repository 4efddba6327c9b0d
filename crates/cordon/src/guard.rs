//! The path guard's decisions: protected configuration is never created, written, replaced,
//! moved or deleted; renaming a directory that leads to protected paths is refused too.

use crate::audit::Audit;
use cordon_linux::pathguard::{Event, GuardConfig, Op, Rules, Verdict};
use cordon_policy::ProtectSet;
use serde_json::json;
use std::collections::HashSet;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Scratch space inside the private layer: gone at exit and never read by the host, so
/// protections do not apply there (`git clone URL /tmp/x` works). `$HOME`'s layer stays
/// protected (the agent and its shells read their configuration from there).
const SCRATCH: &[&str] = &["/tmp", "/var/tmp", "/dev/shm"];

struct ProtectRules {
    set: ProtectSet,
    /// Host-shared writable paths: protected even when they live under a scratch directory.
    shared: Vec<PathBuf>,
}

impl ProtectRules {
    fn scratch(&self, path: &Path) -> bool {
        SCRATCH.iter().any(|s| path.starts_with(s))
            && !self.shared.iter().any(|w| path.starts_with(w))
    }
}

impl Rules for ProtectRules {
    fn check(&self, op: Op, path: &Path) -> Verdict {
        if self.scratch(path) {
            return Verdict::Allow;
        }
        if let Some(rule) = self.set.matches(path) {
            return Verdict::Deny {
                errno: libc::EPERM,
                rule: format!("protect {rule} ({})", rule.origin),
            };
        }
        let moves = matches!(op, Op::RenameFrom | Op::RenameTo);
        if moves && self.set.is_ancestor(path) {
            return Verdict::Deny {
                errno: libc::EPERM,
                rule: "protect: this directory leads to protected paths".into(),
            };
        }
        Verdict::Allow
    }
}

fn op_name(op: Op) -> &'static str {
    match op {
        Op::Create => "create",
        Op::Write => "write",
        Op::Truncate => "truncate",
        Op::Mkdir => "mkdir",
        Op::Mknod => "mknod",
        Op::Symlink => "symlink",
        Op::LinkFrom => "link-from",
        Op::LinkTo => "link",
        Op::RenameFrom => "rename-from",
        Op::RenameTo => "rename-to",
        Op::Unlink => "unlink",
        Op::Rmdir => "rmdir",
    }
}

pub fn config(
    set: ProtectSet,
    shared: Vec<PathBuf>,
    writable_roots: Vec<PathBuf>,
    protected_existing: &[PathBuf],
    audit: Audit,
) -> GuardConfig {
    let protected_inodes: HashSet<(u64, u64)> = protected_existing
        .iter()
        .filter_map(|p| std::fs::symlink_metadata(p).ok())
        .filter(|m| m.is_file())
        .map(|m| (m.dev(), m.ino()))
        .collect();
    GuardConfig {
        rules: Arc::new(ProtectRules { set, shared }),
        writable_roots,
        protected_inodes,
        on_event: Box::new(move |e: Event| {
            audit.event(
                "file",
                json!({
                    "op": op_name(e.op),
                    "path": e.path,
                    "sandbox_pid": e.pid,
                    "decision": if e.allowed { "allow" } else { "deny" },
                    "rule": e.rule,
                }),
            );
        }),
        net: None,
        private_layer: true,
    }
}
