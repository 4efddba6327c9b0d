//! The host side of the guest, run as the command of the outer (namespace-tier) sandbox:
//! starts QEMU, sends the guest its configuration, relays stdio, and connects the guest's
//! network streams to the door on the outer sandbox's 127.0.0.1. Everything from the guest
//! is hostile: frames are bounded, streams are limited in number and may only reach door
//! ports, and a malformed frame ends the run (exit 125), never by a panic.

use super::config::{GuestConfig, DOOR_PORTS};
use super::frame::{self, Kind};
use super::qemu::{Accel, Machine, QEMU};
use std::io::{Read, Write};
use std::net::Shutdown;
use std::os::unix::net::{UnixListener, UnixStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long the guest may take to connect its control port.
const BOOT_TIMEOUT: Duration = Duration::from_secs(120);

/// The helper's arguments (`cordon vm-host`).
#[derive(Debug, Clone)]
pub struct HostArgs {
    pub kernel: PathBuf,
    pub initrd: PathBuf,
    pub accel: Accel,
    pub memory_mb: u64,
    pub shares: Vec<PathBuf>,
    pub net: bool,
    /// Share the outer `$HOME` and `/var/tmp` read-write (every run; a named sandbox keeps them).
    pub kept: bool,
    /// Ports captured for any destination in the guest (see [`GuestConfig`]).
    pub transparent_ports: Vec<u16>,
    pub verbose: bool,
    pub serial: Option<PathBuf>,
    pub command: Vec<std::ffi::OsString>,
}

/// The control port, shared by every writer.
pub type Port = Arc<Mutex<UnixStream>>;

/// Writes one frame to the guest.
pub fn send(port: &Port, kind: Kind, stream: u32, data: &[u8]) -> std::io::Result<()> {
    let mut p = port
        .lock()
        .map_err(|_| std::io::Error::other("port lock poisoned"))?;
    frame::write(&mut *p, kind, stream, data)
}

/// Runs the guest; the command's exit status, or why the VM failed.
pub fn run(args: HostArgs) -> Result<i32, String> {
    run_inner(args)
}

fn run_inner(args: HostArgs) -> Result<i32, String> {
    // Before any thread: the mask is inherited (QEMU gets a clean one from std's spawn).
    let signals = super::hostsig::block().map_err(|e| format!("cannot block signals: {e}"))?;
    let dir = std::env::temp_dir().join(format!("cordon-vm-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let sock = dir.join("ctl.sock");
    let listener = UnixListener::bind(&sock)
        .map_err(|e| format!("cannot listen on {}: {e}", sock.display()))?;
    let log = dir.join("qemu.log");
    let machine = Machine {
        kernel: args.kernel.clone(),
        initrd: args.initrd.clone(),
        accel: args.accel,
        memory_mb: args.memory_mb,
        control: Some(sock.clone()),
        shares: args.shares.clone(),
        // Never the whole root read-write, whatever $HOME says.
        kept_home: args
            .kept
            .then(home_dir)
            .filter(|h| h.is_absolute() && h != Path::new("/")),
        root_share: true,
        append: Vec::new(),
        serial: args.serial.clone(),
    };
    let log_file =
        std::fs::File::create(&log).map_err(|e| format!("cannot create {}: {e}", log.display()))?;
    let mut cmd = std::process::Command::new(QEMU);
    cmd.args(machine.args())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(log_file);
    // SAFETY: prctl is async-signal-safe; QEMU dies with this helper.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut qemu = cmd.spawn().map_err(|e| {
        format!("cannot start {QEMU}: {e} (fix: `apt-get install qemu-system-x86`)")
    })?;
    let qemu_failed = |why: &str| {
        let tail = std::fs::read_to_string(&log).unwrap_or_default();
        let tail: Vec<&str> = tail.lines().rev().take(5).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        format!("the VM {why}: {}", tail.join(" / "))
    };
    listener
        .set_nonblocking(true)
        .map_err(|e| format!("cannot poll the control socket: {e}"))?;
    let started = Instant::now();
    let conn = loop {
        match listener.accept() {
            Ok((c, _)) => break c,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(format!("cannot accept the VM's control port: {e}")),
        }
        if let Ok(Some(st)) = qemu.try_wait() {
            return Err(qemu_failed(&format!("did not start ({st})")));
        }
        if started.elapsed() > BOOT_TIMEOUT {
            let _ = qemu.kill();
            return Err("the VM did not connect its control port in time".into());
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    conn.set_nonblocking(false)
        .map_err(|e| format!("control port: {e}"))?;
    let _ = std::fs::remove_file(&sock);
    let reader = conn.try_clone().map_err(|e| format!("control port: {e}"))?;
    let port: Port = Arc::new(Mutex::new(conn));
    let cfg = guest_config(&args)?;
    let json = serde_json::to_vec(&cfg).map_err(|e| e.to_string())?;
    send(&port, Kind::Config, 0, &json).map_err(|e| format!("cannot configure the VM: {e}"))?;
    // An interactive guest has its own pty: this side passes bytes through untouched.
    let _raw = cfg.tty.and_then(|_| super::hostsig::RawMode::enter());
    super::hostsig::forward(signals, Arc::clone(&port));
    spawn_stdin(Arc::clone(&port));
    // A guest kernel that hangs before init speaks must not hang cordon.
    reader
        .set_read_timeout(Some(BOOT_TIMEOUT))
        .map_err(|e| format!("control port: {e}"))?;
    let code = relay(reader, &port, args.verbose);
    match code {
        Ok(Some(c)) => Ok(c),
        Ok(None) => {
            let _ = qemu.kill();
            let _ = qemu.wait();
            Err(qemu_failed("ended before the command did"))
        }
        Err(e) => {
            let _ = qemu.kill();
            Err(e)
        }
    }
}

fn guest_config(args: &HostArgs) -> Result<GuestConfig, String> {
    use std::os::unix::ffi::OsStrExt;
    let cwd =
        std::env::current_dir().map_err(|e| format!("cannot read the current directory: {e}"))?;
    let tty = if cordon_linux::sys::isatty(0) {
        winsize(0)
    } else {
        None
    };
    Ok(GuestConfig {
        argv: args.command.iter().map(|a| a.as_bytes().to_vec()).collect(),
        env: std::env::vars_os()
            .map(|(k, v)| {
                let mut kv = k.as_bytes().to_vec();
                kv.push(b'=');
                kv.extend_from_slice(v.as_bytes());
                kv
            })
            .collect(),
        cwd: cwd.to_string_lossy().into_owned(),
        uid: cordon_linux::sys::getuid(),
        gid: cordon_linux::sys::getgid(),
        home: home_dir().to_string_lossy().into_owned(),
        shares: args
            .shares
            .iter()
            .map(|p| p.to_string_lossy().into_owned())
            .collect(),
        net: args.net,
        transparent_ports: if args.net {
            args.transparent_ports.clone()
        } else {
            Vec::new()
        },
        tty,
        kept: args.kept,
        verbose: args.verbose,
    })
}

/// `$HOME` as the outer sandbox sets it (`/` when unset).
fn home_dir() -> PathBuf {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/"))
}

/// The terminal size of `fd`, if it is a terminal.
pub fn winsize(fd: i32) -> Option<(u16, u16)> {
    // SAFETY: TIOCGWINSZ writes one winsize into the struct we own.
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    let r = unsafe { libc::ioctl(fd, libc::TIOCGWINSZ, &mut ws) };
    (r == 0).then_some((ws.ws_row, ws.ws_col))
}

fn spawn_stdin(port: Port) {
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 16 * 1024];
        let mut stdin = std::io::stdin().lock();
        loop {
            match stdin.read(&mut buf) {
                Ok(0) | Err(_) => {
                    let _ = send(&port, Kind::Stdin, 0, &[]);
                    return;
                }
                Ok(n) => {
                    if send(&port, Kind::Stdin, 0, &buf[..n]).is_err() {
                        return;
                    }
                }
            }
        }
    });
}

