//! The classic-BPF program that routes name-changing syscalls to the supervisor.

use super::request::META;

use crate::bpf::{self, Asm, To, AUDIT_ARCH_X86_64, RET_ALLOW, RET_USER_NOTIF, X32_SYSCALL_BIT};
use std::io;
use std::os::fd::OwnedFd;

/// Syscalls that are always routed to the supervisor.
const ALWAYS: &[libc::c_long] = &[
    libc::SYS_creat,
    libc::SYS_truncate,
    libc::SYS_connect,
    libc::SYS_bind,
    // Their destination is inside a struct: every one is routed (and performed by the guard).
    libc::SYS_sendmsg,
    libc::SYS_sendmmsg,
    libc::SYS_mkdir,
    libc::SYS_mkdirat,
    libc::SYS_mknod,
    libc::SYS_mknodat,
    libc::SYS_rename,
    libc::SYS_renameat,
    libc::SYS_renameat2,
    libc::SYS_link,
    libc::SYS_linkat,
    libc::SYS_symlink,
    libc::SYS_symlinkat,
    libc::SYS_unlink,
    libc::SYS_unlinkat,
    libc::SYS_rmdir,
    // Names nothing; seen so that the umasks the guard remembers are dropped (it continues).
    libc::SYS_umask,
];

/// Classic-BPF program (x86_64) returning SECCOMP_RET_USER_NOTIF for: open/openat when the flags
/// can create, write or truncate (O_CREAT, O_WRONLY, O_RDWR, O_TRUNC; not O_PATH or O_TMPFILE),
/// creat, truncate, connect, mkdir, mkdirat, mknod, mknodat,
/// rename, renameat, renameat2, link, linkat, symlink, symlinkat, unlink, unlinkat, rmdir,
/// bind, sendmsg, sendmmsg, sendto with a destination address (a plain `send` has none), the metadata
/// calls ([`META`]: chmod, chown, utimes, xattr families);
/// SECCOMP_RET_ALLOW for everything else (including a foreign arch: another filter handles arch).
pub fn filter_program() -> io::Result<Vec<libc::sock_filter>> {
    filter_program_with(false)
}

/// [`filter_program`], and with `reads` also every other open/openat except O_PATH ones (for
/// read asks: the guard answers "continue" for paths nobody asks about).
pub fn filter_program_with(reads: bool) -> io::Result<Vec<libc::sock_filter>> {
    // Opens that can create, write or truncate are routed; O_PATH and O_TMPFILE opens are not
    // (they create no name: linking an O_TMPFILE file into place goes through linkat).
    let writes = (libc::O_WRONLY | libc::O_RDWR | libc::O_CREAT | libc::O_TRUNC) as u32;
    let no_name = (libc::O_PATH | (libc::O_TMPFILE & !libc::O_DIRECTORY)) as u32;

    let mut p = Asm::new();
    let (allow, notify) = (p.label(), p.label());
    let (open, openat, sendto) = (p.label(), p.label(), p.label());
    // Another filter refuses foreign architectures and x32; this one routes x86_64 only.
    p.load_arch();
    p.jeq(AUDIT_ARCH_X86_64, To::Next, allow);
    p.load_nr();
    p.jge(X32_SYSCALL_BIT, allow, To::Next);
    p.jeq(libc::SYS_open as u32, open, To::Next);
    p.jeq(libc::SYS_openat as u32, openat, To::Next);
    p.jeq(libc::SYS_sendto as u32, sendto, To::Next);
    for nr in ALWAYS.iter().chain(META) {
        p.jeq(*nr as u32, notify, To::Next);
    }
    p.ret(RET_ALLOW);
    for (at, flags_arg) in [(open, 1), (openat, 2)] {
        p.bind(at);
        p.load_arg_lo(flags_arg);
        p.jset(no_name, allow, To::Next);
        p.jset(writes, notify, if reads { notify } else { allow });
    }
    // sendto's destination pointer (arg 4), both halves: NULL passes.
    p.bind(sendto);
    p.load_arg_lo(4);
    p.jeq(0, To::Next, notify);
    p.load_arg_hi(4);
    p.jeq(0, allow, notify);
    p.bind(notify);
    p.ret(RET_USER_NOTIF);
    p.bind(allow);
    p.ret(RET_ALLOW);
    p.finish()
}

/// Install that program on the calling thread with SECCOMP_FILTER_FLAG_NEW_LISTENER and return
/// the listener fd. Caller has already set no_new_privs. Must be called in the process that will
/// exec the sandboxed command.
pub fn install() -> io::Result<OwnedFd> {
    bpf::install_listener(&filter_program()?)
}

