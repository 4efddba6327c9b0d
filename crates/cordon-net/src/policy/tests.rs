use super::*;

use cordon_policy::{Origin, Tier};

fn src(p: &str) -> Rule<DomainPattern> {
    Rule::new(
        DomainPattern::parse(p).expect("valid test pattern"),
        Origin::bare(Tier::User),
    )
}

fn cidr(p: &str) -> Rule<CidrPattern> {
    Rule::new(
        CidrPattern::parse(p).expect("valid test CIDR"),
        Origin::bare(Tier::User),
    )
}

fn policy(allow: &[&str], deny: &[&str], cidrs: &[&str], managed: &[&str]) -> NetPolicy {
    NetPolicy::new(NetConfig {
        allow: allow.iter().map(|p| src(p)).collect(),
        deny: deny.iter().map(|p| src(p)).collect(),
        allow_cidrs: cidrs.iter().map(|p| cidr(p)).collect(),
        managed_deny: managed.iter().map(|p| src(p)).collect(),
        ..NetConfig::default()
    })
    .expect("valid test policy")
}

fn name(n: &str) -> Host {
    Host::Name(n.into())
}

fn ip(s: &str) -> IpAddr {
    s.parse().expect("test literal")
}

#[test]
fn exact_name() {
    let p = policy(&["allowed.example"], &[], &[], &[]);
    assert!(p.check(&name("allowed.example"), 443).is_allow());
    assert!(p.check(&name("allowed.example"), 80).is_allow());
    assert!(!p.check(&name("allowed.example"), 22).is_allow());
    assert!(!p.check(&name("allowed.example.evil.test"), 443).is_allow());
    assert!(!p.check(&name("evilallowed.example"), 443).is_allow());
    assert!(!p.check(&name("sub.allowed.example"), 443).is_allow());
    assert!(!p.check(&name("example"), 443).is_allow());
}

#[test]
fn wildcard() {
    let p = policy(&["*.example.com"], &[], &[], &[]);
    assert!(p.check(&name("a.example.com"), 443).is_allow());
    assert!(p.check(&name("a.b.c.example.com"), 443).is_allow());
    assert!(!p.check(&name("example.com"), 443).is_allow());
    assert!(!p.check(&name("badexample.com"), 443).is_allow());
    assert!(!p.check(&name("a.example.com.evil"), 443).is_allow());
    assert!(!p.check(&name("a.example.co"), 443).is_allow());
}

#[test]
fn case_and_trailing_dot_in_patterns() {
    let p = policy(&["API.Example.COM.", "*.X.Org.:8443"], &[], &[], &[]);
    assert!(p
        .check(&parse_host("api.example.com.").expect("ok"), 443)
        .is_allow());
    assert!(p
        .check(&parse_host("A.x.ORG").expect("ok"), 8443)
        .is_allow());
    assert!(!p.check(&parse_host("A.x.ORG").expect("ok"), 443).is_allow());
}

#[test]
fn ports() {
    let p = policy(&["a.test:22", "b.test:*"], &[], &[], &[]);
    assert!(p.check(&name("a.test"), 22).is_allow());
    assert!(!p.check(&name("a.test"), 443).is_allow());
    assert!(p.check(&name("b.test"), 1).is_allow());
    assert!(p.check(&name("b.test"), 65535).is_allow());
}

#[test]
fn deny_beats_allow_and_managed_beats_all() {
    let p = policy(
        &["*.example.com:*"],
        &["secret.example.com"],
        &[],
        &["*.corp.example.com:*"],
    );
    assert!(p.check(&name("a.example.com"), 443).is_allow());
    assert!(!p.check(&name("secret.example.com"), 443).is_allow());
    assert!(p.check(&name("secret.example.com"), 22).is_allow());
    let v = p.check(&name("x.corp.example.com"), 443);
    match v {
        Decision::Deny(Refusal { rule, .. }) => assert!(rule.starts_with("managed deny"), "{rule}"),
        other => panic!("expected deny, got {other:?}"),
    }
}