/// Relays frames until the guest reports the exit status (`Some`) or the port closes (`None`).
fn relay(mut reader: UnixStream, port: &Port, verbose: bool) -> Result<Option<i32>, String> {
    let streams: super::hostnet::Streams = Arc::default();
    let dns = Arc::new(AtomicUsize::new(0));
    let mut out = std::io::stdout().lock();
    let mut err = std::io::stderr();
    let mut booted = false;
    loop {
        let f = match frame::read(&mut reader) {
            Ok(Some(f)) => f,
            Err(e)
                if !booted
                    && matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
            {
                return Err(format!(
                    "the VM did not start within {} s",
                    BOOT_TIMEOUT.as_secs()
                ))
            }
            Ok(None) => return Ok(None),
            // QEMU went away (the guest crashed or powered off early).
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::UnexpectedEof
                ) =>
            {
                return Ok(None)
            }
            Err(e) => {
                return Err(format!(
                    "the VM sent a malformed frame ({e}); it was stopped"
                ))
            }
        };
        if !booted {
            booted = true;
            let _ = reader.set_read_timeout(None);
        }
        match f.kind {
            Kind::Stdout => {
                // A closed stdout (e.g. `| head`) is the reader's business, not a VM failure.
                let _ = out.write_all(&f.data).and_then(|_| out.flush());
            }
            Kind::Stderr => {
                let _ = err.write_all(&f.data);
            }
            Kind::Exit => {
                let _ = out.flush();
                return frame::i32_of(&f.data)
                    .map(Some)
                    .ok_or_else(|| "the VM sent a malformed exit status".to_string());
            }
            Kind::Error => {
                return Err(format!(
                    "the VM could not start the command: {}",
                    String::from_utf8_lossy(&f.data)
                        .chars()
                        .filter(|c| !c.is_control())
                        .collect::<String>()
                ))
            }
            Kind::Note => {
                if verbose && !f.data.is_empty() {
                    let line: String = String::from_utf8_lossy(&f.data)
                        .chars()
                        .filter(|c| !c.is_control())
                        .collect();
                    eprintln!("cordon: vm: {line}");
                }
            }
            Kind::Open => {
                let target = f
                    .data
                    .as_slice()
                    .try_into()
                    .ok()
                    .map(u16::from_le_bytes)
                    .filter(|p| DOOR_PORTS.contains(p))
                    .map(|p| std::net::SocketAddr::from((std::net::Ipv4Addr::LOCALHOST, p)));
                super::hostnet::open_stream(f.stream, target, port, &streams)
            }
            Kind::OpenTo => {
                // Never loopback (only the door listens there, reached with Open); any other
                // address is connected to from the outer sandbox, whose path guard sends it
                // to the transparent door: the namespace tier's policy, audit and approvals.
                // (A v4-mapped ::ffff:127.0.0.1 is loopback too.)
                let target = frame::decode_addr(&f.data).filter(|a| {
                    let ip = a.ip().to_canonical();
                    !ip.is_loopback() && !ip.is_unspecified()
                });
                super::hostnet::open_stream(f.stream, target, port, &streams)
            }
            Kind::Data => {
                let s = streams
                    .lock()
                    .ok()
                    .and_then(|m| m.get(&f.stream)?.try_clone().ok());
                if let Some(mut s) = s {
                    if s.write_all(&f.data).is_err() {
                        let _ = s.shutdown(Shutdown::Both);
                    }
                }
            }
            Kind::Eof => {
                if let Some(s) = streams.lock().ok().and_then(|mut m| m.remove(&f.stream)) {
                    let _ = s.shutdown(Shutdown::Write);
                }
            }
            Kind::Dns => super::hostnet::dns_query(f.stream, f.data, port, &dns),
            // Frames only the host sends: a guest sending them is ignored.
            Kind::Config | Kind::Stdin | Kind::Winsize | Kind::Signal => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair() -> (Port, UnixStream, UnixStream) {
        let (a, b) = UnixStream::pair().unwrap();
        let reader = a.try_clone().unwrap();
        (Arc::new(Mutex::new(a)), reader, b)
    }

    #[test]
    fn hostile_frames_end_the_run_without_a_panic() {
        let (port, reader, mut guest) = pair();
        guest.write_all(&[0xee, 0, 0, 0, 0, 0, 0, 0, 0]).unwrap();
        assert!(relay(reader, &port, false).is_err());

        let (port, reader, mut guest) = pair();
        guest
            .write_all(&[Kind::Data as u8, 1, 0, 0, 0, 0xff, 0xff, 0xff, 0x7f])
            .unwrap();
        assert!(relay(reader, &port, false).is_err(), "an oversized frame");

        let (port, reader, mut guest) = pair();
        frame::write(&mut guest, Kind::Exit, 0, &[1, 2]).unwrap();
        assert!(relay(reader, &port, false).is_err(), "a malformed status");
    }

    #[test]
    fn host_only_frames_are_ignored_and_status_returns() {
        let (port, reader, mut guest) = pair();
        frame::write(&mut guest, Kind::Config, 0, b"{}").unwrap();
        frame::write(&mut guest, Kind::Signal, 0, &9i32.to_le_bytes()).unwrap();
        frame::write(&mut guest, Kind::Data, 77, b"to no stream").unwrap();
        frame::write(&mut guest, Kind::Eof, 78, b"").unwrap();
        frame::write(&mut guest, Kind::Exit, 0, &42i32.to_le_bytes()).unwrap();
        assert_eq!(relay(reader, &port, false).unwrap(), Some(42));
        drop(guest);
        let (port, reader, guest) = pair();
        drop(guest);
        assert_eq!(
            relay(reader, &port, false).unwrap(),
            None,
            "a guest gone early"
        );
    }

    #[test]
    fn streams_reach_only_door_ports() {
        let (port, reader, mut guest) = pair();
        // ssh on loopback, loopback through OpenTo, unspecified, and malformed payloads: all
        // refused with an immediate EOF, none connected.
        frame::write(&mut guest, Kind::Open, 5, &22u16.to_le_bytes()).unwrap();
        frame::write(&mut guest, Kind::Open, 6, &[1, 2, 3]).unwrap();
        let lo: std::net::SocketAddr = "127.0.0.1:3128".parse().unwrap();
        frame::write(&mut guest, Kind::OpenTo, 7, &frame::encode_addr(lo)).unwrap();
        let any: std::net::SocketAddr = "0.0.0.0:80".parse().unwrap();
        frame::write(&mut guest, Kind::OpenTo, 8, &frame::encode_addr(any)).unwrap();
        frame::write(&mut guest, Kind::OpenTo, 9, &[4, 1]).unwrap();
        let mapped: std::net::SocketAddr = "[::ffff:127.0.0.1]:3129".parse().unwrap();
        frame::write(&mut guest, Kind::OpenTo, 10, &frame::encode_addr(mapped)).unwrap();
        frame::write(&mut guest, Kind::Exit, 0, &0i32.to_le_bytes()).unwrap();
        assert_eq!(relay(reader, &port, false).unwrap(), Some(0));
        for id in [5, 6, 7, 8, 9, 10] {
            let f = frame::read(&mut guest).unwrap().unwrap();
            assert_eq!((f.kind, f.stream), (Kind::Eof, id));
        }
    }
}
