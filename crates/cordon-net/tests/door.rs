//! The door end to end on loopback: proxies, tunnels, DNS, transparent door.

mod common;

use common::*;
use cordon_net::event::{Decided, Kind};
use cordon_net::sni::build_client_hello;
use cordon_net::socks::build_request;
use cordon_net::DoorOptions;
use std::io::Write;
use std::time::{Duration, Instant};

fn checked(port: u16) -> DoorOptions {
    DoorOptions {
        checked_ports: vec![80, 443, port],
        ..DoorOptions::default()
    }
}

#[test]
fn connect_allowed_tls_flows_and_is_logged() {
    let up = echo();
    let port = up.addr.port();
    let r = rig(
        config(&[&format!("echo.test:{port}")], &[], true),
        checked(port),
    );
    let mut c = client(r.http);
    write!(
        c,
        "CONNECT echo.test:{port} HTTP/1.1\r\nHost: echo.test:{port}\r\n\r\n"
    )
    .expect("send");
    let head = read_head(&mut c);
    assert!(
        head.starts_with("HTTP/1.1 200 Connection established"),
        "{head}"
    );
    let hello = build_client_hello(Some("echo.test"));
    c.write_all(&hello).expect("hello");
    assert_eq!(read_exact_n(&mut c, hello.len()), hello);
    c.write_all(b"more bytes").expect("send");
    assert_eq!(read_exact_n(&mut c, 10), b"more bytes");
    drop(c);
    let close = r.wait_event(|e| e.kind == Kind::Close && e.via == "connect");
    assert_eq!(close.bytes_up, (hello.len() + 10) as u64);
    assert_eq!(close.bytes_down, (hello.len() + 10) as u64);
    assert!(close.rule.contains("echo.test"), "{}", close.rule);
    assert!(r
        .events()
        .iter()
        .any(|e| e.kind == Kind::Connect && e.target == "echo.test"));
    assert_eq!(up.count(), 1);
}

#[test]
fn connect_denied_name_gets_403_and_nothing_reaches_upstream() {
    let up = echo();
    let port = up.addr.port();
    let r = rig(
        config(&[&format!("echo.test:{port}")], &[], true),
        checked(port),
    );
    for target in [
        format!("evil.test:{port}"),
        format!("echo.test.evil.test:{port}"),
        format!("evilecho.test:{port}"),
        format!("127.0.0.1:{port}").replace("127.0.0.1", "8.8.8.8"),
    ] {
        let mut c = client(r.http);
        write!(c, "CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n").expect("send");
        let resp = String::from_utf8_lossy(&read_head_and_body(&mut c)).into_owned();
        assert!(resp.starts_with("HTTP/1.1 403"), "{target}: {resp}");
        assert!(
            resp.contains("rule:") && resp.contains("to allow it:"),
            "{resp}"
        );
    }
    let r2 = r.wait_event(|e| e.kind == Kind::Deny && e.target == "evil.test");
    assert_eq!(r2.rule, "no rule: unknown = deny");
    assert!(
        r2.fix.contains(&format!("--allow-domain evil.test:{port}")),
        "{}",
        r2.fix
    );
    assert_eq!(up.count(), 0);
}

fn read_head_and_body(c: &mut std::net::TcpStream) -> Vec<u8> {
    let head = read_head(c);
    let len = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().to_string())
        })
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(0);
    let mut out = head.into_bytes();
    out.extend_from_slice(&read_exact_n(c, len));
    out
}

#[test]
fn sni_mismatch_denied_before_upstream_connect() {
    let up = echo();
    let port = up.addr.port();
    let r = rig(
        config(
            &[&format!("echo.test:{port}"), &format!("other.test:{port}")],
            &[],
            true,
        ),
        checked(port),
    );
    for sni in [Some("other.test"), None, Some("evil.test")] {
        let mut c = client(r.http);
        write!(c, "CONNECT echo.test:{port} HTTP/1.1\r\n\r\n").expect("send");
        assert!(read_head(&mut c).starts_with("HTTP/1.1 200"));
        c.write_all(&build_client_hello(sni)).expect("hello");
        assert!(read_to_close(&mut c).is_empty(), "{sni:?}");
    }
    // Not TLS, not HTTP on a checked port.
    let mut c = client(r.http);
    write!(c, "CONNECT echo.test:{port} HTTP/1.1\r\n\r\n").expect("send");
    assert!(read_head(&mut c).starts_with("HTTP/1.1 200"));
    c.write_all(b"SSH-2.0-OpenSSH_9.2\r\n").expect("send");
    assert!(read_to_close(&mut c).is_empty());
    // HTTP inside the tunnel must name the tunnel's host.
    let mut c = client(r.http);
    write!(c, "CONNECT echo.test:{port} HTTP/1.1\r\n\r\n").expect("send");
    assert!(read_head(&mut c).starts_with("HTTP/1.1 200"));
    c.write_all(b"GET / HTTP/1.1\r\nHost: other.test\r\n\r\n")
        .expect("send");
    assert!(read_to_close(&mut c).is_empty());
    r.wait_event(|e| e.kind == Kind::Deny && e.rule == "fronting check");
    // The tunnel is connected before the CONNECT is answered (so an unreachable destination
    // gets a 502), but no byte goes upstream until the first bytes passed.
    assert_eq!(up.bytes(), 0);
}

