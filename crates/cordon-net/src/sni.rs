//! TLS ClientHello parsing, to learn the SNI a client asks for.
//!
//! Only what is needed to find `server_name` is parsed; anything odd is an
//! error (and the connection is denied). Handshake bytes split across several
//! TLS records are reassembled up to [`MAX_HELLO`].

use crate::host::{parse_host, Host};
use crate::parse::{Cursor, Parsed};

/// The most bytes read while looking for a complete ClientHello.
pub const MAX_HELLO: usize = 16 * 1024;

const CONTENT_HANDSHAKE: u8 = 22;
const HANDSHAKE_CLIENT_HELLO: u8 = 1;
const EXT_SERVER_NAME: u16 = 0;
const MAX_RECORD: usize = 16 * 1024 + 256;

/// Parses a ClientHello from the start of a stream; yields the SNI (if the
/// client sent one) as a canonical host.
pub fn parse_client_hello(buf: &[u8]) -> Result<Parsed<Option<Host>>, String> {
    let mut hs: Vec<u8> = Vec::new();
    let mut pos = 0usize;
    loop {
        let Some(header) = buf.get(pos..pos + 5) else {
            return incomplete(buf);
        };
        if header[0] != CONTENT_HANDSHAKE {
            return Err("not a TLS handshake record".into());
        }
        if header[1] != 3 {
            return Err("unknown TLS record version".into());
        }
        let len = usize::from(u16::from_be_bytes([header[3], header[4]]));
        if len == 0 || len > MAX_RECORD {
            return Err("bad TLS record length".into());
        }
        let Some(body) = buf.get(pos + 5..pos + 5 + len) else {
            return incomplete(buf);
        };
        hs.extend_from_slice(body);
        pos += 5 + len;
        if hs.len() >= 4 {
            if hs[0] != HANDSHAKE_CLIENT_HELLO {
                return Err("first handshake message is not a ClientHello".into());
            }
            let hlen = (usize::from(hs[1]) << 16) | (usize::from(hs[2]) << 8) | usize::from(hs[3]);
            if hlen > MAX_HELLO {
                return Err("ClientHello too large".into());
            }
            if hs.len() >= 4 + hlen {
                return parse_hello_body(&hs[4..4 + hlen]).map(|sni| Parsed::Done(sni, pos));
            }
        }
        if pos > MAX_HELLO {
            return Err("ClientHello too large".into());
        }
    }
}

fn incomplete<T>(buf: &[u8]) -> Result<Parsed<T>, String> {
    if buf.len() > MAX_HELLO + 5 {
        Err("ClientHello too large".into())
    } else {
        Ok(Parsed::Incomplete)
    }
}

fn parse_hello_body(body: &[u8]) -> Result<Option<Host>, String> {
    let bad = |what: &str| format!("malformed ClientHello: {what}");
    let mut c = Cursor::new(body);
    c.take(2 + 32).ok_or_else(|| bad("version/random"))?;
    let sid = c.u8().ok_or_else(|| bad("session id"))?;
    if sid > 32 {
        return Err(bad("session id too long"));
    }
    c.take(usize::from(sid)).ok_or_else(|| bad("session id"))?;
    let suites = usize::from(c.u16().ok_or_else(|| bad("cipher suites"))?);
    if suites < 2 || suites % 2 != 0 {
        return Err(bad("cipher suites length"));
    }
    c.take(suites).ok_or_else(|| bad("cipher suites"))?;
    let comp = c.u8().ok_or_else(|| bad("compression"))?;
    if comp == 0 {
        return Err(bad("no compression methods"));
    }
    c.take(usize::from(comp))
        .ok_or_else(|| bad("compression"))?;
    if c.remaining() == 0 {
        return Ok(None);
    }
    let ext_len = usize::from(c.u16().ok_or_else(|| bad("extensions"))?);
    if ext_len != c.remaining() {
        return Err(bad("extensions length"));
    }
    let mut sni = None;
    let mut seen_sni = false;
    while c.remaining() > 0 {
        let ty = c.u16().ok_or_else(|| bad("extension type"))?;
        let len = usize::from(c.u16().ok_or_else(|| bad("extension length"))?);
        let data = c.take(len).ok_or_else(|| bad("extension data"))?;
        if ty == EXT_SERVER_NAME {
            if seen_sni {
                return Err(bad("duplicate server_name"));
            }
            seen_sni = true;
            sni = parse_server_name(data)?;
        }
    }
    Ok(sni)
}

fn parse_server_name(data: &[u8]) -> Result<Option<Host>, String> {
    let bad = |what: &str| format!("malformed server_name: {what}");
    let mut c = Cursor::new(data);
    let list = usize::from(c.u16().ok_or_else(|| bad("list length"))?);
    if list != c.remaining() {
        return Err(bad("list length"));
    }
    let mut found = None;
    while c.remaining() > 0 {
        let ty = c.u8().ok_or_else(|| bad("name type"))?;
        let len = usize::from(c.u16().ok_or_else(|| bad("name length"))?);
        let name = c.take(len).ok_or_else(|| bad("name"))?;
        if ty != 0 {
            continue;
        }
        if found.is_some() {
            return Err(bad("several host names"));
        }
        let s = std::str::from_utf8(name).map_err(|_| bad("not ASCII"))?;
        found = Some(parse_host(s).map_err(|e| bad(&e))?);
    }
    match found {
        Some(h) => Ok(Some(h)),
        None => Err(bad("no host name")),
    }
}

