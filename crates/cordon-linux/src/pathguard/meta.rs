//! Metadata changes (chmod, chown, utimes, xattrs), by path or by fd: decided on the file
//! itself (`chmod +x` on a disabled hook turns it on), then performed by the guard on the very
//! inode it decided on, through `/proc/thread-self/fd/N` or `AT_EMPTY_PATH`. The original call
//! never continues: the kernel would walk the path, or look the fd up, again.

use std::ffi::{CString, OsStr};
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use rustix::fs::{AtFlags, FileType, Mode, OFlags, Timespec, Timestamps, XattrFlags, CWD};
use rustix::io::Errno;

use super::handle::Ctx;
use super::open::thread_fd_path;
use super::request::{Change, On, Times};
use super::resolve::{Base, Target};
use super::Op;

/// Longest xattr name and value the kernel accepts.
const XATTR_NAME_MAX: usize = 255;
const XATTR_SIZE_MAX: usize = 65536;
/// utimensat's special nanosecond values.
const UTIME_NOW: i64 = (1 << 30) - 1;
const UTIME_OMIT: i64 = (1 << 30) - 2;

impl Ctx<'_> {
    pub(crate) fn meta(&self, on: On, change: Change) -> Result<(), Errno> {
        // Read everything from the caller's memory once, before deciding.
        let change = self.read_change(change)?;
        let (fd, name) = self.object(on)?;
        let st = self.decide_file(Op::SetAttr, &fd, name)?;
        let symlink = FileType::from_raw_mode(st.st_mode) == FileType::Symlink;
        let via = thread_fd_path(&fd);
        match change {
            Read::Mode(_) if symlink => Err(Errno::OPNOTSUPP),
            Read::Mode(mode) => rustix::fs::chmodat(
                CWD,
                via.as_str(),
                Mode::from_raw_mode(mode),
                AtFlags::empty(),
            ),
            Read::Owner { uid, gid } => {
                let (uid, gid) = (self.host_id(uid, "uid_map")?, self.host_id(gid, "gid_map")?);
                // SAFETY: fchownat with an fd we own, an empty C string and AT_EMPTY_PATH acts on
                // that fd's inode (O_PATH fds included); it reads no other memory.
                let r = unsafe {
                    libc::fchownat(
                        std::os::fd::AsRawFd::as_raw_fd(&fd),
                        c"".as_ptr(),
                        uid,
                        gid,
                        libc::AT_EMPTY_PATH,
                    )
                };
                if r < 0 {
                    Err(Errno::from_io_error(&std::io::Error::last_os_error()).unwrap_or(Errno::IO))
                } else {
                    Ok(())
                }
            }
            Read::Times(t) => rustix::fs::utimensat(&fd, "", &t, AtFlags::EMPTY_PATH),
            Read::SetXattr { .. } | Read::RemoveXattr { .. } if symlink => Err(Errno::PERM),
            Read::SetXattr { name, value, flags } => rustix::fs::setxattr(
                via.as_str(),
                name.as_c_str(),
                &value,
                XattrFlags::from_bits_retain(flags as u32),
            ),
            Read::RemoveXattr { name } => rustix::fs::removexattr(via.as_str(), name.as_c_str()),
        }
    }

    /// The object a change applies to, as an O_PATH fd, with its sandbox path when the guard
    /// resolved the name itself (`None`: reached through an fd or a magic link).
    fn object(&self, on: On) -> Result<(OwnedFd, Option<PathBuf>), Errno> {
        let (base, path, follow, empty) = match on {
            On::Fd(n) if n < 0 => return Err(Errno::BADF),
            On::Fd(n) => return Ok((self.caller_fd(Base::Fd(n))?, None)),
            On::Path {
                base,
                path,
                follow,
                empty,
            } => (base, path, follow, empty),
        };
        let raw = self.caller.read_cstr(path)?;
        if raw.is_empty() {
            return if empty {
                Ok((self.caller_fd(base)?, None))
            } else {
                Err(Errno::NOENT)
            };
        }
        let mut res = self.resolver();
        let p = res.parent(base, &raw)?;
        let target = if follow && !p.is_dot() {
            res.follow(p)?
        } else {
            Target::Plain(p)
        };
        match target {
            Target::Magic(fd) => Ok((fd, None)),
            Target::Plain(p) => {
                let name = if p.name.is_empty() {
                    b"." as &[u8]
                } else {
                    &p.name
                };
                let fd = rustix::fs::openat(
                    &p.dir.fd,
                    OsStr::from_bytes(name),
                    OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )?;
                // `.`/`..`: the guard's own name for the directory, found from the fd.
                let full = (!p.is_dot()).then(|| p.full());
                Ok((fd, full))
            }
        }
    }

    /// The caller's cwd or fd `n`, opened O_PATH (by the receiver, with the memory, when it
    /// could).
    fn caller_fd(&self, base: Base) -> Result<OwnedFd, Errno> {
        self.caller.open_base(base).map_err(|e| match e {
            Errno::NOENT => Errno::BADF,
            e => e,
        })
    }

    /// A user or group id of the caller's namespace as the host numbers it (we act from the
    /// host's namespace); u32::MAX ("unchanged") stays.
    fn host_id(&self, id: u32, map: &str) -> Result<u32, Errno> {
        if id == u32::MAX {
            return Ok(id);
        }
        let text = std::fs::read_to_string(self.caller.proc_path(map)).map_err(|_| Errno::SRCH)?;
        map_id(&text, id).ok_or(Errno::INVAL)
    }

    fn read_change(&self, change: Change) -> Result<Read, Errno> {
        Ok(match change {
            Change::Mode(m) => Read::Mode(m & 0o7777),
            Change::Owner { uid, gid } => Read::Owner { uid, gid },
            Change::Times { kind, addr } => Read::Times(self.read_times(kind, addr)?),
            Change::SetXattr {
                name,
                value,
                size,
                flags,
            } => {
                if size > XATTR_SIZE_MAX {
                    return Err(Errno::TOOBIG);
                }
                if flags & !(libc::XATTR_CREATE | libc::XATTR_REPLACE) != 0 {
                    return Err(Errno::INVAL);
                }
                let value = if size == 0 {
                    Vec::new()
                } else {
                    self.caller.read_bytes(value, size)?
                };
                Read::SetXattr {
                    name: self.xattr_name(name)?,
                    value,
                    flags,
                }
            }
            Change::RemoveXattr { name } => Read::RemoveXattr {
                name: self.xattr_name(name)?,
            },
        })
    }

    fn xattr_name(&self, addr: u64) -> Result<CString, Errno> {
        let name = self.caller.read_cstr(addr)?;
        if name.is_empty() || name.len() > XATTR_NAME_MAX {
            return Err(Errno::RANGE);
        }
        CString::new(name).map_err(|_| Errno::INVAL)
    }

    fn read_times(&self, kind: Times, addr: u64) -> Result<Timestamps, Errno> {
        let now = Timespec {
            tv_sec: 0,
            tv_nsec: UTIME_NOW,
        };
        if addr == 0 {
            return Ok(Timestamps {
                last_access: now,
                last_modification: now,
            });
        }
        let words = |n: usize| -> Result<Vec<i64>, Errno> {
            let b = self.caller.read_bytes(addr, 8 * n)?;
            Ok(b.chunks_exact(8)
                .map(|c| i64::from_ne_bytes(c.try_into().unwrap_or([0; 8])))
                .collect())
        };
        let n = kind.bytes() / 8;
        let (a, m) = match kind {
            Times::Utimbuf => {
                let w = words(n)?;
                ((w[0], 0), (w[1], 0))
            }
            Times::Timeval => {
                let w = words(n)?;
                let usec = |u: i64| {
                    if (0..1_000_000).contains(&u) {
                        Ok(u * 1000)
                    } else {
                        Err(Errno::INVAL)
                    }
                };
                ((w[0], usec(w[1])?), (w[2], usec(w[3])?))
            }
            Times::Timespec => {
                let w = words(n)?;
                let ok =
                    |n: i64| (0..1_000_000_000).contains(&n) || n == UTIME_NOW || n == UTIME_OMIT;
                if !ok(w[1]) || !ok(w[3]) {
                    return Err(Errno::INVAL);
                }
                ((w[0], w[1]), (w[2], w[3]))
            }
        };
        let ts = |(tv_sec, tv_nsec): (i64, i64)| Timespec { tv_sec, tv_nsec };
        Ok(Timestamps {
            last_access: ts(a),
            last_modification: ts(m),
        })
    }
}

