//! Raw mode for the person's terminal, undone on drop.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::{Duration, Instant};

use rustix::event::{poll, PollFd, PollFlags, Timespec};

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

    /// Leaves raw mode for good at the end of a run: restores the settings and makes sure no
    /// late reply to the program's terminal queries (`queried`: `Relay::queried()`) lands in
    /// the person's shell. Call it after the relay stopped.
    pub fn finish(&self, queried: bool) {
        // Replies are awaited in raw mode: back in the saved (echoing) mode, the terminal
        // would echo each one onto the screen as it arrives (`^[[?1;2c` after the prompt).
        // Bounded: a terminal answers in milliseconds and the wait ends at its reply to ours;
        // a loaded machine or a remote one may take longer (tmux on a busy 2-core machine
        // missed 500 ms), and only a terminal that answers neither query costs the whole wait.
        if queried {
            self.discard_replies(Duration::from_millis(2000));
        }
        self.restore();
        self.flush_input();
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

    /// Waits (at most `timeout`, while still in raw mode) until the terminal has answered
    /// the queries the program sent, then discards all pending input. Terminals answer in
    /// order, so cordon asks for a status report (DSR 5) and device attributes (DA1) itself and
    /// waits for those replies followed by a short silence; whatever arrived meanwhile is
    /// discarded. Without this, a reply that arrives after `flush_input` is typed into the
    /// outer shell. Call it after the relay stopped (nobody else reads the terminal then),
    /// when `Relay::queried()`.
    pub fn discard_replies(&self, timeout: Duration) {
        // After both replies: the terminal has answered everything asked before them.
        const SILENCE: Duration = Duration::from_millis(30);
        // After a DA1 reply without the status report: the program's own late reply (ours may
        // still come), or a terminal that does not do DSR 5 (then nothing more comes).
        const DA1_ONLY: Duration = Duration::from_millis(150);
        let deadline = Instant::now() + timeout;
        // The terminal descriptor is normally open read-write; if not, flushing is all we can do.
        if rustix::io::write(&self.fd, b"\x1b[5n\x1b[c").is_ok() {
            let mut tail = Vec::with_capacity(256);
            let mut buf = [0u8; 1024];
            let (mut ours, mut some_da1) = (false, false);
            loop {
                let left = deadline.saturating_duration_since(Instant::now());
                let wait = if ours {
                    left.min(SILENCE)
                } else if some_da1 {
                    left.min(DA1_ONLY)
                } else {
                    left
                };
                if wait.is_zero() || !readable(self.fd.as_fd(), wait) {
                    break;
                }
                match rustix::io::read(&self.fd, &mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        tail.extend_from_slice(&buf[..n]);
                        ours |= ours_answered(&tail);
                        some_da1 |= contains_da1_reply(&tail);
                        let keep = tail.len().saturating_sub(256);
                        tail.drain(..keep);
                    }
                }
            }
        }
        self.flush_input();
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

/// Waits up to `timeout` for `fd` to become readable.
fn readable(fd: BorrowedFd<'_>, timeout: Duration) -> bool {
    let timespec = Timespec {
        tv_sec: i64::try_from(timeout.as_secs()).unwrap_or(i64::MAX),
        tv_nsec: i64::from(timeout.subsec_nanos()),
    };
    let mut fds = [PollFd::from_borrowed_fd(fd, PollFlags::IN)];
    matches!(poll(&mut fds, Some(&timespec)), Ok(n) if n > 0)
}

/// True when `bytes` holds the replies to cordon's own queries: a status report `ESC[0n`
/// followed (at any distance) by a DA1 reply.
fn ours_answered(bytes: &[u8]) -> bool {
    bytes
        .windows(4)
        .position(|w| w == b"\x1b[0n")
        .is_some_and(|i| contains_da1_reply(&bytes[i + 4..]))
}

/// True when `bytes` contains a DA1 reply `ESC [ ? <digits and ;> c`.
fn contains_da1_reply(bytes: &[u8]) -> bool {
    bytes.windows(3).enumerate().any(|(i, w)| {
        w == b"\x1b[?"
            && bytes[i + 3..]
                .iter()
                .find(|b| !(b.is_ascii_digit() || **b == b';'))
                .is_some_and(|&b| b == b'c')
    })
}

#[cfg(test)]
mod tests {
    use super::{contains_da1_reply, ours_answered};

    #[test]
    fn only_a_da1_after_our_status_report_ends_the_wait() {
        assert!(ours_answered(b"\x1b[0n\x1b[?62;22c"));
        // The program's own late DA1 reply comes first: keep waiting.
        assert!(!ours_answered(b"\x1b[?1;2c"));
        assert!(!ours_answered(b"\x1b[?1;2c\x1b[0n"));
        assert!(ours_answered(b"\x1b[?1;2c\x1b[3;1R\x1b[0n\x1b[?1;2c"));
    }

    #[test]
    fn da1_replies_are_recognised() {
        assert!(contains_da1_reply(b"\x1b[?62;22c"));
        assert!(contains_da1_reply(b"junk\x1b[1;1R\x1b[?1;2c"));
        assert!(!contains_da1_reply(b"\x1b[?62;22"));
        assert!(!contains_da1_reply(b"\x1b[?1;2R"));
        assert!(!contains_da1_reply(b"\x1b[>1;2c"));
    }
}
