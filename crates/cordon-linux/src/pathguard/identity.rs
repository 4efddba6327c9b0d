//! Protected files by identity (st_dev, st_ino), so a protected file stays protected whatever
//! name reaches it: a hard link made before the run, a name in a dependency tree, a file
//! reached through a magic link.
//!
//! The rules decide on names; a file with one name (`st_nlink == 1`) is fully decided by its
//! name. Only a file with several names can be reached by an unprotected one, so the set of
//! protected identities is needed only then: it is built on the first such decision, by one
//! walk of the writable roots that asks the rules about every non-directory name (no stat
//! unless a rule protects the name). New aliases cannot appear afterwards from inside: every
//! link is decided on the file it links.

use std::collections::HashSet;
use std::ffi::OsStr;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};
use std::sync::OnceLock;

use rustix::fs::{AtFlags, Dir, FileType, Mode, OFlags, ResolveFlags};
use rustix::io::Errno;

use super::resolve::Root;
use super::{Op, Rules, Verdict};

/// Names looked at by the one walk; past it the walk is incomplete and a file with several
/// names that the walk did not clear is refused (closed).
const MAX_ENTRIES: usize = 500_000;
const MAX_DEPTH: usize = 96;

/// The protected identities: those the binary found at start, and those of the walk.
pub(crate) struct Protected {
    initial: HashSet<(u64, u64)>,
    walked: OnceLock<Walked>,
}

struct Walked {
    ids: HashSet<(u64, u64)>,
    complete: bool,
}

/// Whether a file is protected by identity.
pub(crate) enum Known {
    /// Not a protected file under any name the guard knows.
    No,
    /// A protected file (`why` says how it was found).
    Protected(&'static str),
    /// Unknown: the walk was cut short; treat as protected.
    Unknown,
}

impl Protected {
    pub fn new(initial: HashSet<(u64, u64)>) -> Self {
        Self {
            initial,
            walked: OnceLock::new(),
        }
    }

    /// Whether the file `id` with `nlink` names is a protected one. Files with one name are
    /// looked up only in the start-up set (their name was already decided by the rules).
    pub fn check(
        &self,
        id: (u64, u64),
        nlink: u64,
        root: &Root,
        roots: &[PathBuf],
        rules: &dyn Rules,
    ) -> Known {
        if self.initial.contains(&id) {
            return Known::Protected("a protected file found at start");
        }
        if nlink <= 1 {
            return Known::No;
        }
        let w = self.walked.get_or_init(|| walk(root, roots, rules));
        if w.ids.contains(&id) {
            Known::Protected("another name of this file is protected")
        } else if w.complete {
            Known::No
        } else {
            Known::Unknown
        }
    }
}

fn open_root(root: &Root, path: &Path) -> Result<OwnedFd, Errno> {
    let rel: PathBuf = path
        .components()
        .filter(|c| matches!(c, Component::Normal(_)))
        .collect();
    let rel = if rel.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        rel
    };
    rustix::fs::openat2(
        &root.fd,
        &rel,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS | ResolveFlags::NO_SYMLINKS,
    )
}

/// A directory beneath `top` by relative path (paths, not fds, on the walk's stack so that a
/// wide tree cannot exhaust descriptors), never through a symlink.
fn open_beneath(top: &OwnedFd, rel: &Path) -> Result<OwnedFd, Errno> {
    let rel = if rel.as_os_str().is_empty() {
        Path::new(".")
    } else {
        rel
    };
    rustix::fs::openat2(
        top,
        rel,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS | ResolveFlags::NO_SYMLINKS,
    )
}

/// One walk of the writable roots (not `/dev`), collecting the identities of protected
/// regular files.
fn walk(root: &Root, roots: &[PathBuf], rules: &dyn Rules) -> Walked {
    let mut ids = HashSet::new();
    let mut seen = 0usize;
    let mut complete = true;
    let mut done: Vec<&PathBuf> = Vec::new();
    for top in roots {
        // Nested roots (the workspace under $HOME) are walked once.
        if top.starts_with("/dev") || done.iter().any(|d| top.starts_with(d)) {
            continue;
        }
        done.push(top);
        let Ok(top_fd) = open_root(root, top) else {
            continue;
        };
        let mut stack: Vec<(PathBuf, usize)> = vec![(PathBuf::new(), 0)];
        while let Some((rel, depth)) = stack.pop() {
            let Ok(fd) = open_beneath(&top_fd, &rel) else {
                continue;
            };
            let Ok(entries) = Dir::read_from(&fd) else {
                continue;
            };
            for entry in entries.flatten() {
                let name = entry.file_name().to_bytes();
                if name == b"." || name == b".." {
                    continue;
                }
                seen += 1;
                if seen > MAX_ENTRIES {
                    return Walked {
                        ids,
                        complete: false,
                    };
                }
                let child_rel = rel.join(OsStr::from_bytes(name));
                let child = top.join(&child_rel);
                let kind = match entry.file_type() {
                    FileType::Unknown => {
                        rustix::fs::statat(&fd, OsStr::from_bytes(name), AtFlags::SYMLINK_NOFOLLOW)
                            .map(|st| FileType::from_raw_mode(st.st_mode))
                            .unwrap_or(FileType::Unknown)
                    }
                    k => k,
                };
                match kind {
                    FileType::Directory => {
                        if depth + 1 > MAX_DEPTH {
                            complete = false;
                            continue;
                        }
                        stack.push((child_rel, depth + 1));
                    }
                    FileType::RegularFile => {
                        if matches!(rules.check(Op::Write, &child), Verdict::Deny { .. }) {
                            if let Ok(st) = rustix::fs::statat(
                                &fd,
                                OsStr::from_bytes(name),
                                AtFlags::SYMLINK_NOFOLLOW,
                            ) {
                                ids.insert((st.st_dev, st.st_ino));
                            }
                        }
                    }
                    _ => {}
                }
            }
        }
    }
    Walked { ids, complete }
}
