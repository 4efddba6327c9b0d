//! Thin wrappers around the seccomp listener ioctls.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

/// One received notification (the parts we use).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Notif {
    pub id: u64,
    /// Host thread id of the caller.
    pub pid: i32,
    pub nr: i64,
    pub args: [u64; 6],
}

/// `SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP` (Linux 6.6+; not in the libc crate): the kernel wakes
/// the supervisor on the caller's CPU and the caller on the supervisor's, which turns each
/// round trip from two cross-CPU wake-ups (about 50 µs here) into a hand-over (about 5 µs).
const SYNC_WAKE_UP: u64 = 1;

/// Bytes of stack kept for one `seccomp_notif` (80 today); a larger kernel struct uses the heap.
const NOTIF_STACK: usize = 256;

/// The listener fd plus the kernel's notification struct size.
pub(crate) struct Listener {
    fd: OwnedFd,
    notif_size: usize,
}

/// Whether the kernel takes `SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP` on `fd`.
fn set_sync_wakeup(fd: RawFd) -> bool {
    // The kernel takes the flags as the ioctl's argument itself, not through a pointer (a
    // pointer's value is not a valid flag set: every call got EINVAL and the flag was never set).
    // SAFETY: NOTIF_SET_FLAGS touches no memory of ours; an older kernel says EINVAL.
    unsafe { libc::ioctl(fd, libc::SECCOMP_IOCTL_NOTIF_SET_FLAGS, SYNC_WAKE_UP) == 0 }
}

/// Whether this kernel supports synchronous wake-ups for the path guard (for `cordon doctor`):
/// tried on a throwaway listener installed on a short-lived thread of our own (seccomp filters
/// without TSYNC belong to one thread, and end with it).
pub fn sync_wakeup_supported() -> bool {
    std::thread::spawn(|| {
        // A filter that notifies on no syscall (`SECCOMP_RET_ALLOW` for all): the listener fd is
        // all we want from it.
        let mut insn = [libc::sock_filter {
            code: (libc::BPF_RET | libc::BPF_K) as u16,
            jt: 0,
            jf: 0,
            k: libc::SECCOMP_RET_ALLOW,
        }];
        let prog = libc::sock_fprog {
            len: 1,
            filter: insn.as_mut_ptr(),
        };
        // SAFETY: prctl(PR_SET_NO_NEW_PRIVS) on this thread only (it exits right after); the
        // filter program outlives the call, which copies it.
        let fd = unsafe {
            if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
                return false;
            }
            libc::syscall(
                libc::SYS_seccomp,
                libc::SECCOMP_SET_MODE_FILTER,
                libc::SECCOMP_FILTER_FLAG_NEW_LISTENER,
                &prog as *const libc::sock_fprog,
            )
        };
        let Ok(fd) = RawFd::try_from(fd) else {
            return false;
        };
        if fd < 0 {
            return false;
        }
        // SAFETY: the kernel just returned this fd to us; nothing else owns it.
        let owned = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
        set_sync_wakeup(owned.as_raw_fd())
    })
    .join()
    .unwrap_or(false)
}

/// Result of waiting on the listener.
pub(crate) enum Recv {
    Got(Notif),
    /// Interrupted, or the notification vanished (caller died): try again.
    Retry,
    /// No process is left that uses the filter.
    Gone,
}

impl Listener {
    /// Wrap a listener fd; queries the kernel's struct sizes.
    pub fn new(fd: OwnedFd) -> io::Result<Self> {
        let mut sizes = libc::seccomp_notif_sizes {
            seccomp_notif: 0,
            seccomp_notif_resp: 0,
            seccomp_data: 0,
        };
        // SAFETY: SECCOMP_GET_NOTIF_SIZES writes one `seccomp_notif_sizes` into the pointer.
        let r = unsafe {
            libc::syscall(
                libc::SYS_seccomp,
                libc::SECCOMP_GET_NOTIF_SIZES,
                0,
                &mut sizes as *mut libc::seccomp_notif_sizes,
            )
        };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        let notif_size =
            usize::from(sizes.seccomp_notif).max(std::mem::size_of::<libc::seccomp_notif>());
        // Best effort: without it (before Linux 6.6) every call just costs more.
        set_sync_wakeup(fd.as_raw_fd());
        Ok(Self { fd, notif_size })
    }

