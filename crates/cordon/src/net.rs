//! The network door, wired: policy and flags into `cordon-net`'s configuration, the proxy
//! environment the sandbox sees, `--host-port` forwarders, and `cordon connect` (the
//! ProxyCommand git/ssh use inside).

use crate::audit::Audit;
use cordon_linux::spec::{DoorSocket, HTTP_PROXY_PORT, SOCKS_PORT};
use cordon_net::{Door, DoorOptions, Event, Listeners, NetConfig, NetPolicy, OriginalDst, Unknown};
use cordon_policy::{Effective, Tier, UnknownAction};
use serde_json::json;
use std::ffi::OsString;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::time::Duration;

/// Network flags of `cordon run` and `cordon mcp` that are not policy (`--allow-domain`/
/// `--deny-domain` are: they enter the merge as the command-line tier).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct NetFlags {
    /// Let the sandbox reach the host's 127.0.0.1:PORT at its own 127.0.0.1:PORT (repeatable;
    /// for `cordon mcp` it turns the network door on)
    #[arg(long = "host-port", value_name = "PORT")]
    pub host_ports: Vec<u16>,
}

/// The door's configuration, from the merged policy. Managed denies beat everything, so they
/// are handed over on their own.
pub fn config(eff: &Effective) -> NetConfig {
    let n = &eff.network;
    let (managed_deny, deny) = n
        .deny
        .iter()
        .cloned()
        .partition(|r| r.origin.tier == Tier::Managed);
    NetConfig {
        allow: n.allow.clone(),
        deny,
        allow_cidrs: n.allow_cidrs.clone(),
        hosts: n
            .hosts
            .iter()
            .map(|r| (r.value.0.clone(), r.value.1, r.origin.to_string()))
            .collect(),
        unknown: match n.unknown.value {
            UnknownAction::Ask => Unknown::Ask,
            UnknownAction::Deny => Unknown::Deny,
        },
        managed_deny,
    }
}

/// Variables that point proxy-aware programs at the door.
pub fn proxy_env() -> Vec<(OsString, OsString)> {
    let http = format!("http://127.0.0.1:{HTTP_PROXY_PORT}");
    let socks = format!("socks5h://127.0.0.1:{SOCKS_PORT}");
    let no_proxy = "localhost,127.0.0.1,::1".to_string();
    // cordon's own binary, bound read-only at a fixed path inside (see mounts::SELF_EXE).
    let exe = cordon_linux::mounts::SELF_EXE;
    let java = format!(
        "-Dhttp.proxyHost=127.0.0.1 -Dhttp.proxyPort={p} -Dhttps.proxyHost=127.0.0.1 -Dhttps.proxyPort={p} \
         -Dhttp.nonProxyHosts=localhost|127.0.0.1",
        p = HTTP_PROXY_PORT
    );
    let pairs = [
        ("HTTP_PROXY", http.clone()),
        ("HTTPS_PROXY", http.clone()),
        ("http_proxy", http.clone()),
        ("https_proxy", http),
        ("ALL_PROXY", socks.clone()),
        ("all_proxy", socks),
        ("NO_PROXY", no_proxy.clone()),
        ("no_proxy", no_proxy),
        ("NODE_USE_ENV_PROXY", "1".into()),
        ("JAVA_TOOL_OPTIONS", java),
        (
            "GIT_SSH_COMMAND",
            format!("ssh -o ProxyCommand='{exe} connect %h %p'"),
        ),
    ];
    pairs
        .into_iter()
        .map(|(k, v)| (k.into(), v.into()))
        .collect()
}

/// What the door collects while the sandbox starts, and the door once started.
#[derive(Default)]
pub struct DoorParts {
    pub listeners: Option<Listeners>,
    pub host_ports: Vec<TcpListener>,
}

impl DoorParts {
    pub fn add(&mut self, kind: DoorSocket, fd: OwnedFd) {
        let l = self.listeners.get_or_insert_with(|| Listeners {
            http: vec![],
            socks: vec![],
            transparent: vec![],
            dns_udp: vec![],
            dns_tcp: vec![],
        });
        match kind {
            DoorSocket::Http => l.http.push(fd.into()),
            DoorSocket::Socks => l.socks.push(fd.into()),
            DoorSocket::Transparent => l.transparent.push(fd.into()),
            DoorSocket::DnsUdp => l.dns_udp.push(fd.into()),
            DoorSocket::DnsTcp => l.dns_tcp.push(fd.into()),
            DoorSocket::HostPort => self.host_ports.push(fd.into()),
            // Only ever sent on the --publish channel, never here.
            DoorSocket::Published => drop(fd),
        }
    }
}