#[test]
fn raw_ip_needs_cidr() {
    let p = policy(
        &["*.example.com:*"],
        &[],
        &["8.8.8.0/24", "1.1.1.1/32:853"],
        &[],
    );
    assert!(!p.check(&Host::Ip(ip("9.9.9.9")), 443).is_allow());
    assert!(p.check(&Host::Ip(ip("8.8.8.8")), 443).is_allow());
    assert!(!p.check(&Host::Ip(ip("8.8.8.8")), 22).is_allow());
    assert!(p.check(&Host::Ip(ip("1.1.1.1")), 853).is_allow());
    assert!(!p.check(&Host::Ip(ip("1.1.1.1")), 443).is_allow());
    match p.check(&Host::Ip(ip("9.9.9.9")), 8080) {
        Decision::Deny(Refusal { fix, rule, .. }) => {
            assert_eq!(fix, "[network] allow_cidrs = [\"9.9.9.9/32:8080\"]");
            assert_eq!(rule, "no rule: unknown = deny");
        }
        v => panic!("{v:?}"),
    }
}

#[test]
fn special_ranges_and_rebinding() {
    let p = policy(&["app.test", "db.test:*"], &[], &["10.1.0.0/16"], &[]);
    // A name resolving into loopback or private space is refused.
    assert!(!p
        .check_resolved(Some("app.test"), ip("127.0.0.1"), 443)
        .is_allow());
    assert!(!p
        .check_resolved(Some("app.test"), ip("0.0.0.0"), 443)
        .is_allow());
    assert!(!p
        .check_resolved(Some("app.test"), ip("::ffff:127.0.0.1"), 443)
        .is_allow());
    assert!(!p
        .check_resolved(Some("app.test"), ip("64:ff9b::7f00:1"), 443)
        .is_allow());
    assert!(!p
        .check_resolved(Some("app.test"), ip("2002:7f00:1::"), 443)
        .is_allow());
    assert!(!p
        .check_resolved(Some("app.test"), ip("fe80::1"), 443)
        .is_allow());
    assert!(!p
        .check_resolved(Some("app.test"), ip("10.2.0.1"), 443)
        .is_allow());
    assert!(p
        .check_resolved(Some("app.test"), ip("10.1.2.3"), 443)
        .is_allow());
    assert!(p
        .check_resolved(Some("app.test"), ip("93.184.216.34"), 443)
        .is_allow());
    // Without a port the entry only lifts the range refusal: the name rule's ports apply.
    assert!(p
        .check_resolved(Some("db.test"), ip("10.1.2.3"), 5432)
        .is_allow());
    // An IP literal in the range keeps the default ports.
    assert!(!p.check(&Host::Ip(ip("10.1.2.3")), 5432).is_allow());
    assert!(p.check(&Host::Ip(ip("10.1.2.3")), 443).is_allow());
    // An entry that names ports still limits them, for names too.
    let narrow = policy(
        &["git.test:2222", "web.test"],
        &[],
        &["10.1.0.0/16:443"],
        &[],
    );
    assert!(!narrow
        .check_resolved(Some("git.test"), ip("10.1.2.3"), 2222)
        .is_allow());
    assert!(narrow
        .check_resolved(Some("web.test"), ip("10.1.2.3"), 443)
        .is_allow());
    // The name rule still decides the port: an entry without one adds none.
    assert!(!p
        .check_resolved(Some("app.test"), ip("10.1.2.3"), 2222)
        .is_allow());
    // A denied name is denied whatever it resolves to.
    assert!(!p
        .check_resolved(Some("other.test"), ip("93.184.216.34"), 443)
        .is_allow());
    // Raw IP in covered range.
    assert!(p.check(&Host::Ip(ip("10.1.9.9")), 80).is_allow());
    match p.check_resolved(Some("app.test"), ip("192.168.1.5"), 443) {
        Decision::Deny(Refusal { fix, reason, .. }) => {
            assert_eq!(fix, "[network] allow_cidrs = [\"192.168.1.5/32\"]");
            assert!(reason.contains("192.168"), "{reason}");
        }
        v => panic!("{v:?}"),
    }
    // For a name on another port, the fix is still the bare address (the name chose the port).
    match p.check_resolved(Some("db.test"), ip("192.168.1.5"), 5432) {
        Decision::Deny(Refusal { fix, .. }) => {
            assert_eq!(fix, "[network] allow_cidrs = [\"192.168.1.5/32\"]")
        }
        v => panic!("{v:?}"),
    }
}

