//! Renaming a directory moves every name beneath it: each old and new name is checked.
//!
//! Runs under the exclusive tree lock, so nothing in the subtree changes while we look.

use std::ffi::OsStr;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::fs::{Dir, FileType, Mode, OFlags};
use rustix::io::Errno;

use super::handle::Guard;
use super::resolve::Parent;
use super::Op;

/// Entries checked per directory rename; beyond it the rename answers EXDEV so that tools
/// fall back to copy + delete, which goes through the guard name by name.
const MAX_ENTRIES: usize = 20_000;
const MAX_DEPTH: usize = 128;

fn open_dir(dir: &OwnedFd, name: &[u8]) -> Result<OwnedFd, Errno> {
    rustix::fs::openat(
        dir,
        OsStr::from_bytes(name),
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
}

/// Checks RenameFrom(`from`/x) and RenameTo(`to`/x) for every x beneath the directory `p`.
pub(crate) fn check(g: &Guard, p: &Parent, from: &Path, to: &Path, pid: i32) -> Result<(), Errno> {
    let top = open_dir(&p.dir.fd, &p.name)?;
    // Relative paths, not fds, so a wide tree cannot exhaust our descriptors. Nothing can
    // swap a directory for a symlink meanwhile: we hold the exclusive tree lock.
    let mut stack: Vec<(PathBuf, usize)> = vec![(PathBuf::new(), 0)];
    let mut seen = 0usize;
    while let Some((rel, depth)) = stack.pop() {
        let fd = if rel.as_os_str().is_empty() {
            top.try_clone().map_err(|_| Errno::MFILE)?
        } else {
            open_dir(&top, rel.as_os_str().as_bytes())?
        };
        let entries = Dir::read_from(&fd)?;
        for entry in entries {
            let entry = entry?;
            let name = entry.file_name().to_bytes();
            if name == b"." || name == b".." {
                continue;
            }
            seen += 1;
            if seen > MAX_ENTRIES {
                return Err(Errno::XDEV);
            }
            let rel = rel.join(OsStr::from_bytes(name));
            g.decide(Op::RenameFrom, &from.join(&rel), None, pid)?;
            g.decide(Op::RenameTo, &to.join(&rel), None, pid)?;
            let is_dir = match entry.file_type() {
                FileType::Directory => true,
                FileType::Unknown => {
                    let st = rustix::fs::statat(
                        &fd,
                        OsStr::from_bytes(name),
                        rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
                    )?;
                    FileType::from_raw_mode(st.st_mode) == FileType::Directory
                }
                _ => false,
            };
            if is_dir {
                if depth + 1 > MAX_DEPTH {
                    return Err(Errno::XDEV);
                }
                stack.push((rel, depth + 1));
            }
        }
    }
    Ok(())
}
