//! The guest's init: cordon itself, pid 1 of the VM's kernel, started from the initramfs.
//! It loads the modules the guest needs, opens the control port, builds the view over the 9p
//! shares, binds the network forwarder, and runs the command as the person's uid under the
//! inner wall: Landlock at whatever ABI the guest kernel has, the seccomp denylist, no
//! capabilities, no_new_privs. The status goes back to the host, and the guest powers off.

mod boot;
mod command;
mod control;
mod forward;
mod route;
mod sys;
mod view;

use super::config::GuestConfig;
use super::frame::{self, Kind};
use std::fs::File;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::path::Path;
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
            cordon_linux::landlock_rules::kernel_abi()
        );
        return Ok(());
    }
    boot::load_modules(&cmdline)?;
    let port_path = boot::find_port()?;
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
    let abi = cordon_linux::landlock_rules::kernel_abi();
    if cfg.verbose {
        let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
        let note = format!(
            "inner wall: guest kernel {}, Landlock ABI {abi}, seccomp denylist, no capabilities",
            release.trim()
        );
        let _ = send(&port, Kind::Note, 0, note.as_bytes());
    }
    // Init needs no new capabilities from here on, and nothing it starts may ever get one back.
    boot::drop_bounding_set();
    let pty = match cfg.tty {
        Some(ws) => Some(command::open_pty(ws)?),
        None => None,
    };
    let mut child = match command::spawn(&cfg, pty.as_ref().map(|p| &p.1)) {
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
        std::thread::spawn(move || {
            control::control_loop(reader, port, streams, udp, stdin_sink, master_fd)
        })
    };
    drop(control);
    let mut readers = Vec::new();
    if let Some(m) = master.as_ref().and_then(|m| m.try_clone().ok()) {
        readers.push(command::pump(
            File::from(m),
            Arc::clone(&port),
            Kind::Stdout,
        ));
    }
    if let Some(o) = child.stdout.take() {
        readers.push(command::pump(o, Arc::clone(&port), Kind::Stdout));
    }
    if let Some(er) = child.stderr.take() {
        readers.push(command::pump(er, Arc::clone(&port), Kind::Stderr));
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

#[cfg(test)]
mod tests {
    #[test]
    fn module_parameters_come_from_the_command_line() {
        let line = "panic=-1 virtio_mmio.device=512@0xfeb00e00:12 quiet virtio_mmio.device=512@0xfeb00c00:11 9p.x=1";
        assert_eq!(
            super::boot::module_params(line, "virtio_mmio"),
            "device=512@0xfeb00e00:12 device=512@0xfeb00c00:11"
        );
        assert_eq!(super::boot::module_params(line, "overlay"), "");
    }
}
