//! A named sandbox's on-disk layer: the directories it keeps between runs, and how the host
//! measures and removes them without trusting anything the sandbox put there.
//!
//! The layer directory holds the `$HOME` overlay's upper and work directories and `/var/tmp`.
//! Everything in it was written by hostile code: symlinks to host files, directories with mode
//! 000, overlay whiteouts, deep trees. The walkers here never follow a symlink (every open is
//! `O_NOFOLLOW` and relative to a directory already opened), make directories writable before
//! emptying them, and hold one directory descriptor at a time (climbing back through `..`,
//! checked against the inode they came from), so depth exhausts neither the stack nor the
//! descriptor table. Callers hold the sandbox's lock, so nothing moves underneath.

use crate::error::{Context, SetupError};
use rustix::fs::{AtFlags, FileType, Mode, OFlags, CWD};
use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// The overlay's upper directory for `$HOME`.
pub const HOME_UP: &str = "home-up";
/// The overlay's work directory (same file system as the upper).
pub const HOME_WORK: &str = "home-work";
/// What the sandbox sees as `/var/tmp`.
pub const VARTMP: &str = "vartmp";

/// The layer directory, cloned by init before the host's tree is replaced.
pub struct Persisted {
    /// A detached bind mount of the layer directory (nosuid, nodev), usable after the
    /// host's tree is gone (a plain descriptor into the old root is not).
    pub dir: OwnedFd,
}

/// Clones the layer directory `dir` (which must be a real directory, not a symlink).
pub fn open(dir: &Path) -> Result<Persisted, SetupError> {
    use rustix::mount::{open_tree, OpenTreeFlags};
    let fd = open_tree(
        CWD,
        dir,
        OpenTreeFlags::OPEN_TREE_CLONE
            | OpenTreeFlags::OPEN_TREE_CLOEXEC
            | OpenTreeFlags::AT_SYMLINK_NOFOLLOW,
    )
    .ctx(|| format!("open the named sandbox's state {}", dir.display()))?;
    crate::sys::mount_setattr(
        fd.as_fd(),
        false,
        crate::sys::MOUNT_ATTR_NOSUID | crate::sys::MOUNT_ATTR_NODEV,
        0,
        true,
    )
    .ctx(|| "set mount attributes".into())?;
    Ok(Persisted { dir: fd })
}

/// Creates the layer's directories under `dir` (itself created if missing, mode 0700).
pub fn prepare(dir: &Path) -> io::Result<()> {
    mkdir_mode(dir, 0o700)?;
    for (name, mode) in [(HOME_UP, 0o755), (HOME_WORK, 0o700), (VARTMP, 0o1777)] {
        mkdir_mode(&dir.join(name), mode)?;
    }
    Ok(())
}

fn mkdir_mode(p: &Path, mode: u32) -> io::Result<()> {
    match rustix::fs::mkdir(p, Mode::from_raw_mode(mode)) {
        Ok(()) => {}
        Err(rustix::io::Errno::EXIST) => {}
        Err(e) => return Err(e.into()),
    }
    let st = rustix::fs::lstat(p)?;
    if FileType::from_raw_mode(st.st_mode) != FileType::Directory {
        return Err(io::Error::other(format!(
            "{} is not a directory",
            p.display()
        )));
    }
    rustix::fs::chmod(p, Mode::from_raw_mode(mode))?;
    Ok(())
}

