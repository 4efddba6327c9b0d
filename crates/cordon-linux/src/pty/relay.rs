//! The relay between the person's terminal (or whatever cordon's stdin/stdout are) and the
//! pty master: stdin -> master unchanged, master -> [`OutputFilter`] -> stdout.
//!
//! Two threads, so a stalled reader on one side never stops the other direction: input and
//! output. Both poll a shared waker for the stop request. The master is non-blocking (its
//! open file description is ours alone); stdin and stdout are shared with the person's shell
//! and are left exactly as they are.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rustix::event::PollFlags;
use rustix::io::Errno;
use rustix::termios::{tcgetattr, LocalModes, SpecialCodeIndex};

use super::fdio::{dup_raw, read_available, set_nonblocking, wait2, write_all, Waker};
use super::filter::OutputFilter;

const BUF_SIZE: usize = 16 * 1024;
/// After a stop request, keep reading the master while data keeps coming at least this often...
const DRAIN_IDLE: Duration = Duration::from_millis(50);
/// ...but no longer than this in total...
const DRAIN_TIME: Duration = Duration::from_secs(1);
/// ...and no more than this many bytes (a program printing forever must not stall the exit).
const DRAIN_BYTES: usize = 4 * 1024 * 1024;

/// Relay: stdin -> master, master -> (filter) -> stdout, on its own threads using poll.
///
/// It stops when the master reports EOF/EIO (all slave descriptors closed; the supervisor
/// must close its own copy of the slave after handing it to the child) or when
/// [`Relay::stop_and_join`] is called; after a stop request it drains what the master still
/// has (bounded in time and bytes), so the command's last output is not lost.
///
/// EOF on stdin is passed on as the pty's EOF character (VEOF), not by closing the master:
/// once when the line is empty, twice after a partial line (the first VEOF only delivers
/// the partial line to the reader in canonical mode). When stdout is a terminal, the relay
/// ends by switching off modes the program left on (see [`OutputFilter::finish`]).
#[derive(Debug)]
pub struct Relay {
    master: Arc<OwnedFd>,
    waker: Arc<Waker>,
    queried: Arc<AtomicBool>,
    input: Option<JoinHandle<()>>,
    output: Option<JoinHandle<()>>,
}

impl Relay {
    /// Starts relaying. `stdin` and `stdout` are borrowed by number and duplicated; they are
    /// never closed or switched to non-blocking. A number that is not open counts as an
    /// empty stdin (immediate EOF) or a discarding stdout.
    pub fn start(master: OwnedFd, stdin: RawFd, stdout: RawFd) -> io::Result<Self> {
        set_nonblocking(master.as_fd())?;
        let stdin = dup_raw(stdin)?;
        let stdout = dup_raw(stdout)?;
        let master = Arc::new(master);
        let waker = Arc::new(Waker::new()?);
        let queried = Arc::new(AtomicBool::new(false));

        let output = {
            let (master, waker) = (Arc::clone(&master), Arc::clone(&waker));
            let queried = Arc::clone(&queried);
            std::thread::Builder::new()
                .name("cordon-pty-out".into())
                .spawn(move || output_loop(&master, stdout, &waker, &queried))?
        };
        let input = {
            let (master, waker2) = (Arc::clone(&master), Arc::clone(&waker));
            std::thread::Builder::new()
                .name("cordon-pty-in".into())
                .spawn(move || input_loop(&master, stdin, &waker2))
        };
        let input = match input {
            Ok(handle) => handle,
            Err(err) => {
                waker.wake();
                let _ = output.join();
                return Err(err);
            }
        };
        Ok(Self {
            master,
            waker,
            queried,
            input: Some(input),
            output: Some(output),
        })
    }

