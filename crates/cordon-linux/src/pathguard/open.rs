//! Opens with O_CREAT: creating new regular files, reopening existing objects, and the
//! special cases (FIFOs, character devices, `/dev/tty`, the caller's own magic links).

use std::ffi::OsStr;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::time::Duration;

use rustix::fs::{FileType, Mode, OFlags};
use rustix::io::Errno;

use super::handle::Ctx;
use super::resolve::{Base, Parent};
use super::Op;

/// How often a FIFO open re-checks that its caller still waits.
const FIFO_POLL: Duration = Duration::from_millis(20);
/// Creation attempts when another thread keeps racing a name into existence.
const CREATE_TRIES: usize = 4;
/// Major numbers of Unix98 pty slaves (`/dev/pts/N`).
const PTS_MAJORS: std::ops::RangeInclusive<u32> = 136..=143;

/// The caller's flags (O_CREAT among them) and mode (the umask is applied on creation).
#[derive(Debug, Clone, Copy)]
pub(crate) struct OpenReq {
    pub flags: i32,
    pub mode: u32,
}

impl OpenReq {
    fn cloexec(&self) -> bool {
        self.flags & libc::O_CLOEXEC != 0
    }

    /// The caller's flags without those we decide ourselves.
    fn passed(&self) -> OFlags {
        let ours =
            libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NOCTTY;
        OFlags::from_bits_retain((self.flags & !ours) as u32)
    }
}

/// An fd ready to inject.
pub(crate) struct OpenedFd {
    pub fd: OwnedFd,
    pub cloexec: bool,
}

/// A FIFO whose open must wait for its peer, outside the tree lock.
pub(crate) struct FifoWait {
    opath: OwnedFd,
    req: OpenReq,
}

pub(crate) enum Opened {
    Fd(OpenedFd),
    Fifo(FifoWait),
}

/// `/proc/thread-self/fd/N` for one of our own fds: reopening through it follows the kernel's
/// own rules for that exact inode, whatever has happened to its name since.
pub(crate) fn thread_fd_path(fd: &OwnedFd) -> String {
    format!("/proc/thread-self/fd/{}", fd.as_raw_fd())
}

fn reopen(opath: &OwnedFd, flags: OFlags) -> Result<OwnedFd, Errno> {
    rustix::fs::open(
        thread_fd_path(opath).as_str(),
        flags | OFlags::CLOEXEC | OFlags::NOCTTY,
        Mode::empty(),
    )
}

/// Creates `p` as a new regular file with the caller's flags and mode (umask applied); with
/// O_EXCL and O_NOFOLLOW, so that it never opens what raced in, nor follows a symlink.
fn create(ctx: &Ctx<'_>, p: &Parent, req: OpenReq) -> Result<Opened, Errno> {
    let mode = req.mode & !ctx.umask()?;
    let flags = req.passed()
        | OFlags::CREATE
        | OFlags::EXCL
        | OFlags::NOFOLLOW
        | OFlags::CLOEXEC
        | OFlags::NOCTTY;
    let fd = rustix::fs::openat(
        &p.dir.fd,
        OsStr::from_bytes(&p.name),
        flags,
        Mode::from_raw_mode(mode),
    )?;
    Ok(Opened::Fd(OpenedFd {
        fd,
        cloexec: req.cloexec(),
    }))
}

/// Opens `p` (already checked against the rules; not a symlink to follow). `outright`: the
/// rules allowed creating `p` without asking anybody.
pub(crate) fn plain(
    ctx: &Ctx<'_>,
    p: &Parent,
    req: OpenReq,
    outright: bool,
) -> Result<Opened, Errno> {
    // A create the rules and the writable roots allow outright needs no look first: most such
    // opens make a new file (git's objects, tar's members), and a name that exists says EEXIST,
    // which O_EXCL answers as is and which sends any other open the long way below.
    if req.flags & libc::O_CREAT != 0 && outright && ctx.in_writable_root(p) {
        match create(ctx, p, req) {
            Err(Errno::EXIST) if req.flags & libc::O_EXCL == 0 => {}
            done => return done,
        }
    }
    let name = OsStr::from_bytes(&p.name);
    for _ in 0..CREATE_TRIES {
        let found = rustix::fs::openat(
            &p.dir.fd,
            name,
            OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        );
        match found {
            Ok(opath) => {
                if req.flags & libc::O_EXCL != 0 {
                    return Err(Errno::EXIST);
                }
                return existing(ctx, opath, req, Some(p));
            }
            Err(Errno::NOENT) if req.flags & libc::O_CREAT == 0 => return Err(Errno::NOENT),
            Err(Errno::NOENT) => {
                ctx.may_create(p)?;
                match create(ctx, p, req) {
                    Err(Errno::EXIST) if req.flags & libc::O_EXCL == 0 => continue,
                    done => return done,
                }
            }
            Err(e) => return Err(e),
        }
    }
    Err(Errno::LOOP)
}

/// Opens one of the caller's own magic links (`/proc/self/fd/1`, ...), already opened O_PATH.
pub(crate) fn magic(ctx: &Ctx<'_>, opath: OwnedFd, req: OpenReq) -> Result<Opened, Errno> {
    if req.flags & libc::O_EXCL != 0 {
        return Err(Errno::EXIST);
    }
    existing(ctx, opath, req, None)
}

