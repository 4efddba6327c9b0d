//! The original destinations of intercepted connections, registered by the
//! interceptor before it connects the caller's socket to the transparent door.

use crate::host::canonical_ip;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Entries older than this are stale (the connect never arrived).
const STALE: Duration = Duration::from_secs(60);
/// The most pending entries kept.
const MAX_PENDING: usize = 65536;

fn key(a: SocketAddr) -> SocketAddr {
    SocketAddr::new(canonical_ip(a.ip()), a.port())
}

/// Shared map from a client's local socket address to where it meant to go.
#[derive(Default)]
pub struct OriginalDst {
    map: Mutex<HashMap<SocketAddr, (SocketAddr, Instant)>>,
}

impl OriginalDst {
    /// An empty map.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records that the socket bound at `local` is really headed for `dst`.
    pub fn register(&self, local: SocketAddr, dst: SocketAddr) {
        let mut m = self.map.lock().unwrap_or_else(|p| p.into_inner());
        if m.len() >= MAX_PENDING {
            let now = Instant::now();
            m.retain(|_, (_, t)| now.duration_since(*t) < STALE);
            if m.len() >= MAX_PENDING {
                // Still full: forget the oldest so the newest connect works.
                if let Some(k) = m.iter().min_by_key(|(_, (_, t))| *t).map(|(k, _)| *k) {
                    m.remove(&k);
                }
            }
        }
        m.insert(key(local), (key(dst), Instant::now()));
    }

    /// Removes and returns the destination registered for `peer`.
    pub fn take(&self, peer: SocketAddr) -> Option<SocketAddr> {
        let mut m = self.map.lock().unwrap_or_else(|p| p.into_inner());
        m.remove(&key(peer))
            .filter(|(_, t)| t.elapsed() < STALE)
            .map(|(d, _)| d)
    }

    /// How many registrations are pending.
    pub fn len(&self) -> usize {
        self.map.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Whether nothing is pending.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn register_take() {
        let m = OriginalDst::new();
        let l: SocketAddr = "127.0.0.1:40000".parse().expect("addr");
        let d: SocketAddr = "93.184.216.34:443".parse().expect("addr");
        m.register(l, d);
        assert_eq!(
            m.take("[::ffff:127.0.0.1]:40000".parse().expect("addr")),
            Some(d)
        );
        assert_eq!(m.take(l), None);
        for i in 0..(MAX_PENDING + 10) {
            m.register(SocketAddr::new(l.ip(), (i % 65536) as u16), d);
        }
        assert!(m.len() <= MAX_PENDING);
    }
}
