//! The serving threads: one receiver, and a bounded pool of confined workers.

use std::io;
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};

use super::caller::{Caller, ProcOpener};
use super::confine::{confine_thread, Anchors};
use super::handle::{Guard, Reply};
use super::notif::{Listener, Notif, Recv};
use super::resolve::Root;
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
    loop {
        match shared.listener.recv() {
            Ok(Recv::Got(n)) => {
                // /proc/<tid>/mem is opened here, unconfined: see `ProcOpener`.
                let caller = match Caller::open(n.pid, Arc::clone(&shared.opener)) {
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
    for w in workers {
        let _ = w.join();
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
