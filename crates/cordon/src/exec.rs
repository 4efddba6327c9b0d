//! `cordon exec NAME -- CMD`: run a command inside a running named sandbox.
//!
//! The run's supervisor serves `<runtime dir>/exec/NAME.sock` (a 0700 directory; the runtime
//! directory is not visible from inside any sandbox). A client of the same uid (checked with
//! SO_PEERCRED) gets a pidfd of init, init's root and the run's plan; it joins and confines
//! itself (`cordon_linux::join`), then sends its path-guard listener, which the supervisor
//! serves with the run's rules and network route before the command may exec. The
//! connection stays open while the command runs (so the supervisor knows what is active).

use crate::audit::{self, Audit};
use crate::fail;
use cordon_linux::exec::{self as join, JoinPlan};
use cordon_linux::pathguard::{self, GuardConfig, NetRoute};
use serde::{Deserialize, Serialize};
use std::ffi::CString;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// `<runtime>/exec/NAME.sock`.
pub fn socket_path(runtime: &Path, name: &str) -> PathBuf {
    runtime.join("exec").join(format!("{name}.sock"))
}

/// The plan as it travels on the socket.
#[derive(Serialize, Deserialize)]
struct WirePlan {
    env: Vec<Vec<u8>>,
    path_var: String,
    writable_roots: Vec<PathBuf>,
    workspace: PathBuf,
    memory_bytes: u64,
    max_tasks: u64,
    /// Read opens are routed to the guard too (the run asks about reads).
    reads: bool,
}

/// Makes a fresh path-guard configuration with the run's rules (one per exec'd command).
pub type GuardFactory = Box<dyn Fn() -> Result<GuardConfig, String> + Send + Sync>;

/// The run's path-guard configuration, made again for each exec'd command (`rules`: the run's
/// protected-path rules, compiled afresh each time).
pub fn guard_factory(
    inputs: crate::guard::GuardInputs,
    rules: Vec<cordon_policy::ProtectRule>,
) -> GuardFactory {
    Box::new(move || {
        let set = cordon_policy::ProtectSet::from_rules(&inputs.home, rules.clone())
            .map_err(|e| e.to_string())?;
        Ok(inputs.config(set))
    })
}

/// What the server needs once the sandbox is up.
struct Ready {
    route: Option<NetRoute>,
    /// Who file questions go to (the run's broker), when the run asks about files.
    asker: Option<Arc<dyn pathguard::Asker>>,
}

/// The exec socket of one running named sandbox.
pub struct Server {
    path: PathBuf,
    ready: Arc<Mutex<Option<Ready>>>,
}

struct Shared {
    init_pid: libc::pid_t,
    plan: Vec<u8>,
    guard: GuardFactory,
    ready: Arc<Mutex<Option<Ready>>>,
    audit: Audit,
    active: AtomicUsize,
    /// Unix seconds of the last exec activity.
    last: AtomicU64,
}

fn copy_route(r: &NetRoute) -> NetRoute {
    NetRoute {
        door: r.door,
        register: Arc::clone(&r.register),
        on_refused: Arc::clone(&r.on_refused),
        precheck: Arc::clone(&r.precheck),
    }
}