#[test]
fn rebinding_to_loopback_is_denied() {
    let up = echo();
    let port = up.addr.port();
    // No allow_cidrs: rebind.test resolves (via hosts) to 127.0.0.1.
    let r = rig(
        config(&[&format!("rebind.test:{port}")], &[], false),
        DoorOptions::default(),
    );
    let mut c = client(r.http);
    write!(c, "CONNECT rebind.test:{port} HTTP/1.1\r\n\r\n").expect("send");
    let resp = String::from_utf8_lossy(&read_head_and_body(&mut c)).into_owned();
    assert!(resp.starts_with("HTTP/1.1 403"), "{resp}");
    assert!(resp.contains("127.0.0.1/32"), "{resp}");
    // Raw IP spellings of loopback.
    for t in [
        "127.1",
        "0x7f.1",
        "2130706433",
        "[::ffff:127.0.0.1]",
        "0.0.0.0",
    ] {
        let mut c = client(r.http);
        write!(c, "CONNECT {t}:{port} HTTP/1.1\r\n\r\n").expect("send");
        let resp = String::from_utf8_lossy(&read_head_and_body(&mut c)).into_owned();
        assert!(resp.starts_with("HTTP/1.1 403"), "{t}: {resp}");
    }
    assert_eq!(up.count(), 0);
}

#[test]
fn http_forward_and_fronting() {
    let up = http();
    let port = up.addr.port();
    let r = rig(
        config(&[&format!("web.test:{port}")], &[], true),
        DoorOptions::default(),
    );
    let mut c = client(r.http);
    write!(c, "GET http://web.test:{port}/x?y=1 HTTP/1.1\r\nHost: web.test:{port}\r\nProxy-Authorization: secret\r\n\r\n")
        .expect("send");
    let resp = String::from_utf8_lossy(&read_head_and_body(&mut c)).into_owned();
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    assert!(resp.ends_with("hello"), "{resp}");
    let seen =
        String::from_utf8_lossy(&up.seen.lock().unwrap_or_else(|p| p.into_inner())).into_owned();
    assert!(seen.starts_with("GET /x?y=1 HTTP/1.1\r\n"), "{seen}");
    assert!(
        !seen.to_ascii_lowercase().contains("proxy-authorization"),
        "{seen}"
    );
    r.wait_event(|e| e.kind == Kind::Close && e.via == "http" && e.bytes_down > 0);
    assert_eq!(up.count(), 1);

    for (line, host) in [
        (
            format!("http://web.test:{port}/"),
            format!("other.test:{port}"),
        ),
        (
            format!("http://web.test:{port}/"),
            format!("web.test:{}", port.wrapping_add(1)),
        ),
        (
            format!("http://other.test:{port}/"),
            format!("other.test:{port}"),
        ),
        (
            format!("http://web.test@other.test:{port}/"),
            format!("other.test:{port}"),
        ),
        (format!("http://8.8.8.8:{port}/"), format!("8.8.8.8:{port}")),
    ] {
        let mut c = client(r.http);
        write!(c, "GET {line} HTTP/1.1\r\nHost: {host}\r\n\r\n").expect("send");
        let resp = String::from_utf8_lossy(&read_head_and_body(&mut c)).into_owned();
        assert!(
            resp.starts_with("HTTP/1.1 403") || resp.starts_with("HTTP/1.1 400"),
            "{line} {host}: {resp}"
        );
    }
    // Smuggling-shaped framing.
    let mut c = client(r.http);
    write!(
        c,
        "POST http://web.test:{port}/ HTTP/1.1\r\nHost: web.test:{port}\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
    )
    .expect("send");
    let resp = String::from_utf8_lossy(&read_head_and_body(&mut c)).into_owned();
    // Refused, or (hyper drops Content-Length when chunked) forwarded with
    // one framing only: never both headers upstream.
    if resp.starts_with("HTTP/1.1 400") {
        assert_eq!(up.count(), 1);
    } else {
        assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
        let seen = String::from_utf8_lossy(&up.seen.lock().unwrap_or_else(|p| p.into_inner()))
            .to_ascii_lowercase();
        let last = seen.rsplit("post ").next().unwrap_or_default().to_string();
        assert!(
            !(last.contains("content-length") && last.contains("transfer-encoding")),
            "{last}"
        );
    }
}