    /// The pty master, for window size updates.
    pub fn master(&self) -> BorrowedFd<'_> {
        self.master.as_fd()
    }

    /// True once the program's output asked the terminal something (see
    /// [`OutputFilter::queried`]); then call `RawTerminal::discard_replies` before restoring.
    pub fn queried(&self) -> bool {
        self.queried.load(Ordering::Relaxed)
    }

    /// True once the output side saw EOF/EIO on the master (or failed) and the relay ended.
    pub fn is_finished(&self) -> bool {
        self.output.as_ref().is_none_or(JoinHandle::is_finished)
    }

    /// Requests a stop, lets the output side drain (bounded), and waits for both threads.
    /// Returns [`Relay::queried`] as it stands after the drain: a program that asked and
    /// exited at once (`printf '\033[c'; exit`) leaves its query in the master, and only the
    /// drain relays it, so a look before the stop misses what the terminal will answer.
    pub fn stop_and_join(mut self) -> bool {
        self.shutdown();
        self.queried()
    }

    fn shutdown(&mut self) {
        self.waker.wake();
        // A panicking relay thread has nothing left to clean up; its output is lost either way.
        if let Some(output) = self.output.take() {
            let _ = output.join();
        }
        if let Some(input) = self.input.take() {
            let _ = input.join();
        }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// stdin -> master until EOF, a write failure on the master, or the stop request.
fn input_loop(master: &OwnedFd, stdin: Option<OwnedFd>, waker: &Waker) {
    let Some(stdin) = stdin else {
        send_eof(master, true, waker);
        return;
    };
    let mut buf = vec![0u8; BUF_SIZE];
    let mut at_line_start = true;
    loop {
        let ready = match wait2(stdin.as_fd(), PollFlags::IN, waker, None) {
            Ok(ready) => ready,
            Err(_) => return,
        };
        if ready.woken {
            return;
        }
        if !ready.fd {
            continue;
        }
        match read_available(stdin.as_fd(), &mut buf) {
            Ok(0) | Err(_) => {
                send_eof(master, at_line_start, waker);
                return;
            }
            Ok(n) => {
                let stripped = unread_replies_dropped(master, &buf[..n]);
                let input = stripped.as_deref().unwrap_or(&buf[..n]);
                let Some(last) = input.last() else {
                    continue;
                };
                at_line_start = matches!(last, b'\n' | b'\r');
                match write_all(master.as_fd(), input, Some(waker)) {
                    Ok(true) => {}
                    Ok(false) | Err(_) => return,
                }
            }
        }
    }
}

/// `input` without terminal replies when the pty is in line mode with echo (see
/// [`super::replies`]); `None`: pass it on as it is.
fn unread_replies_dropped(master: &OwnedFd, input: &[u8]) -> Option<Vec<u8>> {
    if !input.contains(&0x1b) {
        return None;
    }
    let termios = tcgetattr(master).ok()?;
    if !super::replies::nobody_waits(&termios) {
        return None;
    }
    super::replies::strip(input)
}

/// Passes stdin's EOF on as the pty's VEOF character (see [`Relay`]).
fn send_eof(master: &OwnedFd, at_line_start: bool, waker: &Waker) {
    let Ok(termios) = tcgetattr(master) else {
        return;
    };
    let veof = termios.special_codes[SpecialCodeIndex::VEOF];
    if veof == 0 {
        // _POSIX_VDISABLE: the program has no EOF character; there is nothing to send.
        return;
    }
    let canonical = termios.local_modes.contains(LocalModes::ICANON);
    let count = if canonical && !at_line_start { 2 } else { 1 };
    let _ = write_all(master.as_fd(), &[veof; 2][..count], Some(waker));
}

/// Where filtered output goes; after a write error, output is discarded but the master keeps
/// being read so the sandboxed program never blocks on a full pty.
struct Sink {
    fd: Option<OwnedFd>,
    buf: Vec<u8>,
}

impl Sink {
    fn flush(&mut self) {
        if let Some(fd) = &self.fd {
            if !matches!(write_all(fd.as_fd(), &self.buf, None), Ok(true)) {
                self.fd = None;
            }
        }
        self.buf.clear();
    }
}

/// master -> filter -> stdout until EOF/EIO on the master or the stop request (then drain).
fn output_loop(master: &OwnedFd, stdout: Option<OwnedFd>, waker: &Waker, queried: &AtomicBool) {
    let mut filter = OutputFilter::new();
    let is_tty = stdout.as_ref().is_some_and(rustix::termios::isatty);
    let mut sink = Sink {
        fd: stdout,
        buf: Vec::with_capacity(BUF_SIZE),
    };
    let mut buf = vec![0u8; BUF_SIZE];
    while let Ok(ready) = wait2(master.as_fd(), PollFlags::IN, waker, None) {
        if ready.woken {
            drain(master, &mut filter, &mut sink, &mut buf);
            break;
        }
        let more = ready.fd && pump(master, &mut filter, &mut sink, &mut buf).unwrap_or(false);
        queried.fetch_or(filter.queried(), Ordering::Relaxed);
        if ready.fd && !more {
            break;
        }
    }
    queried.fetch_or(filter.queried(), Ordering::Relaxed);
    if is_tty {
        filter.finish(&mut sink.buf);
        sink.flush();
    }
    // Tell the input side that there is no one left to type to.
    waker.wake();
}

/// One read from the master into the sink. `Ok(false)` at EOF (EIO: no slave left).
fn pump(
    master: &OwnedFd,
    filter: &mut OutputFilter,
    sink: &mut Sink,
    buf: &mut [u8],
) -> Result<bool, Errno> {
    match rustix::io::read(master, &mut *buf) {
        Ok(0) => Ok(false),
        Ok(n) => {
            filter.feed(&buf[..n], &mut sink.buf);
            sink.flush();
            Ok(true)
        }
        Err(Errno::AGAIN | Errno::INTR) => Ok(true),
        Err(e) => Err(e),
    }
}

/// Reads what the master still delivers after a stop request, within the drain bounds.
fn drain(master: &OwnedFd, filter: &mut OutputFilter, sink: &mut Sink, buf: &mut [u8]) {
    let deadline = Instant::now() + DRAIN_TIME;
    let mut total = 0usize;
    // A second, never-woken waker: the stop request is already known here.
    let Ok(idle) = Waker::new() else {
        return;
    };
    while total < DRAIN_BYTES {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        match wait2(
            master.as_fd(),
            PollFlags::IN,
            &idle,
            Some(left.min(DRAIN_IDLE)),
        ) {
            Ok(ready) if ready.fd => {}
            _ => break,
        }
        match rustix::io::read(master, &mut *buf) {
            Ok(0) => break,
            Ok(n) => {
                total += n;
                filter.feed(&buf[..n], &mut sink.buf);
                sink.flush();
            }
            Err(Errno::AGAIN | Errno::INTR) => {}
            Err(_) => break,
        }
    }
}
