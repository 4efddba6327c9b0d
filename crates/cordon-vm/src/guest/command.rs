//! The command inside the guest: its pty or pipes, and the inner wall applied between fork
//! and exec (Landlock at the guest's ABI, the seccomp denylist, no capabilities).

use super::{send, Port};
use crate::config::GuestConfig;
use crate::frame::Kind;
use std::io::Read;
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// A pty for an interactive command: (master, slave).
pub fn open_pty(ws: (u16, u16)) -> Result<(OwnedFd, OwnedFd), String> {
    // SAFETY: posix_openpt returns a new fd or -1.
    let m = unsafe { libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC) };
    if m < 0 {
        return Err(format!("open a pty: {}", std::io::Error::last_os_error()));
    }
    // SAFETY: m is a fresh fd we own.
    let master = unsafe { OwnedFd::from_raw_fd(m) };
    let mut name = [0 as libc::c_char; 64];
    // SAFETY: valid fd; ptsname_r writes at most name.len() bytes.
    let ok = unsafe {
        libc::grantpt(m) == 0
            && libc::unlockpt(m) == 0
            && libc::ptsname_r(m, name.as_mut_ptr(), name.len()) == 0
    };
    if !ok {
        return Err(format!(
            "set up the pty: {}",
            std::io::Error::last_os_error()
        ));
    }
    // SAFETY: ptsname_r NUL-terminated the buffer.
    let path = unsafe { std::ffi::CStr::from_ptr(name.as_ptr()) };
    // SAFETY: a valid path.
    let s = unsafe {
        libc::open(
            path.as_ptr(),
            libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
        )
    };
    if s < 0 {
        return Err(format!("open the pty: {}", std::io::Error::last_os_error()));
    }
    // SAFETY: s is a fresh fd we own.
    let slave = unsafe { OwnedFd::from_raw_fd(s) };
    set_winsize(m, ws);
    Ok((master, slave))
}

pub fn set_winsize(fd: i32, (rows, cols): (u16, u16)) {
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads one winsize from a struct we own.
    unsafe { libc::ioctl(fd, libc::TIOCSWINSZ, &ws) };
}

/// The inner wall's writable roots: the shares and the private layer.
fn writable(cfg: &GuestConfig) -> Vec<PathBuf> {
    let mut w: Vec<PathBuf> = cfg.shares.iter().map(PathBuf::from).collect();
    for p in ["/tmp", "/var/tmp", "/run", "/dev/shm"] {
        w.push(p.into());
    }
    if cfg.home != "/" {
        w.push(PathBuf::from(&cfg.home));
    }
    w.retain(|p| p.exists());
    w
}

pub fn spawn(cfg: &GuestConfig, slave: Option<&OwnedFd>) -> std::io::Result<std::process::Child> {
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::process::CommandExt;
    let argv: Vec<std::ffi::OsString> = cfg
        .argv
        .iter()
        .map(|a| std::ffi::OsStr::from_bytes(a).to_owned())
        .collect();
    let Some((prog, rest)) = argv.split_first() else {
        return Err(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "no command",
        ));
    };
    let mut cmd = Command::new(prog);
    cmd.args(rest).env_clear();
    for kv in &cfg.env {
        if let Some(i) = kv.iter().position(|b| *b == b'=') {
            cmd.env(
                std::ffi::OsStr::from_bytes(&kv[..i]),
                std::ffi::OsStr::from_bytes(&kv[i + 1..]),
            );
        }
    }
    cmd.current_dir(&cfg.cwd).uid(cfg.uid).gid(cfg.gid);
    let tty = slave.is_some();
    match slave {
        Some(s) => {
            let f = || s.try_clone().map(Stdio::from);
            cmd.stdin(f()?).stdout(f()?).stderr(f()?);
        }
        None => {
            cmd.stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
        }
    }
    let writable = writable(cfg);
    let root = cfg.uid == 0;
    // SAFETY: runs in the forked child of a single-threaded init, before exec.
    unsafe {
        cmd.pre_exec(move || {
            if tty && (libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0) {
                return Err(std::io::Error::last_os_error());
            }
            // A non-root uid lost every capability at setuid; root must drop them itself.
            if root {
                cordon_linux::sys::drop_all_capabilities()?;
            }
            cordon_linux::sys::set_no_new_privs()?;
            cordon_linux::landlock_rules::restrict(&writable, false)
                .map_err(|e| std::io::Error::other(e.to_string()))?;
            cordon_linux::seccomp::install(&cordon_linux::seccomp::denylist_program()?, 0)?;
            Ok(())
        });
    }
    cmd.spawn()
}

/// Copies a pipe or the pty's master to the host as `kind` frames until it ends.
pub fn pump(
    mut r: impl Read + Send + 'static,
    port: Port,
    kind: Kind,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            match r.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    if send(&port, kind, 0, &buf[..n]).is_err() {
                        return;
                    }
                }
            }
        }
    })
}
