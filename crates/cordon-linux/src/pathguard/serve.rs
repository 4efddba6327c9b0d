//! The serving threads: one receiver, a confined worker pinned to each CPU the sandbox runs
//! on, and a bounded pool of confined workers for calls that find their CPU's worker busy.
//!
//! The receiver must stay unconfined (it opens the caller's /proc/<tid>/mem and cwd, which
//! Landlock refuses to a confined thread), so each call is handed to a confined worker. With
//! synchronous wake-ups the kernel runs the receiver on the caller's CPU; the worker pinned to
//! that CPU then takes the call without a cross-CPU wake-up (each costs tens of µs on these
//! machines), and its answer wakes the caller on the same CPU again.

use std::io;
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};

use super::caller::{Caller, FromBase, ProcOpener};
use super::confine::{confine_thread, Anchors};
use super::handle::{Guard, Reply};
use super::notif::{Listener, Notif, Recv};
use super::request::{decode, Request};
use super::resolve::{Base, Root};
use super::GuardConfig;

/// Workers at most: each may sit in a FIFO open waiting for its peer.
const MAX_WORKERS: usize = 32;
/// connect(2) calls being performed at once (each may wait for a loopback peer).
const MAX_CONNECTS: usize = 64;

struct Shared {
    listener: Listener,
    guard: Guard,
    anchors: Anchors,
    /// Workers waiting for work.
    idle: AtomicUsize,
    opener: Arc<ProcOpener>,
    connects: AtomicUsize,
}

/// A notification plus its caller, opened by the receiver.
type Work = (Notif, Caller);

/// CPUs that get a pinned worker at most; beyond them calls go to the pool.
const MAX_PINNED: usize = 256;

/// The worker pinned to one CPU.
struct Pinned {
    tx: Sender<Work>,
    /// Set by the receiver when it hands a call over, cleared by the worker once answered:
    /// a call that may block (a FIFO, a person asked) must not hold up the next ones.
    busy: Arc<AtomicBool>,
}

/// The receiver's view of the pinned workers: `None` until first needed, `Some(None)` when
/// the CPU's worker could not be started (its calls then go to the pool).
struct PinnedSet {
    cpus: Vec<Option<Option<Pinned>>>,
}

impl PinnedSet {
    fn new() -> Self {
        Self { cpus: Vec::new() }
    }

    /// Hands `work` to the worker pinned to the current CPU, if it is idle; gives it back
    /// otherwise.
    fn offer(&mut self, shared: &Arc<Shared>, work: Work) -> Option<Work> {
        // SAFETY: sched_getcpu takes no arguments and only reads this thread's CPU number.
        let cpu = unsafe { libc::sched_getcpu() };
        let Ok(cpu) = usize::try_from(cpu) else {
            return Some(work);
        };
        if cpu >= MAX_PINNED {
            return Some(work);
        }
        if self.cpus.len() <= cpu {
            self.cpus.resize_with(cpu + 1, || None);
        }
        let slot = &mut self.cpus[cpu];
        if slot.is_none() {
            *slot = Some(spawn_pinned(shared, cpu).ok());
        }
        let Some(Some(p)) = slot else {
            return Some(work);
        };
        if p.busy.swap(true, Ordering::AcqRel) {
            return Some(work);
        }
        match p.tx.send(work) {
            Ok(()) => None,
            Err(e) => {
                p.busy.store(false, Ordering::Release);
                Some(e.0)
            }
        }
    }
}

/// Serve notifications until the listener reports that no process is left (or a fatal error).
/// Spawns the thread(s) it needs and returns immediately. `init_pid` is the host pid of the
/// sandbox's pid-1 (its /proc/<pid>/root is the sandbox root).
pub fn serve(listener: OwnedFd, init_pid: i32, cfg: GuardConfig) -> io::Result<JoinHandle<()>> {
    let listener = Listener::new(listener)?;
    let root = Root::open(init_pid)?;
    let anchors = Anchors::open(&root, &cfg.writable_roots)?;
    let shared = Arc::new(Shared {
        connects: AtomicUsize::new(0),
        listener,
        guard: Guard::new(root, cfg),
        anchors,
        idle: AtomicUsize::new(0),
        opener: ProcOpener::start()?,
    });
    let (tx, rx) = mpsc::channel::<Work>();
    let rx = Arc::new(Mutex::new(rx));
    // The first worker is started here so that a confinement failure fails `serve` (closed).
    let first = spawn_worker(&shared, &rx)?;
    thread::Builder::new()
        .name("pathguard-recv".into())
        .spawn(move || receive(shared, tx, rx, first))
}

