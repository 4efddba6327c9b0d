//! `cordon exec`: a command started inside an already running sandbox.
//!
//! The running supervisor hands over (on its exec socket) a pidfd of the sandbox's init, a
//! descriptor of init's root, and the run's confinement plan. The caller joins every
//! namespace of init at once (`setns` on the pidfd: user first, by construction), forks into
//! the pid namespace, enters init's root, and confines the child exactly like the run's
//! command: same working-directory rules, limits, no_new_privs, Landlock writable roots,
//! capabilities dropped, the seccomp denylist, and its own path-guard filter whose listener
//! goes back to the supervisor, which serves it with the run's rules before the child execs.

use crate::error::{Context, SetupError};
use crate::sandbox::{exec_command, prepare_process, ListenerInstaller};
use crate::spec::{Spec, Stdio};
use crate::{landlock_rules, seccomp, sys};
use rustix::net::{
    recvmsg, sendmsg, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags,
};
use std::ffi::CString;
use std::io::{self, IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::PathBuf;

/// Largest message on the exec socket (the plan carries the run's environment).
pub const MAX_MESSAGE: usize = 256 * 1024;

/// What an exec'd command gets from the run it joins.
#[derive(Debug, Clone)]
pub struct JoinPlan {
    /// The run's environment (already scrubbed, proxy variables included).
    pub env: Vec<CString>,
    /// The run's PATH, to find `argv[0]`.
    pub path_var: String,
    /// Sandbox-side writable roots (the run command's Landlock grants).
    pub writable_roots: Vec<PathBuf>,
    /// Where the command starts (inside the sandbox's view).
    pub cwd: PathBuf,
    /// RLIMIT_DATA; 0 = none.
    pub memory_bytes: u64,
    /// RLIMIT_NPROC (counted in the sandbox's user namespace).
    pub max_tasks: u64,
}

/// Sends one message with up to 4 descriptors.
pub fn send(sock: BorrowedFd<'_>, payload: &[u8], fds: &[BorrowedFd<'_>]) -> io::Result<()> {
    if fds.is_empty() {
        // sendmsg is routed to the path guard once its filter is installed.
        return crate::control::send_plain(sock, payload);
    }
    let iov = [IoSlice::new(payload)];
    let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(4))];
    let mut anc = SendAncillaryBuffer::new(&mut space);
    if !fds.is_empty() && !anc.push(SendAncillaryMessage::ScmRights(fds)) {
        return Err(io::Error::other("too many descriptors"));
    }
    sendmsg(sock, &iov, &mut anc, SendFlags::NOSIGNAL)?;
    Ok(())
}

/// Receives one message; an empty payload means the peer closed the socket.
pub fn recv(sock: BorrowedFd<'_>) -> io::Result<(Vec<u8>, Vec<OwnedFd>)> {
    let mut buf = vec![0u8; MAX_MESSAGE];
    let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(4))];
    let mut anc = RecvAncillaryBuffer::new(&mut space);
    let n = {
        let mut iov = [IoSliceMut::new(&mut buf)];
        loop {
            match recvmsg(sock, &mut iov, &mut anc, RecvFlags::CMSG_CLOEXEC) {
                Err(rustix::io::Errno::INTR) => continue,
                other => break other,
            }
        }?
        .bytes
    };
    let mut fds = Vec::new();
    for m in anc.drain() {
        if let RecvAncillaryMessage::ScmRights(rights) = m {
            fds.extend(rights);
        }
    }
    buf.truncate(n);
    Ok((buf, fds))
}

/// Joins init's namespaces, runs `argv` confined in them, and returns its exit status
/// (128+N for signal N). `sock` is the exec connection (the child sends its guard listener
/// there and waits for the supervisor's answer).
///
/// # Safety
/// The process must be single-threaded (joining a user namespace requires it, and the child
/// is forked).
pub unsafe fn join_and_run(
    init: OwnedFd,
    root: OwnedFd,
    sock: OwnedFd,
    plan: &JoinPlan,
    argv: Vec<CString>,
    install_listener: ListenerInstaller,
    pty: bool,
) -> Result<i32, SetupError> {
    if !pty {
        // SAFETY: forwarded from this function's contract.
        return unsafe { join_inner(init, root, sock, plan, argv, install_listener, None) };
    }
    // A terminal: a fresh pty of the sandbox's own devpts (reached through init's root),
    // relayed through the same output filter as a run's, so nothing the command prints can
    // make the person's terminal act. The relay needs threads, which a process that joined
    // a pid namespace cannot create, so this process stays outside and relays while a child
    // joins.
    let ptmx = format!("/proc/self/fd/{}/dev/pts/ptmx", root.as_raw_fd());
    let (master, slave) = crate::pty::open_pair(std::path::Path::new(&ptmx))
        .ctx(|| "open a pseudo-terminal".into())?;
    let sigfd = sys::signalfd_for(&[
        libc::SIGCHLD,
        libc::SIGWINCH,
        libc::SIGTERM,
        libc::SIGHUP,
        libc::SIGINT,
        libc::SIGQUIT,
    ])
    .ctx(|| "set up signal handling".into())?;
    // SAFETY: single-threaded per the contract.
    let joiner = unsafe { sys::fork() }.ctx(|| "start the command".into())?;
    if joiner == 0 {
        drop((master, sigfd));
        sys::reset_signals();
        let code = match sys::set_parent_death_signal(libc::SIGKILL)
            .ctx(|| "set the parent-death signal".into())
            // SAFETY: this forked child is single-threaded.
            .and_then(|_| unsafe {
                join_inner(init, root, sock, plan, argv, install_listener, Some(slave))
            }) {
            Ok(code) => code,
            Err(e) => {
                let _ = std::io::Write::write_all(
                    &mut io::stderr(),
                    format!("cordon: {e}\n").as_bytes(),
                );
                125
            }
        };
        sys::exit_now(code);
    }
    drop((init, root, sock, slave));
    relay_until_exit(joiner, master, sigfd)
}