/// [`install`] with read-only opens routed too ([`filter_program_with`]`(true)`).
pub fn install_with_reads() -> io::Result<OwnedFd> {
    bpf::install_listener(&filter_program_with(true)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bpf::run;

    #[test]
    fn routes_exactly_the_listed_calls() {
        let p = filter_program().unwrap();
        let notif = RET_USER_NOTIF;
        let allow = RET_ALLOW;
        let x = AUDIT_ARCH_X86_64;
        let creat = libc::O_CREAT as u64;
        assert_eq!(run(&p, libc::SYS_open, x, [0, creat, 0, 0, 0, 0]), notif);
        // Read-only opens pass; writing ones are routed; O_PATH and O_TMPFILE create no name.
        assert_eq!(run(&p, libc::SYS_open, x, [0, 0, creat, 0, 0, 0]), allow);
        assert_eq!(run(&p, libc::SYS_open, x, [0, 0o2, 0, 0, 0, 0]), notif);
        assert_eq!(run(&p, libc::SYS_open, x, [0, 0o1, 0, 0, 0, 0]), notif);
        assert_eq!(
            run(&p, libc::SYS_open, x, [0, libc::O_TRUNC as u64, 0, 0, 0, 0]),
            notif
        );
        let opath = (libc::O_PATH | libc::O_WRONLY) as u64;
        assert_eq!(run(&p, libc::SYS_open, x, [0, opath, 0, 0, 0, 0]), allow);
        let tmpfile = (libc::O_TMPFILE | libc::O_RDWR) as u64;
        assert_eq!(
            run(&p, libc::SYS_openat, x, [0, 0, tmpfile, 0, 0, 0]),
            allow
        );
        assert_eq!(
            run(&p, libc::SYS_openat, x, [0, 0, creat | 1, 0, 0, 0]),
            notif
        );
        assert_eq!(run(&p, libc::SYS_openat, x, [0, creat, 0, 0, 0, 0]), allow);
        // High bits of a 64-bit arg must not confuse the flag test.
        assert_eq!(
            run(&p, libc::SYS_openat, x, [0, 0, 1 << 40, 0, 0, 0]),
            allow
        );
        for nr in ALWAYS.iter().chain(META) {
            assert_eq!(run(&p, *nr, x, [0; 6]), notif, "nr {nr}");
        }
        // sendto: a plain send (no destination) passes, one with a destination is routed,
        // whichever half of the pointer is set.
        assert_eq!(run(&p, libc::SYS_sendto, x, [3, 1, 1, 0, 0, 0]), allow);
        assert_eq!(
            run(&p, libc::SYS_sendto, x, [3, 1, 1, 0, 0x1000, 16]),
            notif
        );
        assert_eq!(
            run(&p, libc::SYS_sendto, x, [3, 1, 1, 0, 1 << 40, 16]),
            notif
        );
        for nr in [
            libc::SYS_read,
            libc::SYS_write,
            libc::SYS_openat2,
            libc::SYS_close,
        ] {
            assert_eq!(run(&p, nr, x, [0, 0, creat, 0, 0, 0]), allow, "nr {nr}");
        }
        assert_eq!(run(&p, libc::SYS_mkdir, 0x4000_0003, [0; 6]), allow);
        // With reads routed: plain read opens go to the guard, O_PATH ones still do not.
        let r = filter_program_with(true).unwrap();
        assert_eq!(run(&r, libc::SYS_open, x, [0, 0, 0, 0, 0, 0]), notif);
        assert_eq!(run(&r, libc::SYS_openat, x, [0, 0, 0, 0, 0, 0]), notif);
        let dir = libc::O_DIRECTORY as u64;
        assert_eq!(run(&r, libc::SYS_openat, x, [0, 0, dir, 0, 0, 0]), notif);
        assert_eq!(
            run(
                &r,
                libc::SYS_openat,
                x,
                [0, 0, libc::O_PATH as u64, 0, 0, 0]
            ),
            allow
        );
        assert_eq!(
            run(&r, libc::SYS_openat, x, [0, 0, creat | 1, 0, 0, 0]),
            notif
        );
        assert_eq!(run(&r, libc::SYS_read, x, [0; 6]), allow);
        assert_eq!(run(&p, libc::SYS_mkdir | 0x4000_0000, x, [0; 6]), allow);
    }
}