fn receive(
    shared: Arc<Shared>,
    tx: Sender<Work>,
    rx: Arc<Mutex<Receiver<Work>>>,
    first: JoinHandle<()>,
) {
    let mut workers = vec![first];
    let mut pinned = PinnedSet::new();
    loop {
        match shared.listener.recv() {
            Ok(Recv::Got(n)) => {
                shared.guard.umasks.seen(n.pid);
                if n.nr == libc::SYS_umask {
                    // Routed only so that remembered umasks are dropped first (see `umask`);
                    // it names no file, so the kernel performs it as asked.
                    shared.guard.umasks.changing(n.pid);
                    shared.listener.respond_continue(n.id);
                    continue;
                }
                // /proc/<tid>/mem (and cwd or dirfd) are opened here, unconfined: see
                // `ProcOpener`.
                let base = first_base(&n);
                // Socket calls read structs of their own: through the fd.
                let reads = decode(n.nr, &n.args)
                    .filter(|_| !super::connect::is_socket_call(n.nr))
                    .and_then(|r| r.mem_reads());
                let reads = reads.as_ref().map(|(r, k)| &r[..*k]);
                let opener = Arc::clone(&shared.opener);
                let caller = match Caller::open(n.pid, opener, base, reads) {
                    Ok(c) => c,
                    Err(e) => {
                        if shared.listener.id_valid(n.id) {
                            shared.listener.respond(n.id, 0, e.raw_os_error());
                        }
                        continue;
                    }
                };
                // The tid may have died and been reused between RECV and the open above.
                if !shared.listener.id_valid(n.id) {
                    continue;
                }
                if super::connect::is_socket_call(n.nr) {
                    spawn_connect(&shared, n, caller);
                    continue;
                }
                let Some((n, caller)) = pinned.offer(&shared, (n, caller)) else {
                    continue;
                };
                if shared.idle.load(Ordering::Acquire) == 0 && workers.len() < MAX_WORKERS {
                    if let Ok(w) = spawn_worker(&shared, &rx) {
                        workers.push(w);
                    }
                }
                if tx.send((n, caller)).is_err() {
                    break;
                }
            }
            Ok(Recv::Retry) => {}
            Ok(Recv::Gone) | Err(_) => break,
        }
    }
    drop(tx);
    drop(pinned);
    for w in workers {
        let _ = w.join();
    }
}

/// The directory the call's first relative path starts from, and the path arguments that may
/// start from it (`0`: the call acts on the fd itself). The receiver opens the directory only
/// if one of those paths turns out relative: git's and tar's absolute paths need no cwd.
fn first_base(n: &Notif) -> Option<(Base, FromBase)> {
    let req = decode(n.nr, &n.args)?;
    let one = |base, path| Some((base, FromBase::one(path)));
    match req {
        Request::Open { base, path, .. }
        | Request::Mkdir { base, path, .. }
        | Request::Mknod { base, path, .. }
        | Request::Symlink { base, path, .. }
        | Request::Unlink { base, path, .. } => one(base, path),
        Request::Link {
            old_base,
            old,
            new_base,
            new,
            ..
        }
        | Request::Rename {
            old_base,
            old,
            new_base,
            new,
            ..
        } if new_base == old_base => Some((old_base, FromBase::two(old, new))),
        Request::Link { old_base, old, .. } | Request::Rename { old_base, old, .. } => {
            one(old_base, old)
        }
        Request::Truncate { path, .. } => one(Base::Cwd, path),
        Request::Meta {
            on: super::request::On::Path { base, path, .. },
            ..
        } => one(base, path),
        // The object itself (fchmod, futimens, ...: tar sets each file's mode and times so).
        Request::Meta {
            on: super::request::On::Fd(n),
            ..
        } => one(Base::Fd(n), 0),
        // Calls added later find their directory through the proc opener until named here.
        #[allow(unreachable_patterns)]
        _ => None,
    }
}

