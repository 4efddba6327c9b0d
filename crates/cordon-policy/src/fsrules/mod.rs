//! The path guard's decisions, compiled from the policy: which name changes and opens the
//! sandbox may make ([`FileRules::decide`]). Enforcement (`cordon-linux`'s path guard) resolves
//! each path and obeys; it decides nothing itself.
//!
//! In order: scratch directories are exempt; an active profile's own `$HOME` configuration
//! lands in the private layer; protected paths (with dependency trees lifting what they
//! lift) are refused; so is a `HEAD` that makes a bare-repository shape, and moving a
//! directory that leads to protected paths; then `ask_write` asks. Reads ask only where
//! `ask_read` or strict mode says so.

mod asks;
pub(crate) mod exempt;

#[cfg(test)]
mod tests;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::profile::OwnConfig;
use crate::protect::{ProtectRule, ProtectSet};
pub use asks::{leads_to, AskKind, AskPaths, AskRoot, AskRule};
pub use exempt::{ExemptKind, Exemption, EXEMPTIONS};

/// The kind of name change (or open) a sandboxed process asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileOp {
    /// A new regular file through open/openat/creat with O_CREAT (also existing files opened so).
    Create,
    /// An existing file opened for writing or truncation without O_CREAT.
    Write,
    /// truncate(2) of an existing file by name.
    Truncate,
    /// mkdir/mkdirat.
    Mkdir,
    /// mknod/mknodat (regular files, FIFOs and sockets only).
    Mknod,
    /// The new name of symlink/symlinkat.
    Symlink,
    /// The existing name a hard link is made from.
    LinkFrom,
    /// The new name a hard link is made at.
    LinkTo,
    /// The old name of a rename (and, for directories, every name beneath it).
    RenameFrom,
    /// The new name of a rename (and, for directories, every name beneath it).
    RenameTo,
    /// unlink/unlinkat.
    Unlink,
    /// rmdir/unlinkat(AT_REMOVEDIR).
    Rmdir,
    /// A read-only open (routed only when some path is asked about on read).
    Read,
    /// chmod, chown, utimes, setxattr or removexattr of an existing file or directory.
    SetAttr,
}

impl FileOp {
    /// The operation's name in the audit, `cordon log` and approval requests.
    pub fn name(self) -> &'static str {
        match self {
            FileOp::Create => "create",
            FileOp::Write => "write",
            FileOp::Truncate => "truncate",
            FileOp::Mkdir => "mkdir",
            FileOp::Mknod => "mknod",
            FileOp::Symlink => "symlink",
            FileOp::LinkFrom => "link-from",
            FileOp::LinkTo => "link",
            FileOp::RenameFrom => "rename-from",
            FileOp::RenameTo => "rename-to",
            FileOp::Unlink => "unlink",
            FileOp::Rmdir => "rmdir",
            FileOp::Read => "read",
            FileOp::SetAttr => "setattr",
        }
    }

    /// Whether the operation puts something at its path (a new name or new content there).
    fn places(self) -> bool {
        matches!(
            self,
            FileOp::Create
                | FileOp::Write
                | FileOp::Truncate
                | FileOp::Mkdir
                | FileOp::Mknod
                | FileOp::Symlink
                | FileOp::LinkTo
                | FileOp::RenameTo
        )
    }

    fn moves(self) -> bool {
        matches!(self, FileOp::RenameFrom | FileOp::RenameTo)
    }
}

/// Where a path lies, as the rules see it (the context every rule may weigh).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// A scratch directory of the private layer (not `$HOME`, not host-shared).
    Scratch,
    /// A path the host shares writable (the workspace, `allow_write`).
    HostShared,
    /// `$HOME`'s private layer (or, without one, `$HOME` itself).
    HomeLayer,
    /// Anywhere else.
    Elsewhere,
}

/// Why a change is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileRefusal<'a> {
    /// A protected path.
    Protected(&'a ProtectRule),
    /// A `HEAD` outside `.git` ([`makes_bare_repository`]).
    BareRepository,
    /// Moving a directory would move protected paths below it.
    LeadsToProtected,
}

impl fmt::Display for FileRefusal<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FileRefusal::Protected(rule) => write!(f, "protect {rule} ({})", rule.origin),
            FileRefusal::BareRepository => f.write_str(
                "protect: a HEAD file outside .git makes a bare-repository-shaped directory",
            ),
            FileRefusal::LeadsToProtected => {
                f.write_str("protect: this directory leads to protected paths")
            }
        }
    }
}

