//! The ask hook, end to end on loopback: a SOCKS5 client asks for a name no
//! rule names, under `unknown = "ask"`.

use super::*;
use crate::event::Kind;
use crate::{Door, DoorOptions, Listeners, NetConfig, NetPolicy, OriginalDst, Unknown};
use cordon_policy::{CidrPattern, Origin, Rule, Tier};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

struct Fixed {
    answer: Outcome,
    asked: Mutex<Vec<AskRequest>>,
}

impl Approver for Fixed {
    fn ask(&self, req: AskRequest) -> Pin<Box<dyn Future<Output = Outcome> + Send>> {
        if let Ok(mut v) = self.asked.lock() {
            v.push(req);
        }
        let a = self.answer;
        Box::pin(async move { a })
    }
}

fn upstream() -> (u16, Arc<AtomicUsize>) {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind upstream");
    let port = l.local_addr().expect("addr").port();
    let n = Arc::new(AtomicUsize::new(0));
    let n2 = n.clone();
    std::thread::spawn(move || {
        for mut s in l.incoming().flatten() {
            n2.fetch_add(1, Ordering::SeqCst);
            let _ = s.write_all(b"hi");
        }
    });
    (port, n)
}

type Events = Arc<Mutex<Vec<crate::Event>>>;

fn door(cfg: NetConfig, approver: Option<Arc<dyn Approver>>) -> (Door, std::net::SocketAddr) {
    let (d, addr, _) = door_events(cfg, approver);
    (d, addr)
}

fn door_events(
    cfg: NetConfig,
    approver: Option<Arc<dyn Approver>>,
) -> (Door, std::net::SocketAddr, Events) {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind socks");
    let addr = l.local_addr().expect("addr");
    let events: Events = Arc::default();
    let sink = events.clone();
    let d = Door::start_with(
        Listeners {
            socks: vec![l],
            ..Default::default()
        },
        Arc::new(NetPolicy::new(cfg).expect("policy")),
        Arc::new(OriginalDst::new()),
        Arc::new(move |e| {
            if let Ok(mut v) = sink.lock() {
                v.push(e);
            }
        }),
        DoorOptions {
            approver,
            ..DoorOptions::default()
        },
    )
    .expect("door");
    (d, addr, events)
}

fn config(cidrs: bool) -> NetConfig {
    NetConfig {
        unknown: Unknown::Ask,
        hosts: vec![(
            "up.test".into(),
            "127.0.0.1".parse().expect("ip"),
            "test".into(),
        )],
        allow_cidrs: if cidrs {
            vec![Rule::new(
                CidrPattern::parse("127.0.0.0/8:*").expect("valid"),
                Origin::bare(Tier::User),
            )]
        } else {
            vec![]
        },
        ..NetConfig::default()
    }
}

/// SOCKS5 CONNECT to up.test:port; returns the reply code and what the upstream sent.
fn socks(door: std::net::SocketAddr, port: u16) -> (u8, Vec<u8>) {
    let mut s = TcpStream::connect(door).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut req = vec![5, 1, 0, 5, 1, 0, 3, 7];
    req.extend_from_slice(b"up.test");
    req.extend_from_slice(&port.to_be_bytes());
    s.write_all(&req).expect("send");
    let mut head = [0u8; 2 + 10];
    if s.read_exact(&mut head).is_err() {
        return (255, vec![]);
    }
    let mut rest = Vec::new();
    if head[3] == 0 {
        let mut b = [0u8; 2];
        if s.read_exact(&mut b).is_ok() {
            rest.extend_from_slice(&b);
        }
    }
    (head[3], rest)
}