/// Starts a worker and waits until it is confined; its confinement error is returned.
/// connect(2) runs on its own unconfined thread: it may block on a loopback peer, and it needs
/// pidfd_getfd on the caller, which the Landlocked workers cannot do.
fn spawn_connect(shared: &Arc<Shared>, n: Notif, caller: super::caller::Caller) {
    if shared.connects.fetch_add(1, Ordering::AcqRel) >= MAX_CONNECTS {
        shared.connects.fetch_sub(1, Ordering::AcqRel);
        shared.listener.respond(n.id, 0, libc::EAGAIN);
        return;
    }
    let s = Arc::clone(shared);
    let spawned = thread::Builder::new()
        .name("pathguard-connect".into())
        .spawn(move || {
            super::connect::handle(&s.listener, &n, &caller, &s.guard);
            s.connects.fetch_sub(1, Ordering::AcqRel);
        });
    if spawned.is_err() {
        shared.connects.fetch_sub(1, Ordering::AcqRel);
        shared.listener.respond(n.id, 0, libc::EAGAIN);
    }
}

fn spawn_worker(
    shared: &Arc<Shared>,
    rx: &Arc<Mutex<Receiver<Work>>>,
) -> io::Result<JoinHandle<()>> {
    let (ready_tx, ready_rx) = mpsc::channel::<io::Result<()>>();
    let shared = Arc::clone(shared);
    let rx = Arc::clone(rx);
    let handle = thread::Builder::new()
        .name("pathguard-work".into())
        .spawn(move || {
            let confined = confine_thread(&shared.anchors);
            let ok = confined.is_ok();
            let _ = ready_tx.send(confined);
            if ok {
                work(&shared, &rx);
            }
        })?;
    match ready_rx.recv() {
        Ok(Ok(())) => Ok(handle),
        Ok(Err(e)) => {
            let _ = handle.join();
            Err(e)
        }
        Err(_) => Err(io::Error::other("path guard worker died while starting")),
    }
}

/// Starts the worker pinned to `cpu` and waits until it is confined. Pinning is best effort (a
/// cpuset may forbid it); confinement is not.
fn spawn_pinned(shared: &Arc<Shared>, cpu: usize) -> io::Result<Pinned> {
    let (tx, rx) = mpsc::channel::<Work>();
    let (ready_tx, ready_rx) = mpsc::channel::<io::Result<()>>();
    let busy = Arc::new(AtomicBool::new(false));
    let (s, b) = (Arc::clone(shared), Arc::clone(&busy));
    thread::Builder::new()
        .name("pathguard-cpu".into())
        .spawn(move || {
            pin_to(cpu);
            let confined = confine_thread(&s.anchors);
            let ok = confined.is_ok();
            let _ = ready_tx.send(confined);
            if !ok {
                return;
            }
            for (n, caller) in rx {
                let reply = s.guard.handle(&s.listener, &n, caller);
                // Free again before the answer goes out: an injected fd lets the caller run on
                // before NOTIF_ADDFD returns here, and its next call (tar's futimens after
                // each create) would otherwise find this worker busy and cross to another
                // CPU. Sending cannot block for long (a signal ends the caller's wait).
                b.store(false, Ordering::Release);
                send(&s.listener, &n, reply);
            }
        })?;
    match ready_rx.recv() {
        Ok(Ok(())) => Ok(Pinned { tx, busy }),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(io::Error::other("path guard worker died while starting")),
    }
}

/// Pins the calling thread to `cpu`; a failure leaves it where it is.
fn pin_to(cpu: usize) {
    // SAFETY: cpu_set_t is plain data; zeroed is the empty set, and CPU_SET stays within it
    // (cpu < MAX_PINNED <= CPU_SETSIZE).
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

fn work(shared: &Shared, rx: &Mutex<Receiver<Work>>) {
    loop {
        shared.idle.fetch_add(1, Ordering::AcqRel);
        let next = match rx.lock() {
            Ok(r) => r.recv(),
            Err(_) => break,
        };
        shared.idle.fetch_sub(1, Ordering::AcqRel);
        let Ok((n, caller)) = next else { break };
        let reply = shared.guard.handle(&shared.listener, &n, caller);
        send(&shared.listener, &n, reply);
    }
}

fn send(listener: &Listener, n: &Notif, reply: Reply) {
    match reply {
        Reply::Val(v) => listener.respond(n.id, v, 0),
        Reply::Err(e) => listener.respond(n.id, 0, e.raw_os_error()),
        Reply::Fd { fd, cloexec } => {
            if let Err(e) = listener.send_fd(n.id, &fd, cloexec) {
                // ENOENT: the caller is gone. Otherwise (EMFILE in the caller, ...) say so.
                if e.raw_os_error() != Some(libc::ENOENT) {
                    listener.respond(n.id, 0, e.raw_os_error().unwrap_or(libc::EIO));
                }
            }
        }
        Reply::Continue => listener.respond_continue(n.id),
        Reply::Skip => {}
    }
}
