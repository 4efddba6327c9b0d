//! `--isolation landlock`: the explicit, weaker mode for machines without unprivileged user
//! namespaces. No namespaces: the command is cordon's direct child, confined by Landlock (read
//! everything but the hidden paths; write only the workspace, `allow_write` paths and a private
//! per-run TMPDIR), the same seccomp denylist with no inet sockets at all (so no network, not
//! even loopback TCP), the path guard (protected paths, unix-socket connects), signal and
//! abstract-socket scoping, and a scrubbed environment. What it lacks is printed at start.

use crate::control::{self, Msg};
use crate::error::{Context, SetupError};
use crate::sandbox::{Launched, ListenerInstaller};
use crate::spec::{Spec, Stdio};
use crate::{landlock_rules, seccomp, sys};
use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;

/// What `--isolation landlock` does not give, for the warning line.
pub const LACKS: &str = "no namespaces: no network at all (not even loopback TCP), host processes are visible \
    (but cannot be signalled or traced), $HOME and /tmp are read-only (TMPDIR is private), no task limit, \
    and a process that calls setsid can outlive cordon if cordon itself is killed";

/// Starts the command under Landlock and seccomp only.
///
/// # Safety
/// The process must be single-threaded (it forks).
pub unsafe fn launch(
    spec: &Spec,
    tmpdir: PathBuf,
    install_listener: ListenerInstaller,
) -> Result<Launched, SetupError> {
    let (sup, sb) = sys::seqpacket_pair().ctx(|| "create the control channel".into())?;
    // Orphans of the command come back to cordon, which ends them when the command ends.
    sys::prctl(libc::PR_SET_CHILD_SUBREAPER, 1).ctx(|| "become a subreaper".into())?;
    let mut reads = landlock_rules::read_grants(&spec.deny_read, &spec.reopen_read);
    // The host's /tmp is other people's business, except the private TMPDIR and a $HOME
    // that lies below /tmp (its hidden paths stay carved out by `read_grants`).
    reads.retain(|p| !p.starts_with("/tmp") || p.starts_with(&tmpdir) || p.starts_with(&spec.home));
    let mut writable = spec.writable.clone();
    writable.push(tmpdir);
    // SAFETY: forwarded from this function's contract.
    let pid = unsafe { sys::fork() }.ctx(|| "start the command".into())?;
    if pid == 0 {
        drop(sup);
        if let Err(e) = child(spec, &sb, &reads, &writable, install_listener) {
            let _ = control::send(sb.as_fd(), &Msg::SetupFailed(e.to_string()));
            sys::exit_now(125);
        }
        crate::sandbox::exec_command(spec);
    }
    drop(sb);
    Ok(Launched {
        init_pid: pid,
        ctrl: sup,
        factory: None,
    })
}

fn child(
    spec: &Spec,
    sock: &OwnedFd,
    reads: &[PathBuf],
    writable: &[PathBuf],
    install_listener: ListenerInstaller,
) -> Result<(), SetupError> {
    sys::set_parent_death_signal(libc::SIGKILL).ctx(|| "set the parent-death signal".into())?;
    sys::reset_signals();
    sys::setsid().ctx(|| "start the command's session".into())?;
    if spec.stdio == Stdio::Pty {
        let (master, slave) = crate::sandbox::open_pty()?;
        sys::set_controlling_tty(slave.as_fd()).ctx(|| "attach the terminal".into())?;
        control::send(sock.as_fd(), &Msg::PtyMaster(master))
            .ctx(|| "hand over the terminal".into())?;
        crate::sandbox::attach_stdio(&slave)?;
    }
    crate::sandbox::prepare_process(spec, sock)?;
    landlock_rules::restrict_lite(reads, writable)?;
    seccomp::denylist_program_no_inet()
        .and_then(|p| seccomp::install(&p, 0))
        .ctx(|| "install the seccomp filter".into())?;
    crate::sandbox::report_started(sock, Some(install_listener))
}

/// Ends whatever the command left behind (orphans re-parented to cordon) and reaps them.
pub fn end_orphans() {
    let me = std::process::id() as i32;
    for _ in 0..50 {
        let mut found = false;
        if let Ok(dir) = std::fs::read_dir("/proc") {
            for e in dir.flatten() {
                let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
                    continue;
                };
                let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                    continue;
                };
                let ppid = stat
                    .rfind(')')
                    .and_then(|i| stat[i + 2..].split_whitespace().nth(1)?.parse::<i32>().ok());
                if ppid == Some(me) {
                    found = true;
                    let _ = sys::kill(pid, libc::SIGKILL);
                }
            }
        }
        while let Ok((p, _)) = sys::waitpid(-1, libc::WNOHANG) {
            if p <= 0 {
                break;
            }
        }
        if !found {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}
