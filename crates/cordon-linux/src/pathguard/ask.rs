//! Asked-about operations: the question handed to the [`Asker`], and opening an approved
//! read on the host.
//!
//! An approved write is performed like any other write (the guard resolves the path inside
//! the sandbox again and acts on what it resolved; the approval names that exact operation
//! and path). An approved read is of a file the sandbox's view hides, so it is opened on the
//! host: the path the guard resolved, walked by the kernel with RESOLVE_NO_SYMLINKS and
//! RESOLVE_NO_MAGICLINKS, so nothing the sandbox planted (a symlink swapped in while the
//! question was pending) can lead the open anywhere else. Only regular files are handed in:
//! a directory fd would let later `openat(dirfd, ...)` calls read beneath it unasked.

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use rustix::fs::{FileType, Mode, OFlags, ResolveFlags, CWD};
use rustix::io::Errno;

use super::Op;
use cordon_policy::Outcome;

/// One question about one file operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileAsk {
    /// What the process wants to do ([`Op::Read`] for reads; anything else is a write).
    pub op: Op,
    /// The sandbox-absolute path (symlinks inside the sandbox resolved).
    pub path: PathBuf,
    /// Host thread id of the caller (for naming the process).
    pub tid: i32,
    /// The caller's pid inside the sandbox, if known.
    pub pid: Option<i32>,
    /// The rule that asks.
    pub rule: String,
}

/// Decides asked-about operations (the approval broker, in the binary).
pub trait Asker: Send + Sync {
    /// Blocks until a person (or the fail-closed machinery) decides; [`Outcome::Granted`]
    /// allows exactly this one operation, anything else refuses it. `waiting()` turns false
    /// once the caller is gone.
    fn ask(&self, req: FileAsk, waiting: &dyn Fn() -> bool) -> Outcome;
}

/// Opens the approved `path` (beneath the rule's `root`) for reading on the host.
pub(crate) fn open_host(root: &Path, path: &Path) -> Result<OwnedFd, Errno> {
    if !path.starts_with(root) || !path.is_absolute() {
        return Err(Errno::ACCESS);
    }
    let how = ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS;
    let opath = rustix::fs::openat2(
        CWD,
        path,
        OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
        how,
    )
    .map_err(|e| if e == Errno::LOOP { Errno::ACCESS } else { e })?;
    let st = rustix::fs::fstat(&opath)?;
    if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile {
        return Err(Errno::ACCESS);
    }
    rustix::fs::open(
        super::open::thread_fd_path(&opath).as_str(),
        OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOCTTY,
        Mode::empty(),
    )
}

/// Whether an open with these flags only reads (the filter routes these only for read asks).
pub(crate) fn is_read(flags: i32) -> bool {
    let writes = libc::O_WRONLY | libc::O_RDWR | libc::O_CREAT | libc::O_TRUNC;
    flags & writes == 0 && flags & libc::O_PATH == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn opens_regular_files_only_and_never_through_symlinks() {
        let d = tempfile::tempdir().expect("tempdir");
        let root = d.path().canonicalize().expect("canonical");
        std::fs::write(root.join("f"), b"real").expect("write");
        std::fs::write(root.join("secret"), b"secret").expect("write");
        std::os::unix::fs::symlink(root.join("secret"), root.join("link")).expect("symlink");
        std::fs::create_dir(root.join("dir")).expect("mkdir");
        std::os::unix::fs::symlink(root.join("dir"), root.join("dirlink")).expect("symlink");
        std::fs::write(root.join("dir/x"), b"x").expect("write");
        let mut s = String::new();
        std::fs::File::from(open_host(&root, &root.join("f")).expect("opens"))
            .read_to_string(&mut s)
            .expect("read");
        assert_eq!(s, "real");
        assert_eq!(
            open_host(&root, &root.join("link")).err(),
            Some(Errno::ACCESS)
        );
        assert_eq!(
            open_host(&root, &root.join("dirlink/x")).err(),
            Some(Errno::ACCESS)
        );
        assert_eq!(
            open_host(&root, &root.join("dir")).err(),
            Some(Errno::ACCESS)
        );
        assert_eq!(
            open_host(&root.join("dir"), &root.join("f")).err(),
            Some(Errno::ACCESS)
        );
        assert!(open_host(&root, &root.join("dir/x")).is_ok());
    }

    #[test]
    fn read_flags() {
        assert!(is_read(libc::O_RDONLY | libc::O_CLOEXEC));
        assert!(is_read(libc::O_DIRECTORY));
        assert!(!is_read(libc::O_WRONLY));
        assert!(!is_read(libc::O_PATH));
        assert!(!is_read(libc::O_CREAT));
    }
}
