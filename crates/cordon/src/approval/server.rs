//! The approval socket: `<runtime dir>/approvals/<sandbox>.sock`, mode 0600 in a 0700
//! directory owned by the person, accepting only their uid (or root). Each approver
//! connection gets a reader thread; answers are JSON lines.

use super::broker::{Conn, Core};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The longest line accepted from an approver.
const MAX_LINE: u64 = 64 * 1024;
/// A stuck approver cannot stall the broker longer than this per write.
const WRITE_TIMEOUT: Duration = Duration::from_secs(2);

/// `<runtime>/approvals`, created 0700 (the runtime dir itself is checked by `dirs`).
pub fn approvals_dir(runtime: &Path) -> Result<PathBuf, String> {
    let dir = runtime.join("approvals");
    match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(format!("cannot create {}: {e}", dir.display())),
    }
    let meta = std::fs::symlink_metadata(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let uid = cordon_linux::sys::getuid();
    if !meta.is_dir() || meta.uid() != uid || meta.permissions().mode() & 0o077 != 0 {
        return Err(format!(
            "refusing to use {}: it must be a directory owned by you with mode 0700",
            dir.display()
        ));
    }
    Ok(dir)
}

/// The pid a sandbox id ends with (`<command>-<pid>`).
fn id_pid(id: &str) -> Option<u32> {
    id.rsplit_once('-').and_then(|(_, p)| p.parse().ok())
}

/// Removes sockets of sandboxes, and registrations of approvers, whose process is gone.
pub fn sweep(dir: &Path) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let name = e.file_name();
        let Some(name) = name.to_str() else {
            continue;
        };
        let pid = match (
            name.strip_suffix(".sock"),
            name.strip_suffix(APPROVER_SUFFIX),
        ) {
            (Some(id), _) => id_pid(id),
            (_, Some(pid)) => pid.parse().ok(),
            _ => continue,
        };
        if pid.is_none_or(|p| !alive(p)) {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

fn alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// A running approver's registration: `<approvals dir>/<pid>.approver`, holding the sandbox
/// it is limited to (empty: every sandbox). A sandbox that starts while one is registered
/// waits a moment for it before its first decision (`broker::RENDEZVOUS`), so a connection
/// made by the command's first instruction is asked, not refused for want of an approver.
const APPROVER_SUFFIX: &str = ".approver";

/// Registers this process as an approver until the value is dropped.
pub struct Registration(PathBuf);

impl Registration {
    pub fn new(dir: &Path, only: Option<&str>) -> Result<Registration, String> {
        use std::os::unix::fs::OpenOptionsExt;
        let path = dir.join(format!("{}{APPROVER_SUFFIX}", std::process::id()));
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&path)
            .map_err(|e| format!("cannot register in {}: {e}", path.display()))?;
        f.write_all(only.unwrap_or("").as_bytes())
            .map_err(|e| format!("cannot register in {}: {e}", path.display()))?;
        Ok(Registration(path))
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Whether a live approver registered for `sandbox` (or for every sandbox) in `dir`.
pub fn approver_registered(dir: &Path, sandbox: &str) -> bool {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return false;
    };
    rd.flatten().any(|e| {
        let name = e.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_suffix(APPROVER_SUFFIX))
            .and_then(|p| p.parse::<u32>().ok())
        else {
            return false;
        };
        // Only the person's own files count (the directory is theirs and 0700 anyway).
        let own = e
            .metadata()
            .is_ok_and(|m| m.is_file() && m.uid() == cordon_linux::sys::getuid());
        own && alive(pid)
            && std::fs::read_to_string(e.path())
                .is_ok_and(|only| only.is_empty() || only == sandbox)
    })
}

/// A listening approval socket.
pub struct Server {
    pub path: PathBuf,
    stop: Arc<AtomicBool>,
}

