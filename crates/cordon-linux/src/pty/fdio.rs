//! Small descriptor helpers for the relay: duplication, waking, polling, writing.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

use rustix::event::{poll, PollFd, PollFlags, Timespec};
use rustix::io::Errno;
use rustix::pipe::{pipe_with, PipeFlags};

/// Duplicates a descriptor the caller passed by number. `Ok(None)` when it is not open
/// (e.g. cordon was started with stdin closed), which the relay treats as EOF / discard.
pub(crate) fn dup_raw(fd: RawFd) -> io::Result<Option<OwnedFd>> {
    if fd < 0 {
        return Ok(None);
    }
    // SAFETY: F_DUPFD_CLOEXEC takes no pointer; on a number that is not an open descriptor
    // the kernel fails with EBADF, so nothing is touched that we do not own.
    let new = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 3) };
    if new < 0 {
        let err = io::Error::last_os_error();
        return match err.raw_os_error() {
            Some(libc::EBADF) => Ok(None),
            _ => Err(err),
        };
    }
    // SAFETY: `new` was just created by fcntl above and is owned by nobody else.
    Ok(Some(unsafe { OwnedFd::from_raw_fd(new) }))
}

/// Sets `O_NONBLOCK` on a descriptor whose open file description we own exclusively.
pub(crate) fn set_nonblocking(fd: BorrowedFd<'_>) -> io::Result<()> {
    let flags = rustix::fs::fcntl_getfl(fd)?;
    rustix::fs::fcntl_setfl(fd, flags | rustix::fs::OFlags::NONBLOCK)?;
    Ok(())
}

/// A self-pipe that, once woken, stays readable: every thread polling it sees the stop.
#[derive(Debug)]
pub(crate) struct Waker {
    rx: OwnedFd,
    tx: OwnedFd,
}

impl Waker {
    pub fn new() -> io::Result<Self> {
        let (rx, tx) = pipe_with(PipeFlags::CLOEXEC | PipeFlags::NONBLOCK)?;
        Ok(Self { rx, tx })
    }

    /// Signals every poller. A full pipe means it is already signalled, so errors are moot.
    pub fn wake(&self) {
        let _ = rustix::io::write(&self.tx, &[1]);
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.rx.as_fd()
    }
}

/// Readiness of the two descriptors of a [`wait2`] call.
pub(crate) struct Ready {
    pub fd: bool,
    pub woken: bool,
}

/// Waits until `fd` has one of `events` (errors and hang-ups count) or the waker fires.
/// `None` timeout waits indefinitely; a timeout returns both false.
pub(crate) fn wait2(
    fd: BorrowedFd<'_>,
    events: PollFlags,
    waker: &Waker,
    timeout: Option<Duration>,
) -> io::Result<Ready> {
    let timespec = timeout.map(|d| Timespec {
        tv_sec: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        tv_nsec: i64::from(d.subsec_nanos()),
    });
    let mut fds = [
        PollFd::from_borrowed_fd(fd, events),
        PollFd::from_borrowed_fd(waker.fd(), PollFlags::IN),
    ];
    loop {
        match poll(&mut fds, timespec.as_ref()) {
            Ok(_) => break,
            Err(Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    let done = events | PollFlags::ERR | PollFlags::HUP | PollFlags::NVAL;
    Ok(Ready {
        fd: fds[0].revents().intersects(done),
        woken: !fds[1].revents().is_empty(),
    })
}

/// Writes all of `data` to a descriptor that may be non-blocking (then waits for POLLOUT).
/// Gives up early, returning false, if `waker` fires while waiting.
pub(crate) fn write_all(
    fd: BorrowedFd<'_>,
    mut data: &[u8],
    waker: Option<&Waker>,
) -> io::Result<bool> {
    while !data.is_empty() {
        match rustix::io::write(fd, data) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => data = &data[n..],
            Err(Errno::INTR) => {}
            Err(Errno::AGAIN) => match waker {
                Some(waker) => {
                    if wait2(fd, PollFlags::OUT, waker, None)?.woken {
                        return Ok(false);
                    }
                }
                None => {
                    let mut fds = [PollFd::from_borrowed_fd(fd, PollFlags::OUT)];
                    match poll(&mut fds, None) {
                        Ok(_) | Err(Errno::INTR) => {}
                        Err(e) => return Err(e.into()),
                    }
                }
            },
            Err(e) => return Err(e.into()),
        }
    }
    Ok(true)
}

/// Reads what `fd` has available without risking a block on a descriptor shared with other
/// readers: asks for at most the queued amount (`FIONREAD`) when the kernel reports one.
pub(crate) fn read_available(fd: BorrowedFd<'_>, buf: &mut [u8]) -> rustix::io::Result<usize> {
    let queued = rustix::io::ioctl_fionread(fd).unwrap_or(0);
    let want = match usize::try_from(queued) {
        Ok(0) | Err(_) => buf.len(),
        Ok(n) => n.min(buf.len()),
    };
    loop {
        match rustix::io::read(fd, &mut buf[..want]) {
            Err(Errno::INTR) => continue,
            other => return other,
        }
    }
}