/// Builds a minimal ClientHello carrying `sni` (for tests and fuzz seeds).
pub fn build_client_hello(sni: Option<&str>) -> Vec<u8> {
    let mut exts = Vec::new();
    if let Some(name) = sni {
        let n = name.as_bytes();
        let mut sn = Vec::new();
        sn.extend_from_slice(&((n.len() + 3) as u16).to_be_bytes());
        sn.push(0);
        sn.extend_from_slice(&(n.len() as u16).to_be_bytes());
        sn.extend_from_slice(n);
        exts.extend_from_slice(&EXT_SERVER_NAME.to_be_bytes());
        exts.extend_from_slice(&(sn.len() as u16).to_be_bytes());
        exts.extend_from_slice(&sn);
    }
    // supported_versions: TLS 1.3, so the hello looks like a modern one.
    exts.extend_from_slice(&[0x00, 0x2b, 0x00, 0x03, 0x02, 0x03, 0x04]);
    let mut body = vec![0x03, 0x03];
    body.extend_from_slice(&[7u8; 32]);
    body.push(0);
    body.extend_from_slice(&[0x00, 0x02, 0x13, 0x01]);
    body.extend_from_slice(&[0x01, 0x00]);
    body.extend_from_slice(&(exts.len() as u16).to_be_bytes());
    body.extend_from_slice(&exts);
    let mut hs = vec![HANDSHAKE_CLIENT_HELLO];
    hs.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
    hs.extend_from_slice(&body);
    let mut rec = vec![CONTENT_HANDSHAKE, 3, 1];
    rec.extend_from_slice(&(hs.len() as u16).to_be_bytes());
    rec.extend_from_slice(&hs);
    rec
}

/// Splits the handshake of a single-record hello into records of at most
/// `chunk` bytes (for tests of reassembly).
pub fn fragment_records(hello: &[u8], chunk: usize) -> Vec<u8> {
    let hs = hello.get(5..).unwrap_or_default();
    let mut out = Vec::new();
    for part in hs.chunks(chunk.max(1)) {
        out.extend_from_slice(&[CONTENT_HANDSHAKE, 3, 1]);
        out.extend_from_slice(&(part.len() as u16).to_be_bytes());
        out.extend_from_slice(part);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn done(buf: &[u8]) -> Option<Host> {
        match parse_client_hello(buf) {
            Ok(Parsed::Done(h, n)) => {
                assert_eq!(n, buf.len());
                h
            }
            other => panic!("expected a parsed hello, got {other:?}"),
        }
    }

    #[test]
    fn sni_found_and_canonical() {
        let h = build_client_hello(Some("Api.Example.COM."));
        assert_eq!(done(&h), Some(Host::Name("api.example.com".into())));
        assert_eq!(done(&build_client_hello(None)), None);
    }

    #[test]
    fn fragmented_records() {
        let h = build_client_hello(Some("frag.example"));
        for chunk in [1, 2, 7, 40] {
            let f = fragment_records(&h, chunk);
            assert_eq!(
                done(&f),
                Some(Host::Name("frag.example".into())),
                "chunk {chunk}"
            );
        }
    }

    #[test]
    fn truncated_is_incomplete() {
        let h = build_client_hello(Some("a.example"));
        for n in 0..h.len() {
            assert_eq!(
                parse_client_hello(&h[..n]),
                Ok(Parsed::Incomplete),
                "prefix {n}"
            );
        }
    }

    #[test]
    fn garbage_and_oversize_rejected() {
        assert!(parse_client_hello(b"GET / HTTP/1.1\r\n").is_err());
        assert!(parse_client_hello(&[22, 3, 1, 0, 0]).is_err());
        assert!(parse_client_hello(&[22, 4, 1, 0, 5, 1, 2, 3, 4, 5]).is_err());
        // Handshake claiming 1 MiB.
        assert!(parse_client_hello(&[22, 3, 1, 0, 4, 1, 0x10, 0, 0]).is_err());
        // Not a ClientHello (ServerHello type 2).
        assert!(parse_client_hello(&[22, 3, 1, 0, 4, 2, 0, 0, 0]).is_err());
        // Endless tiny records never completing the hello.
        let mut endless = vec![];
        endless.extend_from_slice(&[22, 3, 1, 0, 4, 1, 0, 0x3f, 0xff]);
        while endless.len() < MAX_HELLO + 100 {
            endless.extend_from_slice(&[22, 3, 1, 0, 1, 0]);
        }
        assert!(parse_client_hello(&endless).is_err());
        // Bad name in SNI.
        assert!(parse_client_hello(&build_client_hello(Some("a b.com"))).is_err());
        assert!(parse_client_hello(&build_client_hello(Some(""))).is_err());
    }

    #[test]
    fn ip_sni_is_canonical() {
        assert_eq!(
            done(&build_client_hello(Some("127.1"))),
            Some(Host::Ip("127.0.0.1".parse().expect("literal")))
        );
    }

    proptest::proptest! {
        #[test]
        fn never_panics(data in proptest::collection::vec(proptest::num::u8::ANY, 0..600)) {
            let _ = parse_client_hello(&data);
            let mut rec = vec![22, 3, 1];
            rec.extend_from_slice(&(data.len() as u16).to_be_bytes());
            rec.extend_from_slice(&data);
            let _ = parse_client_hello(&rec);
        }

        #[test]
        fn mutated_hello_never_panics(pos in 0usize..80, val: u8) {
            let mut h = build_client_hello(Some("x.example"));
            if pos < h.len() { h[pos] = val; }
            let _ = parse_client_hello(&h);
        }
    }
}
