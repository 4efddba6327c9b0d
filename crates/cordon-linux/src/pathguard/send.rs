//! Sending with a destination: `sendto` with an address (a plain `send` carries none and is
//! not routed), and every `sendmsg`/`sendmmsg` (their destination is inside a struct the filter
//! cannot read, and another thread could set it after any check). A unix socket path is
//! reachable only if the sandbox bound it, as for connect; any other address as asked. The
//! guard reads the message once and sends it itself on the caller's own socket; nothing is
//! ever continued.

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
/// Control data carried (about the kernel's own limit, optmem_max).
const MAX_CONTROL: usize = 20 * 1024;
/// iovecs per message and messages per sendmmsg (UIO_MAXIOV).
const MAX_IOV: usize = 1024;
/// Sizes of the x86_64 structs read from the caller.
const MSGHDR: usize = 56;
const MMSGHDR: usize = 64;
const IOVEC: usize = 16;

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
        iov: vec![(n.args[1], n.args[2] as usize)],
        control: Vec::new(),
        _fds: Vec::new(),
    };
    send_msg(caller, &sock, &msg, flags, valid)
}

/// sendmsg(2).
pub(super) fn sendmsg(
    n: &Notif,
    caller: &Caller,
    guard: &Guard,
    valid: Valid,
) -> Result<i64, Errno> {
    let fd = n.args[0] as u32 as i32;
    let flags = n.args[2] as u32 as i32;
    let sock = caller_socket(caller.tid, fd)?;
    let hdr = caller.read_bytes(n.args[1], MSGHDR)?;
    let msg = Msg::read(caller, guard, &hdr)?;
    send_msg(caller, &sock, &msg, flags, valid)
}

/// sendmmsg(2): each message as sendmsg, its `msg_len` written back; the count sent.
pub(super) fn sendmmsg(
    n: &Notif,
    caller: &Caller,
    guard: &Guard,
    valid: Valid,
) -> Result<i64, Errno> {
    let fd = n.args[0] as u32 as i32;
    let vlen = (n.args[2] as u32 as usize).min(MAX_IOV);
    let flags = n.args[3] as u32 as i32;
    let sock = caller_socket(caller.tid, fd)?;
    let mut sent = 0usize;
    for i in 0..vlen {
        let at = n.args[1]
            .checked_add((i * MMSGHDR) as u64)
            .ok_or(Errno::FAULT)?;
        let one = caller
            .read_bytes(at, MSGHDR)
            .and_then(|hdr| Msg::read(caller, guard, &hdr))
            .and_then(|msg| send_msg(caller, &sock, &msg, flags, valid));
        match one {
            Ok(len) => {
                let len = u32::try_from(len).unwrap_or(u32::MAX);
                write_caller(caller.tid, at + MSGHDR as u64, &len.to_ne_bytes())?;
                sent += 1;
            }
            Err(e) if sent == 0 => return Err(e),
            Err(_) => break,
        }
    }
    Ok(sent as i64)
}

/// Where a message goes: the socket's peer, or an address (a checked unix socket is named by
/// the guard's own fd of it, which stays open while sending).
enum Dest {
    Peer,
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

    fn bytes(&self) -> Option<&[u8]> {
        match self {
            Dest::Peer => None,
            Dest::Addr(b) | Dest::Own(b, _) => Some(b),
        }
    }
}

/// One message read from the caller: its destination, its data (as addresses and lengths in
/// the caller's memory, read piece by piece when sent), and its control data with the caller's
/// descriptors replaced by ours (`_fds` keeps them open while sending).
struct Msg {
    dest: Dest,
    iov: Vec<(u64, usize)>,
    control: Vec<u8>,
    _fds: Vec<OwnedFd>,
}

fn word(b: &[u8], at: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[at..at + 8]);
    u64::from_ne_bytes(w)
}

impl Msg {
    /// A `struct msghdr` of the caller, with everything it points at.
    fn read(caller: &Caller, guard: &Guard, hdr: &[u8]) -> Result<Msg, Errno> {
        let (name, namelen) = (word(hdr, 0), word(hdr, 8) as u32 as usize);
        let (iov_at, iovlen) = (word(hdr, 16), word(hdr, 24) as usize);
        let (ctl_at, ctllen) = (word(hdr, 32), word(hdr, 40) as usize);
        let dest = if name == 0 || namelen == 0 {
            Dest::Peer
        } else {
            let len = namelen.min(std::mem::size_of::<libc::sockaddr_storage>());
            Dest::checked(caller, guard, caller.read_bytes(name, len)?)?
        };
        if iovlen > MAX_IOV {
            return Err(Errno::MSGSIZE);
        }
        let raw = if iovlen == 0 {
            Vec::new()
        } else {
            caller.read_bytes(iov_at, iovlen * IOVEC)?
        };
        let iov = raw
            .chunks_exact(IOVEC)
            .map(|c| (word(c, 0), word(c, 8) as usize))
            .filter(|(_, len)| *len > 0)
            .collect();
        let (control, fds) = if ctl_at == 0 || ctllen == 0 {
            (Vec::new(), Vec::new())
        } else if ctllen > MAX_CONTROL {
            return Err(Errno::NOBUFS);
        } else {
            translate_control(caller, caller.read_bytes(ctl_at, ctllen)?)?
        };
        Ok(Msg {
            dest,
            iov,
            control,
            _fds: fds,
        })
    }
}