/// Joins, forks the command into the pid namespace and waits for it.
///
/// # Safety
/// As [`join_and_run`].
unsafe fn join_inner(
    init: OwnedFd,
    root: OwnedFd,
    sock: OwnedFd,
    plan: &JoinPlan,
    argv: Vec<CString>,
    install_listener: ListenerInstaller,
    terminal: Option<OwnedFd>,
) -> Result<i32, SetupError> {
    // As for the run: under memory pressure the sandbox goes first (inherited by the child;
    // written here because this process is invisible in the sandbox's /proc).
    std::fs::write("/proc/self/oom_score_adj", "1000").ctx(|| "set oom_score_adj".into())?;
    // This process gains every capability in the sandbox's user namespace: nothing may
    // inspect it (it is outside the sandbox's pid namespace anyway).
    sys::set_dumpable(false).ctx(|| "protect the exec process".into())?;
    // SAFETY: setns on a pidfd we own; single-threaded per the contract.
    let r = unsafe { libc::setns(init.as_raw_fd(), sys::SANDBOX_NAMESPACES) };
    if r != 0 {
        return Err(SetupError::new(
            "join the sandbox's namespaces",
            io::Error::last_os_error(),
        ));
    }
    drop(init);
    // Held open by this process: the child sees it hang up if we died before its
    // parent-death signal was armed.
    let (alive_r, alive_w) = sys::pipe_cloexec().ctx(|| "create a pipe".into())?;
    // SAFETY: single-threaded per the contract.
    let pid = unsafe { sys::fork() }.ctx(|| "start the command".into())?;
    if pid == 0 {
        drop(alive_w);
        let setup = match &terminal {
            Some(t) => attach_terminal(t),
            None => Ok(()),
        }
        .and_then(|_| {
            drop(terminal);
            child_setup(alive_r, &root, &sock, plan, argv.clone(), install_listener)
        });
        if let Err(e) = setup {
            let _ =
                std::io::Write::write_all(&mut io::stderr(), format!("cordon: {e}\n").as_bytes());
            sys::exit_now(125);
        }
        let spec = spec_for(plan, argv);
        exec_command(&spec)
    }
    drop((root, terminal, alive_r));
    // `sock` stays open until the command ends: the supervisor counts it as active.
    let _sock = sock;
    let _keep = alive_w;
    loop {
        match sys::waitpid(pid, 0) {
            Ok((p, status)) if p == pid => return Ok(sys::exit_code_of(status)),
            Ok(_) => {}
            Err(e) if e.raw_os_error() == Some(libc::EINTR) => {}
            Err(e) => return Err(SetupError::new("wait for the command", e)),
        }
    }
}

/// A [`Spec`] carrying what the shared confinement helpers read.
fn spec_for(plan: &JoinPlan, argv: Vec<CString>) -> Spec {
    Spec {
        uid: sys::getuid(),
        gid: sys::getgid(),
        home: PathBuf::new(),
        writable: Vec::new(),
        cwd: plan.cwd.clone(),
        deny_read: Vec::new(),
        reopen_read: Vec::new(),
        protect_existing: Vec::new(),
        layer_bytes: 0,
        max_tasks: plan.max_tasks,
        memory_bytes: plan.memory_bytes,
        argv,
        env: plan.env.clone(),
        path_var: plan.path_var.clone(),
        stdio: Stdio::Inherit,
        hostname: String::new(),
        door: false,
        host_ports: Vec::new(),
        publish: Vec::new(),
        persist: None,
        files: Vec::new(),
        extra_devices: Vec::new(),
    }
}

