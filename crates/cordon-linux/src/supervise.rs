//! The supervisor's side of a running sandbox: relays the terminal, forwards signals, follows
//! job control, and returns the command's exit status.

use crate::control::{self, Msg};
use crate::error::{Context, SetupError};
use crate::pty::{self, RawTerminal, Relay};
use crate::sandbox::{Launched, FORWARDED};
use crate::spec::DoorSocket;
use crate::sys;
use rustix::event::{poll, PollFd, PollFlags};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd, RawFd};

/// Signals the supervisor handles through a signalfd. They must be blocked before the sandbox
/// is launched, or a SIGCHLD could be lost.
pub struct Signals(OwnedFd);

pub fn block_signals() -> Result<Signals, SetupError> {
    let mut set = vec![libc::SIGCHLD, libc::SIGWINCH, libc::SIGCONT];
    set.extend_from_slice(FORWARDED);
    sys::signalfd_for(&set)
        .map(Signals)
        .ctx(|| "set up signal handling".into())
}

fn first_tty() -> Option<RawFd> {
    [0, 1, 2].into_iter().find(|fd| sys::isatty(*fd))
}

fn borrow(fd: RawFd) -> BorrowedFd<'static> {
    // SAFETY: only used for cordon's stdio descriptors, which stay open for the whole run.
    unsafe { BorrowedFd::borrow_raw(fd) }
}

/// What the caller does with what the sandbox hands over while it starts.
pub trait Hooks {
    /// The path guard's seccomp listener (and the host pid of init, whose root is the sandbox's).
    fn listener(&mut self, fd: OwnedFd, init_pid: libc::pid_t);
    /// A door socket bound inside the sandbox's network namespace.
    fn socket(&mut self, kind: DoorSocket, fd: OwnedFd);
}

/// Runs until the sandbox's init exits.
pub fn run(sandbox: Launched, signals: Signals, hooks: &mut dyn Hooks) -> Result<i32, SetupError> {
    let Launched { init_pid, ctrl } = sandbox;
    let mut ctrl_open = true;
    let mut started = false;
    let mut setup_error: Option<String> = None;
    let mut relay: Option<Relay> = None;
    let mut raw: Option<RawTerminal> = None;
    let tty = first_tty();

    let code = loop {
        let mut fds = vec![PollFd::new(&signals.0, PollFlags::IN)];
        if ctrl_open {
            fds.push(PollFd::new(&ctrl, PollFlags::IN));
        }
        match poll(&mut fds, None) {
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(SetupError::new("wait for the sandbox", e.into())),
        }
        let sig_ready = !fds[0].revents().is_empty();
        let ctrl_ready = ctrl_open && !fds[1].revents().is_empty();
        drop(fds);

        if ctrl_ready {
            match control::recv(ctrl.as_fd()) {
                Ok(Some(Msg::PtyMaster(master))) => {
                    if sys::isatty(0) {
                        raw = RawTerminal::enter(borrow(0)).ok();
                    }
                    if let Some(t) = tty {
                        let _ = pty::copy_winsize(borrow(t), master.as_fd());
                    }
                    relay = Some(Relay::start(master, 0, 1).ctx(|| "relay the terminal".into())?);
                }
                Ok(Some(Msg::Listener(fd))) => hooks.listener(fd, init_pid),
                Ok(Some(Msg::Socket(kind, fd))) => hooks.socket(kind, fd),
                Ok(Some(Msg::Started)) => started = true,
                Ok(Some(Msg::SetupFailed(text))) => setup_error = Some(text),
                Ok(Some(Msg::Stopped(_))) => {
                    // The command stopped itself (a TUI's ^Z): stop cordon too, as sudo does,
                    // with the person's terminal restored; resume the command when continued.
                    if let Some(r) = &raw {
                        r.restore();
                    }
                    let _ = sys::kill(std::process::id() as libc::pid_t, libc::SIGSTOP);
                    if let Some(r) = &raw {
                        let _ = r.reenter();
                    }
                    if let (Some(t), Some(rel)) = (tty, &relay) {
                        let _ = pty::copy_winsize(borrow(t), rel.master());
                    }
                    let _ = control::send(ctrl.as_fd(), &Msg::Continue);
                }
                Ok(Some(Msg::Continue)) | Err(_) => {}
                Ok(None) => ctrl_open = false,
            }
        }
        if sig_ready {
            let Ok(sig) = sys::read_signal(signals.0.as_fd()) else {
                continue;
            };
            let sig = sig as libc::c_int;
            if sig == libc::SIGCHLD {
                if let Ok((pid, status)) = sys::waitpid(init_pid, libc::WNOHANG) {
                    if pid == init_pid {
                        break sys::exit_code_of(status);
                    }
                }
            } else if sig == libc::SIGWINCH {
                if let (Some(t), Some(rel)) = (tty, &relay) {
                    let _ = pty::copy_winsize(borrow(t), rel.master());
                }
            } else if sig != libc::SIGCONT {
                let _ = sys::kill(init_pid, sig);
            }
        }
    };

    let queried = relay.as_ref().is_some_and(|r| r.queried());
    if let Some(r) = relay {
        r.stop_and_join();
    }
    if let Some(r) = raw {
        r.restore();
        // Late answers to the program's terminal queries must not land in the person's shell.
        if queried {
            r.discard_replies(std::time::Duration::from_millis(200));
        } else {
            r.flush_input();
        }
    }
    if let Some(text) = setup_error {
        return Err(SetupError::msg(
            text.trim_start_matches("cannot ").to_string(),
        ));
    }
    if !started {
        return Err(SetupError::msg(
            "start the sandbox: its init ended before the command started",
        ));
    }
    Ok(code)
}