#[test]
fn hostile_heads_are_refused() {
    let up = http();
    let port = up.addr.port();
    let r = rig(
        config(&[&format!("web.test:{port}")], &[], true),
        DoorOptions::default(),
    );
    let mut huge = format!("GET http://web.test:{port}/ HTTP/1.1\r\nHost: web.test:{port}\r\n");
    for i in 0..200 {
        huge.push_str(&format!("X-{i}: {}\r\n", "a".repeat(500)));
    }
    huge.push_str("\r\n");
    let mut c = client(r.http);
    let _ = c.write_all(huge.as_bytes());
    let resp = String::from_utf8_lossy(&read_to_close(&mut c)).into_owned();
    assert!(!resp.starts_with("HTTP/1.1 200"), "{resp}");
    let mut c = client(r.http);
    let long = format!("CONNECT {}.test:443 HTTP/1.1\r\n\r\n", "a".repeat(400));
    c.write_all(long.as_bytes()).expect("send");
    let t0 = Instant::now();
    let resp = String::from_utf8_lossy(&read_to_close(&mut c)).into_owned();
    assert!(
        t0.elapsed() < Duration::from_secs(5),
        "a refused request closes the connection"
    );
    assert!(resp.starts_with("HTTP/1.1 4"), "{resp}");
    let mut c = client(r.http);
    c.write_all(b"\x00\x01garbage\r\n\r\n").expect("send");
    let resp = String::from_utf8_lossy(&read_to_close(&mut c)).into_owned();
    assert!(!resp.starts_with("HTTP/1.1 200"), "{resp}");
    // The door still serves.
    let mut c = client(r.http);
    write!(
        c,
        "GET http://web.test:{port}/ HTTP/1.1\r\nHost: web.test:{port}\r\n\r\n"
    )
    .expect("send");
    assert!(read_head(&mut c).starts_with("HTTP/1.1 200"));
    assert_eq!(up.count(), 1);
}

fn socks_connect(r: &Rig, req: &[u8]) -> (std::net::TcpStream, Vec<u8>) {
    let mut c = client(r.socks);
    c.write_all(&[5, 1, 0]).expect("greeting");
    assert_eq!(read_exact_n(&mut c, 2), [5, 0]);
    c.write_all(req).expect("request");
    let rep = read_to_reply(&mut c);
    (c, rep)
}

fn read_to_reply(c: &mut std::net::TcpStream) -> Vec<u8> {
    let mut v = vec![0u8; 10];
    match std::io::Read::read_exact(c, &mut v) {
        Ok(()) => v,
        Err(_) => Vec::new(),
    }
}

#[test]
fn socks5_works_and_denies() {
    let up = echo();
    let port = up.addr.port();
    let r = rig(
        config(&[&format!("echo.test:{port}")], &[], true),
        DoorOptions::default(),
    );
    // Raw TCP on an explicitly allowed odd port.
    let (mut c, rep) = socks_connect(&r, &build_request("echo.test", port));
    assert_eq!(rep[1], 0, "{rep:?}");
    c.write_all(b"ping").expect("send");
    assert_eq!(read_exact_n(&mut c, 4), b"ping");
    drop(c);
    assert_eq!(up.count(), 1);
    // Denied name.
    let (_c, rep) = socks_connect(&r, &build_request("evil.test", port));
    assert_eq!(rep[1], 0x02);
    // Raw IP outside allow_cidrs.
    let mut req = vec![5, 1, 0, 1, 8, 8, 8, 8];
    req.extend_from_slice(&port.to_be_bytes());
    let (_c, rep) = socks_connect(&r, &req);
    assert_eq!(rep[1], 0x02);
    // BIND and UDP ASSOCIATE are not supported.
    for cmd in [2u8, 3] {
        let mut req = vec![5, cmd, 0, 1, 127, 0, 0, 1];
        req.extend_from_slice(&port.to_be_bytes());
        let (_c, rep) = socks_connect(&r, &req);
        assert_eq!(rep[1], 0x07);
    }
    // No acceptable auth method.
    let mut c = client(r.socks);
    c.write_all(&[5, 1, 2]).expect("greeting");
    assert_eq!(read_exact_n(&mut c, 2), [5, 0xff]);
    r.wait_event(|e| e.via == "socks" && e.kind == Kind::Deny && e.target == "evil.test");
    assert_eq!(up.count(), 1);
}

