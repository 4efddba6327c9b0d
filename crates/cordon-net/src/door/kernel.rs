//! Tunnels between two TCP sockets moved by the kernel: splice(2) from one socket into a pipe
//! and from the pipe into the other, so the bytes are never copied into and out of our memory
//! (on two CPUs those two copies held bulk transfers to about 0.4 of the direct speed).

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use rustix::pipe;
use tokio::io::Interest;
use tokio::net::TcpStream;
use tokio::sync::mpsc;

use super::io::Counters;

/// Bytes a pipe holds, asked for (the kernel's default is 64 KiB); an unprivileged user may
/// get up to /proc/sys/fs/pipe-max-size (1 MiB by default).
const PIPE_SIZE: usize = 1 << 20;

/// One direction's pipe.
pub(crate) struct Pipe {
    r: OwnedFd,
    w: OwnedFd,
    /// What the kernel granted.
    size: usize,
}

impl Pipe {
    /// A non-blocking pipe, enlarged if the per-user pipe budget allows.
    pub(crate) fn new() -> io::Result<Self> {
        let (r, w) = pipe::pipe_with(pipe::PipeFlags::CLOEXEC | pipe::PipeFlags::NONBLOCK)?;
        // A refusal (the user's pipe budget is spent) leaves the default size.
        let _ = pipe::fcntl_setpipe_size(&w, PIPE_SIZE);
        let size = pipe::fcntl_getpipe_size(&w).unwrap_or(0).max(4096);
        Ok(Self { r, w, size })
    }
}

fn splice(from: impl AsFd, to: impl AsFd, len: usize) -> io::Result<usize> {
    // No offsets: sockets and pipes have none.
    Ok(pipe::splice(
        from,
        None,
        to,
        None,
        len,
        pipe::SpliceFlags::MOVE | pipe::SpliceFlags::NONBLOCK,
    )?)
}

fn shutdown_write(s: &TcpStream) -> io::Result<()> {
    match rustix::net::shutdown(s, rustix::net::Shutdown::Write) {
        // The peer is already gone: nothing left to tell it.
        Ok(()) | Err(rustix::io::Errno::NOTCONN) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Fills the empty `pipe` from `from` with what is there (waiting for something); 0 at its end.
/// The pipe is empty, so an EAGAIN is the socket's.
async fn fill(from: &TcpStream, pipe: &Pipe) -> io::Result<usize> {
    loop {
        from.readable().await?;
        let r = from.try_io(Interest::READABLE, || splice(from, &pipe.w, pipe.size));
        match r {
            Ok(n) => return Ok(n),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Empties `pipe` (holding `n` bytes) into `to`; an EAGAIN is the socket's.
async fn drain(to: &TcpStream, pipe: &Pipe, mut n: usize) -> io::Result<()> {
    while n > 0 {
        to.writable().await?;
        let r = to.try_io(Interest::WRITABLE, || splice(&pipe.r, to, n));
        match r {
            Ok(m) => n -= m.min(n),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Aborts a spawned task when dropped (a tunnel ended by the other direction's error).
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Moves what `from` sends to `to` until `from` ends, then half-closes `to`. A reader task
/// fills empty pipes and a writer drains full ones, two pipes going round between them, so
/// reading the next chunk overlaps writing the last (one pipe filled then drained in turn
/// measured slower than copying through our memory).
async fn one_way(
    from: Arc<TcpStream>,
    to: Arc<TcpStream>,
    pipes: [Pipe; 2],
    count: Arc<Counters>,
    up: bool,
) -> io::Result<()> {
    let (full_tx, mut full) = mpsc::channel::<(Pipe, usize)>(2);
    let (empty_tx, mut empty) = mpsc::channel::<Pipe>(2);
    for p in pipes {
        let _ = empty_tx.try_send(p);
    }
    let mut reader = AbortOnDrop(tokio::spawn(async move {
        while let Some(pipe) = empty.recv().await {
            let n = fill(&from, &pipe).await?;
            if n == 0 || full_tx.send((pipe, n)).await.is_err() {
                break;
            }
        }
        Ok::<(), io::Error>(())
    }));
    async {
        while let Some((pipe, n)) = full.recv().await {
            drain(&to, &pipe, n).await?;
            let c = if up { &count.up } else { &count.down };
            c.fetch_add(n as u64, Ordering::Relaxed);
            // The reader may be gone (its end came): the pipe is then just dropped.
            let _ = empty_tx.send(pipe).await;
        }
        shutdown_write(&to)
    }
    .await?;
    (&mut reader.0).await.unwrap_or(Ok(()))
}

/// Both directions until both have ended; the first error ends both. Four pipes (eight fds)
/// per tunnel: see [`kernel_slot`] for how many tunnels get them.
pub(crate) async fn tunnel(
    client: TcpStream,
    upstream: TcpStream,
    pipes: [Pipe; 4],
    count: Arc<Counters>,
) -> io::Result<()> {
    let (client, upstream) = (Arc::new(client), Arc::new(upstream));
    let [a, b, c, d] = pipes;
    let up = one_way(
        client.clone(),
        upstream.clone(),
        [a, b],
        count.clone(),
        true,
    );
    let down = one_way(upstream, client, [c, d], count, false);
    tokio::try_join!(up, down).map(|_| ())
}

/// Tunnels using pipes now.
static IN_USE: AtomicUsize = AtomicUsize::new(0);

/// A place among the tunnels that may use pipes: at most 1/32 of the fd limit (eight fds each,
/// leaving the rest for sockets), so many connections at once cannot run the door out of fds;
/// the others copy through our memory. Given back when dropped.
pub(crate) struct KernelSlot(());

impl Drop for KernelSlot {
    fn drop(&mut self) {
        IN_USE.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A [`KernelSlot`] and its four pipes, if both are to be had.
pub(crate) fn kernel_slot() -> Option<(KernelSlot, [Pipe; 4])> {
    static MAX: OnceLock<usize> = OnceLock::new();
    let max = *MAX.get_or_init(|| {
        let lim = rustix::process::getrlimit(rustix::process::Resource::Nofile);
        // Unlimited counts as the cap; each tunnel holds 8 pipe fds plus its sockets.
        lim.current
            .map_or(1024, |n| usize::try_from(n / 32).unwrap_or(0).min(1024))
    });
    if IN_USE.fetch_add(1, Ordering::AcqRel) >= max {
        IN_USE.fetch_sub(1, Ordering::AcqRel);
        return None;
    }
    let slot = KernelSlot(());
    let pipes = [Pipe::new(), Pipe::new(), Pipe::new(), Pipe::new()];
    match pipes {
        [Ok(a), Ok(b), Ok(c), Ok(d)] => Some((slot, [a, b, c, d])),
        _ => None,
    }
}
