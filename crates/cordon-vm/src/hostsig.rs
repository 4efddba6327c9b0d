//! The host helper's terminal and signals: raw mode on its pty while an interactive guest
//! runs (the guest's own pty does the line discipline), window-size changes and terminating
//! signals forwarded to the guest.

use super::frame::Kind;
use std::os::fd::AsFd;

/// Signals the helper forwards to the guest's command.
const FORWARD: &[libc::c_int] = &[libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGQUIT];

/// The terminal settings to restore when the helper ends.
pub struct RawMode {
    saved: libc::termios,
}

impl RawMode {
    /// Puts stdin (a terminal) into raw mode.
    pub fn enter() -> Option<RawMode> {
        // SAFETY: termios is plain data; tcgetattr fills it for a valid fd.
        let mut t: libc::termios = unsafe { std::mem::zeroed() };
        // SAFETY: as above.
        if unsafe { libc::tcgetattr(0, &mut t) } != 0 {
            return None;
        }
        let saved = t;
        // SAFETY: cfmakeraw edits the struct we own; tcsetattr reads it.
        unsafe {
            libc::cfmakeraw(&mut t);
            if libc::tcsetattr(0, libc::TCSANOW, &t) != 0 {
                return None;
            }
        }
        Some(RawMode { saved })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        // SAFETY: restores settings read from the same fd.
        unsafe { libc::tcsetattr(0, libc::TCSANOW, &self.saved) };
    }
}

/// Blocks the forwarded signals and SIGWINCH in this (still single-threaded) process and
/// returns their signalfd; threads started later inherit the mask.
pub fn block() -> std::io::Result<std::os::fd::OwnedFd> {
    let mut all = FORWARD.to_vec();
    all.push(libc::SIGWINCH);
    cordon_linux::sys::signalfd_for(&all)
}

/// Forwards signals to the guest until the port closes.
pub fn forward(fd: std::os::fd::OwnedFd, port: super::host::Port) {
    std::thread::spawn(move || loop {
        let Ok(sig) = cordon_linux::sys::read_signal(fd.as_fd()) else {
            return;
        };
        let sig = sig as libc::c_int;
        let sent = if sig == libc::SIGWINCH {
            match super::host::winsize(0) {
                Some((r, c)) => {
                    let mut d = r.to_le_bytes().to_vec();
                    d.extend_from_slice(&c.to_le_bytes());
                    super::host::send(&port, Kind::Winsize, 0, &d)
                }
                None => Ok(()),
            }
        } else {
            super::host::send(&port, Kind::Signal, 0, &sig.to_le_bytes())
        };
        if sent.is_err() {
            return;
        }
    });
}
