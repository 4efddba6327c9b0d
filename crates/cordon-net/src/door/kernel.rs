//! Tunnels between two TCP sockets moved by the kernel: splice(2) from one socket into a pipe
//! and from the pipe into the other, so the bytes are never copied into and out of our memory
//! (on two CPUs those two copies held bulk transfers to about 0.4 of the direct speed).

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

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
        let mut fds = [0 as RawFd; 2];
        // SAFETY: pipe2 writes two new fds into the array on success.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) } != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: both fds were just created and belong to nobody else.
        let (r, w) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        // SAFETY: F_SETPIPE_SZ / F_GETPIPE_SZ take an int and touch no memory of ours. A refusal
        // (the user's pipe budget is spent) leaves the default size.
        let size = unsafe {
            libc::fcntl(w.as_raw_fd(), libc::F_SETPIPE_SZ, PIPE_SIZE as libc::c_int);
            libc::fcntl(w.as_raw_fd(), libc::F_GETPIPE_SZ)
        };
        let size = usize::try_from(size).unwrap_or(0).max(4096);
        Ok(Self { r, w, size })
    }
}

fn splice(from: RawFd, to: RawFd, len: usize) -> io::Result<usize> {
    // SAFETY: splice between two fds we hold, without offsets (sockets and pipes have none).
    let n = unsafe {
        libc::splice(
            from,
            std::ptr::null_mut(),
            to,
            std::ptr::null_mut(),
            len,
            libc::SPLICE_F_MOVE | libc::SPLICE_F_NONBLOCK,
        )
    };
    usize::try_from(n).map_err(|_| io::Error::last_os_error())
}

fn shutdown_write(s: &TcpStream) -> io::Result<()> {
    // SAFETY: shutdown(2) on a socket we hold; it touches no memory.
    if unsafe { libc::shutdown(s.as_raw_fd(), libc::SHUT_WR) } != 0 {
        let e = io::Error::last_os_error();
        // The peer is already gone: nothing left to tell it.
        if e.raw_os_error() != Some(libc::ENOTCONN) {
            return Err(e);
        }
    }
    Ok(())
}

/// Fills the empty `pipe` from `from` with what is there (waiting for something); 0 at its end.
/// The pipe is empty, so an EAGAIN is the socket's.
async fn fill(from: &TcpStream, pipe: &Pipe) -> io::Result<usize> {
    loop {
        from.readable().await?;
        let r = from.try_io(Interest::READABLE, || {
            splice(from.as_raw_fd(), pipe.w.as_raw_fd(), pipe.size)
        });
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
        let r = to.try_io(Interest::WRITABLE, || {
            splice(pipe.r.as_raw_fd(), to.as_raw_fd(), n)
        });
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
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit writes one rlimit into the pointer.
        let ok = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } == 0;
        if ok {
            usize::try_from(lim.rlim_cur / 32).unwrap_or(0).min(1024)
        } else {
            0
        }
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
