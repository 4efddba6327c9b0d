//! Thin wrappers over the syscalls that neither `rustix` nor `landlock` expose in the form we need.
//! Most of cordon-linux's `unsafe` lives here; the rest sits next to the one syscall it
//! wraps (seccomp and path-guard filters and notifications, pty descriptors, Landlock-only
//! and join set-up), each block with its `SAFETY:` comment.

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

/// Turns a libc-style return value into an `io::Result`.
fn check(ret: libc::c_long) -> io::Result<libc::c_long> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// Namespace flags for the sandbox's init.
pub const SANDBOX_NAMESPACES: libc::c_int = libc::CLONE_NEWUSER
    | libc::CLONE_NEWNS
    | libc::CLONE_NEWPID
    | libc::CLONE_NEWNET
    | libc::CLONE_NEWIPC
    | libc::CLONE_NEWUTS
    | libc::CLONE_NEWCGROUP;

/// `clone(2)` without a new stack: behaves like `fork` plus namespace flags.
/// Returns 0 in the child and the child's pid in the parent.
///
/// # Safety
/// The calling process must be single-threaded (as with `fork`), and the child must only
/// do what is safe after fork in that situation (it may allocate: there is no other thread
/// that could hold the allocator lock).
pub unsafe fn clone_namespaces(flags: libc::c_int) -> io::Result<libc::pid_t> {
    // SAFETY: raw clone with a NULL stack duplicates the calling thread's stack like fork;
    // the caller guarantees single-threadedness.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone,
            (flags | libc::SIGCHLD) as libc::c_ulong,
            0usize,
            0usize,
            0usize,
            0usize,
        )
    };
    check(ret).map(|p| p as libc::pid_t)
}

/// Plain `fork(2)`.
///
/// # Safety
/// Same conditions as [`clone_namespaces`].
pub unsafe fn fork() -> io::Result<libc::pid_t> {
    // SAFETY: see the function contract.
    let ret = unsafe { libc::fork() };
    check(ret as libc::c_long).map(|p| p as libc::pid_t)
}

pub fn prctl(option: libc::c_int, arg2: libc::c_ulong) -> io::Result<()> {
    // SAFETY: prctl with integer arguments only; no pointers are passed.
    let ret = unsafe {
        libc::prctl(
            option,
            arg2,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
        )
    };
    check(ret as libc::c_long).map(|_| ())
}

pub fn set_no_new_privs() -> io::Result<()> {
    prctl(libc::PR_SET_NO_NEW_PRIVS, 1)
}

pub fn set_parent_death_signal(sig: libc::c_int) -> io::Result<()> {
    prctl(libc::PR_SET_PDEATHSIG, sig as libc::c_ulong)
}

/// Overwrites this process's initial environment block (what /proc/self/environ shows) with
/// zeros. Only for processes that never read their environment again (the sandbox's init).
pub fn wipe_environment() {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return;
    };
    // Fields after the parenthesised command name; env_start and env_end are fields 51 and 52.
    let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
        return;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let (Some(start), Some(end)) = (
        fields.get(51 - 3).and_then(|s| s.parse::<usize>().ok()),
        fields.get(52 - 3).and_then(|s| s.parse::<usize>().ok()),
    ) else {
        return;
    };
    if end > start && end - start < (1 << 24) {
        // SAFETY: [start, end) is this process's own environment block, mapped and writable
        // (it lives at the top of the main thread's stack); nothing reads it afterwards.
        unsafe { std::ptr::write_bytes(start as *mut u8, 0, end - start) };
    }
}

#[allow(dead_code)]
pub fn set_dumpable(on: bool) -> io::Result<()> {
    prctl(libc::PR_SET_DUMPABLE, on as libc::c_ulong)
}

