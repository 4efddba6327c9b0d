//! Network rules as types: domain patterns, address blocks and port sets.
//!
//! Parsed once, here, for every consumer: `policy check` and `policy show` see exactly the
//! rules the door enforces, because the door is handed these values, never the strings.

use std::fmt;
use std::net::IpAddr;

use ipnet::{IpNet, Ipv4Net};

use crate::host::{parse_host, validate_name, Host};

/// The ports a rule covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Ports {
    /// No port written: 80 and 443.
    Default,
    /// `:N`.
    One(u16),
    /// `:*`.
    Any,
}

impl Ports {
    /// Whether `port` is covered.
    pub fn contains(self, port: u16) -> bool {
        match self {
            Ports::Default => port == 80 || port == 443,
            Ports::One(p) => p == port,
            Ports::Any => true,
        }
    }

    /// Parses the text after the `:` (`None`: no port written).
    pub fn parse(s: Option<&str>) -> Result<Ports, String> {
        match s {
            None => Ok(Ports::Default),
            Some("*") => Ok(Ports::Any),
            Some(p) if !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()) => {
                match p.parse::<u16>() {
                    Ok(0) | Err(_) => Err(format!("bad port {p:?} (1..=65535 or `*`)")),
                    Ok(n) => Ok(Ports::One(n)),
                }
            }
            Some(p) => Err(format!("bad port {p:?} (1..=65535 or `*`)")),
        }
    }
}

/// `name`, `*.name`, each with an optional `:PORT` or `:*` (without one: 80 and 443).
/// Names are lower-cased, without a trailing dot; an IP address in any spelling is refused
/// (addresses are `allow_cidrs`' business).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct DomainPattern {
    text: String,
    wildcard: bool,
    base: String,
    ports: Ports,
}

impl DomainPattern {
    /// Parses one pattern as written in a policy file or a flag.
    pub fn parse(s: &str) -> Result<Self, String> {
        let text = s.trim();
        if text.is_empty() || text.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(format!("{s:?} is not a host name or pattern"));
        }
        let err = |m: String| format!("bad domain pattern {text:?}: {m}");
        let lower = text.to_ascii_lowercase();
        let (name, port) = match lower.rsplit_once(':') {
            Some((n, p)) => (n, Some(p)),
            None => (lower.as_str(), None),
        };
        let ports = Ports::parse(port).map_err(err)?;
        let name = name.strip_suffix('.').unwrap_or(name);
        let (wildcard, base) = match name.strip_prefix("*.") {
            Some(rest) => (true, rest),
            None => (false, name),
        };
        if base.contains('*') {
            return Err(err("`*` is only allowed as a leading `*.` label".into()));
        }
        validate_name(base).map_err(err)?;
        match parse_host(base) {
            Ok(Host::Name(_)) => {}
            Ok(Host::Ip(_)) => {
                return Err(err("an IP address is not a domain; use allow_cidrs".into()))
            }
            Err(e) => return Err(err(e)),
        }
        Ok(DomainPattern {
            text: text.to_string(),
            wildcard,
            base: base.to_string(),
            ports,
        })
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The ports it covers.
    pub fn ports(&self) -> Ports {
        self.ports
    }

    /// Whether a canonical name (lower case, no trailing dot) matches, on any port.
    pub fn matches_name(&self, name: &str) -> bool {
        if self.wildcard {
            name.len() > self.base.len() + 1
                && name.ends_with(&self.base)
                && name.as_bytes()[name.len() - self.base.len() - 1] == b'.'
        } else {
            name == self.base
        }
    }

    /// Whether a canonical name on `port` matches.
    pub fn matches(&self, name: &str, port: u16) -> bool {
        self.ports.contains(port) && self.matches_name(name)
    }
}

impl fmt::Display for DomainPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// `[network] optional` of a profile: a host the agent contacts and works without. No rule
/// allows it by being listed here: a connection no allow rule admits is refused without
/// asking, and reported as optional rather than as a denial.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct OptionalDomain {
    /// The host (or pattern), as the door matches it.
    pub pattern: DomainPattern,
    /// The profile and what the agent wants the host for.
    pub host: crate::OptionalHost,
    /// Where that is documented or seen (a URL, or the installed agent's file).
    pub source: String,
}

/// An address block with optional ports: `10.0.0.0/8`, `10.0.0.0/8:8080`, `fd00::/8:*`,
/// `[fd00::/8]:443`, `[fd00::]/8:443`, or a bare address (one host), `1.2.3.4:22`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CidrPattern {
    text: String,
    net: IpNet,
    ports: Ports,
}