/// Reopens an existing object with the caller's flags, by its type. `name`: where the guard
/// found it (`None`: one of the caller's magic links, already decided on the file).
fn existing(
    ctx: &Ctx<'_>,
    opath: OwnedFd,
    req: OpenReq,
    name: Option<&Parent>,
) -> Result<Opened, Errno> {
    let st = rustix::fs::fstat(&opath)?;
    let in_dev = name.is_none_or(Ctx::in_dev);
    if let Some(p) = name {
        // The name was decided; a protected file may still be behind it under another name.
        ctx.check_identity(Op::Write, &st, || p.full())?;
    }
    let fd = match FileType::from_raw_mode(st.st_mode) {
        FileType::Directory => return Err(Errno::ISDIR),
        FileType::Symlink => return Err(Errno::LOOP),
        FileType::Socket => return Err(Errno::NXIO),
        FileType::BlockDevice => return Err(Errno::ACCESS),
        FileType::Fifo => return Ok(Opened::Fifo(FifoWait { opath, req })),
        FileType::CharacterDevice => device(ctx, &opath, st.st_rdev, req, in_dev)?,
        _ => reopen(&opath, req.passed())?,
    };
    Ok(Opened::Fd(OpenedFd {
        fd,
        cloexec: req.cloexec(),
    }))
}

fn allowed_device(major: u32, minor: u32) -> bool {
    matches!((major, minor), (1, 3 | 5 | 7 | 8 | 9) | (5, 2)) || PTS_MAJORS.contains(&major)
}

/// /dev/kvm, for the VM tier's QEMU only ([`GuardConfig::kvm`](super::GuardConfig::kvm)).
const KVM: (u32, u32) = (10, 232);

/// Character devices: the few a shell needs, only under the sandbox's /dev; `/dev/tty` is the
/// caller's controlling terminal, never ours.
fn device(
    ctx: &Ctx<'_>,
    opath: &OwnedFd,
    rdev: u64,
    req: OpenReq,
    in_dev: bool,
) -> Result<OwnedFd, Errno> {
    let (major, minor) = (rustix::fs::major(rdev), rustix::fs::minor(rdev));
    if !in_dev {
        return Err(Errno::ACCESS);
    }
    if (major, minor) == (5, 0) {
        return controlling_tty(ctx, req);
    }
    let kvm = ctx.g.cfg.kvm && (major, minor) == KVM;
    if !(allowed_device(major, minor) || kvm) {
        return Err(Errno::ACCESS);
    }
    reopen(opath, req.passed())
}

fn controlling_tty(ctx: &Ctx<'_>, req: OpenReq) -> Result<OwnedFd, Errno> {
    let Some((major, minor)) = ctx.caller.ctty()? else {
        return Err(Errno::NXIO);
    };
    if !PTS_MAJORS.contains(&major) {
        return Err(Errno::NXIO);
    }
    let index = (major - PTS_MAJORS.start()) * 256 + minor;
    let path = format!("/dev/pts/{index}");
    let p = ctx.resolver().parent(Base::Cwd, path.as_bytes())?;
    let opath = rustix::fs::openat(
        &p.dir.fd,
        OsStr::from_bytes(&p.name),
        OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|_| Errno::NXIO)?;
    let st = rustix::fs::fstat(&opath)?;
    let same = FileType::from_raw_mode(st.st_mode) == FileType::CharacterDevice
        && (rustix::fs::major(st.st_rdev), rustix::fs::minor(st.st_rdev)) == (major, minor);
    if !same {
        return Err(Errno::NXIO);
    }
    reopen(&opath, req.passed())
}

/// Opens a FIFO without ever blocking: O_NONBLOCK, retried until the peer shows up or the
/// caller stops waiting. `Ok(None)`: the caller is gone.
pub(crate) fn wait_fifo(w: FifoWait, valid: impl Fn() -> bool) -> Result<Option<OpenedFd>, Errno> {
    let flags = w.req.passed();
    let wants_nonblock = flags.contains(OFlags::NONBLOCK);
    loop {
        match reopen(&w.opath, flags | OFlags::NONBLOCK) {
            Ok(fd) => {
                if !wants_nonblock {
                    let fl = rustix::fs::fcntl_getfl(&fd)?;
                    rustix::fs::fcntl_setfl(&fd, fl - OFlags::NONBLOCK)?;
                }
                return Ok(Some(OpenedFd {
                    fd,
                    cloexec: w.req.cloexec(),
                }));
            }
            Err(Errno::NXIO) if !wants_nonblock => {
                if !valid() {
                    return Ok(None);
                }
                std::thread::sleep(FIFO_POLL);
            }
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_allowlist() {
        assert!(allowed_device(1, 3));
        assert!(allowed_device(1, 9));
        assert!(allowed_device(136, 4));
        assert!(!allowed_device(1, 1)); // /dev/mem
        assert!(!allowed_device(5, 0)); // /dev/tty is translated, never opened
        assert!(!allowed_device(10, 232)); // /dev/kvm
    }

    #[test]
    fn passed_flags_drop_ours() {
        let r = OpenReq {
            flags: libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_CLOEXEC | libc::O_APPEND,
            mode: 0,
        };
        let f = r.passed();
        assert!(f.contains(OFlags::WRONLY | OFlags::APPEND));
        assert!(!f.intersects(OFlags::CREATE | OFlags::EXCL | OFlags::CLOEXEC));
        assert!(r.cloexec());
    }
}
