//! What we learn about the calling thread from the host's /proc.

use std::cell::Cell;
use std::fmt::Write as _;
use std::os::fd::OwnedFd;
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Mutex, OnceLock};

use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;

use super::resolve::Base;

/// Longest path the kernel accepts, NUL included.
const PATH_MAX: usize = 4096;
const PAGE: u64 = 4096;

/// Facts from /proc/<tid>/status that we need only sometimes, loaded once per notification.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Status {
    pub umask: u32,
    /// Thread-group id in the caller's own (innermost) pid namespace.
    pub ns_tgid: i32,
    /// Thread id in the caller's own (innermost) pid namespace.
    pub ns_pid: i32,
    /// Thread-group id as the host numbers it, and the group's thread count (when listed).
    pub tgid: Option<i32>,
    pub threads: Option<u32>,
}

type ProcReq = (Option<OwnedFd>, String, Sender<Result<OwnedFd, Errno>>);

/// Opens the caller's magic links (`/proc/<tid>/cwd`, `fd/N`, ...) from an unconfined thread.
///
/// Following another process's magic links is a ptrace-mode access, which Landlock refuses to
/// a confined thread whenever the target is not inside its own domain. The workers are
/// confined, so they ask this helper for an O_PATH fd and then work on that fd.
pub(crate) struct ProcOpener {
    tx: Mutex<Sender<ProcReq>>,
}

impl ProcOpener {
    /// Starts the helper thread; it ends when the opener is dropped.
    pub fn start() -> std::io::Result<Arc<Self>> {
        let (tx, rx) = mpsc::channel::<ProcReq>();
        std::thread::Builder::new()
            .name("pathguard-proc".into())
            .spawn(move || {
                for (dir, path, reply) in rx {
                    let flags = OFlags::PATH | OFlags::CLOEXEC;
                    let r = match dir {
                        Some(d) => rustix::fs::openat(&d, path.as_str(), flags, Mode::empty()),
                        None => rustix::fs::open(path.as_str(), flags, Mode::empty()),
                    };
                    let _ = reply.send(r);
                }
            })?;
        Ok(Arc::new(Self { tx: Mutex::new(tx) }))
    }

    /// O_PATH open of `path` (relative to `dir` if given), following a final magic link.
    pub fn open(&self, dir: Option<OwnedFd>, path: String) -> Result<OwnedFd, Errno> {
        let (rtx, rrx) = mpsc::channel();
        self.tx
            .lock()
            .map_err(|_| Errno::IO)?
            .send((dir, path, rtx))
            .map_err(|_| Errno::IO)?;
        rrx.recv().map_err(|_| Errno::IO)?
    }
}

/// A `/proc/<tid>/<rest>` path built on the stack (no allocation on the hot path).
struct ProcPath {
    buf: [u8; 64],
    len: usize,
}

impl std::fmt::Write for ProcPath {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let end = self.len + s.len();
        let dst = self.buf.get_mut(self.len..end).ok_or(std::fmt::Error)?;
        dst.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

impl ProcPath {
    fn new(tid: i32, rest: std::fmt::Arguments<'_>) -> Result<Self, Errno> {
        let mut p = Self {
            buf: [0; 64],
            len: 0,
        };
        write!(p, "/proc/{tid}/{rest}").map_err(|_| Errno::NAMETOOLONG)?;
        Ok(p)
    }

    fn as_str(&self) -> &str {
        // Only `&str`s were copied in, whole.
        std::str::from_utf8(&self.buf[..self.len]).unwrap_or("")
    }
}

/// One read of the caller's memory that a call makes, known from its arguments alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MemRead {
    /// A NUL-terminated string (a path).
    Cstr(u64),
    /// Exactly this many bytes (a times argument).
    Bytes(u64, usize),
}

/// The path arguments of a call that may start from its directory (`0`: the call acts on the
/// fd itself, which always needs it).
#[derive(Debug, Clone, Copy)]
pub(crate) struct FromBase {
    paths: [u64; 2],
    len: usize,
}