fn open_dir_at(parent: BorrowedFd<'_>, name: &CStr) -> io::Result<OwnedFd> {
    Ok(rustix::fs::openat(
        parent,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?)
}

fn id_of(fd: BorrowedFd<'_>) -> io::Result<(u64, u64)> {
    let st = rustix::fs::fstat(fd)?;
    Ok((st.st_dev, st.st_ino))
}

/// The entries of an open directory: (name, is a directory, blocks of 512 bytes).
fn entries(dir: BorrowedFd<'_>) -> io::Result<Vec<(CString, bool, u64)>> {
    let fd = rustix::io::dup(dir)?;
    let mut d = rustix::fs::Dir::read_from(fd)?;
    let mut out = Vec::new();
    while let Some(e) = d.read() {
        let e = e?;
        let name = e.file_name();
        if name.to_bytes() == b"." || name.to_bytes() == b".." {
            continue;
        }
        let name = name.to_owned();
        let (is_dir, blocks) = match rustix::fs::statat(dir, &name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => (
                FileType::from_raw_mode(st.st_mode) == FileType::Directory,
                st.st_blocks as u64,
            ),
            Err(rustix::io::Errno::NOENT) => continue,
            Err(e) => return Err(e.into()),
        };
        out.push((name, is_dir, blocks));
    }
    Ok(out)
}

/// Climbs from `cur` to its parent, checking it is the directory we came from.
fn climb(cur: &OwnedFd, expect: (u64, u64)) -> io::Result<OwnedFd> {
    let parent = open_dir_at(cur.as_fd(), c"..")?;
    if id_of(parent.as_fd())? != expect {
        return Err(io::Error::other(
            "a directory moved while it was being walked",
        ));
    }
    Ok(parent)
}

/// Bytes on disk under `path` (blocks actually allocated; unreadable parts are skipped).
pub fn disk_usage(path: &Path) -> u64 {
    let Ok(top) = rustix::fs::open(
        path,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    ) else {
        return 0;
    };
    usage_from(top).unwrap_or(0)
}

fn usage_from(top: OwnedFd) -> io::Result<u64> {
    let mut total = rustix::fs::fstat(&top)?.st_blocks as u64 * 512;
    let mut cur = top;
    // Per level: the directory's own id, and its subdirectories still to visit.
    let mut levels: Vec<((u64, u64), Vec<CString>)> = Vec::new();
    let list = |fd: &OwnedFd, total: &mut u64| -> Vec<CString> {
        let mut subdirs = Vec::new();
        for (name, is_dir, blocks) in entries(fd.as_fd()).unwrap_or_default() {
            if is_dir {
                subdirs.push(name);
            } else {
                *total += blocks * 512;
            }
        }
        subdirs
    };
    let subdirs = list(&cur, &mut total);
    levels.push((id_of(cur.as_fd())?, subdirs));
    loop {
        let next = levels.last_mut().and_then(|(_, pending)| pending.pop());
        match next {
            Some(name) => {
                let Ok(sub) = open_dir_at(cur.as_fd(), &name) else {
                    continue;
                };
                total += rustix::fs::fstat(&sub)?.st_blocks as u64 * 512;
                cur = sub;
                let subdirs = list(&cur, &mut total);
                levels.push((id_of(cur.as_fd())?, subdirs));
            }
            None => {
                levels.pop();
                let Some((parent_id, _)) = levels.last() else {
                    return Ok(total);
                };
                cur = climb(&cur, *parent_id)?;
            }
        }
    }
}

/// Makes the directory `name` in `parent` searchable and writable by its owner (a sandbox may
/// have left it 000), without following a symlink.
fn unlock_dir(parent: BorrowedFd<'_>, name: &CStr) -> io::Result<OwnedFd> {
    let p = rustix::fs::openat(
        parent,
        name,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    // fchmod refuses O_PATH descriptors; the magic link names exactly this inode.
    let link = format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&p));
    rustix::fs::chmodat(
        CWD,
        link.as_str(),
        Mode::from_raw_mode(0o700),
        AtFlags::empty(),
    )?;
    open_dir_at(parent, name)
}

