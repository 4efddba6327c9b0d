//! Raw mode for the person's terminal, undone on drop.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::termios::{tcflush, tcgetattr, tcsetattr, OptionalActions, QueueSelector, Termios};

/// Puts the person's terminal in raw mode; restores the saved termios on drop and on
/// [`RawTerminal::restore`]. Dropping it also discards pending input ([`RawTerminal::flush_input`]),
/// so late replies to terminal queries do not land in the outer shell.
///
/// It keeps its own duplicate of the descriptor (same open file description, so the same
/// terminal), which lets it outlive the borrow it was created from.
#[derive(Debug)]
pub struct RawTerminal {
    fd: OwnedFd,
    saved: Termios,
    raw: Termios,
}

impl RawTerminal {
    /// Saves the terminal's settings and switches it to raw mode.
    pub fn enter(fd: BorrowedFd<'_>) -> io::Result<Self> {
        let saved = tcgetattr(fd)?;
        let mut raw = saved.clone();
        raw.make_raw();
        let fd = rustix::io::fcntl_dupfd_cloexec(fd, 3)?;
        let terminal = Self { fd, saved, raw };
        terminal.reenter()?;
        Ok(terminal)
    }

    /// Restores the settings saved by [`RawTerminal::enter`] (e.g. before cordon stops itself
    /// on SIGTSTP). Errors are ignored: there is nothing better to do with them at this point.
    pub fn restore(&self) {
        // TCSANOW, not TCSADRAIN: a terminal that stopped reading (flow control) must not
        // hang cordon on its way out; output already queued was processed at write time.
        let _ = tcsetattr(&self.fd, OptionalActions::Now, &self.saved);
    }

    /// Switches back to raw mode (e.g. after SIGCONT), with the settings computed by `enter`.
    pub fn reenter(&self) -> io::Result<()> {
        tcsetattr(&self.fd, OptionalActions::Now, &self.raw)?;
        Ok(())
    }

    /// Discards input the terminal received but nobody read yet (`tcflush(TCIFLUSH)`).
    pub fn flush_input(&self) {
        let _ = tcflush(&self.fd, QueueSelector::IFlush);
    }

    /// The settings that were in effect before raw mode.
    pub fn saved(&self) -> &Termios {
        &self.saved
    }

    /// The terminal this guard controls.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl Drop for RawTerminal {
    fn drop(&mut self) {
        self.restore();
        self.flush_input();
    }
}