impl FromBase {
    pub fn one(path: u64) -> Self {
        Self {
            paths: [path, 0],
            len: 1,
        }
    }

    pub fn two(a: u64, b: u64) -> Self {
        Self {
            paths: [a, b],
            len: 2,
        }
    }

    /// How many of the paths start from the directory: all but those read already and
    /// absolute (a path not read yet, or unreadable, is counted: the worker finds out).
    fn uses(&self, mem: &Mem) -> u8 {
        let absolute = |addr: u64| match mem {
            Mem::Read(done) => done.iter().any(|(r, got)| {
                *r == MemRead::Cstr(addr)
                    && addr != 0
                    && got.as_ref().is_ok_and(|p| p.first() == Some(&b'/'))
            }),
            Mem::Fd(_) => false,
        };
        let n = self.paths[..self.len]
            .iter()
            .filter(|a| !absolute(**a))
            .count();
        u8::try_from(n).unwrap_or(u8::MAX)
    }
}

/// How the caller's memory is read: through `/proc/<tid>/mem`, or already read by the receiver.
enum Mem {
    Fd(OwnedFd),
    /// Every read the call makes, done with process_vm_readv before the call was handed over
    /// (one syscall each instead of an open, a read and a close).
    Read(Vec<(MemRead, Result<Vec<u8>, Errno>)>),
}

/// The thread that made the syscall, seen from the host.
pub(crate) struct Caller {
    /// Host thread id.
    pub tid: i32,
    mem: Mem,
    status: OnceLock<Result<Status, Errno>>,
    opener: Arc<ProcOpener>,
    /// The directory the call's (first) relative path starts from, opened by the receiver
    /// with the memory, so that the common call needs no trip through the [`ProcOpener`];
    /// and how many more times it may be asked for (the last one takes it, undup'ed).
    base: Cell<Option<(Base, OwnedFd)>>,
    base_uses: Cell<u8>,
}

impl Caller {
    /// Opens /proc/<tid>/mem (or, given `reads`, makes those reads of the caller's memory
    /// right away: all the call will make) and, when given, the magic link of `base` (`cwd`
    /// or `fd/N`); must run on an unconfined thread (see [`ProcOpener`]). The caller must
    /// check NOTIF_ID_VALID afterwards (the tid may have been reused before the opens).
    /// `base`: the directory and the paths that may start from it (two for rename and link);
    /// it is not opened when all of them are absolute.
    pub fn open(
        tid: i32,
        opener: Arc<ProcOpener>,
        base: Option<(Base, FromBase)>,
        reads: Option<&[MemRead]>,
    ) -> Result<Self, Errno> {
        let mem = match reads {
            Some(reads) => {
                let vm = |at: u64, buf: &mut [u8]| vm_read(tid, at, buf);
                let done = reads.iter().map(|r| {
                    let got = match *r {
                        MemRead::Cstr(addr) => read_cstr_with(&vm, addr),
                        MemRead::Bytes(addr, len) => read_bytes_with(&vm, addr, len),
                    };
                    (*r, got)
                });
                Mem::Read(done.collect())
            }
            None => Mem::Fd(rustix::fs::open(
                ProcPath::new(tid, format_args!("mem"))?.as_str(),
                OFlags::RDONLY | OFlags::CLOEXEC,
                Mode::empty(),
            )?),
        };
        let (base, uses) = match base {
            Some((b, from)) => match from.uses(&mem) {
                0 => (None, 0),
                n => (Some(b), n),
            },
            None => (None, 0),
        };
        // A failure here is left to the resolver, which opens it again and reports it.
        let base = base.and_then(|b| {
            let path = match b {
                Base::Cwd => ProcPath::new(tid, format_args!("cwd")),
                Base::Fd(n) if n >= 0 => ProcPath::new(tid, format_args!("fd/{n}")),
                Base::Fd(_) => return None,
            };
            let fd = rustix::fs::open(
                path.ok()?.as_str(),
                OFlags::PATH | OFlags::CLOEXEC,
                Mode::empty(),
            );
            Some((b, fd.ok()?))
        });
        Ok(Self {
            tid,
            mem,
            status: OnceLock::new(),
            opener,
            base: Cell::new(base),
            base_uses: Cell::new(uses),
        })
    }