impl CidrPattern {
    /// Parses one `allow_cidrs` entry.
    pub fn parse(s: &str) -> Result<Self, String> {
        let text = s.trim();
        let err = |m: String| format!("bad CIDR {text:?}: {m}");
        let (addr, port) = split_cidr_port(text).map_err(err)?;
        let addr = addr.as_str();
        let ports = Ports::parse(port).map_err(err)?;
        let net = match addr.split_once('/') {
            Some((a, len)) => {
                if len.is_empty() || !len.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(err(format!("bad prefix length {len:?}")));
                }
                let ip: IpAddr = a
                    .parse()
                    .map_err(|_| err(format!("{a:?} is not an IP address")))?;
                let len: u8 = len
                    .parse()
                    .map_err(|_| err(format!("bad prefix length {len:?}")))?;
                IpNet::new(ip, len).map_err(|e| err(e.to_string()))?
            }
            None => IpNet::from(
                addr.parse::<IpAddr>()
                    .map_err(|_| err(format!("{addr:?} is not an IP address")))?,
            ),
        };
        let net = match net {
            IpNet::V6(v6) => match v6.addr().to_ipv4_mapped() {
                // An entry written as ::ffff:a.b.c.d/n means the IPv4 range.
                Some(v4) if v6.prefix_len() >= 96 => IpNet::V4(
                    Ipv4Net::new(v4, v6.prefix_len() - 96).map_err(|e| err(e.to_string()))?,
                ),
                _ => net,
            },
            n => n,
        };
        Ok(CidrPattern {
            text: text.to_string(),
            net: net.trunc(),
            ports,
        })
    }

    /// The entry as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The block (host bits cleared).
    pub fn net(&self) -> IpNet {
        self.net
    }

    /// The ports written (`Default` when none was).
    pub fn ports(&self) -> Ports {
        self.ports
    }
}

impl fmt::Display for CidrPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// Splits the `:PORT`/`:*` off an entry and drops the brackets. IPv6 needs brackets or a
/// `/len` before the port so its own colons are not taken for one.
fn split_cidr_port(s: &str) -> Result<(String, Option<&str>), String> {
    if let Some(rest) = s.strip_prefix('[') {
        let (inner, after) = rest.split_once(']').ok_or("unbalanced [")?;
        // `[addr]/len:port` and `[addr]/len`
        if let Some(len_port) = after.strip_prefix('/') {
            if inner.contains('/') {
                return Err("two prefix lengths".into());
            }
            let (len, port) = match len_port.split_once(':') {
                Some((l, p)) => (l, Some(p)),
                None => (len_port, None),
            };
            return Ok((format!("{inner}/{len}"), port));
        }
        // `[addr/len]:port`, `[addr]:port`, `[addr]`
        return match after {
            "" => Ok((inner.to_string(), None)),
            a => Ok((
                inner.to_string(),
                Some(a.strip_prefix(':').ok_or("garbage after ]")?),
            )),
        };
    }
    if let Some((a, tail)) = s.split_once('/') {
        return Ok(match tail.split_once(':') {
            Some((len, p)) => (format!("{a}/{len}"), Some(p)),
            None => (s.to_string(), None),
        });
    }
    match s.split_once(':') {
        // One colon: IPv4 with a port. More: a bare IPv6 address, which cannot carry one.
        Some((a, p)) if !p.contains(':') => Ok((a.to_string(), Some(p))),
        _ => Ok((s.to_string(), None)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domain_patterns() {
        let p = DomainPattern::parse("*.Example.com.:8443").unwrap();
        assert!(p.matches("a.example.com", 8443));
        assert!(!p.matches("example.com", 8443));
        assert!(!p.matches("a.example.com", 443));
        assert_eq!(p.as_str(), "*.Example.com.:8443");
        let d = DomainPattern::parse("example.com").unwrap();
        assert!(d.matches("example.com", 80) && d.matches("example.com", 443));
        assert!(!d.matches("example.com", 22));
        assert!(!d.matches("evilexample.com", 443));
        assert_eq!(
            DomainPattern::parse("x.test:*").unwrap().ports(),
            Ports::Any
        );
        for bad in [
            "foo*.com",
            "*",
            "*.",
            "a.*.com",
            "127.0.0.1",
            "127.1",
            "[::1]",
            "a b",
            "",
            "x.com:0",
            "x.com:65536",
            "x.com:http",
            "a..b",
            "*.*.com",
            ".a.com",
            "a.com:",
            "exa$mple.com",
            "*example.com",
            "a b.com",
        ] {
            assert!(DomainPattern::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn cidr_patterns() {
        let ok = |s: &str| CidrPattern::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"));
        assert_eq!(ok("10.1.2.3/8").net().to_string(), "10.0.0.0/8");
        assert_eq!(ok("10.0.0.0/8").ports(), Ports::Default);
        assert_eq!(ok("10.0.0.0/8:5432").ports(), Ports::One(5432));
        assert_eq!(ok("1.2.3.4:22").net().to_string(), "1.2.3.4/32");
        assert_eq!(ok("fd00::/8:*").ports(), Ports::Any);
        assert_eq!(ok("[fd00::/8]:443").net().to_string(), "fd00::/8");
        assert_eq!(ok("[fd00::1]:443").net().to_string(), "fd00::1/128");
        assert_eq!(ok("[fd00::]/8:443").ports(), Ports::One(443));
        assert_eq!(ok("[fd00::]/8").net().to_string(), "fd00::/8");
        assert_eq!(ok("fd00::1").net().to_string(), "fd00::1/128");
        assert_eq!(ok("::ffff:10.0.0.0/104").net().to_string(), "10.0.0.0/8");
        for bad in [
            "10.0.0.0/33",
            "10.0.0.0/",
            "10.0.0.0/+8",
            "10.0.0.0/8:0",
            "10.0.0.0/8:x",
            "example.com",
            "[fd00::/8",
            "[fd00::]x",
            "x/8",
            "10.0.0.0/8:abc",
            "",
        ] {
            assert!(CidrPattern::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    proptest::proptest! {
        #[test]
        fn parsers_never_panic(s in ".{0,40}") {
            let _ = DomainPattern::parse(&s);
            let _ = CidrPattern::parse(&s);
        }
    }
}
