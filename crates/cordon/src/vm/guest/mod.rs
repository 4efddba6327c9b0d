//! The guest's init: cordon itself, pid 1 of the VM's kernel, started from the initramfs.
//! It loads the modules the guest needs, opens the control port, builds the view over the 9p
//! shares, binds the network forwarder, and runs the command as the person's uid under the
//! inner wall: Landlock at whatever ABI the guest kernel has, the seccomp denylist, no
//! capabilities, no_new_privs. The status goes back to the host, and the guest powers off.

mod forward;
mod route;
mod sys;
mod view;

use super::config::{GuestConfig, PORT_NAME};
use super::frame::{self, Kind};
use super::initramfs::MODULE_LIST;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

/// The control port, shared by every writer.
pub type Port = Arc<Mutex<File>>;

/// The kernel command-line word that makes init report and power off at once (the KVM probe).
pub const PROBE_WORD: &str = "cordon.probe=1";
/// What the probe prints on the console when userspace is reached.
pub const PROBE_OK: &str = "CORDON-PROBE-OK";

fn send(port: &Port, kind: Kind, stream: u32, data: &[u8]) -> std::io::Result<()> {
    let mut p = port
        .lock()
        .map_err(|_| std::io::Error::other("port lock poisoned"))?;
    frame::write(&mut *p, kind, stream, data)
}

/// Whether this process is the guest's init: pid 1, started as /init.
pub fn is_init() -> bool {
    std::process::id() == 1 && std::env::args_os().next().is_some_and(|a| a == "/init")
}

/// The guest's init; never returns (the guest powers off).
pub fn main() -> ! {
    let mut port: Option<Port> = None;
    if let Err(e) = init(&mut port) {
        match &port {
            Some(p) => {
                let _ = send(p, Kind::Error, 0, e.as_bytes());
            }
            None => eprintln!("cordon guest init: {e}"),
        }
    }
    sys::power_off()
}