/// Removes `path` and everything under it, never following a symlink out of it. A missing
/// `path` is not an error.
pub fn remove_tree(path: &Path) -> io::Result<()> {
    let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
        return Err(io::Error::other(format!(
            "refusing to remove {}",
            path.display()
        )));
    };
    let name = CString::new(name.as_bytes()).map_err(io::Error::other)?;
    let parent = rustix::fs::open(
        parent,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let st = match rustix::fs::statat(&parent, &name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) => st,
        Err(rustix::io::Errno::NOENT) => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    if FileType::from_raw_mode(st.st_mode) != FileType::Directory {
        rustix::fs::unlinkat(&parent, &name, AtFlags::empty())?;
        return Ok(());
    }
    let top = unlock_dir(parent.as_fd(), &name)?;
    empty_tree(top)?;
    rustix::fs::unlinkat(&parent, &name, AtFlags::REMOVEDIR)?;
    Ok(())
}

/// Empties the directory `top` (depth first, one descriptor held at a time).
fn empty_tree(top: OwnedFd) -> io::Result<()> {
    let mut cur = top;
    // Per level below `top`: the name of the directory we entered and its parent's id.
    let mut path: Vec<(CString, (u64, u64))> = Vec::new();
    loop {
        let mut entered = false;
        for (name, is_dir, _) in entries(cur.as_fd())? {
            if !is_dir {
                rustix::fs::unlinkat(&cur, &name, AtFlags::empty())?;
                continue;
            }
            let here = id_of(cur.as_fd())?;
            let sub = unlock_dir(cur.as_fd(), &name)?;
            path.push((name, here));
            cur = sub;
            entered = true;
            break;
        }
        if entered {
            continue;
        }
        // `cur` is empty now: go back up and remove it.
        let Some((name, parent_id)) = path.pop() else {
            return Ok(());
        };
        let parent = climb(&cur, parent_id)?;
        rustix::fs::unlinkat(&parent, &name, AtFlags::REMOVEDIR)?;
        cur = parent;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn removes_hostile_tree_without_following_symlinks() {
        let base = tempfile::tempdir().expect("tempdir");
        let outside = base.path().join("outside");
        std::fs::create_dir(&outside).expect("mkdir");
        std::fs::write(outside.join("keep"), "host").expect("write");
        let victim = base.path().join("layer");
        prepare(&victim).expect("prepare");
        let up = victim.join(HOME_UP);
        std::os::unix::fs::symlink(&outside, up.join("link-dir")).expect("symlink");
        std::os::unix::fs::symlink(outside.join("keep"), up.join("link-file")).expect("symlink");
        let mut deep = up.join("deep");
        for _ in 0..300 {
            deep = deep.join("d");
        }
        std::fs::create_dir_all(&deep).expect("deep");
        std::fs::write(deep.join("f"), "x").expect("write");
        let locked = up.join("locked");
        std::fs::create_dir_all(locked.join("inner")).expect("mkdir");
        std::fs::write(locked.join("inner/f"), "x").expect("write");
        std::fs::set_permissions(locked.join("inner"), std::fs::Permissions::from_mode(0o000))
            .expect("chmod");
        std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o000)).expect("chmod");

        assert!(disk_usage(&victim) > 0);
        remove_tree(&victim).expect("remove");
        assert!(
            std::fs::symlink_metadata(&victim).is_err(),
            "layer left behind"
        );
        assert_eq!(
            std::fs::read_to_string(outside.join("keep")).expect("read"),
            "host"
        );
        remove_tree(&victim).expect("missing is fine");
    }

    #[test]
    fn a_symlink_as_the_tree_is_unlinked_not_followed() {
        let base = tempfile::tempdir().expect("tempdir");
        let outside = base.path().join("outside");
        std::fs::create_dir(&outside).expect("mkdir");
        std::fs::write(outside.join("keep"), "host").expect("write");
        let link = base.path().join("layer");
        std::os::unix::fs::symlink(&outside, &link).expect("symlink");
        remove_tree(&link).expect("remove");
        assert!(std::fs::symlink_metadata(&link).is_err());
        assert!(outside.join("keep").exists());
    }
}
