//! The path guard's decisions: protected configuration is never created, written, replaced,
//! moved or deleted; renaming a directory that leads to protected paths is refused too.

use crate::audit::Audit;
use cordon_linux::pathguard::{Event, GuardConfig, Op, Rules, Verdict};
use cordon_policy::{ProtectKind, ProtectSet};
use serde_json::json;
use std::collections::HashSet;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Scratch space inside the private layer: gone at exit and never read by the host, so
/// protections do not apply there (`git clone URL /tmp/x` works). `$HOME`'s layer stays
/// protected (the agent and its shells read their configuration from there).
const SCRATCH: &[&str] = &["/tmp", "/var/tmp", "/dev/shm"];

/// Directories of third-party packages unpacked by package managers. Packages ship
/// `AGENTS.md`, `CLAUDE.md`, `.vscode/`, `.github/`, even `.cargo/config.toml`; refusing them
/// would break `npm install`, `pip install` and `cargo build`, and no agent, IDE or git reads
/// configuration from inside these trees. Only the `anywhere` rules are lifted there: rules
/// anchored at `$HOME` or `/` still apply.
const DEPENDENCY_DIRS: &[&str] = &["node_modules", "site-packages", "dist-packages"];
/// The same for package managers' caches and toolchains under `$HOME`.
const HOME_CACHES: &[&str] = &[
    ".npm",
    ".cache",
    ".cargo/registry",
    ".cargo/git",
    ".rustup",
    "go/pkg/mod",
    ".m2/repository",
    ".gradle/caches",
];

struct ProtectRules {
    set: ProtectSet,
    /// Only the rules anchored at `$HOME` or `/`: what still applies inside dependency trees
    /// (`None` if it could not be built: then every rule applies there too). Built on first
    /// use, off the start-up path.
    anchored: std::sync::OnceLock<Option<ProtectSet>>,
    home: PathBuf,
    /// Host-shared writable paths: protected even when they live under a scratch directory.
    shared: Vec<PathBuf>,
}

impl ProtectRules {
    fn scratch(&self, path: &Path) -> bool {
        SCRATCH.iter().any(|s| path.starts_with(s))
            && !self.shared.iter().any(|w| path.starts_with(w))
    }

    fn in_dependencies(&self, path: &Path) -> bool {
        path.components()
            .any(|c| DEPENDENCY_DIRS.iter().any(|d| c.as_os_str() == *d))
            || HOME_CACHES
                .iter()
                .any(|c| path.starts_with(self.home.join(c)))
    }
}

impl Rules for ProtectRules {
    fn check(&self, op: Op, path: &Path) -> Verdict {
        if self.scratch(path) {
            return Verdict::Allow;
        }
        let deps = self.in_dependencies(path);
        let anchored = if deps {
            self.anchored
                .get_or_init(|| anchored_only(&self.set, &self.home))
                .as_ref()
        } else {
            None
        };
        let set = anchored.unwrap_or(&self.set);
        if let Some(rule) = set.matches(path) {
            return Verdict::Deny {
                errno: libc::EPERM,
                rule: format!("protect {rule} ({})", rule.origin),
            };
        }
        let moves = matches!(op, Op::RenameFrom | Op::RenameTo);
        if moves && set.is_ancestor(path) {
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

/// The rules of `set` that are anchored (at `$HOME` or `/`), as a set of their own.
fn anchored_only(set: &ProtectSet, home: &Path) -> Option<ProtectSet> {
    let rules: Vec<_> = set
        .rules()
        .iter()
        .filter(|r| r.kind != ProtectKind::Anywhere)
        .cloned()
        .collect();
    ProtectSet::from_rules(home, rules).ok()
}

pub fn config(
    home: &Path,
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
        rules: Arc::new(ProtectRules {
            anchored: std::sync::OnceLock::new(),
            set,
            home: home.to_path_buf(),
            shared,
        }),
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
        kvm: false,
    }
}