#[test]
fn socks5_checks_sni_on_checked_ports() {
    let up = echo();
    let port = up.addr.port();
    let r = rig(
        config(&[&format!("echo.test:{port}")], &[], true),
        checked(port),
    );
    let (mut c, rep) = socks_connect(&r, &build_request("echo.test", port));
    assert_eq!(rep[1], 0);
    c.write_all(&build_client_hello(Some("other.test")))
        .expect("hello");
    assert!(read_to_close(&mut c).is_empty());
    assert_eq!(up.bytes(), 0);
    let (mut c, rep) = socks_connect(&r, &build_request("echo.test", port));
    assert_eq!(rep[1], 0);
    let hello = build_client_hello(Some("echo.test"));
    c.write_all(&hello).expect("hello");
    assert_eq!(read_exact_n(&mut c, hello.len()), hello);
    assert_eq!(up.count(), 2);
}

mod dns_client {
    use hickory_proto::op::{Message, Query};
    use hickory_proto::rr::{Name, RecordType};

    pub fn query(name: &str, ty: RecordType) -> Vec<u8> {
        let mut m = Message::new();
        m.set_id(7).set_recursion_desired(true);
        m.add_query(Query::query(Name::from_ascii(name).expect("name"), ty));
        m.to_vec().expect("encode")
    }

    pub fn decode(b: &[u8]) -> Message {
        Message::from_vec(b).expect("decode")
    }
}

#[test]
fn dns_answers_and_refuses() {
    use hickory_proto::op::ResponseCode;
    use hickory_proto::rr::{RData, RecordType};
    let r = rig(config(&["echo.test"], &[], true), DoorOptions::default());
    let u = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    u.set_read_timeout(Some(T)).expect("timeout");
    let ask = |name: &str, ty| {
        u.send_to(&dns_client::query(name, ty), r.dns_udp)
            .expect("send");
        let mut buf = [0u8; 2048];
        let n = u.recv(&mut buf).expect("answer");
        dns_client::decode(&buf[..n])
    };
    let m = ask("echo.test.", RecordType::A);
    assert_eq!(m.response_code(), ResponseCode::NoError);
    let ip = match m.answers()[0].data() {
        RData::A(a) => std::net::IpAddr::V4(a.0),
        o => panic!("{o:?}"),
    };
    assert_eq!(r.synth().name_of(ip).as_deref(), Some("echo.test"));
    let m = ask("c2VjcmV0.evil.test.", RecordType::A);
    assert_eq!(m.response_code(), ResponseCode::NXDomain);
    let m = ask("echo.test.", RecordType::TXT);
    assert_eq!(m.response_code(), ResponseCode::NoError);
    assert!(m.answers().is_empty());
    // Garbage gets FORMERR, and the stub keeps serving.
    u.send_to(&[0xab, 0xcd, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xff], r.dns_udp)
        .expect("send");
    let mut buf = [0u8; 512];
    let n = u.recv(&mut buf).expect("formerr");
    assert_eq!(
        dns_client::decode(&buf[..n]).response_code(),
        ResponseCode::FormErr
    );
    // TCP with a length prefix.
    let mut c = client(r.dns_tcp);
    let q = dns_client::query("echo.test.", RecordType::AAAA);
    let mut framed = (q.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(&q);
    c.write_all(&framed).expect("send");
    let len = read_exact_n(&mut c, 2);
    let body = read_exact_n(&mut c, usize::from(u16::from_be_bytes([len[0], len[1]])));
    let m = dns_client::decode(&body);
    match m.answers()[0].data() {
        RData::AAAA(a) => assert_eq!(
            r.synth().name_of(std::net::IpAddr::V6(a.0)).as_deref(),
            Some("echo.test")
        ),
        o => panic!("{o:?}"),
    }
    r.wait_event(|e| {
        e.kind == Kind::Dns && e.decision == Decided::Nxdomain && e.target.starts_with("c2vjcmv0")
    });
}

/// Connects to the transparent door from a socket whose local address was
/// registered first, as the interceptor does.
fn transparent_client(
    r: &Rig,
    dst: std::net::SocketAddr,
    register: bool,
) -> std::io::Result<std::net::TcpStream> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("rt");
    let s = rt.block_on(async {
        let sock = tokio::net::TcpSocket::new_v4().expect("socket");
        sock.bind("127.0.0.1:0".parse().expect("addr"))
            .expect("bind");
        if register {
            r.dst.register(sock.local_addr().expect("local"), dst);
        }
        sock.connect(r.transparent).await
    })?;
    let s = s.into_std()?;
    s.set_nonblocking(false)?;
    s.set_read_timeout(Some(T))?;
    Ok(s)
}

