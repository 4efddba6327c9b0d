//! The sandbox's seccomp denylist, assembled as classic BPF.
//!
//! Why hand-assembled: the filter is a short table (syscall -> errno, plus three argument
//! checks), and it has to do two things `seccompiler` does not: refuse x32 syscall numbers
//! (same AUDIT_ARCH as x86_64, bit 30 set) and return ENOSYS for `clone3`/`openat2` so libc
//! falls back to calls whose arguments a filter can read. Denials return an errno, never kill,
//! so programs that probe for a feature keep working.

use std::io;

use crate::bpf::{Asm, To, AUDIT_ARCH_X86_64, RET_ALLOW, X32_SYSCALL_BIT};

/// x86_64 numbers the libc crate does not name yet.
const SYS_SETXATTRAT: i64 = 463;
const SYS_REMOVEXATTRAT: i64 = 466;

/// Syscalls that are refused outright, with the errno returned.
const DENY: &[(i64, i32)] = &[
    (libc::SYS_io_uring_setup, libc::EPERM),
    (libc::SYS_io_uring_enter, libc::EPERM),
    (libc::SYS_io_uring_register, libc::EPERM),
    (libc::SYS_ptrace, libc::EPERM),
    (libc::SYS_process_vm_readv, libc::EPERM),
    (libc::SYS_process_vm_writev, libc::EPERM),
    (libc::SYS_pidfd_getfd, libc::EPERM),
    (libc::SYS_process_madvise, libc::EPERM),
    (libc::SYS_bpf, libc::EPERM),
    (libc::SYS_perf_event_open, libc::EPERM),
    (libc::SYS_userfaultfd, libc::EPERM),
    (libc::SYS_keyctl, libc::EPERM),
    (libc::SYS_add_key, libc::EPERM),
    (libc::SYS_request_key, libc::EPERM),
    (libc::SYS_kexec_load, libc::EPERM),
    (libc::SYS_kexec_file_load, libc::EPERM),
    (libc::SYS_init_module, libc::EPERM),
    (libc::SYS_finit_module, libc::EPERM),
    (libc::SYS_delete_module, libc::EPERM),
    (libc::SYS_mount, libc::EPERM),
    (libc::SYS_umount2, libc::EPERM),
    (libc::SYS_pivot_root, libc::EPERM),
    (libc::SYS_chroot, libc::EPERM),
    (libc::SYS_fsopen, libc::EPERM),
    (libc::SYS_fsconfig, libc::EPERM),
    (libc::SYS_fsmount, libc::EPERM),
    (libc::SYS_fspick, libc::EPERM),
    (libc::SYS_open_tree, libc::EPERM),
    (libc::SYS_move_mount, libc::EPERM),
    (libc::SYS_mount_setattr, libc::EPERM),
    (libc::SYS_swapon, libc::EPERM),
    (libc::SYS_swapoff, libc::EPERM),
    (libc::SYS_reboot, libc::EPERM),
    (libc::SYS_setns, libc::EPERM),
    (libc::SYS_acct, libc::EPERM),
    (libc::SYS_quotactl, libc::EPERM),
    (libc::SYS_quotactl_fd, libc::EPERM),
    (libc::SYS_lookup_dcookie, libc::EPERM),
    (libc::SYS_iopl, libc::EPERM),
    (libc::SYS_ioperm, libc::EPERM),
    (libc::SYS_syslog, libc::EPERM),
    (libc::SYS_vhangup, libc::EPERM),
    (libc::SYS_open_by_handle_at, libc::EPERM),
    (libc::SYS_uselib, libc::EPERM),
    (libc::SYS_fanotify_init, libc::EPERM),
    (libc::SYS_settimeofday, libc::EPERM),
    (libc::SYS_clock_settime, libc::EPERM),
    (libc::SYS_clock_adjtime, libc::EPERM),
    (libc::SYS_adjtimex, libc::EPERM),
    // The filter cannot read clone3's flags (they live in a struct); ENOSYS makes libc use clone.
    (libc::SYS_clone3, libc::ENOSYS),
    // openat2's flags live in a struct too; the path guard needs readable flags.
    (libc::SYS_openat2, libc::ENOSYS),
    // The *xattrat forms (Linux 6.13) would need decoding of their own; ENOSYS makes tools
    // use setxattr/removexattr and friends, which the path guard decides.
    (SYS_SETXATTRAT, libc::ENOSYS),
    (SYS_REMOVEXATTRAT, libc::ENOSYS),
];

