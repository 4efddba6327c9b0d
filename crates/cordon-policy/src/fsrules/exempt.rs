//! Where protections are lifted, wholly or in part, and why. Built-in: no tier can add to
//! these (an exemption is a way around M3, so only cordon's own data names them).

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

/// What an exemption lifts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExemptKind {
    /// Every protection (an absolute directory of the private layer).
    Scratch,
    /// `anywhere` rules not marked `in_dependency_trees`, below a directory of this name.
    DependencyTree,
    /// The same, below this directory relative to `$HOME`.
    PackageCache,
}

impl ExemptKind {
    /// The word `policy show` uses.
    pub fn name(self) -> &'static str {
        match self {
            ExemptKind::Scratch => "scratch",
            ExemptKind::DependencyTree => "dependency_tree",
            ExemptKind::PackageCache => "package_cache",
        }
    }
}

/// One built-in exemption.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exemption {
    /// What it lifts.
    pub kind: ExemptKind,
    /// An absolute directory ([`ExemptKind::Scratch`]), a directory name
    /// ([`ExemptKind::DependencyTree`]) or a path relative to `$HOME`
    /// ([`ExemptKind::PackageCache`]).
    pub path: &'static str,
    /// Why it is safe and needed.
    pub why: &'static str,
}

const SCRATCH_WHY: &str = "the private layer's scratch, gone at exit and never read by the host, so `git clone URL /tmp/x` works; $HOME and host-shared paths below it stay protected";
const TREE_WHY: &str = "packages ship AGENTS.md, CLAUDE.md, .vscode/, .github/, .cargo/config.toml; refusing them would break npm/pip installs; git, direnv and IDE task rules stay (the sandbox chooses these names too)";
const CACHE_WHY: &str =
    "package managers' caches and toolchains unpack the same files as dependency trees";

/// Every exemption, in the order `policy show` lists them.
pub const EXEMPTIONS: &[Exemption] = &[
    scratch("/tmp"),
    scratch("/var/tmp"),
    scratch("/dev/shm"),
    tree("node_modules"),
    tree("site-packages"),
    tree("dist-packages"),
    cache(".npm"),
    cache(".cache"),
    cache(".cargo/registry"),
    cache(".cargo/git"),
    cache(".rustup"),
    cache("go/pkg/mod"),
    cache(".m2/repository"),
    cache(".gradle/caches"),
];

const fn scratch(path: &'static str) -> Exemption {
    Exemption {
        kind: ExemptKind::Scratch,
        path,
        why: SCRATCH_WHY,
    }
}

const fn tree(path: &'static str) -> Exemption {
    Exemption {
        kind: ExemptKind::DependencyTree,
        path,
        why: TREE_WHY,
    }
}

const fn cache(path: &'static str) -> Exemption {
    Exemption {
        kind: ExemptKind::PackageCache,
        path,
        why: CACHE_WHY,
    }
}

fn of(kind: ExemptKind) -> impl Iterator<Item = &'static str> {
    EXEMPTIONS
        .iter()
        .filter(move |e| e.kind == kind)
        .map(|e| e.path)
}

/// Whether `path` lies in a scratch directory (before `$HOME` and host-shared paths are
/// taken out, which the caller does).
pub(crate) fn in_scratch_dir(path: &Path) -> bool {
    of(ExemptKind::Scratch).any(|s| path.starts_with(s))
}

/// The package caches below `home`, resolved once (the guard asks on every call).
pub(crate) fn package_caches(home: &Path) -> Vec<PathBuf> {
    of(ExemptKind::PackageCache).map(|c| home.join(c)).collect()
}

/// Whether only the rules that apply in dependency trees apply at `path`: it lies below a
/// dependency-tree directory name (compared exactly: a look-alike lifts nothing) or one of
/// `caches` (from [`package_caches`]).
pub(crate) fn in_dependency_tree(caches: &[PathBuf], path: &Path) -> bool {
    path.components()
        .any(|c| of(ExemptKind::DependencyTree).any(|d| c.as_os_str() == OsStr::new(d)))
        || caches.iter().any(|c| path.starts_with(c))
}
