//! Confines each worker thread, so a resolver bug cannot write outside the writable roots
//! either: a private umask (the caller's is applied by hand) and a thread-local Landlock
//! domain that reads anywhere but writes only beneath the writable roots.

use std::io;
use std::os::fd::OwnedFd;
use std::path::{Component, Path};

use landlock::{
    Access, AccessFs, PathBeneath, Ruleset, RulesetAttr, RulesetCreatedAttr, RulesetStatus, ABI,
};
use rustix::fs::{Mode, OFlags, ResolveFlags};

use super::resolve::Root;

/// The Landlock ABI we ask for (best effort: older kernels get what they support).
const LANDLOCK_ABI: ABI = ABI::V5;

/// Directories for the per-thread Landlock rules, opened once.
pub(crate) struct Anchors {
    /// Read access: the host root (our /proc, for caller memory) and the sandbox root.
    read: Vec<OwnedFd>,
    /// Full access: each writable root, opened inside the sandbox root.
    write: Vec<OwnedFd>,
}

impl Anchors {
    /// Opens the anchors. Roots are resolved by the kernel with RESOLVE_IN_ROOT so a symlink
    /// planted in the sandbox cannot point a root at a host directory; missing roots are skipped.
    pub fn open(root: &Root, writable: &[impl AsRef<Path>]) -> io::Result<Self> {
        let o_path = OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC;
        let host_root = rustix::fs::open("/", o_path, Mode::empty())?;
        let sandbox_root = root.fd.try_clone()?;
        let mut write = Vec::new();
        for w in writable {
            let rel: std::path::PathBuf = w
                .as_ref()
                .components()
                .filter(|c| matches!(c, Component::Normal(_)))
                .collect();
            let rel = if rel.as_os_str().is_empty() {
                Path::new(".")
            } else {
                rel.as_path()
            };
            let res = ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS;
            match rustix::fs::openat2(&root.fd, rel, o_path, Mode::empty(), res) {
                Ok(fd) => write.push(fd),
                Err(rustix::io::Errno::NOENT) | Err(rustix::io::Errno::NOTDIR) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(Self {
            read: vec![host_root, sandbox_root],
            write,
        })
    }
}

/// Applies the worker confinement to the calling thread only.
pub(crate) fn confine_thread(anchors: &Anchors) -> io::Result<()> {
    // SAFETY: unshare(CLONE_FS) only gives this thread its own cwd/root/umask copy; it touches
    // no memory. Without it, umask(0) below would change the whole supervisor's umask.
    if unsafe { libc::unshare(libc::CLONE_FS) } != 0 {
        return Err(io::Error::last_os_error());
    }
    rustix::process::umask(Mode::empty());
    let to_io = |e: landlock::RulesetError| io::Error::other(e.to_string());
    let all = AccessFs::from_all(LANDLOCK_ABI);
    let read = AccessFs::from_read(LANDLOCK_ABI);
    let mut ruleset = Ruleset::default()
        .handle_access(all)
        .map_err(to_io)?
        .create()
        .map_err(to_io)?;
    for fd in &anchors.read {
        ruleset = ruleset
            .add_rule(PathBeneath::new(fd, read))
            .map_err(to_io)?;
    }
    for fd in &anchors.write {
        ruleset = ruleset.add_rule(PathBeneath::new(fd, all)).map_err(to_io)?;
    }
    let status = ruleset.restrict_self().map_err(to_io)?;
    if status.ruleset == RulesetStatus::NotEnforced {
        return Err(io::Error::other("Landlock is not available on this kernel"));
    }
    Ok(())
}
