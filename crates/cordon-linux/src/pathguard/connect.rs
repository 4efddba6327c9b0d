//! `connect(2)`, `bind(2)` and `sendto(2)` from inside the sandbox, performed by cordon on the
//! caller's own socket.
//!
//! The sandbox's network namespace has no route anywhere, so nothing leaves by itself. A TCP
//! connect to a non-loopback address is turned into a connect to cordon's transparent door
//! (inside the namespace), after recording where the program wanted to go; the door applies
//! the network policy. Loopback connects are performed as asked. A unix socket is reachable
//! by path (connect, or a datagram sent to it) only if the sandbox bound it in this run: its
//! identity is recorded at `bind`, which creates the socket's name like any other creation
//! (the rules decide). Where a socket lives says nothing (`/tmp` may be the host's), nor does
//! its age (ctime moves with `chmod`), so no host daemon's socket (tmux, ssh-agent, X11,
//! Docker, D-Bus, cordon's own approvals socket) is reachable. Like every path-guard call,
//! nothing is ever "continued": the address is read once and cordon acts on the caller's
//! socket (obtained with pidfd_getfd) itself, so rewriting the buffer afterwards changes
//! nothing.

use super::caller::Caller;
use super::handle::Guard;
use super::notif::{Listener, Notif};
use super::resolve::{Base, Resolver, Root};
use super::send;
use super::Op;
use rustix::fs::{AtFlags, Mode, OFlags};
use rustix::io::Errno;
use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// Where connections go and who hears about them.
pub struct NetRoute {
    /// cordon's transparent door inside the sandbox (IPv4, IPv6); `None`: loopback only.
    pub door: Option<(SocketAddrV4, SocketAddrV6)>,
    /// Records (client's local address, original destination) before the socket is connected
    /// to the door.
    pub register: Arc<dyn Fn(SocketAddr, SocketAddr) + Send + Sync>,
    /// Reports a refused connect (what, why).
    pub on_refused: Arc<dyn Fn(String, &'static str) + Send + Sync>,
    /// Early answer for a destination policy already refuses, so the program sees
    /// ECONNREFUSED at connect() instead of a reset after it (the door checks again anyway).
    pub precheck: Arc<dyn Fn(SocketAddr) -> bool + Send + Sync>,
}

/// The unix sockets the sandbox bound in this run, by identity (st_dev, st_ino) recorded at
/// `bind`. Only these are reachable by path: a socket's place (a private layer, a shared
/// `/tmp`, the workspace) or its age (ctime, which `chmod`/`utime` move) says nothing about
/// who made it. Shared by every command of one sandbox (`cordon exec` included).
#[derive(Default)]
pub struct OwnSockets(Mutex<HashSet<(u64, u64)>>);

impl OwnSockets {
    fn add(&self, id: (u64, u64)) {
        if let Ok(mut s) = self.0.lock() {
            s.insert(id);
        }
    }