impl Server {
    /// Binds the socket and serves it on a thread. `idle`: end the sandbox (SIGTERM to init)
    /// after this long without any exec'd command (`cordon shell`'s background sandboxes).
    #[allow(clippy::too_many_arguments)]
    pub fn start(
        name: &str,
        init_pid: libc::pid_t,
        spec: &cordon_linux::Spec,
        writable_roots: Vec<PathBuf>,
        workspace: &Path,
        guard: GuardFactory,
        reads: bool,
        audit: Audit,
        idle: Option<Duration>,
    ) -> Result<Server, String> {
        use std::os::unix::fs::DirBuilderExt;
        let runtime = crate::dirs::runtime_dir()?;
        let dir = runtime.join("exec");
        match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(format!("cannot create {}: {e}", dir.display())),
        }
        let path = socket_path(&runtime, name);
        // The named sandbox's lock is held: a socket left there is a dead run's.
        let _ = std::fs::remove_file(&path);
        let listener = bind_seqpacket(&path)?;
        let plan = WirePlan {
            env: spec.env.iter().map(|e| e.as_bytes().to_vec()).collect(),
            path_var: spec.path_var.clone(),
            writable_roots,
            workspace: workspace.to_path_buf(),
            memory_bytes: spec.memory_bytes,
            max_tasks: spec.max_tasks,
            reads,
        };
        let plan = serde_json::to_vec(&plan).map_err(|e| e.to_string())?;
        let ready = Arc::new(Mutex::new(None));
        let shared = Arc::new(Shared {
            init_pid,
            plan,
            guard,
            ready: Arc::clone(&ready),
            audit,
            active: AtomicUsize::new(0),
            last: AtomicU64::new(crate::named::now()),
        });
        let s = Arc::clone(&shared);
        std::thread::Builder::new()
            .name("exec-accept".into())
            .spawn(move || accept_loop(listener, s))
            .map_err(|e| format!("cannot start the exec server: {e}"))?;
        if let Some(idle) = idle {
            let s = Arc::clone(&shared);
            std::thread::Builder::new()
                .name("exec-idle".into())
                .spawn(move || idle_loop(s, idle))
                .map_err(|e| format!("cannot start the exec server: {e}"))?;
        }
        Ok(Server { path, ready })
    }

    /// The sandbox is up: exec'd commands may now be served, with this network route and
    /// file asker.
    pub fn set_ready(&self, route: Option<&NetRoute>, asker: Option<Arc<dyn pathguard::Asker>>) {
        if let Ok(mut r) = self.ready.lock() {
            *r = Some(Ready {
                route: route.map(copy_route),
                asker,
            });
        }
    }

    /// Removes the socket (the sandbox has ended).
    pub fn close(&self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

fn bind_seqpacket(path: &Path) -> Result<OwnedFd, String> {
    use rustix::net::{
        bind, listen, socket_with, AddressFamily, SocketAddrUnix, SocketFlags, SocketType,
    };
    let err = |e: rustix::io::Errno| format!("cannot serve {}: {e}", path.display());
    let fd = socket_with(
        AddressFamily::UNIX,
        SocketType::SEQPACKET,
        SocketFlags::CLOEXEC,
        None,
    )
    .map_err(err)?;
    let name = crate::dirs::socket_name(path)?;
    let addr = SocketAddrUnix::new(&name.path).map_err(err)?;
    bind(&fd, &addr).map_err(err)?;
    // Only the person (the directory is 0700 too).
    let _ = std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o600));
    listen(&fd, 16).map_err(err)?;
    Ok(fd)
}

fn accept_loop(listener: OwnedFd, shared: Arc<Shared>) {
    loop {
        let conn = match rustix::net::accept_with(&listener, rustix::net::SocketFlags::CLOEXEC) {
            Ok(c) => c,
            Err(rustix::io::Errno::INTR) | Err(rustix::io::Errno::CONNABORTED) => continue,
            Err(_) => return,
        };
        let s = Arc::clone(&shared);
        let _ = std::thread::Builder::new()
            .name("exec-conn".into())
            .spawn(move || {
                s.active.fetch_add(1, Ordering::SeqCst);
                if let Err(e) = serve_one(&conn, &s) {
                    let _ = join::send(conn.as_fd(), format!("E{e}").as_bytes(), &[]);
                    s.audit
                        .event(audit::Event::Exec(audit::Exec::Refused { error: e }));
                }
                s.last.store(crate::named::now(), Ordering::SeqCst);
                s.active.fetch_sub(1, Ordering::SeqCst);
            });
    }
}