/// Starts the door; `opts` carries the approver when the policy may ask.
/// Starts the door on the first sign of network use (a connection or DNS query waiting on one
/// of its sockets), not at start-up: a command that never touches the network pays for no
/// async runtime. Until then the sockets' backlogs hold what arrives.
pub fn start_door_when_needed(
    listeners: Listeners,
    policy: Arc<NetPolicy>,
    dst: Arc<OriginalDst>,
    audit: Audit,
    opts: DoorOptions,
    cell: Arc<std::sync::Mutex<Option<Door>>>,
) -> Result<(), String> {
    use std::os::fd::AsFd;
    let fds: Vec<OwnedFd> = listeners
        .http
        .iter()
        .map(|l| l.as_fd().try_clone_to_owned())
        .chain(
            listeners
                .socks
                .iter()
                .map(|l| l.as_fd().try_clone_to_owned()),
        )
        .chain(
            listeners
                .transparent
                .iter()
                .map(|l| l.as_fd().try_clone_to_owned()),
        )
        .chain(
            listeners
                .dns_udp
                .iter()
                .map(|l| l.as_fd().try_clone_to_owned()),
        )
        .chain(
            listeners
                .dns_tcp
                .iter()
                .map(|l| l.as_fd().try_clone_to_owned()),
        )
        .collect::<Result<_, _>>()
        .map_err(|e| format!("cannot watch the network door: {e}"))?;
    std::thread::Builder::new()
        .name("door-wait".into())
        .spawn(move || {
            let mut polls: Vec<rustix::event::PollFd> = fds
                .iter()
                .map(|f| rustix::event::PollFd::new(f, rustix::event::PollFlags::IN))
                .collect();
            while let Err(rustix::io::Errno::INTR) = rustix::event::poll(&mut polls, None) {}
            match start_door(listeners, policy, dst, audit.clone(), opts) {
                Ok(door) => {
                    if let Ok(mut c) = cell.lock() {
                        *c = Some(door);
                    }
                }
                Err(e) => audit.event("net", json!({"kind": "error", "reason": e})),
            }
        })
        .map(drop)
        .map_err(|e| format!("cannot start the network door: {e}"))
}

/// The door's name map for `ip`. A synthetic address can only be known from a DNS answer,
/// which the door gives once started; it may still be storing itself, so wait briefly.
pub fn synthetic_names(
    cell: &std::sync::Mutex<Option<Door>>,
    ip: std::net::IpAddr,
) -> Option<Arc<cordon_net::Synth>> {
    let tries = if cordon_net::Synth::is_synthetic(ip) {
        1000
    } else {
        1
    };
    for _ in 0..tries {
        if let Some(s) = cell
            .lock()
            .ok()
            .and_then(|d| d.as_ref().map(|d| d.synthetic()))
        {
            return Some(s);
        }
        if tries > 1 {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    None
}

pub fn start_door(
    listeners: Listeners,
    policy: Arc<NetPolicy>,
    dst: Arc<OriginalDst>,
    audit: Audit,
    opts: cordon_net::DoorOptions,
) -> Result<Door, String> {
    let on_event = Arc::new(move |e: Event| {
        audit.event(
            "net",
            json!({
                "kind": e.kind, "via": e.via, "target": e.target, "port": e.port,
                "decision": e.decision, "rule": e.rule, "reason": e.reason, "fix": e.fix,
                "bytes_up": e.bytes_up, "bytes_down": e.bytes_down,
            }),
        );
    });
    Door::start_with(listeners, policy, dst, on_event, opts)
        .map_err(|e| format!("cannot start the network door: {e}"))
}

/// Serves `--host-port` forwarders: each connection inside is joined to the host's
/// 127.0.0.1 at the same port.
pub fn serve_host_ports(listeners: Vec<TcpListener>, audit: Audit) {
    for l in listeners {
        let audit = audit.clone();
        let _ = std::thread::Builder::new().name("host-port".into()).spawn(move || {
            let Ok(port) = l.local_addr().map(|a| a.port()) else { return };
            for conn in l.incoming() {
                let Ok(inside) = conn else { continue };
                let target = SocketAddr::from(([127, 0, 0, 1], port));
                match TcpStream::connect_timeout(&target, Duration::from_secs(5)) {
                    Ok(outside) => {
                        audit.event("net", json!({"kind": "connect", "via": "host-port", "target": "127.0.0.1", "port": port, "decision": "allow", "rule": format!("--host-port {port}")}));
                        splice(inside, outside);
                    }
                    Err(_) => {
                        let _ = inside.shutdown(Shutdown::Both);
                    }
                }
            }
        });
    }
}

/// Host listeners for `--publish`, bound before the sandbox starts (a busy port is an error
/// then, not later).
pub fn bind_published(ports: &[u16]) -> Result<Vec<(u16, TcpListener)>, String> {
    ports
        .iter()
        .map(|p| {
            TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], *p)))
                .map(|l| (*p, l))
                .map_err(|e| format!("cannot publish port {p} on the host's 127.0.0.1: {e}"))
        })
        .collect()
}

