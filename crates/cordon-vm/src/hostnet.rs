//! The guest's network streams and DNS queries, joined to the door from inside the outer
//! sandbox. Bounded: at most [`MAX_STREAMS`] streams and [`MAX_DNS`] queries at once.

use super::frame::Kind;
use super::host::{send, Port};
use std::collections::HashMap;
use std::io::Read;
use std::net::{TcpStream, UdpSocket};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// At most this many network streams open at once (more are refused at once).
pub const MAX_STREAMS: usize = 256;
/// At most this many DNS queries in flight.
pub const MAX_DNS: usize = 64;

/// Open streams by id: the write side of each connection to the door.
pub type Streams = Arc<Mutex<HashMap<u32, TcpStream>>>;

/// Opens stream `id` to `target` (None: refused), or refuses it with an EOF.
pub fn open_stream(id: u32, target: Option<std::net::SocketAddr>, port: &Port, streams: &Streams) {
    let refuse = || {
        let _ = send(port, Kind::Eof, id, &[]);
    };
    let Some(target) = target else {
        return refuse();
    };
    let Ok(mut map) = streams.lock() else {
        return refuse();
    };
    if map.len() >= MAX_STREAMS || map.contains_key(&id) {
        drop(map);
        return refuse();
    }
    // Inside the outer sandbox: loopback has only the door; anything else goes through its
    // path guard to the door as well.
    let Ok(sock) = TcpStream::connect_timeout(&target, Duration::from_secs(30)) else {
        drop(map);
        return refuse();
    };
    let Ok(mut rd) = sock.try_clone() else {
        drop(map);
        return refuse();
    };
    map.insert(id, sock);
    drop(map);
    let port = Arc::clone(port);
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            match rd.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if send(&port, Kind::Data, id, &buf[..n]).is_err() {
                        break;
                    }
                }
            }
        }
        let _ = send(&port, Kind::Eof, id, &[]);
    });
}

/// Sends one DNS query to the door's stub and the answer back as stream `id`.
pub fn dns_query(id: u32, query: Vec<u8>, port: &Port, inflight: &Arc<AtomicUsize>) {
    if inflight.fetch_add(1, Ordering::SeqCst) >= MAX_DNS {
        inflight.fetch_sub(1, Ordering::SeqCst);
        return;
    }
    let port = Arc::clone(port);
    let inflight = Arc::clone(inflight);
    std::thread::spawn(move || {
        let answer = (|| {
            let s = UdpSocket::bind((std::net::Ipv4Addr::LOCALHOST, 0)).ok()?;
            s.connect((std::net::Ipv4Addr::LOCALHOST, 53)).ok()?;
            s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
            s.send(&query).ok()?;
            let mut buf = vec![0u8; 4096];
            let n = s.recv(&mut buf).ok()?;
            buf.truncate(n);
            Some(buf)
        })();
        if let Some(a) = answer {
            let _ = send(&port, Kind::Dns, id, &a);
        }
        inflight.fetch_sub(1, Ordering::SeqCst);
    });
}