impl Server {
    /// Binds `<dir>/<sandbox>.sock` (0600) and serves it for `core`.
    pub fn start(dir: &Path, core: Arc<Core>) -> Result<Server, String> {
        let path = dir.join(format!("{}.sock", core.settings.sandbox));
        let _ = std::fs::remove_file(&path);
        // The directory is 0700 already; the umask closes the window before chmod.
        // SAFETY: umask only changes this process's file creation mask.
        let old = unsafe { libc::umask(0o177) };
        let bound = crate::dirs::socket_name(&path)
            .and_then(|n| UnixListener::bind(&n.path).map_err(|e| e.to_string()));
        // SAFETY: as above, restoring the previous mask.
        unsafe { libc::umask(old) };
        let listener = bound.map_err(|e| format!("cannot listen on {}: {e}", path.display()))?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| format!("chmod {}: {e}", path.display()))?;
        let stop = Arc::new(AtomicBool::new(false));
        let s2 = stop.clone();
        let c2 = core.clone();
        std::thread::Builder::new()
            .name("approvals".into())
            .spawn(move || accept_loop(listener, c2, s2))
            .map_err(|e| e.to_string())?;
        let s3 = stop.clone();
        std::thread::Builder::new()
            .name("approvals-tick".into())
            .spawn(move || {
                while !s3.load(Ordering::Relaxed) {
                    core.tick();
                    std::thread::sleep(Duration::from_millis(100));
                }
            })
            .map_err(|e| e.to_string())?;
        Ok(Server { path, stop })
    }

    /// Stops accepting and removes the socket.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = std::fs::remove_file(&self.path);
        // Wake the accept loop so it sees the flag.
        if let Ok(n) = crate::dirs::socket_name(&self.path) {
            let _ = UnixStream::connect(&n.path);
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

fn peer_ok(s: &UnixStream) -> bool {
    use std::os::fd::AsFd;
    match rustix::net::sockopt::socket_peercred(s.as_fd()) {
        Ok(c) => {
            let uid = c.uid.as_raw();
            uid == cordon_linux::sys::getuid() || uid == 0
        }
        Err(_) => false,
    }
}

fn accept_loop(listener: UnixListener, core: Arc<Core>, stop: Arc<AtomicBool>) {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    for conn in listener.incoming() {
        if stop.load(Ordering::Relaxed) {
            return;
        }
        let Ok(stream) = conn else {
            std::thread::sleep(Duration::from_millis(50));
            continue;
        };
        if !peer_ok(&stream) {
            continue;
        }
        let _ = stream.set_write_timeout(Some(WRITE_TIMEOUT));
        let Ok(reader) = stream.try_clone() else {
            continue;
        };
        let id = NEXT.fetch_add(1, Ordering::Relaxed);
        let conn: Conn = Arc::new(Mutex::new(stream));
        let core = core.clone();
        let _ = std::thread::Builder::new()
            .name("approver".into())
            .spawn(move || serve(core, id, conn, reader));
    }
}

fn serve(core: Arc<Core>, id: u64, conn: Conn, reader: UnixStream) {
    core.add_approver(id, conn.clone());
    let mut r = BufReader::new(reader);
    loop {
        let mut line = Vec::new();
        match (&mut r).take(MAX_LINE).read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) if !line.ends_with(b"\n") => break,
            Ok(_) => {}
        }
        if let Err(e) = handle(&core, &line) {
            let m = serde_json::json!({"type": "error", "message": e});
            if let Ok(mut s) = conn.lock() {
                let _ = s.write_all(format!("{m}\n").as_bytes());
            }
        }
    }
    core.remove_approver(id);
}

/// What an approver may send (docs/approvals.md).
#[derive(serde::Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Incoming {
    /// An answer to request `id`: `allow_once`, `allow_session` or `deny`.
    Decision { id: u64, decision: String },
    /// Keeps the connection alive.
    Ping,
}

pub(super) fn handle(core: &Core, line: &[u8]) -> Result<(), String> {
    match serde_json::from_slice::<Incoming>(line) {
        Ok(Incoming::Decision { id, decision }) => core.answer(id, &decision),
        Ok(Incoming::Ping) => Ok(()),
        Err(e) if e.is_syntax() || e.is_eof() => Err(format!("not JSON: {e}")),
        Err(_) => Err(
            "expected {\"type\":\"decision\",\"id\":N,\"decision\":\"allow_once\"|\"allow_session\"|\"deny\"} or {\"type\":\"ping\"}".into(),
        ),
    }
}
