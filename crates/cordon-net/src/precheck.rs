//! The connect() pre-check: before a sandboxed `connect(2)` is routed to the transparent
//! door, the path guard asks whether the door would take it, so a destination nobody can
//! allow fails at once with "connection refused" instead of after a round trip.

use crate::event::{Asked, Event};
use crate::host::Host;
use crate::policy::NetPolicy;
use crate::synth::Synth;
use cordon_policy::Decision;
use std::net::SocketAddr;

/// What happens to one `connect(2)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Precheck {
    /// To the door: allowed, or held there while a person is asked.
    Door,
    /// Refused now; the event says why (for the audit).
    Refused(Event),
    /// The policy says to ask and an approval broker runs, but no approver is connected:
    /// refused now, recorded as the broker's question that nobody could answer.
    Unanswered {
        /// The destination, mapped back to its name when it is a synthetic address.
        target: Host,
        /// The destination port.
        port: u16,
        /// The flag or policy line that would allow it.
        fix: String,
    },
}

impl NetPolicy {
    /// Decides one `connect(2)` to `to`. `synth` maps the DNS stub's addresses back to names;
    /// `approver` says whether someone is there to ask (`None`: no approval broker at all).
    pub fn precheck(
        &self,
        synth: Option<&Synth>,
        to: SocketAddr,
        approver: Option<&dyn Fn() -> bool>,
    ) -> Precheck {
        let host = match synth.and_then(|s| s.name_of(to.ip())) {
            Some(name) => Host::Name(name),
            None => Host::Ip(to.ip()),
        };
        let port = to.port();
        let (r, nobody) = match self.check(&host, port) {
            Decision::Allow { .. } => return Precheck::Door,
            Decision::Ask(r) => match approver {
                Some(present) if present() => return Precheck::Door,
                Some(_) => {
                    return Precheck::Unanswered {
                        target: host,
                        port,
                        fix: r.fix,
                    }
                }
                None => (r, true),
            },
            Decision::Deny(r) => (r, false),
        };
        let asked = if nobody { Asked::Nobody } else { Asked::Not };
        Precheck::Refused(Event::refused("connect", host.to_string(), port, r, asked))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Decided, Kind};
    use crate::policy::{test_domain, NetConfig, Unknown};

    fn policy(unknown: Unknown) -> NetPolicy {
        NetPolicy::new(NetConfig {
            allow: vec![test_domain("ok.test")],
            deny: vec![test_domain("bad.test:*")],
            unknown,
            ..NetConfig::default()
        })
        .expect("policy")
    }

    #[test]
    fn allowed_and_answerable_destinations_go_to_the_door() {
        let synth = Synth::new();
        let (v4, _) = synth.assign("ok.test").expect("assign");
        let (x4, _) = synth.assign("x.test").expect("assign");
        let p = policy(Unknown::Ask);
        let to = |ip| SocketAddr::new(std::net::IpAddr::V4(ip), 443);
        assert_eq!(p.precheck(Some(&synth), to(v4), None), Precheck::Door);
        let yes: &dyn Fn() -> bool = &|| true;
        let no: &dyn Fn() -> bool = &|| false;
        assert_eq!(p.precheck(Some(&synth), to(x4), Some(yes)), Precheck::Door);
        assert_eq!(
            p.precheck(Some(&synth), to(x4), Some(no)),
            Precheck::Unanswered {
                target: Host::Name("x.test".into()),
                port: 443,
                fix: "--allow-domain x.test  or  [network] allow = [\"x.test\"]".into(),
            }
        );
        match p.precheck(Some(&synth), to(x4), None) {
            Precheck::Refused(e) => {
                assert_eq!((e.decision, e.target.as_str()), (Decided::Ask, "x.test"))
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn denied_destinations_are_refused_with_their_rule() {
        let synth = Synth::new();
        let (b4, _) = synth.assign("bad.test").expect("assign");
        let p = policy(Unknown::Ask);
        let yes: &dyn Fn() -> bool = &|| true;
        for to in [
            SocketAddr::new(std::net::IpAddr::V4(b4), 22),
            "192.0.2.1:443".parse().expect("addr"),
        ] {
            match p.precheck(Some(&synth), to, Some(yes)) {
                Precheck::Refused(e) => {
                    assert_eq!(
                        (e.kind, e.via, e.decision),
                        (Kind::Deny, "connect", Decided::Deny)
                    );
                    assert!(!e.rule.is_empty(), "{e:?}");
                }
                other => panic!("{to}: {other:?}"),
            }
        }
    }
}