    fn contains(&self, id: (u64, u64)) -> bool {
        self.0.lock().map(|s| s.contains(&id)).unwrap_or(false)
    }
}

/// Whether the routed syscall `nr` is a socket call served on its own unconfined thread.
pub(crate) fn is_socket_call(nr: i64) -> bool {
    matches!(
        nr,
        libc::SYS_connect
            | libc::SYS_bind
            | libc::SYS_sendto
            | libc::SYS_sendmsg
            | libc::SYS_sendmmsg
    )
}

impl NetRoute {
    /// Loopback and the sandbox's own unix sockets only.
    pub fn loopback_only() -> Self {
        Self {
            door: None,
            register: Arc::new(|_, _| {}),
            on_refused: Arc::new(|_, _| {}),
            precheck: Arc::new(|_| false),
        }
    }
}

/// Handles one socket notification (connect, bind, sendto, sendmsg, sendmmsg) on an
/// unconfined thread:
/// pidfd_getfd needs ptrace-mode access to the caller, which the guard's Landlocked workers
/// do not have.
pub(crate) fn handle(listener: &Listener, n: &Notif, caller: &Caller, guard: &Guard) {
    let none;
    let route = match &guard.cfg.net {
        Some(r) => r,
        None => {
            none = NetRoute::loopback_only();
            &none
        }
    };
    let valid = || listener.id_valid(n.id);
    let result = match n.nr {
        libc::SYS_bind => bind(n, caller, guard, &valid).map(|()| 0),
        libc::SYS_sendto => send::sendto(n, caller, guard, &valid),
        libc::SYS_sendmsg => send::sendmsg(n, caller, guard, &valid),
        libc::SYS_sendmmsg => send::sendmmsg(n, caller, guard, &valid),
        _ => connect(n, caller, guard, route, &valid).map(|()| 0),
    };
    if !listener.id_valid(n.id) {
        return;
    }
    match result {
        Ok(v) => listener.respond(n.id, v, 0),
        Err(e) => listener.respond(n.id, 0, e.raw_os_error()),
    }
}

fn connect(
    n: &Notif,
    caller: &Caller,
    guard: &Guard,
    route: &NetRoute,
    valid: &dyn Fn() -> bool,
) -> Result<(), Errno> {
    let (sock, raw, family) = socket_and_address(n, caller, valid)?;
    match family {
        libc::AF_INET | libc::AF_INET6 => {
            let dst = parse_inet(&raw).ok_or(Errno::INVAL)?;
            if is_local(dst.ip()) {
                return connect_raw(&sock, &raw);
            }
            let stream = socket_type(&sock)? == libc::SOCK_STREAM;
            match (&route.door, stream) {
                (Some(_), true) if !(route.precheck)(dst) => Err(Errno::CONNREFUSED),
                (Some((v4, v6)), true) => {
                    let door = if family == libc::AF_INET {
                        SocketAddr::V4(*v4)
                    } else {
                        SocketAddr::V6(*v6)
                    };
                    let local = ensure_bound(&sock, family)?;
                    (route.register)(local, dst);
                    connect_to(&sock, door)
                }
                // A UDP connect sends nothing (glibc's getaddrinfo does them to sort addresses), so
                // only refused TCP is worth a line in the audit log; no UDP can leave either way.
                _ => {
                    if stream {
                        (route.on_refused)(dst.to_string(), "no network");
                    }
                    Err(Errno::NETUNREACH)
                }
            }
        }
        libc::AF_UNIX => {
            // Unnamed or abstract (abstract names live in the sandbox's own network namespace).
            if raw.len() <= 2 || raw[2] == 0 {
                return connect_raw(&sock, &raw);
            }
            let path = sun_path(&raw);
            let target = own_socket(caller, guard, route, &path)?;
            // Connect to exactly the inode that was checked.
            let via = format!("/proc/thread-self/fd/{}", target.as_raw_fd());
            connect_unix_path(&sock, via.as_bytes())
        }
        _ => connect_raw(&sock, &raw),
    }
}

/// The path of a pathname `sockaddr_un` (up to its first NUL).
pub(super) fn sun_path(raw: &[u8]) -> Vec<u8> {
    raw.get(2..)
        .unwrap_or_default()
        .iter()
        .take_while(|b| **b != 0)
        .copied()
        .collect()
}

/// The socket file at `path` (as the caller names it), if the sandbox bound it in this run.
pub(super) fn own_socket(
    caller: &Caller,
    guard: &Guard,
    route: &NetRoute,
    path: &[u8],
) -> Result<OwnedFd, Errno> {
    let target = open_socket_file(caller, &guard.root, path)?;
    let st = rustix::fs::fstat(&target)?;
    if rustix::fs::FileType::from_raw_mode(st.st_mode) != rustix::fs::FileType::Socket {
        return Err(Errno::CONNREFUSED);
    }
    if !guard.cfg.own_sockets.contains((st.st_dev, st.st_ino)) {
        (route.on_refused)(
            String::from_utf8_lossy(path).into_owned(),
            "unix socket the sandbox did not bind",
        );
        return Err(Errno::CONNREFUSED);
    }
    Ok(target)
}

/// connect's and bind's arguments: the caller's socket, the address read once, its family.
fn socket_and_address(
    n: &Notif,
    caller: &Caller,
    valid: &dyn Fn() -> bool,
) -> Result<(OwnedFd, Vec<u8>, i32), Errno> {
    let fd = n.args[0] as u32 as i32;
    let len = (n.args[2] as u32 as usize).min(std::mem::size_of::<libc::sockaddr_storage>());
    let raw = caller.read_bytes(n.args[1], len)?;
    if !valid() {
        return Err(Errno::INTR);
    }
    let sock = caller_socket(caller.tid, fd)?;
    let family = match raw.get(..2) {
        Some(b) => u16::from_ne_bytes([b[0], b[1]]) as i32,
        None => return Err(Errno::INVAL),
    };
    Ok((sock, raw, family))
}

/// bind(2): a unix socket's name is created like any other name (decided by the rules,
/// inside the writable roots) and its identity recorded as the sandbox's own; every other
/// address is bound as asked, on the caller's own socket.
fn bind(n: &Notif, caller: &Caller, guard: &Guard, valid: &dyn Fn() -> bool) -> Result<(), Errno> {
    let (sock, raw, family) = socket_and_address(n, caller, valid)?;
    match family {
        libc::AF_UNIX if raw.len() > 2 && raw[2] != 0 => {}
        libc::AF_INET | libc::AF_INET6 => {
            // The bind is ours, and we may bind low ports in the sandbox's namespace; the
            // caller, unprivileged, may not.
            let port = parse_inet(&raw).map_or(0, |a| a.port());
            if port != 0 && port < 1024 {
                return Err(Errno::ACCESS);
            }
            return bind_raw(&sock, &raw);
        }
        _ => return bind_raw(&sock, &raw),
    }
    let path = sun_path(&raw);
    // Renames, links and unlinks wait: the name bound is the name whose identity is recorded.
    let _tree = guard.exclusive();
    let mut res = Resolver::new(&guard.root, caller, valid);
    let p = res.parent(Base::Cwd, &path)?;
    if p.is_dot() || p.trailing_slash {
        return Err(Errno::INVAL);
    }
    let name = std::ffi::OsStr::from_bytes(&p.name);
    if rustix::fs::statat(&p.dir.fd, name, AtFlags::SYMLINK_NOFOLLOW).is_ok() {
        return Err(Errno::ADDRINUSE);
    }
    let full = p.full();
    match guard.decide(Op::Mknod, &full, Some(&p.dir.path), caller.tid) {
        Ok(()) => {}
        Err(Errno::XDEV) => return Err(Errno::ACCESS),
        Err(e) => return Err(e),
    }
    let umask = caller.status()?.umask;
    bind_in(&sock, &p.dir.fd, &p.name, umask)?;
    let st = rustix::fs::statat(&p.dir.fd, name, AtFlags::SYMLINK_NOFOLLOW)?;
    guard.cfg.own_sockets.add((st.st_dev, st.st_ino));
    Ok(())
}

/// Binds `sock` to `name` in the directory `dir`: from this thread only, with the caller's
/// umask, so the name is created exactly there whatever its length.
fn bind_in(sock: &OwnedFd, dir: &OwnedFd, name: &[u8], umask: u32) -> Result<(), Errno> {
    // SAFETY: unshare(CLONE_FS) gives this (per-call) thread its own cwd and umask; it
    // touches no memory.
    if unsafe { libc::unshare(libc::CLONE_FS) } != 0 {
        return Err(last());
    }
    rustix::process::fchdir(dir)?;
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(umask & 0o777));
    let mut b = vec![0u8; 2 + name.len() + 1];
    b[..2].copy_from_slice(&(libc::AF_UNIX as u16).to_ne_bytes());
    b[2..2 + name.len()].copy_from_slice(name);
    if b.len() > std::mem::size_of::<libc::sockaddr_un>() {
        return Err(Errno::NAMETOOLONG);
    }
    bind_raw(sock, &b)
}

