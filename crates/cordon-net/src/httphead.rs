//! HTTP/1 request heads seen as the first bytes of a tunnel or transparent
//! connection: bounded parsing and the Host check.

use crate::host::{parse_host, split_host_port, Host};
use crate::parse::Parsed;

/// The largest request head accepted.
pub const MAX_HEAD: usize = 64 * 1024;
/// The most header fields accepted.
pub const MAX_HEADERS: usize = 100;

/// What the check needs from a request head.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Head {
    /// The method.
    pub method: String,
    /// The request target as sent.
    pub target: String,
    /// The single Host header value.
    pub host: String,
}

/// Whether `buf` starts like an HTTP request line (a token then a space).
pub fn looks_like_http(buf: &[u8]) -> bool {
    let n = buf
        .iter()
        .take(16)
        .take_while(|b| b.is_ascii_uppercase() || **b == b'-')
        .count();
    n > 0 && (buf.len() == n || buf.get(n) == Some(&b' '))
}

/// Parses a request head; requires exactly one Host header.
pub fn parse_head(buf: &[u8]) -> Result<Parsed<Head>, String> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let n = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => {
            return if buf.len() >= MAX_HEAD {
                Err("request head too large".into())
            } else {
                Ok(Parsed::Incomplete)
            }
        }
        Err(e) => return Err(format!("malformed request head: {e}")),
    };
    if n > MAX_HEAD {
        return Err("request head too large".into());
    }
    let mut host = None;
    for h in req.headers.iter() {
        if h.name.eq_ignore_ascii_case("host") {
            if host.is_some() {
                return Err("several Host headers".into());
            }
            let v = std::str::from_utf8(h.value).map_err(|_| "Host is not ASCII".to_string())?;
            host = Some(v.trim().to_string());
        }
    }
    let host = host.ok_or("no Host header")?;
    Ok(Parsed::Done(
        Head {
            method: req.method.unwrap_or_default().to_string(),
            target: req.path.unwrap_or_default().to_string(),
            host,
        },
        n,
    ))
}

/// Parses a Host header value (or URL authority) into host and port.
/// Userinfo is refused.
pub fn parse_authority(s: &str) -> Result<(Host, Option<u16>), String> {
    if s.contains('@') {
        return Err("userinfo in authority".into());
    }
    let (h, p) = split_host_port(s)?;
    Ok((parse_host(h)?, p))
}

/// Checks that a request's Host (and an absolute-form target, if any) name
/// the destination `want`:`port`.
pub fn host_matches(head: &Head, want: &Host, port: u16) -> Result<(), String> {
    let (h, p) = parse_authority(&head.host)?;
    if &h != want || p.is_some_and(|p| p != port) {
        return Err(format!(
            "Host {:?} does not match the destination {want}:{port}",
            head.host
        ));
    }
    if let Some(rest) = head.target.strip_prefix("http://") {
        let auth = rest.split(['/', '?', '#']).next().unwrap_or_default();
        let (th, tp) = parse_authority(auth)?;
        if &th != want || tp.is_some_and(|p| p != port) {
            return Err(format!(
                "request target {:?} does not match the destination",
                head.target
            ));
        }
    } else if !head.target.starts_with('/') && head.target != "*" {
        return Err(format!("unexpected request target {:?}", head.target));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(s: &str) -> Head {
        match parse_head(s.as_bytes()) {
            Ok(Parsed::Done(h, n)) => {
                assert_eq!(n, s.len());
                h
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn detects_http() {
        assert!(looks_like_http(b"GET / HTTP/1.1"));
        assert!(looks_like_http(b"POST"));
        assert!(looks_like_http(b"M-SEARCH *"));
        assert!(!looks_like_http(b"\x16\x03\x01"));
        assert!(!looks_like_http(b"SSH-2.0-OpenSSH"));
        assert!(!looks_like_http(b"get / HTTP/1.1"));
        assert!(!looks_like_http(b""));
    }

    #[test]
    fn host_checks() {
        let want = Host::Name("a.example".into());
        assert!(host_matches(
            &head("GET / HTTP/1.1\r\nHost: A.Example.\r\n\r\n"),
            &want,
            80
        )
        .is_ok());
        assert!(host_matches(
            &head("GET / HTTP/1.1\r\nHost: a.example:80\r\n\r\n"),
            &want,
            80
        )
        .is_ok());
        assert!(host_matches(
            &head("GET / HTTP/1.1\r\nHost: a.example:81\r\n\r\n"),
            &want,
            80
        )
        .is_err());
        assert!(host_matches(
            &head("GET / HTTP/1.1\r\nHost: evil.example\r\n\r\n"),
            &want,
            80
        )
        .is_err());
        assert!(host_matches(
            &head("GET / HTTP/1.1\r\nHost: a.example@evil.example\r\n\r\n"),
            &want,
            80
        )
        .is_err());
        assert!(host_matches(
            &head("GET http://evil.example/ HTTP/1.1\r\nHost: a.example\r\n\r\n"),
            &want,
            80
        )
        .is_err());
        assert!(host_matches(
            &head("GET http://a.example/x HTTP/1.1\r\nHost: a.example\r\n\r\n"),
            &want,
            80
        )
        .is_ok());
        let ip = Host::Ip("127.0.0.1".parse().expect("ip"));
        assert!(host_matches(&head("GET / HTTP/1.1\r\nHost: 127.1\r\n\r\n"), &ip, 80).is_ok());
    }

    #[test]
    fn head_errors() {
        assert!(parse_head(b"GET / HTTP/1.1\r\n\r\n").is_err());
        assert!(parse_head(b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n").is_err());
        assert!(parse_head(b"GET / HTTP/1.1\r\nHo st: a\r\n\r\n").is_err());
        assert_eq!(
            parse_head(b"GET / HTTP/1.1\r\nHost: a"),
            Ok(Parsed::Incomplete)
        );
        let mut many = String::from("GET / HTTP/1.1\r\n");
        for i in 0..101 {
            many.push_str(&format!("X-{i}: y\r\n"));
        }
        many.push_str("Host: a\r\n\r\n");
        assert!(parse_head(many.as_bytes()).is_err());
        let mut long = String::from("GET / HTTP/1.1\r\nX: ");
        long.push_str(&"a".repeat(MAX_HEAD));
        assert!(parse_head(long.as_bytes()).is_err());
    }

    proptest::proptest! {
        #[test]
        fn never_panics(data in proptest::collection::vec(proptest::num::u8::ANY, 0..400)) {
            let _ = looks_like_http(&data);
            if let Ok(Parsed::Done(h, _)) = parse_head(&data) {
                let _ = host_matches(&h, &Host::Name("a.example".into()), 80);
            }
        }

        #[test]
        fn text_never_panics(s in "[ -~\r\n]{0,200}") {
            if let Ok(Parsed::Done(h, _)) = parse_head(s.as_bytes()) {
                let _ = host_matches(&h, &Host::Name("a.example".into()), 80);
            }
        }
    }
}