/// Drops every capability: bounding set, ambient set, and the effective/permitted/inheritable sets.
pub fn drop_all_capabilities() -> io::Result<()> {
    let last_cap = std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok())
        .unwrap_or(63);
    for cap in 0..=last_cap {
        match prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => break,
            Err(e) => return Err(e),
        }
    }
    // SAFETY: integer-only prctl.
    let ret = unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
        )
    };
    check(ret as libc::c_long)?;
    #[repr(C)]
    struct CapHeader {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    #[derive(Clone, Copy)]
    struct CapData {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    let mut header = CapHeader {
        version: 0x2008_0522,
        pid: 0,
    };
    let data = [CapData {
        effective: 0,
        permitted: 0,
        inheritable: 0,
    }; 2];
    // SAFETY: header and data are valid, properly sized (version 3 takes two data structs).
    let ret = unsafe {
        libc::syscall(
            libc::SYS_capset,
            &mut header as *mut CapHeader,
            data.as_ptr(),
        )
    };
    check(ret).map(|_| ())
}

/// Closes every descriptor from `first` upwards except those in `keep` (sorted or not).
pub fn close_fds_from(first: RawFd, keep: &[RawFd]) -> io::Result<()> {
    let mut keep: Vec<RawFd> = keep.iter().copied().filter(|fd| *fd >= first).collect();
    keep.sort_unstable();
    let mut lo = first as libc::c_uint;
    for k in keep {
        let k = k as libc::c_uint;
        if k > lo {
            close_range(lo, k - 1)?;
        }
        lo = k + 1;
    }
    close_range(lo, libc::c_uint::MAX)
}

fn close_range(lo: libc::c_uint, hi: libc::c_uint) -> io::Result<()> {
    // SAFETY: close_range only closes descriptors; nothing in this process holds Rust
    // ownership of the closed ones after exec-preparation (the caller is about to exec).
    let ret = unsafe { libc::syscall(libc::SYS_close_range, lo, hi, 0 as libc::c_uint) };
    check(ret).map(|_| ())
}

pub fn dup2(from: RawFd, to: RawFd) -> io::Result<()> {
    // SAFETY: dup2 on integer descriptors.
    let ret = unsafe { libc::dup2(from, to) };
    check(ret as libc::c_long).map(|_| ())
}

pub fn setsid() -> io::Result<()> {
    // SAFETY: no arguments.
    let ret = unsafe { libc::setsid() };
    check(ret as libc::c_long).map(|_| ())
}

pub fn setpgid_self() -> io::Result<()> {
    // SAFETY: setpgid takes integers.
    let ret = unsafe { libc::setpgid(0, 0) };
    check(ret as libc::c_long).map(|_| ())
}

/// Makes the caller's process group the terminal's foreground group. SIGTTOU is ignored for
/// the call, as a job-control shell does, since the caller starts in the background.
pub fn take_foreground(tty: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: signal() with SIG_IGN/previous handler values; tcsetpgrp takes integers.
    unsafe {
        let old = libc::signal(libc::SIGTTOU, libc::SIG_IGN);
        let ret = libc::tcsetpgrp(tty.as_raw_fd(), libc::getpid());
        let err = io::Error::last_os_error();
        libc::signal(libc::SIGTTOU, old);
        if ret < 0 {
            return Err(err);
        }
    }
    Ok(())
}

pub fn set_controlling_tty(fd: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: TIOCSCTTY takes an integer argument.
    let ret = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSCTTY, 0 as libc::c_int) };
    check(ret as libc::c_long).map(|_| ())
}

/// `execve(2)`; only returns on failure.
pub fn execve(path: &CStr, argv: &[CString], envp: &[CString]) -> io::Error {
    let mut argv_ptrs: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
    argv_ptrs.push(std::ptr::null());
    let mut env_ptrs: Vec<*const libc::c_char> = envp.iter().map(|a| a.as_ptr()).collect();
    env_ptrs.push(std::ptr::null());
    // SAFETY: all pointers reference NUL-terminated strings that outlive the call; the arrays
    // are NULL-terminated.
    unsafe { libc::execve(path.as_ptr(), argv_ptrs.as_ptr(), env_ptrs.as_ptr()) };
    io::Error::last_os_error()
}

pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit never returns and runs no destructors or atexit handlers, which is what a
    // forked child must do.
    unsafe { libc::_exit(code) }
}

pub fn setrlimit(resource: libc::__rlimit_resource_t, soft: u64, hard: u64) -> io::Result<()> {
    let lim = libc::rlimit {
        rlim_cur: soft,
        rlim_max: hard,
    };
    // SAFETY: lim is a valid rlimit struct.
    let ret = unsafe { libc::setrlimit(resource, &lim) };
    check(ret as libc::c_long).map(|_| ())
}

pub fn sethostname(name: &str) -> io::Result<()> {
    // SAFETY: pointer and length describe a valid byte buffer.
    let ret = unsafe { libc::sethostname(name.as_ptr().cast(), name.len()) };
    check(ret as libc::c_long).map(|_| ())
}