fn bind_raw(sock: &OwnedFd, raw: &[u8]) -> Result<(), Errno> {
    with_addr(libc::bind, sock, raw)
}

/// `call` (bind or connect) of `sock` with the address bytes `raw`.
fn with_addr(
    call: unsafe extern "C" fn(libc::c_int, *const libc::sockaddr, libc::socklen_t) -> libc::c_int,
    sock: &OwnedFd,
    raw: &[u8],
) -> Result<(), Errno> {
    let (storage, n) = to_storage(raw);
    // SAFETY: storage holds n valid bytes of a sockaddr; the kernel validates the contents.
    let ret = unsafe {
        call(
            sock.as_raw_fd(),
            (&storage as *const libc::sockaddr_storage).cast(),
            n as libc::socklen_t,
        )
    };
    if ret < 0 {
        Err(last())
    } else {
        Ok(())
    }
}

pub(super) fn unix_addr(path: &[u8]) -> Vec<u8> {
    let mut b = vec![0u8; 2 + path.len() + 1];
    b[..2].copy_from_slice(&(libc::AF_UNIX as u16).to_ne_bytes());
    b[2..2 + path.len()].copy_from_slice(path);
    b
}

fn is_local(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback() || v4.is_unspecified(),
        IpAddr::V6(v6) => {
            v6.is_loopback()
                || v6.is_unspecified()
                || v6
                    .to_ipv4_mapped()
                    .is_some_and(|v4| v4.is_loopback() || v4.is_unspecified())
        }
    }
}