fn init(port_out: &mut Option<Port>) -> Result<(), String> {
    let e = |e: std::io::Error| e.to_string();
    sys::mount(
        "devtmpfs",
        Path::new("/dev"),
        "devtmpfs",
        libc::MS_NOSUID,
        "",
    )
    .map_err(e)?;
    sys::mount("proc", Path::new("/proc"), "proc", 0, "").map_err(e)?;
    sys::mount("sysfs", Path::new("/sys"), "sysfs", 0, "").map_err(e)?;
    let cmdline = std::fs::read_to_string("/proc/cmdline").unwrap_or_default();
    if cmdline.split_whitespace().any(|w| w == PROBE_WORD) {
        println!(
            "{PROBE_OK} landlock={}",
            cordon_linux::fsrules::kernel_abi()
        );
        return Ok(());
    }
    load_modules(&cmdline)?;
    let port_path = find_port()?;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&port_path)
        .map_err(|e| format!("open {}: {e}", port_path.display()))?;
    let mut reader = file.try_clone().map_err(e)?;
    let port: Port = Arc::new(Mutex::new(file));
    *port_out = Some(Arc::clone(&port));
    let cfg: GuestConfig = match frame::read(&mut reader) {
        Ok(Some(f)) if f.kind == Kind::Config => {
            serde_json::from_slice(&f.data).map_err(|e| format!("bad configuration: {e}"))?
        }
        _ => return Err("no configuration from the host".into()),
    };
    // Alive: the host stops its boot timer at the first frame.
    send(&port, Kind::Note, 0, b"").map_err(e)?;
    let _ = cordon_linux::sys::sethostname("cordon-vm");
    view::build(&cfg)?;
    let bound = if cfg.net {
        Some(forward::bind(&cfg.transparent_ports)?)
    } else {
        None
    };
    if let Some(why) = bound.as_ref().and_then(|b| b.transparent_off.as_ref()) {
        let note = format!("programs that ignore the proxy variables get no connection ({why})");
        let _ = send(&port, Kind::Note, 0, note.as_bytes());
    }
    let abi = cordon_linux::fsrules::kernel_abi();
    if cfg.verbose {
        let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
        let note = format!(
            "inner wall: guest kernel {}, Landlock ABI {abi}, seccomp denylist, no capabilities",
            release.trim()
        );
        let _ = send(&port, Kind::Note, 0, note.as_bytes());
    }
    // Init needs no new capabilities from here on, and nothing it starts may ever get one back.
    drop_bounding_set();
    let pty = match cfg.tty {
        Some(ws) => Some(open_pty(ws)?),
        None => None,
    };
    let mut child = match spawn(&cfg, pty.as_ref().map(|p| &p.1)) {
        Ok(c) => c,
        Err(e) => {
            let code: i32 = match e.kind() {
                std::io::ErrorKind::NotFound => 127,
                _ => 126,
            };
            let name = cfg
                .argv
                .first()
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .unwrap_or_default();
            let msg = format!("cordon: {name}: {e}\n");
            let _ = send(&port, Kind::Stderr, 0, msg.as_bytes());
            let _ = send(&port, Kind::Exit, 0, &code.to_le_bytes());
            return Ok(());
        }
    };
    // Threads only from here on: the command was forked from a single-threaded process.
    let streams = Arc::new(forward::Streams::default());
    let udp = bound.as_ref().and_then(|b| b.udp_clone());
    if let Some(b) = bound {
        forward::serve(b, Arc::clone(&port), Arc::clone(&streams));
    }
    let (master, _slave) = match pty {
        Some((m, s)) => (Some(m), Some(s)),
        None => (None, None),
    };
    let stdin_sink: Option<Box<dyn Write + Send>> = match (&master, child.stdin.take()) {
        (Some(m), _) => m
            .try_clone()
            .ok()
            .map(|f| Box::new(File::from(f)) as Box<dyn Write + Send>),
        (None, Some(s)) => Some(Box::new(s)),
        _ => None,
    };
    let master_fd = master.as_ref().map(|m| m.as_raw_fd());
    let control = {
        let port = Arc::clone(&port);
        let streams = Arc::clone(&streams);
        std::thread::spawn(move || control_loop(reader, port, streams, udp, stdin_sink, master_fd))
    };
    drop(control);
    let mut readers = Vec::new();
    if let Some(m) = master.as_ref().and_then(|m| m.try_clone().ok()) {
        readers.push(pump(File::from(m), Arc::clone(&port), Kind::Stdout));
    }
    if let Some(o) = child.stdout.take() {
        readers.push(pump(o, Arc::clone(&port), Kind::Stdout));
    }
    if let Some(er) = child.stderr.take() {
        readers.push(pump(er, Arc::clone(&port), Kind::Stderr));
    }
    let status = child.wait().map_err(e)?;
    // Whatever the command left running ends with it, as in the namespace tier.
    // SAFETY: kill(-1) signals every process but init; no pointers.
    unsafe { libc::kill(-1, libc::SIGKILL) };
    drop(_slave);
    for r in readers {
        let _ = r.join();
    }
    use std::os::unix::process::ExitStatusExt;
    let code = match (status.code(), status.signal()) {
        (Some(c), _) => c,
        (None, Some(s)) => 128 + s,
        _ => 125,
    };
    send(&port, Kind::Exit, 0, &code.to_le_bytes()).map_err(e)?;
    Ok(())
}

fn drop_bounding_set() {
    for cap in 0..64 {
        // SAFETY: integer-only prctl; EINVAL past the last capability ends the loop.
        if unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap, 0, 0, 0) } != 0 {
            break;
        }
    }
}

fn load_modules(cmdline: &str) -> Result<(), String> {
    let list = std::fs::read_to_string(Path::new("/").join(MODULE_LIST)).unwrap_or_default();
    for m in list.lines().filter(|l| !l.is_empty()) {
        let params = module_params(cmdline, &super::kernel::mod_name(m));
        sys::load_module(Path::new(m), &params).map_err(|e| format!("load module {m}: {e}"))?;
    }
    Ok(())
}