#[test]
fn embedded_v4_needs_its_own_cover() {
    let p = policy(&["app.test"], &[], &["64:ff9b::/96"], &[]);
    assert!(p
        .check_resolved(Some("app.test"), ip("64:ff9b::808:808"), 443)
        .is_allow());
    assert!(!p
        .check_resolved(Some("app.test"), ip("64:ff9b::7f00:1"), 443)
        .is_allow());
    let p = policy(&["app.test"], &[], &["64:ff9b::/96", "127.0.0.0/8"], &[]);
    assert!(p
        .check_resolved(Some("app.test"), ip("64:ff9b::7f00:1"), 443)
        .is_allow());
}

#[test]
fn metadata_needs_exact_entry() {
    let broad = policy(
        &["m.test"],
        &[],
        &[
            "169.254.0.0/16",
            "100.64.0.0/10",
            "fd00::/8",
            "64:ff9b::/96",
        ],
        &[],
    );
    for a in [
        "169.254.169.254",
        "100.100.100.200",
        "fd00:ec2::254",
        "::ffff:169.254.169.254",
        "64:ff9b::a9fe:a9fe",
    ] {
        assert!(!broad.check(&Host::Ip(ip(a)), 80).is_allow(), "{a}");
        assert!(
            !broad.check_resolved(Some("m.test"), ip(a), 80).is_allow(),
            "{a}"
        );
    }
    assert!(broad.check(&Host::Ip(ip("169.254.1.1")), 80).is_allow());
    let exact = policy(&[], &[], &["169.254.169.254/32", "fd00:ec2::254/128"], &[]);
    assert!(exact.check(&Host::Ip(ip("169.254.169.254")), 80).is_allow());
    assert!(exact.check(&Host::Ip(ip("fd00:ec2::254")), 443).is_allow());
    assert!(!exact
        .check(&Host::Ip(ip("169.254.169.254")), 8080)
        .is_allow());
}

#[test]
fn every_spelling_is_checked_as_its_address() {
    let p = policy(&["*.example.com"], &[], &["8.8.8.8/32"], &[]);
    for s in [
        "127.1",
        "0x7f.1",
        "2130706433",
        "017700000001",
        "0177.0.0.1",
        "[::ffff:127.0.0.1]",
        "0.0.0.0",
        "0",
        "[::]",
        "[::1]",
    ] {
        let h = parse_host(s).expect("parses");
        assert!(!p.check(&h, 443).is_allow(), "{s}");
    }
    for s in [
        "8.8.8.8",
        "0x8080808",
        "134744072",
        "[::ffff:8.8.8.8]",
        "8.8.2056",
    ] {
        let h = parse_host(s).expect("parses");
        assert!(p.check(&h, 443).is_allow(), "{s}");
    }
}

#[test]
fn cidr_forms() {
    let p = policy(
        &[],
        &[],
        &[
            "[fd00::/8]:8443",
            "fc00::/8:*",
            "10.9.9.9",
            "10.8.8.8:22",
            "::ffff:192.168.0.0/112",
        ],
        &[],
    );
    assert!(p.check(&Host::Ip(ip("fd12::1")), 8443).is_allow());
    assert!(!p.check(&Host::Ip(ip("fd12::1")), 443).is_allow());
    assert!(p.check(&Host::Ip(ip("fc12::1")), 7).is_allow());
    assert!(p.check(&Host::Ip(ip("10.9.9.9")), 443).is_allow());
    assert!(p.check(&Host::Ip(ip("10.8.8.8")), 22).is_allow());
    assert!(p.check(&Host::Ip(ip("192.168.4.4")), 80).is_allow());
}

