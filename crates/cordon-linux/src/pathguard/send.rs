//! `sendto` with a destination address (a plain `send` carries none and is not routed): to a
//! unix socket path only if the sandbox bound it, as for connect; to any other address as
//! asked. The guard reads the data once and sends it itself on the caller's own socket;
//! nothing is ever continued. (`sendmsg`/`sendmmsg` are not routed: see docs/design.md.)

use std::os::fd::{AsRawFd, OwnedFd};

use rustix::fs::OFlags;
use rustix::io::Errno;

use super::caller::Caller;
use super::connect::{caller_socket, last, own_socket, sun_path, to_storage, unix_addr, NetRoute};
use super::handle::Guard;
use super::notif::Notif;

/// Bytes carried per send (longer stream writes are sent in pieces of this size, each
/// read from the caller's memory in turn).
const MAX_CHUNK: usize = 1 << 20;
/// A datagram is sent whole; a longer one fails as the kernel would fail it.
const MAX_DATAGRAM: usize = 4 << 20;
/// How often a blocked send re-checks that its caller still waits.
const SEND_POLL_MS: i32 = 20;

type Valid<'a> = &'a dyn Fn() -> bool;

/// sendto(2) with a destination (the filter routes no other).
pub(super) fn sendto(
    n: &Notif,
    caller: &Caller,
    guard: &Guard,
    valid: Valid,
) -> Result<i64, Errno> {
    let fd = n.args[0] as u32 as i32;
    let flags = n.args[3] as u32 as i32;
    let alen = (n.args[5] as u32 as usize).min(std::mem::size_of::<libc::sockaddr_storage>());
    let raw = caller.read_bytes(n.args[4], alen)?;
    let sock = caller_socket(caller.tid, fd)?;
    let dest = Dest::checked(caller, guard, raw)?;
    let msg = Msg {
        dest,
        data: (n.args[1], n.args[2] as usize),
    };
    send_msg(caller, &sock, &msg, flags, valid)
}

/// Where a message goes: an address (a checked unix socket is named by the guard's own fd of
/// it, which stays open while sending).
enum Dest {
    Addr(Vec<u8>),
    Own(Vec<u8>, #[allow(dead_code)] OwnedFd),
}

impl Dest {
    fn checked(caller: &Caller, guard: &Guard, raw: Vec<u8>) -> Result<Dest, Errno> {
        let family = raw
            .get(..2)
            .map(|b| u16::from_ne_bytes([b[0], b[1]]) as i32);
        if family == Some(libc::AF_UNIX) && raw.len() > 2 && raw[2] != 0 {
            let none = NetRoute::loopback_only();
            let route = guard.cfg.net.as_ref().unwrap_or(&none);
            let target = own_socket(caller, guard, route, &sun_path(&raw))?;
            let via = unix_addr(format!("/proc/thread-self/fd/{}", target.as_raw_fd()).as_bytes());
            return Ok(Dest::Own(via, target));
        }
        Ok(Dest::Addr(raw))
    }

    fn bytes(&self) -> &[u8] {
        match self {
            Dest::Addr(b) | Dest::Own(b, _) => b,
        }
    }
}

/// One message: its destination, and its data as an address and length in the caller's
/// memory (read piece by piece when sent).
struct Msg {
    dest: Dest,
    data: (u64, usize),
}

/// Whether `sock` carries whole messages (a datagram is never split).
fn is_datagram(sock: &OwnedFd) -> bool {
    !matches!(
        rustix::net::sockopt::socket_type(sock),
        Ok(rustix::net::SocketType::STREAM)
    )
}

/// Sends `msg` on `sock`: a datagram whole, a stream in pieces until all is sent (as a
/// blocking send would) or the socket would block for a caller that asked not to wait.
fn send_msg(
    caller: &Caller,
    sock: &OwnedFd,
    msg: &Msg,
    flags: i32,
    valid: Valid,
) -> Result<i64, Errno> {
    if !valid() {
        return Err(Errno::INTR);
    }
    let total = msg.data.1;
    let datagram = is_datagram(sock);
    if datagram && total > MAX_DATAGRAM {
        return Err(Errno::MSGSIZE);
    }
    let nonblock = flags & libc::MSG_DONTWAIT != 0
        || rustix::fs::fcntl_getfl(sock).is_ok_and(|f| f.contains(OFlags::NONBLOCK));
    let piece = if datagram { MAX_DATAGRAM } else { MAX_CHUNK };
    let mut done = 0usize;
    loop {
        let want = (total - done).min(piece);
        let at = msg.data.0.checked_add(done as u64).ok_or(Errno::FAULT)?;
        let data = if want == 0 {
            Vec::new()
        } else {
            caller.read_bytes(at, want)?
        };
        let r = send_once(sock, &data, msg.dest.bytes(), flags, nonblock, valid);
        match r {
            Ok(n) => done += n,
            Err(e) if done > 0 && e == Errno::AGAIN => return Ok(done as i64),
            Err(e) => {
                if e == Errno::PIPE && flags & libc::MSG_NOSIGNAL == 0 {
                    sigpipe(caller.tid);
                }
                return if done > 0 { Ok(done as i64) } else { Err(e) };
            }
        }
        if datagram || done >= total || nonblock {
            return Ok(done as i64);
        }
    }
}

/// One sendmsg of ours, waiting (bounded by the caller's presence) while the socket is full.
fn send_once(
    sock: &OwnedFd,
    data: &[u8],
    dest: &[u8],
    flags: i32,
    nonblock: bool,
    valid: Valid,
) -> Result<usize, Errno> {
    let (mut storage, alen) = to_storage(dest);
    let mut iov = libc::iovec {
        iov_base: data.as_ptr() as *mut libc::c_void,
        iov_len: data.len(),
    };
    // SAFETY: msghdr is plain old data; all-zero is a valid value.
    let mut hdr: libc::msghdr = unsafe { std::mem::zeroed() };
    hdr.msg_name = (&mut storage as *mut libc::sockaddr_storage).cast();
    hdr.msg_namelen = alen as libc::socklen_t;
    hdr.msg_iov = &mut iov;
    hdr.msg_iovlen = 1;
    let pass = flags & !(libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL);
    loop {
        // SAFETY: every pointer in hdr refers to a live local buffer of the length given.
        let r = unsafe {
            libc::sendmsg(
                sock.as_raw_fd(),
                &hdr,
                pass | libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
            )
        };
        if r >= 0 {
            return Ok(r as usize);
        }
        let e = last();
        if e != Errno::AGAIN || nonblock {
            return Err(e);
        }
        if !valid() {
            return Err(Errno::INTR);
        }
        let mut pfd = libc::pollfd {
            fd: sock.as_raw_fd(),
            events: libc::POLLOUT,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        unsafe { libc::poll(&mut pfd, 1, SEND_POLL_MS) };
    }
}

/// The SIGPIPE the kernel would have sent the caller for a send on a closed stream.
fn sigpipe(tid: i32) {
    let Ok(text) = std::fs::read_to_string(format!("/proc/{tid}/status")) else {
        return;
    };
    let tgid = text
        .lines()
        .find_map(|l| l.strip_prefix("Tgid:"))
        .and_then(|v| v.trim().parse::<i32>().ok());
    if let Some(tgid) = tgid {
        // SAFETY: tgkill takes integers; a thread gone since is ESRCH, ignored.
        unsafe { libc::syscall(libc::SYS_tgkill, tgid, tid, libc::SIGPIPE) };
    }
}