#[test]
fn transparent_door() {
    let up = echo();
    let port = up.addr.port();
    let r = rig(
        config(&[&format!("echo.test:{port}")], &[], true),
        DoorOptions::default(),
    );
    // A synthetic address from the DNS stub stands for the name.
    let (v4, _) = r.synth().assign("echo.test").expect("room");
    let mut c = transparent_client(&r, (v4, port).into(), true).expect("connect");
    c.write_all(b"through").expect("send");
    assert_eq!(read_exact_n(&mut c, 7), b"through");
    drop(c);
    r.wait_event(|e| e.via == "transparent" && e.kind == Kind::Close && e.bytes_up == 7);
    assert_eq!(up.count(), 1);
    // Denied: a synthetic address for another name, a raw IP, no registration.
    let (other, _) = r.synth().assign("evil.test").expect("room");
    for (dst, register) in [
        (std::net::SocketAddr::from((other, port)), true),
        (std::net::SocketAddr::from(([10, 0, 0, 1], port)), true),
        (std::net::SocketAddr::from(([240, 0, 0, 99], port)), true),
        (std::net::SocketAddr::from(([8, 8, 8, 8], 443)), true),
        (std::net::SocketAddr::from(([8, 8, 8, 8], 443)), false),
    ] {
        let start = Instant::now();
        // The reset may already arrive during connect.
        if let Ok(mut c) = transparent_client(&r, dst, register) {
            let _ = c.write_all(b"x");
            let got = read_to_close(&mut c);
            assert!(got.is_empty(), "{dst}");
        }
        assert!(
            start.elapsed() < Duration::from_secs(3),
            "{dst}: took {:?}",
            start.elapsed()
        );
    }
    assert_eq!(up.count(), 1);
}

#[test]
fn slowloris_is_dropped_in_bounded_time() {
    let up = echo();
    let port = up.addr.port();
    let opts = DoorOptions {
        head_timeout: Duration::from_millis(500),
        first_bytes_timeout: Duration::from_millis(500),
        ..checked(port)
    };
    let r = rig(config(&[&format!("echo.test:{port}")], &[], true), opts);
    // A head that never finishes.
    let start = Instant::now();
    let mut c = client(r.http);
    c.write_all(b"GET http://echo.test/ HTTP/1.1\r\nX-a: b\r\n")
        .expect("send");
    let _ = read_to_close(&mut c);
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "head: {:?}",
        start.elapsed()
    );
    // A tunnel whose first bytes never come.
    let start = Instant::now();
    let mut c = client(r.http);
    write!(c, "CONNECT echo.test:{port} HTTP/1.1\r\n\r\n").expect("send");
    assert!(read_head(&mut c).starts_with("HTTP/1.1 200"));
    c.write_all(&build_client_hello(Some("echo.test"))[..10])
        .expect("send");
    assert!(read_to_close(&mut c).is_empty());
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "tunnel: {:?}",
        start.elapsed()
    );
    // SOCKS5 handshake that stalls, and a silent transparent client.
    let start = Instant::now();
    let mut c = client(r.socks);
    c.write_all(&[5]).expect("send");
    let _ = read_to_close(&mut c);
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "socks: {:?}",
        start.elapsed()
    );
    assert_eq!(up.bytes(), 0);
}