fn child_setup(
    alive: OwnedFd,
    root: &OwnedFd,
    sock: &OwnedFd,
    plan: &JoinPlan,
    argv: Vec<CString>,
    install_listener: ListenerInstaller,
) -> Result<(), SetupError> {
    // Killing `cordon exec` kills its command.
    sys::set_parent_death_signal(libc::SIGKILL).ctx(|| "set the parent-death signal".into())?;
    let mut p = [rustix::event::PollFd::new(
        &alive,
        rustix::event::PollFlags::IN,
    )];
    let _ = rustix::event::poll(&mut p, Some(&rustix::event::Timespec::default()));
    if !p[0].revents().is_empty() {
        sys::exit_now(137);
    }
    drop(alive);
    rustix::process::fchdir(root).ctx(|| "enter the sandbox's root".into())?;
    // SAFETY: chroot with a static, NUL-terminated path.
    if unsafe { libc::chroot(c".".as_ptr()) } != 0 {
        return Err(SetupError::new(
            "enter the sandbox's root",
            io::Error::last_os_error(),
        ));
    }
    sys::setrlimit(libc::RLIMIT_NPROC, plan.max_tasks, plan.max_tasks)
        .ctx(|| "limit the number of tasks".into())?;
    sys::reset_signals();
    let spec = spec_for(plan, argv);
    prepare_process(&spec, sock)?;
    landlock_rules::restrict(&plan.writable_roots, false)?;
    sys::drop_all_capabilities().ctx(|| "drop capabilities".into())?;
    seccomp::denylist_program()
        .and_then(|p| seccomp::install(&p, 0))
        .ctx(|| "install the seccomp filter".into())?;
    // As in `sandbox::hand_over_listener`: a pidfd before the filter, then only the number;
    // the server takes the listener with pidfd_getfd and answers K. Joining the sandbox's
    // namespaces changed our credentials, which made us non-dumpable; pidfd_getfd needs
    // ptrace-mode access, so become dumpable again (exec sets it anew anyway).
    // SAFETY: prctl with constant integer arguments.
    if unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 1, 0, 0, 0) } != 0 {
        return Err(SetupError::new(
            "hand over the path guard",
            io::Error::last_os_error(),
        ));
    }
    let me = rustix::process::pidfd_open(
        rustix::process::getpid(),
        rustix::process::PidfdFlags::empty(),
    )
    .ctx(|| "hand over the path guard".into())?;
    send(sock.as_fd(), b"P", &[me.as_fd()]).ctx(|| "hand over the path guard".into())?;
    drop(me);
    let listener = install_listener().ctx(|| "install the path-guard filter".into())?;
    let mut msg = b"L".to_vec();
    msg.extend_from_slice(&listener.as_raw_fd().to_le_bytes());
    send(sock.as_fd(), &msg, &[]).ctx(|| "hand over the path guard".into())?;
    let (answer, _) = recv(sock.as_fd()).ctx(|| "wait for the path guard".into())?;
    drop(listener);
    match answer.first() {
        Some(b'K') => Ok(()),
        Some(b'E') => Err(SetupError::msg(
            String::from_utf8_lossy(&answer[1..]).into_owned(),
        )),
        _ => Err(SetupError::msg(
            "the sandbox ended before the command started",
        )),
    }
}

/// The child's side of a terminal: its own session with the pty as controlling terminal.
fn attach_terminal(slave: &OwnedFd) -> Result<(), SetupError> {
    sys::setsid().ctx(|| "start a new session".into())?;
    sys::set_controlling_tty(slave.as_fd()).ctx(|| "attach the terminal".into())?;
    crate::sandbox::attach_stdio(slave)
}

/// Relays the pty until the command exits: raw mode on the person's terminal, window sizes,
/// signals forwarded to the command; the terminal restored afterwards.
fn relay_until_exit(pid: libc::pid_t, master: OwnedFd, sigfd: OwnedFd) -> Result<i32, SetupError> {
    use crate::pty::{copy_winsize, RawTerminal, Relay};
    let tty = [0, 1, 2].into_iter().find(|fd| sys::isatty(*fd));
    let borrow = |fd: i32| {
        // SAFETY: cordon's stdio descriptors stay open for the whole process.
        unsafe { BorrowedFd::borrow_raw(fd) }
    };
    let raw = if sys::isatty(0) {
        RawTerminal::enter(borrow(0)).ok()
    } else {
        None
    };
    if let Some(t) = tty {
        let _ = copy_winsize(borrow(t), master.as_fd());
    }
    let relay = Relay::start(master, 0, 1).ctx(|| "relay the terminal".into());
    let relay = match relay {
        Ok(r) => r,
        Err(e) => {
            let _ = sys::kill(pid, libc::SIGKILL);
            return Err(e);
        }
    };
    let code = loop {
        let sig = match sys::read_signal(sigfd.as_fd()) {
            Ok(sig) => sig as libc::c_int,
            Err(e) if e.raw_os_error() == Some(libc::EINTR) => continue,
            Err(e) => {
                let _ = sys::kill(pid, libc::SIGKILL);
                return Err(SetupError::new("wait for the command", e));
            }
        };
        if sig == libc::SIGCHLD {
            match sys::waitpid(pid, libc::WNOHANG) {
                Ok((p, status)) if p == pid => break sys::exit_code_of(status),
                _ => continue,
            }
        } else if sig == libc::SIGWINCH {
            if let Some(t) = tty {
                let _ = copy_winsize(borrow(t), relay.master());
            }
        } else {
            let _ = sys::kill(pid, sig);
        }
    };
    let queried = relay.stop_and_join();
    if let Some(r) = raw {
        r.finish(queried);
    }
    Ok(code)
}