    fn raw(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// Wait for the next notification, or for the last filter user to go away.
    pub fn recv(&self) -> io::Result<Recv> {
        let mut pfd = libc::pollfd {
            fd: self.raw(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd, count 1.
        let r = unsafe { libc::poll(&mut pfd, 1, -1) };
        if r < 0 {
            let e = io::Error::last_os_error();
            return match e.raw_os_error() {
                Some(libc::EINTR) => Ok(Recv::Retry),
                _ => Err(e),
            };
        }
        if pfd.revents & libc::POLLIN == 0 {
            if pfd.revents & (libc::POLLHUP | libc::POLLERR | libc::POLLNVAL) != 0 {
                return Ok(Recv::Gone);
            }
            return Ok(Recv::Retry);
        }
        // u64 storage keeps the buffer aligned for `seccomp_notif`; the kernel requires it zeroed.
        let mut stack = [0u64; NOTIF_STACK / 8];
        let mut heap = Vec::new();
        let buf: &mut [u64] = if self.notif_size <= NOTIF_STACK {
            &mut stack
        } else {
            heap.resize(self.notif_size.div_ceil(8), 0u64);
            &mut heap
        };
        // SAFETY: `buf` is at least `notif_size` bytes (>= sizeof(seccomp_notif)), aligned, zeroed.
        let r = unsafe {
            libc::ioctl(
                self.raw(),
                libc::SECCOMP_IOCTL_NOTIF_RECV,
                buf.as_mut_ptr() as *mut libc::c_void,
            )
        };
        if r < 0 {
            let e = io::Error::last_os_error();
            return match e.raw_os_error() {
                Some(libc::EINTR) | Some(libc::ENOENT) => Ok(Recv::Retry),
                _ => Err(e),
            };
        }
        // SAFETY: the buffer is aligned and large enough, and the kernel filled the prefix.
        let n: libc::seccomp_notif =
            unsafe { std::ptr::read(buf.as_ptr() as *const libc::seccomp_notif) };
        Ok(Recv::Got(Notif {
            id: n.id,
            pid: i32::try_from(n.pid).unwrap_or(-1),
            nr: i64::from(n.data.nr),
            args: n.data.args,
        }))
    }

    /// Whether the notification is still pending (its caller has not died meanwhile).
    pub fn id_valid(&self, id: u64) -> bool {
        let mut id = id;
        // SAFETY: NOTIF_ID_VALID reads one u64 through the pointer.
        let r = unsafe { libc::ioctl(self.raw(), libc::SECCOMP_IOCTL_NOTIF_ID_VALID, &mut id) };
        r == 0
    }

    /// Answer with a return value (`error == 0`) or `-errno`.
    pub fn respond(&self, id: u64, val: i64, errno: i32) {
        let mut resp = libc::seccomp_notif_resp {
            id,
            val,
            error: if errno == 0 { 0 } else { -errno.abs() },
            flags: 0,
        };
        // SAFETY: NOTIF_SEND reads one `seccomp_notif_resp`. ENOENT (caller died) is expected
        // and there is nothing else to do about a failure, so the result is ignored.
        unsafe {
            libc::ioctl(self.raw(), libc::SECCOMP_IOCTL_NOTIF_SEND, &mut resp);
        }
    }

    /// Let the caller's syscall go ahead as it is (only for read-only opens of paths nobody
    /// asks about: what the kernel then opens is limited by the sandbox's view anyway).
    pub fn respond_continue(&self, id: u64) {
        let mut resp = libc::seccomp_notif_resp {
            id,
            val: 0,
            error: 0,
            flags: libc::SECCOMP_USER_NOTIF_FLAG_CONTINUE as u32,
        };
        // SAFETY: NOTIF_SEND reads one `seccomp_notif_resp`; a failure (caller died) needs
        // nothing from us.
        unsafe {
            libc::ioctl(self.raw(), libc::SECCOMP_IOCTL_NOTIF_SEND, &mut resp);
        }
    }

    /// Inject `fd` into the caller and complete its syscall with the new fd number.
    pub fn send_fd(&self, id: u64, fd: &OwnedFd, cloexec: bool) -> io::Result<i32> {
        let mut add = libc::seccomp_notif_addfd {
            id,
            flags: libc::SECCOMP_ADDFD_FLAG_SEND as u32,
            srcfd: u32::try_from(fd.as_raw_fd()).unwrap_or(u32::MAX),
            newfd: 0,
            newfd_flags: if cloexec { libc::O_CLOEXEC as u32 } else { 0 },
        };
        // SAFETY: NOTIF_ADDFD reads one `seccomp_notif_addfd`; `srcfd` is open for the call.
        let r = unsafe { libc::ioctl(self.raw(), libc::SECCOMP_IOCTL_NOTIF_ADDFD, &mut add) };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(r)
    }
}

#[cfg(test)]
mod tests {
    /// (major, minor) of the running kernel, from uname.
    fn kernel() -> Option<(u32, u32)> {
        let release = rustix::system::uname().release().to_str().ok()?.to_string();
        let mut it = release.split(['.', '-']);
        Some((it.next()?.parse().ok()?, it.next()?.parse().ok()?))
    }

    /// The flag is set on kernels that have it (6.6+): a wrong ioctl argument once made every
    /// listener silently fall back to ordinary wake-ups.
    #[test]
    fn sync_wakeup_is_taken_where_the_kernel_has_it() {
        match kernel() {
            Some(v) if v >= (6, 6) => assert!(super::sync_wakeup_supported(), "kernel {v:?}"),
            v => eprintln!("NOTE sync_wakeup test: kernel {v:?} predates 6.6; nothing to check"),
        }
    }
}