#[test]
fn connection_limit_refuses_excess() {
    let up = echo();
    let port = up.addr.port();
    let opts = DoorOptions {
        max_conns: 2,
        head_timeout: Duration::from_secs(5),
        ..DoorOptions::default()
    };
    let r = rig(config(&[&format!("echo.test:{port}")], &[], true), opts);
    let _a = client(r.socks);
    let _b = client(r.socks);
    std::thread::sleep(Duration::from_millis(200));
    let mut c = client(r.socks);
    let _ = c.write_all(&[5, 1, 0]);
    assert!(read_to_close(&mut c).is_empty());
    r.wait_event(|e| e.rule == "built-in: connection limit");
}

#[test]
fn synthetic_addresses_work_as_proxy_targets() {
    let up = echo();
    let port = up.addr.port();
    let r = rig(
        config(&[&format!("echo.test:{port}")], &[], true),
        DoorOptions::default(),
    );
    let (v4, v6) = r.synth().assign("echo.test").expect("room");
    let mut req = vec![5, 1, 0, 1];
    req.extend_from_slice(&v4.octets());
    req.extend_from_slice(&port.to_be_bytes());
    let (mut c, rep) = socks_connect(&r, &req);
    assert_eq!(rep[1], 0, "{rep:?}");
    c.write_all(b"syn").expect("send");
    assert_eq!(read_exact_n(&mut c, 3), b"syn");
    let mut c = client(r.http);
    write!(c, "CONNECT [{v6}]:{port} HTTP/1.1\r\n\r\n").expect("send");
    assert!(read_head(&mut c).starts_with("HTTP/1.1 200"));
    c.write_all(b"six").expect("send");
    assert_eq!(read_exact_n(&mut c, 3), b"six");
    // A synthetic address of a denied name stays denied.
    let (ev, _) = r.synth().assign("evil.test").expect("room");
    let mut req = vec![5, 1, 0, 1];
    req.extend_from_slice(&ev.octets());
    req.extend_from_slice(&port.to_be_bytes());
    let (_c, rep) = socks_connect(&r, &req);
    assert_eq!(rep[1], 2);
    assert_eq!(up.count(), 2);
}

#[test]
fn unknown_ask_is_reported_as_ask() {
    let up = echo();
    let port = up.addr.port();
    let mut cfg = config(&[], &[], true);
    cfg.unknown = cordon_net::Unknown::Ask;
    let r = rig(cfg, DoorOptions::default());
    let (_c, rep) = socks_connect(&r, &build_request("echo.test", port));
    assert_eq!(rep[1], 2);
    let e = r.wait_event(|e| e.kind == Kind::Deny && e.target == "echo.test");
    assert_eq!(e.decision, Decided::Ask);
    assert_eq!(up.count(), 0);
}

#[test]
fn ipv6_loopback_listener() {
    let l = match std::net::TcpListener::bind("[::1]:0") {
        Ok(l) => l,
        Err(e) => {
            println!("skipping: no IPv6 loopback here ({e})");
            return;
        }
    };
    let addr = l.local_addr().expect("addr");
    let up = echo();
    let port = up.addr.port();
    let policy = cordon_net::NetPolicy::new(config(&[&format!("echo.test:{port}")], &[], true))
        .expect("policy");
    let door = cordon_net::Door::start(
        cordon_net::Listeners {
            http: vec![l],
            ..Default::default()
        },
        std::sync::Arc::new(policy),
        std::sync::Arc::new(cordon_net::OriginalDst::new()),
        std::sync::Arc::new(|_| {}),
    )
    .expect("door");
    let mut c = client(addr);
    write!(c, "CONNECT echo.test:{port} HTTP/1.1\r\n\r\n").expect("send");
    assert!(read_head(&mut c).starts_with("HTTP/1.1 200"));
    c.write_all(b"v6").expect("send");
    assert_eq!(read_exact_n(&mut c, 2), b"v6");
    drop(c);
    door.shutdown();
}

/// A response with a Content-Length body, read whole.
fn read_response(c: &mut std::net::TcpStream) -> (String, Vec<u8>) {
    let head = read_head(c);
    let len = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().parse::<usize>().unwrap_or(0))
        })
        .unwrap_or(0);
    let body = read_exact_n(c, len);
    (head, body)
}

fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

