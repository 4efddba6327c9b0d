//! The path guard's decisions: protected configuration is never created, written, replaced,
//! moved or deleted; renaming a directory that leads to protected paths is refused too.

use crate::audit::{self, Audit};
use cordon_linux::pathguard::{Event, GuardConfig, Op, Rules, Verdict};
use cordon_policy::{OwnConfig, ProtectSet};
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
/// would break `npm install`, `pip install` and `cargo build`. But the sandbox chooses these
/// names too, so only the `anywhere` rules that `data/protected.toml` marks as lifted there
/// are lifted; git, direnv and IDE task files stay protected (see that file's header).
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

/// Whether only anchored rules apply at `path` (a dependency tree or a package cache), as
/// the guard decides it.
pub fn anywhere_exempt(home: &Path, path: &Path) -> bool {
    path.components()
        .any(|c| DEPENDENCY_DIRS.iter().any(|d| c.as_os_str() == *d))
        || HOME_CACHES.iter().any(|c| path.starts_with(home.join(c)))
}

struct ProtectRules {
    set: ProtectSet,
    /// The rules that still apply inside dependency trees (anchored ones, and `anywhere` ones
    /// marked so); `None` if it could not be built: then every rule applies there too. Built
    /// on first use, off the start-up path.
    anchored: std::sync::OnceLock<Option<ProtectSet>>,
    home: PathBuf,
    /// Host-shared writable paths: protected even when they live under a scratch directory.
    shared: Vec<PathBuf>,
    /// Paths asked about (`ask_read`, `ask_write`), after every protection.
    asks: crate::fileask::AskPaths,
    /// The active profiles' own `$HOME` configuration: written to the private layer.
    own: Option<Arc<OwnConfig>>,
}

impl ProtectRules {
    fn scratch(&self, path: &Path) -> bool {
        // `$HOME`'s layer stays protected even when `$HOME` itself lies below /tmp.
        SCRATCH.iter().any(|s| path.starts_with(s))
            && !path.starts_with(&self.home)
            && !self.shared.iter().any(|w| path.starts_with(w))
    }

    /// In the private `$HOME` layer and nowhere it leaves it: not host-shared (workspace,
    /// allow_write, `[state] persist`), not the agent's own configuration (which `cordon config
    /// apply` copies out). What is written there is gone at exit (a named sandbox keeps it in
    /// its own state directory, as it keeps `/var/tmp`, a scratch place), so a repository shape
    /// there reaches no git the person runs; agents make them there (codex's plugin-marketplace
    /// clone under `~/.codex/.tmp`). Only where a private layer exists (`own` is set then).
    fn private_only(&self, path: &Path) -> bool {
        self.own
            .as_ref()
            .is_some_and(|own| own.owner(path).is_none())
            && path.starts_with(&self.home)
            && !self.shared.iter().any(|w| path.starts_with(w))
    }

    fn in_dependencies(&self, path: &Path) -> bool {
        anywhere_exempt(&self.home, path)
    }
}

impl Rules for ProtectRules {
    fn check(&self, op: Op, path: &Path) -> Verdict {
        if op == Op::Read {
            return self.asks.read(path);
        }
        match self.protect(op, path) {
            Verdict::Allow => self.asks.write(op, path),
            refused => refused,
        }
    }
}

impl ProtectRules {
    fn protect(&self, op: Op, path: &Path) -> Verdict {
        if self.scratch(path) {
            return Verdict::Allow;
        }
        // Before the agent's own configuration is let into the layer: `config apply` copies
        // that out.
        if makes_bare_repository(op, path) && !self.private_only(path) {
            return Verdict::Deny {
                errno: libc::EPERM,
                rule: "protect: a HEAD file outside .git makes a bare-repository-shaped directory"
                    .into(),
            };
        }
        if let Some(own) = &self.own {
            if own
                .writable_in_layer(path, &self.set, &self.shared)
                .is_some()
            {
                return Verdict::Allow;
            }
        }
        let deps = self.in_dependencies(path);
        let anchored = if deps {
            self.anchored
                .get_or_init(|| dependency_rules(&self.set, &self.home))
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

/// Git treats any directory holding `HEAD`, `objects/` and `refs/` as a bare repository and
/// reads its `config` (`core.fsmonitor`, hooks) when the user later runs git there. `HEAD` is
/// the one file git cannot do without, and outside a `.git` directory nothing legitimate
/// creates it (`git init`/`clone` in the workspace are refused anyway), so placing one there
/// is refused. Compared ASCII-case-insensitively like every protected name.
fn makes_bare_repository(op: Op, path: &Path) -> bool {
    let places = matches!(
        op,
        Op::Create
            | Op::Write
            | Op::Truncate
            | Op::Mkdir
            | Op::Mknod
            | Op::Symlink
            | Op::LinkTo
            | Op::RenameTo
    );
    let named_head = path
        .file_name()
        .is_some_and(|n| n.as_encoded_bytes().eq_ignore_ascii_case(b"HEAD"));
    let in_git_dir = path.parent().is_some_and(|dir| {
        dir.components().any(|c| {
            c.as_os_str()
                .as_encoded_bytes()
                .eq_ignore_ascii_case(b".git")
        })
    });
    places && named_head && !in_git_dir
}

use crate::approval::files::op_name;

/// The rules of `set` that apply inside dependency trees, as a set of their own.
fn dependency_rules(set: &ProtectSet, home: &Path) -> Option<ProtectSet> {
    let rules: Vec<_> = set
        .rules()
        .iter()
        .filter(|r| r.applies_in_dependency_trees())
        .cloned()
        .collect();
    ProtectSet::from_rules(home, rules).ok()
}

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
    pub asks: crate::fileask::AskPaths,
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
            rules: Arc::new(ProtectRules {
                anchored: std::sync::OnceLock::new(),
                set,
                home: self.home.clone(),
                shared: self.shared.clone(),
                asks: self.asks.clone(),
                own: self.own.clone(),
            }),
            writable_roots: self.writable_roots.clone(),
            protected_inodes,
            on_event: Box::new(move |e: Event| {
                audit.event(audit::Event::File(audit::FileOp {
                    op: op_name(e.op).into(),
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
