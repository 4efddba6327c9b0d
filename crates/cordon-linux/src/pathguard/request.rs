//! Decoding a notification's syscall number and raw arguments.

use super::caller::MemRead;
use super::resolve::Base;

/// A routed syscall with its arguments. Addresses are in the caller's memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Request {
    Open {
        base: Base,
        path: u64,
        flags: i32,
        mode: u32,
    },
    Mkdir {
        base: Base,
        path: u64,
        mode: u32,
    },
    Mknod {
        base: Base,
        path: u64,
        mode: u32,
    },
    Symlink {
        target: u64,
        base: Base,
        path: u64,
    },
    Link {
        old_base: Base,
        old: u64,
        new_base: Base,
        new: u64,
        flags: i32,
    },
    Rename {
        old_base: Base,
        old: u64,
        new_base: Base,
        new: u64,
        flags: u32,
    },
    Unlink {
        base: Base,
        path: u64,
        /// 0 or AT_REMOVEDIR.
        flags: i32,
    },
    Truncate {
        path: u64,
        len: i64,
    },
    /// chmod, chown, utimes and xattr changes, by path or by fd.
    Meta {
        on: On,
        change: Change,
    },
}

/// What a metadata change applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum On {
    /// A path (relative ones from `base`); `follow`: a final symlink is followed; `empty`:
    /// an empty path means `base` itself (AT_EMPTY_PATH, or utimensat's NULL path).
    Path {
        base: Base,
        path: u64,
        follow: bool,
        empty: bool,
    },
    /// An open file descriptor of the caller.
    Fd(i32),
}

/// A metadata change; addresses are in the caller's memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Change {
    Mode(u32),
    /// Ids as the caller's user namespace numbers them; u32::MAX: unchanged.
    Owner {
        uid: u32,
        gid: u32,
    },
    /// Times as the syscall passes them (0: now).
    Times {
        kind: Times,
        addr: u64,
    },
    SetXattr {
        name: u64,
        value: u64,
        size: usize,
        flags: i32,
    },
    RemoveXattr {
        name: u64,
    },
}

/// The layout of a times argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Times {
    /// `struct utimbuf` (utime).
    Utimbuf,
    /// `struct timeval[2]` (utimes, futimesat).
    Timeval,
    /// `struct timespec[2]` (utimensat).
    Timespec,
}

impl Times {
    /// Bytes of the argument.
    pub fn bytes(self) -> usize {
        match self {
            Times::Utimbuf => 16,
            Times::Timeval | Times::Timespec => 32,
        }
    }
}

impl Request {
    /// Every read of the caller's memory handling this call makes, when its arguments say
    /// them all (up to two); `None`: it reads more (xattr values), read it through the fd.
    pub fn mem_reads(&self) -> Option<([MemRead; 2], usize)> {
        let none = MemRead::Cstr(0);
        let one = |a| Some(([MemRead::Cstr(a), none], 1));
        let two = |a, b| Some(([MemRead::Cstr(a), MemRead::Cstr(b)], 2));
        match *self {
            Request::Open { path, .. }
            | Request::Mkdir { path, .. }
            | Request::Mknod { path, .. }
            | Request::Unlink { path, .. }
            | Request::Truncate { path, .. } => one(path),
            Request::Symlink { target, path, .. } => two(target, path),
            Request::Link { old, new, .. } | Request::Rename { old, new, .. } => two(old, new),
            Request::Meta { on, change } => {
                let first = match on {
                    On::Path { path, .. } => Some(MemRead::Cstr(path)),
                    On::Fd(_) => None,
                };
                let second = match change {
                    Change::Mode(_) | Change::Owner { .. } => None,
                    Change::Times { addr: 0, .. } => None,
                    Change::Times { kind, addr } => Some(MemRead::Bytes(addr, kind.bytes())),
                    Change::SetXattr { .. } | Change::RemoveXattr { .. } => return None,
                };
                let mut out = ([none, none], 0);
                for r in [first, second].into_iter().flatten() {
                    out.0[out.1] = r;
                    out.1 += 1;
                }
                Some(out)
            }
        }
    }
}

/// `int` arguments arrive sign- or zero-extended; only the low 32 bits count.
fn int(v: u64) -> i32 {
    v as u32 as i32
}

fn dirfd(v: u64) -> Base {
    match int(v) {
        libc::AT_FDCWD => Base::Cwd,
        fd => Base::Fd(fd),
    }
}