    /// An O_PATH fd for the directory a relative path starts from (`cwd`, `fd/N`).
    pub fn open_base(&self, base: Base) -> Result<OwnedFd, Errno> {
        self.open_base_checked(base).map(|(fd, _)| fd)
    }

    /// [`Caller::open_base`], and whether the fd is the receiver's, opened before it checked
    /// that the notification was still pending (so it is the caller's own, not a reused tid's).
    pub fn open_base_checked(&self, base: Base) -> Result<(OwnedFd, bool), Errno> {
        if let Some((b, fd)) = self.base.take() {
            if b == base {
                let left = self.base_uses.get().saturating_sub(1);
                self.base_uses.set(left);
                if left == 0 {
                    return Ok((fd, true));
                }
                let copy = fd.try_clone().map_err(|_| Errno::MFILE);
                self.base.set(Some((b, fd)));
                return copy.map(|c| (c, true));
            }
            self.base.set(Some((b, fd)));
        }
        let fd = match base {
            Base::Cwd => self.open_magic("cwd"),
            Base::Fd(n) if n >= 0 => self.open_magic(&format!("fd/{n}")),
            Base::Fd(_) => Err(Errno::BADF),
        };
        fd.map(|fd| (fd, false))
    }

    /// An O_PATH fd for `/proc/<tid>/<rest>`, following the final magic link.
    pub fn open_magic(&self, rest: &str) -> Result<OwnedFd, Errno> {
        self.opener.open(None, self.proc_path(rest))
    }

    /// An O_PATH fd for the target of the magic link `name` in the sandbox's procfs `dir`.
    pub fn follow_magic(&self, dir: OwnedFd, name: &[u8]) -> Result<OwnedFd, Errno> {
        let name = std::str::from_utf8(name).map_err(|_| Errno::NOENT)?;
        self.opener.open(Some(dir), name.to_string())
    }

    /// `/proc/<tid>/<rest>` on the host.
    pub fn proc_path(&self, rest: &str) -> String {
        format!("/proc/{}/{}", self.tid, rest)
    }

    /// Reads a NUL-terminated string (a path) from the caller's memory.
    /// No NUL within PATH_MAX bytes -> ENAMETOOLONG; unreadable -> EFAULT.
    pub fn read_cstr(&self, addr: u64) -> Result<Vec<u8>, Errno> {
        match &self.mem {
            Mem::Fd(fd) => read_cstr_with(&|at, buf: &mut [u8]| pread(fd, at, buf), addr),
            Mem::Read(done) => done_read(done, MemRead::Cstr(addr)),
        }
    }

    /// Reads exactly `len` bytes (a small struct such as a sockaddr) from the caller's memory.
    pub fn read_bytes(&self, addr: u64, len: usize) -> Result<Vec<u8>, Errno> {
        match &self.mem {
            Mem::Fd(fd) => read_bytes_with(&|at, buf: &mut [u8]| pread(fd, at, buf), addr, len),
            Mem::Read(done) => done_read(done, MemRead::Bytes(addr, len)),
        }
    }

    /// umask and namespace ids (parsed once).
    pub fn status(&self) -> Result<Status, Errno> {
        *self.status.get_or_init(|| {
            let path = ProcPath::new(self.tid, format_args!("status"))?;
            let mut buf = [0u8; STATUS_BUF];
            let n = read_once(path.as_str(), &mut buf)?;
            if let Some(st) = parse_status(&buf[..n]) {
                return Ok(st);
            }
            // Only a status longer than the buffer (thousands of groups) gets here.
            let text = read_small(path.as_str())?;
            parse_status(&text).ok_or(Errno::SRCH)
        })
    }

