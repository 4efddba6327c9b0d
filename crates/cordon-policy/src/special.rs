//! Special-purpose address ranges: refused by the network door unless `allow_cidrs` names
//! them, and left out of a cluster NetworkPolicy's egress for the same reason. One table, so
//! the door and the rendered outer wall cannot drift apart.

/// IPv4 special ranges: network (host order), prefix length, name.
pub const V4_SPECIAL: &[(u32, u8, &str)] = &[
    (0x0000_0000, 8, "\"this network\" 0.0.0.0/8"),
    (0x0a00_0000, 8, "private 10.0.0.0/8"),
    (0x6440_0000, 10, "CGNAT 100.64.0.0/10"),
    (0x7f00_0000, 8, "loopback 127.0.0.0/8"),
    (0xa9fe_0000, 16, "link-local 169.254.0.0/16"),
    (0xac10_0000, 12, "private 172.16.0.0/12"),
    (0xc000_0000, 24, "IETF protocol assignments 192.0.0.0/24"),
    (0xc000_0200, 24, "documentation 192.0.2.0/24"),
    (0xc058_6300, 24, "6to4 relay anycast 192.88.99.0/24"),
    (0xc0a8_0000, 16, "private 192.168.0.0/16"),
    (0xc612_0000, 15, "benchmarking 198.18.0.0/15"),
    (0xc633_6400, 24, "documentation 198.51.100.0/24"),
    (0xcb00_7100, 24, "documentation 203.0.113.0/24"),
    (0xe000_0000, 4, "multicast 224.0.0.0/4"),
    (0xf000_0000, 4, "reserved 240.0.0.0/4"),
];

/// IPv6 special ranges: network, prefix length, name.
pub const V6_SPECIAL: &[(u128, u8, &str)] = &[
    (0, 128, "unspecified ::/128"),
    (1, 128, "loopback ::1/128"),
    (0, 96, "IPv4-compatible ::/96"),
    (0xffff_0000_0000u128, 96, "IPv4-mapped ::ffff:0:0/96"),
    (0x0064_ff9b_u128 << 96, 96, "NAT64 64:ff9b::/96"),
    (
        0x0064_ff9b_0001_u128 << 80,
        48,
        "local NAT64 64:ff9b:1::/48",
    ),
    (0x0100_u128 << 112, 64, "discard 100::/64"),
    (
        0x2001_0000_u128 << 96,
        23,
        "IETF protocol assignments 2001::/23",
    ),
    (0x2001_0db8_u128 << 96, 32, "documentation 2001:db8::/32"),
    (0x2002_u128 << 112, 16, "6to4 2002::/16"),
    (0x3fff_u128 << 112, 20, "documentation 3fff::/20"),
    (0xfc00_u128 << 112, 7, "unique local fc00::/7"),
    (0xfe80_u128 << 112, 10, "link-local fe80::/10"),
    (0xfec0_u128 << 112, 10, "site-local fec0::/10"),
    (0xff00_u128 << 112, 8, "multicast ff00::/8"),
];

/// The IPv4 special ranges in CIDR notation, in table order.
pub fn v4_special_cidrs() -> Vec<String> {
    V4_SPECIAL
        .iter()
        .map(|(n, l, _)| format!("{}/{l}", std::net::Ipv4Addr::from(*n)))
        .collect()
}

/// The IPv6 special ranges in CIDR notation, in table order.
pub fn v6_special_cidrs() -> Vec<String> {
    V6_SPECIAL
        .iter()
        .map(|(n, l, _)| format!("{}/{l}", std::net::Ipv6Addr::from(*n)))
        .collect()
}
