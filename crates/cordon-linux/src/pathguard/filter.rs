//! The classic-BPF program that routes name-changing syscalls to the supervisor.

use super::request::META;

use std::io;
use std::os::fd::{FromRawFd, OwnedFd};

/// `AUDIT_ARCH_X86_64` (EM_X86_64 | __AUDIT_ARCH_64BIT | __AUDIT_ARCH_LE).
const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
/// x32 syscalls carry this bit; the main filter denies them, we only route x86_64 ones.
const X32_SYSCALL_BIT: u32 = 0x4000_0000;

/// Offsets into `struct seccomp_data`.
const OFF_NR: u32 = 0;
const OFF_ARCH: u32 = 4;
/// Low 32 bits of `args[i]` (little endian); open flags are an `int`.
const fn off_arg_lo(i: u32) -> u32 {
    16 + 8 * i
}
const fn off_arg_hi(i: u32) -> u32 {
    20 + 8 * i
}

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
];

fn stmt(code: u32, k: u32) -> libc::sock_filter {
    libc::sock_filter {
        code: code as u16,
        jt: 0,
        jf: 0,
        k,
    }
}

fn jump(code: u32, k: u32, jt: usize, jf: usize) -> libc::sock_filter {
    // Offsets are bounded by the (small, fixed) program length, so they always fit.
    libc::sock_filter {
        code: code as u16,
        jt: u8::try_from(jt).unwrap_or(u8::MAX),
        jf: u8::try_from(jf).unwrap_or(u8::MAX),
        k,
    }
}

/// Classic-BPF program (x86_64) returning SECCOMP_RET_USER_NOTIF for: open/openat when the flags
/// can create, write or truncate (O_CREAT, O_WRONLY, O_RDWR, O_TRUNC; not O_PATH or O_TMPFILE),
/// creat, truncate, connect, mkdir, mkdirat, mknod, mknodat,
/// rename, renameat, renameat2, link, linkat, symlink, symlinkat, unlink, unlinkat, rmdir,
/// bind, sendmsg, sendmmsg, sendto with a destination address (a plain `send` has none), the metadata
/// calls ([`META`]: chmod, chown, utimes, xattr families);
/// SECCOMP_RET_ALLOW for everything else (including a foreign arch: another filter handles arch).
pub fn filter_program() -> Vec<libc::sock_filter> {
    filter_program_with(false)
}

/// [`filter_program`], and with `reads` also every other open/openat except O_PATH ones (for
/// read asks: the guard answers "continue" for paths nobody asks about).
pub fn filter_program_with(reads: bool) -> Vec<libc::sock_filter> {
    const LD_W_ABS: u32 = libc::BPF_LD | libc::BPF_W | libc::BPF_ABS;
    const JEQ: u32 = libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K;
    const JGE: u32 = libc::BPF_JMP | libc::BPF_JGE | libc::BPF_K;
    const JSET: u32 = libc::BPF_JMP | libc::BPF_JSET | libc::BPF_K;
    const RET: u32 = libc::BPF_RET | libc::BPF_K;
    // Opens that can create, write or truncate are routed; O_PATH and O_TMPFILE opens are not
    // (they create no name: linking an O_TMPFILE file into place goes through linkat).
    let writes = (libc::O_WRONLY | libc::O_RDWR | libc::O_CREAT | libc::O_TRUNC) as u32;
    let no_name = (libc::O_PATH | (libc::O_TMPFILE & !libc::O_DIRECTORY)) as u32;

    // Layout: [0] ld arch, [1] jeq, [2] ld nr, [3] jge x32, [4] open, [5] openat, [6] sendto,
    // [7..7+n] always-list, then: ret ALLOW (fallthrough), OPEN1 (3), OPEN2 (3), SENDTO (4),
    // NOTIFY, ALLOW.
    let routed: Vec<libc::c_long> = ALWAYS.iter().chain(META).copied().collect();
    let n = routed.len();
    let fallthrough = 7 + n;
    let open1 = fallthrough + 1;
    let open2 = open1 + 3;
    let send = open2 + 3;
    let notify = send + 4;
    let allow = notify + 1;
    // Relative jump from instruction `at` to `target`.
    let rel = |at: usize, target: usize| target - at - 1;

    let mut p = Vec::with_capacity(allow + 1);
    p.push(stmt(LD_W_ABS, OFF_ARCH));
    p.push(jump(JEQ, AUDIT_ARCH_X86_64, 0, rel(1, allow)));
    p.push(stmt(LD_W_ABS, OFF_NR));
    p.push(jump(JGE, X32_SYSCALL_BIT, rel(3, allow), 0));
    p.push(jump(JEQ, libc::SYS_open as u32, rel(4, open1), 0));
    p.push(jump(JEQ, libc::SYS_openat as u32, rel(5, open2), 0));
    p.push(jump(JEQ, libc::SYS_sendto as u32, rel(6, send), 0));
    for (i, nr) in routed.iter().enumerate() {
        let at = 7 + i;
        p.push(jump(JEQ, *nr as u32, rel(at, notify), 0));
    }
    p.push(stmt(RET, libc::SECCOMP_RET_ALLOW));
    for (start, arg) in [(open1, 1), (open2, 2)] {
        p.push(stmt(LD_W_ABS, off_arg_lo(arg)));
        p.push(jump(JSET, no_name, rel(start + 1, allow), 0));
        p.push(jump(
            JSET,
            writes,
            rel(start + 2, notify),
            rel(start + 2, if reads { notify } else { allow }),
        ));
    }
    // sendto's destination pointer (arg 4), both halves: NULL passes.
    p.push(stmt(LD_W_ABS, off_arg_lo(4)));
    p.push(jump(JEQ, 0, 0, rel(send + 1, notify)));
    p.push(stmt(LD_W_ABS, off_arg_hi(4)));
    p.push(jump(JEQ, 0, rel(send + 3, allow), rel(send + 3, notify)));
    p.push(stmt(RET, libc::SECCOMP_RET_USER_NOTIF));
    p.push(stmt(RET, libc::SECCOMP_RET_ALLOW));
    p
}