/// Brings the loopback interface up (needs CAP_NET_ADMIN in the network namespace's owner).
pub fn loopback_up() -> io::Result<()> {
    // SAFETY: plain socket creation; the fd is wrapped in OwnedFd right away.
    let raw = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    check(raw as libc::c_long)?;
    // SAFETY: raw is a fresh descriptor we own.
    let sock = unsafe { OwnedFd::from_raw_fd(raw) };
    // SAFETY: ifreq is plain old data; zeroed is a valid value.
    let mut ifr: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in ifr.ifr_name.iter_mut().zip(b"lo\0") {
        *dst = *src as libc::c_char;
    }
    ifr.ifr_ifru.ifru_flags =
        (libc::IFF_UP | libc::IFF_LOOPBACK | libc::IFF_RUNNING) as libc::c_short;
    // SAFETY: SIOCSIFFLAGS reads an ifreq we own.
    let ret = unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &ifr) };
    check(ret as libc::c_long).map(|_| ())
}

/// `struct mount_attr` for `mount_setattr(2)`.
#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

pub const MOUNT_ATTR_RDONLY: u64 = 0x1;
pub const MOUNT_ATTR_NOSUID: u64 = 0x2;
pub const MOUNT_ATTR_NODEV: u64 = 0x4;
pub const MOUNT_ATTR_NOEXEC: u64 = 0x8;

/// `mount_setattr(fd, "", AT_EMPTY_PATH | (recursive? AT_RECURSIVE), ...)`.
pub fn mount_setattr(
    fd: BorrowedFd<'_>,
    recursive: bool,
    set: u64,
    clear: u64,
    private: bool,
) -> io::Result<()> {
    let attr = MountAttr {
        attr_set: set,
        attr_clr: clear,
        propagation: if private { libc::MS_PRIVATE } else { 0 },
        userns_fd: 0,
    };
    let mut flags = libc::AT_EMPTY_PATH as libc::c_uint;
    if recursive {
        flags |= libc::AT_RECURSIVE as libc::c_uint;
    }
    // SAFETY: attr is a valid mount_attr of the size passed; the path is an empty C string.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            fd.as_raw_fd(),
            c"".as_ptr(),
            flags,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    check(ret).map(|_| ())
}

/// `mount_setattr(AT_FDCWD, path, 0, ...)`: sets attributes on the mount at `path`.
pub fn mount_setattr_path(path: &std::path::Path, set: u64) -> io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let c = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    let attr = MountAttr {
        attr_set: set,
        attr_clr: 0,
        propagation: 0,
        userns_fd: 0,
    };
    // SAFETY: c is a valid C string; attr is a valid mount_attr of the size passed.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            libc::AT_FDCWD,
            c.as_ptr(),
            0u32,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    check(ret).map(|_| ())
}

/// `pivot_root(".", ".")` followed by detaching the old root: the idiom that needs no
/// `put_old` directory.
pub fn pivot_root_here() -> io::Result<()> {
    // SAFETY: both arguments are valid C strings.
    let ret = unsafe { libc::syscall(libc::SYS_pivot_root, c".".as_ptr(), c".".as_ptr()) };
    check(ret)?;
    // SAFETY: plain umount2 of the stacked old root.
    let ret = unsafe { libc::umount2(c".".as_ptr(), libc::MNT_DETACH) };
    check(ret as libc::c_long).map(|_| ())
}

/// Changes the propagation of every mount under `/` to private.
pub fn make_root_private() -> io::Result<()> {
    // SAFETY: all pointers are valid C strings or null, as mount(2) allows for MS_PRIVATE.
    let ret = unsafe {
        libc::mount(
            std::ptr::null(),
            c"/".as_ptr(),
            std::ptr::null(),
            libc::MS_REC | libc::MS_PRIVATE,
            std::ptr::null(),
        )
    };
    check(ret as libc::c_long).map(|_| ())
}

