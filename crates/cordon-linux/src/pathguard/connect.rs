//! `connect(2)` from inside the sandbox, performed by cordon on the caller's own socket.
//!
//! The sandbox's network namespace has no route anywhere, so nothing leaves by itself. A TCP
//! connect to a non-loopback address is turned into a connect to cordon's transparent door
//! (inside the namespace), after recording where the program wanted to go; the door applies
//! the network policy. Loopback connects are performed as asked. A unix-socket connect is
//! resolved inside the sandbox's root and allowed only to sockets in the sandbox's private
//! layer, so no host daemon's socket (Docker, D-Bus, an agent's IPC) is reachable through the
//! read-only view of the host. Like every path-guard call, nothing is ever "continued": the
//! address is read once and cordon connects the caller's socket (obtained with pidfd_getfd)
//! itself, so rewriting the buffer afterwards changes nothing.

use super::caller::Caller;
use super::notif::{Listener, Notif};
use super::resolve::Root;
use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::PathBuf;
use std::sync::Arc;

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
    /// Writable places shared with the host (workspace, allow_write): a unix socket there is
    /// reachable only if it was created after `since` (unix nanoseconds), i.e. by the sandbox,
    /// not by a host daemon that was already listening there.
    pub shared_roots: Vec<PathBuf>,
    pub since: i128,
}

impl NetRoute {
    /// Loopback and the sandbox's own unix sockets only.
    pub fn loopback_only() -> Self {
        Self {
            door: None,
            register: Arc::new(|_, _| {}),
            on_refused: Arc::new(|_, _| {}),
            precheck: Arc::new(|_| false),
            shared_roots: Vec::new(),
            since: i128::MAX,
        }
    }
}

/// Handles one connect notification (on an unconfined thread: pidfd_getfd needs ptrace-mode
/// access to the caller, which the guard's Landlocked workers do not have).
pub(crate) fn handle(
    listener: &Listener,
    n: &Notif,
    caller: &Caller,
    root: &Root,
    route: &NetRoute,
    private_dev: u64,
) {
    let result = connect(n, caller, root, route, private_dev, &|| {
        listener.id_valid(n.id)
    });
    if !listener.id_valid(n.id) {
        return;
    }
    match result {
        Ok(()) => listener.respond(n.id, 0, 0),
        Err(e) => listener.respond(n.id, 0, e.raw_os_error()),
    }
}

fn connect(
    n: &Notif,
    caller: &Caller,
    root: &Root,
    route: &NetRoute,
    private_dev: u64,
    valid: &dyn Fn() -> bool,
) -> Result<(), Errno> {
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
            let path: Vec<u8> = raw[2..].iter().take_while(|b| **b != 0).copied().collect();
            let target = open_socket_file(caller, root, &path)?;
            let st = rustix::fs::fstat(&target)?;
            let is_sock =
                rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::Socket;
            if !is_sock {
                return Err(Errno::CONNREFUSED);
            }
            let own = st.st_dev == private_dev
                || (ctime_ns(&st) > route.since && under(&target, &route.shared_roots));
            if !own {
                (route.on_refused)(
                    String::from_utf8_lossy(&path).into_owned(),
                    "unix socket outside the sandbox",
                );
                return Err(Errno::CONNREFUSED);
            }
            // Connect to exactly the inode that was checked.
            let via = format!("/proc/thread-self/fd/{}", target.as_raw_fd());
            connect_unix_path(&sock, via.as_bytes())
        }
        _ => connect_raw(&sock, &raw),
    }
}

/// Whether the object behind `fd` lies beneath one of `roots` (sandbox paths; the kernel
/// prints an fd's path as seen in the sandbox's mount namespace).
fn under(fd: &OwnedFd, roots: &[PathBuf]) -> bool {
    let Ok(p) = std::fs::read_link(format!("/proc/thread-self/fd/{}", fd.as_raw_fd())) else {
        return false;
    };
    roots.iter().any(|r| p.starts_with(r))
}

/// A file's change time in unix nanoseconds (seconds alone would admit a host socket made in
/// the same second the sandbox started).
fn ctime_ns(st: &rustix::fs::Stat) -> i128 {
    i128::from(st.st_ctime) * 1_000_000_000 + i128::from(st.st_ctime_nsec)
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
fn caller_socket(tid: i32, fd: i32) -> Result<OwnedFd, Errno> {
    let tgid = read_tgid(tid)?;
    // SAFETY: pidfd_open takes integers and returns a new fd or -1.
    let pidfd = unsafe { libc::syscall(libc::SYS_pidfd_open, tgid, 0) };
    if pidfd < 0 {
        return Err(Errno::from_raw_os_error(
            std::io::Error::last_os_error()
                .raw_os_error()
                .unwrap_or(libc::ESRCH),
        ));
    }
    // SAFETY: pidfd is a fresh descriptor we own.
    let pidfd = unsafe { OwnedFd::from_raw_fd(pidfd as i32) };
    // SAFETY: pidfd_getfd takes integers and returns a new fd or -1.
    let dup = unsafe { libc::syscall(libc::SYS_pidfd_getfd, pidfd.as_raw_fd(), fd, 0) };
    if dup < 0 {
        let e = std::io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(libc::EBADF);
        return Err(Errno::from_raw_os_error(if e == libc::EPERM {
            libc::EACCES
        } else {
            e
        }));
    }
    // SAFETY: dup is a fresh descriptor we own.
    Ok(unsafe { OwnedFd::from_raw_fd(dup as i32) })
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

fn last() -> Errno {
    Errno::from_raw_os_error(
        std::io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(libc::EIO),
    )
}

fn connect_raw(sock: &OwnedFd, raw: &[u8]) -> Result<(), Errno> {
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
    // SAFETY: storage holds n valid bytes of a sockaddr; the kernel validates the contents.
    let ret = unsafe {
        libc::connect(
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
    let mut b = vec![0u8; 2 + path.len() + 1];
    b[..2].copy_from_slice(&(libc::AF_UNIX as u16).to_ne_bytes());
    b[2..2 + path.len()].copy_from_slice(path);
    connect_raw(sock, &b)
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