fn parse_inet(raw: &[u8]) -> Option<SocketAddr> {
    let family = u16::from_ne_bytes([*raw.first()?, *raw.get(1)?]) as i32;
    let port = u16::from_be_bytes([*raw.get(2)?, *raw.get(3)?]);
    if family == libc::AF_INET {
        let b = raw.get(4..8)?;
        return Some(SocketAddr::V4(SocketAddrV4::new(
            Ipv4Addr::new(b[0], b[1], b[2], b[3]),
            port,
        )));
    }
    let b: [u8; 16] = raw.get(8..24)?.try_into().ok()?;
    let v6 = Ipv6Addr::from(b);
    // An IPv4-mapped destination is the IPv4 address it maps.
    Some(match v6.to_ipv4_mapped() {
        Some(v4) => SocketAddr::V4(SocketAddrV4::new(v4, port)),
        None => SocketAddr::V6(SocketAddrV6::new(v6, port, 0, 0)),
    })
}

/// The caller's socket, duplicated into this process.
pub(super) fn caller_socket(tid: i32, fd: i32) -> Result<OwnedFd, Errno> {
    let tgid = rustix::process::Pid::from_raw(read_tgid(tid)?).ok_or(Errno::SRCH)?;
    let pidfd = rustix::process::pidfd_open(tgid, rustix::process::PidfdFlags::empty())?;
    super::take_listener(&pidfd, fd).map_err(|e| {
        Errno::from_raw_os_error(match e.raw_os_error().unwrap_or(libc::EBADF) {
            libc::EPERM => libc::EACCES,
            e => e,
        })
    })
}

fn read_tgid(tid: i32) -> Result<i32, Errno> {
    let text = std::fs::read_to_string(format!("/proc/{tid}/status")).map_err(|_| Errno::SRCH)?;
    text.lines()
        .find_map(|l| l.strip_prefix("Tgid:"))
        .and_then(|v| v.trim().parse().ok())
        .ok_or(Errno::SRCH)
}

