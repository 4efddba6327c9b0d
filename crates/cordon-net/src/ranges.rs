//! Special-purpose address ranges that are refused unless `allow_cidrs`
//! names them, and the cloud metadata addresses that need an exact entry.

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

// The table lives in cordon-policy: the rendered NetworkPolicy refuses the same ranges.
use cordon_policy::special::{V4_SPECIAL, V6_SPECIAL};

/// Cloud instance metadata services: refused unless listed exactly.
pub const METADATA: &[IpAddr] = &[
    IpAddr::V4(Ipv4Addr::new(169, 254, 169, 254)),
    IpAddr::V4(Ipv4Addr::new(100, 100, 100, 200)),
    IpAddr::V6(Ipv6Addr::new(0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x0254)),
];

fn v4_in(a: Ipv4Addr, net: u32, len: u8) -> bool {
    let mask = if len == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(len))
    };
    u32::from(a) & mask == net & mask
}

fn v6_in(a: Ipv6Addr, net: u128, len: u8) -> bool {
    let mask = if len == 0 {
        0
    } else {
        u128::MAX << (128 - u32::from(len))
    };
    u128::from(a) & mask == net & mask
}

/// The named special range `ip` falls in, if any (most specific first is not
/// needed: any match refuses).
pub fn special_range(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(a) => {
            if a == Ipv4Addr::BROADCAST {
                return Some("broadcast 255.255.255.255");
            }
            V4_SPECIAL
                .iter()
                .find(|(n, l, _)| v4_in(a, *n, *l))
                .map(|t| t.2)
        }
        IpAddr::V6(a) => V6_SPECIAL
            .iter()
            .find(|(n, l, _)| v6_in(a, *n, *l))
            .map(|t| t.2),
    }
}

/// The IPv4 address embedded in an IPv6 address by IPv4-mapping,
/// IPv4-compatibility, NAT64 (64:ff9b::/96) or 6to4 (2002::/16).
pub fn embedded_v4(ip: IpAddr) -> Option<Ipv4Addr> {
    let IpAddr::V6(a) = ip else { return None };
    let bits = u128::from(a);
    let low = Ipv4Addr::from((bits & 0xffff_ffff) as u32);
    if v6_in(a, 0xffff_0000_0000, 96) || v6_in(a, 0x0064_ff9b_u128 << 96, 96) {
        return Some(low);
    }
    if v6_in(a, 0, 96) && bits > 1 {
        return Some(low);
    }
    if v6_in(a, 0x2002_u128 << 112, 16) {
        return Some(Ipv4Addr::from(((bits >> 80) & 0xffff_ffff) as u32));
    }
    None
}

/// Whether `ip` (or the IPv4 it embeds) is a cloud metadata address.
pub fn is_metadata(ip: IpAddr) -> Option<IpAddr> {
    if METADATA.contains(&ip) {
        return Some(ip);
    }
    embedded_v4(ip)
        .map(IpAddr::V4)
        .filter(|v4| METADATA.contains(v4))
}

/// The single-address network of `ip` (`/32` or `/128`).
pub fn host_net(ip: IpAddr) -> IpNet {
    match ip {
        IpAddr::V4(a) => IpNet::V4(Ipv4Net::from(a)),
        IpAddr::V6(a) => IpNet::V6(Ipv6Net::from(a)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("test literal")
    }

    #[test]
    fn specials() {
        for s in [
            "0.0.0.0",
            "0.1.2.3",
            "10.1.2.3",
            "100.64.0.1",
            "100.127.255.255",
            "127.0.0.1",
            "127.255.0.9",
            "169.254.169.254",
            "172.16.0.1",
            "172.31.255.255",
            "192.0.0.8",
            "192.0.2.1",
            "192.168.1.1",
            "198.18.0.1",
            "198.19.255.255",
            "198.51.100.7",
            "203.0.113.9",
            "224.0.0.1",
            "239.255.255.250",
            "240.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "::7f00:1",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "100::1",
            "2001:db8::1",
            "2002:0808:0808::1",
            "fc00::1",
            "fd00:ec2::254",
            "fe80::1",
            "febf::1",
            "ff02::1",
        ] {
            assert!(special_range(ip(s)).is_some(), "{s} should be special");
        }
        for s in [
            "8.8.8.8",
            "1.1.1.1",
            "100.63.255.255",
            "100.128.0.0",
            "172.32.0.0",
            "198.17.255.255",
            "198.20.0.0",
            "2606:4700::1111",
            "2a00:1450::1",
        ] {
            assert!(special_range(ip(s)).is_none(), "{s} should be public");
        }
    }

    #[test]
    fn embedded() {
        assert_eq!(
            embedded_v4(ip("::ffff:1.2.3.4")),
            Some(Ipv4Addr::new(1, 2, 3, 4))
        );
        assert_eq!(
            embedded_v4(ip("64:ff9b::a9fe:a9fe")),
            Some(Ipv4Addr::new(169, 254, 169, 254))
        );
        assert_eq!(
            embedded_v4(ip("2002:7f00:1::5")),
            Some(Ipv4Addr::new(127, 0, 0, 1))
        );
        assert_eq!(
            embedded_v4(ip("::7f00:1")),
            Some(Ipv4Addr::new(127, 0, 0, 1))
        );
        assert_eq!(embedded_v4(ip("::1")), None);
        assert_eq!(embedded_v4(ip("2606:4700::1")), None);
        assert!(is_metadata(ip("64:ff9b::a9fe:a9fe")).is_some());
        assert!(is_metadata(ip("2002:a9fe:a9fe::")).is_some());
        assert!(is_metadata(ip("100.100.100.200")).is_some());
        assert!(is_metadata(ip("fd00:ec2::254")).is_some());
        assert!(is_metadata(ip("169.254.169.253")).is_none());
    }
}