/// Serves `--publish`: each host connection gets a fresh socket made by the sandbox's init
/// inside its network namespace, connected to the sandbox's 127.0.0.1 at the same port.
pub fn serve_published(listeners: Vec<(u16, TcpListener)>, factory: OwnedFd, audit: Audit) {
    let factory = Arc::new(std::sync::Mutex::new(factory));
    for (port, l) in listeners {
        let factory = Arc::clone(&factory);
        let audit = audit.clone();
        let _ = std::thread::Builder::new().name("publish".into()).spawn(move || {
            for conn in l.incoming() {
                let Ok(outside) = conn else { continue };
                match inside_connection(&factory, port) {
                    Ok(inside) => {
                        audit.event("net", json!({"kind": "connect", "via": "publish", "target": "127.0.0.1", "port": port, "decision": "allow", "rule": format!("--publish {port}")}));
                        splice(outside, inside);
                    }
                    Err(_) => {
                        let _ = outside.shutdown(Shutdown::Both);
                    }
                }
            }
        });
    }
}

fn inside_connection(factory: &std::sync::Mutex<OwnedFd>, port: u16) -> std::io::Result<TcpStream> {
    use cordon_linux::control::{self, Msg};
    use std::os::fd::AsFd;
    let sock = {
        let f = factory
            .lock()
            .map_err(|_| std::io::Error::other("socket channel poisoned"))?;
        rustix::io::write(&*f, &[4])?;
        match control::recv(f.as_fd())? {
            Some(Msg::Socket(DoorSocket::Published, s)) => s,
            _ => {
                return Err(std::io::Error::other(
                    "the sandbox did not hand over a socket",
                ))
            }
        }
    };
    let addr = rustix::net::SocketAddrV4::new(std::net::Ipv4Addr::LOCALHOST, port);
    rustix::net::connect(&sock, &addr)?;
    Ok(TcpStream::from(sock))
}

/// Copies both ways on two threads until either side closes.
fn splice(a: TcpStream, b: TcpStream) {
    let (Ok(a2), Ok(b2)) = (a.try_clone(), b.try_clone()) else {
        return;
    };
    let pump = |mut from: TcpStream, mut to: TcpStream| {
        move || {
            let _ = std::io::copy(&mut from, &mut to);
            let _ = to.shutdown(Shutdown::Write);
        }
    };
    let _ = std::thread::Builder::new()
        .name("splice".into())
        .spawn(pump(a, b2));
    let _ = std::thread::Builder::new()
        .name("splice".into())
        .spawn(pump(b, a2));
}

/// `cordon connect HOST PORT`: a ProxyCommand for ssh inside the sandbox. Opens a SOCKS5
/// connection through the door (the name is resolved and checked outside) and joins it to
/// stdin/stdout.
pub fn connect_command(host: &str, port: u16) -> i32 {
    match socks_connect(host, port) {
        Ok(stream) => {
            let Ok(mut up) = stream.try_clone() else {
                return 1;
            };
            let writer = std::thread::spawn(move || {
                let _ = std::io::copy(&mut std::io::stdin().lock(), &mut up);
                let _ = up.shutdown(Shutdown::Write);
            });
            let mut down = stream;
            let _ = std::io::copy(&mut down, &mut std::io::stdout().lock());
            let _ = std::io::stdout().flush();
            drop(writer);
            0
        }
        Err(e) => {
            eprintln!("cordon connect: {host}:{port}: {e}");
            1
        }
    }
}

fn socks_connect(host: &str, port: u16) -> Result<TcpStream, String> {
    let door = SocketAddr::from(([127, 0, 0, 1], SOCKS_PORT));
    let mut s = TcpStream::connect_timeout(&door, Duration::from_secs(5)).map_err(|e| {
        format!("no network door in this sandbox ({e}); is this running inside `cordon run`?")
    })?;
    let io = |e: std::io::Error| e.to_string();
    s.write_all(&[5, 1, 0]).map_err(io)?;
    let mut greet = [0u8; 2];
    s.read_exact(&mut greet).map_err(io)?;
    if greet != [5, 0] {
        return Err("the door refused the SOCKS5 greeting".into());
    }
    let name = host.as_bytes();
    let len = u8::try_from(name.len()).map_err(|_| "host name too long".to_string())?;
    let mut req = vec![5, 1, 0, 3, len];
    req.extend_from_slice(name);
    req.extend_from_slice(&port.to_be_bytes());
    s.write_all(&req).map_err(io)?;
    let mut head = [0u8; 4];
    s.read_exact(&mut head).map_err(io)?;
    if head[1] != 0 {
        return Err(format!(
            "refused by cordon's network policy (SOCKS5 reply {}); see `cordon run --audit`",
            head[1]
        ));
    }
    let skip = match head[3] {
        1 => 4 + 2,
        4 => 16 + 2,
        3 => {
            let mut l = [0u8; 1];
            s.read_exact(&mut l).map_err(io)?;
            l[0] as usize + 2
        }
        _ => return Err("malformed SOCKS5 reply".into()),
    };
    let mut rest = vec![0u8; skip];
    s.read_exact(&mut rest).map_err(io)?;
    Ok(s)
}
