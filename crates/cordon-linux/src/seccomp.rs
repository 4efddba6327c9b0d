//! The sandbox's seccomp denylist, assembled as classic BPF.
//!
//! Why hand-assembled: the filter is a short table (syscall -> errno, plus three argument
//! checks), and it has to do two things `seccompiler` does not: refuse x32 syscall numbers
//! (same AUDIT_ARCH as x86_64, bit 30 set) and return ENOSYS for `clone3`/`openat2` so libc
//! falls back to calls whose arguments a filter can read. Denials return an errno, never kill,
//! so programs that probe for a feature keep working.

use std::io;

/// Offsets into `struct seccomp_data`.
const OFF_NR: u32 = 0;
const OFF_ARCH: u32 = 4;
const fn off_arg_lo(i: u32) -> u32 {
    16 + 8 * i
}

const AUDIT_ARCH_X86_64: u32 = 0xC000_003E;
const X32_SYSCALL_BIT: u32 = 0x4000_0000;

const RET_ALLOW: u32 = 0x7fff_0000;
const RET_ERRNO: u32 = 0x0005_0000;

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

/// A tiny classic-BPF assembler.
#[derive(Default)]
struct Prog(Vec<libc::sock_filter>);

impl Prog {
    fn push(&mut self, code: u16, jt: u8, jf: u8, k: u32) {
        self.0.push(libc::sock_filter { code, jt, jf, k });
    }
    fn load(&mut self, offset: u32) {
        self.push(
            (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16,
            0,
            0,
            offset,
        );
    }
    fn ret(&mut self, k: u32) {
        self.push((libc::BPF_RET | libc::BPF_K) as u16, 0, 0, k);
    }
    fn ret_errno(&mut self, errno: i32) {
        self.ret(RET_ERRNO | (errno as u32 & 0xffff));
    }
    /// if A == k { fall through } else { skip `skip` instructions }
    fn if_eq(&mut self, k: u32, skip: u8) {
        self.push(
            (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16,
            0,
            skip,
            k,
        );
    }
    /// if A == k { skip `skip` instructions } else { fall through }
    fn unless_eq(&mut self, k: u32, skip: u8) {
        self.push(
            (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16,
            skip,
            0,
            k,
        );
    }
    /// if A & k != 0 { fall through } else { skip `skip` }
    fn if_any_bit(&mut self, k: u32, skip: u8) {
        self.push(
            (libc::BPF_JMP | libc::BPF_JSET | libc::BPF_K) as u16,
            0,
            skip,
            k,
        );
    }
    /// if A >= k { fall through } else { skip `skip` }
    fn if_ge(&mut self, k: u32, skip: u8) {
        self.push(
            (libc::BPF_JMP | libc::BPF_JGE | libc::BPF_K) as u16,
            0,
            skip,
            k,
        );
    }
    fn len(&self) -> usize {
        self.0.len()
    }
}

/// Emits `if nr == syscall { <block> }`, where the block ends in a return.
fn syscall_block(p: &mut Prog, nr: i64, block: impl FnOnce(&mut Prog)) {
    let mut inner = Prog::default();
    block(&mut inner);
    // Blocks are a handful of instructions; a jump offset always fits in u8.
    let skip = u8::try_from(inner.len()).unwrap_or(u8::MAX);
    p.if_eq(nr as u32, skip);
    p.0.extend(inner.0);
}

/// Builds the denylist program.
pub fn denylist_program() -> Vec<libc::sock_filter> {
    program(ALLOWED_FAMILIES, true)
}

/// The denylist for a sandbox without a network namespace: only unix sockets may be made, so
/// nothing can reach the network at all.
pub fn denylist_program_no_inet() -> Vec<libc::sock_filter> {
    program(&[libc::AF_UNIX as u32], false)
}

fn program(families: &[u32], netlink_route: bool) -> Vec<libc::sock_filter> {
    let mut p = Prog::default();
    p.load(OFF_ARCH);
    // A foreign architecture (i386 through int 0x80) gets EPERM for every syscall.
    p.unless_eq(AUDIT_ARCH_X86_64, 1);
    p.ret_errno(libc::EPERM);

    p.load(OFF_NR);
    p.if_ge(X32_SYSCALL_BIT, 1);
    p.ret_errno(libc::EPERM);

    for (nr, errno) in DENY {
        p.if_eq(*nr as u32, 1);
        p.ret_errno(*errno);
    }

    for nr in [libc::SYS_clone, libc::SYS_unshare] {
        syscall_block(&mut p, nr, |b| {
            b.load(off_arg_lo(0));
            b.if_any_bit(NEW_NAMESPACE_FLAGS, 1);
            b.ret_errno(libc::EPERM);
            b.ret(RET_ALLOW);
        });
    }

    syscall_block(&mut p, libc::SYS_ioctl, |b| {
        b.load(off_arg_lo(1));
        for cmd in DENIED_IOCTLS {
            b.if_eq(*cmd, 1);
            b.ret_errno(libc::EPERM);
        }
        b.ret(RET_ALLOW);
    });

    for nr in [libc::SYS_socket, libc::SYS_socketpair] {
        syscall_block(&mut p, nr, |b| {
            b.load(off_arg_lo(0));
            for fam in families {
                b.if_eq(*fam, 1);
                b.ret(RET_ALLOW);
            }
            if nr == libc::SYS_socket && netlink_route {
                b.if_eq(libc::AF_NETLINK as u32, 3);
                b.load(off_arg_lo(2));
                b.if_eq(libc::NETLINK_ROUTE as u32, 1);
                b.ret(RET_ALLOW);
            }
            b.ret_errno(libc::EAFNOSUPPORT);
        });
    }

    p.ret(RET_ALLOW);
    p.0
}

/// Installs a BPF program on the calling thread (no_new_privs must already be set).
/// `flags` are SECCOMP_FILTER_FLAG_* values; the return value is the syscall's (a listener fd
/// when SECCOMP_FILTER_FLAG_NEW_LISTENER is passed).
pub fn install(program: &[libc::sock_filter], flags: libc::c_ulong) -> io::Result<libc::c_long> {
    let len = u16::try_from(program.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "seccomp program too long"))?;
    let fprog = libc::sock_fprog {
        len,
        filter: program.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: fprog points at a valid program that outlives the call; the kernel copies it.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER as libc::c_ulong,
            flags,
            &fprog as *const libc::sock_fprog,
        )
    };
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn program_is_well_formed() {
        let p = denylist_program();
        assert!(p.len() < 400, "program too long: {}", p.len());
        let last = p.last().map(|i| (i.code, i.k));
        assert_eq!(
            last,
            Some(((libc::BPF_RET | libc::BPF_K) as u16, RET_ALLOW))
        );
        // Every jump lands inside the program.
        for (i, ins) in p.iter().enumerate() {
            if ins.code & 0x07 == libc::BPF_JMP as u16 {
                assert!(i + 1 + (ins.jt as usize) < p.len());
                assert!(i + 1 + (ins.jf as usize) < p.len());
            }
        }
    }
}
