//! Starting a sandbox: the supervisor clones the sandbox's init into a fresh set of
//! namespaces; init builds the file-system view, starts the command in its own session and
//! then confines itself, and stays as pid 1 until the command ends.
//!
//! Nothing here runs on an async runtime: `launch` must be called while the process is still
//! single-threaded, and the child code after `clone` only uses calls that are safe in a
//! single-threaded fork child.

use crate::control::{self, Msg};
use crate::error::{Context, SetupError};
use crate::spec::{Spec, Stdio};
use crate::{door, landlock_rules, mounts, seccomp, sys};
use rustix::event::{poll, PollFd, PollFlags};
use std::ffi::CString;
use std::io::{self, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// Installs the seccomp filter whose listener the supervisor serves, returning the listener.
/// Provided by the caller so enforcement of protected paths can be swapped or tested.
pub type ListenerInstaller = fn() -> io::Result<OwnedFd>;

/// A sandbox whose init is running.
pub struct Launched {
    /// Host pid of the sandbox's init.
    pub init_pid: libc::pid_t,
    /// The supervisor's end of the control channel.
    pub ctrl: OwnedFd,
    /// Asks init for TCP sockets inside the sandbox's network namespace (`--publish`): send
    /// one byte, receive one `Msg::Socket`.
    pub factory: Option<OwnedFd>,
}

/// Signals the supervisor forwards to init, and init to the command.
pub const FORWARDED: &[libc::c_int] = &[
    libc::SIGTERM,
    libc::SIGINT,
    libc::SIGHUP,
    libc::SIGQUIT,
    libc::SIGUSR1,
    libc::SIGUSR2,
    libc::SIGALRM,
    libc::SIGTSTP,
];

/// Clones the sandbox's init.
///
/// # Safety
/// The process must be single-threaded when this is called (see `sys::clone_namespaces`).
pub unsafe fn launch(
    spec: &Spec,
    install_listener: Option<ListenerInstaller>,
) -> Result<Launched, SetupError> {
    let (sup, sb) = sys::seqpacket_pair().ctx(|| "create the control channel".into())?;
    let factory = if spec.publish.is_empty() {
        None
    } else {
        Some(sys::seqpacket_pair().ctx(|| "create the socket channel".into())?)
    };
    // SAFETY: forwarded from this function's contract.
    let pid = unsafe { sys::clone_namespaces(sys::SANDBOX_NAMESPACES) }.map_err(|e| {
        SetupError::new("create the sandbox namespaces", e).fix(
            "unprivileged user namespaces are disabled or restricted (sysctl kernel.unprivileged_userns_clone, \
             user.max_user_namespaces, or AppArmor's kernel.apparmor_restrict_unprivileged_userns); run `cordon doctor`",
        )
    })?;
    if pid == 0 {
        drop(sup);
        init_main(
            spec,
            sb,
            factory.map(|(_, inside)| inside),
            install_listener,
        );
    }
    drop(sb);
    Ok(Launched {
        init_pid: pid,
        ctrl: sup,
        factory: factory.map(|(outside, _)| outside),
    })
}

fn init_main(
    spec: &Spec,
    sock: OwnedFd,
    factory: Option<OwnedFd>,
    install_listener: Option<ListenerInstaller>,
) -> ! {
    match init_setup(spec, &sock, install_listener) {
        Ok((cmd_pid, sigfd)) => init_loop(cmd_pid, sigfd, sock, factory),
        Err(e) => {
            let _ = control::send(sock.as_fd(), &Msg::SetupFailed(e.to_string()));
            sys::exit_now(125)
        }
    }
}

fn write_file(path: &str, contents: &str) -> Result<(), SetupError> {
    std::fs::write(path, contents).ctx(|| format!("write {path}"))
}

fn init_setup(
    spec: &Spec,
    sock: &OwnedFd,
    install_listener: Option<ListenerInstaller>,
) -> Result<(libc::pid_t, OwnedFd), SetupError> {
    // If the supervisor dies, so does init, and with it (pid 1) the whole sandbox.
    sys::set_parent_death_signal(libc::SIGKILL).ctx(|| "set the parent-death signal".into())?;
    sys::setsid().ctx(|| "start a new session".into())?;

    write_file("/proc/self/setgroups", "deny")?;
    write_file("/proc/self/uid_map", &format!("{0} {0} 1\n", spec.uid))?;
    write_file("/proc/self/gid_map", &format!("{0} {0} 1\n", spec.gid))?;

    // SAFETY: umask only swaps an integer in the process.
    let saved_umask = unsafe { libc::umask(0) };
    mounts::build(spec)?;
    // SAFETY: as above.
    unsafe { libc::umask(saved_umask) };

    // A host name is not a security control: the UTS namespace is private either way. Container
    // engines' default seccomp profiles refuse sethostname without CAP_SYS_ADMIN (EPERM, or
    // ENOSYS from a profile's default action) even in a namespace the sandbox owns, so a refusal
    // costs only the name: one line, not the run.
    if let Err(e) = sys::sethostname(&spec.hostname) {
        if !matches!(e.raw_os_error(), Some(libc::EPERM | libc::ENOSYS)) {
            return Err(e).ctx(|| "set the host name".into());
        }
        let _ = rustix::io::write(
            rustix::stdio::stderr(),
            b"cordon: note: the host name could not be set (refused by the container's seccomp profile); the sandbox keeps the container's\n",
        );
    }
    sys::loopback_up().ctx(|| "bring up the loopback interface".into())?;
    if spec.door {
        door::bind_and_send(spec, sock.as_fd())?;
    }
    // Under memory pressure the kernel should pick the sandbox, never the host's processes.
    write_file("/proc/self/oom_score_adj", "1000")?;
    // Counted per user namespace, so this caps the sandbox's tasks (threads included).
    sys::setrlimit(libc::RLIMIT_NPROC, spec.max_tasks, spec.max_tasks)
        .ctx(|| "limit the number of tasks".into())?;

    let pty = match spec.stdio {
        Stdio::Pty => {
            let (master, slave) = open_pty()?;
            sys::set_controlling_tty(slave.as_fd()).ctx(|| "attach the sandbox terminal".into())?;
            control::send(sock.as_fd(), &Msg::PtyMaster(master))
                .ctx(|| "hand over the terminal".into())?;
            Some(slave)
        }
        Stdio::Inherit => None,
    };

    let mut signals = vec![libc::SIGCHLD];
    signals.extend_from_slice(FORWARDED);
    let sigfd = sys::signalfd_for(&signals).ctx(|| "set up signal handling".into())?;

    // SAFETY: init is single-threaded (it is a clone of a single-threaded supervisor).
    let cmd_pid = unsafe { sys::fork() }.ctx(|| "start the command".into())?;
    if cmd_pid == 0 {
        command_main(spec, pty, sock, saved_umask, install_listener);
    }
    drop(pty);

    // init itself parses nothing from the sandbox but signals and its own channel; confine it
    // all the same: no capabilities, no file-system access, the same syscall denylist.
    // init stays dumpable so the supervisor can reach the sandbox root through
    // /proc/<init>/root; the command cannot inspect init anyway (a sibling Landlock domain
    // denies ptrace-mode access, which covers /proc/1/environ and /proc/1/mem). The
    // environment init inherited from cordon is wiped all the same.
    sys::wipe_environment();
    sys::set_no_new_privs().ctx(|| "set no_new_privs".into())?;
    sys::drop_all_capabilities().ctx(|| "drop capabilities".into())?;
    landlock_rules::restrict(&[], true)?;
    seccomp::denylist_program()
        .and_then(|p| seccomp::install(&p, 0))
        .ctx(|| "install the seccomp filter".into())?;
    Ok((cmd_pid, sigfd))
}

pub(crate) fn open_pty() -> Result<(OwnedFd, OwnedFd), SetupError> {
    use rustix::pty::{grantpt, openpt, ptsname, unlockpt, OpenptFlags};
    let master = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC)
        .ctx(|| "open a pseudo-terminal".into())?;
    grantpt(&master).ctx(|| "grant the pseudo-terminal".into())?;
    unlockpt(&master).ctx(|| "unlock the pseudo-terminal".into())?;
    let name = ptsname(&master, Vec::new()).ctx(|| "name the pseudo-terminal".into())?;
    let slave = rustix::fs::open(
        name.as_c_str(),
        rustix::fs::OFlags::RDWR | rustix::fs::OFlags::NOCTTY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .ctx(|| "open the pseudo-terminal".into())?;
    Ok((master, slave))
}

/// The command's process, between fork and exec.
fn command_main(
    spec: &Spec,
    pty: Option<OwnedFd>,
    sock: &OwnedFd,
    umask: libc::mode_t,
    install_listener: Option<ListenerInstaller>,
) -> ! {
    if let Err(e) = command_setup(spec, pty, sock, umask, install_listener) {
        let _ = control::send(sock.as_fd(), &Msg::SetupFailed(e.to_string()));
        sys::exit_now(125);
    }
    exec_command(spec)
}

fn command_setup(
    spec: &Spec,
    pty: Option<OwnedFd>,
    sock: &OwnedFd,
    umask: libc::mode_t,
    install_listener: Option<ListenerInstaller>,
) -> Result<(), SetupError> {
    // The command leads its own process group inside init's session (the sandbox's own, whose
    // terminal is the sandbox pty). It must not lead the session: a session leader's group is
    // orphaned, and the kernel discards SIGTSTP for orphaned groups, so ^Z in a TUI would do
    // nothing.
    sys::setpgid_self().ctx(|| "start the command's process group".into())?;
    if let Some(slave) = &pty {
        sys::take_foreground(slave.as_fd()).ctx(|| "attach the terminal".into())?;
        attach_stdio(slave)?;
    }
    drop(pty);
    sys::reset_signals();
    // SAFETY: umask swaps an integer.
    unsafe { libc::umask(umask) };
    prepare_process(spec, sock)?;
    landlock_rules::restrict(&mounts::writable_roots(spec), false)?;
    sys::drop_all_capabilities().ctx(|| "drop capabilities".into())?;
    seccomp::denylist_program()
        .and_then(|p| seccomp::install(&p, 0))
        .ctx(|| "install the seccomp filter".into())?;
    report_started(sock, install_listener)
}

/// The terminal's slave becomes stdin, stdout and stderr.
pub(crate) fn attach_stdio(slave: &OwnedFd) -> Result<(), SetupError> {
    for fd in 0..3 {
        sys::dup2(slave.as_raw_fd(), fd).ctx(|| "attach the terminal".into())?;
    }
    Ok(())
}

/// What every sandboxed command gets before its confinement: no inherited descriptors (only
/// stdio and cordon's own close-on-exec channel survive), its working directory, its limits,
/// and no_new_privs.
pub(crate) fn prepare_process(spec: &Spec, sock: &OwnedFd) -> Result<(), SetupError> {
    sys::close_fds_from(3, &[sock.as_raw_fd()]).ctx(|| "close inherited descriptors".into())?;
    std::env::set_current_dir(&spec.cwd)
        .ctx(|| format!("enter the working directory {}", spec.cwd.display()))?;
    if spec.memory_bytes > 0 {
        sys::setrlimit(libc::RLIMIT_DATA, spec.memory_bytes, spec.memory_bytes)
            .ctx(|| "limit memory".into())?;
    }
    sys::setrlimit(libc::RLIMIT_CORE, 0, 0).ctx(|| "disable core dumps".into())?;
    sys::set_no_new_privs().ctx(|| "set no_new_privs".into())
}

/// Installs the path-guard filter last (everything before it may create files freely), hands
/// its listener to the supervisor, and reports that exec is next.
pub(crate) fn report_started(
    sock: &OwnedFd,
    install_listener: Option<ListenerInstaller>,
) -> Result<(), SetupError> {
    if let Some(install) = install_listener {
        hand_over_listener(sock, install)?;
    }
    control::send(sock.as_fd(), &Msg::Started).ctx(|| "report start".into())
}

/// Installs the path-guard filter and lets the supervisor take its listener. Once the filter
/// exists, sendmsg is routed to the guard, which has no listener yet: so a pidfd of this
/// process and a gate pipe go first, then only the listener's number (plain send); the
/// supervisor takes it with pidfd_getfd and opens the gate. The listener is closed before
/// exec, so the command never holds it.
fn hand_over_listener(sock: &OwnedFd, install: ListenerInstaller) -> Result<(), SetupError> {
    let what = || "hand over the path guard".to_string();
    let me = rustix::process::pidfd_open(
        rustix::process::getpid(),
        rustix::process::PidfdFlags::empty(),
    )
    .ctx(what)?;
    let (gate_r, gate_w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).ctx(what)?;
    control::send(sock.as_fd(), &Msg::Pidfd(me)).ctx(what)?;
    control::send(sock.as_fd(), &Msg::Gate(gate_w)).ctx(what)?;
    let listener = install().ctx(|| "install the path-guard filter".into())?;
    control::send(sock.as_fd(), &Msg::ListenerAt(listener.as_raw_fd())).ctx(what)?;
    let mut ok = [0u8; 1];
    let n = loop {
        match rustix::io::read(&gate_r, &mut ok) {
            Err(rustix::io::Errno::INTR) => continue,
            other => break other,
        }
    }
    .ctx(what)?;
    if n != 1 {
        return Err(SetupError::msg(
            "the supervisor did not take the path guard",
        ));
    }
    Ok(())
}

/// Finds and execs argv[0] like a shell: 127 when not found, 126 when found but not runnable.
pub(crate) fn exec_command(spec: &Spec) -> ! {
    let Some(arg0) = spec.argv.first() else {
        sys::exit_now(127)
    };
    let name = arg0.as_bytes();
    let report = |what: &str, code: i32| -> ! {
        let _ = writeln!(
            io::stderr(),
            "cordon: {}: {what}",
            String::from_utf8_lossy(name)
        );
        sys::exit_now(code)
    };
    if name.contains(&b'/') {
        let e = sys::execve(arg0, &spec.argv, &spec.env);
        match e.raw_os_error() {
            Some(libc::ENOENT) | Some(libc::ENOTDIR) => report("No such file or directory", 127),
            _ => report(&e.to_string(), 126),
        }
    }
    let mut denied: Option<io::Error> = None;
    for dir in spec.path_var.split(':') {
        let dir = if dir.is_empty() { "." } else { dir };
        let mut full = Path::new(dir).as_os_str().as_bytes().to_vec();
        full.push(b'/');
        full.extend_from_slice(name);
        let Ok(full) = CString::new(full) else {
            continue;
        };
        let e = sys::execve(&full, &spec.argv, &spec.env);
        match e.raw_os_error() {
            Some(libc::ENOENT)
            | Some(libc::ENOTDIR)
            | Some(libc::ELOOP)
            | Some(libc::ENAMETOOLONG) => {}
            Some(libc::EACCES) | Some(libc::EISDIR) | Some(libc::EPERM) => denied = Some(e),
            _ => report(&e.to_string(), 126),
        }
    }
    match denied {
        Some(e) => report(&e.to_string(), 126),
        None => report("command not found", 127),
    }
}

/// init as pid 1: reaps orphans, forwards signals, reports job-control stops, and exits with
/// the command's status (which makes the kernel kill everything left in the sandbox).
fn init_loop(cmd_pid: libc::pid_t, sigfd: OwnedFd, sock: OwnedFd, factory: Option<OwnedFd>) -> ! {
    let mut factory = factory;
    loop {
        let mut fds = vec![
            PollFd::new(&sigfd, PollFlags::IN),
            PollFd::new(&sock, PollFlags::IN),
        ];
        if let Some(f) = &factory {
            fds.push(PollFd::new(f, PollFlags::IN));
        }
        match poll(&mut fds, None) {
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => continue,
            Err(_) => sys::exit_now(125),
        }
        let sig_ready = !fds[0].revents().is_empty();
        let sock_ready = !fds[1].revents().is_empty();
        let factory_ready = fds.get(2).is_some_and(|f| !f.revents().is_empty());
        drop(fds);
        if factory_ready && !serve_socket_request(factory.as_ref()) {
            factory = None;
        }
        if sig_ready {
            if let Ok(sig) = sys::read_signal(sigfd.as_fd()) {
                if sig as libc::c_int == libc::SIGCHLD {
                    reap(cmd_pid, sock.as_fd());
                } else {
                    let _ = sys::kill(cmd_pid, sig as libc::c_int);
                }
            }
        }
        if sock_ready {
            match control::recv(sock.as_fd()) {
                Ok(Some(Msg::Continue)) => {
                    let _ = sys::kill(-cmd_pid, libc::SIGCONT);
                }
                Ok(Some(_)) | Err(_) => {}
                // The supervisor is gone: end the sandbox.
                Ok(None) => sys::exit_now(137),
            }
        }
    }
}

/// Answers one `--publish` request with a fresh TCP socket in the sandbox's network
/// namespace. Returns false when the supervisor closed the channel.
fn serve_socket_request(factory: Option<&OwnedFd>) -> bool {
    let Some(f) = factory else { return false };
    let mut byte = [0u8; 1];
    match rustix::io::read(f, &mut byte) {
        Ok(1) => {}
        _ => return false,
    }
    let family = if byte[0] == 6 {
        rustix::net::AddressFamily::INET6
    } else {
        rustix::net::AddressFamily::INET
    };
    let flags = rustix::net::SocketFlags::CLOEXEC;
    if let Ok(s) = rustix::net::socket_with(family, rustix::net::SocketType::STREAM, flags, None) {
        let _ = control::send(
            f.as_fd(),
            &Msg::Socket(crate::spec::DoorSocket::Published, s),
        );
    }
    true
}

fn reap(cmd_pid: libc::pid_t, sock: BorrowedFd<'_>) {
    loop {
        match sys::waitpid(-1, libc::WNOHANG | libc::WUNTRACED | libc::__WALL) {
            Ok((0, _)) | Err(_) => return,
            Ok((pid, status)) if pid == cmd_pid => {
                if libc::WIFSTOPPED(status) {
                    let sig = libc::WSTOPSIG(status) as u8;
                    let _ = control::send(sock, &Msg::Stopped(sig));
                } else {
                    sys::exit_now(sys::exit_code_of(status));
                }
            }
            Ok(_) => {}
        }
    }
}

/// Descriptors cordon's stdio uses (for callers deciding on `Stdio::Pty`).
pub fn any_stdio_is_tty() -> bool {
    [0 as RawFd, 1, 2].iter().any(|fd| sys::isatty(*fd))
}