/// Install that program on the calling thread with SECCOMP_FILTER_FLAG_NEW_LISTENER and return
/// the listener fd. Caller has already set no_new_privs. Must be called in the process that will
/// exec the sandboxed command.
pub fn install() -> io::Result<OwnedFd> {
    install_program(filter_program())
}

/// [`install`] with read-only opens routed too ([`filter_program_with`]`(true)`).
pub fn install_with_reads() -> io::Result<OwnedFd> {
    install_program(filter_program_with(true))
}

fn install_program(mut prog: Vec<libc::sock_filter>) -> io::Result<OwnedFd> {
    let fprog = libc::sock_fprog {
        len: u16::try_from(prog.len()).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?,
        filter: prog.as_mut_ptr(),
    };
    // SAFETY: `fprog` points at a live, correctly sized filter array for the duration of the
    // call; the kernel copies it. The return value is a new fd we own, or -1.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            libc::SECCOMP_FILTER_FLAG_NEW_LISTENER,
            &fprog as *const libc::sock_fprog,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    let fd = i32::try_from(fd).map_err(|_| io::Error::from_raw_os_error(libc::EBADF))?;
    // SAFETY: the kernel just returned this fd to us and nobody else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tiny classic-BPF interpreter, enough for this program, so routing is unit-tested.
    fn run(prog: &[libc::sock_filter], nr: i64, arch: u32, args: [u64; 6]) -> u32 {
        let mut data = [0u8; 64];
        data[0..4].copy_from_slice(&(nr as u32).to_le_bytes());
        data[4..8].copy_from_slice(&arch.to_le_bytes());
        for (i, a) in args.iter().enumerate() {
            data[16 + 8 * i..24 + 8 * i].copy_from_slice(&a.to_le_bytes());
        }
        let mut acc = 0u32;
        let mut pc = 0usize;
        loop {
            let ins = prog[pc];
            let code = u32::from(ins.code);
            pc += 1;
            match code {
                c if c == libc::BPF_LD | libc::BPF_W | libc::BPF_ABS => {
                    let k = ins.k as usize;
                    acc = u32::from_le_bytes([data[k], data[k + 1], data[k + 2], data[k + 3]]);
                }
                c if c == libc::BPF_RET | libc::BPF_K => return ins.k,
                c => {
                    let taken = match c & 0xf0 {
                        x if x == libc::BPF_JEQ => acc == ins.k,
                        x if x == libc::BPF_JGE => acc >= ins.k,
                        x if x == libc::BPF_JSET => acc & ins.k != 0,
                        _ => panic!("unexpected opcode {c:#x}"),
                    };
                    pc += usize::from(if taken { ins.jt } else { ins.jf });
                }
            }
        }
    }

    #[test]
    fn routes_exactly_the_listed_calls() {
        let p = filter_program();
        let notif = libc::SECCOMP_RET_USER_NOTIF;
        let allow = libc::SECCOMP_RET_ALLOW;
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
        let r = filter_program_with(true);
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