fn serve_one(conn: &OwnedFd, s: &Shared) -> Result<(), String> {
    let cred = rustix::net::sockopt::socket_peercred(conn).map_err(|e| e.to_string())?;
    if cred.uid.as_raw() != cordon_linux::sys::getuid() {
        return Err("refused: another user".into());
    }
    // Every sandbox runs as the same uid: a client must also prove it is in our user
    // namespace, so a process inside any sandbox (a child namespace) can never join another
    // one, even if a policy made the runtime directory reachable. SO_PEERCRED cannot tell:
    // a sandbox's unix connect() is performed by its own supervisor (the path guard). The
    // client sends a descriptor of its user namespace instead; from inside a sandbox the
    // parent namespace cannot be opened (NS_GET_PARENT refuses, /proc shows no such process).
    let timeout = rustix::net::sockopt::Timeout::Recv;
    let _ = rustix::net::sockopt::set_socket_timeout(conn, timeout, Some(Duration::from_secs(10)));
    let (hello, fds) = join::recv(conn.as_fd()).map_err(|e| e.to_string())?;
    let _ = rustix::net::sockopt::set_socket_timeout(conn, timeout, None);
    let proven = hello.first() == Some(&b'H')
        && fds.len() == 1
        && fds.first().is_some_and(same_user_namespace);
    if !proven {
        return Err("refused: the client is not in cordon's user namespace".into());
    }
    drop(fds);
    // Wait (briefly) for the sandbox to finish starting.
    let mut route = None;
    let mut asker = None;
    let mut up = false;
    for _ in 0..600 {
        if let Ok(r) = s.ready.lock() {
            if let Some(r) = r.as_ref() {
                route = r.route.as_ref().map(copy_route);
                asker = r.asker.clone();
                up = true;
            }
        }
        if up || cordon_linux::sys::has_exited(s.init_pid) {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    if !up {
        return Err("the sandbox is not running".into());
    }
    let pid = rustix::process::Pid::from_raw(s.init_pid).ok_or("the sandbox is not running")?;
    let pidfd = rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty())
        .map_err(|e| format!("the sandbox is not running ({e})"))?;
    let root = rustix::fs::open(
        format!("/proc/{}/root", s.init_pid).as_str(),
        rustix::fs::OFlags::PATH | rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .map_err(|e| format!("cannot reach the sandbox's root: {e}"))?;
    join::send(conn.as_fd(), &s.plan, &[pidfd.as_fd(), root.as_fd()]).map_err(|e| e.to_string())?;
    drop((pidfd, root));
    // The joining command's pidfd, then its listener's number (see `join::child_setup`).
    let (msg, mut fds) = join::recv(conn.as_fd()).map_err(|e| e.to_string())?;
    if msg.is_empty() {
        return Ok(()); // the client gave up (e.g. it failed to join and said so itself)
    }
    if msg.first() != Some(&b'P') || fds.is_empty() {
        return Err("malformed exec request".into());
    }
    let joined = fds.swap_remove(0);
    drop(fds);
    let (msg, _) = join::recv(conn.as_fd()).map_err(|e| e.to_string())?;
    if msg.is_empty() {
        return Ok(());
    }
    let n = match msg.as_slice() {
        [b'L', a, b, c, d] => i32::from_le_bytes([*a, *b, *c, *d]),
        _ => return Err("malformed exec request".into()),
    };
    let listener = pathguard::take_listener(&joined, n)
        .map_err(|e| format!("cannot take the command's path guard: {e}"))?;
    drop(joined);
    let mut cfg = (s.guard)()?;
    cfg.net = Some(match route {
        Some(r) => r,
        None => NetRoute::loopback_only(),
    });
    // Without it every file question is denied (fail closed), as in the run.
    cfg.asker = asker;
    pathguard::serve(listener, s.init_pid, cfg)
        .map_err(|e| format!("cannot start the path guard: {e}"))?;
    s.audit.event(audit::Event::Exec(audit::Exec::Started {
        client_pid: cred.pid.as_raw_nonzero().get(),
    }));
    join::send(conn.as_fd(), b"K", &[]).map_err(|e| e.to_string())?;
    // The client keeps the connection until its command ends.
    let _ = join::recv(conn.as_fd());
    Ok(())
}

fn same_user_namespace(fd: &OwnedFd) -> bool {
    use std::os::unix::fs::MetadataExt;
    let theirs = rustix::fs::fstat(fd).ok().map(|st| (st.st_dev, st.st_ino));
    let ours = std::fs::metadata("/proc/self/ns/user")
        .ok()
        .map(|m| (m.dev(), m.ino()));
    theirs.is_some() && theirs == ours
}

fn idle_loop(s: Arc<Shared>, idle: Duration) {
    loop {
        std::thread::sleep(Duration::from_secs(1));
        if cordon_linux::sys::has_exited(s.init_pid) {
            return;
        }
        let quiet = crate::named::now().saturating_sub(s.last.load(Ordering::SeqCst));
        if s.active.load(Ordering::SeqCst) == 0 && quiet >= idle.as_secs() {
            let _ = cordon_linux::sys::kill(s.init_pid, libc::SIGTERM);
            return;
        }
    }
}

/// Connects to NAME's exec socket; `None` when it is not running.
pub fn connect(name: &str) -> Result<Option<OwnedFd>, String> {
    use rustix::net::{
        connect as uconnect, socket_with, AddressFamily, SocketAddrUnix, SocketFlags, SocketType,
    };
    crate::named::validate_name(name)?;
    let path = socket_path(&crate::dirs::runtime_dir()?, name);
    let fd = socket_with(
        AddressFamily::UNIX,
        SocketType::SEQPACKET,
        SocketFlags::CLOEXEC,
        None,
    )
    .map_err(|e| e.to_string())?;
    let short = crate::dirs::socket_name(&path)?;
    let addr = SocketAddrUnix::new(&short.path).map_err(|e| format!("{}: {e}", path.display()))?;
    match uconnect(&fd, &addr) {
        Ok(()) => Ok(Some(fd)),
        Err(rustix::io::Errno::NOENT) | Err(rustix::io::Errno::CONNREFUSED) => Ok(None),
        Err(e) => Err(format!("cannot reach sandbox {name}: {e}")),
    }
}

/// `cordon exec NAME -- CMD...`.
pub fn exec(name: &str, command: &[std::ffi::OsString]) -> i32 {
    // Joining a VM sandbox's outer namespaces would run the command beside QEMU, outside the
    // guest: weaker isolation than the sandbox was created with.
    if crate::named::tier(name).as_deref() == Some(crate::named::TIER_VM) {
        return fail(format!(
            "{name} runs in a VM; cordon exec into VM sandboxes is not supported"
        ));
    }
    let conn = match connect(name) {
        Ok(Some(c)) => c,
        Ok(None) => {
            return fail(format!(
                "sandbox {name} is not running (start it with `cordon run --name {name} -- CMD`)"
            ))
        }
        Err(e) => return fail(e),
    };
    exec_on(conn, command)
}

/// Runs `command` in the sandbox behind the connected exec socket `conn`.
pub fn exec_on(conn: OwnedFd, command: &[std::ffi::OsString]) -> i32 {
    let argv = match command
        .iter()
        .map(|a| CString::new(a.as_bytes().to_vec()))
        .collect::<Result<Vec<_>, _>>()
    {
        Ok(a) if !a.is_empty() => a,
        Ok(_) => return fail("no command given"),
        Err(_) => return fail("an argument contains a NUL byte"),
    };
    let userns = match std::fs::File::open("/proc/self/ns/user") {
        Ok(f) => OwnedFd::from(f),
        Err(e) => return fail(format!("cannot open /proc/self/ns/user: {e}")),
    };
    if let Err(e) = join::send(conn.as_fd(), b"H", &[userns.as_fd()]) {
        return fail(format!("the sandbox did not answer: {e}"));
    }
    drop(userns);
    let (msg, fds) = match join::recv(conn.as_fd()) {
        Ok(m) => m,
        Err(e) => return fail(format!("the sandbox did not answer: {e}")),
    };
    if msg.first() == Some(&b'E') {
        return fail(String::from_utf8_lossy(&msg[1..]));
    }
    let wire: WirePlan = match serde_json::from_slice(&msg) {
        Ok(w) => w,
        Err(_) => return fail("the sandbox sent a malformed plan"),
    };
    let mut fds = fds.into_iter();
    let (Some(init), Some(root)) = (fds.next(), fds.next()) else {
        return fail("the sandbox sent a malformed plan");
    };
    // Start where we are if that is inside the workspace (the sandbox sees the host's layout).
    let cwd = std::env::current_dir()
        .ok()
        .and_then(|c| c.canonicalize().ok())
        .filter(|c| c.starts_with(&wire.workspace))
        .unwrap_or(wire.workspace.clone());
    let plan = JoinPlan {
        env: wire
            .env
            .into_iter()
            .filter_map(|e| CString::new(e).ok())
            .collect(),
        path_var: wire.path_var,
        writable_roots: wire.writable_roots,
        cwd,
        memory_bytes: wire.memory_bytes,
        max_tasks: wire.max_tasks,
    };
    // SAFETY: `cordon exec` has started no thread.
    let pty = cordon_linux::sandbox::any_stdio_is_tty();
    let install = if wire.reads {
        pathguard::install_with_reads
    } else {
        pathguard::install
    };
    match unsafe { join::join_and_run(init, root, conn, &plan, argv, install, pty) } {
        Ok(code) => code,
        Err(e) => fail(e),
    }
}