/// Blocks the given signals in this thread and returns a signalfd that reports them.
pub fn signalfd_for(signals: &[libc::c_int]) -> io::Result<OwnedFd> {
    // SAFETY: sigset_t is plain data; sigemptyset initialises it.
    let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: set is a valid sigset_t.
    unsafe { libc::sigemptyset(&mut set) };
    for s in signals {
        // SAFETY: set is valid; s is a signal number.
        unsafe { libc::sigaddset(&mut set, *s) };
    }
    // SAFETY: set is valid; old set pointer may be null.
    let ret = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
    if ret != 0 {
        return Err(io::Error::from_raw_os_error(ret));
    }
    // SAFETY: set is valid; -1 asks for a new descriptor.
    let fd = unsafe { libc::signalfd(-1, &set, libc::SFD_CLOEXEC) };
    check(fd as libc::c_long)?;
    // SAFETY: fd is a fresh descriptor we own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Restores the default disposition and unblocks every signal (for a child before exec).
pub fn reset_signals() {
    // SAFETY: sigset_t is plain data.
    let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: set is valid.
    unsafe { libc::sigemptyset(&mut set) };
    // SAFETY: set is valid.
    unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &set, std::ptr::null_mut()) };
    for sig in 1..32 {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP {
            continue;
        }
        // SAFETY: resetting a disposition to SIG_DFL is always valid.
        unsafe { libc::signal(sig, libc::SIG_DFL) };
    }
}

/// Reads one `signalfd_siginfo` and returns the signal number.
pub fn read_signal(fd: BorrowedFd<'_>) -> io::Result<u32> {
    // SAFETY: signalfd_siginfo is plain data.
    let mut info: libc::signalfd_siginfo = unsafe { std::mem::zeroed() };
    let size = std::mem::size_of::<libc::signalfd_siginfo>();
    // SAFETY: info is a writable buffer of `size` bytes.
    let n = unsafe {
        libc::read(
            fd.as_raw_fd(),
            (&mut info as *mut libc::signalfd_siginfo).cast(),
            size,
        )
    };
    let n = check(n as libc::c_long)?;
    if n as usize != size {
        return Err(io::Error::from(io::ErrorKind::UnexpectedEof));
    }
    Ok(info.ssi_signo)
}

/// Whether child `pid` has exited (without reaping it), or was already reaped.
pub fn has_exited(pid: libc::pid_t) -> bool {
    // SAFETY: siginfo_t is plain data; waitid with WNOWAIT only inspects.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    // SAFETY: info is a valid out-pointer.
    let ret = unsafe {
        libc::waitid(
            libc::P_PID,
            pid as libc::id_t,
            &mut info,
            libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
        )
    };
    if ret < 0 {
        // ECHILD: already reaped, so certainly gone.
        return io::Error::last_os_error().raw_os_error() == Some(libc::ECHILD);
    }
    // SAFETY: si_pid is valid to read after a successful waitid.
    let got = unsafe { info.si_pid() };
    got == pid
}

pub fn kill(pid: libc::pid_t, sig: libc::c_int) -> io::Result<()> {
    // SAFETY: kill takes integers.
    let ret = unsafe { libc::kill(pid, sig) };
    check(ret as libc::c_long).map(|_| ())
}

/// `waitpid`, restarting on EINTR. Returns (pid, raw status).
pub fn waitpid(pid: libc::pid_t, flags: libc::c_int) -> io::Result<(libc::pid_t, libc::c_int)> {
    loop {
        let mut status = 0;
        // SAFETY: status is a valid out-pointer.
        let ret = unsafe { libc::waitpid(pid, &mut status, flags) };
        if ret < 0 {
            let err = io::Error::last_os_error();
            if err.raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            return Err(err);
        }
        return Ok((ret, status));
    }
}

/// Shell-style exit code for a wait status: the code, or 128+N for signal N.
pub fn exit_code_of(status: libc::c_int) -> i32 {
    if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else if libc::WIFSIGNALED(status) {
        128 + libc::WTERMSIG(status)
    } else {
        125
    }
}

/// A `SOCK_SEQPACKET` unix socket pair (close-on-exec).
pub fn seqpacket_pair() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: fds is a valid 2-element out array.
    let ret = unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC,
            0,
            fds.as_mut_ptr(),
        )
    };
    check(ret as libc::c_long)?;
    // SAFETY: both are fresh descriptors we own.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// A close-on-exec pipe.
pub fn pipe_cloexec() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: fds is a valid out array.
    let ret = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) };
    check(ret as libc::c_long)?;
    // SAFETY: both are fresh descriptors we own.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

pub fn isatty(fd: RawFd) -> bool {
    // SAFETY: isatty takes an integer.
    unsafe { libc::isatty(fd) == 1 }
}

pub fn getuid() -> u32 {
    // SAFETY: no arguments, cannot fail.
    unsafe { libc::getuid() }
}

pub fn getgid() -> u32 {
    // SAFETY: no arguments, cannot fail.
    unsafe { libc::getgid() }
}
