//! The path guard's configuration for a run and for each `cordon exec`: the policy's
//! [`FileRules`] (every decision is made there) plus what enforcement needs besides.

use crate::audit::{self, Audit};
use cordon_linux::pathguard::{Event, GuardConfig};
use cordon_policy::{AskPaths, FileRules, OwnConfig, ProtectSet};
use std::collections::HashSet;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::Arc;

/// What every path-guard configuration of a run is made from: the run command's, and one for
/// each command `cordon exec` adds, so both always get the same rules and asks.
#[derive(Clone)]
pub struct GuardInputs {
    pub home: PathBuf,
    /// Host-shared writable paths (protected even under a scratch directory).
    pub shared: Vec<PathBuf>,
    pub writable_roots: Vec<PathBuf>,
    /// Protected paths that exist: their inodes are refused under any name.
    pub protected_existing: Vec<PathBuf>,
    pub asks: AskPaths,
    pub audit: Audit,
    /// The unix sockets bound inside, shared by the run's command and every exec'd one.
    pub own_sockets: Arc<cordon_linux::pathguard::OwnSockets>,
    /// The active profiles' own `$HOME` configuration (`None` without a private layer).
    pub own: Option<Arc<OwnConfig>>,
}

impl GuardInputs {
    /// A path-guard configuration with protected paths `set` (compiled from the run's rules).
    pub fn config(&self, set: ProtectSet) -> GuardConfig {
        let protected_inodes: HashSet<(u64, u64)> = self
            .protected_existing
            .iter()
            .filter_map(|p| std::fs::symlink_metadata(p).ok())
            .filter(|m| m.is_file())
            .map(|m| (m.dev(), m.ino()))
            .collect();
        let audit = self.audit.clone();
        GuardConfig {
            rules: Arc::new(FileRules::new(
                set,
                self.home.clone(),
                self.shared.clone(),
                self.asks.clone(),
                self.own.clone(),
            )),
            writable_roots: self.writable_roots.clone(),
            protected_inodes,
            on_event: Box::new(move |e: Event| {
                audit.event(audit::Event::File(audit::FileOp {
                    op: e.op.name().into(),
                    path: e.path,
                    sandbox_pid: e.pid,
                    decision: if e.allowed {
                        audit::Allowed::Allow
                    } else {
                        audit::Allowed::Deny
                    },
                    rule: e.rule,
                }));
            }),
            net: None,
            asker: None,
            kvm: false,
            own_sockets: Arc::clone(&self.own_sockets),
        }
    }
}
