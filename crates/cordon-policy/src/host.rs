//! Destination hosts: parsing and canonicalisation of every address spelling.
//!
//! A hostile program can spell one address many ways (`127.1`, `0x7f.1`,
//! `2130706433`, `[::ffff:127.0.0.1]`). Every spelling is turned into the
//! address it means, exactly as `inet_aton` and WHATWG URL parsers would, so
//! the policy always sees the real destination.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Longest DNS name accepted (RFC 1035, without the trailing dot).
pub const MAX_NAME_LEN: usize = 253;

/// A destination: a canonical DNS name or an IP address.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Host {
    /// Lower-case name without a trailing dot; never an IP literal.
    Name(String),
    /// An address; IPv4-mapped IPv6 is stored as IPv4.
    Ip(IpAddr),
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Name(n) => f.write_str(n),
            Host::Ip(IpAddr::V4(a)) => write!(f, "{a}"),
            Host::Ip(IpAddr::V6(a)) => write!(f, "[{a}]"),
        }
    }
}

/// Parses a host as found in a URL authority, a CONNECT target, a SOCKS5
/// request or a Host header (without port). IPv6 may be bracketed.
pub fn parse_host(s: &str) -> Result<Host, String> {
    if s.is_empty() {
        return Err("empty host".into());
    }
    if s.len() > 300 {
        return Err("host too long".into());
    }
    if let Some(inner) = s.strip_prefix('[') {
        let inner = inner
            .strip_suffix(']')
            .ok_or_else(|| format!("unbalanced bracket in host {s:?}"))?;
        return parse_v6(inner).map(|a| Host::Ip(canonical_ip(IpAddr::V6(a))));
    }
    if s.contains(':') {
        return parse_v6(s).map(|a| Host::Ip(canonical_ip(IpAddr::V6(a))));
    }
    let lower = s.to_ascii_lowercase();
    let trimmed = lower.strip_suffix('.').unwrap_or(&lower);
    if trimmed.is_empty() {
        return Err(format!("invalid host {s:?}"));
    }
    // WHATWG: when the last label is numeric the whole host must be IPv4.
    let last = trimmed.rsplit('.').next().unwrap_or(trimmed);
    if looks_numeric(last) {
        return parse_v4_loose(trimmed)
            .map(|a| Host::Ip(IpAddr::V4(a)))
            .ok_or_else(|| format!("invalid IPv4 address {s:?}"));
    }
    validate_name(trimmed)?;
    Ok(Host::Name(trimmed.to_string()))
}

fn parse_v6(s: &str) -> Result<Ipv6Addr, String> {
    if s.contains('%') {
        return Err(format!("IPv6 zone identifiers are not allowed: {s:?}"));
    }
    s.parse::<Ipv6Addr>()
        .map_err(|_| format!("invalid IPv6 address {s:?}"))
}

/// Maps IPv4-mapped IPv6 (`::ffff:a.b.c.d`) to the IPv4 address it is.
pub fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
        v4 => v4,
    }
}

fn looks_numeric(label: &str) -> bool {
    if label.is_empty() {
        return false;
    }
    if let Some(hex) = label.strip_prefix("0x") {
        return hex.bytes().all(|b| b.is_ascii_hexdigit());
    }
    label.bytes().all(|b| b.is_ascii_digit())
}

/// Parses one inet_aton component: decimal, octal (leading 0) or hex (0x).
fn parse_part(p: &str) -> Option<u64> {
    if p.is_empty() {
        return None;
    }
    let (digits, radix) = if let Some(h) = p.strip_prefix("0x").or_else(|| p.strip_prefix("0X")) {
        (h, 16)
    } else if p.len() > 1 && p.starts_with('0') {
        (&p[1..], 8)
    } else {
        (p, 10)
    };
    if digits.is_empty() {
        // "0x" alone means zero, as in inet_aton and WHATWG.
        return if radix == 16 { Some(0) } else { None };
    }
    if digits.len() > 40 {
        return None;
    }
    if !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    u64::from_str_radix(digits, radix).ok()
}

/// inet_aton semantics: 1 to 4 parts; the last fills the remaining bytes.
/// The input must already be lower-case without a trailing dot.
pub fn parse_v4_loose(s: &str) -> Option<Ipv4Addr> {
    let parts: Vec<&str> = s.split('.').collect();
    if parts.is_empty() || parts.len() > 4 {
        return None;
    }
    let nums: Vec<u64> = parts.iter().map(|p| parse_part(p)).collect::<Option<_>>()?;
    let (last, head) = nums.split_last()?;
    if head.iter().any(|&n| n > 255) {
        return None;
    }
    let rest_bits = 8 * (4 - head.len() as u32);
    if *last >= (1u64 << rest_bits) {
        return None;
    }
    let mut v: u64 = 0;
    for (i, n) in head.iter().enumerate() {
        v |= n << (24 - 8 * i as u32);
    }
    v |= last;
    u32::try_from(v).ok().map(Ipv4Addr::from)
}