#[test]
fn unknown_ask_is_reported() {
    let p = NetPolicy::new(NetConfig {
        unknown: Unknown::Ask,
        ..NetConfig::default()
    })
    .expect("ok");
    match p.check(&name("x.test"), 443) {
        Decision::Ask(Refusal { rule, fix, .. }) => {
            assert!(rule.contains("ask"), "{rule}");
            assert_eq!(
                fix,
                "--allow-domain x.test  or  [network] allow = [\"x.test\"]"
            );
        }
        v => panic!("{v:?}"),
    }
    match p.check(&name("x.test"), 22) {
        Decision::Ask(Refusal { fix, .. }) => assert!(fix.contains("x.test:22"), "{fix}"),
        v => panic!("{v:?}"),
    }
}

#[test]
fn may_resolve() {
    let p = policy(
        &["a.test", "*.w.test:*", "p.test:22"],
        &["a.test:80", "x.w.test:*"],
        &[],
        &["m.a.test"],
    );
    assert!(p.name_may_resolve("a.test"));
    assert!(p.name_may_resolve("A.TEST."));
    assert!(p.name_may_resolve("q.w.test"));
    assert!(!p.name_may_resolve("x.w.test"));
    assert!(p.name_may_resolve("p.test"));
    assert!(!p.name_may_resolve("w.test"));
    assert!(!p.name_may_resolve("evil.test"));
    assert!(!p.name_may_resolve("1.2.3.4"));
    let only = policy(&["a.test"], &["a.test"], &[], &[]);
    assert!(!only.name_may_resolve("a.test"));
}

#[test]
fn hosts_table() {
    let p = NetPolicy::new(NetConfig {
        hosts: vec![("Api.Test.".into(), ip("::ffff:10.0.0.1"), "p:1".into())],
        ..NetConfig::default()
    })
    .expect("ok");
    assert_eq!(p.hosts_lookup("api.test"), Some(&[ip("10.0.0.1")][..]));
    let bad = NetPolicy::new(NetConfig {
        hosts: vec![("1.2.3.4".into(), ip("10.0.0.1"), "p:2".into())],
        ..NetConfig::default()
    });
    assert!(bad.is_err());
}

proptest::proptest! {
    #[test]
    fn suffix_tricks_never_match(prefix in "[a-z0-9]{1,10}", suffix in "[a-z]{1,8}") {
        let p = policy(&["allowed.example"], &[], &[], &[]);
        let glued = format!("{prefix}allowed.example");
        let appended = format!("allowed.example.{suffix}");
        let sub = format!("{prefix}.allowed.example");
        proptest::prop_assert!(!p.check(&name(&glued), 443).is_allow());
        proptest::prop_assert!(!p.check(&name(&appended), 443).is_allow());
        proptest::prop_assert!(!p.check(&name(&sub), 443).is_allow());
    }

    #[test]
    fn wildcard_matches_any_depth(labels in proptest::collection::vec("[a-z0-9]{1,8}", 1..5)) {
        let p = policy(&["*.example.com"], &[], &[], &[]);
        let n = format!("{}.example.com", labels.join("."));
        proptest::prop_assert!(p.check(&name(&n), 443).is_allow());
    }

    #[test]
    fn raw_ip_never_admitted_by_names(a: u32) {
        let p = policy(&["*.com:*", "example.com"], &[], &[], &[]);
        let h = Host::Ip(IpAddr::V4(a.into()));
        proptest::prop_assert!(!p.check(&h, 443).is_allow());
    }
}