/// Control messages the guard passes on: descriptors (translated to ours), and the per-packet
/// options an unprivileged sender may set. Anything else is refused: the guard's sends carry
/// its own privileges in the sandbox's network namespace, not the caller's.
fn translate_control(caller: &Caller, mut c: Vec<u8>) -> Result<(Vec<u8>, Vec<OwnedFd>), Errno> {
    const HDR: usize = 16;
    let mut fds = Vec::new();
    let mut at = 0usize;
    while at + HDR <= c.len() {
        let len = word(&c, at) as usize;
        if len < HDR || at + len > c.len() {
            return Err(Errno::INVAL);
        }
        let int = |o: usize| i32::from_ne_bytes([c[o], c[o + 1], c[o + 2], c[o + 3]]);
        let (level, kind) = (int(at + 8), int(at + 12));
        match (level, kind) {
            (libc::SOL_SOCKET, libc::SCM_RIGHTS) => {
                for slot in c[at + HDR..at + len].chunks_exact_mut(4) {
                    let theirs = i32::from_ne_bytes([slot[0], slot[1], slot[2], slot[3]]);
                    let ours = caller_socket(caller.tid, theirs)?;
                    slot.copy_from_slice(&ours.as_raw_fd().to_ne_bytes());
                    fds.push(ours);
                }
            }
            (libc::SOL_IP, libc::IP_PKTINFO | libc::IP_TOS | libc::IP_TTL)
            | (libc::SOL_IPV6, libc::IPV6_PKTINFO | libc::IPV6_HOPLIMIT | libc::IPV6_TCLASS)
            | (libc::SOL_UDP, libc::UDP_SEGMENT) => {}
            _ => return Err(Errno::PERM),
        }
        at += (len + 7) & !7;
    }
    Ok((c, fds))
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
    let total: usize = msg.iov.iter().map(|(_, l)| *l).sum();
    let datagram = is_datagram(sock);
    if datagram && total > MAX_DATAGRAM {
        return Err(Errno::MSGSIZE);
    }
    let nonblock = flags & libc::MSG_DONTWAIT != 0
        || rustix::fs::fcntl_getfl(sock).is_ok_and(|f| f.contains(OFlags::NONBLOCK));
    let piece = if datagram { MAX_DATAGRAM } else { MAX_CHUNK };
    let mut done = 0usize;
    loop {
        let data = gather(caller, &msg.iov, done, piece)?;
        let control = if done == 0 { &msg.control[..] } else { &[] };
        let r = send_once(
            sock,
            &data,
            control,
            msg.dest.bytes(),
            flags,
            nonblock,
            valid,
        );
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

/// Up to `max` bytes of the message's data from byte `skip` on, read from the caller.
fn gather(
    caller: &Caller,
    iov: &[(u64, usize)],
    mut skip: usize,
    max: usize,
) -> Result<Vec<u8>, Errno> {
    let mut out = Vec::new();
    for &(base, len) in iov {
        if skip >= len {
            skip -= len;
            continue;
        }
        let want = (len - skip).min(max - out.len());
        let at = base.checked_add(skip as u64).ok_or(Errno::FAULT)?;
        out.extend(caller.read_bytes(at, want)?);
        skip = 0;
        if out.len() >= max {
            break;
        }
    }
    Ok(out)
}

/// One sendmsg of ours, waiting (bounded by the caller's presence) while the socket is full.
fn send_once(
    sock: &OwnedFd,
    data: &[u8],
    control: &[u8],
    dest: Option<&[u8]>,
    flags: i32,
    nonblock: bool,
    valid: Valid,
) -> Result<usize, Errno> {
    let (mut storage, alen) = to_storage(dest.unwrap_or_default());
    let mut control = control.to_vec();
    let mut iov = libc::iovec {
        iov_base: data.as_ptr() as *mut libc::c_void,
        iov_len: data.len(),
    };
    // SAFETY: msghdr is plain old data; all-zero is a valid value.
    let mut hdr: libc::msghdr = unsafe { std::mem::zeroed() };
    if dest.is_some() {
        hdr.msg_name = (&mut storage as *mut libc::sockaddr_storage).cast();
        hdr.msg_namelen = alen as libc::socklen_t;
    }
    if !control.is_empty() {
        hdr.msg_control = control.as_mut_ptr().cast();
        hdr.msg_controllen = control.len();
    }
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

/// Writes `bytes` into the caller's memory at `addr` (sendmmsg's msg_len).
fn write_caller(tid: i32, addr: u64, bytes: &[u8]) -> Result<(), Errno> {
    let local = libc::iovec {
        iov_base: bytes.as_ptr() as *mut libc::c_void,
        iov_len: bytes.len(),
    };
    let remote = libc::iovec {
        iov_base: addr as *mut libc::c_void,
        iov_len: bytes.len(),
    };
    // SAFETY: local points at `bytes`; the kernel checks the remote range in the caller.
    let r = unsafe { libc::process_vm_writev(tid, &local, 1, &remote, 1, 0) };
    if r == bytes.len() as isize {
        Ok(())
    } else {
        Err(Errno::FAULT)
    }
}