/// Checks a canonical (lower-case, no trailing dot) DNS name.
pub fn validate_name(n: &str) -> Result<(), String> {
    if n.is_empty() || n.len() > MAX_NAME_LEN {
        return Err(format!("invalid name length: {}", n.len()));
    }
    for label in n.split('.') {
        if label.is_empty() {
            return Err(format!("empty label in {n:?}"));
        }
        if label.len() > 63 {
            return Err(format!("label longer than 63 bytes in {n:?}"));
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        {
            return Err(format!("bad character in name {n:?}"));
        }
    }
    Ok(())
}

/// Splits `host:port` (IPv6 bracketed) as in a CONNECT target or Host header.
/// A missing port yields `None`.
pub fn split_host_port(s: &str) -> Result<(&str, Option<u16>), String> {
    if let Some(rest) = s.strip_prefix('[') {
        let end = rest.find(']').ok_or("unbalanced bracket")?;
        let host = &s[..end + 2];
        let after = &rest[end + 1..];
        if after.is_empty() {
            return Ok((host, None));
        }
        let port = after.strip_prefix(':').ok_or("garbage after ]")?;
        return Ok((host, Some(parse_port(port)?)));
    }
    match s.rfind(':') {
        None => Ok((s, None)),
        Some(i) => {
            if s[..i].contains(':') {
                return Err("IPv6 address must be bracketed".into());
            }
            Ok((&s[..i], Some(parse_port(&s[i + 1..])?)))
        }
    }
}

fn parse_port(p: &str) -> Result<u16, String> {
    if p.is_empty() || p.len() > 5 || !p.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("invalid port {p:?}"));
    }
    match p.parse::<u16>() {
        Ok(0) | Err(_) => Err(format!("invalid port {p:?}")),
        Ok(n) => Ok(n),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Host {
        Host::Ip(s.parse().expect("test literal"))
    }

    #[test]
    fn loopback_spellings() {
        for s in [
            "127.0.0.1",
            "127.1",
            "127.0.1",
            "0x7f.1",
            "0x7F.0.0.1",
            "2130706433",
            "017700000001",
            "0177.0.0.1",
            "0177.0.0.01",
            "0x7f000001",
            "127.0.0.1.",
            "[::ffff:127.0.0.1]",
            "::ffff:127.0.0.1",
            "[::ffff:7f00:1]",
        ] {
            assert_eq!(parse_host(s), Ok(ip("127.0.0.1")), "{s}");
        }
    }

    #[test]
    fn other_spellings() {
        assert_eq!(parse_host("0.0.0.0"), Ok(ip("0.0.0.0")));
        assert_eq!(parse_host("0"), Ok(ip("0.0.0.0")));
        assert_eq!(parse_host("0x"), Ok(ip("0.0.0.0")));
        assert_eq!(parse_host("169.254.43518"), Ok(ip("169.254.169.254")));
        assert_eq!(parse_host("0xa9fea9fe"), Ok(ip("169.254.169.254")));
        assert_eq!(parse_host("[::1]"), Ok(ip("::1")));
        assert_eq!(parse_host("[FD00:EC2::254]"), Ok(ip("fd00:ec2::254")));
        assert_eq!(parse_host("[64:ff9b::7f00:1]"), Ok(ip("64:ff9b::7f00:1")));
    }

    #[test]
    fn invalid_numeric() {
        for s in [
            "256.0.0.1",
            "1.2.3.4.5",
            "08.0.0.1",
            "1.2.3.256",
            "1.2.65536",
            "4294967296",
            "1..2",
            "foo.123",
            "0xg.1",
            "[::1",
            "[fe80::1%eth0]",
            "[1.2.3.4]",
            "",
            ".",
        ] {
            assert!(parse_host(s).is_err(), "{s} should be rejected");
        }
    }

    #[test]
    fn names_canonical() {
        assert_eq!(
            parse_host("Example.COM."),
            Ok(Host::Name("example.com".into()))
        );
        assert_eq!(
            parse_host("a-b.c_d.example"),
            Ok(Host::Name("a-b.c_d.example".into()))
        );
        assert_eq!(
            parse_host("123.example"),
            Ok(Host::Name("123.example".into()))
        );
        for s in [
            "a..b",
            "a b",
            "exa%6dple.com",
            "ex@mple.com",
            "a.b..",
            "é.com",
            "*.x.com",
        ] {
            assert!(parse_host(s).is_err(), "{s}");
        }
        assert!(parse_host(&format!("{}.com", "a".repeat(64))).is_err());
    }

    #[test]
    fn host_port() {
        assert_eq!(split_host_port("a.com:443"), Ok(("a.com", Some(443))));
        assert_eq!(split_host_port("a.com"), Ok(("a.com", None)));
        assert_eq!(split_host_port("[::1]:80"), Ok(("[::1]", Some(80))));
        assert_eq!(split_host_port("[::1]"), Ok(("[::1]", None)));
        assert!(split_host_port("::1:80").is_err());
        assert!(split_host_port("a.com:0").is_err());
        assert!(split_host_port("a.com:65536").is_err());
        assert!(split_host_port("a.com:+80").is_err());
        assert!(split_host_port("[::1]x").is_err());
    }

    proptest::proptest! {
        #[test]
        fn any_u32_spelled_decimal_hex_octal(n: u32) {
            let want = ip(&Ipv4Addr::from(n).to_string());
            proptest::prop_assert_eq!(parse_host(&n.to_string()), Ok(want.clone()));
            proptest::prop_assert_eq!(parse_host(&format!("0x{n:x}")), Ok(want.clone()));
            proptest::prop_assert_eq!(parse_host(&format!("0{n:o}")), Ok(want.clone()));
            let [a, b, c, d] = n.to_be_bytes();
            let two = format!("{a}.{}", u32::from_be_bytes([0, b, c, d]));
            proptest::prop_assert_eq!(parse_host(&two), Ok(want.clone()));
            let three = format!("0x{a:x}.0{b:o}.{}", u16::from_be_bytes([c, d]));
            proptest::prop_assert_eq!(parse_host(&three), Ok(want));
        }

        #[test]
        fn never_panics(s in ".{0,80}") {
            let _ = parse_host(&s);
            let _ = split_host_port(&s);
        }
    }
}