    /// The caller's controlling terminal as (major, minor), if any.
    pub fn ctty(&self) -> Result<Option<(u32, u32)>, Errno> {
        let text = read_small(&self.proc_path("stat"))?;
        let text = std::str::from_utf8(&text).map_err(|_| Errno::SRCH)?;
        let tty_nr = parse_tty_nr(text).ok_or(Errno::SRCH)?;
        if tty_nr == 0 {
            return Ok(None);
        }
        let major = (tty_nr >> 8) & 0xfff;
        let minor = (tty_nr & 0xff) | ((tty_nr >> 12) & 0xfff00);
        Ok(Some((major, minor)))
    }
}

/// A read the receiver made. One it did not make (a call that reads more than its arguments
/// said) fails: the receiver's list and the handlers disagree, and nothing is guessed.
fn done_read(done: &[(MemRead, Result<Vec<u8>, Errno>)], want: MemRead) -> Result<Vec<u8>, Errno> {
    match done.iter().find(|(r, _)| *r == want) {
        Some((_, got)) => got.clone(),
        None => Err(Errno::FAULT),
    }
}

fn pread(mem: &OwnedFd, at: u64, buf: &mut [u8]) -> Result<usize, Errno> {
    rustix::io::pread(mem, buf, at)
}

/// Reads the caller's memory at `at` with process_vm_readv (one remote range: the kernel
/// transfers it whole or fails at its first unmapped page).
fn vm_read(tid: i32, at: u64, buf: &mut [u8]) -> Result<usize, Errno> {
    let local = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    let remote = libc::iovec {
        iov_base: at as usize as *mut libc::c_void,
        iov_len: buf.len(),
    };
    // SAFETY: `local` describes `buf`, which we own mutably for the call; the remote range is
    // only read by the kernel, in the other process, and checked there.
    let r = unsafe { libc::process_vm_readv(tid, &local, 1, &remote, 1, 0) };
    usize::try_from(r)
        .map_err(|_| Errno::from_io_error(&std::io::Error::last_os_error()).unwrap_or(Errno::FAULT))
}

/// Reads the caller's memory at an address into a buffer, returning the bytes read.
type ReadAt<'a> = dyn Fn(u64, &mut [u8]) -> Result<usize, Errno> + 'a;

/// A NUL-terminated string at `addr`, read with `read` page by page (a string may end right
/// before an unmapped page). No NUL within PATH_MAX bytes -> ENAMETOOLONG; unreadable -> EFAULT.
fn read_cstr_with(read: &ReadAt<'_>, addr: u64) -> Result<Vec<u8>, Errno> {
    if addr == 0 {
        return Err(Errno::FAULT);
    }
    let mut out = Vec::with_capacity(256);
    let mut at = addr;
    let mut chunk = [0u8; PAGE as usize];
    while out.len() < PATH_MAX {
        let to_page_end = PAGE - (at % PAGE);
        let want = (to_page_end as usize).min(PATH_MAX - out.len());
        let chunk = &mut chunk[..want];
        let n = match read(at, &mut chunk[..]) {
            Ok(0) | Err(_) => return Err(Errno::FAULT),
            Ok(n) => n.min(want),
        };
        if let Some(nul) = chunk[..n].iter().position(|b| *b == 0) {
            out.extend_from_slice(&chunk[..nul]);
            return Ok(out);
        }
        out.extend_from_slice(&chunk[..n]);
        at = at.checked_add(n as u64).ok_or(Errno::FAULT)?;
    }
    Err(Errno::NAMETOOLONG)
}

fn read_bytes_with(read: &ReadAt<'_>, addr: u64, len: usize) -> Result<Vec<u8>, Errno> {
    if addr == 0 {
        return Err(Errno::FAULT);
    }
    let mut out = vec![0u8; len];
    match read(addr, &mut out[..]) {
        Ok(n) if n == len => Ok(out),
        _ => Err(Errno::FAULT),
    }
}

/// Bytes of /proc/<tid>/status read at once: the fields we need come in its first lines.
const STATUS_BUF: usize = 4096;

/// One `read(2)` of a procfs file into `buf` (procfs fills a large buffer in one go; std's
/// growing reads took eight calls for /proc/<tid>/status).
fn read_once(path: &str, buf: &mut [u8]) -> Result<usize, Errno> {
    rustix::io::read(open_proc(path)?, buf).map_err(|_| Errno::SRCH)
}

