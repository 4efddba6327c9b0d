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

/// How long the command has to end by itself after the person's terminal hung up (to save its
/// state on SIGHUP) before the sandbox is killed: a sandbox outlives its terminal for no one.
const HANGUP_GRACE: std::time::Duration = std::time::Duration::from_secs(3);

/// Whether the terminal on `fd` has hung up (its window or ssh session is gone): poll says HUP.
fn hung_up(fd: RawFd) -> bool {
    let tty = borrow(fd);
    let mut fds = [PollFd::new(&tty, PollFlags::IN)];
    let zero = rustix::event::Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    poll(&mut fds, Some(&zero)).is_ok()
        && fds[0].revents().intersects(PollFlags::HUP | PollFlags::ERR)
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

/// What the supervisor has learned from the control channel so far.
struct State {
    started: bool,
    /// The command's pidfd and gate, until its listener is taken.
    handover: (Option<OwnedFd>, Option<OwnedFd>),
    setup_error: Option<String>,
    relay: Option<Relay>,
    raw: Option<RawTerminal>,
    tty: Option<RawFd>,
}

impl State {
    fn on_msg(
        &mut self,
        msg: Msg,
        ctrl: &OwnedFd,
        init_pid: libc::pid_t,
        hooks: &mut dyn Hooks,
    ) -> Result<(), SetupError> {
        match msg {
            Msg::PtyMaster(master) => {
                if sys::isatty(0) {
                    self.raw = RawTerminal::enter(borrow(0)).ok();
                }
                if let Some(t) = self.tty {
                    let _ = pty::copy_winsize(borrow(t), master.as_fd());
                }
                self.relay = Some(Relay::start(master, 0, 1).ctx(|| "relay the terminal".into())?);
            }
            Msg::Pidfd(fd) => self.handover.0 = Some(fd),
            Msg::Gate(fd) => self.handover.1 = Some(fd),
            Msg::ListenerAt(n) => {
                // Without both, the command's gate stays shut and its setup fails (closed).
                let (pidfd, gate) = std::mem::take(&mut self.handover);
                if let (Some(pidfd), Some(gate)) = (pidfd, gate) {
                    if let Ok(fd) = crate::pathguard::take_listener(&pidfd, n) {
                        hooks.listener(fd, init_pid);
                        let _ = rustix::io::write(&gate, b"k");
                    }
                }
            }
            Msg::Socket(kind, fd) => hooks.socket(kind, fd),
            Msg::Started => self.started = true,
            Msg::SetupFailed(text) => self.setup_error = Some(text),
            Msg::Stopped(_) => {
                // The command stopped itself (a TUI's ^Z): stop cordon too, as sudo does,
                // with the person's terminal restored; resume the command when continued.
                if let Some(r) = &self.raw {
                    r.restore();
                }
                let _ = sys::kill(std::process::id() as libc::pid_t, libc::SIGSTOP);
                if let Some(r) = &self.raw {
                    let _ = r.reenter();
                }
                if let (Some(t), Some(rel)) = (self.tty, &self.relay) {
                    let _ = pty::copy_winsize(borrow(t), rel.master());
                }
                let _ = control::send(ctrl.as_fd(), &Msg::Continue);
            }
            Msg::Continue => {}
        }
        Ok(())
    }
}

/// Runs until the sandbox's init exits.
pub fn run(sandbox: Launched, signals: Signals, hooks: &mut dyn Hooks) -> Result<i32, SetupError> {
    let Launched { init_pid, ctrl, .. } = sandbox;
    let mut ctrl_open = true;
    let mut st = State {
        started: false,
        handover: (None, None),
        setup_error: None,
        relay: None,
        raw: None,
        tty: first_tty(),
    };

    // Set when the terminal hung up: past it, init (and with it everything inside) is killed.
    let mut hangup: Option<std::time::Instant> = None;
    let code = loop {
        let mut fds = vec![PollFd::new(&signals.0, PollFlags::IN)];
        if ctrl_open {
            fds.push(PollFd::new(&ctrl, PollFlags::IN));
        }
        let wait = hangup.map(|at| {
            let left = at.saturating_duration_since(std::time::Instant::now());
            rustix::event::Timespec {
                tv_sec: i64::try_from(left.as_secs()).unwrap_or(0),
                tv_nsec: i64::from(left.subsec_nanos()),
            }
        });
        if hangup.is_some_and(|at| std::time::Instant::now() >= at) {
            let _ = sys::kill(init_pid, libc::SIGKILL);
            hangup = None;
        }
        match poll(&mut fds, wait.as_ref()) {
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(SetupError::new("wait for the sandbox", e.into())),
        }
        let sig_ready = !fds[0].revents().is_empty();
        let ctrl_ready = ctrl_open && !fds[1].revents().is_empty();
        drop(fds);

        if ctrl_ready {
            match control::recv(ctrl.as_fd()) {
                Ok(Some(msg)) => st.on_msg(msg, &ctrl, init_pid, hooks)?,
                Ok(None) => ctrl_open = false,
                Err(_) => {}
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
                if let (Some(t), Some(rel)) = (st.tty, &st.relay) {
                    let _ = pty::copy_winsize(borrow(t), rel.master());
                }
            } else if sig != libc::SIGCONT {
                let _ = sys::kill(init_pid, sig);
                // A SIGHUP with the terminal still there is someone's `kill -HUP` (a reload):
                // only passed on. With the terminal gone, the sandbox ends with it.
                if sig == libc::SIGHUP && hangup.is_none() && st.tty.is_some_and(hung_up) {
                    hangup = Some(std::time::Instant::now() + HANGUP_GRACE);
                }
            }
        }
    };
    // Everything in the sandbox has exited, so every sender has closed: what is still queued
    // (a `Started` sent just before a fast command ended) is read to the end.
    while ctrl_open {
        match control::recv(ctrl.as_fd()) {
            Ok(Some(msg)) => st.on_msg(msg, &ctrl, init_pid, hooks)?,
            Ok(None) | Err(_) => ctrl_open = false,
        }
    }
    let State {
        started,
        setup_error,
        relay,
        raw,
        ..
    } = st;

    let queried = relay.is_some_and(|r| r.stop_and_join());
    if let Some(r) = raw {
        r.finish(queried);
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
