//! The guest's way out: listeners on the guest's 127.0.0.1 at the door's ports (HTTP proxy
//! 3128, SOCKS5 1080, DNS 53 over TCP and UDP). Each connection becomes a stream on the control
//! port; the host helper joins it to the door, which decides. The guest has no NIC, so nothing
//! else leaves.

use super::Port;
use crate::config::DOOR_PORTS;
use crate::frame::Kind;
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

/// The guest's open streams, by id.
#[derive(Default)]
pub struct Streams {
    next: AtomicU32,
    open: Mutex<HashMap<u32, TcpStream>>,
    dns: Mutex<HashMap<u32, SocketAddr>>,
}

/// Sockets bound before the command starts (so it never finds them missing).
pub struct Bound {
    tcp: Vec<(u16, TcpListener)>,
    udp: Option<UdpSocket>,
    /// Listeners for any address (the local default route sends every connect here).
    transparent: Vec<TcpListener>,
    /// Why transparent capture is off, if it is.
    pub transparent_off: Option<String>,
}

/// Brings loopback up and binds the door's ports on it, and, when the local default route can
/// be added, `transparent` ports for any address.
pub fn bind(transparent: &[u16]) -> Result<Bound, String> {
    cordon_linux::sys::loopback_up().map_err(|e| format!("bring up loopback: {e}"))?;
    let mut tcp = Vec::new();
    for p in DOOR_PORTS {
        let l = TcpListener::bind((Ipv4Addr::LOCALHOST, *p))
            .map_err(|e| format!("listen on 127.0.0.1:{p}: {e}"))?;
        tcp.push((*p, l));
    }
    let udp = UdpSocket::bind((Ipv4Addr::LOCALHOST, 53)).ok();
    let mut bound = Bound {
        tcp,
        udp,
        transparent: Vec::new(),
        transparent_off: None,
    };
    if transparent.is_empty() {
        return Ok(bound);
    }
    if let Err(e) = super::route::add_local_default() {
        bound.transparent_off = Some(format!("no local default route: {e}"));
        return Ok(bound);
    }
    for p in transparent.iter().filter(|p| !DOOR_PORTS.contains(p)) {
        match TcpListener::bind((Ipv4Addr::UNSPECIFIED, *p)) {
            Ok(l) => bound.transparent.push(l),
            Err(e) => bound.transparent_off = Some(format!("port {p}: {e}")),
        }
    }
    Ok(bound)
}

/// Serves the bound sockets (threads; they live as long as the guest).
pub fn serve(bound: Bound, port: Port, streams: Arc<Streams>) {
    for (p, l) in bound.tcp {
        let port = Arc::clone(&port);
        let streams = Arc::clone(&streams);
        std::thread::spawn(move || {
            for conn in l.incoming().flatten() {
                open(p, conn, &port, &streams);
            }
        });
    }
    for l in bound.transparent {
        let port = Arc::clone(&port);
        let streams = Arc::clone(&streams);
        std::thread::spawn(move || {
            for conn in l.incoming().flatten() {
                // With the local default route, the address it was accepted on is the one
                // the program asked for.
                if let Ok(dst) = conn.local_addr() {
                    open_to(dst, conn, &port, &streams);
                }
            }
        });
    }
    if let Some(u) = bound.udp {
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 4096];
            while let Ok((n, from)) = u.recv_from(&mut buf) {
                let id = streams.next.fetch_add(1, Ordering::Relaxed);
                if let Ok(mut m) = streams.dns.lock() {
                    if m.len() > 256 {
                        m.clear();
                    }
                    m.insert(id, from);
                }
                let _ = super::send(&port, Kind::Dns, id, &buf[..n]);
            }
        });
    }
}

fn open(door_port: u16, conn: TcpStream, port: &Port, streams: &Arc<Streams>) {
    start(Kind::Open, &door_port.to_le_bytes(), conn, port, streams)
}

fn open_to(dst: SocketAddr, conn: TcpStream, port: &Port, streams: &Arc<Streams>) {
    start(
        Kind::OpenTo,
        &crate::frame::encode_addr(dst),
        conn,
        port,
        streams,
    )
}

fn start(kind: Kind, what: &[u8], conn: TcpStream, port: &Port, streams: &Arc<Streams>) {
    let id = streams.next.fetch_add(1, Ordering::Relaxed);
    let Ok(mut rd) = conn.try_clone() else {
        return;
    };
    if let Ok(mut m) = streams.open.lock() {
        m.insert(id, conn);
    }
    if super::send(port, kind, id, what).is_err() {
        return;
    }
    let port = Arc::clone(port);
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            match rd.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if super::send(&port, Kind::Data, id, &buf[..n]).is_err() {
                        break;
                    }
                }
            }
        }
        let _ = super::send(&port, Kind::Eof, id, &[]);
    });
}

/// Bytes from the door for stream `id`.
pub fn data(streams: &Streams, id: u32, data: &[u8]) {
    let s = streams
        .open
        .lock()
        .ok()
        .and_then(|m| m.get(&id)?.try_clone().ok());
    if let Some(mut s) = s {
        if s.write_all(data).is_err() {
            let _ = s.shutdown(Shutdown::Both);
        }
    }
}

/// The door has no more bytes for stream `id`.
pub fn eof(streams: &Streams, id: u32) {
    if let Some(s) = streams.open.lock().ok().and_then(|mut m| m.remove(&id)) {
        let _ = s.shutdown(Shutdown::Write);
    }
}

/// The answer to DNS query `id`, sent back to whoever asked.
pub fn dns_answer(udp: &UdpSocket, streams: &Streams, id: u32, answer: &[u8]) {
    if let Some(to) = streams.dns.lock().ok().and_then(|mut m| m.remove(&id)) {
        let _ = udp.send_to(answer, to);
    }
}

impl Bound {
    /// A second handle on the DNS socket, for sending answers.
    pub fn udp_clone(&self) -> Option<UdpSocket> {
        self.udp.as_ref().and_then(|u| u.try_clone().ok())
    }
}