#[test]
fn approved_connection_passes_and_each_connection_asks() {
    let (port, n) = upstream();
    let a = Arc::new(Fixed {
        answer: Outcome::Granted(cordon_policy::Grant::Once),
        asked: Mutex::new(vec![]),
    });
    let (_d, addr) = door(config(true), Some(a.clone()));
    for i in 1..=2 {
        let (code, got) = socks(addr, port);
        assert_eq!(code, 0, "allowed after asking");
        assert_eq!(got, b"hi");
        assert_eq!(a.asked.lock().map(|v| v.len()).unwrap_or(0), i);
    }
    assert_eq!(n.load(Ordering::SeqCst), 2);
    let asked = a.asked.lock().map(|v| v[0].clone()).expect("asked");
    assert_eq!(asked.target, crate::Host::Name("up.test".into()));
    assert_eq!(asked.port, port);
    assert_eq!(asked.rule, "no rule: unknown = ask");
    assert!(asked.peer.is_some());
}

#[test]
fn refused_when_the_approver_says_no_or_is_absent() {
    let (port, n) = upstream();
    let a = Arc::new(Fixed {
        answer: Outcome::Denied,
        asked: Mutex::new(vec![]),
    });
    let (_d, addr, ev) = door_events(config(true), Some(a.clone()));
    assert_eq!(socks(addr, port).0, 2);
    let (_d2, addr2, ev2) = door_events(config(true), None);
    assert_eq!(socks(addr2, port).0, 2);
    assert_eq!(n.load(Ordering::SeqCst), 0);
    assert_eq!(a.asked.lock().map(|v| v.len()).unwrap_or(0), 1);
    // The refusal says how the question ended, or that there was nobody to ask.
    let deny = |ev: &Events| {
        ev.lock()
            .ok()
            .and_then(|v| v.iter().find(|e| e.kind == Kind::Deny).cloned())
            .expect("a deny event")
    };
    let (asked, unasked) = (deny(&ev), deny(&ev2));
    assert_eq!(
        (asked.decision, asked.asked),
        (crate::event::Decided::Deny, Some(Outcome::Denied))
    );
    assert_eq!(
        (unasked.decision, unasked.asked),
        (crate::event::Decided::Ask, None)
    );
    assert_eq!(asked.rule, unasked.rule);
}

#[test]
fn approval_does_not_lift_special_ranges() {
    // Approved, but the name resolves to loopback, which needs allow_cidrs.
    let (port, n) = upstream();
    let a = Arc::new(Fixed {
        answer: Outcome::Granted(cordon_policy::Grant::Once),
        asked: Mutex::new(vec![]),
    });
    let (_d, addr) = door(config(false), Some(a));
    assert_ne!(socks(addr, port).0, 0);
    assert_eq!(n.load(Ordering::SeqCst), 0);
}

#[test]
fn policy_ask_verdicts() {
    let p = NetPolicy::new(NetConfig {
        deny: vec![crate::policy::test_domain("bad.test:*")],
        ..config(true)
    })
    .expect("policy");
    let v = p.check(&crate::Host::Name("x.test".into()), 443);
    assert!(matches!(v, crate::Decision::Ask(_)), "{v:?}");
    assert!(!p.check(&crate::Host::Name("bad.test".into()), 443).is_ask());
    assert!(p.name_may_resolve("x.test"));
    assert!(!p.name_may_resolve("bad.test"));
    let lo = "127.0.0.1".parse().expect("ip");
    assert!(!p.check_resolved(Some("x.test"), lo, 443).is_allow());
    assert!(p
        .check_resolved_approved(Some("x.test"), lo, 443)
        .is_allow());
    assert!(!p
        .check_resolved_approved(Some("bad.test"), lo, 443)
        .is_allow());
    let meta = "169.254.169.254".parse().expect("ip");
    assert!(!p.check_resolved_approved(None, meta, 80).is_allow());
    let deny_all = NetPolicy::new(NetConfig::default()).expect("policy");
    assert!(!deny_all.name_may_resolve("x.test"));
    assert!(!deny_all
        .check(&crate::Host::Name("x.test".into()), 443)
        .is_ask());
}