/// Decodes an x86_64 syscall; `None` for numbers we do not route.
pub(crate) fn decode(nr: i64, a: &[u64; 6]) -> Option<Request> {
    let cwd = Base::Cwd;
    Some(match nr {
        libc::SYS_open => Request::Open {
            base: cwd,
            path: a[0],
            flags: int(a[1]),
            mode: a[2] as u32,
        },
        libc::SYS_openat => Request::Open {
            base: dirfd(a[0]),
            path: a[1],
            flags: int(a[2]),
            mode: a[3] as u32,
        },
        libc::SYS_truncate => Request::Truncate {
            path: a[0],
            len: a[1] as i64,
        },
        libc::SYS_creat => Request::Open {
            base: cwd,
            path: a[0],
            flags: libc::O_CREAT | libc::O_WRONLY | libc::O_TRUNC,
            mode: a[1] as u32,
        },
        libc::SYS_mkdir => Request::Mkdir {
            base: cwd,
            path: a[0],
            mode: a[1] as u32,
        },
        libc::SYS_mkdirat => Request::Mkdir {
            base: dirfd(a[0]),
            path: a[1],
            mode: a[2] as u32,
        },
        libc::SYS_mknod => Request::Mknod {
            base: cwd,
            path: a[0],
            mode: a[1] as u32,
        },
        libc::SYS_mknodat => Request::Mknod {
            base: dirfd(a[0]),
            path: a[1],
            mode: a[2] as u32,
        },
        libc::SYS_symlink => Request::Symlink {
            target: a[0],
            base: cwd,
            path: a[1],
        },
        libc::SYS_symlinkat => Request::Symlink {
            target: a[0],
            base: dirfd(a[1]),
            path: a[2],
        },
        libc::SYS_link => Request::Link {
            old_base: cwd,
            old: a[0],
            new_base: cwd,
            new: a[1],
            flags: 0,
        },
        libc::SYS_linkat => Request::Link {
            old_base: dirfd(a[0]),
            old: a[1],
            new_base: dirfd(a[2]),
            new: a[3],
            flags: int(a[4]),
        },
        libc::SYS_rename => Request::Rename {
            old_base: cwd,
            old: a[0],
            new_base: cwd,
            new: a[1],
            flags: 0,
        },
        libc::SYS_renameat => Request::Rename {
            old_base: dirfd(a[0]),
            old: a[1],
            new_base: dirfd(a[2]),
            new: a[3],
            flags: 0,
        },
        libc::SYS_renameat2 => Request::Rename {
            old_base: dirfd(a[0]),
            old: a[1],
            new_base: dirfd(a[2]),
            new: a[3],
            flags: a[4] as u32,
        },
        libc::SYS_unlink => Request::Unlink {
            base: cwd,
            path: a[0],
            flags: 0,
        },
        libc::SYS_unlinkat => Request::Unlink {
            base: dirfd(a[0]),
            path: a[1],
            flags: int(a[2]),
        },
        libc::SYS_rmdir => Request::Unlink {
            base: cwd,
            path: a[0],
            flags: libc::AT_REMOVEDIR,
        },
        _ => return decode_meta(nr, a),
    })
}

fn path_at(base: Base, path: u64, flags: i32) -> On {
    On::Path {
        base,
        path,
        follow: flags & libc::AT_SYMLINK_NOFOLLOW == 0,
        empty: flags & libc::AT_EMPTY_PATH != 0,
    }
}

fn decode_meta(nr: i64, a: &[u64; 6]) -> Option<Request> {
    let cwd = Base::Cwd;
    let follow = |path| path_at(cwd, path, 0);
    let nofollow = |path| path_at(cwd, path, libc::AT_SYMLINK_NOFOLLOW);
    let owner = Change::Owner {
        uid: a[1] as u32,
        gid: a[2] as u32,
    };
    let set = |name, value, size: u64, flags| Change::SetXattr {
        name,
        value,
        size: size as usize,
        flags: int(flags),
    };
    let (on, change) = match nr {
        libc::SYS_chmod => (follow(a[0]), Change::Mode(a[1] as u32)),
        libc::SYS_fchmod => (On::Fd(int(a[0])), Change::Mode(a[1] as u32)),
        libc::SYS_fchmodat => (path_at(dirfd(a[0]), a[1], 0), Change::Mode(a[2] as u32)),
        libc::SYS_fchmodat2 => (
            path_at(dirfd(a[0]), a[1], int(a[3])),
            Change::Mode(a[2] as u32),
        ),
        libc::SYS_chown => (follow(a[0]), owner),
        libc::SYS_lchown => (nofollow(a[0]), owner),
        libc::SYS_fchown => (On::Fd(int(a[0])), owner),
        libc::SYS_fchownat => (
            path_at(dirfd(a[0]), a[1], int(a[4])),
            Change::Owner {
                uid: a[2] as u32,
                gid: a[3] as u32,
            },
        ),
        libc::SYS_utime => (
            follow(a[0]),
            Change::Times {
                kind: Times::Utimbuf,
                addr: a[1],
            },
        ),
        libc::SYS_utimes => (
            follow(a[0]),
            Change::Times {
                kind: Times::Timeval,
                addr: a[1],
            },
        ),
        libc::SYS_futimesat => (
            path_at(dirfd(a[0]), a[1], 0),
            Change::Times {
                kind: Times::Timeval,
                addr: a[2],
            },
        ),
        libc::SYS_utimensat => {
            let flags = int(a[3]);
            let on = if a[1] == 0 {
                // A NULL path: the fd itself (glibc's futimens).
                On::Fd(int(a[0]))
            } else {
                path_at(dirfd(a[0]), a[1], flags)
            };
            let kind = Times::Timespec;
            (on, Change::Times { kind, addr: a[2] })
        }
        libc::SYS_setxattr => (follow(a[0]), set(a[1], a[2], a[3], a[4])),
        libc::SYS_lsetxattr => (nofollow(a[0]), set(a[1], a[2], a[3], a[4])),
        libc::SYS_fsetxattr => (On::Fd(int(a[0])), set(a[1], a[2], a[3], a[4])),
        libc::SYS_removexattr => (follow(a[0]), Change::RemoveXattr { name: a[1] }),
        libc::SYS_lremovexattr => (nofollow(a[0]), Change::RemoveXattr { name: a[1] }),
        libc::SYS_fremovexattr => (On::Fd(int(a[0])), Change::RemoveXattr { name: a[1] }),
        _ => return None,
    };
    Some(Request::Meta { on, change })
}

