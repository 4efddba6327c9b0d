//! Decoding a notification's syscall number and raw arguments.

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
        _ => return None,
    })
}

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
}
