//! The DNS stub's responder on arbitrary packets.
#![no_main]

use cordon_net::dns::respond;
use cordon_net::{NetConfig, NetPolicy, Synth};
use cordon_policy::{DomainPattern, Origin, Rule, Tier};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

fn state() -> &'static (NetPolicy, Synth) {
    static S: OnceLock<(NetPolicy, Synth)> = OnceLock::new();
    S.get_or_init(|| {
        let rule = |p: &str| match DomainPattern::parse(p) {
            Ok(d) => Rule::new(d, Origin::bare(Tier::User)),
            Err(e) => panic!("fuzz pattern {p}: {e}"),
        };
        let cfg = NetConfig {
            allow: vec![rule("a.example"), rule("*.b.example")],
            ..NetConfig::default()
        };
        match NetPolicy::new(cfg) {
            Ok(p) => (p, Synth::new()),
            Err(e) => panic!("fuzz policy: {e}"),
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let (p, s) = state();
    let _ = respond(data, p, s);
});
