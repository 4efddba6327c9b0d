//! The first-bytes check on tunnels (CONNECT, SOCKS5, transparent): a TLS
//! ClientHello's SNI or an HTTP request's Host must name the destination that
//! was allowed, so one allowed name cannot front for another.

use crate::host::Host;
use crate::httphead::{host_matches, looks_like_http, parse_head, MAX_HEAD};
use crate::parse::Parsed;
use crate::sni::{parse_client_hello, MAX_HELLO};

/// The most bytes ever buffered for the check.
pub const MAX_FIRST_BYTES: usize = if MAX_HEAD > MAX_HELLO + 5 {
    MAX_HEAD
} else {
    MAX_HELLO + 5
};

/// The result of looking at the first bytes of a tunnel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Inspect {
    /// Read more and look again.
    NeedMore,
    /// The traffic names the destination.
    Pass,
    /// Refused, with a reason.
    Deny(String),
}

/// Whether a tunnel to `port` carries arbitrary bytes without a check: only
/// ports other than 80 and 443, which a rule must have named explicitly.
pub fn raw_allowed(port: u16) -> bool {
    port != 80 && port != 443
}

/// Inspects the bytes a client sent first on a tunnel to `target`:`port`.
pub fn inspect(buf: &[u8], target: &Host, port: u16) -> Inspect {
    if buf.is_empty() {
        return Inspect::NeedMore;
    }
    if buf[0] == 0x16 {
        return match parse_client_hello(buf) {
            Ok(Parsed::Incomplete) => Inspect::NeedMore,
            Err(e) => Inspect::Deny(e),
            Ok(Parsed::Done(sni, _)) => match (&sni, target) {
                (Some(s), t) if s == t => Inspect::Pass,
                (None, Host::Ip(_)) => Inspect::Pass,
                (None, Host::Name(n)) => Inspect::Deny(format!("TLS without SNI to {n}")),
                (Some(s), t) => {
                    Inspect::Deny(format!("TLS SNI {s} does not match the destination {t}"))
                }
            },
        };
    }
    if port == 443 {
        // The TLS port carries TLS only: plain HTTP there (even with a matching Host) is how
        // a client would slip past the SNI check.
        return Inspect::Deny("traffic to port 443 is not TLS".into());
    }
    if looks_like_http(buf) {
        return match parse_head(buf) {
            Ok(Parsed::Incomplete) => Inspect::NeedMore,
            Err(e) => Inspect::Deny(e),
            Ok(Parsed::Done(head, _)) => match host_matches(&head, target, port) {
                Ok(()) => Inspect::Pass,
                Err(e) => Inspect::Deny(e),
            },
        };
    }
    Inspect::Deny(format!(
        "traffic to port {port} is neither TLS nor HTTP (raw TCP needs an explicit port other than 80/443)"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sni::build_client_hello;

    fn name(n: &str) -> Host {
        Host::Name(n.into())
    }

    #[test]
    fn plain_http_on_the_tls_port_is_denied() {
        let req = b"GET / HTTP/1.1\r\nHost: a.example\r\n\r\n";
        assert!(matches!(
            inspect(req, &name("a.example"), 443),
            Inspect::Deny(_)
        ));
        assert_eq!(inspect(req, &name("a.example"), 80), Inspect::Pass);
    }

    #[test]
    fn tls() {
        let t = name("a.example");
        assert_eq!(
            inspect(&build_client_hello(Some("A.example.")), &t, 443),
            Inspect::Pass
        );
        assert!(matches!(
            inspect(&build_client_hello(Some("b.example")), &t, 443),
            Inspect::Deny(_)
        ));
        assert!(matches!(
            inspect(&build_client_hello(None), &t, 443),
            Inspect::Deny(_)
        ));
        let h = build_client_hello(Some("a.example"));
        assert_eq!(inspect(&h[..h.len() - 1], &t, 443), Inspect::NeedMore);
        let ip = Host::Ip("8.8.8.8".parse().expect("ip"));
        assert_eq!(inspect(&build_client_hello(None), &ip, 443), Inspect::Pass);
        assert_eq!(
            inspect(&build_client_hello(Some("8.8.8.8")), &ip, 443),
            Inspect::Pass
        );
        assert!(matches!(
            inspect(&build_client_hello(Some("a.example")), &ip, 443),
            Inspect::Deny(_)
        ));
    }

    #[test]
    fn http_and_raw() {
        let t = name("a.example");
        assert_eq!(
            inspect(b"GET / HTTP/1.1\r\nHost: a.example\r\n\r\n", &t, 80),
            Inspect::Pass
        );
        assert_eq!(
            inspect(b"GET / HTTP/1.1\r\nHost: a.exa", &t, 80),
            Inspect::NeedMore
        );
        assert!(matches!(
            inspect(b"GET / HTTP/1.1\r\nHost: b.example\r\n\r\n", &t, 80),
            Inspect::Deny(_)
        ));
        assert!(matches!(
            inspect(b"SSH-2.0-x\r\n", &t, 443),
            Inspect::Deny(_)
        ));
        assert!(matches!(inspect(b"\x00\x01", &t, 80), Inspect::Deny(_)));
        assert!(raw_allowed(22) && !raw_allowed(80) && !raw_allowed(443));
    }

    proptest::proptest! {
        #[test]
        fn never_panics(data in proptest::collection::vec(proptest::num::u8::ANY, 0..300)) {
            let _ = inspect(&data, &Host::Name("a.example".into()), 443);
        }
    }
}