fn socket_type(sock: &OwnedFd) -> Result<i32, Errno> {
    let mut ty: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: ty/len are valid out-pointers of the sizes given.
    let ret = unsafe {
        libc::getsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_TYPE,
            (&mut ty as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    if ret < 0 {
        return Err(last());
    }
    Ok(ty)
}

pub(super) fn last() -> Errno {
    Errno::from_raw_os_error(
        std::io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(libc::EIO),
    )
}

/// `raw` copied into a sockaddr_storage, with its length (cut to the storage's size).
pub(super) fn to_storage(raw: &[u8]) -> (libc::sockaddr_storage, usize) {
    let mut storage: libc::sockaddr_storage = unsafe_zeroed();
    let n = raw.len().min(std::mem::size_of::<libc::sockaddr_storage>());
    // SAFETY: copying n <= sizeof(storage) bytes into a local sockaddr_storage.
    unsafe {
        std::ptr::copy_nonoverlapping(
            raw.as_ptr(),
            (&mut storage as *mut libc::sockaddr_storage).cast::<u8>(),
            n,
        )
    };
    (storage, n)
}

fn connect_raw(sock: &OwnedFd, raw: &[u8]) -> Result<(), Errno> {
    with_addr(libc::connect, sock, raw)
}

fn unsafe_zeroed() -> libc::sockaddr_storage {
    // SAFETY: sockaddr_storage is plain old data; all-zero is a valid value.
    unsafe { std::mem::zeroed() }
}

fn sockaddr_bytes(addr: SocketAddr) -> Vec<u8> {
    match addr {
        SocketAddr::V4(a) => {
            let mut b = vec![0u8; std::mem::size_of::<libc::sockaddr_in>()];
            b[..2].copy_from_slice(&(libc::AF_INET as u16).to_ne_bytes());
            b[2..4].copy_from_slice(&a.port().to_be_bytes());
            b[4..8].copy_from_slice(&a.ip().octets());
            b
        }
        SocketAddr::V6(a) => {
            let mut b = vec![0u8; std::mem::size_of::<libc::sockaddr_in6>()];
            b[..2].copy_from_slice(&(libc::AF_INET6 as u16).to_ne_bytes());
            b[2..4].copy_from_slice(&a.port().to_be_bytes());
            b[8..24].copy_from_slice(&a.ip().octets());
            b
        }
    }
}

fn connect_to(sock: &OwnedFd, addr: SocketAddr) -> Result<(), Errno> {
    connect_raw(sock, &sockaddr_bytes(addr))
}

fn connect_unix_path(sock: &OwnedFd, path: &[u8]) -> Result<(), Errno> {
    connect_raw(sock, &unix_addr(path))
}

/// The socket's local address, binding it to an ephemeral loopback port first if it has none
/// (the door identifies the connection by it).
fn ensure_bound(sock: &OwnedFd, family: i32) -> Result<SocketAddr, Errno> {
    let local = local_addr(sock)?;
    if local.port() != 0 {
        return Ok(local);
    }
    let any = if family == libc::AF_INET {
        SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0))
    } else {
        SocketAddr::V6(SocketAddrV6::new(Ipv6Addr::LOCALHOST, 0, 0, 0))
    };
    let b = sockaddr_bytes(any);
    // SAFETY: b holds a valid sockaddr of its length.
    let ret = unsafe {
        libc::bind(
            sock.as_raw_fd(),
            b.as_ptr().cast(),
            b.len() as libc::socklen_t,
        )
    };
    if ret < 0 {
        return Err(last());
    }
    local_addr(sock)
}

fn local_addr(sock: &OwnedFd) -> Result<SocketAddr, Errno> {
    let mut storage = unsafe_zeroed();
    let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    // SAFETY: storage/len are valid out-pointers.
    let ret = unsafe {
        libc::getsockname(
            sock.as_raw_fd(),
            (&mut storage as *mut libc::sockaddr_storage).cast(),
            &mut len,
        )
    };
    if ret < 0 {
        return Err(last());
    }
    // SAFETY: the kernel wrote `len` bytes of a sockaddr into storage.
    let bytes = unsafe {
        std::slice::from_raw_parts(
            (&storage as *const libc::sockaddr_storage).cast::<u8>(),
            len as usize,
        )
    };
    parse_inet(bytes).ok_or(Errno::INVAL)
}

/// Opens (O_PATH) the socket file `path` as the caller would see it, never leaving the sandbox
/// root: absolute paths from the root, relative ones from the caller's working directory, both
/// with RESOLVE_IN_ROOT semantics.
fn open_socket_file(caller: &Caller, root: &Root, path: &[u8]) -> Result<OwnedFd, Errno> {
    let (base, rel): (OwnedFd, PathBuf) = if path.first() == Some(&b'/') {
        (
            rustix::fs::openat(
                &root.fd,
                ".",
                OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
            )?,
            bytes_path(&path[1..]),
        )
    } else {
        (caller.open_magic("cwd")?, bytes_path(path))
    };
    let how = rustix::fs::ResolveFlags::IN_ROOT | rustix::fs::ResolveFlags::NO_MAGICLINKS;
    rustix::fs::openat2(
        &base,
        &rel,
        OFlags::PATH | OFlags::CLOEXEC,
        Mode::empty(),
        how,
    )
}

fn bytes_path(b: &[u8]) -> PathBuf {
    use std::os::unix::ffi::OsStrExt;
    let b = if b.is_empty() { b"." as &[u8] } else { b };
    PathBuf::from(std::ffi::OsStr::from_bytes(b))
}