#[test]
fn unreachable_allowed_destination_gets_502_naming_the_cause() {
    let port = closed_port();
    let r = rig(
        config(
            &[&format!("echo.test:{port}"), "nowhere.invalid:443"],
            &[],
            true,
        ),
        DoorOptions {
            connect_timeout: Duration::from_secs(2),
            ..checked(port)
        },
    );
    let mut c = client(r.http);
    write!(c, "CONNECT echo.test:{port} HTTP/1.1\r\n\r\n").expect("send");
    let (head, body) = read_response(&mut c);
    let body = String::from_utf8_lossy(&body);
    assert!(head.starts_with("HTTP/1.1 502"), "{head}");
    assert!(
        body.contains("allowed but cannot be reached") && body.contains("refused"),
        "{body}"
    );
    let e = r.wait_event(|e| {
        e.kind == Kind::Close && e.decision == Decided::Error && e.via == "connect"
    });
    assert!(e.reason.contains("refused"), "{e:?}");
    // A name that does not resolve.
    let mut c = client(r.http);
    write!(c, "CONNECT nowhere.invalid:443 HTTP/1.1\r\n\r\n").expect("send");
    let (head, body) = read_response(&mut c);
    assert!(head.starts_with("HTTP/1.1 502"), "{head}");
    assert!(String::from_utf8_lossy(&body).contains("nowhere.invalid"));
    r.wait_event(|e| e.decision == Decided::Error && e.target == "nowhere.invalid");
    // SOCKS5 says "connection refused" (5) on a checked port too, before any data.
    let mut s = client(r.socks);
    s.write_all(&[5, 1, 0]).expect("greeting");
    assert_eq!(read_exact_n(&mut s, 2), [5, 0]);
    s.write_all(&build_request("echo.test", port))
        .expect("request");
    let rep = read_exact_n(&mut s, 10);
    assert_eq!(rep[1], 5, "{rep:?}");
}

#[test]
fn keep_alive_requests_must_all_name_the_tunnel_host() {
    let up = http_keepalive();
    let port = up.addr.port();
    let r = rig(
        config(
            &[&format!("echo.test:{port}"), &format!("other.test:{port}")],
            &[],
            true,
        ),
        checked(port),
    );
    let mut c = client(r.http);
    write!(c, "CONNECT echo.test:{port} HTTP/1.1\r\n\r\n").expect("send");
    assert!(read_head(&mut c).starts_with("HTTP/1.1 200"));
    write!(c, "GET /first HTTP/1.1\r\nHost: echo.test:{port}\r\n\r\n").expect("send");
    let (head, body) = read_response(&mut c);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert_eq!(body, b"ok");
    // The second request on the same connection names another host.
    write!(c, "GET /second HTTP/1.1\r\nHost: other.test:{port}\r\n\r\n").expect("send");
    let (head, body) = read_response(&mut c);
    assert!(head.starts_with("HTTP/1.1 403"), "{head}");
    assert!(String::from_utf8_lossy(&body).contains("other.test"));
    assert!(read_to_close(&mut c).is_empty(), "the connection must end");
    r.wait_event(|e| {
        e.kind == Kind::Deny && e.rule == "fronting check" && e.reason.contains("later request")
    });
    let seen = up.seen_text();
    assert!(seen.contains("/first"), "{seen}");
    assert!(
        !seen.contains("/second") && !seen.contains("other.test"),
        "{seen}"
    );
}

#[test]
fn keep_alive_session_to_one_host_works() {
    let up = http_keepalive();
    let port = up.addr.port();
    let r = rig(
        config(&[&format!("echo.test:{port}")], &[], true),
        checked(port),
    );
    let mut c = client(r.http);
    write!(c, "CONNECT echo.test:{port} HTTP/1.1\r\n\r\n").expect("send");
    assert!(read_head(&mut c).starts_with("HTTP/1.1 200"));
    for i in 0..3 {
        write!(c, "GET /r{i} HTTP/1.1\r\nHost: echo.test:{port}\r\n\r\n").expect("send");
        let (head, body) = read_response(&mut c);
        assert!(head.starts_with("HTTP/1.1 200"), "{i}: {head}");
        assert_eq!(body, b"ok");
    }
    drop(c);
    let close = r.wait_event(|e| e.kind == Kind::Close && e.via == "connect");
    assert!(close.bytes_down > 0 && close.bytes_up > 0, "{close:?}");
    let seen = up.seen_text();
    assert!(seen.contains("/r0") && seen.contains("/r2"), "{seen}");
    assert_eq!(up.count(), 1, "one upstream connection for the session");
}
