//! SOCKS5 (RFC 1928) framing: greeting, request, reply. No authentication,
//! CONNECT only.

use crate::host::{parse_host, Host};
use crate::parse::Parsed;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Reply: succeeded.
pub const REP_OK: u8 = 0x00;
/// Reply: general failure.
pub const REP_FAILURE: u8 = 0x01;
/// Reply: connection not allowed by ruleset.
pub const REP_NOT_ALLOWED: u8 = 0x02;
/// Reply: host unreachable.
pub const REP_HOST_UNREACHABLE: u8 = 0x04;
/// Reply: connection refused.
pub const REP_REFUSED: u8 = 0x05;
/// Reply: command not supported.
pub const REP_CMD_UNSUPPORTED: u8 = 0x07;
/// Reply: address type not supported.
pub const REP_ATYP_UNSUPPORTED: u8 = 0x08;

/// The method-selection answer when no-auth is offered.
pub const METHOD_NO_AUTH: [u8; 2] = [5, 0x00];
/// The method-selection answer when nothing acceptable is offered.
pub const METHOD_NONE: [u8; 2] = [5, 0xff];

/// Parses the greeting; yields whether "no authentication" was offered.
pub fn parse_greeting(buf: &[u8]) -> Result<Parsed<bool>, String> {
    let Some(&ver) = buf.first() else {
        return Ok(Parsed::Incomplete);
    };
    if ver != 5 {
        return Err(format!("not SOCKS5 (version {ver})"));
    }
    let Some(&n) = buf.get(1) else {
        return Ok(Parsed::Incomplete);
    };
    if n == 0 {
        return Err("no authentication methods offered".into());
    }
    let end = 2 + usize::from(n);
    match buf.get(2..end) {
        None => Ok(Parsed::Incomplete),
        Some(methods) => Ok(Parsed::Done(methods.contains(&0), end)),
    }
}

/// A SOCKS5 CONNECT request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// The destination.
    pub host: Host,
    /// The destination port.
    pub port: u16,
}

/// Parses a request; an error carries the reply code to send before closing.
pub fn parse_request(buf: &[u8]) -> Result<Parsed<Request>, (u8, String)> {
    if buf.len() < 4 {
        if let Some(&v) = buf.first() {
            if v != 5 {
                return Err((REP_FAILURE, format!("bad request version {v}")));
            }
        }
        return Ok(Parsed::Incomplete);
    }
    if buf[0] != 5 || buf[2] != 0 {
        return Err((REP_FAILURE, "malformed request".into()));
    }
    if buf[1] != 1 {
        return Err((
            REP_CMD_UNSUPPORTED,
            format!("command {} not supported", buf[1]),
        ));
    }
    let (host, at) = match buf[3] {
        1 => match buf.get(4..8) {
            None => return Ok(Parsed::Incomplete),
            Some(a) => (
                Host::Ip(IpAddr::V4(Ipv4Addr::new(a[0], a[1], a[2], a[3]))),
                8,
            ),
        },
        4 => match buf.get(4..20) {
            None => return Ok(Parsed::Incomplete),
            Some(a) => {
                let mut o = [0u8; 16];
                o.copy_from_slice(a);
                let ip = crate::host::canonical_ip(IpAddr::V6(Ipv6Addr::from(o)));
                (Host::Ip(ip), 20)
            }
        },
        3 => {
            let Some(&len) = buf.get(4) else {
                return Ok(Parsed::Incomplete);
            };
            let end = 5 + usize::from(len);
            let Some(name) = buf.get(5..end) else {
                return Ok(Parsed::Incomplete);
            };
            let s = std::str::from_utf8(name)
                .map_err(|_| (REP_HOST_UNREACHABLE, "domain is not ASCII".to_string()))?;
            // Brackets would let a name smuggle an IPv6 literal past ATYP.
            if s.starts_with('[') {
                return Err((REP_HOST_UNREACHABLE, format!("bad domain {s:?}")));
            }
            let h = parse_host(s).map_err(|e| (REP_HOST_UNREACHABLE, e))?;
            (h, end)
        }
        t => {
            return Err((
                REP_ATYP_UNSUPPORTED,
                format!("address type {t} not supported"),
            ))
        }
    };
    let Some(p) = buf.get(at..at + 2) else {
        return Ok(Parsed::Incomplete);
    };
    let port = u16::from_be_bytes([p[0], p[1]]);
    if port == 0 {
        return Err((REP_NOT_ALLOWED, "port 0".into()));
    }
    Ok(Parsed::Done(Request { host, port }, at + 2))
}

