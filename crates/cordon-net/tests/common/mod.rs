//! Test harness: a door on ephemeral loopback listeners, recording upstream
//! servers, and blocking clients with timeouts.
#![allow(dead_code)]

use cordon_net::{Door, DoorOptions, Event, Listeners, NetConfig, NetPolicy, OriginalDst};
use cordon_policy::{CidrPattern, DomainPattern, Origin, Rule, Tier};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub const T: Duration = Duration::from_secs(10);

/// An upstream server that counts connections and echoes (or answers HTTP).
pub struct Upstream {
    pub addr: SocketAddr,
    pub accepted: Arc<AtomicUsize>,
    pub seen: Arc<Mutex<Vec<u8>>>,
}

impl Upstream {
    pub fn count(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    /// How many bytes reached the server, over all connections.
    pub fn seen_text(&self) -> String {
        String::from_utf8_lossy(&self.seen.lock().unwrap_or_else(|p| p.into_inner())).into_owned()
    }

    pub fn bytes(&self) -> usize {
        self.seen.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

/// Echo server: echoes everything, records what it got.
pub fn echo() -> Upstream {
    serve(|mut s, seen| {
        let mut buf = [0u8; 65536];
        while let Ok(n) = s.read(&mut buf) {
            if n == 0 {
                break;
            }
            seen.lock()
                .unwrap_or_else(|p| p.into_inner())
                .extend_from_slice(&buf[..n]);
            if s.write_all(&buf[..n]).is_err() {
                break;
            }
        }
    })
}

/// Reads one request head and records it in `seen`; `None` at end of stream.
fn record_head(s: &mut TcpStream, seen: &Mutex<Vec<u8>>) -> Option<()> {
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && head.len() < 65536 {
        match s.read(&mut b) {
            Ok(1) => head.push(b[0]),
            _ => return None,
        }
    }
    seen.lock()
        .unwrap_or_else(|p| p.into_inner())
        .extend_from_slice(&head);
    Some(())
}

/// HTTP server: reads one head, answers `hello` with Connection: close.
pub fn http() -> Upstream {
    serve(|mut s, seen| {
        if record_head(&mut s, &seen).is_none() {
            return;
        }
        let _ =
            s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello");
    })
}

/// Keep-alive HTTP server: answers every request head (no bodies) with `ok`, records them.
pub fn http_keepalive() -> Upstream {
    serve(|mut s, seen| loop {
        if record_head(&mut s, &seen).is_none() {
            return;
        }
        if s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            .is_err()
        {
            return;
        }
    })
}

fn serve(f: fn(TcpStream, Arc<Mutex<Vec<u8>>>)) -> Upstream {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind upstream");
    let addr = l.local_addr().expect("addr");
    let accepted = Arc::new(AtomicUsize::new(0));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (a, sn) = (accepted.clone(), seen.clone());
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            a.fetch_add(1, Ordering::SeqCst);
            let sn = sn.clone();
            let _ = s.set_read_timeout(Some(T));
            std::thread::spawn(move || f(s, sn));
        }
    });
    Upstream {
        addr,
        accepted,
        seen,
    }
}

pub struct Rig {
    pub door: Option<Door>,
    pub http: SocketAddr,
    pub socks: SocketAddr,
    pub transparent: SocketAddr,
    pub dns_udp: SocketAddr,
    pub dns_tcp: SocketAddr,
    pub events: Arc<Mutex<Vec<Event>>>,
    pub dst: Arc<OriginalDst>,
}

impl Rig {
    pub fn events(&self) -> Vec<Event> {
        self.events
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
    pub fn synth(&self) -> Arc<cordon_net::Synth> {
        self.door.as_ref().expect("door running").synthetic()
    }
    /// Waits (bounded) until an event satisfies `f`.
    pub fn wait_event(&self, f: impl Fn(&Event) -> bool) -> Event {
        for _ in 0..200 {
            if let Some(e) = self.events().into_iter().find(|e| f(e)) {
                return e;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        panic!("event not seen; events: {:#?}", self.events());
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        if let Some(d) = self.door.take() {
            d.shutdown();
        }
    }
}

pub fn rules(v: &[&str]) -> Vec<Rule<DomainPattern>> {
    v.iter()
        .map(|p| {
            Rule::new(
                DomainPattern::parse(p).expect("valid test pattern"),
                Origin::bare(Tier::User),
            )
        })
        .collect()
}

pub fn cidrs(v: &[&str]) -> Vec<Rule<CidrPattern>> {
    v.iter()
        .map(|p| {
            Rule::new(
                CidrPattern::parse(p).expect("valid test CIDR"),
                Origin::bare(Tier::User),
            )
        })
        .collect()
}

/// Names in `.test` map to 127.0.0.1; 127.0.0.0/8 is allowed on every port
/// when `loopback_cidr` (tests only).
pub fn config(allow: &[&str], deny: &[&str], loopback_cidr: bool) -> NetConfig {
    let lo = "127.0.0.1".parse().expect("ip");
    NetConfig {
        allow: rules(allow),
        deny: rules(deny),
        allow_cidrs: if loopback_cidr {
            cidrs(&["127.0.0.0/8:*"])
        } else {
            vec![]
        },
        hosts: [
            "echo.test",
            "web.test",
            "other.test",
            "evil.test",
            "rebind.test",
        ]
        .iter()
        .map(|n| (n.to_string(), lo, "test".to_string()))
        .collect(),
        ..NetConfig::default()
    }
}

pub fn rig(cfg: NetConfig, opts: DoorOptions) -> Rig {
    let tcp = || TcpListener::bind("127.0.0.1:0").expect("bind");
    let (h, s, t, dt) = (tcp(), tcp(), tcp(), tcp());
    let du = UdpSocket::bind("127.0.0.1:0").expect("bind udp");
    let addr = |l: &TcpListener| l.local_addr().expect("addr");
    let (http, socks, transparent, dns_tcp) = (addr(&h), addr(&s), addr(&t), addr(&dt));
    let dns_udp = du.local_addr().expect("addr");
    let events = Arc::new(Mutex::new(Vec::new()));
    let ev = events.clone();
    let dst = Arc::new(OriginalDst::new());
    let policy = Arc::new(NetPolicy::new(cfg).expect("policy"));
    let door = Door::start_with(
        Listeners {
            http: vec![h],
            socks: vec![s],
            transparent: vec![t],
            dns_udp: vec![du],
            dns_tcp: vec![dt],
        },
        policy,
        dst.clone(),
        Arc::new(move |e| ev.lock().unwrap_or_else(|p| p.into_inner()).push(e)),
        opts,
    )
    .expect("door starts");
    Rig {
        door: Some(door),
        http,
        socks,
        transparent,
        dns_udp,
        dns_tcp,
        events,
        dst,
    }
}

pub fn client(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).expect("connect to door");
    s.set_read_timeout(Some(T)).expect("timeout");
    s
}

/// Reads until the peer closes (or errors); returns what arrived.
pub fn read_to_close(s: &mut TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => return out,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
}

/// Reads an HTTP response head (up to the blank line).
pub fn read_head(s: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match s.read(&mut b) {
            Ok(1) => head.push(b[0]),
            _ => break,
        }
    }
    String::from_utf8_lossy(&head).into_owned()
}

pub fn read_exact_n(s: &mut TcpStream, n: usize) -> Vec<u8> {
    let mut v = vec![0u8; n];
    s.read_exact(&mut v).expect("read back");
    v
}
