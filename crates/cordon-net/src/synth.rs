//! Synthetic per-name addresses handed out by the DNS stub.
//!
//! Every allowed name gets its own address (IPv4 in 240.0.0.0/8, IPv6 in
//! fd63:6f72:646f:6e00::/64), stable for the door's life, so a connection to
//! the address says which name it is for: two names sharing a real address
//! can never open the door for each other.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Mutex;

/// The most names handed out; further names are refused.
pub const MAX_NAMES: usize = 1 << 16;
const V4_BASE: u32 = 0xf000_0000;
const V6_BASE: u128 = 0xfd63_6f72_646f_6e00_u128 << 64;

#[derive(Default)]
struct Inner {
    by_name: HashMap<String, u32>,
    names: Vec<String>,
}

/// The name <-> synthetic address map.
#[derive(Default)]
pub struct Synth {
    inner: Mutex<Inner>,
}

impl Synth {
    /// An empty map.
    pub fn new() -> Self {
        Self::default()
    }

    /// The synthetic addresses of a canonical name, assigning them if new;
    /// `None` when the map is full.
    pub fn assign(&self, name: &str) -> Option<(Ipv4Addr, Ipv6Addr)> {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let idx = match g.by_name.get(name) {
            Some(i) => *i,
            None => {
                if g.names.len() >= MAX_NAMES {
                    return None;
                }
                g.names.push(name.to_string());
                let i = g.names.len() as u32;
                g.by_name.insert(name.to_string(), i);
                i
            }
        };
        Some((
            Ipv4Addr::from(V4_BASE + idx),
            Ipv6Addr::from(V6_BASE + u128::from(idx)),
        ))
    }

    /// Whether `ip` lies in a synthetic range (assigned or not).
    pub fn is_synthetic(ip: IpAddr) -> bool {
        match crate::host::canonical_ip(ip) {
            IpAddr::V4(a) => u32::from(a) >> 24 == V4_BASE >> 24,
            IpAddr::V6(a) => u128::from(a) >> 64 == V6_BASE >> 64,
        }
    }

    /// The name a synthetic address was assigned to.
    pub fn name_of(&self, ip: IpAddr) -> Option<String> {
        let idx = match crate::host::canonical_ip(ip) {
            IpAddr::V4(a) if Self::is_synthetic(IpAddr::V4(a)) => u32::from(a) - V4_BASE,
            IpAddr::V6(a) if Self::is_synthetic(IpAddr::V6(a)) => {
                u32::try_from(u128::from(a) - V6_BASE).ok()?
            }
            _ => return None,
        };
        let g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let i = usize::try_from(idx).ok()?.checked_sub(1)?;
        g.names.get(i).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stable_and_distinct() {
        let s = Synth::new();
        let a = s.assign("a.test").expect("room");
        let b = s.assign("b.test").expect("room");
        assert_ne!(a.0, b.0);
        assert_ne!(a.1, b.1);
        assert_eq!(s.assign("a.test"), Some(a));
        assert_eq!(s.name_of(IpAddr::V4(a.0)).as_deref(), Some("a.test"));
        assert_eq!(s.name_of(IpAddr::V6(b.1)).as_deref(), Some("b.test"));
        assert_eq!(
            s.name_of(IpAddr::V6(a.0.to_ipv6_mapped())).as_deref(),
            Some("a.test")
        );
        assert_eq!(s.name_of("240.0.0.0".parse().expect("ip")), None);
        assert_eq!(s.name_of("240.9.9.9".parse().expect("ip")), None);
        assert_eq!(s.name_of("8.8.8.8".parse().expect("ip")), None);
        assert!(Synth::is_synthetic(IpAddr::V4(a.0)));
        assert!(Synth::is_synthetic(
            "fd63:6f72:646f:6e00::ffff:ffff:ffff".parse().expect("ip")
        ));
        assert_eq!(
            s.name_of("fd63:6f72:646f:6e00::ffff:ffff:ffff".parse().expect("ip")),
            None
        );
        assert!(!Synth::is_synthetic(
            "fd63:6f72:646f:6e01::1".parse().expect("ip")
        ));
    }
}
