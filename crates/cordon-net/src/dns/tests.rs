use super::*;
use crate::event::Decided;
use crate::policy::NetConfig;
use hickory_proto::rr::Name;
use std::net::IpAddr;

fn policy() -> NetPolicy {
    NetPolicy::new(NetConfig {
        allow: vec![
            crate::policy::test_domain("api.test"),
            crate::policy::test_domain("*.wild.test"),
        ],
        deny: vec![crate::policy::test_domain("no.wild.test")],
        ..NetConfig::default()
    })
    .expect("policy")
}

fn query(name: &str, ty: RecordType) -> Vec<u8> {
    let mut m = Message::new();
    m.set_id(0x4242).set_recursion_desired(true);
    m.add_query(Query::query(Name::from_ascii(name).expect("name"), ty));
    m.to_vec().expect("encode")
}

fn decode(a: &Answer) -> Message {
    Message::from_vec(a.response.as_deref().expect("a response")).expect("decodes")
}

#[test]
fn allowed_names_get_synthetic_addresses() {
    let (p, s) = (policy(), Synth::new());
    let a = respond(&query("API.test.", RecordType::A), &p, &s);
    assert_eq!(a.decision, Decided::Answered);
    assert_eq!(a.name, "api.test.");
    let m = decode(&a);
    assert_eq!(m.id(), 0x4242);
    assert_eq!(m.response_code(), ResponseCode::NoError);
    assert_eq!(m.message_type(), MessageType::Response);
    let ip = match m.answers()[0].data() {
        RData::A(a) => IpAddr::V4(a.0),
        other => panic!("{other:?}"),
    };
    assert!(Synth::is_synthetic(ip));
    assert_eq!(s.name_of(ip).as_deref(), Some("api.test"));
    let b = decode(&respond(&query("x.wild.test.", RecordType::AAAA), &p, &s));
    let ip6 = match b.answers()[0].data() {
        RData::AAAA(a) => IpAddr::V6(a.0),
        other => panic!("{other:?}"),
    };
    assert_eq!(s.name_of(ip6).as_deref(), Some("x.wild.test"));
    assert_ne!(s.name_of(ip), s.name_of(ip6));
}

#[test]
fn other_types_for_allowed_names_are_empty() {
    let (p, s) = (policy(), Synth::new());
    for ty in [RecordType::TXT, RecordType::MX, RecordType::HTTPS] {
        let a = respond(&query("api.test.", ty), &p, &s);
        assert_eq!(a.decision, Decided::Nodata);
        let m = decode(&a);
        assert_eq!(m.response_code(), ResponseCode::NoError);
        assert!(m.answers().is_empty());
    }
}

#[test]
fn denied_names_get_nxdomain() {
    let (p, s) = (policy(), Synth::new());
    for (n, ty) in [
        ("evil.test.", RecordType::A),
        ("c2VjcmV0.exfil.test.", RecordType::TXT),
        ("no.wild.test.", RecordType::A),
        ("wild.test.", RecordType::AAAA),
        ("api.test.evil.", RecordType::A),
        ("1.2.3.4.", RecordType::A),
    ] {
        let a = respond(&query(n, ty), &p, &s);
        assert_eq!(a.decision, Decided::Nxdomain, "{n}");
        assert_eq!(decode(&a).response_code(), ResponseCode::NXDomain, "{n}");
        assert!(decode(&a).answers().is_empty());
    }
}

#[test]
fn malformed_packets() {
    let (p, s) = (policy(), Synth::new());
    assert_eq!(respond(&[], &p, &s).response, None);
    assert_eq!(respond(&[1, 2, 3], &p, &s).response, None);
    let junk = [
        0x12, 0x34, 0x01, 0x00, 0x00, 0x01, 0, 0, 0, 0, 0, 0, 0xff, 0xff,
    ];
    let a = respond(&junk, &p, &s);
    assert_eq!(a.decision, Decided::Formerr);
    let m = decode(&a);
    assert_eq!(m.id(), 0x1234);
    assert_eq!(m.response_code(), ResponseCode::FormErr);
    // Responses sent to the stub are dropped.
    let mut resp = query("api.test.", RecordType::A);
    resp[2] |= 0x80;
    assert_eq!(respond(&resp, &p, &s).response, None);
    // Two questions.
    let mut m = Message::new();
    m.add_query(Query::query(
        Name::from_ascii("api.test.").expect("n"),
        RecordType::A,
    ));
    m.add_query(Query::query(
        Name::from_ascii("evil.test.").expect("n"),
        RecordType::A,
    ));
    let a = respond(&m.to_vec().expect("enc"), &p, &s);
    assert_eq!(decode(&a).response_code(), ResponseCode::FormErr);
    // Non-query opcode.
    let mut m = Message::new();
    m.set_op_code(OpCode::Update);
    m.add_query(Query::query(
        Name::from_ascii("api.test.").expect("n"),
        RecordType::A,
    ));
    let a = respond(&m.to_vec().expect("enc"), &p, &s);
    assert_eq!(decode(&a).response_code(), ResponseCode::NotImp);
}

proptest::proptest! {
    #[test]
    fn never_panics(data in proptest::collection::vec(proptest::num::u8::ANY, 0..600)) {
        let (p, s) = (policy(), Synth::new());
        let _ = respond(&data, &p, &s);
    }

    #[test]
    fn mutated_query_never_panics(pos in 0usize..40, val: u8) {
        let (p, s) = (policy(), Synth::new());
        let mut q = query("api.test.", RecordType::A);
        if pos < q.len() { q[pos] = val; }
        let _ = respond(&q, &p, &s);
    }
}