/// A change, read from the caller's memory.
enum Read {
    Mode(u32),
    Owner {
        uid: u32,
        gid: u32,
    },
    Times(Timestamps),
    SetXattr {
        name: CString,
        value: Vec<u8>,
        flags: i32,
    },
    RemoveXattr {
        name: CString,
    },
}

/// Maps `id` through a `/proc/<pid>/{uid,gid}_map` text (inside outside count per line).
pub(crate) fn map_id(text: &str, id: u32) -> Option<u32> {
    text.lines().find_map(|l| {
        let mut f = l.split_whitespace().map(|v| v.parse::<u64>().ok());
        let (inside, outside, count) = (f.next()??, f.next()??, f.next()??);
        let id = u64::from(id);
        (id >= inside && id - inside < count)
            .then(|| u32::try_from(outside + (id - inside)).ok())
            .flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::map_id;

    #[test]
    fn ids_map_through_the_namespace() {
        let m = "         0       1000          1\n         1     100000      65536\n";
        assert_eq!(map_id(m, 0), Some(1000));
        assert_eq!(map_id(m, 1), Some(100000));
        assert_eq!(map_id(m, 65536), Some(165535));
        assert_eq!(map_id(m, 65537), None);
        assert_eq!(map_id("garbage", 0), None);
    }
}