/// A file of the caller's /proc directory; the caller being gone is ESRCH.
fn open_proc(path: &str) -> Result<OwnedFd, Errno> {
    rustix::fs::open(path, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty()).map_err(|e| {
        if e == Errno::NOENT {
            Errno::SRCH
        } else {
            e
        }
    })
}

fn read_small(path: &str) -> Result<Vec<u8>, Errno> {
    let mut out = vec![0u8; STATUS_BUF];
    let fd = open_proc(path)?;
    let mut len = 0;
    loop {
        if len == out.len() {
            if out.len() >= 256 * 1024 {
                return Err(Errno::SRCH);
            }
            out.resize(out.len() * 2, 0);
        }
        match rustix::io::read(&fd, &mut out[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(Errno::INTR) => {}
            Err(_) => return Err(Errno::SRCH),
        }
    }
    out.truncate(len);
    Ok(out)
}

/// The last whitespace-separated field of a status value.
fn last_field(val: &[u8]) -> Option<&str> {
    let v = val
        .split(|b| b.is_ascii_whitespace())
        .rfind(|f| !f.is_empty())?;
    std::str::from_utf8(v).ok()
}

/// Parses `Umask:`, `NStgid:` and `NSpid:` (last value = innermost namespace).
pub(crate) fn parse_status(text: &[u8]) -> Option<Status> {
    let mut umask = None;
    let mut tgid = None;
    let mut pid = None;
    let mut host_tgid = None;
    let mut threads = None;
    // Only whole lines: a read cut short must not yield a cut-off number.
    let whole = &text[..text.iter().rposition(|b| *b == b'\n')?];
    for line in whole.split(|b| *b == b'\n') {
        let Some(colon) = line.iter().position(|b| *b == b':') else {
            continue;
        };
        let (key, val) = (&line[..colon], &line[colon + 1..]);
        let last = last_field(val);
        match key {
            b"Umask" => umask = last.and_then(|v| u32::from_str_radix(v, 8).ok()),
            b"NStgid" => tgid = last.and_then(|v| v.parse().ok()),
            b"NSpid" => pid = last.and_then(|v| v.parse().ok()),
            b"Tgid" => host_tgid = last.and_then(|v| v.parse().ok()),
            b"Threads" => threads = last.and_then(|v| v.parse().ok()),
            _ => {}
        }
        if threads.is_some() && umask.is_some() && tgid.is_some() && pid.is_some() {
            break;
        }
    }
    Some(Status {
        umask: umask?,
        ns_tgid: tgid?,
        ns_pid: pid?,
        tgid: host_tgid,
        threads,
    })
}

/// Field 7 of /proc/<pid>/stat; the command name (field 2) may contain spaces and parentheses.
pub(crate) fn parse_tty_nr(text: &str) -> Option<u32> {
    let after = &text[text.rfind(')')? + 1..];
    // Fields after ')': state(3) ppid(4) pgrp(5) session(6) tty_nr(7).
    let v: i64 = after.split_whitespace().nth(4)?.parse().ok()?;
    u32::try_from(v).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_takes_innermost_ids() {
        let s =
            "Name:\tx\nUmask:\t0027\nTgid:\t900\nNStgid:\t900\t7\nNSpid:\t901\t8\nThreads:\t3\n";
        let st = parse_status(s.as_bytes()).expect("parses");
        assert_eq!((st.umask, st.ns_tgid, st.ns_pid), (0o027, 7, 8));
        assert_eq!((st.tgid, st.threads), (Some(900), Some(3)));
        assert!(parse_status(b"Name:\tx\n").is_none());
        // A cut-off last line (a status longer than the buffer) is no answer.
        assert!(parse_status(b"Umask:\t0022\nNStgid:\t5\nNSpid:\t90").is_none());
    }

    #[test]
    fn tty_nr_survives_odd_names() {
        let s = "12 (a) b (c)) S 1 12 12 34817 12 4194560 0";
        assert_eq!(parse_tty_nr(s), Some(34817));
        assert_eq!(parse_tty_nr("garbage"), None);
    }
}