/// A reply with an all-zero IPv4 bound address.
pub fn reply(code: u8) -> [u8; 10] {
    [5, code, 0, 1, 0, 0, 0, 0, 0, 0]
}

/// Encodes a CONNECT request for a domain name (for tests and fuzz seeds).
pub fn build_request(name: &str, port: u16) -> Vec<u8> {
    let mut v = vec![5, 1, 0, 3, name.len().min(255) as u8];
    v.extend_from_slice(&name.as_bytes()[..name.len().min(255)]);
    v.extend_from_slice(&port.to_be_bytes());
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greeting() {
        assert_eq!(parse_greeting(&[5, 1, 0]), Ok(Parsed::Done(true, 3)));
        assert_eq!(parse_greeting(&[5, 2, 2, 0, 9]), Ok(Parsed::Done(true, 4)));
        assert_eq!(parse_greeting(&[5, 1, 2]), Ok(Parsed::Done(false, 3)));
        assert_eq!(parse_greeting(&[5, 3, 0]), Ok(Parsed::Incomplete));
        assert_eq!(parse_greeting(&[]), Ok(Parsed::Incomplete));
        assert!(parse_greeting(&[4, 1, 0]).is_err());
        assert!(parse_greeting(&[5, 0]).is_err());
        assert!(parse_greeting(b"GET / HTTP/1.1").is_err());
    }

    #[test]
    fn requests() {
        let r = build_request("Example.COM", 443);
        assert_eq!(
            parse_request(&r),
            Ok(Parsed::Done(
                Request {
                    host: Host::Name("example.com".into()),
                    port: 443
                },
                r.len()
            ))
        );
        for n in 0..r.len() {
            assert_eq!(parse_request(&r[..n]), Ok(Parsed::Incomplete), "{n}");
        }
        let v4 = [5, 1, 0, 1, 10, 0, 0, 1, 0, 80];
        assert_eq!(
            parse_request(&v4),
            Ok(Parsed::Done(
                Request {
                    host: Host::Ip("10.0.0.1".parse().expect("ip")),
                    port: 80
                },
                10
            ))
        );
        let mut v6 = vec![5, 1, 0, 4];
        v6.extend_from_slice(&"::ffff:127.0.0.1".parse::<Ipv6Addr>().expect("ip").octets());
        v6.extend_from_slice(&[0, 22]);
        assert_eq!(
            parse_request(&v6),
            Ok(Parsed::Done(
                Request {
                    host: Host::Ip("127.0.0.1".parse().expect("ip")),
                    port: 22
                },
                22
            ))
        );
        // A domain that spells an IP is that IP.
        let r = build_request("0x7f.1", 80);
        assert!(matches!(
            parse_request(&r),
            Ok(Parsed::Done(
                Request {
                    host: Host::Ip(_),
                    ..
                },
                _
            ))
        ));
    }

    #[test]
    fn request_errors() {
        assert_eq!(
            parse_request(&[5, 2, 0, 1]).map_err(|e| e.0),
            Err(REP_CMD_UNSUPPORTED)
        );
        assert_eq!(
            parse_request(&[5, 3, 0, 1]).map_err(|e| e.0),
            Err(REP_CMD_UNSUPPORTED)
        );
        assert_eq!(
            parse_request(&[5, 1, 0, 9]).map_err(|e| e.0),
            Err(REP_ATYP_UNSUPPORTED)
        );
        assert_eq!(
            parse_request(&[4, 1, 0, 1]).map_err(|e| e.0),
            Err(REP_FAILURE)
        );
        assert_eq!(
            parse_request(&[5, 1, 1, 1]).map_err(|e| e.0),
            Err(REP_FAILURE)
        );
        let r = build_request("a b", 80);
        assert_eq!(
            parse_request(&r).map_err(|e| e.0),
            Err(REP_HOST_UNREACHABLE)
        );
        let r = build_request("[::1]", 80);
        assert_eq!(
            parse_request(&r).map_err(|e| e.0),
            Err(REP_HOST_UNREACHABLE)
        );
        let r = build_request("a.com", 0);
        assert_eq!(parse_request(&r).map_err(|e| e.0), Err(REP_NOT_ALLOWED));
        let mut r = vec![5, 1, 0, 3, 0];
        r.extend_from_slice(&[0, 80]);
        assert!(parse_request(&r).is_err());
    }

    proptest::proptest! {
        #[test]
        fn never_panics(data in proptest::collection::vec(proptest::num::u8::ANY, 0..300)) {
            let _ = parse_greeting(&data);
            let _ = parse_request(&data);
            let mut d = vec![5, 1, 0];
            d.extend_from_slice(&data);
            let _ = parse_request(&d);
        }
    }
}