/// Namespace-creating clone/unshare flags.
const NEW_NAMESPACE_FLAGS: u32 = (libc::CLONE_NEWUSER
    | libc::CLONE_NEWNS
    | libc::CLONE_NEWPID
    | libc::CLONE_NEWNET
    | libc::CLONE_NEWIPC
    | libc::CLONE_NEWUTS
    | libc::CLONE_NEWCGROUP
    | 0x80/* CLONE_NEWTIME */) as u32;

/// Terminal ioctls that inject input or re-route the console. Compared on the low 32 bits,
/// which is what the kernel uses (the command is an `unsigned int`), so high-bit variants
/// such as 0xffffffff00005412 are caught too.
const DENIED_IOCTLS: &[u32] = &[
    libc::TIOCSTI as u32,
    libc::TIOCLINUX as u32,
    libc::TIOCSETD as u32,
    libc::TIOCCONS as u32,
];

/// Socket families the sandbox may create. Netlink is admitted for NETLINK_ROUTE only, so
/// `getifaddrs` and `ip addr` work on the sandbox's own network namespace.
const ALLOWED_FAMILIES: &[u32] = &[
    libc::AF_UNIX as u32,
    libc::AF_INET as u32,
    libc::AF_INET6 as u32,
];

/// Builds the denylist program.
pub fn denylist_program() -> io::Result<Vec<libc::sock_filter>> {
    program(ALLOWED_FAMILIES, true)
}

/// The denylist for a sandbox without a network namespace: only unix sockets may be made, so
/// nothing can reach the network at all.
pub fn denylist_program_no_inet() -> io::Result<Vec<libc::sock_filter>> {
    program(&[libc::AF_UNIX as u32], false)
}

fn program(families: &[u32], netlink_route: bool) -> io::Result<Vec<libc::sock_filter>> {
    let mut p = Asm::new();
    let native = p.label();
    p.load_arch();
    // A foreign architecture (i386 through int 0x80) gets EPERM for every syscall.
    p.jeq(AUDIT_ARCH_X86_64, native, To::Next);
    p.ret_errno(libc::EPERM);
    p.bind(native);

    p.load_nr();
    let x86_64 = p.label();
    p.jge(X32_SYSCALL_BIT, To::Next, x86_64);
    p.ret_errno(libc::EPERM);
    p.bind(x86_64);

    for (nr, errno) in DENY {
        p.if_eq(*nr as u32, |b| b.ret_errno(*errno));
    }

    for nr in [libc::SYS_clone, libc::SYS_unshare] {
        p.if_eq(nr as u32, |b| {
            b.load_arg_lo(0);
            let plain = b.label();
            b.jset(NEW_NAMESPACE_FLAGS, To::Next, plain);
            b.ret_errno(libc::EPERM);
            b.bind(plain);
            b.ret(RET_ALLOW);
        });
    }

    p.if_eq(libc::SYS_ioctl as u32, |b| {
        b.load_arg_lo(1);
        for cmd in DENIED_IOCTLS {
            b.if_eq(*cmd, |b| b.ret_errno(libc::EPERM));
        }
        b.ret(RET_ALLOW);
    });

    for nr in [libc::SYS_socket, libc::SYS_socketpair] {
        p.if_eq(nr as u32, |b| {
            b.load_arg_lo(0);
            for fam in families {
                b.if_eq(*fam, |b| b.ret(RET_ALLOW));
            }
            if nr == libc::SYS_socket && netlink_route {
                b.if_eq(libc::AF_NETLINK as u32, |b| {
                    b.load_arg_lo(2);
                    b.if_eq(libc::NETLINK_ROUTE as u32, |b| b.ret(RET_ALLOW));
                    b.ret_errno(libc::EAFNOSUPPORT);
                });
            }
            b.ret_errno(libc::EAFNOSUPPORT);
        });
    }

    p.ret(RET_ALLOW);
    p.finish()
}

