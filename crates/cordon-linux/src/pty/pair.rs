//! Opening a pty pair and copying window sizes.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

use rustix::fs::{Mode, OFlags};
use rustix::pty::{ioctl_tiocgptpeer, unlockpt, OpenptFlags};
use rustix::termios::{tcgetwinsize, tcsetwinsize};

/// Opens a new pty pair from the given ptmx path (inside the sandbox this is `/dev/pts/ptmx`
/// of the sandbox's own devpts instance). Returns (master, slave); both `O_CLOEXEC`; the
/// slave is opened `O_NOCTTY`.
///
/// The slave is opened through the master (`TIOCGPTPEER`), never by path, so it is certainly
/// the peer of this master even if someone can create files where `/dev/pts/N` would be.
pub fn open_pair(ptmx: &Path) -> io::Result<(OwnedFd, OwnedFd)> {
    let master = rustix::fs::open(
        ptmx,
        OFlags::RDWR | OFlags::NOCTTY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    if !rustix::termios::isatty(&master) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} is not a pty multiplexer", ptmx.display()),
        ));
    }
    unlockpt(&master)?;
    let slave = ioctl_tiocgptpeer(
        &master,
        OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC,
    )?;
    Ok((master, slave))
}

/// Copies the window size of `from` (a tty) to `to` (a pty master). Used at start and on
/// SIGWINCH; the kernel then sends SIGWINCH to the pty's foreground process group.
pub fn copy_winsize(from: BorrowedFd<'_>, to: BorrowedFd<'_>) -> io::Result<()> {
    let size = tcgetwinsize(from)?;
    tcsetwinsize(to.as_fd(), size)?;
    Ok(())
}