/// `NAME.param=value` words of the kernel command line for module NAME (what modprobe would
/// pass: the kernel applies them only to built-in code). QEMU's microvm puts its virtio-mmio
/// devices there.
fn module_params(cmdline: &str, name: &str) -> String {
    let prefix = format!("{name}.");
    cmdline
        .split_whitespace()
        .filter_map(|w| w.strip_prefix(&prefix))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The control port's device node (devtmpfs names it vportNpM; sysfs has its name).
fn find_port() -> Result<PathBuf, String> {
    for _ in 0..1000 {
        if let Ok(rd) = std::fs::read_dir("/sys/class/virtio-ports") {
            for e in rd.flatten() {
                let name = std::fs::read_to_string(e.path().join("name")).unwrap_or_default();
                if name.trim() == PORT_NAME {
                    let dev = Path::new("/dev").join(e.file_name());
                    if dev.exists() {
                        return Ok(dev);
                    }
                }
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    Err(format!("no virtio-serial port named {PORT_NAME}"))
}

/// A pty for an interactive command: (master, slave).
fn open_pty(ws: (u16, u16)) -> Result<(OwnedFd, OwnedFd), String> {
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

fn set_winsize(fd: i32, (rows, cols): (u16, u16)) {
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

fn spawn(cfg: &GuestConfig, slave: Option<&OwnedFd>) -> std::io::Result<std::process::Child> {
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
            cordon_linux::fsrules::restrict(&writable, false)
                .map_err(|e| std::io::Error::other(e.to_string()))?;
            cordon_linux::seccomp::install(&cordon_linux::seccomp::denylist_program(), 0)?;
            Ok(())
        });
    }
    cmd.spawn()
}

/// Copies a pipe or the pty's master to the host as `kind` frames until it ends.
fn pump(mut r: impl Read + Send + 'static, port: Port, kind: Kind) -> std::thread::JoinHandle<()> {
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

/// How many stdin frames (at most 64 KiB each) wait for a command that does not read.
const STDIN_QUEUE: usize = 64;

fn stdin_writer(mut sink: Box<dyn Write + Send>) -> std::sync::mpsc::SyncSender<Vec<u8>> {
    let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(STDIN_QUEUE);
    std::thread::spawn(move || {
        for chunk in rx {
            if sink.write_all(&chunk).is_err() {
                return;
            }
        }
    });
    tx
}

/// Frames from the host: stdin, window size, signals, network replies.
fn control_loop(
    mut reader: File,
    _port: Port,
    streams: Arc<forward::Streams>,
    udp: Option<std::net::UdpSocket>,
    stdin: Option<Box<dyn Write + Send>>,
    master: Option<i32>,
) {
    // Stdin has a writer of its own, so a command that does not read its input holds up
    // only its input (up to STDIN_QUEUE frames), not the network streams behind it.
    let mut stdin = stdin.map(stdin_writer);
    while let Ok(Some(f)) = frame::read(&mut reader) {
        match f.kind {
            // End of input: a pipe closes; a pty gets the EOF character from the host.
            Kind::Stdin if f.data.is_empty() && master.is_none() => stdin = None,
            Kind::Stdin if f.data.is_empty() => {}
            Kind::Stdin => {
                if let Some(s) = stdin.as_ref() {
                    if s.send(f.data).is_err() {
                        stdin = None;
                    }
                }
            }
            Kind::Winsize => {
                if let (Some(m), &[a, b, c, d]) = (master, &f.data[..]) {
                    set_winsize(m, (u16::from_le_bytes([a, b]), u16::from_le_bytes([c, d])));
                }
            }
            Kind::Signal => {
                if let Some(sig) = frame::i32_of(&f.data) {
                    // SAFETY: kill(-1) signals every process but init; no pointers.
                    unsafe { libc::kill(-1, sig) };
                }
            }
            Kind::Data => forward::data(&streams, f.stream, &f.data),
            Kind::Eof => forward::eof(&streams, f.stream),
            Kind::Dns => {
                if let Some(u) = &udp {
                    forward::dns_answer(u, &streams, f.stream, &f.data);
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn module_parameters_come_from_the_command_line() {
        let line = "panic=-1 virtio_mmio.device=512@0xfeb00e00:12 quiet virtio_mmio.device=512@0xfeb00c00:11 9p.x=1";
        assert_eq!(
            super::module_params(line, "virtio_mmio"),
            "device=512@0xfeb00e00:12 device=512@0xfeb00c00:11"
        );
        assert_eq!(super::module_params(line, "overlay"), "");
    }
}