/// The refusals made by code rather than data, as `policy show` lists them: (what, why).
pub const BUILTIN_REFUSALS: &[(&str, &str)] = &[
    (
        "HEAD outside .git",
        "with objects/ and refs/ beside it git takes the directory for a bare repository and runs its config's core.fsmonitor when the person runs git there on the host; not refused in scratch, nor in the private $HOME layer outside the agent's own configuration (what stays there reaches no host git)",
    ),
    (
        "moving a directory that leads to protected paths",
        "a rename would carry protected files to a name no rule protects, or swap in a directory the sandbox filled",
    ),
];

/// One decision of [`FileRules::decide`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileDecision<'a> {
    /// The operation may happen.
    Allow,
    /// Refused, never asked about.
    Deny(FileRefusal<'a>),
    /// A person decides (`ask_read`, `ask_write`, strict mode).
    Ask(&'a AskRoot),
}

/// Whether `op` makes `path` a bare repository's `HEAD`: git treats any directory holding
/// `HEAD`, `objects/` and `refs/` as a bare repository and reads its `config`
/// (`core.fsmonitor`, hooks) when the user later runs git there. `HEAD` is the one file git
/// cannot do without, and outside a `.git` directory nothing legitimate in a host-visible
/// place creates it (`git init`/`clone` in the workspace are refused anyway). Compared
/// ASCII-case-insensitively like every protected name. Where it is refused is
/// [`FileRules`]'s decision (not in scratch, nor where only the private layer holds it).
pub fn makes_bare_repository(op: FileOp, path: &Path) -> bool {
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
    op.places() && named_head && !in_git_dir
}

/// The path guard's rules for one sandbox.
#[derive(Debug)]
pub struct FileRules {
    set: ProtectSet,
    home: PathBuf,
    /// Host-shared writable paths: protected even when they live under a scratch directory.
    shared: Vec<PathBuf>,
    /// Paths asked about, after every protection.
    asks: AskPaths,
    /// The active profiles' own `$HOME` configuration, written to the private layer (`None`
    /// without one).
    own: Option<Arc<OwnConfig>>,
}

impl FileRules {
    /// Rules from the run's protected set, `$HOME`, the host-shared writable paths, the asks
    /// and the profiles' own configuration.
    pub fn new(
        set: ProtectSet,
        home: PathBuf,
        shared: Vec<PathBuf>,
        asks: AskPaths,
        own: Option<Arc<OwnConfig>>,
    ) -> Self {
        FileRules {
            set,
            home,
            shared,
            asks,
            own,
        }
    }

    /// Where `path` lies.
    pub fn place(&self, path: &Path) -> Place {
        let shared = self.shared.iter().any(|w| path.starts_with(w));
        let home = path.starts_with(&self.home);
        if shared {
            Place::HostShared
        } else if home {
            Place::HomeLayer
        } else if exempt::in_scratch_dir(path) {
            // `$HOME`'s layer stays protected even when `$HOME` itself lies below /tmp.
            Place::Scratch
        } else {
            Place::Elsewhere
        }
    }

    /// Decides `op` on `path` (sandbox-absolute, normalised, every component but the last
    /// resolved).
    pub fn decide(&self, op: FileOp, path: &Path) -> FileDecision<'_> {
        if op == FileOp::Read {
            return self.asks.read(path);
        }
        match self.refusal(op, path) {
            Some(r) => FileDecision::Deny(r),
            None => self.asks.write(path),
        }
    }

    /// In the private `$HOME` layer and nowhere it leaves it: not host-shared (workspace,
    /// allow_write, `[state] persist`), not the agent's own configuration (which `cordon config
    /// apply` copies out). What is written there is gone at exit (a named sandbox keeps it in
    /// its own state directory, as it keeps `/var/tmp`, a scratch place), so a repository shape
    /// there reaches no git the person runs; agents make them there (codex's plugin-marketplace
    /// clone under `~/.codex/.tmp`). Only where a private layer exists (`own` is set then).
    fn private_only(&self, path: &Path, place: Place) -> bool {
        place == Place::HomeLayer
            && self
                .own
                .as_ref()
                .is_some_and(|own| own.owner(path).is_none())
    }

    fn refusal(&self, op: FileOp, path: &Path) -> Option<FileRefusal<'_>> {
        let place = self.place(path);
        if place == Place::Scratch {
            return None;
        }
        // Before the agent's own configuration is let into the layer: `config apply` copies
        // that out.
        if makes_bare_repository(op, path) && !self.private_only(path, place) {
            return Some(FileRefusal::BareRepository);
        }
        if let Some(own) = &self.own {
            if own
                .writable_in_layer(path, &self.set, &self.shared)
                .is_some()
            {
                return None;
            }
        }
        if let Some(rule) = self.set.protecting(path) {
            return Some(FileRefusal::Protected(rule));
        }
        if op.moves() && self.set.leads_to_protected(path) {
            return Some(FileRefusal::LeadsToProtected);
        }
        None
    }
}