pub use crate::bpf::install;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bpf::run;

    const X: u32 = AUDIT_ARCH_X86_64;

    fn errno(e: i32) -> u32 {
        libc::SECCOMP_RET_ERRNO | e as u32
    }

    #[test]
    fn program_is_well_formed() {
        let p = denylist_program().unwrap();
        assert!(p.len() < 400, "program too long: {}", p.len());
        let last = p.last().map(|i| (i.code, i.k));
        assert_eq!(
            last,
            Some(((libc::BPF_RET | libc::BPF_K) as u16, RET_ALLOW))
        );
    }

    #[test]
    fn denies_and_allows_what_it_says() {
        let p = denylist_program().unwrap();
        for (nr, e) in DENY {
            assert_eq!(run(&p, *nr, X, [0; 6]), errno(*e), "nr {nr}");
        }
        for nr in [libc::SYS_read, libc::SYS_openat, libc::SYS_execve] {
            assert_eq!(run(&p, nr, X, [0; 6]), RET_ALLOW, "nr {nr}");
        }
        // Foreign architectures and x32 numbers.
        assert_eq!(
            run(&p, libc::SYS_read, 0x4000_0003, [0; 6]),
            errno(libc::EPERM)
        );
        assert_eq!(
            run(&p, libc::SYS_read | 0x4000_0000, X, [0; 6]),
            errno(libc::EPERM)
        );
        // Namespaces through clone/unshare; plain threads and forks pass.
        let newuser = libc::CLONE_NEWUSER as u64;
        assert_eq!(
            run(&p, libc::SYS_unshare, X, [newuser, 0, 0, 0, 0, 0]),
            errno(libc::EPERM)
        );
        assert_eq!(
            run(&p, libc::SYS_clone, X, [0x80, 0, 0, 0, 0, 0]),
            errno(libc::EPERM)
        );
        let thread = (libc::CLONE_VM | libc::CLONE_THREAD) as u64;
        assert_eq!(
            run(&p, libc::SYS_clone, X, [thread, 0, 0, 0, 0, 0]),
            RET_ALLOW
        );
        // Terminal injection, also with high bits set in the command.
        let sti = libc::TIOCSTI;
        assert_eq!(
            run(&p, libc::SYS_ioctl, X, [0, sti, 0, 0, 0, 0]),
            errno(libc::EPERM)
        );
        assert_eq!(
            run(
                &p,
                libc::SYS_ioctl,
                X,
                [0, sti | 0xffff_ffff_0000_0000, 0, 0, 0, 0]
            ),
            errno(libc::EPERM)
        );
        let winsz = libc::TIOCGWINSZ;
        assert_eq!(
            run(&p, libc::SYS_ioctl, X, [0, winsz, 0, 0, 0, 0]),
            RET_ALLOW
        );
        // Socket families; netlink only for NETLINK_ROUTE.
        let af = |f: i32| f as u64;
        assert_eq!(
            run(&p, libc::SYS_socket, X, [af(libc::AF_INET), 1, 0, 0, 0, 0]),
            RET_ALLOW
        );
        assert_eq!(
            run(
                &p,
                libc::SYS_socket,
                X,
                [af(libc::AF_PACKET), 3, 0, 0, 0, 0]
            ),
            errno(libc::EAFNOSUPPORT)
        );
        let route = libc::NETLINK_ROUTE as u64;
        let audit = libc::NETLINK_AUDIT as u64;
        assert_eq!(
            run(
                &p,
                libc::SYS_socket,
                X,
                [af(libc::AF_NETLINK), 3, route, 0, 0, 0]
            ),
            RET_ALLOW
        );
        assert_eq!(
            run(
                &p,
                libc::SYS_socket,
                X,
                [af(libc::AF_NETLINK), 3, audit, 0, 0, 0]
            ),
            errno(libc::EAFNOSUPPORT)
        );
        assert_eq!(
            run(
                &p,
                libc::SYS_socketpair,
                X,
                [af(libc::AF_NETLINK), 3, route, 0, 0, 0]
            ),
            errno(libc::EAFNOSUPPORT)
        );
        let no_inet = denylist_program_no_inet().unwrap();
        assert_eq!(
            run(
                &no_inet,
                libc::SYS_socket,
                X,
                [af(libc::AF_INET), 1, 0, 0, 0, 0]
            ),
            errno(libc::EAFNOSUPPORT)
        );
        assert_eq!(
            run(
                &no_inet,
                libc::SYS_socket,
                X,
                [af(libc::AF_UNIX), 1, 0, 0, 0, 0]
            ),
            RET_ALLOW
        );
    }
}