/// The metadata-changing syscalls [`decode`] understands (all routed).
pub(crate) const META: &[libc::c_long] = &[
    libc::SYS_chmod,
    libc::SYS_fchmod,
    libc::SYS_fchmodat,
    libc::SYS_fchmodat2,
    libc::SYS_chown,
    libc::SYS_lchown,
    libc::SYS_fchown,
    libc::SYS_fchownat,
    libc::SYS_utime,
    libc::SYS_utimes,
    libc::SYS_futimesat,
    libc::SYS_utimensat,
    libc::SYS_setxattr,
    libc::SYS_lsetxattr,
    libc::SYS_fsetxattr,
    libc::SYS_removexattr,
    libc::SYS_lremovexattr,
    libc::SYS_fremovexattr,
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_dirfds_and_flags() {
        let at = libc::AT_FDCWD as i64 as u64;
        assert_eq!(
            decode(libc::SYS_openat, &[at, 7, 0x41, 0o644, 0, 0]),
            Some(Request::Open {
                base: Base::Cwd,
                path: 7,
                flags: 0x41,
                mode: 0o644
            })
        );
        // A dirfd passed zero-extended still reads as AT_FDCWD.
        let at32 = libc::AT_FDCWD as u32 as u64;
        assert!(matches!(
            decode(libc::SYS_mkdirat, &[at32, 1, 0, 0, 0, 0]),
            Some(Request::Mkdir {
                base: Base::Cwd,
                ..
            })
        ));
        assert!(matches!(
            decode(libc::SYS_rmdir, &[1, 0, 0, 0, 0, 0]),
            Some(Request::Unlink {
                flags: libc::AT_REMOVEDIR,
                ..
            })
        ));
        assert_eq!(decode(libc::SYS_read, &[0; 6]), None);
    }

    #[test]
    fn decodes_every_metadata_form() {
        for nr in META {
            assert!(
                matches!(decode(*nr, &[3, 1, 2, 3, 4, 5]), Some(Request::Meta { .. })),
                "nr {nr}"
            );
        }
        let at = libc::AT_FDCWD as i64 as u64;
        let empty = libc::AT_EMPTY_PATH as u64;
        assert_eq!(
            decode(libc::SYS_fchownat, &[5, 9, 1, 2, empty, 0]),
            Some(Request::Meta {
                on: On::Path {
                    base: Base::Fd(5),
                    path: 9,
                    follow: true,
                    empty: true
                },
                change: Change::Owner { uid: 1, gid: 2 }
            })
        );
        // futimens is utimensat with a NULL path: the fd.
        assert!(matches!(
            decode(libc::SYS_utimensat, &[4, 0, 7, 0, 0, 0]),
            Some(Request::Meta { on: On::Fd(4), .. })
        ));
        let nofollow = libc::AT_SYMLINK_NOFOLLOW as u64;
        assert!(matches!(
            decode(libc::SYS_fchmodat2, &[at, 1, 0o755, nofollow, 0, 0]),
            Some(Request::Meta {
                on: On::Path {
                    base: Base::Cwd,
                    follow: false,
                    ..
                },
                change: Change::Mode(0o755)
            })
        ));
    }
}
